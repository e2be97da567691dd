/* The pure parts of the people's API (gateway/api.h): query parameters, percent-decoding, reason
 * codes of a bill, and the merge of per-source pages with horizons and cursors. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cmn/json.h"
#include "cmn/mem.h"

/* What gateway/main.c defines for the process; gwcore's objects name them. */
gw_conf_t *gw_conf_ref(gw_t *gw)
{
    (void)gw;
    return NULL;
}

void gw_conf_unref(gw_conf_t *c)
{
    (void)c;
}

int64_t gw_now(const gw_t *gw)
{
    (void)gw;
    return 0;
}

const cmn_tariff_t *gw_tariff_by_version(gw_t *gw, const char *version)
{
    (void)gw;
    (void)version;
    return NULL;
}

const cmn_tariff_t *gw_tariff_learn(gw_t *gw, const char *version, const char *json, size_t len)
{
    (void)gw;
    (void)version;
    (void)json;
    (void)len;
    return NULL;
}

static cmn_httpd_req_t req_of(const char *url)
{
    cmn_httpd_req_t r;
    memset(&r, 0, sizeof r);
    r.url = url;
    r.url_len = strlen(url);
    return r;
}

static void test_query(void **state)
{
    (void)state;
    char v[32];
    cmn_httpd_req_t r = req_of("/v1/defaults?status=overdue&district=%E4%B8%8A%E5%9F%8E%E5%8C%BA"
                               "&lot=&limit=5&x=a+b");
    assert_int_equal(gw_api_query(&r, "status", v, sizeof v), 1);
    assert_string_equal(v, "overdue");
    assert_int_equal(gw_api_query(&r, "district", v, sizeof v), 1);
    assert_string_equal(v, "上城区");
    assert_int_equal(gw_api_query(&r, "lot", v, sizeof v), 1);
    assert_string_equal(v, "");
    assert_int_equal(gw_api_query(&r, "x", v, sizeof v), 1);
    assert_string_equal(v, "a b");
    assert_int_equal(gw_api_query(&r, "lim", v, sizeof v), 0);
    assert_int_equal(gw_api_query(&r, "cursor", v, sizeof v), 0);
    assert_int_equal(gw_api_query(&r, "district", v, 5), -1); /* does not fit */
    cmn_httpd_req_t nul = req_of("/v1/audit?actor=a%00b");
    assert_int_equal(gw_api_query(&nul, "actor", v, sizeof v), -1);
    cmn_httpd_req_t none = req_of("/v1/audit");
    assert_int_equal(gw_api_query(&none, "actor", v, sizeof v), 0);
    /* A '%' without two hex digits stays as it is. */
    assert_int_equal(gw_api_unescape("LOT-A~3~b%", 10, v, sizeof v), 0);
    assert_string_equal(v, "LOT-A~3~b%");
    assert_int_equal(gw_api_unescape("LOT-A%7E3%7Eb", 13, v, sizeof v), 0);
    assert_string_equal(v, "LOT-A~3~b");
}

static void test_reason_codes(void **state)
{
    (void)state;
    json_error_t err;
    json_t *bill = json_loads(
        "{\"reason\":\"credit_ok\",\"match\":\"fuzzy\",\"explanation\":{\"reason\":\"charged\","
        "\"discount\":500,\"discount_percent\":50,\"rows\":[{\"first_period\":false},"
        "{\"first_period\":true}],\"caps\":[{\"kind\":\"band\",\"band\":\"night\"},"
        "{\"kind\":\"24h\"}]}}",
        0, &err);
    assert_non_null(bill);
    json_t *codes = gw_api_reason_codes(bill);
    char *s = cmn_json_dump(codes, JSON_COMPACT);
    assert_string_equal(s, "[\"credit_ok\",\"match:fuzzy\",\"fee:charged\",\"discount:50%\","
                           "\"first_period\",\"cap:band:night\",\"cap:24h\"]");
    cmn_free(s);
    json_decref(codes);
    json_decref(bill);
}

static void add(gw_page_t *p, const char *key, const char *src, const char *m)
{
    gw_page_add(p, key, src, m, json_string(m));
}

static char *finish(gw_page_t *p, size_t limit, char *got, size_t gotsz)
{
    json_t *out = json_array();
    char *next = gw_page_finish(p, limit, out);
    size_t i, o = 0;
    json_t *v;
    got[0] = '\0';
    json_array_foreach(out, i, v)
    {
        o += (size_t)snprintf(got + o, gotsz - o, "%s%s", i ? " " : "", json_string_value(v));
    }
    json_decref(out);
    gw_page_dispose(p);
    return next;
}

static void test_page_ascending(void **state)
{
    (void)state;
    gw_page_t p;
    char got[256];
    /* Two lots' pages of two: the merge orders by key, then source, then member. */
    gw_page_init(&p, 0);
    add(&p, "000000000010", "LOT-B", "000000000001");
    add(&p, "000000000020", "LOT-B", "000000000002");
    add(&p, "000000000010", "LOT-A", "000000000007");
    add(&p, "000000000030", "LOT-A", "000000000008");
    char *next = finish(&p, 2, got, sizeof got);
    assert_string_equal(got, "000000000007 000000000001");
    assert_string_equal(next, "000000000010/LOT-B/000000000001");
    char k[48], s[80], m[48];
    assert_int_equal(gw_page_cursor(next, k, sizeof k, s, sizeof s, m, sizeof m), 0);
    assert_string_equal(k, "000000000010");
    assert_string_equal(s, "LOT-B");
    assert_string_equal(m, "000000000001");
    cmn_free(next);
    /* The end: fewer than the limit and no horizon. */
    gw_page_init(&p, 0);
    add(&p, "000000000020", "LOT-B", "000000000002");
    assert_null(finish(&p, 5, got, sizeof got));
    assert_string_equal(got, "000000000002");
    /* A lot that stopped reading at its horizon: nothing beyond it is answered, and the cursor
     * continues from there. */
    gw_page_init(&p, 0);
    add(&p, "000000000010", "LOT-A", "000000000001");
    add(&p, "000000000050", "LOT-C", "000000000009");
    gw_page_horizon(&p, "000000000040", "LOT-B", "000000000004");
    gw_page_horizon(&p, "000000000045", "LOT-A", "000000000006");
    next = finish(&p, 5, got, sizeof got);
    assert_string_equal(got, "000000000001");
    assert_string_equal(next, "000000000040/LOT-B/000000000004");
    cmn_free(next);
    assert_int_equal(gw_page_cursor("nope", k, sizeof k, s, sizeof s, m, sizeof m), -1);
    assert_int_equal(gw_page_cursor("a/b", k, sizeof k, s, sizeof s, m, sizeof m), -1);
}

static void test_page_descending(void **state)
{
    (void)state;
    gw_page_t p;
    char got[256];
    gw_page_init(&p, 1);
    add(&p, "000000000000100-0000000000", "LOT-A", "100-0");
    add(&p, "000000000000300-0000000000", "drv:x", "300-0");
    add(&p, "000000000000200-0000000001", "LOT-A", "200-1");
    add(&p, "000000000000200-0000000001", "LOT-B", "200-1");
    gw_page_horizon(&p, "000000000000150-0000000000", "LOT-B", "150-0");
    char *next = finish(&p, 10, got, sizeof got);
    assert_string_equal(got, "300-0 200-1 200-1");
    assert_string_equal(next, "000000000000150-0000000000/LOT-B/150-0");
    cmn_free(next);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_reason_codes),
        cmocka_unit_test(test_page_ascending),
        cmocka_unit_test(test_page_descending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
