/*
 * The bridge's keep-alive HTTP/1.1 client for event POSTs to a plain http:// gateway (fwd.h).
 *
 * Design note.
 *
 *   requests     a request is its whole message (request line, headers, body) in one buffer, so
 *                sending it is one uv_write.  It waits in `queue` until a connection is free.
 *   connections  each on exactly one list: `busy` (resolving, connecting, or carrying a request)
 *                or `idle` (connected, nothing out).  An idle connection keeps reading: the peer
 *                closing it, or sending anything unasked, closes it at once, so a request rarely
 *                meets a dead connection.  When one does (no byte of the answer before the close),
 *                the request goes back to the head of the queue, once, for a new connection.
 *   responses    http_parser, paused at the end of each message; a connection goes back to idle
 *                only when the response said keep-alive and nothing followed it, and it does so
 *                before the callback runs (the body handed to it is swapped out first), so a
 *                request sent from the callback reuses it.
 *   failures     delivered by a uv_idle_t on the next turn, so no call of the API ever runs a
 *                callback.
 *   closing      queued and running requests fail (cancelled); the client is freed when the idle
 *                handle and every connection (two handles each, plus a pending name lookup) have
 *                closed.
 */
#include "fwd.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmn/buf.h"
#include "cmn/err.h"
#include "cmn/mem.h"

#define MAX_RESPONSE_BODY ((size_t)1 << 20)

struct freq {
    struct freq *next; /* in f->queue or f->failed */
    char *msg;
    size_t len;
    long connect_timeout_ms, timeout_ms;
    cmn_http_cb cb;
    void *data;
    int resent; /* sent once more on a new connection already */
    int error;
    const char *error_text;
    uint64_t started;
};

enum { CONN_RESOLVING, CONN_CONNECTING, CONN_READY };

struct conn {
    struct conn *next, *prev;
    struct conn **list; /* &f->busy or &f->idle; NULL once closing */
    lpr_fwd_t *f;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect;
    uv_getaddrinfo_t gai;
    uv_write_t write;
    int pending; /* handles not yet closed, plus the name lookup while it runs */
    int state;
    int reused; /* a response came back on it before */
    int closing;
    struct freq *req;
    http_parser parser;
    int done; /* the current response is complete */
    int toobig;
    size_t got; /* bytes received of the current response */
    cmn_buf_t body;
};

struct lpr_fwd {
    uv_loop_t *loop;
    char *host; /* for the name lookup: brackets of an IPv6 literal removed */
    char *port;
    char *authority; /* the Host header's value */
    char *prefix;    /* the URL's path, "" or "/...", put before each request's path */
    struct sockaddr_storage addr;
    int numeric; /* host is an address: no lookup */
    size_t max_conns, nconns;
    struct conn *busy, *idle;
    struct freq *queue, **queue_tail;
    struct freq *failed, **failed_tail;
    uv_idle_t idler;
    int closing;
    size_t live; /* the idle handle (until closed) and every connection not yet freed */
    void (*done)(void *);
    void *done_data;
    http_parser_settings settings;
    cmn_buf_t spare; /* the body of the response being delivered (finish) */
    char rbuf[64 * 1024]; /* every read lands here and is parsed at once */
};

static void dispatch(lpr_fwd_t *f);

/* ---- lists ---------------------------------------------------------------------------------- */

static void list_remove(struct conn *c)
{
    if (c->list == NULL)
        return;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        *c->list = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
    c->list = NULL;
}

static void list_push(struct conn **list, struct conn *c)
{
    list_remove(c);
    c->prev = NULL;
    c->next = *list;
    if (*list != NULL)
        (*list)->prev = c;
    *list = c;
    c->list = list;
}

static void req_free(struct freq *r)
{
    cmn_free(r->msg);
    cmn_free(r);
}

/* ---- freeing -------------------------------------------------------------------------------- */

static void fwd_release(lpr_fwd_t *f)
{
    if (--f->live > 0)
        return;
    void (*done)(void *) = f->done;
    void *data = f->done_data;
    cmn_free(f->host);
    cmn_free(f->port);
    cmn_free(f->authority);
    cmn_free(f->prefix);
    cmn_buf_dispose(&f->spare);
    cmn_free(f);
    if (done != NULL)
        done(data);
}

