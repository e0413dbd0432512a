// Bit-level conversions between float and the 16-bit storage types (IEEE half, bfloat16), in plain
// C++ with no toolkit: round to nearest, ties to even; overflow -> inf; a NaN becomes the canonical
// NaN (half / bf16 0x7fff, float 0x7fffffff from a half NaN), as the CUDA toolkit's conversions do.
//
// The one copy shared by both sides: host/dtype.h (the CPU reference, tests, Python) and
// kernels/common/numeric.cuh (the kernels' fallback where no conversion instruction is used: the
// SIMT emulator).  tests/reference/dtype_test.cpp checks them against the toolkit on every 16-bit
// pattern.  Compiles as host C++, under nvcc (host + device) and under the emulator.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__) || defined(CUDA_EMU)
#define FLASHNCE_HOST_DEVICE __host__ __device__
#else
#define FLASHNCE_HOST_DEVICE
#endif

namespace flashnce {
namespace dtype_portable {

FLASHNCE_HOST_DEVICE inline uint32_t float_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

FLASHNCE_HOST_DEVICE inline float bits_float(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

FLASHNCE_HOST_DEVICE inline float half_bits_to_float(uint16_t h) {
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

FLASHNCE_HOST_DEVICE inline uint16_t float_to_half_bits(float f) {
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

FLASHNCE_HOST_DEVICE inline float bf16_bits_to_float(uint16_t h) {
  return bits_float(static_cast<uint32_t>(h) << 16);
}

FLASHNCE_HOST_DEVICE inline uint16_t float_to_bf16_bits(float f) {
  const uint32_t x = float_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u)
    return 0x7fffu; // NaN
  // Round the 16 dropped bits to nearest even; overflow carries into inf, as it should.
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

} // namespace dtype_portable
} // namespace flashnce
