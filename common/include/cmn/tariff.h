#ifndef CMN_TARIFF_H
#define CMN_TARIFF_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cmn/buf.h"
#include "cmn/diag.h"
#include "cmn/time.h"

/*
 * Tariffs: loading and validating tariff files, and computing fees exactly as the tariff contract
 * (docs/tariffs.md) says.  Integer arithmetic only; money is in the currency's minor unit.
 *
 * A loaded tariff is immutable and may be shared by threads.  cmn_tariff_fee() allocates nothing
 * unless an explanation is asked for, and then only the explanation's rows.
 */

typedef struct cmn_tariff cmn_tariff_t;

/** Upper bounds that keep every sum inside int64 (they are far beyond any real tariff). */
#define CMN_TARIFF_MAX_PRICE 1000000000LL   /* one unit or first period: 10 million yuan */
#define CMN_TARIFF_MAX_CAP 1000000000000LL  /* a cap */
#define CMN_TARIFF_MAX_MINUTES 525600       /* a year, for unit lengths and free periods */
#define CMN_TARIFF_MAX_STAY (3660LL * 86400) /* about ten years */

/** One band of a rule set (bands cover the 24 hours exactly once). */
typedef struct cmn_band {
    char *name;
    int from;           /* minutes after local midnight, 0..1439 */
    int to;             /* idem; to < from wraps midnight, to == from is all day */
    int64_t unit_secs;  /* unit length in seconds */
    int64_t unit_price; /* minor units */
    int has_cap;
    int64_t cap; /* most one occurrence may cost */
} cmn_band_t;

/** The fields in force for one vehicle class, overrides applied. */
typedef struct cmn_tariff_rules {
    const char *vclass; /* NULL for the top-level rules */
    int64_t free_minutes;
    int free_deducted;
    int has_first;
    int64_t first_minutes;
    int64_t first_price;
    cmn_band_t *bands;
    int nbands;
    int has_cap_24h;
    int64_t cap_24h;
    int discount_percent;
    unsigned char band_of_minute[1440]; /* index into bands for each minute of the local day */
} cmn_tariff_rules_t;

/**
 * Loads a tariff file.  On success returns 0 and *out (the caller's; cmn_tariff_free).  On a bad
 * file returns CMN_ECONFIG (or CMN_EIO when it cannot be read) and adds one message per problem to
 * `diag`, each naming the file, the line and column (syntax) or the JSON path (content), the field
 * and the reason.
 */
int cmn_tariff_load_file(const char *path, cmn_tariff_t **out, cmn_diag_t *diag);

/** Same from a parsed document; `origin` names it in messages.  `doc` is borrowed. */
int cmn_tariff_load_json(const char *origin, json_t *doc, cmn_tariff_t **out, cmn_diag_t *diag);

/** Same from text (`len` bytes of UTF-8 JSON). */
int cmn_tariff_load_text(const char *origin, const char *text, size_t len, cmn_tariff_t **out,
                         cmn_diag_t *diag);

void cmn_tariff_free(cmn_tariff_t *t);

const char *cmn_tariff_id(const cmn_tariff_t *t);
/** The version recorded on bills: 16 hex digits of SHA-256 over the canonical JSON of the file. */
const char *cmn_tariff_version(const cmn_tariff_t *t);
const char *cmn_tariff_currency(const cmn_tariff_t *t);
/** Digits after the decimal point of the currency (2 for CNY, 0 for JPY). */
int cmn_tariff_fraction_digits(const cmn_tariff_t *t);
const char *cmn_tariff_timezone(const cmn_tariff_t *t);
/** The canonical JSON text (sorted keys, compact) that the version hashes. Borrowed. */
const char *cmn_tariff_canonical(const cmn_tariff_t *t);
/** The rules in force for a vehicle class (the top-level rules for a class the tariff lacks). */
const cmn_tariff_rules_t *cmn_tariff_rules(const cmn_tariff_t *t, const char *vclass);
/** UTC offset in seconds at instant `at` in the tariff's zone (0 on an ICU failure). */
int cmn_tariff_utc_offset(const cmn_tariff_t *t, cmn_instant_t at);

/** Why a fee is what it is, in words shared with bills. */
typedef enum {
    CMN_FEE_CHARGED = 0, /* the charged interval was cut into units */
    CMN_FEE_FREE_PERIOD, /* the stay was within the free period */
    CMN_FEE_NO_CHARGE    /* free_deducted left nothing to charge */
} cmn_fee_reason_t;

