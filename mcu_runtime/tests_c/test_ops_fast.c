/* Unit test (host, ASan + UBSan): the fast int8 pool / add / dense / GAP paths equal the
 * reference loops byte for byte over random shapes, strides, pads, zero points, requantisation
 * modes and corners, activation clamps, output regions and ring views (ops_diff.c; the same cases
 * run on QEMU targets, tests/test_c_kernels.py).  Sanity checks first: hand-computed outputs, and
 * the harness's comparison does see a differing byte. */
#include "msf_test.h"
#include "ops_diff.c"

int main(void)
{
    uint32_t seed;
    int32_t mism = 0;
    {   /* max pool 2x2 of one channel: max(1, 5, -3, 2) = 5; avg (fixed) = round(5 / 4) = 1 */
        msf_pool_s8_params p;
        int8_t xi[4] = {1, 5, -3, 2}, y[1];
        msf_view vi = mkview(xi, 2, 2, 1), vo = mkview(y, 1, 1, 1);
        memset(&p, 0, sizeof p);
        p.win = mkwin(2, 2, 2, 2, 0, 0, 0, 0);
        p.act_min = -128;
        p.act_max = 127;
        vi.cap = 4;
        vo.cap = 1;
        msf_maxpool_s8(&p, &vi, &vo, 0, 1, 0, 1);
        CHECK_EQ_INT(y[0], 5);
        p.mode = MSF_RQ_FIXED;
        msf_avgpool_s8(&p, &vi, &vo, 0, 1, 0, 1);
        CHECK_EQ_INT(y[0], 1);
    }
    {   /* dense: bias 3 + (2 - 1) * 4 + (3 - 1) * (-1) = 5, float multiplier 1 */
        msf_dense_s8_params p;
        int8_t xi[2] = {2, 3}, wt[2] = {4, -1}, y[1];
        int32_t bias[1] = {3};
        float m[1] = {1.0f};
        msf_view vi = mkview(xi, 1, 1, 2), vo = mkview(y, 1, 1, 1);
        memset(&p, 0, sizeof p);
        p.in_zp = 1;
        p.act_min = -128;
        p.act_max = 127;
        p.weights = wt;
        p.bias = bias;
        p.rq.mode = MSF_RQ_FLOAT;
        p.rq.fmul = m;
        msf_dense_s8(&p, &vi, &vo);
        CHECK_EQ_INT(y[0], 5);
    }
    od_ref[0] = 1;
    od_got[0] = 2;
    CHECK(!od_same(1));
    for (seed = 1; seed <= 6; seed++) {
        uint32_t f = od_run(seed, 1000);
        if (f) {
            printf("seed %u: %u differing cases\n", seed, f);
        }
        mism += (int32_t)f;
    }
    CHECK_EQ_INT(mism, 0);
    TEST_DONE();
}
