/*
 * parkctl report revenue: the revenue report of the gateway (GET /v1/reports/revenue) for a
 * terminal (an aligned table, amounts in the currency's major unit) or a script (--csv: the
 * gateway's CSV as it is).
 */
#include "report.h"

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
#include "cmn/time.h"

#define EXIT_BAD_INPUT 2
#define MAX_COLS 16
#define CELL 32

static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int bad(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("parkctl: report: ", stderr);
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

/* ---- the table ----------------------------------------------------------------------------- */

struct table {
    int ncols;
    const char *head[MAX_COLS];
    int left[MAX_COLS]; /* text columns are aligned left, numbers right */
    size_t width[MAX_COLS];
    char (*cells)[MAX_COLS][CELL];
    size_t nrows, cap;
};

static void table_col(struct table *t, const char *head, int left)
{
    t->head[t->ncols] = head;
    t->left[t->ncols] = left;
    t->width[t->ncols] = strlen(head);
    t->ncols++;
}

static void table_row(struct table *t)
{
    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->cells = cmn_xrealloc(t->cells, t->cap * sizeof *t->cells);
    }
    memset(t->cells[t->nrows], 0, sizeof t->cells[t->nrows]);
    t->nrows++;
}

static void table_set(struct table *t, int col, const char *text)
{
    char *cell = t->cells[t->nrows - 1][col];
    snprintf(cell, CELL, "%s", text);
    if (strlen(cell) > t->width[col])
        t->width[col] = strlen(cell);
}

static void table_print(const struct table *t)
{
    for (int c = 0; c < t->ncols; c++)
        printf(c ? "  %*s" : "%-*s", (int)t->width[c], t->head[c]);
    putchar('\n');
    for (size_t r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r][c];
            if (c > 0)
                fputs("  ", stdout);
            printf(t->left[c] ? "%-*s" : "%*s", (int)t->width[c], s);
        }
        putchar('\n');
    }
}

