/*
 * Lane work for operators (docs/api.md; admin tokens, and operator tokens for their own lots;
 * city tokens may read passes and the allow-list):
 *
 *   POST   /v1/lots/{lot}/lanes/{lane}/open   {"reason"}: open the barrier from afar
 *   GET    /v1/lots/{lot}/passes              monthly passes: the configuration's and runtime's
 *   POST   /v1/lots/{lot}/passes              {"plate", "from", "to", "reason"}
 *   DELETE /v1/lots/{lot}/passes/{plate}      {"reason"} (or ?reason=)
 *   GET    /v1/lots/{lot}/allow               the allow-list
 *   POST   /v1/lots/{lot}/allow               {"plate", "reason"}
 *   DELETE /v1/lots/{lot}/allow/{plate}       {"reason"} (or ?reason=)
 *   POST   /v1/sessions/{id}/reassign         {"to_session", "reason"}: a misread exit corrected
 *
 * A remote opening is counted in the lot-day counters (manual_open), published on the lot's
 * stream pk:{L}:lane_commands for the barrier's bridge, and audited, in one script.  Runtime
 * passes and allow-list entries live in pk:{L}:passes and pk:{L}:allow, which the entry and exit
 * scripts read in their first round trip next to the configuration's lists; entries of the
 * configuration file are changed by editing it.
 *
 * Design note on reassign.  An exit matched to session X (a misread: a confusable match, a
 * candidate) belongs to open session Y.  Three round trips: lane_reassign 'read' (X's record, Y's
 * open record and its tariff), the plate index of Y's plate (its driver), then lane_reassign
 * 'commit', which applies everything in the lot's slot provided X and Y are still as read: X opens
 * again (its car is inside) and its bill is void; Y closes at X's exit with the fee recomputed by
 * the tariff in force at Y's entry, billed to Y's driver (or left `unbilled` for staff when the
 * plate has none); both histories say why.  Then the drivers' records follow (X's bill settled as
 * void, Y's applied), as after an exit.
 */
#include <http_parser.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cmn/json.h"
#include "cmn/log.h"
#include "cmn/mem.h"
#include "cmn/plate.h"
#include "cmn/time.h"
#include "events.h"

#define US "\x1f"
#define RECORD_TTL_S (35 * 86400)

static unsigned lane_roles(void)
{
    return GW_ROLE_BIT(GW_ROLE_ADMIN) | GW_ROLE_BIT(GW_ROLE_OPERATOR);
}

/* The lot of the path, and the principal's right to it; 0, or -1 answered. */
static int path_lot(gw_api_t *a, const char *id, size_t n, unsigned roles)
{
    if (gw_api_require(a, roles) != 0)
        return -1;
    if (gw_api_unescape(id, n, a->lot_id, sizeof a->lot_id) != 0 ||
        (a->lot = cmn_config_lot(a->conf->cfg, a->lot_id)) == NULL) {
        gw_api_fail(a, 404, "not_found", "no such lot");
        return -1;
    }
    if (!gw_may_lot(&a->who, a->conf->cfg, a->lot_id)) {
        gw_api_fail(a, 403, "forbidden", "lot %s is not yours", a->lot_id);
        return -1;
    }
    return gw_api_ready(a);
}

/* ---- remote opening ------------------------------------------------------------------------- */

static void on_opened(void *data, int status, redisReply *r)
{
    gw_api_t *a = data;
    if (status != 0 || r == NULL || !cmn_reply_is(r, "ok"))
        return gw_api_fail(a, 503, "unavailable", "Redis is unavailable");
    const char *cmd = cmn_reply_str(r, 1, NULL), *audit = cmn_reply_str(r, 2, NULL);
    cmn_log(CMN_LOG_INFO, "lane_open", "lot %s lane %s opened by %s: %s", a->lot_id, a->aux,
            a->who.name, a->reason);
    json_t *o = json_object();
    json_object_set_new(o, "lot", json_string(a->lot_id));
    json_object_set_new(o, "lane", json_string(a->aux));
    json_object_set_new(o, "command", json_string("open"));
    json_object_set_new(o, "command_id", json_string(cmd ? cmd : ""));
    json_object_set_new(o, "reason", json_string(a->reason));
    json_object_set_new(o, "audit_id", json_string(audit ? audit : ""));
    gw_api_done(a, 202, o);
}

