#ifndef LPR_FWD_H
#define LPR_FWD_H

#include <stddef.h>
#include <uv.h>

#include "cmn/http_client.h"

/*
 * The bridge's client for its one busy peer: POSTs of events to a plain http:// gateway, HTTP/1.1
 * on keep-alive connections driven by libuv streams directly, responses read with http_parser.
 *
 * Why not cmn/http_client (libcurl) for these: on the city day a camera read costs one forward,
 * and curl's per-transfer work (an easy handle set up and torn down, its connection cache, the
 * socket handed back and forth through CURLMOPT_SOCKETFUNCTION: a poll handle closed and opened
 * and four to six epoll_ctl per request, a poll() to check a reused connection) was a quarter of
 * the bridge's CPU.  Here a connection stays watched while idle (the gateway closing it is seen at
 * once) and a request is one write.  Everything else (https, digest authentication, the barrier
 * webhooks, lane-command polls) stays with libcurl.
 *
 * Semantics follow cmn_http_request, which the bridge used before for the same requests:
 *   - at most max_conns connections, requests beyond them wait in FIFO order (their timeouts start
 *     when they get a connection); idle connections are kept for reuse;
 *   - a connect timeout and a total timeout; errors as cmn_http_response_t says (CMN_ETIMEOUT,
 *     CMN_EIO, CMN_ETOOBIG past 1 MiB of body); `headers` of the response is always "";
 *   - a request that finds its reused connection closed by the peer before any byte of the answer
 *     came back (the gateway dropping an idle connection as the request went out) is sent once
 *     more on a new connection, as curl does;
 *   - the callback runs exactly once, never inside lpr_fwd_post.
 * Only the loop thread.
 */

typedef struct lpr_fwd lpr_fwd_t;

/**
 * A client of `base_url` ("http://host[:port][/prefix]", the host a name, an IPv4 address or a
 * bracketed IPv6 one).  Returns 0 and *out, or CMN_EINVAL for any URL it does not take (https,
 * user information, a query): the caller then uses libcurl.
 */
int lpr_fwd_new(uv_loop_t *loop, const char *base_url, size_t max_conns, lpr_fwd_t **out);

/**
 * POSTs `body` to base_url + path with the given header lines ("Name: value", no CRLF; Host and
 * Content-Length are added).  Everything is copied.  Returns 0 (cb will run), or CMN_EINVAL (a
 * closing client, a CR or LF in a header or the path) and cb will not run.
 */
int lpr_fwd_post(lpr_fwd_t *f, const char *path, const char *const *headers, size_t nheaders,
                 const char *body, size_t body_len, long connect_timeout_ms, long timeout_ms,
                 cmn_http_cb cb, void *data);

/**
 * Fails what is queued or running (CMN_EIO "cancelled", on a later turn), closes every connection,
 * frees the client, then done(data), always on a later turn and after every callback.
 */
void lpr_fwd_close(lpr_fwd_t *f, void (*done)(void *data), void *data);

#endif
