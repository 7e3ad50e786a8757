/* msf_executor.c - runs a plan's blocks: unfused layers, and fused blocks in every execution mode
 * the planner chooses from: H-cache tiles of any height (also in place, or ending in a streaming
 * GAP) and line buffers as column rings (MSF_MODE_COLUMNS), recompute patches
 * (MSF_MODE_PATCHES), in-place output rings (MSF_MODE_INPLACE). */
#include "msf_internal.h"

static int32_t is_window_op(int32_t op)
{
    return op == MSF_OP_CONV || op == MSF_OP_DW || op == MSF_OP_MAXPOOL || op == MSF_OP_AVGPOOL;
}

/* ops a fused block runs tile by tile: the window ops and the standalone activations */
static int32_t is_pipeline_op(int32_t op)
{
    return is_window_op(op) || op == MSF_OP_ACT || op == MSF_OP_PRELU;
}

/* an activation's window: 1 x 1, stride 1, no padding */
static const msf_window unit_window = {1, 1, 1, 1, 0, 0, 0, 0, 1, 1};

static const msf_window *layer_win(const msf_layer *l)
{
    /* every window-op params struct starts with an msf_window */
    if (!is_window_op(l->op)) {
        return &unit_window;
    }
    return (const msf_window *)l->params;
}

static uint8_t *resolve(const msf_mem *m, uint32_t off)
{
    if (off == MSF_OFF_EXT_IN) {
        return (uint8_t *)(uintptr_t)m->ext_in; /* read only: never written through */
    }
    if (off <= MSF_OFF_EXT_OUT && off > MSF_OFF_EXT_OUT - MSF_MAX_OUTPUTS) {
        uint32_t k = MSF_OFF_EXT_OUT - off;
        if (k == 0 && m->ext_outs[0] == NULL) {
            return m->ext_out;
        }
        return m->ext_outs[k];
    }
    return m->arena + off;
}

/* Whether a block of element type dt runs the float32 kernels.  A compile-time constant where
 * the build's msf_config.h says the model has one element type only (MSF_HAS_S8 / MSF_HAS_F32):
 * the other type's kernels are then never referenced and the linker drops them (an int8 model
 * does not carry the float kernels in flash; msf_block_validate rejects the other type). */
#define IS_F32(dt) (MSF_HAS_F32 && (!MSF_HAS_S8 || (dt) == MSF_DT_F32))

static int32_t elem_size(int32_t dtype)
{
    return dtype == MSF_DT_F32 ? 4 : 1;
}

/* -- bounds checking (MSF_CHECK_BOUNDS) ---------------------------------------------------- */

#ifdef MSF_CHECK_BOUNDS
static msf_bounds_hook_fn bounds_hook = NULL;
static uint32_t bounds_failures = 0;

void msf_set_bounds_hook(msf_bounds_hook_fn hook)
{
    bounds_hook = hook;
}

uint32_t msf_bounds_failures(void)
{
    return bounds_failures;
}

void msf_bounds_fail(const char *what)
{
    bounds_failures++;
    if (bounds_hook != NULL) {
        bounds_hook(what);
        return;
    }
#if defined(__GNUC__)
    __builtin_trap();
#else
    for (;;) {
    }
#endif
}
#else
/* unchecked builds: no state, nothing ever fails */
void msf_set_bounds_hook(msf_bounds_hook_fn hook)
{
    (void)hook;
}

uint32_t msf_bounds_failures(void)
{
    return 0;
}

void msf_bounds_fail(const char *what)
{
    (void)what;
}
#endif

/* -- views ------------------------------------------------------------------------------------ */

static msf_view full_view(const msf_mem *m, uint32_t off, int32_t H, int32_t W, int32_t C)
{
    msf_view v;
    v.data = resolve(m, off);
    v.H = H;
    v.W = W;
    v.C = C;
    v.y0 = 0;
    v.xcap = W;
    v.cap = H * W * C;
    return v;
}

/* View of layer l's buffer (its input ring / patch buffer) holding rows from y0 on, with xcap
 * column slots. */
static msf_view buf_view(const msf_mem *m, const msf_layer *l, int32_t y0, int32_t xcap,
                         int32_t esz)
{
    msf_view v;
    v.data = m->arena + l->buf_off;
    v.H = l->in_h;
    v.W = l->in_w;
    v.C = l->in_c;
    v.y0 = y0;
    v.xcap = xcap;
    v.cap = (int32_t)(l->buf_bytes / (uint32_t)esz);
    return v;
}

static int32_t range_lo(const msf_range *r, int32_t t)
{
    return MSF_MAX(0, t * (int32_t)r->step - (int32_t)r->lo_sub);
}

static int32_t range_hi(const msf_range *r, int32_t t)
{
    return MSF_MIN((int32_t)r->hi_max, t * (int32_t)r->step + (int32_t)r->hi_add);
}

/* Copy of n bytes; MSF_CHECK_BOUNDS: [dst_at, dst_at + n) must lie in a buffer of dst_cap bytes
 * and [src_at, src_at + n) in one of src_cap bytes. */
