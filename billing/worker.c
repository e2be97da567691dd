/*
 * How bills move (docs/billing.md).
 *
 * Design note.  Work on bills is driven by two things: free slots and the clock.
 *
 *   slots     billing.max_in_flight provider requests may be in flight, and settlement runs at
 *             max_in_flight / the provider's latency only if a slot is used again as soon as it
 *             frees.  A bill holds a slot only while its provider request is in flight; more
 *             bills are claimed and prepared ahead (bill_step, the payment reference), as many
 *             as free in 25 ms at the provider's latency (a quarter of the slots to all of them,
 *             ahead_of()), so that a freed slot goes at once to a bill waiting ready, with no
 *             Redis round trip in between (provider_call()).  Whatever frees a slot or a place
 *             ahead (an answer, a step that had nothing to do) or brings a bill (an intake) asks
 *             for a refill on the next loop turn; the causes of one turn (a burst of answers
 *             read together) make one refill, and one due_claim per lot at most is in flight,
 *             completions meanwhile adding up to the next.  A refill shares the free room
 *             between the lots that may have due bills, the first lot served turning each time
 *             (see refill()).  A lot whose claim came back short has nothing due now and is left
 *             alone until a fresh bill or the tick.
 *   tick      every 200 ms by default: whatever comes due with time (retries, leases run out,
 *             grace and default times, WeChat Pay queries) makes every lot claim again; new
 *             entries of the settlement streams are read; and the tick's own work below
 *             (notifications, reclaiming, WeChat Pay entries, reminders) is done.
 *
 * For each lot:
 *
 *   intake    XREADGROUP on the lot's settlement stream (pk:{L}:bills, group "billing"), at each
 *             tick, and ahead of need while the last read was full and the bills taken in but not
 *             claimed no longer fill every slot: each new bill is scheduled in the lot's due set
 *             (bill_intake), applied to its driver's record (driver_bill, idempotent), then its
 *             entry is acknowledged and deleted in one script (bill_ack: XACK + XDEL), so the
 *             stream holds only the bills not yet taken in.  XAUTOCLAIM hands entries that a
 *             crashed process read but never acknowledged to this one.
 *   due       due_claim takes the bills whose time has come, as many as there are free slots,
 *             pushing each back by a lease (so neither this process nor another takes it again
 *             meanwhile); bill_step then says what to do: charge it (a lease on the bill itself
 *             keeps other processes off while the charge is in flight), mark it overdue, or
 *             defaulted.
 *   charge    the driver's payment reference is read, the provider is called with the bill's id
 *             as idempotency key, and bill_result records the outcome: paid (paid_late when it was
 *             overdue), declined (retried by the policy's schedule, then failed), transient (429,
 *             5xx, timeouts: retried soon with the same key, not counted), alert, or accepted
 *             (WeChat Pay: the deduction's end comes by notification, or by a query when the bill
 *             comes due again; wechatpay.c).
 *   entries   for WeChat Pay, each lot's entries stream registers the parkings (wechatpay.c).
 *   driver    paid, overdue and defaulted bills change the driver's record (driver_settle,
 *             driver_overdue, driver_default: each applied once per bill), then its plate copies.
 *   outbox    reminders.c sends the lot's outbox stream to the reminder webhook.
 *   money     a script that changes a bill's status moves its amount between the money buckets
 *             of the bill's lot-day (docs/redis.md) and is given that lot-day's key: bill_step
 *             tells the day, and a script given none ("-") answers {'day', date} unchanged and is
 *             sent again with it.
 *
 * A crash anywhere leaves either an unacknowledged stream entry (reclaimed) or a bill whose lease
 * runs out (taken again); the charge is then sent again with the same idempotency key, so the
 * provider answers with the first charge instead of making a second.  An entry is deleted only
 * once acknowledged, after its bill is in the due set and its driver updated.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing.h"
#include "cmn/crypto.h"
#include "cmn/driver.h"
#include "cmn/err.h"
#include "cmn/log.h"
#include "cmn/mem.h"
#include "cmn/rargs.h"
#include "reminders.h"

#define CLAIM_IDLE_MS 10000 /* stream entries unacknowledged this long are taken over */
#define BATCH 32 /* stream entries read at a time (the settlement stream is read again when full) */

static void tick_done(bill_t *b);
static void refill_soon(bill_t *b);

/* How long a bill stays with the process charging it: the slowest provider's connect and total
 * timeouts, plus a margin for Redis.  A process that dies mid-charge holds its bills this long. */
static long long lease_s(const bill_t *b)
{
    long long ms = 0;
    for (size_t i = 0; i < b->cfg->nproviders; i++) {
        const cmn_cfg_provider_t *p = &b->cfg->providers[i];
        if (p->connect_timeout_ms + p->timeout_ms > ms)
            ms = p->connect_timeout_ms + p->timeout_ms;
    }
    return ms / 1000 + 5;
}

/* ---- small helpers ------------------------------------------------------------------------ */

static void start_script(bill_t *b, cmn_rargs_t *a, int script, int nkeys)
{
    cmn_rargs_init(a);
    cmn_rargs_str(a, "EVALSHA");
    cmn_rargs_str(a, cmn_redis_script_sha(b->redis, b->scripts[script]));
    cmn_rargs_int(a, nkeys);
}

static int rsend(bill_t *b, cmn_rargs_t *a, cmn_redis_cb cb, void *data)
{
    if (a->overflow)
        return CMN_ETOOBIG;
    return cmn_redis_command(b->redis, cb, data, a->n, a->v, a->len);
}

static int reply_ok(int status, redisReply *r, const char *what)
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

static void copy_reply(char *out, size_t outsz, const redisReply *r, size_t i)
{
    size_t len = 0;
    const char *s = cmn_reply_str(r, i, &len);
    snprintf(out, outsz, "%.*s", s ? (int)(len < outsz - 1 ? len : outsz - 1) : 0, s ? s : "");
}

/* Splits "LOT~123~b" into lot and session number. */
static int parse_bill_id(const char *bill, char *lot, size_t lotsz, char *seq, size_t seqsz)
{
    const char *end = strrchr(bill, '~');
    if (end == NULL || strcmp(end, "~b") != 0)
        return -1;
    const char *mid = end - 1;
    while (mid > bill && *mid != '~')
        mid--;
    if (mid == bill || (size_t)(mid - bill) >= lotsz || (size_t)(end - mid - 1) >= seqsz ||
        end - mid - 1 == 0)
        return -1;
    snprintf(lot, lotsz, "%.*s", (int)(mid - bill), bill);
    snprintf(seq, seqsz, "%.*s", (int)(end - mid - 1), mid + 1);
    return 0;
}

/* ---- driver updates ------------------------------------------------------------------------ */

struct drv_ctx {
    bill_t *b;
    char lot[65];
    char bill[100];
    char driver[65];
    const char *event; /* restored / suspended reminders */
};

