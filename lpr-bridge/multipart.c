/* memmem (glibc declares it for _GNU_SOURCE): linear time, unlike a naive search. */
#define _GNU_SOURCE

#include "multipart.h"

#include <string.h>
#include <strings.h>

#include "cmn/err.h"

/*
 * The body is walked once, front to back.  A delimiter is `--boundary` at the start of a line (the
 * start of the body, or just after an LF), followed either by `--` (the closing delimiter) or by
 * optional spaces and tabs (RFC 2046 transport padding) and a line end.  Anything else that starts
 * with `--boundary` is content: RFC 2046 forbids the boundary inside the content, but a longer line
 * that merely starts with it is not a delimiter.  The CRLF (or LF) before a delimiter belongs to
 * the delimiter, so it is not part of the preceding body.
 *
 * Every search is bounded: memmem for delimiters moves forward only, and a header line is looked
 * for within what is left of the header budget, so the work is linear in the body.
 */

static int is_digit_or_alpha(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* RFC 7230 tchar: what a header name or an unquoted parameter value is made of. */
static int is_tchar(unsigned char c)
{
    return is_digit_or_alpha(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* RFC 2046 bcharsnospace, plus the other tchars that an unquoted boundary parameter may hold. */
static int is_boundary_char(unsigned char c)
{
    return is_tchar(c) || (c != '\0' && strchr("()+_,-./:=?", c) != NULL);
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

int lpr_multipart_boundary_check(const char *b, size_t n)
{
    if (n == 0)
        return CMN_EPARSE;
    if (n > LPR_MULTIPART_BOUNDARY_MAX)
        return CMN_ETOOBIG;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)b[i];
        if (!is_boundary_char(c) && !(c == ' ' && i + 1 < n))
            return CMN_EPARSE;
    }
    return 0;
}

/*
 * Reads one parameter value at value[*pos] (token or quoted-string).  When `out` is not NULL the
 * unquoted value is written there, NUL-terminated; *vlen receives its length either way.
 */
static int read_param_value(const char *value, size_t len, size_t *pos, char *out, size_t outsz,
                            size_t *vlen)
{
    size_t p = *pos, n = 0;
    int too_big = 0;

    if (p < len && value[p] == '"') {
        p++;
        for (;;) {
            char c;
            if (p >= len)
                return CMN_EPARSE; /* unterminated quoted-string */
            c = value[p++];
            if (c == '"')
                break;
            if (c == '\\') {
                if (p >= len)
                    return CMN_EPARSE;
                c = value[p++];
            }
            if (out != NULL && n + 1 < outsz)
                out[n] = c;
            else if (out != NULL)
                too_big = 1;
            n++;
        }
    } else {
        size_t start = p, end;
        while (p < len && value[p] != ';')
            p++;
        end = p;
        while (end > start && is_ows(value[end - 1]))
            end--;
        for (size_t i = start; i < end; i++) {
            if (out != NULL && n + 1 < outsz)
                out[n] = value[i];
            else if (out != NULL)
                too_big = 1;
            n++;
        }
    }
    if (out != NULL && outsz > 0)
        out[n < outsz ? n : outsz - 1] = '\0';
    *pos = p;
    *vlen = n;
    return too_big ? CMN_ETOOBIG : 0;
}

int lpr_multipart_param(const char *value, size_t len, const char *name, char *out, size_t outsz)
{
    int rc = CMN_EINVAL;
    size_t pos = 0, want;
    const char *semi;

    if (value == NULL || name == NULL || out == NULL || outsz == 0)
        goto out;
    out[0] = '\0';
    want = strlen(name);
    /* A header value never holds control characters; a NUL would cut the C string short. */
    rc = CMN_EPARSE;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            goto out;
    }
    rc = CMN_ENOTFOUND;
    semi = memchr(value, ';', len);
    if (semi == NULL)
        goto out;
    pos = (size_t)(semi - value);
    while (pos < len) {
        size_t nstart, nlen, vlen;
        int match;

        pos++; /* the ';' */
        while (pos < len && is_ows(value[pos]))
            pos++;
        if (pos >= len || value[pos] == ';')
            continue; /* an empty parameter ("a/b; ; c=d" or a trailing ';') */
        nstart = pos;
        while (pos < len && value[pos] != '=' && value[pos] != ';' && !is_ows(value[pos]))
            pos++;
        nlen = pos - nstart;
        while (pos < len && is_ows(value[pos]))
            pos++;
        rc = CMN_EPARSE;
        if (nlen == 0 || pos >= len || value[pos] != '=')
            goto out;
        pos++;
        while (pos < len && is_ows(value[pos]))
            pos++;
        match = nlen == want && strncasecmp(value + nstart, name, want) == 0;
        rc = read_param_value(value, len, &pos, match ? out : NULL, outsz, &vlen);
        if (rc != 0)
            goto out;
        while (pos < len && is_ows(value[pos]))
            pos++;
        rc = CMN_EPARSE;
        if (pos < len && value[pos] != ';')
            goto out; /* text after a quoted-string */
        if (match) {
            rc = (int)vlen;
            goto out;
        }
        rc = CMN_ENOTFOUND;
    }
out:
    if (rc < 0 && out != NULL && outsz > 0)
        out[0] = '\0';
    return rc;
}

int lpr_multipart_boundary(const char *ctype, size_t len, char *out, size_t outsz)
{
    int rc = CMN_EINVAL, bad;
    size_t start = 0, end;

    if (ctype == NULL || out == NULL || outsz == 0)
        goto out;
    out[0] = '\0';
    while (start < len && is_ows(ctype[start]))
        start++;
    end = start;
    while (end < len && ctype[end] != ';')
        end++;
    while (end > start && is_ows(ctype[end - 1]))
        end--;
    if (end - start <= 10 || strncasecmp(ctype + start, "multipart/", 10) != 0)
        goto out;
    rc = lpr_multipart_param(ctype, len, "boundary", out, outsz);
    if (rc < 0)
        goto out;
    bad = lpr_multipart_boundary_check(out, (size_t)rc);
    if (bad != 0)
        rc = bad;
out:
    if (rc < 0 && out != NULL && outsz > 0)
        out[0] = '\0';
    return rc;
}

struct delim {
    size_t at;    /* where `--boundary` starts */
    size_t after; /* just after the delimiter line (or after the closing `--`) */
    int close;
};

/*
 * Finds the first delimiter at or after `from`.  Returns 0, or CMN_AGAIN when the input ends
 * before one is complete (no delimiter at all, or one cut off by the end of the input).
 */
static int find_delim(const char *body, size_t len, size_t from, const char *dash, size_t dlen,
                      struct delim *d)
{
    size_t q = from;

    while (q < len) {
        const char *hit = memmem(body + q, len - q, dash, dlen);
        size_t p, e;

        if (hit == NULL)
            return CMN_AGAIN;
        p = (size_t)(hit - body);
        q = p + 1;
        if (p != 0 && body[p - 1] != '\n')
            continue;
        e = p + dlen;
        if (e < len && body[e] == '-') {
            if (e + 1 >= len)
                return CMN_AGAIN;
            if (body[e + 1] == '-') {
                d->at = p;
                d->after = e + 2;
                d->close = 1;
                return 0;
            }
            continue;
        }
        while (e < len && is_ows(body[e]))
            e++;
        if (e >= len)
            return CMN_AGAIN;
        if (body[e] == '\r') {
            if (e + 1 >= len)
                return CMN_AGAIN;
            if (body[e + 1] != '\n')
                continue;
            e++;
        }
        if (body[e] != '\n')
            continue;
        d->at = p;
        d->after = e + 1;
        d->close = 0;
        return 0;
    }
    return CMN_AGAIN;
}

static int parse_disposition(const char *v, size_t n, lpr_multipart_part_t *part, const char **err)
{
    int rc = lpr_multipart_param(v, n, "name", part->name, sizeof part->name);

    if (rc == CMN_ENOTFOUND)
        rc = 0;
    if (rc < 0) {
        *err = rc == CMN_ETOOBIG ? "part name too long" : "malformed Content-Disposition";
        return rc;
    }
    rc = lpr_multipart_param(v, n, "filename", part->filename, sizeof part->filename);
    if (rc == CMN_ENOTFOUND)
        return 0;
    if (rc < 0) {
        *err = rc == CMN_ETOOBIG ? "part filename too long" : "malformed Content-Disposition";
        return rc;
    }
    part->has_filename = 1;
    return 0;
}

/* Reads one header line (without its line end, `n` bytes) into the part. */
static int parse_header_line(const char *line, size_t n, lpr_multipart_part_t *part, int *seen_cd,
                             int *seen_ct, const char **err)
{
    const char *colon;
    size_t nlen, vs, ve;

    *err = "folded part header line";
    if (is_ows(line[0]))
        return CMN_EPARSE;
    *err = "control character in a part header";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)line[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return CMN_EPARSE;
    }
    *err = "part header line without a colon";
    colon = memchr(line, ':', n);
    if (colon == NULL)
        return CMN_EPARSE;
    nlen = (size_t)(colon - line);
    *err = "malformed part header name";
    if (nlen == 0)
        return CMN_EPARSE;
    for (size_t i = 0; i < nlen; i++) {
        if (!is_tchar((unsigned char)line[i]))
            return CMN_EPARSE;
    }
    vs = nlen + 1;
    ve = n;
    while (vs < ve && is_ows(line[vs]))
        vs++;
    while (ve > vs && is_ows(line[ve - 1]))
        ve--;
    if (nlen == 19 && strncasecmp(line, "Content-Disposition", 19) == 0) {
        *err = "duplicate Content-Disposition in a part";
        if (*seen_cd)
            return CMN_EPARSE;
        *seen_cd = 1;
        return parse_disposition(line + vs, ve - vs, part, err);
    }
    if (nlen == 12 && strncasecmp(line, "Content-Type", 12) == 0) {
        *err = "duplicate Content-Type in a part";
        if (*seen_ct)
            return CMN_EPARSE;
        *seen_ct = 1;
        *err = "part Content-Type too long";
        if (ve - vs >= sizeof part->content_type)
            return CMN_ETOOBIG;
        memcpy(part->content_type, line + vs, ve - vs);
        part->content_type[ve - vs] = '\0';
    }
    *err = NULL;
    return 0;
}

