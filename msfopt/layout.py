"""Arena layout: every full tensor and scratch region of a plan gets a byte offset in one static
arena (:func:`plan_layout`), placed at exactly the plan's peak RAM: by a fast placement search
first, by CP-SAT (:mod:`msfopt.layout_exact`) when the fast search misses.  Only when CP-SAT proves
that nothing packs at the peak is the arena larger: the smallest one CP-SAT finds between the peak
and first-fit's (or first-fit's, when CP-SAT finds nothing smaller)."""
from __future__ import annotations

import sys
from dataclasses import dataclass

from . import layout_exact
from .ir import Network
from .schedule import BlockSchedule, Liveness

#: alignment of the generated arena object (a union with a uint32_t member): the linked object, and
#: so the plan's ``arena_bytes``, is the laid-out extent rounded up to this
ARENA_ALIGN = 4


def aligned_arena(extent: int) -> int:
    """Bytes of the linked arena object for a layout reaching ``extent`` bytes: rounded up to
    ARENA_ALIGN, and never less than one word (the object's uint32_t member), even when a plan
    keeps nothing in the arena (a one-layer network with io="external")."""
    return max(ARENA_ALIGN, -(-int(extent) // ARENA_ALIGN) * ARENA_ALIGN)


@dataclass
class ArenaLayout:
    arena_bytes: int                              # the linked object's size (aligned extent)
    tensor_offset: dict[int, int]                 # tensor id -> offset (arena tensors only)
    ring_offsets: list[tuple[int, ...]]           # per block, offsets of its rings
    fallback: bool                                # True when no layout packs at the peak
    method: str = "fast"                  # "fast" | "cpsat" | "cpsat-min" | "first-fit"
    cpsat_seconds: float = 0.0                    # wall time of the CP-SAT solve (0: not run)
    cpsat_status: str = ""                # "packed" | "infeasible" | "timeout" | "optimal" | ""


#: when False, plan_layout skips the CP-SAT stage (the layout of before issue 13; benchmarks)
USE_CPSAT = True


def plan_layout(net: Network, schedules: list[BlockSchedule], io: str = "arena",
                node_budget: int = 20000,
                time_limit: float = layout_exact.DEFAULT_TIME_LIMIT) -> ArenaLayout:
    """Assign arena offsets to every full tensor and scratch region of a plan (blocks in
    execution order).  A tensor keeps its offset for its whole life.

    The arena is first tried at exactly the plan's peak (the largest block RAM, rounded up to
    ``ARENA_ALIGN``: the linked object has those bytes anyway) by a depth-first
    search over placements: each block's output at either end of a free gap (first choice: the
    end away from the block's input, which packs any chain exactly with no backtracking; a second
    search prefers low ends, which keeps runs of in-place blocks packed), an in-place output
    over a dying input, the scratch region at either end of a gap.  Only if no
    placement exists within ``node_budget`` steps is the placement solved exactly by CP-SAT at
    the peak (``method`` "cpsat", deterministic, ``time_limit`` deterministic seconds).  Only
    when CP-SAT proves that nothing packs at the peak, or stops at its limit, is the arena
    larger than the peak (``fallback``): first-fit on a growing arena, and -- when CP-SAT proved
    the peak infeasible -- CP-SAT minimising the arena between the peak and first-fit's
    (``method`` "cpsat-min" when that is smaller, ``cpsat_status`` "optimal" when proven
    smallest; otherwise ``method`` "first-fit")."""
    # the linked arena object is the peak rounded up to ARENA_ALIGN anyway: search within that
    peak = aligned_arena(max(s.ram_bytes for s in schedules))
    res = None
    for prefer in ("far", "low"):   # outputs away from inputs; or packed low (in-place chains)
        res = _search_layout(net, schedules, io, peak, node_budget, prefer)
        if res is not None:
            break
    if res is not None:
        return res
    status, secs = "", 0.0
    if USE_CPSAT:
        prob, tensors, scratch_of = layout_problem(net, schedules, io, peak)
        ex = layout_exact.solve_layout(prob, time_limit)
        status, secs = ex.status, ex.seconds
        if ex.status == "packed":
            lay = _from_offsets(schedules, ex.offsets, tensors, scratch_of, peak)
            lay.method, lay.cpsat_seconds, lay.cpsat_status = "cpsat", secs, status
            return lay
    res = _search_layout(net, schedules, io, None, node_budget)
    if res is None:  # pragma: no cover - an unbounded arena always fits
        raise AssertionError("unbounded layout failed")
    res.method, res.cpsat_seconds, res.cpsat_status = "first-fit", secs, status
    if USE_CPSAT and status == "infeasible" and res.arena_bytes > peak + ARENA_ALIGN:
        # proven: nothing packs at the peak.  The smallest arena lies between the peak (+ one
        # alignment step) and first-fit's; CP-SAT finds it (proven when it finishes in time)
        prob, tensors, scratch_of = layout_problem(net, schedules, io, peak + ARENA_ALIGN)
        mn = layout_exact.minimize_layout(prob, res.arena_bytes, time_limit)
        secs += mn.seconds
        if mn.offsets is not None and aligned_arena(mn.arena) < res.arena_bytes:
            lay = _from_offsets(schedules, mn.offsets, tensors, scratch_of,
                                aligned_arena(mn.arena))
            lay.fallback, lay.method = True, "cpsat-min"
            lay.cpsat_seconds, lay.cpsat_status = secs, mn.status
            return lay
        if mn.status == "optimal":
            res.cpsat_status = "infeasible; first-fit optimal"
        res.cpsat_seconds = secs
    return res


def _from_offsets(schedules, offsets, tensors, scratch_of, arena_bytes) -> ArenaLayout:
    """An :class:`ArenaLayout` from CP-SAT's offsets per rect of :func:`layout_problem`."""
    offs = {t: offsets[i] for t, i in sorted(tensors.items())}
    rings = []
    for k, s in enumerate(schedules):
        if not s.rings:
            rings.append(())
            continue
        base = offsets[scratch_of[k]] if k in scratch_of else 0
        rings.append(tuple(base + r.offset for r in s.rings))
    return ArenaLayout(arena_bytes=arena_bytes, tensor_offset=offs, ring_offsets=rings,
                       fallback=False)


def layout_problem(net: Network, schedules: list[BlockSchedule], io: str, target: int):
    """The plan's placement as a :class:`layout_exact.LayoutProblem` at ``target`` bytes, with
    exactly the fast search's rules: a tensor lives from the block that writes it (the network
    input: from block 0; a concat output with slices: from the block writing its first aliased
    input, :meth:`Liveness.storage_of`; aliased inputs have no buffer of their own) to the
    last block that reads it (graph outputs: to the end); a block's scratch region (when it
    has rings: ring / patch buffers, a concat slice's staging buffer) lives during the block; an output with in-place options
    sits over one of its dying inputs -- an unfused block may also write it fresh, a fused
    in-place block must overwrite.  Uncounted tensors (io="external") are not in the arena.
    Returns (problem, tensor id -> rect index, block -> scratch rect index)."""
    live = Liveness(net, io)
    n = net.n_layers
    firsts = [s.first for s in schedules]
    rects: list[layout_exact.Rect] = []
    tensors: dict[int, int] = {}
    scratch_of: dict[int, int] = {}
    aliases = []

    def end_of(t: int) -> int:
        if t == n:
            return len(schedules) - 1
        e = 0
        for k, f in enumerate(firsts):
            if f <= live.last_use[t]:
                e = k
        return e

    if live.counted[0]:
        tensors[0] = len(rects)
        rects.append(layout_exact.Rect(live.tbytes[0], 0, end_of(0)))
    for k, s in enumerate(schedules):
        out_t = live.storage_of(s.last + 1)   # a concat slice's block places the concat output
        if out_t is not None:
            tensors[out_t] = i = len(rects)
            rects.append(layout_exact.Rect(live.tbytes[out_t], k, max(k, end_of(out_t))))
            srcs = tuple(tensors[t] for t in s.inplace_options if t in tensors
                         and rects[tensors[t]].end == k)
            if srcs:
                aliases.append(layout_exact.Alias(i, srcs, s.mode == "unfused"))
        if s.rings and s.scratch_bytes:
            scratch_of[k] = len(rects)
            rects.append(layout_exact.Rect(s.scratch_bytes, k, k))
    unit = 4 if net.elem_bytes == 4 else 1
    return (layout_exact.LayoutProblem(tuple(rects), tuple(aliases), int(target), unit),
            tensors, scratch_of)


def _gaps(alloc, limit):
    used = sorted(alloc.values())
    pos = 0
    out = []
    for o, sz in used:
        if o > pos:
            out.append((pos, o))
        pos = max(pos, o + sz)
    out.append((pos, limit if limit is not None else 1 << 62))
    return out


def _positions(alloc, limit, size, prefer_high):
    """Candidate offsets for a buffer of ``size``: both ends of every gap that holds it, the
    preferred end of the outermost gap first."""
    cands = []
    for a, b in _gaps(alloc, limit):
        if b - a >= size:
            cands.append(a)
            if limit is not None and b - size != a:
                cands.append(b - size)
    if limit is None:
        return cands[:1]
    if prefer_high:
        cands.sort(key=lambda o: -o)
    return cands


def _search_layout(net, schedules, io, arena, node_budget, prefer="far"):
    live = Liveness(net, io)
    n = net.n_layers
    alloc: dict[int, tuple[int, int]] = {}
    offsets: dict[int, int] = {}
    ring_offs: list[tuple[int, ...]] = []
    steps = [0]
    if live.counted[0]:
        alloc[0] = (0, live.tbytes[0])
        offsets[0] = 0

    def rec(k: int) -> bool:
        if k == len(schedules):
            return True
        s = schedules[k]
        freed = {t: alloc.pop(t) for t in list(alloc) if live.last_use[t] < s.first and t != n}
        out_t = live.storage_of(s.last + 1)   # a concat slice's block places the concat output
        in_t = net.layers[s.first].src
        choices = []   # (kind, value): ("alias", tensor) or ("at", offset) or ("none", None)
        if out_t is None:
            choices.append(("none", None))
        else:
            if s.inplace_options:
                choices += [("alias", t) for t in s.inplace_options if t in alloc]
            if not choices or (s.mode == "unfused" and arena is not None):
                # an unfused in-place block may also write a fresh buffer when the arena has
                # room there (its input then dies after it): graphs need it to defragment
                high = prefer == "far"
                if high and in_t in alloc and arena is not None:
                    high = alloc[in_t][0] + alloc[in_t][1] / 2 < arena / 2
                choices += [("at", o) for o in _positions(alloc, arena, live.tbytes[out_t], high)]
        for kind, val in choices:
            if kind == "alias":
                alloc[out_t] = alloc.pop(val)
                offsets[out_t] = alloc[out_t][0]
            elif kind == "at":
                alloc[out_t] = (val, live.tbytes[out_t])
                offsets[out_t] = val
            scratch = [None] if not s.rings else _positions(alloc, arena, s.scratch_bytes, False)
            for so in scratch:
                steps[0] += 1
                if so is None:
                    ring_offs.append(())
                else:
                    ring_offs.append(tuple(so + r.offset for r in s.rings))
                    if s.scratch_bytes:
                        alloc[-1 - k] = (so, s.scratch_bytes)   # scratch lives during the block only
                ok = steps[0] <= node_budget
                if ok:
                    alloc.pop(-1 - k, None)
                    if kind == "alias":    # after the block the output keeps only its own bytes
                        alloc[out_t] = (alloc[out_t][0], live.tbytes[out_t])
                    ok = rec(k + 1)
                    if kind == "alias" and not ok:
                        alloc[out_t] = (alloc[out_t][0], live.tbytes[val])
                if ok:
                    return True
                alloc.pop(-1 - k, None)
                ring_offs.pop()
                if steps[0] > node_budget:
                    break
            # undo the output placement
            if kind == "alias":
                alloc[val] = alloc.pop(out_t)
            elif kind == "at":
                alloc.pop(out_t)
            if kind != "none":
                offsets.pop(out_t, None)
            if steps[0] > node_budget:
                break
        alloc.update(freed)
        return False

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 4 * len(schedules) + 100))
    try:
        ok = rec(0)
    finally:
        sys.setrecursionlimit(limit)
    if not ok:
        return None
    if arena is None:
        top = 0
        for t, o in offsets.items():
            if live.counted[t]:
                top = max(top, o + live.tbytes[t])
        for s, ro in zip(schedules, ring_offs):
            if ro:
                top = max(top, min(ro) - min(r.offset for r in s.rings) + s.scratch_bytes)
        arena = top
        fallback = True
    else:
        fallback = False
    return ArenaLayout(arena_bytes=aligned_arena(arena), tensor_offset=offsets,
                       ring_offsets=ring_offs, fallback=fallback)
