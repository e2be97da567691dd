/*
 * Unit tests of lpr-bridge/fwd.h, the bridge's keep-alive client for event POSTs, against a
 * loopback server of the test's own on the same loop.  The server reads whole requests (head and
 * Content-Length body), counts connections and requests, keeps the last request's bytes, and
 * answers as the test's mode says: keep-alive, Connection: close, a dropped second request on a
 * connection, silence, a body over the client's limit, chunked, a body ended by the close, or a
 * keep-alive answer followed by the server closing the idle connection, an interim 100 first.
 *
 * Client callbacks only record (cmocka's assertions longjmp, which a loop callback must not do),
 * and whether they ran inside lpr_fwd_post (never allowed); the test body asserts once the loop
 * stops.  Every test ends with the client and the server closed and uv_loop_close() == 0, so a
 * leaked handle fails it.  No timing is asserted: the one timeout test only needs the error.
 */
#define _GNU_SOURCE /* memmem, strcasestr */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "cmn/err.h"
#include "fwd.h"

enum mode {
    M_KEEP,
    M_CLOSE,
    M_DROP_SECOND,
    M_SILENT,
    M_BIG,
    M_CHUNKED,
    M_EOF_BODY,
    M_IDLE_CLOSE,
    M_INTERIM
};

#define MAX_RESULTS 16

struct result {
    int error;
    long status;
    char body[256];
};

struct sconn {
    uv_tcp_t tcp;
    char buf[16384];
    size_t len;
    int nreq;
};

static struct {
    uv_loop_t loop;
    uv_tcp_t srv;
    int port;
    enum mode mode;
    int accepted, requests;
    char last[4096];
    lpr_fwd_t *f;
    int in_post, sync_calls;
    struct result res[MAX_RESULTS];
    int nres, want;
    int chain; /* requests still to post one after the other, from the callbacks */
    int fwd_done, done_before_cb;
    uv_timer_t later, watchdog;
    struct sconn *sconns[64]; /* the server's connections, for teardown */
    int nsconns;
} T;

/* ---- the server ----------------------------------------------------------------------------- */

static void sconn_closed(uv_handle_t *h)
{
    for (int i = 0; i < T.nsconns; i++) {
        if (T.sconns[i] == h->data)
            T.sconns[i] = T.sconns[--T.nsconns];
    }
    free(h->data);
}

static void sconn_close(struct sconn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, sconn_closed);
}

struct swrite {
    uv_write_t w;
    struct sconn *c;
    int close_after;
    char *data;
};

static void swritten(uv_write_t *w, int status)
{
    struct swrite *sw = (struct swrite *)w;
    (void)status;
    if (sw->close_after)
        sconn_close(sw->c);
    free(sw->data);
    free(sw);
}

static void ssend(struct sconn *c, const char *data, size_t len, int close_after)
{
    struct swrite *sw = calloc(1, sizeof *sw);
    sw->c = c;
    sw->close_after = close_after;
    sw->data = malloc(len);
    memcpy(sw->data, data, len);
    uv_buf_t b = uv_buf_init(sw->data, (unsigned)len);
    if (uv_write(&sw->w, (uv_stream_t *)&c->tcp, &b, 1, swritten) != 0)
        swritten(&sw->w, -1);
}

