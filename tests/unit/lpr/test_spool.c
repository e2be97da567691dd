/*
 * The lpr-bridge's spool (lpr-bridge/spool.c) on a real loop and a real folder (mkdtemp).
 *
 * Loop tests (STYLE.md section 8): each runs uv_run to completion, counts every callback, and
 * ends with uv_loop_close() returning 0, so a leaked handle or request fails it.  uv_fs_fsync and
 * uv_fs_write are wrapped (-Wl,--wrap, see tests/CMakeLists.txt) to count the fsyncs a group costs
 * and to inject a failing fsync or a short write; everything else reaches the disk.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "cmn/buf.h"
#include "cmn/err.h"
#include "spool.h"

#define MAX_SLOTS 64
#define MAX_FILES 64

/* ---- wrapped libuv calls ----------------------------------------------------------------- */

static int data_fsyncs; /* fsyncs of segment files */
static int dir_fsyncs;  /* fsyncs of the spool folder */
static int writes;
static int fail_next_fsync;  /* the next fsync of a segment fails (EBADF, on the thread pool) */
static int short_next_write; /* the next write writes only half of its buffer */

int __real_uv_fs_fsync(uv_loop_t *loop, uv_fs_t *req, uv_file file, uv_fs_cb cb);
int __wrap_uv_fs_fsync(uv_loop_t *loop, uv_fs_t *req, uv_file file, uv_fs_cb cb);
int __real_uv_fs_write(uv_loop_t *loop, uv_fs_t *req, uv_file file, const uv_buf_t bufs[],
                       unsigned int nbufs, int64_t offset, uv_fs_cb cb);
int __wrap_uv_fs_write(uv_loop_t *loop, uv_fs_t *req, uv_file file, const uv_buf_t bufs[],
                       unsigned int nbufs, int64_t offset, uv_fs_cb cb);

int __wrap_uv_fs_fsync(uv_loop_t *loop, uv_fs_t *req, uv_file file, uv_fs_cb cb)
{
    struct stat st;
    if (fstat(file, &st) == 0 && S_ISDIR(st.st_mode)) {
        dir_fsyncs++;
    } else {
        data_fsyncs++;
        if (fail_next_fsync) {
            fail_next_fsync = 0;
            file = -1;
        }
    }
    return __real_uv_fs_fsync(loop, req, file, cb);
}

int __wrap_uv_fs_write(uv_loop_t *loop, uv_fs_t *req, uv_file file, const uv_buf_t bufs[],
                       unsigned int nbufs, int64_t offset, uv_fs_cb cb)
{
    writes++;
    if (short_next_write && nbufs == 1 && bufs[0].len > 1) {
        /* libuv copies the uv_buf_t array into the request: a local one is fine. */
        uv_buf_t half = uv_buf_init(bufs[0].base, (unsigned int)(bufs[0].len / 2));
        short_next_write = 0;
        return __real_uv_fs_write(loop, req, file, &half, 1, offset, cb);
    }
    return __real_uv_fs_write(loop, req, file, bufs, nbufs, offset, cb);
}

/* ---- fixture ----------------------------------------------------------------------------- */

struct fx;

struct slot {
    struct fx *f;
    char rec[4096];
    int calls;
    int status;
    uint64_t seq;
    int on_disk;        /* its line was in a segment file when the callback ran */
    int fsyncs_at_call; /* data fsyncs when it was appended */
    int fsynced_before; /* a data fsync had completed-or-started since the append */
    int order;
};

struct fx {
    uv_loop_t loop;
    char dir[64];
    char spool[128]; /* dir/spool */
    lpr_spool_t *s;
    struct slot slots[MAX_SLOTS];
    int nslots;
    int ncallbacks;
    int closed;
    int closed_order;
};