static void on_driver_change(void *data, int status, redisReply *r)
{
    struct drv_ctx *d = data;
    if (reply_ok(status, r, "driver update") && r->type == REDIS_REPLY_ARRAY &&
        (cmn_reply_is(r, "ok") || cmn_reply_is(r, "again"))) {
        const char *snap = cmn_reply_str(r, 1, NULL);
        const char *plates = cmn_reply_str(r, 2, NULL);
        if (snap != NULL && plates != NULL)
            cmn_driver_mirror(d->b->redis, d->b->scripts[BILL_LUA_PLATE_MIRROR], d->driver,
                              plates, snap);
        /* The scripts' last element says whether the event changed the privilege (restored,
         * suspended) or was a warning: those are worth telling the driver. */
        if (cmn_reply_is(r, "ok") && d->event != NULL && r->elements > 3 &&
            r->element[3]->type == REDIS_REPLY_INTEGER && r->element[3]->integer == 1)
            bill_reminder_add(d->b, d->lot, d->event, d->bill, d->driver);
    } else if (status == 0 && r != NULL && cmn_reply_is(r, "unknown")) {
        cmn_log(CMN_LOG_WARN, "driver_update", "bill %s: driver %s no longer exists", d->bill,
                d->driver);
    }
    cmn_free(d);
}

static void driver_keys(cmn_rargs_t *a, const char *driver, const char *const *parts, int n)
{
    for (int i = 0; i < n; i++)
        cmn_rargs_fmt(a, "pk:drv:{%s}%s", driver, parts[i]);
}

/* kind: "bill" (owed), "paid", "paid_late", "overdue", "defaulted". */
static void driver_event(bill_t *b, const char *lot, const char *bill, const char *driver,
                         const char *kind, long long amount)
{
    const cmn_cfg_credit_t *p = &b->cfg->credit;
    cmn_rargs_t *a;
    struct drv_ctx *d;
    if (driver == NULL || driver[0] == '\0')
        return;
    a = cmn_xalloc(sizeof *a);
    d = cmn_xcalloc(1, sizeof *d);
    d->b = b;
    snprintf(d->lot, sizeof d->lot, "%s", lot);
    snprintf(d->bill, sizeof d->bill, "%s", bill);
    snprintf(d->driver, sizeof d->driver, "%s", driver);
    int64_t now = bill_now(b);
    if (strcmp(kind, "bill") == 0) {
        /* :bills: the driver's bills, for GET /v1/me/bills (docs/redis.md). */
        static const char *const parts[] = {"", ":unpaid", ":applied", ":bills"};
        start_script(b, a, BILL_LUA_DRIVER_BILL, 4);
        driver_keys(a, driver, parts, 4);
        cmn_rargs_str(a, bill);
        cmn_rargs_int(a, amount);
        cmn_rargs_int(a, now);
    } else if (strcmp(kind, "paid") == 0 || strcmp(kind, "paid_late") == 0) {
        static const char *const parts[] = {"", ":unpaid", ":overdue", ":applied", ":history"};
        start_script(b, a, BILL_LUA_DRIVER_SETTLE, 5);
        driver_keys(a, driver, parts, 5);
        cmn_rargs_str(a, bill);
        cmn_rargs_str(a, kind);
        cmn_rargs_int(a, now);
        cmn_rargs_int(a, strcmp(kind, "paid") == 0 ? p->score_paid_on_time : p->score_paid_late);
        cmn_rargs_int(a, p->max_score);
        d->event = "restored";
    } else if (strcmp(kind, "overdue") == 0) {
        static const char *const parts[] = {"", ":overdue", ":applied", ":history"};
        start_script(b, a, BILL_LUA_DRIVER_OVERDUE, 4);
        driver_keys(a, driver, parts, 4);
        cmn_rargs_str(a, bill);
        cmn_rargs_int(a, now);
        cmn_rargs_int(a, p->suspend_when_overdue);
        d->event = "suspended";
    } else {
        static const char *const parts[] = {"", ":defaults", ":applied", ":history"};
        start_script(b, a, BILL_LUA_DRIVER_DEFAULT, 4);
        driver_keys(a, driver, parts, 4);
        cmn_rargs_str(a, bill);
        cmn_rargs_int(a, now);
        /* A rolling window of whole months: 30.4375 days each. */
        cmn_rargs_int(a, p->first_default_free_months * 2629800LL);
        cmn_rargs_int(a, p->score_default);
        cmn_rargs_int(a, p->max_score);
        d->event = "default_warning";
    }
    if (rsend(b, a, on_driver_change, d) != 0) {
        cmn_log(CMN_LOG_WARN, "driver_update", "bill %s: not sent", bill);
        cmn_free(d);
    }
    cmn_free(a);
}

/* ---- charging --------------------------------------------------------------------------- */

struct charge_ctx {
    bill_t *b;
    char lot[65];
    char seq[24];
    long long transients;
    int query;     /* the query of an accepted deduction, not a charge */
    char otn[40];  /* a failure notified for this out_trade_no */
    bill_charge_t c;
    /* The bill's lot-day, whose money counters its scripts move (docs/redis.md): told by
     * bill_step, or by a script that was given none ({'day', date}, nothing changed). */
    char day[16];
    int day_asks;
    /* The outcome being recorded, kept to be sent again when the script asks for the day. */
    bill_outcome_t out;
    const char *out_name;
    char next[24];
    int64_t at;
    int slot;    /* holds one of the max_in_flight slots (its provider request) */
    int prep;    /* claimed, on its way to a provider request (counted in b->preparing) */
    int call;    /* the provider request it waits to make: CALL_* */
    char refund_of[128]; /* CALL_REFUND: the charge to refund */
    long long refund_total; /* CALL_REFUND: the bill's amount (WeChat Pay asks for the total) */
    uint64_t queued_at;  /* when it began waiting for a slot (uv_now) */
    uint64_t sent_ns;    /* when its provider request went out (uv_hrtime) */
    struct charge_ctx *next_ready;
};

enum { CALL_CHARGE = 1, CALL_QUERY, CALL_REFUND };

/* Bills ready to call their provider, waiting for a slot (FIFO). */
static struct charge_ctx *ready_head, *ready_tail;
static unsigned ready_n;

/* A queued bill that waited longer than this is dropped rather than sent: its lease (the
 * provider's timeouts + 5 s, from bill_step) must outlast the request. */
#define READY_WAIT_MAX_MS 2000

/* Slots.  A bill holds one of the max_in_flight slots only while its provider request is in
 * flight: max_in_flight bounds provider requests.  The Redis work around a request (bill_step,
 * the payment reference before; bill_result after) runs without a slot, and bills are claimed
 * and prepared ahead, so that a freed slot goes at once, with no Redis round trip, to a bill
 * waiting ready (see refill()).
 * How many ahead: the slots that free in AHEAD_MS at the provider's recent latency (they free at
 * max_in_flight / latency), a quarter of the slots at least and all of them at most.  A fixed
 * quarter held 13 ms of work at 32 slots and 50 ms: a Redis or scheduling stall longer than that
 * left slots empty (at 0.93 of the bound, the slots were short of a bill 3 to 11 % of the time
 * on a busy machine, 2 % with twice as many ahead), and at a provider answering in 2 ms it held
 * less than a round trip's worth.  A bill ready waits about AHEAD_MS for its slot whatever the
 * latency (the floor makes it a quarter of the latency for slow providers, as before), far
 * below READY_WAIT_MAX_MS. */
#define AHEAD_MS 25

static unsigned ahead_of(const bill_t *b)
{
    unsigned max = (unsigned)b->cfg->billing.max_in_flight;
    unsigned least = max / 4 > 0 ? max / 4 : 1;
    if (b->provider_ns == 0)
        return least; /* no answer yet */
    uint64_t n = (uint64_t)max * AHEAD_MS * 1000000 / b->provider_ns + 1;
    return n < least ? least : n > max ? max : (unsigned)n;
}

