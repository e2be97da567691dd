#ifndef LPR_PARSE_H
#define LPR_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "cmn/plate.h"
#include "cmn/time.h"

/*
 * Camera and LPR-engine payloads → at most one normalised plate read.
 *
 * lpr_parse() takes what an HTTP push delivered (the Content-Type header, possibly absent, and the
 * complete body) and recognises the format from the content:
 *
 *   source "openalpr"         JSON with data_type alpr_results (alpr -j, alprd), alpr_group
 *                             (commercial agent / Rekor Scout) or heartbeat;
 *   source "platerecognizer"  JSON {"hook":{"event":"image.done"|"recognition",...},"data":{...}}
 *                             (Snapshot and Stream webhooks), alone or as the `json` part of a
 *                             multipart/form-data body (webhook with image);
 *   source "hikvision"        ISAPI EventNotificationAlert XML (any namespace: isapi.org,
 *                             hikvision.com or none), alone or as the XML part of a multipart body
 *                             with JPEG parts.
 *
 * The Content-Type is only used for a multipart boundary and a charset parameter: alprd posts raw
 * JSON as application/x-www-form-urlencoded, so JSON and XML are told apart by their first
 * character.  Input must be UTF-8: a declared charset or XML encoding other than UTF-8 (GBK from
 * mainland firmware), UTF-16/32 and NUL bytes are refused with a clear reason.
 *
 * XML goes through libxml2 without network access, without entity substitution, and a DOCTYPE is
 * refused outright (camera payloads never carry one); JSON goes through Jansson.
 *
 * Everything is pure (no I/O) and thread-safe: all state is in the caller's lpr_result_t.  The
 * first call initialises libxml2 once (pthread_once); libxml2's per-thread error handlers are
 * silenced during a call and restored before it returns.
 */

/** At most this many candidates are kept per read. */
#define LPR_MAX_CANDIDATES 8
/** Sizes, NUL included, of the text fields of a read; longer values are cut at a UTF-8 character
 * boundary (plate_raw, camera) or dropped (camera_direction, plate_color). */
#define LPR_RAW_MAX 64
#define LPR_CAMERA_MAX 96
#define LPR_SHORT_MAX 32
#define LPR_REF_MAX 160
#define LPR_ERROR_MAX 200
/** Largest body lpr_parse accepts (multipart with pictures included), and largest JSON or XML
 * document inside it; beyond either the result is CMN_ETOOBIG. */
#define LPR_MAX_BODY (16u << 20)
#define LPR_MAX_DOCUMENT (4u << 20)
/** A confidence the source did not give. */
#define LPR_CONF_UNKNOWN (-1.0)

typedef enum {
    LPR_FORMAT_UNKNOWN = 0,
    LPR_FORMAT_OPENALPR_RESULTS,   /* data_type "alpr_results": one frame, results[] */
    LPR_FORMAT_OPENALPR_GROUP,     /* data_type "alpr_group": best_plate of a group of frames */
    LPR_FORMAT_OPENALPR_HEARTBEAT, /* data_type "heartbeat" */
    LPR_FORMAT_PR_SNAPSHOT,        /* hook.event "image.done" */
    LPR_FORMAT_PR_STREAM,          /* hook.event "recognition" */
    LPR_FORMAT_HIKVISION_ANPR,     /* EventNotificationAlert, eventType ANPR */
    LPR_FORMAT_HIKVISION_EVENT     /* EventNotificationAlert of any other eventType */
} lpr_format_t;

typedef enum {
    LPR_OUTCOME_READ = 0,  /* one read in result.read */
    LPR_OUTCOME_NO_PLATE,  /* a recognition payload without any plate (empty results[]) */
    LPR_OUTCOME_HEARTBEAT, /* OpenALPR heartbeat, Hikvision videoloss/inactive keep-alive */
    LPR_OUTCOME_IGNORED    /* a Hikvision event that is not ANPR (motion, tamper, ...) */
} lpr_outcome_t;

typedef struct lpr_candidate {
    char plate[CMN_PLATE_MAX]; /* normalised and valid (cmn_plate_parse returned 0) */
    double confidence;         /* 0..1, or LPR_CONF_UNKNOWN (Plate Recognizer Stream) */
} lpr_candidate_t;

typedef struct lpr_read {
    /*
     * Unreadable: the source saw a vehicle but no usable plate: empty text, a sentinel such as
     * 无车牌 or UNKNOWN, or a text cmn_plate_parse refuses when no candidate is valid either.
     * Then plate is "", ncandidates is 0, vclass is "small" and unreadable_reason says why.
     */
    int unreadable;
    const char *unreadable_reason; /* static English text; NULL when readable */
    char plate[CMN_PLATE_MAX];     /* normalised (cmn_plate_parse), "" when unreadable */
    cmn_plate_kind_t kind;         /* CMN_PLATE_OTHER when unreadable */
    const char *vclass;            /* "small", "large" or "new_energy"; never NULL */
    char plate_raw[LPR_RAW_MAX];   /* the text as the source sent it (for audit) */
    double confidence;             /* of the read text, 0..1, or LPR_CONF_UNKNOWN */
    int ncandidates;               /* candidates[0] is the plate when readable */
    lpr_candidate_t candidates[LPR_MAX_CANDIDATES];
    int has_ts;                           /* the payload carried a usable capture time */
    int64_t ts_ms;                        /* capture instant, ms since the Unix epoch (UTC) */
    cmn_instant_t ts;                     /* the same in whole seconds (floor) */
    const char *source;                   /* "openalpr", "platerecognizer" or "hikvision" */
    char camera[LPR_CAMERA_MAX];          /* how the source names the camera; "" when it does not */
    char camera_direction[LPR_SHORT_MAX]; /* the camera's own direction, opaque; "" if unknown */
    char plate_color[LPR_SHORT_MAX];      /* as the source names it; "" if unknown */
    char source_ref[LPR_REF_MAX];         /* transport de-duplication key; "" when none */
} lpr_read_t;

