/*
 * Unit tests of lpr-bridge/multipart.h: boundary and parameter extraction, and the body parser on
 * CRLF and bare-LF bodies, preambles and epilogues, boundary look-alikes in content, empty parts,
 * every limit, every malformed header, truncation at each stage, and the sample requests of
 * tests/samples/lpr.  Part bodies are checked as exact byte ranges of the input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn/err.h"
#include "multipart.h"

static lpr_multipart_t mp; /* large: one per process, not on the stack */

static int group_setup(void **state)
{
    (void)state;
    return getenv("PARK_SOURCE_DIR") != NULL ? 0 : -1;
}

static int parse(const char *boundary, const char *body)
{
    return lpr_multipart_parse(boundary, body, strlen(body), &mp);
}

static void assert_part(size_t i, const char *name, const char *body)
{
    assert_true(i < mp.nparts);
    assert_string_equal(mp.parts[i].name, name);
    assert_int_equal(mp.parts[i].body_len, strlen(body));
    assert_memory_equal(mp.parts[i].body, body, strlen(body));
}

static void assert_fails(const char *boundary, const char *body, int rc, const char *error)
{
    assert_int_equal(parse(boundary, body), rc);
    assert_int_equal(mp.nparts, 0);
    assert_non_null(mp.error);
    assert_string_equal(mp.error, error);
}

static void check_boundary(const char *ctype, int rc, const char *want)
{
    char out[LPR_MULTIPART_BOUNDARY_MAX + 1];

    memset(out, 'x', sizeof out);
    assert_int_equal(lpr_multipart_boundary(ctype, strlen(ctype), out, sizeof out), rc);
    assert_string_equal(out, want);
}

static void test_boundary(void **state)
{
    char b71[80], ct[120], small[4];

    (void)state;
    check_boundary("multipart/form-data; boundary=----HikBoundary7d3a", 19, "----HikBoundary7d3a");
    check_boundary("Multipart/Form-Data;BOUNDARY=abc", 3, "abc");
    check_boundary("multipart/mixed; charset=utf-8; boundary = \"a b:c\" ; x=y", 5, "a b:c");
    check_boundary("multipart/form-data; boundary=\"q\\\"\"", CMN_EPARSE, ""); /* '"' not allowed */
    check_boundary("multipart/form-data; boundary=\"ab \"", CMN_EPARSE, "");   /* space last */
    check_boundary("multipart/form-data; boundary=a@b", CMN_EPARSE, "");
    check_boundary("multipart/form-data; boundary=", CMN_EPARSE, "");
    check_boundary("multipart/form-data; boundary=\"unterminated", CMN_EPARSE, "");
    check_boundary("multipart/form-data", CMN_ENOTFOUND, "");
    check_boundary("multipart/form-data; name=x", CMN_ENOTFOUND, "");
    check_boundary("application/json; boundary=abc", CMN_EINVAL, "");
    check_boundary("multipart/", CMN_EINVAL, "");
    check_boundary("", CMN_EINVAL, "");
    /* 70 characters are fine, 71 are not. */
    memset(b71, 'b', 71);
    b71[70] = '\0';
    snprintf(ct, sizeof ct, "multipart/form-data; boundary=%s", b71);
    check_boundary(ct, 70, b71);
    b71[70] = 'b';
    b71[71] = '\0';
    snprintf(ct, sizeof ct, "multipart/form-data; boundary=%s", b71);
    check_boundary(ct, CMN_ETOOBIG, "");
    assert_int_equal(lpr_multipart_boundary("multipart/x; boundary=abcd", 26, small, sizeof small),
                     CMN_ETOOBIG);
    assert_string_equal(small, "");
    assert_int_equal(lpr_multipart_boundary(NULL, 0, small, sizeof small), CMN_EINVAL);
    assert_int_equal(lpr_multipart_boundary_check("a b:c=d?", 8), 0);
    assert_int_equal(lpr_multipart_boundary_check("a;b", 3), CMN_EPARSE);
    assert_int_equal(lpr_multipart_boundary_check("ab ", 3), CMN_EPARSE);
    assert_int_equal(lpr_multipart_boundary_check("a\0b", 3), CMN_EPARSE);
    assert_int_equal(lpr_multipart_boundary_check("", 0), CMN_EPARSE);
    assert_int_equal(lpr_multipart_boundary_check(b71, 71), CMN_ETOOBIG);
    /* Not NUL-terminated: only `len` bytes count. */
    assert_int_equal(lpr_multipart_boundary("multipart/x; boundary=abcdef", 25, ct, sizeof ct), 3);
    assert_string_equal(ct, "abc");
}

