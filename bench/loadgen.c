/*
 * loadgen: an HTTP/1.1 load client for bench/run that measures latency honestly.
 *
 *   loadgen --port N [--host 127.0.0.1] --requests FILE [--conns 50] [--rate R] [--count N]
 *           [--expect TEXT] [--timeout-s 60] [--serial-header NAME]
 *
 * FILE holds complete HTTP requests back to back, each with a Content-Length (bench/run writes
 * them, signed).  Every request is sent once, in file order, over `--conns` keep-alive
 * connections, one request at a time per connection (as a barrier controller does; no pipelining).
 *
 * Open loop (`--rate R`, requests per second): request i is due at t0 + i/R, whatever happened to
 * the ones before it.  A due request goes out on a free connection, or waits in a queue for the
 * first connection to free up.  Its latency runs from the time it was DUE to the time its whole
 * response arrived, so a stall of the server (or of this client) counts against every request it
 * delayed: no coordinated omission.  The schedule is kept by a timerfd (CLOCK_MONOTONIC, ns),
 * not by polling or sleeping.
 *
 * Closed loop (`--rate 0`, the default): each connection sends its next request as soon as the
 * previous answer arrived; the figure is the throughput (and the service times).  bench/run uses
 * it to create sessions and enrol drivers in bulk.
 *
 * `--serial-header NAME` (closed loop only): requests carrying the same value of header NAME go one
 * at a time, in file order: the next one of a value leaves only once the previous one of that value
 * was answered, while requests of other values overtake it.  bench/run's city day keys its camera
 * pushes by lot, so a day replayed as fast as it goes still reaches each lot in the day's order
 * (as its cameras, seconds apart, would), with as many lots in flight as there are connections.
 *
 * The result is one JSON object on stdout: counts (sent, 2xx, other status, errors, answers
 * containing --expect), the achieved rate, latency percentiles in microseconds (p50, p90, p99,
 * p99.9, max), the schedule's start and the last answer (t0_ns, t_last_ns: CLOCK_MONOTONIC, so a
 * caller can time a run that goes on past loadgen's end) and how late the client itself sent
 * (send lag: the time a due request waited for a free connection; part of the latency) and woke
 * (timer lateness: how long after a request's due time the client got the CPU to send it; a late
 * wake is the client's or the machine's stall, charged to the server's latency all the same), so
 * a saturated client is visible.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

typedef struct req {
    const char *p;
    size_t len;
} req_t;

typedef struct conn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    int id;
    int connected;
    int busy;       /* a request is out and its answer not complete */
    int closing;
    int64_t cur;    /* index of the request in flight */
    char *buf;      /* answer bytes received */
    size_t blen, bcap;
} conn_t;

static struct {
    const char *host;
    int port;
    int nconns;
    double rate;
    int64_t count;
    const char *expect;
    double timeout_s;
    const char *serial_header;
} opt = {"127.0.0.1", 0, 50, 0, -1, NULL, 60, NULL};

static uv_loop_t *loop;
static req_t *reqs;
static int64_t nreqs;
static conn_t *conns;
static int nconnected;
static uint64_t t0;          /* schedule start, ns (uv_hrtime = CLOCK_MONOTONIC) */
static uint64_t *due_ns;     /* per request: when it was due (open loop) or sent (closed loop) */
static uint64_t *lat_ns;     /* per request: latency, ns; UINT64_MAX while unanswered */
static int64_t next_due;     /* next request index to become due (open loop) */
static int64_t next_send;    /* next request index to be sent (both modes: in order) */
static int64_t answered, ok2xx, other_status, errors, expected_hits, reconnects;
static uint64_t max_lag_ns;
static int64_t by_status[600]; /* answers by HTTP status */
static uint64_t *wake_late_ns;  /* per timer wake: how late after the due time it ran */
static int64_t nwakes;
static uint64_t t_last;
static int timer_fd = -1;
static uv_poll_t timer_poll;
static uv_timer_t watchdog;
static int finished;
/* --serial-header: each request's key (a small number per distinct header value) and the next
 * request of the same key; per key, its next unsent request; a min-heap of the keys that may send
 * (nothing out, something left), ordered by that request's index so the file's order is kept
 * wherever the keys allow it. */
