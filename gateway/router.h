#ifndef GW_ROUTER_H
#define GW_ROUTER_H

#include "cmn/config.h"
#include "cmn/httpd.h"

struct gw;

/**
 * Authenticates a lane device's request (docs/lane-api.md): the device exists, its timestamp is
 * inside the clock window, and the signature over timestamp, method, path with query, device and
 * body matches its key (compared in constant time).  Returns 0 and *dev, or -1 and *why (a static
 * text for the 401 answer).
 */
int gw_auth_device(struct gw *gw, const cmn_config_t *cfg, const cmn_httpd_req_t *req,
                   const char *method, const cmn_cfg_device_t **dev, const char **why);

#endif
