/*
 * gateway: the lane API server.
 *
 *   gateway [--config FILE] [--port-file FILE]
 *
 * One libuv loop serves HTTP (http.c), talks to Redis (cmn/redis.h) and handles signals:
 * SIGTERM/SIGINT stop accepting, let requests in flight finish, then exit 0; SIGHUP reloads the
 * configuration and tariffs (a bad new configuration is refused with its problems and the old one
 * stays in force).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmn/config.h"
#include "cmn/diag.h"
#include "cmn/err.h"
#include "cmn/log.h"
#include "cmn/mem.h"
#include "gw.h"
#include "web.h"
#include "cmn/lua.h"
#include "cmn/rargs.h"

static const char *const script_names[GW_LUA_COUNT] = {
    "entry",      "exit_lookup", "exit_commit", "session_get", "session_paid", "driver_put",
    "driver_get", "driver_del",  "driver_bill", "plate_claim", "plate_mirror", "bill_get",
    "bill_request_charge", "bill_refund", "bill_waive", "driver_settle", "notify_queue",
    /* the people's API (api.h) */
    "dispute_open", "dispute_resolve", "driver_reinstate", "default_list", "default_figures",
    "default_bill", "default_driver", "audit_list", "lane_open", "lane_access", "lane_reassign",
    "lane_correct", "driver_reprice",
    /* startup */
    "lot_migrate"};

static gw_t gw;
static uv_signal_t sig_term, sig_int, sig_hup;
static const char *port_file;

/* ---- configuration snapshots and tariffs ------------------------------------------------- */

gw_conf_t *gw_conf_ref(gw_t *g)
{
    g->conf->refs++;
    return g->conf;
}

void gw_conf_unref(gw_conf_t *c)
{
    if (c != NULL && --c->refs == 0) {
        cmn_config_free(c->cfg);
        cmn_free(c);
    }
}

int64_t gw_now(const gw_t *g)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec + g->clock_offset;
}

const cmn_tariff_t *gw_tariff_by_version(gw_t *g, const char *version)
{
    for (size_t i = 0; i < g->ntariffs; i++) {
        if (strcmp(g->tariffs[i].version, version) == 0)
            return g->tariffs[i].tariff;
    }
    return NULL;
}

const cmn_tariff_t *gw_tariff_learn(gw_t *g, const char *version, const char *json, size_t len)
{
    const cmn_tariff_t *known = gw_tariff_by_version(g, version);
    if (known != NULL)
        return known;
    cmn_diag_t d;
    cmn_tariff_t *t;
    cmn_diag_init(&d);
    int rc = cmn_tariff_load_text("redis", json, len, &t, &d);
    cmn_diag_dispose(&d);
    if (rc != 0)
        return NULL;
    if (strcmp(cmn_tariff_version(t), version) != 0) {
        /* Not the content that version names: never charge by it. */
        cmn_tariff_free(t);
        return NULL;
    }
    g->tariffs = cmn_xrealloc(g->tariffs, (g->ntariffs + 1) * sizeof *g->tariffs);
    gw_tariff_entry_t *e = &g->tariffs[g->ntariffs++];
    snprintf(e->version, sizeof e->version, "%s", version);
    e->tariff = t;
    return t;
}

static void learn_config_tariffs(const cmn_config_t *cfg)
{
    for (size_t i = 0; i < cfg->ntariffs; i++) {
        const char *canon = cmn_tariff_canonical(cfg->tariffs[i]);
        gw_tariff_learn(&gw, cmn_tariff_version(cfg->tariffs[i]), canon, strlen(canon));
    }
}

/* ---- Redis: each lot's tariff stored before entries name it ------------------------------ */

static int tariff_stores_pending;
static int tariff_store_failed;
static int migrate_pending; /* a lot still has open sessions of the old layout to move */
static char migrate_tag;     /* marks lot_migrate's answers */
static uv_timer_t tariff_retry;

static void store_tariffs(const cmn_config_t *cfg);

