/*
 * Reports for lot operators and city staff (docs/reports.md):
 *
 *   GET /v1/reports/revenue?from=DATE&to=DATE[&lot_id=L][&group=day|lot][&format=json|csv]
 *   GET /v1/reports/leakage?from=DATE&to=DATE[&lot_id=L][&group=day|lot][&format=json|csv]
 *   GET /v1/lots/{id}/occupancy
 *
 * Design note.  A report never scans sessions or bills: the lane and bill scripts keep per lot
 * and local day a hash of counters, pk:{L}:day:<date> (docs/redis.md), updated in the same script
 * as the change they count, money included (a bill's amount sits in one bucket of the lot-day of
 * its exit and moves between buckets as its status changes).  A report reads one hash per lot-day
 * it covers, with HGETALL, pipelined: at most REPORT_WINDOW commands in flight, the next sent as
 * each answer arrives, so a year of every lot costs a few hundred round trips' worth of Redis time
 * and the loop is never held for long.  Days without a hash had no activity and are left out of
 * the rows.
 *
 * Who may read: admin and city, every lot; an operator, its own lots (another operator's lot is a
 * 403); a driver nothing (403).  Tokens are checked by gw_authenticate (auth.h).
 */
#include <http_parser.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "cmn/buf.h"
#include "cmn/mem.h"
#include "cmn/rargs.h"
#include "cmn/tariff.h"
#include "cmn/time.h"
#include "gw.h"

#define REPORT_MAX_DAYS 366
#define REPORT_WINDOW 256      /* HGETALLs in flight per report */
#define REPORT_MAX_ROWS 100000 /* lot-days of one group=day answer */
#define REPORT_MAX_REASONS 32  /* distinct hold and opening reasons told apart */
#define REPORT_MAX_BYTES (64u << 20)

/* The counters a report reads from a lot-day hash, by their field names in Redis. */
enum {
    F_ENTRIES,
    F_EXITS,
    F_BILLS,
    F_BILLED,
    F_PAID,
    F_PAID_LATE,
    F_PAID_ON_SITE,
    F_OUTSTANDING,
    F_OVERDUE,
    F_DEFAULTED,
    F_WAIVED,
    F_REFUNDED,
    F_STAYS,
    F_STAY_S,
    F_PEAK,
    F_EXITS_UNMATCHED,
    F_STALE,
    F_MATCH_EXACT,
    F_MATCH_CANDIDATE,
    F_MATCH_FUZZY,
    F_MANUAL_OPEN,
    F_REASSIGNED,
    F_MERGED,
    F_SPLIT,
    F_COUNT
};

static const char *const field_names[F_COUNT] = {
    "entries",         "exits",        "bills",       "billed",          "paid",
    "paid_late",       "paid_on_site", "outstanding", "overdue",         "defaulted",
    "waived",          "refunded",     "stays",       "stay_s",          "occupancy_peak",
    "exits_unmatched", "stale_closed", "match:exact", "match:candidate", "match:fuzzy",
    "manual_open",     "reassigned",   "merged",      "split"};

/* The money buckets, in the order of the identity billed = the sum of them. */
static const int buckets[] = {F_PAID,    F_PAID_LATE, F_PAID_ON_SITE, F_OUTSTANDING,
                              F_OVERDUE, F_DEFAULTED, F_WAIVED,       F_REFUNDED};

enum { REPORT_REVENUE = 0, REPORT_LEAKAGE };

struct row {
    int present;
    size_t lot; /* index in the configuration's lots */
    int64_t day;
    long long f[F_COUNT];
    long long holds[REPORT_MAX_REASONS];
};

struct cmd {
    struct report *r;
    size_t idx; /* lot position * ndays + day offset */
};

struct report {
    gw_t *gw;
    gw_conf_t *conf;
    cmn_httpd_req_t *req;
    int kind;
    int group_lot;
    int csv;
    int64_t from, to, ndays;
    size_t *lots; /* configuration indices of the lots covered */
    size_t nlots;
    struct row *rows; /* group=day: nlots * ndays; group=lot: nlots */
    struct cmd *cmds;
    size_t total, next, inflight, done;
    int failed;
    char reasons[REPORT_MAX_REASONS][40]; /* hold reasons seen, by index */
    int nreasons;
    char lot_id[72];
};

