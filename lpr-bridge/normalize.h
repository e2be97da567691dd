#ifndef LPR_NORMALIZE_H
#define LPR_NORMALIZE_H

#include <jansson.h>
#include <stdio.h>

#include "parse.h"

/*
 * `lpr-bridge --normalize FILE`: one payload file in, its reads out as JSON lines.  Used by
 * operators to check what a camera sends, and by tests to drive the parser as a process.
 */

/**
 * Reads one payload file (any format lpr_parse knows, detected from the content) and prints each
 * read as one compact JSON object per line on `out` (lpr_read_to_json).  The file may also be a
 * raw HTTP request ("POST /path HTTP/1.1", headers, blank line, body): the Content-Type comes from
 * its headers and the body is what Content-Length (or chunked encoding) says; a hand-written
 * request without either takes the rest of the file.
 * Returns 0 after printing the reads (none for an empty result or a heartbeat), or 2 after
 * printing one line "lpr-bridge: FILE: reason" on `err` and nothing on `out` (unreadable file,
 * file over LPR_MAX_BODY plus 64 KiB, malformed request, lpr_parse failure).
 * Blocking file I/O: for the command line, never for the event loop.
 */
int lpr_normalize_file(const char *path, FILE *out, FILE *err);

/**
 * The JSON form of a read: "plate" (null when unreadable), "unreadable", "confidence" (null when
 * unknown), "candidates" [{"plate", "confidence"}], "ts" (RFC 3339 UTC with milliseconds, null
 * when the payload had no usable time), "vehicle_class", "source", "format", "plate_raw", then
 * when known "plate_kind", "unreadable_reason", "plate_color", "camera_direction", "camera",
 * "source_ref".
 * Ownership: a new reference; the caller json_decref()s it.  NULL only when Jansson runs out of
 * memory.
 */
json_t *lpr_read_to_json(const lpr_read_t *read, lpr_format_t format);

#endif
