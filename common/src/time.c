#include "cmn/time.h"

#include <stdio.h>

#include "cmn/err.h"

/*
 * Civil-from-days and days-from-civil on 400-year eras: March-based years put the leap day last,
 * so the day of the year is a linear function of the month.
 */
int64_t cmn_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = cmn_floordiv(y, 400);
    int64_t yoe = y - era * 400;                                 /* [0, 399] */
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1; /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;          /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

void cmn_civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    days += 719468;
    int64_t era = cmn_floordiv(days, 146097);
    int64_t doe = days - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int cmn_days_in_month(int64_t y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12)
        return 0;
    return dim[m - 1] + (m == 2 && is_leap(y));
}

/* Reads exactly n decimal digits at s[*pos]. */
static int digits(const char *s, size_t len, size_t *pos, int n, int *out)
{
    int v = 0;
    if (*pos + (size_t)n > len)
        return CMN_EPARSE;
    for (int i = 0; i < n; i++) {
        char c = s[*pos + (size_t)i];
        if (c < '0' || c > '9')
            return CMN_EPARSE;
        v = v * 10 + (c - '0');
    }
    *pos += (size_t)n;
    *out = v;
    return 0;
}

static int expect(const char *s, size_t len, size_t *pos, char c)
{
    if (*pos >= len || s[*pos] != c)
        return CMN_EPARSE;
    (*pos)++;
    return 0;
}

static int parse_date(const char *s, size_t len, size_t *pos, int *y, int *mo, int *d)
{
    if (digits(s, len, pos, 4, y) || expect(s, len, pos, '-') || digits(s, len, pos, 2, mo) ||
        expect(s, len, pos, '-') || digits(s, len, pos, 2, d))
        return CMN_EPARSE;
    if (*mo < 1 || *mo > 12 || *d < 1 || *d > cmn_days_in_month(*y, *mo))
        return CMN_ERANGE;
    return 0;
}

int cmn_date_parse(const char *s, size_t len, int64_t *days)
{
    size_t pos = 0;
    int y, mo, d;
    int rc = parse_date(s, len, &pos, &y, &mo, &d);
    if (rc != 0)
        return rc;
    if (pos != len)
        return CMN_EPARSE;
    *days = cmn_days_from_civil(y, mo, d);
    return 0;
}

int cmn_date_format(int64_t days, char *out, size_t outsz)
{
    int64_t y;
    int m, d;
    cmn_civil_from_days(days, &y, &m, &d);
    return snprintf(out, outsz, "%04lld-%02d-%02d", (long long)y, m, d);
}

int cmn_rfc3339_parse(const char *s, size_t len, cmn_instant_t *out)
{
    size_t pos = 0;
    int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
    int rc = parse_date(s, len, &pos, &y, &mo, &d);
    if (rc != 0)
        return rc;
    if (pos >= len || (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' '))
        return CMN_EPARSE;
    pos++;
    if (digits(s, len, &pos, 2, &h) || expect(s, len, &pos, ':') || digits(s, len, &pos, 2, &mi) ||
        expect(s, len, &pos, ':') || digits(s, len, &pos, 2, &sec))
        return CMN_EPARSE;
    if (pos < len && s[pos] == '.') {
        size_t start = ++pos;
        while (pos < len && s[pos] >= '0' && s[pos] <= '9')
            pos++;
        if (pos == start)
            return CMN_EPARSE;
    }
    if (pos >= len)
        return CMN_EPARSE; /* RFC 3339 requires a zone; a local time is not an instant */
    if (s[pos] == 'Z' || s[pos] == 'z') {
        pos++;
    } else if (s[pos] == '+' || s[pos] == '-') {
        sign = s[pos] == '-' ? -1 : 1;
        pos++;
        if (digits(s, len, &pos, 2, &oh) || expect(s, len, &pos, ':') ||
            digits(s, len, &pos, 2, &om))
            return CMN_EPARSE;
    } else {
        return CMN_EPARSE;
    }
    if (pos != len)
        return CMN_EPARSE;
    if (h > 23 || mi > 59 || sec > 59 || oh > 23 || om > 59)
        return CMN_ERANGE;
    int64_t t = cmn_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    t -= (int64_t)sign * (oh * 3600 + om * 60);
    if (t < CMN_INSTANT_MIN || t > CMN_INSTANT_MAX)
        return CMN_ERANGE;
    *out = t;
    return 0;
}

static char *two(char *p, int v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
    return p + 2;
}

int cmn_rfc3339_format(cmn_instant_t t, int offset, int z_for_utc, char *out, size_t outsz)
{
    int off_min = offset / 60; /* toward zero */
    int64_t local = t + (int64_t)off_min * 60;
    int64_t days = cmn_floordiv(local, 86400);
    int64_t sod = local - days * 86400;
    int64_t y;
    int m, d;
    cmn_civil_from_days(days, &y, &m, &d);
    int z = off_min == 0 && z_for_utc;
    int a = off_min < 0 ? -off_min : off_min;
    /* Written digit by digit when every field fits its width (every bill's times do, a dozen of
     * them per exit): the same text as the formats below, without a printf per time. */
    size_t n = z ? 20 : 25;
    if (y >= 0 && y <= 9999 && a / 60 <= 99 && outsz > n) {
        char *p = out;
        p = two(p, (int)(y / 100));
        p = two(p, (int)(y % 100));
        *p++ = '-';
        p = two(p, m);
        *p++ = '-';
        p = two(p, d);
        *p++ = 'T';
        p = two(p, (int)(sod / 3600));
        *p++ = ':';
        p = two(p, (int)(sod / 60 % 60));
        *p++ = ':';
        p = two(p, (int)(sod % 60));
        if (z) {
            *p++ = 'Z';
        } else {
            *p++ = off_min < 0 ? '-' : '+';
            p = two(p, a / 60);
            *p++ = ':';
            p = two(p, a % 60);
        }
        *p = '\0';
        return (int)n;
    }
    if (z)
        return snprintf(out, outsz, "%04lld-%02d-%02dT%02d:%02d:%02dZ", (long long)y, m, d,
                        (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60));
    return snprintf(out, outsz, "%04lld-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", (long long)y, m, d,
                    (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60),
                    off_min < 0 ? '-' : '+', a / 60, a % 60);
}
