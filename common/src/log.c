#include "cmn/log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmn/buf.h"
#include "cmn/time.h"

static char log_prog[32] = "park";
static cmn_log_level_t log_min = CMN_LOG_INFO;
static int log_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void cmn_log_init(const char *prog, cmn_log_level_t min_level, int fd)
{
    snprintf(log_prog, sizeof log_prog, "%s", prog);
    log_min = min_level;
    log_fd = fd;
}

int cmn_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0)
            return i;
    }
    return -1;
}

int cmn_log_enabled(cmn_log_level_t level)
{
    return level >= log_min && level <= CMN_LOG_ERROR;
}

void cmn_logv(cmn_log_level_t level, const char *event, const char *fmt, va_list ap)
{
    char msg[1024], ts[CMN_RFC3339_MAX];
    struct timespec now;
    cmn_buf_t b;

    if (level < log_min || level > CMN_LOG_ERROR)
        return;
    clock_gettime(CLOCK_REALTIME, &now);
    cmn_rfc3339_format(now.tv_sec, 0, 1, ts, sizeof ts);
    vsnprintf(msg, sizeof msg, fmt, ap);
    cmn_buf_init(&b, 4096);
    /* One allocation for a line of usual length rather than growing from 64 bytes. */
    int rc = cmn_buf_reserve(&b, 512);
    /* ts carries milliseconds: insert them before the Z. */
    rc |= cmn_buf_printf(&b, "{\"ts\":\"%.19s.%03ldZ\",\"level\":\"%s\",\"prog\":\"", ts,
                            now.tv_nsec / 1000000, level_names[level]);
    rc |= cmn_buf_json_escape(&b, log_prog, strlen(log_prog));
    rc |= cmn_buf_puts(&b, "\",\"event\":\"");
    rc |= cmn_buf_json_escape(&b, event, strlen(event));
    rc |= cmn_buf_puts(&b, "\",\"msg\":\"");
    rc |= cmn_buf_json_escape(&b, msg, strlen(msg));
    rc |= cmn_buf_puts(&b, "\"}\n");
    if (rc == 0) {
        ssize_t w = write(log_fd, b.base, b.len);
        (void)w; /* nowhere left to report a failed log write */
    }
    cmn_buf_dispose(&b);
}

void cmn_log(cmn_log_level_t level, const char *event, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cmn_logv(level, event, fmt, ap);
    va_end(ap);
}
