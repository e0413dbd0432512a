// host/dtype.h: the bit-level f16/bf16 conversions against hand-picked values, and against the
// CUDA toolkit's host conversions on every 16-bit pattern (when the toolkit headers are present).
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "host/dtype.h"

namespace {

using namespace flashnce;

TEST(Dtype, HalfHandPickedValues) {
  using dtype_portable::float_to_half_bits;
  using dtype_portable::half_bits_to_float;
  EXPECT_EQ(half_bits_to_float(0x3c00), 1.0f);
  EXPECT_EQ(half_bits_to_float(0xc000), -2.0f);
  EXPECT_EQ(half_bits_to_float(0x7bff), 65504.0f);              // largest half
  EXPECT_EQ(half_bits_to_float(0x0001), std::ldexp(1.0f, -24)); // smallest subnormal
  EXPECT_EQ(half_bits_to_float(0x0400), std::ldexp(1.0f, -14)); // smallest normal
  EXPECT_EQ(half_bits_to_float(0x7c00), INFINITY);
  EXPECT_TRUE(std::isnan(half_bits_to_float(0x7e00)));
  EXPECT_EQ(float_to_half_bits(1.0f), 0x3c00);
  EXPECT_EQ(float_to_half_bits(65504.0f), 0x7bff);
  EXPECT_EQ(float_to_half_bits(65519.0f), 0x7bff); // below the midpoint to 65536
  EXPECT_EQ(float_to_half_bits(65520.0f), 0x7c00); // the midpoint ties to even = inf
  EXPECT_EQ(float_to_half_bits(1.0f + std::ldexp(1.0f, -11)), 0x3c00);     // tie, even stays
  EXPECT_EQ(float_to_half_bits(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02); // tie, rounds up
  EXPECT_EQ(float_to_half_bits(std::ldexp(1.0f, -25)), 0x0000);            // tie to even 0
  EXPECT_EQ(float_to_half_bits(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(float_to_half_bits(-0.0f), 0x8000);
  EXPECT_EQ(float_to_half_bits(NAN), 0x7fff);
}

TEST(Dtype, Bf16HandPickedValues) {
  using dtype_portable::bf16_bits_to_float;
  using dtype_portable::float_to_bf16_bits;
  EXPECT_EQ(bf16_bits_to_float(0x3f80), 1.0f);
  EXPECT_EQ(bf16_bits_to_float(0xc000), -2.0f);
  EXPECT_EQ(float_to_bf16_bits(1.0f), 0x3f80);
  EXPECT_EQ(float_to_bf16_bits(1.0f + std::ldexp(1.0f, -8)), 0x3f80);       // tie, even stays
  EXPECT_EQ(float_to_bf16_bits(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);   // tie, rounds up
  EXPECT_EQ(float_to_bf16_bits(std::numeric_limits<float>::max()), 0x7f80); // rounds to inf
  EXPECT_EQ(float_to_bf16_bits(-INFINITY), 0xff80);
  EXPECT_EQ(float_to_bf16_bits(NAN), 0x7fff);
}

TEST(Dtype, RoundTripIsExactForEveryPattern) {
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const uint16_t h = static_cast<uint16_t>(bits);
    const float fh = half_bits_to_float(h);
    const float fb = bf16_bits_to_float(h);
    if (std::isnan(fh)) {
      EXPECT_EQ(float_to_half_bits(fh), 0x7fff);
    } else {
      EXPECT_EQ(float_to_half_bits(fh), h) << std::hex << bits;
    }
    if (std::isnan(fb)) {
      EXPECT_EQ(float_to_bf16_bits(fb), 0x7fff);
    } else {
      EXPECT_EQ(float_to_bf16_bits(fb), h) << std::hex << bits;
    }
  }
}

TEST(Dtype, LoadStoreElement) {
  std::vector<uint16_t> buf(3);
  store_element(buf.data(), 2, FNCE_BF16, 1.5f);
  EXPECT_EQ(buf[2], 0x3fc0);
  EXPECT_EQ(load_element(buf.data(), 2, FNCE_BF16), 1.5f);
  store_element(buf.data(), 1, FNCE_F16, -0.5f);
  EXPECT_EQ(buf[1], 0xb800);
  EXPECT_EQ(load_element(buf.data(), 1, FNCE_F16), -0.5f);
  float f[2] = {0, 0};
  store_element(f, 1, FNCE_F32, 0.1f);
  EXPECT_EQ(load_element(f, 1, FNCE_F32), 0.1f);
  EXPECT_EQ(round_to_dtype(0.1f, FNCE_F32), 0.1f);
  EXPECT_EQ(round_to_dtype(1.0f + std::ldexp(1.0f, -12), FNCE_F16), 1.0f);
}

// Floats that probe every rounding decision around a 16-bit value x (given as float) whose
// neighbour above is `up`: x itself, the midpoint (a tie), and the floats just around it.
std::vector<float> probes_between(float x, float up) {
  std::vector<float> out{x, std::nextafter(x, -INFINITY), std::nextafter(x, INFINITY)};
  if (std::isfinite(x) && std::isfinite(up)) {
    const float mid = x + (up - x) / 2; // exact: both are 16-bit values, the midpoint fits a float
    out.push_back(mid);
    out.push_back(std::nextafter(mid, -INFINITY));
    out.push_back(std::nextafter(mid, INFINITY));
  }
  return out;
}

// Round to nearest, ties to even, checked by definition (distances in double) on every rounding
// decision of every positive finite 16-bit value; independent of how the conversion is written.
template <class ToBits, class ToFloat>
void check_nearest_even(ToBits to_bits, ToFloat to_float, uint16_t max_finite) {
  for (uint32_t bits = 0; bits < max_finite; ++bits) {
    const float lo = to_float(static_cast<uint16_t>(bits));
    const float hi = to_float(static_cast<uint16_t>(bits + 1));
    for (float x : probes_between(lo, hi)) {
      if (!(x >= lo && x <= hi))
        continue; // belongs to the neighbouring interval
      const uint16_t r = to_bits(x);
      const double dlo = static_cast<double>(x) - lo, dhi = static_cast<double>(hi) - x;
      const uint32_t expected = dlo < dhi   ? bits
                                : dhi < dlo ? bits + 1
                                            : (bits % 2 ? bits + 1 : bits);
      ASSERT_EQ(r, expected) << "x = " << x << " between patterns " << std::hex << bits << ", "
                             << bits + 1;
    }
  }
}

TEST(Dtype, RoundsToNearestEvenByDefinition) {
  check_nearest_even(dtype_portable::float_to_half_bits, dtype_portable::half_bits_to_float,
                     0x7bff);
  check_nearest_even(dtype_portable::float_to_bf16_bits, dtype_portable::bf16_bits_to_float,
                     0x7f7f);
}

#if defined(FLASHNCE_HAVE_CUDA_HEADERS)
// The public functions are the toolkit's here; the portable ones must agree bit for bit, on every
// 16-bit pattern (to float) and on every rounding decision around each of them (from float).
TEST(Dtype, PortableMatchesCudaToolkitOnAllPatterns) {
  int64_t checked = 0;
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const uint16_t h = static_cast<uint16_t>(bits);
    ASSERT_EQ(float_bits(dtype_portable::half_bits_to_float(h)), float_bits(half_bits_to_float(h)))
        << "half " << std::hex << bits;
    ASSERT_EQ(float_bits(dtype_portable::bf16_bits_to_float(h)), float_bits(bf16_bits_to_float(h)))
        << "bf16 " << std::hex << bits;
    // Neighbour above in magnitude (same sign): its midpoint is a tie.
    const uint16_t next = static_cast<uint16_t>((h & 0x7fffu) == 0x7fffu ? h : h + 1);
    for (float x : probes_between(half_bits_to_float(h), half_bits_to_float(next))) {
      ASSERT_EQ(dtype_portable::float_to_half_bits(x), float_to_half_bits(x))
          << "float->half " << x << " near pattern " << std::hex << bits;
      ++checked;
    }
    for (float x : probes_between(bf16_bits_to_float(h), bf16_bits_to_float(next))) {
      ASSERT_EQ(dtype_portable::float_to_bf16_bits(x), float_to_bf16_bits(x))
          << "float->bf16 " << x << " near pattern " << std::hex << bits;
      ++checked;
    }
  }
  // And random float bit patterns over the whole range.
  std::mt19937 rng(7);
  for (int k = 0; k < 1000000; ++k) {
    const float x = bits_float(static_cast<uint32_t>(rng()));
    ASSERT_EQ(dtype_portable::float_to_half_bits(x), float_to_half_bits(x)) << x;
    ASSERT_EQ(dtype_portable::float_to_bf16_bits(x), float_to_bf16_bits(x)) << x;
  }
  EXPECT_GT(checked, 500000);
}
#else
TEST(Dtype, PortableMatchesCudaToolkitOnAllPatterns) {
  GTEST_SKIP() << "CUDA toolkit headers not available: only the portable conversions are built";
}
#endif

} // namespace
