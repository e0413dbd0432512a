// The logit GEMM of one kBlockM x kBlockN tile, shared by the forward and the gradient kernels:
// dots[r][c] = x_{row0 + r} . y_{col0 + c} over the whole depth d, streamed through shared memory
// in chunks (ragged n, m, d and any stride: out-of-range elements are zero-filled, never read).
//
// Two implementations behind one entry (tile_logit_dots), chosen by the traits:
//   - FFMA (GenericTraits): f32 operands in shared memory, a kThreadM x kThreadN micro-tile per
//     thread, exact f32 products for f32 inputs.
//   - Tensor cores (MmaTraits): 16-bit operands kept as raw bits in shared memory, mma.sync
//     m16n8k16 (bf16 / f16) or m16n8k8 (TF32, for f32 inputs when allow_tf32) with f32
//     accumulation; 8 warps, each a 16 x 32 slab of the tile (4 n8 fragments).  The accumulators
//     are staged through shared memory into the same per-thread micro-tile layout as the FFMA path,
//     so the epilogues are shared.
#pragma once

#include <cstdint>

#include "kernels/common/mma.cuh"
#include "kernels/common/numeric.cuh"
#include "kernels/loss/loss_common.cuh"
#include "kernels/loss_params.h"

namespace flashnce {
namespace kernels {

// sim from the raw dot product and the pre-pass norms.
__device__ inline float similarity_from_dot(const ProblemParams& p, float dot, float norm_x,
                                            float norm_y) {
  switch (p.similarity) {
  case Similarity::dot:
    return dot;
  case Similarity::cosine:
    return dot * fabsf(norm_x) * fabsf(norm_y);
  case Similarity::neg_sq_dist:
    return 2.0f * dot - norm_x - norm_y;
  }
  return dot;
}

// FFMA: acc[i][j] = dot of tile row ty + i * kThreadsM and tile column tx + j * kThreadsN.
template <class Tr>
__device__ inline void tile_dot_ffma(float (&acc)[Tr::kThreadM][Tr::kThreadN], float* As, float* Bs,
                                     const typename Tr::T* x, int64_t ldx, int64_t rows_x,
                                     const typename Tr::T* y, int64_t ldy, int64_t rows_y,
                                     int64_t d, int64_t row0, int64_t col0, int tid) {
  const int ty = tid / Tr::kThreadsN;
  const int tx = tid % Tr::kThreadsN;
#pragma unroll
  for (int i = 0; i < Tr::kThreadM; ++i)
#pragma unroll
    for (int j = 0; j < Tr::kThreadN; ++j)
      acc[i][j] = 0.0f;
  for (int64_t k0 = 0; k0 < d; k0 += Tr::kBlockK) {
    __syncthreads(); // the previous chunk (or tile) is no longer read
    load_tile_transposed<Tr::kBlockM, Tr::kBlockK, Tr::kThreads>(As, x, ldx, rows_x, d, row0, k0,
                                                                 tid);
    load_tile_transposed<Tr::kBlockN, Tr::kBlockK, Tr::kThreads>(Bs, y, ldy, rows_y, d, col0, k0,
                                                                 tid);
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < Tr::kBlockK; ++kk) {
      float af[Tr::kThreadM], bf[Tr::kThreadN];
#pragma unroll
      for (int i = 0; i < Tr::kThreadM; ++i)
        af[i] = As[kk * Tr::kBlockM + ty + i * Tr::kThreadsM];
#pragma unroll
      for (int j = 0; j < Tr::kThreadN; ++j)
        bf[j] = Bs[kk * Tr::kBlockN + tx + j * Tr::kThreadsN];
#pragma unroll
      for (int i = 0; i < Tr::kThreadM; ++i)
#pragma unroll
        for (int j = 0; j < Tr::kThreadN; ++j)
          acc[i][j] += af[i] * bf[j];
    }
  }
}

// Raw operand word of one element as the tensor-core path stores it in shared memory.
__device__ inline uint16_t operand_bits(half_t v) {
  return v.bits;
}
__device__ inline uint16_t operand_bits(bfloat16_t v) {
  return v.bits;
}

// Loads rows [row0, row0 + ROWS) x depth [k0, k0 + K) into dst[r * LD + k] (k contiguous, the
// layout the fragments read); zero outside the matrix.
template <int ROWS, int K, int LD, int THREADS, typename S, typename T>
__device__ inline void load_tile_rows(S* dst, const T* x, int64_t ld, int64_t rows, int64_t depth,
                                      int64_t row0, int64_t k0, int tid) {
  static_assert((ROWS * K) % THREADS == 0, "even split");
#pragma unroll
  for (int q = 0; q < (ROWS * K) / THREADS; ++q) {
    const int idx = tid + q * THREADS;
    const int r = idx / K;
    const int k = idx % K;
    const int64_t gr = row0 + r;
    const int64_t gk = k0 + k;
    S v = S(0);
    if (gr < rows && gk < depth) {
      if constexpr (sizeof(S) == 2)
        v = operand_bits(x[gr * ld + gk]);
      else
        v = to_float(x[gr * ld + gk]);
    }
    dst[r * LD + k] = v;
  }
}

__device__ inline uint32_t load_pair(const uint16_t* p) {
  // Two consecutive 16-bit elements, the lower index in the low half (little-endian).
  uint32_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

// Tensor cores: the tile's dots into stage[r * (kBlockN + 1) + c] (f32).
template <class Tr>
__device__ inline void tile_dot_mma(float* stage, void* ops, const typename Tr::T* x, int64_t ldx,
                                    int64_t rows_x, const typename Tr::T* y, int64_t ldy,
                                    int64_t rows_y, int64_t d, int64_t row0, int64_t col0,
                                    int tid) {
  using T = typename Tr::T;
  constexpr int BM = Tr::kBlockM, BN = Tr::kBlockN, KC = Tr::kMmaChunk, LD = Tr::kMmaLd;
  constexpr int SN = BN + 1;
  static_assert(BM == 64 && BN == 64 && Tr::kThreads == 256, "8 warps of 16 x 32");
  const int warp = tid / 32, lane = tid % 32;
  const int g = lane >> 2, t = lane & 3;
  const int wm = (warp % 4) * 16, wn = (warp / 4) * 32;
  float c[4][4];
#pragma unroll
  for (int nt = 0; nt < 4; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      c[nt][e] = 0.0f;

  for (int64_t k0 = 0; k0 < d; k0 += KC) {
    __syncthreads(); // the previous chunk (or the stage of the previous tile) is no longer read
    if constexpr (Tr::kTf32) {
      float* As = static_cast<float*>(ops);
      float* Bs = As + BM * LD;
      load_tile_rows<BM, KC, LD, Tr::kThreads>(As, x, ldx, rows_x, d, row0, k0, tid);
      load_tile_rows<BN, KC, LD, Tr::kThreads>(Bs, y, ldy, rows_y, d, col0, k0, tid);
      __syncthreads();
#pragma unroll
      for (int kk = 0; kk < KC; kk += 8) {
        uint32_t a[4];
        a[0] = float_to_tf32(As[(wm + g) * LD + kk + t]);
        a[1] = float_to_tf32(As[(wm + g + 8) * LD + kk + t]);
        a[2] = float_to_tf32(As[(wm + g) * LD + kk + t + 4]);
        a[3] = float_to_tf32(As[(wm + g + 8) * LD + kk + t + 4]);
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) {
          const float* brow = Bs + (wn + nt * 8 + g) * LD + kk;
          const uint32_t b[2] = {float_to_tf32(brow[t]), float_to_tf32(brow[t + 4])};
          mma_m16n8k8_tf32(c[nt], a, b, c[nt]);
        }
      }
    } else {
      uint16_t* As = static_cast<uint16_t*>(ops);
      uint16_t* Bs = As + BM * LD;
      load_tile_rows<BM, KC, LD, Tr::kThreads>(As, x, ldx, rows_x, d, row0, k0, tid);
      load_tile_rows<BN, KC, LD, Tr::kThreads>(Bs, y, ldy, rows_y, d, col0, k0, tid);
      __syncthreads();
#pragma unroll
      for (int kk = 0; kk < KC; kk += 16) {
        uint32_t a[4];
        a[0] = load_pair(As + (wm + g) * LD + kk + 2 * t);
        a[1] = load_pair(As + (wm + g + 8) * LD + kk + 2 * t);
        a[2] = load_pair(As + (wm + g) * LD + kk + 2 * t + 8);
        a[3] = load_pair(As + (wm + g + 8) * LD + kk + 2 * t + 8);
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) {
          const uint16_t* brow = Bs + (wn + nt * 8 + g) * LD + kk;
          const uint32_t b[2] = {load_pair(brow + 2 * t), load_pair(brow + 2 * t + 8)};
          if constexpr (Tr::kBf16)
            mma_m16n8k16_bf16(c[nt], a, b, c[nt]);
          else
            mma_m16n8k16_f16(c[nt], a, b, c[nt]);
        }
      }
    }
  }
  // All threads passed this tile's first barrier: nobody reads the stage of the previous tile.
#pragma unroll
  for (int nt = 0; nt < 4; ++nt) {
    const int col = wn + nt * 8 + 2 * t;
    stage[(wm + g) * SN + col] = c[nt][0];
    stage[(wm + g) * SN + col + 1] = c[nt][1];
    stage[(wm + g + 8) * SN + col] = c[nt][2];
    stage[(wm + g + 8) * SN + col + 1] = c[nt][3];
  }
  (void)sizeof(T);
}

// The entry: acc in the micro-tile layout (row ty + i * kThreadsM, column tx + j * kThreadsN).
// `ops` is the operand region (Tr::kOperandBytes), `stage` a [kBlockM][kBlockN + 1] f32 buffer
// that the caller overwrites after this returns (used only by the tensor-core path).
template <class Tr>
__device__ inline void
tile_logit_dots(float (&acc)[Tr::kThreadM][Tr::kThreadN], void* ops, float* stage,
                const typename Tr::T* x, int64_t ldx, int64_t rows_x, const typename Tr::T* y,
                int64_t ldy, int64_t rows_y, int64_t d, int64_t row0, int64_t col0, int tid) {
  if constexpr (!Tr::kMma) {
    float* As = static_cast<float*>(ops);
    tile_dot_ffma<Tr>(acc, As, As + Tr::kBlockK * Tr::kBlockM, x, ldx, rows_x, y, ldy, rows_y, d,
                      row0, col0, tid);
  } else {
    constexpr int SN = Tr::kBlockN + 1;
    tile_dot_mma<Tr>(stage, ops, x, ldx, rows_x, y, ldy, rows_y, d, row0, col0, tid);
    __syncthreads();
    const int ty = tid / Tr::kThreadsN, tx = tid % Tr::kThreadsN;
#pragma unroll
    for (int i = 0; i < Tr::kThreadM; ++i)
#pragma unroll
      for (int j = 0; j < Tr::kThreadN; ++j)
        acc[i][j] = stage[(ty + i * Tr::kThreadsM) * SN + tx + j * Tr::kThreadsN];
    __syncthreads(); // the caller overwrites the stage next
  }
}

} // namespace kernels
} // namespace flashnce
