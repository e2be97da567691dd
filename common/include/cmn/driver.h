#ifndef CMN_DRIVER_H
#define CMN_DRIVER_H

#include "cmn/redis.h"

/*
 * The plate index (docs/redis.md): each enrolled plate's copy of its driver's credit record, read
 * by the gateway's exit decisions.  Whoever changes a driver's record (the admin API, the gateway
 * after a bill, billing) refreshes the copies afterwards with the snapshot the driver script
 * returned; a copy only ever moves to a newer version, so refreshes may race.
 */

/**
 * Sends plate_mirror (script handle `mirror_script` of r) for each plate of `plates`
 * (space-separated) with `snapshot` (driver US version US …); an empty snapshot removes the
 * copies.  Fire and forget: failures are logged (the next change of the driver repairs them).
 */
void cmn_driver_mirror(cmn_redis_t *r, int mirror_script, const char *driver, const char *plates,
                       const char *snapshot);

/** A driver's snapshot as the driver scripts return it and the plate index keeps it: driver US
 * version US score US suspended US eligibility US unpaid_count US unpaid_amount US provider. */
typedef struct {
    char driver[65];
    long long ver;
    long long score;
    int suspended;
    char eligibility[32];
    long long unpaid_count;
    long long unpaid_amount;
    char provider[65];
} cmn_snapshot_t;

/** Parses a snapshot into s (text fields cut to their buffers).  Returns 0 when it has its 8
 * fields, -1 otherwise. */
int cmn_snapshot_parse(const char *text, cmn_snapshot_t *s);

/** The driver id (first field) of a snapshot, into out. */
void cmn_snapshot_driver(const char *snapshot, char *out, size_t outsz);

#endif
