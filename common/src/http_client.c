/*
 * Outbound HTTP (cmn/http_client.h): libcurl's multi interface on a libuv loop.
 *
 * Design
 * ------
 * One CURLM per client, so connections are reused across requests (curl's connection cache).  The
 * wiring follows curl's docs/examples/multi-uv.c: CURLMOPT_SOCKETFUNCTION maps each socket to a
 * struct sock holding a uv_poll_t (found again through curl_multi_assign), CURLMOPT_TIMERFUNCTION
 * arms one uv_timer_t, and every curl_multi_socket_action is followed by a drain of
 * curl_multi_info_read.  On CURLMSG_DONE the easy handle is removed from the multi, cleaned up,
 * and only then is the caller's callback run.
 *
 * A request is a struct xfer.  It lives on exactly one list at a time:
 *
 *   queue   --start_queued--> running --CURLMSG_DONE--> (delivered, freed)
 *     |                          |
 *     +----- cancel / start failure / poll failure -----> failed --idle--> (delivered, freed)
 *
 * `queue` is FIFO and is drained whenever a slot frees up, so at most max_in_flight easy handles
 * are in the multi at once.  Curl's own connection limits are set to the same number: they never
 * hold a transfer back, they only keep idle connections from piling up.
 *
 * Callbacks.  Completions are delivered from the info-read drain, which only runs inside uv
 * callbacks (poll, timer).  Everything that fails outside a curl transfer (curl_easy_init or
 * curl_multi_add_handle failing, cancellation by cmn_http_client_close) goes to `failed` and is
 * delivered by a uv_idle_t on a later turn, so no public call ever runs a callback.  An idle handle
 * rather than a zero timer: in libuv 1.44 a zero timer started from a timer callback runs again in
 * the same pass of the timer loop, so a caller that retries on every error would spin without
 * ever polling.  For the same reason curl's "timeout 0" (act now: a transfer was just added, or
 * one step of it is ready) goes to the idle handle too, which acts on the next turn after the
 * loop has polled without blocking.  It used to become a 1 ms timer, and since the loop's time
 * counts whole milliseconds every request then waited 0.5 to 1.5 ms before curl sent it: a 2 ms
 * provider answer took half as long again, and at 32 requests in flight and 50 ms the slots held
 * 0.4 requests that were not on the wire yet (bench/run, settlement).
 *
 * Sockets.  Curl announces a socket with CURL_POLL_IN/OUT/INOUT and retires it with
 * CURL_POLL_REMOVE before it closes the descriptor; the struct sock is uv_close()d then and freed
 * in its close callback.  The kernel hands the same descriptor number to the next socket at once,
 * so a new struct sock for the same fd may be created while the old one is still closing.  That is
 * safe: uv_close() detaches a poll handle from the loop's fd table immediately (uv__poll_stop), and
 * uv_poll_init only refuses (UV_EEXIST) a descriptor that another *active* handle watches.  Should
 * curl ever close a socket without CURL_POLL_REMOVE, a live struct sock with that number would be
 * stale; it is closed before the new one is set up.  If uv_poll_init still fails, the transfer can
 * never make progress: it is marked and failed with CMN_EIO from the idle handle, because an easy
 * handle cannot be removed from inside curl's socket callback.
 *
 * libuv reports POLLERR (a refused non-blocking connect, a reset) as status UV_EBADF and stops the
 * poll handle.  Curl is told with CURL_CSELECT_ERR plus the events it waited for, so it runs the
 * I/O and finds the real error; if the socket is still wanted afterwards, the handle is started
 * again, since curl only calls the socket callback when it changes its mind.
 *
 * Closing.  cmn_http_client_close removes every running easy handle, moves running and queued
 * requests to `failed` (CMN_EIO "cancelled"), runs curl_multi_cleanup (which may still call the
 * socket callback with CURL_POLL_REMOVE), closes every poll handle and the timer, and lets the idle
 * handle deliver the cancellations and then close itself.  The client counts its initialised
 * handles; the last close callback frees it and calls done, which is therefore always after every
 * request callback and on a later turn than the close call.
 */
