/* fast_diff2_mcu.c - MCU driver of fast_diff2.c (the fast conv's single-pixel runs vs the
 * reference loop) for QEMU targets: reports cases= and failures= through plat_report, exits 0
 * when all agree. */
#include "plat.h"
#include "fast_diff2.c"

#ifndef FD2_CASES
#define FD2_CASES 300
#endif

int main(void)
{
    uint32_t f = fd2_run(11u, FD2_CASES);
    plat_report("cases=", (uint32_t)FD2_CASES);
    plat_report("failures=", f);
    plat_exit(f ? 1 : 0);
}