static void report_free(struct report *r)
{
    gw_conf_unref(r->conf);
    cmn_free(r->lots);
    cmn_free(r->rows);
    cmn_free(r->cmds);
    cmn_free(r);
}

static void fail(gw_t *gw, cmn_httpd_req_t *req, int status, const char *code, const char *msg)
{
    gw_metrics_error(&gw->metrics, code);
    gw_respond_error(req, status, code, "%s", msg);
}

/* ---- the query string -------------------------------------------------------------------- */

static int unhex1(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The value of `key` in the request's query, percent-decoded into out: 1 found, 0 absent, -1 too
 * long or badly encoded.  The last occurrence wins. */
static int query_get(const cmn_httpd_req_t *req, const char *key, char *out, size_t outsz)
{
    const char *q = memchr(req->url, '?', req->url_len);
    const char *end = req->url + req->url_len;
    size_t klen = strlen(key);
    int found = 0;
    if (q == NULL)
        return 0;
    for (const char *p = q + 1; p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        const char *kend = eq ? eq : stop;
        if ((size_t)(kend - p) == klen && memcmp(p, key, klen) == 0) {
            size_t o = 0;
            found = 1;
            for (const char *v = eq ? eq + 1 : stop; v < stop; v++) {
                char c = *v;
                if (c == '+') {
                    c = ' ';
                } else if (c == '%') {
                    if (stop - v < 3 || unhex1(v[1]) < 0 || unhex1(v[2]) < 0)
                        return -1;
                    c = (char)(unhex1(v[1]) << 4 | unhex1(v[2]));
                    v += 2;
                }
                if (o + 1 >= outsz || c == '\0')
                    return -1;
                out[o++] = c;
            }
            out[o] = '\0';
        }
        p = stop + 1;
    }
    return found;
}

static int parse_day(const char *s, int64_t *day)
{
    size_t n = strlen(s);
    return n == 10 && cmn_date_parse(s, n, day) == 0 ? 0 : -1;
}

/* Whether the client asked for CSV: format=csv, or an Accept header naming text/csv (format=json
 * wins over Accept).  -1: an unknown format. */
static int wants_csv(const cmn_httpd_req_t *req)
{
    char fmt[16];
    int rc = query_get(req, "format", fmt, sizeof fmt);
    if (rc < 0)
        return -1;
    if (rc == 1)
        return strcmp(fmt, "csv") == 0 ? 1 : strcmp(fmt, "json") == 0 ? 0 : -1;
    size_t len;
    const char *accept = cmn_httpd_req_header(req, "Accept", &len);
    for (size_t i = 0; accept != NULL && i + 8 <= len; i++) {
        if (strncmp(accept + i, "text/csv", 8) == 0)
            return 1;
    }
    return 0;
}

/* ---- counters ---------------------------------------------------------------------------- */

static int reason_index(struct report *r, const char *name)
{
    if (strlen(name) >= sizeof r->reasons[0])
        name = "other";
    for (int i = 0; i < r->nreasons; i++) {
        if (strcmp(r->reasons[i], name) == 0)
            return i;
    }
    if (r->nreasons < REPORT_MAX_REASONS - 1) {
        snprintf(r->reasons[r->nreasons], sizeof r->reasons[0], "%s", name);
        return r->nreasons++;
    }
    /* The last slot gathers whatever does not fit: never expected with the lanes' reasons. */
    if (r->nreasons == REPORT_MAX_REASONS - 1)
        snprintf(r->reasons[r->nreasons++], sizeof r->reasons[0], "other");
    return REPORT_MAX_REASONS - 1;
}

/* Adds src into dst: sums, but the peak occupancy is the highest. */
static void row_add(struct row *dst, const struct row *src)
{
    for (int i = 0; i < F_COUNT; i++) {
        if (i == F_PEAK)
            dst->f[i] = src->f[i] > dst->f[i] ? src->f[i] : dst->f[i];
        else
            dst->f[i] += src->f[i];
    }
    for (int i = 0; i < REPORT_MAX_REASONS; i++)
        dst->holds[i] += src->holds[i];
    dst->present |= src->present;
}

static void on_day(void *data, int status, redisReply *reply);

/* Sends HGETALLs until the window is full or every lot-day is asked for. */
static void pump(struct report *r)
{
    while (r->inflight < REPORT_WINDOW && r->next < r->total && !r->failed) {
        size_t idx = r->next++;
        const cmn_cfg_lot_t *lot = &r->conf->cfg->lots[r->lots[idx / (size_t)r->ndays]];
        char date[16];
        cmn_date_format(r->from + (int64_t)(idx % (size_t)r->ndays), date, sizeof date);
        cmn_rargs_t a;
        cmn_rargs_init(&a);
        cmn_rargs_str(&a, "HGETALL");
        cmn_rargs_fmt(&a, "pk:{%s}:day:%s", lot->id, date);
        struct cmd *c = &r->cmds[idx];
        c->r = r;
        c->idx = idx;
        if (r->gw->redis == NULL ||
            cmn_redis_command(r->gw->redis, on_day, c, a.n, a.v, a.len) != 0) {
            r->failed = 1;
            r->done += r->total - idx; /* this one and those never sent */
            r->next = r->total;
            break;
        }
        r->inflight++;
    }
}

static void finish(struct report *r);

static void on_day(void *data, int status, redisReply *reply)
{
    struct cmd *c = data;
    struct report *r = c->r;
    r->inflight--;
    r->done++;
    if (status != 0 || reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        r->failed = 1;
    } else if (reply->elements > 0) {
        size_t lotpos = c->idx / (size_t)r->ndays;
        struct row day;
        memset(&day, 0, sizeof day);
        day.present = 1;
        for (size_t i = 0; i + 1 < reply->elements; i += 2) {
            const char *k = reply->element[i]->str, *v = reply->element[i + 1]->str;
            if (k == NULL || v == NULL)
                continue;
            long long n = strtoll(v, NULL, 10);
            if (strncmp(k, "hold:", 5) == 0) {
                day.holds[reason_index(r, k + 5)] += n;
                continue;
            }
            for (int f = 0; f < F_COUNT; f++) {
                if (strcmp(k, field_names[f]) == 0) {
                    day.f[f] = n;
                    break;
                }
            }
        }
        struct row *dst = r->group_lot ? &r->rows[lotpos] : &r->rows[c->idx];
        row_add(dst, &day);
    }
    if (!r->failed)
        pump(r);
    if (r->done == r->total)
        finish(r);
}

/* ---- rendering --------------------------------------------------------------------------- */

static long long average_stay(const struct row *w)
{
    return w->f[F_STAYS] > 0 ? (w->f[F_STAY_S] + w->f[F_STAYS] / 2) / w->f[F_STAYS] : -1;
}

static long long exits_matched(const struct row *w)
{
    return w->f[F_MATCH_EXACT] + w->f[F_MATCH_CANDIDATE] + w->f[F_MATCH_FUZZY];
}

static long long holds_total(const struct report *r, const struct row *w)
{
    long long n = 0;
    for (int i = 0; i < r->nreasons; i++)
        n += w->holds[i];
    return n;
}

/* The reconciliation rate in 1/10000: exits matched to an entry over exit reads; -1 without any. */
static long long rate_bp(const struct row *w)
{
    long long reads = exits_matched(w) + w->f[F_EXITS_UNMATCHED];
    return reads > 0 ? (exits_matched(w) * 10000 + reads / 2) / reads : -1;
}

static void json_int_or_null(json_t *o, const char *k, long long v)
{
    json_object_set_new(o, k, v < 0 ? json_null() : json_integer(v));
}

static json_t *row_json(const struct report *r, const struct row *w, const char *lot,
                        const char *currency)
{
    json_t *o = json_object();
    char date[16];
    if (lot != NULL)
        json_object_set_new(o, "lot_id", json_string(lot));
    if (lot != NULL && !r->group_lot) {
        cmn_date_format(w->day, date, sizeof date);
        json_object_set_new(o, "date", json_string(date));
    }
    if (r->kind == REPORT_REVENUE) {
        json_object_set_new(o, "currency", currency ? json_string(currency) : json_null());
        json_object_set_new(o, "entries", json_integer(w->f[F_ENTRIES]));
        json_object_set_new(o, "exits", json_integer(w->f[F_EXITS]));
        json_object_set_new(o, "bills", json_integer(w->f[F_BILLS]));
        json_object_set_new(o, "billed", json_integer(w->f[F_BILLED]));
        for (size_t i = 0; i < sizeof buckets / sizeof *buckets; i++)
            json_object_set_new(o, field_names[buckets[i]], json_integer(w->f[buckets[i]]));
        json_object_set_new(o, "stays", json_integer(w->f[F_STAYS]));
        json_object_set_new(o, "stay_seconds", json_integer(w->f[F_STAY_S]));
        json_int_or_null(o, "average_stay_s", average_stay(w));
        json_object_set_new(o, "peak_occupancy", json_integer(w->f[F_PEAK]));
        return o;
    }
    long long bp = rate_bp(w);
    json_object_set_new(o, "exit_reads", json_integer(exits_matched(w) + w->f[F_EXITS_UNMATCHED]));
    json_object_set_new(o, "exits_matched", json_integer(exits_matched(w)));
    json_object_set_new(o, "matched_exact", json_integer(w->f[F_MATCH_EXACT]));
    json_object_set_new(o, "matched_candidate", json_integer(w->f[F_MATCH_CANDIDATE]));
    json_object_set_new(o, "matched_fuzzy", json_integer(w->f[F_MATCH_FUZZY]));
    json_object_set_new(o, "exits_unmatched", json_integer(w->f[F_EXITS_UNMATCHED]));
    json_object_set_new(o, "reconciliation_rate", bp < 0 ? json_null() : json_real(bp / 10000.0));
    json_object_set_new(o, "entries", json_integer(w->f[F_ENTRIES]));
    json_object_set_new(o, "entries_unmatched", json_integer(w->f[F_STALE]));
    int unreadable = -1;
    for (int i = 0; i < r->nreasons; i++) {
        if (strcmp(r->reasons[i], "unreadable") == 0)
            unreadable = i;
    }
    json_object_set_new(o, "unreadable", json_integer(unreadable < 0 ? 0 : w->holds[unreadable]));
    json_object_set_new(o, "holds", json_integer(holds_total(r, w)));
    json_t *by = json_object();
    for (int i = 0; i < r->nreasons; i++) {
        if (w->holds[i] != 0)
            json_object_set_new(by, r->reasons[i], json_integer(w->holds[i]));
    }
    json_object_set_new(o, "holds_by_reason", by);
    json_object_set_new(o, "manual_open", json_integer(w->f[F_MANUAL_OPEN]));
    json_object_set_new(o, "reassigned", json_integer(w->f[F_REASSIGNED]));
    json_object_set_new(o, "merged", json_integer(w->f[F_MERGED]));
    json_object_set_new(o, "split", json_integer(w->f[F_SPLIT]));
    return o;
}

/* The reasons seen, sorted by name, as indices (CSV columns are stable for a given answer). */
static int sorted_reasons(const struct report *r, int *order)
{
    int n = r->nreasons;
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int i = 1; i < n; i++) {
        for (int k = i; k > 0 && strcmp(r->reasons[order[k - 1]], r->reasons[order[k]]) > 0; k--) {
            int t = order[k];
            order[k] = order[k - 1];
            order[k - 1] = t;
        }
    }
    return n;
}