static void copy_bytes(uint8_t *dst, uint32_t dst_at, uint32_t dst_cap, const uint8_t *src,
                       uint32_t src_at, uint32_t src_cap, uint32_t n)
{
    uint32_t i;
    if (MSF_CHECK(dst_at <= dst_cap && n <= dst_cap - dst_at && src_at <= src_cap &&
                      n <= src_cap - src_at,
                  "executor copy outside its buffer")) {
        return;
    }
    for (i = 0; i < n; i++) {
        dst[dst_at + i] = src[src_at + i];
    }
}

/* -- concat slices (msf_runtime.h: the slice row) ------------------------------------------- */

/* The slice row of a block whose output is a concat slice (its last operand, h < 0), or NULL. */
static const msf_operand *slice_row(const msf_block *b)
{
    if (b->operands != NULL && b->n_operands >= 1 && b->operands[b->n_operands - 1].h < 0) {
        return &b->operands[b->n_operands - 1];
    }
    return NULL;
}

/* The staging view of output region rows [oy0, ...) x columns [ox0, ox1) of an H x W x C
 * output: the region packed from the staging buffer's start. */
static msf_view stage_view(const msf_mem *m, const msf_operand *sl, int32_t H, int32_t W,
                           int32_t C, int32_t oy0, int32_t ox0, int32_t ox1)
{
    msf_view v;
    v.data = m->arena + sl->off;
    v.H = H;
    v.W = W;
    v.C = C;
    v.y0 = oy0;
    v.xcap = MSF_MAX(1, ox1 - ox0);
    v.cap = sl->c;
    return v;
}

/* Copy a staged output region into its channel slice of the concat output at out_off. */
static void stage_flush(int32_t dtype, const msf_mem *m, uint32_t out_off, const msf_operand *sl,
                        const msf_view *st, int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1)
{
    msf_move_params p;
    msf_view wide = full_view(m, out_off, st->H, st->W, -sl->h);
    p.esize = elem_size(dtype);
    p.c_off = sl->w;
    p.groups = 1;
    p.pad_bits = 0u;
    p.x_off = 0;
    msf_copy_to_channels(&p, st, &wide, oy0, oy1, ox0, ox1);
}

/* One kernel call of a window op (or add) over an output region. */
static void run_region(int32_t dtype, const msf_layer *l, const msf_view *in,
                       const msf_view *in2, msf_view *out, int32_t oy0, int32_t oy1,
                       int32_t ox0, int32_t ox1)
{
    if (l->op == MSF_OP_GAP || l->op == MSF_OP_DENSE ||
        (l->op == MSF_OP_AVGPOOL && layer_win(l)->kh == in->H && layer_win(l)->kw == in->W &&
         layer_win(l)->pad_top == 0 && layer_win(l)->pad_left == 0 &&
         layer_win(l)->pad_bottom == 0 && layer_win(l)->pad_right == 0 && in->y0 == 0 &&
         in->xcap == in->W)) {
        /* full-tensor kernels (and an unpadded whole-input average pool, which msf_avgpool_s8
         * runs as a global pool) read the input directly */
        if (MSF_CHECK(in->y0 == 0 && in->xcap == in->W && in->cap / in->W / in->C >= in->H,
                      "full-tensor kernel input larger than its buffer")) {
            return;
        }
    }
    if (l->op == MSF_OP_GAP || l->op == MSF_OP_DENSE) {
        if (MSF_CHECK(out->cap >= out->C, "full-tensor kernel output larger than its buffer")) {
            return;
        }
    }
    if (!IS_F32(dtype)) {
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
        case MSF_OP_ACT:
            msf_lut_s8((const msf_lut_s8_params *)l->params, in, out, oy0, oy1, ox0, ox1);
            break;
        case MSF_OP_PRELU:
            msf_prelu_s8((const msf_prelu_s8_params *)l->params, in, out, oy0, oy1, ox0, ox1);
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
        case MSF_OP_ACT:
        case MSF_OP_PRELU:
            msf_unary_f32((const msf_unary_f32_params *)l->params, in, out, oy0, oy1, ox0, ox1);
            break;
        default:
            break;
        }
    }
}


/* Window layers of a block: all of them, or all but a streaming GAP tail. */
static int32_t window_layers(const msf_block *b)
{
    return b->layers[b->n_layers - 1].op == MSF_OP_GAP ? b->n_layers - 1 : b->n_layers;
}

/* Rows [lo[k], hi[k]) of the block's tensors k = 1..n (tensor k is layer k-1's output) in tile
 * row r, from the descriptors. */
static void tile_rows(const msf_block *b, int32_t n, int32_t r, int32_t *lo, int32_t *hi)
{
    int32_t k;
    for (k = 0; k < n; k++) {
        lo[k + 1] = range_lo(&b->layers[k].out_rows, r);
        hi[k + 1] = range_hi(&b->layers[k].out_rows, r);
    }
}

