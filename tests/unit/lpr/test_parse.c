/*
 * Unit tests of lpr-bridge/parse.h: every payload of tests/samples/lpr with its exact read (plate,
 * unreadable flag, raw text, confidence, candidates, instant, class, kind, source, camera,
 * direction, colour, de-duplication reference) or its exact error, then the edge cases inline:
 * content detection with and without Content-Type, charsets and encodings, epoch heuristics, time
 * zones, confidence scales, selection among several plates, candidate rules, limits, thread
 * safety, and libxml2's error handlers being left as they were.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libxml/parser.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn/err.h"
#include "parse.h"

#define EPS 1e-9
#define NONE (-2.0) /* "no candidate" marker in the tables */

struct want {
    const char *file;
    int rc;
    const char *error; /* exact, when rc != 0 */
    lpr_format_t format;
    lpr_outcome_t outcome;
    int multipart;
    int nplates;
    const char *plate; /* NULL: unreadable */
    const char *reason;
    const char *raw;
    double conf;
    const char *cand[LPR_MAX_CANDIDATES + 1];
    double cconf[LPR_MAX_CANDIDATES + 1];
    int has_ts;
    int64_t ts_ms;
    const char *vclass;
    cmn_plate_kind_t kind;
    const char *source;
    const char *camera;
    const char *direction;
    const char *color;
    const char *ref;
};

static lpr_result_t res;

static int group_setup(void **state)
{
    (void)state;
    return getenv("PARK_SOURCE_DIR") != NULL ? 0 : -1;
}

