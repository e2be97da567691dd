/*
 * Stripe: a charge of the driver's saved customer, POST /v1/charges (form-encoded) with the secret
 * key, and an Idempotency-Key derived from the bill's id, so a retry, a replay after a crash or a
 * second billing process taking the same bill can never charge twice.
 *
 * The key is the bill id for the first attempt and "<bill id>-r<n>" for the n-th: Stripe stores the
 * first answer to a key, declines included, so an attempt the policy schedules after a decline
 * needs a key of its own, while a retry after a timeout, 429 or 5xx (the attempt's outcome unknown)
 * must reuse its attempt's key.  An attempt only gets a new number after a definite decline, so
 * no two keys can both succeed.
 */
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "billing.h"
#include "cmn/buf.h"
#include "cmn/err.h"
#include "cmn/log.h"
#include "cmn/mem.h"

struct call {
    bill_outcome_cb cb;
    void *data;
};

/* RFC 3986 percent-encoding of a form value. */
static void form_value(cmn_buf_t *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            cmn_buf_append(b, p, 1);
        } else {
            char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            cmn_buf_append(b, esc, 3);
        }
    }
}

static void field(cmn_buf_t *b, const char *name, const char *value)
{
    if (b->len > 0)
        cmn_buf_puts(b, "&");
    cmn_buf_puts(b, name);
    cmn_buf_puts(b, "=");
    form_value(b, value);
}

static void copy(char *out, size_t outsz, const char *s)
{
    snprintf(out, outsz, "%s", s ? s : "");
}

void bill_stripe_outcome(long status, int error, const char *body, size_t body_len,
                         const char *should_retry, bill_outcome_t *o)
{
    json_error_t err;
    memset(o, 0, sizeof *o);
    if (error != 0) {
        o->kind = BILL_OUT_TRANSIENT;
        copy(o->code, sizeof o->code, error == CMN_ETIMEOUT ? "timeout" : "network");
        return;
    }
    json_t *doc = json_loadb(body, body_len, 0, &err);
    json_t *e = doc ? json_object_get(doc, "error") : NULL;
    const char *type = json_string_value(json_object_get(e, "type"));
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *decline = json_string_value(json_object_get(e, "decline_code"));
    const char *charge = json_string_value(json_object_get(e, "charge"));

    if (status == 200 && doc != NULL) {
        const char *st = json_string_value(json_object_get(doc, "status"));
        copy(o->ref, sizeof o->ref, json_string_value(json_object_get(doc, "id")));
        const char *object = json_string_value(json_object_get(doc, "object"));
        int refund = object != NULL && strcmp(object, "refund") == 0;
        if (st != NULL && (strcmp(st, "succeeded") == 0 || (refund && strcmp(st, "pending") == 0))) {
            o->kind = BILL_OUT_PAID;
        } else if (st != NULL && strcmp(st, "failed") == 0) {
            o->kind = BILL_OUT_DECLINED;
            copy(o->code, sizeof o->code,
                 json_string_value(json_object_get(doc, "failure_code")));
        } else {
            /* pending: the same key will tell the final state */
            o->kind = BILL_OUT_TRANSIENT;
            copy(o->code, sizeof o->code, st ? st : "unknown_status");
        }
    } else if (status == 402 || (type != NULL && strcmp(type, "card_error") == 0)) {
        o->kind = BILL_OUT_DECLINED;
        copy(o->ref, sizeof o->ref, charge);
        copy(o->code, sizeof o->code, decline ? decline : code ? code : "card_error");
    } else if (status == 429 || status == 409 || status >= 500 || status == 0) {
        o->kind = BILL_OUT_TRANSIENT;
        snprintf(o->code, sizeof o->code, "http_%ld", status);
        if (status >= 500 && should_retry != NULL && strcmp(should_retry, "false") == 0) {
            o->kind = BILL_OUT_ALERT; /* Stripe says a retry cannot succeed */
        }
    } else {
        /* idempotency_error (the key reused with other parameters), authentication, unknown
         * customer...: retrying cannot help and charging blindly could hurt. */
        o->kind = BILL_OUT_ALERT;
        if (type != NULL && strcmp(type, "idempotency_error") == 0)
            copy(o->code, sizeof o->code, "idempotency_error");
        else
            snprintf(o->code, sizeof o->code, "http_%ld_%s", status,
                     code ? code : type ? type : "error");
    }
    json_decref(doc);
}

