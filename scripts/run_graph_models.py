#!/usr/bin/env python3
"""The real-world graph models (``../shared/models``) under QEMU on cortex-m4 and rv32imac.

One ONNX model of each graph structure (squeeze-excite, concat, channel shuffle, U-Net, PReLU,
dilated int8 convolutions), and the int8 TFLite graph models (``TFLITE_MODELS``: squeeze-excite
with hard-swish tables, EfficientNet's swish gates, a U-Net with resize + concat, a detector
with two outputs), is imported from the user's ORIGINAL file, planned as a fused
minimum-RAM plan (``solve(net, objective="ram", io="external")``: input and weights read from
flash, output in a caller buffer), generated as C, cross-built and run under QEMU on one
deterministic input.  Each row reports the model, the target (and the memory map it ran with),
the plan, the predicted arena against the arena object linked in the ELF (``nm -S`` of
``msf_arena_u``), the instructions executed in ``msf_model_run`` (QEMU plugin: instructions, not
cycles), the times and the result against the oracle:

* int8 (``kws_cnn_49x10_int8_qop.onnx``, the TFLite models): the image compares its output with
  onnxruntime's / tflite-micro's on the original file, byte for byte
  (``mcurun.expected_reference``; every output of the detector, back to back).
* float32: onnxruntime's float output cannot be matched bit for bit (the image compares exactly),
  so the output is checked in two links: the host build of the same generated C is compared with
  onnxruntime on the original file by ``msfopt.oracles.compare`` (within 1e-4), and the image
  embeds that host output and must reproduce it exactly (``mismatches=0``; its FNV-1a checksum
  of the output bytes is checked as well).  Every target run therefore equals the host output
  bit for bit and is within 1e-4 of onnxruntime.

Memory maps.  The stock profiles (``msfopt mcus``) give cortex-m4 (QEMU ``mps2-an386``) 4 MiB of
code/weights at 0x0 and 4 MiB of RAM, rv32imac (QEMU ``virt``) 4 MiB - 4 KiB of code/weights and
256 KiB of RAM.  Several float models exceed them (weights up to 6.2 MB, min-RAM arenas up to
961 KiB), so where the stock profile does not fit, the same QEMU machine runs with a larger map
derived here (no mcus.toml entry):

* ``cortex-m4-psram``: mps2-an386 has a 16 MiB PSRAM at 0x21000000 besides the 4 MiB SSRAM1 at
  0x0 (aliased at 0x400000, so flash cannot grow past 4 MiB there); code and weights are linked
  there and the reset vector table is moved with ``-global armv7m.init-nsvtor=0x21000000``.
  RAM stays the 4 MiB SSRAM2/3 at 0x20000000.
* ``rv32imac-16m``: virt has 128 MiB of DRAM at 0x80000000; code and weights get 16 MiB - 4 KiB
  (the 4 KiB keep them clear of the PMP stack guard below the stack), RAM 4 MiB at 0x81000000.

    python scripts/run_graph_models.py                    # every model on both targets
    python scripts/run_graph_models.py --models kws_cnn_49x10_int8_qop.onnx --targets rv32imac
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from msfopt import oracles  # noqa: E402
from msfopt.mcu import MCUProfile, get_profile, larger_map  # noqa: E402
from msfopt.models import load_model  # noqa: E402
from msfopt.mcu_runtime import mcurun  # noqa: E402
from msfopt.mcu_runtime.codegen import generate  # noqa: E402
from msfopt.mcu_runtime.hostrun import build_host, run_host  # noqa: E402
from msfopt.solver import solve  # noqa: E402

SHARED_MODELS = ROOT.parent / "shared" / "models"

#: structure -> the model of the set that exercises it
MODELS = {
    "squeeze-excite": "tv_mobilenet_v3_small_r128.onnx",
    "concat": "tv_squeezenet1_1_r128.onnx",
    "shuffle": "tv_shufflenet_v2_x0_5_r128.onnx",
    "U-Net": "torch_unet_lrelu_r64.onnx",
    "PReLU": "tv_mobilenet_v2_w0.5_prelu_r96.onnx",
    "dilation": "kws_cnn_49x10_int8_qop.onnx",
}
#: the int8 TFLite graph models (tflite-micro is their oracle): structure -> file
TFLITE_MODELS = {
    "squeeze-excite int8": "keras_mobilenet_v3_small_r96_int8.tflite",
    "swish gates int8": "keras_efficientnet_b0_r96_int8.tflite",
    "U-Net int8": "keras_unet_r96_int8.tflite",
    "two outputs int8": "keras_ssdlite_mbv2_a0.35_r128_2heads_int8.tflite",
}
TARGETS = ("cortex-m4", "rv32imac")
INPUT_SEED = 1
#: runtime code, the test driver and the platform layer beside the weights in flash (measured:
#: 3.41 MB of .text for 3.29 MB of weights on cortex-m4): a model is given the stock map only
#: when its weights leave this much room
CODE_MARGIN = 256 * 1024

def big_profile(target: str) -> MCUProfile:
    """The stock target's QEMU machine with the larger memory map described above
    (msfopt.mcu.larger_map)."""
    return larger_map(target)


def stock_fits(p: MCUProfile, arena: int, out_bytes: int, weight_bytes: int) -> tuple[bool, str]:
    """Whether a plan can link on profile ``p``, and the numbers why not.  RAM: the arena and
    the caller's output buffer within the RAM the planner may use (RAM - stack reserve -
    ram_reserve); flash: the weights plus :data:`CODE_MARGIN` within the flash region."""
    why = []
    if arena + out_bytes > p.ram_bytes:
        why.append(f"arena {arena:,} B + output {out_bytes:,} B > {p.ram_bytes:,} B of RAM for "
                   f"the plan ({p.ram_size:,} B RAM)")
    if weight_bytes + CODE_MARGIN > p.flash_size:
        why.append(f"weights {weight_bytes:,} B > {p.flash_size:,} B flash"
                   if weight_bytes > p.flash_size else
                   f"weights {weight_bytes:,} B + {CODE_MARGIN:,} B code margin > "
                   f"{p.flash_size:,} B flash")
    return not why, "; ".join(why)


@dataclass
class Prepared:
    """One model imported, planned, generated and checked on the host."""
    structure: str
    file: str
    net: object
    plan: object
    gen: object
    x: np.ndarray
    ref: object                    # oracles.Reference: onnxruntime on the original file
    expected: object               # what the image embeds (Reference or array)
    host_y: np.ndarray | None      # float32: the host build's output (None for int8)
    host_check: str                # compare(host, onnxruntime) figure, or "(int8: in the image)"
    host_ok: bool
    seconds: dict = field(default_factory=dict)

    @property
    def out_bytes(self) -> int:
        return int(np.prod(self.gen.output_shape)) * (4 if self.gen.dtype == "float32" else 1)


def blocks_of(plan):
    return [(b.first_layer, b.last_layer, b.mode, b.tile) for b in plan.blocks]


def plan_label(plan) -> str:
    fused = [b for b in plan.blocks if b.last_layer > b.first_layer]
    modes = sorted({b.mode for b in fused})
    return f"min-RAM, {len(plan.blocks)} blocks, {len(fused)} fused ({', '.join(modes)})"


def prepare(structure: str, file: str, out_dir: Path, models_dir: Path = SHARED_MODELS) -> Prepared:
    t0 = time.perf_counter()
    path = models_dir / file
    net = load_model(str(path))
    plan = solve(net, objective="ram", io="external", check=False)
    t1 = time.perf_counter()
    gen = generate(net, blocks_of(plan), out_dir, io="external")
    t2 = time.perf_counter()
    x = mcurun.deterministic_input(net, INPUT_SEED)
    if net.dtype == "float32":
        ref = oracles.reference(net, [x], path)
        t3 = time.perf_counter()
        host_y = run_host(gen, build_host(gen), x)
        ok, fig = oracles.compare(host_y, ref, "float32")
        fig += f", max |diff| {float(np.max(np.abs(host_y - ref.y))):.2e} " \
               f"(max |y| {float(np.max(np.abs(ref.y))):.3g})"
        expected = host_y
    else:
        ref = mcurun.expected_reference(gen, net, x, str(path))
        t3 = time.perf_counter()
        host_y, ok, fig, expected = None, True, "(int8: compared in the image)", ref
    t4 = time.perf_counter()
    return Prepared(structure, file, net, plan, gen, x, ref, expected, host_y, fig, ok,
                    {"plan": t1 - t0, "generate": t2 - t1, "oracle": t3 - t2, "host": t4 - t3})


def fnv1a(data: bytes) -> int:
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def choose_profile(prep: Prepared, target: str) -> tuple[MCUProfile, str]:
    """The stock profile when the plan fits it, else the larger map (and the numbers why)."""
    p = get_profile(target)
    ok, why = stock_fits(p, prep.plan.arena_bytes, prep.out_bytes, prep.gen.weight_bytes)
    return (p, "") if ok else (big_profile(target), why)


@dataclass
class Row:
    structure: str
    file: str
    target: str
    profile: str
    why_not_stock: str
    plan: str
    dtype: str
    predicted_arena: int
    elf_arena: int
    arena_reported: int
    weight_bytes: int
    flash: int
    static_ram: int
    stack_hwm: int
    instructions: int | None
    predicted_instructions: int    # the target's calibrated cycle model (fitted on int8 kernels)
    qemu_seconds: float
    build_seconds: float
    result: str                    # the image's verdict against what it embeds
    oracle_check: str              # host vs onnxruntime (float32) / image vs onnxruntime (int8)
    checksum_ok: bool              # the image's FNV-1a of its output == that of the expected
    host_ok: bool                  # float32: host build within 1e-4 of onnxruntime
    run: object = None             # mcurun.TargetRun

    @property
    def passed(self) -> bool:
        return (self.run is not None and self.run.bit_exact and self.checksum_ok and self.host_ok
                and self.elf_arena == self.predicted_arena == self.arena_reported)


def gen_for(gen, target: str):
    """A private copy (hard links) of the generated directory for ``target``: the harness writes
    ``msf_testdata.h`` into the generated directory before each build, so targets built in
    parallel from one directory could read each other's half-written header."""
    d = gen.out_dir.parent / f"{gen.out_dir.name}-{target}"
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    for f in gen.out_dir.iterdir():
        if f.is_file() and f.suffix in (".c", ".h") and f.name != "msf_testdata.h":
            os.link(f, d / f.name)
    return dataclasses.replace(gen, out_dir=d, files=[d / f.name for f in gen.files])


