/*
 * parkctl: the operator's command-line tool.
 *
 *   parkctl fee --tariff FILE [--class CLASS] --entry TIME --exit TIME [--json] [--explain]
 *   parkctl plate [--json] TEXT
 *   parkctl config check [FILE]
 *   parkctl event [--config FILE] --device ID --lane LANE --plate TEXT [...]
 *   parkctl token create --role ROLE [--scope ID] [--name TEXT] | token revoke TOKEN | token list
 *   parkctl defaults [--status S] [--district D] [--lot L] [--min-amount N] [--csv] (defaults.c)
 *   parkctl report revenue --from DATE --to DATE [--lot L] [--group day|lot] [--csv] (report.c)
 *
 * Exit status: 0 on success, 2 on bad input (with one line on stderr saying why; `config check`
 * prints one line per problem), 1 on an internal failure.
 */
#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <openssl/crypto.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cmn/buf.h"
#include "cmn/config.h"
#include "cmn/crypto.h"
#include "cmn/err.h"
#include "cmn/json.h"
#include "cmn/mem.h"
#include "cmn/money.h"
#include "cmn/plate.h"
#include "cmn/tariff.h"
#include "cmn/time.h"
#include "defaults.h"
#include "report.h"

#define EXIT_BAD_INPUT 2
#define DEFAULT_CONFIG "config/platform.json"

static const char usage[] =
    "usage: parkctl fee --tariff FILE [--class CLASS] --entry TIME --exit TIME [--json] "
    "[--explain]\n"
    "       parkctl plate [--json] TEXT\n"
    "       parkctl config check [FILE]\n"
    "       parkctl token create --role admin|city|operator|driver [--scope ID] [--name TEXT]\n"
    "                            [--config FILE]\n"
    "       parkctl token revoke TOKEN [--config FILE]\n"
    "       parkctl token list [--config FILE]\n"
    "       parkctl defaults [--config FILE] [--url URL] [--token T] [--status S] [--district D]\n"
    "                        [--lot LOT] [--min-amount N] [--min-age-days N] [--csv]\n"
    "       parkctl report revenue --from DATE --to DATE [--lot LOT] [--group day|lot] [--csv]\n"
    "                              [--url URL] [--token TOKEN (else $PARK_TOKEN)] [--config FILE]\n"
    "       parkctl event [--config FILE] --device ID --lane LANE --plate TEXT|--unreadable\n"
    "                     [--ts TIME] [--event-id ID] [--class CLASS] [--url URL]\n"
    "TIME is RFC 3339 with a zone, e.g. 2026-11-27T18:42:07+08:00; amounts are minor units.\n";