static char *slurp(const char *file, size_t *len)
{
    char path[1024];
    size_t cap = 1 << 20, n;
    char *buf = malloc(cap);
    FILE *f;

    snprintf(path, sizeof path, "%s/tests/samples/lpr/%s", getenv("PARK_SOURCE_DIR"), file);
    f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/*
 * Parses a sample: .http files are split here (Content-Type header, body after the blank line,
 * Content-Length bytes), everything else goes in with no Content-Type at all.
 */
static int parse_sample(const char *file, lpr_result_t *r)
{
    size_t len;
    char *buf = slurp(file, &len);
    int rc;

    if (strstr(file, ".http") != NULL) {
        char *end = strstr(buf, "\r\n\r\n"), *ct = strstr(buf, "\r\nContent-Type: ");
        char *cl = strstr(buf, "\r\nContent-Length: ");
        assert_non_null(end);
        assert_non_null(cl);
        rc = lpr_parse(ct != NULL && ct < end ? ct + 16 : NULL,
                       ct != NULL && ct < end ? strcspn(ct + 16, "\r") : 0, end + 4,
                       strtoul(cl + 18, NULL, 10), r);
    } else {
        rc = lpr_parse(NULL, 0, buf, len, r);
    }
    free(buf);
    return rc;
}

static void assert_conf(double got, double want)
{
    if (want == LPR_CONF_UNKNOWN)
        assert_true(got == LPR_CONF_UNKNOWN);
    else if (!(got > want - EPS && got < want + EPS))
        fail_msg("confidence %.9f, expected %.9f", got, want);
}

static void check(const struct want *w)
{
    const lpr_read_t *r = &res.read;
    int n = 0;

    memset(&res, 0x5A, sizeof res);
    assert_int_equal(parse_sample(w->file, &res), w->rc);
    if (w->rc != 0) {
        assert_string_equal(res.error, w->error);
        assert_int_equal(res.nreads, 0);
        return;
    }
    assert_string_equal(res.error, "");
    assert_int_equal(res.format, w->format);
    assert_int_equal(res.outcome, w->outcome);
    assert_int_equal(res.multipart, w->multipart);
    assert_int_equal(res.nplates, w->nplates);
    assert_string_equal(res.source, w->source);
    if (w->outcome != LPR_OUTCOME_READ) {
        assert_int_equal(res.nreads, 0);
        return;
    }
    assert_int_equal(res.nreads, 1);
    assert_string_equal(r->source, w->source);
    if (w->plate == NULL) {
        assert_int_equal(r->unreadable, 1);
        assert_string_equal(r->plate, "");
        assert_string_equal(r->unreadable_reason, w->reason);
        assert_int_equal(r->kind, CMN_PLATE_OTHER);
    } else {
        assert_int_equal(r->unreadable, 0);
        assert_null(r->unreadable_reason);
        assert_string_equal(r->plate, w->plate);
        assert_int_equal(r->kind, w->kind);
    }
    assert_string_equal(r->plate_raw, w->raw);
    assert_conf(r->confidence, w->conf);
    while (n < LPR_MAX_CANDIDATES && w->cand[n] != NULL)
        n++;
    assert_int_equal(r->ncandidates, n);
    for (int i = 0; i < n; i++) {
        assert_string_equal(r->candidates[i].plate, w->cand[i]);
        assert_conf(r->candidates[i].confidence, w->cconf[i]);
    }
    assert_int_equal(r->has_ts, w->has_ts);
    if (w->has_ts) {
        assert_int_equal(r->ts_ms, w->ts_ms);
        assert_int_equal(r->ts, w->ts_ms / 1000);
    }
    assert_string_equal(r->vclass, w->vclass);
    assert_string_equal(r->camera, w->camera != NULL ? w->camera : "");
    assert_string_equal(r->camera_direction, w->direction != NULL ? w->direction : "");
    assert_string_equal(r->plate_color, w->color != NULL ? w->color : "");
    assert_string_equal(r->source_ref, w->ref != NULL ? w->ref : "");
}

static const struct want SAMPLES[] = {
    {.file = "01_openalpr_cli_alpr_results.json",
     .format = LPR_FORMAT_OPENALPR_RESULTS,
     .nplates = 1,
     .plate = "KX70YTW",
     .raw = "KX70YTW",
     .conf = 0.89874512,
     .cand = {"KX70YTW", "KX7OYTW", "KX70YIW", "KX70YW"},
     .cconf = {0.89874512, 0.84120331, 0.80553101, 0.78006996},
     .has_ts = 1,
     .ts_ms = 1741931705123,
     .vclass = "small",
     .kind = CMN_PLATE_OTHER,
     .source = "openalpr"},
    /* The higher-confidence 5ABC1 is a small background plate: detection × read picks AB123CD. */
    {.file = "02_openalpr_alprd_lowconf_two_plates.json",
     .format = LPR_FORMAT_OPENALPR_RESULTS,
     .nplates = 2,
     .plate = "AB123CD",
     .raw = "AB123CD",
     .conf = 0.61402355,
     .cand = {"AB123CD", "A8123CD", "AB123C0", "AB12JCD", "AB123CQ"},
     .cconf = {0.61402355, 0.6091811, 0.58233402, 0.55019775, 0.54700012},
     .has_ts = 1,
     .ts_ms = 1741931766480,
     .vclass = "small",
     .kind = CMN_PLATE_OTHER,
     .source = "openalpr",
     .camera = "lot7-exit/2",
     .ref = "lot7-exit-cam2-1741931766480"},
    {.file = "04_platerecognizer_stream_webhook.json",
     .format = LPR_FORMAT_PR_STREAM,
     .nplates = 1,
     .plate = "BD51SMR",
     .raw = "bd51smr",
     .conf = 0.903,
     .cand = {"BD51SMR", "BD5ISMR", "8D51SMR"},
     .cconf = {0.903, LPR_CONF_UNKNOWN, LPR_CONF_UNKNOWN},
     .has_ts = 1,
     .ts_ms = 1741945337412,
     .vclass = "small",
     .kind = CMN_PLATE_OTHER,
     .source = "platerecognizer",
     .camera = "gate-exit-2",
     .direction = "92",
     .ref = "gate-exit-2@2025-03-14T09:42:17.412331Z"},
    {.file = "05_platerecognizer_snapshot_webhook_lowconf.json",
     .format = LPR_FORMAT_PR_SNAPSHOT,
     .nplates = 1,
     .plate = "KX70YTW",
     .raw = "kx70ytw",
     .conf = 0.412,
     .cand = {"KX70YTW", "KX7OYTW", "KX70YFW"},
     .cconf = {0.412, 0.398, 0.377},
     .has_ts = 1,
     .ts_ms = 1741945265123,
     .vclass = "small",
     .kind = CMN_PLATE_OTHER,
     .source = "platerecognizer",
     .camera = "gate-entry-1",
     .ref = "5123@2025-03-14T09:41:05.123441Z"},
    {.file = "07_hikvision_anpr_entry_newenergy.xml",
     .format = LPR_FORMAT_HIKVISION_ANPR,
     .nplates = 1,
     .plate = "粤BD12345",
     .raw = "粤BD12345",
     .conf = 0.97,
     .cand = {"粤BD12345"},
     .cconf = {0.97},
     .has_ts = 1,
     .ts_ms = 1741945202318,
     .vclass = "new_energy",
     .kind = CMN_PLATE_NEW_ENERGY,
     .source = "hikvision",
     .camera = "c0:56:e3:8a:12:7f/1",
     .direction = "forward",
     .color = "green",
     .ref = "9f2c1e4a-6b0d-4d7e-8a35-1c2b3d4e5f60"},
    {.file = "08_hikvision_anpr_exit_coach_xue_lowconf.xml",
     .format = LPR_FORMAT_HIKVISION_ANPR,
     .nplates = 1,
     .plate = "苏A1234学",
     .raw = "苏A1234学",
     .conf = 0.68,
     .cand = {"苏A1234学"},
     .cconf = {0.68},
     .has_ts = 1,
     .ts_ms = 1741946744000,
     .vclass = "small",
     .kind = CMN_PLATE_COACH,
     .source = "hikvision",
     .camera = "c0:56:e3:8a:13:02/1",
     .direction = "reverse",
     .color = "yellow",
     .ref = "10.20.0.12/1/2025-03-14T18:05:44+08:00"},
    {.file = "10_hikvision_multipart_unreadable_plate.http",
     .format = LPR_FORMAT_HIKVISION_ANPR,
     .multipart = 1,
     .nplates = 1,
     .reason = "no-plate sentinel",
     .raw = "无车牌",
     .conf = 0.0,
     .has_ts = 1,
     .ts_ms = 1741962667000,
     .vclass = "small",
     .source = "hikvision",
     .camera = "c0:56:e3:8a:13:02/1",
     .direction = "reverse",
     .ref = "10.20.0.12/1/2025-03-14T22:31:07+08:00"},
    {.file = "20_openalpr_alprd_cn_fullwidth_epoch_seconds.json",
     .format = LPR_FORMAT_OPENALPR_RESULTS,
     .nplates = 1,
     .plate = "浙A12345",
     .raw = "浙Ａ·１２３４５",
     .conf = 0.925,
     .cand = {"浙A12345", "浙A12346"},
     .cconf = {0.925, 0.80},
     .has_ts = 1,
     .ts_ms = 1741931705000,
     .vclass = "small",
     .kind = CMN_PLATE_ORDINARY,
     .source = "openalpr",
     .camera = "lot7-entry/1",
     .ref = "6f1e9b0a-4c2d-4e1f-9a3b-2c4d5e6f7a8b"},
    {.file = "21_openalpr_hk_lowercase_epoch_ms_real.json",
     .format = LPR_FORMAT_OPENALPR_RESULTS,
     .nplates = 1,
     .plate = "粤Z1234港",
     .raw = "粤z·1234港",
     .conf = 0.77,
     .cand = {"粤Z1234港"},
     .cconf = {0.77},
     .has_ts = 1,
     .ts_ms = 1741931766480,
     .vclass = "small",
     .kind = CMN_PLATE_HONG_KONG,
     .source = "openalpr",
     .camera = "lot7-exit/3"},
    {.file = "22_openalpr_empty_results.json",
     .format = LPR_FORMAT_OPENALPR_RESULTS,
     .outcome = LPR_OUTCOME_NO_PLATE,
     .source = "openalpr"},
    {.file = "23_openalpr_heartbeat.json",
     .format = LPR_FORMAT_OPENALPR_HEARTBEAT,
     .outcome = LPR_OUTCOME_HEARTBEAT,
     .source = "openalpr"},
    {.file = "24_openalpr_alpr_group_newenergy_large.json",
     .format = LPR_FORMAT_OPENALPR_GROUP,
     .nplates = 1,
     .plate = "沪A12345D",
     .raw = "沪A12345D",
     .conf = 0.941,
     .cand = {"沪A12345D", "泸A12345D"},
     .cconf = {0.941, 0.712},
     .has_ts = 1,
     .ts_ms = 1741931700500,
     .vclass = "new_energy",
     .kind = CMN_PLATE_NEW_ENERGY,
     .source = "openalpr",
     .camera = "lot7-entry/1904567812",
     .ref = "lot7-entry-cam1904567812-1741931701200"},
    {.file = "25_openalpr_invalid_top_candidate_promoted.json",
     .format = LPR_FORMAT_OPENALPR_RESULTS,
     .nplates = 1,
     .plate = "苏E12045",
     .raw = "苏E12O45",
     .conf = 0.815,
     .cand = {"苏E12045", "苏E120A5"},
     .cconf = {0.815, 0.602},
     .has_ts = 1,
     .ts_ms = 1741931900250,
     .vclass = "small",
     .kind = CMN_PLATE_ORDINARY,
     .source = "openalpr",
     .camera = "lot7-exit/2",
     .ref = "lot7-exit-cam2-1741931900250"},
    {.file = "26_openalpr_trailer_fullwidth.json",
     .format = LPR_FORMAT_OPENALPR_RESULTS,
     .nplates = 1,
     .plate = "鲁Q5678挂",
     .raw = "鲁Ｑ·５６７８挂",
     .conf = 0.888,
     .cand = {"鲁Q5678挂"},
     .cconf = {0.888},
     .has_ts = 1,
     .ts_ms = 1741932000000,
     .vclass = "large",
     .kind = CMN_PLATE_TRAILER,
     .source = "openalpr",
     .camera = "lot7-entry/1",
     .ref = "lot7-entry-cam1-1741932000000"},
    {.file = "27_platerecognizer_snapshot_no_plate.json",
     .format = LPR_FORMAT_PR_SNAPSHOT,
     .outcome = LPR_OUTCOME_NO_PLATE,
     .source = "platerecognizer"},
    {.file = "28_platerecognizer_snapshot_two_plates_zoneless.json",
     .format = LPR_FORMAT_PR_SNAPSHOT,
     .nplates = 2,
     .plate = "AB12CDE",
     .raw = "ab 12-cde",
     .conf = 0.802,
     .cand = {"AB12CDE", "AB12CDF"},
     .cconf = {0.802, 0.701},
     .has_ts = 1,
     .ts_ms = 1633931038514,
     .vclass = "small",
     .kind = CMN_PLATE_OTHER,
     .source = "platerecognizer",
     .ref = "5123@2021-10-11 05:43:58.514896"},
    {.file = "29_platerecognizer_multipart_with_image.http",
     .format = LPR_FORMAT_PR_STREAM,
     .multipart = 1,
     .nplates = 1,
     .plate = "KX70YTW",
     .raw = "kx70 ytw",
     .conf = 0.874,
     .cand = {"KX70YTW", "KX7OYTW"},
     .cconf = {0.874, LPR_CONF_UNKNOWN},
     .has_ts = 1,
     .ts_ms = 1741945381250,
     .vclass = "small",
     .kind = CMN_PLATE_OTHER,
     .source = "platerecognizer",
     .camera = "gate-entry-3",
     .ref = "gate-entry-3@2025-03-14T09:43:01.250000Z"},
    {.file = "30_platerecognizer_stream_vehicle_no_plate.json",
     .format = LPR_FORMAT_PR_STREAM,
     .nplates = 1,
     .reason = "empty read",
     .raw = "",
     .conf = 0.0,
     .has_ts = 1,
     .ts_ms = 1741945800999,
     .vclass = "small",
     .source = "platerecognizer",
     .camera = "gate-exit-2",
     .direction = "225",
     .ref = "gate-exit-2@2025-03-14T09:50:00.999Z"},
    {.file = "31_hikvision_multipart_pictures_hikvision_ns.http",
     .format = LPR_FORMAT_HIKVISION_ANPR,
     .multipart = 1,
     .nplates = 1,
     .plate = "皖AB1234",
     .raw = "皖A·B1234",
     .conf = 0.93,
     .cand = {"皖AB1234"},
     .cconf = {0.93},
     .has_ts = 1,
     .ts_ms = 1741947000000,
     .vclass = "small",
     .kind = CMN_PLATE_ORDINARY,
     .source = "hikvision",
     .camera = "c0:56:e3:8a:14:aa/1",
     .direction = "forward",
     .color = "blue",
     .ref = "10.20.0.14/1/2025-03-14T18:10:00+08:00"},
    {.file = "32_hikvision_multipart_bare_lf.http",
     .format = LPR_FORMAT_HIKVISION_ANPR,
     .multipart = 1,
     .nplates = 1,
     .plate = "粤B12345",
     .raw = "粤b12345",
     .conf = 0.88,
     .cand = {"粤B12345"},
     .cconf = {0.88},
     .has_ts = 1,
     .ts_ms = 1741947630500,
     .vclass = "small",
     .kind = CMN_PLATE_ORDINARY,
     .source = "hikvision",
     .camera = "c0:56:e3:8a:14:aa/1",
     .direction = "forward",
     .color = "blue",
     .ref = "10.20.0.14/1/2025-03-14T18:20:30.5+08:00"},
    {.file = "33_hikvision_gbk_refused.xml",
     .rc = CMN_EPARSE,
     .error = "XML declares encoding \"GBK\": only UTF-8 is accepted"},
    {.file = "34_hikvision_zoneless_no_namespace.xml",
     .format = LPR_FORMAT_HIKVISION_ANPR,
     .nplates = 1,
     .plate = "京AF02368",
     .raw = "京A·F0236８",
     .conf = 0.95,
     .cand = {"京AF02368", "京AF02363"},
     .cconf = {0.95, LPR_CONF_UNKNOWN},
     .has_ts = 0,
     .vclass = "new_energy",
     .kind = CMN_PLATE_NEW_ENERGY,
     .source = "hikvision",
     .camera = "c0:56:e3:8a:14:aa/1",
     .direction = "forward",
     .color = "blue",
     .ref = "10.20.0.14/1/2025-03-14T17:40:02"},
    {.file = "35_hikvision_videoloss_heartbeat.xml",
     .format = LPR_FORMAT_HIKVISION_EVENT,
     .outcome = LPR_OUTCOME_HEARTBEAT,
     .source = "hikvision"},
    {.file = "36_hikvision_truncated.xml",
     .rc = CMN_EPARSE,
     .error = "malformed XML: Premature end of data in tag ANPR line 14 (line 21)"},
    {.file = "37_openalpr_truncated.json",
     .rc = CMN_EPARSE,
     .error = "truncated JSON (line 21, column 12)"},
    {.file = "38_platerecognizer_multipart_truncated.http",
     .rc = CMN_EPARSE,
     .error = "truncated multipart body: multipart body ends before its closing boundary"},
    {.file = "39_hikvision_doctype_entities.xml",
     .rc = CMN_EPARSE,
     .error = "XML with a DOCTYPE refused"},
    {.file = "40_hikvision_prefixed_cdata_police.xml",
     .format = LPR_FORMAT_HIKVISION_ANPR,
     .nplates = 1,
     .plate = "苏A1234警",
     .raw = "苏A1234警",
     .conf = 0.99,
     .cand = {"苏A1234警"},
     .cconf = {0.99},
     .has_ts = 1,
     .ts_ms = 1741946400000,
     .vclass = "small",
     .kind = CMN_PLATE_POLICE,
     .source = "hikvision",
     .camera = "c0:56:e3:8a:14:aa/1",
     .direction = "forward",
     .color = "blue",
     .ref = "1c2b3d4e-0000-4d7e-8a35-9f2c1e4a6b0d"},
    {.file = "41_unknown_json.json",
     .rc = CMN_EPARSE,
     .error = "JSON of unknown format (no OpenALPR data_type, no Plate Recognizer hook)"},
    {.file = "42_hikvision_multipart_part_charset_gb2312.http",
     .rc = CMN_EPARSE,
     .error = "multipart part declares charset \"GB2312\": only UTF-8 is accepted"},
    {.file = "43_openalpr_sentinel_with_candidates.json",
     .format = LPR_FORMAT_OPENALPR_RESULTS,
     .nplates = 1,
     .reason = "no-plate sentinel",
     .raw = "无牌",
     .conf = 0.12,
     .has_ts = 1,
     .ts_ms = 1741932100000,
     .vclass = "small",
     .source = "openalpr",
     .camera = "lot7-exit/2",
     .ref = "lot7-exit-cam2-1741932100000"},
    {.file = "44_openalpr_alprd_form_urlencoded.http",
     .format = LPR_FORMAT_OPENALPR_RESULTS,
     .nplates = 1,
     .plate = "浙A12345",
     .raw = "浙Ａ·１２３４５",
     .conf = 0.925,
     .cand = {"浙A12345", "浙A12346"},
     .cconf = {0.925, 0.80},
     .has_ts = 1,
     .ts_ms = 1741931705000,
     .vclass = "small",
     .kind = CMN_PLATE_ORDINARY,
     .source = "openalpr",
     .camera = "lot7-entry/1",
     .ref = "6f1e9b0a-4c2d-4e1f-9a3b-2c4d5e6f7a8b"},
    {.file = "47_hikvision_motion_event_ignored.xml",
     .format = LPR_FORMAT_HIKVISION_EVENT,
     .outcome = LPR_OUTCOME_IGNORED,
     .source = "hikvision"},
    {.file = "48_xml_unknown_root.xml",
     .rc = CMN_EPARSE,
     .error = "XML root <ResponseStatus> is not a Hikvision EventNotificationAlert"},
};

static void test_samples(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof SAMPLES / sizeof SAMPLES[0]; i++) {
        print_message("  %s\n", SAMPLES[i].file);
        check(&SAMPLES[i]);
    }
}