def run_on(prep: Prepared, target: str, timeout_s: float = 300.0) -> Row:
    prof, why = choose_profile(prep, target)
    t0 = time.perf_counter()
    r = mcurun.run_target(gen_for(prep.gen, target), prof, prep.x, prep.expected,
                          timeout_s=timeout_s)
    build_s = time.perf_counter() - t0 - r.run.wall_seconds
    want = prep.host_y if prep.host_y is not None else prep.expected.y
    checksum_ok = r.run.reports.get("checksum") == fnv1a(np.ascontiguousarray(want).tobytes())
    if prep.host_y is not None:
        result = ("bit-exact with the host build" if r.bit_exact else r.verdict)
        check = f"host vs {oracles.ORT}: {prep.host_check}"
    else:
        result = r.verdict
        check = f"vs {r.oracle}"
    cm = get_profile(target).cycle_model(prep.gen.rq)
    pred = int(round(sum(cm.cycles(prep.net, s) for s in prep.gen.schedules)))
    return Row(prep.structure, prep.file, target, prof.name, why, plan_label(prep.plan),
               prep.net.dtype, int(prep.plan.arena_bytes), int(r.arena_bytes),
               int(r.arena_reported), int(prep.gen.weight_bytes), int(r.flash),
               int(r.static_ram), int(r.stack_hwm), r.instructions, pred,
               float(r.run.wall_seconds),
               float(build_s), result, check, checksum_ok, prep.host_ok, r)


