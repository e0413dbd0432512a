// The tensor-core forward of the fused contrastive loss with the logits in registers
// (FlashAttention-2's forward without the value matrix).
//
// Math (DESIGN.md §1): s_ij = scale * sim(a_i, b_j);  for a valid row
//   loss_i = LSE_{j in Z(i)} s_ij  [- log|Z(i)| for NEGATIVES]  - mean_{p in P(i)} s_ip
// and for SYMMETRIC the same over columns.  Every logit lives only in the mma accumulator
// fragments of the warp that computed it (mma_mainloop.cuh): the epilogue turns the dots into
// s2 = s * log2(e) in place (one FMUL or FFMA: log2(e) and scale are folded into the row factors),
// then runs the online max / sum of 2^(s2 - max) per row (quad shuffles once per tile) and, for
// SYMMETRIC, per column (shuffles over the 8 row groups of the warp, then the 4 row slabs of the
// block through a small shared-memory scratch).  Never materialised: the n x m logits, any logit
// tile in shared memory, any per-element flag.
//
// Compile-time: the similarity (its row / column factors), LABELS or a single positive column per
// row (DIAGONAL, VIEW_PAIRS, TARGETS: pc(i)), SYMMETRIC.  Run-time, per warp and tile, uniform in
// the warp: a tile slab that no row's positive column nor self column crosses, inside n x m, takes
// the unmasked path (no index test per element); the others (the tiles on the diagonals, the
// ragged edges, every LABELS tile) compare indices per element, add the positives, and set the
// logits outside Z(i) to -inf, after which both paths share the same update.
//
// Work split (forward_params in host/cuda/dispatch.cpp): a row_groups x col_splits grid; block
// (g, s) runs row tiles g, g + row_groups, .. over the column tiles of split s, writes each of its
// rows' partial statistics to row_partial[s][i] and (SYMMETRIC) folds its column statistics into
// col_partial_rows[g][j] in row-tile order; stats_finalize_kernel merges both in index order.  The
// split depends on n and m only, so the results are bitwise the same on every device and run.
//
// Hazards: an empty set has max2 = -inf, and 2^(-inf - -inf) would be NaN: the updates subtract
// max2 == -inf ? 0 : max2 (FlashAttention's rule), which keeps a NaN logit in Z a NaN sum and an
// empty set a zero sum.  64-bit row / column indices; per-element tests on 32-bit offsets within
// the warp's slab.
#pragma once

#include <cstdint>

#include "kernels/common/cp_async.cuh"
#include "kernels/common/numeric.cuh"
#include "kernels/common/shared_memory.cuh"
#include "kernels/loss/loss_common.cuh"
#include "kernels/loss/mma_mainloop.cuh"
#include "kernels/loss_params.h"

