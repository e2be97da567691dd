#include "cmn/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The only file that calls malloc and free directly (scripts/checksrc.sh enforces it). */

static long fail_countdown; /* 0: off; n > 0: the n-th allocation from now fails */

static void oom(size_t n, const char *file, int line)
{
    fprintf(stderr, "fatal: out of memory allocating %zu bytes at %s:%d\n", n, file, line);
    abort();
}

void *cmn_xalloc_at(size_t n, const char *file, int line)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom(n, file, line);
    return p;
}

void *cmn_xcalloc_at(size_t n, size_t size, const char *file, int line)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        oom(n * size, file, line);
    return p;
}

void *cmn_xrealloc_at(void *p, size_t n, const char *file, int line)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom(n, file, line);
    return q;
}

char *cmn_xstrndup_at(const char *s, size_t n, const char *file, int line)
{
    size_t len = strnlen(s, n);
    char *p = cmn_xalloc_at(len + 1, file, line);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

static int should_fail(void)
{
    if (fail_countdown == 0)
        return 0;
    if (fail_countdown > 1) {
        fail_countdown--;
        return 0;
    }
    return 1; /* stays at 1: every later allocation fails too */
}

void *cmn_try_alloc(size_t n)
{
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *cmn_try_realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

void cmn_free(void *p)
{
    free(p);
}

void cmn_mem_fail_after(long n)
{
    fail_countdown = n < 0 ? 0 : n;
}