static int32_t *req_key;
static int64_t *next_same;
static int64_t *key_head;
static unsigned char *key_busy;
static int32_t *ready;
static int64_t nready, nkeys;

static void ready_push(int32_t k)
{
    int64_t i = nready++;
    while (i > 0) {
        int64_t up = (i - 1) / 2;
        if (key_head[ready[up]] <= key_head[k])
            break;
        ready[i] = ready[up];
        i = up;
    }
    ready[i] = k;
}

static int32_t ready_pop(void)
{
    int32_t top = ready[0], last = ready[--nready];
    int64_t i = 0;
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= nready)
            break;
        if (c + 1 < nready && key_head[ready[c + 1]] < key_head[ready[c]])
            c++;
        if (key_head[last] <= key_head[ready[c]])
            break;
        ready[i] = ready[c];
        i = c;
    }
    if (nready > 0)
        ready[i] = last;
    return top;
}

/* The request of key k was answered (or failed): the key's next one may go. */
static void key_done(int32_t k)
{
    key_busy[k] = 0;
    if (key_head[k] >= 0)
        ready_push(k);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "loadgen: out of memory\n");
        exit(1);
    }
    return p;
}

static void die(const char *what, int err)
{
    fprintf(stderr, "loadgen: %s: %s\n", what, err < 0 ? uv_strerror(err) : strerror(err));
    exit(1);
}

/* ---- the request file ----------------------------------------------------------------------- */

static const char *find_crlf2(const char *p, const char *end)
{
    for (; p + 3 < end; p++) {
        if (p[0] == '\r' && p[1] == '\n' && p[2] == '\r' && p[3] == '\n')
            return p;
    }
    return NULL;
}

/* Content-Length of a header block [h, hend), or -1. */
static long long content_length(const char *h, const char *hend)
{
    static const char name[] = "\ncontent-length:";
    size_t n = sizeof name - 1;
    for (const char *p = h; p + n <= hend; p++) {
        if (strncasecmp(p, name, n) == 0) {
            p += n;
            while (p < hend && (*p == ' ' || *p == '\t'))
                p++;
            long long v = 0;
            int digits = 0;
            while (p < hend && *p >= '0' && *p <= '9') {
                v = v * 10 + (*p - '0');
                p++;
                digits++;
            }
            return digits ? v : -1;
        }
    }
    return -1;
}

static void load_requests(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        die(path, errno);
    struct stat st;
    if (fstat(fd, &st) != 0)
        die(path, errno);
    if (st.st_size == 0) {
        fprintf(stderr, "loadgen: %s is empty\n", path);
        exit(2);
    }
    const char *base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (base == MAP_FAILED)
        die("mmap", errno);
    close(fd);
    const char *p = base, *end = base + st.st_size;
    size_t cap = 1024;
    reqs = xmalloc(cap * sizeof *reqs);
    while (p < end) {
        const char *h = find_crlf2(p, end);
        if (h == NULL) {
            fprintf(stderr, "loadgen: %s: request %" PRId64 " has no end of headers\n", path,
                    nreqs);
            exit(2);
        }
        long long cl = content_length(p, h + 2);
        if (cl < 0)
            cl = 0;
        const char *next = h + 4 + cl;
        if (next > end) {
            fprintf(stderr, "loadgen: %s: request %" PRId64 " is cut short\n", path, nreqs);
            exit(2);
        }
        if ((size_t)nreqs == cap) {
            cap *= 2;
            req_t *n = realloc(reqs, cap * sizeof *reqs);
            if (n == NULL)
                die("realloc", ENOMEM);
            reqs = n;
        }
        reqs[nreqs].p = p;
        reqs[nreqs].len = (size_t)(next - p);
        nreqs++;
        p = next;
    }
}