/* ------------------------------------------------------------------------------------------ */

static int p(const char *ctype, const char *body)
{
    memset(&res, 0x5A, sizeof res);
    return lpr_parse(ctype, ctype != NULL ? strlen(ctype) : 0, body, strlen(body), &res);
}

static void assert_error(int rc, const char *error)
{
    assert_int_equal(rc, CMN_EPARSE);
    assert_string_equal(res.error, error);
    assert_int_equal(res.nreads, 0);
}

static const char ALPR_HEAD[] = "{\"data_type\":\"alpr_results\",\"epoch_time\":";

/* An alpr_results payload with one plate and the given epoch_time text. */
static int alpr_epoch(const char *epoch)
{
    char body[512];

    snprintf(body, sizeof body, "%s%s,\"results\":[{\"plate\":\"AB12CDE\",\"confidence\":50}]}",
             ALPR_HEAD, epoch);
    return p(NULL, body);
}

static void test_epoch(void **state)
{
    (void)state;
    /* Below 10^11: seconds. */
    assert_int_equal(alpr_epoch("99999999999"), 0);
    assert_int_equal(res.read.ts_ms, 99999999999000LL);
    /* From 10^11: milliseconds (1973-03-03). */
    assert_int_equal(alpr_epoch("100000000000"), 0);
    assert_int_equal(res.read.ts_ms, 100000000000LL);
    assert_int_equal(res.read.ts, 100000000);
    assert_int_equal(alpr_epoch("1741931705"), 0);
    assert_int_equal(res.read.ts_ms, 1741931705000LL);
    assert_int_equal(alpr_epoch("1741931705.25"), 0);
    assert_int_equal(res.read.ts_ms, 1741931705250LL);
    assert_int_equal(alpr_epoch("-1"), 0);
    assert_int_equal(res.read.ts_ms, -1000);
    assert_int_equal(res.read.ts, -1);
    assert_int_equal(alpr_epoch("0"), 0);
    assert_int_equal(res.read.has_ts, 1);
    assert_int_equal(res.read.ts_ms, 0);
    /* Out of range, or not a number. */
    assert_error(alpr_epoch("-2208988801"), "OpenALPR epoch_time is not a valid epoch time");
    assert_error(alpr_epoch("253402300800000"), "OpenALPR epoch_time is not a valid epoch time");
    assert_int_equal(alpr_epoch("253402300799999"), 0);
    assert_error(alpr_epoch("1e300"), "OpenALPR epoch_time is not a valid epoch time");
    assert_error(alpr_epoch("\"1741931705\""), "OpenALPR epoch_time is not a valid epoch time");
    /* Absent: no time, the caller stamps the read. */
    assert_int_equal(p(NULL, "{\"data_type\":\"alpr_results\",\"results\":[{\"plate\":\"AB1\"}]}"),
                     0);
    assert_int_equal(res.read.has_ts, 0);
    assert_true(res.read.confidence == LPR_CONF_UNKNOWN);
}

