/*
 * The request context and helpers of the people's API (api.h, docs/api.md).
 */
#include "api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn/buf.h"
#include "cmn/crypto.h"
#include "cmn/driver.h"
#include "cmn/log.h"
#include "cmn/mem.h"
#include "cmn/time.h"

struct pending_auth {
    gw_api_t *a;
    gw_api_fn fn;
};

static void api_free(gw_api_t *a)
{
    if (a->extra_free != NULL)
        a->extra_free(a->extra);
    json_decref(a->acc);
    gw_conf_unref(a->conf);
    cmn_free(a);
}

static void on_auth(void *data, int status, const gw_principal_t *who, const char *why)
{
    struct pending_auth *p = data;
    gw_api_t *a = p->a;
    gw_api_fn fn = p->fn;
    cmn_free(p);
    if (status == 401) {
        gw_metrics_error(&a->gw->metrics, "unauthorized");
        gw_respond_error(a->req, 401, "unauthorized", "%s", why ? why : "a valid token is required");
        api_free(a);
        return;
    }
    if (status != 0 || who == NULL) {
        gw_metrics_error(&a->gw->metrics, "unavailable");
        gw_respond_error(a->req, 503, "unavailable", "%s", why ? why : "Redis is unavailable");
        api_free(a);
        return;
    }
    a->who = *who;
    fn(a);
}

void gw_api_start(gw_t *gw, cmn_httpd_req_t *req, const char *rest, size_t rest_len, gw_api_fn fn)
{
    gw_api_t *a = cmn_xcalloc(1, sizeof *a);
    struct pending_auth *p = cmn_xcalloc(1, sizeof *p);
    a->gw = gw;
    a->conf = gw_conf_ref(gw);
    a->req = req;
    a->rest = rest;
    const char *q = memchr(rest, '?', rest_len);
    a->rest_len = q ? (size_t)(q - rest) : rest_len;
    p->a = a;
    p->fn = fn;
    gw_authenticate(gw, req, on_auth, p);
}

void gw_api_done(gw_api_t *a, int status, json_t *body)
{
    gw_respond_json(a->req, status, body);
    api_free(a);
}

void gw_api_fail(gw_api_t *a, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gw_metrics_error(&a->gw->metrics, code);
    gw_respond_error(a->req, status, code, "%s", msg);
    api_free(a);
}

int gw_api_require(gw_api_t *a, unsigned roles)
{
    if (roles & GW_ROLE_BIT(a->who.role))
        return 0;
    gw_api_fail(a, 403, "forbidden", "a %s token may not do this", gw_role_name(a->who.role));
    return -1;
}

int gw_api_ready(gw_api_t *a)
{
    if (a->gw->redis != NULL && cmn_redis_ready(a->gw->redis))
        return 0;
    gw_api_fail(a, 503, "unavailable", "Redis is unavailable");
    return -1;
}

int gw_api_unescape(const char *in, size_t n, char *out, size_t outsz)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        unsigned char byte;
        if (c == '%' && i + 2 < n && cmn_unhex(in + i + 1, 2, &byte, 1) == 0) {
            c = (char)byte;
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (c == '\0' || o + 1 >= outsz)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

int gw_api_query(const cmn_httpd_req_t *req, const char *name, char *out, size_t outsz)
{
    const char *q = memchr(req->url, '?', req->url_len);
    if (q == NULL)
        return 0;
    const char *end = req->url + req->url_len;
    size_t nlen = strlen(name);
    for (const char *p = q + 1; p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        const char *kend = eq ? eq : stop;
        if ((size_t)(kend - p) == nlen && memcmp(p, name, nlen) == 0) {
            const char *v = eq ? eq + 1 : stop;
            return gw_api_unescape(v, (size_t)(stop - v), out, outsz) == 0 ? 1 : -1;
        }
        p = stop + 1;
    }
    return 0;
}

int gw_api_reason(gw_api_t *a, json_t **doc)
{
    json_error_t err;
    *doc = json_loadb(a->req->body, a->req->body_len, JSON_REJECT_DUPLICATES, &err);
    json_t *r = json_is_object(*doc) ? json_object_get(*doc, "reason") : NULL;
    size_t n = json_is_string(r) ? json_string_length(r) : 0;
    int ok = n >= 1 && n < sizeof a->reason && strlen(json_string_value(r)) == n;
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char c = (unsigned char)json_string_value(r)[i];
        ok = c >= 0x20 && c != 0x7f;
    }
    if (!ok) {
        json_decref(*doc);
        *doc = NULL;
        gw_api_fail(a, 400, "bad_request",
                    "the body must be a JSON object with \"reason\": a text of 1 to 300 bytes "
                    "without control characters");
        return -1;
    }
    memcpy(a->reason, json_string_value(r), n + 1);
    return 0;
}

