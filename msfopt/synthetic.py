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


def random_window_chain(rng: random.Random, hw=(5, 10), channels=(1, 8), layers=(3, 7),
                        max_out: int = 8, name: str = "random") -> Network:
    """A small random chain of window layers (conv, depthwise, average / max pool; 1x1 / 3x3 /
    asymmetric kernels, stride 1, random leading padding) drawn from ``rng``: the layout tests'
    and scripts/bench_layout.py's plans.  ``hw``, ``channels``, ``layers``: inclusive ranges."""
    from .ir import AVGPOOL, MAXPOOL, window_layer
    shape = (rng.randint(*hw), rng.randint(*hw), rng.randint(*channels))
    out = []
    for _ in range(rng.randint(*layers)):
        op = rng.choice((CONV, DW, AVGPOOL, MAXPOOL))
        kh = rng.choice([1, 3]) if op in (CONV, DW) else rng.choice([2, 3])
        kw = rng.choice([1, kh])
        L = window_layer(op, shape, rng.randint(1, max_out) if op == CONV else None, (kh, kw), 1,
                         (rng.randint(0, kh // 2), rng.randint(0, kw // 2)))
        if min(L.out_shape[:2]) < 2:
            break
        out.append(L)
        shape = L.out_shape
    if not out:
        out.append(window_layer(CONV, shape, 2, 1, 1, 0))
    return Network(name=name, input_shape=out[0].in_shape, layers=out).validate()
