/*
 * The lpr-bridge: from the cameras a lot already has to signed lane events, never losing one.
 *
 * Design note.
 *
 *   camera push   POST /v1/cameras/{id} (token checked when configured) → lpr_parse → at most one
 *                 read.  Each camera serves one lane, whose role (entry or exit) decides the
 *                 event's direction.
 *   de-dup        per lane: a read of the vehicle last forwarded (same confusable-folded plate,
 *                 or unreadable again) within dedupe_window_s is suppressed and counted, and the
 *                 window slides while the vehicle keeps being read.  A read at least min_confidence
 *                 sure goes at once (the barrier must not wait); a weaker one waits up to hold_ms
 *                 for a better read of the same vehicle, which replaces it; another vehicle's read
 *                 ends the wait at once.
 *   spool         every read that may be forwarded is written and fsynced (spool.c, off the loop
 *                 thread) before the camera gets its 200; a read replaced while held, or refused
 *                 for good by the gateway, is acknowledged in the spool like a delivered one.
 *   forward       a signed POST /v1/events per read (through fwd.c's keep-alive connections to
 *                 a plain http:// gateway, libcurl for https), its event_id derived from camera,
 *                 capture time and plate so a replay is harmless; one request in flight per lot
 *                 keeps each lot's reads in order; failures (no answer, 5xx, 401/403 while keys or
 *                 clocks are fixed) are retried with backoff, and at start the spool's
 *                 unacknowledged reads are replayed in order.
 *   barrier       a read that arrived in this run drives its lane's barrier with the gateway's
 *                 decision; when the decision takes longer than decision_timeout_ms, the lane's
 *                 fallback (hold, or open and bill later) applies and the read is still delivered.
 *   commands      for each lot with a camera that drives a barrier, the lot's lane commands (an
 *                 operator's remote opening) are asked for every command_poll_ms with a signed
 *                 GET /v1/lane-commands?after=<cursor> and carried out on the lane's barrier,
 *                 unless older than command_max_age_s (its car has gone).  The cursor is kept in
 *                 the spool folder (written off the loop), so a restart neither repeats a command
 *                 nor, within the age limit, misses one.
 */
#include "bridge.h"

#include <http_parser.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cmn/buf.h"
#include "cmn/crypto.h"
#include "cmn/err.h"
#include "cmn/json.h"
#include "cmn/log.h"
#include "cmn/mem.h"
#include "cmn/plate.h"
#include "event.h"
#include "fwd.h"
#include "parse.h"

#define LATENCY_BUCKETS 10

enum { OUT_FORWARDED = 0, OUT_HELD, OUT_SUPPRESSED, OUT_REPLACED, OUT_UNREADABLE, OUT_NO_PLATE,
       OUT_REFUSED, OUT_COUNT };
static const char *const out_names[OUT_COUNT] = {"forwarded", "held",      "suppressed", "replaced",
                                                 "unreadable", "no_plate", "refused"};

struct item {
    struct item *next;
    lpr_bridge_t *b;
    uint64_t seq;
    size_t cam;
    char *body; /* the event, exactly as sent every time */
    size_t body_len;
    char event_id[48];
    int live;     /* arrived in this run: may still drive the barrier */
    int fallback; /* the lane's fallback was applied */
    uint64_t queued_ms;
    uv_timer_t *decision;
    int attempts;
};

struct held {
    struct item *item;
    char fold[CMN_PLATE_MAX];
    int unreadable;
    double confidence;
};

struct lane {
    lpr_bridge_t *b;
    size_t index;
    const cmn_cfg_camera_t *cam;
    char last_fold[CMN_PLATE_MAX];
    int last_unreadable;
    uint64_t last_ms; /* 0: nothing forwarded yet */
    struct held held;
    uv_timer_t hold_timer;
    unsigned long long outcomes[OUT_COUNT];
    unsigned long long parse_errors;
};

struct lotq {
    lpr_bridge_t *b;
    struct item *head, *tail;
    int in_flight;
    unsigned backoff_ms;
    uv_timer_t retry;
};

/* The lane commands of one lot, asked for on behalf of its barriers. */
struct cmdpoll {
    lpr_bridge_t *b;
    size_t lot;                   /* index in cfg->lots */
    const cmn_cfg_device_t *dev;  /* a device of the lot, whose key signs the requests */
    uv_timer_t timer;
    int in_flight;
    int failing; /* the last poll failed: said once, not every poll */
    char cursor[48];
    char saved[48]; /* the cursor last given to a write */
    char *cursor_path;
    struct cursor_write *writing;
};

struct lpr_bridge {
    uv_loop_t *loop;
    const cmn_config_t *cfg;
    cmn_httpd_t *http;
    cmn_http_client_t *client;
    lpr_fwd_t *fwd; /* events to a plain http:// gateway; NULL: they go through client */
    lpr_spool_t *spool;
    struct lane *lanes;
    struct lotq *lots;
    int stopping;
    int handles_open;
    void (*stop_done)(void *);
    void *stop_data;
    uv_timer_t stop_poll;
    unsigned long long delivered, dropped, retries, barrier_ok, barrier_failed, fallbacks;
    unsigned long long latency[LATENCY_BUCKETS + 1];
    uint64_t latency_sum_ms, latency_count;
    struct cmdpoll *polls;
    size_t npolls;
    unsigned long long commands_done, commands_stale, commands_no_barrier, command_polls_failed;
    size_t *camidx; /* cameras by id: index + 1, 0 for an empty slot */
    size_t camidx_mask;
    lpr_result_t result; /* scratch of camera_push */
    cmn_buf_t record;    /* scratch of camera_push: the spool record being built */
};

static const uint64_t latency_le_ms[LATENCY_BUCKETS] = {1, 2, 5, 10, 25, 50, 100, 250, 1000, 5000};

/* ---- delivery ------------------------------------------------------------------------------ */

static void pump(struct lotq *q);

static void on_timer_freed(uv_handle_t *h)
{
    cmn_free(h);
}

static void item_free(struct item *it)
{
    if (it->decision != NULL) {
        uv_close((uv_handle_t *)it->decision, on_timer_freed);
        it->decision = NULL;
    }
    cmn_free(it->body);
    cmn_free(it);
}

static void on_barrier(void *data, const cmn_http_response_t *resp)
{
    lpr_bridge_t *b = data;
    if (resp->error == 0 && resp->status >= 200 && resp->status < 300) {
        b->barrier_ok++;
    } else {
        b->barrier_failed++;
        cmn_log(CMN_LOG_WARN, "barrier", "barrier command failed: %s %ld",
                resp->error ? resp->error_text : "HTTP", resp->status);
    }
}

