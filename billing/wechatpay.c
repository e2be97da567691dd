/*
 * WeChat Pay API v3, the vehicle parking service (微信支付分停车服务): entry registration,
 * deductions and the queries of accepted deductions.  docs/providers.md has the wire protocol,
 * docs/billing.md the bill's states.
 *
 * Design note.
 *
 *   entry    each tick, the lot's entries stream pk:{L}:entries is read with the consumer group
 *            "wechatpay".  An entry whose plate copy (pk:plate:{F}) names a driver of a wechatpay
 *            provider becomes a parking: POST /v3/vehicle/parking/parkings with an out_parking_no
 *            derived from the session id (cmn_wxpay_parking_no).  The answer's parking id and state
 *            go to the lot's hash pk:{L}:wx (o:<out_parking_no> -> session number, s:<number> ->
 *            the parking), the state to the driver's `eligibility` (driver_eligibility, then the
 *            plate copies), which the gateway's exit decision reads.  An entry is acknowledged when
 *            done or refused for good (4xx); after a fault it stays pending and XAUTOCLAIM hands it
 *            back after 10 s.
 *   deduct   attempt n of a bill: out_trade_no = cmn_wxpay_trade_no(lot, session, n).  The body is
 *            built from the bill's fields, which never change once it exists, and the parking (the
 *            parking is created now if the entry did not register it), then recorded with the bill
 *            (wx_deduction) before the first try: every retry of the attempt sends those bytes
 *            again, so WeChat sees one payment whatever the number of tries.
 *   query    an accepted deduction whose result did not come by notification is asked about by its
 *            out_trade_no (GET /v3/vehicle/transactions/out-trade-no/{n}).
 *   crypto   each request is signed on libuv's thread pool (an RSA-2048 signature takes about a
 *            millisecond); answers are verified on the loop (a public-key check costs some tens of
 *            microseconds), against the platform key, with Wechatpay-Serial equal to
 *            platform_serial and Wechatpay-Timestamp within 300 s of the wall clock.  An answer
 *            that fails is never believed: it counts as a fault (transient), so a forged "SUCCESS"
 *            cannot settle a bill and a genuine one is asked for again with the same number.
 *
 * Times sent to WeChat and compared with its own (signatures, state changes) are the wall clock's:
 * billing's test clock (bill_now) moves only the bills' lifecycle.
 */
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "billing.h"
#include "cmn/buf.h"
#include "cmn/driver.h"
#include "cmn/err.h"
#include "cmn/json.h"
#include "cmn/log.h"
#include "cmn/mem.h"
#include "cmn/plate.h"
#include "cmn/rargs.h"
#include "cmn/time.h"
#include "cmn/wechatpay.h"

#define WX_WINDOW_S 300            /* answers signed further from now than this are refused */
#define WX_ANSWER_MAX (256 * 1024) /* bigger answers are a fault */
#define WX_CLAIM_IDLE_MS 10000
#define WX_BATCH 32
#define US "\x1f"

struct wx_keys {
    const cmn_cfg_provider_t *p;
    EVP_PKEY *merchant; /* signs our requests */
    EVP_PKEY *platform; /* WeChat's: verifies its answers */
};

struct bill_wx {
    struct wx_keys *keys;
    size_t nkeys;
    int *reading; /* per lot: an entries read is in flight */
    char **busy;  /* "<lot>\n<stream id>" of the entries being registered */
    size_t nbusy;
    size_t capbusy;
};

static int64_t wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

static const struct wx_keys *keys_of(const bill_t *b, const cmn_cfg_provider_t *p)
{
    for (size_t i = 0; b->wx != NULL && i < b->wx->nkeys; i++) {
        if (b->wx->keys[i].p == p)
            return &b->wx->keys[i];
    }
    return NULL;
}

static void copy_reply(char *out, size_t outsz, const redisReply *r, size_t i)
{
    size_t len = 0;
    const char *s = cmn_reply_str(r, i, &len);
    snprintf(out, outsz, "%.*s", s ? (int)(len < outsz - 1 ? len : outsz - 1) : 0, s ? s : "");
}

static int reply_ok(int status, const redisReply *r, const char *what)
{
    if (status != 0 || r == NULL) {
        cmn_log(CMN_LOG_WARN, "redis", "%s: %s", what, cmn_strerror(status ? status : CMN_EIO));
        return 0;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        cmn_log(CMN_LOG_ERROR, "redis", "%s: %.300s", what, r->str);
        return 0;
    }
    return 1;
}

/* Field i (0-based) of a record joined by the unit separator, into out. */
static void us_field(const char *rec, int i, char *out, size_t outsz)
{
    const char *s = rec;
    for (; i > 0 && s != NULL; i--) {
        s = strchr(s, '\x1f');
        if (s != NULL)
            s++;
    }
    if (s == NULL) {
        out[0] = '\0';
        return;
    }
    size_t n = strcspn(s, "\x1f");
    snprintf(out, outsz, "%.*s", (int)(n < outsz - 1 ? n : outsz - 1), s);
}

/* ---- keys ---------------------------------------------------------------------------------- */

int bill_wx_init(bill_t *b)
{
    int rc = 0;
    size_t n = 0;
    for (size_t i = 0; i < b->cfg->nproviders; i++)
        n += b->cfg->providers[i].kind == CMN_PROVIDER_WECHATPAY;
    if (n == 0)
        return 0;
    b->wx = cmn_xcalloc(1, sizeof *b->wx);
    b->wx->keys = cmn_xcalloc(n, sizeof *b->wx->keys);
    b->wx->reading = cmn_xcalloc(b->cfg->nlots ? b->cfg->nlots : 1, sizeof *b->wx->reading);
    for (size_t i = 0; i < b->cfg->nproviders; i++) {
        const cmn_cfg_provider_t *p = &b->cfg->providers[i];
        if (p->kind != CMN_PROVIDER_WECHATPAY)
            continue;
        struct wx_keys *k = &b->wx->keys[b->wx->nkeys++];
        k->p = p;
        if (cmn_pem_private_key(p->private_key.data, p->private_key.len, &k->merchant) != 0) {
            cmn_log(CMN_LOG_ERROR, "config",
                    "provider %s: private_key (%s) is not an RSA key of "
                    "at least 2048 bits",
                    p->id, p->private_key.source);
            rc = CMN_ECRYPTO;
        }
        if (cmn_pem_public_key(p->platform_public_key.data, p->platform_public_key.len,
                               &k->platform) != 0) {
            cmn_log(CMN_LOG_ERROR, "config",
                    "provider %s: platform_public_key (%s) is not an RSA "
                    "public key or certificate of at least 2048 bits",
                    p->id, p->platform_public_key.source);
            rc = CMN_ECRYPTO;
        }
    }
    return rc;
}

