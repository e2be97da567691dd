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

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_lines_are_json)};
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