/* The value of header `name` in [h, hend) (the request line excluded), or NULL. */
static const char *header_value(const char *h, const char *hend, const char *name, size_t *len)
{
    size_t n = strlen(name);
    for (const char *p = h; p + n + 2 <= hend; p++) {
        if (p[0] == '\n' && strncasecmp(p + 1, name, n) == 0 && p[1 + n] == ':') {
            const char *v = p + n + 2;
            while (v < hend && (*v == ' ' || *v == '\t'))
                v++;
            const char *e = v;
            while (e < hend && *e != '\r' && *e != '\n')
                e++;
            *len = (size_t)(e - v);
            return v;
        }
    }
    return NULL;
}

static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Numbers each distinct value of --serial-header (open addressing over the values' bytes);
 * requests without the header get a key of their own each. */
static void assign_keys(void)
{
    size_t cap = 1024;
    while (cap < (size_t)nreqs * 2)
        cap *= 2;
    int64_t *slot = xmalloc(cap * sizeof *slot); /* index of a request holding the value */
    for (size_t i = 0; i < cap; i++)
        slot[i] = -1;
    req_key = xmalloc((size_t)nreqs * sizeof *req_key);
    for (int64_t i = 0; i < nreqs; i++) {
        const char *h = find_crlf2(reqs[i].p, reqs[i].p + reqs[i].len);
        size_t len = 0;
        const char *v = header_value(reqs[i].p, h + 2, opt.serial_header, &len);
        if (v == NULL) {
            req_key[i] = (int32_t)nkeys++;
            continue;
        }
        size_t at = (size_t)fnv1a(v, len) & (cap - 1);
        for (;;) {
            if (slot[at] < 0) {
                slot[at] = i;
                req_key[i] = (int32_t)nkeys++;
                break;
            }
            const char *o = reqs[slot[at]].p;
            size_t olen = 0;
            const char *ov = header_value(o, find_crlf2(o, o + reqs[slot[at]].len) + 2,
                                          opt.serial_header, &olen);
            if (olen == len && memcmp(ov, v, len) == 0) {
                req_key[i] = req_key[slot[at]];
                break;
            }
            at = (at + 1) & (cap - 1);
        }
    }
    free(slot);
    key_busy = calloc((size_t)nkeys, 1);
    if (key_busy == NULL)
        die("calloc", ENOMEM);
    key_head = xmalloc((size_t)nkeys * sizeof *key_head);
    next_same = xmalloc((size_t)nreqs * sizeof *next_same);
    ready = xmalloc((size_t)nkeys * sizeof *ready);
    for (int64_t k = 0; k < nkeys; k++)
        key_head[k] = -1;
    for (int64_t i = nreqs - 1; i >= 0; i--) {
        next_same[i] = key_head[req_key[i]];
        key_head[req_key[i]] = i;
    }
    for (int64_t k = 0; k < nkeys; k++)
        ready_push((int32_t)k);
}

/* The 3-digit status after "HTTP/1.x ". */
static int status_code(const char *p)
{
    int v = 0;
    for (int i = 0; i < 3; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* ---- connections ---------------------------------------------------------------------------- */

static void conn_open(conn_t *c);
static void pump(void);
static void finish(void);

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    conn_t *c = h->data;
    (void)suggested;
    if (c->bcap - c->blen < 16384) {
        c->bcap = c->bcap ? c->bcap * 2 : 65536;
        char *n = realloc(c->buf, c->bcap);
        if (n == NULL)
            die("realloc", ENOMEM);
        c->buf = n;
    }
    b->base = c->buf + c->blen;
    b->len = c->bcap - c->blen;
}

static void on_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    c->closing = 0;
    if (!finished) {
        reconnects++;
        conn_open(c);
    }
}

/* The request in flight on c failed (connection lost, unparseable answer). */
static void conn_fail(conn_t *c)
{
    if (c->busy) {
        c->busy = 0;
        if (key_busy != NULL)
            key_done(req_key[c->cur]);
        errors++;
        lat_ns[c->cur] = uv_hrtime() - due_ns[c->cur];
        answered++;
    }
    if (c->connected) {
        c->connected = 0;
        nconnected--;
    }
    c->blen = 0;
    if (!c->closing && !uv_is_closing((uv_handle_t *)&c->tcp)) {
        c->closing = 1;
        uv_close((uv_handle_t *)&c->tcp, on_closed);
    }
    if (answered == nreqs)
        finish();
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    conn_t *c = s->data;
    (void)b;
    if (n < 0) {
        conn_fail(c);
        return;
    }
    c->blen += (size_t)n;
    for (;;) {
        const char *h = find_crlf2(c->buf, c->buf + c->blen);
        if (h == NULL)
            return;
        long long cl = content_length(c->buf, h + 2);
        if (cl < 0)
            cl = 0; /* no body (204) */
        size_t total = (size_t)(h + 4 - c->buf) + (size_t)cl;
        if (c->blen < total)
            return;
        if (!c->busy) { /* an answer nobody asked for */
            conn_fail(c);
            return;
        }
        uint64_t now = uv_hrtime();
        int status = 0;
        if (c->blen > 12 && strncmp(c->buf, "HTTP/1.", 7) == 0)
            status = status_code(c->buf + 9);
        lat_ns[c->cur] = now - due_ns[c->cur];
        t_last = now;
        answered++;
        if (status > 0 && status < 600)
            by_status[status]++;
        if (status >= 200 && status < 300)
            ok2xx++;
        else
            other_status++;
        if (opt.expect != NULL && memmem(c->buf + (h + 4 - c->buf), (size_t)cl, opt.expect,
                                         strlen(opt.expect)) != NULL)
            expected_hits++;
        int close_after = 0;
        {
            static const char cn[] = "\nconnection: close";
            for (const char *p = c->buf; p + sizeof cn - 1 <= h + 2; p++) {
                if (strncasecmp(p, cn, sizeof cn - 1) == 0) {
                    close_after = 1;
                    break;
                }
            }
        }
        memmove(c->buf, c->buf + total, c->blen - total);
        c->blen -= total;
        c->busy = 0;
        if (key_busy != NULL)
            key_done(req_key[c->cur]);
        if (answered == nreqs) {
            finish();
            return;
        }
        if (close_after) {
            conn_fail(c);
            return;
        }
        pump();
        if (c->busy || c->blen == 0)
            return;
    }
}

static void on_written(uv_write_t *w, int status)
{
    conn_t *c = w->data;
    if (status != 0)
        conn_fail(c);
}

static void conn_send(conn_t *c, int64_t i)
{
    c->busy = 1;
    c->cur = i;
    uint64_t now = uv_hrtime();
    if (opt.rate <= 0) {
        due_ns[i] = now; /* closed loop: service time from the send */
    } else if (now > due_ns[i] && now - due_ns[i] > max_lag_ns) {
        max_lag_ns = now - due_ns[i];
    }
    uv_buf_t b = uv_buf_init((char *)reqs[i].p, (unsigned)reqs[i].len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == (int)reqs[i].len)
        return;
    if (n > 0) {
        b.base += n;
        b.len -= (size_t)n;
    } else if (n != UV_EAGAIN) {
        conn_fail(c);
        return;
    }
    c->wreq.data = c;
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_written);
    if (rc != 0)
        conn_fail(c);
}

