// Instantiation: the tensor-core (mma.sync m16n8k16) loss kernels for bf16 inputs.  One translation
// unit per (dtype x tile configuration) so that the build parallelises.
#include "kernels/loss/loss_launch.cuh"

namespace flashnce {
namespace kernels {

static_assert(BackwardMmaTraits<bfloat16_t>::kBlockM == tile_shape(TileConfig::mma).block_m &&
                  BackwardMmaTraits<bfloat16_t>::kBlockN == tile_shape(TileConfig::mma).block_n,
              "tile_shape() must match the traits");
static_assert(ForwardMmaTraits<bfloat16_t>::kBlockM ==
                      forward_tile_shape(TileConfig::mma).block_m &&
                  ForwardMmaTraits<bfloat16_t>::kBlockN ==
                      forward_tile_shape(TileConfig::mma).block_n,
              "forward_tile_shape() must match the traits");

template LaunchResult run_forward<MmaTraits<bfloat16_t>>(const ForwardParams&, cudaStream_t);
template LaunchResult run_backward<MmaTraits<bfloat16_t>>(const BackwardParams&, size_t,
                                                          cudaStream_t);

} // namespace kernels
} // namespace flashnce
