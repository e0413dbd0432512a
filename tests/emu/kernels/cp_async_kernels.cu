// Test kernels for the async-copy wrappers (kernels/common/cp_async.cuh): a double-buffered
// pipeline with commit/wait groups, zero-fill, and a deliberately missing wait.  Standard CUDA.
#include "emu_test_kernels.h"

#include "kernels/common/cp_async.cuh"
#include "kernels/common/shared_memory.cuh"

namespace emu_test {
namespace {

using namespace flashnce::kernels;

constexpr int kThreads = 128;
constexpr int kStage = 512; // floats per stage: 4 per thread

// Thread t stages floats [4t, 4t+4) of the stage with one 16-byte, two 8-byte or four 4-byte
// copies.
__device__ void issue_stage(float* dst, const float* in, int n, int first, int copy_bytes) {
  const int local = 4 * threadIdx.x;
  const int idx = first + local;
  if (copy_bytes == 16) {
    const int remaining = n - idx;
    const int src_bytes = remaining >= 4 ? 16 : (remaining > 0 ? 4 * remaining : 0);
    cp_async_16_zfill(dst + local, src_bytes > 0 ? in + idx : in, src_bytes);
  } else {
    const int per = copy_bytes / 4;
    for (int j = 0; j < 4; j += per) {
      if (idx + j + per <= n) {
        if (per == 2)
          cp_async_8(dst + local + j, in + idx + j);
        else
          cp_async_4(dst + local + j, in + idx + j);
      } else {
        for (int q = 0; q < per; ++q) { // the tail: single floats, zeros past n
          if (idx + j + q < n)
            cp_async_4(dst + local + j + q, in + idx + j + q);
          else
            dst[local + j + q] = 0.0f;
        }
      }
    }
  }
}

__global__ void cp_async_double_buffer_kernel(const float* in, float* out, int n, int copy_bytes) {
  float* buf = dynamic_shared_memory<float>(); // [2][kStage]
  const int stages = (n + kStage - 1) / kStage;
  issue_stage(buf, in, n, 0, copy_bytes);
  cp_async_commit();
  for (int s = 0; s < stages; ++s) {
    if (s + 1 < stages)
      issue_stage(buf + ((s + 1) % 2) * kStage, in, n, (s + 1) * kStage, copy_bytes);
    cp_async_commit();  // possibly empty: keeps "one group in flight" uniform
    cp_async_wait<1>(); // stage s has landed (for this thread's copies) ...
    __syncthreads();    // ... and for every thread's
    const float* cur = buf + (s % 2) * kStage;
    // Read other threads' copies: thread t consumes the floats staged by thread t + 64.
    for (int j = 0; j < 4; ++j) {
      const int local = (4 * threadIdx.x + 256 + j) % kStage;
      const int idx = s * kStage + local;
      if (idx < n)
        out[idx] = 2.0f * cur[local];
    }
    __syncthreads(); // everyone is done with this buffer before it is refilled
  }
  cp_async_wait_all();
}

__global__ void cp_async_read_before_wait_kernel(const float* in, float* out, int n) {
  float* buf = dynamic_shared_memory<float>();
  const int idx = 4 * threadIdx.x;
  if (idx < n)
    cp_async_16(buf + idx, in + idx);
  cp_async_commit();
  __syncthreads(); // a barrier does not complete cp.async: only wait_group does
  if (idx < n)
    for (int j = 0; j < 4; ++j)
      out[idx + j] = buf[idx + j];
  cp_async_wait_all();
}

__global__ void cp_async_zfill_kernel(const float* in, float* out, int src_bytes) {
  float* buf = dynamic_shared_memory<float>();
  const int idx = 4 * threadIdx.x;
  cp_async_16_zfill(buf + idx, in + idx, src_bytes);
  cp_async_wait_all();
  for (int j = 0; j < 4; ++j)
    out[idx + j] = buf[idx + j];
}

cudaLaunchConfig_t config(dim3 grid, dim3 block, size_t smem) {
  cudaLaunchConfig_t c = {};
  c.gridDim = grid;
  c.blockDim = block;
  c.dynamicSmemBytes = smem;
  return c;
}

} // namespace

cudaError_t cp_async_double_buffer(const float* in, float* out, int n, int copy_bytes) {
  cudaLaunchConfig_t cfg = config(dim3(1), dim3(kThreads), 2 * kStage * sizeof(float));
  return cudaLaunchKernelEx(&cfg, cp_async_double_buffer_kernel, in, out, n, copy_bytes);
}

cudaError_t cp_async_read_before_wait(const float* in, float* out, int n) {
  cudaLaunchConfig_t cfg = config(dim3(1), dim3(32), 128 * sizeof(float));
  return cudaLaunchKernelEx(&cfg, cp_async_read_before_wait_kernel, in, out, n);
}

cudaError_t cp_async_zfill(const float* in, float* out, int src_bytes) {
  cudaLaunchConfig_t cfg = config(dim3(1), dim3(32), 128 * sizeof(float));
  return cudaLaunchKernelEx(&cfg, cp_async_zfill_kernel, in, out, src_bytes);
}

} // namespace emu_test
