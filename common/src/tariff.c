/*
 * Tariff files and the fee engine.
 *
 * Loading turns a JSON document into one resolved rule set per vehicle class (the top-level rules
 * plus each class's overrides), so computing a fee never looks at JSON.  Every problem of a file is
 * reported with its JSON path, and a file with any problem is refused as a whole.
 *
 * The engine walks the charged interval unit by unit in time order, which lets both caps run as
 * streaming sums with O(1) state: a band occurrence and a 24-hour window are each contiguous in
 * time, so a sum only needs resetting when the occurrence (per band) or the window changes.  The
 * zone's UTC offset is cached with the interval over which it holds, so finding the band of a unit
 * is integer arithmetic; ICU is asked again only across a transition, and once per local day and
 * band for the instant an occurrence begins.
 */
#include "cmn/tariff.h"

#include <openssl/evp.h>
#include <string.h>

#include "cmn/err.h"
#include "cmn/json.h"
#include "cmn/mem.h"
#include "cmn/money.h"
#include "cmn/tz.h"
#include "jcheck_int.h"

#define MAX_BANDS 64
#define NO_BAND 0xff

struct cmn_tariff {
    char *id;
    char *currency;
    int digits;
    char *version;
    char *canonical;
    cmn_tz_t *tz;
    cmn_tariff_rules_t base;
    cmn_tariff_rules_t *classes;
    int nclasses;
};

/* ---- loading ----------------------------------------------------------------------------- */

static void rules_dispose(cmn_tariff_rules_t *r)
{
    for (int i = 0; i < r->nbands; i++)
        cmn_free(r->bands[i].name);
    cmn_free(r->bands);
    cmn_free((char *)r->vclass);
    r->bands = NULL;
    r->nbands = 0;
    r->vclass = NULL;
}

/* "HH:MM" to minutes after midnight; "24:00" only where allow_24 (a band's end). */
static int parse_hhmm(const char *s, int allow_24)
{
    if (strlen(s) != 5 || s[2] != ':')
        return -1;
    for (int i = 0; i < 5; i++) {
        if (i != 2 && (s[i] < '0' || s[i] > '9'))
            return -1;
    }
    int h = (s[0] - '0') * 10 + (s[1] - '0');
    int m = (s[3] - '0') * 10 + (s[4] - '0');
    if (m > 59)
        return -1;
    if (h == 24 && m == 0 && allow_24)
        return 0;
    if (h > 23)
        return -1;
    return h * 60 + m;
}

static void fmt_minute(int minute, char out[6])
{
    out[0] = (char)('0' + minute / 600);
    out[1] = (char)('0' + minute / 60 % 10);
    out[2] = ':';
    out[3] = (char)('0' + minute % 60 / 10);
    out[4] = (char)('0' + minute % 10);
    out[5] = '\0';
}

static int band_time(jc_t *c, json_t *band, const char *key, int allow_24)
{
    const char *s;
    if (jc_str(c, band, key, 1, 5, &s) != 1)
        return -1;
    int m = parse_hhmm(s, allow_24);
    if (m < 0)
        jc_err_at(c, key, "must be a time HH:MM from 00:00 to 23:59%s (got \"%s\")",
                  allow_24 ? " or 24:00" : "", s);
    return m;
}

