#ifndef CMN_MEM_H
#define CMN_MEM_H

#include <stddef.h>

/*
 * Memory.  Small internal allocations use the x-functions, which abort with file and line when
 * memory runs out (Redis zmalloc).  Sizes that a peer controls never reach them: those go through
 * capped buffers (cmn/buf.h) that return CMN_ETOOBIG or CMN_ENOMEM instead.
 */

#define cmn_xalloc(n) cmn_xalloc_at((n), __FILE__, __LINE__)
#define cmn_xcalloc(n, size) cmn_xcalloc_at((n), (size), __FILE__, __LINE__)
#define cmn_xrealloc(p, n) cmn_xrealloc_at((p), (n), __FILE__, __LINE__)
#define cmn_xstrdup(s) cmn_xstrndup_at((s), (size_t)-1, __FILE__, __LINE__)
#define cmn_xstrndup(s, n) cmn_xstrndup_at((s), (n), __FILE__, __LINE__)

void *cmn_xalloc_at(size_t n, const char *file, int line);
void *cmn_xcalloc_at(size_t n, size_t size, const char *file, int line);
void *cmn_xrealloc_at(void *p, size_t n, const char *file, int line);
/** Copies at most n bytes of s (stopping at its NUL) and terminates the copy. */
char *cmn_xstrndup_at(const char *s, size_t n, const char *file, int line);

/** Fallible allocation for peer-sized data: NULL when memory runs out (or a test says so). */
void *cmn_try_alloc(size_t n);
void *cmn_try_realloc(void *p, size_t n);

/** Frees what any of the above returned; NULL is a no-op. */
void cmn_free(void *p);

/**
 * Test hook (curl's torture tests): the n-th fallible allocation from now fails, and every one after
 * it.  n = 0 turns failures off.  Only the fallible functions are affected.
 */
void cmn_mem_fail_after(long n);

#endif
