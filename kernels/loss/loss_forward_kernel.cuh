// Forward kernels of the fused contrastive loss (FlashAttention-2's forward without the value
// matrix).
//
// Math (DESIGN.md §1): s_ij = scale * sim(a_i, b_j);  for a valid row
//   loss_i = LSE_{j in Z(i)} s_ij  [- log|Z(i)| for NEGATIVES]  - mean_{p in P(i)} s_ip
// and for SYMMETRIC the same over columns.  What is never materialised: the n x m logits.  A block
// keeps one kBlockM x kBlockN tile of them in shared memory at a time and folds it into
//   - per row (registers of one thread per row): online max / sum-exp over Z(i), the positives'
//     logit sum and count, |Z(i)|;
//   - per column (SYMMETRIC): the same statistics, as this block's partial over the row tiles it
//     owns, kept in workspace col_partial[block][column] (only this block touches its slice; its
//     row tiles are merged in increasing order).  A second kernel merges the G partials of each
//     column in block order.
// Workspace: see host/cuda/dispatch.cpp (O(G * m + n + m) with G bounded by the SM count).
// Operands: the tensor-core configurations (MmaTraits) stream the depth of each logit tile through
// two shared-memory stages with cp.async (double buffering, zero-filled ragged edges; 16- or
// 4-byte copies selected at run time by the operand's base / stride alignment, plain loads
// otherwise) and load the 16-bit fragments with ldmatrix (loss_tile.cuh); the FFMA configuration
// uses plain loads.
// Deterministic: fixed tile order, fixed reduction trees, no atomics.
#pragma once

#include <cstdint>

#include "kernels/common/numeric.cuh"
#include "kernels/common/shared_memory.cuh"
#include "kernels/loss/loss_common.cuh"
#include "kernels/loss/loss_tile.cuh"
#include "kernels/loss_params.h"

