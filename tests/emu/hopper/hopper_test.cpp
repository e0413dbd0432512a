// The Hopper wrappers (kernels/common: mbarrier.cuh, tma.cuh, tensor_map.h, wgmma.cuh,
// warpgroup.cuh) on known answers: an mbarrier ring and named barriers pass data correctly, TMA
// lays each swizzle out as the CUDA documentation's chunk pattern says and zero-fills outside the
// tensor, the tensor-map encoder refuses what the driver refuses, and a warp-specialised
// TMA + mbarrier + wgmma GEMM matches a host GEMM for every swizzle, N, type and A source.  The
// same tests run on a GPU (cuda_emu_hopper_tests_gpu, sm_90a; they skip without a device).
#include "emu_test_util.h"
#include "hopper_kernels.h"

#include <cmath>
#include <cstring>
#include <random>
#include <string>

namespace emu_hopper {
namespace {

using emu_test::DeviceBuffer;
using flashnce::kernels::gmma::Swizzle;

TEST(EmuHopperMbarrier, RingOfFullAndEmptyBarriersPassesEveryValue) {
  EMU_REQUIRE_DEVICE();
  EMU_SEED_TRACE();
  for (int stages : {1, 2, 3, 4})
    for (int n : {32, 1000, 4096 + 7}) {
      std::vector<int> in(n);
      for (int i = 0; i < n; ++i)
        in[i] = i * 7 - 3;
      DeviceBuffer<int> din(in), dout(n);
      dout.fill_bytes(0);
      ASSERT_EQ(mbarrier_pipeline(din.get(), dout.get(), n, stages), cudaSuccess);
      const std::vector<int> out = dout.download();
      for (int i = 0; i < n; ++i)
        ASSERT_EQ(out[i], 3 * in[i] + 1) << "stages " << stages << " n " << n << " i " << i;
    }
}

TEST(EmuHopperNamedBarrier, ArriveAndSyncHandOffBothWays) {
  EMU_REQUIRE_DEVICE();
  EMU_SEED_TRACE();
  std::vector<int> in(128);
  for (int i = 0; i < 128; ++i)
    in[i] = 5 * i;
  DeviceBuffer<int> din(in), dout(256);
  dout.fill_bytes(0);
  ASSERT_EQ(named_barrier_handoff(din.get(), dout.get()), cudaSuccess);
  const std::vector<int> out = dout.download();
  for (int i = 0; i < 128; ++i) {
    EXPECT_EQ(out[i], in[i] + 1) << i;
    EXPECT_EQ(out[128 + i], 2 * (in[i] + 1)) << i;
  }
}

// ---- TMA ----------------------------------------------------------------------------------------
// Where the CUDA documentation's swizzle puts byte `o` of a box written as S-byte rows (the box at
// a 1024-byte boundary): in row r = o / S, 16-byte chunk j = (o % S) / 16 moves to chunk
// j ^ ((r * S / 128) % (S / 16)) -- 128B: j ^ (r % 8), 64B: j ^ ((r / 2) % 4), 32B: j ^ ((r / 4)
// % 2).  Written from the table, not from the address-bit formula of the code under test.
std::size_t documented_swizzle(std::size_t o, int span) {
  if (span == 0)
    return o;
  const std::size_t s = static_cast<std::size_t>(span);
  const std::size_t r = o / s, j = (o % s) / 16;
  const std::size_t jj = j ^ ((r * s / 128) % (s / 16));
  return r * s + jj * 16 + o % 16;
}

struct TmaCase {
  Swizzle swizzle;
  int elem_bytes;
  int box_cols, box_rows;
  int c0, c1; // may be negative / past the end: zero fill
};

class TmaTile : public ::testing::TestWithParam<TmaCase> {};

TEST_P(TmaTile, LaysTheBoxOutAsDocumented) {
  EMU_REQUIRE_DEVICE();
  EMU_SEED_TRACE();
  const TmaCase p = GetParam();
  const int rows = 100, cols = 200, stride = cols * p.elem_bytes + 32; // padded rows
  std::vector<unsigned char> src(static_cast<std::size_t>(rows) * stride);
  std::mt19937 rng(7);
  for (auto& b : src)
    b = static_cast<unsigned char>(rng() % 255 + 1); // never 0: zero fill is visible
  const int bytes = p.box_cols * p.box_rows * p.elem_bytes;
  DeviceBuffer<unsigned char> dsrc(src), dout(static_cast<std::size_t>(bytes));
  ASSERT_EQ(tma_tile(dsrc.get(), p.elem_bytes, cols, rows, stride, p.box_cols, p.box_rows, p.c0,
                     p.c1, p.swizzle, dout.get(), nullptr),
            cudaSuccess);
  const std::vector<unsigned char> out = dout.download();
  int zeros = 0;
  for (int r = 0; r < p.box_rows; ++r)
    for (int c = 0; c < p.box_cols; ++c)
      for (int b = 0; b < p.elem_bytes; ++b) {
        const std::size_t o = (static_cast<std::size_t>(r) * p.box_cols + c) * p.elem_bytes + b;
        const int gr = p.c1 + r, gc = p.c0 + c;
        const bool inside = gr >= 0 && gr < rows && gc >= 0 && gc < cols;
        const unsigned char want = inside ? src[static_cast<std::size_t>(gr) * stride +
                                                static_cast<std::size_t>(gc) * p.elem_bytes + b]
                                          : 0;
        zeros += !inside;
        ASSERT_EQ(out[documented_swizzle(o, static_cast<int>(p.swizzle))], want)
            << "box row " << r << " col " << c << " byte " << b;
      }
  if (p.c0 < 0 || p.c1 < 0 || p.c0 + p.box_cols > cols || p.c1 + p.box_rows > rows) {
    EXPECT_GT(zeros, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Swizzles, TmaTile,
    ::testing::Values(
        TmaCase{Swizzle::b128, 2, 64, 64, 8, 3}, TmaCase{Swizzle::b128, 4, 32, 16, 0, 0},
        TmaCase{Swizzle::b64, 2, 32, 40, 16, 9}, TmaCase{Swizzle::b64, 4, 16, 8, 4, 1},
        TmaCase{Swizzle::b32, 2, 16, 24, 40, 50}, TmaCase{Swizzle::b32, 4, 8, 32, 0, 5},
        TmaCase{Swizzle::none, 2, 24, 10, 3, 2}, TmaCase{Swizzle::none, 4, 12, 7, 1, 1},
        // out of bounds: before the start, past the end, both dimensions
        TmaCase{Swizzle::b128, 2, 64, 64, -20, -5}, TmaCase{Swizzle::b128, 2, 64, 64, 170, 60},
        TmaCase{Swizzle::b64, 4, 16, 32, 190, -30}, TmaCase{Swizzle::none, 2, 8, 16, -8, 90}),
    [](const ::testing::TestParamInfo<TmaCase>& i) {
      const TmaCase& c = i.param;
      return "Sw" + std::to_string(static_cast<int>(c.swizzle)) + "_E" +
             std::to_string(c.elem_bytes) + "_Box" + std::to_string(c.box_cols) + "x" +
             std::to_string(c.box_rows) + "_At" + std::to_string(i.index);
    });

TEST(EmuHopperTensorMap, EncoderRefusesWhatTheDriverDocumentsAsInvalid) {
  EMU_REQUIRE_DEVICE();
  DeviceBuffer<unsigned char> buf(1 << 16);
  const unsigned char* p = buf.get();
  EXPECT_EQ(tma_encode(p, 2, 64, 64, 128, 64, 64, Swizzle::b128), cudaSuccess);
  EXPECT_EQ(tma_encode(p, 2, 64, 64, 128, 32, 64, Swizzle::b64), cudaSuccess);
  EXPECT_EQ(tma_encode(p + 8, 2, 64, 64, 128, 64, 64, Swizzle::b128), cudaErrorInvalidValue)
      << "base not 16-byte aligned";
  EXPECT_EQ(tma_encode(p, 2, 64, 64, 136, 64, 64, Swizzle::b128), cudaErrorInvalidValue)
      << "row stride not a multiple of 16";
  EXPECT_EQ(tma_encode(p, 2, 128, 64, 256, 128, 64, Swizzle::b128), cudaErrorInvalidValue)
      << "box inner dimension 256 bytes > the 128-byte swizzle span";
  EXPECT_EQ(tma_encode(p, 2, 64, 64, 128, 64, 64, Swizzle::b64), cudaErrorInvalidValue)
      << "box inner dimension 128 bytes > the 64-byte swizzle span";
  EXPECT_EQ(tma_encode(p, 2, 64, 512, 128, 64, 257, Swizzle::b128), cudaErrorInvalidValue)
      << "box dimension above 256";
  EXPECT_EQ(tma_encode(p, 2, 64, 64, 128, 12, 64, Swizzle::none), cudaErrorInvalidValue)
      << "box inner dimension (24 bytes) not a multiple of 16";
  EXPECT_EQ(tma_encode(p, 2, 0, 64, 128, 8, 8, Swizzle::none), cudaErrorInvalidValue)
      << "zero dimension";
}

// ---- wgmma GEMM -----------------------------------------------------------------------------
std::uint16_t to_bits(float x, InputType t) {
  if (t == InputType::bf16) {
    __nv_bfloat16_raw r = __float2bfloat16(x);
    return r.x;
  }
  __half_raw r = __float2half(x);
  return r.x;
}
float from_bits(std::uint16_t b, InputType t) {
  if (t == InputType::bf16) {
    __nv_bfloat16_raw r;
    r.x = b;
    return __bfloat162float(__nv_bfloat16(r));
  }
  __half_raw r;
  r.x = b;
  return __half2float(__half(r));
}

struct GemmRun {
  int wrong = 0;        // elements outside the tolerance
  double max_error = 0; // relative to the bound
};

GemmRun run_gemm(const GemmConfig& cfg, int k) {
  const int m = 64 * cfg.consumers, n = cfg.n;
  std::mt19937 rng(static_cast<unsigned>(31 * n + k + static_cast<int>(cfg.swizzle)));
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<std::uint16_t> a(static_cast<std::size_t>(m) * k), b(static_cast<std::size_t>(n) * k);
  for (auto& x : a)
    x = to_bits(dist(rng), cfg.type);
  for (auto& x : b)
    x = to_bits(dist(rng), cfg.type);
  DeviceBuffer<std::uint16_t> da(a), db(b);
  DeviceBuffer<float> dc(static_cast<std::size_t>(m) * n);
  dc.fill_bytes(0);
  EXPECT_EQ(wgmma_gemm(cfg, da.get(), db.get(), dc.get(), k), cudaSuccess);
  const std::vector<float> c = dc.download();
  GemmRun r;
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double ref = 0, mag = 0;
      for (int q = 0; q < k; ++q) {
        const double p =
            static_cast<double>(from_bits(a[static_cast<std::size_t>(i) * k + q], cfg.type)) *
            from_bits(b[static_cast<std::size_t>(j) * k + q], cfg.type);
        ref += p;
        mag += std::fabs(p);
      }
      // f32 accumulation over k/16 wgmma steps: a few f32 roundings of partial sums.
      const double bound = 1e-5 * mag + 1e-6;
      const double err =
          std::fabs(static_cast<double>(c[static_cast<std::size_t>(i) * n + j]) - ref);
      if (!(err <= bound))
        ++r.wrong;
      r.max_error = std::max(r.max_error, std::isfinite(err) ? err / bound : 1e30);
    }
  return r;
}

class WgmmaGemm : public ::testing::TestWithParam<GemmConfig> {};

TEST_P(WgmmaGemm, MatchesTheHostGemm) {
  EMU_REQUIRE_DEVICE();
  EMU_SEED_TRACE();
  const GemmRun r = run_gemm(GetParam(), 128);
  EXPECT_EQ(r.wrong, 0) << "worst error / bound " << r.max_error;
}

GemmConfig gemm(InputType t, Swizzle s, int n, int consumers, bool regs) {
  GemmConfig c;
  c.type = t;
  c.swizzle = s;
  c.n = n;
  c.consumers = consumers;
  c.a_from_registers = regs;
  return c;
}

INSTANTIATE_TEST_SUITE_P(Shapes, WgmmaGemm,
                         ::testing::Values(gemm(InputType::bf16, Swizzle::b128, 64, 1, false),
                                           gemm(InputType::bf16, Swizzle::b128, 128, 1, false),
                                           gemm(InputType::bf16, Swizzle::b128, 256, 1, false),
                                           gemm(InputType::f16, Swizzle::b128, 128, 2, false),
                                           gemm(InputType::bf16, Swizzle::b64, 64, 1, false),
                                           gemm(InputType::f16, Swizzle::b64, 256, 2, false),
                                           gemm(InputType::bf16, Swizzle::b32, 128, 1, false),
                                           gemm(InputType::f16, Swizzle::b32, 64, 2, false),
                                           gemm(InputType::bf16, Swizzle::none, 64, 1, false),
                                           gemm(InputType::f16, Swizzle::none, 128, 2, false),
                                           gemm(InputType::bf16, Swizzle::b128, 128, 2, true),
                                           gemm(InputType::f16, Swizzle::b64, 64, 1, true),
                                           gemm(InputType::bf16, Swizzle::b32, 256, 1, true),
                                           gemm(InputType::bf16, Swizzle::none, 64, 2, true)),
                         [](const ::testing::TestParamInfo<GemmConfig>& i) {
                           const GemmConfig& c = i.param;
                           return std::string(c.type == InputType::bf16 ? "Bf16" : "F16") + "_Sw" +
                                  std::to_string(static_cast<int>(c.swizzle)) + "_N" +
                                  std::to_string(c.n) + "_M" + std::to_string(64 * c.consumers) +
                                  (c.a_from_registers ? "_ARegs" : "_ASmem");
                         });

TEST(EmuHopperWgmma, DescriptorWithTheWrongSwizzleGivesAWrongProduct) {
  EMU_REQUIRE_DEVICE();
  EMU_SEED_TRACE();
  GemmConfig c = gemm(InputType::bf16, Swizzle::b128, 64, 1, false);
  c.wrong_descriptor = true; // the tiles are 128B-swizzled, the descriptors say 64B
  const GemmRun r = run_gemm(c, 128);
  EXPECT_GT(r.wrong, 64 * 64 / 2) << "a descriptor / TMA swizzle mismatch went unnoticed";
}

} // namespace
} // namespace emu_hopper
