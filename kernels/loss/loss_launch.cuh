// Launch templates of the loss kernels (kept apart from the kernels, FlashAttention-style):
// grid/block/shared-memory choice, the > 48 KB opt-in, and a check after every launch.
// Launches go through cudaLaunchKernelEx (never <<< >>>) so that the emulator runs them too.
#pragma once

#include <cstdint>

#include "kernels/loss/forward_mma_kernel.cuh"
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

template <class Tr> LaunchResult run_forward(const ForwardParams& fp, cudaStream_t stream) {
  using T = typename Tr::T;
  constexpr int R = Tr::kReduceThreads;
  const ProblemParams& p = fp.pr;
  if (p.similarity != Similarity::dot) {
    const int64_t rows = p.self_mode ? p.n : p.n + p.m;
    FLASHNCE_LAUNCH("row_norms_kernel", row_norms_kernel<T>, (rows + 7) / 8, 256, 0, stream, p);
  }
  if constexpr (Tr::kMma) {
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
  const int64_t row_tiles = (p.n + Tr::kBlockM - 1) / Tr::kBlockM;
  // Without a gradient output (grad_logit_scale alone) the accumulator is never touched.
  const int32_t cols = grad_pass_columns<Tr>(p.d, smem_optin);
  auto smem = [&](const void* out) {
    return Tr::kGradSmemFixed + sizeof(float) * Tr::kBlockM * size_t(out != nullptr ? cols : 0);
  };
  if (bp_in.grad_a != nullptr || bp_in.grad_logit_scale != nullptr) {
    BackwardParams bp = bp_in;
    bp.transposed = 0;
    bp.grad_pass_cols = cols;
    FLASHNCE_LAUNCH("grad_kernel(rows)", grad_kernel<Tr>, row_tiles, Tr::kThreads, smem(bp.grad_a),
                    stream, bp);
  }
  if (bp_in.grad_b != nullptr && !p.self_mode) {
    BackwardParams bp = bp_in;
    bp.transposed = 1;
    bp.grad_logit_scale = nullptr;
    bp.grad_pass_cols = cols;
    FLASHNCE_LAUNCH("grad_kernel(columns)", grad_kernel<Tr>, (p.m + Tr::kBlockM - 1) / Tr::kBlockM,
                    Tr::kThreads, smem(bp.grad_b), stream, bp);
  }
  if (bp_in.grad_logit_scale != nullptr)
    FLASHNCE_LAUNCH("scale_reduce_kernel", scale_reduce_kernel<R>, 1, R, R * sizeof(float), stream,
                    bp_in, row_tiles);
  return LaunchResult{};
}

#undef FLASHNCE_LAUNCH

} // namespace kernels
} // namespace flashnce