namespace flashnce {
namespace kernels {

// Pre-pass: per-row norms of a (rows 0..n-1) then b (rows n..n+m-1; skipped in self mode, where
// norm_b aliases norm_a).  COSINE: 1 / max(|x|, 1e-12), stored NEGATIVE when the clamp is active
// (the gradient then has no projection term); NEG_SQ_DIST: |x|^2.  One warp per row.
template <typename T>
__global__ void __launch_bounds__(256) row_norms_kernel(__grid_constant__ const ProblemParams p) {
  const int lane = threadIdx.x % 32;
  const int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  const int64_t rows = p.self_mode ? p.n : p.n + p.m;
  if (row >= rows)
    return; // uniform per warp
  const bool is_a = row < p.n;
  const T* x = static_cast<const T*>(is_a ? p.a : p.b);
  const int64_t r = is_a ? row : row - p.n;
  const int64_t ld = is_a ? p.lda : p.ldb;
  float ss = 0.0f;
  for (int64_t k = lane; k < p.d; k += 32) {
    const float v = to_float(x[r * ld + k]);
    ss += v * v;
  }
#pragma unroll
  for (int off = 16; off > 0; off /= 2)
    ss += __shfl_xor_sync(0xffffffffu, ss, off);
  if (lane == 0) {
    float out = ss;
    if (p.similarity == Similarity::cosine) {
      const float norm = sqrtf(ss);
      // Hazard: a zero row.  max(|x|, 1e-12) keeps the inverse finite; the sign marks the clamp.
      out = norm > 1e-12f ? 1.0f / norm : -(1.0f / 1e-12f);
    }
    (is_a ? p.norm_a : p.norm_b)[r] = out;
  }
}

// Statistics of K logits of the staged tile: S[k * step_s], flags F[k * step_f], k < K (two
// passes: the max, then the exp-sum against it; masked entries never enter either).
template <int K>
__device__ inline Stats tile_part_stats(const float* S, int step_s, const uint8_t* F, int step_f) {
  Stats t = empty_stats();
#pragma unroll 4
  for (int k = 0; k < K; ++k)
    if ((F[k * step_f] & kInZ) && S[k * step_s] > t.max)
      t.max = S[k * step_s];
#pragma unroll 4
  for (int k = 0; k < K; ++k) {
    const uint8_t f = F[k * step_f];
    const float s = S[k * step_s];
    if (f & kInZ) {
      t.sum += expf(s - t.max);
      ++t.nz;
    }
    if (f & kPos) {
      t.pos += s;
      ++t.npos;
    }
  }
  return t;
}

// Merges the partials of 4 adjacent lanes (lane masks 1, 2: a fixed order, so deterministic); lane
// 4q ends with the merge of lanes 4q .. 4q + 3.  Every lane of the warp must call it.
__device__ inline Stats quad_merge(Stats t) {
#pragma unroll
  for (int off = 1; off < 4; off *= 2) {
    Stats o;
    o.max = __shfl_xor_sync(0xffffffffu, t.max, off);
    o.sum = __shfl_xor_sync(0xffffffffu, t.sum, off);
    o.pos = __shfl_xor_sync(0xffffffffu, t.pos, off);
    o.npos = __shfl_xor_sync(0xffffffffu, t.npos, off);
    o.nz = __shfl_xor_sync(0xffffffffu, t.nz, off);
    merge_stats(t, o);
  }
  return t;
}

// Main forward kernel.  Grid: G blocks (G = number of row tiles for ROWS; bounded by the device
// for SYMMETRIC); block g owns row tiles g, g + G, ...
// __launch_bounds__(256, 1): without the minimum, ptxas (CUDA 13.0) capped the registers at
// 80-128 and spilled; with it 114-163 registers, no spill (ptxas -v, sm_80 / sm_90).
template <class Tr>
__global__ void __launch_bounds__(Tr::kThreads, 1)
    forward_main_kernel(__grid_constant__ const ForwardParams fp) {
  using T = typename Tr::T;
  constexpr int BM = Tr::kBlockM, BN = Tr::kBlockN;
  constexpr int SN = Tr::kStageLd; // padded row of the logit tile
  const ProblemParams& p = fp.pr;
  char* smem = dynamic_shared_memory<char>();
  void* ops = smem; // operand tiles of the logit GEMM
  float* S = reinterpret_cast<float*>(smem + Tr::kOperandBytes);
  uint8_t* F = reinterpret_cast<uint8_t*>(S + BM * SN);

  const int tid = threadIdx.x;
  const int ty = tid / Tr::kThreadsN;
  const int tx = tid % Tr::kThreadsN;
  // The statistics' thread grid: kQuad adjacent lanes per tile row (and per tile column).
  constexpr int kQuad = Tr::kThreads / BM;
  static_assert(kQuad == 4 && BM == BN, "4 lanes per tile row and per tile column");
  const int qr = tid / kQuad, qp = tid % kQuad;
  const float scale = *p.logit_scale;
  const bool bad_scale = !is_finite(scale);
  const T* a = static_cast<const T*>(p.a);
  const T* b = static_cast<const T*>(p.b);
  const int64_t row_tiles = (p.n + BM - 1) / BM;
  const int64_t col_tiles = (p.m + BN - 1) / BN;

  for (int64_t rt = blockIdx.x; rt < row_tiles; rt += gridDim.x) {
    const bool first_row_tile = rt == int64_t(blockIdx.x);
    const int64_t row0 = rt * BM;
    Stats rs = empty_stats(); // meaningful in the threads qp == 0 (row row0 + qr)
    for (int64_t ct = 0; ct < col_tiles; ++ct) {
      const int64_t col0 = ct * BN;
      // S[r][c] = a_r . b_c; the epilogue turns the dots into logits in place.
      tile_logit_stage<Tr>(ops, S, a, p.lda, p.n, b, p.ldb, p.m, p.d, row0, col0, tid);
// Epilogue: logits and pair flags into shared memory (each thread its own micro-tile elements).
#pragma unroll
      for (int i = 0; i < Tr::kThreadM; ++i) {
        const int r = ty + i * Tr::kThreadsM;
        const int64_t gi = row0 + r;
        const float nx = (gi < p.n && p.similarity != Similarity::dot) ? p.norm_a[gi] : 0.0f;
#pragma unroll
        for (int j = 0; j < Tr::kThreadN; ++j) {
          const int c = tx + j * Tr::kThreadsN;
          const int64_t gj = col0 + c;
          uint8_t f = 0;
          float s = 0.0f;
          if (gi < p.n && gj < p.m) {
            const float ny = p.similarity != Similarity::dot ? p.norm_b[gj] : 0.0f;
            s = scale * similarity_from_dot(p, S[r * SN + c], nx, ny);
            f = pair_flags(p, gi, gj);
          }
          S[r * SN + c] = s;
          F[r * BN + c] = f;
        }
      }
      __syncthreads();
      // Tile statistics with every thread: kQuad threads per tile row, each over BN / kQuad
      // columns, their partials merged by a fixed butterfly over adjacent lanes (deterministic);
      // then the same per tile column (SYMMETRIC).
      {
        const Stats t = quad_merge(tile_part_stats<BN / kQuad>(S + qr * SN + qp * (BN / kQuad), 1,
                                                               F + qr * BN + qp * (BN / kQuad), 1));
        if (qp == 0 && row0 + qr < p.n)
          merge_stats(rs, t);
      }
      if (p.symmetric) {
        const int64_t gj = col0 + qr;
        const Stats t = quad_merge(tile_part_stats<BM / kQuad>(
            S + qp * (BM / kQuad) * SN + qr, SN, F + qp * (BM / kQuad) * BN + qr, BN));
        if (qp == 0 && gj < p.m) {
          Stats* slot = fp.col_partial + int64_t(blockIdx.x) * p.m + gj;
          Stats cur = first_row_tile ? empty_stats() : *slot;
          merge_stats(cur, t);
          *slot = cur;
        }
      }
      // The next tile's first write to S/F follows tile_dot's barriers.
    }
    if (qp == 0 && row0 + qr < p.n) {
      const int64_t gi = row0 + qr;
      const bool bad_target = p.positives == Positives::targets && p.targets[gi] >= p.m;
      float lse;
      int32_t valid;
      const float loss = loss_from_stats(rs, p.negatives_only, bad_target, bad_scale, &lse, &valid);
      fp.row_loss[gi] = loss;
      fp.row_valid[gi] = valid;
      if (fp.row_lse)
        fp.row_lse[gi] = lse;
    }
  }
}

// SYMMETRIC: merges the G partials of each column in block order; one thread per column.
template <int THREADS>
__global__ void __launch_bounds__(THREADS)
    column_merge_kernel(__grid_constant__ const ForwardParams fp) {
  const ProblemParams& p = fp.pr;
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= p.m)
    return;
  Stats s = empty_stats();
  for (int g = 0; g < fp.grid_rows; ++g)
    merge_stats(s, fp.col_partial[int64_t(g) * p.m + j]);
  float lse;
  int32_t valid;
  const float loss =
      loss_from_stats(s, p.negatives_only, false, !is_finite(*p.logit_scale), &lse, &valid);
  fp.col_loss[j] = loss;
  fp.col_valid[j] = valid;
  if (fp.col_lse)
    fp.col_lse[j] = lse;
}

// MEAN / SUM: one block, fixed-order sums of the per-row (and per-column) losses.
//   ROWS: MEAN = sum / count (0 when no row is valid), SUM = sum;
//   SYMMETRIC: MEAN = (mean_rows + mean_cols) / 2, SUM = (sum_rows + sum_cols) / 2.
template <int THREADS>
__global__ void __launch_bounds__(THREADS)
    loss_reduce_kernel(__grid_constant__ const ForwardParams fp) {
  const ProblemParams& p = fp.pr;
  float* buf = dynamic_shared_memory<float>(); // THREADS x 8 bytes
  const int tid = threadIdx.x;
  float total = 0.0f;
  for (int side = 0; side < (p.symmetric ? 2 : 1); ++side) {
    const int64_t count = side == 0 ? p.n : p.m;
    const float* l = side == 0 ? fp.row_loss : fp.col_loss;
    const int32_t* v = side == 0 ? fp.row_valid : fp.col_valid;
    float sum = 0.0f;
    int64_t cnt = 0;
    for (int64_t i = tid; i < count; i += THREADS) {
      sum += l[i];
      cnt += v[i];
    }
    sum = block_sum<THREADS>(sum, buf, tid);
    cnt = block_sum<THREADS>(cnt, reinterpret_cast<int64_t*>(buf), tid);
    if (p.reduction == Reduction::mean)
      total += cnt > 0 ? sum / float(cnt) : 0.0f;
    else
      total += sum;
  }
  if (tid == 0)
    fp.loss[0] = p.symmetric ? 0.5f * total : total;
}

} // namespace kernels
} // namespace flashnce
