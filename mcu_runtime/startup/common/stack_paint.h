/* stack_paint.h: stack painting shared by the bare-metal startups (internal).
 * The linker scripts put the stack FIRST in RAM: [_sstack, _estack), then .data/.bss,
 * so an overflow leaves RAM (fault) instead of corrupting data, and the painted
 * bottom word tells us when the stack reached its limit. */
#ifndef MSF_STACK_PAINT_H
#define MSF_STACK_PAINT_H
#include <stdint.h>

#define MSF_STACK_FILL 0xA5A5A5A5u
extern uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[], _sstack[], _estack[];

/* Copy .data, zero .bss and paint the stack from its limit up to just below the caller's
 * frame. Must be inlined into the reset function so its own frame stays the floor. */
static inline __attribute__((always_inline)) void msf_crt_init(void) {
  uint32_t *s = _sidata, *d = _sdata;
  while (d < _edata) *d++ = *s++;
  for (d = _sbss; d < _ebss;) *d++ = 0;
  uint32_t *sp = (uint32_t *)__builtin_frame_address(0);
  for (d = _sstack; d < sp - 4;) *(volatile uint32_t *)d++ = MSF_STACK_FILL;
}
#endif
