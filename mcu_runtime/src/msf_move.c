/* msf_move.c - dtype-generic channel data movement (concat / split / slice / shuffle / pad)
 * through msf_view regions. */
#include "msf_internal.h"

/* n elements from src to dst (esize 1: int8_t, else float: values are never computed with, a
 * float load / store keeps the bits) */
static void move_elems(int32_t esize, void *dst, const void *src, int32_t n)
{
    int32_t c;
    if (esize == 1) {
        int8_t *d = (int8_t *)dst;
        const int8_t *s = (const int8_t *)src;
        for (c = 0; c < n; c++) {
            d[c] = s[c];
        }
    } else {
        float *d = (float *)dst;
        const float *s = (const float *)src;
        for (c = 0; c < n; c++) {
            d[c] = s[c];
        }
    }
}

/* address of element (y, x, c) of a view */
static void *elem_at(const msf_view *v, int32_t esize, int32_t y, int32_t x, int32_t c)
{
    return (uint8_t *)v->data + (size_t)(msf_vofs(v, y, x) + c) * (size_t)esize;
}

void msf_copy_to_channels(const msf_move_params *p, const msf_view *in, msf_view *out,
                          int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1)
{
    const int32_t es = p->esize, n = in->C, off = p->c_off;
    int32_t oy, ox;
    if (MSF_CHECK(off >= 0 && off + n <= out->C, "copy_to_channels: channels outside out")) {
        return;
    }
    for (oy = oy0; oy < oy1; oy++) {
        for (ox = ox0; ox < ox1; ox++) {
            move_elems(es, elem_at(out, es, oy, ox, off), elem_at(in, es, oy, ox, 0), n);
        }
    }
}

void msf_copy_to_columns(const msf_move_params *p, const msf_view *in, msf_view *out,
                         int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1)
{
    const int32_t es = p->esize, off = p->x_off;
    int32_t oy, ox;
    if (MSF_CHECK(off >= 0 && off + in->W <= out->W && in->C == out->C && in->H == out->H,
                  "copy_to_columns: part outside out")) {
        return;
    }
    for (oy = oy0; oy < oy1; oy++) {
        for (ox = ox0; ox < ox1; ox++) {
            move_elems(es, elem_at(out, es, oy, ox + off, 0), elem_at(in, es, oy, ox, 0), in->C);
        }
    }
}

void msf_copy_from_channels(const msf_move_params *p, const msf_view *in, msf_view *out,
                            int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1)
{
    const int32_t es = p->esize, n = out->C, off = p->c_off;
    int32_t oy, ox;
    if (MSF_CHECK(off >= 0 && off + n <= in->C, "copy_from_channels: channels outside in")) {
        return;
    }
    for (oy = oy0; oy < oy1; oy++) {
        for (ox = ox0; ox < ox1; ox++) {
            move_elems(es, elem_at(out, es, oy, ox, 0), elem_at(in, es, oy, ox, off), n);
        }
    }
}

void msf_channel_shuffle(const msf_move_params *p, const msf_view *in, msf_view *out,
                         int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1)
{
    const int32_t es = p->esize, C = out->C, g = p->groups;
    int32_t oy, ox, i, j, cg;
    if (MSF_CHECK(g > 0 && in->C == C && C % g == 0, "channel_shuffle: bad groups")) {
        return;
    }
    cg = C / g;
    for (oy = oy0; oy < oy1; oy++) {
        for (ox = ox0; ox < ox1; ox++) {
            if (es == 1) {
                const int8_t *s = (const int8_t *)elem_at(in, es, oy, ox, 0);
                int8_t *d = (int8_t *)elem_at(out, es, oy, ox, 0);
                for (i = 0; i < g; i++) {
                    for (j = 0; j < cg; j++) {
                        d[j * g + i] = s[i * cg + j];
                    }
                }
            } else {
                const float *s = (const float *)elem_at(in, es, oy, ox, 0);
                float *d = (float *)elem_at(out, es, oy, ox, 0);
                for (i = 0; i < g; i++) {
                    for (j = 0; j < cg; j++) {
                        d[j * g + i] = s[i * cg + j];
                    }
                }
            }
        }
    }
}

void msf_pad_channels(const msf_move_params *p, const msf_view *in, msf_view *out,
                      int32_t oy0, int32_t oy1, int32_t ox0, int32_t ox1)
{
    const int32_t es = p->esize, n = in->C, off = p->c_off, C = out->C;
    int32_t oy, ox, c;
    union {
        float f;
        uint32_t u;
    } pad;
    const int32_t low = (int32_t)(p->pad_bits & 0xFFu);
    const int8_t pad8 = (int8_t)(low >= 128 ? low - 256 : low);
    pad.u = p->pad_bits;
    if (MSF_CHECK(off >= 0 && off + n <= C, "pad_channels: channels outside out")) {
        return;
    }
    for (oy = oy0; oy < oy1; oy++) {
        for (ox = ox0; ox < ox1; ox++) {
            void *d = elem_at(out, es, oy, ox, 0);
            if (es == 1) {
                int8_t *d8 = (int8_t *)d;
                for (c = 0; c < off; c++) {
                    d8[c] = pad8;
                }
                for (c = off + n; c < C; c++) {
                    d8[c] = pad8;
                }
            } else {
                float *df = (float *)d;
                for (c = 0; c < off; c++) {
                    df[c] = pad.f;
                }
                for (c = off + n; c < C; c++) {
                    df[c] = pad.f;
                }
            }
            move_elems(es, elem_at(out, es, oy, ox, off), elem_at(in, es, oy, ox, 0), n);
        }
    }
}
