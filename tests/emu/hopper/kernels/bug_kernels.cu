// Kernels with the Hopper bugs the emulator must catch (mbarrier phases and transaction counts,
// TMA alignment and completion, named barriers, wgmma protocol, setmaxnreg uniformity).  Each is
// wrong CUDA on purpose (most would hang or give garbage on a GPU); the death tests
// (hopper_emu_test.cpp) check the emulator's message.  They compile with nvcc, never run there.
#include "hopper_kernels.h"

#include "kernels/common/mbarrier.cuh"
#include "kernels/common/shared_memory.cuh"
#include "kernels/common/tensor_map.h"
#include "kernels/common/tma.cuh"
#include "kernels/common/warpgroup.cuh"
#include "kernels/common/wgmma.cuh"

namespace emu_hopper {
namespace {

using namespace flashnce::kernels;

// Dynamic shared memory: [0, 16384) two 8192-byte tiles (TMA box / wgmma A, wgmma B), the mbarrier
// at 16384.
__global__ void hopper_bug_kernel(Bug bug, const __grid_constant__ CUtensorMap map,
                                  float* scratch) {
  unsigned char* smem = dynamic_shared_memory<unsigned char>();
  auto* bar = reinterpret_cast<std::uint64_t*>(smem + 16384);
  const unsigned t = threadIdx.x;
  if (bug == Bug::mbarrier_uninitialised) {
    mbarrier_wait_parity(bar, 0);
    return;
  }
  if (t == 0) {
    mbarrier_init(bar, 1);
    fence_mbarrier_init();
  }
  __syncthreads();
  switch (bug) {
  case Bug::mbarrier_wrong_parity:
    if (t == 0)
      mbarrier_arrive(bar);       // phase 0 completes; the barrier is now in phase 1
    mbarrier_wait_parity(bar, 1); // phase 1: nobody arrives on it
    break;
  case Bug::mbarrier_tx_never_arrives:
    if (t == 0)
      mbarrier_arrive_expect_tx(bar, 1024);
    mbarrier_wait_parity(bar, 0);
    break;
  case Bug::mbarrier_extra_arrival:
    if (t == 0)
      mbarrier_arrive_expect_tx(bar, 64); // the one arrival, the phase still waits for 64 bytes
    __syncthreads();
    if (t == 1)
      mbarrier_arrive(bar);
    break;
  case Bug::mbarrier_overwritten:
    if (t == 0) {
      *bar = 0; // a plain store into the barrier object
      mbarrier_arrive(bar);
    }
    break;
  case Bug::tma_tx_mismatch:
    if (t == 0) {
      mbarrier_arrive_expect_tx(bar, 8192 - 128);
      tma_load_2d(smem, &map, 0, 0, bar);
    }
    mbarrier_wait_parity(bar, 0);
    break;
  case Bug::tma_misaligned_dst:
    if (t == 0) {
      mbarrier_arrive_expect_tx(bar, 4096);
      tma_load_2d(smem + 64, &map, 0, 0, bar);
    }
    mbarrier_wait_parity(bar, 0);
    break;
  case Bug::tma_never_waited:
    if (t == 0) {
      mbarrier_arrive_expect_tx(bar, 8192);
      tma_load_2d(smem, &map, 0, 0, bar);
    }
    break;
  case Bug::named_count_mismatch:
    named_barrier_sync(1, t < 64 ? 128 : 64);
    break;
  case Bug::named_deadlock:
    if (t < 64)
      named_barrier_sync(1, 128);
    break;
  case Bug::wgmma_partial_warpgroup:
  case Bug::wgmma_without_fence:
  case Bug::wgmma_exit_in_flight:
  case Bug::wgmma_descriptor_outside:
  case Bug::wgmma_nonuniform: {
    float d[32];
    for (int i = 0; i < 32; ++i)
      d[i] = 0.0f;
    std::uint64_t da = wgmma_desc_k_major(smem, gmma::Swizzle::b128);
    const std::uint64_t db = wgmma_desc_k_major(smem + 8192, gmma::Swizzle::b128);
    if (bug == Bug::wgmma_descriptor_outside)
      da = gmma::k_major_swizzled_descriptor(wgmma_smem_address(smem) + 24576, gmma::Swizzle::b128);
    if (bug == Bug::wgmma_nonuniform && t == 77)
      da += 2; // 32 bytes further: another k slice
    if (bug != Bug::wgmma_without_fence)
      wgmma_fence();
    wgmma_ss<64, WgmmaType::bf16>(d, da, db, 0);
    wgmma_commit();
    if (bug != Bug::wgmma_exit_in_flight)
      wgmma_wait<0>();
    scratch[t] = d[0];
    break;
  }
  case Bug::setmaxnreg_nonuniform:
    if (t / 32 == 2)
      setmaxnreg_inc<232>();
    else
      setmaxnreg_dec<40>();
    break;
  default:
    break;
  }
}

} // namespace

cudaError_t run_bug(Bug bug, float* scratch) {
  alignas(128) CUtensorMap map;
  // A 64 x 64 bf16 tensor (scratch holds 8192 bytes), boxes of 64 x 64 with the 128-byte swizzle.
  cudaError_t e =
      make_tensor_map_2d(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, scratch, 64, 64, 128, 64,
                         bug == Bug::tma_misaligned_dst ? 32 : 64, CU_TENSOR_MAP_SWIZZLE_128B);
  if (e != cudaSuccess)
    return e;
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(1);
  cfg.blockDim = dim3(bug == Bug::wgmma_partial_warpgroup ? 96u : 128u);
  cfg.dynamicSmemBytes = 16384 + 8;
  return cudaLaunchKernelEx(&cfg, hopper_bug_kernel, bug, map, scratch);
}

} // namespace emu_hopper