static long long num(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

static void money_cell(struct table *t, int col, const json_t *o, const char *k, int digits)
{
    char m[32];
    cmn_money_format(num(o, k), digits, m, sizeof m);
    table_set(t, col, m);
}

static void stay_cell(struct table *t, int col, const json_t *o)
{
    const json_t *v = json_object_get(o, "average_stay_s");
    char s[32] = "-";
    if (json_is_integer(v)) {
        long long secs = json_integer_value(v);
        snprintf(s, sizeof s, "%lldh%02lldm", secs / 3600, secs / 60 % 60);
    }
    table_set(t, col, s);
}

/* One line of the table: a row of the answer, or its totals (lot NULL). */
static void add_line(struct table *t, const json_t *o, int by_day, const char *lot)
{
    static const char *const amounts[] = {"billed",       "paid",        "paid_late",
                                          "paid_on_site", "outstanding", "overdue",
                                          "defaulted",    "waived",      "refunded"};
    const char *cur = json_string_value(json_object_get(o, "currency"));
    int digits = 2, col = 0;
    char n[32];
    if (cur == NULL || cmn_currency_check(cur, &digits) != 0)
        digits = 2;
    table_row(t);
    table_set(t, col++, lot ? lot : "total");
    if (by_day)
        table_set(t, col++, lot ? json_string_value(json_object_get(o, "date")) : "");
    snprintf(n, sizeof n, "%lld", num(o, "entries"));
    table_set(t, col++, n);
    snprintf(n, sizeof n, "%lld", num(o, "exits"));
    table_set(t, col++, n);
    for (size_t i = 0; i < sizeof amounts / sizeof *amounts; i++)
        money_cell(t, col++, o, amounts[i], digits);
    stay_cell(t, col++, o);
    snprintf(n, sizeof n, "%lld", num(o, "peak_occupancy"));
    table_set(t, col++, n);
}

static int print_table(const char *body, int by_day)
{
    json_error_t err;
    json_t *doc = json_loads(body, 0, &err);
    const json_t *rows = doc ? json_object_get(doc, "rows") : NULL;
    if (!json_is_array(rows)) {
        json_decref(doc);
        fprintf(stderr, "parkctl: report: the gateway's answer is not a report\n");
        return 1;
    }
    struct table t;
    memset(&t, 0, sizeof t);
    table_col(&t, "LOT", 1);
    if (by_day)
        table_col(&t, "DATE", 1);
    static const char *const heads[] = {"ENTRIES",  "EXITS",       "BILLED",  "ON TIME",   "LATE",
                                        "ON SITE",  "OUTSTANDING", "OVERDUE", "DEFAULTED", "WAIVED",
                                        "REFUNDED", "AVG STAY",    "PEAK"};
    for (size_t i = 0; i < sizeof heads / sizeof *heads; i++)
        table_col(&t, heads[i], 0);
    size_t i;
    const json_t *row;
    json_array_foreach(rows, i, row)
    {
        const char *lot = json_string_value(json_object_get(row, "lot_id"));
        add_line(&t, row, by_day, lot ? lot : "?");
    }
    const json_t *totals = json_object_get(doc, "totals");
    if (json_is_object(totals) && json_array_size(rows) > 1)
        add_line(&t, totals, by_day, NULL);
    table_print(&t);
    if (json_array_size(rows) == 0)
        printf("(no activity from %s to %s)\n", json_string_value(json_object_get(doc, "from")),
               json_string_value(json_object_get(doc, "to")));
    cmn_free(t.cells);
    json_decref(doc);
    return 0;
}

/* ---- the command --------------------------------------------------------------------------- */

static int check_date(const char *opt, const char *s)
{
    int64_t day;
    if (s == NULL)
        return bad("%s DATE is required", opt);
    if (strlen(s) != 10 || cmn_date_parse(s, 10, &day) != 0)
        return bad("\"%s\" is not a date YYYY-MM-DD", s);
    return 0;
}

static int fetch(const char *url, const char *token, cmn_buf_t *resp, long *status)
{
    int rc = 1;
    char auth[600];
    struct curl_slist *headers = NULL;
    CURL *curl = curl_easy_init();
    if (curl == NULL)
        goto out;
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    headers = curl_slist_append(headers, auth);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 60000L);
    /* A command-line tool, not an event loop: waiting here blocks nobody. */
    CURLcode cc = curl_easy_perform(curl); /* checksrc: allow */
    if (cc != CURLE_OK) {
        fprintf(stderr, "parkctl: report: %s: %s\n", url, curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
    rc = 0;
out:
    curl_easy_cleanup(curl);
    curl_slist_free_all(headers);
    return rc;
}

int parkctl_report(int argc, char **argv)
{
    const char *from = NULL, *to = NULL, *lot = NULL, *group = "day", *url = NULL;
    const char *token = getenv("PARK_TOKEN"), *path = "config/platform.json";
    int csv = 0, rc = 1;
    char base[512], full[1024];
    cmn_buf_t resp;

    if (argc < 1 || strcmp(argv[0], "revenue") != 0)
        return bad("%s", "unknown report (parkctl report revenue --from DATE --to DATE ...)");
    for (int i = 1; i < argc; i++) {
        const char **slot = NULL;
        if (strcmp(argv[i], "--csv") == 0) {
            csv = 1;
            continue;
        }
        if (strcmp(argv[i], "--from") == 0)
            slot = &from;
        else if (strcmp(argv[i], "--to") == 0)
            slot = &to;
        else if (strcmp(argv[i], "--lot") == 0)
            slot = &lot;
        else if (strcmp(argv[i], "--group") == 0)
            slot = &group;
        else if (strcmp(argv[i], "--url") == 0)
            slot = &url;
        else if (strcmp(argv[i], "--token") == 0)
            slot = &token;
        else if (strcmp(argv[i], "--config") == 0)
            slot = &path;
        else
            return bad("unknown argument \"%s\" (see parkctl help)", argv[i]);
        if (i + 1 >= argc)
            return bad("%s needs a value", argv[i]);
        *slot = argv[++i];
    }
    if ((rc = check_date("--from", from)) != 0 || (rc = check_date("--to", to)) != 0)
        return rc;
    if (strcmp(group, "day") != 0 && strcmp(group, "lot") != 0)
        return bad("--group must be day or lot, not \"%s\"", group);
    if (lot != NULL && !cmn_is_ident(lot, 64))
        return bad("--lot \"%s\" is not a lot id", lot);
    if (token == NULL || token[0] == '\0')
        return bad("%s", "a token is required: --token TOKEN or PARK_TOKEN");
    if (url == NULL) {
        /* The gateway of the configuration. */
        cmn_config_t *cfg = NULL;
        cmn_diag_t diag;
        cmn_diag_init(&diag);
        rc = cmn_config_load(path, &cfg, &diag);
        if (rc != 0) {
            fprintf(stderr, "parkctl: report: invalid configuration %s: %s (or give --url)\n", path,
                    diag.n ? diag.msgs[0] : "cannot be read");
            cmn_diag_dispose(&diag);
            return EXIT_BAD_INPUT;
        }
        snprintf(base, sizeof base, "http://%s:%d", cfg->gateway.listen.host,
                 cfg->gateway.listen.port);
        cmn_diag_dispose(&diag);
        cmn_config_free(cfg);
        url = base;
    }
    snprintf(full, sizeof full, "%s/v1/reports/revenue?from=%s&to=%s&group=%s%s%s%s", url, from, to,
             group, lot ? "&lot_id=" : "", lot ? lot : "", csv ? "&format=csv" : "");
    long status = 0;
    cmn_buf_init(&resp, 256u << 20);
    rc = fetch(full, token, &resp, &status);
    if (rc != 0)
        goto out;
    if (status != 200) {
        json_error_t err;
        json_t *e = json_loads(resp.base ? resp.base : "", 0, &err);
        const char *msg = e ? json_string_value(json_object_get(e, "message")) : NULL;
        fprintf(stderr, "parkctl: report: the gateway answered %ld: %s\n", status,
                msg ? msg : "(no message)");
        json_decref(e);
        rc = status >= 400 && status < 500 ? EXIT_BAD_INPUT : 1;
        goto out;
    }
    if (csv) {
        fwrite(resp.base ? resp.base : "", 1, resp.len, stdout);
        rc = 0;
    } else {
        rc = print_table(resp.base ? resp.base : "", strcmp(group, "day") == 0);
    }
out:
    cmn_buf_dispose(&resp);
    return rc;
}
