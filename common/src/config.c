/*
 * Loading the platform configuration (docs/config.md).
 *
 * One pass reads every section into the cmn_config_t, reporting each problem at its JSON path and
 * carrying on; a second pass checks the cross-references (operators of lots, tariffs of lots, lots
 * and lanes of devices, the default provider).  A configuration with any problem is freed and
 * refused as a whole, so a program never runs on half of one.
 */
#include "cmn/config.h"

#include <dirent.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn/buf.h"
#include "cmn/err.h"
#include "cmn/mem.h"
#include "cmn/money.h"
#include "cmn/plate.h"
#include "cmn/time.h"
#include "jcheck_int.h"

#define ID_MAX 64
#define NAME_MAX_BYTES 200
#define SECRET_MAX (64u << 10)

/* ---- small helpers ----------------------------------------------------------------------- */

static char *join_path(const char *dir, const char *rel)
{
    if (rel[0] == '/' || dir == NULL || dir[0] == '\0')
        return cmn_xstrdup(rel);
    size_t a = strlen(dir), b = strlen(rel);
    char *p = cmn_xalloc(a + b + 2);
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, rel, b + 1);
    return p;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return cmn_xstrdup(".");
    if (slash == path)
        return cmn_xstrdup("/");
    return cmn_xstrndup(path, (size_t)(slash - path));
}

/* One of `names`; returns its index, or -1 (reported) / -2 (absent, default to be used). */
static int jc_enum(jc_t *c, json_t *obj, const char *key, const char *const *names)
{
    const char *s;
    int rc = jc_str(c, obj, key, 0, 64, &s);
    if (rc == 0)
        return -2;
    if (rc < 0)
        return -1;
    for (int i = 0; names[i] != NULL; i++) {
        if (strcmp(names[i], s) == 0)
            return i;
    }
    char list[256] = "";
    size_t used = 0;
    for (int i = 0; names[i] != NULL; i++) {
        int n = snprintf(list + used, sizeof list - used, "%s\"%s\"", i ? ", " : "", names[i]);
        if (n < 0 || (size_t)n >= sizeof list - used)
            break;
        used += (size_t)n;
    }
    jc_err_at(c, key, "must be one of %s (got \"%s\")", list, s);
    return -1;
}

static void secret_dispose(cmn_secret_t *s)
{
    if (s->data != NULL)
        OPENSSL_cleanse(s->data, s->len);
    cmn_free(s->data);
    cmn_free(s->source);
    memset(s, 0, sizeof *s);
}

/* Reads a secret file into s; messages name the file, never its content. */
static int read_secret_file(jc_t *c, const char *path, cmn_secret_t *s)
{
    cmn_buf_t b;
    char chunk[4096];
    int ok = 0;
    cmn_buf_init(&b, SECRET_MAX);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        jc_err(c, "cannot read secret file %s: %s", path, strerror(errno));
        goto out;
    }
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (cmn_buf_append(&b, chunk, n) != 0) {
            jc_err(c, "secret file %s is larger than %u bytes", path, SECRET_MAX);
            goto out;
        }
    }
    /* A file written by an editor ends with a newline that is not part of the secret. */
    if (b.len > 0 && b.base[b.len - 1] == '\n')
        b.len--;
    if (b.len > 0 && b.base[b.len - 1] == '\r')
        b.len--;
    if (b.len == 0) {
        jc_err(c, "secret file %s is empty", path);
        goto out;
    }
    s->len = b.len;
    s->data = (unsigned char *)cmn_buf_take(&b, NULL);
    ok = 1;
out:
    OPENSSL_cleanse(chunk, sizeof chunk);
    if (b.base != NULL)
        OPENSSL_cleanse(b.base, b.cap);
    cmn_buf_dispose(&b);
    if (f != NULL)
        fclose(f);
    return ok;
}

/* A secret member: {"file": PATH} (relative to the configuration's folder) or {"env": NAME}. */
static int load_secret(jc_t *c, json_t *obj, const char *key, int required, const char *dir,
                       cmn_secret_t *out)
{
    static const char *const keys[] = {"file", "env", NULL};
    json_t *v = json_object_get(obj, key);
    int ok = 0;
    if (v != NULL && json_is_string(v)) {
        jc_err_at(c, key,
                  "secrets are never written in the configuration: use {\"file\": PATH} or "
                  "{\"env\": NAME}");
        return -1;
    }
    json_t *sec;
    int rc = jc_obj(c, obj, key, required, &sec);
    if (rc != 1)
        return rc;
    size_t mark = jc_push_key(c, key);
    jc_only_keys(c, sec, keys);
    const char *file = NULL, *env = NULL;
    int rf = jc_str(c, sec, "file", 0, 4096, &file);
    int re = jc_str(c, sec, "env", 0, 128, &env);
    if (rf < 0 || re < 0)
        goto out;
    if ((file != NULL) == (env != NULL)) {
        jc_err(c, "give exactly one of \"file\" and \"env\"");
        goto out;
    }
    if (file != NULL) {
        char *path = join_path(dir, file);
        if (read_secret_file(c, path, out)) {
            size_t n = strlen(path) + 6;
            out->source = cmn_xalloc(n);
            snprintf(out->source, n, "file %s", path);
            ok = 1;
        }
        cmn_free(path);
    } else {
        const char *val = getenv(env);
        if (val == NULL || val[0] == '\0') {
            jc_err(c, "environment variable %s is not set", env);
        } else if (strlen(val) > SECRET_MAX) {
            jc_err(c, "environment variable %s is longer than %u bytes", env, SECRET_MAX);
        } else {
            out->len = strlen(val);
            out->data = (unsigned char *)cmn_xstrdup(val);
            size_t n = strlen(env) + 5;
            out->source = cmn_xalloc(n);
            snprintf(out->source, n, "env %s", env);
            ok = 1;
        }
    }
out:
    jc_pop(c, mark);
    return ok ? 1 : -1;
}

static int parse_port(const char *s, int *port)
{
    if (*s == '\0' || strlen(s) > 5)
        return -1;
    long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    if (v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

/* "host:port" or "[v6]:port" into a fresh host string and a port. */
static int split_host_port(const char *s, char **host, int *port)
{
    const char *colon;
    const char *hstart = s;
    size_t hlen;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        hstart = s + 1;
        hlen = (size_t)(close - hstart);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || memchr(s, ':', (size_t)(colon - s)) != NULL)
            return -1;
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || parse_port(colon + 1, port) != 0)
        return -1;
    for (size_t i = 0; i < hlen; i++) {
        char ch = hstart[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '-' || ch == ':' || ch == '_'))
            return -1;
    }
    *host = cmn_xstrndup(hstart, hlen);
    return 0;
}

static void load_listen(jc_t *c, json_t *obj, const char *def, cmn_cfg_listen_t *out)
{
    const char *s = def;
    if (jc_str(c, obj, "listen", 0, 300, &s) < 0)
        return;
    if (split_host_port(s, &out->host, &out->port) != 0)
        jc_err_at(c, "listen", "must be HOST:PORT such as \"127.0.0.1:8080\" (got \"%s\")", s);
}

static void int_or(jc_t *c, json_t *obj, const char *key, int64_t min, int64_t max, int64_t def,
                   int64_t *out)
{
    *out = def;
    jc_int(c, obj, key, 0, min, max, out);
}