static void lane_open(gw_api_t *a, const char *lane, size_t n)
{
    if (a->req->method != HTTP_POST)
        return gw_api_fail(a, 405, "method_not_allowed", "use POST");
    if (gw_api_unescape(lane, n, a->aux, sizeof a->aux) != 0 ||
        cmn_config_lane(a->lot, a->aux) == NULL)
        return gw_api_fail(a, 404, "not_found", "lot %s has no such lane", a->lot_id);
    json_t *doc;
    if (gw_api_reason(a, &doc) != 0)
        return;
    json_decref(doc);
    int64_t now = gw_now(a->gw);
    char day[16], who[200];
    cmn_date_format(gw_api_lot_day(a->lot, now), day, sizeof day);
    gw_api_who(a, who, sizeof who);
    cmn_rargs_t args;
    gw_api_script(a->gw, &args, GW_LUA_LANE_OPEN, 3);
    cmn_rargs_fmt(&args, "pk:{%s}:day:%s", a->lot_id, day);
    cmn_rargs_fmt(&args, "pk:{%s}:lane_commands", a->lot_id);
    cmn_rargs_fmt(&args, "pk:{%s}:audit", a->lot_id);
    cmn_rargs_str(&args, a->aux);
    cmn_rargs_str(&args, a->reason);
    cmn_rargs_str(&args, who);
    cmn_rargs_int(&args, now);
    cmn_rargs_str(&args, a->lot_id);
    gw_api_send(a, &args, on_opened, a);
}

/* ---- passes and allow-list ------------------------------------------------------------------- */

static void on_list(void *data, int status, redisReply *r)
{
    gw_api_t *a = data;
    if (status != 0 || r == NULL || !cmn_reply_is(r, "list") || r->elements != 3)
        return gw_api_fail(a, 503, "unavailable", "Redis is unavailable");
    const cmn_cfg_lot_t *lot = a->lot;
    json_t *passes = json_array(), *allow = json_array();
    for (size_t i = 0; i < lot->npasses; i++) {
        char from[16], to[16];
        cmn_date_format(lot->passes[i].from_day, from, sizeof from);
        cmn_date_format(lot->passes[i].to_day, to, sizeof to);
        json_t *p = json_object();
        json_object_set_new(p, "plate", json_string(lot->passes[i].plate));
        json_object_set_new(p, "from", json_string(from));
        json_object_set_new(p, "to", json_string(to));
        json_object_set_new(p, "source", json_string("config"));
        json_array_append_new(passes, p);
    }
    const redisReply *rp = r->element[1], *ra = r->element[2];
    for (size_t i = 0; rp->type == REDIS_REPLY_ARRAY && i + 1 < rp->elements; i += 2) {
        const char *v = rp->element[i + 1]->str, *bar = v ? strchr(v, '|') : NULL;
        if (rp->element[i]->str == NULL || bar == NULL)
            continue;
        json_t *p = json_object();
        json_object_set_new(p, "plate", json_string(rp->element[i]->str));
        json_object_set_new(p, "from", json_stringn(v, (size_t)(bar - v)));
        json_object_set_new(p, "to", json_string(bar + 1));
        json_object_set_new(p, "source", json_string("runtime"));
        json_array_append_new(passes, p);
    }
    for (size_t i = 0; i < lot->nallow; i++) {
        json_t *p = json_object();
        json_object_set_new(p, "plate", json_string(lot->allow[i]));
        json_object_set_new(p, "source", json_string("config"));
        json_array_append_new(allow, p);
    }
    for (size_t i = 0; ra->type == REDIS_REPLY_ARRAY && i < ra->elements; i++) {
        if (ra->element[i]->str == NULL)
            continue;
        json_t *p = json_object();
        json_object_set_new(p, "plate", json_string(ra->element[i]->str));
        json_object_set_new(p, "source", json_string("runtime"));
        json_array_append_new(allow, p);
    }
    json_t *o = json_object();
    json_object_set_new(o, "lot", json_string(a->lot_id));
    json_object_set_new(o, a->aux[0] == 'p' ? "passes" : "allow", a->aux[0] == 'p' ? passes : allow);
    json_decref(a->aux[0] == 'p' ? allow : passes);
    gw_api_done(a, 200, o);
}

