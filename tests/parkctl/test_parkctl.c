/*
 * parkctl as a process: exit statuses, what goes to stdout and stderr, and the fee of the contract's
 * example tariff through the command line.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct result {
    int status;
    char out[65536];
    char err[8192];
};

static void drain(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    ssize_t n;
    while ((n = read(fd, buf + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
}

/* Runs parkctl with the NULL-terminated arguments; stdout and stderr are captured. */
static void run(struct result *r, ...)
{
    const char *argv[32];
    int argc = 0;
    va_list ap;
    argv[argc++] = getenv("PARKCTL");
    assert_non_null(argv[0]);
    va_start(ap, r);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && argc < 31)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;

    int out[2], err[2];
    assert_int_equal(pipe(out), 0);
    assert_int_equal(pipe(err), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    posix_spawn_file_actions_addclose(&fa, err[0]);
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    close(err[1]);
    /* Outputs are small: stderr is read after stdout without risk of a full pipe. */
    drain(out[0], r->out, sizeof r->out);
    drain(err[0], r->err, sizeof r->err);
    close(out[0]);
    close(err[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st)); /* never a crash */
    r->status = WEXITSTATUS(st);
}

static char tariff_path[1024];
static char config_path[1024];

static int setup(void **state)
{
    (void)state;
    const char *src = getenv("PARK_SOURCE_DIR");
    if (src == NULL)
        return -1;
    snprintf(tariff_path, sizeof tariff_path, "%s/tests/parkctl/spec-example.json", src);
    snprintf(config_path, sizeof config_path, "%s/config/platform.json", src);
    return 0;
}

static void assert_one_line_error(const struct result *r, const char *fragment)
{
    assert_int_equal(r->status, 2);
    assert_string_equal(r->out, "");
    assert_non_null(strstr(r->err, "parkctl: "));
    const char *nl = strchr(r->err, '\n');
    assert_non_null(nl);
    assert_int_equal(nl[1], '\0'); /* exactly one line */
    if (strstr(r->err, fragment) == NULL)
        fail_msg("expected \"%s\" in \"%s\"", fragment, r->err);
}

static void test_fee_plain_and_json(void **state)
{
    (void)state;
    struct result *r = malloc(sizeof *r);
    run(r, "fee", "--tariff", tariff_path, "--class", "small", "--entry",
        "2026-11-27T18:10:00+08:00", "--exit", "2026-11-28T10:05:00+08:00", NULL);
    assert_int_equal(r->status, 0);
    assert_string_equal(r->out, "3300 CNY (33.00)\n");
    assert_string_equal(r->err, "");

    run(r, "fee", "--tariff", tariff_path, "--class", "new_energy", "--entry",
        "2026-11-27T08:00:00+08:00", "--exit", "2026-11-27T09:01:00+08:00", "--json", NULL);
    assert_int_equal(r->status, 0);
    json_error_t err;
    json_t *j = json_loads(r->out, 0, &err);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "amount")), 650);
    assert_string_equal(json_string_value(json_object_get(j, "currency")), "CNY");
    assert_string_equal(json_string_value(json_object_get(j, "tariff_id")), "hz-core-2024");
    assert_int_equal(strlen(json_string_value(json_object_get(j, "tariff_version"))), 16);
    assert_null(json_object_get(j, "rows")); /* rows only with --explain */
    json_decref(j);

    run(r, "fee", "--tariff", tariff_path, "--entry", "2026-11-27T18:10:00+08:00", "--exit",
        "2026-11-28T10:05:00+08:00", "--json", "--explain", NULL);
    assert_int_equal(r->status, 0);
    j = json_loads(r->out, 0, &err);
    assert_non_null(j);
    assert_int_equal(json_array_size(json_object_get(j, "rows")), 5);
    assert_int_equal(json_array_size(json_object_get(j, "caps")), 1);
    json_decref(j);
    free(r);
}

static void test_fee_explain_text(void **state)
{
    (void)state;
    struct result *r = malloc(sizeof *r);
    run(r, "fee", "--tariff", tariff_path, "--class", "small", "--entry",
        "2026-11-27T18:10:00+08:00", "--exit", "2026-11-28T10:05:00+08:00", "--explain", NULL);
    assert_int_equal(r->status, 0);
    assert_non_null(strstr(r->out, "first period in day"));
    assert_non_null(strstr(r->out, "#4-8"));
    assert_non_null(strstr(r->out, "band cap of \"night\" begun 2026-11-27: 5.00, units 12.00 -> 5.00"));
    assert_non_null(strstr(r->out, "total 33.00 CNY (3300 minor units)"));
    free(r);
}