static void conn_release(struct conn *c)
{
    if (--c->pending > 0)
        return;
    lpr_fwd_t *f = c->f;
    cmn_buf_dispose(&c->body);
    cmn_free(c);
    fwd_release(f);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    conn_release(h->data);
}

/* Takes the connection out of service; its request (if any) is the caller's to finish. */
static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    list_remove(c);
    c->f->nconns--;
    if (c->state == CONN_RESOLVING)
        uv_cancel((uv_req_t *)&c->gai); /* its callback still runs, with UV_ECANCELED */
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

/* ---- delivery ------------------------------------------------------------------------------- */

static void on_idler_closed(uv_handle_t *h)
{
    fwd_release(h->data);
}

static void on_idler(uv_idle_t *h)
{
    lpr_fwd_t *f = h->data;
    /* Callbacks may fail more requests meanwhile: they join the list and are delivered here too. */
    while (f->failed != NULL) {
        struct freq *r = f->failed;
        f->failed = r->next;
        if (f->failed == NULL)
            f->failed_tail = &f->failed;
        cmn_http_response_t resp = {.error = r->error,
                                    .error_text = r->error_text,
                                    .body = "",
                                    .headers = "",
                                    .elapsed_ms = r->started ? uv_now(f->loop) - r->started : 0};
        r->cb(r->data, &resp);
        req_free(r);
    }
    uv_idle_stop(&f->idler);
    if (f->closing) {
        if (!uv_is_closing((uv_handle_t *)&f->idler))
            uv_close((uv_handle_t *)&f->idler, on_idler_closed);
    } else {
        dispatch(f);
    }
}

static void fail_later(lpr_fwd_t *f, struct freq *r, int error, const char *text)
{
    r->error = error;
    r->error_text = text;
    r->next = NULL;
    *f->failed_tail = r;
    f->failed_tail = &r->next;
    if (!uv_is_closing((uv_handle_t *)&f->idler))
        uv_idle_start(&f->idler, on_idler);
}

/* The connection's request failed: the connection goes, the request is answered next turn. */
static void conn_fail(struct conn *c, int error, const char *text)
{
    struct freq *r = c->req;
    c->req = NULL;
    conn_close(c);
    if (r != NULL)
        fail_later(c->f, r, error, text);
}

/* The connection died under its request: sent again once when nothing of an answer had come on a
 * connection used before (the peer closed it as the request went out), else failed. */
static void conn_lost(struct conn *c, const char *text)
{
    lpr_fwd_t *f = c->f;
    struct freq *r = c->req;
    if (r == NULL || c->got > 0 || !c->reused || r->resent || f->closing)
        return conn_fail(c, CMN_EIO, text);
    c->req = NULL;
    conn_close(c);
    r->resent = 1;
    r->next = f->queue;
    f->queue = r;
    if (f->queue_tail == &f->queue)
        f->queue_tail = &r->next;
    dispatch(f);
}

static void finish(struct conn *c, int keep)
{
    lpr_fwd_t *f = c->f;
    struct freq *r = c->req;
    c->req = NULL;
    uv_timer_stop(&c->timer);
    /* The body moves to the client's spare buffer and the connection is free before the callback
     * runs: a request the callback sends (the bridge sends the lot's next event from there) can
     * take this very connection, without touching the body being read. */
    cmn_buf_t body = c->body;
    c->body = f->spare;
    f->spare = body;
    if (keep) {
        c->reused = 1;
        list_push(&f->idle, c);
    } else {
        conn_close(c);
    }
    cmn_http_response_t resp = {.error = 0,
                                .error_text = "",
                                .status = c->parser.status_code,
                                .body = f->spare.base ? f->spare.base : "",
                                .body_len = f->spare.len,
                                .headers = "",
                                .elapsed_ms = uv_now(f->loop) - r->started};
    r->cb(r->data, &resp);
    req_free(r);
    if (!f->closing)
        dispatch(f);
}

