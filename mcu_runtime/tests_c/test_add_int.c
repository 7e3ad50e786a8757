/* test_add_int.c - host test (ASan + UBSan) of the integer emulation of the float-mode int8 add
 * (msf_s8_add.c, add_run_float_int: the cores without a single-precision FPU), forced on the
 * host: this file includes msf_s8_add.c with MSF_FORCE_INT_FLOATRQ, its public functions
 * renamed (the library's own copy is linked too), so that its static helpers can be tested:
 *  - its single fused multiply-add (add_fma_round) against the C library's fmaf (correctly
 *    rounded) on 6 M random operands: exponent gaps from -70 to 70 bits, so that rounding ties
 *    and the sticky path are frequent;
 *  - its saturating conversion (add_fx_to_s8) against the reference's on halves and random
 *    floats;
 *  - msf_add_s8's fast loop against the reference (msf_add_one_s8: two msf_fmaf) on all 65,536
 *    (a, b) pairs, each as add and subtract and in both operand orders (MSF_RQ_FLOAT,
 *    MSF_RQ_FLOAT_REV), for
 *      onnxruntime's parameters (msf_add_s8_float_params) of random scales and zero points;
 *      hand-picked sets whose sums fall on rounding ties (halves, powers of two);
 *      multipliers far below the bias (exponent gaps of 31 .. 80 bits: the sticky path);
 *      the ends of the emulated range (2^-100, 2^100) and parameters outside it (the
 *      soft-float loop). */
#define MSF_FORCE_INT_FLOATRQ 1
#define msf_add_s8 tai_add_s8          /* this file's copy: the integer emulation */
#define msf_add_s8_ref tai_add_s8_ref
#define msf_add_one_s8 tai_add_one_s8
#include <math.h>

#include "msf_test.h"
#include "msf_s8_add.c"

#if !MSF_INT_FLOATRQ
#error "the integer emulation must be on in this test"
#endif

static uint32_t xs_state = 2463534242u;
static uint32_t xs32(void)
{
    xs_state ^= xs_state << 13;
    xs_state ^= xs_state >> 17;
    xs_state ^= xs_state << 5;
    return xs_state;
}

/* a float of significand bits from xs32 (a few with short significands: exact sums, ties) and
 * exponent e */
static float rnd_float(int e)
{
    uint32_t m = (xs32() & 0x7FFFFFu) | 0x800000u;
    if ((xs32() & 3u) == 0u) {
        m &= ~((1u << (xs32() % 23u)) - 1u);
    }
    return ldexpf((float)m * ((xs32() & 1u) ? -1.0f : 1.0f), e - 23);
}

/* add_fma_round(x * k, c) against fmaf(x, k, c); returns mismatches */
static long fma_vs_libm(long n)
{
    long bad = 0, i, sticky = 0;
    for (i = 0; i < n; i++) {
        const int32_t x = (int32_t)(xs32() % 257u) - 128;
        const int ek = (int)(xs32() % 60u) - 40;
        const int gap = (int)(xs32() % 141u) - 70;
        const float k = rnd_float(ek), c = (xs32() % 16u) == 0u ? 0.0f : rnd_float(ek + gap);
        add_fx fk, fc, r;
        float got, want;
        if (!add_split(k, &fk) || !add_split(c, &fc)) {
            continue;
        }
        r = add_fma_round(x * fk.m, fk.e, fc.m, fc.e);
        got = ldexpf((float)r.m, r.e);
        want = fmaf((float)x, k, c);
        sticky += gap > 30 + 7 || gap < -30 - 7;
        if (!(got == want)) {
            if (bad < 3) {
                printf("  fma %d * %a + %a: %a, fmaf %a\n", (int)x, (double)k, (double)c,
                       (double)got, (double)want);
            }
            bad++;
        }
    }
    CHECK(sticky > n / 4);
    return bad;
}

