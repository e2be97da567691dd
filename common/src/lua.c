#include "cmn/lua.h"

#include <string.h>

#include "cmn/err.h"

const char *cmn_lua_function(const char *name)
{
    for (const cmn_lua_script_t *s = cmn_lua_scripts; s->name != NULL; s++) {
        if (strcmp(s->name, name) == 0)
            return s->function;
    }
    return NULL;
}

int cmn_lua_register(cmn_redis_t *r, const char *name)
{
    const char *function = cmn_lua_function(name);

    if (function == NULL)
        return CMN_ENOTFOUND;
    return cmn_redis_function_add(r, name, cmn_lua_library, function);
}
