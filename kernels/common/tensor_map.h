// tensor_map.h — host side of TMA: builds the CUtensorMap of a 2-D row-major tensor for
// tma_load_2d (tma.cuh).
//
// On a GPU build the driver's cuTensorMapEncodeTiled is reached through the runtime
// (cudaGetDriverEntryPointByVersion, so no libcuda link); under the CPU emulator the same call
// returns the emulator's encoder (tests/emu/cuda_emu_api.cpp), which checks the parameters as the
// driver documents them and writes an emulator-defined encoding.  Host code only.
#pragma once

#include <cuda.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace flashnce::kernels {

/// The tensor: `rows` rows of `cols` elements of `type`, row r at byte r * row_stride_bytes of
/// `base` (16-byte aligned; the stride a multiple of 16).  The box: box_rows x box_cols elements
/// (each <= 256; box_cols * element size a multiple of 16, at most the swizzle span when
/// swizzled).  Out-of-bounds elements read as zero.  cudaErrorInvalidValue when the driver
/// rejects the parameters, cudaErrorNotSupported without the driver entry point.
inline cudaError_t make_tensor_map_2d(CUtensorMap* map, CUtensorMapDataType type, const void* base,
                                      std::uint64_t cols, std::uint64_t rows,
                                      std::uint64_t row_stride_bytes, std::uint32_t box_cols,
                                      std::uint32_t box_rows, CUtensorMapSwizzle swizzle) {
  using Encode = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*,
                              const cuuint64_t*, const cuuint64_t*, const cuuint32_t*,
                              const cuuint32_t*, CUtensorMapInterleave, CUtensorMapSwizzle,
                              CUtensorMapL2promotion, CUtensorMapFloatOOBfill);
  void* fn = nullptr;
  cudaDriverEntryPointQueryResult status = cudaDriverEntryPointSymbolNotFound;
  if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault,
                                       &status) != cudaSuccess ||
      status != cudaDriverEntryPointSuccess || fn == nullptr) {
    cudaGetLastError();
    return cudaErrorNotSupported;
  }
  const cuuint64_t dims[2] = {cols, rows};
  const cuuint64_t strides[1] = {row_stride_bytes};
  const cuuint32_t box[2] = {box_cols, box_rows};
  const cuuint32_t element_strides[2] = {1, 1};
  const CUresult r = reinterpret_cast<Encode>(fn)(
      map, type, 2, const_cast<void*>(base), dims, strides, box, element_strides,
      CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle, CU_TENSOR_MAP_L2_PROMOTION_L2_128B,
      CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return r == CUDA_SUCCESS ? cudaSuccess : cudaErrorInvalidValue;
}

} // namespace flashnce::kernels
