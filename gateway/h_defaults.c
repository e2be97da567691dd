/*
 * Defaults for city staff (docs/api.md; admin and city tokens):
 *
 *   GET  /v1/defaults                  the arrears of every lot in one list: filters, paging
 *   GET  /v1/defaults/{plate}          the driver behind a plate: bills with their explanations,
 *                                      reminders and collection status, credit history
 *   POST /v1/defaults/{plate}/reinstate   {"reason", "score"?}: leave-first restored
 *   POST /v1/bills/{bill}/dispute      {"reason"}: the bill is disputed (no automatic charge)
 *   POST /v1/bills/{bill}/resolve      {"reason", "outcome": "upheld"|"waived"}
 *   GET  /v1/city/figures              leave-first usage, outstanding, overdue, default rate, per
 *                                      district
 *
 * Design note.  The defaults list reads each lot's arrears index (default_lib.lua: a sorted set
 * of the unpaid bills that are overdue, defaulted or disputed, by exit time, kept by the bill
 * scripts in the same step as each change), one script per lot pipelined in one round trip; the
 * lots' pages are merged in (exit time, lot, number) order, which is also the cursor's.  Each lot
 * reads at most LIST_BUDGET index entries per page, so a narrow filter over a long index costs
 * bounded time; the page then stops at the first lot's horizon and the cursor resumes from there.
 * The figures read the lot-day counters and the index's totals, never the bills.  Every action is
 * one script per slot: the change, the bill's history and the audit entry together.
 */
#include <http_parser.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cmn/driver.h"
#include "cmn/log.h"
#include "cmn/mem.h"
#include "cmn/plate.h"
#include "cmn/time.h"
#include "events.h"

#define US "\x1f"
#define LIST_LIMIT 50
#define LIST_MAX 500
#define LIST_BUDGET 5000
#define FIGURES_MAX_DAYS 366

static int split_us(const char *s, char f[][128], int max)
{
    int n = 0;
    while (n < max) {
        const char *end = strchr(s, '\x1f');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        snprintf(f[n], 128, "%.*s", (int)(len < 127 ? len : 127), s);
        n++;
        if (end == NULL)
            break;
        s = end + 1;
    }
    return n;
}

static const char *nz(const char *s)
{
    return s != NULL ? s : "";
}

static json_t *num_or_null(const char *s)
{
    return s && s[0] ? json_integer(strtoll(s, NULL, 10)) : json_null();
}

/* ---- GET /v1/defaults ----------------------------------------------------------------------- */

struct list_state {
    gw_page_t page;
    size_t limit;
    int64_t now;
};

struct lot_call {
    gw_api_t *a;
    const cmn_cfg_lot_t *lot;
};

static void free_list_state(void *p)
{
    struct list_state *s = p;
    if (s != NULL)
        gw_page_dispose(&s->page);
    cmn_free(s);
}

/* An index entry (stage US amount US plate US driver US exit US since US disputed US currency US
 * bill) as the list's item. */
static json_t *list_item(const cmn_cfg_lot_t *lot, const char *member, const char *info,
                         int64_t now)
{
    char f[9][128];
    memset(f, 0, sizeof f);
    split_us(info, f, 9);
    char t[CMN_RFC3339_MAX];
    json_t *o = json_object();
    int64_t exit_ts = strtoll(f[4], NULL, 10), since = strtoll(f[5], NULL, 10);
    if (f[8][0] != '\0')
        json_object_set_new(o, "bill", json_string(f[8]));
    else {
        char bid[120];
        snprintf(bid, sizeof bid, "%s~%lld~b", lot->id, strtoll(member, NULL, 10));
        json_object_set_new(o, "bill", json_string(bid));
    }
    json_object_set_new(o, "lot", json_string(lot->id));
    json_object_set_new(o, "district", json_string(lot->district ? lot->district : ""));
    json_object_set_new(o, "plate", json_string(f[2]));
    json_object_set_new(o, "driver", json_string(f[3]));
    json_object_set_new(o, "amount", json_integer(strtoll(f[1], NULL, 10)));
    json_object_set_new(o, "currency", json_string(f[7]));
    json_object_set_new(o, "status", json_string(f[0]));
    json_object_set_new(o, "disputed", json_boolean(strcmp(f[6], "1") == 0));
    gw_api_time(lot, exit_ts, t, sizeof t);
    json_object_set_new(o, "exit", json_string(t));
    gw_api_time(lot, since, t, sizeof t);
    json_object_set_new(o, "since", json_string(t));
    json_object_set_new(o, "age_days", json_integer(now > exit_ts ? (now - exit_ts) / 86400 : 0));
    return o;
}

static void list_finish(gw_api_t *a)
{
    struct list_state *s = a->extra;
    if (a->failed)
        return gw_api_fail(a, 503, "unavailable", "Redis is unavailable");
    json_t *items = json_array();
    char *next = gw_page_finish(&s->page, s->limit, items);
    json_t *o = json_object();
    json_object_set_new(o, "items", items);
    json_object_set_new(o, "count", json_integer((json_int_t)json_array_size(items)));
    json_object_set_new(o, "next_cursor", next ? json_string(next) : json_null());
    cmn_free(next);
    gw_api_done(a, 200, o);
}

static void on_lot_page(void *data, int status, redisReply *r)
{
    struct lot_call *c = data;
    gw_api_t *a = c->a;
    struct list_state *s = a->extra;
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_ARRAY) {
        if (status == 0 && r != NULL && r->type == REDIS_REPLY_ERROR)
            cmn_log(CMN_LOG_ERROR, "redis_script", "default_list: %.200s", r->str);
        a->failed = 1;
    } else {
        const redisReply *items = r->element[0];
        for (size_t i = 0; i + 2 < items->elements; i += 3) {
            const char *m = items->element[i]->str, *sc = items->element[i + 1]->str;
            const char *info = items->element[i + 2]->str;
            if (m == NULL || sc == NULL || info == NULL)
                continue;
            char key[24];
            snprintf(key, sizeof key, "%012lld", strtoll(sc, NULL, 10));
            gw_page_add(&s->page, key, c->lot->id, m, list_item(c->lot, m, info, s->now));
        }
        const char *h = r->element[1]->str;
        if (h != NULL && h[0] != '\0') {
            char key[24];
            const char *sp = strchr(h, ' ');
            snprintf(key, sizeof key, "%012lld", strtoll(h, NULL, 10));
            gw_page_horizon(&s->page, key, c->lot->id, sp ? sp + 1 : "");
        }
    }
    cmn_free(c);
    if (--a->pending == 0)
        list_finish(a);
}