/* Removes a folder and what is in it (spool folders hold files, at most one level of folders). */
static void rm_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char sub[8192];
    chmod(path, 0700);
    if (d == NULL) {
        unlink(path);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        rm_tree(sub);
    }
    closedir(d);
    rmdir(path);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/lpr-spool-test-XXXXXX");
    if (mkdtemp(f->dir) == NULL || uv_loop_init(&f->loop) != 0) {
        free(f);
        return -1;
    }
    snprintf(f->spool, sizeof f->spool, "%s/spool", f->dir);
    data_fsyncs = dir_fsyncs = writes = 0;
    fail_next_fsync = short_next_write = 0;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    rm_tree(f->dir);
    free(f);
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Every segment file's name, sorted. */
static int segment_files(const char *dir, char names[][64], int max)
{
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL && n < max) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "spool-", 6) == 0 && len < 64)
            memcpy(names[n++], e->d_name, len + 1);
    }
    closedir(d);
    qsort(names, (size_t)n, 64, cmp_names);
    return n;
}

static int has_segment(const char *dir, const char *name)
{
    char names[MAX_FILES][64];
    int n = segment_files(dir, names, MAX_FILES);
    for (int i = 0; i < n; i++) {
        if (strcmp(names[i], name) == 0)
            return 1;
    }
    return 0;
}

/* The bytes of one file; the caller disposes of *out. */
static void read_file(const char *path, cmn_buf_t *out)
{
    char chunk[4096];
    size_t n;
    cmn_buf_init(out, 64u << 20);
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return;
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
        cmn_buf_append(out, chunk, n);
    fclose(fp);
}

/* All segments' bytes, oldest first. */
static void read_segments(const char *dir, cmn_buf_t *out)
{
    char names[MAX_FILES][64], path[8192];
    int n = segment_files(dir, names, MAX_FILES);
    cmn_buf_init(out, 64u << 20);
    for (int i = 0; i < n; i++) {
        cmn_buf_t one;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        read_file(path, &one);
        if (one.len > 0)
            cmn_buf_append(out, one.base, one.len);
        cmn_buf_dispose(&one);
    }
}

static int contains(const cmn_buf_t *b, const char *needle, size_t len)
{
    for (size_t i = 0; b->len >= len && i <= b->len - len; i++) {
        if (memcmp(b->base + i, needle, len) == 0)
            return 1;
    }
    return 0;
}

static int segments_contain(const char *dir, const char *needle, size_t len)
{
    cmn_buf_t all;
    read_segments(dir, &all);
    int found = contains(&all, needle, len);
    cmn_buf_dispose(&all);
    return found;
}

