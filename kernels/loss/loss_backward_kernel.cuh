// Backward kernels of the fused contrastive loss (FlashAttention-2's backward scheme: recompute
// each logit tile from the saved LSEs, no n x m buffer, no float atomics).
//
// Math (DESIGN.md §1): with P_ij = exp(s_ij - LSE_i) on Z(i) and 0 elsewhere,
//   G_ij = dL/ds_ij = w_i (P_ij - [j in P(i)] / |P(i)|)  +  v_j (Pc_ij - [i in P^c(j)] / |P^c(j)|)
// (the second term only for SYMMETRIC, with the column LSE), w_i / v_j the reduction's weights
// (0 for an invalid row / column, NaN for a TARGETS row with target >= m or a non-finite scale).
//   grad_scale = sum_ij G_ij sim_ij
//   DOT        : grad_a_i = scale * sum_j G_ij b_j
//   COSINE     : g = scale * sum_j G_ij b^_j;  grad_a_i = (g - (g . a^_i) a^_i) / max(|a_i|, 1e-12)
//                where g . a^_i = scale * sum_j G_ij sim_ij (no second pass over d); without the
//                projection when the clamp is active
//   NEG_SQ_DIST: grad_a_i = 2 scale (sum_j G_ij b_j - (sum_j G_ij) a_i)
// grad_b is the same with the roles of rows and columns exchanged: the gradient kernel runs a
// second time with `transposed` set (rows = b, columns = a).  Self mode: s_ij = s_ji for all three
// similarities, so grad_a_i = sum_j (G_ij + G_ji) ds_ij/da_i: the row kernel alone, using row j's
// statistics for G_ji.
// What is never materialised: s, P or G (one kBlockM x kBlockN tile of coefficients lives in
// shared memory).  Here: the pre-passes every configuration shares (counts, weights), the f16
// coefficient scale, the grad_logit_scale reduction, and the FFMA configuration's gradient kernel
// (grad_kernel: the depth d of the output in passes of bp.grad_pass_cols columns, an f32
// accumulator in shared memory as wide as the device's shared memory allows, each pass
// recomputing the logit tiles).  The tensor cores' gradient kernel is backward_mma_kernel.cuh.
#pragma once

#include <cstdint>
#include <type_traits>

#include "kernels/common/cp_async.cuh"
#include "kernels/common/mma.cuh"
#include "kernels/common/numeric.cuh"
#include "kernels/common/shared_memory.cuh"
#include "kernels/loss/loss_common.cuh"
#include "kernels/loss/loss_forward_kernel.cuh"
#include "kernels/loss/loss_tile.cuh"
#include "kernels/loss_params.h"

