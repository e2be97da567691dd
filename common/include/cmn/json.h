#ifndef CMN_JSON_H
#define CMN_JSON_H

#include <jansson.h>

#include "cmn/buf.h"

/**
 * Serialises j with jansson's `flags`.  Ownership: the caller frees the result with cmn_free
 * (unlike json_dumps, whose result belongs to jansson's allocator).  NULL when j cannot be
 * serialised.
 */
char *cmn_json_dump(const json_t *j, size_t flags);

/*
 * Writing JSON text straight into a buffer, for the documents built on every request (an exit's
 * fee explanation, a lane's answer): the bytes are those jansson's dump would give for the same
 * values with JSON_COMPACT (no JSON_ENSURE_ASCII, no JSON_ESCAPE_SLASH), without building a tree
 * of jansson objects first.  Strings that need escaping are escaped by jansson itself.
 */

/**
 * Appends s (n bytes) as a JSON string, quotes included.  Returns 0, CMN_EINVAL when s is not
 * UTF-8 (jansson would not hold it; nothing is appended) or the buffer's error.
 */
int cmn_json_put_string(cmn_buf_t *b, const char *s, size_t n);
/** Appends "key": (a key made of plain ASCII, written as is) */
int cmn_json_put_key(cmn_buf_t *b, const char *key);
/** Appends v in decimal, as jansson writes a JSON integer. */
int cmn_json_put_int(cmn_buf_t *b, long long v);

#endif
