// Kernels with the bugs the emulator exists to catch.  Each one is wrong CUDA on purpose; the
// death tests (bug_catcher_test.cpp) check that the emulator aborts with a message naming the
// kernel, the block, the thread and the problem.  They compile with nvcc (never run on a GPU).
#include "emu_test_kernels.h"

#include "kernels/common/mma.cuh"
#include "kernels/common/shared_memory.cuh"

namespace emu_test {
namespace {

__global__ void divergent_barrier_kernel(int* out) {
  if (threadIdx.x < 16) {
    __syncthreads(); // only half of the block comes here ...
  }
  out[threadIdx.x] = 1;
  __syncthreads(); // ... the other half waits here
}

__global__ void shuffle_mask_excludes_caller_kernel(int* out) {
  // Lanes 16..31 execute a shuffle whose mask names only lanes 0..15.
  const int v = __shfl_xor_sync(0x0000ffffu, static_cast<int>(threadIdx.x), 1);
  out[threadIdx.x] = v;
}

__global__ void shuffle_mask_names_exited_lane_kernel(int* out) {
  if (threadIdx.x == 5)
    return;
  const int v = __shfl_down_sync(0xffffffffu, static_cast<int>(threadIdx.x), 1);
  out[threadIdx.x] = v;
}

__global__ void dynamic_smem_overrun_kernel(float* out) {
  float* buf = flashnce::kernels::dynamic_shared_memory<float>();
  buf[threadIdx.x + 1] =
      1.0f; // the launch asked for blockDim.x floats: the last write is past the end
  __syncthreads();
  out[threadIdx.x] = buf[threadIdx.x];
}

__global__ void ldmatrix_misaligned_kernel(std::uint32_t* out) {
  __shared__ __align__(16) std::uint16_t s[8 * 8 + 8];
  for (int i = threadIdx.x; i < 72; i += 32)
    s[i] = static_cast<std::uint16_t>(i);
  __syncwarp();
  std::uint32_t r[1];
  flashnce::kernels::ldmatrix_x1(r, &s[1 + (threadIdx.x % 8) * 8]); // 2-byte offset: misaligned
  out[threadIdx.x] = r[0];
}

__global__ void mma_in_partial_warp_kernel(float* out) {
  const std::uint32_t a[4] = {0, 0, 0, 0};
  const std::uint32_t b[2] = {0, 0};
  float d[4] = {0, 0, 0, 0};
  flashnce::kernels::mma_m16n8k16_bf16(d, a, b, d); // block of 48 threads: warp 1 has 16 lanes
  out[threadIdx.x] = d[0];
}

__global__ void warp_collectives_diverge_kernel(int* out) {
  int v = static_cast<int>(threadIdx.x);
  if (threadIdx.x % 2 == 0)
    v = __shfl_xor_sync(0xffffffffu, v, 2);
  else
    v = static_cast<int>(__ballot_sync(0xffffffffu, v > 3));
  out[threadIdx.x] = v;
}

__global__ void global_overrun_kernel(float* out) {
  out[threadIdx.x] = 1.0f; // launched with one thread more than `out` has floats
}

cudaLaunchConfig_t config(unsigned threads, size_t smem = 0) {
  cudaLaunchConfig_t c = {};
  c.gridDim = dim3(2);
  c.blockDim = dim3(threads);
  c.dynamicSmemBytes = smem;
  return c;
}

} // namespace

cudaError_t divergent_barrier(int* out) {
  cudaLaunchConfig_t c = config(64);
  return cudaLaunchKernelEx(&c, divergent_barrier_kernel, out);
}
cudaError_t global_overrun(float* out, int n) {
  cudaLaunchConfig_t c = config(static_cast<unsigned>(n) + 1);
  c.gridDim = dim3(1);
  return cudaLaunchKernelEx(&c, global_overrun_kernel, out);
}
cudaError_t shuffle_mask_excludes_caller(int* out) {
  cudaLaunchConfig_t c = config(32);
  return cudaLaunchKernelEx(&c, shuffle_mask_excludes_caller_kernel, out);
}
cudaError_t shuffle_mask_names_exited_lane(int* out) {
  cudaLaunchConfig_t c = config(32);
  return cudaLaunchKernelEx(&c, shuffle_mask_names_exited_lane_kernel, out);
}
cudaError_t dynamic_smem_overrun(float* out) {
  cudaLaunchConfig_t c = config(32, 32 * sizeof(float));
  return cudaLaunchKernelEx(&c, dynamic_smem_overrun_kernel, out);
}
cudaError_t ldmatrix_misaligned(std::uint32_t* out) {
  cudaLaunchConfig_t c = config(32);
  return cudaLaunchKernelEx(&c, ldmatrix_misaligned_kernel, out);
}
cudaError_t mma_in_partial_warp(float* out) {
  cudaLaunchConfig_t c = config(48);
  return cudaLaunchKernelEx(&c, mma_in_partial_warp_kernel, out);
}
cudaError_t warp_collectives_diverge(int* out) {
  cudaLaunchConfig_t c = config(32);
  return cudaLaunchKernelEx(&c, warp_collectives_diverge_kernel, out);
}

} // namespace emu_test
