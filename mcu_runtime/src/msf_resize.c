/* msf_resize.c - nearest / bilinear resize (ONNX Resize as onnxruntime computes it, TFLite
 * Micro RESIZE_NEAREST_NEIGHBOR / RESIZE_BILINEAR) working through msf_view.  The arithmetic
 * is documented in msf_resize.h. */
#include "msf_internal.h"

/* float -> int helpers without <math.h>.  Coordinates are bounded by the clamps below; |v| is
 * first limited to 2^30 so the conversions are defined (larger values are clamped to the input
 * extent afterwards anyway).  NaN maps to 0. */
static int32_t rz_trunc(float v)
{
    if (!(v == v)) {
        return 0;
    }
    if (v > 1073741824.0f) {
        return 1073741824;
    }
    if (v < -1073741824.0f) {
        return -1073741824;
    }
    return (int32_t)v;
}

static int32_t rz_floor(float v)
{
    int32_t t = rz_trunc(v);
    return ((float)t > v) ? t - 1 : t;
}

static int32_t rz_ceil(float v)
{
    int32_t t = rz_trunc(v);
    return ((float)t < v) ? t + 1 : t;
}

/* std::round: half away from zero (v - trunc(v) is exact in float32) */
static int32_t rz_round(float v)
{
    int32_t t = rz_trunc(v);
    float fr = v - (float)t;
    if (fr >= 0.5f) {
        t++;
    } else if (fr <= -0.5f) {
        t--;
    }
    return t;
}

/* ORT GetOriginalCoordinateFromResizedCoordinate (float32) */
static float onnx_coord(int32_t coord, int32_t x, float s, int32_t lo, int32_t lr)
{
    const float xf = (float)x;
    if (s == 1.0f) {
        return xf;
    }
    switch (coord) {
    case MSF_COORD_ASYMMETRIC:
        return xf / s;
    case MSF_COORD_PYTORCH_HALF_PIXEL:
        return lr > 1 ? (xf + 0.5f) / s - 0.5f : 0.0f;
    case MSF_COORD_TF_HALF_PIXEL_FOR_NN:
        return (xf + 0.5f) / s;
    case MSF_COORD_ALIGN_CORNERS:
        return lr == 1 ? 0.0f : (xf * (float)(lo - 1)) / (float)(lr - 1);
    default: /* MSF_COORD_HALF_PIXEL */
        return ((xf + 0.5f) / s) - 0.5f;
    }
}

/* Source index of output index x along one axis (nearest, both frameworks). */
/* ORT copies the input when the output shape equals the input shape (whatever the scales) */
static int32_t onnx_same_shape(const msf_resize_params *p, const msf_view *in, const msf_view *out)
{
    return p->framework != MSF_RESIZE_TFLM && in->H == out->H && in->W == out->W;
}

static int32_t nearest_index(const msf_resize_params *p, int32_t x, float s, int32_t lo,
                             int32_t lr)
{
    int32_t i;
    if (p->framework == MSF_RESIZE_TFLM) {
        /* reference_ops::GetNearestNeighbor; s = its float scale */
        float v = ((float)x + (p->half_pixel_centers ? 0.5f : 0.0f)) * s;
        i = p->align_corners ? rz_round(v) : rz_floor(v);
        i = MSF_MIN(i, lo - 1);
        if (p->half_pixel_centers) {
            i = MSF_MAX(i, 0);
        }
        return i;
    } else {
        float o = onnx_coord(p->coord, x, s, lo, lr);
        if (s == 1.0f) {
            i = x; /* ORT: identity mapping when the scale is exactly 1 */
        } else {
            switch (p->nearest) {
            case MSF_NEAREST_FLOOR:
                i = rz_floor(o);
                break;
            case MSF_NEAREST_CEIL:
                i = rz_ceil(o);
                break;
            default: { /* ROUND_PREFER_FLOOR / _CEIL: ties within 1e-6 of .5 */
                const int32_t fl = rz_floor(o);
                float d = (o - (float)fl) - 0.5f;
                d = d < 0.0f ? -d : d;
                if (d <= 1e-6f) {
                    i = (p->nearest == MSF_NEAREST_ROUND_PREFER_CEIL) ? rz_ceil(o) : fl;
                } else {
                    i = rz_round(o);
                }
                break;
            }
            }
        }
        return msf_clamp_i32(i, 0, lo - 1);
    }
}

