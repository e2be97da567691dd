/* memmem (glibc declares it for _GNU_SOURCE): linear time, unlike a naive search. */
#define _GNU_SOURCE

#include "parse.h"

#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unicode/utf8.h>

#include "cmn/err.h"
#include "cmn/mem.h"
#include "multipart.h"

/*
 * Design note.  A payload goes through four stages:
 *
 *  1. envelope: a multipart body (boundary from the Content-Type, or from the first line when the
 *     header is missing) is split and the document part chosen; otherwise the body is the
 *     document.  A declared charset other than UTF-8 is refused here;
 *  2. document: the first significant byte says JSON (`{`) or XML (`<`); the Content-Type does
 *     not, because alprd labels its JSON application/x-www-form-urlencoded;
 *  3. format: OpenALPR by data_type, Plate Recognizer by hook.event, Hikvision by the root element
 *     EventNotificationAlert and its eventType.  Each reader turns its source's plates into
 *     `struct item`s (raw text, read and detection confidence on 0..1, raw candidates) and picks
 *     the one with the highest detection × read confidence: the vehicle in the lane;
 *  4. build_read: one place normalises the chosen item for every source (cmn_plate_parse on the
 *     text and on each candidate, dedup, unreadable rules), so the sources cannot drift apart.
 *
 * Limits: the body, the document and the candidates scanned per plate are capped; XML text is
 * copied into fixed buffers.  Jansson and libxml2 allocate internally, bounded by the document cap.
 */

/* Candidates examined per plate: each costs a normalisation, and a peer controls the count. */
#define SCAN_CANDIDATES 64
/* XML element text we copy; a longer plate is refused by cmn_plate_parse as too long. */
#define XML_TEXT_MAX 1024

/* One plate as a source reported it, before normalisation. */
struct item {
    const char *text; /* raw plate text, UTF-8, not necessarily NUL-terminated; NULL if none */
    size_t text_len;
    double conf; /* read confidence 0..1, or LPR_CONF_UNKNOWN */
    double det;  /* detection 0..1, or LPR_CONF_UNKNOWN */
};

struct rawcand {
    const char *text;
    size_t len;
    double conf;
};

/*
 * Rewrites s in place as one printable line of valid UTF-8: control characters become spaces and
 * each ill-formed sequence one '?'.  libxml2 quotes raw input bytes in its messages (a broken
 * element name), and vsnprintf may cut the last character in half.
 */
static void sanitize_line(char *s)
{
    int32_t i = 0, o = 0, len = (int32_t)strlen(s);

    while (i < len) {
        int32_t start = i;
        UChar32 c;
        U8_NEXT(s, i, len, c);
        if (c < 0) {
            s[o++] = '?';
        } else if (c < 0x20 || c == 0x7f) {
            s[o++] = ' ';
        } else {
            while (start < i)
                s[o++] = s[start++];
        }
    }
    s[o] = '\0';
}

__attribute__((format(printf, 3, 4))) static int fail(lpr_result_t *res, int rc, const char *fmt,
                                                      ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(res->error, sizeof res->error, fmt, ap);
    va_end(ap);
    sanitize_line(res->error);
    return rc;
}

/*
 * snprintf of valid UTF-8 pieces into a fixed array: a character cut at the end by truncation
 * is dropped, so the field stays valid UTF-8 (Jansson refuses anything else).
 */
__attribute__((format(printf, 3, 4))) static void format_text(char *dst, size_t dstsz,
                                                              const char *fmt, ...)
{
    va_list ap;
    size_t n, lead;
    int want;

    va_start(ap, fmt);
    vsnprintf(dst, dstsz, fmt, ap);
    va_end(ap);
    n = strlen(dst);
    lead = n;
    while (lead > 0 && ((unsigned char)dst[lead - 1] & 0xC0) == 0x80)
        lead--;
    if (lead == 0 || (unsigned char)dst[lead - 1] < 0xC0)
        return;
    lead--;
    want = (unsigned char)dst[lead] >= 0xF0 ? 4 : (unsigned char)dst[lead] >= 0xE0 ? 3 : 2;
    if (n - lead < (size_t)want)
        dst[lead] = '\0';
}