namespace flashnce {
namespace kernels {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// (max2, sum) += (max2', sum') in the log2 domain; either side may be empty (-inf, 0).
__device__ inline void merge_lse2(float& max2, float& sum, float max2b, float sumb) {
  const float m = fmaxf(max2, max2b);
  const float ms = m == neg_inf() ? 0.0f : m;
  sum = sum * exp2f(max2 - ms) + sumb * exp2f(max2b - ms);
  max2 = m;
}
__device__ inline void merge_partial(PartialStats& a, const PartialStats& b) {
  merge_lse2(a.max2, a.sum, b.max2, b.sum);
  a.pos2 += b.pos2;
  a.npos += b.npos;
}
__device__ inline PartialStats empty_partial() {
  return PartialStats{neg_inf(), 0.0f, 0.0f, 0};
}

// Partial statistics in shared memory as four arrays (each thread's field accesses are then
// consecutive words: conflict-free, where an array of 16-byte structs read field by field would
// be 4-way).
struct PartialScratch {
  float* max2;
  float* sum;
  float* pos2;
  int32_t* npos;
  __device__ PartialScratch(void* base, int count)
      : max2(static_cast<float*>(base)), sum(max2 + count), pos2(sum + count),
        npos(reinterpret_cast<int32_t*>(pos2 + count)) {}
  __device__ void store(int k, const PartialStats& s) const {
    max2[k] = s.max2;
    sum[k] = s.sum;
    pos2[k] = s.pos2;
    npos[k] = s.npos;
  }
  __device__ PartialStats load(int k) const {
    return PartialStats{max2[k], sum[k], pos2[k], npos[k]};
  }
};

// Row i's single positive column (DIAGONAL: i, VIEW_PAIRS: (i + n/2) mod n, TARGETS: targets[i]),
// or -1 when it has none inside [0, m) (a TARGETS target >= m also makes the loss NaN, in the
// finalize).
__device__ inline int64_t positive_column(const ProblemParams& p, int64_t i) {
  int64_t j = -1;
  if (p.positives == Positives::diagonal)
    j = i;
  else if (p.positives == Positives::view_pairs)
    j = (i + p.n / 2) % p.n;
  else if (p.positives == Positives::targets)
    j = p.targets[i];
  return j >= 0 && j < p.m ? j : -1;
}

// The per-lane state of the epilogue: the lane's 2 kMTiles rows (r = 2 mt + h: tile row
// wm * kWarpRows + 16 mt + g + 8 h) with their factors and running statistics (max2
// quad-consistent, the sums lane partials until the row tile ends).  The accumulators are in the
// mma.m16n8 fragment layout, which is also each warp's part of a wgmma m64nN accumulator (16 rows
// per warp: kMTiles = 1).  Tr::epilogue_sync() synchronises the threads that run the epilogue (the
// block, or the consumer warpgroups of a warp-specialised kernel); `tid` counts those threads.
template <class Tr, Similarity kSim, bool kLabels, bool kSym> struct ForwardEpilogue {
  static constexpr int MT = Tr::kMTiles, NT = Tr::kNTiles, R = 2 * Tr::kMTiles;
  static constexpr int WC = Tr::kWarpCols;
  using Acc = float[MT][NT][4];

  const ProblemParams& p;
  float scale;
  int wm, wn, lane, g, t;
  // rows
  float ra[R] = {}, rb[R] = {}; // s2 = dot * ra * ca + rb + cb
  int64_t key[R] = {};          // LABELS: labels_a[i]; else the positive column (-1: none)
  float max2[R] = {}, sum[R] = {}, pos2[R] = {};
  int32_t npos[R] = {};

  __device__ ForwardEpilogue(const ProblemParams& pr, float s, int warp, int ln)
      : p(pr), scale(s), wm(warp % Tr::kWarpsM), wn(warp / Tr::kWarpsM), lane(ln), g(ln >> 2),
        t(ln & 3) {}

  __device__ int64_t row_of(int64_t row0, int r) const {
    return row0 + wm * Tr::kWarpRows + 16 * (r >> 1) + g + 8 * (r & 1);
  }

  // A new row tile: the rows' factors, keys and empty statistics.
  __device__ void begin_rows(int64_t row0) {
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int64_t i = row_of(row0, r);
      const bool in = i < p.n;
      max2[r] = neg_inf();
      sum[r] = 0.0f;
      pos2[r] = 0.0f;
      npos[r] = 0;
      rb[r] = 0.0f;
      if constexpr (kSim == Similarity::dot) {
        ra[r] = scale * kLog2e;
      } else if constexpr (kSim == Similarity::cosine) {
        ra[r] = in ? scale * kLog2e * fabsf(p.norm_a[i]) : 0.0f;
      } else {
        ra[r] = 2.0f * scale * kLog2e;
        rb[r] = in ? -scale * kLog2e * p.norm_a[i] : 0.0f;
      }
      if constexpr (kLabels)
        key[r] = in ? p.labels_a[i] : 0;
      else
        key[r] = in ? positive_column(p, i) : -1;
    }
  }