/* ---- sections ---------------------------------------------------------------------------- */

static void load_redis(jc_t *c, json_t *doc, cmn_config_t *cfg)
{
    static const char *const keys[] = {"address", "password", "connect_timeout_ms",
                                       "command_timeout_ms", NULL};
    json_t *r = NULL;
    cmn_cfg_redis_t *out = &cfg->redis;
    int rc = jc_obj(c, doc, "redis", 0, &r);
    if (rc < 0)
        return;
    json_t *own = NULL;
    if (rc == 0)
        r = own = json_object();
    size_t mark = jc_push_key(c, "redis");
    jc_only_keys(c, r, keys);
    const char *addr = "127.0.0.1:6379";
    if (jc_str(c, r, "address", 0, 300, &addr) >= 0) {
        if (strncmp(addr, "unix:", 5) == 0 && addr[5] != '\0')
            out->unix_path = join_path(cfg->dir, addr + 5);
        else if (split_host_port(addr, &out->host, &out->port) != 0 || out->port == 0)
            jc_err_at(c, "address", "must be HOST:PORT or unix:PATH (got \"%s\")", addr);
    }
    load_secret(c, r, "password", 0, cfg->dir, &out->password);
    int_or(c, r, "connect_timeout_ms", 1, 600000, 1000, &out->connect_timeout_ms);
    int_or(c, r, "command_timeout_ms", 1, 600000, 500, &out->command_timeout_ms);
    jc_pop(c, mark);
    json_decref(own);
}

/* Returns the section object (an empty one when absent, to be released with json_decref). */
static json_t *section(jc_t *c, json_t *doc, const char *key, int *ok)
{
    json_t *s = NULL;
    int rc = jc_obj(c, doc, key, 0, &s);
    *ok = rc >= 0;
    if (rc == 1)
        return json_incref(s);
    return json_object();
}

static void load_gateway(jc_t *c, json_t *doc, cmn_config_t *cfg)
{
    static const char *const keys[] = {"listen",          "max_body_bytes",     "max_header_bytes",
                                       "max_connections", "idle_timeout_ms",    "request_timeout_ms",
                                       "clock_window_s",  "idempotency_days",   "admin_token",
                                       "web_root",        NULL};
    int ok;
    json_t *g = section(c, doc, "gateway", &ok);
    cmn_cfg_gateway_t *out = &cfg->gateway;
    size_t mark = jc_push_key(c, "gateway");
    if (ok)
        jc_only_keys(c, g, keys);
    load_listen(c, g, "127.0.0.1:8080", &out->listen);
    int_or(c, g, "max_body_bytes", 256, 16 << 20, 16384, &out->max_body_bytes);
    int_or(c, g, "max_header_bytes", 1024, 1 << 20, 8192, &out->max_header_bytes);
    int_or(c, g, "max_connections", 1, 1000000, 4096, &out->max_connections);
    int_or(c, g, "idle_timeout_ms", 100, 3600000, 60000, &out->idle_timeout_ms);
    int_or(c, g, "request_timeout_ms", 100, 600000, 10000, &out->request_timeout_ms);
    int_or(c, g, "clock_window_s", 1, 86400, 300, &out->clock_window_s);
    int_or(c, g, "idempotency_days", 1, 3650, 7, &out->idempotency_days);
    if (load_secret(c, g, "admin_token", 0, cfg->dir, &out->admin_token) == 1 &&
        out->admin_token.len < 16)
        jc_err_at(c, "admin_token", "must be at least 16 bytes long (from %s)",
                  out->admin_token.source);
    /* The dashboard's folder (docs/dashboard.md): a path; whether it exists is the gateway's
     * concern at start, not every program's. */
    const char *web = NULL;
    if (jc_str(c, g, "web_root", 0, 4096, &web) == 1)
        out->web_root = join_path(cfg->dir, web);
    jc_pop(c, mark);
    json_decref(g);
}

static void load_billing(jc_t *c, json_t *doc, cmn_config_t *cfg)
{
    static const char *const keys[] = {"listen", "max_in_flight", "default_provider", NULL};
    int ok;
    json_t *b = section(c, doc, "billing", &ok);
    const char *s;
    size_t mark = jc_push_key(c, "billing");
    if (ok)
        jc_only_keys(c, b, keys);
    load_listen(c, b, "127.0.0.1:8081", &cfg->billing.listen);
    int_or(c, b, "max_in_flight", 1, 10000, 32, &cfg->billing.max_in_flight);
    if (jc_ident(c, b, "default_provider", 0, ID_MAX, &s) == 1)
        cfg->billing.default_provider = cmn_xstrdup(s);
    jc_pop(c, mark);
    json_decref(b);
}

static int is_http_url(const char *s)
{
    return strncmp(s, "http://", 7) == 0 ? s[7] != '\0'
                                         : strncmp(s, "https://", 8) == 0 && s[8] != '\0';
}

static void load_barrier(jc_t *c, json_t *cam, cmn_config_t *cfg, cmn_cfg_barrier_t *b)
{
    static const char *const keys[] = {"kind", "url", "channel", "username", "password",
                                       "timeout_ms", NULL};
    static const char *const kinds[] = {"none", "webhook", "hikvision", NULL};
    json_t *o;
    b->timeout_ms = 2000;
    b->channel = 1;
    if (jc_obj(c, cam, "barrier", 0, &o) != 1)
        return;
    size_t mark = jc_push_key(c, "barrier");
    jc_only_keys(c, o, keys);
    int k = jc_enum(c, o, "kind", kinds);
    if (k == -2)
        jc_err_at(c, "kind", "required field is missing");
    if (k >= 0)
        b->kind = (cmn_barrier_kind_t)k;
    const char *s;
    int has_url = jc_str(c, o, "url", 0, 2048, &s);
    if (has_url == 1) {
        if (!is_http_url(s))
            jc_err_at(c, "url", "must be an http:// or https:// URL");
        else
            b->url = cmn_xstrdup(s);
    }
    if (b->kind != CMN_BARRIER_NONE && has_url == 0)
        jc_err_at(c, "url", "required for a %s barrier", kinds[b->kind]);
    int64_t v;
    if (jc_int(c, o, "channel", 0, 1, 64, &v) == 1)
        b->channel = (int)v;
    if (jc_str(c, o, "username", 0, 64, &s) == 1)
        b->username = cmn_xstrdup(s);
    load_secret(c, o, "password", 0, cfg->dir, &b->password);
    int_or(c, o, "timeout_ms", 10, 60000, 2000, &b->timeout_ms);
    jc_pop(c, mark);
}

