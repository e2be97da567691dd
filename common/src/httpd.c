/*
 * The platform's HTTP/1.1 server (contract in cmn/httpd.h), used by the gateway and the lpr-bridge.
 *
 * Design
 * ------
 * A connection (struct conn) embeds its uv_tcp_t and one uv_timer_t and moves through phases:
 *
 *   IDLE --first byte--> READING --request complete--> HANDLER --response, keep-alive--> IDLE
 *    |                     |  limit, timeout, bad input    |  response, close
 *    | idle timeout        v                               v
 *    '-> close          DRAINING (queued output is written, nothing more is parsed)
 *                          |  output written: uv_shutdown
 *                          v
 *                       LINGER (read and discard until EOF, a byte cap or a short timer) -> close
 *
 * Lingering matters: closing a socket whose receive queue still holds bytes (a body we refused, the
 * rest of a pipeline) makes the kernel send RST, and an RST can destroy the response before the
 * client reads it.
 *
 * Parsing.  http-parser is fed from a fixed input buffer of CMN_HTTPD_READ_BUF bytes.
 * on_message_complete pauses the parser, so http_parser_execute() returns right after a request;
 * unparsed bytes (pipelining) stay in the buffer and the request goes to the handler.  Nothing more
 * is parsed until the handler has responded and the response is queued, which keeps responses in
 * request order without a reordering queue.  Parsing resumes on a later loop turn, never inside
 * cmn_httpd_respond(), so a handler that responds at once is never re-entered.
 *
 * Reading.  The socket is read only while the input buffer is empty, so input is bounded by one
 * buffer per connection.  In IDLE and READING everything read is parsed at once.  In HANDLER the
 * buffer is filled at most once and reading stops: that one read is what notices a client that
 * resets the connection while the handler works, and pipelined bytes wait in the buffer.  Reading
 * also stops while unsent output is above CMN_HTTPD_HIGH_WATER and resumes below CMN_HTTPD_LOW_WATER.
 *
 * Requests.  Each request owns its memory (struct req): url and header strings in one capped
 * buffer, the body in another.  When the connection dies while the handler holds a request, the
 * request is detached (req->conn = NULL) and cmn_httpd_respond() only frees it.  So a connection is
 * freed as soon as its two handles are closed, and a response never outlives its connection.
 *
 * Writing.  Responses are appended to c->out.  One place flushes output: the server's uv_idle pass
 * (Redis's pending-write list), which also resumes parsing.  One uv_write at a time, of at most
 * GW_MAX_WRITE_PER_TURN bytes; the write callback starts the next one.
 *
 * Limits.  Header bytes are counted by the server from the first byte of a request to the end of
 * the blank line: while the header is incomplete the parser is never given more bytes than the
 * limit leaves, so nothing beyond the limit is even parsed.  http-parser's own cap
 * (HTTP_MAX_HEADER_SIZE, 80 KiB) answers 431 too.  The body limit is checked against Content-Length
 * in on_headers_complete, against each chunk size in on_chunk_header, and by the capped body
 * buffer.
 *
 * Loopback.  With srv == NULL the same connection code runs without socket, loop or timers
 * (httpd_int.h): the fuzzer drives it with bytes from memory.
 */
#include "cmn/httpd.h"

#include <arpa/inet.h>
#include <http_parser.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cmn/buf.h"
#include "cmn/err.h"
#include "cmn/log.h"
#include "cmn/mem.h"
#include "httpd_int.h"

#define CMN_HTTPD_READ_BUF (16 * 1024)
#define GW_MAX_WRITE_PER_TURN (64 * 1024)
#define CMN_HTTPD_HIGH_WATER (256 * 1024)
#define CMN_HTTPD_LOW_WATER (64 * 1024)
/* Queued output of one connection; only a handler's own responses can reach it. */
#define CMN_HTTPD_OUT_MAX (64 * 1024 * 1024)
#define CMN_HTTPD_LINGER_MS 1000
#define CMN_HTTPD_LINGER_BYTES (256 * 1024)
#define CMN_HTTPD_BACKLOG 511

enum phase { PH_IDLE, PH_READING, PH_HANDLER, PH_DRAINING, PH_LINGER, PH_CLOSED };

/* Which parser callback ran last, to know where one header ends and the next begins. */
enum piece { PIECE_NONE, PIECE_URL, PIECE_FIELD, PIECE_VALUE };

struct span {
    size_t name_off, name_len;
    size_t value_off, value_len;
};

struct conn;

