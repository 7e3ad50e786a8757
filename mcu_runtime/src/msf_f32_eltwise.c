/* msf_f32_eltwise.c - float32 unary activations / affine and binary ops with broadcast, working
 * through msf_view; msf_expf and the sigmoid / tanh built on it (no libm). */
#include "msf_internal.h"

typedef union {
    float f;
    uint32_t u;
} msf_f32_bits;

/* 2^n for -126 <= n <= 127 (a normal float, exact) */
static float pow2i(int32_t n)
{
    msf_f32_bits b;
    b.u = (uint32_t)(n + 127) << 23;
    return b.f;
}

static float f32_from_bits(uint32_t u)
{
    msf_f32_bits b;
    b.u = u;
    return b.f;
}

/* Cody-Waite split of ln 2: LN2_HI has 15 significant bits (0x3f317200), so k * LN2_HI is exact
 * for |k| <= 255; LN2_LO = float(ln 2 - LN2_HI). */
#define MSF_LN2_HI 0.693145751953125f
#define MSF_LN2_LO 1.4286068e-06f
#define MSF_LOG2E 1.442695f
/* minimax polynomial P(r) ~ (e^r - 1 - r) / r^2 on |r| <= 0.354 (relative error of 1 + r + r^2 P
 * about 3.5e-9 before float rounding) */
#define MSF_EXP_P0 0.49999994f
#define MSF_EXP_P1 0.16666509f
#define MSF_EXP_P2 0.041668527f
#define MSF_EXP_P3 0.008370135f
#define MSF_EXP_P4 0.0013811663f

float msf_expf(float x)
{
    int32_t k;
    float rh, rl, r, rc, p, y;
    if (x != x) {
        return x; /* NaN */
    }
    if (x > 89.0f) {
        return f32_from_bits(0x7f800000u); /* +inf */
    }
    if (x < -104.0f) {
        return 0.0f; /* below half the smallest subnormal */
    }
    k = (int32_t)(x * MSF_LOG2E + (x < 0.0f ? -0.5f : 0.5f));
    rh = x - (float)k * MSF_LN2_HI; /* exact */
    rl = -((float)k * MSF_LN2_LO);  /* |rl| <= 2.2e-4 */
    r = rh + rl;
    rc = rl - (r - rh);             /* Fast2Sum: r + rc == rh + rl exactly when |rh| >= |rl|
                                       (else |r| < 4.4e-4 and rc hardly matters) */
    p = MSF_EXP_P4;
    p = p * r + MSF_EXP_P3;
    p = p * r + MSF_EXP_P2;
    p = p * r + MSF_EXP_P1;
    p = p * r + MSF_EXP_P0;
    y = 1.0f + (r + (rc + (r * r) * p));
    /* y in [0.70, 1.42]: scale by 2^k with only the last multiply rounding */
    if (k > 127) {
        return (y * pow2i(127)) * pow2i(k - 127); /* may overflow to +inf */
    }
    if (k < -126) {
        return (y * pow2i(k + 126)) * pow2i(-126); /* subnormal result: rounds once */
    }
    return y * pow2i(k);
}

float msf_sigmoidf(float x)
{
    if (x >= 0.0f) {
        return 1.0f / (1.0f + msf_expf(-x));
    } else {
        float e = msf_expf(x); /* also NaN: x >= 0 is false, e is NaN */
        return e / (1.0f + e);
    }
}

/* minimax polynomial Q(s) ~ (tanh(x) - x) / x^3, s = x^2, on |x| <= 0.8 */
#define MSF_TANH_Q0 -0.33333293f
#define MSF_TANH_Q1 0.13332123f
#define MSF_TANH_Q2 -0.053844523f
#define MSF_TANH_Q3 0.021276157f
#define MSF_TANH_Q4 -0.007368081f
#define MSF_TANH_Q5 0.0015610873f

float msf_tanhf(float x)
{
    float ax = x < 0.0f ? -x : x;
    if (x != x) {
        return x;
    }
    if (ax < 0.8f) {
        float s = x * x, q;
        q = MSF_TANH_Q5;
        q = q * s + MSF_TANH_Q4;
        q = q * s + MSF_TANH_Q3;
        q = q * s + MSF_TANH_Q2;
        q = q * s + MSF_TANH_Q1;
        q = q * s + MSF_TANH_Q0;
        return x + (x * s) * q;
    } else {
        float t;
        if (ax > 20.0f) {
            ax = 20.0f; /* tanh is 1.0f from 9.01 on; keeps e^(2|x|) finite */
        }
        t = 1.0f - 2.0f / (msf_expf(2.0f * ax) + 1.0f);
        return x < 0.0f ? -t : t;
    }
}

