// Instantiation: the TF32 tensor-core (mma.sync m16n8k8, allow_tf32) loss kernels for f32 inputs.
// One translation unit per (dtype x tile configuration) so that the build parallelises.
#include "kernels/loss/loss_launch.cuh"

namespace flashnce {
namespace kernels {

static_assert(BackwardMmaTraits<float>::kBlockM == tile_shape(TileConfig::mma).block_m &&
                  BackwardMmaTraits<float>::kBlockN == tile_shape(TileConfig::mma).block_n,
              "tile_shape() must match the traits");
static_assert(ForwardMmaTraits<float>::kBlockM == forward_tile_shape(TileConfig::mma).block_m &&
                  ForwardMmaTraits<float>::kBlockN == forward_tile_shape(TileConfig::mma).block_n,
              "forward_tile_shape() must match the traits");

template LaunchResult run_forward<MmaTraits<float>>(const ForwardParams&, cudaStream_t);
template LaunchResult run_backward<MmaTraits<float>>(const BackwardParams&, size_t, cudaStream_t);

} // namespace kernels
} // namespace flashnce