static void append_raw(const char *path, const char *bytes)
{
    FILE *fp = fopen(path, "ab");
    assert_non_null(fp);
    assert_int_equal(fputs(bytes, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

static void on_appended(void *data, int status, uint64_t seq)
{
    struct slot *sl = data;
    char line[4200];
    sl->calls++;
    sl->status = status;
    sl->seq = seq;
    sl->order = ++sl->f->ncallbacks;
    sl->fsynced_before = data_fsyncs > sl->fsyncs_at_call;
    int n = snprintf(line, sizeof line, "R %llu %s\n", (unsigned long long)seq, sl->rec);
    sl->on_disk = segments_contain(sl->f->spool, line, (size_t)n);
}

static void on_closed(void *data)
{
    struct fx *f = data;
    f->closed++;
    f->closed_order = ++f->ncallbacks;
}

static void spool_open(struct fx *f, lpr_spooled_t **pending, size_t *npending)
{
    assert_int_equal(lpr_spool_open(&f->loop, f->spool, &f->s, pending, npending), 0);
    assert_non_null(f->s);
}

/* Closes the spool and runs the loop until everything has ended. */
static void spool_close(struct fx *f)
{
    int before = f->closed;
    lpr_spool_close(f->s, on_closed, f);
    assert_int_equal(f->closed, before); /* never synchronously */
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f->closed, before + 1);
    f->s = NULL;
}

static void reopen(struct fx *f, lpr_spooled_t **pending, size_t *npending)
{
    spool_close(f);
    spool_open(f, pending, npending);
}

/* Appends a record; its slot records the callback.  Returns lpr_spool_append's result. */
static int append(struct fx *f, const char *rec, struct slot **out)
{
    assert_true(f->nslots < MAX_SLOTS);
    struct slot *sl = &f->slots[f->nslots++];
    sl->f = f;
    snprintf(sl->rec, sizeof sl->rec, "%s", rec);
    sl->fsyncs_at_call = data_fsyncs;
    if (out != NULL)
        *out = sl;
    int rc = lpr_spool_append(f->s, rec, strlen(rec), on_appended, sl);
    assert_int_equal(sl->calls, 0); /* never synchronously */
    return rc;
}

/* Appends and runs the loop until the record is on disk; returns its seq. */
static uint64_t append_run(struct fx *f, const char *rec)
{
    struct slot *sl;
    assert_int_equal(append(f, rec, &sl), 0);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(sl->calls, 1);
    assert_int_equal(sl->status, 0);
    assert_true(sl->on_disk);
    return sl->seq;
}

static void ack_run(struct fx *f, uint64_t seq)
{
    lpr_spool_ack(f->s, seq);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
}

static void finish(struct fx *f)
{
    if (f->s != NULL)
        spool_close(f);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void expect_pending(lpr_spooled_t *p, size_t n, const uint64_t *seqs,
                           const char *const *recs, size_t want)
{
    assert_int_equal(n, want);
    for (size_t i = 0; i < want; i++) {
        assert_int_equal(p[i].seq, seqs[i]);
        assert_string_equal(p[i].record, recs[i]);
    }
}

/* ---- tests ------------------------------------------------------------------------------- */

/* An empty spool; appends one by one: one callback each, status 0, seqs 1, 2, ..., each after its
 * line was written and fsynced. */
static void test_appends_one_by_one(void **state)
{
    struct fx *f = *state;
    lpr_spooled_t *p;
    size_t n;
    spool_open(f, &p, &n);
    assert_int_equal(n, 0);
    assert_null(p);
    assert_int_equal(lpr_spool_depth(f->s), 0);
    for (int i = 0; i < 20; i++) {
        char rec[64];
        snprintf(rec, sizeof rec, "{\"event_id\":\"one-%d\"}", i);
        uint64_t seq = append_run(f, rec);
        assert_int_equal(seq, (uint64_t)i + 1);
        assert_true(f->slots[i].fsynced_before);
        assert_int_equal(f->slots[i].order, i + 1);
    }
    assert_int_equal(data_fsyncs, 20);
    assert_int_equal(dir_fsyncs, 1); /* the new segment's directory entry, once */
    assert_int_equal(lpr_spool_depth(f->s), 20);
    finish(f);
    for (int i = 0; i < 20; i++)
        assert_int_equal(f->slots[i].calls, 1);
}

/* Appends made before the loop runs share fsyncs: the first goes alone, the rest as one group. */
static void test_group_commit(void **state)
{
    struct fx *f = *state;
    lpr_spooled_t *p;
    size_t n;
    spool_open(f, &p, &n);
    for (int i = 0; i < 50; i++) {
        char rec[64];
        snprintf(rec, sizeof rec, "cam-in {\"event_id\":\"burst-%d\"}", i);
        assert_int_equal(append(f, rec, NULL), 0);
    }
    assert_int_equal(f->ncallbacks, 0);
    assert_int_equal(lpr_spool_depth(f->s), 50);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(f->slots[i].calls, 1);
        assert_int_equal(f->slots[i].status, 0);
        assert_int_equal(f->slots[i].seq, (uint64_t)i + 1);
        assert_int_equal(f->slots[i].order, i + 1);
        assert_true(f->slots[i].on_disk);
        assert_true(f->slots[i].fsynced_before);
    }
    assert_int_equal(writes, 2);
    assert_int_equal(data_fsyncs, 2);
    finish(f);
}

/* Acknowledged reads stay gone after a reopen; the others come back in order, byte for byte, and
 * their seqs are never given out again. */
static void test_ack_close_reopen(void **state)
{
    struct fx *f = *state;
    static const char *const recs[] = {
        "cam-in {\"event_id\":\"a\",\"plate\":\"浙A12345\"}",
        "",
        " leading and trailing spaces ",
        "tab\there and a carriage return\rinside",
        "quote \" and backslash \\ and {\"nested\": [1, 2]}",
        "R 99 looks like a read line",
        "A 3",
        "无车牌 · 未识别 😀",
        "x",
        "cam-out {\"event_id\":\"b\"}",
    };
    const size_t nrecs = sizeof recs / sizeof *recs;
    char big[4000];
    lpr_spooled_t *p;
    size_t n;

    spool_open(f, &p, &n);
    for (size_t i = 0; i < nrecs; i++)
        assert_int_equal(append(f, recs[i], NULL), 0);
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(append(f, big, NULL), 0);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    for (size_t i = 0; i <= nrecs; i++) {
        assert_int_equal(f->slots[i].calls, 1);
        assert_int_equal(f->slots[i].status, 0);
    }
    lpr_spool_ack(f->s, 1);
    lpr_spool_ack(f->s, 2);
    lpr_spool_ack(f->s, 5);
    lpr_spool_ack(f->s, 9);
    lpr_spool_ack(f->s, 9);   /* twice: no effect */
    lpr_spool_ack(f->s, 777); /* never appended: no effect */
    assert_int_equal(lpr_spool_depth(f->s), nrecs + 1 - 4);

    reopen(f, &p, &n);
    {
        const uint64_t seqs[] = {3, 4, 6, 7, 8, 10, 11};
        const char *const want[] = {recs[2], recs[3], recs[5], recs[6], recs[7], recs[9], big};
        expect_pending(p, n, seqs, want, 7);
    }
    lpr_spooled_free(p, n);
    assert_int_equal(lpr_spool_depth(f->s), 7);
    assert_int_equal(append_run(f, "after the reopen"), 12);

    reopen(f, &p, &n);
    assert_int_equal(n, 8);
    assert_int_equal(p[7].seq, 12);
    assert_string_equal(p[7].record, "after the reopen");
    for (size_t i = 0; i < n; i++)
        lpr_spool_ack(f->s, p[i].seq);
    lpr_spooled_free(p, n);
    assert_int_equal(lpr_spool_depth(f->s), 0);

    reopen(f, &p, &n);
    assert_int_equal(n, 0);
    /* Every old segment went: only the one this run writes to is left. */
    char names[MAX_FILES][64];
    assert_int_equal(segment_files(f->spool, names, MAX_FILES), 1);
    assert_int_equal(append_run(f, "seqs go on"), 13);
    finish(f);
}

/* A line cut short by a crash (no newline) is not a read, nor an acknowledgement. */
static void test_torn_last_line_ignored(void **state)
{
    struct fx *f = *state;
    char path[256];
    lpr_spooled_t *p;
    size_t n;

    spool_open(f, &p, &n);
    append_run(f, "first");
    append_run(f, "second");
    append_run(f, "third");
    spool_close(f);
    snprintf(path, sizeof path, "%s/spool-000001.log", f->spool);
    append_raw(path, "R 4 {\"torn\": tr");

    spool_open(f, &p, &n);
    {
        const uint64_t seqs[] = {1, 2, 3};
        const char *const want[] = {"first", "second", "third"};
        expect_pending(p, n, seqs, want, 3);
    }
    lpr_spooled_free(p, n);
    assert_int_equal(append_run(f, "fourth"), 4);
    ack_run(f, 1);
    spool_close(f);
    /* This run's segment ends in a torn acknowledgement of read 2. */
    snprintf(path, sizeof path, "%s/spool-000002.log", f->spool);
    assert_true(has_segment(f->spool, "spool-000002.log"));
    append_raw(path, "A 2");

    spool_open(f, &p, &n);
    {
        const uint64_t seqs[] = {2, 3, 4};
        const char *const want[] = {"second", "third", "fourth"};
        expect_pending(p, n, seqs, want, 3);
    }
    lpr_spooled_free(p, n);
    finish(f);
}

/* Segments rotate; a fully acknowledged old segment is deleted, one with a read pending stays. */
static void test_rotation_and_compaction(void **state)
{
    struct fx *f = *state;
    lpr_spooled_t *p;
    size_t n;

    spool_open(f, &p, &n);
    lpr_spool_set_segment_max(f->s, 1); /* every group of reads after the first starts a segment */
    uint64_t r1 = append_run(f, "read one");
    uint64_t r2 = append_run(f, "read two");
    uint64_t r3 = append_run(f, "read three");
    assert_true(has_segment(f->spool, "spool-000001.log"));
    assert_true(has_segment(f->spool, "spool-000002.log"));
    assert_true(has_segment(f->spool, "spool-000003.log"));
    assert_int_equal(dir_fsyncs, 3); /* each new segment's directory entry */

    ack_run(f, r1); /* written into segment 3, the active one */
    assert_false(has_segment(f->spool, "spool-000001.log"));
    assert_true(has_segment(f->spool, "spool-000002.log"));
    assert_true(has_segment(f->spool, "spool-000003.log"));

    ack_run(f, r3);
    uint64_t r4 = append_run(f, "read four"); /* segment 4: segment 3 is no longer active */
    assert_true(has_segment(f->spool, "spool-000002.log"));
    assert_false(has_segment(f->spool, "spool-000003.log")); /* although segment 2, older, stays */
    assert_true(has_segment(f->spool, "spool-000004.log"));
    assert_int_equal(lpr_spool_depth(f->s), 2);

    reopen(f, &p, &n);
    {
        const uint64_t seqs[] = {r2, r4};
        const char *const want[] = {"read two", "read four"};
        expect_pending(p, n, seqs, want, 2);
    }
    lpr_spooled_free(p, n);
    ack_run(f, r2);
    ack_run(f, r4);
    spool_close(f);
    spool_open(f, &p, &n);
    assert_int_equal(n, 0);
    char names[MAX_FILES][64];
    assert_int_equal(segment_files(f->spool, names, MAX_FILES), 1); /* this run's */
    finish(f);
}

/*
 * Acknowledgements of reads in an older segment, written into a newer one, are honoured after a
 * reopen, and after another: neither compaction nor a reopen may delete the newer segment while
 * it is the only record of them.
 */
static void test_acks_in_newer_segment_survive(void **state)
{
    struct fx *f = *state;
    lpr_spooled_t *p;
    size_t n;

    spool_open(f, &p, &n);
    for (int i = 0; i < 3; i++) {
        char rec[32];
        snprintf(rec, sizeof rec, "old %d", i + 1);
        assert_int_equal(append(f, rec, NULL), 0);
    }
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0); /* 1, 2, 3 in segment 1 */
    lpr_spool_set_segment_max(f->s, 1);
    uint64_t r4 = append_run(f, "new 4"); /* segment 2 */
    ack_run(f, 1);                        /* "A 1" in segment 2 */
    uint64_t r5 = append_run(f, "new 5"); /* segment 3 */
    ack_run(f, r4);                       /* segment 2 is done with, but holds "A 1" */
    ack_run(f, r5);
    assert_true(has_segment(f->spool, "spool-000001.log"));
    assert_false(has_segment(f->spool, "spool-000002.log"));
    assert_true(has_segment(f->spool, "spool-000003.log"));

    for (int round = 0; round < 3; round++) {
        reopen(f, &p, &n);
        /* The old ones, and the last read of each earlier round. */
        assert_int_equal(n, 2 + (size_t)round);
        assert_int_equal(p[0].seq, 2);
        assert_string_equal(p[0].record, "old 2");
        assert_int_equal(p[1].seq, 3);
        assert_string_equal(p[1].record, "old 3");
        for (size_t i = 2; i < n; i++) {
            assert_true(p[i].seq > p[i - 1].seq);
            assert_string_equal(p[i].record, "and a last one that stays");
        }
        lpr_spooled_free(p, n);
        lpr_spool_set_segment_max(f->s, 1);
        /* Reads of this run and their acknowledgements: more segments to compact. */
        uint64_t r = append_run(f, "churn");
        uint64_t q = append_run(f, "churn again");
        ack_run(f, r);
        ack_run(f, q);
        append_run(f, "and a last one that stays");
    }
    ack_run(f, 3);
    reopen(f, &p, &n);
    assert_int_equal(n, 4);
    assert_int_equal(p[0].seq, 2);
    assert_string_equal(p[0].record, "old 2");
    for (size_t i = 1; i < n; i++) {
        assert_string_equal(p[i].record, "and a last one that stays");
        lpr_spool_ack(f->s, p[i].seq);
    }
    lpr_spooled_free(p, n);
    ack_run(f, 2);
    reopen(f, &p, &n);
    assert_int_equal(n, 0);
    char names[MAX_FILES][64];
    assert_int_equal(segment_files(f->spool, names, MAX_FILES), 1);
    finish(f);
}

/* An acknowledgement that arrives before its read's group started is counted right: the read's
 * segment is compacted, not kept forever, and nothing comes back. */
static void test_ack_before_written(void **state)
{
    struct fx *f = *state;
    lpr_spooled_t *p;
    size_t n;
    struct slot *a, *b;

    spool_open(f, &p, &n);
    lpr_spool_set_segment_max(f->s, 1);
    append_run(f, "keeps segment 1 busy");
    assert_int_equal(append(f, "queued a", &a), 0); /* its group starts segment 2 */
    assert_int_equal(append(f, "queued b", &b), 0);
    lpr_spool_ack(f->s, 3); /* "queued b", still queued */
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(a->calls, 1);
    assert_int_equal(b->calls, 1);
    assert_int_equal(b->status, 0);
    assert_int_equal(lpr_spool_depth(f->s), 2);
    reopen(f, &p, &n);
    {
        const uint64_t seqs[] = {1, 2};
        const char *const want[] = {"keeps segment 1 busy", "queued a"};
        expect_pending(p, n, seqs, want, 2);
    }
    lpr_spooled_free(p, n);
    lpr_spool_set_segment_max(f->s, 1);
    ack_run(f, 1);
    ack_run(f, 2);
    /* Segments 1 and 2 hold nothing pending: both went. */
    assert_false(has_segment(f->spool, "spool-000001.log"));
    assert_false(has_segment(f->spool, "spool-000002.log"));
    reopen(f, &p, &n);
    assert_int_equal(n, 0);
    finish(f);
}

static void test_record_with_newline_or_nul_refused(void **state)
{
    struct fx *f = *state;
    lpr_spooled_t *p;
    size_t n;
    struct slot never = {.f = f};

    spool_open(f, &p, &n);
    assert_int_equal(append(f, "two\nlines", NULL), CMN_EINVAL);
    assert_int_equal(append(f, "ends with a newline\n", NULL), CMN_EINVAL);
    assert_int_equal(lpr_spool_append(f->s, "nul\0inside", 10, on_appended, &never), CMN_EINVAL);
    assert_int_equal(lpr_spool_depth(f->s), 0);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f->ncallbacks, 0);
    assert_int_equal(append_run(f, "one line"), 1); /* no seq was used up */
    reopen(f, &p, &n);
    {
        const uint64_t seqs[] = {1};
        const char *const want[] = {"one line"};
        expect_pending(p, n, seqs, want, 1);
    }
    lpr_spooled_free(p, n);
    finish(f);
    assert_int_equal(f->ncallbacks, 1 + 2); /* the append and two closes */
}