/** A run of consecutive units that share band, occurrence, window, length and prices. */
typedef struct cmn_fee_row {
    cmn_instant_t start;  /* start of the first unit */
    cmn_instant_t end;    /* nominal end of the last unit (start + length), may pass the exit */
    int first_period;     /* the row is the first_period unit */
    int band;             /* index into rules->bands of the band containing the start */
    int64_t occurrence;   /* local day (days since 1970-01-01) the band occurrence began */
    int64_t window;       /* 24-hour window index, from 0 */
    int64_t unit_secs;    /* length of each unit */
    int64_t count;        /* units in the row */
    int64_t unit_price;   /* nominal price of each unit */
    int64_t charged_each; /* what each unit costs after the band cap and the 24-hour cap */
} cmn_fee_row_t;

typedef enum { CMN_CAP_BAND = 0, CMN_CAP_24H } cmn_cap_kind_t;

/** A cap that took effect: the group of units it covers cost `before`, now cost `after`. */
typedef struct cmn_fee_cap {
    cmn_cap_kind_t kind;
    int band;           /* CMN_CAP_BAND: the band */
    int64_t occurrence; /* CMN_CAP_BAND: its local day */
    int64_t window;     /* CMN_CAP_24H: the window */
    int64_t cap;
    int64_t before;
    int64_t after;
} cmn_fee_cap_t;

typedef struct cmn_fee {
    int64_t amount;   /* what the driver pays, minor units */
    int64_t subtotal; /* before the discount */
    int64_t discount; /* subtotal - amount */
    cmn_fee_reason_t reason;
    cmn_instant_t entry;
    cmn_instant_t exit;
    cmn_instant_t charge_start; /* S */
    int64_t units;              /* how many units were charged */
    const cmn_tariff_rules_t *rules; /* borrowed from the tariff */
    /* Only with CMN_FEE_EXPLAIN: */
    cmn_fee_row_t *rows;
    size_t nrows;
    cmn_fee_cap_t *caps;
    size_t ncaps;
} cmn_fee_t;

#define CMN_FEE_EXPLAIN 1

/**
 * Computes the fee for a stay from `entry` to `exit` of a vehicle of class `vclass` (NULL or a
 * class the tariff lacks: the top-level rules).  With CMN_FEE_EXPLAIN in flags, also the rows and
 * caps of the explanation.  Returns 0, CMN_ERANGE when exit < entry or the stay is longer than
 * CMN_TARIFF_MAX_STAY, or CMN_ETZ when the time-zone library fails.
 * Ownership: release *fee with cmn_fee_dispose (always safe after the call, whatever it returned).
 */
int cmn_tariff_fee(const cmn_tariff_t *t, const char *vclass, cmn_instant_t entry,
                   cmn_instant_t exit, int flags, cmn_fee_t *fee);

void cmn_fee_dispose(cmn_fee_t *fee);

/**
 * The explanation as JSON: amount, currency, tariff id and version, class, times (RFC 3339 in the
 * tariff's zone), reason, free period, the rows (units with start, band, length and prices) and the
 * caps applied.  `fee` must have been computed with CMN_FEE_EXPLAIN for rows and caps to appear.
 * Ownership: the caller owns the returned reference.
 */
json_t *cmn_fee_to_json(const cmn_tariff_t *t, const cmn_fee_t *fee);

/**
 * The same explanation as JSON text appended to `out`: byte for byte what cmn_json_dump gives for
 * cmn_fee_to_json() with JSON_COMPACT | JSON_PRESERVE_ORDER, written without the tree of jansson
 * objects (the gateway writes one into every exit's record).  Returns 0, or the buffer's error
 * (CMN_ETOOBIG, CMN_ENOMEM) or CMN_EINVAL for a tariff string that is not UTF-8, with `out` then
 * as it was.
 */
int cmn_fee_explain_json(const cmn_tariff_t *t, const cmn_fee_t *fee, cmn_buf_t *out);

/** The explanation as text for people (one line per row and per cap), appended to `out`. */
int cmn_fee_explain_text(const cmn_tariff_t *t, const cmn_fee_t *fee, cmn_buf_t *out);

#endif
