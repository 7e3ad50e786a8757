"""Generated C runtime: kernels, block executor, code generation, MCU builds."""