/* Reads `bands` (already known to be an array) into r, checking that they tile the day. */
static void load_bands(jc_t *c, json_t *arr, cmn_tariff_rules_t *r)
{
    static const char *const keys[] = {"name",       "from", "to", "unit_minutes",
                                       "unit_price", "cap",  NULL};
    size_t n = json_array_size(arr);
    size_t mark = jc_push_key(c, "bands");
    if (n == 0) {
        jc_err(c, "must list at least one band");
        goto out;
    }
    if (n > MAX_BANDS) {
        jc_err(c, "at most %d bands are allowed (got %zu)", MAX_BANDS, n);
        goto out;
    }
    r->bands = cmn_xcalloc(n, sizeof *r->bands);
    r->nbands = (int)n;
    memset(r->band_of_minute, NO_BAND, sizeof r->band_of_minute);
    int tiled = 1;
    for (size_t i = 0; i < n; i++) {
        json_t *b = json_array_get(arr, i);
        cmn_band_t *band = &r->bands[i];
        size_t m2 = jc_push_index(c, i);
        if (!json_is_object(b)) {
            jc_err(c, "must be an object");
            tiled = 0;
            jc_pop(c, m2);
            continue;
        }
        jc_only_keys(c, b, keys);
        const char *name = NULL;
        if (jc_str(c, b, "name", 1, 32, &name) == 1) {
            for (size_t j = 0; j < i; j++) {
                if (r->bands[j].name != NULL && strcmp(r->bands[j].name, name) == 0)
                    jc_err_at(c, "name", "duplicate band name \"%s\" (also bands[%zu])", name, j);
            }
            band->name = cmn_xstrdup(name);
        }
        int from = band_time(c, b, "from", 0);
        int to = band_time(c, b, "to", 1);
        int64_t v;
        if (jc_int(c, b, "unit_minutes", 1, 1, CMN_TARIFF_MAX_MINUTES, &v) == 1)
            band->unit_secs = v * 60;
        if (jc_int(c, b, "unit_price", 1, 0, CMN_TARIFF_MAX_PRICE, &v) == 1)
            band->unit_price = v;
        if (jc_int(c, b, "cap", 0, 0, CMN_TARIFF_MAX_CAP, &v) == 1) {
            band->has_cap = 1;
            band->cap = v;
        }
        if (from < 0 || to < 0) {
            tiled = 0;
        } else {
            band->from = from;
            band->to = to;
            int len = to > from ? to - from : to + 1440 - from; /* to == from: 1440 */
            for (int k = 0; k < len; k++) {
                int minute = (from + k) % 1440;
                unsigned char prev = r->band_of_minute[minute];
                if (prev != NO_BAND) {
                    char at[6];
                    fmt_minute(minute, at);
                    jc_err(c, "overlaps band \"%s\" from %s", r->bands[prev].name ? r->bands[prev].name : "?", at);
                    tiled = 0;
                    break;
                }
                r->band_of_minute[minute] = (unsigned char)i;
            }
        }
        jc_pop(c, m2);
    }
    if (tiled) {
        for (int minute = 0; minute < 1440; minute++) {
            if (r->band_of_minute[minute] != NO_BAND)
                continue;
            int end = minute;
            while (end < 1440 && r->band_of_minute[end] == NO_BAND)
                end++;
            char a[6], b[6];
            fmt_minute(minute, a);
            fmt_minute(end % 1440, b);
            jc_err(c, "no band covers %s to %s: bands must cover the 24 hours exactly once", a, b);
            minute = end;
        }
    }
out:
    jc_pop(c, mark);
}

static void load_first_period(jc_t *c, json_t *obj, cmn_tariff_rules_t *r)
{
    static const char *const keys[] = {"minutes", "price", NULL};
    json_t *fp;
    if (jc_obj(c, obj, "first_period", 0, &fp) != 1)
        return;
    size_t mark = jc_push_key(c, "first_period");
    jc_only_keys(c, fp, keys);
    int64_t minutes = 0, price = 0;
    int ok = jc_int(c, fp, "minutes", 1, 1, CMN_TARIFF_MAX_MINUTES, &minutes) == 1;
    ok &= jc_int(c, fp, "price", 1, 0, CMN_TARIFF_MAX_PRICE, &price) == 1;
    if (ok) {
        r->has_first = 1;
        r->first_minutes = minutes;
        r->first_price = price;
    }
    jc_pop(c, mark);
}