/* --serial-header: the ready keys' next requests, earliest first, to the free connections. */
static void pump_keyed(void)
{
    for (int c = 0; c < opt.nconns && nready > 0; c++) {
        if (!conns[c].connected || conns[c].busy)
            continue;
        int32_t k = ready_pop();
        int64_t i = key_head[k];
        key_head[k] = next_same[i];
        key_busy[k] = 1;
        next_send++;
        conn_send(&conns[c], i);
    }
}

/* Hands every request that may go now to a free connection. */
static void pump(void)
{
    if (key_busy != NULL)
        return pump_keyed();
    int64_t limit = opt.rate > 0 ? next_due : nreqs;
    for (int k = 0; k < opt.nconns && next_send < limit; k++) {
        conn_t *c = &conns[k];
        if (c->connected && !c->busy)
            conn_send(c, next_send++);
    }
}

static void on_connect(uv_connect_t *r, int status);

static void conn_open(conn_t *c)
{
    struct sockaddr_in a;
    uv_ip4_addr(opt.host, opt.port, &a);
    uv_tcp_init(loop, &c->tcp);
    c->tcp.data = c;
    c->creq.data = c;
    uv_tcp_nodelay(&c->tcp, 1);
    int rc = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&a, on_connect);
    if (rc != 0)
        die("connect", rc);
}

