// Test kernels for the tensor-core wrappers (kernels/common/mma.cuh): a 64x64x64 GEMM on
// mma.m16n8k16 (bf16, f16) fed by ldmatrix, the same on mma.m16n8k8.tf32, cvt.rna.tf32, and a
// direct probe of every ldmatrix variant's register layout.  Standard CUDA (sm_80+).
#include "emu_test_kernels.h"

#include "kernels/common/mma.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace emu_test {
namespace {

using namespace flashnce::kernels;

constexpr int kN = 64;
constexpr int kPad = 8; // row stride 72 halves = 144 bytes: rows stay 16-byte aligned

template <GemmType kType, bool kSwap>
__global__ void gemm64_16bit_kernel(const std::uint16_t* a, const std::uint16_t* b, float* c) {
  __shared__ __align__(16) std::uint16_t as[kN][kN + kPad];
  __shared__ __align__(16) std::uint16_t bs[kN][kN + kPad];
  for (int i = threadIdx.x; i < kN * kN; i += blockDim.x) {
    as[i / kN][i % kN] = a[i];
    bs[i / kN][i % kN] = b[i];
  }
  __syncthreads();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, t = lane % 4;
  const int row0 = warp * 16;
  float acc[8][4];
  for (int j = 0; j < 8; ++j)
    for (int i = 0; i < 4; ++i)
      acc[j][i] = 0.0f;
  for (int k0 = 0; k0 < kN; k0 += 16) {
    // A: matrices (rows 0-7 | 8-15) x (cols k0.. | k0+8..) in a0..a3 order.
    const int mi = lane / 8, r = lane % 8;
    std::uint32_t af[4];
    ldmatrix_x4(af, &as[row0 + r + (mi % 2) * 8][k0 + (mi / 2) * 8]);
    if (kSwap) {
      const std::uint32_t tmp = af[1];
      af[1] = af[2];
      af[2] = tmp;
    }
    for (int j = 0; j < 8; ++j) {
      // B (K x N, row-major): .trans turns 8x8 blocks of rows k into the "col" fragment.
      std::uint32_t bf[2];
      ldmatrix_x2_trans(bf, &bs[k0 + r + ((lane / 8) % 2) * 8][j * 8]);
      if (kType == GemmType::bf16)
        mma_m16n8k16_bf16(acc[j], af, bf, acc[j]);
      else
        mma_m16n8k16_f16(acc[j], af, bf, acc[j]);
    }
  }
  for (int j = 0; j < 8; ++j) {
    const int col = j * 8 + 2 * t;
    c[(row0 + g) * kN + col] = acc[j][0];
    c[(row0 + g) * kN + col + 1] = acc[j][1];
    c[(row0 + g + 8) * kN + col] = acc[j][2];
    c[(row0 + g + 8) * kN + col + 1] = acc[j][3];
  }
}

__global__ void gemm64_tf32_kernel(const float* a, const float* b, float* c) {
  __shared__ float as[kN][kN + 4];
  __shared__ float bs[kN][kN + 4];
  for (int i = threadIdx.x; i < kN * kN; i += blockDim.x) {
    as[i / kN][i % kN] = a[i];
    bs[i / kN][i % kN] = b[i];
  }
  __syncthreads();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, t = lane % 4;
  const int row0 = warp * 16;
  float acc[8][4] = {};
  for (int k0 = 0; k0 < kN; k0 += 8) {
    std::uint32_t af[4];
    af[0] = float_to_tf32(as[row0 + g][k0 + t]);
    af[1] = float_to_tf32(as[row0 + g + 8][k0 + t]);
    af[2] = float_to_tf32(as[row0 + g][k0 + t + 4]);
    af[3] = float_to_tf32(as[row0 + g + 8][k0 + t + 4]);
    for (int j = 0; j < 8; ++j) {
      std::uint32_t bf[2];
      bf[0] = float_to_tf32(bs[k0 + t][j * 8 + g]);
      bf[1] = float_to_tf32(bs[k0 + t + 4][j * 8 + g]);
      mma_m16n8k8_tf32(acc[j], af, bf, acc[j]);
    }
  }
  for (int j = 0; j < 8; ++j) {
    const int col = j * 8 + 2 * t;
    c[(row0 + g) * kN + col] = acc[j][0];
    c[(row0 + g) * kN + col + 1] = acc[j][1];
    c[(row0 + g + 8) * kN + col] = acc[j][2];
    c[(row0 + g + 8) * kN + col + 1] = acc[j][3];
  }
}

__global__ void to_tf32_kernel(const float* in, std::uint32_t* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n)
    out[i] = float_to_tf32(in[i]);
}