namespace flashnce {
namespace kernels {

// |P|, |Z| per row (blocks 0 .. row_blocks - 1, a row per thread) and per column (the blocks
// after them, SYMMETRIC).  The O(n m) scans (LABELS; TARGETS columns) stream the scanned array
// through shared memory in THREADS-element tiles that every thread of the block compares its key
// with: one global read per element per block, not per thread.  A block is all rows or all
// columns, so every thread takes the same barriers (out-of-range threads scan a dummy key).
template <int THREADS>
__global__ void __launch_bounds__(THREADS)
    counts_kernel(__grid_constant__ const BackwardParams bp) {
  const ProblemParams& p = bp.pr;
  int64_t* tile = dynamic_shared_memory<int64_t>(); // [THREADS]
  const int tid = threadIdx.x;
  const int64_t row_blocks = (p.n + THREADS - 1) / THREADS;
  const bool col = int64_t(blockIdx.x) >= row_blocks; // uniform in the block
  const int64_t idx = (col ? blockIdx.x - row_blocks : blockIdx.x) * int64_t(THREADS) + tid;
  const bool in = idx < (col ? p.m : p.n);
  CountScan scan = col ? col_count_scan(p, in ? idx : 0) : row_count_scan(p, in ? idx : 0);
  int64_t matches = 0;
  if (scan.values != nullptr) { // uniform: depends on the mode and the block's side only
    for (int64_t j0 = 0; j0 < scan.length; j0 += THREADS) {
      __syncthreads(); // the previous tile is no longer read
      if (j0 + tid < scan.length)
        tile[tid] = scan.values[j0 + tid];
      __syncthreads();
      const int64_t left = scan.length - j0;
      const int cnt = left < THREADS ? int(left) : THREADS;
      for (int k = 0; k < cnt; ++k)
        matches += tile[k] == scan.key ? 1 : 0;
    }
  }
  if (!in)
    return;
  if (col)
    col_counts(p, idx, matches, &bp.col_npos[idx], &bp.col_nz[idx]);
  else
    row_counts(p, idx, matches, &bp.row_npos[idx], &bp.row_nz[idx]);
}

// One block: counts the valid rows (and columns) in a fixed order, then writes each row's
// GradStats {lse, weight, 1/|P|}.
template <int THREADS>
__global__ void __launch_bounds__(THREADS)
    grad_weights_kernel(__grid_constant__ const BackwardParams bp) {
  const ProblemParams& p = bp.pr;
  int64_t* buf = dynamic_shared_memory<int64_t>(); // THREADS
  const int tid = threadIdx.x;
  const bool bad_scale = !is_finite(*p.logit_scale);
  const float half = p.symmetric ? 0.5f : 1.0f;
  for (int side = 0; side < (p.symmetric ? 2 : 1); ++side) {
    const int64_t count = side == 0 ? p.n : p.m;
    const int32_t* npos = side == 0 ? bp.row_npos : bp.col_npos;
    const int32_t* nz = side == 0 ? bp.row_nz : bp.col_nz;
    const float* lse = side == 0 ? bp.row_lse : bp.col_lse;
    GradStats* out = side == 0 ? bp.row_stats : bp.col_stats;
    auto bad_target = [&](int64_t i) {
      return side == 0 && p.positives == Positives::targets && p.targets[i] >= p.m;
    };
    int64_t valid = 0;
    for (int64_t i = tid; i < count; i += THREADS)
      valid += ((npos[i] > 0 && nz[i] > 0) || bad_target(i)) ? 1 : 0;
    valid = block_sum<THREADS>(valid, buf, tid);
    float base = 0.0f;
    if (p.reduction == Reduction::mean)
      base = valid > 0 ? half * bp.grad_loss[0] / float(valid) : 0.0f;
    else if (p.reduction == Reduction::sum)
      base = half * bp.grad_loss[0];
    for (int64_t i = tid; i < count; i += THREADS) {
      const bool ok = npos[i] > 0 && nz[i] > 0;
      float w = p.reduction == Reduction::none ? bp.grad_loss[side * p.n + i] : base;
      if (!ok)
        w = 0.0f;
      // Hazard: a NaN loss (target >= m, non-finite scale) must give a NaN gradient; a NaN weight
      // does it (w = 0 would silently drop the row).
      if (bad_target(i) || bad_scale)
        w = quiet_nan();
      out[i] = GradStats{lse[i], w, npos[i] > 0 ? 1.0f / float(npos[i]) : 0.0f};
    }
  }
}

// One side's contribution to G: w (P - [pos] / |P|).  Hazard: an invalid row may have LSE = -inf;
// its weight is 0 and nothing is evaluated (never exp(s - (-inf)) * 0).
__device__ inline float g_term(const GradStats& st, float s, uint8_t f) {
  if (st.w == 0.0f)
    return 0.0f;
  float g = (f & kInZ) ? expf(s - st.lse) : 0.0f;
  if (f & kPos)
    g -= st.inv_npos;
  return st.w * g;
}

// The power of two 2^k that brings a tile row's largest |coefficient| `amax` into [2^14, 2^15)
// (f16 tensor-core gradient: k = 141 - e for amax's biased exponent e, so amax * 2^k < 2^15 and the
// hi half never overflows f16's 65504).  Hazards: amax = 0 or f32-subnormal would need k > 126,
// whose inverse 2^-k is not a normal f32: k is capped at 126 (such rows are ~0 anyway); a NaN
// coefficient never reaches amax (fmaxf drops NaN) and stays NaN through the rounding.
__device__ inline float f16_row_scale(float amax) {
  int k = 141 - int(float_bits(amax) >> 23); // amax >= 0: the sign bit is clear
  k = k > 126 ? 126 : k;                     // k >= 141 - 255 = -114 (inf / NaN)
  return bits_float(uint32_t(k + 127) << 23);
}
// 1 / s for s = 2^k, exact: the biased exponent 127 + k becomes 127 - k.
__device__ inline float inverse_pow2(float s) {
  return bits_float((254u - (float_bits(s) >> 23)) << 23);
}

// FFMA gradient GEMM: acc_s[:, sub] += C[BM x BN] * Y[BN x BD], BK rows of Y at a time through
// shared memory, a kThreadM x kThreadN register micro-tile per thread.
template <class Tr>
__device__ inline void grad_gemm_ffma(float* acc_s, int acc_ld, const float* C, float* Ys,
                                      const typename Tr::T* y, int64_t ldy, int64_t rows_y,
                                      int64_t d, int64_t col0, int64_t dsub, int sub, int tid) {
  constexpr int BN = Tr::kBlockN, BK = Tr::kBlockK, BD = Tr::kBlockD;
  constexpr int TM = Tr::kThreadM, TN = Tr::kThreadN, SN = Tr::kStageLd;
  const int ty = tid / Tr::kThreadsN, tx = tid % Tr::kThreadsN;
  float acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j)
      acc[i][j] = 0.0f;
#pragma unroll 1
  for (int kk0 = 0; kk0 < BN; kk0 += BK) {
    __syncthreads(); // C written / previous Y chunk consumed
#pragma unroll
    for (int q = 0; q < (BK * BD) / Tr::kThreads; ++q) {
      const int idx = tid + q * Tr::kThreads;
      const int kk = idx / BD;
      const int k = idx % BD;
      const int64_t gy = col0 + kk0 + kk;
      const int64_t gk = dsub + k;
      Ys[kk * BD + k] = (gy < rows_y && gk < d) ? to_float(y[gy * ldy + gk]) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      float af[TM], bf[TN];
#pragma unroll
      for (int i = 0; i < TM; ++i)
        af[i] = C[(ty + i * Tr::kThreadsM) * SN + kk0 + kk];
#pragma unroll
      for (int j = 0; j < TN; ++j)
        bf[j] = Ys[kk * BD + tx + j * Tr::kThreadsN];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j)
          acc[i][j] += af[i] * bf[j];
    }
  }
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j)
      acc_s[(ty + i * Tr::kThreadsM) * acc_ld + sub * BD + tx + j * Tr::kThreadsN] += acc[i][j];
}

