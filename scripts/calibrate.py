#!/usr/bin/env python3
"""Calibrate the latency model of each MCU family from measured instruction counts.

For each family a representative core runs a fixed suite of generated micro-models under QEMU
(single kernels of several sizes -- conv kxk, pointwise, depthwise, pool, GAP, dense, residual
add -- plus fused H-cache blocks whose many kernel calls expose the per-call overhead), counting
the instructions executed inside ``msf_model_run``.  The model

    est = sum_layers MACs x c_kind + outputs x (c_kind_out + fused_out if pipelined
                                               + unclamped_out if no clamping activation
                                               + float_rq_out / fixed_rq_out by the arithmetic,
                                                 pools: avgpool_ / gap_float_out)
          + add elements x (add_per_elem float / fixed_add_elem fixed point)
          + kernel calls x overhead_per_call
          + copied bytes x copy_per_byte + k x k conv taps x conv_tap
          + border MACs of k x k conv / depthwise x conv_border / dw_border
          + runs x output channels of conv / depthwise kernels x run_ch
          + k x k conv / depthwise MACs in pipelines x fused_conv_mac / fused_dw_mac
            (+ fused_dw_wide_mac for a depthwise window above 3 x 3)
                                                            (msfopt.cycles.CycleModel)

is linear in its coefficients; they are fitted by non-negative least squares on the *relative*
error (each micro-model weighs the same).  A few held-out models (not in the fit) check it.

"cycles" are executed guest instructions: QEMU counts instructions, not cycles.

    python scripts/calibrate.py                 # all families, writes msfopt/data/mcus.toml
    python scripts/calibrate.py --family arm-m0 --dry-run
    python scripts/calibrate.py --json out.json # also dump the measurements
    python scripts/calibrate.py --refit out.json --dry-run   # refit them, no QEMU runs

Every micro-model is also checked bit-exact against its reference and for arena == predicted.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from msfopt.ir import ADD, AVGPOOL, CONV, DENSE, DW, GAP, MAXPOOL, Layer, Network, window_layer  # noqa: E402
from msfopt.cycles import (KINDS, CycleModel, border_fraction, conv_taps, layer_runs,  # noqa: E402
                           pipelined, rq_terms, wide_dw)

TOML = ROOT / "msfopt" / "data" / "mcus.toml"

# family -> (representative target it is measured on, targets that receive the coefficients)
FAMILIES = {
    "arm-m0": ("cortex-m0", ["cortex-m0"]),
    "arm-m3": ("cortex-m3", ["cortex-m3"]),                       # no FPU: soft-float requant
    "arm-m4": ("cortex-m4", ["cortex-m4", "cortex-m33"]),
    "arm-m7": ("cortex-m7", ["cortex-m7"]),     # dual-issue scheduling: GCC emits other code
    "rv32": ("rv32imac", ["rv32imac", "sifive_e", "rv32imc"]),
    "xtensa": ("xtensa-lx106", ["xtensa-lx106"]),
}
FEATURES = [*KINDS, *(f"{k}_out" for k in KINDS), "add_per_elem", "overhead_per_call",
            "copy_per_byte", "fused_out", "unclamped_out", "conv_tap", "conv_border",
            "dw_border", "run_ch", "fused_conv_mac", "fused_dw_mac", "fused_dw_wide_mac",
            "float_rq_out",
            "avgpool_float_out", "gap_float_out", "fixed_rq_out", "fixed_add_elem"]


# --------------------------------------------------------------------------- micro-models
def _net(name, layers):
    return Network(name, tuple(layers[0].in_shape), list(layers)).validate()


def _unfused(net):
    return [(i, i, "unfused", 0) for i in range(net.n_layers)]


def micro_suite() -> list[tuple[str, Network, list]]:
    """(name, network, blocks): the fit set.  Sizes span the zoo's layers (3..80 px,
    3..480 channels) but stay small enough that each run takes ~1 s under QEMU and that
    output + arena (< 11 KB) and weights fit every target (cortex-m0: 16 KiB RAM)."""
    W = window_layer
    out = []

    def single(name, layer):
        n = _net(name, [layer])
        out.append((name, n, _unfused(n)))

    # conv kxk (stem-like and inner), strides 1 and 2
    single("conv3_s2_c3", W(CONV, (32, 32, 3), 16, 3, 2, 1, act="relu6"))
    single("conv3_c8", W(CONV, (16, 16, 8), 16, 3, 1, 1, act="relu"))
    single("conv3_c32", W(CONV, (8, 8, 32), 32, 3, 1, 1))
    single("conv5_c8", W(CONV, (12, 12, 8), 8, 5, 1, 2))
    single("conv3_s2_c16", W(CONV, (20, 20, 16), 24, 3, 2, 1, act="relu6"))
    # pointwise: channel counts 8..240
    single("pw_c8", W(CONV, (20, 20, 8), 16, 1, 1, 0, act="relu6"))
    single("pw_c16", W(CONV, (14, 14, 16), 48, 1, 1, 0))
    single("pw_c48", W(CONV, (10, 10, 48), 16, 1, 1, 0))
    single("pw_c96", W(CONV, (6, 6, 96), 64, 1, 1, 0, act="relu6"))
    single("pw_c240", W(CONV, (4, 4, 240), 48, 1, 1, 0))
    single("pw_c24_big", W(CONV, (8, 8, 24), 144, 1, 1, 0, act="relu6"))
    # depthwise 3/5/7, strides 1/2
    single("dw3_c32", W(DW, (16, 16, 32), None, 3, 1, 1, act="relu6"))
    single("dw3_c8", W(DW, (24, 24, 8), None, 3, 1, 1, act="relu6"))     # a stem's depthwise
    single("dw5_s2_c48", W(DW, (12, 12, 48), None, 5, 2, 2, act="relu6"))
    # tiny maps with many channels: every output pixel is a border pixel (VWW's last layers)
    single("dw3_s2_c128_6x6", W(DW, (6, 6, 128), None, 3, 2, 1, act="relu6"))
    single("dw3_c256_3x3", W(DW, (3, 3, 256), None, 3, 1, 1, act="relu6"))
    single("dw3_s2_c48", W(DW, (16, 16, 48), None, 3, 2, 1, act="relu6"))
    single("dw5_c48", W(DW, (10, 10, 48), None, 5, 1, 2, act="relu6"))
    single("dw7_c24", W(DW, (12, 12, 24), None, 7, 1, 3, act="relu6"))
    single("dw7_s2_c96", W(DW, (10, 10, 96), None, 7, 2, 3, act="relu6"))
    single("dw3_c144", W(DW, (6, 6, 144), None, 3, 1, 1))
    # pools
    single("maxpool2", W(MAXPOOL, (16, 16, 32), None, 2, 2, 0))
    single("avgpool3", W(AVGPOOL, (12, 12, 24), None, 3, 1, 1))
    single("maxpool3_s2", W(MAXPOOL, (20, 20, 16), None, 3, 2, 1))
    # GAP + dense
    for nm, shp in (("gap_7x7x64", (7, 7, 64)), ("gap_3x3x160", (3, 3, 160)),
                    ("gap_12x12x32", (12, 12, 32))):
        single(nm, Layer(op=GAP, in_shape=shp, out_shape=(1, 1, shp[2])))
    single("dense_64x10", Layer(op=DENSE, in_shape=(1, 1, 64), out_shape=(1, 1, 10)))
    single("dense_256x100", Layer(op=DENSE, in_shape=(1, 1, 256), out_shape=(1, 1, 100)))
    single("dense_800x32", Layer(op=DENSE, in_shape=(1, 1, 800), out_shape=(1, 1, 32)))
    # residual adds (after a pointwise conv: add(conv(x), x))
    for nm, shp in (("add_8x8x16", (8, 8, 16)), ("add_12x12x32", (12, 12, 32))):
        c = W(CONV, shp, shp[2], 1, 1, 0)
        a = Layer(op=ADD, in_shape=shp, out_shape=shp, srcs=(1, 0))
        n = _net(nm, [c, a])
        out.append((nm, n, _unfused(n)))
    # fused H-cache blocks (many kernel calls): MBConv-like and conv chains, tiles 1 and 2
    def fused(name, layers, tile):
        n = _net(name, layers)
        out.append((name, n, [(0, n.n_layers - 1, "hcache", tile)]))

    fused("hc_pw_dw_pw_t1", [W(CONV, (16, 16, 8), 24, 1, 1, 0, act="relu6"),
                             W(DW, (16, 16, 24), None, 3, 1, 1, act="relu6"),
                             W(CONV, (16, 16, 24), 8, 1, 1, 0)], 1)
    fused("hc_pw_dw_pw_t2", [W(CONV, (16, 16, 8), 24, 1, 1, 0, act="relu6"),
                             W(DW, (16, 16, 24), None, 3, 1, 1, act="relu6"),
                             W(CONV, (16, 16, 24), 8, 1, 1, 0)], 2)
    fused("hc_conv_dw_t1", [W(CONV, (20, 20, 3), 8, 3, 2, 1, act="relu6"),
                            W(DW, (10, 10, 8), None, 3, 1, 1, act="relu6")], 1)
    fused("hc_dw5_pw_t1", [W(DW, (12, 12, 16), None, 5, 1, 2, act="relu6"),
                           W(CONV, (12, 12, 16), 16, 1, 1, 0)], 1)
    fused("hc_dw7s2_pw_t1", [W(CONV, (14, 14, 8), 32, 1, 1, 0, act="relu6"),
                             W(DW, (14, 14, 32), None, 7, 2, 3, act="relu6"),
                             W(CONV, (7, 7, 32), 12, 1, 1, 0)], 1)
    fused("hc_pool_conv_t1", [W(MAXPOOL, (16, 16, 8), None, 2, 2, 0),
                              W(CONV, (8, 8, 8), 8, 3, 1, 1, act="relu")], 1)
    out.extend(mode_suite())
    out.extend(fixed_suite(out))
    return out


#: micro-models also measured with TFLite Micro's fixed-point requantisation (TFLite imports
#: generate it, and integer-only cores every model): a kernel of each kind and each mode's
#: block, so that the fit separates the two arithmetics' per-output costs
FIXED_RQ = ("conv3_s2_c3", "conv3_c32", "pw_c8", "pw_c48", "pw_c96", "dw3_c32", "dw3_c8",
            "dw3_s2_c48", "dw5_c48", "dw3_c256_3x3", "avgpool3", "gap_7x7x64", "dense_256x100",
            "add_12x12x32", "hc_pw_dw_pw_t1", "hcip_stem_t1", "hcip_dw_pw_c64_t1", "lb_mb",
            "rc_mb_p4", "gap_t1")


def fixed_suite(suite) -> list[tuple[str, Network, list]]:
    """The ``FIXED_RQ`` members of ``suite`` again, named with the suffix ``_fx``: generated
    with fixed-point requantisation (:func:`rq_of`)."""
    by_name = {name: (net, blocks) for name, net, blocks in suite}
    return [(f"{n}_fx", *by_name[n]) for n in FIXED_RQ]


def rq_of(name: str) -> str | None:
    """The requantisation a suite member's code is generated with: "fixed" for the
    ``fixed_suite`` copies, otherwise the network's own (None)."""
    return "fixed" if name.endswith("_fx") else None


