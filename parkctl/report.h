#ifndef PARKCTL_REPORT_H
#define PARKCTL_REPORT_H

/**
 * `parkctl report revenue --from DATE --to DATE [--lot L] [--group day|lot] [--csv] [--url URL]
 * [--token T] [--config FILE]`: asks the gateway for GET /v1/reports/revenue (docs/reports.md)
 * with the token of --token or of the environment's PARK_TOKEN, and prints an aligned table
 * (amounts in the currency's major unit, e.g. yuan with 2 decimals) or the gateway's CSV.
 * argv holds the arguments after `report`.  Returns the exit status: 0, 2 on bad input or a 4xx
 * answer (one line on stderr), 1 otherwise.
 */
int parkctl_report(int argc, char **argv);

#endif
