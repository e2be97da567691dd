#include "cmn/plate.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/utf8.h>

#include "cmn/err.h"

/*
 * Design note.  A plate goes through three stages:
 *
 *  1. normalise: UTF-8 -> UTF-16 (ICU rejects ill-formed input), NFKC, drop separators, upper case,
 *     NFKC again, back to UTF-8.  Everything happens in fixed stack buffers: the input is capped at
 *     PLATE_IN_MAX bytes, so no size a camera controls ever reaches an allocator;
 *  2. unreadable reads (empty text, "no plate" sentinels, wildcards only) are told apart from
 *     wrong ones: the first is a vehicle for manual handling (lane API reason `unreadable`) and
 *     must never become a session keyed on "无车牌", the second is bad input;
 *  3. classify on code points: the mainland rules when the first character is a province, the
 *     embassy rule for 使, and a permissive generic rule for everything else (military, armed
 *     police, foreign and test plates, and province characters the camera misread), because
 *     refusing those would strand real vehicles at the barrier.
 *
 * Fold key, compare and mask work on any NUL-terminated bytes, valid or not: they are called on
 * stored and logged data, and a bad byte there must not crash a lane.
 */

/* No camera sends this much for one plate, even with separators; it keeps the work on the stack. */
#define PLATE_IN_MAX 256
/*
 * NFKC maps no character to more than one separator and every separator takes at least one input
 * byte, so an NFKC result longer than this cannot shrink to CMN_PLATE_MAX_CHARS characters.
 */
#define PLATE_WORK_MAX (4 * PLATE_IN_MAX)

static const char PROVINCES[] = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼";
static const char SUFFIXES[] = "学挂警港澳领";

/*
 * "No plate" texts that cameras and operators send, in normalised form: "NO PLATE" arrives here
 * as "NOPLATE" because the space is a separator, while `/` and `.` are not separators and stay.
 */
static const char *const SENTINELS[] = {
    "无车牌", "无牌", "无牌车",  "未识别", "未知", "无匹配", "无",      "空",
    "车牌",   "...",  "UNKNOWN", "NONE",   "NULL", "N/A",    "NOPLATE",
};

/* Confusable groups from OCR practice (lpr-formats.md 4.3); each folds to its first member. */
static const char *const CONFUSABLE_GROUPS[] = {"0DQO", "8B", "1IT", "5S", "2Z", "6G", "A4"};

/* Clamps a byte length for the ICU macros, which index with int32_t. */
static int32_t clamp_len(size_t len)
{
    return len > INT32_MAX ? INT32_MAX : (int32_t)len;
}

static int is_separator(UChar32 c)
{
    /* U+2212 MINUS SIGN is what people type for a dash on some input methods. */
    return u_isUWhiteSpace(c) || c == 0x00B7 || c == 0x30FB || c == 0x2022 || c == 0x2027 ||
           c == 0x002D || (c >= 0x2010 && c <= 0x2015) || c == 0x2212;
}

/* Removes separators in place; returns the new length in UTF-16 units. */
static int32_t strip_separators(UChar *s, int32_t len)
{
    int32_t i = 0, o = 0;

    while (i < len) {
        int32_t start = i;
        UChar32 c;
        U16_NEXT(s, i, len, c);
        if (is_separator(c))
            continue;
        while (start < i)
            s[o++] = s[start++];
    }
    return o;
}

/*
 * Does the work of cmn_plate_normalize and also says why it failed, for cmn_plate_parse.
 *
 * The second NFKC pass is there for idempotence: removing a separator can bring a base letter and
 * a combining mark together ("A-\u0301"), and upper-casing can produce a decomposed sequence (ΐ);
 * in both cases a second normalisation of the output would otherwise change it again.
 */