def mode_suite() -> list[tuple[str, Network, list]]:
    """Blocks of every other execution mode (in-place output, line buffer, recompute patches,
    streaming GAP tail, in-place layer), so that the fit sees each mode's loop structure and the
    model's error stays bounded in every mode, not just in H-cache blocks."""
    W = window_layer
    out = []

    def mb():   # MBConv-like: expand, depthwise, project
        return [W(CONV, (12, 12, 8), 24, 1, 1, 0, act="relu6"),
                W(DW, (12, 12, 24), None, 3, 1, 1, act="relu6"),
                W(CONV, (12, 12, 24), 8, 1, 1, 0)]

    def framed():   # the block's input and output are arena tensors (hcache-ip needs it)
        return [W(CONV, (12, 12, 8), 8, 1, 1, 0, act="relu"), *mb(),
                W(CONV, (12, 12, 8), 8, 1, 1, 0)]

    def gap_tail():
        return [W(CONV, (16, 16, 8), 16, 3, 1, 1, act="relu"),
                W(DW, (16, 16, 16), None, 3, 1, 1, act="relu6"),
                Layer(op=GAP, in_shape=(16, 16, 16), out_shape=(1, 1, 16))]

    def add(name, layers, blocks):
        out.append((name, _net(name, layers), blocks))

    for t in (1, 2):
        add(f"hcip_mb_t{t}", framed(),
            [(0, 0, "unfused", 0), (1, 3, "hcache-ip", t), (4, 4, "unfused", 0)])
    # a network stem as the minimum-RAM plans fuse it (MLPerf Tiny VWW's first block): a 3x3
    # stride-2 conv of the 3-channel input, depthwise, pointwise, stride-2 depthwise, all in
    # one-column tile-1 calls
    add("hcip_stem_t1", [W(CONV, (24, 24, 3), 3, 1, 1, 0),
                         W(CONV, (24, 24, 3), 8, 3, 2, 1, act="relu6"),
                         W(DW, (12, 12, 8), None, 3, 1, 1, act="relu6"),
                         W(CONV, (12, 12, 8), 16, 1, 1, 0, act="relu6"),
                         W(DW, (12, 12, 16), None, 3, 2, 1, act="relu6"),
                         W(CONV, (6, 6, 16), 8, 1, 1, 0)],
        [(0, 0, "unfused", 0), (1, 4, "hcache-ip", 1), (5, 5, "unfused", 0)])
    # a late depthwise + pointwise pair on a small map with many channels (VWW's 6x6x128
    # blocks in its input-excluded minimum-RAM plan)
    add("hcip_dw_pw_c64_t1", [W(CONV, (6, 6, 64), 64, 1, 1, 0, act="relu"),
                              W(DW, (6, 6, 64), None, 3, 1, 1, act="relu6"),
                              W(CONV, (6, 6, 64), 64, 1, 1, 0, act="relu6"),
                              W(CONV, (6, 6, 64), 16, 1, 1, 0)],
        [(0, 0, "unfused", 0), (1, 2, "hcache-ip", 1), (3, 3, "unfused", 0)])
    add("lb_mb", mb(), [(0, 2, "linebuffer", 1 << 30)])
    add("lb_conv_dw", [W(CONV, (20, 20, 3), 8, 3, 2, 1, act="relu6"),
                       W(DW, (10, 10, 8), None, 3, 1, 1, act="relu6")],
        [(0, 1, "linebuffer", 1 << 30)])
    for p in (4, 8):
        add(f"rc_mb_p{p}", mb(), [(0, 2, "recompute", p)])
    add("rc_conv_pool_p4", [W(CONV, (16, 16, 8), 8, 3, 1, 1, act="relu"),
                            W(MAXPOOL, (16, 16, 8), None, 2, 2, 0)], [(0, 1, "recompute", 4)])
    for t in (1, 2):
        add(f"gap_t{t}", gap_tail(), [(0, 2, "hcache-gap", t)])
    add("gap_lb", gap_tail(), [(0, 2, "hcache-gap", 1 << 30)])
    add("gap_dw_t1", gap_tail()[1:], [(0, 1, "hcache-gap", 1)])
    add("inplace_dw", mb(), [(0, 0, "unfused", 0), (1, 1, "inplace", 0), (2, 2, "unfused", 0)])
    return out