  // The logits of one tile: dots -> s2 in place, masks, then the row (and column) statistics.
  // col_scratch: [kWarpsM][kBlockN] (SYMMETRIC); col_run: this block's running partials of the
  // tile's columns (row group g of col_partial_rows), `first`: this is the group's first row tile.
  __device__ void tile(Acc& acc, int64_t row0, int64_t col0, const PartialScratch& col_scratch,
                       PartialStats* col_run, bool first, int tid) {
    const int64_t wcol0 = col0 + wn * WC;
    // Column factors of the lane's 2 NT columns.
    float ca[NT][2], cb[NT][2];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int64_t j = wcol0 + nt * 8 + 2 * t + e;
        ca[nt][e] = 1.0f;
        cb[nt][e] = 0.0f;
        if constexpr (kSim == Similarity::cosine)
          ca[nt][e] = j < p.m ? fabsf(p.norm_b[j]) : 0.0f;
        if constexpr (kSim == Similarity::neg_sq_dist)
          cb[nt][e] = j < p.m ? -scale * kLog2e * p.norm_b[j] : 0.0f;
      }
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int r = 2 * mt + (e >> 1), c = e & 1;
          float& v = acc[mt][nt][e];
          if constexpr (kSim == Similarity::dot)
            v = v * ra[r];
          else if constexpr (kSim == Similarity::cosine)
            v = v * (ra[r] * ca[nt][c]);
          else
            v = fmaf(v, ra[r], rb[r] + cb[nt][c]);
        }