/* Two-tap bilinear geometry of one axis: rows/columns i0, i1 with float weights w0, w1
 * (ONNX: ORT's dx2 / dx1; TFLM float: 1 - frac, frac) or the integer fraction d (TFLM int8). */
typedef struct {
    int32_t i0, i1, d;
    float w0, w1;
} rz_tap;

static void bilinear_tap(const msf_resize_params *p, int32_t x, float s, int32_t s10, int32_t lo,
                         int32_t lr, int32_t integer, rz_tap *t)
{
    if (p->framework == MSF_RESIZE_TFLM) {
        if (integer) {
            /* ComputeInterpolationValuesInteger */
            int32_t v = p->half_pixel_centers ? x * s10 + s10 / 2 - (1 << 9) : x * s10;
            t->i0 = MSF_MAX(v / (1 << 10), 0);
            t->i1 = MSF_MIN((v + (1 << 10) - 1) / (1 << 10), lo - 1);
            t->d = v - (1 << 10) * t->i0;
            t->i0 = MSF_MIN(t->i0, lo - 1); /* memory safety only: never binds for Lr < 2049 */
            t->w0 = t->w1 = 0.0f;
        } else {
            /* ComputeInterpolationValues (float) */
            float v = p->half_pixel_centers ? ((float)x + 0.5f) * s - 0.5f : (float)x * s;
            float fr;
            t->i0 = MSF_MAX(rz_floor(v), 0);
            t->i1 = MSF_MIN(rz_ceil(v), lo - 1);
            fr = v - (float)t->i0;
            t->w0 = 1.0f - fr;
            t->w1 = fr;
            t->d = 0;
        }
    } else {
        /* ORT SetupUpsampleBilinear */
        float o = (s == 1.0f) ? (float)x : onnx_coord(p->coord, x, s, lo, lr);
        float hi = (float)(lo - 1);
        o = o > hi ? hi : o;
        o = o < 0.0f ? 0.0f : o;
        t->i0 = MSF_MIN(rz_trunc(o), lo - 1);
        t->i1 = MSF_MIN(t->i0 + 1, lo - 1);
        if (t->i0 == t->i1) {
            t->w0 = t->w1 = 0.5f;
        } else {
            float d1 = o - (float)t->i0, d2 = o - (float)t->i1;
            t->w1 = d1 < 0.0f ? -d1 : d1; /* dx1 = |o - i0|: weight of i1 */
            t->w0 = d2 < 0.0f ? -d2 : d2; /* dx2 = |o - i1|: weight of i0 */
        }
        t->d = 0;
    }
}