static void load_cameras(jc_t *c, json_t *l, cmn_config_t *cfg)
{
    static const char *const keys[] = {
        "id",       "lot",             "lane",       "format", "device", "token",
        "min_confidence", "hold_ms", "dedupe_window_s", "decision_timeout_ms", "fallback",
        "barrier",  NULL};
    static const char *const formats[] = {"auto", "openalpr", "platerecognizer", "hikvision",
                                          NULL};
    static const char *const fallbacks[] = {"hold", "open", NULL};
    json_t *arr;
    if (jc_arr(c, l, "cameras", 0, &arr) != 1)
        return;
    size_t n = json_array_size(arr);
    size_t mark = jc_push_key(c, "cameras");
    cfg->lpr.cameras = cmn_xcalloc(n ? n : 1, sizeof *cfg->lpr.cameras);
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(arr, i);
        size_t m2 = jc_push_index(c, i);
        const char *s;
        int v;
        if (!json_is_object(o)) {
            jc_err(c, "must be an object");
            jc_pop(c, m2);
            continue;
        }
        jc_only_keys(c, o, keys);
        cmn_cfg_camera_t *cam = &cfg->lpr.cameras[cfg->lpr.ncameras++];
        cam->lot_index = -1;
        cam->device_index = -1;
        if (jc_ident(c, o, "id", 1, ID_MAX, &s) == 1) {
            for (size_t j = 0; j + 1 < cfg->lpr.ncameras; j++) {
                if (cfg->lpr.cameras[j].id && strcmp(cfg->lpr.cameras[j].id, s) == 0)
                    jc_err_at(c, "id", "duplicate camera id \"%s\"", s);
            }
            cam->id = cmn_xstrdup(s);
        }
        if (jc_ident(c, o, "lot", 1, ID_MAX, &s) == 1)
            cam->lot_id = cmn_xstrdup(s);
        if (jc_ident(c, o, "lane", 1, ID_MAX, &s) == 1)
            cam->lane_id = cmn_xstrdup(s);
        if (jc_ident(c, o, "device", 1, ID_MAX, &s) == 1)
            cam->device_id = cmn_xstrdup(s);
        if ((v = jc_enum(c, o, "format", formats)) >= 0)
            cam->format = (cmn_camera_format_t)v;
        if ((v = jc_enum(c, o, "fallback", fallbacks)) >= 0)
            cam->fallback = (cmn_fallback_t)v;
        if (load_secret(c, o, "token", 0, cfg->dir, &cam->token) == 1 && cam->token.len < 16)
            jc_err_at(c, "token", "must be at least 16 bytes long (from %s)", cam->token.source);
        /* Confidence in per mille keeps the configuration in integers (0.85 is 850). */
        int_or(c, o, "min_confidence", 0, 1000, 800, &cam->min_confidence);
        int_or(c, o, "hold_ms", 0, 1500, 800, &cam->hold_ms);
        int_or(c, o, "dedupe_window_s", 0, 3600, 10, &cam->dedupe_window_s);
        int_or(c, o, "decision_timeout_ms", 50, 60000, 1000, &cam->decision_timeout_ms);
        load_barrier(c, o, cfg, &cam->barrier);
        jc_pop(c, m2);
    }
    jc_pop(c, mark);
}

static void load_lpr(jc_t *c, json_t *doc, cmn_config_t *cfg)
{
    static const char *const keys[] = {"listen",           "spool_dir",          "gateway_url",
                                       "forward_timeout_ms", "command_poll_ms", "command_max_age_s",
                                       "cameras",          NULL};
    int ok;
    json_t *l = section(c, doc, "lpr_bridge", &ok);
    const char *s;
    size_t mark = jc_push_key(c, "lpr_bridge");
    if (ok)
        jc_only_keys(c, l, keys);
    load_listen(c, l, "127.0.0.1:8090", &cfg->lpr.listen);
    s = "/var/lib/park/lpr-spool";
    if (jc_str(c, l, "spool_dir", 0, 4096, &s) >= 0)
        cfg->lpr.spool_dir = join_path(cfg->dir, s);
    s = "http://127.0.0.1:8080";
    if (jc_str(c, l, "gateway_url", 0, 2048, &s) >= 0) {
        if (!is_http_url(s))
            jc_err_at(c, "gateway_url", "must be an http:// or https:// URL (got \"%s\")", s);
        else
            cfg->lpr.gateway_url = cmn_xstrdup(s);
    }
    int_or(c, l, "forward_timeout_ms", 100, 600000, 10000, &cfg->lpr.forward_timeout_ms);
    int_or(c, l, "command_poll_ms", 0, 60000, 1000, &cfg->lpr.command_poll_ms);
    int_or(c, l, "command_max_age_s", 1, 3600, 30, &cfg->lpr.command_max_age_s);
    load_cameras(c, l, cfg);
    jc_pop(c, mark);
    json_decref(l);
}

static int64_t *load_int_list(jc_t *c, json_t *obj, const char *key, int64_t min, int64_t max,
                              const int64_t *def, size_t ndef, size_t *n)
{
    json_t *arr;
    int rc = jc_arr(c, obj, key, 0, &arr);
    if (rc <= 0) {
        int64_t *v = cmn_xcalloc(ndef ? ndef : 1, sizeof *v);
        if (ndef)
            memcpy(v, def, ndef * sizeof *v);
        *n = rc == 0 ? ndef : 0;
        return v;
    }
    size_t len = json_array_size(arr);
    int64_t *v = cmn_xcalloc(len ? len : 1, sizeof *v);
    size_t mark = jc_push_key(c, key);
    for (size_t i = 0; i < len; i++) {
        json_t *e = json_array_get(arr, i);
        size_t m2 = jc_push_index(c, i);
        if (!json_is_integer(e) || json_integer_value(e) < min || json_integer_value(e) > max)
            jc_err(c, "must be an integer from %lld to %lld", (long long)min, (long long)max);
        else
            v[i] = json_integer_value(e);
        if (i > 0 && v[i] <= v[i - 1] && v[i] != 0)
            jc_err(c, "must be larger than the value before it");
        jc_pop(c, m2);
    }
    jc_pop(c, mark);
    *n = len;
    return v;
}

