/* msf_s8_gap_dense.c - int8 global average pool (whole view, or streamed as per-channel
 * sums) and dense (fully connected) kernels. */
#include "msf_internal.h"

/* One channel of a global average pool from its int32 sum of raw values (every mode). */
static int8_t gap_finish_one_s8(int32_t acc, int32_t HW, int32_t in_zp, int32_t out_zp,
                                int32_t act_min, int32_t act_max, const msf_requant *rq,
                                float fallback_mul)
{
    int32_t r;
    if (rq == NULL) {
        /* ORT: sum - zp * N, requantised with x_scale / (y_scale * N) */
        float v = (float)(acc - in_zp * HW) * fallback_mul;
        v = msf_clamp_f32(v, (float)(-128 - out_zp), (float)(127 - out_zp));
        r = msf_round_half_even(v) + out_zp;
    } else if (rq->mode == MSF_RQ_FIXED) {
        /* TFLM MEAN: sum(x - zp), MBQM, rounding division by N (half away from zero) */
        acc -= in_zp * HW;
        acc = msf_mbqm(acc, rq->qmul[0], rq->qshift[0]);
        acc = acc > 0 ? (acc + HW / 2) / HW : (acc - HW / 2) / HW;
        r = msf_clamp_i32(acc + out_zp, -128, 127);
    } else if (rq->mode == MSF_RQ_MEAN) {
        /* TFLM MEAN (reference_ops::QuantizedMeanOrSum): 1/N folded into qmul/qshift */
        acc -= in_zp * HW;
        r = msf_clamp_i32(msf_mbqm(acc, rq->qmul[0], rq->qshift[0]) + out_zp, -128, 127);
    } else {
        r = msf_requant_s8(rq, acc - in_zp * HW, 0, out_zp);
    }
    return (int8_t)msf_clamp_i32(r, act_min, act_max);
}

void msf_gap_core_s8(const int8_t *x, int32_t HW, int32_t C, int8_t *yp, int32_t in_zp,
                     int32_t out_zp, int32_t act_min, int32_t act_max, const msf_requant *rq,
                     float fallback_mul)
{
    int32_t c, i;
    for (c = 0; c < C; c++) {
        int32_t acc = 0;
        for (i = 0; i < HW; i++) {
            acc += x[i * C + c];
        }
        yp[c] = gap_finish_one_s8(acc, HW, in_zp, out_zp, act_min, act_max, rq, fallback_mul);
    }
}

void msf_gap_s8_accumulate(const msf_view *in, int32_t oy0, int32_t oy1, int32_t ox0,
                           int32_t ox1, int32_t *sums)
{
    const int8_t *x = (const int8_t *)in->data;
    const int32_t C = in->C;
    int32_t oy, ox, c;
    MSF_ADD_MACS((int64_t)(oy1 - oy0) * (ox1 - ox0) * C);
    for (oy = oy0; oy < oy1; oy++) {
        for (ox = ox0; ox < ox1; ox++) {
            const int8_t *xp = x + msf_vofs(in, oy, ox);
            for (c = 0; c < C; c++) {
                sums[c] += xp[c];
            }
        }
    }
}

void msf_gap_s8_finish(const msf_gap_s8_params *p, const int32_t *sums, int32_t hw,
                       msf_view *out)
{
    int8_t *y = (int8_t *)out->data;
    int32_t c;
    for (c = 0; c < out->C; c++) {
        y[c] = gap_finish_one_s8(sums[c], hw, p->in_zp, p->out_zp, p->act_min, p->act_max,
                                 &p->rq, 0.0f);
    }
}

void msf_gap_s8(const msf_gap_s8_params *p, const msf_view *in, msf_view *out)
{
    MSF_ADD_MACS((int64_t)in->H * in->W * in->C);
    msf_gap_core_s8((const int8_t *)in->data, in->H * in->W, in->C, (int8_t *)out->data,
                    p->in_zp, p->out_zp, p->act_min, p->act_max, &p->rq, 0.0f);
}

void msf_dense_s8(const msf_dense_s8_params *p, const msf_view *in, msf_view *out)
{
    const int8_t *x = (const int8_t *)in->data;
    int8_t *y = (int8_t *)out->data;
    const int32_t K = in->H * in->W * in->C;
    const int32_t N = out->C;
    const int32_t in_off = -p->in_zp;
    const int32_t w_off = -p->w_zp;
    int32_t n, k;

    MSF_ADD_MACS((int64_t)K * N);
    for (n = 0; n < N; n++) {
        const int8_t *wp = p->weights + (int32_t)n * K;
        int32_t acc = p->bias ? p->bias[n] : 0;
        int32_t r;
        for (k = 0; k < K; k++) {
            acc += ((int32_t)x[k] + in_off) * ((int32_t)wp[k] + w_off);
        }
        r = msf_requant_s8(&p->rq, acc, n, p->out_zp);
        y[n] = (int8_t)msf_clamp_i32(r, p->act_min, p->act_max);
    }
}
