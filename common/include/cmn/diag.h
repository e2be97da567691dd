#ifndef CMN_DIAG_H
#define CMN_DIAG_H

#include <stddef.h>

/*
 * Diagnostics: the list of problems a loader found.  Loaders report every problem they can rather
 * than stopping at the first, so `parkctl config check` shows them all at once.  Each message names
 * the file and the place (line and column, or a JSON path such as `$.lots[2].capacity`) and says
 * what is wrong.
 */
typedef struct cmn_diag {
    char **msgs;
    size_t n;
    size_t cap;
} cmn_diag_t;

void cmn_diag_init(cmn_diag_t *d);
void cmn_diag_dispose(cmn_diag_t *d);
/** Adds one message (printf format). */
void cmn_diag_add(cmn_diag_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Adds every message of src to d. */
void cmn_diag_merge(cmn_diag_t *d, const cmn_diag_t *src);
/** Writes the messages to f, one per line, each prefixed with `prefix` (may be ""). */
void cmn_diag_print(const cmn_diag_t *d, const char *prefix, void *file);

#endif