static void load_credit(jc_t *c, json_t *doc, cmn_config_t *cfg)
{
    static const char *const keys[] = {
        "initial_score",     "min_score",       "max_score",          "max_unpaid_bills",
        "max_unpaid_amount", "max_fee",         "retry_minutes",      "grace_hours",
        "default_after_days", "score_paid_on_time", "score_paid_late", "score_default",
        "first_default_free_months", "suspend_when_overdue", "reminder_hours",
        "reminder_webhook", NULL};
    static const int64_t retry_def[] = {5, 30, 120, 720, 1440};
    static const int64_t remind_def[] = {24, 48};
    int ok;
    json_t *p = section(c, doc, "credit_policy", &ok);
    cmn_cfg_credit_t *out = &cfg->credit;
    size_t mark = jc_push_key(c, "credit_policy");
    if (ok)
        jc_only_keys(c, p, keys);
    int_or(c, p, "max_score", 1, 100000, 1000, &out->max_score);
    int_or(c, p, "initial_score", 0, 100000, 700, &out->initial_score);
    int_or(c, p, "min_score", 0, 100000, 600, &out->min_score);
    if (out->min_score > out->max_score)
        jc_err_at(c, "min_score", "must not exceed max_score (%lld)", (long long)out->max_score);
    if (out->initial_score > out->max_score)
        jc_err_at(c, "initial_score", "must not exceed max_score (%lld)",
                  (long long)out->max_score);
    int_or(c, p, "max_unpaid_bills", 0, 1000, 3, &out->max_unpaid_bills);
    int_or(c, p, "max_unpaid_amount", 0, CMN_TARIFF_MAX_CAP, 30000, &out->max_unpaid_amount);
    int_or(c, p, "max_fee", 0, CMN_TARIFF_MAX_CAP, 20000, &out->max_fee);
    out->retry_minutes =
        load_int_list(c, p, "retry_minutes", 1, 525600, retry_def, 5, &out->nretry);
    int_or(c, p, "grace_hours", 1, 8760, 72, &out->grace_hours);
    int_or(c, p, "default_after_days", 1, 3650, 30, &out->default_after_days);
    if (out->default_after_days * 24 <= out->grace_hours)
        jc_err_at(c, "default_after_days", "must be later than grace_hours (%lld h)",
                  (long long)out->grace_hours);
    int_or(c, p, "score_paid_on_time", 0, 1000, 1, &out->score_paid_on_time);
    int_or(c, p, "score_paid_late", -10000, 0, -10, &out->score_paid_late);
    int_or(c, p, "score_default", -100000, 0, -100, &out->score_default);
    int_or(c, p, "first_default_free_months", 0, 120, 12, &out->first_default_free_months);
    out->suspend_when_overdue = 1;
    jc_bool(c, p, "suspend_when_overdue", 0, &out->suspend_when_overdue);
    out->reminder_hours =
        load_int_list(c, p, "reminder_hours", 1, 87600, remind_def, 2, &out->nreminder);
    const char *s;
    if (jc_str(c, p, "reminder_webhook", 0, 2048, &s) == 1) {
        if (!is_http_url(s))
            jc_err_at(c, "reminder_webhook", "must be an http:// or https:// URL");
        else
            out->reminder_webhook = cmn_xstrdup(s);
    }
    jc_pop(c, mark);
    json_decref(p);
}

static void load_operators(jc_t *c, json_t *doc, cmn_config_t *cfg)
{
    static const char *const keys[] = {"id", "name", NULL};
    json_t *arr;
    if (jc_arr(c, doc, "operators", 1, &arr) != 1)
        return;
    size_t n = json_array_size(arr);
    size_t mark = jc_push_key(c, "operators");
    if (n == 0)
        jc_err(c, "must list at least one operator");
    cfg->operators = cmn_xcalloc(n ? n : 1, sizeof *cfg->operators);
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(arr, i);
        size_t m2 = jc_push_index(c, i);
        const char *s;
        if (!json_is_object(o)) {
            jc_err(c, "must be an object");
        } else {
            cmn_cfg_operator_t *op = &cfg->operators[cfg->noperators++];
            jc_only_keys(c, o, keys);
            if (jc_ident(c, o, "id", 1, ID_MAX, &s) == 1) {
                for (size_t j = 0; j + 1 < cfg->noperators; j++) {
                    if (cfg->operators[j].id && strcmp(cfg->operators[j].id, s) == 0)
                        jc_err_at(c, "id", "duplicate operator id \"%s\"", s);
                }
                op->id = cmn_xstrdup(s);
            }
            if (jc_str(c, o, "name", 1, NAME_MAX_BYTES, &s) == 1)
                op->name = cmn_xstrdup(s);
        }
        jc_pop(c, m2);
    }
    jc_pop(c, mark);
}

/* A plate of a list: must be a valid plate; stored normalised. */
static char *load_plate_value(jc_t *c, json_t *v)
{
    const char *s;
    cmn_plate_t p;
    if (jc_value_str(c, v, 128, &s) != 1)
        return NULL;
    int rc = cmn_plate_parse(s, strlen(s), &p);
    if (rc != 0) {
        jc_err(c, "invalid plate \"%s\": %s", s, p.reason ? p.reason : cmn_strerror(rc));
        return NULL;
    }
    return cmn_xstrdup(p.text);
}

static char **load_plate_list(jc_t *c, json_t *obj, const char *key, size_t *n)
{
    json_t *arr;
    *n = 0;
    if (jc_arr(c, obj, key, 0, &arr) != 1)
        return NULL;
    size_t len = json_array_size(arr);
    char **v = cmn_xcalloc(len ? len : 1, sizeof *v);
    size_t mark = jc_push_key(c, key);
    for (size_t i = 0; i < len; i++) {
        size_t m2 = jc_push_index(c, i);
        char *plate = load_plate_value(c, json_array_get(arr, i));
        if (plate != NULL) {
            for (size_t j = 0; j < *n; j++) {
                if (strcmp(v[j], plate) == 0) {
                    jc_err(c, "plate %s is listed twice", plate);
                    break;
                }
            }
            v[(*n)++] = plate;
        }
        jc_pop(c, m2);
    }
    jc_pop(c, mark);
    return v;
}

static void load_policy(jc_t *c, json_t *lot, cmn_cfg_exit_policy_t *p)
{
    static const char *const keys[] = {"leave_first", "no_entry_record", "no_entry_fee",
                                       "stale_entry", "match",           "blocked",
                                       NULL};
    static const char *const no_entry[] = {"hold", "charge", NULL};
    static const char *const stale[] = {"close_free", "close_charged", NULL};
    static const char *const match[] = {"exact", "candidates", "fuzzy", NULL};
    static const char *const blocked[] = {"hold_at_entry", "pay_on_site", NULL};
    json_t *own = NULL, *o;
    p->leave_first = 1;
    p->no_entry = CMN_NO_ENTRY_HOLD;
    p->stale_entry = CMN_STALE_CLOSE_CHARGED;
    p->match = CMN_MATCH_FUZZY;
    p->blocked = CMN_BLOCKED_HOLD_ENTRY;
    int rc = jc_obj(c, lot, "exit_policy", 0, &o);
    if (rc < 0)
        return;
    if (rc == 0)
        o = own = json_object();
    size_t mark = jc_push_key(c, "exit_policy");
    jc_only_keys(c, o, keys);
    jc_bool(c, o, "leave_first", 0, &p->leave_first);
    int v = jc_enum(c, o, "no_entry_record", no_entry);
    if (v >= 0)
        p->no_entry = (cmn_no_entry_t)v;
    int has_fee = jc_int(c, o, "no_entry_fee", 0, 0, CMN_TARIFF_MAX_CAP, &p->no_entry_fee);
    if (p->no_entry == CMN_NO_ENTRY_CHARGE && has_fee == 0)
        jc_err_at(c, "no_entry_fee", "required when no_entry_record is \"charge\"");
    if ((v = jc_enum(c, o, "stale_entry", stale)) >= 0)
        p->stale_entry = (cmn_stale_t)v;
    if ((v = jc_enum(c, o, "match", match)) >= 0)
        p->match = (cmn_match_level_t)v;
    if ((v = jc_enum(c, o, "blocked", blocked)) >= 0)
        p->blocked = (cmn_blocked_t)v;
    jc_pop(c, mark);
    json_decref(own);
}

