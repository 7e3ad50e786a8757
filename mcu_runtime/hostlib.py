"""Host harness of the portable C runtime in ``mcu_runtime/src``: builds it into a shared library
(or a C unit test into an executable) with the host compiler, and mirrors ``msf_runtime.h`` in
``ctypes`` (every struct, same field order; the enum values; the function prototypes) so the
tests can call each kernel and the executor directly."""
from __future__ import annotations

import ctypes as C
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .runtime_files import HEADERS, SOURCES, SRC_DIR

STRICT_FLAGS = ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off"]

F32_MAX = float(np.finfo(np.float32).max)

MSF_RQ_FLOAT, MSF_RQ_FIXED, MSF_RQ_MEAN = 0, 1, 2
MSF_RQ_FLOAT_QDQ = 3  # msf_pool_s8_params.mode: ONNX QuantizeLinear rounding (QDQ avgpool)
MSF_RQ_FLOAT_REV = 4  # msf_add_s8_params.mode: QLinearAdd whose first input A is in2
MSF_DT_S8, MSF_DT_F32 = 0, 1
OP_CODES = {"conv": 0, "dw": 1, "maxpool": 2, "avgpool": 3, "gap": 4, "dense": 5, "add": 6,
            "concat": 7, "slice": 8, "shuffle": 9, "act": 10, "prelu": 11, "mul": 12,
            "resize": 13, "convt": 14, "concat_w": 15, "reshape": 16}


# -- building ------------------------------------------------------------------------------------

def compiler() -> str:
    cc = os.environ.get("CC", "gcc")
    if shutil.which(cc) is None:
        raise RuntimeError(f"C compiler {cc!r} not found")
    return cc


def _digest(extra: list[str]) -> str:
    h = hashlib.sha256()
    for name in SOURCES + HEADERS:
        h.update((SRC_DIR / name).read_bytes())
    h.update(" ".join(extra).encode())
    return h.hexdigest()[:16]


