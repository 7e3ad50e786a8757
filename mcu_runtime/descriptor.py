"""The runtime descriptor of one block schedule: the numbers of its ``msf_block`` and
``msf_layer`` rows (``msf_runtime.h``), every extent from the block schedule's geometry and every
buffer offset from the arena layout.  The code generator writes them as C; the executor tests
fill the ``ctypes`` mirrors with them."""
from __future__ import annotations

from dataclasses import dataclass

from msfopt.geometry import block_geometry
from msfopt.ir import Network
from msfopt.schedule import BlockSchedule

from .ctext import CodegenError


@dataclass
class BlockDescriptor:
    """The ``msf_block`` of one schedule and its ``msf_layer`` rows, as plain numbers: every
    extent comes from the block schedule (:func:`msfopt.geometry.block_geometry`, the rings'
    sizes), every buffer offset from the arena layout.  ``layers[k]["buf"]`` is
    (offset, bytes, rows, cols), the ranges are (step, lo_sub, hi_add, hi_max)."""
    mode: str          # MSF_MODE_* name
    tile_h: int
    tile_w: int
    n_tiles: int
    n_tile_cols: int
    layers: list


def block_descriptor(net: Network, s: BlockSchedule, ring_offsets) -> BlockDescriptor:
    """Descriptor of block schedule ``s`` whose rings (``s.rings``) sit at arena byte offsets
    ``ring_offsets`` (one per ring, e.g. ``ArenaLayout.ring_offsets[k]``)."""
    try:
        geo = block_geometry(net, s)
    except ValueError as e:
        raise CodegenError(str(e)) from None
    bufs = {r.layer: (int(o), r.bytes, r.rows, r.cols) for r, o in zip(s.rings, ring_offsets)}
    layers = []
    for k, l in enumerate(range(s.first, s.last + 1)):
        layers.append(dict(layer=l, buf=bufs.get(l, (0, 0, 0, 0)),
                           out_rows=tuple(vars(geo.out_rows[k]).values()),
                           out_cols=tuple(vars(geo.out_cols[k]).values()),
                           need_cols=tuple(vars(geo.need_cols[k]).values())))
    if s.mode == "inplace":
        mode, tw = "MSF_MODE_INPLACE", 0
    elif s.mode == "recompute":
        mode, tw = "MSF_MODE_PATCHES", min(s.tile, s.tile_w)
    else:
        mode, tw = "MSF_MODE_COLUMNS", (s.tile_w if s.mode == "hcache-ip" else 0)
    return BlockDescriptor(mode=mode, tile_h=geo.tile_h, tile_w=tw, n_tiles=geo.n_tiles,
                           n_tile_cols=geo.n_tile_cols, layers=layers)


def slice_row(net: Network, live, s: BlockSchedule, ring_offsets) -> dict | None:
    """The slice row (``msf_runtime.h``, the last ``msf_operand`` of the block) of schedule
    ``s`` when its output is a concat slice (:func:`msfopt.schedule.concat_slices`): the concat
    output's channels (negated), the slice's first channel, the staging buffer's arena offset
    (the schedule's ring of layer -1, at ``ring_offsets``) and capacity in elements; None for
    any other block."""
    a = live.alias_of.get(s.last + 1)
    if a is None:
        return None
    c, first = a
    for r, o in zip(s.rings, ring_offsets):
        if r.layer == -1:
            return dict(off=f"{int(o)}u", data="0", h=-net.tensor_shape(c)[2], w=first,
                        c=r.bytes // net.elem_bytes)
    raise CodegenError(f"block {s.label}: a concat slice without its staging buffer")


def in_slice_row(net: Network, t: int) -> dict:
    """The concat operand of an input its producer wrote into its slice (``h`` =
    MSF_OPERAND_IN_SLICE): only its channel count is read."""
    return dict(off="0u", data="0", h=0, w=0, c=net.tensor_shape(t)[2])
