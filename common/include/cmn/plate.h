#ifndef CMN_PLATE_H
#define CMN_PLATE_H

#include <stddef.h>

/*
 * Licence plates: normalisation, validation, vehicle class, masking for logs and the
 * confusable-aware comparison that matches an exit read to an entry read.
 *
 * Every function here is pure, thread-safe and allocation-free for the caller (ICU's normaliser
 * singletons are process-wide and immutable).
 */

/** Longest normalised plate in bytes, including the NUL (12 characters of up to 4 UTF-8 bytes). */
#define CMN_PLATE_MAX 52
/** Most characters a plate may have after normalisation. */
#define CMN_PLATE_MAX_CHARS 12

typedef enum {
    CMN_PLATE_ORDINARY = 0, /* 7 characters: province, authority letter, 5-character serial */
    CMN_PLATE_NEW_ENERGY,   /* 8 characters, D/F at serial position 1 (small) or 6 (large) */
    CMN_PLATE_COACH,        /* suffix 学 */
    CMN_PLATE_TRAILER,      /* suffix 挂 */
    CMN_PLATE_POLICE,       /* suffix 警 */
    CMN_PLATE_HONG_KONG,    /* 粤Z…港 */
    CMN_PLATE_MACAU,        /* 粤Z…澳 */
    CMN_PLATE_CONSULATE,    /* suffix 领 */
    CMN_PLATE_EMBASSY,      /* prefix 使 and six digits */
    CMN_PLATE_OTHER         /* generic form: foreign, military, armed police, test plates */
} cmn_plate_kind_t;

typedef struct cmn_plate {
    char text[CMN_PLATE_MAX]; /* normalised UTF-8 (empty when the input could not be normalised) */
    int nchars;               /* characters (code points) in text */
    cmn_plate_kind_t kind;    /* meaningful when the plate is valid */
    const char *vclass;       /* "small", "large" or "new_energy"; NULL unless valid */
    const char *reason;       /* static English text when invalid or unreadable, else NULL */
} cmn_plate_t;

/**
 * Normalises plate text as read by a camera or typed by a person: Unicode NFKC, then removes
 * separators (spaces and other white space, `·` U+00B7, `・` U+30FB, `•` U+2022, `‧` U+2027, and
 * hyphens/dashes: `-` U+002D, U+2010..U+2015 and the minus sign U+2212), then upper case (root
 * locale), then NFKC again so that the result is a fixed point: normalising it changes nothing.
 * `/`, `.`, `*`, `?` and `#` are not separators.
 * `in` is `len` bytes of UTF-8 (not necessarily NUL-terminated); `in` may be NULL when len is 0.
 * Returns the length in bytes written to `out` (NUL-terminated), CMN_EPARSE for input that is not
 * valid UTF-8 or contains U+0000, CMN_ETOOBIG when the input is longer than 256 bytes, the result
 * has more than CMN_PLATE_MAX_CHARS characters or does not fit in `outsz`, and CMN_EINVAL for a
 * NULL `out` (or a NULL `in` with len > 0).  On error `out` is left empty when outsz > 0.
 */
int cmn_plate_normalize(const char *in, size_t len, char *out, size_t outsz);

/**
 * Normalises and classifies a plate.
 * Returns 0 for a valid plate (text, nchars, kind, vclass set), CMN_EUNREADABLE for an empty read,
 * a "no plate" sentinel (无车牌, 无牌, 无牌车, 未识别, 未知, 无匹配, 无, 空, 车牌, ..., UNKNOWN,
 * NONE, NULL, N/A, NOPLATE, compared after normalisation so "no plate" and "…" count) or a text
 * made only of `*`, `?`, `#` and `.`, CMN_EPARSE / CMN_ETOOBIG when normalisation fails (as
 * cmn_plate_normalize), and CMN_EINVAL for anything else (NULL `out`: CMN_EINVAL, nothing written).
 * Whenever the result is not 0, `reason` names the rule broken (e.g. "letter I or O in the serial",
 * "not valid UTF-8", "no-plate sentinel").
 * `text` is filled whenever normalisation succeeded, whatever the verdict.
 *
 * Mainland rules: the first character is one of the 31 province abbreviations, the second a letter
 * A–Z without I and O; the serial never contains I or O.  Ordinary: 5 serial characters of letters
 * and digits.  New energy: 6 serial characters, either D/F then a letter or digit then 4 digits
 * (small), or 5 digits then D/F (large).  Suffix plates: 4 serial characters then 学 挂 警 港 澳
 * 领; 港 and 澳 only under 粤Z.  Embassy: 使 followed by 6 digits.  A plate that starts with a
 * province character or 使 but breaks these rules is invalid.  Any other text of 2 to 10 characters
 * made of A–Z, 0–9 and CJK ideographs is a valid plate of kind OTHER (class small): armed police
 * (WJ浙12345), military, foreign plates, and mainland-shaped plates whose first ideograph is not a
 * province (泸A12345, a likely misread of 沪, so that cmn_plate_compare can still pair it).
 * Classes: NEW_ENERGY → "new_energy", TRAILER → "large", everything else → "small".
 */
int cmn_plate_parse(const char *in, size_t len, cmn_plate_t *out);

/** "ordinary", "new_energy", "coach", "trailer", "police", "hong_kong", "macau", "consulate",
 * "embassy" or "other"; "unknown" for a value outside the enum.  Never NULL. */
const char *cmn_plate_kind_name(cmn_plate_kind_t kind);

/**
 * The confusable-folded key of a normalised plate, used to find candidate matches and to
 * de-duplicate reads: each character of a confusable group is replaced by the group's first member
 * (0/D/Q/O → 0, 8/B → 8, 1/I/T → 1, 5/S → 5, 2/Z → 2, 6/G → 6, A/4 → A); when `fold_province` is
 * non-zero a leading non-ASCII character (the province) becomes `*`.  Other characters are copied.
 * Returns the length written to `out` (NUL-terminated), CMN_ETOOBIG when it does not fit in
 * `outsz`, or CMN_EINVAL for a NULL argument; on error `out` is left empty when outsz > 0.
 */
int cmn_plate_fold_key(const char *plate, int fold_province, char *out, size_t outsz);

typedef enum {
    CMN_PLATE_MATCH_EXACT = 0,  /* identical */
    CMN_PLATE_MATCH_CONFUSABLE, /* same length; every difference is within a confusable group */
    CMN_PLATE_MATCH_PROVINCE,   /* the province character differs, the rest is exact or confusable */
    CMN_PLATE_MATCH_NONE        /* anything else, including a different length (7 never matches 8) */
} cmn_plate_match_t;

/**
 * Compares two normalised plates (NUL-terminated UTF-8), character by character.  The province is
 * the first character when it is non-ASCII in both plates.  Agrees with the fold keys: EXACT or
 * CONFUSABLE exactly when the keys without province folding are equal, not NONE exactly when the
 * keys with province folding are.  A NULL plate never matches (NONE).
 */
cmn_plate_match_t cmn_plate_compare(const char *a, const char *b);

/**
 * Masks a plate for logs: the first three and the last character stay, the others become `*`
 * (浙A12345 → 浙A1***5).  Plates of 4 characters or fewer keep only their first character, the
 * others becoming `*` (ABCD → A***).  A kept character that is ill-formed, white space or invisible
 * (controls, format characters) is written as `?`, so the output is always valid UTF-8 for logs.
 * Truncation to `outsz` never splits a character.  NULL `plate` gives "".
 * Always NUL-terminates `out` when outsz > 0; input need not be valid or normalised.
 */
void cmn_plate_mask(const char *plate, char *out, size_t outsz);

#endif
