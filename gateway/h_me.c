/*
 * A driver's own bills (docs/api.md; driver tokens only, whose scope is the driver id):
 *
 *   GET  /v1/me                     the driver: plates, score, suspension, what is owed
 *   GET  /v1/me/bills               the driver's bills, newest first (?limit, ?offset)
 *   GET  /v1/me/bills/{bill}        a bill with its fee explanation, reason codes and history
 *   POST /v1/me/bills/{bill}/pay    charge it now through the provider (billing does the charge)
 *   POST /v1/me/bills/{bill}/dispute  {"reason"}: no automatic charge until staff resolve it
 *
 * The bills are found through pk:drv:{D}:bills (every bill applied to the driver, by the time it
 * was first applied; driver_bill), then read in their lots' slots, pipelined.  A bill of another
 * driver is 403 whatever its id.
 */
#include <http_parser.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cmn/log.h"
#include "cmn/mem.h"
#include "cmn/time.h"

#define ME_LIMIT 20
#define ME_MAX 100

/* The fields of a bill a driver sees. */
static const char *const shown[] = {"id",       "lot",      "plate",         "lane_in",
                                    "lane_out", "class",    "amount",        "currency",
                                    "status",   "reason",   "match",         "tariff",
                                    "tariff_version", "paid_at", "dispute_reason",
                                    "dispute_outcome", "waive_reason", "refunded_amount", NULL};

static json_t *driver_bill(const cmn_cfg_lot_t *lot, const redisReply *rec,
                           const redisReply *hist, int full)
{
    json_t *all = gw_api_record(rec);
    json_t *o = json_object();
    for (int i = 0; shown[i] != NULL; i++) {
        json_t *v = json_object_get(all, shown[i]);
        if (v == NULL)
            continue;
        if (strcmp(shown[i], "amount") == 0 || strcmp(shown[i], "refunded_amount") == 0)
            json_object_set_new(o, shown[i], json_integer(strtoll(json_string_value(v), NULL, 10)));
        else
            json_object_set(o, shown[i], v);
    }
    const char *id = json_string_value(json_object_get(all, "id"));
    if (id != NULL) {
        char bid[120];
        snprintf(bid, sizeof bid, "%s~b", id);
        json_object_set_new(o, "bill", json_string(json_string_value(json_object_get(all, "bill"))
                                                       ? json_string_value(json_object_get(all, "bill"))
                                                       : bid));
    }
    static const char *const times[] = {"entry", "exit", NULL};
    for (int i = 0; times[i] != NULL; i++) {
        const char *v = json_string_value(json_object_get(all, times[i]));
        char t[CMN_RFC3339_MAX];
        if (v == NULL || lot == NULL)
            continue;
        gw_api_time(lot, strtoll(v, NULL, 10), t, sizeof t);
        json_object_set_new(o, times[i], json_string(t));
    }
    json_object_set_new(o, "disputed", json_boolean(json_is_string(json_object_get(all, "disputed"))));
    if (full) {
        json_t *ex = json_object_get(all, "explanation");
        json_object_set(o, "explanation", ex ? ex : json_null());
        json_object_set_new(o, "reason_codes", gw_api_reason_codes(all));
        json_t *h = gw_api_history(hist), *out = json_array();
        size_t i;
        json_t *e;
        /* The history without billing's internals (references, codes, attempts stay). */
        json_array_foreach(h, i, e)
        {
            json_t *x = json_object();
            static const char *const keep[] = {"at", "from", "to", "cause", "attempt", NULL};
            for (int k = 0; keep[k] != NULL; k++) {
                json_t *v = json_object_get(e, keep[k]);
                if (v != NULL)
                    json_object_set(x, keep[k], v);
            }
            json_array_append_new(out, x);
        }
        json_decref(h);
        json_object_set_new(o, "history", out);
    }
    json_decref(all);
    return o;
}

/* ---- GET /v1/me ------------------------------------------------------------------------------ */

