"""Block schedules: the single description of how a block runs, read by the optimizer (costs) and
by the code generator (buffers, offsets, loop structure).

Execution modes
---------------
``unfused``  one layer, whole output from whole input(s).  A residual add writes in place over an
             input whose last use it is.
``hcache``   fused chain of window layers (conv / depthwise / pool), msf-CNN style, generalised to
             output tiles of ``tile`` rows (``tile == 1`` is msf-CNN's 1-pixel tile).  For output
             tile row r the last layer produces rows [r*p, min(r*p + p, H)).  Going backwards, layer
             l needs input rows ``lo_l = max(0, lo_{l+1} s_l - pt_l)``,
             ``hi_l = min(H_l, (hi_{l+1} - 1) s_l - pt_l + kh_l)``.  Layer l+1's input is held in a
             ring of ``min(kw, W)`` columns x (hi - lo) rows x C (the horizontal cache); columns flow
             demand-driven, left to right, and rows are recomputed by the next tile row.  Layer
             l computes columns ``0 .. ncols_{l+1} - 1`` with ``ncols_{j+1} = W_{j+1}`` and
             ``ncols_l = min(W_l, (ncols_{l+1} - 1) sw_l - pl_l + kw_l)``.  The block's first layer
             reads its input tensor in place and the last layer writes its output tensor directly.

The RAM of a block is the bytes of every full tensor alive while it runs (its input, its output,
skip tensors produced earlier and read later; the network input/output only with ``io="arena"``)
plus its ring buffers.  MACs count every multiply-accumulate the C executor performs, with
recomputation; ``calls`` counts kernel invocations (one per produced column per tile row).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ir import ADD, DW, GAP, MAXPOOL, AVGPOOL, Network, WINDOW_OPS

#: where the network input/output live: both in the arena; both outside (input read in place
#: from flash or a sensor buffer, output written to the caller's buffer: the paper's
#: convention); or input outside and output in the arena (read with msf_model_output())
IO_MODES = ("arena", "external", "input-external")
INPUT_OUTSIDE = ("external", "input-external")


@dataclass(frozen=True)
class Ring:
    """A per-layer buffer of a fused block: the column ring (hcache / linebuffer) or the patch
    buffer (recompute) holding layer ``layer``'s input rows x cols x channels."""
    layer: int
    rows: int
    cols: int
    channels: int
    bytes: int
    offset: int = 0   # byte offset inside the block's scratch region


@dataclass(frozen=True)
class BlockSchedule:
    first: int
    last: int
    mode: str                      # "unfused" | "hcache" | "linebuffer" | "recompute"
    tile: int                      # output tile rows (hcache, linebuffer, recompute), 0 unfused
    resident: tuple[int, ...]      # full tensors counted in this block's RAM (tensor ids)
    inplace: int | None            # input tensor id the output overwrites (unfused add), or None
    rings: tuple[Ring, ...]
    tensor_bytes: int              # bytes of the resident full tensors
    ram_bytes: int                 # tensor_bytes + ring bytes
    macs: int
    calls: int
    layer_macs: tuple[int, ...]    # per layer of the block
    tile_rows: int                 # number of output tile rows, 1 for unfused
    scratch_bytes: int = 0         # the block's ring / patch buffer region
    tile_w: int = 0                # recompute: output patch width
    inplace_options: tuple[int, ...] = ()   # inputs the output may overwrite (the layout picks)
    copy_bytes: int = 0            # bytes the executor copies (in-place mode's delayed rows)

    @property
    def key(self) -> tuple:
        return (self.first, self.last, self.mode, self.tile)

    @property
    def ring_bytes(self) -> int:
        return self.scratch_bytes

    @property
    def label(self) -> str:
        rng = f"{self.first}" if self.first == self.last else f"{self.first}-{self.last}"
        return rng if self.mode == "unfused" else f"{rng} {self.mode}(p={self.tile})"


