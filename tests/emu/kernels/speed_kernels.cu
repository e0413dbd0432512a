// A kernel that does little but cross barriers and shuffle: the emulator's speed measurement.
#include "emu_test_kernels.h"

namespace emu_test {
namespace {

__global__ void barrier_storm_kernel(int* out, int barriers, int shuffles) {
  __shared__ int counter;
  if (threadIdx.x == 0)
    counter = 0;
  __syncthreads();
  int v = static_cast<int>(threadIdx.x);
  for (int i = 0; i < barriers; ++i) {
    if (threadIdx.x == static_cast<unsigned>(i) % blockDim.x)
      ++counter;
    __syncthreads();
  }
  for (int i = 0; i < shuffles; ++i)
    v += __shfl_xor_sync(0xffffffffu, v, 1 + i % 31) & 1;
  __syncthreads();
  if (threadIdx.x == 0)
    out[blockIdx.x] = counter;
  if (v == -1)
    out[blockIdx.x] = -1; // keeps the shuffles observable
}

} // namespace

cudaError_t barrier_storm(int* out, int blocks, int threads, int barriers, int shuffles) {
  cudaLaunchConfig_t c = {};
  c.gridDim = dim3(blocks);
  c.blockDim = dim3(threads);
  return cudaLaunchKernelEx(&c, barrier_storm_kernel, out, barriers, shuffles);
}

} // namespace emu_test