def heldout_suite() -> list[tuple[str, Network, list]]:
    """Small whole networks not used in the fit: MBConv chain + GAP + dense, planned two ways."""
    from msfopt.solver import solve
    out = []
    W = window_layer
    ls = [W(CONV, (24, 24, 3), 8, 3, 2, 1, act="relu6"),
          W(DW, (12, 12, 8), None, 3, 1, 1, act="relu6"),
          W(CONV, (12, 12, 8), 16, 1, 1, 0),
          W(CONV, (12, 12, 16), 48, 1, 1, 0, act="relu6"),
          W(DW, (12, 12, 48), None, 5, 2, 2, act="relu6"),
          W(CONV, (6, 6, 48), 24, 1, 1, 0)]
    ls.append(Layer(op=GAP, in_shape=(6, 6, 24), out_shape=(1, 1, 24)))
    ls.append(Layer(op=DENSE, in_shape=(1, 1, 24), out_shape=(1, 1, 10)))
    n = _net("heldout_mbconv", ls)
    for tag, kw in (("minram", {"objective": "ram"}), ("fast", {"objective": "latency"})):
        p = solve(n, io="external", check=False, modes=("hcache",), tiles=(1,), **kw)
        out.append((f"heldout_mbconv_{tag}", n, [(b.first_layer, b.last_layer, b.mode, b.tile)
                                                 for b in p.blocks]))
    return out


