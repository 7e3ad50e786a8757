/* start.S: RV32 bare-metal entry + semihosting trap sequence. */
  .section .text.start, "ax"
  .globl _start
_start:
  .option push
  .option norelax
  la gp, __global_pointer$
  .option pop
  la sp, _estack
  la t0, msf_trap_entry          /* any trap -> exit(127) */
  csrw mtvec, t0
  call msf_reset_c               /* copy .data, zero .bss, paint stack, main, exit */
1: j 1b

  /* Trap entry: the trap may come from a stack overflow, so reset SP before any C. */
  .balign 4
  .globl msf_trap_entry
msf_trap_entry:
  .option push
  .option norelax
  la gp, __global_pointer$
  .option pop
  la sp, _estack
  call msf_trap_c
2: j 2b

  .section .text.semi, "ax"
  .globl msf_semi_call           /* int msf_semi_call(int op, const void *arg) */
  .balign 16
msf_semi_call:
  .option push
  .option norvc                  /* the semihosting marker must be uncompressed */
  slli zero, zero, 0x1f
  ebreak
  srai zero, zero, 7
  .option pop
  ret
