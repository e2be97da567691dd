/*
 * libcmn's HTTP client (common/src/http_client.c) against real loopback servers.
 *
 * Client and servers share one loop on the test's thread.  The server is the gateway's HTTP server
 * (cmn/httpd.h) with the handler below, which dispatches on the path: /echo answers with the
 * request body and a few headers, /status/N with status N, /big/N with N bytes, /slow/MS after MS
 * milliseconds, /ordered/ID and /close/ID hold the request until the test lets go of it.  The
 * handler records what it saw (method, headers, body, arrival order, how many requests it held at
 * once).  Two things the gateway server never sends (a 100 Continue before the answer, a body
 * without Content-Length) come from a canned responder: it reads a request head and writes fixed
 * bytes, then closes.
 *
 * Client callbacks only record (cmocka's assertions longjmp, which a loop callback must not do);
 * the test body asserts once uv_run returns, which happens when the expected number of callbacks
 * has arrived (uv_stop) or when the watchdog fires (a failure).  Every callback also records
 * whether it ran inside a public call of the client, which must never happen.  Each test ends in
 * finish(): held requests answered, client and servers closed, the loop run until nothing is left,
 * done callbacks counted, and uv_loop_close() == 0, so a leaked handle fails the test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "cmn/buf.h"
#include "cmn/err.h"
#include "cmn/http_client.h"
#include "cmn/mem.h"
#include "cmn/httpd.h"

#define MAX_REQS 16
#define MAX_SEEN 32
#define MAX_RAW 8
#define WATCHDOG_MS 15000
#define DRAIN_MS 5000

/* What a client callback saw; resp is borrowed, so everything is copied. */
struct result {
    int calls;
    int sync; /* calls made while inside cmn_http_request or cmn_http_client_close */
    int error;
    long status;
    char text[256];
    cmn_buf_t body;
    cmn_buf_t headers;
    uint64_t elapsed_ms;
    int seq; /* completion order, from 1 */
};

/* What the server saw of one request. */
struct seen {
    int method;
    char url[64];
    int has_ctype, has_expect, has_clen;
    char ctype[64];
    char xone[64];
    char xtwo[64];
    size_t body_len;
};

/* A request the handler answers later (a timer, the release timer, or finish()). */
struct held {
    struct held *next;
    uv_timer_t timer;
    cmn_httpd_req_t *req;
    struct fx *f;
    int id;
    int answered;
};

struct rawconn {
    uv_tcp_t tcp;
    uv_write_t wr;
    struct fx *f;
    char head[4096];
    size_t len;
    int writing;
    int closing;
};

struct fx {
    uv_loop_t loop;
    uv_timer_t watchdog;
    int watchdog_fired;
    int drain_timed_out;
    int finished;

    /* client side */
    cmn_http_client_t *client;
    int client_created;
    int client_done;
    int done_sync;             /* done ran inside a public call */
    int callbacks_before_done; /* callbacks seen when the client's done ran */
    int in_api;
    int expected; /* callbacks still to come before uv_stop */
    int seq;
    struct result res[MAX_REQS];
    void (*hook)(struct fx *f, int i); /* runs at the end of callback i */
    int hook_rc;

    /* gateway server */
    cmn_httpd_t *srv;
    int port;
    int srv_done;
    struct seen seen[MAX_SEEN];
    int nseen;
    int arrivals[MAX_SEEN]; /* ids of /ordered/ID in arrival order */
    int narrivals;
    struct held *held;
    int outstanding, max_outstanding;
    uv_timer_t release;
    int release_on;
    int next_release;
    int close_after; /* /close/ID: close the client when this many have arrived */
    int nclose;

    /* canned responder */
    uv_tcp_t raw;
    int raw_on;
    int raw_port;
    const char *raw_resp;
    size_t raw_len;
    int raw_conns;
    struct rawconn *rawc[MAX_RAW];
};

static struct fx F;

/* ---- gateway server: handler ---- */

static void copy_header(const cmn_httpd_req_t *req, const char *name, char *dst, size_t n, int *has)
{
    size_t len = 0;
    const char *v = cmn_httpd_req_header(req, name, &len);

    if (has != NULL)
        *has = v != NULL;
    snprintf(dst, n, "%.*s", v != NULL ? (int)len : 0, v != NULL ? v : "");
}

static void answer(struct held *h)
{
    char body[32];

    snprintf(body, sizeof body, "held %d", h->id);
    h->answered = 1;
    h->f->outstanding--;
    uv_timer_stop(&h->timer);
    cmn_httpd_respond(h->req, 200, "text/plain", body, strlen(body), NULL);
}

static void on_held_timer(uv_timer_t *t)
{
    answer(t->data);
}

static struct held *hold(struct fx *f, cmn_httpd_req_t *req, int id)
{
    struct held *h = cmn_xcalloc(1, sizeof *h);

    h->req = req;
    h->f = f;
    h->id = id;
    uv_timer_init(&f->loop, &h->timer);
    h->timer.data = h;
    h->next = f->held;
    f->held = h;
    if (++f->outstanding > f->max_outstanding)
        f->max_outstanding = f->outstanding;
    return h;
}

