/*
 * Routing, JSON answers and authentication shared by the handlers.
 */
#include "router.h"

#include <http_parser.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cmn/crypto.h"
#include "cmn/json.h"
#include "cmn/mem.h"
#include "api.h"
#include "gw.h"
#include "web.h"

void gw_respond_json(cmn_httpd_req_t *req, int status, json_t *body)
{
    char *text = cmn_json_dump(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(body);
    if (text == NULL) {
        cmn_httpd_respond(req, 500, "application/json", "{\"error\":\"internal\"}", 20, NULL);
        return;
    }
    cmn_httpd_respond(req, status, "application/json", text, strlen(text), NULL);
    cmn_free(text);
}

void gw_respond_error(cmn_httpd_req_t *req, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *o = json_object();
    json_object_set_new(o, "error", json_string(code));
    json_object_set_new(o, "message", json_string(msg));
    gw_respond_json(req, status, o);
}

/* The path without its query. */
static size_t path_len(const cmn_httpd_req_t *req)
{
    const char *q = memchr(req->url, '?', req->url_len);
    return q ? (size_t)(q - req->url) : req->url_len;
}

static int path_is(const cmn_httpd_req_t *req, const char *p)
{
    size_t n = strlen(p);
    return path_len(req) == n && memcmp(req->url, p, n) == 0;
}

static int starts_with(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(s, prefix, n) == 0;
}

static void method_not_allowed(cmn_httpd_req_t *req, const char *allowed)
{
    gw_respond_error(req, 405, "method_not_allowed", "use %s", allowed);
}

void gw_route(cmn_httpd_req_t *req, void *data)
{
    gw_t *gw = data;
    size_t plen = path_len(req);

    if (path_is(req, "/v1/events")) {
        if (req->method != HTTP_POST)
            return method_not_allowed(req, "POST");
        return gw_h_events(gw, req);
    }
    if (path_is(req, "/v1/lane-commands")) {
        if (req->method != HTTP_GET)
            return method_not_allowed(req, "GET");
        return gw_h_lane_commands(gw, req);
    }
    if (starts_with(req->url, plen, "/v1/sessions/")) {
        const char *id = req->url + 13;
        size_t n = plen - 13;
        const char *slash = memchr(id, '/', n);
        if (slash == NULL) {
            if (req->method != HTTP_GET)
                return method_not_allowed(req, "GET");
            return gw_h_session_get(gw, req, id, n);
        }
        size_t idn = (size_t)(slash - id);
        if (n - idn == 5 && memcmp(slash, "/paid", 5) == 0) {
            if (req->method != HTTP_POST)
                return method_not_allowed(req, "POST");
            return gw_h_session_paid(gw, req, id, idn);
        }
        if (n - idn == 9 && memcmp(slash, "/reassign", 9) == 0)
            return gw_h_reassign(gw, req, id, idn);
        if (n - idn == 6 && memcmp(slash, "/merge", 6) == 0)
            return gw_h_merge(gw, req, id, idn);
        if (n - idn == 6 && memcmp(slash, "/split", 6) == 0)
            return gw_h_split(gw, req, id, idn);
    }
    if (path_is(req, "/v1/drivers") || starts_with(req->url, plen, "/v1/drivers/"))
        return gw_h_drivers(gw, req, req->url + 11, req->url_len - 11);
    if (starts_with(req->url, plen, "/v1/notify/")) {
        if (req->method != HTTP_POST)
            return method_not_allowed(req, "POST");
        return gw_h_notify(gw, req, req->url + 11, plen - 11);
    }
    if (path_is(req, "/v1/reports/revenue") || path_is(req, "/v1/reports/leakage"))
        return gw_h_reports(gw, req, req->url + 12, plen - 12);
    if (starts_with(req->url, plen, "/v1/lots/") && plen > 9 + 10 &&
        memcmp(req->url + plen - 10, "/occupancy", 10) == 0 &&
        memchr(req->url + 9, '/', plen - 9 - 10) == NULL)
        return gw_h_occupancy(gw, req, req->url + 9, plen - 9 - 10);
    /* The people's API (api.h, docs/api.md). */
    if (starts_with(req->url, plen, "/v1/lots/"))
        return gw_h_lanes(gw, req, req->url + 9, plen - 9);
    if (path_is(req, "/v1/defaults") || starts_with(req->url, plen, "/v1/defaults/"))
        return gw_h_defaults(gw, req, req->url + 12, plen - 12);
    if (path_is(req, "/v1/city/figures"))
        return gw_h_city_figures(gw, req);
    if (path_is(req, "/v1/audit"))
        return gw_h_audit(gw, req);
    if (path_is(req, "/v1/me") || starts_with(req->url, plen, "/v1/me/"))
        return gw_h_me(gw, req, req->url + 6, plen - 6);
    if (starts_with(req->url, plen, "/v1/bills/") && plen > 18 &&
        (memcmp(req->url + plen - 8, "/dispute", 8) == 0 ||
         memcmp(req->url + plen - 8, "/resolve", 8) == 0))
        return gw_h_bill_dispute(gw, req, req->url + 10, plen - 10);
    if (starts_with(req->url, plen, "/v1/bills/"))
        return gw_h_bills(gw, req, req->url + 10, plen - 10);
    if (path_is(req, "/healthz"))
        return gw_h_healthz(gw, req);
    if (path_is(req, "/readyz"))
        return gw_h_readyz(gw, req);
    if (path_is(req, "/metrics"))
        return gw_h_metrics(gw, req);
    /* The web dashboard (web.h, docs/dashboard.md). */
    if (path_is(req, "/v1/whoami"))
        return gw_h_whoami(gw, req);
    if ((plen == 1 && req->url[0] == '/') || starts_with(req->url, plen, "/dashboard"))
        return gw_h_static(gw, req);
    gw_metrics_error(&gw->metrics, "not_found");
    gw_respond_error(req, 404, "not_found", "no such resource");
}

int gw_auth_device(gw_t *gw, const cmn_config_t *cfg, const cmn_httpd_req_t *req,
                   const char *method, const cmn_cfg_device_t **dev, const char **why)
{
    size_t dlen, tlen, slen;
    const char *d = cmn_httpd_req_header(req, "X-Park-Device", &dlen);
    const char *ts = cmn_httpd_req_header(req, "X-Park-Timestamp", &tlen);
    const char *sig = cmn_httpd_req_header(req, "X-Park-Signature", &slen);
    char device[65], tsbuf[24];
    unsigned char given[32];

    *dev = NULL;
    if (d == NULL || ts == NULL || sig == NULL) {
        *why = "the X-Park-Device, X-Park-Timestamp and X-Park-Signature headers are required";
        return -1;
    }
    if (dlen == 0 || dlen >= sizeof device) {
        *why = "unknown device";
        return -1;
    }
    memcpy(device, d, dlen);
    device[dlen] = '\0';
    const cmn_cfg_device_t *found = cmn_config_device(cfg, device);
    if (found == NULL) {
        *why = "unknown device";
        return -1;
    }
    /* The timestamp: decimal unix seconds within the clock window either way. */
    int64_t t = 0;
    if (tlen == 0 || tlen > 15) {
        *why = "X-Park-Timestamp must be unix seconds";
        return -1;
    }
    for (size_t i = 0; i < tlen; i++) {
        if (ts[i] < '0' || ts[i] > '9') {
            *why = "X-Park-Timestamp must be unix seconds";
            return -1;
        }
        t = t * 10 + (ts[i] - '0');
    }
    int64_t now = gw_now(gw), skew = now > t ? now - t : t - now;
    if (skew > cfg->gateway.clock_window_s) {
        *why = "X-Park-Timestamp is outside the accepted clock window";
        return -1;
    }
    if (cmn_unhex(sig, slen, given, 32) != 0) {
        *why = "X-Park-Signature must be 64 hex digits";
        return -1;
    }
    memcpy(tsbuf, ts, tlen);
    tsbuf[tlen] = '\0';
    char expect_hex[65];
    unsigned char expect[32];
    int rc = found->mac != NULL
                 ? cmn_lane_sign_ready(found->mac, tsbuf, method, req->url, req->url_len, device,
                                       req->body, req->body_len, expect_hex)
                 : cmn_lane_sign(found->key.data, found->key.len, tsbuf, method, req->url,
                                 req->url_len, device, req->body, req->body_len, expect_hex);
    if (rc != 0 ||
        cmn_unhex(expect_hex, 64, expect, 32) != 0 || !cmn_secure_equal(expect, given, 32)) {
        *why = "bad signature";
        return -1;
    }
    *dev = found;
    return 0;
}