static void check_param(const char *value, const char *name, int rc, const char *want)
{
    char out[32];

    memset(out, 'x', sizeof out);
    assert_int_equal(lpr_multipart_param(value, strlen(value), name, out, sizeof out), rc);
    assert_string_equal(out, want);
}

static void test_param(void **state)
{
    char out_[32];

    (void)state;
    check_param("form-data; name=\"json\"", "name", 4, "json");
    check_param("form-data; filename=\"a.jpg\"; name=upload", "name", 6, "upload");
    check_param("form-data; filename=\"a.jpg\"", "name", CMN_ENOTFOUND, "");
    check_param("form-data; NAME=\"x;y\\\"z\"; name=second", "name", 5, "x;y\"z");
    check_param("form-data; name=\"\"", "name", 0, "");
    check_param("form-data; name=plain  ; x=1", "name", 5, "plain");
    check_param("form-data;; ; name=a;", "name", 1, "a");
    check_param("form-data; name", "name", CMN_EPARSE, "");
    check_param("form-data; =x", "name", CMN_EPARSE, "");
    check_param("form-data; name=\"a\"b", "name", CMN_EPARSE, "");
    check_param("form-data; name=\"abc", "name", CMN_EPARSE, "");
    check_param("form-data; name=\"abc\\", "name", CMN_EPARSE, "");
    check_param("form-data", "name", CMN_ENOTFOUND, "");
    check_param("form-data; name=0123456789012345678901234567890123456789", "name", CMN_ETOOBIG,
                "");
    /* Control characters (and NUL, which would cut the C string short) are refused. */
    assert_int_equal(lpr_multipart_param("a/b; charset=utf\0-8", 20, "charset", out_, 32),
                     CMN_EPARSE);
    check_param("a/b; x=\"\x01\"; charset=utf-8", "charset", CMN_EPARSE, "");
    check_param("a/b;\tcharset=utf-8", "charset", 5, "utf-8");
    /* filename* (RFC 5987) is a different parameter. */
    check_param("form-data; filename*=UTF-8''a.jpg", "filename", CMN_ENOTFOUND, "");
}

static void test_two_parts_crlf(void **state)
{
    const char *body = "--XyZ\r\n"
                       "Content-Disposition: form-data; name=\"json\"\r\n"
                       "\r\n"
                       "{\"a\":1}\r\n"
                       "--XyZ\r\n"
                       "content-disposition: form-data; name=upload; filename=\"p.jpg\"\r\n"
                       "CONTENT-TYPE:   image/jpeg  \r\n"
                       "X-Other: ignored\r\n"
                       "\r\n"
                       "\xff\xd8\r\n\xff\xd9\r\n"
                       "--XyZ--\r\n";

    (void)state;
    assert_int_equal(parse("XyZ", body), 0);
    assert_null(mp.error);
    assert_int_equal(mp.nparts, 2);
    assert_part(0, "json", "{\"a\":1}");
    assert_string_equal(mp.parts[0].content_type, "");
    assert_int_equal(mp.parts[0].has_filename, 0);
    assert_part(1, "upload", "\xff\xd8\r\n\xff\xd9");
    assert_string_equal(mp.parts[1].content_type, "image/jpeg");
    assert_int_equal(mp.parts[1].has_filename, 1);
    assert_string_equal(mp.parts[1].filename, "p.jpg");
    /* Bodies point into the input. */
    assert_ptr_equal(mp.parts[0].body, strchr(body, '{'));
    assert_ptr_equal(lpr_multipart_find(&mp, "upload"), &mp.parts[1]);
    assert_null(lpr_multipart_find(&mp, "Upload"));
    assert_null(lpr_multipart_find(&mp, "none"));
}

