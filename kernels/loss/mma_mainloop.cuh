// The logit GEMM of the tensor-core kernels with the accumulators in registers: a block streams
// its logit tiles x_{row0..} . y_{col0..} over the depth d through a kStages-deep ring of
// shared-memory stages (cp.async, zero-filled ragged edges), one (x chunk, y chunk) pair per
// stage, and each warp multiplies its kWarpRows x kWarpCols slab of the tile from ldmatrix
// fragments into mma accumulators that stay in registers (FlashAttention-2's main loop).
//
// The ring runs across tile boundaries: the kernel numbers the (tile, depth chunk) items of its
// whole sweep and keeps kStages - 1 of them in flight, so the next tile's first chunks load while
// this tile's epilogue runs.  Nothing here knows about the loss: the kernels own the epilogue.
//
// Accumulator layout (the PTX ISA's m16n8 C fragment): acc[mt][nt][e] of warp (wm, wn) is the dot
// of tile row wm * kWarpRows + mt * 16 + g + 8 (e >= 2) and tile column wn * kWarpCols + nt * 8 +
// 2 t + (e & 1), with g = lane / 4, t = lane % 4.
#pragma once

#include <cstdint>

#include "kernels/common/cp_async.cuh"
#include "kernels/common/mma.cuh"
#include "kernels/common/numeric.cuh"
#include "kernels/loss/loss_tile.cuh"

