"""Cycle model: estimated cycles (executed instructions, as QEMU counts them) of a block schedule.

Linear in per-layer-kind coefficients; the generic defaults are a guess, MCU profiles carry tables
fitted from measured micro-models (``scripts/calibrate.py`` -> ``msfopt/data/mcus.toml``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .ir import ACT, ADD, CONCAT, CONV, CONVT, DW, MUL, RESHAPE, RESIZE, SHUFFLE, SLICE, Network

if TYPE_CHECKING:  # pragma: no cover
    from .schedule import BlockSchedule

#: layer kinds of the cycle model (pools split: an average pool requantises every output, a max
#: pool does not)
KINDS = ("conv", "pointwise", "dw", "maxpool", "avgpool", "gap", "dense")


def pipelined(s: "BlockSchedule") -> bool:
    """Whether the block's layers run inside a column / patch pipeline (vs whole tensors)."""
    return s.mode not in ("unfused", "inplace")


#: kinds whose kernels requantise every output (max pooling only compares)
REQUANT_KINDS = ("conv", "pointwise", "dw", "avgpool", "gap", "dense")


def unclamped(layer) -> bool:
    """Whether a layer requantises its outputs with no clamping activation."""
    return layer.act == "none" and CycleModel.kind(layer) in REQUANT_KINDS


def requantises(net: Network, layer) -> bool:
    """Whether ``layer`` of ``net`` requantises each output (an integer network's conv,
    depthwise, average pool, GAP and dense layers)."""
    return net.dtype != "float32" and CycleModel.kind(layer) in REQUANT_KINDS


#: the per-output term of a float-requantising kind (the pools' float paths differ most)
FLOAT_RQ_TERM = {"avgpool": "avgpool_float_out", "gap": "gap_float_out"}


def rq_terms(net: Network, layer, rq: str) -> tuple[str, ...]:
    """The per-output terms of ``layer``'s requantisation in arithmetic ``rq`` ("float" or
    "fixed"), each counted once per output: ``fixed_rq_out`` in fixed point; in float
    ``float_rq_out`` (``avgpool_float_out`` / ``gap_float_out`` for the pools, whose float
    scaling and rounding cost the most without an FPU) plus ``unclamped_out`` where no
    activation clamps (the soft-float rounding's saving on clamped outputs exists only in
    float)."""
    if not requantises(net, layer):
        return ()
    if rq == "fixed":
        return ("fixed_rq_out",)
    base = FLOAT_RQ_TERM.get(CycleModel.kind(layer), "float_rq_out")
    return (base, "unclamped_out") if unclamped(layer) else (base,)


