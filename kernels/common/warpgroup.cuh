// warpgroup.cuh — register reallocation between warpgroups (setmaxnreg, sm_90a) and the cluster
// queries of a warp-specialised kernel, the only place with their PTX.
//
// setmaxnreg_inc<R>() / setmaxnreg_dec<R>(): the executing warpgroup's per-thread register limit
// becomes R (24..256, a multiple of 8); all 128 threads of the warpgroup execute the same one
// (.sync.aligned).  Under the CPU emulator it is a warpgroup collective that checks exactly that
// and otherwise does nothing (registers are not modelled).
//
// Clusters: the emulator runs clusters of one CTA only (a launch asking for more fails), so under
// it cluster_ctarank() is 0, cluster_num_ctas() 1 and cluster_sync() is a block-wide barrier (it
// must be reached by every thread, like __syncthreads; the emulator reports it as one).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace flashnce::kernels {

#if !defined(CUDA_EMU) && defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define FLASHNCE_SETMAXNREG_PTX 1
#endif
#if !defined(CUDA_EMU) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define FLASHNCE_CLUSTER_PTX 1
#endif

/// setmaxnreg.inc.sync.aligned.u32 R
template <unsigned R> __device__ __forceinline__ void setmaxnreg_inc() {
  static_assert(R >= 24 && R <= 256 && R % 8 == 0, "setmaxnreg: 24..256, a multiple of 8");
#if defined(CUDA_EMU)
  ::cuda_emu::detail::setmaxnreg(true, R);
#elif defined(FLASHNCE_SETMAXNREG_PTX)
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(R));
#else
  __trap();
#endif
}

/// setmaxnreg.dec.sync.aligned.u32 R
template <unsigned R> __device__ __forceinline__ void setmaxnreg_dec() {
  static_assert(R >= 24 && R <= 256 && R % 8 == 0, "setmaxnreg: 24..256, a multiple of 8");
#if defined(CUDA_EMU)
  ::cuda_emu::detail::setmaxnreg(false, R);
#elif defined(FLASHNCE_SETMAXNREG_PTX)
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(R));
#else
  __trap();
#endif
}

/// %cluster_ctarank: this CTA's rank in its cluster.
__device__ __forceinline__ unsigned cluster_ctarank() {
#if defined(FLASHNCE_CLUSTER_PTX)
  unsigned r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
  return r;
#else
  return 0;
#endif
}

/// %cluster_nctarank: the number of CTAs in this cluster.
__device__ __forceinline__ unsigned cluster_num_ctas() {
#if defined(FLASHNCE_CLUSTER_PTX)
  unsigned n;
  asm volatile("mov.u32 %0, %%cluster_nctarank;\n" : "=r"(n));
  return n;
#else
  return 1;
#endif
}

/// barrier.cluster.arrive + barrier.cluster.wait: every thread of every CTA of the cluster.
__device__ __forceinline__ void cluster_sync() {
#if defined(CUDA_EMU)
  ::cuda_emu::detail::syncthreads("cluster_sync (barrier.cluster)", 0);
#elif defined(FLASHNCE_CLUSTER_PTX)
  asm volatile("barrier.cluster.arrive.aligned;\nbarrier.cluster.wait.aligned;\n" ::: "memory");
#else
  __syncthreads();
#endif
}

} // namespace flashnce::kernels
