#ifndef GW_HTTP_INT_H
#define GW_HTTP_INT_H

#include <stddef.h>

#include "http.h"

/*
 * A loopback connection (h2o's h2o_loopback_create): the server's per-connection code, parser,
 * limits and response writer included, driven by bytes from memory instead of a socket.  For the
 * fuzzer (tests/fuzz/fuzz_http_req.c) and for tests that need exact control over how input is
 * split.  Nothing here touches a loop, a socket or a timer; "later turns" become explicit calls to
 * gw__http_loopback_run().
 *
 * Differences from a socket connection, all in the transport only: output is never written
 * anywhere, it accumulates (see gw__http_loopback_output), so there is no backpressure; a close
 * happens at once (no shutdown, no lingering); timers fire only when gw__http_loopback_timeout()
 * is called.
 *
 * Threading: one thread per loopback connection.  Not for use in the gateway proper.
 */

typedef struct gw__http_loopback gw__http_loopback_t;

/**
 * A new connection with its own copy of the limits in cfg (host and port are ignored).
 * handler(req, data) runs from inside feed/run; it may respond at once or later, by calling
 * gw_http_respond() between calls.
 * Ownership: free with gw__http_loopback_free().
 */
gw__http_loopback_t *gw__http_loopback_new(const gw_http_config_t *cfg, gw_http_handler_cb handler,
                                           void *data);

/**
 * Delivers bytes as the socket would: only while the connection would read (never while unparsed
 * input is buffered, at most one read buffer while the handler holds a request, never after a
 * close), running deferred work in between.  Returns how many bytes were taken; fewer than len
 * means the connection stopped reading (closed, or waiting for a response).
 */
size_t gw__http_loopback_feed(gw__http_loopback_t *lb, const void *data, size_t len);

/** Runs the deferred work a loop turn would run (resume parsing, flush) until none is left. */
void gw__http_loopback_run(gw__http_loopback_t *lb);

/** The peer closed its side (read returned EOF), delivered when the connection would read. */
void gw__http_loopback_eof(gw__http_loopback_t *lb);

/** The connection's timer fires now (idle, request or drain timeout, whichever is armed). */
void gw__http_loopback_timeout(gw__http_loopback_t *lb);

/** Everything the server has sent so far (borrowed; valid until the next call). */
const char *gw__http_loopback_output(const gw__http_loopback_t *lb, size_t *len);

/** 1 once the server side has closed the connection. */
int gw__http_loopback_closed(const gw__http_loopback_t *lb);

/** 1 while a request is with the handler (handed over, not yet responded to). */
int gw__http_loopback_busy(const gw__http_loopback_t *lb);

const gw_http_stats_t *gw__http_loopback_stats(const gw__http_loopback_t *lb);

/**
 * Closes and frees.  A request still with the handler is detached: gw_http_respond() on it later
 * just frees it.
 */
void gw__http_loopback_free(gw__http_loopback_t *lb);

#endif
