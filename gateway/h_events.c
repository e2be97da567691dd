/*
 * POST /v1/events: a lane's plate read, answered `open` or `hold` (docs/lane-api.md).
 *
 * Design note.  Validation happens first, in the order of the error table (401, 400, 403), so a
 * request that reaches Redis is well formed and authorised.  Then:
 *
 *   entry  one round trip: the `entry` script checks the idempotency record, closes a stale session
 *          of the same plate (a second trip when there is one: the gateway needs its record and,
 *          for close_charged, computes its fee), checks capacity and opens the session.
 *   exit   two round trips.  First, pipelined: `exit_lookup` (idempotency record, then the open
 *          session by exact plate, the read's candidates, or a unique confusable match) and the
 *          plate index buckets of the read and of its candidates, which hold a copy of each
 *          enrolled driver's credit record (a match is always in one of those buckets, because
 *          plates that match share their province-folded confusable key).  Then the gateway
 *          computes the fee and decides, and `exit_commit` applies the decision if the session is
 *          still as read, atomically with the idempotency record and the lot-day counters.  When
 *          a bill was created, the driver's record is updated afterwards (driver_bill, then the
 *          plate copies): not on the answer's path, idempotent, and done again by billing.
 *
 * Every script touches the keys of one lot only ({lot} hash tag), so the decision is atomic on a
 * single Redis server and on a Redis Cluster alike.  The driver update lives in the driver's slot;
 * between an exit and that update a second exit of the same driver at another lot can still pass
 * the unpaid limit: the limit can be overshot by the fees of exits decided concurrently.
 *
 * Answers are stored with the idempotency record as a tuple and rendered by answer_json(), so a
 * replay is the same JSON byte for byte.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn/crypto.h"
#include "cmn/driver.h"
#include "cmn/err.h"
#include "cmn/json.h"
#include "cmn/log.h"
#include "cmn/mem.h"
#include "cmn/money.h"
#include "cmn/plate.h"
#include "cmn/time.h"
#include "events.h"
#include "gw.h"
#include "cmn/rargs.h"
#include "router.h"

#define US "\x1f"
#define MAX_CANDIDATES 8
#define MAX_ATTEMPTS 3
#define RECORD_TTL_S (35 * 86400) /* closed sessions without a bill */

typedef struct cand {
    char plate[CMN_PLATE_MAX];
    char fold[CMN_PLATE_MAX];
} cand_t;

/* What exit_lookup found. */
struct lookup {
    char kind[16]; /* exact | candidate | fuzzy | none */
    char seq[24];
    char *record; /* open session record as read */
    char *held;   /* held info or NULL */
    char *tariff_json;
    char why[16];
    char reserved[24];
    int runtime_pass; /* a pass or allow-list entry added at runtime (pk:{L}:passes, :allow) */
};

/* A driver's credit copy from the plate index. */
struct credit {
    int found;
    char plate[CMN_PLATE_MAX];
    cmn_snapshot_t d; /* the plate's copy of its driver's record */
};

typedef struct ev {
    gw_t *gw;
    gw_conf_t *conf;
    cmn_httpd_req_t *req;
    const cmn_cfg_device_t *dev;
    const cmn_cfg_lot_t *lot;
    const cmn_cfg_lane_t *lane;
    int dir;
    char event_id[65];
    char device[65];
    int unreadable;
    char plate[CMN_PLATE_MAX];
    char fold[CMN_PLATE_MAX];
    int plate_valid;
    cmn_plate_kind_t kind;
    char vclass[33];
    cmn_instant_t ts;
    cand_t cands[MAX_CANDIDATES];
    int ncands;
    unsigned char idem_field[GW_IDEM_FIELD_LEN];
    unsigned char body_hash[GW_IDEM_HASH_LEN];
    char tag[80];         /* "{lot}" */
    int attempts;
    /* exit, first round trip */
    int pending;
    int failed; /* a reply was missing: answer 503 */
    struct lookup found;
    char **buckets; /* plate index replies: flat plate, snapshot, plate, snapshot... */
    size_t nbuckets;
    /* entry, stale session */
    char stale_seq[24];
    char *stale_record;
} ev_t;

static void ev_free(ev_t *e)
{
    gw_conf_unref(e->conf);
    cmn_free(e->found.record);
    cmn_free(e->found.held);
    cmn_free(e->found.tariff_json);
    for (size_t i = 0; i < e->nbuckets; i++)
        cmn_free(e->buckets[i]);
    cmn_free(e->buckets);
    cmn_free(e->stale_record);
    cmn_free(e);
}

/* ---- answers ----------------------------------------------------------------------------- */

static const char *const answer_names[] = {"decision", "reason",   "match",    "session_id",
                                           "bill_id",  "amount",   "currency", "display"};

/* Splits a stored answer into its 8 fields; -1 when it has another number of them. */
static int answer_split(const char *tuple, size_t len, const char *f[8], size_t fl[8])
{
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= len && n < 8; i++) {
        if (i == len || tuple[i] == '\x1f') {
            f[n] = tuple + start;
            fl[n] = i - start;
            n++;
            start = i + 1;
        }
    }
    return n == 8 ? 0 : -1;
}

static long long answer_amount(const char *s, size_t len)
{
    char num[24];
    size_t k = len < sizeof num - 1 ? len : sizeof num - 1;
    memcpy(num, s, k);
    num[k] = '\0';
    return strtoll(num, NULL, 10);
}

int gw_answer_render(const char *tuple, size_t len, json_t **out)
{
    const char *f[8];
    size_t fl[8];
    if (answer_split(tuple, len, f, fl) != 0)
        return CMN_EPARSE;
    json_t *o = json_object();
    for (int i = 0; i < 8; i++) {
        if (fl[i] == 0)
            json_object_set_new(o, answer_names[i], json_null());
        else if (i == 5)
            json_object_set_new(o, answer_names[i], json_integer(answer_amount(f[i], fl[i])));
        else
            json_object_set_new(o, answer_names[i], json_stringn(f[i], fl[i]));
    }
    *out = o;
    return 0;
}

/* The same answer as gw_answer_render gives, written as JSON text without the jansson object
 * (every event answers one).  CMN_EINVAL for a field that is not UTF-8: the caller then renders
 * it the old way, which leaves that member out. */
static int answer_write(const char *f[8], const size_t fl[8], cmn_buf_t *b)
{
    size_t need = 120; /* the names, quotes and commas */
    for (int i = 0; i < 8; i++)
        need += fl[i];
    int rc = cmn_buf_reserve(b, need + need / 4); /* room for some escapes: grown once */
    rc = rc ? rc : cmn_buf_append(b, "{", 1);
    for (int i = 0; i < 8 && rc == 0; i++) {
        if (i > 0)
            rc = cmn_buf_append(b, ",", 1);
        rc = rc ? rc : cmn_json_put_key(b, answer_names[i]);
        if (rc != 0)
            break;
        if (fl[i] == 0)
            rc = cmn_buf_append(b, "null", 4);
        else if (i == 5)
            rc = cmn_json_put_int(b, answer_amount(f[i], fl[i]));
        else
            rc = cmn_json_put_string(b, f[i], fl[i]);
    }
    return rc ? rc : cmn_buf_append(b, "}", 1);
}

/* Builds the tuple decision US reason US match US session US bill US amount US currency US display. */
static void tuple(cmn_buf_t *b, const char *decision, gw_reason_t reason, const char *match,
                  const char *sid, const char *bid, long long amount, int has_amount,
                  const char *currency, const char *display)
{
    cmn_buf_printf(b, "%s" US "%s" US "%s" US "%s" US "%s" US, decision, gw_reason_name(reason),
                   match ? match : "", sid ? sid : "", bid ? bid : "");
    if (has_amount)
        cmn_buf_printf(b, "%lld", amount);
    cmn_buf_printf(b, US "%s" US "%s", has_amount && currency ? currency : "", display);
}

