#ifndef CMN_TZ_H
#define CMN_TZ_H

#include "cmn/time.h"

/*
 * IANA time zones through ICU, without touching TZ or the C library's local time.  A cmn_tz_t is
 * safe to share between threads (an internal mutex guards ICU's calendar, which is not).
 */

typedef struct cmn_tz cmn_tz_t;

/**
 * Opens zone `id` (an IANA name such as "Asia/Shanghai").  Unknown names and ICU's custom ids
 * ("GMT+8") are refused with CMN_ETZ.  Ownership: *out is the caller's; release with cmn_tz_free.
 */
int cmn_tz_new(const char *id, cmn_tz_t **out);
void cmn_tz_free(cmn_tz_t *tz);

/** The zone's name as given to cmn_tz_new. */
const char *cmn_tz_name(const cmn_tz_t *tz);

/**
 * The UTC offset in seconds (local = t + offset) at instant t, and the interval
 * [*from, *until) around t over which that offset holds (CMN_INSTANT_MIN / CMN_INSTANT_MAX when
 * the zone has no transition on that side).  `from`/`until` may be NULL.  Returns 0 or CMN_ETZ.
 */
int cmn_tz_offset(cmn_tz_t *tz, cmn_instant_t t, int *offset, cmn_instant_t *from,
                  cmn_instant_t *until);

/**
 * The first instant at which the wall clock of the zone reads `minute` minutes past midnight on
 * local day `days` (days since 1970-01-01).  When clocks go back and that wall time happens twice,
 * the earlier instant; when clocks go forward over it, the instant of the transition (the first
 * valid wall time after it).  Returns 0 or CMN_ETZ.
 */
int cmn_tz_wall_start(cmn_tz_t *tz, int64_t days, int minute, cmn_instant_t *out);

#endif
