# Generates a C file holding each Redis script of common/lua as a string: the `#!lua` shebang (Redis 7
# script flags: a cluster node then refuses keys of another slot than the declared keys'), the
# shared prelude, for driver and plate scripts the driver library, for the bill, default, dispute,
# lane, audit and driver scripts the arrears and audit library (default_lib.lua), then the script
# itself.
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
set(out "/* Generated from common/lua by cmake/EmbedLua.cmake: do not edit. */\n#include \"cmn/lua.h\"\n\n")
set(table "const cmn_lua_script_t cmn_lua_scripts[] = {\n")
foreach(name ${SCRIPTS})
  file(READ ${SRC}/${name}.lua body)
  set(text "#!lua\n${prelude}")
  if(name MATCHES "^(driver|plate)_")
    string(APPEND text "${driver_lib}")
  endif()
  if(name MATCHES "^(bill|default|dispute|lane|audit|driver)_")
    string(APPEND text "${default_lib}")
  endif()
  string(APPEND text "${body}")
  c_string(escaped "${text}")
  string(APPEND out "static const char script_${name}[] =\n    \"${escaped}\";\n\n")
  string(APPEND table "    {\"${name}\", script_${name}},\n")
endforeach()
string(APPEND table "    {0, 0},\n};\n")
file(WRITE ${OUT}.tmp "${out}${table}")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