#include "cmn/http_client.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cmn/buf.h"
#include "cmn/err.h"
#include "cmn/log.h"
#include "cmn/mem.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 2000L
#define DEFAULT_TIMEOUT_MS 10000L
#define DEFAULT_MAX_RESPONSE_BYTES ((size_t)1 << 20)
#define MAX_RESPONSE_HEADER_BYTES ((size_t)64 << 10)
#define MAX_METHOD_LEN 32

struct xfer {
    struct xfer *next, *prev; /* in c->queue, c->running or c->failed */
    CURL *easy;               /* only while on c->running */
    struct curl_slist *hdrs;
    char *method;
    char *url;
    char *username; /* digest authentication, or NULL */
    char *password;
    char *body; /* NULL when not sending one */
    size_t body_len;
    int send_body;
    long connect_timeout_ms;
    long timeout_ms;
    size_t max_response_bytes;

    cmn_buf_t resp_body;
    cmn_buf_t resp_hdrs;
    int hdrs_complete; /* the blank line of the current block was seen: what follows are trailers */
    int local_error;   /* set by our own callbacks: CMN_ETOOBIG, CMN_ENOMEM, or CMN_EIO (poll) */
    int abort;         /* a poll handle could not be set up: fail it from the idle handle */

    int error; /* the result handed to cb */
    long status;
    const char *text;
    uint64_t start_ns; /* 0 while queued */
    uint64_t end_ns;
    cmn_http_cb cb;
    void *data;
    char note[128];               /* our own error texts */
    char errbuf[CURL_ERROR_SIZE]; /* CURLOPT_ERRORBUFFER */
};

struct xfer_list {
    struct xfer *head, *tail;
};

struct sock {
    struct sock *next, *prev; /* in c->socks until the close callback */
    uv_poll_t poll;
    cmn_http_client_t *c;
    curl_socket_t fd;
    int events; /* UV_READABLE | UV_WRITABLE, as curl last asked */
    int closing;
};

