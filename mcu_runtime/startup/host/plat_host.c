/* plat_host.c: the plat_* API on a hosted C library (native gcc build).
 * Output goes to stdout. The stack high-water mark is approximated by painting a
 * region below the constructor's frame before main() and scanning it at exit; it
 * includes libc frames (printf, exit) and is only indicative. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "plat.h"

#ifndef MSF_HOST_PAINT_BYTES
#define MSF_HOST_PAINT_BYTES (256u * 1024u)
#endif
#define MSF_STACK_FILL 0xA5A5A5A5u

#if defined(__SANITIZE_ADDRESS__)
#define MSF_NO_ASAN __attribute__((no_sanitize_address))
#else
#define MSF_NO_ASAN
#endif

static uintptr_t paint_top, paint_bot; /* [paint_bot, paint_top) */
static int exited;

__attribute__((noinline)) MSF_NO_ASAN static void msf_paint(void) {
  volatile uint32_t region[MSF_HOST_PAINT_BYTES / 4];
  for (size_t i = 0; i < MSF_HOST_PAINT_BYTES / 4; i++) region[i] = MSF_STACK_FILL;
  paint_bot = (uintptr_t)&region[0];
  paint_top = (uintptr_t)&region[MSF_HOST_PAINT_BYTES / 4];
}

MSF_NO_ASAN uint32_t plat_stack_used(void) {
  if (!paint_bot) return 0;
  const volatile uint32_t *d = (const volatile uint32_t *)paint_bot;
  const volatile uint32_t *e = (const volatile uint32_t *)paint_top;
  while (d < e && *d == MSF_STACK_FILL) d++;
  return (uint32_t)(paint_top - (uintptr_t)d);
}

void plat_puts(const char *s) { fputs(s, stdout); }

void plat_report(const char *label, uint32_t v) { printf("%s%lu\n", label, (unsigned long)v); }

static void report_stack(void) {
  if (exited) return;
  exited = 1;
  plat_report("stack_hwm_bytes=", plat_stack_used());
  fflush(stdout);
}

__attribute__((noreturn)) void plat_exit(int code) {
  report_stack();
  exit(code);
}

volatile uint32_t msf_count_marks;
__attribute__((noinline, noipa)) void plat_count_begin(void) { msf_count_marks += 1u; }
__attribute__((noinline, noipa)) void plat_count_end(void) { msf_count_marks += 0x10000u; }

__attribute__((constructor)) static void msf_host_init(void) {
  msf_paint();
  atexit(report_stack); /* main() returning also reports */
}
