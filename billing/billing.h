#ifndef BILL_BILLING_H
#define BILL_BILLING_H

#include <stdint.h>
#include <uv.h>

#include "cmn/config.h"
#include "cmn/http_client.h"
#include "cmn/redis.h"

/*
 * The billing service's state: one libuv loop, one Redis client, one HTTP client for the payment
 * providers.  See worker.c for how bills move.
 */

/** Handles of the Redis scripts billing calls (common/lua), in the order of bill_script_names. */
enum {
    BILL_LUA_INTAKE = 0,
    BILL_LUA_STEP,
    BILL_LUA_RESULT,
    BILL_LUA_DUE_CLAIM,
    BILL_LUA_DRIVER_BILL,
    BILL_LUA_DRIVER_SETTLE,
    BILL_LUA_DRIVER_OVERDUE,
    BILL_LUA_DRIVER_DEFAULT,
    BILL_LUA_PLATE_MIRROR,
    BILL_LUA_REFUND_RESULT,
    BILL_LUA_DRIVER_ELIGIBILITY,
    BILL_LUA_WX_DEDUCTION,
    BILL_LUA_ACK,
    BILL_LUA_COUNT
};

extern const char *const bill_script_names[BILL_LUA_COUNT];

typedef struct bill_stats {
    unsigned long long taken;      /* bills read from the settlement streams */
    unsigned long long attempts;   /* charge requests sent */
    unsigned long long paid;
    unsigned long long declined;
    unsigned long long transient;  /* 429, 5xx, timeouts: retried with the same key */
    unsigned long long alerts;
    unsigned long long overdue;
    unsigned long long defaulted;
    unsigned long long reminders_sent;
    unsigned long long reminders_failed;
    unsigned long long accepted;   /* deductions accepted (WeChat Pay), their end still to come */
    unsigned long long parkings;   /* parkings registered with WeChat Pay at entry */
} bill_stats_t;

struct bill_wx; /* WeChat Pay's keys and entries in progress (wechatpay.c) */

/* What billing is doing with one lot's settlement stream and due set (worker.c, "Refill"). */
typedef struct bill_lot {
    unsigned claiming; /* bills asked for by the due_claim in flight (0: none in flight) */
    unsigned intakes;  /* bill_intake calls in flight */
    unsigned backlog;  /* bills taken in and not yet claimed, as far as this process knows */
    int reading;       /* an XREADGROUP of the settlement stream is in flight */
    int more;          /* the last read was full: the stream may hold more new entries */
    int dry;           /* the last due_claim found fewer due bills than it asked for */
    int poll;          /* the tick asks for one read of the stream, full or not */
} bill_lot_t;

typedef struct bill {
    uv_loop_t *loop;
    cmn_config_t *cfg;
    cmn_redis_t *redis;
    cmn_http_client_t *http;
    int scripts[BILL_LUA_COUNT];
    char consumer[96];        /* this process's name in the consumer groups */
    const char *clock_file;   /* tests: a file holding seconds to add to the wall clock */
    uint64_t tick_ms;
    uv_timer_t tick;
    int ticking;              /* a tick's Redis work is still in flight */
    int groups_ready;
    unsigned charges_in_flight; /* bills being stepped, charged or recorded */
    unsigned slots_used;      /* of max_in_flight: provider requests in flight */
    unsigned preparing;       /* bills claimed, on their way to a provider request */
    unsigned claims_reserved; /* slots promised to due_claim calls in flight */
    uint64_t provider_ns;     /* providers' latency, a moving average (0: none answered yet) */
    unsigned settle_io;       /* settlement stream reads, intakes and due claims in flight */
    bill_lot_t *lots;         /* cfg->nlots */
    size_t next_lot;          /* the lot served first by the next refill (fairness) */
    uv_timer_t refill;        /* a refill on the next loop turn (0 ms), coalescing its causes */
    int refill_pending;
    unsigned reminders_in_flight;
    unsigned wx_in_flight;    /* entry registrations and their stream reads */
    struct bill_wx *wx;       /* NULL when no provider is of kind wechatpay */
    uint64_t ticks;
    int stopping;
    bill_stats_t stats;
} bill_t;

/** The clock billing lives by: the wall clock, shifted by the clock file's offset in tests. */
int64_t bill_now(const bill_t *b);

/** Starts the periodic work (intake, due steps, reclaiming, reminders). */
void bill_worker_start(bill_t *b);
/** Stops the ticker; work in flight completes. */
void bill_worker_stop(bill_t *b);
/** Frees what bill_worker_start allocated, once the loop is over. */
void bill_worker_dispose(bill_t *b);

/* ---- providers ----------------------------------------------------------------------------- */

typedef enum {
    BILL_OUT_PAID = 0, /* money moved */
    BILL_OUT_DECLINED, /* the driver's payment method refused (counts as an attempt) */
    BILL_OUT_TRANSIENT, /* the provider could not answer (429, 5xx, timeout): same key, soon */
    BILL_OUT_ALERT,     /* needs a person (idempotency conflict, bad key, unknown customer) */
    BILL_OUT_ACCEPTED   /* taken by the provider, its end reported later (WeChat Pay ACCEPTED) */
} bill_outcome_kind_t;

