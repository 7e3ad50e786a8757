/* xt_shims.c: libgcc routines missing from Debian 12's xtensa-lx106 libgcc
 * (__modsi3, __moddi3, __divmoddi4, __udivmoddi4, __mulsi3 ARE present there).
 * Soft-float is NOT provided: code for lx106 must be integer only. */
#include <stdint.h>
typedef uint64_t u64;

static u64 umul32x32(uint32_t a, uint32_t b) { /* lx106 has no MUL32_HIGH */
  uint32_t al = a & 0xffffu, ah = a >> 16, bl = b & 0xffffu, bh = b >> 16;
  uint32_t ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
  uint32_t mid = (ll >> 16) + (lh & 0xffffu) + (hl & 0xffffu);
  return ((u64)(hh + (lh >> 16) + (hl >> 16) + (mid >> 16)) << 32) |
         ((ll & 0xffffu) | (mid << 16));
}
u64 __umulsidi3(uint32_t a, uint32_t b);
u64 __umulsidi3(uint32_t a, uint32_t b) { return umul32x32(a, b); }

long long __muldi3(long long a, long long b);
long long __muldi3(long long a, long long b) {
  u64 ua = (u64)a, ub = (u64)b;
  u64 r = umul32x32((uint32_t)ua, (uint32_t)ub);
  r += (u64)((uint32_t)ua * (uint32_t)(ub >> 32) + (uint32_t)(ua >> 32) * (uint32_t)ub) << 32;
  return (long long)r;
}

static uint32_t udivmod32(uint32_t n, uint32_t d, uint32_t *rem) { /* shift-subtract */
  uint32_t q = 0, r = 0;
  for (int i = 31; i >= 0; i--) {
    r = (r << 1) | ((n >> i) & 1u);
    if (r >= d) {
      r -= d;
      q |= 1u << i;
    }
  }
  if (rem) *rem = r;
  return q;
}
uint32_t __udivsi3(uint32_t n, uint32_t d);
uint32_t __umodsi3(uint32_t n, uint32_t d);
int32_t __divsi3(int32_t a, int32_t b);
uint32_t __udivsi3(uint32_t n, uint32_t d) { return udivmod32(n, d, 0); }
uint32_t __umodsi3(uint32_t n, uint32_t d) {
  uint32_t r;
  udivmod32(n, d, &r);
  return r;
}
int32_t __divsi3(int32_t a, int32_t b) {
  uint32_t ua = a < 0 ? 0u - (uint32_t)a : (uint32_t)a;
  uint32_t ub = b < 0 ? 0u - (uint32_t)b : (uint32_t)b;
  uint32_t q = udivmod32(ua, ub, 0);
  return (int32_t)(((a < 0) != (b < 0)) ? 0u - q : q);
}
long long __divmoddi4(long long a, long long b, long long *rem); /* in libgcc */
long long __divdi3(long long a, long long b);
long long __divdi3(long long a, long long b) {
  long long r;
  return __divmoddi4(a, b, &r);
}
