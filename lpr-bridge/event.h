#ifndef LPR_EVENT_H
#define LPR_EVENT_H

#include <stddef.h>

#include "cmn/buf.h"
#include "parse.h"

/*
 * The body of a read's lane event (POST /v1/events, docs/lane-api.md), written straight into a
 * buffer.  The bridge builds one per camera push, so it does not go through a Jansson tree and
 * two dumps; the bytes are those Jansson gives with JSON_COMPACT | JSON_PRESERVE_ORDER |
 * JSON_REAL_PRECISION(4) (the unit test holds the two side by side), so a spool written by an
 * older bridge and one written now carry the same events.
 *
 *   {"event_id","lot_id","lane_id","direction","plate" (null when unreadable), "unreadable":true
 *    or "vehicle_class", "plate_color" (one of blue, yellow, green, white, black, when so),
 *    "confidence" (when known), "candidates" [{"plate","confidence"}] (the read's alternatives,
 *    none when unreadable), "ts"}
 */

/**
 * Appends the event to `out`.  `ts` is the capture instant as RFC 3339 text.  Returns 0, or the
 * error of cmn_buf_append (CMN_ETOOBIG past the buffer's limit, CMN_ENOMEM), the buffer then
 * holding a part of it.
 */
int lpr_event_body(cmn_buf_t *out, const char *event_id, const char *lot_id, const char *lane_id,
                   int entry, const lpr_read_t *r, const char *ts);

/**
 * Appends `s` as a JSON string, quotes included, escaped as Jansson escapes it (without
 * JSON_ENSURE_ASCII): the short escapes for \" \\ \b \f \n \r \t, \uXXXX for the other control
 * characters, every other byte as it is.  Returns 0 or the error of cmn_buf_append.
 */
int lpr_event_string(cmn_buf_t *out, const char *s);

/**
 * Appends a real as Jansson writes it with JSON_REAL_PRECISION(4): "%.4g", ".0" added to a value
 * that would read back as an integer, the exponent without '+' and leading zeros.
 */
int lpr_event_real(cmn_buf_t *out, double v);

#endif
