# Generates a C file holding the Redis Functions library of common/lua (one text, loaded with
# FUNCTION LOAD): the `#!lua name=park_<h>` header, the shared prelude, the driver library and the
# arrears and audit library (default_lib.lua), run once when the library loads, then one function
# per script, `<script>_<h>`, whose callback starts the call (call_begin: KEYS, ARGV and the
# per-call state) and runs the script's text.  <h> is the start of the SHA-1 of the library's
# text, so two builds of the programs each call their own functions during an upgrade.
#   cmake -DSRC=<lua dir> -DOUT=<file.c> -DSCRIPTS=a,b,c -P EmbedLua.cmake
function(c_string var text)
  string(REPLACE "\\" "\\\\" text "${text}")
  string(REPLACE "\"" "\\\"" text "${text}")
  string(REPLACE "\n" "\\n\"\n    \"" text "${text}")
  set(${var} "${text}" PARENT_SCOPE)
endfunction()

string(REPLACE "," ";" SCRIPTS "${SCRIPTS}")
file(READ ${SRC}/prelude.lua prelude)
file(READ ${SRC}/driver_lib.lua driver_lib)
file(READ ${SRC}/default_lib.lua default_lib)
set(lib "${prelude}${driver_lib}${default_lib}")
foreach(name ${SCRIPTS})
  file(READ ${SRC}/${name}.lua body)
  # No flags: like the `#!lua` shebang the scripts had, the function may write, and on a cluster
  # node its keys must all be of one slot.
  string(APPEND lib "\n-- ${name}.lua\n"
         "redis.register_function{function_name = '${name}_@HASH@', callback = function(keys, args)\n"
         "call_begin(keys, args)\n${body}\nend}\n")
endforeach()
string(SHA1 hash "${lib}")
string(SUBSTRING "${hash}" 0 12 hash)
string(REPLACE "@HASH@" "${hash}" lib "${lib}")
set(lib "#!lua name=park_${hash}\n${lib}")
c_string(escaped "${lib}")
set(out "/* Generated from common/lua by cmake/EmbedLua.cmake: do not edit. */\n#include \"cmn/lua.h\"\n\n")
string(APPEND out "const char cmn_lua_library[] =\n    \"${escaped}\";\n\n")
string(APPEND out "const char cmn_lua_library_name[] = \"park_${hash}\";\n\n")
string(APPEND out "const cmn_lua_script_t cmn_lua_scripts[] = {\n")
foreach(name ${SCRIPTS})
  string(APPEND out "    {\"${name}\", \"${name}_${hash}\"},\n")
endforeach()
string(APPEND out "    {0, 0},\n};\n")
file(WRITE ${OUT}.tmp "${out}")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
