/*
 * Corrections of closed visits (docs/api.md "Lane work"; admin tokens, and operator tokens for
 * their own lots):
 *
 *   POST /v1/sessions/{A}/merge  {"with": B, "reason"}: two consecutive visits were one stay
 *   POST /v1/sessions/{S}/split  {"exit_at", "entry_at", "reason"}: one visit was two stays
 *
 * Both follow reassign (h_lanes.c): the lane_correct script reads the records (and the tariff of
 * the first one's version), the gateway checks them and recomputes the fees with the tariff engine,
 * asks the plate index for the driver when a bill is made for a visit that had none, reserves the
 * new session's number (split), then lane_correct commits everything in the lot's slot provided
 * the records are still as read.  Then the drivers' records follow: a void bill is settled as
 * waived, a repriced one changes its amount (driver_reprice), a new one is applied.
 *
 * Only closed records (pk:{L}:s:<n>) are touched: the cars are outside, so neither the open
 * sessions nor their indexes change.
 *
 * The stay a split makes is charged by the tariff version of the visit it is split from: the lot's
 * record of which version was in force is the version each entry was given, and entry_at had no
 * entry of its own (a reload between the two is not recorded with a time).
 */
#include <http_parser.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cmn/driver.h"
#include "cmn/err.h"
#include "cmn/json.h"
#include "cmn/log.h"
#include "cmn/mem.h"
#include "cmn/plate.h"
#include "cmn/time.h"
#include "events.h"

#define US "\x1f"
#define RECORD_TTL_S (35 * 86400)
#define MAX_FIELDS 40

/* What a record becomes: fields to set, and fields to remove. */
struct change {
    json_t *set;                   /* field -> string */
    const char *del[8];
    int ndel;
};

struct correct {
    int split;
    char seq_q[24];
    json_t *p, *q;                 /* the records as read (P: A or S; Q: B, or {} for S2) */
    struct change cp, cq;
    char day7[16], day8[16], day9[16];
    long long amount_p, amount_q;
    const char *currency;
    json_t *ex_p, *ex_q;           /* the fees' explanations, for the answer */
    int p_billed, q_billed;        /* had a bill that was owed, as read */
    int lookup;                    /* 'p' or 'q': the record that needs a driver, or 0 */
    char driver[65], provider[65]; /* the new bill's */
    cmn_instant_t exit_at, entry_at;
};

static void free_change(struct change *c)
{
    json_decref(c->set);
}

static void free_correct(void *v)
{
    struct correct *c = v;
    if (c == NULL)
        return;
    json_decref(c->p);
    json_decref(c->q);
    free_change(&c->cp);
    free_change(&c->cq);
    json_decref(c->ex_p);
    json_decref(c->ex_q);
    cmn_free(c);
}

static const char *fs(json_t *rec, const char *k)
{
    const char *v = json_string_value(json_object_get(rec, k));
    return v != NULL ? v : "";
}

static unsigned correct_roles(void)
{
    return GW_ROLE_BIT(GW_ROLE_ADMIN) | GW_ROLE_BIT(GW_ROLE_OPERATOR);
}

/* Statuses whose bill is owed: repriced or voided by a correction. */
static int owed(const char *status)
{
    static const char *const s[] = {"pending", "retry_scheduled", "failed", "overdue",
                                    "defaulted", NULL};
    for (int i = 0; s[i] != NULL; i++) {
        if (strcmp(s[i], status) == 0)
            return 1;
    }
    return 0;
}

/* A visit a correction may change: its bill owed (no charge in flight, nothing paid), or no bill
 * (free, pass, exempt, or nobody to bill). */
static int correctable(const char *status)
{
    return owed(status) || strcmp(status, "closed") == 0 || strcmp(status, "unbilled") == 0;
}

static void day_of(const gw_api_t *a, cmn_instant_t t, char *out, size_t outsz)
{
    cmn_date_format(gw_api_lot_day(a->lot, t), out, outsz);
}

/* The fee of a stay by the tariff of `tver` (learnt from tjson when the process does not know
 * it); sets *amount and returns its explanation, or NULL. */