struct req {
    cmn_httpd_req_t pub; /* pub.internal points back here */
    struct conn *conn; /* NULL once the connection is gone */
    cmn_buf_t head;    /* url, then each name and value, each followed by a NUL */
    cmn_buf_t body;
    struct span *spans; /* offsets into head: head.base may move while it grows */
    size_t nspans, spans_cap;
    cmn_httpd_header_t *headers; /* built from spans once the header block is complete */
    size_t url_len;
    enum piece last;
    int headers_done; /* later header callbacks are chunked trailers, which are ignored */
    int keep_alive;
};

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer; /* idle, request, drain or linger timeout, by phase */
    uv_write_t wreq;
    uv_shutdown_t sreq;
    cmn_httpd_t *srv; /* NULL: loopback */
    const cmn_httpd_config_t *cfg;
    cmn_httpd_stats_t *stats;
    cmn_httpd_handler_cb handler;
    void *hdata;

    enum phase phase;
    int open_handles;
    int admitted; /* counted in connections_open */
    int reading;  /* uv_read_start in effect */
    int writing;  /* wreq in flight with wbuf */
    int peer_eof;
    int out_blocked;          /* over the high-water mark, until below the low-water mark */
    int pending;              /* on the server's pending list (loopback: work to run) */
    struct conn *prev, *next; /* srv->conns */
    struct conn *pend_prev, *pend_next; /* srv->pending */

    http_parser parser;
    struct req *req;  /* being parsed */
    struct req *hreq; /* with the handler */
    size_t lim_header, lim_body;
    uint64_t lim_request_ms;
    int in_head;     /* the current request's header block is not complete yet */
    size_t hdr_seen; /* header bytes parsed so far */
    size_t lingered; /* bytes discarded while lingering */

    /* A failure found inside a parser callback, answered once http_parser_execute returns. */
    int fail_status;
    const char *fail_code;
    char fail_msg[128];

    cmn_buf_t out;  /* queued; out.base[out_pos..out.len) not yet handed to uv_write */
    size_t out_pos;
    cmn_buf_t wbuf; /* with uv_write until on_write */
    size_t in_pos, in_len;
    char in[CMN_HTTPD_READ_BUF];
};

struct cmn_httpd {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_idle_t idle; /* runs the pending list before the loop polls again */
    cmn_httpd_config_t cfg;
    cmn_httpd_handler_cb handler;
    void *data;
    cmn_httpd_stats_t stats;
    struct conn *conns;
    struct conn *pend_head, *pend_tail;
    size_t npending;
    int port;
    int open_handles;
    int closing;
    int listener_closed;
    int finishing;
    void (*done)(void *data);
    void *done_data;
};

struct cmn__httpd_loopback {
    struct conn c;
    cmn_httpd_config_t cfg;
    cmn_httpd_stats_t stats;
};

static void conn_close(struct conn *c);
static void conn_schedule(struct conn *c);
static void conn_update_io(struct conn *c);
static void on_timer(uv_timer_t *t);
static void on_server_handle_closed(uv_handle_t *h);

/* ---- small helpers -------------------------------------------------------------------- */

static int server_closing(const struct conn *c)
{
    return c->srv != NULL && c->srv->closing;
}

/* Output queued or in flight; a loopback "writes" instantly and never applies backpressure. */
static size_t conn_unsent(const struct conn *c)
{
    if (c->srv == NULL)
        return 0;
    return c->out.len - c->out_pos + (c->writing ? c->wbuf.len : 0);
}

