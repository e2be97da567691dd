#ifndef CMN_CONFIG_H
#define CMN_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "cmn/crypto.h"
#include "cmn/diag.h"
#include "cmn/tariff.h"

/*
 * The platform's configuration: one JSON file (docs/config.md) plus the tariff files of its
 * `tariff_dir`.  cmn_config_load() validates everything, cross-references included, and either
 * returns a complete immutable configuration or lists every problem with the file, the JSON path
 * of the field and the reason.  Programs refuse to start on any problem.
 *
 * Secrets (device keys, API keys, private keys, tokens) are given as {"file": PATH} or
 * {"env": NAME}, never inline; their bytes are held here and never appear in a message or a log.
 */

/** A secret's bytes (not NUL-terminated in general) and where they came from, for messages. */
typedef struct cmn_secret {
    unsigned char *data;
    size_t len;
    char *source; /* "file /etc/park/dev.key" or "env PARK_DEV_KEY": safe to print */
} cmn_secret_t;

typedef struct cmn_cfg_operator {
    char *id;
    char *name;
} cmn_cfg_operator_t;

typedef enum { CMN_LANE_ENTRY = 0, CMN_LANE_EXIT } cmn_lane_dir_t;

typedef struct cmn_cfg_lane {
    char *id;
    cmn_lane_dir_t direction;
} cmn_cfg_lane_t;

/** A monthly pass: the plate opens with `pass` on local days from..to (inclusive). */
typedef struct cmn_cfg_pass {
    char *plate; /* normalised */
    int64_t from_day;
    int64_t to_day;
} cmn_cfg_pass_t;

typedef enum { CMN_NO_ENTRY_HOLD = 0, CMN_NO_ENTRY_CHARGE } cmn_no_entry_t;
typedef enum { CMN_STALE_CLOSE_FREE = 0, CMN_STALE_CLOSE_CHARGED } cmn_stale_t;
typedef enum { CMN_MATCH_EXACT = 0, CMN_MATCH_CANDIDATES, CMN_MATCH_FUZZY } cmn_match_level_t;
typedef enum { CMN_BLOCKED_HOLD_ENTRY = 0, CMN_BLOCKED_PAY_ON_SITE } cmn_blocked_t;

/** What a lot does at its exits (and with stale and blocked plates). */
typedef struct cmn_cfg_exit_policy {
    int leave_first;             /* credit exits allowed at all */
    cmn_no_entry_t no_entry;     /* an exit with no entry record */
    int64_t no_entry_fee;        /* minor units, when no_entry is CHARGE */
    cmn_stale_t stale_entry;     /* a second entry while a session is open */
    cmn_match_level_t match;     /* how far an exit read may be matched to an entry read */
    cmn_blocked_t blocked;       /* what a blocked plate meets */
} cmn_cfg_exit_policy_t;

typedef struct cmn_cfg_lot {
    char *id;
    char *name;
    char *district;
    char *operator_id;
    int operator_index;
    int64_t capacity;
    char *tariff_id;
    const cmn_tariff_t *tariff; /* owned by the configuration */
    cmn_cfg_exit_policy_t policy;
    cmn_cfg_lane_t *lanes;
    size_t nlanes;
    cmn_cfg_pass_t *passes;
    size_t npasses;
    char **allow; /* normalised plates that always open with `pass` */
    size_t nallow;
    char **exempt; /* normalised plates that open with `exempt` */
    size_t nexempt;
    unsigned exempt_kinds; /* bit (1 << cmn_plate_kind_t): kinds that open with `exempt` */
    char **blocked;        /* normalised plates met by policy.blocked */
    size_t nblocked;
} cmn_cfg_lot_t;

typedef struct cmn_cfg_device {
    char *id;
    char *lot_id;
    int lot_index;
    char **lanes;
    size_t nlanes;
    cmn_secret_t key; /* HMAC key of the lane API */
    cmn_hmac_key_t *mac; /* the same key made ready (NULL if OpenSSL refused it) */
} cmn_cfg_device_t;

typedef enum { CMN_PROVIDER_STRIPE = 0, CMN_PROVIDER_WECHATPAY } cmn_provider_kind_t;

typedef struct cmn_cfg_provider {
    char *id;
    cmn_provider_kind_t kind;
    char *base_url;
    char *currency;
    int64_t connect_timeout_ms;
    int64_t timeout_ms;
    cmn_secret_t secret_key; /* stripe: the secret API key */
    /* wechatpay */
    char *mchid;
    char *appid;
    char *serial_no;
    char *notify_url;
    cmn_secret_t private_key;         /* merchant RSA private key, PEM */
    cmn_secret_t platform_public_key; /* WeChat Pay platform public key, PEM */
    char *platform_serial;
    cmn_secret_t apiv3_key; /* 32 bytes */
    cmn_secret_t webhook_secret; /* stripe: whsec_… for notifications (optional) */
} cmn_cfg_provider_t;

typedef struct cmn_cfg_credit {
    int64_t initial_score;
    int64_t min_score;
    int64_t max_score;
    int64_t max_unpaid_bills;
    int64_t max_unpaid_amount;
    int64_t max_fee;
    int64_t *retry_minutes;
    size_t nretry;
    int64_t grace_hours;
    int64_t default_after_days;
    int64_t score_paid_on_time;
    int64_t score_paid_late;
    int64_t score_default;
    int64_t first_default_free_months;
    int suspend_when_overdue;
    int64_t *reminder_hours;
    size_t nreminder;
    char *reminder_webhook; /* NULL: reminders are only logged */
} cmn_cfg_credit_t;

typedef struct cmn_cfg_redis {
    char *host; /* NULL for a unix socket */
    int port;
    char *unix_path;
    cmn_secret_t password; /* len 0: none */
    int64_t connect_timeout_ms;
    int64_t command_timeout_ms;
} cmn_cfg_redis_t;

