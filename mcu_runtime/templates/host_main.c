/* Host test driver for generated models: msf_host IN.bin OUT.bin [REPEAT]
 * Reads MSF_INPUT_ELEMS raw elements, runs the model, writes MSF_OUTPUT_ELEMS raw elements.
 * Exit status: 0 ok, 2 I/O error, 3 arena guard bytes damaged, 4 bounds check failed
 * (-DMSF_CHECK_BOUNDS builds). */
#include <stdio.h>
#include <stdlib.h>

#include "msf_model.h"
#ifdef MSF_CHECK_BOUNDS
#include "msf_runtime.h"

static void bounds_failed(const char *what)
{
    fprintf(stderr, "msf bounds check failed: %s\n", what);
    exit(4);
}
#endif

static msf_io_t in_buf[MSF_INPUT_ELEMS];
static msf_io_t out_buf[MSF_OUTPUT_ELEMS];

int main(int argc, char **argv)
{
    FILE *f;
    int rep, i;
    if (argc < 3) {
        fprintf(stderr, "usage: %s IN.bin OUT.bin [REPEAT]\n", argv[0]);
        return 2;
    }
    rep = argc > 3 ? atoi(argv[3]) : 1;
#ifdef MSF_CHECK_BOUNDS
    msf_set_bounds_hook(bounds_failed);
#endif
    f = fopen(argv[1], "rb");
    if (!f || fread(in_buf, sizeof(msf_io_t), MSF_INPUT_ELEMS, f) != MSF_INPUT_ELEMS) {
        fprintf(stderr, "cannot read %d input elements from %s\n", MSF_INPUT_ELEMS, argv[1]);
        return 2;
    }
    fclose(f);
    for (i = 0; i < rep; i++) {
        msf_model_run(in_buf, out_buf);
    }
    if (!msf_model_arena_intact()) {
        fprintf(stderr, "arena guard bytes damaged\n");
        return 3;
    }
    f = fopen(argv[2], "wb");
    if (!f || fwrite(out_buf, sizeof(msf_io_t), MSF_OUTPUT_ELEMS, f) != MSF_OUTPUT_ELEMS) {
        fprintf(stderr, "cannot write %s\n", argv[2]);
        return 2;
    }
    fclose(f);
    return 0;
}
