/* Unit test: msf_run_block - a fused H-cache chain (p = 1, 2, 3) equals the unfused layers byte
 * for byte, MAC counts match the closed form, and nothing outside the buffers (canaries) is
 * written.  The descriptors' row ranges and ring extents are derived here independently (the
 * code generator emits them from msfopt's block schedule) and checked tile row by tile row
 * against the backward recurrence.  Built with -DMSF_CHECK_BOUNDS (see the Makefile): a ring
 * one row too small must trip the bounds check. */
#include "msf_test.h"

#define NL 4
#define GUARD 32

static msf_layer layers[NL];
static msf_conv_s8_params conv0, dw1;
static msf_pool_s8_params mp2, ap3;
static int8_t w0[4 * 3 * 3 * 3], w1[4 * 3 * 3];
static int32_t b0[4], b1[4];
static float m0[4], m1[4];
static int shp[NL + 1][3]; /* H, W, C of tensors 0..NL */

static void set_layer(int k, int op, const void *params, const msf_window *w, int cout)
{
    layers[k].op = op;
    layers[k].params = params;
    layers[k].in_h = shp[k][0];
    layers[k].in_w = shp[k][1];
    layers[k].in_c = shp[k][2];
    shp[k + 1][0] = out_extent(shp[k][0], w->kh, w->sh, w->pad_top, w->pad_bottom);
    shp[k + 1][1] = out_extent(shp[k][1], w->kw, w->sw, w->pad_left, w->pad_right);
    shp[k + 1][2] = cout;
    layers[k].out_h = shp[k + 1][0];
    layers[k].out_w = shp[k + 1][1];
    layers[k].out_c = cout;
}

static const msf_window *win_of(int k)
{
    return (const msf_window *)layers[k].params;
}

static int macs_per_output(int k)
{
    const msf_window *w = win_of(k);
    return layers[k].op == MSF_OP_CONV ? w->kh * w->kw * layers[k].in_c : w->kh * w->kw;
}

#ifdef MSF_CHECK_BOUNDS
static int bounds_hits = 0;
static void count_bounds(const char *what)
{
    (void)what;
    bounds_hits++;
}
#endif

static msf_range mkrange(int step, int lo_sub, int hi_add, int hi_max)
{
    msf_range r;
    r.step = step;
    r.lo_sub = lo_sub;
    r.hi_add = hi_add;
    r.hi_max = hi_max;
    return r;
}

static int rlo(const msf_range *r, int t)
{
    int v = t * r->step - r->lo_sub;
    return v > 0 ? v : 0;
}

static int rhi(const msf_range *r, int t)
{
    int v = t * r->step + r->hi_add;
    return v < r->hi_max ? v : r->hi_max;
}

/* Geometry of the whole chain fused with tile height p: each layer's output rows per tile row
 * (composed backwards from the last layer's tiles), its input column demand, its input ring
 * (layers 1..NL-1: the most rows any tile row needs x min(kw, W) columns).  Returns the
 * number of tile rows; checks the closed form against the recurrence. */
static int set_geometry(int p, uint32_t *ring_sz)
{
    int k, r, n_tiles = (shp[NL][0] + p - 1) / p;
    layers[NL - 1].out_rows = mkrange(p, 0, p, shp[NL][0]);
    for (k = NL - 1; k >= 1; k--) {
        const msf_window *w = win_of(k);
        const msf_range *o = &layers[k].out_rows;
        int hm = (o->hi_max - 1) * w->sh - w->pad_top + w->kh;
        layers[k - 1].out_rows = mkrange(o->step * w->sh, o->lo_sub * w->sh + w->pad_top,
                                         (o->hi_add - 1) * w->sh - w->pad_top + w->kh,
                                         hm < shp[k][0] ? hm : shp[k][0]);
    }
    for (k = 0; k < NL; k++) {
        const msf_window *w = win_of(k);
        layers[k].need_cols = mkrange(w->sw, w->pad_left, w->kw - w->pad_left, shp[k][1]);
        layers[k].out_cols = mkrange(0, 0, 0, 0);
        layers[k].buf_off = 0;
        layers[k].buf_bytes = 0;
        layers[k].buf_rows = 0;
        layers[k].buf_cols = 0;
    }
    for (k = 1; k < NL; k++) {
        int rows = 0;
        layers[k].buf_cols = win_of(k)->kw < shp[k][1] ? win_of(k)->kw : shp[k][1];
        for (r = 0; r < n_tiles; r++) {
            int lo = rlo(&layers[k - 1].out_rows, r), hi = rhi(&layers[k - 1].out_rows, r);
            if (hi - lo > rows) rows = hi - lo;
        }
        layers[k].buf_rows = rows;
        ring_sz[k] = (uint32_t)(rows * layers[k].buf_cols * shp[k][2]);
        layers[k].buf_bytes = ring_sz[k];
    }
    /* the closed form is the backward recurrence */
    for (r = 0; r < n_tiles; r++) {
        int lo = r * p, hi = r * p + p < shp[NL][0] ? r * p + p : shp[NL][0];
        for (k = NL - 1; k >= 0; k--) {
            const msf_window *w = win_of(k);
            CHECK_EQ_INT(rlo(&layers[k].out_rows, r), lo);
            CHECK_EQ_INT(rhi(&layers[k].out_rows, r), hi);
            lo = lo * w->sh - w->pad_top;
            if (lo < 0) lo = 0;
            hi = (hi - 1) * w->sh - w->pad_top + w->kh;
            if (hi > shp[k][0]) hi = shp[k][0];
        }
    }
    return n_tiles;
}