static void on_tariff_retry(uv_timer_t *t)
{
    (void)t;
    if (!gw.stopping && gw.redis != NULL && cmn_redis_ready(gw.redis))
        store_tariffs(gw.conf->cfg);
}

static void on_tariff_stored(void *data, int status, redisReply *r)
{
    if (data == &migrate_tag && status == 0 && r != NULL && r->type == REDIS_REPLY_INTEGER) {
        /* lot_migrate: while open sessions of the old layout are left, again at once, a batch
         * at a time (the lane events wait: they would not find those sessions). */
        if (r->integer > 0) {
            if (!migrate_pending)
                cmn_log(CMN_LOG_INFO, "migrate", "moving open sessions into buckets: %lld left "
                        "at a lot", (long long)r->integer);
            migrate_pending = 1;
        }
    } else if (status != 0 || r == NULL || r->type == REDIS_REPLY_ERROR) {
        /* E.g. CLUSTERDOWN while a restarted cluster node settles: try again shortly. */
        if (!tariff_store_failed)
            cmn_log(CMN_LOG_ERROR, "tariff_store", "storing a tariff in Redis failed: %s",
                    status ? cmn_strerror(status) : r->str);
        tariff_store_failed = 1;
    }
    if (--tariff_stores_pending > 0)
        return;
    if (tariff_store_failed || migrate_pending) {
        if (!gw.stopping)
            uv_timer_start(&tariff_retry, on_tariff_retry, tariff_store_failed ? 250 : 1, 0);
        return;
    }
    gw.tariffs_stored = 1;
    cmn_log(CMN_LOG_INFO, "ready", "Redis ready, scripts loaded, tariffs stored");
}

/* Sent on every (re)connection and after a reload: the commands go out before any later script
 * call on the same connection, so no entry can name a version Redis does not have. */
static void store_tariffs(const cmn_config_t *cfg)
{
    cmn_rargs_t *a = cmn_xalloc(sizeof *a);
    tariff_stores_pending = 0;
    tariff_store_failed = 0;
    migrate_pending = 0;
    for (size_t i = 0; i < cfg->nlots; i++) {
        const cmn_cfg_lot_t *lot = &cfg->lots[i];
        const char *canon = cmn_tariff_canonical(lot->tariff);
        cmn_rargs_init(a);
        cmn_rargs_str(a, "HSET");
        cmn_rargs_fmt(a, "pk:{%s}:tariffs", lot->id);
        cmn_rargs_str(a, cmn_tariff_version(lot->tariff));
        cmn_rargs_str(a, canon);
        if (cmn_redis_command(gw.redis, on_tariff_stored, NULL, a->n, a->v, a->len) == 0)
            tariff_stores_pending++;
        /* Open sessions kept before the buckets (docs/redis.md) move into them first. */
        cmn_rargs_init(a);
        cmn_rargs_str(a, "EVALSHA");
        cmn_rargs_str(a, cmn_redis_script_sha(gw.redis, gw.scripts[GW_LUA_LOT_MIGRATE]));
        cmn_rargs_str(a, "2");
        cmn_rargs_fmt(a, "pk:{%s}:open", lot->id);
        cmn_rargs_fmt(a, "pk:{%s}:fold", lot->id);
        cmn_rargs_str(a, "2000");
        if (cmn_redis_command(gw.redis, on_tariff_stored, &migrate_tag, a->n, a->v, a->len) == 0)
            tariff_stores_pending++;
    }
    cmn_free(a);
}

static void on_redis_state(void *data, int ready)
{
    (void)data;
    if (!ready) {
        gw.tariffs_stored = 0;
        cmn_log(CMN_LOG_WARN, "redis_down", "Redis is not ready: lane events get 503");
        return;
    }
    store_tariffs(gw.conf->cfg);
}

/* ---- signals ----------------------------------------------------------------------------- */

static void on_signal_closed(uv_handle_t *h)
{
    (void)h;
}

static void on_redis_closed(void *data)
{
    (void)data;
    gw.redis = NULL;
    uv_close((uv_handle_t *)&sig_term, on_signal_closed);
    uv_close((uv_handle_t *)&sig_int, on_signal_closed);
    uv_close((uv_handle_t *)&sig_hup, on_signal_closed);
    uv_close((uv_handle_t *)&tariff_retry, on_signal_closed);
}

