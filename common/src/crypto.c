#include "cmn/crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <string.h>

#include "cmn/err.h"
#include "cmn/mem.h"

static EVP_MAC *hmac;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

/* Fetching an algorithm is costly (a provider lookup); do it once per process. */
static void fetch_hmac(void)
{
    hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

static EVP_MAC_CTX *hmac_start(const void *key, size_t keylen)
{
    EVP_MAC_CTX *ctx = NULL;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};

    pthread_once(&hmac_once, fetch_hmac);
    if (hmac == NULL || (ctx = EVP_MAC_CTX_new(hmac)) == NULL)
        return NULL;
    if (EVP_MAC_init(ctx, key, keylen, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* Feeds the parts to a started context and frees it. */
static int hmac_finish(EVP_MAC_CTX *ctx, const void *const *parts, const size_t *lens, size_t n,
                       unsigned char out[32])
{
    int rc = CMN_ECRYPTO;
    size_t outlen = 0;
    if (ctx == NULL)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (lens[i] > 0 && EVP_MAC_update(ctx, parts[i], lens[i]) != 1)
            goto out;
    }
    if (EVP_MAC_final(ctx, out, &outlen, 32) != 1 || outlen != 32)
        goto out;
    rc = 0;
out:
    EVP_MAC_CTX_free(ctx);
    return rc;
}

int cmn_hmac_sha256(const void *key, size_t keylen, const void *const *parts, const size_t *lens,
                    size_t n, unsigned char out[32])
{
    return hmac_finish(hmac_start(key, keylen), parts, lens, n, out);
}

struct cmn_hmac_key {
    EVP_MAC_CTX *ready; /* initialised with the key, never updated: only copied */
};

cmn_hmac_key_t *cmn_hmac_key_new(const void *key, size_t keylen)
{
    EVP_MAC_CTX *ctx = hmac_start(key, keylen);
    if (ctx == NULL)
        return NULL;
    cmn_hmac_key_t *k = cmn_xalloc(sizeof *k);
    k->ready = ctx;
    return k;
}

void cmn_hmac_key_free(cmn_hmac_key_t *k)
{
    if (k == NULL)
        return;
    EVP_MAC_CTX_free(k->ready);
    cmn_free(k);
}

int cmn_hmac_sha256_ready(const cmn_hmac_key_t *k, const void *const *parts, const size_t *lens,
                          size_t n, unsigned char out[32])
{
    /* The copy only reads the ready context: threads may share the key. */
    return hmac_finish(EVP_MAC_CTX_dup(k->ready), parts, lens, n, out);
}

static EVP_MD *sha256;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

/* EVP_sha256() would be looked up in the providers again on every digest. */
static void fetch_sha256(void)
{
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void cmn_sha256(const void *data, size_t len, unsigned char out[32])
{
    unsigned int n = 0;
    pthread_once(&sha256_once, fetch_sha256);
    if (EVP_Digest(data, len, out, &n, sha256 ? sha256 : EVP_sha256(), NULL) != 1)
        memset(out, 0, 32);
}

void cmn_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int cmn_unhex(const char *in, size_t inlen, unsigned char *out, size_t n)
{
    if (inlen != 2 * n)
        return CMN_EPARSE;
    for (size_t i = 0; i < n; i++) {
        int hi = nibble(in[2 * i]), lo = nibble(in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return CMN_EPARSE;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

int cmn_secure_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

int cmn_random(unsigned char *out, size_t n)
{
    return RAND_bytes(out, (int)n) == 1 ? 0 : CMN_ECRYPTO;
}

/* The signed text is timestamp "\n" method "\n" path "\n" device "\n" body; with a ready key k,
 * else with key itself. */
static int lane_sign(const cmn_hmac_key_t *k, const void *key, size_t keylen,
                     const char *timestamp, const char *method, const char *path, size_t path_len,
                     const char *device, const void *body, size_t body_len, char out[65])
{
    unsigned char mac[32];
    const void *parts[] = {timestamp, "\n", method, "\n", path, "\n", device, "\n", body};
    const size_t lens[] = {strlen(timestamp), 1, strlen(method), 1, path_len, 1, strlen(device), 1,
                           body_len};
    int rc = k != NULL ? cmn_hmac_sha256_ready(k, parts, lens, 9, mac)
                       : cmn_hmac_sha256(key, keylen, parts, lens, 9, mac);
    if (rc != 0)
        return rc;
    cmn_hex(mac, 32, out);
    return 0;
}

int cmn_lane_sign(const void *key, size_t keylen, const char *timestamp, const char *method,
                  const char *path, size_t path_len, const char *device, const void *body,
                  size_t body_len, char out[65])
{
    return lane_sign(NULL, key, keylen, timestamp, method, path, path_len, device, body, body_len,
                     out);
}

int cmn_lane_sign_ready(const cmn_hmac_key_t *k, const char *timestamp, const char *method,
                        const char *path, size_t path_len, const char *device, const void *body,
                        size_t body_len, char out[65])
{
    return lane_sign(k, NULL, 0, timestamp, method, path, path_len, device, body, body_len, out);
}
