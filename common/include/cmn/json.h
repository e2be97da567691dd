#ifndef CMN_JSON_H
#define CMN_JSON_H

#include <jansson.h>

/**
 * Serialises j with jansson's `flags`.  Ownership: the caller frees the result with cmn_free
 * (unlike json_dumps, whose result belongs to jansson's allocator).  NULL when j cannot be
 * serialised.
 */
char *cmn_json_dump(const json_t *j, size_t flags);

#endif