    // Masked or not: uniform in the warp (a slab crossing the edges, a row's positive or self
    // column inside the slab, or LABELS).
    const int64_t wrow0 = row0 + wm * Tr::kWarpRows;
    bool masked = kLabels || wcol0 + WC > p.m || wrow0 + Tr::kWarpRows > p.n;
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int64_t i = row_of(row0, r);
      masked = masked || (key[r] >= wcol0 && key[r] < wcol0 + WC) ||
               (p.exclude_self && i >= wcol0 && i < wcol0 + WC);
    }
    masked = __any_sync(0xffffffffu, masked);
    float cpos[NT][2];
    int32_t cnp[NT][2];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        cpos[nt][c] = 0.0f;
        cnp[nt][c] = 0;
      }
    if (masked)
      apply_masks(acc, row0, wcol0, cpos, cnp);

      // Rows: the tile's max (quad shuffles), rescale, then the lane's share of the sum.
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int mt = r >> 1, h = r & 1;
      float tmax = neg_inf();
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
        tmax = fmaxf(tmax, fmaxf(acc[mt][nt][2 * h], acc[mt][nt][2 * h + 1]));
      tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
      tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 2));
      const float mnew = fmaxf(max2[r], tmax);
      const float ms = mnew == neg_inf() ? 0.0f : mnew;
      float s = sum[r] * exp2f(max2[r] - ms);
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
        s += exp2f(acc[mt][nt][2 * h] - ms) + exp2f(acc[mt][nt][2 * h + 1] - ms);
      sum[r] = s;
      max2[r] = mnew;
    }
    if constexpr (kSym)
      columns(acc, col0, cpos, cnp, col_scratch, col_run, first, tid);
  }

  // Per element (the masked path): the index tests, the positives into the row sums and the
  // lane's column partials, and -inf for every logit outside Z(i).
  __device__ void apply_masks(Acc& acc, int64_t row0, int64_t wcol0, float (&cpos)[NT][2],
                              int32_t (&cnp)[NT][2]) {
    const int64_t left = p.m - wcol0; // columns of the slab inside [0, m)
    const int vcols = left < WC ? int(left) : WC;
    int self_rel[R], pos_rel[R];
    bool row_in[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int64_t i = row_of(row0, r);
      row_in[r] = i < p.n;
      self_rel[r] = p.exclude_self && i >= wcol0 && i < wcol0 + WC ? int(i - wcol0) : -1;
      pos_rel[r] = !kLabels && key[r] >= wcol0 && key[r] < wcol0 + WC ? int(key[r] - wcol0) : -1;
    }
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int jr = nt * 8 + 2 * t + c;
        int64_t label_b = 0;
        if constexpr (kLabels)
          label_b = jr < vcols ? p.labels_b[wcol0 + jr] : 0;
#pragma unroll
        for (int r = 0; r < R; ++r) {
          float& v = acc[r >> 1][nt][2 * (r & 1) + c];
          const bool in = row_in[r] && jr < vcols && jr != self_rel[r];
          const bool pos = in && (kLabels ? key[r] == label_b : jr == pos_rel[r]);
          if (pos) {
            pos2[r] += v;
            npos[r] += 1;
            cpos[nt][c] += v;
            cnp[nt][c] += 1;
          }
          if (!in || (pos && p.negatives_only))
            v = neg_inf();
        }
      }
  }

  // SYMMETRIC: the tile's column statistics.  Per lane column: its 4 rows; then the 8 row groups
  // of the warp (lane masks 4, 8, 16); then the kWarpsM row slabs through col_scratch, merged in
  // slab order by one thread per column into the block's running partial (fixed order throughout:
  // deterministic).
  __device__ void columns(Acc& acc, int64_t col0, float (&cpos)[NT][2], int32_t (&cnp)[NT][2],
                          const PartialScratch& col_scratch, PartialStats* col_run, bool first,
                          int tid) {
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        float cm = neg_inf();
#pragma unroll
        for (int r = 0; r < R; ++r)
          cm = fmaxf(cm, acc[r >> 1][nt][2 * (r & 1) + c]);
#pragma unroll
        for (int off = 4; off < 32; off *= 2)
          cm = fmaxf(cm, __shfl_xor_sync(0xffffffffu, cm, off));
        const float ms = cm == neg_inf() ? 0.0f : cm;
        float cs = 0.0f;
#pragma unroll
        for (int r = 0; r < R; ++r)
          cs += exp2f(acc[r >> 1][nt][2 * (r & 1) + c] - ms);
        float cp = cpos[nt][c];
        int32_t cn = cnp[nt][c];
#pragma unroll
        for (int off = 4; off < 32; off *= 2) {
          cs += __shfl_xor_sync(0xffffffffu, cs, off);
          cp += __shfl_xor_sync(0xffffffffu, cp, off);
          cn += __shfl_xor_sync(0xffffffffu, cn, off);
        }
        if (g == 0)
          col_scratch.store(wm * Tr::kBlockN + wn * WC + nt * 8 + 2 * t + c,
                            PartialStats{cm, cs, cp, cn});
      }
    Tr::epilogue_sync();
    if (tid < Tr::kBlockN && col0 + tid < p.m) {
      PartialStats s = first ? empty_partial() : col_run[tid];
#pragma unroll
      for (int w = 0; w < Tr::kWarpsM; ++w)
        merge_partial(s, col_scratch.load(w * Tr::kBlockN + tid));
      col_run[tid] = s;
    }
    // col_scratch is written again only in the next tile's epilogue: after at least one of the
    // main loop's barriers (forward_mma_kernel), or after Tr::epilogue_sync() at the end of the
    // tile's epilogue where the main loop has none (forward_wgmma_kernel's consumers).
  }

  // The end of a row tile: the quad's lane partials summed, the kWarpsN column slabs merged in
  // slab order through row_scratch, each row's partial written (row_out = row_partial[split]).
  __device__ void end_rows(int64_t row0, const PartialScratch& row_scratch, PartialStats* row_out) {
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int off = 1; off < 4; off *= 2) {
        sum[r] += __shfl_xor_sync(0xffffffffu, sum[r], off);
        pos2[r] += __shfl_xor_sync(0xffffffffu, pos2[r], off);
        npos[r] += __shfl_xor_sync(0xffffffffu, npos[r], off);
      }
    static_assert(Tr::kWarpsN == 1 || Tr::kWarpsN == 2,
                  "one column slab writes its rows; of two, one writes, the other merges");
    if constexpr (Tr::kWarpsN == 1) {
      if (t == 0)
#pragma unroll
        for (int r = 0; r < R; ++r) {
          const int64_t i = row_of(row0, r);
          if (i < p.n)
            row_out[i] = PartialStats{max2[r], sum[r], pos2[r], npos[r]};
        }
      return;
    }
    if (wn == 1 && t == 0)
