#ifndef PARKCTL_DEFAULTS_H
#define PARKCTL_DEFAULTS_H

/**
 * `parkctl defaults [--config FILE] [--url URL] [--token T] [--status S] [--district D] [--lot L]
 * [--min-amount N] [--min-age-days N] [--csv]`: every page of the gateway's GET /v1/defaults
 * (docs/api.md) with the token of --token or of the environment's PARK_TOKEN (an admin or city
 * token), printed as an aligned table (amounts in the currency's major unit) or as CSV (amounts in
 * minor units).  The gateway's address is --url, else the configuration's gateway.listen.
 * argv holds the arguments after `defaults`.  Returns the exit status: 0, 2 on bad input or a 4xx
 * answer (one line on stderr), 1 otherwise.
 */
int parkctl_defaults(int argc, char **argv);

#endif
