// Test kernels for the emulator's basic features: barriers, static and dynamic shared memory,
// every shuffle kind, votes, built-in indices, atomics.  Standard CUDA: compiled unchanged by nvcc
// and, after cuda_emu.h, by the host compiler.
#include "emu_test_kernels.h"

#include <cuda_fp16.h>

#include "kernels/common/shared_memory.cuh"

__device__ int g_launch_counter; // global memory, shared by all blocks
__constant__ float c_weights[4]; // constant memory, set from the host

namespace emu_test {
namespace {

// No parameters at all; __device__ and __constant__ variables instead.
__global__ void symbols_kernel() {
  __shared__ float weighted;
  if (threadIdx.x == 0)
    weighted = 0.0f;
  __syncthreads();
  atomicAdd(&weighted, c_weights[threadIdx.x % 4]);
  __syncthreads();
  if (threadIdx.x == 0)
    atomicAdd(&g_launch_counter, static_cast<int>(weighted));
}

// Tree reduction in static shared memory; blockDim.x is a power of two <= 1024.
__global__ void block_reduce_kernel(const float* in, float* out, int per_block) {
  __shared__ float partial[1024];
  const int tid = threadIdx.x;
  const float* block_in = in + static_cast<long>(blockIdx.x) * per_block;
  float acc = 0.0f;
  for (int i = tid; i < per_block; i += blockDim.x)
    acc += block_in[i];
  partial[tid] = acc;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (tid < stride)
      partial[tid] += partial[tid + stride];
    __syncthreads();
  }
  if (tid == 0)
    out[blockIdx.x] = partial[0];
}

constexpr int kTile = 32;
constexpr int kRowsPerPass = 8;

__global__ void transpose_kernel(const float* in, float* out, int rows, int cols) {
  __shared__ float tile[kTile][kTile + 1]; // +1: no bank conflicts on the transposed read
  int x = blockIdx.x * kTile + threadIdx.x;
  int y = blockIdx.y * kTile + threadIdx.y;
  for (int j = 0; j < kTile; j += kRowsPerPass)
    if (x < cols && y + j < rows)
      tile[threadIdx.y + j][threadIdx.x] = in[(y + j) * cols + x];
  __syncthreads();
  x = blockIdx.y * kTile + threadIdx.x;
  y = blockIdx.x * kTile + threadIdx.y;
  for (int j = 0; j < kTile; j += kRowsPerPass)
    if (x < rows && y + j < cols)
      out[(y + j) * rows + x] = tile[threadIdx.x][threadIdx.y + j];
}

__global__ void warp_shuffles_kernel(const int* in, int* out, int width) {
  const unsigned full = 0xffffffffu;
  const int lane = threadIdx.x;
  const int v = in[lane];
  const int seg_lane = lane % width;

  int scan = v;
  for (int d = 1; d < width; d *= 2) {
    int up = __shfl_up_sync(full, scan, d, width);
    if (seg_lane >= d)
      scan += up;
  }
  out[0 * 32 + lane] = scan;

  int suffix = v;
  for (int d = 1; d < width; d *= 2) {
    int down = __shfl_down_sync(full, suffix, d, width);
    if (seg_lane + d < width)
      suffix += down;
  }
  out[1 * 32 + lane] = suffix;

  int sum = v;
  for (int m = width / 2; m > 0; m /= 2)
    sum += __shfl_xor_sync(full, sum, m, width);
  out[2 * 32 + lane] = sum;

  const int src = (lane * 5 + 3) % width;
  // Also through a 4-byte __half2 (v's two 16-bit halves) and an 8-byte double.
  const __half2 h =
      __halves2half2(__ushort_as_half(static_cast<unsigned short>(v & 0xffff)),
                     __ushort_as_half(static_cast<unsigned short>((v >> 16) & 0xffff)));
  const __half2 hs = __shfl_sync(full, h, src, width);
  const int from_half2 = static_cast<int>(__half_as_ushort(__low2half(hs))) |
                         (static_cast<int>(__half_as_ushort(__high2half(hs))) << 16);
  const double from_double = __shfl_sync(full, static_cast<double>(v), src, width);
  const int plain = __shfl_sync(full, v, src, width);
  out[3 * 32 + lane] = (from_half2 == plain && from_double == plain) ? plain : -999999;
  out[4 * 32 + lane] = __shfl_sync(full, v, src + 7 * width, width);
}

// The two half-warps take different branches and use disjoint masks (legal since sm_70).
__global__ void half_warp_collectives_kernel(const int* in, int* sums, unsigned* ballots) {
  const int lane = threadIdx.x;
  int v = in[lane];
  if (lane < 16) {
    const unsigned mask = 0x0000ffffu;
    for (int m = 8; m > 0; m /= 2)
      v += __shfl_xor_sync(mask, v, m, 16);
    __syncwarp(mask);
    ballots[lane] = __ballot_sync(mask, in[lane] % 2 != 0);
  } else {
    const unsigned mask = 0xffff0000u;
    for (int m = 1; m < 16; m *= 2)
      v += __shfl_xor_sync(mask, v, m, 16);
    ballots[lane] = __ballot_sync(mask, in[lane] % 2 != 0);
    __syncwarp(mask);
  }
  sums[lane] = v;
}

__global__ void votes_kernel(const int* in, unsigned* out) {
  const int tid = threadIdx.x;
  const int pred = in[tid] > 0;
  const unsigned mask = 0xffffffffu;
  const unsigned ballot = __ballot_sync(mask, pred);
  const int any = __any_sync(mask, pred);
  const int all = __all_sync(mask, pred);
  const unsigned active = __activemask();
  const int count = __syncthreads_count(pred);
  const int all_block = __syncthreads_and(pred);
  const int any_block = __syncthreads_or(pred);
  if (tid == 0) {
    out[0] = ballot;
    out[1] = static_cast<unsigned>(any);
    out[2] = static_cast<unsigned>(all);
    out[3] = active;
    out[4] = static_cast<unsigned>(count);
    out[5] = static_cast<unsigned>(all_block);
    out[6] = static_cast<unsigned>(any_block);
  }
}

__global__ void grid_indices_kernel(unsigned* out) {
  const unsigned bx = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const unsigned tx = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const unsigned threads = blockDim.x * blockDim.y * blockDim.z;
  const unsigned id = bx * threads + tx;
  out[id] = id;
}

__global__ void atomics_kernel(const int* in, int n, int bins, unsigned* hist, int* stats,
                               float* fsum) {
  __shared__ unsigned local[256];
  for (int b = threadIdx.x; b < bins; b += blockDim.x)
    local[b] = 0;
  __syncthreads();
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    const int v = in[i];
    atomicAdd(&local[v], 1u);
    atomicMax(&stats[0], v);
    atomicMin(&stats[1], v);
    atomicAdd(fsum, 0.5f);
    if (v == 0)
      atomicExch(&stats[3], 1);
  }
  __syncthreads();
  for (int b = threadIdx.x; b < bins; b += blockDim.x)
    atomicAdd(&hist[b], local[b]);
  // Exactly one thread of the grid wins the CAS from 0 to 1; every thread counts attempts.
  atomicCAS(&stats[2], 0, 1);
  atomicAdd(&stats[4], 1);
}

