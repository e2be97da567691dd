#include "reminders.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn/err.h"
#include "cmn/json.h"
#include "cmn/log.h"
#include "cmn/mem.h"
#include "cmn/plate.h"
#include "cmn/rargs.h"

#define REMINDER_IDLE_MS 15000 /* a failed delivery is tried again after this */
#define REMINDER_BATCH 32
#define REMINDERS_IN_FLIGHT 16

struct send_ctx {
    bill_t *b;
    char lot[65];
    char id[64];
};

static void on_xadd(void *data, int status, redisReply *r)
{
    (void)data;
    if (status != 0 || r == NULL || r->type == REDIS_REPLY_ERROR)
        cmn_log(CMN_LOG_WARN, "reminder", "a notification was not queued");
}

void bill_reminder_add(bill_t *b, const char *lot, const char *kind, const char *bill,
                       const char *driver)
{
    cmn_rargs_t a;
    cmn_rargs_init(&a);
    cmn_rargs_str(&a, "XADD");
    cmn_rargs_fmt(&a, "pk:{%s}:outbox", lot);
    cmn_rargs_str(&a, "MAXLEN");
    cmn_rargs_str(&a, "~");
    cmn_rargs_str(&a, "100000");
    cmn_rargs_str(&a, "*");
    cmn_rargs_str(&a, "kind");
    cmn_rargs_str(&a, kind);
    cmn_rargs_str(&a, "bill");
    cmn_rargs_str(&a, bill);
    cmn_rargs_str(&a, "driver");
    cmn_rargs_str(&a, driver);
    cmn_rargs_str(&a, "lot");
    cmn_rargs_str(&a, lot);
    cmn_rargs_str(&a, "at");
    cmn_rargs_int(&a, bill_now(b));
    cmn_redis_command(b->redis, on_xadd, NULL, a.n, a.v, a.len);
}

static void ack(bill_t *b, const char *lot, const char *id)
{
    cmn_rargs_t a;
    cmn_rargs_init(&a);
    cmn_rargs_str(&a, "XACK");
    cmn_rargs_fmt(&a, "pk:{%s}:outbox", lot);
    cmn_rargs_str(&a, "reminders");
    cmn_rargs_str(&a, id);
    cmn_redis_command(b->redis, on_xadd, NULL, a.n, a.v, a.len);
}

static void on_delivered(void *data, const cmn_http_response_t *resp)
{
    struct send_ctx *s = data;
    bill_t *b = s->b;
    b->reminders_in_flight--;
    if (resp->error == 0 && resp->status >= 200 && resp->status < 300) {
        b->stats.reminders_sent++;
        ack(b, s->lot, s->id);
    } else {
        b->stats.reminders_failed++;
        cmn_log(CMN_LOG_WARN, "reminder", "notification %s of lot %s not delivered (%s%ld); "
                "it will be sent again", s->id, s->lot, resp->error ? resp->error_text : "HTTP ",
                resp->status);
    }
    cmn_free(s);
}

/* One outbox entry: log it, then deliver it (or acknowledge it when no webhook is set). */
static void deliver(bill_t *b, const char *lot, const redisReply *entry)
{
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 2 ||
        entry->element[0]->type != REDIS_REPLY_STRING ||
        entry->element[1]->type != REDIS_REPLY_ARRAY)
        return;
    const char *id = entry->element[0]->str;
    const redisReply *f = entry->element[1];
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(id));
    const char *kind = "", *plate = "", *bill = "";
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const char *k = f->element[i]->str, *v = f->element[i + 1]->str;
        if (k == NULL || v == NULL)
            continue;
        if (strcmp(k, "amount") == 0 || strcmp(k, "at") == 0)
            json_object_set_new(o, k, json_integer(strtoll(v, NULL, 10)));
        else
            json_object_set_new(o, k, json_string(v));
        if (strcmp(k, "kind") == 0)
            kind = v;
        else if (strcmp(k, "plate") == 0)
            plate = v;
        else if (strcmp(k, "bill") == 0)
            bill = v;
    }
    char masked[CMN_PLATE_MAX];
    cmn_plate_mask(plate, masked, sizeof masked);
    cmn_log(CMN_LOG_INFO, "reminder", "%s: bill %s plate %s", kind, bill, masked);
    const char *url = b->cfg->credit.reminder_webhook;
    if (url == NULL) {
        json_decref(o);
        ack(b, lot, id);
        return;
    }
    char *body = cmn_json_dump(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    char key[96];
    snprintf(key, sizeof key, "Idempotency-Key: %s-%s", lot, id);
    const char *headers[] = {"Content-Type: application/json", key};
    cmn_http_request_t req = {.method = "POST",
                              .url = url,
                              .headers = headers,
                              .nheaders = 2,
                              .body = body,
                              .body_len = body ? strlen(body) : 0,
                              .connect_timeout_ms = 2000,
                              .timeout_ms = 5000,
                              .max_response_bytes = 65536};
    struct send_ctx *s = cmn_xcalloc(1, sizeof *s);
    s->b = b;
    snprintf(s->lot, sizeof s->lot, "%s", lot);
    snprintf(s->id, sizeof s->id, "%s", id);
    b->reminders_in_flight++;
    if (body == NULL || cmn_http_request(b->http, &req, on_delivered, s) != 0) {
        b->reminders_in_flight--;
        cmn_free(s);
    }
    cmn_free(body);
}

struct read_ctx {
    bill_t *b;
    char lot[65];
};

static void on_outbox(void *data, int status, redisReply *r)
{
    struct read_ctx *rc = data;
    if (status == 0 && r != NULL && r->type == REDIS_REPLY_ARRAY) {
        const redisReply *entries = cmn_stream_entries(r);
        for (size_t i = 0; entries != NULL && i < entries->elements; i++)
            deliver(rc->b, rc->lot, entries->element[i]);
    } else if (status == 0 && r != NULL && r->type == REDIS_REPLY_ERROR) {
        cmn_log(CMN_LOG_ERROR, "redis", "outbox: %.200s", r->str);
    }
    cmn_free(rc);
}

void bill_reminders_tick(bill_t *b, int reclaim)
{
    if (b->reminders_in_flight >= REMINDERS_IN_FLIGHT)
        return;
    for (size_t i = 0; i < b->cfg->nlots; i++) {
        const char *lot = b->cfg->lots[i].id;
        cmn_rargs_t a;
        char key[96];
        snprintf(key, sizeof key, "pk:{%s}:outbox", lot);
        cmn_rargs_stream_read(&a, key, "reminders", b->consumer, reclaim, REMINDER_IDLE_MS,
                              REMINDER_BATCH);
        struct read_ctx *rc = cmn_xcalloc(1, sizeof *rc);
        rc->b = b;
        snprintf(rc->lot, sizeof rc->lot, "%s", lot);
        if (cmn_redis_command(b->redis, on_outbox, rc, a.n, a.v, a.len) != 0)
            cmn_free(rc);
    }
}
