// The tensor-core wrappers under the emulator: fragment layouts checked element by element, and
// GEMMs built from them compared with a naive product of the same (rounded) inputs.
#include "emu_test_util.h"
#include "emu_test_kernels.h"

#include <cmath>
#include <cstring>
#include <random>

namespace emu_test {
namespace {

constexpr int kN = 64;

std::uint16_t to_bits(float x, GemmType type) {
  if (type == GemmType::bf16) {
    __nv_bfloat16_raw r = __float2bfloat16(x);
    return r.x;
  }
  __half_raw r = __float2half(x);
  return r.x;
}
float from_bits(std::uint16_t b, GemmType type) {
  if (type == GemmType::bf16) {
    __nv_bfloat16_raw r;
    r.x = b;
    return __bfloat162float(__nv_bfloat16(r));
  }
  __half_raw r;
  r.x = b;
  return __half2float(__half(r));
}

// Naive C = A B in double, with a bound on |A||B| for the tolerance.
void naive_gemm(const std::vector<float>& a, const std::vector<float>& b, std::vector<double>& c,
                std::vector<double>& mag) {
  c.assign(kN * kN, 0.0);
  mag.assign(kN * kN, 0.0);
  for (int i = 0; i < kN; ++i)
    for (int j = 0; j < kN; ++j)
      for (int k = 0; k < kN; ++k) {
        c[i * kN + j] += static_cast<double>(a[i * kN + k]) * b[k * kN + j];
        mag[i * kN + j] += std::fabs(static_cast<double>(a[i * kN + k]) * b[k * kN + j]);
      }
}

class Gemm16 : public ::testing::TestWithParam<GemmType> {};

TEST_P(Gemm16, MatchesNaiveProductOfRoundedInputs) {
  EMU_REQUIRE_DEVICE();
  EMU_SEED_TRACE();
  const GemmType type = GetParam();
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<std::uint16_t> a(kN * kN), b(kN * kN);
  std::vector<float> af(kN * kN), bf(kN * kN);
  for (int i = 0; i < kN * kN; ++i) {
    a[i] = to_bits(dist(rng), type);
    b[i] = to_bits(dist(rng), type);
    af[i] = from_bits(a[i], type);
    bf[i] = from_bits(b[i], type);
  }
  std::vector<double> ref, mag;
  naive_gemm(af, bf, ref, mag);
  DeviceBuffer<std::uint16_t> da(a), db(b);
  DeviceBuffer<float> dc(kN * kN);
  ASSERT_EQ(gemm64_16bit(type, da.get(), db.get(), dc.get(), false), cudaSuccess);
  std::vector<float> c = dc.download();
  for (int i = 0; i < kN * kN; ++i)
    ASSERT_NEAR(c[i], ref[i], 1e-5 * mag[i] + 1e-6) << "row " << i / kN << " col " << i % kN;

  // A fragment bug (A registers 1 and 2 exchanged) must give a visibly wrong product.
  ASSERT_EQ(gemm64_16bit(type, da.get(), db.get(), dc.get(), true), cudaSuccess);
  c = dc.download();
  int wrong = 0;
  for (int i = 0; i < kN * kN; ++i)
    wrong += std::fabs(c[i] - ref[i]) > 1e-3 * mag[i] + 1e-3;
  EXPECT_GT(wrong, kN * kN / 2) << "a wrong fragment layout went unnoticed";
}

INSTANTIATE_TEST_SUITE_P(EmuTensorCore, Gemm16, ::testing::Values(GemmType::bf16, GemmType::f16),
                         [](const auto& info) {
                           return info.param == GemmType::bf16 ? "bf16" : "f16";
                         });

// cvt.rna.tf32.f32, computed independently: round |x| to 10 mantissa bits, ties away from zero.
float tf32_reference(float x) {
  if (!std::isfinite(x) || x == 0.0f)
    return x;
  int e;
  std::frexp(x, &e);                          // x = m * 2^e, 0.5 <= |m| < 1
  const double ulp = std::ldexp(1.0, e - 11); // 11 significant bits (1 implicit + 10)
  return static_cast<float>(std::round(static_cast<double>(x) / ulp) * ulp);
}

TEST(EmuTensorCore, FloatToTf32RoundsToNearestTiesAway) {
  EMU_REQUIRE_DEVICE();
  std::vector<float> in = {1.0f,      -1.0f,  0.0f,     3.14159265f,
                           -2.71828f, 1e-30f, 65504.0f, 1.0f + 0.5f / 1024};
  in.push_back(-(1.0f + 0.5f / 1024));                 // tie: away from zero
  in.push_back(1.0f + 0.5f / 1024 - 1.0f / (1 << 23)); // just below the tie
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> dist(-1000.0f, 1000.0f);
  for (int i = 0; i < 500; ++i)
    in.push_back(dist(rng));
  DeviceBuffer<float> din(in);
  DeviceBuffer<std::uint32_t> dout(in.size());
  ASSERT_EQ(to_tf32(din.get(), dout.get(), static_cast<int>(in.size())), cudaSuccess);
  std::vector<std::uint32_t> out = dout.download();
  for (size_t i = 0; i < in.size(); ++i) {
    float expect = tf32_reference(in[i]);
    std::uint32_t bits;
    std::memcpy(&bits, &expect, 4);
    EXPECT_EQ(out[i], bits) << "x = " << in[i];
    EXPECT_EQ(out[i] & 0x1FFFu, 0u);
  }
}

TEST(EmuTensorCore, Tf32GemmMatchesNaiveProductOfRoundedInputs) {
  EMU_REQUIRE_DEVICE();
  EMU_SEED_TRACE();
  std::mt19937 rng(12);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> a(kN * kN), b(kN * kN), ar(kN * kN), br(kN * kN);
  for (int i = 0; i < kN * kN; ++i) {
    a[i] = dist(rng);
    b[i] = dist(rng);
    ar[i] = tf32_reference(a[i]);
    br[i] = tf32_reference(b[i]);
  }
  std::vector<double> ref, mag, ref_unrounded, mag2;
  naive_gemm(ar, br, ref, mag);
  naive_gemm(a, b, ref_unrounded, mag2);
  DeviceBuffer<float> da(a), db(b), dc(kN * kN);
  ASSERT_EQ(gemm64_tf32(da.get(), db.get(), dc.get()), cudaSuccess);
  std::vector<float> c = dc.download();
  double max_tf32_effect = 0.0;
  for (int i = 0; i < kN * kN; ++i) {
    ASSERT_NEAR(c[i], ref[i], 1e-5 * mag[i] + 1e-6) << "row " << i / kN << " col " << i % kN;
    max_tf32_effect = std::max(max_tf32_effect, std::fabs(ref[i] - ref_unrounded[i]));
  }
  EXPECT_GT(max_tf32_effect, 1e-4) << "inputs should be visibly affected by tf32 rounding";
}

TEST(EmuTensorCore, LdmatrixRegisterLayoutsOfEveryVariant) {
  EMU_REQUIRE_DEVICE();
  EMU_SEED_TRACE();
  std::vector<std::uint16_t> m(256);
  for (int i = 0; i < 256; ++i)
    m[i] = static_cast<std::uint16_t>(1000 + i); // matrix*64 + row*8 + col
  DeviceBuffer<std::uint16_t> dm(m);
  DeviceBuffer<std::uint32_t> dout(6 * 4 * 32);
  dout.fill_bytes(0);
  ASSERT_EQ(ldmatrix_layouts(dm.get(), dout.get()), cudaSuccess);
  std::vector<std::uint32_t> out = dout.download();
  auto value = [&](int mat, int row, int col) {
    return static_cast<std::uint32_t>(m[mat * 64 + row * 8 + col]);
  };
  const int counts[3] = {1, 2, 4};
  for (int v = 0; v < 6; ++v) {
    const bool trans = v >= 3;
    const int count = counts[v % 3];
    for (int reg = 0; reg < count; ++reg)
      for (int lane = 0; lane < 32; ++lane) {
        // PTX ISA: lane l holds row l/4, columns 2(l%4) and 2(l%4)+1 (transposed: swapped roles).
        const int r = lane / 4, c = 2 * (lane % 4);
        const std::uint32_t lo = trans ? value(reg, c, r) : value(reg, r, c);
        const std::uint32_t hi = trans ? value(reg, c + 1, r) : value(reg, r, c + 1);
        EXPECT_EQ(out[(v * 4 + reg) * 32 + lane], lo | (hi << 16))
            << "variant " << v << " reg " << reg << " lane " << lane;
      }
  }
}

} // namespace
} // namespace emu_test
