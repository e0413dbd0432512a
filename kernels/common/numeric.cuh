// Scalar helpers shared by every kernel: the storage types of the three dtypes, their exact
// conversions to and from f32 (round to nearest even: the toolkit's conversion intrinsics on a GPU,
// the bit-level twins of dtype_bits.h elsewhere), and IEEE special values, written so that the
// same source compiles under nvcc and under the host compiler with the SIMT emulator (tests/emu):
// no CUDA math-library call whose host counterpart might differ.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/common/dtype_bits.h"

#if !defined(CUDA_EMU) && defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

// A device function kept out of line (nvcc's __noinline__; under the emulator the host
// compiler's attribute: libstdc++'s own __attribute__((__noinline__)) rules out defining the
// CUDA keyword as a macro there).
#if defined(CUDA_EMU)
#define FLASHNCE_NOINLINE __attribute__((noinline))
#else
#define FLASHNCE_NOINLINE __noinline__
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

using dtype_portable::bits_float;
using dtype_portable::float_bits;

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
// On a GPU the conversion instructions (through the toolkit's intrinsics); elsewhere (the
// emulator, host code) the bit-level versions of kernels/common/dtype_bits.h.  Same results
// (round to nearest even), NaN included (canonical NaN).
__host__ __device__ inline float to_float(half_t x) {
#if !defined(CUDA_EMU) && defined(__CUDA_ARCH__)
  return __half2float(__ushort_as_half(x.bits));
#else
  return dtype_portable::half_bits_to_float(x.bits);
#endif
}

template <typename T> __host__ __device__ inline T from_float(float x);
template <> __host__ __device__ inline float from_float<float>(float x) {
  return x;
}
template <> __host__ __device__ inline bfloat16_t from_float<bfloat16_t>(float x) {
#if !defined(CUDA_EMU) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  return bfloat16_t{__bfloat16_as_ushort(__float2bfloat16_rn(x))};
#else
  return bfloat16_t{dtype_portable::float_to_bf16_bits(x)};
#endif
}
template <> __host__ __device__ inline half_t from_float<half_t>(float x) {
#if !defined(CUDA_EMU) && defined(__CUDA_ARCH__)
  return half_t{__half_as_ushort(__float2half_rn(x))};
#else
  return half_t{dtype_portable::float_to_half_bits(x)};
#endif
}

// Two f32 values rounded (to nearest even) to the 16-bit type T and packed into one 32-bit operand
// word, the first in the low half (the order of the mma fragments' element pairs).  On a GPU one
// cvt.rn.{f16x2,bf16x2}.f32 through the toolkit's intrinsics; elsewhere from_float (same
// rounding).
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

// Two consecutive f32 (8-byte aligned) as one 64-bit shared / global access: LDS.64 / STS.64 on a
// GPU; under the emulator a single 8-byte host access (a float2 struct copy may be split into two
// 4-byte ones, which the emulator's bank-conflict counters would see as such).
__device__ inline float2 load_pair(const float* p) {
#if defined(CUDA_EMU)
  uint64_t u;
  memcpy(&u, p, 8);
  return make_float2(bits_float(uint32_t(u)), bits_float(uint32_t(u >> 32)));
#else
  return *reinterpret_cast<const float2*>(p);
#endif
}
__device__ inline void store_pair(float* p, float2 v) {
#if defined(CUDA_EMU)
  const uint64_t u = uint64_t(float_bits(v.x)) | (uint64_t(float_bits(v.y)) << 32);
  memcpy(p, &u, 8);
#else
  *reinterpret_cast<float2*>(p) = v;
#endif
}

} // namespace kernels
} // namespace flashnce
