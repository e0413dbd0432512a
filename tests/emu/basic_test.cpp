// The emulator's basic features, each exercised by a small real kernel (kernels/basic_kernels.cu)
// and checked against a host computation.
#include "emu_test_util.h"
#include "emu_test_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

namespace emu_test {
namespace {

TEST(EmuBasic, BlockReductionMatchesHostSum) {
  EMU_REQUIRE_DEVICE();
  EMU_SEED_TRACE();
  for (int threads : {32, 128, 256, 1024}) {
    const int blocks = 7, per_block = 1000;
    std::vector<float> in(static_cast<size_t>(blocks) * per_block);
    std::mt19937 rng(threads);
    std::uniform_int_distribution<int> dist(-50, 50);
    for (auto& x : in)
      x = static_cast<float>(dist(rng)); // integers: every order sums exactly
    DeviceBuffer<float> d_in(in), d_out(blocks);
    ASSERT_EQ(block_reduce(d_in.get(), d_out.get(), per_block, blocks, threads), cudaSuccess);
    std::vector<float> out = d_out.download();
    for (int b = 0; b < blocks; ++b) {
      float expect =
          std::accumulate(in.begin() + b * per_block, in.begin() + (b + 1) * per_block, 0.0f);
      EXPECT_EQ(out[b], expect) << "block " << b << " threads " << threads;
    }
  }
}

TEST(EmuBasic, CLaunchApiFindsAKernelAlreadySeenByATypedCall) {
  EMU_REQUIRE_DEVICE();
  const int blocks = 3, per_block = 64;
  std::vector<float> in(blocks * per_block);
  for (size_t i = 0; i < in.size(); ++i)
    in[i] = static_cast<float>(i % 7);
  DeviceBuffer<float> d_in(in), d_out(blocks);
  ASSERT_EQ(block_reduce(d_in.get(), d_out.get(), per_block, blocks, 64), cudaSuccess); // typed
  d_out.fill_bytes(0);
  ASSERT_EQ(block_reduce_c_api(d_in.get(), d_out.get(), per_block, blocks, 64), cudaSuccess);
  std::vector<float> out = d_out.download();
  for (int b = 0; b < blocks; ++b)
    EXPECT_EQ(out[b],
              std::accumulate(in.begin() + b * per_block, in.begin() + (b + 1) * per_block, 0.0f));
}

#if defined(CUDA_EMU) // emulator-specific behaviour
TEST(EmuBasic, CLaunchApiNeedsTheParameterTypesFromSomeTypedCall) {
  EMU_REQUIRE_DEVICE();
  // An emulator limitation (README): a `const void*` carries no parameter types.  A kernel that
  // only ever goes through the C API is refused until a typed call (launch template,
  // cudaFuncGetAttributes/cudaFuncSetAttribute template, cuda_emu::register_kernel) has seen it.
  std::vector<float> data = {1, 2, 3, 4, 5};
  DeviceBuffer<float> d(data);
  EXPECT_EQ(scale_c_api(d.get(), 3.0f, 5, false), cudaErrorInvalidDeviceFunction);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidDeviceFunction);
  EXPECT_EQ(d.download(), data);
  ASSERT_EQ(scale_c_api(d.get(), 3.0f, 5, true), cudaSuccess);
  EXPECT_EQ(d.download(), (std::vector<float>{3, 6, 9, 12, 15}));
}
#endif

TEST(EmuBasic, ParameterlessKernelWithDeviceAndConstantSymbols) {
  EMU_REQUIRE_DEVICE();
  EMU_SEED_TRACE();
  const float weights[4] = {1.0f, 2.0f, 3.0f, 4.0f};
  int counter = -1;
  ASSERT_EQ(symbols(weights, 5, &counter), cudaSuccess);
  EXPECT_EQ(counter, 5 * 16 * (1 + 2 + 3 + 4));
}

TEST(EmuBasic, SharedMemoryTransposeOfNonSquareMatrix) {
  EMU_REQUIRE_DEVICE();
  EMU_SEED_TRACE();
  const int rows = 45, cols = 70;
  std::vector<float> in(rows * cols);
  for (int i = 0; i < rows * cols; ++i)
    in[i] = static_cast<float>(i);
  DeviceBuffer<float> d_in(in), d_out(rows * cols);
  d_out.fill_bytes(0);
  ASSERT_EQ(transpose(d_in.get(), d_out.get(), rows, cols), cudaSuccess);
  std::vector<float> out = d_out.download();
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c)
      ASSERT_EQ(out[c * rows + r], in[r * cols + c]) << r << "," << c;
}

