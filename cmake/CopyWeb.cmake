# The build step of web/CMakeLists.txt (cmake -P): copies the dashboard's files SRC (web/) into DST
# and ECHARTS (Apache ECharts from node_modules, when installed) into DST/vendor/, then removes from
# DST what is no longer in either.  file(COPY) keeps the files' times and skips files already there
# with the same time, so the gateway's Last-Modified only moves when a file does.
foreach(v SRC DST ECHARTS)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "CopyWeb.cmake: -D${v}= is required")
  endif()
endforeach()
file(MAKE_DIRECTORY ${DST})
file(COPY ${SRC}/ DESTINATION ${DST}
  PATTERN CMakeLists.txt EXCLUDE
  PATTERN package.json EXCLUDE
  PATTERN ".*" EXCLUDE)
set(keep)
file(GLOB_RECURSE sources RELATIVE ${SRC} ${SRC}/*)
list(FILTER sources EXCLUDE REGEX "(^|/)(CMakeLists\\.txt|package\\.json|\\.[^/]*)$")
foreach(f ${sources})
  list(APPEND keep ${f})
endforeach()
if(EXISTS ${ECHARTS})
  file(COPY ${ECHARTS} DESTINATION ${DST}/vendor)
  get_filename_component(name ${ECHARTS} NAME)
  list(APPEND keep vendor/${name})
else()
  message(STATUS "web: ${ECHARTS} is not installed (scripts/install-peers runs npm ci): "
                 "the dashboard will say that its chart library is missing")
endif()
file(GLOB_RECURSE copied RELATIVE ${DST} ${DST}/*)
foreach(f ${copied})
  list(FIND keep ${f} at)
  if(at EQUAL -1)
    file(REMOVE ${DST}/${f})
  endif()
endforeach()