/* the reference's integer of v: out of int32 -> -128, else rne(clamp(v, -128, 127)) */
static int32_t ref_to_s8(float v)
{
    if (!(v < 2147483648.0f && v >= -2147483648.0f)) {
        return -128;
    }
    return msf_round_half_even(msf_clamp_f32(v, -128.0f, 127.0f));
}

static long conv_vs_ref(void)
{
    long bad = 0;
    int32_t i;
    add_fx f;
    for (i = -600; i <= 600; i++) {   /* every half from -300 to 300 */
        const float v = (float)i * 0.5f;
        if (add_split(v, &f)) {
            bad += add_fx_to_s8(f) != ref_to_s8(v);
        }
    }
    for (i = 0; i < 2000000; i++) {
        const float v = rnd_float((int)(xs32() % 70u) - 36);
        if (add_split(v, &f)) {
            bad += add_fx_to_s8(f) != ref_to_s8(v);
        }
    }
    return bad;
}

static int8_t ta[65536], tb[65536], ty[65536];

static float ldexp_f(float m, int e)
{
    while (e > 0) {
        m *= 2.0f;
        e--;
    }
    while (e < 0) {
        m *= 0.5f;
        e++;
    }
    return m;
}

/* every pair through the fast loop (one run of 65,536 elements, and a region of 256 x 256
 * pixels of one channel) against the reference element by element; returns mismatches */
static long all_pairs(msf_add_s8_params *p)
{
    msf_view va = mkview(ta, 1, 65536, 1), vb = mkview(tb, 1, 65536, 1);
    msf_view vy = mkview(ty, 1, 65536, 1);
    long bad = 0;
    int i;
    va.cap = vb.cap = vy.cap = 65536;
    msf_add_s8(p, &va, &vb, &vy, 0, 1, 0, 65536);
    for (i = 0; i < 65536; i++) {
        int32_t r = msf_add_one_s8(p, ta[i], tb[i]);
        r = r < p->act_min ? p->act_min : (r > p->act_max ? p->act_max : r);
        if (ty[i] != r) {
            if (bad < 3) {
                printf("  a %d b %d: fast %d ref %d (mul1 %a mul2 %a fbias %a sub %d mode %d)\n",
                       ta[i], tb[i], ty[i], r, (double)p->mul1, (double)p->mul2,
                       (double)p->fbias, (int)p->sub, (int)p->mode);
            }
            bad++;
        }
    }
    return bad;
}

static long each_order(msf_add_s8_params *p, long *runs)
{
    long bad = 0;
    int k;
    for (k = 0; k < 4; k++) {
        p->sub = k & 1;
        p->mode = (k & 2) ? MSF_RQ_FLOAT_REV : MSF_RQ_FLOAT;
        bad += all_pairs(p);
        (*runs)++;
    }
    p->mode = MSF_RQ_FLOAT;
    p->sub = 0;
    return bad;
}