/* Copies at most dstsz - 1 bytes of UTF-8 text, never splitting a character. */
static void copy_text(char *dst, size_t dstsz, const char *src, size_t len)
{
    size_t n = len;

    if (dstsz == 0)
        return;
    if (src == NULL)
        n = 0;
    if (n >= dstsz) {
        n = dstsz - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    if (n > 0)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

/* A short, printable rendering of a peer's value for an error message. */
static const char *snip(const char *s, size_t len, char *buf, size_t bufsz)
{
    copy_text(buf, bufsz, s, len);
    for (char *p = buf; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    }
    return buf;
}

static double clamp01(double v)
{
    if (!(v >= 0.0))
        return 0.0; /* also NaN */
    return v > 1.0 ? 1.0 : v;
}

static double factor(double v, double missing)
{
    return v == LPR_CONF_UNKNOWN ? missing : v;
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* ------------------------------------------------------------------------------------------ */
/* Normalising the chosen plate (every source) */

static void add_candidate(lpr_read_t *r, const char *plate, double conf)
{
    for (int i = 0; i < r->ncandidates; i++) {
        lpr_candidate_t *c = &r->candidates[i];
        if (strcmp(c->plate, plate) == 0) {
            if (conf != LPR_CONF_UNKNOWN &&
                (c->confidence == LPR_CONF_UNKNOWN || conf > c->confidence))
                c->confidence = conf;
            return;
        }
    }
    if (r->ncandidates == LPR_MAX_CANDIDATES)
        return;
    copy_text(r->candidates[r->ncandidates].plate, CMN_PLATE_MAX, plate, strlen(plate));
    r->candidates[r->ncandidates].confidence = conf;
    r->ncandidates++;
}

/*
 * Turns the chosen item into the read.  The read's own text, when valid, is candidate 0 with the
 * read confidence; the source's candidates follow.  A sentinel or empty text is an unreadable
 * plate even when candidates exist (the camera said "no plate"); an impossible text (I/O in a
 * mainland serial, a wrong length) gives way to the best valid candidate.
 */
static void build_read(lpr_read_t *r, const struct item *it, const struct rawcand *cands,
                       size_t ncands)
{
    cmn_plate_t p, c;
    int rc = cmn_plate_parse(it->text, it->text != NULL ? it->text_len : 0, &p);

    copy_text(r->plate_raw, sizeof r->plate_raw, it->text, it->text != NULL ? it->text_len : 0);
    r->confidence = it->conf;
    r->ncandidates = 0;
    if (rc == 0)
        add_candidate(r, p.text, it->conf);
    for (size_t i = 0; i < ncands && i < SCAN_CANDIDATES; i++) {
        if (cands[i].text != NULL && cmn_plate_parse(cands[i].text, cands[i].len, &c) == 0)
            add_candidate(r, c.text, cands[i].conf);
    }
    if (rc != 0 && rc != CMN_EUNREADABLE && r->ncandidates > 0 &&
        cmn_plate_parse(r->candidates[0].plate, strlen(r->candidates[0].plate), &p) == 0) {
        r->confidence = r->candidates[0].confidence;
        rc = 0;
    }
    if (rc == 0) {
        copy_text(r->plate, sizeof r->plate, p.text, strlen(p.text));
        r->kind = p.kind;
        r->vclass = p.vclass;
        r->unreadable = 0;
        r->unreadable_reason = NULL;
        return;
    }
    r->unreadable = 1;
    r->unreadable_reason = p.reason != NULL ? p.reason : "unreadable plate";
    r->plate[0] = '\0';
    r->kind = CMN_PLATE_OTHER;
    r->vclass = "small";
    r->ncandidates = 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Times */

static int set_ts_ms(lpr_read_t *r, int64_t ms)
{
    r->has_ts = 1;
    r->ts_ms = ms;
    r->ts = cmn_floordiv(ms, 1000);
    return 0;
}

/* An epoch number: below 10^11 it is seconds (10^11 s is the year 5138), else milliseconds. */
static int ts_from_epoch(const json_t *v, lpr_read_t *r)
{
    const double lo = (double)CMN_INSTANT_MIN, hi = (double)CMN_INSTANT_MAX;

    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 100000000000LL) {
            if (i < CMN_INSTANT_MIN)
                return CMN_ERANGE;
            return set_ts_ms(r, (int64_t)i * 1000);
        }
        if (i > CMN_INSTANT_MAX * 1000 + 999)
            return CMN_ERANGE;
        return set_ts_ms(r, (int64_t)i);
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!isfinite(d))
            return CMN_ERANGE;
        if (d < 1e11) {
            if (d < lo)
                return CMN_ERANGE;
            return set_ts_ms(r, (int64_t)floor(d * 1000.0));
        }
        if (d >= (hi + 1.0) * 1000.0)
            return CMN_ERANGE;
        return set_ts_ms(r, (int64_t)floor(d));
    }
    return CMN_EPARSE;
}

/*
 * RFC 3339 text.  cmn_rfc3339_parse gives whole seconds (fraction truncated toward the past, and
 * offsets are whole minutes), so the milliseconds are the first three fraction digits.  Text
 * without a zone is accepted when `zoneless_utc` is set (Plate Recognizer documents UTC);
 * otherwise it is left out: has_ts stays 0 and the function succeeds.
 */
static int ts_from_text(const char *s, size_t len, int zoneless_utc, lpr_read_t *r)
{
    char buf[64];
    cmn_instant_t t;
    int rc, ms = 0, scale = 100;

    if (len == 0 || len + 1 >= sizeof buf)
        return CMN_EPARSE;
    rc = cmn_rfc3339_parse(s, len, &t);
    if (rc == CMN_EPARSE) {
        memcpy(buf, s, len);
        buf[len] = 'Z';
        if (cmn_rfc3339_parse(buf, len + 1, &t) == 0) {
            if (!zoneless_utc)
                return 0;
            rc = 0;
        }
    }
    if (rc != 0)
        return rc;
    /* The syntax was checked: "YYYY-MM-DDTHH:MM:SS" is 19 bytes, then an optional fraction. */
    if (len > 20 && s[19] == '.') {
        for (size_t i = 20; i < len && i < 23 && s[i] >= '0' && s[i] <= '9'; i++) {
            ms += (s[i] - '0') * scale;
            scale /= 10;
        }
    }
    return set_ts_ms(r, (int64_t)t * 1000 + ms);
}

/* ------------------------------------------------------------------------------------------ */
/* JSON helpers */

static double jnum(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);

    return json_is_number(v) ? json_number_value(v) : LPR_CONF_UNKNOWN;
}

static double scaled(double v, double divisor)
{
    return v == LPR_CONF_UNKNOWN ? v : clamp01(v / divisor);
}

/* A string member as text; an absent or null member is no text; anything else is an error. */
static int jtext(const json_t *obj, const char *key, const char **s, size_t *len)
{
    const json_t *v = json_object_get(obj, key);

    *s = NULL;
    *len = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return CMN_EPARSE;
    *s = json_string_value(v);
    *len = json_string_length(v);
    return 0;
}

/* A string or an integer as text (camera ids and hook ids come as either). */
static int jid(const json_t *v, char *out, size_t outsz)
{
    out[0] = '\0';
    if (json_is_string(v))
        copy_text(out, outsz, json_string_value(v), json_string_length(v));
    else if (json_is_integer(v))
        snprintf(out, outsz, "%lld", (long long)json_integer_value(v));
    return out[0] != '\0';
}