/* int8 streaming GAP tails: the int32 sums sit at the start of the GAP layer's buffer, where
 * the arena layout put the block's scratch region -- in an int8 network not necessarily on a
 * 4-byte boundary.  Misaligned sums are then read and written byte by byte (native byte
 * order), and moved onto a boundary inside the buffer (over the staging column, no longer
 * needed) before msf_gap_s8_finish reads them. */
static int32_t ld32(const uint8_t *p)
{
    int32_t v;
    uint8_t *q = (uint8_t *)&v;
    q[0] = p[0];
    q[1] = p[1];
    q[2] = p[2];
    q[3] = p[3];
    return v;
}

static void st32(uint8_t *p, int32_t v)
{
    const uint8_t *q = (const uint8_t *)&v;
    p[0] = q[0];
    p[1] = q[1];
    p[2] = q[2];
    p[3] = q[3];
}

/* msf_gap_s8_accumulate of output column c, rows [oy0, oy1), into misaligned sums */
static void gap_s8_accumulate_unaligned(const msf_view *in, int32_t oy0, int32_t oy1, int32_t c,
                                        uint8_t *sums)
{
    const int8_t *x = (const int8_t *)in->data;
    int32_t oy, ch;
    MSF_ADD_MACS((int64_t)(oy1 - oy0) * in->C);
    for (oy = oy0; oy < oy1; oy++) {
        const int8_t *xp = x + msf_vofs(in, oy, c);
        for (ch = 0; ch < in->C; ch++) {
            st32(sums + 4 * ch, ld32(sums + 4 * ch) + xp[ch]);
        }
    }
}

/* The C sums as an aligned int32 array: in place if aligned, else moved up to the next 4-byte
 * boundary inside the buffer (buf_bytes) or, when the staging column is too short for that
 * (then C <= 2), copied into small[2]. */
static const int32_t *gap_s8_align_sums(uint8_t *sums, uint32_t buf_bytes, int32_t C,
                                        int32_t *small)
{
    const uint32_t shift = (uint32_t)((4u - ((uintptr_t)sums & 3u)) & 3u);
    const uint32_t n = 4u * (uint32_t)C;
    uint32_t i;
    if (shift == 0) {
        return (const int32_t *)(const void *)sums;
    }
    if (n + shift <= buf_bytes) {
        for (i = n; i > 0; i--) { /* overlapping move up by shift bytes */
            sums[i - 1 + shift] = sums[i - 1];
        }
        return (const int32_t *)(const void *)(sums + shift);
    }
    (void)MSF_CHECK(C <= 2, "GAP sums: no room to align them");
    for (i = 0; i < 2u && i < (uint32_t)C; i++) {
        small[i] = ld32(sums + 4u * i);
    }
    return small;
}

/* In-place blocks: copy output tile row r (rows out_rows(r) of the last layer) from its slot in
 * the output ring (layers[0]'s buffer) over the input. */
static void flush_tile_row(const msf_block *b, uint8_t *obuf, uint32_t obytes,
                           const uint8_t *oring, int32_t r, uint32_t orow)
{
    const msf_range *rows = &b->layers[window_layers(b) - 1].out_rows;
    const int32_t lo = range_lo(rows, r), hi = range_hi(rows, r);
    copy_bytes(obuf, (uint32_t)lo * orow, obytes, oring,
               (uint32_t)(r % b->tile_w) * (uint32_t)b->tile_h * orow, b->layers[0].buf_bytes,
               (uint32_t)(hi - lo) * orow);
}

/* Fused column pipeline (H-cache / line buffer, optionally in place or ending in a streaming
 * GAP): per tile row, columns flow demand-driven through the layers' input rings. */
