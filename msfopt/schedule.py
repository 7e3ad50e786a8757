"""Block schedules: the single description of how a block runs, read by the optimizer (costs) and
by the code generator (buffers, offsets, loop structure).

A :class:`BlockSchedule` is one way to run layers ``first..last`` of a network: its execution mode
and tile, the full tensors it keeps resident, its ring / patch buffers (:class:`Ring`) and its
counted work.  :class:`Liveness` says which full tensors are alive while a block runs, for each
placement of the network input/output (``IO_MODES``).  :func:`window_input_range` is the one
backward window step every tiled mode sweeps with.

The generators of the execution modes live in :mod:`msfopt.modes`, the arena placement of a plan in
:mod:`msfopt.layout`, the tile ranges the C executor reads in :mod:`msfopt.geometry`, the cycle
estimate in :mod:`msfopt.cycles`.

The RAM of a block is the bytes of every full tensor alive while it runs (its input, its output,
skip tensors produced earlier and read later; the network input/output only with ``io="arena"``)
plus its ring buffers.  Concat slices (:func:`concat_slices`): a concat input written by its
producer straight into its channel slice of the concat output has no bytes of its own, the
concat output is alive from that producer on, and the producer holds a small staging buffer
(:meth:`Liveness.stage_ring`, a ring of layer -1: the output region before it is copied into
the slice).  MACs count every multiply-accumulate the C executor performs, with
recomputation; ``calls`` counts kernel invocations (one per produced column per tile row).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ir import Network, PIPELINE_OPS

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
    """Layers ``first..last`` run as one block in execution ``mode`` (:mod:`msfopt.modes`): what it
    keeps resident, its buffers and its work, as the optimizer costs it and the C executor runs it."""
    first: int
    last: int
    mode: str                      # "unfused" or one of msfopt.modes.FUSED_MODES
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
    tile_w: int = 0                # recompute: output patch width; hcache-ip: delay D (tile rows)
    inplace_options: tuple[int, ...] = ()   # inputs the output may overwrite (the layout picks)
    copy_bytes: int = 0            # bytes the executor copies (in-place mode's delayed rows)

    @property
    def key(self) -> tuple:
        return (self.first, self.last, self.mode, self.tile)

    @property
    def label(self) -> str:
        rng = f"{self.first}" if self.first == self.last else f"{self.first}-{self.last}"
        return rng if self.mode == "unfused" else f"{rng} {self.mode}(p={self.tile})"


# -- liveness ---------------------------------------------------------------------------------------

#: when False, no concat input is aliased into its concat's output (the "before" of issue 12's
#: concat slices; benchmarks and tests compare with it)
ALIAS_CONCAT = True


def without_slices(fn):
    """Run ``fn`` with no concat slices (:data:`ALIAS_CONCAT` False while it runs): the order
    search's cost model (an op's RAM depends only on the ops already run, while which inputs are
    slices depends on the order) -- the plan of its order is then solved with slices."""
    import functools

    @functools.wraps(fn)
    def run(*a, **kw):
        global ALIAS_CONCAT
        was = ALIAS_CONCAT
        ALIAS_CONCAT = False
        try:
            return fn(*a, **kw)
        finally:
            ALIAS_CONCAT = was
    return run


def concat_slices(net: Network, io: str, consumers=None,
                  counted=None) -> dict[int, tuple[int, int]]:
    """The concat inputs written straight into their channel slice of the concat output:
    tensor a -> (concat output tensor, first channel of a in it).  Eligible: an input of a
    channel concat, read by nothing else and once by it, produced by a layer that is not a
    concat or reshape (their executors write whole tensors), not the network input or a graph
    output, with the concat output's quantisation (an int8 concat of other grids requantises
    first), and the concat output in the arena.  An aliased input has no bytes of its own: its
    producer writes the slice (through a small staging buffer), the concat output is alive from
    the first aliased input's producer on, and the concat copies only the other inputs."""
    from .ir import CONCAT, RESHAPE
    n = net.n_layers
    cons = consumers if consumers is not None else net.consumers()
    outs = set(net.output_ids)
    if counted is None:
        counted = [not ((t == 0 and io in INPUT_OUTSIDE) or (t in outs and io == "external"))
                   for t in range(n + 1)]
    out: dict[int, tuple[int, int]] = {}
    for c, L in enumerate(net.layers):
        if L.op != CONCAT or L.axis != 2 or not counted[c + 1]:
            continue
        qc = net.quant_of(c + 1)
        off, ok = 0, {}
        for a in L.srcs:
            ch = net.tensor_shape(a)[2]
            if (a != 0 and a not in outs and cons[a] == [c] and L.srcs.count(a) == 1
                    and counted[a] and net.layers[a - 1].op not in (CONCAT, RESHAPE)
                    and _same_quant(net.quant_of(a), qc)):
                ok[a] = off
            off += ch
        # only the inputs produced by the layers right before the concat: an input produced
        # earlier would make the whole concat output alive during unrelated layers (a
        # ShuffleNet unit's passed-through half during the other half's three convolutions)
        cand = []
        a = c
        while a in ok:
            cand.append(a)
            a -= 1
        k = _best_prefix(net, c, cand, cons, counted, outs)
        for a in cand[:k]:
            out[a] = (c + 1, ok[a])
    return out


