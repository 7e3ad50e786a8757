/* msf_executor.c - unfused layers and fused blocks (msf-CNN "H-cache" mode, any tile height). */
#include "msf_internal.h"

static int32_t is_window_op(int32_t op)
{
    return op == MSF_OP_CONV || op == MSF_OP_DW || op == MSF_OP_MAXPOOL || op == MSF_OP_AVGPOOL;
}

static const msf_window *layer_win(const msf_layer *l)
{
    /* every window-op params struct starts with an msf_window */
    return (const msf_window *)l->params;
}

static uint8_t *resolve(const msf_mem *m, uint32_t off)
{
    if (off == MSF_OFF_EXT_IN) {
        return (uint8_t *)(uintptr_t)m->ext_in; /* read only: never written through */
    }
    if (off == MSF_OFF_EXT_OUT) {
        return m->ext_out;
    }
    return m->arena + off;
}

static msf_view full_view(const msf_mem *m, uint32_t off, int32_t H, int32_t W, int32_t C)
{
    msf_view v;
    v.data = resolve(m, off);
    v.H = H;
    v.W = W;
    v.C = C;
    v.y0 = 0;
    v.xcap = W;
    return v;
}

/* One kernel call of a window op (or add) over an output region. */
static void run_region(int32_t dtype, const msf_layer *l, const msf_view *in,
                       const msf_view *in2, msf_view *out, int32_t oy0, int32_t oy1,
                       int32_t ox0, int32_t ox1)
{
    if (dtype == MSF_DT_S8) {
        switch (l->op) {
        case MSF_OP_CONV:
            msf_conv2d_s8((const msf_conv_s8_params *)l->params, in, out, oy0, oy1, ox0, ox1);
            break;
        case MSF_OP_DW:
            msf_dwconv2d_s8((const msf_conv_s8_params *)l->params, in, out, oy0, oy1, ox0, ox1);
            break;
        case MSF_OP_MAXPOOL:
            msf_maxpool_s8((const msf_pool_s8_params *)l->params, in, out, oy0, oy1, ox0, ox1);
            break;
        case MSF_OP_AVGPOOL:
            msf_avgpool_s8((const msf_pool_s8_params *)l->params, in, out, oy0, oy1, ox0, ox1);
            break;
        case MSF_OP_ADD:
            msf_add_s8((const msf_add_s8_params *)l->params, in, in2, out, oy0, oy1, ox0, ox1);
            break;
        case MSF_OP_GAP:
            msf_gap_s8((const msf_gap_s8_params *)l->params, in, out);
            break;
        case MSF_OP_DENSE:
            msf_dense_s8((const msf_dense_s8_params *)l->params, in, out);
            break;
        default:
            break;
        }
    } else {
        switch (l->op) {
        case MSF_OP_CONV:
            msf_conv2d_f32((const msf_conv_f32_params *)l->params, in, out, oy0, oy1, ox0, ox1);
            break;
        case MSF_OP_DW:
            msf_dwconv2d_f32((const msf_conv_f32_params *)l->params, in, out, oy0, oy1, ox0, ox1);
            break;
        case MSF_OP_MAXPOOL:
            msf_maxpool_f32((const msf_pool_f32_params *)l->params, in, out, oy0, oy1, ox0, ox1);
            break;
        case MSF_OP_AVGPOOL:
            msf_avgpool_f32((const msf_pool_f32_params *)l->params, in, out, oy0, oy1, ox0, ox1);
            break;
        case MSF_OP_ADD:
            msf_add_f32((const msf_act_f32_params *)l->params, in, in2, out, oy0, oy1, ox0, ox1);
            break;
        case MSF_OP_GAP:
            msf_gap_f32((const msf_act_f32_params *)l->params, in, out);
            break;
        case MSF_OP_DENSE:
            msf_dense_f32((const msf_dense_f32_params *)l->params, in, out);
            break;
        default:
            break;
        }
    }
}

/* Input-row range [lo[k], hi[k]) of every tensor k = 0..n of the block for tile row r
 * (tensor k is layer k's input, tensor n the block output). */
/* Window layers of a block: all of them, or all but a streaming GAP tail. */
static int32_t window_layers(const msf_block *b)
{
    return b->layers[b->n_layers - 1].op == MSF_OP_GAP ? b->n_layers - 1 : b->n_layers;
}