struct cmn_http_client {
    uv_loop_t *loop;
    CURLM *multi; /* NULL once closing */
    size_t max_in_flight;
    uv_timer_t timer;
    uv_idle_t idle;
    struct xfer_list queue;
    struct xfer_list running;
    struct xfer_list failed;
    struct sock *socks;
    unsigned handles; /* initialised handles whose close callback has not run yet */
    int closing;
    int idle_closing;
    int abort_pending;
    int kick;         /* curl asked for a timeout of 0: act on the idle handle's next turn */
    void (*done)(void *data);
    void *done_data;
    cmn_http_client_stats_t stats;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void drain(cmn_http_client_t *c);
static void start_queued(cmn_http_client_t *c);
static void on_idle(uv_idle_t *h);
static void socket_action(cmn_http_client_t *c, curl_socket_t fd, int flags);

/* ---- small helpers ---- */

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void list_push(struct xfer_list *l, struct xfer *x)
{
    x->next = NULL;
    x->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = x;
    else
        l->head = x;
    l->tail = x;
}

static void list_remove(struct xfer_list *l, struct xfer *x)
{
    if (x->prev != NULL)
        x->prev->next = x->next;
    else
        l->head = x->next;
    if (x->next != NULL)
        x->next->prev = x->prev;
    else
        l->tail = x->prev;
    x->next = x->prev = NULL;
}

static void xfer_free(struct xfer *x)
{
    curl_easy_cleanup(x->easy); /* NULL except on a failed start */
    curl_slist_free_all(x->hdrs);
    cmn_free(x->method);
    cmn_free(x->url);
    cmn_free(x->username);
    if (x->password != NULL)
        OPENSSL_cleanse(x->password, strlen(x->password));
    cmn_free(x->password);
    cmn_free(x->body);
    cmn_buf_dispose(&x->resp_body);
    cmn_buf_dispose(&x->resp_hdrs);
    cmn_free(x);
}

/* Length of the header name in "Name: value", or 0 when the line is not of that shape. */
static size_t header_name_len(const char *line)
{
    const char *colon = strchr(line, ':');

    if (colon == NULL || colon == line)
        return 0;
    for (const char *p = line; p < colon; p++)
        if (*p == ' ' || *p == '\t')
            return 0;
    return (size_t)(colon - line);
}

static int header_is(const char *line, size_t name_len, const char *name)
{
    return strlen(name) == name_len && strncasecmp(line, name, name_len) == 0;
}

/* RFC 9110 token characters. */
static int is_tchar(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static int valid_method(const char *m)
{
    size_t n;

    for (n = 0; m[n] != '\0'; n++)
        if (n >= MAX_METHOD_LEN || !is_tchar(m[n]))
            return 0;
    return n > 0;
}

static int valid_url(const char *u)
{
    if (strncasecmp(u, "http://", 7) != 0 && strncasecmp(u, "https://", 8) != 0)
        return 0;
    for (; *u != '\0'; u++)
        if ((unsigned char)*u <= ' ' || *u == 0x7f)
            return 0;
    return 1;
}

/* Records a failure that did not come from a finished curl transfer; delivered on a later turn. */
static void fail_later(cmn_http_client_t *c, struct xfer *x, int rc, const char *why)
{
    x->error = rc;
    snprintf(x->note, sizeof x->note, "%s", why);
    x->text = x->note;
    if (x->start_ns != 0)
        x->end_ns = uv_hrtime();
    list_push(&c->failed, x);
    uv_idle_start(&c->idle, on_idle);
}

/* ---- delivery ---- */

static void deliver(cmn_http_client_t *c, struct xfer *x)
{
    cmn_http_response_t r;

    memset(&r, 0, sizeof r);
    r.error = x->error;
    r.error_text = x->error != 0 ? x->text : "";
    r.status = x->error != 0 ? 0 : x->status;
    /* On an error what arrived is partial or unrelated to the request: report none of it. */
    r.body = x->error == 0 && x->resp_body.base != NULL ? x->resp_body.base : "";
    r.body_len = x->error == 0 ? x->resp_body.len : 0;
    r.headers = x->error == 0 && x->resp_hdrs.base != NULL ? x->resp_hdrs.base : "";
    r.headers_len = x->error == 0 ? x->resp_hdrs.len : 0;
    r.elapsed_ms = x->start_ns != 0 ? (x->end_ns - x->start_ns) / 1000000u : 0;
    if (x->error != 0)
        c->stats.failed++;
    else
        c->stats.completed++;
    x->cb(x->data, &r);
    xfer_free(x);
}

/* Maps a finished transfer's CURLcode to the caller's result. */
static void complete(struct xfer *x, CURLcode res, long status)
{
    x->end_ns = uv_hrtime();
    x->status = status;
    x->error = 0;
    x->text = "";
    if (res == CURLE_OK)
        return;
    if (x->local_error == CMN_ETOOBIG || res == CURLE_FILESIZE_EXCEEDED) {
        x->error = CMN_ETOOBIG;
        if (x->note[0] == '\0')
            snprintf(x->note, sizeof x->note, "response body larger than %zu bytes",
                     x->max_response_bytes);
        x->text = x->note;
        return;
    }
    x->error = res == CURLE_OPERATION_TIMEDOUT ? CMN_ETIMEOUT : CMN_EIO;
    if (x->local_error != 0 && x->note[0] != '\0')
        x->text = x->note;
    else if (x->errbuf[0] != '\0')
        x->text = x->errbuf;
    else
        x->text = curl_easy_strerror(res);
}

static void maybe_free_client(cmn_http_client_t *c)
{
    void (*done)(void *data) = c->done;
    void *done_data = c->done_data;

    if (!c->closing || c->handles > 0)
        return;
    cmn_free(c);
    if (done != NULL)
        done(done_data);
}

static void on_handle_closed(uv_handle_t *h)
{
    cmn_http_client_t *c = h->data;

    c->handles--;
    maybe_free_client(c);
}

/* Removes the transfers whose poll handle could not be set up (see sock_open). */
static void abort_marked(cmn_http_client_t *c)
{
    struct xfer *x = c->running.head;

    while (x != NULL) {
        struct xfer *next = x->next;

        if (x->abort) {
            list_remove(&c->running, x);
            c->stats.in_flight--;
            curl_multi_remove_handle(c->multi, x->easy);
            curl_easy_cleanup(x->easy);
            x->easy = NULL;
            x->error = CMN_EIO;
            x->text = x->note;
            x->end_ns = uv_hrtime();
            list_push(&c->failed, x);
        }
        x = next;
    }
}

static void on_idle(uv_idle_t *h)
{
    cmn_http_client_t *c = h->data;
    struct xfer_list batch;
    struct xfer *x;

    if (c->abort_pending && c->multi != NULL)
        abort_marked(c);
    c->abort_pending = 0;
    if (c->kick) {
        /* A kick asked for from here on waits for the next turn: one pass, one action. */
        c->kick = 0;
        socket_action(c, CURL_SOCKET_TIMEOUT, 0);
    }
    /* Take the whole list: what the callbacks add to it waits for the next turn. */
    batch = c->failed;
    c->failed.head = c->failed.tail = NULL;
    while ((x = batch.head) != NULL) {
        list_remove(&batch, x);
        deliver(c, x);
    }
    start_queued(c);
    if (c->failed.head != NULL || c->abort_pending || c->kick)
        return;
    if (!c->closing) {
        uv_idle_stop(h);
    } else if (!c->idle_closing) {
        c->idle_closing = 1;
        uv_close((uv_handle_t *)h, on_handle_closed);
    }
}

/* ---- curl callbacks ---- */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct xfer *x = userdata;
    size_t n = size * nmemb;
    int rc = cmn_buf_append(&x->resp_body, ptr, n);

    if (rc != 0) {
        /* A short count makes curl stop the transfer with CURLE_WRITE_ERROR. */
        x->local_error = rc;
        if (rc == CMN_ENOMEM)
            snprintf(x->note, sizeof x->note, "out of memory for the response body");
        return 0;
    }
    return n;
}

/*
 * Curl passes every header line of every response it reads: 1xx interim responses, a proxy's
 * CONNECT answer, the final response and, after the body, chunked trailers.  A status line starts
 * a new block, so only the last response's block is kept; lines after its blank line are trailers
 * and are not part of it.
 */
static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct xfer *x = userdata;
    size_t n = size * nmemb;
    int rc;

