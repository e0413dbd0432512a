// Launch templates of the loss kernels (kept apart from the kernels, FlashAttention-style):
// grid/block/shared-memory choice, the > 48 KB opt-in, and a check after every launch.
// Launches go through cudaLaunchKernelEx (never <<< >>>) so that the emulator runs them too.
#pragma once

#include <cstdint>

#include "kernels/common/tensor_map.h"
#include "kernels/loss/backward_mma_kernel.cuh"
#include "kernels/loss/backward_wgmma_kernel.cuh"
#include "kernels/loss/forward_mma_kernel.cuh"
#include "kernels/loss/forward_wgmma_kernel.cuh"
#include "kernels/loss/loss_backward_kernel.cuh"
#include "kernels/loss/loss_forward_kernel.cuh"
#include "kernels/loss/loss_traits.cuh"
#include "kernels/loss_launch.h"

namespace flashnce {
namespace kernels {

template <typename... KernelArgs, typename... Args>
cudaError_t launch_kernel(void (*kernel)(KernelArgs...), int64_t grid, int block, size_t smem,
                          cudaStream_t stream, Args... args) {
  if (grid <= 0)
    return cudaSuccess;
  if (smem > 48 * 1024) {
    const cudaError_t e =
        cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel),
                             cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
    if (e != cudaSuccess)
      return e;
  }
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(unsigned(grid), 1, 1);
  cfg.blockDim = dim3(unsigned(block), 1, 1);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cfg.attrs = nullptr;
  cfg.numAttrs = 0;
  cudaError_t e = cudaLaunchKernelEx(&cfg, kernel, args...);
  if (e == cudaSuccess)
    e = cudaGetLastError();
  return e;
}

#define FLASHNCE_LAUNCH(name, ...)                                                                 \
  do {                                                                                             \
    const cudaError_t flashnce_e = launch_kernel(__VA_ARGS__);                                     \
    if (flashnce_e != cudaSuccess)                                                                 \
      return LaunchResult{flashnce_e, name};                                                       \
  } while (0)

// The tensor-core forward's main kernel for the problem's (similarity, LABELS, SYMMETRIC): the
// compile-time parameters of forward_mma_kernel (12 instantiations per dtype).
template <class Ft, Similarity kSim, bool kLabels>
LaunchResult launch_forward_mma(const ForwardParams& fp, cudaStream_t stream) {
  const int64_t grid = int64_t(fp.row_groups) * fp.col_splits;
  if (fp.pr.symmetric)
    FLASHNCE_LAUNCH("forward_mma_kernel", (forward_mma_kernel<Ft, kSim, kLabels, true>), grid,
                    Ft::kThreads, Ft::kSmem, stream, fp);
  else
    FLASHNCE_LAUNCH("forward_mma_kernel", (forward_mma_kernel<Ft, kSim, kLabels, false>), grid,
                    Ft::kThreads, Ft::kSmem, stream, fp);
  return LaunchResult{};
}
template <class Ft, Similarity kSim>
LaunchResult launch_forward_mma(const ForwardParams& fp, cudaStream_t stream) {
  return fp.pr.positives == Positives::labels ? launch_forward_mma<Ft, kSim, true>(fp, stream)
                                              : launch_forward_mma<Ft, kSim, false>(fp, stream);
}

// The Hopper forward's main kernel (forward_wgmma_kernel) for the problem's (similarity, LABELS,
// SYMMETRIC), with the two operands' TMA maps: d x n (m) elements, rows lda (ldb) apart, boxes of
// 64 x 128 elements (one 128-byte swizzle line per row).  The dispatch checked what TMA needs
// (16-byte aligned bases and pitches, 32-bit coordinates).
template <class Ft, Similarity kSim, bool kLabels>
LaunchResult launch_forward_wgmma(const ForwardParams& fp, const CUtensorMap& map_a,
                                  const CUtensorMap& map_b, cudaStream_t stream) {
  const int64_t grid = int64_t(fp.row_groups) * fp.col_splits;
  if (fp.pr.symmetric)
    FLASHNCE_LAUNCH("forward_wgmma_kernel", (forward_wgmma_kernel<Ft, kSim, kLabels, true>), grid,
                    Ft::kThreads, Ft::kSmem, stream, fp, map_a, map_b);
  else
    FLASHNCE_LAUNCH("forward_wgmma_kernel", (forward_wgmma_kernel<Ft, kSim, kLabels, false>), grid,
                    Ft::kThreads, Ft::kSmem, stream, fp, map_a, map_b);
  return LaunchResult{};
}
template <class Ft, Similarity kSim>
LaunchResult launch_forward_wgmma(const ForwardParams& fp, cudaStream_t stream) {
  using T = typename Ft::T;
  const ProblemParams& p = fp.pr;
  const CUtensorMapDataType type =
      Ft::kBf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
  CUtensorMap map_a, map_b; // (128-byte aligned by its declaration in cuda.h)
  cudaError_t e = make_tensor_map_2d(&map_a, type, p.a, uint64_t(p.d), uint64_t(p.n),
                                     uint64_t(p.lda) * sizeof(T), Ft::kChunk, Ft::kBlockM,
                                     CU_TENSOR_MAP_SWIZZLE_128B);
  if (e == cudaSuccess)
    e = make_tensor_map_2d(&map_b, type, p.b, uint64_t(p.d), uint64_t(p.m),
                           uint64_t(p.ldb) * sizeof(T), Ft::kChunk, Ft::kBlockN,
                           CU_TENSOR_MAP_SWIZZLE_128B);
  if (e != cudaSuccess)
    return LaunchResult{e, "cuTensorMapEncodeTiled"};
  return p.positives == Positives::labels
             ? launch_forward_wgmma<Ft, kSim, true>(fp, map_a, map_b, stream)
             : launch_forward_wgmma<Ft, kSim, false>(fp, map_a, map_b, stream);
}

template <class Tr> LaunchResult run_forward(const ForwardParams& fp, cudaStream_t stream) {
  using T = typename Tr::T;
  constexpr int R = Tr::kReduceThreads;
  const ProblemParams& p = fp.pr;
  if (p.similarity != Similarity::dot) {
    const int64_t rows = p.self_mode ? p.n : p.n + p.m;
    FLASHNCE_LAUNCH("row_norms_kernel", row_norms_kernel<T>, (rows + 7) / 8, 256, 0, stream, p);
  }
  if constexpr (Tr::kWgmma) {
    // Hopper: the warp-specialised wgmma kernel, the same partials and finalize.
    using Ft = ForwardWgmmaTraits<T>;
    LaunchResult r;
    switch (p.similarity) {
    case Similarity::dot:
      r = launch_forward_wgmma<Ft, Similarity::dot>(fp, stream);
      break;
    case Similarity::cosine:
      r = launch_forward_wgmma<Ft, Similarity::cosine>(fp, stream);
      break;
    case Similarity::neg_sq_dist:
      r = launch_forward_wgmma<Ft, Similarity::neg_sq_dist>(fp, stream);
      break;
    }
    if (r.error != cudaSuccess)
      return r;
    const int64_t blocks = (p.n + R - 1) / R + (p.symmetric ? (p.m + R - 1) / R : 0);
    FLASHNCE_LAUNCH("stats_finalize_kernel", stats_finalize_kernel<R>, blocks, R, 0, stream, fp);
  } else if constexpr (Tr::kMma) {
    // Tensor cores: logits in registers, partial statistics merged by stats_finalize_kernel.
    using Ft = ForwardMmaTraits<T>;
    LaunchResult r;
    switch (p.similarity) {
    case Similarity::dot:
      r = launch_forward_mma<Ft, Similarity::dot>(fp, stream);
      break;
    case Similarity::cosine:
      r = launch_forward_mma<Ft, Similarity::cosine>(fp, stream);
      break;
    case Similarity::neg_sq_dist:
      r = launch_forward_mma<Ft, Similarity::neg_sq_dist>(fp, stream);
      break;
    }
    if (r.error != cudaSuccess)
      return r;
    const int64_t blocks = (p.n + R - 1) / R + (p.symmetric ? (p.m + R - 1) / R : 0);
    FLASHNCE_LAUNCH("stats_finalize_kernel", stats_finalize_kernel<R>, blocks, R, 0, stream, fp);
  } else {
    FLASHNCE_LAUNCH("forward_main_kernel", forward_main_kernel<Tr>, fp.grid_rows, Tr::kThreads,
                    Tr::kForwardSmem, stream, fp);
    if (p.symmetric)
      FLASHNCE_LAUNCH("column_merge_kernel", column_merge_kernel<R>, (p.m + R - 1) / R, R, 0,
                      stream, fp);
  }
  if (p.reduction != Reduction::none)
    FLASHNCE_LAUNCH("loss_reduce_kernel", loss_reduce_kernel<R>, 1, R, R * sizeof(int64_t), stream,
                    fp);
  return LaunchResult{};
}

// The tensor-core gradient kernel for the problem's (similarity, LABELS, SYMMETRIC) and the
// launch's role (rows, rows with the self-mode terms, or the transposed launch for grad_b).
template <class Gt, Similarity kSim, bool kLabels, bool kSym>
LaunchResult launch_grad_mma(const BackwardParams& bp, int64_t grid, size_t smem,
                             cudaStream_t stream) {
  if (bp.transposed)
    FLASHNCE_LAUNCH("grad_mma_kernel(columns)",
                    (grad_mma_kernel<Gt, kSim, kLabels, kSym, GradLaunch::columns>), grid,
                    Gt::kThreads, smem, stream, bp);
  else if (bp.pr.self_mode)
    FLASHNCE_LAUNCH("grad_mma_kernel(rows, self)",
                    (grad_mma_kernel<Gt, kSim, kLabels, kSym, GradLaunch::rows_self>), grid,
                    Gt::kThreads, smem, stream, bp);
  else
    FLASHNCE_LAUNCH("grad_mma_kernel(rows)",
                    (grad_mma_kernel<Gt, kSim, kLabels, kSym, GradLaunch::rows>), grid,
                    Gt::kThreads, smem, stream, bp);
  return LaunchResult{};
}
template <class Gt, Similarity kSim, bool kLabels>
LaunchResult launch_grad_mma(const BackwardParams& bp, int64_t grid, size_t smem,
                             cudaStream_t stream) {
  return bp.pr.symmetric ? launch_grad_mma<Gt, kSim, kLabels, true>(bp, grid, smem, stream)
                         : launch_grad_mma<Gt, kSim, kLabels, false>(bp, grid, smem, stream);
}
template <class Gt, Similarity kSim>
LaunchResult launch_grad_mma(const BackwardParams& bp, int64_t grid, size_t smem,
                             cudaStream_t stream) {
  return bp.pr.positives == Positives::labels
             ? launch_grad_mma<Gt, kSim, true>(bp, grid, smem, stream)
             : launch_grad_mma<Gt, kSim, false>(bp, grid, smem, stream);
}
template <class Gt>
LaunchResult launch_grad_mma(const BackwardParams& bp, int64_t grid, size_t smem,
                             cudaStream_t stream) {
  switch (bp.pr.similarity) {
  case Similarity::dot:
    return launch_grad_mma<Gt, Similarity::dot>(bp, grid, smem, stream);
  case Similarity::cosine:
    return launch_grad_mma<Gt, Similarity::cosine>(bp, grid, smem, stream);
  case Similarity::neg_sq_dist:
    break;
  }
  return launch_grad_mma<Gt, Similarity::neg_sq_dist>(bp, grid, smem, stream);
}

// The Hopper gradient kernel (grad_wgmma_kernel) for the problem's (similarity, LABELS,
// SYMMETRIC) and the launch's role, with the TMA maps of the launch's rows x (boxes of 64 x 64
// elements) and columns y (64 x 128): d x rows elements, rows ld apart.  The dispatch checked what
// TMA needs (16-byte aligned bases and pitches, 32-bit coordinates).
template <class Gt, Similarity kSim, bool kLabels, bool kSym>
LaunchResult launch_grad_wgmma(const BackwardParams& bp, const CUtensorMap& mx,
                               const CUtensorMap& my, int64_t grid, cudaStream_t stream) {
  if (bp.transposed)
    FLASHNCE_LAUNCH("grad_wgmma_kernel(columns)",
                    (grad_wgmma_kernel<Gt, kSim, kLabels, kSym, GradLaunch::columns>), grid,
                    Gt::kThreads, Gt::kSmem, stream, bp, mx, my);
  else if (bp.pr.self_mode)
    FLASHNCE_LAUNCH("grad_wgmma_kernel(rows, self)",
                    (grad_wgmma_kernel<Gt, kSim, kLabels, kSym, GradLaunch::rows_self>), grid,
                    Gt::kThreads, Gt::kSmem, stream, bp, mx, my);
  else
    FLASHNCE_LAUNCH("grad_wgmma_kernel(rows)",
                    (grad_wgmma_kernel<Gt, kSim, kLabels, kSym, GradLaunch::rows>), grid,
                    Gt::kThreads, Gt::kSmem, stream, bp, mx, my);
  return LaunchResult{};
}
template <class Gt, Similarity kSim>
LaunchResult launch_grad_wgmma(const BackwardParams& bp, const CUtensorMap& mx,
                               const CUtensorMap& my, int64_t grid, cudaStream_t stream) {
  const bool labels = bp.pr.positives == Positives::labels;
  if (bp.pr.symmetric)
    return labels ? launch_grad_wgmma<Gt, kSim, true, true>(bp, mx, my, grid, stream)
                  : launch_grad_wgmma<Gt, kSim, false, true>(bp, mx, my, grid, stream);
  return labels ? launch_grad_wgmma<Gt, kSim, true, false>(bp, mx, my, grid, stream)
                : launch_grad_wgmma<Gt, kSim, false, false>(bp, mx, my, grid, stream);
}
template <class Gt>
LaunchResult launch_grad_wgmma(const BackwardParams& bp, int64_t grid, cudaStream_t stream) {
  using T = typename Gt::T;
  const ProblemParams& p = bp.pr;
  const bool tr = bp.transposed != 0;
  CUtensorMap mx, my;
  cudaError_t e =
      make_tensor_map_2d(&mx, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, tr ? p.b : p.a, uint64_t(p.d),
                         uint64_t(tr ? p.m : p.n), uint64_t(tr ? p.ldb : p.lda) * sizeof(T),
                         Gt::kChunk, Gt::kBlockM, CU_TENSOR_MAP_SWIZZLE_128B);
  if (e == cudaSuccess)
    e = make_tensor_map_2d(&my, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, tr ? p.a : p.b, uint64_t(p.d),
                           uint64_t(tr ? p.n : p.m), uint64_t(tr ? p.lda : p.ldb) * sizeof(T),
                           Gt::kBox, Gt::kBlockN, CU_TENSOR_MAP_SWIZZLE_128B);
  if (e != cudaSuccess)
    return LaunchResult{e, "cuTensorMapEncodeTiled"};
  switch (p.similarity) {
  case Similarity::dot:
    return launch_grad_wgmma<Gt, Similarity::dot>(bp, mx, my, grid, stream);
  case Similarity::cosine:
    return launch_grad_wgmma<Gt, Similarity::cosine>(bp, mx, my, grid, stream);
  case Similarity::neg_sq_dist:
    break;
  }
  return launch_grad_wgmma<Gt, Similarity::neg_sq_dist>(bp, mx, my, grid, stream);
}

// The gradient kernel of a configuration: grad_kernel<Tr> (FFMA), the Hopper kernel
// grad_wgmma_kernel on BackwardWgmmaTraits (TileConfig::wgmma), the tensor-core kernel
// grad_mma_kernel on BackwardMmaTraits otherwise.
template <class Tr>
LaunchResult launch_grad(const BackwardParams& bp, int64_t grid, size_t smem, const char* what,
                         cudaStream_t stream) {
  if constexpr (Tr::kWgmma) {
    (void)what;
    (void)smem;
    return launch_grad_wgmma<BackwardWgmmaTraits<typename Tr::T>>(bp, grid, stream);
  } else if constexpr (Tr::kMma) {
    (void)what;
    return launch_grad_mma<BackwardMmaTraits<typename Tr::T>>(bp, grid, smem, stream);
  } else {
    FLASHNCE_LAUNCH(what, grad_kernel<Tr>, grid, Tr::kThreads, smem, stream, bp);
    return LaunchResult{};
  }
}

template <class Tr>
LaunchResult run_backward(const BackwardParams& bp_in, size_t smem_optin, cudaStream_t stream) {
  using T = typename Tr::T;
  constexpr int R = Tr::kReduceThreads;
  const ProblemParams& p = bp_in.pr;
  if (p.similarity != Similarity::dot) {
    const int64_t rows = p.self_mode ? p.n : p.n + p.m;
    FLASHNCE_LAUNCH("row_norms_kernel", row_norms_kernel<T>, (rows + 7) / 8, 256, 0, stream, p);
  }
  const int64_t count_blocks = (p.n + R - 1) / R + (p.symmetric ? (p.m + R - 1) / R : 0);
  FLASHNCE_LAUNCH("counts_kernel", counts_kernel<R>, count_blocks, R, R * sizeof(int64_t), stream,
                  bp_in);
  FLASHNCE_LAUNCH("grad_weights_kernel", grad_weights_kernel<R>, 1, R, R * sizeof(int64_t), stream,
                  bp_in);
  // The gradient kernel's traits (the FFMA configuration is its own).
  using Gt = std::conditional_t<Tr::kWgmma, BackwardWgmmaTraits<T>,
                                std::conditional_t<Tr::kMma, BackwardMmaTraits<T>, Tr>>;
  static_assert(Gt::kBlockM == Tr::kBlockM, "scale partials: one per row tile of kBlockM");
  const int64_t row_tiles = (p.n + Gt::kBlockM - 1) / Gt::kBlockM;
  // Without a gradient output (grad_logit_scale alone) the accumulator is never touched.  (The
  // Hopper kernel: its shared memory is fixed, its pass width its register slots'.)
  int32_t cols = 0;
  if constexpr (Tr::kWgmma)
    cols = wgmma_pass_columns<Gt>(p.d);
  else
    cols = grad_pass_columns<Gt>(p.d, smem_optin);
  auto smem = [&](const void* out) -> size_t {
    if constexpr (Tr::kWgmma) {
      (void)out;
      return Gt::kSmem;
    } else {
      return Gt::kGradSmemFixed + sizeof(float) * Gt::kBlockM * size_t(out != nullptr ? cols : 0);
    }
  };
  // The split launches (tensor cores, few row tiles) finish in grad_split_reduce_kernel.
  auto finish = [&](const BackwardParams& bp, int64_t rows) -> LaunchResult {
    if (bp.grad_splits > 1 && (bp.transposed ? bp.grad_b : bp.grad_a) != nullptr)
      FLASHNCE_LAUNCH("grad_split_reduce_kernel", grad_split_reduce_kernel<T>,
                      (rows * p.d + 255) / 256, 256, 0, stream, bp);
    return LaunchResult{};
  };
  const int32_t splits_rows = Tr::kMma ? bp_in.splits_rows : 1;
  if (bp_in.grad_a != nullptr || bp_in.grad_logit_scale != nullptr) {
    BackwardParams bp = bp_in;
    bp.transposed = 0;
    bp.grad_pass_cols = cols;
    bp.grad_splits = splits_rows;
    LaunchResult r = launch_grad<Tr>(bp, row_tiles * bp.grad_splits, smem(bp.grad_a),
                                     "grad_kernel(rows)", stream);
    if (r.error == cudaSuccess)
      r = finish(bp, p.n);
    if (r.error != cudaSuccess)
      return r;
  }
  if (bp_in.grad_b != nullptr && !p.self_mode) {
    BackwardParams bp = bp_in;
    bp.transposed = 1;
    bp.grad_logit_scale = nullptr;
    bp.grad_pass_cols = cols;
    bp.grad_splits = Tr::kMma ? bp_in.splits_cols : 1;
    LaunchResult r = launch_grad<Tr>(bp, (p.m + Gt::kBlockM - 1) / Gt::kBlockM * bp.grad_splits,
                                     smem(bp.grad_b), "grad_kernel(columns)", stream);
    if (r.error == cudaSuccess)
      r = finish(bp, p.m);
    if (r.error != cudaSuccess)
      return r;
  }
  if (bp_in.grad_logit_scale != nullptr)
    FLASHNCE_LAUNCH("scale_reduce_kernel", scale_reduce_kernel<R>, 1, R, R * sizeof(float), stream,
                    bp_in, row_tiles * splits_rows);
  return LaunchResult{};
}

#undef FLASHNCE_LAUNCH

} // namespace kernels
} // namespace flashnce