#pragma unroll
      for (int r = 0; r < R; ++r)
        row_scratch.store(wm * Tr::kWarpRows + 16 * (r >> 1) + g + 8 * (r & 1),
                          PartialStats{max2[r], sum[r], pos2[r], npos[r]});
    Tr::epilogue_sync();
    if (wn == 0 && t == 0)
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const int64_t i = row_of(row0, r);
        if (i >= p.n)
          continue;
        PartialStats s{max2[r], sum[r], pos2[r], npos[r]};
        merge_partial(s, row_scratch.load(wm * Tr::kWarpRows + 16 * (r >> 1) + g + 8 * (r & 1)));
        row_out[i] = s;
      }
    // row_scratch is written again only at the next row tile's end, after the main loop's barriers.
  }
};

// Main forward kernel (tensor cores).  Grid: row_groups x col_splits blocks of kThreads.
// __launch_bounds__(256, 1): the accumulators (64 registers per lane) and the epilogue state.
template <class Tr, Similarity kSim, bool kLabels, bool kSym>
__global__ void __launch_bounds__(Tr::kThreads, 1)
    forward_mma_kernel(__grid_constant__ const ForwardParams fp) {
  using T = typename Tr::T;
  using S = typename Tr::S;
  constexpr int BM = Tr::kBlockM, BN = Tr::kBlockN, KC = Tr::kChunk, ST = Tr::kStages;
  const ProblemParams& p = fp.pr;
  char* smem = dynamic_shared_memory<char>();
  S* const stages = reinterpret_cast<S*>(smem);
  constexpr size_t kStageElems = Tr::kStageBytes / sizeof(S);
  const PartialScratch col_scratch(smem + ST * Tr::kStageBytes, Tr::kWarpsM * BN);
  const PartialScratch row_scratch(smem + ST * Tr::kStageBytes + Tr::kColScratchBytes, BM);

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int64_t row_tiles = (p.n + BM - 1) / BM, col_tiles = (p.m + BN - 1) / BN;
  const int64_t group = int64_t(blockIdx.x) % fp.row_groups;
  const int64_t split = int64_t(blockIdx.x) / fp.row_groups;
  const int64_t ct_begin = split * col_tiles / fp.col_splits;
  const int64_t ct_count = (split + 1) * col_tiles / fp.col_splits - ct_begin;
  const int64_t rt_count = (row_tiles - group + fp.row_groups - 1) / fp.row_groups;
  const int64_t chunks = (p.d + KC - 1) / KC;
  const int64_t items = rt_count * ct_count * chunks;
  if (items <= 0)
    return; // uniform per block (the host never makes such a block)

  // Items (row tile k, column tile c, chunk q), in that nesting.  The loads run kStages - 1 items
  // ahead of the mma with their own counters; the operands' row pointers are set when a tile
  // starts.
  OperandLoader<Tr, BM> xa(static_cast<const T*>(p.a), p.lda, p.n, p.d);
  OperandLoader<Tr, BN> yb(static_cast<const T*>(p.b), p.ldb, p.m, p.d);
  int64_t ik = 0, ic = 0, iq = 0, issued = 0;
  auto issue_next = [&]() {
    if (issued < items) {
      const int64_t row0 = (group + ik * fp.row_groups) * BM;
      const int64_t col0 = (ct_begin + ic) * BN;
      if (iq == 0) {
        if (ic == 0)
          xa.set_tile(row0, tid);
        yb.set_tile(col0, tid);
      }
      S* const st = stages + (issued % ST) * kStageElems;
      xa.load(st, row0, iq * KC, tid);
      yb.load(st + BM * Tr::kLd, col0, iq * KC, tid);
      if (++iq == chunks) {
        iq = 0;
        if (++ic == ct_count) {
          ic = 0;
          ++ik;
        }
      }
    }
    ++issued;
    cp_async_commit(); // (empty groups at the end keep the count uniform)
  };
#pragma unroll 1
  for (int s = 0; s < ST - 1; ++s)
    issue_next();

  ForwardEpilogue<Tr, kSim, kLabels, kSym> epi(p, *p.logit_scale, warp, lane);
  float acc[Tr::kMTiles][Tr::kNTiles][4];
  zero_accumulators<Tr>(acc);
  PartialStats* const row_out = fp.row_partial + split * p.n;
  PartialStats* const col_run_base = kSym ? fp.col_partial_rows + group * p.m : nullptr;
  const int wm = warp % Tr::kWarpsM, wn = warp / Tr::kWarpsM;
  int64_t ck = 0, cc = 0, cq = 0; // the item the mma works on
#pragma unroll 1
  for (int64_t it = 0; it < items; ++it) {
    cp_async_wait<ST - 2>(); // this thread's copies of item it have landed ...
    __syncthreads();         // ... everybody's too, and stage (it - 1) % ST is no longer read
    issue_next();
    const S* st = stages + (it % ST) * kStageElems;
    warp_mma_stage<Tr>(acc, st, st + BM * Tr::kLd, wm, wn, lane);
    if (cq == chunks - 1) { // the tile's last chunk: its logits are complete
      const int64_t row0 = (group + ck * fp.row_groups) * BM;
      const int64_t col0 = (ct_begin + cc) * BN;
      if (cc == 0)
        epi.begin_rows(row0);
      epi.tile(acc, row0, col0, col_scratch, kSym ? col_run_base + col0 : nullptr, ck == 0, tid);
      if (cc == ct_count - 1)
        epi.end_rows(row0, row_scratch, row_out);
      zero_accumulators<Tr>(acc);
    }
    if (++cq == chunks) {
      cq = 0;
      if (++cc == ct_count) {
        cc = 0;
        ++ck;
      }
    }
  }
  cp_async_wait<0>();
}