/* A Snapshot webhook with one plate and the given timestamp JSON. */
static int pr_ts(const char *ts)
{
    char body[512];

    snprintf(body, sizeof body,
             "{\"hook\":{\"id\":1,\"event\":\"image.done\"},\"data\":{\"timestamp\":%s,"
             "\"results\":[{\"plate\":\"ab12cde\",\"score\":0.5}]}}",
             ts);
    return p("application/json", body);
}

static void test_time_zones(void **state)
{
    (void)state;
    assert_int_equal(pr_ts("\"2025-03-14T17:42:17+08:00\""), 0);
    assert_int_equal(res.read.ts_ms, 1741945337000LL);
    /* No zone: UTC for Plate Recognizer (its documented zone), with or without a fraction. */
    assert_int_equal(pr_ts("\"2025-03-14T09:42:17\""), 0);
    assert_int_equal(res.read.ts_ms, 1741945337000LL);
    assert_int_equal(pr_ts("\"2025-03-14 09:42:17.5\""), 0);
    assert_int_equal(res.read.ts_ms, 1741945337500LL);
    assert_int_equal(pr_ts("\"2025-03-14T09:42:17.0499Z\""), 0);
    assert_int_equal(res.read.ts_ms, 1741945337049LL);
    /* Fractions before 1970 still count forward from the whole second. */
    assert_int_equal(pr_ts("\"1969-12-31T23:59:59.250Z\""), 0);
    assert_int_equal(res.read.ts_ms, -750);
    assert_int_equal(res.read.ts, -1);
    assert_int_equal(pr_ts("null"), 0);
    assert_int_equal(res.read.has_ts, 0);
    assert_error(pr_ts("\"yesterday\""), "Plate Recognizer timestamp is not an RFC 3339 time");
    assert_error(pr_ts("\"2025-03-14T23:59:60Z\""),
                 "Plate Recognizer timestamp is not an RFC 3339 time");
    assert_error(pr_ts("\"2025-02-30T10:00:00Z\""),
                 "Plate Recognizer timestamp is not an RFC 3339 time");
    assert_error(pr_ts("\"2025-03-14T09:42:17+08\""),
                 "Plate Recognizer timestamp is not an RFC 3339 time");
    assert_error(pr_ts("1741945337"), "Plate Recognizer timestamp is not an RFC 3339 time");
}