/* Closing with appends and acknowledgements in flight: every callback still runs, then done. */
static void test_close_with_appends_in_flight(void **state)
{
    struct fx *f = *state;
    lpr_spooled_t *p;
    size_t n;

    spool_open(f, &p, &n);
    for (int i = 0; i < 5; i++) {
        char rec[32];
        snprintf(rec, sizeof rec, "in flight %d", i);
        assert_int_equal(append(f, rec, NULL), 0);
    }
    lpr_spool_close(f->s, on_closed, f);
    assert_int_equal(append(f, "too late", NULL), CMN_EINVAL);
    assert_int_equal(f->ncallbacks, 0);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    f->s = NULL;
    assert_int_equal(f->closed, 1);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(f->slots[i].calls, 1);
        assert_int_equal(f->slots[i].status, 0);
        assert_true(f->slots[i].on_disk);
        assert_true(f->slots[i].order < f->closed_order);
    }
    assert_int_equal(f->slots[5].calls, 0);

    spool_open(f, &p, &n);
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(p[i].seq, i + 1);
        lpr_spool_ack(f->s, p[i].seq);
    }
    lpr_spooled_free(p, n);
    /* The acknowledgements are only queued: closing writes them. */
    reopen(f, &p, &n);
    assert_int_equal(n, 0);
    finish(f);
}

