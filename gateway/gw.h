#ifndef GW_GW_H
#define GW_GW_H

#include <stdint.h>
#include <uv.h>

#include "cmn/config.h"
#include "cmn/redis.h"
#include "cmn/tariff.h"
#include "cmn/httpd.h"
#include "metrics.h"

/*
 * The gateway's process-wide state.  Everything runs on the one loop thread.
 *
 * Configuration is held in a reference-counted snapshot (gw_conf_t): a request keeps the snapshot
 * it started with until it answers, so a SIGHUP reload swaps the current snapshot without pulling
 * the configuration from under requests in flight.
 */

/** Handles of the Redis scripts the gateway calls (common/lua), in the order of script_names[]. */
enum {
    GW_LUA_ENTRY = 0,
    GW_LUA_EXIT_LOOKUP,
    GW_LUA_EXIT_COMMIT,
    GW_LUA_SESSION_GET,
    GW_LUA_SESSION_PAID,
    GW_LUA_DRIVER_PUT,
    GW_LUA_DRIVER_GET,
    GW_LUA_DRIVER_DEL,
    GW_LUA_DRIVER_BILL,
    GW_LUA_PLATE_CLAIM,
    GW_LUA_PLATE_MIRROR,
    GW_LUA_BILL_GET,
    GW_LUA_BILL_REQUEST_CHARGE,
    GW_LUA_BILL_REFUND,
    GW_LUA_BILL_WAIVE,
    GW_LUA_DRIVER_SETTLE,
    GW_LUA_NOTIFY_QUEUE,
    /* The people's API (api.h, docs/api.md). */
    GW_LUA_DISPUTE_OPEN,
    GW_LUA_DISPUTE_RESOLVE,
    GW_LUA_DRIVER_REINSTATE,
    GW_LUA_DEFAULT_LIST,
    GW_LUA_DEFAULT_FIGURES,
    GW_LUA_DEFAULT_BILL,
    GW_LUA_DEFAULT_DRIVER,
    GW_LUA_AUDIT_LIST,
    GW_LUA_LANE_OPEN,
    GW_LUA_LANE_ACCESS,
    GW_LUA_LANE_REASSIGN,
    GW_LUA_LANE_CORRECT,
    GW_LUA_DRIVER_REPRICE,
    GW_LUA_LOT_MIGRATE,
    GW_LUA_COUNT
};

typedef struct gw_conf {
    int refs;
    cmn_config_t *cfg;
} gw_conf_t;

/** A tariff known by version: loaded from configuration or from Redis, kept for the process. */
typedef struct gw_tariff_entry {
    char version[17];
    cmn_tariff_t *tariff; /* owned */
} gw_tariff_entry_t;

typedef struct gw {
    uv_loop_t *loop;
    gw_conf_t *conf; /* current */
    char *config_path;
    cmn_httpd_t *http;
    cmn_redis_t *redis;
    int scripts[GW_LUA_COUNT];
    gw_tariff_entry_t *tariffs;
    size_t ntariffs;
    /* Each lot's current tariff must be in Redis (pk:{L}:tariffs) before an entry can name it. */
    int tariffs_stored;
    int tariffs_storing;
    gw_metrics_t metrics;
    int64_t clock_offset; /* tests: added to the wall clock (PARK_CLOCK_OFFSET) */
    int stopping;
} gw_t;

/** Takes a reference on the current configuration snapshot. */
gw_conf_t *gw_conf_ref(gw_t *gw);
void gw_conf_unref(gw_conf_t *c);

/** The wall clock in unix seconds (tests may shift it). */
int64_t gw_now(const gw_t *gw);

/** The tariff of a version, or NULL.  Borrowed for the process's life. */
const cmn_tariff_t *gw_tariff_by_version(gw_t *gw, const char *version);
/** Loads a tariff's canonical JSON (from Redis) into the cache; returns it or NULL. */
const cmn_tariff_t *gw_tariff_learn(gw_t *gw, const char *version, const char *json, size_t len);

/** Routes a request to its handler (router.c). */
void gw_route(cmn_httpd_req_t *req, void *data);

/** Answers with a JSON error body {"error": code, "message": message}. */
void gw_respond_error(cmn_httpd_req_t *req, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/** Answers with a JSON body (the reference is consumed). */
void gw_respond_json(cmn_httpd_req_t *req, int status, json_t *body);

/** Handlers (h_*.c). */
void gw_h_events(gw_t *gw, cmn_httpd_req_t *req);
void gw_h_session_get(gw_t *gw, cmn_httpd_req_t *req, const char *sid, size_t sid_len);
void gw_h_session_paid(gw_t *gw, cmn_httpd_req_t *req, const char *sid, size_t sid_len);
/** GET /v1/lane-commands: the device's lot's lane commands after a cursor (h_lane_commands.c). */
void gw_h_lane_commands(gw_t *gw, cmn_httpd_req_t *req);
void gw_h_drivers(gw_t *gw, cmn_httpd_req_t *req, const char *rest, size_t rest_len);
void gw_h_bills(gw_t *gw, cmn_httpd_req_t *req, const char *rest, size_t rest_len);
void gw_h_notify(gw_t *gw, cmn_httpd_req_t *req, const char *provider, size_t n);
/** WeChat Pay's notifications for provider p (of kind wechatpay), from gw_h_notify: verified,
 * decrypted and queued on the lot's provider stream (h_notify_wechat.c).  cfg is borrowed for the
 * call. */
void gw_h_notify_wechat(gw_t *gw, const cmn_config_t *cfg, const cmn_cfg_provider_t *p,
                        cmn_httpd_req_t *req);
/** GET /v1/reports/{revenue|leakage} (name: what follows /v1/reports/) and
 * GET /v1/lots/{lot}/occupancy (h_reports.c, docs/reports.md). */
void gw_h_reports(gw_t *gw, cmn_httpd_req_t *req, const char *name, size_t n);
void gw_h_occupancy(gw_t *gw, cmn_httpd_req_t *req, const char *lot, size_t n);
void gw_h_healthz(gw_t *gw, cmn_httpd_req_t *req);
void gw_h_readyz(gw_t *gw, cmn_httpd_req_t *req);
void gw_h_metrics(gw_t *gw, cmn_httpd_req_t *req);

#endif
