/*
 * The bridge's spool (spool.h): segments of `R <seq> <record>` and `A <seq>` lines.
 *
 * Design note.
 *
 *   groups      appends and acknowledgements go into `queued`; when no write is out, start_write
 *               swaps it with `writing` and sends it as one write on libuv's thread pool, then one
 *               fsync when it holds reads (and one of the directory when the segment is new).  The
 *               reads' callbacks run once their group is durable.
 *   segments    a group of reads starts a new segment when the active one has grown past the limit;
 *               a read belongs to the segment that was active when its group started; each segment
 *               knows the range of its reads' seqs and how many are not acknowledged.  An `A` line
 *               goes to the active segment, which may be newer than its read's: such "foreign"
 *               acknowledgements are remembered by the segment that holds them.
 *   compaction  a segment other than the active one whose reads are all acknowledged is deleted.
 *               When it holds foreign acknowledgements of reads whose segment is still there, those
 *               are written again into the active segment first (carried), and the file goes once
 *               that group is written: deleting it earlier would bring those reads back after a
 *               restart.
 *   failures    a group that cannot be written fails its reads' callbacks and acknowledges them
 *               (their cameras got an error and send them again); a short write is cut back with
 *               ftruncate, so that the next group never glues onto a torn line.
 */
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

struct seqs {
    uint64_t *v;
    size_t n, cap;
};

struct segment {
    uint64_t n;          /* file number */
    uint64_t first;      /* first read seq in it (UINT64_MAX: none yet) */
    uint64_t last;       /* last read seq in it (when first is set) */
    size_t unacked;      /* reads in it not acknowledged */
    struct seqs foreign; /* acknowledgements it holds of reads in older segments */
    int carry;           /* CARRY_*: those acknowledgements written again into the active segment */
};

enum { CARRY_NONE, CARRY_QUEUED, CARRY_WRITING, CARRY_DONE };

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
    uint64_t segment_max;
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
    struct seqs queued_acks;
    int queued_reads;
    cmn_buf_t writing;
    struct waiter *writing_w;
    struct seqs writing_acks;
    int writing_reads;
    int new_segment;  /* the directory must be fsynced with the next group */
    int force_rotate; /* the active segment may end in a torn line: write no more to it */
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

static void seqs_push(struct seqs *q, uint64_t v)
{
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 16;
        q->v = cmn_xrealloc(q->v, q->cap * sizeof *q->v);
    }
    q->v[q->n++] = v;
}

