#ifndef GW_WEB_H
#define GW_WEB_H

#include <stddef.h>

#include "cmn/config.h"
#include "cmn/httpd.h"

struct gw;

/*
 * What the web dashboard (docs/dashboard.md) needs from the gateway: its files, served from
 * memory (h_static.c), and who the bearer of a token is (h_whoami.c).
 */

/**
 * Reads the web root whole into memory: cfg's gateway.web_root, else ../share/park/web beside
 * the gateway executable (/proc/self/exe).  Synchronous: call it at start and on SIGHUP only,
 * never while serving.  On success the new files replace the old ones.
 * Returns 0 (loaded), 1 (the default folder does not exist: the dashboard is off, the old files
 * are dropped) or -1 (a configured folder cannot be read, or is over the limits: nothing
 * changes), with a message in why.
 */
int gw_static_load(const cmn_config_t *cfg, char *why, size_t whysz);

/** Frees the files read by gw_static_load (at exit). */
void gw_static_free(void);

/** GET or HEAD of `/` (a redirect to /dashboard/) and of `/dashboard…` (the files). */
void gw_h_static(struct gw *gw, cmn_httpd_req_t *req);

/** GET /v1/whoami: the role, scope and name of the bearer token and the lots it may see. */
void gw_h_whoami(struct gw *gw, cmn_httpd_req_t *req);

#endif