static void load_lanes(jc_t *c, json_t *lot, cmn_cfg_lot_t *l)
{
    static const char *const keys[] = {"id", "direction", NULL};
    static const char *const dirs[] = {"entry", "exit", NULL};
    json_t *arr;
    if (jc_arr(c, lot, "lanes", 1, &arr) != 1)
        return;
    size_t n = json_array_size(arr);
    size_t mark = jc_push_key(c, "lanes");
    if (n == 0)
        jc_err(c, "must list at least one lane");
    l->lanes = cmn_xcalloc(n ? n : 1, sizeof *l->lanes);
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(arr, i);
        size_t m2 = jc_push_index(c, i);
        const char *s;
        if (!json_is_object(o)) {
            jc_err(c, "must be an object");
            jc_pop(c, m2);
            continue;
        }
        jc_only_keys(c, o, keys);
        cmn_cfg_lane_t *lane = &l->lanes[l->nlanes++];
        if (jc_ident(c, o, "id", 1, ID_MAX, &s) == 1) {
            for (size_t j = 0; j + 1 < l->nlanes; j++) {
                if (l->lanes[j].id && strcmp(l->lanes[j].id, s) == 0)
                    jc_err_at(c, "id", "duplicate lane id \"%s\" in this lot", s);
            }
            lane->id = cmn_xstrdup(s);
        }
        int d = jc_enum(c, o, "direction", dirs);
        if (d == -2)
            jc_err_at(c, "direction", "required field is missing");
        else if (d >= 0)
            lane->direction = (cmn_lane_dir_t)d;
        jc_pop(c, m2);
    }
    jc_pop(c, mark);
}

static int date_member(jc_t *c, json_t *o, const char *key, int64_t *day)
{
    const char *s;
    if (jc_str(c, o, key, 1, 10, &s) != 1)
        return 0;
    if (cmn_date_parse(s, strlen(s), day) != 0) {
        jc_err_at(c, key, "must be a date YYYY-MM-DD (got \"%s\")", s);
        return 0;
    }
    return 1;
}

static void load_passes(jc_t *c, json_t *lot, cmn_cfg_lot_t *l)
{
    static const char *const keys[] = {"plate", "from", "to", "holder", NULL};
    json_t *arr;
    if (jc_arr(c, lot, "passes", 0, &arr) != 1)
        return;
    size_t n = json_array_size(arr);
    size_t mark = jc_push_key(c, "passes");
    l->passes = cmn_xcalloc(n ? n : 1, sizeof *l->passes);
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(arr, i);
        size_t m2 = jc_push_index(c, i);
        const char *s;
        if (!json_is_object(o)) {
            jc_err(c, "must be an object");
            jc_pop(c, m2);
            continue;
        }
        jc_only_keys(c, o, keys);
        cmn_cfg_pass_t *p = &l->passes[l->npasses++];
        json_t *pv = json_object_get(o, "plate");
        if (pv == NULL) {
            jc_err_at(c, "plate", "required field is missing");
        } else {
            size_t m3 = jc_push_key(c, "plate");
            p->plate = load_plate_value(c, pv);
            jc_pop(c, m3);
        }
        int ok = date_member(c, o, "from", &p->from_day);
        ok &= date_member(c, o, "to", &p->to_day);
        if (ok && p->to_day < p->from_day)
            jc_err_at(c, "to", "must not be before \"from\"");
        jc_str(c, o, "holder", 0, NAME_MAX_BYTES, &s);
        jc_pop(c, m2);
    }
    jc_pop(c, mark);
}

static void load_exempt(jc_t *c, json_t *lot, cmn_cfg_lot_t *l)
{
    static const char *const keys[] = {"plates", "kinds", NULL};
    json_t *o, *kinds;
    if (jc_obj(c, lot, "exempt", 0, &o) != 1)
        return;
    size_t mark = jc_push_key(c, "exempt");
    jc_only_keys(c, o, keys);
    l->exempt = load_plate_list(c, o, "plates", &l->nexempt);
    if (jc_arr(c, o, "kinds", 0, &kinds) == 1) {
        size_t m2 = jc_push_key(c, "kinds");
        for (size_t i = 0; i < json_array_size(kinds); i++) {
            size_t m3 = jc_push_index(c, i);
            const char *s;
            if (jc_value_str(c, json_array_get(kinds, i), 32, &s) == 1) {
                int found = 0;
                for (int k = CMN_PLATE_ORDINARY; k <= CMN_PLATE_OTHER; k++) {
                    if (strcmp(cmn_plate_kind_name((cmn_plate_kind_t)k), s) == 0) {
                        l->exempt_kinds |= 1u << k;
                        found = 1;
                    }
                }
                if (!found)
                    jc_err(c, "unknown plate kind \"%s\" (police, embassy, consulate, …)", s);
            }
            jc_pop(c, m3);
        }
        jc_pop(c, m2);
    }
    jc_pop(c, mark);
}

static void load_lots(jc_t *c, json_t *doc, cmn_config_t *cfg)
{
    static const char *const keys[] = {"id",      "name",    "operator",   "district",
                                       "capacity", "tariff",  "exit_policy", "lanes",
                                       "passes",  "allow_list", "exempt",  "blocked",
                                       NULL};
    json_t *arr;
    if (jc_arr(c, doc, "lots", 1, &arr) != 1)
        return;
    size_t n = json_array_size(arr);
    size_t mark = jc_push_key(c, "lots");
    if (n == 0)
        jc_err(c, "must list at least one lot");
    cfg->lots = cmn_xcalloc(n ? n : 1, sizeof *cfg->lots);
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(arr, i);
        size_t m2 = jc_push_index(c, i);
        const char *s;
        if (!json_is_object(o)) {
            jc_err(c, "must be an object");
            jc_pop(c, m2);
            continue;
        }
        jc_only_keys(c, o, keys);
        cmn_cfg_lot_t *l = &cfg->lots[cfg->nlots++];
        l->operator_index = -1;
        if (jc_ident(c, o, "id", 1, ID_MAX, &s) == 1) {
            for (size_t j = 0; j + 1 < cfg->nlots; j++) {
                if (cfg->lots[j].id && strcmp(cfg->lots[j].id, s) == 0)
                    jc_err_at(c, "id", "duplicate lot id \"%s\"", s);
            }
            l->id = cmn_xstrdup(s);
        }
        if (jc_str(c, o, "name", 1, NAME_MAX_BYTES, &s) == 1)
            l->name = cmn_xstrdup(s);
        if (jc_str(c, o, "district", 1, NAME_MAX_BYTES, &s) == 1)
            l->district = cmn_xstrdup(s);
        if (jc_ident(c, o, "operator", 1, ID_MAX, &s) == 1)
            l->operator_id = cmn_xstrdup(s);
        if (jc_ident(c, o, "tariff", 1, ID_MAX, &s) == 1)
            l->tariff_id = cmn_xstrdup(s);
        jc_int(c, o, "capacity", 1, 1, 1000000, &l->capacity);
        load_policy(c, o, &l->policy);
        load_lanes(c, o, l);
        load_passes(c, o, l);
        l->allow = load_plate_list(c, o, "allow_list", &l->nallow);
        load_exempt(c, o, l);
        l->blocked = load_plate_list(c, o, "blocked", &l->nblocked);
        jc_pop(c, m2);
    }
    jc_pop(c, mark);
}

