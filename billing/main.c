/*
 * billing: settles bills after the driver has left, and runs the credit lifecycle.
 *
 *   billing [--config FILE] [--clock-file FILE]
 *
 * --clock-file (tests): a file holding a number of seconds added to the wall clock, read at every
 * use, so tests move billing days ahead without sleeping.  SIGTERM/SIGINT: stop taking work, let
 * requests in flight finish, exit 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "billing.h"
#include "cmn/diag.h"
#include "cmn/err.h"
#include "cmn/log.h"
#include "cmn/lua.h"
#include "cmn/mem.h"

const char *const bill_script_names[BILL_LUA_COUNT] = {
    "bill_intake",   "bill_step",      "bill_result",    "due_claim",   "driver_bill",
    "driver_settle", "driver_overdue", "driver_default", "plate_mirror",  "bill_refund_result",
    "driver_eligibility", "wx_deduction", "bill_ack"};

static bill_t bill;
static uv_signal_t sig_term, sig_int;
static uv_timer_t drain;

int64_t bill_now(const bill_t *b)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t offset = 0;
    if (b->clock_file != NULL) {
        /* A few bytes from a local file, read on purpose each time: tests change it while we
         * run.  Small enough not to matter on the loop. */
        FILE *f = fopen(b->clock_file, "r");
        if (f != NULL) {
            char buf[32] = "";
            if (fgets(buf, sizeof buf, f) != NULL)
                offset = strtoll(buf, NULL, 10);
            fclose(f);
        }
    }
    return (int64_t)ts.tv_sec + offset;
}

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

static void on_redis_closed(void *data)
{
    (void)data;
    bill.redis = NULL;
    uv_close((uv_handle_t *)&sig_term, on_closed);
    uv_close((uv_handle_t *)&sig_int, on_closed);
    uv_close((uv_handle_t *)&drain, on_closed);
}

static void on_http_closed(void *data)
{
    (void)data;
    bill.http = NULL;
    cmn_redis_close(bill.redis, on_redis_closed, NULL);
}

/* Waits for charges in flight (bounded by their timeouts) before closing the clients. */
static void on_drain(uv_timer_t *t)
{
    if (bill.charges_in_flight > 0 || bill.reminders_in_flight > 0 || bill.wx_in_flight > 0 ||
        bill.settle_io > 0 || bill.ticking)
        return;
    uv_timer_stop(t);
    cmn_http_client_close(bill.http, on_http_closed, NULL);
}

static void on_stop(uv_signal_t *h, int signum)
{
    (void)h;
    if (bill.stopping)
        return;
    cmn_log(CMN_LOG_INFO, "stopping", "signal %d: finishing the charges in flight", signum);
    bill_worker_stop(&bill);
    uv_timer_start(&drain, on_drain, 0, 50);
}

static void on_redis_state(void *data, int ready)
{
    (void)data;
    cmn_log(ready ? CMN_LOG_INFO : CMN_LOG_WARN, ready ? "ready" : "redis_down",
            ready ? "Redis ready, scripts loaded" : "Redis is not ready: billing waits");
}

int main(int argc, char **argv)
{
    const char *path = "config/platform.json";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--clock-file") == 0 && i + 1 < argc)
            bill.clock_file = argv[++i];
        else {
            fprintf(stderr, "usage: billing [--config FILE] [--clock-file FILE]\n");
            return 2;
        }
    }
    cmn_diag_t d;
    cmn_diag_init(&d);
    if (cmn_config_load(path, &bill.cfg, &d) != 0) {
        cmn_diag_print(&d, "billing: ", stderr);
        fprintf(stderr, "billing: %s: %zu problems; not starting\n", path, d.n);
        cmn_diag_dispose(&d);
        return 2;
    }
    cmn_diag_dispose(&d);
    cmn_log_init("billing", (cmn_log_level_t)cmn_log_level_parse(bill.cfg->log_level), 2);
    signal(SIGPIPE, SIG_IGN);
    if (bill_wx_init(&bill) != 0) {
        fprintf(stderr, "billing: %s: a WeChat Pay key is unusable; not starting\n", path);
        bill_wx_dispose(&bill);
        cmn_config_free(bill.cfg);
        return 2;
    }

    char host[64] = "host";
    gethostname(host, sizeof host - 1);
    snprintf(bill.consumer, sizeof bill.consumer, "%.60s-%ld", host, (long)getpid());
    const char *tick = getenv("PARK_BILLING_TICK_MS");
    bill.tick_ms = tick ? (uint64_t)strtoull(tick, NULL, 10) : 200;
    if (bill.tick_ms == 0)
        bill.tick_ms = 200;
    bill.loop = uv_default_loop();

    int rc = cmn_redis_new(bill.loop, &bill.cfg->redis, &bill.redis);
    if (rc != 0) {
        fprintf(stderr, "billing: cannot start the Redis client: %s\n", cmn_strerror(rc));
        return 1;
    }
    for (int i = 0; i < BILL_LUA_COUNT; i++) {
        if ((bill.scripts[i] = cmn_lua_register(bill.redis, bill_script_names[i])) < 0) {
            fprintf(stderr, "billing: script %s is missing\n", bill_script_names[i]);
            return 1;
        }
    }
    cmn_redis_set_state_cb(bill.redis, on_redis_state, NULL);
    rc = cmn_http_client_new(bill.loop, (size_t)bill.cfg->billing.max_in_flight, &bill.http);
    if (rc != 0) {
        fprintf(stderr, "billing: cannot start the HTTP client: %s\n", cmn_strerror(rc));
        return 1;
    }
    uv_signal_init(bill.loop, &sig_term);
    uv_signal_init(bill.loop, &sig_int);
    uv_timer_init(bill.loop, &drain);
    uv_signal_start(&sig_term, on_stop, SIGTERM);
    uv_signal_start(&sig_int, on_stop, SIGINT);
    bill_worker_start(&bill);
    cmn_log(CMN_LOG_INFO, "started", "billing as consumer %s for %zu lots", bill.consumer,
            bill.cfg->nlots);

    uv_run(bill.loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(bill.loop);
    cmn_log(CMN_LOG_INFO, "exit",
            "billing stopped: %llu bills taken, %llu attempts, %llu paid, %llu declined, "
            "%llu retried, %llu alerts%s",
            bill.stats.taken, bill.stats.attempts, bill.stats.paid, bill.stats.declined,
            bill.stats.transient, bill.stats.alerts, rc == 0 ? "" : " (handles left open)");
    bill_worker_dispose(&bill);
    bill_wx_dispose(&bill);
    cmn_config_free(bill.cfg);
    return 0;
}
