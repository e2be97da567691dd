/*
 * The configuration loader: a complete valid configuration, then one mutation per problem it must
 * refuse, each checked for the file, the JSON path and the reason in its message.  Also the shipped
 * demo configuration, which must load as it is.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmn/config.h"
#include "cmn/err.h"
#include "cmn/plate.h"

static char dir[256];
static char cfg_path[300];

static const char *const base_config =
    "{"
    "\"name\": \"test city\","
    "\"redis\": {\"address\": \"127.0.0.1:6390\", \"command_timeout_ms\": 250},"
    "\"gateway\": {\"listen\": \"127.0.0.1:0\", \"admin_token\": {\"file\": \"secrets/admin\"}},"
    "\"billing\": {\"default_provider\": \"stripe-test\"},"
    "\"lpr_bridge\": {\"spool_dir\": \"spool\", \"cameras\": [{\"id\": \"cam1\", \"lot\": \"L1\","
    "  \"lane\": \"out\", \"device\": \"d1\", \"format\": \"hikvision\", \"min_confidence\": 850,"
    "  \"barrier\": {\"kind\": \"webhook\", \"url\": \"http://127.0.0.1:9/barrier\"}}]},"
    "\"credit_policy\": {\"min_score\": 550, \"retry_minutes\": [1, 10, 60]},"
    "\"providers\": [{\"id\": \"stripe-test\", \"kind\": \"stripe\", "
    "  \"base_url\": \"http://127.0.0.1:12111\", \"secret_key\": {\"env\": \"PARK_TEST_STRIPE\"}}],"
    "\"operators\": [{\"id\": \"op1\", \"name\": \"Operator One\"}, {\"id\": \"op2\", \"name\": \"Two\"}],"
    "\"lots\": [{"
    "  \"id\": \"L1\", \"name\": \"Lot one\", \"operator\": \"op1\", \"district\": \"西湖区\","
    "  \"capacity\": 100, \"tariff\": \"t1\","
    "  \"exit_policy\": {\"no_entry_record\": \"charge\", \"no_entry_fee\": 2000},"
    "  \"lanes\": [{\"id\": \"in\", \"direction\": \"entry\"}, {\"id\": \"out\", \"direction\": \"exit\"}],"
    "  \"passes\": [{\"plate\": \"浙A·12345\", \"from\": \"2026-11-01\", \"to\": \"2026-11-30\"}],"
    "  \"allow_list\": [\"浙B12345\"],"
    "  \"exempt\": {\"plates\": [\"浙A1234警\"], \"kinds\": [\"police\"]},"
    "  \"blocked\": [\"浙C12345\"]"
    "}],"
    "\"devices\": [{\"id\": \"d1\", \"lot\": \"L1\", \"lanes\": [\"in\", \"out\"],"
    "  \"key\": {\"file\": \"secrets/d1.key\"}}]"
    "}";

static const char *const tariff =
    "{\"id\":\"t1\",\"currency\":\"CNY\",\"timezone\":\"Asia/Shanghai\",\"bands\":[{\"name\":\"all\","
    "\"from\":\"00:00\",\"to\":\"00:00\",\"unit_minutes\":60,\"unit_price\":500}]}";

#define DEVICE_KEY "device-key-not-for-logs-0123456789"

static void write_file(const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    char sub[300];
    snprintf(dir, sizeof dir, "/tmp/park-test-config-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(sub, sizeof sub, "%s/tariffs", dir);
    mkdir(sub, 0700);
    snprintf(sub, sizeof sub, "%s/secrets", dir);
    mkdir(sub, 0700);
    write_file("tariffs/t1.json", tariff);
    write_file("secrets/d1.key", DEVICE_KEY "\n");
    write_file("secrets/admin", "admin-token-0123456789abcdef\n");
    write_file("secrets/short", "tiny\n");
    setenv("PARK_TEST_STRIPE", "sk_test_123", 1);
    snprintf(cfg_path, sizeof cfg_path, "%s/platform.json", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Applies value at a path like "lots.0.capacity" (numbers index arrays); NULL deletes. */