/* one pixel (C channels) of the unary op; the switch is outside the channel loops */
static void unary_pixel(const msf_unary_f32_params *p, const float *a, float *y, int32_t C)
{
    const float lo = p->lo, hi = p->hi, alpha = p->alpha, beta = p->beta;
    const float *slope = p->slope, *bias = p->bias;
    int32_t c;
    switch (p->fn) {
    case MSF_FN_RELU:
        for (c = 0; c < C; c++) {
            float v = a[c];
            y[c] = msf_clamp_f32(v < 0.0f ? 0.0f : v, lo, hi);
        }
        break;
    case MSF_FN_LEAKY:
        for (c = 0; c < C; c++) {
            float v = a[c];
            y[c] = msf_clamp_f32(v < 0.0f ? alpha * v : v, lo, hi);
        }
        break;
    case MSF_FN_PRELU:
        for (c = 0; c < C; c++) {
            float v = a[c];
            y[c] = msf_clamp_f32(v < 0.0f ? slope[c] * v : v, lo, hi);
        }
        break;
    case MSF_FN_HARDSIGMOID:
        for (c = 0; c < C; c++) {
            y[c] = msf_clamp_f32(msf_clamp_f32(alpha * a[c] + beta, 0.0f, 1.0f), lo, hi);
        }
        break;
    case MSF_FN_HARDSWISH:
        for (c = 0; c < C; c++) {
            float v = a[c];
            float g = msf_clamp_f32(v * (1.0f / 6.0f) + 0.5f, 0.0f, 1.0f);
            y[c] = msf_clamp_f32(v * g, lo, hi);
        }
        break;
    case MSF_FN_SIGMOID:
        for (c = 0; c < C; c++) {
            y[c] = msf_clamp_f32(msf_sigmoidf(a[c]), lo, hi);
        }
        break;
    case MSF_FN_TANH:
        for (c = 0; c < C; c++) {
            y[c] = msf_clamp_f32(msf_tanhf(a[c]), lo, hi);
        }
        break;
    case MSF_FN_SWISH:
        for (c = 0; c < C; c++) {
            float v = a[c];
            y[c] = msf_clamp_f32(v * msf_sigmoidf(v), lo, hi);
        }
        break;
    case MSF_FN_AFFINE:
        if (bias != NULL) {
            for (c = 0; c < C; c++) {
                y[c] = msf_clamp_f32(slope[c] * a[c] + bias[c], lo, hi);
            }
        } else {
            for (c = 0; c < C; c++) {
                y[c] = msf_clamp_f32(slope[c] * a[c], lo, hi);
            }
        }
        break;
    default: /* MSF_FN_CLIP */
        for (c = 0; c < C; c++) {
            y[c] = msf_clamp_f32(a[c], lo, hi);
        }
        break;
    }
}

void msf_unary_f32(const msf_unary_f32_params *p, const msf_view *in, msf_view *out,
                   int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1)
{
    const float *a = (const float *)in->data;
    float *y = (float *)out->data;
    int32_t oy, ox;
    for (oy = oy0; oy < oy1; oy++) {
        for (ox = ox0; ox < ox1; ox++) {
            unary_pixel(p, a + msf_vofs(in, oy, ox), y + msf_vofs(out, oy, ox), out->C);
        }
    }
}

/* one pixel of the binary op: b[c * bstep] is the second operand of channel c */
static void binary_pixel(int32_t op, const float *a, const float *b, int32_t bstep, float *y,
                         int32_t C, float lo, float hi)
{
    int32_t c;
    switch (op) {
    case MSF_BIN_SUB:
        for (c = 0; c < C; c++) {
            y[c] = msf_clamp_f32(a[c] - b[c * bstep], lo, hi);
        }
        break;
    case MSF_BIN_MUL:
        for (c = 0; c < C; c++) {
            y[c] = msf_clamp_f32(a[c] * b[c * bstep], lo, hi);
        }
        break;
    case MSF_BIN_DIV:
        for (c = 0; c < C; c++) {
            y[c] = msf_clamp_f32(a[c] / b[c * bstep], lo, hi);
        }
        break;
    case MSF_BIN_RSUB:
        for (c = 0; c < C; c++) {
            y[c] = msf_clamp_f32(b[c * bstep] - a[c], lo, hi);
        }
        break;
    case MSF_BIN_RDIV:
        for (c = 0; c < C; c++) {
            y[c] = msf_clamp_f32(b[c * bstep] / a[c], lo, hi);
        }
        break;
    default: /* MSF_BIN_ADD */
        for (c = 0; c < C; c++) {
            y[c] = msf_clamp_f32(a[c] + b[c * bstep], lo, hi);
        }
        break;
    }
}

void msf_binary_f32(const msf_binary_f32_params *p, const msf_view *in1, const msf_view *in2,
                    msf_view *out, int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1)
{
    const float *a = (const float *)in1->data;
    const float *b = (const float *)in2->data;
    float *y = (float *)out->data;
    const int32_t bcast = p->bcast;
    const int32_t bstep = (bcast == MSF_BCAST_SCALAR || bcast == MSF_BCAST_PIXEL) ? 0 : 1;
    /* broadcast operand: its single pixel (0, 0); MSF_BCAST_PIXEL: pixel (y, x), channel 0 */
    const int32_t per_pixel = bcast == MSF_BCAST_NONE || bcast == MSF_BCAST_PIXEL;
    const float *bfix = per_pixel ? b : b + msf_vofs(in2, 0, 0);
    int32_t oy, ox;
    for (oy = oy0; oy < oy1; oy++) {
        for (ox = ox0; ox < ox1; ox++) {
            const float *bp = per_pixel ? b + msf_vofs(in2, oy, ox) : bfix;
            binary_pixel(p->op, a + msf_vofs(in1, oy, ox), bp, bstep, y + msf_vofs(out, oy, ox),
                         out->C, p->act_min, p->act_max);
        }
    }
}
