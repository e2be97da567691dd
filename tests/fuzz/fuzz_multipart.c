/*
 * libFuzzer harness for lpr-bridge/multipart.h.  The input's first line (up to 256 bytes before a
 * '\n') is a Content-Type value, the rest the body; without a '\n' the whole input is a body with
 * boundary "b".  Besides "no crash, no sanitizer report", it checks:
 *
 *  - a boundary from lpr_multipart_boundary has 1..70 characters and no NUL;
 *  - the parser returns 0, CMN_AGAIN, CMN_EPARSE or CMN_ETOOBIG, with `error` set exactly when it
 *    fails and no parts then;
 *  - on success: 1..LPR_MULTIPART_MAX_PARTS parts whose bodies are in order, inside the input and
 *    disjoint; names, filenames and content types are NUL-terminated in their arrays and hold no
 *    control character but tab, content types no surrounding white space;
 *  - round trip: writing the parts back as a CRLF body with the same boundary (quoting names) and
 *    parsing that gives the same parts, byte for byte.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn/buf.h"
#include "cmn/err.h"
#include "multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static lpr_multipart_t mp, again;

static void check_text(const char *s, size_t cap)
{
    CHECK(memchr(s, '\0', cap) != NULL);
    for (; *s != '\0'; s++)
        CHECK((unsigned char)*s >= 0x20 || *s == '\t');
}

static void quoted(cmn_buf_t *b, const char *s)
{
    CHECK(cmn_buf_puts(b, "\"") == 0);
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\')
            CHECK(cmn_buf_append(b, "\\", 1) == 0);
        CHECK(cmn_buf_append(b, s, 1) == 0);
    }
    CHECK(cmn_buf_puts(b, "\"") == 0);
}

static void round_trip(const char *boundary)
{
    cmn_buf_t b;

    cmn_buf_init(&b, 1u << 30);
    for (size_t i = 0; i < mp.nparts; i++) {
        const lpr_multipart_part_t *p = &mp.parts[i];
        CHECK(cmn_buf_printf(&b, "--%s\r\n", boundary) == 0);
        if (p->name[0] != '\0' || p->has_filename) {
            CHECK(cmn_buf_puts(&b, "Content-Disposition: form-data") == 0);
            if (p->name[0] != '\0') {
                CHECK(cmn_buf_puts(&b, "; name=") == 0);
                quoted(&b, p->name);
            }
            if (p->has_filename) {
                CHECK(cmn_buf_puts(&b, "; filename=") == 0);
                quoted(&b, p->filename);
            }
            CHECK(cmn_buf_puts(&b, "\r\n") == 0);
        }
        if (p->content_type[0] != '\0')
            CHECK(cmn_buf_printf(&b, "Content-Type: %s\r\n", p->content_type) == 0);
        CHECK(cmn_buf_puts(&b, "\r\n") == 0);
        CHECK(cmn_buf_append(&b, p->body, p->body_len) == 0);
        CHECK(cmn_buf_puts(&b, "\r\n") == 0);
    }
    CHECK(cmn_buf_printf(&b, "--%s--\r\n", boundary) == 0);

    CHECK(lpr_multipart_parse(boundary, b.base, b.len, &again) == 0);
    CHECK(again.nparts == mp.nparts);
    for (size_t i = 0; i < mp.nparts; i++) {
        const lpr_multipart_part_t *p = &mp.parts[i], *q = &again.parts[i];
        CHECK(strcmp(p->name, q->name) == 0);
        CHECK(strcmp(p->filename, q->filename) == 0);
        CHECK(p->has_filename == q->has_filename);
        CHECK(strcmp(p->content_type, q->content_type) == 0);
        CHECK(p->body_len == q->body_len);
        CHECK(memcmp(p->body, q->body, p->body_len) == 0);
    }
    cmn_buf_dispose(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data, *body = in, *nl;
    char boundary[LPR_MULTIPART_BOUNDARY_MAX + 1] = "b", cs[64];
    size_t len = size;
    const char *prev_end = NULL;
    int rc;

    nl = memchr(in, '\n', size < 257 ? size : 257);
    if (nl != NULL) {
        size_t clen = (size_t)(nl - in);
        rc = lpr_multipart_boundary(in, clen, boundary, sizeof boundary);
        CHECK(rc == CMN_EINVAL || rc == CMN_ENOTFOUND || rc == CMN_EPARSE || rc == CMN_ETOOBIG ||
              rc > 0);
        if (rc > 0)
            CHECK((size_t)rc == strlen(boundary) && rc <= LPR_MULTIPART_BOUNDARY_MAX);
        else
            snprintf(boundary, sizeof boundary, "b");
        rc = lpr_multipart_param(in, clen, "charset", cs, sizeof cs);
        CHECK(rc == CMN_ENOTFOUND || rc == CMN_EPARSE || rc == CMN_ETOOBIG || rc >= 0);
        CHECK(rc < 0 ? cs[0] == '\0' : (size_t)rc == strlen(cs));
        body = nl + 1;
        len = size - (size_t)(body - in);
    }

    rc = lpr_multipart_parse(boundary, body, len, &mp);
    CHECK(rc == 0 || rc == CMN_AGAIN || rc == CMN_EPARSE || rc == CMN_ETOOBIG);
    if (rc != 0) {
        CHECK(mp.error != NULL && mp.nparts == 0);
        return 0;
    }
    CHECK(mp.error == NULL);
    CHECK(mp.nparts >= 1 && mp.nparts <= LPR_MULTIPART_MAX_PARTS);
    for (size_t i = 0; i < mp.nparts; i++) {
        const lpr_multipart_part_t *p = &mp.parts[i];
        size_t ctl;
        CHECK(p->body != NULL && p->body >= body && p->body_len <= len);
        CHECK((size_t)(p->body - body) <= len - p->body_len);
        CHECK(prev_end == NULL || p->body >= prev_end);
        prev_end = p->body + p->body_len;
        check_text(p->name, sizeof p->name);
        check_text(p->filename, sizeof p->filename);
        check_text(p->content_type, sizeof p->content_type);
        CHECK(p->has_filename || p->filename[0] == '\0');
        ctl = strlen(p->content_type);
        if (ctl > 0)
            CHECK(p->content_type[0] != ' ' && p->content_type[0] != '\t' &&
                  p->content_type[ctl - 1] != ' ' && p->content_type[ctl - 1] != '\t');
        CHECK(lpr_multipart_find(&mp, p->name) != NULL);
    }
    round_trip(boundary);
    return 0;
}
