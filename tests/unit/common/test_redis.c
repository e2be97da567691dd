/*
 * The Redis client (cmn/redis.h) against a real redis-server (tests/support/redis_server.h).
 *
 * Loop tests: each test runs its own loop, bounds every wait with a guard timer, counts how many
 * times each callback ran, and ends with uv_loop_close() == 0 so that a leaked handle or request
 * fails it.  Most tests share one server started in the group set-up; tests that stop, stall,
 * reconfigure or need a cluster server start their own.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "cmn/err.h"
#include "cmn/log.h"
#include "cmn/redis.h"
#include "redis_server.h"

#define READY_WAIT_MS 5000

static park_redis_server_t srv; /* shared by the group */
static uv_loop_t loop;
static int seq; /* completion order across all callbacks of a test */

static char ip4[] = "127.0.0.1";

/* ---- recording callbacks ---- */

struct result {
    int calls;
    int status;
    int type;
    long long integer;
    char str[512];
    size_t len;
    int order;
};

static void on_result(void *data, int status, redisReply *reply)
{
    struct result *res = data;

    res->calls++;
    res->status = status;
    res->order = ++seq;
    res->type = -1;
    if (reply != NULL) {
        res->type = reply->type;
        res->integer = reply->integer;
        if (reply->str != NULL) {
            res->len = reply->len < sizeof res->str - 1 ? reply->len : sizeof res->str - 1;
            memcpy(res->str, reply->str, res->len);
            res->str[res->len] = '\0';
        }
    }
}

struct states {
    int n;
    int v[64];
};

static void on_state(void *data, int ready)
{
    struct states *st = data;

    if (st->n < 64)
        st->v[st->n] = ready;
    st->n++;
}

static void on_done(void *data)
{
    (*(int *)data)++;
}

/* ---- running the loop with a bound ---- */

static void on_guard(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

/* Runs the loop until pred(arg) holds or ms pass; returns pred(arg). */
static int run_until(int (*pred)(const void *), const void *arg, uint64_t ms)
{
    uv_timer_t guard;
    int expired = 0;

    uv_timer_init(&loop, &guard);
    guard.data = &expired;
    uv_timer_start(&guard, on_guard, ms, 0);
    while (!pred(arg) && !expired)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&loop, UV_RUN_NOWAIT); /* lets the guard's close complete */
    return pred(arg);
}

static int never(const void *arg)
{
    (void)arg;
    return 0;
}

static void run_for(uint64_t ms)
{
    run_until(never, NULL, ms);
}

static int client_ready(const void *arg)
{
    return cmn_redis_ready(arg);
}

static int client_not_ready(const void *arg)
{
    return !cmn_redis_ready(arg);
}

static int called(const void *arg)
{
    return ((const struct result *)arg)->calls > 0;
}

struct all_called {
    const struct result *res;
    int n;
};

static int all_called(const void *arg)
{
    const struct all_called *a = arg;
    for (int i = 0; i < a->n; i++)
        if (a->res[i].calls == 0)
            return 0;
    return 1;
}

static void wait_result(struct result *res)
{
    assert_true(run_until(called, res, READY_WAIT_MS));
    assert_int_equal(res->calls, 1);
}

/* ---- clients ---- */

static cmn_cfg_redis_t cfg_for(int port)
{
    cmn_cfg_redis_t cfg;

    memset(&cfg, 0, sizeof cfg);
    cfg.host = ip4;
    cfg.port = port;
    cfg.connect_timeout_ms = 1000;
    cfg.command_timeout_ms = 2000;
    return cfg;
}

static cmn_redis_t *client_new(const cmn_cfg_redis_t *cfg, struct states *st)
{
    cmn_redis_t *r = NULL;

    assert_int_equal(cmn_redis_new(&loop, cfg, &r), 0);
    assert_non_null(r);
    if (st != NULL)
        cmn_redis_set_state_cb(r, on_state, st);
    return r;
}

static void wait_ready(cmn_redis_t *r)
{
    assert_true(run_until(client_ready, r, READY_WAIT_MS));
}

