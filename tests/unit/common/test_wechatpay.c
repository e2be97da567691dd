/*
 * Unit tests of cmn/wechatpay.h.  Every expectation is checked against OpenSSL used directly, not
 * against the code under test: signatures made here with EVP_DigestSign must verify, the
 * Authorization header's signature must pass EVP_DigestVerify over the documented message,
 * ciphertexts made here with EVP_aes_256_gcm (and one made by the Node library
 * wechatpay-axios-plugin) must decrypt.  Throwaway keys are generated in the group setup.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include "cmn/buf.h"
#include "cmn/err.h"
#include "cmn/mem.h"
#include "cmn/wechatpay.h"

#define MCHID "1900000109"
#define SERIAL "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
#define NONCE "593BEC0C930BF1AFEB40B4A08C8FB242"
#define TS 1700000000
#define TS_STR "1700000000"
#define PATH "/v3/vehicle/parking/parkings"
#define BODY "{\"out_parking_no\":\"E1\",\"plate_number\":\"粤B88888\"}"
#define SCHEMA "WECHATPAY2-SHA256-RSA2048 "

struct keys {
    EVP_PKEY *rsa;   /* the merchant's (or the platform's) key */
    EVP_PKEY *other; /* an unrelated RSA-2048 key */
    EVP_PKEY *small; /* RSA-1024: too short for the scheme */
    EVP_PKEY *ec;    /* not RSA at all */
    unsigned char apiv3[32];
};

static struct keys K;

/* ---- helpers: OpenSSL used directly ---- */

static int group_setup(void **state)
{
    (void)state;
    K.rsa = EVP_RSA_gen(2048);
    K.other = EVP_RSA_gen(2048);
    K.small = EVP_RSA_gen(1024);
    K.ec = EVP_EC_gen("P-256");
    if (RAND_bytes(K.apiv3, sizeof K.apiv3) != 1)
        return -1;
    return K.rsa && K.other && K.small && K.ec ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(K.rsa);
    EVP_PKEY_free(K.other);
    EVP_PKEY_free(K.small);
    EVP_PKEY_free(K.ec);
    return 0;
}

/* SHA256withRSA over msg with OpenSSL's defaults (PKCS#1 v1.5 for an RSA key), in base64. */
static void raw_sign_b64(EVP_PKEY *key, const void *msg, size_t len, char *out, size_t outsz)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char sig[1024];
    size_t siglen = sizeof sig;

    assert_non_null(md);
    assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key), 1);
    assert_int_equal(EVP_DigestSign(md, sig, &siglen, msg, len), 1);
    assert_true((siglen + 2) / 3 * 4 + 1 <= outsz);
    EVP_EncodeBlock((unsigned char *)out, sig, (int)siglen);
    EVP_MD_CTX_free(md);
}

static int raw_verify_b64(EVP_PKEY *key, const void *msg, size_t len, const char *sig_b64)
{
    unsigned char sig[1024];
    size_t b64len = strlen(sig_b64), pad = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int n, ok;

    assert_non_null(md);
    assert_true(b64len % 4 == 0 && b64len / 4 * 3 <= sizeof sig);
    n = EVP_DecodeBlock(sig, (const unsigned char *)sig_b64, (int)b64len);
    assert_true(n >= 0);
    if (b64len > 0 && sig_b64[b64len - 1] == '=')
        pad = sig_b64[b64len - 2] == '=' ? 2 : 1;
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key), 1);
    ok = EVP_DigestVerify(md, sig, (size_t)n - pad, msg, len) == 1;
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return ok;
}

/* AES-256-GCM with a 12-byte IV, ciphertext || tag in base64 (what WeChat sends). */
static void gcm_encrypt_b64(const unsigned char key[32], const char *nonce, const char *aad,
                            const void *pt, size_t ptlen, char *out, size_t outsz)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    unsigned char ct[512];
    int len = 0, fin = 0;

    assert_non_null(ctx);
    assert_true(ptlen + 16 <= sizeof ct);
    assert_int_equal(EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, (int)strlen(nonce), NULL), 1);
    assert_int_equal(EVP_EncryptInit_ex(ctx, NULL, NULL, key, (const unsigned char *)nonce), 1);
    if (aad != NULL && aad[0] != '\0')
        assert_int_equal(
            EVP_EncryptUpdate(ctx, NULL, &len, (const unsigned char *)aad, (int)strlen(aad)), 1);
    len = 0;
    if (ptlen > 0)
        assert_int_equal(EVP_EncryptUpdate(ctx, ct, &len, pt, (int)ptlen), 1);
    assert_int_equal(EVP_EncryptFinal_ex(ctx, ct + len, &fin), 1);
    assert_int_equal((size_t)(len + fin), ptlen);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, ct + ptlen), 1);
    assert_true((ptlen + 16 + 2) / 3 * 4 + 1 <= outsz);
    EVP_EncodeBlock((unsigned char *)out, ct, (int)(ptlen + 16));
    EVP_CIPHER_CTX_free(ctx);
}

/* PEM text of a key or certificate, NUL-terminated, freed with cmn_free. */
enum pem_kind { PEM_PKCS8, PEM_PKCS1, PEM_SPKI, PEM_PKCS1_PUBLIC, PEM_ENCRYPTED };

static char *pem_of(EVP_PKEY *key, enum pem_kind kind)
{
    BIO *b = BIO_new(BIO_s_mem());
    OSSL_ENCODER_CTX *enc = NULL;
    char *data = NULL, *copy;
    long n;
    int ok = 0;

    assert_non_null(b);
    switch (kind) {
    case PEM_PKCS8:
        ok = PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL);
        break;
    case PEM_PKCS1:
        ok = PEM_write_bio_PrivateKey_traditional(b, key, NULL, NULL, 0, NULL, NULL);
        break;
    case PEM_SPKI:
        ok = PEM_write_bio_PUBKEY(b, key);
        break;
    case PEM_PKCS1_PUBLIC:
        enc = OSSL_ENCODER_CTX_new_for_pkey(key, EVP_PKEY_PUBLIC_KEY, "PEM", "type-specific", NULL);
        ok = enc != NULL && OSSL_ENCODER_to_bio(enc, b);
        OSSL_ENCODER_CTX_free(enc);
        break;
    case PEM_ENCRYPTED:
        ok = PEM_write_bio_PKCS8PrivateKey(b, key, EVP_aes_256_cbc(), "secret", 6, NULL, NULL);
        break;
    }
    assert_true(ok);
    n = BIO_get_mem_data(b, &data);
    copy = cmn_xstrndup(data, (size_t)n);
    BIO_free(b);
    return copy;
}

