/*
 * GET /v1/audit (docs/api.md): the append-only audit log, newest first.
 *
 *   ?lot=L  ?actor=NAME  ?action=A  ?from=T  ?to=T  ?limit=N  ?cursor=C
 *
 * The log is one stream per lot (pk:{L}:audit: bill actions, lane work, passes) and one per driver
 * whose record staff changed (pk:drv:{D}:audit: reinstatements; such drivers are listed in the set
 * pk:{audit}:drivers), each written by the script that made the change.  A page reads every stream
 * in scope with audit_list (newest first from the cursor, filtered, at most AUDIT_BUDGET entries
 * each), pipelined, and merges them in (id, source) order.  Admin and city tokens see everything;
 * an operator token sees its own lots' streams only.
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

#define AUDIT_LIMIT 50
#define AUDIT_MAX 500
#define AUDIT_BUDGET 5000

struct audit_state {
    gw_page_t page;
    size_t limit;
    char lot[80], actor[80], action[40];
    char newest[48], oldest[48]; /* stream id bounds from ?to and ?from */
    char ck[48], cs[80], cm[48]; /* the cursor: padded id, source, id */
    int has_cursor;
};

struct stream_call {
    gw_api_t *a;
    char source[80];
    const cmn_cfg_lot_t *lot;
};

static void free_state(void *p)
{
    struct audit_state *s = p;
    if (s != NULL)
        gw_page_dispose(&s->page);
    cmn_free(s);
}

/* A stream id "ms-seq" as a key that strcmp orders. */
static void padded_id(const char *id, char *out, size_t outsz)
{
    unsigned long long ms = strtoull(id, NULL, 10), seq = 0;
    const char *dash = strchr(id, '-');
    if (dash != NULL)
        seq = strtoull(dash + 1, NULL, 10);
    snprintf(out, outsz, "%015llu-%010llu", ms, seq);
}

/* Back from padded_id's form. */
static void plain_id(const char *padded, char *out, size_t outsz)
{
    unsigned long long ms = strtoull(padded, NULL, 10), seq = 0;
    const char *dash = strchr(padded, '-');
    if (dash != NULL)
        seq = strtoull(dash + 1, NULL, 10);
    snprintf(out, outsz, "%llu-%llu", ms, seq);
}

static void audit_finish(gw_api_t *a)
{
    struct audit_state *s = a->extra;
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

static void on_stream(void *data, int status, redisReply *r)
{
    struct stream_call *c = data;
    gw_api_t *a = c->a;
    struct audit_state *s = a->extra;
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_ARRAY) {
        if (status == 0 && r != NULL && r->type == REDIS_REPLY_ERROR)
            cmn_log(CMN_LOG_ERROR, "redis_script", "audit_list: %.200s", r->str);
        a->failed = 1;
    } else {
        const redisReply *es = r->element[0];
        for (size_t i = 0; i < es->elements; i++) {
            const redisReply *e = es->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->str == NULL)
                continue;
            const char *id = e->element[0]->str;
            json_t *o = json_object();
            json_object_set_new(o, "id", json_string(id));
            json_object_set_new(o, "source", json_string(c->source));
            const redisReply *f = e->element[1];
            for (size_t k = 0; f->type == REDIS_REPLY_ARRAY && k + 1 < f->elements; k += 2) {
                const char *name = f->element[k]->str, *v = f->element[k + 1]->str;
                if (name == NULL || v == NULL)
                    continue;
                if (strcmp(name, "at") == 0) {
                    json_object_set_new(o, "at", json_integer(strtoll(v, NULL, 10)));
                    char t[CMN_RFC3339_MAX];
                    if (c->lot != NULL)
                        gw_api_time(c->lot, strtoll(v, NULL, 10), t, sizeof t);
                    else if (cmn_rfc3339_format(strtoll(v, NULL, 10), 0, 1, t, sizeof t) < 0)
                        t[0] = '\0';
                    json_object_set_new(o, "time", json_string(t));
                } else {
                    json_object_set_new(o, name, json_string(v));
                }
            }
            char key[48];
            padded_id(id, key, sizeof key);
            gw_page_add(&s->page, key, c->source, id, o);
        }
        const char *h = r->element[1]->str;
        if (h != NULL && h[0] != '\0') {
            char key[48];
            padded_id(h, key, sizeof key);
            gw_page_horizon(&s->page, key, c->source, h);
        }
    }
    cmn_free(c);
    if (--a->pending == 0)
        audit_finish(a);
}