/* Reads a part's header block at *pos; on success *pos is where the part's body starts. */
static int parse_headers(const char *body, size_t len, size_t *pos, lpr_multipart_part_t *part,
                         const char **err)
{
    size_t p = *pos, used = 0;
    int nheaders = 0, seen_cd = 0, seen_ct = 0;

    for (;;) {
        /* A line may use what is left of the budget; the blank line always fits. */
        size_t budget = LPR_MULTIPART_MAX_HEADER_BYTES - used;
        size_t window = len - p;
        const char *nl;
        size_t n, total;
        int rc;

        if (budget < 2)
            budget = 2;
        if (window > budget)
            window = budget;
        nl = memchr(body + p, '\n', window);
        if (nl == NULL) {
            /* Fewer bytes than the budget: the LF may still come.  Otherwise it cannot fit. */
            int more = len - p < budget;
            *err = more ? "body ends inside a part header" : "part header too large";
            return more ? CMN_AGAIN : CMN_ETOOBIG;
        }
        total = (size_t)(nl - (body + p)) + 1;
        n = total - 1;
        if (n > 0 && body[p + n - 1] == '\r')
            n--;
        if (n == 0) {
            *pos = p + total;
            return 0;
        }
        used += total;
        *err = "part header too large";
        if (used > LPR_MULTIPART_MAX_HEADER_BYTES)
            return CMN_ETOOBIG;
        *err = "too many part header lines";
        if (++nheaders > LPR_MULTIPART_MAX_HEADERS)
            return CMN_ETOOBIG;
        rc = parse_header_line(body + p, n, part, &seen_cd, &seen_ct, err);
        if (rc != 0)
            return rc;
        p += total;
    }
}

