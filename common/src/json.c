#include "cmn/json.h"

#include "cmn/mem.h"

char *cmn_json_dump(const json_t *j, size_t flags)
{
    size_t need = json_dumpb(j, NULL, 0, flags);
    if (need == 0)
        return NULL;
    char *s = cmn_xalloc(need + 1);
    json_dumpb(j, s, need, flags);
    s[need] = '\0';
    return s;
}