static int normalize(const char *in, size_t len, char *out, size_t outsz, const char **reason)
{
    int rc = CMN_EINVAL;
    UErrorCode st = U_ZERO_ERROR;
    UChar a[PLATE_WORK_MAX], b[PLATE_WORK_MAX];
    int32_t alen = 0, blen = 0, olen = 0;
    const UNormalizer2 *nfkc;

    *reason = "no input";
    if (out == NULL || (in == NULL && len > 0))
        goto out;
    if (outsz > 0)
        out[0] = '\0';
    rc = CMN_ETOOBIG;
    *reason = "plate too long";
    if (len > PLATE_IN_MAX)
        goto out;
    rc = CMN_EPARSE;
    *reason = "not valid UTF-8";
    if (len > 0) {
        u_strFromUTF8(b, PLATE_WORK_MAX, &blen, in, (int32_t)len, &st);
        if (U_FAILURE(st))
            goto out;
    }
    /* A C string cannot carry U+0000, and a truncated plate would be a different plate. */
    *reason = "NUL character in the text";
    if (u_memchr(b, 0, blen) != NULL)
        goto out;

    rc = CMN_ETOOBIG;
    *reason = "plate too long";
    nfkc = unorm2_getNFKCInstance(&st);
    if (U_FAILURE(st))
        goto out;
    alen = unorm2_normalize(nfkc, b, blen, a, PLATE_WORK_MAX, &st);
    if (U_FAILURE(st))
        goto out;
    alen = strip_separators(a, alen);
    /* The root locale: a Turkish default locale must not turn "i" into a dotted capital. */
    blen = u_strToUpper(b, PLATE_WORK_MAX, a, alen, "", &st);
    if (U_FAILURE(st))
        goto out;
    alen = unorm2_normalize(nfkc, b, blen, a, PLATE_WORK_MAX, &st);
    if (U_FAILURE(st))
        goto out;
    alen = strip_separators(a, alen);
    if (u_countChar32(a, alen) > CMN_PLATE_MAX_CHARS)
        goto out;

    u_strToUTF8(out, clamp_len(outsz), &olen, a, alen, &st);
    /* The "not terminated" warning means the NUL did not fit: too big for the caller as well. */
    if (U_FAILURE(st) || st == U_STRING_NOT_TERMINATED_WARNING || (size_t)olen >= outsz)
        goto out;
    *reason = NULL;
    rc = olen;
out:
    if (rc < 0 && out != NULL && outsz > 0)
        out[0] = '\0';
    return rc;
}

int cmn_plate_normalize(const char *in, size_t len, char *out, size_t outsz)
{
    const char *reason;

    return normalize(in, len, out, outsz, &reason);
}

/* Whether code point c is one of the characters of the UTF-8 string set. */
static int in_set(const char *set, UChar32 c)
{
    char enc[U8_MAX_LENGTH + 1];
    int32_t n = 0;

    if (c <= 0 || c > 0x10FFFF)
        return 0;
    U8_APPEND_UNSAFE(enc, n, c);
    enc[n] = '\0';
    /* UTF-8 is self-synchronising: a whole character only matches at a character boundary. */
    return strstr(set, enc) != NULL;
}

static int is_digit(UChar32 c)
{
    return c >= '0' && c <= '9';
}

static int is_letter(UChar32 c)
{
    return c >= 'A' && c <= 'Z';
}

static int is_alnum(UChar32 c)
{
    return is_digit(c) || is_letter(c);
}

static int is_io(UChar32 c)
{
    return c == 'I' || c == 'O';
}

static int is_df(UChar32 c)
{
    return c == 'D' || c == 'F';
}

static int is_ideograph(UChar32 c)
{
    /* Unified ideographs only: NFKC has already mapped the compatibility ones onto them. */
    return u_hasBinaryProperty(c, UCHAR_UNIFIED_IDEOGRAPH);
}

/* Checks serial characters cp[from..to): letters and digits, never I or O. */
static const char *check_serial(const UChar32 *cp, int from, int to)
{
    for (int i = from; i < to; i++) {
        if (!is_alnum(cp[i]))
            return "unexpected character in the serial";
        if (is_io(cp[i]))
            return "letter I or O in the serial";
    }
    return NULL;
}