static int decision_of(const char *s)
{
    return strncmp(s, "open", 4) == 0 ? GW_DEC_OPEN : GW_DEC_HOLD;
}

/* Answers with a stored or fresh tuple and counts the decision. */
static void respond_tuple(ev_t *e, const char *t, size_t len, int replay)
{
    const char *f[8];
    size_t fl[8];
    if (answer_split(t, len, f, fl) != 0) {
        gw_respond_error(e->req, 500, "internal", "stored answer is unreadable");
        ev_free(e);
        return;
    }
    /* The tuple's fields are not NUL-terminated: the two names are copied out to parse and log. */
    char reason[64] = "", decision[16] = "";
    if (fl[1] > 0 && fl[1] < sizeof reason)
        memcpy(reason, f[1], fl[1]);
    if (fl[0] > 0 && fl[0] < sizeof decision)
        memcpy(decision, f[0], fl[0]);
    int r = reason[0] ? gw_reason_parse(reason) : -1;
    if (replay)
        e->gw->metrics.replays++;
    else if (r >= 0 && decision[0])
        gw_metrics_decision(&e->gw->metrics, e->dir, decision_of(decision), (gw_reason_t)r,
                            uv_hrtime() - e->req->received_ns);
    if (!replay && cmn_log_enabled(CMN_LOG_INFO)) {
        char masked[CMN_PLATE_MAX];
        cmn_plate_mask(e->unreadable ? "" : e->plate, masked, sizeof masked);
        cmn_log(CMN_LOG_INFO, e->dir == GW_DIR_ENTRY ? "entry" : "exit",
                "lot %s lane %s plate %s: %s %s", e->lot->id, e->lane->id, masked,
                decision[0] ? decision : "?", reason[0] ? reason : "?");
    }
    cmn_buf_t body;
    cmn_buf_init(&body, 64 * 1024);
    if (answer_write(f, fl, &body) == 0) {
        cmn_httpd_respond(e->req, 200, "application/json", body.base, body.len, NULL);
    } else {
        json_t *o;
        gw_answer_render(t, len, &o);
        gw_respond_json(e->req, 200, o);
    }
    cmn_buf_dispose(&body);
    ev_free(e);
}

static void unavailable(ev_t *e, const char *why)
{
    gw_metrics_error(&e->gw->metrics, "unavailable");
    gw_respond_error(e->req, 503, "unavailable", "%s", why);
    ev_free(e);
}

static void conflict(ev_t *e)
{
    gw_metrics_error(&e->gw->metrics, "conflict");
    gw_respond_error(e->req, 409, "conflict",
                     "event_id %s was already used by this device with a different body",
                     e->event_id);
    ev_free(e);
}

/* ---- validation -------------------------------------------------------------------------- */

static int bad(gw_t *gw, cmn_httpd_req_t *req, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(gw_t *gw, cmn_httpd_req_t *req, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gw_metrics_error(&gw->metrics, "bad_request");
    gw_respond_error(req, 400, "bad_request", "%s", msg);
    return -1;
}

static int copy_str(json_t *v, char *out, size_t outsz, size_t minlen)
{
    if (!json_is_string(v))
        return -1;
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n < minlen || n >= outsz || strlen(s) != n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return -1; /* control characters would break records and logs */
    }
    memcpy(out, s, n + 1);
    return 0;
}

static int parse_ts(json_t *v, cmn_instant_t *ts)
{
    if (json_is_integer(v)) {
        json_int_t ms = json_integer_value(v);
        if (ms < CMN_INSTANT_MIN * 1000 || ms > CMN_INSTANT_MAX * 1000)
            return -1;
        *ts = cmn_floordiv(ms, 1000);
        return 0;
    }
    if (json_is_string(v))
        return cmn_rfc3339_parse(json_string_value(v), json_string_length(v), ts) == 0 ? 0 : -1;
    return -1;
}

/* Normalises a read plate.  A sentinel or empty read is unreadable; any other text that
 * normalises is kept as read even when it breaks the mainland rules: a misread plate still
 * matches its own exit read, and confusable matching may pair it with the right one. */
static int read_plate(json_t *v, ev_t *e, char *out, int *unreadable, cmn_plate_t *p)
{
    int rc = cmn_plate_parse(json_string_value(v), json_string_length(v), p);
    if (rc == CMN_EUNREADABLE) {
        *unreadable = 1;
        return 0;
    }
    if (p->text[0] == '\0')
        return -1;
    memcpy(out, p->text, strlen(p->text) + 1);
    (void)e;
    return 0;
}

