#include "cmn/driver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn/err.h"
#include "cmn/log.h"
#include "cmn/mem.h"
#include "cmn/plate.h"
#include "cmn/rargs.h"

static void on_mirror(void *data, int status, redisReply *r)
{
    (void)data;
    if (status != 0 || r == NULL || r->type == REDIS_REPLY_ERROR)
        cmn_log(CMN_LOG_WARN, "plate_copy", "a plate's credit copy was not updated: %s",
                status ? cmn_strerror(status) : r->str);
}

int cmn_snapshot_parse(const char *text, cmn_snapshot_t *s)
{
    const char *f[8];
    size_t len[8];
    int n = 0;
    memset(s, 0, sizeof *s);
    for (const char *p = text; n < 8; n++) {
        f[n] = p;
        len[n] = strcspn(p, "\x1f");
        if (p[len[n]] == '\0') {
            n++;
            break;
        }
        p += len[n] + 1;
    }
    if (n != 8)
        return -1; /* fields past the 8th, if any, are not read */
    snprintf(s->driver, sizeof s->driver, "%.*s", (int)len[0], f[0]);
    s->ver = strtoll(f[1], NULL, 10);
    s->score = strtoll(f[2], NULL, 10);
    s->suspended = len[3] == 1 && f[3][0] == '1';
    snprintf(s->eligibility, sizeof s->eligibility, "%.*s", (int)len[4], f[4]);
    s->unpaid_count = strtoll(f[5], NULL, 10);
    s->unpaid_amount = strtoll(f[6], NULL, 10);
    snprintf(s->provider, sizeof s->provider, "%.*s", (int)len[7], f[7]);
    return 0;
}

void cmn_snapshot_driver(const char *snapshot, char *out, size_t outsz)
{
    size_t n = strcspn(snapshot, "\x1f");
    snprintf(out, outsz, "%.*s", (int)(n < outsz - 1 ? n : outsz - 1), snapshot);
}

void cmn_driver_mirror(cmn_redis_t *r, int mirror_script, const char *driver, const char *plates,
                       const char *snapshot)
{
    const char *p = plates;
    const char *ver_start = strchr(snapshot, '\x1f');
    char ver[24] = "0";
    if (ver_start != NULL) {
        const char *ver_end = strchr(ver_start + 1, '\x1f');
        size_t n = ver_end ? (size_t)(ver_end - ver_start - 1) : 0;
        if (n > 0 && n < sizeof ver)
            snprintf(ver, sizeof ver, "%.*s", (int)n, ver_start + 1);
    }
    cmn_rargs_t args, *a = &args; /* on the stack: about 10 KB, built and sent at once */
    while (*p) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, " ");
        if (n == 0)
            break;
        char plate[CMN_PLATE_MAX], fold[CMN_PLATE_MAX];
        snprintf(plate, sizeof plate, "%.*s", (int)(n < sizeof plate - 1 ? n : sizeof plate - 1),
                 p);
        p += n;
        if (cmn_plate_fold_key(plate, 1, fold, sizeof fold) < 0)
            continue;
        cmn_rargs_init(a);
        cmn_rargs_str(a, "EVALSHA");
        cmn_rargs_str(a, cmn_redis_script_sha(r, mirror_script));
        cmn_rargs_str(a, "1");
        cmn_rargs_fmt(a, "pk:plate:{%s}", fold);
        cmn_rargs_str(a, plate);
        cmn_rargs_str(a, driver);
        cmn_rargs_str(a, ver);
        cmn_rargs_str(a, snapshot);
        if (cmn_redis_command(r, on_mirror, NULL, a->n, a->v, a->len) != 0)
            cmn_log(CMN_LOG_WARN, "plate_copy", "a plate's credit copy was not sent");
    }
}
