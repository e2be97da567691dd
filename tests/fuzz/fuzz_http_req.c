/*
 * libFuzzer harness for the gateway's HTTP request handling (common/src/httpd.c), through the loopback
 * connection of common/src/httpd_int.h: the same parser callbacks, limits, pipelining and response
 * writer as a socket connection, fed from memory.
 *
 * The first input byte steers the run, the rest is what the client sends:
 *   bits 0-4  where the bytes are split into two reads: (ctl & 31) / 31 of the way through;
 *   bit 5     the handler holds each request and the harness responds between reads (an
 *             asynchronous handler); a request still held at the end is answered after the
 *             connection is freed (the detached path);
 *   bit 6     the connection's timer fires after the input (request or idle timeout);
 *   bit 7     the client closes its side after the input (EOF).
 *
 * The handler answers every request, so pipelined requests are parsed too: 200 with body "r<i>"
 * (i counts requests), 204 for every third one.  Besides "no crash, no sanitizer report", it
 * checks:
 *   - every request respects the limits: body_len <= max_body_bytes, url and headers within
 *     max_header_bytes; strings are NUL-terminated, names non-empty, values trimmed;
 *   - cmn_httpd_req_header finds the first header of a name, case-insensitively;
 *   - the output is a sequence of well-formed responses, one per request in request order
 *     (checked through the "r<i>" bodies), then at most one error response of the server, which
 *     is last and closes the connection; HEAD responses carry no body;
 *   - the counters agree with what was handled and written.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>

#include "cmn/mem.h"
#include "cmn/httpd.h"
#include "httpd_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define MAX_HEADER 1024
#define MAX_BODY 256
#define MAX_REQS 4096

struct run {
    int hold;
    cmn_httpd_req_t *held;
    size_t calls;     /* requests handed to the handler */
    size_t responded; /* responses given */
    int head[MAX_REQS];
    int status[MAX_REQS];
};

static int is_sp(char ch)
{
    return ch == ' ' || ch == '\t';
}

static void check_request(const cmn_httpd_req_t *req)
{
    size_t head_bytes = req->url_len;

    CHECK(req->method >= 0 && req->method <= HTTP_SOURCE);
    CHECK(req->url != NULL && req->url_len > 0 && req->url[req->url_len] == '\0');
    CHECK(memchr(req->url, '\0', req->url_len) == NULL);
    CHECK(req->body != NULL && req->body[req->body_len] == '\0');
    CHECK(req->body_len <= MAX_BODY);
    CHECK(req->nheaders == 0 || req->headers != NULL);
    for (size_t i = 0; i < req->nheaders; i++) {
        const cmn_httpd_header_t *h = &req->headers[i];
        size_t len = 0;
        const char *v;

        CHECK(h->name_len > 0 && h->name[h->name_len] == '\0');
        CHECK(memchr(h->name, ':', h->name_len) == NULL);
        CHECK(memchr(h->name, '\0', h->name_len) == NULL);
        CHECK(h->value[h->value_len] == '\0');
        CHECK(memchr(h->value, '\0', h->value_len) == NULL);
        if (h->value_len > 0)
            CHECK(!is_sp(h->value[0]) && !is_sp(h->value[h->value_len - 1]));
        head_bytes += h->name_len + h->value_len;
        /* The lookup returns the first header of that name. */
        v = cmn_httpd_req_header(req, h->name, &len);
        CHECK(v != NULL);
        for (size_t j = 0; j < i; j++) {
            if (req->headers[j].name_len == h->name_len &&
                strncasecmp(req->headers[j].name, h->name, h->name_len) == 0) {
                h = &req->headers[j];
                break;
            }
        }
        CHECK(v == h->value && len == h->value_len);
    }
    CHECK(head_bytes <= MAX_HEADER);
}

static void respond(struct run *r, cmn_httpd_req_t *req)
{
    char body[32];
    size_t i = r->responded++;
    int status = i % 3 == 2 ? 204 : 200;
    int n = snprintf(body, sizeof body, "r%zu", i);

    if (i < MAX_REQS)
        r->status[i] = status;
    cmn_httpd_respond(req, status, "text/plain", body, (size_t)n, i % 2 ? "X-Seq: odd\r\n" : NULL);
}

static void handler(cmn_httpd_req_t *req, void *data)
{
    struct run *r = data;

    check_request(req);
    CHECK(r->held == NULL);
    if (r->calls < MAX_REQS)
        r->head[r->calls] = req->method == HTTP_HEAD;
    r->calls++;
    if (r->hold)
        r->held = req;
    else
        respond(r, req);
}

static void release(struct run *r, cmn__httpd_loopback_t *lb)
{
    if (r->held != NULL) {
        cmn_httpd_req_t *req = r->held;
        r->held = NULL;
        respond(r, req);
        cmn__httpd_loopback_run(lb);
    }
}

