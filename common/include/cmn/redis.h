#ifndef CMN_REDIS_H
#define CMN_REDIS_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <uv.h>

#include "cmn/config.h"

/*
 * An asynchronous Redis client on a libuv loop: hiredis's async API with its libuv adapter, never
 * the synchronous API.  What hiredis 0.14 lacks is added here:
 *   - names are resolved with uv_getaddrinfo (hiredis would call getaddrinfo and block the loop);
 *   - a connect timeout, and a timeout on every command: when one command goes unanswered for
 *     command_timeout_ms the connection is dropped, so every command in flight fails together
 *     (h2o's redis.c) and none is left waiting forever;
 *   - reconnection with exponential backoff (100 ms doubling to 5 s, with jitter) after any loss;
 *   - scripts registered once, loaded with SCRIPT LOAD on every connection, and called by SHA with
 *     EVALSHA; a NOSCRIPT answer (the server restarted, or SCRIPT FLUSH) loads the script again and
 *     retries the call once;
 *   - functions of Redis Functions libraries registered the same way: the library loaded with
 *     FUNCTION LOAD on every connection, a call sent as FCALL, and "Function not found" answered
 *     like NOSCRIPT.  Callers see a function as a script: a handle, an id in place of the SHA-1;
 *     "EVALSHA <id> numkeys ..." goes out as "FCALL <function> numkeys ...";
 *   - AUTH with the configured password on every connection.
 *
 * The client is "ready" when connected, authenticated and every script and library is loaded.  Commands issued
 * while it is not ready fail at once (on a later loop turn) with CMN_EIO: the gateway answers 503
 * rather than queueing work for an unknown time.
 *
 * Commands sent on one connection are pipelined by hiredis and answered in order.  Cluster: the
 * client talks to one server; every script of the platform touches keys of one hash slot only, so
 * the same calls run unchanged on a Redis Cluster node that owns those slots.  Scripts begin with
 * the `#!lua` line (Redis 7 flags).  In cluster mode Redis 7.0 then answers CROSSSLOT when the
 * declared keys span two slots, and fails the script when it touches a key of a slot other than
 * its declared keys' (with none declared: than the first key it touched); a key missing from KEYS
 * but of the same slot goes through unchecked, so declaring every key is the scripts' own duty
 * (tests/unit/common/test_redis.c shows each case).
 *
 * Threading: one loop thread.  Callbacks never run synchronously inside a public call.
 */

typedef struct cmn_redis cmn_redis_t;

/**
 * Completion of a command.  status 0: `reply` is the server's answer (borrowed for the duration of
 * the callback; it may be a REDIS_REPLY_ERROR, e.g. a script's error).  CMN_EIO: not connected, or
 * the connection was lost before the answer (the command may or may not have run).  CMN_ETIMEOUT:
 * no answer within command_timeout_ms (the connection was dropped).  reply is NULL unless status
 * is 0.
 */
typedef void (*cmn_redis_cb)(void *data, int status, redisReply *reply);

/**
 * Called whenever readiness changes (1: ready, 0: not), on the loop thread; never after
 * cmn_redis_close().  It may call any function of this API, cmn_redis_close() included.
 */
typedef void (*cmn_redis_state_cb)(void *data, int ready);

/**
 * Creates the client and starts connecting (asynchronously).  The configuration is copied.
 * Scripts should be added before the first connection completes (i.e. right after this call).
 * Ownership: free with cmn_redis_close().
 */
int cmn_redis_new(uv_loop_t *loop, const cmn_cfg_redis_t *cfg, cmn_redis_t **out);

void cmn_redis_set_state_cb(cmn_redis_t *r, cmn_redis_state_cb cb, void *data);

/**
 * Registers a Lua script (copied); returns its handle (>= 0) for cmn_redis_evalsha, or a negative
 * error.  The SHA-1 is computed locally; the script is loaded on every (re)connection.
 */
int cmn_redis_script_add(cmn_redis_t *r, const char *name, const char *source);

/**
 * Registers function `function` of the Redis Functions library `library` (its text, beginning
 * `#!lua name=<library name>`; copied, loaded once per connection however many of its functions
 * are registered).  Returns the function's handle, used as a script's: cmn_redis_evalsha, or
 * "EVALSHA <cmn_redis_script_sha> numkeys ..." through cmn_redis_command, sent as FCALL.  A library
 * is known by its name: give each text its own (e.g. with a hash of the text in it).
 */
int cmn_redis_function_add(cmn_redis_t *r, const char *name, const char *library,
                           const char *function);

/** The SHA-1 (40 hex digits) of a registered script; of a function, its id (the SHA-1 of its
 * name), which callers send in place of a SHA-1. */
const char *cmn_redis_script_sha(const cmn_redis_t *r, int script);

/**
 * Sends one command given as argv/argvlen (binary safe; argvlen NULL: the arguments are C strings).
 * The arguments are copied before the call returns.  Returns 0 (the callback, which may be NULL,
 * will run exactly once, later) or CMN_EINVAL when the arguments are unusable or the client is
 * closing (the callback will not run).  Commands are answered in the order they were sent.
 * "EVALSHA <sha> ..." with the SHA of a registered script gets cmn_redis_evalsha's NOSCRIPT retry
 * (and is sent as FCALL for a function).
 */
int cmn_redis_command(cmn_redis_t *r, cmn_redis_cb cb, void *data, int argc, const char **argv,
                      const size_t *argvlen);

/**
 * EVALSHA of a registered script (FCALL of a function): `numkeys` keys then the other arguments,
 * in argv/argvlen.  Handles NOSCRIPT ("Function not found") by loading the script (the library)
 * and retrying once; a retried call completes after the commands sent between the first try and
 * the NOSCRIPT answer.  A second NOSCRIPT is delivered as the reply.  Same contract as
 * cmn_redis_command.
 */
int cmn_redis_evalsha(cmn_redis_t *r, int script, int numkeys, int argc, const char **argv,
                      const size_t *argvlen, cmn_redis_cb cb, void *data);

/** 1 when connected, authenticated and every script and library is loaded (or, with none of them,
 * PING answered). */
int cmn_redis_ready(const cmn_redis_t *r);

/** Counters for /metrics. */
typedef struct cmn_redis_stats {
    unsigned long long commands;   /* calls accepted (returned 0), whether sent or failed */
    unsigned long long errors;     /* CMN_EIO and CMN_ETIMEOUT completions, and error replies */
    unsigned long long timeouts;   /* commands (handshake included) that dropped the connection */
    unsigned long long reconnects; /* connection attempts after the first one */
    unsigned long long noscript_reloads; /* NOSCRIPT and "Function not found" */
} cmn_redis_stats_t;

const cmn_redis_stats_t *cmn_redis_stats(const cmn_redis_t *r);

/**
 * Stops: commands in flight complete with CMN_EIO (on a later loop turn, never inside this call),
 * no reconnection, no more state callbacks, handles closed; done(data) runs on a later loop turn
 * once everything is released, after which `r` is gone.  done may be NULL.  May be called from
 * any callback of this client; a second call does nothing.
 */
void cmn_redis_close(cmn_redis_t *r, void (*done)(void *data), void *data);

#endif
