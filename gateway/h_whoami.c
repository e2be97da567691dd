/*
 * GET /v1/whoami (docs/api.md, docs/dashboard.md): who the bearer token is, for a client that
 * holds only a token (the web dashboard) and must pick the views of its role.  Any valid token:
 *
 *   {"role": "operator", "scope": "op-west", "name": "west-desk", "deployment": "…",
 *    "lots": [{"id", "name", "district", "operator", "capacity", "currency"}, …]}
 *
 * `lots`: the lots the token may see (admin and city every lot, an operator its own, a driver
 * none), in the configuration's order.  Nothing that is not in the token's record or in the
 * configuration the token may read: no Redis call beyond the token's own lookup.
 */
#include <http_parser.h>
#include <jansson.h>

#include "api.h"
#include "cmn/tariff.h"
#include "web.h"

static void whoami(gw_api_t *a)
{
    if (a->req->method != HTTP_GET && a->req->method != HTTP_HEAD)
        return gw_api_fail(a, 405, "method_not_allowed", "use GET");
    const cmn_config_t *cfg = a->conf->cfg;
    json_t *o = json_object();
    json_object_set_new(o, "role", json_string(gw_role_name(a->who.role)));
    json_object_set_new(o, "scope", json_string(a->who.scope));
    json_object_set_new(o, "name", json_string(a->who.name));
    json_object_set_new(o, "deployment", json_string(cfg->name ? cfg->name : ""));
    json_t *lots = json_array();
    for (size_t i = 0; i < cfg->nlots; i++) {
        const cmn_cfg_lot_t *lot = &cfg->lots[i];
        if (!gw_may_lot(&a->who, cfg, lot->id))
            continue;
        json_t *l = json_object();
        json_object_set_new(l, "id", json_string(lot->id));
        json_object_set_new(l, "name", json_string(lot->name ? lot->name : ""));
        json_object_set_new(l, "district", json_string(lot->district ? lot->district : ""));
        json_object_set_new(l, "operator", json_string(lot->operator_id ? lot->operator_id : ""));
        json_object_set_new(l, "capacity", json_integer(lot->capacity));
        json_object_set_new(l, "currency",
                            json_string(lot->tariff ? cmn_tariff_currency(lot->tariff) : ""));
        json_array_append_new(lots, l);
    }
    json_object_set_new(o, "lots", lots);
    gw_api_done(a, 200, o);
}

void gw_h_whoami(gw_t *gw, cmn_httpd_req_t *req)
{
    gw_api_start(gw, req, "", 0, whoami);
}