/* A Hikvision ANPR alert (default namespace) with the given dateTime and ANPR children. */
static int hik(const char *date, const char *anpr)
{
    char body[2048];

    snprintf(
        body, sizeof body,
        "<EventNotificationAlert version=\"2.0\" xmlns=\"http://www.isapi.org/ver20/XMLSchema\">"
        "<ipAddress>10.0.0.9</ipAddress><channelID>2</channelID>%s%s%s"
        "<eventType>ANPR</eventType><eventState>active</eventState>%s</EventNotificationAlert>",
        date != NULL ? "<dateTime>" : "", date != NULL ? date : "",
        date != NULL ? "</dateTime>" : "", anpr);
    return p("application/xml", body);
}

static double hik_conf(const char *level)
{
    char anpr[256];

    snprintf(
        anpr, sizeof anpr,
        "<ANPR><licensePlate>浙A12345</licensePlate><confidenceLevel>%s</confidenceLevel></ANPR>",
        level);
    assert_int_equal(hik("2025-03-14T18:00:00+08:00", anpr), 0);
    return res.read.confidence;
}

static void test_hikvision_fields(void **state)
{
    (void)state;
    /* Integers are 0-100, decimal numbers up to 1 are 0-1. */
    assert_conf(hik_conf("97"), 0.97);
    assert_conf(hik_conf("1"), 0.01);
    assert_conf(hik_conf("1.0"), 1.0);
    assert_conf(hik_conf("0.95"), 0.95);
    assert_conf(hik_conf(" 97.5 "), 0.975);
    assert_conf(hik_conf("0"), 0.0);
    assert_conf(hik_conf("150"), 1.0);
    assert_conf(hik_conf("-5"), LPR_CONF_UNKNOWN);
    assert_conf(hik_conf("high"), LPR_CONF_UNKNOWN);
    assert_conf(hik_conf(""), LPR_CONF_UNKNOWN);
    /* The metadata doc's <confidence> as a fallback. */
    assert_int_equal(hik(NULL, "<ANPR><licensePlate>浙A12345</licensePlate>"
                               "<confidence>88</confidence></ANPR>"),
                     0);
    assert_conf(res.read.confidence, 0.88);
    assert_int_equal(res.read.has_ts, 0);
    assert_string_equal(res.read.source_ref, "10.0.0.9/2/");
    assert_string_equal(res.read.camera, "10.0.0.9/2");
    /* "unknown" direction and colour are no values. */
    assert_int_equal(hik("2025-03-14T18:00:00Z", "<ANPR><licensePlate>浙A12345</licensePlate>"
                                                 "<direction>unknown</direction>"
                                                 "<plateColor>Unknown</plateColor></ANPR>"),
                     0);
    assert_string_equal(res.read.camera_direction, "");
    assert_string_equal(res.read.plate_color, "");
    /* No licensePlate: a vehicle without a plate. */
    assert_int_equal(hik("2025-03-14T18:00:00Z", "<ANPR><direction>forward</direction></ANPR>"), 0);
    assert_int_equal(res.read.unreadable, 1);
    assert_string_equal(res.read.unreadable_reason, "empty read");
    assert_string_equal(res.read.vclass, "small");
    /* A mainland plate that breaks the rules and has no candidate: unreadable, raw kept. */
    assert_int_equal(
        hik("2025-03-14T18:00:00Z", "<ANPR><licensePlate>浙A1234</licensePlate></ANPR>"), 0);
    assert_int_equal(res.read.unreadable, 1);
    assert_string_equal(res.read.unreadable_reason,
                        "wrong length for a mainland plate (7 or 8 characters)");
    assert_string_equal(res.read.plate_raw, "浙A1234");
    /* eventType compares case-insensitively. */
    assert_int_equal(p(NULL, "<EventNotificationAlert><eventType>anpr</eventType>"
                             "<ANPR><licensePlate>浙A12345</licensePlate></ANPR>"
                             "</EventNotificationAlert>"),
                     0);
    assert_string_equal(res.read.plate, "浙A12345");
    assert_string_equal(res.read.camera, "");
    assert_string_equal(res.read.source_ref, "");
    /* Errors. */
    assert_error(hik("2025-03-14T18:00:00Z", ""), "Hikvision ANPR event without an ANPR element");
    assert_error(hik("yesterday", "<ANPR/>"),
                 "Hikvision dateTime \"yesterday\" is not an RFC 3339 time");
    assert_error(p(NULL, "<EventNotificationAlert><ANPR/></EventNotificationAlert>"),
                 "Hikvision EventNotificationAlert without an eventType");
    assert_error(p(NULL, "<EventNotificationAlert><eventType>ANPR</eventType>"
                         "<ANPR><licensePlate>&bogus;</licensePlate></ANPR>"
                         "</EventNotificationAlert>"),
                 "malformed XML: Entity 'bogus' not defined (line 1)");
    /* libxml2 quotes raw bytes of a broken name: the reason stays valid UTF-8 on one line. */
    assert_error(p(NULL, "<E\xCE\xCEnt>\n</E>"),
                 "malformed XML: Opening and ending tag mismatch: E??nt line 1 and E (line 2)");
    /* Predefined entities and character references are plain text. */
    assert_int_equal(hik(NULL, "<ANPR><licensePlate>&#x6D59;A&#49;2345</licensePlate></ANPR>"), 0);
    assert_string_equal(res.read.plate, "浙A12345");
}

