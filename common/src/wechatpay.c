#include "cmn/wechatpay.h"

#include <inttypes.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include "cmn/crypto.h"
#include "cmn/err.h"
#include "cmn/mem.h"

/*
 * WeChat Pay API v3 cryptography (research notes payments-and-credit.md 2.3 to 2.5).
 *
 * Every public function brackets its OpenSSL calls with ERR_set_mark / ERR_pop_to_mark: a failed
 * verification is an ordinary outcome here (a forged notification), and the reasons OpenSSL queues
 * for it must neither leak into an unrelated later ERR_get_error on the same thread nor wipe
 * errors that the caller had queued before calling us.
 */

#define WXPAY_SCHEMA "WECHATPAY2-SHA256-RSA2048"
#define GCM_NONCE_LEN 12
#define GCM_TAG_LEN 16
#define MAX_TOKEN_LEN 64
#define MAX_METHOD_LEN 16
#define MAX_TIMESTAMP_DIGITS 20

/* ---- argument checks ---- */

/*
 * mchid, serial_no and the nonces travel inside "…" in the Authorization header and as lines of
 * the signed message: a quote, comma or backslash would let a value end early or forge another
 * pair, a newline would shift the message's lines.  WeChat's own values are digits, hex and
 * base62, so the rule costs nothing.
 */
static int is_token(const char *s)
{
    size_t n = 0;

    if (s == NULL)
        return 0;
    for (; s[n] != '\0'; n++) {
        unsigned char c = (unsigned char)s[n];
        if (n >= MAX_TOKEN_LEN || c < 0x21 || c > 0x7e || c == '"' || c == ',' || c == '\\')
            return 0;
    }
    return n > 0;
}

static int is_method(const char *s)
{
    size_t n = 0;

    if (s == NULL)
        return 0;
    for (; s[n] != '\0'; n++) {
        if (n >= MAX_METHOD_LEN || s[n] < 'A' || s[n] > 'Z')
            return 0;
    }
    return n > 0;
}

/* The canonical URL is signed byte for byte as sent, so it must be what an HTTP request line can
 * carry unchanged: visible ASCII, percent-encoded beyond that. */
static int is_path(const char *s)
{
    if (s == NULL || s[0] != '/')
        return 0;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x21 || c > 0x7e)
            return 0;
    }
    return 1;
}

static int is_timestamp(const char *s)
{
    size_t n = 0;

    if (s == NULL)
        return 0;
    for (; s[n] != '\0'; n++) {
        if (n >= MAX_TIMESTAMP_DIGITS || s[n] < '0' || s[n] > '9')
            return 0;
    }
    return n > 0;
}

/* Whether the key is one this scheme may use: RSA (PKCS#1 v1.5 padding is set explicitly on every
 * operation), and not shorter than the scheme's name promises. */
static int is_usable_rsa(EVP_PKEY *key)
{
    return key != NULL && EVP_PKEY_is_a(key, "RSA") &&
           EVP_PKEY_get_bits(key) >= CMN_WXPAY_MIN_RSA_BITS;
}

/* ---- base64 ---- */

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/*
 * Decodes strict base64 (RFC 4648 section 4: a multiple of four characters, '=' padding only at the
 * end, no whitespace, zero bits in the last character's unused part) into a fresh buffer that the
 * caller frees with cmn_free.  EVP_DecodeBlock alone is not enough: it skips leading and trailing
 * whitespace, and it turns each '=' into a zero byte of output, so its length must be corrected by
 * the padding count.  Returns 0, CMN_ECRYPTO (malformed), CMN_ETOOBIG or CMN_ENOMEM.
 */