/* A self-signed certificate for key, in PEM (what a platform certificate file holds). */
static char *cert_pem_of(EVP_PKEY *key)
{
    X509 *x = X509_new();
    X509_NAME *name;
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL, *copy;
    long n;

    assert_non_null(x);
    assert_non_null(b);
    assert_int_equal(X509_set_version(x, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 0x5157), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    name = X509_get_subject_name(x);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                (const unsigned char *)"Tenpay.com Root CA", -1, -1,
                                                0),
                     1);
    assert_int_equal(X509_set_issuer_name(x, name), 1);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    assert_int_equal(PEM_write_bio_X509(b, x), 1);
    n = BIO_get_mem_data(b, &data);
    copy = cmn_xstrndup(data, (size_t)n);
    BIO_free(b);
    X509_free(x);
    return copy;
}

/*
 * Parses an Authorization value back into its five pairs, insisting on the exact documented
 * layout: the scheme, one space, then mchid, nonce_str, signature, timestamp, serial_no in that
 * order, each as key="value", separated by single commas.
 */
struct auth {
    char mchid[80], nonce_str[80], signature[800], timestamp[32], serial_no[80];
};

static int parse_auth(const char *s, struct auth *a)
{
    static const char *const names[] = {"mchid", "nonce_str", "signature", "timestamp",
                                        "serial_no"};
    char *const fields[] = {a->mchid, a->nonce_str, a->signature, a->timestamp, a->serial_no};
    const size_t sizes[] = {sizeof a->mchid, sizeof a->nonce_str, sizeof a->signature,
                            sizeof a->timestamp, sizeof a->serial_no};

    if (strncmp(s, SCHEMA, strlen(SCHEMA)) != 0)
        return -1;
    s += strlen(SCHEMA);
    for (size_t i = 0; i < 5; i++) {
        size_t nlen = strlen(names[i]);
        const char *end;
        if (i > 0 && *s++ != ',')
            return -1;
        if (strncmp(s, names[i], nlen) != 0 || s[nlen] != '=' || s[nlen + 1] != '"')
            return -1;
        s += nlen + 2;
        end = strchr(s, '"');
        if (end == NULL || (size_t)(end - s) >= sizes[i])
            return -1;
        memcpy(fields[i], s, (size_t)(end - s));
        fields[i][end - s] = '\0';
        s = end + 1;
    }
    return *s == '\0' ? 0 : -1;
}

static void request_message(char *out, size_t outsz, const char *method, const char *path,
                            const char *ts, const char *nonce, const char *body)
{
    int n = snprintf(out, outsz, "%s\n%s\n%s\n%s\n%s\n", method, path, ts, nonce, body);
    assert_true(n > 0 && (size_t)n < outsz);
}

/* ---- Authorization ---- */

static void test_authorization_exact_format(void **state)
{
    cmn_buf_t out;
    struct auth a;
    char expect[1200], msg[512];

    (void)state;
    cmn_buf_init(&out, 4096);
    assert_int_equal(cmn_wxpay_authorization(K.rsa, MCHID, SERIAL, "POST", PATH, BODY, strlen(BODY),
                                             TS, NONCE, &out),
                     0);
    assert_int_equal(parse_auth(out.base, &a), 0);
    assert_string_equal(a.mchid, MCHID);
    assert_string_equal(a.nonce_str, NONCE);
    assert_string_equal(a.timestamp, TS_STR);
    assert_string_equal(a.serial_no, SERIAL);
    /* RSA-2048: 256 bytes of signature, 344 characters of base64 with one '='. */
    assert_int_equal(strlen(a.signature), 344);
    assert_int_equal(a.signature[343], '=');
    snprintf(expect, sizeof expect,
             "WECHATPAY2-SHA256-RSA2048 mchid=\"" MCHID "\",nonce_str=\"" NONCE
             "\",signature=\"%s\",timestamp=\"" TS_STR "\",serial_no=\"" SERIAL "\"",
             a.signature);
    assert_string_equal(out.base, expect);
    assert_int_equal(out.len, strlen(expect));

    /* The signature is SHA256withRSA over the documented five lines, checked by OpenSSL alone. */
    request_message(msg, sizeof msg, "POST", PATH, TS_STR, NONCE, BODY);
    assert_true(raw_verify_b64(K.rsa, msg, strlen(msg), a.signature));
    assert_false(raw_verify_b64(K.other, msg, strlen(msg), a.signature));
    cmn_buf_dispose(&out);
}

static void test_authorization_get_with_query(void **state)
{
    const char *path = "/v3/vehicle/transactions/out-trade-no/T20240501-0001?sub_mchid=1900000110";
    cmn_buf_t out;
    struct auth a;
    char msg[512];

    (void)state;
    cmn_buf_init(&out, 4096);
    assert_int_equal(
        cmn_wxpay_authorization(K.rsa, MCHID, SERIAL, "GET", path, NULL, 0, TS, NONCE, &out), 0);
    assert_int_equal(parse_auth(out.base, &a), 0);
    /* GET: the body line is empty, and the message still ends with its own newline. */
    request_message(msg, sizeof msg, "GET", path, TS_STR, NONCE, "");
    assert_true(raw_verify_b64(K.rsa, msg, strlen(msg), a.signature));
    /* Without the query the URL is a different one. */
    request_message(msg, sizeof msg, "GET", "/v3/vehicle/transactions/out-trade-no/T20240501-0001",
                    TS_STR, NONCE, "");
    assert_false(raw_verify_b64(K.rsa, msg, strlen(msg), a.signature));
    cmn_buf_dispose(&out);
}

static void test_authorization_tampering_breaks_signature(void **state)
{
    cmn_buf_t out, again;
    struct auth a;
    char msg[512];

    (void)state;
    cmn_buf_init(&out, 4096);
    cmn_buf_init(&again, 4096);
    assert_int_equal(cmn_wxpay_authorization(K.rsa, MCHID, SERIAL, "POST", PATH, BODY, strlen(BODY),
                                             TS, NONCE, &out),
                     0);
    /* PKCS#1 v1.5 is deterministic: the same request signs to the same header. */
    assert_int_equal(cmn_wxpay_authorization(K.rsa, MCHID, SERIAL, "POST", PATH, BODY, strlen(BODY),
                                             TS, NONCE, &again),
                     0);
    assert_string_equal(out.base, again.base);
    assert_int_equal(parse_auth(out.base, &a), 0);

    request_message(msg, sizeof msg, "POST", PATH, TS_STR, NONCE,
                    "{\"out_parking_no\":\"E2\",\"plate_number\":\"粤B88888\"}");
    assert_false(raw_verify_b64(K.rsa, msg, strlen(msg), a.signature));
    request_message(msg, sizeof msg, "POST", PATH, "1700000001", NONCE, BODY);
    assert_false(raw_verify_b64(K.rsa, msg, strlen(msg), a.signature));
    request_message(msg, sizeof msg, "POST", PATH, TS_STR, "593BEC0C930BF1AFEB40B4A08C8FB243",
                    BODY);
    assert_false(raw_verify_b64(K.rsa, msg, strlen(msg), a.signature));
    request_message(msg, sizeof msg, "PUT", PATH, TS_STR, NONCE, BODY);
    assert_false(raw_verify_b64(K.rsa, msg, strlen(msg), a.signature));
    request_message(msg, sizeof msg, "POST", "/v3/vehicle/transactions/parking", TS_STR, NONCE,
                    BODY);
    assert_false(raw_verify_b64(K.rsa, msg, strlen(msg), a.signature));
    /* The trailing newline after the body is part of the message. */
    request_message(msg, sizeof msg, "POST", PATH, TS_STR, NONCE, BODY);
    assert_false(raw_verify_b64(K.rsa, msg, strlen(msg) - 1, a.signature));
    cmn_buf_dispose(&out);
    cmn_buf_dispose(&again);
}

