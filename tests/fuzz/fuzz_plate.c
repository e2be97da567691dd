/*
 * libFuzzer harness for cmn/plate.h.  The input is plate text as a camera or a person might send
 * it.  Besides "no crash, no sanitizer report", it checks the module's invariants:
 *
 *  - normalize and parse agree, and their output respects CMN_PLATE_MAX / CMN_PLATE_MAX_CHARS;
 *  - normalisation is idempotent, so stored plates normalise to themselves;
 *  - a valid plate has a class and no reason, anything else a reason and no class;
 *  - fold keys never grow, and are fixed points of folding;
 *  - compare is symmetric, compare(x, x) is EXACT, and compare agrees with the fold keys;
 *  - mask always NUL-terminates within outsz and writes valid UTF-8, whatever the bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/utf8.h>

#include "cmn/err.h"
#include "cmn/plate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Longer inputs only exercise the input cap, which the first few hundred bytes already reach. */
#define RAW_MAX 1024

static const char FIXED[] = "浙A12345";

static int is_valid_utf8(const char *s)
{
    int32_t i = 0, len = (int32_t)strlen(s);
    UChar32 c;

    while (i < len) {
        U8_NEXT(s, i, len, c);
        if (c < 0)
            return 0;
    }
    return 1;
}

static int count_chars(const char *s)
{
    int32_t i = 0, len = (int32_t)strlen(s);
    int n = 0;
    UChar32 c;

    while (i < len) {
        U8_NEXT(s, i, len, c);
        (void)c;
        n++;
    }
    return n;
}

static void check_mask(const char *plate)
{
    static const size_t sizes[] = {1, 2, 3, 4, 5, 8, 13, CMN_PLATE_MAX, 80};
    char out[96];

    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        memset(out, 0x5A, sizeof out);
        cmn_plate_mask(plate, out, sizes[k]);
        CHECK(memchr(out, '\0', sizes[k]) != NULL);
        for (size_t j = sizes[k]; j < sizeof out; j++)
            CHECK((unsigned char)out[j] == 0x5A);
        CHECK(is_valid_utf8(out));
        CHECK(count_chars(out) <= count_chars(plate));
    }
    memset(out, 0x5A, sizeof out);
    cmn_plate_mask(plate, out, 0);
    CHECK((unsigned char)out[0] == 0x5A);
}

static void check_fold(const char *plate, int valid)
{
    char k0[CMN_PLATE_MAX], k1[CMN_PLATE_MAX], again[CMN_PLATE_MAX];
    char kf0[CMN_PLATE_MAX], kf1[CMN_PLATE_MAX];
    int n0 = cmn_plate_fold_key(plate, 0, k0, sizeof k0);
    int n1 = cmn_plate_fold_key(plate, 1, k1, sizeof k1);
    cmn_plate_match_t m = cmn_plate_compare(plate, FIXED);

    /* A normalised plate is shorter than CMN_PLATE_MAX, and folding never adds bytes. */
    CHECK(n0 >= 0 && (size_t)n0 == strlen(plate) && (size_t)n0 < CMN_PLATE_MAX);
    CHECK(n1 >= 0 && n1 <= n0 && (size_t)n1 == strlen(k1));
    CHECK(cmn_plate_fold_key(k0, 0, again, sizeof again) == n0 && strcmp(again, k0) == 0);
    CHECK(cmn_plate_fold_key(k1, 1, again, sizeof again) == n1 && strcmp(again, k1) == 0);

    CHECK(cmn_plate_compare(plate, plate) == CMN_PLATE_MATCH_EXACT);
    CHECK(cmn_plate_compare(FIXED, plate) == m);
    CHECK((m == CMN_PLATE_MATCH_EXACT) == (strcmp(plate, FIXED) == 0));
    if (!valid)
        return;
    /* Valid plates hold no '*', so the province placeholder cannot collide with a character. */
    CHECK(cmn_plate_fold_key(FIXED, 0, kf0, sizeof kf0) > 0);
    CHECK(cmn_plate_fold_key(FIXED, 1, kf1, sizeof kf1) > 0);
    CHECK((strcmp(k0, kf0) == 0) ==
          (m == CMN_PLATE_MATCH_EXACT || m == CMN_PLATE_MATCH_CONFUSABLE));
    CHECK((strcmp(k1, kf1) == 0) == (m != CMN_PLATE_MATCH_NONE));
}

