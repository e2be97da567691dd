/*
 * The explanation of a fee, as JSON (stored on bills, served to drivers and staff) and as text
 * (parkctl fee --explain).  Drivers read these when they dispute a charge, so every number that
 * made the fee is here: the free period, each run of units with its band and price, and each cap
 * that took effect with what it saved.
 */
#include "cmn/tariff.h"

#include <stdio.h>
#include <string.h>

#include "cmn/err.h"
#include "cmn/json.h"
#include "cmn/money.h"
#include "cmn/time.h"

static const char *reason_name(cmn_fee_reason_t r)
{
    switch (r) {
    case CMN_FEE_CHARGED:
        return "charged";
    case CMN_FEE_FREE_PERIOD:
        return "free_period";
    case CMN_FEE_NO_CHARGE:
        return "no_charge";
    }
    return "charged";
}

static void local_str(const cmn_tariff_t *t, cmn_instant_t at, char out[CMN_RFC3339_MAX])
{
    cmn_rfc3339_format(at, cmn_tariff_utc_offset(t, at), 0, out, CMN_RFC3339_MAX);
}

static void set_time(json_t *o, const char *key, const cmn_tariff_t *t, cmn_instant_t at)
{
    char s[CMN_RFC3339_MAX];
    local_str(t, at, s);
    json_object_set_new(o, key, json_string(s));
}

static void set_date(json_t *o, const char *key, int64_t days)
{
    char s[16];
    cmn_date_format(days, s, sizeof s);
    json_object_set_new(o, key, json_string(s));
}

json_t *cmn_fee_to_json(const cmn_tariff_t *t, const cmn_fee_t *fee)
{
    const cmn_tariff_rules_t *r = fee->rules;
    json_t *o = json_object();

    json_object_set_new(o, "amount", json_integer(fee->amount));
    json_object_set_new(o, "currency", json_string(cmn_tariff_currency(t)));
    json_object_set_new(o, "tariff_id", json_string(cmn_tariff_id(t)));
    json_object_set_new(o, "tariff_version", json_string(cmn_tariff_version(t)));
    json_object_set_new(o, "timezone", json_string(cmn_tariff_timezone(t)));
    json_object_set_new(o, "rules", r->vclass ? json_string(r->vclass) : json_string("default"));
    json_object_set_new(o, "reason", json_string(reason_name(fee->reason)));
    set_time(o, "entry", t, fee->entry);
    set_time(o, "exit", t, fee->exit);
    json_object_set_new(o, "duration_seconds", json_integer(fee->exit - fee->entry));
    json_object_set_new(o, "free_minutes", json_integer(r->free_minutes));
    json_object_set_new(o, "free_deducted", json_boolean(r->free_deducted));
    if (fee->reason == CMN_FEE_CHARGED)
        set_time(o, "charge_start", t, fee->charge_start);
    else
        json_object_set_new(o, "charge_start", json_null());
    json_object_set_new(o, "units", json_integer(fee->units));
    json_object_set_new(o, "subtotal", json_integer(fee->subtotal));
    json_object_set_new(o, "discount_percent", json_integer(r->discount_percent));
    json_object_set_new(o, "discount", json_integer(fee->discount));

    json_t *rows = json_array();
    int64_t n = 1;
    for (size_t i = 0; i < fee->nrows; i++) {
        const cmn_fee_row_t *row = &fee->rows[i];
        json_t *j = json_object();
        json_object_set_new(j, "first_unit", json_integer(n));
        json_object_set_new(j, "count", json_integer(row->count));
        set_time(j, "start", t, row->start);
        set_time(j, "end", t, row->end);
        json_object_set_new(j, "band", json_string(r->bands[row->band].name));
        json_object_set_new(j, "first_period", json_boolean(row->first_period));
        set_date(j, "occurrence", row->occurrence);
        json_object_set_new(j, "window", json_integer(row->window));
        json_object_set_new(j, "unit_minutes", json_integer(row->unit_secs / 60));
        json_object_set_new(j, "unit_price", json_integer(row->unit_price));
        json_object_set_new(j, "charged_each", json_integer(row->charged_each));
        json_object_set_new(j, "charged", json_integer(row->charged_each * row->count));
        json_array_append_new(rows, j);
        n += row->count;
    }
    json_object_set_new(o, "rows", rows);

    json_t *caps = json_array();
    for (size_t i = 0; i < fee->ncaps; i++) {
        const cmn_fee_cap_t *cap = &fee->caps[i];
        json_t *j = json_object();
        if (cap->kind == CMN_CAP_BAND) {
            json_object_set_new(j, "kind", json_string("band"));
            json_object_set_new(j, "band", json_string(r->bands[cap->band].name));
            set_date(j, "occurrence", cap->occurrence);
        } else {
            json_object_set_new(j, "kind", json_string("24h"));
            json_object_set_new(j, "window", json_integer(cap->window));
            set_time(j, "from", t, fee->charge_start + cap->window * 86400);
            set_time(j, "to", t, fee->charge_start + (cap->window + 1) * 86400);
        }
        json_object_set_new(j, "cap", json_integer(cap->cap));
        json_object_set_new(j, "before", json_integer(cap->before));
        json_object_set_new(j, "after", json_integer(cap->after));
        json_array_append_new(caps, j);
    }
    json_object_set_new(o, "caps", caps);
    return o;
}

