/*
 * The asynchronous Redis client (cmn/redis.h): hiredis 0.14's async API on a libuv loop.
 *
 * Design
 * ------
 * One client keeps at most one hiredis connection.  Its life is a small state machine:
 *
 *   WAIT --conn_timer--> RESOLVING --uv_getaddrinfo--> CONNECTING --onConnect--> HANDSHAKE
 *   HANDSHAKE --last AUTH / SCRIPT LOAD / FUNCTION LOAD / PING reply--> READY
 *   any failure or loss --> WAIT (conn_timer armed with the backoff delay)
 *
 * conn_timer is the connect deadline while RESOLVING and CONNECTING, and the backoff delay while
 * WAITing.  Names are resolved with uv_getaddrinfo on every attempt (hiredis would block in
 * getaddrinfo); hiredis is only ever given numeric addresses, IPv4 first as hiredis itself
 * prefers, and the next address is tried when one refuses.
 *
 * Commands.  Every command sent on the connection, internal ones (AUTH, SCRIPT LOAD,
 * FUNCTION LOAD, PING) included, is a struct cmd in the `inflight` FIFO.  Redis answers in order and the timeout is the
 * same for all, so deadlines grow along the FIFO and one timer (cmd_timer), armed lazily for the
 * head, covers them all.  When the head's deadline passes the connection is dropped: hiredis then
 * calls every pending callback with a NULL reply, the head (marked CMN_ETIMEOUT beforehand) and
 * all others (CMN_EIO) land in the `failed` list.
 *
 * EVALSHA.  A call keeps a copy of its whole command: on NOSCRIPT it is sent again right behind a
 * SCRIPT LOAD, once.  cmn_redis_command recognises "EVALSHA <sha>" of a registered script too,
 * because callers (the gateway) spell EVALSHA out with their own argument builders.
 *
 * Functions.  A function of a library (cmn_redis_function_add) is a script to the callers, with
 * an id in place of the SHA-1; its calls go out as FCALL <function>, and "Function not found" (the
 * server restarted without persistence, FUNCTION FLUSH) sends FUNCTION LOAD of its library and the
 * call again, once, as NOSCRIPT does.  A library is loaded once per connection however many of its
 * functions are registered; "already exists" is success (the name carries the hash of the text,
 * so an existing library of that name is this one).
 *
 * Exactly once.  A cmd handed to hiredis belongs to hiredis until its callback runs, which hiredis
 * guarantees exactly once: with the reply, or with NULL when the context is freed.  A reply is
 * delivered at once (it is borrowed from hiredis); every failure is queued in `failed` and
 * delivered from an idle handle on a later loop turn.  That keeps user callbacks out of public
 * calls (cmn_redis_command while not ready, cmn_redis_close) and out of hiredis's free path.  An
 * idle handle rather than a zero timer: a zero timer started from a timer callback runs again in
 * the same pass of libuv 1.44's timer loop, so a caller that retries on every CMN_EIO would spin
 * without ever polling.
 *
 * hiredis re-entrancy.  redisAsyncFree is safe inside a reply callback (hiredis defers it with
 * REDIS_IN_CALLBACK) but not inside onConnect (redisAsyncHandleWrite goes on using the context)
 * nor inside onDisconnect (the context is already being freed).  So: nothing of the user runs
 * inside onConnect, a failure there is deferred to the idle handle (drop_pending), and
 * `r->ac` is cleared before any user callback can run on a connection that is going away, so a
 * cmn_redis_close from such a callback never touches it.
 *
 * Event adapter.  Debian's hiredis 0.14.1 libuv adapter returns early when uv_poll reports an
 * error status.  libuv reports POLLERR that way (UV_EBADF, and it stops the handle), which is what
 * a refused non-blocking connect or a reset connection produces, so hiredis never learned about
 * either and the client sat "connecting" until some timer fired.  The small adapter below (the
 * same shape, plus the fix hiredis 1.0 made: on an error, let hiredis run the events it waited for
 * and find the socket error itself) also allocates through cmn/mem.h and counts its poll handle
 * in the client's references, so cmn_redis_close's `done` runs after that handle is closed too.
 *
 * Closing.  The client is freed when its reference count drops to zero: its three handles, one
 * reference per live connection (released in the poll handle's close callback, which runs after
 * hiredis has called every pending callback) and one per uv_getaddrinfo request still out (those
 * cannot be cancelled once a worker thread has them).
 */
#include "cmn/redis.h"

#include <arpa/inet.h>
#include <hiredis/async.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "cmn/err.h"
#include "cmn/log.h"
#include "cmn/mem.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define MAX_ADDRS 8
#define SHA1_HEX_LEN 40

enum conn_state { ST_WAIT, ST_RESOLVING, ST_CONNECTING, ST_HANDSHAKE, ST_READY };

enum cmd_kind {
    CMD_USER,      /* cmn_redis_command */
    CMD_EVALSHA,   /* cmn_redis_evalsha: keeps its arguments for the retry after NOSCRIPT */
    CMD_HANDSHAKE, /* AUTH, SCRIPT or FUNCTION LOAD, or PING of a new connection; readiness
                      waits for it */
    CMD_LOAD       /* SCRIPT or FUNCTION LOAD outside the handshake (NOSCRIPT, "Function not
                      found", or a script added later) */
};

struct cmd {
    struct cmd *next, *prev; /* in r->inflight, or r->failed */
    cmn_redis_t *r;
    enum cmd_kind kind;
    int status;        /* reported if hiredis answers NULL: CMN_EIO, or CMN_ETIMEOUT for the head */
    uint64_t deadline; /* loop time (ms) */
    cmn_redis_cb cb;
    void *data;
    int script; /* EVALSHA and SCRIPT LOAD: the script; -1 otherwise */
    int lib;    /* FUNCTION LOAD: the library; -1 otherwise */
    int retried;
    int argc; /* EVALSHA: the whole command, owned */
    const char **argv;
    size_t *argvlen;
    char *argbuf;
};

