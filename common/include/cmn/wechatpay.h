#ifndef CMN_WECHATPAY_H
#define CMN_WECHATPAY_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "cmn/buf.h"

/*
 * WeChat Pay API v3 cryptography, with OpenSSL (docs/providers.md; research notes
 * payments-and-credit.md sections 2.3 to 2.5):
 *   - request signature WECHATPAY2-SHA256-RSA2048: SHA256withRSA (PKCS#1 v1.5) with the merchant's
 *     private key over  method \n  path-with-query \n  timestamp \n  nonce \n  body \n ;
 *   - response and notification signatures (headers Wechatpay-Timestamp, Wechatpay-Nonce,
 *     Wechatpay-Signature, Wechatpay-Serial) verified with the platform public key over
 *     timestamp \n  nonce \n  body \n ;
 *   - notification resources decrypted with AEAD_AES_256_GCM under the 32-byte APIv3 key
 *     (base64 ciphertext with the 16-byte tag at its end, the resource's 12-byte nonce and
 *     associated_data).
 * All functions are pure and thread-safe (no global state; the errors they cause are removed from
 * OpenSSL's error queue, errors queued before the call are kept): RSA signing takes about a
 * millisecond, so event-loop programs run it with uv_queue_work.  None of them checks the
 * 300-second timestamp window or the Wechatpay-Serial header: that is the caller's policy, which
 * knows the clock and the platform keys it trusts.
 */

/** The smallest RSA key accepted, as the scheme's name (…-RSA2048) says. */
#define CMN_WXPAY_MIN_RSA_BITS 2048

/**
 * Loads an RSA key of at least CMN_WXPAY_MIN_RSA_BITS bits from PEM text (the first block of the
 * right kind; other blocks are skipped):
 *   - cmn_pem_private_key: "PRIVATE KEY" (PKCS#8, as the merchant platform issues
 *     apiclient_key.pem) or "RSA PRIVATE KEY" (PKCS#1).  Encrypted keys are refused, never prompted
 *     for;
 *   - cmn_pem_public_key: "PUBLIC KEY" (SPKI, the WeChat Pay public key), "RSA PUBLIC KEY"
 *     (PKCS#1) or "CERTIFICATE" (the platform certificate's key; its dates and issuer are not
 *     checked here).
 * Returns 0 or CMN_ECRYPTO (malformed, not RSA, too short).  Ownership: *out is the caller's
 * (EVP_PKEY_free); on failure *out is left untouched.
 */
int cmn_pem_private_key(const void *pem, size_t len, EVP_PKEY **out);
int cmn_pem_public_key(const void *pem, size_t len, EVP_PKEY **out);

/**
 * Appends the value of the Authorization header for one request to `out`:
 *   WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",signature="…",timestamp="…",serial_no="…"
 * `path_with_query` is what follows the host ("/v3/…?a=b"), exactly as sent; `body` is the exact
 * JSON sent (NULL or empty for GET); `timestamp` is Unix seconds.  mchid, serial_no and nonce are
 * 1 to 64 printable ASCII characters without '"', ',' or '\\'; method is 1 to 16 upper-case
 * letters; the path starts with '/' and holds no space or control byte.
 * Returns 0, CMN_EINVAL (an argument breaks the rules above), CMN_ECRYPTO (not an RSA private key)
 * or CMN_ETOOBIG / CMN_ENOMEM from `out`; on failure nothing is appended.
 */
int cmn_wxpay_authorization(EVP_PKEY *merchant_key, const char *mchid, const char *serial_no,
                            const char *method, const char *path_with_query, const void *body,
                            size_t body_len, int64_t timestamp, const char *nonce, cmn_buf_t *out);

/**
 * Verifies a response's or notification's signature (the Wechatpay-Signature header, strict
 * base64) over timestamp \n nonce \n body \n with the platform's RSA public key.  The timestamp
 * must be 1 to 20 decimal digits and the nonce 1 to 64 printable ASCII characters without '"', ','
 * or '\\', as WeChat sends them.
 * Returns 0 or CMN_ECRYPTO (any mismatch or malformed input).
 */
int cmn_wxpay_verify(EVP_PKEY *platform_key, const char *timestamp, const char *nonce,
                     const void *body, size_t body_len, const char *signature_b64);