/* A provider answered (or failed to): its latency joins the moving average (weight 1/8). */
static void provider_latency(struct charge_ctx *cc)
{
    bill_t *b = cc->b;
    if (cc->sent_ns == 0)
        return;
    uint64_t ns = uv_hrtime() - cc->sent_ns;
    if (b->provider_ns == 0)
        b->provider_ns = ns > 0 ? ns : 1;
    else
        b->provider_ns = b->provider_ns - b->provider_ns / 8 + ns / 8;
    if (b->provider_ns == 0)
        b->provider_ns = 1;
}

static void prep_done(struct charge_ctx *cc)
{
    if (cc->prep) {
        cc->prep = 0;
        cc->b->preparing--;
        refill_soon(cc->b);
    }
}

static void slot_free(struct charge_ctx *cc)
{
    if (cc->slot) {
        cc->slot = 0;
        cc->b->slots_used--;
        refill_soon(cc->b);
    }
}

/* A charge, query, refund or notified outcome is over (the caller frees cc). */
static void charge_done(struct charge_ctx *cc)
{
    prep_done(cc);
    slot_free(cc);
    cc->b->charges_in_flight--;
}

static void provider_go(struct charge_ctx *cc);
static void ready_run(bill_t *b);

/* The bill is ready for its provider request: sent now if a slot is free and no bill waits
 * before it, else queued for the next freed slot. */
static void provider_call(struct charge_ctx *cc, int call)
{
    bill_t *b = cc->b;
    prep_done(cc);
    cc->call = call;
    if (ready_n == 0 && b->slots_used < (unsigned)b->cfg->billing.max_in_flight)
        return provider_go(cc);
    cc->queued_at = uv_now(b->loop);
    cc->next_ready = NULL;
    if (ready_tail != NULL)
        ready_tail->next_ready = cc;
    else
        ready_head = cc;
    ready_tail = cc;
    ready_n++;
    /* Stopping, no refill runs the queue any more: what cannot go now is dropped now (cc may be
     * gone when this returns). */
    if (b->stopping)
        ready_run(b);
}

static struct charge_ctx *ready_pop(void)
{
    struct charge_ctx *cc = ready_head;
    if (cc != NULL) {
        ready_head = cc->next_ready;
        if (ready_head == NULL)
            ready_tail = NULL;
        ready_n--;
    }
    return cc;
}

/* A queued bill not sent: it stays "charging" under its lease, which brings it back as the same
 * attempt (same idempotency key) once run out. */
static void ready_drop(struct charge_ctx *cc, const char *why)
{
    cmn_log(CMN_LOG_WARN, "charge_deferred", "bill %s: %s; taken again when its lease ends",
            cc->c.bill, why);
    charge_done(cc);
    cmn_free(cc);
}

/* Sends the queued bills that fit in the free slots. */
static void ready_run(bill_t *b)
{
    unsigned max = (unsigned)b->cfg->billing.max_in_flight;
    while (ready_head != NULL && (b->stopping || b->slots_used < max)) {
        struct charge_ctx *cc = ready_pop();
        if (b->stopping)
            ready_drop(cc, "billing is stopping");
        else if (uv_now(b->loop) - cc->queued_at > READY_WAIT_MAX_MS)
            ready_drop(cc, "no slot for too long");
        else
            provider_go(cc);
    }
}

static void bill_keys(cmn_rargs_t *a, const char *lot, const char *seq)
{
    cmn_rargs_fmt(a, "pk:{%s}:s:%s", lot, seq);
    cmn_rargs_fmt(a, "pk:{%s}:s:%s:h", lot, seq);
    cmn_rargs_fmt(a, "pk:{%s}:due", lot);
    cmn_rargs_fmt(a, "pk:{%s}:outbox", lot);
}

/* The lot's arrears index (docs/redis.md, common/lua/default_lib.lua), which bill_intake, bill_step
 * and bill_result keep in the same step as the bill: the scripts find these keys by name. */
#define ARREARS_KEYS 3
static void arrears_keys(cmn_rargs_t *a, const char *lot)
{
    cmn_rargs_fmt(a, "pk:{%s}:arrears", lot);
    cmn_rargs_fmt(a, "pk:{%s}:arrears:info", lot);
    cmn_rargs_fmt(a, "pk:{%s}:defaulted", lot);
}

/* The key of the bill's lot-day counters; "-" until known (the script then says which it is). */
static void day_key(cmn_rargs_t *a, const struct charge_ctx *cc)
{
    cmn_rargs_fmt(a, "pk:{%s}:day:%s", cc->lot, cc->day[0] ? cc->day : "-");
}

/* A script answered {'day', date}: it moves the bill's money and needs that lot-day's key.
 * Returns 1 when the call is to be sent again with it (once: a bill's day never changes). */
static int day_asked(struct charge_ctx *cc, int status, const redisReply *r)
{
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY || !cmn_reply_is(r, "day"))
        return 0;
    if (cc->day_asks++ > 0) {
        cmn_log(CMN_LOG_ERROR, "bill_day", "bill %s~%s: asked for its day twice", cc->lot,
                cc->seq);
        return 0;
    }
    copy_reply(cc->day, sizeof cc->day, r, 1);
    return 1;
}

static void send_result(struct charge_ctx *cc);

static void on_result(void *data, int status, redisReply *r)
{
    struct charge_ctx *cc = data;
    bill_t *b = cc->b;
    if (day_asked(cc, status, r))
        return send_result(cc);
    if (reply_ok(status, r, "bill_result") && cmn_reply_is(r, "paid") && r->elements > 4) {
        /* {'paid', late, bill, driver, amount}: from the bill, which a notification's path
         * does not know beforehand. */
        int late = r->element[1]->type == REDIS_REPLY_INTEGER && r->element[1]->integer == 1;
        char bill[100], driver[65], amount[24];
        copy_reply(bill, sizeof bill, r, 2);
        copy_reply(driver, sizeof driver, r, 3);
        copy_reply(amount, sizeof amount, r, 4);
        driver_event(b, cc->lot, bill, driver, late ? "paid_late" : "paid",
                     strtoll(amount, NULL, 10));
    }
    charge_done(cc);
    cmn_free(cc);
}

static const char *const outcome_names[] = {"paid", "declined", "transient", "alert",
                                            "accepted"};

static void send_result(struct charge_ctx *cc)
{
    bill_t *b = cc->b;
    cmn_rargs_t *a = cmn_xalloc(sizeof *a);
    start_script(b, a, BILL_LUA_RESULT, 5 + ARREARS_KEYS);
    bill_keys(a, cc->lot, cc->seq);
    day_key(a, cc);
    arrears_keys(a, cc->lot);
    cmn_rargs_str(a, cc->seq);
    cmn_rargs_int(a, cc->at);
    cmn_rargs_str(a, outcome_names[cc->out.kind]);
    cmn_rargs_str(a, cc->out.ref);
    cmn_rargs_str(a, cc->out.code);
    cmn_rargs_str(a, cc->next);
    cmn_rargs_int(a, cc->c.attempt);
    if (rsend(b, a, on_result, cc) != 0) {
        charge_done(cc);
        cmn_free(cc);
    }
    cmn_free(a);
}

