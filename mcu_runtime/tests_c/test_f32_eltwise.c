/* Unit test: msf_expf / msf_sigmoidf / msf_tanhf special values and accuracy at known points,
 * msf_unary_f32 (every fn, clamp, in place, ring views), msf_binary_f32 (ops, broadcasts). */
#include "msf_test.h"

#define FMAX 3.4028234663852886e38f

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static int is_nan(float f)
{
    return f != f;
}

/* |a - b| in units of the float spacing (same sign, finite) */
static long ulps(float a, float b)
{
    long d = (long)to_bits(a) - (long)to_bits(b);
    return d < 0 ? -d : d;
}

static msf_unary_f32_params unary(int fn)
{
    msf_unary_f32_params p;
    memset(&p, 0, sizeof p);
    p.fn = fn;
    p.lo = -FMAX;
    p.hi = FMAX;
    return p;
}

static void test_expf(void)
{
    const float inf = from_bits(0x7f800000u);
    float prev = 0.0f, x;
    int i;
    CHECK(msf_expf(0.0f) == 1.0f);
    CHECK(msf_expf(-0.0f) == 1.0f);
    /* correctly rounded values (float(exp(x)) computed in float64 by hand) */
    CHECK(ulps(msf_expf(1.0f), 2.7182817f) <= 1);
    CHECK(ulps(msf_expf(-1.0f), 0.36787945f) <= 1);
    CHECK(ulps(msf_expf(10.0f), 22026.465f) <= 1);
    CHECK(ulps(msf_expf(-10.0f), 4.539993e-05f) <= 1);
    CHECK(ulps(msf_expf(0.693147182f), 2.0f) <= 1);
    CHECK(ulps(msf_expf(88.0f), 1.6516363e+38f) <= 1);
    CHECK(ulps(msf_expf(-87.0f), 1.6458115e-38f) <= 1);
    /* 88.72283f is the largest float whose exp is finite (exp = 3.40279e38) */
    CHECK(msf_expf(88.72283f) < inf && msf_expf(88.72283f) > 3.4e38f);
    CHECK(msf_expf(88.72284f) == inf);
    CHECK(msf_expf(89.5f) == inf);
    CHECK(msf_expf(inf) == inf);
    CHECK(msf_expf(1e30f) == inf);
    CHECK(msf_expf(-inf) == 0.0f);
    CHECK(msf_expf(-1e30f) == 0.0f);
    CHECK(msf_expf(-110.0f) == 0.0f);
    /* subnormal results: exp(-100) = 3.72008e-44 = 26.55 * 2^-149 -> 27 * 2^-149 */
    CHECK(to_bits(msf_expf(-100.0f)) == 27u);
    CHECK(to_bits(msf_expf(-103.0f)) == 1u); /* 1.32 * 2^-149 */
    CHECK(msf_expf(-104.0f) == 0.0f);        /* 0.49 * 2^-149 */
    CHECK(is_nan(msf_expf(from_bits(0x7fc00000u))));
    CHECK(is_nan(msf_expf(from_bits(0xffc00001u))));
    /* monotone over a sweep of the whole finite range */
    for (i = 0, x = -105.0f; x < 90.0f; x += 0.0137f, i++) {
        float y = msf_expf(x);
        CHECK(y >= prev);
        prev = y;
    }
    CHECK(i > 10000);
    /* exp(x) * exp(-x) == 1 within a few ulp, exp(a + b) vs exp(a) * exp(b) */
    for (i = 0; i < 2000; i++) {
        float a = (float)rnd(-800000, 800000) / 10000.0f;
        float p = msf_expf(a) * msf_expf(-a);
        CHECK(p > 0.9999995f && p < 1.0000005f);
    }
}

