// The tensor-core gradient kernel of the fused contrastive loss with the logits and their
// coefficients in registers (FlashAttention-2's backward scheme: recompute each logit tile from the
// saved LSEs; no n x m buffer, no float atomics).
//
// Math (DESIGN.md §1, as loss_backward_kernel.cuh): with P_ij = exp(s_ij - LSE_i) on Z(i),
//   G_ij = w_i (P_ij - [j in P(i)] / |P(i)|)  +  v_j (Pc_ij - [i in P^c(j)] / |P^c(j)|)   (SYM)
//   out_r = alpha_r sum_c C_rc y_c + beta_r x_r,   C = G (x |y^_c|^-1 for COSINE), per launch
// where a launch's rows x are a (grad_a; self mode adds the G_ji terms) or b (grad_b, the
// transposed launch: its rows are the original columns).  A block owns kBlockM rows and sweeps
// every column tile: the logit tile's dots stay in the mma accumulators (mma_mainloop.cuh), the
// coefficients are computed on them in registers (exp2 with log2(e) folded into the row and column
// factors, masks only in warp slabs that the diagonals or the edges cross), rounded to one 16-bit
// (TF32) operand and stored in a [kBlockM][kBlockN] shared tile, and the gradient GEMM
// out[kBlockM x pass] += C[kBlockM x kBlockN] . Y[kBlockN x pass] reads it by ldmatrix, Y streaming
// through the same stage ring as the logit GEMM's operands ("gradient items" after each tile's
// "logit items").  The f32 accumulator of a pass is in shared memory (rows padded by kAccPad); the
// depth d takes as few passes as the device's shared memory allows (grad_pass_columns).
// Never materialised: s, P, G (one tile of 16-bit coefficients at a time).
//
// The coefficients' rounding is the naive implementation's (its dlogits in the input dtype): DESIGN
// §5 bounds the gradient error by twice that error.  f16: each tile row of C is first scaled by a
// power of two that brings its largest |coefficient| into [2^14, 2^15) (f16_row_scale), the row's
// product scaled back.  Deterministic: fixed tile order, fixed reduction trees, no atomics.
#pragma once

#include <cstdint>

#include "kernels/common/cp_async.cuh"
#include "kernels/common/mma.cuh"
#include "kernels/common/numeric.cuh"
#include "kernels/common/shared_memory.cuh"
#include "kernels/loss/forward_mma_kernel.cuh"
#include "kernels/loss/loss_backward_kernel.cuh"
#include "kernels/loss/loss_common.cuh"
#include "kernels/loss/mma_mainloop.cuh"
#include "kernels/loss_params.h"

namespace flashnce {
namespace kernels {

// The launch's role: rows = a (optionally with the self-mode terms), or rows = b (transposed).
enum class GradLaunch : int { rows = 0, rows_self = 1, columns = 2 };

// One side's statistics in the log2 domain, ready for an element: coefficient term
//   w ([in Z] 2^(s2 - lse2) - [positive] inv_npos),  0 when w == 0 (then nothing else is read:
//   an invalid row may have lse = -inf).
struct SideStats {
  float lse2, w, inv_npos;
};
__device__ inline SideStats side_stats(const GradStats* st, int64_t k, bool in) {
  if (!in)
    return SideStats{0.0f, 0.0f, 0.0f};
  const GradStats s = st[k];
  return SideStats{s.lse * kLog2e, s.w, s.inv_npos};
}
__device__ inline float side_term(const SideStats& st, float s2, bool in_z, bool pos) {
  const float e = in_z ? exp2f(s2 - st.lse2) : 0.0f;
  const float g = st.w * (pos ? e - st.inv_npos : e);
  return st.w == 0.0f ? 0.0f : g;
}

// Per-lane state of the coefficient epilogue: the lane's 4 launch rows (r = 2 mt + h: tile row
// wm * 32 + 16 mt + g + 8 h), their statistics, norms, keys and running row sums.
template <class Tr, Similarity kSim, bool kLabels, bool kSym, GradLaunch kMode>
struct GradEpilogue {
  static constexpr int MT = Tr::kMTiles, NT = Tr::kNTiles, R = 2 * Tr::kMTiles;
  static constexpr int WC = Tr::kWarpCols;
  static constexpr bool kTr = kMode == GradLaunch::columns;
  static constexpr bool kSelf = kMode == GradLaunch::rows_self;
  using Acc = float[MT][NT][4];