static void test_xml_encodings(void **state)
{
    static const char TAIL[] = "<EventNotificationAlert><eventType>VMD</eventType>"
                               "</EventNotificationAlert>";
    char body[512];

    (void)state;
    snprintf(body, sizeof body, "<?xml version=\"1.0\" encoding=\"utf-8\"?>%s", TAIL);
    assert_int_equal(p(NULL, body), 0);
    assert_int_equal(res.outcome, LPR_OUTCOME_IGNORED);
    snprintf(body, sizeof body, "\xEF\xBB\xBF<?xml version=\"1.0\"?>\n%s", TAIL);
    assert_int_equal(p(NULL, body), 0);
    snprintf(body, sizeof body, "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>%s", TAIL);
    assert_error(p(NULL, body), "XML declares encoding \"ISO-8859-1\": only UTF-8 is accepted");
    snprintf(body, sizeof body, "<?xml version=\"1.0\" encoding=\"UTF-16\"?>%s", TAIL);
    assert_error(p(NULL, body), "XML declares encoding \"UTF-16\": only UTF-8 is accepted");
    snprintf(body, sizeof body, "<?xml version=\"1.0\" encoding=\"bogus\"?>%s", TAIL);
    assert_error(p(NULL, body), "XML declares encoding \"bogus\": only UTF-8 is accepted");
    /* Declared UTF-8 but not UTF-8. */
    assert_error(p(NULL, "<EventNotificationAlert><eventType>\xD4\xC1</eventType>"
                         "</EventNotificationAlert>"),
                 "malformed XML: Input is not proper UTF-8, indicate encoding ! (line 1)");
    /* The HTTP charset counts too. */
    assert_error(p("text/xml; charset=gbk", TAIL),
                 "Content-Type declares charset \"gbk\": only UTF-8 is accepted");
    assert_int_equal(p("text/xml; charset=\"UTF-8\"", TAIL), 0);
    assert_int_equal(p("application/json; charset=us-ascii", TAIL), 0);
    /* UTF-16 never reaches a parser. */
    assert_int_equal(lpr_parse(NULL, 0, "\xFF\xFE<\0E\0", 6, &res), CMN_EPARSE);
    assert_string_equal(res.error, "UTF-16 document refused: only UTF-8 is accepted");
    assert_int_equal(lpr_parse(NULL, 0, "<\0E\0", 4, &res), CMN_EPARSE);
    assert_string_equal(res.error, "NUL byte in the document (UTF-16/32?): only UTF-8 is accepted");
}

static void test_detection(void **state)
{
    static const char HEARTBEAT[] = "{\"data_type\":\"heartbeat\"}";

    (void)state;
    /* JSON whatever the Content-Type says, including none (alprd). */
    assert_int_equal(p(NULL, HEARTBEAT), 0);
    assert_int_equal(p("", HEARTBEAT), 0);
    assert_int_equal(p("application/x-www-form-urlencoded", HEARTBEAT), 0);
    assert_int_equal(p("text/xml", HEARTBEAT), 0);
    assert_int_equal(p(NULL, "\xEF\xBB\xBF \r\n\t{\"data_type\":\"heartbeat\"}"), 0);
    assert_int_equal(res.outcome, LPR_OUTCOME_HEARTBEAT);
    assert_int_equal(res.format, LPR_FORMAT_OPENALPR_HEARTBEAT);
    assert_string_equal(res.source, "openalpr");
    /* Multipart without a Content-Type: the boundary comes from the first line. */
    assert_int_equal(p(NULL, "--abc  \r\nContent-Disposition: form-data; name=\"json\"\r\n\r\n"
                             "{\"data_type\":\"heartbeat\"}\r\n--abc--\r\n"),
                     0);
    assert_int_equal(res.multipart, 1);
    assert_int_equal(res.outcome, LPR_OUTCOME_HEARTBEAT);
    /* A first line that is no valid boundary does not make the body multipart. */
    assert_error(p(NULL, "--a;b\r\n\r\n{}\r\n--a;b--"),
                 "payload is neither JSON, XML nor multipart");
    assert_error(p("multipart/form-data; boundary=\"a\x01\"", "--a;b\r\n\r\n{}\r\n--a;b--"),
                 "multipart Content-Type without a usable boundary");
    /* Content-Type says multipart without a boundary and the body is not multipart. */
    assert_error(p("multipart/form-data", HEARTBEAT),
                 "multipart Content-Type without a usable boundary");
    assert_error(p("multipart/form-data; boundary=a@b", HEARTBEAT),
                 "multipart Content-Type without a usable boundary");
    assert_error(p("multipart/form-data; boundary=zz", HEARTBEAT),
                 "malformed multipart body: multipart body without its opening boundary");
    /* Part choice: json by name, then JSON/XML media type, then .xml/.json names, then content. */
    assert_int_equal(
        p("multipart/form-data; boundary=b",
          "--b\r\nContent-Disposition: form-data; name=x\r\nContent-Type: text/xml\r\n\r\n<bad\r\n"
          "--b\r\nContent-Disposition: form-data; "
          "name=json\r\n\r\n{\"data_type\":\"heartbeat\"}\r\n"
          "--b--"),
        0);
    assert_int_equal(
        p("multipart/form-data; boundary=b",
          "--b\r\nContent-Disposition: form-data; name=a\r\n\r\n{\"nope\":1}\r\n"
          "--b\r\nContent-Type: application/vnd.x+json\r\n\r\n{\"data_type\":\"heartbeat\"}\r\n"
          "--b--"),
        0);
    assert_int_equal(
        p("multipart/form-data; boundary=b",
          "--b\r\nContent-Disposition: form-data; name=a\r\n\r\n{\"nope\":1}\r\n"
          "--b\r\nContent-Disposition: form-data; name=x; filename=\"EVENT.XML\"\r\n\r\n"
          "<EventNotificationAlert><eventType>VMD</eventType></EventNotificationAlert>\r\n--b--"),
        0);
    assert_int_equal(res.format, LPR_FORMAT_HIKVISION_EVENT);
    assert_int_equal(p("multipart/form-data; boundary=b",
                       "--b\r\nContent-Type: image/jpeg\r\n\r\n<not an image>\r\n"
                       "--b\r\n\r\n  {\"data_type\":\"heartbeat\"}\r\n--b--"),
                     0);
    assert_error(p("multipart/form-data; boundary=b",
                   "--b\r\nContent-Type: image/jpeg\r\n\r\n\xFF\xD8\r\n--b\r\n\r\nplain\r\n--b--"),
                 "multipart body without a JSON or XML part (2 parts)");
    /* Neither JSON, XML nor multipart. */
    assert_error(p(NULL, "plate=AB12CDE"), "payload is neither JSON, XML nor multipart");
    assert_error(p(NULL, "  \r\n"), "empty payload");
    assert_error(p(NULL, ""), "empty payload");
    assert_int_equal(lpr_parse(NULL, 0, NULL, 0, &res), CMN_EPARSE);
    assert_string_equal(res.error, "empty payload");
    assert_error(p(NULL, "[{\"data_type\":\"heartbeat\"}]"), "JSON payload is not an object");
    assert_error(p(NULL, "{\"data_type\":\"heartbeat\",\"data_type\":\"alpr_results\"}"),
                 "malformed JSON: duplicate object key near '\"data_type\"' (line 1, column 36)");
    assert_error(p(NULL, "{\"a\":1} trailing"),
                 "malformed JSON: end of file expected near 'trailing' (line 1, column 16)");
    assert_error(p(NULL, "{\"a\":\"\\u0000\"}"),
                 "malformed JSON: \\u0000 is not allowed without JSON_ALLOW_NUL near "
                 "'\"\\u0000\"' (line 1, column 13)");
}

