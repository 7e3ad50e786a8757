"""Execution modes: the generators of every block variant a network can run as, and the one
dispatch from a mode name to its generator (:func:`block_schedules`, :func:`schedule_of`).

``unfused``     one layer, whole output from whole input(s).  An elementwise op (residual add,
                standalone activation, multiply) writes in place over a same-shape input whose
                last use it is.
``inplace``     one depthwise / pooling layer writing its output over its own dying input: output
                rows wait in a ring of D rows and are copied down once no later output row reads
                the input rows beneath them (:func:`inplace_delay`).
``hcache``      fused chain of window layers (conv / depthwise / pool), msf-CNN style, generalised
                to output tiles of ``tile`` rows (``tile == 1`` is msf-CNN's 1-pixel tile).  For
                output tile row r the last layer produces rows [r*p, min(r*p + p, H)).  Going
                backwards, layer l needs input rows ``lo_l = max(0, lo_{l+1} s_l - pt_l)``,
                ``hi_l = min(H_l, (hi_{l+1} - 1) s_l - pt_l + kh_l)``.  Layer l+1's input is held
                in a ring of ``min(kw, W)`` columns x (hi - lo) rows x C (the horizontal cache);
                columns flow demand-driven, left to right, and rows are recomputed by the next tile
                row.  Layer l computes columns ``0 .. ncols_{l+1} - 1`` with
                ``ncols_{j+1} = W_{j+1}`` and ``ncols_l = min(W_l, (ncols_{l+1} - 1) sw_l - pl_l +
                kw_l)``.  The block's first layer reads its input tensor in place and the last
                layer writes its output tensor directly.
``hcache-ip``   the H-cache block writing its output over its own dying input: finished output tile
                rows wait in a ring of D tile rows (``tile_w`` holds D).
``hcache-gap``  a streaming tail: an H-cache pipeline feeding a global average pool column by
                column; the pool keeps per-channel sums, never its input map.
``linebuffer``  the H-cache pipeline with one tile row of full height (``LINEBUFFER_TILE``): every
                layer keeps a ring of k_w full-height columns of its input, nothing is recomputed.
``recompute``   MCUNetV2-style patches of ``tile`` x ``tile`` output pixels, each computed through
                every layer of the block from its receptive field, nothing cached.
"""
from __future__ import annotations

import numpy as np

from .ir import AVGPOOL, DW, ELEMENTWISE_OPS, GAP, MAXPOOL, PIPELINE_OPS, RESHAPE, Network
from .schedule import BlockSchedule, Liveness, Ring, window_input_range

#: the execution modes searched beside the plain unfused layers ("inplace" is a single-layer
#: variant); the default search uses all of them, with H-cache tiles of ``DEFAULT_TILES`` rows,
#: line buffers and recompute patches of ``DEFAULT_PATCHES`` pixels
FUSED_MODES = ("hcache", "hcache-ip", "hcache-gap", "linebuffer", "recompute", "inplace")
DEFAULT_TILES = (1, 2, 4)
DEFAULT_PATCHES = (4, 8, 16)
#: the tile height of a line buffer: one tile row of full height
LINEBUFFER_TILE = 1 << 30


def _contiguous(rings: list[Ring]) -> tuple[tuple[Ring, ...], int]:
    out, off = [], 0
    for r in rings:
        out.append(Ring(r.layer, r.rows, r.cols, r.channels, r.bytes, off))
        off += r.bytes
    return tuple(out), off


def unfused_schedule(net: Network, live: Liveness, l: int) -> BlockSchedule:
    layer = net.layers[l]
    res = live.resident(l, l)
    options = ()
    if l + 1 in live.alias_of:
        pass    # the output is a concat slice: never over an input
    elif layer.op == RESHAPE:
        # the same bytes under another shape: the output may be its dying input
        options = tuple(t for t in layer.srcs if live.last_use[t] == l
                        and live.counted[t] == live.counted[l + 1])
    elif layer.op in ELEMENTWISE_OPS:
        # an elementwise op may overwrite a same-shape input it is the last reader of
        options = tuple(t for t in dict.fromkeys(layer.srcs)
                        if net.tensor_shape(t) == tuple(layer.out_shape)
                        and live.last_use[t] == l and live.counted[t] == live.counted[l + 1])
    inplace = options[0] if options else None
    counted = [t for t in res if not (inplace is not None and t == l + 1)]
    tb = live.bytes_of(counted)
    # an output written into a concat slice goes there one output row at a time: the executor
    # runs the kernel once per output row (then copies the row into its slice)
    stage = live.stage_ring(l + 1, 1, layer.out_shape[1], 0)
    rings = (stage,) if stage is not None else ()
    sb = stage.bytes if stage is not None else 0
    calls = layer.out_shape[0] if stage is not None else 1
    return BlockSchedule(first=l, last=l, mode="unfused", tile=0, resident=tuple(counted),
                         inplace=inplace, rings=rings, tensor_bytes=tb, ram_bytes=tb + sb,
                         macs=layer.macs, calls=calls, layer_macs=(layer.macs,), tile_rows=1,
                         inplace_options=options, scratch_bytes=sb)


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


class FastLiveness(Liveness):
    """:class:`~msfopt.schedule.Liveness` with the same answers, made cheap for the generators:
    ``fused_legal`` in O(1) from each layer's first legal block start, ``resident`` from cached
    per-layer lists of the tensors alive at a block's first layer."""

    def __init__(self, net: Network, io: str = "arena"):
        super().__init__(net, io)
        n = net.n_layers
        ok = [L.op in PIPELINE_OPS and L.srcs == (l,) for l, L in enumerate(net.layers)]
        # start[j]: the least i with fused_legal(i, j) (j + 1 when layer j cannot be in a block);
        # fused_legal(i, j) holds iff every layer of i..j is ok and tensors i+1..j have one reader
        start = []
        for j in range(n):
            if not ok[j]:
                start.append(j + 1)
            elif j > 0 and ok[j - 1] and self.consumers[j] == [j] and j not in self.outputs:
                start.append(start[j - 1])
            else:
                start.append(j)
        self.run_start = start
        self._alive: dict[int, list[int]] = {}

    def fused_legal(self, i: int, j: int) -> bool:
        return self.run_start[j] <= i <= j

    def alive_at(self, i: int) -> list[int]:
        alive = self._alive.get(i)
        if alive is None:
            alive = self._alive[i] = super().alive_at(i)
        return list(alive)


