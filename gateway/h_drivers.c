/*
 * The admin API for drivers (an admin token: gateway.admin_token or one made by parkctl token;
 * any other role gets 403):
 *
 *   POST   /v1/drivers              enrol or update: {"id"?, "plates": [...], "provider",
 *                                   "payment_ref", "score"?}  -> 201 with the driver
 *   GET    /v1/drivers/{id}         -> 200 with the driver, or 404
 *   GET    /v1/drivers?plate=PLATE  -> the driver holding that plate, or 404
 *   DELETE /v1/drivers/{id}         -> 204; 409 while the driver owes bills
 *
 * A driver's record lives in its own hash slot (pk:drv:{id}); each plate's copy of it lives in the
 * plate index (pk:plate:{fold key}).  Enrolment first claims every plate (a plate belongs to one
 * driver at most), then writes the driver, then the copies; it is not on any lane's path and may
 * take a few round trips.
 */
#include <http_parser.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn/crypto.h"
#include "cmn/err.h"
#include "cmn/log.h"
#include "cmn/mem.h"
#include "cmn/plate.h"
#include "events.h"
#include "gw.h"
#include "cmn/rargs.h"
#include "api.h"
#include "auth.h"
#include "router.h"

#define MAX_PLATES 8
#define US "\x1f"

typedef struct dreq {
    gw_t *gw;
    gw_conf_t *conf;
    cmn_httpd_req_t *req;
    char id[65];
    char plates[MAX_PLATES][CMN_PLATE_MAX];
    int nplates;
    char provider[65];
    char payment_ref[129];
    long long score;
    int has_score;
    int pending;
    int failed;
    char taken_plate[CMN_PLATE_MAX];
    char taken_by[65];
    char *old_plates; /* space-separated, before this enrolment */
    char who[200];    /* the actor for the audit log: role US scope US name (gw_principal_t) */
} dreq_t;

static void dreq_free(dreq_t *d)
{
    gw_conf_unref(d->conf);
    cmn_free(d->old_plates);
    cmn_free(d);
}

static void fail(dreq_t *d, int status, const char *code, const char *msg)
{
    gw_metrics_error(&d->gw->metrics, code);
    gw_respond_error(d->req, status, code, "%s", msg);
    dreq_free(d);
}

static const char *flat_get(const redisReply *arr, const char *key)
{
    for (size_t i = 0; arr != NULL && i + 1 < arr->elements; i += 2) {
        if (arr->element[i]->type == REDIS_REPLY_STRING && strcmp(arr->element[i]->str, key) == 0)
            return arr->element[i + 1]->str;
    }
    return NULL;
}

static void set_num(json_t *o, const char *k, const char *v)
{
    json_object_set_new(o, k, json_integer(v ? strtoll(v, NULL, 10) : 0));
}

/* The driver as JSON from driver_get's reply. */
static json_t *driver_json(const redisReply *rec, const redisReply *unpaid)
{
    json_t *o = json_object();
    const char *plates = flat_get(rec, "plates");
    json_object_set_new(o, "id", json_string(flat_get(rec, "id") ? flat_get(rec, "id") : ""));
    json_t *pl = json_array();
    for (const char *p = plates ? plates : ""; *p;) {
        size_t n = strcspn(p, " ");
        if (n > 0)
            json_array_append_new(pl, json_stringn(p, n));
        p += n;
        while (*p == ' ')
            p++;
    }
    json_object_set_new(o, "plates", pl);
    json_object_set_new(o, "provider", json_string(flat_get(rec, "provider") ? flat_get(rec, "provider") : ""));
    json_object_set_new(o, "payment_ref",
                        json_string(flat_get(rec, "payment_ref") ? flat_get(rec, "payment_ref") : ""));
    set_num(o, "score", flat_get(rec, "score"));
    json_object_set_new(o, "suspended", json_boolean(flat_get(rec, "suspended") &&
                                                     strcmp(flat_get(rec, "suspended"), "1") == 0));
    json_object_set_new(o, "eligibility", json_string(flat_get(rec, "eligibility")
                                                          ? flat_get(rec, "eligibility")
                                                          : "NORMAL"));
    set_num(o, "unpaid_count", flat_get(rec, "unpaid_count"));
    set_num(o, "unpaid_amount", flat_get(rec, "unpaid_amount"));
    json_t *bills = json_object();
    for (size_t i = 0; unpaid != NULL && i + 1 < unpaid->elements; i += 2)
        json_object_set_new(bills, unpaid->element[i]->str,
                            json_integer(strtoll(unpaid->element[i + 1]->str, NULL, 10)));
    json_object_set_new(o, "unpaid_bills", bills);
    set_num(o, "version", flat_get(rec, "ver"));
    set_num(o, "created_at", flat_get(rec, "created_at"));
    set_num(o, "updated_at", flat_get(rec, "updated_at"));
    return o;
}