static void answer(struct sconn *c)
{
    char msg[256];
    int n;
    switch (T.mode) {
    case M_SILENT:
        return;
    case M_DROP_SECOND:
        if (c->nreq > 1)
            return sconn_close(c);
        /* fall through */
    case M_KEEP:
    case M_IDLE_CLOSE:
    case M_CLOSE: {
        char body[32];
        int bl = snprintf(body, sizeof body, "{\"n\":%d}", T.requests);
        n = snprintf(msg, sizeof msg,
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n%sContent-Length: "
                     "%d\r\n\r\n%s",
                     T.mode == M_CLOSE ? "Connection: close\r\n" : "", bl, body);
        return ssend(c, msg, (size_t)n, T.mode == M_CLOSE || T.mode == M_IDLE_CLOSE);
    }
    case M_CHUNKED:
        n = snprintf(msg, sizeof msg, "HTTP/1.1 409 Conflict\r\nTransfer-Encoding: chunked\r\n\r\n"
                                      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
        return ssend(c, msg, (size_t)n, 0);
    case M_EOF_BODY:
        n = snprintf(msg, sizeof msg, "HTTP/1.1 503 Unavailable\r\n\r\nuntil the end");
        return ssend(c, msg, (size_t)n, 1);
    case M_INTERIM:
        n = snprintf(msg, sizeof msg, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n"
                                      "Content-Length: 2\r\n\r\nok");
        return ssend(c, msg, (size_t)n, 0);
    case M_BIG: {
        size_t big = (2u << 20) + 1;
        n = snprintf(msg, sizeof msg, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", big);
        char *all = malloc((size_t)n + big);
        memcpy(all, msg, (size_t)n);
        memset(all + n, 'x', big);
        ssend(c, all, (size_t)n + big, 0);
        free(all);
        return;
    }
    }
}

static void salloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct sconn *c = h->data;
    (void)suggested;
    buf->base = c->buf + c->len;
    buf->len = sizeof c->buf - c->len;
}

static void sread(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct sconn *c = s->data;
    (void)buf;
    if (n < 0)
        return sconn_close(c);
    c->len += (size_t)n;
    for (;;) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (end == NULL)
            return;
        size_t head = (size_t)(end - c->buf) + 4;
        size_t body = 0;
        char save = c->buf[head - 1];
        c->buf[head - 1] = '\0';
        char *cl = strcasestr(c->buf, "\r\nContent-Length:");
        if (cl != NULL)
            body = (size_t)strtoul(cl + 17, NULL, 10);
        c->buf[head - 1] = save;
        if (c->len < head + body)
            return;
        size_t total = head + body;
        size_t keep = total < sizeof T.last - 1 ? total : sizeof T.last - 1;
        memcpy(T.last, c->buf, keep);
        T.last[keep] = '\0';
        T.requests++;
        c->nreq++;
        memmove(c->buf, c->buf + total, c->len - total);
        c->len -= total;
        answer(c);
        if (uv_is_closing((uv_handle_t *)&c->tcp))
            return;
    }
}

static void on_sconn(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    struct sconn *c = calloc(1, sizeof *c);
    uv_tcp_init(&T.loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        sconn_close(c);
        return;
    }
    T.accepted++;
    if (T.nsconns < 64)
        T.sconns[T.nsconns++] = c;
    uv_read_start((uv_stream_t *)&c->tcp, salloc, sread);
}

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    uv_stop(&T.loop); /* the test then finds fewer results than it waits for */
}

static int setup(void **state)
{
    (void)state;
    memset(&T, 0, sizeof T);
    if (uv_loop_init(&T.loop) != 0)
        return -1;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(&T.loop, &T.srv);
    if (uv_tcp_bind(&T.srv, (const struct sockaddr *)&a, 0) != 0 ||
        uv_listen((uv_stream_t *)&T.srv, 64, on_sconn) != 0)
        return -1;
    struct sockaddr_in got;
    int len = sizeof got;
    uv_tcp_getsockname(&T.srv, (struct sockaddr *)&got, &len);
    T.port = ntohs(got.sin_port);
    uv_timer_init(&T.loop, &T.later);
    uv_timer_init(&T.loop, &T.watchdog);
    uv_timer_start(&T.watchdog, on_watchdog, 15000, 0);
    return 0;
}

static void on_fwd_done(void *data)
{
    (void)data;
    T.fwd_done++;
}

static int teardown(void **state)
{
    (void)state;
    uv_timer_stop(&T.watchdog);
    if (T.f != NULL)
        lpr_fwd_close(T.f, on_fwd_done, NULL);
    /* The server's handles; the client closes its own. */
    while (T.nsconns > 0) {
        struct sconn *c = T.sconns[--T.nsconns];
        if (!uv_is_closing((uv_handle_t *)&c->tcp))
            uv_close((uv_handle_t *)&c->tcp, sconn_closed);
    }
    if (!uv_is_closing((uv_handle_t *)&T.srv))
        uv_close((uv_handle_t *)&T.srv, NULL);
    uv_close((uv_handle_t *)&T.later, NULL);
    uv_close((uv_handle_t *)&T.watchdog, NULL);
    uv_run(&T.loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&T.loop);
    if (T.f != NULL && T.fwd_done != 1)
        return -1;
    return rc == 0 ? 0 : -1;
}

/* ---- the client ----------------------------------------------------------------------------- */

static void post(int i);

