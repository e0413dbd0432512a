// Instantiation: the Hopper (sm_90a: TMA + mbarrier + wgmma) forward and backward for bf16 inputs.
// Compiled for sm_90a only (host/CMakeLists.txt, flashnce_sm90a).
#include "kernels/loss/loss_launch.cuh"

namespace flashnce {
namespace kernels {

static_assert(ForwardWgmmaTraits<bfloat16_t>::kBlockM ==
                      forward_tile_shape(TileConfig::wgmma).block_m &&
                  ForwardWgmmaTraits<bfloat16_t>::kBlockN ==
                      forward_tile_shape(TileConfig::wgmma).block_n,
              "forward_tile_shape() must match the traits");
static_assert(BackwardWgmmaTraits<bfloat16_t>::kPassCols == kWgmmaBackwardMaxDepth,
              "kWgmmaBackwardMaxDepth must match the traits");

template LaunchResult run_forward<WgmmaTraits<bfloat16_t>>(const ForwardParams&, cudaStream_t);
template LaunchResult run_backward<WgmmaTraits<bfloat16_t>>(const BackwardParams&, size_t,
                                                            cudaStream_t);

} // namespace kernels
} // namespace flashnce