/* Fields shared by the top level and the classes.  `is_class`: null removes an inherited field. */
static void load_common(jc_t *c, json_t *obj, cmn_tariff_rules_t *r, int is_class)
{
    int64_t v;
    int b;
    json_t *arr;

    if (json_object_get(obj, "free_minutes") != NULL)
        r->free_minutes = 0;
    if (jc_int(c, obj, "free_minutes", 0, 0, CMN_TARIFF_MAX_MINUTES, &v) == 1)
        r->free_minutes = v;
    if (json_object_get(obj, "free_deducted") != NULL)
        r->free_deducted = 0;
    if (jc_bool(c, obj, "free_deducted", 0, &b) == 1)
        r->free_deducted = b;
    if (json_object_get(obj, "first_period") != NULL)
        r->has_first = 0;
    load_first_period(c, obj, r);
    if (json_object_get(obj, "cap_24h") != NULL)
        r->has_cap_24h = 0;
    if (jc_int(c, obj, "cap_24h", 0, 0, CMN_TARIFF_MAX_CAP, &v) == 1) {
        r->has_cap_24h = 1;
        r->cap_24h = v;
    }
    json_t *jb = json_object_get(obj, "bands");
    if (is_class && jb != NULL && json_is_null(jb)) {
        jc_err_at(c, "bands", "cannot be removed: a class needs bands (omit it to inherit)");
        return;
    }
    if (jc_arr(c, obj, "bands", !is_class, &arr) == 1) {
        /* The class's own bands replace the inherited ones. */
        for (int i = 0; i < r->nbands; i++)
            cmn_free(r->bands[i].name);
        cmn_free(r->bands);
        r->bands = NULL;
        r->nbands = 0;
        load_bands(c, arr, r);
    }
}

static void copy_rules(cmn_tariff_rules_t *dst, const cmn_tariff_rules_t *src)
{
    *dst = *src;
    dst->vclass = NULL;
    dst->bands = NULL;
    if (src->nbands > 0) {
        dst->bands = cmn_xcalloc((size_t)src->nbands, sizeof *dst->bands);
        for (int i = 0; i < src->nbands; i++) {
            dst->bands[i] = src->bands[i];
            dst->bands[i].name = src->bands[i].name ? cmn_xstrdup(src->bands[i].name) : NULL;
        }
    }
}

static void load_classes(jc_t *c, json_t *doc, cmn_tariff_t *t)
{
    static const char *const keys[] = {"free_minutes", "free_deducted", "first_period", "bands",
                                       "cap_24h",      "discount_percent", NULL};
    json_t *classes;
    if (jc_obj(c, doc, "classes", 0, &classes) != 1)
        return;
    size_t mark = jc_push_key(c, "classes");
    size_t n = json_object_size(classes);
    t->classes = cmn_xcalloc(n ? n : 1, sizeof *t->classes);
    const char *name;
    json_t *cls;
    json_object_foreach(classes, name, cls)
    {
        size_t m2 = jc_push_key(c, name);
        if (!jc_is_ident(name, 32)) {
            jc_err(c, "class names use only letters, digits and _ . : - (at most 32)");
        } else if (!json_is_object(cls)) {
            jc_err(c, "must be an object");
        } else {
            jc_only_keys(c, cls, keys);
            cmn_tariff_rules_t *r = &t->classes[t->nclasses++];
            copy_rules(r, &t->base);
            r->vclass = cmn_xstrdup(name);
            load_common(c, cls, r, 1);
            int64_t v;
            if (jc_int(c, cls, "discount_percent", 0, 0, 100, &v) == 1)
                r->discount_percent = (int)v;
        }
        jc_pop(c, m2);
    }
    jc_pop(c, mark);
}

static char *sha256_prefix(const char *text)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    static const char hex[] = "0123456789abcdef";
    char *out = cmn_xalloc(17);
    if (EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < 8) {
        memcpy(out, "0000000000000000", 17);
        return out;
    }
    for (int i = 0; i < 8; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[16] = '\0';
    return out;
}

void cmn_tariff_free(cmn_tariff_t *t)
{
    if (t == NULL)
        return;
    rules_dispose(&t->base);
    for (int i = 0; i < t->nclasses; i++)
        rules_dispose(&t->classes[i]);
    cmn_free(t->classes);
    cmn_tz_free(t->tz);
    cmn_free(t->id);
    cmn_free(t->currency);
    cmn_free(t->version);
    cmn_free(t->canonical);
    cmn_free(t);
}

