/* start.S: Xtensa lx106 on QEMU `-M sim -cpu lx106`.
 * sim ignores the ELF entry and resets to 0x50000000: a trampoline lives there.
 * VECBASE is 0x40000000; reset leaves PS.EXCM set so every fault hits the double
 * exception vector (+0x70): all vectors exit via simcall (126 / 127). */
  .section .reset, "ax"
  .global _reset
_reset: j 1f
  .align 4
2: .word _start
1: l32r a0, 2b
  jx a0

  .section .vectors, "ax"
  .org 0x30                      /* kernel exception */
  movi a2, 1
  movi a3, 126
  simcall
  .org 0x50                      /* user exception */
  movi a2, 1
  movi a3, 126
  simcall
  .org 0x70                      /* double exception (all faults after reset) */
  movi a2, 1
  movi a3, 127
  simcall

  .section .text.start, "ax"
  .literal_position
  .global _start
  .align 4
_start: movi a1, _estack
  movi a0, 0
  call0 msf_reset_c
3: j 3b
