"""Code generation: a plan becomes ``model.h`` / ``model.c`` that run it from one static arena.

The generated code reads the same block schedules the optimizer costed
(:func:`msfopt.schedule.schedule_of`) and the arena layout of :func:`msfopt.schedule.plan_layout`,
so ``MSF_ARENA_BYTES`` is the predicted arena by construction.

Requantisation: ``rq="float"`` is bit-exact with onnxruntime (ONNX models, the zoo);
``rq="fixed"`` is TFLite Micro's integer-only arithmetic (TFLite models).  The multipliers are
computed here exactly as ``msf_runtime.h`` prescribes (see :mod:`msfopt.mcu_runtime.cbuild`).
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from msfopt.ir import ADD, AVGPOOL, CONV, DENSE, DW, GAP, MAXPOOL, Network
from msfopt.schedule import BlockSchedule, Liveness, block_geometry, plan_layout, schedule_of

from . import cbuild

SRC_DIR = Path(__file__).resolve().parent / "src"
RUNTIME_SOURCES = cbuild.SOURCES
RUNTIME_HEADERS = cbuild.HEADERS
EXT_IN = 0xFFFFFFFF
EXT_OUT = 0xFFFFFFFE
F32_MAX = "3.40282347e+38f"


class CodegenError(ValueError):
    pass


@dataclass
class Generated:
    out_dir: Path
    arena_bytes: int
    peak_ram_bytes: int
    files: list[Path]
    schedules: list[BlockSchedule]
    tensor_offsets: dict[int, int]
    input_shape: tuple[int, int, int]
    output_shape: tuple[int, int, int]
    dtype: str
    io: str
    rq: str
    weight_bytes: int
    extra: dict = field(default_factory=dict)


# -- C text helpers ----------------------------------------------------------------------------------
#
# Nothing read from a model file (graph / node names, the file's path) reaches the generated text
# except through c_comment_text(): comment text is percent-escaped to a safe alphabet (no '*',
# '\\', quotes, '?', '$', backquotes, control or non-ASCII characters; '/' alone is harmless
# without '*'), so it can neither close the comment, nor open a nested one (-Wcomment), nor splice
# lines, nor form trigraphs.  No C identifier, #define or build-file line is made from model
# text: they are fixed names and numbers.

_COMMENT_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                          " _-.,:;+=@()[]{}<>|~!#&^/")
_COMMENT_MAX = 160


def c_comment_text(text, limit: int = _COMMENT_MAX) -> str:
    """``text`` made safe inside a C block comment: one line, characters outside a small safe
    alphabet percent-encoded (UTF-8 bytes: ``%2A`` for '*', ``%25`` for '%'), at most ``limit``
    characters (longer text is cut, ending in ``...``)."""
    out = []
    for ch in str(text):
        if ch in _COMMENT_SAFE:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
    s = "".join(out)
    if len(s) > limit:
        s = s[:max(0, limit - 3)] + "..."
    return s



def _c_array(ctype: str, name: str, values, per_line: int = 24, const: bool = True,
             section: str | None = None) -> str:
    vals = np.asarray(values).ravel()
    if ctype == "float":
        items = [_c_float(v) for v in vals]
    else:
        items = [str(int(v)) for v in vals]
    if not items:
        items = ["0"]
    lines = [", ".join(items[k:k + per_line]) for k in range(0, len(items), per_line)]
    q = "static const " if const else "static "
    return f"{q}{ctype} {name}[{len(items)}] = {{\n    " + ",\n    ".join(lines) + "\n};\n"


def _c_float(v) -> str:
    f = np.float32(v)
    if not np.isfinite(f):
        raise CodegenError(f"non-finite float constant {v!r}")
    r = repr(float(f))
    if "e" not in r and "." not in r:
        r += ".0"
    return r + "f"


def _window(layer) -> str:
    kh, kw = layer.kernel
    sh, sw = layer.stride
    pt, pl, pb, pr = layer.pad
    return f"{{{kh}, {kw}, {sh}, {sw}, {pt}, {pl}, {pb}, {pr}}}"


# -- per-layer parameters ----------------------------------------------------------------------------

class _Emitter:
    def __init__(self, net: Network, rq: str):
        self.net = net
        self.rq = rq
        self.lines: list[str] = []
        self.weight_bytes = 0
        self.op_override: dict[int, str] = {}  # layer -> MSF_OP_* (TFLite AVERAGE_POOL_2D gap)

    def arr(self, ctype, name, values):
        a = np.asarray(values)
        self.weight_bytes += a.size * {"int8_t": 1, "int32_t": 4, "float": 4}[ctype]
        self.lines.append(_c_array(ctype, name, values))
        return name

    def quant(self, t: int):
        q = self.net.quant_of(t)
        if q is None:
            raise CodegenError(f"tensor {t} has no quantisation parameters (int8 network)")
        if q.per_channel:
            raise CodegenError(f"tensor {t}: per-channel activation quantisation is not supported")
        return np.float32(q.scale[0]), int(q.zero_point[0])

    def requant(self, name, x_scale, w_scale, y_scale) -> str:
        """msf_requant initializer for conv/dense."""
        ws = np.atleast_1d(np.asarray(w_scale, dtype=np.float64))
        per = 1 if ws.size > 1 else 0
        if self.rq == "float":
            fm = cbuild.conv_float_multipliers(x_scale, ws, y_scale)
            self.arr("float", f"{name}_fmul", fm)
            return f"{{MSF_RQ_FLOAT, {per}, {name}_fmul, 0, 0}}"
        qm, qs = cbuild.conv_fixed_multipliers(x_scale, ws, y_scale)
        self.arr("int32_t", f"{name}_qmul", qm)
        self.arr("int32_t", f"{name}_qshift", qs)
        return f"{{MSF_RQ_FIXED, {per}, 0, {name}_qmul, {name}_qshift}}"

    def layer_params(self, i: int) -> tuple[str, str]:
        """(C type, initializer) of layer i's params struct; also emits its constant arrays."""
        net, L = self.net, self.net.layers[i]
        name = f"L{i}"
        f32 = net.dtype == "float32"
        if f32:
            lo, hi = {"none": (f"-{F32_MAX}", F32_MAX), "relu": ("0.0f", F32_MAX),
                      "relu6": ("0.0f", "6.0f")}[L.act]
        if L.op in (CONV, DW, DENSE):
            if L.weight is None:
                raise CodegenError(f"layer {i} ({L.name}) has no weights: initialise them first "
                                   f"(msfopt.weights.init_weights)")
            w = np.asarray(L.weight)
            if f32:
                self.arr("float", f"{name}_w", w.astype(np.float32))
                b = "0"
                if L.bias is not None:
                    b = self.arr("float", f"{name}_b", np.asarray(L.bias, dtype=np.float32))
                if L.op == DENSE:
                    return "msf_dense_f32_params", f"{{{lo}, {hi}, {name}_w, {b}}}"
                return "msf_conv_f32_params", (f"{{{_window(L)}, {L.groups}, {lo}, {hi}, "
                                               f"{name}_w, {b}}}")
            xs, xz = self.quant(L.src)
            ys, yz = self.quant(i + 1)
            wq = L.w_quant
            if wq is None:
                raise CodegenError(f"layer {i} ({L.name}) has no weight quantisation")
            wz = set(wq.zero_point)
            if len(wz) != 1 or (len(wq.zero_point) > 1 and wz != {0}):
                raise CodegenError(f"layer {i}: per-channel weight zero points must be 0")
            wzp = int(wq.zero_point[0])
            self.arr("int8_t", f"{name}_w", w.astype(np.int8))
            b = "0"
            if L.bias is not None:
                b = self.arr("int32_t", f"{name}_b", np.asarray(L.bias, dtype=np.int32))
            rq = self.requant(name, xs, wq.scale, ys)
            amin, amax = L.act_min, L.act_max
            if L.op == DENSE:
                return "msf_dense_s8_params", (f"{{{xz}, {wzp}, {yz}, {amin}, {amax}, {name}_w, "
                                               f"{b}, {rq}}}")
            return "msf_conv_s8_params", (f"{{{_window(L)}, {L.groups}, {xz}, {wzp}, {yz}, "
                                          f"{amin}, {amax}, {name}_w, {b}, {rq}}}")
        if L.op in (MAXPOOL, AVGPOOL):
            cip = int(bool(L.count_include_pad))
            if f32:
                return "msf_pool_f32_params", f"{{{_window(L)}, {cip}, {lo}, {hi}}}"
            xs, xz = self.quant(L.src)
            ys, yz = self.quant(i + 1)
            amin, amax = L.act_min, L.act_max
            mode = "MSF_RQ_FIXED" if self.rq == "fixed" else \
                "MSF_RQ_FLOAT_QDQ" if L.avg_rounding == "qdq" else "MSF_RQ_FLOAT"
            return "msf_pool_s8_params", (f"{{{_window(L)}, {cip}, {mode}, {_c_float(xs)}, "
                                          f"{_c_float(ys)}, {xz}, {yz}, {amin}, {amax}}}")
        if L.op == GAP:
            if f32:
                return "msf_act_f32_params", f"{{{lo}, {hi}}}"
            xs, xz = self.quant(L.src)
            ys, yz = self.quant(i + 1)
            amin, amax = L.act_min, L.act_max
            h, w, _ = L.in_shape
            tfl_op = _tflite_op(net, i)
            if self.rq == "fixed" and tfl_op == "AVERAGE_POOL_2D":
                # TFLM's AVERAGE_POOL_2D (sum of raw values, rounding division, no requantisation)
                # rounds differently from MEAN: run it as an unpadded whole-input avgpool
                self.op_override[i] = "MSF_OP_AVGPOOL"
                return "msf_pool_s8_params", (f"{{{{{h}, {w}, 1, 1, 0, 0, 0, 0}}, 0, MSF_RQ_FIXED, "
                                              f"{_c_float(xs)}, {_c_float(ys)}, {xz}, {yz}, "
                                              f"{amin}, {amax}}}")
            if self.rq == "fixed" and tfl_op == "MEAN":
                # TFLM's MEAN (QuantizedMeanOrSum): 1/(H*W) folded into the multiplier
                qm, qs = cbuild.mean_fixed_multiplier(xs, ys, h * w)
                self.arr("int32_t", f"{name}_qmul", [qm])
                self.arr("int32_t", f"{name}_qshift", [qs])
                rq = f"{{MSF_RQ_MEAN, 0, 0, {name}_qmul, {name}_qshift}}"
                return "msf_gap_s8_params", f"{{{xz}, {yz}, {amin}, {amax}, {rq}}}"
            if self.rq == "float":
                fm = cbuild.gap_float_multiplier(xs, ys, h * w)
                self.arr("float", f"{name}_fmul", [fm])
                rq = f"{{MSF_RQ_FLOAT, 0, {name}_fmul, 0, 0}}"
            else:
                qm, qs = cbuild.gap_fixed_multiplier(xs, ys)
                self.arr("int32_t", f"{name}_qmul", [qm])
                self.arr("int32_t", f"{name}_qshift", [qs])
                rq = f"{{MSF_RQ_FIXED, 0, 0, {name}_qmul, {name}_qshift}}"
            return "msf_gap_s8_params", f"{{{xz}, {yz}, {amin}, {amax}, {rq}}}"
        if L.op == ADD:
            if f32:
                return "msf_act_f32_params", f"{{{lo}, {hi}}}"
            s1, z1 = self.quant(L.src)
            s2, z2 = self.quant(L.src2)
            so, zo = self.quant(i + 1)
            amin, amax = L.act_min, L.act_max
            if self.rq == "float":
                m1, m2, fb = cbuild.add_float_params(s1, z1, s2, z2, so, zo)
                return "msf_add_s8_params", (f"{{MSF_RQ_FLOAT, {z1}, {z2}, {zo}, {amin}, {amax}, "
                                             f"{_c_float(m1)}, {_c_float(m2)}, {_c_float(fb)}, "
                                             f"0, 0, 0, 0, 0, 0, 0}}")
            p = cbuild.add_fixed_params(s1, s2, so)
            return "msf_add_s8_params", (
                f"{{MSF_RQ_FIXED, {z1}, {z2}, {zo}, {amin}, {amax}, 0.0f, 0.0f, 0.0f, "
                f"{p['left_shift']}, {p['in1_mul']}, {p['in1_shift']}, {p['in2_mul']}, "
                f"{p['in2_shift']}, {p['out_mul']}, {p['out_shift']}}}")
        raise CodegenError(f"layer {i}: op {L.op} has no C kernel")