static void load_devices(jc_t *c, json_t *doc, cmn_config_t *cfg)
{
    static const char *const keys[] = {"id", "lot", "lanes", "key", NULL};
    json_t *arr;
    if (jc_arr(c, doc, "devices", 1, &arr) != 1)
        return;
    size_t n = json_array_size(arr);
    size_t mark = jc_push_key(c, "devices");
    cfg->devices = cmn_xcalloc(n ? n : 1, sizeof *cfg->devices);
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(arr, i), *lanes;
        size_t m2 = jc_push_index(c, i);
        const char *s;
        if (!json_is_object(o)) {
            jc_err(c, "must be an object");
            jc_pop(c, m2);
            continue;
        }
        jc_only_keys(c, o, keys);
        cmn_cfg_device_t *d = &cfg->devices[cfg->ndevices++];
        d->lot_index = -1;
        if (jc_ident(c, o, "id", 1, ID_MAX, &s) == 1) {
            for (size_t j = 0; j + 1 < cfg->ndevices; j++) {
                if (cfg->devices[j].id && strcmp(cfg->devices[j].id, s) == 0)
                    jc_err_at(c, "id", "duplicate device id \"%s\"", s);
            }
            d->id = cmn_xstrdup(s);
        }
        if (jc_ident(c, o, "lot", 1, ID_MAX, &s) == 1)
            d->lot_id = cmn_xstrdup(s);
        if (jc_arr(c, o, "lanes", 1, &lanes) == 1) {
            size_t m3 = jc_push_key(c, "lanes");
            size_t nl = json_array_size(lanes);
            if (nl == 0)
                jc_err(c, "must list at least one lane");
            d->lanes = cmn_xcalloc(nl ? nl : 1, sizeof *d->lanes);
            for (size_t k = 0; k < nl; k++) {
                size_t m4 = jc_push_index(c, k);
                if (jc_value_ident(c, json_array_get(lanes, k), ID_MAX, &s) == 1)
                    d->lanes[d->nlanes++] = cmn_xstrdup(s);
                jc_pop(c, m4);
            }
            jc_pop(c, m3);
        }
        if (load_secret(c, o, "key", 1, cfg->dir, &d->key) == 1 && d->key.len < 16)
            jc_err_at(c, "key", "an HMAC key must be at least 16 bytes long (from %s)",
                      d->key.source);
        else if (d->key.len > 0)
            d->mac = cmn_hmac_key_new(d->key.data, d->key.len);
        jc_pop(c, m2);
    }
    jc_pop(c, mark);
}

static void load_providers(jc_t *c, json_t *doc, cmn_config_t *cfg)
{
    static const char *const stripe_keys[] = {"id",         "kind",           "base_url",
                                              "currency",   "connect_timeout_ms", "timeout_ms",
                                              "secret_key", "webhook_secret", NULL};
    static const char *const wechat_keys[] = {
        "id",          "kind",        "base_url",  "currency",        "connect_timeout_ms",
        "timeout_ms",  "mchid",       "appid",     "serial_no",       "notify_url",
        "private_key", "platform_public_key", "platform_serial", "apiv3_key", NULL};
    static const char *const kinds[] = {"stripe", "wechatpay", NULL};
    json_t *arr;
    if (jc_arr(c, doc, "providers", 0, &arr) != 1)
        return;
    size_t n = json_array_size(arr);
    size_t mark = jc_push_key(c, "providers");
    cfg->providers = cmn_xcalloc(n ? n : 1, sizeof *cfg->providers);
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(arr, i);
        size_t m2 = jc_push_index(c, i);
        const char *s;
        int digits;
        if (!json_is_object(o)) {
            jc_err(c, "must be an object");
            jc_pop(c, m2);
            continue;
        }
        cmn_cfg_provider_t *p = &cfg->providers[cfg->nproviders++];
        if (jc_ident(c, o, "id", 1, ID_MAX, &s) == 1) {
            for (size_t j = 0; j + 1 < cfg->nproviders; j++) {
                if (cfg->providers[j].id && strcmp(cfg->providers[j].id, s) == 0)
                    jc_err_at(c, "id", "duplicate provider id \"%s\"", s);
            }
            p->id = cmn_xstrdup(s);
        }
        int kind = jc_enum(c, o, "kind", kinds);
        if (kind == -2)
            jc_err_at(c, "kind", "required field is missing");
        if (kind < 0) {
            jc_pop(c, m2);
            continue;
        }
        p->kind = (cmn_provider_kind_t)kind;
        jc_only_keys(c, o, kind == CMN_PROVIDER_STRIPE ? stripe_keys : wechat_keys);
        if (jc_str(c, o, "base_url", 1, 2048, &s) == 1) {
            if (!is_http_url(s))
                jc_err_at(c, "base_url", "must be an http:// or https:// URL (got \"%s\")", s);
            else
                p->base_url = cmn_xstrdup(s);
        }
        s = "CNY";
        if (jc_str(c, o, "currency", 0, 3, &s) >= 0) {
            if (cmn_currency_check(s, &digits) != 0)
                jc_err_at(c, "currency", "must be an ISO 4217 code such as \"CNY\" (got \"%s\")", s);
            else
                p->currency = cmn_xstrdup(s);
        }
        int_or(c, o, "connect_timeout_ms", 1, 60000, 2000, &p->connect_timeout_ms);
        int_or(c, o, "timeout_ms", 1, 600000, 10000, &p->timeout_ms);
        if (p->kind == CMN_PROVIDER_STRIPE) {
            load_secret(c, o, "secret_key", 1, cfg->dir, &p->secret_key);
            load_secret(c, o, "webhook_secret", 0, cfg->dir, &p->webhook_secret);
        } else {
            if (jc_str(c, o, "mchid", 1, 32, &s) == 1)
                p->mchid = cmn_xstrdup(s);
            if (jc_str(c, o, "appid", 1, 32, &s) == 1)
                p->appid = cmn_xstrdup(s);
            if (jc_str(c, o, "serial_no", 1, 64, &s) == 1)
                p->serial_no = cmn_xstrdup(s);
            if (jc_str(c, o, "platform_serial", 1, 64, &s) == 1)
                p->platform_serial = cmn_xstrdup(s);
            if (jc_str(c, o, "notify_url", 1, 2048, &s) == 1) {
                if (!is_http_url(s))
                    jc_err_at(c, "notify_url", "must be an http:// or https:// URL");
                else
                    p->notify_url = cmn_xstrdup(s);
            }
            load_secret(c, o, "private_key", 1, cfg->dir, &p->private_key);
            load_secret(c, o, "platform_public_key", 1, cfg->dir, &p->platform_public_key);
            if (load_secret(c, o, "apiv3_key", 1, cfg->dir, &p->apiv3_key) == 1 &&
                p->apiv3_key.len != 32)
                jc_err_at(c, "apiv3_key", "must be exactly 32 bytes (from %s)",
                          p->apiv3_key.source);
        }
        jc_pop(c, m2);
    }
    jc_pop(c, mark);
}