void bill_wx_dispose(bill_t *b)
{
    if (b->wx == NULL)
        return;
    for (size_t i = 0; i < b->wx->nkeys; i++) {
        EVP_PKEY_free(b->wx->keys[i].merchant);
        EVP_PKEY_free(b->wx->keys[i].platform);
    }
    for (size_t i = 0; i < b->wx->nbusy; i++)
        cmn_free(b->wx->busy[i]);
    cmn_free(b->wx->busy);
    cmn_free(b->wx->keys);
    cmn_free(b->wx->reading);
    cmn_free(b->wx);
    b->wx = NULL;
}

/* ---- one signed request, one verified answer ------------------------------------------------ */

struct wx_call;
typedef void (*wx_done_cb)(struct wx_call *call);

struct wx_call {
    bill_t *b;
    const struct wx_keys *k;
    char method[8];
    char path[192];
    char *body; /* owned; "" for GET */
    size_t body_len;
    cmn_buf_t auth; /* "Authorization: WECHATPAY2-SHA256-RSA2048 ..." */
    int sign_rc;
    uv_work_t work;
    wx_done_cb done;
    void *data;
    /* the answer */
    long status;
    int error;    /* 0, or why no answer came (CMN_ETIMEOUT, CMN_EIO, ... or a signing failure) */
    int verified; /* the answer's signature, serial and time were checked */
    char why[128];
    const char *answer; /* borrowed from the response while done runs: read it there, not later */
    size_t answer_len;
};

static void call_free(struct wx_call *c)
{
    if (c == NULL)
        return;
    cmn_free(c->body);
    cmn_buf_dispose(&c->auth);
    cmn_free(c);
}

/* A header's value as a bounded C string; 0 when absent or too long. */
static int header(const cmn_http_response_t *resp, const char *name, char *out, size_t outsz)
{
    size_t n = 0;
    const char *v = cmn_http_response_header(resp, name, &n);
    if (v == NULL || n == 0 || n >= outsz)
        return 0;
    memcpy(out, v, n);
    out[n] = '\0';
    return 1;
}

static int verify_answer(const struct wx_keys *k, const cmn_http_response_t *resp, char *why,
                         size_t whysz)
{
    char ts[24], nonce[80], serial[80], sig[1024];
    if (!header(resp, "Wechatpay-Timestamp", ts, sizeof ts) ||
        !header(resp, "Wechatpay-Nonce", nonce, sizeof nonce) ||
        !header(resp, "Wechatpay-Serial", serial, sizeof serial) ||
        !header(resp, "Wechatpay-Signature", sig, sizeof sig)) {
        snprintf(why, whysz, "unsigned answer (HTTP %ld)", resp->status);
        return 0;
    }
    if (strcmp(serial, k->p->platform_serial) != 0) {
        snprintf(why, whysz, "signed with platform key %.40s, not %.40s", serial,
                 k->p->platform_serial);
        return 0;
    }
    char *end;
    long long t = strtoll(ts, &end, 10);
    int64_t now = wall_now();
    if (*end != '\0' || t < now - WX_WINDOW_S || t > now + WX_WINDOW_S) {
        snprintf(why, whysz, "answer signed at %.20s, outside %d s of now", ts, WX_WINDOW_S);
        return 0;
    }
    if (cmn_wxpay_verify(k->platform, ts, nonce, resp->body, resp->body_len, sig) != 0) {
        snprintf(why, whysz, "the answer's signature does not verify");
        return 0;
    }
    return 1;
}

static void on_answer(void *data, const cmn_http_response_t *resp)
{
    struct wx_call *c = data;
    c->status = resp->status;
    c->error = resp->error;
    if (resp->error == 0) {
        c->verified = verify_answer(c->k, resp, c->why, sizeof c->why);
        c->answer = resp->body;
        c->answer_len = resp->body_len;
        if (!c->verified)
            cmn_log(CMN_LOG_ERROR, "wechatpay_unverified", "%s %s: %s: not believed", c->method,
                    c->path, c->why);
    } else {
        snprintf(c->why, sizeof c->why, "%s", resp->error_text);
    }
    c->done(c);
}

/* Runs on the thread pool: nothing here touches the loop. */
static void sign_work(uv_work_t *w)
{
    struct wx_call *c = w->data;
    char nonce[33];
    c->sign_rc = cmn_wxpay_nonce(nonce);
    if (c->sign_rc == 0)
        c->sign_rc = cmn_buf_puts(&c->auth, "Authorization: ");
    if (c->sign_rc == 0)
        c->sign_rc =
            cmn_wxpay_authorization(c->k->merchant, c->k->p->mchid, c->k->p->serial_no, c->method,
                                    c->path, c->body, c->body_len, wall_now(), nonce, &c->auth);
}

static void after_sign(uv_work_t *w, int status)
{
    struct wx_call *c = w->data;
    const cmn_cfg_provider_t *p = c->k->p;
    cmn_buf_t url;
    int rc = status != 0 ? CMN_EIO : c->sign_rc;
    cmn_buf_init(&url, 4096);
    if (rc == 0 && cmn_buf_printf(&url, "%s%s", p->base_url, c->path) != 0)
        rc = CMN_EINVAL;
    if (rc == 0) {
        const char *headers[] = {c->auth.base, "Content-Type: application/json",
                                 "Accept: application/json", "User-Agent: park-billing"};
        cmn_http_request_t req = {
            .method = c->method,
            .url = url.base,
            .headers = headers,
            .nheaders = 4,
            .body = c->body,
            .body_len = c->body_len,
            .connect_timeout_ms = p->connect_timeout_ms,
            .timeout_ms = p->timeout_ms,
            .max_response_bytes = WX_ANSWER_MAX,
        };
        rc = cmn_http_request(c->b->http, &req, on_answer, c);
    }
    cmn_buf_dispose(&url);
    if (rc != 0) {
        /* Not sent (a cancelled work item counts as a network fault, a key that cannot sign as a
         * configuration fault): said on this later turn, never inside the caller's call. */
        c->error = rc;
        snprintf(c->why, sizeof c->why, "request not sent: %s", cmn_strerror(rc));
        if (rc != CMN_EIO)
            cmn_log(CMN_LOG_ERROR, "wechatpay_request", "%s %s: %s", c->method, c->path, c->why);
        c->done(c);
    }
}

/* Takes body (may be NULL for GET).  The call reports through done exactly once, later. */
static struct wx_call *call_new(bill_t *b, const struct wx_keys *k, const char *method,
                                const char *path, char *body, wx_done_cb done, void *data)
{
    struct wx_call *c = cmn_xcalloc(1, sizeof *c);
    c->b = b;
    c->k = k;
    snprintf(c->method, sizeof c->method, "%s", method);
    snprintf(c->path, sizeof c->path, "%s", path);
    c->body = body != NULL ? body : cmn_xstrdup("");
    c->body_len = strlen(c->body);
    cmn_buf_init(&c->auth, 2048);
    c->done = done;
    c->data = data;
    c->work.data = c;
    return c;
}

static void call_start(struct wx_call *c)
{
    int rc = uv_queue_work(c->b->loop, &c->work, sign_work, after_sign);
    if (rc != 0) {
        /* Only with invalid arguments; say it as a failed signature on a later turn. */
        cmn_log(CMN_LOG_ERROR, "wechatpay_request", "uv_queue_work: %s", uv_strerror(rc));
        c->sign_rc = CMN_EINVAL;
        c->work.data = c;
        after_sign(&c->work, 0);
    }
}

