/*
 * POST /v1/notify/{provider id} for a provider of kind wechatpay: WeChat Pay's notifications
 * (docs/providers.md).
 *
 * As for Stripe, the gateway only verifies and queues; billing applies.  In order:
 *   1. Wechatpay-Timestamp, -Nonce, -Signature and -Serial are required; the serial must be the
 *      configured platform_serial (the key we trust), the timestamp within 300 s of our clock, and
 *      the signature (SHA256withRSA over "timestamp\nnonce\nbody\n") must verify with the platform
 *      public key.  Otherwise 401: a forged or replayed notification changes nothing.
 *   2. The resource (AEAD_AES_256_GCM under the APIv3 key, with its nonce and associated data) is
 *      decrypted; a resource that does not open is refused with 400.
 *   3. TRANSACTION.SUCCESS / TRANSACTION.FAIL: the bill is the deduction's `attach`; queued as
 *      charge.succeeded or charge.failed (with the out_trade_no, so billing can tell a stale
 *      attempt).  VEHICLE.ENTRANCE_STATE_CHANGE: the session is found from out_parking_no (its lot
 *      spelled out, or hashed: cmn/wechatpay.h) and queued as parking.state.  Other events, and
 *      bills or parkings of no lot of ours, are acknowledged and dropped.
 *   4. notify_queue de-duplicates on the notification id and puts the event on the lot's provider
 *      stream in one step; duplicates are answered like the first.
 * Answers: 200 {"code":"SUCCESS",...} once queued (or a duplicate, or ignored), which stops
 * WeChat's re-sends; 4xx or 503 {"code":"FAIL","message":...} otherwise (WeChat sends it again
 * later).  No step waits on anything but one Redis command, so the answer comes well within
 * WeChat's 5 s.
 */
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn/buf.h"
#include "cmn/log.h"
#include "cmn/mem.h"
#include "cmn/rargs.h"
#include "cmn/time.h"
#include "cmn/wechatpay.h"
#include "gw.h"

#define WX_WINDOW_S 300
#define WX_PLAIN_MAX (64 * 1024)
#define NOTIFIED_RETENTION_S (30 * 86400)

static void answer(cmn_httpd_req_t *req, int status, const char *code, const char *message)
{
    json_t *o = json_object();
    json_object_set_new(o, "code", json_string(code));
    json_object_set_new(o, "message", json_string(message));
    gw_respond_json(req, status, o);
}

static void refuse(gw_t *gw, cmn_httpd_req_t *req, int status, const char *why)
{
    gw_metrics_error(&gw->metrics, status == 401 ? "unauthorized" : "bad_request");
    cmn_log(CMN_LOG_WARN, "notification_refused", "wechatpay: %s", why);
    answer(req, status, "FAIL", why);
}

/* A request header as a bounded C string; 0 when absent, empty or too long. */
static int header(const cmn_httpd_req_t *req, const char *name, char *out, size_t outsz)
{
    size_t n = 0;
    const char *v = cmn_httpd_req_header(req, name, &n);
    if (v == NULL || n == 0 || n >= outsz)
        return 0;
    memcpy(out, v, n);
    out[n] = '\0';
    return 1;
}

/* Step 1.  Returns NULL, or why the notification is not WeChat's. */
static const char *verify(gw_t *gw, const cmn_cfg_provider_t *p, const cmn_httpd_req_t *req)
{
    char ts[24], nonce[80], serial[80], sig[1024];
    EVP_PKEY *key = NULL;
    if (!header(req, "Wechatpay-Timestamp", ts, sizeof ts) ||
        !header(req, "Wechatpay-Nonce", nonce, sizeof nonce) ||
        !header(req, "Wechatpay-Serial", serial, sizeof serial) ||
        !header(req, "Wechatpay-Signature", sig, sizeof sig))
        return "Wechatpay-Timestamp, -Nonce, -Signature and -Serial are required";
    if (strcmp(serial, p->platform_serial) != 0)
        return "Wechatpay-Serial is not the platform key we trust";
    char *end;
    long long t = strtoll(ts, &end, 10);
    int64_t now = gw_now(gw);
    if (*end != '\0' || ts[0] == '-' || t < now - WX_WINDOW_S || t > now + WX_WINDOW_S)
        return "Wechatpay-Timestamp is outside the 300 s window";
    /* Parsed per notification (tens of microseconds): a reloaded configuration's key applies at
     * once, and nothing is cached across snapshots. */
    if (cmn_pem_public_key(p->platform_public_key.data, p->platform_public_key.len, &key) != 0)
        return "the configured platform public key is unusable";
    int rc = cmn_wxpay_verify(key, ts, nonce, req->body, req->body_len, sig);
    EVP_PKEY_free(key);
    return rc == 0 ? NULL : "Wechatpay-Signature does not verify";
}

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

