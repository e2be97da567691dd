/*
 * purebench: the pure code of a lane decision, without any I/O, on libcmn.
 *
 *   purebench [--tariffs DIR] [--seconds S] [--only NAME]
 *
 * Measures, each for about S seconds (default 1) on one thread, with clock_gettime(CLOCK_MONOTONIC):
 *   fee            cmn_tariff_fee without explanation, over the tariffs of DIR (config/tariffs: the
 *                  shipped demo city's) and a fixed mix of stays (0 minutes to 3 days, every start
 *                  time of the week, classes small / new_energy / large);
 *   fee_rows       the same with CMN_FEE_EXPLAIN (the explanation's rows and caps), no JSON;
 *   fee_explained  CMN_FEE_EXPLAIN and the JSON explanation written, as the gateway does for
 *                  every exit (cmn_tariff_fee + cmn_fee_explain_json into a fresh buffer);
 *   fee_explained_tree  the same explanation as a jansson tree, serialised (cmn_fee_to_json +
 *                  cmn_json_dump: the same bytes, the way the gateway wrote it before);
 *   plate_parse    cmn_plate_parse (NFKC, separators, upper case, rules, class) of a mix of camera
 *                  reads: ordinary, new energy, police, coach, Hong Kong, lower case, full-width,
 *                  separators, misreads, sentinels, invalid text;
 *   plate_match    one exit read matched to an entry plate: both normalised, both fold keys, and
 *                  cmn_plate_compare (exact, confusable, province, different);
 *   plate_compare  cmn_plate_compare alone on normalised pairs.
 * Prints one JSON object: operations per second and nanoseconds per operation of each, plus a
 * checksum of the results (so the compiler cannot drop the work).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmn/diag.h"
#include "cmn/json.h"
#include "cmn/mem.h"
#include "cmn/plate.h"
#include "cmn/tariff.h"

#define MAX_TARIFFS 32
#define NSTAYS 4096

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct stay {
    int tariff;
    const char *vclass;
    cmn_instant_t entry, exit;
} stay_t;

static cmn_tariff_t *tariffs[MAX_TARIFFS];
static int ntariffs;
static stay_t stays[NSTAYS];
static uint64_t checksum;
static uint64_t json_bytes, json_docs, rows_total, rows_docs;

/* A small deterministic generator (xorshift64*), so every run uses the same mix. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static int load_tariffs(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        perror(dir);
        return -1;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL && ntariffs < MAX_TARIFFS) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        cmn_diag_t diag;
        cmn_diag_init(&diag);
        if (cmn_tariff_load_file(path, &tariffs[ntariffs], &diag) != 0) {
            cmn_diag_print(&diag, "purebench: ", stderr);
            cmn_diag_dispose(&diag);
            closedir(d);
            return -1;
        }
        cmn_diag_dispose(&diag);
        ntariffs++;
    }
    closedir(d);
    if (ntariffs == 0) {
        fprintf(stderr, "purebench: no tariff in %s\n", dir);
        return -1;
    }
    return 0;
}

static void make_stays(void)
{
    static const char *const classes[] = {"small", "small", "small", "new_energy", "large"};
    /* 2026-11-23T00:00:00+08:00, a Monday; entries anywhere in that week. */
    const cmn_instant_t week = 1795363200;
    for (int i = 0; i < NSTAYS; i++) {
        stay_t *s = &stays[i];
        s->tariff = (int)(rnd() % (uint64_t)ntariffs);
        s->vclass = classes[rnd() % 5];
        s->entry = week + (cmn_instant_t)(rnd() % (7 * 86400));
        /* Mostly short stays, some overnight, a few of days. */
        uint64_t kind = rnd() % 10;
        cmn_instant_t len = kind < 6   ? (cmn_instant_t)(rnd() % (4 * 3600))
                            : kind < 9 ? (cmn_instant_t)(rnd() % (20 * 3600))
                                       : (cmn_instant_t)(rnd() % (3 * 86400));
        s->exit = s->entry + len;
    }
}