static void tile_rows(const msf_block *b, int32_t r, int32_t *lo, int32_t *hi)
{
    const int32_t n = window_layers(b);
    const int32_t p = b->tile_h;
    int32_t k;
    lo[n] = r * p;
    hi[n] = MSF_MIN(r * p + p, b->layers[n - 1].out_h);
    for (k = n - 1; k >= 0; k--) {
        const msf_layer *l = &b->layers[k];
        const msf_window *w = layer_win(l);
        lo[k] = MSF_MAX(0, lo[k + 1] * w->sh - w->pad_top);
        hi[k] = MSF_MIN(l->in_h, (hi[k + 1] - 1) * w->sh - w->pad_top + w->kh);
    }
}

static int32_t elem_size(int32_t dtype)
{
    return dtype == MSF_DT_F32 ? 4 : 1;
}

/* Number of input columns (a prefix 0..need-1) layer l needs to produce output column c. */
static int32_t cols_needed(const msf_layer *l, int32_t c)
{
    const msf_window *w = layer_win(l);
    return MSF_MIN(l->in_w, c * w->sw - w->pad_left + w->kw);
}

static msf_view ring_view(const msf_mem *m, const msf_layer *l, int32_t lo)
{
    msf_view v;
    const msf_window *w = layer_win(l);
    v.data = m->arena + l->ring_off;
    v.H = l->in_h;
    v.W = l->in_w;
    v.C = l->in_c;
    v.y0 = lo;
    v.xcap = MSF_MIN(w->kw, l->in_w);
    return v;
}

/* In-place blocks: copy output tile row r from its ring slot over the input. */
static void flush_tile_row(const msf_block *b, uint8_t *obuf, const uint8_t *oring, int32_t r,
                           uint32_t orow)
{
    const int32_t p = b->tile_h;
    const int32_t rows = MSF_MIN(p, b->layers[b->n_layers - 1].out_h - r * p);
    const uint32_t n = (uint32_t)rows * orow;
    uint8_t *dst = obuf + (uint32_t)(r * p) * orow;
    const uint8_t *src = oring + (uint32_t)(r % b->tile_w) * (uint32_t)p * orow;
    uint32_t i;
    for (i = 0; i < n; i++) {
        dst[i] = src[i];
    }
}

