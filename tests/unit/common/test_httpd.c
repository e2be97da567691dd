/*
 * The platform's HTTP server (common/src/httpd.c) on a real loop and real sockets.
 *
 * Each test starts the server on 127.0.0.1, port 0, and runs its loop in a second thread; the test
 * itself is the client, on the main thread (so cmocka's assertions work), with blocking sockets
 * whose every receive is bounded by SO_RCVTIMEO.  The handler runs on the loop thread: it echoes
 * method, url, the X-Test header and the body as JSON, and defers its response with a uv timer when
 * asked to (X-Delay: ms).  The threads meet through semaphores (handler called, deferred response
 * sent) and an uv_async_t that closes the server; a watchdog timer stops a loop that hangs.  Every
 * test ends with the server closed gracefully and uv_loop_close() returning 0, so a leaked handle
 * fails it.
 *
 * Exact splitting of input is not under a socket's control: those tests use the loopback
 * connection of common/src/httpd_int.h, which runs the same parsing code from memory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "cmn/buf.h"
#include "cmn/mem.h"
#include "cmn/httpd.h"
#include "httpd_int.h"

#define RECV_TIMEOUT_MS 5000
#define WATCHDOG_MS 20000
#define MAX_EVENTS 256

/* ---- the server side: loop thread, handler -------------------------------------------- */

struct fx {
    uv_loop_t loop;
    cmn_httpd_t *srv;
    uv_async_t async;
    uv_timer_t watchdog;
    uv_prepare_t prepare; /* publishes connections_open to the main thread before each poll */
    pthread_t thread;
    int running;
    int close_asked; /* main thread only */
    int port;
    sem_t handled;   /* posted when the handler returns */
    sem_t responded; /* posted after a deferred response */
    atomic_int calls;
    atomic_llong open_now;
    atomic_int bad_body; /* a request body that was not NUL-terminated */
    /* Loop thread writes; the main thread reads after a semaphore wait or the join. */
    char events[MAX_EVENTS][96]; /* "h /url" (handed over), "r /url" (responded) */
    int nevents;
    long long open_at_respond; /* connections_open seen by the last deferred response */
    cmn_httpd_stats_t final;     /* taken just before the server is closed */
    int done_calls;
    int srv_freed;
    int watchdog_fired;
};

static struct fx F;

struct deferred {
    uv_timer_t timer;
    cmn_httpd_req_t *req;
    struct fx *f;
};

static void add_event(struct fx *f, char kind, const cmn_httpd_req_t *req)
{
    if (f->nevents < MAX_EVENTS)
        snprintf(f->events[f->nevents++], sizeof f->events[0], "%c %.*s", kind, (int)req->url_len,
                 req->url);
}

static size_t header_num(const cmn_httpd_req_t *req, const char *name, size_t dflt)
{
    size_t len;
    const char *v = cmn_httpd_req_header(req, name, &len);

    return v != NULL ? (size_t)strtoull(v, NULL, 10) : dflt;
}

static void respond_echo(struct fx *f, cmn_httpd_req_t *req)
{
    cmn_buf_t b;
    size_t tlen = 0, big = header_num(req, "X-Big", 0);
    const char *test = cmn_httpd_req_header(req, "X-Test", &tlen);
    int status = (int)header_num(req, "X-Status", 200);

    cmn_buf_init(&b, 4 << 20);
    add_event(f, 'r', req);
    if (big > 0) {
        char xs[4096];
        memset(xs, 'x', sizeof xs);
        while (b.len < big)
            cmn_buf_append(&b, xs, big - b.len < sizeof xs ? big - b.len : sizeof xs);
        cmn_httpd_respond(req, status, "text/plain", b.base, b.len, NULL);
    } else {
        cmn_buf_printf(&b, "{\"method\":\"%s\",\"url\":\"", http_method_str(req->method));
        cmn_buf_json_escape(&b, req->url, req->url_len);
        cmn_buf_puts(&b, "\",\"test\":\"");
        cmn_buf_json_escape(&b, test != NULL ? test : "", tlen);
        cmn_buf_printf(&b, "\",\"body_len\":%zu,\"body\":\"", req->body_len);
        cmn_buf_json_escape(&b, req->body, req->body_len);
        cmn_buf_puts(&b, "\"}");
        cmn_httpd_respond(req, status, "application/json", b.base, b.len,
                        status == 201 ? "Location: /made\r\n" : NULL);
    }
    cmn_buf_dispose(&b);
}

static void free_deferred(uv_handle_t *h)
{
    cmn_free(h->data);
}

static void on_deferred(uv_timer_t *t)
{
    struct deferred *d = t->data;
    struct fx *f = d->f;

    f->open_at_respond =
        f->srv_freed ? -1 : (long long)cmn_httpd_stats(f->srv)->connections_open;
    respond_echo(f, d->req);
    uv_close((uv_handle_t *)t, free_deferred);
    sem_post(&f->responded);
}

static void handler(cmn_httpd_req_t *req, void *data)
{
    struct fx *f = data;
    size_t delay = header_num(req, "X-Delay", 0);
    size_t max_body = header_num(req, "X-Set-Max-Body", 0);

    atomic_fetch_add(&f->calls, 1);
    add_event(f, 'h', req);
    /* Only the loop thread may touch the server: limits change from inside a handler. */
    if (max_body > 0) {
        cmn_httpd_config_t cfg = {.max_header_bytes = 8192,
                                .max_body_bytes = max_body,
                                .max_connections = 64,
                                .idle_timeout_ms = 5000,
                                .request_timeout_ms = 5000};
        cmn_httpd_set_limits(f->srv, &cfg);
    }
    if (req->body[req->body_len] != '\0')
        atomic_store(&f->bad_body, 1);
    if (delay > 0) {
        struct deferred *d = cmn_xcalloc(1, sizeof *d);
        d->req = req;
        d->f = f;
        uv_timer_init(&f->loop, &d->timer);
        d->timer.data = d;
        uv_timer_start(&d->timer, on_deferred, delay, 0);
    } else {
        respond_echo(f, req);
    }
    sem_post(&f->handled);
}

static void on_server_done(void *data)
{
    struct fx *f = data;

    f->done_calls++;
    f->srv_freed = 1;
}

static void on_async(uv_async_t *a)
{
    struct fx *f = a->data;

    f->final = *cmn_httpd_stats(f->srv);
    cmn_httpd_close(f->srv, on_server_done, f);
    uv_close((uv_handle_t *)a, NULL);
}

