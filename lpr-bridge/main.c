/*
 * lpr-bridge: receives camera pushes and forwards signed plate reads to the gateway (bridge.h).
 *
 *   lpr-bridge [--config FILE] [--port-file FILE]   the service
 *   lpr-bridge --normalize FILE                      parse one payload, print its reads (normalize.h)
 *
 * SIGTERM/SIGINT: stop taking reads, finish deliveries in flight, flush the spool, exit 0; what was
 * not delivered is in the spool for the next start.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "bridge.h"
#include "cmn/diag.h"
#include "cmn/log.h"
#include "normalize.h"

static uv_signal_t sig_term, sig_int;
static lpr_bridge_t *bridge;
static int stopping;

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

static void on_stopped(void *data)
{
    (void)data;
    uv_close((uv_handle_t *)&sig_term, on_closed);
    uv_close((uv_handle_t *)&sig_int, on_closed);
}

static void on_stop(uv_signal_t *h, int signum)
{
    (void)h;
    if (stopping)
        return;
    stopping = 1;
    cmn_log(CMN_LOG_INFO, "stopping", "signal %d: finishing deliveries in flight", signum);
    lpr_bridge_stop(bridge, on_stopped, NULL);
}

int main(int argc, char **argv)
{
    const char *path = "config/platform.json", *port_file = NULL;
    if (argc == 3 && strcmp(argv[1], "--normalize") == 0)
        return lpr_normalize_file(argv[2], stdout, stderr);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--port-file") == 0 && i + 1 < argc)
            port_file = argv[++i];
        else {
            fprintf(stderr, "usage: lpr-bridge [--config FILE] [--port-file FILE]\n"
                            "       lpr-bridge --normalize FILE\n");
            return 2;
        }
    }
    cmn_config_t *cfg;
    cmn_diag_t d;
    cmn_diag_init(&d);
    if (cmn_config_load(path, &cfg, &d) != 0) {
        cmn_diag_print(&d, "lpr-bridge: ", stderr);
        fprintf(stderr, "lpr-bridge: %s: %zu problems; not starting\n", path, d.n);
        cmn_diag_dispose(&d);
        return 2;
    }
    cmn_diag_dispose(&d);
    cmn_log_init("lpr-bridge", (cmn_log_level_t)cmn_log_level_parse(cfg->log_level), 2);
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t *loop = uv_default_loop();
    if (lpr_bridge_start(loop, cfg, &bridge) != 0)
        return 1;
    int port = lpr_bridge_port(bridge);
    if (port_file != NULL) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (f == NULL || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0 ||
            rename(tmp, port_file) != 0) {
            fprintf(stderr, "lpr-bridge: cannot write %s: %s\n", port_file, strerror(errno));
            return 1;
        }
    }
    cmn_log(CMN_LOG_INFO, "listening", "cameras push to %s:%d (%zu cameras), events go to %s",
            cfg->lpr.listen.host, port, cfg->lpr.ncameras, cfg->lpr.gateway_url);
    uv_signal_init(loop, &sig_term);
    uv_signal_init(loop, &sig_int);
    uv_signal_start(&sig_term, on_stop, SIGTERM);
    uv_signal_start(&sig_int, on_stop, SIGINT);
    uv_run(loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(loop);
    cmn_log(CMN_LOG_INFO, "exit", "lpr-bridge stopped%s", rc == 0 ? "" : " (handles left open)");
    cmn_config_free(cfg);
    return 0;
}