class GrowthBound:
    """Exact pruning of long fused blocks: a block that the plain unfused layers beat in every
    metric is never generated, and neither is any longer block it certifies.

    Claim.  Let B = [l'..j] be a block of mode hcache, hcache-ip, linebuffer or recompute inside
    the legal run [a..j] (:attr:`FastLiveness.run_start`), and U the unfused path over the same
    layers.  Suppose (i) no unfused layer of [a..j] is in-place (so U is made of non-in-place
    edges, the kind ``dag._prune`` never lets an in-place variant remove), (ii) every layer
    m in (a..j] reads every row and column of its input ((H_out - 1) s - pad + k >= H_in and
    s <= k, the same for widths) and every layer's MACs are H*W*C*macs_per_output, (iii) every layer of B
    is called at least twice per block (hcache: tile rows x W >= 2; recompute: patches >= 2),
    (iv) every cycle-model coefficient is >= 0 and ``per_call`` >= 1, and (v) the RAM lower bound
    ``out(j+1) + min_{l' in [a..l]} in(l') + R(l)`` is at least the largest unfused RAM in [a..j],
    where R(l) is the ring/scratch bytes of [l..j] (every longer block of the same mode and tile
    ending at j holds these rings, identical because the backward sweep from j is the same, plus
    more) and ``in``/``out`` are counted tensor bytes (no ``out`` for hcache-ip, which writes
    over its input).  Then for every l' <= l, U has peak <= ram(B) (v), MACs <= MACs(B) (by (ii)
    layer j's output tiling covers it exactly and each earlier layer's computed rows and columns
    cover its whole output, so each layer does at least its unfused MACs), and cycles < cycles(B):
    per layer the fused cost is the unfused cost plus non-negative terms (recomputed outputs,
    ``fused_out``, copies) plus ``per_call`` x (calls - 1) >= 1 (iii, iv), so even after rounding
    each unfused layer to an integer the sum stays strictly below the block's rounded total (with
    integral terms: at most equal).  Replacing B by U in any plan therefore keeps every
    constraint (RAM cap, latency budget) and never worsens the lexicographic key of any objective
    msfopt solves (latency, MACs or RAM first, then the other two; with two or more calls per
    layer strictly better, since cycles drop), so some optimal plan avoids B: dropping it changes
    no optimal (latency, peak, tertiary) value.  The sweep over
    l = j, j-1, ... stops at the first l where the claim holds.

    The one assumption outside the cost model: the plan with U packs in the arena whenever the
    plan with B does (U's tensors form a chain segment, which ``plan_layout``'s far-end placement
    packs exactly).  With the bound, a 300-layer chain has O(n) edges instead of O(n^2)."""

    def __init__(self, net: Network, live: FastLiveness, cycle_model, unfused=None):
        """``unfused``: the layers' :func:`unfused_schedule` (in layer order), when the caller
        has them."""
        n = net.n_layers
        self.ok = cycle_model is not None and _coefficients_ok(cycle_model)
        # every per-layer cycle term an integer: then a block called once per layer (one patch,
        # one line-buffer column...) costs at least the unfused layers' rounded sum
        self.integral = self.ok and _coefficients_integral(cycle_model)
        ru, inb = [], []
        good, wide = [], []
        for q, L in enumerate(net.layers):
            u = unfused[q] if unfused is not None else unfused_schedule(net, live, q)
            ru.append(u.ram_bytes)
            inb.append(live.tbytes[q] if live.counted[q] else 0)
            mpo = L.macs_per_output()
            h, w, c = L.out_shape
            g = not u.inplace_options and L.macs == h * w * c * mpo
            wide.append(w >= 2)
            good.append(g)
        self.out_b = [live.out_bytes(t) for t in range(n + 1)]
        # prefix (from each run's start) max unfused RAM, min input bytes, all-conditions flags
        self.max_ru, self.min_in, self.all_ok, self.all_wide = [], [], [], []
        start = live.run_start
        for q in range(n):
            L = net.layers[q]
            first = start[q] >= q
            reads_all = True
            if not first and L.op in PIPELINE_OPS:
                (H_i, W_i, _), (H_o, W_o, _) = L.in_shape, L.out_shape
                reads_all = ((H_o - 1) * L.sh - L.pad[0] + L.ekh >= H_i
                             and (W_o - 1) * L.sw - L.pad[1] + L.ekw >= W_i
                             and L.sh <= L.ekh and L.sw <= L.ekw)
            if first:
                self.max_ru.append(ru[q])
                self.min_in.append(inb[q])
                self.all_ok.append(good[q])
                self.all_wide.append(wide[q])
            else:
                self.max_ru.append(max(self.max_ru[q - 1], ru[q]))
                self.min_in.append(min(self.min_in[q - 1], inb[q]))
                self.all_ok.append(self.all_ok[q - 1] and good[q] and reads_all)
                self.all_wide.append(self.all_wide[q - 1] and wide[q])

    def stops(self, j: int, l: int, scratch_lb: int, calls_per_layer_ok: bool,
              out_counted: bool = True) -> bool:
        """Whether block [l..j] and every longer one of the same mode and tile ending at j are
        beaten by the unfused layers (the claim above); ``scratch_lb`` is R(l)."""
        if not (self.ok and self.all_ok[j] and (calls_per_layer_ok or self.integral)):
            return False
        lb = (self.out_b[j + 1] if out_counted else 0) + self.min_in[l] + scratch_lb
        return lb >= self.max_ru[j]


def _fast_kernel_terms(cm) -> list[float]:
    return [cm.conv_border, cm.dw_border, cm.run_ch, cm.fused_conv_mac, cm.fused_dw_mac,
            cm.fused_dw_wide_mac]


def _coefficients_integral(cm) -> bool:
    vals = list(cm.cpm.values()) + list(cm.cpo.values()) + [
        cm.add_per_elem, cm.copy_per_byte, cm.fused_out, cm.unclamped_out, cm.per_call,
        cm.float_rq_out, cm.avgpool_float_out, cm.gap_float_out, cm.fixed_rq_out,
        cm.fixed_add_elem]
    return all(float(v).is_integer() for v in vals) and cm.conv_tap == 0 and \
        not any(_fast_kernel_terms(cm))


def _coefficients_ok(cm) -> bool:
    vals = list(cm.cpm.values()) + list(cm.cpo.values()) + [
        cm.add_per_elem, cm.copy_per_byte, cm.fused_out, cm.unclamped_out, cm.conv_tap,
        cm.float_rq_out, cm.avgpool_float_out, cm.gap_float_out, cm.fixed_rq_out,
        cm.fixed_add_elem] + _fast_kernel_terms(cm)
    return all(v >= 0 for v in vals) and cm.per_call >= 1


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


