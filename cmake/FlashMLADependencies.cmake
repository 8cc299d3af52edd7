# Third-party dependencies, found without network access:
#   CUTLASS/CuTe headers (nvidia-cutlass==4.2.0.0) for device code only,
#   the CUDA runtime, and GoogleTest for the tests.
#
# CUTLASS is searched, in order: -DCUTLASS_DIR=<dir with include/cutlass>,
# the copy scripts/vendor_deps.sh puts in .deps/cutlass, and the installed
# nvidia-cutlass Python package.

find_package(CUDAToolkit REQUIRED)

set(FLASHMLA_CUTLASS_VERSION_REQUIRED "4.2.0")
set(CUTLASS_DIR "" CACHE PATH "Directory holding include/cutlass and include/cute (CUTLASS ${FLASHMLA_CUTLASS_VERSION_REQUIRED})")

set(_cutlass_candidates "")
if(CUTLASS_DIR)
  list(APPEND _cutlass_candidates "${CUTLASS_DIR}/include" "${CUTLASS_DIR}")
endif()
list(APPEND _cutlass_candidates "${PROJECT_SOURCE_DIR}/.deps/cutlass/include")
find_package(Python3 COMPONENTS Interpreter QUIET)
if(Python3_Interpreter_FOUND)
  execute_process(
    COMMAND ${Python3_EXECUTABLE} -c
      "import importlib.util, os; s = importlib.util.find_spec('cutlass_library'); print(os.path.join(os.path.dirname(s.origin), 'source', 'include') if s else '')"
    OUTPUT_VARIABLE _cutlass_from_pip OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(_cutlass_from_pip)
    list(APPEND _cutlass_candidates "${_cutlass_from_pip}")
  endif()
endif()

set(FLASHMLA_CUTLASS_INCLUDE "")
foreach(_dir IN LISTS _cutlass_candidates)
  if(EXISTS "${_dir}/cutlass/cutlass.h" AND EXISTS "${_dir}/cute/tensor.hpp")
    set(FLASHMLA_CUTLASS_INCLUDE "${_dir}")
    break()
  endif()
endforeach()
if(NOT FLASHMLA_CUTLASS_INCLUDE)
  message(FATAL_ERROR
    "CUTLASS ${FLASHMLA_CUTLASS_VERSION_REQUIRED} headers not found (looked in: ${_cutlass_candidates}). "
    "Run scripts/setup.sh (installs nvidia-cutlass==4.2.0.0 and copies its headers to .deps/), or "
    "pass -DCUTLASS_DIR=<dir containing include/cutlass>.")
endif()
file(STRINGS "${FLASHMLA_CUTLASS_INCLUDE}/cutlass/version.h" _cutlass_version_lines
     REGEX "#define CUTLASS_(MAJOR|MINOR|PATCH) [0-9]+")
foreach(_part MAJOR MINOR PATCH)
  string(REGEX REPLACE ".*#define CUTLASS_${_part} ([0-9]+).*" "\\1" _v_${_part} "${_cutlass_version_lines}")
endforeach()
set(FLASHMLA_CUTLASS_VERSION "${_v_MAJOR}.${_v_MINOR}.${_v_PATCH}")
if(NOT FLASHMLA_CUTLASS_VERSION VERSION_EQUAL FLASHMLA_CUTLASS_VERSION_REQUIRED)
  message(FATAL_ERROR
    "CUTLASS ${FLASHMLA_CUTLASS_VERSION} found in ${FLASHMLA_CUTLASS_INCLUDE}, but the project is "
    "pinned to ${FLASHMLA_CUTLASS_VERSION_REQUIRED}. Run scripts/setup.sh or point CUTLASS_DIR at the pinned copy.")
endif()
message(STATUS "CUTLASS ${FLASHMLA_CUTLASS_VERSION}: ${FLASHMLA_CUTLASS_INCLUDE}")

# Device code only: CUTLASS must never reach a plain .cpp file.
add_library(flashmla_cutlass INTERFACE)
target_include_directories(flashmla_cutlass SYSTEM INTERFACE
  $<$<COMPILE_LANGUAGE:CUDA>:${FLASHMLA_CUTLASS_INCLUDE}>)

if(FLASHMLA_BUILD_TESTS)
  # The system package first (Debian's googletest), else the sources that
  # scripts/vendor_deps.sh copies into .deps/ for offline machines.
  find_package(GTest QUIET)
  if(NOT GTest_FOUND)
    if(EXISTS "${PROJECT_SOURCE_DIR}/.deps/googletest/CMakeLists.txt")
      set(INSTALL_GTEST OFF CACHE BOOL "" FORCE)
      set(BUILD_GMOCK OFF CACHE BOOL "" FORCE)
      add_subdirectory("${PROJECT_SOURCE_DIR}/.deps/googletest" "${PROJECT_BINARY_DIR}/googletest" EXCLUDE_FROM_ALL)
      add_library(GTest::gtest ALIAS gtest)
      add_library(GTest::gtest_main ALIAS gtest_main)
    else()
      message(FATAL_ERROR
        "GoogleTest not found. Run scripts/setup.sh (installs Debian's googletest and copies it to "
        ".deps/googletest), or configure with -DFLASHMLA_BUILD_TESTS=OFF.")
    endif()
  endif()
  include(GoogleTest)
endif()