static void run_fused(const msf_block *b, const msf_mem *m)
{
    int32_t lo[MSF_MAX_BLOCK_LAYERS + 1];
    int32_t hi[MSF_MAX_BLOCK_LAYERS + 1];
    int32_t produced[MSF_MAX_BLOCK_LAYERS]; /* output columns produced by layer k this tile row */
    const int32_t n = window_layers(b);
    const msf_layer *first = &b->layers[0];
    const msf_layer *last = &b->layers[n - 1];
    /* streaming GAP tail: the last window layer's output columns go to a one-column staging
     * view and are added to per-channel sums (both in the GAP layer's ring); the GAP output is
     * produced once at the end */
    const msf_layer *gap = (n < b->n_layers) ? &b->layers[n] : NULL;
    uint8_t *const sums = gap ? m->arena + gap->ring_off : NULL;
    msf_view stage;
    const int32_t n_tiles = (last->out_h + b->tile_h - 1) / b->tile_h;
    const msf_view t_in = full_view(m, b->in_off, first->in_h, first->in_w, first->in_c);
    msf_view t_out = full_view(m, b->out_off, last->out_h, last->out_w, last->out_c);
    /* in-place output (tile_w = D > 0): tile rows through a ring, copied down D - 1 rows late */
    const int32_t d = b->tile_w;
    const uint32_t orow = (uint32_t)last->out_w * (uint32_t)last->out_c *
                          (b->dtype == MSF_DT_F32 ? 4u : 1u);
    uint8_t *const obuf = (uint8_t *)t_out.data;
    uint8_t *const oring = m->arena + first->ring_off;
    int32_t r, k;

    if (gap) {
        int32_t c;
        stage.data = sums + 4u * (uint32_t)last->out_c;
        stage.H = last->out_h;
        stage.W = last->out_w;
        stage.C = last->out_c;
        stage.xcap = 1;
        for (c = 0; c < last->out_c; c++) {
            if (b->dtype == MSF_DT_F32) {
                ((float *)(void *)sums)[c] = 0.0f;
            } else {
                ((int32_t *)(void *)sums)[c] = 0;
            }
        }
    }
    for (r = 0; r < n_tiles; r++) {
        tile_rows(b, r, lo, hi);
        if (gap) {
            stage.y0 = lo[n];
        }
        if (d > 0) {
            t_out.data = oring + (uint32_t)(r % d) * (uint32_t)b->tile_h * orow;
            t_out.y0 = r * b->tile_h;
        }
        for (k = 0; k < n; k++) {
            produced[k] = 0;
        }
        /* Demand-driven column flow without recursion: k is the layer currently trying to
         * produce its next output column.  If its producer has not yet delivered the input
         * columns that column needs, descend to the producer; after producing a column, climb
         * back to the consumer.  Each layer therefore produces its columns in increasing
         * order, each exactly once, and only as far as the last layer needs them; a producer
         * never runs ahead of its consumer's current window, so kw ring slots suffice. */
        k = n - 1;
        while (produced[n - 1] < last->out_w) {
            const msf_layer *l = &b->layers[k];
            const int32_t c = produced[k];
            if (k > 0 && produced[k - 1] < cols_needed(l, c)) {
                k--;
                continue;
            }
            {
                msf_view vin = (k == 0) ? t_in : ring_view(m, l, lo[k]);
                if (k == n - 1 && gap) {
                    run_region(b->dtype, l, &vin, NULL, &stage, lo[k + 1], hi[k + 1], c, c + 1);
                    if (b->dtype == MSF_DT_F32) {
                        msf_gap_f32_accumulate(&stage, lo[k + 1], hi[k + 1], c, c + 1,
                                               (float *)(void *)sums);
                    } else {
                        msf_gap_s8_accumulate(&stage, lo[k + 1], hi[k + 1], c, c + 1,
                                              (int32_t *)(void *)sums);
                    }
                } else if (k == n - 1) {
                    run_region(b->dtype, l, &vin, NULL, &t_out, lo[k + 1], hi[k + 1], c, c + 1);
                } else {
                    msf_view vout = ring_view(m, &b->layers[k + 1], lo[k + 1]);
                    run_region(b->dtype, l, &vin, NULL, &vout, lo[k + 1], hi[k + 1], c, c + 1);
                }
            }
            produced[k] = c + 1;
            if (k < n - 1) {
                k++;
            }
        }
        if (d > 0 && r - d + 1 >= 0) {
            flush_tile_row(b, obuf, oring, r - d + 1, orow);
        }
    }
    if (d > 0) {
        for (r = MSF_MAX(0, n_tiles - d + 1); r < n_tiles; r++) {
            flush_tile_row(b, obuf, oring, r, orow);
        }
    }
    if (gap) {
        msf_view out = full_view(m, b->out_off, 1, 1, gap->out_c);
        if (b->dtype == MSF_DT_F32) {
            msf_gap_f32_finish((const msf_act_f32_params *)gap->params,
                               (const float *)(const void *)sums, gap->in_h * gap->in_w, &out);
        } else {
            msf_gap_s8_finish((const msf_gap_s8_params *)gap->params,
                              (const int32_t *)(const void *)sums, gap->in_h * gap->in_w, &out);
        }
    }
}

/* Column range [lo[k], hi[k]) of every tensor k = 0..n of the block for output patch column c. */
static void tile_cols(const msf_block *b, int32_t c, int32_t *lo, int32_t *hi)
{
    const int32_t n = b->n_layers;
    const int32_t q = b->tile_w;
    int32_t k;
    lo[n] = c * q;
    hi[n] = MSF_MIN(c * q + q, b->layers[n - 1].out_w);
    for (k = n - 1; k >= 0; k--) {
        const msf_layer *l = &b->layers[k];
        const msf_window *w = layer_win(l);
        lo[k] = MSF_MAX(0, lo[k + 1] * w->sw - w->pad_left);
        hi[k] = MSF_MIN(l->in_w, (hi[k + 1] - 1) * w->sw - w->pad_left + w->kw);
    }
}

static msf_view patch_view(const msf_mem *m, const msf_layer *l, int32_t ylo, int32_t xlo,
                           int32_t xhi)
{
    msf_view v;
    v.data = m->arena + l->ring_off;
    v.H = l->in_h;
    v.W = l->in_w;
    v.C = l->in_c;
    v.y0 = ylo;
    v.xcap = MSF_MAX(1, xhi - xlo);
    return v;
}

