// Tile configurations of the loss kernels.  A traits struct fixes every size the kernels are
// compiled with and checks the invariants the kernels rely on; host/cuda/dispatch.cpp chooses one
// with a constexpr function of (arch, dtype, d).
#pragma once

#include <cstddef>
#include <cstdint>

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
  static_assert(kBlockM + kBlockN <= kThreads,
                "forward: one thread per tile row and one per tile column reduce at once");
  static_assert(kBlockM * kThreadsN <= kThreads * 4, "row-partial reduction buffer size");

  // Forward main kernel: As[K][M] + Bs[K][N] (f32) + S[M][N+1] (f32) + flags[M][N] (bytes).
  static constexpr size_t kForwardSmem =
      sizeof(float) * (kBlockK * kBlockM + kBlockK * kBlockN + kBlockM * (kBlockN + 1)) +
      size_t(kBlockM) * kBlockN;
  // Gradient kernel: As, Bs (also the Y chunk), C[M][N+1], 4 x GradStats per tile side,
  // norms of both sides, the per-row partials (2 x M x threadsN), rowsum/rowdot, the scale
  // partials.
  static constexpr size_t kGradSmem =
      sizeof(float) * (kBlockK * kBlockM + kBlockK * kBlockN + kBlockM * (kBlockN + 1)) +
      sizeof(GradStats) * 2 * (kBlockM + kBlockN) + sizeof(float) * (kBlockM + kBlockN) +
      sizeof(float) * (2 * kBlockM * kThreadsN + 2 * kBlockM + kThreads);
  static_assert(kForwardSmem <= 48 * 1024 && kGradSmem <= 48 * 1024,
                "the generic configuration runs without the > 48 KB opt-in");
};

} // namespace kernels
} // namespace flashnce
