// shared_memory.cuh — dynamic shared memory, the one way kernels get it.
//
// `extern __shared__ T x[];` does not compile under a host compiler, so kernels call
// dynamic_shared_memory<T>() instead.  Under nvcc it is the usual extern array (16-byte aligned);
// under the CPU emulator (CUDA_EMU, defined by tests/emu/cuda_emu.h) it is the running block's
// buffer: exactly the launch's dynamic size, filled with 0xFF bytes (NaN as f32/f16/bf16) at block
// start, overruns reported (AddressSanitizer, or a canary checked after the block).
#pragma once

#include <cuda_runtime.h>

namespace flashnce::kernels {

template <typename T> __device__ __forceinline__ T* dynamic_shared_memory() {
#if defined(CUDA_EMU)
  return static_cast<T*>(::cuda_emu::detail::dynamic_shared_memory());
#else
  extern __shared__ __align__(16) unsigned char flashnce_dynamic_smem[];
  return reinterpret_cast<T*>(flashnce_dynamic_smem);
#endif
}

} // namespace flashnce::kernels