static int b64_decode(const char *in, unsigned char **out, size_t *outlen)
{
    size_t len = strlen(in), pad = 0;
    unsigned char *buf;
    int n, last;

    if (len == 0 || len % 4 != 0)
        return CMN_ECRYPTO;
    if (len > INT_MAX)
        return CMN_ETOOBIG;
    if (in[len - 1] == '=')
        pad = in[len - 2] == '=' ? 2 : 1;
    for (size_t i = 0; i < len - pad; i++) {
        if (b64_value((unsigned char)in[i]) < 0)
            return CMN_ECRYPTO;
    }
    last = b64_value((unsigned char)in[len - pad - 1]);
    if ((pad == 2 && (last & 0x0f) != 0) || (pad == 1 && (last & 0x03) != 0))
        return CMN_ECRYPTO;
    buf = cmn_try_alloc(len / 4 * 3);
    if (buf == NULL)
        return CMN_ENOMEM;
    n = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)len);
    if (n < 0 || (size_t)n != len / 4 * 3) {
        cmn_free(buf);
        return CMN_ECRYPTO;
    }
    *out = buf;
    *outlen = (size_t)n - pad;
    return 0;
}

/* ---- keys ---- */

/* Refuses to decrypt an encrypted PEM key: OpenSSL's default callback would prompt on the
 * terminal, which a service must never do. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static BIO *pem_bio(const void *pem, size_t len)
{
    if (pem == NULL || len == 0 || len > INT_MAX)
        return NULL;
    return BIO_new_mem_buf(pem, (int)len);
}

int cmn_pem_private_key(const void *pem, size_t len, EVP_PKEY **out)
{
    int rc = CMN_ECRYPTO;
    BIO *bio = NULL;
    EVP_PKEY *key = NULL;

    ERR_set_mark();
    bio = pem_bio(pem, len);
    if (bio == NULL)
        goto out;
    /* One call reads both "PRIVATE KEY" (PKCS#8) and "RSA PRIVATE KEY" (PKCS#1). */
    key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    if (!is_usable_rsa(key))
        goto out;
    *out = key;
    key = NULL;
    rc = 0;
out:
    EVP_PKEY_free(key);
    BIO_free(bio);
    ERR_pop_to_mark();
    return rc;
}

int cmn_pem_public_key(const void *pem, size_t len, EVP_PKEY **out)
{
    int rc = CMN_ECRYPTO;
    BIO *bio = NULL;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;

    ERR_set_mark();
    bio = pem_bio(pem, len);
    if (bio == NULL)
        goto out;
    key = PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
    if (key == NULL) {
        /* Not an SPKI block: read the text again from its start as a certificate. */
        BIO_free(bio);
        bio = pem_bio(pem, len);
        if (bio == NULL)
            goto out;
        cert = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
        if (cert == NULL)
            goto out;
        key = X509_get_pubkey(cert);
    }
    if (!is_usable_rsa(key))
        goto out;
    *out = key;
    key = NULL;
    rc = 0;
out:
    EVP_PKEY_free(key);
    X509_free(cert);
    BIO_free(bio);
    ERR_pop_to_mark();
    return rc;
}

/* ---- signatures ---- */

/*
 * Starts a SHA256withRSA (PKCS#1 v1.5) signature or verification.  The padding is set explicitly
 * so that a provider default other than PKCS#1 v1.5 could never change what we sign.
 */
static int rsa_sha256_init(EVP_MD_CTX *md, EVP_PKEY *key, int verify)
{
    EVP_PKEY_CTX *pctx = NULL;
    int ok = verify ? EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, key)
                    : EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, key);

    return ok == 1 && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) > 0;
}