static void on_client_done(void *data)
{
    struct fx *f = data;

    f->client_done++;
    f->done_sync += f->in_api;
    f->callbacks_before_done = f->seq;
}

static void close_client(struct fx *f)
{
    f->in_api = 1;
    cmn_http_client_close(f->client, on_client_done, f);
    f->in_api = 0;
    f->client = NULL;
}

static void handler(cmn_httpd_req_t *req, void *data)
{
    struct fx *f = data;
    char url[64];
    struct seen *s = NULL;
    long n;

    snprintf(url, sizeof url, "%.*s", (int)req->url_len, req->url);
    if (f->nseen < MAX_SEEN) {
        s = &f->seen[f->nseen++];
        s->method = req->method;
        snprintf(s->url, sizeof s->url, "%s", url);
        copy_header(req, "Content-Type", s->ctype, sizeof s->ctype, &s->has_ctype);
        copy_header(req, "X-One", s->xone, sizeof s->xone, NULL);
        copy_header(req, "X-Two", s->xtwo, sizeof s->xtwo, NULL);
        s->has_expect = cmn_httpd_req_header(req, "Expect", NULL) != NULL;
        s->has_clen = cmn_httpd_req_header(req, "Content-Length", NULL) != NULL;
        s->body_len = req->body_len;
    }
    if (strcmp(url, "/echo") == 0) {
        cmn_httpd_respond(req, 200, "application/octet-stream", req->body, req->body_len,
                        "X-Reply: yes\r\nX-Dup: first\r\nX-Dup:   last  \r\n");
    } else if (sscanf(url, "/status/%ld", &n) == 1) {
        char body[32];
        snprintf(body, sizeof body, "status %ld", n);
        cmn_httpd_respond(req, (int)n, "text/plain", body, strlen(body), NULL);
    } else if (sscanf(url, "/big/%ld", &n) == 1) {
        char *big = cmn_xalloc((size_t)n);
        memset(big, 'b', (size_t)n);
        cmn_httpd_respond(req, 200, "text/plain", big, (size_t)n, NULL);
        cmn_free(big);
    } else if (sscanf(url, "/slow/%ld", &n) == 1) {
        struct held *h = hold(f, req, 0);
        uv_timer_start(&h->timer, on_held_timer, (uint64_t)n, 0);
    } else if (sscanf(url, "/ordered/%ld", &n) == 1) {
        hold(f, req, (int)n);
        if (f->narrivals < MAX_SEEN)
            f->arrivals[f->narrivals++] = (int)n;
    } else if (sscanf(url, "/close/%ld", &n) == 1) {
        hold(f, req, (int)n);
        if (++f->nclose == f->close_after)
            close_client(f);
    } else {
        cmn_httpd_respond(req, 404, "text/plain", "no", 2, NULL);
    }
}

/* The /ordered test: answers the held request `next_release` only, one per tick. */
static void on_release(uv_timer_t *t)
{
    struct fx *f = t->data;

    for (struct held *h = f->held; h != NULL; h = h->next) {
        if (!h->answered && h->id == f->next_release) {
            answer(h);
            f->next_release++;
            break;
        }
    }
}

/* ---- canned responder ---- */

static void raw_closed(uv_handle_t *h)
{
    struct rawconn *rc = h->data;

    for (int i = 0; i < MAX_RAW; i++)
        if (rc->f->rawc[i] == rc)
            rc->f->rawc[i] = NULL;
    cmn_free(rc);
}

static void raw_close(struct rawconn *rc)
{
    if (!rc->closing) {
        rc->closing = 1;
        uv_close((uv_handle_t *)&rc->tcp, raw_closed);
    }
}

static void raw_written(uv_write_t *w, int status)
{
    (void)status;
    raw_close(w->data);
}

static void raw_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct rawconn *rc = h->data;
    size_t room = sizeof rc->head - 1 - rc->len;

    (void)suggested;
    *buf = uv_buf_init(rc->head + rc->len, (unsigned)room);
}

static void raw_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct rawconn *rc = s->data;

    (void)buf;
    if (n < 0 || (n == 0 && rc->len + 1 >= sizeof rc->head)) {
        raw_close(rc);
        return;
    }
    rc->len += (size_t)n;
    rc->head[rc->len] = '\0';
    if (!rc->writing && strstr(rc->head, "\r\n\r\n") != NULL) {
        uv_buf_t out = uv_buf_init((char *)rc->f->raw_resp, (unsigned)rc->f->raw_len);

        rc->writing = 1;
        uv_read_stop(s);
        rc->wr.data = rc;
        if (uv_write(&rc->wr, s, &out, 1, raw_written) != 0)
            raw_close(rc);
    }
}

static void raw_on_connection(uv_stream_t *server, int status)
{
    struct fx *f = server->data;
    struct rawconn *rc;

    if (status < 0)
        return;
    rc = cmn_xcalloc(1, sizeof *rc);
    rc->f = f;
    uv_tcp_init(&f->loop, &rc->tcp);
    rc->tcp.data = rc;
    f->raw_conns++;
    for (int i = 0; i < MAX_RAW; i++) {
        if (f->rawc[i] == NULL) {
            f->rawc[i] = rc;
            break;
        }
    }
    if (uv_accept(server, (uv_stream_t *)&rc->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&rc->tcp, raw_alloc, raw_read) != 0)
        raw_close(rc);
}