/* Closes the client, runs the loop dry, and checks that nothing is left on it. */
static void close_all(cmn_redis_t *r)
{
    int done = 0;

    cmn_redis_close(r, on_done, &done);
    assert_int_equal(done, 0); /* never synchronously */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(done, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void command(cmn_redis_t *r, struct result *res, const char *a0, const char *a1,
                    const char *a2)
{
    const char *argv[3] = {a0, a1, a2};
    int argc = a2 != NULL ? 3 : a1 != NULL ? 2 : 1;

    assert_int_equal(cmn_redis_command(r, on_result, res, argc, argv, NULL), 0);
}

/* Runs redis-cli with up to four arguments (NULL-terminated) and checks its output. */
static void cli(const park_redis_server_t *s, const char *expect, const char *a0, const char *a1,
                const char *a2, const char *a3)
{
    const char *args[5] = {a0, a1, a2, a3, NULL};
    char out[512];

    assert_int_equal(park_redis_cli(s, out, sizeof out, args), 0);
    if (expect != NULL)
        assert_string_equal(out, expect);
}

/* A loopback port with nothing listening on it. */
static int closed_port(void)
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
    close(fd);
    return ntohs(a.sin_port);
}

/* ---- set-up ---- */

static int group_setup(void **state)
{
    const char *level = getenv("PARK_TEST_LOG"); /* e.g. "debug" to watch the client */
    int lv = level != NULL ? cmn_log_level_parse(level) : -1;

    (void)state;
    cmn_log_init("test_redis", lv >= 0 ? (cmn_log_level_t)lv : CMN_LOG_ERROR, 2);
    return park_redis_server_start(&srv, 0);
}

static int group_teardown(void **state)
{
    (void)state;
    park_redis_server_destroy(&srv);
    return 0;
}

static int test_setup(void **state)
{
    (void)state;
    seq = 0;
    return uv_loop_init(&loop);
}

/* ---- tests ---- */

static void test_connect_ready(void **state)
{
    cmn_cfg_redis_t cfg = cfg_for(srv.port);
    struct states st = {0};
    cmn_redis_t *r = client_new(&cfg, &st);

    (void)state;
    assert_int_equal(cmn_redis_ready(r), 0);
    wait_ready(r);
    assert_int_equal(st.n, 1);
    assert_int_equal(st.v[0], 1);
    assert_int_equal(cmn_redis_stats(r)->reconnects, 0);
    close_all(r);
    assert_int_equal(st.n, 1); /* close itself reports no state change */
}

static void test_not_ready_fails_later(void **state)
{
    cmn_cfg_redis_t cfg = cfg_for(srv.port);
    cmn_redis_t *r = client_new(&cfg, NULL);
    struct result res = {0};

    (void)state;
    command(r, &res, "PING", NULL, NULL);
    assert_int_equal(res.calls, 0); /* not from inside the call */
    wait_result(&res);
    assert_int_equal(res.status, CMN_EIO);
    assert_int_equal(cmn_redis_stats(r)->errors, 1);
    wait_ready(r);
    close_all(r);
}

static void test_bad_arguments(void **state)
{
    cmn_cfg_redis_t cfg = cfg_for(srv.port);
    cmn_redis_t *r = client_new(&cfg, NULL);
    struct result res = {0};
    const char *argv[1] = {"PING"};
    int s;

    (void)state;
    s = cmn_redis_script_add(r, "s", "#!lua\nreturn 1");
    assert_int_equal(s, 0);
    assert_int_equal(cmn_redis_command(r, on_result, &res, 0, argv, NULL), CMN_EINVAL);
    assert_int_equal(cmn_redis_evalsha(r, 7, 0, 0, NULL, NULL, on_result, &res), CMN_EINVAL);
    assert_int_equal(cmn_redis_evalsha(r, s, 2, 1, argv, NULL, on_result, &res), CMN_EINVAL);
    assert_null(cmn_redis_script_sha(r, 1));
    wait_ready(r);
    close_all(r);
    assert_int_equal(res.calls, 0);
}

static void test_set_get(void **state)
{
    cmn_cfg_redis_t cfg = cfg_for(srv.port);
    cmn_redis_t *r = client_new(&cfg, NULL);
    struct result set = {0}, get = {0};

    (void)state;
    wait_ready(r);
    command(r, &set, "SET", "t:setget", "hello");
    command(r, &get, "GET", "t:setget", NULL);
    wait_result(&get);
    assert_int_equal(set.calls, 1);
    assert_int_equal(set.status, 0);
    assert_int_equal(set.type, REDIS_REPLY_STATUS);
    assert_string_equal(set.str, "OK");
    assert_int_equal(get.status, 0);
    assert_int_equal(get.type, REDIS_REPLY_STRING);
    assert_string_equal(get.str, "hello");
    assert_true(set.order < get.order);
    assert_int_equal(cmn_redis_stats(r)->commands, 2);
    assert_int_equal(cmn_redis_stats(r)->errors, 0);
    close_all(r);
}

#define PIPELINE 1000

static void test_pipeline_order(void **state)
{
    static struct result res[PIPELINE];
    cmn_cfg_redis_t cfg = cfg_for(srv.port);
    cmn_redis_t *r = client_new(&cfg, NULL);
    struct result del = {0};
    struct all_called all = {res, PIPELINE};

    (void)state;
    memset(res, 0, sizeof res);
    wait_ready(r);
    command(r, &del, "DEL", "t:pipeline", NULL);
    for (int i = 0; i < PIPELINE; i++)
        command(r, &res[i], "INCR", "t:pipeline", NULL);
    assert_true(run_until(all_called, &all, READY_WAIT_MS));
    assert_int_equal(del.order, 1);
    for (int i = 0; i < PIPELINE; i++) {
        assert_int_equal(res[i].calls, 1);
        assert_int_equal(res[i].status, 0);
        assert_int_equal(res[i].order, i + 2);
        assert_int_equal(res[i].integer, i + 1);
    }
    close_all(r);
}

static void test_binary_args(void **state)
{
    cmn_cfg_redis_t cfg = cfg_for(srv.port);
    cmn_redis_t *r = client_new(&cfg, NULL);
    struct result set = {0}, get = {0}, len = {0};
    char key[] = "t:bin\0key\r\n*1\r\n";
    char value[256];
    const char *argv[3];
    size_t argvlen[3];

    (void)state;
    for (int i = 0; i < 256; i++)
        value[i] = (char)i;
    wait_ready(r);
    argv[0] = "SET", argvlen[0] = 3;
    argv[1] = key, argvlen[1] = sizeof key - 1;
    argv[2] = value, argvlen[2] = sizeof value;
    assert_int_equal(cmn_redis_command(r, on_result, &set, 3, argv, argvlen), 0);
    argv[0] = "GET";
    assert_int_equal(cmn_redis_command(r, on_result, &get, 2, argv, argvlen), 0);
    argv[0] = "STRLEN", argvlen[0] = 6;
    assert_int_equal(cmn_redis_command(r, on_result, &len, 2, argv, argvlen), 0);
    wait_result(&len);
    assert_int_equal(set.status, 0);
    assert_string_equal(set.str, "OK");
    assert_int_equal(get.status, 0);
    assert_int_equal(get.type, REDIS_REPLY_STRING);
    assert_int_equal(get.len, sizeof value);
    assert_memory_equal(get.str, value, sizeof value);
    assert_int_equal(len.integer, 256);
    close_all(r);
}

static const char incrby_src[] = "#!lua\n"
                                 "return redis.call('INCRBY', KEYS[1], ARGV[1])\n";

static void test_evalsha(void **state)
{
    cmn_cfg_redis_t cfg = cfg_for(srv.port);
    cmn_redis_t *r = client_new(&cfg, NULL);
    struct result del = {0}, a = {0}, b = {0}, e = {0};
    const char *argv[2];
    char out[128];
    const char *load[] = {"SCRIPT", "LOAD", incrby_src, NULL};
    int s, fail;

    (void)state;
    s = cmn_redis_script_add(r, "incrby", incrby_src);
    fail = cmn_redis_script_add(r, "fail", "#!lua\nreturn redis.error_reply('MYERR no luck')");
    assert_int_equal(s, 0);
    assert_int_equal(fail, 1);
    wait_ready(r);
    /* The locally computed SHA-1 is the server's. */
    assert_int_equal(park_redis_cli(&srv, out, sizeof out, load), 0);
    assert_string_equal(out, cmn_redis_script_sha(r, s));

    command(r, &del, "DEL", "t:eval", NULL);
    argv[0] = "t:eval";
    argv[1] = "5";
    assert_int_equal(cmn_redis_evalsha(r, s, 1, 2, argv, NULL, on_result, &a), 0);
    argv[1] = "7";
    assert_int_equal(cmn_redis_evalsha(r, s, 1, 2, argv, NULL, on_result, &b), 0);
    assert_int_equal(cmn_redis_evalsha(r, fail, 0, 0, NULL, NULL, on_result, &e), 0);
    wait_result(&e);
    assert_int_equal(a.status, 0);
    assert_int_equal(a.type, REDIS_REPLY_INTEGER);
    assert_int_equal(a.integer, 5);
    assert_int_equal(b.integer, 12);
    /* A script's error is a reply, not a failure of the client. */
    assert_int_equal(e.status, 0);
    assert_int_equal(e.type, REDIS_REPLY_ERROR);
    assert_string_equal(e.str, "MYERR no luck");
    assert_int_equal(cmn_redis_stats(r)->errors, 1);
    assert_int_equal(cmn_redis_stats(r)->noscript_reloads, 0);
    close_all(r);
}

static void test_noscript_reload(void **state)
{
    cmn_cfg_redis_t cfg = cfg_for(srv.port);
    cmn_redis_t *r = client_new(&cfg, NULL);
    struct result del = {0}, a = {0}, after = {0}, b = {0}, c = {0};
    const char *argv[2] = {"t:noscript", "3"};
    const char *raw[5] = {"evalsha", NULL, "1", "t:noscript", "3"};
    int s;

    (void)state;
    s = cmn_redis_script_add(r, "incrby", incrby_src);
    wait_ready(r);
    command(r, &del, "DEL", "t:noscript", NULL);
    wait_result(&del);
    cli(&srv, "OK", "SCRIPT", "FLUSH", NULL, NULL);
    cli(&srv, "0", "SCRIPT", "EXISTS", cmn_redis_script_sha(r, s), NULL);

    assert_int_equal(cmn_redis_evalsha(r, s, 1, 2, argv, NULL, on_result, &a), 0);
    command(r, &after, "PING", NULL, NULL); /* sent after, answered before the retry */
    wait_result(&a);
    assert_int_equal(a.status, 0);
    assert_int_equal(a.type, REDIS_REPLY_INTEGER);
    assert_int_equal(a.integer, 3);
    assert_int_equal(after.calls, 1);
    assert_true(after.order < a.order);
    assert_int_equal(cmn_redis_stats(r)->noscript_reloads, 1);

    /* Loaded again: no second reload. */
    assert_int_equal(cmn_redis_evalsha(r, s, 1, 2, argv, NULL, on_result, &b), 0);
    wait_result(&b);
    assert_int_equal(b.integer, 6);
    assert_int_equal(cmn_redis_stats(r)->noscript_reloads, 1);

    /* EVALSHA spelt out through cmn_redis_command gets the same retry. */
    cli(&srv, "OK", "SCRIPT", "FLUSH", NULL, NULL);
    raw[1] = cmn_redis_script_sha(r, s);
    assert_int_equal(cmn_redis_command(r, on_result, &c, 5, raw, NULL), 0);
    wait_result(&c);
    assert_int_equal(c.status, 0);
    assert_int_equal(c.integer, 9);
    assert_int_equal(cmn_redis_stats(r)->noscript_reloads, 2);
    assert_int_equal(cmn_redis_stats(r)->errors, 0);
    close_all(r);
}

/* A Redis Functions library with two functions (cmn_redis_function_add). */
static const char lib_src[] = "#!lua name=t_lib\n"
                              "redis.register_function('t_incrby', function(keys, args)\n"
                              "  return redis.call('INCRBY', keys[1], args[1])\n"
                              "end)\n"
                              "redis.register_function('t_fail', function()\n"
                              "  return redis.error_reply('MYERR no luck')\n"
                              "end)\n";

static void test_functions(void **state)
{
    cmn_cfg_redis_t cfg = cfg_for(srv.port);
    cmn_redis_t *r, *r2;
    struct result del = {0}, a = {0}, e = {0}, two = {0}, b = {0}, after = {0}, c = {0};
    const char *argv[2] = {"t:fcall", "4"};
    const char *raw[5] = {"EVALSHA", NULL, "1", "t:fcall", "4"};
    int f, fail, f2, done = 0;

    (void)state;
    cli(&srv, "OK", "FUNCTION", "FLUSH", NULL, NULL);
    r = client_new(&cfg, NULL);
    r2 = client_new(&cfg, NULL);
    /* A library is named on its first line. */
    assert_int_equal(cmn_redis_function_add(r, "f", "#!lua\nreturn 1", "f"), CMN_EINVAL);
    f = cmn_redis_function_add(r, "incrby", lib_src, "t_incrby");
    fail = cmn_redis_function_add(r, "fail", lib_src, "t_fail");
    f2 = cmn_redis_function_add(r2, "incrby", lib_src, "t_incrby");
    assert_int_equal(f, 0);
    assert_int_equal(fail, 1);
    assert_int_equal(f2, 0);
    assert_string_not_equal(cmn_redis_script_sha(r, f), cmn_redis_script_sha(r, fail));
    /* Both get ready: the second FUNCTION LOAD of the library is answered "already exists". */
    wait_ready(r);
    wait_ready(r2);

    command(r, &del, "DEL", "t:fcall", NULL);
    assert_int_equal(cmn_redis_evalsha(r, f, 1, 2, argv, NULL, on_result, &a), 0);
    assert_int_equal(cmn_redis_evalsha(r, fail, 0, 0, NULL, NULL, on_result, &e), 0);
    wait_result(&e);
    assert_int_equal(a.status, 0);
    assert_int_equal(a.type, REDIS_REPLY_INTEGER);
    assert_int_equal(a.integer, 4);
    assert_int_equal(e.type, REDIS_REPLY_ERROR);
    assert_string_equal(e.str, "MYERR no luck");
    assert_int_equal(cmn_redis_evalsha(r2, f2, 1, 2, argv, NULL, on_result, &two), 0);
    wait_result(&two);
    assert_int_equal(two.integer, 8);
    assert_int_equal(cmn_redis_stats(r)->noscript_reloads, 0);
    assert_int_equal(cmn_redis_stats(r2)->noscript_reloads, 0);

    /* The server lost its functions: loaded again, the call retried once, behind a command sent
     * after it. */
    cli(&srv, "OK", "FUNCTION", "FLUSH", NULL, NULL);
    assert_int_equal(cmn_redis_evalsha(r, f, 1, 2, argv, NULL, on_result, &b), 0);
    command(r, &after, "PING", NULL, NULL);
    wait_result(&b);
    assert_int_equal(b.status, 0);
    assert_int_equal(b.integer, 12);
    assert_true(after.order < b.order);
    assert_int_equal(cmn_redis_stats(r)->noscript_reloads, 1);

    /* EVALSHA <id> spelt out through cmn_redis_command is sent as FCALL, with the same retry. */
    cli(&srv, "OK", "FUNCTION", "FLUSH", NULL, NULL);
    raw[1] = cmn_redis_script_sha(r, f);
    assert_int_equal(cmn_redis_command(r, on_result, &c, 5, raw, NULL), 0);
    wait_result(&c);
    assert_int_equal(c.status, 0);
    assert_int_equal(c.integer, 16);
    assert_int_equal(cmn_redis_stats(r)->noscript_reloads, 2);
    assert_int_equal(cmn_redis_stats(r)->errors, 1); /* MYERR only */
    cmn_redis_close(r2, on_done, &done);
    close_all(r);
    assert_int_equal(done, 1);
}

static void test_command_timeout(void **state)
{
    park_redis_server_t s;
    cmn_cfg_redis_t cfg;
    struct states st = {0};
    cmn_redis_t *r;
    struct result sleep = {0}, behind = {0}, ping = {0};

    (void)state;
    assert_int_equal(park_redis_server_start(&s, 0), 0);
    cfg = cfg_for(s.port);
    cfg.command_timeout_ms = 100;
    r = client_new(&cfg, &st);
    wait_ready(r);
    /* DEBUG SLEEP stalls the whole server: the client sees no answer for 500 ms. */
    command(r, &sleep, "DEBUG", "SLEEP", "0.5");
    command(r, &behind, "PING", NULL, NULL);
    assert_true(run_until(client_not_ready, r, READY_WAIT_MS));
    wait_result(&behind);
    assert_int_equal(sleep.calls, 1);
    assert_int_equal(sleep.status, CMN_ETIMEOUT);
    assert_int_equal(behind.status, CMN_EIO);
    assert_true(sleep.order < behind.order);
    assert_true(cmn_redis_stats(r)->timeouts >= 1);
    assert_int_equal(st.n, 2);
    assert_int_equal(st.v[1], 0);

    /* It comes back by itself once the server answers again. */
    wait_ready(r);
    assert_int_equal(st.v[st.n - 1], 1);
    assert_true(cmn_redis_stats(r)->reconnects >= 1);
    command(r, &ping, "PING", NULL, NULL);
    wait_result(&ping);
    assert_int_equal(ping.status, 0);
    assert_string_equal(ping.str, "PONG");
    assert_true(cmn_redis_stats(r)->errors >= 2);
    close_all(r);
    park_redis_server_destroy(&s);
}

static void test_server_restart(void **state)
{
    park_redis_server_t s;
    cmn_cfg_redis_t cfg;
    struct states st = {0};
    cmn_redis_t *r;
    struct result set = {0}, blpop = {0}, down = {0}, get = {0};
    const char *blpop_argv[3] = {"BLPOP", "t:empty", "10"};
    unsigned long long reconnects;

    (void)state;
    assert_int_equal(park_redis_server_start(&s, 0), 0);
    cfg = cfg_for(s.port);
    cfg.command_timeout_ms = 20000; /* longer than the BLPOP: only the loss may end it */
    r = client_new(&cfg, &st);
    wait_ready(r);
    command(r, &set, "SET", "t:kept", "in the aof");
    assert_int_equal(cmn_redis_command(r, on_result, &blpop, 3, blpop_argv, NULL), 0);
    wait_result(&set);
    run_for(50); /* the BLPOP is in flight */
    assert_int_equal(blpop.calls, 0);

    assert_int_equal(park_redis_server_stop(&s), 0);
    wait_result(&blpop);
    assert_int_equal(blpop.status, CMN_EIO);
    assert_int_equal(cmn_redis_ready(r), 0);
    assert_int_equal(st.n, 2);
    assert_int_equal(st.v[1], 0);
    command(r, &down, "GET", "t:kept", NULL);
    assert_int_equal(down.calls, 0);
    wait_result(&down);
    assert_int_equal(down.status, CMN_EIO);
    run_for(400); /* refused attempts after 50..100 ms, then 100..200 ms more */
    reconnects = cmn_redis_stats(r)->reconnects;
    assert_true(reconnects >= 2);
    assert_int_equal(cmn_redis_ready(r), 0);
    assert_int_equal(st.n, 2);

    assert_int_equal(park_redis_server_restart(&s), 0);
    wait_ready(r);
    assert_int_equal(st.n, 3);
    assert_int_equal(st.v[2], 1);
    command(r, &get, "GET", "t:kept", NULL);
    wait_result(&get);
    assert_int_equal(get.status, 0);
    assert_string_equal(get.str, "in the aof");
    close_all(r);
    park_redis_server_destroy(&s);
}

static void test_connection_refused(void **state)
{
    cmn_cfg_redis_t cfg = cfg_for(closed_port());
    struct states st = {0};
    cmn_redis_t *r;
    struct result res = {0};

    (void)state;
    /* A long connect timeout: refusals must be noticed from the socket, not from the timer. */
    cfg.connect_timeout_ms = 10000;
    r = client_new(&cfg, &st);
    run_for(400);
    assert_int_equal(cmn_redis_ready(r), 0);
    assert_true(cmn_redis_stats(r)->reconnects >= 2);
    command(r, &res, "PING", NULL, NULL);
    wait_result(&res);
    assert_int_equal(res.status, CMN_EIO);
    assert_int_equal(st.n, 0);
    close_all(r);
}

static void test_connect_timeout(void **state)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    int lfd, filler;
    cmn_cfg_redis_t cfg;
    struct states st = {0};
    cmn_redis_t *r;
    struct result res = {0};

    (void)state;
    /* A listener that never accepts, its queue filled by one connection: Linux drops further
     * SYNs, so the client's connect neither completes nor fails. */
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(lfd, 0), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
    filler = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(filler, (struct sockaddr *)&a, sizeof a), 0);

    cfg = cfg_for(ntohs(a.sin_port));
    cfg.connect_timeout_ms = 150;
    r = client_new(&cfg, &st);
    /* Attempts at 0 ms and, after the 150 ms timeout and 50..100 ms of backoff, at 200..250 ms.
     * A command timeout (2 s) cannot explain a new attempt this early. */
    run_for(500);
    assert_int_equal(cmn_redis_ready(r), 0);
    assert_true(cmn_redis_stats(r)->reconnects >= 1);
    command(r, &res, "PING", NULL, NULL);
    wait_result(&res);
    assert_int_equal(res.status, CMN_EIO);
    assert_int_equal(st.n, 0);
    close_all(r);
    close(filler);
    close(lfd);
}

