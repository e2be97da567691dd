#ifndef GW_API_H
#define GW_API_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "cmn/plate.h"
#include "cmn/rargs.h"
#include "gw.h"

/*
 * What the handlers of the people's API (docs/api.md: defaults, audit, /v1/me, lane work) share: a
 * request context that authenticates first, query parameters, reasons, bill ids, the bill as JSON
 * and the merge of per-lot pages into one page.
 *
 * Everything runs on the loop thread.  A context is created by gw_api_start() and freed by the
 * call that answers (gw_api_done, gw_api_fail); the handler owns it in between.
 */

typedef struct gw_api gw_api_t;
typedef void (*gw_api_fn)(gw_api_t *a);

struct gw_api {
    gw_t *gw;
    gw_conf_t *conf; /* the configuration snapshot of the request */
    cmn_httpd_req_t *req;
    gw_principal_t who;
    const char *rest; /* the path after the router's prefix (into req->url, query excluded) */
    size_t rest_len;
    /* Handler state. */
    const cmn_cfg_lot_t *lot;
    char bill[100];
    char lot_id[65];
    char seq[24];
    char driver[65];
    char plate[CMN_PLATE_MAX];
    char reason[301];
    char aux[128];
    int pending;
    int failed;
    int asks;
    json_t *acc;  /* an answer being assembled (released with the context) */
    void *extra;  /* released with extra_free */
    void (*extra_free)(void *);
};

/** Bit of a role in a mask for gw_api_require. */
#define GW_ROLE_BIT(r) (1u << (r))
#define GW_STAFF (GW_ROLE_BIT(GW_ROLE_ADMIN) | GW_ROLE_BIT(GW_ROLE_CITY))

/**
 * Authenticates req (gw_authenticate), then calls fn with a context whose `who` is set.  Answers
 * 401 or 503 by itself when there is no principal.  fn runs on a later loop turn.
 */
void gw_api_start(gw_t *gw, cmn_httpd_req_t *req, const char *rest, size_t rest_len, gw_api_fn fn);

/** Answers with body (consumed) and frees the context. */
void gw_api_done(gw_api_t *a, int status, json_t *body);