static void set_path(json_t *root, const char *path, json_t *value)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *cur = root;
    char *save = NULL;
    char *tok = strtok_r(buf, ".", &save);
    while (tok != NULL) {
        char *next = strtok_r(NULL, ".", &save);
        int is_index = tok[0] >= '0' && tok[0] <= '9';
        if (next == NULL) {
            if (is_index) {
                size_t i = strtoul(tok, NULL, 10);
                if (value && i >= json_array_size(cur))
                    json_array_append_new(cur, value);
                else if (value)
                    json_array_set_new(cur, i, value);
                else
                    json_array_remove(cur, strtoul(tok, NULL, 10));
            } else if (value) {
                json_object_set_new(cur, tok, value);
            } else {
                json_object_del(cur, tok);
            }
            return;
        }
        cur = is_index ? json_array_get(cur, strtoul(tok, NULL, 10)) : json_object_get(cur, tok);
        assert_non_null(cur);
        tok = next;
    }
}

static int load_with(const char *path, const char *value_json, cmn_diag_t *d, cmn_config_t **cfg)
{
    json_error_t err;
    json_t *doc = json_loads(base_config, 0, &err);
    assert_non_null(doc);
    if (path != NULL) {
        json_t *v = value_json ? json_loads(value_json, JSON_DECODE_ANY, &err) : NULL;
        if (value_json)
            assert_non_null(v);
        set_path(doc, path, v);
    }
    char *text = json_dumps(doc, JSON_INDENT(2));
    write_file("platform.json", text);
    free(text);
    json_decref(doc);
    return cmn_config_load(cfg_path, cfg, d);
}

static void test_valid(void **state)
{
    (void)state;
    cmn_diag_t d;
    cmn_config_t *cfg;
    cmn_diag_init(&d);
    int rc = load_with(NULL, NULL, &d, &cfg);
    cmn_diag_print(&d, "unexpected: ", stderr);
    assert_int_equal(rc, 0);
    assert_int_equal(d.n, 0);
    assert_string_equal(cfg->name, "test city");
    assert_string_equal(cfg->redis.host, "127.0.0.1");
    assert_int_equal(cfg->redis.port, 6390);
    assert_int_equal(cfg->redis.command_timeout_ms, 250);
    assert_int_equal(cfg->redis.connect_timeout_ms, 1000); /* default */
    assert_int_equal(cfg->gateway.listen.port, 0);
    assert_int_equal(cfg->gateway.max_body_bytes, 16384);
    assert_int_equal(cfg->gateway.clock_window_s, 300);
    assert_null(cfg->gateway.web_root); /* the gateway's default, beside its executable */
    assert_int_equal(cfg->credit.min_score, 550);
    assert_int_equal(cfg->credit.nretry, 3);
    assert_int_equal(cfg->credit.retry_minutes[2], 60);
    assert_int_equal(cfg->noperators, 2);
    assert_int_equal(cfg->nlots, 1);
    const cmn_cfg_lot_t *lot = cmn_config_lot(cfg, "L1");
    assert_non_null(lot);
    assert_string_equal(lot->district, "西湖区");
    assert_int_equal(lot->operator_index, 0);
    assert_non_null(lot->tariff);
    assert_string_equal(cmn_tariff_id(lot->tariff), "t1");
    assert_int_equal(lot->policy.no_entry, CMN_NO_ENTRY_CHARGE);
    assert_int_equal(lot->policy.no_entry_fee, 2000);
    assert_int_equal(lot->policy.leave_first, 1);
    assert_string_equal(lot->passes[0].plate, "浙A12345"); /* normalised */
    assert_string_equal(lot->allow[0], "浙B12345");
    assert_true(lot->exempt_kinds & (1u << CMN_PLATE_POLICE));
    assert_int_equal(cmn_config_lane(lot, "out")->direction, CMN_LANE_EXIT);
    assert_null(cmn_config_lane(lot, "side"));
    const cmn_cfg_device_t *dev = cmn_config_device(cfg, "d1");
    assert_non_null(dev);
    assert_int_equal(dev->key.len, strlen(DEVICE_KEY)); /* the newline is not part of it */
    assert_memory_equal(dev->key.data, DEVICE_KEY, dev->key.len);
    assert_non_null(strstr(dev->key.source, "secrets/d1.key"));
    const cmn_cfg_provider_t *p = cmn_config_provider(cfg, "stripe-test");
    assert_memory_equal(p->secret_key.data, "sk_test_123", 11);
    assert_string_equal(p->secret_key.source, "env PARK_TEST_STRIPE");
    assert_string_equal(p->currency, "CNY");
    assert_non_null(strstr(cfg->lpr.spool_dir, dir)); /* relative to the configuration */
    assert_int_equal(cfg->lpr.command_poll_ms, 1000); /* the defaults */
    assert_int_equal(cfg->lpr.command_max_age_s, 30);
    const cmn_cfg_camera_t *cam = cmn_config_camera(cfg, "cam1");
    assert_non_null(cam);
    assert_int_equal(cam->direction, CMN_LANE_EXIT); /* from the lane */
    assert_int_equal(cam->format, CMN_CAMERA_HIKVISION);
    assert_int_equal(cam->min_confidence, 850);
    assert_int_equal(cam->hold_ms, 800);
    assert_int_equal(cam->dedupe_window_s, 10);
    assert_int_equal(cam->barrier.kind, CMN_BARRIER_WEBHOOK);
    assert_int_equal(cam->device_index, 0);
    cmn_config_free(cfg);
    cmn_diag_dispose(&d);
}