/* audit_list on one stream, from the cursor (or ?to) back to ?from. */
static void read_stream(gw_api_t *a, const char *key, const char *source, const cmn_cfg_lot_t *lot)
{
    struct audit_state *s = a->extra;
    char start[48];
    int exclusive = 0;
    snprintf(start, sizeof start, "%s", s->newest);
    if (s->has_cursor) {
        char cid[48];
        plain_id(s->ck, cid, sizeof cid);
        /* Newest first, ties by source descending: after (cid, cs) come, in a source sorting
         * before cs, the entries up to cid itself; in the others those older than cid. */
        unsigned long long cm = strtoull(s->ck, NULL, 10), nm = strtoull(s->newest, NULL, 10);
        if (strcmp(s->newest, "+") == 0 || cm <= nm) {
            snprintf(start, sizeof start, "%s", cid);
            exclusive = strcmp(source, s->cs) >= 0;
        }
    }
    cmn_rargs_t args;
    gw_api_script(a->gw, &args, GW_LUA_AUDIT_LIST, 1);
    cmn_rargs_str(&args, key);
    cmn_rargs_str(&args, start);
    cmn_rargs_str(&args, exclusive ? "1" : "0");
    cmn_rargs_str(&args, s->oldest);
    cmn_rargs_int(&args, (long long)s->limit);
    cmn_rargs_str(&args, s->actor);
    cmn_rargs_str(&args, s->action);
    cmn_rargs_int(&args, AUDIT_BUDGET);
    struct stream_call *c = cmn_xcalloc(1, sizeof *c);
    c->a = a;
    c->lot = lot;
    snprintf(c->source, sizeof c->source, "%s", source);
    if (cmn_redis_command(a->gw->redis, on_stream, c, args.n, args.v, args.len) == 0) {
        a->pending++;
    } else {
        cmn_free(c);
        a->failed = 1;
    }
}

static void on_drivers(void *data, int status, redisReply *r)
{
    gw_api_t *a = data;
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY) {
        a->failed = 1;
    } else {
        for (size_t i = 0; i < r->elements; i++) {
            const char *d = r->element[i]->str;
            if (d == NULL || !cmn_is_ident(d, 64))
                continue;
            char key[100], source[80];
            snprintf(key, sizeof key, "pk:drv:{%s}:audit", d);
            snprintf(source, sizeof source, "drv:%s", d);
            read_stream(a, key, source, NULL);
        }
    }
    if (--a->pending == 0)
        audit_finish(a);
}

/* A time bound: unix seconds or RFC 3339, as a stream id bound in ms. */
static int time_bound(gw_api_t *a, const char *name, int newest, char *out, size_t outsz)
{
    char v[64];
    int q = gw_api_query(a->req, name, v, sizeof v);
    if (q == 0)
        return 0;
    cmn_instant_t t;
    char *end;
    long long secs = strtoll(v, &end, 10);
    if (q > 0 && v[0] != '\0' && *end == '\0')
        t = secs;
    else if (q < 0 || cmn_rfc3339_parse(v, strlen(v), &t) != 0)
        return -1;
    if (t < 0)
        t = 0;
    if (newest)
        snprintf(out, outsz, "%lld-18446744073709551615", (long long)t * 1000 + 999);
    else
        snprintf(out, outsz, "%lld-0", (long long)t * 1000);
    return 0;
}

