#include "cmn/diag.h"

#include <stdarg.h>
#include <stdio.h>

#include "cmn/buf.h"
#include "cmn/mem.h"

void cmn_diag_init(cmn_diag_t *d)
{
    d->msgs = NULL;
    d->n = 0;
    d->cap = 0;
}

void cmn_diag_dispose(cmn_diag_t *d)
{
    for (size_t i = 0; i < d->n; i++)
        cmn_free(d->msgs[i]);
    cmn_free(d->msgs);
    cmn_diag_init(d);
}

static void push(cmn_diag_t *d, char *msg)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 8;
        d->msgs = cmn_xrealloc(d->msgs, d->cap * sizeof *d->msgs);
    }
    d->msgs[d->n++] = msg;
}

void cmn_diag_add(cmn_diag_t *d, const char *fmt, ...)
{
    cmn_buf_t b;
    va_list ap;
    cmn_buf_init(&b, 4096);
    va_start(ap, fmt);
    if (cmn_buf_vprintf(&b, fmt, ap) != 0)
        cmn_buf_puts(&b, "(message too long)");
    va_end(ap);
    push(d, cmn_buf_take(&b, NULL));
}

void cmn_diag_merge(cmn_diag_t *d, const cmn_diag_t *src)
{
    for (size_t i = 0; i < src->n; i++)
        push(d, cmn_xstrdup(src->msgs[i]));
}

void cmn_diag_print(const cmn_diag_t *d, const char *prefix, void *file)
{
    for (size_t i = 0; i < d->n; i++)
        fprintf((FILE *)file, "%s%s\n", prefix, d->msgs[i]);
}
