/*
 * GET /v1/sessions/{id} and POST /v1/sessions/{id}/paid: what a lane does after a hold (the last
 * section of docs/lane-api.md).  Both are signed like events and allowed only to devices of the
 * session's lot.  A session id is "<lot>~<number>", so the lot (and its hash slot) is known from
 * the id alone.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn/crypto.h"
#include "cmn/err.h"
#include "cmn/log.h"
#include "cmn/mem.h"
#include "cmn/money.h"
#include "cmn/time.h"
#include "api.h"
#include "events.h"
#include "gw.h"
#include "cmn/rargs.h"
#include "router.h"

#define US "\x1f"
#define RECORD_TTL_S (35 * 86400)

typedef struct sreq {
    gw_t *gw;
    gw_conf_t *conf;
    cmn_httpd_req_t *req;
    const cmn_cfg_lot_t *lot;
    char sid[100];
    char seq[24];
    char tag[80];
    char event_id[65];
    char device[65];
    long long amount;
} sreq_t;

static void sreq_free(sreq_t *s)
{
    gw_conf_unref(s->conf);
    cmn_free(s);
}

/* Percent-decodes the id and splits it at its last '~' into lot id and number. */
static int parse_sid(const char *id, size_t n, sreq_t *s, char *lot, size_t lotsz)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        unsigned char byte;
        if (c == '%' && i + 2 < n && cmn_unhex(id + i + 1, 2, &byte, 1) == 0) {
            c = (char)byte;
            i += 2;
        }
        if (o + 1 >= sizeof s->sid)
            return -1;
        s->sid[o++] = c;
    }
    s->sid[o] = '\0';
    return gw_session_id_split(s->sid, lot, lotsz, s->seq, sizeof s->seq);
}

/* Authentication, the id, and the device's right to the session's lot: 0, or answered. */
static sreq_t *begin(gw_t *gw, cmn_httpd_req_t *req, const char *method, const char *id, size_t n)
{
    const cmn_cfg_device_t *dev;
    const char *why;
    char lot[100];
    gw_conf_t *conf = gw_conf_ref(gw);
    if (gw_auth_device(gw, conf->cfg, req, method, &dev, &why) != 0) {
        gw_conf_unref(conf);
        gw_metrics_error(&gw->metrics, "unauthorized");
        gw_respond_error(req, 401, "unauthorized", "%s", why);
        return NULL;
    }
    sreq_t *s = cmn_xcalloc(1, sizeof *s);
    s->gw = gw;
    s->conf = conf;
    s->req = req;
    snprintf(s->device, sizeof s->device, "%s", dev->id);
    if (parse_sid(id, n, s, lot, sizeof lot) != 0) {
        gw_metrics_error(&gw->metrics, "not_found");
        gw_respond_error(req, 404, "not_found", "no such session");
        sreq_free(s);
        return NULL;
    }
    if (strcmp(lot, dev->lot_id) != 0) {
        gw_metrics_error(&gw->metrics, "forbidden");
        gw_respond_error(req, 403, "forbidden", "device %s does not serve lot %s", dev->id, lot);
        sreq_free(s);
        return NULL;
    }
    s->lot = &conf->cfg->lots[dev->lot_index];
    snprintf(s->tag, sizeof s->tag, "{%s}", s->lot->id);
    return s;
}

static void unavailable(sreq_t *s, int status)
{
    gw_metrics_error(&s->gw->metrics, "unavailable");
    gw_respond_error(s->req, 503, "unavailable", "%s",
                     status == CMN_ETIMEOUT ? "Redis did not answer in time"
                                            : "Redis is unavailable");
    sreq_free(s);
}

static void respond_tuple(sreq_t *s, const char *t, size_t len, int count)
{
    json_t *o;
    if (gw_answer_render(t, len, &o) != 0) {
        gw_respond_error(s->req, 500, "internal", "stored answer is unreadable");
        sreq_free(s);
        return;
    }
    if (count)
        gw_metrics_decision(&s->gw->metrics, GW_DIR_SESSION, GW_DEC_OPEN, GW_REASON_PAID_ON_SITE,
                            uv_hrtime() - s->req->received_ns);
    gw_respond_json(s->req, 200, o);
    sreq_free(s);
}