  const BackwardParams& bp;
  const ProblemParams& p;
  float scale;
  int wm, wn, lane, g, t;
  // rows (launch rows): the direct term's statistics (original row i, or original column j when
  // transposed), SYMMETRIC + self: the column statistics of i; norms; keys.
  SideStats rs[R] = {}, rc[R] = {};
  float rn[R] = {};    // COSINE: inverse norm (signed: negative = clamped); NEG_SQ_DIST: |x|^2
  int64_t key[R] = {}; // LABELS: the row's label; else its positive column (-1: none)
  float rsum[R] = {}, rdot[R] = {}; // sum_c G, sum_c G sim (lane partials, first pass)
  float gs = 0.0f;                  // sum G sim (grad_logit_scale, the rows launch's first pass)

  __device__ GradEpilogue(const BackwardParams& b, float s, int warp, int ln)
      : bp(b), p(b.pr), scale(s), wm(warp % Tr::kWarpsM), wn(warp / Tr::kWarpsM), lane(ln),
        g(ln >> 2), t(ln & 3) {}

  __device__ int local_row(int r) const {
    return wm * Tr::kWarpRows + 16 * (r >> 1) + g + 8 * (r & 1);
  }
  __device__ int64_t rows() const { return kTr ? p.m : p.n; }
  __device__ int64_t cols() const { return kTr ? p.n : p.m; }

  __device__ void begin_rows(int64_t row0) {
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int64_t i = row0 + local_row(r);
      const bool in = i < rows();
      // direct term: the row statistics of an original row, the column statistics of an
      // original column (transposed: only with SYMMETRIC; else this launch row has no term)
      if constexpr (kTr)
        rs[r] = kSym ? side_stats(bp.col_stats, i, in && i < p.m) : SideStats{0.0f, 0.0f, 0.0f};
      else
        rs[r] = side_stats(bp.row_stats, i, in);
      if constexpr (kSelf && kSym)
        rc[r] = side_stats(bp.col_stats, i, in);
      rn[r] = (kSim != Similarity::dot && in) ? (kTr ? p.norm_b : p.norm_a)[i] : 0.0f;
      if constexpr (kLabels)
        key[r] = in ? (kTr ? p.labels_b : p.labels_a)[i] : 0;
      else
        key[r] = (in && !kTr) ? positive_column(p, i) : -1;
    }
  }

  // s2 and sim of a dot product (row r, column factor cn = the column's norm value).
  __device__ void logit(float dot, int r, float cn, float* s2, float* sim) const {
    float sv;
    if constexpr (kSim == Similarity::dot)
      sv = dot;
    else if constexpr (kSim == Similarity::cosine)
      sv = dot * fabsf(rn[r]) * fabsf(cn);
    else
      sv = 2.0f * dot - rn[r] - cn;
    *sim = sv;
    *s2 = scale * kLog2e * sv;
  }

