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

/** The driver id (first field) of a snapshot, into out. */
void cmn_snapshot_driver(const char *snapshot, char *out, size_t outsz);

#endif