/* ---- GET ----------------------------------------------------------------------------------- */

static const char *flat_get(const redisReply *arr, const char *key)
{
    for (size_t i = 0; arr != NULL && i + 1 < arr->elements; i += 2) {
        if (arr->element[i]->type == REDIS_REPLY_STRING && strcmp(arr->element[i]->str, key) == 0)
            return arr->element[i + 1]->str;
    }
    return NULL;
}

static void on_get(void *data, int status, redisReply *r)
{
    sreq_t *s = data;
    cmn_buf_t t;
    char display[200];
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY)
        return unavailable(s, status ? status : CMN_EIO);
    if (cmn_reply_is(r, "unknown")) {
        gw_metrics_error(&s->gw->metrics, "not_found");
        gw_respond_error(s->req, 404, "not_found", "no such session");
        return sreq_free(s);
    }
    cmn_buf_init(&t, 4096);
    const char *cur = cmn_tariff_currency(s->lot->tariff);
    if (cmn_reply_is(r, "open")) {
        size_t len;
        const char *rec = cmn_reply_str(r, 1, &len);
        const char *held = cmn_reply_str(r, 2, NULL);
        gw_session_rec_t sr;
        if (rec == NULL || gw_session_parse(rec, len, &sr) != 0) {
            cmn_buf_dispose(&t);
            return unavailable(s, CMN_EIO);
        }
        if (held != NULL && held[0] != '\0') {
            /* reason US amount US exit ts */
            char reason[32] = "";
            long long amount = 0;
            size_t n = strcspn(held, US);
            snprintf(reason, sizeof reason, "%.*s", (int)(n < 31 ? n : 31), held);
            if (held[n] != '\0')
                amount = strtoll(held + n + 1, NULL, 10);
            snprintf(display, sizeof display, "%s 请缴费后离场", sr.plate);
            cmn_buf_printf(&t, "hold" US "%s" US US "%s" US US "%lld" US "%s" US "%s", reason,
                           s->sid, amount, cur, display);
        } else {
            const char *reason = strchr(sr.flags, 'p')   ? "pass"
                                 : strchr(sr.flags, 'e') ? "exempt"
                                                         : "entry";
            snprintf(display, sizeof display, "%s 场内", sr.plate);
            cmn_buf_printf(&t, "open" US "%s" US US "%s" US US US US "%s", reason, s->sid,
                           display);
        }
    } else {
        const redisReply *f = r->elements > 1 ? r->element[1] : NULL;
        const char *reason = flat_get(f, "reason");
        const char *status_s = flat_get(f, "status");
        const char *amount = flat_get(f, "amount");
        const char *bill = flat_get(f, "bill");
        const char *match = flat_get(f, "match");
        const char *plate = flat_get(f, "plate");
        const char *currency = flat_get(f, "currency");
        int held = status_s && strncmp(status_s, "stale", 5) == 0;
        snprintf(display, sizeof display, "%s %s", plate ? plate : "",
                 held ? "记录已关闭" : "一路顺风");
        cmn_buf_printf(&t, "%s" US "%s" US "%s" US "%s" US "%s" US "%s" US "%s" US "%s",
                       held ? "hold" : "open", reason ? reason : "entry", match ? match : "",
                       s->sid, bill ? bill : "", amount ? amount : "",
                       amount ? (currency ? currency : cur) : "", display);
    }
    json_t *o;
    if (gw_answer_render(t.base, t.len, &o) != 0) {
        cmn_buf_dispose(&t);
        return unavailable(s, CMN_EIO);
    }
    cmn_buf_dispose(&t);
    gw_respond_json(s->req, 200, o);
    sreq_free(s);
}

