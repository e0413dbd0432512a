// Test kernels for the mbarrier and named-barrier wrappers (kernels/common/mbarrier.cuh): a
// producer/consumer ring on full/empty mbarriers and a named-barrier handoff.  Standard CUDA.
#include "hopper_kernels.h"

#include "kernels/common/mbarrier.cuh"
#include "kernels/common/shared_memory.cuh"

namespace emu_hopper {
namespace {

using namespace flashnce::kernels;

constexpr int kSlot = 32; // ints per ring slot

// Warp 0 produces, warps 1..7 (224 threads) consume; slot s of round r: the producer waits for
// "empty" phase r-1 of s, fills it and arrives on "full" (32 arrivals); consumers wait for "full"
// phase r and arrive on "empty" (224 arrivals).
__global__ void mbarrier_pipeline_kernel(const int* in, int* out, int n, int stages) {
  auto* bars = dynamic_shared_memory<std::uint64_t>(); // full[stages], empty[stages], slots
  std::uint64_t* full = bars;
  std::uint64_t* empty = bars + stages;
  int* slots = reinterpret_cast<int*>(bars + 2 * stages);
  if (threadIdx.x == 0) {
    for (int s = 0; s < stages; ++s) {
      mbarrier_init(&full[s], 32);
      mbarrier_init(&empty[s], 224);
    }
    fence_mbarrier_init();
  }
  __syncthreads();
  const int chunks = (n + kSlot - 1) / kSlot;
  if (threadIdx.x < 32) {
    for (int c = 0; c < chunks; ++c) {
      const int s = c % stages, round = c / stages;
      if (round > 0)
        mbarrier_wait_parity(&empty[s], static_cast<unsigned>(round - 1) & 1u);
      const int i = c * kSlot + static_cast<int>(threadIdx.x);
      slots[s * kSlot + threadIdx.x] = i < n ? in[i] : 0;
      mbarrier_arrive(&full[s]);
    }
  } else {
    const int ct = static_cast<int>(threadIdx.x) - 32; // 0..223
    for (int c = 0; c < chunks; ++c) {
      const int s = c % stages, round = c / stages;
      mbarrier_wait_parity(&full[s], static_cast<unsigned>(round) & 1u);
      if (ct < kSlot) {
        const int i = c * kSlot + ct;
        if (i < n)
          out[i] = 3 * slots[s * kSlot + ct] + 1;
      }
      mbarrier_arrive(&empty[s]);
    }
  }
}

__global__ void named_barrier_handoff_kernel(const int* in, int* out) {
  __shared__ int first[128];
  __shared__ int second[128];
  const int t = static_cast<int>(threadIdx.x);
  if (t < 128) {
    first[t] = in[t] + 1;
    named_barrier_arrive(1, 256); // producer side: does not wait
    named_barrier_sync(2, 256);
    out[128 + t] = second[t];
  } else {
    named_barrier_sync(1, 256);
    out[t - 128] = first[t - 128];
    second[t - 128] = 2 * first[t - 128];
    named_barrier_arrive(2, 256);
  }
}

} // namespace

cudaError_t mbarrier_pipeline(const int* in, int* out, int n, int stages) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(1);
  cfg.blockDim = dim3(256);
  cfg.dynamicSmemBytes = static_cast<std::size_t>(stages) * (16 + kSlot * 4);
  return cudaLaunchKernelEx(&cfg, mbarrier_pipeline_kernel, in, out, n, stages);
}

cudaError_t named_barrier_handoff(const int* in, int* out) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(1);
  cfg.blockDim = dim3(256);
  return cudaLaunchKernelEx(&cfg, named_barrier_handoff_kernel, in, out);
}

} // namespace emu_hopper
