// Kernels that record the order in which blocks and threads run (for the emulator's shuffling
// tests) and exercise the runtime API around launches.  Standard CUDA.
#include "emu_test_kernels.h"

namespace emu_test {
namespace {

// ticket = position of this block among all blocks of the grid (first to arrive: 0).
__global__ void block_order_kernel(unsigned* counter, unsigned* order) {
  if (threadIdx.x == 0)
    order[atomicAdd(counter, 1u)] = blockIdx.x;
}

// Per block: the order in which its threads first ran (before any barrier), and after one barrier.
__global__ void thread_order_kernel(unsigned* first, unsigned* second) {
  __shared__ unsigned ticket;
  if (threadIdx.x == 0)
    ticket = 0;
  __syncthreads();
  first[atomicAdd(&ticket, 1u)] = threadIdx.x;
  __syncthreads();
  if (threadIdx.x == 0)
    ticket = 0;
  __syncthreads();
  second[atomicAdd(&ticket, 1u)] = threadIdx.x;
}

} // namespace

cudaError_t block_order(unsigned* counter, unsigned* order, int blocks) {
  cudaLaunchConfig_t c = {};
  c.gridDim = dim3(blocks);
  c.blockDim = dim3(32);
  return cudaLaunchKernelEx(&c, block_order_kernel, counter, order);
}

cudaError_t thread_order(unsigned* first, unsigned* second, int threads) {
  cudaLaunchConfig_t c = {};
  c.gridDim = dim3(1);
  c.blockDim = dim3(threads);
  return cudaLaunchKernelEx(&c, thread_order_kernel, first, second);
}

} // namespace emu_test