__global__ void ldmatrix_layouts_kernel(const std::uint16_t* m, std::uint32_t* out) {
  __shared__ __align__(16) std::uint16_t s[4][8][8];
  const int lane = threadIdx.x;
  for (int i = lane; i < 256; i += 32)
    s[i / 64][(i / 8) % 8][i % 8] = m[i];
  __syncwarp();
  const void* row = &s[lane / 8][lane % 8][0];
  std::uint32_t r1[1], r2[2], r4[4];
  ldmatrix_x1(r1, row);
  out[(0 * 4 + 0) * 32 + lane] = r1[0];
  ldmatrix_x2(r2, row);
  for (int i = 0; i < 2; ++i)
    out[(1 * 4 + i) * 32 + lane] = r2[i];
  ldmatrix_x4(r4, row);
  for (int i = 0; i < 4; ++i)
    out[(2 * 4 + i) * 32 + lane] = r4[i];
  ldmatrix_x1_trans(r1, row);
  out[(3 * 4 + 0) * 32 + lane] = r1[0];
  ldmatrix_x2_trans(r2, row);
  for (int i = 0; i < 2; ++i)
    out[(4 * 4 + i) * 32 + lane] = r2[i];
  ldmatrix_x4_trans(r4, row);
  for (int i = 0; i < 4; ++i)
    out[(5 * 4 + i) * 32 + lane] = r4[i];
}

cudaLaunchConfig_t config(dim3 grid, dim3 block) {
  cudaLaunchConfig_t c = {};
  c.gridDim = grid;
  c.blockDim = block;
  return c;
}

} // namespace

cudaError_t gemm64_16bit(GemmType type, const std::uint16_t* a, const std::uint16_t* b, float* c,
                         bool swap_fragments) {
  cudaLaunchConfig_t cfg = config(dim3(1), dim3(128));
  if (type == GemmType::bf16)
    return swap_fragments
               ? cudaLaunchKernelEx(&cfg, gemm64_16bit_kernel<GemmType::bf16, true>, a, b, c)
               : cudaLaunchKernelEx(&cfg, gemm64_16bit_kernel<GemmType::bf16, false>, a, b, c);
  return swap_fragments
             ? cudaLaunchKernelEx(&cfg, gemm64_16bit_kernel<GemmType::f16, true>, a, b, c)
             : cudaLaunchKernelEx(&cfg, gemm64_16bit_kernel<GemmType::f16, false>, a, b, c);
}

cudaError_t gemm64_tf32(const float* a, const float* b, float* c) {
  cudaLaunchConfig_t cfg = config(dim3(1), dim3(128));
  return cudaLaunchKernelEx(&cfg, gemm64_tf32_kernel, a, b, c);
}

cudaError_t to_tf32(const float* in, std::uint32_t* out, int n) {
  cudaLaunchConfig_t cfg = config(dim3((n + 127) / 128), dim3(128));
  return cudaLaunchKernelEx(&cfg, to_tf32_kernel, in, out, n);
}

cudaError_t ldmatrix_layouts(const std::uint16_t* m, std::uint32_t* out) {
  cudaLaunchConfig_t cfg = config(dim3(1), dim3(32));
  return cudaLaunchKernelEx(&cfg, ldmatrix_layouts_kernel, m, out);
}

} // namespace emu_test