static void test_authorization_appends_or_leaves_out_alone(void **state)
{
    cmn_buf_t out, tiny;
    struct auth a;

    (void)state;
    cmn_buf_init(&out, 4096);
    assert_int_equal(cmn_buf_puts(&out, "Authorization: "), 0);
    assert_int_equal(cmn_wxpay_authorization(K.rsa, MCHID, SERIAL, "POST", PATH, BODY, strlen(BODY),
                                             TS, NONCE, &out),
                     0);
    assert_memory_equal(out.base, "Authorization: ", 15);
    assert_int_equal(parse_auth(out.base + 15, &a), 0);

    cmn_buf_init(&tiny, 100);
    assert_int_equal(cmn_buf_puts(&tiny, "keep"), 0);
    assert_int_equal(cmn_wxpay_authorization(K.rsa, MCHID, SERIAL, "POST", PATH, BODY, strlen(BODY),
                                             TS, NONCE, &tiny),
                     CMN_ETOOBIG);
    assert_int_equal(tiny.len, 4);
    assert_string_equal(tiny.base, "keep");
    cmn_buf_dispose(&tiny);
    cmn_buf_dispose(&out);
}

static void test_authorization_rejects_bad_arguments(void **state)
{
    cmn_buf_t out;
    EVP_PKEY *pub = NULL;
    char *spki = pem_of(K.rsa, PEM_SPKI);
    char long_token[80];

    (void)state;
    memset(long_token, 'A', 65);
    long_token[65] = '\0';
    cmn_buf_init(&out, 4096);
#define AUTH(key, mchid, serial, method, path, body, len, ts, nonce)                               \
    cmn_wxpay_authorization(key, mchid, serial, method, path, body, len, ts, nonce, &out)
    assert_int_equal(AUTH(K.rsa, "19\"00", SERIAL, "POST", PATH, "", 0, TS, NONCE), CMN_EINVAL);
    assert_int_equal(AUTH(K.rsa, "", SERIAL, "POST", PATH, "", 0, TS, NONCE), CMN_EINVAL);
    assert_int_equal(AUTH(K.rsa, MCHID, "a,b", "POST", PATH, "", 0, TS, NONCE), CMN_EINVAL);
    assert_int_equal(AUTH(K.rsa, MCHID, long_token, "POST", PATH, "", 0, TS, NONCE), CMN_EINVAL);
    assert_int_equal(AUTH(K.rsa, MCHID, SERIAL, "POST", PATH, "", 0, TS, "a b"), CMN_EINVAL);
    assert_int_equal(AUTH(K.rsa, MCHID, SERIAL, "POST", PATH, "", 0, TS, "a\nb"), CMN_EINVAL);
    assert_int_equal(AUTH(K.rsa, MCHID, SERIAL, "POST", PATH, "", 0, TS, NULL), CMN_EINVAL);
    assert_int_equal(AUTH(K.rsa, MCHID, SERIAL, "post", PATH, "", 0, TS, NONCE), CMN_EINVAL);
    assert_int_equal(AUTH(K.rsa, MCHID, SERIAL, "POST", "v3/x", "", 0, TS, NONCE), CMN_EINVAL);
    assert_int_equal(AUTH(K.rsa, MCHID, SERIAL, "POST", "/v3/x\n", "", 0, TS, NONCE), CMN_EINVAL);
    assert_int_equal(AUTH(K.rsa, MCHID, SERIAL, "POST", "/v3/a b", "", 0, TS, NONCE), CMN_EINVAL);
    assert_int_equal(AUTH(K.rsa, MCHID, SERIAL, "POST", PATH, NULL, 3, TS, NONCE), CMN_EINVAL);
    assert_int_equal(AUTH(K.rsa, MCHID, SERIAL, "POST", PATH, "", 0, -1, NONCE), CMN_EINVAL);
    /* Keys that cannot make this signature: none, public only, too short, not RSA. */
    assert_int_equal(cmn_pem_public_key(spki, strlen(spki), &pub), 0);
    assert_int_equal(AUTH(NULL, MCHID, SERIAL, "POST", PATH, "", 0, TS, NONCE), CMN_ECRYPTO);
    assert_int_equal(AUTH(pub, MCHID, SERIAL, "POST", PATH, "", 0, TS, NONCE), CMN_ECRYPTO);
    assert_int_equal(AUTH(K.small, MCHID, SERIAL, "POST", PATH, "", 0, TS, NONCE), CMN_ECRYPTO);
    assert_int_equal(AUTH(K.ec, MCHID, SERIAL, "POST", PATH, "", 0, TS, NONCE), CMN_ECRYPTO);
#undef AUTH
    assert_int_equal(out.len, 0);
    EVP_PKEY_free(pub);
    cmn_free(spki);
    cmn_buf_dispose(&out);
}

/* ---- verification ---- */

static void test_verify_round_trip(void **state)
{
    const char *body = "{\"id\":\"PK1\",\"state\":\"NORMAL\"}";
    char msg[512], sig[400];

    (void)state;
    snprintf(msg, sizeof msg, "%s\n%s\n%s\n", TS_STR, NONCE, body);
    raw_sign_b64(K.rsa, msg, strlen(msg), sig, sizeof sig);
    assert_int_equal(cmn_wxpay_verify(K.rsa, TS_STR, NONCE, body, strlen(body), sig), 0);

    /* An empty body (a 204, a GET's answer without content) still contributes its newline. */
    snprintf(msg, sizeof msg, "%s\n%s\n\n", TS_STR, NONCE);
    raw_sign_b64(K.rsa, msg, strlen(msg), sig, sizeof sig);
    assert_int_equal(cmn_wxpay_verify(K.rsa, TS_STR, NONCE, NULL, 0, sig), 0);
    assert_int_equal(cmn_wxpay_verify(K.rsa, TS_STR, NONCE, "", 0, sig), 0);
}