static void on_me(void *data, int status, redisReply *r)
{
    gw_api_t *a = data;
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY)
        return gw_api_fail(a, 503, "unavailable", "Redis is unavailable");
    if (!cmn_reply_is(r, "ok") || r->elements < 3)
        return gw_api_fail(a, 404, "not_found", "driver %s is not enrolled", a->who.scope);
    const redisReply *rec = r->element[1], *unpaid = r->element[2];
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(a->who.scope));
    json_t *plates = json_array();
    const char *p = gw_api_field(rec, "plates");
    while (p != NULL && *p) {
        size_t n = strcspn(p, " ");
        if (n > 0)
            json_array_append_new(plates, json_stringn(p, n));
        p += n;
        while (*p == ' ')
            p++;
    }
    json_object_set_new(o, "plates", plates);
    const char *v = gw_api_field(rec, "score");
    json_object_set_new(o, "score", json_integer(v ? strtoll(v, NULL, 10) : 0));
    v = gw_api_field(rec, "suspended");
    json_object_set_new(o, "suspended", json_boolean(v && strcmp(v, "1") == 0));
    v = gw_api_field(rec, "unpaid_count");
    json_object_set_new(o, "unpaid_count", json_integer(v ? strtoll(v, NULL, 10) : 0));
    v = gw_api_field(rec, "unpaid_amount");
    json_object_set_new(o, "unpaid_amount", json_integer(v ? strtoll(v, NULL, 10) : 0));
    json_t *bills = json_array();
    for (size_t i = 0; unpaid->type == REDIS_REPLY_ARRAY && i + 1 < unpaid->elements; i += 2)
        json_array_append_new(bills, json_string(unpaid->element[i]->str));
    json_object_set_new(o, "unpaid_bills", bills);
    gw_api_done(a, 200, o);
}

/* ---- GET /v1/me/bills ------------------------------------------------------------------------ */

struct list_bill {
    gw_api_t *a;
    size_t index;
    const cmn_cfg_lot_t *lot;
};

static void list_done(gw_api_t *a)
{
    if (a->failed)
        return gw_api_fail(a, 503, "unavailable", "Redis is unavailable");
    json_t *o = a->acc;
    a->acc = NULL;
    json_t *items = json_object_get(o, "items");
    for (size_t i = json_array_size(items); i-- > 0;) {
        if (json_is_null(json_array_get(items, i)))
            json_array_remove(items, i);
    }
    json_object_set_new(o, "count", json_integer((json_int_t)json_array_size(items)));
    gw_api_done(a, 200, o);
}

static void on_list_bill(void *data, int status, redisReply *r)
{
    struct list_bill *b = data;
    gw_api_t *a = b->a;
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        a->failed = 1;
    else if (r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements > 0)
        json_array_set_new(json_object_get(a->acc, "items"), b->index,
                           driver_bill(b->lot, r->element[0], r->element[1], 0));
    cmn_free(b);
    if (--a->pending == 0)
        list_done(a);
}

static void on_total(void *data, int status, redisReply *r)
{
    gw_api_t *a = data;
    if (status == 0 && r != NULL && r->type == REDIS_REPLY_INTEGER)
        json_object_set_new(a->acc, "total", json_integer(r->integer));
    else
        a->failed = 1;
    if (--a->pending == 0)
        list_done(a);
}

static void on_bill_ids(void *data, int status, redisReply *r)
{
    gw_api_t *a = data;
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY)
        return gw_api_fail(a, 503, "unavailable", "Redis is unavailable");
    json_t *items = json_object_get(a->acc, "items");
    a->pending = 1;
    cmn_rargs_t count;
    cmn_rargs_init(&count);
    cmn_rargs_str(&count, "ZCARD");
    cmn_rargs_fmt(&count, "pk:drv:{%s}:bills", a->who.scope);
    if (cmn_redis_command(a->gw->redis, on_total, a, count.n, count.v, count.len) == 0)
        a->pending++;
    else
        a->failed = 1;
    for (size_t i = 0; i < r->elements; i++) {
        json_array_append_new(items, json_null());
        gw_api_t probe;
        memset(&probe, 0, sizeof probe);
        probe.conf = a->conf;
        const char *id = r->element[i]->str;
        if (id == NULL || gw_api_bill_id(&probe, id, strlen(id)) != 0)
            continue;
        cmn_rargs_t args;
        gw_api_script(a->gw, &args, GW_LUA_BILL_GET, 2);
        cmn_rargs_fmt(&args, "pk:{%s}:s:%s", probe.lot_id, probe.seq);
        cmn_rargs_fmt(&args, "pk:{%s}:s:%s:h", probe.lot_id, probe.seq);
        struct list_bill *b = cmn_xcalloc(1, sizeof *b);
        b->a = a;
        b->index = i;
        b->lot = probe.lot;
        if (cmn_redis_command(a->gw->redis, on_list_bill, b, args.n, args.v, args.len) == 0) {
            a->pending++;
        } else {
            cmn_free(b);
            a->failed = 1;
        }
    }
    if (--a->pending == 0)
        list_done(a);
}

