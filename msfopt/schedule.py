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
plus its ring buffers.  MACs count every multiply-accumulate the C executor performs, with
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
        outs = set(net.output_ids)
        self.outputs = outs
        self.counted = [not ((t == 0 and io in INPUT_OUTSIDE) or (t in outs and io == "external"))
                        for t in range(n + 1)]
        self.tbytes = [net.tensor_bytes(t) for t in range(n + 1)]

    def resident(self, i: int, j: int) -> list[int]:
        """Tensors alive during block [i..j]: produced at or before i and read at or after layer i
        (graph outputs: alive to the end), plus the block's output j + 1."""
        live = [t for t in range(i + 1) if self.last_use[t] >= i
                and (self.consumers[t] or t in self.outputs)]
        live.append(j + 1)
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