static int ends_with_json(const char *name)
{
    size_t n = strlen(name);
    return n > 5 && strcmp(name + n - 5, ".json") == 0 && name[0] != '.';
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void load_tariffs(jc_t *c, json_t *doc, cmn_config_t *cfg)
{
    const char *rel = "tariffs";
    if (jc_str(c, doc, "tariff_dir", 0, 4096, &rel) < 0)
        return;
    char *dir = join_path(cfg->dir, rel);
    DIR *d = opendir(dir);
    if (d == NULL) {
        jc_err_at(c, "tariff_dir", "cannot open folder %s: %s", dir, strerror(errno));
        cmn_free(dir);
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!ends_with_json(e->d_name))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            names = cmn_xrealloc(names, cap * sizeof *names);
        }
        names[n++] = cmn_xstrdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_names);
    if (n == 0)
        jc_err_at(c, "tariff_dir", "folder %s holds no tariff (*.json) file", dir);
    cfg->tariffs = cmn_xcalloc(n ? n : 1, sizeof *cfg->tariffs);
    for (size_t i = 0; i < n; i++) {
        char *path = join_path(dir, names[i]);
        cmn_tariff_t *t;
        if (cmn_tariff_load_file(path, &t, c->diag) != 0) {
            c->errors++;
        } else {
            for (size_t j = 0; j < cfg->ntariffs; j++) {
                if (strcmp(cmn_tariff_id(cfg->tariffs[j]), cmn_tariff_id(t)) == 0) {
                    cmn_diag_add(c->diag, "%s: $.id: tariff id \"%s\" is also used by another file of %s",
                                 path, cmn_tariff_id(t), dir);
                    c->errors++;
                }
            }
            cfg->tariffs[cfg->ntariffs++] = t;
        }
        cmn_free(path);
        cmn_free(names[i]);
    }
    cmn_free(names);
    cmn_free(dir);
}

/* ---- cross-references -------------------------------------------------------------------- */

static void cross_check(jc_t *c, cmn_config_t *cfg)
{
    for (size_t i = 0; i < cfg->nlots; i++) {
        cmn_cfg_lot_t *l = &cfg->lots[i];
        size_t mark = jc_push_key(c, "lots");
        jc_push_index(c, i);
        if (l->operator_id != NULL) {
            for (size_t j = 0; j < cfg->noperators; j++) {
                if (cfg->operators[j].id && strcmp(cfg->operators[j].id, l->operator_id) == 0)
                    l->operator_index = (int)j;
            }
            if (l->operator_index < 0)
                jc_err_at(c, "operator", "no operator has the id \"%s\"", l->operator_id);
        }
        if (l->tariff_id != NULL) {
            l->tariff = cmn_config_tariff(cfg, l->tariff_id);
            if (l->tariff == NULL)
                jc_err_at(c, "tariff", "no tariff file has the id \"%s\"", l->tariff_id);
        }
        jc_pop(c, mark);
    }
    for (size_t i = 0; i < cfg->ndevices; i++) {
        cmn_cfg_device_t *d = &cfg->devices[i];
        size_t mark = jc_push_key(c, "devices");
        jc_push_index(c, i);
        const cmn_cfg_lot_t *lot = d->lot_id ? cmn_config_lot(cfg, d->lot_id) : NULL;
        if (d->lot_id != NULL && lot == NULL)
            jc_err_at(c, "lot", "no lot has the id \"%s\"", d->lot_id);
        if (lot != NULL) {
            d->lot_index = (int)(lot - cfg->lots);
            for (size_t k = 0; k < d->nlanes; k++) {
                if (cmn_config_lane(lot, d->lanes[k]) == NULL) {
                    char key[32];
                    snprintf(key, sizeof key, "lanes[%zu]", k);
                    jc_err_at(c, key, "lot \"%s\" has no lane \"%s\"", lot->id, d->lanes[k]);
                }
            }
        }
        jc_pop(c, mark);
    }
    for (size_t i = 0; i < cfg->lpr.ncameras; i++) {
        cmn_cfg_camera_t *cam = &cfg->lpr.cameras[i];
        size_t mark = jc_push_key(c, "lpr_bridge");
        jc_push_key(c, "cameras");
        jc_push_index(c, i);
        const cmn_cfg_lot_t *lot = cam->lot_id ? cmn_config_lot(cfg, cam->lot_id) : NULL;
        const cmn_cfg_device_t *dev = cam->device_id ? cmn_config_device(cfg, cam->device_id) : NULL;
        if (cam->lot_id != NULL && lot == NULL)
            jc_err_at(c, "lot", "no lot has the id \"%s\"", cam->lot_id);
        if (cam->device_id != NULL && dev == NULL)
            jc_err_at(c, "device", "no device has the id \"%s\"", cam->device_id);
        if (lot != NULL && cam->lane_id != NULL) {
            const cmn_cfg_lane_t *lane = cmn_config_lane(lot, cam->lane_id);
            cam->lot_index = (int)(lot - cfg->lots);
            if (lane == NULL)
                jc_err_at(c, "lane", "lot \"%s\" has no lane \"%s\"", lot->id, cam->lane_id);
            else
                cam->direction = lane->direction;
            int served = 0;
            for (size_t k = 0; dev != NULL && k < dev->nlanes; k++)
                served |= strcmp(dev->lanes[k], cam->lane_id) == 0;
            if (dev != NULL && (strcmp(dev->lot_id, lot->id) != 0 || !served))
                jc_err_at(c, "device", "device \"%s\" does not serve lane \"%s\" of lot \"%s\"",
                          dev->id, cam->lane_id, lot->id);
        }
        if (dev != NULL)
            cam->device_index = (int)(dev - cfg->devices);
        jc_pop(c, mark);
    }
    if (cfg->billing.default_provider != NULL &&
        cmn_config_provider(cfg, cfg->billing.default_provider) == NULL)
        jc_err_at(c, "billing", "default_provider: no provider has the id \"%s\"",
                  cfg->billing.default_provider);
}

/* ---- entry points ------------------------------------------------------------------------ */

/*
 * Containers reach Redis and bind their ports under other names than a developer's machine does;
 * these variables replace single fields so one configuration serves both (docs/config.md).  The
 * value is checked like the field it replaces.
 */
static void apply_env_overrides(json_t *doc)
{
    static const struct {
        const char *env, *section, *field;
    } overrides[] = {
        {"PARK_REDIS_ADDRESS", "redis", "address"},
        {"PARK_GATEWAY_LISTEN", "gateway", "listen"},
        {"PARK_BILLING_LISTEN", "billing", "listen"},
        {"PARK_LPR_LISTEN", "lpr_bridge", "listen"},
        {"PARK_GATEWAY_URL", "lpr_bridge", "gateway_url"},
        {"PARK_LPR_SPOOL_DIR", "lpr_bridge", "spool_dir"},
    };
    for (size_t i = 0; i < sizeof overrides / sizeof *overrides; i++) {
        const char *v = getenv(overrides[i].env);
        if (v == NULL || v[0] == '\0')
            continue;
        json_t *sec = json_object_get(doc, overrides[i].section);
        if (sec == NULL) {
            sec = json_object();
            json_object_set_new(doc, overrides[i].section, sec);
        }
        if (json_is_object(sec))
            json_object_set_new(sec, overrides[i].field, json_string(v));
    }
}