static void run_fused(const msf_block *b, const msf_mem *m)
{
    int32_t lo[MSF_MAX_BLOCK_LAYERS + 1];
    int32_t hi[MSF_MAX_BLOCK_LAYERS + 1];
    int32_t produced[MSF_MAX_BLOCK_LAYERS]; /* output columns produced by layer k this tile row */
    const int32_t n = window_layers(b);
    const int32_t esz = elem_size(b->dtype);
    const msf_layer *first = &b->layers[0];
    const msf_layer *last = &b->layers[n - 1];
    /* streaming GAP tail: the last window layer's output columns go to a one-column staging
     * view and are added to per-channel sums (both in the GAP layer's buffer); the GAP output
     * is produced once at the end */
    const msf_layer *gap = (n < b->n_layers) ? &b->layers[n] : NULL;
    uint8_t *const sums = gap ? m->arena + gap->buf_off : NULL;
    msf_view stage;
    const msf_view t_in = full_view(m, b->in_off, first->in_h, first->in_w, first->in_c);
    msf_view t_out = full_view(m, b->out_off, last->out_h, last->out_w, last->out_c);
    /* in-place output (tile_w = D > 0): tile rows through a ring, copied down D - 1 rows late */
    const int32_t d = b->tile_w;
    const uint32_t orow = (uint32_t)last->out_w * (uint32_t)last->out_c * (uint32_t)esz;
    const uint32_t obytes = orow * (uint32_t)last->out_h;
    uint8_t *const obuf = (uint8_t *)t_out.data;
    uint8_t *const oring = m->arena + first->buf_off;
    const msf_operand *const sl = slice_row(b);
    int32_t r, k;

    stage.data = NULL;
    stage.cap = 0;
    if (gap) {
        const uint32_t sb = 4u * (uint32_t)last->out_c;
        int32_t c;
        if (MSF_CHECK(gap->buf_bytes >= sb, "GAP sums larger than their buffer") ||
            MSF_CHECK(!IS_F32(b->dtype) || ((uintptr_t)sums & 3u) == 0,
                      "float GAP sums not 4-byte aligned")) {
            return;
        }
        stage.data = sums + sb;
        stage.H = last->out_h;
        stage.W = last->out_w;
        stage.C = last->out_c;
        stage.xcap = 1;
        stage.cap = (int32_t)((gap->buf_bytes - sb) / (uint32_t)esz);
        for (c = 0; c < last->out_c; c++) {
            if (IS_F32(b->dtype)) {
                ((float *)(void *)sums)[c] = 0.0f;
            } else {
                st32(sums + 4 * c, 0);
            }
        }
    }
    for (r = 0; r < b->n_tiles; r++) {
        tile_rows(b, n, r, lo, hi);
        if (gap) {
            stage.y0 = lo[n];
        }
        if (d > 0) {
            const uint32_t slot = (uint32_t)(r % d) * (uint32_t)b->tile_h * orow;
            if (MSF_CHECK(slot <= first->buf_bytes, "output ring slot outside its buffer")) {
                return;
            }
            t_out.data = oring + slot;
            t_out.y0 = lo[n];
            t_out.cap = (int32_t)((first->buf_bytes - slot) / (uint32_t)esz);
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
            if (k > 0 && produced[k - 1] < range_hi(&l->need_cols, c)) {
                k--;
                continue;
            }
            {
                msf_view vin = (k == 0) ? t_in : buf_view(m, l, lo[k], l->buf_cols, esz);
                if (k == n - 1 && gap) {
                    run_region(b->dtype, l, &vin, NULL, &stage, lo[k + 1], hi[k + 1], c, c + 1);
                    if (IS_F32(b->dtype)) {
                        msf_gap_f32_accumulate(&stage, lo[k + 1], hi[k + 1], c, c + 1,
                                               (float *)(void *)sums);
                    } else if (((uintptr_t)sums & 3u) == 0) {
                        msf_gap_s8_accumulate(&stage, lo[k + 1], hi[k + 1], c, c + 1,
                                              (int32_t *)(void *)sums);
                    } else {
                        gap_s8_accumulate_unaligned(&stage, lo[k + 1], hi[k + 1], c, sums);
                    }
                } else if (k == n - 1 && sl != NULL) {
                    msf_view st = stage_view(m, sl, last->out_h, last->out_w, last->out_c,
                                             lo[k + 1], c, c + 1);
                    run_region(b->dtype, l, &vin, NULL, &st, lo[k + 1], hi[k + 1], c, c + 1);
                    stage_flush(b->dtype, m, b->out_off, sl, &st, lo[k + 1], hi[k + 1], c, c + 1);
                } else if (k == n - 1) {
                    run_region(b->dtype, l, &vin, NULL, &t_out, lo[k + 1], hi[k + 1], c, c + 1);
                } else {
                    const msf_layer *nx = &b->layers[k + 1];
                    msf_view vout = buf_view(m, nx, lo[k + 1], nx->buf_cols, esz);
                    run_region(b->dtype, l, &vin, NULL, &vout, lo[k + 1], hi[k + 1], c, c + 1);
                }
            }
            produced[k] = c + 1;
            if (k < n - 1) {
                k++;
            }
        }
        if (d > 0 && r - d + 1 >= 0) {
            flush_tile_row(b, obuf, obytes, oring, r - d + 1, orow);
        }
    }
    if (d > 0) {
        for (r = MSF_MAX(0, b->n_tiles - d + 1); r < b->n_tiles; r++) {
            flush_tile_row(b, obuf, obytes, oring, r, orow);
        }
    }
    if (gap) {
        msf_view out = sl != NULL ? stage_view(m, sl, 1, 1, gap->out_c, 0, 0, 1)
                                  : full_view(m, b->out_off, 1, 1, gap->out_c);
        int32_t small[2];
        if (IS_F32(b->dtype)) {
            msf_gap_f32_finish((const msf_act_f32_params *)gap->params,
                               (const float *)(const void *)sums, gap->in_h * gap->in_w, &out);
        } else {
            msf_gap_s8_finish((const msf_gap_s8_params *)gap->params,
                              gap_s8_align_sums(sums, gap->buf_bytes, gap->in_c, small),
                              gap->in_h * gap->in_w, &out);
        }
        if (sl != NULL) {
            stage_flush(b->dtype, m, b->out_off, sl, &out, 0, 1, 0, 1);
        }
    }
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
    const int32_t esz = elem_size(b->dtype);
    const msf_layer *first = &b->layers[0];
    const msf_layer *last = &b->layers[n - 1];
    const msf_view t_in = full_view(m, b->in_off, first->in_h, first->in_w, first->in_c);
    msf_view t_out = full_view(m, b->out_off, last->out_h, last->out_w, last->out_c);
    const msf_operand *const sl = slice_row(b);
    int32_t r, c, k;

    for (r = 0; r < b->n_tiles; r++) {
        tile_rows(b, n, r, ylo, yhi);
        for (c = 0; c < b->n_tile_cols; c++) {
            for (k = 0; k < n; k++) {
                xlo[k + 1] = range_lo(&b->layers[k].out_cols, c);
                xhi[k + 1] = range_hi(&b->layers[k].out_cols, c);
            }
            for (k = 0; k < n; k++) {
                const msf_layer *l = &b->layers[k];
                msf_view vin = (k == 0) ? t_in
                                        : buf_view(m, l, ylo[k], MSF_MAX(1, xhi[k] - xlo[k]), esz);
                if (k == n - 1 && sl != NULL) {
                    msf_view st = stage_view(m, sl, last->out_h, last->out_w, last->out_c,
                                             ylo[k + 1], xlo[k + 1], xhi[k + 1]);
                    run_region(b->dtype, l, &vin, NULL, &st, ylo[k + 1], yhi[k + 1],
                               xlo[k + 1], xhi[k + 1]);
                    stage_flush(b->dtype, m, b->out_off, sl, &st, ylo[k + 1], yhi[k + 1],
                                xlo[k + 1], xhi[k + 1]);
                } else if (k == n - 1) {
                    run_region(b->dtype, l, &vin, NULL, &t_out, ylo[k + 1], yhi[k + 1],
                               xlo[k + 1], xhi[k + 1]);
                } else {
                    msf_view vout = buf_view(m, &b->layers[k + 1], ylo[k + 1],
                                             MSF_MAX(1, xhi[k + 1] - xlo[k + 1]), esz);
                    run_region(b->dtype, l, &vin, NULL, &vout, ylo[k + 1], yhi[k + 1],
                               xlo[k + 1], xhi[k + 1]);
                }
            }
        }
    }
}