__device__ void dynamic_smem_sum_body(const float* in, float* out, int floats) {
  float* buf = flashnce::kernels::dynamic_shared_memory<float>();
  for (int i = threadIdx.x; i < floats; i += blockDim.x)
    buf[i] = in[blockIdx.x * floats + i];
  __syncthreads();
  if (threadIdx.x == 0) {
    float s = 0.0f;
    for (int i = 0; i < floats; ++i)
      s += buf[i];
    out[blockIdx.x] = s;
  }
}

__global__ void dynamic_smem_sum_kernel(const float* in, float* out, int floats) {
  dynamic_smem_sum_body(in, out, floats);
}

// A second kernel with the same body: the 48 KB opt-in is per kernel.
__global__ void dynamic_smem_sum_opt_in_kernel(const float* in, float* out, int floats) {
  dynamic_smem_sum_body(in, out, floats);
}

__global__ void scale_kernel(float* data, float factor, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n)
    data[i] *= factor;
}

__global__ void read_uninitialised_smem_kernel(unsigned* out, int words) {
  const unsigned* buf = flashnce::kernels::dynamic_shared_memory<unsigned>();
  for (int i = threadIdx.x; i < words; i += blockDim.x)
    out[i] = buf[i];
}

cudaLaunchConfig_t config(dim3 grid, dim3 block, size_t smem = 0) {
  cudaLaunchConfig_t c = {};
  c.gridDim = grid;
  c.blockDim = block;
  c.dynamicSmemBytes = smem;
  c.stream = nullptr;
  c.attrs = nullptr;
  c.numAttrs = 0;
  return c;
}

} // namespace

cudaError_t block_reduce(const float* in, float* out, int per_block, int blocks, int threads) {
  cudaLaunchConfig_t c = config(dim3(blocks), dim3(threads));
  return cudaLaunchKernelEx(&c, block_reduce_kernel, in, out, per_block);
}

