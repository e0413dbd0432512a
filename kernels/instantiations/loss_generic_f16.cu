// Instantiation: the generic (FFMA) loss kernels for f16 inputs.  One translation unit per
// (dtype x tile configuration) so that the build parallelises.
#include "kernels/loss/loss_launch.cuh"

namespace flashnce {
namespace kernels {

static_assert(GenericTraits<half_t>::kBlockM == tile_shape(TileConfig::generic).block_m &&
                  GenericTraits<half_t>::kBlockN == tile_shape(TileConfig::generic).block_n,
              "tile_shape() must match the traits");

template LaunchResult run_forward<GenericTraits<half_t>>(const ForwardParams&, cudaStream_t);
template LaunchResult run_backward<GenericTraits<half_t>>(const BackwardParams&, size_t,
                                                          cudaStream_t);

} // namespace kernels
} // namespace flashnce