    if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
        cmn_buf_reset(&x->resp_hdrs);
        x->hdrs_complete = 0;
    } else if (x->hdrs_complete) {
        return n;
    }
    rc = cmn_buf_append(&x->resp_hdrs, ptr, n);
    if (rc != 0) {
        x->local_error = rc;
        if (rc == CMN_ETOOBIG)
            snprintf(x->note, sizeof x->note, "response headers larger than %zu bytes",
                     x->resp_hdrs.max);
        else
            snprintf(x->note, sizeof x->note, "out of memory for the response headers");
        return 0;
    }
    if ((n == 2 && ptr[0] == '\r' && ptr[1] == '\n') || (n == 1 && ptr[0] == '\n'))
        x->hdrs_complete = 1;
    return n;
}

static void on_sock_closed(uv_handle_t *h)
{
    struct sock *k = h->data;
    cmn_http_client_t *c = k->c;

    if (k->prev != NULL)
        k->prev->next = k->next;
    else
        c->socks = k->next;
    if (k->next != NULL)
        k->next->prev = k->prev;
    cmn_free(k);
    c->handles--;
    maybe_free_client(c);
}

static void sock_close(struct sock *k)
{
    if (k->closing)
        return;
    k->closing = 1;
    uv_close((uv_handle_t *)&k->poll, on_sock_closed);
}