static json_t *fee_of(gw_api_t *a, const char *tver, const char *tjson, size_t tlen,
                      const char *vclass, cmn_instant_t entry, cmn_instant_t exit_ts,
                      long long *amount, const cmn_tariff_t **used)
{
    const cmn_tariff_t *t = gw_tariff_by_version(a->gw, tver);
    if (t == NULL && tjson != NULL && tlen > 0)
        t = gw_tariff_learn(a->gw, tver, tjson, tlen);
    if (t == NULL)
        t = a->lot->tariff;
    if (exit_ts < entry)
        exit_ts = entry;
    cmn_fee_t fee;
    memset(&fee, 0, sizeof fee);
    if (cmn_tariff_fee(t, vclass, entry, exit_ts, CMN_FEE_EXPLAIN, &fee) != 0) {
        cmn_fee_dispose(&fee);
        return NULL;
    }
    json_t *ex = cmn_fee_to_json(t, &fee);
    *amount = fee.amount;
    *used = t;
    cmn_fee_dispose(&fee);
    return ex;
}

static void set_explanation(json_t *set, json_t *ex)
{
    char *text = cmn_json_dump(ex, JSON_COMPACT | JSON_PRESERVE_ORDER);
    gw_set_str(set, "explanation", text ? text : "");
    cmn_free(text);
}

/* ---- commit ---------------------------------------------------------------------------------- */

static void keys(const gw_api_t *a, const struct correct *c, cmn_rargs_t *args)
{
    gw_api_script(a->gw, args, GW_LUA_LANE_CORRECT, 14);
    cmn_rargs_fmt(args, "pk:{%s}:s:%s", a->lot_id, a->seq);
    cmn_rargs_fmt(args, "pk:{%s}:s:%s:h", a->lot_id, a->seq);
    cmn_rargs_fmt(args, "pk:{%s}:s:%s", a->lot_id, c->seq_q);
    cmn_rargs_fmt(args, "pk:{%s}:s:%s:h", a->lot_id, c->seq_q);
    cmn_rargs_fmt(args, "pk:{%s}:due", a->lot_id);
    cmn_rargs_fmt(args, "pk:{%s}:bills", a->lot_id);
    cmn_rargs_fmt(args, "pk:{%s}:day:%s", a->lot_id, c->day7[0] ? c->day7 : "-");
    cmn_rargs_fmt(args, "pk:{%s}:day:%s", a->lot_id, c->day8[0] ? c->day8 : "-");
    cmn_rargs_fmt(args, "pk:{%s}:day:%s", a->lot_id, c->day9[0] ? c->day9 : "-");
    cmn_rargs_fmt(args, "pk:{%s}:arrears", a->lot_id);
    cmn_rargs_fmt(args, "pk:{%s}:arrears:info", a->lot_id);
    cmn_rargs_fmt(args, "pk:{%s}:audit", a->lot_id);
    cmn_rargs_fmt(args, "pk:{%s}:tariffs", a->lot_id);
    cmn_rargs_fmt(args, "pk:{%s}:meta", a->lot_id);
}

static void on_repriced(void *data, int status, redisReply *r)
{
    gw_t *gw = data;
    if (status != 0 || r == NULL || !cmn_reply_is(r, "ok")) {
        cmn_log(CMN_LOG_WARN, "driver_update", "repriced bill: driver record not updated (%s)",
                status ? cmn_strerror(status) : "unexpected answer");
        return;
    }
    const char *snap = cmn_reply_str(r, 1, NULL), *plates = cmn_reply_str(r, 2, NULL);
    if (snap == NULL || plates == NULL)
        return;
    char driver[80];
    cmn_snapshot_driver(snap, driver, sizeof driver);
    gw_plates_mirror(gw, driver, plates, snap);
}

/* A bill's new amount in its driver's record (driver_reprice). */
static void driver_repriced(gw_t *gw, const char *driver, const char *bill, long long amount)
{
    if (driver == NULL || driver[0] == '\0' || bill == NULL || bill[0] == '\0')
        return;
    cmn_rargs_t a;
    gw_api_script(gw, &a, GW_LUA_DRIVER_REPRICE, 4);
    static const char *const parts[] = {"", ":unpaid", ":applied", ":bills"};
    for (int i = 0; i < 4; i++)
        cmn_rargs_fmt(&a, "pk:drv:{%s}%s", driver, parts[i]);
    cmn_rargs_str(&a, bill);
    cmn_rargs_int(&a, amount);
    cmn_rargs_int(&a, gw_now(gw));
    if (cmn_redis_command(gw->redis, on_repriced, gw, a.n, a.v, a.len) != 0)
        cmn_log(CMN_LOG_WARN, "driver_update", "bill %s: driver update not sent", bill);
}