int cmn_wxpay_authorization(EVP_PKEY *merchant_key, const char *mchid, const char *serial_no,
                            const char *method, const char *path_with_query, const void *body,
                            size_t body_len, int64_t timestamp, const char *nonce, cmn_buf_t *out)
{
    int rc = CMN_EINVAL;
    EVP_MD_CTX *md = NULL;
    unsigned char *sig = NULL;
    char *sig_b64 = NULL;
    size_t siglen = 0;
    char ts[24];
    int tslen;

    ERR_set_mark();
    if (!is_token(mchid) || !is_token(serial_no) || !is_token(nonce) || !is_method(method) ||
        !is_path(path_with_query) || timestamp < 0 || (body == NULL && body_len > 0) || out == NULL)
        goto out;
    tslen = snprintf(ts, sizeof ts, "%" PRId64, timestamp);
    rc = CMN_ECRYPTO;
    if (!is_usable_rsa(merchant_key))
        goto out;
    md = EVP_MD_CTX_new();
    if (md == NULL || !rsa_sha256_init(md, merchant_key, 0))
        goto out;
    /* The message is fed in pieces: the body is never copied, however large. */
    if (EVP_DigestSignUpdate(md, method, strlen(method)) != 1 ||
        EVP_DigestSignUpdate(md, "\n", 1) != 1 ||
        EVP_DigestSignUpdate(md, path_with_query, strlen(path_with_query)) != 1 ||
        EVP_DigestSignUpdate(md, "\n", 1) != 1 ||
        EVP_DigestSignUpdate(md, ts, (size_t)tslen) != 1 ||
        EVP_DigestSignUpdate(md, "\n", 1) != 1 ||
        EVP_DigestSignUpdate(md, nonce, strlen(nonce)) != 1 ||
        EVP_DigestSignUpdate(md, "\n", 1) != 1 ||
        (body_len > 0 && EVP_DigestSignUpdate(md, body, body_len) != 1) ||
        EVP_DigestSignUpdate(md, "\n", 1) != 1)
        goto out;
    if (EVP_DigestSignFinal(md, NULL, &siglen) != 1 || siglen == 0 || siglen > 4096)
        goto out;
    sig = cmn_xalloc(siglen);
    if (EVP_DigestSignFinal(md, sig, &siglen) != 1)
        goto out;
    sig_b64 = cmn_xalloc((siglen + 2) / 3 * 4 + 1);
    EVP_EncodeBlock((unsigned char *)sig_b64, sig, (int)siglen);
    /* One append: cmn_buf_printf either writes the whole value or leaves `out` as it was. */
    rc = cmn_buf_printf(out,
                        WXPAY_SCHEMA " mchid=\"%s\",nonce_str=\"%s\",signature=\"%s\","
                                     "timestamp=\"%s\",serial_no=\"%s\"",
                        mchid, nonce, sig_b64, ts, serial_no);
out:
    cmn_free(sig_b64);
    cmn_free(sig);
    EVP_MD_CTX_free(md);
    ERR_pop_to_mark();
    return rc;
}

int cmn_wxpay_verify(EVP_PKEY *platform_key, const char *timestamp, const char *nonce,
                     const void *body, size_t body_len, const char *signature_b64)
{
    int rc = CMN_ECRYPTO;
    EVP_MD_CTX *md = NULL;
    unsigned char *sig = NULL;
    size_t siglen = 0;

    ERR_set_mark();
    if (!is_usable_rsa(platform_key) || !is_timestamp(timestamp) || !is_token(nonce) ||
        signature_b64 == NULL || (body == NULL && body_len > 0))
        goto out;
    /* An RSA signature is exactly as long as the modulus; anything else is not one, and a header a
     * peer made long is refused before anything is allocated for it. */
    if (strlen(signature_b64) != ((size_t)EVP_PKEY_get_size(platform_key) + 2) / 3 * 4 ||
        b64_decode(signature_b64, &sig, &siglen) != 0 ||
        siglen != (size_t)EVP_PKEY_get_size(platform_key))
        goto out;
    md = EVP_MD_CTX_new();
    if (md == NULL || !rsa_sha256_init(md, platform_key, 1))
        goto out;
    if (EVP_DigestVerifyUpdate(md, timestamp, strlen(timestamp)) != 1 ||
        EVP_DigestVerifyUpdate(md, "\n", 1) != 1 ||
        EVP_DigestVerifyUpdate(md, nonce, strlen(nonce)) != 1 ||
        EVP_DigestVerifyUpdate(md, "\n", 1) != 1 ||
        (body_len > 0 && EVP_DigestVerifyUpdate(md, body, body_len) != 1) ||
        EVP_DigestVerifyUpdate(md, "\n", 1) != 1)
        goto out;
    if (EVP_DigestVerifyFinal(md, sig, siglen) != 1)
        goto out;
    rc = 0;
out:
    cmn_free(sig);
    EVP_MD_CTX_free(md);
    ERR_pop_to_mark();
    return rc;
}

/* ---- notification resources ---- */

