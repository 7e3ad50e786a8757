/* conv_test.c: portable self-test for the target harness.
 * An int8 3x3 convolution (HWC, valid padding) with int32 accumulation, int64
 * fixed-point requantisation and an integer division, checksummed with FNV-1a.
 * Integer only, so it runs on every target (including xtensa-lx106).
 * Defines: CONV_EXIT_CODE (default 0) - value returned by main();
 *          CONV_USE_PLAT_EXIT       - leave through plat_exit() instead of returning;
 *          CONV_FLOAT               - also run a float 3x3 conv and report the bit pattern of
 *                                     its sum (checks -ffp-contract=off determinism; not on
 *                                     integer-only targets such as xtensa-lx106). */
#include <stdint.h>
#include "plat.h"

#ifndef CONV_EXIT_CODE
#define CONV_EXIT_CODE 0
#endif
#define H 12
#define W 12
#define CI 4
#define CO 8
#define OH (H - 2)
#define OW (W - 2)

static int8_t input[H * W * CI];
static int8_t weights[CO * 3 * 3 * CI];
static int32_t bias[CO];
static int8_t output[OH * OW * CO];

static uint32_t lcg_state = 12345u;
static int8_t lcg_i8(void) {
  lcg_state = lcg_state * 1664525u + 1013904223u;
  return (int8_t)(lcg_state >> 24);
}

__attribute__((noinline)) void conv3x3(const int8_t *in, const int8_t *wt, const int32_t *b,
                                       int8_t *out, int32_t mult, int shift, int32_t zp_div) {
  for (int y = 0; y < OH; y++)
    for (int x = 0; x < OW; x++)
      for (int co = 0; co < CO; co++) {
        int32_t acc = b[co];
        for (int ky = 0; ky < 3; ky++)
          for (int kx = 0; kx < 3; kx++) {
            const int8_t *ip = in + ((y + ky) * W + (x + kx)) * CI;
            const int8_t *wp = wt + ((co * 3 + ky) * 3 + kx) * CI;
            for (int ci = 0; ci < CI; ci++) acc += (int32_t)ip[ci] * (int32_t)wp[ci];
          }
        int64_t r = ((int64_t)acc * mult + ((int64_t)1 << (shift - 1))) >> shift;
        r += acc / zp_div; /* exercises 32-bit signed division */
        if (r > 127) r = 127;
        if (r < -128) r = -128;
        out[(y * OW + x) * CO + co] = (int8_t)r;
      }
}

static uint32_t fnv1a(const uint8_t *p, uint32_t n) {
  uint32_t h = 2166136261u;
  for (uint32_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 16777619u;
  }
  return h;
}

#ifdef CONV_FLOAT
static float fout[OH * OW];
__attribute__((noinline)) static uint32_t conv3x3_f32(const int8_t *in, const int8_t *wt) {
  float sum = 0.0f;
  for (int y = 0; y < OH; y++)
    for (int x = 0; x < OW; x++) {
      float acc = 0.1f;
      for (int ky = 0; ky < 3; ky++)
        for (int kx = 0; kx < 3; kx++)
          for (int ci = 0; ci < CI; ci++)
            acc = acc * 0.999f + (float)in[((y + ky) * W + (x + kx)) * CI + ci] *
                                     ((float)wt[(ky * 3 + kx) * CI + ci] * 0.0078125f);
      fout[y * OW + x] = acc;
      sum += acc / 3.0f;
    }
  union { float f; uint32_t u; } c = {sum};
  return c.u;
}
#endif

int main(void) {
  for (uint32_t i = 0; i < sizeof input; i++) input[i] = lcg_i8();
  for (uint32_t i = 0; i < sizeof weights; i++) weights[i] = lcg_i8();
  for (int i = 0; i < CO; i++) bias[i] = (int32_t)lcg_i8() * 37;
  volatile int32_t div = -7; /* keep the division a real runtime division */
  plat_count_begin();
  conv3x3(input, weights, bias, output, 1518500250, 38, div);
  plat_count_end();
  plat_report("checksum=", fnv1a((const uint8_t *)output, sizeof output));
  plat_report("macs=", (uint32_t)OH * OW * CO * 9 * CI);
#ifdef CONV_FLOAT
  plat_report("float_bits=", conv3x3_f32(input, weights));
#endif
  plat_puts("done\n");
#ifdef CONV_USE_PLAT_EXIT
  plat_exit(CONV_EXIT_CODE);
#else
  return CONV_EXIT_CODE;
#endif
}
