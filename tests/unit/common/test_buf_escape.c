/*
 * cmn_buf_json_escape (common/src/buf.c): every byte value alone and in random strings against a
 * byte-at-a-time reference of the escape rules (\" \\ \n short, other control bytes and DEL as
 * \u00xx, everything else as it is), and all-or-nothing when the buffer's limit is reached.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn/buf.h"

static size_t reference(const unsigned char *s, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            out[k++] = '\\';
            out[k++] = (char)c;
        } else if (c == '\n') {
            out[k++] = '\\';
            out[k++] = 'n';
        } else if (c < 0x20 || c == 0x7f) {
            k += (size_t)snprintf(out + k, 7, "\\u%04x", c);
        } else {
            out[k++] = (char)c;
        }
    }
    out[k] = '\0';
    return k;
}

static void check(const unsigned char *s, size_t n)
{
    char want[6 * 300 + 1];
    size_t wn = reference(s, n, want);
    cmn_buf_t b;
    cmn_buf_init(&b, 1 << 20);
    assert_int_equal(cmn_buf_puts(&b, "pre:"), 0);
    assert_int_equal(cmn_buf_json_escape(&b, (const char *)s, n), 0);
    assert_int_equal(b.len, 4 + wn);
    assert_memory_equal(b.base + 4, want, wn);
    cmn_buf_dispose(&b);
}

static void test_every_byte(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        unsigned char s[3] = {'a', (unsigned char)c, 'z'};
        check(s, 3);
        check(s + 1, 1);
    }
    check((const unsigned char *)"", 0);
}

static void test_random_strings(void **state)
{
    (void)state;
    unsigned seed = 7;
    for (int k = 0; k < 5000; k++) {
        unsigned char s[300];
        size_t n = (size_t)(rand_r(&seed) % 300);
        for (size_t i = 0; i < n; i++) {
            int r = rand_r(&seed) % 10;
            s[i] = r == 0 ? (unsigned char)(rand_r(&seed) % 256) : r == 1 ? '"' : 'a' + r;
        }
        check(s, n);
    }
}

static void test_limit_is_all_or_nothing(void **state)
{
    (void)state;
    cmn_buf_t b;
    cmn_buf_init(&b, 10);
    assert_int_equal(cmn_buf_puts(&b, "abc"), 0);
    assert_int_not_equal(cmn_buf_json_escape(&b, "plain \"and\" more", 16), 0);
    assert_int_equal(b.len, 3);
    assert_string_equal(b.base, "abc");
    assert_int_equal(cmn_buf_json_escape(&b, "x\"y", 3), 0);
    assert_string_equal(b.base, "abcx\\\"y");
    cmn_buf_dispose(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_byte),
        cmocka_unit_test(test_random_strings),
        cmocka_unit_test(test_limit_is_all_or_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
