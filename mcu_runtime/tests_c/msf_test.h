/* msf_test.h - tiny assert-style harness for the C unit tests (host only: uses stdio). */
#ifndef MSF_TEST_H
#define MSF_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msf_runtime.h"

static int msf_test_failures = 0;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                   \
            msf_test_failures++;                                                     \
        }                                                                            \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                           \
    do {                                                                             \
        long long va_ = (long long)(a), vb_ = (long long)(b);                        \
        if (va_ != vb_) {                                                            \
            printf("FAIL %s:%d: %s == %lld, expected %lld\n", __FILE__, __LINE__, #a,  \
                   va_, vb_);                                                        \
            msf_test_failures++;                                                     \
        }                                                                            \
    } while (0)

#define TEST_DONE()                                                                  \
    do {                                                                             \
        if (msf_test_failures) {                                                     \
            printf("%d check(s) failed\n", msf_test_failures);                       \
            return 1;                                                                \
        }                                                                            \
        printf("OK %s\n", __FILE__);                                                 \
        return 0;                                                                    \
    } while (0)

/* deterministic pseudo-random numbers */
static unsigned msf_rng_state = 12345u;
static inline int rnd(int lo, int hi) /* inclusive */
{
    msf_rng_state = msf_rng_state * 1103515245u + 12345u;
    return lo + (int)((msf_rng_state >> 8) % (unsigned)(hi - lo + 1));
}

static inline msf_view mkview(void *data, int H, int W, int C)
{
    msf_view v;
    v.data = data;
    v.H = H;
    v.W = W;
    v.C = C;
    v.y0 = 0;
    v.xcap = W;
    return v;
}

static inline msf_window mkwin(int kh, int kw, int sh, int sw, int pt, int pl, int pb, int pr)
{
    msf_window w;
    w.kh = kh;
    w.kw = kw;
    w.sh = sh;
    w.sw = sw;
    w.pad_top = pt;
    w.pad_left = pl;
    w.pad_bottom = pb;
    w.pad_right = pr;
    return w;
}

static inline int out_extent(int size, int k, int s, int p0, int p1)
{
    return (size + p0 + p1 - k) / s + 1;
}

#endif

/* ---- view / region equivalence harness for window kernels (int8) ---- */
typedef void (*msf_region_fn)(const void *params, const msf_view *in, msf_view *out, int32_t oy0,
                              int32_t oy1, int32_t ox0, int32_t ox1);

#define MSF_T_MAX 4096

/* Computes the whole output at once (ref), then again (a) in random sub-regions and (b) column
 * by column and row band by row band through ring-buffer views over copies of only the rows and
 * kw columns the band needs, written into a 1-column ring output.  All must agree byte-wise. */
static inline void check_views_s8(msf_region_fn fn, const void *params, const msf_window *w,
                           const int8_t *x, int H, int W, int Cin, int Cout)
{
    static int8_t ref[MSF_T_MAX], got[MSF_T_MAX], ring[MSF_T_MAX], oring[MSF_T_MAX];
    const int Ho = out_extent(H, w->kh, w->sh, w->pad_top, w->pad_bottom);
    const int Wo = out_extent(W, w->kw, w->sw, w->pad_left, w->pad_right);
    msf_view in = mkview((void *)x, H, W, Cin);
    msf_view out = mkview(ref, Ho, Wo, Cout);
    int oy, ox;
    fn(params, &in, &out, 0, Ho, 0, Wo);
    /* (a) random sub-regions */
    memset(got, 0x55, sizeof got);
    out.data = got;
    for (oy = 0; oy < Ho;) {
        int oy1 = oy + rnd(1, 3);
        if (oy1 > Ho) oy1 = Ho;
        for (ox = 0; ox < Wo;) {
            int ox1 = ox + rnd(1, 3);
            if (ox1 > Wo) ox1 = Wo;
            fn(params, &in, &out, oy, oy1, ox, ox1);
            ox = ox1;
        }
        oy = oy1;
    }
    CHECK(memcmp(ref, got, (size_t)(Ho * Wo * Cout)) == 0);
    /* (b) ring views */
    for (oy = 0; oy < Ho;) {
        int oy1 = oy + rnd(1, 3), lo, hi, xcap = w->kw < W ? w->kw : W;
        if (oy1 > Ho) oy1 = Ho;
        lo = oy * w->sh - w->pad_top;
        if (lo < 0) lo = 0;
        hi = (oy1 - 1) * w->sh - w->pad_top + w->kh;
        if (hi > H) hi = H;
        for (ox = 0; ox < Wo; ox++) {
            msf_view rin, rout;
            int y, xx, c;
            int x_first = ox * w->sw - w->pad_left, x_last = x_first + w->kw - 1;
            memset(ring, 0x77, sizeof ring); /* garbage in unused slots */
            for (xx = x_first < 0 ? 0 : x_first; xx <= x_last && xx < W; xx++)
                for (y = lo; y < hi; y++)
                    for (c = 0; c < Cin; c++)
                        ring[((y - lo) * xcap + xx % xcap) * Cin + c] = x[(y * W + xx) * Cin + c];
            rin = mkview(ring, H, W, Cin);
            rin.y0 = lo;
            rin.xcap = xcap;
            rout = mkview(oring, Ho, Wo, Cout);
            rout.y0 = oy;
            rout.xcap = 1;
            fn(params, &rin, &rout, oy, oy1, ox, ox + 1);
            for (y = oy; y < oy1; y++)
                for (c = 0; c < Cout; c++)
                    if (oring[(y - oy) * Cout + c] != ref[(y * Wo + ox) * Cout + c]) {
                        printf("FAIL ring view mismatch at (%d,%d,%d)\n", y, ox, c);
                        msf_test_failures++;
                        return;
                    }
        }
        oy = oy1;
    }
}