static int validate(ev_t *e, json_t *doc)
{
    gw_t *gw = e->gw;
    cmn_httpd_req_t *req = e->req;
    json_t *v;

    if (!json_is_object(doc))
        return bad(gw, req, "the body must be a JSON object");
    if (copy_str(json_object_get(doc, "event_id"), e->event_id, sizeof e->event_id, 1) != 0)
        return bad(gw, req, "event_id must be a string of 1 to 64 printable characters");
    char lot_id[65], lane_id[65], dir[8];
    if (copy_str(json_object_get(doc, "lot_id"), lot_id, sizeof lot_id, 1) != 0)
        return bad(gw, req, "lot_id must be a string");
    if (copy_str(json_object_get(doc, "lane_id"), lane_id, sizeof lane_id, 1) != 0)
        return bad(gw, req, "lane_id must be a string");
    if (copy_str(json_object_get(doc, "direction"), dir, sizeof dir, 1) != 0 ||
        (strcmp(dir, "entry") != 0 && strcmp(dir, "exit") != 0))
        return bad(gw, req, "direction must be \"entry\" or \"exit\"");
    e->dir = strcmp(dir, "entry") == 0 ? GW_DIR_ENTRY : GW_DIR_EXIT;

    v = json_object_get(doc, "plate");
    json_t *unread = json_object_get(doc, "unreadable");
    if (unread != NULL && !json_is_boolean(unread))
        return bad(gw, req, "unreadable must be true or false");
    cmn_plate_t p;
    memset(&p, 0, sizeof p);
    if (v == NULL || json_is_null(v)) {
        if (!json_is_true(unread))
            return bad(gw, req, "plate is required (null only with \"unreadable\": true)");
        e->unreadable = 1;
    } else if (!json_is_string(v)) {
        return bad(gw, req, "plate must be a string or null");
    } else if (json_is_true(unread)) {
        e->unreadable = 1;
    } else if (read_plate(v, e, e->plate, &e->unreadable, &p) != 0) {
        return bad(gw, req, "plate \"%.40s\" cannot be normalised: %s", json_string_value(v),
                   p.reason ? p.reason : "invalid text");
    }
    if (!e->unreadable) {
        e->plate_valid = p.vclass != NULL;
        e->kind = p.kind;
        cmn_plate_fold_key(e->plate, 1, e->fold, sizeof e->fold);
    }

    v = json_object_get(doc, "plate_color");
    if (v != NULL && !json_is_null(v)) {
        static const char *const colors[] = {"blue", "yellow", "green", "white", "black", NULL};
        int ok = 0;
        for (int i = 0; json_is_string(v) && colors[i]; i++)
            ok |= strcmp(json_string_value(v), colors[i]) == 0;
        if (!ok)
            return bad(gw, req, "plate_color must be blue, yellow, green, white or black");
    }
    v = json_object_get(doc, "confidence");
    if (v != NULL && !json_is_null(v) &&
        (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1))
        return bad(gw, req, "confidence must be a number from 0 to 1");
    v = json_object_get(doc, "candidates");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_array(v))
            return bad(gw, req, "candidates must be an array");
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c)
        {
            json_t *cp = json_object_get(c, "plate"), *cc = json_object_get(c, "confidence");
            if (!json_is_object(c) || !json_is_string(cp))
                return bad(gw, req, "candidates[%zu] must be an object with a plate", i);
            if (cc != NULL && !json_is_null(cc) &&
                (!json_is_number(cc) || json_number_value(cc) < 0 || json_number_value(cc) > 1))
                return bad(gw, req, "candidates[%zu].confidence must be a number from 0 to 1", i);
            cmn_plate_t cpl;
            int rc = cmn_plate_parse(json_string_value(cp), json_string_length(cp), &cpl);
            if (rc == CMN_EUNREADABLE || cpl.text[0] == '\0' || e->ncands >= MAX_CANDIDATES ||
                strcmp(cpl.text, e->plate) == 0)
                continue; /* nothing to match with */
            cand_t *cd = &e->cands[e->ncands++];
            memcpy(cd->plate, cpl.text, sizeof cd->plate);
            cmn_plate_fold_key(cd->plate, 1, cd->fold, sizeof cd->fold);
        }
    }
    v = json_object_get(doc, "vehicle_class");
    if (v != NULL && !json_is_null(v)) {
        if (copy_str(v, e->vclass, sizeof e->vclass, 1) != 0)
            return bad(gw, req, "vehicle_class must be a string of at most 32 characters");
    } else {
        snprintf(e->vclass, sizeof e->vclass, "%s",
                 (!e->unreadable && p.vclass) ? p.vclass : "small");
    }
    v = json_object_get(doc, "ts");
    if (v == NULL || parse_ts(v, &e->ts) != 0)
        return bad(gw, req, "ts must be an RFC 3339 time with a zone or unix milliseconds");
    if (e->ts > gw_now(gw) + 86400)
        return bad(gw, req, "ts is more than 24 hours ahead of the server clock");

    /* 403: the lot and lane must be the signing device's. */
    const cmn_config_t *cfg = e->conf->cfg;
    e->lot = &cfg->lots[e->dev->lot_index];
    int served = 0;
    for (size_t i = 0; i < e->dev->nlanes; i++)
        served |= strcmp(e->dev->lanes[i], lane_id) == 0;
    if (strcmp(lot_id, e->dev->lot_id) != 0 || !served) {
        gw_metrics_error(&gw->metrics, "forbidden");
        gw_respond_error(req, 403, "forbidden", "device %s does not serve lane %s of lot %s",
                         e->device, lane_id, lot_id);
        return -1;
    }
    e->lane = cmn_config_lane(e->lot, lane_id);
    if ((e->lane->direction == CMN_LANE_ENTRY) != (e->dir == GW_DIR_ENTRY))
        return bad(gw, req, "lane %s of lot %s is an %s lane", lane_id, lot_id,
                   e->lane->direction == CMN_LANE_ENTRY ? "entry" : "exit");
    return 0;
}

/* ---- lot policy -------------------------------------------------------------------------- */

static int64_t local_day(const cmn_cfg_lot_t *lot, cmn_instant_t t)
{
    return cmn_floordiv(t + cmn_tariff_utc_offset(lot->tariff, t), 86400);
}

static int in_list(char *const *list, size_t n, const char *plate)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i], plate) == 0)
            return 1;
    }
    return 0;
}

int gw_lot_has_pass(const cmn_cfg_lot_t *lot, const char *plate, cmn_instant_t t)
{
    if (in_list(lot->allow, lot->nallow, plate))
        return 1;
    int64_t day = local_day(lot, t);
    for (size_t i = 0; i < lot->npasses; i++) {
        const cmn_cfg_pass_t *p = &lot->passes[i];
        if (p->plate && strcmp(p->plate, plate) == 0 && p->from_day <= day && day <= p->to_day)
            return 1;
    }
    return 0;
}

static int is_exempt(const cmn_cfg_lot_t *lot, const char *plate)
{
    cmn_plate_t p;
    if (in_list(lot->exempt, lot->nexempt, plate))
        return 1;
    /* Parsed only for a lot that exempts kinds of plates (most exempt none). */
    if (lot->exempt_kinds != 0 && cmn_plate_parse(plate, strlen(plate), &p) == 0 &&
        (lot->exempt_kinds & (1u << p.kind)))
        return 1;
    return 0;
}

static void keys_common(ev_t *e, cmn_rargs_t *a, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        cmn_rargs_cat(a, "pk:", e->tag, ":", names[i], NULL);
}

/* The idempotency buckets: today's (server clock, UTC days) first, then the older ones. */
static void keys_idem(ev_t *e, cmn_rargs_t *a)
{
    int64_t today = cmn_floordiv(gw_now(e->gw), 86400);
    char day[24];
    for (int64_t d = 0; d <= e->conf->cfg->gateway.idempotency_days; d++) {
        snprintf(day, sizeof day, "%lld", (long long)(today - d));
        cmn_rargs_cat(a, "pk:", e->tag, ":idem:", day, NULL);
    }
}

void gw_idem_digests(const char *device, const char *event_id, const void *body, size_t len,
                     unsigned char field[GW_IDEM_FIELD_LEN], unsigned char hash[GW_IDEM_HASH_LEN])
{
    unsigned char h[32];
    char id[140]; /* a device id and an event id: 64 characters each at most */
    snprintf(id, sizeof id, "%s\n%s", device, event_id);
    cmn_sha256(id, strlen(id), h);
    memcpy(field, h, GW_IDEM_FIELD_LEN);
    cmn_sha256(body, len, h);
    memcpy(hash, h, GW_IDEM_HASH_LEN);
}

static void idem_args(ev_t *e, cmn_rargs_t *a)
{
    cmn_rargs_ref(a, (const char *)e->idem_field, sizeof e->idem_field);
    cmn_rargs_ref(a, (const char *)e->body_hash, sizeof e->body_hash);
}

static long long idem_ttl(const ev_t *e)
{
    return (e->conf->cfg->gateway.idempotency_days + 1) * 86400LL + 3600;
}

static void day_key(ev_t *e, cmn_rargs_t *a, cmn_instant_t t)
{
    char d[16];
    cmn_date_format(local_day(e->lot, t), d, sizeof d);
    cmn_rargs_cat(a, "pk:", e->tag, ":day:", d, NULL);
}

/* ---- entry ------------------------------------------------------------------------------- */

static void send_entry(ev_t *e);

static void duration_text(int64_t secs, char *out, size_t outsz)
{
    if (secs < 0)
        secs = 0;
    int64_t h = secs / 3600, m = secs / 60 % 60;
    if (h > 0)
        snprintf(out, outsz, "停车%lld小时%lld分", (long long)h, (long long)m);
    else
        snprintf(out, outsz, "停车%lld分", (long long)m);
}

