// The logit GEMM of one kBlockM x kBlockN tile, shared by the forward and the gradient kernels:
// dots[r][c] = x_{row0 + r} . y_{col0 + c} over the whole depth d, streamed through shared memory
// in chunks (ragged n, m, d and any stride: out-of-range elements are zero-filled, never read).
//
// Two implementations behind one entry (tile_logit_stage), chosen by the traits:
//   - FFMA (GenericTraits): f32 operands in shared memory, a kThreadM x kThreadN micro-tile per
//     thread, exact f32 products for f32 inputs.
//   - Tensor cores (MmaTraits): 16-bit operands kept as raw bits in shared memory, mma.sync
//     m16n8k16 (bf16 / f16) or m16n8k8 (TF32, for f32 inputs when allow_tf32) with f32
//     accumulation; 8 warps, each a 16 x 32 slab of the tile (4 n8 fragments).  The depth streams
//     in kMmaChunk chunks through two shared-memory stages (cp.async double buffering: chunk c + 1
//     in flight while chunk c is multiplied; the second stage borrows the f32 stage buffer, so no
//     extra shared memory).  cp.async 16-byte copies (zfill at ragged rows / depth) when an
//     operand's base and stride are 16-byte aligned, else 4-byte copies when they are 4-byte
//     aligned, decided at run time per operand; otherwise plain element loads into the same
//     stages (any stride, any alignment).  16-bit fragments via ldmatrix.x4.
// Either way the dots land in a shared-memory stage [kBlockM][kStageLd] (f32) that the kernels'
// epilogues read and overwrite in place.
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

// One depth chunk of the warp's 16 x 32 slab: c[nt] += A[wm.., kc] * B[wn + 8 nt.., kc].
// 16-bit fragments through ldmatrix.x4 (rows 16-byte aligned), TF32 by 32-bit loads.
template <class Tr, typename S>
__device__ inline void mma_chunk(float (&c)[4][4], const S* As, const S* Bs, int wm, int wn,
                                 int lane) {
  constexpr int KC = Tr::kMmaChunk, LD = Tr::kMmaLd;
  const int g = lane >> 2, t = lane & 3;
  if constexpr (Tr::kTf32) {
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
    // ldmatrix row addresses: lane l serves row l % 8 of matrix q = l / 8.
    const int q = lane >> 3, r8 = lane & 7;
#pragma unroll
    for (int kk = 0; kk < KC; kk += 16) {
      // A 16 x 16: matrices (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15),
      // (rows 8-15, k 8-15) = a[0..3] of the m16n8k16 fragment.
      uint32_t a[4];
      ldmatrix_x4(a, As + (wm + r8 + (q & 1) * 8) * LD + kk + (q >> 1) * 8);
#pragma unroll
      for (int np = 0; np < 2; ++np) {
        // B of two n8 tiles: matrices (tile 2np, k 0-7), (2np, k 8-15), (2np + 1, k 0-7),
        // (2np + 1, k 8-15).  Bs is [n][k]: row g, columns 2t..2t+1 of a matrix = b[] of a tile.
        uint32_t bb[4];
        ldmatrix_x4(bb, Bs + (wn + (2 * np + (q >> 1)) * 8 + r8) * LD + kk + (q & 1) * 8);
        const uint32_t b0[2] = {bb[0], bb[1]};
        const uint32_t b1[2] = {bb[2], bb[3]};
        if constexpr (Tr::kBf16) {
          mma_m16n8k16_bf16(c[2 * np], a, b0, c[2 * np]);
          mma_m16n8k16_bf16(c[2 * np + 1], a, b1, c[2 * np + 1]);
        } else {
          mma_m16n8k16_f16(c[2 * np], a, b0, c[2 * np]);
          mma_m16n8k16_f16(c[2 * np + 1], a, b1, c[2 * np + 1]);
        }
      }
    }
  }
}