def hcache_schedules(net: Network, live: Liveness, j: int, tile: int,
                     max_depth: int | None = None, mode: str = "hcache",
                     emit_single: bool = False,
                     bound: GrowthBound | None = None) -> list[BlockSchedule]:
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
    if Lj.op not in PIPELINE_OPS:
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
    ring_sum = 0
    for l in _block_starts(live, j, max_depth):
        if bound is not None and l < j and bound.stops(
                j, l, ring_sum, n_rows >= 2 or bound.all_wide[j], out_counted=not inplace_out):
            break
        L = net.layers[l]
        _, W_o, C_o = L.out_shape
        rows_out = hi - lo
        layer_macs.append(int(rows_out.sum()) * ncols * C_o * L.macs_per_output())
        calls += n_rows * ncols
        # input rows / columns of layer l
        H_l, W_l, C_l = L.in_shape
        lo, hi = window_input_range(lo, hi, L.ekh, L.sh, L.pad[0], H_l)
        ncols = min(W_l, (ncols - 1) * L.sw - L.pad[1] + L.ekw)
        if (l < j or emit_single) and not inplace_out:
            res = live.resident(l, j)
            tb = live.bytes_of(res)
            lm = tuple(reversed(layer_macs))
            rings, scratch = _contiguous(list(reversed(ring_list)))
            stage = live.stage_ring(j + 1, p, 1, scratch)
            if stage is not None:       # one output column of a tile row, then its slice
                rings, scratch = rings + (stage,), scratch + stage.bytes
            out.append(BlockSchedule(
                first=l, last=j, mode=mode, tile=p, resident=tuple(res), inplace=None,
                rings=rings, tensor_bytes=tb, ram_bytes=tb + scratch,
                macs=sum(lm), calls=calls, layer_macs=lm, tile_rows=n_rows,
                scratch_bytes=scratch))
        elif l < j and n_rows > 1 and live.consumers[l] == [l] and l not in live.outputs \
                and live.counted[l] \
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
        cols = min(L.ekw, W_l)
        rows = int((hi - lo).max())
        rb = cols * rows * C_l * eb
        ring_list.append(Ring(layer=l, rows=rows, cols=cols, channels=C_l, bytes=rb))
        ring_sum += rb
    return out


def gap_tail_schedules(net: Network, live: Liveness, j: int, tile: int,
                       max_depth: int | None = None) -> list[BlockSchedule]:
    """Streaming tail ("iterative" global pooling): blocks [i..j] whose last layer j is a global
    average pool fed, column by column, by an H-cache pipeline over layers i..j-1; the GAP adds
    every produced column to per-channel sums (4 B per channel) and never stores its input map.
    The GAP's ring holds the sums and one staging column of its input (tile rows x 1 x C)."""
    L = net.layers[j]
    if L.op != GAP or L.src != j or j < 1 or live.consumers[j] != [j] or j in live.outputs:
        return []
    if L.gap_rounding == "tflm-avgpool":
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
        stage = live.stage_ring(j + 1, 1, 1, scratch)
        if stage is not None:           # the 1 x 1 x C result, then its concat slice
            rings, scratch = rings + (stage,), scratch + stage.bytes
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
                        max_depth: int | None = None,
                        bound: GrowthBound | None = None) -> list[BlockSchedule]:
    """All fused recompute blocks [i..j] ending at layer j (MCUNetV2 style): output patches of
    ``patch`` x ``patch`` pixels, each computed through every layer from its receptive field
    (rows and columns clipped at the borders), nothing cached.  Layer k's input patch buffer
    holds max rows x max cols x C; consecutive layers' buffers sit at opposite ends of one
    scratch region of size max_k (in_k + out_k)."""
    out: list[BlockSchedule] = []
    Lj = net.layers[j]
    if Lj.op not in PIPELINE_OPS:
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
        if bound is not None and l < j:
            sizes = [0] + [b.bytes for b in bufs] + [0]
            lb = max(sizes[k] + sizes[k + 1] for k in range(len(sizes) - 1))
            if bound.stops(j, l, lb, n_r * n_c >= 2):
                break
        L = net.layers[l]
        C_o = L.out_shape[2]
        layer_macs.append(int((yhi - ylo).sum()) * int((xhi - xlo).sum()) * C_o
                          * L.macs_per_output())
        H_l, W_l, C_l = L.in_shape
        ylo, yhi = window_input_range(ylo, yhi, L.ekh, L.sh, L.pad[0], H_l)
        xlo, xhi = window_input_range(xlo, xhi, L.ekw, L.sw, L.pad[1], W_l)
        if l < j:
            inner = list(reversed(bufs))            # layers l+1 .. j
            sizes = [0] + [b.bytes for b in inner] + [0]   # input bytes of layers l .. j, then out
            scratch = max(sizes[k] + sizes[k + 1] for k in range(len(sizes) - 1))
            rings = []
            for k, b in enumerate(inner, start=1):  # k = layer index within the block
                off = 0 if k % 2 == 1 else scratch - b.bytes
                rings.append(Ring(b.layer, b.rows, b.cols, b.channels, b.bytes, off))
            stage = live.stage_ring(j + 1, ph, pw, scratch)
            if stage is not None:       # one output patch, then its concat slice
                rings.append(stage)
                scratch += stage.bytes
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


def block_schedules(net: Network, io: str = "arena", modes=FUSED_MODES, tiles=DEFAULT_TILES,
                    patches=DEFAULT_PATCHES, max_depth: int | None = None,
                    cycle_model=None) -> list[BlockSchedule]:
    """Every candidate block variant of the network: all unfused layers, plus every legal fused
    block for each requested mode (hcache with each tile height in ``tiles``, linebuffer,
    recompute with each patch size in ``patches``).  With ``cycle_model``, blocks that the
    unfused layers beat in RAM, MACs and cycles under that model are not generated
    (:class:`GrowthBound`: exact, no optimum is lost)."""
    live = FastLiveness(net, io)
    bound = GrowthBound(net, live, cycle_model) if cycle_model is not None else None
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
                    scheds.extend(hcache_schedules(net, live, j, p, max_depth, mode=m,
                                                   bound=bound))
        if "hcache-gap" in modes:
            for p in tuple(tiles) + (LINEBUFFER_TILE,):
                scheds.extend(gap_tail_schedules(net, live, j, p, max_depth))
        if "linebuffer" in modes:
            scheds.extend(hcache_schedules(net, live, j, LINEBUFFER_TILE, max_depth,
                                           mode="linebuffer", bound=bound))
        if "recompute" in modes:
            for p in patches:
                scheds.extend(recompute_schedules(net, live, j, p, max_depth, bound=bound))
    # identical keys arise when a tile/patch is clamped to the output size: keep one
    seen = {}
    for s in scheds:
        seen.setdefault(s.key, s)
    return list(seen.values())


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