/* The answer's error code ("PARAM_ERROR", ...), for logs and alerts. */
static void answer_code(const char *body, size_t len, char *out, size_t outsz)
{
    json_error_t err;
    json_t *doc = json_loadb(body, len, 0, &err);
    const char *code = json_string_value(json_object_get(doc, "code"));
    snprintf(out, outsz, "%.40s", code ? code : "error");
    json_decref(doc);
}

/* ---- outcomes ------------------------------------------------------------------------------ */

/* What the transport and the status say, before the body: 1 when that decides the outcome. */
static int answer_outcome(long status, int error, int verified, const char *body, size_t body_len,
                          bill_outcome_t *o)
{
    memset(o, 0, sizeof *o);
    if (error == CMN_ETIMEOUT || error == CMN_EIO || error == CMN_ETOOBIG) {
        o->kind = BILL_OUT_TRANSIENT;
        snprintf(o->code, sizeof o->code, "%s", error == CMN_ETIMEOUT ? "timeout" : "network");
        return 1;
    }
    if (error != 0) {
        o->kind = BILL_OUT_ALERT; /* not sent: a key that cannot sign, a bad base_url */
        snprintf(o->code, sizeof o->code, "request_not_sent");
        return 1;
    }
    if (!verified) {
        o->kind = BILL_OUT_TRANSIENT;
        snprintf(o->code, sizeof o->code, "unverified_answer_http_%ld", status);
        return 1;
    }
    char code[48];
    if (status == 429 || status >= 500) {
        answer_code(body, body_len, code, sizeof code);
        o->kind = BILL_OUT_TRANSIENT;
        snprintf(o->code, sizeof o->code, "http_%ld_%s", status, code);
        return 1;
    }
    if (status != 200) {
        /* PARAM_ERROR, INVALID_REQUEST (a number re-used with other parameters), NO_AUTH, an
         * order that does not exist...: retrying cannot help, and a new number could pay twice. */
        answer_code(body, body_len, code, sizeof code);
        o->kind = BILL_OUT_ALERT;
        snprintf(o->code, sizeof o->code, "http_%ld_%s", status, code);
        return 1;
    }
    return 0;
}

void bill_wx_outcome(long status, int error, int verified, const char *body, size_t body_len,
                     const char *out_trade_no, bill_outcome_t *o)
{
    if (answer_outcome(status, error, verified, body, body_len, o))
        return;
    json_error_t err;
    json_t *doc = json_loadb(body, body_len, 0, &err);
    const char *no = json_string_value(json_object_get(doc, "out_trade_no"));
    const char *st = json_string_value(json_object_get(doc, "trade_state"));
    const char *tx = json_string_value(json_object_get(doc, "transaction_id"));
    snprintf(o->ref, sizeof o->ref, "%s", tx ? tx : "");
    if (doc == NULL || no == NULL || st == NULL) {
        o->kind = BILL_OUT_TRANSIENT;
        snprintf(o->code, sizeof o->code, "malformed_answer");
    } else if (strcmp(no, out_trade_no) != 0) {
        o->kind = BILL_OUT_ALERT;
        snprintf(o->code, sizeof o->code, "answer_for_another_out_trade_no");
    } else if (strcmp(st, "SUCCESS") == 0 || strcmp(st, "REFUND") == 0) {
        /* REFUND: it was paid, then refunded (by a person, at WeChat): money moved. */
        o->kind = BILL_OUT_PAID;
    } else if (strcmp(st, "ACCEPTED") == 0) {
        o->kind = BILL_OUT_ACCEPTED;
        snprintf(o->code, sizeof o->code, "ACCEPTED");
    } else if (strcmp(st, "PAY_FAIL") == 0) {
        o->kind = BILL_OUT_DECLINED;
        snprintf(o->code, sizeof o->code, "PAY_FAIL");
    } else {
        o->kind = BILL_OUT_TRANSIENT;
        snprintf(o->code, sizeof o->code, "trade_state_%.40s", st);
    }
    json_decref(doc);
}

void bill_wx_refund_outcome(long status, int error, int verified, const char *body,
                            size_t body_len, const char *out_refund_no, bill_outcome_t *o)
{
    if (answer_outcome(status, error, verified, body, body_len, o))
        return;
    json_error_t err;
    json_t *doc = json_loadb(body, body_len, 0, &err);
    const char *no = json_string_value(json_object_get(doc, "out_refund_no"));
    const char *st = json_string_value(json_object_get(doc, "status"));
    const char *id = json_string_value(json_object_get(doc, "refund_id"));
    snprintf(o->ref, sizeof o->ref, "%s", id ? id : "");
    if (doc == NULL || no == NULL || st == NULL) {
        o->kind = BILL_OUT_TRANSIENT;
        snprintf(o->code, sizeof o->code, "malformed_answer");
    } else if (strcmp(no, out_refund_no) != 0) {
        o->kind = BILL_OUT_ALERT;
        snprintf(o->code, sizeof o->code, "answer_for_another_out_refund_no");
    } else if (strcmp(st, "SUCCESS") == 0) {
        o->kind = BILL_OUT_PAID; /* the money went back */
    } else if (strcmp(st, "PROCESSING") == 0) {
        /* Accepted, not done: asked again later with the same number, which WeChat answers
         * with that refund's state and never refunds twice. */
        o->kind = BILL_OUT_TRANSIENT;
        snprintf(o->code, sizeof o->code, "refund_processing");
    } else {
        /* CLOSED, ABNORMAL (the driver's account cannot take it back): for a person. */
        o->kind = BILL_OUT_ALERT;
        snprintf(o->code, sizeof o->code, "refund_%.40s", st);
    }
    json_decref(doc);
}

/* ---- request bodies -------------------------------------------------------------------------- */

/* WeChat's plate colours, from the plate's kind (a large new-energy plate is LIMEGREEN, which the
 * kind does not tell: GREEN is the common case). */
static const char *plate_color(const char *plate)
{
    cmn_plate_t pl;
    if (cmn_plate_parse(plate, strlen(plate), &pl) != 0)
        return "BLUE";
    switch (pl.kind) {
    case CMN_PLATE_NEW_ENERGY:
        return "GREEN";
    case CMN_PLATE_COACH:
    case CMN_PLATE_TRAILER:
        return "YELLOW";
    case CMN_PLATE_POLICE:
        return "WHITE";
    case CMN_PLATE_HONG_KONG:
    case CMN_PLATE_MACAU:
    case CMN_PLATE_CONSULATE:
    case CMN_PLATE_EMBASSY:
        return "BLACK";
    default:
        return "BLUE";
    }
}

/* RFC 3339 at the lot's UTC offset (+08:00 in China), as WeChat writes times. */
static void lot_time(const cmn_cfg_lot_t *lot, long long t, char *out, size_t outsz)
{
    cmn_rfc3339_format((cmn_instant_t)t, cmn_tariff_utc_offset(lot->tariff, (cmn_instant_t)t), 0,
                       out, outsz);
}