static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int bad(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("parkctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return EXIT_BAD_INPUT;
}

static int print_json(json_t *j)
{
    char *s = cmn_json_dump(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (s == NULL)
        return 1;
    puts(s);
    cmn_free(s);
    return 0;
}

/* Reports the first problem of a diagnostic list on one line. */
static int bad_diag(const char *what, const cmn_diag_t *d)
{
    if (d->n == 0)
        return bad("%s", what);
    if (d->n == 1)
        fprintf(stderr, "parkctl: %s: %s\n", what, d->msgs[0]);
    else
        fprintf(stderr, "parkctl: %s: %s (and %zu more problems)\n", what, d->msgs[0], d->n - 1);
    return EXIT_BAD_INPUT;
}

static int parse_time_arg(const char *opt, const char *s, cmn_instant_t *t)
{
    int rc = cmn_rfc3339_parse(s, strlen(s), t);
    if (rc == 0)
        return 0;
    fprintf(stderr, "parkctl: %s: \"%s\" is %s\n", opt, s,
            rc == CMN_ERANGE ? "out of range" : "not an RFC 3339 time with a zone");
    return EXIT_BAD_INPUT;
}

static int cmd_fee(int argc, char **argv)
{
    const char *tariff_path = NULL, *vclass = NULL, *entry_s = NULL, *exit_s = NULL;
    int json = 0, explain = 0, rc;
    cmn_instant_t entry, exit_at;
    cmn_tariff_t *t = NULL;
    cmn_fee_t fee = {0};
    cmn_diag_t diag;

    for (int i = 0; i < argc; i++) {
        const char **slot = NULL;
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
            continue;
        }
        if (strcmp(argv[i], "--explain") == 0) {
            explain = 1;
            continue;
        }
        if (strcmp(argv[i], "--tariff") == 0)
            slot = &tariff_path;
        else if (strcmp(argv[i], "--class") == 0)
            slot = &vclass;
        else if (strcmp(argv[i], "--entry") == 0)
            slot = &entry_s;
        else if (strcmp(argv[i], "--exit") == 0)
            slot = &exit_s;
        else
            return bad("fee: unknown argument \"%s\" (see parkctl help)", argv[i]);
        if (i + 1 >= argc)
            return bad("fee: %s needs a value", argv[i]);
        *slot = argv[++i];
    }
    if (tariff_path == NULL)
        return bad("fee: %s is required", "--tariff FILE");
    if (entry_s == NULL)
        return bad("fee: %s is required", "--entry TIME");
    if (exit_s == NULL)
        return bad("fee: %s is required", "--exit TIME");
    if ((rc = parse_time_arg("--entry", entry_s, &entry)) != 0 ||
        (rc = parse_time_arg("--exit", exit_s, &exit_at)) != 0)
        return rc;
    if (vclass != NULL && (vclass[0] == '\0' || strlen(vclass) > 32))
        return bad("fee: --class \"%s\" is not a vehicle class", vclass);

    cmn_diag_init(&diag);
    if (cmn_tariff_load_file(tariff_path, &t, &diag) != 0) {
        rc = bad_diag("invalid tariff", &diag);
        goto out;
    }
    rc = cmn_tariff_fee(t, vclass, entry, exit_at, (json || explain) ? CMN_FEE_EXPLAIN : 0, &fee);
    if (rc == CMN_ERANGE) {
        if (exit_at < entry)
            rc = bad("fee: the exit (%s) is before the entry (%s)", exit_s, entry_s);
        else
            rc = bad("fee: the stay from %s to %s is longer than ten years", entry_s, exit_s);
        goto out;
    }
    if (rc != 0) {
        fprintf(stderr, "parkctl: fee: %s\n", cmn_strerror(rc));
        rc = 1;
        goto out;
    }
    if (json) {
        json_t *j = cmn_fee_to_json(t, &fee);
        if (vclass != NULL)
            json_object_set_new(j, "vehicle_class", json_string(vclass));
        if (!explain) {
            json_object_del(j, "rows");
            json_object_del(j, "caps");
        }
        rc = print_json(j);
    } else if (explain) {
        cmn_buf_t b;
        cmn_buf_init(&b, 64u << 20);
        rc = cmn_fee_explain_text(t, &fee, &b) == 0 ? 0 : 1;
        if (rc == 0)
            fputs(b.base, stdout);
        cmn_buf_dispose(&b);
    } else {
        char m[32];
        cmn_money_format(fee.amount, cmn_tariff_fraction_digits(t), m, sizeof m);
        printf("%lld %s (%s)\n", (long long)fee.amount, cmn_tariff_currency(t), m);
        rc = 0;
    }
out:
    cmn_fee_dispose(&fee);
    cmn_tariff_free(t);
    cmn_diag_dispose(&diag);
    return rc;
}

static int cmd_plate(int argc, char **argv)
{
    int json = 0;
    const char *text = NULL;
    cmn_plate_t p;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (text == NULL)
            text = argv[i];
        else
            return bad("plate: unexpected argument \"%s\"", argv[i]);
    }
    if (text == NULL)
        return bad("plate: %s is required", "TEXT");
    int rc = cmn_plate_parse(text, strlen(text), &p);
    if (rc == CMN_EUNREADABLE) {
        fprintf(stderr, "parkctl: plate \"%s\" is unreadable: %s\n", text,
                p.reason ? p.reason : "no plate");
        return EXIT_BAD_INPUT;
    }
    if (rc != 0) {
        fprintf(stderr, "parkctl: plate \"%s\" is invalid: %s\n", text,
                p.reason ? p.reason : cmn_strerror(rc));
        return EXIT_BAD_INPUT;
    }
    if (json) {
        json_t *j = json_object();
        json_object_set_new(j, "plate", json_string(p.text));
        json_object_set_new(j, "kind", json_string(cmn_plate_kind_name(p.kind)));
        json_object_set_new(j, "vehicle_class", json_string(p.vclass));
        /* The key under which Redis indexes the plate (docs/redis.md), for operators' checks. */
        char fold[CMN_PLATE_MAX];
        if (cmn_plate_fold_key(p.text, 1, fold, sizeof fold) >= 0)
            json_object_set_new(j, "fold_key", json_string(fold));
        return print_json(j);
    }
    printf("%s kind=%s class=%s\n", p.text, cmn_plate_kind_name(p.kind), p.vclass);
    return 0;
}