/* closed-form MAC count of the fused block (msfopt's cost model) */
static uint64_t fused_macs(int p)
{
    int lo[NL + 1], hi[NL + 1], ncols[NL + 1], r, k;
    int Ho = shp[NL][0];
    uint64_t total = 0;
    ncols[NL] = shp[NL][1];
    for (k = NL - 1; k >= 1; k--) {
        const msf_window *w = win_of(k);
        int c = (ncols[k + 1] - 1) * w->sw - w->pad_left + w->kw;
        ncols[k] = c < shp[k][1] ? c : shp[k][1];
    }
    for (r = 0; r * p < Ho; r++) {
        lo[NL] = r * p;
        hi[NL] = r * p + p < Ho ? r * p + p : Ho;
        for (k = NL - 1; k >= 0; k--) {
            const msf_window *w = win_of(k);
            lo[k] = lo[k + 1] * w->sh - w->pad_top;
            if (lo[k] < 0) lo[k] = 0;
            hi[k] = (hi[k + 1] - 1) * w->sh - w->pad_top + w->kh;
            if (hi[k] > shp[k][0]) hi[k] = shp[k][0];
        }
        for (k = 0; k < NL; k++)
            total += (uint64_t)(hi[k + 1] - lo[k + 1]) * (uint64_t)ncols[k + 1] *
                     (uint64_t)shp[k + 1][2] * (uint64_t)macs_per_output(k);
    }
    return total;
}

