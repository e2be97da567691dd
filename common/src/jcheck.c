#include "jcheck_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cmn/buf.h"
#include "cmn/err.h"

void jc_init(jc_t *c, const char *origin, cmn_diag_t *diag)
{
    c->origin = origin;
    c->diag = diag;
    c->errors = 0;
    c->path[0] = '$';
    c->path[1] = '\0';
    c->plen = 1;
}

static void vreport(jc_t *c, const char *extra, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void vreport(jc_t *c, const char *extra, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    c->errors++;
    if (extra != NULL)
        cmn_diag_add(c->diag, "%s: %s.%s: %s", c->origin, c->path, extra, msg);
    else
        cmn_diag_add(c->diag, "%s: %s: %s", c->origin, c->path, msg);
}

void jc_err(jc_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(c, NULL, fmt, ap);
    va_end(ap);
}

void jc_err_at(jc_t *c, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(c, key, fmt, ap);
    va_end(ap);
}

static int plain_key(const char *key)
{
    if (*key == '\0')
        return 0;
    for (const char *p = key; *p; p++) {
        char ch = *p;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-'))
            return 0;
    }
    return 1;
}

size_t jc_push_key(jc_t *c, const char *key)
{
    size_t mark = c->plen;
    int n;
    if (plain_key(key))
        n = snprintf(c->path + c->plen, sizeof c->path - c->plen, ".%s", key);
    else
        n = snprintf(c->path + c->plen, sizeof c->path - c->plen, "[\"%s\"]", key);
    if (n > 0)
        c->plen += (size_t)n < sizeof c->path - c->plen ? (size_t)n : sizeof c->path - c->plen - 1;
    return mark;
}

size_t jc_push_index(jc_t *c, size_t i)
{
    size_t mark = c->plen;
    int n = snprintf(c->path + c->plen, sizeof c->path - c->plen, "[%zu]", i);
    if (n > 0)
        c->plen += (size_t)n < sizeof c->path - c->plen ? (size_t)n : sizeof c->path - c->plen - 1;
    return mark;
}

void jc_pop(jc_t *c, size_t mark)
{
    c->plen = mark;
    c->path[mark] = '\0';
}

void jc_only_keys(jc_t *c, json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a != NULL; a++) {
            if (strcmp(*a, key) == 0) {
                ok = 1;
                break;
            }
        }
        if (!ok) {
            size_t m = jc_push_key(c, key);
            jc_err(c, "unknown field");
            jc_pop(c, m);
        }
    }
}

static const char *type_name(json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number with a fraction";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "something else";
}

/* Looks up a member: NULL when absent or null (reporting if required). */
static json_t *member(jc_t *c, json_t *obj, const char *key, int required)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v)) {
        if (required)
            jc_err_at(c, key, "required field is missing");
        return NULL;
    }
    return v;
}

int jc_int(jc_t *c, json_t *obj, const char *key, int required, int64_t min, int64_t max,
           int64_t *out)
{
    json_t *v = member(c, obj, key, required);
    if (v == NULL)
        return 0;
    if (!json_is_integer(v)) {
        jc_err_at(c, key, "must be an integer from %lld to %lld, not %s", (long long)min,
                  (long long)max, type_name(v));
        return -1;
    }
    json_int_t n = json_integer_value(v);
    if (n < min || n > max) {
        jc_err_at(c, key, "must be an integer from %lld to %lld (got %lld)", (long long)min,
                  (long long)max, (long long)n);
        return -1;
    }
    *out = n;
    return 1;
}

int jc_bool(jc_t *c, json_t *obj, const char *key, int required, int *out)
{
    json_t *v = member(c, obj, key, required);
    if (v == NULL)
        return 0;
    if (!json_is_boolean(v)) {
        jc_err_at(c, key, "must be true or false, not %s", type_name(v));
        return -1;
    }
    *out = json_is_true(v);
    return 1;
}