def table(rows: list[Row]) -> str:
    head = ("| structure | model | target (map) | plan | arena predicted / ELF | flash | "
            "instructions (predicted) | QEMU s | build s | result |")
    lines = [head, "|" + "---|" * 10]
    for w in rows:
        ins = (f"{w.instructions:,} ({w.predicted_instructions / w.instructions - 1:+.0%})"
               if w.instructions else "-")
        arena = f"{w.predicted_arena:,} / {w.elf_arena:,}"
        res = f"{w.result}; {w.oracle_check}" + ("" if w.checksum_ok else "; CHECKSUM MISMATCH")
        lines.append(f"| {w.structure} | {w.file} | {w.target} ({w.profile}) | {w.plan} | "
                     f"{arena} | {w.flash:,} | {ins} | {w.qemu_seconds:.2f} | "
                     f"{w.build_seconds:.1f} | {res} |")
    lines += ["", "instructions: executed in msf_model_run (QEMU plugin), not cycles; in brackets "
              "the deviation of the target's calibrated cycle model (fitted on int8 micro-models,"
              " not on the float kernels)"]
    notes = sorted({f"{w.file} on {w.target}: {w.why_not_stock}" for w in rows if w.why_not_stock})
    if notes:
        lines += ["", "Not on the stock profile (ran on the larger map of the same QEMU machine):"]
        lines += [f"- {n}" for n in notes]
    return "\n".join(lines)


