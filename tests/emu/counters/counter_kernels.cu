// Kernels with known memory-counter answers (counters_test.cpp).  Standard CUDA; compiled for the
// emulator with the access hooks (cuda_emu_counted).  One warp per block unless said otherwise.
#include "counter_kernels.h"

#include "kernels/common/cp_async.cuh"
#include "kernels/common/mma.cuh"
#include "kernels/common/shared_memory.cuh"

using flashnce::kernels::dynamic_shared_memory;

// 32 x 32 transpose through shared memory, row stride `ld` floats (32: every column read hits one
// bank, 32-way; 33: conflict-free).  Rows are written and read one warp request at a time.
__global__ void transpose_kernel(const float* in, float* out, int ld) {
  float* tile = dynamic_shared_memory<float>();
  const int lane = threadIdx.x;
  for (int r = 0; r < 32; ++r)
    tile[r * ld + lane] = in[r * 32 + lane];
  __syncthreads();
  for (int r = 0; r < 32; ++r)
    out[r * 32 + lane] = tile[lane * ld + r];
}

// out[i] = in[i * stride]: 32 lanes x 4 bytes; stride 1 touches 4 sectors, stride 8 (32 bytes) 32.
__global__ void strided_copy_kernel(const float* in, float* out, int stride) {
  const int lane = threadIdx.x;
  out[lane] = in[lane * stride];
}

// 8-byte loads from shared memory (unsigned long long, which the host compiler keeps as one
// access): lane l reads the word pair at 8-byte index l * stride; stride 0 = every lane the same.
__global__ void wide_smem_kernel(unsigned long long* out, int stride) {
  unsigned long long* s = dynamic_shared_memory<unsigned long long>();
  const int lane = threadIdx.x;
  for (int i = lane; i < 128; i += 32)
    s[i] = static_cast<unsigned long long>(i);
  __syncthreads();
  out[lane] = s[lane * stride];
}

// One m16n8k16 bf16 mma and one ldmatrix.x4 on 8-row matrices with a row stride of `ld` halves.
__global__ void mma_ldmatrix_kernel(float* out, int ld) {
  uint16_t* s = dynamic_shared_memory<uint16_t>();
  const int lane = threadIdx.x;
  for (int i = lane; i < 32 * ld; i += 32)
    s[i] = 0x3f80; // bf16 1.0
  __syncthreads();
  // lane l addresses row l % 8 of matrix l / 8; matrix q starts at row 8q.
  uint32_t a[4];
  flashnce::kernels::ldmatrix_x4(a, s + lane * ld);
  const uint32_t b[2] = {a[0], a[1]};
  float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  flashnce::kernels::mma_m16n8k16_bf16(c, a, b, c);
  out[lane] = c[0];
}

// 32 lanes x 16-byte cp.async of consecutive global data into consecutive shared memory.
__global__ void cp_async_kernel(const float* in, float* out) {
  float* s = dynamic_shared_memory<float>();
  const int lane = threadIdx.x;
  flashnce::kernels::cp_async_16(s + 4 * lane, in + 4 * lane);
  flashnce::kernels::cp_async_commit();
  flashnce::kernels::cp_async_wait<0>();
  __syncthreads();
  out[lane] = s[lane];
}
