#ifndef CMN_ERR_H
#define CMN_ERR_H

/*
 * Error codes of the project.  Functions return 0 on success and a negative value on failure;
 * libuv's own codes (UV_E*) pass through unchanged, ours live below -10000 so the two never meet.
 */

#define CMN_ERR_MAP(XX)                                                                            \
    XX(AGAIN, "need more input")                                                                   \
    XX(NOMEM, "out of memory")                                                                     \
    XX(TOOBIG, "input exceeds its limit")                                                          \
    XX(INVAL, "invalid argument")                                                                  \
    XX(PROTO, "protocol error")                                                                    \
    XX(PARSE, "malformed input")                                                                   \
    XX(RANGE, "value out of range")                                                                \
    XX(NOTFOUND, "not found")                                                                      \
    XX(IO, "input/output error")                                                                   \
    XX(CRYPTO, "cryptographic operation failed")                                                   \
    XX(CONFIG, "invalid configuration")                                                            \
    XX(TZ, "time zone error")                                                                      \
    XX(UNREADABLE, "plate unreadable")                                                             \
    XX(TIMEOUT, "operation timed out")

enum {
    CMN_ERR_BASE_ = -10000,
#define XX(code, _) CMN_E##code,
    CMN_ERR_MAP(XX)
#undef XX
        CMN_ERR_END_
};

/** CMN_AGAIN is the incremental parsers' "need more bytes"; it is never logged as an error. */
#define CMN_AGAIN CMN_EAGAIN

/** A static English description of rc (one of ours, a libuv code, or 0). Never NULL. */
const char *cmn_strerror(int rc);

/** The symbolic name of rc ("CMN_EPARSE", "ECONNREFUSED"), for logs. Never NULL. */
const char *cmn_errname(int rc);

#endif