/* Camera reads, as they arrive: the mix of plate_parse and the exit side of plate_match. */
static const char *const reads[] = {
    "浙A12345",   "浙A·D5678",  "浙a d1234５", "沪B-88Q01", "粤BD12345",  "京A12345F",
    "浙A1208警",  "粤Z1234港",  "苏E1234学",   "浙AF0123",  "浙A2QB01",   "泸A12345",
    "ＷＪ浙12345", "浙Ａ１２３４５", "浙 A 3HX61",  "无车牌",     "浙A1234I",   "川A·12345",
    "使123456",   "浙A12B45挂", "闽D·5S8Z1",  "鲁B12345",    "浙A 0G9P3",  "湘A·D0001",
};
#define NREADS (sizeof reads / sizeof reads[0])

/* Entry plate, exit read: exact, confusable, province, different. */
static const char *const pairs[][2] = {
    {"浙A12345", "浙A12345"},   {"浙A2QB01", "浙A20801"},   {"沪A20801", "浙A2QB01"},
    {"浙AD5678", "浙A05678"},   {"浙A12345", "浙A12346"},   {"粤BD12345", "粤B012345"},
    {"浙A1208警", "浙A1208警"}, {"浙A8M2K7", "浙AB M2K7"},  {"浙A12345", "浙A1234"},
    {"泸A12345", "沪A12345"},   {"浙A3HX61", "浙A3HX6I"},   {"京A12345F", "京A12345F"},
};
#define NPAIRS (sizeof pairs / sizeof pairs[0])

typedef struct result {
    const char *name;
    long long ops;
    double secs;
} result_t;

static void bench_fee(double seconds, int explain, result_t *out)
{
    long long ops = 0;
    double t0 = now_s(), t;
    do {
        for (int i = 0; i < 256; i++) {
            const stay_t *s = &stays[(ops + i) % NSTAYS];
            cmn_fee_t fee;
            const cmn_tariff_t *tf = tariffs[s->tariff];
            if (cmn_tariff_fee(tf, s->vclass, s->entry, s->exit, explain ? CMN_FEE_EXPLAIN : 0,
                               &fee) == 0) {
                checksum += (uint64_t)fee.amount + fee.nrows;
                rows_total += fee.nrows;
                rows_docs++;
                if (explain == 2) {
                    cmn_buf_t b;
                    cmn_buf_init(&b, 1024 * 1024);
                    if (cmn_fee_explain_json(tf, &fee, &b) == 0) {
                        checksum += b.len;
                        json_bytes += b.len;
                        json_docs++;
                    }
                    cmn_buf_dispose(&b);
                } else if (explain == 3) {
                    json_t *j = cmn_fee_to_json(tf, &fee);
                    char *text = cmn_json_dump(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
                    checksum += text ? strlen(text) : 0;
                    cmn_free(text);
                    json_decref(j);
                }
            }
            cmn_fee_dispose(&fee);
        }
        ops += 256;
        t = now_s();
    } while (t - t0 < seconds);
    out->ops = ops;
    out->secs = t - t0;
}

static void bench_parse(double seconds, result_t *out)
{
    long long ops = 0;
    double t0 = now_s(), t;
    do {
        for (int i = 0; i < 256; i++) {
            const char *r = reads[(ops + i) % NREADS];
            cmn_plate_t p;
            int rc = cmn_plate_parse(r, strlen(r), &p);
            checksum += (uint64_t)(rc + p.nchars + (int)p.kind);
        }
        ops += 256;
        t = now_s();
    } while (t - t0 < seconds);
    out->ops = ops;
    out->secs = t - t0;
}

static void bench_match(double seconds, result_t *out)
{
    long long ops = 0;
    double t0 = now_s(), t;
    do {
        for (int i = 0; i < 256; i++) {
            const char *const *pr = pairs[(ops + i) % NPAIRS];
            cmn_plate_t a, b;
            char fa[CMN_PLATE_MAX], fb[CMN_PLATE_MAX];
            cmn_plate_parse(pr[0], strlen(pr[0]), &a);
            cmn_plate_parse(pr[1], strlen(pr[1]), &b);
            cmn_plate_fold_key(a.text, 1, fa, sizeof fa);
            cmn_plate_fold_key(b.text, 1, fb, sizeof fb);
            checksum += (uint64_t)cmn_plate_compare(a.text, b.text) + (strcmp(fa, fb) == 0);
        }
        ops += 256;
        t = now_s();
    } while (t - t0 < seconds);
    out->ops = ops;
    out->secs = t - t0;
}

static void bench_compare(double seconds, result_t *out)
{
    char norm[NPAIRS][2][CMN_PLATE_MAX];
    for (size_t i = 0; i < NPAIRS; i++) {
        for (int k = 0; k < 2; k++)
            cmn_plate_normalize(pairs[i][k], strlen(pairs[i][k]), norm[i][k], CMN_PLATE_MAX);
    }
    long long ops = 0;
    double t0 = now_s(), t;
    do {
        for (int i = 0; i < 1024; i++) {
            size_t k = (size_t)(ops + i) % NPAIRS;
            checksum += (uint64_t)cmn_plate_compare(norm[k][0], norm[k][1]);
        }
        ops += 1024;
        t = now_s();
    } while (t - t0 < seconds);
    out->ops = ops;
    out->secs = t - t0;
}

int main(int argc, char **argv)
{
    const char *dir = "config/tariffs";
    double seconds = 1.0;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--tariffs") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = strtod(argv[++i], NULL);
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            only = argv[++i];
        } else {
            fprintf(stderr, "usage: purebench [--tariffs DIR] [--seconds S] [--only NAME]\n");
            return 2;
        }
    }
    if (load_tariffs(dir) != 0)
        return 1;
    make_stays();

    result_t r[7] = {{"fee", 0, 0},
                     {"fee_rows", 0, 0},
                     {"fee_explained", 0, 0},
                     {"plate_parse", 0, 0},
                     {"plate_match", 0, 0},
                     {"plate_compare", 0, 0},
                     {"fee_explained_tree", 0, 0}};
    /* A short warm-up: ICU's normaliser data and the time-zone tables are loaded lazily. */
    result_t warm;
    bench_fee(0.05, 2, &warm);
    bench_match(0.05, &warm);

