#ifndef CMN_LUA_H
#define CMN_LUA_H

#include "cmn/redis.h"

/*
 * The platform's Redis scripts (the files of common/lua), embedded at build time as one Redis
 * Functions library (cmake/EmbedLua.cmake): the shared prelude, the driver library and the arrears
 * and audit library run once when the library is loaded; each script is a function of it.  The
 * library's name and its functions' names carry the start of the SHA-1 of its text, so the
 * programs of two builds call their own code during an upgrade.  The gateway and billing register
 * the functions they call (cmn_lua_register).
 */
typedef struct cmn_lua_script {
    const char *name;     /* file name without .lua */
    const char *function; /* its function in the library: <name>_<hash> */
} cmn_lua_script_t;

/** The library's text, `#!lua name=<cmn_lua_library_name>` first. */
extern const char cmn_lua_library[];
extern const char cmn_lua_library_name[];

/** Terminated by an entry whose name is NULL. */
extern const cmn_lua_script_t cmn_lua_scripts[];

/** The library function of the script `name`, or NULL. */
const char *cmn_lua_function(const char *name);

/**
 * Registers script `name` with the client (cmn_redis_function_add of the library): returns its
 * handle, or a negative error (CMN_ENOTFOUND: no such script).
 */
int cmn_lua_register(cmn_redis_t *r, const char *name);

#endif