/* Recompute mode: every output patch is computed through all layers from its receptive field;
 * layer k's output patch goes to layer k+1's patch buffer (the last layer writes T_{j+1}). */
static void run_patches(const msf_block *b, const msf_mem *m)
{
    int32_t ylo[MSF_MAX_BLOCK_LAYERS + 1];
    int32_t yhi[MSF_MAX_BLOCK_LAYERS + 1];
    int32_t xlo[MSF_MAX_BLOCK_LAYERS + 1];
    int32_t xhi[MSF_MAX_BLOCK_LAYERS + 1];
    const int32_t n = b->n_layers;
    const msf_layer *first = &b->layers[0];
    const msf_layer *last = &b->layers[n - 1];
    const int32_t n_r = (last->out_h + b->tile_h - 1) / b->tile_h;
    const int32_t n_c = (last->out_w + b->tile_w - 1) / b->tile_w;
    const msf_view t_in = full_view(m, b->in_off, first->in_h, first->in_w, first->in_c);
    msf_view t_out = full_view(m, b->out_off, last->out_h, last->out_w, last->out_c);
    int32_t r, c, k;

    for (r = 0; r < n_r; r++) {
        tile_rows(b, r, ylo, yhi);
        for (c = 0; c < n_c; c++) {
            tile_cols(b, c, xlo, xhi);
            for (k = 0; k < n; k++) {
                const msf_layer *l = &b->layers[k];
                msf_view vin = (k == 0) ? t_in : patch_view(m, l, ylo[k], xlo[k], xhi[k]);
                if (k == n - 1) {
                    run_region(b->dtype, l, &vin, NULL, &t_out, ylo[k + 1], yhi[k + 1],
                               xlo[k + 1], xhi[k + 1]);
                } else {
                    msf_view vout = patch_view(m, &b->layers[k + 1], ylo[k + 1], xlo[k + 1],
                                               xhi[k + 1]);
                    run_region(b->dtype, l, &vin, NULL, &vout, ylo[k + 1], yhi[k + 1],
                               xlo[k + 1], xhi[k + 1]);
                }
            }
        }
    }
}

static void flush_row(uint8_t *dst, const uint8_t *src, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; i++) {
        dst[i] = src[i];
    }
}

/* In-place single layer: output rows through a ring of tile_h rows, copied down over the input
 * as soon as no later output row reads the input rows beneath them. */
static void run_inplace(const msf_block *b, const msf_mem *m)
{
    const msf_layer *l = &b->layers[0];
    const int32_t d = b->tile_h;
    const uint32_t esz = (b->dtype == MSF_DT_F32) ? 4u : 1u;
    const uint32_t row_bytes = (uint32_t)l->out_w * (uint32_t)l->out_c * esz;
    uint8_t *buf = resolve(m, b->in_off);
    uint8_t *ring = m->arena + l->ring_off;
    const msf_view in = full_view(m, b->in_off, l->in_h, l->in_w, l->in_c);
    int32_t y;
    for (y = 0; y < l->out_h; y++) {
        msf_view out;
        out.data = ring + (uint32_t)(y % d) * row_bytes;
        out.H = l->out_h;
        out.W = l->out_w;
        out.C = l->out_c;
        out.y0 = y;
        out.xcap = l->out_w;
        run_region(b->dtype, l, &in, NULL, &out, y, y + 1, 0, l->out_w);
        if (y - d + 1 >= 0) {
            const int32_t r = y - d + 1;
            flush_row(buf + (uint32_t)r * row_bytes, ring + (uint32_t)(r % d) * row_bytes,
                      row_bytes);
        }
    }
    for (y = MSF_MAX(0, l->out_h - d + 1); y < l->out_h; y++) {
        flush_row(buf + (uint32_t)y * row_bytes, ring + (uint32_t)(y % d) * row_bytes, row_bytes);
    }
}

void msf_run_block(const msf_block *b, uint8_t *arena)
{
    msf_mem m;
    m.arena = arena;
    m.ext_in = NULL;
    m.ext_out = NULL;
    msf_run_block_mem(b, &m);
}

