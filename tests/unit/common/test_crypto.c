/*
 * HMAC-SHA256 with a key given each time and with a key made ready once: RFC 4231's vectors, and
 * the two ways agree on lane signatures, used once and many times.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "cmn/crypto.h"

static void hex_of(const unsigned char mac[32], char out[65])
{
    cmn_hex(mac, 32, out);
}

/* RFC 4231, test cases 2 and 6 (a key longer than the block, hashed first). */
static void test_rfc4231(void **state)
{
    (void)state;
    unsigned char key6[131];
    memset(key6, 0xaa, sizeof key6);
    struct {
        const void *key;
        size_t keylen;
        const char *data;
        const char *want;
    } cases[] = {
        {"Jefe", 4, "what do ya want for nothing?",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {key6, sizeof key6, "Test Using Larger Than Block-Size Key - Hash Key First",
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char mac[32];
        char hex[65];
        /* The data in two parts: the MAC is over their concatenation. */
        size_t half = strlen(cases[i].data) / 2;
        const void *parts[] = {cases[i].data, cases[i].data + half};
        const size_t lens[] = {half, strlen(cases[i].data) - half};
        assert_int_equal(cmn_hmac_sha256(cases[i].key, cases[i].keylen, parts, lens, 2, mac), 0);
        hex_of(mac, hex);
        assert_string_equal(hex, cases[i].want);
        cmn_hmac_key_t *k = cmn_hmac_key_new(cases[i].key, cases[i].keylen);
        assert_non_null(k);
        for (int round = 0; round < 3; round++) { /* the ready state is copied, never used up */
            memset(mac, 0, sizeof mac);
            assert_int_equal(cmn_hmac_sha256_ready(k, parts, lens, 2, mac), 0);
            hex_of(mac, hex);
            assert_string_equal(hex, cases[i].want);
        }
        cmn_hmac_key_free(k);
    }
}

static void test_lane_sign_ready_agrees(void **state)
{
    (void)state;
    static const char key[] = "lane-device-key-0123456789";
    static const char *const bodies[] = {"", "{\"event_id\":\"e1\"}", "x"};
    cmn_hmac_key_t *k = cmn_hmac_key_new(key, strlen(key));
    assert_non_null(k);
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        char a[65], b[65];
        assert_int_equal(cmn_lane_sign(key, strlen(key), "1790000000", "POST", "/v1/events", 10,
                                       "cam-1", bodies[i], strlen(bodies[i]), a),
                         0);
        assert_int_equal(cmn_lane_sign_ready(k, "1790000000", "POST", "/v1/events", 10, "cam-1",
                                             bodies[i], strlen(bodies[i]), b),
                         0);
        assert_string_equal(a, b);
        /* Another device's key signs differently. */
        assert_int_equal(cmn_lane_sign("another-key-0123456789", 22, "1790000000", "POST",
                                       "/v1/events", 10, "cam-1", bodies[i], strlen(bodies[i]), b),
                         0);
        assert_string_not_equal(a, b);
    }
    cmn_hmac_key_free(k);
    cmn_hmac_key_free(NULL);
}

static void test_sha256(void **state)
{
    (void)state;
    unsigned char md[32];
    char hex[65];
    cmn_sha256("abc", 3, md);
    hex_of(md, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    cmn_sha256("", 0, md);
    hex_of(md, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4231),
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_lane_sign_ready_agrees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
