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
// shared memory).  The depth d of the output is covered in passes of bp.grad_pass_cols columns
// (an f32 accumulator in shared memory, as wide as the device's shared memory allows: one pass up
// to d = 768 on an H100, see grad_pass_columns); each pass recomputes the logit tiles.  The logit
// tiles' operands are double-buffered with cp.async / ldmatrix as in the forward; with MmaTraits
// the product G x Y runs on tensor cores too (grad_gemm_mma: G as one operand of the input's type).
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

// One step of the tensor-core gradient GEMM's Y stream: step st of a pass covers the kGradRows
// rows (st % kSteps) * kGradRows.. of the column tile (rows col0.. of y) and the kBlockD columns
// dc + (st / kSteps) * kBlockD.. of d, copied row-major into `buf` (cp.async when y's base and
// stride allow, `y_width` from async_copy_width; plain loads otherwise) and committed as one group.
template <class Tr>
__device__ inline void grad_y_load(void* buf, int st, int y_width, const typename Tr::T* y,
                                   int64_t ldy, int64_t rows_y, int64_t d, int64_t col0, int64_t dc,
                                   int tid) {
  using S = std::conditional_t<Tr::kTf32, float, uint16_t>; // shared element (raw bits)
  constexpr int KY = Tr::kGradRows, kSteps = Tr::kBlockN / KY;
  const int sub = st / kSteps, k0 = (st % kSteps) * KY;
  load_operand<KY, Tr::kBlockD, Tr::kGradLd, Tr::kThreads>(static_cast<S*>(buf), y_width, y, ldy,
                                                           rows_y, d, col0 + k0,
                                                           dc + int64_t(sub) * Tr::kBlockD, tid);
  cp_async_commit();
}

