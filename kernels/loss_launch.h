// The seam between the host dispatch (host/cuda/dispatch.cpp) and the kernels: launch templates
// declared here, defined in kernels/loss/loss_launch.cuh and explicitly instantiated once per
// (dtype x tile configuration) in kernels/instantiations/*.cu, so that the build parallelises and
// host code never sees device code.
#pragma once

#ifndef CUDA_EMU
#include <cuda_runtime.h>
#endif

#include <cstddef>
#include <cstdint>

#include "kernels/loss_params.h"

namespace flashnce {
namespace kernels {

// A failed launch: the CUDA error and which launch (kernel or runtime call) produced it.
struct LaunchResult {
  cudaError_t error = cudaSuccess;
  const char* what = "";
};

// Tile configurations (each one a traits struct in kernels/loss/loss_traits.cuh).
enum class TileConfig : int {
  generic = 0, // GenericTraits: FFMA logit GEMM, every dtype
  mma = 1,     // MmaTraits: tensor-core logit GEMM (bf16/f16 m16n8k16; f32 -> TF32 m16n8k8)
  wgmma = 2,   // WgmmaTraits (sm_90a, bf16/f16): the forward on TMA + wgmma; the backward is mma's
};

// The shape facts the host needs for workspace sizes (must match the traits; checked by
// static_assert in the instantiation files).
struct TileShape {
  int block_m; // rows per block of the forward and gradient kernels
  int block_n;
};
// The gradient kernels' tiles (GenericTraits; BackwardMmaTraits for the tensor cores).
constexpr TileShape tile_shape(TileConfig c) {
  return c == TileConfig::generic ? TileShape{64, 64} : TileShape{64, 128}; // wgmma: mma's
}
// The forward's logit tiles (ForwardMmaTraits for the tensor cores; the backward keeps
// tile_shape).
constexpr TileShape forward_tile_shape(TileConfig c) {
  return c == TileConfig::generic ? TileShape{64, 64} : TileShape{128, 128};
}

// The Hopper gradient kernel's largest depth (BackwardWgmmaTraits::kPassCols: one pass, its
// register slots); deeper problems take the mma.sync gradient kernel.
constexpr int64_t kWgmmaBackwardMaxDepth = 512;

// Forward: norms pre-pass (COSINE / NEG_SQ_DIST), main kernel on fp.grid_rows blocks, column merge
// (SYMMETRIC), fixed-order reduction (MEAN / SUM).  All on `stream`, asynchronous.
template <class Traits> LaunchResult run_forward(const ForwardParams& fp, cudaStream_t stream);
// Backward: norms, counts, weights, row-gradient kernel, column-gradient kernel (grad_b),
// grad_logit_scale reduction.  smem_optin: the device's opt-in shared memory per block
// (cudaDevAttrMaxSharedMemoryPerBlockOptin), which sets the gradient kernel's pass width.
template <class Traits>
LaunchResult run_backward(const BackwardParams& bp, size_t smem_optin, cudaStream_t stream);

template <typename Element> struct GenericTraits;
template <typename Element> struct MmaTraits;
template <typename Element> struct WgmmaTraits;
struct half_t; // kernels/common/numeric.cuh
struct bfloat16_t;

} // namespace kernels
} // namespace flashnce