static void on_changed(void *data, int status, redisReply *r)
{
    gw_api_t *a = data;
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY)
        return gw_api_fail(a, 503, "unavailable", "Redis is unavailable");
    if (cmn_reply_is(r, "unknown"))
        return gw_api_fail(a, 404, "not_found", "plate %s has no runtime %s at lot %s", a->plate,
                           a->aux[0] == 'p' ? "pass" : "allow-list entry", a->lot_id);
    const char *what = cmn_reply_str(r, 1, NULL), *audit = cmn_reply_str(r, 2, NULL);
    json_t *o = json_object();
    json_object_set_new(o, "lot", json_string(a->lot_id));
    json_object_set_new(o, "plate", json_string(a->plate));
    json_object_set_new(o, "result", json_string(what ? what : ""));
    json_object_set_new(o, "audit_id", json_string(audit ? audit : ""));
    gw_api_done(a, strcmp(what ? what : "", "added") == 0 ? 201 : 200, o);
}

static int in_config(const gw_api_t *a, int pass)
{
    const cmn_cfg_lot_t *lot = a->lot;
    for (size_t i = 0; pass && i < lot->npasses; i++) {
        if (lot->passes[i].plate && strcmp(lot->passes[i].plate, a->plate) == 0)
            return 1;
    }
    for (size_t i = 0; !pass && i < lot->nallow; i++) {
        if (strcmp(lot->allow[i], a->plate) == 0)
            return 1;
    }
    return 0;
}

static int set_plate(gw_api_t *a, const char *text, size_t n)
{
    cmn_plate_t p;
    if (text == NULL || cmn_plate_parse(text, n, &p) != 0 || p.text[0] == '\0') {
        gw_api_fail(a, 400, "bad_request", "plate must be a valid plate (see parkctl plate)");
        return -1;
    }
    snprintf(a->plate, sizeof a->plate, "%s", p.text);
    return 0;
}

/* kind "passes" or "allow"; rest after it ("" or "/{plate}"). */
static void access_list(gw_api_t *a, int pass, const char *rest, size_t n)
{
    const cmn_config_t *cfg = a->conf->cfg;
    const char *op = NULL;
    char from[16] = "", to[16] = "";
    snprintf(a->aux, sizeof a->aux, "%s", pass ? "p" : "a");
    if (n == 0 && a->req->method == HTTP_GET) {
        (void)cfg;
        cmn_rargs_t args;
        gw_api_script(a->gw, &args, GW_LUA_LANE_ACCESS, 3);
        cmn_rargs_fmt(&args, "pk:{%s}:passes", a->lot_id);
        cmn_rargs_fmt(&args, "pk:{%s}:allow", a->lot_id);
        cmn_rargs_fmt(&args, "pk:{%s}:audit", a->lot_id);
        cmn_rargs_str(&args, "list");
        gw_api_send(a, &args, on_list, a);
        return;
    }
    if (a->who.role == GW_ROLE_CITY)
        return gw_api_fail(a, 403, "forbidden", "a city token may read passes, not change them");
    if (n == 0) {
        if (a->req->method != HTTP_POST)
            return gw_api_fail(a, 405, "method_not_allowed", "use GET or POST");
        json_t *doc;
        if (gw_api_reason(a, &doc) != 0)
            return;
        json_t *pl = json_object_get(doc, "plate");
        int bad = set_plate(a, json_string_value(pl), json_string_length(pl));
        if (bad == 0 && pass) {
            const char *f = json_string_value(json_object_get(doc, "from"));
            const char *t = json_string_value(json_object_get(doc, "to"));
            int64_t fd, td;
            if (f == NULL || t == NULL || cmn_date_parse(f, strlen(f), &fd) != 0 ||
                cmn_date_parse(t, strlen(t), &td) != 0 || fd > td) {
                json_decref(doc);
                return gw_api_fail(a, 400, "bad_request",
                                   "from and to must be dates (YYYY-MM-DD), from not after to");
            }
            cmn_date_format(fd, from, sizeof from);
            cmn_date_format(td, to, sizeof to);
        }
        json_decref(doc);
        if (bad != 0)
            return;
        op = pass ? "pass_add" : "allow_add";
    } else {
        if (a->req->method != HTTP_DELETE)
            return gw_api_fail(a, 405, "method_not_allowed", "use DELETE");
        char text[128];
        if (rest[0] != '/' || gw_api_unescape(rest + 1, n - 1, text, sizeof text) != 0 ||
            set_plate(a, text, strlen(text)) != 0)
            return;
        /* The reason from the body or the query. */
        int q = gw_api_query(a->req, "reason", a->reason, sizeof a->reason);
        if (q <= 0 || a->reason[0] == '\0') {
            json_t *doc;
            if (gw_api_reason(a, &doc) != 0)
                return;
            json_decref(doc);
        }
        if (in_config(a, pass))
            return gw_api_fail(a, 409, "conflict",
                               "plate %s is in the configuration file's list of lot %s: change it "
                               "there", a->plate, a->lot_id);
        op = pass ? "pass_del" : "allow_del";
    }
    char who[200];
    gw_api_who(a, who, sizeof who);
    cmn_rargs_t args;
    gw_api_script(a->gw, &args, GW_LUA_LANE_ACCESS, 3);
    cmn_rargs_fmt(&args, "pk:{%s}:passes", a->lot_id);
    cmn_rargs_fmt(&args, "pk:{%s}:allow", a->lot_id);
    cmn_rargs_fmt(&args, "pk:{%s}:audit", a->lot_id);
    cmn_rargs_str(&args, op);
    cmn_rargs_str(&args, a->plate);
    cmn_rargs_str(&args, from);
    cmn_rargs_str(&args, to);
    cmn_rargs_str(&args, a->reason);
    cmn_rargs_str(&args, who);
    cmn_rargs_int(&args, gw_now(a->gw));
    cmn_rargs_str(&args, a->lot_id);
    gw_api_send(a, &args, on_changed, a);
}

