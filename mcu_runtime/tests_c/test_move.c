/* Unit test: msf_copy_to_channels / msf_copy_from_channels / msf_channel_shuffle /
 * msf_pad_channels, int8 and float32, full views, sub-regions and ring views. */
#include "msf_test.h"

#define H 4
#define W 5
#define NMAX (H * W * 16)

static msf_move_params mp(int esize, int c_off, int groups, uint32_t pad_bits)
{
    msf_move_params p;
    p.esize = esize;
    p.c_off = c_off;
    p.groups = groups;
    p.pad_bits = pad_bits;
    return p;
}

static msf_view fv(void *d, int h, int w, int c)
{
    msf_view v = mkview(d, h, w, c);
    v.cap = h * w * c;
    return v;
}

/* element i of an int8 or float buffer, as a double */
static double get(const void *buf, int esize, int i)
{
    return esize == 1 ? (double)((const int8_t *)buf)[i] : (double)((const float *)buf)[i];
}

static void fill(void *buf, int esize, int n, int seed)
{
    int i;
    for (i = 0; i < n; i++) {
        if (esize == 1) ((int8_t *)buf)[i] = (int8_t)(((i * 37 + seed * 11) % 256) - 128);
        else ((float *)buf)[i] = (float)(i * 3 + seed) * 0.25f - 7.0f;
    }
}

static void test_concat_split(int es)
{
    static float a[NMAX], b[NMAX], y[NMAX], s1[NMAX], s2[NMAX];
    const int Ca = 3, Cb = 5, Cy = 8;
    msf_view va = fv(a, H, W, Ca), vb = fv(b, H, W, Cb), vy = fv(y, H, W, Cy);
    msf_view v1 = fv(s1, H, W, Ca), v2 = fv(s2, H, W, Cb);
    msf_move_params p;
    int yy, xx, c;
    fill(a, es, H * W * Ca, 1);
    fill(b, es, H * W * Cb, 2);
    memset(y, 0, sizeof y);
    /* concat [a, b] on channels, b in two regions */
    p = mp(es, 0, 0, 0);
    msf_copy_to_channels(&p, &va, &vy, 0, H, 0, W);
    p.c_off = Ca;
    msf_copy_to_channels(&p, &vb, &vy, 0, 2, 0, W);
    msf_copy_to_channels(&p, &vb, &vy, 2, H, 0, W);
    for (yy = 0; yy < H; yy++)
        for (xx = 0; xx < W; xx++)
            for (c = 0; c < Cy; c++) {
                int i = (yy * W + xx) * Cy + c;
                double want = c < Ca ? get(a, es, (yy * W + xx) * Ca + c)
                                     : get(b, es, (yy * W + xx) * Cb + c - Ca);
                CHECK(get(y, es, i) == want);
            }
    /* split it back */
    p.c_off = 0;
    msf_copy_from_channels(&p, &vy, &v1, 0, H, 0, W);
    p.c_off = Ca;
    msf_copy_from_channels(&p, &vy, &v2, 0, H, 0, 3);
    msf_copy_from_channels(&p, &vy, &v2, 0, H, 3, W);
    CHECK(memcmp(s1, a, (size_t)(H * W * Ca * es)) == 0);
    CHECK(memcmp(s2, b, (size_t)(H * W * Cb * es)) == 0);
    /* a region leaves the rest untouched */
    memset(y, 0, sizeof y);
    p.c_off = 2;
    msf_copy_to_channels(&p, &va, &vy, 1, 2, 3, 4);
    for (yy = 0; yy < H; yy++)
        for (xx = 0; xx < W; xx++)
            for (c = 0; c < Cy; c++) {
                int in_region = yy == 1 && xx == 3 && c >= 2 && c < 2 + Ca;
                double want = in_region ? get(a, es, (yy * W + xx) * Ca + c - 2) : 0.0;
                CHECK(get(y, es, (yy * W + xx) * Cy + c) == want);
            }
}

static void test_shuffle(int es)
{
    static float x[NMAX], y[NMAX], z[NMAX];
    const int C = 12;
    int g, i, j, px;
    fill(x, es, H * W * C, 3);
    for (g = 1; g <= C; g++) {
        msf_view vx = fv(x, H, W, C), vy = fv(y, H, W, C), vz = fv(z, H, W, C);
        msf_move_params p = mp(es, 0, g, 0);
        if (C % g) continue;
        msf_channel_shuffle(&p, &vx, &vy, 0, H, 0, W);
        for (px = 0; px < H * W; px++)
            for (i = 0; i < g; i++)
                for (j = 0; j < C / g; j++)
                    CHECK(get(y, es, px * C + j * g + i) == get(x, es, px * C + i * (C / g) + j));
        /* shuffling with C / g groups undoes it */
        p.groups = C / g;
        msf_channel_shuffle(&p, &vy, &vz, 0, H, 0, W);
        CHECK(memcmp(z, x, (size_t)(H * W * C * es)) == 0);
    }
    /* hand case: C = 6, g = 2: out = in[0, 3, 1, 4, 2, 5] */
    {
        int8_t a[6] = {0, 1, 2, 3, 4, 5}, b[6];
        msf_view va = fv(a, 1, 1, 6), vb = fv(b, 1, 1, 6);
        msf_move_params p = mp(1, 0, 2, 0);
        msf_channel_shuffle(&p, &va, &vb, 0, 1, 0, 1);
        CHECK(b[0] == 0 && b[1] == 3 && b[2] == 1 && b[3] == 4 && b[4] == 2 && b[5] == 5);
    }
}