/* Appends to a CSV answer; *err records that the answer outgrew its cap. */
static void emit(cmn_buf_t *b, int *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void emit(cmn_buf_t *b, int *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (cmn_buf_vprintf(b, fmt, ap) != 0)
        *err = 1;
    va_end(ap);
}

static void csv_header(const struct report *r, cmn_buf_t *b, int *err, const int *order, int nr)
{
    emit(b, err, "%s", r->group_lot ? "lot_id" : "lot_id,date");
    if (r->kind == REPORT_REVENUE) {
        emit(b, err, ",currency,entries,exits,bills,billed");
        for (size_t i = 0; i < sizeof buckets / sizeof *buckets; i++)
            emit(b, err, ",%s", field_names[buckets[i]]);
        emit(b, err, ",stays,stay_seconds,average_stay_s,peak_occupancy\r\n");
        return;
    }
    emit(b, err,
         ",exit_reads,exits_matched,matched_exact,matched_candidate,matched_fuzzy,"
         "exits_unmatched,reconciliation_rate,entries,entries_unmatched,unreadable,"
         "holds");
    for (int i = 0; i < nr; i++)
        emit(b, err, ",hold:%s", r->reasons[order[i]]);
    emit(b, err, ",manual_open,reassigned,merged,split\r\n");
}

static void csv_row(const struct report *r, cmn_buf_t *b, int *err, const struct row *w,
                    const char *lot, const char *currency, const int *order, int nr)
{
    char date[16];
    emit(b, err, "%s", lot);
    if (!r->group_lot) {
        cmn_date_format(w->day, date, sizeof date);
        emit(b, err, ",%s", date);
    }
    if (r->kind == REPORT_REVENUE) {
        emit(b, err, ",%s,%lld,%lld,%lld,%lld", currency ? currency : "", w->f[F_ENTRIES],
             w->f[F_EXITS], w->f[F_BILLS], w->f[F_BILLED]);
        for (size_t i = 0; i < sizeof buckets / sizeof *buckets; i++)
            emit(b, err, ",%lld", w->f[buckets[i]]);
        emit(b, err, ",%lld,%lld,", w->f[F_STAYS], w->f[F_STAY_S]);
        if (average_stay(w) >= 0)
            emit(b, err, "%lld", average_stay(w));
        emit(b, err, ",%lld\r\n", w->f[F_PEAK]);
        return;
    }
    long long bp = rate_bp(w), unreadable = 0;
    for (int i = 0; i < r->nreasons; i++) {
        if (strcmp(r->reasons[i], "unreadable") == 0)
            unreadable = w->holds[i];
    }
    emit(b, err, ",%lld,%lld,%lld,%lld,%lld,%lld,", exits_matched(w) + w->f[F_EXITS_UNMATCHED],
         exits_matched(w), w->f[F_MATCH_EXACT], w->f[F_MATCH_CANDIDATE], w->f[F_MATCH_FUZZY],
         w->f[F_EXITS_UNMATCHED]);
    if (bp >= 0)
        emit(b, err, "%lld.%04lld", bp / 10000, bp % 10000);
    emit(b, err, ",%lld,%lld,%lld,%lld", w->f[F_ENTRIES], w->f[F_STALE], unreadable,
         holds_total(r, w));
    for (int i = 0; i < nr; i++)
        emit(b, err, ",%lld", w->holds[order[i]]);
    emit(b, err, ",%lld,%lld,%lld,%lld\r\n", w->f[F_MANUAL_OPEN], w->f[F_REASSIGNED],
         w->f[F_MERGED], w->f[F_SPLIT]);
}

static void finish(struct report *r)
{
    const cmn_config_t *cfg = r->conf->cfg;
    if (r->failed) {
        fail(r->gw, r->req, 503, "unavailable", "Redis is unavailable");
        return report_free(r);
    }
    size_t nrows = r->group_lot ? r->nlots : r->nlots * (size_t)r->ndays;
    struct row total;
    memset(&total, 0, sizeof total);
    const char *currency = NULL;
    int mixed = 0;
    for (size_t i = 0; i < r->nlots; i++) {
        const char *c = cmn_tariff_currency(cfg->lots[r->lots[i]].tariff);
        if (currency != NULL && strcmp(currency, c) != 0)
            mixed = 1;
        currency = c;
    }
    int order[REPORT_MAX_REASONS];
    int nr = sorted_reasons(r, order);
    if (r->csv) {
        cmn_buf_t b;
        int err = 0;
        cmn_buf_init(&b, REPORT_MAX_BYTES);
        csv_header(r, &b, &err, order, nr);
        for (size_t i = 0; i < nrows; i++) {
            const struct row *w = &r->rows[i];
            const cmn_cfg_lot_t *lot = &cfg->lots[w->lot];
            if (w->present || r->group_lot)
                csv_row(r, &b, &err, w, lot->id, cmn_tariff_currency(lot->tariff), order, nr);
        }
        if (err) {
            fail(r->gw, r->req, 500, "internal", "the report is too large");
        } else {
            cmn_httpd_respond(r->req, 200, "text/csv; charset=utf-8", b.base ? b.base : "", b.len,
                              NULL);
        }
        cmn_buf_dispose(&b);
        return report_free(r);
    }
    json_t *o = json_object(), *rows = json_array(), *lots = json_array();
    char from[16], to[16];
    cmn_date_format(r->from, from, sizeof from);
    cmn_date_format(r->to, to, sizeof to);
    json_object_set_new(o, "report",
                        json_string(r->kind == REPORT_REVENUE ? "revenue" : "leakage"));
    json_object_set_new(o, "from", json_string(from));
    json_object_set_new(o, "to", json_string(to));
    json_object_set_new(o, "group", json_string(r->group_lot ? "lot" : "day"));
    for (size_t i = 0; i < r->nlots; i++)
        json_array_append_new(lots, json_string(cfg->lots[r->lots[i]].id));
    json_object_set_new(o, "lots", lots);
    for (size_t i = 0; i < nrows; i++) {
        const struct row *w = &r->rows[i];
        const cmn_cfg_lot_t *lot = &cfg->lots[w->lot];
        if (!w->present && !r->group_lot)
            continue;
        json_array_append_new(rows, row_json(r, w, lot->id, cmn_tariff_currency(lot->tariff)));
        row_add(&total, w);
    }
    json_object_set_new(o, "rows", rows);
    /* Totals of amounts only mean something in one currency. */
    json_object_set_new(o, "totals",
                        mixed && r->kind == REPORT_REVENUE ? json_null()
                                                           : row_json(r, &total, NULL, currency));
    gw_respond_json(r->req, 200, o);
    report_free(r);
}

/* ---- the request ------------------------------------------------------------------------- */

/* Rejects a principal that may read no report: 0 when it may go on, else answered. */
static int check_role(gw_t *gw, cmn_httpd_req_t *req, int status, const gw_principal_t *who,
                      const char *why)
{
    if (status == 503) {
        fail(gw, req, 503, "unavailable", why ? why : "Redis is unavailable");
        return -1;
    }
    if (status != 0 || who == NULL) {
        fail(gw, req, 401, "unauthorized", why ? why : "a valid token is required");
        return -1;
    }
    if (who->role != GW_ROLE_ADMIN && who->role != GW_ROLE_CITY && who->role != GW_ROLE_OPERATOR) {
        fail(gw, req, 403, "forbidden", "reports are for lot operators and city staff");
        return -1;
    }
    return 0;
}

/* The lots the report covers: the one named, or every lot the principal may see. */
static int choose_lots(struct report *r, const gw_principal_t *who)
{
    const cmn_config_t *cfg = r->conf->cfg;
    r->lots = cmn_xcalloc(cfg->nlots ? cfg->nlots : 1, sizeof *r->lots);
    if (r->lot_id[0] != '\0') {
        const cmn_cfg_lot_t *lot = cmn_config_lot(cfg, r->lot_id);
        if (lot == NULL) {
            fail(r->gw, r->req, 404, "not_found", "no such lot");
            return -1;
        }
        if (!gw_may_lot(who, cfg, r->lot_id)) {
            fail(r->gw, r->req, 403, "forbidden", "this lot is another operator's");
            return -1;
        }
        r->lots[r->nlots++] = (size_t)(lot - cfg->lots);
        return 0;
    }
    for (size_t i = 0; i < cfg->nlots; i++) {
        if (gw_may_lot(who, cfg, cfg->lots[i].id))
            r->lots[r->nlots++] = i;
    }
    return 0;
}

/* from, to, lot_id, group and format: 0, or answered 400. */
static int parse_query(struct report *r)
{
    char from[16], to[16], group[8];
    int hf = query_get(r->req, "from", from, sizeof from);
    int ht = query_get(r->req, "to", to, sizeof to);
    int hg = query_get(r->req, "group", group, sizeof group);
    int hl = query_get(r->req, "lot_id", r->lot_id, sizeof r->lot_id);
    const char *why = NULL;
    char msg[160];
    if (hf == 0 || ht == 0)
        why = "from and to are required: dates YYYY-MM-DD";
    else if (hf < 0 || parse_day(from, &r->from) != 0)
        why = "from must be a date YYYY-MM-DD";
    else if (ht < 0 || parse_day(to, &r->to) != 0)
        why = "to must be a date YYYY-MM-DD";
    else if (r->from > r->to)
        why = "from is after to";
    else if (r->to - r->from + 1 > REPORT_MAX_DAYS) {
        snprintf(msg, sizeof msg, "at most %d days at once (from %s to %s is %lld days)",
                 REPORT_MAX_DAYS, from, to, (long long)(r->to - r->from + 1));
        why = msg;
    } else if (hg < 0 || (hg == 1 && strcmp(group, "day") != 0 && strcmp(group, "lot") != 0))
        why = "group must be day or lot";
    else if ((r->csv = wants_csv(r->req)) < 0)
        why = "format must be json or csv";
    else if (hl < 0 || (hl == 1 && !cmn_is_ident(r->lot_id, 64)))
        why = "lot_id is not a lot id";
    if (why != NULL) {
        fail(r->gw, r->req, 400, "bad_request", why);
        return -1;
    }
    if (hl != 1)
        r->lot_id[0] = '\0';
    r->group_lot = hg == 1 && strcmp(group, "lot") == 0;
    r->ndays = r->to - r->from + 1;
    return 0;
}

static void on_report_auth(void *data, int status, const gw_principal_t *who, const char *why)
{
    struct report *r = data;
    if (check_role(r->gw, r->req, status, who, why) != 0 || parse_query(r) != 0 ||
        choose_lots(r, who) != 0)
        return report_free(r);
    size_t nrows = r->group_lot ? r->nlots : r->nlots * (size_t)r->ndays;
    if (!r->group_lot && nrows > REPORT_MAX_ROWS) {
        fail(r->gw, r->req, 400, "bad_request",
             "too many lot-days for one answer: name a lot_id or use group=lot");
        return report_free(r);
    }
    if (r->gw->redis == NULL || !cmn_redis_ready(r->gw->redis)) {
        fail(r->gw, r->req, 503, "unavailable", "Redis is unavailable");
        return report_free(r);
    }
    r->rows = cmn_xcalloc(nrows ? nrows : 1, sizeof *r->rows);
    for (size_t i = 0; i < nrows; i++) {
        r->rows[i].lot = r->lots[r->group_lot ? i : i / (size_t)r->ndays];
        r->rows[i].day = r->group_lot ? r->from : r->from + (int64_t)(i % (size_t)r->ndays);
    }
    r->total = r->nlots * (size_t)r->ndays;
    r->cmds = cmn_xcalloc(r->total ? r->total : 1, sizeof *r->cmds);
    if (r->total == 0)
        return finish(r); /* an operator without lots: an empty report */
    pump(r);
    if (r->done == r->total)
        finish(r); /* nothing could be sent */
}

void gw_h_reports(gw_t *gw, cmn_httpd_req_t *req, const char *name, size_t n)
{
    int kind;
    if (n == 7 && memcmp(name, "revenue", 7) == 0)
        kind = REPORT_REVENUE;
    else if (n == 7 && memcmp(name, "leakage", 7) == 0)
        kind = REPORT_LEAKAGE;
    else
        return fail(gw, req, 404, "not_found", "no such report (revenue, leakage)");
    if (req->method != HTTP_GET)
        return fail(gw, req, 405, "method_not_allowed", "use GET");
    struct report *r = cmn_xcalloc(1, sizeof *r);
    r->gw = gw;
    r->conf = gw_conf_ref(gw);
    r->req = req;
    r->kind = kind;
    gw_authenticate(gw, req, on_report_auth, r);
}

/* ---- occupancy --------------------------------------------------------------------------- */

struct occ {
    gw_t *gw;
    gw_conf_t *conf;
    cmn_httpd_req_t *req;
    char lot[72];
    long long open, held;
    int pending, failed;
};

static void occ_free(struct occ *o)
{
    gw_conf_unref(o->conf);
    cmn_free(o);
}

struct occ_cmd {
    struct occ *o;
    long long *out;
};

static void on_occ_len(void *data, int status, redisReply *reply)
{
    struct occ_cmd *c = data;
    struct occ *o = c->o;
    if (status != 0 || reply == NULL)
        o->failed = 1;
    else if (reply->type == REDIS_REPLY_INTEGER)
        *c->out = reply->integer;
    else if (reply->type == REDIS_REPLY_STRING)
        *c->out = strtoll(reply->str, NULL, 10);
    else if (reply->type != REDIS_REPLY_NIL)
        o->failed = 1; /* nil: no session was ever opened at the lot */
    cmn_free(c);
    if (--o->pending > 0)
        return;
    if (o->failed) {
        fail(o->gw, o->req, 503, "unavailable", "Redis is unavailable");
        return occ_free(o);
    }
    const cmn_cfg_lot_t *lot = cmn_config_lot(o->conf->cfg, o->lot);
    long long cap = lot ? (long long)lot->capacity : 0, free_ = cap - o->open;
    json_t *j = json_object();
    json_object_set_new(j, "lot_id", json_string(o->lot));
    json_object_set_new(j, "capacity", json_integer(cap));
    json_object_set_new(j, "open_sessions", json_integer(o->open));
    json_object_set_new(j, "free", json_integer(free_ > 0 ? free_ : 0));
    json_object_set_new(j, "held", json_integer(o->held));
    json_object_set_new(j, "at", json_integer(gw_now(o->gw)));
    gw_respond_json(o->req, 200, j);
    occ_free(o);
}

static void occ_send(struct occ *o, const char *what, long long *out)
{
    struct occ_cmd *c = cmn_xcalloc(1, sizeof *c);
    cmn_rargs_t a;
    c->o = o;
    c->out = out;
    cmn_rargs_init(&a);
    if (strcmp(what, "open") == 0) {
        cmn_rargs_str(&a, "HGET");
        cmn_rargs_fmt(&a, "pk:{%s}:meta", o->lot);
        cmn_rargs_str(&a, "occ");
    } else {
        cmn_rargs_str(&a, "HLEN");
        cmn_rargs_fmt(&a, "pk:{%s}:%s", o->lot, what);
    }
    o->pending++;
    if (cmn_redis_command(o->gw->redis, on_occ_len, c, a.n, a.v, a.len) != 0) {
        /* Counted as answered at once: the other command's answer finishes the request, or the
         * caller does when none was sent. */
        o->pending--;
        o->failed = 1;
        cmn_free(c);
    }
}

static void on_occ_auth(void *data, int status, const gw_principal_t *who, const char *why)
{
    struct occ *o = data;
    if (check_role(o->gw, o->req, status, who, why) != 0)
        return occ_free(o);
    if (cmn_config_lot(o->conf->cfg, o->lot) == NULL) {
        fail(o->gw, o->req, 404, "not_found", "no such lot");
        return occ_free(o);
    }
    if (!gw_may_lot(who, o->conf->cfg, o->lot)) {
        fail(o->gw, o->req, 403, "forbidden", "this lot is another operator's");
        return occ_free(o);
    }
    if (o->gw->redis == NULL || !cmn_redis_ready(o->gw->redis)) {
        fail(o->gw, o->req, 503, "unavailable", "Redis is unavailable");
        return occ_free(o);
    }
    /* Occupancy is the number of open sessions (pk:{L}:meta occ, docs/redis.md). */
    o->pending = 1; /* held until both are sent */
    occ_send(o, "open", &o->open);
    occ_send(o, "held", &o->held);
    if (--o->pending == 0) {
        fail(o->gw, o->req, 503, "unavailable", "Redis is unavailable");
        occ_free(o);
    }
}

void gw_h_occupancy(gw_t *gw, cmn_httpd_req_t *req, const char *lot, size_t n)
{
    if (req->method != HTTP_GET)
        return fail(gw, req, 405, "method_not_allowed", "use GET");
    struct occ *o = cmn_xcalloc(1, sizeof *o);
    if (n == 0 || n >= sizeof o->lot) {
        cmn_free(o);
        return fail(gw, req, 404, "not_found", "no such lot");
    }
    memcpy(o->lot, lot, n);
    o->lot[n] = '\0';
    if (!cmn_is_ident(o->lot, 64)) {
        cmn_free(o);
        return fail(gw, req, 404, "not_found", "no such lot");
    }
    o->gw = gw;
    o->conf = gw_conf_ref(gw);
    o->req = req;
    gw_authenticate(gw, req, on_occ_auth, o);
}