typedef struct lpr_result {
    lpr_format_t format;
    const char *source;    /* as in lpr_read_t; NULL when the format was not recognised */
    int multipart;         /* the document came in a multipart body */
    lpr_outcome_t outcome; /* meaningful when lpr_parse returned 0 */
    int nreads;            /* 1 for LPR_OUTCOME_READ, else 0 */
    int nplates;           /* plates the payload held; several in one frame still give one read */
    lpr_read_t read;
    char error[LPR_ERROR_MAX]; /* one line (no newline) when lpr_parse failed, else "" */
} lpr_result_t;

/**
 * Parses one payload.  `ctype` is the Content-Type value (`ctype_len` bytes, need not be
 * NUL-terminated; NULL or empty when the request had none); `body` is the complete body.
 *
 * Returns 0 with res->outcome saying whether there is a read (nreads 1) or why not (nreads 0), or
 * a negative code with a one-line reason in res->error:
 *   CMN_EPARSE   malformed or truncated JSON/XML/multipart, duplicate JSON keys, an unknown format
 *                or event, a refused encoding or DOCTYPE, a field of the wrong type (e.g. results
 *                not an array), a capture time that is present but not a valid time;
 *   CMN_ETOOBIG  body over LPR_MAX_BODY, document over LPR_MAX_DOCUMENT, multipart limits;
 *   CMN_ENOMEM   Jansson or libxml2 ran out of memory;
 *   CMN_EINVAL   NULL res, or NULL body with body_len > 0.
 * The body is complete by contract, so running out of bytes is CMN_EPARSE ("truncated ..."),
 * never CMN_AGAIN.
 *
 * Selecting the read: when a frame holds several plates, the one with the highest detection ×
 * read confidence is the vehicle in the lane.  Detection is Plate Recognizer's dscore; OpenALPR
 * has none, so its detection is the plate's box area relative to the largest plate in the frame
 * (a parked car in the background shows a small plate).  A missing detection counts as 1, a
 * missing read confidence as 0; on a tie the first plate wins.  An alpr_group is one plate
 * (best_plate, else best_plate_number) timed at epoch_start, the vehicle's first sighting.
 *
 * Normalisation: plate text and candidates go through cmn_plate_parse; candidates are the read's
 * plate first, then the source's list, deduplicated after normalisation (keeping the highest
 * confidence), invalid ones dropped, at most LPR_MAX_CANDIDATES.  When the read's own text is
 * invalid (not a sentinel), the best valid candidate becomes the plate with its own confidence.
 * Confidence: OpenALPR 0–100 → /100; Plate Recognizer score as is; Hikvision confidenceLevel: an
 * integer is 0–100, a decimal number ≤ 1 is 0–1; clamped to [0, 1].
 *
 * Time: epoch numbers below 10^11 are seconds, others milliseconds; RFC 3339 text with a zone is
 * exact, fractions kept to the millisecond; Plate Recognizer text without a zone is UTC (its
 * documented zone); Hikvision text without a zone is device-local time in an unknown zone, so
 * has_ts is 0 and the caller stamps the read with its receive time.  No time at all: has_ts 0.
 *
 * Identity, per source (empty when the payload lacks the fields):
 *   openalpr         source_ref uuid (alprd) or best_uuid (group); camera "site_id/camera_id";
 *   platerecognizer  source_ref "hook.id@data.timestamp" (the timestamp text as sent); camera
 *                    data.camera_id; camera_direction results[].direction (number as text);
 *   hikvision        source_ref the alert's UUID, else "ipAddress/channelID/dateTime" (never
 *                    activePostCount, which counts re-uploads of the same alarm); camera
 *                    "deviceID|macAddress|ipAddress/channelID"; camera_direction and plate_color
 *                    from ANPR/direction and ANPR/plateColor, "unknown" meaning not given;
 *                    ANPR/originalLicensePlate is an extra candidate without confidence.
 * A Hikvision eventType other than ANPR is LPR_OUTCOME_HEARTBEAT for videoloss/inactive (the
 * alert stream's keep-alive) and LPR_OUTCOME_IGNORED otherwise.
 *
 * Ownership: everything lands in *res (static strings for pointers); nothing to free.
 */
int lpr_parse(const char *ctype, size_t ctype_len, const char *body, size_t body_len,
              lpr_result_t *res);

/** "openalpr.alpr_results", "platerecognizer.stream", "hikvision.anpr", ...; "unknown". */
const char *lpr_format_name(lpr_format_t format);

/** "read", "no_plate", "heartbeat", "ignored"; "unknown" for other values. */
const char *lpr_outcome_name(lpr_outcome_t outcome);

#endif