static int cmd_config(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "check") != 0)
        return bad("config: unknown subcommand \"%s\" (parkctl config check [FILE])",
                   argc ? argv[0] : "");
    if (argc > 2)
        return bad("config check: unexpected argument \"%s\"", argv[2]);
    const char *path = argc == 2 ? argv[1] : DEFAULT_CONFIG;
    cmn_config_t *cfg = NULL;
    cmn_diag_t diag;
    cmn_diag_init(&diag);
    int rc = cmn_config_load(path, &cfg, &diag);
    if (rc != 0) {
        cmn_diag_print(&diag, "", stderr);
        fprintf(stderr, "parkctl: %s: %zu problem%s\n", path, diag.n, diag.n == 1 ? "" : "s");
        cmn_diag_dispose(&diag);
        return EXIT_BAD_INPUT;
    }
    size_t lanes = 0;
    for (size_t i = 0; i < cfg->nlots; i++)
        lanes += cfg->lots[i].nlanes;
    printf("%s: OK: %zu operators, %zu lots, %zu lanes, %zu devices, %zu tariffs, %zu providers\n",
           path, cfg->noperators, cfg->nlots, lanes, cfg->ndevices, cfg->ntariffs,
           cfg->nproviders);
    for (size_t i = 0; i < cfg->ntariffs; i++)
        printf("  tariff %s version %s\n", cmn_tariff_id(cfg->tariffs[i]),
               cmn_tariff_version(cfg->tariffs[i]));
    cmn_config_free(cfg);
    cmn_diag_dispose(&diag);
    return 0;
}

/* ---- token: API tokens for people, stored hashed in Redis (gateway/auth.h) ---------------- */