/* ---- the explanation as JSON text, without the tree ------------------------------------------ */

/*
 * cmn_fee_explain_json() writes the members of cmn_fee_to_json() in the same order with the same
 * values, straight into the buffer.  Every exit writes one into its record; the tree of about
 * sixty jansson values, its hash tables and jansson's two serialising passes cost thirty times
 * the fee itself.  Keep the two functions in step: tests/unit/common/test_tariff.c compares their
 * bytes over many stays of every tariff.
 */
struct xw {
    cmn_buf_t *b;
    const cmn_tariff_t *t;
    int rc;
};

static void xw_raw(struct xw *w, const char *s)
{
    if (w->rc == 0)
        w->rc = cmn_buf_puts(w->b, s);
}

/* A member's name: a comma before each but the first of its object, in one append.  The names
 * are this file's own identifiers, which JSON writes as they are. */
static void xw_member(struct xw *w, int *first, const char *key)
{
    char tmp[40];
    size_t n = strlen(key), k = 0;
    if (w->rc != 0)
        return;
    if (n + 4 > sizeof tmp) {
        w->rc = CMN_ETOOBIG;
        return;
    }
    if (!*first)
        tmp[k++] = ',';
    *first = 0;
    tmp[k++] = '"';
    memcpy(tmp + k, key, n);
    k += n;
    tmp[k++] = '"';
    tmp[k++] = ':';
    w->rc = cmn_buf_append(w->b, tmp, k);
}

static void xw_int(struct xw *w, int *first, const char *key, long long v)
{
    xw_member(w, first, key);
    if (w->rc == 0)
        w->rc = cmn_json_put_int(w->b, v);
}

static void xw_str(struct xw *w, int *first, const char *key, const char *v)
{
    xw_member(w, first, key);
    if (w->rc == 0)
        w->rc = cmn_json_put_string(w->b, v, strlen(v));
}

static void xw_bool(struct xw *w, int *first, const char *key, int v)
{
    xw_member(w, first, key);
    xw_raw(w, v ? "true" : "false");
}

static void xw_time(struct xw *w, int *first, const char *key, cmn_instant_t at)
{
    char s[CMN_RFC3339_MAX];
    local_str(w->t, at, s);
    xw_str(w, first, key, s);
}

static void xw_date(struct xw *w, int *first, const char *key, int64_t days)
{
    char s[16];
    cmn_date_format(days, s, sizeof s);
    xw_str(w, first, key, s);
}

