#include "cmn/rargs.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cmn/buf.h"

void cmn_rargs_init(cmn_rargs_t *a)
{
    a->n = 0;
    a->overflow = 0;
    a->used = 0;
}

void cmn_rargs_ref(cmn_rargs_t *a, const char *s, size_t len)
{
    if (a->n >= CMN_RARGS_MAX) {
        a->overflow = 1;
        return;
    }
    a->v[a->n] = s;
    a->len[a->n] = len;
    a->n++;
}

void cmn_rargs_str(cmn_rargs_t *a, const char *s)
{
    cmn_rargs_ref(a, s, strlen(s));
}

void cmn_rargs_fmt(cmn_rargs_t *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = CMN_RARGS_STORE - a->used;
    int n = vsnprintf(a->store + a->used, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= room) {
        a->overflow = 1;
        return;
    }
    cmn_rargs_ref(a, a->store + a->used, (size_t)n);
    a->used += (size_t)n + 1;
}

void cmn_rargs_int(cmn_rargs_t *a, long long v)
{
    char tmp[CMN_INT_CHARS];
    char *p = cmn_int_format(tmp, v);
    size_t n = (size_t)(tmp + sizeof tmp - p);
    if (n >= CMN_RARGS_STORE - a->used) {
        a->overflow = 1;
        return;
    }
    memcpy(a->store + a->used, p, n);
    a->store[a->used + n] = '\0';
    cmn_rargs_ref(a, a->store + a->used, n);
    a->used += n + 1;
}

void cmn_rargs_cat(cmn_rargs_t *a, ...)
{
    va_list ap;
    size_t start = a->used, n = 0;
    const char *s;
    if (start >= CMN_RARGS_STORE) {
        a->overflow = 1;
        return;
    }
    va_start(ap, a);
    while ((s = va_arg(ap, const char *)) != NULL) {
        size_t len = strlen(s);
        if (len >= CMN_RARGS_STORE - start - n) {
            a->overflow = 1;
            va_end(ap);
            return;
        }
        memcpy(a->store + start + n, s, len);
        n += len;
    }
    va_end(ap);
    a->store[start + n] = '\0';
    cmn_rargs_ref(a, a->store + start, n);
    a->used += n + 1;
}

const char *cmn_reply_str(const redisReply *r, size_t i, size_t *len)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || i >= r->elements)
        return NULL;
    const redisReply *e = r->element[i];
    if (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS) {
        if (len != NULL)
            *len = e->len;
        return e->str;
    }
    return NULL;
}

int cmn_reply_is(const redisReply *r, const char *tag)
{
    size_t len;
    const char *s = cmn_reply_str(r, 0, &len);
    return s != NULL && len == strlen(tag) && memcmp(s, tag, len) == 0;
}

void cmn_rargs_stream_read(cmn_rargs_t *a, const char *key, const char *group,
                           const char *consumer, int reclaim, long idle_ms, int count)
{
    cmn_rargs_init(a);
    if (reclaim) {
        cmn_rargs_str(a, "XAUTOCLAIM");
        cmn_rargs_str(a, key);
        cmn_rargs_str(a, group);
        cmn_rargs_str(a, consumer);
        cmn_rargs_int(a, idle_ms);
        cmn_rargs_str(a, "0-0");
        cmn_rargs_str(a, "COUNT");
        cmn_rargs_int(a, count);
    } else {
        cmn_rargs_str(a, "XREADGROUP");
        cmn_rargs_str(a, "GROUP");
        cmn_rargs_str(a, group);
        cmn_rargs_str(a, consumer);
        cmn_rargs_str(a, "COUNT");
        cmn_rargs_int(a, count);
        cmn_rargs_str(a, "STREAMS");
        cmn_rargs_str(a, key);
        cmn_rargs_str(a, ">");
    }
}

/* XREADGROUP answers [[stream, [entries]]]; XAUTOCLAIM answers [next id, [entries], [deleted]]. */
const redisReply *cmn_stream_entries(const redisReply *r)
{
    const redisReply *e = NULL;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY)
        return NULL;
    if (r->elements >= 2 && r->element[0]->type == REDIS_REPLY_STRING)
        e = r->element[1];
    else if (r->elements >= 1 && r->element[0]->type == REDIS_REPLY_ARRAY &&
             r->element[0]->elements >= 2)
        e = r->element[0]->element[1];
    return e != NULL && e->type == REDIS_REPLY_ARRAY ? e : NULL;
}
