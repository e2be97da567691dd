#ifndef CMN_HTTPD_H
#define CMN_HTTPD_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/*
 * The gateway's HTTP/1.1 server on one libuv loop.  Requests are parsed by http-parser (Debian's
 * libhttp-parser), never by hand.  Keep-alive and pipelining: a connection's requests are handed to
 * the handler one at a time, in order; the next one is parsed only once the previous response has
 * been queued, so responses always leave in request order.  Limits: header bytes, body bytes,
 * idle and request timeouts, and a cap on open connections.
 *
 * The server answers these by itself, each with a JSON body {"error": CODE, "message": TEXT} and
 * `Connection: close`:
 *   413 too_large     body larger than max_body_bytes (known from Content-Length before the body
 *                     is read, or as soon as a chunked body passes the limit)
 *   431 too_large     headers larger than max_header_bytes
 *   400 bad_request   malformed HTTP (and a request line or header the parser rejects, a control
 *                     character in a header value, Content-Length together with chunked)
 *   408 timeout       a request not received whole within request_timeout_ms of its first byte
 *   503 unavailable   the connection cap is reached (the new connection gets this and is closed)
 *   505 bad_request   an HTTP version other than 1.0 and 1.1
 * Idle keep-alive connections are closed silently after idle_timeout_ms.  After a response with
 * `Connection: close` the server shuts down its side and reads (and discards) what the client still
 * sends for up to a second, so that closing does not turn into a reset that destroys the response.
 *
 * An `Expect: 100-continue` request within the limits gets `100 Continue` before its body is read.
 *
 * Threading: everything runs on the loop thread.  Callbacks never run synchronously from inside a
 * public call.  Writing to a client that has gone raises SIGPIPE: like every libuv program, the
 * process must ignore it (signal(SIGPIPE, SIG_IGN)) before starting the server.
 */

typedef struct cmn_httpd cmn_httpd_t;

typedef struct cmn_httpd_header {
    const char *name; /* as received (compare case-insensitively) */
    size_t name_len;
    const char *value; /* leading and trailing white space removed */
    size_t value_len;
} cmn_httpd_header_t;

/** One request.  Everything it points to stays valid until cmn_httpd_respond() is called for it. */
typedef struct cmn_httpd_req {
    int method;         /* http-parser's enum http_method: HTTP_GET, HTTP_POST, ... */
    const char *url;    /* the request target as received: path and query, not decoded */
    size_t url_len;
    const char *body; /* NUL-terminated for convenience; body_len excludes the NUL */
    size_t body_len;
    const cmn_httpd_header_t *headers;
    size_t nheaders;
    uint64_t received_ns; /* uv_hrtime() when the request was complete */
    void *internal;       /* the server's; do not touch */
} cmn_httpd_req_t;

/**
 * Called once per complete request.  The handler must call cmn_httpd_respond() exactly once for it,
 * now or later (after asynchronous work).  If the client disconnects first, the request stays valid
 * and the response is discarded.  (A client that only half-closes, shutting down its sending side,
 * still gets the response, with `Connection: close`.)
 */
typedef void (*cmn_httpd_handler_cb)(cmn_httpd_req_t *req, void *data);

typedef struct cmn_httpd_config {
    const char *host;            /* numeric address to bind: "127.0.0.1", "0.0.0.0", "::1" */
    int port;                    /* 0: any free port (see cmn_httpd_port) */
    size_t max_header_bytes;     /* request line and header lines, CRLFs included (http-parser
                                    answers 431 past 80 KiB whatever this says) */
    size_t max_body_bytes;       /* decoded body (chunked: the data without the framing) */
    size_t max_connections;      /* open connections; the next one gets 503 */
    uint64_t idle_timeout_ms;    /* 0: none */
    uint64_t request_timeout_ms; /* from a request's first byte to its last; 0: none */
} cmn_httpd_config_t;

/** Connection and request counters, for /metrics. */
typedef struct cmn_httpd_stats {
    uint64_t connections_open;      /* admitted and not yet closed (rejected ones not included) */
    uint64_t connections_accepted;  /* admitted since start */
    uint64_t connections_rejected;  /* over the cap (answered 503) */
    uint64_t requests;              /* handed to the handler */
    uint64_t responses_by_class[6]; /* [1]..[5]: 1xx..5xx queued, the server's own errors and
                                       100 Continue included; discarded responses are not */
} cmn_httpd_stats_t;

/**
 * Binds and listens.  Returns 0 and *out, or a negative libuv code (UV_EADDRINUSE, UV_EINVAL for a
 * host that is not a numeric address, ...) with *out set to NULL; what a failed start allocated is
 * released by the loop on its next turns (run it before uv_loop_close).
 * Ownership: the server is freed by cmn_httpd_close().
 */
int cmn_httpd_start(uv_loop_t *loop, const cmn_httpd_config_t *cfg, cmn_httpd_handler_cb handler,
                         void *data, cmn_httpd_t **out);

/** The bound port (useful with port 0). */
int cmn_httpd_port(const cmn_httpd_t *s);

/**
 * Replaces the limits (e.g. after a configuration reload); applies to requests parsed from now.
 * host and port are ignored.  Loop thread only.
 */
void cmn_httpd_set_limits(cmn_httpd_t *s, const cmn_httpd_config_t *cfg);

const cmn_httpd_stats_t *cmn_httpd_stats(const cmn_httpd_t *s);

/**
 * Graceful shutdown: stops accepting, closes idle connections, lets requests already received get
 * their responses (and closes each connection once its last response is written), then frees the
 * server and calls done(data) on a later loop turn.  Requests that arrive on those connections
 * after this call are not read.
 */
void cmn_httpd_close(cmn_httpd_t *s, void (*done)(void *data), void *data);

/**
 * The value of header `name` (case-insensitive), or NULL.  *len receives its length.  Borrowed
 * from req.
 */
const char *cmn_httpd_req_header(const cmn_httpd_req_t *req, const char *name, size_t *len);

/**
 * Sends the response to req: status, Content-Type (may be NULL for none), body (copied), plus
 * Content-Length, Date-less minimal headers, and `Connection: keep-alive` or `close` as the request
 * and server state say.  `extra_headers` may be NULL or hold complete lines each ending in "\r\n".
 * A response to HEAD carries the Content-Length but not the body; 1xx, 204 and 304 carry neither.
 * A status outside 100..599 is sent as 500.  Nothing is written before this call returns (output
 * is flushed on a later loop turn), and the connection's next request is parsed on a later turn.
 * After this call req and everything it pointed to are gone.
 */
void cmn_httpd_respond(cmn_httpd_req_t *req, int status, const char *content_type, const char *body,
                     size_t body_len, const char *extra_headers);

/** The reason phrase of a status code ("OK", "Not Found", ...). */
const char *cmn_httpd_status_text(int status);

#endif