/* The drivers' records follow a record's change: its old bill void or repriced, a new one owed. */
static void drivers_follow(gw_api_t *a, json_t *old, int was_owed, const struct change *ch)
{
    const char *st = fs(ch->set, "status");
    const char *bill = fs(old, "bill"), *driver = fs(old, "driver");
    if (was_owed) {
        if (owed(st))
            driver_repriced(a->gw, driver, bill, strtoll(fs(ch->set, "amount"), NULL, 10));
        else
            gw_api_driver_waived(a->gw, driver, bill);
    } else if (strcmp(st, "pending") == 0) {
        gw_driver_bill_apply(a->gw, fs(ch->set, "driver"), fs(ch->set, "bill"),
                             strtoll(fs(ch->set, "amount"), NULL, 10));
    }
}

static json_t *visit_json(const char *sid, const struct change *ch, json_t *old, json_t *ex)
{
    json_t *o = json_object();
    const char *bill = fs(ch->set, "bill")[0] ? fs(ch->set, "bill") : fs(old, "bill");
    gw_set_str(o, "session", sid);
    gw_set_str(o, "status", fs(ch->set, "status"));
    json_object_set_new(o, "bill", bill[0] ? json_string(bill) : json_null());
    json_object_set_new(o, "amount", json_integer(strtoll(fs(ch->set, "amount"), NULL, 10)));
    json_object_set(o, "explanation", ex ? ex : json_null());
    return o;
}

static void on_committed(void *data, int status, redisReply *rp)
{
    gw_api_t *a = data;
    struct correct *c = a->extra;
    if (status != 0 || rp == NULL || rp->type != REDIS_REPLY_ARRAY) {
        if (status == 0 && rp != NULL && rp->type == REDIS_REPLY_ERROR)
            cmn_log(CMN_LOG_ERROR, "redis_script", "lane_correct: %.200s", rp->str);
        return gw_api_fail(a, 503, "unavailable", "Redis is unavailable");
    }
    if (cmn_reply_is(rp, "retry"))
        return gw_api_fail(a, 409, "conflict", "the sessions changed meanwhile; look again");
    const char *audit = cmn_reply_str(rp, 1, NULL);
    char sp[120], sq[120];
    snprintf(sp, sizeof sp, "%s~%s", a->lot_id, a->seq);
    snprintf(sq, sizeof sq, "%s~%s", a->lot_id, c->seq_q);
    drivers_follow(a, c->p, c->p_billed, &c->cp);
    json_t *o = visit_json(sp, &c->cp, c->p, c->ex_p);
    if (c->split) {
        drivers_follow(a, c->q, 0, &c->cq);
        json_t *second = visit_json(sq, &c->cq, c->q, c->ex_q);
        char t[40];
        gw_api_time(a->lot, c->entry_at, t, sizeof t);
        gw_set_str(second, "entry", t);
        gw_api_time(a->lot, strtoll(fs(c->p, "exit"), NULL, 10), t, sizeof t);
        gw_set_str(second, "exit", t);
        json_object_set_new(o, "second", second);
        gw_api_time(a->lot, c->exit_at, t, sizeof t);
        gw_set_str(o, "exit", t);
    } else {
        if (c->q_billed)
            gw_api_driver_waived(a->gw, fs(c->q, "driver"), fs(c->q, "bill"));
        gw_set_str(o, "merged", sq);
        json_object_set_new(o, "void_bill", c->q_billed ? json_string(fs(c->q, "bill"))
                                                        : json_null());
    }
    if (c->p_billed && !owed(fs(c->cp.set, "status")))
        json_object_set_new(o, "void_bill", json_string(fs(c->p, "bill")));
    gw_set_str(o, "currency", c->currency);
    gw_set_str(o, "reason", a->reason);
    gw_set_str(o, "audit_id", audit);
    cmn_log(CMN_LOG_INFO, c->split ? "split" : "merged", "lot %s: session %s %s %s by %s",
            a->lot_id, sp, c->split ? "split, second visit" : "merged with", sq, a->who.name);
    gw_api_done(a, 200, o);
}