void gw_h_session_get(gw_t *gw, cmn_httpd_req_t *req, const char *id, size_t n)
{
    sreq_t *s = begin(gw, req, "GET", id, n);
    if (s == NULL)
        return;
    if (gw->redis == NULL || !cmn_redis_ready(gw->redis))
        return unavailable(s, CMN_EIO);
    cmn_rargs_t *a = cmn_xalloc(sizeof *a);
    cmn_rargs_init(a);
    cmn_rargs_str(a, "EVALSHA");
    cmn_rargs_str(a, cmn_redis_script_sha(gw->redis, gw->scripts[GW_LUA_SESSION_GET]));
    cmn_rargs_str(a, "3");
    cmn_rargs_fmt(a, "pk:%s:open", s->tag);
    cmn_rargs_fmt(a, "pk:%s:held", s->tag);
    cmn_rargs_fmt(a, "pk:%s:s:%s", s->tag, s->seq);
    cmn_rargs_str(a, s->seq);
    int rc = cmn_redis_command(gw->redis, on_get, s, a->n, a->v, a->len);
    cmn_free(a);
    if (rc != 0)
        unavailable(s, CMN_EIO);
}

/* ---- POST paid ------------------------------------------------------------------------------ */

static void on_paid(void *data, int status, redisReply *r)
{
    sreq_t *s = data;
    size_t len;
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY) {
        if (status == 0 && r != NULL && r->type == REDIS_REPLY_ERROR)
            cmn_log(CMN_LOG_ERROR, "redis_script", "session_paid failed: %.200s", r->str);
        return unavailable(s, status ? status : CMN_EIO);
    }
    if (cmn_reply_is(r, "ok") || cmn_reply_is(r, "dup")) {
        const char *t = cmn_reply_str(r, 1, &len);
        if (t == NULL)
            return unavailable(s, CMN_EIO);
        if (cmn_reply_is(r, "dup"))
            s->gw->metrics.replays++;
        else
            cmn_log(CMN_LOG_INFO, "paid_on_site", "lot %s session %s paid on site: %lld",
                    s->lot->id, s->sid, s->amount);
        return respond_tuple(s, t, len, cmn_reply_is(r, "ok"));
    }
    if (cmn_reply_is(r, "conflict")) {
        gw_metrics_error(&s->gw->metrics, "conflict");
        gw_respond_error(s->req, 409, "conflict",
                         "event_id %s was already used by this device with a different body",
                         s->event_id);
        return sreq_free(s);
    }
    if (cmn_reply_is(r, "unknown")) {
        gw_metrics_error(&s->gw->metrics, "not_found");
        gw_respond_error(s->req, 404, "not_found", "no such session");
        return sreq_free(s);
    }
    const char *arg = cmn_reply_str(r, 1, &len);
    gw_metrics_error(&s->gw->metrics, "bad_request");
    if (cmn_reply_is(r, "short"))
        gw_respond_error(s->req, 400, "bad_request", "amount %lld is less than the %.*s due",
                         s->amount, arg ? (int)len : 0, arg ? arg : "");
    else
        gw_respond_error(s->req, 400, "bad_request",
                         "session %s is not waiting for a payment (it is %.*s)", s->sid,
                         arg ? (int)len : 0, arg ? arg : "closed");
    sreq_free(s);
}

