// The Hopper (sm_90a) gradient kernel of the fused contrastive loss: TMA + mbarrier + wgmma, warp
// specialised, the gradient accumulators in registers across the whole sweep of column tiles.
//
// Status: experimental.  Correct on the emulator (the emulated kernel suite runs it: flashnce_emu
// defines FLASHNCE_WGMMA_BACKWARD), not dispatched on GPUs: ptxas (CUDA 13.0, sm_90a) spills in the
// consumers (128 slot + 32 logit accumulators per thread next to the epilogue's state).  Keeping
// one wgmma group in flight across items (wait_group 1) made ptxas put a WARPGROUP.DEPBAR after
// every HGMMA (36 of 36); with wait_group 0 after every item (now) each item's HGMMAs chain (5
// DEPBARs per instantiation).  2 slots instead of 4 cut the spills (~2.4k -> ~0.5k static
// STL/LDL).  Next: 2-3 slots, then measure against grad_mma_kernel in the kernel report.
//
// Math: backward_mma_kernel.cuh's (DESIGN.md §1): with P_ij = exp(s_ij - LSE_i) on Z(i),
//   G_ij = w_i (P_ij - [j in P(i)] / |P(i)|)  +  v_j (Pc_ij - [i in P^c(j)] / |P^c(j)|)   (SYM)
//   out_r = alpha_r sum_c C_rc y_c + beta_r x_r,   C = G (x |y^_c|^-1 for COSINE), per launch
// with the same launches (rows = a, or the transposed launch rows = b), the same coefficient
// epilogue (GradEpilogue, on each warp's 16 x 64 part of the wgmma accumulators), the same column
// splits and partials (grad_split_reduce_kernel).  Never materialised: s, P, G (one bf16 tile of
// coefficients at a time, in shared memory as the gradient GEMM's operand).
//
// Roles (BackwardWgmmaTraits): warpgroup 0 is the producer: one elected thread walks the block's
// items and for each waits until its stage is empty, announces its bytes on the stage's "full"
// mbarrier and issues the TMA loads (128-byte swizzle; rows past n / m and columns past d are zero
// filled, so ragged shapes need no code here).  Per column tile there are `chunks` logit items
// (the 64-deep chunk q of the 64 block rows x and of the 128 tile rows y) and then `gitems`
// gradient items (columns dc + 128 i .. of the 128 tile rows y, as two 64-column boxes).
// Warpgroups 1 and 2 are the consumers; consumer w:
//   logit item    S_w[64 x 64] (+)= X[64 x 64] . Y[64 w .. 64 w + 63, 64 q ..]^T   (4 wgmma k16)
//   tile's end    the coefficients C on S_w (GradEpilogue), rounded to bf16 into C box w
//                 (64 rows x 128 bytes, swizzled like a TMA box: the A operand, K-major)
//   gradient item out_w[slot i][64 x 64] += C[64 x 128] . Y[128 x (dc + 128 i + 64 w ..)]
//                 (8 wgmma k16; Y's box w is read MN-major: rows = the K dimension)
// Each item is one wgmma group that the consumer retires (wait_group 0) before freeing the item's
// stage (one arrival per consumer warp; a warp arrives only after waiting for the stage to be
// full, so its arrivals never run ahead of the ring); the producer's ring keeps the next items'
// loads in flight meanwhile.  The
// gradient items of a tile run as an unrolled loop over the register slots (no runtime index
// into the accumulators, no branch around a wgmma but the uniform trip count).
//
// The coefficient tile: before a tile's coefficients are written, both consumers have retired
// every wgmma of the previous tile (each item's wait_group 0; then a consumer named barrier), and
// after the writes a proxy fence and a second barrier make them visible to both consumers' wgmmas
// (async proxy).  After the pass's last tile: row sums (first pass), the grad_logit_scale partial,
// and out = alpha_r acc + beta_r x_r straight from the registers (or the split's partials).
//
// Hazards: as backward_mma_kernel (w == 0 rows read no statistics; -inf LSE of invalid rows).  TMA
// coordinates are 32-bit: the dispatch picks this kernel only when n, m, d fit and the operands'
// bases and row pitches are 16-byte aligned; otherwise the mma.sync kernel runs.  A gradient box
// entirely past d (d % 128 in 1..64) is loaded zero filled and multiplied like the others.
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
  constexpr int BM = Tr::kBlockM, BN = Tr::kBlockN, KC = Tr::kChunk, ST = Tr::kStages;
  constexpr int GC = Tr::kGradCols, BOX = Tr::kBox, SLOTS = Tr::kSlots;
  constexpr int R = 2 * Tr::kMTiles;
  constexpr WgmmaType kType = WgmmaType::bf16;
  constexpr bool kTr = kMode == GradLaunch::columns;
  const ProblemParams& p = bp.pr;
  char* raw = dynamic_shared_memory<char>();
  char* const smem = raw + (1024u - wgmma_smem_address(raw) % 1024u) % 1024u;
  char* const Cs = smem + ST * Tr::kStageBytes; // [kBlockN / kBox] boxes of 64 rows x 128 B
  float* const scratch = reinterpret_cast<float*>(Cs + Tr::kCBytes); // [2 kWarpsN][BM]
  float* const row_sum = scratch + 2 * Tr::kWarpsN * BM;             // [BM]
  float* const row_dot = row_sum + BM;                               // [BM]
  auto* const full = reinterpret_cast<std::uint64_t*>(row_dot + BM);
  std::uint64_t* const empty = full + ST;

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
  // 32-bit counters: the dispatch keeps n, m and d below 2^31 - 256 (TMA coordinates).
  const int chunks = int((p.d + KC - 1) / KC);
  const int bda = bp.grad_pass_cols; // a multiple of GC, at most kPassCols
  const int passes = out != nullptr ? int((p.d + bda - 1) / bda) : 1;
  const int ncols = int(col_tiles);
  if (col_tiles <= 0)
    return; // uniform per block (the host never makes such a block)

  const int tid = threadIdx.x;
  if (tid == 0) {
    for (int s = 0; s < ST; ++s) {
      mbarrier_init(&full[s], 1);                                    // the producer's arrive + tx
      mbarrier_init(&empty[s], unsigned(Tr::kConsumerThreads / 32)); // one per consumer warp
    }
    fence_mbarrier_init();
  }
  __syncthreads(); // the last block-wide barrier: the roles split here

  // The items of pass `pass`: per column tile, `chunks` logit items then `gitems` gradient items.
  auto grad_items = [&](int pass) -> int {
    if (out == nullptr)
      return 0;
    const int64_t dc = int64_t(pass) * bda, width = p.d - dc < bda ? p.d - dc : bda;
    return int((width + GC - 1) / GC);
  };

  if (tid < 128) { // ---- producer warpgroup ----
    setmaxnreg_dec<Tr::kProducerRegs>();
    if (tid == 0) {
      tma_prefetch_descriptor(&map_x);
      tma_prefetch_descriptor(&map_y);
      // The ring position (stage s, its round's parity) runs across tiles and passes; the first
      // round of each stage needs no wait.
      int s = 0;
      unsigned phase = 0;
      bool wrapped = false;
#pragma unroll 1
      for (int pass = 0; pass < passes; ++pass) {
        const int gitems = grad_items(pass), per_tile = chunks + gitems;
        const int dc = pass * bda;
#pragma unroll 1
        for (int cc = 0; cc < ncols; ++cc)
#pragma unroll 1
          for (int q = 0; q < per_tile; ++q) {
            if (wrapped) // the consumers freed this stage in the previous round
              mbarrier_wait_parity(&empty[s], phase ^ 1u);
            char* const st = smem + s * Tr::kStageBytes;
            const int col0 = int((ct_begin + cc) * BN);
            if (q < chunks) {
              mbarrier_arrive_expect_tx(&full[s], std::uint32_t(Tr::kLogitBytes));
              tma_load_2d(st, &map_x, int(q * KC), int(row0), &full[s]);
              tma_load_2d(st + Tr::kXBytes, &map_y, int(q * KC), col0, &full[s]);
            } else {
              const int c = dc + int(q - chunks) * GC;
              mbarrier_arrive_expect_tx(&full[s], std::uint32_t(Tr::kGradBytes));
#pragma unroll
              for (int b = 0; b < Tr::kConsumers; ++b)
                tma_load_2d(st + b * Tr::kBoxBytes, &map_y, c + b * BOX, col0, &full[s]);
            }
            if (++s == ST) {
              s = 0;
              phase ^= 1u;
              wrapped = true;
            }
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
  int s = 0; // the ring position: stage s in a round of parity `phase`
  unsigned phase = 0;
  auto release = [&](int stage) {
    if (lane == 0)
      mbarrier_arrive(&empty[stage]);
  };
  // After an item's wgmmas are committed: wait for them (wait_group 0) and free the item's stage;
  // then the ring advances.  (Keeping one group in flight across items, wait_group 1, makes ptxas
  // put a WARPGROUP.DEPBAR after every HGMMA here: see the status above.)
  auto retire = [&]() {
    wgmma_wait<0>();
    release(s);
    if (++s == ST) {
      s = 0;
      phase ^= 1u;
    }
  };

#pragma unroll 1
  for (int pass = 0; pass < passes; ++pass) {
    const bool first = pass == 0;
    const int gitems = grad_items(pass);
    const int64_t dc = int64_t(pass) * bda;
#pragma unroll
    for (int k = 0; k < SLOTS; ++k)
#pragma unroll
      for (int i = 0; i < BOX / 2; ++i)
        o[k][i] = 0.0f;
#pragma unroll 1
    for (int cc = 0; cc < ncols; ++cc) {
#pragma unroll 1
      for (int q = 0; q < chunks; ++q) { // logit items: S_w (+)= X . Y_w^T over chunk q
        mbarrier_wait_parity(&full[s], phase);
        const char* const st = smem + s * Tr::kStageBytes;
        const char* const y_rows = st + Tr::kXBytes + half * BOX * (KC * sizeof(typename Tr::S));
        wgmma_fence_operand(sd);
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < KC / Tr::kK; ++kk) // k slice kk starts 32 bytes into each row
          wgmma_ss<BOX, kType>(sd, wgmma_desc_k_major(st + 32 * kk, gmma::Swizzle::b128),
                               wgmma_desc_k_major(y_rows + 32 * kk, gmma::Swizzle::b128),
                               (q > 0 || kk > 0) ? 1 : 0);
        wgmma_commit();
        retire();
      }
      // The tile's logits are complete: its coefficients, as bf16 operands.
      wgmma_fence_operand(sd);
      float amax[R];
#pragma unroll
      for (int r = 0; r < R; ++r)
        amax[r] = 0.0f;
      epi.tile(acc, row0, (ct_begin + cc) * BN, first, amax);
      if (gitems == 0)
        continue;
      Tr::epilogue_sync(); // both consumers retired the previous tile's gradient wgmmas
#pragma unroll
      for (int r = 0; r < R; ++r) {
        // Row local_row(r) (= g mod 8) of the 128-byte swizzled box: the 16-byte chunk nt lands at
        // chunk nt ^ g, i.e. at row_off ^ (nt << 4) (row_off's bits 4-6 are g; the swizzle of
        // gmma::swizzle_address with the row's bits known).  ptxas still hoists the 16 addresses
        // out of the tile loop and spills them (88 B; bench/RESULTS.md).
        const uint32_t row_off = uint32_t(epi.local_row(r) * 128 + 4 * t + 16 * g);
#pragma unroll
        for (int nt = 0; nt < Tr::kNTiles; ++nt)
          *reinterpret_cast<uint32_t*>(my_c + (row_off ^ uint32_t(nt << 4))) =
              pack2<T>(acc[0][nt][2 * r], acc[0][nt][2 * r + 1]);
      }
      fence_proxy_async_shared(); // the plain stores, before the wgmmas (async proxy) read them
      Tr::epilogue_sync();
      // Gradient items: out_w[j] += C . Y box `half` of item j (slot j: compile-time registers;
      // a box past d is zero filled and multiplied all the same, no branch around the wgmmas).
#pragma unroll
      for (int j = 0; j < SLOTS; ++j) {
        if (j >= gitems)
          break;
        mbarrier_wait_parity(&full[s], phase);
        const char* const yb = smem + s * Tr::kStageBytes + half * Tr::kBoxBytes;
        wgmma_fence_operand(o[j]);
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < BN / Tr::kK; ++kk) // C: box kk / 4, 32 bytes per k16 slice;
          wgmma_ss<BOX, kType, 0, 1>(            // Y: 16 rows of 128 bytes per k16 slice
              o[j],
              wgmma_desc_k_major(Cs + (kk / 4) * Tr::kCBoxBytes + 32 * (kk % 4),
                                 gmma::Swizzle::b128),
              gmma::mn_major_swizzled_descriptor(wgmma_smem_address(yb + kk * 16 * 128),
                                                 gmma::Swizzle::b128, 0),
              1);
        wgmma_commit();
        retire();
      }
    }
#pragma unroll
    for (int j = 0; j < SLOTS; ++j)
      wgmma_fence_operand(o[j]);
    if (first) {
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
    }
    if (out == nullptr)
      break;
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
            const int64_t gk = dc + j * GC + half * BOX + 8 * e + 2 * t + c;
            if (gk >= p.d || gk >= dc + bda)
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
}

} // namespace kernels
} // namespace flashnce