static void timer_start(struct conn *c, uint64_t ms)
{
    if (c->srv == NULL || c->phase == PH_CLOSED)
        return;
    if (ms == 0) {
        uv_timer_stop(&c->timer); /* 0 means no timeout */
        return;
    }
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void timer_stop(struct conn *c)
{
    if (c->srv != NULL && c->phase != PH_CLOSED)
        uv_timer_stop(&c->timer);
}

static void req_free(struct req *r)
{
    if (r == NULL)
        return;
    cmn_buf_dispose(&r->head);
    cmn_buf_dispose(&r->body);
    cmn_free(r->spans);
    cmn_free(r->headers);
    cmn_free(r);
}

/* Limits are read when a request starts, so cmn_httpd_set_limits applies from the next one. */
static void conn_take_limits(struct conn *c)
{
    c->lim_header = c->cfg->max_header_bytes;
    c->lim_body = c->cfg->max_body_bytes;
    c->lim_request_ms = c->cfg->request_timeout_ms;
    c->in_head = 1;
    c->hdr_seen = 0;
}

static void conn_init(struct conn *c, cmn_httpd_t *s, const cmn_httpd_config_t *cfg,
                      cmn_httpd_stats_t *stats, cmn_httpd_handler_cb handler, void *hdata)
{
    c->srv = s;
    c->cfg = cfg;
    c->stats = stats;
    c->handler = handler;
    c->hdata = hdata;
    c->phase = PH_IDLE;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    cmn_buf_init(&c->out, CMN_HTTPD_OUT_MAX);
    cmn_buf_init(&c->wbuf, CMN_HTTPD_OUT_MAX);
    conn_take_limits(c);
}

static void conn_dispose(struct conn *c)
{
    req_free(c->req);
    c->req = NULL;
    cmn_buf_dispose(&c->out);
    cmn_buf_dispose(&c->wbuf);
}

/* ---- server lists --------------------------------------------------------------------- */

static void conns_add(cmn_httpd_t *s, struct conn *c)
{
    c->prev = NULL;
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;
}

static void conns_remove(cmn_httpd_t *s, struct conn *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void pending_remove(struct conn *c)
{
    cmn_httpd_t *s = c->srv;

    if (!c->pending)
        return;
    c->pending = 0;
    if (s == NULL)
        return;
    if (c->pend_prev != NULL)
        c->pend_prev->pend_next = c->pend_next;
    else
        s->pend_head = c->pend_next;
    if (c->pend_next != NULL)
        c->pend_next->pend_prev = c->pend_prev;
    else
        s->pend_tail = c->pend_prev;
    c->pend_prev = c->pend_next = NULL;
    s->npending--;
}

/* ---- responses ------------------------------------------------------------------------ */

static int status_has_body(int status)
{
    return !(status < 200 || status == 204 || status == 304);
}

/*
 * Appends one response to c->out.  On failure nothing is appended and the caller closes the
 * connection: the only failures are running out of memory and a handler's response beyond
 * CMN_HTTPD_OUT_MAX.
 */
static int queue_response(struct conn *c, int status, const char *content_type, const char *body,
                          size_t body_len, const char *extra, int keep, int head_only)
{
    size_t mark = c->out.len;
    int rc;

    if (status < 100 || status > 599)
        status = 500;
    rc = cmn_buf_printf(&c->out, "HTTP/1.1 %d %s\r\n", status, cmn_httpd_status_text(status));
    if (rc == 0 && content_type != NULL)
        rc = cmn_buf_printf(&c->out, "Content-Type: %s\r\n", content_type);
    if (rc == 0 && status_has_body(status))
        rc = cmn_buf_printf(&c->out, "Content-Length: %zu\r\n", body_len);
    if (rc == 0)
        rc = cmn_buf_puts(&c->out, keep ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
    if (rc == 0 && extra != NULL)
        rc = cmn_buf_puts(&c->out, extra);
    if (rc == 0)
        rc = cmn_buf_append(&c->out, "\r\n", 2);
    /* HEAD: the length of the body GET would have had, without the body (RFC 9110, 9.3.2). */
    if (rc == 0 && status_has_body(status) && !head_only && body_len > 0)
        rc = cmn_buf_append(&c->out, body, body_len);
    if (rc != 0) {
        c->out.len = mark;
        if (c->out.base != NULL)
            c->out.base[mark] = '\0';
        return rc;
    }
    c->stats->responses_by_class[status / 100]++;
    if (conn_unsent(c) >= CMN_HTTPD_HIGH_WATER)
        c->out_blocked = 1;
    return 0;
}

static void set_fail(struct conn *c, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records a failure for conn_fail(); the first one wins. */
static void set_fail(struct conn *c, int status, const char *code, const char *fmt, ...)
{
    va_list ap;

    if (c->fail_status != 0)
        return;
    c->fail_status = status;
    c->fail_code = code;
    va_start(ap, fmt);
    vsnprintf(c->fail_msg, sizeof c->fail_msg, fmt, ap);
    va_end(ap);
}

/* Stops parsing for good: what is queued is still written, then the connection closes. */
static void conn_drain(struct conn *c)
{
    if (c->phase == PH_CLOSED || c->phase == PH_DRAINING || c->phase == PH_LINGER)
        return;
    req_free(c->req);
    c->req = NULL;
    c->phase = PH_DRAINING;
    c->in_pos = c->in_len = 0;
    /* A client that stops reading our output must not hold the connection forever. */
    timer_start(c, c->cfg->idle_timeout_ms);
    conn_schedule(c);
}

/* Answers the failure recorded by set_fail with a JSON error and `Connection: close`. */
static void conn_fail(struct conn *c)
{
    cmn_buf_t body;
    int rc;

    cmn_buf_init(&body, 512);
    rc = cmn_buf_printf(&body, "{\"error\":\"%s\",\"message\":\"", c->fail_code);
    if (rc == 0)
        rc = cmn_buf_json_escape(&body, c->fail_msg, strlen(c->fail_msg));
    if (rc == 0)
        rc = cmn_buf_puts(&body, "\"}");
    if (rc == 0)
        rc = queue_response(c, c->fail_status, "application/json", body.base, body.len, NULL, 0, 0);
    cmn_log(CMN_LOG_DEBUG, "http_error", "%d %s: %s", c->fail_status, c->fail_code, c->fail_msg);
    c->fail_status = 0;
    cmn_buf_dispose(&body);
    if (rc != 0) {
        conn_close(c);
        return;
    }
    conn_drain(c);
}

/* ---- parser callbacks ----------------------------------------------------------------- */

static int head_append(struct conn *c, struct req *r, const char *at, size_t len)
{
    int rc = cmn_buf_append(&r->head, at, len);

    if (rc == CMN_ETOOBIG)
        set_fail(c, 431, "too_large", "request headers exceed %zu bytes", c->lim_header);
    else if (rc != 0)
        set_fail(c, 500, "internal", "out of memory");
    return rc;
}

/* Ends the url, a name or a value with a NUL, recording its length. */
static int end_piece(struct conn *c, struct req *r)
{
    struct span *sp = r->nspans > 0 ? &r->spans[r->nspans - 1] : NULL;

    switch (r->last) {
    case PIECE_FIELD:
        sp->name_len = r->head.len - sp->name_off;
        break;
    case PIECE_VALUE:
        sp->value_len = r->head.len - sp->value_off;
        break;
    default:
        r->url_len = r->head.len;
        break;
    }
    return head_append(c, r, "", 1);
}

static int version_ok(struct conn *c)
{
    if (c->parser.http_major == 1 && c->parser.http_minor <= 1)
        return 1;
    set_fail(c, 505, "bad_request", "HTTP version %u.%u not supported", c->parser.http_major,
             c->parser.http_minor);
    return 0;
}

static int on_message_begin(http_parser *p)
{
    struct conn *c = p->data;
    struct req *r = cmn_xcalloc(1, sizeof *r);

    r->conn = c;
    r->pub.internal = r;
    r->last = PIECE_NONE;
    /* The strings never take more room than their header lines did on the wire. */
    cmn_buf_init(&r->head, c->lim_header);
    cmn_buf_init(&r->body, c->lim_body);
    req_free(c->req);
    c->req = r;
    c->phase = PH_READING;
    timer_start(c, c->lim_request_ms);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct req *r = c->req;

    r->last = PIECE_URL;
    return head_append(c, r, at, len) == 0 ? 0 : -1;
}

/* http-parser may split one name or value over several calls (input split across reads). */
static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct req *r = c->req;

    if (r->headers_done)
        return 0;
    if (!version_ok(c))
        return -1;
    if (r->last != PIECE_FIELD) {
        if (end_piece(c, r) != 0)
            return -1;
        if (r->nspans == r->spans_cap) {
            size_t cap = r->spans_cap ? r->spans_cap * 2 : 16;
            struct span *ns = cmn_try_realloc(r->spans, cap * sizeof *ns);
            if (ns == NULL) {
                set_fail(c, 500, "internal", "out of memory");
                return -1;
            }
            r->spans = ns;
            r->spans_cap = cap;
        }
        memset(&r->spans[r->nspans], 0, sizeof r->spans[0]);
        r->spans[r->nspans++].name_off = r->head.len;
        r->last = PIECE_FIELD;
    }
    return head_append(c, r, at, len) == 0 ? 0 : -1;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct req *r = c->req;

    if (r->headers_done)
        return 0;
    /*
     * http-parser 2.9.4 does not check the first byte of a value, so "X-A:\0..." gets through
     * (found by fuzz_http_req).  A NUL would cut the C string handlers see short of value_len, and
     * RFC 9110 (5.5) wants control characters in field values rejected.
     */
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)at[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            set_fail(c, 400, "bad_request", "invalid character in header");
            return -1;
        }
    }
    if (r->last != PIECE_VALUE) {
        if (r->last != PIECE_FIELD || end_piece(c, r) != 0)
            return -1;
        r->spans[r->nspans - 1].value_off = r->head.len;
        r->last = PIECE_VALUE;
    }
    return head_append(c, r, at, len) == 0 ? 0 : -1;
}

static int is_ws(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static const cmn_httpd_header_t *find_header(const cmn_httpd_header_t *h, size_t n, const char *name)
{
    size_t len = strlen(name);

    for (size_t i = 0; i < n; i++) {
        if (h[i].name_len == len && strncasecmp(h[i].name, name, len) == 0)
            return &h[i];
    }
    return NULL;
}

/* Turns the offsets into the pointers of the public request; head no longer grows after this. */
static int finish_head(struct conn *c, struct req *r)
{
    char *base;

    if (end_piece(c, r) != 0)
        return -1;
    r->headers_done = 1;
    base = r->head.base;
    if (r->nspans > 0) {
        r->headers = cmn_try_alloc(r->nspans * sizeof *r->headers);
        if (r->headers == NULL) {
            set_fail(c, 500, "internal", "out of memory");
            return -1;
        }
    }
    for (size_t i = 0; i < r->nspans; i++) {
        const struct span *sp = &r->spans[i];
        char *v = base + sp->value_off;
        size_t vlen = sp->value_len;

        while (vlen > 0 && is_ws(v[0])) {
            v++;
            vlen--;
        }
        while (vlen > 0 && is_ws(v[vlen - 1]))
            vlen--;
        v[vlen] = '\0';
        r->headers[i].name = base + sp->name_off;
        r->headers[i].name_len = sp->name_len;
        r->headers[i].value = v;
        r->headers[i].value_len = vlen;
    }
    r->pub.url = base;
    r->pub.url_len = r->url_len;
    r->pub.headers = r->headers;
    r->pub.nheaders = r->nspans;
    return 0;
}

static void queue_continue(struct conn *c)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

    if (cmn_buf_append(&c->out, cont, sizeof cont - 1) == 0) {
        c->stats->responses_by_class[1]++;
        conn_schedule(c);
    }
}

static int on_headers_complete(http_parser *p)
{
    struct conn *c = p->data;
    struct req *r = c->req;
    const cmn_httpd_header_t *expect;
    int chunked = (p->flags & F_CHUNKED) != 0;
    int has_length = !chunked && (p->flags & F_CONTENTLENGTH) != 0;

    c->in_head = 0;
    if (!version_ok(c) || finish_head(c, r) != 0)
        return -1;
    r->pub.method = (int)p->method;
    if (has_length && p->content_length > c->lim_body) {
        set_fail(c, 413, "too_large", "request body exceeds %zu bytes", c->lim_body);
        return -1;
    }
    /* The client waits for this before sending the body (RFC 9110, 10.1.1). */
    expect = find_header(r->headers, r->nspans, "Expect");
    if (expect != NULL && p->http_minor == 1 &&
        (chunked || (has_length && p->content_length > 0)) && expect->value_len == 12 &&
        strncasecmp(expect->value, "100-continue", 12) == 0)
        queue_continue(c);
    return 0;
}

static int on_chunk_header(http_parser *p)
{
    struct conn *c = p->data;

    /* content_length holds the announced chunk size: refuse before reading it. */
    if (p->content_length > c->lim_body - c->req->body.len) {
        set_fail(c, 413, "too_large", "request body exceeds %zu bytes", c->lim_body);
        return -1;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    int rc = cmn_buf_append(&c->req->body, at, len);

    if (rc == CMN_ETOOBIG)
        set_fail(c, 413, "too_large", "request body exceeds %zu bytes", c->lim_body);
    else if (rc != 0)
        set_fail(c, 500, "internal", "out of memory");
    return rc == 0 ? 0 : -1;
}

static int on_message_complete(http_parser *p)
{
    struct conn *c = p->data;
    struct req *r = c->req;

    r->pub.body = r->body.base != NULL ? r->body.base : "";
    r->pub.body_len = r->body.len;
    /* After an upgrade or CONNECT the client would switch protocols: answer, then close. */
    r->keep_alive = http_should_keep_alive(p) && !p->upgrade;
    /* Stop right after this request: execute returns, and the rest stays buffered. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
    .on_chunk_header = on_chunk_header,
};

/* ---- the connection state machine ----------------------------------------------------- */

static void conn_dispatch(struct conn *c)
{
    struct req *r = c->req;

    c->req = NULL;
    c->hreq = r;
    c->phase = PH_HANDLER;
    timer_stop(c);
    r->pub.received_ns = uv_hrtime();
    c->stats->requests++;
    c->handler(&r->pub, c->hdata);
}

static void conn_parse_error(struct conn *c, enum http_errno e)
{
    if (c->fail_status == 0) {
        if (e == HPE_HEADER_OVERFLOW)
            set_fail(c, 431, "too_large", "request headers exceed %zu bytes", c->lim_header);
        else
            set_fail(c, 400, "bad_request", "%s", http_errno_description(e));
    }
    conn_fail(c);
}

/*
 * Parses buffered input until a request goes to the handler, the input runs out or the request is
 * refused.  Called from on_read, from the idle pass (buffered pipelined requests) and by the
 * loopback.  Hands at most one request to the handler per call.
 */
static void conn_parse(struct conn *c)
{
    while ((c->phase == PH_IDLE || c->phase == PH_READING) && !c->out_blocked &&
           c->in_pos < c->in_len) {
        size_t n = c->in_len - c->in_pos, used;
        int was_head = c->in_head;
        enum http_errno e;

        if (was_head) {
            size_t room = c->hdr_seen < c->lim_header ? c->lim_header - c->hdr_seen : 0;
            if (room == 0) {
                set_fail(c, 431, "too_large", "request headers exceed %zu bytes", c->lim_header);
                conn_fail(c);
                return;
            }
            if (n > room)
                n = room;
        }
        used = http_parser_execute(&c->parser, &parser_settings, c->in + c->in_pos, n);
        if (was_head && c->in_head)
            c->hdr_seen += used;
        c->in_pos += used;
        if (c->in_pos == c->in_len)
            c->in_pos = c->in_len = 0;
        e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED && c->fail_status == 0) {
            conn_dispatch(c);
            return;
        }
        if (e != HPE_OK || c->fail_status != 0 || used < n) {
            conn_parse_error(c, e == HPE_OK ? HPE_UNKNOWN : e);
            return;
        }
    }
}

/* Bytes arrived in c->in[in_len..in_len + n). */
static void conn_on_data(struct conn *c, size_t n)
{
    switch (c->phase) {
    case PH_LINGER:
        c->lingered += n;
        if (c->lingered > CMN_HTTPD_LINGER_BYTES)
            conn_close(c);
        return;
    case PH_IDLE:
    case PH_READING:
        c->in_len += n;
        conn_parse(c);
        return;
    case PH_HANDLER:
        c->in_len += n; /* parsed once the response is queued */
        return;
    default:
        return;
    }
}

static void conn_on_eof(struct conn *c)
{
    c->peer_eof = 1;
    switch (c->phase) {
    case PH_IDLE:
    case PH_READING:
        /* A request cut short is dropped; responses already queued are still delivered. */
        if (conn_unsent(c) > 0 || c->writing)
            conn_drain(c);
        else
            conn_close(c);
        return;
    case PH_LINGER:
        conn_close(c);
        return;
    default:
        return; /* HANDLER: the response still goes out (a half-close), then we close */
    }
}

static void conn_on_timeout(struct conn *c)
{
    switch (c->phase) {
    case PH_READING:
        set_fail(c, 408, "timeout", "request not received within %llu ms",
                 (unsigned long long)c->lim_request_ms);
        conn_fail(c);
        return;
    case PH_IDLE:
    case PH_DRAINING:
    case PH_LINGER:
        conn_close(c);
        return;
    default:
        return;
    }
}

/* The next request may start: called once a keep-alive response is queued. */
static void conn_next_request(struct conn *c)
{
    c->phase = PH_IDLE;
    conn_take_limits(c);
    http_parser_pause(&c->parser, 0);
    timer_start(c, c->cfg->idle_timeout_ms);
    conn_schedule(c);
}

static int conn_can_read(const struct conn *c)
{
    if (c->peer_eof)
        return 0;
    switch (c->phase) {
    case PH_LINGER:
        return 1;
    case PH_IDLE:
    case PH_READING:
        return !server_closing(c) && !c->out_blocked && c->in_pos == c->in_len;
    case PH_HANDLER:
        return !server_closing(c) && c->in_len == 0;
    default:
        return 0;
    }
}

/* Where the next read goes: the whole free end of the input buffer. */
static void conn_alloc(struct conn *c, uv_buf_t *buf)
{
    if (c->phase == PH_LINGER || c->in_pos == c->in_len) {
        c->in_pos = c->in_len = 0; /* lingering discards into the same space */
    } else if (c->in_pos > 0) {
        memmove(c->in, c->in + c->in_pos, c->in_len - c->in_pos);
        c->in_len -= c->in_pos;
        c->in_pos = 0;
    }
    buf->base = c->in + c->in_len;
    buf->len = sizeof c->in - c->in_len;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    conn_alloc(h->data, buf);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = st->data;

    (void)buf; /* always the free end of c->in, see conn_alloc */
    if (nread > 0)
        conn_on_data(c, (size_t)nread);
    else if (nread == UV_EOF)
        conn_on_eof(c);
    else if (nread < 0)
        conn_close(c); /* ECONNRESET and friends: nobody is left to answer */
    conn_update_io(c);
}

static void conn_update_io(struct conn *c)
{
    int want;

    if (c->srv == NULL || c->phase == PH_CLOSED)
        return;
    want = conn_can_read(c);
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
            conn_close(c);
            return;
        }
        c->reading = 1;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

/* The server goes once its listener and every connection are closed. */
static void server_maybe_finish(cmn_httpd_t *s)
{
    if (s->closing && s->listener_closed && s->conns == NULL && !s->finishing) {
        s->finishing = 1;
        uv_close((uv_handle_t *)&s->idle, on_server_handle_closed);
    }
}

static void on_conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    cmn_httpd_t *s = c->srv;

    if (--c->open_handles > 0)
        return;
    conns_remove(s, c);
    if (c->admitted)
        s->stats.connections_open--;
    conn_dispose(c);
    cmn_free(c);
    server_maybe_finish(s);
}

/* Closes at once.  Memory goes in the close callbacks; a request with the handler is detached. */
static void conn_close(struct conn *c)
{
    if (c->phase == PH_CLOSED)
        return;
    c->phase = PH_CLOSED;
    if (c->hreq != NULL) {
        c->hreq->conn = NULL;
        c->hreq = NULL;
    }
    req_free(c->req);
    c->req = NULL;
    pending_remove(c);
    c->reading = 0;
    if (c->srv == NULL)
        return;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

static void on_shutdown(uv_shutdown_t *sreq, int status)
{
    struct conn *c = sreq->data;

    if (status < 0 && c->phase != PH_CLOSED)
        conn_close(c);
}

/* Everything is written: send FIN, then linger until the client closes too. */
static void conn_shutdown(struct conn *c)
{
    if (c->srv == NULL || c->peer_eof) {
        conn_close(c); /* the peer sent everything it will: no RST to fear */
        return;
    }
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        conn_close(c);
        return;
    }
    c->phase = PH_LINGER;
    c->lingered = 0;
    timer_start(c, CMN_HTTPD_LINGER_MS);
    conn_update_io(c);
}

static void on_write(uv_write_t *wreq, int status);

/* Starts the next write (at most GW_MAX_WRITE_PER_TURN bytes), or ends a drained connection. */
static void conn_flush(struct conn *c)
{
    uv_buf_t b;

    if (c->writing || (c->phase != PH_IDLE && c->phase != PH_READING && c->phase != PH_HANDLER &&
                       c->phase != PH_DRAINING))
        return;
    if (c->srv != NULL && c->out.len > c->out_pos) {
        size_t k = c->out.len - c->out_pos;

        if (c->out_pos == 0 && k <= GW_MAX_WRITE_PER_TURN) {
            cmn_buf_t t = c->wbuf; /* the usual case: hand the whole buffer over, no copy */
            c->wbuf = c->out;
            c->out = t;
            cmn_buf_reset(&c->out);
        } else {
            /* out may grow (and move) while a write is in flight: uv_write gets a copy. */
            if (k > GW_MAX_WRITE_PER_TURN)
                k = GW_MAX_WRITE_PER_TURN;
            cmn_buf_reset(&c->wbuf);
            if (cmn_buf_append(&c->wbuf, c->out.base + c->out_pos, k) != 0) {
                conn_close(c);
                return;
            }
            c->out_pos += k;
            if (c->out_pos == c->out.len) {
                cmn_buf_reset(&c->out);
                c->out_pos = 0;
            } else if (c->out_pos >= c->out.len / 2) {
                /* Compact only once half is sent, so a large response costs linear time. */
                c->out.len -= c->out_pos;
                memmove(c->out.base, c->out.base + c->out_pos, c->out.len + 1);
                c->out_pos = 0;
            }
        }
        b = uv_buf_init(c->wbuf.base, (unsigned int)c->wbuf.len);
        c->wreq.data = c;
        if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
            conn_close(c);
            return;
        }
        c->writing = 1;
        return;
    }
    if (c->phase == PH_DRAINING)
        conn_shutdown(c);
}