int cmn_tariff_load_json(const char *origin, json_t *doc, cmn_tariff_t **out, cmn_diag_t *diag)
{
    static const char *const keys[] = {"id",           "currency",    "timezone", "free_minutes",
                                       "free_deducted", "first_period", "bands",    "cap_24h",
                                       "classes",      NULL};
    jc_t c;
    const char *s;
    cmn_tariff_t *t = cmn_xcalloc(1, sizeof *t);

    *out = NULL;
    jc_init(&c, origin, diag);
    if (!json_is_object(doc)) {
        jc_err(&c, "a tariff must be a JSON object");
        goto fail;
    }
    if (json_object_get(doc, "discount_percent") != NULL)
        jc_err_at(&c, "discount_percent", "is only allowed inside a class of \"classes\"");
    else
        jc_only_keys(&c, doc, keys);
    if (jc_ident(&c, doc, "id", 1, 64, &s) == 1)
        t->id = cmn_xstrdup(s);
    if (jc_str(&c, doc, "currency", 1, 3, &s) == 1) {
        if (cmn_currency_check(s, &t->digits) != 0)
            jc_err_at(&c, "currency", "must be an ISO 4217 code such as \"CNY\" (got \"%s\")", s);
        else
            t->currency = cmn_xstrdup(s);
    }
    if (jc_str(&c, doc, "timezone", 1, 64, &s) == 1 && cmn_tz_new(s, &t->tz) != 0)
        jc_err_at(&c, "timezone", "unknown IANA time zone \"%s\"", s);
    load_common(&c, doc, &t->base, 0);
    load_classes(&c, doc, t);
    if (c.errors > 0)
        goto fail;

    /* Sorted keys, no white space: the same content gives the same version whatever its layout. */
    t->canonical = cmn_json_dump(doc, JSON_COMPACT | JSON_SORT_KEYS);
    if (t->canonical == NULL) {
        jc_err(&c, "cannot serialise the tariff");
        goto fail;
    }
    t->version = sha256_prefix(t->canonical);
    *out = t;
    return 0;
fail:
    cmn_tariff_free(t);
    return CMN_ECONFIG;
}

int cmn_tariff_load_text(const char *origin, const char *text, size_t len, cmn_tariff_t **out,
                         cmn_diag_t *diag)
{
    json_t *doc;
    *out = NULL;
    int rc = jc_load_text(origin, text, len, diag, &doc);
    if (rc != 0)
        return rc;
    rc = cmn_tariff_load_json(origin, doc, out, diag);
    json_decref(doc);
    return rc;
}

int cmn_tariff_load_file(const char *path, cmn_tariff_t **out, cmn_diag_t *diag)
{
    json_t *doc;
    *out = NULL;
    int rc = jc_load_file(path, diag, &doc);
    if (rc != 0)
        return rc;
    rc = cmn_tariff_load_json(path, doc, out, diag);
    json_decref(doc);
    return rc;
}

const char *cmn_tariff_id(const cmn_tariff_t *t)
{
    return t->id;
}

const char *cmn_tariff_version(const cmn_tariff_t *t)
{
    return t->version;
}

const char *cmn_tariff_currency(const cmn_tariff_t *t)
{
    return t->currency;
}

int cmn_tariff_fraction_digits(const cmn_tariff_t *t)
{
    return t->digits;
}

const char *cmn_tariff_timezone(const cmn_tariff_t *t)
{
    return cmn_tz_name(t->tz);
}

const char *cmn_tariff_canonical(const cmn_tariff_t *t)
{
    return t->canonical;
}

const cmn_tariff_rules_t *cmn_tariff_rules(const cmn_tariff_t *t, const char *vclass)
{
    if (vclass != NULL) {
        for (int i = 0; i < t->nclasses; i++) {
            if (strcmp(t->classes[i].vclass, vclass) == 0)
                return &t->classes[i];
        }
    }
    return &t->base;
}

int cmn_tariff_utc_offset(const cmn_tariff_t *t, cmn_instant_t at)
{
    int off = 0;
    if (cmn_tz_offset(t->tz, at, &off, NULL, NULL) != 0)
        return 0;
    return off;
}

/* ---- the fee engine ---------------------------------------------------------------------- */

struct walk {
    cmn_tz_t *tz;
    int offset;
    cmn_instant_t off_from, off_until; /* the offset holds on [off_from, off_until) */
    int64_t wall_day[MAX_BANDS];       /* cache of band occurrence beginnings per local day */
    cmn_instant_t wall_start[MAX_BANDS];
};

