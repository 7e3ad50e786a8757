/* startup.c: Cortex-M (v6-M/v7-M/v8-M) bare-metal startup + semihosting platform layer.
 * Vector table, .data/.bss init, stack painting, FPU enable, SYS_EXIT_EXTENDED exit. */
#include <stdint.h>
#include "plat.h"
#include "stack_paint.h"

int main(void);

static int semi(int op, const void *arg) { /* ARM semihosting trap */
  register int r0 __asm__("r0") = op;
  register const void *r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

void plat_puts(const char *s) { semi(0x04 /* SYS_WRITE0 */, s); }

__attribute__((noreturn)) void plat_arch_exit(int code) {
  static uint32_t blk[2]; /* static: usable even if SP is bad */
  blk[0] = 0x20026u;      /* ADP_Stopped_ApplicationExit */
  blk[1] = (uint32_t)code;
  semi(0x20 /* SYS_EXIT_EXTENDED: full exit status, not just 0/1 */, blk);
  for (;;) {
  }
}

__attribute__((noreturn, used)) void msf_fault_c(void) {
  plat_puts("FAULT\n");
  plat_arch_exit(PLAT_RC_FAULT);
}

/* Faults may come from a stack overflow: move SP back to the top of the stack first. */
__attribute__((naked)) void Fault_Handler(void) {
  __asm__ volatile(
      "ldr r0, =_estack\n\t"
      "mov sp, r0\n\t"
      "bl msf_fault_c\n\t"
      ".ltorg\n\t");
}

__attribute__((noreturn)) void Reset_Handler(void) {
  msf_crt_init();
#if defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8M_BASE__)
  /* ARMv8-M stack limit: an overflow raises a precise STKOF fault instead of a lockup */
  __asm__ volatile("msr msplim, %0" ::"r"(_sstack));
#endif
#if defined(__ARM_FP)
  *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: CP10/CP11 full access */
  __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
  plat_exit(main());
}

__attribute__((section(".vectors"), used)) void (*const msf_vector_table[16])(void) = {
    (void (*)(void))_estack, Reset_Handler, Fault_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler, Fault_Handler, 0, 0, 0, 0, Fault_Handler, Fault_Handler, 0,
    Fault_Handler, Fault_Handler};