static void on_write(uv_write_t *wreq, int status)
{
    struct conn *c = wreq->data;

    c->writing = 0;
    cmn_buf_reset(&c->wbuf);
    if (c->phase == PH_CLOSED)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    /* Progress: a slow reader is not an idle one. */
    if (c->phase == PH_IDLE || c->phase == PH_DRAINING)
        timer_start(c, c->cfg->idle_timeout_ms);
    if (c->out_blocked && conn_unsent(c) <= CMN_HTTPD_LOW_WATER) {
        c->out_blocked = 0;
        conn_schedule(c); /* buffered requests may be parsed again */
    }
    conn_flush(c);
    conn_update_io(c);
}

/* Deferred work of one connection: flush output, resume parsing buffered requests. */
static void conn_run(struct conn *c)
{
    if (c->phase == PH_CLOSED)
        return;
    conn_flush(c);
    if (c->phase == PH_IDLE || c->phase == PH_READING)
        conn_parse(c);
    conn_update_io(c);
}

static void on_idle(uv_idle_t *h)
{
    cmn_httpd_t *s = h->data;
    size_t n = s->npending;
    struct conn *c;

    /* Only the connections queued before this pass: work they queue runs on the next turn. */
    while (n-- > 0 && (c = s->pend_head) != NULL) {
        pending_remove(c);
        conn_run(c);
    }
    if (s->pend_head == NULL)
        uv_idle_stop(&s->idle);
}