  // The tile's coefficients: acc holds the dots on entry, the coefficients C on return (f32);
  // first: the first pass (row sums, grad_logit_scale).  amax: the lane's largest |C| per row.
  __device__ void tile(Acc& acc, int64_t row0, int64_t col0, bool first, float (&amax)[R]) {
    const int64_t wcol0 = col0 + wn * WC;
    // Unmasked slab: inside the matrix, no diagonal (self pair), no positive in it: every pair in
    // Z, no positive.  Uniform in the warp.
    const int64_t wrow0 = row0 + wm * Tr::kWarpRows;
    bool masked = kLabels || wcol0 + WC > cols() || wrow0 + Tr::kWarpRows > rows() ||
                  (p.exclude_self && wrow0 < wcol0 + WC && wcol0 < wrow0 + Tr::kWarpRows);
#pragma unroll
    for (int r = 0; r < R; ++r)
      masked = masked || (key[r] >= wcol0 && key[r] < wcol0 + WC);
    if constexpr (!kLabels && (kTr || kSelf)) // the columns' positive columns, among the rows?
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int64_t j = wcol0 + nt * 8 + 2 * t + e;
          const int64_t k = j < cols() ? positive_column(p, j) : -1;
          masked = masked || (k >= wrow0 && k < wrow0 + Tr::kWarpRows);
        }
    masked = __any_sync(0xffffffffu, masked);
    if (masked)
      coefficients<true>(acc, row0, wcol0, first, amax);
    else
      coefficients<false>(acc, row0, wcol0, first, amax);
  }

  // Column by column (its norm, statistics and key loaded once for the lane's 4 rows).
  template <bool kMasked>
  __device__ void coefficients(Acc& acc, int64_t row0, int64_t wcol0, bool first,
                               float (&amax)[R]) {
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int64_t j = wcol0 + nt * 8 + 2 * t + e; // launch column
        const bool col_in = j < cols();
        const float cn =
            (kSim != Similarity::dot && col_in) ? (kTr ? p.norm_a : p.norm_b)[j] : 0.0f;
        // the column's term: transposed, the original row j's statistics; else SYMMETRIC's
        // column statistics of j; self mode also row j's statistics for the mirror pair
        SideStats cs{0.0f, 0.0f, 0.0f}, cr{0.0f, 0.0f, 0.0f};
        if constexpr (kTr)
          cs = side_stats(bp.row_stats, j, col_in);
        else if constexpr (kSym)
          cs = side_stats(bp.col_stats, j, col_in);
        if constexpr (kSelf)
          cr = side_stats(bp.row_stats, j, col_in);
        int64_t ckey = -1;
        if constexpr (kMasked) {
          if constexpr (kLabels)
            ckey = col_in ? (kTr ? p.labels_a : p.labels_b)[j] : 0;
          else if constexpr (kTr || kSelf)
            ckey = col_in ? positive_column(p, j) : -1;
        }
#pragma unroll
        for (int r = 0; r < R; ++r) {
          const int64_t i = row0 + local_row(r); // launch row
          const bool row_in = i < rows();
          float& v = acc[r >> 1][nt][2 * (r & 1) + e];
          float s2, sim;
          logit(v, r, cn, &s2, &sim);
          // The original pair (oi, oj) and, in self mode, its mirror (oj, oi).
          bool in_z = true, pos = false, in_zt = true, post = false;
          if constexpr (kMasked) {
            const bool in = row_in && col_in;
            const bool self_pair = p.exclude_self && i == j;
            if constexpr (kLabels) {
              pos = key[r] == ckey;
              post = pos;
            } else if constexpr (kTr) {
              pos = ckey == i; // original row j's positive column is i
            } else {
              pos = key[r] == j;
              post = ckey == i; // self: row j's positive column is i
            }
            in_z = in && !self_pair && !(pos && p.negatives_only);
            pos = in && !self_pair && pos;
            in_zt = in && !self_pair && !(post && p.negatives_only);
            post = in && !self_pair && post;
          }
          // G_ij; in self mode also G_ji, which grad_logit_scale counts at row j instead.
          float gd = side_term(rs[r], s2, in_z, pos) + side_term(cs, s2, in_z, pos);
          float gv = gd;
          if constexpr (kSelf)
            gv +=
                side_term(cr, s2, in_zt, post) + (kSym ? side_term(rc[r], s2, in_zt, post) : 0.0f);
          if constexpr (kMasked) // (outside the matrix: no term at all)
            if (!(row_in && col_in))
              gd = gv = 0.0f;
          if (first) {
            if (kMode != GradLaunch::columns)
              gs += gd * sim;
            rsum[r] += gv;
            rdot[r] += gv * sim;
          }
          float coef = gv;
          // COSINE: the column's inverse norm joins the coefficient (stored negative when the
          // 1e-12 clamp is active).  Hazard (f16 row scale): a clamped f16 column is exactly the
          // zero vector (a nonzero f16 vector has norm >= 2^-24), so its product is 0 for any
          // finite coefficient; keeping g there (NaN stays NaN) instead of g * 1e12 stops it from
          // setting the row's scale and flushing every other coefficient of the row.
          if constexpr (kSim == Similarity::cosine)
            if (!Tr::kRowScale || cn > 0.0f)
              coef = gv * fabsf(cn);
          v = coef;
          amax[r] = fmaxf(amax[r], fabsf(coef));
        }
      }
  }

  // The end of the first pass: the lane partials of the row sums over the quad, then the
  // kWarpsN column slabs in slab order through `scratch` ([kWarpsN][kBlockM] x 2), into row_sum /
  // row_dot [kBlockM].  Every thread of the epilogue (Tr::epilogue_sync: the block, or the
  // consumer warpgroups) calls it, tid its index among them.
  __device__ void finish_row_sums(float* scratch, float* row_sum, float* row_dot, int tid) {
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int off = 1; off < 4; off *= 2) {
        rsum[r] += __shfl_xor_sync(0xffffffffu, rsum[r], off);
        rdot[r] += __shfl_xor_sync(0xffffffffu, rdot[r], off);
      }
    if (t == 0)