static void on_resp(void *data, const cmn_http_response_t *r)
{
    (void)data;
    if (T.in_post)
        T.sync_calls++;
    if (T.fwd_done)
        T.done_before_cb++;
    if (T.nres < MAX_RESULTS) {
        struct result *x = &T.res[T.nres];
        x->error = r->error;
        x->status = r->status;
        snprintf(x->body, sizeof x->body, "%.*s", (int)(r->body_len < 255 ? r->body_len : 255),
                 r->body);
    }
    T.nres++;
    if (T.chain > 0) {
        T.chain--;
        post(T.nres);
    }
    if (T.nres >= T.want)
        uv_stop(&T.loop);
}

static long timeout_ms = 5000;

static void post(int i)
{
    static const char *const headers[] = {"Content-Type: application/json", "X-A: b"};
    (void)i;
    T.in_post = 1;
    int rc = lpr_fwd_post(T.f, "/v1/events", headers, 2, "hello", 5, 2000, timeout_ms, on_resp,
                          NULL);
    T.in_post = 0;
    if (rc != 0)
        T.nres += 100; /* shows up as a wrong count */
}

static void client(const char *path, size_t max_conns)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", T.port, path);
    assert_int_equal(lpr_fwd_new(&T.loop, url, max_conns, &T.f), 0);
}

static void run(int want)
{
    T.want = want;
    uv_run(&T.loop, UV_RUN_DEFAULT);
    assert_int_equal(T.nres, want);
    assert_int_equal(T.sync_calls, 0);
}

static void test_keepalive_reuses_one_connection(void **state)
{
    (void)state;
    T.mode = M_KEEP;
    client("/pre", 4);
    T.chain = 2;
    post(0);
    run(3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(T.res[i].error, 0);
        assert_int_equal(T.res[i].status, 200);
        char want[32];
        snprintf(want, sizeof want, "{\"n\":%d}", i + 1);
        assert_string_equal(T.res[i].body, want);
    }
    assert_int_equal(T.accepted, 1);
    char host[64];
    snprintf(host, sizeof host, "\r\nHost: 127.0.0.1:%d\r\n", T.port);
    assert_true(strncmp(T.last, "POST /pre/v1/events HTTP/1.1\r\n", 30) == 0);
    assert_non_null(strstr(T.last, host));
    assert_non_null(strstr(T.last, "\r\nContent-Type: application/json\r\n"));
    assert_non_null(strstr(T.last, "\r\nX-A: b\r\n"));
    assert_non_null(strstr(T.last, "\r\nContent-Length: 5\r\n\r\nhello"));
}

static void test_connection_close_opens_another(void **state)
{
    (void)state;
    T.mode = M_CLOSE;
    client("", 4);
    T.chain = 1;
    post(0);
    run(2);
    assert_int_equal(T.res[0].status, 200);
    assert_int_equal(T.res[1].status, 200);
    assert_int_equal(T.accepted, 2);
    assert_true(strncmp(T.last, "POST /v1/events HTTP/1.1\r\n", 26) == 0);
}

static void test_dropped_on_reuse_is_sent_again(void **state)
{
    (void)state;
    T.mode = M_DROP_SECOND;
    client("", 4);
    T.chain = 1;
    post(0);
    run(2);
    assert_int_equal(T.res[0].status, 200);
    assert_int_equal(T.res[1].error, 0);
    assert_int_equal(T.res[1].status, 200);
    assert_int_equal(T.accepted, 2);
    assert_int_equal(T.requests, 3); /* the dropped one, then again on a new connection */
}

static void on_later(uv_timer_t *t)
{
    (void)t;
    post(1);
}

static void test_idle_connection_closed_by_the_peer(void **state)
{
    (void)state;
    T.mode = M_IDLE_CLOSE;
    client("", 4);
    post(0);
    run(1);
    /* The server closes after its answer; a while later the next request needs a new one. */
    uv_timer_start(&T.later, on_later, 100, 0);
    run(2);
    assert_int_equal(T.res[0].status, 200);
    assert_int_equal(T.res[1].error, 0);
    assert_int_equal(T.res[1].status, 200);
    assert_int_equal(T.accepted, 2);
}

static void test_silence_times_out(void **state)
{
    (void)state;
    T.mode = M_SILENT;
    client("", 4);
    timeout_ms = 200;
    post(0);
    timeout_ms = 5000;
    run(1);
    assert_int_equal(T.res[0].error, CMN_ETIMEOUT);
    assert_int_equal(T.res[0].status, 0);
}