static void test_sigmoid_tanh(void)
{
    const float inf = from_bits(0x7f800000u);
    float x;
    CHECK(msf_sigmoidf(0.0f) == 0.5f);
    CHECK(msf_sigmoidf(100.0f) == 1.0f);
    CHECK(msf_sigmoidf(inf) == 1.0f);
    CHECK(msf_sigmoidf(-inf) == 0.0f);
    CHECK(msf_sigmoidf(-1e30f) == 0.0f);
    CHECK(ulps(msf_sigmoidf(-50.0f), 1.9287499e-22f) <= 2); /* no overflow, tiny and accurate */
    CHECK(ulps(msf_sigmoidf(1.0f), 0.7310586f) <= 2);
    CHECK(ulps(msf_sigmoidf(-1.0f), 0.26894143f) <= 2);
    CHECK(is_nan(msf_sigmoidf(from_bits(0x7fc00000u))));
    CHECK(msf_tanhf(0.0f) == 0.0f);
    CHECK(msf_tanhf(1e-30f) == 1e-30f);              /* accurate near 0 */
    CHECK(msf_tanhf(from_bits(1u)) == from_bits(1u)); /* smallest subnormal */
    CHECK(ulps(msf_tanhf(1e-3f), 0.0009999997f) <= 1);
    CHECK(ulps(msf_tanhf(-0.5f), -0.46211717f) <= 1);
    CHECK(ulps(msf_tanhf(0.8f), 0.66403675f) <= 2);
    CHECK(ulps(msf_tanhf(2.0f), 0.9640276f) <= 2);
    CHECK(msf_tanhf(10.0f) == 1.0f && msf_tanhf(-1e30f) == -1.0f && msf_tanhf(-inf) == -1.0f);
    CHECK(is_nan(msf_tanhf(from_bits(0x7fc00000u))));
    /* odd and bounded over a sweep */
    for (x = 0.0f; x < 30.0f; x += 0.00731f) {
        float t = msf_tanhf(x);
        CHECK(msf_tanhf(-x) == -t);
        CHECK(t >= 0.0f && t <= 1.0f);
        CHECK(msf_sigmoidf(x) >= 0.5f && msf_sigmoidf(-x) <= 0.5f);
    }
}

/* scalar reference of each fn (written independently of the kernel's switch) */
static float ref_fn(const msf_unary_f32_params *p, float v, int c)
{
    float r;
    if (p->fn == MSF_FN_RELU) r = v > 0.0f ? v : 0.0f;
    else if (p->fn == MSF_FN_LEAKY) r = v >= 0.0f ? v : v * p->alpha;
    else if (p->fn == MSF_FN_PRELU) r = v >= 0.0f ? v : v * p->slope[c];
    else if (p->fn == MSF_FN_HARDSIGMOID) {
        r = p->alpha * v + p->beta;
        r = r > 1.0f ? 1.0f : (r < 0.0f ? 0.0f : r);
    } else if (p->fn == MSF_FN_HARDSWISH) {
        r = v * (1.0f / 6.0f) + 0.5f;
        r = v * (r > 1.0f ? 1.0f : (r < 0.0f ? 0.0f : r));
    } else if (p->fn == MSF_FN_SIGMOID) r = msf_sigmoidf(v);
    else if (p->fn == MSF_FN_TANH) r = msf_tanhf(v);
    else if (p->fn == MSF_FN_SWISH) r = v * msf_sigmoidf(v);
    else if (p->fn == MSF_FN_AFFINE) r = v * p->slope[c] + (p->bias ? p->bias[c] : 0.0f);
    else r = v;
    if (r < p->lo) r = p->lo;
    if (r > p->hi) r = p->hi;
    return r;
}

#define HH 5
#define WW 6
#define CC 3