static void raw_start(struct fx *f, const char *resp, size_t len)
{
    struct sockaddr_in a;
    int alen = sizeof a;

    f->raw_resp = resp;
    f->raw_len = len;
    assert_int_equal(uv_tcp_init(&f->loop, &f->raw), 0);
    f->raw.data = f;
    f->raw_on = 1;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &a), 0);
    assert_int_equal(uv_tcp_bind(&f->raw, (const struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&f->raw, 16, raw_on_connection), 0);
    assert_int_equal(uv_tcp_getsockname(&f->raw, (struct sockaddr *)&a, &alen), 0);
    f->raw_port = ntohs(a.sin_port);
}

/* ---- client side ---- */

static void on_resp(void *data, const cmn_http_response_t *r)
{
    struct result *res = data;
    struct fx *f = &F;

    res->calls++;
    res->sync += f->in_api;
    res->error = r->error;
    res->status = r->status;
    snprintf(res->text, sizeof res->text, "%s", r->error_text != NULL ? r->error_text : "(null)");
    cmn_buf_reset(&res->body);
    cmn_buf_reset(&res->headers);
    cmn_buf_append(&res->body, r->body, r->body_len);
    cmn_buf_append(&res->headers, r->headers, r->headers_len);
    /* The body must be NUL-terminated as promised. */
    if (r->body[r->body_len] != '\0')
        res->sync += 1000;
    res->elapsed_ms = r->elapsed_ms;
    res->seq = ++f->seq;
    if (f->hook != NULL)
        f->hook(f, (int)(res - f->res));
    if (--f->expected == 0)
        uv_stop(&f->loop);
}

static cmn_http_request_t make_req(const char *method, const char *url)
{
    cmn_http_request_t r;

    memset(&r, 0, sizeof r);
    r.method = method;
    r.url = url;
    return r;
}

static int issue(struct fx *f, int i, cmn_http_request_t *req, const char *path, int port)
{
    char url[128];
    int rc;

    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    req->url = url;
    f->in_api = 1;
    rc = cmn_http_request(f->client, req, on_resp, &f->res[i]);
    f->in_api = 0;
    req->url = NULL;
    if (rc == 0)
        f->expected++;
    return rc;
}

/* GET path on the gateway server, all defaults. */
static void get(struct fx *f, int i, const char *path)
{
    cmn_http_request_t req = make_req("GET", NULL);

    assert_int_equal(issue(f, i, &req, path, f->port), 0);
}

static const char *resp_header(const struct result *res, const char *name, size_t *len)
{
    cmn_http_response_t r;

    memset(&r, 0, sizeof r);
    r.headers = res->headers.base != NULL ? res->headers.base : "";
    r.headers_len = res->headers.len;
    return cmn_http_response_header(&r, name, len);
}

static void assert_header(const struct result *res, const char *name, const char *want)
{
    size_t len = 99;
    const char *v = resp_header(res, name, &len);

    assert_non_null(v);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(v, want, len);
}

static void run(struct fx *f)
{
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(f->watchdog_fired, 0);
    assert_int_equal(f->expected, 0);
}

static void assert_ok(const struct result *res, long status)
{
    assert_int_equal(res->calls, 1);
    assert_int_equal(res->sync, 0);
    assert_int_equal(res->error, 0);
    assert_string_equal(res->text, "");
    assert_int_equal(res->status, status);
}

static void assert_failed(const struct result *res, int error)
{
    assert_int_equal(res->calls, 1);
    assert_int_equal(res->sync, 0);
    assert_int_equal(res->error, error);
    assert_int_equal(res->status, 0);
    assert_true(strlen(res->text) > 0);
    assert_int_equal(res->body.len, 0);
    assert_int_equal(res->headers.len, 0);
}

/* ---- fixture ---- */

static void on_watchdog(uv_timer_t *t)
{
    struct fx *f = t->data;

    f->watchdog_fired++;
    uv_stop(&f->loop);
}

static void on_srv_done(void *data)
{
    ((struct fx *)data)->srv_done++;
}

static void free_held(uv_handle_t *h)
{
    cmn_free(h->data);
}

