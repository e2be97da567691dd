/*
 * POST /v1/notify/{provider id}: payment providers' notifications (webhooks).
 *
 * The gateway only verifies and queues: a notification is checked (signature, timestamp window),
 * parsed, de-duplicated on its id and put on the lot's provider stream (pk:{L}:provider) in one
 * script, then answered 200 at once; billing applies it.  A forged, stale or malformed one is
 * refused (400) and changes nothing; one for a bill we do not know is acknowledged and dropped.
 *
 * Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`, each v1 an HMAC-SHA256 with the
 * endpoint secret (whsec_…) over "<t>.<raw body>"; any v1 may match (secret rotation); |now - t|
 * must be within 300 s.
 *
 * WeChat Pay: h_notify_wechat.c.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn/crypto.h"
#include "cmn/log.h"
#include "cmn/mem.h"
#include "cmn/rargs.h"
#include "gw.h"
#include "router.h"

#define TOLERANCE_S 300
#define NOTIFIED_RETENTION_S (30 * 86400)

static void bad(gw_t *gw, cmn_httpd_req_t *req, const char *why)
{
    gw_metrics_error(&gw->metrics, "bad_request");
    cmn_log(CMN_LOG_WARN, "notification_refused", "%s", why);
    gw_respond_error(req, 400, "bad_request", "%s", why);
}

/* Checks a Stripe-Signature header against the raw body. */
static int stripe_verify(const cmn_secret_t *secret, const char *h, size_t hlen, const char *body,
                         size_t body_len, int64_t now, const char **why)
{
    long long t = -1;
    const char *p = h, *end = h + hlen;
    const char *sigs[8];
    size_t sig_lens[8];
    int nsigs = 0;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *item_end = comma ? comma : end;
        while (p < item_end && *p == ' ')
            p++;
        if (item_end - p > 2 && p[0] == 't' && p[1] == '=') {
            char num[24];
            size_t n = (size_t)(item_end - p - 2);
            if (n >= sizeof num)
                break;
            memcpy(num, p + 2, n);
            num[n] = '\0';
            char *stop;
            t = strtoll(num, &stop, 10);
            if (*stop != '\0')
                t = -1;
        } else if (item_end - p > 3 && memcmp(p, "v1=", 3) == 0 && nsigs < 8) {
            sigs[nsigs] = p + 3;
            sig_lens[nsigs] = (size_t)(item_end - p - 3);
            nsigs++;
        }
        p = comma ? comma + 1 : end;
    }
    if (t < 0 || nsigs == 0) {
        *why = "Stripe-Signature needs t= and at least one v1=";
        return -1;
    }
    if (now - t > TOLERANCE_S || t - now > TOLERANCE_S) {
        *why = "Stripe-Signature timestamp outside the tolerance";
        return -1;
    }
    char ts[24];
    snprintf(ts, sizeof ts, "%lld", t);
    const void *parts[] = {ts, ".", body};
    const size_t lens[] = {strlen(ts), 1, body_len};
    unsigned char mac[32], given[32];
    if (cmn_hmac_sha256(secret->data, secret->len, parts, lens, 3, mac) != 0) {
        *why = "cannot compute the signature";
        return -1;
    }
    for (int i = 0; i < nsigs; i++) {
        if (cmn_unhex(sigs[i], sig_lens[i], given, 32) == 0 && cmn_secure_equal(mac, given, 32))
            return 0;
    }
    *why = "no Stripe-Signature v1 matches";
    return -1;
}

struct nctx {
    gw_t *gw;
    cmn_httpd_req_t *req;
};

static void on_queued(void *data, int status, redisReply *r)
{
    struct nctx *n = data;
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY) {
        /* Not queued: a non-2xx answer makes the provider send it again. */
        gw_metrics_error(&n->gw->metrics, "unavailable");
        gw_respond_error(n->req, 503, "unavailable", "Redis is unavailable");
    } else {
        json_t *o = json_object();
        json_object_set_new(o, "received", json_true());
        json_object_set_new(o, "duplicate", json_boolean(cmn_reply_is(r, "dup")));
        gw_respond_json(n->req, 200, o);
    }
    cmn_free(n);
}