/* In-place single layer: output rows through a ring of tile_h rows, copied down over the input
 * as soon as no later output row reads the input rows beneath them. */
static void run_inplace(const msf_block *b, const msf_mem *m)
{
    const msf_layer *l = &b->layers[0];
    const int32_t d = b->tile_h;
    const int32_t esz = elem_size(b->dtype);
    const uint32_t row_bytes = (uint32_t)l->out_w * (uint32_t)l->out_c * (uint32_t)esz;
    const uint32_t obytes = row_bytes * (uint32_t)l->out_h;
    uint8_t *buf = resolve(m, b->in_off);
    uint8_t *ring = m->arena + l->buf_off;
    const msf_view in = full_view(m, b->in_off, l->in_h, l->in_w, l->in_c);
    int32_t y;
    for (y = 0; y < l->out_h; y++) {
        const uint32_t slot = (uint32_t)(y % d) * row_bytes;
        msf_view out;
        if (MSF_CHECK(slot <= l->buf_bytes, "output ring slot outside its buffer")) {
            return;
        }
        out.data = ring + slot;
        out.H = l->out_h;
        out.W = l->out_w;
        out.C = l->out_c;
        out.y0 = y;
        out.xcap = l->out_w;
        out.cap = (int32_t)((l->buf_bytes - slot) / (uint32_t)esz);
        run_region(b->dtype, l, &in, NULL, &out, y, y + 1, 0, l->out_w);
        if (y - d + 1 >= 0) {
            const int32_t r = y - d + 1;
            copy_bytes(buf, (uint32_t)r * row_bytes, obytes, ring, (uint32_t)(r % d) * row_bytes,
                       l->buf_bytes, row_bytes);
        }
    }
    for (y = MSF_MAX(0, l->out_h - d + 1); y < l->out_h; y++) {
        copy_bytes(buf, (uint32_t)y * row_bytes, obytes, ring, (uint32_t)(y % d) * row_bytes,
                   l->buf_bytes, row_bytes);
    }
}

/* -- graph ops --------------------------------------------------------------------------------- */

static msf_view operand_view(const msf_mem *m, const msf_operand *o)
{
    msf_view v;
    if (o->data != NULL) {
        v.data = (void *)(uintptr_t)o->data; /* constant: read only, never written through */
        v.H = o->h;
        v.W = o->w;
        v.C = o->c;
        v.y0 = 0;
        v.xcap = o->w;
        v.cap = o->h * o->w * o->c;
        return v;
    }
    return full_view(m, o->off, o->h, o->w, o->c);
}

/* An unfused graph op (CONCAT, CONCAT_W, RESHAPE, SLICE, SHUFFLE, ACT, PRELU, MUL, RESIZE,
 * CONVT) over output rows [oy0, oy1) of out (the whole output, or one staged row); its
 * inputs are the first n_in operands. */