/* Before the poll, so what the close callbacks of the last turn changed is already seen. */
static void on_prepare(uv_prepare_t *h)
{
    struct fx *f = h->data;

    if (!f->srv_freed)
        atomic_store(&f->open_now, (long long)cmn_httpd_stats(f->srv)->connections_open);
}

static void on_watchdog(uv_timer_t *t)
{
    struct fx *f = t->data;

    f->watchdog_fired = 1;
    uv_stop(&f->loop);
}

static void *loop_main(void *arg)
{
    struct fx *f = arg;

    uv_run(&f->loop, UV_RUN_DEFAULT);
    return NULL;
}

static cmn_httpd_config_t default_cfg(void)
{
    cmn_httpd_config_t cfg = {.host = "127.0.0.1",
                            .port = 0,
                            .max_header_bytes = 8192,
                            .max_body_bytes = 1 << 20,
                            .max_connections = 64,
                            .idle_timeout_ms = 5000,
                            .request_timeout_ms = 5000};
    return cfg;
}

static void f_start(const cmn_httpd_config_t *cfg)
{
    struct fx *f = &F;

    memset(f, 0, sizeof *f);
    assert_int_equal(sem_init(&f->handled, 0, 0), 0);
    assert_int_equal(sem_init(&f->responded, 0, 0), 0);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(cmn_httpd_start(&f->loop, cfg, handler, f, &f->srv), 0);
    f->port = cmn_httpd_port(f->srv);
    assert_true(f->port > 0);
    assert_int_equal(uv_async_init(&f->loop, &f->async, on_async), 0);
    f->async.data = f;
    uv_timer_init(&f->loop, &f->watchdog);
    f->watchdog.data = f;
    uv_timer_start(&f->watchdog, on_watchdog, WATCHDOG_MS, 0);
    uv_unref((uv_handle_t *)&f->watchdog); /* does not keep the loop alive */
    uv_prepare_init(&f->loop, &f->prepare);
    f->prepare.data = f;
    uv_prepare_start(&f->prepare, on_prepare);
    uv_unref((uv_handle_t *)&f->prepare);
    assert_int_equal(pthread_create(&f->thread, NULL, loop_main, f), 0);
    f->running = 1;
}

/* Asks the loop thread to close the server gracefully (once). */
static void f_ask_close(void)
{
    if (!F.close_asked) {
        F.close_asked = 1;
        uv_async_send(&F.async);
    }
}