static void conn_schedule(struct conn *c)
{
    cmn_httpd_t *s = c->srv;

    if (c->pending || c->phase == PH_CLOSED)
        return;
    c->pending = 1;
    if (s == NULL)
        return;
    c->pend_next = NULL;
    c->pend_prev = s->pend_tail;
    if (s->pend_tail != NULL)
        s->pend_tail->pend_next = c;
    else
        s->pend_head = c;
    s->pend_tail = c;
    s->npending++;
    uv_idle_start(&s->idle, on_idle);
}

static void on_timer(uv_timer_t *t)
{
    struct conn *c = t->data;

    conn_on_timeout(c);
    conn_update_io(c);
}

/* ---- public API ----------------------------------------------------------------------- */

void cmn_httpd_respond(cmn_httpd_req_t *pub, int status, const char *content_type, const char *body,
                     size_t body_len, const char *extra_headers)
{
    struct req *r = pub->internal;
    struct conn *c = r->conn;
    int keep;

    if (c == NULL || c->hreq != r)
        goto out; /* the client is gone: nothing to send */
    c->hreq = NULL;
    keep = r->keep_alive && !c->peer_eof && !server_closing(c);
    if (queue_response(c, status, content_type, body, body_len, extra_headers, keep,
                       r->pub.method == HTTP_HEAD) != 0) {
        cmn_log(CMN_LOG_ERROR, "http_response_dropped", "cannot queue a %zu-byte response",
                body_len);
        conn_close(c);
        goto out;
    }
    if (keep)
        conn_next_request(c);
    else
        conn_drain(c);
    conn_schedule(c);
out:
    req_free(r);
}