def _interior(n_in: int, k: int, s: int, pad: int, n_out: int) -> int:
    """Outputs o in [0, n_out) of one axis whose window [o*s - pad, o*s - pad + k) lies inside
    [0, n_in) (the fast kernels' interior; the others run the reference loop)."""
    lo = -(-pad // s)                              # first o with o*s >= pad
    hi = (n_in + pad - k) // s + 1 if n_in + pad >= k else 0   # o*s - pad + k <= n_in
    return max(0, min(hi, n_out) - max(lo, 0))


#: depthwise kernels with more taps, or wider than DW_FAST_MAX_KW columns, run the reference
#: loop everywhere (msf_s8_dwfast.c's MSF_DW_MAX_TAPS / MSF_DW_MAX_KW; tests/test_calibrate.py
#: reads the C source and checks that they agree)
DW_FAST_MAX_TAPS = 49
DW_FAST_MAX_KW = 8


def border_fraction(layer) -> float:
    """Fraction of a k x k conv / depthwise layer's output pixels off the fast kernels' interior
    path: those whose window is clipped by the input border (msf_conv2d_s8 sends them to the
    reference loop, msf_dwconv2d_s8 to short runs of their own), and every pixel of a depthwise
    kernel above DW_FAST_MAX_TAPS taps or DW_FAST_MAX_KW columns (reference loop).  0 for 1 x 1
    layers."""
    if layer.op not in (CONV, DW) or (layer.kh, layer.kw) == (1, 1):
        return 0.0
    if layer.op == DW and (layer.kh * layer.kw > DW_FAST_MAX_TAPS or layer.kw > DW_FAST_MAX_KW):
        return 1.0
    (h, w, _), (ho, wo, _) = layer.in_shape, layer.out_shape
    iy = _interior(h, layer.ekh, layer.sh, layer.pad[0], ho)
    ix = _interior(w, layer.ekw, layer.sw, layer.pad[1], wo)
    return 1.0 - (iy * ix) / float(ho * wo)


def wide_dw(layer) -> bool:
    """Whether a depthwise layer's window has more than 3 x 3 taps: in the column / patch
    pipelines' short calls the fast kernels run 3 x 3 windows through a path of their own and
    larger ones (5 x 5, 7 x 7) through the generic tap list (``fused_dw_wide_mac``)."""
    return layer.op == DW and layer.kh * layer.kw > 9


def layer_runs(layer, s: "BlockSchedule", n_layers_block: int, macs: float) -> float:
    """Runs of output pixels a conv / depthwise layer's fast kernel starts in block ``s`` (each
    run loads the requantisation parameters and starts accumulators per output channel):
    unfused, one per output row (one in all for a stride-1 1 x 1 conv over whole rows); in the
    column pipelines one per kernel call -- tile rows x the layer's output columns; recompute:
    each patch's rows, i.e. the output rows x the patch columns -- scaled by the recomputed
    work, and never fewer than unfused (so a fused layer costs at least its unfused self, as
    msfopt.modes.GrowthBound assumes)."""
    ho, wo, _ = layer.out_shape
    full_rows = layer.op == CONV and (layer.kh, layer.kw, layer.sh, layer.sw) == (1, 1, 1, 1)
    unfused = 1.0 if full_rows else float(ho)
    if not pipelined(s):
        return unfused
    scale = macs / layer.macs if layer.macs else 1.0
    if s.mode == "recompute":
        n_c = s.calls / max(1, n_layers_block * s.tile_rows)   # patch columns
        est = ho * n_c * scale
    else:
        est = s.tile_rows * wo * scale
    return max(unfused, est)


def conv_taps(layer, macs: float) -> float:
    """Kernel taps a k x k convolution visits for ``macs`` multiply-accumulates (one inner loop
    over its input channels each)."""
    return macs / layer.in_shape[2]


@dataclass(frozen=True)
class CycleModel:
    """Estimated cycles of a block:

        sum over layers of  MACs x cpm[kind] + outputs x (cpo[kind] + fused_out if pipelined)
        + add elements x (add_per_elem, or fixed_add_elem in fixed point)
        + kernel calls x per_call + copied bytes x copy_per_byte

    where outputs include recomputed ones (layer MACs / MACs per output) and "pipelined" means
    the layer runs inside a column or patch pipeline (every mode but ``unfused`` and
    ``inplace``): each output element produced there costs ``fused_out`` more (the ring and view
    index arithmetic; about 70 instructions on Xtensa LX106, under 1 on Cortex-M4).  On cores
    without an FPU the float requantisation's soft-float rounding is cheaper for outputs that
    clamp, so each output of a requantising layer with no clamping activation (``act == "none"``)
    costs ``unclamped_out`` more (75-105 instructions on Cortex-M0/M3 and RV32, 0 with an FPU).
    Each requantised output also costs ``float_rq_out`` (pools: ``avgpool_float_out``,
    ``gap_float_out``) or ``fixed_rq_out`` by the arithmetic the code generator emits
    (:func:`rq_terms`: onnxruntime's float requantisation, or TFLite Micro's fixed point,
    whose lean per-channel path is cheaper on most cores); the network's
    own (``Network.requant``) unless the model is pinned to one (``requant``: integer-only
    cores generate fixed point for every model).
    A k x k convolution also pays ``conv_tap`` per kernel tap of every output (MACs / C_in: its
    inner loop over the input channels starts once per tap; about 15 instructions on Cortex-M).
    The fast kernels add three terms: ``conv_border`` / ``dw_border`` per MAC of a k x k conv /
    depthwise output whose window the input border clips (:func:`border_fraction`: those run
    the reference loop), and ``run_ch`` per output channel of every run of output pixels a conv
    / depthwise kernel starts (:func:`layer_runs`; accumulator starts, requantisation
    parameters, and the per-run weight sums where the generator does not fold them into the
    bias).  Inside a column / patch pipeline each MAC of a k x k conv / depthwise layer costs
    ``fused_conv_mac`` / ``fused_dw_mac`` more (windows wrapping around the column rings take
    split spans / per-pixel tap lists), a depthwise window above 3 x 3 ``fused_dw_wide_mac``
    more again (:func:`wide_dw`).  A term whose regressor the current kernels never
    exercise fits to 0.
    The graph ops are priced by the same coefficients: a standalone activation or multiply like
    the add (per output element), a concat / slice / channel shuffle / resize as copied bytes,
    a transposed conv as a conv (their own calibration is still to do).  The defaults are a generic guess; MCU profiles carry calibrated
    tables (``scripts/calibrate.py``)."""
    name: str = "generic"
    cpm: dict = field(default_factory=lambda: {
        "conv": 6.0, "pointwise": 5.0, "dw": 8.0, "maxpool": 4.0, "avgpool": 4.0, "gap": 3.0,
        "dense": 4.0})
    add_per_elem: float = 12.0
    per_call: float = 150.0
    cpo: dict = field(default_factory=dict)
    copy_per_byte: float = 2.0
    fused_out: float = 0.0
    unclamped_out: float = 0.0
    conv_tap: float = 0.0
    conv_border: float = 0.0
    dw_border: float = 0.0
    run_ch: float = 0.0
    fused_conv_mac: float = 0.0
    fused_dw_mac: float = 0.0
    fused_dw_wide_mac: float = 0.0
    float_rq_out: float = 0.0
    avgpool_float_out: float = 0.0
    gap_float_out: float = 0.0
    fixed_rq_out: float = 0.0
    fixed_add_elem: float = 12.0
    #: the requantisation the generated code uses for every network (None: each network's own)
    requant: str | None = None

    #: calibrated table keys (mcus.toml [targets.*.cycles]) -> fields; KINDS / KINDS_out apart
    SCALARS = {"add_per_elem": "add_per_elem", "overhead_per_call": "per_call",
               "copy_per_byte": "copy_per_byte", "fused_out": "fused_out",
               "unclamped_out": "unclamped_out", "conv_tap": "conv_tap",
               "conv_border": "conv_border", "dw_border": "dw_border", "run_ch": "run_ch",
               "fused_conv_mac": "fused_conv_mac", "fused_dw_mac": "fused_dw_mac",
               "fused_dw_wide_mac": "fused_dw_wide_mac",
               "float_rq_out": "float_rq_out", "avgpool_float_out": "avgpool_float_out",
               "gap_float_out": "gap_float_out", "fixed_rq_out": "fixed_rq_out",
               "fixed_add_elem": "fixed_add_elem"}

    @classmethod
    def from_table(cls, name: str, table: dict | None,
                   requant: str | None = None) -> "CycleModel":
        """The model of a calibrated table (the ``[targets.*.cycles]`` keys of mcus.toml; a
        missing key keeps the generic default); ``requant`` pins the requantisation."""
        c = table or {}
        base = cls()
        cpm = {k: float(c.get(k, c.get("pool", v) if k in ("maxpool", "avgpool") else v))
               for k, v in base.cpm.items()}
        cpo = {k: float(c[f"{k}_out"]) for k in KINDS if f"{k}_out" in c}
        kw = {f: float(c.get(key, getattr(base, f))) for key, f in cls.SCALARS.items()}
        if "fixed_add_elem" not in c:   # a table fitted before the two arithmetics were apart
            kw["fixed_add_elem"] = kw["add_per_elem"]
        return cls(name=name, cpm=cpm, cpo=cpo, requant=requant, **kw)

    @staticmethod
    def kind(layer) -> str:
        if layer.op in (CONV, CONVT):   # a transposed conv priced as a conv (not calibrated)
            return "pointwise" if layer.kernel == (1, 1) and layer.op == CONV else "conv"
        return layer.op

    def layer_table(self, net: Network) -> list[tuple]:
        """Per layer, the constants :meth:`cycles` reads (computed once per network; the
        arithmetic on them is the same, so the result is identical bit for bit)."""
        return [self._entry(net, layer) for layer in net.layers]

    def _entry(self, net: Network, layer) -> tuple:
        h, w, c = layer.out_shape
        if layer.op in (ADD, ACT, MUL):
            # elementwise: priced like the residual add (not yet calibrated apart from it), in
            # the arithmetic the code requantises with
            fixed = net.dtype != "float32" and (self.requant or net.requant) == "fixed"
            return (0, h * w * c * (self.fixed_add_elem if fixed else self.add_per_elem))
        if layer.op in (CONCAT, SLICE, SHUFFLE, RESIZE, RESHAPE):   # data movement
            return (0, h * w * c * net.elem_bytes * self.copy_per_byte)
        k = self.kind(layer)
        border = border_fraction(layer) * (self.conv_border if k == "conv" else
                                           self.dw_border if k == "dw" else 0.0)
        run_ch = self.run_ch * c if k in ("conv", "pointwise", "dw") and self.run_ch else 0.0
        fmac = self.fused_conv_mac if k == "conv" else (self.fused_dw_mac if k == "dw" else 0.0)
        if k == "dw" and wide_dw(layer):
            fmac += self.fused_dw_wide_mac
        rq = 0.0
        for term in rq_terms(net, layer, self.requant or net.requant):
            rq += getattr(self, term)
        return (1, self.cpm[k] + border, k == "conv", layer.in_shape[2], layer.macs_per_output(),
                self.cpo.get(k, 0.0), rq, run_ch, fmac)

    def cycles_bulk(self, net: Network, table: list[tuple], rows: dict, seq: dict):
        """:meth:`cycles` of many pipelined blocks at once, vectorised over blocks with the same
        floating-point operations in the same order (per block, layer by layer: MACs x (cpm +
        the fused MAC surcharge), taps x conv_tap, runs x run_ch, outputs x (cpo + fused_out +
        unclamped_out); then calls and copies), so each value equals the per-schedule one bit
        for bit.  ``rows``: arrays "mode" (index into ``modes``), "tile_rows", "calls", "copy",
        "seq", "seqlen" (each block's slice of ``seq``); ``seq``: arrays "layer" and "macs" per
        (block, layer).  Only for blocks of the column / patch pipelines (``pipelined``); the
        mode names are ``rows["modes"]``.  Returns int64 cycles, or None for a table this
        vectorisation does not know (the caller then uses :meth:`cycles`)."""
        import numpy as np
        nrow = len(rows["calls"])
        if nrow == 0:
            return np.zeros(0, dtype=np.int64)
        if any((t[0] != 0 and len(t) != 9) or (t[0] == 0 and len(t) != 2) for t in table):
            return None
        if any(rows["modes"][int(k)] in ("unfused", "inplace") for k in np.unique(rows["mode"])):
            return None
        lay, m = seq["layer"], seq["macs"]
        z = (0.0,) * 9
        full = [t if t[0] != 0 else z for t in table]
        kind0 = np.array([t[0] == 0 for t in table])
        const = np.array([t[1] if t[0] == 0 else 0.0 for t in table], dtype=np.float64)
        cpm = np.array([t[1] for t in full], dtype=np.float64)
        is_conv = np.array([t[0] != 0 and bool(t[2]) for t in table])
        c_in = np.array([t[3] if t[0] != 0 else 1 for t in table], dtype=np.float64)
        mpo = np.array([t[4] for t in full], dtype=np.float64)
        coef = np.array([(t[5] + self.fused_out) + t[6] for t in full], dtype=np.float64)
        run_ch = np.array([t[7] for t in full], dtype=np.float64)
        fmac = np.array([t[8] for t in full], dtype=np.float64)
        mf = m.astype(np.float64)
        k0 = kind0[lay]
        t1 = np.where(k0, const[lay], np.where(fmac[lay] != 0, mf * (cpm[lay] + fmac[lay]),
                                               mf * cpm[lay]))
        t2 = np.where(is_conv[lay] & ~k0, (mf / c_in[lay]) * self.conv_tap, 0.0)
        start, length = rows["seq"], rows["seqlen"]
        rc = run_ch[lay]
        has_rc = bool(rc.any())
        if has_rc:                # layer_runs per (block, layer), evaluated in the sweep below
            ho = np.array([L.out_shape[0] for L in net.layers], dtype=np.float64)[lay]
            wo = np.array([L.out_shape[1] for L in net.layers], dtype=np.int64)[lay]
            lm = np.array([L.macs for L in net.layers], dtype=np.int64)[lay]
            full_rows = np.array([L.op == CONV and (L.kh, L.kw, L.sh, L.sw) == (1, 1, 1, 1)
                                  for L in net.layers])[lay]
            unf = np.where(full_rows, 1.0, ho)
            scale = np.where(lm != 0, mf / np.where(lm != 0, lm, 1).astype(np.float64), 1.0)
            rec = np.array([mname == "recompute" for mname in rows["modes"]])[rows["mode"]]
            tr = rows["tile_rows"].astype(np.int64)
            n_c = rows["calls"].astype(np.float64) / np.maximum(
                1, length.astype(np.int64) * tr).astype(np.float64)

        def t_run(rws, at):
            est = np.where(rec[rws], (ho[at] * n_c[rws]) * scale[at],
                           (tr[rws] * wo[at]).astype(np.float64) * scale[at])
            return np.where(rc[at] != 0, rc[at] * np.maximum(unf[at], est), 0.0)

        pos = mpo[lay] > 0
        t3 = np.where(pos & ~k0, (mf / np.where(pos, mpo[lay], 1.0)) * coef[lay], 0.0)
        order = np.argsort(-length, kind="stable")
        srt_start, srt_len = start[order], length[order]
        neg = -srt_len
        total = np.zeros(nrow, dtype=np.float64)
        for k in range(int(srt_len[0])):
            act = int(np.searchsorted(neg, -k, side="left"))   # blocks longer than k
            rws = order[:act]
            at = srt_start[:act] + k
            total[rws] += t1[at]
            total[rws] += t2[at]
            if has_rc:
                total[rws] += t_run(rws, at)
            total[rws] += t3[at]
        total += (rows["calls"].astype(np.float64) * self.per_call
                  + rows["copy"].astype(np.float64) * self.copy_per_byte)
        return np.rint(total).astype(np.int64)

    def cycles(self, net: Network, s: "BlockSchedule", table: list[tuple] | None = None) -> int:
        """Estimated cycles of block ``s``; ``table`` is :meth:`layer_table` of ``net`` (built
        here when not given)."""
        total = 0.0
        extra = self.fused_out if pipelined(s) else 0.0
        conv_tap = self.conv_tap
        n_block = s.last - s.first + 1
        extra_on = pipelined(s)
        for l, m in zip(range(s.first, s.last + 1), s.layer_macs):
            t = table[l] if table is not None else self._entry(net, net.layers[l])
            if t[0] == 0:
                total += t[1]
                continue
            _, cpm, is_conv, c_in, mpo, cpo, uncl, run_ch, fmac = t
            total += m * (cpm + fmac) if fmac and extra_on else m * cpm
            if is_conv:
                total += m / c_in * conv_tap
            if run_ch:
                total += run_ch * layer_runs(net.layers[l], s, n_block, m)
            if mpo > 0:
                total += (m / mpo) * (cpo + extra + uncl)
        total += s.calls * self.per_call + s.copy_bytes * self.copy_per_byte
        return int(round(total))