struct nctx {
    gw_t *gw;
    cmn_httpd_req_t *req;
};

static void on_queued(void *data, int status, redisReply *r)
{
    struct nctx *n = data;
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY) {
        gw_metrics_error(&n->gw->metrics, "unavailable");
        answer(n->req, 503, "FAIL", "Redis is unavailable");
    } else {
        answer(n->req, 200, "SUCCESS", cmn_reply_is(r, "dup") ? "duplicate" : "queued");
    }
    cmn_free(n);
}

/* Step 4: fields are name, value pairs ending with NULL. */
static void queue(gw_t *gw, cmn_httpd_req_t *req, const cmn_cfg_provider_t *p, const char *lot,
                  const char *id, const char *const *fields)
{
    if (gw->redis == NULL || !cmn_redis_ready(gw->redis)) {
        gw_metrics_error(&gw->metrics, "unavailable");
        return answer(req, 503, "FAIL", "Redis is unavailable");
    }
    cmn_rargs_t *a = cmn_xalloc(sizeof *a);
    cmn_rargs_init(a);
    cmn_rargs_str(a, "EVALSHA");
    cmn_rargs_str(a, cmn_redis_script_sha(gw->redis, gw->scripts[GW_LUA_NOTIFY_QUEUE]));
    cmn_rargs_str(a, "2");
    cmn_rargs_fmt(a, "pk:{%s}:notified", lot);
    cmn_rargs_fmt(a, "pk:{%s}:provider", lot);
    cmn_rargs_fmt(a, "%s:%s", p->id, id);
    cmn_rargs_int(a, NOTIFIED_RETENTION_S);
    cmn_rargs_str(a, "provider");
    cmn_rargs_str(a, p->id);
    cmn_rargs_str(a, "id");
    cmn_rargs_str(a, id);
    for (size_t i = 0; fields[i] != NULL; i += 2) {
        cmn_rargs_str(a, fields[i]);
        cmn_rargs_str(a, fields[i + 1]);
    }
    struct nctx *n = cmn_xcalloc(1, sizeof *n);
    n->gw = gw;
    n->req = req;
    int rc = a->overflow ? -1 : cmn_redis_command(gw->redis, on_queued, n, a->n, a->v, a->len);
    cmn_free(a);
    if (rc != 0) {
        cmn_free(n);
        answer(req, 503, "FAIL", "Redis is unavailable");
    }
}

static void transaction(gw_t *gw, const cmn_config_t *cfg, const cmn_cfg_provider_t *p,
                        cmn_httpd_req_t *req, const char *id, json_t *tx)
{
    const char *bill = str(tx, "attach"), *state = str(tx, "trade_state");
    const char *type = strcmp(state, "SUCCESS") == 0    ? "charge.succeeded"
                       : strcmp(state, "PAY_FAIL") == 0 ? "charge.failed"
                                                        : NULL;
    if (type == NULL)
        return answer(req, 200, "SUCCESS", "ignored: trade_state is neither SUCCESS nor PAY_FAIL");
    /* The lot is the bill id's first part: "<lot>~<n>~b". */
    char lot[65] = "", amount[24];
    const char *tilde = strchr(bill, '~');
    if (tilde != NULL && (size_t)(tilde - bill) < sizeof lot)
        snprintf(lot, sizeof lot, "%.*s", (int)(tilde - bill), bill);
    if (lot[0] == '\0' || cmn_config_lot(cfg, lot) == NULL)
        return answer(req, 200, "SUCCESS", "ignored: no bill of ours");
    snprintf(
        amount, sizeof amount, "%lld",
        (long long)json_integer_value(json_object_get(json_object_get(tx, "amount"), "total")));
    /* clang-format off */
    const char *fields[] = {"type", type, "bill", bill, "ref", str(tx, "transaction_id"),
                            "status", state, "amount", amount, "otn", str(tx, "out_trade_no"),
                            "code", state, NULL};
    /* clang-format on */
    queue(gw, req, p, lot, id, fields);
}