static void record(struct charge_ctx *cc, const bill_outcome_t *o)
{
    bill_t *b = cc->b;
    const cmn_cfg_credit_t *p = &b->cfg->credit;
    const char *const *names = outcome_names;
    int64_t now = bill_now(b);
    char next[24] = "";

    if (o->kind == BILL_OUT_DECLINED && cc->c.attempt - 1 < (int)p->nretry)
        snprintf(next, sizeof next, "%lld",
                 (long long)(now + p->retry_minutes[cc->c.attempt - 1] * 60));
    if (o->kind == BILL_OUT_ACCEPTED || (o->kind == BILL_OUT_TRANSIENT && cc->query)) {
        /* The first query a minute after the acceptance (the notification normally comes within
         * seconds), then twice as long after each query left unanswered, up to an hour. */
        long long wait = BILL_WX_QUERY_AFTER_S;
        for (long long q = 0; cc->query && q <= cc->c.queries && wait < BILL_WX_QUERY_MAX_S; q++)
            wait *= 2;
        if (wait > BILL_WX_QUERY_MAX_S)
            wait = BILL_WX_QUERY_MAX_S;
        snprintf(next, sizeof next, "%lld", (long long)now + wait);
    } else if (o->kind == BILL_OUT_TRANSIENT) {
        /* Exponential backoff with jitter: 1, 2, 4 ... up to 300 s, each from half to all. */
        long long step = 1LL << (cc->transients < 8 ? cc->transients : 8);
        if (step > 300)
            step = 300;
        unsigned char rnd[2] = {0, 0};
        cmn_random(rnd, 2);
        long long delay = step / 2 + (long long)((rnd[0] << 8 | rnd[1]) % (unsigned)(step / 2 + 1));
        snprintf(next, sizeof next, "%lld", (long long)now + (delay > 0 ? delay : 1));
    }
    switch (o->kind) {
    case BILL_OUT_PAID:
        b->stats.paid++;
        break;
    case BILL_OUT_DECLINED:
        b->stats.declined++;
        break;
    case BILL_OUT_TRANSIENT:
        b->stats.transient++;
        break;
    case BILL_OUT_ALERT:
        b->stats.alerts++;
        cmn_log(CMN_LOG_ERROR, "charge_alert", "bill %s needs a person: %s", cc->c.bill, o->code);
        break;
    case BILL_OUT_ACCEPTED:
        b->stats.accepted++;
        break;
    }
    cmn_log(o->kind == BILL_OUT_PAID || o->kind == BILL_OUT_ACCEPTED ? CMN_LOG_INFO : CMN_LOG_WARN,
            "charge",
            "bill %s attempt %d: %s %s %s", cc->c.bill, cc->c.attempt, names[o->kind], o->ref,
            o->code);
    cc->out = *o;
    cc->at = now;
    snprintf(cc->next, sizeof cc->next, "%s", next);
    send_result(cc);
}

static void on_outcome(void *data, const bill_outcome_t *o)
{
    provider_latency(data);
    slot_free(data);
    record(data, o);
}

static void on_payment_ref(void *data, int status, redisReply *r)
{
    struct charge_ctx *cc = data;
    bill_outcome_t o;
    memset(&o, 0, sizeof o);
    if (!reply_ok(status, r, "payment reference")) {
        /* Redis is gone: the bill's lease brings it back later. */
        charge_done(cc);
        cmn_free(cc);
        return;
    }
    if (r->type != REDIS_REPLY_STRING || r->len == 0) {
        o.kind = BILL_OUT_ALERT;
        snprintf(o.code, sizeof o.code, "driver_without_payment_method");
        return record(cc, &o);
    }
    snprintf(cc->c.payment_ref, sizeof cc->c.payment_ref, "%.*s", (int)r->len, r->str);
    provider_call(cc, CALL_CHARGE);
}

static void send_refund_result(struct charge_ctx *cc);

static void on_refund_recorded(void *data, int status, redisReply *r)
{
    struct charge_ctx *cc = data;
    if (day_asked(cc, status, r))
        return send_refund_result(cc);
    if (reply_ok(status, r, "bill_refund_result") && cmn_reply_is(r, "refunded"))
        cmn_log(CMN_LOG_INFO, "refund", "bill %s: %lld refunded", cc->c.bill, cc->c.amount);
    charge_done(cc);
    cmn_free(cc);
}

static void on_refund(void *data, const bill_outcome_t *o)
{
    struct charge_ctx *cc = data;
    bill_t *b = cc->b;
    static const char *const names[] = {"refunded", "alert", "transient", "alert", "alert"};
    int64_t now = bill_now(b);
    provider_latency(cc);
    slot_free(cc);
    /* A refund is never "declined": anything but money moved or a fault is for a person. */
    const char *outcome = names[o->kind];
    if (o->kind == BILL_OUT_ALERT || o->kind == BILL_OUT_DECLINED)
        cmn_log(CMN_LOG_ERROR, "refund_alert", "bill %s: refund refused: %s", cc->c.bill, o->code);
    cc->out = *o;
    cc->out_name = outcome;
    cc->at = now;
    send_refund_result(cc);
}

static void send_refund_result(struct charge_ctx *cc)
{
    bill_t *b = cc->b;
    cmn_rargs_t *a = cmn_xalloc(sizeof *a);
    start_script(b, a, BILL_LUA_REFUND_RESULT, 5);
    bill_keys(a, cc->lot, cc->seq);
    day_key(a, cc);
    cmn_rargs_str(a, cc->seq);
    cmn_rargs_int(a, cc->at);
    cmn_rargs_str(a, cc->out_name);
    cmn_rargs_str(a, cc->out.ref);
    cmn_rargs_str(a, cc->out.code);
    cmn_rargs_int(a, cc->at + 5);
    cmn_rargs_int(a, cc->c.attempt);
    if (rsend(b, a, on_refund_recorded, cc) != 0) {
        charge_done(cc);
        cmn_free(cc);
    }
    cmn_free(a);
}

static void start_refund(struct charge_ctx *cc, const redisReply *r)
{
    bill_t *b = cc->b;
    char provider[65], amount[24], n[16], charge[128], total[24];
    copy_reply(cc->c.bill, sizeof cc->c.bill, r, 1);
    copy_reply(cc->c.driver, sizeof cc->c.driver, r, 2);
    copy_reply(provider, sizeof provider, r, 3);
    copy_reply(amount, sizeof amount, r, 4);
    copy_reply(cc->c.currency, sizeof cc->c.currency, r, 5);
    copy_reply(n, sizeof n, r, 6);
    copy_reply(charge, sizeof charge, r, 7);
    copy_reply(cc->day, sizeof cc->day, r, 8);
    copy_reply(total, sizeof total, r, 9);
    snprintf(cc->c.lot, sizeof cc->c.lot, "%s", cc->lot);
    snprintf(cc->c.seq, sizeof cc->c.seq, "%s", cc->seq);
    cc->c.amount = strtoll(amount, NULL, 10);
    cc->c.attempt = (int)strtol(n, NULL, 10);
    cc->c.provider = cmn_config_provider(b->cfg, provider);
    snprintf(cc->refund_of, sizeof cc->refund_of, "%s", charge);
    cc->refund_total = strtoll(total, NULL, 10);
    provider_call(cc, CALL_REFUND);
}

/* The provider request of a bill given a slot: a charge, the query of an accepted deduction, or a
 * refund.  Whatever cannot be sent is recorded as an alert. */
