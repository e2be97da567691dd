#ifndef GW_LUA_SCRIPTS_H
#define GW_LUA_SCRIPTS_H

/* The gateway's Redis scripts (the files of gateway/lua), embedded at build time. */
typedef struct gw_lua_script {
    const char *name;   /* file name without .lua */
    const char *source; /* complete script, #!lua shebang first */
} gw_lua_script_t;

/** Terminated by an entry whose name is NULL. */
extern const gw_lua_script_t gw_lua_scripts[];

#endif
