// Instantiation: the generic (FFMA) loss kernels for f32 inputs.  One translation unit per
// (dtype x tile configuration) so that the build parallelises.
#include "kernels/loss/loss_launch.cuh"

namespace flashnce {
namespace kernels {

static_assert(GenericTraits<float>::kBlockM == tile_shape(TileConfig::generic).block_m &&
                  GenericTraits<float>::kBlockN == tile_shape(TileConfig::generic).block_n,
              "tile_shape() must match the traits");

template LaunchResult run_forward<GenericTraits<float>>(const ForwardParams&, cudaStream_t);
template LaunchResult run_backward<GenericTraits<float>>(const BackwardParams&, size_t,
                                                         cudaStream_t);

} // namespace kernels
} // namespace flashnce
