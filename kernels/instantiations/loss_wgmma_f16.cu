// Instantiation: the Hopper (sm_90a: TMA + mbarrier + wgmma) forward for f16 inputs.  Compiled for
// sm_90a only (host/CMakeLists.txt, flashnce_sm90a); the backward of this configuration is the
// tensor-core one's (loss_mma_f16.cu).
#include "kernels/loss/loss_launch.cuh"

namespace flashnce {
namespace kernels {

static_assert(ForwardWgmmaTraits<half_t>::kBlockM ==
                      forward_tile_shape(TileConfig::wgmma).block_m &&
                  ForwardWgmmaTraits<half_t>::kBlockN ==
                      forward_tile_shape(TileConfig::wgmma).block_n,
              "forward_tile_shape() must match the traits");

template LaunchResult run_forward<WgmmaTraits<half_t>>(const ForwardParams&, cudaStream_t);

} // namespace kernels
} // namespace flashnce
