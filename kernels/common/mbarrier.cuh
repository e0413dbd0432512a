// mbarrier.cuh — shared-memory transaction barriers (mbarrier, sm_90) and named barriers, the only
// place with their PTX.
//
// An mbarrier is a 64-bit shared-memory object with a current phase, an expected and a pending
// arrival count and a transaction count (tx-count, bytes).  A phase completes when its pending
// arrivals reach zero and its tx-count is zero; the barrier then moves to the next phase (pending
// = expected again).  try_wait.parity(p) returns once the phase with parity p has completed: p is
// the parity of the current phase (wait for it) or of the immediately preceding one (done).
// Bulk copies (TMA, tma.cuh) complete bytes on it (complete_tx); a thread announces them first
// with arrive_expect_tx (or expect_tx).
//
// Named barriers: bar.sync id, count waits until `count` threads (a multiple of 32) have arrived at
// barrier `id` (bar.sync or bar.arrive); bar.arrive arrives without waiting.  Ids 1..15 (0 is
// __syncthreads').
//
// Under the CPU emulator (CUDA_EMU) the bodies call tests/emu, which keeps each barrier's state,
// makes a waiting thread a scheduling point (it yields to the other threads of its block) and
// aborts with the barrier's state when a wait can never complete (wrong phase parity, expect_tx
// bytes that never arrive, missing arrivals).  On the GPU a try_wait may time out and return false
// (callers loop: mbarrier_wait_parity); the emulator returns only once the phase has completed.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace flashnce::kernels {

#if !defined(CUDA_EMU) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define FLASHNCE_MBARRIER_PTX 1
__device__ __forceinline__ std::uint32_t mbarrier_smem_address(const void* p) {
  return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
}
#endif

/// mbarrier.init.shared::cta.b64: phase 0, `count` (1 .. 2^20-1) arrivals expected per phase.
/// Other threads may use it after fence_mbarrier_init() and a barrier (__syncthreads).
__device__ __forceinline__ void mbarrier_init(std::uint64_t* bar, unsigned count) {
#if defined(CUDA_EMU)
  ::cuda_emu::detail::mbarrier_init(bar, count);
#elif defined(FLASHNCE_MBARRIER_PTX)
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(mbarrier_smem_address(bar)),
               "r"(count)
               : "memory");
#else
  (void)bar;
  (void)count;
  __trap();
#endif
}

/// fence.mbarrier_init.release.cluster: makes prior mbarrier.init visible to the async proxy (TMA)
/// and the cluster.  (No-op under the emulator.)
__device__ __forceinline__ void fence_mbarrier_init() {
#if defined(FLASHNCE_MBARRIER_PTX)
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#endif
}

/// mbarrier.inval.shared::cta.b64: the object may be reused as memory or re-initialised.
__device__ __forceinline__ void mbarrier_inval(std::uint64_t* bar) {
#if defined(CUDA_EMU)
  ::cuda_emu::detail::mbarrier_inval(bar);
#elif defined(FLASHNCE_MBARRIER_PTX)
  asm volatile("mbarrier.inval.shared::cta.b64 [%0];\n" ::"r"(mbarrier_smem_address(bar))
               : "memory");
#else
  (void)bar;
  __trap();
#endif
}

/// mbarrier.arrive.shared::cta.b64: one arrival on the current phase; returns the state token.
__device__ __forceinline__ std::uint64_t mbarrier_arrive(std::uint64_t* bar) {
#if defined(CUDA_EMU)
  return ::cuda_emu::detail::mbarrier_arrive(bar, 0, false);
#elif defined(FLASHNCE_MBARRIER_PTX)
  std::uint64_t state;
  asm volatile("mbarrier.arrive.shared::cta.b64 %0, [%1];\n"
               : "=l"(state)
               : "r"(mbarrier_smem_address(bar))
               : "memory");
  return state;
#else
  (void)bar;
  __trap();
  return 0;
#endif
}

/// mbarrier.arrive.expect_tx.shared::cta.b64: adds `tx_bytes` to the current phase's tx-count,
/// then arrives (the phase then also waits for those bytes to complete).
__device__ __forceinline__ std::uint64_t mbarrier_arrive_expect_tx(std::uint64_t* bar,
                                                                    std::uint32_t tx_bytes) {
#if defined(CUDA_EMU)
  return ::cuda_emu::detail::mbarrier_arrive(bar, tx_bytes, true);
#elif defined(FLASHNCE_MBARRIER_PTX)
  std::uint64_t state;
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 %0, [%1], %2;\n"
               : "=l"(state)
               : "r"(mbarrier_smem_address(bar)), "r"(tx_bytes)
               : "memory");
  return state;
#else
  (void)bar;
  (void)tx_bytes;
  __trap();
  return 0;
#endif
}

/// mbarrier.expect_tx.relaxed.cta.shared::cta.b64: adds `tx_bytes` to the tx-count, no arrival.
__device__ __forceinline__ void mbarrier_expect_tx(std::uint64_t* bar, std::uint32_t tx_bytes) {
#if defined(CUDA_EMU)
  ::cuda_emu::detail::mbarrier_expect_tx(bar, tx_bytes);
#elif defined(FLASHNCE_MBARRIER_PTX)
  asm volatile("mbarrier.expect_tx.relaxed.cta.shared::cta.b64 [%0], %1;\n" ::"r"(
                   mbarrier_smem_address(bar)),
               "r"(tx_bytes)
               : "memory");
#else
  (void)bar;
  (void)tx_bytes;
  __trap();
#endif
}

/// mbarrier.try_wait.parity.shared::cta.b64: true once the phase with parity `phase_parity` (0/1)
/// has completed; false if a time limit passed first (GPU only).
__device__ __forceinline__ bool mbarrier_try_wait_parity(std::uint64_t* bar,
                                                         unsigned phase_parity) {
#if defined(CUDA_EMU)
  return ::cuda_emu::detail::mbarrier_try_wait_parity(bar, phase_parity);
#elif defined(FLASHNCE_MBARRIER_PTX)
  std::uint32_t done;
  asm volatile("{\n"
               ".reg .pred p;\n"
               "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
               "selp.u32 %0, 1, 0, p;\n"
               "}\n"
               : "=r"(done)
               : "r"(mbarrier_smem_address(bar)), "r"(phase_parity)
               : "memory");
  return done != 0;
#else
  (void)bar;
  (void)phase_parity;
  __trap();
  return false;
#endif
}

/// Waits until the phase with parity `phase_parity` has completed.
__device__ __forceinline__ void mbarrier_wait_parity(std::uint64_t* bar, unsigned phase_parity) {
  while (!mbarrier_try_wait_parity(bar, phase_parity)) {
  }
}

/// bar.sync id, count: waits until `count` threads (a multiple of 32) arrived at named barrier
/// `id` (1..15).
__device__ __forceinline__ void named_barrier_sync(unsigned id, unsigned count) {
#if defined(CUDA_EMU)
  ::cuda_emu::detail::named_barrier(id, count, true);
#elif defined(__CUDA_ARCH__)
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(count) : "memory");
#else
  (void)id;
  (void)count;
#endif
}

/// bar.arrive id, count: arrives at named barrier `id` without waiting (producer side).
__device__ __forceinline__ void named_barrier_arrive(unsigned id, unsigned count) {
#if defined(CUDA_EMU)
  ::cuda_emu::detail::named_barrier(id, count, false);
#elif defined(__CUDA_ARCH__)
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(count) : "memory");
#else
  (void)id;
  (void)count;
#endif
}

} // namespace flashnce::kernels