struct cmd_list {
    struct cmd *head, *tail;
};

struct script {
    char *name;
    char *source; /* EVAL scripts; NULL for a function */
    size_t len;
    char sha[SHA1_HEX_LEN + 1]; /* a function's: the SHA-1 of its name, the id callers send */
    int lib;                    /* a function's library, else -1 */
    char *function;             /* a function's name */
};

struct library {
    char *name; /* from the `#!lua name=` line */
    char *source;
    size_t len;
};

/* hiredis event hooks for one connection (ac->ev.data). */
struct conn {
    uv_poll_t poll;
    redisAsyncContext *ac; /* NULL once hiredis has called cleanup */
    cmn_redis_t *r;
    int events;
};

/* One uv_getaddrinfo request; abandoned (stale) on a connect timeout or close. */
struct resolve {
    uv_getaddrinfo_t req;
    cmn_redis_t *r;
    int stale;
};

struct cmn_redis {
    uv_loop_t *loop;
    char *host;
    int port;
    char *unix_path;
    unsigned char *password;
    size_t password_len;
    uint64_t connect_timeout_ms;
    uint64_t command_timeout_ms;

    enum conn_state state;
    int ready;
    int closing;
    int handles_closed;
    int drop_pending;  /* drop the connection from the idle handle (asked from inside onConnect) */
    int attempted;     /* a connection attempt has been made: later ones count as reconnects */
    int outage_logged; /* the current outage was logged at warn level already */
    redisAsyncContext *ac;
    struct resolve *resolve;
    char addrs[MAX_ADDRS][INET6_ADDRSTRLEN];
    int naddrs;
    int addr_index;
    int handshake_left;
    uint64_t backoff_ms;
    uint64_t rng;

    struct cmd_list inflight;
    struct cmd_list failed;
    uv_timer_t cmd_timer;
    uv_timer_t conn_timer;
    uv_idle_t idle;
    unsigned refs;

    struct script *scripts;
    int nscripts;
    struct library *libs;
    int nlibs;

    cmn_redis_state_cb state_cb;
    void *state_data;
    void (*done)(void *data);
    void *done_data;
    cmn_redis_stats_t stats;
};

static void drop_connection(cmn_redis_t *r);
static void connect_next(cmn_redis_t *r);

/* ---- lists ---- */

static void list_push(struct cmd_list *l, struct cmd *c)
{
    c->next = NULL;
    c->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
}

static void list_remove(struct cmd_list *l, struct cmd *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else
        l->tail = c->prev;
    c->next = c->prev = NULL;
}

static struct cmd *list_pop(struct cmd_list *l)
{
    struct cmd *c = l->head;
    if (c != NULL)
        list_remove(l, c);
    return c;
}

/* ---- small helpers ---- */

static uint64_t rng_next(cmn_redis_t *r)
{
    /* xorshift64*: the jitter only has to keep many clients from retrying in step. */
    r->rng ^= r->rng >> 12;
    r->rng ^= r->rng << 25;
    r->rng ^= r->rng >> 27;
    return r->rng * 2685821657736338717ULL;
}

static const char *peer_name(const cmn_redis_t *r)
{
    return r->unix_path != NULL ? r->unix_path : r->host;
}

static int reply_is_noscript(const redisReply *reply)
{
    return reply->type == REDIS_REPLY_ERROR && reply->len >= 8 &&
           memcmp(reply->str, "NOSCRIPT", 8) == 0;
}

/* FCALL of a function the server does not have (Redis 7: "ERR Function not found"). */
static int reply_is_nofunction(const redisReply *reply)
{
    static const char msg[] = "ERR Function not found";

    return reply->type == REDIS_REPLY_ERROR && reply->len >= sizeof msg - 1 &&
           memcmp(reply->str, msg, sizeof msg - 1) == 0;
}

/* The answer to FUNCTION LOAD of `lib`: its name, or "ERR Library '<name>' already exists". */
static int library_loaded(const struct library *lib, const redisReply *reply)
{
    size_t n = strlen(lib->name);

    if (reply->type == REDIS_REPLY_STRING)
        return reply->len == n && memcmp(reply->str, lib->name, n) == 0;
    return reply->type == REDIS_REPLY_ERROR && strstr(reply->str, "already exists") != NULL &&
           strstr(reply->str, lib->name) != NULL;
}

static struct cmd *cmd_new(cmn_redis_t *r, enum cmd_kind kind, cmn_redis_cb cb, void *data)
{
    struct cmd *c = cmn_xcalloc(1, sizeof *c);
    c->r = r;
    c->kind = kind;
    c->status = CMN_EIO;
    c->cb = cb;
    c->data = data;
    c->script = -1;
    c->lib = -1;
    return c;
}

static void cmd_free(struct cmd *c)
{
    cmn_free(c->argv);
    cmn_free(c->argvlen);
    cmn_free(c->argbuf);
    cmn_free(c);
}

static void notify_state(cmn_redis_t *r)
{
    if (r->state_cb != NULL && !r->closing)
        r->state_cb(r->state_data, r->ready);
}

/* ---- freeing ---- */

static void client_free(cmn_redis_t *r)
{
    void (*done)(void *) = r->done;
    void *done_data = r->done_data;

    for (int i = 0; i < r->nscripts; i++) {
        cmn_free(r->scripts[i].name);
        cmn_free(r->scripts[i].source);
        cmn_free(r->scripts[i].function);
    }
    cmn_free(r->scripts);
    for (int i = 0; i < r->nlibs; i++) {
        cmn_free(r->libs[i].name);
        cmn_free(r->libs[i].source);
    }
    cmn_free(r->libs);
    if (r->password != NULL)
        OPENSSL_cleanse(r->password, r->password_len);
    cmn_free(r->password);
    cmn_free(r->host);
    cmn_free(r->unix_path);
    cmn_free(r);
    if (done != NULL)
        done(done_data);
}