static void lots_entry(gw_api_t *a)
{
    const char *p = a->rest;
    size_t n = a->rest_len;
    const char *slash = memchr(p, '/', n);
    if (slash == NULL)
        return gw_api_fail(a, 404, "not_found", "no such resource");
    size_t ln = (size_t)(slash - p), rn = n - ln;
    const char *r = slash;
    if (rn > 7 && memcmp(r, "/lanes/", 7) == 0) {
        const char *lane = r + 7;
        size_t lnn = rn - 7;
        const char *s2 = memchr(lane, '/', lnn);
        if (s2 == NULL || (size_t)(lane + lnn - s2) != 5 || memcmp(s2, "/open", 5) != 0)
            return gw_api_fail(a, 404, "not_found", "no such resource");
        if (path_lot(a, p, ln, lane_roles()) != 0)
            return;
        return lane_open(a, lane, (size_t)(s2 - lane));
    }
    int pass = rn >= 7 && memcmp(r, "/passes", 7) == 0 && (rn == 7 || r[7] == '/');
    int allow = rn >= 6 && memcmp(r, "/allow", 6) == 0 && (rn == 6 || r[6] == '/');
    if (!pass && !allow)
        return gw_api_fail(a, 404, "not_found", "no such resource");
    if (path_lot(a, p, ln, lane_roles() | GW_ROLE_BIT(GW_ROLE_CITY)) != 0)
        return;
    size_t skip = pass ? 7 : 6;
    access_list(a, pass, r + skip, rn - skip);
}

void gw_h_lanes(gw_t *gw, cmn_httpd_req_t *req, const char *rest, size_t n)
{
    gw_api_start(gw, req, rest, n, lots_entry);
}

/* ---- reassign -------------------------------------------------------------------------------- */

struct reassign {
    char seq_y[24];
    char *x_status;
    char *y_record; /* Y's open record as read */
    json_t *x;      /* X's record */
    json_t *y;      /* Y's closed record, as it will be written */
    char y_fold[CMN_PLATE_MAX];
    char x_open[400]; /* X's open record again ('' for an exit without entry) */
    char x_fold[CMN_PLATE_MAX];
    char day[16];
    char driver[65], provider[65];
    long long amount;
    const char *currency;
};

static void free_reassign(void *p)
{
    struct reassign *r = p;
    if (r == NULL)
        return;
    cmn_free(r->x_status);
    cmn_free(r->y_record);
    json_decref(r->x);
    json_decref(r->y);
    cmn_free(r);
}

static const char *xs(const struct reassign *r, const char *k)
{
    const char *v = json_string_value(json_object_get(r->x, k));
    return v != NULL ? v : "";
}

static void send_commit(gw_api_t *a);

