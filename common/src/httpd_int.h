#ifndef CMN_HTTPD_INT_H
#define CMN_HTTPD_INT_H

#include <stddef.h>

#include "cmn/httpd.h"

/*
 * A loopback connection (h2o's h2o_loopback_create): the server's per-connection code, parser,
 * limits and response writer included, driven by bytes from memory instead of a socket.  For the
 * fuzzer (tests/fuzz/fuzz_http_req.c) and for tests that need exact control over how input is
 * split.  Nothing here touches a loop, a socket or a timer; "later turns" become explicit calls to
 * cmn__httpd_loopback_run().
 *
 * Differences from a socket connection, all in the transport only: output is never written
 * anywhere, it accumulates (see cmn__httpd_loopback_output), so there is no backpressure; a close
 * happens at once (no shutdown, no lingering); timers fire only when cmn__httpd_loopback_timeout()
 * is called.
 *
 * Threading: one thread per loopback connection.  Not for use in the gateway proper.
 */

typedef struct cmn__httpd_loopback cmn__httpd_loopback_t;

/**
 * A new connection with its own copy of the limits in cfg (host and port are ignored).
 * handler(req, data) runs from inside feed/run; it may respond at once or later, by calling
 * cmn_httpd_respond() between calls.
 * Ownership: free with cmn__httpd_loopback_free().
 */
cmn__httpd_loopback_t *cmn__httpd_loopback_new(const cmn_httpd_config_t *cfg, cmn_httpd_handler_cb handler,
                                           void *data);

/**
 * Delivers bytes as the socket would: only while the connection would read (never while unparsed
 * input is buffered, at most one read buffer while the handler holds a request, never after a
 * close), running deferred work in between.  Returns how many bytes were taken; fewer than len
 * means the connection stopped reading (closed, or waiting for a response).
 */
size_t cmn__httpd_loopback_feed(cmn__httpd_loopback_t *lb, const void *data, size_t len);

/** Runs the deferred work a loop turn would run (resume parsing, flush) until none is left. */
void cmn__httpd_loopback_run(cmn__httpd_loopback_t *lb);

/** The peer closed its side (read returned EOF), delivered when the connection would read. */
void cmn__httpd_loopback_eof(cmn__httpd_loopback_t *lb);

/** The connection's timer fires now (idle, request or drain timeout, whichever is armed). */
void cmn__httpd_loopback_timeout(cmn__httpd_loopback_t *lb);

/** Everything the server has sent so far (borrowed; valid until the next call). */
const char *cmn__httpd_loopback_output(const cmn__httpd_loopback_t *lb, size_t *len);

/** 1 once the server side has closed the connection. */
int cmn__httpd_loopback_closed(const cmn__httpd_loopback_t *lb);

/** 1 while a request is with the handler (handed over, not yet responded to). */
int cmn__httpd_loopback_busy(const cmn__httpd_loopback_t *lb);

const cmn_httpd_stats_t *cmn__httpd_loopback_stats(const cmn__httpd_loopback_t *lb);

/**
 * Closes and frees.  A request still with the handler is detached: cmn_httpd_respond() on it later
 * just frees it.
 */
void cmn__httpd_loopback_free(cmn__httpd_loopback_t *lb);

#endif