/* Raw candidates of a JSON candidates[] array: {plate, <conf_key>}, confidence / divisor. */
static size_t jcands(const json_t *arr, const char *conf_key, double divisor, struct rawcand *out)
{
    size_t n = 0;

    for (size_t i = 0; i < json_array_size(arr) && n < SCAN_CANDIDATES; i++) {
        const json_t *c = json_array_get(arr, i);
        const json_t *p = json_object_get(c, "plate");
        if (!json_is_string(p))
            continue;
        out[n].text = json_string_value(p);
        out[n].len = json_string_length(p);
        out[n].conf = scaled(jnum(c, conf_key), divisor);
        n++;
    }
    return n;
}

/* ------------------------------------------------------------------------------------------ */
/* OpenALPR */

/* Area of the plate polygon (OpenALPR gives 4 corners); -1 when the coordinates are unusable. */
static double box_area(const json_t *coords)
{
    double a = 0.0;
    size_t n = json_array_size(coords);

    if (n < 3 || n > 16)
        return -1.0;
    for (size_t i = 0; i < n; i++) {
        const json_t *p = json_array_get(coords, i), *q = json_array_get(coords, (i + 1) % n);
        const json_t *px = json_object_get(p, "x"), *py = json_object_get(p, "y");
        const json_t *qx = json_object_get(q, "x"), *qy = json_object_get(q, "y");
        if (!json_is_number(px) || !json_is_number(py) || !json_is_number(qx) ||
            !json_is_number(qy))
            return -1.0;
        a += json_number_value(px) * json_number_value(qy) -
             json_number_value(qx) * json_number_value(py);
    }
    a = fabs(a) / 2.0;
    return isfinite(a) ? a : -1.0;
}

static void openalpr_camera(const json_t *root, lpr_read_t *r)
{
    char cam[32];
    const json_t *site = json_object_get(root, "site_id");
    int has_cam = jid(json_object_get(root, "camera_id"), cam, sizeof cam);

    if (json_is_string(site) && has_cam)
        format_text(r->camera, sizeof r->camera, "%s/%s", json_string_value(site), cam);
    else if (json_is_string(site))
        copy_text(r->camera, sizeof r->camera, json_string_value(site), json_string_length(site));
    else if (has_cam)
        copy_text(r->camera, sizeof r->camera, cam, strlen(cam));
}

static int openalpr_item(const json_t *plate, const char *where, lpr_result_t *res, struct item *it)
{
    if (!json_is_object(plate))
        return fail(res, CMN_EPARSE, "OpenALPR %s is not an object", where);
    if (jtext(plate, "plate", &it->text, &it->text_len) != 0)
        return fail(res, CMN_EPARSE, "OpenALPR %s.plate is not a string", where);
    it->conf = scaled(jnum(plate, "confidence"), 100.0);
    it->det = LPR_CONF_UNKNOWN;
    return 0;
}

static int openalpr_results(const json_t *root, lpr_result_t *res)
{
    struct rawcand cands[SCAN_CANDIDATES];
    const json_t *results = json_object_get(root, "results"), *best = NULL, *t;
    struct item it = {0}, best_it = {0};
    double max_area = 0.0, best_rank = -1.0;
    char where[32];
    size_t n;
    int rc;

    res->format = LPR_FORMAT_OPENALPR_RESULTS;
    if (!json_is_array(results))
        return fail(res, CMN_EPARSE, "OpenALPR alpr_results without a results array");
    n = json_array_size(results);
    res->nplates = (int)(n > INT32_MAX ? INT32_MAX : n);
    for (size_t i = 0; i < n; i++) {
        double a = box_area(json_object_get(json_array_get(results, i), "coordinates"));
        if (a > max_area)
            max_area = a;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *p = json_array_get(results, i);
        double a, rank;
        snprintf(where, sizeof where, "results[%zu]", i);
        rc = openalpr_item(p, where, res, &it);
        if (rc != 0)
            return rc;
        /* No detection score in OpenALPR: the plate's size relative to the frame's largest. */
        a = box_area(json_object_get(p, "coordinates"));
        it.det = a >= 0.0 && max_area > 0.0 ? a / max_area : LPR_CONF_UNKNOWN;
        rank = factor(it.det, 1.0) * factor(it.conf, 0.0);
        if (rank > best_rank) {
            best_rank = rank;
            best = p;
            best_it = it;
        }
    }
    t = json_object_get(root, "epoch_time");
    if (t != NULL && ts_from_epoch(t, &res->read) != 0)
        return fail(res, CMN_EPARSE, "OpenALPR epoch_time is not a valid epoch time");
    if (best == NULL) {
        res->outcome = LPR_OUTCOME_NO_PLATE;
        return 0;
    }
    n = jcands(json_object_get(best, "candidates"), "confidence", 100.0, cands);
    build_read(&res->read, &best_it, cands, n);
    openalpr_camera(root, &res->read);
    t = json_object_get(root, "uuid");
    if (json_is_string(t))
        copy_text(res->read.source_ref, LPR_REF_MAX, json_string_value(t), json_string_length(t));
    res->outcome = LPR_OUTCOME_READ;
    res->nreads = 1;
    return 0;
}

