#ifndef LPR_SPOOL_H
#define LPR_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/*
 * The bridge's append-only spool: every read a camera hands over is written and fsynced before the
 * camera gets its 200, and stays until the gateway acknowledged it.  Files are segments
 * `spool-<n>.log` of lines:
 *
 *   R <seq> <record>\n     a read (its record is one line of JSON: the event as it will be sent)
 *   A <seq>\n              acknowledged (delivered, or deliberately dropped)
 *
 * Writes go through libuv's file operations, which run on its thread pool: the loop never waits
 * for the disk.  Appends are grouped: everything queued while one write+fsync is in flight goes out
 * in the next, so a burst of reads costs one fsync.  A segment whose reads are all acknowledged is
 * deleted once a newer one is active (compaction); acknowledgements it holds of reads in older
 * segments still on disk are written again into the active segment first.  A segment grows to
 * 8 MiB before the next one starts (lpr_spool_set_segment_max).
 *
 * Opening reads every segment back (synchronously: at start, before the loop runs) and returns the
 * reads not yet acknowledged, in the order they were written.
 */

typedef struct lpr_spool lpr_spool_t;

typedef struct lpr_spooled {
    uint64_t seq;
    char *record; /* NUL-terminated, owned by the array */
} lpr_spooled_t;

/**
 * Opens (creating it if needed) the spool folder.  *pending receives the reads not acknowledged,
 * oldest first (free with lpr_spooled_free).  Returns 0 or a negative error (message logged).
 */
int lpr_spool_open(uv_loop_t *loop, const char *dir, lpr_spool_t **out, lpr_spooled_t **pending,
                   size_t *npending);
void lpr_spooled_free(lpr_spooled_t *v, size_t n);

/** Called once the record is on disk (status 0) or could not be written (negative). */
typedef void (*lpr_spool_cb)(void *data, int status, uint64_t seq);

/**
 * Appends a read (a line without newline or NUL, copied); cb runs after its fsync, on a later loop
 * turn.  The seq is assigned now and given to cb.  Returns 0, or CMN_EINVAL (a newline or NUL in
 * the record, or a closing spool) or CMN_ETOOBIG (64 MiB queued), and cb will not run.  When the
 * write fails, cb gets a negative status and the read is acknowledged: it will not come back.
 */
int lpr_spool_append(lpr_spool_t *s, const char *record, size_t len, lpr_spool_cb cb, void *data);

/** Marks a read acknowledged (written lazily, with the next group). */
void lpr_spool_ack(lpr_spool_t *s, uint64_t seq);

/** Reads not acknowledged yet. */
size_t lpr_spool_depth(const lpr_spool_t *s);

/**
 * Test hook: the size past which the next group starts a new segment (default 8 MiB; at least 1).
 * Takes effect from the next group.
 */
void lpr_spool_set_segment_max(lpr_spool_t *s, uint64_t bytes);

/**
 * Flushes what is queued (the callbacks of appends in flight still run, before done), closes the
 * file, then done(data) on a later turn; the spool is freed before done runs.  Appends are refused
 * from now on; acknowledgements are still taken until done.
 */
void lpr_spool_close(lpr_spool_t *s, void (*done)(void *data), void *data);

#endif
