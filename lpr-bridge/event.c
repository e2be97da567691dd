/*
 * A read's lane event as text (event.h).  The bridge used to build a Jansson object per read and
 * dump it (twice: once to size it); on the city day that was one of the larger costs of a camera
 * push, for a document whose shape never changes.
 */
#include "event.h"

#include <stdio.h>
#include <string.h>

int lpr_event_string(cmn_buf_t *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = cmn_buf_append(out, "\"", 1);
    const char *run = s;
    for (const char *p = s; rc == 0; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        /* Plain bytes go out in runs: a plate or an id has nothing to escape. */
        if (p > run)
            rc = cmn_buf_append(out, run, (size_t)(p - run));
        if (c == '\0' || rc != 0)
            break;
        char esc[6] = {'\\', (char)c, 0, 0, 0, 0};
        size_t n = 2;
        switch (c) {
        case '"':
        case '\\':
            break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        rc = cmn_buf_append(out, esc, n);
        run = p + 1;
    }
    return rc != 0 ? rc : cmn_buf_append(out, "\"", 1);
}

int lpr_event_real(cmn_buf_t *out, double v)
{
    char s[40];
    int n = snprintf(s, sizeof s - 3, "%.4g", v);
    if (n < 0 || (size_t)n >= sizeof s - 3)
        return cmn_buf_append(out, "0.0", 3);
    /* A dot or an exponent, or the gateway would read an integer back. */
    if (strchr(s, '.') == NULL && strchr(s, 'e') == NULL) {
        memcpy(s + n, ".0", 3);
        n += 2;
    }
    char *e = strchr(s, 'e');
    if (e != NULL) {
        char *start = e + 1, *end = e + 2;
        if (*start == '-')
            start++;
        while (*end == '0')
            end++;
        if (end != start) {
            memmove(start, end, (size_t)(s + n + 1 - end));
            n -= (int)(end - start);
        }
    }
    return cmn_buf_append(out, s, (size_t)n);
}

/* The steps below stop at the first failure and hand its code on. */
static int put(cmn_buf_t *out, int rc, const char *s)
{
    return rc != 0 ? rc : cmn_buf_puts(out, s);
}

static int str(cmn_buf_t *out, int rc, const char *s)
{
    return rc != 0 ? rc : lpr_event_string(out, s);
}

static int real(cmn_buf_t *out, int rc, double v)
{
    return rc != 0 ? rc : lpr_event_real(out, v);
}

int lpr_event_body(cmn_buf_t *out, const char *event_id, const char *lot_id, const char *lane_id,
                   int entry, const lpr_read_t *r, const char *ts)
{
    static const char *const colors[] = {"blue", "yellow", "green", "white", "black", NULL};
    int rc = put(out, 0, "{\"event_id\":");
    rc = str(out, rc, event_id);
    rc = put(out, rc, ",\"lot_id\":");
    rc = str(out, rc, lot_id);
    rc = put(out, rc, ",\"lane_id\":");
    rc = str(out, rc, lane_id);
    rc = put(out, rc, entry ? ",\"direction\":\"entry\"" : ",\"direction\":\"exit\"");
    if (r->unreadable) {
        rc = put(out, rc, ",\"plate\":null,\"unreadable\":true");
    } else {
        rc = put(out, rc, ",\"plate\":");
        rc = str(out, rc, r->plate);
        rc = put(out, rc, ",\"vehicle_class\":");
        rc = str(out, rc, r->vclass);
    }
    for (int i = 0; colors[i] != NULL; i++) {
        if (strcmp(r->plate_color, colors[i]) == 0) {
            rc = put(out, rc, ",\"plate_color\":");
            rc = str(out, rc, colors[i]);
        }
    }
    if (r->confidence >= 0) {
        rc = put(out, rc, ",\"confidence\":");
        rc = real(out, rc, r->confidence);
    }
    rc = put(out, rc, ",\"candidates\":[");
    for (int i = 1; !r->unreadable && i < r->ncandidates; i++) {
        rc = put(out, rc, i > 1 ? ",{\"plate\":" : "{\"plate\":");
        rc = str(out, rc, r->candidates[i].plate);
        if (r->candidates[i].confidence >= 0) {
            rc = put(out, rc, ",\"confidence\":");
            rc = real(out, rc, r->candidates[i].confidence);
        }
        rc = put(out, rc, "}");
    }
    rc = put(out, rc, "],\"ts\":");
    rc = str(out, rc, ts);
    return put(out, rc, "}");
}