// Tensor-core gradient GEMM of one column tile: acc_s[:, sub] += C[BM x BN] * Y[BN x BD] for the
// pass's `subs` sub-chunks, with mma.sync and f32 accumulation.  Y streams in steps of kGradRows
// rows (grad_y_load) through two stages `ybuf[0..1]` (the operand region: the logit GEMM is done),
// double-buffered: step st + 1 is in flight while step st is multiplied.  The caller has issued
// step 0 into ybuf[0] (before computing C, so that copy overlaps the coefficients).  16-bit B
// fragments by ldmatrix.trans, TF32 by 32-bit loads.
// The coefficients G enter the tensor cores as one operand of the input's type, as
// FlashAttention does with dS and as the naive implementation does with its dlogits (DESIGN
// §5: the error of the computation done naively in that dtype):
//   bf16: G rounded to bf16 (8 significant bits); Y (bf16 input) exact;
//   f16 : tile row r scaled by 2^k_r (f16_row_scale of its max |G|, precomputed in row_scale) and
//         rounded to f16 (11 bits; the scale keeps G inside f16's range and its small values
//         normal down to 2^-14 of the row's largest), the row's product scaled back by 2^-k_r;
//   TF32: G and Y rounded to TF32 (10 bits: the rounding allow_tf32 accepts).
// Warps as in the logit GEMM: 16 x 32 slabs (4 n8 fragments); the A pairs of C are 64-bit loads
// from rows kStageLd apart (conflict-free, loss_traits.cuh), the fragments' sums 64-bit
// read-modify-writes of accumulator rows acc_ld = pass columns + kAccPad apart.
template <class Tr>
__device__ inline void grad_gemm_mma(float* acc_s, int acc_ld, int subs, const float* C,
                                     const float* row_scale, void* ybuf0, void* ybuf1, int y_width,
                                     const typename Tr::T* y, int64_t ldy, int64_t rows_y,
                                     int64_t d, int64_t col0, int64_t dc, int tid) {
  using T = typename Tr::T;
  using S = std::conditional_t<Tr::kTf32, float, uint16_t>; // shared element (raw bits)
  constexpr int BM = Tr::kBlockM, BN = Tr::kBlockN, BD = Tr::kBlockD;
  constexpr int SN = Tr::kStageLd, KY = Tr::kGradRows, LDY = Tr::kGradLd, kSteps = BN / KY;
  static_assert(BM == 64 && BD == 64 && Tr::kThreads == 256, "8 warps of 16 x 32");
  static_assert(SN % 2 == 0 && Tr::kAccPad % 2 == 0, "64-bit pair accesses stay aligned");
  const int warp = tid / 32, lane = tid % 32;
  const int g = lane >> 2, t = lane & 3;
  const int wm = (warp % 4) * 16, wn = (warp / 4) * 32;
  float c[4][4];
  float s0 = 1.0f, s1 = 1.0f; // the scales of the fragment rows wm + g and wm + g + 8
  const int steps = subs * kSteps;
#pragma unroll 1
  for (int st = 0; st < steps; ++st) {
    cp_async_wait<0>(); // this thread's copies of step st have landed ...
    __syncthreads();    // ... and everybody's; C and row_scale are written; step st - 1's stage
                        // is no longer read
    if (st + 1 < steps) // prefetch step st + 1 into the other stage
      grad_y_load<Tr>((st & 1) ? ybuf0 : ybuf1, st + 1, y_width, y, ldy, rows_y, d, col0, dc, tid);
    const S* const Ys = static_cast<const S*>((st & 1) ? ybuf1 : ybuf0);
    const int sub = st / kSteps, k0 = (st % kSteps) * KY;
    if (k0 == 0) {
#pragma unroll
      for (int nt = 0; nt < 4; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          c[nt][e] = 0.0f;
      if constexpr (Tr::kGradRowScale) {
        s0 = row_scale[wm + g];
        s1 = row_scale[wm + g + 8];
      }
    }
    if constexpr (Tr::kTf32) {
#pragma unroll
      for (int kk = 0; kk < KY; kk += 8) {
        // m16n8k8 A: a0 (row g, k t), a1 (g + 8, t), a2 (g, t + 4), a3 (g + 8, t + 4).
        const float* r0 = C + (wm + g) * SN + k0 + kk + t;
        const float* r1 = C + (wm + g + 8) * SN + k0 + kk + t;
        const uint32_t a[4] = {float_to_tf32(r0[0]), float_to_tf32(r1[0]), float_to_tf32(r0[4]),
                               float_to_tf32(r1[4])};
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) {
          // B (k x n): b0 (k t, n g), b1 (k t + 4, n g); Ys is [k][n].
          const float* bcol = Ys + (kk + t) * LDY + wn + nt * 8 + g;
          const uint32_t b[2] = {float_to_tf32(bcol[0]), float_to_tf32(bcol[4 * LDY])};
          mma_m16n8k8_tf32(c[nt], a, b, c[nt]);
        }
      }
    } else {
      const int q = lane >> 3, r8 = lane & 7; // ldmatrix: lane l serves row l % 8 of matrix l / 8
#pragma unroll
      for (int kk = 0; kk < KY; kk += 16) {
        // m16n8k16 A pairs: a0 (row g, k 2t..2t+1), a1 (g + 8, ..), a2 (g, 2t + 8..), a3.
        const float2 p00 = load_pair(C + (wm + g) * SN + k0 + kk + 2 * t);
        const float2 p10 = load_pair(C + (wm + g + 8) * SN + k0 + kk + 2 * t);
        const float2 p01 = load_pair(C + (wm + g) * SN + k0 + kk + 2 * t + 8);
        const float2 p11 = load_pair(C + (wm + g + 8) * SN + k0 + kk + 2 * t + 8);
        const uint32_t a[4] = {pack2<T>(p00.x * s0, p00.y * s0), pack2<T>(p10.x * s1, p10.y * s1),
                               pack2<T>(p01.x * s0, p01.y * s0), pack2<T>(p11.x * s1, p11.y * s1)};
#pragma unroll
        for (int np = 0; np < 2; ++np) {
          // B of n8 tiles 2np and 2np + 1 from Ys [k][n] by ldmatrix.trans: matrices (k 0-7,
          // tile 2np), (k 8-15, 2np), (k 0-7, 2np + 1), (k 8-15, 2np + 1); the transpose hands
          // lane (g, t) the pair (k 2t, 2t + 1; n g), the m16n8k16 B fragment.
          uint32_t bb[4];
          ldmatrix_x4_trans(bb, Ys + (kk + (q & 1) * 8 + r8) * LDY + wn + (2 * np + (q >> 1)) * 8);
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
    if (k0 + KY == BN) {
      // Undo the rows' scales (exact: powers of two) and add the fragment-owned accumulator
      // pairs (the epilogue reads them after a barrier).
      const float i0 = Tr::kGradRowScale ? inverse_pow2(s0) : 1.0f;
      const float i1 = Tr::kGradRowScale ? inverse_pow2(s1) : 1.0f;
#pragma unroll
      for (int nt = 0; nt < 4; ++nt) {
        const int col = sub * BD + wn + nt * 8 + 2 * t;
        float* const q0 = acc_s + (wm + g) * acc_ld + col;
        float* const q1 = acc_s + (wm + g + 8) * acc_ld + col;
        float2 v0 = load_pair(q0), v1 = load_pair(q1);
        v0.x += c[nt][0] * i0;
        v0.y += c[nt][1] * i0;
        v1.x += c[nt][2] * i1;
        v1.y += c[nt][3] * i1;
        store_pair(q0, v0);
        store_pair(q1, v1);
      }
    }
  }
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
  float* Ys = reinterpret_cast<float*>(smem); // ... the Y chunk [BK][BD] of the FFMA gradient GEMM
  // ... or the two Y stages of the tensor-core gradient GEMM.
  void* ybuf0 = smem;
  void* ybuf1 = smem + Tr::kGradYBytes;
  float* C = reinterpret_cast<float*>(smem + Tr::kOperandBytes); // coefficient tile [BM][SN]
  GradStats* r_row = reinterpret_cast<GradStats*>(C + BM * SN);  // row stats of tile row index
  GradStats* r_col = r_row + BM;                                 // column stats of it
  GradStats* c_row = r_col + BM;                                 // row stats of tile column
  GradStats* c_col = c_row + BN;                                 // column stats of it
  float* norm_r = reinterpret_cast<float*>(c_col + BN);
  float* norm_c = norm_r + BM;
  float* row_sum = norm_c + BN;    // [BM]
  float* row_dot = row_sum + BM;   // [BM]
  float* row_scale = row_dot + BM; // [BM]: per-row coefficient scales (kGradRowScale)
  float* acc_s = row_scale + BM;   // [BM][acc_ld]: the f32 gradient accumulator of this pass

  const int tid = threadIdx.x;
  // Thread (ty, tx) owns tile rows ty + i kThreadsM and columns tx + j kThreadsN.  A warp's two
  // half-warps take rows 2 apart (ty = 0, 2 | 1, 3 | 4, 6 | ..), not adjacent ones: with the
  // stage's and the accumulator's rows 8 words past a multiple of 32, adjacent rows would share
  // 8 banks, rows 2 apart share none.
  const int ty = [&] {
    const int r = tid / Tr::kThreadsN;
    return (r & ~3) | ((r & 1) << 1) | ((r >> 1) & 1);
  }();
  static_assert(Tr::kThreads / Tr::kThreadsN % 4 == 0 && 32 / Tr::kThreadsN == 2,
                "half-warp rows permuted within groups of 4");
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
  const int y_width = async_copy_width(y, ldy); // the gradient GEMM's Y tile copies

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
  const int acc_ld = bda + Tr::kAccPad; // (padded rows: loss_traits.cuh)
  const int64_t chunks = out != nullptr ? (p.d + bda - 1) / bda : 1;
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const int64_t dc = ch * bda;
    const int subs = int((p.d - dc < bda ? p.d - dc + BD - 1 : bda) / BD); // BD-wide sub-chunks
    const bool first = ch == 0;
// Zeroed by the micro-tile owners, who read them in the epilogue (program order); the tensor-core
// GEMM's fragment owners add to them only after the first logit tile's barriers.
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
      // The operand region is free now: the tensor-core gradient GEMM's first Y step starts
      // copying while the coefficients are computed.
      if constexpr (Tr::kMmaGrad)
        if (out != nullptr)
          grad_y_load<Tr>(ybuf0, 0, y_width, y, ldy, Cn, p.d, col0, dc, tid);
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
        float amax = 0.0f; // the row's largest |coefficient| in this tile (kGradRowScale)
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
            // the 1e-12 clamp is active).  Hazard (f16 row scale): a clamped f16 column is exactly
            // the zero vector (a nonzero f16 vector has norm >= 2^-24), so its product is 0 for
            // any finite coefficient; keeping g there (NaN stays NaN) instead of g * 1e12 stops it
            // from setting the row's scale and flushing every other coefficient of the row.
            if (p.similarity == Similarity::cosine && (!Tr::kGradRowScale || norm_c[c] > 0.0f))
              coef = g * fabsf(norm_c[c]);
          }
          C[r * SN + c] = coef;
          amax = fmaxf(amax, fabsf(coef));
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
        if constexpr (Tr::kGradRowScale) {
#pragma unroll
          for (int off = Tr::kThreadsN / 2; off > 0; off /= 2)
            amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
          if (tx == 0)
            row_scale[r] = f16_row_scale(amax);
        }
      }
      if (out == nullptr)
        continue; // grad_logit_scale only: no gradient GEMM
      // acc_s[BM x bda] += C[BM x BN] * Y[col0 .. col0 + BN, dc .. dc + bda] in BD-wide sub-chunks.
      if constexpr (Tr::kMmaGrad) {
        grad_gemm_mma<Tr>(acc_s, acc_ld, subs, C, row_scale, ybuf0, ybuf1, y_width, y, ldy, Cn, p.d,
                          col0, dc, tid);
      } else {
#pragma unroll 1
        for (int sub = 0; sub < subs; ++sub)
          grad_gemm_ffma<Tr>(acc_s, acc_ld, C, Ys, y, ldy, Cn, p.d, col0, dc + int64_t(sub) * BD,
                             sub, tid);
      }
    }

    if (first && want_scale) {
      __syncthreads(); // the last tile's gradient GEMM no longer reads C, which block_sum reuses
      const float total = block_sum<Tr::kThreads>(gs, C, tid);
      if (tid == 0)
        bp.scale_partial[blockIdx.x] = total;
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
