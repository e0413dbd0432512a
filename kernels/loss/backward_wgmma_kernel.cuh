// The Hopper (sm_90a) gradient kernel of the fused contrastive loss: TMA + mbarrier + wgmma, warp
// specialised, the gradient accumulators in registers across the whole sweep of column tiles.
//
// Status: experimental.  Correct on the emulator (the emulated kernel suite runs it: flashnce_emu
// defines FLASHNCE_WGMMA_BACKWARD); on GPUs only with FLASHNCE_EXPERIMENTAL_WGMMA_BACKWARD=1
// (host/cuda/dispatch.cpp) until a GPU has measured it against grad_mma_kernel
// (scripts/device-check.sh runs both).  ptxas (CUDA 13.0, sm_90a) spills a little in the
// consumers (128 slot + 32 logit accumulators per thread next to the epilogue's state).
//
// Math: backward_mma_kernel.cuh's (DESIGN.md §1): with P_ij = exp(s_ij - LSE_i) on Z(i),
//   G_ij = w_i (P_ij - [j in P(i)] / |P(i)|)  +  v_j (Pc_ij - [i in P^c(j)] / |P^c(j)|)   (SYM)
//   out_r = alpha_r sum_c C_rc y_c + beta_r x_r,   C = G (x |y^_c|^-1 for COSINE), per launch
// with the same launches (rows = a, or the transposed launch rows = b), the same coefficient
// epilogue (GradEpilogue, on each warp's 16 x 64 part of the wgmma accumulators), the same column
// splits and partials (grad_split_reduce_kernel).  d <= 512 (BackwardWgmmaTraits::kPassCols), one
// pass.  Never materialised: s, P, G (one bf16 tile of coefficients at a time, in shared memory as
// the gradient GEMM's operand).
//
// Shared memory (BackwardWgmmaTraits): x resident (the block's 64 rows, chunk q at
// xs + q kXBytes, loaded once on x_full), the column tile's y boxes (box q: d-columns 64 q ..,
// all 128 tile rows, at ys + q kBoxBytes; full[q] / empty[q] per box), the coefficient tile.
// Per column tile the producer (warpgroup 0, one elected thread) loads nbox = max(chunks, 2
// gitems) boxes, box q once the consumers have freed its previous tile's (a box wholly past d is
// zero filled by TMA and multiplied like the others: no branch around a wgmma).  Each y box is
// read by both GEMMs, so each column tile comes from L2 once.  Consumer w (warpgroups 1, 2):
//   logit item q  S_w[64 x 64] (+)= X_q[64 x 64] . Y_q[64 w .. 64 w + 63, :]^T   (4 wgmma k16)
//   tile's end    the coefficients C on S_w (GradEpilogue), rounded to bf16 into C box w
//                 (64 rows x 128 bytes, swizzled like a TMA box: the A operand, K-major)
//   gradient item j  out_w[slot j][64 x 64] += C[64 x 128] . Y_{2j+w}[128 x 64]
//                 (8 wgmma k16; the box read MN-major: rows = the K dimension)
// Each item is one wgmma group, retired (wait_group 0) before the next.  A consumer warp frees a
// box once per tile, after its last use: its gradient item for the boxes it multiplies (q % 2 ==
// w, q < 2 gitems), else its logit item (or, for a box past d, right after the logit items); so
// empty[q] completes once per tile with 8 arrivals, and the producer's reload never overtakes a
// read.  The gradient items run as an unrolled loop over the register slots (no runtime index into
// the accumulators).
//
// The coefficient tile: before a tile's coefficients are written, both consumers have retired
// every wgmma of the previous tile (each item's wait_group 0; then a consumer named barrier), and
// after the writes a proxy fence and a second barrier make them visible to both consumers' wgmmas
// (async proxy).  After the last tile: row sums, the grad_logit_scale partial, and out = alpha_r
// acc + beta_r x_r straight from the registers (or the split's partials).
//
// Hazards: as backward_mma_kernel (w == 0 rows read no statistics; -inf LSE of invalid rows).  TMA
// coordinates are 32-bit: the dispatch picks this kernel only when n, m fit, d <= 512 and the
// operands' bases and row pitches are 16-byte aligned; otherwise the mma.sync kernel runs.
#pragma once