static void socket_action(cmn_http_client_t *c, curl_socket_t fd, int flags)
{
    int running = 0;
    CURLMcode mc;

    if (c->multi == NULL)
        return;
    mc = curl_multi_socket_action(c->multi, fd, flags, &running);
    if (mc != CURLM_OK)
        cmn_log(CMN_LOG_WARN, "http_client_curl", "curl_multi_socket_action: %s",
                curl_multi_strerror(mc));
    drain(c);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct sock *k = h->data;
    int flags = 0;

    if (status < 0) {
        /* POLLERR: libuv has stopped the handle.  Let curl try the I/O and meet the error. */
        flags = CURL_CSELECT_ERR;
        if (k->events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (k->events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    } else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    /* k stays allocated until its close callback, which runs after this one returns. */
    socket_action(k->c, k->fd, flags);
    if (status < 0 && !k->closing && !uv_is_active((uv_handle_t *)h))
        uv_poll_start(h, k->events, on_poll);
}

/* Marks the transfer that owns `easy` for failure from the idle handle. */
static void abort_easy(cmn_http_client_t *c, CURL *easy, int uvrc)
{
    char *priv = NULL;
    struct xfer *x;

    if (easy == NULL || curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv) != CURLE_OK ||
        priv == NULL)
        return;
    x = (struct xfer *)(void *)priv;
    if (x->abort)
        return;
    x->abort = 1;
    x->local_error = CMN_EIO;
    snprintf(x->note, sizeof x->note, "cannot poll the socket: %s", uv_strerror(uvrc));
    c->abort_pending = 1;
    uv_idle_start(&c->idle, on_idle);
}

static struct sock *sock_open(cmn_http_client_t *c, curl_socket_t fd, CURL *easy)
{
    struct sock *k;
    int rc;

    /* A live handle on this number belongs to a socket curl closed without telling us. */
    for (k = c->socks; k != NULL; k = k->next)
        if (k->fd == fd && !k->closing)
            sock_close(k);
    k = cmn_xcalloc(1, sizeof *k);
    rc = uv_poll_init_socket(c->loop, &k->poll, fd);
    if (rc != 0) {
        cmn_log(CMN_LOG_ERROR, "http_client_poll", "uv_poll_init_socket(%d): %s", (int)fd,
                uv_strerror(rc));
        cmn_free(k);
        abort_easy(c, easy, rc);
        return NULL;
    }
    k->poll.data = k;
    k->c = c;
    k->fd = fd;
    k->next = c->socks;
    if (c->socks != NULL)
        c->socks->prev = k;
    c->socks = k;
    c->handles++;
    curl_multi_assign(c->multi, fd, k);
    return k;
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    cmn_http_client_t *c = userp;
    struct sock *k = socketp;
    int events = 0;

    if (what == CURL_POLL_REMOVE) {
        /* Curl forgets socketp right after this; it closes fd only after we return. */
        if (k != NULL)
            sock_close(k);
        return 0;
    }
    /* Never -1: that marks the whole multi handle dead and strands every transfer. */
    if (c->closing)
        return 0;
    if (k == NULL || k->closing) {
        k = sock_open(c, fd, easy);
        if (k == NULL)
            return 0;
    }
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    k->events = events;
    uv_poll_start(&k->poll, events, on_poll);
    return 0;
}

static void on_timer(uv_timer_t *t)
{
    socket_action(t->data, CURL_SOCKET_TIMEOUT, 0);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    cmn_http_client_t *c = userp;

    (void)multi;
    if (c->closing)
        return 0;
    if (timeout_ms < 0) {
        uv_timer_stop(&c->timer);
        return 0;
    }
    /*
     * 0 means "act now", but curl_multi_socket_action must not be called from inside this
     * callback, and a zero uv timer started from on_timer would run again in the same timer pass:
     * the idle handle acts on the next turn (see the top of this file).
     */
    if (timeout_ms == 0) {
        uv_timer_stop(&c->timer);
        c->kick = 1;
        uv_idle_start(&c->idle, on_idle);
        return 0;
    }
    uv_timer_start(&c->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- transfers ---- */

static void drain(cmn_http_client_t *c)
{
    CURLMsg *m;
    int left;

    /* c->multi turns NULL when a callback closes the client. */
    while (c->multi != NULL && (m = curl_multi_info_read(c->multi, &left)) != NULL) {
        CURL *easy = m->easy_handle;
        CURLcode res = m->data.result;
        char *priv = NULL;
        struct xfer *x;
        long status = 0;

        if (m->msg != CURLMSG_DONE)
            continue;
        /* m is invalid once the handle is removed: take what we need first. */
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        if (res == CURLE_OK)
            curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        curl_multi_remove_handle(c->multi, easy);
        curl_easy_cleanup(easy);
        x = (struct xfer *)(void *)priv;
        x->easy = NULL;
        list_remove(&c->running, x);
        c->stats.in_flight--;
        complete(x, res, status);
        deliver(c, x);
        start_queued(c);
    }
}

static CURLcode setup_easy(struct xfer *x)
{
    CURL *e = x->easy;
    int is_post = strcmp(x->method, "POST") == 0;
    int is_get = strcmp(x->method, "GET") == 0;
    int is_head = strcmp(x->method, "HEAD") == 0;
    CURLcode cc = CURLE_OK;

    if ((cc = curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)x)) != CURLE_OK ||
        (cc = curl_easy_setopt(e, CURLOPT_URL, x->url)) != CURLE_OK ||
        (cc = curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L)) != CURLE_OK ||
        (cc = curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https")) != CURLE_OK ||
        (cc = curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, x->connect_timeout_ms)) != CURLE_OK ||
        (cc = curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, x->timeout_ms)) != CURLE_OK ||
        (cc = curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->max_response_bytes)) !=
            CURLE_OK ||
        (cc = curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body)) != CURLE_OK ||
        (cc = curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)x)) != CURLE_OK ||
        (cc = curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header)) != CURLE_OK ||
        (cc = curl_easy_setopt(e, CURLOPT_HEADERDATA, (void *)x)) != CURLE_OK ||
        (cc = curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf)) != CURLE_OK ||
        (cc = curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs)) != CURLE_OK ||
        (x->username != NULL &&
         ((cc = curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_DIGEST)) != CURLE_OK ||
          (cc = curl_easy_setopt(e, CURLOPT_USERNAME, x->username)) != CURLE_OK ||
          (cc = curl_easy_setopt(e, CURLOPT_PASSWORD, x->password)) != CURLE_OK)))
        goto out;
    if (is_head) {
        /* Through CUSTOMREQUEST, curl would wait for a body that a HEAD response never has. */
        cc = curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
        goto out;
    }
    if (x->send_body) {
        if ((cc = curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_len)) !=
                CURLE_OK ||
            (cc = curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body)) != CURLE_OK)
            goto out;
    }
    if (!is_post && !(is_get && !x->send_body))
        cc = curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, x->method);
