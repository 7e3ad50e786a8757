"""Block geometry: the tile-row / patch ranges of a block schedule in the closed form the C executor
evaluates (``msf_range``), checked against the schedule generators' backward sweep."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ir import Network
from .schedule import BlockSchedule, window_input_range

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
        rows.append(rows[-1].back(L.ekh, L.sh, L.pad[0], L.in_shape[0]))
        if s.mode == "recompute":
            cols.append(cols[-1].back(L.ekw, L.sw, L.pad[1], L.in_shape[1]))
    rows.reverse()
    cols.reverse()
    if s.mode != "recompute":
        cols = [ZERO_RANGE] * nw
    need = [Range(L.sw, L.pad[1], L.ekw - L.pad[1], L.in_shape[1]) if s.mode != "recompute"
            else ZERO_RANGE for L in layers[:nw]]
    # the closed form is the generators' backward sweep, tile row by tile row
    t = np.arange(n_tiles, dtype=np.int64)
    lo, hi = t * ph, np.minimum(t * ph + ph, H_out)
    for k in range(nw - 1, 0, -1):
        L = layers[k]
        lo, hi = window_input_range(lo, hi, L.ekh, L.sh, L.pad[0], L.in_shape[0])
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
            xext = min(layers[k].ekw, layers[k].in_shape[1])
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
