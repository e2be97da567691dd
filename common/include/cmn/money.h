#ifndef CMN_MONEY_H
#define CMN_MONEY_H

#include <stddef.h>
#include <stdint.h>

/*
 * Money is an integer count of the currency's minor unit (fen for CNY).  Nothing here uses
 * floating point.
 */

/**
 * Checks that `code` is an ISO 4217 currency code known to ICU and returns its number of fraction
 * digits (2 for CNY, 0 for JPY) in *digits.  Returns 0 or CMN_EINVAL.
 */
int cmn_currency_check(const char *code, int *digits);

/** Writes `amount` minor units as a decimal ("15.00", "-0.05", "300" for 0 digits).  Returns the
 * length written (truncated output still NUL-terminated when outsz > 0). */
int cmn_money_format(int64_t amount, int digits, char *out, size_t outsz);

#endif