#pragma unroll
      for (int r = 0; r < R; ++r) {
        scratch[wn * Tr::kBlockM + local_row(r)] = rsum[r];
        scratch[(Tr::kWarpsN + wn) * Tr::kBlockM + local_row(r)] = rdot[r];
      }
    Tr::epilogue_sync();
    if (tid < Tr::kBlockM) {
      float s = 0.0f, dt = 0.0f;
#pragma unroll
      for (int w = 0; w < Tr::kWarpsN; ++w) {
        s += scratch[w * Tr::kBlockM + tid];
        dt += scratch[(Tr::kWarpsN + w) * Tr::kBlockM + tid];
      }
      row_sum[tid] = s;
      row_dot[tid] = dt;
    }
    Tr::epilogue_sync();
  }
};

// The warp's A fragments of the gradient GEMM for the whole tile: its 16 coefficient rows over
// all kBlockN columns, by ldmatrix from C (16-bit: [kBlockM][kCLd]; TF32: f32 bits), loaded once
// per tile and kept in registers for every gradient item of the tile (an item then reads only
// its Y slice from shared memory).
template <class Tr> struct GradOperandA {
  static constexpr int kSteps = Tr::kBlockN / Tr::kK;
  uint32_t a[kSteps][4];
  __device__ void load(const typename Tr::S* Cs, int gm, int lane) {
    const int q = lane >> 3, r8 = lane & 7;
    const typename Tr::S* rows = Cs + (gm * 16 + r8 + (q & 1) * 8) * Tr::kCLd;
#pragma unroll
    for (int k = 0; k < kSteps; ++k)
      ldmatrix_x4(a[k], rows + k * Tr::kK + (q >> 1) * (Tr::kK / 2));
  }
};