static int valid_stages(const char *s)
{
    static const char *const names[] = {"owed", "overdue", "defaulted", "disputed", NULL};
    while (*s) {
        size_t n = strcspn(s, ",");
        int ok = 0;
        for (int i = 0; names[i] != NULL; i++)
            ok |= strlen(names[i]) == n && strncmp(names[i], s, n) == 0;
        if (!ok)
            return 0;
        s += n;
        if (*s == ',')
            s++;
    }
    return 1;
}

static int parse_count(const char *s, long long min, long long max, long long *out)
{
    char *end;
    if (s[0] == '\0')
        return -1;
    long long v = strtoll(s, &end, 10);
    if (*end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static void defaults_list(gw_api_t *a)
{
    const cmn_config_t *cfg = a->conf->cfg;
    char status[80] = "", district[130] = "", lot[80] = "", amount[24] = "", age[24] = "";
    char limit[24] = "", cursor[200] = "";
    long long min_amount = 0, min_age = -1, lim = LIST_LIMIT;
    if (gw_api_query(a->req, "status", status, sizeof status) < 0 || !valid_stages(status))
        return gw_api_fail(a, 400, "bad_request",
                           "status must be owed, overdue, defaulted or disputed (comma-separated)");
    if (gw_api_query(a->req, "district", district, sizeof district) < 0 ||
        gw_api_query(a->req, "lot", lot, sizeof lot) < 0)
        return gw_api_fail(a, 400, "bad_request", "district or lot is too long");
    if (lot[0] == '\0' && gw_api_query(a->req, "lot_id", lot, sizeof lot) < 0)
        return gw_api_fail(a, 400, "bad_request", "lot_id is too long");
    if (gw_api_query(a->req, "min_amount", amount, sizeof amount) < 0 ||
        (amount[0] && parse_count(amount, 0, 1LL << 50, &min_amount) != 0))
        return gw_api_fail(a, 400, "bad_request", "min_amount must be an amount in minor units");
    if (gw_api_query(a->req, "min_age_days", age, sizeof age) < 0 ||
        (age[0] && parse_count(age, 0, 100000, &min_age) != 0))
        return gw_api_fail(a, 400, "bad_request", "min_age_days must be a number of days");
    if (gw_api_query(a->req, "limit", limit, sizeof limit) < 0 ||
        (limit[0] && parse_count(limit, 1, LIST_MAX, &lim) != 0))
        return gw_api_fail(a, 400, "bad_request", "limit must be from 1 to %d", LIST_MAX);
    char ck[48] = "", cs[80] = "", cm[48] = "";
    if (gw_api_query(a->req, "cursor", cursor, sizeof cursor) < 0 ||
        (cursor[0] && gw_page_cursor(cursor, ck, sizeof ck, cs, sizeof cs, cm, sizeof cm) != 0))
        return gw_api_fail(a, 400, "bad_request", "cursor is not one this API gave");
    if (lot[0] && cmn_config_lot(cfg, lot) == NULL)
        return gw_api_fail(a, 404, "not_found", "no lot %s", lot);
    if (gw_api_ready(a) != 0)
        return;

    struct list_state *s = cmn_xcalloc(1, sizeof *s);
    gw_page_init(&s->page, 0);
    s->limit = (size_t)lim;
    s->now = gw_now(a->gw);
    a->extra = s;
    a->extra_free = free_list_state;
    char last[32] = "+inf";
    if (min_age >= 0)
        snprintf(last, sizeof last, "%lld", (long long)(s->now - min_age * 86400));
    a->pending = 1; /* held until every lot's call is sent */
    for (size_t i = 0; i < cfg->nlots; i++) {
        const cmn_cfg_lot_t *l = &cfg->lots[i];
        if ((lot[0] && strcmp(l->id, lot) != 0) ||
            (district[0] && (l->district == NULL || strcmp(l->district, district) != 0)))
            continue;
        cmn_rargs_t args;
        gw_api_script(a->gw, &args, GW_LUA_DEFAULT_LIST, 2);
        cmn_rargs_fmt(&args, "pk:{%s}:arrears", l->id);
        cmn_rargs_fmt(&args, "pk:{%s}:arrears:info", l->id);
        if (cursor[0]) {
            /* Resume after (ck, cs, cm): at score ck a lot sorting after cs keeps all its
             * entries, one before it none, the cursor's own lot those after cm. */
            int c = strcmp(l->id, cs);
            cmn_rargs_int(&args, strtoll(ck, NULL, 10));
            cmn_rargs_str(&args, c > 0 ? "all" : c < 0 ? "none" : cm);
        } else {
            cmn_rargs_str(&args, "-inf");
            cmn_rargs_str(&args, "all");
        }
        cmn_rargs_str(&args, last);
        cmn_rargs_int(&args, lim);
        cmn_rargs_str(&args, status);
        cmn_rargs_int(&args, min_amount);
        cmn_rargs_int(&args, LIST_BUDGET);
        struct lot_call *c = cmn_xcalloc(1, sizeof *c);
        c->a = a;
        c->lot = l;
        if (cmn_redis_command(a->gw->redis, on_lot_page, c, args.n, args.v, args.len) == 0) {
            a->pending++;
        } else {
            cmn_free(c);
            a->failed = 1;
        }
    }
    if (--a->pending == 0)
        list_finish(a);
}

/* ---- GET /v1/defaults/{plate} ---------------------------------------------------------------- */

struct detail_bill {
    gw_api_t *a;
    size_t index;
    const cmn_cfg_lot_t *lot;
};

static const char *collection_status(const char *status, json_t *reminders)
{
    if (status == NULL)
        return "unknown";
    if (strcmp(status, "paid") == 0 || strcmp(status, "paid_late") == 0 ||
        strcmp(status, "refunded") == 0)
        return "collected";
    if (strcmp(status, "waived") == 0)
        return "waived";
    if (strcmp(status, "reassigned") == 0 || strcmp(status, "merged") == 0 ||
        strcmp(status, "void") == 0)
        return "void";
    int dunning = 0, open = 0;
    size_t i;
    json_t *r;
    json_array_foreach(reminders, i, r)
    {
        const char *kind = json_string_value(json_object_get(r, "kind"));
        const char *state = json_string_value(json_object_get(r, "state"));
        if (kind == NULL || state == NULL)
            continue;
        if (strcmp(kind, "payment_failed") == 0 || strcmp(kind, "overdue") == 0 ||
            strcmp(kind, "defaulted") == 0) {
            dunning++;
            open += strcmp(state, "sent") != 0;
        }
    }
    return dunning == 0 ? "not_yet_reminded" : open > 0 ? "reminding" : "reminded";
}

json_t *gw_api_reason_codes(json_t *bill)
{
    json_t *codes = json_array();
    const char *reason = json_string_value(json_object_get(bill, "reason"));
    const char *match = json_string_value(json_object_get(bill, "match"));
    char buf[96];
    if (reason != NULL)
        json_array_append_new(codes, json_string(reason));
    if (match != NULL && match[0]) {
        snprintf(buf, sizeof buf, "match:%s", match);
        json_array_append_new(codes, json_string(buf));
    }
    json_t *ex = json_object_get(bill, "explanation");
    if (json_is_object(ex)) {
        const char *fr = json_string_value(json_object_get(ex, "reason"));
        if (fr != NULL) {
            snprintf(buf, sizeof buf, "fee:%s", fr);
            json_array_append_new(codes, json_string(buf));
        }
        if (json_integer_value(json_object_get(ex, "discount")) > 0) {
            snprintf(buf, sizeof buf, "discount:%lld%%",
                     (long long)json_integer_value(json_object_get(ex, "discount_percent")));
            json_array_append_new(codes, json_string(buf));
        }
        size_t i;
        json_t *row, *cap;
        json_array_foreach(json_object_get(ex, "rows"), i, row)
        {
            if (json_is_true(json_object_get(row, "first_period"))) {
                json_array_append_new(codes, json_string("first_period"));
                break;
            }
        }
        json_array_foreach(json_object_get(ex, "caps"), i, cap)
        {
            const char *kind = json_string_value(json_object_get(cap, "kind"));
            const char *band = json_string_value(json_object_get(cap, "band"));
            if (kind != NULL && strcmp(kind, "band") == 0 && band != NULL)
                snprintf(buf, sizeof buf, "cap:band:%s", band);
            else
                snprintf(buf, sizeof buf, "cap:%s", kind ? kind : "?");
            json_array_append_new(codes, json_string(buf));
        }
    }
    return codes;
}

static void detail_finish(gw_api_t *a)
{
    if (a->failed)
        return gw_api_fail(a, 503, "unavailable", "Redis is unavailable");
    json_t *o = a->acc;
    a->acc = NULL;
    json_t *bills = json_object_get(o, "bills");
    long long count = 0, amount = 0;
    size_t i;
    json_t *b;
    /* Bills that could not be read (their lot left the configuration) were left null. */
    for (i = json_array_size(bills); i-- > 0;) {
        if (json_is_null(json_array_get(bills, i)))
            json_array_remove(bills, i);
    }
    json_array_foreach(bills, i, b)
    {
        if (json_is_true(json_object_get(b, "arrear"))) {
            count++;
            amount += strtoll(nz(json_string_value(json_object_get(b, "amount"))), NULL, 10);
        }
    }
    json_t *arr = json_object();
    json_object_set_new(arr, "count", json_integer(count));
    json_object_set_new(arr, "amount", json_integer(amount));
    json_object_set_new(o, "arrears", arr);
    gw_api_done(a, 200, o);
}

static void on_detail_bill(void *data, int status, redisReply *r)
{
    struct detail_bill *d = data;
    gw_api_t *a = d->a;
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY) {
        a->failed = 1;
    } else if (cmn_reply_is(r, "ok") && r->elements >= 4) {
        json_t *b = gw_api_record(r->element[1]);
        json_object_set_new(b, "history", gw_api_history(r->element[2]));
        json_t *rem = json_array();
        const redisReply *rr = r->element[3];
        for (size_t i = 0; rr->type == REDIS_REPLY_ARRAY && i + 2 < rr->elements; i += 3) {
            json_t *e = json_object();
            const char *id = rr->element[i]->str;
            json_object_set_new(e, "id", json_string(id ? id : ""));
            json_object_set_new(e, "kind", json_string(nz(rr->element[i + 1]->str)));
            json_object_set_new(e, "state", json_string(nz(rr->element[i + 2]->str)));
            if (id != NULL) {
                char t[CMN_RFC3339_MAX];
                gw_api_time(d->lot, strtoll(id, NULL, 10) / 1000, t, sizeof t);
                json_object_set_new(e, "at", json_string(t));
            }
            json_array_append_new(rem, e);
        }
        const char *st = json_string_value(json_object_get(b, "status"));
        const char *stage = json_string_value(json_object_get(b, "stage"));
        int disputed = json_is_string(json_object_get(b, "disputed"));
        json_object_set_new(b, "disputed", json_boolean(disputed));
        json_object_set_new(b, "arrear",
                            json_boolean(disputed || (stage && (strcmp(stage, "overdue") == 0 ||
                                                                strcmp(stage, "defaulted") == 0)) ||
                                         (st && (strcmp(st, "overdue") == 0 ||
                                                 strcmp(st, "defaulted") == 0))));
        json_object_set_new(b, "collection_status",
                            json_string(collection_status(st, rem)));
        json_object_set_new(b, "reminders", rem);
        json_object_set_new(b, "reason_codes", gw_api_reason_codes(b));
        json_array_set_new(json_object_get(a->acc, "bills"), d->index, b);
    }
    cmn_free(d);
    if (--a->pending == 0)
        detail_finish(a);
}

static int bill_known(json_t *ids, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        if (strcmp(json_string_value(v), id) == 0)
            return 1;
    }
    return 0;
}

