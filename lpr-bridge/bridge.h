#ifndef LPR_BRIDGE_H
#define LPR_BRIDGE_H

#include <stdint.h>
#include <uv.h>

#include "cmn/config.h"
#include "cmn/http_client.h"
#include "cmn/httpd.h"
#include "spool.h"

/*
 * The lpr-bridge's runtime (bridge.c): cameras push to POST /v1/cameras/{id}; each read is parsed
 * (parse.h), de-duplicated per lane, written to the spool (spool.h) before the camera's 200, and
 * forwarded as a signed lane event to the gateway; the gateway's decision drives the lane's barrier.
 */

typedef struct lpr_bridge lpr_bridge_t;

/**
 * Starts the bridge on `loop` with `cfg` (borrowed for the bridge's life): opens the spool (its
 * unacknowledged reads are queued for delivery, in order), listens, and starts forwarding.
 * Returns 0 or a negative error.
 */
int lpr_bridge_start(uv_loop_t *loop, const cmn_config_t *cfg, lpr_bridge_t **out);

/** The port the bridge listens on (for listen ports of 0). */
int lpr_bridge_port(const lpr_bridge_t *b);

/**
 * Stops: no more camera requests; deliveries in flight finish or time out; the spool is flushed;
 * then done(data).  Reads not delivered stay in the spool for the next start.
 */
void lpr_bridge_stop(lpr_bridge_t *b, void (*done)(void *data), void *data);

#endif
