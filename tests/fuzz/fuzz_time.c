/* RFC 3339 and date parsing: never crash, and whatever parses formats back to the same instant. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmn/time.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cmn_instant_t t, back;
    int64_t days;
    char s[CMN_RFC3339_MAX];
    if (cmn_rfc3339_parse((const char *)data, size, &t) == 0) {
        int n = cmn_rfc3339_format(t, 0, 1, s, sizeof s);
        if (n <= 0 || cmn_rfc3339_parse(s, (size_t)n, &back) != 0 || back != t)
            abort();
    }
    if (cmn_date_parse((const char *)data, size, &days) == 0) {
        int n = cmn_date_format(days, s, sizeof s);
        int64_t again;
        if (n != 10 || cmn_date_parse(s, 10, &again) != 0 || again != days)
            abort();
    }
    return 0;
}