# --------------------------------------------------------------------------- features
def block_features(net: Network, scheds, rq: str | None = None) -> dict[str, float]:
    """The regressors of the calibrated model for a list of block schedules (the same
    BlockSchedule objects the optimizer costs), the code generated with requantisation ``rq``
    (default: the network's)."""
    f = dict.fromkeys(FEATURES, 0.0)
    rq = rq or net.requant
    for s in scheds:
        f["copy_per_byte"] += s.copy_bytes
        for l, m in zip(range(s.first, s.last + 1), s.layer_macs):
            L = net.layers[l]
            k = CycleModel.kind(L) if L.op != ADD else None
            if k in ("conv", "dw"):
                f[f"{k}_border"] += m * border_fraction(L)
                if pipelined(s):
                    f[f"fused_{k}_mac"] += m
                    if wide_dw(L):
                        f["fused_dw_wide_mac"] += m
            if k in ("conv", "pointwise", "dw"):
                f["run_ch"] += L.out_shape[2] * layer_runs(L, s, s.last - s.first + 1, m)
            if L.op == ADD:
                h, w, c = L.out_shape
                f["fixed_add_elem" if rq == "fixed" else "add_per_elem"] += h * w * c
                continue
            k = CycleModel.kind(L)
            f[k] += m
            if k == "conv":
                f["conv_tap"] += conv_taps(L, m)
            mpo = L.macs_per_output()
            if mpo:
                f[f"{k}_out"] += m / mpo
                if pipelined(s):
                    f["fused_out"] += m / mpo
                for term in rq_terms(net, L, rq):
                    f[term] += m / mpo
        f["overhead_per_call"] += s.calls
    return f


