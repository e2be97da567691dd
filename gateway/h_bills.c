/*
 * Bills (docs/api.md): admin and city tokens for every lot, operator tokens for their own lots;
 * a driver token may read its own bills (GET) and nothing else here (/v1/me is the driver's).
 *   GET  /v1/bills/{bill}          the bill, its fee explanation and its history
 *   POST /v1/bills/{bill}/charge   charge it again now (e.g. once a driver fixed a failed card)
 *   POST /v1/bills/{bill}/refund   {"amount"?: minor units (default: all that is left), "reason"}
 *   POST /v1/bills/{bill}/waive    {"reason"}: the charge was wrong; it is no longer owed
 * A bill id is "<lot>~<n>~b".  Billing carries out charges and refunds through the provider.
 */
#include <http_parser.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "auth.h"
#include "cmn/driver.h"
#include "cmn/mem.h"
#include "cmn/rargs.h"
#include "gw.h"
#include "router.h"

typedef struct breq {
    gw_t *gw;
    cmn_httpd_req_t *req;
    char bill[100];
    char lot[65];
    char seq[24];
    char driver[65];
    char reason[300]; /* a waiver's, kept to be sent again with the bill's day */
    char day[16];     /* the bill's lot-day, once bill_waive told it */
    int day_asks;
    gw_principal_t who; /* who asks (gw_authenticate) */
    char who_s[200];    /* role US scope US name, for the scripts' audit entries */
    const char *rest;   /* the path after /v1/bills/ (in req->url) */
    size_t rest_len;
} breq_t;

static void fail(breq_t *b, int status, const char *code, const char *msg)
{
    gw_metrics_error(&b->gw->metrics, code);
    gw_respond_error(b->req, status, code, "%s", msg);
    cmn_free(b);
}

static int parse(breq_t *b, const char *id, size_t n)
{
    if (n == 0 || n >= sizeof b->bill)
        return -1;
    memcpy(b->bill, id, n);
    b->bill[n] = '\0';
    if (gw_bill_id_split(b->bill, b->lot, sizeof b->lot, b->seq, sizeof b->seq) != 0)
        return -1;
    return cmn_is_ident(b->lot, 64) ? 0 : -1;
}

static void on_get(void *data, int status, redisReply *r)
{
    breq_t *b = data;
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        return fail(b, 503, "unavailable", "Redis is unavailable");
    const redisReply *rec = r->element[0], *hist = r->element[1];
    if (rec->type != REDIS_REPLY_ARRAY || rec->elements == 0)
        return fail(b, 404, "not_found", "no such bill");
    if (b->who.role == GW_ROLE_DRIVER) {
        /* A driver reads its own bills only. */
        const char *owner = NULL;
        for (size_t i = 0; i + 1 < rec->elements; i += 2) {
            if (rec->element[i]->str != NULL && strcmp(rec->element[i]->str, "driver") == 0)
                owner = rec->element[i + 1]->str;
        }
        if (owner == NULL || !gw_may_driver(&b->who, owner))
            return fail(b, 403, "forbidden", "this bill is not yours");
    }
    json_t *o = json_object();
    for (size_t i = 0; i + 1 < rec->elements; i += 2) {
        const char *k = rec->element[i]->str, *v = rec->element[i + 1]->str;
        json_error_t err;
        json_t *j = NULL;
        if (strcmp(k, "explanation") == 0 && v[0] == '{')
            j = json_loads(v, 0, &err);
        json_object_set_new(o, k, j ? j : json_string(v));
    }
    json_t *h = json_array();
    for (size_t i = 0; hist->type == REDIS_REPLY_ARRAY && i < hist->elements; i++) {
        json_error_t err;
        json_t *e = json_loads(hist->element[i]->str, 0, &err);
        if (e != NULL)
            json_array_append_new(h, e);
    }
    json_object_set_new(o, "history", h);
    gw_respond_json(b->req, 200, o);
    cmn_free(b);
}

static void on_charge(void *data, int status, redisReply *r)
{
    breq_t *b = data;
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY)
        return fail(b, 503, "unavailable", "Redis is unavailable");
    const char *st = cmn_reply_str(r, 1, NULL);
    if (cmn_reply_is(r, "unknown"))
        return fail(b, 404, "not_found", "no such bill");
    if (cmn_reply_is(r, "not_due")) {
        char msg[200];
        snprintf(msg, sizeof msg, "bill %.99s is %.40s: nothing to charge now", b->bill,
                 st ? st : "?");
        return fail(b, 409, "conflict", msg);
    }
    json_t *o = json_object();
    json_object_set_new(o, "bill", json_string(b->bill));
    json_object_set_new(o, "status", json_string(st ? st : ""));
    json_object_set_new(o, "charge", json_string("requested"));
    gw_respond_json(b->req, 202, o);
    cmn_free(b);
}