#: the order models are prepared in: longest rv32imac QEMU run first (measured: squeezenet
#: 16.1 G instructions, 35 s; U-Net 6.6 G, 18 s; MobileNetV3 3.6 G; MobileNetV2 3.9 G;
#: ShuffleNetV2 2.5 G; KWS 0.12 G), so the short ones fill the end of the pipeline
ORDER = ["tv_squeezenet1_1_r128.onnx", "torch_unet_lrelu_r64.onnx",
         "tv_mobilenet_v3_small_r128.onnx", "tv_mobilenet_v2_w0.5_prelu_r96.onnx",
         "tv_shufflenet_v2_x0_5_r128.onnx", "kws_cnn_49x10_int8_qop.onnx"]


def run_all(files, targets, base: Path, jobs: int = 2, log=None):
    """Every (model, target): the models are prepared one at a time (import, plan, generate,
    oracle, host build) while up to ``jobs`` target builds + QEMU runs proceed in parallel.
    Returns ``({file: Prepared | Exception}, {(file, target): Row | Exception})``."""
    by_file = {f: s for s, f in {**MODELS, **TFLITE_MODELS}.items()}
    files = sorted(files, key=lambda f: ORDER.index(f) if f in ORDER else len(ORDER))
    preps: dict = {}
    futs = {}
    t_start = time.perf_counter()
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        for f in files:
            try:
                preps[f] = prep = prepare(by_file.get(f, "?"), f, base / Path(f).stem)
            except Exception as exc:                       # reported per test
                preps[f] = exc
                continue
            if log:
                log(f"{f}: prepared at {time.perf_counter() - t_start:.0f} s ("
                    + ", ".join(f"{k} {v:.1f}" for k, v in prep.seconds.items()) + " s)")
            for t in targets:
                futs[(f, t)] = pool.submit(run_on, prep, t)
        rows: dict = {}
        for key, fut in futs.items():
            try:
                rows[key] = fut.result()
            except Exception as exc:
                rows[key] = exc
            if log:
                w = rows[key]
                log(f"{key[0]} on {key[1]}: "
                    + (f"{'ok' if w.passed else 'FAIL'} (QEMU {w.qemu_seconds:.1f} s, build "
                       f"{w.build_seconds:.1f} s)" if isinstance(w, Row) else f"error {w}")
                    + f" at {time.perf_counter() - t_start:.0f} s")
    return preps, rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join([*MODELS.values(), *TFLITE_MODELS.values()]),
                    help="comma-separated model files of ../shared/models (default: the ONNX "
                         "and the TFLite graph models)")
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--out", default=None, help="work directory (default: a temporary one)")
    ap.add_argument("--jobs", type=int, default=2, help="target builds/runs in parallel")
    args = ap.parse_args(argv)
    files = [f for f in args.models.split(",") if f]
    targets = [t for t in args.targets.split(",") if t]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="msf-graph-") as td:
        preps, rows = run_all(files, targets, Path(args.out) if args.out else Path(td),
                              args.jobs, log=lambda m: print(m, file=sys.stderr, flush=True))
    bad = [f"{k}: {v}" for k, v in {**preps, **rows}.items() if isinstance(v, Exception)]
    bad += [f"{f}: host build vs onnxruntime: {p.host_check}" for f, p in preps.items()
            if isinstance(p, Prepared) and not p.host_ok]
    good = [rows[k] for k in sorted(rows, key=lambda k: (files.index(k[0]), targets.index(k[1])))
            if isinstance(rows[k], Row)]
    print(table(good))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s wall")
    for b in bad:
        print("ERROR", b)
    return 0 if good and not bad and all(w.passed for w in good) else 1


if __name__ == "__main__":
    sys.exit(main())