static int send_script(dreq_t *d, int script, int nkeys, cmn_redis_cb cb, cmn_rargs_t *a)
{
    (void)nkeys;
    (void)script;
    int rc = a->overflow ? CMN_ETOOBIG : cmn_redis_command(d->gw->redis, cb, d, a->n, a->v, a->len);
    return rc;
}

static void start_script(cmn_rargs_t *a, dreq_t *d, int script, int nkeys)
{
    cmn_rargs_init(a);
    cmn_rargs_str(a, "EVALSHA");
    cmn_rargs_str(a, cmn_redis_script_sha(d->gw->redis, d->gw->scripts[script]));
    cmn_rargs_int(a, nkeys);
}

/* Adds the driver to pk:{audit}:drivers (GET /v1/audit reads the streams of those), sent before
 * the script that writes the driver's audit entry, on the same connection, so it lands first. */
static void audit_listed(dreq_t *d)
{
    cmn_rargs_t a;
    cmn_rargs_init(&a);
    cmn_rargs_str(&a, "SADD");
    cmn_rargs_str(&a, "pk:{audit}:drivers");
    cmn_rargs_str(&a, d->id);
    cmn_redis_command(d->gw->redis, NULL, NULL, a.n, a.v, a.len);
}

/* ---- GET ----------------------------------------------------------------------------------- */

static void on_get(void *data, int status, redisReply *r)
{
    dreq_t *d = data;
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY)
        return fail(d, 503, "unavailable", "Redis is unavailable");
    if (!cmn_reply_is(r, "ok") || r->elements < 3)
        return fail(d, 404, "not_found", "no such driver");
    gw_respond_json(d->req, 200, driver_json(r->element[1], r->element[2]));
    dreq_free(d);
}

static void get_driver(dreq_t *d, cmn_redis_cb cb)
{
    cmn_rargs_t a;
    start_script(&a, d, GW_LUA_DRIVER_GET, 2);
    cmn_rargs_fmt(&a, "pk:drv:{%s}", d->id);
    cmn_rargs_fmt(&a, "pk:drv:{%s}:unpaid", d->id);
    if (send_script(d, GW_LUA_DRIVER_GET, 2, cb, &a) != 0)
        fail(d, 503, "unavailable", "Redis is unavailable");
}

static void on_plate_owner(void *data, int status, redisReply *r)
{
    dreq_t *d = data;
    if (status != 0 || r == NULL)
        return fail(d, 503, "unavailable", "Redis is unavailable");
    if (r->type != REDIS_REPLY_STRING)
        return fail(d, 404, "not_found", "no driver holds this plate");
    size_t n = strcspn(r->str, US);
    if (n == 0 || n >= sizeof d->id)
        return fail(d, 404, "not_found", "no driver holds this plate");
    memcpy(d->id, r->str, n);
    d->id[n] = '\0';
    get_driver(d, on_get);
}

/* ---- enrolment ---------------------------------------------------------------------------- */

static void on_put(void *data, int status, redisReply *r);
static void on_claims_done(dreq_t *d);

static int in_plates(const dreq_t *d, const char *plate, size_t n)
{
    for (int i = 0; i < d->nplates; i++) {
        if (strlen(d->plates[i]) == n && memcmp(d->plates[i], plate, n) == 0)
            return 1;
    }
    return 0;
}