# -- bulk costs (the DAG build's fast path) -----------------------------------------------------

#: per-row columns of :func:`block_costs` (``rank`` orders the modes as :func:`block_schedules`
#: emits them, so pruning breaks ties the same way)
COST_COLUMNS = ("first", "last", "mode", "tile", "ram", "macs", "calls", "copy", "inplace", "rank",
                "tile_rows", "seq", "seqlen")


def out_delay_closed(lo_next, p: int, h_out: int, out_row: int, in_row: int) -> int | None:
    """:func:`_out_delay` in closed form.  For each tile row r the condition
    ``min((r - D + 2) p, h_out) * out_row <= lo_next[r] * in_row`` is monotone in D (the left
    side does not grow with D), so r asks D >= 1 when h_out fits below ``lo_next[r] * in_row``
    and D >= r + 2 - floor(c_r / p) otherwise (c_r = floor(lo_next[r] in_row / out_row)); D is
    the largest ask, None unless D < len(lo_next) + 1."""
    n = len(lo_next) + 1
    if n <= 1:
        return None
    c = (np.asarray(lo_next, dtype=np.int64) * in_row) // out_row
    r = np.arange(n - 1, dtype=np.int64)
    ask = np.where(h_out <= c, 1, np.maximum(1, r + 2 - c // p))
    d = int(ask.max())
    return d if d < n else None


def block_costs(net: Network, io: str = "arena", modes=FUSED_MODES, tiles=DEFAULT_TILES,
                patches=DEFAULT_PATCHES, max_depth: int | None = None, cycle_model=None,
                live: FastLiveness | None = None, unfused=None):
    """The costs of every fused variant :func:`block_schedules` generates (same blocks, same
    RAM / MACs / calls / copied bytes, same :class:`GrowthBound` cut), without building a
    :class:`~msfopt.schedule.BlockSchedule` per block: one backward window sweep per block end
    serves every tile, patch and mode at once (all tile rows of all tiles in one vector; the
    sweeps of all block ends run together, :func:`_sweep`), and each block's numbers are running
    sums along its sweep, taken for all its steps and families at once (:func:`_emit_all`).
    Unfused and in-place single-layer variants are not included (the caller builds their few
    schedules).  ``live``: the
    network's :class:`FastLiveness` for ``io``, and ``unfused`` its layers' unfused
    schedules, when the caller has them.

    Returns ``(rows, seq)``: ``rows`` a dict of int64 arrays keyed by :data:`COST_COLUMNS`
    (``mode`` an index into :data:`FUSED_MODES`), ``seq`` a dict of per-entry int64 arrays:
    ``layer``, ``macs`` (the per-layer work of every block, row ``k`` covering entries ``seq[k]
    .. seq[k] + seqlen[k] - 1`` in layer order, the cycle model's order of summation), and the
    entry's sweep ``units`` (tile rows of a column pipeline, patches of a recompute block) with
    ``recompute`` (1 for a recompute sweep)."""
    for mode in modes:
        if mode not in FUSED_MODES:
            raise ValueError(f"unknown execution mode {mode!r} (choose from {', '.join(FUSED_MODES)})")
    live = live if live is not None else FastLiveness(net, io)
    bound = GrowthBound(net, live, cycle_model, unfused) if cycle_model is not None else None
    n = net.n_layers
    eb = net.elem_bytes
    layers = net.layers
    tbytes, counted = live.tbytes, live.counted
    cb = [tbytes[t] if counted[t] else 0 for t in range(n + 1)]
    alive_b = [0] * n       # counted bytes of the tensors alive at a block's first layer
    for i in range(n):
        alive_b[i] = sum(cb[t] for t in live.alive_at(i))
    alive_np = np.asarray(alive_b, dtype=np.int64)
    # per layer: output work per output pixel row unit, ring bytes per input row, input channels
    unit_of = np.zeros(n, dtype=np.int64)
    ring_unit_of = np.zeros(n, dtype=np.int64)
    cin_of = np.zeros(n, dtype=np.int64)
    for l, L in enumerate(layers):
        if L.op in PIPELINE_OPS:
            unit_of[l] = L.out_shape[2] * L.macs_per_output()
            ring_unit_of[l] = min(L.ekw, L.in_shape[1]) * L.in_shape[2] * eb
            cin_of[l] = L.in_shape[2]
    fam_all: list[dict] = []
    ends: list[dict] = []                    # per block end: its families and sweep record
    geometry: dict = {}                      # _end_geometry per (H_out, W_out, families)
    MI = {m: k for k, m in enumerate(FUSED_MODES)}

    want_h = "hcache" in modes
    want_ip = "hcache-ip" in modes
    want_lb = "linebuffer" in modes
    want_gap = "hcache-gap" in modes
    want_rc = "recompute" in modes
    for e in range(n):
        Le = layers[e]
        if Le.op not in PIPELINE_OPS:
            continue
        # the GAP tail fed by a sweep ending at e (gap_tail_schedules' conditions)
        g = e + 1
        gap = None
        if want_gap and g < n:
            G = layers[g]
            if (G.op == GAP and G.src == g and live.consumers[g] == [g] and g not in live.outputs
                    and G.gap_rounding != "tflm-avgpool"):
                gap = G
        H_out, W_out, C_e = Le.out_shape
        # families: (kind, mode, tile p, rank); kind "h" = column pipeline, "r" = recompute
        fams = []
        if want_h:
            fams += [("h", "hcache", min(t, H_out), 10 + k) for k, t in enumerate(tiles)]
        if want_ip:
            fams += [("h", "hcache-ip", min(t, H_out), 20 + k) for k, t in enumerate(tiles)]
        if gap is not None:
            fams += [("h", "hcache-gap", min(t, H_out), 30 + k)
                     for k, t in enumerate(tuple(tiles) + (LINEBUFFER_TILE,))]
        if want_lb:
            fams.append(("h", "linebuffer", H_out, 40))
        if want_rc:
            fams += [("r", "recompute", p, 50 + k) for k, p in enumerate(patches)]
        seen, uniq = set(), []
        for f in fams:
            if (f[1], f[2]) not in seen:
                seen.add((f[1], f[2]))
                uniq.append(f)
        fams = uniq
        if not fams:
            continue
        key = (H_out, W_out, tuple(fams))
        geo = geometry.get(key)
        if geo is None:
            geo = geometry[key] = _end_geometry(H_out, W_out, fams)
        st = []    # per family state
        for (kind, mode, p, rank), fg in zip(fams, geo["fams"]):
            s = {"kind": kind, "mode": mode, "p": p, "rank": rank, **fg, "dead": -1,
                 "mi": MI[mode], "id": len(fam_all)}
            fam_all.append(s)
            st.append(s)
        lmin = live.run_start[e]
        if max_depth is not None:
            lmin = max(lmin, e - max_depth + 1)
        gap_lmin = lmin
        if max_depth is not None and gap is not None:
            gap_lmin = max(live.run_start[e], e - (max_depth - 1) + 1)
        # the growth bound's cut, per family: stop before layer l joins when
        # min_in[l] + ring >= thr (GrowthBound.stops, inlined)
        active = bound is not None and bound.ok and bound.all_ok[e]
        for s in st:
            if s["kind"] == "h":
                calls_ok = s["n_rows"] >= 2 or bound.all_wide[e] if active else False
                out_part = 0 if s["mode"] == "hcache-ip" else (bound.out_b[e + 1] if active else 0)
            else:
                calls_ok = s["n_patch"] >= 2
                out_part = bound.out_b[e + 1] if active else 0
            s["cut"] = (active and s["mode"] != "hcache-gap"
                        and (calls_ok or bound.integral))
            s["thr"] = bound.max_ru[e] - out_part if active else 0
            s["lim"] = gap_lmin if s["mode"] == "hcache-gap" else lmin
        hf = [s for s in st if s["kind"] == "h"]
        rf = [s for s in st if s["kind"] == "r"]
        i64 = np.int64
        er = geo["ER"].copy()
        er[2] = W_out * C_e
        fh = np.asarray([(0, s["seg"], s["lim"], s["cut"], s["thr"], e, 0, -1) for s in hf],
                        dtype=i64).reshape(-1, len(_FH)).T.copy()
        fr = np.asarray([(0, s["seg"], s["cseg"], s["lim"], s["cut"], s["thr"], e, 0, 0, -1)
                         for s in rf], dtype=i64).reshape(-1, len(_FR)).T.copy()
        ends.append({
            "e": e, "g": g, "gap": gap, "H_out": H_out, "W_out": W_out, "C_e": C_e,
            "hf": hf, "rf": rf, "ER": er, "EX": geo["EX"].copy(), "SR": geo["SR"].copy(),
            "SX": geo["SX"].copy(), "FH": fh, "FR": fr, "nseg": geo["nseg"],
            "nxseg": geo["nxseg"], "rsum0": geo["rsum"], "xsum0": geo["xsum"], "T": 0})
    hist = _sweep(net, live, bound, ends, eb, ring_unit_of, cin_of)
    tb_np = np.asarray(tbytes, dtype=np.int64)
    rows, seq, (f_id, f_base) = _emit_all(ends, hist, live, cb, alive_np, tb_np, unit_of,
                                          ring_unit_of, cin_of, eb)
    if len(rows["first"]):
        base = np.zeros(len(fam_all), dtype=np.int64)
        base[f_id] = f_base
        rows["seq"] = base[rows["seq"]] + rows["first"]
    return rows, seq


def _end_geometry(H_out: int, W_out: int, fams) -> dict:
    """The tile geometry of a block end with output H_out x W_out and families ``fams`` ((kind,
    mode, p, rank)): one row segment per distinct column-pipeline tile height and recompute
    patch height, one column segment per patch width; per family its segments and unit counts;
    the stacked initial rows of :func:`_sweep` (:data:`_ER`, den left to the caller; slots 0),
    columns, segment starts and the first step's per-segment sums."""
    i64 = np.int64
    seg_of: dict = {}
    parts = {"r": [], "c": []}

    def seg(axis, p):
        k = seg_of.get((axis, p))
        if k is None:
            size = H_out if axis == "r" else W_out
            lo = np.arange(-(-size // p), dtype=i64) * p
            parts[axis].append((lo, np.minimum(lo + p, size)))
            k = seg_of[(axis, p)] = len(parts[axis]) - 1
        return k
    fg = []
    has_r = False
    for kind, mode, p, rank in fams:
        if kind == "h":
            fg.append({"seg": seg("r", p), "n_rows": -(-H_out // p)})
        else:
            has_r = True
            ph, pw = min(p, H_out), min(p, W_out)
            fg.append({"seg": seg("r", ph), "cseg": seg("c", pw),
                       "n_patch": (-(-H_out // ph)) * (-(-W_out // pw)), "n_r": -(-H_out // ph)})
    rl = parts["r"]
    lens = [len(lo) for lo, _ in rl]
    starts = np.cumsum([0] + lens[:-1]).astype(i64)
    lo = np.concatenate([x for x, _ in rl])
    hi = np.concatenate([x for _, x in rl])
    er = np.zeros((len(_ER), len(lo)), dtype=i64)
    er[0], er[1], er[3] = lo, hi, H_out
    # per tile row: its segment's tile height and its index in the segment (out_delay_closed
    # over every segment at once)
    er[5] = np.concatenate([np.full(len(x), x[1] - x[0] if len(x) > 1 else 1, dtype=i64)
                            for x, _ in rl])
    er[4] = np.concatenate([np.arange(len(x), dtype=i64) for x, _ in rl])
    er[6] = er[4] == 0
    sr = np.zeros((len(_ES), len(starts)), dtype=i64)
    sr[1] = starts
    g = {"fams": fg, "ER": er, "SR": sr, "nseg": len(starts),
         "rsum": np.add.reduceat(hi - lo, starts).tolist()}
    cl = parts["c"] if has_r else []
    if cl:
        xlens = [len(x) for x, _ in cl]
        xstarts = np.cumsum([0] + xlens[:-1]).astype(i64)
        xlo = np.concatenate([x for x, _ in cl])
        xhi = np.concatenate([x for _, x in cl])
        ex = np.zeros((len(_EX), len(xlo)), dtype=i64)
        ex[0], ex[1] = xlo, xhi
        sx = np.zeros((len(_ES), len(xstarts)), dtype=i64)
        sx[1] = xstarts
        g.update(EX=ex, SX=sx, nxseg=len(xstarts),
                 xsum=np.add.reduceat(xhi - xlo, xstarts).tolist())
    else:
        g.update(EX=np.zeros((len(_EX), 0), dtype=i64), SX=np.zeros((len(_ES), 0), dtype=i64),
                 nxseg=0, xsum=None)
    return g


# row indices of _sweep's stacked per-end arrays (built by block_costs, one column per element)
_ER = ("lo", "hi", "den", "hout", "r_row", "p_row", "first_row", "slot")   # tile rows
_EX = ("lo", "hi", "slot")                                                  # patch columns
_ES = ("slot", "start")                                                     # segments
_FH = ("slot", "seg", "lim", "cut", "thr", "e", "ring", "dead")             # column families
_FR = ("slot", "seg", "cseg", "lim", "cut", "thr", "e", "ring", "last", "dead")  # patches


def _window_step(E, S, na: int, k: int, s: int, pad: int, size: int):
    """One backward window step of the stacked ranges ``E`` (rows lo, hi, ..., slot last) of
    ``na`` sweeping ends, in place: :func:`window_input_range`.  ``S``: their segments (slot,
    start within the end).  Returns the segments' starts in the concatenation, each end's first
    segment, and per segment the sum and the maximum of the new extents."""
    nel = np.bincount(E[-1], minlength=na)
    nsg = np.bincount(S[0], minlength=na)
    start = (np.cumsum(nel) - nel)[S[0]] + S[1]
    lo, hi = window_input_range(E[0], E[1], k, s, pad, size)
    E[0], E[1] = lo, hi
    d = hi - lo
    return start, np.cumsum(nsg) - nsg, np.add.reduceat(d, start), np.maximum.reduceat(d, start)


def _sweep(net: Network, live, bound, ends: list[dict], eb: int, ring_unit_of, cin_of):
    """The backward window sweep of every block end at once.  At layer l the tile rows (and
    patch columns) of every end e >= l still sweeping are in layer l's output coordinates, so
    one :func:`window_input_range` over their concatenation steps them all to layer l's input.
    Per end it records, per step t = e - l, where the step's per-segment row sums / maxima (and
    column ones, and in-place delays) sit in the flat histories it returns, the column count,
    and each family's death step: the first step at which its block and every longer one are
    not generated (layer below its limit, or the growth bound's cut ``min_in[l] + ring >=
    thr``; both stay true once true: rings only grow and ``min_in`` only grows towards a run's
    start).  An end leaves the sweep at the first step where none of its families is alive;
    ``R["T"]`` is its number of steps.  The sweeping ends' rows, columns, segments and
    families are stacked int64 matrices (one column each, row names :data:`_ER` ...), so
    adding or dropping ends is one concatenation or mask per matrix."""
    layers = net.layers
    n = net.n_layers
    counted = live.counted
    min_in = (bound.min_in if bound is not None and bound.ok else [0] * n)
    BIG = 1 << 40
    by_end: dict = {}
    for R in ends:
        by_end.setdefault(R["e"], []).append(R)
    i64 = np.int64
    act: list[dict] = []
    ER = np.zeros((len(_ER), 0), dtype=i64)
    EX = np.zeros((len(_EX), 0), dtype=i64)
    SR = np.zeros((len(_ES), 0), dtype=i64)
    SX = np.zeros((len(_ES), 0), dtype=i64)
    FH = np.zeros((len(_FH), 0), dtype=i64)
    FR = np.zeros((len(_FR), 0), dtype=i64)
    hist = {k: [] for k in ("rs", "rm", "xs", "xm", "dl", "end", "hb", "xb", "nc")}
    EID = np.zeros(0, dtype=i64)          # per sweeping end: its index in `ends`
    NCOL = np.zeros(0, dtype=i64)         # per sweeping end: output columns of this step
    idx_of = {id(R): k for k, R in enumerate(ends)}
    br = bx = 0
    for l in range(n - 1, -1, -1):
        new = by_end.get(l)
        if new:
            for j, R in enumerate(new):
                s = len(act) + j
                for key in ("ER", "EX", "SR", "SX", "FH", "FR"):
                    R[key][-1 if key in ("ER", "EX") else 0] = s
            ER = np.concatenate([ER] + [R["ER"] for R in new], axis=1)
            EX = np.concatenate([EX] + [R["EX"] for R in new], axis=1)
            SR = np.concatenate([SR] + [R["SR"] for R in new], axis=1)
            SX = np.concatenate([SX] + [R["SX"] for R in new], axis=1)
            FH = np.concatenate([FH] + [R["FH"] for R in new], axis=1)
            FR = np.concatenate([FR] + [R["FR"] for R in new], axis=1)
            EID = np.concatenate([EID, np.asarray([idx_of[id(R)] for R in new], dtype=i64)])
            NCOL = np.concatenate([NCOL, np.asarray([R["W_out"] for R in new], dtype=i64)])
            act.extend(new)
        if not act:
            continue
        # deaths at the start of step l
        mil = min_in[l]
        changed = False
        for F, (ilim, icut, ithr, ie, iring, idead) in ((FH, (2, 3, 4, 5, 6, 7)),
                                                        (FR, (3, 4, 5, 6, 7, 9))):
            if not F.shape[1]:
                continue
            die = (F[idead] < 0) & ((l < F[ilim]) | ((F[ie] > l) & (F[icut] != 0)
                                                     & (mil + F[iring] >= F[ithr])))
            if die.any():
                F[idead] = np.where(die, F[ie] - l, F[idead])
                changed = True
        if changed:
            alive_end = np.zeros(len(act), dtype=bool)
            alive_end[FH[0][FH[7] < 0]] = True
            alive_end[FR[0][FR[9] < 0]] = True
            if not alive_end.all():
                gone = np.flatnonzero(~alive_end).tolist()
                for F, key, idead in ((FH, "hf", 7), (FR, "rf", 9)):
                    for s in gone:
                        for fam, d in zip(act[s][key], F[idead][F[0] == s].tolist()):
                            fam["dead"] = d
                for s in gone:
                    act[s]["T"] = act[s]["e"] - l
                remap = np.cumsum(alive_end) - 1
                ER = ER[:, alive_end[ER[-1]]]
                ER[-1] = remap[ER[-1]]
                EX = EX[:, alive_end[EX[-1]]]
                EX[-1] = remap[EX[-1]]
                SR = SR[:, alive_end[SR[0]]]
                SR[0] = remap[SR[0]]
                SX = SX[:, alive_end[SX[0]]]
                SX[0] = remap[SX[0]]
                FH = FH[:, alive_end[FH[0]]]
                FH[0] = remap[FH[0]]
                FR = FR[:, alive_end[FR[0]]]
                FR[0] = remap[FR[0]]
                EID, NCOL = EID[alive_end], NCOL[alive_end]
                act = [R for R, a in zip(act, alive_end.tolist()) if a]
                if not act:
                    continue
        na = len(act)
        # offsets of each end's rows / segments in the concatenation
        L = layers[l]
        H_l, W_l, C_l = L.in_shape
        sstart, soff, rsum, rmax = _window_step(ER, SR, na, L.ekh, L.sh, L.pad[0], H_l)
        lo = ER[0]
        hist["rs"].append(rsum)
        hist["rm"].append(rmax)
        if live.consumers[l] == [l] and l not in live.outputs and counted[l]:
            # out_delay_closed for every segment of every end: lo_next of segment row r >= 1
            c = (lo * (W_l * C_l)) // ER[2]
            ask = np.where(ER[3] <= c, 1, np.maximum(1, ER[4] + 1 - c // ER[5]))
            ask[ER[6] != 0] = 0
            hist["dl"].append(np.maximum.reduceat(ask, sstart))
        else:
            hist["dl"].append(np.full(len(sstart), BIG, dtype=i64))
        hist["end"].append(EID)
        hist["hb"].append(soff + br)
        hist["nc"].append(NCOL)
        NCOL = np.minimum(W_l, (NCOL - 1) * L.sw - L.pad[1] + L.ekw)
        if EX.shape[1]:
            xsstart, xsoff, xsum, xmax = _window_step(EX, SX, na, L.ekw, L.sw, L.pad[1], W_l)
            hist["xs"].append(xsum)
            hist["xm"].append(xmax)
            hist["xb"].append(xsoff + bx)
            bx += len(xsstart)
        else:
            hist["xb"].append(np.zeros(na, dtype=i64))
        br += len(sstart)
        # rings of the families alive at this step grow by this layer's buffers
        if FH.shape[1]:
            al = FH[7] < 0
            FH[6] = np.where(al, FH[6] + int(ring_unit_of[l]) * rmax[soff[FH[0]] + FH[1]], FH[6])
        if FR.shape[1]:
            al = FR[9] < 0
            bb = (rmax[soff[FR[0]] + FR[1]] * xmax[xsoff[FR[0]] + FR[2]]
                  * (int(cin_of[l]) * eb))
            FR[7] = np.where(al, np.maximum(FR[7], FR[8] + bb), FR[7])
            FR[8] = np.where(al, bb, FR[8])
    for F, key, idead in ((FH, "hf", 7), (FR, "rf", 9)):
        for s, R in enumerate(act):
            for fam, d in zip(R[key], F[idead][F[0] == s].tolist()):
                fam["dead"] = d
    for R in act:
        R["T"] = R["e"] + 1
    z = np.zeros(0, dtype=i64)
    return {k: (np.concatenate(v) if v else z) for k, v in hist.items()}


def _emit_all(ends, hist, live, cb, alive_np, tb_np, unit_of, ring_unit_of, cin_of, eb):
    """Every row of every block end, vectorised over all (family, step) pairs at once: per
    family (in family-id order) its steps t = 0 .. T-1 of its end's sweep are consecutive
    elements, so running sums along a family are segmented cumulative sums.  A family's row
    at step t is the block of layers e - t .. e, emitted while the family is alive
    (t < its death step).  Returns the rows (keyed by :data:`COST_COLUMNS`) and the per-layer
    work ``seq`` of every family, in layer order."""
    i64 = np.int64
    tbytes, counted = live.tbytes, live.counted
    cols = {c: [] for c in COST_COLUMNS}
    # per-end step tables: the sweep's (step, end) entries ordered by end, then step
    off = 0
    for R in ends:
        R["so"] = off
        off += R["T"]
    by_end = np.argsort(hist["end"], kind="stable")
    HB, XB, NC = hist["hb"][by_end], hist["xb"][by_end], hist["nc"][by_end]
    fams = []
    for R in ends:
        if R["T"]:
            for s in R["hf"]:
                fams.append((s, R, 0))
            for s in R["rf"]:
                fams.append((s, R, 1))
    if not fams:
        z = np.zeros(0, dtype=i64)
        return ({c: z for c in COST_COLUMNS},
                {k: z for k in ("layer", "macs", "units", "recompute")}, (z, z))
    fams.sort(key=lambda x: x[0]["id"])
    nf = len(fams)

    F = np.asarray([(s["id"], R["T"], R["e"], s["kind"] == "r",
                     R["T"] if s["dead"] < 0 else s["dead"], s["seg"], s.get("cseg", 0),
                     R["so"], s["mi"], s["p"], s["rank"],
                     s["n_rows"] if s["kind"] == "h" else s["n_r"], s.get("n_patch", 0),
                     3 if s["kind"] == "r" else _H_KIND[s["mode"]], R["H_out"],
                     R["W_out"] * R["C_e"] * eb, live.out_bytes(R["e"] + 1),
                     bool(counted[R["e"] + 1]),
                     tbytes[R["e"] + 1], R["rsum0"][s["seg"]],
                     R["xsum0"][s["cseg"]] if s["kind"] == "r" else 0, _stage_bytes(live, s, R))
                    for s, R, _ in fams], dtype=i64)
    (f_id, f_T, f_e, f_rc, f_dead, f_seg, f_cseg, f_so, f_mi, f_p, f_rank, f_nr, f_np, f_kind,
     f_hout, f_obrow, f_outb, f_ipok, f_tbo, f_r0, f_x0, f_stage) = F.T
    f_rc, f_ipok = f_rc.astype(bool), f_ipok.astype(bool)
    gapf = [(k, R) for k, (s, R, _) in enumerate(fams) if s["mode"] == "hcache-gap"]
    # flat (family, step) elements
    gstart = np.cumsum(f_T) - f_T
    tot = int(f_T.sum())
    fe = np.repeat(np.arange(nf, dtype=i64), f_T)
    t = np.arange(tot, dtype=i64) - gstart[fe]
    first_t = t == 0
    lay = f_e[fe] - t
    st = f_so[fe] + t                                  # the end's flat step index
    seg = f_seg[fe]
    hbi = HB[st] + seg
    RM = hist["rm"][hbi]
    RS = np.where(first_t, f_r0[fe], hist["rs"][np.where(first_t, 0, HB[st - 1] + seg)]
                  if len(hist["rs"]) else 0)
    rc = f_rc[fe]
    unit = unit_of[lay]
    ncol = NC[st]
    if len(hist["xs"]):
        xbi = np.where(rc, XB[st] + f_cseg[fe], 0)
        XM = np.where(rc, hist["xm"][xbi], 0)
        XS = np.where(rc & first_t, f_x0[fe],
                      np.where(rc, hist["xs"][np.where(rc & ~first_t,
                                                       XB[st - 1] + f_cseg[fe], 0)], 0))
    else:
        XM = XS = np.zeros(tot, dtype=i64)
    M = np.where(rc, RS * XS * unit, RS * ncol * unit)

    def segcum(x):
        c = np.cumsum(x)
        return c - (c - x)[gstart][fe]
    MAC = segcum(M)
    CALL = np.where(rc, f_np[fe] * (t + 1), segcum(ncol * f_nr[fe]))
    inc = ring_unit_of[lay] * RM
    ring_h = segcum(inc) - inc
    BB = RM * XM * cin_of[lay] * eb
    prev = np.zeros(tot, dtype=i64)
    prev[1:] = BB[:-1]
    pair = BB + np.where(first_t, 0, prev)
    big = int(pair.max()) + 1 if tot else 1
    RA = np.maximum.accumulate(pair + fe * big) - fe * big
    ring_r = np.zeros(tot, dtype=i64)
    ring_r[1:] = RA[:-1]
    ring_r[first_t] = 0
    RING = np.where(rc, ring_r, ring_h)
    V = t < f_dead[fe]
    later = t >= 1
    kind = f_kind[fe]
    tb_out = alive_np[lay] + f_outb[fe]

    def emit(sel, last, ram, macs, calls, copy, inplace, seqlen):
        idx = np.flatnonzero(sel)
        if not len(idx):
            return
        ff = fe[idx]

        def pick(x):
            return np.full(len(idx), x, dtype=i64) if np.ndim(x) == 0 else x[idx]
        for c, v in zip(COST_COLUMNS, (lay[idx], pick(last), f_mi[ff], f_p[ff], pick(ram),
                                       pick(macs), pick(calls), pick(copy), pick(inplace),
                                       f_rank[ff], f_nr[ff], f_id[ff], pick(seqlen))):
            cols[c].append(v)
    # hcache / linebuffer and recompute: blocks of two layers or more
    emit(V & later & ((kind == 0) | (kind == 3)), f_e[fe], tb_out + RING + f_stage[fe], MAC,
         CALL, 0, 0, t + 1)
    if gapf:
        gk = np.asarray([k for k, _ in gapf], dtype=i64)
        gg = np.zeros(nf, dtype=i64)
        gmac = np.zeros(nf, dtype=i64)
        gcall = np.zeros(nf, dtype=i64)
        gbase = np.zeros(nf, dtype=i64)
        for k, R in gapf:
            gap = R["gap"]
            C = gap.in_shape[2]
            gg[k] = R["g"]
            gmac[k] = gap.macs
            gcall[k] = f_nr[k] * gap.in_shape[1]
            st = live.stage_ring(R["g"] + 1, 1, 1, 0)
            gbase[k] = (live.out_bytes(R["g"] + 1) + 4 * C + min(int(f_p[k]), R["H_out"]) * C * eb
                        + (st.bytes if st is not None else 0))
        emit(V & (kind == 2), gg[fe], alive_np[lay] + gbase[fe] + RING, MAC + gmac[fe],
             CALL + gcall[fe], 0, 0, t + 2)
    ipm = V & later & (kind == 1) & (f_nr[fe] > 1) & f_ipok[fe] & (tb_np[lay] >= f_tbo[fe])
    if ipm.any():
        DL = hist["dl"][hbi]
        sel = ipm & (DL < f_nr[fe])
        ob = np.minimum(DL * f_p[fe], f_hout[fe]) * f_obrow[fe]
        emit(sel, f_e[fe], alive_np[lay] + RING + ob, MAC, CALL, f_tbo[fe], 1, t + 1)
    if cols["first"]:
        rows = {c: np.concatenate(v) for c, v in cols.items()}
    else:
        rows = {c: np.zeros(0, dtype=i64) for c in COST_COLUMNS}
    # per-layer work in layer order: family f's entries are layers e - dead + 1 .. e (its
    # steps reversed), then its GAP tail
    isgap = np.zeros(nf, dtype=i64)
    for k, _ in gapf:
        isgap[k] = 1
    n_ent = f_dead + isgap
    ent0 = np.cumsum(n_ent) - n_ent
    keep = np.flatnonzero(V)
    kf = fe[keep]
    pos = ent0[kf] + (f_dead[kf] - 1 - t[keep])
    total = int(n_ent.sum())
    s_layer = np.empty(total, dtype=i64)
    s_macs = np.empty(total, dtype=i64)
    s_layer[pos] = lay[keep]
    s_macs[pos] = M[keep]
    if gapf:
        gpos = ent0[gk] + f_dead[gk]
        s_layer[gpos] = gg[gk]
        s_macs[gpos] = gmac[gk]
    fam_of_ent = np.repeat(np.arange(nf, dtype=i64), n_ent)
    seq = {"layer": s_layer, "macs": s_macs,
           "units": np.where(f_rc, f_np, f_nr)[fam_of_ent],
           "recompute": f_rc.astype(i64)[fam_of_ent]}
    # base[id] + first = the entry of layer `first` in the family's run
    base_by_pos = ent0 - (f_e - f_dead + 1)
    return rows, seq, (f_id, base_by_pos)


def _stage_bytes(live, s, R) -> int:
    """The concat-slice staging bytes of a family's blocks (:meth:`Liveness.stage_ring`: one
    output column of a tile row, or one output patch; 0 unless the block's output is aliased;
    the hcache-gap tail's own staging is in its base)."""
    t = R["e"] + 1
    if t not in live.alias_of or s["mode"] in ("hcache-gap", "hcache-ip"):
        return 0
    if s["kind"] == "r":
        rows, cols = min(s["p"], R["H_out"]), min(s["p"], R["W_out"])
    else:
        rows, cols = min(s["p"], R["H_out"]), 1
    return rows * cols * R["C_e"] * live.net.elem_bytes


#: family kind of the column-pipeline modes in :func:`block_costs`' vectorised emission
_H_KIND = {"hcache": 0, "linebuffer": 0, "hcache-ip": 1, "hcache-gap": 2}