static void test_unix_socket_missing(void **state)
{
    cmn_cfg_redis_t cfg = cfg_for(srv.port);
    cmn_redis_t *r;
    struct result res = {0};
    char path[] = "/nonexistent/park/redis.sock";

    (void)state;
    cfg.host = NULL;
    cfg.unix_path = path;
    r = client_new(&cfg, NULL);
    run_for(250);
    assert_int_equal(cmn_redis_ready(r), 0);
    assert_true(cmn_redis_stats(r)->reconnects >= 1);
    command(r, &res, "PING", NULL, NULL);
    wait_result(&res);
    assert_int_equal(res.status, CMN_EIO);
    close_all(r);
}

static void test_hostname(void **state)
{
    cmn_cfg_redis_t cfg = cfg_for(srv.port);
    char host[] = "localhost";
    cmn_redis_t *r;
    struct result res = {0};

    (void)state;
    cfg.host = host; /* resolved with uv_getaddrinfo, IPv4 addresses tried first */
    r = client_new(&cfg, NULL);
    wait_ready(r);
    command(r, &res, "PING", NULL, NULL);
    wait_result(&res);
    assert_int_equal(res.status, 0);
    assert_string_equal(res.str, "PONG");
    close_all(r);
}

static void test_password(void **state)
{
    static const char pass[] = "pa ss\"w\x01rd";
    static char wrong[] = "not it";
    park_redis_server_t s;
    cmn_cfg_redis_t good, bad, none;
    cmn_redis_t *rg, *rb, *rn;
    struct result pg = {0}, pb = {0}, pn = {0};
    int done = 0;

    (void)state;
    assert_int_equal(park_redis_server_start(&s, 0), 0);
    cli(&s, "OK", "CONFIG", "SET", "requirepass", pass);
    good = bad = none = cfg_for(s.port);
    good.password.data = (unsigned char *)pass;
    good.password.len = sizeof pass - 1;
    bad.password.data = (unsigned char *)wrong;
    bad.password.len = sizeof wrong - 1;
    rg = client_new(&good, NULL);
    rb = client_new(&bad, NULL);
    rn = client_new(&none, NULL);
    wait_ready(rg);
    run_for(300);
    assert_int_equal(cmn_redis_ready(rb), 0);
    assert_int_equal(cmn_redis_ready(rn), 0);
    command(rg, &pg, "PING", NULL, NULL);
    command(rb, &pb, "PING", NULL, NULL);
    command(rn, &pn, "PING", NULL, NULL);
    wait_result(&pg);
    wait_result(&pb);
    wait_result(&pn);
    assert_int_equal(pg.status, 0);
    assert_string_equal(pg.str, "PONG");
    assert_int_equal(pb.status, CMN_EIO);
    assert_int_equal(pn.status, CMN_EIO);
    cmn_redis_close(rg, on_done, &done);
    cmn_redis_close(rb, on_done, &done);
    cmn_redis_close(rn, on_done, &done);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(done, 3);
    assert_int_equal(uv_loop_close(&loop), 0);
    park_redis_server_destroy(&s);
}

