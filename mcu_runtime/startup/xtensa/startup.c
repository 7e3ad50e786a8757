/* startup.c: Xtensa lx106 bare-metal startup + QEMU xtensa-semi platform layer.
 * Guest output goes to QEMU's stdout. Integer only (see xt_shims.c). */
#include <stdint.h>
#include "plat.h"
#include "stack_paint.h"

int main(void);

static int simcall(int nr, int a, int b, int c) { /* QEMU xtensa-semi ABI */
  register int a2 __asm__("a2") = nr;
  register int a3 __asm__("a3") = a;
  register int a4 __asm__("a4") = b;
  register int a5 __asm__("a5") = c;
  __asm__ volatile("simcall" : "+r"(a2) : "r"(a3), "r"(a4), "r"(a5) : "memory");
  return a2;
}

void plat_puts(const char *s) {
  int n = 0;
  while (s[n]) n++;
  simcall(4 /* write */, 1, (int)(intptr_t)s, n);
}

__attribute__((noreturn)) void plat_arch_exit(int code) {
  simcall(1 /* exit */, code, 0, 0);
  for (;;) {
  }
}

__attribute__((noreturn, used)) void msf_reset_c(void) {
  msf_crt_init();
  plat_exit(main());
}