static void check_parse(const uint8_t *data, size_t size)
{
    char norm[CMN_PLATE_MAX], again[CMN_PLATE_MAX];
    cmn_plate_t p, q;
    int n = cmn_plate_normalize((const char *)data, size, norm, sizeof norm);
    int rc = cmn_plate_parse((const char *)data, size, &p);

    CHECK(rc == 0 || rc == CMN_EINVAL || rc == CMN_EUNREADABLE || rc == CMN_EPARSE ||
          rc == CMN_ETOOBIG);
    CHECK(memchr(p.text, '\0', sizeof p.text) != NULL);
    if (n < 0) {
        CHECK(n == CMN_EPARSE || n == CMN_ETOOBIG);
        CHECK(rc == n && norm[0] == '\0' && p.text[0] == '\0' && p.nchars == 0);
        CHECK(p.reason != NULL && p.vclass == NULL);
        return;
    }
    CHECK((size_t)n == strlen(norm) && (size_t)n < CMN_PLATE_MAX);
    CHECK(strcmp(norm, p.text) == 0);
    CHECK(is_valid_utf8(norm));
    CHECK(p.nchars == count_chars(norm) && p.nchars <= CMN_PLATE_MAX_CHARS);
    CHECK((n == 0) == (p.nchars == 0));
    if (n == 0)
        CHECK(rc == CMN_EUNREADABLE);
    if (rc == 0) {
        CHECK(p.reason == NULL && p.vclass != NULL);
        CHECK(p.nchars >= 2 && p.nchars <= 10);
        CHECK(strcmp(cmn_plate_kind_name(p.kind), "unknown") != 0);
        CHECK(strcmp(p.vclass, p.kind == CMN_PLATE_NEW_ENERGY ? "new_energy"
                               : p.kind == CMN_PLATE_TRAILER  ? "large"
                                                              : "small") == 0);
        CHECK(strpbrk(p.text, "*?#./") == NULL);
    } else {
        CHECK(p.reason != NULL && p.vclass == NULL);
    }

    /* Normalising a normalised plate changes nothing, and the verdict stays the same. */
    CHECK(cmn_plate_normalize(norm, (size_t)n, again, sizeof again) == n);
    CHECK(strcmp(again, norm) == 0);
    CHECK(cmn_plate_parse(norm, (size_t)n, &q) == rc);
    CHECK(strcmp(q.text, p.text) == 0 && q.nchars == p.nchars);
    if (rc == 0)
        CHECK(q.kind == p.kind);
    else
        CHECK(strcmp(q.reason, p.reason) == 0);

    check_fold(norm, rc == 0);
    check_mask(norm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char raw[RAW_MAX + 1], out[CMN_PLATE_MAX];
    size_t rawlen = size < RAW_MAX ? size : RAW_MAX;

    check_parse(data, size);

    /* The functions that take stored text must survive any bytes, valid or not. */
    memcpy(raw, data, rawlen);
    raw[rawlen] = '\0';
    check_mask(raw);
    for (int fp = 0; fp <= 1; fp++) {
        int k = cmn_plate_fold_key(raw, fp, out, sizeof out);
        CHECK(k == CMN_ETOOBIG || (k >= 0 && (size_t)k == strlen(out)));
        if (k == CMN_ETOOBIG)
            CHECK(out[0] == '\0' && strlen(raw) >= sizeof out);
    }
    CHECK(cmn_plate_compare(raw, raw) == CMN_PLATE_MATCH_EXACT);
    CHECK(cmn_plate_compare(raw, FIXED) == cmn_plate_compare(FIXED, raw));
    return 0;
}