static void on_detail_driver(void *data, int status, redisReply *r)
{
    gw_api_t *a = data;
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY)
        return gw_api_fail(a, 503, "unavailable", "Redis is unavailable");
    if (!cmn_reply_is(r, "ok") || r->elements < 6)
        return gw_api_fail(a, 404, "not_found", "no driver holds plate %s", a->plate);
    const redisReply *rec = r->element[1], *unpaid = r->element[2], *hist = r->element[3];
    const redisReply *bills = r->element[4], *overdue = r->element[5];
    json_t *o = json_object();
    json_object_set_new(o, "plate", json_string(a->plate));
    json_t *drv = json_object();
    static const char *const text[] = {"id", "plates", "provider", "eligibility", NULL};
    static const char *const nums[] = {"score", "unpaid_count", "unpaid_amount", "updated_at",
                                       NULL};
    for (int i = 0; text[i]; i++)
        json_object_set_new(drv, text[i], json_string(nz(gw_api_field(rec, text[i]))));
    for (int i = 0; nums[i]; i++)
        json_object_set_new(drv, nums[i], num_or_null(gw_api_field(rec, nums[i])));
    const char *susp = gw_api_field(rec, "suspended");
    json_object_set_new(drv, "suspended", json_boolean(susp && strcmp(susp, "1") == 0));
    json_object_set_new(drv, "suspend_cause",
                        json_string(nz(gw_api_field(rec, "suspend_cause"))));
    json_t *ov = json_array();
    for (size_t i = 0; overdue->type == REDIS_REPLY_ARRAY && i < overdue->elements; i++)
        json_array_append_new(ov, json_string(nz(overdue->element[i]->str)));
    json_object_set_new(drv, "overdue_bills", ov);
    json_object_set_new(o, "driver", drv);
    json_object_set_new(o, "credit_history", gw_api_history(hist));

    /* The driver's bills (newest first), and any unpaid one the index does not know. */
    json_t *ids = json_array();
    for (size_t i = 0; bills->type == REDIS_REPLY_ARRAY && i + 1 < bills->elements; i += 2) {
        if (bills->element[i]->str != NULL)
            json_array_append_new(ids, json_string(bills->element[i]->str));
    }
    for (size_t i = 0; unpaid->type == REDIS_REPLY_ARRAY && i + 1 < unpaid->elements; i += 2) {
        const char *id = unpaid->element[i]->str;
        if (id != NULL && !bill_known(ids, id))
            json_array_append_new(ids, json_string(id));
    }
    json_t *list = json_array();
    json_object_set_new(o, "bills", list);
    a->acc = o;
    a->pending = 1;
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        json_array_append_new(list, json_null());
        gw_api_t probe;
        memset(&probe, 0, sizeof probe);
        probe.conf = a->conf;
        const char *id = json_string_value(v);
        if (gw_api_bill_id(&probe, id, strlen(id)) != 0)
            continue;
        cmn_rargs_t args;
        gw_api_script(a->gw, &args, GW_LUA_DEFAULT_BILL, 3);
        cmn_rargs_fmt(&args, "pk:{%s}:s:%s", probe.lot_id, probe.seq);
        cmn_rargs_fmt(&args, "pk:{%s}:s:%s:h", probe.lot_id, probe.seq);
        cmn_rargs_fmt(&args, "pk:{%s}:outbox", probe.lot_id);
        struct detail_bill *d = cmn_xcalloc(1, sizeof *d);
        d->a = a;
        d->index = i;
        d->lot = probe.lot;
        if (cmn_redis_command(a->gw->redis, on_detail_bill, d, args.n, args.v, args.len) == 0) {
            a->pending++;
        } else {
            cmn_free(d);
            a->failed = 1;
        }
    }
    json_decref(ids);
    if (--a->pending == 0)
        detail_finish(a);
}