static void seqs_dispose(struct seqs *q)
{
    cmn_free(q->v);
    q->v = NULL;
    q->n = q->cap = 0;
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

/*
 * The segment still on disk that holds read `seq`, or NULL: its segment was deleted, or the read
 * is still queued (it joins the active segment only when its group starts).  Ranges, not just
 * first seqs: with a segment deleted, the one before it must not claim its reads.
 */
static struct segment *segment_with(lpr_spool_t *s, uint64_t seq)
{
    for (size_t i = s->nseg; i-- > 0;) {
        const struct segment *g = &s->seg[i];
        if (g->first != UINT64_MAX && g->first <= seq)
            return seq <= g->last ? &s->seg[i] : NULL;
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Whether segment i holds an acknowledgement of a read in an older segment still on disk. */
static int protects_older(lpr_spool_t *s, size_t i)
{
    for (size_t k = 0; k < s->seg[i].foreign.n; k++) {
        const struct segment *g = segment_with(s, s->seg[i].foreign.v[k]);
        if (g != NULL && g < &s->seg[i])
            return 1;
    }
    return 0;
}

static void on_unlinked(uv_fs_t *req)
{
    if (req->result < 0)
        cmn_log(CMN_LOG_WARN, "spool", "cannot delete %s: %s", req->path,
                uv_strerror((int)req->result));
    uv_fs_req_cleanup(req);
    cmn_free(req);
}

/* Forgets segment i and deletes its file (on the thread pool when the loop runs). */
static void drop_segment(lpr_spool_t *s, size_t i, int async)
{
    char path[4200];
    seg_path(s, s->seg[i].n, path, sizeof path);
    if (async) {
        uv_fs_t *req = cmn_xalloc(sizeof *req);
        /* Nothing waits for it. */
        if (uv_fs_unlink(s->loop, req, path, on_unlinked) != 0)
            cmn_free(req);
    } else {
        unlink(path);
    }
    seqs_dispose(&s->seg[i].foreign);
    memmove(&s->seg[i], &s->seg[i + 1], (s->nseg - i - 1) * sizeof *s->seg);
    s->nseg--;
}

/* ---- opening ----------------------------------------------------------------------------- */

struct loaded {
    uint64_t seq;
    size_t seg;
    char *record;
};

struct loaded_ack {
    uint64_t seq;
    size_t seg;
};

struct acks {
    struct loaded_ack *v;
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
        /* The shortest line is "A 1": anything shorter, or without a seq, is not ours. */
        if (n < 4 || line[1] != ' ' || line[2] < '0' || line[2] > '9')
            continue;
        char *end;
        uint64_t seq = strtoull(line + 2, &end, 10);
        if (line[0] == 'R' && *end == ' ') {
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
            s->seg[si].last = seq;
            if (seq >= s->next_seq)
                s->next_seq = seq + 1;
        } else if (line[0] == 'A' && *end == '\0') {
            if (acks->n == acks->cap) {
                acks->cap = acks->cap ? acks->cap * 2 : 256;
                acks->v = cmn_xrealloc(acks->v, acks->cap * sizeof *acks->v);
            }
            acks->v[acks->n].seq = seq;
            acks->v[acks->n].seg = si;
            acks->n++;
            /* A seq is never used twice, even when the segment of its read has gone. */
            if (seq >= s->next_seq)
                s->next_seq = seq + 1;
        }
    }
    free(line); /* checksrc: allow (getline's buffer) */
    fclose(f);
    return 0;
}

static void free_segments(lpr_spool_t *s)
{
    for (size_t i = 0; i < s->nseg; i++)
        seqs_dispose(&s->seg[i].foreign);
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
    uint64_t *acked = NULL;

    *out = NULL;
    *pending = NULL;
    *npending = 0;
    s->loop = loop;
    s->dir = cmn_xstrdup(dir);
    s->next_seq = 1;
    s->fd = -1;
    s->dirfd = -1;
    s->segment_max = SEGMENT_MAX_BYTES;
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
        s->nseg++;
        if (load_segment(s, s->nseg - 1, &reads, &nreads, &rcap, &acks) != 0) {
            cmn_log(CMN_LOG_ERROR, "spool", "cannot read segment %llu of %s",
                    (unsigned long long)nums[i], dir);
            goto fail;
        }
    }
    acked = cmn_xcalloc(acks.n ? acks.n : 1, sizeof *acked);
    for (size_t i = 0; i < acks.n; i++) {
        acked[i] = acks.v[i].seq;
        /* Remembered so that compaction never deletes the only record of an acknowledgement. */
        const struct segment *g = segment_with(s, acks.v[i].seq);
        if (g != NULL && g < &s->seg[acks.v[i].seg])
            seqs_push(&s->seg[acks.v[i].seg].foreign, acks.v[i].seq);
    }
    if (acks.n > 0)
        qsort(acked, acks.n, sizeof *acked, cmp_u64);
    s->base = nreads > 0 ? reads[0].seq : s->next_seq;
    for (size_t i = 0; i < nreads; i++) {
        if (acks.n > 0 && bsearch(&reads[i].seq, acked, acks.n, sizeof *acked, cmp_u64))
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
    cmn_free(acked);
    acked = NULL;

    /*
     * Segments holding nothing unacknowledged go now, oldest first, unless they hold the
     * acknowledgement of a read in an older segment that stays (compaction carries those later);
     * a new segment takes the writes.
     */
    for (size_t i = 0; i < s->nseg; i++) {
        if (s->seg[i].unacked == 0 && !protects_older(s, i)) {
            drop_segment(s, i, 0);
            i--;
        }
    }
    uint64_t next_n = nn > 0 ? nums[nn - 1] + 1 : 1;
    char path[4200];
    seg_path(s, next_n, path, sizeof path);
    s->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (s->fd < 0) {
        cmn_log(CMN_LOG_ERROR, "spool", "cannot open %s: %s", path, strerror(errno));
        goto fail;
    }
    s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dirfd < 0) {
        cmn_log(CMN_LOG_ERROR, "spool", "cannot open %s: %s", dir, strerror(errno));
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
    cmn_free(acked);
    lpr_spooled_free(*pending, *npending);
    *pending = NULL;
    *npending = 0;
    if (s->fd >= 0) {
        /* The new segment is empty: leave nothing behind. */
        seg_path(s, nn > 0 ? nums[nn - 1] + 1 : 1, path, sizeof path);
        unlink(path);
        close(s->fd);
    }
    if (s->dirfd >= 0)
        close(s->dirfd);
    free_segments(s);
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

void lpr_spool_set_segment_max(lpr_spool_t *s, uint64_t bytes)
{
    s->segment_max = bytes > 0 ? bytes : 1;
}

/* ---- writing ----------------------------------------------------------------------------- */

static void start_write(lpr_spool_t *s);

/* Queues an `A` line; 0, or CMN_ETOOBIG when the queue is full (the read is then sent again after
 * a restart, which is harmless). */
static int queue_ack(lpr_spool_t *s, uint64_t seq)
{
    if (cmn_buf_printf(&s->queued, "A %llu\n", (unsigned long long)seq) != 0)
        return CMN_ETOOBIG;
    seqs_push(&s->queued_acks, seq);
    return 0;
}

/* Marks a read acknowledged in memory; the caller writes its `A` line. */
static int forget_read(lpr_spool_t *s, uint64_t seq)
{
    if (!is_unacked(s, seq))
        return 0;
    mark(s, seq, 0);
    s->depth--;
    struct segment *g = segment_with(s, seq);
    if (g != NULL && g->unacked > 0)
        g->unacked--;
    return 1;
}

static void compact(lpr_spool_t *s)
{
    /* Every segment but the active one (the last) may go once all its reads are acknowledged. */
    for (size_t i = 0; i + 1 < s->nseg; i++) {
        struct segment *g = &s->seg[i];
        if (g->unacked > 0 || g->carry == CARRY_QUEUED || g->carry == CARRY_WRITING)
            continue;
        if (g->carry == CARRY_NONE && protects_older(s, i)) {
            /* Written again into the active segment; the file goes after that group. */
            for (size_t k = 0; k < g->foreign.n; k++) {
                const struct segment *t = segment_with(s, g->foreign.v[k]);
                if (t != NULL && t < g)
                    queue_ack(s, g->foreign.v[k]);
            }
            g->carry = CARRY_QUEUED;
            continue;
        }
        drop_segment(s, i, 1);
        i--;
    }
}

static void finish_group(lpr_spool_t *s, int status)
{
    struct waiter *w = s->writing_w;
    s->writing_w = NULL;
    if (status != 0) {
        /*
         * The reads did not make it (or not surely): their cameras get an error and send them
         * again, so they are acknowledged here, and a restart does not deliver them as well.
         */
        for (struct waiter *x = w; x != NULL; x = x->next) {
            if (forget_read(s, x->seq))
                queue_ack(s, x->seq);
        }
    }
    /* Carried acknowledgements of a failed group are carried again by the next compaction. */
    for (size_t i = 0; i < s->nseg; i++) {
        if (s->seg[i].carry == CARRY_WRITING)
            s->seg[i].carry = status == 0 ? CARRY_DONE : CARRY_NONE;
    }
    cmn_buf_reset(&s->writing);
    s->writing_acks.n = 0;
    s->writing_reads = 0;
    s->busy = 0;
    while (w != NULL) {
        struct waiter *next = w->next;
        w->cb(w->data, status, w->seq);
        cmn_free(w);
        w = next;
    }
    /* After a failure, nothing more than the acknowledgements of the failed reads is tried now:
     * a disk that keeps failing must not keep the thread pool busy. */
    if (status == 0)
        compact(s);
    if (s->queued.len > 0)
        start_write(s);
}

static void on_dir_synced(uv_fs_t *req)
{
    lpr_spool_t *s = req->data;
    int status = (int)req->result < 0 ? (int)req->result : 0;
    uv_fs_req_cleanup(req);
    if (status != 0)
        cmn_log(CMN_LOG_ERROR, "spool", "fsync of %s failed: %s", s->dir, uv_strerror(status));
    finish_group(s, status);
}

static void on_synced(uv_fs_t *req)
{
    lpr_spool_t *s = req->data;
    int status = (int)req->result < 0 ? (int)req->result : 0;
    uv_fs_req_cleanup(req);
    if (status != 0)
        cmn_log(CMN_LOG_ERROR, "spool", "fsync failed: %s", uv_strerror(status));
    if (status == 0 && s->new_segment) {
        /* A new file is durable only once its directory entry is. */
        s->new_segment = 0;
        s->req.data = s;
        if (uv_fs_fsync(s->loop, &s->req, s->dirfd, on_dir_synced) == 0)
            return;
    }
    finish_group(s, status);
}

static void on_truncated(uv_fs_t *req)
{
    lpr_spool_t *s = req->data;
    if (req->result < 0) {
        cmn_log(CMN_LOG_ERROR, "spool", "cannot cut a torn line: %s; a new segment follows",
                uv_strerror((int)req->result));
        s->force_rotate = 1;
    }
    uv_fs_req_cleanup(req);
    finish_group(s, CMN_EIO);
}

static void on_written(uv_fs_t *req)
{
    lpr_spool_t *s = req->data;
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    if (n < 0 || (size_t)n != s->buf.len) {
        cmn_log(CMN_LOG_ERROR, "spool", "write failed: %s",
                n < 0 ? uv_strerror((int)n) : "short write");
        if (n > 0) {
            /* Part of a line is on disk: the next group would complete it into a wrong line. */
            s->req.data = s;
            if (uv_fs_ftruncate(s->loop, &s->req, s->fd, (int64_t)s->fd_size, on_truncated) == 0)
                return;
            s->force_rotate = 1;
        }
        finish_group(s, n < 0 ? (int)n : CMN_EIO);
        return;
    }
    s->fd_size += (uint64_t)n;
    if (s->writing_reads == 0) {
        finish_group(s, 0); /* acknowledgements only: no fsync needed */
        return;
    }
    s->req.data = s;
    if (uv_fs_fsync(s->loop, &s->req, s->fd, on_synced) != 0)
        finish_group(s, CMN_EIO);
}

/*
 * A new segment when the active one is large and the group holds reads.  A group of
 * acknowledgements only stays in the active segment: were it to start one, the segment it leaves
 * could need its own acknowledgements carried, by another group that starts another segment, and so
 * on.  open() is not a disk wait worth a thread.
 */
static void rotate(lpr_spool_t *s)
{
    int full = s->fd_size >= s->segment_max && s->queued_reads > 0;
    if ((!s->force_rotate && !full) || s->nseg >= MAX_SEGMENTS)
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
    s->force_rotate = 0;
    memset(&s->seg[s->nseg], 0, sizeof s->seg[s->nseg]);
    s->seg[s->nseg].n = next_n;
    s->seg[s->nseg].first = UINT64_MAX;
    s->nseg++;
    s->new_segment = 1;
}

static void start_write(lpr_spool_t *s)
{
    if (s->busy || s->queued.len == 0)
        return;
    rotate(s);
    /* The group's reads belong to the active segment (those acknowledged already count as such). */
    struct segment *act = &s->seg[s->nseg - 1];
    for (struct waiter *w = s->queued_w; w != NULL; w = w->next) {
        if (act->first == UINT64_MAX)
            act->first = w->seq;
        act->last = w->seq;
        if (is_unacked(s, w->seq))
            act->unacked++;
    }
    for (size_t i = 0; i < s->queued_acks.n; i++) {
        const struct segment *g = segment_with(s, s->queued_acks.v[i]);
        if (g != NULL && g != act)
            seqs_push(&act->foreign, s->queued_acks.v[i]);
    }
    cmn_buf_t tmp = s->writing;
    s->writing = s->queued;
    s->queued = tmp;
    struct seqs tq = s->writing_acks;
    s->writing_acks = s->queued_acks;
    s->queued_acks = tq;
    s->writing_w = s->queued_w;
    s->writing_reads = s->queued_reads;
    for (size_t i = 0; i < s->nseg; i++) {
        if (s->seg[i].carry == CARRY_QUEUED)
            s->seg[i].carry = CARRY_WRITING;
    }
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
    /* A NUL could not come back: lpr_spooled_t records are NUL-terminated. */
    if (s->closing || memchr(record, '\n', len) != NULL || memchr(record, '\0', len) != NULL)
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
    if (!forget_read(s, seq))
        return;
    if (queue_ack(s, seq) != 0)
        return;
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
    free_segments(s);
    seqs_dispose(&s->queued_acks);
    seqs_dispose(&s->writing_acks);
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
