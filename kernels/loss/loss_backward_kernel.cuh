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
// shared memory).  The depth d of the output is covered in kBlockD chunks; each chunk recomputes
// the logit tiles (generic path).  The logit tiles' operands are double-buffered with cp.async /
// ldmatrix as in the forward (MmaTraits::kGradPipelined), except in the bf16 tensor-core gradient
// kernel, which is register-bound and keeps single-stage plain loads.
#pragma once

#include <cstdint>

#include "kernels/common/numeric.cuh"
#include "kernels/common/shared_memory.cuh"
#include "kernels/loss/loss_common.cuh"
#include "kernels/loss/loss_forward_kernel.cuh"
#include "kernels/loss/loss_tile.cuh"
#include "kernels/loss_params.h"

namespace flashnce {
namespace kernels {

// |P|, |Z| per row (threads 0..n-1) and per column (n..n+m-1, SYMMETRIC).
template <int THREADS>
__global__ void __launch_bounds__(THREADS)
    counts_kernel(__grid_constant__ const BackwardParams bp) {
  const ProblemParams& p = bp.pr;
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t < p.n) {
    row_counts(p, t, &bp.row_npos[t], &bp.row_nz[t]);
  } else if (p.symmetric && t < p.n + p.m) {
    col_counts(p, t - p.n, &bp.col_npos[t - p.n], &bp.col_nz[t - p.n]);
  }
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

// Tensor-core gradient GEMM (bf16 only): acc_s[:, sub] += C[BM x BN] * Y[BN x BD] with mma.sync
// m16n8k16.  The coefficients are f32; each is split into bf16 hi + lo (G = hi + lo + O(2^-17 G))
// and both halves are multiplied (bf16 x bf16 products are exact in f32), so the result keeps f32
// accuracy.  Y (bf16 inputs) is exact.  Warps as in the logit GEMM: 16 x 32 slabs.
template <class Tr>
__device__ inline void grad_gemm_mma(float* acc_s, const float* C, uint16_t* Yt,
                                     const typename Tr::T* y, int64_t ldy, int64_t rows_y,
                                     int64_t d, int64_t col0, int64_t dsub, int sub, int tid) {
  constexpr int BM = Tr::kBlockM, BN = Tr::kBlockN, BD = Tr::kBlockD, BDA = Tr::kBlockDAcc;
  constexpr int SN = BN + 1, LD = Tr::kGradLd;
  static_assert(BM == 64 && BD == 64 && BN % 16 == 0, "8 warps of 16 x 32");
  const int warp = tid / 32, lane = tid % 32;
  const int g = lane >> 2, t = lane & 3;
  const int wm = (warp % 4) * 16, wn = (warp / 4) * 32;
  __syncthreads(); // C is written; the previous Yt is consumed
  // Yt[n][k] = y[col0 + k][dsub + n] (k contiguous: the B fragment's pairs), zero outside.
#pragma unroll
  for (int q = 0; q < (BN * BD) / Tr::kThreads; ++q) {
    const int idx = tid + q * Tr::kThreads;
    const int k = idx / BD, n = idx % BD;
    const int64_t gy = col0 + k, gk = dsub + n;
    Yt[n * LD + k] = (gy < rows_y && gk < d) ? y[gy * ldy + gk].bits : uint16_t(0);
  }
  __syncthreads();
  float c[4][4];
#pragma unroll
  for (int nt = 0; nt < 4; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      c[nt][e] = 0.0f;
  auto split = [](float v0, float v1, uint32_t& hi, uint32_t& lo) {
    const bfloat16_t h0 = from_float<bfloat16_t>(v0), h1 = from_float<bfloat16_t>(v1);
    const bfloat16_t l0 = from_float<bfloat16_t>(v0 - to_float(h0));
    const bfloat16_t l1 = from_float<bfloat16_t>(v1 - to_float(h1));
    hi = uint32_t(h0.bits) | (uint32_t(h1.bits) << 16);
    lo = uint32_t(l0.bits) | (uint32_t(l1.bits) << 16);
  };
#pragma unroll
  for (int kk = 0; kk < BN; kk += 16) {
    uint32_t ahi[4], alo[4];
    const float* r0 = C + (wm + g) * SN + kk + 2 * t;
    const float* r1 = C + (wm + g + 8) * SN + kk + 2 * t;
    split(r0[0], r0[1], ahi[0], alo[0]);
    split(r1[0], r1[1], ahi[1], alo[1]);
    split(r0[8], r0[9], ahi[2], alo[2]);
    split(r1[8], r1[9], ahi[3], alo[3]);
#pragma unroll
    for (int nt = 0; nt < 4; ++nt) {
      const uint16_t* brow = Yt + (wn + nt * 8 + g) * LD + kk;
      const uint32_t b[2] = {load_pair(brow + 2 * t), load_pair(brow + 2 * t + 8)};
      mma_m16n8k16_bf16(c[nt], ahi, b, c[nt]);
      mma_m16n8k16_bf16(c[nt], alo, b, c[nt]);
    }
  }
  // Fragment-owned accumulator elements (the epilogue reads them after a barrier).
#pragma unroll
  for (int nt = 0; nt < 4; ++nt) {
    const int col = sub * BD + wn + nt * 8 + 2 * t;
    acc_s[(wm + g) * BDA + col] += c[nt][0];
    acc_s[(wm + g) * BDA + col + 1] += c[nt][1];
    acc_s[(wm + g + 8) * BDA + col] += c[nt][2];
    acc_s[(wm + g + 8) * BDA + col + 1] += c[nt][3];
  }
}

// FFMA gradient GEMM: acc_s[:, sub] += C[BM x BN] * Y[BN x BD], BK rows of Y at a time through
// shared memory, a kThreadM x kThreadN register micro-tile per thread.
template <class Tr>
__device__ inline void grad_gemm_ffma(float* acc_s, const float* C, float* Ys,
                                      const typename Tr::T* y, int64_t ldy, int64_t rows_y,
                                      int64_t d, int64_t col0, int64_t dsub, int sub, int tid) {
  constexpr int BN = Tr::kBlockN, BK = Tr::kBlockK, BD = Tr::kBlockD, BDA = Tr::kBlockDAcc;
  constexpr int TM = Tr::kThreadM, TN = Tr::kThreadN, SN = BN + 1;
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
      acc_s[(ty + i * Tr::kThreadsM) * BDA + sub * BD + tx + j * Tr::kThreadsN] += acc[i][j];
}

// Gradient kernel: one block per row tile of the launch's rows (a, or b when transposed).
template <class Tr>
__global__ void __launch_bounds__(Tr::kThreads)
    grad_kernel(__grid_constant__ const BackwardParams bp) {
  using T = typename Tr::T;
  constexpr int BM = Tr::kBlockM, BN = Tr::kBlockN, BD = Tr::kBlockD;
  constexpr int BDA = Tr::kBlockDAcc; // output columns of d per pass over the column tiles
  constexpr int TM = Tr::kThreadM, TN = Tr::kThreadN;
  constexpr int SN = BN + 1;
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
  float* row_sum = norm_c + BN;      // [BM]
  float* row_dot = row_sum + BM;     // [BM]
  float* red = row_dot + BM;         // [kThreads]
  float* acc_s = red + Tr::kThreads; // [BM][BDA]: the f32 gradient accumulator of this pass
  // After the column loop the operand region is free: the per-row partials live there.
  float* part_sum = reinterpret_cast<float*>(smem); // [BM][threadsN]
  float* part_dot = part_sum + BM * Tr::kThreadsN;  // [BM][threadsN]

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
  }

  // Each pass covers BDA columns of d and recomputes the logit tiles; d <= BDA takes one pass.
  const int64_t chunks = out != nullptr ? (p.d + BDA - 1) / BDA : 1;
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const int64_t dc = ch * BDA;
    const int subs = int((p.d - dc < BDA ? p.d - dc + BD - 1 : BDA) / BD); // BD-wide sub-chunks
    const bool first = ch == 0;
// Each thread owns the same accumulator elements throughout (no barrier needed for them).
#pragma unroll 1
    for (int sub = 0; sub < BDA / BD; ++sub)
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j)
          acc_s[(ty + i * Tr::kThreadsM) * BDA + sub * BD + tx + j * Tr::kThreadsN] = 0.0f;
    float rsum[TM], rdot[TM], gs = 0.0f;
#pragma unroll
    for (int i = 0; i < TM; ++i)
      rsum[i] = rdot[i] = 0.0f;