static void f_stop(void)
{
    struct fx *f = &F;

    if (!f->running)
        return;
    f->running = 0;
    f_ask_close();
    pthread_join(f->thread, NULL);
    uv_close((uv_handle_t *)&f->watchdog, NULL);
    uv_close((uv_handle_t *)&f->prepare, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    sem_destroy(&f->handled);
    sem_destroy(&f->responded);
    assert_int_equal(f->watchdog_fired, 0);
    assert_int_equal(f->done_calls, 1);
    assert_int_equal(atomic_load(&f->bad_body), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static int teardown(void **state)
{
    (void)state;
    f_stop();
    return 0;
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until the loop thread has seen connections_open == n. */
static void wait_open(long long n)
{
    long long t0 = now_ms();

    while (atomic_load(&F.open_now) != n) {
        if (now_ms() - t0 > RECV_TIMEOUT_MS)
            fail_msg("connections_open stayed at %lld, not %lld", atomic_load(&F.open_now), n);
        usleep(1000);
    }
}

static void sem_wait_ms(sem_t *s, int ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    int rc;
    while ((rc = sem_timedwait(s, &ts)) != 0 && errno == EINTR)
        ;
    assert_int_equal(rc, 0);
}

/* ---- the client side: blocking sockets ------------------------------------------------ */

struct client {
    int fd;
    cmn_buf_t in; /* received, not yet consumed */
};

struct resp {
    int status;
    char *raw; /* head and body, NUL-terminated */
    size_t len;
    const char *body;
    size_t body_len;
};

static int try_connect(int port)
{
    struct sockaddr_in sa;
    struct timeval tv = {.tv_sec = RECV_TIMEOUT_MS / 1000};
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static void cl_open(struct client *cl)
{
    cl->fd = try_connect(F.port);
    assert_true(cl->fd >= 0);
    cmn_buf_init(&cl->in, 64 << 20);
}

static void cl_close(struct client *cl)
{
    if (cl->fd >= 0)
        close(cl->fd);
    cl->fd = -1;
    cmn_buf_dispose(&cl->in);
}

static void cl_send_n(struct client *cl, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(cl->fd, s, n, MSG_NOSIGNAL);
        assert_true(w > 0);
        s += w;
        n -= (size_t)w;
    }
}

static void cl_send(struct client *cl, const char *s)
{
    cl_send_n(cl, s, strlen(s));
}

static ssize_t cl_recv_more(struct client *cl)
{
    char tmp[65536];
    ssize_t n = recv(cl->fd, tmp, sizeof tmp, 0);

    if (n > 0)
        assert_int_equal(cmn_buf_append(&cl->in, tmp, (size_t)n), 0);
    return n;
}

/* Reads one whole response (head_only: a response to HEAD, whose body is not sent). */
static void cl_read_full(struct client *cl, struct resp *r, int head_only)
{
    char *end;
    const char *cl_hdr;
    size_t hlen, clen = 0, total;

    while (cl->in.base == NULL || (end = strstr(cl->in.base, "\r\n\r\n")) == NULL)
        assert_true(cl_recv_more(cl) > 0);
    hlen = (size_t)(end + 4 - cl->in.base);
    assert_true(hlen > 12 && strncmp(cl->in.base, "HTTP/1.1 ", 9) == 0);
    r->status = (int)strtol(cl->in.base + 9, NULL, 10);
    cl_hdr = strstr(cl->in.base, "\r\nContent-Length: ");
    if (cl_hdr != NULL && cl_hdr < end)
        clen = (size_t)strtoull(cl_hdr + 18, NULL, 10);
    if (head_only)
        clen = 0;
    total = hlen + clen;
    while (cl->in.len < total)
        assert_true(cl_recv_more(cl) > 0);
    r->raw = cmn_xalloc(total + 1);
    memcpy(r->raw, cl->in.base, total);
    r->raw[total] = '\0';
    r->len = total;
    r->body = r->raw + hlen;
    r->body_len = clen;
    memmove(cl->in.base, cl->in.base + total, cl->in.len - total + 1);
    cl->in.len -= total;
}

/* Reads one response and checks it byte for byte. */
static void cl_expect(struct client *cl, const char *expected)
{
    struct resp r;

    cl_read_full(cl, &r, 0);
    assert_string_equal(r.raw, expected);
    cmn_free(r.raw);
}

/* The server closes: EOF with nothing before it (no reset either). */
static void cl_expect_eof(struct client *cl)
{
    ssize_t n;

    assert_int_equal(cl->in.len, 0);
    n = cl_recv_more(cl);
    if (n < 0)
        fail_msg("expected EOF, got %s", strerror(errno));
    assert_int_equal(n, 0);
}

static char expected_buf[1 << 14];

/* A whole expected response; `conn` is "keep-alive" or "close". */
static const char *resp_text(int status, const char *ctype, const char *conn, const char *body)
{
    snprintf(
        expected_buf, sizeof expected_buf,
        "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: %s\r\n\r\n%s",
        status, cmn_httpd_status_text(status), ctype, strlen(body), conn, body);
    return expected_buf;
}

static char echo_buf[1 << 13];

static const char *echo(const char *method, const char *url, const char *test, const char *body)
{
    snprintf(echo_buf, sizeof echo_buf,
             "{\"method\":\"%s\",\"url\":\"%s\",\"test\":\"%s\",\"body_len\":%zu,\"body\":\"%s\"}",
             method, url, test, strlen(body), body);
    return echo_buf;
}

static const char *echo_ok(const char *method, const char *url, const char *test, const char *body,
                           const char *conn)
{
    return resp_text(200, "application/json", conn, echo(method, url, test, body));
}

static const char *error_resp(int status, const char *code, const char *message)
{
    static char body[512];

    snprintf(body, sizeof body, "{\"error\":\"%s\",\"message\":\"%s\"}", code, message);
    return resp_text(status, "application/json", "close", body);
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_get_simple(void **state)
{
    cmn_httpd_config_t cfg = default_cfg();
    struct client a;

    (void)state;
    f_start(&cfg);
    cl_open(&a);
    cl_send(&a, "GET /hello?x=1 HTTP/1.1\r\nHost: t\r\nX-Test:   spaced  out \t\r\n\r\n");
    cl_expect(&a, "HTTP/1.1 200 OK\r\n"
                  "Content-Type: application/json\r\n"
                  "Content-Length: 79\r\n"
                  "Connection: keep-alive\r\n"
                  "\r\n"
                  "{\"method\":\"GET\",\"url\":\"/hello?x=1\",\"test\":\"spaced  out\","
                  "\"body_len\":0,\"body\":\"\"}");
    cl_close(&a);
    f_stop();
    assert_int_equal(F.final.requests, 1);
    assert_int_equal(F.final.responses_by_class[2], 1);
    assert_int_equal(F.final.connections_accepted, 1);
    assert_int_equal(F.final.connections_rejected, 0);
}

static void test_post_body(void **state)
{
    cmn_httpd_config_t cfg = default_cfg();
    struct client a;

    (void)state;
    f_start(&cfg);
    cl_open(&a);
    cl_send(&a, "POST /p HTTP/1.1\r\nContent-Length: 11\r\nX-Test: v\r\nX-Status: 201\r\n\r\n"
                "hello world");
    cl_expect(&a, "HTTP/1.1 201 Created\r\n"
                  "Content-Type: application/json\r\n"
                  "Content-Length: 74\r\n"
                  "Connection: keep-alive\r\n"
                  "Location: /made\r\n"
                  "\r\n"
                  "{\"method\":\"POST\",\"url\":\"/p\",\"test\":\"v\",\"body_len\":11,"
                  "\"body\":\"hello world\"}");
    cl_close(&a);
}

static void test_chunked_body(void **state)
{
    cmn_httpd_config_t cfg = default_cfg();
    struct client a;

    (void)state;
    f_start(&cfg);
    cl_open(&a);
    cl_send(&a, "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: ignored\r\n\r\n");
    cl_expect(&a, echo_ok("POST", "/c", "", "hello world", "keep-alive"));
    /* No body and a 204: neither Content-Length nor body bytes. */
    cl_send(&a, "DELETE /d HTTP/1.1\r\nX-Status: 204\r\n\r\n");
    cl_expect(&a, "HTTP/1.1 204 No Content\r\nContent-Type: application/json\r\n"
                  "Connection: keep-alive\r\n\r\n");
    cl_send(&a, "GET /after HTTP/1.1\r\n\r\n");
    cl_expect(&a, echo_ok("GET", "/after", "", "", "keep-alive"));
    cl_close(&a);
}

static void test_keep_alive(void **state)
{
    cmn_httpd_config_t cfg = default_cfg();
    struct client a;
    char req[128], url[32];

    (void)state;
    f_start(&cfg);
    cl_open(&a);
    for (int i = 0; i < 3; i++) {
        snprintf(url, sizeof url, "/k%d", i);
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nX-Test: n%d\r\n\r\n", url, i);
        cl_send(&a, req);
        char test[16];
        snprintf(test, sizeof test, "n%d", i);
        cl_expect(&a, echo_ok("GET", url, test, "", "keep-alive"));
    }
    cl_close(&a);
    f_stop();
    assert_int_equal(F.final.connections_accepted, 1);
    assert_int_equal(F.final.requests, 3);
    assert_int_equal(F.final.responses_by_class[2], 3);
}

static void test_pipelining_in_order(void **state)
{
    cmn_httpd_config_t cfg = default_cfg();
    struct client a;
    static const char *const order[] = {"h /one", "r /one",   "h /two",
                                        "r /two", "h /three", "r /three"};

    (void)state;
    f_start(&cfg);
    cl_open(&a);
    /* The first response is deferred longer than the second: order must still hold. */
    cl_send(&a, "GET /one HTTP/1.1\r\nX-Delay: 120\r\n\r\n"
                "POST /two HTTP/1.1\r\nX-Delay: 10\r\nContent-Length: 3\r\n\r\nabc"
                "GET /three HTTP/1.1\r\n\r\n");
    cl_expect(&a, echo_ok("GET", "/one", "", "", "keep-alive"));
    cl_expect(&a, echo_ok("POST", "/two", "", "abc", "keep-alive"));
    cl_expect(&a, echo_ok("GET", "/three", "", "", "keep-alive"));
    cl_close(&a);
    f_stop();
    /* One request at a time: each is handed over only after the previous response. */
    assert_int_equal(F.nevents, 6);
    for (int i = 0; i < 6; i++)
        assert_string_equal(F.events[i], order[i]);
}

static void test_pipelining_many(void **state)
{
    cmn_httpd_config_t cfg = default_cfg();
    struct client a;
    cmn_buf_t all;
    char url[32];

    (void)state;
    f_start(&cfg);
    cl_open(&a);
    cmn_buf_init(&all, 1 << 20);
    for (int i = 0; i < 1000; i++)
        cmn_buf_printf(&all, "GET /m%d HTTP/1.1\r\n\r\n", i);
    cl_send_n(&a, all.base, all.len);
    cmn_buf_dispose(&all);
    for (int i = 0; i < 1000; i++) {
        snprintf(url, sizeof url, "/m%d", i);
        cl_expect(&a, echo_ok("GET", url, "", "", "keep-alive"));
    }
    cl_close(&a);
    f_stop();
    assert_int_equal(F.final.requests, 1000);
}

static void test_split_reads(void **state)
{
    cmn_httpd_config_t cfg = default_cfg();
    struct client a;
    static const char *const pieces[] = {
        "GET /sp", "lit HTTP/1.1\r\nX-Te", "st:", "  ab", "cd  \r", "\n\r", "\n"};

    (void)state;
    f_start(&cfg);
    cl_open(&a);
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        cl_send(&a, pieces[i]);
        usleep(3000); /* most likely separate reads; correctness does not depend on it */
    }
    cl_expect(&a, echo_ok("GET", "/split", "abcd", "", "keep-alive"));
    cl_close(&a);
}

static void test_body_limit_content_length(void **state)
{
    cmn_httpd_config_t cfg = default_cfg();
    struct client a;

    (void)state;
    cfg.max_body_bytes = 1024;
    f_start(&cfg);
    cl_open(&a);
    /* Refused from the header alone: the client never sends the body. */
    cl_send(&a, "POST /big HTTP/1.1\r\nContent-Length: 1025\r\n\r\n");
    cl_expect(&a, error_resp(413, "too_large", "request body exceeds 1024 bytes"));
    cl_expect_eof(&a);
    cl_close(&a);
    f_stop();
    assert_int_equal(atomic_load(&F.calls), 0);
    assert_int_equal(F.final.responses_by_class[4], 1);
}

static void test_body_limit_chunked(void **state)
{
    cmn_httpd_config_t cfg = default_cfg();
    struct client a, b;
    char chunk[700];

    (void)state;
    cfg.max_body_bytes = 1024;
    f_start(&cfg);
    memset(chunk, 'q', 600);
    chunk[600] = '\0';

    /* Exactly at the limit passes. */
    cl_open(&b);
    cl_send(&b, "POST /ok HTTP/1.1\r\nTransfer-Encoding: chunked\r\nX-Test: fits\r\n\r\n"
                "400\r\n");
    char *k = cmn_xalloc(1025);
    memset(k, 'z', 1024);
    k[1024] = '\0';
    cl_send(&b, k);
    cl_send(&b, "\r\n0\r\n\r\n");
    struct resp r;
    cl_read_full(&b, &r, 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"body_len\":1024,"));
    cmn_free(r.raw);
    cmn_free(k);
    cl_close(&b);

    /* The second chunk's size already passes the limit: refused before its data. */
    cl_open(&a);
    cl_send(&a, "POST /big HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n");
    cl_send(&a, chunk);
    cl_send(&a, "\r\n258\r\n");
    cl_send(&a, chunk);
    cl_send(&a, "\r\n0\r\n\r\n");
    cl_expect(&a, error_resp(413, "too_large", "request body exceeds 1024 bytes"));
    cl_expect_eof(&a);
    cl_close(&a);
    f_stop();
    assert_int_equal(atomic_load(&F.calls), 1);
}

static void test_header_limit(void **state)
{
    cmn_httpd_config_t cfg = default_cfg();
    struct client a, b;
    char req[3000];

    (void)state;
    cfg.max_header_bytes = 1024;
    f_start(&cfg);

    /* A 1024-byte header block is still fine. */
    cl_open(&b);
    size_t fixed = strlen("GET / HTTP/1.1\r\nX-Test: \r\n\r\n");
    memcpy(req, "GET / HTTP/1.1\r\nX-Test: ", 24);
    memset(req + 24, 'h', 1024 - fixed);
    memcpy(req + 24 + 1024 - fixed, "\r\n\r\n", 5);
    assert_int_equal(strlen(req), 1024);
    cl_send(&b, req);
    struct resp r;
    cl_read_full(&b, &r, 0);
    assert_int_equal(r.status, 200);
    cmn_free(r.raw);
    /* One byte more is not. */
    memset(req + 24, 'h', 1025 - fixed);
    memcpy(req + 24 + 1025 - fixed, "\r\n\r\n", 5);
    cl_send(&b, req);
    cl_expect(&b, error_resp(431, "too_large", "request headers exceed 1024 bytes"));
    cl_expect_eof(&b);
    cl_close(&b);

    /* A much longer one is answered without reading it all. */
    cl_open(&a);
    memcpy(req, "GET / HTTP/1.1\r\nX-Big: ", 23);
    memset(req + 23, 'a', 2500);
    memcpy(req + 2523, "\r\n\r\n", 5);
    cl_send(&a, req);
    cl_expect(&a, error_resp(431, "too_large", "request headers exceed 1024 bytes"));
    cl_expect_eof(&a);
    cl_close(&a);
    f_stop();
    assert_int_equal(atomic_load(&F.calls), 1);
}

static void test_malformed(void **state)
{
    cmn_httpd_config_t cfg = default_cfg();
    struct client a, b, c;

    (void)state;
    f_start(&cfg);
    cl_open(&a);
    cl_send(&a, "GARBAGE / HTTP/1.1\r\n\r\n");
    cl_expect(&a, error_resp(400, "bad_request", "invalid HTTP method"));
    cl_expect_eof(&a);
    cl_close(&a);

    cl_open(&b);
    cl_send(&b, "GET / HTTP/1.1\r\nBad Header\r\n\r\n");
    cl_expect(&b, error_resp(400, "bad_request", "invalid character in header"));
    cl_expect_eof(&b);
    cl_close(&b);

    /* http-parser lets a control byte through at the start of a value; we do not. */
    cl_open(&b);
    cl_send_n(&b, "GET / HTTP/1.1\r\nX-A:\0bad\r\n\r\n", 28);
    cl_expect(&b, error_resp(400, "bad_request", "invalid character in header"));
    cl_expect_eof(&b);
    cl_close(&b);

    /* Content-Length and chunked together is request smuggling's favourite. */
    cl_open(&c);
    cl_send(&c, "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n");
    cl_expect(&c, error_resp(400, "bad_request", "unexpected content-length header"));
    cl_expect_eof(&c);
    cl_close(&c);
    f_stop();
    assert_int_equal(atomic_load(&F.calls), 0);
}

static void test_bad_version(void **state)
{
    cmn_httpd_config_t cfg = default_cfg();
    struct client a;

    (void)state;
    f_start(&cfg);
    cl_open(&a);
    cl_send(&a, "GET / HTTP/2.0\r\nHost: x\r\n\r\n");
    cl_expect(&a, error_resp(505, "bad_request", "HTTP version 2.0 not supported"));
    cl_expect_eof(&a);
    cl_close(&a);
}

static void test_request_timeout(void **state)
{
    cmn_httpd_config_t cfg = default_cfg();
    struct client a;
    long long t0;

    (void)state;
    cfg.request_timeout_ms = 150;
    f_start(&cfg);
    cl_open(&a);
    t0 = now_ms();
    cl_send(&a, "GET /slow HTTP/1.1\r\nHost: x\r\n");
    usleep(60000);
    cl_send(&a, "X-More: 1\r\n"); /* progress does not extend the deadline */
    cl_expect(&a, error_resp(408, "timeout", "request not received within 150 ms"));
    long long took = now_ms() - t0;
    assert_true(took >= 140);
    assert_true(took < 3000);
    cl_expect_eof(&a);
    cl_close(&a);
    f_stop();
    assert_int_equal(atomic_load(&F.calls), 0);
}

static void test_idle_timeout(void **state)
{
    cmn_httpd_config_t cfg = default_cfg();
    struct client a, b;
    long long t0;

    (void)state;
    cfg.idle_timeout_ms = 100;
    f_start(&cfg);
    cl_open(&a);
    cl_send(&a, "GET /i HTTP/1.1\r\n\r\n");
    cl_expect(&a, echo_ok("GET", "/i", "", "", "keep-alive"));
    t0 = now_ms();
    cl_expect_eof(&a); /* silently: no response before the close */
    assert_true(now_ms() - t0 >= 90);
    cl_close(&a);

    /* A connection that never sends anything is idle too. */
    cl_open(&b);
    t0 = now_ms();
    cl_expect_eof(&b);
    assert_true(now_ms() - t0 >= 90);
    cl_close(&b);
}

static void test_connection_cap(void **state)
{
    cmn_httpd_config_t cfg = default_cfg();
    struct client a, b, c;

    (void)state;
    cfg.max_connections = 2;
    f_start(&cfg);
    cl_open(&a);
    cl_send(&a, "GET /a HTTP/1.1\r\n\r\n");
    cl_expect(&a, echo_ok("GET", "/a", "", "", "keep-alive"));
    cl_open(&b);
    cl_send(&b, "GET /b HTTP/1.1\r\n\r\n");
    cl_expect(&b, echo_ok("GET", "/b", "", "", "keep-alive"));
    cl_open(&c);
    cl_send(&c, "GET /c HTTP/1.1\r\n\r\n");
    cl_expect(&c, error_resp(503, "unavailable", "too many connections"));
    cl_expect_eof(&c);
    cl_close(&c);
    /* The admitted ones are unaffected. */
    cl_send(&a, "GET /a2 HTTP/1.1\r\n\r\n");
    cl_expect(&a, echo_ok("GET", "/a2", "", "", "keep-alive"));
    cl_close(&a);
    cl_close(&b);
    f_stop();
    assert_int_equal(F.final.connections_accepted, 2);
    assert_int_equal(F.final.connections_rejected, 1);
    assert_int_equal(F.final.responses_by_class[5], 1);
    assert_int_equal(atomic_load(&F.calls), 3);
}

static void test_http10(void **state)
{
    cmn_httpd_config_t cfg = default_cfg();
    struct client a, b;

    (void)state;
    f_start(&cfg);
    cl_open(&a);
    cl_send(&a, "GET /ten HTTP/1.0\r\n\r\n");
    cl_expect(&a, echo_ok("GET", "/ten", "", "", "close"));
    cl_expect_eof(&a);
    cl_close(&a);

    /* HTTP/1.0 with keep-alive asked for keeps the connection. */
    cl_open(&b);
    cl_send(&b, "GET /k1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    cl_expect(&b, echo_ok("GET", "/k1", "", "", "keep-alive"));
    cl_send(&b, "GET /k2 HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    cl_expect(&b, echo_ok("GET", "/k2", "", "", "keep-alive"));
    cl_close(&b);
}

static void test_connection_close(void **state)
{
    cmn_httpd_config_t cfg = default_cfg();
    struct client a;

    (void)state;
    f_start(&cfg);
    cl_open(&a);
    /* The pipelined request after the close is never answered. */
    cl_send(&a, "GET /a HTTP/1.1\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
    cl_expect(&a, echo_ok("GET", "/a", "", "", "close"));
    cl_expect_eof(&a);
    cl_close(&a);
    f_stop();
    assert_int_equal(atomic_load(&F.calls), 1);
}

static void test_head(void **state)
{
    cmn_httpd_config_t cfg = default_cfg();
    struct client a;
    struct resp r;

    (void)state;
    f_start(&cfg);
    cl_open(&a);
    cl_send(&a, "HEAD /h HTTP/1.1\r\n\r\nGET /g HTTP/1.1\r\n\r\n");
    cl_read_full(&a, &r, 1);
    /* Exactly the head GET would have had (Content-Length included), without the body. */
    char *want = cmn_xstrdup(echo_ok("HEAD", "/h", "", "", "keep-alive"));
    strstr(want, "\r\n\r\n")[4] = '\0';
    assert_string_equal(r.raw, want);
    cmn_free(want);
    cmn_free(r.raw);
    /* Had a body been sent, this response would not parse. */
    cl_expect(&a, echo_ok("GET", "/g", "", "", "keep-alive"));
    cl_close(&a);
}

static void test_expect_continue(void **state)
{
    cmn_httpd_config_t cfg = default_cfg();
    struct client a;
    char buf[64];

    (void)state;
    f_start(&cfg);
    cl_open(&a);
    cl_send(&a, "PUT /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    /* Wait for the interim response before sending the body, as clients do. */
    size_t want = strlen("HTTP/1.1 100 Continue\r\n\r\n");
    while (a.in.len < want)
        assert_true(cl_recv_more(&a) > 0);
    memcpy(buf, a.in.base, want);
    buf[want] = '\0';
    assert_string_equal(buf, "HTTP/1.1 100 Continue\r\n\r\n");
    assert_int_equal(a.in.len, want);
    cmn_buf_reset(&a.in);
    cl_send(&a, "hello");
    cl_expect(&a, echo_ok("PUT", "/e", "", "hello", "keep-alive"));
    cl_close(&a);
    f_stop();
    assert_int_equal(F.final.responses_by_class[1], 1);
}

static void test_large_response(void **state)
{
    cmn_httpd_config_t cfg = default_cfg();
    struct client a;
    struct resp r;

    (void)state;
    f_start(&cfg);
    cl_open(&a);
    cl_send(&a, "GET /big HTTP/1.1\r\nX-Big: 1000000\r\n\r\nGET /next HTTP/1.1\r\n\r\n");
    cl_read_full(&a, &r, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 1000000);
    for (size_t i = 0; i < r.body_len; i++) {
        if (r.body[i] != 'x')
            fail_msg("byte %zu is %d", i, r.body[i]);
    }
    cmn_free(r.raw);
    cl_expect(&a, echo_ok("GET", "/next", "", "", "keep-alive"));
    cl_close(&a);
}

static void test_backpressure(void **state)
{
    cmn_httpd_config_t cfg = default_cfg();
    struct client a;
    cmn_buf_t all;
    struct resp r;
    const int n = 40;

    (void)state;
    f_start(&cfg);
    cl_open(&a);
    cmn_buf_init(&all, 1 << 20);
    for (int i = 0; i < n; i++)
        cmn_buf_printf(&all, "GET /bp%d HTTP/1.1\r\nX-Big: 1000000\r\n\r\n", i);
    cl_send_n(&a, all.base, all.len);
    cmn_buf_dispose(&all);
    /*
     * 40 MB of responses cannot fit in the socket buffers: while we do not read, the server must
     * stop handing requests to the handler.
     */
    usleep(300000);
    int seen = atomic_load(&F.calls);
    assert_true(seen >= 1);
    assert_true(seen < n);
    for (int i = 0; i < n; i++) {
        cl_read_full(&a, &r, 0);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_len, 1000000);
        cmn_free(r.raw);
    }
    cl_close(&a);
    f_stop();
    assert_int_equal(F.final.requests, n);
}

static void test_set_limits(void **state)
{
    cmn_httpd_config_t cfg = default_cfg();
    struct client a;

    (void)state;
    f_start(&cfg);
    cl_open(&a);
    cl_send(&a, "POST /1 HTTP/1.1\r\nContent-Length: 20\r\nX-Set-Max-Body: 10\r\n\r\n"
                "01234567890123456789");
    cl_expect(&a, echo_ok("POST", "/1", "", "01234567890123456789", "keep-alive"));
    /* The new limit applies from the next request on. */
    cl_send(&a, "POST /2 HTTP/1.1\r\nContent-Length: 20\r\n\r\n");
    cl_expect(&a, error_resp(413, "too_large", "request body exceeds 10 bytes"));
    cl_expect_eof(&a);
    cl_close(&a);
}

static void test_disconnect_reset_while_handler(void **state)
{
    cmn_httpd_config_t cfg = default_cfg();
    struct client a;
    struct linger lg = {.l_onoff = 1, .l_linger = 0};

    (void)state;
    f_start(&cfg);
    cl_open(&a);
    cl_send(&a, "GET /gone HTTP/1.1\r\nX-Delay: 200\r\n\r\n");
    sem_wait_ms(&F.handled, RECV_TIMEOUT_MS);
    /* Reset the connection while the handler holds the request. */
    setsockopt(a.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    cl_close(&a);
    sem_wait_ms(&F.responded, RECV_TIMEOUT_MS);
    /* The server had noticed and closed the connection: the late response was discarded. */
    assert_int_equal(F.open_at_respond, 0);
    f_stop();
    assert_int_equal(F.final.requests, 1);
    assert_int_equal(F.final.responses_by_class[2], 0);
}

static void test_respond_after_server_freed(void **state)
{
    cmn_httpd_config_t cfg = default_cfg();
    struct client a;
    struct linger lg = {.l_onoff = 1, .l_linger = 0};

    (void)state;
    f_start(&cfg);
    cl_open(&a);
    cl_send(&a, "GET /late HTTP/1.1\r\nX-Delay: 300\r\n\r\n");
    sem_wait_ms(&F.handled, RECV_TIMEOUT_MS);
    setsockopt(a.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    cl_close(&a);
    wait_open(0);
    /* The server closes and is freed; the handler still holds a detached request. */
    f_ask_close();
    sem_wait_ms(&F.responded, RECV_TIMEOUT_MS);
    assert_int_equal(F.open_at_respond, -1);
    f_stop();
}

static void test_half_close_gets_response(void **state)
{
    cmn_httpd_config_t cfg = default_cfg();
    struct client a;

    (void)state;
    f_start(&cfg);
    cl_open(&a);
    cl_send(&a, "GET /half HTTP/1.1\r\nX-Delay: 50\r\n\r\n");
    shutdown(a.fd, SHUT_WR);
    cl_expect(&a, echo_ok("GET", "/half", "", "", "close"));
    cl_expect_eof(&a);
    cl_close(&a);
}

static void test_graceful_close_inflight(void **state)
{
    cmn_httpd_config_t cfg = default_cfg();
    struct client a, b;

    (void)state;
    f_start(&cfg);
    cl_open(&b);
    cl_send(&b, "GET /idle HTTP/1.1\r\n\r\n");
    cl_expect(&b, echo_ok("GET", "/idle", "", "", "keep-alive"));
    cl_open(&a);
    cl_send(&a, "GET /busy HTTP/1.1\r\nX-Delay: 200\r\n\r\nGET /never HTTP/1.1\r\n\r\n");
    sem_wait_ms(&F.handled, RECV_TIMEOUT_MS);
    sem_wait_ms(&F.handled, RECV_TIMEOUT_MS);
    f_ask_close();
    /* The idle connection goes at once, silently. */
    cl_expect_eof(&b);
    cl_close(&b);
    /* No new connections. */
    int fd = try_connect(F.port);
    assert_int_equal(fd, -ECONNREFUSED);
    /* The request in flight is answered, with the connection closing after it. */
    cl_expect(&a, echo_ok("GET", "/busy", "", "", "close"));
    cl_expect_eof(&a);
    cl_close(&a);
    f_stop(); /* done called once, every handle closed: uv_loop_close returns 0 */
    assert_int_equal(atomic_load(&F.calls), 2);
}

static void test_status_text(void **state)
{
    (void)state;
    assert_string_equal(cmn_httpd_status_text(200), "OK");
    assert_string_equal(cmn_httpd_status_text(201), "Created");
    assert_string_equal(cmn_httpd_status_text(204), "No Content");
    assert_string_equal(cmn_httpd_status_text(400), "Bad Request");
    assert_string_equal(cmn_httpd_status_text(401), "Unauthorized");
    assert_string_equal(cmn_httpd_status_text(403), "Forbidden");
    assert_string_equal(cmn_httpd_status_text(404), "Not Found");
    assert_string_equal(cmn_httpd_status_text(405), "Method Not Allowed");
    assert_string_equal(cmn_httpd_status_text(408), "Request Timeout");
    assert_string_equal(cmn_httpd_status_text(409), "Conflict");
    assert_string_equal(cmn_httpd_status_text(413), "Payload Too Large");
    assert_string_equal(cmn_httpd_status_text(415), "Unsupported Media Type");
    assert_string_equal(cmn_httpd_status_text(431), "Request Header Fields Too Large");
    assert_string_equal(cmn_httpd_status_text(500), "Internal Server Error");
    assert_string_equal(cmn_httpd_status_text(503), "Service Unavailable");
    assert_string_equal(cmn_httpd_status_text(505), "HTTP Version Not Supported");
    assert_string_equal(cmn_httpd_status_text(451), "Unavailable For Legal Reasons");
    assert_string_equal(cmn_httpd_status_text(299), "Unknown");
    assert_string_equal(cmn_httpd_status_text(-1), "Unknown");
}

static void test_start_errors(void **state)
{
    uv_loop_t loop;
    cmn_httpd_t *a = NULL, *b = (cmn_httpd_t *)&loop; /* must become NULL */
    cmn_httpd_config_t cfg = default_cfg();

    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(cmn_httpd_start(&loop, &cfg, handler, NULL, &a), 0);
    cfg.port = cmn_httpd_port(a);
    assert_int_equal(cmn_httpd_start(&loop, &cfg, handler, NULL, &b), UV_EADDRINUSE);
    assert_null(b);
    cfg.port = 0;
    cfg.host = "not-an-address";
    b = (cmn_httpd_t *)&loop;
    assert_int_equal(cmn_httpd_start(&loop, &cfg, handler, NULL, &b), UV_EINVAL);
    assert_null(b);
    cmn_httpd_close(a, NULL, NULL);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- loopback: exact control over how input is split ---------------------------------- */

struct lb_seen {
    int calls;
    char url[64];
    char host[32];
    char test[32];
    char body[32];
    size_t nheaders;
    cmn_httpd_req_t *held;
    int hold;
};

static void copy_n(char *dst, size_t dstsz, const char *s, size_t n)
{
    snprintf(dst, dstsz, "%.*s", (int)n, s);
}

static void lb_handler(cmn_httpd_req_t *req, void *data)
{
    struct lb_seen *s = data;
    size_t n = 0;
    const char *v;

    if (s->calls++ == 0) {
        copy_n(s->url, sizeof s->url, req->url, req->url_len);
        v = cmn_httpd_req_header(req, "host", &n);
        copy_n(s->host, sizeof s->host, v != NULL ? v : "-", v != NULL ? n : 1);
        v = cmn_httpd_req_header(req, "X-TEST", &n);
        copy_n(s->test, sizeof s->test, v != NULL ? v : "-", v != NULL ? n : 1);
        copy_n(s->body, sizeof s->body, req->body, req->body_len);
        s->nheaders = req->nheaders;
    }
    if (s->hold) {
        s->held = req;
        return;
    }
    cmn_httpd_respond(req, 200, "text/plain", "ok", 2, NULL);
}

static const char LB_INPUT[] = "POST /path?q=1 HTTP/1.1\r\nHost: example\r\nX-Test:  split me \r\n"
                               "Content-Length: 5\r\n\r\nhelloGET /second HTTP/1.1\r\n\r\n";
static const char LB_OK[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
                            "Connection: keep-alive\r\n\r\nok";

static void test_loopback_every_split(void **state)
{
    cmn_httpd_config_t cfg = default_cfg();
    size_t len = sizeof LB_INPUT - 1;
    char want[512];

    (void)state;
    snprintf(want, sizeof want, "%s%s", LB_OK, LB_OK);
    for (size_t i = 0; i <= len; i++) {
        struct lb_seen seen = {0};
        cmn__httpd_loopback_t *lb = cmn__httpd_loopback_new(&cfg, lb_handler, &seen);
        size_t out_len;

        assert_int_equal(cmn__httpd_loopback_feed(lb, LB_INPUT, i), i);
        assert_int_equal(cmn__httpd_loopback_feed(lb, LB_INPUT + i, len - i), len - i);
        assert_int_equal(seen.calls, 2);
        assert_string_equal(seen.url, "/path?q=1");
        assert_string_equal(seen.host, "example");
        assert_string_equal(seen.test, "split me");
        assert_string_equal(seen.body, "hello");
        assert_int_equal(seen.nheaders, 3);
        const char *out = cmn__httpd_loopback_output(lb, &out_len);
        assert_int_equal(out_len, strlen(want));
        assert_memory_equal(out, want, out_len);
        assert_false(cmn__httpd_loopback_closed(lb));
        cmn__httpd_loopback_free(lb);
    }
}

static void test_loopback_async_and_detach(void **state)
{
    cmn_httpd_config_t cfg = default_cfg();
    struct lb_seen seen = {.hold = 1};
    cmn__httpd_loopback_t *lb = cmn__httpd_loopback_new(&cfg, lb_handler, &seen);
    size_t len = sizeof LB_INPUT - 1, out_len;

    (void)state;
    /* The whole pipeline is buffered; only the first request is handed over. */
    assert_int_equal(cmn__httpd_loopback_feed(lb, LB_INPUT, len), len);
    assert_int_equal(seen.calls, 1);
    assert_true(cmn__httpd_loopback_busy(lb));
    /* A buffer is pending: nothing more is read until the response. */
    assert_int_equal(cmn__httpd_loopback_feed(lb, "GET / HTTP/1.1\r\n\r\n", 18), 0);
    cmn__httpd_loopback_output(lb, &out_len);
    assert_int_equal(out_len, 0);
    cmn_httpd_respond(seen.held, 200, "text/plain", "ok", 2, NULL);
    cmn__httpd_loopback_run(lb);
    assert_int_equal(seen.calls, 2);
    /* The second is held when the connection goes: responding later only frees it. */
    cmn__httpd_loopback_free(lb);
    cmn_httpd_respond(seen.held, 200, "text/plain", "ok", 2, NULL);
}

/* More pipelined input than one read buffer holds, answered asynchronously one by one. */
static void test_loopback_pipeline_over_buffer(void **state)
{
    cmn_httpd_config_t cfg = default_cfg();
    struct lb_seen seen = {.hold = 1};
    cmn__httpd_loopback_t *lb = cmn__httpd_loopback_new(&cfg, lb_handler, &seen);
    cmn_buf_t in, want;
    size_t off = 0, out_len, feeds = 0;
    const char *out;

    (void)state;
    cmn_buf_init(&in, 1 << 20);
    cmn_buf_init(&want, 1 << 20);
    for (int i = 0; i < 1500; i++) {
        cmn_buf_printf(&in, "GET /r%d HTTP/1.1\r\n\r\n", i);
        cmn_buf_puts(&want, LB_OK);
    }
    assert_true(in.len > 2 * 16384);
    while (off < in.len) {
        size_t n = cmn__httpd_loopback_feed(lb, in.base + off, in.len - off);
        off += n;
        feeds += n > 0;
        assert_true(n > 0 || seen.held != NULL);
        if (seen.held != NULL) {
            cmn_httpd_req_t *req = seen.held;
            seen.held = NULL;
            cmn_httpd_respond(req, 200, "text/plain", "ok", 2, NULL);
            cmn__httpd_loopback_run(lb);
        }
    }
    while (seen.held != NULL) {
        cmn_httpd_req_t *req = seen.held;
        seen.held = NULL;
        cmn_httpd_respond(req, 200, "text/plain", "ok", 2, NULL);
        cmn__httpd_loopback_run(lb);
    }
    /* Input is taken one read buffer at a time, only once the previous one is parsed. */
    assert_true(feeds >= 3);
    assert_int_equal(seen.calls, 1500);
    assert_int_equal(cmn__httpd_loopback_stats(lb)->requests, 1500);
    out = cmn__httpd_loopback_output(lb, &out_len);
    assert_int_equal(out_len, want.len);
    assert_memory_equal(out, want.base, out_len);
    cmn__httpd_loopback_free(lb);
    cmn_buf_dispose(&in);
    cmn_buf_dispose(&want);
}

static void test_loopback_timeout_and_eof(void **state)
{
    cmn_httpd_config_t cfg = default_cfg();
    struct lb_seen seen = {0};
    cmn__httpd_loopback_t *lb = cmn__httpd_loopback_new(&cfg, lb_handler, &seen);
    size_t out_len;
    const char *out;

    (void)state;
    assert_int_equal(cmn__httpd_loopback_feed(lb, "GET /x HTTP/1.1\r\n", 17), 17);
    cmn__httpd_loopback_timeout(lb);
    out = cmn__httpd_loopback_output(lb, &out_len);
    assert_string_equal(out, error_resp(408, "timeout", "request not received within 5000 ms"));
    assert_true(cmn__httpd_loopback_closed(lb));
    assert_int_equal(cmn__httpd_loopback_feed(lb, "GET", 3), 0);
    cmn__httpd_loopback_free(lb);

    lb = cmn__httpd_loopback_new(&cfg, lb_handler, &seen);
    cmn__httpd_loopback_eof(lb);
    assert_true(cmn__httpd_loopback_closed(lb));
    cmn__httpd_loopback_output(lb, &out_len);
    assert_int_equal(out_len, 0);
    cmn__httpd_loopback_free(lb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_get_simple, teardown),
        cmocka_unit_test_teardown(test_post_body, teardown),
        cmocka_unit_test_teardown(test_chunked_body, teardown),
        cmocka_unit_test_teardown(test_keep_alive, teardown),
        cmocka_unit_test_teardown(test_pipelining_in_order, teardown),
        cmocka_unit_test_teardown(test_pipelining_many, teardown),
        cmocka_unit_test_teardown(test_split_reads, teardown),
        cmocka_unit_test_teardown(test_body_limit_content_length, teardown),
        cmocka_unit_test_teardown(test_body_limit_chunked, teardown),
        cmocka_unit_test_teardown(test_header_limit, teardown),
        cmocka_unit_test_teardown(test_malformed, teardown),
        cmocka_unit_test_teardown(test_bad_version, teardown),
        cmocka_unit_test_teardown(test_request_timeout, teardown),
        cmocka_unit_test_teardown(test_idle_timeout, teardown),
        cmocka_unit_test_teardown(test_connection_cap, teardown),
        cmocka_unit_test_teardown(test_http10, teardown),
        cmocka_unit_test_teardown(test_connection_close, teardown),
        cmocka_unit_test_teardown(test_head, teardown),
        cmocka_unit_test_teardown(test_expect_continue, teardown),
        cmocka_unit_test_teardown(test_large_response, teardown),
        cmocka_unit_test_teardown(test_backpressure, teardown),
        cmocka_unit_test_teardown(test_set_limits, teardown),
        cmocka_unit_test_teardown(test_disconnect_reset_while_handler, teardown),
        cmocka_unit_test_teardown(test_respond_after_server_freed, teardown),
        cmocka_unit_test_teardown(test_half_close_gets_response, teardown),
        cmocka_unit_test_teardown(test_graceful_close_inflight, teardown),
        cmocka_unit_test(test_status_text),
        cmocka_unit_test(test_start_errors),
        cmocka_unit_test(test_loopback_every_split),
        cmocka_unit_test(test_loopback_async_and_detach),
        cmocka_unit_test(test_loopback_pipeline_over_buffer),
        cmocka_unit_test(test_loopback_timeout_and_eof),
    };

    /* A client that vanishes makes writes fail with EPIPE; the signal would kill the test. */
    signal(SIGPIPE, SIG_IGN);
    if (getenv("TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    return cmocka_run_group_tests_name("gateway_http", tests, NULL, NULL);
}
