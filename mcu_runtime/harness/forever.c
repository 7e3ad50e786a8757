/* forever.c: never terminates; the harness must time out and kill the emulator. */
#include <stdint.h>
#include "plat.h"
int main(void) {
  volatile uint32_t n = 0;
  plat_puts("looping\n");
  for (;;) n++;
}