/* The plate of /v1/defaults/{plate}[/...] into a->plate (normalised); 0, or -1 answered. */
static int path_plate(gw_api_t *a, const char *p, size_t n)
{
    char text[128];
    cmn_plate_t pl;
    if (gw_api_unescape(p, n, text, sizeof text) != 0 ||
        cmn_plate_parse(text, strlen(text), &pl) != 0 || pl.text[0] == '\0') {
        gw_api_fail(a, 400, "bad_request", "the path must name a valid plate");
        return -1;
    }
    snprintf(a->plate, sizeof a->plate, "%s", pl.text);
    return 0;
}

/* The driver holding a->plate (its plate index copy), then next(a). */
static void with_driver(gw_api_t *a, cmn_redis_cb next);

struct owner_call {
    gw_api_t *a;
    cmn_redis_cb next;
};

static void on_owner(void *data, int status, redisReply *r)
{
    struct owner_call *oc = data;
    gw_api_t *a = oc->a;
    cmn_redis_cb next = oc->next;
    cmn_free(oc);
    if (status != 0 || r == NULL)
        return gw_api_fail(a, 503, "unavailable", "Redis is unavailable");
    size_t n = r->type == REDIS_REPLY_STRING ? strcspn(r->str, US) : 0;
    if (n == 0 || n >= sizeof a->driver)
        return gw_api_fail(a, 404, "not_found", "no driver holds plate %s", a->plate);
    memcpy(a->driver, r->str, n);
    a->driver[n] = '\0';
    next(a, 0, NULL);
}

