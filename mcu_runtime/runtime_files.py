"""The portable C runtime's file lists: the one place that names the sources and headers of
``mcu_runtime/src`` (copied next to generated code, compiled for the host and the MCU targets)."""
from __future__ import annotations

from pathlib import Path

SRC_DIR = Path(__file__).resolve().parent / "src"
SOURCES = ("msf_quant.c", "msf_s8_conv.c", "msf_s8_convfast.c", "msf_s8_dwfast.c",
           "msf_s8_pool.c", "msf_s8_gap_dense.c", "msf_s8_add.c",
           "msf_s8_softmax.c", "msf_kernels_f32.c", "msf_s8_eltwise.c", "msf_f32_eltwise.c",
           "msf_move.c", "msf_resize.c", "msf_convt.c", "msf_executor.c")
HEADERS = ("msf_runtime.h", "msf_internal.h", "msf_config.h", "msf_s8_eltwise.h",
           "msf_f32_eltwise.h", "msf_move.h", "msf_resize.h", "msf_convt.h", "msf_s8_requant.h",
           "msf_s8_fast.h", "msf_s8_opsfast.h")
