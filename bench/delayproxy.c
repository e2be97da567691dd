/*
 * delayproxy: a TCP proxy for bench/run that adds a fixed delay to every answer.
 *
 *   delayproxy --port N --upstream-port M [--delay-ms 50] [--host 127.0.0.1]
 *
 * Byte-transparent: it knows nothing of HTTP.  Each client connection gets its own upstream
 * connection (to 127.0.0.1:M); what the client sends goes upstream at once, and each chunk the
 * upstream sends back is handed to the client --delay-ms after it arrived, in order: a FIFO per
 * connection and a timerfd per connection armed for the FIFO's head, in nanoseconds (libuv's own
 * timers count whole milliseconds of the loop's time and made it 51.4 ms on average for 50).  A
 * request/answer exchange therefore takes the upstream's time plus the delay, as with a provider
 * far away, and the proxy itself costs one read and one write per chunk each way.  bench/run
 * used tests/peers/fault_proxy.py before (a Python thread and a new upstream connection per
 * request): it could not carry 32 requests in flight at +50 ms and was the ceiling of the
 * bench's provider path.  Nothing bounds what is buffered here: a bench tool, for answers of a
 * few kilobytes.
 *
 * Half-close is passed on both ways: the client's EOF shuts down the upstream's write side once
 * what the client sent before is written, the upstream's EOF shuts down the client's once every
 * delayed chunk before it is delivered.  An error or reset on either side closes both.
 *
 * Prints "listening <port>" on stdout when ready.  On SIGUSR1 it prints one JSON line on stdout
 * and starts counting afresh: {"conns": open client connections, "conns_max", "waiting_avg",
 * "waiting_max", "samples"}, where "waiting" is the number of connections whose client has sent
 * bytes that no answer chunk has followed yet (for a request/answer protocol without pipelining:
 * the requests in flight), sampled every 5 ms.  Exits on SIGTERM or SIGINT.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <uv.h>

#define READ_SIZE 65536

typedef struct conn conn_t;

/* One chunk on its way: a write request owning its bytes, and for answers the time it is due. */
typedef struct chunk {
    uv_write_t req;
    conn_t *c;
    struct chunk *next;
    uint64_t due;    /* uv_hrtime() (ns) at which it goes to the client */
    size_t len;
    char data[];
} chunk_t;

struct conn {
    uv_tcp_t client;
    uv_tcp_t up;
    uv_poll_t timer;       /* on tfd */
    int tfd;               /* a timerfd armed for the head of the FIFO */
    uv_connect_t creq;
    uv_shutdown_t sreq_up;
    uv_shutdown_t sreq_client;
    chunk_t *head, *tail;  /* answers waiting for their time */
    int open_handles;      /* handles still to close before the struct can go */
    int closing;
    int up_eof;            /* the upstream finished sending */
    int up_shut_done;      /* upstream's write side shut down */
    int client_shut_done;  /* client's write side shut down */
    int waiting;           /* client bytes sent upstream, no answer chunk delivered since */
};

static struct {
    const char *host;
    int port;
    int upstream_port;
    uint64_t delay_ms;
} opt = {"127.0.0.1", 0, 0, 50};

static uv_loop_t *loop;
static uv_tcp_t server;
static struct sockaddr_in upstream_addr;
static uv_timer_t sampler;
static uv_signal_t sig_usr1, sig_term, sig_int;

static struct {
    int64_t conns, conns_max;
    int64_t waiting;
    int64_t waiting_max;
    uint64_t waiting_sum, samples;
} stats;

static void conn_close(conn_t *c);
static void deliver(conn_t *c);

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (p == NULL) {
        fprintf(stderr, "delayproxy: out of memory\n");
        abort();
    }
    return p;
}

static void set_waiting(conn_t *c, int w)
{
    if (c->waiting == w) return;
    c->waiting = w;
    stats.waiting += w ? 1 : -1;
    if (stats.waiting > stats.waiting_max) stats.waiting_max = stats.waiting;
}

/* ---- closing --------------------------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    if (--c->open_handles > 0) return;
    /* Chunks still queued were never written: their write requests never started. */
    while (c->head) {
        chunk_t *k = c->head;
        c->head = k->next;
        free(k);
    }
    if (c->tfd >= 0) close(c->tfd);
    free(c);
}