static void with_driver(gw_api_t *a, cmn_redis_cb next)
{
    char fold[CMN_PLATE_MAX];
    cmn_plate_fold_key(a->plate, 1, fold, sizeof fold);
    cmn_rargs_t args;
    cmn_rargs_init(&args);
    cmn_rargs_str(&args, "HGET");
    cmn_rargs_fmt(&args, "pk:plate:{%s}", fold);
    cmn_rargs_str(&args, a->plate);
    struct owner_call *oc = cmn_xcalloc(1, sizeof *oc);
    oc->a = a;
    oc->next = next;
    if (cmn_redis_command(a->gw->redis, on_owner, oc, args.n, args.v, args.len) != 0) {
        cmn_free(oc);
        gw_api_fail(a, 503, "unavailable", "Redis is unavailable");
    }
}

static void detail_read(void *data, int status, redisReply *r)
{
    gw_api_t *a = data;
    (void)status;
    (void)r;
    cmn_rargs_t args;
    gw_api_script(a->gw, &args, GW_LUA_DEFAULT_DRIVER, 5);
    static const char *const parts[] = {"", ":unpaid", ":history", ":bills", ":overdue"};
    for (int i = 0; i < 5; i++)
        cmn_rargs_fmt(&args, "pk:drv:{%s}%s", a->driver, parts[i]);
    gw_api_send(a, &args, on_detail_driver, a);
}

/* ---- POST /v1/defaults/{plate}/reinstate ----------------------------------------------------- */

static void on_reinstated(void *data, int status, redisReply *r)
{
    gw_api_t *a = data;
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY)
        return gw_api_fail(a, 503, "unavailable", "Redis is unavailable");
    if (cmn_reply_is(r, "unknown"))
        return gw_api_fail(a, 404, "not_found", "no driver holds plate %s", a->plate);
    if (cmn_reply_is(r, "not_suspended"))
        return gw_api_fail(a, 409, "conflict", "driver %s is not suspended", a->driver);
    const char *snap = cmn_reply_str(r, 1, NULL), *plates = cmn_reply_str(r, 2, NULL);
    const char *audit = cmn_reply_str(r, 3, NULL);
    if (snap != NULL && plates != NULL)
        gw_plates_mirror(a->gw, a->driver, plates, snap);
    char f[8][128];
    memset(f, 0, sizeof f);
    if (snap != NULL)
        split_us(snap, f, 8);
    cmn_log(CMN_LOG_INFO, "reinstated", "driver %s reinstated by %s", a->driver, a->who.name);
    json_t *o = json_object();
    json_object_set_new(o, "driver", json_string(a->driver));
    json_object_set_new(o, "suspended", json_false());
    json_object_set_new(o, "score", json_integer(strtoll(f[2], NULL, 10)));
    json_object_set_new(o, "audit_id", json_string(audit ? audit : ""));
    gw_api_done(a, 200, o);
}

static void reinstate(void *data, int status, redisReply *r)
{
    gw_api_t *a = data;
    (void)status;
    (void)r;
    char who[200];
    gw_api_who(a, who, sizeof who);
    /* The set of drivers with an audit stream, for GET /v1/audit to find them: written first, so
     * an entry is never in a stream nobody lists. */
    cmn_rargs_t args;
    cmn_rargs_init(&args);
    cmn_rargs_str(&args, "SADD");
    cmn_rargs_str(&args, "pk:{audit}:drivers");
    cmn_rargs_str(&args, a->driver);
    if (cmn_redis_command(a->gw->redis, NULL, NULL, args.n, args.v, args.len) != 0)
        return gw_api_fail(a, 503, "unavailable", "Redis is unavailable");
    gw_api_script(a->gw, &args, GW_LUA_DRIVER_REINSTATE, 3);
    cmn_rargs_fmt(&args, "pk:drv:{%s}", a->driver);
    cmn_rargs_fmt(&args, "pk:drv:{%s}:history", a->driver);
    cmn_rargs_fmt(&args, "pk:drv:{%s}:audit", a->driver);
    cmn_rargs_int(&args, gw_now(a->gw));
    cmn_rargs_str(&args, a->reason);
    cmn_rargs_str(&args, who);
    cmn_rargs_str(&args, a->plate);
    cmn_rargs_str(&args, a->aux);
    cmn_rargs_int(&args, a->conf->cfg->credit.max_score);
    gw_api_send(a, &args, on_reinstated, a);
}

static void defaults_entry(gw_api_t *a)
{
    if (gw_api_require(a, GW_STAFF) != 0)
        return;
    if (a->rest_len == 0) {
        if (a->req->method != HTTP_GET)
            return gw_api_fail(a, 405, "method_not_allowed", "use GET");
        return defaults_list(a);
    }
    const char *p = a->rest + 1;
    size_t n = a->rest_len - 1;
    const char *slash = memchr(p, '/', n);
    if (a->rest[0] != '/' || n == 0)
        return gw_api_fail(a, 404, "not_found", "no such resource");
    if (slash == NULL) {
        if (a->req->method != HTTP_GET)
            return gw_api_fail(a, 405, "method_not_allowed", "use GET");
        if (path_plate(a, p, n) != 0 || gw_api_ready(a) != 0)
            return;
        return with_driver(a, detail_read);
    }
    size_t pn = (size_t)(slash - p);
    if (n - pn != 10 || memcmp(slash, "/reinstate", 10) != 0)
        return gw_api_fail(a, 404, "not_found", "no such resource");
    if (a->req->method != HTTP_POST)
        return gw_api_fail(a, 405, "method_not_allowed", "use POST");
    if (path_plate(a, p, pn) != 0)
        return;
    json_t *doc;
    if (gw_api_reason(a, &doc) != 0)
        return;
    json_t *score = json_object_get(doc, "score");
    if (score != NULL && !json_is_null(score)) {
        if (!json_is_integer(score) || json_integer_value(score) < 0 ||
            json_integer_value(score) > a->conf->cfg->credit.max_score) {
            json_decref(doc);
            return gw_api_fail(a, 400, "bad_request",
                               "score must be an integer from 0 to the policy's max_score");
        }
        snprintf(a->aux, sizeof a->aux, "%lld", (long long)json_integer_value(score));
    }
    json_decref(doc);
    if (gw_api_ready(a) != 0)
        return;
    with_driver(a, reinstate);
}