static void on_entry(void *data, int status, redisReply *r)
{
    ev_t *e = data;
    size_t len;
    const char *s;

    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY) {
        if (status == 0 && r != NULL && r->type == REDIS_REPLY_ERROR)
            cmn_log(CMN_LOG_ERROR, "redis_script", "entry script failed: %.200s", r->str);
        return unavailable(e, status == CMN_ETIMEOUT ? "Redis did not answer in time"
                                                     : "Redis is unavailable");
    }
    if (cmn_reply_is(r, "ok") || cmn_reply_is(r, "dup")) {
        s = cmn_reply_str(r, 1, &len);
        if (s == NULL)
            return unavailable(e, "unexpected answer from Redis");
        return respond_tuple(e, s, len, cmn_reply_is(r, "dup"));
    }
    if (cmn_reply_is(r, "conflict"))
        return conflict(e);
    if (++e->attempts > MAX_ATTEMPTS)
        return unavailable(e, "the session kept changing; try again");
    if (cmn_reply_is(r, "stale")) {
        const char *seq = cmn_reply_str(r, 1, &len);
        const char *rec = cmn_reply_str(r, 2, NULL);
        if (seq == NULL || rec == NULL || len >= sizeof e->stale_seq)
            return unavailable(e, "unexpected answer from Redis");
        memcpy(e->stale_seq, seq, len);
        e->stale_seq[len] = '\0';
        cmn_free(e->stale_record);
        e->stale_record = cmn_xstrndup(rec, cmn_reply_str(r, 2, &len) ? len : 0);
    } else {
        e->gw->metrics.retries++;
        e->stale_seq[0] = '\0';
    }
    send_entry(e);
}

/* A fee's explanation as JSON text (the bytes of cmn_fee_to_json dumped compact, in order). */
static void explanation(const cmn_tariff_t *t, const cmn_fee_t *fee, cmn_buf_t *out)
{
    if (cmn_fee_explain_json(t, fee, out) == 0)
        return;
    /* Only a tariff string that is not UTF-8 gets here: jansson then leaves that member out. */
    json_t *j = cmn_fee_to_json(t, fee);
    char *text = cmn_json_dump(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (text != NULL)
        cmn_buf_puts(out, text);
    cmn_free(text);
}

/* The fee of a stale session (closed by a new entry) up to the new entry, with its explanation. */
static long long stale_fee(ev_t *e, char **expl)
{
    gw_session_rec_t s;
    *expl = NULL;
    if (gw_session_parse(e->stale_record, strlen(e->stale_record), &s) != 0)
        return 0;
    const cmn_tariff_t *t = gw_tariff_by_version(e->gw, s.tver);
    if (t == NULL)
        t = e->lot->tariff;
    cmn_fee_t fee;
    cmn_instant_t to = e->ts < s.entry ? s.entry : e->ts;
    long long amount = 0;
    if (cmn_tariff_fee(t, s.vclass, s.entry, to, CMN_FEE_EXPLAIN, &fee) == 0) {
        amount = fee.amount;
        cmn_buf_t b;
        cmn_buf_init(&b, 1024 * 1024);
        explanation(t, &fee, &b);
        *expl = cmn_buf_take(&b, NULL);
    }
    cmn_fee_dispose(&fee);
    return amount;
}

static void send_entry(ev_t *e)
{
    static const char *const names[] = {"open", "fold", "held", "meta"};
    const cmn_cfg_lot_t *lot = e->lot;
    cmn_rargs_t args, *a = &args; /* on the stack: about 10 KB, built and sent at once */
    char display_open[160], display_full[160], display_hold[160];
    const char *mode = "normal";
    char *expl = NULL;
    long long fee = 0;

    if (e->unreadable)
        mode = "unreadable";
    else if (gw_lot_has_pass(lot, e->plate, e->ts))
        mode = "pass";
    else if (is_exempt(lot, e->plate))
        mode = "exempt";
    else if (in_list(lot->blocked, lot->nblocked, e->plate) &&
             lot->policy.blocked == CMN_BLOCKED_HOLD_ENTRY)
        mode = "blacklisted";
    if (e->stale_seq[0] != '\0' && lot->policy.stale_entry == CMN_STALE_CLOSE_CHARGED)
        fee = stale_fee(e, &expl);

    snprintf(display_open, sizeof display_open, "%s 欢迎光临", e->plate);
    snprintf(display_full, sizeof display_full, "%s 车位已满", e->plate);
    if (e->unreadable)
        snprintf(display_hold, sizeof display_hold, "未识别车牌 请稍候");
    else
        snprintf(display_hold, sizeof display_hold, "%s 禁止通行", e->plate);

    cmn_rargs_init(a);
    cmn_rargs_str(a, "EVALSHA");
    cmn_rargs_str(a, cmn_redis_script_sha(e->gw->redis, e->gw->scripts[GW_LUA_ENTRY]));
    int nkeys_at = a->n;
    cmn_rargs_str(a, "0");
    keys_common(e, a, names, 4);
    day_key(e, a, e->ts);
    cmn_rargs_cat(a, "pk:", e->tag, ":entries", NULL);
    cmn_rargs_cat(a, "pk:", e->tag, ":review", NULL);
    cmn_rargs_cat(a, "pk:", e->tag, ":s:", e->stale_seq[0] ? e->stale_seq : "-", NULL);
    cmn_rargs_cat(a, "pk:", e->tag, ":passes", NULL);
    cmn_rargs_cat(a, "pk:", e->tag, ":allow", NULL);
    keys_idem(e, a);
    int nkeys = a->n - nkeys_at - 1;
    cmn_rargs_fmt(a, "%d", nkeys);
    a->v[nkeys_at] = a->v[a->n - 1];
    a->len[nkeys_at] = a->len[a->n - 1];
    a->n--;
    idem_args(e, a);
    cmn_rargs_str(a, mode);
    cmn_rargs_str(a, e->unreadable ? "" : e->plate);
    cmn_rargs_str(a, e->unreadable ? "" : e->fold);
    cmn_rargs_int(a, e->ts);
    cmn_rargs_str(a, e->lane->id);
    cmn_rargs_str(a, e->vclass);
    cmn_rargs_str(a, cmn_tariff_version(lot->tariff));
    cmn_rargs_int(a, lot->capacity);
    cmn_rargs_str(a, lot->policy.stale_entry == CMN_STALE_CLOSE_CHARGED ? "close_charged"
                                                                      : "close_free");
    cmn_rargs_str(a, e->stale_seq);
    cmn_rargs_str(a, e->stale_record ? e->stale_record : "");
    cmn_rargs_int(a, fee);
    cmn_rargs_str(a, expl ? expl : "");
    cmn_rargs_int(a, idem_ttl(e));
    cmn_rargs_str(a, lot->id);
    cmn_rargs_str(a, display_open);
    cmn_rargs_str(a, display_full);
    cmn_rargs_str(a, display_hold);
    cmn_rargs_int(a, gw_now(e->gw));
    cmn_rargs_str(a, e->device);
    cmn_rargs_str(a, e->event_id);
    char date[16];
    cmn_date_format(local_day(lot, e->ts), date, sizeof date);
    cmn_rargs_str(a, date);
    int rc = a->overflow ? CMN_ETOOBIG
                         : cmn_redis_command(e->gw->redis, on_entry, e, a->n, a->v, a->len);
    cmn_free(expl);
    if (rc != 0)
        unavailable(e, "cannot send to Redis");
}

/* ---- exit -------------------------------------------------------------------------------- */

struct record;

static void send_lookup(ev_t *e);
static void exit_decide(ev_t *e);
static void commit(ev_t *e, const char *outcome, const char *seq, const char *expected,
                   cmn_buf_t *answer, const char *status, const char *held, cmn_buf_t *counters,
                   const char *review, cmn_buf_t *bill_stream, struct record *record);

static void on_lookup(void *data, int status, redisReply *r)
{
    ev_t *e = data;
    size_t len;
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY) {
        if (status == 0 && r != NULL && r->type == REDIS_REPLY_ERROR)
            cmn_log(CMN_LOG_ERROR, "redis_script", "exit_lookup failed: %.200s", r->str);
        e->failed = 1;
    } else if (cmn_reply_is(r, "dup") || cmn_reply_is(r, "conflict")) {
        snprintf(e->found.kind, sizeof e->found.kind, "%s", cmn_reply_is(r, "dup") ? "dup" : "conflict");
        const char *s = cmn_reply_str(r, 1, &len);
        if (s != NULL)
            e->found.record = cmn_xstrndup(s, len); /* the stored answer */
    } else if (cmn_reply_is(r, "match")) {
        const char *kind = cmn_reply_str(r, 1, &len);
        const char *seq = cmn_reply_str(r, 2, NULL);
        if (kind == NULL || seq == NULL || len >= sizeof e->found.kind) {
            e->failed = 1;
        } else {
            snprintf(e->found.kind, sizeof e->found.kind, "%.*s", (int)len, kind);
            snprintf(e->found.seq, sizeof e->found.seq, "%s", seq);
            const char *s = cmn_reply_str(r, 3, &len);
            e->found.record = cmn_xstrndup(s ? s : "", s ? len : 0);
            s = cmn_reply_str(r, 4, &len);
            if (s != NULL && len > 0)
                e->found.held = cmn_xstrndup(s, len);
            s = cmn_reply_str(r, 5, &len);
            if (s != NULL && len > 0)
                e->found.tariff_json = cmn_xstrndup(s, len);
            e->found.runtime_pass = r->elements > 6 &&
                                    r->element[6]->type == REDIS_REPLY_INTEGER &&
                                    r->element[6]->integer == 1;
        }
    } else if (cmn_reply_is(r, "none")) {
        snprintf(e->found.kind, sizeof e->found.kind, "none");
        const char *s = cmn_reply_str(r, 1, &len);
        snprintf(e->found.why, sizeof e->found.why, "%.*s", s ? (int)len : 0, s ? s : "");
        s = cmn_reply_str(r, 2, &len);
        snprintf(e->found.reserved, sizeof e->found.reserved, "%.*s", s ? (int)len : 0,
                 s ? s : "");
    } else {
        e->failed = 1;
    }
    if (--e->pending == 0)
        exit_decide(e);
}

