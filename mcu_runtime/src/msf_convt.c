/* msf_convt.c - transposed convolution (gather form), int8 (TFLM reference arithmetic) and
 * float32, working through msf_view.  The arithmetic is documented in msf_convt.h. */
#include "msf_internal.h"

/* Input index reached by tap k of output index o along one axis, or -1 if none:
 * t = o + pad - k * d must be >= 0, divisible by s, and t / s < n. */
/* uint32 -> int32 two's complement reinterpretation without implementation-defined casts */
static int32_t u2s(uint32_t u)
{
    return (u & 0x80000000u) ? -(int32_t)(~u) - 1 : (int32_t)u;
}

static int32_t convt_src(int32_t o, int32_t k, int32_t s, int32_t d, int32_t pad, int32_t n)
{
    const int32_t t = o + pad - k * d;
    int32_t i;
    if (t < 0 || t % s != 0) {
        return -1;
    }
    i = t / s;
    return i < n ? i : -1;
}

void msf_convt_s8(const msf_convt_s8_params *p, const msf_view *in, msf_view *out, int32_t oy0,
                  int32_t oy1, int32_t ox0, int32_t ox1)
{
    const int8_t *x = (const int8_t *)in->data;
    int8_t *y = (int8_t *)out->data;
    const int32_t cin = in->C, cout = out->C;
    const int32_t dh = p->dh > 0 ? p->dh : 1, dw = p->dw > 0 ? p->dw : 1;
    const int32_t wstride = p->kh * p->kw * cin;
    const int32_t in_off = -p->in_zp;
    int32_t oy, ox, oc, ky, kx, ci;

    if (oy1 <= oy0 || ox1 <= ox0) {
        return;
    }
    MSF_ADD_MACS((int64_t)(oy1 - oy0) * (ox1 - ox0) * cout * wstride);
    for (oy = oy0; oy < oy1; oy++) {
        for (ox = ox0; ox < ox1; ox++) {
            int8_t *yp = y + msf_vofs(out, oy, ox);
            for (oc = 0; oc < cout; oc++) {
                const int8_t *wk = p->weights + (int32_t)oc * wstride;
                /* TFLM's int32 scratch accumulator; unsigned arithmetic wraps like it does */
                uint32_t acc = 0u;
                int32_t r;
                for (ky = 0; ky < p->kh; ky++) {
                    const int32_t iy = convt_src(oy, ky, p->sh, dh, p->pad_top, in->H);
                    if (iy < 0) {
                        continue;
                    }
                    for (kx = 0; kx < p->kw; kx++) {
                        const int32_t ix = convt_src(ox, kx, p->sw, dw, p->pad_left, in->W);
                        const int8_t *xp, *wp;
                        if (ix < 0) {
                            continue;
                        }
                        xp = x + msf_vofs(in, iy, ix);
                        wp = wk + (ky * p->kw + kx) * cin;
                        for (ci = 0; ci < cin; ci++) {
                            acc += (uint32_t)(((int32_t)xp[ci] + in_off) * (int32_t)wp[ci]);
                        }
                    }
                }
                if (p->bias) {
                    acc += (uint32_t)p->bias[oc];
                }
                r = msf_requant_s8(&p->rq, u2s(acc), oc, p->out_zp);
                yp[oc] = (int8_t)msf_clamp_i32(r, p->act_min, p->act_max);
            }
        }
    }
}

void msf_convt_f32(const msf_convt_f32_params *p, const msf_view *in, msf_view *out, int32_t oy0,
                   int32_t oy1, int32_t ox0, int32_t ox1)
{
    const float *x = (const float *)in->data;
    float *y = (float *)out->data;
    const int32_t cin = in->C, cout = out->C;
    const int32_t dh = p->dh > 0 ? p->dh : 1, dw = p->dw > 0 ? p->dw : 1;
    const int32_t wstride = p->kh * p->kw * cin;
    int32_t oy, ox, oc, ky, kx, ci;

    if (oy1 <= oy0 || ox1 <= ox0) {
        return;
    }
    MSF_ADD_MACS((int64_t)(oy1 - oy0) * (ox1 - ox0) * cout * wstride);
    for (oy = oy0; oy < oy1; oy++) {
        for (ox = ox0; ox < ox1; ox++) {
            float *yp = y + msf_vofs(out, oy, ox);
            for (oc = 0; oc < cout; oc++) {
                const float *wk = p->weights + (int32_t)oc * wstride;
                float acc = p->bias ? p->bias[oc] : 0.0f;
                for (ky = 0; ky < p->kh; ky++) {
                    const int32_t iy = convt_src(oy, ky, p->sh, dh, p->pad_top, in->H);
                    if (iy < 0) {
                        continue;
                    }
                    for (kx = 0; kx < p->kw; kx++) {
                        const int32_t ix = convt_src(ox, kx, p->sw, dw, p->pad_left, in->W);
                        const float *xp, *wp;
                        if (ix < 0) {
                            continue;
                        }
                        xp = x + msf_vofs(in, iy, ix);
                        wp = wk + (ky * p->kw + kx) * cin;
                        for (ci = 0; ci < cin; ci++) {
                            acc += xp[ci] * wp[ci];
                        }
                    }
                }
                yp[oc] = msf_clamp_f32(acc, p->act_min, p->act_max);
            }
        }
    }
}