int cmn_fee_explain_json(const cmn_tariff_t *t, const cmn_fee_t *fee, cmn_buf_t *out)
{
    const cmn_tariff_rules_t *r = fee->rules;
    struct xw w = {.b = out, .t = t, .rc = 0};
    size_t start = out->len;
    int first = 1;

    /* About 400 bytes and 300 per row: grown once rather than doubling from 64. */
    w.rc = cmn_buf_reserve(out, 512 + 320 * fee->nrows + 200 * fee->ncaps);
    xw_raw(&w, "{");
    xw_int(&w, &first, "amount", fee->amount);
    xw_str(&w, &first, "currency", cmn_tariff_currency(t));
    xw_str(&w, &first, "tariff_id", cmn_tariff_id(t));
    xw_str(&w, &first, "tariff_version", cmn_tariff_version(t));
    xw_str(&w, &first, "timezone", cmn_tariff_timezone(t));
    xw_str(&w, &first, "rules", r->vclass ? r->vclass : "default");
    xw_str(&w, &first, "reason", reason_name(fee->reason));
    xw_time(&w, &first, "entry", fee->entry);
    xw_time(&w, &first, "exit", fee->exit);
    xw_int(&w, &first, "duration_seconds", fee->exit - fee->entry);
    xw_int(&w, &first, "free_minutes", r->free_minutes);
    xw_bool(&w, &first, "free_deducted", r->free_deducted);
    if (fee->reason == CMN_FEE_CHARGED) {
        xw_time(&w, &first, "charge_start", fee->charge_start);
    } else {
        xw_member(&w, &first, "charge_start");
        xw_raw(&w, "null");
    }
    xw_int(&w, &first, "units", fee->units);
    xw_int(&w, &first, "subtotal", fee->subtotal);
    xw_int(&w, &first, "discount_percent", r->discount_percent);
    xw_int(&w, &first, "discount", fee->discount);

    xw_member(&w, &first, "rows");
    xw_raw(&w, "[");
    int64_t n = 1;
    for (size_t i = 0; i < fee->nrows; i++) {
        const cmn_fee_row_t *row = &fee->rows[i];
        int f = 1;
        xw_raw(&w, i > 0 ? ",{" : "{");
        xw_int(&w, &f, "first_unit", n);
        xw_int(&w, &f, "count", row->count);
        xw_time(&w, &f, "start", row->start);
        xw_time(&w, &f, "end", row->end);
        xw_str(&w, &f, "band", r->bands[row->band].name);
        xw_bool(&w, &f, "first_period", row->first_period);
        xw_date(&w, &f, "occurrence", row->occurrence);
        xw_int(&w, &f, "window", row->window);
        xw_int(&w, &f, "unit_minutes", row->unit_secs / 60);
        xw_int(&w, &f, "unit_price", row->unit_price);
        xw_int(&w, &f, "charged_each", row->charged_each);
        xw_int(&w, &f, "charged", row->charged_each * row->count);
        xw_raw(&w, "}");
        n += row->count;
    }
    xw_raw(&w, "]");

    xw_member(&w, &first, "caps");
    xw_raw(&w, "[");
    for (size_t i = 0; i < fee->ncaps; i++) {
        const cmn_fee_cap_t *cap = &fee->caps[i];
        int f = 1;
        xw_raw(&w, i > 0 ? ",{" : "{");
        if (cap->kind == CMN_CAP_BAND) {
            xw_str(&w, &f, "kind", "band");
            xw_str(&w, &f, "band", r->bands[cap->band].name);
            xw_date(&w, &f, "occurrence", cap->occurrence);
        } else {
            xw_str(&w, &f, "kind", "24h");
            xw_int(&w, &f, "window", cap->window);
            xw_time(&w, &f, "from", fee->charge_start + cap->window * 86400);
            xw_time(&w, &f, "to", fee->charge_start + (cap->window + 1) * 86400);
        }
        xw_int(&w, &f, "cap", cap->cap);
        xw_int(&w, &f, "before", cap->before);
        xw_int(&w, &f, "after", cap->after);
        xw_raw(&w, "}");
    }
    xw_raw(&w, "]}");
    if (w.rc != 0 && out->base != NULL) {
        out->len = start;
        out->base[start] = '\0';
    }
    return w.rc;
}

static void duration_str(int64_t secs, char *out, size_t outsz)
{
    int64_t d = secs / 86400, h = secs / 3600 % 24, m = secs / 60 % 60, s = secs % 60;
    if (d > 0)
        snprintf(out, outsz, "%lld d %lld h %lld min %lld s", (long long)d, (long long)h,
                 (long long)m, (long long)s);
    else
        snprintf(out, outsz, "%lld h %lld min %lld s", (long long)h, (long long)m, (long long)s);
}