    for (int64_t ct = 0; ct < col_tiles; ++ct) {
      const int64_t col0 = ct * BN;
      float s_acc[TM][TN];
      tile_logit_dots<Tr, Tr::kGradPipelined>(s_acc, ops, C, x, ldx, R, y, ldy, Cn, p.d, row0, col0,
                                              tid);
      // tile_dot ends after a barrier that follows the previous tile's last shared-memory read:
      // the column-side data can be replaced now.
      if (tid < BN) {
        const int64_t g = col0 + tid;
        c_row[tid] = (g < Cn && g < p.n) ? bp.row_stats[g] : zero;
        c_col[tid] = (sym && g < Cn && g < p.m) ? bp.col_stats[g] : zero;
        norm_c[tid] = (has_norms && g < Cn) ? ny[g] : 0.0f;
      }
      __syncthreads();
#pragma unroll
      for (int i = 0; i < TM; ++i) {
        const int r = ty + i * Tr::kThreadsM;
        const int64_t gr = row0 + r;
#pragma unroll
        for (int j = 0; j < TN; ++j) {
          const int c = tx + j * Tr::kThreadsN;
          const int64_t gc = col0 + c;
          float coef = 0.0f;
          if (gr < R && gc < Cn) {
            const float sim = similarity_from_dot(p, s_acc[i][j], norm_r[r], norm_c[c]);
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
            if (first) {
              rsum[i] += g;
              rdot[i] += g * sim;
            }
            coef = p.similarity == Similarity::cosine ? g * fabsf(norm_c[c]) : g;
          }
          C[r * SN + c] = coef;
        }
      }
      if (out == nullptr)
        continue; // grad_logit_scale only: no gradient GEMM
// acc_s[BM x BDA] += C[BM x BN] * Y[col0 .. col0 + BN, dc .. dc + BDA]: BD-wide
// sub-chunks, each in BK-row steps with a register micro-tile.
#pragma unroll 1
      for (int sub = 0; sub < subs; ++sub) {
        const int64_t dsub = dc + int64_t(sub) * BD;
        if constexpr (Tr::kMmaGrad)
          grad_gemm_mma<Tr>(acc_s, C, static_cast<uint16_t*>(ops), y, ldy, Cn, p.d, col0, dsub, sub,
                            tid);
        else
          grad_gemm_ffma<Tr>(acc_s, C, Ys, y, ldy, Cn, p.d, col0, dsub, sub, tid);
      }
    }

    if (first) {       // per-row sums over the whole column range, in a fixed order
      __syncthreads(); // the operand region (now part_sum / part_dot) is no longer read
#pragma unroll
      for (int i = 0; i < TM; ++i) {
        const int r = ty + i * Tr::kThreadsM;
        part_sum[r * Tr::kThreadsN + tx] = rsum[i];
        part_dot[r * Tr::kThreadsN + tx] = rdot[i];
      }
      __syncthreads();
      if (tid < BM) {
        float s = 0.0f, d = 0.0f;
        for (int t = 0; t < Tr::kThreadsN; ++t) {
          s += part_sum[tid * Tr::kThreadsN + t];
          d += part_dot[tid * Tr::kThreadsN + t];
        }
        row_sum[tid] = s;
        row_dot[tid] = d;
      }
      if (want_scale) {
        const float total = block_sum<Tr::kThreads>(gs, red, tid);
        if (tid == 0)
          bp.scale_partial[blockIdx.x] = total;
      }
      __syncthreads();
    }
    if (out == nullptr)
      break;
    __syncthreads(); // the tensor-core GEMM's accumulator elements are owned by other threads
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
          float v = alpha * acc_s[r * BDA + sub * BD + tx + j * Tr::kThreadsN];
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
