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
// (cuda_fp16.h / cuda_bf16.h); otherwise the bit-level versions in namespace `dtype_portable`,
// which are always compiled so that a test can check both agree on every bit pattern.
#pragma once

#include <cstdint>
#include <cstring>

#include "flashnce/flashnce.h"

#if defined(FLASHNCE_HAVE_CUDA_HEADERS)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

namespace flashnce {

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// Bit-level conversions, independent of any toolkit.
namespace dtype_portable {

inline float half_bits_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1fu) { // inf keeps its sign; NaN becomes the canonical NaN
    return mantissa == 0 ? bits_float(sign | 0x7f800000u) : bits_float(0x7fffffffu);
  }
  if (exponent == 0) { // zero or subnormal: mantissa * 2^-24, exact in float
    const float magnitude = static_cast<float>(mantissa) * (1.0f / 16777216.0f);
    return sign ? -magnitude : magnitude;
  }
  // Normal: rebias the exponent from 15 to 127 (+112) and widen the mantissa (10 -> 23 bits).
  return bits_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

inline uint16_t float_to_half_bits(float f) {
  const uint32_t x = float_bits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u)
    return 0x7fffu; // NaN
  if (ax >= 0x477ff000u)
    return static_cast<uint16_t>(sign | 0x7c00u); // >= 65520 rounds to inf
  if (ax >= 0x38800000u) {                        // normal half (>= 2^-14)
    // Round the 13 dropped mantissa bits to nearest even; a carry moves into the exponent.
    const uint32_t rounded = ax + 0xfffu + ((ax >> 13) & 1u);
    return static_cast<uint16_t>(sign | ((rounded - 0x38000000u) >> 13));
  }
  if (ax <= 0x33000000u)
    return static_cast<uint16_t>(sign); // <= 2^-25: ties to even give 0
  // Subnormal half: value / 2^-24 = significand * 2^(e - 126), rounded to nearest even.
  const uint32_t e = ax >> 23;
  const uint32_t significand = (ax & 0x7fffffu) | 0x800000u;
  const uint32_t shift = 126u - e; // 14..24 here
  uint32_t q = significand >> shift;
  const uint32_t remainder = significand & ((1u << shift) - 1u);
  const uint32_t half_way = 1u << (shift - 1u);
  if (remainder > half_way || (remainder == half_way && (q & 1u)))
    ++q; // may become 0x400: fine
  return static_cast<uint16_t>(sign | q);
}

inline float bf16_bits_to_float(uint16_t h) {
  return bits_float(static_cast<uint32_t>(h) << 16);
}

inline uint16_t float_to_bf16_bits(float f) {
  const uint32_t x = float_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u)
    return 0x7fffu; // NaN
  // Round the 16 dropped bits to nearest even; overflow carries into inf, as it should.
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

} // namespace dtype_portable

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