TEST(EmuBasic, WarpScansWithEveryShuffleKindAndWidth) {
  EMU_REQUIRE_DEVICE();
  EMU_SEED_TRACE();
  std::vector<int> in(32);
  for (int l = 0; l < 32; ++l)
    in[l] = (l * 37 + 11) % 23 - 5;
  for (int width : {32, 16, 8, 4, 2, 1}) {
    DeviceBuffer<int> d_in(in), d_out(5 * 32);
    ASSERT_EQ(warp_shuffles(d_in.get(), d_out.get(), width), cudaSuccess);
    std::vector<int> out = d_out.download();
    for (int l = 0; l < 32; ++l) {
      const int base = l - l % width;
      int scan = 0, suffix = 0, sum = 0;
      for (int k = base; k <= l; ++k)
        scan += in[k];
      for (int k = l; k < base + width; ++k)
        suffix += in[k];
      for (int k = base; k < base + width; ++k)
        sum += in[k];
      const int src = base + (l * 5 + 3) % width;
      EXPECT_EQ(out[0 * 32 + l], scan) << "up, width " << width << " lane " << l;
      EXPECT_EQ(out[1 * 32 + l], suffix) << "down, width " << width << " lane " << l;
      EXPECT_EQ(out[2 * 32 + l], sum) << "xor, width " << width << " lane " << l;
      EXPECT_EQ(out[3 * 32 + l], in[src]) << "idx, width " << width << " lane " << l;
      EXPECT_EQ(out[4 * 32 + l], in[src]) << "idx modulo width, width " << width << " lane " << l;
    }
  }
}

TEST(EmuBasic, HalfWarpsInDivergentBranchesWithTheirOwnMasks) {
  EMU_REQUIRE_DEVICE();
  EMU_SEED_TRACE();
  std::vector<int> in(32);
  for (int l = 0; l < 32; ++l)
    in[l] = l * l - 3 * l;
  DeviceBuffer<int> d_in(in), d_sums(32);
  DeviceBuffer<unsigned> d_ballots(32);
  ASSERT_EQ(half_warp_collectives(d_in.get(), d_sums.get(), d_ballots.get()), cudaSuccess);
  std::vector<int> sums = d_sums.download();
  std::vector<unsigned> ballots = d_ballots.download();
  int low = 0, high = 0;
  unsigned odd_low = 0, odd_high = 0;
  for (int l = 0; l < 32; ++l) {
    (l < 16 ? low : high) += in[l];
    if (in[l] % 2 != 0)
      (l < 16 ? odd_low : odd_high) |= 1u << l;
  }
  for (int l = 0; l < 32; ++l) {
    EXPECT_EQ(sums[l], l < 16 ? low : high) << l;
    EXPECT_EQ(ballots[l], l < 16 ? odd_low : odd_high) << l;
  }
}

TEST(EmuBasic, VotesAndCountingBarriers) {
  EMU_REQUIRE_DEVICE();
  EMU_SEED_TRACE();
  std::vector<int> in(64);
  for (int t = 0; t < 64; ++t)
    in[t] = (t % 3 == 0) ? 1 : 0;
  DeviceBuffer<int> d_in(in);
  DeviceBuffer<unsigned> d_out(7);
  ASSERT_EQ(votes(d_in.get(), d_out.get()), cudaSuccess);
  std::vector<unsigned> out = d_out.download();
  unsigned ballot = 0;
  for (int l = 0; l < 32; ++l)
    if (in[l] > 0)
      ballot |= 1u << l;
  EXPECT_EQ(out[0], ballot);
  EXPECT_EQ(out[1], 1u);
  EXPECT_EQ(out[2], 0u);
  EXPECT_EQ(out[3], 0xffffffffu);
  EXPECT_EQ(out[4], static_cast<unsigned>(
                        std::count_if(in.begin(), in.end(), [](int v) { return v > 0; })));
  EXPECT_EQ(out[5], 0u);
  EXPECT_EQ(out[6], 1u);

  std::vector<int> all_true(64, 1);
  d_in.upload(all_true);
  ASSERT_EQ(votes(d_in.get(), d_out.get()), cudaSuccess);
  out = d_out.download();
  EXPECT_EQ(out[0], 0xffffffffu);
  EXPECT_EQ(out[2], 1u);
  EXPECT_EQ(out[4], 64u);
  EXPECT_EQ(out[5], 1u);
}

TEST(EmuBasic, ThreeDimensionalGridAndBlockIndices) {
  EMU_REQUIRE_DEVICE();
  EMU_SEED_TRACE();
  const dim3 grid(3, 2, 4), block(4, 3, 2);
  const unsigned total = 3 * 2 * 4 * 4 * 3 * 2;
  DeviceBuffer<unsigned> d_out(total);
  d_out.fill_bytes(0xff);
  ASSERT_EQ(grid_indices(d_out.get(), grid, block), cudaSuccess);
  std::vector<unsigned> out = d_out.download();
  for (unsigned i = 0; i < total; ++i)
    ASSERT_EQ(out[i], i);
}

