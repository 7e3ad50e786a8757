/* stack_hog.c: recursion deeper than the stack; the painted-stack check must give rc 125
 * (or a fault/lockup, depending on the board). DEPTH is the recursion depth. */
#include <stdint.h>
#include "plat.h"
#ifndef DEPTH
#define DEPTH 1000
#endif
__attribute__((noinline)) static uint32_t hog(uint32_t n) {
  volatile uint8_t buf[64];
  buf[n & 63] = (uint8_t)n;
  if (n == 0) return buf[0];
  return hog(n - 1) + buf[n & 63];
}
int main(void) {
  plat_report("hog=", hog(DEPTH));
  return 0;
}