int cmn_wxpay_decrypt(const unsigned char apiv3_key[32], const char *associated_data,
                      const char *nonce, const char *ciphertext_b64, cmn_buf_t *plain)
{
    int rc = CMN_ECRYPTO;
    EVP_CIPHER_CTX *ctx = NULL;
    unsigned char *buf = NULL;
    size_t buflen = 0, ctlen, aadlen = associated_data ? strlen(associated_data) : 0;
    int outl = 0;

    ERR_set_mark();
    if (apiv3_key == NULL || nonce == NULL || strlen(nonce) != GCM_NONCE_LEN ||
        ciphertext_b64 == NULL || plain == NULL)
        goto out;
    if (aadlen > INT_MAX) {
        rc = CMN_ETOOBIG;
        goto out;
    }
    rc = b64_decode(ciphertext_b64, &buf, &buflen);
    if (rc != 0)
        goto out;
    rc = CMN_ECRYPTO;
    if (buflen < GCM_TAG_LEN)
        goto out;
    ctlen = buflen - GCM_TAG_LEN;
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL || EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, GCM_NONCE_LEN, NULL) != 1 ||
        EVP_DecryptInit_ex(ctx, NULL, NULL, apiv3_key, (const unsigned char *)nonce) != 1)
        goto out;
    if (aadlen > 0 && EVP_DecryptUpdate(ctx, NULL, &outl, (const unsigned char *)associated_data,
                                        (int)aadlen) != 1)
        goto out;
    /* In place: the plaintext overwrites the ciphertext it came from, the tag after it stays. */
    if (ctlen > 0 &&
        (EVP_DecryptUpdate(ctx, buf, &outl, buf, (int)ctlen) != 1 || (size_t)outl != ctlen))
        goto out;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, GCM_TAG_LEN, buf + ctlen) != 1 ||
        EVP_DecryptFinal_ex(ctx, buf + ctlen, &outl) != 1)
        goto out;
    /* Only now is the plaintext authentic, and only now does the caller see any of it. */
    rc = cmn_buf_append(plain, buf, ctlen);
out:
    if (buf != NULL) {
        OPENSSL_cleanse(buf, buflen);
        cmn_free(buf);
    }
    EVP_CIPHER_CTX_free(ctx);
    ERR_pop_to_mark();
    return rc;
}

/* ---- nonces ---- */

int cmn_wxpay_nonce(char out[33])
{
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char rnd[48];
    size_t have = 0;
    int rc = CMN_ECRYPTO;

    ERR_set_mark();
    /* Rejection sampling: 248 is the largest multiple of 62 below 256, so every byte under it maps
     * to each character with the same probability; a plain modulo would favour the first 8. */
    while (have < 32) {
        if (RAND_bytes(rnd, (int)sizeof rnd) != 1)
            goto out;
        for (size_t i = 0; i < sizeof rnd && have < 32; i++) {
            if (rnd[i] < 248)
                out[have++] = alnum[rnd[i] % 62];
        }
    }
    out[32] = '\0';
    rc = 0;
out:
    OPENSSL_cleanse(rnd, sizeof rnd);
    ERR_pop_to_mark();
    return rc;
}

/* ---- merchant-side numbers ---- */

static int is_plain_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
           c == '-';
}

static int is_decimal(const char *s, size_t max)
{
    size_t n = strspn(s, "0123456789");
    return n > 0 && n <= max && s[n] == '\0';
}

void cmn_wxpay_lot_tag(const char *lot, char out[CMN_WXPAY_LOT_TAG_LEN + 1])
{
    unsigned char md[32];
    char hex[65];

    cmn_sha256(lot, strlen(lot), md);
    cmn_hex(md, sizeof md, hex);
    memcpy(out, hex, CMN_WXPAY_LOT_TAG_LEN);
    out[CMN_WXPAY_LOT_TAG_LEN] = '\0';
}