def refeature(records: list[dict], suite) -> None:
    """Recompute the regressors of earlier measurements from this script's suite definitions
    (same names, same networks and blocks), so that a refit sees features added since."""
    from msfopt.modes import schedule_of
    from msfopt.schedule import Liveness
    by_name = {name: (net, blocks) for name, net, blocks in suite}
    for r in records:
        if r["name"] not in by_name:
            raise SystemExit(f"--refit: {r['name']!r} is not in this script's suite")
        net, blocks = by_name[r["name"]]
        live = Liveness(net, "external")
        r["features"] = block_features(net, [schedule_of(net, live, *b) for b in blocks],
                                       r.get("rq") or rq_of(r["name"]))


# --------------------------------------------------------------------------- measure
def measure(target: str, suite, work: Path, jobs: int = 2, log=print) -> list[dict]:
    from msfopt.models import network_with_weights
    from msfopt.mcu_runtime.mcurun import run_model

    def one(item):
        name, net, blocks = item
        net = network_with_weights(net, seed=3)
        t0 = time.perf_counter()
        gen, r = run_model(net, blocks, target, work / target / name, io="external", seed=5,
                           rq=rq_of(name))
        feats = block_features(net, gen.schedules, gen.rq)
        rec = {"name": name, "target": target, "rq": gen.rq, "instructions": r.instructions,
               "bit_exact": r.bit_exact, "arena": r.arena_bytes, "arena_pred": gen.arena_bytes,
               "stack_hwm": r.stack_hwm, "features": feats,
               "seconds": round(time.perf_counter() - t0, 2)}
        log(f"  {target:13s} {name:18s} insns={r.instructions:>11,} "
            f"bit_exact={r.bit_exact} {rec['seconds']:.1f}s")
        if not r.bit_exact or r.arena_bytes != gen.arena_bytes:
            raise RuntimeError(f"{target}/{name}: bit_exact={r.bit_exact} arena "
                               f"{r.arena_bytes} vs {gen.arena_bytes}")
        return rec

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
        return list(ex.map(one, suite))


def nnls(A: np.ndarray, b: np.ndarray, max_iter: int = 1000) -> np.ndarray:
    """min ||A x - b||_2 subject to x >= 0 (Lawson & Hanson's active-set method, "Solving Least
    Squares Problems", 1974, ch. 23): move the variable with the largest gradient into the passive
    set, solve least squares on it, step back to feasibility when a passive variable would turn
    negative."""
    m, n = A.shape
    x = np.zeros(n)
    passive = np.zeros(n, dtype=bool)
    tol = 10 * np.finfo(float).eps * np.linalg.norm(A, 1) * max(m, n)
    for _ in range(max_iter):
        w = A.T @ (b - A @ x)
        if passive.all() or (w[~passive] <= tol).all():
            break
        passive[np.argmax(np.where(passive, -np.inf, w))] = True
        while True:
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(A[:, passive], b, rcond=None)[0]
            if (z[passive] > 0).all():
                x = z
                break
            neg = passive & (z <= 0)
            alpha = np.min(x[neg] / (x[neg] - z[neg]))
            x = x + alpha * (z - x)
            passive &= x > tol
            x[~passive] = 0.0
    return x