static void on_bucket(void *data, int status, redisReply *r)
{
    ev_t *e = data;
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY) {
        e->failed = 1;
    } else {
        e->buckets = cmn_xrealloc(e->buckets, (e->nbuckets + r->elements) * sizeof *e->buckets);
        for (size_t i = 0; i < r->elements; i++) {
            size_t len = 0;
            const char *s = cmn_reply_str(r, i, &len);
            e->buckets[e->nbuckets++] = cmn_xstrndup(s ? s : "", s ? len : 0);
        }
    }
    if (--e->pending == 0)
        exit_decide(e);
}

static void send_lookup(ev_t *e)
{
    static const char *const names[] = {"open", "fold", "held", "tariffs", "meta"};
    cmn_rargs_t args, *a = &args; /* on the stack: about 10 KB, built and sent at once */
    const char *level = e->lot->policy.match == CMN_MATCH_EXACT        ? "exact"
                        : e->lot->policy.match == CMN_MATCH_CANDIDATES ? "candidates"
                                                                        : "fuzzy";
    int rc;

    /* Forget what an earlier attempt found. */
    cmn_free(e->found.record);
    cmn_free(e->found.held);
    cmn_free(e->found.tariff_json);
    memset(&e->found, 0, sizeof e->found);
    for (size_t i = 0; i < e->nbuckets; i++)
        cmn_free(e->buckets[i]);
    e->nbuckets = 0;
    e->failed = 0;

    cmn_rargs_init(a);
    cmn_rargs_str(a, "EVALSHA");
    cmn_rargs_str(a, cmn_redis_script_sha(e->gw->redis, e->gw->scripts[GW_LUA_EXIT_LOOKUP]));
    cmn_rargs_int(a, 7 + e->conf->cfg->gateway.idempotency_days + 1);
    keys_common(e, a, names, 5);
    cmn_rargs_cat(a, "pk:", e->tag, ":passes", NULL);
    cmn_rargs_cat(a, "pk:", e->tag, ":allow", NULL);
    keys_idem(e, a);
    idem_args(e, a);
    cmn_rargs_str(a, e->plate);
    cmn_rargs_str(a, e->fold);
    cmn_rargs_str(a, level);
    cmn_rargs_str(a, cmn_tariff_version(e->lot->tariff));
    cmn_rargs_str(a, e->lot->policy.no_entry == CMN_NO_ENTRY_CHARGE ? "1" : "0");
    char date[16];
    cmn_date_format(local_day(e->lot, e->ts), date, sizeof date);
    cmn_rargs_str(a, date);
    cmn_rargs_int(a, e->ncands);
    for (int i = 0; i < e->ncands; i++) {
        cmn_rargs_str(a, e->cands[i].plate);
        cmn_rargs_str(a, e->cands[i].fold);
    }
    rc = a->overflow ? CMN_ETOOBIG
                     : cmn_redis_command(e->gw->redis, on_lookup, e, a->n, a->v, a->len);
    if (rc != 0)
        return unavailable(e, "cannot send to Redis");
    e->pending = 1;
    /* The plate index buckets of the read and of each distinct candidate key, pipelined. */
    const char *folds[MAX_CANDIDATES + 1];
    int nf = 0;
    folds[nf++] = e->fold;
    for (int i = 0; i < e->ncands; i++) {
        int dup = 0;
        for (int k = 0; k < nf; k++)
            dup |= strcmp(folds[k], e->cands[i].fold) == 0;
        if (!dup)
            folds[nf++] = e->cands[i].fold;
    }
    for (int i = 0; i < nf; i++) {
        cmn_rargs_init(a);
        cmn_rargs_str(a, "HGETALL");
        cmn_rargs_cat(a, "pk:plate:{", folds[i], "}", NULL);
        if (cmn_redis_command(e->gw->redis, on_bucket, e, a->n, a->v, a->len) == 0)
            e->pending++;
        else
            e->failed = 1;
    }
}

/* Parses a credit copy (driver US ver US score US suspended US eligibility US unpaid_count US
 * unpaid_amount US provider) for plate. */
static int find_credit(ev_t *e, const char *plate, struct credit *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i + 1 < e->nbuckets; i += 2) {
        if (strcmp(e->buckets[i], plate) != 0)
            continue;
        if (cmn_snapshot_parse(e->buckets[i + 1], &c->d) != 0 || c->d.ver == 0) {
            memset(c, 0, sizeof *c);
            return 0; /* malformed, or a plate claimed by an enrolment not yet finished */
        }
        c->found = 1;
        snprintf(c->plate, sizeof c->plate, "%s", plate);
        return 1;
    }
    return 0;
}

/* The credit decision for a fee above 0 (docs/credit.md). */
static gw_reason_t credit_decision(ev_t *e, const struct credit *c, long long fee)
{
    const cmn_cfg_credit_t *p = &e->conf->cfg->credit;
    if (!e->lot->policy.leave_first || !c->found ||
        cmn_config_provider(e->conf->cfg, c->d.provider) == NULL)
        return GW_REASON_NOT_ENROLLED;
    if (strcmp(c->d.eligibility, "NORMAL") != 0)
        return GW_REASON_PROVIDER_BLOCKED;
    if (c->d.suspended)
        return GW_REASON_SUSPENDED;
    if (c->d.score < p->min_score)
        return GW_REASON_LOW_CREDIT;
    if (fee > p->max_fee || c->d.unpaid_count >= p->max_unpaid_bills ||
        c->d.unpaid_amount + fee > p->max_unpaid_amount)
        return GW_REASON_UNPAID_LIMIT;
    return GW_REASON_CREDIT_OK;
}

