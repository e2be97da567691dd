/*
 * Unit tests of lpr-bridge/normalize.h in-process: the exact JSON line of a read, zero reads, raw
 * HTTP request files (Content-Length, chunked, unframed, malformed heads), error lines, and an
 * allocation-failure sweep (curl torture style) over the fallible allocations of the file reader.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmn/mem.h"
#include "normalize.h"

static const char LINE07[] =
    "{\"plate\":\"粤BD12345\",\"unreadable\":false,\"confidence\":0.97,"
    "\"candidates\":[{\"plate\":\"粤BD12345\",\"confidence\":0.97}],"
    "\"ts\":\"2025-03-14T09:40:02.318Z\",\"vehicle_class\":\"new_energy\",\"source\":\"hikvision\","
    "\"format\":\"hikvision.anpr\",\"plate_raw\":\"粤BD12345\",\"plate_kind\":\"new_energy\","
    "\"plate_color\":\"green\",\"camera_direction\":\"forward\",\"camera\":\"c0:56:e3:8a:12:7f/1\","
    "\"source_ref\":\"9f2c1e4a-6b0d-4d7e-8a35-1c2b3d4e5f60\"}\n";

static const char LINE05[] =
    "{\"plate\":\"KX70YTW\",\"unreadable\":false,\"confidence\":0.412,\"candidates\":["
    "{\"plate\":\"KX70YTW\",\"confidence\":0.412},{\"plate\":\"KX7OYTW\",\"confidence\":0.398},"
    "{\"plate\":\"KX70YFW\",\"confidence\":0.377}],\"ts\":\"2025-03-14T09:41:05.123Z\","
    "\"vehicle_class\":\"small\",\"source\":\"platerecognizer\","
    "\"format\":\"platerecognizer.snapshot\",\"plate_raw\":\"kx70ytw\",\"plate_kind\":\"other\","
    "\"camera\":\"gate-entry-1\",\"source_ref\":\"5123@2025-03-14T09:41:05.123441Z\"}\n";

struct run {
    int rc;
    char out[8192];
    char err[2048];
    char path[1024];
};

static struct run r;

static int group_setup(void **state)
{
    (void)state;
    return getenv("PARK_SOURCE_DIR") != NULL ? 0 : -1;
}

static void slurp(FILE *f, char *buf, size_t cap)
{
    size_t n;

    rewind(f);
    n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

static void run_path(const char *path)
{
    FILE *out = tmpfile(), *err = tmpfile();

    assert_non_null(out);
    assert_non_null(err);
    snprintf(r.path, sizeof r.path, "%s", path);
    r.rc = lpr_normalize_file(path, out, err);
    slurp(out, r.out, sizeof r.out);
    slurp(err, r.err, sizeof r.err);
}

static void run_sample(const char *file)
{
    char path[1024];

    snprintf(path, sizeof path, "%s/tests/samples/lpr/%s", getenv("PARK_SOURCE_DIR"), file);
    run_path(path);
}

/* Writes `content` to a temporary file and normalises it. */
static void run_text(const char *content)
{
    char path[] = "/tmp/lpr-normalize-XXXXXX";
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    run_path(path);
    unlink(path);
}

static void assert_error_line(const char *reason)
{
    char want[2048];

    snprintf(want, sizeof want, "lpr-bridge: %s: %s\n", r.path, reason);
    assert_int_equal(r.rc, 2);
    assert_string_equal(r.out, "");
    assert_string_equal(r.err, want);
}

static void test_read_line(void **state)
{
    (void)state;
    run_sample("07_hikvision_anpr_entry_newenergy.xml");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, LINE07);
    assert_string_equal(r.err, "");
    run_sample("45_platerecognizer_chunked.http");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, LINE05);
    run_sample("05_platerecognizer_snapshot_webhook_lowconf.json");
    assert_string_equal(r.out, LINE05);
    run_sample("34_hikvision_zoneless_no_namespace.xml");
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "\"ts\":null,"));
    assert_non_null(strstr(r.out, "{\"plate\":\"京AF02363\",\"confidence\":null}"));
    run_sample("10_hikvision_multipart_unreadable_plate.http");
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "{\"plate\":null,\"unreadable\":true,\"confidence\":0.0,"
                                  "\"candidates\":[],\"ts\":\"2025-03-14T14:31:07.000Z\","
                                  "\"vehicle_class\":\"small\",\"source\":\"hikvision\","));
    assert_non_null(strstr(r.out, "\"unreadable_reason\":\"no-plate sentinel\""));
}

