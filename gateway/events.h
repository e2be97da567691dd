#ifndef GW_EVENTS_H
#define GW_EVENTS_H

#include <jansson.h>
#include <stddef.h>

#include "cmn/config.h"
#include "cmn/plate.h"
#include "cmn/time.h"

struct gw;

/*
 * Records shared by the event and session handlers (docs/redis.md has the layout).
 */

/** An open session as kept in pk:{L}:open: plate US entry US lane US class US version US flags US
 * fold.  Flags: p entered with a pass, e exempt, n made from an exit without entry. */
typedef struct gw_session_rec {
    char plate[CMN_PLATE_MAX];
    cmn_instant_t entry;
    char lane[65];
    char vclass[33];
    char tver[17];
    char flags[8];
    char fold[CMN_PLATE_MAX];
} gw_session_rec_t;

/** The idempotency record of a lane event (docs/redis.md): its field, the first 12 bytes of the
 * SHA-256 of device \n event_id, and the body hash, the first 8 bytes of the body's SHA-256, both
 * binary (fixed sizes: short records, and no parsing in the scripts). */
#define GW_IDEM_FIELD_LEN 12
#define GW_IDEM_HASH_LEN 8
void gw_idem_digests(const char *device, const char *event_id, const void *body, size_t len,
                     unsigned char field[GW_IDEM_FIELD_LEN], unsigned char hash[GW_IDEM_HASH_LEN]);

/** Parses a session record.  Returns 0 or CMN_EPARSE. */
int gw_session_parse(const char *rec, size_t len, gw_session_rec_t *out);

/**
 * Renders an answer tuple (decision US reason US match US session US bill US amount US currency US
 * display) as the lane API's JSON object, empty fields as null.  Returns 0 or CMN_EPARSE.
 * Ownership: *out is the caller's.
 */
int gw_answer_render(const char *tuple, size_t len, json_t **out);

/** Whether plate has a pass at lot on the local day of t (monthly pass or allow-list) in the
 * configuration.  Runtime passes (pk:{L}:passes, pk:{L}:allow) are read by the entry and
 * exit_lookup scripts. */
int gw_lot_has_pass(const cmn_cfg_lot_t *lot, const char *plate, cmn_instant_t t);

/** Applies a new bill to its driver's record, then refreshes the driver's plate copies. */
void gw_driver_bill_apply(struct gw *gw, const char *driver, const char *bill, long long amount);

/** Writes the snapshot of a driver to the plate index of each of `plates` (space-separated);
 * an empty snapshot removes them. */
void gw_plates_mirror(struct gw *gw, const char *driver, const char *plates,
                      const char *snapshot);

#endif