/** A listen address: "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:0" (0: any free port). */
typedef struct cmn_cfg_listen {
    char *host;
    int port;
} cmn_cfg_listen_t;

typedef struct cmn_cfg_gateway {
    cmn_cfg_listen_t listen;
    int64_t max_body_bytes;
    int64_t max_header_bytes;
    int64_t max_connections;
    int64_t idle_timeout_ms;
    int64_t request_timeout_ms;
    int64_t clock_window_s;
    int64_t idempotency_days;
    cmn_secret_t admin_token; /* len 0: no admin API */
    char *web_root; /* the dashboard's files (absolute, or relative to the configuration file);
                       NULL: ../share/park/web beside the gateway executable */
} cmn_cfg_gateway_t;

typedef struct cmn_cfg_billing {
    cmn_cfg_listen_t listen; /* metrics and health */
    int64_t max_in_flight;
    char *default_provider;
} cmn_cfg_billing_t;

typedef enum {
    CMN_CAMERA_AUTO = 0, /* detected from each payload's content */
    CMN_CAMERA_OPENALPR,
    CMN_CAMERA_PLATERECOGNIZER,
    CMN_CAMERA_HIKVISION
} cmn_camera_format_t;

typedef enum { CMN_BARRIER_NONE = 0, CMN_BARRIER_WEBHOOK, CMN_BARRIER_HIKVISION } cmn_barrier_kind_t;

/** How a lane's barrier and display learn the decision (lpr-bridge). */
typedef struct cmn_cfg_barrier {
    cmn_barrier_kind_t kind;
    char *url;      /* webhook: receives the decision as JSON; hikvision: the camera's base URL */
    int channel;    /* hikvision: barrierGate channel (PUT /ISAPI/Parking/channels/{id}/barrierGate) */
    char *username; /* hikvision: digest authentication */
    cmn_secret_t password;
    int64_t timeout_ms;
} cmn_cfg_barrier_t;

typedef enum { CMN_FALLBACK_HOLD = 0, CMN_FALLBACK_OPEN } cmn_fallback_t;

/** A camera that pushes its reads to the lpr-bridge at POST /v1/cameras/{id}. */
typedef struct cmn_cfg_camera {
    char *id;
    char *lot_id;
    char *lane_id;
    int lot_index;
    cmn_lane_dir_t direction; /* the lane's: it decides entry or exit, not the camera */
    char *device_id;          /* the device whose key signs the forwarded events */
    int device_index;
    cmn_camera_format_t format;
    cmn_secret_t token;      /* len 0: none; else required as Bearer token or ?token= */
    int64_t min_confidence;  /* per mille: a read at least this confident is forwarded at once */
    int64_t hold_ms;         /* a weaker read may wait this long for a better one (<= 1500) */
    int64_t dedupe_window_s; /* later reads of the same vehicle in this lane are suppressed */
    int64_t decision_timeout_ms; /* the barrier's fallback applies when the gateway is slower */
    cmn_fallback_t fallback;
    cmn_cfg_barrier_t barrier;
} cmn_cfg_camera_t;

typedef struct cmn_cfg_lpr {
    cmn_cfg_listen_t listen;
    char *spool_dir;   /* absolute, or relative to the configuration file */
    char *gateway_url; /* where signed events go */
    int64_t forward_timeout_ms;
    int64_t command_poll_ms;   /* lane commands (remote openings) asked for this often; 0: never */
    int64_t command_max_age_s; /* an older command is not carried out (its car has gone) */
    cmn_cfg_camera_t *cameras;
    size_t ncameras;
} cmn_cfg_lpr_t;

typedef struct cmn_config {
    char *path;   /* the file it was loaded from */
    char *dir;    /* its directory: relative paths resolve against it */
    char *name;   /* the deployment's name */
    char *log_level;
    cmn_cfg_redis_t redis;
    cmn_cfg_gateway_t gateway;
    cmn_cfg_billing_t billing;
    cmn_cfg_lpr_t lpr;
    cmn_cfg_credit_t credit;
    cmn_cfg_operator_t *operators;
    size_t noperators;
    cmn_cfg_lot_t *lots;
    size_t nlots;
    cmn_cfg_device_t *devices;
    size_t ndevices;
    cmn_cfg_provider_t *providers;
    size_t nproviders;
    cmn_tariff_t **tariffs;
    size_t ntariffs;
} cmn_config_t;

/**
 * Loads and validates the configuration at `path` and the tariff files it names.  Returns 0 and
 * *out (the caller's; cmn_config_free), or CMN_ECONFIG / CMN_EIO with every problem in `diag`.
 * Environment variables named by {"env": …} secrets are read with getenv (call before threads).
 */
int cmn_config_load(const char *path, cmn_config_t **out, cmn_diag_t *diag);
void cmn_config_free(cmn_config_t *cfg);

const cmn_cfg_lot_t *cmn_config_lot(const cmn_config_t *cfg, const char *id);
const cmn_cfg_device_t *cmn_config_device(const cmn_config_t *cfg, const char *id);
const cmn_tariff_t *cmn_config_tariff(const cmn_config_t *cfg, const char *id);
const cmn_cfg_provider_t *cmn_config_provider(const cmn_config_t *cfg, const char *id);
const cmn_cfg_camera_t *cmn_config_camera(const cmn_config_t *cfg, const char *id);
/** Whether s is an identifier of the configuration: 1..maxlen of [A-Za-z0-9_.:-]. */
int cmn_is_ident(const char *s, size_t maxlen);

/** The lane `lane_id` of `lot`, or NULL. */
const cmn_cfg_lane_t *cmn_config_lane(const cmn_cfg_lot_t *lot, const char *lane_id);

#endif
