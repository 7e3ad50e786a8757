/* test_rq_int.c - host test (ASan + UBSan) of the integer emulation of the float
 * requantisation (msf_s8_requant.h, msf_rqc_float_int) in the configuration of the cores with
 * neither CLZ nor a 32 x 32 -> 64 multiply (Cortex-M0: the bit-length table and the 16-bit
 * partial products), forced on the host: the table and the tree (Xtensa's) against a
 * bit-by-bit count for every a <= 2^24, the partial products against the 64-bit product, then
 * rq_diff.c (4 M random pairs and the corner classes) against the float oracle and the
 * reference.
 * test_rq_int_clz.c runs rq_diff.c with CLZ and the 64-bit multiply (Cortex-M3, RISC-V Zbb). */
#define MSF_FORCE_INT_FLOATRQ 1
#define MSF_FORCE_BITLEN_TABLE 1
#define MSF_FORCE_MUL16 1
#include "msf_test.h"
#include "rq_diff.c"

#if !MSF_INT_FLOATRQ
#error "the integer emulation must be on in this test"
#endif

static int32_t bitlen_naive(uint32_t a)
{
    int32_t n = 0;
    while (a) {
        n++;
        a >>= 1;
    }
    return n ? n : 1;
}

int main(void)
{
    uint32_t a, bad = 0, i;
    for (a = 0; a <= 0x1000000u; a++) {
        bad += msf_bitlen24_tree(a) != bitlen_naive(a);
        bad += msf_bitlen24_tab(a) != bitlen_naive(a);
    }
    CHECK_EQ_INT(bad, 0);
    {
        static const uint32_t xs[] = {0u, 1u, 0xFFFFu, 0x10000u, 0xFFFFFFFFu, 0x80000000u,
                                      0x7FFFFFFFu, 0xFFFF0000u, 0x0000FFFFu, 0x40000000u};
        uint32_t s = 99u;
        bad = 0;
        for (i = 0; i < 1000000u + 100u; i++) {
            uint32_t x, y;
            uint64_t q;
            if (i < 100u) {
                x = xs[i % 10u];
                y = xs[i / 10u];
            } else {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                x = s;
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                y = (i & 3u) ? s : s & 0xFFFF0000u;
            }
            q = (uint64_t)x * y;
            bad += msf_umulhi_sticky16(x, y) !=
                   ((uint32_t)(q >> 32) | ((uint32_t)q != 0u ? 1u : 0u));
        }
        CHECK_EQ_INT(bad, 0);
    }
    CHECK_EQ_INT(rqd_run(1u, 4000000), 0);
    /* every corner class ran (the generators still produce what they claim) */
    CHECK(rqd_count[RQD_INT_TIE] >= 400000u);
    CHECK(rqd_count[RQD_FLOAT_TIE] >= 400000u);
    CHECK(rqd_count[RQD_DOUBLE_TIE] >= 100000u);
    CHECK(rqd_count[RQD_DOUBLE_ROUND] >= 10000u);
    CHECK(rqd_count[RQD_BIG_ACC] >= 5000u);
    CHECK(rqd_count[RQD_NONZERO] >= 2000000u);
    printf("int ties %u, float ties %u, both ties %u, double roundings %u, |acc| > 2^24 %u, "
           "nonzero %u\n", (unsigned)rqd_count[RQD_INT_TIE], (unsigned)rqd_count[RQD_FLOAT_TIE],
           (unsigned)rqd_count[RQD_DOUBLE_TIE],
           (unsigned)rqd_count[RQD_DOUBLE_ROUND], (unsigned)rqd_count[RQD_BIG_ACC],
           (unsigned)rqd_count[RQD_NONZERO]);
    TEST_DONE();
}