out:
    return cc;
}

static void start_xfer(cmn_http_client_t *c, struct xfer *x)
{
    const char *why = "curl_easy_init failed";
    CURLcode cc;
    CURLMcode mc;

    x->start_ns = uv_hrtime();
    x->easy = curl_easy_init();
    if (x->easy == NULL)
        goto out;
    cc = setup_easy(x);
    if (cc != CURLE_OK) {
        why = curl_easy_strerror(cc);
        goto out;
    }
    mc = curl_multi_add_handle(c->multi, x->easy);
    if (mc != CURLM_OK) {
        why = curl_multi_strerror(mc);
        goto out;
    }
    list_push(&c->running, x);
    c->stats.in_flight++;
    why = NULL;
out:
    if (why != NULL) {
        curl_easy_cleanup(x->easy);
        x->easy = NULL;
        fail_later(c, x, CMN_EIO, why);
    }
}

static void start_queued(cmn_http_client_t *c)
{
    while (!c->closing && c->stats.in_flight < c->max_in_flight && c->queue.head != NULL) {
        struct xfer *x = c->queue.head;

        list_remove(&c->queue, x);
        c->stats.queued--;
        start_xfer(c, x);
    }
}

/* ---- public API ---- */

int cmn_http_client_new(uv_loop_t *loop, size_t max_in_flight, cmn_http_client_t **out)
{
    int rc = CMN_EINVAL;
    cmn_http_client_t *c = NULL;
    long conns;

    if (out != NULL)
        *out = NULL;
    if (loop == NULL || out == NULL || max_in_flight == 0)
        goto out;
    rc = CMN_EIO;
    if (pthread_once(&global_once, global_init) != 0 || global_rc != CURLE_OK)
        goto out;
    c = cmn_xcalloc(1, sizeof *c);
    c->loop = loop;
    c->max_in_flight = max_in_flight;
    c->multi = curl_multi_init();
    if (c->multi == NULL)
        goto out;
    /* Our queue already caps transfers; these caps only bound idle connections kept for reuse. */
    conns = max_in_flight > (size_t)LONG_MAX ? LONG_MAX : (long)max_in_flight;
    if (curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, (void *)c) != CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, (void *)c) != CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, conns) != CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, conns) != CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, conns) != CURLM_OK)
        goto out;
    /* Neither can fail on Unix (libuv only initialises fields), so nothing needs closing below. */
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    uv_idle_init(loop, &c->idle);
    c->idle.data = c;
    c->handles = 2;
    *out = c;
    c = NULL;
    rc = 0;