// Tensor cores: the tile's dots into stage[r * kStageLd + c] (f32).
//
// The depth is streamed in kMmaChunk chunks through two shared-memory stages (double buffering):
// stage 0 is the operand region `ops`, stage 1 borrows the f32 `stage` buffer (free until the
// accumulators are written to it at the end; the traits assert it is large enough).  While the
// warps multiply chunk c out of one stage, chunk c + 1 is in flight (cp.async of 16 or 4 bytes as
// the operand's base / stride allow, plain loads otherwise) into the other; 16-bit fragments
// through ldmatrix.
template <class Tr>
__device__ inline void tile_dot_mma(float* stage, void* ops, const typename Tr::T* x, int64_t ldx,
                                    int64_t rows_x, const typename Tr::T* y, int64_t ldy,
                                    int64_t rows_y, int64_t d, int64_t row0, int64_t col0,
                                    int tid) {
  using S = std::conditional_t<Tr::kTf32, float, uint16_t>; // shared element (raw bits)
  constexpr int BM = Tr::kBlockM, BN = Tr::kBlockN, KC = Tr::kMmaChunk, LD = Tr::kMmaLd;
  constexpr int SN = Tr::kStageLd;
  static_assert(BM == 64 && BN == 64 && Tr::kThreads == 256, "8 warps of 16 x 32");
  static_assert(SN % 2 == 0, "64-bit pair stores");
  const int warp = tid / 32, lane = tid % 32;
  const int g = lane >> 2, t = lane & 3;
  const int wm = (warp % 4) * 16, wn = (warp / 4) * 32;
  float c[4][4];
#pragma unroll
  for (int nt = 0; nt < 4; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      c[nt][e] = 0.0f;

  S* const buf0 = static_cast<S*>(ops);
  S* const buf1 = reinterpret_cast<S*>(stage);
  const int x_width = async_copy_width(x, ldx);
  const int y_width = async_copy_width(y, ldy);
  const int64_t chunks = d > 0 ? (d + KC - 1) / KC : 0;
  __syncthreads(); // the previous users of both stages (the last tile's reads) are done
  if (chunks > 0)
    load_chunk<BM, BN, KC, LD, Tr::kThreads>(buf0, buf0 + BM * LD, x_width, y_width, x, ldx, rows_x,
                                             y, ldy, rows_y, d, row0, col0, 0, tid);
  cp_async_commit();
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const S* const As = (ch & 1) ? buf1 : buf0;
    if (ch + 1 < chunks) { // prefetch the next chunk into the other stage
      S* const An = (ch & 1) ? buf0 : buf1;
      load_chunk<BM, BN, KC, LD, Tr::kThreads>(An, An + BM * LD, x_width, y_width, x, ldx, rows_x,
                                               y, ldy, rows_y, d, row0, col0, (ch + 1) * KC, tid);
    }
    cp_async_commit();  // (an empty group on the last chunk keeps the count uniform)
    cp_async_wait<1>(); // this thread's copies of chunk ch have landed ...
    __syncthreads();    // ... and everybody's are visible
    mma_chunk<Tr>(c, As, As + BM * LD, wm, wn, lane);
    __syncthreads(); // this stage is no longer read: the next prefetch (or the accumulator
                     // writes below, when it is the `stage` buffer) may overwrite it
  }
#pragma unroll
  for (int nt = 0; nt < 4; ++nt) {
    const int col = wn + nt * 8 + 2 * t;
    store_pair(stage + (wm + g) * SN + col, make_float2(c[nt][0], c[nt][1]));
    store_pair(stage + (wm + g + 8) * SN + col, make_float2(c[nt][2], c[nt][3]));
  }
}

// The entry: the tile's dots in shared memory, stage[r * kStageLd + c], visible to every
// thread on return (the kernels turn them into logits / coefficients in place).  `ops` is the
// operand region (Tr::kOperandBytes), `stage` a [kBlockM][kStageLd] f32 buffer.
template <class Tr>
__device__ inline void tile_logit_stage(void* ops, float* stage, const typename Tr::T* x,
                                        int64_t ldx, int64_t rows_x, const typename Tr::T* y,
                                        int64_t ldy, int64_t rows_y, int64_t d, int64_t row0,
                                        int64_t col0, int tid) {
  if constexpr (!Tr::kMma) {
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
  } else {
    tile_dot_mma<Tr>(stage, ops, x, ldx, rows_x, y, ldy, rows_y, d, row0, col0, tid);
  }
  __syncthreads();
}

} // namespace kernels
} // namespace flashnce