static void on_refund(void *data, int status, redisReply *r)
{
    breq_t *b = data;
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY)
        return fail(b, 503, "unavailable", "Redis is unavailable");
    const char *arg = cmn_reply_str(r, 1, NULL);
    char msg[200];
    if (cmn_reply_is(r, "unknown"))
        return fail(b, 404, "not_found", "no such bill");
    if (cmn_reply_is(r, "not_paid")) {
        snprintf(msg, sizeof msg, "bill is %.40s: only a paid bill can be refunded", arg ? arg : "");
        return fail(b, 409, "conflict", msg);
    }
    if (cmn_reply_is(r, "busy"))
        return fail(b, 409, "conflict", "a refund of this bill is already under way");
    if (cmn_reply_is(r, "too_much")) {
        snprintf(msg, sizeof msg, "at most %.24s can be refunded", arg ? arg : "0");
        return fail(b, 400, "bad_request", msg);
    }
    json_t *o = json_object();
    json_object_set_new(o, "bill", json_string(b->bill));
    json_object_set_new(o, "refund", json_string("requested"));
    json_object_set_new(o, "amount", json_integer(arg ? strtoll(arg, NULL, 10) : 0));
    gw_respond_json(b->req, 202, o);
    cmn_free(b);
}

static void on_settled(void *data, int status, redisReply *r)
{
    gw_t *gw = data;
    if (status == 0 && r != NULL && r->type == REDIS_REPLY_ARRAY &&
        (cmn_reply_is(r, "ok") || cmn_reply_is(r, "again"))) {
        const char *snap = cmn_reply_str(r, 1, NULL), *plates = cmn_reply_str(r, 2, NULL);
        char driver[80];
        if (snap != NULL && plates != NULL) {
            cmn_snapshot_driver(snap, driver, sizeof driver);
            cmn_driver_mirror(gw->redis, gw->scripts[GW_LUA_PLATE_MIRROR], driver, plates, snap);
        }
    }
}

static void send_waive(breq_t *b);

static void on_waive(void *data, int status, redisReply *r)
{
    breq_t *b = data;
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY)
        return fail(b, 503, "unavailable", "Redis is unavailable");
    if (cmn_reply_is(r, "day") && b->day_asks++ == 0) {
        /* The waiver moves the bill's money in the lot-day of its exit: ask again with its key. */
        const char *day = cmn_reply_str(r, 1, NULL);
        snprintf(b->day, sizeof b->day, "%s", day ? day : "");
        return send_waive(b);
    }
    if (cmn_reply_is(r, "day"))
        return fail(b, 503, "unavailable", "the bill's day keeps changing");
    if (cmn_reply_is(r, "unknown"))
        return fail(b, 404, "not_found", "no such bill");
    if (cmn_reply_is(r, "not_owed")) {
        char msg[200];
        const char *st = cmn_reply_str(r, 1, NULL);
        snprintf(msg, sizeof msg, "bill is %.40s: nothing to waive", st ? st : "");
        return fail(b, 409, "conflict", msg);
    }
    const char *driver = cmn_reply_str(r, 1, NULL);
    if (driver != NULL && driver[0] != '\0') {
        /* No longer owed: the driver's unpaid count, amount and overdue suspension follow. */
        gw_conf_t *conf = gw_conf_ref(b->gw);
        const cmn_cfg_credit_t *p = &conf->cfg->credit;
        cmn_rargs_t a;
        cmn_rargs_init(&a);
        cmn_rargs_str(&a, "EVALSHA");
        cmn_rargs_str(&a, cmn_redis_script_sha(b->gw->redis, b->gw->scripts[GW_LUA_DRIVER_SETTLE]));
        cmn_rargs_str(&a, "5");
        static const char *const parts[] = {"", ":unpaid", ":overdue", ":applied", ":history"};
        for (int i = 0; i < 5; i++)
            cmn_rargs_fmt(&a, "pk:drv:{%s}%s", driver, parts[i]);
        cmn_rargs_str(&a, b->bill);
        cmn_rargs_str(&a, "waived");
        cmn_rargs_int(&a, gw_now(b->gw));
        cmn_rargs_int(&a, 0);
        cmn_rargs_int(&a, p->max_score);
        cmn_redis_command(b->gw->redis, on_settled, b->gw, a.n, a.v, a.len);
        gw_conf_unref(conf);
    }
    json_t *o = json_object();
    json_object_set_new(o, "bill", json_string(b->bill));
    json_object_set_new(o, "status", json_string("waived"));
    gw_respond_json(b->req, 200, o);
    cmn_free(b);
}