static int openalpr_group(const json_t *root, lpr_result_t *res)
{
    struct rawcand cands[SCAN_CANDIDATES];
    const json_t *best = json_object_get(root, "best_plate"), *t;
    struct item it = {0};
    size_t n;
    int rc;

    res->format = LPR_FORMAT_OPENALPR_GROUP;
    if (best == NULL)
        return fail(res, CMN_EPARSE, "OpenALPR alpr_group without best_plate");
    rc = openalpr_item(best, "best_plate", res, &it);
    if (rc != 0)
        return rc;
    if (it.text == NULL && jtext(root, "best_plate_number", &it.text, &it.text_len) != 0)
        return fail(res, CMN_EPARSE, "OpenALPR best_plate_number is not a string");
    if (it.conf == LPR_CONF_UNKNOWN)
        it.conf = scaled(jnum(root, "best_confidence"), 100.0);
    /* The group's first sighting: when the vehicle reached the camera. */
    t = json_object_get(root, "epoch_start");
    if (t != NULL && ts_from_epoch(t, &res->read) != 0)
        return fail(res, CMN_EPARSE, "OpenALPR epoch_start is not a valid epoch time");
    res->nplates = 1;
    n = jcands(json_object_get(best, "candidates"), "confidence", 100.0, cands);
    build_read(&res->read, &it, cands, n);
    openalpr_camera(root, &res->read);
    t = json_object_get(root, "best_uuid");
    if (json_is_string(t))
        copy_text(res->read.source_ref, LPR_REF_MAX, json_string_value(t), json_string_length(t));
    res->outcome = LPR_OUTCOME_READ;
    res->nreads = 1;
    return 0;
}

static int parse_openalpr(const json_t *root, const char *data_type, lpr_result_t *res)
{
    char b[48];

    res->source = res->read.source = "openalpr";
    if (strcmp(data_type, "alpr_results") == 0)
        return openalpr_results(root, res);
    if (strcmp(data_type, "alpr_group") == 0)
        return openalpr_group(root, res);
    if (strcmp(data_type, "heartbeat") == 0) {
        res->format = LPR_FORMAT_OPENALPR_HEARTBEAT;
        res->outcome = LPR_OUTCOME_HEARTBEAT;
        return 0;
    }
    res->source = NULL;
    return fail(res, CMN_EPARSE, "OpenALPR data_type \"%s\" is not supported",
                snip(data_type, strlen(data_type), b, sizeof b));
}

/* ------------------------------------------------------------------------------------------ */
/* Plate Recognizer */