static void graph_op_rows(const msf_block *b, const msf_mem *m, msf_view out, int32_t n_in,
                          int32_t oy0, int32_t oy1)
{
    const msf_layer *l = &b->layers[0];
    msf_view in, in2;
    int32_t k;
    if (MSF_CHECK(b->operands != NULL && n_in >= 1, "graph op without operands")) {
        return;
    }
    in = operand_view(m, &b->operands[0]);
    if (l->op == MSF_OP_CONCAT) {
        msf_move_params p = *(const msf_move_params *)l->params;
        p.c_off = 0;
        for (k = 0; k < n_in; k++) {
            msf_view part;
            if (b->operands[k].h == MSF_OPERAND_IN_SLICE) {
                p.c_off += b->operands[k].c;   /* its producer wrote it into its slice */
                continue;
            }
            part = operand_view(m, &b->operands[k]);
            msf_copy_to_channels(&p, &part, &out, oy0, oy1, 0, l->out_w);
            p.c_off += part.C;
        }
        return;
    }
    if (l->op == MSF_OP_CONCAT_W) {
        msf_move_params p = *(const msf_move_params *)l->params;
        p.x_off = 0;
        for (k = 0; k < n_in; k++) {
            msf_view part = operand_view(m, &b->operands[k]);
            msf_copy_to_columns(&p, &part, &out, 0, part.H, 0, part.W);
            p.x_off += part.W;
        }
        return;
    }
    if (l->op == MSF_OP_RESHAPE) {
        const uint32_t n = (uint32_t)(l->out_h * l->out_w * l->out_c) *
                           (uint32_t)elem_size(b->dtype);
        if (in.data != out.data) {
            copy_bytes((uint8_t *)out.data, 0u, (uint32_t)out.cap * (uint32_t)elem_size(b->dtype),
                       (const uint8_t *)in.data, 0u,
                       (uint32_t)in.cap * (uint32_t)elem_size(b->dtype), n);
        }
        return;
    }
    if (l->op == MSF_OP_SLICE) {
        msf_copy_from_channels((const msf_move_params *)l->params, &in, &out, oy0, oy1, 0,
                               l->out_w);
        return;
    }
    if (l->op == MSF_OP_SHUFFLE) {
        msf_channel_shuffle((const msf_move_params *)l->params, &in, &out, oy0, oy1, 0,
                            l->out_w);
        return;
    }
    if (l->op == MSF_OP_ACT || l->op == MSF_OP_PRELU) {
        if (IS_F32(b->dtype)) {
            msf_unary_f32((const msf_unary_f32_params *)l->params, &in, &out, oy0, oy1, 0,
                          l->out_w);
        } else if (l->op == MSF_OP_ACT) {
            msf_lut_s8((const msf_lut_s8_params *)l->params, &in, &out, oy0, oy1, 0,
                       l->out_w);
        } else {
            msf_prelu_s8((const msf_prelu_s8_params *)l->params, &in, &out, oy0, oy1, 0,
                         l->out_w);
        }
        return;
    }
    if (l->op == MSF_OP_RESIZE) {
        if (IS_F32(b->dtype)) {
            msf_resize_f32((const msf_resize_params *)l->params, &in, &out, oy0, oy1, 0,
                           l->out_w);
        } else {
            msf_resize_s8((const msf_resize_params *)l->params, &in, &out, oy0, oy1, 0,
                          l->out_w);
        }
        return;
    }
    if (l->op == MSF_OP_CONVT) {
        if (IS_F32(b->dtype)) {
            msf_convt_f32((const msf_convt_f32_params *)l->params, &in, &out, oy0, oy1, 0,
                          l->out_w);
        } else {
            msf_convt_s8((const msf_convt_s8_params *)l->params, &in, &out, oy0, oy1, 0,
                         l->out_w);
        }
        return;
    }
    if (l->op == MSF_OP_MUL) {
        if (MSF_CHECK(n_in == 2, "multiply without its factor")) {
            return;
        }
        in2 = operand_view(m, &b->operands[1]);
        if (IS_F32(b->dtype)) {
            msf_binary_f32((const msf_binary_f32_params *)l->params, &in, &in2, &out, oy0,
                           oy1, 0, l->out_w);
        } else {
            msf_mul_s8((const msf_mul_s8_params *)l->params, &in, &in2, &out, oy0, oy1, 0,
                       l->out_w);
        }
    }
}

/* An unfused graph op over its whole output; a concat slice's op one output row at a time
 * through its staging buffer. */
static void run_graph_op(const msf_block *b, const msf_mem *m)
{
    const msf_layer *l = &b->layers[0];
    const msf_operand *const sl = slice_row(b);
    int32_t y;
    if (sl == NULL) {
        graph_op_rows(b, m, full_view(m, b->out_off, l->out_h, l->out_w, l->out_c),
                      b->n_operands, 0, l->out_h);
        return;
    }
    for (y = 0; y < l->out_h; y++) {
        msf_view st = stage_view(m, sl, l->out_h, l->out_w, l->out_c, y, 0, l->out_w);
        graph_op_rows(b, m, st, b->n_operands - 1, y, y + 1);
        stage_flush(b->dtype, m, b->out_off, sl, &st, y, y + 1, 0, l->out_w);
    }
}