void gw_h_defaults(gw_t *gw, cmn_httpd_req_t *req, const char *rest, size_t n)
{
    gw_api_start(gw, req, rest, n, defaults_entry);
}

/* ---- POST /v1/bills/{bill}/dispute|resolve ---------------------------------------------------- */

static void send_resolve(gw_api_t *a);

static void on_disputed(void *data, int status, redisReply *r)
{
    gw_api_t *a = data;
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY)
        return gw_api_fail(a, 503, "unavailable", "Redis is unavailable");
    if (cmn_reply_is(r, "unknown"))
        return gw_api_fail(a, 404, "not_found", "no such bill");
    if (cmn_reply_is(r, "not_yours"))
        return gw_api_fail(a, 403, "forbidden", "bill %s is not yours", a->bill);
    if (cmn_reply_is(r, "not_owed")) {
        const char *st = cmn_reply_str(r, 1, NULL);
        return gw_api_fail(a, 409, "conflict", "bill %s is %s: nothing to dispute", a->bill,
                           st ? st : "?");
    }
    if (cmn_reply_is(r, "already"))
        return gw_api_fail(a, 409, "conflict", "bill %s is already disputed", a->bill);
    const char *audit = cmn_reply_str(r, 2, NULL);
    json_t *o = json_object();
    json_object_set_new(o, "bill", json_string(a->bill));
    json_object_set_new(o, "disputed", json_true());
    json_object_set_new(o, "status", json_string(nz(cmn_reply_str(r, 1, NULL))));
    json_object_set_new(o, "audit_id", json_string(audit ? audit : ""));
    gw_api_done(a, 200, o);
}

void gw_api_dispute(gw_api_t *a, const char *driver)
{
    char who[200];
    gw_api_who(a, who, sizeof who);
    cmn_rargs_t args;
    gw_api_script(a->gw, &args, GW_LUA_DISPUTE_OPEN, 5);
    cmn_rargs_fmt(&args, "pk:{%s}:s:%s", a->lot_id, a->seq);
    cmn_rargs_fmt(&args, "pk:{%s}:s:%s:h", a->lot_id, a->seq);
    cmn_rargs_fmt(&args, "pk:{%s}:arrears", a->lot_id);
    cmn_rargs_fmt(&args, "pk:{%s}:arrears:info", a->lot_id);
    cmn_rargs_fmt(&args, "pk:{%s}:audit", a->lot_id);
    cmn_rargs_str(&args, a->seq);
    cmn_rargs_int(&args, gw_now(a->gw));
    cmn_rargs_str(&args, a->reason);
    cmn_rargs_str(&args, who);
    cmn_rargs_str(&args, driver);
    gw_api_send(a, &args, on_disputed, a);
}

static void on_resolved(void *data, int status, redisReply *r)
{
    gw_api_t *a = data;
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY)
        return gw_api_fail(a, 503, "unavailable", "Redis is unavailable");
    if (cmn_reply_is(r, "unknown"))
        return gw_api_fail(a, 404, "not_found", "no such bill");
    if (cmn_reply_is(r, "not_disputed")) {
        const char *st = cmn_reply_str(r, 1, NULL);
        return gw_api_fail(a, 409, "conflict", "bill %s (%s) is not disputed", a->bill,
                           st ? st : "?");
    }
    if (cmn_reply_is(r, "busy"))
        return gw_api_fail(a, 409, "conflict",
                           "a charge of bill %s is with the provider; try again when it ended",
                           a->bill);
    if (cmn_reply_is(r, "day")) {
        /* The waiver moves the bill's money in the lot-day of its exit: ask with its key. */
        const char *day = cmn_reply_str(r, 1, NULL);
        if (a->asks++ > 0 || day == NULL || strlen(day) >= 16)
            return gw_api_fail(a, 503, "unavailable", "the bill's day keeps changing");
        snprintf(a->aux + 16, 16, "%s", day);
        return send_resolve(a);
    }
    const char *outcome = cmn_reply_str(r, 1, NULL), *driver = cmn_reply_str(r, 2, NULL);
    const char *audit = cmn_reply_str(r, 3, NULL);
    if (outcome != NULL && strcmp(outcome, "waived") == 0)
        gw_api_driver_waived(a->gw, driver, a->bill);
    json_t *o = json_object();
    json_object_set_new(o, "bill", json_string(a->bill));
    json_object_set_new(o, "outcome", json_string(outcome ? outcome : ""));
    json_object_set_new(o, "disputed", json_false());
    if (outcome != NULL && strcmp(outcome, "waived") == 0)
        json_object_set_new(o, "status", json_string("waived"));
    json_object_set_new(o, "audit_id", json_string(audit ? audit : ""));
    gw_api_done(a, 200, o);
}