static void test_zero_reads(void **state)
{
    static const char *const files[] = {
        "22_openalpr_empty_results.json", "23_openalpr_heartbeat.json",
        "27_platerecognizer_snapshot_no_plate.json", "35_hikvision_videoloss_heartbeat.xml",
        "47_hikvision_motion_event_ignored.xml"};

    (void)state;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        run_sample(files[i]);
        assert_int_equal(r.rc, 0);
        assert_string_equal(r.out, "");
        assert_string_equal(r.err, "");
    }
}

static void test_errors(void **state)
{
    (void)state;
    run_path("/nonexistent/lpr.json");
    assert_error_line("cannot open: No such file or directory");
    run_sample("33_hikvision_gbk_refused.xml");
    assert_error_line("XML declares encoding \"GBK\": only UTF-8 is accepted");
    run_sample("46_http_content_length_short.http");
    assert_error_line("truncated HTTP request: the body is shorter than announced");
    run_sample("38_platerecognizer_multipart_truncated.http");
    assert_error_line("truncated multipart body: multipart body ends before its closing boundary");
    run_text("");
    assert_error_line("empty payload");
}

static void test_http_requests(void **state)
{
    (void)state;
    /* Hand-written, LF only, no Content-Length: the rest of the file is the body. */
    run_text("POST /lpr HTTP/1.1\nHost: x\nContent-Type: application/x-www-form-urlencoded\n\n"
             "{\"data_type\":\"alpr_results\",\"epoch_time\":1741931705,"
             "\"results\":[{\"plate\":\"浙A12345\",\"confidence\":90}]}\n");
    assert_int_equal(r.rc, 0);
    assert_non_null(
        strstr(r.out, "{\"plate\":\"浙A12345\",\"unreadable\":false,\"confidence\":0.9,"));
    /* Content-Length shorter than the file: the rest (a second request, junk) is not read. */
    run_text("PUT /lpr HTTP/1.0\r\nContent-Length: 26\r\n\r\n{\"data_type\":\"heartbeat\"}\n"
             "garbage that is not JSON");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.out, "");
    assert_string_equal(r.err, "");
    /* The header decides: a multipart Content-Type makes the body multipart. */
    run_text("POST / HTTP/1.1\r\nContent-type: multipart/form-data; boundary=q\r\n"
             "Content-Length: 41\r\n\r\n--q\r\n\r\n{\"data_type\":\"heartbeat\"}\r\n--q--\r\n\r\n");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.err, "");
    run_text("POST / HTTP/1.1\r\nContent-Type: text/xml\r\nContent-Type: application/json\r\n"
             "Content-Length: 2\r\n\r\n{}");
    assert_error_line("more than one Content-Type header");
    run_text("POST / HTTP/1.1\r\nBad Header\r\n\r\n{}");
    assert_error_line("invalid character in header");
    run_text("POST / HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}");
    assert_error_line("unexpected content-length header");
    run_text("POST / HTTP/1.1\r\nHost: x\r\n");
    assert_error_line("truncated HTTP request head");
    /* Not a request line: the file is the payload itself. */
    run_text("POST is not a request line\n{}");
    assert_error_line("payload is neither JSON, XML nor multipart");
}

/* Every fallible allocation fails in turn: an error line or the right output, and no leak. */
static void test_allocation_failures(void **state)
{
    int ok = 0;

    (void)state;
    for (long n = 1; n < 200 && !ok; n++) {
        cmn_mem_fail_after(n);
        run_sample("45_platerecognizer_chunked.http");
        cmn_mem_fail_after(0);
        if (r.rc == 0) {
            assert_string_equal(r.out, LINE05);
            ok = 1;
        } else {
            assert_error_line(strstr(r.err, "request body too large") != NULL
                                  ? "request body too large"
                              : strstr(r.err, ": out of memory\n") != NULL ? "out of memory"
                                                                           : "?");
        }
    }
    assert_true(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_line),
        cmocka_unit_test(test_zero_reads),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_http_requests),
        cmocka_unit_test(test_allocation_failures),
    };

    return cmocka_run_group_tests(tests, group_setup, NULL);
}
