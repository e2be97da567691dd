# ASan + UBSan for Debug builds in CI: every test of the suite runs under both.
if(PARK_SANITIZE)
  set(_san -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  add_compile_options(${_san})
  add_link_options(${_san})
endif()

# Fuzzing builds instrument every target for coverage, so libFuzzer sees inside libcmn and the
# services' libraries, not only inside the harness.
if(PARK_FUZZ)
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