/* a->aux holds the outcome (first 16 bytes) and the bill's day once known (next 16). */
static void send_resolve(gw_api_t *a)
{
    char who[200];
    gw_api_who(a, who, sizeof who);
    cmn_rargs_t args;
    gw_api_script(a->gw, &args, GW_LUA_DISPUTE_RESOLVE, 8);
    cmn_rargs_fmt(&args, "pk:{%s}:s:%s", a->lot_id, a->seq);
    cmn_rargs_fmt(&args, "pk:{%s}:s:%s:h", a->lot_id, a->seq);
    cmn_rargs_fmt(&args, "pk:{%s}:due", a->lot_id);
    cmn_rargs_fmt(&args, "pk:{%s}:outbox", a->lot_id);
    cmn_rargs_fmt(&args, "pk:{%s}:day:%s", a->lot_id, a->aux[16] ? a->aux + 16 : "-");
    cmn_rargs_fmt(&args, "pk:{%s}:arrears", a->lot_id);
    cmn_rargs_fmt(&args, "pk:{%s}:arrears:info", a->lot_id);
    cmn_rargs_fmt(&args, "pk:{%s}:audit", a->lot_id);
    cmn_rargs_str(&args, a->seq);
    cmn_rargs_int(&args, gw_now(a->gw));
    cmn_rargs_str(&args, a->reason);
    cmn_rargs_str(&args, who);
    cmn_rargs_str(&args, a->aux);
    gw_api_send(a, &args, on_resolved, a);
}

static void bill_action(gw_api_t *a)
{
    if (gw_api_require(a, GW_STAFF) != 0)
        return;
    const char *slash = memchr(a->rest, '/', a->rest_len);
    if (slash == NULL || gw_api_bill_id(a, a->rest, (size_t)(slash - a->rest)) != 0)
        return gw_api_fail(a, 404, "not_found", "no such bill");
    int resolve = strncmp(slash, "/resolve", 8) == 0;
    if (a->req->method != HTTP_POST)
        return gw_api_fail(a, 405, "method_not_allowed", "use POST");
    json_t *doc;
    if (gw_api_reason(a, &doc) != 0)
        return;
    if (resolve) {
        const char *outcome = json_string_value(json_object_get(doc, "outcome"));
        if (outcome == NULL || (strcmp(outcome, "upheld") != 0 && strcmp(outcome, "waived") != 0)) {
            json_decref(doc);
            return gw_api_fail(a, 400, "bad_request",
                               "outcome must be \"upheld\" (still owed) or \"waived\"");
        }
        memset(a->aux, 0, sizeof a->aux);
        snprintf(a->aux, 16, "%s", outcome);
    }
    json_decref(doc);
    if (gw_api_ready(a) != 0)
        return;
    if (resolve)
        send_resolve(a);
    else
        gw_api_dispute(a, "");
}

void gw_h_bill_dispute(gw_t *gw, cmn_httpd_req_t *req, const char *rest, size_t n)
{
    gw_api_start(gw, req, rest, n, bill_action);
}

/* ---- GET /v1/city/figures -------------------------------------------------------------------- */

enum {
    F_EXITS,
    F_BILLS,
    F_BILLED,
    F_OWED_N,
    F_OWED,
    F_OVERDUE_N,
    F_OVERDUE,
    F_DEFAULTED_N,
    F_DEFAULTED,
    F_DISPUTED_N,
    F_DISPUTED,
    F_DEFAULTED_IN_RANGE,
    F_MANUAL,
    F_COUNT
};

static const char *const figure_names[F_COUNT] = {
    "exits",           "leave_first_bills", "billed",           "outstanding_count",
    "outstanding",     "overdue_count",     "overdue",          "defaulted_count",
    "defaulted",       "disputed_count",    "disputed",         "defaulted_in_range",
    "manual_openings"};

struct figures {
    int64_t from_day, to_day;
    long long *per_lot; /* nlots x F_COUNT */
};

struct fig_call {
    gw_api_t *a;
    size_t lot;
};

static void free_figures(void *p)
{
    struct figures *f = p;
    if (f != NULL)
        cmn_free(f->per_lot);
    cmn_free(f);
}

static json_t *figures_json(const long long *v)
{
    json_t *o = json_object();
    for (int i = 0; i < F_COUNT; i++)
        json_object_set_new(o, figure_names[i], json_integer(v[i]));
    json_object_set_new(o, "leave_first_share",
                        v[F_EXITS] ? json_real((double)v[F_BILLS] / (double)v[F_EXITS])
                                   : json_null());
    json_object_set_new(o, "default_rate",
                        v[F_BILLS] ? json_real((double)v[F_DEFAULTED_IN_RANGE] /
                                               (double)v[F_BILLS])
                                   : json_null());
    return o;
}

static void figures_finish(gw_api_t *a)
{
    struct figures *f = a->extra;
    const cmn_config_t *cfg = a->conf->cfg;
    if (a->failed)
        return gw_api_fail(a, 503, "unavailable", "Redis is unavailable");
    long long city[F_COUNT] = {0};
    json_t *lots = json_array(), *districts = json_array();
    for (size_t i = 0; i < cfg->nlots; i++) {
        const long long *v = &f->per_lot[i * F_COUNT];
        for (int k = 0; k < F_COUNT; k++)
            city[k] += v[k];
        json_t *o = figures_json(v);
        json_object_set_new(o, "lot", json_string(cfg->lots[i].id));
        json_object_set_new(o, "district", json_string(nz(cfg->lots[i].district)));
        json_array_append_new(lots, o);
    }
    /* Per district, in the order districts first appear in the configuration. */
    for (size_t i = 0; i < cfg->nlots; i++) {
        const char *d = cfg->lots[i].district ? cfg->lots[i].district : "";
        int seen = 0;
        for (size_t k = 0; k < i; k++)
            seen |= strcmp(cfg->lots[k].district ? cfg->lots[k].district : "", d) == 0;
        if (seen)
            continue;
        long long sum[F_COUNT] = {0};
        int nl = 0;
        for (size_t k = i; k < cfg->nlots; k++) {
            if (strcmp(cfg->lots[k].district ? cfg->lots[k].district : "", d) != 0)
                continue;
            nl++;
            for (int j = 0; j < F_COUNT; j++)
                sum[j] += f->per_lot[k * F_COUNT + j];
        }
        json_t *o = figures_json(sum);
        json_object_set_new(o, "district", json_string(d));
        json_object_set_new(o, "lots", json_integer(nl));
        json_array_append_new(districts, o);
    }
    char from[16], to[16];
    cmn_date_format(f->from_day, from, sizeof from);
    cmn_date_format(f->to_day, to, sizeof to);
    json_t *o = json_object();
    json_object_set_new(o, "from", json_string(from));
    json_object_set_new(o, "to", json_string(to));
    json_object_set_new(o, "currency",
                        json_string(cfg->nlots ? cmn_tariff_currency(cfg->lots[0].tariff) : ""));
    json_object_set_new(o, "city", figures_json(city));
    json_object_set_new(o, "districts", districts);
    json_object_set_new(o, "lots", lots);
    gw_api_done(a, 200, o);
}