struct bad_case {
    const char *path;  /* mutation */
    const char *value; /* JSON, or NULL to delete */
    const char *where; /* expected in the message */
    const char *why;
};

static const struct bad_case bad_cases[] = {
    {"colour", "\"red\"", "$.colour", "unknown field"},
    {"lots.0.capacity", "0", "$.lots[0].capacity", "from 1 to 1000000 (got 0)"},
    {"lots.0.capacity", "\"many\"", "$.lots[0].capacity", "not a string"},
    {"lots.0.capacity", NULL, "$.lots[0].capacity", "required field is missing"},
    {"lots.0.tariff", "\"nope\"", "$.lots[0].tariff", "no tariff file has the id \"nope\""},
    {"lots.0.operator", "\"op9\"", "$.lots[0].operator", "no operator has the id \"op9\""},
    {"lots.0.id", "\"has space\"", "$.lots[0].id", "letters, digits"},
    {"lots.0.district", NULL, "$.lots[0].district", "required"},
    {"lots.0.lanes", "[]", "$.lots[0].lanes", "at least one lane"},
    {"lots.0.lanes.1.direction", "\"sideways\"", "$.lots[0].lanes[1].direction",
     "one of \"entry\", \"exit\""},
    {"lots.0.lanes.1.id", "\"in\"", "$.lots[0].lanes[1].id", "duplicate lane id"},
    {"lots.0.exit_policy.no_entry_fee", NULL, "$.lots[0].exit_policy.no_entry_fee",
     "required when no_entry_record is \"charge\""},
    {"lots.0.exit_policy.match", "\"psychic\"", "$.lots[0].exit_policy.match", "one of"},
    {"lots.0.exit_policy.leave_first", "1", "$.lots[0].exit_policy.leave_first", "true or false"},
    {"lots.0.passes.0.plate", "\"浙A1234I\"", "$.lots[0].passes[0].plate",
     "invalid plate \"浙A1234I\""},
    {"lots.0.passes.0.to", "\"2026-10-01\"", "$.lots[0].passes[0].to", "before \"from\""},
    {"lots.0.passes.0.from", "\"2026-02-30\"", "$.lots[0].passes[0].from", "YYYY-MM-DD"},
    {"lots.0.allow_list.1", "\"无牌\"", "$.lots[0].allow_list[1]", "invalid plate"},
    {"lots.0.allow_list.1", "\"浙B·12345\"", "$.lots[0].allow_list[1]", "listed twice"},
    {"lots.0.exempt.kinds.0", "\"ambulance\"", "$.lots[0].exempt.kinds[0]", "unknown plate kind"},
    {"lots.0.blocked", "\"浙C12345\"", "$.lots[0].blocked", "must be an array"},
    {"lots.1", "{\"id\": \"L1\", \"name\": \"dup\", \"operator\": \"op1\", \"district\": \"x\","
               "\"capacity\": 1, \"tariff\": \"t1\", \"lanes\": [{\"id\": \"a\", \"direction\": \"entry\"}]}",
     "$.lots[1].id", "duplicate lot id"},
    {"lots", "[]", "$.lots", "at least one lot"},
    {"operators", NULL, "$.operators", "required field is missing"},
    {"operators.1.id", "\"op1\"", "$.operators[1].id", "duplicate operator id"},
    {"devices.0.lot", "\"L9\"", "$.devices[0].lot", "no lot has the id \"L9\""},
    {"devices.0.lanes.1", "\"side\"", "$.devices[0].lanes[1]", "lot \"L1\" has no lane \"side\""},
    {"devices.0.key", "\"inline-secret-0123456789\"", "$.devices[0].key",
     "secrets are never written in the configuration"},
    {"devices.0.key", "{\"file\": \"secrets/missing\"}", "$.devices[0].key",
     "cannot read secret file"},
    {"devices.0.key", "{\"file\": \"secrets/short\"}", "$.devices[0].key", "at least 16 bytes"},
    {"devices.0.key", "{\"env\": \"PARK_TEST_UNSET_VARIABLE\"}", "$.devices[0].key",
     "environment variable PARK_TEST_UNSET_VARIABLE is not set"},
    {"devices.0.key", "{\"file\": \"a\", \"env\": \"B\"}", "$.devices[0].key",
     "exactly one of \"file\" and \"env\""},
    {"redis.address", "\"localhost\"", "$.redis.address", "HOST:PORT or unix:PATH"},
    {"redis.address", "\"127.0.0.1:99999\"", "$.redis.address", "HOST:PORT"},
    {"redis.command_timeout_ms", "0", "$.redis.command_timeout_ms", "from 1 to"},
    {"gateway.listen", "\"8080\"", "$.gateway.listen", "HOST:PORT"},
    {"gateway.max_body_bytes", "-1", "$.gateway.max_body_bytes", "(got -1)"},
    {"gateway.admin_token", "{\"file\": \"secrets/short\"}", "$.gateway.admin_token",
     "at least 16 bytes"},
    {"gateway.speed", "1", "$.gateway.speed", "unknown field"},
    {"gateway.web_root", "\"\"", "$.gateway.web_root", "must not be empty"},
    {"gateway.web_root", "7", "$.gateway.web_root", "must be a string"},
    {"billing.default_provider", "\"paypal\"", "$.billing", "no provider has the id \"paypal\""},
    {"credit_policy.min_score", "2000", "$.credit_policy.min_score", "must not exceed max_score"},
    {"credit_policy.retry_minutes", "[10, 5]", "$.credit_policy.retry_minutes[1]",
     "larger than the value before it"},
    {"credit_policy.grace_hours", "1000", "$.credit_policy.default_after_days",
     "later than grace_hours"},
    {"credit_policy.score_default", "5", "$.credit_policy.score_default", "from -100000 to 0"},
    {"providers.0.kind", "\"paypal\"", "$.providers[0].kind", "one of \"stripe\", \"wechatpay\""},
    {"providers.0.base_url", "\"ftp://x\"", "$.providers[0].base_url", "http:// or https://"},
    {"providers.0.mchid", "\"123\"", "$.providers[0].mchid", "unknown field"},
    {"providers.0.currency", "\"YUAN\"", "$.providers[0].currency", "at most 3 bytes"},
    {"providers.0.secret_key", NULL, "$.providers[0].secret_key", "required field is missing"},
    {"lpr_bridge.gateway_url", "\"gateway:8080\"", "$.lpr_bridge.gateway_url", "http://"},
    {"log_level", "\"loud\"", "$.log_level", "one of \"debug\""},
    {"lpr_bridge.cameras.0.lane", "\"side\"", "$.lpr_bridge.cameras[0].lane", "has no lane \"side\""},
    {"lpr_bridge.cameras.0.lot", "\"L9\"", "$.lpr_bridge.cameras[0].lot", "no lot has the id"},
    {"lpr_bridge.cameras.0.device", "\"d9\"", "$.lpr_bridge.cameras[0].device", "no device"},
    {"lpr_bridge.cameras.0.format", "\"dahua\"", "$.lpr_bridge.cameras[0].format", "one of \"auto\""},
    {"lpr_bridge.cameras.0.hold_ms", "2000", "$.lpr_bridge.cameras[0].hold_ms", "from 0 to 1500"},
    {"lpr_bridge.cameras.0.min_confidence", "0.8", "$.lpr_bridge.cameras[0].min_confidence",
     "integer from 0 to 1000"},
    {"lpr_bridge.cameras.0.barrier", "{\"kind\": \"hikvision\"}", "$.lpr_bridge.cameras[0].barrier.url",
     "required for a hikvision barrier"},
    {"lpr_bridge.cameras.0.fallback", "\"maybe\"", "$.lpr_bridge.cameras[0].fallback", "one of"},
    {"tariff_dir", "\"no-such-folder\"", "$.tariff_dir", "cannot open folder"},
};