// One gradient item: the warp's 16 x 8 kGradNTiles slab of out[:, slice] += C[kBlockM x
// kBlockN] . Y[kBlockN x kChunk] (Y: the y part of a stage, rows = tile columns, kLd apart).  B
// fragments by ldmatrix.trans (16-bit: two n8 tiles) or 32-bit loads (TF32: one, rounded).
template <class Tr>
__device__ inline void warp_grad_stage(float (&c)[Tr::kGradNTiles][4], const GradOperandA<Tr>& A,
                                       const typename Tr::S* Ys, int gn, int lane) {
  constexpr int LD = Tr::kLd;
  const int q = lane >> 3, r8 = lane & 7, g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int k = 0; k < GradOperandA<Tr>::kSteps; ++k) {
    const int kk = k * Tr::kK;
    if constexpr (Tr::kTf32) {
#pragma unroll
      for (int nt = 0; nt < Tr::kGradNTiles; ++nt) {
        const float* col = Ys + (kk + t) * LD + (gn * Tr::kGradNTiles + nt) * 8 + g;
        const uint32_t b[2] = {float_to_tf32(col[0]), float_to_tf32(col[4 * LD])};
        mma_m16n8k8_tf32(c[nt], A.a[k], b, c[nt]);
      }
    } else {
      static_assert(Tr::kGradNTiles == 2, "one ldmatrix.x4.trans: two n8 tiles");
      uint32_t bb[4];
      ldmatrix_x4_trans(bb, Ys + (kk + (q & 1) * 8 + r8) * LD + gn * 16 + (q >> 1) * 8);
      const uint32_t b0[2] = {bb[0], bb[1]};
      const uint32_t b1[2] = {bb[2], bb[3]};
      if constexpr (Tr::kBf16) {
        mma_m16n8k16_bf16(c[0], A.a[k], b0, c[0]);
        mma_m16n8k16_bf16(c[1], A.a[k], b1, c[1]);
      } else {
        mma_m16n8k16_f16(c[0], A.a[k], b0, c[0]);
        mma_m16n8k16_f16(c[1], A.a[k], b1, c[1]);
      }
    }
  }
}

// A gradient element from its accumulator sum_c C_rc y_c: alpha_r acc + beta_r x_r (DOT: scale,
// 0; COSINE: scale |x^|^-1, -scale rdot |x^|^-2 unless clamped; NEG_SQ_DIST: 2 scale,
// -2 scale rsum).  nrm: the pre-pass norm of x_r (COSINE signed inverse norm, NEG_SQ_DIST |x|^2).
__device__ inline float gradient_value(Similarity sim, float scale, float nrm, float rsum,
                                       float rdot, float acc, float xv) {
  float alpha = scale, beta = 0.0f;
  if (sim == Similarity::cosine) {
    const float inv = fabsf(nrm);
    alpha = scale * inv;
    beta = nrm > 0.0f ? -scale * rdot * inv * inv : 0.0f; // no projection if clamped
  } else if (sim == Similarity::neg_sq_dist) {
    alpha = 2.0f * scale;
    beta = -2.0f * scale * rsum;
  }
  float v = alpha * acc;
  if (beta != 0.0f)
    v += beta * xv;
  return v;
}

