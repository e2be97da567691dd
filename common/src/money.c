#include "cmn/money.h"

#include <stdio.h>
#include <string.h>
#include <unicode/ucurr.h>
#include <unicode/ustring.h>

#include "cmn/err.h"

int cmn_currency_check(const char *code, int *digits)
{
    UChar ucode[4];
    UErrorCode st = U_ZERO_ERROR;

    if (code == NULL || strlen(code) != 3)
        return CMN_EINVAL;
    for (int i = 0; i < 3; i++) {
        if (code[i] < 'A' || code[i] > 'Z')
            return CMN_EINVAL;
        ucode[i] = (UChar)code[i];
    }
    ucode[3] = 0;
    /* Any date: a currency withdrawn since (DEM) is still a code, but refuse ones ICU never knew. */
    if (!ucurr_isAvailable(ucode, U_DATE_MIN, U_DATE_MAX, &st) || U_FAILURE(st))
        return CMN_EINVAL;
    int32_t d = ucurr_getDefaultFractionDigits(ucode, &st);
    if (U_FAILURE(st) || d < 0 || d > 4)
        return CMN_EINVAL;
    *digits = d;
    return 0;
}

int cmn_money_format(int64_t amount, int digits, char *out, size_t outsz)
{
    static const int64_t pow10[] = {1, 10, 100, 1000, 10000};
    if (digits < 0 || digits > 4)
        digits = 2;
    const char *sign = amount < 0 ? "-" : "";
    /* Work on the magnitude as unsigned so INT64_MIN cannot overflow. */
    uint64_t mag = amount < 0 ? (uint64_t)0 - (uint64_t)amount : (uint64_t)amount;
    if (digits == 0)
        return snprintf(out, outsz, "%s%llu", sign, (unsigned long long)mag);
    uint64_t p = (uint64_t)pow10[digits];
    return snprintf(out, outsz, "%s%llu.%0*llu", sign, (unsigned long long)(mag / p), digits,
                    (unsigned long long)(mag % p));
}
