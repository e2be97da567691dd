#include <stdlib.h>
#include <string.h>

#include "cmn/err.h"
#include "events.h"

static int field(const char **p, const char *end, char *out, size_t outsz)
{
    const char *s = *p;
    const char *us = memchr(s, '\x1f', (size_t)(end - s));
    size_t n = us ? (size_t)(us - s) : (size_t)(end - s);
    if (n >= outsz)
        return CMN_EPARSE;
    memcpy(out, s, n);
    out[n] = '\0';
    *p = us ? us + 1 : end;
    return us ? 0 : 1; /* 1: this was the last field */
}

int gw_session_parse(const char *rec, size_t len, gw_session_rec_t *out)
{
    const char *p = rec, *end = rec + len;
    char entry[24];
    memset(out, 0, sizeof *out);
    if (field(&p, end, out->plate, sizeof out->plate) != 0 ||
        field(&p, end, entry, sizeof entry) != 0 || field(&p, end, out->lane, sizeof out->lane) != 0 ||
        field(&p, end, out->vclass, sizeof out->vclass) != 0 ||
        field(&p, end, out->tver, sizeof out->tver) != 0 ||
        field(&p, end, out->flags, sizeof out->flags) != 0 ||
        field(&p, end, out->fold, sizeof out->fold) != 1)
        return CMN_EPARSE;
    char *stop;
    out->entry = strtoll(entry, &stop, 10);
    if (*stop != '\0' || entry[0] == '\0')
        return CMN_EPARSE;
    return 0;
}