void msf_run_block_mem(const msf_block *b, const msf_mem *m)
{
    if (b->mode == MSF_MODE_INPLACE) {
        run_inplace(b, m);
        return;
    }
    if (b->n_layers == 1) {
        const msf_layer *l = &b->layers[0];
        msf_view in = full_view(m, b->in_off, l->in_h, l->in_w, l->in_c);
        msf_view out = full_view(m, b->out_off, l->out_h, l->out_w, l->out_c);
        if (l->op == MSF_OP_ADD) {
            msf_view in2 = full_view(m, b->in2_off, l->in_h, l->in_w, l->in_c);
            run_region(b->dtype, l, &in, &in2, &out, 0, l->out_h, 0, l->out_w);
        } else {
            run_region(b->dtype, l, &in, NULL, &out, 0, l->out_h, 0, l->out_w);
        }
        return;
    }
    if (b->mode == MSF_MODE_PATCHES) {
        run_patches(b, m);
    } else {
        run_fused(b, m);
    }
}

void msf_model_run_blocks(const msf_block *blocks, int n, uint8_t *arena)
{
    int i;
    for (i = 0; i < n; i++) {
        msf_run_block(&blocks[i], arena);
    }
}

int32_t msf_block_validate(const msf_block *b)
{
    int32_t k;
    if (b == NULL || b->layers == NULL || b->n_layers < 1) {
        return -1;
    }
    if (b->dtype != MSF_DT_S8 && b->dtype != MSF_DT_F32) {
        return -2;
    }
    for (k = 0; k < b->n_layers; k++) {
        const msf_layer *l = &b->layers[k];
        if (l->params == NULL || l->op < MSF_OP_CONV || l->op > MSF_OP_ADD) {
            return -3;
        }
        if (l->in_h < 1 || l->in_w < 1 || l->in_c < 1 || l->out_h < 1 || l->out_w < 1 ||
            l->out_c < 1) {
            return -4;
        }
        if (is_window_op(l->op)) {
            const msf_window *w = layer_win(l);
            if (w->kh < 1 || w->kw < 1 || w->sh < 1 || w->sw < 1 || w->pad_top < 0 ||
                w->pad_left < 0 || w->pad_bottom < 0 || w->pad_right < 0 ||
                w->pad_top >= w->kh || w->pad_bottom >= w->kh || w->pad_left >= w->kw ||
                w->pad_right >= w->kw) {
                return -5;
            }
            if ((l->in_h + w->pad_top + w->pad_bottom - w->kh) / w->sh + 1 != l->out_h ||
                (l->in_w + w->pad_left + w->pad_right - w->kw) / w->sw + 1 != l->out_w) {
                return -6;
            }
        }
    }
    if (b->n_layers > 1) {
        if (b->n_layers > MSF_MAX_BLOCK_LAYERS || b->tile_h < 1) {
            return -7;
        }
        for (k = 0; k < window_layers(b); k++) {
            const msf_layer *l = &b->layers[k];
            if (!is_window_op(l->op)) {
                return -8;
            }
            if (k > 0 && (l->in_h != b->layers[k - 1].out_h || l->in_w != b->layers[k - 1].out_w ||
                          l->in_c != b->layers[k - 1].out_c)) {
                return -9;
            }
        }
    }
    return 0;
}

uint32_t msf_block_ring_bytes(const msf_block *b, int32_t k)
{
    int32_t lo[MSF_MAX_BLOCK_LAYERS + 1];
    int32_t hi[MSF_MAX_BLOCK_LAYERS + 1];
    int32_t r, n_tiles, rows = 0;
    const msf_layer *l;
    if (b->n_layers < 2 || b->n_layers > MSF_MAX_BLOCK_LAYERS || k < 1 || k >= b->n_layers ||
        b->tile_h < 1) {
        return 0;
    }
    l = &b->layers[k];
    n_tiles = (b->layers[b->n_layers - 1].out_h + b->tile_h - 1) / b->tile_h;
    for (r = 0; r < n_tiles; r++) {
        tile_rows(b, r, lo, hi);
        rows = MSF_MAX(rows, hi[k] - lo[k]);
    }
    return (uint32_t)rows * (uint32_t)MSF_MIN(layer_win(l)->kw, l->in_w) * (uint32_t)l->in_c *
           (uint32_t)elem_size(b->dtype);
}
