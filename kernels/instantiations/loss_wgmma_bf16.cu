// Instantiation: the Hopper (sm_90a: TMA + mbarrier + wgmma) forward for bf16 inputs.  Compiled for
// sm_90a only (host/CMakeLists.txt, flashnce_sm90a); the backward of this configuration is the
// tensor-core one's (loss_mma_bf16.cu).
#include "kernels/loss/loss_launch.cuh"

namespace flashnce {
namespace kernels {

static_assert(ForwardWgmmaTraits<bfloat16_t>::kBlockM ==
                      forward_tile_shape(TileConfig::wgmma).block_m &&
                  ForwardWgmmaTraits<bfloat16_t>::kBlockN ==
                      forward_tile_shape(TileConfig::wgmma).block_n,
              "forward_tile_shape() must match the traits");

template LaunchResult run_forward<WgmmaTraits<bfloat16_t>>(const ForwardParams&, cudaStream_t);

} // namespace kernels
} // namespace flashnce
