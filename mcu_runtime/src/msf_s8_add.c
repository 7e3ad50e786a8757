/* msf_s8_add.c - int8 elementwise add (residual connections) working through msf_view. */
#include "msf_internal.h"

static int32_t add_one_s8(const msf_add_s8_params *p, int32_t a, int32_t b)
{
    if (p->mode == MSF_RQ_FIXED) {
        /* TFLM reference_integer_ops::AddFunc */
        int32_t a1 = (int32_t)((uint32_t)(a - p->in1_zp) << p->left_shift);
        int32_t b1 = (int32_t)((uint32_t)(b - p->in2_zp) << p->left_shift);
        int32_t sa = msf_rdbpot(msf_srdhm(a1, p->in1_mul), -p->in1_shift);
        int32_t sb = msf_rdbpot(msf_srdhm(b1, p->in2_mul), -p->in2_shift);
        int32_t r = msf_rdbpot(msf_srdhm(sa + sb, p->out_mul), -p->out_shift) + p->out_zp;
        return msf_clamp_i32(r, -128, 127);
    } else {
        /* ORT AVX2 QLinearAdd: fma(a, mul1, fma(b, mul2, fbias)), cvtps2dq, saturating packs */
        float v = msf_fmaf((float)a, p->mul1, msf_fmaf((float)b, p->mul2, p->fbias));
        if (!(v < 2147483648.0f && v >= -2147483648.0f)) {
            return -128;
        }
        return msf_round_half_even(msf_clamp_f32(v, -128.0f, 127.0f));
    }
}

void msf_add_s8(const msf_add_s8_params *p, const msf_view *in1, const msf_view *in2,
                msf_view *out, int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1)
{
    const int8_t *a = (const int8_t *)in1->data;
    const int8_t *b = (const int8_t *)in2->data;
    int8_t *y = (int8_t *)out->data;
    const int32_t C = out->C;
    int32_t oy, ox, c;
    for (oy = oy0; oy < oy1; oy++) {
        for (ox = ox0; ox < ox1; ox++) {
            const int8_t *ap = a + msf_vofs(in1, oy, ox);
            const int8_t *bp = b + msf_vofs(in2, oy, ox);
            int8_t *yp = y + msf_vofs(out, oy, ox);
            for (c = 0; c < C; c++) {
                int32_t r = add_one_s8(p, ap[c], bp[c]);
                yp[c] = (int8_t)msf_clamp_i32(r, p->act_min, p->act_max);
            }
        }
    }
}
