# Build options and compiler flags shared by every target.
option(FLASHNCE_ENABLE_CUDA "Build the CUDA backend when nvcc is found" ON)
set(FLASHNCE_CUDA_ARCHITECTURES "80;90" CACHE STRING "CUDA architectures for the CUDA backend")
option(FLASHNCE_BUILD_EMU "Build flashnce_emu: the CUDA backend run on the CPU SIMT emulator" ON)
option(FLASHNCE_BUILD_TESTS "Build the GoogleTest suite" ON)
option(FLASHNCE_BUILD_BENCH "Build the benchmarks and the demo" ON)
option(FLASHNCE_HOST_BLAS "Host backend: use a BLAS sgemm (OpenBLAS) when found, else the built-in loops" ON)
option(FLASHNCE_HOST_OPENMP "Host backend: run its blocks on OpenMP threads when OpenMP is found" ON)
option(FLASHNCE_BUILD_PYTHON "Build the Python extension when nanobind is importable" ON)
option(FLASHNCE_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
option(FLASHNCE_TSAN "Build with ThreadSanitizer (preset tsan)" OFF)
# OFF: flashnce_emu without the Hopper (sm_90a wgmma) instantiations, its dispatch then taking the
# mma.sync kernels on the emulated compute capability 9.0 too.  For preset fuzz-emu only (those two
# translation units are most of its build time under ASan); the emulated kernel suite expects ON.
option(FLASHNCE_EMU_HOPPER "flashnce_emu: build and dispatch the emulated Hopper (wgmma) kernels" ON)
option(FLASHNCE_FUZZ "Build the libFuzzer targets (tests/fuzz; clang): everything with ASan + UBSan + fuzzer coverage" OFF)

if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE Release CACHE STRING "Build type" FORCE)
endif()

set(CMAKE_CXX_STANDARD 17)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
set(CMAKE_C_STANDARD 99)
set(CMAKE_POSITION_INDEPENDENT_CODE ON)

# Warnings for our own targets: flashnce_warnings is linked PRIVATE by each of them.
add_library(flashnce_warnings INTERFACE)
target_compile_options(flashnce_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX,C>:-Wall -Wextra>
  $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>)

if(FLASHNCE_SANITIZE)
  add_compile_options($<$<COMPILE_LANGUAGE:CXX,C>:-fsanitize=address,undefined>
                      $<$<COMPILE_LANGUAGE:CXX,C>:-fno-omit-frame-pointer>
                      $<$<COMPILE_LANGUAGE:CXX,C>:-fno-sanitize-recover=undefined>)
  add_link_options(-fsanitize=address,undefined)
endif()

# libFuzzer (tests/fuzz): every target gets the fuzzer's coverage instrumentation and ASan + UBSan;
# only the fuzz executables link libFuzzer's main (-fsanitize=fuzzer, tests/fuzz/CMakeLists.txt).
if(FLASHNCE_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "FLASHNCE_FUZZ needs clang (libFuzzer): configure with CC=clang CXX=clang++")
  endif()
  add_compile_options($<$<COMPILE_LANGUAGE:CXX,C>:-fsanitize=fuzzer-no-link,address,undefined>
                      $<$<COMPILE_LANGUAGE:CXX,C>:-fno-omit-frame-pointer>
                      $<$<COMPILE_LANGUAGE:CXX,C>:-fno-sanitize-recover=undefined>)
  add_link_options(-fsanitize=address,undefined)
endif()

if(FLASHNCE_TSAN)
  add_compile_options($<$<COMPILE_LANGUAGE:CXX,C>:-fsanitize=thread>
                      $<$<COMPILE_LANGUAGE:CXX,C>:-fno-omit-frame-pointer>)
  add_link_options(-fsanitize=thread)
endif()
