/* Unit test (host, ASan + UBSan, bounds-checked build): the fast conv's single-pixel runs
 * (output channels four at a time, msf_s8_convfast.c conv_px1) and the depthwise short calls
 * (one pixel / a column of up to 4 rows, msf_s8_dwfast.c dw_short_runs) equal the reference
 * loops byte for byte (fast_diff2.c).  First a hand-computed case, so that the comparison is anchored to
 * values neither kernel produced: C_in 5 (one word + a tail byte), C_out 5 (a quad + a tail
 * channel), float multiplier 1, input zero point 1. */
#include "msf_test.h"
#include "fast_diff2.c"

int main(void)
{
    uint32_t seed, mism = 0;
    {
        msf_conv_s8_params p;
        int8_t x[5] = {1, 2, 3, 4, 5}, wt[25], y[6];
        float m[1] = {1.0f};
        msf_view vi = mkview(x, 1, 1, 5), vo = mkview(y, 1, 1, 5);
        int32_t oc, k;
        memset(&p, 0, sizeof p);
        p.win = mkwin(1, 1, 1, 1, 0, 0, 0, 0);
        p.act_min = -128;
        p.act_max = 127;
        p.in_zp = 1;
        p.weights = wt;
        p.rq.fmul = m;
        for (oc = 0; oc < 5; oc++) {
            for (k = 0; k < 5; k++) {
                wt[oc * 5 + k] = (int8_t)(oc == k ? 2 : (k == 4 ? -1 : 0));
            }
        }
        y[5] = 77;
        vi.cap = 5;
        vo.cap = 5;
        msf_conv2d_s8(&p, &vi, &vo, 0, 1, 0, 1);
        /* channel oc: 2 * (x[oc] - 1) - (x[4] - 1) for oc < 4; channel 4: 2 * (5 - 1) = 8 */
        CHECK_EQ_INT(y[0], -4);
        CHECK_EQ_INT(y[1], -2);
        CHECK_EQ_INT(y[2], 0);
        CHECK_EQ_INT(y[3], 2);
        CHECK_EQ_INT(y[4], 8);
        CHECK_EQ_INT(y[5], 77);
    }
    for (seed = 1; seed <= 6; seed++) {
        uint32_t f = fd2_run(seed, 400);
        if (f) {
            printf("seed %u: %u differing cases\n", seed, f);
        }
        mism += f;
    }
    CHECK_EQ_INT(mism, 0);
    TEST_DONE();
}