void gw_principal_who(const gw_principal_t *who, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s\x1f%s\x1f%s", gw_role_name(who->role), who->scope,
             who->name[0] ? who->name : gw_role_name(who->role));
}

void gw_api_who(const gw_api_t *a, char *out, size_t outsz)
{
    gw_principal_who(&a->who, out, outsz);
}

int gw_session_id_split(const char *sid, char *lot, size_t lotsz, char *seq, size_t seqsz)
{
    const char *t = sid != NULL ? strrchr(sid, '~') : NULL;
    if (t == NULL || t == sid || (size_t)(t - sid) >= lotsz || t[1] == '\0' ||
        strlen(t + 1) >= seqsz || strspn(t + 1, "0123456789") != strlen(t + 1))
        return -1;
    memcpy(lot, sid, (size_t)(t - sid));
    lot[t - sid] = '\0';
    memcpy(seq, t + 1, strlen(t + 1) + 1);
    return 0;
}

int gw_bill_id_split(const char *bill, char *lot, size_t lotsz, char *seq, size_t seqsz)
{
    const char *end = strrchr(bill, '~');
    char sid[160];
    if (end == NULL || strcmp(end, "~b") != 0 || (size_t)(end - bill) >= sizeof sid)
        return -1;
    memcpy(sid, bill, (size_t)(end - bill));
    sid[end - bill] = '\0';
    return gw_session_id_split(sid, lot, lotsz, seq, seqsz);
}

void gw_plate_driver(const gw_conf_t *conf, const redisReply *rp, char *driver, size_t dsz,
                     char *provider, size_t psz)
{
    cmn_snapshot_t d;
    if (rp == NULL || rp->type != REDIS_REPLY_STRING || cmn_snapshot_parse(rp->str, &d) != 0)
        return;
    if (d.ver != 0 && cmn_config_provider(conf->cfg, d.provider) != NULL) {
        snprintf(driver, dsz, "%s", d.driver);
        snprintf(provider, psz, "%s", d.provider);
    }
}

void gw_set_str(json_t *o, const char *k, const char *v)
{
    json_object_set_new(o, k, json_string(v != NULL ? v : ""));
}

void gw_set_int(json_t *o, const char *k, long long v)
{
    char n[CMN_INT_CHARS + 1], *p = cmn_int_format(n, v);
    n[CMN_INT_CHARS] = '\0';
    json_object_set_new(o, k, json_string(p));
}

int gw_api_bill_id(gw_api_t *a, const char *id, size_t n)
{
    if (gw_api_unescape(id, n, a->bill, sizeof a->bill) != 0 ||
        gw_bill_id_split(a->bill, a->lot_id, sizeof a->lot_id, a->seq, sizeof a->seq) != 0)
        return -1;
    a->lot = cmn_config_lot(a->conf->cfg, a->lot_id);
    return a->lot != NULL ? 0 : -1;
}

