#ifndef CMN_JCHECK_INT_H
#define CMN_JCHECK_INT_H

/*
 * Validation of parsed JSON documents with error messages that name the file, the JSON path of the
 * field and the reason: "config/platform.json: $.lots[2].capacity: must be an integer from 1 to
 * 1000000".  Every problem is reported (the caller looks at errors at the end), so a person fixing
 * a file sees them all at once.  Internal to common/.
 */

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cmn/diag.h"

typedef struct jc {
    const char *origin; /* file name for messages */
    cmn_diag_t *diag;
    int errors;
    char path[512];
    size_t plen;
} jc_t;

void jc_init(jc_t *c, const char *origin, cmn_diag_t *diag);
/** Reports a problem at the current path (printf format). */
void jc_err(jc_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Reports a problem at the current path extended by `key` without moving there. */
void jc_err_at(jc_t *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** Moves into object member `key` / array element `i`; returns the mark to give to jc_pop. */
size_t jc_push_key(jc_t *c, const char *key);
size_t jc_push_index(jc_t *c, size_t i);
void jc_pop(jc_t *c, size_t mark);

/** Reports every member of `obj` whose name is not in the NULL-terminated list `allowed`. */
void jc_only_keys(jc_t *c, json_t *obj, const char *const *allowed);

/* Reading members.  Each returns 1 when the member is present and valid (and sets *out), 0 when it
 * is absent (*out untouched; an error was reported if `required`), and -1 when it is invalid (an
 * error was reported).  A member set to JSON null counts as absent unless said otherwise. */
int jc_int(jc_t *c, json_t *obj, const char *key, int required, int64_t min, int64_t max,
           int64_t *out);
int jc_bool(jc_t *c, json_t *obj, const char *key, int required, int *out);
/** A non-empty UTF-8 string of at most maxlen bytes; borrowed from obj. */
int jc_str(jc_t *c, json_t *obj, const char *key, int required, size_t maxlen, const char **out);
/** An identifier: 1..maxlen of [A-Za-z0-9_.:-]. */
int jc_ident(jc_t *c, json_t *obj, const char *key, int required, size_t maxlen,
             const char **out);
/** An object / array member (borrowed). */
int jc_obj(jc_t *c, json_t *obj, const char *key, int required, json_t **out);
int jc_arr(jc_t *c, json_t *obj, const char *key, int required, json_t **out);

/** Same checks applied to a value rather than a member (the path is already at the value). */
int jc_value_ident(jc_t *c, json_t *v, size_t maxlen, const char **out);
int jc_value_str(jc_t *c, json_t *v, size_t maxlen, const char **out);

/** Whether s is 1..maxlen of [A-Za-z0-9_.:-]. */
int jc_is_ident(const char *s, size_t maxlen);

/**
 * Parses a whole file or text into *doc with duplicate keys refused; a syntax error is reported
 * with its line and column.  Returns 0, CMN_EIO (file unreadable, reported) or CMN_ECONFIG.
 */
int jc_load_file(const char *path, cmn_diag_t *diag, json_t **doc);
int jc_load_text(const char *origin, const char *text, size_t len, cmn_diag_t *diag,
                 json_t **doc);

#endif
