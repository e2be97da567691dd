#ifndef CMN_BUF_H
#define CMN_BUF_H

#include <stdarg.h>
#include <stddef.h>

/*
 * A growable byte buffer with a hard cap (curl's dynbuf): appending beyond `max` bytes fails with
 * CMN_ETOOBIG and leaves the buffer as it was.  The content is always NUL-terminated for
 * convenience; the NUL is not counted in len.
 */
typedef struct cmn_buf {
    char *base;
    size_t len;
    size_t cap;
    size_t max;
} cmn_buf_t;

/** Prepares an empty buffer that may hold at most `max` bytes.  Allocates nothing yet. */
void cmn_buf_init(cmn_buf_t *b, size_t max);
/** Frees the storage; the buffer may be initialised again. */
void cmn_buf_dispose(cmn_buf_t *b);
/** Empties the buffer and keeps its storage. */
void cmn_buf_reset(cmn_buf_t *b);
/** Makes room for `extra` more bytes at once (for a text whose size is known roughly), so that
 * appends up to that size do not grow the storage step by step.  Returns 0, CMN_ETOOBIG or
 * CMN_ENOMEM. */
int cmn_buf_reserve(cmn_buf_t *b, size_t extra);
/** Appends n bytes.  Returns 0, CMN_ETOOBIG or CMN_ENOMEM; on failure nothing is appended. */
int cmn_buf_append(cmn_buf_t *b, const void *data, size_t n);
int cmn_buf_puts(cmn_buf_t *b, const char *s);
int cmn_buf_printf(cmn_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cmn_buf_vprintf(cmn_buf_t *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/** Bytes enough for any long long in decimal, its sign included. */
#define CMN_INT_CHARS 24
/** Writes v in decimal at the end of out (no NUL) and returns where it starts: the text is the
 * out + CMN_INT_CHARS - returned bytes from there (printf's %lld without parsing a format). */
char *cmn_int_format(char out[CMN_INT_CHARS], long long v);
/** Appends s as the inside of a JSON string (escapes quotes, backslashes and control bytes). */
int cmn_buf_json_escape(cmn_buf_t *b, const char *s, size_t n);
/**
 * Ownership: hands the content (NUL-terminated, never NULL) to the caller, who frees it with
 * cmn_free; the buffer is left empty.  *len receives the length when len is not NULL.
 */
char *cmn_buf_take(cmn_buf_t *b, size_t *len);

#endif
