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

// Two f32 values rounded (to nearest even) to the 16-bit type T and packed into one 32-bit operand
// word, the first in the low half (the order of the mma fragments' element pairs).  On a GPU one
// cvt.rn.{f16x2,bf16x2}.f32 through the toolkit's intrinsics; elsewhere from_float (same rounding;
// only NaN payloads may differ).
template <typename T> __device__ inline uint32_t pack2(float lo, float hi);
template <> __device__ inline uint32_t pack2<half_t>(float lo, float hi) {
#if !defined(CUDA_EMU) && defined(__CUDA_ARCH__)
  const __half2 h = __floats2half2_rn(lo, hi);
  uint32_t u;
  memcpy(&u, &h, sizeof u);
  return u;
#else
  return uint32_t(from_float<half_t>(lo).bits) | (uint32_t(from_float<half_t>(hi).bits) << 16);
#endif
}
template <> __device__ inline uint32_t pack2<bfloat16_t>(float lo, float hi) {
#if !defined(CUDA_EMU) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  uint32_t u;
  memcpy(&u, &h, sizeof u);
  return u;
#else
  return uint32_t(from_float<bfloat16_t>(lo).bits) |
         (uint32_t(from_float<bfloat16_t>(hi).bits) << 16);
#endif
}

// f32 value of the low / high half of a packed word.
template <typename T> __device__ inline float unpack_lo(uint32_t w) {
  return to_float(T{uint16_t(w & 0xffffu)});
}
template <typename T> __device__ inline float unpack_hi(uint32_t w) {
  return to_float(T{uint16_t(w >> 16)});
}

// A pair of f32 values as two 16-bit operand words, v = hi + lo + (the rounding of lo): hi is v
// rounded to T, lo the exact f32 remainder v - hi rounded to T.  With both halves multiplied by an
// exact 16-bit operand (products exact in f32), the sum keeps 2 x 8 (bf16) or 2 x 11 (f16)
// significant bits of v.  Hazard: |v| beyond T's range makes hi infinite and lo NaN (callers keep
// f16 values in range by a power-of-two scale; bf16 has f32's range).
template <typename T>
__device__ inline void split_pair(float v0, float v1, uint32_t& hi, uint32_t& lo) {
  hi = pack2<T>(v0, v1);
  lo = pack2<T>(v0 - unpack_lo<T>(hi), v1 - unpack_hi<T>(hi));
}

} // namespace kernels
} // namespace flashnce
