#ifndef CMN_CRYPTO_H
#define CMN_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

/*
 * Cryptography through OpenSSL only.  MACs and signatures are compared with CRYPTO_memcmp.
 */

/** HMAC-SHA256 over the concatenation of n parts.  Returns 0 or CMN_ECRYPTO. */
int cmn_hmac_sha256(const void *key, size_t keylen, const void *const *parts, const size_t *lens,
                    size_t n, unsigned char out[32]);

/*
 * An HMAC-SHA256 key made ready once (the digest fetched, the padded key hashed): each MAC then
 * copies that state instead of starting over, for keys used on every request (a lane device's).
 */
typedef struct cmn_hmac_key cmn_hmac_key_t;

/** NULL when OpenSSL refuses the key.  Ownership: the caller's; cmn_hmac_key_free. */
cmn_hmac_key_t *cmn_hmac_key_new(const void *key, size_t keylen);
void cmn_hmac_key_free(cmn_hmac_key_t *k);
/** As cmn_hmac_sha256 with a ready key.  Safe from several threads on the same key. */
int cmn_hmac_sha256_ready(const cmn_hmac_key_t *k, const void *const *parts, const size_t *lens,
                          size_t n, unsigned char out[32]);

/** SHA-256 of data. */
void cmn_sha256(const void *data, size_t len, unsigned char out[32]);

/** Lower-case hex of n bytes into out (2n + 1 bytes with the NUL). */
void cmn_hex(const unsigned char *in, size_t n, char *out);

/** Decodes exactly 2n hex digits (either case) into n bytes.  Returns 0 or CMN_EPARSE. */
int cmn_unhex(const char *in, size_t inlen, unsigned char *out, size_t n);

/** Constant-time equality of two byte strings of the same length (0: differ). */
int cmn_secure_equal(const void *a, const void *b, size_t n);

/** Fills out with n cryptographically random bytes.  Returns 0 or CMN_ECRYPTO. */
int cmn_random(unsigned char *out, size_t n);

/**
 * The lane API's request signature (docs/lane-api.md): lower-case hex of HMAC-SHA256(key,
 * timestamp "\n" method "\n" path-with-query "\n" device "\n" body), 64 digits and a NUL in out.
 */
int cmn_lane_sign(const void *key, size_t keylen, const char *timestamp, const char *method,
                  const char *path, size_t path_len, const char *device, const void *body,
                  size_t body_len, char out[65]);
/** The same signature with a ready key. */
int cmn_lane_sign_ready(const cmn_hmac_key_t *k, const char *timestamp, const char *method,
                        const char *path, size_t path_len, const char *device, const void *body,
                        size_t body_len, char out[65]);

#endif