/*
 * An exit's record: the fields exit_commit writes into the session's hash, in the order added (a
 * field added again keeps its place and takes the new value).  Values are referenced, not copied:
 * each lives until commit() has handed the command to hiredis, which copies it (they are the
 * event's own fields, the configuration's, or locals of the function that calls commit()).
 * Numbers are formatted into `store`.
 */
#define RECORD_MAX 32

struct record {
    const char *key[RECORD_MAX];
    const char *val[RECORD_MAX];
    size_t len[RECORD_MAX];
    int n;
    int overflow;
    size_t used;
    char store[RECORD_MAX * 24];
};

static void rec_set(struct record *r, const char *k, const char *v, size_t len)
{
    for (int i = 0; i < r->n; i++) {
        if (r->key[i][0] == k[0] && strcmp(r->key[i], k) == 0) {
            r->val[i] = v;
            r->len[i] = len;
            return;
        }
    }
    if (r->n >= RECORD_MAX) {
        r->overflow = 1;
        return;
    }
    r->key[r->n] = k;
    r->val[r->n] = v;
    r->len[r->n] = len;
    r->n++;
}

static const char *rec_get(const struct record *r, const char *k)
{
    for (int i = 0; i < r->n; i++) {
        if (strcmp(r->key[i], k) == 0)
            return r->val[i];
    }
    return "";
}

static void add_field(struct record *rec, const char *k, const char *v)
{
    v = v ? v : "";
    rec_set(rec, k, v, strlen(v));
}

static void add_int(struct record *rec, const char *k, long long v)
{
    size_t room = sizeof rec->store - rec->used;
    int n = snprintf(rec->store + rec->used, room, "%lld", v);
    if (n < 0 || (size_t)n >= room) {
        rec->overflow = 1;
        return;
    }
    rec_set(rec, k, rec->store + rec->used, (size_t)n);
    rec->used += (size_t)n + 1;
}

static const char *hold_display(gw_reason_t r)
{
    switch (r) {
    case GW_REASON_NOT_ENROLLED:
        return "请扫码缴费";
    case GW_REASON_PROVIDER_BLOCKED:
    case GW_REASON_LOW_CREDIT:
    case GW_REASON_UNPAID_LIMIT:
    case GW_REASON_SUSPENDED:
        return "信用支付不可用 请扫码缴费";
    case GW_REASON_BLACKLISTED:
        return "请缴费后离场";
    default:
        return "请稍候";
    }
}

