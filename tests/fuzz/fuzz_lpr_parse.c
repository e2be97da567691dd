/*
 * libFuzzer harness for lpr-bridge/parse.h (and the JSON form of normalize.h).  The first input
 * byte picks the Content-Type (low 3 bits: none, application/json, the alprd form-urlencoded
 * label, text/xml, text/xml with charset=GBK, multipart with boundary "b", multipart with a quoted
 * boundary "b:1", or the text up to the first '\n' of the input); the rest is the body.
 * Besides "no crash, no sanitizer report", it checks the contract of parse.h:
 *
 *  - lpr_parse returns 0, CMN_EPARSE or CMN_ETOOBIG; failures carry a one-line reason and no read;
 *  - a success has a source, a known format and outcome, and nreads is 1 exactly for a read;
 *  - an unreadable read has no plate, no candidates, class "small" and a reason;
 *  - a readable read's plate is what cmn_plate_parse makes of it (valid, same kind and class) and
 *    is candidate 0; candidates are valid, normalised, distinct and at most LPR_MAX_CANDIDATES;
 *  - confidences are in [0, 1] or LPR_CONF_UNKNOWN; ts is the floor of ts_ms in seconds and inside
 *    the instant range;
 *  - every text field is NUL-terminated inside its array and valid UTF-8;
 *  - parsing is deterministic (a second run gives the same bytes) and the JSON form serialises.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/utf8.h>

#include "cmn/err.h"
#include "cmn/json.h"
#include "cmn/mem.h"
#include "normalize.h"
#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const char *const CTYPES[] = {
    NULL,
    "application/json",
    "application/x-www-form-urlencoded",
    "text/xml",
    "text/xml; charset=GBK",
    "multipart/form-data; boundary=b",
    "multipart/form-data; boundary=\"b:1\"",
};

static lpr_result_t res, res2;

static void check_utf8(const char *s, size_t cap)
{
    int32_t i = 0, len;
    UChar32 c;

    CHECK(memchr(s, '\0', cap) != NULL);
    len = (int32_t)strlen(s);
    while (i < len) {
        U8_NEXT(s, i, len, c);
        CHECK(c >= 0);
    }
}

static void check_conf(double c)
{
    CHECK(c == LPR_CONF_UNKNOWN || (c >= 0.0 && c <= 1.0));
}

static void check_read(const lpr_read_t *r)
{
    cmn_plate_t p;

    CHECK(r->source == res.source);
    CHECK(r->vclass != NULL);
    CHECK(strcmp(r->vclass, "small") == 0 || strcmp(r->vclass, "large") == 0 ||
          strcmp(r->vclass, "new_energy") == 0);
    check_conf(r->confidence);
    check_utf8(r->plate, sizeof r->plate);
    check_utf8(r->plate_raw, sizeof r->plate_raw);
    check_utf8(r->camera, sizeof r->camera);
    check_utf8(r->camera_direction, sizeof r->camera_direction);
    check_utf8(r->plate_color, sizeof r->plate_color);
    check_utf8(r->source_ref, sizeof r->source_ref);
    CHECK(r->ncandidates >= 0 && r->ncandidates <= LPR_MAX_CANDIDATES);
    if (r->unreadable) {
        CHECK(r->unreadable == 1 && r->plate[0] == '\0' && r->ncandidates == 0);
        CHECK(strcmp(r->vclass, "small") == 0 && r->unreadable_reason != NULL);
        CHECK(r->kind == CMN_PLATE_OTHER);
    } else {
        CHECK(r->unreadable_reason == NULL);
        CHECK(cmn_plate_parse(r->plate, strlen(r->plate), &p) == 0);
        CHECK(strcmp(p.text, r->plate) == 0 && p.kind == r->kind &&
              strcmp(p.vclass, r->vclass) == 0);
        CHECK(r->ncandidates >= 1 && strcmp(r->candidates[0].plate, r->plate) == 0);
    }
    for (int i = 0; i < r->ncandidates; i++) {
        const lpr_candidate_t *c = &r->candidates[i];
        check_utf8(c->plate, sizeof c->plate);
        check_conf(c->confidence);
        CHECK(cmn_plate_parse(c->plate, strlen(c->plate), &p) == 0 &&
              strcmp(p.text, c->plate) == 0);
        for (int j = 0; j < i; j++)
            CHECK(strcmp(r->candidates[j].plate, c->plate) != 0);
    }
    if (r->has_ts) {
        CHECK(r->has_ts == 1);
        CHECK(r->ts == cmn_floordiv(r->ts_ms, 1000));
        CHECK(r->ts >= CMN_INSTANT_MIN && r->ts <= CMN_INSTANT_MAX);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *ctype, *body;
    size_t ctype_len = 0, len;
    json_t *j;
    char *s;
    int rc, sel;

    if (size == 0)
        return 0;
    sel = data[0] & 7;
    body = (const char *)data + 1;
    len = size - 1;
    if (sel == 7) {
        const char *nl = memchr(body, '\n', len);
        ctype = body;
        ctype_len = nl != NULL ? (size_t)(nl - body) : len;
        body += nl != NULL ? ctype_len + 1 : len;
        len -= nl != NULL ? ctype_len + 1 : len;
    } else {
        ctype = CTYPES[sel];
        ctype_len = ctype != NULL ? strlen(ctype) : 0;
    }

    rc = lpr_parse(ctype, ctype_len, body, len, &res);
    CHECK(rc == 0 || rc == CMN_EPARSE || rc == CMN_ETOOBIG);
    check_utf8(res.error, sizeof res.error);
    if (rc != 0) {
        CHECK(res.error[0] != '\0' && res.nreads == 0);
        for (const char *p = res.error; *p != '\0'; p++)
            CHECK((unsigned char)*p >= 0x20);
    } else {
        CHECK(res.error[0] == '\0' && res.source != NULL);
        CHECK(res.format != LPR_FORMAT_UNKNOWN &&
              strcmp(lpr_format_name(res.format), "unknown") != 0);
        CHECK(strcmp(lpr_outcome_name(res.outcome), "unknown") != 0);
        CHECK(res.nreads == (res.outcome == LPR_OUTCOME_READ));
        CHECK(res.nplates >= res.nreads);
        if (res.nreads == 1) {
            check_read(&res.read);
            j = lpr_read_to_json(&res.read, res.format);
            CHECK(j != NULL);
            s = cmn_json_dump(j, JSON_COMPACT | JSON_REAL_PRECISION(6));
            CHECK(s != NULL);
            cmn_free(s);
            json_decref(j);
        }
    }

    CHECK(lpr_parse(ctype, ctype_len, body, len, &res2) == rc);
    CHECK(memcmp(&res, &res2, sizeof res) == 0);
    return 0;
}
