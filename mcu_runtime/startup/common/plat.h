/* plat.h: the only platform API generated kernels and test programs may use
 * (plus memcpy/memset/memmove/memcmp, which every target provides).
 *
 * Implemented per target family under mcu_runtime/startup/<family>/:
 *   arm, riscv, xtensa : bare metal, semihosting, no libc, no malloc
 *   host               : stdio
 *
 * Output convention parsed by msfopt.mcu_runtime.qemu.run():
 *   plat_report("label=", v)  prints "label=<decimal>\n"
 *   at exit the platform prints "stack_hwm_bytes=<n>\n" (painted-stack high-water mark)
 *
 * Exit codes: 0 pass, 1 mismatch (by convention), 125 stack reached its limit,
 * 126/127 CPU exception/fault, (harness side: timeout -> RunTimeout, 134 QEMU lockup).
 */
#ifndef MSF_PLAT_H
#define MSF_PLAT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PLAT_RC_STACK_OVERFLOW 125
#define PLAT_RC_FAULT 127

/* Write a NUL-terminated string to the semihosting console (stdout on host). */
void plat_puts(const char *s);
/* Print "<label><v in decimal>\n". Labels conventionally end in '='. */
void plat_report(const char *label, uint32_t v);
/* Report the stack high-water mark, then terminate with `code` (low 8 bits survive).
 * If the painted stack was used up to its limit, the exit code becomes 125. */
__attribute__((noreturn)) void plat_exit(int code);
/* Bytes of stack used so far (painted-stack high-water mark since reset). */
uint32_t plat_stack_used(void);
/* Instruction-count window markers. The QEMU plugin counts the instructions executed
 * between a call to plat_count_begin() and the next call to plat_count_end() (summed over
 * all windows), including every callee. Cheap no-ops otherwise. */
void plat_count_begin(void);
void plat_count_end(void);

#ifdef __cplusplus
}
#endif
#endif /* MSF_PLAT_H */
