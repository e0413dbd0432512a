// Tile configurations of the loss kernels.  A traits struct fixes every size the kernels are
// compiled with and checks the invariants the kernels rely on; host/cuda/dispatch.cpp chooses one
// with a constexpr function of (arch, dtype, d).
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "kernels/common/mbarrier.cuh"
#include "kernels/common/numeric.cuh"
#include "kernels/loss_params.h"

namespace flashnce {
namespace kernels {

// The generic configuration: FFMA micro-tiles from shared memory, every dtype loaded and converted
// to f32, f32 accumulation.  Correct for any n, m, d, stride and alignment (ragged edges are
// zero-filled / masked); the reference path every other configuration is checked against.
//
//   forward : a block owns kBlockM rows of `a`, streams kBlockN-row tiles of `b` and the depth d
//             in kBlockK chunks; each thread owns a kThreadM x kThreadN micro-tile of the logits.
//   backward: the same logit tile, then acc[kBlockM x kBlockD] += G[kBlockM x kBlockN] * Y[kBlockN
//             x kBlockD] with the same micro-tile shape; d is covered in kBlockD output chunks.
template <typename Element> struct GenericTraits {
  using T = Element;
  static constexpr int kBlockM = 64;
  static constexpr int kBlockN = 64;
  static constexpr int kBlockK = 16;
  static constexpr int kBlockD = 64;
  static constexpr int kThreadM = 4;
  static constexpr int kThreadN = 4;
  static constexpr int kThreadsM = kBlockM / kThreadM; // thread rows of the micro-tile grid
  static constexpr int kThreadsN = kBlockN / kThreadN; // thread columns
  static constexpr int kThreads = kThreadsM * kThreadsN;
  static constexpr int kReduceThreads = 256; // single-block reductions
  // Row of the f32 logit / coefficient stage [kBlockM][kStageLd] (odd: the FFMA micro-tiles'
  // column reads spread over the banks).
  static constexpr int kStageLd = kBlockN + 1;

  static_assert(kBlockM % kThreadM == 0 && kBlockN % kThreadN == 0, "micro-tiles must tile");
  static_assert(kThreads == 256, "launch bounds and the loaders assume 256 threads");
  static_assert((kBlockM * kBlockK) % kThreads == 0 && (kBlockN * kBlockK) % kThreads == 0,
                "each thread loads a whole number of operand elements per chunk");
  static_assert(kBlockD == kBlockN, "the gradient GEMM reuses the logit GEMM's micro-tile grid");
  static_assert((kBlockK * kBlockD) % kThreads == 0, "gradient operand chunk loads evenly");
  static_assert(kBlockN % kBlockK == 0, "the gradient GEMM walks the tile's columns in k-chunks");

  // The logit GEMM runs on FFMA (no tensor cores).
  static constexpr bool kMma = false;
  static constexpr bool kWgmma = false;
  static constexpr bool kTf32 = false;
  static constexpr bool kBf16 = false;
  // Operand region: As[K][M] + Bs[K][N] (f32); the gradient kernel reuses it for its Y chunk.
  static constexpr size_t kOperandBytes = sizeof(float) * (kBlockK * kBlockM + kBlockK * kBlockN);
  static_assert(kOperandBytes >= sizeof(float) * kBlockK * kBlockD, "Y chunk fits");

  // Forward main kernel: operands + S[M][N+1] (f32) + flags[M][N] (bytes).
  static constexpr size_t kForwardSmem =
      kOperandBytes + sizeof(float) * kBlockM * kStageLd + size_t(kBlockM) * kBlockN;
  // Gradient kernel: operands (also the gradient GEMM's Y chunk / stages), C[M][N+1],
  // 2 x GradStats per tile row and per tile column, norms of both sides, rowsum/rowdot:
  // kGradSmemFixed (the scale partials' reduction reuses the coefficient tile); then the f32
  // accumulator [M][pass columns], its width chosen per launch from the device's shared memory
  // (grad_pass_columns below).
  static constexpr size_t kGradSmemFixed = kOperandBytes + sizeof(float) * kBlockM * kStageLd +
                                           sizeof(GradStats) * 2 * (kBlockM + kBlockN) +
                                           sizeof(float) * (kBlockM + kBlockN) +
                                           sizeof(float) * (2 * kBlockM);
  static_assert(size_t(kBlockM) * kStageLd >= size_t(kThreads), "the scale reduction fits C");
  static_assert(kForwardSmem <= 48 * 1024, "the forward runs without the > 48 KB opt-in");
  // 99 KB: the largest opt-in of sm_86 / sm_89, which run the sm_80 binary.
  static_assert(kGradSmemFixed + sizeof(float) * kBlockM * 256 <= 99 * 1024,
                "d <= 256 takes one gradient pass on every sm_80+ GPU");
};

// Tensor-core configuration (sm_80+), the tag TileConfig::mma selects: run_forward / run_backward
// launch the tensor-core kernels on ForwardMmaTraits / BackwardMmaTraits (below) for it; only the
// small kernels (norms, counts, weights, merges, reductions) are shared with GenericTraits.
// Element = bfloat16_t / half_t: mma.sync m16n8k16 on the raw 16-bit operands with f32 sums;
// float: TF32 m16n8k8 (inputs rounded to 10-bit mantissas; only when the caller sets allow_tf32).
template <typename Element> struct MmaTraits : GenericTraits<Element> {
  static constexpr bool kMma = true;
  static constexpr bool kTf32 = sizeof(Element) == 4;
  static constexpr bool kBf16 = std::is_same<Element, bfloat16_t>::value;
};

// Hopper configuration (sm_90a), the tag TileConfig::wgmma selects: the forward's main kernel is
// forward_wgmma_kernel on ForwardWgmmaTraits (below); everything else, the backward included, is
// the tensor-core configuration's.  bf16 / f16 only.
template <typename Element> struct WgmmaTraits : MmaTraits<Element> {
  static constexpr bool kWgmma = true;
  static_assert(sizeof(Element) == 2, "wgmma on 16-bit inputs (TF32 stays on mma.sync)");
};

// Whether 8 rows of `row_bytes` each (an ldmatrix phase: 16 bytes of each) fall in disjoint banks.
constexpr bool ldmatrix_rows_conflict_free(size_t row_bytes) {
  unsigned used = 0;
  for (size_t r = 0; r < 8; ++r)
    for (size_t w = 0; w < 4; ++w) {
      const unsigned bank = unsigned((r * row_bytes / 4 + w) % 32);
      if (used & (1u << bank))
        return false;
      used |= 1u << bank;
    }
  return true;
}
static_assert(ldmatrix_rows_conflict_free(80) && !ldmatrix_rows_conflict_free(64),
              "80-byte rows are conflict-free, 64-byte rows are not");

// The tensor-core forward with the logits in registers (FlashAttention-2's forward, without the
// value matrix; forward_mma_kernel.cuh): a block computes 128 x 128 logit tiles with 8 warps in a
// 4 (rows) x 2 (columns) grid, each warp a 32 x 64 slab of the tile as 2 x 8 mma accumulator
// fragments (64 f32 registers per lane) on which the online max / sum-exp and the masks run; the
// depth streams in kChunk-deep stages (64 bytes per operand row) through a kStages-deep cp.async
// ring that runs across tile boundaries.  Element = bfloat16_t / half_t: m16n8k16; float: TF32
// m16n8k8 (allow_tf32).
// Why these sizes (the kernel report's counts, bench/RESULTS.md): per k16 step a warp issues
// 16 mma for 6 ldmatrix.x4 (the 64 x 64 / 16 x 32 warp layout it replaced: 4 for 3), 1.5 shared
// wavefronts per mma instead of 3, and a 128 x 128 tile reads 2 x 128 operand rows per 128 x 128
// x depth MACs (32 -> 64 FLOP per L2 byte).
template <typename Element> struct ForwardMmaTraits {
  using T = Element;
  static constexpr bool kTf32 = sizeof(Element) == 4;
  static constexpr bool kBf16 = std::is_same<Element, bfloat16_t>::value;
  using S = std::conditional_t<kTf32, float, uint16_t>; // shared element: the raw operand bits
  static constexpr int kWarpsM = 4, kWarpsN = 2;
  static constexpr int kWarps = kWarpsM * kWarpsN;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kWarpRows = 32, kWarpCols = 64;
  static constexpr int kMTiles = kWarpRows / 16; // m16 fragments per warp
  static constexpr int kNTiles = kWarpCols / 8;  // n8 fragments per warp
  static constexpr int kBlockM = kWarpsM * kWarpRows;
  static constexpr int kBlockN = kWarpsN * kWarpCols;
  static constexpr int kChunk = 64 / int(sizeof(S));       // depth per stage: 64 bytes of a row
  static constexpr int kLd = kChunk + 16 / int(sizeof(S)); // padded row: 80 bytes
  static constexpr int kK = kTf32 ? 8 : 16;                // depth of one mma
  static constexpr int kStages = 4;
  static constexpr size_t kStageBytes = sizeof(S) * size_t(kBlockM + kBlockN) * kLd;
  // Epilogue scratch: the column partials of the kWarpsM row slabs (SYMMETRIC), the row partials of
  // the kWarpsN column slabs (the end of a row tile).
  static constexpr size_t kColScratchBytes = sizeof(PartialStats) * kWarpsM * kBlockN;
  static constexpr size_t kRowScratchBytes = sizeof(PartialStats) * kBlockM;
  static constexpr size_t kSmem = kStages * kStageBytes + kColScratchBytes + kRowScratchBytes;
  static constexpr int kReduceThreads = 256;
  // The epilogue's barrier (ForwardEpilogue): the whole block.
  __device__ static void epilogue_sync() { __syncthreads(); }

  static_assert(kThreads == 256, "launch bounds and the loaders assume 256 threads");
  static_assert(kWarpRows % 16 == 0 && kWarpCols % 16 == 0, "whole m16 / pairs of n8 fragments");
  static_assert(kChunk % kK == 0, "whole mma steps per stage");
  // 80-byte rows: the 8 row addresses of an ldmatrix phase start 20 words apart, in the bank
  // groups 0, 20, 8, 28, 16, 4, 24, 12: disjoint, conflict-free; 16-byte aligned (cp.async).
  static_assert((kLd * sizeof(S)) % 16 == 0 && ldmatrix_rows_conflict_free(kLd * sizeof(S)),
                "stage rows 16-byte aligned, an ldmatrix phase's 8 rows in disjoint banks");
  static_assert((kBlockM * kChunk * sizeof(S) / 16) % kThreads == 0 &&
                    (kBlockN * kChunk * sizeof(S) / 16) % kThreads == 0,
                "each thread issues a whole number of 16-byte copies per stage");
  static_assert(kStageBytes % 128 == 0, "stages 128-byte aligned");
  static_assert(kStages >= 2, "at least double buffering");
  static_assert(kBlockN <= kThreads, "one thread per tile column merges the column partials");
  static_assert(kSmem <= 99 * 1024, "fits every sm_80+ GPU (sm_86 / sm_89: 99 KB opt-in)");
};

// The Hopper forward (forward_wgmma_kernel.cuh), warp-specialised as FlashAttention-3 and
// CUTLASS's sm90 kernels are: one producer warpgroup whose elected thread issues the TMA loads
// (128 rows x 64 elements each, 128-byte swizzle, out-of-bounds rows and depth zero filled) of b,
// and of a unless a's row tile is resident (d <= 512), into a kStages-deep full / empty mbarrier
// ring that runs across tile boundaries, and two
// consumer warpgroups, each the 64 x 128 half of a 128 x 128 logit tile as one wgmma m64n128k16
// accumulator (64 f32 registers per thread) fed straight from the swizzled stages by descriptors.
// The epilogue is the mma.sync forward's (ForwardEpilogue) on each warp's 16 x 128 part of the
// accumulator (kWarpsM = 8 row slabs, one column slab), synchronised by a named barrier of the
// 256 consumer threads.  Same 128 x 128 tiles as ForwardMmaTraits, hence the same work split and
// workspace (forward_params in host/cuda/dispatch.cpp).
template <typename Element> struct ForwardWgmmaTraits {
  using T = Element;
  static constexpr bool kBf16 = std::is_same<Element, bfloat16_t>::value;
  using S = uint16_t;
  static constexpr int kConsumers = 2;                    // consumer warpgroups
  static constexpr int kThreads = 128 * (1 + kConsumers); // + the producer warpgroup
  static constexpr int kConsumerThreads = 128 * kConsumers;
  static constexpr int kWarpsM = 4 * kConsumers, kWarpsN = 1; // the epilogue's slab grid
  static constexpr int kWarpRows = 16, kWarpCols = 128;
  static constexpr int kMTiles = 1, kNTiles = kWarpCols / 8;
  static constexpr int kBlockM = kWarpsM * kWarpRows;
  static constexpr int kBlockN = kWarpCols;
  static constexpr int kChunk = 64; // depth per stage: one 128-byte swizzle line per operand row
  static constexpr int kK = 16;     // depth of one wgmma
  static constexpr int kStages = 4;
  static constexpr size_t kOperandBytes = sizeof(S) * size_t(kChunk) * kBlockM; // = kBlockN rows
  // Streaming: a stage holds both operands' chunk (a's, then b's).  Resident (d <= kResidentChunks
  // x kChunk): a's whole row tile stays in shared memory for the block's sweep over its column
  // tiles (loaded once per row tile, not once per column tile: half the L2 traffic), and a stage
  // holds b's chunk only.  The two layouts share one region.
  static constexpr size_t kStageBytes = 2 * kOperandBytes;
  static constexpr int kResidentChunks = 8; // d <= 512
  static constexpr size_t kResidentBytes = kResidentChunks * kOperandBytes;
  static constexpr size_t kResidentRegion = kResidentBytes + kStages * kOperandBytes;
  static constexpr size_t kStreamingRegion = kStages * kStageBytes;
  static constexpr size_t kRegionBytes =
      kResidentRegion > kStreamingRegion ? kResidentRegion : kStreamingRegion;
  static constexpr size_t kColScratchBytes = sizeof(PartialStats) * kWarpsM * kBlockN;
  static constexpr size_t kRowScratchBytes = sizeof(PartialStats) * kBlockM; // (unused: 1 slab)
  // full, empty per stage; the resident row tile's full and empty
  static constexpr size_t kBarrierBytes = (2 * kStages + 2) * sizeof(uint64_t);
  // + 1024: the stages start at a 1024-byte boundary (the 128-byte swizzle's repeat), which the
  // dynamic shared memory base is not guaranteed to be.
  static constexpr size_t kSmem =
      1024 + kRegionBytes + kColScratchBytes + kRowScratchBytes + kBarrierBytes;
  static constexpr int kReduceThreads = 256;
  // setmaxnreg: the producer gives registers back, the consumers take them (65536 per SM).
  static constexpr unsigned kProducerRegs = 40, kConsumerRegs = 232;
  static constexpr unsigned kEpilogueBarrier = 1; // named barrier id (0 is __syncthreads)
  // The epilogue's barrier: the consumer warpgroups only (the producer never reaches it).
  __device__ static void epilogue_sync() { named_barrier_sync(kEpilogueBarrier, kConsumerThreads); }

  static_assert(kBlockM == 128 && kBlockN == 128, "the tensor-core forward's tiles");
  static_assert(kChunk * sizeof(S) == 128, "one 128-byte swizzle line per stage row");
  static_assert(kChunk % kK == 0, "whole wgmma steps per stage");
  static_assert(kOperandBytes % 1024 == 0 && kResidentBytes % 1024 == 0,
                "each operand tile starts at a 1024-byte boundary");
  static_assert(kBlockN <= kConsumerThreads, "one consumer thread per tile column merges");
  static_assert(128 * kProducerRegs + kConsumerThreads * kConsumerRegs <= 65536,
                "the register split fits the SM");
  static_assert(kSmem <= 227 * 1024, "fits an H100 / H200 (227 KB opt-in)");
};

// The tensor-core gradient kernel (backward_mma_kernel.cuh): a block owns 64 launch rows and
// sweeps 64 x 128 logit tiles with 8 warps in a 2 (rows) x 4 (columns) grid of 32 x 32 slabs (32
// accumulator registers per lane), the coefficients rounded into a [64][kCLd] operand tile, then
// the gradient GEMM out[64 x kChunk] per stage with the warps in a 4 x 2 grid of 16-row slabs.
// The operands stream as in the forward (64-byte stage rows, padded to 80; a ring of kStages that
// runs across tiles and carries the gradient items' Y slices too).
template <typename Element> struct BackwardMmaTraits {
  using T = Element;
  static constexpr bool kTf32 = sizeof(Element) == 4;
  static constexpr bool kBf16 = std::is_same<Element, bfloat16_t>::value;
  static constexpr bool kRowScale = !kTf32 && !kBf16; // f16: a power of two per coefficient row
  using S = std::conditional_t<kTf32, float, uint16_t>;
  static constexpr int kWarpsM = 2, kWarpsN = 4;
  static constexpr int kWarps = kWarpsM * kWarpsN;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kWarpRows = 32, kWarpCols = 32;
  static constexpr int kMTiles = kWarpRows / 16, kNTiles = kWarpCols / 8;
  static constexpr int kBlockM = kWarpsM * kWarpRows;
  static constexpr int kBlockN = kWarpsN * kWarpCols;
  static constexpr int kChunk = 64 / int(sizeof(S));
  static constexpr int kLd = kChunk + 16 / int(sizeof(S));
  static constexpr int kK = kTf32 ? 8 : 16;
  static constexpr int kStages = 3;
  static constexpr size_t kStageBytes = sizeof(S) * size_t(kBlockM + kBlockN) * kLd;
  // Gradient items: 8 warps of 16 rows x 8 kGradNTiles columns over the stage's kChunk columns.
  static constexpr int kGradNTiles = kChunk / 16;
  // The coefficient tile: rows 4 words past a multiple of 32 (ldmatrix phases conflict-free).
  static constexpr int kCLd = kBlockN + (kTf32 ? 4 : 8);
  static constexpr size_t kCBytes = sizeof(S) * size_t(kBlockM) * kCLd;
  static constexpr int kAccPad = 8; // accumulator rows 8 words past the pass width (64-bit RMW)
  static constexpr int kBlockD = kChunk; // pass widths are whole stages of d
  static constexpr int kReduceThreads = 256;
  // The epilogue's barrier (GradEpilogue::finish_row_sums): the whole block.
  __device__ static void epilogue_sync() { __syncthreads(); }
  // stages, coefficient tile, scratch [2 kWarpsN][kBlockM], row sums / dots / scales, padding.
  static constexpr size_t kGradSmemFixed = kStages * kStageBytes + kCBytes +
                                           sizeof(float) * (2 * kWarpsN * kBlockM + 3 * kBlockM) +
                                           sizeof(float) * kBlockM * kAccPad;

  static_assert(kThreads == 256, "launch bounds and the loaders assume 256 threads");
  static_assert(kBlockM == 64 && kWarps == kBlockM / 16 * 2, "gradient items: 4 x 2 warps");
  static_assert(kWarps * 16 * 8 * kGradNTiles == kBlockM * kChunk, "items cover the stage");
  static_assert(kChunk % kK == 0 && kBlockN % kK == 0, "whole mma steps");
  static_assert((kLd * sizeof(S)) % 16 == 0 && ldmatrix_rows_conflict_free(kLd * sizeof(S)),
                "stage rows 16-byte aligned, an ldmatrix phase's 8 rows in disjoint banks");
  static_assert((kCLd * sizeof(S)) % 16 == 0 && ldmatrix_rows_conflict_free(kCLd * sizeof(S)),
                "coefficient rows likewise");
  static_assert(2 * kWarpsN * kBlockM >= kThreads, "scratch holds a block_sum");
  static_assert(kStageBytes % 128 == 0 && kCBytes % 16 == 0, "aligned regions");
  // 99 KB (sm_86 / sm_89): bf16 / f16 d <= 128 in one pass, TF32 d <= 64.
  static_assert(kGradSmemFixed + sizeof(float) * kBlockM * (kTf32 ? 64 : 128) <= 99 * 1024,
                "a pass of at least 128 (TF32: 64) columns on every sm_80+ GPU");
};

// The Hopper gradient kernel (backward_wgmma_kernel.cuh), warp-specialised as the Hopper forward:
// one producer warpgroup (an elected thread issuing the TMA loads) and two consumer warpgroups.  A
// block owns 64 launch rows; d <= kPassCols (the dispatch takes the mma.sync kernel beyond), in one
// pass.  The block's rows x stay resident (all kChunk-deep chunks, loaded once); each 128-row
// column tile y is loaded once, as kChunk-wide boxes (128 rows x 128 bytes), each box its own
// full / empty mbarrier pair, and serves both GEMMs: for the logits S = x . y^T (consumer w: the 64
// x 64 column half w, wgmma m64n64k16, K-major B = its 64 rows of the box; kWarpsM = 4 row slabs x
// kWarpsN = 2 column slabs of 16 x 64 for GradEpilogue) and, after the coefficients are rounded
// into a bf16 [64 x 128] tile (two 128-byte swizzled boxes: the gradient GEMM's K-major A
// operand), for out[64 x d] += C[64 x 128] . y[128 x d] (gradient item j: consumer w takes box
// 2j + w, read MN-major, into its register slot j).  So each column tile is read once from L2
// and its logits computed once; the accumulators (kSlots x 32 f32 per thread) stay in registers
// for the whole sweep.  bf16 only: f16's per-tile row scale (BackwardMmaTraits::kRowScale) cannot
// be folded into accumulators that span tiles, so f16 stays on the tensor-core kernel.
template <typename Element> struct BackwardWgmmaTraits {
  using T = Element;
  static_assert(std::is_same<Element, bfloat16_t>::value, "the Hopper gradient kernel is bf16");
  static constexpr bool kBf16 = true, kTf32 = false, kRowScale = false;
  using S = uint16_t;
  static constexpr int kConsumers = 2;
  static constexpr int kThreads = 128 * (1 + kConsumers);
  static constexpr int kConsumerThreads = 128 * kConsumers;
  static constexpr int kWarpsM = 4, kWarpsN = kConsumers; // GradEpilogue's slab grid
  static constexpr int kWarpRows = 16, kWarpCols = 64;
  static constexpr int kMTiles = 1, kNTiles = kWarpCols / 8;
  static constexpr int kBlockM = kWarpsM * kWarpRows;
  static constexpr int kBlockN = kWarpsN * kWarpCols;
  static constexpr int kChunk = 64; // depth per logit item: one 128-byte swizzle line per row
  static constexpr int kK = 16;     // depth of one wgmma
  static constexpr int kBox = 64;   // columns of one TMA box / one warpgroup's gradient slab
  static constexpr int kGradCols = kBox * kConsumers;  // d columns per gradient item
  static constexpr int kSlots = 4;                     // gradient items (register slots)
  static constexpr int kPassCols = kSlots * kGradCols; // the largest d
  static constexpr int kBlockD = kGradCols;
  static constexpr int kBoxes = kPassCols / kBox; // y boxes per column tile (8)
  static constexpr size_t kBoxBytes = sizeof(S) * size_t(kBox) * kBlockN;  // 128 rows x 128 B
  static constexpr size_t kXBytes = sizeof(S) * size_t(kChunk) * kBlockM;  // 64 rows x 128 B
  static constexpr size_t kXResBytes = kXBytes * kBoxes;                   // x, all of d
  static constexpr size_t kYResBytes = kBoxBytes * kBoxes;                 // a column tile
  static constexpr size_t kCBoxBytes = sizeof(S) * size_t(kBox) * kBlockM; // 64 rows x 128 B
  static constexpr size_t kCBytes = kCBoxBytes * (kBlockN / kBox);
  // scratch [2 kWarpsN][kBlockM] (row sums, the scale's fixed-order sum), row_sum, row_dot
  static constexpr size_t kScratchBytes = sizeof(float) * (2 * kWarpsN * kBlockM + 2 * kBlockM);
  static constexpr size_t kBarrierBytes = (2 * kBoxes + 1) * sizeof(uint64_t); // + x's full
  // + 1024: the operand boxes start at 1024-byte boundaries.
  static constexpr size_t kSmem =
      1024 + kXResBytes + kYResBytes + kCBytes + kScratchBytes + kBarrierBytes;
  static constexpr unsigned kProducerRegs = 40, kConsumerRegs = 232;
  static constexpr unsigned kEpilogueBarrier = 1;
  __device__ static void epilogue_sync() { named_barrier_sync(kEpilogueBarrier, kConsumerThreads); }

  static_assert(kBlockM == 64 && kBlockN == 128, "the tensor-core gradient kernel's tiles");
  static_assert(kChunk * sizeof(S) == 128 && kBox * sizeof(S) == 128, "128-byte swizzle lines");
  static_assert(kChunk == kBox, "a logit item's y box is a gradient item's half");
  static_assert(kBlockN % kK == 0 && kChunk % kK == 0, "whole wgmma steps");
  static_assert(kXBytes % 1024 == 0 && kBoxBytes % 1024 == 0 && kCBoxBytes % 1024 == 0,
                "every operand box at a 1024-byte boundary (the swizzle's repeat)");
  static_assert(2 * kWarpsN * kBlockM >= kConsumerThreads, "scratch holds the consumers' sum");
  static_assert(128 * kProducerRegs + kConsumerThreads * kConsumerRegs <= 65536,
                "the register split fits the SM");
  static_assert(kSmem <= 227 * 1024, "fits an H100 / H200 (227 KB opt-in)");
};

// Columns of d per pass of the Hopper gradient kernel: the fewest passes of at most kPassCols
// columns (its register slots), the columns split evenly and rounded up to whole gradient items.
// (The kernel itself runs one pass: the dispatch gives it d <= kPassCols only.)
template <class Tr> constexpr int32_t wgmma_pass_columns(int64_t d) {
  const int64_t depth = d > 0 ? d : 1;
  const int64_t passes = (depth + Tr::kPassCols - 1) / Tr::kPassCols;
  const int64_t columns = (depth + passes - 1) / passes;
  return int32_t((columns + Tr::kBlockD - 1) / Tr::kBlockD * Tr::kBlockD);
}
static_assert(wgmma_pass_columns<BackwardWgmmaTraits<bfloat16_t>>(512) == 512 &&
                  wgmma_pass_columns<BackwardWgmmaTraits<bfloat16_t>>(100) == 128 &&
                  wgmma_pass_columns<BackwardWgmmaTraits<bfloat16_t>>(768) == 384 &&
                  wgmma_pass_columns<BackwardWgmmaTraits<bfloat16_t>>(1024) == 512,
              "Hopper gradient pass widths");

// Columns of d per pass of a gradient kernel (each pass recomputes the logit tiles, so fewer
// passes mean less work): the fewest passes whose f32 accumulator [kBlockM][columns] fits the
// device's opt-in shared memory next to kGradSmemFixed, the columns split evenly over the passes
// and rounded up to whole kBlockD sub-chunks.  E.g. the tensor-core kernel (BackwardMmaTraits)
// on an H100 / H200 (227 KB): bf16 d <= 640 in one pass, d = 768 in two of 384, d = 1024 in two
// of 512; on an A100 (163 KB) d <= 384 in one; on an sm_86 / sm_89 GPU (99 KB) d <= 128 in one.
// Wider passes cost no occupancy: the gradient kernels use 200-255 registers per thread (ptxas
// -v, CUDA 13.0), so one 256-thread block per SM is resident whatever its shared memory.
template <class Tr> constexpr int32_t grad_pass_columns(int64_t d, size_t smem_optin) {
  constexpr int64_t BD = Tr::kBlockD;
  constexpr int64_t per_column = int64_t(sizeof(float)) * Tr::kBlockM;
  int64_t cap = smem_optin > Tr::kGradSmemFixed
                    ? int64_t(smem_optin - Tr::kGradSmemFixed) / per_column / BD * BD
                    : 0;
  if (cap < BD) // (no sm_80+ GPU; the launch then reports the shared-memory error)
    cap = BD;
  const int64_t depth = d > 0 ? d : 1;
  const int64_t passes = (depth + cap - 1) / cap;
  const int64_t columns = (depth + passes - 1) / passes;
  return int32_t((columns + BD - 1) / BD * BD);
}

// The examples above, with the opt-in shared memory of an H100 / H200 (227 KB), an A100 (163 KB)
// and an sm_86 / sm_89 GPU (99 KB).
static_assert(grad_pass_columns<BackwardMmaTraits<bfloat16_t>>(640, 232448) == 640 &&
              grad_pass_columns<BackwardMmaTraits<bfloat16_t>>(768, 232448) == 384 &&
              grad_pass_columns<BackwardMmaTraits<bfloat16_t>>(1024, 232448) == 512 &&
              grad_pass_columns<BackwardMmaTraits<half_t>>(384, 166912) == 384 &&
              grad_pass_columns<BackwardMmaTraits<half_t>>(512, 166912) == 256 &&
              grad_pass_columns<BackwardMmaTraits<bfloat16_t>>(128, 101376) == 128 &&
              grad_pass_columns<BackwardMmaTraits<float>>(512, 232448) == 512 &&
              grad_pass_columns<GenericTraits<float>>(256, 101376) == 256 &&
              grad_pass_columns<BackwardMmaTraits<bfloat16_t>>(100, 232448) == 128 &&
              "gradient pass widths as documented");

} // namespace kernels
} // namespace flashnce