/* Decides an exit from what the first round trip found, and commits it. */
static void exit_decide(ev_t *e)
{
    const cmn_cfg_lot_t *lot = e->lot;
    const char *cur = cmn_tariff_currency(lot->tariff);
    int digits = cmn_tariff_fraction_digits(lot->tariff);
    char sid[96] = "", bid[100] = "", money[32], dur[64], display[200], held[64];
    cmn_buf_t answer, counters, stream;
    struct record rec_store = {.n = 0}, *rec = &rec_store;
    cmn_buf_t expl;
    gw_reason_t reason;
    long long amount = 0;
    cmn_fee_t fee;
    int have_fee = 0;

    memset(&fee, 0, sizeof fee);
    cmn_buf_init(&answer, 4096);
    cmn_buf_init(&counters, 1024);
    cmn_buf_init(&stream, 4096);
    cmn_buf_init(&expl, 1024 * 1024);

    if (e->failed || e->found.kind[0] == '\0') {
        return unavailable(e, "Redis is unavailable");
    }
    if (strcmp(e->found.kind, "dup") == 0) {
        const char *t = e->found.record ? e->found.record : "";
        return respond_tuple(e, t, strlen(t), 1);
    }
    if (strcmp(e->found.kind, "conflict") == 0) {
        return conflict(e);
    }

    add_field(rec, "lot", lot->id);
    add_field(rec, "lane_out", e->lane->id);
    add_field(rec, "read_plate", e->plate);
    add_int(rec, "exit", e->ts);
    add_int(rec, "closed_at", gw_now(e->gw));
    add_field(rec, "device_out", e->device);
    add_field(rec, "event_out", e->event_id);

    if (strcmp(e->found.kind, "none") == 0) {
        /* No entry record: the lot's policy decides. */
        cmn_buf_printf(&counters, "exits_unmatched=1,match:none=1,");
        if (lot->policy.no_entry != CMN_NO_ENTRY_CHARGE || e->found.reserved[0] == '\0') {
            snprintf(display, sizeof display, "%s 无入场记录 请联系管理员", e->plate);
            tuple(&answer, "hold", GW_REASON_NO_ENTRY_RECORD, "none", NULL, NULL, 0, 0, NULL,
                  display);
            cmn_buf_printf(&counters, "hold:no_entry_record=1");
            add_field(rec, "plate", e->plate);
            add_field(rec, "why", e->found.why);
            commit(e, "none", "", "", &answer, "", "", &counters, "no_entry_record", NULL, rec);
            goto out;
        }
        amount = lot->policy.no_entry_fee;
        snprintf(sid, sizeof sid, "%s~%s", lot->id, e->found.reserved);
        struct credit c;
        find_credit(e, e->plate, &c);
        reason = amount == 0 ? GW_REASON_FREE_PERIOD : credit_decision(e, &c, amount);
        add_field(rec, "id", sid);
        add_field(rec, "session", sid);
        add_field(rec, "plate", e->plate);
        add_field(rec, "class", e->vclass);
        add_int(rec, "amount", amount);
        add_field(rec, "currency", cur);
        add_field(rec, "match", "none");
        add_field(rec, "reason", gw_reason_name(reason));
        add_field(rec, "explanation", "{\"policy\":\"no_entry_record\"}");
        cmn_money_format(amount, digits, money, sizeof money);
        /* The synthetic session's record: entered and left at the exit read. */
        char srec[300];
        snprintf(srec, sizeof srec, "%s" US "%lld" US "" US "%s" US "%s" US "n" US "%s", e->plate,
                 (long long)e->ts, e->vclass, cmn_tariff_version(lot->tariff), e->fold);
        if (reason == GW_REASON_CREDIT_OK || reason == GW_REASON_FREE_PERIOD) {
            int billed = reason == GW_REASON_CREDIT_OK;
            if (billed) {
                snprintf(bid, sizeof bid, "%s~b", sid);
                add_field(rec, "bill", bid);
                add_field(rec, "driver", c.d.driver);
                add_field(rec, "provider", c.d.provider);
                cmn_buf_printf(&stream, "bill" US "%s" US "lot" US "%s" US "driver" US "%s" US
                               "provider" US "%s" US "amount" US "%lld" US "currency" US "%s",
                               bid, lot->id, c.d.driver, c.d.provider, amount, cur);
            }
            snprintf(display, sizeof display, "%s 无入场记录 %s元 %s", e->plate, money,
                     billed ? "先离场后付费" : "一路顺风");
            tuple(&answer, "open", reason, "none", sid, billed ? bid : NULL, amount, 1, cur,
                  display);
            cmn_buf_printf(&counters, "exits=1,open:%s=1%s", gw_reason_name(reason),
                           billed ? "" : "");
            if (billed)
                cmn_buf_printf(&counters, ",bills=1,billed=%lld", amount);
            commit(e, "synthetic_close", e->found.reserved, srec, &answer,
                   billed ? "pending" : "closed", "", &counters, "no_entry_charged",
                   billed ? &stream : NULL, rec);
        } else {
            snprintf(display, sizeof display, "%s 无入场记录 %s元 %s", e->plate, money,
                     hold_display(reason));
            tuple(&answer, "hold", reason, "none", sid, NULL, amount, 1, cur, display);
            snprintf(held, sizeof held, "%s" US "%lld" US "%lld", gw_reason_name(reason), amount,
                     (long long)e->ts);
            cmn_buf_printf(&counters, "hold:%s=1", gw_reason_name(reason));
            commit(e, "synthetic_hold", e->found.reserved, srec, &answer, "", held, &counters,
                   "no_entry_charged", NULL, rec);
        }
        goto out;
    }

    /* A session matched: the fee by the tariff version in force at its entry. */
    gw_session_rec_t s;
    if (gw_session_parse(e->found.record, strlen(e->found.record), &s) != 0) {
        return unavailable(e, "session record is unreadable");
    }
    const cmn_tariff_t *t = gw_tariff_by_version(e->gw, s.tver);
    if (t == NULL && e->found.tariff_json != NULL)
        t = gw_tariff_learn(e->gw, s.tver, e->found.tariff_json, strlen(e->found.tariff_json));
    if (t == NULL) {
        cmn_log(CMN_LOG_WARN, "tariff_unknown",
                "lot %s session %s: tariff version %s unknown, charging by the current one",
                lot->id, e->found.seq, s.tver);
        t = lot->tariff;
    }
    snprintf(sid, sizeof sid, "%s~%s", lot->id, e->found.seq);
    cmn_instant_t exit_at = e->ts;
    const char *review = "";
    if (exit_at < s.entry) {
        exit_at = s.entry; /* a stay of length 0, for staff to look at */
        review = "exit_before_entry";
    }
    if (cmn_tariff_fee(t, s.vclass, s.entry, exit_at, CMN_FEE_EXPLAIN, &fee) != 0) {
        cmn_fee_dispose(&fee);
        return unavailable(e, "the fee cannot be computed");
    }
    have_fee = 1;
    amount = fee.amount;
    cur = cmn_tariff_currency(t);
    digits = cmn_tariff_fraction_digits(t);
    explanation(t, &fee, &expl);

    add_field(rec, "id", sid);
    add_field(rec, "session", sid);
    add_field(rec, "plate", s.plate);
    add_field(rec, "lane_in", s.lane);
    add_int(rec, "entry", s.entry);
    add_field(rec, "class", s.vclass);
    add_field(rec, "tariff", cmn_tariff_id(t));
    add_field(rec, "tariff_version", cmn_tariff_version(t));
    add_int(rec, "amount", amount);
    add_field(rec, "currency", cur);
    add_field(rec, "match", e->found.kind);
    rec_set(rec, "explanation", expl.base ? expl.base : "", expl.len);

    cmn_money_format(amount, digits, money, sizeof money);
    duration_text(exit_at - s.entry, dur, sizeof dur);
    cmn_buf_printf(&counters, "match:%s=1,", e->found.kind);

    int pass = strchr(s.flags, 'p') != NULL || gw_lot_has_pass(lot, s.plate, e->ts) ||
               gw_lot_has_pass(lot, e->plate, e->ts) || e->found.runtime_pass;
    int exempt = strchr(s.flags, 'e') != NULL || is_exempt(lot, s.plate);
    struct credit c;
    memset(&c, 0, sizeof c);
    if (pass || exempt || amount == 0) {
        reason = pass ? GW_REASON_PASS : exempt ? GW_REASON_EXEMPT : GW_REASON_FREE_PERIOD;
        snprintf(display, sizeof display, "%s %s 一路顺风", s.plate,
                 pass ? "月卡" : exempt ? "免费放行" : "免费");
        add_field(rec, "reason", gw_reason_name(reason));
        tuple(&answer, "open", reason, e->found.kind, sid, NULL, 0, 1, cur, display);
        cmn_buf_printf(&counters, "exits=1,open:%s=1", gw_reason_name(reason));
        commit(e, "close", e->found.seq, e->found.record, &answer, "closed", "", &counters,
               review, NULL, rec);
        goto out;
    }
    /* The driver: the entry read's plate first, else the exit read's or the matching candidate's. */
    if (!find_credit(e, s.plate, &c) && !find_credit(e, e->plate, &c)) {
        for (int i = 0; i < e->ncands && !c.found; i++)
            find_credit(e, e->cands[i].plate, &c);
    }
    if (in_list(lot->blocked, lot->nblocked, s.plate) || in_list(lot->blocked, lot->nblocked, e->plate))
        reason = GW_REASON_BLACKLISTED;
    else
        reason = credit_decision(e, &c, amount);
    add_field(rec, "reason", gw_reason_name(reason));
    if (reason == GW_REASON_CREDIT_OK) {
        snprintf(bid, sizeof bid, "%s~b", sid);
        add_field(rec, "bill", bid);
        add_field(rec, "driver", c.d.driver);
        add_field(rec, "provider", c.d.provider);
        snprintf(display, sizeof display, "%s %s %s元 先离场后付费", s.plate, dur, money);
        tuple(&answer, "open", reason, e->found.kind, sid, bid, amount, 1, cur, display);
        cmn_buf_printf(&counters, "exits=1,open:credit_ok=1,bills=1,billed=%lld", amount);
        cmn_buf_printf(&stream, "bill" US "%s" US "lot" US "%s" US "driver" US "%s" US
                       "provider" US "%s" US "amount" US "%lld" US "currency" US "%s",
                       bid, lot->id, c.d.driver, c.d.provider, amount, cur);
        commit(e, "close", e->found.seq, e->found.record, &answer, "pending", "", &counters,
               review, &stream, rec);
    } else {
        snprintf(display, sizeof display, "%s %s %s元 %s", s.plate, dur, money,
                 hold_display(reason));
        tuple(&answer, "hold", reason, e->found.kind, sid, NULL, amount, 1, cur, display);
        snprintf(held, sizeof held, "%s" US "%lld" US "%lld", gw_reason_name(reason), amount,
                 (long long)e->ts);
        cmn_buf_printf(&counters, "hold:%s=1", gw_reason_name(reason));
        commit(e, "hold", e->found.seq, e->found.record, &answer, "", held, &counters, review,
               NULL, rec);
    }
out:
    if (have_fee)
        cmn_fee_dispose(&fee);
    cmn_buf_dispose(&answer);
    cmn_buf_dispose(&counters);
    cmn_buf_dispose(&stream);
    cmn_buf_dispose(&expl);
}

/* ---- after a bill: the driver's record ---------------------------------------------------- */

static void on_bill_applied(void *data, int status, redisReply *r);

void gw_driver_bill_apply(gw_t *gw, const char *driver, const char *bill, long long amount)
{
    cmn_rargs_t args, *a = &args; /* on the stack: about 10 KB, built and sent at once */
    cmn_rargs_init(a);
    cmn_rargs_str(a, "EVALSHA");
    cmn_rargs_str(a, cmn_redis_script_sha(gw->redis, gw->scripts[GW_LUA_DRIVER_BILL]));
    cmn_rargs_str(a, "4");
    cmn_rargs_cat(a, "pk:drv:{", driver, "}", NULL);
    cmn_rargs_cat(a, "pk:drv:{", driver, "}:unpaid", NULL);
    cmn_rargs_cat(a, "pk:drv:{", driver, "}:applied", NULL);
    cmn_rargs_cat(a, "pk:drv:{", driver, "}:bills", NULL);
    cmn_rargs_str(a, bill);
    cmn_rargs_int(a, amount);
    cmn_rargs_int(a, gw_now(gw));
    if (cmn_redis_command(gw->redis, on_bill_applied, gw, a->n, a->v, a->len) != 0)
        cmn_log(CMN_LOG_WARN, "driver_update", "bill %s: driver update not sent", bill);
}

void gw_plates_mirror(gw_t *gw, const char *driver, const char *plates, const char *snapshot)
{
    cmn_driver_mirror(gw->redis, gw->scripts[GW_LUA_PLATE_MIRROR], driver, plates, snapshot);
}