static void test_refused(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof *bad_cases; i++) {
        const struct bad_case *bc = &bad_cases[i];
        cmn_diag_t d;
        cmn_config_t *cfg = (cmn_config_t *)1;
        cmn_diag_init(&d);
        int rc = load_with(bc->path, bc->value, &d, &cfg);
        int found = 0;
        for (size_t k = 0; k < d.n; k++) {
            if (strncmp(d.msgs[k], cfg_path, strlen(cfg_path)) == 0 &&
                strstr(d.msgs[k], bc->where) && strstr(d.msgs[k], bc->why))
                found = 1;
            /* No message ever shows a secret. */
            assert_null(strstr(d.msgs[k], DEVICE_KEY));
            assert_null(strstr(d.msgs[k], "tiny"));
            assert_null(strstr(d.msgs[k], "inline-secret"));
        }
        if (rc != CMN_ECONFIG || !found) {
            fprintf(stderr, "case %zu (%s = %s): rc %d, expected \"%s\" ... \"%s\" among:\n", i,
                    bc->path, bc->value ? bc->value : "(deleted)", rc, bc->where, bc->why);
            cmn_diag_print(&d, "  ", stderr);
        }
        assert_int_equal(rc, CMN_ECONFIG);
        assert_null(cfg);
        assert_true(found);
        cmn_diag_dispose(&d);
    }
}

