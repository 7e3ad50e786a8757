"""Hypothesis strategies for random CNN chains."""
from hypothesis import strategies as st

from msfopt.ir import AVGPOOL, CONV, DENSE, DW, GAP, MAXPOOL, Layer, Network, conv_out, window_layer


@st.composite
def chains(draw, min_layers=2, max_layers=9, max_hw=40, ops=(CONV, DW, MAXPOOL, AVGPOOL),
           dtype="int8", asymmetric=True, tail=False):
    """A random chain of window layers; with ``tail`` it may end in GAP (+ dense)."""
    h = draw(st.integers(6, max_hw))
    w = draw(st.integers(6, max_hw)) if asymmetric and draw(st.booleans()) else h
    c = draw(st.integers(1, 8))
    n = draw(st.integers(min_layers, max_layers))
    layers = []
    shape = (h, w, c)
    for _ in range(n):
        op = draw(st.sampled_from(ops))
        kh = draw(st.sampled_from([1, 3, 5] if op in (CONV, DW) else [2, 3]))
        kw = kh if not asymmetric or draw(st.booleans()) else draw(st.sampled_from([1, 3]))
        s = draw(st.sampled_from([1, 1, 2]))
        pads = [draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1))]
        if asymmetric and draw(st.booleans()):
            pad = (pads[0], pads[1], draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1)))
        else:
            pad = (pads[0], pads[1], pads[0], pads[1])
        if conv_out(shape[0], kh, s, pad[0], pad[2]) < 1 or conv_out(shape[1], kw, s, pad[1], pad[3]) < 1:
            break
        c_out = draw(st.integers(1, 12)) if op == CONV else shape[2]
        layer = window_layer(op, shape, c_out, (kh, kw), s, pad)
        layers.append(layer)
        shape = layer.out_shape
    if not layers:
        layers.append(window_layer(CONV, (h, w, c), 4, 1, 1, 0))
    if tail and draw(st.booleans()):
        cc = layers[-1].out_shape[2]
        layers.append(Layer(op=GAP, in_shape=layers[-1].out_shape, out_shape=(1, 1, cc)))
        if draw(st.booleans()):
            layers.append(Layer(op=DENSE, in_shape=(1, 1, cc), out_shape=(1, 1, draw(st.integers(1, 6)))))
    return Network(name="random", input_shape=(h, w, c), layers=layers, dtype=dtype).validate()


def all_paths(dag) -> list[list[int]]:
    """Every 0 -> N path of a (small) fusion DAG, by exhaustive enumeration."""
    out = dag.out_edges()
    paths = []

    def walk(v, acc):
        if v == dag.n_nodes - 1:
            paths.append(list(acc))
            return
        for e in out[v]:
            acc.append(e)
            walk(int(dag.dst[e]), acc)
            acc.pop()

    walk(0, [])
    return paths


def draw_path(dag, data) -> list[int]:
    """A random 0 -> N path, drawn edge by edge with hypothesis' ``data``."""
    out = dag.out_edges()
    v, path = 0, []
    while v != dag.n_nodes - 1:
        e = data.draw(st.sampled_from(out[v]))
        path.append(e)
        v = int(dag.dst[e])
    return path


def random_path(dag, rng) -> list[int]:
    """A random 0 -> N path (a random valid plan), each edge drawn uniformly from the current
    node's out-edges with a numpy ``rng`` (seeded by the caller's hypothesis example)."""
    out = dag.out_edges()
    v, path = 0, []
    while v != dag.n_nodes - 1:
        e = out[v][int(rng.integers(len(out[v])))]
        path.append(e)
        v = int(dag.dst[e])
    assert dag.is_path(path)
    return path


def path_blocks(dag, path) -> list[tuple]:
    """The (first, last, mode, tile) blocks of a DAG path, as ``generate`` takes them."""
    return [(int(dag.src[e]), int(dag.dst[e]) - 1, dag.mode[e], dag.tile[e]) for e in path]