static void on_committed(void *data, int status, redisReply *rp)
{
    gw_api_t *a = data;
    struct reassign *r = a->extra;
    if (status != 0 || rp == NULL || rp->type != REDIS_REPLY_ARRAY) {
        if (status == 0 && rp != NULL && rp->type == REDIS_REPLY_ERROR)
            cmn_log(CMN_LOG_ERROR, "redis_script", "lane_reassign: %.200s", rp->str);
        return gw_api_fail(a, 503, "unavailable", "Redis is unavailable");
    }
    if (cmn_reply_is(rp, "retry"))
        return gw_api_fail(a, 409, "conflict", "the sessions changed meanwhile; look again");
    if (cmn_reply_is(rp, "day")) {
        const char *day = cmn_reply_str(rp, 1, NULL);
        if (a->asks++ > 0 || day == NULL || strlen(day) >= sizeof r->day)
            return gw_api_fail(a, 503, "unavailable", "the bill's day keeps changing");
        snprintf(r->day, sizeof r->day, "%s", day);
        return send_commit(a);
    }
    const char *audit = cmn_reply_str(rp, 1, NULL);
    const char *x_driver = cmn_reply_str(rp, 2, NULL), *x_bill = cmn_reply_str(rp, 3, NULL);
    if (x_bill != NULL && x_bill[0] != '\0')
        gw_api_driver_waived(a->gw, x_driver, x_bill);
    const char *y_status = json_string_value(json_object_get(r->y, "status"));
    const char *y_bill = json_string_value(json_object_get(r->y, "bill"));
    if (y_bill != NULL && r->driver[0] != '\0')
        gw_driver_bill_apply(a->gw, r->driver, y_bill, r->amount);
    cmn_log(CMN_LOG_INFO, "reassigned", "lot %s: exit of session %s~%s reassigned to %s~%s by %s",
            a->lot_id, a->lot_id, a->seq, a->lot_id, r->seq_y, a->who.name);
    json_t *o = json_object();
    char sid[120];
    snprintf(sid, sizeof sid, "%s~%s", a->lot_id, a->seq);
    gw_set_str(o, "session", sid);
    snprintf(sid, sizeof sid, "%s~%s", a->lot_id, r->seq_y);
    gw_set_str(o, "reassigned_to", sid);
    json_object_set_new(o, "status", json_string(y_status ? y_status : ""));
    json_object_set_new(o, "bill", y_bill ? json_string(y_bill) : json_null());
    json_object_set_new(o, "amount", json_integer(r->amount));
    gw_set_str(o, "currency", r->currency);
    json_object_set_new(o, "void_bill",
                        x_bill && x_bill[0] ? json_string(x_bill) : json_null());
    json_object_set(o, "explanation", json_object_get(r->y, "explanation_json")
                                          ? json_object_get(r->y, "explanation_json")
                                          : json_null());
    gw_set_str(o, "audit_id", audit);
    gw_api_done(a, 200, o);
}

static void send_commit(gw_api_t *a)
{
    struct reassign *r = a->extra;
    static const char *const keys[] = {"open", "fold", "held", "tariffs", "bills"};
    cmn_rargs_t *args = cmn_xalloc(sizeof *args);
    char who[200];
    gw_api_who(a, who, sizeof who);
    gw_api_script(a->gw, args, GW_LUA_LANE_REASSIGN, 14);
    for (int i = 0; i < 5; i++)
        cmn_rargs_fmt(args, "pk:{%s}:%s", a->lot_id, keys[i]);
    cmn_rargs_fmt(args, "pk:{%s}:s:%s", a->lot_id, a->seq);
    cmn_rargs_fmt(args, "pk:{%s}:s:%s:h", a->lot_id, a->seq);
    cmn_rargs_fmt(args, "pk:{%s}:s:%s", a->lot_id, r->seq_y);
    cmn_rargs_fmt(args, "pk:{%s}:s:%s:h", a->lot_id, r->seq_y);
    cmn_rargs_fmt(args, "pk:{%s}:due", a->lot_id);
    cmn_rargs_fmt(args, "pk:{%s}:day:%s", a->lot_id, r->day);
    cmn_rargs_fmt(args, "pk:{%s}:arrears", a->lot_id);
    cmn_rargs_fmt(args, "pk:{%s}:arrears:info", a->lot_id);
    cmn_rargs_fmt(args, "pk:{%s}:audit", a->lot_id);
    cmn_rargs_str(args, "commit");
    cmn_rargs_str(args, a->seq);
    cmn_rargs_str(args, r->seq_y);
    cmn_rargs_str(args, r->x_status);
    cmn_rargs_str(args, r->y_record);
    cmn_rargs_int(args, gw_now(a->gw));
    cmn_rargs_str(args, a->reason);
    cmn_rargs_str(args, who);
    cmn_rargs_str(args, a->lot_id);
    cmn_rargs_str(args, r->x_open);
    cmn_rargs_str(args, r->x_fold);
    cmn_rargs_str(args, r->y_fold);
    const char *bill = json_string_value(json_object_get(r->y, "bill"));
    char stream[600] = "";
    if (bill != NULL)
        snprintf(stream, sizeof stream,
                 "bill" US "%s" US "lot" US "%s" US "driver" US "%s" US "provider" US "%s" US
                 "amount" US "%lld" US "currency" US "%s",
                 bill, a->lot_id, r->driver, r->provider, r->amount, r->currency);
    cmn_rargs_str(args, stream);
    cmn_rargs_int(args, RECORD_TTL_S);
    const char *k;
    json_t *v;
    json_object_foreach(r->y, k, v)
    {
        if (!json_is_string(v))
            continue;
        cmn_rargs_str(args, k);
        cmn_rargs_ref(args, json_string_value(v), json_string_length(v));
    }
    if (args->overflow || cmn_redis_command(a->gw->redis, on_committed, a, args->n, args->v,
                                            args->len) != 0) {
        cmn_free(args);
        return gw_api_fail(a, 503, "unavailable", "Redis is unavailable");
    }
    cmn_free(args);
}

