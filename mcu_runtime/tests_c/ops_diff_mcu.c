/* ops_diff_mcu.c - MCU driver of ops_diff.c (built by tests/test_c_kernels.py for QEMU
 * targets): reports cases= and failures= through plat_report, exits 0 when all agree. */
#include "plat.h"
#include "ops_diff.c"

#ifndef OD_CASES
#define OD_CASES 150
#endif

int main(void)
{
    uint32_t f = od_run(11u, OD_CASES);
    plat_report("cases=", (uint32_t)OD_CASES);
    plat_report("failures=", f);
    plat_exit(f ? 1 : 0);
}
