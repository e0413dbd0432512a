// The Hopper (sm_90a) forward of the fused contrastive loss: TMA + mbarrier + wgmma, warp
// specialised (FlashAttention-3's producer / consumer split, without the value matrix).
//
// Math: forward_mma_kernel.cuh's (DESIGN.md §1): s_ij = scale * sim(a_i, b_j), the online LSE per
// row (and per column for SYMMETRIC) over Z(i), the positives' mean, per-block partial statistics
// merged in index order by stats_finalize_kernel.  Never materialised: the n x m logits, any logit
// tile in shared memory, any per-element flag.
//
// Roles (ForwardWgmmaTraits): warpgroup 0 is the producer: after setmaxnreg.dec one elected thread
// walks the block's items (row tile, column tile, 64-deep chunk) and for each waits until its
// stage is empty, announces the stage's bytes on the stage's "full" mbarrier and issues the TMA
// loads (boxes of 128 rows x 128 bytes, 128-byte swizzle).  Rows past n / m and depth past d are
// zero filled by the TMA unit, so ragged shapes need no code here (the epilogue masks the rows
// and columns outside n x m).  Two layouts, uniform per launch:
//   resident (d <= 512, 8 chunks): a's row tile is loaded whole (all its chunks on one "a_full"
//     mbarrier) once per row tile and read by every column tile of the block's sweep; a stage
//     holds b's chunk only.  The next row tile's load waits on "a_empty" (one arrival per consumer
//     warp after its last wgmma on the tile).  L2 traffic per tile: b's tile, not a's and b's
//     (a once per ct_count tiles; 32 column tiles per block at n = m = 16384 ROWS).  The reload
//     is not double buffered: the consumers wait for it once per row tile;
//   streaming (d > 512): each stage holds a's and b's chunk, as for every item.
// Warpgroups 1 and 2 are the consumers (setmaxnreg.inc): each waits
// for the stage to be full, issues 4 wgmma m64n128k16 on its 64 rows against the 128 columns
// straight from the swizzled stage (descriptors: gmma_layout.h) as one group, and keeps that group
// in flight while it waits for the previous chunk's group (wgmma.wait_group 1), whose stage it
// then frees (one arrival per consumer warp): the tensor cores always have the next chunk's work
// queued (CUTLASS's one-MMA-in-flight pipeline).  After a tile's last chunk everything retires
// (wait_group 0) and the 64 accumulators of each thread hold its warp's 16 x 128 logits in the
// mma.m16n8 fragment layout, and ForwardEpilogue runs on them exactly as in the mma.sync kernel.
// The ring runs across tile boundaries: the producer loads the next tile's chunks while the
// consumers run the epilogue.
//
// Synchronisation: only mbarriers between producer and consumers; the epilogue's block-wide steps
// use a named barrier of the 256 consumer threads (Tr::epilogue_sync), never __syncthreads after
// the roles split.  SYMMETRIC: an extra consumer barrier after each tile's column merge, because
// no main-loop barrier orders the merge's reads of col_scratch before the next tile's writes.
//
// Hazards: as forward_mma_kernel (max2 == -inf handled in the updates).  TMA coordinates are
// 32-bit: the dispatch only picks this kernel when n, m and d fit (and the operands' base and row
// pitch are 16-byte aligned, as TMA requires); otherwise the mma.sync kernel runs.
#pragma once

#include <cstdint>

#include "kernels/common/mbarrier.cuh"
#include "kernels/common/shared_memory.cuh"
#include "kernels/common/tma.cuh"
#include "kernels/common/warpgroup.cuh"
#include "kernels/common/wgmma.cuh"
#include "kernels/loss/forward_mma_kernel.cuh"

