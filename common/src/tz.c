#include "cmn/tz.h"

#include <pthread.h>
#include <string.h>
#include <unicode/ucal.h>
#include <unicode/ustring.h>

#include "cmn/err.h"
#include "cmn/mem.h"

struct cmn_tz {
    char *name;
    UCalendar *cal; /* guarded by lock: ICU calendars are not thread-safe */
    pthread_mutex_t lock;
    /* The last offset found and the interval [from, until) over which it holds, guarded by lock:
     * most instants asked for fall in the same interval (decades long for zones without DST), and
     * ICU takes microseconds for each answer. */
    int cached;
    int offset;
    cmn_instant_t from, until;
};

int cmn_tz_new(const char *id, cmn_tz_t **out)
{
    UChar uid[128], canon[128];
    UErrorCode st = U_ZERO_ERROR;
    UBool is_system = 0;
    int32_t n = 0;

    *out = NULL;
    if (id == NULL || strlen(id) >= 100)
        return CMN_ETZ;
    u_strFromUTF8(uid, 128, &n, id, -1, &st);
    if (U_FAILURE(st))
        return CMN_ETZ;
    ucal_getCanonicalTimeZoneID(uid, n, canon, 128, &is_system, &st);
    if (U_FAILURE(st) || !is_system)
        return CMN_ETZ;

    UCalendar *cal = ucal_open(uid, n, "en_US_POSIX", UCAL_GREGORIAN, &st);
    if (U_FAILURE(st) || cal == NULL)
        return CMN_ETZ;
    /* Wall times in a fold take the earlier instant; wall times in a gap the transition instant. */
    ucal_setAttribute(cal, UCAL_REPEATED_WALL_TIME, UCAL_WALLTIME_FIRST);
    ucal_setAttribute(cal, UCAL_SKIPPED_WALL_TIME, UCAL_WALLTIME_NEXT_VALID);
    ucal_setAttribute(cal, UCAL_LENIENT, 1);

    cmn_tz_t *tz = cmn_xcalloc(1, sizeof *tz);
    tz->name = cmn_xstrdup(id);
    tz->cal = cal;
    pthread_mutex_init(&tz->lock, NULL);
    *out = tz;
    return 0;
}

void cmn_tz_free(cmn_tz_t *tz)
{
    if (tz == NULL)
        return;
    ucal_close(tz->cal);
    pthread_mutex_destroy(&tz->lock);
    cmn_free(tz->name);
    cmn_free(tz);
}

const char *cmn_tz_name(const cmn_tz_t *tz)
{
    return tz->name;
}

static cmn_instant_t ms_to_s(UDate ms)
{
    /* Transitions fall on whole seconds; floor keeps instants before 1970 right too. */
    return cmn_floordiv((int64_t)ms, 1000);
}

int cmn_tz_offset(cmn_tz_t *tz, cmn_instant_t t, int *offset, cmn_instant_t *from,
                  cmn_instant_t *until)
{
    UErrorCode st = U_ZERO_ERROR;
    UDate d;
    int rc = CMN_ETZ;

    pthread_mutex_lock(&tz->lock);
    if (tz->cached && tz->from <= t && t < tz->until)
        goto hit;
    ucal_setMillis(tz->cal, (UDate)t * 1000.0, &st);
    int32_t zone = ucal_get(tz->cal, UCAL_ZONE_OFFSET, &st);
    int32_t dst = ucal_get(tz->cal, UCAL_DST_OFFSET, &st);
    if (U_FAILURE(st))
        goto out;
    cmn_instant_t next = CMN_INSTANT_MAX, prev = CMN_INSTANT_MIN;
    if (ucal_getTimeZoneTransitionDate(tz->cal, UCAL_TZ_TRANSITION_NEXT, &d, &st))
        next = ms_to_s(d);
    if (ucal_getTimeZoneTransitionDate(tz->cal, UCAL_TZ_TRANSITION_PREVIOUS_INCLUSIVE, &d, &st))
        prev = ms_to_s(d);
    if (U_FAILURE(st)) {
        /* The offset itself is known: a caller that needs no interval still gets it. */
        if (from == NULL && until == NULL) {
            *offset = (zone + dst) / 1000;
            rc = 0;
        }
        goto out;
    }
    tz->cached = 1;
    tz->offset = (zone + dst) / 1000;
    tz->from = prev;
    tz->until = next;
hit:
    *offset = tz->offset;
    if (until != NULL)
        *until = tz->until;
    if (from != NULL)
        *from = tz->from;
    rc = 0;
out:
    pthread_mutex_unlock(&tz->lock);
    return rc;
}

int cmn_tz_wall_start(cmn_tz_t *tz, int64_t days, int minute, cmn_instant_t *out)
{
    UErrorCode st = U_ZERO_ERROR;
    int64_t y;
    int m, d;
    int rc = CMN_ETZ;

    cmn_civil_from_days(days, &y, &m, &d);
    pthread_mutex_lock(&tz->lock);
    ucal_clear(tz->cal);
    ucal_setDateTime(tz->cal, (int32_t)y, m - 1, d, minute / 60, minute % 60, 0, &st);
    UDate ms = ucal_getMillis(tz->cal, &st);
    if (U_FAILURE(st))
        goto out;
    *out = ms_to_s(ms);
    rc = 0;
out:
    pthread_mutex_unlock(&tz->lock);
    return rc;
}
