/*
 * parkctl defaults: the city's defaults list (GET /v1/defaults, every page) for a terminal (an
 * aligned table) or a script (--csv).  A command-line tool: libcurl's easy interface, waiting on
 * each page, blocks nobody.
 */
#include "defaults.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn/buf.h"
#include "cmn/config.h"
#include "cmn/diag.h"
#include "cmn/mem.h"
#include "cmn/money.h"
#include "cmn/tariff.h"

#define EXIT_BAD_INPUT 2
#define MAX_PAGES 10000

static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int bad(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("parkctl: defaults: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return EXIT_BAD_INPUT;
}

static size_t on_body(char *data, size_t size, size_t n, void *userdata)
{
    cmn_buf_t *b = userdata;
    return cmn_buf_append(b, data, size * n) == 0 ? size * n : 0;
}

/* Columns on a terminal: CJK characters take two. */
static size_t display_width(const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        unsigned cp;
        int n;
        if (*p < 0x80) {
            cp = *p;
            n = 1;
        } else if ((*p & 0xe0) == 0xc0) {
            cp = *p & 0x1f;
            n = 2;
        } else if ((*p & 0xf0) == 0xe0) {
            cp = *p & 0x0f;
            n = 3;
        } else {
            cp = *p & 0x07;
            n = 4;
        }
        for (int i = 1; i < n && p[i]; i++)
            cp = cp << 6 | (p[i] & 0x3f);
        for (int i = 0; i < n && *p; i++)
            p++;
        w += cp >= 0x1100 && (cp <= 0x115f || (cp >= 0x2e80 && cp <= 0xa4cf) ||
                              (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
                              (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
                              (cp >= 0xffe0 && cp <= 0xffe6))
                 ? 2
                 : 1;
    }
    return w;
}

/* A CSV field: quoted when it holds a comma, a quote or a line break. */
static void csv_field(const char *s, int last)
{
    if (strpbrk(s, ",\"\r\n") != NULL) {
        putchar('"');
        for (; *s; s++) {
            if (*s == '"')
                putchar('"');
            putchar(*s);
        }
        putchar('"');
    } else {
        fputs(s, stdout);
    }
    putchar(last ? '\n' : ',');
}

enum { C_BILL, C_LOT, C_DISTRICT, C_PLATE, C_DRIVER, C_STATUS, C_DISPUTED, C_AMOUNT, C_EXIT,
       C_AGE, C_COUNT };
static const char *const heads[C_COUNT] = {"bill",   "lot",      "district", "plate",
                                           "driver", "status",   "disputed", "amount",
                                           "exit",   "age_days"};

/* One GET; *doc the parsed answer.  Returns 0, or the exit status after a message. */
static int fetch(CURL *curl, const char *url, const char *auth, json_t **doc)
{
    cmn_buf_t body;
    struct curl_slist *headers = NULL;
    int rc = 1;
    cmn_buf_init(&body, 64 << 20);
    headers = curl_slist_append(headers, auth);
    headers = curl_slist_append(headers, "Accept: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 30000L);
    CURLcode cc = curl_easy_perform(curl); /* checksrc: allow */
    long status = 0;
    json_error_t err;
    if (cc != CURLE_OK) {
        fprintf(stderr, "parkctl: defaults: %s: %s\n", url, curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    *doc = json_loadb(body.base ? body.base : "", body.len, 0, &err);
    if (status != 200) {
        const char *msg = json_string_value(json_object_get(*doc, "message"));
        fprintf(stderr, "parkctl: defaults: the gateway answered %ld: %s\n", status,
                msg ? msg : "(no message)");
        json_decref(*doc);
        *doc = NULL;
        rc = status >= 400 && status < 500 ? EXIT_BAD_INPUT : 1;
        goto out;
    }
    if (*doc == NULL || !json_is_array(json_object_get(*doc, "items"))) {
        fprintf(stderr, "parkctl: defaults: the gateway's answer is not a defaults page\n");
        json_decref(*doc);
        *doc = NULL;
        goto out;
    }
    rc = 0;
out:
    curl_slist_free_all(headers);
    cmn_buf_dispose(&body);
    return rc;
}

/* The item's columns as text; amounts in the major unit (table) or minor units (csv). */
static void cells(json_t *it, const cmn_config_t *cfg, int csv, char out[C_COUNT][160])
{
    static const char *const keys[C_COUNT] = {"bill", "lot",      "district", "plate", "driver",
                                              "status", "disputed", "amount",  "exit",  "age_days"};
    for (int c = 0; c < C_COUNT; c++) {
        json_t *v = json_object_get(it, keys[c]);
        if (json_is_string(v))
            snprintf(out[c], 160, "%s", json_string_value(v));
        else if (json_is_boolean(v))
            snprintf(out[c], 160, "%s", json_is_true(v) ? "yes" : "no");
        else if (json_is_integer(v))
            snprintf(out[c], 160, "%lld", (long long)json_integer_value(v));
        else
            out[c][0] = '\0';
    }
    if (!csv) {
        const cmn_cfg_lot_t *lot = cfg ? cmn_config_lot(cfg, out[C_LOT]) : NULL;
        int digits = lot ? cmn_tariff_fraction_digits(lot->tariff) : 2;
        char money[40];
        cmn_money_format(json_integer_value(json_object_get(it, "amount")), digits, money,
                         sizeof money);
        const char *cur = json_string_value(json_object_get(it, "currency"));
        snprintf(out[C_AMOUNT], 160, "%s %s", money, cur ? cur : "");
    }
}

static void print_table(json_t *items, const cmn_config_t *cfg)
{
    size_t width[C_COUNT], n = json_array_size(items);
    char(*rows)[C_COUNT][160] = cmn_xcalloc(n ? n : 1, sizeof *rows);
    for (int c = 0; c < C_COUNT; c++)
        width[c] = strlen(heads[c]);
    for (size_t i = 0; i < n; i++) {
        cells(json_array_get(items, i), cfg, 0, rows[i]);
        for (int c = 0; c < C_COUNT; c++) {
            size_t w = display_width(rows[i][c]);
            if (w > width[c])
                width[c] = w;
        }
    }
    for (size_t i = 0; i <= n; i++) {
        for (int c = 0; c < C_COUNT; c++) {
            const char *s = i == 0 ? heads[c] : rows[i - 1][c];
            size_t pad = width[c] - display_width(s);
            int right = c == C_AMOUNT || c == C_AGE;
            if (right)
                printf("%*s", (int)pad, "");
            fputs(s, stdout);
            if (c + 1 < C_COUNT)
                printf("%*s", (int)(right ? 2 : pad + 2), "");
        }
        putchar('\n');
    }
    printf("%zu %s\n", n, n == 1 ? "arrear" : "arrears");
    cmn_free(rows);
}

int parkctl_defaults(int argc, char **argv)
{
    const char *path = "config/platform.json", *url = NULL, *token = getenv("PARK_TOKEN");
    const char *opt[5] = {NULL, NULL, NULL, NULL, NULL}; /* status district lot amount age */
    static const char *const names[5] = {"--status", "--district", "--lot", "--min-amount",
                                         "--min-age-days"};
    static const char *const params[5] = {"status", "district", "lot", "min_amount",
                                          "min_age_days"};
    int csv = 0, rc = 1;
    for (int i = 0; i < argc; i++) {
        const char **slot = NULL;
        if (strcmp(argv[i], "--csv") == 0) {
            csv = 1;
            continue;
        }
        if (strcmp(argv[i], "--config") == 0)
            slot = &path;
        else if (strcmp(argv[i], "--url") == 0)
            slot = &url;
        else if (strcmp(argv[i], "--token") == 0)
            slot = &token;
        for (int k = 0; slot == NULL && k < 5; k++) {
            if (strcmp(argv[i], names[k]) == 0)
                slot = &opt[k];
        }
        if (slot == NULL)
            return bad("unknown argument \"%s\" (see parkctl help)", argv[i]);
        if (i + 1 >= argc)
            return bad("%s needs a value", argv[i]);
        *slot = argv[++i];
    }
    for (int k = 3; k < 5; k++) {
        char *end;
        if (opt[k] != NULL && (strtoll(opt[k], &end, 10) < 0 || *end != '\0' || !opt[k][0]))
            return bad("%s must be a whole number from 0", names[k]);
    }
    if (token == NULL || token[0] == '\0')
        return bad("a token is needed: --token or the environment's PARK_TOKEN");
    cmn_config_t *cfg = NULL;
    cmn_diag_t diag;
    cmn_diag_init(&diag);
    /* The configuration gives the gateway's address and each lot's currency digits; with --url it
     * may be absent. */
    if (cmn_config_load(path, &cfg, &diag) != 0 && url == NULL) {
        rc = bad("invalid configuration %s: %s", path, diag.n ? diag.msgs[0] : "?");
        cmn_diag_dispose(&diag);
        return rc;
    }
    cmn_diag_dispose(&diag);
    char base[512], auth[600];
    if (url != NULL)
        snprintf(base, sizeof base, "%s", url);
    else
        snprintf(base, sizeof base, "http://%s:%d", cfg->gateway.listen.host,
                 cfg->gateway.listen.port);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    CURL *curl = curl_easy_init();
    json_t *all = json_array();
    cmn_buf_t q;
    cmn_buf_init(&q, 1 << 16);
    char *cursor = NULL;
    if (curl == NULL)
        goto out;
    for (int page = 0; page < MAX_PAGES; page++) {
        cmn_buf_reset(&q);
        cmn_buf_printf(&q, "%s/v1/defaults?limit=500", base);
        for (int k = 0; k < 5; k++) {
            if (opt[k] == NULL)
                continue;
            char *e = curl_easy_escape(curl, opt[k], 0);
            cmn_buf_printf(&q, "&%s=%s", params[k], e ? e : "");
            curl_free(e);
        }
        if (cursor != NULL) {
            char *e = curl_easy_escape(curl, cursor, 0);
            cmn_buf_printf(&q, "&cursor=%s", e ? e : "");
            curl_free(e);
        }
        json_t *doc = NULL;
        if ((rc = fetch(curl, q.base, auth, &doc)) != 0)
            goto out;
        json_array_extend(all, json_object_get(doc, "items"));
        const char *next = json_string_value(json_object_get(doc, "next_cursor"));
        cmn_free(cursor);
        cursor = next ? cmn_xstrdup(next) : NULL;
        json_decref(doc);
        if (cursor == NULL)
            break;
    }
    if (csv) {
        for (int c = 0; c < C_COUNT; c++)
            csv_field(c == C_AMOUNT ? "amount_minor" : heads[c], c + 1 == C_COUNT);
        size_t i;
        json_t *it;
        json_array_foreach(all, i, it)
        {
            char row[C_COUNT][160];
            cells(it, cfg, 1, row);
            for (int c = 0; c < C_COUNT; c++)
                csv_field(row[c], c + 1 == C_COUNT);
        }
    } else {
        print_table(all, cfg);
    }
    rc = 0;
out:
    cmn_free(cursor);
    cmn_buf_dispose(&q);
    json_decref(all);
    if (curl != NULL)
        curl_easy_cleanup(curl);
    cmn_config_free(cfg);
    return rc;
}