static void unref(cmn_redis_t *r)
{
    if (--r->refs == 0)
        client_free(r);
}

static void on_handle_close(uv_handle_t *h)
{
    unref(h->data);
}

/* ---- completion ---- */

/* Runs the user's callback once and frees the command.  The callback may call anything, close
 * included, so nothing of the command is touched afterwards. */
static void deliver(cmn_redis_t *r, struct cmd *c, int status, redisReply *reply)
{
    cmn_redis_cb cb = c->cb;
    void *data = c->data;

    if (status != 0 || reply->type == REDIS_REPLY_ERROR)
        r->stats.errors++;
    cmd_free(c);
    if (cb != NULL)
        cb(data, status, status == 0 ? reply : NULL);
}

static void on_idle(uv_idle_t *h);

/* Queues a user command's failure for a later loop turn. */
static void fail_later(cmn_redis_t *r, struct cmd *c, int status)
{
    c->status = status;
    list_push(&r->failed, c);
    uv_idle_start(&r->idle, on_idle);
}

static void close_handles(cmn_redis_t *r)
{
    r->handles_closed = 1;
    uv_close((uv_handle_t *)&r->idle, on_handle_close);
    uv_close((uv_handle_t *)&r->cmd_timer, on_handle_close);
    uv_close((uv_handle_t *)&r->conn_timer, on_handle_close);
}

static void on_idle(uv_idle_t *h)
{
    cmn_redis_t *r = h->data;
    struct cmd_list batch;
    struct cmd *c;

    if (r->drop_pending) {
        r->drop_pending = 0;
        if (r->ac != NULL && !r->closing)
            drop_connection(r);
    }
    /* Only what is queued now: failures that callbacks cause wait for the next turn. */
    batch = r->failed;
    r->failed.head = r->failed.tail = NULL;
    while ((c = list_pop(&batch)) != NULL)
        deliver(r, c, c->status, NULL);
    if (r->failed.head != NULL || r->drop_pending)
        return;
    uv_idle_stop(h);
    if (r->closing && !r->handles_closed)
        close_handles(r);
}

/* ---- the command deadline ---- */

static void on_cmd_timer(uv_timer_t *t);

static void arm_cmd_timer(cmn_redis_t *r)
{
    struct cmd *head = r->inflight.head;
    uint64_t now = uv_now(r->loop);

    if (head == NULL || uv_is_active((uv_handle_t *)&r->cmd_timer))
        return;
    uv_timer_start(&r->cmd_timer, on_cmd_timer, head->deadline > now ? head->deadline - now : 0, 0);
}

static void on_cmd_timer(uv_timer_t *t)
{
    cmn_redis_t *r = t->data;
    struct cmd *head = r->inflight.head;

    if (head == NULL || r->ac == NULL)
        return;
    if (head->deadline > uv_now(r->loop)) {
        arm_cmd_timer(r); /* the head was answered since: wait for the new one */
        return;
    }
    head->status = CMN_ETIMEOUT;
    r->stats.timeouts++;
    cmn_log(CMN_LOG_WARN, "redis_timeout",
            "no answer from %s within %llu ms: dropping the connection", peer_name(r),
            (unsigned long long)r->command_timeout_ms);
    drop_connection(r);
}

/* ---- sending ---- */

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata);

/* Hands a command to hiredis; from here hiredis owns it until on_reply runs. */
static int submit(cmn_redis_t *r, struct cmd *c, int argc, const char **argv, const size_t *argvlen)
{
    if (r->ac == NULL || redisAsyncCommandArgv(r->ac, on_reply, c, argc, argv, argvlen) != REDIS_OK)
        return CMN_EIO;
    c->deadline = uv_now(r->loop) + r->command_timeout_ms;
    list_push(&r->inflight, c);
    arm_cmd_timer(r);
    return 0;
}

static int submit_load(cmn_redis_t *r, int script, enum cmd_kind kind)
{
    const char *argv[3] = {"SCRIPT", "LOAD", r->scripts[script].source};
    size_t argvlen[3] = {6, 4, r->scripts[script].len};
    struct cmd *c = cmd_new(r, kind, NULL, NULL);
    int rc;

    c->script = script;
    rc = submit(r, c, 3, argv, argvlen);
    if (rc != 0)
        cmd_free(c);
    return rc;
}

static int submit_lib_load(cmn_redis_t *r, int lib, enum cmd_kind kind)
{
    const char *argv[3] = {"FUNCTION", "LOAD", r->libs[lib].source};
    size_t argvlen[3] = {8, 4, r->libs[lib].len};
    struct cmd *c = cmd_new(r, kind, NULL, NULL);
    int rc;

    c->lib = lib;
    rc = submit(r, c, 3, argv, argvlen);
    if (rc != 0)
        cmd_free(c);
    return rc;
}

/* Loads what a call of `script` needs: the script itself, or its function's library. */
static int submit_script_load(cmn_redis_t *r, int script, enum cmd_kind kind)
{
    if (r->scripts[script].lib >= 0)
        return submit_lib_load(r, r->scripts[script].lib, kind);
    return submit_load(r, script, kind);
}

static int submit_handshake(cmn_redis_t *r, int argc, const char **argv, const size_t *argvlen)
{
    struct cmd *c = cmd_new(r, CMD_HANDSHAKE, NULL, NULL);
    int rc = submit(r, c, argc, argv, argvlen);

    if (rc != 0)
        cmd_free(c);
    return rc;
}

/* Pipelines AUTH, one SCRIPT LOAD per script and one FUNCTION LOAD per library, or a PING when
 * there is none of them: readiness always waits for an answer, never for the TCP connection
 * alone. */