/**
 * Decrypts a notification resource: `nonce` is the resource's 12-character nonce, used as the GCM
 * IV; `associated_data` may be NULL or "" (no AAD); `ciphertext_b64` is strict base64 (no
 * whitespace, padding only at its end) of the ciphertext followed by the 16-byte tag.
 * Returns 0 with the plaintext appended to `plain`; CMN_ECRYPTO (wrong key, tampered text, tag,
 * nonce or associated data, bad base64); or CMN_ETOOBIG / CMN_ENOMEM when the plaintext does not
 * fit `plain` or memory runs out.  On failure nothing is appended.
 */
int cmn_wxpay_decrypt(const unsigned char apiv3_key[32], const char *associated_data,
                      const char *nonce, const char *ciphertext_b64, cmn_buf_t *plain);

/**
 * A random nonce of 32 characters [A-Za-z0-9] from OpenSSL's CSPRNG (NUL-terminated out[33]),
 * uniformly distributed.  Returns 0 or CMN_ECRYPTO.
 */
int cmn_wxpay_nonce(char out[33]);

/*
 * Merchant-side numbers (docs/providers.md).  WeChat allows 1 to 32 characters of [0-9A-Za-z_-*]
 * in out_parking_no and out_trade_no, each unique per merchant; ours derive from the session id
 * "<lot>~<n>" so that a retry, a replay after a crash or another billing process always sends the
 * same number, and the lot can be found back from a parking number alone (its notifications carry
 * nothing else of ours):
 *   - out_parking_no: "<lot>*<n>" when the lot id is made of [0-9A-Za-z_-] only and the whole fits,
 *     else "*<tag>*<n>" with tag = the first 12 hex digits of SHA-256(lot id);
 *   - out_trade_no of attempt a (>= 1) of the session's bill: the parking number followed by "*b"
 *     and, from the second attempt on, a's digits; when that is too long, "*" and the first 31 hex
 *     digits of SHA-256("<lot>~<n>~b#<a>").
 * The three spellings cannot meet ('*' never starts a lot id; the long form has no second '*').
 */

/** Longest number, without the NUL. */
#define CMN_WXPAY_NO_MAX 32
/** Length of a lot tag in hex digits, without the NUL. */
#define CMN_WXPAY_LOT_TAG_LEN 12

/**
 * The out_parking_no of session "<lot>~<seq>" (seq: 1 to 18 decimal digits) into out.
 * Returns 0 or CMN_EINVAL (an empty lot, a seq that is not decimal or too long).
 */
int cmn_wxpay_parking_no(const char *lot, const char *seq, char out[CMN_WXPAY_NO_MAX + 1]);

/**
 * The out_trade_no of attempt `attempt` (1 to 999999) of the bill of session "<lot>~<seq>".
 * Returns 0 or CMN_EINVAL.
 */
int cmn_wxpay_trade_no(const char *lot, const char *seq, int attempt,
                       char out[CMN_WXPAY_NO_MAX + 1]);

/**
 * The out_refund_no of refund `refund` (1 to 999999) of the bill of session "<lot>~<seq>":
 * "<out_parking_no>*r<refund>", or hashed like a long out_trade_no.  Returns 0 or CMN_EINVAL.
 */
int cmn_wxpay_refund_no(const char *lot, const char *seq, int refund,
                        char out[CMN_WXPAY_NO_MAX + 1]);

/** The tag of a lot id in the hashed spelling: 12 lower-case hex digits and a NUL. */
void cmn_wxpay_lot_tag(const char *lot, char out[CMN_WXPAY_LOT_TAG_LEN + 1]);

/**
 * Splits an out_parking_no made by cmn_wxpay_parking_no: `lot` receives the lot id (plain
 * spelling, *hashed = 0) or the lot tag to compare with cmn_wxpay_lot_tag (*hashed = 1), `seq` the
 * session number.  Returns 0, CMN_EPARSE (not one of ours) or CMN_ETOOBIG (a buffer is too small).
 */
int cmn_wxpay_parking_no_parse(const char *no, char *lot, size_t lotsz, int *hashed, char *seq,
                               size_t seqsz);

#endif
