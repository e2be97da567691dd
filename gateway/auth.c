#include "auth.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cmn/crypto.h"
#include "cmn/mem.h"
#include "cmn/rargs.h"
#include "gw.h"

#define CACHE_SLOTS 512
#define CACHE_TTL_MS 30000

struct cached {
    unsigned char hash[32];
    int used;
    uint64_t expires_ms;
    int found;
    gw_principal_t who;
};

/* The gateway runs one loop thread: the cache needs no lock. */
static struct cached cache[CACHE_SLOTS];

static const char *const role_names[] = {"none", "admin", "city", "operator", "driver"};

const char *gw_role_name(gw_role_t role)
{
    return (int)role >= 0 && role <= GW_ROLE_DRIVER ? role_names[role] : "none";
}

gw_role_t gw_role_parse(const char *name)
{
    for (int i = 1; i <= GW_ROLE_DRIVER; i++) {
        if (strcmp(role_names[i], name) == 0)
            return (gw_role_t)i;
    }
    return GW_ROLE_NONE;
}

void gw_auth_forget(void)
{
    memset(cache, 0, sizeof cache);
}

struct lookup {
    gw_t *gw;
    gw_auth_cb cb;
    void *data;
    unsigned char hash[32];
    uv_timer_t defer; /* failures are reported on a later turn */
    int status;
    gw_principal_t who;
    const char *why;
};

static void on_lookup_closed(uv_handle_t *h)
{
    cmn_free(h->data);
}

static void on_deferred(uv_timer_t *t)
{
    struct lookup *l = t->data;
    l->cb(l->data, l->status, l->status == 0 ? &l->who : NULL, l->why);
    uv_close((uv_handle_t *)t, on_lookup_closed);
}

static void finish_later(struct lookup *l, int status, const char *why)
{
    l->status = status;
    l->why = why;
    uv_timer_init(l->gw->loop, &l->defer);
    l->defer.data = l;
    uv_timer_start(&l->defer, on_deferred, 0, 0);
}

static struct cached *slot_of(const unsigned char hash[32])
{
    unsigned idx = ((unsigned)hash[0] << 8 | hash[1]) % CACHE_SLOTS;
    return &cache[idx];
}

static void on_token(void *data, int status, redisReply *r)
{
    struct lookup *l = data;
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY) {
        l->cb(l->data, 503, NULL, "Redis is unavailable");
        cmn_free(l);
        return;
    }
    gw_principal_t who;
    memset(&who, 0, sizeof who);
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *k = r->element[i]->str, *v = r->element[i + 1]->str;
        if (k == NULL || v == NULL)
            continue;
        if (strcmp(k, "role") == 0)
            who.role = gw_role_parse(v);
        else if (strcmp(k, "scope") == 0)
            snprintf(who.scope, sizeof who.scope, "%s", v);
        else if (strcmp(k, "name") == 0)
            snprintf(who.name, sizeof who.name, "%s", v);
    }
    struct cached *c = slot_of(l->hash);
    memcpy(c->hash, l->hash, 32);
    c->used = 1;
    c->expires_ms = uv_now(l->gw->loop) + CACHE_TTL_MS;
    c->found = who.role != GW_ROLE_NONE;
    c->who = who;
    if (!c->found)
        l->cb(l->data, 401, NULL, "unknown or revoked token");
    else
        l->cb(l->data, 0, &who, NULL);
    cmn_free(l);
}

void gw_authenticate(gw_t *gw, cmn_httpd_req_t *req, gw_auth_cb cb, void *data)
{
    struct lookup *l = cmn_xcalloc(1, sizeof *l);
    size_t len;
    const char *h = cmn_httpd_req_header(req, "Authorization", &len);
    l->gw = gw;
    l->cb = cb;
    l->data = data;
    if (h == NULL || len <= 7 || strncasecmp(h, "Bearer ", 7) != 0)
        return finish_later(l, 401, "an Authorization: Bearer token is required");
    cmn_sha256(h + 7, len - 7, l->hash);

    /* The configuration's admin token (its hash compared in constant time). */
    gw_conf_t *conf = gw_conf_ref(gw);
    const cmn_secret_t *admin = &conf->cfg->gateway.admin_token;
    int is_admin = 0;
    if (admin->len > 0) {
        unsigned char ah[32];
        cmn_sha256(admin->data, admin->len, ah);
        is_admin = cmn_secure_equal(ah, l->hash, 32);
    }
    gw_conf_unref(conf);
    if (is_admin) {
        l->who.role = GW_ROLE_ADMIN;
        snprintf(l->who.scope, sizeof l->who.scope, "*");
        snprintf(l->who.name, sizeof l->who.name, "configuration admin token");
        return finish_later(l, 0, NULL);
    }
    struct cached *c = slot_of(l->hash);
    if (c->used && uv_now(gw->loop) < c->expires_ms && cmn_secure_equal(c->hash, l->hash, 32)) {
        if (!c->found)
            return finish_later(l, 401, "unknown or revoked token");
        l->who = c->who;
        return finish_later(l, 0, NULL);
    }
    if (gw->redis == NULL || !cmn_redis_ready(gw->redis))
        return finish_later(l, 503, "Redis is unavailable");
    char hex[65];
    cmn_hex(l->hash, 32, hex);
    cmn_rargs_t a;
    cmn_rargs_init(&a);
    cmn_rargs_str(&a, "HGETALL");
    cmn_rargs_fmt(&a, "pk:tok:{%s}", hex);
    if (cmn_redis_command(gw->redis, on_token, l, a.n, a.v, a.len) != 0)
        finish_later(l, 503, "Redis is unavailable");
}

int gw_may_lot(const gw_principal_t *who, const cmn_config_t *cfg, const char *lot_id)
{
    if (who->role == GW_ROLE_ADMIN || who->role == GW_ROLE_CITY)
        return cmn_config_lot(cfg, lot_id) != NULL;
    if (who->role != GW_ROLE_OPERATOR)
        return 0;
    const cmn_cfg_lot_t *lot = cmn_config_lot(cfg, lot_id);
    return lot != NULL && lot->operator_id != NULL && strcmp(lot->operator_id, who->scope) == 0;
}

int gw_may_driver(const gw_principal_t *who, const char *driver_id)
{
    if (who->role == GW_ROLE_ADMIN || who->role == GW_ROLE_CITY)
        return 1;
    return who->role == GW_ROLE_DRIVER && strcmp(who->scope, driver_id) == 0;
}