def build_dir() -> Path:
    d = Path(os.environ.get("MSF_CBUILD_DIR", Path(tempfile.gettempdir()) / "msfopt_cbuild"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def build_shared(extra_flags: list[str] | None = None, count_macs: bool = True,
                 opt: str = "-O2") -> Path:
    """Compile the runtime into a shared library (cached by source hash + flags)."""
    flags = STRICT_FLAGS + [opt, "-fPIC", "-shared"] + (["-DMSF_COUNT_MACS"] if count_macs else [])
    flags += list(extra_flags or [])
    out = build_dir() / f"libmsf_{_digest(flags)}.so"
    if not out.exists():
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        cmd = [compiler(), *flags, "-I", str(SRC_DIR), *[str(SRC_DIR / s) for s in SOURCES],
               "-o", str(tmp)]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        os.replace(tmp, out)
    return out


def runtime_objects(flags: list[str]) -> list[Path]:
    """The runtime's object files compiled with ``flags``, once per distinct (sources, headers,
    flags) and reused (the C unit tests link the same sanitised runtime ~20 times)."""
    d = build_dir() / f"rt_{_digest(flags)}"
    objs = [d / (Path(s).stem + ".o") for s in SOURCES]
    if not d.is_dir():
        tmp = Path(tempfile.mkdtemp(prefix=".rt_", dir=build_dir()))
        try:
            subprocess.run([compiler(), *flags, "-I", str(SRC_DIR), "-c",
                            *[str(SRC_DIR / s) for s in SOURCES]], check=True,
                           capture_output=True, text=True, cwd=tmp)
            try:
                os.replace(tmp, d)      # atomic: a concurrent builder's copy wins, same bytes
            except OSError:
                pass
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return objs


def build_exe(test_source: Path, out: Path, extra_flags: list[str] | None = None) -> Path:
    """Compile a C unit test and link it with the runtime (objects cached per flags) and the C
    library's libm (some tests use it as an oracle)."""
    flags = STRICT_FLAGS + ["-O1", "-g", "-DMSF_COUNT_MACS"] + list(extra_flags or [])
    cmd = [compiler(), *flags, "-I", str(SRC_DIR), str(test_source),
           *[str(o) for o in runtime_objects(flags)], "-lm", "-o", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out


# -- ctypes mirrors of msf_runtime.h --------------------------------------------------------------

class View(C.Structure):
    _fields_ = [("data", C.c_void_p), ("H", C.c_int32), ("W", C.c_int32), ("C", C.c_int32),
                ("y0", C.c_int32), ("xcap", C.c_int32), ("cap", C.c_int32)]


class Requant(C.Structure):
    _fields_ = [("mode", C.c_int32), ("per_channel", C.c_int32),
                ("fmul", C.POINTER(C.c_float)), ("qmul", C.POINTER(C.c_int32)),
                ("qshift", C.POINTER(C.c_int32))]


class Window(C.Structure):
    _fields_ = [("kh", C.c_int32), ("kw", C.c_int32), ("sh", C.c_int32), ("sw", C.c_int32),
                ("pad_top", C.c_int32), ("pad_left", C.c_int32), ("pad_bottom", C.c_int32),
                ("pad_right", C.c_int32), ("dil_h", C.c_int32), ("dil_w", C.c_int32)]


class ConvS8(C.Structure):
    _fields_ = [("win", Window), ("groups", C.c_int32), ("in_zp", C.c_int32),
                ("w_zp", C.c_int32), ("out_zp", C.c_int32), ("act_min", C.c_int32),
                ("act_max", C.c_int32), ("weights", C.POINTER(C.c_int8)),
                ("bias", C.POINTER(C.c_int32)), ("rq", Requant),
                ("bias_zp", C.POINTER(C.c_int32)),   # optional: NULL unless set
                ("rqd", C.POINTER(C.c_int32))]       # optional (DSP cores only): NULL


class ConvF32(C.Structure):
    _fields_ = [("win", Window), ("groups", C.c_int32), ("act_min", C.c_float),
                ("act_max", C.c_float), ("weights", C.POINTER(C.c_float)),
                ("bias", C.POINTER(C.c_float))]


class PoolS8(C.Structure):
    _fields_ = [("win", Window), ("count_include_pad", C.c_int32), ("mode", C.c_int32),
                ("in_scale", C.c_float), ("out_scale", C.c_float), ("in_zp", C.c_int32),
                ("out_zp", C.c_int32), ("act_min", C.c_int32), ("act_max", C.c_int32)]


class PoolF32(C.Structure):
    _fields_ = [("win", Window), ("count_include_pad", C.c_int32), ("act_min", C.c_float),
                ("act_max", C.c_float)]


class GapS8(C.Structure):
    _fields_ = [("in_zp", C.c_int32), ("out_zp", C.c_int32), ("act_min", C.c_int32),
                ("act_max", C.c_int32), ("rq", Requant)]


class DenseS8(C.Structure):
    _fields_ = [("in_zp", C.c_int32), ("w_zp", C.c_int32), ("out_zp", C.c_int32),
                ("act_min", C.c_int32), ("act_max", C.c_int32),
                ("weights", C.POINTER(C.c_int8)), ("bias", C.POINTER(C.c_int32)),
                ("rq", Requant)]


class DenseF32(C.Structure):
    _fields_ = [("act_min", C.c_float), ("act_max", C.c_float),
                ("weights", C.POINTER(C.c_float)), ("bias", C.POINTER(C.c_float))]


class AddS8(C.Structure):
    _fields_ = [("mode", C.c_int32), ("in1_zp", C.c_int32), ("in2_zp", C.c_int32),
                ("out_zp", C.c_int32), ("act_min", C.c_int32), ("act_max", C.c_int32),
                ("mul1", C.c_float), ("mul2", C.c_float), ("fbias", C.c_float),
                ("left_shift", C.c_int32), ("in1_mul", C.c_int32), ("in1_shift", C.c_int32),
                ("in2_mul", C.c_int32), ("in2_shift", C.c_int32), ("out_mul", C.c_int32),
                ("out_shift", C.c_int32), ("sub", C.c_int32)]


class BinaryS8(C.Structure):
    """msf_binary_s8_params: the broadcasting int8 ADD / SUB (msf_mul_s8 with base mode
    MSF_ELT_BINARY_ADD): the msf_mul_s8_params fields, the msf_add_s8_params, reverse."""
    _fields_ = [("mode", C.c_int32), ("bcast", C.c_int32), ("in1_zp", C.c_int32),
                ("in2_zp", C.c_int32), ("out_zp", C.c_int32), ("act_min", C.c_int32),
                ("act_max", C.c_int32), ("out_mul", C.c_int32), ("out_shift", C.c_int32),
                ("ratio", C.c_float), ("in1_scale", C.c_float), ("in2_scale", C.c_float),
                ("out_scale", C.c_float), ("add", AddS8), ("reverse", C.c_int32)]


MSF_ELT_BINARY_ADD = 16
MSF_BCAST_NONE, MSF_BCAST_CHANNEL, MSF_BCAST_SCALAR, MSF_BCAST_PIXEL = 0, 1, 2, 3


class ActF32(C.Structure):
    _fields_ = [("act_min", C.c_float), ("act_max", C.c_float)]


class SoftmaxS8(C.Structure):
    _fields_ = [("input_multiplier", C.c_int32), ("input_left_shift", C.c_int32),
                ("diff_min", C.c_int32)]


class Range(C.Structure):
    _fields_ = [("step", C.c_int16), ("lo_sub", C.c_int16), ("hi_add", C.c_int16),
                ("hi_max", C.c_int16)]


class Layer(C.Structure):
    _fields_ = [("op", C.c_int32), ("params", C.c_void_p), ("in_h", C.c_int32),
                ("in_w", C.c_int32), ("in_c", C.c_int32), ("out_h", C.c_int32),
                ("out_w", C.c_int32), ("out_c", C.c_int32), ("buf_off", C.c_uint32),
                ("buf_bytes", C.c_uint32), ("buf_rows", C.c_int32), ("buf_cols", C.c_int32),
                ("out_rows", Range), ("out_cols", Range), ("need_cols", Range)]


class Operand(C.Structure):
    _fields_ = [("off", C.c_uint32), ("data", C.c_void_p), ("h", C.c_int32), ("w", C.c_int32),
                ("c", C.c_int32)]


class Block(C.Structure):
    _fields_ = [("dtype", C.c_int32), ("tile_h", C.c_int32), ("n_layers", C.c_int32),
                ("layers", C.POINTER(Layer)), ("in_off", C.c_uint32), ("in2_off", C.c_uint32),
                ("out_off", C.c_uint32), ("mode", C.c_int32), ("tile_w", C.c_int32),
                ("n_tiles", C.c_int32), ("n_tile_cols", C.c_int32),
                ("operands", C.POINTER(Operand)), ("n_operands", C.c_int32)]


MSF_MODE = {"MSF_MODE_COLUMNS": 0, "MSF_MODE_PATCHES": 1, "MSF_MODE_INPLACE": 2}
BOUNDS_HOOK = C.CFUNCTYPE(None, C.c_char_p)


_REGION = [C.c_int32] * 4


def load(path: Path | None = None) -> C.CDLL:
    """Load the shared library and declare the prototypes."""
    lib = C.CDLL(str(path or build_shared()))
    P = C.POINTER
    sig = {
        "msf_conv2d_s8": [P(ConvS8), P(View), P(View), *_REGION],
        "msf_dwconv2d_s8": [P(ConvS8), P(View), P(View), *_REGION],
        "msf_conv2d_f32": [P(ConvF32), P(View), P(View), *_REGION],
        "msf_dwconv2d_f32": [P(ConvF32), P(View), P(View), *_REGION],
        "msf_maxpool_s8": [P(PoolS8), P(View), P(View), *_REGION],
        "msf_avgpool_s8": [P(PoolS8), P(View), P(View), *_REGION],
        "msf_maxpool_f32": [P(PoolF32), P(View), P(View), *_REGION],
        "msf_avgpool_f32": [P(PoolF32), P(View), P(View), *_REGION],
        "msf_add_s8": [P(AddS8), P(View), P(View), P(View), *_REGION],
        "msf_add_f32": [P(ActF32), P(View), P(View), P(View), *_REGION],
        "msf_gap_s8": [P(GapS8), P(View), P(View)],
        "msf_gap_f32": [P(ActF32), P(View), P(View)],
        "msf_dense_s8": [P(DenseS8), P(View), P(View)],
        "msf_dense_f32": [P(DenseF32), P(View), P(View)],
        "msf_run_block": [P(Block), C.c_void_p],
        "msf_model_run_blocks": [P(Block), C.c_int, C.c_void_p],
        "msf_macs_reset": [],
        "msf_canary_fill": [C.c_void_p, C.c_size_t, C.c_uint32],
        "msf_softmax_s8": [P(SoftmaxS8), C.c_void_p, C.c_void_p, C.c_int32, C.c_int32],
    }
    for name, args in sig.items():
        fn = getattr(lib, name)
        fn.argtypes = args
        fn.restype = None
    for name, args, res in (
            ("msf_round_half_even", [C.c_float], C.c_int32),
            ("msf_fmaf", [C.c_float, C.c_float, C.c_float], C.c_float),
            ("msf_srdhm", [C.c_int32, C.c_int32], C.c_int32),
            ("msf_rdbpot", [C.c_int32, C.c_int32], C.c_int32),
            ("msf_mbqm", [C.c_int32, C.c_int32, C.c_int32], C.c_int32),
            ("msf_macs_get", [], C.c_uint64),
            ("msf_block_validate", [P(Block)], C.c_int32),
            ("msf_bounds_failures", [], C.c_uint32),
            ("msf_canary_check", [C.c_void_p, C.c_size_t, C.c_uint32], C.c_long)):
        fn = getattr(lib, name)
        fn.argtypes = args
        fn.restype = res
    lib.msf_add_s8_float_params.argtypes = [C.c_float, C.c_int32, C.c_float, C.c_int32,
                                            C.c_float, C.c_int32, P(C.c_float), P(C.c_float),
                                            P(C.c_float)]
    lib.msf_add_s8_float_params.restype = None
    lib.msf_set_bounds_hook.argtypes = [BOUNDS_HOOK]
    lib.msf_set_bounds_hook.restype = None
    return lib


# -- helpers to fill structs from numpy arrays -----------------------------------------------------

def ptr(arr: np.ndarray | None, ctype):
    """ctypes pointer to a C-contiguous numpy array (None -> NULL). Keep arr alive!"""
    if arr is None:
        return C.POINTER(ctype)()
    assert arr.flags["C_CONTIGUOUS"]
    return arr.ctypes.data_as(C.POINTER(ctype))


def window(kernel, stride, pad, dilation=(1, 1)) -> Window:
    (kh, kw), (sh, sw) = kernel, stride
    pt, pl, pb, pr = pad
    return Window(kh, kw, sh, sw, pt, pl, pb, pr, *dilation)


def full_view(arr: np.ndarray) -> View:
    h, w, c = arr.shape
    return View(arr.ctypes.data, h, w, c, 0, w, h * w * c)