static void list_bills(gw_api_t *a)
{
    char v[24];
    long long limit = ME_LIMIT, offset = 0;
    char *end;
    if (gw_api_query(a->req, "limit", v, sizeof v) != 0 &&
        ((limit = strtoll(v, &end, 10)) < 1 || limit > ME_MAX || *end || !v[0]))
        return gw_api_fail(a, 400, "bad_request", "limit must be from 1 to %d", ME_MAX);
    if (gw_api_query(a->req, "offset", v, sizeof v) != 0 &&
        ((offset = strtoll(v, &end, 10)) < 0 || offset > 1000000 || *end || !v[0]))
        return gw_api_fail(a, 400, "bad_request", "offset must be a number from 0");
    a->acc = json_object();
    json_object_set_new(a->acc, "driver", json_string(a->who.scope));
    json_object_set_new(a->acc, "items", json_array());
    json_object_set_new(a->acc, "offset", json_integer(offset));
    json_object_set_new(a->acc, "limit", json_integer(limit));
    json_object_set_new(a->acc, "total", json_integer(0));
    cmn_rargs_t args;
    cmn_rargs_init(&args);
    cmn_rargs_str(&args, "ZREVRANGE");
    cmn_rargs_fmt(&args, "pk:drv:{%s}:bills", a->who.scope);
    cmn_rargs_int(&args, offset);
    cmn_rargs_int(&args, offset + limit - 1);
    gw_api_send(a, &args, on_bill_ids, a);
}

/* ---- one bill -------------------------------------------------------------------------------- */

static void on_bill(void *data, int status, redisReply *r)
{
    gw_api_t *a = data;
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        return gw_api_fail(a, 503, "unavailable", "Redis is unavailable");
    const redisReply *rec = r->element[0];
    if (rec->type != REDIS_REPLY_ARRAY || rec->elements == 0)
        return gw_api_fail(a, 404, "not_found", "no such bill");
    const char *driver = gw_api_field(rec, "driver");
    if (driver == NULL || strcmp(driver, a->who.scope) != 0)
        return gw_api_fail(a, 403, "forbidden", "bill %s is not yours", a->bill);
    gw_api_done(a, 200, driver_bill(a->lot, rec, r->element[1], 1));
}

static void on_charge_requested(void *data, int status, redisReply *r)
{
    gw_api_t *a = data;
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY)
        return gw_api_fail(a, 503, "unavailable", "Redis is unavailable");
    if (cmn_reply_is(r, "unknown"))
        return gw_api_fail(a, 404, "not_found", "no such bill");
    const char *st = cmn_reply_str(r, 1, NULL);
    if (cmn_reply_is(r, "not_due"))
        return gw_api_fail(a, 409, "conflict", "bill %s is %s: nothing to pay now", a->bill,
                           st ? st : "?");
    json_t *o = json_object();
    json_object_set_new(o, "bill", json_string(a->bill));
    json_object_set_new(o, "status", json_string(st ? st : ""));
    json_object_set_new(o, "charge", json_string("requested"));
    gw_api_done(a, 202, o);
}

