#include "cmn/lua.h"

#include <string.h>

const char *cmn_lua_source(const char *name)
{
    for (const cmn_lua_script_t *s = cmn_lua_scripts; s->name != NULL; s++) {
        if (strcmp(s->name, name) == 0)
            return s->source;
    }
    return NULL;
}