/* Y's driver from its plate's copy (driver US ver US ... US provider), then the commit. */
static void on_y_driver(void *data, int status, redisReply *rp)
{
    gw_api_t *a = data;
    struct reassign *r = a->extra;
    if (status != 0 || rp == NULL)
        return gw_api_fail(a, 503, "unavailable", "Redis is unavailable");
    gw_plate_driver(a->conf, rp, r->driver, sizeof r->driver, r->provider, sizeof r->provider);
    char bid[120], sid[110];
    snprintf(sid, sizeof sid, "%s~%s", a->lot_id, r->seq_y);
    if (r->driver[0] != '\0') {
        snprintf(bid, sizeof bid, "%s~b", sid);
        gw_set_str(r->y, "bill", bid);
        gw_set_str(r->y, "driver", r->driver);
        gw_set_str(r->y, "provider", r->provider);
        gw_set_str(r->y, "status", "pending");
        gw_set_str(r->y, "reason", "credit_ok");
    } else {
        /* Nobody to charge: staff collect it another way. */
        gw_set_str(r->y, "status", "unbilled");
        gw_set_str(r->y, "reason", "not_enrolled");
    }
    send_commit(a);
}

static int reassignable(const char *status)
{
    static const char *const ok[] = {"pending", "retry_scheduled", "failed", "overdue",
                                     "defaulted", "closed", NULL};
    for (int i = 0; ok[i] != NULL; i++) {
        if (strcmp(ok[i], status) == 0)
            return 1;
    }
    return 0;
}