static int send_handshake(cmn_redis_t *r)
{
    int rc = 0;

    r->handshake_left = 0;
    if (r->password_len > 0) {
        const char *argv[2] = {"AUTH", (const char *)r->password};
        size_t argvlen[2] = {4, r->password_len};
        rc = submit_handshake(r, 2, argv, argvlen);
        if (rc != 0)
            goto out;
        r->handshake_left++;
    }
    for (int i = 0; i < r->nscripts; i++) {
        if (r->scripts[i].lib >= 0)
            continue;
        rc = submit_load(r, i, CMD_HANDSHAKE);
        if (rc != 0)
            goto out;
        r->handshake_left++;
    }
    for (int i = 0; i < r->nlibs; i++) {
        rc = submit_lib_load(r, i, CMD_HANDSHAKE);
        if (rc != 0)
            goto out;
        r->handshake_left++;
    }
    if (r->handshake_left == 0) {
        const char *argv[1] = {"PING"};
        size_t argvlen[1] = {4};
        rc = submit_handshake(r, 1, argv, argvlen);
        if (rc != 0)
            goto out;
        r->handshake_left++;
    }
out:
    return rc;
}

/* ---- connection loss and reconnection ---- */

static void on_conn_timer(uv_timer_t *t);

/* Arms the backoff: 100 ms doubling to 5 s, each delay drawn in [delay/2, delay] ("equal
 * jitter") so that clients that lost the same server do not come back in step. */
static void schedule_retry(cmn_redis_t *r)
{
    uint64_t half = r->backoff_ms / 2;
    uint64_t delay = half + rng_next(r) % (half + 1);

    r->state = ST_WAIT;
    r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
    uv_timer_start(&r->conn_timer, on_conn_timer, delay, 0);
}

/* r->ac has been detached already; hiredis frees (or has freed) the context. */
static void connection_lost(cmn_redis_t *r)
{
    int was_ready = r->ready;

    r->ready = 0;
    if (r->closing)
        return;
    schedule_retry(r);
    if (was_ready)
        notify_state(r); /* last: the callback may close the client */
}

/* Drops the current connection on purpose.  Must not run inside onConnect or onDisconnect (see the
 * note at the top); inside a reply callback hiredis defers the free until the callback returns. */
static void drop_connection(cmn_redis_t *r)
{
    redisAsyncContext *ac = r->ac;

    r->ac = NULL;
    uv_timer_stop(&r->conn_timer);
    redisAsyncFree(ac); /* pending callbacks run now (or right after the current one) with NULL */
    connection_lost(r);
}

static void log_outage(cmn_redis_t *r, const char *event, const char *what, const char *why)
{
    cmn_log_level_t level = r->outage_logged ? CMN_LOG_DEBUG : CMN_LOG_WARN;

    r->outage_logged = 1;
    if (r->unix_path != NULL)
        cmn_log(level, event, "%s %s: %s", what, r->unix_path, why);
    else
        cmn_log(level, event, "%s %s port %d: %s", what, r->host, r->port, why);
}

static void become_ready(cmn_redis_t *r)
{
    r->state = ST_READY;
    r->ready = 1;
    r->backoff_ms = BACKOFF_MIN_MS;
    if (r->outage_logged)
        cmn_log(CMN_LOG_INFO, "redis_ready", "connected to %s again", peer_name(r));
    else
        cmn_log(CMN_LOG_DEBUG, "redis_ready", "connected to %s", peer_name(r));
    r->outage_logged = 0;
    notify_state(r);
}

/* ---- hiredis callbacks ---- */

static void handshake_reply(cmn_redis_t *r, struct cmd *c, redisReply *reply)
{
    char why[256];
    int ok;

    if (c->lib >= 0) {
        const struct library *l = &r->libs[c->lib];
        ok = library_loaded(l, reply);
        if (!ok)
            snprintf(why, sizeof why, "FUNCTION LOAD of %s answered %.*s", l->name,
                     reply->str != NULL ? (int)(reply->len < 160 ? reply->len : 160) : 0,
                     reply->str != NULL ? reply->str : "");
    } else if (c->script >= 0) {
        const struct script *s = &r->scripts[c->script];
        ok = reply->type == REDIS_REPLY_STRING && reply->len == SHA1_HEX_LEN &&
             strncasecmp(reply->str, s->sha, SHA1_HEX_LEN) == 0;
        if (!ok)
            snprintf(why, sizeof why, "SCRIPT LOAD of %s answered %.*s, expected %s", s->name,
                     reply->str != NULL ? (int)(reply->len < 120 ? reply->len : 120) : 0,
                     reply->str != NULL ? reply->str : "", s->sha);
    } else {
        /* AUTH or PING.  The server's error text never contains the password. */
        ok = reply->type != REDIS_REPLY_ERROR;
        if (!ok)
            snprintf(why, sizeof why, "handshake refused: %.*s",
                     (int)(reply->len < 200 ? reply->len : 200), reply->str);
    }
    cmd_free(c);
    if (r->state != ST_HANDSHAKE || r->ac == NULL)
        return;
    if (!ok) {
        log_outage(r, "redis_handshake_failed", "handshake with", why);
        drop_connection(r);
        return;
    }
    if (--r->handshake_left == 0)
        become_ready(r);
}

