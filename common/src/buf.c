#include "cmn/buf.h"

#include <stdio.h>
#include <string.h>

#include "cmn/err.h"
#include "cmn/mem.h"

void cmn_buf_init(cmn_buf_t *b, size_t max)
{
    b->base = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void cmn_buf_dispose(cmn_buf_t *b)
{
    cmn_free(b->base);
    cmn_buf_init(b, b->max);
}

void cmn_buf_reset(cmn_buf_t *b)
{
    b->len = 0;
    if (b->base != NULL)
        b->base[0] = '\0';
}

static int reserve(cmn_buf_t *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return CMN_ETOOBIG;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *p = cmn_try_realloc(b->base, cap);
    if (p == NULL)
        return CMN_ENOMEM;
    b->base = p;
    b->cap = cap;
    return 0;
}

int cmn_buf_reserve(cmn_buf_t *b, size_t extra)
{
    return reserve(b, extra);
}

int cmn_buf_append(cmn_buf_t *b, const void *data, size_t n)
{
    int rc = reserve(b, n);
    if (rc != 0)
        return rc;
    if (n > 0)
        memcpy(b->base + b->len, data, n);
    b->len += n;
    b->base[b->len] = '\0';
    return 0;
}

int cmn_buf_puts(cmn_buf_t *b, const char *s)
{
    return cmn_buf_append(b, s, strlen(s));
}

int cmn_buf_vprintf(cmn_buf_t *b, const char *fmt, va_list ap)
{
    /* Formatted straight into the free space when it fits (most calls): one pass, not two. */
    size_t room = b->cap > b->len ? b->cap - b->len : 0;
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(room ? b->base + b->len : NULL, room, fmt, copy);
    va_end(copy);
    if (n < 0) {
        if (b->base != NULL)
            b->base[b->len] = '\0';
        return CMN_EINVAL;
    }
    if ((size_t)n < room && (size_t)n <= b->max - b->len) {
        b->len += (size_t)n;
        return 0;
    }
    if (room)
        b->base[b->len] = '\0'; /* the attempt wrote past the end: the content is as it was */
    int rc = reserve(b, (size_t)n);
    if (rc != 0)
        return rc;
    vsnprintf(b->base + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int cmn_buf_printf(cmn_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = cmn_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

char *cmn_int_format(char out[CMN_INT_CHARS], long long v)
{
    char *p = out + CMN_INT_CHARS;
    /* Unsigned arithmetic: LLONG_MIN has no positive counterpart. */
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    return p;
}

int cmn_buf_json_escape(cmn_buf_t *b, const char *s, size_t n)
{
    size_t start = b->len;
    size_t run = 0; /* start of the bytes not yet appended, which need no escape */
    int rc = 0;
    /* Plain bytes go out in runs: a log line is mostly plain, and one append per byte was the
     * larger part of writing it. */
    for (size_t i = 0; i < n && rc == 0; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c != '"' && c != '\\' && c >= 0x20 && c != 0x7f)
            continue;
        if (i > run)
            rc = cmn_buf_append(b, s + run, i - run);
        run = i + 1;
        if (rc != 0)
            break;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            rc = cmn_buf_append(b, esc, 2);
        } else if (c == '\n') {
            rc = cmn_buf_append(b, "\\n", 2);
        } else {
            rc = cmn_buf_printf(b, "\\u%04x", c);
        }
    }
    if (rc == 0 && n > run)
        rc = cmn_buf_append(b, s + run, n - run);
    if (rc != 0) {
        b->len = start;
        if (b->base != NULL)
            b->base[start] = '\0';
        return rc;
    }
    return 0;
}

char *cmn_buf_take(cmn_buf_t *b, size_t *len)
{
    char *p = b->base;
    if (p == NULL) {
        p = cmn_xalloc(1);
        p[0] = '\0';
    }
    if (len != NULL)
        *len = b->len;
    cmn_buf_init(b, b->max);
    return p;
}