int cmn_config_load(const char *path, cmn_config_t **out, cmn_diag_t *diag)
{
    static const char *const keys[] = {"name",          "log_level", "redis",     "gateway",
                                       "billing",       "lpr_bridge", "credit_policy",
                                       "providers",     "operators", "lots",      "devices",
                                       "tariff_dir",    NULL};
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    json_t *doc;
    jc_t c;
    const char *s;

    *out = NULL;
    int rc = jc_load_file(path, diag, &doc);
    if (rc != 0)
        return rc;
    cmn_config_t *cfg = cmn_xcalloc(1, sizeof *cfg);
    cfg->path = cmn_xstrdup(path);
    cfg->dir = dir_of(path);
    jc_init(&c, path, diag);
    apply_env_overrides(doc);
    jc_only_keys(&c, doc, keys);
    s = "park";
    if (jc_str(&c, doc, "name", 0, NAME_MAX_BYTES, &s) >= 0)
        cfg->name = cmn_xstrdup(s);
    int lv = jc_enum(&c, doc, "log_level", levels);
    cfg->log_level = cmn_xstrdup(lv >= 0 ? levels[lv] : "info");
    load_redis(&c, doc, cfg);
    load_gateway(&c, doc, cfg);
    load_billing(&c, doc, cfg);
    load_lpr(&c, doc, cfg);
    load_credit(&c, doc, cfg);
    load_providers(&c, doc, cfg);
    load_operators(&c, doc, cfg);
    load_tariffs(&c, doc, cfg);
    load_lots(&c, doc, cfg);
    load_devices(&c, doc, cfg);
    cross_check(&c, cfg);
    json_decref(doc);
    if (c.errors > 0) {
        cmn_config_free(cfg);
        return CMN_ECONFIG;
    }
    *out = cfg;
    return 0;
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cmn_free(v[i]);
    cmn_free(v);
}

void cmn_config_free(cmn_config_t *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->noperators; i++) {
        cmn_free(cfg->operators[i].id);
        cmn_free(cfg->operators[i].name);
    }
    cmn_free(cfg->operators);
    for (size_t i = 0; i < cfg->nlots; i++) {
        cmn_cfg_lot_t *l = &cfg->lots[i];
        cmn_free(l->id);
        cmn_free(l->name);
        cmn_free(l->district);
        cmn_free(l->operator_id);
        cmn_free(l->tariff_id);
        for (size_t k = 0; k < l->nlanes; k++)
            cmn_free(l->lanes[k].id);
        cmn_free(l->lanes);
        for (size_t k = 0; k < l->npasses; k++)
            cmn_free(l->passes[k].plate);
        cmn_free(l->passes);
        free_strv(l->allow, l->nallow);
        free_strv(l->exempt, l->nexempt);
        free_strv(l->blocked, l->nblocked);
    }
    cmn_free(cfg->lots);
    for (size_t i = 0; i < cfg->ndevices; i++) {
        cmn_cfg_device_t *d = &cfg->devices[i];
        cmn_free(d->id);
        cmn_free(d->lot_id);
        free_strv(d->lanes, d->nlanes);
        secret_dispose(&d->key);
        cmn_hmac_key_free(d->mac);
    }
    cmn_free(cfg->devices);
    for (size_t i = 0; i < cfg->nproviders; i++) {
        cmn_cfg_provider_t *p = &cfg->providers[i];
        cmn_free(p->id);
        cmn_free(p->base_url);
        cmn_free(p->currency);
        cmn_free(p->mchid);
        cmn_free(p->appid);
        cmn_free(p->serial_no);
        cmn_free(p->notify_url);
        cmn_free(p->platform_serial);
        secret_dispose(&p->secret_key);
        secret_dispose(&p->private_key);
        secret_dispose(&p->platform_public_key);
        secret_dispose(&p->apiv3_key);
        secret_dispose(&p->webhook_secret);
    }
    cmn_free(cfg->providers);
    for (size_t i = 0; i < cfg->ntariffs; i++)
        cmn_tariff_free(cfg->tariffs[i]);
    cmn_free(cfg->tariffs);
    cmn_free(cfg->credit.retry_minutes);
    cmn_free(cfg->credit.reminder_hours);
    cmn_free(cfg->credit.reminder_webhook);
    cmn_free(cfg->redis.host);
    cmn_free(cfg->redis.unix_path);
    secret_dispose(&cfg->redis.password);
    cmn_free(cfg->gateway.listen.host);
    secret_dispose(&cfg->gateway.admin_token);
    cmn_free(cfg->gateway.web_root);
    cmn_free(cfg->billing.listen.host);
    cmn_free(cfg->billing.default_provider);
    for (size_t i = 0; i < cfg->lpr.ncameras; i++) {
        cmn_cfg_camera_t *cam = &cfg->lpr.cameras[i];
        cmn_free(cam->id);
        cmn_free(cam->lot_id);
        cmn_free(cam->lane_id);
        cmn_free(cam->device_id);
        secret_dispose(&cam->token);
        cmn_free(cam->barrier.url);
        cmn_free(cam->barrier.username);
        secret_dispose(&cam->barrier.password);
    }
    cmn_free(cfg->lpr.cameras);
    cmn_free(cfg->lpr.listen.host);
    cmn_free(cfg->lpr.spool_dir);
    cmn_free(cfg->lpr.gateway_url);
    cmn_free(cfg->name);
    cmn_free(cfg->log_level);
    cmn_free(cfg->path);
    cmn_free(cfg->dir);
    cmn_free(cfg);
}

const cmn_cfg_lot_t *cmn_config_lot(const cmn_config_t *cfg, const char *id)
{
    for (size_t i = 0; i < cfg->nlots; i++) {
        if (cfg->lots[i].id != NULL && strcmp(cfg->lots[i].id, id) == 0)
            return &cfg->lots[i];
    }
    return NULL;
}

const cmn_cfg_device_t *cmn_config_device(const cmn_config_t *cfg, const char *id)
{
    for (size_t i = 0; i < cfg->ndevices; i++) {
        if (cfg->devices[i].id != NULL && strcmp(cfg->devices[i].id, id) == 0)
            return &cfg->devices[i];
    }
    return NULL;
}

const cmn_tariff_t *cmn_config_tariff(const cmn_config_t *cfg, const char *id)
{
    for (size_t i = 0; i < cfg->ntariffs; i++) {
        if (strcmp(cmn_tariff_id(cfg->tariffs[i]), id) == 0)
            return cfg->tariffs[i];
    }
    return NULL;
}

const cmn_cfg_provider_t *cmn_config_provider(const cmn_config_t *cfg, const char *id)
{
    for (size_t i = 0; i < cfg->nproviders; i++) {
        if (cfg->providers[i].id != NULL && strcmp(cfg->providers[i].id, id) == 0)
            return &cfg->providers[i];
    }
    return NULL;
}

const cmn_cfg_camera_t *cmn_config_camera(const cmn_config_t *cfg, const char *id)
{
    for (size_t i = 0; i < cfg->lpr.ncameras; i++) {
        if (cfg->lpr.cameras[i].id != NULL && strcmp(cfg->lpr.cameras[i].id, id) == 0)
            return &cfg->lpr.cameras[i];
    }
    return NULL;
}

const cmn_cfg_lane_t *cmn_config_lane(const cmn_cfg_lot_t *lot, const char *lane_id)
{
    for (size_t i = 0; i < lot->nlanes; i++) {
        if (lot->lanes[i].id != NULL && strcmp(lot->lanes[i].id, lane_id) == 0)
            return &lot->lanes[i];
    }
    return NULL;
}

int cmn_is_ident(const char *s, size_t maxlen)
{
    return jc_is_ident(s, maxlen);
}