/** Answers with an error {"error": code, "message": ...} and frees the context. */
void gw_api_fail(gw_api_t *a, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** Answers 403 unless the principal's role is in `roles` (GW_ROLE_BIT mask).  Returns 0 when it
 * is; -1 when it answered. */
int gw_api_require(gw_api_t *a, unsigned roles);

/** Answers 503 unless Redis is ready.  Returns 0, or -1 when it answered. */
int gw_api_ready(gw_api_t *a);

/**
 * The percent-decoded value of query parameter `name` into out.  Returns 1 (found), 0 (absent) or
 * -1 (longer than outsz - 1, or a NUL byte).
 */
int gw_api_query(const cmn_httpd_req_t *req, const char *name, char *out, size_t outsz);

/** Percent-decodes in[0..n) into out.  Returns 0, or -1 when it does not fit or holds a NUL. */
int gw_api_unescape(const char *in, size_t n, char *out, size_t outsz);

/**
 * The request body's JSON object (*doc, the caller's) with its required "reason" (1 to 300 bytes,
 * no control characters) copied into a->reason.  Returns 0, or -1 after answering 400.
 */
int gw_api_reason(gw_api_t *a, json_t **doc);

/** "role US scope US name" of the principal, for the scripts' audit entries. */
void gw_api_who(const gw_api_t *a, char *out, size_t outsz);
/** The same for a principal outside a gw_api_t context. */
void gw_principal_who(const gw_principal_t *who, char *out, size_t outsz);

/**
 * Splits a bill id "<lot>~<n>~b" (percent-decoded first) into a->bill, a->lot_id, a->seq and sets
 * a->lot.  Returns 0, or -1 when it is no bill id of a configured lot.
 */
int gw_api_bill_id(gw_api_t *a, const char *id, size_t n);

/** Sets o[k] to the string v ("" for NULL): a field of a record's field set, whose values are
 * all strings. */
void gw_set_str(json_t *o, const char *k, const char *v);
/** Sets o[k] to v written in decimal, as a string. */
void gw_set_int(json_t *o, const char *k, long long v);

/** Splits a session id "<lot>~<n>" into lot and n (decimal).  Returns 0, or -1 (not a session
 * id, or a part too long for its buffer). */
int gw_session_id_split(const char *sid, char *lot, size_t lotsz, char *seq, size_t seqsz);

/** Splits a bill id "<lot>~<n>~b" into lot and n (decimal).  Returns 0, or -1 (not a bill id, or
 * a part too long for its buffer). */
int gw_bill_id_split(const char *bill, char *lot, size_t lotsz, char *seq, size_t seqsz);

/**
 * The driver and provider of a plate from the plate index's copy (`rp`: HGET of pk:plate:{F};
 * driver US version US ... US provider, 8 fields): set only when the copy is whole, not of a
 * deleted driver (version "0") and its provider is configured; driver and provider are left as
 * they are otherwise.
 */
void gw_plate_driver(const gw_conf_t *conf, const redisReply *rp, char *driver, size_t dsz,
                     char *provider, size_t psz);

/** Starts an EVALSHA of gateway script `script` with `nkeys` keys. */
void gw_api_script(const gw_t *gw, cmn_rargs_t *a, int script, int nkeys);

/** Sends args (answering 503 itself when that fails, and returning -1); 0 when sent. */
int gw_api_send(gw_api_t *a, cmn_rargs_t *args, cmn_redis_cb cb, void *data);

/** A hash reply's fields (flat array) as a JSON object of strings, "explanation" parsed as JSON. */
json_t *gw_api_record(const redisReply *flat);

/** The value of field `key` of a flat array reply, or NULL. */
const char *gw_api_field(const redisReply *flat, const char *key);

/** The history list reply (JSON lines) as a JSON array. */
json_t *gw_api_history(const redisReply *list);

/** Unix seconds t as RFC 3339 in the lot's time zone (its tariff's). */
void gw_api_time(const cmn_cfg_lot_t *lot, int64_t t, char *out, size_t outsz);

/** The lot's local day number of t. */
int64_t gw_api_lot_day(const cmn_cfg_lot_t *lot, int64_t t);

/** A settled bill's effect on its driver (driver_settle: waived, no score change), then the
 * driver's plate copies.  Fire and forget. */
void gw_api_driver_waived(gw_t *gw, const char *driver, const char *bill);

/*
 * Paging over several sorted sources (one per lot or stream) with a scan budget each.  A position
 * is (key, source, member), compared as (key, source, member); keys are numbers (exit time) for the
 * defaults list and stream ids for the audit log.  Each source returns at most `limit` items after
 * the cursor, and a horizon when its budget ran out before its end.
 */
typedef struct gw_page_item {
    char key[48];     /* the sort key: zero-padded, so that strcmp orders it */
    char source[80];  /* lot id, or "drv:<id>" */
    char member[48];
    json_t *item;     /* owned */
} gw_page_item_t;

typedef struct gw_page {
    gw_page_item_t *items;
    size_t n, cap;
    int has_horizon;
    gw_page_item_t horizon; /* the most restrictive horizon (item unused) */
    int descending;
} gw_page_t;

void gw_page_init(gw_page_t *p, int descending);
void gw_page_dispose(gw_page_t *p);
/** Adds an item (item consumed). */
void gw_page_add(gw_page_t *p, const char *key, const char *source, const char *member,
                 json_t *item);
/** Notes a source's horizon: entries beyond it were not read. */
void gw_page_horizon(gw_page_t *p, const char *key, const char *source, const char *member);
/**
 * Sorts and cuts to `limit`: appends the items to `out` (a JSON array) and returns the next
 * cursor ("key/source/member", the caller's to free) or NULL at the end.
 */
char *gw_page_finish(gw_page_t *p, size_t limit, json_t *out);
/** Parses a cursor made by gw_page_finish into its parts.  Returns 0 or -1. */
int gw_page_cursor(const char *cursor, char *key, size_t keysz, char *source, size_t sourcesz,
                   char *member, size_t membersz);

/** Reason codes of a bill (its JSON, from gw_api_record): the exit's decision and match, the fee's
 * reason, its discount, the first period and each cap that applied. */
json_t *gw_api_reason_codes(json_t *bill);

/** Sends dispute_open for a->bill (a->lot_id, a->seq, a->reason set) and answers; `driver`: the
 * driver the bill must belong to, or "" for staff (h_defaults.c). */
void gw_api_dispute(gw_api_t *a, const char *driver);

/** Handlers of the people's API. */
void gw_h_defaults(gw_t *gw, cmn_httpd_req_t *req, const char *rest, size_t n);
void gw_h_city_figures(gw_t *gw, cmn_httpd_req_t *req);
void gw_h_bill_dispute(gw_t *gw, cmn_httpd_req_t *req, const char *rest, size_t n);
void gw_h_audit(gw_t *gw, cmn_httpd_req_t *req);
void gw_h_me(gw_t *gw, cmn_httpd_req_t *req, const char *rest, size_t n);
void gw_h_lanes(gw_t *gw, cmn_httpd_req_t *req, const char *rest, size_t n);
void gw_h_reassign(gw_t *gw, cmn_httpd_req_t *req, const char *sid, size_t n);
void gw_h_merge(gw_t *gw, cmn_httpd_req_t *req, const char *sid, size_t n);
void gw_h_split(gw_t *gw, cmn_httpd_req_t *req, const char *sid, size_t n);

#endif
