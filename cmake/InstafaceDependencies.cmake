# Finds the project's third-party libraries once, for every component. The election core needs
# none of them; INSTAFACE_CORE_ONLY builds just the core, the simulator and their tests.
find_package(GTest REQUIRED)
find_package(Threads REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)

if(NOT INSTAFACE_CORE_ONLY)
  find_package(Boost 1.74 REQUIRED COMPONENTS system thread)
  find_package(nng 1.5 CONFIG REQUIRED)              # nng::nng
  find_package(prometheus-cpp CONFIG REQUIRED)       # prometheus-cpp::core, ::pull
  find_package(benchmark REQUIRED)                   # benchmark::benchmark
  find_package(OpenSSL REQUIRED)                     # OpenSSL::Crypto (HMAC-SHA256)
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)  # its CMake config has no target
  pkg_check_modules(MARIADB REQUIRED IMPORTED_TARGET libmariadb)
endif()

# add_subdirectory for each listed folder of the current directory that exists yet.
macro(instaface_add_subdirectories)
  foreach(dir ${ARGN})
    if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${dir}/CMakeLists.txt)
      add_subdirectory(${dir})
    endif()
  endforeach()
endmacro()

# instaface_add_fuzzer(NAME SOURCES src... [INCLUDES dir...] [LIBS target...])
# A libFuzzer target, built only with -DINSTAFACE_FUZZ=ON and clang; scripts/fuzz builds and runs
# every fuzz_* target. The code under test is listed in SOURCES (not linked from its library) so
# that it carries the fuzzer's coverage instrumentation.
function(instaface_add_fuzzer name)
  if(NOT INSTAFACE_FUZZ)
    return()
  endif()
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(WARNING "INSTAFACE_FUZZ needs clang (CMAKE_CXX_COMPILER=clang++); ${name} skipped")
    return()
  endif()
  cmake_parse_arguments(FUZZ "" "" "SOURCES;INCLUDES;LIBS" ${ARGN})
  set(flags -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer)
  add_executable(${name} ${FUZZ_SOURCES})
  target_include_directories(${name} PRIVATE ${FUZZ_INCLUDES})
  target_link_libraries(${name} PRIVATE ${FUZZ_LIBS})
  target_compile_options(${name} PRIVATE ${flags})
  target_link_options(${name} PRIVATE ${flags})
endfunction()