#: lower bounds of fitted coefficients: msfopt.modes.GrowthBound prunes fused blocks only for
#: a per-call overhead >= 1 instruction (a call does cost that), so the fit keeps it there
FLOORS = {"overhead_per_call": 1.0}


def fit(records: list[dict], floors: dict[str, float] | None = None) -> dict[str, float]:
    """Non-negative least squares on relative residuals, each coefficient at least its floor
    (``FLOORS`` by default: the floor's share is subtracted from the counts, the rest fitted
    non-negative).  Coefficients whose regressor is absent from the suite stay at the floor."""
    floors = FLOORS if floors is None else floors
    lo = np.array([floors.get(k, 0.0) for k in FEATURES])
    A = np.array([[r["features"][k] for k in FEATURES] for r in records], dtype=float)
    y = np.array([r["instructions"] for r in records], dtype=float)
    Aw = A / y[:, None]
    scale = np.maximum(Aw.max(axis=0), 1e-30)          # column scaling: better conditioning
    rhs = np.ones_like(y) - Aw @ lo
    coef = nnls(Aw / scale, rhs) / scale + lo
    return {k: float(v) for k, v in zip(FEATURES, coef)}


def predict(coef: dict[str, float], feats: dict[str, float]) -> float:
    return sum(coef[k] * feats.get(k, 0.0) for k in FEATURES)


def rel_errors(coef, records) -> list[float]:
    return [(predict(coef, r["features"]) - r["instructions"]) / r["instructions"]
            for r in records]


# --------------------------------------------------------------------------- toml
def _fmt(v: float) -> str:
    return f"{v:.4g}" if v else "0.0"


def cycles_block(target: str, family: str, rep: str, coef: dict, stats: dict) -> str:
    lines = [f"[targets.{target}.cycles]",
             f"calibrated = true                # scripts/calibrate.py, family {family}, "
             f"fitted on {rep}",
             'unit = "instructions"            # QEMU executed instructions in msf_model_run',
             f'family = "{family}"',
             f'fitted_on = "{rep}"',
             f"fit_median_abs_err = {stats['fit_median']:.4f}   # relative, over "
             f"{stats['n_fit']} micro-models",
             f"heldout_max_abs_err = {stats['heldout_max']:.4f}"]
    lines += [f"{k} = {_fmt(coef[k])}" for k in KINDS]
    lines.append(f"pool = {_fmt(coef['maxpool'])}             # CycleModel's single pool kind")
    lines += [f"{k}_out = {_fmt(coef[k + '_out'])}" for k in KINDS]
    lines += [f"add_per_elem = {_fmt(coef['add_per_elem'])}",
              f"overhead_per_call = {_fmt(coef['overhead_per_call'])}",
              f"copy_per_byte = {_fmt(coef['copy_per_byte'])}",
              f"fused_out = {_fmt(coef['fused_out'])}             # per output element in a "
              f"column / patch pipeline",
              f"unclamped_out = {_fmt(coef['unclamped_out'])}         # per output of a layer "
              f"with no clamping activation",
              f"conv_tap = {_fmt(coef['conv_tap'])}              # per kernel tap of a k x k "
              f"conv output",
              f"conv_border = {_fmt(coef['conv_border'])}           # per MAC of a clipped-window "
              f"(border) k x k conv output",
              f"dw_border = {_fmt(coef['dw_border'])}             # per MAC of a border depthwise "
              f"output",
              f"run_ch = {_fmt(coef['run_ch'])}                # per output channel of a run of "
              f"output pixels",
              f"fused_conv_mac = {_fmt(coef['fused_conv_mac'])}        # per k x k conv MAC in a "
              f"column / patch pipeline",
              f"fused_dw_mac = {_fmt(coef['fused_dw_mac'])}          # per depthwise MAC in a "
              f"column / patch pipeline",
              f"fused_dw_wide_mac = {_fmt(coef['fused_dw_wide_mac'])}     # ... more for a "
              f"window above 3 x 3",
              f"float_rq_out = {_fmt(coef['float_rq_out'])}          # per output requantised "
              f"in float (onnxruntime)",
              f"avgpool_float_out = {_fmt(coef['avgpool_float_out'])}     # avgpool's instead "
              f"of float_rq_out",
              f"gap_float_out = {_fmt(coef['gap_float_out'])}         # GAP's instead of "
              f"float_rq_out",
              f"fixed_rq_out = {_fmt(coef['fixed_rq_out'])}          # per output requantised "
              f"in fixed point (TFLite Micro)",
              f"fixed_add_elem = {_fmt(coef['fixed_add_elem'])}        # per add element in "
              f"fixed point (add_per_elem: float)"]
    return "\n".join(lines) + "\n"