static void test_pad(void)
{
    int8_t a[2 * 2 * 2] = {1, 2, 3, 4, 5, 6, 7, 8}, y[2 * 2 * 5];
    float fa[2] = {1.5f, -2.5f}, fy[6];
    msf_view va = fv(a, 2, 2, 2), vy = fv(y, 2, 2, 5);
    msf_move_params p = mp(1, 1, 0, (uint32_t)(uint8_t)(int8_t)-7);
    int i;
    msf_pad_channels(&p, &va, &vy, 0, 2, 0, 2);
    for (i = 0; i < 4; i++) {
        CHECK(y[i * 5 + 0] == -7 && y[i * 5 + 3] == -7 && y[i * 5 + 4] == -7);
        CHECK(y[i * 5 + 1] == a[i * 2] && y[i * 5 + 2] == a[i * 2 + 1]);
    }
    p.pad_bits = 0xFFFFFF85u; /* only the low byte counts: 0x85 = -123 */
    p.c_off = 0;
    msf_pad_channels(&p, &va, &vy, 1, 2, 1, 2);
    CHECK(y[15] == 7 && y[16] == 8 && y[17] == -123 && y[19] == -123 && y[14] == -7);
    {
        float one = 3.25f;
        uint32_t bits;
        msf_view vfa = fv(fa, 1, 1, 2), vfy = fv(fy, 1, 1, 6);
        memcpy(&bits, &one, 4);
        p = mp(4, 3, 0, bits);
        msf_pad_channels(&p, &vfa, &vfy, 0, 1, 0, 1);
        CHECK(fy[0] == 3.25f && fy[1] == 3.25f && fy[2] == 3.25f && fy[3] == 1.5f &&
              fy[4] == -2.5f && fy[5] == 3.25f);
        p.pad_bits = 0x80000000u; /* -0.0f keeps its sign bit */
        msf_pad_channels(&p, &vfa, &vfy, 0, 1, 0, 1);
        memcpy(&bits, &fy[0], 4);
        CHECK(bits == 0x80000000u);
    }
}

/* every op through ring views: input rows [lo, lo + 2) in a 2-column ring, output 1 x 1 ring */
static void test_rings(int es)
{
    static float x[NMAX], ref[NMAX], ring[NMAX], oring[NMAX];
    const int Cin = 6, Cout = 6;
    int op, yy, xx, c;
    fill(x, es, H * W * Cin, 5);
    for (op = 0; op < 4; op++) {
        msf_move_params p = mp(es, op == 3 ? 0 : 2, 3, 0x11u);
        int ci = op == 0 ? 4 : Cin, co = op == 1 ? 4 : (op == 3 ? 9 : Cout);
        msf_view vx = fv(x, H, W, ci), vr = fv(ref, H, W, co);
        if (op == 3) p.c_off = 2;
        memset(ref, 0, sizeof ref);
        if (op == 0) msf_copy_to_channels(&p, &vx, &vr, 0, H, 0, W);
        if (op == 1) msf_copy_from_channels(&p, &vx, &vr, 0, H, 0, W);
        if (op == 2) msf_channel_shuffle(&p, &vx, &vr, 0, H, 0, W);
        if (op == 3) msf_pad_channels(&p, &vx, &vr, 0, H, 0, W);
        for (yy = 1; yy < H - 1; yy++)
            for (xx = 0; xx < W; xx++) {
                msf_view rin = fv(ring, H, W, ci), rout = fv(oring, H, W, co);
                int r;
                memset(ring, 0x33, sizeof ring);
                memset(oring, 0, sizeof oring);
                for (r = yy; r < yy + 2; r++)
                    memcpy((char *)ring + (size_t)(((r - yy) * 2 + xx % 2) * ci * es),
                           (char *)x + (size_t)((r * W + xx) * ci * es), (size_t)(ci * es));
                rin.y0 = yy;
                rin.xcap = 2;
                rin.cap = 4 * ci;
                rout.y0 = yy + 1;
                rout.xcap = 1;
                rout.cap = co;
                if (op == 0) msf_copy_to_channels(&p, &rin, &rout, yy + 1, yy + 2, xx, xx + 1);
                if (op == 1) msf_copy_from_channels(&p, &rin, &rout, yy + 1, yy + 2, xx, xx + 1);
                if (op == 2) msf_channel_shuffle(&p, &rin, &rout, yy + 1, yy + 2, xx, xx + 1);
                if (op == 3) msf_pad_channels(&p, &rin, &rout, yy + 1, yy + 2, xx, xx + 1);
                for (c = 0; c < co; c++)
                    CHECK(get(oring, es, c) == get(ref, es, ((yy + 1) * W + xx) * co + c));
            }
    }
}

int main(void)
{
    test_concat_split(1);
    test_concat_split(4);
    test_shuffle(1);
    test_shuffle(4);
    test_pad();
    test_rings(1);
    test_rings(4);
    TEST_DONE();
}