def _best_prefix(net: Network, c: int, cand: list[int], cons, counted, outs) -> int:
    """How many of ``cand`` (concat c's candidate inputs, latest first) to alias: the k whose
    layer-by-layer RAM over the layers from the earliest candidate's producer to the concat is
    least (ties: more slices).  Aliasing is not free: the concat output is alive from the first
    slice's producer on and each slice's producer holds a staging row, so a producer with a big
    input may then outgrow the concat it saves (a ShuffleNet unit: the branch conv's input,
    the passed-through half, the whole concat output and a row)."""
    if not cand:
        return 0
    eb = net.elem_bytes
    n = net.n_layers
    last = [n if t in outs else (max(cons[t]) if cons[t] else t - 1) for t in range(n + 1)]
    tb = [net.tensor_bytes(t) if counted[t] else 0 for t in range(n + 1)]
    C = c + 1
    lo = cand[-1] - 1
    best, best_k = None, 0
    for k in range(len(cand) + 1):
        S = set(cand[:k])
        born = min(S) if S else None
        peak = 0
        for l in range(lo, c + 1):
            b = sum(tb[t] for t in range(l + 1) if last[t] >= l and (cons[t] or t in outs)
                    and t not in S)
            if born is not None and born <= l < C:
                b += tb[C]                           # the concat output, alive since born
            o = l + 1
            if o in S:
                b += (tb[C] if o == born else 0) + net.layers[l].out_shape[1] * \
                    net.layers[l].out_shape[2] * eb  # the staging row
            elif not (o == C and S):
                b += tb[o]
            peak = max(peak, b)
        if best is None or peak <= best:
            best, best_k = peak, k
    return best_k