#define WANT(k) (only == NULL || strcmp(only, r[k].name) == 0)
    if (WANT(0))
        bench_fee(seconds, 0, &r[0]);
    if (WANT(1))
        bench_fee(seconds, 1, &r[1]);
    if (WANT(2))
        bench_fee(seconds, 2, &r[2]);
    if (WANT(3))
        bench_parse(seconds, &r[3]);
    if (WANT(4))
        bench_match(seconds, &r[4]);
    if (WANT(5))
        bench_compare(seconds, &r[5]);
    if (WANT(6))
        bench_fee(seconds, 3, &r[6]);

    printf("{\"tariffs\":%d,\"stays\":%d,\"reads\":%zu,\"pairs\":%zu", ntariffs, NSTAYS, NREADS,
           NPAIRS);
    for (int i = 0; i < 7; i++)
        if (r[i].ops > 0)
            printf(",\"%s\":{\"ops\":%lld,\"seconds\":%.3f,\"per_s\":%.0f,\"ns\":%.1f}", r[i].name,
               r[i].ops, r[i].secs, (double)r[i].ops / r[i].secs, r[i].secs * 1e9 / (double)r[i].ops);
    printf(",\"explanation_rows_avg\":%.2f,\"explanation_bytes_avg\":%.0f",
           rows_docs ? (double)rows_total / (double)rows_docs : 0.0,
           json_docs ? (double)json_bytes / (double)json_docs : 0.0);
    printf(",\"checksum\":%llu}\n", (unsigned long long)checksum);
    for (int i = 0; i < ntariffs; i++)
        cmn_tariff_free(tariffs[i]);
    return 0;
}