MODES = ("unfused", "inplace", "hcache", "hcache-ip", "hcache-gap", "linebuffer", "recompute")
#: variants searched beside the plain unfused layers ("inplace" is a single-layer variant)
FUSED_MODES = ("hcache", "hcache-ip", "hcache-gap", "linebuffer", "recompute", "inplace")
#: the widest search by default: H-cache tiles of 1, 2, 4 rows, line buffers, 4/8/16 patches,
#: in-place depthwise/pooling layers
DEFAULT_MODES = ("hcache", "hcache-ip", "hcache-gap", "linebuffer", "recompute", "inplace")
DEFAULT_TILES = (1, 2, 4)
DEFAULT_PATCHES = (4, 8, 16)
LINEBUFFER_TILE = 1 << 30


def _contiguous(rings: list[Ring]) -> tuple[tuple[Ring, ...], int]:
    out, off = [], 0
    for r in rings:
        out.append(Ring(r.layer, r.rows, r.cols, r.channels, r.bytes, off))
        off += r.bytes
    return tuple(out), off


# -- liveness ---------------------------------------------------------------------------------------

class Liveness:
    """Which full tensors are alive while a block runs."""

    def __init__(self, net: Network, io: str = "arena"):
        if io not in IO_MODES:
            raise ValueError(f"io must be one of {IO_MODES}")
        self.net = net
        self.io = io
        self.last_use = net.last_use()
        self.consumers = net.consumers()
        n = net.n_layers
        self.counted = [not ((t == 0 and io in INPUT_OUTSIDE) or (t == n and io == "external"))
                        for t in range(n + 1)]
        self.tbytes = [net.tensor_bytes(t) for t in range(n + 1)]

    def resident(self, i: int, j: int) -> list[int]:
        """Tensors alive during block [i..j]: produced at or before i and read at or after layer i,
        plus the block's output j + 1."""
        live = [t for t in range(i + 1) if self.last_use[t] >= i and self.consumers[t]]
        live.append(j + 1)
        return live

    def fused_legal(self, i: int, j: int) -> bool:
        """Layers i..j form a chain of window ops whose intermediates nobody else reads."""
        net = self.net
        for l in range(i, j + 1):
            L = net.layers[l]
            if L.op not in WINDOW_OPS or L.src != l or L.src2 is not None:
                return False
            if l > i and self.consumers[l] != [l]:
                return False
        return True

    def bytes_of(self, tensors) -> int:
        return sum(self.tbytes[t] for t in tensors if self.counted[t])


def unfused_schedule(net: Network, live: Liveness, l: int) -> BlockSchedule:
    layer = net.layers[l]
    res = live.resident(l, l)
    options = ()
    if layer.op == ADD:
        options = tuple(t for t in dict.fromkeys((layer.src, layer.src2))
                        if live.last_use[t] == l and live.counted[t] == live.counted[l + 1])
    inplace = options[0] if options else None
    counted = [t for t in res if not (inplace is not None and t == l + 1)]
    tb = live.bytes_of(counted)
    return BlockSchedule(first=l, last=l, mode="unfused", tile=0, resident=tuple(counted),
                         inplace=inplace, rings=(), tensor_bytes=tb, ram_bytes=tb,
                         macs=layer.macs, calls=1, layer_macs=(layer.macs,), tile_rows=1,
                         inplace_options=options)


def inplace_delay(layer) -> int | None:
    """Rows of output an in-place depthwise/pooling layer must hold back: the smallest D >= 1 such
    that writing output row y - D + 1 over the input, right after computing row y, never clobbers
    an input row a later output row still reads (output rows are packed W_out x C, input rows
    W_in x C, both from the start of the buffer).  None when no D < H_out works."""
    H_in, W_in, _ = layer.in_shape
    H_out, W_out, _ = layer.out_shape
    y = np.arange(H_out - 1, dtype=np.int64)               # rows after which a later one follows
    lo_next = np.maximum(0, (y + 1) * layer.sh - layer.pad[0])   # first input row still read
    for d in range(1, H_out):
        ok = (y < d - 1) | ((y - d + 2) * W_out <= lo_next * W_in)
        if bool(ok.all()):
            return d
    return None