static void test_fee_bad_input(void **state)
{
    (void)state;
    struct result *r = malloc(sizeof *r);
    run(r, "fee", "--tariff", tariff_path, "--entry", "2026-11-27T18:10:00", "--exit",
        "2026-11-28T10:05:00+08:00", NULL);
    assert_one_line_error(r, "--entry: \"2026-11-27T18:10:00\" is not an RFC 3339 time");
    run(r, "fee", "--tariff", tariff_path, "--entry", "2026-11-27T18:10:00Z", "--exit",
        "2026-11-27T18:09:59Z", NULL);
    assert_one_line_error(r, "is before the entry");
    run(r, "fee", "--tariff", tariff_path, "--entry", "2026-02-30T18:10:00Z", "--exit",
        "2026-11-27T18:09:59Z", NULL);
    assert_one_line_error(r, "out of range");
    run(r, "fee", "--tariff", "/nonexistent/t.json", "--entry", "2026-11-27T18:10:00Z", "--exit",
        "2026-11-27T19:09:59Z", NULL);
    assert_one_line_error(r, "/nonexistent/t.json: cannot open");
    run(r, "fee", "--tariff", config_path, "--entry", "2026-11-27T18:10:00Z", "--exit",
        "2026-11-27T19:09:59Z", NULL);
    assert_one_line_error(r, "invalid tariff");
    run(r, "fee", "--tariff", tariff_path, "--entry", "2026-11-27T18:10:00Z", NULL);
    assert_one_line_error(r, "--exit TIME is required");
    run(r, "fee", "--tariff", NULL);
    assert_one_line_error(r, "--tariff needs a value");
    run(r, "fee", "--speed", "9", NULL);
    assert_one_line_error(r, "unknown argument \"--speed\"");
    run(r, "teleport", NULL);
    assert_one_line_error(r, "unknown command \"teleport\"");
    run(r, NULL);
    assert_one_line_error(r, "a command is required");
    free(r);
}

static void test_plate(void **state)
{
    (void)state;
    struct result *r = malloc(sizeof *r);
    run(r, "plate", "浙a·d1234５", NULL);
    assert_int_equal(r->status, 0);
    assert_string_equal(r->out, "浙AD12345 kind=new_energy class=new_energy\n");
    run(r, "plate", "--json", "浙A 1234挂", NULL);
    assert_int_equal(r->status, 0);
    json_error_t err;
    json_t *j = json_loads(r->out, 0, &err);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "plate")), "浙A1234挂");
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "trailer");
    assert_string_equal(json_string_value(json_object_get(j, "vehicle_class")), "large");
    json_decref(j);
    run(r, "plate", "浙A1234O", NULL);
    assert_one_line_error(r, "is invalid");
    run(r, "plate", "无车牌", NULL);
    assert_one_line_error(r, "is unreadable");
    run(r, "plate", "\xff\xfe", NULL);
    assert_one_line_error(r, "is invalid");
    run(r, "plate", NULL);
    assert_one_line_error(r, "TEXT is required");
    free(r);
}

static void test_config_check(void **state)
{
    (void)state;
    struct result *r = malloc(sizeof *r);
    run(r, "config", "check", config_path, NULL);
    assert_int_equal(r->status, 0);
    assert_non_null(strstr(r->out, ": OK: "));
    assert_non_null(strstr(r->out, "tariff hz-core-2024 version "));
    /* Every problem of a bad file, one per line, then a count. */
    char bad[] = "/tmp/park-parkctl-XXXXXX.json";
    int fd = mkstemps(bad, 5);
    assert_true(fd >= 0);
    const char *text = "{\"operators\": [{\"id\": \"o\"}], \"lots\": 5, \"devices\": []}";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    run(r, "config", "check", bad, NULL);
    unlink(bad);
    assert_int_equal(r->status, 2);
    assert_non_null(strstr(r->err, "$.operators[0].name: required field is missing"));
    assert_non_null(strstr(r->err, "$.lots: must be an array"));
    assert_non_null(strstr(r->err, "problems\n"));
    run(r, "config", "fix", NULL);
    assert_one_line_error(r, "unknown subcommand");
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fee_plain_and_json), cmocka_unit_test(test_fee_explain_text),
        cmocka_unit_test(test_fee_bad_input),      cmocka_unit_test(test_plate),
        cmocka_unit_test(test_config_check),
    };
    return cmocka_run_group_tests_name("parkctl", tests, setup, NULL);
}