static void on_read(void *data, int status, redisReply *rp)
{
    gw_api_t *a = data;
    struct reassign *r = a->extra;
    if (status != 0 || rp == NULL || !cmn_reply_is(rp, "read") || rp->elements != 5)
        return gw_api_fail(a, 503, "unavailable", "Redis is unavailable");
    const redisReply *xrec = rp->element[1];
    if (xrec->type != REDIS_REPLY_ARRAY || xrec->elements == 0)
        return gw_api_fail(a, 404, "not_found", "session %s~%s has no exit to reassign",
                           a->lot_id, a->seq);
    r->x = gw_api_record(xrec);
    const char *st = xs(r, "status");
    if (xs(r, "exit")[0] == '\0')
        return gw_api_fail(a, 409, "conflict", "session %s~%s has not left", a->lot_id, a->seq);
    if (!reassignable(st))
        return gw_api_fail(a, 409, "conflict",
                           "session %s~%s is %s: only an unpaid or free exit can be reassigned "
                           "(refund a paid bill first)", a->lot_id, a->seq, st);
    size_t ylen = 0;
    const char *yrec = cmn_reply_str(rp, 2, &ylen);
    if (yrec == NULL || ylen == 0)
        return gw_api_fail(a, 409, "conflict", "session %s~%s is not open", a->lot_id, r->seq_y);
    gw_session_rec_t y;
    if (gw_session_parse(yrec, ylen, &y) != 0)
        return gw_api_fail(a, 503, "unavailable", "session record is unreadable");
    r->x_status = cmn_xstrdup(st);
    r->y_record = cmn_xstrndup(yrec, ylen);
    snprintf(r->y_fold, sizeof r->y_fold, "%s", y.fold);

    /* X opens again as it entered, unless it was made from the exit alone. */
    const char *xplate = xs(r, "plate");
    const char *xreason = xs(r, "reason");
    if (strcmp(xs(r, "match"), "none") != 0 && xs(r, "entry")[0] != '\0') {
        cmn_plate_fold_key(xplate, 1, r->x_fold, sizeof r->x_fold);
        snprintf(r->x_open, sizeof r->x_open, "%s" US "%s" US "%s" US "%s" US "%s" US "%s" US "%s",
                 xplate, xs(r, "entry"), xs(r, "lane_in"), xs(r, "class"),
                 xs(r, "tariff_version"),
                 strcmp(xreason, "pass") == 0 ? "p" : strcmp(xreason, "exempt") == 0 ? "e" : "",
                 r->x_fold);
    }
    cmn_instant_t exit_at = strtoll(xs(r, "exit"), NULL, 10);
    cmn_date_format(gw_api_lot_day(a->lot, exit_at), r->day, sizeof r->day);

    /* Y's fee by the tariff in force at its entry, up to X's exit. */
    const cmn_tariff_t *t = gw_tariff_by_version(a->gw, y.tver);
    size_t tlen = 0;
    const char *tjson = cmn_reply_str(rp, 4, &tlen);
    if (t == NULL && tjson != NULL && tlen > 0)
        t = gw_tariff_learn(a->gw, y.tver, tjson, tlen);
    if (t == NULL)
        t = a->lot->tariff;
    if (exit_at < y.entry)
        exit_at = y.entry;
    cmn_fee_t fee;
    memset(&fee, 0, sizeof fee);
    if (cmn_tariff_fee(t, y.vclass, y.entry, exit_at, CMN_FEE_EXPLAIN, &fee) != 0) {
        cmn_fee_dispose(&fee);
        return gw_api_fail(a, 503, "unavailable", "the fee cannot be computed");
    }
    json_t *ex = cmn_fee_to_json(t, &fee);
    char *ex_text = cmn_json_dump(ex, JSON_COMPACT | JSON_PRESERVE_ORDER);
    r->amount = fee.amount;
    cmn_fee_dispose(&fee);
    r->currency = cmn_tariff_currency(t);
    int pass = strchr(y.flags, 'p') != NULL || gw_lot_has_pass(a->lot, y.plate, exit_at);
    int exempt = strchr(y.flags, 'e') != NULL;
    if (pass || exempt)
        r->amount = 0;

    char sid[110], xsid[110];
    snprintf(sid, sizeof sid, "%s~%s", a->lot_id, r->seq_y);
    snprintf(xsid, sizeof xsid, "%s~%s", a->lot_id, a->seq);
    r->y = json_object();
    gw_set_str(r->y, "id", sid);
    gw_set_str(r->y, "session", sid);
    gw_set_str(r->y, "plate", y.plate);
    gw_set_str(r->y, "read_plate", xs(r, "read_plate"));
    gw_set_str(r->y, "lot", a->lot_id);
    gw_set_str(r->y, "lane_in", y.lane);
    gw_set_str(r->y, "lane_out", xs(r, "lane_out"));
    gw_set_int(r->y, "entry", y.entry);
    gw_set_str(r->y, "exit", xs(r, "exit"));
    gw_set_str(r->y, "class", y.vclass);
    gw_set_str(r->y, "tariff", cmn_tariff_id(t));
    gw_set_str(r->y, "tariff_version", cmn_tariff_version(t));
    gw_set_int(r->y, "amount", r->amount);
    gw_set_str(r->y, "currency", r->currency);
    gw_set_str(r->y, "match", "reassigned");
    gw_set_str(r->y, "explanation", ex_text ? ex_text : "");
    gw_set_int(r->y, "closed_at", gw_now(a->gw));
    gw_set_str(r->y, "device_out", xs(r, "device_out"));
    gw_set_str(r->y, "event_out", xs(r, "event_out"));
    gw_set_str(r->y, "reassigned_from", xsid);
    gw_set_str(r->y, "reassign_reason", a->reason);
    /* Kept for the answer, not written (not a string). */
    json_object_set_new(r->y, "explanation_json", ex);
    cmn_free(ex_text);
    if (r->amount == 0) {
        gw_set_str(r->y, "status", "closed");
        gw_set_str(r->y, "reason", pass ? "pass" : exempt ? "exempt" : "free_period");
        return send_commit(a);
    }
    char fold[CMN_PLATE_MAX];
    cmn_plate_fold_key(y.plate, 1, fold, sizeof fold);
    cmn_rargs_t args;
    cmn_rargs_init(&args);
    cmn_rargs_str(&args, "HGET");
    cmn_rargs_fmt(&args, "pk:plate:{%s}", fold);
    cmn_rargs_str(&args, y.plate);
    gw_api_send(a, &args, on_y_driver, a);
}