int main(void)
{
    static uint8_t arena_u[1 << 16], arena_f[1 << 16];
    msf_window wc = mkwin(3, 3, 1, 1, 1, 1, 1, 1), wd = mkwin(3, 3, 2, 2, 1, 1, 0, 0);
    msf_window wm = mkwin(2, 2, 1, 1, 0, 1, 1, 0), wa = mkwin(3, 2, 1, 2, 1, 0, 1, 1);
    uint32_t off[NL + 1], pos;
    msf_block ub[NL], fb;
    int i, k, p;
    uint64_t unfused_macs = 0;

    shp[0][0] = 11;
    shp[0][1] = 9;
    shp[0][2] = 3;
    for (i = 0; i < (int)sizeof w0; i++) w0[i] = (int8_t)rnd(-100, 100);
    for (i = 0; i < (int)sizeof w1; i++) w1[i] = (int8_t)rnd(-100, 100);
    for (i = 0; i < 4; i++) {
        b0[i] = rnd(-300, 300);
        b1[i] = rnd(-300, 300);
        m0[i] = 0.002f * (float)rnd(1, 10);
        m1[i] = 0.004f * (float)rnd(1, 10);
    }
    memset(&conv0, 0, sizeof conv0);
    conv0.win = wc;
    conv0.groups = 1;
    conv0.in_zp = -3;
    conv0.out_zp = 5;
    conv0.act_min = 5; /* relu */
    conv0.act_max = 127;
    conv0.weights = w0;
    conv0.bias = b0;
    conv0.rq.mode = MSF_RQ_FLOAT;
    conv0.rq.per_channel = 1;
    conv0.rq.fmul = m0;
    dw1 = conv0;
    dw1.win = wd;
    dw1.groups = 4;
    dw1.in_zp = 5;
    dw1.out_zp = -7;
    dw1.act_min = -128;
    dw1.weights = w1;
    dw1.bias = b1;
    dw1.rq.fmul = m1;
    memset(&mp2, 0, sizeof mp2);
    mp2.win = wm;
    mp2.act_min = -128;
    mp2.act_max = 127;
    ap3 = mp2;
    ap3.win = wa;
    ap3.count_include_pad = 1;
    ap3.in_scale = 0.05f;
    ap3.out_scale = 0.04f;
    ap3.in_zp = -7;
    ap3.out_zp = 2;
    set_layer(0, MSF_OP_CONV, &conv0, &wc, 4);
    set_layer(1, MSF_OP_DW, &dw1, &wd, 4);
    set_layer(2, MSF_OP_MAXPOOL, &mp2, &wm, 4);
    set_layer(3, MSF_OP_AVGPOOL, &ap3, &wa, 4);

    /* unfused reference: every tensor in the arena */
    pos = GUARD;
    for (k = 0; k <= NL; k++) {
        off[k] = pos;
        pos += (uint32_t)(shp[k][0] * shp[k][1] * shp[k][2]) + GUARD;
    }
    msf_canary_fill(arena_u, sizeof arena_u, 1u);
    for (i = 0; i < shp[0][0] * shp[0][1] * shp[0][2]; i++) arena_u[off[0] + i] = (uint8_t)rnd(0, 255);
    for (k = 0; k < NL; k++) {
        memset(&ub[k], 0, sizeof ub[k]);
        ub[k].dtype = MSF_DT_S8;
        ub[k].n_layers = 1;
        ub[k].layers = &layers[k];
        ub[k].in_off = off[k];
        ub[k].out_off = off[k + 1];
        CHECK_EQ_INT(msf_block_validate(&ub[k]), 0);
        unfused_macs += (uint64_t)shp[k + 1][0] * shp[k + 1][1] * shp[k + 1][2] * macs_per_output(k);
    }
    msf_macs_reset();
    msf_model_run_blocks(ub, NL, arena_u);
    CHECK_EQ_INT(msf_macs_get(), unfused_macs);

    for (p = 1; p <= 3; p++) {
        uint32_t ring_off[NL], ring_sz[NL], fpos, out_off;
        long bad;
        memset(&fb, 0, sizeof fb);
        fb.dtype = MSF_DT_S8;
        fb.tile_h = p;
        fb.n_layers = NL;
        fb.layers = layers;
        fb.mode = MSF_MODE_COLUMNS;
        fb.n_tiles = set_geometry(p, ring_sz);
        fb.n_tile_cols = 1;
        CHECK_EQ_INT(msf_block_validate(&fb), 0);
        /* arena: guard | T0 | guard | T_out | guard | ring1 | guard | ring2 | guard | ... */
        fb.in_off = GUARD;
        fpos = GUARD + (uint32_t)(shp[0][0] * shp[0][1] * shp[0][2]) + GUARD;
        out_off = fpos;
        fb.out_off = out_off;
        fpos += (uint32_t)(shp[NL][0] * shp[NL][1] * shp[NL][2]) + GUARD;
        for (k = 1; k < NL; k++) {
            ring_off[k] = fpos;
            layers[k].buf_off = fpos;
            fpos += ring_sz[k] + GUARD;
        }
        msf_canary_fill(arena_f, sizeof arena_f, 2u);
        memcpy(arena_f + fb.in_off, arena_u + off[0], (size_t)(shp[0][0] * shp[0][1] * shp[0][2]));
        msf_macs_reset();
        msf_run_block(&fb, arena_f);
        CHECK_EQ_INT(msf_macs_get(), fused_macs(p));
        CHECK(msf_macs_get() >= unfused_macs);
        CHECK(memcmp(arena_f + out_off, arena_u + off[NL],
                     (size_t)(shp[NL][0] * shp[NL][1] * shp[NL][2])) == 0);
        /* guards between regions and the tail of the arena are intact */
        {
            static uint8_t pat[1 << 16];
            msf_canary_fill(pat, sizeof pat, 2u);
            CHECK(memcmp(arena_f, pat, GUARD) == 0);
            CHECK(memcmp(arena_f + out_off - GUARD, pat + out_off - GUARD, GUARD) == 0);
            for (k = 1; k < NL; k++) {
                uint32_t e = ring_off[k] + ring_sz[k];
                CHECK(memcmp(arena_f + ring_off[k] - GUARD, pat + ring_off[k] - GUARD, GUARD) == 0);
                CHECK(memcmp(arena_f + e, pat + e, GUARD) == 0);
            }
            bad = memcmp(arena_f + fpos, pat + fpos, sizeof pat - fpos);
            CHECK(bad == 0);
        }
#ifdef MSF_CHECK_BOUNDS
        /* ring 2 one row short: validation rejects it, running it trips the bounds check */
        {
            const uint32_t f0 = msf_bounds_failures();
            msf_set_bounds_hook(count_bounds);
            bounds_hits = 0;
            layers[2].buf_bytes = ring_sz[2] - (uint32_t)(layers[2].buf_cols * shp[2][2]);
            CHECK(msf_block_validate(&fb) < 0);
            msf_run_block(&fb, arena_f);
            CHECK(bounds_hits > 0);
            CHECK_EQ_INT(msf_bounds_failures() - f0, bounds_hits);
            layers[2].buf_bytes = ring_sz[2];
            msf_set_bounds_hook(NULL);
        }
#endif
    }
    /* validation catches broken descriptors */
    {
        msf_layer bad[2];
        msf_block bb;
        bad[0] = layers[0];
        bad[1] = layers[2]; /* shape mismatch with layer 0's output */
        memset(&bb, 0, sizeof bb);
        bb.dtype = MSF_DT_S8;
        bb.tile_h = 1;
        bb.n_layers = 2;
        bb.layers = bad;
        CHECK(msf_block_validate(&bb) < 0);
        bb.layers = layers;
        bb.tile_h = 0;
        CHECK(msf_block_validate(&bb) < 0);
    }
    TEST_DONE();
}