static void test_verify_rejects_tampering(void **state)
{
    const char *body = "{\"id\":\"PK1\",\"state\":\"NORMAL\"}";
    char msg[512], sig[400], flipped[400];
    size_t blen = strlen(body);

    (void)state;
    snprintf(msg, sizeof msg, "%s\n%s\n%s\n", TS_STR, NONCE, body);
    raw_sign_b64(K.rsa, msg, strlen(msg), sig, sizeof sig);
    assert_int_equal(cmn_wxpay_verify(K.rsa, TS_STR, NONCE, body, blen, sig), 0);

    assert_int_equal(cmn_wxpay_verify(K.rsa, TS_STR, NONCE,
                                      "{\"id\":\"PK1\",\"state\":\"BLOCKED\"}", blen + 1, sig),
                     CMN_ECRYPTO);
    assert_int_equal(cmn_wxpay_verify(K.rsa, TS_STR, NONCE, body, blen - 1, sig), CMN_ECRYPTO);
    assert_int_equal(cmn_wxpay_verify(K.rsa, "1700000001", NONCE, body, blen, sig), CMN_ECRYPTO);
    assert_int_equal(
        cmn_wxpay_verify(K.rsa, TS_STR, "593BEC0C930BF1AFEB40B4A08C8FB243", body, blen, sig),
        CMN_ECRYPTO);
    /* The fields must not slide: "ts\nnonce" is not "ts" + "\n" + "nonce" moved around. */
    assert_int_equal(cmn_wxpay_verify(K.rsa, TS_STR, NONCE "\n{", body + 1, blen - 1, sig),
                     CMN_ECRYPTO);
    assert_int_equal(cmn_wxpay_verify(K.other, TS_STR, NONCE, body, blen, sig), CMN_ECRYPTO);
    assert_int_equal(cmn_wxpay_verify(K.small, TS_STR, NONCE, body, blen, sig), CMN_ECRYPTO);
    assert_int_equal(cmn_wxpay_verify(K.ec, TS_STR, NONCE, body, blen, sig), CMN_ECRYPTO);
    assert_int_equal(cmn_wxpay_verify(NULL, TS_STR, NONCE, body, blen, sig), CMN_ECRYPTO);

    /* One changed base64 character: still well-formed, no longer the signature. */
    memcpy(flipped, sig, strlen(sig) + 1);
    flipped[10] = flipped[10] == 'A' ? 'B' : 'A';
    assert_int_equal(cmn_wxpay_verify(K.rsa, TS_STR, NONCE, body, blen, flipped), CMN_ECRYPTO);
}

static void test_verify_rejects_malformed_input(void **state)
{
    const char *body = "{}";
    char msg[128], sig[400], bad[420];
    size_t n;

    (void)state;
    snprintf(msg, sizeof msg, "%s\n%s\n%s\n", TS_STR, NONCE, body);
    raw_sign_b64(K.rsa, msg, strlen(msg), sig, sizeof sig);
    n = strlen(sig);
    assert_int_equal(cmn_wxpay_verify(K.rsa, TS_STR, NONCE, body, 2, sig), 0);

    /* Base64 that EVP_DecodeBlock alone would accept or mis-measure. */
    snprintf(bad, sizeof bad, " %s", sig);
    assert_int_equal(cmn_wxpay_verify(K.rsa, TS_STR, NONCE, body, 2, bad), CMN_ECRYPTO);
    snprintf(bad, sizeof bad, "%s\n", sig);
    assert_int_equal(cmn_wxpay_verify(K.rsa, TS_STR, NONCE, body, 2, bad), CMN_ECRYPTO);
    memcpy(bad, sig, n - 1); /* padding removed */
    bad[n - 1] = '\0';
    assert_int_equal(cmn_wxpay_verify(K.rsa, TS_STR, NONCE, body, 2, bad), CMN_ECRYPTO);
    memcpy(bad, sig, n + 1);
    bad[20] = '*';
    assert_int_equal(cmn_wxpay_verify(K.rsa, TS_STR, NONCE, body, 2, bad), CMN_ECRYPTO);
    memcpy(bad, sig, n + 1);
    bad[20] = '=';
    assert_int_equal(cmn_wxpay_verify(K.rsa, TS_STR, NONCE, body, 2, bad), CMN_ECRYPTO);
    memcpy(bad, sig, n + 1);
    bad[50] = '\n';
    assert_int_equal(cmn_wxpay_verify(K.rsa, TS_STR, NONCE, body, 2, bad), CMN_ECRYPTO);
    assert_int_equal(cmn_wxpay_verify(K.rsa, TS_STR, NONCE, body, 2, ""), CMN_ECRYPTO);
    assert_int_equal(cmn_wxpay_verify(K.rsa, TS_STR, NONCE, body, 2, "===="), CMN_ECRYPTO);
    assert_int_equal(cmn_wxpay_verify(K.rsa, TS_STR, NONCE, body, 2, "AAAA"), CMN_ECRYPTO);
    assert_int_equal(cmn_wxpay_verify(K.rsa, TS_STR, NONCE, body, 2, NULL), CMN_ECRYPTO);
    /* Cut to 340 characters, it decodes to 255 bytes: no RSA-2048 signature has that length. */
    snprintf(bad, sizeof bad, "%.340s", sig);
    assert_int_equal(cmn_wxpay_verify(K.rsa, TS_STR, NONCE, body, 2, bad), CMN_ECRYPTO);

    /* Header values that WeChat never sends. */
    assert_int_equal(cmn_wxpay_verify(K.rsa, "17000000OO", NONCE, body, 2, sig), CMN_ECRYPTO);
    assert_int_equal(cmn_wxpay_verify(K.rsa, "", NONCE, body, 2, sig), CMN_ECRYPTO);
    assert_int_equal(cmn_wxpay_verify(K.rsa, NULL, NONCE, body, 2, sig), CMN_ECRYPTO);
    assert_int_equal(cmn_wxpay_verify(K.rsa, TS_STR, "", body, 2, sig), CMN_ECRYPTO);
    assert_int_equal(cmn_wxpay_verify(K.rsa, TS_STR, NONCE, NULL, 2, sig), CMN_ECRYPTO);
}

static void test_verify_accepts_authorization_signature_as_peer_would(void **state)
{
    /* What a server does with our request: rebuild the five lines and check the signature with
     * the merchant's public key, taken here from a certificate as a real platform would. */
    char *cert = cert_pem_of(K.rsa);
    EVP_PKEY *pub = NULL, *priv = NULL;
    char *pkcs8 = pem_of(K.rsa, PEM_PKCS8);
    cmn_buf_t out;
    struct auth a;
    char msg[512];

    (void)state;
    cmn_buf_init(&out, 4096);
    assert_int_equal(cmn_pem_private_key(pkcs8, strlen(pkcs8), &priv), 0);
    assert_int_equal(cmn_pem_public_key(cert, strlen(cert), &pub), 0);
    assert_int_equal(cmn_wxpay_authorization(priv, MCHID, SERIAL, "POST", PATH, BODY, strlen(BODY),
                                             TS, NONCE, &out),
                     0);
    assert_int_equal(parse_auth(out.base, &a), 0);
    request_message(msg, sizeof msg, "POST", PATH, TS_STR, NONCE, BODY);
    assert_true(raw_verify_b64(pub, msg, strlen(msg), a.signature));
    EVP_PKEY_free(pub);
    EVP_PKEY_free(priv);
    cmn_free(cert);
    cmn_free(pkcs8);
    cmn_buf_dispose(&out);
}