static void test_preamble_epilogue_padding(void **state)
{
    (void)state;
    /* Preamble lines (one mentions the boundary mid-line), transport padding, epilogue. */
    assert_int_equal(parse("b", "This is a preamble with --b inside\r\n"
                                "--bX is not a delimiter either\r\n"
                                "--b \t\r\n"
                                "Content-Disposition: form-data; name=a\r\n"
                                "\r\n"
                                "one\r\n"
                                "--b--   and an epilogue\r\n--b\r\nignored"),
                     0);
    assert_int_equal(mp.nparts, 1);
    assert_part(0, "a", "one");
}

static void test_bare_lf_and_mixed(void **state)
{
    (void)state;
    assert_int_equal(parse("b", "--b\nContent-Disposition: form-data; name=a\n\nA\n--b\n"
                                "Content-Disposition: form-data; name=b\r\n\r\nB\r\n--b--"),
                     0);
    assert_int_equal(mp.nparts, 2);
    assert_part(0, "a", "A");
    assert_part(1, "b", "B");
}

static void test_body_edges(void **state)
{
    (void)state;
    /* Empty bodies, with CRLF and with the body's newline eaten by the blank line. */
    assert_int_equal(parse("b", "--b\r\nContent-Disposition: form-data; name=e\r\n\r\n\r\n"
                                "--b\r\n\r\n--b--"),
                     0);
    assert_int_equal(mp.nparts, 2);
    assert_part(0, "e", "");
    assert_part(1, "", "");
    /* A CR that is content stays; only the CRLF of the delimiter goes. */
    assert_int_equal(parse("b", "--b\r\n\r\nabc\r\r\n--b--"), 0);
    assert_part(0, "", "abc\r");
    /* Content that looks like a delimiter but is not: a longer line, or not at a line start. */
    assert_int_equal(parse("b", "--b\r\n\r\nx\r\n--bb\r\n--b-x\r\ny --b\r\n\r\n--b--"), 0);
    assert_int_equal(mp.nparts, 1);
    assert_part(0, "", "x\r\n--bb\r\n--b-x\r\ny --b\r\n");
    /* Headers without a body line end: the part ends at the next delimiter. */
    assert_int_equal(parse("b", "--b\r\nContent-Type: text/plain\r\n\r\n--b--"), 0);
    assert_part(0, "", "");
    assert_string_equal(mp.parts[0].content_type, "text/plain");
}

static void test_truncated(void **state)
{
    (void)state;
    assert_fails("b", "--b\r\n\r\nbody without an end", CMN_AGAIN,
                 "multipart body ends before its closing boundary");
    assert_fails("b", "--b\r\nContent-Disposition: form-data; name=a\r\n", CMN_AGAIN,
                 "body ends inside a part header");
    assert_fails("b", "--b\r\nContent-Disposition: form-da", CMN_AGAIN,
                 "body ends inside a part header");
    assert_fails("b", "--b\r\n\r\nx\r\n--b", CMN_AGAIN,
                 "multipart body ends before its closing boundary");
    assert_fails("b", "--b\r\n\r\nx\r\n--b-", CMN_AGAIN,
                 "multipart body ends before its closing boundary");
    assert_fails("b", "--b\r\n\r\nx\r\n--b  ", CMN_AGAIN,
                 "multipart body ends before its closing boundary");
    assert_fails("b", "--b\r\n\r\nx\r\n--b\r", CMN_AGAIN,
                 "multipart body ends before its closing boundary");
    assert_fails("b", "--b", CMN_AGAIN, "multipart body ends inside its opening boundary");
    assert_fails("b", "--b\r", CMN_AGAIN, "multipart body ends inside its opening boundary");
}

