// Instantiation: the tensor-core (mma.sync m16n8k16) loss kernels for f16 inputs.  One translation
// unit per (dtype x tile configuration) so that the build parallelises.
#include "kernels/loss/loss_launch.cuh"

namespace flashnce {
namespace kernels {

static_assert(BackwardMmaTraits<half_t>::kBlockM == tile_shape(TileConfig::mma).block_m &&
                  BackwardMmaTraits<half_t>::kBlockN == tile_shape(TileConfig::mma).block_n,
              "tile_shape() must match the traits");
static_assert(ForwardMmaTraits<half_t>::kBlockM == forward_tile_shape(TileConfig::mma).block_m &&
                  ForwardMmaTraits<half_t>::kBlockN == forward_tile_shape(TileConfig::mma).block_n,
              "forward_tile_shape() must match the traits");

template LaunchResult run_forward<MmaTraits<half_t>>(const ForwardParams&, cudaStream_t);
template LaunchResult run_backward<MmaTraits<half_t>>(const BackwardParams&, size_t, cudaStream_t);

} // namespace kernels
} // namespace flashnce