/*
 * The parking of a session, from what never changes once the session exists (its number, plate,
 * entry time and class) and the configuration: the entry's registration and a late one from the
 * charge path send the same bytes.
 */
static char *parking_body(const cmn_cfg_provider_t *p, const cmn_cfg_lot_t *lot, const char *no,
                          const char *plate, const char *vclass, long long entry)
{
    char start[CMN_RFC3339_MAX];
    const cmn_tariff_rules_t *rules = cmn_tariff_rules(lot->tariff, vclass);
    lot_time(lot, entry, start, sizeof start);
    json_t *o = json_object();
    json_object_set_new(o, "out_parking_no", json_string(no));
    json_object_set_new(o, "plate_number", json_string(plate));
    json_object_set_new(o, "plate_color", json_string(plate_color(plate)));
    json_object_set_new(o, "notify_url", json_string(p->notify_url));
    json_object_set_new(o, "start_time", json_string(start));
    json_object_set_new(o, "parking_name", json_string(lot->name));
    json_object_set_new(o, "free_duration",
                        json_integer(rules != NULL ? rules->free_minutes * 60 : 0));
    char *s = cmn_json_dump(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

/* The parking's verdict as the driver's eligibility: NORMAL or BLOCKED:<reason>. */
static void eligibility_of(const char *state, const char *reason, char *out, size_t outsz)
{
    if (state != NULL && strcmp(state, "NORMAL") == 0) {
        snprintf(out, outsz, "NORMAL");
        return;
    }
    char r[32] = "";
    size_t n = 0;
    /* WeChat's reasons are upper-case words (PAUSE, OVERDUE, OUT_SERVICE, EVALUATION_FAILED);
     * anything else is cut to that alphabet, so the record's separators cannot appear. */
    for (const char *s = reason ? reason : ""; *s && n < 24; s++) {
        if ((*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_')
            r[n++] = *s;
    }
    r[n] = '\0';
    snprintf(out, outsz, "BLOCKED%s%s", n ? ":" : "", r);
}

/* ---- the driver's eligibility ------------------------------------------------------------- */

typedef void (*elig_done_cb)(void *data);

struct elig_ctx {
    bill_t *b;
    char driver[65];
    elig_done_cb then;
    void *data;
};

static void on_eligibility(void *data, int status, redisReply *r)
{
    struct elig_ctx *e = data;
    if (reply_ok(status, r, "driver_eligibility") && r->type == REDIS_REPLY_ARRAY) {
        if (cmn_reply_is(r, "ok")) {
            const char *snap = cmn_reply_str(r, 1, NULL);
            const char *plates = cmn_reply_str(r, 2, NULL);
            if (snap != NULL && plates != NULL)
                cmn_driver_mirror(e->b->redis, e->b->scripts[BILL_LUA_PLATE_MIRROR], e->driver,
                                  plates, snap);
        } else if (cmn_reply_is(r, "unknown")) {
            cmn_log(CMN_LOG_WARN, "eligibility", "driver %s no longer exists", e->driver);
        }
    }
    e->then(e->data);
    cmn_free(e);
}

static void set_eligibility(bill_t *b, const char *driver, const char *eligibility, long long at,
                            const char *cause, elig_done_cb then, void *data)
{
    struct elig_ctx *e = cmn_xcalloc(1, sizeof *e);
    cmn_rargs_t *a = cmn_xalloc(sizeof *a);
    e->b = b;
    snprintf(e->driver, sizeof e->driver, "%s", driver);
    e->then = then;
    e->data = data;
    cmn_rargs_init(a);
    cmn_rargs_str(a, "EVALSHA");
    cmn_rargs_str(a, cmn_redis_script_sha(b->redis, b->scripts[BILL_LUA_DRIVER_ELIGIBILITY]));
    cmn_rargs_int(a, 2);
    cmn_rargs_fmt(a, "pk:drv:{%s}", driver);
    cmn_rargs_fmt(a, "pk:drv:{%s}:history", driver);
    cmn_rargs_str(a, eligibility);
    cmn_rargs_int(a, at);
    cmn_rargs_int(a, bill_now(b));
    cmn_rargs_str(a, cause);
    cmn_log(CMN_LOG_INFO, "eligibility", "driver %s: %s (%s)", driver, eligibility, cause);
    if (a->overflow || cmn_redis_command(b->redis, on_eligibility, e, a->n, a->v, a->len) != 0) {
        cmn_free(e);
        then(data);
    }
    cmn_free(a);
}

static void on_acked(void *data, int status, redisReply *r)
{
    (void)data;
    reply_ok(status, r, "XACK");
}

static void xack(bill_t *b, const char *lot, const char *stream, const char *group, const char *id)
{
    cmn_rargs_t a;
    cmn_rargs_init(&a);
    cmn_rargs_str(&a, "XACK");
    cmn_rargs_fmt(&a, "pk:{%s}:%s", lot, stream);
    cmn_rargs_str(&a, group);
    cmn_rargs_str(&a, id);
    if (cmn_redis_command(b->redis, on_acked, NULL, a.n, a.v, a.len) != 0)
        cmn_log(CMN_LOG_WARN, "redis", "XACK not sent");
}

/* A parking as kept in pk:{L}:wx s:<n>: parking id, out_parking_no, driver, plate, state as
 * eligibility, as of (unix s), provider. */
static void parking_record(cmn_buf_t *out, const char *id, const char *no, const char *driver,
                           const char *plate, const char *elig, long long at, const char *provider)
{
    cmn_buf_printf(out, "%s" US "%s" US "%s" US "%s" US "%s" US "%lld" US "%s", id, no, driver,
                   plate, elig, at, provider);
}

/* ---- entry registration ------------------------------------------------------------------- */

struct wx_entry {
    bill_t *b;
    const cmn_cfg_lot_t *lot;
    const struct wx_keys *k;
    char *busy;  /* our key in the busy list */
    char id[64]; /* stream entry */
    char seq[24];
    char plate[CMN_PLATE_MAX];
    char vclass[33];
    long long ts;
    char driver[65];
    char no[CMN_WXPAY_NO_MAX + 1];
    int pending; /* replies still expected */
    int failed;  /* Redis failed: leave the entry pending */
    char *snapshot;
    char *parking;
    char elig[40];
    long long at;
};

static void busy_remove(bill_t *b, const char *key)
{
    struct bill_wx *w = b->wx;
    for (size_t i = 0; i < w->nbusy; i++) {
        if (w->busy[i] == key) {
            w->busy[i] = w->busy[--w->nbusy];
            return;
        }
    }
}

static int busy_has(const bill_t *b, const char *key)
{
    for (size_t i = 0; i < b->wx->nbusy; i++) {
        if (strcmp(b->wx->busy[i], key) == 0)
            return 1;
    }
    return 0;
}

/* The end of an entry's work: acknowledged (done, or refused for good) or left pending. */
static void entry_finish(struct wx_entry *e, int ack)
{
    bill_t *b = e->b;
    if (ack)
        xack(b, e->lot->id, "entries", "wechatpay", e->id);
    busy_remove(b, e->busy);
    cmn_free(e->busy);
    cmn_free(e->snapshot);
    cmn_free(e->parking);
    cmn_free(e);
    b->wx_in_flight--;
}

static void entry_eligibility_done(void *data)
{
    entry_finish(data, 1);
}

static void on_parking_stored(void *data, int status, redisReply *r)
{
    struct wx_entry *e = data;
    if (!reply_ok(status, r, "pk:{L}:wx"))
        return entry_finish(e, 0);
    char cause[120];
    snprintf(cause, sizeof cause, "entry %s~%s", e->lot->id, e->seq);
    set_eligibility(e->b, e->driver, e->elig, e->at, cause, entry_eligibility_done, e);
}

/* Records a parking in the lot's hash: o:<out_parking_no> -> session number, s:<n> -> parking. */
static int store_parking(bill_t *b, const char *lot, const char *seq, const char *no,
                         const char *record, cmn_redis_cb cb, void *data)
{
    cmn_rargs_t a;
    cmn_rargs_init(&a);
    cmn_rargs_str(&a, "HSET");
    cmn_rargs_fmt(&a, "pk:{%s}:wx", lot);
    cmn_rargs_fmt(&a, "o:%s", no);
    cmn_rargs_str(&a, seq);
    cmn_rargs_fmt(&a, "s:%s", seq);
    cmn_rargs_str(&a, record);
    if (a.overflow)
        return CMN_ETOOBIG;
    return cmn_redis_command(b->redis, cb, data, a.n, a.v, a.len);
}

/*
 * A parking's answer: its id and state.  Returns 1 with them, 0 with the log written when the
 * answer is a fault (the entry is tried again) and -1 when it is a refusal (it never will be).
 */
static int parking_answer(const struct wx_call *c, const char *no, char *id, size_t idsz,
                          char *elig, size_t eligsz, char *code, size_t codesz)
{
    if (c->error != 0 || !c->verified || c->status == 429 || c->status >= 500) {
        snprintf(code, codesz, "parking_%s",
                 c->error       ? "network"
                 : !c->verified ? "unverified_answer"
                                : "http_5xx");
        cmn_log(CMN_LOG_WARN, "parking_retry",
                "parking %s: no usable answer (HTTP %ld %s), "
                "trying again later",
                no, c->status, c->why);
        return 0;
    }
    if (c->status != 200) {
        char ecode[48];
        answer_code(c->answer, c->answer_len, ecode, sizeof ecode);
        snprintf(code, codesz, "parking_http_%ld_%s", c->status, ecode);
        cmn_log(CMN_LOG_ERROR, "parking_refused", "parking %s: HTTP %ld %s", no, c->status, ecode);
        return -1;
    }
    json_error_t err;
    json_t *doc = json_loadb(c->answer, c->answer_len, 0, &err);
    const char *pid = json_string_value(json_object_get(doc, "id"));
    const char *state = json_string_value(json_object_get(doc, "state"));
    const char *reason = json_string_value(json_object_get(doc, "block_reason"));
    const char *echo = json_string_value(json_object_get(doc, "out_parking_no"));
    int rc = -1;
    if (pid == NULL || pid[0] == '\0' || strlen(pid) >= idsz || state == NULL ||
        (echo != NULL && strcmp(echo, no) != 0) || strchr(pid, '\x1f') != NULL) {
        snprintf(code, codesz, "parking_malformed_answer");
        cmn_log(CMN_LOG_ERROR, "parking_refused", "parking %s: answer without a usable id", no);
    } else {
        snprintf(id, idsz, "%s", pid);
        eligibility_of(state, reason, elig, eligsz);
        rc = 1;
    }
    json_decref(doc);
    return rc;
}

static void on_entry_parking(struct wx_call *c)
{
    struct wx_entry *e = c->data;
    char id[96], code[96];
    int rc = parking_answer(c, e->no, id, sizeof id, e->elig, sizeof e->elig, code, sizeof code);
    call_free(c);
    if (rc <= 0)
        return entry_finish(e, rc < 0);
    e->b->stats.parkings++;
    e->at = wall_now();
    cmn_log(CMN_LOG_INFO, "parking", "session %s~%s: parking %s is %s", e->lot->id, e->seq, id,
            e->elig);
    cmn_buf_t rec;
    cmn_buf_init(&rec, 1024);
    parking_record(&rec, id, e->no, e->driver, e->plate, e->elig, e->at, e->k->p->id);
    int sent = rec.base != NULL &&
               store_parking(e->b, e->lot->id, e->seq, e->no, rec.base, on_parking_stored, e) == 0;
    cmn_buf_dispose(&rec);
    if (!sent)
        entry_finish(e, 0);
}

/* Both reads are in: the plate's copy of its driver and a parking already recorded. */
static void entry_decide(struct wx_entry *e)
{
    bill_t *b = e->b;
    if (e->failed)
        return entry_finish(e, 0);
    char ver[24] = "", provider[65] = "";
    if (e->snapshot != NULL) {
        us_field(e->snapshot, 0, e->driver, sizeof e->driver);
        us_field(e->snapshot, 1, ver, sizeof ver);
        us_field(e->snapshot, 7, provider, sizeof provider);
    }
    const cmn_cfg_provider_t *p = cmn_config_provider(b->cfg, provider);
    e->k = p != NULL ? keys_of(b, p) : NULL;
    if (e->driver[0] == '\0' || strcmp(ver, "0") == 0 || e->k == NULL)
        return entry_finish(e, 1); /* not a driver of WeChat Pay: nothing to tell it */
    if (e->parking != NULL) {
        /* Registered before (this entry is delivered again after a crash): the driver's
         * eligibility is set again as of the registration, which a later verdict outranks. */
        char at[24], cause[120];
        us_field(e->parking, 4, e->elig, sizeof e->elig);
        us_field(e->parking, 5, at, sizeof at);
        snprintf(cause, sizeof cause, "entry %s~%s", e->lot->id, e->seq);
        return set_eligibility(b, e->driver, e->elig, strtoll(at, NULL, 10), cause,
                               entry_eligibility_done, e);
    }
    if (cmn_wxpay_parking_no(e->lot->id, e->seq, e->no) != 0) {
        cmn_log(CMN_LOG_ERROR, "parking_refused", "session %s~%s has no parking number", e->lot->id,
                e->seq);
        return entry_finish(e, 1);
    }
    char *body = parking_body(e->k->p, e->lot, e->no, e->plate, e->vclass, e->ts);
    if (body == NULL)
        return entry_finish(e, 1);
    call_start(
        call_new(b, e->k, "POST", "/v3/vehicle/parking/parkings", body, on_entry_parking, e));
}

static void on_entry_read(void *data, int status, redisReply *r, char **slot)
{
    struct wx_entry *e = data;
    if (!reply_ok(status, r, "entry registration"))
        e->failed = 1;
    else if (r->type == REDIS_REPLY_STRING)
        *slot = cmn_xstrndup(r->str, r->len);
    if (--e->pending == 0)
        entry_decide(e);
}

static void on_entry_snapshot(void *data, int status, redisReply *r)
{
    struct wx_entry *e = data;
    on_entry_read(data, status, r, &e->snapshot);
}

static void on_entry_parking_read(void *data, int status, redisReply *r)
{
    struct wx_entry *e = data;
    on_entry_read(data, status, r, &e->parking);
}

static void entry_start(bill_t *b, const cmn_cfg_lot_t *lot, const redisReply *entry)
{
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 2 ||
        entry->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *id = entry->element[0]->str;
    char key[160];
    snprintf(key, sizeof key, "%s\n%s", lot->id, id);
    if (busy_has(b, key))
        return; /* taken back by XAUTOCLAIM while its registration is still in flight */
    const redisReply *f = entry->element[1];
    struct wx_entry *e = cmn_xcalloc(1, sizeof *e);
    char session[100] = "", fold[CMN_PLATE_MAX];
    e->b = b;
    e->lot = lot;
    snprintf(e->id, sizeof e->id, "%s", id);
    for (size_t i = 0; f->type == REDIS_REPLY_ARRAY && i + 1 < f->elements; i += 2) {
        const char *k = f->element[i]->str, *v = f->element[i + 1]->str;
        if (k == NULL || v == NULL)
            continue;
        if (strcmp(k, "session") == 0)
            snprintf(session, sizeof session, "%s", v);
        else if (strcmp(k, "n") == 0) /* the session's number: lot~n (entries since the buckets) */
            snprintf(session, sizeof session, "%s~%s", lot->id, v);
        else if (strcmp(k, "plate") == 0)
            snprintf(e->plate, sizeof e->plate, "%s", v);
        else if (strcmp(k, "class") == 0)
            snprintf(e->vclass, sizeof e->vclass, "%s", v);
        else if (strcmp(k, "ts") == 0)
            e->ts = strtoll(v, NULL, 10);
    }
    const char *tilde = strrchr(session, '~');
    if (tilde == NULL || (size_t)(tilde - session) != strlen(lot->id) ||
        strncmp(session, lot->id, strlen(lot->id)) != 0 ||
        cmn_plate_fold_key(e->plate, 1, fold, sizeof fold) < 0) {
        cmn_log(CMN_LOG_ERROR, "parking_refused", "lot %s: entry %s names no session of it",
                lot->id, id);
        xack(b, lot->id, "entries", "wechatpay", id);
        cmn_free(e);
        return;
    }
    snprintf(e->seq, sizeof e->seq, "%s", tilde + 1);
    e->busy = cmn_xstrdup(key);
    struct bill_wx *w = b->wx;
    if (w->nbusy == w->capbusy) {
        w->capbusy = w->capbusy ? 2 * w->capbusy : 16;
        w->busy = cmn_xrealloc(w->busy, w->capbusy * sizeof *w->busy);
    }
    w->busy[w->nbusy++] = e->busy;
    b->wx_in_flight++;

    cmn_rargs_t a;
    cmn_rargs_init(&a);
    cmn_rargs_str(&a, "HGET");
    cmn_rargs_fmt(&a, "pk:plate:{%s}", fold);
    cmn_rargs_str(&a, e->plate);
    e->pending = 2;
    if (cmn_redis_command(b->redis, on_entry_snapshot, e, a.n, a.v, a.len) != 0) {
        e->failed = 1;
        e->pending--;
    }
    cmn_rargs_init(&a);
    cmn_rargs_str(&a, "HGET");
    cmn_rargs_fmt(&a, "pk:{%s}:wx", lot->id);
    cmn_rargs_fmt(&a, "s:%s", e->seq);
    if (cmn_redis_command(b->redis, on_entry_parking_read, e, a.n, a.v, a.len) != 0) {
        e->failed = 1;
        e->pending--;
    }
    if (e->pending == 0)
        entry_finish(e, 0); /* the client is closing: nothing was sent */
}

struct wx_read {
    bill_t *b;
    const cmn_cfg_lot_t *lot;
};

static void on_entries(void *data, int status, redisReply *r)
{
    struct wx_read *rd = data;
    bill_t *b = rd->b;
    if (reply_ok(status, r, "entries stream") && !b->stopping) {
        const redisReply *entries = cmn_stream_entries(r);
        for (size_t i = 0; entries != NULL && i < entries->elements; i++)
            entry_start(b, rd->lot, entries->element[i]);
    }
    b->wx->reading[rd->lot - b->cfg->lots] = 0;
    b->wx_in_flight--;
    cmn_free(rd);
}

void bill_wx_tick(bill_t *b, const cmn_cfg_lot_t *lot, int reclaim)
{
    size_t li = (size_t)(lot - b->cfg->lots);
    if (b->wx == NULL || b->stopping || b->wx->reading[li])
        return;
    cmn_rargs_t *a = cmn_xalloc(sizeof *a);
    char key[96];
    snprintf(key, sizeof key, "pk:{%s}:entries", lot->id);
    cmn_rargs_stream_read(a, key, "wechatpay", b->consumer, reclaim, WX_CLAIM_IDLE_MS, WX_BATCH);
    struct wx_read *rd = cmn_xcalloc(1, sizeof *rd);
    rd->b = b;
    rd->lot = lot;
    if (cmn_redis_command(b->redis, on_entries, rd, a->n, a->v, a->len) == 0) {
        b->wx->reading[li] = 1;
        b->wx_in_flight++;
    } else {
        cmn_free(rd);
    }
    cmn_free(a);
}

/* ---- state changes notified ------------------------------------------------------------- */

struct wx_event {
    bill_t *b;
    char lot[65];
    char id[64];
    char seq[24];
    char no[CMN_WXPAY_NO_MAX + 1];
    char elig[40];
    long long at;
};

static void event_done(void *data)
{
    struct wx_event *ev = data;
    xack(ev->b, ev->lot, "provider", "billing", ev->id);
    ev->b->wx_in_flight--;
    cmn_free(ev);
}

static void on_event_parking(void *data, int status, redisReply *r)
{
    struct wx_event *ev = data;
    if (!reply_ok(status, r, "pk:{L}:wx")) {
        /* Left pending: XAUTOCLAIM brings it back. */
        ev->b->wx_in_flight--;
        cmn_free(ev);
        return;
    }
    char no[CMN_WXPAY_NO_MAX + 1] = "", driver[65] = "";
    if (r->type == REDIS_REPLY_STRING) {
        char *rec = cmn_xstrndup(r->str, r->len);
        us_field(rec, 1, no, sizeof no);
        us_field(rec, 2, driver, sizeof driver);
        cmn_free(rec);
    }
    if (driver[0] == '\0' || strcmp(no, ev->no) != 0) {
        cmn_log(CMN_LOG_WARN, "parking_state", "parking %s: no parking of ours, dropped", ev->no);
        return event_done(ev);
    }
    char cause[120];
    snprintf(cause, sizeof cause, "notification for %s~%s", ev->lot, ev->seq);
    set_eligibility(ev->b, driver, ev->elig, ev->at, cause, event_done, ev);
}

void bill_wx_parking_event(bill_t *b, const char *lot, const char *entry_id, const char *seq,
                           const char *out_parking_no, const char *state, const char *reason,
                           long long at)
{
    struct wx_event *ev = cmn_xcalloc(1, sizeof *ev);
    ev->b = b;
    snprintf(ev->lot, sizeof ev->lot, "%s", lot);
    snprintf(ev->id, sizeof ev->id, "%s", entry_id);
    snprintf(ev->seq, sizeof ev->seq, "%s", seq);
    snprintf(ev->no, sizeof ev->no, "%s", out_parking_no);
    eligibility_of(state, reason, ev->elig, sizeof ev->elig);
    ev->at = at;
    b->wx_in_flight++;
    if (strcmp(state, "NORMAL") != 0 && strcmp(state, "BLOCKED") != 0) {
        cmn_log(CMN_LOG_WARN, "parking_state", "parking %s: state %.40s ignored", out_parking_no,
                state);
        return event_done(ev);
    }
    cmn_rargs_t a;
    cmn_rargs_init(&a);
    cmn_rargs_str(&a, "HGET");
    cmn_rargs_fmt(&a, "pk:{%s}:wx", lot);
    cmn_rargs_fmt(&a, "s:%s", seq);
    if (cmn_redis_command(b->redis, on_event_parking, ev, a.n, a.v, a.len) != 0) {
        b->wx_in_flight--;
        cmn_free(ev);
    }
}

/* ---- deductions and queries ---------------------------------------------------------------- */

struct wx_charge {
    bill_t *b;
    bill_charge_t c;
    const struct wx_keys *k;
    const cmn_cfg_lot_t *lot;
    char otn[CMN_WXPAY_NO_MAX + 1];
    bill_outcome_cb cb;
    void *data;
    /* the bill, for a body not recorded yet */
    long long entry;
    long long exit;
    char plate[CMN_PLATE_MAX];
    char device[65];
    char vclass[33];
    char parking_id[96];
    char parking_plate[CMN_PLATE_MAX];
    char no[CMN_WXPAY_NO_MAX + 1];
};

static void charge_end(struct wx_charge *ch, const bill_outcome_t *o)
{
    ch->cb(ch->data, o);
    cmn_free(ch);
}

static void charge_fail(struct wx_charge *ch, bill_outcome_kind_t kind, const char *code)
{
    bill_outcome_t o;
    memset(&o, 0, sizeof o);
    o.kind = kind;
    snprintf(o.code, sizeof o.code, "%s", code);
    charge_end(ch, &o);
}

static void on_deduction(struct wx_call *c)
{
    struct wx_charge *ch = c->data;
    bill_outcome_t o;
    bill_wx_outcome(c->status, c->error, c->verified, c->answer, c->answer_len, ch->otn, &o);
    call_free(c);
    charge_end(ch, &o);
}

static void send_deduction(struct wx_charge *ch, const char *body, size_t len)
{
    call_start(call_new(ch->b, ch->k, "POST", "/v3/vehicle/transactions/parking",
                        cmn_xstrndup(body, len), on_deduction, ch));
}

static void on_body_stored(void *data, int status, redisReply *r)
{
    struct wx_charge *ch = data;
    size_t len = 0;
    const char *body;
    if (!reply_ok(status, r, "wx_deduction") || !cmn_reply_is(r, "body") ||
        (body = cmn_reply_str(r, 1, &len)) == NULL)
        return charge_fail(ch, BILL_OUT_TRANSIENT, "redis");
    send_deduction(ch, body, len);
}

/* Returns 0 (cb runs later) or an error (it will not). */
static int wx_deduction_script(struct wx_charge *ch, const char *body, cmn_redis_cb cb)
{
    bill_t *b = ch->b;
    cmn_rargs_t *a = cmn_xalloc(sizeof *a);
    cmn_rargs_init(a);
    cmn_rargs_str(a, "EVALSHA");
    cmn_rargs_str(a, cmn_redis_script_sha(b->redis, b->scripts[BILL_LUA_WX_DEDUCTION]));
    cmn_rargs_int(a, 2);
    cmn_rargs_fmt(a, "pk:{%s}:s:%s", ch->c.lot, ch->c.seq);
    cmn_rargs_fmt(a, "pk:{%s}:wx", ch->c.lot);
    cmn_rargs_str(a, ch->c.seq);
    cmn_rargs_str(a, ch->otn);
    cmn_rargs_ref(a, body, strlen(body));
    int rc = a->overflow ? CMN_ETOOBIG : cmn_redis_command(b->redis, cb, ch, a->n, a->v, a->len);
    cmn_free(a);
    return rc;
}

/* Builds attempt's body from the bill and its parking, then records it before the first try. */
static void build_deduction(struct wx_charge *ch)
{
    const cmn_cfg_provider_t *p = ch->k->p;
    const cmn_cfg_lot_t *lot = ch->lot;
    long long start = ch->entry > 0 ? ch->entry : ch->exit;
    long long end = ch->exit > start ? ch->exit : start;
    char t0[CMN_RFC3339_MAX], t1[CMN_RFC3339_MAX], desc[160];
    lot_time(lot, start, t0, sizeof t0);
    lot_time(lot, end, t1, sizeof t1);
    snprintf(desc, sizeof desc, "%.100s 停车费", lot->name);
    const char *plate = ch->parking_plate[0] ? ch->parking_plate : ch->plate;

    json_t *info = json_object();
    json_object_set_new(info, "parking_id", json_string(ch->parking_id));
    json_object_set_new(info, "plate_number", json_string(plate));
    json_object_set_new(info, "plate_color", json_string(plate_color(plate)));
    json_object_set_new(info, "start_time", json_string(t0));
    json_object_set_new(info, "end_time", json_string(t1));
    json_object_set_new(info, "parking_name", json_string(lot->name));
    json_object_set_new(info, "charging_duration", json_integer(end - start));
    json_object_set_new(info, "device_id", json_string(ch->device[0] ? ch->device : "unknown"));
    json_t *amount = json_object();
    json_object_set_new(amount, "total", json_integer(ch->c.amount));
    json_object_set_new(amount, "currency", json_string(ch->c.currency));
    json_t *o = json_object();
    json_object_set_new(o, "appid", json_string(p->appid));
    json_object_set_new(o, "description", json_string(desc));
    json_object_set_new(o, "attach", json_string(ch->c.bill));
    json_object_set_new(o, "out_trade_no", json_string(ch->otn));
    json_object_set_new(o, "trade_scene", json_string("PARKING"));
    json_object_set_new(o, "notify_url", json_string(p->notify_url));
    json_object_set_new(o, "amount", amount);
    json_object_set_new(o, "parking_info", info);
    char *body = cmn_json_dump(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (body == NULL)
        return charge_fail(ch, BILL_OUT_ALERT, "deduction_body");
    int rc = wx_deduction_script(ch, body, on_body_stored);
    cmn_free(body);
    if (rc != 0)
        charge_fail(ch, BILL_OUT_TRANSIENT, "redis");
}

static void on_parking_mapped(void *data, int status, redisReply *r)
{
    (void)data;
    reply_ok(status, r, "pk:{L}:wx");
}

/* The parking created from the charge path: the entry was not registered (billing was down long
 * enough, or the session was made from an exit without entry). */
static void on_late_parking(struct wx_call *c)
{
    struct wx_charge *ch = c->data;
    char elig[40], code[96];
    int rc = parking_answer(c, ch->no, ch->parking_id, sizeof ch->parking_id, elig, sizeof elig,
                            code, sizeof code);
    call_free(c);
    if (rc <= 0)
        return charge_fail(ch, rc < 0 ? BILL_OUT_ALERT : BILL_OUT_TRANSIENT, code);
    ch->b->stats.parkings++;
    snprintf(ch->parking_plate, sizeof ch->parking_plate, "%s", ch->plate);
    cmn_buf_t rec;
    cmn_buf_init(&rec, 1024);
    parking_record(&rec, ch->parking_id, ch->no, ch->c.driver, ch->plate, elig, wall_now(),
                   ch->k->p->id);
    if (rec.base != NULL)
        store_parking(ch->b, ch->c.lot, ch->c.seq, ch->no, rec.base, on_parking_mapped, NULL);
    cmn_buf_dispose(&rec);
    build_deduction(ch);
}

static void on_bill_read(void *data, int status, redisReply *r)
{
    struct wx_charge *ch = data;
    if (!reply_ok(status, r, "wx_deduction") || r->type != REDIS_REPLY_ARRAY)
        return charge_fail(ch, BILL_OUT_TRANSIENT, "redis");
    if (cmn_reply_is(r, "body")) {
        size_t len = 0;
        const char *body = cmn_reply_str(r, 1, &len);
        return send_deduction(ch, body ? body : "", body ? len : 0);
    }
    if (!cmn_reply_is(r, "fields"))
        return charge_fail(ch, BILL_OUT_ALERT, "unknown_bill");
    char num[24], parking[512];
    copy_reply(num, sizeof num, r, 1);
    ch->entry = strtoll(num, NULL, 10);
    copy_reply(num, sizeof num, r, 2);
    ch->exit = strtoll(num, NULL, 10);
    copy_reply(ch->plate, sizeof ch->plate, r, 3);
    copy_reply(ch->device, sizeof ch->device, r, 5); /* device_out, else the lane */
    if (ch->device[0] == '\0')
        copy_reply(ch->device, sizeof ch->device, r, 4);
    copy_reply(ch->vclass, sizeof ch->vclass, r, 6);
    copy_reply(parking, sizeof parking, r, 7);
    if (parking[0] != '\0') {
        us_field(parking, 0, ch->parking_id, sizeof ch->parking_id);
        us_field(parking, 3, ch->parking_plate, sizeof ch->parking_plate);
        return build_deduction(ch);
    }
    if (cmn_wxpay_parking_no(ch->c.lot, ch->c.seq, ch->no) != 0 || ch->plate[0] == '\0')
        return charge_fail(ch, BILL_OUT_ALERT, "no_parking");
    char *body = parking_body(ch->k->p, ch->lot, ch->no, ch->plate, ch->vclass,
                              ch->entry > 0 ? ch->entry : ch->exit);
    if (body == NULL)
        return charge_fail(ch, BILL_OUT_ALERT, "parking_body");
    cmn_log(CMN_LOG_INFO, "parking", "session %s~%s: registered late, at its charge", ch->c.lot,
            ch->c.seq);
    call_start(
        call_new(ch->b, ch->k, "POST", "/v3/vehicle/parking/parkings", body, on_late_parking, ch));
}

int bill_wx_charge(bill_t *b, const bill_charge_t *c, int query, bill_outcome_cb cb, void *data)
{
    const struct wx_keys *k = keys_of(b, c->provider);
    const cmn_cfg_lot_t *lot = cmn_config_lot(b->cfg, c->lot);
    if (k == NULL || lot == NULL)
        return CMN_EINVAL;
    struct wx_charge *ch = cmn_xcalloc(1, sizeof *ch);
    ch->b = b;
    ch->c = *c;
    ch->k = k;
    ch->lot = lot;
    ch->cb = cb;
    ch->data = data;
    if (cmn_wxpay_trade_no(c->lot, c->seq, c->attempt, ch->otn) != 0) {
        cmn_free(ch);
        return CMN_EINVAL;
    }
    if (query) {
        char path[128];
        snprintf(path, sizeof path, "/v3/vehicle/transactions/out-trade-no/%s", ch->otn);
        call_start(call_new(b, k, "GET", path, NULL, on_deduction, ch));
        return 0;
    }
    int rc = wx_deduction_script(ch, "", on_bill_read);
    if (rc != 0)
        cmn_free(ch);
    return rc;
}

/* ---- refunds ----------------------------------------------------------------------------- */

struct wx_refund {
    char orn[CMN_WXPAY_NO_MAX + 1];
    bill_outcome_cb cb;
    void *data;
};

static void on_refund_answer(struct wx_call *c)
{
    struct wx_refund *rf = c->data;
    bill_outcome_t o;
    bill_wx_refund_outcome(c->status, c->error, c->verified, c->answer, c->answer_len, rf->orn, &o);
    call_free(c);
    rf->cb(rf->data, &o);
    cmn_free(rf);
}

int bill_wx_refund(bill_t *b, const bill_charge_t *c, const char *transaction_id, long long total,
                   bill_outcome_cb cb, void *data)
{
    const struct wx_keys *k = keys_of(b, c->provider);
    if (k == NULL || transaction_id[0] == '\0' || total < c->amount || c->amount <= 0)
        return CMN_EINVAL;
    struct wx_refund *rf = cmn_xcalloc(1, sizeof *rf);
    if (cmn_wxpay_refund_no(c->lot, c->seq, c->attempt, rf->orn) != 0) {
        cmn_free(rf);
        return CMN_EINVAL;
    }
    rf->cb = cb;
    rf->data = data;
    /* The same parameters on every try of this refund number: WeChat refunds one number once. */
    json_t *amount = json_object();
    json_object_set_new(amount, "refund", json_integer(c->amount));
    json_object_set_new(amount, "total", json_integer(total));
    json_object_set_new(amount, "currency", json_string(c->currency));
    json_t *o = json_object();
    json_object_set_new(o, "transaction_id", json_string(transaction_id));
    json_object_set_new(o, "out_refund_no", json_string(rf->orn));
    json_object_set_new(o, "reason", json_string("停车费退款"));
    json_object_set_new(o, "amount", amount);
    char *body = cmn_json_dump(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (body == NULL) {
        cmn_free(rf);
        return CMN_ENOMEM;
    }
    call_start(call_new(b, k, "POST", "/v3/refund/domestic/refunds", body, on_refund_answer, rf));
    return 0;
}