// Gradient kernel: one block per row tile of the launch's rows (a, or b when transposed).
// __launch_bounds__(256, 1): ptxas may use up to 255 registers.  Without the minimum it capped the
// FFMA configurations at 128 registers and spilled (ptxas -v, CUDA 13.0, sm_80 / sm_90).
template <class Tr>
__global__ void __launch_bounds__(Tr::kThreads, 1)
    grad_kernel(__grid_constant__ const BackwardParams bp) {
  static_assert(!Tr::kMma, "the FFMA configuration; tensor cores: grad_mma_kernel");
  using T = typename Tr::T;
  constexpr int BM = Tr::kBlockM, BN = Tr::kBlockN, BD = Tr::kBlockD;
  constexpr int TM = Tr::kThreadM, TN = Tr::kThreadN;
  constexpr int SN = Tr::kStageLd;
  const ProblemParams& p = bp.pr;
  const bool tr = bp.transposed != 0;
  const bool sym = p.symmetric != 0;
  const bool self = p.self_mode != 0;

  char* smem = dynamic_shared_memory<char>();
  void* ops = smem;                           // operands of the logit GEMM, then ...
  float* Ys = reinterpret_cast<float*>(smem); // ... the Y chunk [BK][BD] of the gradient GEMM
  float* C = reinterpret_cast<float*>(smem + Tr::kOperandBytes); // coefficient tile [BM][SN]
  GradStats* r_row = reinterpret_cast<GradStats*>(C + BM * SN);  // row stats of tile row index
  GradStats* r_col = r_row + BM;                                 // column stats of it
  GradStats* c_row = r_col + BM;                                 // row stats of tile column
  GradStats* c_col = c_row + BN;                                 // column stats of it
  float* norm_r = reinterpret_cast<float*>(c_col + BN);
  float* norm_c = norm_r + BM;
  float* row_sum = norm_c + BN;  // [BM]
  float* row_dot = row_sum + BM; // [BM]
  float* acc_s = row_dot + BM;   // [BM][bda]: the f32 gradient accumulator of this pass

  const int tid = threadIdx.x;
  const int ty = tid / Tr::kThreadsN;
  const int tx = tid % Tr::kThreadsN;
  const float scale = *p.logit_scale;
  const int64_t R = tr ? p.m : p.n; // rows of this launch
  const int64_t Cn = tr ? p.n : p.m;
  const T* x = static_cast<const T*>(tr ? p.b : p.a);
  const T* y = static_cast<const T*>(tr ? p.a : p.b);
  const int64_t ldx = tr ? p.ldb : p.lda;
  const int64_t ldy = tr ? p.lda : p.ldb;
  const float* nx = tr ? p.norm_b : p.norm_a;
  const float* ny = tr ? p.norm_a : p.norm_b;
  T* out = static_cast<T*>(tr ? bp.grad_b : bp.grad_a);
  const bool want_scale = !tr && bp.grad_logit_scale != nullptr;
  const bool has_norms = p.similarity != Similarity::dot;

  const int64_t row0 = int64_t(blockIdx.x) * BM;
  const int64_t col_tiles = (Cn + BN - 1) / BN;
  const GradStats zero{0.0f, 0.0f, 0.0f};

  // Tile-row side data, loaded once.  Original indices: i = row (not transposed) or column.
  if (tid < BM) {
    const int64_t g = row0 + tid;
    r_row[tid] = (g < R && g < p.n) ? bp.row_stats[g] : zero;
    r_col[tid] = (sym && g < R && g < p.m) ? bp.col_stats[g] : zero;
    norm_r[tid] = (has_norms && g < R) ? nx[g] : 0.0f;
    row_sum[tid] = 0.0f; // accumulated by the first pass
    row_dot[tid] = 0.0f;
  }

  // Each pass covers bda columns of d (a multiple of BD) and recomputes the logit tiles.
  const int bda = bp.grad_pass_cols;
  const int acc_ld = bda;
  const int64_t chunks = out != nullptr ? (p.d + bda - 1) / bda : 1;
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const int64_t dc = ch * bda;
    const int subs = int((p.d - dc < bda ? p.d - dc + BD - 1 : bda) / BD); // BD-wide sub-chunks
    const bool first = ch == 0;
// Zeroed by the micro-tile owners, who add to them in the gradient GEMM and read them in the
// epilogue (program order).
#pragma unroll 1
    for (int sub = 0; sub < (out != nullptr ? subs : 0); ++sub)
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j)
          acc_s[(ty + i * Tr::kThreadsM) * acc_ld + sub * BD + tx + j * Tr::kThreadsN] = 0.0f;
    float gs = 0.0f; // this thread's share of grad_logit_scale

    for (int64_t ct = 0; ct < col_tiles; ++ct) {
      const int64_t col0 = ct * BN;
      // C[r][c] = x_r . y_c; the coefficients below replace the dots in place.
      tile_logit_stage<Tr>(ops, C, x, ldx, R, y, ldy, Cn, p.d, row0, col0, tid);
      // tile_logit_stage ends after a barrier that follows the previous tile's last shared-memory
      // read: the column-side data can be replaced now.
      if (tid < BN) {
        const int64_t g = col0 + tid;
        c_row[tid] = (g < Cn && g < p.n) ? bp.row_stats[g] : zero;
        c_col[tid] = (sym && g < Cn && g < p.m) ? bp.col_stats[g] : zero;
        norm_c[tid] = (has_norms && g < Cn) ? ny[g] : 0.0f;
      }
      __syncthreads();
      // Thread (ty, tx) owns rows ty + i kThreadsM and columns tx + j kThreadsN; a row's kThreadsN
      // owners are the 16 lanes of one half-warp, so row reductions are butterflies over lane masks
      // 8..1 (fixed order: deterministic).  Rows one at a time (unroll 1) to bound registers.
#pragma unroll 1
      for (int i = 0; i < TM; ++i) {
        const int r = ty + i * Tr::kThreadsM;
        const int64_t gr = row0 + r;
        float rsum = 0.0f, rdot = 0.0f; // sum_j G_rj, sum_j G_rj sim_rj over this tile
#pragma unroll
        for (int j = 0; j < TN; ++j) {
          const int c = tx + j * Tr::kThreadsN;
          const int64_t gc = col0 + c;
          float coef = 0.0f;
          if (gr < R && gc < Cn) {
            const float sim = similarity_from_dot(p, C[r * SN + c], norm_r[r], norm_c[c]);
            const float s = scale * sim;
            const int64_t oi = tr ? gc : gr, oj = tr ? gr : gc; // original (i, j)
            const uint8_t f = pair_flags(p, oi, oj);
            const GradStats& si = tr ? c_row[c] : r_row[r];
            float g = g_term(si, s, f);
            if (sym)
              g += g_term(tr ? r_col[r] : c_col[c], s, f);
            if (want_scale && first)
              gs += g * sim;
            if (self) { // G_ji: row j's statistics, column i's
              const uint8_t ft = pair_flags(p, gc, gr);
              g += g_term(c_row[c], s, ft);
              if (sym)
                g += g_term(r_col[r], s, ft);
            }
            rsum += g;
            rdot += g * sim;
            coef = g;
            // COSINE: the column's inverse norm goes into the coefficient (stored negative when
            // the 1e-12 clamp is active).
            if (p.similarity == Similarity::cosine)
              coef = g * fabsf(norm_c[c]);
          }
          C[r * SN + c] = coef;
        }
        if (first) { // row sums over the whole column range: tile by tile, in a fixed order
#pragma unroll
          for (int off = Tr::kThreadsN / 2; off > 0; off /= 2) {
            rsum += __shfl_xor_sync(0xffffffffu, rsum, off);
            rdot += __shfl_xor_sync(0xffffffffu, rdot, off);
          }
          if (tx == 0) {
            row_sum[r] += rsum;
            row_dot[r] += rdot;
          }
        }
      }
      if (out == nullptr)
        continue; // grad_logit_scale only: no gradient GEMM
                  // acc_s[BM x bda] += C[BM x BN] * Y[col0 .. col0 + BN, dc .. dc + bda] in BD-wide
                  // sub-chunks.
#pragma unroll 1
      for (int sub = 0; sub < subs; ++sub)
        grad_gemm_ffma<Tr>(acc_s, acc_ld, C, Ys, y, ldy, Cn, p.d, col0, dc + int64_t(sub) * BD, sub,
                           tid);
    }

    if (first && want_scale) {
      __syncthreads(); // the last tile's gradient GEMM no longer reads C, which block_sum reuses
      const float total = block_sum<Tr::kThreads>(gs, C, tid);
      if (tid == 0)
        bp.scale_partial[blockIdx.x] = total;
    }
    if (out == nullptr)
      break;
    __syncthreads();
