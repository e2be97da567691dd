#ifndef GW_RARGS_H
#define GW_RARGS_H

#include <stddef.h>

#include "cmn/redis.h"

/*
 * Argument lists for Redis commands: pointers and lengths, with formatted values copied into the
 * list's own storage.  The strings need only live until the command is sent (hiredis copies them).
 */
#define GW_RARGS_MAX 96
#define GW_RARGS_STORE 8192

typedef struct gw_rargs {
    const char *v[GW_RARGS_MAX];
    size_t len[GW_RARGS_MAX];
    int n;
    int overflow;
    size_t used;
    char store[GW_RARGS_STORE];
} gw_rargs_t;

void gw_rargs_init(gw_rargs_t *a);
/** Adds a reference to s (not copied: it must outlive the send). */
void gw_rargs_ref(gw_rargs_t *a, const char *s, size_t len);
void gw_rargs_str(gw_rargs_t *a, const char *s);
/** Adds a formatted copy. */
void gw_rargs_fmt(gw_rargs_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void gw_rargs_int(gw_rargs_t *a, long long v);

/** Element i of an array reply as a string (NULL when absent or not a string), with its length. */
const char *gw_reply_str(const redisReply *r, size_t i, size_t *len);
/** Whether element 0 of an array reply is the string `tag`. */
int gw_reply_is(const redisReply *r, const char *tag);

#endif
