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