static void arm_timer(void);
static void start_schedule(void);

static void on_connect(uv_connect_t *r, int status)
{
    conn_t *c = r->data;
    if (status != 0) {
        if (t0 == 0)
            die("connect", status);
        conn_fail(c);
        return;
    }
    c->connected = 1;
    nconnected++;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (t0 == 0) {
        if (nconnected == opt.nconns)
            start_schedule();
        return;
    }
    pump();
}

/* ---- the schedule --------------------------------------------------------------------------- */

static void arm_timer(void)
{
    if (next_due >= nreqs)
        return;
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    uint64_t at = due_ns[next_due];
    its.it_value.tv_sec = (time_t)(at / 1000000000u);
    its.it_value.tv_nsec = (long)(at % 1000000000u);
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
        its.it_value.tv_nsec = 1;
    if (timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &its, NULL) != 0)
        die("timerfd_settime", errno);
}

static void on_timer(uv_poll_t *p, int status, int events)
{
    (void)p;
    (void)status;
    (void)events;
    uint64_t expirations;
    ssize_t rn = read(timer_fd, &expirations, sizeof expirations);
    (void)rn;
    uint64_t now = uv_hrtime();
    if (next_due < nreqs && due_ns[next_due] <= now)
        wake_late_ns[nwakes++] = now - due_ns[next_due];
    while (next_due < nreqs && due_ns[next_due] <= now)
        next_due++;
    pump();
    arm_timer();
}

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    fprintf(stderr, "loadgen: timed out with %" PRId64 " of %" PRId64 " answers\n", answered,
            nreqs);
    for (int64_t i = 0; i < nreqs; i++) {
        if (lat_ns[i] == UINT64_MAX) {
            lat_ns[i] = uv_hrtime() - due_ns[i];
            errors++;
        }
    }
    answered = nreqs;
    finish();
}

static void start_schedule(void)
{
    t0 = uv_hrtime() + 2000000; /* 2 ms from now */
    if (opt.rate > 0) {
        double step = 1e9 / opt.rate;
        for (int64_t i = 0; i < nreqs; i++)
            due_ns[i] = t0 + (uint64_t)(step * (double)i);
        arm_timer();
    } else {
        pump();
    }
    uv_timer_start(&watchdog, on_watchdog, (uint64_t)(opt.timeout_s * 1000), 0);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const uint64_t *s, int64_t n, double p)
{
    if (n == 0)
        return 0;
    int64_t i = (int64_t)(p / 100.0 * (double)n);
    if (i >= n)
        i = n - 1;
    return (double)s[i] / 1000.0;
}

static void on_any_close(uv_handle_t *h)
{
    (void)h;
}

static void print_statuses(void)
{
    printf(",\"status\":{");
    int first = 1;
    for (int i = 0; i < 600; i++) {
        if (by_status[i] > 0) {
            printf("%s\"%d\":%" PRId64, first ? "" : ",", i, by_status[i]);
            first = 0;
        }
    }
    printf("}");
}