// Epilogue: out = alpha_r * acc + beta_r * x_r, written once in the output dtype.
#pragma unroll
    for (int i = 0; i < TM; ++i) {
      const int r = ty + i * Tr::kThreadsM;
      const int64_t gr = row0 + r;
      if (gr >= R)
        continue;
      float alpha = scale, beta = 0.0f;
      if (p.similarity == Similarity::cosine) {
        const float inv = fabsf(norm_r[r]);
        alpha = scale * inv;
        beta =
            norm_r[r] > 0.0f ? -scale * row_dot[r] * inv * inv : 0.0f; // no projection if clamped
      } else if (p.similarity == Similarity::neg_sq_dist) {
        alpha = 2.0f * scale;
        beta = -2.0f * scale * row_sum[r];
      }
#pragma unroll 1
      for (int sub = 0; sub < subs; ++sub)
#pragma unroll
        for (int j = 0; j < TN; ++j) {
          const int64_t gk = dc + int64_t(sub) * BD + tx + j * Tr::kThreadsN;
          if (gk >= p.d)
            continue;
          float v = alpha * acc_s[r * acc_ld + sub * BD + tx + j * Tr::kThreadsN];
          if (beta != 0.0f)
            v += beta * to_float(x[gr * ldx + gk]);
          out[gr * p.d + gk] = from_float<T>(v);
        }
    }
  }
}

// grad_logit_scale: one block sums the row-tile partials in a fixed order.
template <int THREADS>
__global__ void __launch_bounds__(THREADS)
    scale_reduce_kernel(__grid_constant__ const BackwardParams bp, int64_t partials) {
  float* buf = dynamic_shared_memory<float>();
  const int tid = threadIdx.x;
  float s = 0.0f;
  for (int64_t i = tid; i < partials; i += THREADS)
    s += bp.scale_partial[i];
  s = block_sum<THREADS>(s, buf, tid);
  if (tid == 0)
    *bp.grad_logit_scale = s;
}

} // namespace kernels
} // namespace flashnce
