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
    when infeasible: the per-block formulas, which :func:`edges` evaluates from its sweep
    (tests/test_paper.py checks that they agree on every block)."""
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


#: networks of up to this many layers (every zoo model) get every feasible block, as the paper
#: enumerates them (its DAG edge counts are part of the reproduction); longer ones get the exact
#: bound of :func:`edges`
BOUND_ABOVE_LAYERS = 100


def edges(net: Network, max_depth: int | None = None, bound: bool | None = None):
    """Yield (i, j, mode, ram_elements, macs) for every feasible block of the DAG, with the
    network-boundary adjustments applied, ordered by (i, j).

    With ``bound`` (default None: when the network has more than :data:`BOUND_ABOVE_LAYERS`
    layers) the fused blocks that the plain unfused layers dominate are not generated, decided
    before the block's RAM is computed.  Claim: let B = [l..j] be a fused
    block of a fusable run [a..j], t_m, S_m the tile recursion from j (identical for every block
    ending at j: it runs backwards from t_{j+1} = 1) and U(m) the unfused edge RAM of layer m.

    * RAM.  The cache heights satisfy h_m >= t_m for m in [l..j]: h_l = t_l, and if h_m >= t_m
      then h_{m+1} = (h_m - k_m + pads) // s_m + 1 >= (t_m - k_m) // s_m + 1 = t_{m+1} (pads >= 0,
      t_m - k_m = (t_{m+1} - 1) s_m).  So ram(B) >= in(l) + out(j) + sum_{m=l..j} k_m t_m C_m
      (in / out: the boundary tensors as counted, 0 at the network's ends).
    * MACs.  Layer m's MACs in any block ending at j, f_m = R_m W_{m+1} t_{m+1} C_{m+1} mu_m,
      depend only on t and S, so macs(B) = sum_{m=l..j} f_m exactly.

    If that RAM bound is >= the largest U(m) of the run up to j (m in [a..j], so >= the largest of
    [l..j]) and sum_{m=l..j} f_m >= sum_{m=l..j} MACs_m, replacing B by the unfused layers l..j in
    any plan gives a peak no higher and MACs (the cycles of this cost model) no higher, so every
    constraint (RAM cap, MAC budget) still holds and no objective gets worse: no optimal
    (latency, peak) value, and no Pareto point, is lost (the returned plan may differ among tied
    optima).  The run-wide maximum (not the block's own) keeps the short blocks the paper's
    published settings use, which tie with their unfused layers; it removes the long blocks whose
    rings outgrow every unfused layer of the run -- in a run of 1x1 layers, where tiles never grow,
    every block longer than that.  Blocks whose first tile exceeds their input are infeasible
    (t only grows backwards, so for a fixed start every longer block is too).  ``bound=False``:
    every feasible block, as the paper's search enumerates them."""
    n = net.n_layers
    if bound is None:
        bound = n > BOUND_ABOVE_LAYERS
    E = [net.tensor_elems(t) for t in range(n + 1)]
    cnt_in = [0] + E[1:n]                  # counted input of a block starting at l
    cnt_out = E[1:n] + [0]                 # counted output of a block ending at j
    unf = [cnt_in[m] + cnt_out[m] for m in range(n)]
    lay = net.layers
    fus = [L.op in WINDOW_OPS and L.srcs == (m,) for m, L in enumerate(lay)]
    run_max = [0] * n                      # max unfused RAM over the fusable run up to m
    for m in range(n):
        run_max[m] = max(unf[m], run_max[m - 1]) if m > 0 and fus[m] and fus[m - 1] else unf[m]
    # per-layer scalars once (the sweep below reads them O(n * depth) times)
    kh = [L.ekh for L in lay]
    sh = [L.sh for L in lay]
    pad = [L.pad[0] for L in lay]
    shp = [net.tensor_shape(m) for m in range(n)]
    wc_mu = [L.out_shape[1] * L.out_shape[2] * L.macs_per_output() for L in lay]
    lmacs = [L.macs for L in lay]
    side = [0] * n          # largest min(H, W) of a block start in the fusable run up to m
    for m in range(n):
        side[m] = max(min(shp[m][:2]), side[m - 1] if m > 0 and fus[m] and fus[m - 1] else 0)
    found: dict[int, list[tuple]] = {i: [] for i in range(n)}
    for i in range(n):
        found[i].append((i, i, "unfused", unf[i], lmacs[i]))
    for j in range(n):
        if not fus[j]:
            continue
        t, S = 1, 1
        ring = 0
        fm = 0                      # sum of f_m over [l..j]
        um = 0                      # sum of unfused MACs over [l..j]
        tS = {}                     # m -> (t_m, S_m) of the recursion from j
        for l in range(j, -1, -1):
            if not fus[l] or (max_depth is not None and j - l + 1 > max_depth):
                break
            H_l, W_l, C_l = shp[l]
            t_next = t
            t = (t - 1) * sh[l] + kh[l]
            S *= sh[l]
            tS[l] = (t, S)
            R = (H_l + 2 * pad[l] - t) // S + 1
            fm += R * t_next * wc_mu[l]
            um += lmacs[l]
            ring += kh[l] * t * C_l
            if t > side[l]:
                break               # t only grows backwards: no earlier start fits either
            if l == j or t > H_l or t > W_l:
                continue            # the block itself, or infeasible (an earlier start may fit)
            if bound and cnt_in[l] + cnt_out[j] + ring >= run_max[j] and fm >= um:
                continue            # dominated by the unfused layers (claim above)
            # fused_edge(net, l, j) from the recursion's values: MACs = fm (the claim above),
            # the cache over cache_heights' last simulated tile
            y = ((H_l - t) // S) * S
            h = t
            sigma = 1
            cache = kh[l] * t * C_l
            for m in range(l, j):
                sigma *= sh[m]
                num = h - kh[m] + (pad[m] if y == 0 else 0) + \
                    (pad[m] if y // sigma + h >= shp[m][0] else 0)
                h = num // sh[m] + 1
                cache += kh[m + 1] * h * shp[m + 1][2]
            ram, macs = E[l] + E[j + 1] + cache, fm
            if l == 0:
                ram -= E[0]
            if j == n - 1:
                ram -= E[n]
            found[l].append((l, j, "hcache", ram, macs))
    for i in range(n):
        found[i].sort(key=lambda e: e[1])
        yield from found[i]


def vanilla_peak(net: Network) -> int:
    """The paper's vanilla peak: max_l |X_l| + |X_{l+1}|, |X_0| dropped, |X_N| kept."""
    return max((0 if l == 0 else net.tensor_elems(l)) + net.tensor_elems(l + 1)
               for l in range(net.n_layers))
