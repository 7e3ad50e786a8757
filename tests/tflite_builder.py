"""TFLite flatbuffer writer for tests: one-subgraph int8 models built with the ``tflite``
package's generated builders (no TensorFlow needed), run through tflite-micro as the oracle.
Moved here from tests/test_tflite_import.py (which imports it back) so other tests can use it."""
from __future__ import annotations

import flatbuffers
import numpy as np
import tflite


def _mod(name):
    import importlib
    return importlib.import_module(f"tflite.{name}")


class ModelWriter:
    """Minimal TFLite flatbuffer writer for tests (one subgraph)."""

    INT8, INT32 = 9, 2

    def __init__(self):
        self.tensors: list[dict] = []
        self.buffers: list[bytes] = [b""]
        self.ops: list[tuple] = []
        self.codes: list[int] = []

    def tensor(self, shape, dtype=INT8, scale=None, zp=None, qdim=0, data=None, name=None):
        buf = 0
        if data is not None:
            self.buffers.append(np.ascontiguousarray(data).tobytes())
            buf = len(self.buffers) - 1
        self.tensors.append(dict(shape=list(shape), type=dtype, buffer=buf,
                                 scale=None if scale is None else np.atleast_1d(scale),
                                 zp=None if zp is None else np.atleast_1d(zp), qdim=qdim,
                                 name=name or f"t{len(self.tensors)}"))
        return len(self.tensors) - 1

    def act(self, shape, scale, zp):
        return self.tensor(shape, self.INT8, scale, zp)

    def op(self, code: int, inputs, outputs, opt_type=0, opt=None):
        if code not in self.codes:
            self.codes.append(code)
        self.ops.append((self.codes.index(code), list(inputs), list(outputs), opt_type, opt))
        return len(self.ops) - 1

    @staticmethod
    def _ivec(b, start, vals, prepend="PrependInt32"):
        start(b, len(vals))
        for v in reversed(vals):
            getattr(b, prepend)(v)
        return b.EndVector()

    def build(self, inputs, outputs) -> bytes:
        T = tflite
        b = flatbuffers.Builder(1024)
        bufs = []
        for data in self.buffers:
            vec = b.CreateNumpyVector(np.frombuffer(data, np.uint8)) if data else None
            T.BufferStart(b)
            if vec is not None:
                T.BufferAddData(b, vec)
            bufs.append(T.BufferEnd(b))
        tens = []
        for t in self.tensors:
            name = b.CreateString(t["name"])
            shape = self._ivec(b, T.TensorStartShapeVector, t["shape"])
            q = None
            if t["scale"] is not None:
                sc = b.CreateNumpyVector(np.asarray(t["scale"], np.float32))
                zp = b.CreateNumpyVector(np.asarray(t["zp"], np.int64))
                T.QuantizationParametersStart(b)
                T.QuantizationParametersAddScale(b, sc)
                T.QuantizationParametersAddZeroPoint(b, zp)
                T.QuantizationParametersAddQuantizedDimension(b, t["qdim"])
                q = T.QuantizationParametersEnd(b)
            T.TensorStart(b)
            T.TensorAddShape(b, shape)
            T.TensorAddType(b, t["type"])
            T.TensorAddBuffer(b, t["buffer"])
            T.TensorAddName(b, name)
            if q is not None:
                T.TensorAddQuantization(b, q)
            tens.append(T.TensorEnd(b))
        ops = []
        for idx, ins, outs, opt_type, opt in self.ops:
            opt_off = opt(b) if opt is not None else None
            iv = self._ivec(b, T.OperatorStartInputsVector, ins)
            ov = self._ivec(b, T.OperatorStartOutputsVector, outs)
            T.OperatorStart(b)
            T.OperatorAddOpcodeIndex(b, idx)
            T.OperatorAddInputs(b, iv)
            T.OperatorAddOutputs(b, ov)
            if opt_off is not None:
                T.OperatorAddBuiltinOptionsType(b, opt_type)
                T.OperatorAddBuiltinOptions(b, opt_off)
            ops.append(T.OperatorEnd(b))
        codes = []
        for c in self.codes:
            T.OperatorCodeStart(b)
            T.OperatorCodeAddDeprecatedBuiltinCode(b, min(c, 127))
            T.OperatorCodeAddBuiltinCode(b, c)
            T.OperatorCodeAddVersion(b, 1)
            codes.append(T.OperatorCodeEnd(b))

        def offvec(start, items):
            start(b, len(items))
            for it in reversed(items):
                b.PrependUOffsetTRelative(it)
            return b.EndVector()

        tv = offvec(T.SubGraphStartTensorsVector, tens)
        opv = offvec(T.SubGraphStartOperatorsVector, ops)
        inv = self._ivec(b, T.SubGraphStartInputsVector, inputs)
        outv = self._ivec(b, T.SubGraphStartOutputsVector, outputs)
        gname = b.CreateString("main")
        T.SubGraphStart(b)
        T.SubGraphAddTensors(b, tv)
        T.SubGraphAddInputs(b, inv)
        T.SubGraphAddOutputs(b, outv)
        T.SubGraphAddOperators(b, opv)
        T.SubGraphAddName(b, gname)
        sg = T.SubGraphEnd(b)
        sgv = offvec(T.ModelStartSubgraphsVector, [sg])
        cv = offvec(T.ModelStartOperatorCodesVector, codes)
        bv = offvec(T.ModelStartBuffersVector, bufs)
        desc = b.CreateString("msfopt test model")
        T.ModelStart(b)
        T.ModelAddVersion(b, 3)
        T.ModelAddOperatorCodes(b, cv)
        T.ModelAddSubgraphs(b, sgv)
        T.ModelAddDescription(b, desc)
        T.ModelAddBuffers(b, bv)
        b.Finish(T.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())


OP = {"ADD": 0, "AVERAGE_POOL_2D": 1, "CONCATENATION": 2, "CONV_2D": 3, "DEPTHWISE_CONV_2D": 4,
      "FULLY_CONNECTED": 9, "MAX_POOL_2D": 17, "MUL": 18, "RESHAPE": 22, "SOFTMAX": 25, "PAD": 34,
      "TRANSPOSE": 39, "MEAN": 40, "SUB": 41, "SPLIT": 49, "SPLIT_V": 102}
BO = tflite.BuiltinOptions
SAME, VALID = 0, 1
ACT = {"none": 0, "relu": 1, "relu6": 3}


# ---- options of the data-movement / elementwise ops (each returns (BuiltinOptions type, fn)) ----

def split_opts(n: int):
    def f(b):
        tflite.SplitOptionsStart(b)
        tflite.SplitOptionsAddNumSplits(b, n)
        return tflite.SplitOptionsEnd(b)
    return BO.SplitOptions, f


def split_v_opts(n: int):
    def f(b):
        tflite.SplitVOptionsStart(b)
        tflite.SplitVOptionsAddNumSplits(b, n)
        return tflite.SplitVOptionsEnd(b)
    return BO.SplitVOptions, f


def sub_opts(act="none"):
    def f(b):
        tflite.SubOptionsStart(b)
        tflite.SubOptionsAddFusedActivationFunction(b, ACT[act])
        return tflite.SubOptionsEnd(b)
    return BO.SubOptions, f


def transpose_opts():
    def f(b):
        tflite.TransposeOptionsStart(b)
        return tflite.TransposeOptionsEnd(b)
    return BO.TransposeOptions, f
