// Tile configurations of the loss kernels.  A traits struct fixes every size the kernels are
// compiled with and checks the invariants the kernels rely on; host/cuda/dispatch.cpp chooses one
// with a constexpr function of (arch, dtype, d).
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

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

  static_assert(kBlockM % kThreadM == 0 && kBlockN % kThreadN == 0, "micro-tiles must tile");
  static_assert(kThreads == 256, "launch bounds and the loaders assume 256 threads");
  static_assert((kBlockM * kBlockK) % kThreads == 0 && (kBlockN * kBlockK) % kThreads == 0,
                "each thread loads a whole number of operand elements per chunk");
  static_assert(kBlockD == kBlockN, "the gradient GEMM reuses the logit GEMM's micro-tile grid");
  static_assert((kBlockK * kBlockD) % kThreads == 0, "gradient operand chunk loads evenly");
  static_assert(kBlockN % kBlockK == 0, "the gradient GEMM walks the tile's columns in k-chunks");

  // The logit GEMM runs on FFMA (no tensor cores).
  static constexpr bool kMma = false;
  static constexpr bool kTf32 = false;
  static constexpr bool kBf16 = false;
  static constexpr bool kMmaGrad = false;      // the gradient GEMM on tensor cores
  static constexpr bool kGradRowScale = false; // (f16 tensor cores only, see MmaTraits)
  static constexpr size_t kGradYBytes = 0;     // (the tensor-core gradient GEMM's Y stage)
  // Operand region: As[K][M] + Bs[K][N] (f32); the gradient kernel reuses it for its Y chunk.
  static constexpr size_t kOperandBytes = sizeof(float) * (kBlockK * kBlockM + kBlockK * kBlockN);
  static_assert(kOperandBytes >= sizeof(float) * kBlockK * kBlockD, "Y chunk fits");

  // Forward main kernel: operands + S[M][N+1] (f32) + flags[M][N] (bytes).
  static constexpr size_t kForwardSmem =
      kOperandBytes + sizeof(float) * kBlockM * (kBlockN + 1) + size_t(kBlockM) * kBlockN;
  // Gradient kernel: operands (also the gradient GEMM's Y chunk / stages), C[M][N+1],
  // 2 x GradStats per tile row and per tile column, norms of both sides, rowsum/rowdot, the scale
  // partials and the per-row coefficient scales (f16 tensor cores): kGradSmemFixed; then the f32
  // accumulator [M][pass columns], its width chosen per launch from the device's shared memory
  // (grad_pass_columns below).
  static constexpr size_t kGradSmemFixed =
      kOperandBytes + sizeof(float) * kBlockM * (kBlockN + 1) +
      sizeof(GradStats) * 2 * (kBlockM + kBlockN) + sizeof(float) * (kBlockM + kBlockN) +
      sizeof(float) * (2 * kBlockM + kThreads) + sizeof(float) * kBlockM;
  static_assert(kForwardSmem <= 48 * 1024, "the forward runs without the > 48 KB opt-in");
  // 99 KB: the largest opt-in of sm_86 / sm_89, which run the sm_80 binary.
  static_assert(kGradSmemFixed + sizeof(float) * kBlockM * 256 <= 99 * 1024,
                "d <= 256 takes one gradient pass on every sm_80+ GPU");
};

