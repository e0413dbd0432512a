// cp_async.cuh — asynchronous global→shared copies (cp.async, sm_80+) with commit/wait groups.
//
// Under nvcc (sm_80+): the PTX instructions.  On the host pass / older architectures the bodies
// trap (kernels using these are compiled for sm_80+ only).  Under the CPU emulator (CUDA_EMU) a
// copy is recorded at issue and performed at the cp_async_wait that completes its group, so a
// kernel that reads the destination before waiting reads stale data, as it may on a GPU.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace flashnce::kernels {

#if !defined(CUDA_EMU) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
__device__ __forceinline__ std::uint32_t smem_address(const void* p) {
  return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
}
#endif

/// cp.async.cg.shared.global 16 bytes (bypasses L1). Both addresses 16-byte aligned.
__device__ __forceinline__ void cp_async_16(void* smem, const void* gmem) {
#if defined(CUDA_EMU)
  ::cuda_emu::detail::cp_async(smem, gmem, 16, 16);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_address(smem)), "l"(gmem)
               : "memory");
#else
  (void)smem;
  (void)gmem;
  __trap();
#endif
}

/// cp.async.cg 16 bytes with src-size: the first src_bytes (0..16) are copied, the rest of the 16
/// destination bytes are zero-filled.  src_bytes == 0 reads nothing (gmem must still be valid).
__device__ __forceinline__ void cp_async_16_zfill(void* smem, const void* gmem, int src_bytes) {
#if defined(CUDA_EMU)
  ::cuda_emu::detail::cp_async(smem, gmem, 16, src_bytes);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_address(smem)),
               "l"(gmem), "r"(src_bytes)
               : "memory");
#else
  (void)smem;
  (void)gmem;
  (void)src_bytes;
  __trap();
#endif
}

/// cp.async.ca.shared.global 8 bytes. Both addresses 8-byte aligned.
__device__ __forceinline__ void cp_async_8(void* smem, const void* gmem) {
#if defined(CUDA_EMU)
  ::cuda_emu::detail::cp_async(smem, gmem, 8, 8);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8;\n" ::"r"(smem_address(smem)), "l"(gmem)
               : "memory");
#else
  (void)smem;
  (void)gmem;
  __trap();
#endif
}

/// cp.async.ca.shared.global 4 bytes. Both addresses 4-byte aligned.
__device__ __forceinline__ void cp_async_4(void* smem, const void* gmem) {
#if defined(CUDA_EMU)
  ::cuda_emu::detail::cp_async(smem, gmem, 4, 4);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(smem_address(smem)), "l"(gmem)
               : "memory");
#else
  (void)smem;
  (void)gmem;
  __trap();
#endif
}

/// cp.async.commit_group: the copies issued since the last commit form one group.
__device__ __forceinline__ void cp_async_commit() {
#if defined(CUDA_EMU)
  ::cuda_emu::detail::cp_async_commit();
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

/// cp.async.wait_group N: waits until at most N of this thread's committed groups are pending.
/// (Visibility to other threads still needs a barrier.)
template <int N> __device__ __forceinline__ void cp_async_wait() {
  static_assert(N >= 0, "wait_group takes a non-negative count");
#if defined(CUDA_EMU)
  ::cuda_emu::detail::cp_async_wait(N);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

/// cp.async.wait_all: commits the pending copies and waits for every group.
__device__ __forceinline__ void cp_async_wait_all() {
#if defined(CUDA_EMU)
  ::cuda_emu::detail::cp_async_commit();
  ::cuda_emu::detail::cp_async_wait(0);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_all;\n" ::: "memory");
#endif
}

} // namespace flashnce::kernels