int jc_value_str(jc_t *c, json_t *v, size_t maxlen, const char **out)
{
    if (!json_is_string(v)) {
        jc_err(c, "must be a string, not %s", type_name(v));
        return -1;
    }
    size_t len = json_string_length(v);
    const char *s = json_string_value(v);
    if (len == 0) {
        jc_err(c, "must not be empty");
        return -1;
    }
    if (len > maxlen) {
        jc_err(c, "must be at most %zu bytes long (got %zu)", maxlen, len);
        return -1;
    }
    if (strlen(s) != len) {
        jc_err(c, "must not contain NUL characters");
        return -1;
    }
    *out = s;
    return 1;
}

int jc_str(jc_t *c, json_t *obj, const char *key, int required, size_t maxlen, const char **out)
{
    json_t *v = member(c, obj, key, required);
    if (v == NULL)
        return 0;
    size_t m = jc_push_key(c, key);
    int rc = jc_value_str(c, v, maxlen, out);
    jc_pop(c, m);
    return rc;
}

int jc_is_ident(const char *s, size_t maxlen)
{
    size_t n = strlen(s);
    if (n == 0 || n > maxlen)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-' || ch == '.' || ch == ':'))
            return 0;
    }
    return 1;
}

int jc_value_ident(jc_t *c, json_t *v, size_t maxlen, const char **out)
{
    const char *s;
    int rc = jc_value_str(c, v, maxlen, &s);
    if (rc != 1)
        return rc;
    if (!jc_is_ident(s, maxlen)) {
        jc_err(c, "must use only letters, digits and _ . : - (got \"%s\")", s);
        return -1;
    }
    *out = s;
    return 1;
}

int jc_ident(jc_t *c, json_t *obj, const char *key, int required, size_t maxlen,
             const char **out)
{
    json_t *v = member(c, obj, key, required);
    if (v == NULL)
        return 0;
    size_t m = jc_push_key(c, key);
    int rc = jc_value_ident(c, v, maxlen, out);
    jc_pop(c, m);
    return rc;
}

int jc_obj(jc_t *c, json_t *obj, const char *key, int required, json_t **out)
{
    json_t *v = member(c, obj, key, required);
    if (v == NULL)
        return 0;
    if (!json_is_object(v)) {
        jc_err_at(c, key, "must be an object, not %s", type_name(v));
        return -1;
    }
    *out = v;
    return 1;
}

int jc_arr(jc_t *c, json_t *obj, const char *key, int required, json_t **out)
{
    json_t *v = member(c, obj, key, required);
    if (v == NULL)
        return 0;
    if (!json_is_array(v)) {
        jc_err_at(c, key, "must be an array, not %s", type_name(v));
        return -1;
    }
    *out = v;
    return 1;
}

static int parse_report(const char *origin, json_t *doc, json_error_t *err, cmn_diag_t *diag)
{
    if (doc != NULL && !json_is_object(doc)) {
        cmn_diag_add(diag, "%s: line 1: the document must be a JSON object", origin);
        json_decref(doc);
        return CMN_ECONFIG;
    }
    if (doc == NULL) {
        cmn_diag_add(diag, "%s: line %d, column %d: %s", origin, err->line, err->column,
                     err->text);
        return CMN_ECONFIG;
    }
    return 0;
}

int jc_load_text(const char *origin, const char *text, size_t len, cmn_diag_t *diag,
                 json_t **doc)
{
    json_error_t err;
    *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    int rc = parse_report(origin, *doc, &err, diag);
    if (rc != 0)
        *doc = NULL;
    return rc;
}

int jc_load_file(const char *path, cmn_diag_t *diag, json_t **doc)
{
    cmn_buf_t b;
    char chunk[8192];
    int rc = CMN_EIO;

    *doc = NULL;
    cmn_buf_init(&b, 16u << 20); /* configuration files are small; 16 MiB is a generous cap */
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        cmn_diag_add(diag, "%s: cannot open: %s", path, strerror(errno));
        goto out;
    }
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (cmn_buf_append(&b, chunk, n) != 0) {
            cmn_diag_add(diag, "%s: file is larger than 16 MiB", path);
            goto out;
        }
    }
    if (ferror(f)) {
        cmn_diag_add(diag, "%s: read error: %s", path, strerror(errno));
        goto out;
    }
    rc = jc_load_text(path, b.base ? b.base : "", b.len, diag, doc);
out:
    if (f != NULL)
        fclose(f);
    cmn_buf_dispose(&b);
    return rc;
}