static void test_malformed(void **state)
{
    (void)state;
    assert_fails("b", "", CMN_EPARSE, "multipart body without its opening boundary");
    assert_fails("b", "{\"json\": true}", CMN_EPARSE,
                 "multipart body without its opening boundary");
    assert_fails("b", "--b--\r\n", CMN_EPARSE, "multipart body without parts");
    assert_fails("b", "--b\r\n folded: x\r\n\r\n\r\n--b--", CMN_EPARSE, "folded part header line");
    assert_fails("b", "--b\r\nno colon here\r\n\r\n\r\n--b--", CMN_EPARSE,
                 "part header line without a colon");
    assert_fails("b", "--b\r\n: empty name\r\n\r\n\r\n--b--", CMN_EPARSE,
                 "malformed part header name");
    assert_fails("b", "--b\r\nBad Name: x\r\n\r\n\r\n--b--", CMN_EPARSE,
                 "malformed part header name");
    assert_fails("b", "--b\r\nX: a\rb\r\n\r\n\r\n--b--", CMN_EPARSE,
                 "control character in a part header");
    assert_fails("b", "--b\r\nX: \x01\r\n\r\n\r\n--b--", CMN_EPARSE,
                 "control character in a part header");
    assert_int_equal(lpr_multipart_parse("b", "--b\r\nX: a\0b\r\n\r\n\r\n--b--", 23, &mp),
                     CMN_EPARSE);
    assert_string_equal(mp.error, "control character in a part header");
    assert_fails("b",
                 "--b\r\nContent-Disposition: form-data\r\nContent-Disposition: form-data\r\n"
                 "\r\n\r\n--b--",
                 CMN_EPARSE, "duplicate Content-Disposition in a part");
    assert_fails("b", "--b\r\nContent-Type: a/b\r\ncontent-type: c/d\r\n\r\n\r\n--b--", CMN_EPARSE,
                 "duplicate Content-Type in a part");
    assert_fails("b", "--b\r\nContent-Disposition: form-data; name=\"x\r\n\r\n\r\n--b--",
                 CMN_EPARSE, "malformed Content-Disposition");
}