/* The bill's owner, read before paying (bill_request_charge itself knows no owners). */
static void on_owner(void *data, int status, redisReply *r)
{
    gw_api_t *a = data;
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        return gw_api_fail(a, 503, "unavailable", "Redis is unavailable");
    const char *driver = r->element[0]->str, *st = r->element[1]->str;
    if (st == NULL)
        return gw_api_fail(a, 404, "not_found", "no such bill");
    if (driver == NULL || strcmp(driver, a->who.scope) != 0)
        return gw_api_fail(a, 403, "forbidden", "bill %s is not yours", a->bill);
    char who[200];
    gw_api_who(a, who, sizeof who);
    cmn_rargs_t args;
    gw_api_script(a->gw, &args, GW_LUA_BILL_REQUEST_CHARGE, 4);
    cmn_rargs_fmt(&args, "pk:{%s}:s:%s", a->lot_id, a->seq);
    cmn_rargs_fmt(&args, "pk:{%s}:s:%s:h", a->lot_id, a->seq);
    cmn_rargs_fmt(&args, "pk:{%s}:due", a->lot_id);
    cmn_rargs_fmt(&args, "pk:{%s}:audit", a->lot_id);
    cmn_rargs_str(&args, a->seq);
    cmn_rargs_int(&args, gw_now(a->gw));
    cmn_rargs_str(&args, "payment requested by the driver");
    cmn_rargs_str(&args, who);
    cmn_rargs_str(&args, "pay");
    gw_api_send(a, &args, on_charge_requested, a);
}

static void one_bill(gw_api_t *a, const char *p, size_t n)
{
    const char *slash = memchr(p, '/', n);
    size_t idn = slash ? (size_t)(slash - p) : n;
    if (gw_api_bill_id(a, p, idn) != 0)
        return gw_api_fail(a, 404, "not_found", "no such bill");
    const char *action = slash ? slash + 1 : "";
    size_t an = slash ? n - idn - 1 : 0;
    cmn_rargs_t args;
    if (an == 0) {
        if (a->req->method != HTTP_GET)
            return gw_api_fail(a, 405, "method_not_allowed", "use GET");
        gw_api_script(a->gw, &args, GW_LUA_BILL_GET, 2);
        cmn_rargs_fmt(&args, "pk:{%s}:s:%s", a->lot_id, a->seq);
        cmn_rargs_fmt(&args, "pk:{%s}:s:%s:h", a->lot_id, a->seq);
        gw_api_send(a, &args, on_bill, a);
        return;
    }
    int pay = an == 3 && memcmp(action, "pay", 3) == 0;
    int dispute = an == 7 && memcmp(action, "dispute", 7) == 0;
    if (!pay && !dispute)
        return gw_api_fail(a, 404, "not_found", "no such resource");
    if (a->req->method != HTTP_POST)
        return gw_api_fail(a, 405, "method_not_allowed", "use POST");
    if (dispute) {
        json_t *doc;
        if (gw_api_reason(a, &doc) != 0)
            return;
        json_decref(doc);
        return gw_api_dispute(a, a->who.scope);
    }
    cmn_rargs_init(&args);
    cmn_rargs_str(&args, "HMGET");
    cmn_rargs_fmt(&args, "pk:{%s}:s:%s", a->lot_id, a->seq);
    cmn_rargs_str(&args, "driver");
    cmn_rargs_str(&args, "status");
    gw_api_send(a, &args, on_owner, a);
}

static void me_entry(gw_api_t *a)
{
    if (gw_api_require(a, GW_ROLE_BIT(GW_ROLE_DRIVER)) != 0 || gw_api_ready(a) != 0)
        return;
    const char *p = a->rest;
    size_t n = a->rest_len;
    if (n == 0) {
        if (a->req->method != HTTP_GET)
            return gw_api_fail(a, 405, "method_not_allowed", "use GET");
        cmn_rargs_t args;
        gw_api_script(a->gw, &args, GW_LUA_DRIVER_GET, 2);
        cmn_rargs_fmt(&args, "pk:drv:{%s}", a->who.scope);
        cmn_rargs_fmt(&args, "pk:drv:{%s}:unpaid", a->who.scope);
        gw_api_send(a, &args, on_me, a);
        return;
    }
    if (n == 6 && memcmp(p, "/bills", 6) == 0) {
        if (a->req->method != HTTP_GET)
            return gw_api_fail(a, 405, "method_not_allowed", "use GET");
        return list_bills(a);
    }
    if (n > 7 && memcmp(p, "/bills/", 7) == 0)
        return one_bill(a, p + 7, n - 7);
    gw_api_fail(a, 404, "not_found", "no such resource");
}

void gw_h_me(gw_t *gw, cmn_httpd_req_t *req, const char *rest, size_t n)
{
    gw_api_start(gw, req, rest, n, me_entry);
}
