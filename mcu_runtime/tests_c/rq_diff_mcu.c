/* rq_diff_mcu.c - MCU driver of rq_diff.c (built by tests/test_fast_kernels.py for QEMU
 * targets, with the float requantisation the core selects: the integer emulation on cores
 * without an FPU): reports cases=, failures=, intrq= (MSF_INT_FLOATRQ) and the corner-class
 * counts through plat_report, exits 0 when all agree. */
#include "plat.h"
#include "rq_diff.c"

#ifndef RQD_CASES
#define RQD_CASES 20000
#endif

int main(void)
{
    uint32_t f = rqd_run(3u, RQD_CASES);
    plat_report("cases=", (uint32_t)RQD_CASES);
    plat_report("failures=", f);
    plat_report("intrq=", (uint32_t)MSF_INT_FLOATRQ);
    plat_report("int_ties=", rqd_count[RQD_INT_TIE]);
    plat_report("both_ties=", rqd_count[RQD_DOUBLE_TIE]);
    plat_report("double_round=", rqd_count[RQD_DOUBLE_ROUND]);
    plat_exit(f ? 1 : 0);
}
