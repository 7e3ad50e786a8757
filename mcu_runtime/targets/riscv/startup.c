/* startup.c: RV32 bare-metal startup + semihosting platform layer (QEMU virt, sifive_e,
 * opentitan). RISC-V semihosting uses the ARM operation numbers. */
#include <stdint.h>
#include "plat.h"
#include "stack_paint.h"

int main(void);
int msf_semi_call(int op, const void *arg);

void plat_puts(const char *s) { msf_semi_call(0x04 /* SYS_WRITE0 */, s); }

__attribute__((noreturn)) void plat_arch_exit(int code) {
  static uint32_t blk[2];
  blk[0] = 0x20026u; /* ADP_Stopped_ApplicationExit */
  blk[1] = (uint32_t)code;
  msf_semi_call(0x20 /* SYS_EXIT_EXTENDED */, blk);
  for (;;) {
  }
}

__attribute__((interrupt("machine"), used)) void msf_trap_handler(void) {
  plat_puts("TRAP\n");
  plat_arch_exit(PLAT_RC_FAULT);
}

static inline uint32_t rd_minstret(void) {
  uint32_t v;
  __asm__ volatile("csrr %0, minstret" : "=r"(v));
  return v;
}

__attribute__((noreturn, used)) void msf_reset_c(void) {
  msf_crt_init();
  uint32_t i0 = rd_minstret();
  int rc = main();
  uint32_t i1 = rd_minstret();
  plat_report("minstret_main=", i1 - i0); /* exact only under -icount shift=0 */
  plat_exit(rc);
}
