/* MCU test driver for generated models: runs the model on the input embedded in msf_testdata.h
 * (in flash), compares with the embedded expected output and reports through plat_*:
 *   mismatches=<n>  arena_bytes=<MSF_ARENA_BYTES>  checksum=<FNV-1a of the output>
 * then exits 0 (bit-exact) or 1 (mismatch); the platform adds stack_hwm_bytes=.
 * Instructions are counted between plat_count_begin() and plat_count_end(). */
#include "msf_model.h"
#include "msf_testdata.h"
#include "plat.h"

#if MSF_OUTPUT_IN_ARENA && MSF_N_OUTPUTS == 1
/* --io input-external: the output stays in the arena; no caller buffer is needed */
#define OUT_PTR msf_model_output()
#define OUT_ARG 0
#else
static msf_io_t out_buf[MSF_OUTPUT_ELEMS];
#define OUT_PTR out_buf
#define OUT_ARG out_buf
#endif

int main(void)
{
    uint32_t i, mismatches = 0, h = 2166136261u;
    const msf_io_t *out;
    const uint8_t *bytes;
    plat_count_begin();
    msf_model_run(msf_test_input, OUT_ARG);
    plat_count_end();
    out = OUT_PTR;
    bytes = (const uint8_t *)out;
    for (i = 0; i < (uint32_t)MSF_OUTPUT_ELEMS; i++) {
        if (out[i] != msf_test_expected[i]) {
            mismatches++;
        }
    }
    for (i = 0; i < (uint32_t)(MSF_OUTPUT_ELEMS * sizeof(msf_io_t)); i++) {
        h = (h ^ bytes[i]) * 16777619u;
    }
    plat_report("mismatches=", mismatches);
    plat_report("arena_bytes=", (uint32_t)MSF_ARENA_BYTES);
    plat_report("checksum=", h);
    plat_exit(mismatches == 0u ? 0 : 1);
    return 0;
}