static void provider_go(struct charge_ctx *cc)
{
    bill_t *b = cc->b;
    const cmn_cfg_provider_t *p = cc->c.provider;
    bill_outcome_t o;
    int rc = CMN_EINVAL;
    cc->slot = 1;
    b->slots_used++;
    cc->sent_ns = uv_hrtime();
    if (cc->call == CALL_REFUND) {
        if (p != NULL && p->kind == CMN_PROVIDER_STRIPE)
            rc = bill_stripe_refund(b, &cc->c, cc->refund_of, on_refund, cc);
        else if (p != NULL && p->kind == CMN_PROVIDER_WECHATPAY)
            rc = bill_wx_refund(b, &cc->c, cc->refund_of, cc->refund_total, on_refund, cc);
    } else if (cc->call == CALL_QUERY) {
        if (p->kind == CMN_PROVIDER_WECHATPAY)
            rc = bill_wx_charge(b, &cc->c, 1, on_outcome, cc);
    } else {
        b->stats.attempts++;
        if (p->kind == CMN_PROVIDER_STRIPE)
            rc = bill_stripe_charge(b, &cc->c, on_outcome, cc);
        else if (p->kind == CMN_PROVIDER_WECHATPAY)
            rc = bill_wx_charge(b, &cc->c, 0, on_outcome, cc);
    }
    if (rc == 0)
        return;
    memset(&o, 0, sizeof o);
    o.kind = BILL_OUT_ALERT;
    if (cc->call == CALL_REFUND) {
        snprintf(o.code, sizeof o.code, "refund_unsupported");
        cc->sent_ns = 0; /* nothing was sent: no latency to learn */
        return on_refund(cc, &o);
    }
    if (cc->call == CALL_QUERY)
        snprintf(o.code, sizeof o.code, "query_unsupported");
    else
        snprintf(o.code, sizeof o.code, "provider_%s_unsupported", p->id);
    slot_free(cc);
    record(cc, &o);
}

static void send_step(struct charge_ctx *cc);

static void on_step(void *data, int status, redisReply *r)
{
    struct charge_ctx *cc = data;
    bill_t *b = cc->b;
    char driver[65], bill[100], amount[24];
    if (day_asked(cc, status, r))
        return send_step(cc);
    if (!reply_ok(status, r, "bill_step") || r->type != REDIS_REPLY_ARRAY) {
        charge_done(cc);
        cmn_free(cc);
        return;
    }
    copy_reply(bill, sizeof bill, r, 1);
    copy_reply(driver, sizeof driver, r, 2);
    if (cmn_reply_is(r, "overdue") || cmn_reply_is(r, "defaulted")) {
        int overdue = cmn_reply_is(r, "overdue");
        copy_reply(amount, sizeof amount, r, 3);
        if (overdue)
            b->stats.overdue++;
        else
            b->stats.defaulted++;
        cmn_log(CMN_LOG_INFO, "bill_aged", "bill %s is %s", bill,
                overdue ? "overdue" : "defaulted");
        driver_event(b, cc->lot, bill, driver, overdue ? "overdue" : "defaulted",
                     strtoll(amount, NULL, 10));
    }
    if (cmn_reply_is(r, "refund"))
        return start_refund(cc, r);
    cc->query = cmn_reply_is(r, "query");
    if (!cmn_reply_is(r, "charge") && !cc->query) {
        charge_done(cc);
        cmn_free(cc);
        return;
    }
    /* {'charge', bill, driver, provider, amount, currency, attempt, plate, transients, day},
     * or {'query', ..., queries, day} for an accepted deduction */
    char provider[65], attempt[16], transients[16];
    copy_reply(cc->c.bill, sizeof cc->c.bill, r, 1);
    copy_reply(cc->c.driver, sizeof cc->c.driver, r, 2);
    copy_reply(provider, sizeof provider, r, 3);
    copy_reply(amount, sizeof amount, r, 4);
    copy_reply(cc->c.currency, sizeof cc->c.currency, r, 5);
    copy_reply(attempt, sizeof attempt, r, 6);
    copy_reply(cc->c.plate, sizeof cc->c.plate, r, 7);
    copy_reply(transients, sizeof transients, r, 8);
    copy_reply(cc->day, sizeof cc->day, r, 9);
    snprintf(cc->c.lot, sizeof cc->c.lot, "%s", cc->lot);
    snprintf(cc->c.seq, sizeof cc->c.seq, "%s", cc->seq);
    cc->c.amount = strtoll(amount, NULL, 10);
    cc->c.attempt = (int)strtol(attempt, NULL, 10);
    cc->transients = strtoll(transients, NULL, 10);
    cc->c.queries = cc->query ? cc->transients : 0;
    cc->c.provider = cmn_config_provider(b->cfg, provider);
    if (cc->c.provider == NULL) {
        bill_outcome_t o;
        memset(&o, 0, sizeof o);
        o.kind = BILL_OUT_ALERT;
        snprintf(o.code, sizeof o.code, "unknown_provider");
        return record(cc, &o);
    }
    if (cc->query)
        return provider_call(cc, CALL_QUERY);
    cmn_rargs_t a;
    cmn_rargs_init(&a);
    cmn_rargs_str(&a, "HGET");
    cmn_rargs_fmt(&a, "pk:drv:{%s}", cc->c.driver);
    cmn_rargs_str(&a, "payment_ref");
    if (rsend(b, &a, on_payment_ref, cc) != 0) {
        charge_done(cc);
        cmn_free(cc);
    }
}

static void send_step(struct charge_ctx *cc)
{
    bill_t *b = cc->b;
    cmn_rargs_t *a = cmn_xalloc(sizeof *a);
    start_script(b, a, BILL_LUA_STEP, 5 + ARREARS_KEYS);
    bill_keys(a, cc->lot, cc->seq);
    day_key(a, cc);
    arrears_keys(a, cc->lot);
    cmn_rargs_str(a, cc->seq);
    cmn_rargs_int(a, bill_now(b));
    cmn_rargs_int(a, lease_s(b));
    cmn_rargs_str(a, b->consumer);
    if (rsend(b, a, on_step, cc) != 0) {
        charge_done(cc);
        cmn_free(cc);
    }
    cmn_free(a);
}

static void step(bill_t *b, const char *lot, const char *seq)
{
    struct charge_ctx *cc = cmn_xcalloc(1, sizeof *cc);
    cc->b = b;
    snprintf(cc->lot, sizeof cc->lot, "%s", lot);
    snprintf(cc->seq, sizeof cc->seq, "%s", seq);
    cc->prep = 1;
    b->preparing++;
    b->charges_in_flight++;
    send_step(cc);
}

/* ---- intake ------------------------------------------------------------------------------- */

struct intake_ctx {
    bill_t *b;
    size_t li; /* the lot's index in cfg->lots and b->lots */
    char lot[65];
    char id[64]; /* stream entry */
    char seq[24];
    long long amount;
};

static void on_acked(void *data, int status, redisReply *r)
{
    (void)data;
    reply_ok(status, r, "XACK");
}

static void on_entry_done(void *data, int status, redisReply *r)
{
    (void)data;
    reply_ok(status, r, "bill_ack");
}