def inplace_schedule(net: Network, live: Liveness, l: int) -> BlockSchedule | None:
    """Layer l (depthwise, max or average pool) writing its output over its own input: output
    rows go through a ring of D rows and are copied down once no later output row reads the input
    rows beneath them.  RAM = the input tensor + D output rows (instead of input + output)."""
    L = net.layers[l]
    if L.op not in (DW, MAXPOOL, AVGPOOL) or L.src != l:
        return None
    if live.last_use[l] != l or not live.counted[l] or not live.counted[l + 1]:
        return None
    if net.tensor_elems(l + 1) > net.tensor_elems(l):
        return None
    d = inplace_delay(L)
    if d is None:
        return None
    H_out, W_out, C = L.out_shape
    ring = Ring(layer=l, rows=d, cols=W_out, channels=C, bytes=d * W_out * C * net.elem_bytes)
    if ring.bytes >= net.tensor_bytes(l + 1):
        return None
    res = [t for t in live.resident(l, l) if t != l + 1]
    tb = live.bytes_of(res)
    return BlockSchedule(first=l, last=l, mode="inplace", tile=d, resident=tuple(res), inplace=l,
                         rings=(ring,), tensor_bytes=tb, ram_bytes=tb + ring.bytes,
                         macs=L.macs, calls=H_out, layer_macs=(L.macs,), tile_rows=H_out,
                         scratch_bytes=ring.bytes, inplace_options=(l,),
                         copy_bytes=net.tensor_bytes(l + 1))


def _block_starts(live: Liveness, j: int, max_depth: int | None):
    """First layers l = j, j-1, ... of the legal fused blocks [l..j], longest last."""
    for l in range(j, -1, -1):
        if not live.fused_legal(l, j) or (max_depth is not None and j - l + 1 > max_depth):
            return
        yield l


def _out_delay(lo_next, p: int, h_out: int, out_row: int, in_row: int) -> int | None:
    """Tile rows an in-place block must hold back: the smallest D >= 1 such that copying output
    tile row r - D + 1 over the input right after tile row r never reaches an input row that tile
    row r + 1 (or later) still reads; ``lo_next[r]`` is that first input row."""
    n = len(lo_next) + 1
    r = np.arange(n - 1, dtype=np.int64)
    for d in range(1, n):
        end = np.minimum((r - d + 2) * p, h_out) * out_row
        if bool(((r < d - 1) | (end <= lo_next * in_row)).all()):
            return d
    return None


def window_input_range(lo, hi, k: int, s: int, pad: int, size: int):
    """Input rows (or columns) ``[lo', hi')`` a window of kernel ``k``, stride ``s`` and leading
    padding ``pad`` over an extent ``size`` reads to produce outputs ``[lo, hi)``, clipped at the
    borders (vectorised over tiles).  The one backward step every block schedule sweeps with;
    :meth:`Range.back` is its closed form."""
    return (np.maximum(0, lo * s - pad), np.minimum(size, (hi - 1) * s - pad + k))