static void test_cluster_scripts(void **state)
{
    /* Redis 7 script flags need the shebang; without flags a script may not use keys of two
     * slots. */
    static const char two_src[] = "#!lua\n"
                                  "redis.call('SET', KEYS[1], ARGV[1])\n"
                                  "return redis.call('SET', KEYS[2], ARGV[1])\n";
    /* Touches KEYS[1] and ARGV[2], a key it does not declare. */
    static const char undeclared_src[] = "#!lua\n"
                                         "redis.call('SET', KEYS[1], ARGV[1])\n"
                                         "return redis.call('SET', ARGV[2], ARGV[1])\n";
    /* Declares no key at all. */
    static const char nokeys_src[] = "#!lua\n"
                                     "redis.call('SET', ARGV[1], 'v')\n"
                                     "return redis.call('SET', ARGV[2], 'v')\n";
    static const char legacy_src[] = "redis.call('SET', KEYS[1], ARGV[1])\n"
                                     "return redis.call('SET', ARGV[2], ARGV[1])\n";
    park_redis_server_t s;
    cmn_cfg_redis_t cfg;
    cmn_redis_t *r;
    struct result cross = {0}, same = {0}, und_same = {0}, und_other = {0}, legacy = {0};
    struct result none_same = {0}, none_cross = {0};
    const char *argv[4];
    int two, und, nok, leg;

    (void)state;
    assert_int_equal(park_redis_server_start(&s, 1), 0);
    cfg = cfg_for(s.port);
    r = client_new(&cfg, NULL);
    two = cmn_redis_script_add(r, "two", two_src);
    und = cmn_redis_script_add(r, "undeclared", undeclared_src);
    nok = cmn_redis_script_add(r, "nokeys", nokeys_src);
    leg = cmn_redis_script_add(r, "legacy", legacy_src);
    wait_ready(r);

    /* Declared keys of two slots: refused before the script runs. */
    argv[0] = "t:a", argv[1] = "t:b", argv[2] = "v";
    assert_int_equal(cmn_redis_evalsha(r, two, 2, 3, argv, NULL, on_result, &cross), 0);
    /* One hash tag, one slot: runs. */
    argv[0] = "{t}a", argv[1] = "{t}b", argv[2] = "v";
    assert_int_equal(cmn_redis_evalsha(r, two, 2, 3, argv, NULL, on_result, &same), 0);
    /* Undeclared key of the declared key's slot: Redis 7.0.15 lets it through. */
    argv[0] = "{t}a", argv[1] = "v", argv[2] = "{t}undeclared";
    assert_int_equal(cmn_redis_evalsha(r, und, 1, 3, argv, NULL, on_result, &und_same), 0);
    /* Undeclared key of another slot: refused while the script runs. */
    argv[0] = "{t}a", argv[1] = "v", argv[2] = "t:other";
    assert_int_equal(cmn_redis_evalsha(r, und, 1, 3, argv, NULL, on_result, &und_other), 0);
    /* The same script without the shebang (compatibility mode) may cross slots. */
    assert_int_equal(cmn_redis_evalsha(r, leg, 1, 3, argv, NULL, on_result, &legacy), 0);
    /* No declared key: the first key touched fixes the slot. */
    argv[0] = "{t}x", argv[1] = "{t}y";
    assert_int_equal(cmn_redis_evalsha(r, nok, 0, 2, argv, NULL, on_result, &none_same), 0);
    argv[0] = "t:a", argv[1] = "t:b";
    assert_int_equal(cmn_redis_evalsha(r, nok, 0, 2, argv, NULL, on_result, &none_cross), 0);
    wait_result(&none_cross);

    assert_int_equal(cross.status, 0);
    assert_int_equal(cross.type, REDIS_REPLY_ERROR);
    assert_memory_equal(cross.str, "CROSSSLOT", 9);
    assert_int_equal(same.status, 0);
    assert_int_equal(same.type, REDIS_REPLY_STATUS);
    assert_string_equal(same.str, "OK");
    assert_int_equal(und_same.type, REDIS_REPLY_STATUS);
    assert_string_equal(und_same.str, "OK");
    assert_int_equal(und_other.status, 0);
    assert_int_equal(und_other.type, REDIS_REPLY_ERROR);
    assert_non_null(
        strstr(und_other.str, "Script attempted to access keys that do not hash to the same slot"));
    assert_int_equal(legacy.type, REDIS_REPLY_STATUS);
    assert_string_equal(legacy.str, "OK");
    assert_int_equal(none_same.type, REDIS_REPLY_STATUS);
    assert_string_equal(none_same.str, "OK");
    assert_int_equal(none_cross.type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(none_cross.str,
                           "Script attempted to access keys that do not hash to the same slot"));
    assert_int_equal(cmn_redis_stats(r)->errors, 3);
    close_all(r);
    park_redis_server_destroy(&s);
}

