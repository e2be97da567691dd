# Warning flags for every target of the project (STYLE.md section 7).
add_compile_options(
  -Wall -Wextra -Wshadow -Wstrict-prototypes -Wformat=2 -Wmissing-prototypes
  -Wno-unused-parameter -Wvla -Wpointer-arith -Wundef)
if(PARK_WERROR)
  add_compile_options(-Werror)
endif()
add_compile_definitions(_POSIX_C_SOURCE=200809L _DEFAULT_SOURCE)
