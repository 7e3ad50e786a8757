/* test_rq_int_clz.c - host test (ASan + UBSan) of the integer emulation of the float
 * requantisation in the configuration of the cores with CLZ and a 32 x 32 -> 64 multiply
 * (Cortex-M3, RISC-V with Zbb): rq_diff.c against the float oracle and the reference, the
 * emulation forced on.  test_rq_int.c covers the tree / 16-bit-product configuration. */
#define MSF_FORCE_INT_FLOATRQ 1
#include "msf_test.h"
#include "rq_diff.c"

#if !MSF_INT_FLOATRQ
#error "the integer emulation must be on in this test"
#endif

int main(void)
{
    CHECK_EQ_INT(rqd_run(2u, 2000000), 0);
    CHECK(rqd_count[RQD_DOUBLE_TIE] >= 50000u);
    CHECK(rqd_count[RQD_DOUBLE_ROUND] >= 5000u);
    TEST_DONE();
}