static void ack_ignored(cmn_httpd_req_t *req, const char *why)
{
    json_t *o = json_object();
    json_object_set_new(o, "received", json_true());
    json_object_set_new(o, "ignored", json_string(why));
    gw_respond_json(req, 200, o);
}

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static void stripe_notification(gw_t *gw, const cmn_config_t *cfg, const cmn_cfg_provider_t *p,
                                cmn_httpd_req_t *req)
{
    size_t hlen;
    const char *why;
    const char *h = cmn_httpd_req_header(req, "Stripe-Signature", &hlen);
    if (h == NULL)
        return bad(gw, req, "Stripe-Signature is missing");
    if (stripe_verify(&p->webhook_secret, h, hlen, req->body, req->body_len, gw_now(gw), &why) != 0)
        return bad(gw, req, why);
    json_error_t err;
    json_t *ev = json_loadb(req->body, req->body_len, 0, &err);
    json_t *obj = json_object_get(json_object_get(ev, "data"), "object");
    const char *id = str(ev, "id"), *type = str(ev, "type");
    if (ev == NULL || !json_is_object(obj) || id[0] == '\0' || type[0] == '\0') {
        json_decref(ev);
        return bad(gw, req, "not a Stripe event");
    }
    const char *bill = str(json_object_get(obj, "metadata"), "bill");
    /* The lot is the bill id's first part: "<lot>~<n>~b". */
    char lot[65] = "";
    const char *tilde = strchr(bill, '~');
    if (tilde != NULL && (size_t)(tilde - bill) < sizeof lot)
        snprintf(lot, sizeof lot, "%.*s", (int)(tilde - bill), bill);
    if (lot[0] == '\0' || cmn_config_lot(cfg, lot) == NULL) {
        json_decref(ev);
        return ack_ignored(req, "no bill of ours");
    }
    if (gw->redis == NULL || !cmn_redis_ready(gw->redis)) {
        json_decref(ev);
        gw_metrics_error(&gw->metrics, "unavailable");
        return gw_respond_error(req, 503, "unavailable", "Redis is unavailable");
    }
    char amount[24], refunded[24];
    snprintf(amount, sizeof amount, "%lld", (long long)json_integer_value(json_object_get(obj, "amount")));
    snprintf(refunded, sizeof refunded, "%lld",
             (long long)json_integer_value(json_object_get(obj, "amount_refunded")));
    cmn_rargs_t *a = cmn_xalloc(sizeof *a);
    cmn_rargs_init(a);
    cmn_rargs_str(a, "EVALSHA");
    cmn_rargs_str(a, cmn_redis_script_sha(gw->redis, gw->scripts[GW_LUA_NOTIFY_QUEUE]));
    cmn_rargs_str(a, "2");
    cmn_rargs_fmt(a, "pk:{%s}:notified", lot);
    cmn_rargs_fmt(a, "pk:{%s}:provider", lot);
    cmn_rargs_fmt(a, "%s:%s", p->id, id);
    cmn_rargs_int(a, NOTIFIED_RETENTION_S);
    const char *fields[][2] = {{"provider", p->id},        {"id", id},
                               {"type", type},             {"bill", bill},
                               {"ref", str(obj, "id")},    {"status", str(obj, "status")},
                               {"amount", amount},         {"amount_refunded", refunded},
                               {"code", str(obj, "failure_code")}};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        cmn_rargs_str(a, fields[i][0]);
        cmn_rargs_str(a, fields[i][1]);
    }
    struct nctx *n = cmn_xcalloc(1, sizeof *n);
    n->gw = gw;
    n->req = req;
    int rc = a->overflow ? -1 : cmn_redis_command(gw->redis, on_queued, n, a->n, a->v, a->len);
    cmn_free(a);
    json_decref(ev);
    if (rc != 0) {
        cmn_free(n);
        gw_respond_error(req, 503, "unavailable", "Redis is unavailable");
    }
}

void gw_h_notify(gw_t *gw, cmn_httpd_req_t *req, const char *provider, size_t n)
{
    char id[65];
    gw_conf_t *conf = gw_conf_ref(gw);
    const cmn_cfg_provider_t *p = NULL;
    if (n > 0 && n < sizeof id) {
        memcpy(id, provider, n);
        id[n] = '\0';
        p = cmn_config_provider(conf->cfg, id);
    }
    if (p == NULL || (p->kind == CMN_PROVIDER_STRIPE && p->webhook_secret.len == 0)) {
        gw_metrics_error(&gw->metrics, "not_found");
        gw_respond_error(req, 404, "not_found", "no notifications are configured for this provider");
    } else if (p->kind == CMN_PROVIDER_STRIPE) {
        stripe_notification(gw, conf->cfg, p, req);
    } else if (p->kind == CMN_PROVIDER_WECHATPAY) {
        gw_h_notify_wechat(gw, conf->cfg, p, req);
    } else {
        gw_metrics_error(&gw->metrics, "not_found");
        gw_respond_error(req, 404, "not_found", "notifications of this provider are not supported yet");
    }
    gw_conf_unref(conf);
}