/* bill_waive, with the bill's lot-day key ("-" until the script has told the day). */
static void send_waive(breq_t *b)
{
    cmn_rargs_t a;
    cmn_rargs_init(&a);
    cmn_rargs_str(&a, "EVALSHA");
    cmn_rargs_str(&a, cmn_redis_script_sha(b->gw->redis, b->gw->scripts[GW_LUA_BILL_WAIVE]));
    cmn_rargs_str(&a, "8");
    cmn_rargs_fmt(&a, "pk:{%s}:s:%s", b->lot, b->seq);
    cmn_rargs_fmt(&a, "pk:{%s}:s:%s:h", b->lot, b->seq);
    cmn_rargs_fmt(&a, "pk:{%s}:due", b->lot);
    cmn_rargs_fmt(&a, "pk:{%s}:outbox", b->lot);
    cmn_rargs_fmt(&a, "pk:{%s}:day:%s", b->lot, b->day[0] ? b->day : "-");
    /* The arrears index and the audit log (docs/redis.md), in the same step. */
    cmn_rargs_fmt(&a, "pk:{%s}:arrears", b->lot);
    cmn_rargs_fmt(&a, "pk:{%s}:arrears:info", b->lot);
    cmn_rargs_fmt(&a, "pk:{%s}:audit", b->lot);
    cmn_rargs_str(&a, b->seq);
    cmn_rargs_int(&a, gw_now(b->gw));
    cmn_rargs_str(&a, b->reason);
    cmn_rargs_str(&a, b->who_s);
    if (cmn_redis_command(b->gw->redis, on_waive, b, a.n, a.v, a.len) != 0)
        fail(b, 503, "unavailable", "Redis is unavailable");
}

/* {"amount"?, "reason"} of a refund or waiver; reason required. */
static int action_body(breq_t *b, char *reason, size_t reasonsz, long long *amount)
{
    json_error_t err;
    json_t *doc = json_loadb(b->req->body, b->req->body_len, 0, &err);
    json_t *r = doc ? json_object_get(doc, "reason") : NULL;
    json_t *a = doc ? json_object_get(doc, "amount") : NULL;
    int rc = -1;
    *amount = -1;
    if (!json_is_string(r) || json_string_length(r) < 1 || json_string_length(r) >= reasonsz)
        goto out;
    snprintf(reason, reasonsz, "%s", json_string_value(r));
    if (a != NULL && !json_is_null(a)) {
        if (!json_is_integer(a) || json_integer_value(a) <= 0)
            goto out;
        *amount = json_integer_value(a);
    }
    rc = 0;
out:
    json_decref(doc);
    return rc;
}

static void bills_route(breq_t *b);

static void on_auth(void *data, int status, const gw_principal_t *who, const char *why)
{
    breq_t *b = data;
    if (status == 401)
        return fail(b, 401, "unauthorized", why ? why : "a valid token is required");
    if (status != 0 || who == NULL)
        return fail(b, 503, "unavailable", "Redis is unavailable");
    b->who = *who;
    snprintf(b->who_s, sizeof b->who_s, "%s\x1f%s\x1f%s", gw_role_name(who->role), who->scope,
             who->name[0] ? who->name : gw_role_name(who->role));
    bills_route(b);
}

void gw_h_bills(gw_t *gw, cmn_httpd_req_t *req, const char *rest, size_t n)
{
    breq_t *b = cmn_xcalloc(1, sizeof *b);
    b->gw = gw;
    b->req = req;
    b->rest = rest;
    b->rest_len = n;
    gw_authenticate(gw, req, on_auth, b);
}

