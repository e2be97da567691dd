#ifndef GW_AUTH_H
#define GW_AUTH_H

#include "cmn/config.h"
#include "cmn/httpd.h"

struct gw;

/*
 * Who is asking: API tokens for people and their tools (docs/api.md).
 *
 *   admin     everything; the configuration's gateway.admin_token is an admin token too
 *   city      city staff: every lot; reviews defaults
 *   operator  a lot operator: the lots of its operator id (scope = operator id)
 *   driver    a driver: its own plates and bills (scope = driver id)
 *
 * Tokens are made by `parkctl token create --role R --scope S` and stored hashed: the key
 * pk:tok:{<hex SHA-256 of the token>} holds role, scope, name and created; the token itself is
 * shown once and stored nowhere.  The gateway looks a token up once and keeps the answer for
 * 30 s (a revoked token stops working within that time).
 */

typedef enum {
    GW_ROLE_NONE = 0,
    GW_ROLE_ADMIN,
    GW_ROLE_CITY,
    GW_ROLE_OPERATOR,
    GW_ROLE_DRIVER
} gw_role_t;

typedef struct gw_principal {
    gw_role_t role;
    char scope[65]; /* operator id or driver id; "*" for admin and city */
    char name[65];  /* the token's label, for the audit log */
} gw_principal_t;

/** "admin", "city", "operator", "driver"; "none". */
const char *gw_role_name(gw_role_t role);
/** The role of a name, or GW_ROLE_NONE. */
gw_role_t gw_role_parse(const char *name);

/**
 * Completion of gw_authenticate: status 0 with the principal; 401 (no or unknown token: the
 * callback is given a reason); 503 (Redis unavailable).  Never called synchronously.
 */
typedef void (*gw_auth_cb)(void *data, int status, const gw_principal_t *who, const char *why);

/** Reads `Authorization: Bearer <token>` of req and finds its principal. */
void gw_authenticate(struct gw *gw, cmn_httpd_req_t *req, gw_auth_cb cb, void *data);

/** Whether `who` may see and act on lot `lot_id` (admin, city; an operator its own lots). */
int gw_may_lot(const gw_principal_t *who, const cmn_config_t *cfg, const char *lot_id);

/** Whether `who` may see and act on driver `driver_id` (admin, city; the driver itself). */
int gw_may_driver(const gw_principal_t *who, const char *driver_id);

/** Forgets every cached token (tests, and after a reload). */
void gw_auth_forget(void);

#endif