static void test_json_errors(void **state)
{
    (void)state;
    assert_error(p(NULL, "{\"data_type\":\"alpr_alert\"}"),
                 "OpenALPR data_type \"alpr_alert\" is not supported");
    assert_null(res.source);
    assert_error(p(NULL, "{\"data_type\":7}"), "OpenALPR data_type is not a string");
    assert_error(p(NULL, "{\"data_type\":\"alpr_results\",\"results\":{}}"),
                 "OpenALPR alpr_results without a results array");
    assert_error(p(NULL, "{\"data_type\":\"alpr_results\",\"results\":[1]}"),
                 "OpenALPR results[0] is not an object");
    assert_error(p(NULL, "{\"data_type\":\"alpr_results\",\"results\":[{\"plate\":\"A1\"},"
                         "{\"plate\":5}]}"),
                 "OpenALPR results[1].plate is not a string");
    assert_error(p(NULL, "{\"data_type\":\"alpr_group\"}"),
                 "OpenALPR alpr_group without best_plate");
    assert_error(p(NULL, "{\"data_type\":\"alpr_group\",\"best_plate\":[]}"),
                 "OpenALPR best_plate is not an object");
    assert_error(p(NULL, "{\"hook\":{\"event\":\"image.done\"}}"),
                 "Plate Recognizer webhook without a data object");
    assert_error(p(NULL, "{\"hook\":{}}"), "Plate Recognizer hook without an event");
    assert_error(p(NULL, "{\"hook\":{\"event\":\"alert\\nx\"}}"),
                 "Plate Recognizer event \"alert?x\" is not supported");
    assert_null(res.source);
    assert_error(p(NULL, "{\"hook\":{\"event\":\"recognition\"},\"data\":{}}"),
                 "Plate Recognizer data without a results array");
    assert_error(p(NULL, "{\"hook\":{\"event\":\"recognition\"},\"data\":{\"results\":[null]}}"),
                 "Plate Recognizer results[0] is not an object");
    assert_error(p(NULL, "{\"hook\":{\"event\":\"recognition\"},\"data\":{\"results\":"
                         "[{\"plate\":[]}]}}"),
                 "Plate Recognizer results[0].plate is not a string");
    assert_error(p(NULL, "{\"hook\":\"x\"}"),
                 "JSON of unknown format (no OpenALPR data_type, no Plate Recognizer hook)");
}

static void test_group_fallbacks(void **state)
{
    (void)state;
    /* best_plate without text or confidence: best_plate_number and best_confidence. */
    assert_int_equal(p(NULL, "{\"data_type\":\"alpr_group\",\"epoch_start\":1741931700,"
                             "\"best_plate\":{\"candidates\":[{\"plate\":\"浙A12345\"}]},"
                             "\"best_plate_number\":\"浙A12345\",\"best_confidence\":90,"
                             "\"uuids\":[\"u1\"],\"site_id\":\"s\"}"),
                     0);
    assert_string_equal(res.read.plate, "浙A12345");
    assert_conf(res.read.confidence, 0.90);
    assert_int_equal(res.read.ncandidates, 1);
    assert_int_equal(res.read.ts_ms, 1741931700000LL);
    assert_string_equal(res.read.camera, "s");
    assert_string_equal(res.read.source_ref, "");
    assert_error(p(NULL, "{\"data_type\":\"alpr_group\",\"best_plate\":{},"
                         "\"best_plate_number\":5}"),
                 "OpenALPR best_plate_number is not a string");
}

static void test_selection_and_candidates(void **state)
{
    (void)state;
    /* PR: detection x read; a missing dscore counts as 1, a missing score as 0. */
    assert_int_equal(p(NULL, "{\"hook\":{\"event\":\"recognition\"},\"data\":{\"results\":["
                             "{\"plate\":\"aaa111\",\"score\":0.9,\"dscore\":0.5},"
                             "{\"plate\":\"bbb222\",\"score\":0.6},"
                             "{\"plate\":\"ccc333\",\"dscore\":1.0},"
                             "{\"plate\":\"ddd444\",\"score\":0.6,\"dscore\":1.0}]}}"),
                     0);
    assert_int_equal(res.nplates, 4);
    assert_string_equal(res.read.plate, "BBB222"); /* 0.6 x 1, first of the tie */
    assert_string_equal(res.read.camera, "");
    assert_string_equal(res.read.source_ref, "");
    /* OpenALPR: equal boxes, so the higher confidence; coordinates missing on one count as 1. */
    assert_int_equal(p(NULL, "{\"data_type\":\"alpr_results\",\"results\":["
                             "{\"plate\":\"AAA111\",\"confidence\":60},"
                             "{\"plate\":\"BBB222\",\"confidence\":70}]}"),
                     0);
    assert_string_equal(res.read.plate, "BBB222");
    /* Confidence clamps, candidates: dedup keeps the first place and the highest confidence,
     * impossible ones go, at most 8 stay. */
    assert_int_equal(
        p(NULL,
          "{\"data_type\":\"alpr_results\",\"results\":[{\"plate\":\"浙A12345\","
          "\"confidence\":180,\"candidates\":["
          "{\"plate\":\"浙A12346\",\"confidence\":-4},{\"plate\":\"浙A12345\",\"confidence\":99},"
          "{\"plate\":\"浙A1234O\",\"confidence\":98},{\"plate\":\"浙A12346\",\"confidence\":50},"
          "{\"plate\":\"浙A12347\"},{\"plate\":\"浙A12348\"},{\"plate\":\"浙A12349\"},"
          "{\"plate\":\"浙A12340\"},{\"plate\":\"浙A12341\"},{\"plate\":\"浙A12342\"},"
          "{\"plate\":\"浙A12343\"},{\"confidence\":1},7,{\"plate\":\"\"},{\"plate\":\"无车牌\"}]}]"
          "}"),
        0);
    assert_conf(res.read.confidence, 1.0);
    assert_int_equal(res.read.ncandidates, 8);
    assert_string_equal(res.read.candidates[0].plate, "浙A12345");
    assert_conf(res.read.candidates[0].confidence, 1.0);
    assert_string_equal(res.read.candidates[1].plate, "浙A12346");
    assert_conf(res.read.candidates[1].confidence, 0.5);
    assert_string_equal(res.read.candidates[2].plate, "浙A12347");
    assert_conf(res.read.candidates[2].confidence, LPR_CONF_UNKNOWN);
    assert_string_equal(res.read.candidates[7].plate, "浙A12342");
    /* Stream: a scoreless candidate equal to the plate keeps the plate's score. */
    assert_int_equal(p(NULL, "{\"hook\":{\"event\":\"recognition\"},\"data\":{\"results\":["
                             "{\"plate\":\"ab12cde\",\"score\":0.7,\"candidates\":["
                             "{\"plate\":\"AB12CDE\"},{\"plate\":\"ab12cdf\",\"score\":0.4}]}]}}"),
                     0);
    assert_int_equal(res.read.ncandidates, 2);
    assert_conf(res.read.candidates[0].confidence, 0.7);
    assert_conf(res.read.candidates[1].confidence, 0.4);
    /* An impossible plate whose candidates are scoreless: promoted, confidence unknown. */
    assert_int_equal(p(NULL, "{\"hook\":{\"event\":\"recognition\"},\"data\":{\"results\":["
                             "{\"plate\":\"浙a1234o\",\"score\":0.7,\"candidates\":["
                             "{\"plate\":\"浙a1234o\"},{\"plate\":\"浙a12340\"}]}]}}"),
                     0);
    assert_string_equal(res.read.plate, "浙A12340");
    assert_conf(res.read.confidence, LPR_CONF_UNKNOWN);
    assert_int_equal(res.read.ncandidates, 1);
    /* Direction as a real and a string, camera id as an integer. */
    assert_int_equal(p(NULL, "{\"hook\":{\"event\":\"recognition\",\"id\":\"cam\"},\"data\":{"
                             "\"camera_id\":12,\"timestamp\":\"2025-03-14T09:42:17Z\",\"results\":["
                             "{\"plate\":\"ab12cde\",\"direction\":92.5}]}}"),
                     0);
    assert_string_equal(res.read.camera_direction, "92.5");
    assert_string_equal(res.read.camera, "12");
    assert_string_equal(res.read.source_ref, "cam@2025-03-14T09:42:17Z");
    assert_int_equal(p(NULL, "{\"hook\":{\"event\":\"recognition\"},\"data\":{"
                             "\"timestamp\":\"2025-03-14T09:42:17Z\",\"results\":["
                             "{\"plate\":\"ab12cde\",\"direction\":\"north\"}]}}"),
                     0);
    assert_string_equal(res.read.camera_direction, "north");
    assert_string_equal(res.read.source_ref, "2025-03-14T09:42:17Z");
}

