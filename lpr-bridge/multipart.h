#ifndef LPR_MULTIPART_H
#define LPR_MULTIPART_H

#include <stddef.h>

/*
 * multipart/form-data (RFC 7578 on RFC 2046) for camera pushes: Plate Recognizer's "webhook with
 * image" (`json` + `upload`) and Hikvision's alarm push (an XML part plus JPEG parts).
 *
 * The whole body is in memory: part bodies are pointers into it, never copies.  The few header
 * values a caller needs (name, filename, Content-Type) are copied, unquoted, into fixed arrays, so
 * the parser allocates nothing and a peer cannot make it allocate.  Every function here is pure
 * and thread-safe.
 */

/** Most parts a body may have; more is CMN_ETOOBIG.  Cameras send one document and a few images. */
#define LPR_MULTIPART_MAX_PARTS 16
/** Most bytes of one part's header block (lines and line ends, the blank line excluded). */
#define LPR_MULTIPART_MAX_HEADER_BYTES 4096
/** Most header lines in one part. */
#define LPR_MULTIPART_MAX_HEADERS 16
/** RFC 2046: a boundary has 1 to 70 characters. */
#define LPR_MULTIPART_BOUNDARY_MAX 70
/** Sizes, NUL included, of the copied values; a longer value is CMN_ETOOBIG. */
#define LPR_MULTIPART_NAME_MAX 128
#define LPR_MULTIPART_FILENAME_MAX 256
#define LPR_MULTIPART_CTYPE_MAX 256

typedef struct lpr_multipart_part {
    char name[LPR_MULTIPART_NAME_MAX];          /* Content-Disposition name, unquoted; "" if none */
    char filename[LPR_MULTIPART_FILENAME_MAX];  /* Content-Disposition filename, unquoted */
    int has_filename;                           /* the filename parameter was present */
    char content_type[LPR_MULTIPART_CTYPE_MAX]; /* the Content-Type value as sent, trimmed; "" */
    const char *body;                           /* into the parsed input; never NULL */
    size_t body_len;
} lpr_multipart_part_t;

typedef struct lpr_multipart {
    size_t nparts;
    lpr_multipart_part_t parts[LPR_MULTIPART_MAX_PARTS];
    const char *error; /* static one-line English reason when parsing failed, else NULL */
} lpr_multipart_t;

/**
 * Extracts the boundary parameter of a Content-Type value (`len` bytes, not necessarily
 * NUL-terminated) whose media type is `multipart/<anything>`, unquoting a quoted value.
 * Accepted boundaries have 1 to 70 characters from RFC 2046's bchars (letters, digits and
 * `'()+_,-./:=?` and space, never last) plus the other RFC 7230 token characters (`!#$%&*^`|~`).
 * Returns the boundary's length (written NUL-terminated to `out`), CMN_EINVAL when the media type
 * is not multipart (or an argument is NULL), CMN_ENOTFOUND when there is no boundary parameter,
 * CMN_EPARSE for a malformed parameter list or a boundary with a forbidden character, CMN_ETOOBIG
 * for a boundary longer than 70 characters or one that does not fit in `outsz`.
 */
int lpr_multipart_boundary(const char *ctype, size_t len, char *out, size_t outsz);

/**
 * Checks `n` bytes as a boundary by the rules of lpr_multipart_boundary (for a boundary found some
 * other way, such as the first line of a body sent without Content-Type).
 * Returns 0, CMN_EPARSE (empty, a forbidden character, a space last) or CMN_ETOOBIG (over 70).
 */
int lpr_multipart_boundary_check(const char *b, size_t n);

/**
 * Reads parameter `name` (case-insensitive) of a header value such as a Content-Type or a
 * Content-Disposition (`type/subtype; a=b; c="d"`): the text before the first `;` is skipped and
 * a quoted-string value is unquoted (`\x` stands for x).  When a parameter occurs twice the first
 * one counts.  Returns the value's length (written NUL-terminated to `out`), CMN_ENOTFOUND when it
 * is absent, CMN_EPARSE for a malformed list (an unterminated quote, a parameter without `=`, a
 * control character or NUL anywhere in the value), CMN_ETOOBIG when the value does not fit in
 * `outsz`, CMN_EINVAL for NULL arguments.
 */
int lpr_multipart_param(const char *value, size_t len, const char *name, char *out, size_t outsz);

/**
 * Parses a multipart body with boundary `boundary` (NUL-terminated, as lpr_multipart_boundary
 * returns it).  The preamble before the first delimiter and the epilogue after the closing one are
 * ignored.  Line ends are CRLF; a bare LF is accepted too (a delimiter is then LF `--boundary`),
 * which is safe because the boundary must not occur in the content whatever the line ends.
 * Headers of a part: Content-Disposition (name, filename; filename* is ignored, RFC 7578 4.2) and
 * Content-Type are read, others are skipped; folded header lines are refused.
 *
 * Returns 0 and fills `mp` (at least one part), or a negative code with `mp->error` set:
 *   CMN_AGAIN     the body ends before the closing delimiter (truncated: more bytes were needed);
 *   CMN_EPARSE    no opening delimiter, a malformed part header, a duplicate Content-Disposition
 *                 or Content-Type, a control character or NUL in a header line, no parts;
 *   CMN_ETOOBIG   more than LPR_MULTIPART_MAX_PARTS parts, a header block over its limits, a name,
 *                 filename or Content-Type longer than its array;
 *   CMN_EINVAL    NULL arguments or a boundary that lpr_multipart_boundary would refuse.
 * Ownership: part bodies point into `body`, which must outlive `mp`.
 */
int lpr_multipart_parse(const char *boundary, const char *body, size_t len, lpr_multipart_t *mp);

/** The first part named `name` (exact comparison), or NULL. */
const lpr_multipart_part_t *lpr_multipart_find(const lpr_multipart_t *mp, const char *name);

#endif