/* A write cut short or an fsync that fails: the reads' callbacks get the error, the reads do not
 * come back, and the spool goes on with whole lines only. */
static void test_write_failures(void **state)
{
    struct fx *f = *state;
    lpr_spooled_t *p;
    size_t n;
    struct slot *s2, *s3, *s5;

    spool_open(f, &p, &n);
    append_run(f, "good 1");
    short_next_write = 1;
    assert_int_equal(append(f, "torn 2 {\"a long enough record\": true}", &s2), 0);
    assert_int_equal(append(f, "good 3", &s3), 0);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(s2->calls, 1);
    assert_true(s2->status < 0);
    assert_int_equal(s3->calls, 1);
    assert_int_equal(s3->status, 0);
    assert_true(s3->on_disk);
    assert_int_equal(lpr_spool_depth(f->s), 2);

    /* Only whole lines: the torn one was cut back before the next group. */
    cmn_buf_t all;
    read_segments(f->spool, &all);
    assert_true(all.len > 0 && all.base[all.len - 1] == '\n');
    assert_false(contains(&all, "torn 2", 6));
    cmn_buf_dispose(&all);

    fail_next_fsync = 1;
    assert_int_equal(append(f, "unsynced 4", &s5), 0);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(s5->calls, 1);
    assert_true(s5->status < 0);
    assert_int_equal(lpr_spool_depth(f->s), 2);
    assert_int_equal(append_run(f, "good 5"), 5);

    reopen(f, &p, &n);
    {
        const uint64_t seqs[] = {1, 3, 5};
        const char *const want[] = {"good 1", "good 3", "good 5"};
        expect_pending(p, n, seqs, want, 3);
    }
    lpr_spooled_free(p, n);
    finish(f);
}