static void audit_entry(gw_api_t *a)
{
    const cmn_config_t *cfg = a->conf->cfg;
    if (gw_api_require(a, GW_STAFF | GW_ROLE_BIT(GW_ROLE_OPERATOR)) != 0)
        return;
    if (a->req->method != HTTP_GET)
        return gw_api_fail(a, 405, "method_not_allowed", "use GET");
    struct audit_state *s = cmn_xcalloc(1, sizeof *s);
    gw_page_init(&s->page, 1);
    a->extra = s;
    a->extra_free = free_state;
    char limit[24] = "", cursor[200] = "";
    snprintf(s->newest, sizeof s->newest, "+");
    snprintf(s->oldest, sizeof s->oldest, "-");
    if (gw_api_query(a->req, "lot", s->lot, sizeof s->lot) < 0 ||
        gw_api_query(a->req, "actor", s->actor, sizeof s->actor) < 0 ||
        gw_api_query(a->req, "action", s->action, sizeof s->action) < 0)
        return gw_api_fail(a, 400, "bad_request", "lot, actor or action is too long");
    if (time_bound(a, "from", 0, s->oldest, sizeof s->oldest) != 0 ||
        time_bound(a, "to", 1, s->newest, sizeof s->newest) != 0)
        return gw_api_fail(a, 400, "bad_request",
                           "from and to must be unix seconds or RFC 3339 times");
    long long lim = AUDIT_LIMIT;
    char *end;
    if (gw_api_query(a->req, "limit", limit, sizeof limit) < 0 ||
        (limit[0] && ((lim = strtoll(limit, &end, 10)) < 1 || lim > AUDIT_MAX || *end)))
        return gw_api_fail(a, 400, "bad_request", "limit must be from 1 to %d", AUDIT_MAX);
    s->limit = (size_t)lim;
    if (gw_api_query(a->req, "cursor", cursor, sizeof cursor) < 0 ||
        (cursor[0] && gw_page_cursor(cursor, s->ck, sizeof s->ck, s->cs, sizeof s->cs, s->cm,
                                     sizeof s->cm) != 0))
        return gw_api_fail(a, 400, "bad_request", "cursor is not one this API gave");
    s->has_cursor = cursor[0] != '\0';
    if (s->lot[0]) {
        if (cmn_config_lot(cfg, s->lot) == NULL)
            return gw_api_fail(a, 404, "not_found", "no lot %s", s->lot);
        if (!gw_may_lot(&a->who, cfg, s->lot))
            return gw_api_fail(a, 403, "forbidden", "lot %s is not yours", s->lot);
    }
    if (gw_api_ready(a) != 0)
        return;
    a->pending = 1;
    for (size_t i = 0; i < cfg->nlots; i++) {
        const cmn_cfg_lot_t *l = &cfg->lots[i];
        if ((s->lot[0] && strcmp(l->id, s->lot) != 0) || !gw_may_lot(&a->who, cfg, l->id))
            continue;
        char key[100];
        snprintf(key, sizeof key, "pk:{%s}:audit", l->id);
        read_stream(a, key, l->id, l);
    }
    if (!s->lot[0] && a->who.role != GW_ROLE_OPERATOR) {
        /* The drivers' streams, once their set is read. */
        cmn_rargs_t args;
        cmn_rargs_init(&args);
        cmn_rargs_str(&args, "SMEMBERS");
        cmn_rargs_str(&args, "pk:{audit}:drivers");
        if (cmn_redis_command(a->gw->redis, on_drivers, a, args.n, args.v, args.len) == 0)
            a->pending++;
        else
            a->failed = 1;
    }
    if (--a->pending == 0)
        audit_finish(a);
}

void gw_h_audit(gw_t *gw, cmn_httpd_req_t *req)
{
    gw_api_start(gw, req, "", 0, audit_entry);
}
