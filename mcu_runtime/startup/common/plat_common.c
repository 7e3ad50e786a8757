/* plat_common.c: the family-independent part of the bare-metal platform layer.
 * Family files provide plat_puts() and plat_arch_exit(). */
#include "plat.h"
#include "stack_paint.h"

__attribute__((noreturn)) void plat_arch_exit(int code);

#ifndef MSF_STACK_GUARD_BYTES
#define MSF_STACK_GUARD_BYTES 128u
#endif

void plat_report(const char *label, uint32_t v) {
  char b[12], *p = b + sizeof b - 1;
  *p = 0;
  *--p = '\n';
  do {
    *--p = (char)('0' + v % 10u);
    v /= 10u;
  } while (v);
  plat_puts(label);
  plat_puts(p);
}

uint32_t plat_stack_used(void) {
  const uint32_t *d = _sstack;
  while (d < _estack && *d == MSF_STACK_FILL) d++;
  return (uint32_t)((const char *)_estack - (const char *)d);
}

__attribute__((noreturn)) void plat_exit(int code) {
  uint32_t used = plat_stack_used();
  plat_report("stack_hwm_bytes=", used);
  plat_report("stack_size_bytes=", (uint32_t)((char *)_estack - (char *)_sstack));
  /* A frame that straddles the limit may skip the lowest words (uninitialised locals),
   * so any write into the guard band at the bottom of the stack counts as overflow. */
  if (used + MSF_STACK_GUARD_BYTES > (uint32_t)((char *)_estack - (char *)_sstack)) {
    plat_puts("STACK_OVERFLOW\n");
    code = PLAT_RC_STACK_OVERFLOW;
  }
  plat_arch_exit(code);
}

/* Distinct bodies + noipa so identical-code folding can never merge the two markers. */
volatile uint32_t msf_count_marks;
__attribute__((noinline, noipa, used)) void plat_count_begin(void) { msf_count_marks += 1u; }
__attribute__((noinline, noipa, used)) void plat_count_end(void) { msf_count_marks += 0x10000u; }

/* Freestanding mem* (GCC emits calls to these even with -ffreestanding). Weak, so a
 * runtime that ships its own wins. The attribute stops GCC from turning the loops back
 * into calls to themselves. */
typedef uint32_t __attribute__((may_alias)) msf_u32a;
#define MSF_MEM_ATTR __attribute__((weak, optimize("no-tree-loop-distribute-patterns")))
MSF_MEM_ATTR void *memcpy(void *dst, const void *src, size_t n) {
  unsigned char *d = (unsigned char *)dst;
  const unsigned char *s = (const unsigned char *)src;
  if ((((uintptr_t)d | (uintptr_t)s) & 3u) == 0) {
    for (; n >= 4; n -= 4, d += 4, s += 4) *(msf_u32a *)d = *(const msf_u32a *)s;
  }
  while (n--) *d++ = *s++;
  return dst;
}
MSF_MEM_ATTR void *memmove(void *dst, const void *src, size_t n) {
  unsigned char *d = (unsigned char *)dst;
  const unsigned char *s = (const unsigned char *)src;
  if (d == s || n == 0) return dst;
  if (d < s) {
    while (n--) *d++ = *s++;
  } else {
    d += n;
    s += n;
    while (n--) *--d = *--s;
  }
  return dst;
}
MSF_MEM_ATTR void *memset(void *dst, int c, size_t n) {
  unsigned char *d = (unsigned char *)dst;
  if (((uintptr_t)d & 3u) == 0) {
    uint32_t w = (uint8_t)c * 0x01010101u;
    for (; n >= 4; n -= 4, d += 4) *(msf_u32a *)d = w;
  }
  while (n--) *d++ = (unsigned char)c;
  return dst;
}
MSF_MEM_ATTR int memcmp(const void *a, const void *b, size_t n) {
  const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
  for (; n; n--, x++, y++)
    if (*x != *y) return (int)*x - (int)*y;
  return 0;
}