static int in_list(const char *list, const char *plate)
{
    size_t n = strlen(plate);
    for (const char *p = list ? list : ""; *p;) {
        size_t k = strcspn(p, " ");
        if (k == n && memcmp(p, plate, n) == 0)
            return 1;
        p += k;
        while (*p == ' ')
            p++;
    }
    return 0;
}

struct claim {
    dreq_t *d;
    int index;
};

static void on_claim(void *data, int status, redisReply *r)
{
    struct claim *c = data;
    dreq_t *d = c->d;
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY) {
        d->failed = 1;
    } else if (cmn_reply_is(r, "taken") && d->taken_plate[0] == '\0') {
        const char *other = cmn_reply_str(r, 1, NULL);
        snprintf(d->taken_plate, sizeof d->taken_plate, "%s", d->plates[c->index]);
        snprintf(d->taken_by, sizeof d->taken_by, "%s", other ? other : "?");
    }
    cmn_free(c);
    if (--d->pending == 0)
        on_claims_done(d);
}

static void on_old(void *data, int status, redisReply *r)
{
    dreq_t *d = data;
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY)
        return fail(d, 503, "unavailable", "Redis is unavailable");
    d->old_plates = cmn_xstrdup("");
    if (cmn_reply_is(r, "ok") && r->elements >= 2) {
        const char *old = flat_get(r->element[1], "plates");
        cmn_free(d->old_plates);
        d->old_plates = cmn_xstrdup(old ? old : "");
    }
    /* Claim every plate, pipelined. */
    cmn_rargs_t a;
    d->pending = 0;
    for (int i = 0; i < d->nplates; i++) {
        char fold[CMN_PLATE_MAX];
        cmn_plate_fold_key(d->plates[i], 1, fold, sizeof fold);
        start_script(&a, d, GW_LUA_PLATE_CLAIM, 1);
        cmn_rargs_fmt(&a, "pk:plate:{%s}", fold);
        cmn_rargs_str(&a, d->plates[i]);
        cmn_rargs_str(&a, d->id);
        struct claim *c = cmn_xcalloc(1, sizeof *c);
        c->d = d;
        c->index = i;
        if (cmn_redis_command(d->gw->redis, on_claim, c, a.n, a.v, a.len) == 0) {
            d->pending++;
        } else {
            cmn_free(c);
            d->failed = 1;
        }
    }
    if (d->pending == 0)
        on_claims_done(d);
}

static void on_claims_done(dreq_t *d)
{
    if (d->failed || d->taken_plate[0] != '\0') {
        /* Give back the plates this attempt claimed that the driver did not hold before. */
        cmn_buf_t b;
        cmn_buf_init(&b, 4096);
        for (int i = 0; i < d->nplates; i++) {
            if (strcmp(d->plates[i], d->taken_plate) != 0 && !in_list(d->old_plates, d->plates[i]))
                cmn_buf_printf(&b, "%s ", d->plates[i]);
        }
        if (b.len > 0)
            gw_plates_mirror(d->gw, d->id, b.base, "");
        cmn_buf_dispose(&b);
        if (d->failed)
            return fail(d, 503, "unavailable", "Redis is unavailable");
        char msg[200];
        snprintf(msg, sizeof msg, "plate %s belongs to driver %s", d->taken_plate, d->taken_by);
        return fail(d, 409, "conflict", msg);
    }
    cmn_rargs_t a;
    cmn_buf_t plates;
    cmn_buf_init(&plates, 4096);
    for (int i = 0; i < d->nplates; i++)
        cmn_buf_printf(&plates, "%s%s", i ? " " : "", d->plates[i]);
    /* The set of drivers with an audit stream, for GET /v1/audit to find it: written first, so
     * an entry is never in a stream nobody lists. */
    audit_listed(d);
    start_script(&a, d, GW_LUA_DRIVER_PUT, 2);
    cmn_rargs_fmt(&a, "pk:drv:{%s}", d->id);
    cmn_rargs_fmt(&a, "pk:drv:{%s}:audit", d->id);
    cmn_rargs_str(&a, d->id);
    cmn_rargs_ref(&a, plates.base, plates.len);
    cmn_rargs_str(&a, d->provider);
    cmn_rargs_str(&a, d->payment_ref);
    if (d->has_score)
        cmn_rargs_int(&a, d->score);
    else
        cmn_rargs_str(&a, "");
    cmn_rargs_int(&a, gw_now(d->gw));
    cmn_rargs_int(&a, d->conf->cfg->credit.initial_score);
    cmn_rargs_str(&a, d->who);
    int rc = cmn_redis_command(d->gw->redis, on_put, d, a.n, a.v, a.len);
    cmn_buf_dispose(&plates);
    if (rc != 0)
        fail(d, 503, "unavailable", "Redis is unavailable");
}