int main(void)
{
    msf_add_s8_params p;
    long bad = 0, runs = 0;
    int i, k;
    {
        long fb = fma_vs_libm(6000000), cb = conv_vs_ref();
        printf("  fma vs fmaf: %ld mismatches; conversion: %ld\n", fb, cb);
        CHECK_EQ_INT(fb, 0);
        CHECK_EQ_INT(cb, 0);
    }
    for (i = 0; i < 65536; i++) {
        ta[i] = (int8_t)((i >> 8) - 128);
        tb[i] = (int8_t)((i & 255) - 128);
    }
    memset(&p, 0, sizeof p);
    p.act_min = -128;
    p.act_max = 127;
    /* hand check: scales a 0.5, b 0.25, out 1: y = rne(a / 2 + b / 4) */
    msf_add_s8_float_params(0.5f, 0, 0.25f, 0, 1.0f, 0, &p.mul1, &p.mul2, &p.fbias);
    p.mode = MSF_RQ_FLOAT;
    {
        int8_t a[3] = {21, 10, -29}, b[3] = {0, 2, -2}, y[3];
        msf_view va = mkview(a, 1, 3, 1), vb = mkview(b, 1, 3, 1), vy = mkview(y, 1, 3, 1);
        va.cap = vb.cap = vy.cap = 3;
        msf_add_s8(&p, &va, &vb, &vy, 0, 1, 0, 3);
        CHECK_EQ_INT(y[0], 10);   /* 10.5 -> 10 (half to even) */
        CHECK_EQ_INT(y[1], 6);    /* 5.5 -> 6 */
        CHECK_EQ_INT(y[2], -15);  /* -14.5 - 0.5 = -15 */
    }
    /* onnxruntime's parameters of random scales and zero points */
    for (k = 0; k < 60; k++) {
        float sa = ldexp_f((float)rnd(1 << 20, (1 << 21) - 1), rnd(-30, -14));
        float sb = ldexp_f((float)rnd(1 << 20, (1 << 21) - 1), rnd(-30, -14));
        float sy = ldexp_f((float)rnd(1 << 20, (1 << 21) - 1), rnd(-30, -14));
        msf_add_s8_float_params(sa, rnd(-128, 127), sb, rnd(-128, 127), sy, rnd(-128, 127),
                                &p.mul1, &p.mul2, &p.fbias);
        if (k % 5 == 0) {
            p.act_min = rnd(-128, 0);
            p.act_max = rnd(p.act_min, 127);
        } else {
            p.act_min = -128;
            p.act_max = 127;
        }
        bad += each_order(&p, &runs);
    }
    p.act_min = -128;
    p.act_max = 127;
    /* rounding ties: multipliers of powers of two and halves, biases on halves */
    {
        static const float m[] = {0.5f, 0.25f, 1.0f, 0.75f, 1.5f, 0.125f, 2.0f, 0.375f};
        static const float f[] = {0.0f, 0.5f, -0.5f, 1.5f, -2.5f, 0.25f, 64.5f, -63.75f};
        int u, v, w;
        for (u = 0; u < 8; u++) {
            for (v = 0; v < 8; v += 3) {
                for (w = 0; w < 8; w += 2) {
                    p.mul1 = m[u];
                    p.mul2 = m[v];
                    p.fbias = f[(u + v + w) % 8];
                    bad += each_order(&p, &runs);
                }
            }
        }
    }
    /* a multiplier far below the bias: the first sum's exponent gap d - 30 in 1 .. 30 and
     * beyond (the sticky path), around ties of the bias */
    for (k = 0; k < 40; k++) {
        p.mul1 = ldexp_f((float)rnd(1 << 20, (1 << 21) - 1), -20) * (rnd(0, 1) ? 1.0f : -1.0f);
        p.mul2 = ldexp_f((float)rnd(1, (1 << 21) - 1), -rnd(30, 80));
        p.fbias = (float)rnd(-300, 300) * 0.5f;
        bad += each_order(&p, &runs);
    }
    /* the ends of the emulated range, and beyond it (the soft-float loop) */
    {
        static const int ex[] = {-100, -99, 99, 100, 101, -101, -126, 127};
        for (k = 0; k < 8; k++) {
            p.mul1 = ldexp_f(1.25f, ex[k]);
            p.mul2 = 0.75f;
            p.fbias = 3.5f;
            bad += each_order(&p, &runs);
            p.mul1 = 0.75f;
            p.mul2 = ldexp_f(1.0f, ex[k]);
            p.fbias = ldexp_f(-1.5f, ex[k] > 0 ? ex[k] / 2 : ex[k]);
            bad += each_order(&p, &runs);
        }
        p.mul1 = 3e9f; /* far outside int32: the reference's overflow case */
        p.mul2 = 0.5f;
        p.fbias = -7.0f;
        bad += each_order(&p, &runs);
    }
    printf("  %ld runs x 65,536 pairs, %ld mismatches\n", runs, bad);
    CHECK_EQ_INT(bad, 0);
    TEST_DONE();
}