static void pr_direction(const json_t *v, lpr_read_t *r)
{
    if (json_is_integer(v))
        snprintf(r->camera_direction, sizeof r->camera_direction, "%lld",
                 (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(r->camera_direction, sizeof r->camera_direction, "%g", json_real_value(v));
    else if (json_is_string(v) && json_string_length(v) < sizeof r->camera_direction)
        copy_text(r->camera_direction, sizeof r->camera_direction, json_string_value(v),
                  json_string_length(v));
}

static int parse_pr(const json_t *root, const json_t *hook, lpr_result_t *res)
{
    struct rawcand cands[SCAN_CANDIDATES];
    const json_t *ev = json_object_get(hook, "event"), *data = json_object_get(root, "data");
    const json_t *results, *best = NULL, *ts;
    struct item it = {0}, best_it = {0};
    double best_rank = -1.0;
    char hid[64], b[48];
    size_t n;

    if (!json_is_string(ev))
        return fail(res, CMN_EPARSE, "Plate Recognizer hook without an event");
    res->source = res->read.source = "platerecognizer";
    if (strcmp(json_string_value(ev), "image.done") == 0) {
        res->format = LPR_FORMAT_PR_SNAPSHOT;
    } else if (strcmp(json_string_value(ev), "recognition") == 0) {
        res->format = LPR_FORMAT_PR_STREAM;
    } else {
        res->source = NULL;
        return fail(res, CMN_EPARSE, "Plate Recognizer event \"%s\" is not supported",
                    snip(json_string_value(ev), json_string_length(ev), b, sizeof b));
    }
    if (!json_is_object(data))
        return fail(res, CMN_EPARSE, "Plate Recognizer webhook without a data object");
    results = json_object_get(data, "results");
    if (!json_is_array(results))
        return fail(res, CMN_EPARSE, "Plate Recognizer data without a results array");
    n = json_array_size(results);
    res->nplates = (int)(n > INT32_MAX ? INT32_MAX : n);
    for (size_t i = 0; i < n; i++) {
        const json_t *p = json_array_get(results, i);
        double rank;
        if (!json_is_object(p))
            return fail(res, CMN_EPARSE, "Plate Recognizer results[%zu] is not an object", i);
        if (jtext(p, "plate", &it.text, &it.text_len) != 0)
            return fail(res, CMN_EPARSE, "Plate Recognizer results[%zu].plate is not a string", i);
        it.conf = scaled(jnum(p, "score"), 1.0);
        it.det = scaled(jnum(p, "dscore"), 1.0);
        rank = factor(it.det, 1.0) * factor(it.conf, 0.0);
        if (rank > best_rank) {
            best_rank = rank;
            best = p;
            best_it = it;
        }
    }
    ts = json_object_get(data, "timestamp");
    if (ts != NULL && !json_is_null(ts) &&
        (!json_is_string(ts) ||
         ts_from_text(json_string_value(ts), json_string_length(ts), 1, &res->read) != 0))
        return fail(res, CMN_EPARSE, "Plate Recognizer timestamp is not an RFC 3339 time");
    if (best == NULL) {
        res->outcome = LPR_OUTCOME_NO_PLATE;
        return 0;
    }
    n = jcands(json_object_get(best, "candidates"), "score", 1.0, cands);
    build_read(&res->read, &best_it, cands, n);
    pr_direction(json_object_get(best, "direction"), &res->read);
    jid(json_object_get(data, "camera_id"), res->read.camera, sizeof res->read.camera);
    /* The hook id is per webhook (Snapshot) or per camera (Stream); the timestamp is per image. */
    if (jid(json_object_get(hook, "id"), hid, sizeof hid) && json_is_string(ts))
        format_text(res->read.source_ref, LPR_REF_MAX, "%s@%s", hid, json_string_value(ts));
    else if (json_is_string(ts))
        copy_text(res->read.source_ref, LPR_REF_MAX, json_string_value(ts), json_string_length(ts));
    res->outcome = LPR_OUTCOME_READ;
    res->nreads = 1;
    return 0;
}

static int parse_json(const char *doc, size_t len, lpr_result_t *res)
{
    json_error_t je;
    json_t *root = json_loadb(doc, len, JSON_REJECT_DUPLICATES, &je);
    const json_t *dt, *hook;
    int rc = CMN_EPARSE;

    if (root == NULL) {
        if (json_error_code(&je) == json_error_premature_end_of_input)
            return fail(res, CMN_EPARSE, "truncated JSON (line %d, column %d)", je.line, je.column);
        if (json_error_code(&je) == json_error_out_of_memory)
            return fail(res, CMN_ENOMEM, "out of memory parsing JSON");
        return fail(res, CMN_EPARSE, "malformed JSON: %s (line %d, column %d)", je.text, je.line,
                    je.column);
    }
    if (!json_is_object(root)) {
        rc = fail(res, CMN_EPARSE, "JSON payload is not an object");
        goto out;
    }
    dt = json_object_get(root, "data_type");
    hook = json_object_get(root, "hook");
    if (dt != NULL) {
        if (!json_is_string(dt))
            rc = fail(res, CMN_EPARSE, "OpenALPR data_type is not a string");
        else
            rc = parse_openalpr(root, json_string_value(dt), res);
    } else if (json_is_object(hook)) {
        rc = parse_pr(root, hook, res);
    } else {
        rc = fail(res, CMN_EPARSE,
                  "JSON of unknown format (no OpenALPR data_type, no Plate Recognizer hook)");
    }
out:
    json_decref(root);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Hikvision (libxml2) */

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init(void)
{
    xmlInitParser();
}

static void silent_generic(void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
}

#if LIBXML_VERSION >= 21200
static void silent_structured(void *ctx, const xmlError *e)
#else
static void silent_structured(void *ctx, xmlErrorPtr e)
#endif
{
    (void)ctx;
    (void)e;
}

/* The first child element with local name `name`, in any namespace or none. */
static xmlNodePtr child(xmlNodePtr parent, const char *name)
{
    if (parent == NULL)
        return NULL;
    for (xmlNodePtr n = parent->children; n != NULL; n = n->next) {
        if (n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0)
            return n;
    }
    return NULL;
}

/*
 * The text of an element, trimmed: only its text and CDATA children.  Entity references are never
 * followed (there are none without a DOCTYPE, which is refused, but this keeps it so).  Returns the
 * length, or -1 when the element is absent or the text does not fit (out is then "").
 */
static int text(xmlNodePtr el, char *out, size_t outsz)
{
    size_t n = 0, start = 0;

    out[0] = '\0';
    if (el == NULL)
        return -1;
    for (xmlNodePtr c = el->children; c != NULL; c = c->next) {
        size_t l;
        if ((c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE) || c->content == NULL)
            continue;
        l = strlen((const char *)c->content);
        if (l >= outsz - n) {
            out[0] = '\0';
            return -1;
        }
        memcpy(out + n, c->content, l);
        n += l;
    }
    while (n > 0 && is_ws(out[n - 1]))
        n--;
    while (start < n && is_ws(out[start]))
        start++;
    memmove(out, out + start, n - start);
    n -= start;
    out[n] = '\0';
    return (int)n;
}

/* A decimal number "97", "97.5", "0.95"; -1 when the text is not one. */
static double decimal(const char *s, int *has_point)
{
    double v = 0.0, scale = 0.1;
    int digits = 0;

    *has_point = 0;
    for (; *s >= '0' && *s <= '9'; s++, digits++)
        v = v * 10.0 + (*s - '0');
    if (*s == '.') {
        *has_point = 1;
        for (s++; *s >= '0' && *s <= '9'; s++, digits++) {
            v += (*s - '0') * scale;
            scale /= 10.0;
        }
    }
    return digits > 0 && *s == '\0' ? v : -1.0;
}

/* confidenceLevel: an integer is 0-100 (92, 98 on real devices), a decimal number <= 1 is 0-1. */
static double hik_confidence(xmlNodePtr anpr)
{
    char buf[32];
    int point;
    double v;

    if (text(child(anpr, "confidenceLevel"), buf, sizeof buf) <= 0 &&
        text(child(anpr, "confidence"), buf, sizeof buf) <= 0)
        return LPR_CONF_UNKNOWN;
    v = decimal(buf, &point);
    if (v < 0.0)
        return LPR_CONF_UNKNOWN;
    return point && v <= 1.0 ? v : clamp01(v / 100.0);
}

/* "unknown" is how Hikvision says it does not know; it is no value. */
static void hik_opaque(xmlNodePtr el, char *out, size_t outsz)
{
    if (text(el, out, outsz) <= 0 || strcasecmp(out, "unknown") == 0)
        out[0] = '\0';
}

static void hik_ids(xmlNodePtr root, const char *date, lpr_read_t *r)
{
    static const char *const who[] = {"deviceID", "macAddress", "ipAddress", "ipv6Address"};
    char dev[64] = "", ip[64], ch[32], uuid[LPR_REF_MAX];

    for (size_t i = 0; i < sizeof who / sizeof who[0] && dev[0] == '\0'; i++)
        text(child(root, who[i]), dev, sizeof dev);
    if (text(child(root, "channelID"), ch, sizeof ch) <= 0)
        text(child(root, "dynChannelID"), ch, sizeof ch);
    if (dev[0] != '\0' && ch[0] != '\0')
        format_text(r->camera, sizeof r->camera, "%s/%s", dev, ch);
    else
        copy_text(r->camera, sizeof r->camera, dev[0] != '\0' ? dev : ch,
                  strlen(dev[0] ? dev : ch));

    /*
     * The alarm's UUID when the firmware sends one; otherwise device, channel and time.
     * activePostCount is deliberately left out: it counts re-uploads of the same alarm, which is
     * exactly what this key must collapse.
     */
    if (text(child(root, "UUID"), uuid, sizeof uuid) > 0 ||
        text(child(child(root, "ANPR"), "UUID"), uuid, sizeof uuid) > 0) {
        copy_text(r->source_ref, LPR_REF_MAX, uuid, strlen(uuid));
        return;
    }
    text(child(root, "ipAddress"), ip, sizeof ip);
    if (ip[0] != '\0' || ch[0] != '\0' || date[0] != '\0')
        format_text(r->source_ref, LPR_REF_MAX, "%s/%s/%s", ip, ch, date);
}

static int parse_hikvision(xmlNodePtr root, lpr_result_t *res)
{
    char type[32], state[32], date[64], orig[XML_TEXT_MAX], ptext[XML_TEXT_MAX];
    struct rawcand cand = {0};
    struct item it = {0};
    xmlNodePtr anpr, et = child(root, "eventType");
    int n;

    res->source = res->read.source = "hikvision";
    if (et == NULL)
        return fail(res, CMN_EPARSE, "Hikvision EventNotificationAlert without an eventType");
    text(et, type, sizeof type); /* too long for a known type: "" and so ignored */
    if (strcasecmp(type, "ANPR") != 0) {
        /* alertStream and some firmwares send videoloss/inactive as a keep-alive. */
        text(child(root, "eventState"), state, sizeof state);
        res->format = LPR_FORMAT_HIKVISION_EVENT;
        res->outcome = strcasecmp(type, "videoloss") == 0 && strcasecmp(state, "inactive") == 0
                           ? LPR_OUTCOME_HEARTBEAT
                           : LPR_OUTCOME_IGNORED;
        return 0;
    }
    res->format = LPR_FORMAT_HIKVISION_ANPR;
    anpr = child(root, "ANPR");
    if (anpr == NULL)
        return fail(res, CMN_EPARSE, "Hikvision ANPR event without an ANPR element");
    n = text(child(root, "dateTime"), date, sizeof date);
    if (n > 0 && ts_from_text(date, (size_t)n, 0, &res->read) != 0)
        return fail(res, CMN_EPARSE, "Hikvision dateTime \"%s\" is not an RFC 3339 time", date);
    if (n < 0 && child(root, "dateTime") != NULL)
        return fail(res, CMN_EPARSE, "Hikvision dateTime is not an RFC 3339 time");
    n = text(child(anpr, "licensePlate"), ptext, sizeof ptext);
    if (n < 0 && child(anpr, "licensePlate") != NULL)
        return fail(res, CMN_EPARSE, "Hikvision licensePlate is too long");
    it.text = ptext;
    it.text_len = n > 0 ? (size_t)n : 0;
    it.conf = hik_confidence(anpr);
    it.det = LPR_CONF_UNKNOWN;
    /* originalLicensePlate is the text before the camera's list correction: a fair candidate. */
    n = text(child(anpr, "originalLicensePlate"), orig, sizeof orig);
    if (n > 0) {
        cand.text = orig;
        cand.len = (size_t)n;
        cand.conf = LPR_CONF_UNKNOWN;
    }
    res->nplates = 1;
    build_read(&res->read, &it, &cand, cand.text != NULL ? 1 : 0);
    hik_opaque(child(anpr, "direction"), res->read.camera_direction, LPR_SHORT_MAX);
    hik_opaque(child(anpr, "plateColor"), res->read.plate_color, LPR_SHORT_MAX);
    hik_ids(root, date, &res->read);
    res->outcome = LPR_OUTCOME_READ;
    res->nreads = 1;
    return 0;
}

static int is_utf8_name(const char *enc)
{
    return strcasecmp(enc, "UTF-8") == 0 || strcasecmp(enc, "UTF8") == 0;
}

/* The encoding the document declared, as libxml2 read it, whether or not the parse succeeded. */
static const char *declared_encoding(xmlParserCtxtPtr ctxt, xmlDocPtr doc)
{
    if (ctxt->input != NULL && ctxt->input->encoding != NULL)
        return (const char *)ctxt->input->encoding;
    if (ctxt->encoding != NULL)
        return (const char *)ctxt->encoding;
    if (doc != NULL && doc->encoding != NULL)
        return (const char *)doc->encoding;
    return NULL;
}

static int parse_xml(const char *doc, size_t len, lpr_result_t *res)
{
    xmlGenericErrorFunc old_generic;
    xmlStructuredErrorFunc old_structured;
    void *old_generic_ctx, *old_structured_ctx;
    xmlParserCtxtPtr ctxt = NULL;
    xmlDocPtr d = NULL;
    xmlNodePtr root;
    const char *enc;
    char b[48];
    int rc = CMN_EPARSE;

    /* Camera payloads never carry a DTD; refusing it up front keeps entity tricks out. */
    if (memmem(doc, len, "<!DOCTYPE", 9) != NULL)
        return fail(res, CMN_EPARSE, "XML with a DOCTYPE refused");
    pthread_once(&xml_once, xml_init);
    /*
     * libxml2 reports encoding errors through its per-thread global handlers even with
     * XML_PARSE_NOERROR; silence them for this call and give the thread its handlers back.
     */
    old_generic = xmlGenericError;
    old_generic_ctx = xmlGenericErrorContext;
    old_structured = xmlStructuredError;
    old_structured_ctx = xmlStructuredErrorContext;
    xmlSetGenericErrorFunc(NULL, silent_generic);
    xmlSetStructuredErrorFunc(NULL, silent_structured);

    ctxt = xmlNewParserCtxt();
    if (ctxt == NULL) {
        rc = fail(res, CMN_ENOMEM, "out of memory parsing XML");
        goto out;
    }
    /* No XML_PARSE_NOENT (no entity substitution), no XML_PARSE_DTDLOAD, no network. */
    d = xmlCtxtReadMemory(ctxt, doc, (int)len, "payload.xml", NULL,
                          XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    enc = declared_encoding(ctxt, d);
    if (enc != NULL && !is_utf8_name(enc)) {
        rc = fail(res, CMN_EPARSE, "XML declares encoding \"%s\": only UTF-8 is accepted",
                  snip(enc, strlen(enc), b, sizeof b));
        goto out;
    }
    if (d == NULL) {
        const xmlError *e = xmlCtxtGetLastError(ctxt);
        const char *msg = e != NULL && e->message != NULL ? e->message : "unknown error";
        size_t ml = strcspn(msg, "\n");
        char m[120];
        if (e != NULL && e->code == XML_ERR_NO_MEMORY)
            rc = fail(res, CMN_ENOMEM, "out of memory parsing XML");
        else
            rc = fail(res, CMN_EPARSE, "malformed XML: %s (line %d)", snip(msg, ml, m, sizeof m),
                      e != NULL ? e->line : 0);
        goto out;
    }
    if (d->intSubset != NULL || d->extSubset != NULL) {
        rc = fail(res, CMN_EPARSE, "XML with a DOCTYPE refused");
        goto out;
    }
    root = xmlDocGetRootElement(d);
    if (root == NULL || strcmp((const char *)root->name, "EventNotificationAlert") != 0) {
        rc = fail(res, CMN_EPARSE, "XML root <%s> is not a Hikvision EventNotificationAlert",
                  root != NULL ? snip((const char *)root->name, strlen((const char *)root->name), b,
                                      sizeof b)
                               : "");
        goto out;
    }
    rc = parse_hikvision(root, res);
out:
    xmlFreeDoc(d);
    if (ctxt != NULL)
        xmlFreeParserCtxt(ctxt);
    xmlSetGenericErrorFunc(old_generic_ctx, old_generic);
    xmlSetStructuredErrorFunc(old_structured_ctx, old_structured);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Envelope and document */

/* Skips a UTF-8 BOM and white space; returns the offset of the first significant byte. */
static size_t significant(const char *s, size_t len)
{
    size_t i = 0;

    if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
        i = 3;
    while (i < len && is_ws(s[i]))
        i++;
    return i;
}

static int parse_document(const char *doc, size_t len, lpr_result_t *res)
{
    size_t i;

    if (len > LPR_MAX_DOCUMENT)
        return fail(res, CMN_ETOOBIG, "document of %zu bytes exceeds the limit of %u bytes", len,
                    (unsigned)LPR_MAX_DOCUMENT);
    if (len >= 2 && ((unsigned char)doc[0] == 0xFE || (unsigned char)doc[0] == 0xFF) &&
        ((unsigned char)doc[1] == 0xFE || (unsigned char)doc[1] == 0xFF))
        return fail(res, CMN_EPARSE, "UTF-16 document refused: only UTF-8 is accepted");
    if (memchr(doc, '\0', len) != NULL)
        return fail(res, CMN_EPARSE,
                    "NUL byte in the document (UTF-16/32?): only UTF-8 is accepted");
    i = significant(doc, len);
    if (i == len)
        return fail(res, CMN_EPARSE, "empty payload");
    if (doc[i] == '{' || doc[i] == '[')
        return parse_json(doc + i, len - i, res);
    if (doc[i] == '<')
        return parse_xml(doc + i, len - i, res);
    return fail(res, CMN_EPARSE, "payload is neither JSON, XML nor multipart");
}

/* A charset parameter other than UTF-8 (or its subset US-ASCII) is refused. */
static int check_charset(const char *ctype, size_t len, const char *what, lpr_result_t *res)
{
    char cs[48];
    int n;

    if (ctype == NULL || len == 0)
        return 0;
    n = lpr_multipart_param(ctype, len, "charset", cs, sizeof cs);
    if (n == CMN_ENOTFOUND || n == CMN_EPARSE)
        return 0; /* no charset, or a parameter list we do not need to understand */
    if (n >= 0 && (is_utf8_name(cs) || strcasecmp(cs, "us-ascii") == 0))
        return 0;
    return fail(res, CMN_EPARSE, "%s declares charset \"%s\": only UTF-8 is accepted", what, cs);
}

static int media_is(const char *ctype, const char *prefix, const char *suffix)
{
    size_t n = strcspn(ctype, ";"), pl = strlen(prefix), sl = suffix != NULL ? strlen(suffix) : 0;

    while (n > 0 && is_ws(ctype[n - 1]))
        n--;
    if (n >= pl && strncasecmp(ctype, prefix, pl) == 0)
        return 1;
    return sl > 0 && n >= sl && strncasecmp(ctype + n - sl, suffix, sl) == 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), sl = strlen(suffix);

    return n >= sl && strcasecmp(s + n - sl, suffix) == 0;
}

/*
 * The document part: the part named `json` (Plate Recognizer), else the first with a JSON or XML
 * media type, else the first whose name or filename ends in .xml or .json (Hikvision anpr.xml),
 * else the first non-image part whose content starts like JSON or XML.
 */
static const lpr_multipart_part_t *pick_part(const lpr_multipart_t *mp)
{
    const lpr_multipart_part_t *p = lpr_multipart_find(mp, "json");

    if (p != NULL)
        return p;
    for (size_t i = 0; i < mp->nparts; i++) {
        const char *ct = mp->parts[i].content_type;
        if (media_is(ct, "application/json", "+json") || media_is(ct, "text/json", NULL) ||
            media_is(ct, "application/xml", "+xml") || media_is(ct, "text/xml", NULL))
            return &mp->parts[i];
    }
    for (size_t i = 0; i < mp->nparts; i++) {
        p = &mp->parts[i];
        if (ends_with(p->name, ".xml") || ends_with(p->name, ".json") ||
            ends_with(p->filename, ".xml") || ends_with(p->filename, ".json"))
            return p;
    }
    for (size_t i = 0; i < mp->nparts; i++) {
        size_t k;
        p = &mp->parts[i];
        if (media_is(p->content_type, "image/", NULL))
            continue;
        k = significant(p->body, p->body_len);
        if (k < p->body_len && (p->body[k] == '{' || p->body[k] == '<'))
            return p;
    }
    return NULL;
}

/* A body that starts with `--token` on its own line is multipart whatever the headers said. */
static int sniff_boundary(const char *body, size_t len, char *out, size_t outsz)
{
    size_t n = 0;

    if (len < 3 || body[0] != '-' || body[1] != '-')
        return CMN_ENOTFOUND;
    while (2 + n < len && body[2 + n] != '\r' && body[2 + n] != '\n' &&
           n <= LPR_MULTIPART_BOUNDARY_MAX)
        n++;
    while (n > 0 && (body[1 + n] == ' ' || body[1 + n] == '\t'))
        n--;
    if (n == 0 || n >= outsz || lpr_multipart_boundary_check(body + 2, n) != 0)
        return CMN_ENOTFOUND;
    memcpy(out, body + 2, n);
    out[n] = '\0';
    return (int)n;
}

static int parse_multipart(const char *boundary, const char *body, size_t len, lpr_result_t *res)
{
    lpr_multipart_t *mp;
    const lpr_multipart_part_t *part;
    int rc;

    /* About 10 KiB of fixed size: on the heap so that a small thread stack is never at risk. */
    mp = cmn_xalloc(sizeof *mp);
    res->multipart = 1;
    rc = lpr_multipart_parse(boundary, body, len, mp);
    if (rc == CMN_AGAIN) {
        rc = fail(res, CMN_EPARSE, "truncated multipart body: %s", mp->error);
        goto out;
    }
    if (rc != 0) {
        rc = fail(res, rc == CMN_ETOOBIG ? rc : CMN_EPARSE, "malformed multipart body: %s",
                  mp->error);
        goto out;
    }
    part = pick_part(mp);
    if (part == NULL) {
        rc = fail(res, CMN_EPARSE, "multipart body without a JSON or XML part (%zu parts)",
                  mp->nparts);
        goto out;
    }
    rc = check_charset(part->content_type, strlen(part->content_type), "multipart part", res);
    if (rc != 0)
        goto out;
    rc = parse_document(part->body, part->body_len, res);
out:
    cmn_free(mp);
    return rc;
}

int lpr_parse(const char *ctype, size_t ctype_len, const char *body, size_t body_len,
              lpr_result_t *res)
{
    char boundary[LPR_MULTIPART_BOUNDARY_MAX + 1];
    int rc;

    if (res == NULL)
        return CMN_EINVAL;
    memset(res, 0, sizeof *res);
    res->read.vclass = "small";
    res->read.kind = CMN_PLATE_OTHER;
    res->read.confidence = LPR_CONF_UNKNOWN;
    if (body == NULL && body_len > 0)
        return fail(res, CMN_EINVAL, "no body");
    if (body == NULL)
        body = "";
    if (ctype == NULL)
        ctype_len = 0;
    if (body_len > LPR_MAX_BODY)
        return fail(res, CMN_ETOOBIG, "body of %zu bytes exceeds the limit of %u bytes", body_len,
                    (unsigned)LPR_MAX_BODY);

    rc = ctype_len > 0 ? lpr_multipart_boundary(ctype, ctype_len, boundary, sizeof boundary)
                       : CMN_EINVAL;
    if (rc >= 0)
        rc = parse_multipart(boundary, body, body_len, res);
    else if (sniff_boundary(body, body_len, boundary, sizeof boundary) > 0)
        rc = parse_multipart(boundary, body, body_len, res);
    else if (rc != CMN_EINVAL)
        rc = fail(res, CMN_EPARSE, "multipart Content-Type without a usable boundary");
    else if ((rc = check_charset(ctype, ctype_len, "Content-Type", res)) == 0)
        rc = parse_document(body, body_len, res);
    if (rc != 0) {
        res->nreads = 0;
        if (res->error[0] == '\0')
            fail(res, rc, "%s", cmn_strerror(rc));
    } else {
        res->error[0] = '\0';
    }
    return rc;
}

const char *lpr_format_name(lpr_format_t format)
{
    switch (format) {
    case LPR_FORMAT_OPENALPR_RESULTS:
        return "openalpr.alpr_results";
    case LPR_FORMAT_OPENALPR_GROUP:
        return "openalpr.alpr_group";
    case LPR_FORMAT_OPENALPR_HEARTBEAT:
        return "openalpr.heartbeat";
    case LPR_FORMAT_PR_SNAPSHOT:
        return "platerecognizer.snapshot";
    case LPR_FORMAT_PR_STREAM:
        return "platerecognizer.stream";
    case LPR_FORMAT_HIKVISION_ANPR:
        return "hikvision.anpr";
    case LPR_FORMAT_HIKVISION_EVENT:
        return "hikvision.event";
    default:
        return "unknown";
    }
}

const char *lpr_outcome_name(lpr_outcome_t outcome)
{
    switch (outcome) {
    case LPR_OUTCOME_READ:
        return "read";
    case LPR_OUTCOME_NO_PLATE:
        return "no_plate";
    case LPR_OUTCOME_HEARTBEAT:
        return "heartbeat";
    case LPR_OUTCOME_IGNORED:
        return "ignored";
    default:
        return "unknown";
    }
}
