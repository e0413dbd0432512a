// Tile loaders shared by every kernel, and the FFMA configuration's logit GEMM.
//
//   - load_tile_rows / load_tile_rows_async / load_operand: rows [row0, row0 + ROWS) x depth
//     [k0, k0 + K) of an operand into a shared stage, k contiguous: cp.async of 16 bytes (zfill at
//     ragged rows / depth) when the operand's base and stride are 16-byte aligned, of 4 bytes when
//     they are 4-byte aligned (decided at run time per operand), plain element loads otherwise
//     (any stride, any alignment).  The tensor-core kernels (mma_mainloop.cuh) use them for
//     misaligned operands and their row pairing (stage_row) for every copy.
//   - tile_logit_stage (GenericTraits): dots[r][c] = x_{row0 + r} . y_{col0 + c} over the whole
//     depth d with f32 operands in shared memory, a kThreadM x kThreadN micro-tile per thread
//     (exact f32 products for f32 inputs), into a stage [kBlockM][kStageLd] (f32) that the
//     kernels' epilogues read and overwrite in place.
#pragma once

#include <cstdint>
#include <type_traits>

#include "kernels/common/cp_async.cuh"
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

// Loads rows [row0, row0 + ROWS) x depth [k0, k0 + K) of x (row stride ld) into
// dst[k * ROWS + r] as f32; out-of-range elements are zero (ragged n, m, d).
template <int ROWS, int K, int THREADS, typename T>
__device__ inline void load_tile_transposed(float* dst, const T* x, int64_t ld, int64_t rows,
                                            int64_t depth, int64_t row0, int64_t k0, int tid) {
  static_assert((ROWS * K) % THREADS == 0, "even split");
#pragma unroll
  for (int q = 0; q < (ROWS * K) / THREADS; ++q) {
    const int idx = tid + q * THREADS;
    const int r = idx / K;
    const int k = idx % K;
    const int64_t gr = row0 + r;
    const int64_t gk = k0 + k;
    float v = 0.0f;
    if (gr < rows && gk < depth)
      v = to_float(x[gr * ld + gk]);
    dst[k * ROWS + r] = v;
  }
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

// The cp.async width for an operand's chunk rows: 16 bytes when the base and the row stride in
// bytes are multiples of 16, else 4 when they are multiples of 4 (the chunk offsets k0 and the
// column groups then stay aligned too), else 0: plain loads (e.g. a 16-bit operand with an odd
// stride).  Decided at run time per operand, so any stride and alignment works.
template <typename T> __device__ inline int async_copy_width(const T* x, int64_t ld) {
  const uint64_t bits =
      uint64_t(reinterpret_cast<uintptr_t>(x)) | uint64_t(ld * int64_t(sizeof(T)));
  return bits % 16 == 0 ? 16 : (bits % 4 == 0 ? 4 : 0);
}

// Issues the cp.async copies (W = 16 or 4 bytes each) of rows [row0, row0 + ROWS) x depth
// [k0, k0 + K) into dst[r * LD + k] (raw element bits; f32 stays f32 for TF32, converted at the
// fragment load).  Ragged edges: W = 16 through the zero-filling form (a row past `rows` copies 0
// bytes from the valid base `x`; a group crossing `depth` only its in-range bytes; the rest zero);
// W = 4 stores an edge group's elements directly, zero outside the matrix.  Either way the stage
// holds exactly what the plain loader writes.
// Which stage row the copy index `slot` (= copy / copies-per-row) fills.  A shared-memory phase of
// cp.async serves 128 bytes (8 lanes x 16 bytes, or 32 lanes x 4 bytes); when a row holds 64
// bytes of data, two rows share a phase, and with padded rows (e.g. 80 bytes) rows r and r + 1
// overlap in 4 banks (a 2-way conflict on every copy).  Rows r and r + kPair with kPair * row
// bytes = 64 mod 128 fill the two halves of the banks instead: slots 2j, 2j + 1 of each group of
// 2 kPair slots go to rows j and j + kPair.  Identity otherwise (a row per phase, or no such
// kPair).
template <int ROW_BYTES, int DATA_BYTES> constexpr int stage_row_pair() {
  int pair = 0; // the smallest such k, if any
  for (int k = 31; k >= 1; --k)
    if (DATA_BYTES == 64 && (k * ROW_BYTES) % 128 == 64)
      pair = k;
  return pair;
}
template <int kPair, int ROWS> __device__ inline int stage_row(int slot) {
  if constexpr (kPair > 0) {
    if constexpr (ROWS % (2 * kPair) == 0) {
      const int j = slot % (2 * kPair);
      return slot - j + (j >> 1) + (j & 1) * kPair;
    }
  }
  return slot;
}
static_assert(stage_row_pair<80, 64>() == 4 && stage_row_pair<144, 128>() == 0,
              "80-byte rows pair r with r + 4; rows of 128 data bytes take a phase each");

template <int W, int ROWS, int K, int LD, int THREADS, typename S, typename T>
__device__ inline void load_tile_rows_async(S* dst, const T* x, int64_t ld, int64_t rows,
                                            int64_t depth, int64_t row0, int64_t k0, int tid) {
  static_assert(sizeof(S) == sizeof(T), "raw copy: shared element = global element");
  static_assert(W == 16 || W == 4, "16- or 4-byte copies");
  constexpr int kPer = W / int(sizeof(T)); // elements per copy
  constexpr int kGroups = K / kPer;        // copies per row
  static_assert(K % kPer == 0 && (LD * int(sizeof(S))) % 16 == 0, "aligned smem rows");
  static_assert((ROWS * kGroups) % THREADS == 0, "even split");
#pragma unroll
  for (int q = 0; q < (ROWS * kGroups) / THREADS; ++q) {
    const int idx = tid + q * THREADS;
    const int r =
        stage_row<stage_row_pair<LD* int(sizeof(S)), K* int(sizeof(S))>(), ROWS>(idx / kGroups);
    const int k = (idx % kGroups) * kPer;
    const int64_t gr = row0 + r;
    const int64_t gk = k0 + k;
    S* const to = dst + r * LD + k;
    // 64-bit offset: gr * ld exceeds 2^31 for large n x d.
    if constexpr (W == 16) {
      int64_t left = depth - gk; // elements of this group inside the matrix (may be <= 0)
      left = left < 0 ? 0 : (left > kPer ? kPer : left);
      const bool in = gr < rows && left > 0;
      cp_async_16_zfill(to, in ? x + gr * ld + gk : x, in ? int(left * int64_t(sizeof(T))) : 0);
    } else if (gr < rows && gk + kPer <= depth) {
      cp_async_4(to, x + gr * ld + gk);
    } else { // edge group (at most 2 elements): stored directly, zero outside the matrix
      S v[kPer];
#pragma unroll
      for (int e = 0; e < kPer; ++e) {
        v[e] = S(0);
        if (gr < rows && gk + e < depth) {
          if constexpr (sizeof(S) == 2)
            v[e] = operand_bits(x[gr * ld + gk + e]);
          else
            v[e] = to_float(x[gr * ld + gk + e]);
        }
      }
#pragma unroll
      for (int e = 0; e < kPer; ++e)
        to[e] = v[e];
    }
  }
}

// One operand's chunk into a stage with the width from async_copy_width (0: plain loads, which
// complete at once).
template <int ROWS, int K, int LD, int THREADS, typename S, typename T>
__device__ inline void load_operand(S* dst, int width, const T* x, int64_t ld, int64_t rows,
                                    int64_t depth, int64_t row0, int64_t k0, int tid) {
  if (width == 16)
    load_tile_rows_async<16, ROWS, K, LD, THREADS>(dst, x, ld, rows, depth, row0, k0, tid);
  else if (width == 4)
    load_tile_rows_async<4, ROWS, K, LD, THREADS>(dst, x, ld, rows, depth, row0, k0, tid);
  else
    load_tile_rows<ROWS, K, LD, THREADS>(dst, x, ld, rows, depth, row0, k0, tid);
}

// One chunk of both operands into one stage: cp.async where the operand allows it (the copies
// complete at the caller's cp_async_wait), plain loads otherwise.
template <int BM, int BN, int KC, int LD, int THREADS, typename S, typename T>
__device__ inline void load_chunk(S* As, S* Bs, int x_width, int y_width, const T* x, int64_t ldx,
                                  int64_t rows_x, const T* y, int64_t ldy, int64_t rows_y,
                                  int64_t d, int64_t row0, int64_t col0, int64_t k0, int tid) {
  load_operand<BM, KC, LD, THREADS>(As, x_width, x, ldx, rows_x, d, row0, k0, tid);
  load_operand<BN, KC, LD, THREADS>(Bs, y_width, y, ldy, rows_y, d, col0, k0, tid);
}

// The entry: the tile's dots in shared memory, stage[r * kStageLd + c], visible to every
// thread on return (the kernels turn them into logits / coefficients in place).  `ops` is the
// operand region (Tr::kOperandBytes), `stage` a [kBlockM][kStageLd] f32 buffer.
template <class Tr>
__device__ inline void tile_logit_stage(void* ops, float* stage, const typename Tr::T* x,
                                        int64_t ldx, int64_t rows_x, const typename Tr::T* y,
                                        int64_t ldy, int64_t rows_y, int64_t d, int64_t row0,
                                        int64_t col0, int tid) {
  static_assert(!Tr::kMma, "the FFMA configuration; tensor cores: mma_mainloop.cuh");
  float acc[Tr::kThreadM][Tr::kThreadN];
  float* As = static_cast<float*>(ops);
  // Its first barrier (d >= 1) follows every earlier read of the stage.
  tile_dot_ffma<Tr>(acc, As, As + Tr::kBlockK * Tr::kBlockM, x, ldx, rows_x, y, ldy, rows_y, d,
                    row0, col0, tid);
  const int ty = tid / Tr::kThreadsN, tx = tid % Tr::kThreadsN;
#pragma unroll
  for (int i = 0; i < Tr::kThreadM; ++i)
#pragma unroll
    for (int j = 0; j < Tr::kThreadN; ++j)
      stage[(ty + i * Tr::kThreadsM) * Tr::kStageLd + tx + j * Tr::kThreadsN] = acc[i][j];
  __syncthreads();
}

} // namespace kernels
} // namespace flashnce