void msf_run_block(const msf_block *b, uint8_t *arena)
{
    msf_mem m;
    int k;
    m.arena = arena;
    m.ext_in = NULL;
    m.ext_out = NULL;
    for (k = 0; k < MSF_MAX_OUTPUTS; k++) {
        m.ext_outs[k] = NULL;
    }
    msf_run_block_mem(b, &m);
}

void msf_run_block_mem(const msf_block *b, const msf_mem *m)
{
    if (b->mode == MSF_MODE_INPLACE) {
        run_inplace(b, m);
        return;
    }
    if (b->n_layers == 1 && b->layers[0].op >= MSF_OP_CONCAT) {
        run_graph_op(b, m);
        return;
    }
    if (b->n_layers == 1) {
        const msf_layer *l = &b->layers[0];
        const msf_operand *const sl = slice_row(b);
        msf_view in = full_view(m, b->in_off, l->in_h, l->in_w, l->in_c);
        msf_view out = full_view(m, b->out_off, l->out_h, l->out_w, l->out_c);
        msf_view in2 = full_view(m, b->in2_off, l->in_h, l->in_w, l->in_c);
        const msf_view *const pin2 = (l->op == MSF_OP_ADD) ? &in2 : NULL;
        int32_t y;
        if (sl == NULL) {
            run_region(b->dtype, l, &in, pin2, &out, 0, l->out_h, 0, l->out_w);
            return;
        }
        for (y = 0; y < l->out_h; y++) {   /* a concat slice: row by row through the stage */
            msf_view st = stage_view(m, sl, l->out_h, l->out_w, l->out_c, y, 0, l->out_w);
            run_region(b->dtype, l, &in, pin2, &st, y, y + 1, 0, l->out_w);
            stage_flush(b->dtype, m, b->out_off, sl, &st, y, y + 1, 0, l->out_w);
        }
        return;
    }
    if (b->mode == MSF_MODE_PATCHES) {
        run_patches(b, m);
    } else {
        run_fused(b, m);
    }
}

/* The boundary before block k (k == n: after the last block): an empty out-of-line function
 * whose entry the QEMU instruction-count plugin records (``mark=``), so a run measures the
 * instructions of every block (msfopt run --json: block_instructions).  About four instructions
 * per block; it does nothing else. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
void msf_block_boundary(int32_t k)
{
    (void)k;
#if defined(__GNUC__)
    __asm__ __volatile__("" ::: "memory");   /* not removable: the plugin needs the call */
#endif
}

void msf_model_run_blocks(const msf_block *blocks, int n, uint8_t *arena)
{
    int i;
    for (i = 0; i < n; i++) {
        msf_block_boundary(i);
        msf_run_block(&blocks[i], arena);
    }
    msf_block_boundary(n);
}

/* -- validation ------------------------------------------------------------------------------ */

/* Range rg over tile indices 0..n-1 stays inside [0, size] with lo < hi; its largest extent is
 * stored in *extent.  Returns 0 or -1. */
static int32_t check_range(const msf_range *rg, int32_t n, int32_t size, int32_t *extent)
{
    int32_t t;
    *extent = 0;
    if (rg->step < 0 || rg->lo_sub < 0 || rg->hi_max > size) {
        return -1;
    }
    for (t = 0; t < n; t++) {
        const int32_t lo = range_lo(rg, t), hi = range_hi(rg, t);
        if (lo >= hi || hi > size) {
            return -1;
        }
        *extent = MSF_MAX(*extent, hi - lo);
    }
    return 0;
}

/* The output range of a block's last layer partitions its rows (or columns) into n tiles. */
static int32_t check_partition(const msf_range *rg, int32_t n, int32_t size)
{
    int32_t t;
    if (range_lo(rg, 0) != 0 || range_hi(rg, n - 1) != size) {
        return -1;
    }
    for (t = 0; t + 1 < n; t++) {
        if (range_hi(rg, t) != range_lo(rg, t + 1)) {
            return -1;
        }
    }
    return 0;
}

/* buffer of layer l holds rows x cols x ch elements */
static int32_t check_buf(const msf_layer *l, int32_t rows, int32_t cols, int32_t ch, int32_t esz,
                         uint32_t extra)
{
    uint64_t need = (uint64_t)rows * (uint64_t)cols * (uint64_t)ch * (uint64_t)esz + extra;
    return (l->buf_rows >= rows && l->buf_cols >= cols && (uint64_t)l->buf_bytes >= need) ? 0 : -1;
}

