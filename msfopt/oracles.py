"""Reference outputs from oracles msfopt did not produce, run in a subprocess.

Given the user's ORIGINAL model file, the IR network imported from it and inputs in the IR's
layout (NHWC, int8 for quantised networks), :func:`reference` returns the oracle's outputs mapped
back to the IR's layout and element type, plus the oracle's name:

==========================  ====================================================================
model                       oracle
==========================  ====================================================================
``.onnx`` file              onnxruntime on the original file (I/O mapped NCHW<->NHWC; a uint8
                            model's input/output shifted by 128; float I/O around a quantised
                            network (de)quantised exactly with the network's input/output
                            quantisation). Where onnxruntime and the generated C differ on a
                            model with uint8 activations, :func:`arbitrate` re-runs
                            ``onnx.reference.ReferenceEvaluator`` on the original file
                            (onnxruntime's x86 u8s8 kernels saturate int16 pair sums).
``.tflite`` file            tflite-micro; where tflite-micro cannot run the model (no TILE, no
                            fp16-weight DEQUANTIZE) LiteRT with the ``BUILTIN_REF`` op resolver
                            (bit-identical to tflite-micro wherever both run)
zoo model (no file)         onnxruntime on msfopt's own re-export (``export_onnx``): the only
                            reference there is, and labelled so (``kind == "re-export"``)
==========================  ====================================================================

Integer-only ("fixed") requantisation of a non-TFLite model has no external oracle: the
reference is the same C built for the host (:data:`HOST_CONSISTENT`), never "bit-exact".

Every interpreter runs in a child Python process (:mod:`msfopt.oracle_engines`), so that an
interpreter that aborts (tflite-micro on an int8 softmax with a tiny input scale) raises
:class:`~msfopt.oracle_engines.OracleCrash` instead of taking ``msfopt run`` down with it.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .oracle_engines import DEFAULT_TIMEOUT, OracleCrash, OracleError, OracleUnavailable, run_engine

__all__ = ["Reference", "reference", "reexport_reference", "arbitrate", "needs_arbitration",
           "compare", "original_file", "ORT", "ORT_REEXPORT", "ONNX_REF", "TFLM", "LITERT",
           "HOST_CONSISTENT"]

ORT = "onnxruntime (original file)"
ORT_REEXPORT = "onnxruntime (msfopt re-export of the IR)"
ONNX_REF = "onnx.reference (original file)"
TFLM = "tflite-micro"
LITERT = "LiteRT BUILTIN_REF"
HOST_CONSISTENT = "host build of the same C (rq fixed: host-consistent, no external oracle)"

@dataclass
class Reference:
    """Oracle outputs for a list of inputs.

    ``ys[k]``: the output for input ``k`` in the IR's layout (H, W, C) and element type.
    ``raw[k]``: every model output for input ``k`` as the interpreter returned it.
    ``kind``: ``"external"`` (an interpreter on the user's original file), ``"re-export"``
    (onnxruntime on msfopt's own ONNX export: zoo models) or ``"host-consistent"``."""
    ys: list[np.ndarray]
    oracle: str
    kind: str
    raw: list[list[np.ndarray]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: int8 steps the generated C may differ by (1 on QDQ originals, see :func:`compare`)
    tolerance_steps: int = 0
    #: ``ys`` are the host build's outputs of the same C, themselves within float tolerance of
    #: the oracle (float32 targets reproduce the host build exactly, not the oracle's last bits)
    via_host: bool = False
    #: the original is an int8 QDQ ONNX file (``msfopt.qdq_explain`` can explain a difference)
    qdq: bool = False

    @property
    def y(self) -> np.ndarray:
        return self.ys[0]

    @property
    def label(self) -> str:
        return self.oracle + (f" [{'; '.join(self.notes)}]" if self.notes else "")


# ------------------------------------------------------------------------------------------------
# I/O mapping between the IR (NHWC, int8) and the original file
# ------------------------------------------------------------------------------------------------

def original_file(net, source=None) -> Path | None:
    """The user's original model file behind ``net`` (``source`` or ``net.source``), or None
    (zoo models, in-memory ONNX models)."""
    for s in (source, net.source):
        if s and Path(str(s)).suffix.lower() in (".onnx", ".tflite") and Path(str(s)).is_file():
            return Path(str(s))
    return None


@dataclass
class _OnnxIO:
    in_name: str
    in_type: int          # TensorProto elem type
    in_dims: list[int]
    in_layout: str        # nchw | nhwc | flat
    out_type: int
    out_dims: list[int]
    out_layout: str       # nchw | nhwc | flat-chw | flat-hwc
    has_u8: bool          # some activation (graph input or a QuantizeLinear output) is uint8
    qdq: bool = False     # float compute ops read dequantised activations (a QDQ model)
    # every graph output (the first is out_type / out_dims / out_layout): (type, dims, layout)
    outs: tuple = ()


_ONNX_VIEWS = ("Identity", "Dropout", "QuantizeLinear", "DequantizeLinear", "Flatten",
               "Reshape", "Squeeze", "Unsqueeze")


def _onnx_io(path: Path) -> _OnnxIO:
    import onnx
    from onnx import TensorProto
    m = onnx.load(str(path), load_external_data=False)
    g = m.graph
    init = {i.name: i for i in g.initializer}
    ins = [i for i in g.input if i.name not in init]
    if len(ins) != 1 or not g.output:
        raise OracleError(f"{path.name}: the ONNX oracle mapping needs one input "
                          f"({len(ins)} found)")
    vi, vo = ins[0], g.output[0]

    def dims(v):
        return [d.dim_value if d.HasField("dim_value") else 1
                for d in v.type.tensor_type.shape.dim]

    consumers: dict[str, list] = {}
    producer = {}
    for n in g.node:
        for x in n.input:
            consumers.setdefault(x, []).append(n)
        for o in n.output:
            producer[o] = n
    # input: NHWC when it reaches a Transpose(0,3,1,2) through Q/DQ/Identity (as the importer)
    in_dims = dims(vi)
    in_layout = "nchw" if len(in_dims) == 4 else "flat"
    name = vi.name
    for _ in range(8):
        cs = consumers.get(name, [])
        if len(cs) != 1:
            break
        c = cs[0]
        if c.op_type == "Transpose":
            perm = [a.ints for a in c.attribute if a.name == "perm"]
            if perm and list(perm[0]) == [0, 3, 1, 2] and len(in_dims) == 4:
                in_layout = "nhwc"
            break
        if c.op_type not in ("QuantizeLinear", "DequantizeLinear", "Identity"):
            break
        name = c.output[0]
    # output: NHWC / hwc-flattened when a Transpose(0,2,3,1) precedes it through view ops
    def out_layout_of(vo):
        out_dims = dims(vo)
        transposed = False
        name = vo.name
        for _ in range(16):
            n = producer.get(name)
            if n is None:
                break
            if n.op_type == "Transpose":
                perm = [a.ints for a in n.attribute if a.name == "perm"]
                transposed = bool(perm) and list(perm[0]) == [0, 2, 3, 1]
                break
            if n.op_type not in _ONNX_VIEWS:
                break
            name = n.input[0]
        if len(out_dims) == 4:
            return out_dims, "nhwc" if transposed else "nchw"
        return out_dims, "flat-hwc" if transposed else "flat-chw"
    outs_io = tuple((o.type.tensor_type.elem_type, *out_layout_of(o)) for o in g.output)
    _, out_dims, out_layout = outs_io[0]
    u8 = TensorProto.UINT8
    has_u8 = vi.type.tensor_type.elem_type == u8 or vo.type.tensor_type.elem_type == u8
    for n in g.node:
        if n.op_type in ("QuantizeLinear", "QLinearConv", "QLinearMatMul", "QLinearAdd",
                         "QGemm", "QLinearAveragePool", "QLinearGlobalAveragePool"):
            zps = [x for x in n.input[2:] if x in init]
            if any(init[z].data_type == u8 for z in zps):
                has_u8 = True
    outs = {o.name for o in g.output}
    qdq = any(n.op_type == "DequantizeLinear" and n.input[0] not in init and
              any(c.op_type not in ("QuantizeLinear", "Identity", "MaxPool") for c in
                  consumers.get(n.output[0], [])) and n.output[0] not in outs
              for n in g.node)
    return _OnnxIO(vi.name, vi.type.tensor_type.elem_type, in_dims, in_layout,
                   vo.type.tensor_type.elem_type, out_dims, out_layout, has_u8, qdq, outs_io)


def _ir_quant(net, t):
    q = net.quant_of(t) if net.dtype == "int8" else None
    if q is None:
        return None
    return float(q.scale[0]), int(q.zero_point[0])


def _onnx_feed(io: _OnnxIO, net, x: np.ndarray) -> np.ndarray:
    from onnx import TensorProto
    h, w, c = net.input_shape
    x = np.asarray(x).reshape(h, w, c)
    if io.in_type == TensorProto.FLOAT:
        q = _ir_quant(net, 0)
        xf = x.astype(np.float32) if q is None else \
            ((x.astype(np.float64) - q[1]) * np.float64(np.float32(q[0]))).astype(np.float32)
    elif io.in_type == TensorProto.UINT8:
        xf = (x.astype(np.int16) + 128).astype(np.uint8)
    elif io.in_type == TensorProto.INT8:
        xf = x.astype(np.int8)
    else:
        raise OracleError(f"ONNX input element type {io.in_type} is not mapped")
    if io.in_layout == "nchw":
        return np.ascontiguousarray(xf.transpose(2, 0, 1)[None])
    if io.in_layout == "nhwc":
        return np.ascontiguousarray(xf[None])
    return np.ascontiguousarray(xf.reshape(io.in_dims))


def _onnx_outs_to_ir(io: _OnnxIO, net, ys) -> np.ndarray:
    """The IR's view of one run's outputs: the output tensor (NHWC), or, for several graph
    outputs, all of them flattened back to back in the model's order (the generated code's
    output buffer)."""
    outs = net.output_ids
    if len(outs) == 1:
        return _onnx_out_to_ir(io, net, ys[0])
    if len(ys) < len(outs):
        raise OracleError(f"the ONNX model returned {len(ys)} outputs, the network has "
                          f"{len(outs)}")
    return np.concatenate([_onnx_out_to_ir(io, net, ys[k], k).reshape(-1)
                           for k in range(len(outs))])


def _onnx_out_to_ir(io: _OnnxIO, net, y: np.ndarray, k: int = 0) -> np.ndarray:
    from onnx import TensorProto
    t = net.output_ids[k]
    out_type, _, out_layout = io.outs[k] if io.outs else (io.out_type, io.out_dims, io.out_layout)
    h, w, c = net.tensor_shape(t)
    y = np.asarray(y)
    if y.size != h * w * c:
        raise OracleError(f"ONNX output has {y.size} values, the network's output {h}x{w}x{c}")
    if out_layout == "nchw" or (out_layout == "flat-chw" and h * w > 1 and c > 1):
        y = y.reshape(c, h, w).transpose(1, 2, 0)
    else:
        y = y.reshape(h, w, c)
    if net.dtype != "int8":
        return np.ascontiguousarray(y.astype(np.float32))
    if y.dtype == np.uint8:
        return np.ascontiguousarray((y.astype(np.int16) - 128).astype(np.int8))
    if y.dtype == np.int8:
        return np.ascontiguousarray(y)
    if out_type == TensorProto.FLOAT:  # DequantizeLinear at the end: quantise back, exactly
        s, z = _ir_quant(net, t)
        q = np.rint(y.astype(np.float64) / np.float64(np.float32(s))) + z
        return np.clip(q, -128, 127).astype(np.int8)
    raise OracleError(f"ONNX output dtype {y.dtype} is not mapped")


def _tflite_feed(path, net, x) -> np.ndarray:
    x = np.asarray(x).reshape(net.input_shape)
    dt = _tflite_io_types(path)[0]
    if dt == np.uint8:
        return (x.astype(np.int16) + 128).astype(np.uint8)[None]
    return x.astype(dt)[None]


def _tflite_io_types(path):
    import tflite
    buf = Path(path).read_bytes()
    g = tflite.Model.GetRootAs(buf, 0).Subgraphs(0)
    types = {3: np.uint8, 9: np.int8, 0: np.float32}
    ti = g.Tensors(int(g.Inputs(0))).Type()
    to = g.Tensors(int(g.Outputs(0))).Type()
    return types.get(ti, np.int8), types.get(to, np.int8)


def _tflite_outs_to_ir(net, ys) -> np.ndarray:
    """One run's outputs as the IR sees them: the output tensor, or for several model outputs
    all of them flattened back to back in the model's order (the generated output buffer)."""
    outs = net.output_ids
    if len(outs) == 1:
        return _tflite_out_to_ir(net, ys[0])
    if len(ys) < len(outs):
        raise OracleError(f"the TFLite model returned {len(ys)} outputs, the network has "
                          f"{len(outs)}")
    return np.concatenate([_tflite_out_to_ir(net, ys[k], outs[k]).reshape(-1)
                           for k in range(len(outs))])


def _tflite_out_to_ir(net, y, t: int | None = None) -> np.ndarray:
    y = np.asarray(y)
    shape = net.tensor_shape(net.n_layers if t is None else t)
    if y.dtype == np.uint8:
        y = (y.astype(np.int16) - 128).astype(np.int8)
    return np.ascontiguousarray(y.reshape(shape))


# ------------------------------------------------------------------------------------------------
# public API
# ------------------------------------------------------------------------------------------------

def _as_list(xs) -> list[np.ndarray]:
    if isinstance(xs, np.ndarray):
        return [xs]
    return [np.asarray(x) for x in xs]


def reexport_reference(net, xs, timeout: float = DEFAULT_TIMEOUT) -> Reference:
    """onnxruntime on msfopt's own NHWC re-export of the IR (``export_onnx.to_onnx``): the only
    reference for zoo models, an extra check otherwise."""
    import onnx
    from .export_onnx import to_onnx
    xs = _as_list(xs)
    mode = "float" if net.dtype == "float32" else "int8"
    try:
        model = to_onnx(net, mode=mode, nhwc_io=True)
    except ValueError as exc:   # an op the re-export does not write (the graph ops)
        raise OracleError(f"not re-exported: {exc}") from None
    dt = np.float32 if net.dtype == "float32" else np.int8
    shape = net.tensor_shape(net.n_layers)
    with tempfile.TemporaryDirectory(prefix="msfopt-reexport-") as td:
        p = Path(td) / "reexport.onnx"
        onnx.save(model, str(p))
        raw = run_engine("onnxruntime", p, [[np.asarray(x, dt).reshape(net.input_shape)[None]]
                                            for x in xs], timeout=timeout)
    return Reference([np.ascontiguousarray(r[0].reshape(shape)) for r in raw], ORT_REEXPORT,
                     "re-export", raw)


def _onnx_reference(path: Path, net, xs, engine: str, timeout: float) -> Reference:
    io = _onnx_io(path)
    raw = run_engine(engine, path, [[_onnx_feed(io, net, x)] for x in xs], timeout=timeout)
    ys = [_onnx_outs_to_ir(io, net, r) for r in raw]
    ref = Reference(ys, ORT if engine == "onnxruntime" else ONNX_REF, "external", raw)
    if io.qdq and net.dtype == "int8":
        ref.qdq = True
        ref.tolerance_steps = 1
        ref.notes.append("QDQ model: its float ops between DequantizeLinear and QuantizeLinear "
                         "round near-ties unlike integer arithmetic; 1 step allowed (where "
                         "onnxruntime runs convolutions in float32, such a tie can grow through "
                         "later layers: up to 10 steps on the QDQ MobileNetV3's logits, whose "
                         "layers are each exact, tests/test_qdq_models.py)")
    return ref


def _tflite_reference(path: Path, net, xs, timeout: float, engine: str | None) -> Reference:
    feeds = [[_tflite_feed(path, net, x)] for x in xs]
    notes = []
    if engine in (None, "tflite-micro"):
        try:
            raw = run_engine("tflite-micro", path, feeds, timeout=timeout)
            return Reference([_tflite_outs_to_ir(net, r) for r in raw], TFLM, "external", raw)
        except OracleCrash:
            raise
        except OracleUnavailable as exc:
            if engine == "tflite-micro":
                raise
            notes.append(str(exc).replace("reference interpreter ", ""))
    raw = run_engine("litert", path, feeds, timeout=timeout)
    return Reference([_tflite_outs_to_ir(net, r) for r in raw], LITERT, "external", raw, notes)


def reference(net, xs, source=None, *, rq: str | None = None, engine: str | None = None,
              host_exe=None, gen=None, timeout: float = DEFAULT_TIMEOUT) -> Reference:
    """The reference output(s) for inputs ``xs`` (one NHWC array or a list) of ``net``.

    ``source``: the original model file (defaults to ``net.source``). ``rq``: the generated
    code's requantisation; ``"fixed"`` on a non-TFLite model has no external oracle and needs
    ``gen`` (the :class:`~msfopt.mcu_runtime.codegen.Generated`) to build the host reference.
    ``engine`` forces an interpreter (``"onnx.reference"``, ``"tflite-micro"``, ``"litert"``)."""
    xs = _as_list(xs)
    if source and Path(str(source)).suffix.lower() in (".onnx", ".tflite") and \
            not Path(str(source)).is_file():
        raise OracleError(f"original model file not found: {source}")
    path = original_file(net, source)
    fixed_model = net.requant == "fixed"   # TFLite models: their oracle computes fixed point
    if rq == "fixed" and not fixed_model:
        if gen is None:
            raise ValueError("rq='fixed' on a non-TFLite model: pass gen= (host reference)")
        from .mcu_runtime.hostrun import build_host, run_host
        exe = host_exe or build_host(gen)
        return Reference([run_host(gen, exe, x) for x in xs], HOST_CONSISTENT, "host-consistent")
    if path is None:
        if fixed_model:
            raise OracleError("the TFLite model's original file is needed for its reference")
        ref = reexport_reference(net, xs, timeout=timeout)
        ref.notes.append("no original file (zoo or in-memory model): the re-export is the only "
                         "reference")
        return ref
    if path.suffix.lower() == ".tflite":
        return _tflite_reference(path, net, xs, timeout, engine)
    return _onnx_reference(path, net, xs, engine or "onnxruntime", timeout)


def needs_arbitration(net, ref: Reference, source=None) -> bool:
    """True for onnxruntime on an original ONNX file with uint8 activations (int8 network): the
    case :func:`arbitrate` handles."""
    if ref.oracle != ORT or net.dtype != "int8":
        return False
    path = original_file(net, source)
    return path is not None and _onnx_io(path).has_u8


def arbitrate(net, xs, ys_c, ref: Reference, source=None,
              timeout: float = DEFAULT_TIMEOUT) -> Reference:
    """Where onnxruntime on an original ONNX file with uint8 activations differs from the
    generated C (``ys_c``), onnxruntime's x86 u8s8 kernels may have saturated an int16 pair sum
    (2*255*127 -> 32,767): re-run the original file with ``onnx.reference.ReferenceEvaluator``
    and return that reference (with a note saying so). Other references are returned as is."""
    xs, ys_c = _as_list(xs), _as_list(ys_c)
    if not needs_arbitration(net, ref, source):
        return ref
    if all(np.array_equal(a, b) for a, b in zip(ys_c, ref.ys)):
        return ref
    path = original_file(net, source)
    n_ort = sum(int(np.sum(a != b)) for a, b in zip(ys_c, ref.ys))
    try:
        arb = _onnx_reference(path, net, xs, "onnx.reference", timeout)
    except OracleUnavailable as exc:
        ref.notes.append(f"uint8 x int8 model, {n_ort} output bytes differ from onnxruntime; not "
                         f"arbitrated: {str(exc).replace('reference interpreter ', '')}")
        return ref
    arb.notes.append(f"uint8 x int8 model: onnxruntime's x86 u8s8 kernels saturate int16 pair "
                     f"sums; onnxruntime differs from the C in {n_ort} output bytes, arbitrated "
                     f"with onnx.reference")
    return arb


def compare(y: np.ndarray, ref, dtype: str, tolerance_steps: int | None = None) -> tuple[bool, str]:
    """(equal?, one-line figure): int8 bit for bit (or within ``tolerance_steps``, default the
    :class:`Reference`'s: 1 step on QDQ originals), float32 within rtol 1e-4 (atol 1e-4 of the
    largest magnitude). ``ref``: an array or a :class:`Reference` (its first output)."""
    if isinstance(ref, Reference):
        tol = ref.tolerance_steps if tolerance_steps is None else tolerance_steps
        ref = ref.y
    else:
        tol = tolerance_steps or 0
    y, ref = np.asarray(y), np.asarray(ref)
    if dtype == "float32":
        atol = 1e-5 + 1e-4 * float(np.max(np.abs(ref))) if ref.size else 1e-5
        err = float(np.max(np.abs(y - ref) / (np.abs(ref) + atol))) if ref.size else 0.0
        return bool(np.allclose(y, ref, rtol=1e-4, atol=atol)), f"max relative error {err:.2e}"
    n = int(np.sum(y != ref))
    d = int(np.max(np.abs(y.astype(np.int16) - ref.astype(np.int16)))) if n else 0
    if n == 0:
        return True, "bit-exact"
    if d <= tol:
        return True, f"within {tol} step ({n} of {y.size} bytes differ by {d})"
    return False, f"{n} mismatching bytes (max {d} steps)"