static void test_unary(void)
{
    static float x[HH * WW * CC], y[HH * WW * CC], z[HH * WW * CC], ring[4 * CC * 2];
    static const float slope[CC] = {0.25f, -1.5f, 3.0f}, bias[CC] = {1.0f, -2.0f, 0.5f};
    int fn, i, oy, ox, c;
    msf_view vx = mkview(x, HH, WW, CC), vy = mkview(y, HH, WW, CC);
    vx.cap = vy.cap = HH * WW * CC;
    for (i = 0; i < HH * WW * CC; i++) x[i] = (float)rnd(-8000, 8000) / 1000.0f;
    x[0] = 0.0f;
    x[1] = -3.0f;
    x[2] = 3.0f;
    for (fn = MSF_FN_RELU; fn <= MSF_FN_AFFINE; fn++) {
        int clamp;
        for (clamp = 0; clamp < 2; clamp++) {
            msf_unary_f32_params p = unary(fn);
            p.alpha = 0.2f;
            p.beta = 0.5f;
            p.slope = slope;
            p.bias = fn == MSF_FN_AFFINE && clamp ? NULL : bias;
            if (clamp || fn == MSF_FN_CLIP) {
                p.lo = -1.0f;
                p.hi = 6.0f;
            }
            memset(y, 0, sizeof y);
            /* region by region */
            msf_unary_f32(&p, &vx, &vy, 0, 2, 0, WW);
            msf_unary_f32(&p, &vx, &vy, 2, HH, 0, 4);
            msf_unary_f32(&p, &vx, &vy, 2, HH, 4, WW);
            for (i = 0; i < HH * WW * CC; i++) {
                float r = ref_fn(&p, x[i], i % CC);
                if (y[i] != r) {
                    printf("FAIL fn %d clamp %d at %d: %g vs %g\n", fn, clamp, i, (double)y[i],
                           (double)r);
                    msf_test_failures++;
                    break;
                }
            }
            /* in place */
            memcpy(z, x, sizeof z);
            {
                msf_view vz = mkview(z, HH, WW, CC);
                vz.cap = HH * WW * CC;
                msf_unary_f32(&p, &vz, &vz, 0, HH, 0, WW);
                CHECK(memcmp(z, y, sizeof z) == 0);
            }
            /* ring views: input rows [oy, oy+2) x 4-column ring -> output ring, 1 row x 2 cols */
            for (oy = 1; oy < HH - 1; oy++) {
                for (ox = 0; ox < WW; ox++) {
                    msf_view rin = mkview(ring, HH, WW, CC), rout = mkview(z, HH, WW, CC);
                    int yy;
                    for (yy = oy; yy < oy + 2; yy++)
                        for (c = 0; c < CC; c++)
                            ring[((yy - oy) * 4 + ox % 4) * CC + c] = x[(yy * WW + ox) * CC + c];
                    rin.y0 = oy;
                    rin.xcap = 4;
                    rin.cap = 8 * CC;
                    rout.y0 = oy + 1;
                    rout.xcap = 2;
                    rout.cap = 2 * CC;
                    msf_unary_f32(&p, &rin, &rout, oy + 1, oy + 2, ox, ox + 1);
                    for (c = 0; c < CC; c++)
                        CHECK(z[(ox % 2) * CC + c] == y[((oy + 1) * WW + ox) * CC + c]);
                }
            }
        }
    }
    /* hand values */
    {
        float a[4] = {-6.0f, -1.0f, 0.5f, 4.0f}, b[4];
        msf_view va = mkview(a, 1, 4, 1), vb = mkview(b, 1, 4, 1);
        msf_unary_f32_params p = unary(MSF_FN_HARDSWISH);
        msf_unary_f32(&p, &va, &vb, 0, 1, 0, 4);
        CHECK(b[0] == 0.0f && b[3] == 4.0f);
        CHECK(ulps(b[1], -1.0f / 3.0f) <= 1 && ulps(b[2], 0.5f * (0.5f / 6.0f + 0.5f)) <= 1);
        p = unary(MSF_FN_LEAKY);
        p.alpha = 0.01f;
        msf_unary_f32(&p, &va, &vb, 0, 1, 0, 4);
        CHECK(b[0] == -0.06f && b[1] == -0.01f && b[2] == 0.5f && b[3] == 4.0f);
        p = unary(MSF_FN_RELU);
        p.hi = 6.0f;
        a[3] = 7.0f;
        msf_unary_f32(&p, &va, &vb, 0, 1, 0, 4);
        CHECK(b[0] == 0.0f && b[1] == 0.0f && b[2] == 0.5f && b[3] == 6.0f);
        a[2] = from_bits(0x7fc00000u); /* NaN passes the clamp */
        msf_unary_f32(&p, &va, &vb, 0, 1, 0, 4);
        CHECK(is_nan(b[2]));
    }
}