static int32_t validate_geometry(const msf_block *b)
{
    const int32_t esz = elem_size(b->dtype);
    int32_t k, ext, xext, n;
    if (b->mode == MSF_MODE_INPLACE) {
        const msf_layer *l = &b->layers[0];
        if (b->n_layers != 1 || b->tile_h < 1 || b->n_tiles != l->out_h || !is_window_op(l->op) ||
            b->in_off != b->out_off) {
            return -10;
        }
        return check_buf(l, b->tile_h, l->out_w, l->out_c, esz, 0) ? -11 : 0;
    }
    if (b->n_layers == 1) {
        return 0;
    }
    n = window_layers(b);
    if (b->n_tiles < 1 || (b->mode == MSF_MODE_PATCHES && (b->n_tile_cols < 1 || n != b->n_layers))) {
        return -10;
    }
    if (check_partition(&b->layers[n - 1].out_rows, b->n_tiles, b->layers[n - 1].out_h) ||
        (b->mode == MSF_MODE_PATCHES &&
         check_partition(&b->layers[n - 1].out_cols, b->n_tile_cols, b->layers[n - 1].out_w))) {
        return -12;
    }
    for (k = 0; k < n; k++) {
        const msf_layer *l = &b->layers[k];
        if (check_range(&l->out_rows, b->n_tiles, l->out_h, &ext)) {
            return -12;
        }
        if (b->mode == MSF_MODE_PATCHES) {
            if (check_range(&l->out_cols, b->n_tile_cols, l->out_w, &xext)) {
                return -12;
            }
            if (k + 1 < n && check_buf(&b->layers[k + 1], ext, xext, l->out_c, esz, 0)) {
                return -11;
            }
        } else {
            if (k + 1 < n) {
                const msf_layer *nx = &b->layers[k + 1];
                int32_t need;
                if (check_range(&nx->need_cols, nx->out_w, nx->in_w, &need) ||
                    nx->buf_cols < 1 || check_buf(nx, ext, nx->buf_cols, l->out_c, esz, 0)) {
                    return -11;
                }
            }
            if (k == n - 1 && b->tile_w > 0 &&
                (b->n_tiles <= b->tile_w || b->out_off != b->in_off ||
                 check_buf(&b->layers[0], b->tile_w * b->tile_h, l->out_w, l->out_c, esz, 0))) {
                return -11;
            }
            if (k == n - 1 && n < b->n_layers &&
                check_buf(&b->layers[n], ext, 1, l->out_c, esz, 4u * (uint32_t)l->out_c)) {
                return -11;
            }
        }
    }
    return 0;
}

int32_t msf_block_validate(const msf_block *b)
{
    int32_t k;
    if (b == NULL || b->layers == NULL || b->n_layers < 1) {
        return -1;
    }
    if (!((b->dtype == MSF_DT_S8 && MSF_HAS_S8) || (b->dtype == MSF_DT_F32 && MSF_HAS_F32))) {
        return -2;   /* unknown, or an element type this build has no kernels for */
    }
    for (k = 0; k < b->n_layers; k++) {
        const msf_layer *l = &b->layers[k];
        if (l->params == NULL || l->op < MSF_OP_CONV || l->op > MSF_OP_LAST) {
            return -3;
        }
        if (l->op >= MSF_OP_CONCAT && b->n_layers == 1 &&
            (b->operands == NULL || b->n_operands < 1)) {
            return -3;   /* an unfused graph op reads its operands */
        }
        if (l->op >= MSF_OP_CONCAT && b->n_layers != 1 && !is_pipeline_op(l->op)) {
            return -3;   /* only activations run inside a fused block */
        }
        if (l->in_h < 1 || l->in_w < 1 || l->in_c < 1 || l->out_h < 1 || l->out_w < 1 ||
            l->out_c < 1) {
            return -4;
        }
        if (is_window_op(l->op)) {
            const msf_window *w = layer_win(l);
            /* the rows / columns the (dilated) window spans */
            const int32_t ekh = (w->kh - 1) * (w->dil_h > 1 ? w->dil_h : 1) + 1;
            const int32_t ekw = (w->kw - 1) * (w->dil_w > 1 ? w->dil_w : 1) + 1;
            if (w->kh < 1 || w->kw < 1 || w->sh < 1 || w->sw < 1 || w->pad_top < 0 ||
                w->pad_left < 0 || w->pad_bottom < 0 || w->pad_right < 0 ||
                w->pad_top >= ekh || w->pad_bottom >= ekh || w->pad_left >= ekw ||
                w->pad_right >= ekw || w->dil_h < 0 || w->dil_w < 0 ||
                ((w->dil_h > 1 || w->dil_w > 1) && l->op != MSF_OP_CONV && l->op != MSF_OP_DW)) {
                return -5;
            }
            if ((l->in_h + w->pad_top + w->pad_bottom - ekh) / w->sh + 1 != l->out_h ||
                (l->in_w + w->pad_left + w->pad_right - ekw) / w->sw + 1 != l->out_w) {
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
            if (!is_pipeline_op(l->op)) {
                return -8;
            }
        }
        for (k = 1; k < b->n_layers; k++) {
            const msf_layer *l = &b->layers[k];
            if (l->in_h != b->layers[k - 1].out_h || l->in_w != b->layers[k - 1].out_w ||
                l->in_c != b->layers[k - 1].out_c) {
                return -9;
            }
        }
    }
    return validate_geometry(b);
}
