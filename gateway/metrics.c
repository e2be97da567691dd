#include "metrics.h"

#include <string.h>

#include "gw.h"

static const char *const reason_names[] = {
#define XX(_, text) text,
    GW_REASON_MAP(XX)
#undef XX
};

static const char *const dir_names[] = {"entry", "exit", "session"};
static const char *const dec_names[] = {"open", "hold"};
static const char *const error_codes[] = {"too_large", "unauthorized", "bad_request", "forbidden",
                                          "conflict",  "unavailable",  "not_found",   "other"};
/* Upper bounds of the latency buckets in nanoseconds, and as Prometheus writes them. */
static const uint64_t bucket_ns[GW_LATENCY_BUCKETS] = {
    50000,    100000,   250000,    500000,    1000000,   2500000,   5000000,
    10000000, 25000000, 50000000, 100000000, 250000000, 500000000, 1000000000};
static const char *const bucket_le[GW_LATENCY_BUCKETS] = {
    "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
    "0.01",  "0.025",  "0.05",    "0.1",    "0.25",  "0.5",    "1"};

const char *gw_reason_name(gw_reason_t r)
{
    if ((int)r < 0 || r >= GW_REASON_COUNT)
        return "unknown";
    return reason_names[r];
}

int gw_reason_parse(const char *s)
{
    for (int i = 0; i < GW_REASON_COUNT; i++) {
        if (strcmp(reason_names[i], s) == 0)
            return i;
    }
    return -1;
}

void gw_metrics_decision(gw_metrics_t *m, int dir, int decision, gw_reason_t reason,
                         uint64_t latency_ns)
{
    if (dir < 0 || dir >= GW_DIR_COUNT || decision < 0 || decision >= GW_DEC_COUNT ||
        (int)reason < 0 || reason >= GW_REASON_COUNT)
        return;
    m->decisions[dir][decision][reason]++;
    for (int i = 0; i < GW_LATENCY_BUCKETS; i++) {
        if (latency_ns <= bucket_ns[i]) {
            m->latency_le[i]++;
            break;
        }
    }
    m->latency_count++;
    m->latency_sum_ns += latency_ns;
}

void gw_metrics_error(gw_metrics_t *m, const char *code)
{
    size_t n = sizeof error_codes / sizeof *error_codes;
    for (size_t i = 0; i < n - 1; i++) {
        if (strcmp(error_codes[i], code) == 0) {
            m->errors[i]++;
            return;
        }
    }
    m->errors[n - 1]++;
}

