"""Built-in model zoo: the three networks of the msf-CNN paper, exactly as its analysis defines them.

Each is a strict chain of conv / depthwise layers (no residual adds, no BN, no activations, no
classifier), layer for layer as in ``shared/reference/msfcnn.md`` section 3.

``MBConv(c_in, c_out, expand, k, s)`` expands to three layers: 1x1 conv to the expanded width
(present even when expand == 1), k x k depthwise with stride s and padding k // 2, 1x1 conv to
c_out.
"""
from __future__ import annotations

from .ir import ADD, CONV, DW, Layer, Network, chain, window_layer

# (expanded width, kernel, stride, output channels) per MBConv; padding is k // 2.
_MBV2_STEM = [(CONV, 11, 3, 2, 1)]
_MBV2_BLOCKS = [  # width 0.35 with truncation: int(c * 0.35)
    (11, 3, 1, 5),
    (30, 3, 2, 8), (48, 3, 1, 8),
    (48, 3, 2, 11), (66, 3, 1, 11), (66, 3, 1, 11),
    (66, 3, 2, 22), (132, 3, 1, 22), (132, 3, 1, 22), (132, 3, 1, 22),
    (132, 3, 1, 33), (198, 3, 1, 33), (198, 3, 1, 33),
    (198, 3, 2, 56), (336, 3, 1, 56), (336, 3, 1, 56),
    (336, 3, 1, 112),
]
_MBV2_TAIL = [(CONV, 448, 1, 1, 0)]

_MCU_STEM = [(CONV, 16, 3, 2, 1), (DW, 16, 3, 1, 1), (CONV, 8, 1, 1, 0)]
_VWW_BLOCKS = [
    (48, 3, 2, 16), (48, 3, 1, 16), (48, 3, 1, 16),
    (48, 7, 2, 24), (144, 3, 1, 24), (120, 5, 1, 24),
    (144, 7, 2, 40), (240, 7, 1, 40), (240, 3, 1, 48), (192, 3, 1, 48),
    (240, 5, 2, 96), (480, 3, 1, 96), (384, 3, 1, 96), (288, 7, 1, 160),
]
_320K_BLOCKS = [
    (24, 7, 2, 16), (80, 3, 1, 16), (80, 7, 1, 16), (64, 5, 1, 16),
    (80, 5, 2, 24), (120, 5, 1, 24), (120, 5, 1, 24),
    (120, 3, 2, 40), (240, 7, 1, 40), (160, 5, 1, 40),
    (200, 5, 1, 48), (240, 7, 1, 48), (240, 3, 1, 48),
    (288, 3, 2, 96), (480, 7, 1, 96), (384, 3, 1, 96),
    (480, 7, 1, 160),
]


def _mbconv_specs(blocks):
    specs = []
    for exp, k, s, out in blocks:
        specs += [(CONV, exp, 1, 1, 0), (DW, exp, k, s, k // 2), (CONV, out, 1, 1, 0)]
    return specs


ZOO = {
    "mbv2-w0.35": {
        "input": (144, 144, 3),
        "specs": _MBV2_STEM + _mbconv_specs(_MBV2_BLOCKS) + _MBV2_TAIL,
        "description": "MobileNetV2 w0.35 (truncated widths), 144x144x3, paper's analytic chain",
    },
    "mcunetv2-vww5": {
        "input": (80, 80, 3),
        "specs": _MCU_STEM + _mbconv_specs(_VWW_BLOCKS),
        "description": "MCUNetV2-VWW-5fps backbone, 80x80x3, paper's analytic chain",
    },
    "mcunet-320k": {
        "input": (176, 176, 3),
        "specs": _MCU_STEM + _mbconv_specs(_320K_BLOCKS),
        "description": "MCUNet-320KB-ImageNet backbone, 176x176x3, paper's analytic chain",
    },
}

# Residual variants: the real architectures add the MBConv input back when the block keeps its
# width and stride 1 (MCUNet-320KB has 11 such adds, like the released int8 model).
for _base in ("mbv2-w0.35", "mcunetv2-vww5", "mcunet-320k"):
    ZOO[_base + "-res"] = dict(ZOO[_base], residual=True,
                               description=ZOO[_base]["description"].replace(
                                   "paper's analytic chain", "with the real residual adds"))

#: short aliases accepted on the command line
ALIASES = {"mbv2": "mbv2-w0.35", "vww": "mcunetv2-vww5", "320k": "mcunet-320k",
           "mcunet320k": "mcunet-320k"}


def names() -> list[str]:
    return list(ZOO)


def resolve_name(name: str) -> str | None:
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    return key if key in ZOO else None


def load(name: str, dtype: str = "int8") -> Network:
    key = resolve_name(name)
    if key is None:
        raise KeyError(f"unknown zoo model {name!r} (available: {', '.join(ZOO)})")
    entry = ZOO[key]
    if entry.get("residual"):
        net = _residual(key, entry["input"], entry["specs"], dtype)
    else:
        net = chain(key, entry["input"], entry["specs"], dtype=dtype)
    net.source = f"zoo:{key}"
    return net


def _residual(name, input_shape, specs, dtype) -> Network:
    """The chain with an ADD after every MBConv (1x1, dw, 1x1 triple after the stem) whose output
    shape equals its input shape; the add reads the MBConv's input tensor as its skip."""
    stem = 1 if name.startswith("mbv2") else 3
    layers: list[Layer] = []
    shape = tuple(input_shape)
    for k, (op, c_out, kk, s, p) in enumerate(specs):
        if k >= stem and (k - stem) % 3 == 0:
            block_in = len(layers)            # tensor id of the MBConv input
            block_shape = shape
        layer = window_layer(op, shape, c_out, kk, s, p)
        layers.append(layer)
        shape = layer.out_shape
        if k >= stem and (k - stem) % 3 == 2 and shape == block_shape:
            layers.append(Layer(op=ADD, in_shape=shape, out_shape=shape, srcs=(len(layers),
                                block_in)))
    return Network(name=name, input_shape=tuple(input_shape), layers=layers, dtype=dtype).validate()