// Merges the partials of each row (col_splits of them, in split order) and, SYMMETRIC, of each
// column (row_groups, in group order) into the per-row / per-column loss, validity and LSE.  One
// thread per row, then per column (the blocks after the rows').
template <int THREADS>
__global__ void __launch_bounds__(THREADS)
    stats_finalize_kernel(__grid_constant__ const ForwardParams fp) {
  const ProblemParams& p = fp.pr;
  const int64_t row_blocks = (p.n + THREADS - 1) / THREADS;
  const bool col = int64_t(blockIdx.x) >= row_blocks;
  const int64_t idx = (col ? blockIdx.x - row_blocks : blockIdx.x) * int64_t(THREADS) + threadIdx.x;
  const int64_t count = col ? p.m : p.n, other = col ? p.n : p.m;
  if (idx >= count)
    return;
  PartialStats s = empty_partial();
  const int32_t parts = col ? fp.row_groups : fp.col_splits;
  const PartialStats* src = col ? fp.col_partial_rows : fp.row_partial;
  for (int32_t k = 0; k < parts; ++k)
    merge_partial(s, src[int64_t(k) * count + idx]);
  // |Z| from the counts: every index of the other side, minus the self pair, minus the positives
  // for NEGATIVES.
  const int32_t self = p.exclude_self && idx < other ? 1 : 0;
  const Stats st{s.max2 * kLn2, s.sum, s.pos2 * kLn2, s.npos,
                 int32_t(other - self - (p.negatives_only ? s.npos : 0))};
  const bool bad_target = !col && p.positives == Positives::targets && p.targets[idx] >= p.m;
  float lse;
  int32_t valid;
  const float loss =
      loss_from_stats(st, p.negatives_only, bad_target, !is_finite(*p.logit_scale), &lse, &valid);
  (col ? fp.col_loss : fp.row_loss)[idx] = loss;
  (col ? fp.col_valid : fp.row_valid)[idx] = valid;
  float* lse_out = col ? fp.col_lse : fp.row_lse;
  if (lse_out)
    lse_out[idx] = lse;
}

} // namespace kernels
} // namespace flashnce