static void on_http_closed(void *data)
{
    (void)data;
    gw.http = NULL;
    cmn_log(CMN_LOG_INFO, "stopped", "requests in flight answered; closing Redis");
    cmn_redis_close(gw.redis, on_redis_closed, NULL);
}

static void on_stop(uv_signal_t *h, int signum)
{
    (void)h;
    if (gw.stopping)
        return;
    gw.stopping = 1;
    cmn_log(CMN_LOG_INFO, "stopping", "signal %d: finishing requests in flight", signum);
    cmn_httpd_close(gw.http, on_http_closed, NULL);
}

static cmn_httpd_config_t http_config(const cmn_config_t *cfg)
{
    cmn_httpd_config_t h = {
        .host = cfg->gateway.listen.host,
        .port = cfg->gateway.listen.port,
        .max_header_bytes = (size_t)cfg->gateway.max_header_bytes,
        .max_body_bytes = (size_t)cfg->gateway.max_body_bytes,
        .max_connections = (size_t)cfg->gateway.max_connections,
        .idle_timeout_ms = (uint64_t)cfg->gateway.idle_timeout_ms,
        .request_timeout_ms = (uint64_t)cfg->gateway.request_timeout_ms,
    };
    return h;
}

static void on_reload(uv_signal_t *h, int signum)
{
    (void)h;
    (void)signum;
    cmn_config_t *cfg;
    cmn_diag_t d;
    cmn_diag_init(&d);
    if (cmn_config_load(gw.config_path, &cfg, &d) != 0) {
        for (size_t i = 0; i < d.n; i++)
            cmn_log(CMN_LOG_ERROR, "reload_refused", "%s", d.msgs[i]);
        cmn_log(CMN_LOG_ERROR, "reload_refused",
                "configuration %s has %zu problems; the old one stays in force", gw.config_path,
                d.n);
        cmn_diag_dispose(&d);
        return;
    }
    cmn_diag_dispose(&d);
    const cmn_config_t *old = gw.conf->cfg;
    if (strcmp(old->gateway.listen.host, cfg->gateway.listen.host) != 0 ||
        old->gateway.listen.port != cfg->gateway.listen.port)
        cmn_log(CMN_LOG_WARN, "reload", "a new listen address takes a restart");
    if ((old->redis.host == NULL) != (cfg->redis.host == NULL) ||
        (old->redis.host && strcmp(old->redis.host, cfg->redis.host) != 0) ||
        old->redis.port != cfg->redis.port)
        cmn_log(CMN_LOG_WARN, "reload", "a new Redis address takes a restart");
    gw_conf_t *c = cmn_xcalloc(1, sizeof *c);
    c->refs = 1;
    c->cfg = cfg;
    learn_config_tariffs(cfg);
    char web_why[4400];
    int web = gw_static_load(cfg, web_why, sizeof web_why);
    if (web < 0)
        cmn_log(CMN_LOG_ERROR, "web", "dashboard: %s; the files read before stay in use", web_why);
    else
        cmn_log(web == 0 ? CMN_LOG_INFO : CMN_LOG_WARN, "web", "dashboard: %s", web_why);
    gw_conf_t *prev = gw.conf;
    gw.conf = c;
    gw_conf_unref(prev);
    cmn_httpd_config_t hc = http_config(cfg);
    cmn_httpd_set_limits(gw.http, &hc);
    if (cmn_redis_ready(gw.redis))
        store_tariffs(cfg);
    cmn_log(CMN_LOG_INFO, "reloaded", "configuration %s reloaded: %zu lots, %zu devices",
            gw.config_path, cfg->nlots, cfg->ndevices);
}

/* ---- main -------------------------------------------------------------------------------- */