def write_toml(blocks: dict[str, str], path: Path = TOML) -> None:
    text = path.read_text()
    for target, block in blocks.items():
        pat = re.compile(r"^\[targets\." + re.escape(target) + r"\.cycles\]\n(?:(?!\[|\n).*\n)*",
                         re.M)
        if not pat.search(text):
            raise SystemExit(f"{path}: no [targets.{target}.cycles] table")
        text = pat.sub(lambda m: block, text, count=1)
    import tomllib
    tomllib.loads(text)  # still valid
    path.write_text(text)


# --------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--family", action="append", choices=list(FAMILIES),
                    help="calibrate only these families (default: all)")
    ap.add_argument("--dry-run", action="store_true", help="do not write mcus.toml")
    ap.add_argument("--jobs", "-j", type=int, default=2)
    ap.add_argument("--json", help="write measurements and fits to this file")
    ap.add_argument("--work", help="build directory (default: a temporary one)")
    ap.add_argument("--refit", metavar="JSON",
                    help="fit the measurements of an earlier --json run instead of measuring")
    a = ap.parse_args(argv)
    earlier = json.loads(Path(a.refit).read_text()) if a.refit else {}
    fams = a.family or list(FAMILIES)
    work = Path(a.work or tempfile.mkdtemp(prefix="msf-calib-"))
    suite, held = micro_suite(), heldout_suite()
    t0 = time.perf_counter()
    report, blocks = {}, {}
    for fam in fams:
        rep, members = FAMILIES[fam]
        if fam in earlier:
            recs, hrecs = earlier[fam]["records"], earlier[fam]["heldout"]
            refeature(recs + hrecs, suite + held)
            print(f"{fam}: {len(recs)} + {len(hrecs)} measurements from {a.refit}")
        else:
            print(f"{fam}: measuring {len(suite)} micro-models + {len(held)} held-out on {rep}")
            recs = measure(rep, suite, work, a.jobs)
            hrecs = measure(rep, held, work, a.jobs)
        coef = fit(recs)
        e_fit = np.abs(rel_errors(coef, recs))
        e_held = np.abs(rel_errors(coef, hrecs))
        stats = {"n_fit": len(recs), "fit_median": float(np.median(e_fit)),
                 "fit_max": float(e_fit.max()), "heldout_max": float(e_held.max()),
                 "heldout": {r["name"]: float(e) for r, e in zip(hrecs, e_held)},
                 "stack_hwm_max": max(r["stack_hwm"] for r in recs + hrecs)}
        report[fam] = {"target": rep, "coef": coef, "stats": stats, "records": recs,
                       "heldout": hrecs}
        print(f"{fam}: fit median |err| {stats['fit_median']:.1%}, max {stats['fit_max']:.1%}; "
              f"held-out max {stats['heldout_max']:.1%}; stack HWM <= {stats['stack_hwm_max']} B")
        print("   " + ", ".join(f"{k}={_fmt(v)}" for k, v in coef.items()))
        for m in members:
            blocks[m] = cycles_block(m, fam, rep, coef, stats)
        if a.json:  # after every family: a later failure does not lose the measurements
            Path(a.json).write_text(json.dumps(report, indent=1))
    if not a.dry_run:
        write_toml(blocks)
        print(f"wrote {len(blocks)} [targets.*.cycles] tables to {TOML}")
    print(f"done in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