static const char *classify_suffix(const UChar32 *cp, cmn_plate_kind_t *kind)
{
    const char *reason = check_serial(cp, 2, 6);

    if (reason != NULL)
        return reason;
    switch (cp[6]) {
    case 0x5B66: /* 学 */
        *kind = CMN_PLATE_COACH;
        break;
    case 0x6302: /* 挂 */
        *kind = CMN_PLATE_TRAILER;
        break;
    case 0x8B66: /* 警 */
        *kind = CMN_PLATE_POLICE;
        break;
    case 0x9886: /* 领 */
        *kind = CMN_PLATE_CONSULATE;
        break;
    default: /* 港 or 澳, the only suffixes left */
        if (cp[0] != 0x7CA4 /* 粤 */ || cp[1] != 'Z')
            return "港/澳 plates are issued only under 粤Z";
        *kind = cp[6] == 0x6E2F /* 港 */ ? CMN_PLATE_HONG_KONG : CMN_PLATE_MACAU;
        break;
    }
    return NULL;
}

/*
 * New-energy serials are 6 characters: D/F, a letter or digit, 4 digits (small); or 5 digits,
 * D/F (large).  When neither shape fits, the reason follows the D/F the plate does have, since
 * that is the shape the camera most likely saw.
 */
static const char *classify_new_energy(const UChar32 *cp, cmn_plate_kind_t *kind)
{
    const UChar32 *s = cp + 2;
    const char *reason = check_serial(cp, 2, 8);
    int small = 1, large = 1;

    if (reason != NULL)
        return reason;
    for (int i = 2; i < 6; i++)
        small = small && is_digit(s[i]);
    for (int i = 0; i < 5; i++)
        large = large && is_digit(s[i]);
    small = small && is_df(s[0]);
    large = large && is_df(s[5]);
    if (small || large) {
        *kind = CMN_PLATE_NEW_ENERGY;
        return NULL;
    }
    if (is_df(s[0]))
        return "small new-energy plate must end in 4 digits";
    if (is_df(s[5]))
        return "large new-energy plate must start with 5 digits";
    return "new-energy plate without D/F in position 3 or 8";
}

static const char *classify_mainland(const UChar32 *cp, int n, cmn_plate_kind_t *kind)
{
    if (n != 7 && n != 8)
        return "wrong length for a mainland plate (7 or 8 characters)";
    if (is_io(cp[1]))
        return "letter I or O as the authority letter";
    if (!is_letter(cp[1]))
        return "authority character is not a letter";
    if (in_set(SUFFIXES, cp[n - 1])) {
        if (n != 7)
            return "wrong length for a suffix plate (7 characters)";
        return classify_suffix(cp, kind);
    }
    if (n == 8)
        return classify_new_energy(cp, kind);
    if (is_ideograph(cp[6]))
        return "unknown suffix character";
    *kind = CMN_PLATE_ORDINARY;
    return check_serial(cp, 2, 7);
}

static const char *classify(const UChar32 *cp, int n, cmn_plate_kind_t *kind)
{
    for (int i = 0; i < n; i++) {
        if (!is_alnum(cp[i]) && !is_ideograph(cp[i]))
            return "unexpected character";
    }
    if (n > 0 && in_set(PROVINCES, cp[0]))
        return classify_mainland(cp, n, kind);
    if (n > 0 && cp[0] == 0x4F7F /* 使 */) {
        for (int i = 1; i < n; i++) {
            if (!is_digit(cp[i]))
                return "embassy plate must be 使 and 6 digits";
        }
        if (n != 7)
            return "embassy plate must be 使 and 6 digits";
        *kind = CMN_PLATE_EMBASSY;
        return NULL;
    }
    if (n < 2 || n > 10)
        return "wrong length for a plate (2 to 10 characters)";
    *kind = CMN_PLATE_OTHER;
    return NULL;
}