int gw_metrics_render(const gw_t *gw, cmn_buf_t *out)
{
    const gw_metrics_t *m = &gw->metrics;
    int rc = 0;

    rc |= cmn_buf_puts(out, "# HELP park_gateway_decisions_total Lane decisions by direction, "
                            "decision and reason.\n"
                            "# TYPE park_gateway_decisions_total counter\n");
    for (int d = 0; d < GW_DIR_COUNT; d++) {
        for (int k = 0; k < GW_DEC_COUNT; k++) {
            for (int r = 0; r < GW_REASON_COUNT; r++) {
                if (m->decisions[d][k][r] == 0)
                    continue;
                rc |= cmn_buf_printf(out,
                                     "park_gateway_decisions_total{direction=\"%s\",decision=\"%s\","
                                     "reason=\"%s\"} %llu\n",
                                     dir_names[d], dec_names[k], reason_names[r],
                                     (unsigned long long)m->decisions[d][k][r]);
            }
        }
    }
    rc |= cmn_buf_printf(out,
                         "# HELP park_gateway_replays_total Events answered again from their "
                         "idempotency record.\n# TYPE park_gateway_replays_total counter\n"
                         "park_gateway_replays_total %llu\n",
                         (unsigned long long)m->replays);
    rc |= cmn_buf_printf(out,
                         "# HELP park_gateway_commit_retries_total Decisions made again because "
                         "the session changed meanwhile.\n"
                         "# TYPE park_gateway_commit_retries_total counter\n"
                         "park_gateway_commit_retries_total %llu\n",
                         (unsigned long long)m->retries);
    rc |= cmn_buf_puts(out, "# HELP park_gateway_decision_seconds Time from a request's arrival "
                            "to its decision.\n# TYPE park_gateway_decision_seconds histogram\n");
    uint64_t cum = 0;
    for (int i = 0; i < GW_LATENCY_BUCKETS; i++) {
        cum += m->latency_le[i];
        rc |= cmn_buf_printf(out, "park_gateway_decision_seconds_bucket{le=\"%s\"} %llu\n",
                             bucket_le[i], (unsigned long long)cum);
    }
    rc |= cmn_buf_printf(out,
                         "park_gateway_decision_seconds_bucket{le=\"+Inf\"} %llu\n"
                         "park_gateway_decision_seconds_sum %.9f\n"
                         "park_gateway_decision_seconds_count %llu\n",
                         (unsigned long long)m->latency_count, (double)m->latency_sum_ns / 1e9,
                         (unsigned long long)m->latency_count);
    rc |= cmn_buf_puts(out, "# HELP park_gateway_errors_total Error answers by code.\n"
                            "# TYPE park_gateway_errors_total counter\n");
    for (size_t i = 0; i < sizeof error_codes / sizeof *error_codes; i++)
        rc |= cmn_buf_printf(out, "park_gateway_errors_total{code=\"%s\"} %llu\n", error_codes[i],
                             (unsigned long long)m->errors[i]);

    if (gw->http != NULL) {
        const cmn_httpd_stats_t *h = cmn_httpd_stats(gw->http);
        rc |= cmn_buf_printf(
            out,
            "# HELP park_gateway_connections Open client connections.\n"
            "# TYPE park_gateway_connections gauge\npark_gateway_connections %llu\n"
            "# HELP park_gateway_connections_accepted_total Connections accepted.\n"
            "# TYPE park_gateway_connections_accepted_total counter\n"
            "park_gateway_connections_accepted_total %llu\n"
            "# HELP park_gateway_connections_rejected_total Connections refused over the cap.\n"
            "# TYPE park_gateway_connections_rejected_total counter\n"
            "park_gateway_connections_rejected_total %llu\n"
            "# HELP park_gateway_http_requests_total HTTP requests received.\n"
            "# TYPE park_gateway_http_requests_total counter\n"
            "park_gateway_http_requests_total %llu\n"
            "# HELP park_gateway_http_responses_total HTTP responses by status class.\n"
            "# TYPE park_gateway_http_responses_total counter\n",
            (unsigned long long)h->connections_open, (unsigned long long)h->connections_accepted,
            (unsigned long long)h->connections_rejected, (unsigned long long)h->requests);
        for (int c = 1; c <= 5; c++)
            rc |= cmn_buf_printf(out, "park_gateway_http_responses_total{class=\"%dxx\"} %llu\n", c,
                                 (unsigned long long)h->responses_by_class[c]);
    }
    if (gw->redis != NULL) {
        const cmn_redis_stats_t *r = cmn_redis_stats(gw->redis);
        rc |= cmn_buf_printf(
            out,
            "# HELP park_gateway_redis_up Whether Redis is connected with every script loaded.\n"
            "# TYPE park_gateway_redis_up gauge\npark_gateway_redis_up %d\n"
            "# HELP park_gateway_redis_commands_total Redis commands sent.\n"
            "# TYPE park_gateway_redis_commands_total counter\n"
            "park_gateway_redis_commands_total %llu\n"
            "# HELP park_gateway_redis_errors_total Redis commands that failed (lost connection, "
            "timeout, error reply).\n"
            "# TYPE park_gateway_redis_errors_total counter\n"
            "park_gateway_redis_errors_total %llu\n"
            "# HELP park_gateway_redis_timeouts_total Redis commands that timed out.\n"
            "# TYPE park_gateway_redis_timeouts_total counter\n"
            "park_gateway_redis_timeouts_total %llu\n"
            "# HELP park_gateway_redis_reconnects_total Reconnections to Redis.\n"
            "# TYPE park_gateway_redis_reconnects_total counter\n"
            "park_gateway_redis_reconnects_total %llu\n",
            cmn_redis_ready(gw->redis), r->commands, r->errors, r->timeouts, r->reconnects);
    }
    return rc != 0 ? -1 : 0;
}