namespace flashnce {
namespace kernels {

template <class Tr, Similarity kSim, bool kLabels, bool kSym>
__global__ void __launch_bounds__(Tr::kThreads, 1)
    forward_wgmma_kernel(__grid_constant__ const ForwardParams fp,
                         const __grid_constant__ CUtensorMap map_a,
                         const __grid_constant__ CUtensorMap map_b) {
  constexpr int BM = Tr::kBlockM, BN = Tr::kBlockN, KC = Tr::kChunk, ST = Tr::kStages;
  constexpr WgmmaType kType = Tr::kBf16 ? WgmmaType::bf16 : WgmmaType::f16;
  const ProblemParams& p = fp.pr;
  // The stages at a 1024-byte boundary of the shared window (the swizzle's repeat); then the
  // epilogue scratch and the barriers.
  char* raw = dynamic_shared_memory<char>();
  char* const smem = raw + (1024u - wgmma_smem_address(raw) % 1024u) % 1024u;
  char* const scratch = smem + Tr::kRegionBytes;
  const PartialScratch col_scratch(scratch, Tr::kWarpsM * BN);
  const PartialScratch row_scratch(scratch + Tr::kColScratchBytes, BM);
  auto* const full =
      reinterpret_cast<std::uint64_t*>(scratch + Tr::kColScratchBytes + Tr::kRowScratchBytes);
  std::uint64_t* const empty = full + ST;
  std::uint64_t* const a_full = empty + ST;  // the resident row tile of a: loaded
  std::uint64_t* const a_empty = a_full + 1; // and no longer read

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
  // Uniform per launch: a's row tile resident (chunks <= 8), else both operands stream.  Resident:
  // a's chunk q at smem + q kOperandBytes, stage s (b only) at smem + kResidentBytes + s
  // kOperandBytes; streaming: stage s = [a's chunk | b's chunk] at smem + s kStageBytes.
  const bool resident = chunks <= Tr::kResidentChunks;
  auto a_chunk = [&](int s, int64_t q) -> char* {
    return resident ? smem + q * Tr::kOperandBytes : smem + s * Tr::kStageBytes;
  };
  auto b_chunk = [&](int s) -> char* {
    return resident ? smem + Tr::kResidentBytes + s * Tr::kOperandBytes
                    : smem + s * Tr::kStageBytes + Tr::kOperandBytes;
  };

  const int tid = threadIdx.x;
  if (tid == 0) {
    for (int s = 0; s < ST; ++s) {
      mbarrier_init(&full[s], 1);                      // the producer's arrive + the tx bytes
      mbarrier_init(&empty[s], unsigned(Tr::kWarpsM)); // one arrival per consumer warp
    }
    mbarrier_init(a_full, 1);
    mbarrier_init(a_empty, unsigned(Tr::kWarpsM));
    fence_mbarrier_init();
  }
  __syncthreads(); // the last block-wide barrier: the roles split here

  if (tid < 128) { // ---- producer warpgroup ----
    setmaxnreg_dec<Tr::kProducerRegs>();
    if (tid == 0) {
      tma_prefetch_descriptor(&map_a);
      tma_prefetch_descriptor(&map_b);
      int64_t k = 0, c = 0, q = 0;
#pragma unroll 1
      for (int64_t it = 0; it < items; ++it) {
        const int s = int(it % ST);
        const int64_t round = it / ST;
        const int row0 = int((group + k * fp.row_groups) * BM);
        const int col0 = int((ct_begin + c) * BN);
        // Row tile k's a, once: after the consumers' last read of row tile k - 1's.
        if (resident && c == 0 && q == 0) {
          if (k > 0)
            mbarrier_wait_parity(a_empty, unsigned((k - 1) & 1));
          mbarrier_arrive_expect_tx(a_full, std::uint32_t(chunks * Tr::kOperandBytes));
          for (int64_t qa = 0; qa < chunks; ++qa)
            tma_load_2d(a_chunk(0, qa), &map_a, int(qa * KC), row0, a_full);
        }
        if (round > 0) // the consumers freed this stage `round` times
          mbarrier_wait_parity(&empty[s], unsigned((round - 1) & 1));
        mbarrier_arrive_expect_tx(&full[s],
                                  std::uint32_t(resident ? Tr::kOperandBytes : Tr::kStageBytes));
        if (!resident)
          tma_load_2d(a_chunk(s, q), &map_a, int(q * KC), row0, &full[s]);
        tma_load_2d(b_chunk(s), &map_b, int(q * KC), col0, &full[s]);
        if (++q == chunks) {
          q = 0;
          if (++c == ct_count) {
            c = 0;
            ++k;
          }
        }
      }
    }
    return;
  }

  // ---- consumer warpgroups ----
  setmaxnreg_inc<Tr::kConsumerRegs>();
  const int ctid = tid - 128;                    // 0 .. 255
  const int cwarp = ctid / 32, lane = ctid % 32; // the epilogue's row slab: rows 16 cwarp ..
  const int half = cwarp / 4;                    // the consumer warpgroup: rows 64 half ..
  ForwardEpilogue<Tr, kSim, kLabels, kSym> epi(p, *p.logit_scale, cwarp, lane);
  float acc[1][Tr::kNTiles][4];
  float(&d)[4 * Tr::kNTiles] = *reinterpret_cast<float(*)[4 * Tr::kNTiles]>(&acc[0][0][0]);
  PartialStats* const row_out = fp.row_partial + split * p.n;
  PartialStats* const col_run_base = kSym ? fp.col_partial_rows + group * p.m : nullptr;
  int64_t ck = 0, cc = 0, cq = 0;
  int in_flight = -1; // the stage whose wgmma group may still run (its release waits for it)
#pragma unroll 1
  for (int64_t it = 0; it < items; ++it) {
    const int s = int(it % ST);
    if (resident && cc == 0 && cq == 0) // row tile ck's a has arrived
      mbarrier_wait_parity(a_full, unsigned(ck & 1));
    mbarrier_wait_parity(&full[s], unsigned((it / ST) & 1));
    const char* const a_rows = a_chunk(s, cq) + half * 64 * (KC * sizeof(typename Tr::S));
    const char* const b_rows = b_chunk(s);
    wgmma_fence_operand(d);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < KC / Tr::kK; ++kk) // k slice kk starts 32 bytes into each swizzled row
      wgmma_ss<Tr::kBlockN, kType>(d, wgmma_desc_k_major(a_rows + 32 * kk, gmma::Swizzle::b128),
                                   wgmma_desc_k_major(b_rows + 32 * kk, gmma::Swizzle::b128),
                                   (cq > 0 || kk > 0) ? 1 : 0);
    wgmma_commit();
    if (cq == chunks - 1) { // the tile's last chunk: all its wgmmas retired, its logits complete
      wgmma_wait<0>();
      wgmma_fence_operand(d);
      if (lane == 0) { // this warp's wgmmas no longer read these stages
        if (in_flight >= 0)
          mbarrier_arrive(&empty[in_flight]);
        mbarrier_arrive(&empty[s]);
        if (resident && cc == ct_count - 1) // nor the row tile's a
          mbarrier_arrive(a_empty);
      }
      in_flight = -1;
    } else { // keep this chunk's group in flight; the previous one has retired
      wgmma_wait<1>();
      if (lane == 0 && in_flight >= 0)
        mbarrier_arrive(&empty[in_flight]);
      in_flight = s;
    }
    if (cq == chunks - 1) {
      const int64_t row0 = (group + ck * fp.row_groups) * BM;
      const int64_t col0 = (ct_begin + cc) * BN;
      if (cc == 0)
        epi.begin_rows(row0);
      epi.tile(acc, row0, col0, col_scratch, kSym ? col_run_base + col0 : nullptr, ck == 0, ctid);
      if constexpr (kSym)
        Tr::epilogue_sync(); // the column merge has read col_scratch (see the header)
      if (cc == ct_count - 1)
        epi.end_rows(row0, row_scratch, row_out);
    }
    if (++cq == chunks) {
      cq = 0;
      if (++cc == ct_count) {
        cc = 0;
        ++ck;
      }
    }
  }
}

} // namespace kernels
} // namespace flashnce