static void on_intake(void *data, int status, redisReply *r)
{
    struct intake_ctx *in = data;
    bill_t *b = in->b;
    bill_lot_t *l = &b->lots[in->li];
    if (reply_ok(status, r, "bill_intake") && r->type == REDIS_REPLY_ARRAY) {
        if (cmn_reply_is(r, "ok")) {
            char driver[65], bill[100];
            copy_reply(driver, sizeof driver, r, 1);
            copy_reply(bill, sizeof bill, r, 2);
            if (r->elements > 4 && r->element[4]->type == REDIS_REPLY_INTEGER &&
                r->element[4]->integer == 1) {
                b->stats.taken++;
                l->backlog++;
                l->dry = 0; /* a bill due now: worth a claim */
            }
            /* Idempotent: the gateway already applied it in the common case. */
            driver_event(b, in->lot, bill, driver, "bill", in->amount);
        }
        /* Acknowledged and deleted only once the bill is scheduled, and after driver_bill: the
         * one connection runs commands in the order sent, so the entry goes after the driver's
         * update has run.  A crash before this leaves the entry pending, and XAUTOCLAIM gives it
         * to a process that finishes the job (both steps are idempotent). */
        cmn_rargs_t a;
        start_script(b, &a, BILL_LUA_ACK, 1);
        cmn_rargs_fmt(&a, "pk:{%s}:bills", in->lot);
        cmn_rargs_str(&a, "billing");
        cmn_rargs_str(&a, in->id);
        rsend(b, &a, on_entry_done, NULL);
    }
    l->intakes--;
    b->settle_io--;
    refill_soon(b);
    cmn_free(in);
}

static void intake_entry(bill_t *b, size_t li, const redisReply *entry)
{
    const char *lot = b->cfg->lots[li].id;
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 2 ||
        entry->element[0]->type != REDIS_REPLY_STRING)
        return;
    const redisReply *fields = entry->element[1];
    struct intake_ctx *in = cmn_xcalloc(1, sizeof *in);
    char bill[100] = "", lot2[65];
    in->b = b;
    in->li = li;
    snprintf(in->lot, sizeof in->lot, "%s", lot);
    snprintf(in->id, sizeof in->id, "%s", entry->element[0]->str);
    for (size_t i = 0; fields->type == REDIS_REPLY_ARRAY && i + 1 < fields->elements; i += 2) {
        const char *k = fields->element[i]->str, *v = fields->element[i + 1]->str;
        if (k == NULL || v == NULL)
            continue;
        if (strcmp(k, "bill") == 0)
            snprintf(bill, sizeof bill, "%s", v);
        else if (strcmp(k, "amount") == 0)
            in->amount = strtoll(v, NULL, 10);
    }
    if (parse_bill_id(bill, lot2, sizeof lot2, in->seq, sizeof in->seq) != 0 ||
        strcmp(lot2, lot) != 0) {
        cmn_log(CMN_LOG_ERROR, "intake", "lot %s: stream entry %s names no bill of it", lot,
                in->id);
        cmn_free(in);
        return;
    }
    const cmn_cfg_credit_t *p = &b->cfg->credit;
    cmn_rargs_t *a = cmn_xalloc(sizeof *a);
    start_script(b, a, BILL_LUA_INTAKE, 4 + ARREARS_KEYS);
    bill_keys(a, lot, in->seq);
    arrears_keys(a, lot);
    cmn_rargs_str(a, in->seq);
    cmn_rargs_int(a, bill_now(b));
    cmn_rargs_int(a, p->grace_hours * 3600);
    cmn_rargs_int(a, p->default_after_days * 86400);
    if (rsend(b, a, on_intake, in) != 0) {
        cmn_free(in);
    } else {
        b->lots[li].intakes++;
        b->settle_io++;
    }
    cmn_free(a);
}

/* ---- provider notifications ---------------------------------------------------------------- */

/* A failure notified for out_trade_no cc->otn: a decline of the bill's current attempt only (an
 * older attempt's number is stale), recorded as that attempt's outcome so that the policy's retries
 * apply and bill_result's own check (status and attempt) settles any race with a query. */
static void on_failed_bill(void *data, int status, redisReply *r)
{
    struct charge_ctx *cc = data;
    char attempts[16], otn[40], st[24];
    if (!reply_ok(status, r, "notified failure") || r->type != REDIS_REPLY_ARRAY) {
        charge_done(cc);
        cmn_free(cc);
        return;
    }
    copy_reply(attempts, sizeof attempts, r, 0);
    copy_reply(otn, sizeof otn, r, 1);
    copy_reply(st, sizeof st, r, 2);
    if (strcmp(otn, cc->otn) != 0 || (strcmp(st, "charging") != 0 && strcmp(st, "accepted") != 0)) {
        cmn_log(CMN_LOG_INFO, "notification", "bill %s: failure of %s is stale (%s)", cc->c.bill,
                cc->otn, st);
        charge_done(cc);
        cmn_free(cc);
        return;
    }
    bill_outcome_t o;
    memset(&o, 0, sizeof o);
    o.kind = BILL_OUT_DECLINED;
    snprintf(o.code, sizeof o.code, "PAY_FAIL");
    cc->c.attempt = (int)strtol(attempts, NULL, 10);
    record(cc, &o);
}

/* A verified notification queued by the gateway, in a shape common to the providers:
 *   charge.succeeded  bill, ref: money moved.  For Stripe the charge's own answer settled the bill
 *                     in the common case; the notification matters when that answer was lost.
 *                     For WeChat Pay it is the normal end of an accepted deduction.
 *   charge.failed     bill, ref, otn (WeChat Pay's out_trade_no): the deduction failed (PAY_FAIL).
 *   parking.state     session, out_parking_no, state (NORMAL or BLOCKED), reason, at: WeChat
 *                     Pay's verdict on a parking changed; the driver's eligibility follows.
 * Other types are acknowledged and dropped. */