int lpr_multipart_parse(const char *boundary, const char *body, size_t len, lpr_multipart_t *mp)
{
    int rc = CMN_EINVAL;
    char dash[2 + LPR_MULTIPART_BOUNDARY_MAX];
    const char *err = "no multipart body";
    struct delim d;
    size_t blen, dlen, pos;

    if (mp == NULL)
        return CMN_EINVAL;
    memset(mp, 0, sizeof *mp);
    if (boundary == NULL || (body == NULL && len > 0))
        goto out;
    err = "invalid multipart boundary";
    blen = strnlen(boundary, LPR_MULTIPART_BOUNDARY_MAX + 1);
    if (lpr_multipart_boundary_check(boundary, blen) != 0)
        goto out;
    dash[0] = '-';
    dash[1] = '-';
    memcpy(dash + 2, boundary, blen);
    dlen = blen + 2;

    rc = CMN_EPARSE;
    err = "multipart body without its opening boundary";
    if (body == NULL || memmem(body, len, dash, dlen) == NULL)
        goto out;
    rc = find_delim(body, len, 0, dash, dlen, &d);
    if (rc != 0) {
        err = "multipart body ends inside its opening boundary";
        goto out;
    }
    rc = CMN_EPARSE;
    err = "multipart body without parts";
    if (d.close)
        goto out;
    pos = d.after;
    for (;;) {
        lpr_multipart_part_t *part;
        size_t start;

        rc = CMN_ETOOBIG;
        err = "too many multipart parts";
        if (mp->nparts == LPR_MULTIPART_MAX_PARTS)
            goto out;
        part = &mp->parts[mp->nparts];
        rc = parse_headers(body, len, &pos, part, &err);
        if (rc != 0)
            goto out;
        start = pos;
        rc = find_delim(body, len, start, dash, dlen, &d);
        if (rc != 0) {
            err = "multipart body ends before its closing boundary";
            goto out;
        }
        part->body = body + start;
        part->body_len = 0;
        if (d.at > start) {
            size_t end = d.at - 1; /* the LF of the delimiter */
            if (end > start && body[end - 1] == '\r')
                end--;
            part->body_len = end - start;
        }
        mp->nparts++;
        if (d.close)
            break;
        pos = d.after;
    }
    err = NULL;
    rc = 0;
out:
    if (rc != 0) {
        mp->nparts = 0;
        mp->error = err;
    }
    return rc;
}

const lpr_multipart_part_t *lpr_multipart_find(const lpr_multipart_t *mp, const char *name)
{
    if (mp == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < mp->nparts; i++) {
        if (strcmp(mp->parts[i].name, name) == 0)
            return &mp->parts[i];
    }
    return NULL;
}