void gw_api_script(const gw_t *gw, cmn_rargs_t *a, int script, int nkeys)
{
    cmn_rargs_init(a);
    cmn_rargs_str(a, "EVALSHA");
    cmn_rargs_str(a, cmn_redis_script_sha(gw->redis, gw->scripts[script]));
    cmn_rargs_int(a, nkeys);
}

int gw_api_send(gw_api_t *a, cmn_rargs_t *args, cmn_redis_cb cb, void *data)
{
    if (!args->overflow &&
        cmn_redis_command(a->gw->redis, cb, data, args->n, args->v, args->len) == 0)
        return 0;
    gw_api_fail(a, 503, "unavailable", "Redis is unavailable");
    return -1;
}

const char *gw_api_field(const redisReply *flat, const char *key)
{
    for (size_t i = 0; flat != NULL && flat->type == REDIS_REPLY_ARRAY && i + 1 < flat->elements;
         i += 2) {
        const redisReply *k = flat->element[i];
        if (k->type == REDIS_REPLY_STRING && strcmp(k->str, key) == 0)
            return flat->element[i + 1]->str;
    }
    return NULL;
}

json_t *gw_api_record(const redisReply *flat)
{
    json_t *o = json_object();
    for (size_t i = 0; flat != NULL && flat->type == REDIS_REPLY_ARRAY && i + 1 < flat->elements;
         i += 2) {
        const char *k = flat->element[i]->str, *v = flat->element[i + 1]->str;
        if (k == NULL || v == NULL)
            continue;
        json_t *j = NULL;
        if (strcmp(k, "explanation") == 0 && v[0] == '{') {
            json_error_t err;
            j = json_loads(v, 0, &err);
        }
        json_object_set_new(o, k, j ? j : json_string(v));
    }
    return o;
}

json_t *gw_api_history(const redisReply *list)
{
    json_t *h = json_array();
    for (size_t i = 0; list != NULL && list->type == REDIS_REPLY_ARRAY && i < list->elements; i++) {
        json_error_t err;
        const char *s = list->element[i]->str;
        json_t *e = s ? json_loads(s, 0, &err) : NULL;
        if (e != NULL)
            json_array_append_new(h, e);
    }
    return h;
}

void gw_api_time(const cmn_cfg_lot_t *lot, int64_t t, char *out, size_t outsz)
{
    if (cmn_rfc3339_format(t, cmn_tariff_utc_offset(lot->tariff, t), 0, out, outsz) < 0 &&
        outsz > 0)
        out[0] = '\0';
}

int64_t gw_api_lot_day(const cmn_cfg_lot_t *lot, int64_t t)
{
    return cmn_floordiv(t + cmn_tariff_utc_offset(lot->tariff, t), 86400);
}

static void on_driver_settled(void *data, int status, redisReply *r)
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

void gw_api_driver_waived(gw_t *gw, const char *driver, const char *bill)
{
    if (driver == NULL || driver[0] == '\0')
        return;
    gw_conf_t *conf = gw_conf_ref(gw);
    cmn_rargs_t a;
    gw_api_script(gw, &a, GW_LUA_DRIVER_SETTLE, 5);
    static const char *const parts[] = {"", ":unpaid", ":overdue", ":applied", ":history"};
    for (int i = 0; i < 5; i++)
        cmn_rargs_fmt(&a, "pk:drv:{%s}%s", driver, parts[i]);
    cmn_rargs_str(&a, bill);
    cmn_rargs_str(&a, "waived");
    cmn_rargs_int(&a, gw_now(gw));
    cmn_rargs_int(&a, 0);
    cmn_rargs_int(&a, conf->cfg->credit.max_score);
    if (cmn_redis_command(gw->redis, on_driver_settled, gw, a.n, a.v, a.len) != 0)
        cmn_log(CMN_LOG_WARN, "driver_update", "bill %s: driver update not sent", bill);
    gw_conf_unref(conf);
}

/* ---- paging --------------------------------------------------------------------------------- */

void gw_page_init(gw_page_t *p, int descending)
{
    memset(p, 0, sizeof *p);
    p->descending = descending;
}