out:
    if (c != NULL) {
        if (c->multi != NULL)
            curl_multi_cleanup(c->multi);
        cmn_free(c);
    }
    return rc;
}

int cmn_http_request(cmn_http_client_t *c, const cmn_http_request_t *req, cmn_http_cb cb,
                     void *data)
{
    int rc = CMN_EINVAL;
    struct xfer *x = NULL;
    int has_type = 0, has_expect = 0;

    if (c == NULL || c->closing || req == NULL || cb == NULL || req->method == NULL ||
        req->url == NULL || !valid_method(req->method) || !valid_url(req->url) ||
        (req->body == NULL && req->body_len > 0) || (req->headers == NULL && req->nheaders > 0) ||
        req->connect_timeout_ms < 0 || req->timeout_ms < 0)
        goto out;
    x = cmn_xcalloc(1, sizeof *x);
    x->cb = cb;
    x->data = data;
    for (size_t i = 0; i < req->nheaders; i++) {
        const char *h = req->headers[i];
        size_t nlen;
        struct curl_slist *l;

        rc = CMN_EINVAL;
        /* A CR or LF would let a value smuggle extra header lines into the request. */
        if (h == NULL || (nlen = header_name_len(h)) == 0 || strpbrk(h, "\r\n") != NULL)
            goto out;
        has_type |= header_is(h, nlen, "Content-Type");
        has_expect |= header_is(h, nlen, "Expect");
        rc = CMN_ENOMEM;
        l = curl_slist_append(x->hdrs, h);
        if (l == NULL)
            goto out;
        x->hdrs = l;
    }
    rc = CMN_ENOMEM;
    /*
     * "Name:" with nothing after it removes a header curl would add: the form-urlencoded
     * Content-Type of POSTFIELDS (we send the caller's or none), and Expect: 100-continue, which
     * costs a round trip (or a one second wait) per large body.
     */
    if (!has_type && (x->hdrs = curl_slist_append(x->hdrs, "Content-Type:")) == NULL)
        goto out;
    if (!has_expect && (x->hdrs = curl_slist_append(x->hdrs, "Expect:")) == NULL)
        goto out;
    x->method = cmn_xstrdup(req->method);
    x->url = cmn_xstrdup(req->url);
    if (req->username != NULL) {
        x->username = cmn_xstrdup(req->username);
        x->password = cmn_xstrdup(req->password ? req->password : "");
    }
    /* POST, PUT and PATCH always carry a Content-Length, an empty body included. */
    x->send_body = req->body_len > 0 || strcmp(x->method, "POST") == 0 ||
                   strcmp(x->method, "PUT") == 0 || strcmp(x->method, "PATCH") == 0;
    if (x->send_body) {
        /* The body's size is the caller's (maybe a peer's): no aborting allocation for it. */
        x->body = cmn_try_alloc(req->body_len);
        if (x->body == NULL)
            goto out;
        if (req->body_len > 0)
            memcpy(x->body, req->body, req->body_len);
        x->body_len = req->body_len;
    }
    x->connect_timeout_ms =
        req->connect_timeout_ms > 0 ? req->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    x->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS;
    x->max_response_bytes =
        req->max_response_bytes > 0 ? req->max_response_bytes : DEFAULT_MAX_RESPONSE_BYTES;
    cmn_buf_init(&x->resp_body, x->max_response_bytes);
    cmn_buf_init(&x->resp_hdrs, MAX_RESPONSE_HEADER_BYTES);
    /* Always through the queue, so requests made from a callback cannot overtake queued ones. */
    list_push(&c->queue, x);
    c->stats.queued++;
    x = NULL;
    start_queued(c);
    rc = 0;
out:
    if (x != NULL)
        xfer_free(x);
    return rc;
}

