// tma.cuh — tensor memory accelerator loads (cp.async.bulk.tensor, sm_90), the only place with
// their PTX.  The tensor map comes from the host (tensor_map.h, cuTensorMapEncodeTiled).
//
// tma_load_2d(dst, map, c0, c1, bar) copies the map's box (box[0] elements of dimension 0, the
// contiguous one, times box[1] rows) starting at element coordinates (c0, c1) into shared memory
// at dst (128-byte aligned; 1024 for the 128-byte swizzle's pattern to start there): dense,
// dimension 0 fastest, 16-byte chunks permuted by the map's swizzle (gmma_layout.h,
// swizzle_address); elements outside the tensor (negative or past the end) are zero.  The copy
// completes box bytes on the mbarrier `bar` (complete_tx), including the zero-filled ones; a
// thread announces them with mbarrier_arrive_expect_tx.  Multicast to a cluster is not wrapped.
//
// Under the CPU emulator (CUDA_EMU) the copy is recorded at issue and performed when no thread of
// the block can run otherwise (so reading dst before the mbarrier wait sees stale data), then it
// completes its bytes on the barrier.  What the emulator does not model: README "Hopper".
#pragma once

#include <cuda.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace flashnce::kernels {

#if !defined(CUDA_EMU) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define FLASHNCE_TMA_PTX 1
__device__ __forceinline__ std::uint32_t tma_smem_address(const void* p) {
  return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
}
#endif

/// cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes
__device__ __forceinline__ void tma_load_2d(void* smem_dst, const CUtensorMap* map, int c0, int c1,
                                            std::uint64_t* bar) {
#if defined(CUDA_EMU)
  const int coords[2] = {c0, c1};
  ::cuda_emu::detail::tma_load(smem_dst, map, 2, coords, bar);
#elif defined(FLASHNCE_TMA_PTX)
  asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
               " [%0], [%1, {%2, %3}], [%4];\n" ::"r"(tma_smem_address(smem_dst)),
               "l"(reinterpret_cast<std::uint64_t>(map)), "r"(c0), "r"(c1),
               "r"(tma_smem_address(bar))
               : "memory");
#else
  (void)smem_dst;
  (void)map;
  (void)c0;
  (void)c1;
  (void)bar;
  __trap();
#endif
}

/// prefetch.tensormap: brings the map into the cache ahead of its first use (no-op emulated).
__device__ __forceinline__ void tma_prefetch_descriptor(const CUtensorMap* map) {
#if defined(FLASHNCE_TMA_PTX)
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<std::uint64_t>(map))
               : "memory");
#else
  (void)map;
#endif
}

/// fence.proxy.async.shared::cta: orders this thread's plain shared-memory writes before later
/// async-proxy accesses (wgmma reading them, a TMA store).  (No-op under the emulator.)
__device__ __forceinline__ void fence_proxy_async_shared() {
#if defined(FLASHNCE_TMA_PTX)
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

} // namespace flashnce::kernels