/* ---- decryption ---- */

static void test_decrypt_vector_from_node_library(void **state)
{
    /* Made with wechatpay-axios-plugin 0.9.6, an implementation nobody here wrote:
     *   Aes.AesGcm.encrypt(plaintext, "0123456789abcdefghijABCDEFGHIJ_-", "n0nce12chars", aad) */
    static const unsigned char key[32] = "0123456789abcdefghijABCDEFGHIJ_-";
    const char *ct =
        "FFxAaQDFiIIWx5TQpNs6SV5bgwWytWsMYnrWq6q0ajgaLP3VtFMDqU1yjWbe5DOFylBtBSXVHxH9wK"
        "LAlo9iDf9+z2dkjmSI6A==";
    cmn_buf_t plain;

    (void)state;
    cmn_buf_init(&plain, 1024);
    assert_int_equal(cmn_wxpay_decrypt(key, "transaction", "n0nce12chars", ct, &plain), 0);
    assert_string_equal(plain.base,
                        "{\"out_trade_no\":\"T20240501-0001\",\"trade_state\":\"SUCCESS\"}");
    cmn_buf_reset(&plain);
    /* An empty plaintext without associated data: the ciphertext is the tag alone. */
    assert_int_equal(cmn_wxpay_decrypt(key, "", "n0nce12chars", "wT9VOi5zFtew0NEGanhESw==", &plain),
                     0);
    assert_int_equal(plain.len, 0);
    assert_int_equal(
        cmn_wxpay_decrypt(key, NULL, "n0nce12chars", "wT9VOi5zFtew0NEGanhESw==", &plain), 0);
    assert_int_equal(plain.len, 0);
    cmn_buf_dispose(&plain);
}

static void test_decrypt_round_trip_every_padding(void **state)
{
    unsigned char pt[64];
    char ct[200];
    cmn_buf_t plain;

    (void)state;
    assert_int_equal(RAND_bytes(pt, sizeof pt), 1);
    cmn_buf_init(&plain, 1024);
    /* Lengths 0..47 give ciphertext+tag lengths with no, one and two '=' of padding. */
    for (size_t len = 0; len < 48; len++) {
        const char *aad = len % 3 == 0 ? "transaction" : len % 3 == 1 ? "" : NULL;
        gcm_encrypt_b64(K.apiv3, "a1B2c3D4e5F6", aad, pt, len, ct, sizeof ct);
        assert_int_equal(cmn_buf_puts(&plain, "head:"), 0);
        assert_int_equal(cmn_wxpay_decrypt(K.apiv3, aad, "a1B2c3D4e5F6", ct, &plain), 0);
        assert_int_equal(plain.len, 5 + len);
        assert_memory_equal(plain.base, "head:", 5);
        if (len > 0)
            assert_memory_equal(plain.base + 5, pt, len);
        cmn_buf_reset(&plain);
    }
    cmn_buf_dispose(&plain);
}

static void expect_decrypt_fails(const unsigned char *key, const char *aad, const char *nonce,
                                 const char *ct, int rc)
{
    cmn_buf_t plain;

    cmn_buf_init(&plain, 1024);
    assert_int_equal(cmn_buf_puts(&plain, "untouched"), 0);
    assert_int_equal(cmn_wxpay_decrypt(key, aad, nonce, ct, &plain), rc);
    assert_int_equal(plain.len, 9);
    assert_string_equal(plain.base, "untouched");
    cmn_buf_dispose(&plain);
}

static void test_decrypt_rejects_tampering(void **state)
{
    const char *pt =
        "{\"out_trade_no\":\"T1\",\"trade_state\":\"SUCCESS\",\"amount\":{\"total\":500}}";
    size_t ptlen = strlen(pt);
    unsigned char ct[200], key2[32];
    char b64[300];
    int n;

    (void)state;
    gcm_encrypt_b64(K.apiv3, "a1B2c3D4e5F6", "transaction", pt, ptlen, b64, sizeof b64);
    n = EVP_DecodeBlock(ct, (const unsigned char *)b64, (int)strlen(b64));
    assert_true(n >= (int)(ptlen + 16));

    /* A flipped bit in the ciphertext, then in the tag (its last byte). */
    for (size_t at = 0; at < 2; at++) {
        unsigned char copy[200];
        char tampered[300];
        memcpy(copy, ct, ptlen + 16);
        copy[at == 0 ? 3 : ptlen + 15] ^= 0x01;
        EVP_EncodeBlock((unsigned char *)tampered, copy, (int)(ptlen + 16));
        expect_decrypt_fails(K.apiv3, "transaction", "a1B2c3D4e5F6", tampered, CMN_ECRYPTO);
    }
    /* The tag cut off: the last 16 bytes are then ciphertext taken for a tag. */
    {
        char cut[300];
        EVP_EncodeBlock((unsigned char *)cut, ct, (int)ptlen);
        expect_decrypt_fails(K.apiv3, "transaction", "a1B2c3D4e5F6", cut, CMN_ECRYPTO);
    }
    expect_decrypt_fails(K.apiv3, "transactioN", "a1B2c3D4e5F6", b64, CMN_ECRYPTO);
    expect_decrypt_fails(K.apiv3, "", "a1B2c3D4e5F6", b64, CMN_ECRYPTO);
    expect_decrypt_fails(K.apiv3, NULL, "a1B2c3D4e5F6", b64, CMN_ECRYPTO);
    expect_decrypt_fails(K.apiv3, "transaction", "a1B2c3D4e5F7", b64, CMN_ECRYPTO);
    memcpy(key2, K.apiv3, 32);
    key2[31] ^= 0x80;
    expect_decrypt_fails(key2, "transaction", "a1B2c3D4e5F6", b64, CMN_ECRYPTO);
    /* The nonce is twelve characters, as WeChat documents; no other IV length is tried. */
    expect_decrypt_fails(K.apiv3, "transaction", "a1B2c3D4e5F", b64, CMN_ECRYPTO);
    expect_decrypt_fails(K.apiv3, "transaction", "a1B2c3D4e5F6x", b64, CMN_ECRYPTO);
    expect_decrypt_fails(K.apiv3, "transaction", NULL, b64, CMN_ECRYPTO);
    expect_decrypt_fails(NULL, "transaction", "a1B2c3D4e5F6", b64, CMN_ECRYPTO);
    expect_decrypt_fails(K.apiv3, "transaction", "a1B2c3D4e5F6", NULL, CMN_ECRYPTO);
}