typedef struct bill_outcome {
    bill_outcome_kind_t kind;
    char ref[128];  /* the provider's charge or transaction id */
    char code[96];  /* decline_code, error code or HTTP status */
} bill_outcome_t;

typedef struct bill_charge {
    char bill[100];
    char lot[65];
    char seq[24]; /* the session's number in its lot */
    char driver[65];
    char payment_ref[129];
    char plate[64];
    long long amount;
    char currency[8];
    int attempt;
    long long queries; /* how often an accepted deduction was asked about already */
    const cmn_cfg_provider_t *provider;
} bill_charge_t;

typedef void (*bill_outcome_cb)(void *data, const bill_outcome_t *o);

/** A charge through Stripe (POST /v1/charges with Idempotency-Key = the bill id). */
int bill_stripe_charge(bill_t *b, const bill_charge_t *c, bill_outcome_cb cb, void *data);

/** A refund of `ch->amount` of charge `charge_id`; ch->attempt numbers the bill's refunds. */
int bill_stripe_refund(bill_t *b, const bill_charge_t *ch, const char *charge_id, bill_outcome_cb cb,
                       void *data);

/** Maps a Stripe answer to an outcome (pure; unit-tested).  A refund that succeeded (or is
 * pending at the bank) maps to BILL_OUT_PAID: money moved as asked. */
void bill_stripe_outcome(long status, int error, const char *body, size_t body_len,
                         const char *should_retry, bill_outcome_t *o);

/* ---- WeChat Pay's vehicle parking service (wechatpay.c, docs/providers.md) ------------------ */

/** Seconds from a deduction's acceptance to the first query of its result, and the longest wait
 * between two queries (the wait doubles from the first to this). */
#define BILL_WX_QUERY_AFTER_S 60
#define BILL_WX_QUERY_MAX_S 3600

/**
 * Loads the keys of every provider of kind wechatpay (merchant private key, platform public key)
 * into b->wx.  Returns 0 (b->wx stays NULL without such a provider) or CMN_ECRYPTO with the
 * provider named in the log: billing then refuses to start.
 */
int bill_wx_init(bill_t *b);
/** Frees b->wx; work in flight must be over. */
void bill_wx_dispose(bill_t *b);

/**
 * Entry registration, once per tick and lot: reads the lot's entries stream with the consumer group
 * "wechatpay" (reclaim: also takes over entries left pending by a crashed or failed try) and, for
 * each plate whose driver pays with WeChat Pay, creates the parking (POST
 * /v3/vehicle/parking/parkings), records it in pk:{L}:wx and sets the driver's eligibility to the
 * parking's state.  An entry is acknowledged once done or refused for good; after a fault it stays
 * pending and is taken again.
 */
void bill_wx_tick(bill_t *b, const cmn_cfg_lot_t *lot, int reclaim);

/**
 * A deduction (query 0: POST /v3/vehicle/transactions/parking) or the query of an accepted one
 * (query 1: GET /v3/vehicle/transactions/out-trade-no/{n}) of bill c.  The body of an attempt is
 * recorded with the bill before its first try and re-sent byte for byte; the parking is created
 * first when the entry did not register it.  Returns 0 (cb runs exactly once, later) or a negative
 * error (cb will not run).
 */
int bill_wx_charge(bill_t *b, const bill_charge_t *c, int query, bill_outcome_cb cb, void *data);

/**
 * A parking's state changed (a verified VEHICLE.ENTRANCE_STATE_CHANGE queued by the gateway on
 * pk:{L}:provider as stream entry `entry_id`): the driver of session `seq` (whose parking must be
 * `out_parking_no`) gets the eligibility NORMAL or BLOCKED:<reason> as of `at` (unix s); the stream
 * entry is acknowledged when done.
 */
void bill_wx_parking_event(bill_t *b, const char *lot, const char *entry_id, const char *seq,
                           const char *out_parking_no, const char *state, const char *reason,
                           long long at);

/**
 * Maps a WeChat Pay answer to a deduction or a query (pure; unit-testable).  `verified`: the
 * answer's signature, serial and timestamp were checked; an unverified answer is never believed
 * and counts as transient.  `out_trade_no` is the number asked about: an answer about another one
 * is an alert.
 */
void bill_wx_outcome(long status, int error, int verified, const char *body, size_t body_len,
                     const char *out_trade_no, bill_outcome_t *o);

/**
 * A refund of `c->amount` (refund number `c->attempt`) of the WeChat Pay transaction
 * `transaction_id` whose total was `total` (POST /v3/refund/domestic/refunds, out_refund_no from
 * cmn_wxpay_refund_no).  Returns 0 (cb runs later, once) or an error (it will not).
 */
int bill_wx_refund(bill_t *b, const bill_charge_t *c, const char *transaction_id, long long total,
                   bill_outcome_cb cb, void *data);

/** Maps a refund answer to an outcome (pure): SUCCESS is BILL_OUT_PAID (money went back),
 * PROCESSING transient (asked again with the same number), CLOSED or ABNORMAL an alert. */
void bill_wx_refund_outcome(long status, int error, int verified, const char *body,
                            size_t body_len, const char *out_refund_no, bill_outcome_t *o);

#endif