/* gateway.web_root: relative to the configuration's folder, absolute as it is. */
static void test_web_root(void **state)
{
    (void)state;
    cmn_diag_t d;
    cmn_config_t *cfg;
    char want[400];
    cmn_diag_init(&d);
    assert_int_equal(load_with("gateway.web_root", "\"share/web\"", &d, &cfg), 0);
    snprintf(want, sizeof want, "%s/share/web", dir);
    assert_string_equal(cfg->gateway.web_root, want);
    cmn_config_free(cfg);
    assert_int_equal(load_with("gateway.web_root", "\"/srv/park/web\"", &d, &cfg), 0);
    assert_string_equal(cfg->gateway.web_root, "/srv/park/web");
    cmn_config_free(cfg);
    cmn_diag_dispose(&d);
}

static void test_every_problem_is_listed(void **state)
{
    (void)state;
    json_error_t err;
    json_t *doc = json_loads(base_config, 0, &err);
    set_path(doc, "lots.0.capacity", json_integer(-1));
    set_path(doc, "devices.0.lot", json_string("nowhere"));
    set_path(doc, "redis.address", json_string("bad"));
    char *text = json_dumps(doc, 0);
    write_file("platform.json", text);
    free(text);
    json_decref(doc);
    cmn_diag_t d;
    cmn_config_t *cfg;
    cmn_diag_init(&d);
    assert_int_equal(cmn_config_load(cfg_path, &cfg, &d), CMN_ECONFIG);
    /* The three, and the camera whose device now serves no lane of its lot. */
    assert_int_equal(d.n, 4);
    assert_non_null(strstr(d.msgs[3], "$.lpr_bridge.cameras[0].device"));
    cmn_diag_dispose(&d);
}

