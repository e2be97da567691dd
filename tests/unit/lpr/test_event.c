/*
 * Unit tests of lpr-bridge/event.h: the event body written directly must be, byte for byte, what
 * the bridge wrote before through a Jansson tree (JSON_COMPACT | JSON_PRESERVE_ORDER |
 * JSON_REAL_PRECISION(4)): the reference below builds that tree.  Reads drawn at random (seeded,
 * so a failure repeats) over every field the body carries, then the escapes and the reals one by
 * one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"

/* The body as Jansson writes it: the bridge's former make_item. */
static char *reference(const char *event_id, const char *lot, const char *lane, int entry,
                       const lpr_read_t *r, const char *ts)
{
    json_t *o = json_object();
    json_object_set_new(o, "event_id", json_string(event_id));
    json_object_set_new(o, "lot_id", json_string(lot));
    json_object_set_new(o, "lane_id", json_string(lane));
    json_object_set_new(o, "direction", json_string(entry ? "entry" : "exit"));
    if (r->unreadable) {
        json_object_set_new(o, "plate", json_null());
        json_object_set_new(o, "unreadable", json_true());
    } else {
        json_object_set_new(o, "plate", json_string(r->plate));
        json_object_set_new(o, "vehicle_class", json_string(r->vclass));
    }
    static const char *const colors[] = {"blue", "yellow", "green", "white", "black", NULL};
    for (int i = 0; colors[i] != NULL; i++) {
        if (strcmp(r->plate_color, colors[i]) == 0)
            json_object_set_new(o, "plate_color", json_string(colors[i]));
    }
    if (r->confidence >= 0)
        json_object_set_new(o, "confidence", json_real(r->confidence));
    json_t *cands = json_array();
    for (int i = 1; !r->unreadable && i < r->ncandidates; i++) {
        json_t *c = json_object();
        json_object_set_new(c, "plate", json_string(r->candidates[i].plate));
        if (r->candidates[i].confidence >= 0)
            json_object_set_new(c, "confidence", json_real(r->candidates[i].confidence));
        json_array_append_new(cands, c);
    }
    json_object_set_new(o, "candidates", cands);
    json_object_set_new(o, "ts", json_string(ts));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(4));
    json_decref(o);
    return s;
}

static char *ours(const char *event_id, const char *lot, const char *lane, int entry,
                  const lpr_read_t *r, const char *ts)
{
    cmn_buf_t b;
    cmn_buf_init(&b, 1 << 20);
    assert_int_equal(lpr_event_body(&b, event_id, lot, lane, entry, r, ts), 0);
    return cmn_buf_take(&b, NULL);
}

static void same(const char *event_id, const char *lot, const char *lane, int entry,
                 const lpr_read_t *r, const char *ts)
{
    char *want = reference(event_id, lot, lane, entry, r, ts);
    char *got = ours(event_id, lot, lane, entry, r, ts);
    assert_non_null(want);
    assert_string_equal(got, want);
    free(want);
    free(got);
}

static double conf(unsigned *seed)
{
    switch (rand_r(seed) % 8) {
    case 0: return -1.0; /* unknown */
    case 1: return 0.0;
    case 2: return 1.0;
    case 3: return (double)(rand_r(seed) % 1000) / 1000.0;
    case 4: return (double)(rand_r(seed) % 100) / 1e6; /* exponents */
    case 5: return 0.5;
    default: return (double)rand_r(seed) / RAND_MAX;
    }
}

static void test_random_reads(void **state)
{
    (void)state;
    static const char *const plates[] = {"浙A12345", "沪AD12345", "苏E8B2Z6", "京A0000学",
                                         "粤BF12345", "WJ01234", "使014578"};
    static const char *const classes[] = {"small", "large", "new_energy"};
    static const char *const colors[] = {"", "blue", "yellow", "green", "white", "black", "red"};
    unsigned seed = 20261127;
    for (int n = 0; n < 20000; n++) {
        lpr_read_t r;
        memset(&r, 0, sizeof r);
        r.unreadable = rand_r(&seed) % 10 == 0;
        if (!r.unreadable)
            snprintf(r.plate, sizeof r.plate, "%s", plates[rand_r(&seed) % 7]);
        r.vclass = classes[rand_r(&seed) % 3];
        snprintf(r.plate_color, sizeof r.plate_color, "%s", colors[rand_r(&seed) % 7]);
        r.confidence = conf(&seed);
        r.ncandidates = (int)(rand_r(&seed) % (LPR_MAX_CANDIDATES + 1));
        for (int i = 0; i < r.ncandidates; i++) {
            snprintf(r.candidates[i].plate, sizeof r.candidates[i].plate, "%s",
                     plates[rand_r(&seed) % 7]);
            r.candidates[i].confidence = conf(&seed);
        }
        char eid[48];
        snprintf(eid, sizeof eid, "lpr-%08x%08x%08x%04x", rand_r(&seed), rand_r(&seed),
                 rand_r(&seed), rand_r(&seed) & 0xffff);
        same(eid, "HZ-SC-0001", n % 2 ? "in1" : "out3", n % 3 == 0, &r,
             "2026-11-26T08:12:13Z");
    }
}

static void test_escapes(void **state)
{
    (void)state;
    lpr_read_t r;
    memset(&r, 0, sizeof r);
    snprintf(r.plate, sizeof r.plate, "%s", "浙A12345");
    r.vclass = "small";
    r.confidence = 0.91234;
    /* Configured ids are free text: every byte Jansson escapes, and some it leaves alone. */
    char all[160];
    size_t k = 0;
    for (int c = 1; c < 0x80; c++) {
        if (c != '/' || k == 0)
            all[k++] = (char)c;
    }
    all[k] = '\0';
    same("lpr-x", all, "lane \"one\" \\ two\t/\x7f", 0, &r, "ts\n\r\b\f");
    same("", "", "", 1, &r, "");
    same("lpr-y", "停车场/一号", "入口", 1, &r, "2026-11-26T08:12:13Z");
}

static void test_reals(void **state)
{
    (void)state;
    static const double v[] = {0.0,   1.0,     0.5,    0.1,     0.12345, 0.99995, 0.99994,
                               1e-5,  1.5e-7,  2e-10,  0.0001,  123456.0, 1e21,   -0.25,
                               1e100, 3.14159, 0.9999, 0.00012, 42.0,     1e-300};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        json_t *j = json_real(v[i]);
        char *want = json_dumps(j, JSON_ENCODE_ANY | JSON_REAL_PRECISION(4));
        cmn_buf_t b;
        cmn_buf_init(&b, 64);
        assert_int_equal(lpr_event_real(&b, v[i]), 0);
        assert_string_equal(b.base, want);
        cmn_buf_dispose(&b);
        free(want);
        json_decref(j);
    }
}

static void test_limit(void **state)
{
    (void)state;
    lpr_read_t r;
    memset(&r, 0, sizeof r);
    r.unreadable = 1;
    r.vclass = "small";
    r.confidence = -1;
    cmn_buf_t b;
    cmn_buf_init(&b, 40); /* too small for any event */
    assert_int_not_equal(lpr_event_body(&b, "lpr-1", "L", "in1", 1, &r, "ts"), 0);
    cmn_buf_dispose(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_reads),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_reals),
        cmocka_unit_test(test_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
