/*
 * GET /v1/lane-commands[?after=<id>]: the lane commands of the calling device's lot (remote
 * openings, POST /v1/lots/{lot}/lanes/{lane}/open, docs/api.md) recorded after the cursor `after`,
 * oldest first, at most 100 a call.  The lpr-bridge asks for them on behalf of the lot's barriers
 * (docs/lpr-bridge.md).  Signed like an event (docs/lane-api.md); the lot is the device's, so a
 * device never reads another lot's commands.  One XRANGE (or XREVRANGE) on pk:{L}:lane_commands,
 * a key of the lot's slot.
 *
 *   200 {"lot", "commands": [{"id", "command", "lane", "reason", "actor", "role", "at"}], "cursor"}
 *
 * `cursor` is what to send as `after` next time.  Without `after`, no commands and the cursor of the
 * newest one ("0-0" when there is none): a bridge starting fresh does not replay old commands.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cmn/err.h"
#include "cmn/mem.h"
#include "cmn/rargs.h"
#include "gw.h"
#include "router.h"

#define MAX_COMMANDS 100

typedef struct creq {
    cmn_httpd_req_t *req;
    gw_t *gw;
    char lot[65];
    char after[48];
    int fresh; /* no `after`: only the newest id is wanted */
} creq_t;

/* "<ms>" or "<ms>-<seq>", as Redis stream ids are. */
static int valid_id(const char *s)
{
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > 20)
        return 0;
    if (s[n] == '\0')
        return 1;
    if (s[n] != '-')
        return 0;
    size_t m = strspn(s + n + 1, "0123456789");
    return m > 0 && m <= 20 && s[n + 1 + m] == '\0';
}

static const char *field(const redisReply *f, const char *name)
{
    for (size_t i = 0; f != NULL && f->type == REDIS_REPLY_ARRAY && i + 1 < f->elements; i += 2) {
        if (f->element[i]->type == REDIS_REPLY_STRING && strcmp(f->element[i]->str, name) == 0)
            return f->element[i + 1]->type == REDIS_REPLY_STRING ? f->element[i + 1]->str : NULL;
    }
    return NULL;
}

static void on_range(void *data, int status, redisReply *r)
{
    creq_t *c = data;
    if (status != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY) {
        gw_metrics_error(&c->gw->metrics, "unavailable");
        gw_respond_error(c->req, 503, "unavailable", "%s",
                         status == CMN_ETIMEOUT ? "Redis did not answer in time"
                                                : "Redis is unavailable");
        cmn_free(c);
        return;
    }
    json_t *list = json_array();
    const char *cursor = c->fresh ? "0-0" : c->after;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        cursor = e->element[0]->str;
        if (c->fresh)
            continue;
        const redisReply *f = e->element[1];
        const char *at = field(f, "at");
        json_t *o = json_object();
        json_object_set_new(o, "id", json_string(e->element[0]->str));
        static const char *const names[] = {"command", "lane", "reason", "actor", "role"};
        for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
            const char *v = field(f, names[k]);
            json_object_set_new(o, names[k], json_string(v ? v : ""));
        }
        json_object_set_new(o, "at", json_integer(at ? strtoll(at, NULL, 10) : 0));
        json_array_append_new(list, o);
    }
    json_t *out = json_object();
    json_object_set_new(out, "lot", json_string(c->lot));
    json_object_set_new(out, "commands", list);
    json_object_set_new(out, "cursor", json_string(cursor));
    gw_respond_json(c->req, 200, out);
    cmn_free(c);
}

void gw_h_lane_commands(gw_t *gw, cmn_httpd_req_t *req)
{
    const cmn_cfg_device_t *dev;
    const char *why;
    gw_conf_t *conf = gw_conf_ref(gw);
    int auth = gw_auth_device(gw, conf->cfg, req, "GET", &dev, &why);
    creq_t *c = cmn_xcalloc(1, sizeof *c);
    c->req = req;
    c->gw = gw;
    if (auth == 0)
        snprintf(c->lot, sizeof c->lot, "%s", dev->lot_id);
    gw_conf_unref(conf);
    if (auth != 0) {
        cmn_free(c);
        gw_metrics_error(&gw->metrics, "unauthorized");
        return gw_respond_error(req, 401, "unauthorized", "%s", why);
    }
    int found = gw_api_query(req, "after", c->after, sizeof c->after);
    if (found < 0 || (found == 1 && !valid_id(c->after))) {
        cmn_free(c);
        gw_metrics_error(&gw->metrics, "bad_request");
        return gw_respond_error(req, 400, "bad_request",
                                "after must be a lane command id (<ms> or <ms>-<n>)");
    }
    c->fresh = found == 0;
    if (gw->redis == NULL || !cmn_redis_ready(gw->redis))
        return on_range(c, CMN_EIO, NULL);
    cmn_rargs_t a;
    cmn_rargs_init(&a);
    if (c->fresh) {
        cmn_rargs_str(&a, "XREVRANGE");
        cmn_rargs_fmt(&a, "pk:{%s}:lane_commands", c->lot);
        cmn_rargs_str(&a, "+");
        cmn_rargs_str(&a, "-");
        cmn_rargs_str(&a, "COUNT");
        cmn_rargs_int(&a, 1);
    } else {
        cmn_rargs_str(&a, "XRANGE");
        cmn_rargs_fmt(&a, "pk:{%s}:lane_commands", c->lot);
        cmn_rargs_fmt(&a, "(%s", c->after); /* exclusive: what came after the cursor */
        cmn_rargs_str(&a, "+");
        cmn_rargs_str(&a, "COUNT");
        cmn_rargs_int(&a, MAX_COMMANDS);
    }
    if (cmn_redis_command(gw->redis, on_range, c, a.n, a.v, a.len) != 0)
        on_range(c, CMN_EIO, NULL);
}
