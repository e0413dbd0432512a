// Internal: exp for the host backend's epilogues, written so that the compiler vectorises it
// (no calls, no branches, no float-to-int conversion: libm's expf is a call per element).
//
//   exp(x) = 2^n . e^r,  n = round(x / ln 2),  r = x - n ln 2 (ln 2 split in two parts, so r is
//   exact to a few ulps), e^r by Cephes' degree-5 polynomial on |r| <= ln(2)/2; 2^n enters the
//   exponent bits.  Relative error <= 2 ulp on [-87, 88] (tests/host/host_backend_test.cpp
//   checks it against std::exp).
// Hazards: NaN in -> NaN out; x > 88.72 (e^x past FLT_MAX) -> +inf; x < -86.6 -> 0 (results
// below ~2^-125 are flushed: the exponent-bit scaling cannot build subnormals); -inf -> 0.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>

// FLASHNCE_CLONES: the host backend's hot loops compiled for AVX-512, AVX2 and baseline x86-64,
// picked at load time.  GCC only: Clang (14) rejects target_clones on function templates.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__ELF__) &&         \
    !defined(FLASHNCE_NO_CLONES)
#define FLASHNCE_CLONES                                                                            \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FLASHNCE_CLONES
#endif

namespace flashnce {
namespace host_backend {

inline float exp_f32(float x) {
  const float log2e = 1.44269504088896341f;
  const float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
  const float magic = 12582912.0f; // 1.5 . 2^23: x + magic rounds x to an integer (|x| < 2^22)
  // Clamp first so that n stays in [-125, 128] (comparisons with NaN are false: NaN passes).
  float xc = x < -86.6f ? -86.6f : x;
  xc = xc > 88.8f ? 88.8f : xc;
  const float rn = xc * log2e + magic;
  const float n = rn - magic;
  const float r = (xc - n * ln2_hi) - n * ln2_lo;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // 2^n: add n to the exponent field.  rn's low mantissa bits hold n + 2^22 (two's complement
  // arithmetic on the bit pattern, no conversion).
  uint32_t rb, pb;
  std::memcpy(&rb, &rn, 4);
  std::memcpy(&pb, &p, 4);
  const uint32_t nbits = (rb - 0x4B400000u) << 23; // 0x4B400000 = bits of 1.5 . 2^23
  pb += nbits;
  float out;
  std::memcpy(&out, &pb, 4);
  out = x < -86.6f ? 0.0f : out;
  out = x > 88.72f ? std::numeric_limits<float>::infinity() : out;
  return x != x ? x : out;
}

} // namespace host_backend
} // namespace flashnce