/* A spool folder that cannot be created or written: open fails, leaving nothing behind. */
static void test_unwritable_folder(void **state)
{
    struct fx *f = *state;
    char path[256];
    lpr_spooled_t *p = (lpr_spooled_t *)1;
    size_t n = 99;
    lpr_spool_t *s = (lpr_spool_t *)1;

    /* Under a regular file (ENOTDIR, even for root). */
    snprintf(path, sizeof path, "%s/plain-file", f->dir);
    append_raw(path, "not a folder\n");
    snprintf(path, sizeof path, "%s/plain-file/spool", f->dir);
    assert_true(lpr_spool_open(&f->loop, path, &s, &p, &n) < 0);
    assert_null(s);
    assert_null(p);
    assert_int_equal(n, 0);
    /* The path is the regular file itself. */
    snprintf(path, sizeof path, "%s/plain-file", f->dir);
    s = (lpr_spool_t *)1;
    assert_true(lpr_spool_open(&f->loop, path, &s, &p, &n) < 0);
    assert_null(s);

    /* A folder without write permission (root writes anyway: only checked for other users). */
    if (geteuid() != 0) {
        lpr_spooled_t *q;
        size_t m;
        spool_open(f, &q, &m);
        append_run(f, "pending in a folder that turns read-only");
        spool_close(f);
        assert_int_equal(chmod(f->spool, 0500), 0);
        s = (lpr_spool_t *)1;
        assert_true(lpr_spool_open(&f->loop, f->spool, &s, &p, &n) < 0);
        assert_null(s);
        assert_null(p);
        assert_int_equal(n, 0);
        assert_int_equal(chmod(f->spool, 0700), 0);
        spool_open(f, &q, &m);
        assert_int_equal(m, 1);
        lpr_spooled_free(q, m);
    }
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    finish(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_appends_one_by_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_close_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_last_line_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_and_compaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acks_in_newer_segment_survive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_before_written, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_with_newline_or_nul_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_with_appends_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwritable_folder, setup, teardown),
    };
    return cmocka_run_group_tests_name("lpr spool", tests, NULL, NULL);
}
