#ifndef CMN_HTTP_CLIENT_H
#define CMN_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/*
 * Outbound HTTP on a libuv loop: libcurl's multi interface wired to the loop (the socket callback
 * maps each socket to a uv_poll_t, the timer callback to one uv_timer_t; curl's docs/examples/
 * multi-uv.c), never curl_easy_perform.  Every request has a connect timeout and a total timeout.
 * At most `max_in_flight` transfers run at once; further requests wait in a FIFO queue.
 *
 * Threading: one loop thread.  Callbacks never run synchronously inside a public call.
 */

typedef struct cmn_http_client cmn_http_client_t;

typedef struct cmn_http_request {
    const char *method;         /* "GET", "POST", ... (an HTTP token, case-sensitive) */
    const char *url;            /* absolute http:// or https:// URL */
    const char *const *headers; /* complete "Name: value" lines, no CRLF.  No Content-Type given:
                                   none is sent.  Expect: 100-continue is never sent unless given */
    size_t nheaders;
    const void *body; /* may be NULL when body_len is 0; binary safe.  Sent with a
                         Content-Length when body_len > 0 and for POST, PUT and PATCH
                         (then possibly empty); HEAD never sends one */
    size_t body_len;
    long connect_timeout_ms;   /* 0: 2000 */
    long timeout_ms;           /* total, queueing excluded; 0: 10000 */
    size_t max_response_bytes; /* 0: 1 MiB; a larger body fails with CMN_ETOOBIG */
    const char *username;      /* non-NULL: HTTP digest authentication (e.g. a camera's ISAPI) */
    const char *password;
} cmn_http_request_t;

typedef struct cmn_http_response {
    int error;              /* 0: an HTTP response arrived (any status); else CMN_ETIMEOUT (connect
                               or total timeout), CMN_EIO (refused, reset, DNS, TLS, cancelled by
                               cmn_http_client_close) or CMN_ETOOBIG (response over the cap) */
    const char *error_text; /* curl's description when error != 0, else "" */
    long status;            /* HTTP status, 0 when error != 0 */
    const char *body;       /* NUL-terminated; body_len excludes the NUL; "" when error != 0 */
    size_t body_len;
    const char *headers; /* the raw header block of the final response (status line and CRLFs
                            included, 1xx responses and trailers not); "" when error != 0 */
    size_t headers_len;
    uint64_t elapsed_ms; /* from the transfer's start (after queueing) to completion */
} cmn_http_response_t;

/** Completion: `resp` and everything it points to are borrowed for the callback's duration. */
typedef void (*cmn_http_cb)(void *data, const cmn_http_response_t *resp);

/**
 * Creates a client on `loop` that runs at most `max_in_flight` (>= 1) transfers at once and keeps
 * up to that many idle connections for reuse.  Returns 0 and *out, CMN_EINVAL, or CMN_EIO when
 * libcurl cannot be initialised (*out is then NULL).
 * Ownership: free with cmn_http_client_close().
 */
int cmn_http_client_new(uv_loop_t *loop, size_t max_in_flight, cmn_http_client_t **out);

/**
 * Starts (or queues) a request; everything in `req` is copied.  Returns 0 (cb will run exactly
 * once, on a later loop turn) or a negative error for unusable arguments (cb will not run):
 * CMN_EINVAL for a bad method, URL or header line (a line with CR or LF included), a negative
 * timeout, or a client that is closing; CMN_ENOMEM when the body cannot be copied.  Requests start
 * in FIFO order.
 */
int cmn_http_request(cmn_http_client_t *c, const cmn_http_request_t *req, cmn_http_cb cb,
                     void *data);

/**
 * The value of response header `name` (case-insensitive, the last occurrence), or NULL.  The value
 * has its surrounding white space removed and is NOT NUL-terminated: *len (when len is not NULL)
 * receives its length, 0 when the header is absent.  Borrowed from resp.
 */
const char *cmn_http_response_header(const cmn_http_response_t *resp, const char *name,
                                     size_t *len);

typedef struct cmn_http_client_stats {
    size_t in_flight;
    size_t queued;
    unsigned long long completed; /* responses of any status */
    unsigned long long failed;    /* transfers that ended with an error */
} cmn_http_client_stats_t;

/** Counters; the pointer stays valid until cmn_http_client_close() is called. */
const cmn_http_client_stats_t *cmn_http_client_stats(const cmn_http_client_t *c);

/**
 * Stops: queued and running requests complete with error CMN_EIO ("cancelled") on a later loop
 * turn, all handles are closed, then done(data) runs, after every request callback.  done may be
 * NULL. May be called from a request callback.  Later calls on a closing client are ignored;
 * cmn_http_request() on it returns CMN_EINVAL.  The client is freed before done runs.
 */
void cmn_http_client_close(cmn_http_client_t *c, void (*done)(void *data), void *data);

#endif
