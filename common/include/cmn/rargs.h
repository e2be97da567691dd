#ifndef CMN_RARGS_H
#define CMN_RARGS_H

#include <stddef.h>

#include "cmn/redis.h"

/*
 * Argument lists for Redis commands: pointers and lengths, with formatted values copied into the
 * list's own storage.  The strings need only live until the command is sent (hiredis copies them).
 */
#define CMN_RARGS_MAX 96
#define CMN_RARGS_STORE 8192

typedef struct cmn_rargs {
    const char *v[CMN_RARGS_MAX];
    size_t len[CMN_RARGS_MAX];
    int n;
    int overflow;
    size_t used;
    char store[CMN_RARGS_STORE];
} cmn_rargs_t;

void cmn_rargs_init(cmn_rargs_t *a);
/** Adds a reference to s (not copied: it must outlive the send). */
void cmn_rargs_ref(cmn_rargs_t *a, const char *s, size_t len);
void cmn_rargs_str(cmn_rargs_t *a, const char *s);
/** Adds a formatted copy. */
void cmn_rargs_fmt(cmn_rargs_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cmn_rargs_int(cmn_rargs_t *a, long long v);
/** Adds a copy of the concatenation of the strings up to the NULL: a key built from its pieces
 * ("pk:", tag, ":open") without a printf per key. */
void cmn_rargs_cat(cmn_rargs_t *a, ...) __attribute__((sentinel));

/** Element i of an array reply as a string (NULL when absent or not a string), with its length. */
const char *cmn_reply_str(const redisReply *r, size_t i, size_t *len);
/** Whether element 0 of an array reply is the string `tag`. */
int cmn_reply_is(const redisReply *r, const char *tag);

/**
 * Arguments to read a stream with a consumer group: XREADGROUP of new entries ("> "), or, with
 * `reclaim`, XAUTOCLAIM of the entries other consumers left pending longer than idle_ms.
 */
void cmn_rargs_stream_read(cmn_rargs_t *a, const char *key, const char *group,
                           const char *consumer, int reclaim, long idle_ms, int count);

/** The entries array of an XREADGROUP or XAUTOCLAIM answer (each [id, [field, value...]]), or
 * NULL when it holds none. */
const redisReply *cmn_stream_entries(const redisReply *r);

#endif