static void on_figures(void *data, int status, redisReply *r)
{
    struct fig_call *c = data;
    gw_api_t *a = c->a;
    struct figures *f = a->extra;
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < F_COUNT) {
        if (status == 0 && r != NULL && r->type == REDIS_REPLY_ERROR)
            cmn_log(CMN_LOG_ERROR, "redis_script", "default_figures: %.200s", r->str);
        a->failed = 1;
    } else {
        for (int k = 0; k < F_COUNT; k++)
            f->per_lot[c->lot * F_COUNT + k] =
                r->element[k]->type == REDIS_REPLY_INTEGER ? r->element[k]->integer : 0;
    }
    cmn_free(c);
    if (--a->pending == 0)
        figures_finish(a);
}

/* default_figures of one lot: one key per day of the range, more than cmn_rargs holds. */
static int send_figures(gw_api_t *a, size_t lot_index)
{
    const struct figures *f = a->extra;
    const cmn_cfg_lot_t *lot = &a->conf->cfg->lots[lot_index];
    size_t ndays = (size_t)(f->to_day - f->from_day + 1), argc = 3 + 2 + ndays + 2;
    const char **argv = cmn_xcalloc(argc, sizeof *argv);
    size_t *lens = cmn_xcalloc(argc, sizeof *lens);
    char *store = cmn_xalloc(argc * 160);
    size_t used = 0, i = 0;
#define ARG(...)                                                                                   \
    do {                                                                                           \
        int w_ = snprintf(store + used, 160, __VA_ARGS__);                                         \
        argv[i] = store + used;                                                                    \
        lens[i++] = (size_t)(w_ < 160 ? w_ : 159);                                                 \
        used += 160;                                                                               \
    } while (0)
    ARG("EVALSHA");
    ARG("%s", cmn_redis_script_sha(a->gw->redis, a->gw->scripts[GW_LUA_DEFAULT_FIGURES]));
    ARG("%zu", 2 + ndays);
    ARG("pk:{%s}:arrears:info", lot->id);
    ARG("pk:{%s}:defaulted", lot->id);
    for (int64_t d = f->from_day; d <= f->to_day; d++) {
        char date[16];
        cmn_date_format(d, date, sizeof date);
        ARG("pk:{%s}:day:%s", lot->id, date);
    }
    /* The exits of the range: from the first day's local midnight to the day after the last. */
    int64_t t0 = f->from_day * 86400, t1 = (f->to_day + 1) * 86400;
    ARG("%lld", (long long)(t0 - cmn_tariff_utc_offset(lot->tariff, t0)));
    ARG("%lld", (long long)(t1 - cmn_tariff_utc_offset(lot->tariff, t1)));
#undef ARG
    struct fig_call *c = cmn_xcalloc(1, sizeof *c);
    c->a = a;
    c->lot = lot_index;
    int rc = cmn_redis_command(a->gw->redis, on_figures, c, (int)i, argv, lens);
    if (rc != 0)
        cmn_free(c);
    cmn_free(argv);
    cmn_free(lens);
    cmn_free(store);
    return rc;
}

static int query_date(gw_api_t *a, const char *name, int64_t *day)
{
    char s[32];
    int q = gw_api_query(a->req, name, s, sizeof s);
    if (q == 0)
        return 0;
    if (q < 0 || cmn_date_parse(s, strlen(s), day) != 0)
        return -1;
    return 1;
}

static void city_figures(gw_api_t *a)
{
    const cmn_config_t *cfg = a->conf->cfg;
    if (gw_api_require(a, GW_STAFF) != 0)
        return;
    if (a->req->method != HTTP_GET)
        return gw_api_fail(a, 405, "method_not_allowed", "use GET");
    int64_t now = gw_now(a->gw), from = 0, to = 0;
    int64_t today = cfg->nlots ? gw_api_lot_day(&cfg->lots[0], now) : cmn_floordiv(now, 86400);
    int hf = query_date(a, "from", &from), ht = query_date(a, "to", &to);
    if (hf < 0 || ht < 0)
        return gw_api_fail(a, 400, "bad_request", "from and to must be dates (YYYY-MM-DD)");
    if (!ht)
        to = today;
    if (!hf)
        from = to - 29;
    if (from > to || to - from + 1 > FIGURES_MAX_DAYS)
        return gw_api_fail(a, 400, "bad_request", "from must not be after to, and the range is "
                                                  "at most %d days", FIGURES_MAX_DAYS);
    if (gw_api_ready(a) != 0)
        return;
    struct figures *f = cmn_xcalloc(1, sizeof *f);
    f->from_day = from;
    f->to_day = to;
    f->per_lot = cmn_xcalloc(cfg->nlots ? cfg->nlots * F_COUNT : 1, sizeof *f->per_lot);
    a->extra = f;
    a->extra_free = free_figures;
    a->pending = 1;
    for (size_t i = 0; i < cfg->nlots; i++) {
        if (send_figures(a, i) == 0)
            a->pending++;
        else
            a->failed = 1;
    }
    if (--a->pending == 0)
        figures_finish(a);
}

void gw_h_city_figures(gw_t *gw, cmn_httpd_req_t *req)
{
    gw_api_start(gw, req, "", 0, city_figures);
}
