"""Synthetic CNN chains for scaling benchmarks and solver stress tests.

``synthetic_chain(n)`` repeats an inverted-bottleneck pattern (1x1 expand conv, 3x3 depthwise,
1x1 project conv) at a constant spatial size, with channel widths drawn from a seeded generator so
that edge RAM values are varied (ties everywhere would make the programs artificially easy).
"""
from __future__ import annotations

import random

from .ir import CONV, DW, Network, chain


def synthetic_chain(n_layers: int, hw: int = 32, seed: int = 0, c_in: int = 3) -> Network:
    if n_layers < 1:
        raise ValueError("n_layers must be >= 1")
    rng = random.Random(seed)
    specs = []
    width = rng.randint(8, 24)
    while len(specs) < n_layers:
        k = len(specs) % 3
        if k == 0:
            specs.append((CONV, rng.randint(2, 6) * width // 2, 1, 1, 0))
        elif k == 1:
            specs.append((DW, 0, 3, 1, 1))
        else:
            width = rng.randint(8, 24)
            specs.append((CONV, width, 1, 1, 0))
    return chain(f"synthetic-{n_layers}", (hw, hw, c_in), specs)


def conv_chain(n_layers: int, hw: int = 16, channels: int = 8, dtype: str = "float32",
               dw_every: int = 10) -> Network:
    """The long-chain stress test of the scaling benchmark: ``n_layers`` 3x3 stride-1 'same'
    convolutions of ``channels`` channels at ``hw`` x ``hw``, every ``dw_every``-th one a
    depthwise conv, in float (so every tensor is 4 B per element)."""
    if n_layers < 1:
        raise ValueError("n_layers must be >= 1")
    specs = [(DW, 0, 3, 1, 1) if (i + 1) % dw_every == 0 else (CONV, channels, 3, 1, 1)
             for i in range(n_layers)]
    return chain(f"conv-chain-{n_layers}", (hw, hw, channels), specs, dtype=dtype)