// Tensor-core configuration (sm_80+): the same tiles and epilogues as GenericTraits; the logit
// GEMM on mma.sync with f32 accumulation.  Element = bfloat16_t / half_t: m16n8k16 on the raw
// 16-bit operands (exact products, f32 sums: the FFMA path's accuracy).  Element = float: TF32
// m16n8k8 (inputs rounded to 10-bit mantissas; chosen only when the caller sets allow_tf32).
// The gradient GEMM (G x Y) runs on the same tensor cores, the f32 coefficients G split into
// hi + lo operand words (see grad_gemm_mma in loss_backward_kernel.cuh).
// The logit GEMM's operand chunks are double-buffered (cp.async into two stages, ldmatrix for the
// 16-bit fragments; see loss_tile.cuh); the gradient GEMM's Y tiles come by cp.async too.
// What is checked vs not: correctness on the CPU SIMT emulator (which defers cp.async completion
// to the wait, so a missing wait reads stale data there) and register / spill / shared-memory
// budgets with ptxas -v for sm_80 and sm_90.  NOT measured: speed.  No GPU was available when the
// pipeline was written, so neither its benefit nor the tile sizes are tuned on hardware.
template <typename Element> struct MmaTraits : GenericTraits<Element> {
  using Base = GenericTraits<Element>;
  static constexpr bool kMma = true;
  static constexpr bool kTf32 = sizeof(Element) == 4;
  static constexpr bool kBf16 = std::is_same<Element, bfloat16_t>::value;
  static constexpr bool kMmaGrad = true;
  // f16's range (65504) cannot hold every coefficient (a large grad_loss, a cosine 1/|y|): each
  // tile row of G is scaled by a power of two before the split and the product scaled back.
  static constexpr bool kGradRowScale = !kTf32 && !kBf16;
  static_assert(!kGradRowScale || Base::kThreadsN == 16,
                "a tile row's coefficients live in one half-warp (the row maximum by shuffles)");
  // The gradient GEMM's Y steps: kGradRows rows of y (tile columns) x kBlockD columns of d,
  // row-major with a padded row of kGradLd elements (16-byte aligned rows for cp.async and
  // ldmatrix.trans, rows staggered across banks); two stages of kGradYBytes in the operand region.
  static constexpr int kGradRows = kTf32 ? Base::kBlockN / 4 : Base::kBlockN / 2;
  static constexpr int kGradLd = Base::kBlockD + 8;
  static constexpr size_t kGradYBytes =
      (kTf32 ? sizeof(float) : sizeof(uint16_t)) * size_t(kGradRows) * kGradLd;
  // Depth chunk per shared-memory stage and the padded row length of the operand tiles (in
  // elements; the padding staggers the rows across banks).
  static constexpr int kMmaChunk = kTf32 ? 16 : 32;
  static constexpr int kMmaLd = kMmaChunk + (kTf32 ? 4 : 8);
  static constexpr size_t kOperandBytes =
      (kTf32 ? sizeof(float) : sizeof(uint16_t)) * size_t(Base::kBlockM + Base::kBlockN) * kMmaLd;
  static_assert(kMmaChunk % (kTf32 ? 8 : 16) == 0, "whole mma k-steps per chunk");
  static_assert((Base::kBlockM * kMmaChunk) % Base::kThreads == 0, "operand chunk loads evenly");
  static_assert(kOperandBytes >= sizeof(float) * Base::kBlockK * Base::kBlockD, "Y chunk fits");
  static_assert((kMmaLd * (kTf32 ? 4 : 2)) % 4 == 0, "32-bit fragment loads stay aligned");
  static_assert(kOperandBytes >= 2 * kGradYBytes && kGradYBytes % 16 == 0,
                "the gradient GEMM's two Y stages fit the operand region, 16-byte aligned");
  static_assert((kGradLd * (kTf32 ? 4 : 2)) % 16 == 0, "Y tile rows 16-byte aligned");
  static_assert(Base::kBlockN % kGradRows == 0 && kGradRows % (kTf32 ? 8 : 16) == 0,
                "whole mma k-steps per Y step");
  // Double buffering of the operand chunks: the second stage lives in the f32 logit stage buffer
  // [kBlockM][kBlockN + 1] that follows the operand region (unused while the chunks stream), so
  // the pipeline costs no shared memory; cp.async / ldmatrix need 16-byte aligned stage rows.
  static_assert(sizeof(float) * Base::kBlockM * (Base::kBlockN + 1) >= kOperandBytes,
                "the second operand stage fits the logit stage buffer");
  static_assert(kOperandBytes % 16 == 0 && (kMmaLd * (kTf32 ? 4 : 2)) % 16 == 0,
                "stage bases and rows 16-byte aligned (cp.async, ldmatrix)");
  static constexpr size_t kForwardSmem = Base::kForwardSmem - Base::kOperandBytes + kOperandBytes;
  static constexpr size_t kGradSmemFixed =
      Base::kGradSmemFixed - Base::kOperandBytes + kOperandBytes;
  static_assert(kForwardSmem <= 48 * 1024 &&
                    kGradSmemFixed + sizeof(float) * Base::kBlockM * 256 <= 99 * 1024,
                "fits every sm_80+ GPU (d <= 256 in one gradient pass)");
};

// Columns of d per pass of the gradient kernel (each pass recomputes the logit tiles, so fewer
// passes mean less work): the fewest passes whose f32 accumulator [kBlockM][columns] fits the
// device's opt-in shared memory next to kGradSmemFixed, the columns split evenly over the passes
// and rounded up to whole kBlockD sub-chunks.  E.g. on an H100 (227 KB): d <= 768 in one pass,
// d = 1024 in two of 512; on an A100 (163 KB) d <= 512 in one; on any sm_80+ GPU d <= 256 in
// one.  Wider passes cost no occupancy: the gradient kernel uses 168-210 registers per thread
// (ptxas -v, CUDA 13.0), so one 256-thread block per SM is resident whatever its shared memory.
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
static_assert(grad_pass_columns<MmaTraits<bfloat16_t>>(768, 232448) == 768 &&
                  grad_pass_columns<MmaTraits<bfloat16_t>>(1024, 232448) == 512 &&
                  grad_pass_columns<MmaTraits<half_t>>(512, 166912) == 512 &&
                  grad_pass_columns<MmaTraits<float>>(256, 101376) == 256 &&
                  grad_pass_columns<GenericTraits<float>>(256, 101376) == 256 &&
                  grad_pass_columns<MmaTraits<half_t>>(1000, 232448) == 512 &&
                  grad_pass_columns<MmaTraits<bfloat16_t>>(100, 232448) == 128,
              "gradient pass widths as documented");

} // namespace kernels
} // namespace flashnce