static int local_time(struct walk *w, cmn_instant_t t, int64_t *local)
{
    if (t < w->off_from || t >= w->off_until) {
        int rc = cmn_tz_offset(w->tz, t, &w->offset, &w->off_from, &w->off_until);
        if (rc != 0)
            return rc;
    }
    *local = t + w->offset;
    return 0;
}

/*
 * The local day on which the occurrence of band b that contains t began: the latest day d whose
 * beginning (the first instant the wall clock reaches the band's `from` on day d) is not after t.
 * Comparing instants rather than wall times keeps a repeated hour in the occurrence it belongs to.
 */
static int occurrence(struct walk *w, const cmn_band_t *band, int b, cmn_instant_t t,
                      int64_t local, int64_t *occ)
{
    int64_t d = cmn_floordiv(local, 86400);
    if (w->wall_day[b] != d) {
        int rc = cmn_tz_wall_start(w->tz, d, band->from, &w->wall_start[b]);
        if (rc != 0)
            return rc;
        w->wall_day[b] = d;
    }
    *occ = w->wall_start[b] <= t ? d : d - 1;
    return 0;
}

/* Growable arrays for the explanation. */
struct rows {
    cmn_fee_row_t *v;
    size_t n, cap;
};

struct group { /* a band occurrence or a window, for the caps of the explanation */
    cmn_cap_kind_t kind;
    int band;
    int64_t key; /* occurrence day or window */
    int64_t before, after;
};

struct groups {
    struct group *v;
    size_t n, cap;
};

static void add_row(struct rows *rs, const cmn_fee_row_t *u)
{
    if (rs->n > 0) {
        cmn_fee_row_t *last = &rs->v[rs->n - 1];
        if (!last->first_period && !u->first_period && last->band == u->band &&
            last->occurrence == u->occurrence && last->window == u->window &&
            last->unit_secs == u->unit_secs && last->unit_price == u->unit_price &&
            last->charged_each == u->charged_each && last->end == u->start) {
            last->count++;
            last->end = u->end;
            return;
        }
    }
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? rs->cap * 2 : 16;
        rs->v = cmn_xrealloc(rs->v, rs->cap * sizeof *rs->v);
    }
    rs->v[rs->n++] = *u;
}

/* Adds to the group (kind, band, key), which is the latest of its kind and band if it exists. */
static void add_group(struct groups *gs, cmn_cap_kind_t kind, int band, int64_t key,
                      int64_t before, int64_t after)
{
    for (size_t i = gs->n; i-- > 0;) {
        struct group *g = &gs->v[i];
        if (g->kind == kind && g->band == band) {
            if (g->key == key) {
                g->before += before;
                g->after += after;
                return;
            }
            break;
        }
    }
    if (gs->n == gs->cap) {
        gs->cap = gs->cap ? gs->cap * 2 : 8;
        gs->v = cmn_xrealloc(gs->v, gs->cap * sizeof *gs->v);
    }
    gs->v[gs->n++] = (struct group){kind, band, key, before, after};
}

void cmn_fee_dispose(cmn_fee_t *fee)
{
    cmn_free(fee->rows);
    cmn_free(fee->caps);
    fee->rows = NULL;
    fee->caps = NULL;
    fee->nrows = 0;
    fee->ncaps = 0;
}

static void finish_caps(cmn_fee_t *fee, struct groups *gs, const cmn_tariff_rules_t *r)
{
    size_t kept = 0;
    for (size_t i = 0; i < gs->n; i++) {
        if (gs->v[i].after < gs->v[i].before)
            kept++;
    }
    if (kept == 0)
        return;
    fee->caps = cmn_xcalloc(kept, sizeof *fee->caps);
    for (size_t i = 0; i < gs->n; i++) {
        struct group *g = &gs->v[i];
        if (g->after >= g->before)
            continue;
        cmn_fee_cap_t *cap = &fee->caps[fee->ncaps++];
        cap->kind = g->kind;
        cap->band = g->band;
        cap->before = g->before;
        cap->after = g->after;
        if (g->kind == CMN_CAP_BAND) {
            cap->occurrence = g->key;
            cap->cap = r->bands[g->band].cap;
        } else {
            cap->window = g->key;
            cap->cap = r->cap_24h;
        }
    }
}