int cmn_fee_explain_text(const cmn_tariff_t *t, const cmn_fee_t *fee, cmn_buf_t *out)
{
    const cmn_tariff_rules_t *r = fee->rules;
    const char *cur = cmn_tariff_currency(t);
    int digits = cmn_tariff_fraction_digits(t);
    char a[CMN_RFC3339_MAX], b[CMN_RFC3339_MAX], m1[32], m2[32], dur[64];
    int rc = 0;

    rc |= cmn_buf_printf(out, "tariff %s version %s (%s), rules for %s\n", cmn_tariff_id(t),
                         cmn_tariff_version(t), cmn_tariff_timezone(t),
                         r->vclass ? r->vclass : "all other classes");
    local_str(t, fee->entry, a);
    local_str(t, fee->exit, b);
    duration_str(fee->exit - fee->entry, dur, sizeof dur);
    rc |= cmn_buf_printf(out, "stay %s -> %s: %s\n", a, b, dur);
    if (fee->reason == CMN_FEE_FREE_PERIOD) {
        rc |= cmn_buf_printf(out, "within the free period of %lld min: no charge\n",
                             (long long)r->free_minutes);
    } else if (fee->reason == CMN_FEE_NO_CHARGE) {
        rc |= cmn_buf_printf(out, "free period of %lld min deducted: nothing left to charge\n",
                             (long long)r->free_minutes);
    } else {
        local_str(t, fee->charge_start, a);
        if (r->free_minutes > 0)
            rc |= cmn_buf_printf(out, "longer than the free period of %lld min: charged from %s%s\n",
                                 (long long)r->free_minutes, a,
                                 r->free_deducted ? " (free period deducted)" : " (entry)");
        else
            rc |= cmn_buf_printf(out, "charged from %s\n", a);
        rc |= cmn_buf_printf(out, "units:\n");
        int64_t n = 1;
        for (size_t i = 0; i < fee->nrows; i++) {
            const cmn_fee_row_t *row = &fee->rows[i];
            char num[48], day[16];
            local_str(t, row->start, a);
            local_str(t, row->end, b);
            if (row->count == 1)
                snprintf(num, sizeof num, "#%lld", (long long)n);
            else
                snprintf(num, sizeof num, "#%lld-%lld", (long long)n, (long long)(n + row->count - 1));
            cmn_money_format(row->unit_price, digits, m1, sizeof m1);
            cmn_money_format(row->charged_each * row->count, digits, m2, sizeof m2);
            cmn_date_format(row->occurrence, day, sizeof day);
            rc |= cmn_buf_printf(out, "  %-12s %s -> %s  %s%s (%s) window %lld  %lld x %lld min at %s = %s",
                                 num, a, b, row->first_period ? "first period in " : "",
                                 r->bands[row->band].name, day, (long long)row->window,
                                 (long long)row->count, (long long)(row->unit_secs / 60), m1, m2);
            if (row->charged_each != row->unit_price)
                rc |= cmn_buf_printf(out, " (capped)");
            rc |= cmn_buf_puts(out, "\n");
            n += row->count;
        }
        if (fee->ncaps > 0)
            rc |= cmn_buf_printf(out, "caps applied:\n");
        for (size_t i = 0; i < fee->ncaps; i++) {
            const cmn_fee_cap_t *cap = &fee->caps[i];
            char capm[32];
            cmn_money_format(cap->cap, digits, capm, sizeof capm);
            cmn_money_format(cap->before, digits, m1, sizeof m1);
            cmn_money_format(cap->after, digits, m2, sizeof m2);
            if (cap->kind == CMN_CAP_BAND) {
                char day[16];
                cmn_date_format(cap->occurrence, day, sizeof day);
                rc |= cmn_buf_printf(out, "  band cap of \"%s\" begun %s: %s, units %s -> %s\n",
                                     r->bands[cap->band].name, day, capm, m1, m2);
            } else {
                local_str(t, fee->charge_start + cap->window * 86400, a);
                local_str(t, fee->charge_start + (cap->window + 1) * 86400, b);
                rc |= cmn_buf_printf(out, "  24-hour cap on window %lld [%s, %s): %s, units %s -> %s\n",
                                     (long long)cap->window, a, b, capm, m1, m2);
            }
        }
        cmn_money_format(fee->subtotal, digits, m1, sizeof m1);
        rc |= cmn_buf_printf(out, "subtotal %s %s\n", m1, cur);
        if (r->discount_percent > 0) {
            cmn_money_format(fee->discount, digits, m2, sizeof m2);
            rc |= cmn_buf_printf(out, "discount %d%% for %s: -%s %s (rounded half up)\n",
                                 r->discount_percent, r->vclass ? r->vclass : "class", m2, cur);
        }
    }
    cmn_money_format(fee->amount, digits, m1, sizeof m1);
    rc |= cmn_buf_printf(out, "total %s %s (%lld minor units)\n", m1, cur, (long long)fee->amount);
    return rc != 0 ? CMN_ETOOBIG : 0;
}
