#include "normalize.h"

#include <errno.h>
#include <http_parser.h>
#include <string.h>
#include <strings.h>

#include "cmn/buf.h"
#include "cmn/err.h"
#include "cmn/json.h"
#include "cmn/mem.h"
#include "cmn/time.h"

/* The body cap plus room for a request line and headers. */
#define FILE_MAX (LPR_MAX_BODY + (64u << 10))
#define CTYPE_MAX 1024

/* ------------------------------------------------------------------------------------------ */
/* JSON form of a read */

static json_t *str_or_null(const char *s)
{
    json_t *v = s != NULL ? json_string(s) : NULL;

    return v != NULL ? v : json_null();
}

static json_t *conf_or_null(double c)
{
    return c == LPR_CONF_UNKNOWN ? json_null() : json_real(c);
}

static void set_if(json_t *o, const char *key, const char *value)
{
    if (value != NULL && value[0] != '\0')
        json_object_set_new(o, key, str_or_null(value));
}

/* RFC 3339 in UTC with milliseconds: 2025-03-14T09:42:17.412Z. */
static json_t *ts_json(const lpr_read_t *r)
{
    char buf[CMN_RFC3339_MAX + 8];
    int n;

    if (!r->has_ts)
        return json_null();
    n = cmn_rfc3339_format(r->ts, 0, 1, buf, sizeof buf);
    if (n < 1 || (size_t)n + 4 >= sizeof buf || buf[n - 1] != 'Z')
        return json_null();
    snprintf(buf + n - 1, sizeof buf - (size_t)n + 1, ".%03dZ", (int)cmn_floormod(r->ts_ms, 1000));
    return json_string(buf);
}

json_t *lpr_read_to_json(const lpr_read_t *r, lpr_format_t format)
{
    json_t *o = json_object(), *cands = json_array();

    if (o == NULL || cands == NULL) {
        json_decref(o);
        json_decref(cands);
        return NULL;
    }
    for (int i = 0; i < r->ncandidates && i < LPR_MAX_CANDIDATES; i++) {
        json_t *c = json_object();
        json_object_set_new(c, "plate", str_or_null(r->candidates[i].plate));
        json_object_set_new(c, "confidence", conf_or_null(r->candidates[i].confidence));
        json_array_append_new(cands, c);
    }
    json_object_set_new(o, "plate", r->unreadable ? json_null() : str_or_null(r->plate));
    json_object_set_new(o, "unreadable", json_boolean(r->unreadable));
    json_object_set_new(o, "confidence", conf_or_null(r->confidence));
    json_object_set_new(o, "candidates", cands);
    json_object_set_new(o, "ts", ts_json(r));
    json_object_set_new(o, "vehicle_class", str_or_null(r->vclass));
    json_object_set_new(o, "source", str_or_null(r->source));
    json_object_set_new(o, "format", json_string(lpr_format_name(format)));
    json_object_set_new(o, "plate_raw", str_or_null(r->plate_raw));
    if (!r->unreadable)
        set_if(o, "plate_kind", cmn_plate_kind_name(r->kind));
    set_if(o, "unreadable_reason", r->unreadable_reason);
    set_if(o, "plate_color", r->plate_color);
    set_if(o, "camera_direction", r->camera_direction);
    set_if(o, "camera", r->camera);
    set_if(o, "source_ref", r->source_ref);
    return o;
}

/* ------------------------------------------------------------------------------------------ */
/* Raw HTTP request files (http-parser) */

struct req {
    char field[32];
    size_t field_len;
    int in_value;    /* the last callback was a header value */
    int is_ctype;    /* the current header is Content-Type */
    int ctype_count; /* Content-Type headers seen */
    char ctype[CTYPE_MAX];
    size_t ctype_len;
    int framed; /* Content-Length or chunked: http-parser delivers the body */
    int complete;
    int rc;
    const char *why;
    cmn_buf_t body;
};

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct req *q = p->data;

    if (q->in_value) {
        q->field_len = 0;
        q->in_value = 0;
    }
    /* A name longer than the array is not Content-Type; keep a prefix that cannot match. */
    if (q->field_len + len < sizeof q->field) {
        memcpy(q->field + q->field_len, at, len);
        q->field_len += len;
    } else {
        q->field_len = sizeof q->field - 1;
    }
    q->field[q->field_len] = '\0';
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct req *q = p->data;

    if (!q->in_value) {
        q->in_value = 1;
        q->is_ctype = strcasecmp(q->field, "Content-Type") == 0;
        if (q->is_ctype && ++q->ctype_count > 1) {
            q->why = "more than one Content-Type header";
            return 1;
        }
    }
    if (!q->is_ctype)
        return 0;
    if (q->ctype_len + len >= sizeof q->ctype) {
        q->why = "Content-Type header too long";
        return 1;
    }
    memcpy(q->ctype + q->ctype_len, at, len);
    q->ctype_len += len;
    q->ctype[q->ctype_len] = '\0';
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct req *q = p->data;

    q->framed = (p->flags & (F_CHUNKED | F_CONTENTLENGTH)) != 0;
    /* Unframed: no body for http-parser; the caller takes the rest of the file. */
    return q->framed ? 0 : 1;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct req *q = p->data;

    q->rc = cmn_buf_append(&q->body, at, len);
    if (q->rc != 0) {
        q->why = q->rc == CMN_ETOOBIG ? "request body too large" : "out of memory";
        return 1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct req *q = p->data;

    q->complete = 1;
    http_parser_pause(p, 1); /* whatever follows (a stray newline) is not a second request */
    return 0;
}