static void provider_event(bill_t *b, const char *lot, const redisReply *entry)
{
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 2 ||
        entry->element[1]->type != REDIS_REPLY_ARRAY)
        return;
    const redisReply *f = entry->element[1];
    const char *type = "", *bill = "", *ref = "", *id = "", *otn = "", *session = "",
               *parking = "", *state = "", *reason = "", *at = "0";
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const char *k = f->element[i]->str, *v = f->element[i + 1]->str;
        if (k == NULL || v == NULL)
            continue;
        if (strcmp(k, "type") == 0)
            type = v;
        else if (strcmp(k, "bill") == 0)
            bill = v;
        else if (strcmp(k, "ref") == 0)
            ref = v;
        else if (strcmp(k, "id") == 0)
            id = v;
        else if (strcmp(k, "otn") == 0)
            otn = v;
        else if (strcmp(k, "session") == 0)
            session = v;
        else if (strcmp(k, "out_parking_no") == 0)
            parking = v;
        else if (strcmp(k, "state") == 0)
            state = v;
        else if (strcmp(k, "reason") == 0)
            reason = v;
        else if (strcmp(k, "at") == 0)
            at = v;
    }
    cmn_log(CMN_LOG_INFO, "notification", "%s %s for %s", type, id,
            bill[0] ? bill : session);
    char lot2[65], seq[24];
    if (strcmp(type, "parking.state") == 0) {
        const char *tilde = strrchr(session, '~');
        if (tilde != NULL && (size_t)(tilde - session) == strlen(lot) &&
            strncmp(session, lot, strlen(lot)) == 0 && b->wx != NULL) {
            /* Acknowledged once the driver is updated. */
            return bill_wx_parking_event(b, lot, entry->element[0]->str, tilde + 1, parking, state,
                                         reason, strtoll(at, NULL, 10));
        }
    } else if ((strcmp(type, "charge.succeeded") == 0 ||
                (strcmp(type, "charge.failed") == 0 && otn[0] != '\0')) &&
               parse_bill_id(bill, lot2, sizeof lot2, seq, sizeof seq) == 0 &&
               strcmp(lot2, lot) == 0) {
        struct charge_ctx *cc = cmn_xcalloc(1, sizeof *cc);
        cc->b = b;
        snprintf(cc->lot, sizeof cc->lot, "%s", lot);
        snprintf(cc->seq, sizeof cc->seq, "%s", seq);
        snprintf(cc->c.bill, sizeof cc->c.bill, "%s", bill);
        b->charges_in_flight++;
        if (strcmp(type, "charge.failed") == 0) {
            snprintf(cc->otn, sizeof cc->otn, "%s", otn);
            cmn_rargs_t a;
            cmn_rargs_init(&a);
            cmn_rargs_str(&a, "HMGET");
            cmn_rargs_fmt(&a, "pk:{%s}:s:%s", lot, seq);
            cmn_rargs_str(&a, "attempts");
            cmn_rargs_str(&a, "wx_otn");
            cmn_rargs_str(&a, "status");
            if (rsend(b, &a, on_failed_bill, cc) != 0) {
                charge_done(cc);
                cmn_free(cc);
            }
        } else {
            bill_outcome_t o;
            memset(&o, 0, sizeof o);
            o.kind = BILL_OUT_PAID;
            snprintf(o.ref, sizeof o.ref, "%s", ref);
            snprintf(o.code, sizeof o.code, "notification");
            cc->c.attempt = 0;
            record(cc, &o);
        }
    }
    cmn_rargs_t a;
    cmn_rargs_init(&a);
    cmn_rargs_str(&a, "XACK");
    cmn_rargs_fmt(&a, "pk:{%s}:provider", lot);
    cmn_rargs_str(&a, "billing");
    cmn_rargs_str(&a, entry->element[0]->str);
    rsend(b, &a, on_acked, NULL);
}

/* ---- refill: keeping the slots full ------------------------------------------------------- */

struct lot_ctx {
    bill_t *b;
    const cmn_cfg_lot_t *lot;
    size_t li;
    unsigned asked; /* due_claim: the bills asked for */
};

static size_t lot_index(const bill_t *b, const cmn_cfg_lot_t *lot)
{
    return (size_t)(lot - b->cfg->lots);
}

/* New entries of the settlement stream, read on the refill's behalf. */
static void on_read(void *data, int status, redisReply *r)
{
    struct lot_ctx *lc = data;
    bill_t *b = lc->b;
    bill_lot_t *l = &b->lots[lc->li];
    size_t n = 0;
    if (reply_ok(status, r, "settlement stream") && r->type == REDIS_REPLY_ARRAY) {
        const redisReply *entries = cmn_stream_entries(r);
        for (size_t i = 0; entries != NULL && i < entries->elements; i++, n++)
            intake_entry(b, lc->li, entries->element[i]);
    }
    /* A full batch says the stream may hold more; anything less (or a failure) waits for the
     * tick's next read. */
    l->more = n >= BATCH;
    l->reading = 0;
    b->settle_io--;
    refill_soon(b);
    cmn_free(lc);
}

static void read_stream(bill_t *b, size_t li)
{
    const cmn_cfg_lot_t *lot = &b->cfg->lots[li];
    bill_lot_t *l = &b->lots[li];
    struct lot_ctx *lc = cmn_xcalloc(1, sizeof *lc);
    cmn_rargs_t a;
    char key[96];
    lc->b = b;
    lc->lot = lot;
    lc->li = li;
    snprintf(key, sizeof key, "pk:{%s}:bills", lot->id);
    cmn_rargs_stream_read(&a, key, "billing", b->consumer, 0, CLAIM_IDLE_MS, BATCH);
    l->poll = 0;
    if (rsend(b, &a, on_read, lc) != 0) {
        cmn_free(lc);
        return;
    }
    l->reading = 1;
    b->settle_io++;
}

static void on_claimed(void *data, int status, redisReply *r)
{
    struct lot_ctx *lc = data;
    bill_t *b = lc->b;
    bill_lot_t *l = &b->lots[lc->li];
    unsigned got = 0;
    /* The reserved slots pass to the claimed bills in the same turn: never more than the max. */
    b->claims_reserved -= lc->asked;
    l->claiming = 0;
    b->settle_io--;
    if (reply_ok(status, r, "due_claim") && r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++) {
            if (r->element[i]->type == REDIS_REPLY_STRING) {
                step(b, lc->lot->id, r->element[i]->str);
                got++;
            }
        }
    }
    /* Fewer than asked: nothing else is due now.  The lot waits for a fresh bill (intake) or
     * the tick (retries, leases and lifecycle times come due with the clock) instead of asking
     * Redis again at every freed slot. */
    if (got < lc->asked)
        l->dry = 1;
    l->backlog = got < l->backlog && !l->dry ? l->backlog - got : 0;
    refill_soon(b);
    cmn_free(lc);
}

static void claim(bill_t *b, size_t li, unsigned count)
{
    const cmn_cfg_lot_t *lot = &b->cfg->lots[li];
    struct lot_ctx *lc = cmn_xcalloc(1, sizeof *lc);
    cmn_rargs_t *a = cmn_xalloc(sizeof *a);
    lc->b = b;
    lc->lot = lot;
    lc->li = li;
    lc->asked = count;
    start_script(b, a, BILL_LUA_DUE_CLAIM, 1);
    cmn_rargs_fmt(a, "pk:{%s}:due", lot->id);
    cmn_rargs_int(a, bill_now(b));
    cmn_rargs_int(a, lease_s(b));
    cmn_rargs_int(a, count);
    if (rsend(b, a, on_claimed, lc) != 0) {
        cmn_free(lc);
    } else {
        b->lots[li].claiming = count;
        b->claims_reserved += count;
        b->settle_io++;
    }
    cmn_free(a);
}

/* Fills the free slots: the room left by the bills holding one and the claims asked for is shared
 * evenly between the lots that may have due bills, the first lot served turning at each refill so
 * that no lot is always the one left out when the room is smaller than the lots.  One due_claim
 * per lot at most is in flight: completions arriving meanwhile add up to the next one.
 * The settlement stream is read ahead: again as soon as the last read was full and the bills
 * taken in but not claimed yet (with those being taken in) no longer fill every slot, so that the
 * due set does not run dry while a backlog waits in the stream. */
static void refill(bill_t *b)
{
    size_t n = b->cfg->nlots, wanting = 0;
    unsigned max = (unsigned)b->cfg->billing.max_in_flight;

    ready_run(b);
    /* Bills with a slot, bills prepared or ready for one, and claims asked for: at most the
     * slots and the bills ahead. */
    unsigned budget = max + ahead_of(b);
    unsigned used = b->slots_used + b->preparing + ready_n + b->claims_reserved;
    unsigned room = used < budget ? budget - used : 0;

    if (b->stopping || !b->groups_ready || n == 0 || !cmn_redis_ready(b->redis))
        return;
    for (size_t i = 0; i < n; i++) {
        bill_lot_t *l = &b->lots[i];
        if (!l->reading && (l->poll || (l->more && l->backlog + l->intakes < max)))
            read_stream(b, i);
        if (!l->dry && !l->claiming)
            wanting++;
    }
    if (room == 0 || wanting == 0)
        return;
    unsigned share = room / (unsigned)wanting, extra = room % (unsigned)wanting;
    size_t first = b->next_lot % n;
    b->next_lot = first + 1;
    for (size_t k = 0; k < n; k++) {
        size_t i = (first + k) % n;
        bill_lot_t *l = &b->lots[i];
        if (l->dry || l->claiming)
            continue;
        unsigned count = share;
        if (extra > 0) {
            count++;
            extra--;
        }
        if (count > 0)
            claim(b, i, count);
    }
}