/* ---- the wire ------------------------------------------------------------------------------- */

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    if (c->body.len + len > MAX_RESPONSE_BODY || cmn_buf_append(&c->body, at, len) != 0) {
        c->toobig = 1;
        return 1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct conn *c = p->data;
    if (p->status_code >= 100 && p->status_code < 200) {
        /* An interim answer (100 Continue, 103 Early Hints): the real one follows. */
        cmn_buf_reset(&c->body);
        c->body.len = 0;
        return 0;
    }
    c->done = 1;
    http_parser_pause(p, 1); /* whatever follows is not ours to read */
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    (void)suggested;
    buf->base = c->f->rbuf;
    buf->len = sizeof c->f->rbuf;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    lpr_fwd_t *f = c->f;
    if (c->closing || nread == 0)
        return;
    if (c->req == NULL) {
        /* Idle: the peer closed it, or talks unasked. Either way it is of no more use. */
        conn_close(c);
        return;
    }
    if (nread < 0) {
        if (nread == UV_EOF && c->got > 0 && !c->done) {
            /* A response without a length ends with the connection. */
            http_parser_execute(&c->parser, &f->settings, NULL, 0);
            if (c->done)
                return finish(c, 0);
        }
        return conn_lost(c, nread == UV_EOF ? "the gateway closed the connection"
                                            : uv_strerror((int)nread));
    }
    size_t n = http_parser_execute(&c->parser, &f->settings, buf->base, (size_t)nread);
    c->got += (size_t)nread;
    if (c->done)
        return finish(c, n == (size_t)nread && http_should_keep_alive(&c->parser));
    if (c->toobig)
        return conn_fail(c, CMN_ETOOBIG, "response body over its limit");
    if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK)
        return conn_fail(c, CMN_EIO, "malformed response");
}

static void on_written(uv_write_t *w, int status)
{
    struct conn *c = w->data;
    if (status < 0 && !c->closing && c->req != NULL) {
        conn_lost(c, uv_strerror(status));
        if (!c->f->closing)
            dispatch(c->f);
    }
}

static void send_request(struct conn *c)
{
    uv_buf_t b = uv_buf_init(c->req->msg, (unsigned)c->req->len);
    c->write.data = c;
    int rc = uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, on_written);
    if (rc != 0)
        conn_fail(c, CMN_EIO, uv_strerror(rc));
}

static void on_timeout(uv_timer_t *t)
{
    struct conn *c = t->data;
    if (c->req == NULL)
        return;
    conn_fail(c, CMN_ETIMEOUT, c->state == CONN_READY ? "no answer in time" : "connect timeout");
}

static void on_connected(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    lpr_fwd_t *f = c->f;
    if (c->closing)
        return;
    if (status < 0) {
        conn_fail(c, CMN_EIO, uv_strerror(status));
        return;
    }
    c->state = CONN_READY;
    uv_tcp_nodelay(&c->tcp, 1);
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc != 0) {
        conn_fail(c, CMN_EIO, uv_strerror(rc));
        return;
    }
    if (c->req == NULL) {
        list_push(&f->idle, c);
        return dispatch(f);
    }
    /* The connect timeout is over: the rest of the total one runs. */
    uint64_t spent = uv_now(f->loop) - c->req->started;
    uint64_t total = (uint64_t)c->req->timeout_ms;
    uv_timer_start(&c->timer, on_timeout, spent < total ? total - spent : 1, 0);
    send_request(c);
}

static void conn_connect(struct conn *c, const struct sockaddr *addr)
{
    c->state = CONN_CONNECTING;
    c->connect.data = c;
    int rc = uv_tcp_connect(&c->connect, &c->tcp, addr, on_connected);
    if (rc != 0)
        conn_fail(c, CMN_EIO, uv_strerror(rc));
}

static void on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
    struct conn *c = g->data;
    if (!c->closing) {
        if (status < 0 || res == NULL)
            conn_fail(c, CMN_EIO, "cannot resolve the gateway's host");
        else
            conn_connect(c, res->ai_addr);
    }
    if (res != NULL)
        uv_freeaddrinfo(res);
    conn_release(c); /* the lookup's share */
}