_OP = {CONV: "MSF_OP_CONV", DW: "MSF_OP_DW", MAXPOOL: "MSF_OP_MAXPOOL",
       AVGPOOL: "MSF_OP_AVGPOOL", GAP: "MSF_OP_GAP", DENSE: "MSF_OP_DENSE", ADD: "MSF_OP_ADD"}


def _tflite_op(net: Network, i: int) -> str | None:
    ops = (getattr(net, "tflite", None) or {}).get("ops")
    return ops[i] if ops and i < len(ops) else None


def _tail_softmax(net: Network):
    """(multiplier, left_shift, diff_min) of a TFLite model's tail SOFTMAX, or None."""
    if not getattr(net, "tail_softmax", False) or net.dtype != "int8":
        return None
    q_in, q_out = net.quant_of(net.n_layers), getattr(net, "softmax_quant", None)
    if q_in is None or q_out is None:
        raise CodegenError("tail softmax without quantisation parameters")
    if q_out.zero_point[0] != -128 or np.float32(q_out.scale[0]) != np.float32(1.0 / 256):
        raise CodegenError("int8 softmax output must have scale 1/256 and zero point -128 "
                           "(TFLite Micro requires it)")
    beta = getattr(net, "softmax_beta", None)
    return cbuild.softmax_params(1.0 if beta is None else beta, q_in.scale[0])