const char *cmn_httpd_req_header(const cmn_httpd_req_t *req, const char *name, size_t *len)
{
    const cmn_httpd_header_t *h = find_header(req->headers, req->nheaders, name);

    if (h == NULL)
        return NULL;
    if (len != NULL)
        *len = h->value_len;
    return h->value;
}

static const struct {
    int status;
    const char *text;
} status_texts[] = {
    {100, "Continue"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {304, "Not Modified"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Payload Too Large"},
    {415, "Unsupported Media Type"},
    {422, "Unprocessable Entity"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

const char *cmn_httpd_status_text(int status)
{
    for (size_t i = 0; i < sizeof status_texts / sizeof status_texts[0]; i++) {
        if (status_texts[i].status == status)
            return status_texts[i].text;
    }
    /* The rarer codes: http-parser knows the IANA registry, and says "<unknown>" otherwise. */
    if (status >= 100 && status <= 599) {
        const char *s = http_status_str((enum http_status)status);
        if (s != NULL && s[0] != '<')
            return s;
    }
    return "Unknown";
}

static void on_connection(uv_stream_t *listener, int status)
{
    cmn_httpd_t *s = listener->data;
    struct conn *c;

    if (status < 0) {
        cmn_log(CMN_LOG_WARN, "http_accept_failed", "%s", uv_strerror(status));
        return;
    }
    c = cmn_xcalloc(1, sizeof *c);
    conn_init(c, s, &s->cfg, &s->stats, s->handler, s->data);
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->open_handles = 2;
    conns_add(s, c);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (s->stats.connections_open >= s->cfg.max_connections) {
        s->stats.connections_rejected++;
        set_fail(c, 503, "unavailable", "too many connections");
        conn_fail(c);
    } else {
        c->admitted = 1;
        s->stats.connections_open++;
        s->stats.connections_accepted++;
        timer_start(c, s->cfg.idle_timeout_ms);
    }
    conn_update_io(c);
}

static void on_server_handle_closed(uv_handle_t *h)
{
    cmn_httpd_t *s = h->data;
    void (*done)(void *) = s->done;
    void *data = s->done_data;

    if (--s->open_handles > 0) {
        if (h == (uv_handle_t *)&s->listener) {
            s->listener_closed = 1;
            server_maybe_finish(s);
        }
        return;
    }
    cmn_free(s);
    if (done != NULL)
        done(data);
}

static void set_cfg(cmn_httpd_t *s, const cmn_httpd_config_t *cfg)
{
    s->cfg.max_header_bytes = cfg->max_header_bytes;
    s->cfg.max_body_bytes = cfg->max_body_bytes;
    s->cfg.max_connections = cfg->max_connections;
    s->cfg.idle_timeout_ms = cfg->idle_timeout_ms;
    s->cfg.request_timeout_ms = cfg->request_timeout_ms;
}

int cmn_httpd_start(uv_loop_t *loop, const cmn_httpd_config_t *cfg, cmn_httpd_handler_cb handler,
                         void *data, cmn_httpd_t **out)
{
    cmn_httpd_t *s = cmn_xcalloc(1, sizeof *s);
    struct sockaddr_storage addr;
    int len = sizeof addr;
    int rc;

    s->loop = loop;
    s->handler = handler;
    s->data = data;
    set_cfg(s, cfg);
    s->cfg.port = cfg->port;
    uv_idle_init(loop, &s->idle);
    s->idle.data = s;
    s->open_handles = 1;
    rc = uv_tcp_init(loop, &s->listener);
    if (rc != 0)
        goto out;
    s->listener.data = s;
    s->open_handles = 2;
    rc = UV_EINVAL;
    if (cfg->host == NULL)
        goto out;
    if (strchr(cfg->host, ':') != NULL)
        rc = uv_ip6_addr(cfg->host, cfg->port, (struct sockaddr_in6 *)&addr);
    else
        rc = uv_ip4_addr(cfg->host, cfg->port, (struct sockaddr_in *)&addr);
    if (rc != 0)
        goto out;
    rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    if (rc != 0)
        goto out;
    rc = uv_listen((uv_stream_t *)&s->listener, CMN_HTTPD_BACKLOG, on_connection);
    if (rc != 0)
        goto out;
    rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&addr, &len);
    if (rc != 0)
        goto out;
    if (addr.ss_family == AF_INET6)
        s->port = ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
    else
        s->port = ntohs(((struct sockaddr_in *)&addr)->sin_port);
    *out = s;
    s = NULL;
out:
    if (rc != 0)
        *out = NULL;
    if (s != NULL) {
        /* The handles are closed asynchronously; the last close callback frees s (no done). */
        s->closing = s->finishing = 1;
        uv_close((uv_handle_t *)&s->idle, on_server_handle_closed);
        if (s->open_handles == 2)
            uv_close((uv_handle_t *)&s->listener, on_server_handle_closed);
    }
    return rc;
}

int cmn_httpd_port(const cmn_httpd_t *s)
{
    return s->port;
}

void cmn_httpd_set_limits(cmn_httpd_t *s, const cmn_httpd_config_t *cfg)
{
    set_cfg(s, cfg);
}

const cmn_httpd_stats_t *cmn_httpd_stats(const cmn_httpd_t *s)
{
    return &s->stats;
}

void cmn_httpd_close(cmn_httpd_t *s, void (*done)(void *data), void *data)
{
    struct conn *c, *next;

    if (s->closing)
        return;
    s->closing = 1;
    s->done = done;
    s->done_data = data;
    uv_close((uv_handle_t *)&s->listener, on_server_handle_closed);
    for (c = s->conns; c != NULL; c = next) {
        next = c->next; /* conn_close never frees synchronously, but stay safe */
        switch (c->phase) {
        case PH_IDLE:
        case PH_READING:
            /* Nothing received whole is waiting: close, after writing what is queued. */
            if (conn_unsent(c) > 0 || c->writing)
                conn_drain(c);
            else
                conn_close(c);
            break;
        case PH_HANDLER:
            /* Its response goes out with `Connection: close`; pipelined bytes are dropped. */
            c->in_pos = c->in_len = 0;
            break;
        default:
            break;
        }
        conn_update_io(c);
    }
}

/* ---- loopback (httpd_int.h) ------------------------------------------------------------ */

cmn__httpd_loopback_t *cmn__httpd_loopback_new(const cmn_httpd_config_t *cfg, cmn_httpd_handler_cb handler,
                                           void *data)
{
    cmn__httpd_loopback_t *lb = cmn_xcalloc(1, sizeof *lb);

    lb->cfg = *cfg;
    lb->cfg.host = NULL;
    conn_init(&lb->c, NULL, &lb->cfg, &lb->stats, handler, data);
    lb->c.admitted = 1;
    lb->stats.connections_open = 1;
    lb->stats.connections_accepted = 1;
    return lb;
}

void cmn__httpd_loopback_run(cmn__httpd_loopback_t *lb)
{
    struct conn *c = &lb->c;

    while (c->pending && c->phase != PH_CLOSED) {
        c->pending = 0;
        conn_run(c);
    }
}

size_t cmn__httpd_loopback_feed(cmn__httpd_loopback_t *lb, const void *data, size_t len)
{
    struct conn *c = &lb->c;
    size_t done = 0;

    cmn__httpd_loopback_run(lb);
    while (done < len && conn_can_read(c)) {
        uv_buf_t b;
        size_t k;

        conn_alloc(c, &b);
        k = len - done < b.len ? len - done : b.len;
        if (k == 0)
            break;
        memcpy(b.base, (const char *)data + done, k);
        done += k;
        conn_on_data(c, k);
        cmn__httpd_loopback_run(lb);
    }
    return done;
}

void cmn__httpd_loopback_eof(cmn__httpd_loopback_t *lb)
{
    cmn__httpd_loopback_run(lb);
    if (conn_can_read(&lb->c))
        conn_on_eof(&lb->c);
    cmn__httpd_loopback_run(lb);
}

void cmn__httpd_loopback_timeout(cmn__httpd_loopback_t *lb)
{
    conn_on_timeout(&lb->c);
    cmn__httpd_loopback_run(lb);
}

const char *cmn__httpd_loopback_output(const cmn__httpd_loopback_t *lb, size_t *len)
{
    *len = lb->c.out.len;
    return lb->c.out.base != NULL ? lb->c.out.base : "";
}

int cmn__httpd_loopback_closed(const cmn__httpd_loopback_t *lb)
{
    return lb->c.phase == PH_CLOSED;
}

int cmn__httpd_loopback_busy(const cmn__httpd_loopback_t *lb)
{
    return lb->c.hreq != NULL;
}

const cmn_httpd_stats_t *cmn__httpd_loopback_stats(const cmn__httpd_loopback_t *lb)
{
    return &lb->stats;
}

void cmn__httpd_loopback_free(cmn__httpd_loopback_t *lb)
{
    if (lb == NULL)
        return;
    conn_close(&lb->c);
    conn_dispose(&lb->c);
    cmn_free(lb);
}