static void drive(struct run *r, cmn__httpd_loopback_t *lb, const uint8_t *data, size_t len)
{
    size_t off = 0;

    while (off < len) {
        size_t n = cmn__httpd_loopback_feed(lb, data + off, len - off);
        off += n;
        if (r->held != NULL) {
            release(r, lb);
            continue;
        }
        if (n == 0)
            break; /* closed: the rest is never read */
    }
}

static size_t find(const char *s, size_t len, size_t from, const char *what)
{
    size_t wl = strlen(what);

    for (size_t i = from; i + wl <= len; i++) {
        if (memcmp(s + i, what, wl) == 0)
            return i;
    }
    return (size_t)-1;
}

/* Walks the output response by response; returns how many there were. */
static size_t check_output(const struct run *r, const char *out, size_t len, int closed)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    size_t pos = 0, nresp = 0, nfinal = 0;
    int saw_close = 0, saw_error = 0;

    while (pos < len) {
        size_t end, cl, blen = 0;
        int status, has_body, is_close;

        CHECK(!saw_close); /* nothing follows a response that closes */
        nresp++;
        if (len - pos >= sizeof cont - 1 && memcmp(out + pos, cont, sizeof cont - 1) == 0) {
            pos += sizeof cont - 1;
            continue;
        }
        CHECK(len - pos > 13 && memcmp(out + pos, "HTTP/1.1 ", 9) == 0);
        status = (out[pos + 9] - '0') * 100 + (out[pos + 10] - '0') * 10 + (out[pos + 11] - '0');
        CHECK(status >= 200 && status <= 599 && out[pos + 12] == ' ');
        end = find(out, len, pos, "\r\n\r\n");
        CHECK(end != (size_t)-1);
        has_body = status != 204 && status != 304;
        cl = find(out, end, pos, "\r\nContent-Length: ");
        CHECK((cl != (size_t)-1) == has_body);
        if (has_body)
            blen = strtoull(out + cl + 18, NULL, 10);
        is_close = find(out, end + 2, pos, "\r\nConnection: close\r\n") != (size_t)-1;
        CHECK(is_close !=
              (find(out, end + 2, pos, "\r\nConnection: keep-alive\r\n") != (size_t)-1));
        pos = end + 4;
        if (nfinal < r->responded) {
            /* The handler's: in request order, without body for HEAD. */
            char want[32];
            int n = snprintf(want, sizeof want, "r%zu", nfinal);
            CHECK(nfinal >= MAX_REQS || status == r->status[nfinal]);
            if (nfinal < MAX_REQS && r->head[nfinal])
                blen = 0;
            else if (has_body)
                CHECK(blen == (size_t)n && len - pos >= blen && memcmp(out + pos, want, blen) == 0);
        } else {
            /* The server's own error response: JSON, closing, and the last thing written. */
            CHECK(!saw_error && is_close && has_body);
            CHECK(len - pos >= blen && blen > 10 && memcmp(out + pos, "{\"error\":\"", 10) == 0);
            saw_error = 1;
        }
        CHECK(len - pos >= blen);
        pos += blen;
        nfinal++;
        saw_close = is_close;
    }
    CHECK(nfinal == r->responded + (size_t)saw_error);
    if (saw_close)
        CHECK(closed);
    return nresp;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cmn_httpd_config_t cfg = {.host = "127.0.0.1",
                            .max_header_bytes = MAX_HEADER,
                            .max_body_bytes = MAX_BODY,
                            .max_connections = 1,
                            .idle_timeout_ms = 1000,
                            .request_timeout_ms = 1000};
    struct run *r;
    cmn__httpd_loopback_t *lb;
    const cmn_httpd_stats_t *st;
    const char *out;
    size_t split, out_len, nresp, by_class = 0;
    uint8_t ctl;

    if (size == 0)
        return 0;
    ctl = data[0];
    data++;
    size--;
    split = (size_t)(ctl & 31) * size / 31;
    r = cmn_xcalloc(1, sizeof *r);
    r->hold = (ctl & 0x20) != 0;
    lb = cmn__httpd_loopback_new(&cfg, handler, r);

    drive(r, lb, data, split);
    drive(r, lb, data + split, size - split);
    if (ctl & 0x40)
        cmn__httpd_loopback_timeout(lb);
    if (ctl & 0x80)
        cmn__httpd_loopback_eof(lb);
    CHECK(r->held == NULL || cmn__httpd_loopback_busy(lb));

    out = cmn__httpd_loopback_output(lb, &out_len);
    nresp = check_output(r, out, out_len, cmn__httpd_loopback_closed(lb));
    st = cmn__httpd_loopback_stats(lb);
    CHECK(st->requests == r->calls);
    CHECK(r->calls == r->responded + (r->held != NULL));
    for (int i = 0; i < 6; i++)
        by_class += st->responses_by_class[i];
    CHECK(by_class == nresp);

    cmn__httpd_loopback_free(lb);
    if (r->held != NULL) {
        /* The connection is gone: this must only free the request. */
        cmn_httpd_respond(r->held, 200, NULL, NULL, 0, NULL);
    }
    cmn_free(r);
    return 0;
}