TEST(EmuBasic, AtomicsOnGlobalAndSharedMemory) {
  EMU_REQUIRE_DEVICE();
  EMU_SEED_TRACE();
  const int n = 5000, bins = 37;
  std::vector<int> in(n);
  std::mt19937 rng(5);
  for (auto& v : in)
    v = static_cast<int>(rng() % bins);
  in[1234] = 0;
  DeviceBuffer<int> d_in(in);
  DeviceBuffer<unsigned> d_hist(bins);
  d_hist.fill_bytes(0);
  DeviceBuffer<int> d_stats(std::vector<int>{-1, 1 << 30, 0, 0, 0});
  DeviceBuffer<float> d_sum(std::vector<float>{0.0f});
  ASSERT_EQ(atomics(d_in.get(), n, bins, d_hist.get(), d_stats.get(), d_sum.get()), cudaSuccess);
  std::vector<unsigned> hist = d_hist.download();
  std::vector<unsigned> expect(bins, 0);
  for (int v : in)
    ++expect[v];
  EXPECT_EQ(hist, expect);
  std::vector<int> stats = d_stats.download();
  EXPECT_EQ(stats[0], *std::max_element(in.begin(), in.end()));
  EXPECT_EQ(stats[1], *std::min_element(in.begin(), in.end()));
  EXPECT_EQ(stats[2], 1);
  EXPECT_EQ(stats[3], 1);
  EXPECT_EQ(stats[4], 8 * 128);
  EXPECT_EQ(d_sum.download()[0], 0.5f * n); // halves sum exactly in f32 up to 2^24
}

TEST(EmuBasic, DynamicSharedMemoryWithinTheDefault48KB) {
  EMU_REQUIRE_DEVICE();
  EMU_SEED_TRACE();
  const int floats = 12 * 1024, blocks = 3; // exactly 48 KB
  std::vector<float> in(static_cast<size_t>(floats) * blocks);
  for (size_t i = 0; i < in.size(); ++i)
    in[i] = static_cast<float>(i % 5);
  DeviceBuffer<float> d_in(in), d_out(blocks);
  ASSERT_EQ(dynamic_smem_sum(d_in.get(), d_out.get(), floats, blocks), cudaSuccess);
  std::vector<float> out = d_out.download();
  for (int b = 0; b < blocks; ++b)
    EXPECT_EQ(out[b],
              std::accumulate(in.begin() + b * floats, in.begin() + (b + 1) * floats, 0.0f));
}

TEST(EmuBasic, DynamicSharedMemoryAbove48KBFailsTheLaunchWithoutOptIn) {
  EMU_REQUIRE_DEVICE();
  const int floats = 12 * 1024 + 1, blocks = 1; // 48 KB + 4 bytes
  DeviceBuffer<float> d_in(static_cast<size_t>(floats)), d_out(blocks);
  d_out.fill_bytes(0);
  cudaGetLastError();
  EXPECT_EQ(dynamic_smem_sum(d_in.get(), d_out.get(), floats, blocks), cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(d_out.download()[0], 0.0f) << "a failed launch must not run the kernel";
}

TEST(EmuBasic, DynamicSharedMemoryOptInUpTo227KB) {
  EMU_REQUIRE_DEVICE();
  EMU_SEED_TRACE();
  const int floats = 227 * 1024 / 4, blocks = 2;
  std::vector<float> in(static_cast<size_t>(floats) * blocks, 1.0f);
  DeviceBuffer<float> d_in(in), d_out(blocks);
  ASSERT_EQ(dynamic_smem_sum_opt_in(d_in.get(), d_out.get(), floats, blocks, true), cudaSuccess);
  std::vector<float> out = d_out.download();
  EXPECT_EQ(out[0], static_cast<float>(floats));
  EXPECT_EQ(out[1], static_cast<float>(floats));
  // Beyond the device's opt-in maximum the attribute itself is refused.
  EXPECT_EQ(dynamic_smem_sum_opt_in(d_in.get(), d_out.get(), floats + 1, 1, true),
            cudaErrorInvalidValue);
}

#if defined(CUDA_EMU) // emulator-specific behaviour
TEST(EmuBasic, DynamicSharedMemoryStartsAsNaNGarbage) {
  EMU_REQUIRE_DEVICE();
  const int words = 100;
  DeviceBuffer<unsigned> d_out(words);
  d_out.fill_bytes(0);
  ASSERT_EQ(read_uninitialised_smem(d_out.get(), words), cudaSuccess);
  std::vector<unsigned> out = d_out.download();
  for (int i = 0; i < words; ++i) {
    float f;
    std::memcpy(&f, &out[i], 4);
    EXPECT_TRUE(std::isnan(f)) << i;
  }
}
#endif

TEST(EmuBasic, InvalidLaunchConfigurationsAreRejected) {
  EMU_REQUIRE_DEVICE();
  DeviceBuffer<unsigned> d_out(4096);
  EXPECT_EQ(grid_indices(d_out.get(), dim3(1), dim3(1025)), cudaErrorInvalidConfiguration);
  EXPECT_EQ(grid_indices(d_out.get(), dim3(1), dim3(32, 1, 65)), cudaErrorInvalidConfiguration);
  EXPECT_EQ(grid_indices(d_out.get(), dim3(0), dim3(32)), cudaErrorInvalidConfiguration);
  EXPECT_EQ(grid_indices(d_out.get(), dim3(1, 65536), dim3(1)), cudaErrorInvalidConfiguration);
  cudaGetLastError();
}

} // namespace
} // namespace emu_test
