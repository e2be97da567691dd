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
} bill_stats_t;

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
    unsigned charges_in_flight;
    unsigned reminders_in_flight;
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

/* ---- providers ----------------------------------------------------------------------------- */

typedef enum {
    BILL_OUT_PAID = 0, /* money moved */
    BILL_OUT_DECLINED, /* the driver's payment method refused (counts as an attempt) */
    BILL_OUT_TRANSIENT, /* the provider could not answer (429, 5xx, timeout): same key, soon */
    BILL_OUT_ALERT      /* needs a person (idempotency conflict, bad key, unknown customer) */
} bill_outcome_kind_t;

typedef struct bill_outcome {
    bill_outcome_kind_t kind;
    char ref[128];  /* the provider's charge or transaction id */
    char code[96];  /* decline_code, error code or HTTP status */
} bill_outcome_t;

typedef struct bill_charge {
    char bill[100];
    char lot[65];
    char driver[65];
    char payment_ref[129];
    char plate[64];
    long long amount;
    char currency[8];
    int attempt;
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

#endif
