#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmn/buf.h"
#include "cmn/err.h"
#include "cmn/log.h"
#include "cmn/mem.h"

#define SEGMENT_MAX_BYTES (8u << 20)
#define MAX_SEGMENTS 4096

struct segment {
    uint64_t n;        /* file number */
    uint64_t first;    /* first read seq in it (UINT64_MAX: none yet) */
    size_t unacked;    /* reads in it not acknowledged */
    int deleting;
};

struct waiter {
    struct waiter *next;
    uint64_t seq;
    lpr_spool_cb cb;
    void *data;
};

struct lpr_spool {
    uv_loop_t *loop;
    char *dir;
    int dirfd;
    uv_file fd; /* the active segment */
    uint64_t fd_size;
    struct segment seg[MAX_SEGMENTS];
    size_t nseg;
    uint64_t next_seq;
    /* unacked[seq - base] != 0: not acknowledged */
    unsigned char *unacked;
    uint64_t base;
    size_t cap;
    size_t depth;
    /* the group being built, and the one being written */
    cmn_buf_t queued;
    struct waiter *queued_w, **queued_tail;
    int queued_reads;
    cmn_buf_t writing;
    struct waiter *writing_w;
    int writing_reads;
    int new_segment; /* the directory must be fsynced with the next group */
    int busy;
    uv_fs_t req;
    uv_buf_t buf;
    int closing;
    void (*close_done)(void *);
    void *close_data;
    uv_timer_t defer;
};

static void seg_path(const lpr_spool_t *s, uint64_t n, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/spool-%06llu.log", s->dir, (unsigned long long)n);
}

