/* msf_move.h - see the section comment below (included by msf_runtime.h). */
#ifndef MSF_MOVE_H
#define MSF_MOVE_H

#include "msf_runtime.h" /* msf_view (no-op when included from msf_runtime.h itself) */

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------- */
/* Data movement on the channel axis, any dtype (msf_move.c)                                 */
/* ---------------------------------------------------------------------------------------- */
/*
 * Element size 1 (int8) or 4 (float32) bytes, given by esize.  Values are moved unchanged
 * (no requantisation, no arithmetic: an int8 Concat / Split of tensors with different
 * quantisations needs a requantising op around it).  Every kernel computes the output region
 * [oy0, oy1) x [ox0, ox1) (rows x columns, all of the output's channels unless said otherwise)
 * and reads the input at the same (y, x), through msf_view, so both sides may be full tensors
 * or ring buffers (y0 > 0, xcap < W).  in and out have the same H x W; out must not overlap in
 * (except msf_copy_to_channels / msf_copy_from_channels with c_off = 0 and in->C == out->C,
 * which are plain copies).  They count no MACs.  With -DMSF_CHECK_BOUNDS a channel range that
 * does not fit (c_off < 0, c_off + n > C, groups not dividing C) is reported through
 * msf_bounds_fail() and the call does nothing.
 */

typedef struct {
    int32_t esize;     /* bytes per element: 1 (int8_t) or 4 (float) */
    int32_t c_off;     /* first channel of the slice in the wider tensor (copy_to: in out;
                          copy_from: in in; pad: where the input's channels start in out) */
    int32_t groups;    /* msf_channel_shuffle: g, dividing C; others ignore it */
    uint32_t pad_bits; /* msf_pad_channels: bit pattern of the pad element: esize 1: the int8
                          value in the low 8 bits ((uint32_t)(uint8_t)v; a quantised zero is the
                          zero point), esize 4: the float's IEEE bits (0 for 0.0f,
                          np.float32(v).view(np.uint32)); others ignore it */
    int32_t x_off;     /* msf_copy_to_columns: first column of the part in the wider tensor;
                          others ignore it */
} msf_move_params;

/* One input of a channel Concat (ONNX Concat axis=1 of NCHW, TFLite CONCATENATION on the
 * last axis): out[y][x][c_off + c] = in[y][x][c] for 0 <= c < in->C; out's other channels are
 * left untouched.  The region [oy0, oy1) x [ox0, ox1) is in both tensors.  Needs
 * 0 <= c_off, c_off + in->C <= out->C. */
void msf_copy_to_channels(const msf_move_params *p, const msf_view *in, msf_view *out,
                          int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1);

/* One input of a Concat along the width (TFLite CONCATENATION on axis 1 of [1, N, k] tensors,
 * a detector's per-scale boxes / scores): out[y][x_off + x][c] = in[y][x][c] for the region
 * [oy0, oy1) x [ox0, ox1) of in; out has in->H rows and in->C channels.  Needs
 * 0 <= x_off, x_off + in->W <= out->W. */
void msf_copy_to_columns(const msf_move_params *p, const msf_view *in, msf_view *out,
                         int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1);

/* One output of a channel Split, or a channel Slice with step 1 (ONNX Split / Slice on axis 1,
 * TFLite SPLIT / SLICE / STRIDED_SLICE on the last axis): out[y][x][c] = in[y][x][c_off + c]
 * for 0 <= c < out->C.  Needs 0 <= c_off, c_off + out->C <= in->C. */
void msf_copy_from_channels(const msf_move_params *p, const msf_view *in, msf_view *out,
                            int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1);

/* ShuffleNet channel shuffle, the ONNX pattern Reshape [N, g, C/g, H, W] -> Transpose
 * perm [0, 2, 1, 3, 4] -> Reshape [N, C, H, W] (torch: x.view(N, g, C/g, H, W).transpose(1, 2)
 * .reshape(N, C, H, W)), g = groups, in->C == out->C == C:
 *     out[y][x][j * g + i] = in[y][x][i * (C / g) + j]    for 0 <= i < g, 0 <= j < C / g,
 * i.e. out channel c' reads in channel (c' % g) * (C / g) + c' / g.  (With g' = C / g in place
 * of g this is the inverse permutation.) */
void msf_channel_shuffle(const msf_move_params *p, const msf_view *in, msf_view *out,
                         int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1);

/* Constant padding of the channel axis (ONNX Pad mode "constant" with pads only on axis 1;
 * TFLite PAD / PADV2 on the last axis):
 *     out[y][x][c] = in[y][x][c - c_off]   for c_off <= c < c_off + in->C,
 *                  = pad element (pad_bits)   for the other channels of out.
 * Needs 0 <= c_off, c_off + in->C <= out->C (c_off = pad before, out->C - in->C - c_off after). */
void msf_pad_channels(const msf_move_params *p, const msf_view *in, msf_view *out,
                      int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1);

#ifdef __cplusplus
}
#endif

#endif /* MSF_MOVE_H */
