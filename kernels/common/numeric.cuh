// Scalar helpers shared by every kernel: the storage types of the three dtypes, their exact
// conversions to and from f32 (round to nearest even), and IEEE special values, written so that
// the same source compiles under nvcc and under the host compiler with the SIMT emulator
// (tests/emu): no CUDA math-library call whose host counterpart might differ.
#pragma once

#include <cstdint>
#include <cstring>

#if !defined(CUDA_EMU) && defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

namespace flashnce {
namespace kernels {

// 16-bit storage types; arithmetic always happens in f32.
struct half_t {
  uint16_t bits;
};
struct bfloat16_t {
  uint16_t bits;
};

__host__ __device__ inline uint32_t float_bits(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  return u;
}
__host__ __device__ inline float bits_float(uint32_t u) {
  float x;
  memcpy(&x, &u, sizeof x);
  return x;
}
__host__ __device__ inline float neg_inf() {
  return bits_float(0xff800000u);
}
__host__ __device__ inline float quiet_nan() {
  return bits_float(0x7fc00000u);
}
// x - x is 0 exactly for finite x and NaN for +-inf and NaN (no fast-math anywhere).
__host__ __device__ inline bool is_finite(float x) {
  return x - x == 0.0f;
}

__host__ __device__ inline float to_float(float x) {
  return x;
}
__host__ __device__ inline float to_float(bfloat16_t x) {
  return bits_float(uint32_t(x.bits) << 16);
}
__host__ __device__ inline float to_float(half_t x) {
#if !defined(CUDA_EMU) && defined(__CUDA_ARCH__)
  return __half2float(__ushort_as_half(x.bits));
#else
  const uint32_t sign = uint32_t(x.bits & 0x8000u) << 16;
  const uint32_t exp = (x.bits >> 10) & 0x1fu;
  const uint32_t mant = x.bits & 0x3ffu;
  if (exp == 0) { // zero or subnormal: mant * 2^-24, exact in f32
    const float v = float(mant) * 5.9604644775390625e-8f;
    return bits_float(float_bits(v) | sign);
  }
  if (exp == 31)
    return bits_float(sign | 0x7f800000u | (mant << 13)); // inf / NaN
  return bits_float(sign | ((exp + 112u) << 23) | (mant << 13));
#endif
}

template <typename T> __host__ __device__ inline T from_float(float x);
template <> __host__ __device__ inline float from_float<float>(float x) {
  return x;
}
template <> __host__ __device__ inline bfloat16_t from_float<bfloat16_t>(float x) {
  const uint32_t u = float_bits(x);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return bfloat16_t{uint16_t((u >> 16) | 0x40u)};        // NaN
  const uint32_t rounded = u + 0x7fffu + ((u >> 16) & 1u); // round to nearest even
  return bfloat16_t{uint16_t(rounded >> 16)};
}
template <> __host__ __device__ inline half_t from_float<half_t>(float f) {
  uint32_t x = float_bits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  x &= 0x7fffffffu;
  if (x > 0x7f800000u)
    return half_t{uint16_t(sign | 0x7e00u)}; // NaN
  if (x >= 0x477ff000u)
    return half_t{uint16_t(sign | 0x7c00u)}; // rounds to +-inf
  if (x < 0x38800000u) {                     // below 2^-14: subnormal
    if (x <= 0x33000000u)
      return half_t{uint16_t(sign)}; // <= 2^-25 rounds to 0
    const uint32_t e = x >> 23;
    const uint32_t mant = (x & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - e; // 14..24
    uint32_t r = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1u);
    const uint32_t halfway = 1u << (shift - 1u);
    if (rem > halfway || (rem == halfway && (r & 1u)))
      ++r;
    return half_t{uint16_t(sign | r)};
  }
  uint32_t r = (x - 0x38000000u) >> 13; // rebias the exponent (127 -> 15)
  const uint32_t rem = x & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u)))
    ++r; // a carry into the exponent is right
  return half_t{uint16_t(sign | r)};
}

} // namespace kernels
} // namespace flashnce