static void on_put_get(void *data, int status, redisReply *r)
{
    dreq_t *d = data;
    if (status != 0 || r == NULL || !cmn_reply_is(r, "ok") || r->elements < 3)
        return fail(d, 503, "unavailable", "Redis is unavailable");
    gw_respond_json(d->req, 201, driver_json(r->element[1], r->element[2]));
    dreq_free(d);
}

static void on_put(void *data, int status, redisReply *r)
{
    dreq_t *d = data;
    if (status != 0 || r == NULL || !cmn_reply_is(r, "ok"))
        return fail(d, 503, "unavailable", "Redis is unavailable");
    const char *snap = cmn_reply_str(r, 1, NULL);
    cmn_buf_t plates, gone;
    cmn_buf_init(&plates, 4096);
    cmn_buf_init(&gone, 4096);
    for (int i = 0; i < d->nplates; i++)
        cmn_buf_printf(&plates, "%s ", d->plates[i]);
    for (const char *p = d->old_plates; *p;) {
        size_t k = strcspn(p, " ");
        if (k > 0 && !in_plates(d, p, k))
            cmn_buf_printf(&gone, "%.*s ", (int)k, p);
        p += k;
        while (*p == ' ')
            p++;
    }
    gw_plates_mirror(d->gw, d->id, plates.base, snap ? snap : "");
    if (gone.len > 0)
        gw_plates_mirror(d->gw, d->id, gone.base, "");
    cmn_buf_dispose(&plates);
    cmn_buf_dispose(&gone);
    cmn_log(CMN_LOG_INFO, "driver_enrolled", "driver %s: %d plates, provider %s", d->id,
            d->nplates, d->provider);
    /* Pipelined behind the copies: the answer reflects a finished enrolment. */
    get_driver(d, on_put_get);
}

static int parse_enrolment(dreq_t *d, const char **why)
{
    json_error_t err;
    const cmn_config_t *cfg = d->conf->cfg;
    json_t *doc = json_loadb(d->req->body, d->req->body_len, JSON_REJECT_DUPLICATES, &err);
    int rc = -1;
    if (doc == NULL || !json_is_object(doc)) {
        *why = "the body must be a JSON object";
        goto out;
    }
    json_t *v = json_object_get(doc, "id");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_string(v) || !cmn_is_ident(json_string_value(v), 64)) {
            *why = "id must use only letters, digits and _ . : - (at most 64)";
            goto out;
        }
        snprintf(d->id, sizeof d->id, "%s", json_string_value(v));
    } else {
        unsigned char rnd[8];
        char hex[17];
        if (cmn_random(rnd, sizeof rnd) != 0) {
            *why = "no randomness";
            goto out;
        }
        cmn_hex(rnd, sizeof rnd, hex);
        snprintf(d->id, sizeof d->id, "drv_%s", hex);
    }
    json_t *plates = json_object_get(doc, "plates");
    if (!json_is_array(plates) || json_array_size(plates) < 1 ||
        json_array_size(plates) > MAX_PLATES) {
        *why = "plates must be an array of 1 to 8 plates";
        goto out;
    }
    size_t i;
    json_array_foreach(plates, i, v)
    {
        cmn_plate_t p;
        if (!json_is_string(v) ||
            cmn_plate_parse(json_string_value(v), json_string_length(v), &p) != 0) {
            *why = "every plate must be a valid plate (see parkctl plate)";
            goto out;
        }
        if (in_plates(d, p.text, strlen(p.text))) {
            *why = "a plate is listed twice";
            goto out;
        }
        snprintf(d->plates[d->nplates++], CMN_PLATE_MAX, "%s", p.text);
    }
    v = json_object_get(doc, "provider");
    if (!json_is_string(v) || cmn_config_provider(cfg, json_string_value(v)) == NULL) {
        *why = "provider must be the id of a configured payment provider";
        goto out;
    }
    snprintf(d->provider, sizeof d->provider, "%s", json_string_value(v));
    v = json_object_get(doc, "payment_ref");
    if (!json_is_string(v) || json_string_length(v) < 1 || json_string_length(v) > 128) {
        *why = "payment_ref must be a string of 1 to 128 characters (the provider's customer)";
        goto out;
    }
    for (size_t k = 0; k < json_string_length(v); k++) {
        if ((unsigned char)json_string_value(v)[k] < 0x20) {
            *why = "payment_ref must be printable";
            goto out;
        }
    }
    snprintf(d->payment_ref, sizeof d->payment_ref, "%s", json_string_value(v));
    v = json_object_get(doc, "score");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > cfg->credit.max_score) {
            *why = "score must be an integer from 0 to the policy's max_score";
            goto out;
        }
        d->score = json_integer_value(v);
        d->has_score = 1;
    }
    rc = 0;
