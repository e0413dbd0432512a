// Internal: exact conversions between float and the 16-bit storage types (IEEE half, bfloat16),
// shared by the CPU reference, the tests and the Python bindings.
//
//   float    half_bits_to_float(uint16_t)      exact (every half is a float)
//   uint16_t float_to_half_bits(float)         round to nearest, ties to even; overflow -> inf
//   float    bf16_bits_to_float(uint16_t)      exact
//   uint16_t float_to_bf16_bits(float)         round to nearest, ties to even; overflow -> inf
//   float    load_element(base, idx, dtype)    element idx of a dtype array, as float
//   void     store_element(base, idx, dtype, value)   rounds to the dtype (RNE)
//   float    round_to_dtype(value, dtype)      the float that store+load would give
//
// NaN: a NaN converts to the canonical NaN (half 0x7fff, bf16 0x7fff, float 0x7fffffff from a
// half NaN), exactly as the CUDA toolkit's host conversions do.
//
// With FLASHNCE_HAVE_CUDA_HEADERS the public functions call the CUDA toolkit's host conversions
// (cuda_fp16.h / cuda_bf16.h); otherwise the bit-level versions in namespace `dtype_portable`
// (kernels/common/dtype_bits.h, shared with the kernels), which are always compiled so that a test
// can check both agree on every bit pattern.
#pragma once

#include <cstdint>
#include <cstring>

#include "flashnce/flashnce.h"
#include "kernels/common/dtype_bits.h"

#if defined(FLASHNCE_HAVE_CUDA_HEADERS)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

namespace flashnce {

using dtype_portable::bits_float;
using dtype_portable::float_bits;

#if defined(FLASHNCE_HAVE_CUDA_HEADERS)
inline float half_bits_to_float(uint16_t h) {
  __half_raw raw;
  raw.x = h;
  return __half2float(__half(raw));
}
inline uint16_t float_to_half_bits(float f) {
  return static_cast<__half_raw>(__float2half_rn(f)).x;
}
inline float bf16_bits_to_float(uint16_t h) {
  __nv_bfloat16_raw raw;
  raw.x = h;
  return __bfloat162float(__nv_bfloat16(raw));
}
inline uint16_t float_to_bf16_bits(float f) {
  return static_cast<__nv_bfloat16_raw>(__float2bfloat16_rn(f)).x;
}
#else
inline float half_bits_to_float(uint16_t h) {
  return dtype_portable::half_bits_to_float(h);
}
inline uint16_t float_to_half_bits(float f) {
  return dtype_portable::float_to_half_bits(f);
}
inline float bf16_bits_to_float(uint16_t h) {
  return dtype_portable::bf16_bits_to_float(h);
}
inline uint16_t float_to_bf16_bits(float f) {
  return dtype_portable::float_to_bf16_bits(f);
}
#endif

inline float load_element(const void* base, int64_t idx, fnceDataType_t dtype) {
  switch (dtype) {
  case FNCE_F16:
    return half_bits_to_float(static_cast<const uint16_t*>(base)[idx]);
  case FNCE_BF16:
    return bf16_bits_to_float(static_cast<const uint16_t*>(base)[idx]);
  case FNCE_F32:
  default:
    return static_cast<const float*>(base)[idx];
  }
}

inline void store_element(void* base, int64_t idx, fnceDataType_t dtype, float value) {
  switch (dtype) {
  case FNCE_F16:
    static_cast<uint16_t*>(base)[idx] = float_to_half_bits(value);
    break;
  case FNCE_BF16:
    static_cast<uint16_t*>(base)[idx] = float_to_bf16_bits(value);
    break;
  case FNCE_F32:
  default:
    static_cast<float*>(base)[idx] = value;
    break;
  }
}

inline float round_to_dtype(float value, fnceDataType_t dtype) {
  switch (dtype) {
  case FNCE_F16:
    return half_bits_to_float(float_to_half_bits(value));
  case FNCE_BF16:
    return bf16_bits_to_float(float_to_bf16_bits(value));
  case FNCE_F32:
  default:
    return value;
  }
}

} // namespace flashnce
