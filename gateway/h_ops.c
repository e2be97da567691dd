/* Health, readiness and metrics for operators and orchestrators. */
#include <string.h>

#include "cmn/buf.h"
#include "gw.h"

void gw_h_healthz(gw_t *gw, cmn_httpd_req_t *req)
{
    (void)gw;
    static const char body[] = "{\"status\":\"ok\"}";
    cmn_httpd_respond(req, 200, "application/json", body, sizeof body - 1, NULL);
}

/* Ready: Redis connected with every script loaded, and each lot's tariff stored there. */
void gw_h_readyz(gw_t *gw, cmn_httpd_req_t *req)
{
    int redis = gw->redis != NULL && cmn_redis_ready(gw->redis);
    int ready = redis && gw->tariffs_stored && !gw->stopping;
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string(ready ? "ready" : "not_ready"));
    json_object_set_new(o, "redis", json_boolean(redis));
    json_object_set_new(o, "scripts_loaded", json_boolean(redis));
    json_object_set_new(o, "tariffs_stored", json_boolean(gw->tariffs_stored));
    json_object_set_new(o, "stopping", json_boolean(gw->stopping));
    gw_respond_json(req, ready ? 200 : 503, o);
}

void gw_h_metrics(gw_t *gw, cmn_httpd_req_t *req)
{
    cmn_buf_t b;
    cmn_buf_init(&b, 1 << 20);
    if (gw_metrics_render(gw, &b) != 0) {
        cmn_buf_dispose(&b);
        gw_respond_error(req, 500, "internal", "metrics too large");
        return;
    }
    cmn_httpd_respond(req, 200, "text/plain; version=0.0.4", b.base, b.len, NULL);
    cmn_buf_dispose(&b);
}