cudaError_t block_reduce_c_api(const float* in, float* out, int per_block, int blocks,
                               int threads) {
  void* args[] = {&in, &out, &per_block};
  return cudaLaunchKernel(reinterpret_cast<const void*>(&block_reduce_kernel), dim3(blocks),
                          dim3(threads), args, 0, nullptr);
}

cudaError_t scale_c_api(float* data, float factor, int n, bool query_attributes_first) {
  if (query_attributes_first) {
    cudaFuncAttributes attr;
    const cudaError_t e = cudaFuncGetAttributes(&attr, scale_kernel);
    if (e != cudaSuccess)
      return e;
  }
  void* args[] = {&data, &factor, &n};
  return cudaLaunchKernel(reinterpret_cast<const void*>(&scale_kernel), dim3((n + 63) / 64),
                          dim3(64), args, 0, nullptr);
}

cudaError_t symbols(const float (&weights)[4], int blocks, int* counter) {
  const int zero = 0;
  cudaError_t e = cudaMemcpyToSymbol(g_launch_counter, &zero, sizeof(int));
  if (e == cudaSuccess)
    e = cudaMemcpyToSymbol(c_weights, weights, sizeof(float) * 4);
  if (e != cudaSuccess)
    return e;
  cudaLaunchConfig_t c = config(dim3(blocks), dim3(64));
  e = cudaLaunchKernelEx(&c, symbols_kernel);
  if (e != cudaSuccess)
    return e;
  return cudaMemcpyFromSymbol(counter, g_launch_counter, sizeof(int));
}

cudaError_t transpose(const float* in, float* out, int rows, int cols) {
  cudaLaunchConfig_t c = config(dim3((cols + kTile - 1) / kTile, (rows + kTile - 1) / kTile),
                                dim3(kTile, kRowsPerPass));
  return cudaLaunchKernelEx(&c, transpose_kernel, in, out, rows, cols);
}

cudaError_t warp_shuffles(const int* in, int* out, int width) {
  cudaLaunchConfig_t c = config(dim3(1), dim3(32));
  return cudaLaunchKernelEx(&c, warp_shuffles_kernel, in, out, width);
}

cudaError_t half_warp_collectives(const int* in, int* sums, unsigned* ballots) {
  cudaLaunchConfig_t c = config(dim3(1), dim3(32));
  return cudaLaunchKernelEx(&c, half_warp_collectives_kernel, in, sums, ballots);
}

cudaError_t votes(const int* in, unsigned* out) {
  cudaLaunchConfig_t c = config(dim3(1), dim3(64));
  return cudaLaunchKernelEx(&c, votes_kernel, in, out);
}

cudaError_t grid_indices(unsigned* out, dim3 grid, dim3 block) {
  cudaLaunchConfig_t c = config(grid, block);
  return cudaLaunchKernelEx(&c, grid_indices_kernel, out);
}

cudaError_t atomics(const int* in, int n, int bins, unsigned* hist, int* stats, float* fsum) {
  cudaLaunchConfig_t c = config(dim3(8), dim3(128));
  return cudaLaunchKernelEx(&c, atomics_kernel, in, n, bins, hist, stats, fsum);
}

cudaError_t dynamic_smem_sum(const float* in, float* out, int floats, int blocks) {
  cudaLaunchConfig_t c =
      config(dim3(blocks), dim3(128), sizeof(float) * static_cast<size_t>(floats));
  return cudaLaunchKernelEx(&c, dynamic_smem_sum_kernel, in, out, floats);
}

cudaError_t dynamic_smem_sum_opt_in(const float* in, float* out, int floats, int blocks,
                                    bool opt_in) {
  const size_t bytes = sizeof(float) * static_cast<size_t>(floats);
  if (opt_in) {
    cudaError_t e =
        cudaFuncSetAttribute(dynamic_smem_sum_opt_in_kernel,
                             cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
    if (e != cudaSuccess)
      return e;
  }
  cudaLaunchConfig_t c = config(dim3(blocks), dim3(128), bytes);
  return cudaLaunchKernelEx(&c, dynamic_smem_sum_opt_in_kernel, in, out, floats);
}

cudaError_t read_uninitialised_smem(unsigned* out, int words) {
  cudaLaunchConfig_t c = config(dim3(1), dim3(64), sizeof(unsigned) * static_cast<size_t>(words));
  return cudaLaunchKernelEx(&c, read_uninitialised_smem_kernel, out, words);
}

} // namespace emu_test