int cmn_wxpay_parking_no(const char *lot, const char *seq, char out[CMN_WXPAY_NO_MAX + 1])
{
    size_t lot_len = lot ? strlen(lot) : 0, seq_len;
    int plain = lot_len > 0;

    if (lot_len == 0 || seq == NULL || !is_decimal(seq, 18))
        return CMN_EINVAL;
    seq_len = strlen(seq);
    for (size_t i = 0; i < lot_len && plain; i++)
        plain = is_plain_char(lot[i]);
    if (plain && lot_len + 1 + seq_len <= CMN_WXPAY_NO_MAX) {
        memcpy(out, lot, lot_len);
        out[lot_len] = '*';
        memcpy(out + lot_len + 1, seq, seq_len + 1);
    } else {
        /* 1 + 12 + 1 + at most 18 digits: always fits. */
        out[0] = '*';
        cmn_wxpay_lot_tag(lot, out + 1);
        out[1 + CMN_WXPAY_LOT_TAG_LEN] = '*';
        memcpy(out + 2 + CMN_WXPAY_LOT_TAG_LEN, seq, seq_len + 1);
    }
    return 0;
}

/* "<parking no>*<kind><n>" ("*b" alone for the first bill attempt), or when that is too long "*"
 * and 31 hex digits of SHA-256 over "<lot>~<seq>~<kind>#<n>": deterministic, so a retry sends the
 * same number, and distinct for each (session, kind, n). */
static int numbered(const char *lot, const char *seq, char kind, int n, char out[CMN_WXPAY_NO_MAX + 1])
{
    char parking[CMN_WXPAY_NO_MAX + 1], full[CMN_WXPAY_NO_MAX + 16];
    int rc = cmn_wxpay_parking_no(lot, seq, parking);

    if (rc != 0 || n < 1 || n > 999999)
        return CMN_EINVAL;
    if (n == 1 && kind == 'b')
        snprintf(full, sizeof full, "%s*b", parking);
    else
        snprintf(full, sizeof full, "%s*%c%d", parking, kind, n);
    if (strlen(full) <= CMN_WXPAY_NO_MAX) {
        memcpy(out, full, strlen(full) + 1);
    } else {
        cmn_buf_t key;
        unsigned char md[32];
        char hex[65];
        cmn_buf_init(&key, 256);
        if (cmn_buf_printf(&key, "%s~%s~%c#%d", lot, seq, kind, n) != 0) {
            cmn_buf_dispose(&key);
            return CMN_EINVAL;
        }
        cmn_sha256(key.base, key.len, md);
        cmn_buf_dispose(&key);
        cmn_hex(md, sizeof md, hex);
        snprintf(out, CMN_WXPAY_NO_MAX + 1, "*%.31s", hex);
    }
    return 0;
}

int cmn_wxpay_trade_no(const char *lot, const char *seq, int attempt,
                       char out[CMN_WXPAY_NO_MAX + 1])
{
    return numbered(lot, seq, 'b', attempt, out);
}

int cmn_wxpay_refund_no(const char *lot, const char *seq, int refund,
                        char out[CMN_WXPAY_NO_MAX + 1])
{
    return numbered(lot, seq, 'r', refund, out);
}

int cmn_wxpay_parking_no_parse(const char *no, char *lot, size_t lotsz, int *hashed, char *seq,
                               size_t seqsz)
{
    const char *star;
    size_t lot_len;

    if (no == NULL || strlen(no) > CMN_WXPAY_NO_MAX)
        return CMN_EPARSE;
    star = strrchr(no, '*');
    if (star == NULL || !is_decimal(star + 1, 18))
        return CMN_EPARSE;
    if (no[0] == '*') {
        /* "*<tag>*<seq>" */
        if (star != no + 1 + CMN_WXPAY_LOT_TAG_LEN ||
            strspn(no + 1, "0123456789abcdef") != CMN_WXPAY_LOT_TAG_LEN)
            return CMN_EPARSE;
        no++;
        *hashed = 1;
    } else {
        for (const char *p = no; p < star; p++) {
            if (!is_plain_char(*p))
                return CMN_EPARSE;
        }
        *hashed = 0;
    }
    lot_len = (size_t)(star - no);
    if (lot_len == 0)
        return CMN_EPARSE;
    if (lot_len >= lotsz || strlen(star + 1) >= seqsz)
        return CMN_ETOOBIG;
    memcpy(lot, no, lot_len);
    lot[lot_len] = '\0';
    memcpy(seq, star + 1, strlen(star + 1) + 1);
    return 0;
}