#include <cstdint>

#include "kernels/common/gmma_layout.h"
#include "kernels/common/mbarrier.cuh"
#include "kernels/common/shared_memory.cuh"
#include "kernels/common/tma.cuh"
#include "kernels/common/warpgroup.cuh"
#include "kernels/common/wgmma.cuh"
#include "kernels/loss/backward_mma_kernel.cuh"

namespace flashnce {
namespace kernels {

template <class Tr, Similarity kSim, bool kLabels, bool kSym, GradLaunch kMode>
__global__ void __launch_bounds__(Tr::kThreads, 1)
    grad_wgmma_kernel(__grid_constant__ const BackwardParams bp,
                      const __grid_constant__ CUtensorMap map_x,
                      const __grid_constant__ CUtensorMap map_y) {
  using T = typename Tr::T;
  constexpr int BM = Tr::kBlockM, BN = Tr::kBlockN, KC = Tr::kChunk;
  constexpr int GC = Tr::kGradCols, BOX = Tr::kBox, SLOTS = Tr::kSlots, NB = Tr::kBoxes;
  constexpr int R = 2 * Tr::kMTiles;
  constexpr WgmmaType kType = WgmmaType::bf16;
  constexpr bool kTr = kMode == GradLaunch::columns;
  const ProblemParams& p = bp.pr;
  char* raw = dynamic_shared_memory<char>();
  char* const xs = raw + (1024u - wgmma_smem_address(raw) % 1024u) % 1024u;
  char* const ys = xs + Tr::kXResBytes;
  char* const Cs = ys + Tr::kYResBytes; // [kBlockN / kBox] boxes of 64 rows x 128 B
  float* const scratch = reinterpret_cast<float*>(Cs + Tr::kCBytes); // [2 kWarpsN][BM]
  float* const row_sum = scratch + 2 * Tr::kWarpsN * BM;             // [BM]
  float* const row_dot = row_sum + BM;                               // [BM]
  auto* const full = reinterpret_cast<std::uint64_t*>(row_dot + BM);
  std::uint64_t* const empty = full + NB;
  std::uint64_t* const x_full = empty + NB;

  const float scale = *p.logit_scale;
  const int64_t Rn = kTr ? p.m : p.n, Cn = kTr ? p.n : p.m;
  const T* x = static_cast<const T*>(kTr ? p.b : p.a);
  const int64_t ldx = kTr ? p.ldb : p.lda;
  T* out = static_cast<T*>(kTr ? bp.grad_b : bp.grad_a);
  const bool want_scale = !kTr && bp.grad_logit_scale != nullptr;
  const int64_t row_tiles = (Rn + BM - 1) / BM, all_col_tiles = (Cn + BN - 1) / BN;
  const int64_t split = int64_t(blockIdx.x) / row_tiles;
  const int64_t row0 = (int64_t(blockIdx.x) % row_tiles) * BM;
  const int64_t ct_begin = split * all_col_tiles / bp.grad_splits;
  const int64_t col_tiles = (split + 1) * all_col_tiles / bp.grad_splits - ct_begin;
  const bool partial = bp.grad_splits > 1;
  // 32-bit counters: the dispatch keeps n and m below 2^31 - 256 (TMA coordinates), d <= 512.
  const int chunks = int((p.d + KC - 1) / KC);                      // <= NB
  const int gitems = out != nullptr ? int((p.d + GC - 1) / GC) : 0; // <= SLOTS
  const int nbox = chunks > 2 * gitems ? chunks : 2 * gitems;       // <= NB
  const int ncols = int(col_tiles);
  if (col_tiles <= 0)
    return; // uniform per block (the host never makes such a block)

  const int tid = threadIdx.x;
  if (tid == 0) {
    for (int q = 0; q < NB; ++q) {
      mbarrier_init(&full[q], 1);                                    // the producer's arrive + tx
      mbarrier_init(&empty[q], unsigned(Tr::kConsumerThreads / 32)); // one per consumer warp
    }
    mbarrier_init(x_full, 1);
    fence_mbarrier_init();
  }
  __syncthreads(); // the last block-wide barrier: the roles split here

  if (tid < 128) { // ---- producer warpgroup ----
    setmaxnreg_dec<Tr::kProducerRegs>();
    if (tid == 0) {
      tma_prefetch_descriptor(&map_x);
      tma_prefetch_descriptor(&map_y);
      mbarrier_arrive_expect_tx(x_full, std::uint32_t(chunks * Tr::kXBytes));
      for (int q = 0; q < chunks; ++q)
        tma_load_2d(xs + q * Tr::kXBytes, &map_x, q * KC, int(row0), x_full);
#pragma unroll 1
      for (int cc = 0; cc < ncols; ++cc) {
        const int col0 = int((ct_begin + cc) * BN);
#pragma unroll 1
        for (int q = 0; q < nbox; ++q) {
          if (cc > 0) // the consumers freed box q of the previous tile
            mbarrier_wait_parity(&empty[q], unsigned((cc - 1) & 1));
          mbarrier_arrive_expect_tx(&full[q], std::uint32_t(Tr::kBoxBytes));
          tma_load_2d(ys + q * Tr::kBoxBytes, &map_y, q * BOX, col0, &full[q]);
        }
      }
    }
    return;
  }

  // ---- consumer warpgroups ----
  setmaxnreg_inc<Tr::kConsumerRegs>();
  const int ctid = tid - 128;                    // 0 .. 255
  const int cwarp = ctid / 32, lane = ctid % 32; // GradEpilogue's warp: slab (cwarp % 4, half)
  const int half = cwarp / 4;                    // the consumer warpgroup: columns 64 half ..
  const int wq = cwarp % 4, g = lane >> 2, t = lane & 3;
  GradEpilogue<Tr, kSim, kLabels, kSym, kMode> epi(bp, scale, cwarp, lane);
  epi.begin_rows(row0);
  float acc[1][Tr::kNTiles][4];
  float(&sd)[4 * Tr::kNTiles] = *reinterpret_cast<float(*)[4 * Tr::kNTiles]>(&acc[0][0][0]);
  float o[SLOTS][BOX / 2]; // out_w[slot][64 x 64], the wgmma accumulator layout
  char* const my_c = Cs + half * Tr::kCBoxBytes;
  auto release = [&](int q) {
    if (lane == 0)
      mbarrier_arrive(&empty[q]);
  };
  // This consumer multiplies box q in its gradient items (so frees it after them).
  auto gradient_box = [&](int q) { return q % 2 == half && q < 2 * gitems; };
#pragma unroll
  for (int k = 0; k < SLOTS; ++k)
#pragma unroll
    for (int i = 0; i < BOX / 2; ++i)
      o[k][i] = 0.0f;
  mbarrier_wait_parity(x_full, 0);
#pragma unroll 1
  for (int cc = 0; cc < ncols; ++cc) {
    const unsigned parity = unsigned(cc & 1);
#pragma unroll 1
    for (int q = 0; q < chunks; ++q) { // logit items: S_w (+)= X_q . Y_q[rows of w]^T
      mbarrier_wait_parity(&full[q], parity);
      const char* const xq = xs + q * Tr::kXBytes;
      const char* const y_rows =
          ys + q * Tr::kBoxBytes + half * BOX * (KC * sizeof(typename Tr::S));
      wgmma_fence_operand(sd);
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < KC / Tr::kK; ++kk) // k slice kk starts 32 bytes into each row
        wgmma_ss<BOX, kType>(sd, wgmma_desc_k_major(xq + 32 * kk, gmma::Swizzle::b128),
                             wgmma_desc_k_major(y_rows + 32 * kk, gmma::Swizzle::b128),
                             (q > 0 || kk > 0) ? 1 : 0);
      wgmma_commit();
      wgmma_wait<0>();
      if (!gradient_box(q))
        release(q);
    }
    for (int q = chunks; q < nbox; ++q) // boxes past d that the other consumer multiplies
      if (!gradient_box(q))
        release(q);
    // The tile's logits are complete: its coefficients, as bf16 operands.
    wgmma_fence_operand(sd);
    float amax[R];
#pragma unroll
    for (int r = 0; r < R; ++r)
      amax[r] = 0.0f;
    epi.tile(acc, row0, (ct_begin + cc) * BN, true, amax);
    if (gitems == 0)
      continue;
    Tr::epilogue_sync(); // both consumers retired the previous tile's gradient wgmmas
#pragma unroll
    for (int r = 0; r < R; ++r) {
      // Row local_row(r) (= g mod 8) of the 128-byte swizzled box: the 16-byte chunk nt lands at
      // chunk nt ^ g, i.e. at row_off ^ (nt << 4) (row_off's bits 4-6 are g; the swizzle of
      // gmma::swizzle_address with the row's bits known).  ptxas still hoists the 16 addresses
      // out of the tile loop and spills them (bench/RESULTS.md).
      const uint32_t row_off = uint32_t(epi.local_row(r) * 128 + 4 * t + 16 * g);
#pragma unroll
      for (int nt = 0; nt < Tr::kNTiles; ++nt)
        *reinterpret_cast<uint32_t*>(my_c + (row_off ^ uint32_t(nt << 4))) =
            pack2<T>(acc[0][nt][2 * r], acc[0][nt][2 * r + 1]);
    }
    fence_proxy_async_shared(); // the plain stores, before the wgmmas (async proxy) read them
    Tr::epilogue_sync();
    // Gradient items: out_w[j] += C . Y box 2j + half (slot j: compile-time registers).
#pragma unroll
    for (int j = 0; j < SLOTS; ++j) {
      if (j >= gitems)
        break;
      const int q = 2 * j + half;
      mbarrier_wait_parity(&full[q], parity); // (done already for a box the logits read)
      const char* const yb = ys + q * Tr::kBoxBytes;
      wgmma_fence_operand(o[j]);
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < BN / Tr::kK; ++kk) // C: box kk / 4, 32 bytes per k16 slice;
        wgmma_ss<BOX, kType, 0, 1>(            // Y: 16 rows of 128 bytes per k16 slice
            o[j],
            wgmma_desc_k_major(Cs + (kk / 4) * Tr::kCBoxBytes + 32 * (kk % 4), gmma::Swizzle::b128),
            gmma::mn_major_swizzled_descriptor(wgmma_smem_address(yb + kk * 16 * 128),
                                               gmma::Swizzle::b128, 0),
            1);
      wgmma_commit();
      wgmma_wait<0>();
      release(q);
    }
  }
#pragma unroll
  for (int j = 0; j < SLOTS; ++j)
    wgmma_fence_operand(o[j]);
  epi.finish_row_sums(scratch, row_sum, row_dot, ctid);
  if (partial && ctid < BM && row0 + ctid < Rn) { // this split's row sums
    float* const sp = bp.sum_partial + 2 * (split * Rn + row0 + ctid);
    sp[0] = row_sum[ctid];
    sp[1] = row_dot[ctid];
  }
  if (want_scale) {
    const float total =
        block_sum<Tr::kConsumerThreads>(epi.gs, scratch, ctid, [] { Tr::epilogue_sync(); });
    if (ctid == 0)
      bp.scale_partial[blockIdx.x] = total;
  }
  if (out == nullptr)
    return;
  // out = alpha_r acc + beta_r x_r, once, in the output dtype (or this split's partials): the
  // thread's accumulators straight from registers (row 16 wq + g + 8 h, column 8 e + 2 t + c of
  // its slab of each slot).
  const float* nx = kTr ? p.norm_b : p.norm_a;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = wq * 16 + g + 8 * h;
    const int64_t gr = row0 + r;
    if (gr >= Rn)
      continue;
    const float nrm = kSim == Similarity::dot ? 0.0f : nx[gr];
#pragma unroll
    for (int j = 0; j < SLOTS; ++j)
#pragma unroll
      for (int e = 0; e < BOX / 8; ++e)
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          const int64_t gk = j * GC + half * BOX + 8 * e + 2 * t + c;
          if (gk >= p.d)
            continue;
          const float a = o[j][4 * e + 2 * h + c];
          if (partial) {
            bp.grad_partial[(split * Rn + gr) * p.d + gk] = a;
            continue;
          }
          const float xv = kSim == Similarity::dot ? 0.0f : to_float(x[gr * ldx + gk]);
          out[gr * p.d + gk] =
              from_float<T>(gradient_value(kSim, scale, nrm, row_sum[r], row_dot[r], a, xv));
        }
  }
}

} // namespace kernels
} // namespace flashnce