static void test_close_in_flight(void **state)
{
    cmn_cfg_redis_t cfg = cfg_for(srv.port);
    cmn_redis_t *r = client_new(&cfg, NULL);
    struct result res[3] = {{0}};
    const char *blpop[3] = {"BLPOP", "t:empty", "5"};
    int done = 0;

    (void)state;
    wait_ready(r);
    assert_int_equal(cmn_redis_command(r, on_result, &res[0], 3, blpop, NULL), 0);
    command(r, &res[1], "GET", "t:x", NULL);
    command(r, &res[2], "PING", NULL, NULL);
    cmn_redis_close(r, on_done, &done);
    for (int i = 0; i < 3; i++)
        assert_int_equal(res[i].calls, 0);
    assert_int_equal(done, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(res[i].calls, 1);
        assert_int_equal(res[i].status, CMN_EIO);
        assert_int_equal(res[i].order, i + 1); /* in the order they were sent */
    }
    assert_int_equal(done, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

struct closer {
    cmn_redis_t *r;
    struct result res;
    int done;
};

static void close_on_reply(void *data, int status, redisReply *reply)
{
    struct closer *c = data;

    on_result(&c->res, status, reply);
    cmn_redis_close(c->r, on_done, &c->done);
}

static void test_close_from_callback(void **state)
{
    cmn_cfg_redis_t cfg = cfg_for(srv.port);
    struct closer c = {0};
    struct result later[2] = {{0}};
    const char *ping[1] = {"PING"};

    (void)state;
    c.r = client_new(&cfg, NULL);
    wait_ready(c.r);
    assert_int_equal(cmn_redis_command(c.r, close_on_reply, &c, 1, ping, NULL), 0);
    command(c.r, &later[0], "PING", NULL, NULL);
    command(c.r, &later[1], "PING", NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(c.res.calls, 1);
    assert_int_equal(c.res.status, 0);
    assert_string_equal(c.res.str, "PONG");
    /* Even when their replies came in the same read as the first one, hiredis drops them once
     * the context is being freed: each fails, once. */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(later[i].calls, 1);
        assert_int_equal(later[i].status, CMN_EIO);
    }
    assert_int_equal(c.done, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

struct state_closer {
    cmn_redis_t *r;
    struct states st;
    int done;
};

static void close_on_loss(void *data, int ready)
{
    struct state_closer *c = data;

    on_state(&c->st, ready);
    if (!ready)
        cmn_redis_close(c->r, on_done, &c->done);
}

static void test_close_from_state_cb(void **state)
{
    park_redis_server_t s;
    cmn_cfg_redis_t cfg;
    struct state_closer c = {0};
    struct result res = {0};
    const char *blpop[3] = {"BLPOP", "t:empty", "10"};

    (void)state;
    assert_int_equal(park_redis_server_start(&s, 0), 0);
    cfg = cfg_for(s.port);
    c.r = client_new(&cfg, NULL);
    cmn_redis_set_state_cb(c.r, close_on_loss, &c);
    wait_ready(c.r);
    assert_int_equal(cmn_redis_command(c.r, on_result, &res, 3, blpop, NULL), 0);
    run_for(50);
    /* The loss is noticed inside hiredis's disconnect path, where the state callback closes. */
    assert_int_equal(park_redis_server_stop(&s), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(c.st.n, 2);
    assert_int_equal(c.st.v[1], 0);
    assert_int_equal(res.calls, 1);
    assert_int_equal(res.status, CMN_EIO);
    assert_int_equal(c.done, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
    park_redis_server_destroy(&s);
}

static void test_close_before_connect(void **state)
{
    cmn_cfg_redis_t cfg = cfg_for(srv.port);
    char host[] = "localhost";
    cmn_redis_t *a, *b;
    int done = 0;

    (void)state;
    a = client_new(&cfg, NULL);
    cmn_redis_close(a, on_done, &done);
    assert_int_equal(done, 0);
    /* b is closed while its name is being resolved on the thread pool. */
    cfg.host = host;
    b = client_new(&cfg, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_false(cmn_redis_ready(b));
    cmn_redis_close(b, on_done, &done);
    assert_true(done <= 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(done, 2);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_connect_ready, test_setup),
        cmocka_unit_test_setup(test_not_ready_fails_later, test_setup),
        cmocka_unit_test_setup(test_bad_arguments, test_setup),
        cmocka_unit_test_setup(test_set_get, test_setup),
        cmocka_unit_test_setup(test_pipeline_order, test_setup),
        cmocka_unit_test_setup(test_binary_args, test_setup),
        cmocka_unit_test_setup(test_evalsha, test_setup),
        cmocka_unit_test_setup(test_noscript_reload, test_setup),
        cmocka_unit_test_setup(test_functions, test_setup),
        cmocka_unit_test_setup(test_command_timeout, test_setup),
        cmocka_unit_test_setup(test_server_restart, test_setup),
        cmocka_unit_test_setup(test_connection_refused, test_setup),
        cmocka_unit_test_setup(test_connect_timeout, test_setup),
        cmocka_unit_test_setup(test_unix_socket_missing, test_setup),
        cmocka_unit_test_setup(test_hostname, test_setup),
        cmocka_unit_test_setup(test_password, test_setup),
        cmocka_unit_test_setup(test_cluster_scripts, test_setup),
        cmocka_unit_test_setup(test_close_in_flight, test_setup),
        cmocka_unit_test_setup(test_close_from_callback, test_setup),
        cmocka_unit_test_setup(test_close_from_state_cb, test_setup),
        cmocka_unit_test_setup(test_close_before_connect, test_setup),
    };

    return cmocka_run_group_tests_name("common/redis", tests, group_setup, group_teardown);
}
