"""The msf-CNN paper's analytic cost model, reproduced exactly (``--cost-model msfcnn``).

Formulas from ``shared/reference/msfcnn.md`` section 2, including the published code's
conventions and quirks:

* sizes are element counts (int8: elements = bytes);
* a fused block produces 1x1 output tiles; tile sizes t and strides S follow the backward
  recursion t_l = (t_{l+1} - 1) s_l + k_l, S_l = S_{l+1} s_l, ignoring padding;
* a block is infeasible iff t_i > H_i or t_i > W_i;
* RAM = |X_i| + |X_{j+1}| + sum_l k_l h_l C_l where h_l is the height of the *last simulated*
  tile (padding applied at borders, see ``cache_heights``);
* MACs = sum_l R_l W_{l+1} t_{l+1} C_{l+1} mu_l with R_l = floor((H_l + 2 p_l - t_l) / S_l) + 1;
* the network input is not counted in the first block, nor the output in the last block.

This model only describes conv / depthwise / pool chains with square kernels and symmetric
padding; rows use the vertical kernel/stride/padding.  Layers of other kinds (GAP, dense, add) get
single-layer edges only.
"""
from __future__ import annotations

from .ir import Network, WINDOW_OPS


def tile_recursion(net: Network, i: int, j: int) -> tuple[list[int], list[int]]:
    """t[l - i], S[l - i] for l = i .. j + 1 (t_{j+1} = S_{j+1} = 1)."""
    n = j - i + 2
    t = [0] * n
    S = [0] * n
    t[-1] = 1
    S[-1] = 1
    for l in range(j, i - 1, -1):
        L = net.layers[l]
        t[l - i] = (t[l - i + 1] - 1) * L.sh + L.ekh
        S[l - i] = S[l - i + 1] * L.sh
    return t, S


def cache_heights(net: Network, i: int, j: int, t: list[int], S: list[int]) -> list[int]:
    """h_l for l = i .. j: the tile height of the last simulated tile (the published code's rule)."""
    H_i = net.tensor_shape(i)[0]
    y = ((H_i - t[0]) // S[0]) * S[0]
    h = [t[0]]
    sigma = 1
    for l in range(i, j):
        L = net.layers[l]
        H_l = net.tensor_shape(l)[0]
        p = L.pad[0]
        sigma *= L.sh
        a = y // sigma
        hl = h[-1]
        num = hl - L.ekh + (p if y == 0 else 0) + (p if a + hl >= H_l else 0)
        h.append(num // L.sh + 1)
    return h


def fused_edge(net: Network, i: int, j: int) -> tuple[int, int] | None:
    """(RAM elements, MACs) of fused block [i..j] (i < j) before boundary adjustments, or None
    when infeasible."""
    t, S = tile_recursion(net, i, j)
    H_i, W_i, _ = net.tensor_shape(i)
    if t[0] > H_i or t[0] > W_i:
        return None
    h = cache_heights(net, i, j, t, S)
    cache = 0
    macs = 0
    for l in range(i, j + 1):
        L = net.layers[l]
        H_l, _, C_l = net.tensor_shape(l)
        cache += L.ekh * h[l - i] * C_l
        R = (H_l + 2 * L.pad[0] - t[l - i]) // S[l - i] + 1
        _, W_o, C_o = L.out_shape
        macs += R * W_o * t[l - i + 1] * C_o * L.macs_per_output()
    ram = net.tensor_elems(i) + net.tensor_elems(j + 1) + cache
    return ram, macs


def _fusable(net: Network, i: int, j: int) -> bool:
    for l in range(i, j + 1):
        L = net.layers[l]
        if L.op not in WINDOW_OPS or L.srcs != (l,):
            return False
    return True


def edges(net: Network, max_depth: int | None = None):
    """Yield (i, j, mode, ram_elements, macs) for every feasible block of the DAG, with the
    network-boundary adjustments applied."""
    n = net.n_layers
    last_in = net.tensor_elems(0)
    last_out = net.tensor_elems(n)
    for i in range(n):
        for j in range(i, n):
            if max_depth is not None and j - i + 1 > max_depth:
                break
            if i == j:
                ram = net.tensor_elems(i) + net.tensor_elems(i + 1)
                macs = net.layers[i].macs
                mode = "unfused"
            else:
                if not _fusable(net, i, j):
                    break
                r = fused_edge(net, i, j)
                if r is None:
                    break  # t_i only grows with j: no longer block starting at i is feasible
                ram, macs = r
                mode = "hcache"
            if i == 0:
                ram -= last_in
            if j == n - 1:
                ram -= last_out
            yield i, j, mode, ram, macs


def vanilla_peak(net: Network) -> int:
    """The paper's vanilla peak: max_l |X_l| + |X_{l+1}|, |X_0| dropped, |X_N| kept."""
    return max((0 if l == 0 else net.tensor_elems(l)) + net.tensor_elems(l + 1)
               for l in range(net.n_layers))