static void test_limits(void **state)
{
    char body[40000], name[200];
    size_t n = 0;

    (void)state;
    /* 16 parts are fine, 17 are too many. */
    for (int i = 0; i < LPR_MULTIPART_MAX_PARTS; i++)
        n += (size_t)snprintf(body + n, sizeof body - n, "--b\r\n\r\n%d\r\n", i);
    snprintf(body + n, sizeof body - n, "--b--");
    assert_int_equal(parse("b", body), 0);
    assert_int_equal(mp.nparts, LPR_MULTIPART_MAX_PARTS);
    assert_part(15, "", "15");
    snprintf(body + n, sizeof body - n, "--b\r\n\r\nx\r\n--b--");
    assert_fails("b", body, CMN_ETOOBIG, "too many multipart parts");

    /* Header block: 16 lines fine, 17 not; 4096 bytes fine, one more not. */
    n = (size_t)snprintf(body, sizeof body, "--b\r\n");
    for (int i = 0; i < LPR_MULTIPART_MAX_HEADERS; i++)
        n += (size_t)snprintf(body + n, sizeof body - n, "X-%d: v\r\n", i);
    snprintf(body + n, sizeof body - n, "\r\nok\r\n--b--");
    assert_int_equal(parse("b", body), 0);
    snprintf(body + n, sizeof body - n, "X-17: v\r\n\r\nok\r\n--b--");
    assert_fails("b", body, CMN_ETOOBIG, "too many part header lines");

    n = (size_t)snprintf(body, sizeof body, "--b\r\nX: ");
    memset(body + n, 'v', LPR_MULTIPART_MAX_HEADER_BYTES - 5);
    n += LPR_MULTIPART_MAX_HEADER_BYTES - 5;
    snprintf(body + n, sizeof body - n, "\r\n\r\nok\r\n--b--");
    assert_int_equal(parse("b", body), 0); /* 3 + 4091 + 2 = 4096 bytes */
    assert_part(0, "", "ok");
    memmove(body + n + 1, body + n, strlen(body + n) + 1);
    body[n] = 'v';
    assert_fails("b", body, CMN_ETOOBIG, "part header too large");
    /* A header line without an end: at 4095 bytes it may still end in budget (truncated), one
     * byte more and it is too big whatever follows. */
    body[n + 1] = '\0';
    assert_fails("b", body, CMN_AGAIN, "body ends inside a part header");
    body[n + 1] = 'v';
    body[n + 2] = '\0';
    assert_fails("b", body, CMN_ETOOBIG, "part header too large");

    /* Names: 127 bytes fit the array, 128 do not. */
    memset(name, 'n', 127);
    name[127] = '\0';
    snprintf(body, sizeof body,
             "--b\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n\r\n--b--", name);
    assert_int_equal(parse("b", body), 0);
    assert_string_equal(mp.parts[0].name, name);
    snprintf(body, sizeof body,
             "--b\r\nContent-Disposition: form-data; name=\"%sn\"\r\n\r\n\r\n--b--", name);
    assert_fails("b", body, CMN_ETOOBIG, "part name too long");
    memset(name, 'f', 199);
    name[199] = '\0';
    snprintf(body, sizeof body,
             "--b\r\nContent-Disposition: form-data; name=a; filename=\"%s%s\"\r\n\r\n\r\n--b--",
             name, name);
    assert_fails("b", body, CMN_ETOOBIG, "part filename too long");
    snprintf(body, sizeof body, "--b\r\nContent-Type: %s%s\r\n\r\n\r\n--b--", name, name);
    assert_fails("b", body, CMN_ETOOBIG, "part Content-Type too long");
}

static void test_arguments(void **state)
{
    (void)state;
    assert_int_equal(lpr_multipart_parse("b", "x", 1, NULL), CMN_EINVAL);
    assert_int_equal(lpr_multipart_parse(NULL, "x", 1, &mp), CMN_EINVAL);
    assert_string_equal(mp.error, "no multipart body");
    assert_int_equal(lpr_multipart_parse("b", NULL, 1, &mp), CMN_EINVAL);
    assert_int_equal(lpr_multipart_parse("", "--\r\n\r\n\r\n----", 12, &mp), CMN_EINVAL);
    assert_string_equal(mp.error, "invalid multipart boundary");
    assert_int_equal(lpr_multipart_parse("a\"b", "x", 1, &mp), CMN_EINVAL);
    assert_int_equal(lpr_multipart_parse("b", NULL, 0, &mp), CMN_EPARSE);
    assert_null(lpr_multipart_find(NULL, "x"));
    assert_null(lpr_multipart_find(&mp, NULL));
}

/* The body of a sample request (after the blank line) and its boundary. */
static char *sample_body(const char *file, size_t *len, char *boundary, size_t bsz)
{
    char path[1024];
    FILE *f;
    char *buf = malloc(1 << 20), *p, *ct;
    size_t n;

    snprintf(path, sizeof path, "%s/tests/samples/lpr/%s", getenv("PARK_SOURCE_DIR"), file);
    f = fopen(path, "rb");
    assert_non_null(f);
    n = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strstr(buf, "\r\n\r\n");
    assert_non_null(p);
    ct = strstr(buf, "Content-Type: ");
    assert_non_null(ct);
    assert_true(lpr_multipart_boundary(ct + 14, strcspn(ct + 14, "\r"), boundary, bsz) > 0);
    *len = n - (size_t)(p + 4 - buf);
    memmove(buf, p + 4, *len);
    return buf;
}

