/* rqf_diff_mcu.c - MCU driver of rqf_diff.c (built by tests/test_fast_kernels.py for QEMU
 * targets; the DSP variant's intrinsic form where the core has the DSP extension): reports
 * cases=, failures=, dsp= (MSF_RQF_DSP) and the corner-class counts through plat_report, exits
 * 0 when all agree. */
#include "plat.h"
#include "rqf_diff.c"

#ifndef RQFD_CASES
#define RQFD_CASES 20000
#endif

int main(void)
{
    uint32_t f = rqfd_run(5u, RQFD_CASES);
    plat_report("cases=", (uint32_t)RQFD_CASES);
    plat_report("failures=", f);
    plat_report("dsp=", (uint32_t)MSF_RQF_DSP);
    plat_report("div_ties=", rqfd_count[RQFD_DIV_TIE]);
    plat_report("sat=", rqfd_count[RQFD_SAT]);
    plat_exit(f ? 1 : 0);
}
