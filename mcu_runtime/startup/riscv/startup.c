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

/* Called from msf_trap_entry (start.S) with a fresh SP at the top of the stack. */
__attribute__((noreturn, used)) void msf_trap_c(void) {
  uint32_t cause, epc, tval;
  __asm__ volatile("csrr %0, mcause" : "=r"(cause));
  __asm__ volatile("csrr %0, mepc" : "=r"(epc));
  __asm__ volatile("csrr %0, mtval" : "=r"(tval));
  plat_puts("TRAP\n");
  plat_report("trap_mcause=", cause);
  plat_report("trap_mepc=", epc);
  plat_report("trap_mtval=", tval);
  plat_arch_exit(PLAT_RC_FAULT);
}

#ifdef MSF_PMP_STACK_GUARD
/* Where RAM continues below the stack (QEMU virt), make the MSF_PMP_STACK_GUARD bytes just
 * below the stack inaccessible with a *locked* PMP TOR entry (locked entries bind M-mode
 * too), so an overflow traps (rc 127) instead of silently writing memory. Needs PMP. */
static void pmp_stack_guard(void) {
  uint32_t lo = ((uint32_t)(uintptr_t)_sstack - (uint32_t)(MSF_PMP_STACK_GUARD)) >> 2;
  uint32_t hi = (uint32_t)(uintptr_t)_sstack >> 2;
  __asm__ volatile("csrw pmpaddr0, %0" ::"r"(lo));
  __asm__ volatile("csrw pmpaddr1, %0" ::"r"(hi));
  /* pmp0cfg = OFF (just the TOR base), pmp1cfg = L | A=TOR | no R/W/X */
  __asm__ volatile("csrw pmpcfg0, %0" ::"r"((uint32_t)(0x80u | 0x08u) << 8));
}
#endif

static inline uint32_t rd_minstret(void) {
  uint32_t v;
  __asm__ volatile("csrr %0, minstret" : "=r"(v));
  return v;
}

__attribute__((noreturn, used)) void msf_reset_c(void) {
  msf_crt_init();
#ifdef MSF_PMP_STACK_GUARD
  pmp_stack_guard();
#endif
  uint32_t i0 = rd_minstret();
  int rc = main();
  uint32_t i1 = rd_minstret();
  plat_report("minstret_main=", i1 - i0); /* exact only under -icount shift=0 */
  plat_exit(rc);
}