void gw_h_session_paid(gw_t *gw, cmn_httpd_req_t *req, const char *id, size_t n)
{
    sreq_t *s = begin(gw, req, "POST", id, n);
    if (s == NULL)
        return;
    json_error_t err;
    json_t *doc = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &err);
    json_t *ev = doc ? json_object_get(doc, "event_id") : NULL;
    json_t *am = doc ? json_object_get(doc, "amount") : NULL;
    json_t *me = doc ? json_object_get(doc, "method") : NULL;
    json_t *ts = doc ? json_object_get(doc, "ts") : NULL;
    const char *why = NULL;
    cmn_instant_t paid_at = 0;
    if (doc == NULL || !json_is_object(doc))
        why = "the body must be a JSON object";
    else if (!json_is_string(ev) || json_string_length(ev) < 1 || json_string_length(ev) > 64)
        why = "event_id must be a string of 1 to 64 characters";
    else if (!json_is_integer(am) || json_integer_value(am) < 0)
        why = "amount must be an integer of minor units, 0 or more";
    else if (!json_is_string(me) || (strcmp(json_string_value(me), "qr") != 0 &&
                                     strcmp(json_string_value(me), "cash") != 0 &&
                                     strcmp(json_string_value(me), "card") != 0))
        why = "method must be \"qr\", \"cash\" or \"card\"";
    else if (ts == NULL || (json_is_integer(ts) ? (paid_at = json_integer_value(ts) / 1000, 0)
                                                : !json_is_string(ts) ||
                                                      cmn_rfc3339_parse(json_string_value(ts),
                                                                        json_string_length(ts),
                                                                        &paid_at) != 0))
        why = "ts must be an RFC 3339 time with a zone or unix milliseconds";
    else if (paid_at > gw_now(gw) + 86400)
        why = "ts is more than 24 hours ahead of the server clock";
    for (size_t i = 0; why == NULL && i < json_string_length(ev); i++) {
        if ((unsigned char)json_string_value(ev)[i] < 0x20)
            why = "event_id must be printable";
    }
    if (why != NULL) {
        json_decref(doc);
        gw_metrics_error(&gw->metrics, "bad_request");
        gw_respond_error(req, 400, "bad_request", "%s", why);
        return sreq_free(s);
    }
    snprintf(s->event_id, sizeof s->event_id, "%s", json_string_value(ev));
    s->amount = json_integer_value(am);
    char method[8];
    snprintf(method, sizeof method, "%s", json_string_value(me));
    json_decref(doc);
    if (gw->redis == NULL || !cmn_redis_ready(gw->redis))
        return unavailable(s, CMN_EIO);

    unsigned char body_hash[GW_IDEM_HASH_LEN], field[GW_IDEM_FIELD_LEN];
    char day[16], display[64];
    gw_idem_digests(s->device, s->event_id, req->body, req->body_len, field, body_hash);
    cmn_date_format(cmn_floordiv(paid_at + cmn_tariff_utc_offset(s->lot->tariff, paid_at), 86400),
                    day, sizeof day);
    snprintf(display, sizeof display, "缴费成功 一路顺风");
    long long days = s->conf->cfg->gateway.idempotency_days;
    int64_t today = cmn_floordiv(gw_now(gw), 86400);

    cmn_rargs_t *a = cmn_xalloc(sizeof *a);
    cmn_rargs_init(a);
    cmn_rargs_str(a, "EVALSHA");
    cmn_rargs_str(a, cmn_redis_script_sha(gw->redis, gw->scripts[GW_LUA_SESSION_PAID]));
    cmn_rargs_int(a, 5 + days + 1);
    cmn_rargs_fmt(a, "pk:%s:open", s->tag);
    cmn_rargs_fmt(a, "pk:%s:fold", s->tag);
    cmn_rargs_fmt(a, "pk:%s:held", s->tag);
    cmn_rargs_fmt(a, "pk:%s:day:%s", s->tag, day);
    cmn_rargs_fmt(a, "pk:%s:s:%s", s->tag, s->seq);
    for (int64_t d = 0; d <= days; d++)
        cmn_rargs_fmt(a, "pk:%s:idem:%lld", s->tag, (long long)(today - d));
    cmn_rargs_ref(a, (const char *)field, sizeof field);
    cmn_rargs_ref(a, (const char *)body_hash, sizeof body_hash);
    cmn_rargs_str(a, s->seq);
    cmn_rargs_int(a, s->amount);
    cmn_rargs_str(a, method);
    cmn_rargs_int(a, paid_at);
    cmn_rargs_str(a, s->sid);
    cmn_rargs_str(a, cmn_tariff_currency(s->lot->tariff));
    cmn_rargs_str(a, display);
    cmn_rargs_int(a, (days + 1) * 86400 + 3600);
    cmn_rargs_int(a, RECORD_TTL_S);
    cmn_rargs_int(a, gw_now(gw));
    cmn_rargs_str(a, s->lot->id);
    cmn_rargs_str(a, s->device);
    cmn_rargs_str(a, s->event_id);
    int rc = cmn_redis_command(gw->redis, on_paid, s, a->n, a->v, a->len);
    cmn_free(a);
    if (rc != 0)
        unavailable(s, CMN_EIO);
}
