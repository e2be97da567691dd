/*
 * The configuration loader on arbitrary files: it either loads or reports at least one problem,
 * and never crashes or leaks.  The input is written to a temporary folder holding one valid
 * tariff, so cross-references can resolve.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmn/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static char path[128];

static void cleanup(void)
{
    char p[160];
    static const char *const files[] = {"tariffs/t.json", "key", "platform.json", "tariffs"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        remove(p);
    }
    rmdir(dir);
}

static void prepare(void)
{
    char p[160];
    snprintf(dir, sizeof dir, "/tmp/park-fuzz-config-%ld", (long)getpid());
    mkdir(dir, 0700);
    snprintf(p, sizeof p, "%s/tariffs", dir);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/tariffs/t.json", dir);
    FILE *f = fopen(p, "w");
    if (f == NULL)
        abort();
    fputs("{\"id\":\"t\",\"currency\":\"CNY\",\"timezone\":\"UTC\",\"bands\":[{\"name\":\"a\","
          "\"from\":\"00:00\",\"to\":\"00:00\",\"unit_minutes\":60,\"unit_price\":1}]}",
          f);
    fclose(f);
    snprintf(p, sizeof p, "%s/key", dir);
    f = fopen(p, "w");
    if (f == NULL)
        abort();
    fputs("0123456789abcdef0123\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/platform.json", dir);
    atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (path[0] == '\0')
        prepare();
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        abort();
    fwrite(data, 1, size, f);
    fclose(f);
    cmn_diag_t d;
    cmn_config_t *cfg = NULL;
    cmn_diag_init(&d);
    int rc = cmn_config_load(path, &cfg, &d);
    if ((rc == 0) != (d.n == 0) || (rc == 0) != (cfg != NULL))
        abort();
    cmn_config_free(cfg);
    cmn_diag_dispose(&d);
    return 0;
}
