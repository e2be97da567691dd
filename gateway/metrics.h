#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stdint.h>

#include "cmn/buf.h"

/*
 * The decision vocabulary shared with bills and review screens (lane API), and the counters that
 * /metrics exposes in Prometheus text format.
 */

#define GW_REASON_MAP(XX)                                                                          \
    XX(ENTRY, "entry")                                                                             \
    XX(PASS, "pass")                                                                               \
    XX(EXEMPT, "exempt")                                                                           \
    XX(FREE_PERIOD, "free_period")                                                                 \
    XX(CREDIT_OK, "credit_ok")                                                                     \
    XX(NOT_ENROLLED, "not_enrolled")                                                               \
    XX(PROVIDER_BLOCKED, "provider_blocked")                                                       \
    XX(LOW_CREDIT, "low_credit")                                                                   \
    XX(UNPAID_LIMIT, "unpaid_limit")                                                               \
    XX(SUSPENDED, "suspended")                                                                     \
    XX(BLACKLISTED, "blacklisted")                                                                 \
    XX(PAID_ON_SITE, "paid_on_site")                                                               \
    XX(NO_ENTRY_RECORD, "no_entry_record")                                                         \
    XX(LOT_FULL, "lot_full")                                                                       \
    XX(UNREADABLE, "unreadable")

typedef enum {
#define XX(name, _) GW_REASON_##name,
    GW_REASON_MAP(XX)
#undef XX
        GW_REASON_COUNT
} gw_reason_t;

/** The reason's word ("credit_ok"). */
const char *gw_reason_name(gw_reason_t r);
/** The reason of a word, or -1. */
int gw_reason_parse(const char *s);

enum { GW_DIR_ENTRY = 0, GW_DIR_EXIT, GW_DIR_SESSION, GW_DIR_COUNT };
enum { GW_DEC_OPEN = 0, GW_DEC_HOLD, GW_DEC_COUNT };

#define GW_LATENCY_BUCKETS 14

typedef struct gw_metrics {
    uint64_t decisions[GW_DIR_COUNT][GW_DEC_COUNT][GW_REASON_COUNT];
    uint64_t replays;                 /* answered from the idempotency record */
    uint64_t errors[8];               /* by gw_metrics_error code index */
    uint64_t latency_le[GW_LATENCY_BUCKETS]; /* cumulative at render time */
    uint64_t latency_count;
    uint64_t latency_sum_ns;
    uint64_t retries;                 /* commits that found the session changed */
} gw_metrics_t;

/** Counts a decision and its latency (from the request's arrival to its answer). */
void gw_metrics_decision(gw_metrics_t *m, int dir, int decision, gw_reason_t reason,
                         uint64_t latency_ns);
/** Counts an error answer by its code ("bad_request", "unauthorized", ...). */
void gw_metrics_error(gw_metrics_t *m, const char *code);

struct gw;
/** Writes every metric (decisions, latency histogram, errors, HTTP, Redis). */
int gw_metrics_render(const struct gw *gw, cmn_buf_t *out);

#endif