@dataclass
class BlockDescriptor:
    """The ``msf_block`` of one schedule and its ``msf_layer`` rows, as plain numbers: every
    extent comes from the block schedule (:func:`msfopt.schedule.block_geometry`, the rings'
    sizes), every buffer offset from the arena layout.  ``layers[k]["buf"]`` is
    (offset, bytes, rows, cols), the ranges are (step, lo_sub, hi_add, hi_max)."""
    mode: str          # MSF_MODE_* name
    tile_h: int
    tile_w: int
    n_tiles: int
    n_tile_cols: int
    layers: list


def block_descriptor(net: Network, s: BlockSchedule, ring_offsets) -> BlockDescriptor:
    """Descriptor of block schedule ``s`` whose rings (``s.rings``) sit at arena byte offsets
    ``ring_offsets`` (one per ring, e.g. ``ArenaLayout.ring_offsets[k]``)."""
    try:
        geo = block_geometry(net, s)
    except ValueError as e:
        raise CodegenError(str(e)) from None
    bufs = {r.layer: (int(o), r.bytes, r.rows, r.cols) for r, o in zip(s.rings, ring_offsets)}
    layers = []
    for k, l in enumerate(range(s.first, s.last + 1)):
        layers.append(dict(layer=l, buf=bufs.get(l, (0, 0, 0, 0)),
                           out_rows=tuple(vars(geo.out_rows[k]).values()),
                           out_cols=tuple(vars(geo.out_cols[k]).values()),
                           need_cols=tuple(vars(geo.need_cols[k]).values())))
    if s.mode == "inplace":
        mode, tw = "MSF_MODE_INPLACE", 0
    elif s.mode == "recompute":
        mode, tw = "MSF_MODE_PATCHES", min(s.tile, s.tile_w)
    else:
        mode, tw = "MSF_MODE_COLUMNS", (s.tile_w if s.mode == "hcache-ip" else 0)
    return BlockDescriptor(mode=mode, tile_h=geo.tile_h, tile_w=tw, n_tiles=geo.n_tiles,
                           n_tile_cols=geo.n_tile_cols, layers=layers)