static void test_syntax_error_names_line(void **state)
{
    (void)state;
    write_file("platform.json", "{\n  \"name\": \"x\",\n  \"lots\": [,]\n}\n");
    cmn_diag_t d;
    cmn_config_t *cfg;
    cmn_diag_init(&d);
    assert_int_equal(cmn_config_load(cfg_path, &cfg, &d), CMN_ECONFIG);
    assert_int_equal(d.n, 1);
    assert_non_null(strstr(d.msgs[0], "platform.json: line 3, column"));
    cmn_diag_dispose(&d);
    cmn_diag_init(&d);
    char missing[400];
    snprintf(missing, sizeof missing, "%s/none.json", dir);
    assert_int_equal(cmn_config_load(missing, &cfg, &d), CMN_EIO);
    assert_non_null(strstr(d.msgs[0], "none.json: cannot open"));
    cmn_diag_dispose(&d);
}

static void test_bad_tariff_file_is_named(void **state)
{
    (void)state;
    write_file("tariffs/t2.json", "{\"id\":\"t2\",\"currency\":\"CNY\",\"timezone\":\"Nowhere/City\","
                                  "\"bands\":[]}");
    cmn_diag_t d;
    cmn_config_t *cfg;
    cmn_diag_init(&d);
    assert_int_equal(load_with(NULL, NULL, &d, &cfg), CMN_ECONFIG);
    int tz = 0, bands = 0;
    for (size_t i = 0; i < d.n; i++) {
        tz |= strstr(d.msgs[i], "tariffs/t2.json: $.timezone: unknown IANA time zone") != NULL;
        bands |= strstr(d.msgs[i], "tariffs/t2.json: $.bands: must list at least one band") != NULL;
    }
    assert_true(tz && bands);
    cmn_diag_dispose(&d);
    /* The same id in two files. */
    write_file("tariffs/t2.json", tariff);
    cmn_diag_init(&d);
    assert_int_equal(load_with(NULL, NULL, &d, &cfg), CMN_ECONFIG);
    assert_non_null(strstr(d.msgs[0], "tariff id \"t1\" is also used"));
    cmn_diag_dispose(&d);
    char path[400];
    snprintf(path, sizeof path, "%s/tariffs/t2.json", dir);
    unlink(path);
}

static void test_shipped_demo_config(void **state)
{
    (void)state;
    const char *src = getenv("PARK_SOURCE_DIR");
    assert_non_null(src);
    char path[1024];
    snprintf(path, sizeof path, "%s/config/platform.json", src);
    cmn_diag_t d;
    cmn_config_t *cfg;
    cmn_diag_init(&d);
    int rc = cmn_config_load(path, &cfg, &d);
    cmn_diag_print(&d, "demo config: ", stderr);
    assert_int_equal(rc, 0);
    /* A city: at least 3 operators and 6 lots in different districts, each with entry and exit
     * lanes that devices serve. */
    assert_true(cfg->noperators >= 3);
    assert_true(cfg->nlots >= 6);
    for (size_t i = 0; i < cfg->nlots; i++) {
        const cmn_cfg_lot_t *lot = &cfg->lots[i];
        int entry = 0, exit = 0;
        for (size_t k = 0; k < lot->nlanes; k++) {
            int served = 0;
            for (size_t j = 0; j < cfg->ndevices; j++) {
                const cmn_cfg_device_t *dev = &cfg->devices[j];
                for (size_t m = 0; m < dev->nlanes; m++)
                    served |= dev->lot_index == (int)i && strcmp(dev->lanes[m], lot->lanes[k].id) == 0;
            }
            assert_true(served);
            entry |= lot->lanes[k].direction == CMN_LANE_ENTRY;
            exit |= lot->lanes[k].direction == CMN_LANE_EXIT;
        }
        assert_true(entry && exit);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(lot->district, cfg->lots[j].district);
    }
    cmn_config_free(cfg);
    cmn_diag_dispose(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_web_root),
        cmocka_unit_test(test_every_problem_is_listed),
        cmocka_unit_test(test_syntax_error_names_line),
        cmocka_unit_test(test_bad_tariff_file_is_named),
        cmocka_unit_test(test_shipped_demo_config),
    };
    return cmocka_run_group_tests_name("config", tests, setup, teardown);
}