static void conn_close(conn_t *c)
{
    if (c->closing) return;
    c->closing = 1;
    set_waiting(c, 0);
    stats.conns--;
    /* Writes in progress complete with UV_ECANCELED and free their chunk themselves. */
    uv_close((uv_handle_t *)&c->client, on_handle_closed);
    uv_close((uv_handle_t *)&c->up, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

/* Both directions are over once each side's EOF was passed on to the other. */
static void maybe_done(conn_t *c)
{
    if (c->up_shut_done && c->client_shut_done) conn_close(c);
}

/* ---- client -> upstream: at once ------------------------------------------------------------- */

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    chunk_t *k = xmalloc(sizeof(*k) + READ_SIZE);
    buf->base = k->data;
    buf->len = READ_SIZE;
}

static chunk_t *chunk_of(const uv_buf_t *buf)
{
    return buf->base ? (chunk_t *)(buf->base - offsetof(chunk_t, data)) : NULL;
}

static void on_written(uv_write_t *req, int status)
{
    chunk_t *k = (chunk_t *)req;
    conn_t *c = k->c;
    free(k);
    if (status < 0) conn_close(c);  /* UV_ECANCELED when already closing: a no-op */
}

static void on_up_shutdown(uv_shutdown_t *req, int status)
{
    conn_t *c = req->data;
    if (status < 0) {
        conn_close(c);
        return;
    }
    c->up_shut_done = 1;
    maybe_done(c);
}

static void on_client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = s->data;
    chunk_t *k = chunk_of(buf);
    if (nread == 0) {  /* EAGAIN */
        free(k);
        return;
    }
    if (nread < 0) {
        free(k);
        if (nread != UV_EOF || c->closing) {
            conn_close(c);
            return;
        }
        uv_read_stop(s);
        c->sreq_up.data = c;
        if (uv_shutdown(&c->sreq_up, (uv_stream_t *)&c->up, on_up_shutdown) != 0) conn_close(c);
        return;
    }
    k->c = c;
    k->len = (size_t)nread;
    uv_buf_t out = uv_buf_init(k->data, (unsigned int)nread);
    if (uv_write(&k->req, (uv_stream_t *)&c->up, &out, 1, on_written) != 0) {
        free(k);
        conn_close(c);
        return;
    }
    set_waiting(c, 1);
}

/* ---- upstream -> client: each chunk delay_ms after it arrived -------------------------------- */

static void on_client_shutdown(uv_shutdown_t *req, int status)
{
    conn_t *c = req->data;
    if (status < 0) {
        conn_close(c);
        return;
    }
    c->client_shut_done = 1;
    maybe_done(c);
}

static void on_timer(uv_poll_t *p, int status, int events)
{
    conn_t *c = p->data;
    uint64_t expirations;
    (void)events;
    if (status < 0) {
        conn_close(c);
        return;
    }
    /* Emptied, or it stays readable; EAGAIN when it fired and was re-armed since: harmless. */
    if (read(c->tfd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN) {
        conn_close(c);
        return;
    }
    deliver(c);
}

/* Writes every chunk that is due, then arms the timer for the next one; passes the upstream's EOF
 * on once nothing is left before it. */
static void deliver(conn_t *c)
{
    uint64_t now = uv_hrtime();
    while (c->head && c->head->due <= now) {
        chunk_t *k = c->head;
        c->head = k->next;
        if (c->head == NULL) c->tail = NULL;
        k->next = NULL;
        uv_buf_t out = uv_buf_init(k->data, (unsigned int)k->len);
        if (uv_write(&k->req, (uv_stream_t *)&c->client, &out, 1, on_written) != 0) {
            free(k);
            conn_close(c);
            return;
        }
        set_waiting(c, 0);
    }
    if (c->head) {
        /* uv_hrtime() is CLOCK_MONOTONIC in nanoseconds, the timerfd's clock. */
        struct itimerspec its = {.it_value = {.tv_sec = (time_t)(c->head->due / 1000000000),
                                              .tv_nsec = (long)(c->head->due % 1000000000)}};
        if (timerfd_settime(c->tfd, TFD_TIMER_ABSTIME, &its, NULL) != 0) {
            fprintf(stderr, "delayproxy: timerfd_settime: %s\n", strerror(errno));
            conn_close(c);
        }
    } else if (c->up_eof) {
        c->sreq_client.data = c;
        if (uv_shutdown(&c->sreq_client, (uv_stream_t *)&c->client, on_client_shutdown) != 0)
            conn_close(c);
    }
}

static void on_up_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = s->data;
    chunk_t *k = chunk_of(buf);
    if (nread == 0) {
        free(k);
        return;
    }
    if (nread < 0) {
        free(k);
        if (nread != UV_EOF || c->closing) {
            conn_close(c);
            return;
        }
        c->up_eof = 1;
        uv_read_stop(s);
        /* Pass the EOF on after the chunks before it, at their time. */
        if (c->head == NULL) deliver(c);
        return;
    }
    k->c = c;
    k->len = (size_t)nread;
    k->next = NULL;
    /* In nanoseconds: the loop's time (uv_now) is in whole milliseconds, truncated, and would let
     * an answer leave up to 1 ms before its delay is over. */
    k->due = uv_hrtime() + opt.delay_ms * 1000000;
    int was_empty = c->head == NULL;
    if (c->tail) c->tail->next = k;
    else c->head = k;
    c->tail = k;
    if (was_empty) deliver(c);  /* writes at once when there is no delay, else arms the timer */
}

/* ---- connections ----------------------------------------------------------------------------- */

