/* Unit test: msf_softmax_s8 (TFLite Micro's int8 softmax) against the TFLite Micro interpreter.
 *
 * The expected outputs were produced by the TFLite Micro interpreter (python package
 * tflite-micro) running one-op int8 SOFTMAX models (output scale 1/256, zero point -128):
 * tests/gen_softmax_vectors.py prints them; nothing here comes from msfopt's softmax code.
 *
 * The kernel parameters are derived by hand from TFLM's CalculateSoftmaxParams for beta = 1 and
 * an input scale s = 2^-k (so every step is exact):
 *   real = beta * s * 2^(31 - 5) = 2^(26 - k);  QuantizeMultiplier(2^(26 - k)) = (2^30, 27 - k)
 *   input_multiplier = 2^30, input_left_shift = 27 - k,
 *   diff_min = -floor((2^5 - 1) * 2^26 / 2^(27 - k)) = -31 * 2^(k - 1).
 */
#include "msf_test.h"

/* s = 1/16 (k = 4): left shift 23, diff_min -248 */
static const int8_t s16_x[40] = {
    0, 16, 32, -16, -128, 127, 100, 90, 80, 70,
    5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
    127, -128, -128, -128, -128, -128, -128, -128, -128, -128,
    127, -120, -121, -122, 0, 0, -1, 1, 126, 127
};
static const int8_t s16_want[40] = {
    -128, -128, -128, -128, -128, 59, -93, -109, -118, -123,
    -102, -102, -102, -102, -102, -102, -102, -102, -102, -102,
    127, -128, -128, -128, -128, -128, -128, -128, -128, -128,
    -41, -128, -128, -128, -128, -128, -128, -128, -46, -41
};

/* s = 1/4 (k = 2): left shift 25, diff_min -62 */
static const int8_t s4_x[12] = {
    3, 1, -2,
    0, 0, 0,
    -128, 127, 60,
    10, 9, 8
};
static const int8_t s4_want[12] = {
    7, -46, -89,
    -43, -43, -43,
    -128, 127, -128,
    -21, -44, -63
};

/* s = 1/2 (k = 1): left shift 26, diff_min -31 */
static const int8_t s2_x[16] = {
    1, 2, 3, 4, 5, 6, 7, 8,
    -96, -97, -128, -65, -66, -64, -80, -128
};
static const int8_t s2_want[16] = {
    -125, -123, -120, -114, -105, -90, -66, -25,
    -128, -128, -128, -49, -80, 2, -128, -128
};

static void check_case(const char *name, int32_t k, const int8_t *x, const int8_t *want,
                       int32_t rows, int32_t depth)
{
    msf_softmax_s8_params p;
    int8_t y[64], inplace[64];
    int32_t i;

    p.input_multiplier = (int32_t)1 << 30;
    p.input_left_shift = 27 - k;
    p.diff_min = -31 * ((int32_t)1 << (k - 1));
    msf_softmax_s8(&p, x, y, rows, depth);
    for (i = 0; i < rows * depth; i++) {
        if (y[i] != want[i]) {
            printf("FAIL %s: element %d (row %d) = %d, TFLM %d\n", name, (int)i,
                   (int)(i / depth), (int)y[i], (int)want[i]);
            msf_test_failures++;
        }
    }
    /* in place (the generated code runs it on the output tensor) gives the same bytes */
    memcpy(inplace, x, (size_t)(rows * depth));
    msf_softmax_s8(&p, inplace, inplace, rows, depth);
    CHECK(memcmp(inplace, y, (size_t)(rows * depth)) == 0);
}

int main(void)
{
    check_case("s16", 4, s16_x, s16_want, 4, 10);
    check_case("s4", 2, s4_x, s4_want, 4, 3);
    check_case("s2", 1, s2_x, s2_want, 2, 8);
    TEST_DONE();
}