const char *cmn_http_response_header(const cmn_http_response_t *resp, const char *name, size_t *len)
{
    const char *p, *end, *found = NULL;
    size_t nlen, found_len = 0;
    int first = 1;

    if (len != NULL)
        *len = 0;
    if (resp == NULL || resp->headers == NULL || name == NULL || (nlen = strlen(name)) == 0)
        return NULL;
    p = resp->headers;
    end = p + resp->headers_len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *next = eol != NULL ? eol + 1 : end;
        const char *le = eol != NULL ? eol : end;

        if (le > p && le[-1] == '\r')
            le--;
        /* The first line is the status line, never a header. */
        if (!first && (size_t)(le - p) > nlen && p[nlen] == ':' &&
            strncasecmp(p, name, nlen) == 0) {
            const char *v = p + nlen + 1, *ve = le;

            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            found = v;
            found_len = (size_t)(ve - v);
        }
        first = 0;
        p = next;
    }
    if (found != NULL && len != NULL)
        *len = found_len;
    return found;
}

const cmn_http_client_stats_t *cmn_http_client_stats(const cmn_http_client_t *c)
{
    return &c->stats;
}

void cmn_http_client_close(cmn_http_client_t *c, void (*done)(void *data), void *data)
{
    struct xfer *x;

    if (c == NULL || c->closing)
        return;
    c->closing = 1;
    c->done = done;
    c->done_data = data;
    while ((x = c->running.head) != NULL) {
        list_remove(&c->running, x);
        c->stats.in_flight--;
        curl_multi_remove_handle(c->multi, x->easy);
        curl_easy_cleanup(x->easy);
        x->easy = NULL;
        fail_later(c, x, CMN_EIO, "cancelled");
    }
    while ((x = c->queue.head) != NULL) {
        list_remove(&c->queue, x);
        c->stats.queued--;
        fail_later(c, x, CMN_EIO, "cancelled");
    }
    /* May still call on_curl_socket with CURL_POLL_REMOVE for cached connections. */
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    for (struct sock *k = c->socks; k != NULL; k = k->next)
        sock_close(k);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    /* The idle handle delivers the cancellations on the next turn and then closes itself. */
    uv_idle_start(&c->idle, on_idle);
}