static int mkdirs(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return mkdir(tmp, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

static void mark(lpr_spool_t *s, uint64_t seq, int unacked)
{
    if (seq < s->base)
        return;
    uint64_t i = seq - s->base;
    if (i >= s->cap) {
        size_t cap = s->cap ? s->cap : 1024;
        while (cap <= i)
            cap *= 2;
        s->unacked = cmn_xrealloc(s->unacked, cap);
        memset(s->unacked + s->cap, 0, cap - s->cap);
        s->cap = cap;
    }
    s->unacked[i] = (unsigned char)unacked;
}

static int is_unacked(const lpr_spool_t *s, uint64_t seq)
{
    return seq >= s->base && seq - s->base < s->cap && s->unacked[seq - s->base];
}

/* The segment a read lives in: the last one whose first seq is not after it. */
static struct segment *segment_of(lpr_spool_t *s, uint64_t seq)
{
    struct segment *found = NULL;
    for (size_t i = 0; i < s->nseg; i++) {
        if (s->seg[i].first != UINT64_MAX && s->seg[i].first <= seq)
            found = &s->seg[i];
    }
    return found;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- opening ----------------------------------------------------------------------------- */

struct loaded {
    uint64_t seq;
    size_t seg;
    char *record;
};

struct acks {
    uint64_t *v;
    size_t n, cap;
};

/* Reads one segment's lines: its reads and the acknowledgements it holds (of any segment). */
static int load_segment(lpr_spool_t *s, size_t si, struct loaded **reads, size_t *nreads,
                        size_t *cap, struct acks *acks)
{
    char path[4200];
    seg_path(s, s->seg[si].n, path, sizeof path);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    char *line = NULL;
    size_t linecap = 0;
    ssize_t n;
    /* getline grows its own buffer (with malloc): a line of ours is at most a few KiB. */
    while ((n = getline(&line, &linecap, f)) > 0) { /* checksrc: allow */
        if (line[n - 1] != '\n')
            break; /* a torn last line: its read never got its 200 */
        line[n - 1] = '\0';
        char *end;
        uint64_t seq = strtoull(line + 2, &end, 10);
        if (line[0] == 'R' && line[1] == ' ' && *end == ' ') {
            if (*nreads == *cap) {
                *cap = *cap ? *cap * 2 : 256;
                *reads = cmn_xrealloc(*reads, *cap * sizeof **reads);
            }
            (*reads)[*nreads].seq = seq;
            (*reads)[*nreads].seg = si;
            (*reads)[*nreads].record = cmn_xstrdup(end + 1);
            (*nreads)++;
            if (s->seg[si].first == UINT64_MAX)
                s->seg[si].first = seq;
            if (seq >= s->next_seq)
                s->next_seq = seq + 1;
        } else if (line[0] == 'A' && line[1] == ' ' && *end == '\0') {
            if (acks->n == acks->cap) {
                acks->cap = acks->cap ? acks->cap * 2 : 256;
                acks->v = cmn_xrealloc(acks->v, acks->cap * sizeof *acks->v);
            }
            acks->v[acks->n++] = seq;
        }
    }
    free(line); /* checksrc: allow (getline's buffer) */
    fclose(f);
    return 0;
}

int lpr_spool_open(uv_loop_t *loop, const char *dir, lpr_spool_t **out, lpr_spooled_t **pending,
                   size_t *npending)
{
    lpr_spool_t *s = cmn_xcalloc(1, sizeof *s);
    uint64_t nums[MAX_SEGMENTS];
    size_t nn = 0;
    struct loaded *reads = NULL;
    size_t nreads = 0, rcap = 0;
    struct acks acks = {0};

    *out = NULL;
    *pending = NULL;
    *npending = 0;
    s->loop = loop;
    s->dir = cmn_xstrdup(dir);
    s->next_seq = 1;
    s->fd = -1;
    s->dirfd = -1;
    cmn_buf_init(&s->queued, 64u << 20);
    cmn_buf_init(&s->writing, 64u << 20);
    s->queued_tail = &s->queued_w;
    if (mkdirs(dir) != 0) {
        cmn_log(CMN_LOG_ERROR, "spool", "cannot create %s: %s", dir, strerror(errno));
        goto fail;
    }
    DIR *d = opendir(dir);
    if (d == NULL) {
        cmn_log(CMN_LOG_ERROR, "spool", "cannot open %s: %s", dir, strerror(errno));
        goto fail;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL && nn < MAX_SEGMENTS - 1) {
        unsigned long long n;
        int used = 0;
        if (sscanf(e->d_name, "spool-%llu.log%n", &n, &used) == 1 && used > 0 &&
            e->d_name[used] == '\0')
            nums[nn++] = n;
    }
    closedir(d);
    qsort(nums, nn, sizeof *nums, cmp_u64);
    for (size_t i = 0; i < nn; i++) {
        s->seg[s->nseg].n = nums[i];
        s->seg[s->nseg].first = UINT64_MAX;
        if (load_segment(s, s->nseg, &reads, &nreads, &rcap, &acks) != 0) {
            cmn_log(CMN_LOG_ERROR, "spool", "cannot read segment %llu of %s",
                    (unsigned long long)nums[i], dir);
            goto fail;
        }
        s->nseg++;
    }
    if (acks.n > 0)
        qsort(acks.v, acks.n, sizeof *acks.v, cmp_u64);
    s->base = nreads > 0 ? reads[0].seq : s->next_seq;
    for (size_t i = 0; i < nreads; i++) {
        if (acks.n > 0 && bsearch(&reads[i].seq, acks.v, acks.n, sizeof *acks.v, cmp_u64))
            continue;
        mark(s, reads[i].seq, 1);
        s->seg[reads[i].seg].unacked++;
        s->depth++;
        if (*npending % 256 == 0)
            *pending = cmn_xrealloc(*pending, (*npending + 256) * sizeof **pending);
        (*pending)[*npending].seq = reads[i].seq;
        (*pending)[*npending].record = reads[i].record;
        (*npending)++;
        reads[i].record = NULL;
    }
    for (size_t i = 0; i < nreads; i++)
        cmn_free(reads[i].record);
    cmn_free(reads);
    reads = NULL;
    nreads = 0;
    cmn_free(acks.v);
    acks.v = NULL;

    /* Segments holding nothing unacknowledged go now; a new segment takes the writes. */
    for (size_t i = 0; i < s->nseg; i++) {
        if (s->seg[i].unacked == 0) {
            char path[4200];
            seg_path(s, s->seg[i].n, path, sizeof path);
            unlink(path);
            memmove(&s->seg[i], &s->seg[i + 1], (s->nseg - i - 1) * sizeof *s->seg);
            s->nseg--;
            i--;
        }
    }
    uint64_t next_n = nn > 0 ? nums[nn - 1] + 1 : 1;
    char path[4200];
    seg_path(s, next_n, path, sizeof path);
    s->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->fd < 0 || s->dirfd < 0) {
        cmn_log(CMN_LOG_ERROR, "spool", "cannot open %s: %s", path, strerror(errno));
        goto fail;
    }
    s->seg[s->nseg].n = next_n;
    s->seg[s->nseg].first = UINT64_MAX;
    s->nseg++;
    s->new_segment = 1;
    uv_timer_init(loop, &s->defer);
    s->defer.data = s;
    *out = s;
    cmn_log(CMN_LOG_INFO, "spool", "%s: %zu reads to deliver from earlier runs", dir, *npending);
    return 0;
fail:
    for (size_t i = 0; i < nreads; i++)
        cmn_free(reads[i].record);
    cmn_free(reads);
    cmn_free(acks.v);
    lpr_spooled_free(*pending, *npending);
    *pending = NULL;
    *npending = 0;
    if (s->fd >= 0)
        close(s->fd);
    if (s->dirfd >= 0)
        close(s->dirfd);
    cmn_buf_dispose(&s->queued);
    cmn_buf_dispose(&s->writing);
    cmn_free(s->unacked);
    cmn_free(s->dir);
    cmn_free(s);
    return CMN_EIO;
}

void lpr_spooled_free(lpr_spooled_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cmn_free(v[i].record);
    cmn_free(v);
}

/* ---- writing ----------------------------------------------------------------------------- */

static void start_write(lpr_spool_t *s);

static void compact(lpr_spool_t *s)
{
    /* Every segment but the active one (the last) may go once all its reads are acknowledged. */
    for (size_t i = 0; i + 1 < s->nseg; i++) {
        if (s->seg[i].unacked == 0 && !s->seg[i].deleting) {
            char path[4200];
            seg_path(s, s->seg[i].n, path, sizeof path);
            uv_fs_t *req = cmn_xalloc(sizeof *req);
            /* On the thread pool; nothing waits for it. */
            if (uv_fs_unlink(s->loop, req, path, (uv_fs_cb)uv_fs_req_cleanup) != 0)
                cmn_free(req);
            memmove(&s->seg[i], &s->seg[i + 1], (s->nseg - i - 1) * sizeof *s->seg);
            s->nseg--;
            i--;
        }
    }
}

static void finish_group(lpr_spool_t *s, int status)
{
    struct waiter *w = s->writing_w;
    s->writing_w = NULL;
    cmn_buf_reset(&s->writing);
    s->writing_reads = 0;
    s->busy = 0;
    while (w != NULL) {
        struct waiter *next = w->next;
        w->cb(w->data, status, w->seq);
        cmn_free(w);
        w = next;
    }
    compact(s);
    if (s->queued.len > 0)
        start_write(s);
}

static void on_dir_synced(uv_fs_t *req)
{
    lpr_spool_t *s = req->data;
    int status = (int)req->result < 0 ? (int)req->result : 0;
    uv_fs_req_cleanup(req);
    finish_group(s, status);
}

static void on_synced(uv_fs_t *req)
{
    lpr_spool_t *s = req->data;
    int status = (int)req->result < 0 ? (int)req->result : 0;
    uv_fs_req_cleanup(req);
    if (status == 0 && s->new_segment) {
        /* A new file is durable only once its directory entry is. */
        s->new_segment = 0;
        s->req.data = s;
        if (uv_fs_fsync(s->loop, &s->req, s->dirfd, on_dir_synced) == 0)
            return;
    }
    finish_group(s, status);
}

static void on_written(uv_fs_t *req)
{
    lpr_spool_t *s = req->data;
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    if (n < 0 || (size_t)n != s->buf.len) {
        cmn_log(CMN_LOG_ERROR, "spool", "write failed: %s",
                n < 0 ? uv_strerror((int)n) : "short write");
        return finish_group(s, n < 0 ? (int)n : CMN_EIO);
    }
    s->fd_size += (uint64_t)n;
    if (s->writing_reads == 0)
        return finish_group(s, 0); /* acknowledgements only: no fsync needed */
    s->req.data = s;
    if (uv_fs_fsync(s->loop, &s->req, s->fd, on_synced) != 0)
        finish_group(s, CMN_EIO);
}

/* A new segment when the active one is large.  open() is not a disk wait worth a thread. */
static void rotate(lpr_spool_t *s)
{
    if (s->fd_size < SEGMENT_MAX_BYTES || s->nseg >= MAX_SEGMENTS)
        return;
    uint64_t next_n = s->seg[s->nseg - 1].n + 1;
    char path[4200];
    seg_path(s, next_n, path, sizeof path);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        cmn_log(CMN_LOG_ERROR, "spool", "cannot create %s: %s", path, strerror(errno));
        return;
    }
    close(s->fd);
    s->fd = fd;
    s->fd_size = 0;
    s->seg[s->nseg].n = next_n;
    s->seg[s->nseg].first = UINT64_MAX;
    s->seg[s->nseg].unacked = 0;
    s->seg[s->nseg].deleting = 0;
    s->nseg++;
    s->new_segment = 1;
}

static void start_write(lpr_spool_t *s)
{
    if (s->busy || s->queued.len == 0)
        return;
    rotate(s);
    /* The group's reads belong to the active segment. */
    for (struct waiter *w = s->queued_w; w != NULL; w = w->next) {
        struct segment *seg = &s->seg[s->nseg - 1];
        if (seg->first == UINT64_MAX)
            seg->first = w->seq;
        seg->unacked++;
    }
    cmn_buf_t tmp = s->writing;
    s->writing = s->queued;
    s->queued = tmp;
    s->writing_w = s->queued_w;
    s->writing_reads = s->queued_reads;
    s->queued_w = NULL;
    s->queued_tail = &s->queued_w;
    s->queued_reads = 0;
    s->busy = 1;
    s->buf = uv_buf_init(s->writing.base, (unsigned)s->writing.len);
    s->req.data = s;
    if (uv_fs_write(s->loop, &s->req, s->fd, &s->buf, 1, -1, on_written) != 0)
        finish_group(s, CMN_EIO);
}

int lpr_spool_append(lpr_spool_t *s, const char *record, size_t len, lpr_spool_cb cb, void *data)
{
    if (s->closing || memchr(record, '\n', len) != NULL)
        return CMN_EINVAL;
    uint64_t seq = s->next_seq;
    size_t before = s->queued.len;
    if (cmn_buf_printf(&s->queued, "R %llu ", (unsigned long long)seq) != 0 ||
        cmn_buf_append(&s->queued, record, len) != 0 || cmn_buf_puts(&s->queued, "\n") != 0) {
        s->queued.len = before;
        return CMN_ETOOBIG;
    }
    s->next_seq++;
    mark(s, seq, 1);
    s->depth++;
    struct waiter *w = cmn_xcalloc(1, sizeof *w);
    w->seq = seq;
    w->cb = cb;
    w->data = data;
    *s->queued_tail = w;
    s->queued_tail = &w->next;
    s->queued_reads++;
    start_write(s);
    return 0;
}

void lpr_spool_ack(lpr_spool_t *s, uint64_t seq)
{
    if (!is_unacked(s, seq))
        return;
    mark(s, seq, 0);
    s->depth--;
    struct segment *seg = segment_of(s, seq);
    if (seg != NULL && seg->unacked > 0)
        seg->unacked--;
    if (cmn_buf_printf(&s->queued, "A %llu\n", (unsigned long long)seq) != 0)
        return; /* not recorded: the read is sent again after a restart, which is harmless */
    start_write(s);
}

size_t lpr_spool_depth(const lpr_spool_t *s)
{
    return s->depth;
}

static void on_defer_closed(uv_handle_t *h)
{
    lpr_spool_t *s = h->data;
    void (*done)(void *) = s->close_done;
    void *data = s->close_data;
    if (s->fd >= 0)
        close(s->fd);
    if (s->dirfd >= 0)
        close(s->dirfd);
    cmn_buf_dispose(&s->queued);
    cmn_buf_dispose(&s->writing);
    cmn_free(s->unacked);
    cmn_free(s->dir);
    cmn_free(s);
    if (done != NULL)
        done(data);
}

static void on_close_tick(uv_timer_t *t)
{
    lpr_spool_t *s = t->data;
    if (s->busy || s->queued.len > 0) {
        start_write(s);
        return;
    }
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, on_defer_closed);
}

void lpr_spool_close(lpr_spool_t *s, void (*done)(void *data), void *data)
{
    s->closing = 1;
    s->close_done = done;
    s->close_data = data;
    start_write(s);
    uv_timer_start(&s->defer, on_close_tick, 0, 10);
}
