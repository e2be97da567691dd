#include "cmn/json.h"

#include <string.h>

#include "cmn/err.h"
#include "cmn/mem.h"

static int dump_to_buf(const char *chunk, size_t n, void *data)
{
    return cmn_buf_append(data, chunk, n) == 0 ? 0 : -1;
}

/* One pass through jansson's serialiser (json_dumpb would take two: one to size, one to write). */
char *cmn_json_dump(const json_t *j, size_t flags)
{
    cmn_buf_t b;
    cmn_buf_init(&b, (size_t)1 << 30);
    if (json_dump_callback(j, dump_to_buf, &b, flags) != 0) {
        cmn_buf_dispose(&b);
        return NULL;
    }
    if (b.base == NULL && cmn_buf_append(&b, "", 0) != 0)
        return NULL; /* jansson wrote nothing: cannot happen for a value it accepted */
    return cmn_buf_take(&b, NULL);
}

/* Printable ASCII but the quote and the backslash: the bytes jansson writes unchanged.  Any other
 * byte (controls, DEL, UTF-8 sequences) sends the string through jansson's own escaping. */
static int plain(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
            return 0;
    }
    return 1;
}

int cmn_json_put_string(cmn_buf_t *b, const char *s, size_t n)
{
    if (plain(s, n)) {
        size_t start = b->len;
        int rc = cmn_buf_append(b, "\"", 1);
        rc = rc ? rc : cmn_buf_append(b, s, n);
        rc = rc ? rc : cmn_buf_append(b, "\"", 1);
        if (rc != 0 && b->base != NULL) {
            b->len = start;
            b->base[start] = '\0';
        }
        return rc;
    }
    json_t *v = json_stringn(s, n);
    if (v == NULL)
        return CMN_EINVAL;
    size_t start = b->len;
    int rc = json_dump_callback(v, dump_to_buf, b, JSON_ENCODE_ANY | JSON_COMPACT) == 0
                 ? 0
                 : CMN_ETOOBIG;
    json_decref(v);
    if (rc != 0 && b->base != NULL) {
        b->len = start;
        b->base[start] = '\0';
    }
    return rc;
}

int cmn_json_put_key(cmn_buf_t *b, const char *key)
{
    size_t n = strlen(key);
    char tmp[64];
    if (n + 3 > sizeof tmp || !plain(key, n)) {
        int rc = cmn_json_put_string(b, key, n);
        return rc ? rc : cmn_buf_append(b, ":", 1);
    }
    tmp[0] = '"';
    memcpy(tmp + 1, key, n);
    tmp[n + 1] = '"';
    tmp[n + 2] = ':';
    return cmn_buf_append(b, tmp, n + 3);
}

int cmn_json_put_int(cmn_buf_t *b, long long v)
{
    char tmp[CMN_INT_CHARS];
    char *p = cmn_int_format(tmp, v);
    return cmn_buf_append(b, p, (size_t)(tmp + sizeof tmp - p));
}
