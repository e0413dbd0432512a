// Test kernels for the TMA wrappers (kernels/common/tma.cuh, tensor_map.h): one 2-D box into
// shared memory, completing on an mbarrier, its bytes copied out as they lie.  Standard CUDA.
#include "hopper_kernels.h"

#include "kernels/common/mbarrier.cuh"
#include "kernels/common/shared_memory.cuh"
#include "kernels/common/tensor_map.h"
#include "kernels/common/tma.cuh"
#include "kernels/common/wgmma.cuh"

namespace emu_hopper {
namespace {

using namespace flashnce::kernels;

CUtensorMapSwizzle tensor_map_swizzle(flashnce::kernels::gmma::Swizzle s) {
  using flashnce::kernels::gmma::Swizzle;
  return s == Swizzle::b128  ? CU_TENSOR_MAP_SWIZZLE_128B
         : s == Swizzle::b64 ? CU_TENSOR_MAP_SWIZZLE_64B
         : s == Swizzle::b32 ? CU_TENSOR_MAP_SWIZZLE_32B
                             : CU_TENSOR_MAP_SWIZZLE_NONE;
}

CUtensorMapDataType type_of(int elem_bytes) {
  return elem_bytes == 2   ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16
         : elem_bytes == 4 ? CU_TENSOR_MAP_DATA_TYPE_FLOAT32
                           : CU_TENSOR_MAP_DATA_TYPE_UINT8;
}

// The first 1024-aligned shared address at or after p (the 128-byte swizzle's repeat).
__device__ unsigned char* align_1024(unsigned char* p) {
  const std::uint32_t a = wgmma_smem_address(p);
  return p + (1024u - a % 1024u) % 1024u;
}

// The box at the first 1024-aligned shared address, its mbarrier after it.
__global__ void tma_tile_kernel(const __grid_constant__ CUtensorMap map, int c0, int c1, int bytes,
                                unsigned char* out, unsigned char* before) {
  unsigned char* smem = align_1024(dynamic_shared_memory<unsigned char>());
  auto* bar = reinterpret_cast<std::uint64_t*>(smem + bytes);
  if (threadIdx.x == 0) {
    mbarrier_init(bar, 1);
    fence_mbarrier_init();
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    mbarrier_arrive_expect_tx(bar, static_cast<std::uint32_t>(bytes));
    tma_load_2d(smem, &map, c0, c1, bar);
  }
  if (before != nullptr) // a missing wait: what the buffer held before the copy
    for (int i = static_cast<int>(threadIdx.x); i < bytes; i += blockDim.x)
      before[i] = smem[i];
  mbarrier_wait_parity(bar, 0);
  for (int i = static_cast<int>(threadIdx.x); i < bytes; i += blockDim.x)
    out[i] = smem[i];
}

} // namespace

cudaError_t tma_encode(const void* base, int elem_bytes, std::uint64_t cols, std::uint64_t rows,
                       std::uint64_t row_stride, std::uint32_t box_cols, std::uint32_t box_rows,
                       gmma::Swizzle swizzle) {
  alignas(128) CUtensorMap map;
  return make_tensor_map_2d(&map, type_of(elem_bytes), base, cols, rows, row_stride, box_cols,
                            box_rows, tensor_map_swizzle(swizzle));
}

cudaError_t tma_tile(const void* src, int elem_bytes, int cols, int rows, int row_stride,
                     int box_cols, int box_rows, int c0, int c1, gmma::Swizzle swizzle,
                     unsigned char* out, unsigned char* before) {
  alignas(128) CUtensorMap map;
  cudaError_t e =
      make_tensor_map_2d(&map, type_of(elem_bytes), src, static_cast<std::uint64_t>(cols),
                         static_cast<std::uint64_t>(rows), static_cast<std::uint64_t>(row_stride),
                         static_cast<std::uint32_t>(box_cols), static_cast<std::uint32_t>(box_rows),
                         tensor_map_swizzle(swizzle));
  if (e != cudaSuccess)
    return e;
  const int bytes = box_cols * box_rows * elem_bytes;
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(1);
  cfg.blockDim = dim3(128);
  cfg.dynamicSmemBytes = static_cast<std::size_t>(bytes) + 8 + 1024;
  if (cfg.dynamicSmemBytes > 48 * 1024) {
    e = cudaFuncSetAttribute(tma_tile_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(cfg.dynamicSmemBytes));
    if (e != cudaSuccess)
      return e;
  }
  return cudaLaunchKernelEx(&cfg, tma_tile_kernel, map, c0, c1, bytes, out, before);
}

} // namespace emu_hopper
