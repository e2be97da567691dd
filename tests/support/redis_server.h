#ifndef PARK_TEST_REDIS_SERVER_H
#define PARK_TEST_REDIS_SERVER_H

#include <sys/types.h>

/*
 * A real redis-server for tests: started on a free loopback port with its own temporary data
 * folder (AOF on), waited for until it answers PING, stopped and removed at the end.  Tests never
 * share a server and never touch a Redis the machine already runs.
 */
typedef struct park_redis_server {
    pid_t pid;
    int port;
    int cluster;   /* started with cluster-enabled yes and every slot assigned to itself */
    char dir[256]; /* its data folder */
} park_redis_server_t;

/**
 * Starts redis-server (found on PATH or in /usr/bin) on a free port.  With `cluster` non-zero the
 * server runs with `cluster-enabled yes`, gets every slot (CLUSTER ADDSLOTSRANGE 0 16383) and is
 * waited for until `cluster_state:ok`.  Returns 0, or -1 with a message on stderr.
 */
int park_redis_server_start(park_redis_server_t *s, int cluster);

/** Stops the server (SIGTERM, waits for it) and keeps its folder: start it again with _restart. */
int park_redis_server_stop(park_redis_server_t *s);

/** Starts a stopped server again on the same port and folder (its AOF is replayed). */
int park_redis_server_restart(park_redis_server_t *s);

/** Stops the server if it runs and removes its folder. */
void park_redis_server_destroy(park_redis_server_t *s);

/**
 * Runs one command through redis-cli against the server (for test set-up and checks, never in the
 * code under test) and copies its raw output, without the final newline, to out.  Returns the exit
 * status of redis-cli, or -1.
 */
int park_redis_cli(const park_redis_server_t *s, char *out, size_t outsz, const char *const *args);

#endif