static void load_reply(cmn_redis_t *r, struct cmd *c, redisReply *reply)
{
    const struct script *s;

    if (c->lib >= 0) {
        if (!library_loaded(&r->libs[c->lib], reply))
            cmn_log(CMN_LOG_ERROR, "redis_function_load_failed", "FUNCTION LOAD of %s failed: %.*s",
                    r->libs[c->lib].name,
                    reply->str != NULL ? (int)(reply->len < 200 ? reply->len : 200) : 0,
                    reply->str != NULL ? reply->str : "");
        cmd_free(c);
        return;
    }
    s = &r->scripts[c->script];
    if (reply->type != REDIS_REPLY_STRING || reply->len != SHA1_HEX_LEN ||
        strncasecmp(reply->str, s->sha, SHA1_HEX_LEN) != 0)
        cmn_log(CMN_LOG_ERROR, "redis_script_load_failed", "SCRIPT LOAD of %s failed: %.*s",
                s->name, reply->str != NULL ? (int)(reply->len < 200 ? reply->len : 200) : 0,
                reply->str != NULL ? reply->str : "");
    cmd_free(c);
}

static void on_reply(redisAsyncContext *ac, void *reply_, void *privdata)
{
    struct cmd *c = privdata;
    cmn_redis_t *r = c->r;
    redisReply *reply = reply_;

    list_remove(&r->inflight, c);
    if (reply == NULL) {
        /* The context is being freed: a timeout, a loss, or close. */
        if (c->kind == CMD_USER || c->kind == CMD_EVALSHA)
            fail_later(r, c, c->status);
        else
            cmd_free(c);
        return;
    }
    switch (c->kind) {
    case CMD_HANDSHAKE:
        handshake_reply(r, c, reply);
        return;
    case CMD_LOAD:
        load_reply(r, c, reply);
        return;
    case CMD_EVALSHA:
        if ((r->scripts[c->script].lib >= 0 ? reply_is_nofunction(reply)
                                             : reply_is_noscript(reply)) &&
            !c->retried && r->ac == ac && !r->closing) {
            /* The server lost its scripts or functions (restart without AOF, SCRIPT or FUNCTION
             * FLUSH, failover to a replica that never saw the load).  Load it and retry once,
             * pipelined in that order on the same connection. */
            c->retried = 1;
            r->stats.noscript_reloads++;
            cmn_log(CMN_LOG_INFO, "redis_noscript", "script %s missing on the server: loading it",
                    r->scripts[c->script].name);
            if (submit_script_load(r, c->script, CMD_LOAD) != 0 ||
                submit(r, c, c->argc, c->argv, c->argvlen) != 0)
                fail_later(r, c, CMN_EIO);
            return;
        }
        break;
    case CMD_USER:
        break;
    }
    deliver(r, c, 0, reply);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    cmn_redis_t *r = ac->data;

    (void)status; /* REDIS_OK for a clean close, but any loss means the same here */
    /* A context we dropped ourselves has been detached already. */
    if (ac != r->ac)
        return;
    r->ac = NULL;
    log_outage(r, "redis_disconnected", "lost the connection to",
               ac->errstr != NULL ? ac->errstr : "closed");
    connection_lost(r);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    cmn_redis_t *r = ac->data;

    if (status != REDIS_OK) {
        /* hiredis frees this context when we return: it is not ours any more. */
        r->ac = NULL;
        log_outage(r, "redis_connect_failed", "cannot connect to",
                   ac->errstr != NULL ? ac->errstr : "error");
        r->addr_index++;
        connect_next(r);
        return;
    }
    uv_timer_stop(&r->conn_timer);
    r->state = ST_HANDSHAKE;
    if (r->unix_path == NULL) {
        /* Notice a dead peer on an idle connection; failures here only cost that. */
        int on = 1, idle = 15, intvl = 5, cnt = 3;
        (void)setsockopt(ac->c.fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
        (void)setsockopt(ac->c.fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
        (void)setsockopt(ac->c.fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
        (void)setsockopt(ac->c.fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    }
    if (send_handshake(r) != 0) {
        /* Freeing here would pull the context from under redisAsyncHandleWrite. */
        r->drop_pending = 1;
        uv_idle_start(&r->idle, on_idle);
    }
}

/* ---- event adapter (see the note at the top) ---- */

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct conn *c = h->data;
    int ev = status < 0 ? c->events : events;

    if (c->ac != NULL && (ev & UV_READABLE))
        redisAsyncHandleRead(c->ac);
    if (c->ac != NULL && (ev & UV_WRITABLE))
        redisAsyncHandleWrite(c->ac);
}

static void conn_update(struct conn *c)
{
    if (c->events != 0)
        uv_poll_start(&c->poll, c->events, on_poll);
    else
        uv_poll_stop(&c->poll);
}

static void conn_add_read(void *p)
{
    struct conn *c = p;
    c->events |= UV_READABLE;
    conn_update(c);
}

static void conn_del_read(void *p)
{
    struct conn *c = p;
    c->events &= ~UV_READABLE;
    conn_update(c);
}

static void conn_add_write(void *p)
{
    struct conn *c = p;
    c->events |= UV_WRITABLE;
    conn_update(c);
}

static void conn_del_write(void *p)
{
    struct conn *c = p;
    c->events &= ~UV_WRITABLE;
    conn_update(c);
}

static void on_conn_close(uv_handle_t *h)
{
    struct conn *c = h->data;
    cmn_redis_t *r = c->r;

    cmn_free(c);
    unref(r);
}

static void conn_cleanup(void *p)
{
    struct conn *c = p;

    c->ac = NULL;
    uv_close((uv_handle_t *)&c->poll, on_conn_close);
}

static int conn_attach(cmn_redis_t *r, redisAsyncContext *ac)
{
    struct conn *c = cmn_xcalloc(1, sizeof *c);
    int rc = uv_poll_init(r->loop, &c->poll, ac->c.fd);

    if (rc != 0) {
        cmn_free(c);
        return rc;
    }
    c->poll.data = c;
    c->ac = ac;
    c->r = r;
    r->refs++;
    ac->ev.data = c;
    ac->ev.addRead = conn_add_read;
    ac->ev.delRead = conn_del_read;
    ac->ev.addWrite = conn_add_write;
    ac->ev.delWrite = conn_del_write;
    ac->ev.cleanup = conn_cleanup;
    return 0;
}

/* ---- connecting ---- */

static void attempt_failed(cmn_redis_t *r)
{
    uv_timer_stop(&r->conn_timer);
    schedule_retry(r);
}

/* Tries r->addrs[addr_index...] (or the unix socket) until one connect is under way. */
static void connect_next(cmn_redis_t *r)
{
    int n = r->unix_path != NULL ? 1 : r->naddrs;
    redisAsyncContext *ac;
    int rc;

    for (; r->addr_index < n; r->addr_index++) {
        if (r->unix_path != NULL)
            ac = redisAsyncConnectUnix(r->unix_path);
        else
            ac = redisAsyncConnect(r->addrs[r->addr_index], r->port);
        if (ac == NULL)
            continue;
        if (ac->err != 0) {
            /* Failed at once (a refused unix socket): nothing is attached yet, it is ours. */
            log_outage(r, "redis_connect_failed", "cannot connect to", ac->errstr);
            redisAsyncFree(ac);
            continue;
        }
        rc = conn_attach(r, ac);
        if (rc != 0) {
            log_outage(r, "redis_connect_failed", "cannot watch the socket for", uv_strerror(rc));
            redisAsyncFree(ac);
            continue;
        }
        ac->data = r;
        r->ac = ac;
        r->state = ST_CONNECTING;
        redisAsyncSetDisconnectCallback(ac, on_disconnect);
        redisAsyncSetConnectCallback(ac, on_connect); /* also starts watching for writability */
        return;
    }
    attempt_failed(r);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct resolve *rs = req->data;
    cmn_redis_t *r = rs->r;
    int stale = rs->stale;

    cmn_free(rs);
    if (stale) {
        uv_freeaddrinfo(res);
        unref(r);
        return;
    }
    r->resolve = NULL;
    r->naddrs = 0;
    r->addr_index = 0;
    if (status == 0) {
        /* IPv4 first, as hiredis itself prefers. */
        for (int pass = 0; pass < 2; pass++) {
            for (struct addrinfo *ai = res; ai != NULL && r->naddrs < MAX_ADDRS; ai = ai->ai_next) {
                char *dst = r->addrs[r->naddrs];
                if (pass == 0 && ai->ai_family == AF_INET)
                    uv_ip4_name((const struct sockaddr_in *)ai->ai_addr, dst, INET6_ADDRSTRLEN);
                else if (pass == 1 && ai->ai_family == AF_INET6)
                    uv_ip6_name((const struct sockaddr_in6 *)ai->ai_addr, dst, INET6_ADDRSTRLEN);
                else
                    continue;
                r->naddrs++;
            }
        }
    }
    uv_freeaddrinfo(res);
    if (r->naddrs == 0) {
        log_outage(r, "redis_resolve_failed", "cannot resolve",
                   status != 0 ? uv_strerror(status) : "no address");
        attempt_failed(r);
    } else {
        connect_next(r);
    }
    unref(r);
}

static void start_attempt(cmn_redis_t *r)
{
    struct in6_addr a6;
    struct in_addr a4;
    struct addrinfo hints;
    struct resolve *rs;
    int rc;

    uv_timer_start(&r->conn_timer, on_conn_timer, r->connect_timeout_ms, 0);
    r->addr_index = 0;
    if (r->unix_path != NULL || uv_inet_pton(AF_INET, r->host, &a4) == 0 ||
        uv_inet_pton(AF_INET6, r->host, &a6) == 0) {
        /* Already numeric: nothing to resolve, no trip to the thread pool. */
        if (r->unix_path == NULL) {
            snprintf(r->addrs[0], sizeof r->addrs[0], "%s", r->host);
            r->naddrs = 1;
        }
        connect_next(r);
        return;
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rs = cmn_xcalloc(1, sizeof *rs);
    rs->r = r;
    rs->req.data = rs;
    rc = uv_getaddrinfo(r->loop, &rs->req, on_resolved, r->host, NULL, &hints);
    if (rc != 0) {
        cmn_free(rs);
        log_outage(r, "redis_resolve_failed", "cannot resolve", uv_strerror(rc));
        attempt_failed(r);
        return;
    }
    r->refs++;
    r->resolve = rs;
    r->state = ST_RESOLVING;
}

static void on_conn_timer(uv_timer_t *t)
{
    cmn_redis_t *r = t->data;
    redisAsyncContext *ac;

    switch (r->state) {
    case ST_WAIT:
        if (r->attempted)
            r->stats.reconnects++;
        r->attempted = 1;
        start_attempt(r);
        break;
    case ST_RESOLVING:
        /* A getaddrinfo already on a worker thread cannot be cancelled: abandon it. */
        r->resolve->stale = 1;
        uv_cancel((uv_req_t *)&r->resolve->req);
        r->resolve = NULL;
        log_outage(r, "redis_connect_timeout", "timed out resolving", "no answer");
        attempt_failed(r);
        break;
    case ST_CONNECTING:
        /* Not connected yet, so hiredis calls neither onConnect nor onDisconnect. */
        ac = r->ac;
        r->ac = NULL;
        redisAsyncFree(ac);
        log_outage(r, "redis_connect_timeout", "timed out connecting to", "no answer");
        attempt_failed(r);
        break;
    case ST_HANDSHAKE:
    case ST_READY:
        break;
    }
}

/* ---- public API ---- */

int cmn_redis_new(uv_loop_t *loop, const cmn_cfg_redis_t *cfg, cmn_redis_t **out)
{
    int rc = CMN_EINVAL;
    cmn_redis_t *r = NULL;

    if (loop == NULL || cfg == NULL || out == NULL || cfg->connect_timeout_ms <= 0 ||
        cfg->command_timeout_ms <= 0)
        goto out;
    if (cfg->unix_path == NULL && (cfg->host == NULL || cfg->port <= 0 || cfg->port > 65535))
        goto out;
    r = cmn_xcalloc(1, sizeof *r);
    r->loop = loop;
    r->host = cfg->host != NULL ? cmn_xstrdup(cfg->host) : NULL;
    r->port = cfg->port;
    r->unix_path = cfg->unix_path != NULL ? cmn_xstrdup(cfg->unix_path) : NULL;
    if (cfg->password.len > 0) {
        r->password = cmn_xalloc(cfg->password.len);
        memcpy(r->password, cfg->password.data, cfg->password.len);
        r->password_len = cfg->password.len;
    }
    r->connect_timeout_ms = (uint64_t)cfg->connect_timeout_ms;
    r->command_timeout_ms = (uint64_t)cfg->command_timeout_ms;
    r->backoff_ms = BACKOFF_MIN_MS;
    r->rng = uv_hrtime() ^ (uint64_t)(uintptr_t)r;
    if (r->rng == 0)
        r->rng = 1;
    uv_timer_init(loop, &r->cmd_timer);
    uv_timer_init(loop, &r->conn_timer);
    uv_idle_init(loop, &r->idle);
    r->cmd_timer.data = r->conn_timer.data = r->idle.data = r;
    r->refs = 3;
    /* The first attempt starts on the next turn, so scripts can be added first. */
    r->state = ST_WAIT;
    uv_timer_start(&r->conn_timer, on_conn_timer, 0, 0);
    *out = r;
    rc = 0;
out:
    return rc;
}

void cmn_redis_set_state_cb(cmn_redis_t *r, cmn_redis_state_cb cb, void *data)
{
    r->state_cb = cb;
    r->state_data = data;
}

int cmn_redis_script_add(cmn_redis_t *r, const char *name, const char *source)
{
    int rc = CMN_EINVAL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    struct script *s;

    if (r == NULL || r->closing || name == NULL || source == NULL || r->nscripts == INT_MAX)
        goto out;
    rc = CMN_ECRYPTO;
    if (EVP_Digest(source, strlen(source), md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20)
        goto out;
    r->scripts = cmn_xrealloc(r->scripts, (size_t)(r->nscripts + 1) * sizeof *r->scripts);
    s = &r->scripts[r->nscripts];
    s->name = cmn_xstrdup(name);
    s->source = cmn_xstrdup(source);
    s->len = strlen(source);
    s->lib = -1;
    s->function = NULL;
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(s->sha + 2 * i, 3, "%02x", md[i]);
    rc = r->nscripts++;
    /* Added after the handshake started: load it now.  Were this to fail, the first EVALSHA
     * would load it through NOSCRIPT anyway. */
    if (r->state == ST_HANDSHAKE && submit_load(r, rc, CMD_HANDSHAKE) == 0)
        r->handshake_left++;
    else if (r->state == ST_READY)
        (void)submit_load(r, rc, CMD_LOAD);
out:
    return rc;
}

/* The library named in `source`'s first line, `#!lua name=<name>` (then flags or the end of the
 * line), added to the client's libraries if it is not among them yet: its index, or -1 when the
 * line is not there. */
static int library_add(cmn_redis_t *r, const char *source)
{
    static const char head[] = "#!lua name=";
    size_t n;
    struct library *l;

    if (strncmp(source, head, sizeof head - 1) != 0)
        return -1;
    n = strcspn(source + sizeof head - 1, " \t\r\n");
    if (n == 0)
        return -1;
    for (int i = 0; i < r->nlibs; i++) {
        if (strlen(r->libs[i].name) == n && memcmp(r->libs[i].name, source + sizeof head - 1, n) == 0)
            return i;
    }
    r->libs = cmn_xrealloc(r->libs, (size_t)(r->nlibs + 1) * sizeof *r->libs);
    l = &r->libs[r->nlibs];
    l->name = cmn_xstrndup(source + sizeof head - 1, n);
    l->source = cmn_xstrdup(source);
    l->len = strlen(source);
    /* Added after the handshake started: load it now (a failure here is repaired by the first
     * call's "Function not found"). */
    if (r->state == ST_HANDSHAKE && submit_lib_load(r, r->nlibs, CMD_HANDSHAKE) == 0)
        r->handshake_left++;
    else if (r->state == ST_READY)
        (void)submit_lib_load(r, r->nlibs, CMD_LOAD);
    return r->nlibs++;
}

int cmn_redis_function_add(cmn_redis_t *r, const char *name, const char *library,
                           const char *function)
{
    int rc = CMN_EINVAL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    struct script *s;
    int lib;

    if (r == NULL || r->closing || name == NULL || library == NULL || function == NULL ||
        function[0] == '\0' || r->nscripts == INT_MAX || r->nlibs == INT_MAX)
        goto out;
    rc = CMN_ECRYPTO;
    if (EVP_Digest(function, strlen(function), md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20)
        goto out;
    rc = CMN_EINVAL;
    lib = library_add(r, library);
    if (lib < 0)
        goto out;
    r->scripts = cmn_xrealloc(r->scripts, (size_t)(r->nscripts + 1) * sizeof *r->scripts);
    s = &r->scripts[r->nscripts];
    s->name = cmn_xstrdup(name);
    s->source = NULL;
    s->len = 0;
    s->lib = lib;
    s->function = cmn_xstrdup(function);
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(s->sha + 2 * i, 3, "%02x", md[i]);
    rc = r->nscripts++;
out:
    return rc;
}

const char *cmn_redis_script_sha(const cmn_redis_t *r, int script)
{
    if (r == NULL || script < 0 || script >= r->nscripts)
        return NULL;
    return r->scripts[script].sha;
}

/* An argument list; len NULL: C strings. */
struct args {
    int n;
    const char *const *v;
    const size_t *len;
};

static size_t arg_len(const struct args *a, int i)
{
    return a->len != NULL ? a->len[i] : strlen(a->v[i]);
}

/*
 * Queues an EVALSHA of `script` whose command is pre followed by rest, keeping a copy of all of it
 * for the retry after NOSCRIPT (hiredis only keeps the formatted bytes, and only until they are
 * written).
 */
static int send_evalsha(cmn_redis_t *r, int script, const struct args *pre, const struct args *rest,
                        cmn_redis_cb cb, void *data)
{
    int rc = CMN_EINVAL;
    const struct args *seg[2] = {pre, rest};
    struct cmd *c;
    size_t total = 0, pos = 0, len;
    int n = 0, k = 0;

    for (int s = 0; s < 2; s++) {
        if (seg[s]->n > INT_MAX - n)
            goto out;
        n += seg[s]->n;
        for (int i = 0; i < seg[s]->n; i++) {
            len = arg_len(seg[s], i);
            if (len > SIZE_MAX - total)
                goto out;
            total += len;
        }
    }
    c = cmd_new(r, CMD_EVALSHA, cb, data);
    c->script = script;
    c->argc = n;
    c->argv = cmn_xcalloc((size_t)n, sizeof *c->argv);
    c->argvlen = cmn_xcalloc((size_t)n, sizeof *c->argvlen);
    c->argbuf = cmn_xalloc(total);
    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < seg[s]->n; i++, k++) {
            len = arg_len(seg[s], i);
            if (len > 0)
                memcpy(c->argbuf + pos, seg[s]->v[i], len);
            c->argv[k] = c->argbuf + pos;
            c->argvlen[k] = len;
            pos += len;
        }
    }
    if (r->scripts[script].lib >= 0) {
        /* EVALSHA <id> numkeys ... of a function is FCALL <function> numkeys ... */
        c->argv[0] = "FCALL";
        c->argvlen[0] = 5;
        c->argv[1] = r->scripts[script].function;
        c->argvlen[1] = strlen(r->scripts[script].function);
    }
    r->stats.commands++;
    if (!r->ready || submit(r, c, c->argc, c->argv, c->argvlen) != 0)
        fail_later(r, c, CMN_EIO);
    rc = 0;
out:
    return rc;
}

/* The registered script that an "EVALSHA <sha> ..." command calls, or -1. */
static int evalsha_script(const cmn_redis_t *r, const struct args *a)
{
    if (a->n < 3 || arg_len(a, 0) != 7 || strncasecmp(a->v[0], "EVALSHA", 7) != 0 ||
        arg_len(a, 1) != SHA1_HEX_LEN)
        return -1;
    for (int i = 0; i < r->nscripts; i++) {
        if (strncasecmp(a->v[1], r->scripts[i].sha, SHA1_HEX_LEN) == 0)
            return i;
    }
    return -1;
}

int cmn_redis_command(cmn_redis_t *r, cmn_redis_cb cb, void *data, int argc, const char **argv,
                      const size_t *argvlen)
{
    static const struct args none = {0, NULL, NULL};
    int rc = CMN_EINVAL;
    struct args a = {argc, argv, argvlen};
    struct cmd *c;
    int script;

    if (r == NULL || r->closing || argc <= 0 || argv == NULL)
        goto out;
    /* Callers that spell EVALSHA out themselves get the NOSCRIPT retry too. */
    script = evalsha_script(r, &a);
    if (script >= 0) {
        rc = send_evalsha(r, script, &a, &none, cb, data);
        goto out;
    }
    c = cmd_new(r, CMD_USER, cb, data);
    r->stats.commands++;
    if (!r->ready || submit(r, c, argc, argv, argvlen) != 0)
        fail_later(r, c, CMN_EIO);
    rc = 0;
out:
    return rc;
}

int cmn_redis_evalsha(cmn_redis_t *r, int script, int numkeys, int argc, const char **argv,
                      const size_t *argvlen, cmn_redis_cb cb, void *data)
{
    int rc = CMN_EINVAL;
    char nk[16];
    const char *prev[3];
    size_t prelen[3];
    struct args pre = {3, prev, prelen}, rest = {argc, argv, argvlen};

    if (r == NULL || r->closing || script < 0 || script >= r->nscripts || argc < 0 || numkeys < 0 ||
        numkeys > argc || (argc > 0 && argv == NULL))
        goto out;
    snprintf(nk, sizeof nk, "%d", numkeys);
    prev[0] = "EVALSHA";
    prelen[0] = 7;
    prev[1] = r->scripts[script].sha;
    prelen[1] = SHA1_HEX_LEN;
    prev[2] = nk;
    prelen[2] = strlen(nk);
    rc = send_evalsha(r, script, &pre, &rest, cb, data);
out:
    return rc;
}

int cmn_redis_ready(const cmn_redis_t *r)
{
    return r != NULL && r->ready;
}

const cmn_redis_stats_t *cmn_redis_stats(const cmn_redis_t *r)
{
    return &r->stats;
}

void cmn_redis_close(cmn_redis_t *r, void (*done)(void *data), void *data)
{
    redisAsyncContext *ac;

    if (r == NULL || r->closing)
        return;
    r->closing = 1;
    r->ready = 0;
    r->done = done;
    r->done_data = data;
    uv_timer_stop(&r->cmd_timer);
    uv_timer_stop(&r->conn_timer);
    if (r->resolve != NULL) {
        r->resolve->stale = 1;
        uv_cancel((uv_req_t *)&r->resolve->req);
        r->resolve = NULL;
    }
    if (r->ac != NULL) {
        /* Pending callbacks run with NULL now, or right after the current reply callback when
         * called from one; their failures are delivered from the idle handle. */
        ac = r->ac;
        r->ac = NULL;
        redisAsyncFree(ac);
    }
    uv_idle_start(&r->idle, on_idle);
}