def hcache_schedules(net: Network, live: Liveness, j: int, tile: int,
                     max_depth: int | None = None, mode: str = "hcache",
                     emit_single: bool = False) -> list[BlockSchedule]:
    """All fused column-pipeline blocks [i..j] (i < j) ending at layer j with output tiles of
    ``tile`` rows, computed by one backward sweep (vectorised over tile rows).  ``mode``
    "linebuffer" is the same pipeline with one tile row of full height: every layer keeps a ring
    of k_w full-height columns of its input and nothing is recomputed.  ``mode`` "hcache-ip" is
    the H-cache block writing its output over its own (dying) input: finished output tile rows
    wait in a ring of D tile rows and are copied down once no later tile row reads the input
    rows beneath them, so the block holds its input + D tile rows instead of input + output."""
    inplace_out = mode == "hcache-ip"
    out: list[BlockSchedule] = []
    Lj = net.layers[j]
    if Lj.op not in WINDOW_OPS:
        return out
    H_out = Lj.out_shape[0]
    p = min(tile, H_out)
    n_rows = -(-H_out // p)
    lo = np.arange(n_rows, dtype=np.int64) * p
    hi = np.minimum(lo + p, H_out)
    ncols = Lj.out_shape[1]
    layer_macs: list[int] = []      # for l = j, j-1, ...
    calls = 0
    ring_list: list[Ring] = []      # rings of layers l+1 (added when l becomes an inner layer)
    eb = net.elem_bytes
    for l in _block_starts(live, j, max_depth):
        L = net.layers[l]
        _, W_o, C_o = L.out_shape
        rows_out = hi - lo
        layer_macs.append(int(rows_out.sum()) * ncols * C_o * L.macs_per_output())
        calls += n_rows * ncols
        # input rows / columns of layer l
        H_l, W_l, C_l = L.in_shape
        lo, hi = window_input_range(lo, hi, L.kh, L.sh, L.pad[0], H_l)
        ncols = min(W_l, (ncols - 1) * L.sw - L.pad[1] + L.kw)
        if (l < j or emit_single) and not inplace_out:
            res = live.resident(l, j)
            tb = live.bytes_of(res)
            lm = tuple(reversed(layer_macs))
            rings, scratch = _contiguous(list(reversed(ring_list)))
            out.append(BlockSchedule(
                first=l, last=j, mode=mode, tile=p, resident=tuple(res), inplace=None,
                rings=rings, tensor_bytes=tb, ram_bytes=tb + scratch,
                macs=sum(lm), calls=calls, layer_macs=lm, tile_rows=n_rows,
                scratch_bytes=scratch))
        elif l < j and n_rows > 1 and live.consumers[l] == [l] and live.counted[l] \
                and live.counted[j + 1] and net.tensor_bytes(j + 1) <= net.tensor_bytes(l):
            _, W_j, C_j = Lj.out_shape
            d = _out_delay(lo[1:], p, H_out, W_j * C_j, W_l * C_l)
            if d is not None and d < n_rows:
                res = [t for t in live.resident(l, j) if t != j + 1]
                tb = live.bytes_of(res)
                lm = tuple(reversed(layer_macs))
                ob = min(d * p, H_out) * W_j * C_j * eb
                rings, scratch = _contiguous(
                    list(reversed(ring_list))
                    + [Ring(layer=l, rows=min(d * p, H_out), cols=W_j, channels=C_j, bytes=ob)])
                out.append(BlockSchedule(
                    first=l, last=j, mode=mode, tile=p, resident=tuple(res), inplace=l,
                    rings=rings, tensor_bytes=tb, ram_bytes=tb + scratch, macs=sum(lm),
                    calls=calls, layer_macs=lm, tile_rows=n_rows, scratch_bytes=scratch,
                    inplace_options=(l,), copy_bytes=net.tensor_bytes(j + 1), tile_w=d))
        # layer l's input becomes a ring when a layer l-1 joins the block
        cols = min(L.kw, W_l)
        rows = int((hi - lo).max())
        rb = cols * rows * C_l * eb
        ring_list.append(Ring(layer=l, rows=rows, cols=cols, channels=C_l, bytes=rb))
    return out


def gap_tail_schedules(net: Network, live: Liveness, j: int, tile: int,
                       max_depth: int | None = None) -> list[BlockSchedule]:
    """Streaming tail ("iterative" global pooling): blocks [i..j] whose last layer j is a global
    average pool fed, column by column, by an H-cache pipeline over layers i..j-1; the GAP adds
    every produced column to per-channel sums (4 B per channel) and never stores its input map.
    The GAP's ring holds the sums and one staging column of its input (tile rows x 1 x C)."""
    L = net.layers[j]
    if L.op != GAP or L.src != j or j < 1 or live.consumers[j] != [j]:
        return []
    ops = (getattr(net, "tflite", None) or {}).get("ops")
    if ops and j < len(ops) and ops[j] == "AVERAGE_POOL_2D":
        return []   # TFLM's whole-input average pool keeps its own (non-GAP) rounding kernel
    out = []
    H_in, W_in, C = L.in_shape
    for s in hcache_schedules(net, live, j - 1, tile, None if max_depth is None else max_depth - 1,
                              emit_single=True):
        rows = min(s.tile, H_in)
        gb = 4 * C + rows * C * net.elem_bytes
        rings = s.rings + (Ring(layer=j, rows=rows, cols=1, channels=C, bytes=gb,
                                offset=s.scratch_bytes),)
        scratch = s.scratch_bytes + gb
        res = live.resident(s.first, j)
        tb = live.bytes_of(res)
        lm = s.layer_macs + (L.macs,)
        out.append(BlockSchedule(
            first=s.first, last=j, mode="hcache-gap", tile=s.tile, resident=tuple(res),
            inplace=None, rings=rings, tensor_bytes=tb, ram_bytes=tb + scratch, macs=sum(lm),
            calls=s.calls + s.tile_rows * W_in, layer_macs=lm, tile_rows=s.tile_rows,
            scratch_bytes=scratch))
    return out


def recompute_schedules(net: Network, live: Liveness, j: int, patch: int,
                        max_depth: int | None = None) -> list[BlockSchedule]:
    """All fused recompute blocks [i..j] ending at layer j (MCUNetV2 style): output patches of
    ``patch`` x ``patch`` pixels, each computed through every layer from its receptive field
    (rows and columns clipped at the borders), nothing cached.  Layer k's input patch buffer
    holds max rows x max cols x C; consecutive layers' buffers sit at opposite ends of one
    scratch region of size max_k (in_k + out_k)."""
    out: list[BlockSchedule] = []
    Lj = net.layers[j]
    if Lj.op not in WINDOW_OPS:
        return out
    H_out, W_out, _ = Lj.out_shape
    ph, pw = min(patch, H_out), min(patch, W_out)
    n_r, n_c = -(-H_out // ph), -(-W_out // pw)
    ylo = np.arange(n_r, dtype=np.int64) * ph
    yhi = np.minimum(ylo + ph, H_out)
    xlo = np.arange(n_c, dtype=np.int64) * pw
    xhi = np.minimum(xlo + pw, W_out)
    eb = net.elem_bytes
    layer_macs: list[int] = []
    bufs: list[Ring] = []   # input patch buffers of layers l+1 .. j (latest first)
    for l in _block_starts(live, j, max_depth):
        L = net.layers[l]
        C_o = L.out_shape[2]
        layer_macs.append(int((yhi - ylo).sum()) * int((xhi - xlo).sum()) * C_o
                          * L.macs_per_output())
        H_l, W_l, C_l = L.in_shape
        ylo, yhi = window_input_range(ylo, yhi, L.kh, L.sh, L.pad[0], H_l)
        xlo, xhi = window_input_range(xlo, xhi, L.kw, L.sw, L.pad[1], W_l)
        if l < j:
            inner = list(reversed(bufs))            # layers l+1 .. j
            sizes = [0] + [b.bytes for b in inner] + [0]   # input bytes of layers l .. j, then out
            scratch = max(sizes[k] + sizes[k + 1] for k in range(len(sizes) - 1))
            rings = []
            for k, b in enumerate(inner, start=1):  # k = layer index within the block
                off = 0 if k % 2 == 1 else scratch - b.bytes
                rings.append(Ring(b.layer, b.rows, b.cols, b.channels, b.bytes, off))
            res = live.resident(l, j)
            tb = live.bytes_of(res)
            lm = tuple(reversed(layer_macs))
            out.append(BlockSchedule(
                first=l, last=j, mode="recompute", tile=patch, resident=tuple(res), inplace=None,
                rings=tuple(rings), tensor_bytes=tb, ram_bytes=tb + scratch, macs=sum(lm),
                calls=n_r * n_c * (j - l + 1), layer_macs=lm, tile_rows=n_r,
                scratch_bytes=scratch, tile_w=pw))
        rows = int((yhi - ylo).max())
        cols = int((xhi - xlo).max())
        bufs.append(Ring(layer=l, rows=rows, cols=cols, channels=C_l, bytes=rows * cols * C_l * eb))
    return out


def block_schedules(net: Network, io: str = "arena", modes=DEFAULT_MODES, tiles=DEFAULT_TILES,
                    patches=DEFAULT_PATCHES, max_depth: int | None = None) -> list[BlockSchedule]:
    """Every candidate block variant of the network: all unfused layers, plus every legal fused
    block for each requested mode (hcache with each tile height in ``tiles``, linebuffer,
    recompute with each patch size in ``patches``)."""
    live = Liveness(net, io)
    scheds = [unfused_schedule(net, live, l) for l in range(net.n_layers)]
    for mode in modes:
        if mode not in FUSED_MODES:
            raise ValueError(f"unknown execution mode {mode!r} (choose from {', '.join(FUSED_MODES)})")
    for j in range(net.n_layers):
        if "inplace" in modes:
            s = inplace_schedule(net, live, j)
            if s is not None:
                scheds.append(s)
        for m in ("hcache", "hcache-ip"):
            if m in modes:
                for p in tiles:
                    scheds.extend(hcache_schedules(net, live, j, p, max_depth, mode=m))
        if "hcache-gap" in modes:
            for p in tuple(tiles) + (LINEBUFFER_TILE,):
                scheds.extend(gap_tail_schedules(net, live, j, p, max_depth))
        if "linebuffer" in modes:
            scheds.extend(hcache_schedules(net, live, j, LINEBUFFER_TILE, max_depth,
                                           mode="linebuffer"))
        if "recompute" in modes:
            for p in patches:
                scheds.extend(recompute_schedules(net, live, j, p, max_depth))
    # identical keys arise when a tile/patch is clamped to the output size: keep one
    seen = {}
    for s in scheds:
        seen.setdefault(s.key, s)
    return list(seen.values())


# -- arena layout -----------------------------------------------------------------------------------

#: alignment of the generated arena object (a union with a uint32_t member): the linked object, and
#: so the plan's ``arena_bytes``, is the laid-out extent rounded up to this
ARENA_ALIGN = 4


def aligned_arena(extent: int) -> int:
    """Bytes of the linked arena object for a layout reaching ``extent`` bytes."""
    return -(-int(extent) // ARENA_ALIGN) * ARENA_ALIGN


@dataclass
class ArenaLayout:
    arena_bytes: int                              # the linked object's size (aligned extent)
    tensor_offset: dict[int, int]                 # tensor id -> offset (arena tensors only)
    ring_offsets: list[tuple[int, ...]]           # per block, offsets of its rings
    fallback: bool                                # True when the two-ended layout did not fit


def plan_layout(net: Network, schedules: list[BlockSchedule], io: str = "arena",
                node_budget: int = 20000) -> ArenaLayout:
    """Assign arena offsets to every full tensor and scratch region of a plan (blocks in
    execution order).  A tensor keeps its offset for its whole life.

    The arena is first tried at exactly the plan's peak (the largest block RAM, rounded up to
    ``ARENA_ALIGN``: the linked object has those bytes anyway) by a depth-first
    search over placements: each block's output at either end of a free gap (first choice: the
    end away from the block's input, which packs any chain exactly with no backtracking; a second
    search prefers low ends, which keeps runs of in-place blocks packed), an in-place output
    over a dying input, the scratch region at either end of a gap.  Only if no
    placement exists within ``node_budget`` steps does it fall back to first-fit on a growing
    arena (``fallback``; ``arena_bytes`` is then larger than the peak)."""
    # the linked arena object is the peak rounded up to ARENA_ALIGN anyway: search within that
    peak = aligned_arena(max(s.ram_bytes for s in schedules))
    res = None
    for prefer in ("far", "low"):   # outputs away from inputs; or packed low (in-place chains)
        res = _search_layout(net, schedules, io, peak, node_budget, prefer)
        if res is not None:
            break
    if res is None:
        res = _search_layout(net, schedules, io, None, node_budget)
    if res is None:  # pragma: no cover - an unbounded arena always fits
        raise AssertionError("unbounded layout failed")
    return res


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
        out_t = s.last + 1
        in_t = net.layers[s.first].src
        choices = []   # (kind, value): ("alias", tensor) or ("at", offset) or ("none", None)
        if not live.counted[out_t]:
            choices.append(("none", None))
        elif s.inplace_options:
            choices += [("alias", t) for t in s.inplace_options if t in alloc]
        else:
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

    import sys
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


def schedule_of(net: Network, live: Liveness, first: int, last: int, mode: str,
                tile: int) -> BlockSchedule:
    """The schedule of one block variant: the same object the DAG costed."""
    if mode == "unfused":
        if first != last:
            raise ValueError(f"unfused block {first}-{last} must be one layer")
        return unfused_schedule(net, live, first)
    if mode == "inplace":
        s = inplace_schedule(net, live, first) if first == last else None
        if s is not None:
            return s
    elif mode in ("hcache", "hcache-ip", "linebuffer"):
        t = LINEBUFFER_TILE if mode == "linebuffer" else tile
        for s in hcache_schedules(net, live, last, t, mode=mode):
            if s.first == first:
                return s
    elif mode == "hcache-gap":
        for s in gap_tail_schedules(net, live, last, tile):
            if s.first == first:
                return s
    elif mode == "recompute":
        for s in recompute_schedules(net, live, last, tile):
            if s.first == first:
                return s
    else:
        raise ValueError(f"unknown execution mode {mode!r}")
    raise ValueError(f"block {first}-{last} cannot run fused ({mode})")


# -- block geometry (what the C executor reads) ------------------------------------------------------

@dataclass(frozen=True)
class Range:
    """Rows (or columns) ``[lo(t), hi(t))`` of one tensor of a fused block for tile index ``t``:
    ``lo = max(0, t * step - lo_sub)``, ``hi = min(hi_max, t * step + hi_add)`` (the C
    ``msf_range``).  The backward sweeps of the schedules (``lo_l = max(0, lo_{l+1} s - pt)``,
    ``hi_l = min(H_l, (hi_{l+1} - 1) s - pt + kh)``) compose into exactly this form."""
    step: int
    lo_sub: int
    hi_add: int
    hi_max: int

    def lo(self, t):
        return np.maximum(0, np.asarray(t, dtype=np.int64) * self.step - self.lo_sub)

    def hi(self, t):
        return np.minimum(self.hi_max, np.asarray(t, dtype=np.int64) * self.step + self.hi_add)

    def back(self, k: int, s: int, pad: int, size: int) -> "Range":
        """The input range of a window (kernel k, stride s, leading pad) over an extent ``size``
        whose output range is ``self``."""
        return Range(self.step * s, self.lo_sub * s + pad, (self.hi_add - 1) * s - pad + k,
                     min(size, (self.hi_max - 1) * s - pad + k))


ZERO_RANGE = Range(0, 0, 0, 0)


@dataclass(frozen=True)
class BlockGeometry:
    """Every extent the C executor needs to run a block, per layer of the block (entries of a
    streaming GAP tail layer are ``ZERO_RANGE``)."""
    tile_h: int                     # output rows per tile row (in-place single layer: D)
    n_tiles: int                    # tile rows (in-place single layer: output rows)
    n_tile_cols: int                # recompute: patch columns, else 1
    out_rows: tuple[Range, ...]     # rows of each layer's output per tile row
    out_cols: tuple[Range, ...]     # recompute: columns of each layer's output per patch column
    need_cols: tuple[Range, ...]    # hcache modes: input columns layer k reads for output col c


def block_geometry(net: Network, s: BlockSchedule) -> BlockGeometry:
    """The tile-row / patch ranges of schedule ``s`` in closed form, checked against the same
    backward sweep the schedule generators run and against the buffer extents they sized."""
    n = s.last - s.first + 1
    layers = [net.layers[l] for l in range(s.first, s.last + 1)]
    if s.mode == "unfused":
        return BlockGeometry(0, 1, 1, (ZERO_RANGE,), (ZERO_RANGE,), (ZERO_RANGE,))
    if s.mode == "inplace":
        H = layers[0].out_shape[0]
        return BlockGeometry(s.tile, H, 1, (Range(1, 0, 1, H),), (ZERO_RANGE,), (ZERO_RANGE,))
    nw = n - 1 if s.mode == "hcache-gap" else n
    last = layers[nw - 1]
    H_out, W_out = last.out_shape[0], last.out_shape[1]
    ph = min(s.tile, H_out)
    n_tiles = -(-H_out // ph)
    rows = [Range(ph, 0, ph, H_out)]
    cols = [ZERO_RANGE]
    n_tile_cols = 1
    if s.mode == "recompute":
        pw = min(s.tile, W_out)
        n_tile_cols = -(-W_out // pw)
        cols = [Range(pw, 0, pw, W_out)]
    for L in reversed(layers[1:nw]):
        rows.append(rows[-1].back(L.kh, L.sh, L.pad[0], L.in_shape[0]))
        if s.mode == "recompute":
            cols.append(cols[-1].back(L.kw, L.sw, L.pad[1], L.in_shape[1]))
    rows.reverse()
    cols.reverse()
    if s.mode != "recompute":
        cols = [ZERO_RANGE] * nw
    need = [Range(L.sw, L.pad[1], L.kw - L.pad[1], L.in_shape[1]) if s.mode != "recompute"
            else ZERO_RANGE for L in layers[:nw]]
    # the closed form is the generators' backward sweep, tile row by tile row
    t = np.arange(n_tiles, dtype=np.int64)
    lo, hi = t * ph, np.minimum(t * ph + ph, H_out)
    for k in range(nw - 1, 0, -1):
        L = layers[k]
        lo, hi = window_input_range(lo, hi, L.kh, L.sh, L.pad[0], L.in_shape[0])
        if not (np.array_equal(lo, rows[k - 1].lo(t)) and np.array_equal(hi, rows[k - 1].hi(t))):
            raise AssertionError(f"block {s.label}: row ranges of layer {s.first + k - 1}")
    bufs = {r.layer: r for r in s.rings}
    for k in range(1, nw):
        r = bufs.get(s.first + k)
        ext = int((rows[k - 1].hi(t) - rows[k - 1].lo(t)).max())
        if s.mode == "recompute":
            c = np.arange(n_tile_cols, dtype=np.int64)
            xext = int((cols[k - 1].hi(c) - cols[k - 1].lo(c)).max())
        else:
            xext = min(layers[k].kw, layers[k].in_shape[1])
        if r is None or r.rows != ext or r.cols != xext:
            raise AssertionError(f"block {s.label}: buffer of layer {s.first + k} does not match "
                                 f"its ranges")
    if s.mode == "hcache-gap":
        rows.append(ZERO_RANGE)
        cols.append(ZERO_RANGE)
        need.append(ZERO_RANGE)
    for rg in rows + cols + need:   # the C msf_range: int16 fields, int32 evaluation
        if max(abs(rg.step), abs(rg.lo_sub), abs(rg.hi_add), abs(rg.hi_max)) >= 1 << 15 or \
                abs(rg.step * max(n_tiles, n_tile_cols, W_out)) >= 1 << 31:
            raise ValueError(f"block {s.label}: tile ranges exceed the C executor's int16 "
                             f"range fields (tensor extents must stay below 32768)")
    return BlockGeometry(ph, n_tiles, n_tile_cols, tuple(rows), tuple(cols), tuple(need))