def _same_quant(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return (np.array_equal(np.asarray(a.scale), np.asarray(b.scale))
            and np.array_equal(np.asarray(a.zero_point), np.asarray(b.zero_point)))


class Liveness:
    """Which full tensors are alive while a block runs.  Concat slices (:func:`concat_slices`):
    an aliased input is not counted and a concat output is alive from its first aliased input's
    producer on (:meth:`storage_of`, :meth:`alive_at`)."""

    def __init__(self, net: Network, io: str = "arena"):
        if io not in IO_MODES:
            raise ValueError(f"io must be one of {IO_MODES}")
        self.net = net
        self.io = io
        self.last_use = net.last_use()
        self.consumers = net.consumers()
        n = net.n_layers
        outs = set(net.output_ids)
        self.outputs = outs
        self.counted = [not ((t == 0 and io in INPUT_OUTSIDE) or (t in outs and io == "external"))
                        for t in range(n + 1)]
        self.tbytes = [net.tensor_bytes(t) for t in range(n + 1)]
        #: concat slices: aliased input tensor -> (concat output tensor, first channel in it)
        self.alias_of = concat_slices(net, io, self.consumers, self.counted) if ALIAS_CONCAT \
            else {}
        #: concat output tensor -> its first-produced aliased input (the storage's birth)
        self.born: dict[int, int] = {}
        for a, (c, _) in sorted(self.alias_of.items()):
            self.born.setdefault(c, a)
            self.counted[a] = False     # an aliased input has no bytes of its own
        self._born_items = sorted(self.born.items())

    def storage_of(self, t: int) -> int | None:
        """The arena buffer the block producing tensor t must newly place: t itself (counted),
        the concat output when t is its first-produced aliased input, None when t is not in the
        arena, is a later aliased input, or is a concat output already alive since its first
        aliased input."""
        a = self.alias_of.get(t)
        if a is not None:
            return a[0] if self.born[a[0]] == t else None
        if t in self.born or not self.counted[t]:
            return None
        return t

    def out_bytes(self, t: int) -> int:
        """Counted bytes the block producing tensor t adds for its output (its storage)."""
        st = self.storage_of(t)
        return self.tbytes[st] if st is not None else 0

    def alive_at(self, i: int) -> list[int]:
        """Tensors alive while a block starting at layer i runs, its own output aside: produced
        before layer i and read at or after it (graph outputs: to the end), plus every concat
        output whose first aliased input was produced before layer i."""
        live = [t for t in range(i + 1) if self.last_use[t] >= i
                and (self.consumers[t] or t in self.outputs)]
        live += [c for c, a in self._born_items if a <= i < c]
        return live

    def stage_ring(self, t: int, rows: int, cols: int, offset: int) -> Ring | None:
        """The staging buffer of a block whose output t is written into a concat slice: the
        block's output region (rows x cols x t's channels) goes there first, then into the
        slice (msf_copy_to_channels); None when t is not aliased."""
        if t not in self.alias_of:
            return None
        c = self.net.tensor_shape(t)[2]
        return Ring(layer=-1, rows=rows, cols=cols, channels=c,
                    bytes=rows * cols * c * self.net.elem_bytes, offset=offset)

    def resident(self, i: int, j: int) -> list[int]:
        """Tensors alive during block [i..j]: produced at or before i and read at or after layer i
        (graph outputs: alive to the end), plus the block's output j + 1."""
        live = self.alive_at(i)
        st = self.storage_of(j + 1)
        if j + 1 not in live:
            live.append(j + 1)
        if st is not None and st not in live:
            live.append(st)
        return live

    def fused_legal(self, i: int, j: int) -> bool:
        """Layers i..j form a chain of window ops and standalone activations whose intermediates
        nobody else reads (and that are not graph outputs: a block never writes its
        intermediates)."""
        net = self.net
        for l in range(i, j + 1):
            L = net.layers[l]
            if L.op not in PIPELINE_OPS or L.srcs != (l,):
                return False
            if l > i and (self.consumers[l] != [l] or l in self.outputs):
                return False
        return True

    def bytes_of(self, tensors) -> int:
        return sum(self.tbytes[t] for t in tensors if self.counted[t])


def window_input_range(lo, hi, k: int, s: int, pad: int, size: int):
    """Input rows (or columns) ``[lo', hi')`` a window of kernel ``k``, stride ``s`` and leading
    padding ``pad`` over an extent ``size`` reads to produce outputs ``[lo, hi)``, clipped at the
    borders (vectorised over tiles).  The one backward step every block schedule sweeps with;
    :meth:`msfopt.geometry.Range.back` is its closed form."""
    return (np.maximum(0, lo * s - pad), np.minimum(size, (hi - 1) * s - pad + k))