/* Returns the reason when the normalised text is an unreadable read, else NULL. */
static const char *unreadable_reason(const char *text)
{
    size_t i;

    if (text[0] == '\0')
        return "empty read";
    for (size_t k = 0; k < sizeof SENTINELS / sizeof SENTINELS[0]; k++) {
        if (strcmp(text, SENTINELS[k]) == 0)
            return "no-plate sentinel";
    }
    /* Cameras print one wildcard per character they saw but could not read. */
    i = strspn(text, "*?#.");
    if (text[i] == '\0')
        return "only wildcard characters";
    return NULL;
}

static const char *class_of(cmn_plate_kind_t kind)
{
    if (kind == CMN_PLATE_NEW_ENERGY)
        return "new_energy";
    if (kind == CMN_PLATE_TRAILER)
        return "large";
    return "small";
}

int cmn_plate_parse(const char *in, size_t len, cmn_plate_t *plate)
{
    int rc = CMN_EINVAL;
    const char *reason = "no input";
    UChar32 cp[CMN_PLATE_MAX_CHARS];
    cmn_plate_kind_t kind = CMN_PLATE_OTHER;
    int32_t i = 0, tlen;
    int n = 0;

    if (plate == NULL)
        goto out;
    memset(plate, 0, sizeof *plate);
    plate->kind = CMN_PLATE_OTHER;
    rc = normalize(in, len, plate->text, sizeof plate->text, &reason);
    if (rc < 0)
        goto out;
    /* normalize() guarantees valid UTF-8 of at most CMN_PLATE_MAX_CHARS code points. */
    tlen = rc;
    while (i < tlen && n < CMN_PLATE_MAX_CHARS) {
        U8_NEXT(plate->text, i, tlen, cp[n]);
        n++;
    }
    plate->nchars = n;

    rc = CMN_EUNREADABLE;
    reason = unreadable_reason(plate->text);
    if (reason != NULL)
        goto out;
    rc = CMN_EINVAL;
    reason = classify(cp, n, &kind);
    if (reason != NULL)
        goto out;
    plate->kind = kind;
    plate->vclass = class_of(kind);
    rc = 0;
out:
    if (plate != NULL)
        plate->reason = reason;
    return rc;
}

const char *cmn_plate_kind_name(cmn_plate_kind_t kind)
{
    static const char *const names[] = {
        [CMN_PLATE_ORDINARY] = "ordinary", [CMN_PLATE_NEW_ENERGY] = "new_energy",
        [CMN_PLATE_COACH] = "coach",       [CMN_PLATE_TRAILER] = "trailer",
        [CMN_PLATE_POLICE] = "police",     [CMN_PLATE_HONG_KONG] = "hong_kong",
        [CMN_PLATE_MACAU] = "macau",       [CMN_PLATE_CONSULATE] = "consulate",
        [CMN_PLATE_EMBASSY] = "embassy",   [CMN_PLATE_OTHER] = "other",
    };

    if ((unsigned)kind >= sizeof names / sizeof names[0])
        return "unknown";
    return names[kind];
}

static char fold_char(char c)
{
    if (c == '\0')
        return c;
    for (size_t g = 0; g < sizeof CONFUSABLE_GROUPS / sizeof CONFUSABLE_GROUPS[0]; g++) {
        if (strchr(CONFUSABLE_GROUPS[g], c) != NULL)
            return CONFUSABLE_GROUPS[g][0];
    }
    return c;
}

