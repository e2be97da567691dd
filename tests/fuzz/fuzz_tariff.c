/*
 * Tariff loading and fees: any bytes either load with no problem reported or are refused with at
 * least one message; a loaded tariff computes fees for a few stays without crashing, and the fee
 * with an explanation equals the fee without.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmn/diag.h"
#include "cmn/tariff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cmn_diag_t d;
    cmn_tariff_t *t = NULL;
    cmn_diag_init(&d);
    int rc = cmn_tariff_load_text("fuzz.json", (const char *)data, size, &t, &d);
    if ((rc == 0) != (d.n == 0) || (rc == 0) != (t != NULL))
        abort();
    if (t != NULL) {
        static const char *const classes[] = {NULL, "small", "large", "new_energy"};
        static const int64_t stays[] = {0, 59, 900, 901, 3600, 86399, 86400 * 3 + 17};
        for (size_t c = 0; c < 4; c++) {
            for (size_t s = 0; s < sizeof stays / sizeof *stays; s++) {
                cmn_fee_t a, b;
                int64_t entry = 1774740000; /* near a DST change in several zones */
                int r1 = cmn_tariff_fee(t, classes[c], entry, entry + stays[s], 0, &a);
                int r2 = cmn_tariff_fee(t, classes[c], entry, entry + stays[s], CMN_FEE_EXPLAIN, &b);
                if (r1 != r2 || (r1 == 0 && (a.amount != b.amount || a.amount < 0)))
                    abort();
                json_t *j = r2 == 0 ? cmn_fee_to_json(t, &b) : NULL;
                json_decref(j);
                cmn_fee_dispose(&a);
                cmn_fee_dispose(&b);
            }
        }
        cmn_tariff_free(t);
    }
    cmn_diag_dispose(&d);
    return 0;
}