/* A new connection for request r (the request's timer starts now). */
static void conn_open(lpr_fwd_t *f, struct freq *r)
{
    struct conn *c = cmn_xcalloc(1, sizeof *c);
    c->f = f;
    cmn_buf_init(&c->body, MAX_RESPONSE_BODY);
    uv_tcp_init(f->loop, &c->tcp);
    uv_timer_init(f->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->pending = 2;
    f->live++;
    f->nconns++;
    list_push(&f->busy, c);
    c->req = r;
    c->got = 0;
    c->done = 0;
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = c;
    long ct = r->connect_timeout_ms < r->timeout_ms ? r->connect_timeout_ms : r->timeout_ms;
    uv_timer_start(&c->timer, on_timeout, (uint64_t)ct, 0);
    if (f->numeric)
        return conn_connect(c, (const struct sockaddr *)&f->addr);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    c->state = CONN_RESOLVING;
    c->gai.data = c;
    c->pending++;
    int rc = uv_getaddrinfo(f->loop, &c->gai, on_resolved, f->host, f->port, &hints);
    if (rc != 0) {
        c->pending--;
        c->state = CONN_CONNECTING; /* nothing to cancel */
        conn_fail(c, CMN_EIO, uv_strerror(rc));
    }
}

static void conn_start(struct conn *c, struct freq *r)
{
    list_push(&c->f->busy, c);
    c->req = r;
    c->got = 0;
    c->done = 0;
    c->toobig = 0;
    cmn_buf_reset(&c->body);
    c->body.len = 0;
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = c;
    uv_timer_start(&c->timer, on_timeout, (uint64_t)r->timeout_ms, 0);
    send_request(c);
}

static void dispatch(lpr_fwd_t *f)
{
    while (f->queue != NULL && !f->closing) {
        struct freq *r = f->queue;
        if (f->idle == NULL && f->nconns >= f->max_conns)
            return;
        f->queue = r->next;
        if (f->queue == NULL)
            f->queue_tail = &f->queue;
        r->next = NULL;
        r->started = uv_now(f->loop);
        if (f->idle != NULL)
            conn_start(f->idle, r);
        else
            conn_open(f, r);
    }
}

/* ---- API ------------------------------------------------------------------------------------ */

int lpr_fwd_new(uv_loop_t *loop, const char *base_url, size_t max_conns, lpr_fwd_t **out)
{
    *out = NULL;
    if (max_conns == 0 || strncasecmp(base_url, "http://", 7) != 0)
        return CMN_EINVAL;
    const char *a = base_url + 7;
    size_t alen = strcspn(a, "/?#");
    const char *path = a + alen;
    if (alen == 0 || memchr(a, '@', alen) != NULL || strpbrk(path, "?#") != NULL)
        return CMN_EINVAL;
    char host[256], port[8] = "80";
    const char *colon;
    if (a[0] == '[') {
        const char *close = memchr(a, ']', alen);
        if (close == NULL || (size_t)(close - a - 1) >= sizeof host)
            return CMN_EINVAL;
        memcpy(host, a + 1, (size_t)(close - a - 1));
        host[close - a - 1] = '\0';
        colon = close + 1 < a + alen ? close + 1 : NULL;
        if (colon != NULL && *colon != ':')
            return CMN_EINVAL;
    } else {
        colon = memchr(a, ':', alen);
        size_t hlen = colon ? (size_t)(colon - a) : alen;
        if (hlen == 0 || hlen >= sizeof host)
            return CMN_EINVAL;
        memcpy(host, a, hlen);
        host[hlen] = '\0';
    }
    if (colon != NULL) {
        size_t plen = (size_t)(a + alen - colon - 1);
        if (plen == 0 || plen >= sizeof port || strspn(colon + 1, "0123456789") < plen)
            return CMN_EINVAL;
        memcpy(port, colon + 1, plen);
        port[plen] = '\0';
    }
    long portnum = strtol(port, NULL, 10);
    if (portnum < 1 || portnum > 65535)
        return CMN_EINVAL;
    lpr_fwd_t *f = cmn_xcalloc(1, sizeof *f);
    f->loop = loop;
    f->host = cmn_xstrdup(host);
    f->port = cmn_xstrdup(port);
    f->authority = cmn_xalloc(alen + 1);
    memcpy(f->authority, a, alen);
    f->authority[alen] = '\0';
    f->prefix = cmn_xstrdup(path); /* as given: the URL is the one libcurl was handed before */
    if (uv_ip4_addr(host, (int)portnum, (struct sockaddr_in *)&f->addr) == 0 ||
        uv_ip6_addr(host, (int)portnum, (struct sockaddr_in6 *)&f->addr) == 0)
        f->numeric = 1;
    f->max_conns = max_conns;
    cmn_buf_init(&f->spare, MAX_RESPONSE_BODY);
    f->queue_tail = &f->queue;
    f->failed_tail = &f->failed;
    f->settings.on_body = on_body;
    f->settings.on_message_complete = on_message_complete;
    uv_idle_init(loop, &f->idler);
    f->idler.data = f;
    f->live = 1;
    *out = f;
    return 0;
}

static int clean_text(const char *s)
{
    return strpbrk(s, "\r\n") == NULL;
}

int lpr_fwd_post(lpr_fwd_t *f, const char *path, const char *const *headers, size_t nheaders,
                 const char *body, size_t body_len, long connect_timeout_ms, long timeout_ms,
                 cmn_http_cb cb, void *data)
{
    if (f->closing || !clean_text(path) || path[0] != '/' || body_len > ((size_t)64 << 20))
        return CMN_EINVAL;
    /* The message's size first, so it is built in one allocation (no buffer doubling per event). */
    static const char line[] = "POST  HTTP/1.1\r\nHost: \r\n", cl[] = "Content-Length: \r\n\r\n";
    size_t need = sizeof line - 1 + strlen(f->prefix) + strlen(path) + strlen(f->authority) +
                  sizeof cl - 1 + 20 + body_len + 1;
    for (size_t i = 0; i < nheaders; i++) {
        if (!clean_text(headers[i]))
            return CMN_EINVAL;
        need += strlen(headers[i]) + 2;
    }
    cmn_buf_t m;
    cmn_buf_init(&m, need);
    m.base = cmn_xalloc(need + 1);
    m.cap = need + 1;
    int rc = cmn_buf_printf(&m, "POST %s%s HTTP/1.1\r\nHost: %s\r\n", f->prefix, path,
                            f->authority);
    for (size_t i = 0; i < nheaders && rc == 0; i++) {
        rc = cmn_buf_puts(&m, headers[i]);
        if (rc == 0)
            rc = cmn_buf_append(&m, "\r\n", 2);
    }
    if (rc == 0)
        rc = cmn_buf_printf(&m, "Content-Length: %zu\r\n\r\n", body_len);
    if (rc == 0)
        rc = cmn_buf_append(&m, body, body_len);
    if (rc != 0) {
        cmn_buf_dispose(&m);
        return rc;
    }
    struct freq *r = cmn_xcalloc(1, sizeof *r);
    r->msg = cmn_buf_take(&m, &r->len);
    r->connect_timeout_ms = connect_timeout_ms > 0 ? connect_timeout_ms : 2000;
    r->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
    r->cb = cb;
    r->data = data;
    *f->queue_tail = r;
    f->queue_tail = &r->next;
    dispatch(f);
    return 0;
}

void lpr_fwd_close(lpr_fwd_t *f, void (*done)(void *data), void *data)
{
    f->closing = 1;
    f->done = done;
    f->done_data = data;
    while (f->queue != NULL) {
        struct freq *r = f->queue;
        f->queue = r->next;
        fail_later(f, r, CMN_EIO, "cancelled");
    }
    f->queue_tail = &f->queue;
    while (f->busy != NULL)
        conn_fail(f->busy, CMN_EIO, "cancelled");
    while (f->idle != NULL)
        conn_close(f->idle);
    /* The idle handle delivers the cancellations, then closes, then the last release frees. */
    uv_idle_start(&f->idler, on_idler);
}