// The gradient kernel on tensor cores: grid = row tiles x bp.grad_splits blocks of kBlockM launch
// rows each.
template <class Tr, Similarity kSim, bool kLabels, bool kSym, GradLaunch kMode>
__global__ void __launch_bounds__(Tr::kThreads, 1)
    grad_mma_kernel(__grid_constant__ const BackwardParams bp) {
  using T = typename Tr::T;
  using S = typename Tr::S;
  constexpr int BM = Tr::kBlockM, BN = Tr::kBlockN, KC = Tr::kChunk, ST = Tr::kStages;
  constexpr int R = 2 * Tr::kMTiles;
  constexpr bool kTr = kMode == GradLaunch::columns;
  const ProblemParams& p = bp.pr;
  char* smem = dynamic_shared_memory<char>();
  S* const stages = reinterpret_cast<S*>(smem);
  constexpr size_t kStageElems = Tr::kStageBytes / sizeof(S);
  S* const Cs = reinterpret_cast<S*>(smem + ST * Tr::kStageBytes); // [BM][kCLd] coefficients
  float* const scratch = reinterpret_cast<float*>(smem + ST * Tr::kStageBytes + Tr::kCBytes);
  float* const row_sum = scratch + 2 * Tr::kWarpsN * BM; // [BM]
  float* const row_dot = row_sum + BM;                   // [BM]
  float* const row_scale = row_dot + BM;                 // [BM] (f16)
  float* const acc_s = row_scale + BM;                   // [BM][acc_ld]

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int wm = warp % Tr::kWarpsM, wn = warp / Tr::kWarpsM; // logit slabs
  const int gm = warp % (BM / 16), gn = warp / (BM / 16);     // gradient slabs (16 x 8 kGradNTiles)
  const int g = lane >> 2, t = lane & 3;
  const float scale = *p.logit_scale;
  const int64_t Rn = kTr ? p.m : p.n, Cn = kTr ? p.n : p.m;
  const T* x = static_cast<const T*>(kTr ? p.b : p.a);
  const T* y = static_cast<const T*>(kTr ? p.a : p.b);
  const int64_t ldx = kTr ? p.ldb : p.lda, ldy = kTr ? p.lda : p.ldb;
  T* out = static_cast<T*>(kTr ? bp.grad_b : bp.grad_a);
  const bool want_scale = !kTr && bp.grad_logit_scale != nullptr;
  // Block (row tile, split): the split's column tiles [ct_begin, ct_begin + col_tiles).
  const int64_t row_tiles = (Rn + BM - 1) / BM, all_col_tiles = (Cn + BN - 1) / BN;
  const int64_t split = int64_t(blockIdx.x) / row_tiles;
  const int64_t row0 = (int64_t(blockIdx.x) % row_tiles) * BM;
  const int64_t ct_begin = split * all_col_tiles / bp.grad_splits;
  const int64_t col_tiles = (split + 1) * all_col_tiles / bp.grad_splits - ct_begin;
  const bool partial = bp.grad_splits > 1;
  const int64_t chunks = (p.d + KC - 1) / KC;
  const int bda = bp.grad_pass_cols; // a multiple of KC
  const int acc_ld = bda + Tr::kAccPad;
  const int64_t passes = out != nullptr ? (p.d + bda - 1) / bda : 1;

  GradEpilogue<Tr, kSim, kLabels, kSym, kMode> epi(bp, scale, warp, lane);
  epi.begin_rows(row0);

  OperandLoader<Tr, BM> xl(x, ldx, Rn, p.d);
  OperandLoader<Tr, BN> yl(y, ldy, Cn, p.d);
  xl.set_tile(row0, tid);

#pragma unroll 1
  for (int64_t pass = 0; pass < passes; ++pass) {
    const int64_t dc = pass * bda;
    const int64_t gchunks = out != nullptr ? ((p.d - dc < bda ? p.d - dc : bda) + KC - 1) / KC : 0;
    const int64_t per_tile = chunks + gchunks;
    const int64_t items = col_tiles * per_tile;
    const bool first = pass == 0;
    for (int k = tid; k < BM * acc_ld && out != nullptr; k += Tr::kThreads)
      acc_s[k] = 0.0f; // (read only after the first gradient item's barriers)
    // Item it = (column tile c, then q < chunks: the logit GEMM's depth chunk q, else gradient
    // item q - chunks: the y rows of tile c over d columns dc + (q - chunks) KC ..).
    int64_t ic = 0, iq = 0, issued = 0;
    auto issue_next = [&]() {
      if (issued < items) {
        const int64_t col0 = (ct_begin + ic) * BN;
        if (iq == 0)
          yl.set_tile(col0, tid);
        S* const st = stages + (issued % ST) * kStageElems;
        if (iq < chunks) {
          xl.load(st, row0, iq * KC, tid);
          yl.load(st + BM * Tr::kLd, col0, iq * KC, tid);
        } else {
          yl.load(st + BM * Tr::kLd, col0, dc + (iq - chunks) * KC, tid);
        }
        if (++iq == per_tile) {
          iq = 0;
          ++ic;
        }
      }
      ++issued;
      cp_async_commit();
    };
#pragma unroll 1
    for (int s = 0; s < ST - 1; ++s)
      issue_next();

    float acc[Tr::kMTiles][Tr::kNTiles][4];
    GradOperandA<Tr> grad_a;
    int64_t cc = 0, cq = 0;
#pragma unroll 1
    for (int64_t it = 0; it < items; ++it) {
      cp_async_wait<ST - 2>();
      __syncthreads(); // item it's stage is complete everywhere; stage (it - 1) % ST is free;
                       // the coefficients of the tile (written an item earlier) are visible
      issue_next();
      const S* st = stages + (it % ST) * kStageElems;
      if (cq < chunks) {
        if (cq == 0) // (zeroed here, not after the epilogue: dead during the gradient items)
          zero_accumulators<Tr>(acc);
        warp_mma_stage<Tr>(acc, st, st + BM * Tr::kLd, wm, wn, lane);
        if (cq == chunks - 1) { // the tile's logits are complete: its coefficients
          float amax[R];
#pragma unroll
          for (int r = 0; r < R; ++r)
            amax[r] = 0.0f;
          epi.tile(acc, row0, (ct_begin + cc) * BN, first, amax);
          float rscale[R];
#pragma unroll
          for (int r = 0; r < R; ++r)
            rscale[r] = 1.0f;
          if constexpr (Tr::kRowScale) {
            // A row's largest |coefficient| over the 4 lanes of its quad, then the kWarpsN
            // slabs (scratch; fixed order), its power-of-two scale for f16.
#pragma unroll
            for (int r = 0; r < R; ++r) {
              amax[r] = fmaxf(amax[r], __shfl_xor_sync(0xffffffffu, amax[r], 1));
              amax[r] = fmaxf(amax[r], __shfl_xor_sync(0xffffffffu, amax[r], 2));
              if (t == 0)
                scratch[wn * BM + epi.local_row(r)] = amax[r];
            }
            __syncthreads();
            if (tid < BM) {
              float m = 0.0f;
#pragma unroll
              for (int w = 0; w < Tr::kWarpsN; ++w)
                m = fmaxf(m, scratch[w * BM + tid]);
              row_scale[tid] = f16_row_scale(m);
            }
            __syncthreads();
#pragma unroll
            for (int r = 0; r < R; ++r)
              rscale[r] = row_scale[epi.local_row(r)];
          }
          if (out != nullptr) { // the coefficients as operands: Cs[row][col]
#pragma unroll
            for (int r = 0; r < R; ++r)
#pragma unroll
              for (int nt = 0; nt < Tr::kNTiles; ++nt) {
                const int col = wn * Tr::kWarpCols + nt * 8 + 2 * t;
                const float c0 = acc[r >> 1][nt][2 * (r & 1)] * rscale[r];
                const float c1 = acc[r >> 1][nt][2 * (r & 1) + 1] * rscale[r];
                S* dst = Cs + epi.local_row(r) * Tr::kCLd + col;
                if constexpr (Tr::kTf32) {
                  dst[0] = bits_float(float_to_tf32(c0));
                  dst[1] = bits_float(float_to_tf32(c1));
                } else {
                  *reinterpret_cast<uint32_t*>(dst) = pack2<T>(c0, c1);
                }
              }
          }
        }
      } else { // a gradient item: out[:, dc + s KC ..] += C . Y
        const int64_t s = cq - chunks;
        float c[Tr::kGradNTiles][4];
#pragma unroll
        for (int nt = 0; nt < Tr::kGradNTiles; ++nt)
#pragma unroll
          for (int e = 0; e < 4; ++e)
            c[nt][e] = 0.0f;
        if (s == 0) // the tile's first gradient item: the warp's coefficient rows
          grad_a.load(Cs, gm, lane);
        warp_grad_stage<Tr>(c, grad_a, st + BM * Tr::kLd, gn, lane);
        const float i0 = Tr::kRowScale ? inverse_pow2(row_scale[gm * 16 + g]) : 1.0f;
        const float i1 = Tr::kRowScale ? inverse_pow2(row_scale[gm * 16 + g + 8]) : 1.0f;
#pragma unroll
        for (int nt = 0; nt < Tr::kGradNTiles; ++nt) {
          const int col = int(s) * KC + (gn * Tr::kGradNTiles + nt) * 8 + 2 * t;
          float* const q0 = acc_s + (gm * 16 + g) * acc_ld + col;
          float* const q1 = acc_s + (gm * 16 + g + 8) * acc_ld + col;
          float2 v0 = load_pair(q0), v1 = load_pair(q1);
          v0.x += c[nt][0] * i0;
          v0.y += c[nt][1] * i0;
          v1.x += c[nt][2] * i1;
          v1.y += c[nt][3] * i1;
          store_pair(q0, v0);
          store_pair(q1, v1);
        }
      }
      if (++cq == per_tile) {
        cq = 0;
        ++cc;
      }
    }
    cp_async_wait<0>();
    if (first) {
      epi.finish_row_sums(scratch, row_sum, row_dot, tid);
      if (partial && tid < BM && row0 + tid < Rn) { // this split's row sums
        float* const sp = bp.sum_partial + 2 * (split * Rn + row0 + tid);
        sp[0] = row_sum[tid];
        sp[1] = row_dot[tid];
      }
      if (want_scale) {
        const float total = block_sum<Tr::kThreads>(epi.gs, scratch, tid);
        if (tid == 0)
          bp.scale_partial[blockIdx.x] = total;
      }
    }
    if (out == nullptr)
      break;
    __syncthreads(); // every gradient item's accumulator pairs are written
    // out = alpha_r acc + beta_r x_r, once, in the output dtype; with splits, this split's
    // accumulator into the partials instead (grad_split_reduce_kernel finishes).
    const float* nx = kTr ? p.norm_b : p.norm_a;
    for (int k = tid; k < BM * bda; k += Tr::kThreads) {
      const int r = k / bda, cidx = k % bda;
      const int64_t gr = row0 + r, gk = dc + cidx;
      if (gr >= Rn || gk >= p.d)
        continue;
      const float a = acc_s[r * acc_ld + cidx];
      if (partial) {
        bp.grad_partial[(split * Rn + gr) * p.d + gk] = a;
        continue;
      }
      const float xv = kSim == Similarity::dot ? 0.0f : to_float(x[gr * ldx + gk]);
      const float nrm = kSim == Similarity::dot ? 0.0f : nx[gr];
      out[gr * p.d + gk] =
          from_float<T>(gradient_value(kSim, scale, nrm, row_sum[r], row_dot[r], a, xv));
    }
    __syncthreads(); // the accumulator is zeroed again by the next pass
  }
}

} // namespace kernels
} // namespace flashnce

