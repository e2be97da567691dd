#ifndef CMN_TIME_H
#define CMN_TIME_H

#include <stddef.h>
#include <stdint.h>

/*
 * Instants are int64 seconds since the Unix epoch (UTC).  Civil dates use the proleptic Gregorian
 * calendar, computed with integer arithmetic only (no gmtime/localtime, no TZ).
 */

typedef int64_t cmn_instant_t;

/** Earliest and latest instants accepted anywhere: 1900-01-01 and 9999-12-31, UTC. */
#define CMN_INSTANT_MIN (-2208988800LL)
#define CMN_INSTANT_MAX (253402300799LL)

/** Days since 1970-01-01 of a civil date (month 1..12, day 1..31, not validated). */
int64_t cmn_days_from_civil(int64_t y, int m, int d);
/** The civil date of a day number. */
void cmn_civil_from_days(int64_t days, int64_t *y, int *m, int *d);
/** Number of days in a month (1..12) of a year. */
int cmn_days_in_month(int64_t y, int m);

/**
 * Parses an RFC 3339 date-time: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`; `t`/`z` and a space
 * for `T` are accepted as the RFC allows.  Fractions of a second are dropped (truncated toward the
 * past).  A leap second (:60) is refused.  `s` is `len` bytes, not necessarily NUL-terminated.
 * Returns 0 and sets *out, or CMN_EPARSE (bad syntax) / CMN_ERANGE (a field out of range).
 */
int cmn_rfc3339_parse(const char *s, size_t len, cmn_instant_t *out);

/**
 * Parses a local date `YYYY-MM-DD` into its day number (days since 1970-01-01).
 * Returns 0, CMN_EPARSE or CMN_ERANGE.
 */
int cmn_date_parse(const char *s, size_t len, int64_t *days);

/** Formats day number `days` as `YYYY-MM-DD`; needs outsz >= 11.  Returns the length. */
int cmn_date_format(int64_t days, char *out, size_t outsz);

/** Length of the longest string cmn_rfc3339_format writes, NUL included. */
#define CMN_RFC3339_MAX 32

/**
 * Formats instant t as seen at UTC offset `offset` seconds: `2026-11-27T18:42:07+08:00`, or with
 * `Z` when offset is 0 and `z_for_utc` is set.  Offsets that are not whole minutes are written
 * rounded toward zero to the minute and the time is shifted accordingly.  Returns the length.
 */
int cmn_rfc3339_format(cmn_instant_t t, int offset, int z_for_utc, char *out, size_t outsz);

/** Floor division and modulo for seconds and days (C's / truncates toward zero). */
static inline int64_t cmn_floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static inline int64_t cmn_floormod(int64_t a, int64_t b)
{
    return a - cmn_floordiv(a, b) * b;
}

#endif