static void finish(void)
{
    if (finished)
        return;
    finished = 1;
    double secs = (double)(t_last > t0 ? t_last - t0 : 1) / 1e9;
    qsort(lat_ns, (size_t)nreqs, sizeof *lat_ns, cmp_u64);
    printf("{\"mode\":\"%s\",\"conns\":%d,\"target_rate\":%.1f,\"requests\":%" PRId64
           ",\"answered\":%" PRId64 ",\"ok2xx\":%" PRId64 ",\"other_status\":%" PRId64
           ",\"errors\":%" PRId64 ",\"expected\":%" PRId64 ",\"reconnects\":%" PRId64
           ",\"seconds\":%.3f,\"rate\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,"
           "\"p999_us\":%.1f,\"max_us\":%.1f,\"max_send_lag_us\":%.1f,\"t0_ns\":%" PRIu64
           ",\"t_last_ns\":%" PRIu64,
           opt.rate > 0 ? "open" : "closed", opt.nconns, opt.rate, nreqs, answered, ok2xx,
           other_status, errors, expected_hits, reconnects, secs, (double)answered / secs,
           pct(lat_ns, nreqs, 50), pct(lat_ns, nreqs, 90), pct(lat_ns, nreqs, 99),
           pct(lat_ns, nreqs, 99.9), (double)lat_ns[nreqs - 1] / 1000.0,
           (double)max_lag_ns / 1000.0, t0, t_last);
    print_statuses();
    if (nwakes > 0) {
        qsort(wake_late_ns, (size_t)nwakes, sizeof *wake_late_ns, cmp_u64);
        printf(",\"timer_wakes\":%" PRId64 ",\"timer_late_p99_us\":%.1f,"
               "\"timer_late_max_us\":%.1f",
               nwakes, pct(wake_late_ns, nwakes, 99),
               (double)wake_late_ns[nwakes - 1] / 1000.0);
    }
    printf("}\n");
    fflush(stdout);
    uv_timer_stop(&watchdog);
    uv_close((uv_handle_t *)&watchdog, on_any_close);
    if (timer_fd >= 0) {
        uv_poll_stop(&timer_poll);
        uv_close((uv_handle_t *)&timer_poll, on_any_close);
    }
    for (int k = 0; k < opt.nconns; k++) {
        if (!uv_is_closing((uv_handle_t *)&conns[k].tcp))
            uv_close((uv_handle_t *)&conns[k].tcp, on_any_close);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: loadgen --port N [--host H] --requests FILE [--conns N] [--rate R]"
                    " [--count N] [--expect TEXT] [--timeout-s S] [--serial-header NAME]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            usage();
        if (strcmp(a, "--port") == 0)
            opt.port = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(a, "--host") == 0)
            opt.host = argv[++i];
        else if (strcmp(a, "--requests") == 0)
            file = argv[++i];
        else if (strcmp(a, "--conns") == 0)
            opt.nconns = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(a, "--rate") == 0)
            opt.rate = strtod(argv[++i], NULL);
        else if (strcmp(a, "--count") == 0)
            opt.count = strtoll(argv[++i], NULL, 10);
        else if (strcmp(a, "--expect") == 0)
            opt.expect = argv[++i];
        else if (strcmp(a, "--timeout-s") == 0)
            opt.timeout_s = strtod(argv[++i], NULL);
        else if (strcmp(a, "--serial-header") == 0)
            opt.serial_header = argv[++i];
        else
            usage();
    }
    if (file == NULL || opt.port <= 0 || opt.nconns <= 0)
        usage();
    load_requests(file);
    if (opt.count >= 0 && opt.count < nreqs)
        nreqs = opt.count;
    if (nreqs == 0) {
        fprintf(stderr, "loadgen: no requests\n");
        return 2;
    }
    if (opt.serial_header != NULL) {
        if (opt.rate > 0) {
            fprintf(stderr, "loadgen: --serial-header is for closed loop only\n");
            return 2;
        }
        assign_keys();
    }
    due_ns = xmalloc((size_t)nreqs * sizeof *due_ns);
    wake_late_ns = xmalloc((size_t)nreqs * sizeof *wake_late_ns);
    lat_ns = xmalloc((size_t)nreqs * sizeof *lat_ns);
    for (int64_t i = 0; i < nreqs; i++)
        lat_ns[i] = UINT64_MAX;
    signal(SIGPIPE, SIG_IGN);
    loop = uv_default_loop();
    uv_timer_init(loop, &watchdog);
    if (opt.rate > 0) {
        timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (timer_fd < 0)
            die("timerfd_create", errno);
        uv_poll_init(loop, &timer_poll, timer_fd);
        uv_poll_start(&timer_poll, UV_READABLE, on_timer);
    }
    conns = calloc((size_t)opt.nconns, sizeof *conns);
    if (conns == NULL)
        die("calloc", ENOMEM);
    for (int k = 0; k < opt.nconns; k++) {
        conns[k].id = k;
        conn_open(&conns[k]);
    }
    uv_run(loop, UV_RUN_DEFAULT);
    if (timer_fd >= 0)
        close(timer_fd);
    return errors > 0 ? 1 : 0;
}
