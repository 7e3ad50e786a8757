"""Synthetic wide CNN graphs (float32) for the execution-order search.

Two families where the order decides which tensors are alive together:

* :func:`densenet_like` -- dense blocks where every layer (1x1 bottleneck conv, 3x3 conv) reads the
  channel concatenation of the block input and *all* earlier layers' outputs, then a transition
  (1x1 conv, 2x2 average pool).  Many tensors stay alive for a long time; with ``two_way`` each
  dense layer has two parallel branches (1x1 -> 3x3 and 1x1 -> 3x3 -> 3x3, as PeleeNet) joined by
  a concat, which adds orders.
* :func:`inception_like` -- blocks of ``branches`` parallel branches (1x1; 1x1 -> 3x3;
  1x1 -> 3x3 -> 3x3; 3x3 max pool -> 1x1; longer ones repeat 3x3 convs) joined by a concat.  The
  number of execution states (downsets) of a block is the product of (branch length + 1) over its
  branches, so a few blocks of many or long branches make the downset search explode.

Channel widths come from a seeded generator so RAM figures are varied.  The networks are
validated; weights are left empty (the planners need shapes only).
"""
from __future__ import annotations

import random

from .ir import AVGPOOL, CONCAT, CONV, MAXPOOL, Layer, Network, window_layer


class _Builder:
    """Appends layers and tracks tensor shapes (tensor 0 = input, tensor i + 1 = layer i)."""

    def __init__(self, shape):
        self.shapes = [tuple(shape)]
        self.layers: list[Layer] = []

    def window(self, op, src, c_out, k, s=1, pad=None, act="none") -> int:
        p = k // 2 if pad is None else pad
        L = window_layer(op, self.shapes[src], c_out, k, s, p, act=act,
                         name=f"L{len(self.layers)}_{op}")
        L.srcs = (src,)
        return self._add(L)

    def concat(self, srcs) -> int:
        srcs = tuple(srcs)
        if len(srcs) == 1:
            return srcs[0]
        h, w, _ = self.shapes[srcs[0]]
        c = sum(self.shapes[t][2] for t in srcs)
        L = Layer(op=CONCAT, in_shape=self.shapes[srcs[0]], out_shape=(h, w, c), srcs=srcs,
                  axis=2, name=f"L{len(self.layers)}_concat")
        return self._add(L)

    def _add(self, L) -> int:
        self.layers.append(L)
        self.shapes.append(tuple(L.out_shape))
        return len(self.layers)

    def network(self, name) -> Network:
        return Network(name=name, input_shape=self.shapes[0], layers=self.layers,
                       dtype="float32").validate()


def densenet_like(blocks: int = 2, layers: int = 4, growth: int = 4, hw: int = 16,
                  c_in: int = 3, two_way: bool = False, seed: int = 0) -> Network:
    """DenseNet-like network: stem 3x3 conv, ``blocks`` dense blocks of ``layers`` dense layers
    (each reads the concat of every earlier feature map of its block), transitions between
    blocks, a final 1x1 conv."""
    rng = random.Random(seed)
    b = _Builder((hw, hw, c_in))
    x = b.window(CONV, 0, 2 * growth, 3, act="relu")
    for bi in range(blocks):
        feats = [x]
        for _ in range(layers):
            inp = b.concat(feats)
            g = max(1, growth + rng.randint(-1, 1))
            if two_way:
                a = b.window(CONV, inp, 2 * g, 1, act="relu")
                a = b.window(CONV, a, g, 3, act="relu")
                c = b.window(CONV, inp, 2 * g, 1, act="relu")
                c = b.window(CONV, c, g, 3, act="relu")
                c = b.window(CONV, c, g, 3, act="relu")
                f = b.concat([a, c])
            else:
                f = b.window(CONV, inp, 4 * g, 1, act="relu")
                f = b.window(CONV, f, g, 3, act="relu")
            feats.append(f)
        x = b.concat(feats)
        if bi < blocks - 1:
            x = b.window(CONV, x, max(2, b.shapes[x][2] // 2), 1, act="relu")
            if min(b.shapes[x][:2]) >= 4:
                x = b.window(AVGPOOL, x, None, 2, 2, 0)
    b.window(CONV, x, 8, 1)
    kind = "dense2" if two_way else "dense"
    return b.network(f"{kind}-b{blocks}-l{layers}")


def inception_like(blocks: int = 2, branches: int = 4, depth: int = 3, hw: int = 16,
                   c_in: int = 3, seed: int = 0) -> Network:
    """Inception-like network: stem 3x3 conv, ``blocks`` blocks of ``branches`` parallel branches
    joined by a channel concat.  Branch ``j`` (of at most ``depth`` ops): 1x1; 1x1 -> 3x3;
    1x1 -> 3x3 -> 3x3 ...; every fourth branch starts with a 3x3 max pool instead."""
    rng = random.Random(seed)
    b = _Builder((hw, hw, c_in))
    x = b.window(CONV, 0, 8, 3, act="relu")
    for _ in range(blocks):
        outs = []
        for j in range(branches):
            n_ops = 1 + j % depth
            if j % 4 == 3:
                t = b.window(MAXPOOL, x, None, 3, 1, 1)
                t = b.window(CONV, t, rng.randint(2, 6), 1, act="relu")
                n_ops -= 1
            else:
                t = b.window(CONV, x, rng.randint(2, 8), 1, act="relu")
            for _ in range(n_ops - 1):
                t = b.window(CONV, t, rng.randint(2, 8), 3, act="relu")
            outs.append(t)
        x = b.concat(outs)
    b.window(CONV, x, 8, 1)
    return b.network(f"incep-b{blocks}-w{branches}-d{depth}")


#: the benchmark's synthetic wide graphs: name -> builder arguments
WIDE_GRAPHS = {
    "dense-b2-l4": lambda: densenet_like(blocks=2, layers=4),
    "dense2-b2-l3": lambda: densenet_like(blocks=2, layers=3, two_way=True),
    "incep-b3-w4-d3": lambda: inception_like(blocks=3, branches=4, depth=3),
    "incep-b2-w4-d5": lambda: inception_like(blocks=2, branches=4, depth=5),
    "incep-b2-w6-d3": lambda: inception_like(blocks=2, branches=6, depth=3),
    "incep-b2-w8-d3": lambda: inception_like(blocks=2, branches=8, depth=3),
    "incep-b3-w8-d4": lambda: inception_like(blocks=3, branches=8, depth=4),
    "incep-b2-w12-d3": lambda: inception_like(blocks=2, branches=12, depth=3),
}