namespace flashnce {
namespace kernels {

// The copies of one operand's chunks into the stages, for one thread.  Each thread owns kCopies
// 16-byte groups of a stage (rows from stage_row, the row pairing of loss_tile.cuh that keeps a
// cp.async phase conflict-free); a tile change sets their row pointers once (64-bit arithmetic
// per tile, not per chunk), and a chunk issues kCopies cp.async with the zero fill of the ragged
// depth.  An operand whose base or row stride is not 16-byte aligned takes load_operand's 4-byte
// or plain path instead, out of line (FLASHNCE_NOINLINE: its many per-element addresses stay out of
// the main loop's registers).
template <class Tr, int ROWS> struct OperandLoader {
  using T = typename Tr::T;
  using S = typename Tr::S;
  static constexpr int kPer = 16 / int(sizeof(S));  // elements per copy
  static constexpr int kGroups = Tr::kChunk / kPer; // copies per stage row
  static constexpr int kCopies = ROWS * kGroups / Tr::kThreads;
  static constexpr int kPair =
      stage_row_pair<Tr::kLd* int(sizeof(S)), Tr::kChunk* int(sizeof(S))>();
  static_assert(ROWS * kGroups % Tr::kThreads == 0, "whole copies per thread");

  const T* x;
  int64_t ld, rows, d;
  bool fast;             // 16-byte copies
  const T* row[kCopies]; // this thread's rows of the current tile (x itself past `rows`)
  bool row_in[kCopies];

  __device__ OperandLoader(const T* x_, int64_t ld_, int64_t rows_, int64_t d_)
      : x(x_), ld(ld_), rows(rows_), d(d_), fast(async_copy_width(x_, ld_) == 16) {}

  __device__ static int stage_row_of(int c, int tid) {
    return stage_row<kPair, ROWS>((tid + c * Tr::kThreads) / kGroups);
  }
  __device__ static int col_of(int c, int tid) {
    return ((tid + c * Tr::kThreads) % kGroups) * kPer;
  }

  __device__ void set_tile(int64_t row0, int tid) {
#pragma unroll
    for (int c = 0; c < kCopies; ++c) {
      const int64_t gr = row0 + stage_row_of(c, tid);
      row_in[c] = gr < rows;
      row[c] = x + (row_in[c] ? gr : 0) * ld + col_of(c, tid); // 64-bit: gr * ld > 2^31
    }
  }

  // Chunk [k0, k0 + kChunk) of the tile set last into dst ([ROWS][kLd]).
  __device__ void load(S* dst, int64_t row0, int64_t k0, int tid) const {
    if (!fast) {
      load_slow(dst, row0, k0, tid);
      return;
    }
    if (k0 + Tr::kChunk <= d) { // (every chunk but a ragged last one: no depth test per copy)
#pragma unroll
      for (int c = 0; c < kCopies; ++c)
        cp_async_16_zfill(dst + stage_row_of(c, tid) * Tr::kLd + col_of(c, tid),
                          row_in[c] ? row[c] + k0 : x, row_in[c] ? 16 : 0);
      return;
    }
#pragma unroll
    for (int c = 0; c < kCopies; ++c) {
      const int64_t left = d - k0 - col_of(c, tid); // elements of the group inside the matrix
      const int bytes = left <= 0 ? 0 : (left >= kPer ? 16 : int(left) * int(sizeof(S)));
      const bool in = row_in[c] && bytes > 0;
      // (a zero-byte copy reads nothing but still needs a valid address: x)
      cp_async_16_zfill(dst + stage_row_of(c, tid) * Tr::kLd + col_of(c, tid), in ? row[c] + k0 : x,
                        in ? bytes : 0);
    }
  }
  __device__ FLASHNCE_NOINLINE void load_slow(S* dst, int64_t row0, int64_t k0, int tid) const {
    load_operand<ROWS, Tr::kChunk, Tr::kLd, Tr::kThreads>(dst, async_copy_width(x, ld), x, ld, rows,
                                                          d, row0, k0, tid);
  }
};

template <class Tr>
__device__ inline void zero_accumulators(float (&acc)[Tr::kMTiles][Tr::kNTiles][4]) {
#pragma unroll
  for (int mt = 0; mt < Tr::kMTiles; ++mt)
#pragma unroll
    for (int nt = 0; nt < Tr::kNTiles; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        acc[mt][nt][e] = 0.0f;
}

// One stage of the warp's slab: acc += x rows [wm * kWarpRows, +kWarpRows) . y rows [wn *
// kWarpCols, +kWarpCols) over the stage's kChunk depth.  Fragments by ldmatrix.x4: lane l
// addresses row l % 8 of matrix l / 8.
//   16-bit (m16n8k16): A matrices (rows 0-7 | 8-15) x (k 0-7 | 8-15) give a[0..3]; B matrices
//   (n tile 2np | 2np + 1) x (k 0-7 | 8-15) give the b[0..1] of two n8 tiles.
//   TF32 (m16n8k8): the same instruction on 32-bit elements (each a pair of b16): A matrices
//   (rows 0-7 | 8-15) x (k 0-3 | 4-7) hand lane (g, t) the elements (g, t), (g + 8, t), (g, t + 4),
//   (g + 8, t + 4) = a[0..3]; B matrices (n tile) x (k 0-3 | 4-7) give (k t, n g), (k t + 4, n g);
//   each rounded to TF32 (cvt.rna) as allow_tf32 promises.
template <class Tr>
__device__ inline void warp_mma_stage(float (&acc)[Tr::kMTiles][Tr::kNTiles][4],
                                      const typename Tr::S* As, const typename Tr::S* Bs, int wm,
                                      int wn, int lane) {
  constexpr int LD = Tr::kLd;
  const int q = lane >> 3, r8 = lane & 7;
  const typename Tr::S* a_rows = As + (wm * Tr::kWarpRows + r8 + (q & 1) * 8) * LD;
  const typename Tr::S* b_rows = Bs + (wn * Tr::kWarpCols + (q >> 1) * 8 + r8) * LD;
#pragma unroll
  for (int kk = 0; kk < Tr::kChunk; kk += Tr::kK) {
    uint32_t a[Tr::kMTiles][4];
#pragma unroll
    for (int mt = 0; mt < Tr::kMTiles; ++mt) {
      ldmatrix_x4(a[mt], a_rows + mt * 16 * LD + kk + (q >> 1) * (Tr::kK / 2));
      if constexpr (Tr::kTf32)
#pragma unroll
        for (int i = 0; i < 4; ++i)
          a[mt][i] = float_to_tf32(bits_float(a[mt][i]));
    }
#pragma unroll
    for (int np = 0; np < Tr::kNTiles / 2; ++np) {
      uint32_t bb[4];
      ldmatrix_x4(bb, b_rows + np * 16 * LD + kk + (q & 1) * (Tr::kK / 2));
      if constexpr (Tr::kTf32)
#pragma unroll
        for (int i = 0; i < 4; ++i)
          bb[i] = float_to_tf32(bits_float(bb[i]));
      const uint32_t b0[2] = {bb[0], bb[1]};
      const uint32_t b1[2] = {bb[2], bb[3]};
#pragma unroll
      for (int mt = 0; mt < Tr::kMTiles; ++mt) {
        if constexpr (Tr::kTf32) {
          mma_m16n8k8_tf32(acc[mt][2 * np], a[mt], b0, acc[mt][2 * np]);
          mma_m16n8k8_tf32(acc[mt][2 * np + 1], a[mt], b1, acc[mt][2 * np + 1]);
        } else if constexpr (Tr::kBf16) {
          mma_m16n8k16_bf16(acc[mt][2 * np], a[mt], b0, acc[mt][2 * np]);
          mma_m16n8k16_bf16(acc[mt][2 * np + 1], a[mt], b1, acc[mt][2 * np + 1]);
        } else {
          mma_m16n8k16_f16(acc[mt][2 * np], a[mt], b0, acc[mt][2 * np]);
          mma_m16n8k16_f16(acc[mt][2 * np + 1], a[mt], b1, acc[mt][2 * np + 1]);
        }
      }
    }
  }
}

} // namespace kernels
} // namespace flashnce