static void test_binary(void)
{
    float a[2 * 3 * 4], b[2 * 3 * 4], y[2 * 3 * 4], ch[4] = {1.0f, -2.0f, 4.0f, 0.5f}, s = 2.0f;
    float px[6] = {0.5f, -1.0f, 3.0f, 8.0f, -0.25f, 2.0f};
    msf_view va = mkview(a, 2, 3, 4), vb = mkview(b, 2, 3, 4), vy = mkview(y, 2, 3, 4);
    msf_view vch = mkview(ch, 1, 1, 4), vs = mkview(&s, 1, 1, 1), vpx = mkview(px, 2, 3, 1);
    msf_binary_f32_params p;
    int op, bc, i;
    va.cap = vb.cap = vy.cap = 24;
    vch.cap = 4;
    vs.cap = 1;
    vpx.cap = 6;
    for (i = 0; i < 24; i++) {
        a[i] = (float)rnd(-1000, 1000) / 64.0f;
        b[i] = (float)rnd(1, 1000) / 32.0f;
    }
    for (op = MSF_BIN_ADD; op <= MSF_BIN_RDIV; op++) {
        for (bc = MSF_BCAST_NONE; bc <= MSF_BCAST_PIXEL; bc++) {
            const msf_view *v2 = bc == MSF_BCAST_NONE ? &vb
                                 : (bc == MSF_BCAST_CHANNEL ? &vch
                                    : (bc == MSF_BCAST_SCALAR ? &vs : &vpx));
            p.op = op;
            p.bcast = bc;
            p.act_min = -FMAX;
            p.act_max = op == MSF_BIN_MUL ? 10.0f : FMAX;
            memset(y, 0, sizeof y);
            msf_binary_f32(&p, &va, v2, &vy, 0, 1, 0, 3);
            msf_binary_f32(&p, &va, v2, &vy, 1, 2, 0, 2);
            msf_binary_f32(&p, &va, v2, &vy, 1, 2, 2, 3);
            for (i = 0; i < 24; i++) {
                float u = a[i], r;
                float v = bc == MSF_BCAST_NONE ? b[i]
                          : (bc == MSF_BCAST_CHANNEL ? ch[i % 4]
                             : (bc == MSF_BCAST_SCALAR ? s : px[i / 4]));
                if (op == MSF_BIN_ADD) r = u + v;
                else if (op == MSF_BIN_SUB) r = u - v;
                else if (op == MSF_BIN_MUL) r = u * v;
                else if (op == MSF_BIN_DIV) r = u / v;
                else if (op == MSF_BIN_RSUB) r = v - u;
                else r = v / u;
                if (r > p.act_max) r = p.act_max;
                CHECK(y[i] == r);
            }
        }
    }
    /* in place on in1 */
    {
        float a2[24];
        msf_view v2 = mkview(a2, 2, 3, 4);
        v2.cap = 24;
        memcpy(a2, a, sizeof a2);
        p.op = MSF_BIN_MUL;
        p.bcast = MSF_BCAST_CHANNEL;
        p.act_min = 0.0f;
        p.act_max = FMAX;
        msf_binary_f32(&p, &v2, &vch, &v2, 0, 2, 0, 3);
        for (i = 0; i < 24; i++) {
            float r = a[i] * ch[i % 4];
            CHECK(a2[i] == (r < 0.0f ? 0.0f : r));
        }
    }
    /* a channel operand held as a ring-view pixel of a bigger buffer (y0 = 0, xcap = 1) */
    {
        float buf[8] = {9, 9, 9, 9, 1, 2, 3, 4};
        msf_view vr = mkview(buf + 4, 1, 1, 4);
        vr.cap = 4;
        p.op = MSF_BIN_ADD;
        p.bcast = MSF_BCAST_CHANNEL;
        p.act_min = -FMAX;
        msf_binary_f32(&p, &va, &vr, &vy, 0, 2, 0, 3);
        for (i = 0; i < 24; i++) CHECK(y[i] == a[i] + (float)(i % 4 + 1));
    }
    /* division by zero is IEEE */
    {
        float n[3] = {1.0f, -1.0f, 0.0f}, z = 0.0f, o[3];
        msf_view vn = mkview(n, 1, 1, 3), vz = mkview(&z, 1, 1, 1), vo = mkview(o, 1, 1, 3);
        p.op = MSF_BIN_DIV;
        p.bcast = MSF_BCAST_SCALAR;
        p.act_min = -FMAX;
        p.act_max = FMAX;
        msf_binary_f32(&p, &vn, &vz, &vo, 0, 1, 0, 1);
        CHECK(o[0] == FMAX && o[1] == -FMAX && is_nan(o[2])); /* +-inf clamped, NaN passes */
    }
}

int main(void)
{
    test_expf();
    test_sigmoid_tanh();
    test_unary();
    test_binary();
    TEST_DONE();
}