/* A short synchronous Redis session: a command-line tool, not an event loop. */
static redisContext *redis_connect(const cmn_config_t *cfg)
{
    struct timeval tv = {(long)(cfg->redis.connect_timeout_ms / 1000),
                         (long)(cfg->redis.connect_timeout_ms % 1000) * 1000};
    redisContext *c = cfg->redis.unix_path ? redisConnectUnixWithTimeout(cfg->redis.unix_path, tv)
                                           : redisConnectWithTimeout(cfg->redis.host,
                                                                     cfg->redis.port, tv);
    if (c == NULL || c->err) {
        fprintf(stderr, "parkctl: cannot reach Redis: %s\n", c ? c->errstr : "out of memory");
        if (c != NULL)
            redisFree(c);
        return NULL;
    }
    if (cfg->redis.password.len > 0) {
        redisReply *r = redisCommand(c, "AUTH %b", cfg->redis.password.data, /* checksrc: allow */
                                     cfg->redis.password.len);
        int ok = r != NULL && r->type != REDIS_REPLY_ERROR;
        freeReplyObject(r);
        if (!ok) {
            fprintf(stderr, "parkctl: Redis refused the password\n");
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

/* The tokens in Redis (never the tokens themselves: only their hashes are stored). */
static int cmd_token_list(int argc, char **argv)
{
    const char *path = DEFAULT_CONFIG;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            path = argv[++i];
        else
            return bad("token list: unknown argument \"%s\"", argv[i]);
    }
    cmn_config_t *cfg = NULL;
    cmn_diag_t diag;
    cmn_diag_init(&diag);
    if (cmn_config_load(path, &cfg, &diag) != 0) {
        int rc = bad_diag("invalid configuration", &diag);
        cmn_diag_dispose(&diag);
        return rc;
    }
    cmn_diag_dispose(&diag);
    redisContext *c = redis_connect(cfg);
    int rc = 1;
    if (c == NULL)
        goto out;
    printf("%-16s %-8s %-16s %-12s %s\n", "hash", "role", "scope", "created", "name");
    char cursor[32] = "0";
    do {
        redisReply *r = redisCommand(c, "SCAN %s MATCH pk:tok:* COUNT 1000", /* checksrc: allow */
                                     cursor);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            fprintf(stderr, "parkctl: Redis: %s\n", r && r->str ? r->str : c->errstr);
            freeReplyObject(r);
            goto out;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const char *key = r->element[1]->element[i]->str;
            redisReply *h = redisCommand(c, "HMGET %s role scope name created", /* checksrc: allow */
                                         key);
            if (h != NULL && h->type == REDIS_REPLY_ARRAY && h->elements == 4) {
                const char *hex = strchr(key, '{');
                char created[24] = "";
                if (h->element[3]->str != NULL)
                    snprintf(created, sizeof created, "%s", h->element[3]->str);
                printf("%-16.12s %-8s %-16s %-12s %s\n", hex ? hex + 1 : key,
                       h->element[0]->str ? h->element[0]->str : "?",
                       h->element[1]->str ? h->element[1]->str : "",
                       created, h->element[2]->str ? h->element[2]->str : "");
            }
            freeReplyObject(h);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    rc = 0;
out:
    if (c != NULL)
        redisFree(c);
    cmn_config_free(cfg);
    return rc;
}

static int cmd_token(int argc, char **argv)
{
    const char *path = DEFAULT_CONFIG, *role = NULL, *scope = NULL, *name = "";
    int create = argc > 0 && strcmp(argv[0], "create") == 0;
    int revoke = argc > 0 && strcmp(argv[0], "revoke") == 0;
    const char *token = NULL;
    if (argc > 0 && strcmp(argv[0], "list") == 0)
        return cmd_token_list(argc - 1, argv + 1);
    if (!create && !revoke)
        return bad("token: create, revoke or list (see parkctl help)");
    for (int i = 1; i < argc; i++) {
        const char **slot = NULL;
        if (strcmp(argv[i], "--config") == 0)
            slot = &path;
        else if (strcmp(argv[i], "--role") == 0)
            slot = &role;
        else if (strcmp(argv[i], "--scope") == 0)
            slot = &scope;
        else if (strcmp(argv[i], "--name") == 0)
            slot = &name;
        else if (revoke && token == NULL) {
            token = argv[i];
            continue;
        } else
            return bad("token: unknown argument \"%s\"", argv[i]);
        if (i + 1 >= argc)
            return bad("token: %s needs a value", argv[i]);
        *slot = argv[++i];
    }
    cmn_config_t *cfg = NULL;
    cmn_diag_t diag;
    cmn_diag_init(&diag);
    int rc = EXIT_BAD_INPUT;
    if (cmn_config_load(path, &cfg, &diag) != 0) {
        rc = bad_diag("invalid configuration", &diag);
        cmn_diag_dispose(&diag);
        return rc;
    }
    cmn_diag_dispose(&diag);
    unsigned char raw[32], hash[32];
    char secret[80], hex[65];
    if (create) {
        static const char *const roles[] = {"admin", "city", "operator", "driver", NULL};
        int ok = 0;
        for (int i = 0; role != NULL && roles[i] != NULL; i++)
            ok |= strcmp(role, roles[i]) == 0;
        if (!ok) {
            rc = bad("token: --role must be admin, city, operator or driver");
            goto out;
        }
        int scoped = strcmp(role, "operator") == 0 || strcmp(role, "driver") == 0;
        if (scoped && (scope == NULL || !cmn_is_ident(scope, 64))) {
            rc = bad("token: a %s token needs --scope (the %s id)", role,
                     strcmp(role, "operator") == 0 ? "operator" : "driver");
            goto out;
        }
        if (strcmp(role, "operator") == 0) {
            int known = 0;
            for (size_t i = 0; i < cfg->noperators; i++)
                known |= strcmp(cfg->operators[i].id, scope) == 0;
            if (!known) {
                rc = bad("token: no operator has the id \"%s\"", scope);
                goto out;
            }
        }
        if (!scoped)
            scope = "*";
        if (strlen(name) > 64) {
            rc = bad("token: --name is longer than 64 bytes");
            goto out;
        }
        if (cmn_random(raw, sizeof raw) != 0) {
            rc = 1;
            goto out;
        }
        char body[65];
        cmn_hex(raw, sizeof raw, body);
        snprintf(secret, sizeof secret, "pkt_%s", body);
        token = secret;
    } else if (token == NULL) {
        rc = bad("token: revoke needs the token");
        goto out;
    }
    cmn_sha256(token, strlen(token), hash);
    cmn_hex(hash, 32, hex);
    redisContext *c = redis_connect(cfg);
    if (c == NULL) {
        rc = 1;
        goto out;
    }
    char key[96], now[24];
    snprintf(key, sizeof key, "pk:tok:{%s}", hex);
    snprintf(now, sizeof now, "%lld", (long long)time(NULL));
    redisReply *r = create ? redisCommand(c, "HSET %s role %s scope %s name %s created %s", /* checksrc: allow */
                                          key, role, scope, name, now)
                           : redisCommand(c, "DEL %s", key); /* checksrc: allow */
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "parkctl: Redis: %s\n", r ? r->str : c->errstr);
        rc = 1;
    } else if (revoke && r->integer == 0) {
        rc = bad("token: no such token");
    } else if (create) {
        printf("%s\n", token);
        fprintf(stderr, "parkctl: %s token for %s created; it is shown only this once\n", role,
                scope);
        rc = 0;
    } else {
        printf("revoked (within 30 s at every gateway)\n");
        rc = 0;
    }
    freeReplyObject(r);
    redisFree(c);
out:
    OPENSSL_cleanse(secret, sizeof secret);
    cmn_config_free(cfg);
    return rc;
}

/* ---- event: a signed lane event, as a barrier or the lpr-bridge sends it ---------------- */

static size_t on_body(char *data, size_t size, size_t n, void *userdata)
{
    cmn_buf_t *b = userdata;
    return cmn_buf_append(b, data, size * n) == 0 ? size * n : 0;
}

static int cmd_event(int argc, char **argv)
{
    const char *path = DEFAULT_CONFIG, *device = NULL, *lane = NULL, *plate = NULL, *ts = NULL;
    const char *event_id = NULL, *vclass = NULL, *url = NULL;
    int unreadable = 0, rc = 1;
    char idbuf[64], tsbuf[CMN_RFC3339_MAX], urlbuf[512], stamp[24], sig[65];
    cmn_config_t *cfg = NULL;
    cmn_diag_t diag;
    CURL *curl = NULL;
    struct curl_slist *headers = NULL;
    cmn_buf_t resp;
    char *body = NULL;

    for (int i = 0; i < argc; i++) {
        const char **slot = NULL;
        if (strcmp(argv[i], "--unreadable") == 0) {
            unreadable = 1;
            continue;
        }
        if (strcmp(argv[i], "--config") == 0)
            slot = &path;
        else if (strcmp(argv[i], "--device") == 0)
            slot = &device;
        else if (strcmp(argv[i], "--lane") == 0)
            slot = &lane;
        else if (strcmp(argv[i], "--plate") == 0)
            slot = &plate;
        else if (strcmp(argv[i], "--ts") == 0)
            slot = &ts;
        else if (strcmp(argv[i], "--event-id") == 0)
            slot = &event_id;
        else if (strcmp(argv[i], "--class") == 0)
            slot = &vclass;
        else if (strcmp(argv[i], "--url") == 0)
            slot = &url;
        else
            return bad("event: unknown argument \"%s\" (see parkctl help)", argv[i]);
        if (i + 1 >= argc)
            return bad("event: %s needs a value", argv[i]);
        *slot = argv[++i];
    }
    if (device == NULL || lane == NULL || (plate == NULL && !unreadable))
        return bad("event: %s", "--device, --lane and --plate (or --unreadable) are required");
    cmn_diag_init(&diag);
    cmn_buf_init(&resp, 1 << 20);
    if (cmn_config_load(path, &cfg, &diag) != 0) {
        rc = bad_diag("invalid configuration", &diag);
        goto out;
    }
    const cmn_cfg_device_t *dev = cmn_config_device(cfg, device);
    if (dev == NULL) {
        rc = bad("event: no device \"%s\" in %s", device, path);
        goto out;
    }
    const cmn_cfg_lot_t *lot = cmn_config_lot(cfg, dev->lot_id);
    const cmn_cfg_lane_t *ln = cmn_config_lane(lot, lane);
    if (ln == NULL) {
        rc = bad("event: lot %s has no lane \"%s\"", lot->id, lane);
        goto out;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (ts == NULL) {
        cmn_rfc3339_format(now.tv_sec, cmn_tariff_utc_offset(lot->tariff, now.tv_sec), 0, tsbuf,
                           sizeof tsbuf);
        ts = tsbuf;
    }
    cmn_instant_t t;
    if ((rc = parse_time_arg("--ts", ts, &t)) != 0)
        goto out;
    rc = 1;
    if (event_id == NULL) {
        unsigned char rnd[6];
        char hex[13];
        cmn_random(rnd, sizeof rnd);
        cmn_hex(rnd, sizeof rnd, hex);
        snprintf(idbuf, sizeof idbuf, "parkctl-%lld-%s", (long long)now.tv_sec, hex);
        event_id = idbuf;
    }
    json_t *ev = json_object();
    json_object_set_new(ev, "event_id", json_string(event_id));
    json_object_set_new(ev, "lot_id", json_string(lot->id));
    json_object_set_new(ev, "lane_id", json_string(lane));
    json_object_set_new(ev, "direction",
                        json_string(ln->direction == CMN_LANE_ENTRY ? "entry" : "exit"));
    json_object_set_new(ev, "plate", unreadable ? json_null() : json_string(plate));
    if (unreadable)
        json_object_set_new(ev, "unreadable", json_true());
    if (vclass != NULL)
        json_object_set_new(ev, "vehicle_class", json_string(vclass));
    json_object_set_new(ev, "ts", json_string(ts));
    body = cmn_json_dump(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(ev);
    if (body == NULL) {
        rc = bad("event: %s", "the plate is not valid UTF-8");
        goto out;
    }
    if (url == NULL) {
        snprintf(urlbuf, sizeof urlbuf, "http://%s:%d", cfg->gateway.listen.host,
                 cfg->gateway.listen.port);
        url = urlbuf;
    }
    char full[600];
    snprintf(full, sizeof full, "%s/v1/events", url);
    snprintf(stamp, sizeof stamp, "%lld", (long long)now.tv_sec);
    if (cmn_lane_sign(dev->key.data, dev->key.len, stamp, "POST", "/v1/events", 10, dev->id, body,
                      strlen(body), sig) != 0)
        goto out;
    char h1[100], h2[100], h3[100];
    snprintf(h1, sizeof h1, "X-Park-Device: %s", dev->id);
    snprintf(h2, sizeof h2, "X-Park-Timestamp: %s", stamp);
    snprintf(h3, sizeof h3, "X-Park-Signature: %s", sig);
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, h1);
    headers = curl_slist_append(headers, h2);
    headers = curl_slist_append(headers, h3);
    curl = curl_easy_init();
    if (curl == NULL)
        goto out;
    curl_easy_setopt(curl, CURLOPT_URL, full);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
    /* A command-line tool, not an event loop: waiting here blocks nobody. */
    CURLcode cc = curl_easy_perform(curl); /* checksrc: allow */
    if (cc != CURLE_OK) {
        fprintf(stderr, "parkctl: event: %s: %s\n", full, curl_easy_strerror(cc));
        goto out;
    }
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    printf("%s\n", resp.base ? resp.base : "");
    if (status != 200) {
        fprintf(stderr, "parkctl: event: the gateway answered %ld\n", status);
        rc = status >= 400 && status < 500 ? EXIT_BAD_INPUT : 1;
        goto out;
    }
    rc = 0;
out:
    curl_easy_cleanup(curl);
    curl_slist_free_all(headers);
    cmn_free(body);
    cmn_buf_dispose(&resp);
    cmn_config_free(cfg);
    cmn_diag_dispose(&diag);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return bad("%s", "a command is required (fee, plate, config); see parkctl help");
    const char *cmd = argv[1];
    if (strcmp(cmd, "fee") == 0)
        return cmd_fee(argc - 2, argv + 2);
    if (strcmp(cmd, "plate") == 0)
        return cmd_plate(argc - 2, argv + 2);
    if (strcmp(cmd, "config") == 0)
        return cmd_config(argc - 2, argv + 2);
    if (strcmp(cmd, "event") == 0)
        return cmd_event(argc - 2, argv + 2);
    if (strcmp(cmd, "report") == 0)
        return parkctl_report(argc - 2, argv + 2);
    if (strcmp(cmd, "defaults") == 0)
        return parkctl_defaults(argc - 2, argv + 2);
    if (strcmp(cmd, "token") == 0)
        return cmd_token(argc - 2, argv + 2);
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    return bad("unknown command \"%s\"; see parkctl help", cmd);
}