static void bills_route(breq_t *b)
{
    gw_t *gw = b->gw;
    cmn_httpd_req_t *req = b->req;
    const char *rest = b->rest;
    size_t n = b->rest_len;
    const char *slash = memchr(rest, '/', n);
    size_t idn = slash ? (size_t)(slash - rest) : n;
    int charge = slash != NULL && n - idn == 7 && memcmp(slash, "/charge", 7) == 0;
    int refund = slash != NULL && n - idn == 7 && memcmp(slash, "/refund", 7) == 0;
    int waive = slash != NULL && n - idn == 6 && memcmp(slash, "/waive", 6) == 0;
    if ((slash != NULL && !charge && !refund && !waive) || parse(b, rest, idn) != 0)
        return fail(b, 404, "not_found", "no such bill");
    /* Staff of every lot, an operator its own lots' bills, a driver (reading) its own. */
    gw_conf_t *conf = gw_conf_ref(gw);
    int lot_known = cmn_config_lot(conf->cfg, b->lot) != NULL;
    int lot_ok = gw_may_lot(&b->who, conf->cfg, b->lot);
    gw_conf_unref(conf);
    if (!lot_known)
        return fail(b, 404, "not_found", "no such bill");
    if (b->who.role == GW_ROLE_DRIVER ? slash != NULL : !lot_ok)
        return fail(b, 403, "forbidden",
                    b->who.role == GW_ROLE_DRIVER ? "a driver token may only read its own bills"
                                                  : "this bill's lot is not yours");
    if (gw->redis == NULL || !cmn_redis_ready(gw->redis))
        return fail(b, 503, "unavailable", "Redis is unavailable");
    cmn_rargs_t a;
    cmn_rargs_init(&a);
    if (refund || waive) {
        char reason[300];
        long long amount;
        if (req->method != HTTP_POST)
            return fail(b, 405, "method_not_allowed", "use POST");
        if (action_body(b, reason, sizeof reason, &amount) != 0)
            return fail(b, 400, "bad_request",
                        "the body must be {\"reason\": TEXT} (and for a refund, optionally "
                        "\"amount\": a positive integer)");
        if (waive) {
            snprintf(b->reason, sizeof b->reason, "%s", reason);
            return send_waive(b);
        }
        cmn_rargs_str(&a, "EVALSHA");
        cmn_rargs_str(&a, cmn_redis_script_sha(gw->redis, gw->scripts[GW_LUA_BILL_REFUND]));
        cmn_rargs_str(&a, "4");
        cmn_rargs_fmt(&a, "pk:{%s}:s:%s", b->lot, b->seq);
        cmn_rargs_fmt(&a, "pk:{%s}:s:%s:h", b->lot, b->seq);
        cmn_rargs_fmt(&a, "pk:{%s}:due", b->lot);
        cmn_rargs_fmt(&a, "pk:{%s}:audit", b->lot);
        cmn_rargs_str(&a, b->seq);
        if (amount > 0)
            cmn_rargs_int(&a, amount);
        else
            cmn_rargs_str(&a, "");
        cmn_rargs_int(&a, gw_now(gw));
        cmn_rargs_str(&a, reason);
        cmn_rargs_str(&a, b->who_s);
        if (cmn_redis_command(gw->redis, on_refund, b, a.n, a.v, a.len) != 0)
            fail(b, 503, "unavailable", "Redis is unavailable");
        return;
    }
    if (!charge) {
        if (req->method != HTTP_GET)
            return fail(b, 405, "method_not_allowed", "use GET");
        cmn_rargs_str(&a, "EVALSHA");
        cmn_rargs_str(&a, cmn_redis_script_sha(gw->redis, gw->scripts[GW_LUA_BILL_GET]));
        cmn_rargs_str(&a, "2");
        cmn_rargs_fmt(&a, "pk:{%s}:s:%s", b->lot, b->seq);
        cmn_rargs_fmt(&a, "pk:{%s}:s:%s:h", b->lot, b->seq);
        if (cmn_redis_command(gw->redis, on_get, b, a.n, a.v, a.len) != 0)
            fail(b, 503, "unavailable", "Redis is unavailable");
        return;
    }
    if (req->method != HTTP_POST)
        return fail(b, 405, "method_not_allowed", "use POST");
    cmn_rargs_str(&a, "EVALSHA");
    cmn_rargs_str(&a, cmn_redis_script_sha(gw->redis, gw->scripts[GW_LUA_BILL_REQUEST_CHARGE]));
    cmn_rargs_str(&a, "4");
    cmn_rargs_fmt(&a, "pk:{%s}:s:%s", b->lot, b->seq);
    cmn_rargs_fmt(&a, "pk:{%s}:s:%s:h", b->lot, b->seq);
    cmn_rargs_fmt(&a, "pk:{%s}:due", b->lot);
    cmn_rargs_fmt(&a, "pk:{%s}:audit", b->lot);
    cmn_rargs_str(&a, b->seq);
    cmn_rargs_int(&a, gw_now(gw));
    cmn_rargs_str(&a, "charge requested by staff");
    cmn_rargs_str(&a, b->who_s);
    cmn_rargs_str(&a, "charge");
    if (cmn_redis_command(gw->redis, on_charge, b, a.n, a.v, a.len) != 0)
        fail(b, 503, "unavailable", "Redis is unavailable");
}