static void test_refused_fails_on_a_later_turn(void **state)
{
    (void)state;
    /* A port nobody listens on: the server's, closed first. */
    int port = T.port;
    uv_close((uv_handle_t *)&T.srv, NULL);
    uv_run(&T.loop, UV_RUN_NOWAIT);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    assert_int_equal(lpr_fwd_new(&T.loop, url, 4, &T.f), 0);
    post(0);
    run(1);
    assert_int_equal(T.res[0].error, CMN_EIO);
}

static void test_body_over_the_limit(void **state)
{
    (void)state;
    T.mode = M_BIG;
    client("", 4);
    post(0);
    run(1);
    assert_int_equal(T.res[0].error, CMN_ETOOBIG);
}

static void test_chunked_and_close_delimited_bodies(void **state)
{
    (void)state;
    T.mode = M_CHUNKED;
    client("", 4);
    post(0);
    run(1);
    assert_int_equal(T.res[0].error, 0);
    assert_int_equal(T.res[0].status, 409);
    assert_string_equal(T.res[0].body, "hello world");
    T.mode = M_EOF_BODY;
    post(1);
    run(2);
    assert_int_equal(T.res[1].error, 0);
    assert_int_equal(T.res[1].status, 503);
    assert_string_equal(T.res[1].body, "until the end");
    /* An interim 100 is not the answer. */
    T.mode = M_INTERIM;
    post(2);
    run(3);
    assert_int_equal(T.res[2].error, 0);
    assert_int_equal(T.res[2].status, 201);
    assert_string_equal(T.res[2].body, "ok");
}

static void test_connections_bounded_requests_queued(void **state)
{
    (void)state;
    T.mode = M_KEEP;
    client("", 2);
    for (int i = 0; i < 6; i++)
        post(i);
    run(6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(T.res[i].status, 200);
    assert_true(T.accepted <= 2);
    assert_int_equal(T.requests, 6);
}

static void test_close_cancels_what_is_out(void **state)
{
    (void)state;
    T.mode = M_SILENT;
    client("", 4);
    post(0);
    post(1);
    T.in_post = 1; /* a callback inside lpr_fwd_close counts as one inside a call */
    lpr_fwd_close(T.f, on_fwd_done, NULL);
    T.in_post = 0;
    T.f = NULL;
    uv_run(&T.loop, UV_RUN_DEFAULT);
    assert_int_equal(T.nres, 2);
    assert_int_equal(T.res[0].error, CMN_EIO);
    assert_int_equal(T.res[1].error, CMN_EIO);
    assert_int_equal(T.fwd_done, 1);
    assert_int_equal(T.done_before_cb, 0);
    assert_int_equal(T.sync_calls, 0);
}

static void test_urls(void **state)
{
    (void)state;
    static const char *const bad[] = {"https://127.0.0.1:1", "http://u:p@127.0.0.1:1",
                                      "http://127.0.0.1:1/x?y", "http://127.0.0.1:0",
                                      "http://127.0.0.1:70000", "http://:80", "http://[::1",
                                      "http://127.0.0.1:8x", "ftp://h", NULL};
    for (int i = 0; bad[i] != NULL; i++) {
        lpr_fwd_t *f = NULL;
        assert_int_equal(lpr_fwd_new(&T.loop, bad[i], 4, &f), CMN_EINVAL);
        assert_null(f);
    }
    static const char *const good[] = {"http://127.0.0.1:8080", "HTTP://[::1]:80/gw",
                                       "http://gateway.local", NULL};
    for (int i = 0; good[i] != NULL; i++) {
        lpr_fwd_t *f = NULL;
        assert_int_equal(lpr_fwd_new(&T.loop, good[i], 4, &f), 0);
        T.fwd_done = 0;
        lpr_fwd_close(f, on_fwd_done, NULL);
        uv_run(&T.loop, UV_RUN_NOWAIT);
        uv_run(&T.loop, UV_RUN_NOWAIT);
        assert_int_equal(T.fwd_done, 1);
    }
    T.fwd_done = 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_keepalive_reuses_one_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_close_opens_another, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dropped_on_reuse_is_sent_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_connection_closed_by_the_peer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silence_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_fails_on_a_later_turn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_over_the_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunked_and_close_delimited_bodies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connections_bounded_requests_queued, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_close_cancels_what_is_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_urls, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