static void test_decrypt_rejects_bad_base64(void **state)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *pt = "{\"trade_state\":\"SUCCESS\"}"; /* 25 bytes + 16: one '=' of padding */
    char b64[200], bad[220];
    size_t n;

    (void)state;
    gcm_encrypt_b64(K.apiv3, "a1B2c3D4e5F6", "", pt, strlen(pt), b64, sizeof b64);
    n = strlen(b64);
    assert_int_equal(b64[n - 1], '=');
    assert_int_not_equal(b64[n - 2], '=');

    snprintf(bad, sizeof bad, "%s\n", b64);
    expect_decrypt_fails(K.apiv3, "", "a1B2c3D4e5F6", bad, CMN_ECRYPTO);
    snprintf(bad, sizeof bad, " %s", b64);
    expect_decrypt_fails(K.apiv3, "", "a1B2c3D4e5F6", bad, CMN_ECRYPTO);
    snprintf(bad, sizeof bad, "%.*s", (int)(n - 1), b64); /* '=' dropped */
    expect_decrypt_fails(K.apiv3, "", "a1B2c3D4e5F6", bad, CMN_ECRYPTO);
    snprintf(bad, sizeof bad, "%s", b64);
    bad[8] = '-'; /* base64url is another alphabet */
    expect_decrypt_fails(K.apiv3, "", "a1B2c3D4e5F6", bad, CMN_ECRYPTO);
    snprintf(bad, sizeof bad, "%s", b64);
    bad[8] = '=';
    expect_decrypt_fails(K.apiv3, "", "a1B2c3D4e5F6", bad, CMN_ECRYPTO);
    /* Non-zero bits in the unused part of the last character: another spelling of the same
     * bytes, which a strict decoder refuses. */
    snprintf(bad, sizeof bad, "%s", b64);
    {
        const char *pos = strchr(alphabet, bad[n - 2]);
        assert_non_null(pos);
        bad[n - 2] = alphabet[(pos - alphabet) ^ 1];
    }
    expect_decrypt_fails(K.apiv3, "", "a1B2c3D4e5F6", bad, CMN_ECRYPTO);
    expect_decrypt_fails(K.apiv3, "", "a1B2c3D4e5F6", "", CMN_ECRYPTO);
    expect_decrypt_fails(K.apiv3, "", "a1B2c3D4e5F6", "====", CMN_ECRYPTO);
    /* Well-formed but shorter than a tag. */
    expect_decrypt_fails(K.apiv3, "", "a1B2c3D4e5F6", "AAAAAAAAAAAAAAAAAAAA", CMN_ECRYPTO);
}

static void test_decrypt_respects_the_buffer_cap(void **state)
{
    const char *pt = "{\"out_trade_no\":\"T1\",\"trade_state\":\"SUCCESS\"}";
    char b64[200];
    cmn_buf_t small;

    (void)state;
    gcm_encrypt_b64(K.apiv3, "a1B2c3D4e5F6", "transaction", pt, strlen(pt), b64, sizeof b64);
    cmn_buf_init(&small, 20);
    assert_int_equal(cmn_buf_puts(&small, "x"), 0);
    assert_int_equal(cmn_wxpay_decrypt(K.apiv3, "transaction", "a1B2c3D4e5F6", b64, &small),
                     CMN_ETOOBIG);
    assert_int_equal(small.len, 1);
    assert_string_equal(small.base, "x");
    cmn_buf_dispose(&small);
}

static void test_decrypt_allocation_failures(void **state)
{
    const char *pt = "{\"out_trade_no\":\"T1\",\"trade_state\":\"SUCCESS\"}";
    char b64[200];
    int rc = CMN_ENOMEM;

    (void)state;
    gcm_encrypt_b64(K.apiv3, "a1B2c3D4e5F6", "transaction", pt, strlen(pt), b64, sizeof b64);
    /* Every fallible allocation in turn fails: each path reports CMN_ENOMEM, appends nothing and
     * (under ASan) leaks nothing, until the sweep passes the last allocation. */
    for (long n = 1; n < 10 && rc == CMN_ENOMEM; n++) {
        cmn_buf_t plain;
        cmn_buf_init(&plain, 1024);
        cmn_mem_fail_after(n);
        rc = cmn_wxpay_decrypt(K.apiv3, "transaction", "a1B2c3D4e5F6", b64, &plain);
        cmn_mem_fail_after(0);
        if (rc == CMN_ENOMEM)
            assert_int_equal(plain.len, 0);
        else
            assert_string_equal(plain.base, pt);
        cmn_buf_dispose(&plain);
    }
    assert_int_equal(rc, 0);
}

/* ---- nonces ---- */

static void test_nonce_charset_and_length(void **state)
{
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    int seen[256] = {0};
    char first[33], n[33];

    (void)state;
    assert_int_equal(cmn_wxpay_nonce(first), 0);
    assert_int_equal(strlen(first), 32);
    for (int i = 0; i < 4000; i++) {
        memset(n, 0x5a, sizeof n);
        assert_int_equal(cmn_wxpay_nonce(n), 0);
        assert_int_equal(n[32], '\0');
        assert_int_equal(strlen(n), 32);
        assert_string_not_equal(n, first);
        for (int j = 0; j < 32; j++) {
            assert_non_null(strchr(alnum, n[j]));
            seen[(unsigned char)n[j]]++;
        }
    }
    /* 128,000 draws over 62 characters: each appears 2,065 times on average (standard deviation
     * about 45; the bounds are six of them away).  A missing character would mean a broken
     * mapping; a plain `byte % 62` would give the first eight characters 5/256 each, about 2,500
     * times, far outside the bounds. */
    for (const char *c = alnum; *c != '\0'; c++) {
        assert_true(seen[(unsigned char)*c] > 1795);
        assert_true(seen[(unsigned char)*c] < 2335);
    }
}

/* ---- PEM ---- */

static void test_pem_private_pkcs8_and_pkcs1(void **state)
{
    const enum pem_kind kinds[] = {PEM_PKCS8, PEM_PKCS1};

    (void)state;
    for (size_t i = 0; i < 2; i++) {
        char *pem = pem_of(K.rsa, kinds[i]);
        EVP_PKEY *key = NULL;
        assert_non_null(strstr(pem, i == 0 ? "-----BEGIN PRIVATE KEY-----"
                                           : "-----BEGIN RSA PRIVATE KEY-----"));
        assert_int_equal(cmn_pem_private_key(pem, strlen(pem), &key), 0);
        assert_non_null(key);
        assert_int_equal(EVP_PKEY_eq(key, K.rsa), 1);
        EVP_PKEY_free(key);
        cmn_free(pem);
    }
}

