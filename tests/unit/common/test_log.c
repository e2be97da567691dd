/* Log lines are single JSON objects; messages are escaped; levels filter. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmn/buf.h"
#include "cmn/err.h"
#include "cmn/log.h"
#include "cmn/plate.h"

static void test_lines_are_json(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    cmn_log_init("gateway", CMN_LOG_INFO, fds[1]);
    char masked[CMN_PLATE_MAX];
    cmn_plate_mask("浙A12345", masked, sizeof masked);
    cmn_log(CMN_LOG_DEBUG, "hidden", "not written");
    cmn_log(CMN_LOG_INFO, "exit", "plate %s said \"hi\"\nnext line\t%d", masked, 42);
    cmn_log(CMN_LOG_ERROR, "redis_down", "%s", "connection refused");
    close(fds[1]);
    char buf[4096];
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    close(fds[0]);
    assert_true(n > 0);
    buf[n] = '\0';
    char *line2 = strchr(buf, '\n');
    assert_non_null(line2);
    *line2++ = '\0';
    json_error_t err;
    json_t *a = json_loads(buf, 0, &err);
    assert_non_null(a);
    assert_string_equal(json_string_value(json_object_get(a, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(a, "prog")), "gateway");
    assert_string_equal(json_string_value(json_object_get(a, "event")), "exit");
    assert_string_equal(json_string_value(json_object_get(a, "msg")),
                        "plate 浙A1***5 said \"hi\"\nnext line\t42");
    const char *ts = json_string_value(json_object_get(a, "ts"));
    assert_int_equal(strlen(ts), 24); /* 2026-11-27T10:42:07.123Z */
    assert_int_equal(ts[23], 'Z');
    json_decref(a);
    json_t *b = json_loads(line2, JSON_DISABLE_EOF_CHECK, &err);
    assert_non_null(b);
    assert_string_equal(json_string_value(json_object_get(b, "level")), "error");
    json_decref(b);
    assert_null(strstr(line2, "hidden"));
    assert_int_equal(cmn_log_level_parse("warn"), CMN_LOG_WARN);
    assert_int_equal(cmn_log_level_parse("loud"), -1);
}

/* The escape writes runs of plain bytes whole: the bytes are those of one escape per byte. */
static void test_escape(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t n;
        const char *out;
    } cases[] = {
        {"", 0, ""},
        {"plain text", 10, "plain text"},
        {"\"", 1, "\\\""},
        {"a\\b\"c", 5, "a\\\\b\\\"c"},
        {"line\nnext\r\t\x01\x7f end", 17, "line\\nnext\\u000d\\u0009\\u0001\\u007f end"},
        {"\xe4\xba\xac\"", 4, "\xe4\xba\xac\\\""},
        {"nul\0after", 9, "nul\\u0000after"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cmn_buf_t b;
        cmn_buf_init(&b, 1024);
        assert_int_equal(cmn_buf_puts(&b, "<"), 0);
        assert_int_equal(cmn_buf_json_escape(&b, cases[i].in, cases[i].n), 0);
        assert_string_equal(b.base + 1, cases[i].out);
        assert_int_equal(b.len, 1 + strlen(cases[i].out));
        cmn_buf_dispose(&b);
    }
    /* Past the buffer's cap: an error and the buffer as it was. */
    cmn_buf_t b;
    cmn_buf_init(&b, 8);
    assert_int_equal(cmn_buf_puts(&b, "ab"), 0);
    assert_int_equal(cmn_buf_json_escape(&b, "cd\"efgh", 7), CMN_ETOOBIG);
    assert_string_equal(b.base, "ab");
    assert_int_equal(b.len, 2);
    cmn_buf_dispose(&b);
    assert_true(cmn_log_enabled(CMN_LOG_ERROR));
}

/* printf into a buffer: into the free space when it fits, grown when not, refused past the cap with
 * the content as it was. */
static void test_buf_printf(void **state)
{
    (void)state;
    cmn_buf_t b;
    char want[4096];
    size_t wl = 0;
    cmn_buf_init(&b, 4000);
    for (int i = 0; i < 300; i++) {
        assert_int_equal(cmn_buf_printf(&b, "%d:%s;", i, i % 7 ? "x" : "longer piece"), 0);
        wl += (size_t)snprintf(want + wl, sizeof want - wl, "%d:%s;", i,
                               i % 7 ? "x" : "longer piece");
        assert_int_equal(b.len, wl);
        assert_string_equal(b.base, want);
    }
    /* 40 bytes left under the cap: 41 are refused, 40 fit. */
    cmn_buf_t c;
    cmn_buf_init(&c, 50);
    assert_int_equal(cmn_buf_printf(&c, "%s", "0123456789"), 0);
    assert_int_equal(cmn_buf_printf(&c, "%041d", 7), CMN_ETOOBIG);
    assert_string_equal(c.base, "0123456789");
    assert_int_equal(c.len, 10);
    assert_int_equal(cmn_buf_printf(&c, "%040d", 7), 0);
    assert_int_equal(c.len, 50);
    assert_int_equal(c.base[49], '7');
    assert_int_equal(c.base[50], '\0');
    cmn_buf_dispose(&c);
    cmn_buf_dispose(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_lines_are_json),
                                       cmocka_unit_test(test_escape),
                                       cmocka_unit_test(test_buf_printf)};
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
