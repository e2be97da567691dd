/*
 * A real redis-server for tests (redis_server.h).  Test code: blocking calls are fine here, but
 * every wait is bounded so that a broken server fails a test instead of hanging it.
 *
 * The server is a child process (fork + exec, with PR_SET_PDEATHSIG so that a crashed test does
 * not leave servers behind).  It is spoken to over a plain blocking socket in RESP, which is all
 * that PING, CLUSTER ADDSLOTSRANGE and CLUSTER INFO need.
 */
/* nftw, pipe2 and prctl are not in plain POSIX. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "redis_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define START_ATTEMPTS 5
#define WAIT_MS 5000
#define CLUSTER_WAIT_MS 8000 /* a new master waits 2 s (CLUSTER_WRITABLE_DELAY) before "ok" */
#define STOP_WAIT_MS 5000

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* A port nobody listens on right now (it may be taken again before redis binds it: callers
 * retry). */
static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    int fd, port = -1;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &alen) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* ---- RESP over a blocking socket ---- */

static int resp_connect(int port)
{
    struct sockaddr_in a;
    struct timeval tv = {1, 0};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/*
 * Sends one command and reads one simple reply (+, -, : or a bulk string) into out, without its
 * type byte and CRLF.  Returns the type byte, or -1 on any failure.
 */
static int resp_call(int port, const char *const *args, char *out, size_t outsz)
{
    char buf[8192];
    size_t have = 0;
    int fd, type = -1, n = 0;
    char *eol;

    while (args[n] != NULL)
        n++;
    fd = resp_connect(port);
    if (fd < 0)
        return -1;
    {
        char head[32];
        int len = snprintf(head, sizeof head, "*%d\r\n", n);
        if (write_all(fd, head, (size_t)len) != 0)
            goto out;
        for (int i = 0; i < n; i++) {
            size_t alen = strlen(args[i]);
            len = snprintf(head, sizeof head, "$%zu\r\n", alen);
            if (write_all(fd, head, (size_t)len) != 0 || write_all(fd, args[i], alen) != 0 ||
                write_all(fd, "\r\n", 2) != 0)
                goto out;
        }
    }
    for (;;) {
        ssize_t got;
        buf[have] = '\0';
        eol = strstr(buf, "\r\n");
        if (eol != NULL) {
            if (buf[0] != '$')
                break;
            long blen = strtol(buf + 1, NULL, 10);
            if (blen < 0) /* nil */
                break;
            if (have >= (size_t)(eol - buf) + 2 + (size_t)blen + 2)
                break;
        }
        if (have + 1 >= sizeof buf)
            goto out;
        got = read(fd, buf + have, sizeof buf - 1 - have);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            goto out;
        have += (size_t)got;
    }
    type = (unsigned char)buf[0];
    if (outsz > 0) {
        const char *body = buf + 1;
        size_t blen = (size_t)(eol - body);
        if (type == '$') {
            body = eol + 2;
            blen = (size_t)strtol(buf + 1, NULL, 10);
        }
        if (blen >= outsz)
            blen = outsz - 1;
        memcpy(out, body, blen);
        out[blen] = '\0';
    }
out:
    close(fd);
    return type;
}

/* ---- the process ---- */

static pid_t spawn_server(const park_redis_server_t *s)
{
    char port[16], logfile[300], nodes[300];
    const char *argv[32];
    int n = 0;
    pid_t pid;

    snprintf(port, sizeof port, "%d", s->port);
    snprintf(logfile, sizeof logfile, "%s/redis.log", s->dir);
    snprintf(nodes, sizeof nodes, "%s/nodes.conf", s->dir);
    argv[n++] = "redis-server";
    argv[n++] = "--port";
    argv[n++] = port;
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--dir";
    argv[n++] = s->dir;
    argv[n++] = "--appendonly";
    argv[n++] = "yes";
    argv[n++] = "--save";
    argv[n++] = "";
    argv[n++] = "--daemonize";
    argv[n++] = "no";
    argv[n++] = "--logfile";
    argv[n++] = logfile;
    /* Redis 7 refuses DEBUG by default; tests use DEBUG SLEEP to stall the server. */
    argv[n++] = "--enable-debug-command";
    argv[n++] = "local";
    if (s->cluster) {
        argv[n++] = "--cluster-enabled";
        argv[n++] = "yes";
        argv[n++] = "--cluster-config-file";
        argv[n++] = nodes;
    }
    argv[n] = NULL;

    pid = fork();
    if (pid == 0) {
        /* Only async-signal-safe calls from here on. */
        int devnull = open("/dev/null", O_RDWR);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
        }
        execvp("redis-server", (char *const *)argv);
        execv("/usr/bin/redis-server", (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* 1 when the child has exited (and is reaped), 0 when it runs. */
static int child_exited(pid_t pid)
{
    int st;
    pid_t w = waitpid(pid, &st, WNOHANG);
    return w == pid || (w < 0 && errno == ECHILD);
}

static int wait_ping(park_redis_server_t *s)
{
    static const char *const ping[] = {"PING", NULL};
    int64_t deadline = now_ms() + WAIT_MS;
    char out[64];

    while (now_ms() < deadline) {
        if (child_exited(s->pid)) {
            s->pid = -1;
            return -1;
        }
        if (resp_call(s->port, ping, out, sizeof out) == '+' && strcmp(out, "PONG") == 0)
            return 0;
        pause_ms(10);
    }
    return -1;
}

static int wait_cluster_ok(const park_redis_server_t *s)
{
    static const char *const info[] = {"CLUSTER", "INFO", NULL};
    int64_t deadline = now_ms() + CLUSTER_WAIT_MS;
    char out[4096];

    while (now_ms() < deadline) {
        if (resp_call(s->port, info, out, sizeof out) == '$' &&
            strstr(out, "cluster_state:ok") != NULL)
            return 0;
        pause_ms(20);
    }
    return -1;
}

static int setup_cluster(const park_redis_server_t *s)
{
    static const char *const addslots[] = {"CLUSTER", "ADDSLOTSRANGE", "0", "16383", NULL};
    char out[256];
    int type = resp_call(s->port, addslots, out, sizeof out);

    /* After a restart nodes.conf already has the slots. */
    if (type != '+' && !(type == '-' && strstr(out, "already busy") != NULL)) {
        fprintf(stderr, "redis_server: CLUSTER ADDSLOTSRANGE failed: %s\n",
                type < 0 ? "no answer" : out);
        return -1;
    }
    if (wait_cluster_ok(s) != 0) {
        fprintf(stderr, "redis_server: cluster_state never became ok on port %d\n", s->port);
        return -1;
    }
    return 0;
}

static int run(park_redis_server_t *s)
{
    s->pid = spawn_server(s);
    if (s->pid < 0) {
        fprintf(stderr, "redis_server: fork: %s\n", strerror(errno));
        return -1;
    }
    if (wait_ping(s) != 0) {
        park_redis_server_stop(s);
        return -1;
    }
    return 0;
}

int park_redis_server_start(park_redis_server_t *s, int cluster)
{
    memset(s, 0, sizeof *s);
    s->pid = -1;
    s->cluster = cluster;
    snprintf(s->dir, sizeof s->dir, "/tmp/park-redis-XXXXXX");
    if (mkdtemp(s->dir) == NULL) {
        fprintf(stderr, "redis_server: mkdtemp: %s\n", strerror(errno));
        s->dir[0] = '\0';
        return -1;
    }
    for (int i = 0; i < START_ATTEMPTS; i++) {
        /* A failed start is most likely another process taking the port in between. */
        s->port = free_port();
        if (cluster && s->port > 65535 - 10000)
            continue; /* the cluster bus listens on port + 10000 */
        if (s->port > 0 && run(s) == 0)
            return cluster ? setup_cluster(s) : 0;
    }
    fprintf(stderr, "redis_server: redis-server did not start (see %s/redis.log)\n", s->dir);
    return -1;
}

int park_redis_server_stop(park_redis_server_t *s)
{
    int64_t deadline = now_ms() + STOP_WAIT_MS;
    int st;

    if (s->pid <= 0)
        return 0;
    kill(s->pid, SIGTERM);
    while (now_ms() < deadline) {
        pid_t w = waitpid(s->pid, &st, WNOHANG);
        if (w == s->pid || (w < 0 && errno == ECHILD)) {
            s->pid = -1;
            return 0;
        }
        pause_ms(5);
    }
    fprintf(stderr, "redis_server: pid %d ignored SIGTERM, killing it\n", (int)s->pid);
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &st, 0);
    s->pid = -1;
    return -1;
}

int park_redis_server_restart(park_redis_server_t *s)
{
    if (s->pid > 0 || s->dir[0] == '\0')
        return -1;
    if (run(s) != 0) {
        fprintf(stderr, "redis_server: restart on port %d failed (see %s/redis.log)\n", s->port,
                s->dir);
        return -1;
    }
    return s->cluster ? setup_cluster(s) : 0;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void park_redis_server_destroy(park_redis_server_t *s)
{
    park_redis_server_stop(s);
    if (s->dir[0] != '\0')
        nftw(s->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    s->dir[0] = '\0';
}

int park_redis_cli(const park_redis_server_t *s, char *out, size_t outsz, const char *const *args)
{
    char port[16];
    const char *argv[64];
    posix_spawn_file_actions_t fa;
    int pipefd[2], n = 0, st, rc = -1;
    size_t have = 0;
    pid_t pid;

    if (outsz > 0)
        out[0] = '\0';
    snprintf(port, sizeof port, "%d", s->port);
    argv[n++] = "redis-cli";
    argv[n++] = "-h";
    argv[n++] = "127.0.0.1";
    argv[n++] = "-p";
    argv[n++] = port;
    for (int i = 0; args[i] != NULL; i++) {
        if (n >= 63)
            return -1;
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    if (pipe2(pipefd, O_CLOEXEC) != 0)
        return -1;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    if (posix_spawnp(&pid, "redis-cli", &fa, NULL, (char *const *)argv, environ) != 0 &&
        posix_spawn(&pid, "/usr/bin/redis-cli", &fa, NULL, (char *const *)argv, environ) != 0)
        pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[1]);
    if (pid < 0) {
        close(pipefd[0]);
        return -1;
    }
    for (;;) {
        char tmp[1024];
        struct pollfd pfd = {pipefd[0], POLLIN, 0};
        ssize_t got;

        if (poll(&pfd, 1, WAIT_MS) <= 0) {
            kill(pid, SIGKILL); /* redis-cli hangs: give up on it */
            break;
        }
        got = read(pipefd[0], tmp, sizeof tmp);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        for (ssize_t i = 0; i < got && outsz > 0 && have + 1 < outsz; i++)
            out[have++] = tmp[i];
    }
    close(pipefd[0]);
    if (outsz > 0) {
        if (have > 0 && out[have - 1] == '\n')
            have--;
        out[have] = '\0';
    }
    if (waitpid(pid, &st, 0) == pid && WIFEXITED(st))
        rc = WEXITSTATUS(st);
    return rc;
}