static void test_pem_public_spki_pkcs1_and_certificate(void **state)
{
    char *pems[] = {pem_of(K.rsa, PEM_SPKI), pem_of(K.rsa, PEM_PKCS1_PUBLIC), cert_pem_of(K.rsa)};
    const char *heads[] = {"-----BEGIN PUBLIC KEY-----", "-----BEGIN RSA PUBLIC KEY-----",
                           "-----BEGIN CERTIFICATE-----"};

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        EVP_PKEY *key = NULL;
        assert_non_null(strstr(pems[i], heads[i]));
        assert_int_equal(cmn_pem_public_key(pems[i], strlen(pems[i]), &key), 0);
        assert_int_equal(EVP_PKEY_eq(key, K.rsa), 1);
        EVP_PKEY_free(key);
        cmn_free(pems[i]);
    }
}

static void test_pem_refusals(void **state)
{
    char *pkcs8 = pem_of(K.rsa, PEM_PKCS8), *spki = pem_of(K.rsa, PEM_SPKI);
    char *cert = cert_pem_of(K.rsa), *enc = pem_of(K.rsa, PEM_ENCRYPTED);
    char *small_priv = pem_of(K.small, PEM_PKCS8), *small_pub = pem_of(K.small, PEM_SPKI);
    char *ec_priv = pem_of(K.ec, PEM_PKCS8), *ec_pub = pem_of(K.ec, PEM_SPKI);
    char *small_cert = cert_pem_of(K.small);
    EVP_PKEY *key = NULL;
    const char *garbage =
        "-----BEGIN PUBLIC KEY-----\nnot base64 at all\n-----END PUBLIC KEY-----\n";

    (void)state;
    /* The wrong half of a pair. */
    assert_int_equal(cmn_pem_public_key(pkcs8, strlen(pkcs8), &key), CMN_ECRYPTO);
    assert_int_equal(cmn_pem_private_key(spki, strlen(spki), &key), CMN_ECRYPTO);
    assert_int_equal(cmn_pem_private_key(cert, strlen(cert), &key), CMN_ECRYPTO);
    /* Encrypted: refused at once, without prompting anyone for a passphrase. */
    assert_non_null(strstr(enc, "-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    assert_int_equal(cmn_pem_private_key(enc, strlen(enc), &key), CMN_ECRYPTO);
    /* Too short for RSA2048, or not RSA. */
    assert_int_equal(cmn_pem_private_key(small_priv, strlen(small_priv), &key), CMN_ECRYPTO);
    assert_int_equal(cmn_pem_public_key(small_pub, strlen(small_pub), &key), CMN_ECRYPTO);
    assert_int_equal(cmn_pem_public_key(small_cert, strlen(small_cert), &key), CMN_ECRYPTO);
    assert_int_equal(cmn_pem_private_key(ec_priv, strlen(ec_priv), &key), CMN_ECRYPTO);
    assert_int_equal(cmn_pem_public_key(ec_pub, strlen(ec_pub), &key), CMN_ECRYPTO);
    /* Broken text. */
    assert_int_equal(cmn_pem_public_key(garbage, strlen(garbage), &key), CMN_ECRYPTO);
    assert_int_equal(cmn_pem_public_key(spki, strlen(spki) / 2, &key), CMN_ECRYPTO);
    assert_int_equal(cmn_pem_private_key(pkcs8, strlen(pkcs8) / 2, &key), CMN_ECRYPTO);
    assert_int_equal(cmn_pem_public_key("", 0, &key), CMN_ECRYPTO);
    assert_int_equal(cmn_pem_private_key(NULL, 10, &key), CMN_ECRYPTO);
    assert_null(key);
    cmn_free(pkcs8);
    cmn_free(spki);
    cmn_free(cert);
    cmn_free(enc);
    cmn_free(small_priv);
    cmn_free(small_pub);
    cmn_free(small_cert);
    cmn_free(ec_priv);
    cmn_free(ec_pub);
}

static void test_pem_file_with_several_blocks(void **state)
{
    /* apiclient_cert.pem and apiclient_key.pem are sometimes concatenated into one file. */
    char *cert = cert_pem_of(K.rsa), *pkcs8 = pem_of(K.rsa, PEM_PKCS8);
    cmn_buf_t both;
    EVP_PKEY *key = NULL;

    (void)state;
    cmn_buf_init(&both, 16384);
    assert_int_equal(cmn_buf_puts(&both, cert), 0);
    assert_int_equal(cmn_buf_puts(&both, pkcs8), 0);
    assert_int_equal(cmn_pem_private_key(both.base, both.len, &key), 0);
    assert_int_equal(EVP_PKEY_eq(key, K.rsa), 1);
    EVP_PKEY_free(key);
    key = NULL;
    assert_int_equal(cmn_pem_public_key(both.base, both.len, &key), 0);
    assert_int_equal(EVP_PKEY_eq(key, K.rsa), 1);
    EVP_PKEY_free(key);
    cmn_buf_dispose(&both);
    cmn_free(cert);
    cmn_free(pkcs8);
}

/* ---- OpenSSL's error queue ---- */

static void test_error_queue_is_left_as_found(void **state)
{
    char b64[100];

    (void)state;
    ERR_clear_error();
    assert_int_equal(cmn_wxpay_verify(K.rsa, TS_STR, NONCE, "{}", 2, "AAAA"), CMN_ECRYPTO);
    gcm_encrypt_b64(K.apiv3, "a1B2c3D4e5F6", "", "{}", 2, b64, sizeof b64);
    expect_decrypt_fails(K.apiv3, "x", "a1B2c3D4e5F6", b64, CMN_ECRYPTO);
    assert_int_equal(cmn_pem_public_key("junk", 4, &(EVP_PKEY *){NULL}), CMN_ECRYPTO);
    assert_int_equal(ERR_peek_error(), 0);

    /* An error the caller queued before calling us survives our own failures. */
    ERR_raise(ERR_LIB_USER, 42);
    assert_int_equal(cmn_pem_private_key("junk", 4, &(EVP_PKEY *){NULL}), CMN_ECRYPTO);
    expect_decrypt_fails(K.apiv3, "x", "a1B2c3D4e5F6", b64, CMN_ECRYPTO);
    assert_int_equal(ERR_GET_LIB(ERR_peek_last_error()), ERR_LIB_USER);
    assert_int_equal(ERR_GET_REASON(ERR_peek_last_error()), 42);
    ERR_clear_error();
}

/* ---- merchant-side numbers ---- */

static int wx_charset_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= CMN_WXPAY_NO_MAX &&
           strspn(s, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-*") == n;
}

static void test_numbers_plain_hashed_and_parsed_back(void **state)
{
    char no[CMN_WXPAY_NO_MAX + 1], lot[80], seq[24], tag[CMN_WXPAY_LOT_TAG_LEN + 1];
    int hashed = -1;
    (void)state;

    assert_int_equal(cmn_wxpay_parking_no("HZ-SC-001", "42", no), 0);
    assert_string_equal(no, "HZ-SC-001*42");
    assert_int_equal(cmn_wxpay_parking_no_parse(no, lot, sizeof lot, &hashed, seq, sizeof seq), 0);
    assert_string_equal(lot, "HZ-SC-001");
    assert_string_equal(seq, "42");
    assert_int_equal(hashed, 0);
    assert_int_equal(cmn_wxpay_trade_no("HZ-SC-001", "42", 1, no), 0);
    assert_string_equal(no, "HZ-SC-001*42*b");
    assert_int_equal(cmn_wxpay_trade_no("HZ-SC-001", "42", 3, no), 0);
    assert_string_equal(no, "HZ-SC-001*42*b3");
    /* A trade number is not a parking number. */
    assert_int_equal(cmn_wxpay_parking_no_parse(no, lot, sizeof lot, &hashed, seq, sizeof seq),
                     CMN_EPARSE);

    /* A lot id with characters WeChat refuses, or too long: the hashed spelling. */
    assert_int_equal(cmn_wxpay_parking_no("hz.west:7", "9", no), 0);
    cmn_wxpay_lot_tag("hz.west:7", tag);
    assert_int_equal(strlen(tag), CMN_WXPAY_LOT_TAG_LEN);
    assert_true(wx_charset_ok(no));
    assert_int_equal(no[0], '*');
    assert_int_equal(cmn_wxpay_parking_no_parse(no, lot, sizeof lot, &hashed, seq, sizeof seq), 0);
    assert_int_equal(hashed, 1);
    assert_string_equal(lot, tag);
    assert_string_equal(seq, "9");
    const char *long_lot = "HANGZHOU-XIHU-DISTRICT-LOT-000123";
    assert_int_equal(cmn_wxpay_parking_no(long_lot, "123456789012345678", no), 0);
    assert_true(wx_charset_ok(no));
    assert_int_equal(cmn_wxpay_parking_no_parse(no, lot, sizeof lot, &hashed, seq, sizeof seq), 0);
    assert_int_equal(hashed, 1);
    assert_string_equal(seq, "123456789012345678");

    /* Trade numbers that would pass 32 characters: a hash, different per attempt, stable. */
    char a1[CMN_WXPAY_NO_MAX + 1], a2[CMN_WXPAY_NO_MAX + 1], again[CMN_WXPAY_NO_MAX + 1];
    assert_int_equal(cmn_wxpay_trade_no(long_lot, "123456789012345678", 1, a1), 0);
    assert_int_equal(cmn_wxpay_trade_no(long_lot, "123456789012345678", 2, a2), 0);
    assert_int_equal(cmn_wxpay_trade_no(long_lot, "123456789012345678", 1, again), 0);
    assert_true(wx_charset_ok(a1) && wx_charset_ok(a2));
    assert_int_equal(strlen(a1), CMN_WXPAY_NO_MAX);
    assert_string_not_equal(a1, a2);
    assert_string_equal(a1, again);
    assert_null(strchr(a1 + 1, '*'));

    /* Refund numbers: their own series, never equal to a trade number of the same bill. */
    assert_int_equal(cmn_wxpay_refund_no("HZ-SC-001", "42", 1, no), 0);
    assert_string_equal(no, "HZ-SC-001*42*r1");
    char r1[CMN_WXPAY_NO_MAX + 1], r2[CMN_WXPAY_NO_MAX + 1];
    assert_int_equal(cmn_wxpay_refund_no(long_lot, "123456789012345678", 1, r1), 0);
    assert_int_equal(cmn_wxpay_refund_no(long_lot, "123456789012345678", 2, r2), 0);
    assert_true(wx_charset_ok(r1) && wx_charset_ok(r2));
    assert_string_not_equal(r1, r2);
    assert_string_not_equal(r1, a1);
    assert_int_equal(cmn_wxpay_refund_no("L", "1", 0, no), CMN_EINVAL);

    /* Refusals. */
    assert_int_equal(cmn_wxpay_parking_no("", "1", no), CMN_EINVAL);
    assert_int_equal(cmn_wxpay_parking_no("L", "", no), CMN_EINVAL);
    assert_int_equal(cmn_wxpay_parking_no("L", "1x", no), CMN_EINVAL);
    assert_int_equal(cmn_wxpay_parking_no("L", "1234567890123456789", no), CMN_EINVAL);
    assert_int_equal(cmn_wxpay_trade_no("L", "1", 0, no), CMN_EINVAL);
    const char *bad[] = {"", "*", "L*", "*L*1", "L.x*1", "*0123456789ab*", "*0123456789AB*1",
                         "L*1*b", "ABCDEFGHIJKLMNOPQRSTUVWXYZ01234*5"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(cmn_wxpay_parking_no_parse(bad[i], lot, sizeof lot, &hashed, seq,
                                                    sizeof seq),
                         CMN_EPARSE);
    assert_int_equal(cmn_wxpay_parking_no_parse("LOT*12", lot, 3, &hashed, seq, sizeof seq),
                     CMN_ETOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_authorization_exact_format),
        cmocka_unit_test(test_authorization_get_with_query),
        cmocka_unit_test(test_authorization_tampering_breaks_signature),
        cmocka_unit_test(test_authorization_appends_or_leaves_out_alone),
        cmocka_unit_test(test_authorization_rejects_bad_arguments),
        cmocka_unit_test(test_verify_round_trip),
        cmocka_unit_test(test_verify_rejects_tampering),
        cmocka_unit_test(test_verify_rejects_malformed_input),
        cmocka_unit_test(test_verify_accepts_authorization_signature_as_peer_would),
        cmocka_unit_test(test_decrypt_vector_from_node_library),
        cmocka_unit_test(test_decrypt_round_trip_every_padding),
        cmocka_unit_test(test_decrypt_rejects_tampering),
        cmocka_unit_test(test_decrypt_rejects_bad_base64),
        cmocka_unit_test(test_decrypt_respects_the_buffer_cap),
        cmocka_unit_test(test_decrypt_allocation_failures),
        cmocka_unit_test(test_nonce_charset_and_length),
        cmocka_unit_test(test_pem_private_pkcs8_and_pkcs1),
        cmocka_unit_test(test_pem_public_spki_pkcs1_and_certificate),
        cmocka_unit_test(test_pem_refusals),
        cmocka_unit_test(test_pem_file_with_several_blocks),
        cmocka_unit_test(test_error_queue_is_left_as_found),
        cmocka_unit_test(test_numbers_plain_hashed_and_parsed_back),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