void msf_resize_f32(const msf_resize_params *p, const msf_view *in, msf_view *out, int32_t oy0,
                    int32_t oy1, int32_t ox0, int32_t ox1)
{
    const float *x = (const float *)in->data;
    float *y = (float *)out->data;
    const int32_t C = out->C;
    const int32_t same = onnx_same_shape(p, in, out);
    const float sh = same ? 1.0f : p->scale_h, sw = same ? 1.0f : p->scale_w;
    int32_t oy, ox, c;

    if (oy1 <= oy0 || ox1 <= ox0) {
        return;
    }
    if (p->mode == MSF_RESIZE_NEAREST) {
        for (oy = oy0; oy < oy1; oy++) {
            const int32_t iy = nearest_index(p, oy, sh, in->H, out->H);
            for (ox = ox0; ox < ox1; ox++) {
                const int32_t ix = nearest_index(p, ox, sw, in->W, out->W);
                const float *xp = x + msf_vofs(in, iy, ix);
                float *yp = y + msf_vofs(out, oy, ox);
                for (c = 0; c < C; c++) {
                    yp[c] = xp[c];
                }
            }
        }
        return;
    }
    MSF_ADD_MACS((int64_t)(oy1 - oy0) * (ox1 - ox0) * C * 4);
    for (oy = oy0; oy < oy1; oy++) {
        rz_tap ty;
        bilinear_tap(p, oy, sh, p->scale10_h, in->H, out->H, 0, &ty);
        for (ox = ox0; ox < ox1; ox++) {
            rz_tap tx;
            const float *p00, *p01, *p10, *p11;
            float *yp = y + msf_vofs(out, oy, ox);
            bilinear_tap(p, ox, sw, p->scale10_w, in->W, out->W, 0, &tx);
            p00 = x + msf_vofs(in, ty.i0, tx.i0);
            p01 = x + msf_vofs(in, ty.i0, tx.i1);
            p10 = x + msf_vofs(in, ty.i1, tx.i0);
            p11 = x + msf_vofs(in, ty.i1, tx.i1);
            if (p->framework == MSF_RESIZE_TFLM) {
                for (c = 0; c < C; c++) {
                    yp[c] = p00[c] * ty.w0 * tx.w0 + p10[c] * ty.w1 * tx.w0 +
                            p01[c] * ty.w0 * tx.w1 + p11[c] * ty.w1 * tx.w1;
                }
            } else {
                for (c = 0; c < C; c++) {
                    yp[c] = tx.w0 * ty.w0 * p00[c] + tx.w1 * ty.w0 * p01[c] +
                            tx.w0 * ty.w1 * p10[c] + tx.w1 * ty.w1 * p11[c];
                }
            }
        }
    }
}

/* One int8 value as ORT's float bilinear sees it: dequantised (QDQ) or the integer itself */
static float onnx_s8_in(const msf_resize_params *p, int8_t q)
{
    return p->onnx_s8 == MSF_RESIZE_S8_QDQ ? (float)((int32_t)q - p->in_zp) * p->in_scale
                                           : (float)q;
}

/* ORT QuantizeLinear (MlasQuantizeLinear, int8) or static_cast<int8_t> of the float sum */
static int8_t onnx_s8_out(const msf_resize_params *p, float v)
{
    if (p->onnx_s8 == MSF_RESIZE_S8_QDQ) {
        float q = v / p->out_scale;
        q = msf_clamp_f32(q, (float)(-128 - p->out_zp), (float)(127 - p->out_zp));
        return (int8_t)(msf_round_half_even(q) + p->out_zp);
    }
    return (int8_t)msf_clamp_i32(rz_trunc(v), -128, 127);
}

/* ONNX int8 bilinear: msf_resize_f32's float32 taps and sum over onnx_s8_in values */
static void onnx_bilinear_s8(const msf_resize_params *p, const msf_view *in, msf_view *out,
                             float sh, float sw, int32_t oy0, int32_t oy1, int32_t ox0,
                             int32_t ox1)
{
    const int8_t *x = (const int8_t *)in->data;
    int8_t *y = (int8_t *)out->data;
    const int32_t C = out->C;
    int32_t oy, ox, c;
    MSF_ADD_MACS((int64_t)(oy1 - oy0) * (ox1 - ox0) * C * 4);
    for (oy = oy0; oy < oy1; oy++) {
        rz_tap ty;
        bilinear_tap(p, oy, sh, 0, in->H, out->H, 0, &ty);
        for (ox = ox0; ox < ox1; ox++) {
            rz_tap tx;
            const int8_t *p00, *p01, *p10, *p11;
            int8_t *yp = y + msf_vofs(out, oy, ox);
            bilinear_tap(p, ox, sw, 0, in->W, out->W, 0, &tx);
            p00 = x + msf_vofs(in, ty.i0, tx.i0);
            p01 = x + msf_vofs(in, ty.i0, tx.i1);
            p10 = x + msf_vofs(in, ty.i1, tx.i0);
            p11 = x + msf_vofs(in, ty.i1, tx.i1);
            for (c = 0; c < C; c++) {
                const float v = tx.w0 * ty.w0 * onnx_s8_in(p, p00[c]) +
                                tx.w1 * ty.w0 * onnx_s8_in(p, p01[c]) +
                                tx.w0 * ty.w1 * onnx_s8_in(p, p10[c]) +
                                tx.w1 * ty.w1 * onnx_s8_in(p, p11[c]);
                yp[c] = onnx_s8_out(p, v);
            }
        }
    }
}

