#ifndef CMN_LUA_H
#define CMN_LUA_H

/*
 * The platform's Redis scripts (the files of common/lua), embedded at build time: every script
 * begins with the #!lua shebang (Redis 7 script flags), then the shared prelude, for driver and
 * plate scripts the driver library, then its own text.  The gateway and billing register the ones
 * they call (cmn/redis.h).
 */
typedef struct cmn_lua_script {
    const char *name;   /* file name without .lua */
    const char *source; /* the complete script */
} cmn_lua_script_t;

/** Terminated by an entry whose name is NULL. */
extern const cmn_lua_script_t cmn_lua_scripts[];

/** The source of the script `name`, or NULL. */
const char *cmn_lua_source(const char *name);

#endif