int cmn_plate_fold_key(const char *plate, int fold_province, char *out, size_t outsz)
{
    int rc = CMN_EINVAL;
    int32_t i = 0, len;
    size_t o = 0;
    UChar32 c;

    if (plate == NULL || out == NULL)
        goto out;
    rc = CMN_ETOOBIG;
    if (strlen(plate) >= INT_MAX)
        goto out;
    len = (int32_t)strlen(plate);
    if (fold_province && len > 0 && (unsigned char)plate[0] >= 0x80) {
        /* An ill-formed lead sequence counts as the province too: it is what stands there. */
        U8_NEXT(plate, i, len, c);
        (void)c;
        if (o + 1 >= outsz)
            goto out;
        out[o++] = '*';
    }
    /* Only ASCII is folded, so copying the other bytes one by one keeps characters intact. */
    for (; i < len; i++) {
        if (o + 1 >= outsz)
            goto out;
        out[o++] = fold_char(plate[i]);
    }
    out[o] = '\0';
    rc = (int)o;
out:
    if (rc < 0 && out != NULL && outsz > 0)
        out[0] = '\0';
    return rc;
}

/*
 * Walks both plates one character at a time.  It agrees with the fold keys by construction: two
 * valid plates compare EXACT or CONFUSABLE exactly when their keys without province folding are
 * equal, and anything but NONE exactly when their keys with province folding are.
 */
cmn_plate_match_t cmn_plate_compare(const char *a, const char *b)
{
    cmn_plate_match_t rc = CMN_PLATE_MATCH_NONE;
    int32_t ia = 0, ib = 0, la, lb;
    int idx = 0, confusable = 0, province = 0;

    if (a == NULL || b == NULL)
        goto out;
    rc = CMN_PLATE_MATCH_EXACT;
    if (strcmp(a, b) == 0)
        goto out;
    rc = CMN_PLATE_MATCH_NONE;
    la = clamp_len(strlen(a));
    lb = clamp_len(strlen(b));
    while (ia < la && ib < lb) {
        int32_t sa = ia, sb = ib;
        UChar32 ca, cb;
        U8_NEXT(a, ia, la, ca);
        U8_NEXT(b, ib, lb, cb);
        if (ia - sa == ib - sb && memcmp(a + sa, b + sb, (size_t)(ia - sa)) == 0) {
            idx++;
            continue;
        }
        if (ca < 0 || cb < 0)
            goto out;
        if (ca < 0x80 && cb < 0x80 && fold_char((char)ca) == fold_char((char)cb))
            confusable = 1;
        else if (idx == 0 && ca >= 0x80 && cb >= 0x80)
            province = 1;
        else
            goto out;
        idx++;
    }
    /* A character more or less is never a match: 7 and 8 are different kinds of plate. */
    if (ia < la || ib < lb)
        goto out;
    if (province)
        rc = CMN_PLATE_MATCH_PROVINCE;
    else if (confusable)
        rc = CMN_PLATE_MATCH_CONFUSABLE;
    else
        rc = CMN_PLATE_MATCH_EXACT;
out:
    return rc;
}

/*
 * The output goes to log lines, so a kept character that is ill-formed, invisible (controls,
 * format characters such as U+202E, which could reorder the line) or white space becomes `?`.
 * Truncation never splits a character.
 */
void cmn_plate_mask(const char *plate, char *out, size_t outsz)
{
    int32_t i = 0, len, n = 0, idx = 0;
    size_t o = 0;
    UChar32 c;

    if (out == NULL || outsz == 0)
        return;
    out[0] = '\0';
    if (plate == NULL)
        return;
    len = clamp_len(strlen(plate));
    while (i < len) {
        U8_NEXT(plate, i, len, c);
        n++;
    }
    i = 0;
    while (i < len) {
        int32_t start = i;
        const char *piece;
        size_t plen;
        int keep = n <= 4 ? idx == 0 : idx < 3 || idx == n - 1;
        U8_NEXT(plate, i, len, c);
        if (!keep) {
            piece = "*";
            plen = 1;
        } else if (c < 0 || !u_isprint(c) || u_isUWhiteSpace(c)) {
            piece = "?";
            plen = 1;
        } else {
            piece = plate + start;
            plen = (size_t)(i - start);
        }
        if (o + plen >= outsz)
            break;
        memcpy(out + o, piece, plen);
        o += plen;
        idx++;
    }
    out[o] = '\0';
}