static void parking_state(gw_t *gw, const cmn_config_t *cfg, const cmn_cfg_provider_t *p,
                          cmn_httpd_req_t *req, const char *id, json_t *pk)
{
    const char *no = str(pk, "out_parking_no"), *state = str(pk, "parking_state");
    char lot[80], seq[24], session[120], at[24];
    int hashed = 0;
    const cmn_cfg_lot_t *l = NULL;
    if (strcmp(state, "NORMAL") != 0 && strcmp(state, "BLOCKED") != 0)
        return refuse(gw, req, 400, "parking_state must be NORMAL or BLOCKED");
    if (cmn_wxpay_parking_no_parse(no, lot, sizeof lot, &hashed, seq, sizeof seq) == 0) {
        for (size_t i = 0; i < cfg->nlots && l == NULL; i++) {
            char tag[CMN_WXPAY_LOT_TAG_LEN + 1];
            if (hashed)
                cmn_wxpay_lot_tag(cfg->lots[i].id, tag);
            if (strcmp(hashed ? tag : cfg->lots[i].id, lot) == 0)
                l = &cfg->lots[i];
        }
    }
    if (l == NULL)
        return answer(req, 200, "SUCCESS", "ignored: no parking of ours");
    cmn_instant_t t = gw_now(gw);
    const char *when = str(pk, "state_update_time");
    if (when[0] != '\0' && cmn_rfc3339_parse(when, strlen(when), &t) != 0)
        return refuse(gw, req, 400, "state_update_time is not an RFC 3339 time");
    snprintf(session, sizeof session, "%s~%s", l->id, seq);
    snprintf(at, sizeof at, "%lld", (long long)t);
    /* clang-format off */
    const char *fields[] = {"type", "parking.state", "session", session, "out_parking_no", no,
                            "parking_id", str(pk, "parking_id"), "state", state,
                            "reason", str(pk, "blocked_state_description"), "at", at, NULL};
    /* clang-format on */
    queue(gw, req, p, l->id, id, fields);
}

void gw_h_notify_wechat(gw_t *gw, const cmn_config_t *cfg, const cmn_cfg_provider_t *p,
                        cmn_httpd_req_t *req)
{
    const char *why = verify(gw, p, req);
    if (why != NULL)
        return refuse(gw, req, 401, why);
    json_error_t err;
    json_t *ev = json_loadb(req->body, req->body_len, 0, &err);
    json_t *res = json_object_get(ev, "resource");
    const char *id = str(ev, "id"), *type = str(ev, "event_type");
    const char *ad = str(res, "associated_data");
    if (ev == NULL || !json_is_object(res) || id[0] == '\0' || strlen(id) > 64 || type[0] == '\0') {
        json_decref(ev);
        return refuse(gw, req, 400, "not a WeChat Pay notification");
    }
    if (strcmp(str(res, "algorithm"), "AEAD_AES_256_GCM") != 0) {
        json_decref(ev);
        return refuse(gw, req, 400, "resource.algorithm must be AEAD_AES_256_GCM");
    }
    cmn_buf_t plain;
    cmn_buf_init(&plain, WX_PLAIN_MAX);
    int rc =
        cmn_wxpay_decrypt(p->apiv3_key.data, ad, str(res, "nonce"), str(res, "ciphertext"), &plain);
    json_t *obj = rc == 0 ? json_loadb(plain.base, plain.len, 0, &err) : NULL;
    cmn_buf_dispose(&plain);
    if (rc != 0 || !json_is_object(obj)) {
        json_decref(obj);
        json_decref(ev);
        return refuse(gw, req, 400,
                      rc != 0 ? "the resource does not decrypt with the APIv3 key"
                              : "the decrypted resource is not a JSON object");
    }
    cmn_log(CMN_LOG_INFO, "notification", "wechatpay %s %s", type, id);
    if (strcmp(type, "TRANSACTION.SUCCESS") == 0 || strcmp(type, "TRANSACTION.FAIL") == 0)
        transaction(gw, cfg, p, req, id, obj);
    else if (strcmp(type, "VEHICLE.ENTRANCE_STATE_CHANGE") == 0)
        parking_state(gw, cfg, p, req, id, obj);
    else
        answer(req, 200, "SUCCESS", "ignored: event type not used");
    json_decref(obj);
    json_decref(ev);
}