/* Closes everything this test opened and runs the loop until nothing is left. */
static void shutdown_all(struct fx *f)
{
    struct held *h;
    int fired;

    if (f->release_on) {
        f->release_on = 0;
        uv_close((uv_handle_t *)&f->release, NULL);
    }
    while ((h = f->held) != NULL) {
        f->held = h->next;
        if (!h->answered)
            answer(h);
        uv_close((uv_handle_t *)&h->timer, free_held);
    }
    if (f->client != NULL)
        close_client(f);
    if (f->srv != NULL) {
        cmn_httpd_close(f->srv, on_srv_done, f);
        f->srv = NULL;
    }
    if (f->raw_on) {
        f->raw_on = 0;
        uv_close((uv_handle_t *)&f->raw, NULL);
        for (int i = 0; i < MAX_RAW; i++)
            if (f->rawc[i] != NULL)
                raw_close(f->rawc[i]);
    }
    /*
     * The watchdog is unreferenced, so the loop stops being alive once everything else is gone.  It
     * is re-armed to bound this drain: a handle that never closes fails the test (in
     * uv_loop_close) instead of hanging it.
     */
    fired = f->watchdog_fired;
    uv_timer_start(&f->watchdog, on_watchdog, DRAIN_MS, 0);
    while (uv_loop_alive(&f->loop) && f->watchdog_fired == fired)
        uv_run(&f->loop, UV_RUN_ONCE);
    f->drain_timed_out = f->watchdog_fired != fired;
    uv_close((uv_handle_t *)&f->watchdog, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

static void finish(struct fx *f)
{
    f->finished = 1;
    shutdown_all(f);
    assert_int_equal(f->watchdog_fired, 0);
    assert_int_equal(f->drain_timed_out, 0);
    assert_int_equal(f->client_done, f->client_created ? 1 : 0);
    assert_int_equal(f->done_sync, 0);
    assert_int_equal(f->srv_done, 1);
    /* done runs after every request callback. */
    assert_int_equal(f->callbacks_before_done, f->seq);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static int setup(void **state)
{
    struct fx *f = &F;
    cmn_httpd_config_t cfg = {.host = "127.0.0.1",
                            .port = 0,
                            .max_header_bytes = 8192,
                            .max_body_bytes = 4 << 20,
                            .max_connections = 64,
                            .idle_timeout_ms = 10000,
                            .request_timeout_ms = 10000};

    memset(f, 0, sizeof *f);
    for (int i = 0; i < MAX_REQS; i++) {
        cmn_buf_init(&f->res[i].body, 8 << 20);
        cmn_buf_init(&f->res[i].headers, 1 << 20);
    }
    if (uv_loop_init(&f->loop) != 0)
        return -1;
    uv_timer_init(&f->loop, &f->watchdog);
    f->watchdog.data = f;
    uv_timer_start(&f->watchdog, on_watchdog, WATCHDOG_MS, 0);
    uv_unref((uv_handle_t *)&f->watchdog);
    if (cmn_httpd_start(&f->loop, &cfg, handler, f, &f->srv) != 0)
        return -1;
    f->port = cmn_httpd_port(f->srv);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    /* After a failed assertion: release what is left, without asserting again. */
    if (!f->finished) {
        f->finished = 1;
        shutdown_all(f);
        uv_loop_close(&f->loop);
    }
    for (int i = 0; i < MAX_REQS; i++) {
        cmn_buf_dispose(&f->res[i].body);
        cmn_buf_dispose(&f->res[i].headers);
    }
    return 0;
}

static void new_client(struct fx *f, size_t max_in_flight)
{
    assert_int_equal(cmn_http_client_new(&f->loop, max_in_flight, &f->client), 0);
    assert_non_null(f->client);
    f->client_created = 1;
}

/* A loopback port where nobody listens; the socket stays bound so nobody else can take it. */
static int closed_port(int *fd_out)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    *fd_out = fd;
    return ntohs(a.sin_port);
}

/* ---- tests ---- */

static void test_get(void **state)
{
    struct fx *f = *state;
    size_t len = 99;

    new_client(f, 4);
    get(f, 0, "/echo");
    assert_int_equal(cmn_http_client_stats(f->client)->in_flight, 1);
    run(f);

    assert_ok(&f->res[0], 200);
    assert_int_equal(f->res[0].body.len, 0);
    assert_string_equal(f->res[0].body.base, "");
    assert_int_equal(f->nseen, 1);
    assert_int_equal(f->seen[0].method, HTTP_GET);
    assert_string_equal(f->seen[0].url, "/echo");
    assert_int_equal(f->seen[0].has_ctype, 0);
    assert_int_equal(f->seen[0].has_clen, 0);
    assert_int_equal(f->seen[0].has_expect, 0);
    /* The header block is the raw final response head. */
    assert_true(f->res[0].headers.len > 17);
    assert_memory_equal(f->res[0].headers.base, "HTTP/1.1 200 OK\r\n", 17);
    assert_memory_equal(f->res[0].headers.base + f->res[0].headers.len - 4, "\r\n\r\n", 4);
    assert_header(&f->res[0], "x-reply", "yes");
    assert_header(&f->res[0], "X-REPLY", "yes");
    assert_header(&f->res[0], "Content-Type", "application/octet-stream");
    assert_header(&f->res[0], "content-length", "0");
    /* The last occurrence wins, without the surrounding white space. */
    assert_header(&f->res[0], "X-Dup", "last");
    assert_null(resp_header(&f->res[0], "X-Missing", &len));
    assert_int_equal(len, 0);
    assert_null(resp_header(&f->res[0], "X-Re", NULL));
    assert_null(resp_header(&f->res[0], "", NULL));
    assert_int_equal(cmn_http_client_stats(f->client)->completed, 1);
    assert_int_equal(cmn_http_client_stats(f->client)->failed, 0);
    assert_int_equal(cmn_http_client_stats(f->client)->in_flight, 0);
    finish(f);
}

static void test_post_binary_echo(void **state)
{
    struct fx *f = *state;
    unsigned char small[300];
    size_t big_len = (3u << 20) / 2; /* over curl's 1 MiB Expect: 100-continue threshold */
    unsigned char *big = cmn_xalloc(big_len);
    const char *typed[] = {"Content-Type: application/x-thing"};
    cmn_http_request_t req;

    for (size_t i = 0; i < sizeof small; i++)
        small[i] = (unsigned char)(i % 5 == 0 ? 0 : i * 7);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (unsigned char)(i * 31 + (i >> 8));
    new_client(f, 1);
    req = make_req("POST", NULL);
    req.body = small;
    req.body_len = sizeof small;
    assert_int_equal(issue(f, 0, &req, "/echo", f->port), 0);
    /* The body is copied: clobbering the caller's buffer now must not matter. */
    memset(small, 0xee, 10);
    for (size_t i = 0; i < 10; i++)
        small[i] = (unsigned char)(i % 5 == 0 ? 0 : i * 7);
    req = make_req("POST", NULL);
    req.body = big;
    req.body_len = big_len;
    req.max_response_bytes = 2 << 20;
    req.headers = typed;
    req.nheaders = 1;
    assert_int_equal(issue(f, 1, &req, "/echo", f->port), 0);
    req = make_req("POST", NULL); /* empty POST: Content-Length: 0 */
    assert_int_equal(issue(f, 2, &req, "/echo", f->port), 0);
    run(f);

    assert_ok(&f->res[0], 200);
    assert_int_equal(f->res[0].body.len, sizeof small);
    assert_memory_equal(f->res[0].body.base, small, sizeof small);
    assert_ok(&f->res[1], 200);
    assert_int_equal(f->res[1].body.len, big_len);
    assert_memory_equal(f->res[1].body.base, big, big_len);
    assert_ok(&f->res[2], 200);
    assert_int_equal(f->res[2].body.len, 0);

    assert_int_equal(f->nseen, 3);
    assert_int_equal(f->seen[0].method, HTTP_POST);
    assert_int_equal(f->seen[0].body_len, sizeof small);
    /* No Content-Type given: none sent (not curl's form-urlencoded default). */
    assert_int_equal(f->seen[0].has_ctype, 0);
    assert_int_equal(f->seen[0].has_expect, 0);
    assert_int_equal(f->seen[1].body_len, big_len);
    assert_int_equal(f->seen[1].has_ctype, 1);
    assert_string_equal(f->seen[1].ctype, "application/x-thing");
    assert_int_equal(f->seen[1].has_expect, 0);
    assert_int_equal(f->seen[2].has_clen, 1);
    assert_int_equal(f->seen[2].body_len, 0);
    assert_int_equal(f->seen[2].has_ctype, 0);
    cmn_free(big);
    finish(f);
}

static void test_methods_and_headers(void **state)
{
    struct fx *f = *state;
    const char *hdrs[] = {"X-One: 1", "X-Two: two words"};
    cmn_http_request_t req;

    new_client(f, 4);
    req = make_req("PUT", NULL);
    req.headers = hdrs;
    req.nheaders = 2;
    req.body = "put-body";
    req.body_len = 8;
    assert_int_equal(issue(f, 0, &req, "/echo", f->port), 0);
    req = make_req("DELETE", NULL);
    assert_int_equal(issue(f, 1, &req, "/status/204", f->port), 0);
    req = make_req("HEAD", NULL);
    assert_int_equal(issue(f, 2, &req, "/big/100", f->port), 0);
    req = make_req("PATCH", NULL);
    req.body = "p\0q";
    req.body_len = 3;
    assert_int_equal(issue(f, 3, &req, "/echo", f->port), 0);
    run(f);

    assert_ok(&f->res[0], 200);
    assert_string_equal(f->res[0].body.base, "put-body");
    assert_ok(&f->res[1], 204);
    assert_ok(&f->res[2], 200);
    assert_int_equal(f->res[2].body.len, 0);
    assert_header(&f->res[2], "Content-Length", "100");
    assert_ok(&f->res[3], 200);
    assert_int_equal(f->res[3].body.len, 3);
    assert_memory_equal(f->res[3].body.base, "p\0q", 3);

    assert_int_equal(f->nseen, 4);
    for (int i = 0; i < 4; i++) {
        const struct seen *s = &f->seen[i];

        if (strcmp(s->url, "/echo") == 0 && s->method == HTTP_PUT) {
            assert_string_equal(s->xone, "1");
            assert_string_equal(s->xtwo, "two words");
            assert_int_equal(s->body_len, 8);
        } else if (s->method == HTTP_DELETE) {
            assert_string_equal(s->url, "/status/204");
            assert_int_equal(s->has_clen, 0);
            assert_string_equal(s->xone, "");
        } else if (s->method == HTTP_HEAD) {
            assert_string_equal(s->url, "/big/100");
        } else {
            assert_int_equal(s->method, HTTP_PATCH);
            assert_int_equal(s->body_len, 3);
        }
    }
    finish(f);
}

/* The 404 callback sends the next request itself: callbacks may call the client. */
static void chain_hook(struct fx *f, int i)
{
    if (i == 0)
        f->hook_rc = issue(f, 1, &(cmn_http_request_t){.method = "GET"}, "/status/500", f->port);
}

static void test_status_passthrough(void **state)
{
    struct fx *f = *state;

    new_client(f, 2);
    f->hook = chain_hook;
    get(f, 0, "/status/404");
    run(f);

    assert_int_equal(f->hook_rc, 0);
    assert_ok(&f->res[0], 404);
    assert_string_equal(f->res[0].body.base, "status 404");
    assert_ok(&f->res[1], 500);
    assert_string_equal(f->res[1].body.base, "status 500");
    assert_int_equal(f->res[0].seq, 1);
    assert_int_equal(f->res[1].seq, 2);
    assert_int_equal(cmn_http_client_stats(f->client)->completed, 2);
    assert_int_equal(cmn_http_client_stats(f->client)->failed, 0);
    finish(f);
}

static void test_refused(void **state)
{
    struct fx *f = *state;
    int fd;
    int port = closed_port(&fd);
    cmn_http_request_t req = make_req("GET", NULL);

    new_client(f, 2);
    assert_int_equal(issue(f, 0, &req, "/", port), 0);
    run(f);
    close(fd);

    assert_failed(&f->res[0], CMN_EIO);
    assert_true(f->res[0].elapsed_ms < 1000);
    assert_int_equal(cmn_http_client_stats(f->client)->failed, 1);
    assert_int_equal(cmn_http_client_stats(f->client)->completed, 0);
    finish(f);
}

/*
 * A listener with backlog 0 whose one accept-queue slot is taken: Linux drops further SYNs, so the
 * next connect neither completes nor fails until its SYN retransmits (a second later).
 */
static void test_connect_timeout(void **state)
{
    struct fx *f = *state;
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    int lfd = socket(AF_INET, SOCK_STREAM, 0), filler = socket(AF_INET, SOCK_STREAM, 0);
    cmn_http_request_t req = make_req("GET", NULL);

    assert_true(lfd >= 0 && filler >= 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(lfd, 0), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
    assert_int_equal(connect(filler, (struct sockaddr *)&a, sizeof a), 0);

    new_client(f, 2);
    req.connect_timeout_ms = 200;
    req.timeout_ms = 5000;
    assert_int_equal(issue(f, 0, &req, "/", ntohs(a.sin_port)), 0);
    run(f);
    close(filler);
    close(lfd);

    assert_failed(&f->res[0], CMN_ETIMEOUT);
    assert_true(f->res[0].elapsed_ms >= 190);
    assert_true(f->res[0].elapsed_ms < 1000);
    /* curl's own text, through CURLOPT_ERRORBUFFER: the connect phase, not the total timeout. */
    assert_non_null(strstr(f->res[0].text, "Failed to connect to 127.0.0.1 port"));
    assert_non_null(strstr(f->res[0].text, "Timeout was reached"));
    finish(f);
}

static void test_total_timeout(void **state)
{
    struct fx *f = *state;
    cmn_http_request_t req = make_req("GET", NULL);

    new_client(f, 2);
    req.timeout_ms = 200;
    assert_int_equal(issue(f, 0, &req, "/slow/3000", f->port), 0);
    run(f);

    assert_failed(&f->res[0], CMN_ETIMEOUT);
    assert_true(f->res[0].elapsed_ms >= 190);
    assert_true(f->res[0].elapsed_ms < 1500);
    assert_non_null(strstr(f->res[0].text, "Operation timed out after"));
    assert_int_equal(f->nseen, 1);
    assert_int_equal(cmn_http_client_stats(f->client)->failed, 1);
    finish(f);
}

static void test_too_big_content_length(void **state)
{
    struct fx *f = *state;
    cmn_http_request_t req = make_req("GET", NULL);

    new_client(f, 2);
    req.max_response_bytes = 4096;
    assert_int_equal(issue(f, 0, &req, "/big/4096", f->port), 0);
    assert_int_equal(issue(f, 1, &req, "/big/4097", f->port), 0);
    run(f);

    assert_ok(&f->res[0], 200);
    assert_int_equal(f->res[0].body.len, 4096);
    assert_failed(&f->res[1], CMN_ETOOBIG);
    finish(f);
}

/* A body without Content-Length (ends at close): only the write callback's cap can stop it. */
static void test_too_big_unframed(void **state)
{
    struct fx *f = *state;
    static char resp[64 + 5000];
    size_t hlen;
    cmn_http_request_t req = make_req("GET", NULL);

    hlen = (size_t)snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    memset(resp + hlen, 'z', 5000);
    raw_start(f, resp, hlen + 5000);
    new_client(f, 1);
    req.max_response_bytes = 4096;
    assert_int_equal(issue(f, 0, &req, "/", f->raw_port), 0);
    req.max_response_bytes = 5000;
    assert_int_equal(issue(f, 1, &req, "/", f->raw_port), 0);
    run(f);

    assert_failed(&f->res[0], CMN_ETOOBIG);
    assert_non_null(strstr(f->res[0].text, "4096"));
    assert_ok(&f->res[1], 200);
    assert_int_equal(f->res[1].body.len, 5000);
    assert_int_equal(f->raw_conns, 2);
    finish(f);
}

/* Only the final response's header block is kept, not the 100 Continue before it. */
static void test_interim_response(void **state)
{
    struct fx *f = *state;
    static const char resp[] = "HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n"
                               "HTTP/1.1 201 Created\r\nX-Final: yes\r\nContent-Length: 2\r\n"
                               "Connection: close\r\n\r\nok";
    static const char want[] = "HTTP/1.1 201 Created\r\nX-Final: yes\r\nContent-Length: 2\r\n"
                               "Connection: close\r\n\r\n";
    cmn_http_request_t req = make_req("GET", NULL);

    raw_start(f, resp, sizeof resp - 1);
    new_client(f, 1);
    assert_int_equal(issue(f, 0, &req, "/", f->raw_port), 0);
    run(f);

    assert_ok(&f->res[0], 201);
    assert_string_equal(f->res[0].body.base, "ok");
    assert_int_equal(f->res[0].headers.len, sizeof want - 1);
    assert_memory_equal(f->res[0].headers.base, want, sizeof want - 1);
    assert_null(resp_header(&f->res[0], "X-Interim", NULL));
    assert_header(&f->res[0], "x-final", "yes");
    finish(f);
}

/*
 * Six requests, two slots.  The server answers only the lowest unanswered id, one per tick, so
 * exactly one slot frees at a time: the client must then start the oldest queued request.  Had it
 * started any other, the server would wait for an id that never comes and the watchdog would fire.
 */
static void test_max_in_flight_fifo(void **state)
{
    struct fx *f = *state;
    char path[32];
    const cmn_http_client_stats_t *st;

    new_client(f, 2);
    for (int i = 0; i < 6; i++) {
        snprintf(path, sizeof path, "/ordered/%d", i);
        get(f, i, path);
    }
    st = cmn_http_client_stats(f->client);
    assert_int_equal(st->in_flight, 2);
    assert_int_equal(st->queued, 4);
    uv_timer_init(&f->loop, &f->release);
    f->release.data = f;
    f->release_on = 1;
    uv_timer_start(&f->release, on_release, 20, 20);
    run(f);

    assert_int_equal(f->max_outstanding, 2);
    assert_int_equal(f->narrivals, 6);
    assert_true((f->arrivals[0] == 0 && f->arrivals[1] == 1) ||
                (f->arrivals[0] == 1 && f->arrivals[1] == 0));
    for (int i = 2; i < 6; i++)
        assert_int_equal(f->arrivals[i], i);
    for (int i = 0; i < 6; i++) {
        char want[16];

        snprintf(want, sizeof want, "held %d", i);
        assert_ok(&f->res[i], 200);
        assert_string_equal(f->res[i].body.base, want);
        assert_int_equal(f->res[i].seq, i + 1);
    }
    assert_int_equal(st->in_flight, 0);
    assert_int_equal(st->queued, 0);
    assert_int_equal(st->completed, 6);
    /* Two connections, each reused: never more than max_in_flight. */
    assert_int_equal(cmn_httpd_stats(f->srv)->connections_accepted, 2);
    finish(f);
}

static void test_keepalive_reuse(void **state)
{
    struct fx *f = *state;

    new_client(f, 1);
    for (int i = 0; i < 5; i++)
        get(f, i, "/status/200");
    run(f);

    for (int i = 0; i < 5; i++) {
        assert_ok(&f->res[i], 200);
        assert_int_equal(f->res[i].seq, i + 1);
        assert_header(&f->res[i], "Connection", "keep-alive");
    }
    assert_int_equal(cmn_httpd_stats(f->srv)->requests, 5);
    assert_int_equal(cmn_httpd_stats(f->srv)->connections_accepted, 1);
    finish(f);
}

/* The server closes the client once two of five requests have arrived (three still queued). */
static void test_close_cancels(void **state)
{
    struct fx *f = *state;
    char path[32];

    new_client(f, 2);
    f->close_after = 2;
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "/close/%d", i);
        get(f, i, path);
    }
    run(f);

    assert_null(f->client);
    assert_int_equal(f->nclose, 2);
    for (int i = 0; i < 5; i++) {
        assert_failed(&f->res[i], CMN_EIO);
        assert_string_equal(f->res[i].text, "cancelled");
    }
    finish(f);
    assert_int_equal(f->callbacks_before_done, 5);
}

/* Closing from inside a completion callback; the requests behind it are cancelled. */
static void close_hook(struct fx *f, int i)
{
    if (i != 0)
        return;
    cmn_http_client_t *c = f->client;

    close_client(f);
    /* A closing client takes no new requests. */
    f->hook_rc = cmn_http_request(c, &(cmn_http_request_t){.method = "GET", .url = "http://x/"},
                                  on_resp, &f->res[9]);
}

static void test_close_from_callback(void **state)
{
    struct fx *f = *state;

    new_client(f, 1);
    f->hook = close_hook;
    for (int i = 0; i < 4; i++)
        get(f, i, "/status/200");
    run(f);

    assert_int_equal(f->hook_rc, CMN_EINVAL);
    assert_ok(&f->res[0], 200);
    for (int i = 1; i < 4; i++) {
        assert_failed(&f->res[i], CMN_EIO);
        assert_string_equal(f->res[i].text, "cancelled");
    }
    assert_int_equal(f->res[9].calls, 0);
    assert_int_equal(f->nseen, 1);
    finish(f);
    assert_int_equal(f->callbacks_before_done, 4);
}

static void test_close_idle(void **state)
{
    struct fx *f = *state;

    new_client(f, 3);
    get(f, 0, "/status/200");
    run(f);
    assert_ok(&f->res[0], 200);
    /* The connection is now idle in curl's cache; closing must release it too. */
    close_client(f);
    assert_int_equal(f->client_done, 0);
    finish(f);
    assert_int_equal(f->client_done, 1);
}

static void test_invalid_arguments(void **state)
{
    struct fx *f = *state;
    cmn_http_client_t *c = (cmn_http_client_t *)&c; /* must be overwritten */
    const char *bad_hdr[] = {"NoColon"};
    const char *crlf_hdr[] = {"X-A: 1\r\nX-Injected: 2"};
    const char *space_hdr[] = {"X A: 1"};
    cmn_http_request_t req;
    char url[64];

    assert_int_equal(cmn_http_client_new(&f->loop, 0, &c), CMN_EINVAL);
    assert_null(c);
    assert_int_equal(cmn_http_client_new(NULL, 1, &c), CMN_EINVAL);
    new_client(f, 1);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/echo", f->port);

    req = make_req(NULL, url);
    assert_int_equal(cmn_http_request(f->client, &req, on_resp, &f->res[0]), CMN_EINVAL);
    req = make_req("G ET", url);
    assert_int_equal(cmn_http_request(f->client, &req, on_resp, &f->res[0]), CMN_EINVAL);
    req = make_req("", url);
    assert_int_equal(cmn_http_request(f->client, &req, on_resp, &f->res[0]), CMN_EINVAL);
    req = make_req("GET", "ftp://127.0.0.1/");
    assert_int_equal(cmn_http_request(f->client, &req, on_resp, &f->res[0]), CMN_EINVAL);
    req = make_req("GET", "http://127.0.0.1/a b");
    assert_int_equal(cmn_http_request(f->client, &req, on_resp, &f->res[0]), CMN_EINVAL);
    req = make_req("GET", NULL);
    assert_int_equal(cmn_http_request(f->client, &req, on_resp, &f->res[0]), CMN_EINVAL);
    req = make_req("POST", url);
    req.body_len = 5;
    assert_int_equal(cmn_http_request(f->client, &req, on_resp, &f->res[0]), CMN_EINVAL);
    req = make_req("GET", url);
    req.nheaders = 1;
    assert_int_equal(cmn_http_request(f->client, &req, on_resp, &f->res[0]), CMN_EINVAL);
    req.headers = bad_hdr;
    assert_int_equal(cmn_http_request(f->client, &req, on_resp, &f->res[0]), CMN_EINVAL);
    req.headers = crlf_hdr;
    assert_int_equal(cmn_http_request(f->client, &req, on_resp, &f->res[0]), CMN_EINVAL);
    req.headers = space_hdr;
    assert_int_equal(cmn_http_request(f->client, &req, on_resp, &f->res[0]), CMN_EINVAL);
    req = make_req("GET", url);
    req.timeout_ms = -1;
    assert_int_equal(cmn_http_request(f->client, &req, on_resp, &f->res[0]), CMN_EINVAL);
    req = make_req("GET", url);
    assert_int_equal(cmn_http_request(f->client, &req, NULL, NULL), CMN_EINVAL);
    assert_int_equal(cmn_http_request(NULL, &req, on_resp, &f->res[0]), CMN_EINVAL);
    assert_int_equal(cmn_http_request(f->client, NULL, on_resp, &f->res[0]), CMN_EINVAL);
    assert_int_equal(cmn_http_client_stats(f->client)->queued, 0);
    assert_int_equal(cmn_http_client_stats(f->client)->in_flight, 0);

    /* And a valid one still works afterwards. */
    get(f, 1, "/status/200");
    run(f);
    assert_int_equal(f->res[0].calls, 0);
    assert_ok(&f->res[1], 200);
    assert_int_equal(f->nseen, 1);
    finish(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_binary_echo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_methods_and_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_passthrough, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_total_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_big_content_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_big_unframed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interim_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_in_flight_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_cancels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_arguments, setup, teardown),
    };

    /* The gateway server writes to clients that may have gone (cmn/httpd.h). */
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name("common/http_client", tests, NULL, NULL);
}