static void reassign_entry(gw_api_t *a)
{
    struct reassign *r;
    if (gw_api_require(a, lane_roles()) != 0)
        return;
    if (a->req->method != HTTP_POST)
        return gw_api_fail(a, 405, "method_not_allowed", "use POST");
    /* rest: the session id of the exit to move. */
    char sid[110], lot[110];
    if (gw_api_unescape(a->rest, a->rest_len, sid, sizeof sid) != 0 ||
        gw_session_id_split(sid, lot, sizeof lot, a->seq, sizeof a->seq) != 0)
        return gw_api_fail(a, 404, "not_found", "no such session");
    if (path_lot(a, lot, strlen(lot), lane_roles()) != 0)
        return;
    json_t *doc;
    if (gw_api_reason(a, &doc) != 0)
        return;
    const char *to = json_string_value(json_object_get(doc, "to_session"));
    char tolot[80], toseq[24];
    if (gw_session_id_split(to, tolot, sizeof tolot, toseq, sizeof toseq) != 0) {
        json_decref(doc);
        return gw_api_fail(a, 400, "bad_request", "to_session must be a session id \"<lot>~<n>\"");
    }
    r = cmn_xcalloc(1, sizeof *r);
    snprintf(r->seq_y, sizeof r->seq_y, "%s", toseq);
    a->extra = r;
    a->extra_free = free_reassign;
    json_decref(doc);
    if (strcmp(tolot, a->lot_id) != 0)
        return gw_api_fail(a, 400, "bad_request", "to_session must be a session of lot %s",
                           a->lot_id);
    if (strcmp(r->seq_y, a->seq) == 0)
        return gw_api_fail(a, 400, "bad_request", "to_session is the session itself");
    static const char *const keys[] = {"open", "fold", "held", "tariffs", "bills"};
    cmn_rargs_t *args = cmn_xalloc(sizeof *args);
    gw_api_script(a->gw, args, GW_LUA_LANE_REASSIGN, 14);
    for (int i = 0; i < 5; i++)
        cmn_rargs_fmt(args, "pk:{%s}:%s", a->lot_id, keys[i]);
    cmn_rargs_fmt(args, "pk:{%s}:s:%s", a->lot_id, a->seq);
    cmn_rargs_fmt(args, "pk:{%s}:s:%s:h", a->lot_id, a->seq);
    cmn_rargs_fmt(args, "pk:{%s}:s:%s", a->lot_id, r->seq_y);
    cmn_rargs_fmt(args, "pk:{%s}:s:%s:h", a->lot_id, r->seq_y);
    cmn_rargs_fmt(args, "pk:{%s}:due", a->lot_id);
    cmn_rargs_fmt(args, "pk:{%s}:day:-", a->lot_id);
    cmn_rargs_fmt(args, "pk:{%s}:arrears", a->lot_id);
    cmn_rargs_fmt(args, "pk:{%s}:arrears:info", a->lot_id);
    cmn_rargs_fmt(args, "pk:{%s}:audit", a->lot_id);
    cmn_rargs_str(args, "read");
    cmn_rargs_str(args, a->seq);
    cmn_rargs_str(args, r->seq_y);
    gw_api_send(a, args, on_read, a);
    cmn_free(args);
}

void gw_h_reassign(gw_t *gw, cmn_httpd_req_t *req, const char *sid, size_t n)
{
    gw_api_start(gw, req, sid, n, reassign_entry);
}