def _c_range(r) -> str:
    return "{" + ", ".join(str(int(v)) for v in r) + "}"


def default_rq(net: Network) -> str:
    return "fixed" if getattr(net, "tflite", None) else "float"


def generate(net: Network, blocks, out_dir, io: str = "arena", rq: str | None = None,
             copy_runtime: bool = True, name: str = "msf_model") -> Generated:
    """Write the C sources of ``net`` executed as ``blocks`` (a Plan's blocks or
    (first, last, mode, tile) tuples) into ``out_dir``."""
    net.validate()
    rq = rq or default_rq(net)
    if rq not in ("float", "fixed"):
        raise CodegenError("rq must be 'float' or 'fixed'")
    keys = []
    for b in blocks:
        if isinstance(b, tuple):
            keys.append(b)
        else:
            keys.append((b.first_layer, b.last_layer, b.mode, b.tile))
    live = Liveness(net, io)
    scheds = [schedule_of(net, live, *k) for k in keys]
    v = 0
    for s in scheds:
        if s.first != v:
            raise CodegenError(f"blocks do not chain: block {s.first}-{s.last} after layer {v - 1}")
        v = s.last + 1
    if v != net.n_layers:
        raise CodegenError(f"blocks cover layers 0..{v - 1} of {net.n_layers}")
    lay = plan_layout(net, scheds, io)
    n = net.n_layers
    esize = net.elem_bytes
    if esize == 4:
        bad = [o for o in list(lay.tensor_offset.values()) + [x for r in lay.ring_offsets for x in r]
               if o % 4]
        if bad:
            raise CodegenError("float32 buffer offsets must be 4-byte aligned")

    em = _Emitter(net, rq)
    param_decl = []
    for i in range(n):
        ctype, init = em.layer_params(i)
        param_decl.append(f"static const {ctype} L{i}_p = {init};")

    def off(t: int) -> str:
        if io in ("external", "input-external") and t == 0:
            return "MSF_OFF_EXT_IN"
        if io == "external" and t == n:
            return "MSF_OFF_EXT_OUT"
        return f"{lay.tensor_offset[t]}u"

    layer_tables = []
    block_inits = []
    dt = "MSF_DT_F32" if net.dtype == "float32" else "MSF_DT_S8"
    for k, (s, rings) in enumerate(zip(scheds, lay.ring_offsets)):
        rows = []
        desc = block_descriptor(net, s, rings)
        for l, dl in zip(range(s.first, s.last + 1), desc.layers):
            L = net.layers[l]
            hi, wi, ci = L.in_shape
            ho, wo, co = L.out_shape
            b_off, b_bytes, b_rows, b_cols = dl["buf"]
            rows.append(f"    /* layer {l}: {L.op} {c_comment_text(L.name or '-', 80)} */\n"
                        f"    {{{em.op_override.get(l, _OP[L.op])}, &L{l}_p, {hi}, {wi}, {ci}, {ho}, {wo}, {co}, "
                        f"{b_off}u, {b_bytes}u, {b_rows}, {b_cols}, {_c_range(dl['out_rows'])}, "
                        f"{_c_range(dl['out_cols'])}, {_c_range(dl['need_cols'])}}}")
        layer_tables.append(f"static const msf_layer B{k}_layers[{len(rows)}] = {{\n"
                            + ",\n".join(rows) + "\n};")
        L0 = net.layers[s.first]
        in2 = off(L0.src2) if (L0.op == ADD and s.first == s.last) else "0u"
        block_inits.append(f"    {{{dt}, {desc.tile_h}, {s.last - s.first + 1}, B{k}_layers, "
                           f"{off(L0.src)}, {in2}, {off(s.last + 1)}, {desc.mode}, "
                           f"{desc.tile_w}, {desc.n_tiles}, {desc.n_tile_cols}}}")

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ctype_io = "float" if net.dtype == "float32" else "int8_t"
    in_elems = net.tensor_elems(0)
    out_elems = net.tensor_elems(n)
    ih, iw, ic = net.input_shape
    oh, ow, oc = net.tensor_shape(n)
    guard = "MSF_ARENA_GUARD_BYTES"
    q_in = net.quant_of(0) if net.dtype == "int8" else None
    q_out = net.quant_of(n) if net.dtype == "int8" else None
    softmax = _tail_softmax(net)
    if softmax is not None:
        q_out = net.softmax_quant
    qdefs = ""
    if q_in is not None and q_out is not None:
        qdefs = (f"#define MSF_INPUT_SCALE {_c_float(q_in.scale[0])}\n"
                 f"#define MSF_INPUT_ZERO_POINT ({int(q_in.zero_point[0])})\n"
                 f"#define MSF_OUTPUT_SCALE {_c_float(q_out.scale[0])}\n"
                 f"#define MSF_OUTPUT_ZERO_POINT ({int(q_out.zero_point[0])})\n")
    setting = ", ".join(f"{s.first}" if s.first == s.last else f"{s.first}-{s.last}"
                        for s in scheds)
    model_name = c_comment_text(net.name)
    model_source = c_comment_text(net.source or "in-memory network", 200)
    header = f"""/* Generated by msfopt: {model_name}, {len(scheds)} blocks, io={io}, requantisation {rq}.
 * Fusion setting: {setting}
 * Do not edit: regenerate with `msfopt codegen`. */
#ifndef MSF_MODEL_H
#define MSF_MODEL_H

#include <stdint.h>

#define MSF_ARENA_BYTES {lay.arena_bytes}u
#define MSF_IO_EXTERNAL {1 if io == 'external' else 0}
#define MSF_OUTPUT_IN_ARENA {0 if io == 'external' else 1}
#define MSF_INPUT_H {ih}
#define MSF_INPUT_W {iw}
#define MSF_INPUT_C {ic}
#define MSF_INPUT_ELEMS {in_elems}
#define MSF_OUTPUT_H {oh}
#define MSF_OUTPUT_W {ow}
#define MSF_OUTPUT_C {oc}
#define MSF_OUTPUT_ELEMS {out_elems}
#define MSF_DTYPE_{'F32' if net.dtype == 'float32' else 'S8'} 1
#define MSF_TAIL_SOFTMAX {1 if softmax is not None else 0}
{qdefs}
typedef {ctype_io} msf_io_t;

/* Runs the network on one NHWC input and writes the NHWC output to out; returns 0.  When
 * MSF_OUTPUT_IN_ARENA, out may be NULL: read the result with msf_model_output(). */
int msf_model_run(const msf_io_t *in, msf_io_t *out);

/* The static arena (MSF_ARENA_BYTES bytes) and, with -DMSF_ARENA_GUARD_BYTES=N, a check that
 * the N guard bytes on each side of it are intact (1) or not (0). */
uint8_t *msf_model_arena(void);
int msf_model_arena_intact(void);

/* MSF_OUTPUT_IN_ARENA: the output tensor inside the arena, valid after msf_model_run until the
 * next run; msf_model_run(in, NULL) then skips the copy to a caller's buffer. */
const msf_io_t *msf_model_output(void);

#endif
"""
    tail = ""
    if softmax is not None:
        # the TFLite model's tail SOFTMAX, in place on the output tensor (no extra RAM)
        param_decl.append(f"static const msf_softmax_s8_params msf_softmax_p = "
                          f"{{{softmax[0]}, {softmax[1]}, {softmax[2]}}};")
        where = (f"arena + {lay.tensor_offset[n]}u" if io != "external" else "(uint8_t *)out")
        tail = (f"    msf_softmax_s8(&msf_softmax_p, (const int8_t *)({where}), "
                f"(int8_t *)({where}), {oh * ow}, {oc});\n")
    if io == "arena":
        run_body = (f"    msf_copy_bytes(arena + {lay.tensor_offset[0]}u, (const uint8_t *)in, "
                    f"{in_elems * esize}u);\n"
                    f"    msf_model_run_blocks(msf_blocks, {len(scheds)}, arena);\n"
                    + tail +
                    f"    if (out != 0) {{\n        msf_copy_bytes((uint8_t *)out, arena + "
                    f"{lay.tensor_offset[n]}u, {out_elems * esize}u);\n    }}\n")
    else:
        run_body = ("    msf_mem m;\n    int i;\n    m.arena = arena;\n"
                    "    m.ext_in = (const uint8_t *)in;\n    m.ext_out = (uint8_t *)out;\n"
                    f"    for (i = 0; i < {len(scheds)}; i++) {{\n"
                    "        msf_run_block_mem(&msf_blocks[i], &m);\n    }\n" + tail)
        if io == "input-external":
            run_body += (f"    if (out != 0) {{\n        msf_copy_bytes((uint8_t *)out, arena + "
                         f"{lay.tensor_offset[n]}u, {out_elems * esize}u);\n    }}\n")
    source = f"""/* Generated by msfopt: {model_name} ({model_source}).
 * Blocks: {setting}
 * Arena: {lay.arena_bytes} bytes (predicted {lay.arena_bytes}; largest block {max(s.ram_bytes for s in scheds)}). */
#include "msf_model.h"
#include "msf_runtime.h"

#ifndef {guard}
#define {guard} 0
#endif
#define MSF_ARENA_ALLOC (MSF_ARENA_BYTES + 2u * {guard})

/* one static arena, 4-byte aligned */
static union {{
    uint32_t align;
    uint8_t bytes[MSF_ARENA_ALLOC > 0u ? MSF_ARENA_ALLOC : 1u];
}} msf_arena_u;

{''.join(em.lines)}
{chr(10).join(param_decl)}

{chr(10).join(layer_tables)}

static const msf_block msf_blocks[{len(scheds)}] = {{
{(','+chr(10)).join(block_inits)}
}};

static void msf_copy_bytes(uint8_t *dst, const uint8_t *src, uint32_t n)
{{
    uint32_t i;
    for (i = 0; i < n; i++) {{
        dst[i] = src[i];
    }}
}}

uint8_t *msf_model_arena(void)
{{
    return msf_arena_u.bytes + {guard};
}}

const msf_io_t *msf_model_output(void)
{{
#if MSF_OUTPUT_IN_ARENA
    return (const msf_io_t *)(const void *)(msf_model_arena() + {lay.tensor_offset.get(n, 0)}u);
#else
    return 0;
#endif
}}

int msf_model_arena_intact(void)
{{
#if {guard} > 0
    return msf_canary_check(msf_arena_u.bytes, {guard}, 0x5eedu) < 0
        && msf_canary_check(msf_arena_u.bytes + {guard} + MSF_ARENA_BYTES, {guard}, 0xfeedu) < 0;
#else
    return 1;
#endif
}}

int msf_model_run(const msf_io_t *in, msf_io_t *out)
{{
    uint8_t *arena = msf_model_arena();
#if {guard} > 0
    static int painted = 0;
    if (!painted) {{
        msf_canary_fill(msf_arena_u.bytes, {guard}, 0x5eedu);
        msf_canary_fill(msf_arena_u.bytes + {guard} + MSF_ARENA_BYTES, {guard}, 0xfeedu);
        painted = 1;
    }}
#endif
{run_body}    (void)msf_copy_bytes;
    return 0;
}}
"""
    files = []
    longest = max(s.last - s.first + 1 for s in scheds)
    (out / "msf_config.h").write_text(
        "/* Generated by msfopt: runtime configuration for this plan. */\n"
        "#ifndef MSF_CONFIG_H\n#define MSF_CONFIG_H\n"
        f"/* longest fused block of the plan: the executor's stack arrays are sized by it */\n"
        f"#define MSF_MAX_BLOCK_LAYERS {max(2, longest)}\n#endif\n")
    (out / "msf_model.h").write_text(header)
    (out / "msf_model.c").write_text(source)
    files += [out / "msf_config.h", out / "msf_model.h", out / "msf_model.c"]
    if copy_runtime:
        for f in RUNTIME_SOURCES + RUNTIME_HEADERS:
            if f != "msf_config.h":
                shutil.copy(SRC_DIR / f, out / f)
            files.append(out / f)
    srcs = " ".join(["msf_model.c", *RUNTIME_SOURCES])
    (out / "msfopt.mk").write_text(
        "# Makefile fragment: include it and add $(MSF_SRCS) to your sources, $(MSF_DIR) to -I\n"
        "MSF_DIR := $(dir $(lastword $(MAKEFILE_LIST)))\n"
        f"MSF_SRCS := $(addprefix $(MSF_DIR),{srcs})\n"
        "MSF_CFLAGS := -std=c99 -ffp-contract=off -I$(MSF_DIR)\n")
    (out / "CMakeLists.txt").write_text(
        "# Add with add_subdirectory(); link your firmware against msf_model.\n"
        "cmake_minimum_required(VERSION 3.13)\n"
        "project(msf_model C)\n"
        f"add_library(msf_model STATIC {srcs})\n"
        "target_include_directories(msf_model PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})\n"
        "set_property(TARGET msf_model PROPERTY C_STANDARD 99)\n"
        "target_compile_options(msf_model PRIVATE -ffp-contract=off)\n")
    files += [out / "msfopt.mk", out / "CMakeLists.txt"]
    return Generated(out_dir=out, arena_bytes=lay.arena_bytes,
                     peak_ram_bytes=max(s.ram_bytes for s in scheds), files=files,
                     schedules=scheds, tensor_offsets=dict(lay.tensor_offset),
                     input_shape=net.input_shape, output_shape=net.tensor_shape(n),
                     dtype=net.dtype, io=io, rq=rq, weight_bytes=em.weight_bytes,
                     extra={"fallback_layout": lay.fallback})
