/*
 * `lpr-bridge --normalize FILE` as a process (the binary in $LPR_BRIDGE): exit statuses 0 and 2,
 * exact stdout lines, one-line stderr reasons, and a sweep over every sample of tests/samples/lpr
 * checking the output contract (JSON objects with the required keys, or one error line).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
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

static struct result r;
static char dir[1024];

static void drain(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    ssize_t n;

    while ((n = read(fd, buf + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
}

/* Runs lpr-bridge --normalize on `path`; stdout and stderr are captured. */
static void normalize(const char *path)
{
    const char *argv[] = {getenv("LPR_BRIDGE"), "--normalize", path, NULL};
    posix_spawn_file_actions_t fa;
    int out[2], err[2], st;
    pid_t pid;

    assert_non_null(argv[0]);
    assert_int_equal(pipe(out), 0);
    assert_int_equal(pipe(err), 0);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    posix_spawn_file_actions_addclose(&fa, err[0]);
    assert_int_equal(posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    close(err[1]);
    /* Outputs are small: stderr is read after stdout without risk of a full pipe. */
    drain(out[0], r.out, sizeof r.out);
    drain(err[0], r.err, sizeof r.err);
    close(out[0]);
    close(err[0]);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st)); /* never a crash or a sanitizer abort */
    r.status = WEXITSTATUS(st);
}

static void sample(const char *file)
{
    char path[1100];

    snprintf(path, sizeof path, "%s/%s", dir, file);
    normalize(path);
}

static int setup(void **state)
{
    const char *src = getenv("PARK_SOURCE_DIR");

    (void)state;
    if (src == NULL || getenv("LPR_BRIDGE") == NULL)
        return -1;
    snprintf(dir, sizeof dir, "%s/tests/samples/lpr", src);
    return 0;
}

static json_t *only_line(void)
{
    json_error_t e;
    const char *nl = strchr(r.out, '\n');
    json_t *j;

    assert_non_null(nl);
    assert_int_equal(nl[1], '\0');
    j = json_loads(r.out, 0, &e);
    assert_non_null(j);
    return j;
}

static void test_read(void **state)
{
    json_t *j, *c;

    (void)state;
    sample("01_openalpr_cli_alpr_results.json");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.err, "");
    assert_string_equal(
        r.out,
        "{\"plate\":\"KX70YTW\",\"unreadable\":false,\"confidence\":0.898745,\"candidates\":["
        "{\"plate\":\"KX70YTW\",\"confidence\":0.898745},{\"plate\":\"KX7OYTW\",\"confidence\":"
        "0.841203},{\"plate\":\"KX70YIW\",\"confidence\":0.805531},{\"plate\":\"KX70YW\","
        "\"confidence\":0.78007}],\"ts\":\"2025-03-14T05:55:05.123Z\",\"vehicle_class\":"
        "\"small\",\"source\":\"openalpr\",\"format\":\"openalpr.alpr_results\",\"plate_raw\":"
        "\"KX70YTW\",\"plate_kind\":\"other\"}\n");

    sample("29_platerecognizer_multipart_with_image.http");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.err, "");
    j = only_line();
    assert_string_equal(json_string_value(json_object_get(j, "plate")), "KX70YTW");
    assert_true(json_is_false(json_object_get(j, "unreadable")));
    assert_true(json_real_value(json_object_get(j, "confidence")) == 0.874);
    c = json_object_get(j, "candidates");
    assert_int_equal(json_array_size(c), 2);
    assert_true(json_is_null(json_object_get(json_array_get(c, 1), "confidence")));
    assert_string_equal(json_string_value(json_object_get(j, "ts")), "2025-03-14T09:43:01.250Z");
    assert_string_equal(json_string_value(json_object_get(j, "source")), "platerecognizer");
    assert_null(json_object_get(j, "camera_direction")); /* "" in the payload: not given */
    json_decref(j);

    sample("10_hikvision_multipart_unreadable_plate.http");
    assert_int_equal(r.status, 0);
    j = only_line();
    assert_true(json_is_null(json_object_get(j, "plate")));
    assert_true(json_is_true(json_object_get(j, "unreadable")));
    assert_true(json_real_value(json_object_get(j, "confidence")) == 0.0);
    assert_int_equal(json_array_size(json_object_get(j, "candidates")), 0);
    assert_string_equal(json_string_value(json_object_get(j, "vehicle_class")), "small");
    assert_string_equal(json_string_value(json_object_get(j, "camera_direction")), "reverse");
    assert_null(json_object_get(j, "plate_color")); /* "unknown" */
    json_decref(j);

    sample("26_openalpr_trailer_fullwidth.json");
    j = only_line();
    assert_string_equal(json_string_value(json_object_get(j, "plate")), "鲁Q5678挂");
    assert_string_equal(json_string_value(json_object_get(j, "vehicle_class")), "large");
    json_decref(j);
}

static void test_zero_reads(void **state)
{
    (void)state;
    sample("22_openalpr_empty_results.json");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "");
    assert_string_equal(r.err, "");
    sample("35_hikvision_videoloss_heartbeat.xml");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "");
    assert_string_equal(r.err, "");
}

static void assert_error(const char *file, const char *reason)
{
    char want[2048];

    sample(file);
    snprintf(want, sizeof want, "lpr-bridge: %s/%s: %s\n", dir, file, reason);
    assert_int_equal(r.status, 2);
    assert_string_equal(r.out, "");
    assert_string_equal(r.err, want);
}

static void test_errors(void **state)
{
    (void)state;
    assert_error("33_hikvision_gbk_refused.xml",
                 "XML declares encoding \"GBK\": only UTF-8 is accepted");
    assert_error("37_openalpr_truncated.json", "truncated JSON (line 21, column 12)");
    assert_error("39_hikvision_doctype_entities.xml", "XML with a DOCTYPE refused");
    assert_error("46_http_content_length_short.http",
                 "truncated HTTP request: the body is shorter than announced");
    assert_error("no-such-file.json", "cannot open: No such file or directory");
}

/* Every sample: exit 0 with JSON lines carrying the contract's keys, or exit 2 with one line. */
static void test_every_sample(void **state)
{
    static const char *const keys[] = {"plate", "unreadable",    "confidence", "candidates",
                                       "ts",    "vehicle_class", "source"};
    DIR *d = opendir(dir);
    struct dirent *e;
    int files = 0, reads = 0, errors = 0;

    (void)state;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "README.md") == 0)
            continue;
        sample(e->d_name);
        files++;
        if (r.status == 2) {
            assert_string_equal(r.out, "");
            assert_int_equal(strncmp(r.err, "lpr-bridge: ", 12), 0);
            assert_ptr_equal(strchr(r.err, '\n'), r.err + strlen(r.err) - 1);
            errors++;
            continue;
        }
        assert_int_equal(r.status, 0);
        assert_string_equal(r.err, "");
        if (r.out[0] == '\0')
            continue;
        {
            json_t *j = only_line();
            for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
                if (json_object_get(j, keys[k]) == NULL)
                    fail_msg("%s: no \"%s\" in %s", e->d_name, keys[k], r.out);
            }
            assert_true(json_is_boolean(json_object_get(j, "unreadable")));
            assert_true(json_is_array(json_object_get(j, "candidates")));
            json_decref(j);
            reads++;
        }
    }
    closedir(d);
    assert_int_equal(files, 36);
    assert_int_equal(reads, 22);
    assert_int_equal(errors, 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read),
        cmocka_unit_test(test_zero_reads),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_every_sample),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