static void on_response(void *data, const cmn_http_response_t *resp)
{
    struct call *c = data;
    bill_outcome_t o;
    size_t n;
    const char *retry = cmn_http_response_header(resp, "Stripe-Should-Retry", &n);
    char retry_s[8] = "";
    if (retry != NULL)
        snprintf(retry_s, sizeof retry_s, "%.*s", (int)(n < 7 ? n : 7), retry);
    bill_stripe_outcome(resp->status, resp->error, resp->body, resp->body_len,
                        retry ? retry_s : NULL, &o);
    c->cb(c->data, &o);
    cmn_free(c);
}

/* POSTs a form to the Stripe API with the secret key and an idempotency key. */
static int stripe_post(bill_t *b, const cmn_cfg_provider_t *p, const char *path, cmn_buf_t *body,
                       const char *idem, bill_outcome_cb cb, void *data)
{
    cmn_buf_t auth, key, url;
    int rc = CMN_ETOOBIG;
    cmn_buf_init(&auth, 1024);
    cmn_buf_init(&key, 256);
    cmn_buf_init(&url, 2048);
    if (cmn_buf_puts(&auth, "Authorization: Bearer ") != 0 ||
        cmn_buf_append(&auth, p->secret_key.data, p->secret_key.len) != 0 ||
        cmn_buf_printf(&key, "Idempotency-Key: %s", idem) != 0 ||
        cmn_buf_printf(&url, "%s%s", p->base_url, path) != 0 || body->base == NULL)
        goto out;
    const char *headers[] = {auth.base, key.base, "Content-Type: application/x-www-form-urlencoded",
                             "Accept: application/json"};
    cmn_http_request_t req = {
        .method = "POST",
        .url = url.base,
        .headers = headers,
        .nheaders = 4,
        .body = body->base,
        .body_len = body->len,
        .connect_timeout_ms = p->connect_timeout_ms,
        .timeout_ms = p->timeout_ms,
        .max_response_bytes = 1 << 20,
    };
    struct call *c = cmn_xcalloc(1, sizeof *c);
    c->cb = cb;
    c->data = data;
    rc = cmn_http_request(b->http, &req, on_response, c);
    if (rc != 0)
        cmn_free(c);
out:
    /* The key is wiped, not only freed: it must not linger in the heap. */
    if (auth.base != NULL)
        OPENSSL_cleanse(auth.base, auth.len);
    cmn_buf_dispose(&auth);
    cmn_buf_dispose(&key);
    cmn_buf_dispose(&url);
    return rc;
}

int bill_stripe_charge(bill_t *b, const bill_charge_t *ch, bill_outcome_cb cb, void *data)
{
    cmn_buf_t body;
    char amount[24], lower[8], idem[140];
    cmn_buf_init(&body, 4096);
    snprintf(amount, sizeof amount, "%lld", ch->amount);
    for (size_t i = 0; i < sizeof lower - 1; i++) {
        char c = ch->currency[i];
        lower[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        if (c == '\0')
            break;
    }
    lower[sizeof lower - 1] = '\0';
    field(&body, "amount", amount);
    field(&body, "currency", lower);
    field(&body, "customer", ch->payment_ref);
    field(&body, "description", ch->bill);
    field(&body, "metadata[bill]", ch->bill);
    field(&body, "metadata[lot]", ch->lot);
    field(&body, "metadata[driver]", ch->driver);
    if (ch->attempt <= 1)
        snprintf(idem, sizeof idem, "%s", ch->bill);
    else
        snprintf(idem, sizeof idem, "%s-r%d", ch->bill, ch->attempt);
    int rc = stripe_post(b, ch->provider, "/v1/charges", &body, idem, cb, data);
    cmn_buf_dispose(&body);
    return rc;
}

int bill_stripe_refund(bill_t *b, const bill_charge_t *ch, const char *charge_id, bill_outcome_cb cb,
                       void *data)
{
    cmn_buf_t body;
    char amount[24], idem[140];
    cmn_buf_init(&body, 1024);
    snprintf(amount, sizeof amount, "%lld", ch->amount);
    field(&body, "charge", charge_id);
    field(&body, "amount", amount);
    field(&body, "metadata[bill]", ch->bill);
    /* One key per refund of the bill: a retry of this refund is the same refund. */
    snprintf(idem, sizeof idem, "%s-refund%d", ch->bill, ch->attempt);
    int rc = stripe_post(b, ch->provider, "/v1/refunds", &body, idem, cb, data);
    cmn_buf_dispose(&body);
    return rc;
}