void msf_resize_s8(const msf_resize_params *p, const msf_view *in, msf_view *out, int32_t oy0,
                   int32_t oy1, int32_t ox0, int32_t ox1)
{
    const int8_t *x = (const int8_t *)in->data;
    int8_t *y = (int8_t *)out->data;
    const int32_t C = out->C;
    const int32_t same = onnx_same_shape(p, in, out);
    const float sh = same ? 1.0f : p->scale_h, sw = same ? 1.0f : p->scale_w;
    int32_t oy, ox, c;

    if (oy1 <= oy0 || ox1 <= ox0) {
        return;
    }
    if (p->mode == MSF_RESIZE_NEAREST) {
        for (oy = oy0; oy < oy1; oy++) {
            const int32_t iy = nearest_index(p, oy, sh, in->H, out->H);
            for (ox = ox0; ox < ox1; ox++) {
                const int32_t ix = nearest_index(p, ox, sw, in->W, out->W);
                const int8_t *xp = x + msf_vofs(in, iy, ix);
                int8_t *yp = y + msf_vofs(out, oy, ox);
                for (c = 0; c < C; c++) {
                    yp[c] = xp[c];
                }
            }
        }
        return;
    }
    if (p->framework == MSF_RESIZE_ONNX) {
        onnx_bilinear_s8(p, in, out, sh, sw, oy0, oy1, ox0, ox1);
        return;
    }
    /* bilinear int8: TFLM ResizeBilinearInteger */
    MSF_ADD_MACS((int64_t)(oy1 - oy0) * (ox1 - ox0) * C * 4);
    for (oy = oy0; oy < oy1; oy++) {
        rz_tap ty;
        int32_t wy0, wy1;
        bilinear_tap(p, oy, sh, p->scale10_h, in->H, out->H, 1, &ty);
        wy0 = (1 << 10) - ty.d;
        wy1 = ty.d;
        for (ox = ox0; ox < ox1; ox++) {
            rz_tap tx;
            int32_t wx0, wx1;
            const int8_t *p00, *p01, *p10, *p11;
            int8_t *yp = y + msf_vofs(out, oy, ox);
            bilinear_tap(p, ox, sw, p->scale10_w, in->W, out->W, 1, &tx);
            wx0 = (1 << 10) - tx.d;
            wx1 = tx.d;
            p00 = x + msf_vofs(in, ty.i0, tx.i0);
            p01 = x + msf_vofs(in, ty.i0, tx.i1);
            p10 = x + msf_vofs(in, ty.i1, tx.i0);
            p11 = x + msf_vofs(in, ty.i1, tx.i1);
            for (c = 0; c < C; c++) {
                /* |weights| < 1536, so every product and the sum stay below 2^29 */
                const int32_t acc = (int32_t)p00[c] * wy0 * wx0 + (int32_t)p10[c] * wy1 * wx0 +
                                    (int32_t)p01[c] * wy0 * wx1 + (int32_t)p11[c] * wy1 * wx1;
                const int32_t r = (acc + (acc > 0 ? (1 << 19) : -(1 << 19))) / (1 << 20);
                yp[c] = (int8_t)msf_clamp_i32(r, -128, 127);
            }
        }
    }
}
