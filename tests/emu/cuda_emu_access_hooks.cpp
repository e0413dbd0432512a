// The load/store hooks behind the emulator's memory counters (README "Counters").
//
// Kernel code compiled with the flags of the CMake target `cuda_emu_counted` (GCC's
// -fsanitize=kernel-address with every access turned into a call,
// --param asan-instrumentation-with-call-threshold=0) calls __asan_{load,store}{1,2,4,8,16,N}
// before each memory access it makes.  These definitions pass the address, the size and the call
// site (the instruction) to the runtime, which keeps those that fall in shared or device memory
// while a kernel runs.  Never link this into an AddressSanitizer build: it defines the same names
// as the ASan runtime.
#include <cstddef>
#include <cstdint>

#include "cuda_emu.h"

#define CUDA_EMU_SITE reinterpret_cast<std::uintptr_t>(__builtin_return_address(0))

#define CUDA_EMU_HOOKS(N)                                                                          \
  void __asan_load##N##_noabort(std::uintptr_t a) {                                                \
    cuda_emu::detail::record_access(a, N, false, CUDA_EMU_SITE);                                   \
  }                                                                                                \
  void __asan_store##N##_noabort(std::uintptr_t a) {                                               \
    cuda_emu::detail::record_access(a, N, true, CUDA_EMU_SITE);                                    \
  }                                                                                                \
  void __asan_load##N(std::uintptr_t a) {                                                          \
    cuda_emu::detail::record_access(a, N, false, CUDA_EMU_SITE);                                   \
  }                                                                                                \
  void __asan_store##N(std::uintptr_t a) {                                                         \
    cuda_emu::detail::record_access(a, N, true, CUDA_EMU_SITE);                                    \
  }

extern "C" {
CUDA_EMU_HOOKS(1)
CUDA_EMU_HOOKS(2)
CUDA_EMU_HOOKS(4)
CUDA_EMU_HOOKS(8)
CUDA_EMU_HOOKS(16)
void __asan_loadN_noabort(std::uintptr_t a, std::size_t n) {
  cuda_emu::detail::record_access(a, n, false, CUDA_EMU_SITE);
}
void __asan_storeN_noabort(std::uintptr_t a, std::size_t n) {
  cuda_emu::detail::record_access(a, n, true, CUDA_EMU_SITE);
}
void __asan_loadN(std::uintptr_t a, std::size_t n) {
  cuda_emu::detail::record_access(a, n, false, CUDA_EMU_SITE);
}
void __asan_storeN(std::uintptr_t a, std::size_t n) {
  cuda_emu::detail::record_access(a, n, true, CUDA_EMU_SITE);
}
// Emitted before calls that do not return, and around dynamic initialisers; nothing to do.
void __asan_handle_no_return() {}
void __asan_before_dynamic_init(const char*) {}
void __asan_after_dynamic_init() {}
}