void gw_page_dispose(gw_page_t *p)
{
    for (size_t i = 0; i < p->n; i++)
        json_decref(p->items[i].item);
    cmn_free(p->items);
    memset(p, 0, sizeof *p);
}

static int pos_cmp(const gw_page_item_t *a, const gw_page_item_t *b)
{
    int c = strcmp(a->key, b->key);
    if (c == 0)
        c = strcmp(a->source, b->source);
    if (c == 0)
        c = strcmp(a->member, b->member);
    return c;
}

static void set_pos(gw_page_item_t *it, const char *key, const char *source, const char *member)
{
    snprintf(it->key, sizeof it->key, "%s", key);
    snprintf(it->source, sizeof it->source, "%s", source);
    snprintf(it->member, sizeof it->member, "%s", member);
}

void gw_page_add(gw_page_t *p, const char *key, const char *source, const char *member,
                 json_t *item)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 64;
        p->items = cmn_xrealloc(p->items, p->cap * sizeof *p->items);
    }
    gw_page_item_t *it = &p->items[p->n++];
    set_pos(it, key, source, member);
    it->item = item;
}

void gw_page_horizon(gw_page_t *p, const char *key, const char *source, const char *member)
{
    gw_page_item_t h;
    set_pos(&h, key, source, member);
    /* The most restrictive: the first in the page's order. */
    int first = !p->has_horizon ||
                (p->descending ? pos_cmp(&h, &p->horizon) > 0 : pos_cmp(&h, &p->horizon) < 0);
    if (first)
        p->horizon = h;
    p->has_horizon = 1;
}

static int sort_desc;

static int item_order(const void *x, const void *y)
{
    int c = pos_cmp(x, y);
    return sort_desc ? -c : c;
}

char *gw_page_finish(gw_page_t *p, size_t limit, json_t *out)
{
    /* One loop thread: the comparator's direction may live in a static. */
    sort_desc = p->descending;
    if (p->n > 1)
        qsort(p->items, p->n, sizeof *p->items, item_order);
    size_t keep = 0;
    /* Beyond a source's horizon lie entries nobody read: stop there. */
    while (keep < p->n && keep < limit) {
        if (p->has_horizon) {
            int c = pos_cmp(&p->items[keep], &p->horizon);
            if (p->descending ? c < 0 : c > 0)
                break;
        }
        keep++;
    }
    for (size_t i = 0; i < keep; i++)
        json_array_append(out, p->items[i].item);
    /* A full page continues after its last item (the next page may turn out empty); a short one
     * after the horizon, when a source stopped reading there; else this was the end. */
    const gw_page_item_t *last = NULL;
    if (keep == limit && keep > 0)
        last = &p->items[keep - 1];
    else if (p->has_horizon)
        last = &p->horizon;
    if (last == NULL)
        return NULL;
    size_t n = strlen(last->key) + strlen(last->source) + strlen(last->member) + 3;
    char *c = cmn_xalloc(n);
    snprintf(c, n, "%s/%s/%s", last->key, last->source, last->member);
    return c;
}

int gw_page_cursor(const char *cursor, char *key, size_t keysz, char *source, size_t sourcesz,
                   char *member, size_t membersz)
{
    const char *s1 = strchr(cursor, '/');
    const char *s2 = s1 ? strrchr(cursor, '/') : NULL;
    if (s1 == NULL || s2 == s1)
        return -1;
    size_t kn = (size_t)(s1 - cursor), sn = (size_t)(s2 - s1 - 1), mn = strlen(s2 + 1);
    if (kn == 0 || kn >= keysz || sn == 0 || sn >= sourcesz || mn == 0 || mn >= membersz)
        return -1;
    memcpy(key, cursor, kn);
    key[kn] = '\0';
    memcpy(source, s1 + 1, sn);
    source[sn] = '\0';
    memcpy(member, s2 + 1, mn + 1);
    return 0;
}