int cmn_tariff_fee(const cmn_tariff_t *t, const char *vclass, cmn_instant_t entry,
                   cmn_instant_t exit, int flags, cmn_fee_t *fee)
{
    const cmn_tariff_rules_t *r = cmn_tariff_rules(t, vclass);
    int explain = (flags & CMN_FEE_EXPLAIN) != 0;
    struct walk w;
    struct rows rows = {0};
    struct groups groups = {0};
    int64_t band_occ[MAX_BANDS], band_sum[MAX_BANDS];
    int64_t window = -1, window_sum = 0, total = 0, units = 0;
    int rc = 0;

    memset(fee, 0, sizeof *fee);
    fee->entry = entry;
    fee->exit = exit;
    fee->rules = r;
    fee->reason = CMN_FEE_FREE_PERIOD;
    fee->charge_start = entry;
    if (exit < entry || exit - entry > CMN_TARIFF_MAX_STAY)
        return CMN_ERANGE;
    if (exit - entry <= r->free_minutes * 60)
        return 0;
    cmn_instant_t s = r->free_deducted ? entry + r->free_minutes * 60 : entry;
    fee->charge_start = s;
    if (s >= exit) {
        fee->reason = CMN_FEE_NO_CHARGE;
        return 0;
    }
    fee->reason = CMN_FEE_CHARGED;

    w.tz = t->tz;
    w.off_from = 1;
    w.off_until = 0; /* empty: the first lookup asks ICU */
    for (int i = 0; i < r->nbands; i++) {
        w.wall_day[i] = INT64_MIN;
        band_occ[i] = INT64_MIN;
        band_sum[i] = 0;
    }

    cmn_instant_t at = s;
    int first = r->has_first;
    while (at < exit) {
        int64_t local;
        rc = local_time(&w, at, &local);
        if (rc != 0)
            goto out;
        int b = r->band_of_minute[cmn_floormod(local, 86400) / 60];
        const cmn_band_t *band = &r->bands[b];
        int64_t len = first ? r->first_minutes * 60 : band->unit_secs;
        int64_t price = first ? r->first_price : band->unit_price;
        int64_t occ = 0;

        /* Step 5: the band cap, per occurrence. */
        int64_t p1 = price;
        if (band->has_cap || explain) {
            rc = occurrence(&w, band, b, at, local, &occ);
            if (rc != 0)
                goto out;
        }
        if (band->has_cap) {
            if (band_occ[b] != occ) {
                band_occ[b] = occ;
                band_sum[b] = 0;
            }
            int64_t room = band->cap - band_sum[b];
            if (p1 > room)
                p1 = room;
            band_sum[b] += p1;
        }
        /* Step 6: the 24-hour cap on the prices after step 5, per window from S. */
        int64_t win = (at - s) / 86400;
        int64_t p2 = p1;
        if (r->has_cap_24h) {
            if (win != window) {
                window = win;
                window_sum = 0;
            }
            int64_t room = r->cap_24h - window_sum;
            if (p2 > room)
                p2 = room;
            window_sum += p2;
        }
        total += p2;
        units++;

        if (explain) {
            cmn_fee_row_t u = {at, at + len, first, b, occ, win, len, 1, price, p2};
            add_row(&rows, &u);
            if (band->has_cap)
                add_group(&groups, CMN_CAP_BAND, b, occ, price, p1);
            if (r->has_cap_24h)
                add_group(&groups, CMN_CAP_24H, -1, win, p1, p2);
        }
        first = 0;
        at += len;
    }

    fee->subtotal = total;
    fee->units = units;
    /* Step 7: the discount, rounded half up to the minor unit. */
    fee->amount = (total * (100 - r->discount_percent) + 50) / 100;
    fee->discount = total - fee->amount;
    if (explain) {
        fee->rows = rows.v;
        fee->nrows = rows.n;
        rows.v = NULL;
        finish_caps(fee, &groups, r);
    }
out:
    cmn_free(rows.v);
    cmn_free(groups.v);
    return rc;
}
