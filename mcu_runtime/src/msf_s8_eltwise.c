/* msf_s8_eltwise.c - int8 elementwise kernels: 256-entry lookup tables (every unary op), PReLU,
 * Mul (and, through its params, the broadcasting ADD / SUB), the TFLM ADD of a per-channel
 * constant (see msf_s8_eltwise.h for the exact arithmetic of
 * each mode). */
#include "msf_internal.h"

void msf_lut_s8(const msf_lut_s8_params *p, const msf_view *in, msf_view *out, int32_t oy0,
                int32_t oy1, int32_t ox0, int32_t ox1)
{
    const int8_t *x = (const int8_t *)in->data;
    int8_t *y = (int8_t *)out->data;
    const int8_t *t = p->table + 128;
    const int32_t C = out->C;
    int32_t oy, ox, c;
    for (oy = oy0; oy < oy1; oy++) {
        for (ox = ox0; ox < ox1; ox++) {
            const int8_t *xp = x + msf_vofs(in, oy, ox);
            int8_t *yp = y + msf_vofs(out, oy, ox);
            for (c = 0; c < C; c++) {
                yp[c] = t[xp[c]];
            }
        }
    }
}

/* ORT QuantizeLinear of a float32 value (MlasQuantizeLinear, int8) */
static int32_t quantize_f32_s8(float v, float scale, int32_t zp)
{
    float q = v / scale;
    q = msf_clamp_f32(q, (float)(-128 - zp), (float)(127 - zp));
    return msf_round_half_even(q) + zp;
}

static int32_t prelu_one(const msf_prelu_s8_params *p, int32_t x, int32_t k)
{
    if (p->mode == MSF_ELT_ADD_CONST) {
        /* TFLM reference_integer_ops::AddFunc, the constant's side precomputed (addend) */
        const int32_t x1 = (int32_t)((uint32_t)(x - p->in_zp) << p->left_shift);
        const int32_t a = msf_rdbpot(msf_srdhm(x1, p->mul1), -p->shift1);
        const int32_t r = msf_rdbpot(msf_srdhm(a + p->addend[k], p->mul2), -p->shift2);
        return msf_clamp_i32(r + p->out_zp, p->act_min, p->act_max);
    }
    if (p->mode == MSF_RQ_FIXED) {
        /* TFLM reference_ops::BroadcastPrelu4DSlow */
        int32_t v = x - p->in_zp;
        int32_t r;
        if (v >= 0) {
            r = msf_mbqm(v, p->mul1, p->shift1);
        } else {
            r = msf_mbqm(v * ((int32_t)p->alpha_q[k] - p->alpha_zp), p->mul2, p->shift2);
        }
        return msf_clamp_i32(r + p->out_zp, -128, 127);
    } else {
        /* ORT DequantizeLinear -> PRelu -> QuantizeLinear in float32 */
        float v = p->in_scale * (float)(x - p->in_zp);
        if (!(v > 0.0f)) {
            v = v * p->alpha_f[k];
        }
        return quantize_f32_s8(v, p->out_scale, p->out_zp);
    }
}

void msf_prelu_s8(const msf_prelu_s8_params *p, const msf_view *in, msf_view *out, int32_t oy0,
                  int32_t oy1, int32_t ox0, int32_t ox1)
{
    const int8_t *x = (const int8_t *)in->data;
    int8_t *y = (int8_t *)out->data;
    const int32_t C = out->C;
    int32_t oy, ox, c;
    for (oy = oy0; oy < oy1; oy++) {
        for (ox = ox0; ox < ox1; ox++) {
            const int8_t *xp = x + msf_vofs(in, oy, ox);
            int8_t *yp = y + msf_vofs(out, oy, ox);
            for (c = 0; c < C; c++) {
                yp[c] = (int8_t)prelu_one(p, xp[c], p->per_channel ? c : 0);
            }
        }
    }
}

static int32_t mul_one(const msf_mul_s8_params *p, int32_t a, int32_t b)
{
    int32_t da = a - p->in1_zp, db = b - p->in2_zp;
    if (p->mode == MSF_RQ_FIXED) {
        /* TFLM reference_integer_ops::MulElementwise */
        return msf_mbqm(da * db, p->out_mul, p->out_shift) + p->out_zp;
    } else if (p->mode == MSF_RQ_FLOAT) {
        /* MLAS QLinearMul (SSE2): cvtps2dq(float(d) * ratio + float(zp)), saturating packs */
        float t = (float)(da * db) * p->ratio;
        float v = t + (float)p->out_zp;
        if (!(v < 2147483648.0f && v >= -2147483648.0f)) {
            return -128;
        }
        return msf_round_half_even(msf_clamp_f32(v, -128.0f, 127.0f));
    } else {
        /* DQ -> Mul -> QuantizeLinear in float32 */
        float fa = p->in1_scale * (float)da;
        float fb = p->in2_scale * (float)db;
        return quantize_f32_s8(fa * fb, p->out_scale, p->out_zp);
    }
}

void msf_mul_s8(const msf_mul_s8_params *p, const msf_view *in1, const msf_view *in2,
                msf_view *out, int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1)
{
    const int8_t *a = (const int8_t *)in1->data;
    const int8_t *b = (const int8_t *)in2->data;
    int8_t *y = (int8_t *)out->data;
    const int32_t C = out->C;
    const int32_t per_pixel = p->bcast == MSF_BCAST_NONE || p->bcast == MSF_BCAST_PIXEL;
    const int8_t *bcast_p = per_pixel ? NULL : b + msf_vofs(in2, 0, 0);
    /* one value for every channel: a scalar or a pixel's single channel */
    const int32_t one = p->bcast == MSF_BCAST_SCALAR || p->bcast == MSF_BCAST_PIXEL;
    const msf_binary_s8_params *bp_add = p->mode == MSF_ELT_BINARY_ADD ?
        (const msf_binary_s8_params *)(const void *)p : NULL;
    int32_t oy, ox, c;
    for (oy = oy0; oy < oy1; oy++) {
        for (ox = ox0; ox < ox1; ox++) {
            const int8_t *ap = a + msf_vofs(in1, oy, ox);
            const int8_t *bp = bcast_p ? bcast_p : b + msf_vofs(in2, oy, ox);
            int8_t *yp = y + msf_vofs(out, oy, ox);
            for (c = 0; c < C; c++) {
                int32_t bv = one ? bp[0] : bp[c];
                int32_t r;
                if (bp_add != NULL) {
                    r = bp_add->reverse ? msf_add_one_s8(&bp_add->add, bv, ap[c])
                                        : msf_add_one_s8(&bp_add->add, ap[c], bv);
                } else {
                    r = msf_clamp_i32(mul_one(p, ap[c], bv), -128, 127);
                }
                yp[c] = (int8_t)msf_clamp_i32(r, p->act_min, p->act_max);
            }
        }
    }
}