static void on_refill(uv_timer_t *t)
{
    bill_t *b = t->data;
    b->refill_pending = 0;
    refill(b);
}

/* A refill on the next loop turn: everything that frees a slot or brings a bill calls this, and
 * all the calls of one turn (a burst of answers read together) make one refill. */
static void refill_soon(bill_t *b)
{
    if (b->refill_pending || b->stopping || b->lots == NULL)
        return;
    b->refill_pending = 1;
    uv_timer_start(&b->refill, on_refill, 0, 0);
}

/* ---- the tick ------------------------------------------------------------------------------ */

static int pending_replies;

static void reply_done(bill_t *b)
{
    if (--pending_replies == 0)
        tick_done(b);
}

/* XAUTOCLAIM answers [next id, [entries], [deleted]]: entries another process read and left. */
static void on_reclaimed(void *data, int status, redisReply *r)
{
    struct lot_ctx *lc = data;
    if (reply_ok(status, r, "settlement stream") && r->type == REDIS_REPLY_ARRAY) {
        const redisReply *entries = cmn_stream_entries(r);
        for (size_t i = 0; entries != NULL && i < entries->elements; i++)
            intake_entry(lc->b, lc->li, entries->element[i]);
    }
    bill_t *b = lc->b;
    cmn_free(lc);
    reply_done(b);
}

static void on_provider(void *data, int status, redisReply *r)
{
    struct lot_ctx *lc = data;
    if (reply_ok(status, r, "provider stream") && r->type == REDIS_REPLY_ARRAY) {
        const redisReply *entries = cmn_stream_entries(r);
        for (size_t i = 0; entries != NULL && i < entries->elements; i++)
            provider_event(lc->b, lc->lot->id, entries->element[i]);
    }
    bill_t *b = lc->b;
    cmn_free(lc);
    reply_done(b);
}

static void lot_command(bill_t *b, const cmn_cfg_lot_t *lot, cmn_rargs_t *a, cmn_redis_cb cb)
{
    struct lot_ctx *lc = cmn_xcalloc(1, sizeof *lc);
    lc->b = b;
    lc->lot = lot;
    lc->li = lot_index(b, lot);
    pending_replies++;
    if (rsend(b, a, cb, lc) != 0) {
        cmn_free(lc);
        pending_replies--;
    }
}

static void on_group(void *data, int status, redisReply *r)
{
    bill_t *b = data;
    /* BUSYGROUP: it exists already, which is what we want. */
    if (status == 0 && r != NULL && r->type == REDIS_REPLY_ERROR &&
        strncmp(r->str, "BUSYGROUP", 9) != 0)
        cmn_log(CMN_LOG_ERROR, "redis", "XGROUP CREATE: %.200s", r->str);
    reply_done(b);
}

static void create_groups(bill_t *b)
{
    cmn_rargs_t a;
    for (size_t i = 0; i < b->cfg->nlots; i++) {
        const char *lot = b->cfg->lots[i].id;
        static const char *const streams[][2] = {{"bills", "billing"},
                                                 {"outbox", "reminders"},
                                                 {"provider", "billing"},
                                                 {"entries", "wechatpay"}};
        /* The entries stream only matters to WeChat Pay's entry registration. */
        int nstreams = b->wx != NULL ? 4 : 3;
        for (int k = 0; k < nstreams; k++) {
            cmn_rargs_init(&a);
            cmn_rargs_str(&a, "XGROUP");
            cmn_rargs_str(&a, "CREATE");
            cmn_rargs_fmt(&a, "pk:{%s}:%s", lot, streams[k][0]);
            cmn_rargs_str(&a, streams[k][1]);
            cmn_rargs_str(&a, "0");
            cmn_rargs_str(&a, "MKSTREAM");
            pending_replies++;
            if (rsend(b, &a, on_group, b) != 0)
                pending_replies--;
        }
    }
    b->groups_ready = 1;
}

static void tick_done(bill_t *b)
{
    b->ticking = 0;
}

static void on_tick(uv_timer_t *t)
{
    bill_t *b = t->data;
    cmn_rargs_t *a;

    if (b->stopping || !cmn_redis_ready(b->redis))
        return;
    /* Time moved on: retries, leases and lifecycle times may have come due in any lot, and new
     * bills may wait in the streams.  Every lot gets a claim and a read again. */
    for (size_t i = 0; i < b->cfg->nlots; i++) {
        b->lots[i].dry = 0;
        b->lots[i].poll = 1;
    }
    if (!b->ticking) {
        b->ticking = 1;
        pending_replies = 1; /* this function's own share, released at its end */
        b->ticks++;
        if (!b->groups_ready)
            create_groups(b);
        a = cmn_xalloc(sizeof *a);
        int reclaim = b->ticks % 25 == 0; /* every 5 s at the default tick */
        for (size_t i = 0; i < b->cfg->nlots; i++) {
            const cmn_cfg_lot_t *lot = &b->cfg->lots[i];
            char key[96];
            if (reclaim) {
                snprintf(key, sizeof key, "pk:{%s}:bills", lot->id);
                cmn_rargs_stream_read(a, key, "billing", b->consumer, 1, CLAIM_IDLE_MS, BATCH);
                lot_command(b, lot, a, on_reclaimed);
            }
            snprintf(key, sizeof key, "pk:{%s}:provider", lot->id);
            cmn_rargs_stream_read(a, key, "billing", b->consumer, reclaim, CLAIM_IDLE_MS, BATCH);
            lot_command(b, lot, a, on_provider);
            bill_wx_tick(b, lot, reclaim);
        }
        cmn_free(a);
        bill_reminders_tick(b, reclaim);
        reply_done(b);
    }
    refill(b);
}

void bill_worker_start(bill_t *b)
{
    b->lots = cmn_xcalloc(b->cfg->nlots > 0 ? b->cfg->nlots : 1, sizeof *b->lots);
    uv_timer_init(b->loop, &b->tick);
    b->tick.data = b;
    uv_timer_init(b->loop, &b->refill);
    b->refill.data = b;
    uv_timer_start(&b->tick, on_tick, 0, b->tick_ms);
}

static void on_tick_closed(uv_handle_t *h)
{
    (void)h;
}

void bill_worker_stop(bill_t *b)
{
    b->stopping = 1;
    ready_run(b); /* drops the bills waiting for a slot: the drain waits for them otherwise */
    uv_timer_stop(&b->tick);
    uv_timer_stop(&b->refill);
    uv_close((uv_handle_t *)&b->tick, on_tick_closed);
    uv_close((uv_handle_t *)&b->refill, on_tick_closed);
}

void bill_worker_dispose(bill_t *b)
{
    cmn_free(b->lots);
    b->lots = NULL;
}