static void test_limits_and_arguments(void **state)
{
    char *big;
    size_t n;

    (void)state;
    assert_int_equal(lpr_parse(NULL, 0, "{}", 2, NULL), CMN_EINVAL);
    assert_int_equal(lpr_parse(NULL, 0, NULL, 5, &res), CMN_EINVAL);
    assert_string_equal(res.error, "no body");
    big = calloc(1, LPR_MAX_BODY + 2);
    big[0] = '{';
    assert_int_equal(lpr_parse(NULL, 0, big, LPR_MAX_BODY + 1, &res), CMN_ETOOBIG);
    assert_string_equal(res.error, "body of 16777217 bytes exceeds the limit of 16777216 bytes");
    /* A multipart body under the body cap whose document part is over the document cap. */
    n = (size_t)snprintf(big, 64, "--b\r\nContent-Disposition: form-data; name=json\r\n\r\n{");
    memset(big + n, ' ', LPR_MAX_DOCUMENT);
    memcpy(big + n + LPR_MAX_DOCUMENT, "}\r\n--b--", 8);
    n += LPR_MAX_DOCUMENT + 8;
    assert_int_equal(lpr_parse("multipart/form-data; boundary=b", 31, big, n, &res), CMN_ETOOBIG);
    assert_string_equal(res.error, "document of 4194306 bytes exceeds the limit of 4194304 bytes");
    free(big);
    assert_string_equal(lpr_format_name(LPR_FORMAT_PR_STREAM), "platerecognizer.stream");
    assert_string_equal(lpr_format_name(LPR_FORMAT_HIKVISION_EVENT), "hikvision.event");
    assert_string_equal(lpr_format_name((lpr_format_t)99), "unknown");
    assert_string_equal(lpr_outcome_name(LPR_OUTCOME_NO_PLATE), "no_plate");
    assert_string_equal(lpr_outcome_name((lpr_outcome_t)99), "unknown");
}

static int handler_calls;

static void my_generic(void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
    handler_calls++;
}

static void test_libxml_handlers_restored(void **state)
{
    (void)state;
    xmlSetGenericErrorFunc(&handler_calls, my_generic);
    assert_int_equal(parse_sample("33_hikvision_gbk_refused.xml", &res), CMN_EPARSE);
    assert_int_equal(parse_sample("36_hikvision_truncated.xml", &res), CMN_EPARSE);
    assert_ptr_equal(xmlGenericError, my_generic);
    assert_ptr_equal(xmlGenericErrorContext, &handler_calls);
    assert_int_equal(handler_calls, 0); /* and nothing reached it during the calls */
    xmlSetGenericErrorFunc(NULL, NULL);
}

/* The same samples parsed on four threads at once give the single-threaded results. */
static const char *const MT_FILES[] = {
    "07_hikvision_anpr_entry_newenergy.xml",  "29_platerecognizer_multipart_with_image.http",
    "33_hikvision_gbk_refused.xml",           "02_openalpr_alprd_lowconf_two_plates.json",
    "34_hikvision_zoneless_no_namespace.xml", "36_hikvision_truncated.xml",
};
#define MT_N (sizeof MT_FILES / sizeof MT_FILES[0])

static lpr_result_t mt_ref[MT_N];

static void *mt_worker(void *arg)
{
    lpr_result_t *r = malloc(sizeof *r);
    size_t k = (size_t)(uintptr_t)arg;
    intptr_t bad = 0;

    for (int round = 0; round < 40; round++) {
        size_t i = (k + (size_t)round) % MT_N;
        memset(r, 0, sizeof *r);
        parse_sample(MT_FILES[i], r);
        if (memcmp(r, &mt_ref[i], sizeof *r) != 0)
            bad++;
    }
    free(r);
    return (void *)bad;
}

static void test_threads(void **state)
{
    pthread_t t[4];

    (void)state;
    for (size_t i = 0; i < MT_N; i++) {
        memset(&mt_ref[i], 0, sizeof mt_ref[i]);
        parse_sample(MT_FILES[i], &mt_ref[i]);
    }
    for (size_t k = 0; k < 4; k++)
        assert_int_equal(pthread_create(&t[k], NULL, mt_worker, (void *)(uintptr_t)k), 0);
    for (size_t k = 0; k < 4; k++) {
        void *bad;
        assert_int_equal(pthread_join(t[k], &bad), 0);
        assert_int_equal((intptr_t)bad, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_samples),
        cmocka_unit_test(test_epoch),
        cmocka_unit_test(test_time_zones),
        cmocka_unit_test(test_hikvision_fields),
        cmocka_unit_test(test_xml_encodings),
        cmocka_unit_test(test_detection),
        cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_group_fallbacks),
        cmocka_unit_test(test_selection_and_candidates),
        cmocka_unit_test(test_limits_and_arguments),
        cmocka_unit_test(test_libxml_handlers_restored),
        cmocka_unit_test(test_threads),
    };

    return cmocka_run_group_tests(tests, group_setup, NULL);
}
