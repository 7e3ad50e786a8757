/* fast_diff_mcu.c - MCU driver of fast_diff.c (built by tests/test_fast_kernels.py for QEMU
 * targets): reports cases= and failures= through plat_report, exits 0 when all agree. */
#include "plat.h"
#include "fast_diff.c"

#ifndef FD_CASES
#define FD_CASES 120
#endif

int main(void)
{
    uint32_t f = fd_run(7u, FD_CASES);
    plat_report("cases=", (uint32_t)FD_CASES);
    plat_report("failures=", f);
    plat_exit(f ? 1 : 0);
}