namespace flashnce {
namespace kernels {

// A split launch's end (grad_splits > 1): each gradient element is the sum of its splits'
// partial accumulators and its row's sums in split order (deterministic), then gradient_value.
// One thread per element of the launch's R x d output.
template <typename T>
__global__ void __launch_bounds__(256)
    grad_split_reduce_kernel(__grid_constant__ const BackwardParams bp) {
  const ProblemParams& p = bp.pr;
  const bool tr = bp.transposed != 0;
  const int64_t R = tr ? p.m : p.n;
  const int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= R * p.d)
    return;
  const int64_t r = k / p.d, c = k % p.d;
  float acc = 0.0f, rsum = 0.0f, rdot = 0.0f;
  for (int32_t s = 0; s < bp.grad_splits; ++s) {
    acc += bp.grad_partial[(s * R + r) * p.d + c];
    rsum += bp.sum_partial[2 * (s * R + r)];
    rdot += bp.sum_partial[2 * (s * R + r) + 1];
  }
  const T* x = static_cast<const T*>(tr ? p.b : p.a);
  const int64_t ldx = tr ? p.ldb : p.lda;
  const float xv = p.similarity == Similarity::dot ? 0.0f : to_float(x[r * ldx + c]);
  const float nrm = p.similarity == Similarity::dot ? 0.0f : (tr ? p.norm_b : p.norm_a)[r];
  T* out = static_cast<T*>(tr ? bp.grad_b : bp.grad_a);
  out[r * p.d + c] =
      from_float<T>(gradient_value(p.similarity, *p.logit_scale, nrm, rsum, rdot, acc, xv));
}

} // namespace kernels
} // namespace flashnce
