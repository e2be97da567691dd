#ifndef CMN_LOG_H
#define CMN_LOG_H

#include <stdarg.h>

/*
 * JSON-lines logs on stderr: {"ts":"…Z","level":"info","prog":"gateway","event":"…","msg":"…"}.
 * Each line is written with one write(2), so lines of concurrent processes do not interleave.
 * Callers never pass secrets, and mask plates with cmn_plate_mask() (cmn/plate.h) first.
 */

typedef enum { CMN_LOG_DEBUG = 0, CMN_LOG_INFO, CMN_LOG_WARN, CMN_LOG_ERROR } cmn_log_level_t;

/** Sets the program name, the lowest level written and the file descriptor (2 by default). */
void cmn_log_init(const char *prog, cmn_log_level_t min_level, int fd);
/** Parses "debug", "info", "warn" or "error"; returns -1 for anything else. */
int cmn_log_level_parse(const char *s);
/** Whether a line of `level` would be written: lets a caller skip preparing what only a log line
 * would use. */
int cmn_log_enabled(cmn_log_level_t level);

/** Writes one line: `event` is a short machine-readable name, `fmt` the human message. */
void cmn_log(cmn_log_level_t level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void cmn_logv(cmn_log_level_t level, const char *event, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