out:
    json_decref(doc);
    return rc;
}

/* ---- DELETE -------------------------------------------------------------------------------- */

static void on_del(void *data, int status, redisReply *r)
{
    dreq_t *d = data;
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY)
        return fail(d, 503, "unavailable", "Redis is unavailable");
    if (cmn_reply_is(r, "unknown"))
        return fail(d, 404, "not_found", "no such driver");
    if (cmn_reply_is(r, "owes")) {
        char msg[160];
        const char *n = cmn_reply_str(r, 1, NULL), *amt = cmn_reply_str(r, 2, NULL);
        snprintf(msg, sizeof msg, "driver %s still owes %s bills (%s); settle or waive them first",
                 d->id, n ? n : "?", amt ? amt : "?");
        return fail(d, 409, "conflict", msg);
    }
    const char *plates = cmn_reply_str(r, 1, NULL);
    if (plates != NULL)
        gw_plates_mirror(d->gw, d->id, plates, "");
    cmn_log(CMN_LOG_INFO, "driver_removed", "driver %s removed", d->id);
    cmn_httpd_respond(d->req, 204, NULL, "", 0, NULL);
    dreq_free(d);
}

/* ---- entry point --------------------------------------------------------------------------- */

static int query_plate(const char *q, size_t n, char *out, size_t outsz)
{
    /* plate=<percent-encoded UTF-8> */
    if (n < 6 || memcmp(q, "plate=", 6) != 0)
        return -1;
    size_t o = 0;
    for (size_t i = 6; i < n && q[i] != '&'; i++) {
        char c = q[i];
        if (c == '%' && i + 2 < n) {
            char hex[3] = {q[i + 1], q[i + 2], 0};
            unsigned char b;
            if (cmn_unhex(hex, 2, &b, 1) != 0)
                return -1;
            c = (char)b;
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (o + 1 >= outsz)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

static void drivers_route(gw_t *gw, cmn_httpd_req_t *req, const char *rest, size_t rest_len,
                          const gw_principal_t *who);

struct drivers_auth {
    gw_t *gw;
    cmn_httpd_req_t *req;
    const char *rest;
    size_t rest_len;
};

static void on_drivers_auth(void *data, int status, const gw_principal_t *who, const char *why)
{
    struct drivers_auth x = *(struct drivers_auth *)data;
    cmn_free(data);
    if (status == 401) {
        gw_metrics_error(&x.gw->metrics, "unauthorized");
        return gw_respond_error(x.req, 401, "unauthorized", "%s",
                                why ? why : "a valid token is required");
    }
    if (status != 0 || who == NULL) {
        gw_metrics_error(&x.gw->metrics, "unavailable");
        return gw_respond_error(x.req, 503, "unavailable", "Redis is unavailable");
    }
    if (who->role != GW_ROLE_ADMIN) {
        gw_metrics_error(&x.gw->metrics, "forbidden");
        return gw_respond_error(x.req, 403, "forbidden", "the drivers API needs an admin token");
    }
    drivers_route(x.gw, x.req, x.rest, x.rest_len, who);
}

void gw_h_drivers(gw_t *gw, cmn_httpd_req_t *req, const char *rest, size_t rest_len)
{
    struct drivers_auth *x = cmn_xcalloc(1, sizeof *x);
    x->gw = gw;
    x->req = req;
    x->rest = rest;
    x->rest_len = rest_len;
    gw_authenticate(gw, req, on_drivers_auth, x);
}

static void drivers_route(gw_t *gw, cmn_httpd_req_t *req, const char *rest, size_t rest_len,
                          const gw_principal_t *who)
{
    const char *why;
    gw_conf_t *conf = gw_conf_ref(gw);
    dreq_t *d = cmn_xcalloc(1, sizeof *d);
    d->gw = gw;
    d->conf = conf;
    d->req = req;
    gw_principal_who(who, d->who, sizeof d->who);
    if (gw->redis == NULL || !cmn_redis_ready(gw->redis))
        return fail(d, 503, "unavailable", "Redis is unavailable");

    const char *q = memchr(rest, '?', rest_len);
    size_t path_n = q ? (size_t)(q - rest) : rest_len;
    if (path_n == 0) {
        if (req->method == HTTP_POST) {
            if (parse_enrolment(d, &why) != 0)
                return fail(d, 400, "bad_request", why);
            cmn_rargs_t a;
            start_script(&a, d, GW_LUA_DRIVER_GET, 2);
            cmn_rargs_fmt(&a, "pk:drv:{%s}", d->id);
            cmn_rargs_fmt(&a, "pk:drv:{%s}:unpaid", d->id);
            if (cmn_redis_command(gw->redis, on_old, d, a.n, a.v, a.len) != 0)
                fail(d, 503, "unavailable", "Redis is unavailable");
            return;
        }
        if (req->method == HTTP_GET && q != NULL) {
            char text[128];
            cmn_plate_t p;
            if (query_plate(q + 1, rest_len - path_n - 1, text, sizeof text) != 0 ||
                cmn_plate_parse(text, strlen(text), &p) != 0)
                return fail(d, 400, "bad_request", "give ?plate=<a valid plate>");
            char fold[CMN_PLATE_MAX];
            cmn_plate_fold_key(p.text, 1, fold, sizeof fold);
            cmn_rargs_t a;
            cmn_rargs_init(&a);
            cmn_rargs_str(&a, "HGET");
            cmn_rargs_fmt(&a, "pk:plate:{%s}", fold);
            cmn_rargs_str(&a, p.text);
            if (cmn_redis_command(gw->redis, on_plate_owner, d, a.n, a.v, a.len) != 0)
                fail(d, 503, "unavailable", "Redis is unavailable");
            return;
        }
        return fail(d, 405, "method_not_allowed", "use POST, or GET with ?plate=");
    }
    /* /{id} */
    if (rest[0] != '/' || path_n - 1 >= sizeof d->id || path_n < 2)
        return fail(d, 404, "not_found", "no such driver");
    memcpy(d->id, rest + 1, path_n - 1);
    d->id[path_n - 1] = '\0';
    if (!cmn_is_ident(d->id, 64))
        return fail(d, 404, "not_found", "no such driver");
    if (req->method == HTTP_GET)
        return get_driver(d, on_get);
    if (req->method == HTTP_DELETE) {
        cmn_rargs_t a;
        audit_listed(d);
        start_script(&a, d, GW_LUA_DRIVER_DEL, 8);
        static const char *const parts[] = {"",         ":unpaid",   ":overdue", ":applied",
                                            ":history", ":defaults", ":bills",   ":audit"};
        for (int i = 0; i < 8; i++)
            cmn_rargs_fmt(&a, "pk:drv:{%s}%s", d->id, parts[i]);
        cmn_rargs_int(&a, gw_now(gw));
        cmn_rargs_str(&a, d->who);
        if (cmn_redis_command(gw->redis, on_del, d, a.n, a.v, a.len) != 0)
            fail(d, 503, "unavailable", "Redis is unavailable");
        return;
    }
    fail(d, 405, "method_not_allowed", "use GET or DELETE");
}