/* Drives the lane's barrier and display with a decision (the gateway's answer, or the fallback). */
static void barrier(lpr_bridge_t *b, const cmn_cfg_camera_t *cam, json_t *decision)
{
    const cmn_cfg_barrier_t *br = &cam->barrier;
    const char *d = json_string_value(json_object_get(decision, "decision"));
    char url[2300];
    /* No client while stopping once deliveries are over: a fallback firing then drives nothing. */
    if (br->kind == CMN_BARRIER_NONE || d == NULL || b->client == NULL)
        return;
    if (br->kind == CMN_BARRIER_WEBHOOK) {
        char *body = cmn_json_dump(decision, JSON_COMPACT | JSON_PRESERVE_ORDER);
        const char *headers[] = {"Content-Type: application/json"};
        cmn_http_request_t req = {.method = "POST",
                                  .url = br->url,
                                  .headers = headers,
                                  .nheaders = 1,
                                  .body = body,
                                  .body_len = body ? strlen(body) : 0,
                                  .connect_timeout_ms = br->timeout_ms,
                                  .timeout_ms = br->timeout_ms};
        if (body == NULL || cmn_http_request(b->client, &req, on_barrier, b) != 0)
            b->barrier_failed++;
        cmn_free(body);
        return;
    }
    /* Hikvision: the camera's own barrier control; only an open moves it. */
    if (strcmp(d, "open") != 0)
        return;
    static const char xml[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                              "<BarrierGate version=\"2.0\" "
                              "xmlns=\"http://www.isapi.org/ver20/XMLSchema\">"
                              "<ctrlMode>open</ctrlMode></BarrierGate>";
    snprintf(url, sizeof url, "%s/ISAPI/Parking/channels/%d/barrierGate", br->url, br->channel);
    const char *headers[] = {"Content-Type: application/xml"};
    char password[256] = "";
    if (br->password.len > 0 && br->password.len < sizeof password) {
        memcpy(password, br->password.data, br->password.len);
        password[br->password.len] = '\0';
    }
    cmn_http_request_t req = {.method = "PUT",
                              .url = url,
                              .headers = headers,
                              .nheaders = 1,
                              .body = xml,
                              .body_len = sizeof xml - 1,
                              .connect_timeout_ms = br->timeout_ms,
                              .timeout_ms = br->timeout_ms,
                              .username = br->username,
                              .password = br->username ? password : NULL};
    if (cmn_http_request(b->client, &req, on_barrier, b) != 0)
        b->barrier_failed++;
    memset(password, 0, sizeof password);
}

static json_t *decision_json(const struct item *it, const cmn_cfg_camera_t *cam)
{
    json_t *o = json_object();
    json_object_set_new(o, "camera", json_string(cam->id));
    json_object_set_new(o, "lot", json_string(cam->lot_id));
    json_object_set_new(o, "lane", json_string(cam->lane_id));
    json_object_set_new(o, "direction",
                        json_string(cam->direction == CMN_LANE_ENTRY ? "entry" : "exit"));
    json_object_set_new(o, "event_id", json_string(it->event_id));
    return o;
}

static void on_decision_timeout(uv_timer_t *t)
{
    struct item *it = t->data;
    lpr_bridge_t *b = it->b;
    const cmn_cfg_camera_t *cam = &b->cfg->lpr.cameras[it->cam];
    it->fallback = 1;
    b->fallbacks++;
    int open = cam->fallback == CMN_FALLBACK_OPEN;
    cmn_log(CMN_LOG_WARN, "fallback", "camera %s: no decision within %lld ms: %s", cam->id,
            (long long)cam->decision_timeout_ms,
            open ? "opening, the read is billed later" : "holding for staff");
    json_t *o = decision_json(it, cam);
    json_object_set_new(o, "decision", json_string(open ? "open" : "hold"));
    json_object_set_new(o, "reason", json_string("gateway_timeout"));
    json_object_set_new(o, "display",
                        json_string(open ? "一路顺风" : "请稍候 工作人员处理中"));
    json_object_set_new(o, "fallback", json_true());
    barrier(b, cam, o);
    json_decref(o);
}

static void latency(lpr_bridge_t *b, uint64_t ms)
{
    int i = 0;
    while (i < LATENCY_BUCKETS && ms > latency_le_ms[i])
        i++;
    b->latency[i]++;
    b->latency_sum_ms += ms;
    b->latency_count++;
}

static void done_with_head(struct lotq *q)
{
    struct item *it = q->head;
    q->head = it->next;
    if (q->head == NULL)
        q->tail = NULL;
    q->in_flight = 0;
    q->backoff_ms = 0;
    item_free(it);
    pump(q);
}

static void on_retry(uv_timer_t *t)
{
    pump(t->data);
}

static void on_forwarded(void *data, const cmn_http_response_t *resp)
{
    struct lotq *q = data;
    lpr_bridge_t *b = q->b;
    struct item *it = q->head;
    const cmn_cfg_camera_t *cam = &b->cfg->lpr.cameras[it->cam];
    long st = resp->error ? 0 : resp->status;

    if (st == 200) {
        json_error_t err;
        json_t *ans = json_loadb(resp->body, resp->body_len, 0, &err);
        b->delivered++;
        latency(b, uv_now(b->loop) - it->queued_ms);
        lpr_spool_ack(b->spool, it->seq);
        const char *d = json_string_value(json_object_get(ans, "decision"));
        const char *r = json_string_value(json_object_get(ans, "reason"));
        cmn_log(CMN_LOG_INFO, "delivered", "camera %s event %s: %s %s", cam->id, it->event_id,
                d ? d : "?", r ? r : "?");
        if (it->live && !it->fallback && ans != NULL && cam->barrier.kind != CMN_BARRIER_NONE) {
            json_t *o = decision_json(it, cam);
            static const char *const keys[] = {"decision", "reason",   "amount",   "currency",
                                               "display",  "session_id", "bill_id", NULL};
            for (int i = 0; keys[i] != NULL; i++) {
                json_t *v = json_object_get(ans, keys[i]);
                json_object_set(o, keys[i], v ? v : json_null());
            }
            json_object_set_new(o, "fallback", json_false());
            barrier(b, cam, o);
            json_decref(o);
        }
        json_decref(ans);
        return done_with_head(q);
    }
    if (st == 400 || st == 409 || st == 413) {
        /* The gateway will never take this read: keeping it would block the lot's queue. */
        b->dropped++;
        cmn_log(CMN_LOG_ERROR, "refused", "camera %s event %s refused by the gateway (%ld): %.200s",
                cam->id, it->event_id, st, resp->body ? resp->body : "");
        lpr_spool_ack(b->spool, it->seq);
        return done_with_head(q);
    }
    /* No answer, 5xx, 401/403 (a key or clock being fixed), 408, 429: the same event, later. */
    b->retries++;
    it->attempts++;
    q->in_flight = 0;
    q->backoff_ms = q->backoff_ms == 0 ? 200 : q->backoff_ms * 2;
    if (q->backoff_ms > 10000)
        q->backoff_ms = 10000;
    unsigned char r[2] = {0, 0};
    cmn_random(r, 2);
    uint64_t delay = q->backoff_ms / 2 + (uint64_t)((r[0] << 8 | r[1]) % (q->backoff_ms / 2 + 1));
    if (it->attempts == 1 || it->attempts % 10 == 0)
        cmn_log(CMN_LOG_WARN, "forward_retry", "camera %s event %s: %s%ld; again in %llu ms",
                cam->id, it->event_id, resp->error ? resp->error_text : "HTTP ", st,
                (unsigned long long)delay);
    if (!b->stopping)
        uv_timer_start(&q->retry, on_retry, delay, 0);
}

static void send_head(struct lotq *q)
{
    lpr_bridge_t *b = q->b;
    struct item *it = q->head;
    const cmn_cfg_camera_t *cam = &b->cfg->lpr.cameras[it->cam];
    const cmn_cfg_device_t *dev = &b->cfg->devices[cam->device_index];
    char stamp[24], sig[65], url[2200], h1[100], h2[64], h3[100];
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
    snprintf(stamp, sizeof stamp, "%lld", (long long)now.tv_sec);
    if (cmn_lane_sign(dev->key.data, dev->key.len, stamp, "POST", "/v1/events", 10, dev->id,
                      it->body, it->body_len, sig) != 0) {
        /* Tried again later: returning with nothing in flight would stall the lot's queue. */
        cmn_log(CMN_LOG_ERROR, "forward", "cannot sign an event");
        uv_timer_start(&q->retry, on_retry, 1000, 0);
        return;
    }
    snprintf(url, sizeof url, "%s/v1/events", b->cfg->lpr.gateway_url);
    snprintf(h1, sizeof h1, "X-Park-Device: %s", dev->id);
    snprintf(h2, sizeof h2, "X-Park-Timestamp: %s", stamp);
    snprintf(h3, sizeof h3, "X-Park-Signature: %s", sig);
    const char *headers[] = {"Content-Type: application/json", h1, h2, h3};
    cmn_http_request_t req = {.method = "POST",
                              .url = url,
                              .headers = headers,
                              .nheaders = 4,
                              .body = it->body,
                              .body_len = it->body_len,
                              .connect_timeout_ms = 2000,
                              .timeout_ms = b->cfg->lpr.forward_timeout_ms};
    q->in_flight = 1;
    int rc = b->fwd != NULL ? lpr_fwd_post(b->fwd, "/v1/events", headers, 4, it->body,
                                           it->body_len, req.connect_timeout_ms, req.timeout_ms,
                                           on_forwarded, q)
                            : cmn_http_request(b->client, &req, on_forwarded, q);
    if (rc != 0) {
        q->in_flight = 0;
        uv_timer_start(&q->retry, on_retry, 1000, 0);
    }
}

static void pump(struct lotq *q)
{
    if (q->in_flight || q->head == NULL || q->b->stopping)
        return;
    send_head(q);
}

static void enqueue(lpr_bridge_t *b, struct item *it)
{
    const cmn_cfg_camera_t *cam = &b->cfg->lpr.cameras[it->cam];
    struct lotq *q = &b->lots[cam->lot_index];
    it->queued_ms = uv_now(b->loop);
    if (it->live && cam->barrier.kind != CMN_BARRIER_NONE) {
        it->decision = cmn_xalloc(sizeof *it->decision);
        uv_timer_init(b->loop, it->decision);
        it->decision->data = it;
        uv_timer_start(it->decision, on_decision_timeout, (uint64_t)cam->decision_timeout_ms, 0);
    }
    if (q->tail != NULL)
        q->tail->next = it;
    else
        q->head = it;
    q->tail = it;
    pump(q);
}

/* ---- reads from cameras -------------------------------------------------------------------- */

/* The event as the gateway's lane API takes it; the same bytes on every delivery.  It is written
 * into `rec` after "<camera id> " (the spool's record of the read) and the item keeps a copy of the
 * event alone.  NULL when the record would pass rec's limit. */
static struct item *make_item(lpr_bridge_t *b, size_t cam_index, const lpr_read_t *r,
                              cmn_instant_t ts, cmn_buf_t *rec)
{
    const cmn_cfg_camera_t *cam = &b->cfg->lpr.cameras[cam_index];
    struct item *it = cmn_xcalloc(1, sizeof *it);
    unsigned char h[32];
    char hex[65], tsbuf[CMN_RFC3339_MAX], tsnum[24];
    it->b = b;
    it->cam = cam_index;
    it->live = 1;
    snprintf(tsnum, sizeof tsnum, "%lld", (long long)ts);
    const char *plate = r->unreadable ? "\x01unreadable" : r->plate;
    const void *parts[] = {cam->id, "\n", tsnum, "\n", plate};
    const size_t lens[] = {strlen(cam->id), 1, strlen(tsnum), 1, strlen(plate)};
    cmn_buf_t key;
    cmn_buf_init(&key, 1024);
    for (int i = 0; i < 5; i++)
        cmn_buf_append(&key, parts[i], lens[i]);
    cmn_sha256(key.base, key.len, h);
    cmn_buf_dispose(&key);
    cmn_hex(h, 14, hex);
    snprintf(it->event_id, sizeof it->event_id, "lpr-%.28s", hex);
    cmn_rfc3339_format(ts, 0, 1, tsbuf, sizeof tsbuf);

    size_t at = strlen(cam->id) + 1;
    if (cmn_buf_puts(rec, cam->id) != 0 || cmn_buf_append(rec, " ", 1) != 0 ||
        lpr_event_body(rec, it->event_id, cam->lot_id, cam->lane_id,
                       cam->direction == CMN_LANE_ENTRY, r, tsbuf) != 0) {
        cmn_free(it);
        return NULL;
    }
    it->body_len = rec->len - at;
    it->body = cmn_xalloc(it->body_len + 1);
    memcpy(it->body, rec->base + at, it->body_len + 1);
    return it;
}

struct pending_resp {
    lpr_bridge_t *b;
    cmn_httpd_req_t *req;
    struct lane *lane;
    struct item *it;
    int action; /* OUT_FORWARDED or OUT_HELD */
    char fold[CMN_PLATE_MAX];
    int unreadable;
    double confidence;
};

static void respond(cmn_httpd_req_t *req, int status, json_t *o)
{
    char *s = cmn_json_dump(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    cmn_httpd_respond(req, status, "application/json", s ? s : "{}", s ? strlen(s) : 2, NULL);
    cmn_free(s);
}

static void respond_error(cmn_httpd_req_t *req, int status, const char *code, const char *msg)
{
    json_t *o = json_object();
    json_object_set_new(o, "error", json_string(code));
    json_object_set_new(o, "message", json_string(msg));
    respond(req, status, o);
}

static void respond_suppressed(cmn_httpd_req_t *req)
{
    static const char s[] = "{\"received\":true,\"action\":\"suppressed\"}";
    cmn_httpd_respond(req, 200, "application/json", s, sizeof s - 1, NULL);
}

static void forward_held(struct lane *l)
{
    struct item *it = l->held.item;
    if (it == NULL)
        return;
    l->held.item = NULL;
    uv_timer_stop(&l->hold_timer);
    snprintf(l->last_fold, sizeof l->last_fold, "%s", l->held.fold);
    l->last_unreadable = l->held.unreadable;
    l->last_ms = uv_now(l->b->loop);
    l->outcomes[OUT_FORWARDED]++;
    enqueue(l->b, it);
}

static void on_hold_expired(uv_timer_t *t)
{
    forward_held(t->data);
}

static void on_spooled(void *data, int status, uint64_t seq)
{
    struct pending_resp *p = data;
    struct lane *l = p->lane;
    lpr_bridge_t *b = p->b;
    if (status != 0) {
        /* Not on disk: the camera must send it again. */
        respond_error(p->req, 503, "unavailable", "the spool cannot be written");
        cmn_free(p->it->body);
        cmn_free(p->it);
        cmn_free(p);
        return;
    }
    p->it->seq = seq;
    /* Written as Jansson would: the event id is "lpr-" and hex digits, the action a fixed name. */
    char ok[160];
    int n = snprintf(ok, sizeof ok, "{\"received\":true,\"event_id\":\"%s\",\"action\":\"%s\"}",
                     p->it->event_id, out_names[p->action]);
    cmn_httpd_respond(p->req, 200, "application/json", ok, (size_t)n, NULL);
    if (b->stopping) {
        /* Stopping began while it was written: the spool has it for the next start, and holding
         * or queueing it now would leave it to no one. */
        item_free(p->it);
        cmn_free(p);
        return;
    }
    if (p->action == OUT_HELD) {
        /* A better read of the same vehicle replaces the one held. */
        if (l->held.item != NULL) {
            l->outcomes[OUT_REPLACED]++;
            lpr_spool_ack(b->spool, l->held.item->seq);
            item_free(l->held.item);
        } else {
            uv_timer_start(&l->hold_timer, on_hold_expired, (uint64_t)l->cam->hold_ms, 0);
        }
        l->held.item = p->it;
        snprintf(l->held.fold, sizeof l->held.fold, "%s", p->fold);
        l->held.unreadable = p->unreadable;
        l->held.confidence = p->confidence;
        l->outcomes[OUT_HELD]++;
    } else {
        if (l->held.item != NULL && strcmp(l->held.fold, p->fold) == 0 &&
            l->held.unreadable == p->unreadable) {
            /* This confident read is the held vehicle's: the weaker one is not needed. */
            l->outcomes[OUT_REPLACED]++;
            lpr_spool_ack(b->spool, l->held.item->seq);
            item_free(l->held.item);
            l->held.item = NULL;
            uv_timer_stop(&l->hold_timer);
        }
        snprintf(l->last_fold, sizeof l->last_fold, "%s", p->fold);
        l->last_unreadable = p->unreadable;
        l->last_ms = uv_now(b->loop);
        l->outcomes[OUT_FORWARDED]++;
        enqueue(b, p->it);
    }
    cmn_free(p);
}

static int token_ok(const cmn_cfg_camera_t *cam, const cmn_httpd_req_t *req)
{
    if (cam->token.len == 0)
        return 1;
    unsigned char a[32], b[32];
    size_t len;
    const char *h = cmn_httpd_req_header(req, "Authorization", &len);
    const char *given = NULL;
    size_t glen = 0;
    /* The scheme's name is case-insensitive (RFC 9110 section 11.1). */
    if (h != NULL && len > 7 && strncasecmp(h, "Bearer ", 7) == 0) {
        given = h + 7;
        glen = len - 7;
    } else {
        /* The query parameter named token, not one whose name merely ends so (?notoken=). */
        const char *end = req->url + req->url_len;
        const char *p = memchr(req->url, '?', req->url_len);
        while (p != NULL && p < end) {
            p++;
            const char *amp = memchr(p, '&', (size_t)(end - p));
            const char *stop = amp ? amp : end;
            if (stop - p >= 6 && memcmp(p, "token=", 6) == 0) {
                given = p + 6;
                glen = (size_t)(stop - given);
                break;
            }
            p = amp;
        }
    }
    if (given == NULL)
        return 0;
    cmn_sha256(given, glen, a);
    cmn_sha256(cam->token.data, cam->token.len, b);
    return cmn_secure_equal(a, b, 32);
}

/* ---- cameras by id --------------------------------------------------------------------------
 * Every push looks its camera up; cmn_config_camera compares the id with each configured camera in
 * turn, and a city's bridge has thousands (5 540 on bench/cityday.py's full day).  An open
 * addressing table of camera indices, built at start, sized to stay at most half full. */

static uint64_t id_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void cameras_index(lpr_bridge_t *b)
{
    size_t n = b->cfg->lpr.ncameras, cap = 8;
    while (cap < 2 * n)
        cap *= 2;
    b->camidx = cmn_xcalloc(cap, sizeof *b->camidx);
    b->camidx_mask = cap - 1;
    for (size_t i = 0; i < n; i++) {
        const char *id = b->cfg->lpr.cameras[i].id;
        if (id == NULL)
            continue;
        size_t k = (size_t)id_hash(id) & b->camidx_mask;
        /* The first of equal ids wins, as with cmn_config_camera. */
        while (b->camidx[k] != 0 && strcmp(b->cfg->lpr.cameras[b->camidx[k] - 1].id, id) != 0)
            k = (k + 1) & b->camidx_mask;
        if (b->camidx[k] == 0)
            b->camidx[k] = i + 1;
    }
}

static const cmn_cfg_camera_t *camera_find(const lpr_bridge_t *b, const char *id)
{
    size_t k = (size_t)id_hash(id) & b->camidx_mask;
    while (b->camidx[k] != 0) {
        const cmn_cfg_camera_t *cam = &b->cfg->lpr.cameras[b->camidx[k] - 1];
        if (strcmp(cam->id, id) == 0)
            return cam;
        k = (k + 1) & b->camidx_mask;
    }
    return NULL;
}

static void camera_push(lpr_bridge_t *b, cmn_httpd_req_t *req, const char *id, size_t idlen)
{
    char cid[65];
    if (idlen == 0 || idlen >= sizeof cid)
        return respond_error(req, 404, "not_found", "no such camera");
    memcpy(cid, id, idlen);
    cid[idlen] = '\0';
    const cmn_cfg_camera_t *cam = camera_find(b, cid);
    if (cam == NULL)
        return respond_error(req, 404, "not_found", "no such camera");
    struct lane *l = &b->lanes[cam - b->cfg->lpr.cameras];
    if (!token_ok(cam, req))
        return respond_error(req, 401, "unauthorized", "a valid camera token is required");
    if (b->stopping)
        return respond_error(req, 503, "unavailable", "stopping");

    size_t clen = 0;
    const char *ctype = cmn_httpd_req_header(req, "Content-Type", &clen);
    /* The bridge's one result, parsed into again by every push (lpr_parse clears it): some 2 KiB
     * that would otherwise be a malloc of the size that makes glibc consolidate its fast bins. */
    lpr_result_t *res = &b->result;
    int rc = lpr_parse(ctype, clen, req->body, req->body_len, res);
    if (rc == 0 && cam->format != CMN_CAMERA_AUTO && res->source != NULL) {
        static const char *const names[] = {"", "openalpr", "platerecognizer", "hikvision"};
        if (strcmp(res->source, names[cam->format]) != 0) {
            rc = CMN_EPARSE;
            snprintf(res->error, sizeof res->error, "a %s payload from a camera configured as %s",
                     res->source, names[cam->format]);
        }
    }
    if (rc != 0) {
        l->parse_errors++;
        cmn_log(CMN_LOG_WARN, "camera_payload", "camera %s: %s", cam->id, res->error);
        respond_error(req, rc == CMN_ETOOBIG ? 413 : 400, rc == CMN_ETOOBIG ? "too_large" : "bad_request",
                      res->error);
        return;
    }
    if (res->outcome != LPR_OUTCOME_READ) {
        if (res->outcome == LPR_OUTCOME_NO_PLATE)
            l->outcomes[OUT_NO_PLATE]++;
        json_t *o = json_object();
        json_object_set_new(o, "received", json_true());
        json_object_set_new(o, "reads", json_integer(0));
        json_object_set_new(o, "outcome", json_string(lpr_outcome_name(res->outcome)));
        return respond(req, 200, o);
    }
    const lpr_read_t *r = &res->read;
    if (r->camera_direction[0] != '\0') {
        /* Only a sanity check: the lane's role decides. */
        int fwd = strcmp(r->camera_direction, "forward") == 0;
        int rev = strcmp(r->camera_direction, "reverse") == 0;
        if ((fwd && cam->direction == CMN_LANE_EXIT) || (rev && cam->direction == CMN_LANE_ENTRY))
            cmn_log(CMN_LOG_WARN, "camera_direction",
                    "camera %s reports %s on an %s lane: check its mounting", cam->id,
                    r->camera_direction, cam->direction == CMN_LANE_ENTRY ? "entry" : "exit");
    }
    char fold[CMN_PLATE_MAX] = "";
    if (!r->unreadable)
        cmn_plate_fold_key(r->plate, 1, fold, sizeof fold);
    if (r->unreadable)
        l->outcomes[OUT_UNREADABLE]++;
    uint64_t now = uv_now(b->loop);
    int same_as_last = l->last_ms != 0 && r->unreadable == l->last_unreadable &&
                       strcmp(fold, l->last_fold) == 0;
    if (same_as_last && now - l->last_ms < (uint64_t)l->cam->dedupe_window_s * 1000) {
        /* The vehicle in front of the camera again: the window slides while it stays. */
        l->last_ms = now;
        l->outcomes[OUT_SUPPRESSED]++;
        return respond_suppressed(req);
    }
    int action = OUT_FORWARDED;
    int same_as_held = l->held.item != NULL && l->held.unreadable == r->unreadable &&
                       strcmp(l->held.fold, fold) == 0;
    if (l->held.item != NULL && !same_as_held)
        forward_held(l); /* another vehicle: the held one's wait is over */
    double conf = r->confidence;
    int confident = r->unreadable || conf < 0 || conf * 1000 >= (double)cam->min_confidence ||
                    cam->hold_ms == 0;
    if (!confident) {
        if (same_as_held && conf <= l->held.confidence) {
            /* Not better than the read already waiting. */
            l->outcomes[OUT_SUPPRESSED]++;
            return respond_suppressed(req);
        }
        action = OUT_HELD;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    cmn_instant_t at = r->has_ts ? r->ts : (cmn_instant_t)ts.tv_sec;
    /* The record is built in the bridge's own buffer, kept from read to read (the spool copies
     * it), so a push allocates no more than its item. */
    cmn_buf_t *rec = &b->record;
    cmn_buf_reset(rec);
    struct item *it = make_item(b, (size_t)(cam - b->cfg->lpr.cameras), r, at, rec);
    if (it == NULL)
        return respond_error(req, 413, "too_large", "the read does not fit a spool record");
    struct pending_resp *p = cmn_xcalloc(1, sizeof *p);
    p->b = b;
    p->req = req;
    p->lane = l;
    p->it = it;
    p->action = action;
    snprintf(p->fold, sizeof p->fold, "%s", fold);
    p->unreadable = r->unreadable;
    p->confidence = conf;
    rc = lpr_spool_append(b->spool, rec->base, rec->len, on_spooled, p);
    if (rc != 0) {
        respond_error(req, 503, "unavailable", "the spool cannot take the read");
        cmn_free(p->it->body);
        cmn_free(p->it);
        cmn_free(p);
    }
}

/* ---- lane commands (remote openings) -------------------------------------------------------- */

/* One write of a lot's cursor file, on the thread pool (the loop never touches the disk).  It holds
 * its own copies, so a bridge stopping meanwhile only detaches it (p = NULL). */
struct cursor_write {
    uv_work_t work;
    struct cmdpoll *p;
    char *path;
    char cursor[48];
};

static void cursor_save(struct cmdpoll *p);

static void cursor_write_work(uv_work_t *w)
{
    struct cursor_write *cw = w->data;
    size_t n = strlen(cw->path) + 8;
    char *tmp = cmn_xalloc(n);
    snprintf(tmp, n, "%s.tmp", cw->path);
    FILE *f = fopen(tmp, "w");
    if (f != NULL) {
        int ok = fprintf(f, "%s\n", cw->cursor) > 0;
        if (fclose(f) == 0 && ok)
            rename(tmp, cw->path); /* whole or not at all; no fsync: see command_max_age_s */
    }
    cmn_free(tmp);
}

static void cursor_written(uv_work_t *w, int status)
{
    struct cursor_write *cw = w->data;
    (void)status;
    struct cmdpoll *p = cw->p;
    cmn_free(cw->path);
    cmn_free(cw);
    if (p == NULL)
        return;
    p->writing = NULL;
    if (strcmp(p->saved, p->cursor) != 0)
        cursor_save(p); /* it moved on while this one was written */
}

/* One write at a time per lot, so an older cursor never lands after a newer one. */
static void cursor_save(struct cmdpoll *p)
{
    if (p->writing != NULL || p->b->stopping || strcmp(p->saved, p->cursor) == 0)
        return;
    struct cursor_write *cw = cmn_xcalloc(1, sizeof *cw);
    cw->p = p;
    cw->path = cmn_xstrdup(p->cursor_path);
    snprintf(cw->cursor, sizeof cw->cursor, "%s", p->cursor);
    snprintf(p->saved, sizeof p->saved, "%s", p->cursor);
    cw->work.data = cw;
    if (uv_queue_work(p->b->loop, &cw->work, cursor_write_work, cursor_written) != 0) {
        p->saved[0] = '\0';
        cmn_free(cw->path);
        cmn_free(cw);
        return;
    }
    p->writing = cw;
}

/* A stream id as the gateway gives it: "<ms>-<n>". */
static int cursor_valid(const char *s)
{
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > 20 || s[n] != '-')
        return 0;
    size_t m = strspn(s + n + 1, "0123456789");
    return m > 0 && m <= 20 && s[n + 1 + m] == '\0';
}

static void on_poll_timer(uv_timer_t *t);

static void poll_again(struct cmdpoll *p, uint64_t ms)
{
    if (!p->b->stopping)
        uv_timer_start(&p->timer, on_poll_timer, ms, 0);
}

/* The camera whose barrier serves `lane` of the poll's lot, or NULL. */
static const cmn_cfg_camera_t *lane_barrier(const lpr_bridge_t *b, size_t lot, const char *lane)
{
    for (size_t i = 0; i < b->cfg->lpr.ncameras; i++) {
        const cmn_cfg_camera_t *cam = &b->cfg->lpr.cameras[i];
        if ((size_t)cam->lot_index == lot && cam->barrier.kind != CMN_BARRIER_NONE &&
            strcmp(cam->lane_id, lane) == 0)
            return cam;
    }
    return NULL;
}

static void carry_out(struct cmdpoll *p, json_t *c, int64_t now)
{
    lpr_bridge_t *b = p->b;
    const char *lot = b->cfg->lots[p->lot].id;
    const char *id = json_string_value(json_object_get(c, "id"));
    const char *cmd = json_string_value(json_object_get(c, "command"));
    const char *lane = json_string_value(json_object_get(c, "lane"));
    json_int_t at = json_integer_value(json_object_get(c, "at"));
    if (id == NULL || cmd == NULL || lane == NULL)
        return;
    const cmn_cfg_camera_t *cam = lane_barrier(b, p->lot, lane);
    if (strcmp(cmd, "open") != 0 || cam == NULL) {
        b->commands_no_barrier++;
        cmn_log(CMN_LOG_WARN, "lane_command", "lot %s lane %s: command %s (%s) not carried out: %s",
                lot, lane, id, cmd,
                cam == NULL ? "no camera of this bridge drives that lane's barrier"
                            : "unknown command");
        return;
    }
    if (now - (int64_t)at > b->cfg->lpr.command_max_age_s) {
        b->commands_stale++;
        cmn_log(CMN_LOG_WARN, "lane_command",
                "lot %s lane %s: command %s not carried out: issued %lld s ago (limit %lld s)",
                lot, lane, id, (long long)(now - (int64_t)at),
                (long long)b->cfg->lpr.command_max_age_s);
        return;
    }
    json_t *o = json_object();
    json_object_set_new(o, "camera", json_string(cam->id));
    json_object_set_new(o, "lot", json_string(cam->lot_id));
    json_object_set_new(o, "lane", json_string(cam->lane_id));
    json_object_set_new(o, "direction",
                        json_string(cam->direction == CMN_LANE_ENTRY ? "entry" : "exit"));
    json_object_set_new(o, "decision", json_string("open"));
    json_object_set_new(o, "reason", json_string("remote_open"));
    json_object_set_new(o, "display", json_string("远程开闸 请通行"));
    json_object_set_new(o, "command_id", json_string(id));
    barrier(b, cam, o);
    json_decref(o);
    b->commands_done++;
    cmn_log(CMN_LOG_INFO, "lane_command", "lot %s lane %s: opened remotely (command %s)", lot,
            lane, id);
}

static void on_commands(void *data, const cmn_http_response_t *resp)
{
    struct cmdpoll *p = data;
    lpr_bridge_t *b = p->b;
    p->in_flight = 0;
    if (b->stopping)
        return;
    uint64_t next = (uint64_t)b->cfg->lpr.command_poll_ms;
    json_error_t err;
    json_t *doc = resp->error == 0 && resp->status == 200
                      ? json_loadb(resp->body, resp->body_len, 0, &err)
                      : NULL;
    json_t *list = json_object_get(doc, "commands");
    const char *cursor = json_string_value(json_object_get(doc, "cursor"));
    if (!json_is_array(list) || cursor == NULL || !cursor_valid(cursor)) {
        b->command_polls_failed++;
        if (!p->failing) /* said once per outage, not every poll */
            cmn_log(CMN_LOG_WARN, "lane_command", "lot %s: lane commands unavailable: %s %ld",
                    b->cfg->lots[p->lot].id, resp->error ? resp->error_text : "HTTP",
                    resp->status);
        p->failing = 1;
        json_decref(doc);
        return poll_again(p, next);
    }
    p->failing = 0;
    int64_t now = (int64_t)time(NULL);
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c)
        carry_out(p, c, now);
    snprintf(p->cursor, sizeof p->cursor, "%s", cursor);
    cursor_save(p);
    if (json_array_size(list) >= 100)
        next = 0; /* a full page: there may be more */
    json_decref(doc);
    poll_again(p, next);
}

static void on_poll_timer(uv_timer_t *t)
{
    struct cmdpoll *p = t->data;
    lpr_bridge_t *b = p->b;
    char path[128], url[2300], stamp[24], sig[65], h1[100], h2[64], h3[100];
    struct timespec now;
    if (p->in_flight || b->stopping || b->client == NULL)
        return;
    snprintf(path, sizeof path, "/v1/lane-commands?after=%s", p->cursor);
    clock_gettime(CLOCK_REALTIME, &now);
    snprintf(stamp, sizeof stamp, "%lld", (long long)now.tv_sec);
    if (cmn_lane_sign(p->dev->key.data, p->dev->key.len, stamp, "GET", path, strlen(path),
                      p->dev->id, "", 0, sig) != 0)
        return poll_again(p, (uint64_t)b->cfg->lpr.command_poll_ms);
    snprintf(url, sizeof url, "%s%s", b->cfg->lpr.gateway_url, path);
    snprintf(h1, sizeof h1, "X-Park-Device: %s", p->dev->id);
    snprintf(h2, sizeof h2, "X-Park-Timestamp: %s", stamp);
    snprintf(h3, sizeof h3, "X-Park-Signature: %s", sig);
    const char *headers[] = {h1, h2, h3};
    int64_t timeout = b->cfg->lpr.forward_timeout_ms < 5000 ? b->cfg->lpr.forward_timeout_ms : 5000;
    cmn_http_request_t req = {.method = "GET",
                              .url = url,
                              .headers = headers,
                              .nheaders = 3,
                              .body = "",
                              .body_len = 0,
                              .connect_timeout_ms = 2000,
                              .timeout_ms = timeout,
                              .max_response_bytes = 1 << 20};
    p->in_flight = 1;
    if (cmn_http_request(b->client, &req, on_commands, p) != 0) {
        p->in_flight = 0;
        poll_again(p, (uint64_t)b->cfg->lpr.command_poll_ms);
    }
}

/* A poll for each lot with a camera that drives a barrier; the cursor from the spool folder, else
 * command_max_age_s back from now (commands older than that are not carried out anyway). */
static void polls_start(lpr_bridge_t *b)
{
    const cmn_config_t *cfg = b->cfg;
    if (cfg->lpr.command_poll_ms <= 0)
        return;
    b->polls = cmn_xcalloc(cfg->nlots ? cfg->nlots : 1, sizeof *b->polls);
    for (size_t lot = 0; lot < cfg->nlots; lot++) {
        const cmn_cfg_camera_t *cam = NULL;
        for (size_t i = 0; i < cfg->lpr.ncameras && cam == NULL; i++) {
            if ((size_t)cfg->lpr.cameras[i].lot_index == lot &&
                cfg->lpr.cameras[i].barrier.kind != CMN_BARRIER_NONE)
                cam = &cfg->lpr.cameras[i];
        }
        if (cam == NULL)
            continue;
        struct cmdpoll *p = &b->polls[b->npolls++];
        p->b = b;
        p->lot = lot;
        p->dev = &cfg->devices[cam->device_index];
        size_t n = strlen(cfg->lpr.spool_dir) + strlen(cfg->lots[lot].id) + 32;
        p->cursor_path = cmn_xalloc(n);
        snprintf(p->cursor_path, n, "%s/lane-commands.%s", cfg->lpr.spool_dir, cfg->lots[lot].id);
        FILE *f = fopen(p->cursor_path, "r"); /* at start, before the loop runs */
        if (f != NULL) {
            if (fgets(p->cursor, sizeof p->cursor, f) != NULL)
                p->cursor[strcspn(p->cursor, "\n")] = '\0';
            fclose(f);
        }
        if (!cursor_valid(p->cursor))
            snprintf(p->cursor, sizeof p->cursor, "%lld-0",
                     ((long long)time(NULL) - (long long)cfg->lpr.command_max_age_s) * 1000);
        snprintf(p->saved, sizeof p->saved, "%s", p->cursor);
        uv_timer_init(b->loop, &p->timer);
        p->timer.data = p;
        uv_timer_start(&p->timer, on_poll_timer, 0, 0);
    }
}

/* ---- health and metrics -------------------------------------------------------------------- */

static void metrics(lpr_bridge_t *b, cmn_httpd_req_t *req)
{
    cmn_buf_t o;
    /* A buffer refuses appends past its limit, so a fixed 1 MiB cut the text short from about
     * 1 500 cameras on (a city's bridge), totals included: room for every camera's lines (ids
     * are at most 64 bytes, a line at most 160) plus the fixed part. */
    cmn_buf_init(&o, ((size_t)1 << 16) + b->cfg->lpr.ncameras * (OUT_COUNT + 1) * 160);
    cmn_buf_puts(&o, "# HELP park_lpr_reads_total Camera reads by camera and outcome.\n"
                     "# TYPE park_lpr_reads_total counter\n");
    for (size_t i = 0; i < b->cfg->lpr.ncameras; i++) {
        for (int k = 0; k < OUT_COUNT; k++)
            cmn_buf_printf(&o, "park_lpr_reads_total{camera=\"%s\",outcome=\"%s\"} %llu\n",
                           b->lanes[i].cam->id, out_names[k], b->lanes[i].outcomes[k]);
    }
    cmn_buf_puts(&o, "# HELP park_lpr_payload_errors_total Camera payloads that could not be "
                     "parsed.\n# TYPE park_lpr_payload_errors_total counter\n");
    for (size_t i = 0; i < b->cfg->lpr.ncameras; i++)
        cmn_buf_printf(&o, "park_lpr_payload_errors_total{camera=\"%s\"} %llu\n",
                       b->lanes[i].cam->id, b->lanes[i].parse_errors);
    cmn_buf_printf(&o,
                   "# HELP park_lpr_spool_depth Reads in the spool not yet acknowledged.\n"
                   "# TYPE park_lpr_spool_depth gauge\npark_lpr_spool_depth %zu\n"
                   "# HELP park_lpr_delivered_total Events the gateway answered.\n"
                   "# TYPE park_lpr_delivered_total counter\npark_lpr_delivered_total %llu\n"
                   "# HELP park_lpr_refused_total Events the gateway refused for good.\n"
                   "# TYPE park_lpr_refused_total counter\npark_lpr_refused_total %llu\n"
                   "# HELP park_lpr_forward_retries_total Deliveries tried again.\n"
                   "# TYPE park_lpr_forward_retries_total counter\n"
                   "park_lpr_forward_retries_total %llu\n"
                   "# HELP park_lpr_fallbacks_total Barriers driven by the fallback.\n"
                   "# TYPE park_lpr_fallbacks_total counter\npark_lpr_fallbacks_total %llu\n"
                   "# HELP park_lpr_barrier_commands_total Barrier commands by result.\n"
                   "# TYPE park_lpr_barrier_commands_total counter\n"
                   "park_lpr_barrier_commands_total{result=\"ok\"} %llu\n"
                   "park_lpr_barrier_commands_total{result=\"failed\"} %llu\n"
                   "# HELP park_lpr_lane_commands_total Lane commands (remote openings) by "
                   "outcome.\n# TYPE park_lpr_lane_commands_total counter\n"
                   "park_lpr_lane_commands_total{outcome=\"done\"} %llu\n"
                   "park_lpr_lane_commands_total{outcome=\"stale\"} %llu\n"
                   "park_lpr_lane_commands_total{outcome=\"no_barrier\"} %llu\n"
                   "# HELP park_lpr_lane_command_polls_failed_total Asks for lane commands that "
                   "failed.\n# TYPE park_lpr_lane_command_polls_failed_total counter\n"
                   "park_lpr_lane_command_polls_failed_total %llu\n"
                   "# HELP park_lpr_forward_seconds From a read's queueing to the gateway's "
                   "answer.\n# TYPE park_lpr_forward_seconds histogram\n",
                   lpr_spool_depth(b->spool), b->delivered, b->dropped, b->retries, b->fallbacks,
                   b->barrier_ok, b->barrier_failed, b->commands_done, b->commands_stale,
                   b->commands_no_barrier, b->command_polls_failed);
    unsigned long long cum = 0;
    for (int i = 0; i < LATENCY_BUCKETS; i++) {
        cum += b->latency[i];
        cmn_buf_printf(&o, "park_lpr_forward_seconds_bucket{le=\"%g\"} %llu\n",
                       (double)latency_le_ms[i] / 1000.0, cum);
    }
    cmn_buf_printf(&o,
                   "park_lpr_forward_seconds_bucket{le=\"+Inf\"} %llu\n"
                   "park_lpr_forward_seconds_sum %.3f\npark_lpr_forward_seconds_count %llu\n",
                   (unsigned long long)b->latency_count, (double)b->latency_sum_ms / 1000.0,
                   (unsigned long long)b->latency_count);
    cmn_httpd_respond(req, 200, "text/plain; version=0.0.4", o.base ? o.base : "", o.len, NULL);
    cmn_buf_dispose(&o);
}

static void on_request(cmn_httpd_req_t *req, void *data)
{
    lpr_bridge_t *b = data;
    const char *q = memchr(req->url, '?', req->url_len);
    size_t plen = q ? (size_t)(q - req->url) : req->url_len;
    if (plen > 12 && memcmp(req->url, "/v1/cameras/", 12) == 0) {
        if (req->method != HTTP_POST)
            return respond_error(req, 405, "method_not_allowed", "cameras POST their reads");
        return camera_push(b, req, req->url + 12, plen - 12);
    }
    if (plen == 8 && memcmp(req->url, "/healthz", 8) == 0)
        return cmn_httpd_respond(req, 200, "application/json", "{\"status\":\"ok\"}", 15, NULL);
    if (plen == 8 && memcmp(req->url, "/metrics", 8) == 0)
        return metrics(b, req);
    respond_error(req, 404, "not_found", "no such resource");
}

/* ---- start and stop ------------------------------------------------------------------------- */

int lpr_bridge_start(uv_loop_t *loop, const cmn_config_t *cfg, lpr_bridge_t **out)
{
    lpr_bridge_t *b = cmn_xcalloc(1, sizeof *b);
    lpr_spooled_t *pending = NULL;
    size_t npending = 0;
    int rc;

    b->loop = loop;
    b->cfg = cfg;
    cmn_buf_init(&b->record, 1 << 20);
    cameras_index(b);
    rc = lpr_spool_open(loop, cfg->lpr.spool_dir, &b->spool, &pending, &npending);
    if (rc != 0)
        goto fail;
    rc = cmn_http_client_new(loop, 256, &b->client);
    if (rc != 0)
        goto fail;
    /* Same bound as the client's; an https gateway (or any URL fwd.c does not take) stays with
     * libcurl. */
    if (lpr_fwd_new(loop, cfg->lpr.gateway_url, 256, &b->fwd) != 0)
        b->fwd = NULL;
    b->lanes = cmn_xcalloc(cfg->lpr.ncameras ? cfg->lpr.ncameras : 1, sizeof *b->lanes);
    for (size_t i = 0; i < cfg->lpr.ncameras; i++) {
        b->lanes[i].b = b;
        b->lanes[i].index = i;
        b->lanes[i].cam = &cfg->lpr.cameras[i];
        uv_timer_init(loop, &b->lanes[i].hold_timer);
        b->lanes[i].hold_timer.data = &b->lanes[i];
    }
    b->lots = cmn_xcalloc(cfg->nlots ? cfg->nlots : 1, sizeof *b->lots);
    for (size_t i = 0; i < cfg->nlots; i++) {
        b->lots[i].b = b;
        uv_timer_init(loop, &b->lots[i].retry);
        b->lots[i].retry.data = &b->lots[i];
    }
    /* Reads of earlier runs, in the order they were written: delivered, never at the barrier. */
    size_t replayed = 0;
    for (size_t i = 0; i < npending; i++) {
        char *sp = strchr(pending[i].record, ' ');
        const cmn_cfg_camera_t *cam = NULL;
        if (sp != NULL) {
            *sp = '\0';
            cam = cmn_config_camera(cfg, pending[i].record);
        }
        if (cam == NULL) {
            cmn_log(CMN_LOG_ERROR, "spool", "read %llu names an unknown camera; kept in the spool",
                    (unsigned long long)pending[i].seq);
            continue;
        }
        struct item *it = cmn_xcalloc(1, sizeof *it);
        it->b = b;
        it->seq = pending[i].seq;
        it->cam = (size_t)(cam - cfg->lpr.cameras);
        it->body = cmn_xstrdup(sp + 1);
        it->body_len = strlen(it->body);
        json_error_t err;
        json_t *ev = json_loads(it->body, 0, &err);
        const char *eid = json_string_value(json_object_get(ev, "event_id"));
        snprintf(it->event_id, sizeof it->event_id, "%s", eid ? eid : "?");
        json_decref(ev);
        enqueue(b, it);
        replayed++;
    }
    lpr_spooled_free(pending, npending);
    pending = NULL;
    if (replayed > 0)
        cmn_log(CMN_LOG_INFO, "replay", "%zu reads of earlier runs queued for delivery", replayed);
    polls_start(b);
    cmn_httpd_config_t hc = {.host = cfg->lpr.listen.host,
                             .port = cfg->lpr.listen.port,
                             .max_header_bytes = 16384,
                             .max_body_bytes = 8u << 20, /* pictures come along */
                             .max_connections = 1024,
                             .idle_timeout_ms = 60000,
                             .request_timeout_ms = 30000};
    rc = cmn_httpd_start(loop, &hc, on_request, b, &b->http);
    if (rc != 0)
        goto fail;
    *out = b;
    return 0;
fail:
    lpr_spooled_free(pending, npending);
    cmn_log(CMN_LOG_ERROR, "start", "lpr-bridge cannot start: %s", cmn_strerror(rc));
    *out = NULL;
    return rc; /* the process exits: what was opened goes with it */
}

int lpr_bridge_port(const lpr_bridge_t *b)
{
    return cmn_httpd_port(b->http);
}

static void on_handle_closed(uv_handle_t *h)
{
    lpr_bridge_t *b = h->data;
    if (--b->handles_open == 0) {
        void (*done)(void *) = b->stop_done;
        void *data = b->stop_data;
        cmn_free(b->lanes);
        cmn_free(b->lots);
        cmn_buf_dispose(&b->record);
        cmn_free(b->camidx);
        cmn_free(b->polls);
        cmn_free(b);
        if (done != NULL)
            done(data);
    }
}

static void on_spool_closed(void *data)
{
    lpr_bridge_t *b = data;
    b->handles_open = 1;
    b->stop_poll.data = b;
    for (size_t i = 0; i < b->cfg->lpr.ncameras; i++) {
        b->handles_open++;
        b->lanes[i].hold_timer.data = b;
        uv_close((uv_handle_t *)&b->lanes[i].hold_timer, on_handle_closed);
    }
    for (size_t i = 0; i < b->cfg->nlots; i++) {
        b->handles_open++;
        b->lots[i].retry.data = b;
        uv_close((uv_handle_t *)&b->lots[i].retry, on_handle_closed);
        struct item *it = b->lots[i].head;
        while (it != NULL) {
            struct item *next = it->next;
            item_free(it);
            it = next;
        }
    }
    for (size_t i = 0; i < b->npolls; i++) {
        struct cmdpoll *p = &b->polls[i];
        if (p->writing != NULL)
            p->writing->p = NULL; /* it finishes on its own */
        cmn_free(p->cursor_path);
        b->handles_open++;
        p->timer.data = b;
        uv_close((uv_handle_t *)&p->timer, on_handle_closed);
    }
    uv_close((uv_handle_t *)&b->stop_poll, on_handle_closed);
}

static void on_client_closed(void *data)
{
    lpr_bridge_t *b = data;
    b->client = NULL; /* freed: decision timers still pending must not use it */
    lpr_spool_close(b->spool, on_spool_closed, b);
}

static void on_fwd_closed(void *data)
{
    lpr_bridge_t *b = data;
    b->fwd = NULL;
    cmn_http_client_close(b->client, on_client_closed, b);
}

static void on_stop_poll(uv_timer_t *t)
{
    lpr_bridge_t *b = t->data;
    for (size_t i = 0; i < b->cfg->nlots; i++) {
        if (b->lots[i].in_flight)
            return; /* a delivery is still out: it ends with its timeout at the latest */
    }
    uv_timer_stop(t);
    if (b->fwd != NULL)
        lpr_fwd_close(b->fwd, on_fwd_closed, b);
    else
        cmn_http_client_close(b->client, on_client_closed, b);
}

static void on_http_closed(void *data)
{
    lpr_bridge_t *b = data;
    uv_timer_init(b->loop, &b->stop_poll);
    b->stop_poll.data = b;
    uv_timer_start(&b->stop_poll, on_stop_poll, 0, 20);
}

void lpr_bridge_stop(lpr_bridge_t *b, void (*done)(void *data), void *data)
{
    b->stopping = 1;
    b->stop_done = done;
    b->stop_data = data;
    /* Held reads are in the spool: the next start delivers them. */
    for (size_t i = 0; i < b->cfg->lpr.ncameras; i++) {
        if (b->lanes[i].held.item != NULL) {
            item_free(b->lanes[i].held.item);
            b->lanes[i].held.item = NULL;
        }
        uv_timer_stop(&b->lanes[i].hold_timer);
    }
    for (size_t i = 0; i < b->cfg->nlots; i++)
        uv_timer_stop(&b->lots[i].retry);
    for (size_t i = 0; i < b->npolls; i++)
        uv_timer_stop(&b->polls[i].timer);
    cmn_httpd_close(b->http, on_http_closed, b);
}