/* A change as the script takes it: {"set": {field: value}, "del": [field]}; the caller frees. */
static char *change_json(const struct change *ch)
{
    json_t *o = json_object(), *del = json_array();
    json_object_set(o, "set", ch->set);
    for (int i = 0; i < ch->ndel; i++)
        json_array_append_new(del, json_string(ch->del[i]));
    json_object_set_new(o, "del", del);
    char *text = cmn_json_dump(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

static void send_commit(gw_api_t *a)
{
    struct correct *c = a->extra;
    cmn_rargs_t *args = cmn_xalloc(sizeof *args);
    char who[200], stream[600] = "";
    gw_api_who(a, who, sizeof who);
    keys(a, c, args);
    cmn_rargs_str(args, c->split ? "split" : "merge");
    cmn_rargs_str(args, a->seq);
    cmn_rargs_str(args, c->seq_q);
    cmn_rargs_str(args, fs(c->p, "status"));
    cmn_rargs_str(args, fs(c->p, "amount"));
    cmn_rargs_str(args, fs(c->q, "status"));
    cmn_rargs_str(args, fs(c->q, "amount"));
    cmn_rargs_int(args, gw_now(a->gw));
    cmn_rargs_str(args, a->reason);
    cmn_rargs_str(args, who);
    cmn_rargs_str(args, a->lot_id);
    cmn_rargs_int(args, RECORD_TTL_S);
    /* The new bill, if any: P's (merge) or S2's (split). */
    json_t *nb = c->split ? c->cq.set : c->cp.set;
    if (strcmp(fs(nb, "status"), "pending") == 0 && (c->split || !c->p_billed))
        snprintf(stream, sizeof stream,
                 "bill" US "%s" US "lot" US "%s" US "driver" US "%s" US "provider" US "%s" US
                 "amount" US "%s" US "currency" US "%s",
                 fs(nb, "bill"), a->lot_id, fs(nb, "driver"), fs(nb, "provider"),
                 fs(nb, "amount"), c->currency);
    cmn_rargs_str(args, stream);
    char *cp = change_json(&c->cp), *cq = change_json(&c->cq);
    cmn_rargs_ref(args, cp ? cp : "{}", cp ? strlen(cp) : 2);
    cmn_rargs_ref(args, cq ? cq : "{}", cq ? strlen(cq) : 2);
    /* hiredis formats the command when it is sent: the texts may go after. */
    int bad = args->overflow || cmn_redis_command(a->gw->redis, on_committed, a, args->n,
                                                  args->v, args->len) != 0;
    cmn_free(cp);
    cmn_free(cq);
    cmn_free(args);
    if (bad)
        return gw_api_fail(a, 503, "unavailable", "Redis is unavailable");
}

/* ---- a number for the second visit, a driver for a new bill ---------------------------------- */

static void on_seq(void *data, int status, redisReply *rp)
{
    gw_api_t *a = data;
    struct correct *c = a->extra;
    if (status != 0 || rp == NULL || rp->type != REDIS_REPLY_INTEGER)
        return gw_api_fail(a, 503, "unavailable", "Redis is unavailable");
    snprintf(c->seq_q, sizeof c->seq_q, "%lld", rp->integer);
    char sq[120];
    snprintf(sq, sizeof sq, "%s~%s", a->lot_id, c->seq_q);
    gw_set_str(c->cq.set, "id", sq);
    gw_set_str(c->cq.set, "session", sq);
    if (json_object_get(c->cq.set, "bill") != NULL) {
        char bid[130];
        snprintf(bid, sizeof bid, "%s~b", sq);
        gw_set_str(c->cq.set, "bill", bid);
    }
    gw_set_str(c->cp.set, "split_to", sq);
    send_commit(a);
}

static void next_step(gw_api_t *a)
{
    struct correct *c = a->extra;
    if (!c->split)
        return send_commit(a);
    /* The second visit's number, from the lot's counter: a correction refused after this leaves
     * a number unused, which nothing relies on. */
    cmn_rargs_t args;
    cmn_rargs_init(&args);
    cmn_rargs_str(&args, "HINCRBY");
    cmn_rargs_fmt(&args, "pk:{%s}:meta", a->lot_id);
    cmn_rargs_str(&args, "seq");
    cmn_rargs_str(&args, "1");
    gw_api_send(a, &args, on_seq, a);
}

/* A bill for a visit that had none: to the driver of the visit's other part if it had one, else
 * of the plate (else `unbilled`, for staff, as reassign does). */
static void bill_to(struct correct *c, json_t *set, const char *sid)
{
    if (c->driver[0] != '\0') {
        char bid[130];
        snprintf(bid, sizeof bid, "%s~b", sid);
        gw_set_str(set, "bill", bid);
        gw_set_str(set, "driver", c->driver);
        gw_set_str(set, "provider", c->provider);
        gw_set_str(set, "status", "pending");
        gw_set_str(set, "reason", "credit_ok");
    } else {
        gw_set_str(set, "status", "unbilled");
        gw_set_str(set, "reason", "not_enrolled");
    }
}

static void on_driver(void *data, int status, redisReply *rp)
{
    gw_api_t *a = data;
    struct correct *c = a->extra;
    if (status != 0 || rp == NULL)
        return gw_api_fail(a, 503, "unavailable", "Redis is unavailable");
    gw_plate_driver(a->conf, rp, c->driver, sizeof c->driver, c->provider, sizeof c->provider);
    char sid[120];
    snprintf(sid, sizeof sid, "%s~%s", a->lot_id, c->lookup == 'p' ? a->seq : "0");
    bill_to(c, c->lookup == 'p' ? c->cp.set : c->cq.set, sid);
    next_step(a);
}

/* Finds the driver of a new bill (c->lookup set), then goes on. */
static void find_driver(gw_api_t *a)
{
    struct correct *c = a->extra;
    if (c->lookup == 0)
        return next_step(a);
    if (c->driver[0] != '\0') {
        char sid[120];
        snprintf(sid, sizeof sid, "%s~%s", a->lot_id, c->lookup == 'p' ? a->seq : "0");
        bill_to(c, c->lookup == 'p' ? c->cp.set : c->cq.set, sid);
        return next_step(a);
    }
    const char *plate = fs(c->p, "plate");
    char fold[CMN_PLATE_MAX];
    cmn_plate_fold_key(plate, 1, fold, sizeof fold);
    cmn_rargs_t args;
    cmn_rargs_init(&args);
    cmn_rargs_str(&args, "HGET");
    cmn_rargs_fmt(&args, "pk:plate:{%s}", fold);
    cmn_rargs_str(&args, plate);
    gw_api_send(a, &args, on_driver, a);
}

/* ---- checks and fees ------------------------------------------------------------------------- */

/* 0, or -1 answered: the visit can be changed. */
static int check_visit(gw_api_t *a, json_t *rec, const char *sid)
{
    const char *st = fs(rec, "status");
    if (!correctable(st)) {
        gw_api_fail(a, 409, "conflict",
                    "session %s is %s: only a visit whose bill is unpaid with no charge in flight, "
                    "or a visit without bill, can be corrected (refund a paid bill first)", sid,
                    st);
        return -1;
    }
    if (strtoll(fs(rec, "transients"), NULL, 10) > 0) {
        /* A charge attempt's outcome is unknown: its retry reuses its idempotency key, which the
         * provider must see with the same amount. */
        gw_api_fail(a, 409, "conflict",
                    "session %s: the outcome of a charge attempt is not known yet; try again once "
                    "billing has settled it", sid);
        return -1;
    }
    if (fs(rec, "entry")[0] == '\0' || fs(rec, "exit")[0] == '\0' ||
        strcmp(fs(rec, "match"), "none") == 0) {
        gw_api_fail(a, 409, "conflict", "session %s has no entry and exit of its own", sid);
        return -1;
    }
    return 0;
}

/* The new amount of a visit (set, with its explanation), and its status: an owed bill stays owed
 * with the new amount, or is void when the stay became free; a visit without bill gets one when
 * the stay costs something now (c->lookup), and otherwise keeps its status. */
static void reprice(struct correct *c, json_t *old, json_t *set, long long amount, int was_owed,
                    int which)
{
    const char *st = fs(old, "status");
    gw_set_int(set, "amount", amount);
    if (was_owed) {
        if (amount > 0) {
            gw_set_str(set, "status", st);
        } else {
            gw_set_str(set, "status", "void");
            gw_set_str(set, "reason", "free_period");
        }
        return;
    }
    if (amount > 0 && strcmp(st, "closed") == 0 && strcmp(fs(old, "reason"), "pass") != 0 &&
        strcmp(fs(old, "reason"), "exempt") != 0) {
        c->lookup = which;
        gw_set_str(set, "status", "pending"); /* until bill_to decides */
        return;
    }
    gw_set_str(set, "status", st);
}

static int free_by_reason(json_t *rec, const cmn_cfg_lot_t *lot, cmn_instant_t t)
{
    const char *r = fs(rec, "reason");
    return strcmp(r, "pass") == 0 || strcmp(r, "exempt") == 0 ||
           gw_lot_has_pass(lot, fs(rec, "plate"), t);
}

static void on_read(void *data, int status, redisReply *rp)
{
    gw_api_t *a = data;
    struct correct *c = a->extra;
    if (status != 0 || rp == NULL || !cmn_reply_is(rp, "read") || rp->elements != 5)
        return gw_api_fail(a, 503, "unavailable", "Redis is unavailable");
    char sp[120], sq[120];
    snprintf(sp, sizeof sp, "%s~%s", a->lot_id, a->seq);
    snprintf(sq, sizeof sq, "%s~%s", a->lot_id, c->seq_q);
    long long last = strtoll(cmn_reply_str(rp, 4, NULL) ? cmn_reply_str(rp, 4, NULL) : "0",
                             NULL, 10);
    c->p = gw_api_record(rp->element[1]);
    c->q = gw_api_record(rp->element[2]);
    if (json_object_size(c->p) == 0)
        return gw_api_fail(a, strtoll(a->seq, NULL, 10) <= last ? 409 : 404,
                           strtoll(a->seq, NULL, 10) <= last ? "conflict" : "not_found",
                           "session %s is not a closed visit (still open, or its record expired)",
                           sp);
    if (!c->split && json_object_size(c->q) == 0)
        return gw_api_fail(a, strtoll(c->seq_q, NULL, 10) <= last ? 409 : 404,
                           strtoll(c->seq_q, NULL, 10) <= last ? "conflict" : "not_found",
                           "session %s is not a closed visit (still open, or its record expired)",
                           sq);
    if (check_visit(a, c->p, sp) != 0 || (!c->split && check_visit(a, c->q, sq) != 0))
        return;
    c->p_billed = owed(fs(c->p, "status"));
    c->q_billed = !c->split && owed(fs(c->q, "status"));
    cmn_instant_t entry_p = strtoll(fs(c->p, "entry"), NULL, 10);
    cmn_instant_t exit_p = strtoll(fs(c->p, "exit"), NULL, 10);
    size_t tlen = 0;
    const char *tjson = cmn_reply_str(rp, 3, &tlen);
    const char *tver = fs(c->p, "tariff_version"), *vclass = fs(c->p, "class");
    const cmn_tariff_t *t = NULL;
    c->cp.set = json_object();
    c->cq.set = json_object();
    if (fs(c->p, "day")[0])
        snprintf(c->day7, sizeof c->day7, "%s", fs(c->p, "day"));
    if (!c->split) {
        if (strcmp(fs(c->p, "plate"), fs(c->q, "plate")) != 0)
            return gw_api_fail(a, 409, "conflict", "sessions %s and %s are of different plates",
                               sp, sq);
        cmn_instant_t entry_q = strtoll(fs(c->q, "entry"), NULL, 10);
        cmn_instant_t exit_q = strtoll(fs(c->q, "exit"), NULL, 10);
        if (exit_p > entry_q)
            return gw_api_fail(a, 409, "conflict",
                               "session %s did not leave before %s entered: not consecutive", sp,
                               sq);
        c->ex_p = fee_of(a, tver, tjson, tlen, vclass, entry_p, exit_q, &c->amount_p, &t);
        if (c->ex_p == NULL)
            return gw_api_fail(a, 503, "unavailable", "the fee cannot be computed");
        if (free_by_reason(c->p, a->lot, exit_q))
            c->amount_p = 0;
        day_of(a, exit_q, c->day8, sizeof c->day8);
        if (fs(c->q, "day")[0])
            snprintf(c->day9, sizeof c->day9, "%s", fs(c->q, "day"));
        /* A: one stay up to B's exit. */
        json_t *s = c->cp.set;
        gw_set_str(s, "exit", fs(c->q, "exit"));
        gw_set_str(s, "lane_out", fs(c->q, "lane_out"));
        gw_set_str(s, "device_out", fs(c->q, "device_out"));
        gw_set_str(s, "event_out", fs(c->q, "event_out"));
        gw_set_str(s, "tariff", cmn_tariff_id(t));
        gw_set_str(s, "tariff_version", cmn_tariff_version(t));
        gw_set_str(s, "currency", cmn_tariff_currency(t));
        set_explanation(s, c->ex_p);
        gw_set_str(s, "merged_from", sq);
        gw_set_str(s, "merge_reason", a->reason);
        gw_set_int(s, "merged_at", gw_now(a->gw));
        reprice(c, c->p, s, c->amount_p, c->p_billed, 'p');
        /* B: void, kept to say where its stay went. */
        gw_set_str(c->cq.set, "status", "merged");
        gw_set_str(c->cq.set, "merged_into", sp);
        gw_set_str(c->cq.set, "merge_reason", a->reason);
        gw_set_int(c->cq.set, "merged_at", gw_now(a->gw));
        /* A new bill goes to B's driver when B had one. */
        if (fs(c->q, "driver")[0] && fs(c->q, "provider")[0]) {
            snprintf(c->driver, sizeof c->driver, "%s", fs(c->q, "driver"));
            snprintf(c->provider, sizeof c->provider, "%s", fs(c->q, "provider"));
        }
    } else {
        if (!(entry_p < c->exit_at && c->exit_at <= c->entry_at && c->entry_at < exit_p))
            return gw_api_fail(a, 400, "bad_request",
                               "the visit's entry < exit_at <= entry_at < the visit's exit must "
                               "hold");
        c->ex_p = fee_of(a, tver, tjson, tlen, vclass, entry_p, c->exit_at, &c->amount_p, &t);
        if (c->ex_p != NULL)
            c->ex_q = fee_of(a, tver, tjson, tlen, vclass, c->entry_at, exit_p, &c->amount_q, &t);
        if (c->ex_p == NULL || c->ex_q == NULL)
            return gw_api_fail(a, 503, "unavailable", "the fee cannot be computed");
        if (free_by_reason(c->p, a->lot, c->exit_at))
            c->amount_p = 0;
        if (free_by_reason(c->p, a->lot, exit_p))
            c->amount_q = 0;
        day_of(a, c->exit_at, c->day8, sizeof c->day8);
        day_of(a, exit_p, c->day9, sizeof c->day9);
        /* S: closes at exit_at; the exit it had is the second visit's. */
        json_t *s = c->cp.set;
        gw_set_int(s, "exit", c->exit_at);
        gw_set_str(s, "tariff", cmn_tariff_id(t));
        gw_set_str(s, "tariff_version", cmn_tariff_version(t));
        set_explanation(s, c->ex_p);
        gw_set_str(s, "split_reason", a->reason);
        gw_set_int(s, "split_at", gw_now(a->gw));
        c->cp.del[c->cp.ndel++] = "lane_out";
        c->cp.del[c->cp.ndel++] = "device_out";
        c->cp.del[c->cp.ndel++] = "event_out";
        reprice(c, c->p, s, c->amount_p, c->p_billed, 'p');
        if (c->lookup == 'p') {
            /* A stay shorter than before that is no longer free: not with a sane tariff. */
            gw_set_str(s, "status", fs(c->p, "status"));
            c->lookup = 0;
        }
        /* S2: from entry_at to S's exit, a visit of its own. */
        json_t *q = c->cq.set;
        static const char *const same[] = {"plate", "read_plate", "lot", "lane_out", "class",
                                           "device_out", "event_out", NULL};
        for (int i = 0; same[i] != NULL; i++)
            gw_set_str(q, same[i], fs(c->p, same[i]));
        gw_set_int(q, "entry", c->entry_at);
        gw_set_str(q, "exit", fs(c->p, "exit"));
        gw_set_str(q, "tariff", cmn_tariff_id(t));
        gw_set_str(q, "tariff_version", cmn_tariff_version(t));
        gw_set_int(q, "amount", c->amount_q);
        gw_set_str(q, "currency", cmn_tariff_currency(t));
        gw_set_str(q, "match", "split");
        set_explanation(q, c->ex_q);
        gw_set_int(q, "closed_at", gw_now(a->gw));
        gw_set_str(q, "split_from", sp);
        gw_set_str(q, "split_reason", a->reason);
        if (c->amount_q == 0) {
            gw_set_str(q, "status", "closed");
            gw_set_str(q, "reason", free_by_reason(c->p, a->lot, exit_p)
                                     ? (strcmp(fs(c->p, "reason"), "exempt") == 0 ? "exempt"
                                                                                   : "pass")
                                     : "free_period");
        } else {
            gw_set_str(q, "status", "pending");
            c->lookup = 'q';
            /* Billed to S's driver when S had one. */
            if (fs(c->p, "driver")[0] && fs(c->p, "provider")[0]) {
                snprintf(c->driver, sizeof c->driver, "%s", fs(c->p, "driver"));
                snprintf(c->provider, sizeof c->provider, "%s", fs(c->p, "provider"));
            }
        }
        /* "bill" is renamed once S2's number is known (on_seq). */
    }
    c->currency = cmn_tariff_currency(t);
    find_driver(a);
}

/* ---- entry points ---------------------------------------------------------------------------- */

static void send_read(gw_api_t *a)
{
    struct correct *c = a->extra;
    cmn_rargs_t *args = cmn_xalloc(sizeof *args);
    keys(a, c, args);
    cmn_rargs_str(args, "read");
    gw_api_send(a, args, on_read, a);
    cmn_free(args);
}

/* The session of the path, its lot and the principal's right to it, the reason; the context's
 * struct correct is made.  Returns the request's JSON body (the caller's), or NULL answered. */
static json_t *start(gw_api_t *a, int split)
{
    if (gw_api_require(a, correct_roles()) != 0)
        return NULL;
    if (a->req->method != HTTP_POST) {
        gw_api_fail(a, 405, "method_not_allowed", "use POST");
        return NULL;
    }
    char sid[110], lot[65], seq[24];
    if (gw_api_unescape(a->rest, a->rest_len, sid, sizeof sid) != 0 ||
        gw_session_id_split(sid, lot, sizeof lot, seq, sizeof seq) != 0) {
        gw_api_fail(a, 404, "not_found", "no such session");
        return NULL;
    }
    snprintf(a->lot_id, sizeof a->lot_id, "%s", lot);
    if ((a->lot = cmn_config_lot(a->conf->cfg, a->lot_id)) == NULL) {
        gw_api_fail(a, 404, "not_found", "no such lot");
        return NULL;
    }
    if (!gw_may_lot(&a->who, a->conf->cfg, a->lot_id)) {
        gw_api_fail(a, 403, "forbidden", "lot %s is not yours", a->lot_id);
        return NULL;
    }
    if (gw_api_ready(a) != 0)
        return NULL;
    snprintf(a->seq, sizeof a->seq, "%s", seq);
    json_t *doc;
    if (gw_api_reason(a, &doc) != 0)
        return NULL;
    struct correct *c = cmn_xcalloc(1, sizeof *c);
    c->split = split;
    a->extra = c;
    a->extra_free = free_correct;
    return doc;
}

static void merge_entry(gw_api_t *a)
{
    json_t *doc = start(a, 0);
    if (doc == NULL)
        return;
    struct correct *c = a->extra;
    char lot[80];
    const char *with = json_string_value(json_object_get(doc, "with"));
    int bad = gw_session_id_split(with, lot, sizeof lot, c->seq_q, sizeof c->seq_q);
    json_decref(doc);
    if (bad != 0)
        return gw_api_fail(a, 400, "bad_request", "with must be a session id \"<lot>~<n>\"");
    if (strcmp(lot, a->lot_id) != 0)
        return gw_api_fail(a, 400, "bad_request", "with must be a session of lot %s", a->lot_id);
    if (strcmp(c->seq_q, a->seq) == 0)
        return gw_api_fail(a, 400, "bad_request", "with is the session itself");
    send_read(a);
}

static void split_entry(gw_api_t *a)
{
    json_t *doc = start(a, 1);
    if (doc == NULL)
        return;
    struct correct *c = a->extra;
    const char *x = json_string_value(json_object_get(doc, "exit_at"));
    const char *e = json_string_value(json_object_get(doc, "entry_at"));
    int bad = x == NULL || e == NULL || cmn_rfc3339_parse(x, strlen(x), &c->exit_at) != 0 ||
              cmn_rfc3339_parse(e, strlen(e), &c->entry_at) != 0;
    json_decref(doc);
    if (bad)
        return gw_api_fail(a, 400, "bad_request", "exit_at and entry_at must be RFC 3339 times");
    /* The second visit's number is taken once the checks pass (next_step). */
    snprintf(c->seq_q, sizeof c->seq_q, "-");
    send_read(a);
}

void gw_h_merge(gw_t *gw, cmn_httpd_req_t *req, const char *sid, size_t n)
{
    gw_api_start(gw, req, sid, n, merge_entry);
}

void gw_h_split(gw_t *gw, cmn_httpd_req_t *req, const char *sid, size_t n)
{
    gw_api_start(gw, req, sid, n, split_entry);
}