static void on_bill_applied(void *data, int status, redisReply *r)
{
    gw_t *gw = data;
    if (status != 0 || !cmn_reply_is(r, "ok")) {
        cmn_log(CMN_LOG_WARN, "driver_update", "driver record not updated (%s); billing will",
                status ? cmn_strerror(status) : "unexpected answer");
        return;
    }
    const char *snap = cmn_reply_str(r, 1, NULL);
    const char *plates = cmn_reply_str(r, 2, NULL);
    if (snap == NULL || plates == NULL)
        return;
    char driver[80];
    cmn_snapshot_driver(snap, driver, sizeof driver);
    gw_plates_mirror(gw, driver, plates, snap);
}

/* ---- commit ------------------------------------------------------------------------------ */

struct commit_ctx {
    ev_t *e;
    char driver[65];
    char bill[100];
    long long amount;
};

static void on_commit(void *data, int status, redisReply *r)
{
    struct commit_ctx *cc = data;
    ev_t *e = cc->e;
    size_t len;

    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY) {
        if (status == 0 && r != NULL && r->type == REDIS_REPLY_ERROR)
            cmn_log(CMN_LOG_ERROR, "redis_script", "exit_commit failed: %.200s", r->str);
        cmn_free(cc);
        return unavailable(e, status == CMN_ETIMEOUT ? "Redis did not answer in time"
                                                     : "Redis is unavailable");
    }
    if (cmn_reply_is(r, "retry")) {
        cmn_free(cc);
        e->gw->metrics.retries++;
        if (++e->attempts > MAX_ATTEMPTS)
            return unavailable(e, "the session kept changing; try again");
        return send_lookup(e);
    }
    if (cmn_reply_is(r, "conflict")) {
        cmn_free(cc);
        return conflict(e);
    }
    const char *s = cmn_reply_str(r, 1, &len);
    if (s == NULL) {
        cmn_free(cc);
        return unavailable(e, "unexpected answer from Redis");
    }
    int fresh = cmn_reply_is(r, "ok");
    if (fresh && cc->bill[0] != '\0')
        gw_driver_bill_apply(e->gw, cc->driver, cc->bill, cc->amount);
    cmn_free(cc);
    respond_tuple(e, s, len, !fresh);
}

static void commit(ev_t *e, const char *outcome, const char *seq, const char *expected,
                   cmn_buf_t *answer, const char *status, const char *held, cmn_buf_t *counters,
                   const char *review, cmn_buf_t *bill_stream, struct record *record)
{
    static const char *const names[] = {"open", "fold", "held"};
    cmn_rargs_t args, *a = &args; /* on the stack: about 10 KB, built and sent at once */
    struct commit_ctx *cc = cmn_xcalloc(1, sizeof *cc);
    cc->e = e;
    if (bill_stream != NULL) {
        snprintf(cc->driver, sizeof cc->driver, "%s", rec_get(record, "driver"));
        snprintf(cc->bill, sizeof cc->bill, "%s", rec_get(record, "bill"));
        cc->amount = strtoll(rec_get(record, "amount"), NULL, 10);
    }

    cmn_rargs_init(a);
    cmn_rargs_str(a, "EVALSHA");
    cmn_rargs_str(a, cmn_redis_script_sha(e->gw->redis, e->gw->scripts[GW_LUA_EXIT_COMMIT]));
    cmn_rargs_int(a, 7 + e->conf->cfg->gateway.idempotency_days + 1);
    keys_common(e, a, names, 3);
    day_key(e, a, e->ts);
    cmn_rargs_cat(a, "pk:", e->tag, ":bills", NULL);
    cmn_rargs_cat(a, "pk:", e->tag, ":review", NULL);
    cmn_rargs_cat(a, "pk:", e->tag, ":s:", seq[0] ? seq : "-", NULL);
    keys_idem(e, a);
    idem_args(e, a);
    cmn_rargs_str(a, outcome);
    cmn_rargs_str(a, seq);
    cmn_rargs_str(a, expected);
    cmn_rargs_ref(a, answer->base ? answer->base : "", answer->len);
    cmn_rargs_str(a, status);
    cmn_rargs_str(a, held);
    cmn_rargs_ref(a, counters->base ? counters->base : "", counters->len);
    cmn_rargs_int(a, idem_ttl(e));
    cmn_rargs_int(a, RECORD_TTL_S);
    cmn_rargs_str(a, review);
    if (bill_stream != NULL)
        cmn_rargs_ref(a, bill_stream->base ? bill_stream->base : "", bill_stream->len);
    else
        cmn_rargs_str(a, "");
    for (int i = 0; i < record->n; i++) {
        cmn_rargs_str(a, record->key[i]);
        cmn_rargs_ref(a, record->val[i], record->len[i]);
    }
    int rc = a->overflow || record->overflow
                 ? CMN_ETOOBIG
                 : cmn_redis_command(e->gw->redis, on_commit, cc, a->n, a->v, a->len);
    if (rc != 0) {
        cmn_free(cc);
        unavailable(e, "cannot send to Redis");
    }
}

/* ---- entry point ------------------------------------------------------------------------- */

void gw_h_events(gw_t *gw, cmn_httpd_req_t *req)
{
    const cmn_cfg_device_t *dev;
    const char *why;
    gw_conf_t *conf = gw_conf_ref(gw);

    if (gw_auth_device(gw, conf->cfg, req, "POST", &dev, &why) != 0) {
        gw_conf_unref(conf);
        gw_metrics_error(&gw->metrics, "unauthorized");
        return gw_respond_error(req, 401, "unauthorized", "%s", why);
    }
    ev_t *e = cmn_xcalloc(1, sizeof *e);
    e->gw = gw;
    e->conf = conf;
    e->req = req;
    e->dev = dev;
    snprintf(e->device, sizeof e->device, "%s", dev->id);

    json_error_t err;
    json_t *doc = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &err);
    if (doc == NULL) {
        bad(gw, req, "malformed JSON at line %d, column %d: %s", err.line, err.column, err.text);
        ev_free(e);
        return;
    }
    int rc = validate(e, doc);
    json_decref(doc);
    if (rc != 0) {
        ev_free(e);
        return;
    }
    if (gw->redis == NULL || !cmn_redis_ready(gw->redis) || !gw->tariffs_stored)
        return unavailable(e, "Redis is unavailable");

    gw_idem_digests(e->device, e->event_id, req->body, req->body_len, e->idem_field,
                    e->body_hash);
    snprintf(e->tag, sizeof e->tag, "{%s}", e->lot->id);

    if (e->dir == GW_DIR_ENTRY)
        return send_entry(e);
    if (e->unreadable) {
        cmn_buf_t answer, counters;
        cmn_buf_init(&answer, 1024);
        cmn_buf_init(&counters, 256);
        tuple(&answer, "hold", GW_REASON_UNREADABLE, "none", NULL, NULL, 0, 0, NULL,
              "未识别车牌 请稍候");
        cmn_buf_puts(&counters, "hold:unreadable=1");
        struct record rec_store = {.n = 0}, *rec = &rec_store;
        add_field(rec, "lot", e->lot->id);
        add_field(rec, "lane", e->lane->id);
        add_int(rec, "ts", e->ts);
        add_field(rec, "device", e->device);
        add_field(rec, "event_id", e->event_id);
        commit(e, "none", "", "", &answer, "", "", &counters, "unreadable", NULL, rec);
        cmn_buf_dispose(&answer);
        cmn_buf_dispose(&counters);
        return;
    }
    send_lookup(e);
}
