/* test_rqf.c - host test (ASan + UBSan) of the lean fixed-point requantisation's DSP variant
 * in portable C (msf_s8_requant.h, msf_rqf_model): rqf_diff.c's 2 M cases (and 2 M of the
 * code generator's records' regimes) against the reference msf_requant_s8 + clamp, every
 * corner class run. */
#include "msf_test.h"
#include "rqf_diff.c"

int main(void)
{
    CHECK_EQ_INT(rqfd_run(7u, 2000000u), 0);
    CHECK(rqfd_count[RQFD_DIV_TIE] > 100000u);
    CHECK(rqfd_count[RQFD_SRDHM_TIE] > 100000u);
    CHECK(rqfd_count[RQFD_SAT] > 100000u);
    CHECK(rqfd_count[RQFD_ENDS] > 100000u);
    CHECK(rqfd_count[RQFD_BOUNDED] == 2000000u);
    TEST_DONE();
}