static void test_samples(void **state)
{
    char b[LPR_MULTIPART_BOUNDARY_MAX + 1];
    size_t len;
    char *body;

    (void)state;
    body = sample_body("10_hikvision_multipart_unreadable_plate.http", &len, b, sizeof b);
    assert_string_equal(b, "----HikBoundary7d3a");
    assert_int_equal(lpr_multipart_parse(b, body, len, &mp), 0);
    assert_int_equal(mp.nparts, 2);
    assert_string_equal(mp.parts[0].name, "anpr.xml");
    assert_string_equal(mp.parts[0].filename, "anpr.xml");
    assert_string_equal(mp.parts[0].content_type, "text/xml");
    assert_int_equal(mp.parts[0].body_len, 938);
    assert_memory_equal(mp.parts[0].body, "<?xml", 5);
    assert_memory_equal(mp.parts[0].body + 938 - 25, "</EventNotificationAlert>", 25);
    assert_string_equal(mp.parts[1].name, "detectionPicture.jpg");
    assert_string_equal(mp.parts[1].content_type, "image/jpeg");
    free(body);

    body = sample_body("29_platerecognizer_multipart_with_image.http", &len, b, sizeof b);
    assert_string_equal(b, "PR-b0undary:7f3e");
    assert_int_equal(lpr_multipart_parse(b, body, len, &mp), 0);
    assert_int_equal(mp.nparts, 2);
    assert_string_equal(mp.parts[0].name, "json");
    assert_int_equal(mp.parts[0].body[0], '{');
    assert_int_equal(mp.parts[0].body[mp.parts[0].body_len - 1], '}');
    assert_string_equal(mp.parts[1].name, "upload");
    assert_string_equal(mp.parts[1].filename, "09-43-01.250000.jpg");
    /* The JPEG holds CR, LF, NUL and boundary look-alikes (tests/samples/lpr/README.md). */
    assert_int_equal(mp.parts[1].body_len, 347);
    assert_memory_equal(mp.parts[1].body, "\xff\xd8\xff\xe0", 4);
    assert_memory_equal(mp.parts[1].body + 345, "\xff\xd9", 2);
    free(body);

    body = sample_body("31_hikvision_multipart_pictures_hikvision_ns.http", &len, b, sizeof b);
    assert_int_equal(lpr_multipart_parse(b, body, len, &mp), 0);
    assert_int_equal(mp.nparts, 3);
    assert_string_equal(mp.parts[0].content_type, "text/xml; charset=utf-8");
    assert_string_equal(mp.parts[2].filename, "detectionPicture.jpg");
    assert_int_equal(mp.parts[2].body_len, 353);
    free(body);

    body = sample_body("32_hikvision_multipart_bare_lf.http", &len, b, sizeof b);
    assert_int_equal(lpr_multipart_parse(b, body, len, &mp), 0);
    assert_int_equal(mp.nparts, 2);
    assert_string_equal(mp.parts[0].name, "event");
    /* The XML's own final LF is content; the delimiter's LF is the next one. */
    assert_memory_equal(mp.parts[0].body + mp.parts[0].body_len - 2, ">\n", 2);
    assert_int_equal(mp.parts[1].body_len, 325);
    free(body);

    body = sample_body("38_platerecognizer_multipart_truncated.http", &len, b, sizeof b);
    assert_int_equal(lpr_multipart_parse(b, body, len, &mp), CMN_AGAIN);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_boundary),
        cmocka_unit_test(test_param),
        cmocka_unit_test(test_two_parts_crlf),
        cmocka_unit_test(test_preamble_epilogue_padding),
        cmocka_unit_test(test_bare_lf_and_mixed),
        cmocka_unit_test(test_body_edges),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_samples),
    };

    return cmocka_run_group_tests(tests, group_setup, NULL);
}