static int usage(void)
{
    fprintf(stderr, "usage: gateway [--config FILE] [--port-file FILE]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *path = "config/platform.json";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--port-file") == 0 && i + 1 < argc)
            port_file = argv[++i];
        else
            return usage();
    }
    cmn_config_t *cfg;
    cmn_diag_t d;
    cmn_diag_init(&d);
    if (cmn_config_load(path, &cfg, &d) != 0) {
        cmn_diag_print(&d, "gateway: ", stderr);
        fprintf(stderr, "gateway: %s: %zu problems; not starting\n", path, d.n);
        cmn_diag_dispose(&d);
        return 2;
    }
    cmn_diag_dispose(&d);
    cmn_log_init("gateway", (cmn_log_level_t)cmn_log_level_parse(cfg->log_level), 2);
    /* A client that went away must cost a write error, not the process. */
    signal(SIGPIPE, SIG_IGN);

    const char *offset = getenv("PARK_CLOCK_OFFSET");
    gw.clock_offset = offset ? strtoll(offset, NULL, 10) : 0;
    gw.loop = uv_default_loop();
    gw.config_path = cmn_xstrdup(path);
    gw.conf = cmn_xcalloc(1, sizeof *gw.conf);
    gw.conf->refs = 1;
    gw.conf->cfg = cfg;
    learn_config_tariffs(cfg);

    /* The dashboard's files, read whole now (web.h): a set web_root that fails stops the start. */
    char web_why[4400];
    int web = gw_static_load(cfg, web_why, sizeof web_why);
    if (web < 0) {
        fprintf(stderr, "gateway: %s; not starting\n", web_why);
        return 2;
    }
    cmn_log(web == 0 ? CMN_LOG_INFO : CMN_LOG_WARN, "web", "dashboard: %s", web_why);

    int rc = cmn_redis_new(gw.loop, &cfg->redis, &gw.redis);
    if (rc != 0) {
        fprintf(stderr, "gateway: cannot start the Redis client: %s\n", cmn_strerror(rc));
        return 1;
    }
    for (int i = 0; i < GW_LUA_COUNT; i++) {
        if ((gw.scripts[i] = cmn_lua_register(gw.redis, script_names[i])) < 0) {
            fprintf(stderr, "gateway: script %s is missing\n", script_names[i]);
            return 1;
        }
    }
    cmn_redis_set_state_cb(gw.redis, on_redis_state, NULL);

    cmn_httpd_config_t hc = http_config(cfg);
    rc = cmn_httpd_start(gw.loop, &hc, gw_route, &gw, &gw.http);
    if (rc != 0) {
        fprintf(stderr, "gateway: cannot listen on %s:%d: %s\n", hc.host, hc.port,
                cmn_strerror(rc));
        return 1;
    }
    int port = cmn_httpd_port(gw.http);
    if (port_file != NULL) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (f == NULL || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0 ||
            rename(tmp, port_file) != 0) {
            fprintf(stderr, "gateway: cannot write %s: %s\n", port_file, strerror(errno));
            return 1;
        }
    }
    cmn_log(CMN_LOG_INFO, "listening", "lane API on %s:%d (%zu lots, %zu devices)", hc.host, port,
            cfg->nlots, cfg->ndevices);

    uv_timer_init(gw.loop, &tariff_retry);
    uv_signal_init(gw.loop, &sig_term);
    uv_signal_init(gw.loop, &sig_int);
    uv_signal_init(gw.loop, &sig_hup);
    uv_signal_start(&sig_term, on_stop, SIGTERM);
    uv_signal_start(&sig_int, on_stop, SIGINT);
    uv_signal_start(&sig_hup, on_reload, SIGHUP);

    uv_run(gw.loop, UV_RUN_DEFAULT);

    gw_conf_unref(gw.conf);
    for (size_t i = 0; i < gw.ntariffs; i++)
        cmn_tariff_free(gw.tariffs[i].tariff);
    cmn_free(gw.tariffs);
    gw_static_free();
    cmn_free(gw.config_path);
    rc = uv_loop_close(gw.loop);
    cmn_log(CMN_LOG_INFO, "exit", "gateway stopped%s", rc == 0 ? "" : " (handles left open)");
    return 0;
}