/* "METHOD target HTTP/1.x" on the first line. */
static int is_http_request(const char *buf, size_t len)
{
    const char *nl = memchr(buf, '\n', len < 8192 ? len : 8192);
    size_t n, i = 0;

    if (nl == NULL)
        return 0;
    n = (size_t)(nl - buf);
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    while (i < n && buf[i] >= 'A' && buf[i] <= 'Z')
        i++;
    if (i == 0 || i >= n || buf[i] != ' ')
        return 0;
    return n >= 9 &&
           (memcmp(buf + n - 9, " HTTP/1.1", 9) == 0 || memcmp(buf + n - 9, " HTTP/1.0", 9) == 0);
}

/*
 * Splits a raw request into Content-Type and body.  The body is q->body (framed) or the bytes after
 * the head (unframed, *rest set).  Returns 0 or CMN_EPARSE / CMN_ETOOBIG / CMN_ENOMEM with q->why.
 */
static int split_request(const char *buf, size_t len, struct req *q, size_t *rest)
{
    http_parser_settings s;
    http_parser p;
    size_t n;

    memset(&s, 0, sizeof s);
    s.on_header_field = on_header_field;
    s.on_header_value = on_header_value;
    s.on_headers_complete = on_headers_complete;
    s.on_body = on_body;
    s.on_message_complete = on_message_complete;
    http_parser_init(&p, HTTP_REQUEST);
    p.data = q;
    n = http_parser_execute(&p, &s, buf, len);
    if (q->complete && HTTP_PARSER_ERRNO(&p) == HPE_PAUSED) {
        *rest = q->framed ? len : n;
        return 0;
    }
    if (q->why == NULL && HTTP_PARSER_ERRNO(&p) == HPE_OK)
        q->why = (p.flags & (F_CHUNKED | F_CONTENTLENGTH)) != 0
                     ? "truncated HTTP request: the body is shorter than announced"
                     : "truncated HTTP request head";
    if (q->why == NULL)
        q->why = http_errno_description(HTTP_PARSER_ERRNO(&p));
    return q->rc != 0 ? q->rc : CMN_EPARSE;
}

static int read_file(FILE *f, cmn_buf_t *b)
{
    char chunk[65536];
    size_t n;
    int rc = 0;

    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        rc = cmn_buf_append(b, chunk, n);
        if (rc != 0)
            return rc;
    }
    return ferror(f) ? CMN_EIO : 0;
}

int lpr_normalize_file(const char *path, FILE *out, FILE *err)
{
    int rc = 2, prc;
    FILE *f = NULL;
    cmn_buf_t file;
    struct req *q = cmn_xcalloc(1, sizeof *q);
    const char *ctype = NULL, *body;
    size_t ctype_len = 0, body_len, rest = 0;
    lpr_result_t *res = cmn_xalloc(sizeof *res);
    json_t *j = NULL;
    char *line = NULL;

    cmn_buf_init(&file, FILE_MAX);
    cmn_buf_init(&q->body, LPR_MAX_BODY);
    f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(err, "lpr-bridge: %s: cannot open: %s\n", path, strerror(errno));
        goto out;
    }
    prc = read_file(f, &file);
    if (prc != 0) {
        fprintf(err, "lpr-bridge: %s: %s\n", path,
                prc == CMN_ETOOBIG ? "file too large"
                : prc == CMN_EIO   ? "read error"
                                   : cmn_strerror(prc));
        goto out;
    }
    body = file.base != NULL ? file.base : "";
    body_len = file.len;
    if (is_http_request(body, body_len)) {
        prc = split_request(body, body_len, q, &rest);
        if (prc != 0) {
            fprintf(err, "lpr-bridge: %s: %s\n", path, q->why);
            goto out;
        }
        if (q->ctype_count > 0) {
            ctype = q->ctype;
            ctype_len = q->ctype_len;
        }
        if (q->framed) {
            body = q->body.base != NULL ? q->body.base : "";
            body_len = q->body.len;
        } else {
            body += rest;
            body_len -= rest;
        }
    }
    prc = lpr_parse(ctype, ctype_len, body, body_len, res);
    if (prc != 0) {
        fprintf(err, "lpr-bridge: %s: %s\n", path, res->error);
        goto out;
    }
    if (res->nreads == 1) {
        j = lpr_read_to_json(&res->read, res->format);
        line = j != NULL ? cmn_json_dump(j, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
        if (line == NULL) {
            fprintf(err, "lpr-bridge: %s: out of memory\n", path);
            goto out;
        }
        fprintf(out, "%s\n", line);
    }
    rc = fflush(out) == 0 ? 0 : 2;
    if (rc != 0)
        fprintf(err, "lpr-bridge: %s: cannot write the output: %s\n", path, strerror(errno));
out:
    if (f != NULL)
        fclose(f);
    cmn_free(line);
    json_decref(j);
    cmn_buf_dispose(&file);
    cmn_buf_dispose(&q->body);
    cmn_free(q);
    cmn_free(res);
    return rc;
}
