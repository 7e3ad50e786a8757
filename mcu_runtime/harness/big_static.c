/* big_static.c: a static array of BIG_BYTES bytes; used to check that a program whose
 * RAM need exceeds the target's RAM fails at link time. */
#include <stdint.h>
#include "plat.h"
#ifndef BIG_BYTES
#define BIG_BYTES 65536
#endif
static volatile uint8_t big[BIG_BYTES];
int main(void) {
  for (uint32_t i = 0; i < BIG_BYTES; i += 64) big[i] = (uint8_t)i;
  plat_report("big0=", big[0]);
  return 0;
}