static void on_up_connected(uv_connect_t *req, int status)
{
    conn_t *c = req->data;
    if (c->closing) return;
    if (status < 0) {
        fprintf(stderr, "delayproxy: upstream connect: %s\n", uv_strerror(status));
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->up, 1);
    /* The client is read only now: what it sends can go upstream at once, never buffered here. */
    if (uv_read_start((uv_stream_t *)&c->client, alloc_cb, on_client_read) != 0 ||
        uv_read_start((uv_stream_t *)&c->up, alloc_cb, on_up_read) != 0)
        conn_close(c);
}

static void on_accept(uv_stream_t *srv, int status)
{
    if (status < 0) {
        fprintf(stderr, "delayproxy: accept: %s\n", uv_strerror(status));
        return;
    }
    conn_t *c = xmalloc(sizeof(*c));
    memset(c, 0, sizeof(*c));
    uv_tcp_init(loop, &c->client);
    uv_tcp_init(loop, &c->up);
    c->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (c->tfd < 0) {
        fprintf(stderr, "delayproxy: timerfd_create: %s\n", strerror(errno));
        abort();
    }
    uv_poll_init(loop, &c->timer, c->tfd);
    uv_poll_start(&c->timer, UV_READABLE, on_timer);
    c->client.data = c->up.data = c->timer.data = c;
    c->open_handles = 3;
    stats.conns++;
    if (stats.conns > stats.conns_max) stats.conns_max = stats.conns;
    if (uv_accept(srv, (uv_stream_t *)&c->client) != 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->client, 1);
    c->creq.data = c;
    if (uv_tcp_connect(&c->creq, &c->up, (const struct sockaddr *)&upstream_addr,
                       on_up_connected) != 0)
        conn_close(c);
}

/* ---- statistics and signals ------------------------------------------------------------------ */

static void on_sample(uv_timer_t *t)
{
    (void)t;
    stats.waiting_sum += (uint64_t)stats.waiting;
    stats.samples++;
}

static void on_usr1(uv_signal_t *h, int signum)
{
    (void)h;
    (void)signum;
    printf("{\"conns\": %" PRId64 ", \"conns_max\": %" PRId64 ", \"waiting_avg\": %.3f, "
           "\"waiting_max\": %" PRId64 ", \"samples\": %" PRIu64 "}\n",
           stats.conns, stats.conns_max,
           stats.samples ? (double)stats.waiting_sum / (double)stats.samples : 0.0,
           stats.waiting_max, stats.samples);
    fflush(stdout);
    stats.conns_max = stats.conns;
    stats.waiting_max = stats.waiting;
    stats.waiting_sum = 0;
    stats.samples = 0;
}

static void close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (uv_is_closing(h)) return;
    if (h->data) conn_close(h->data);  /* a connection's handle: all three go together */
    else uv_close(h, NULL);
}

static void on_term(uv_signal_t *h, int signum)
{
    (void)h;
    (void)signum;
    uv_walk(loop, close_any, NULL);  /* the loop then runs out of handles and main returns */
}

static void usage(void)
{
    fprintf(stderr, "usage: delayproxy --port N --upstream-port M [--delay-ms 50] "
                    "[--host 127.0.0.1]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) usage();
        const char *v = argv[++i];
        char *end;
        long n = strtol(v, &end, 10);
        if (strcmp(a, "--host") == 0) {
            opt.host = v;
            continue;
        }
        if (*v == '\0' || *end != '\0' || n < 0) usage();
        if (strcmp(a, "--port") == 0 && n < 65536) opt.port = (int)n;
        else if (strcmp(a, "--upstream-port") == 0 && n > 0 && n < 65536)
            opt.upstream_port = (int)n;
        else if (strcmp(a, "--delay-ms") == 0) opt.delay_ms = (uint64_t)n;
        else usage();
    }
    if (opt.upstream_port == 0) usage();
    signal(SIGPIPE, SIG_IGN);
    loop = uv_default_loop();
    struct sockaddr_in addr;
    if (uv_ip4_addr(opt.host, opt.port, &addr) != 0 ||
        uv_ip4_addr("127.0.0.1", opt.upstream_port, &upstream_addr) != 0)
        usage();
    uv_tcp_init(loop, &server);
    int rc = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&server, 511, on_accept);
    if (rc != 0) {
        fprintf(stderr, "delayproxy: listen on %s:%d: %s\n", opt.host, opt.port, uv_strerror(rc));
        return 1;
    }
    struct sockaddr_in bound;
    int blen = sizeof(bound);
    uv_tcp_getsockname(&server, (struct sockaddr *)&bound, &blen);
    uv_timer_init(loop, &sampler);
    uv_timer_start(&sampler, on_sample, 5, 5);
    uv_signal_init(loop, &sig_usr1);
    uv_signal_start(&sig_usr1, on_usr1, SIGUSR1);
    uv_signal_init(loop, &sig_term);
    uv_signal_start(&sig_term, on_term, SIGTERM);
    uv_signal_init(loop, &sig_int);
    uv_signal_start(&sig_int, on_term, SIGINT);
    printf("listening %d\n", ntohs(bound.sin_port));
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return 0;
}
