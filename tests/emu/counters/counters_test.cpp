// The emulator's performance counters (README "Counters") on kernels whose answers are worked out
// by hand in the comments: bank conflicts of a padded vs unpadded transpose, sectors of a coalesced
// vs strided copy, 64-bit shared accesses, broadcasts, ldmatrix, one mma, cp.async; and the model's
// pure functions on cases the kernels cannot produce (16-byte lanes, irregular sizes).
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "../emu_test_util.h"
#include "counter_kernels.h"
#include "cuda_emu_counters.h"

namespace {

using cuda_emu::LaunchCounters;
using emu_test::DeviceBuffer;

template <typename... P, typename... A>
LaunchCounters run_counted(void (*kernel)(P...), unsigned grid, unsigned block, std::size_t smem,
                           A... args) {
  cuda_emu::counters_enable(true);
  (void)cuda_emu::counters_take();
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(grid);
  cfg.blockDim = dim3(block);
  cfg.dynamicSmemBytes = smem;
  EXPECT_EQ(cudaLaunchKernelEx(&cfg, kernel, args...), cudaSuccess);
  cuda_emu::counters_enable(false);
  std::vector<LaunchCounters> r = cuda_emu::counters_take();
  EXPECT_EQ(r.size(), 1u);
  return r.empty() ? LaunchCounters{} : r[0];
}

class Counters : public ::testing::Test {
protected:
  void SetUp() override { EMU_SEED_TRACE(); }
};

// Rows stored conflict-free (32 consecutive words); columns read: with ld = 32 every lane's word
// is in bank r (32 wavefronts per request), with ld = 33 in bank (lane + r) % 32 (one).
TEST_F(Counters, TransposeUnpaddedIs32WayPaddedIsConflictFree) {
  std::vector<float> host(32 * 32);
  for (int i = 0; i < 32 * 32; ++i)
    host[i] = float(i);
  DeviceBuffer<float> in(host), out(32 * 32);
  for (int ld : {32, 33}) {
    const LaunchCounters c =
        run_counted(transpose_kernel, 1, 32, sizeof(float) * 32 * ld, in.get(), out.get(), ld);
    EXPECT_NE(std::string(c.kernel).find("transpose_kernel"), std::string::npos) << c.kernel;
    EXPECT_TRUE(c.accesses_instrumented);
    EXPECT_EQ(c.blocks, 1u);
    EXPECT_EQ(c.threads, 32u);
    EXPECT_EQ(c.dynamic_smem, sizeof(float) * 32 * ld);
    EXPECT_EQ(c.barriers, 1u);
    EXPECT_EQ(c.smem_store_requests, 32u);
    EXPECT_EQ(c.smem_store_wavefronts, 32u);
    EXPECT_EQ(c.smem_store_ideal, 32u);
    EXPECT_EQ(c.smem_load_requests, 32u);
    EXPECT_EQ(c.smem_load_ideal, 32u);
    EXPECT_EQ(c.smem_load_wavefronts, ld == 32 ? 32u * 32u : 32u) << "ld " << ld;
    // Global: 32 row reads and 32 row writes of 128 aligned bytes = 4 sectors each.
    EXPECT_EQ(c.gmem_load_requests, 32u);
    EXPECT_EQ(c.gmem_load_sectors, 128u);
    EXPECT_EQ(c.gmem_load_bytes, 4096u);
    EXPECT_EQ(c.gmem_store_requests, 32u);
    EXPECT_EQ(c.gmem_store_sectors, 128u);
    EXPECT_EQ(c.tensor_macs, 0u);
    const std::vector<float> t = out.download();
    EXPECT_EQ(t[1 * 32 + 2], host[2 * 32 + 1]); // it did transpose
  }
}

// 32 lanes x 4 bytes: stride 1 is 128 contiguous bytes (4 sectors); stride 8 puts every lane in
// its own 32-byte sector (32).  Four blocks: every count four times.
TEST_F(Counters, CoalescedVersusStridedCopy) {
  DeviceBuffer<float> in(32 * 8), out(32);
  for (int stride : {1, 8}) {
    const LaunchCounters c = run_counted(strided_copy_kernel, 4, 32, 0,
                                         static_cast<const float*>(in.get()), out.get(), stride);
    EXPECT_EQ(c.blocks, 4u);
    EXPECT_EQ(c.gmem_load_requests, 4u);
    EXPECT_EQ(c.gmem_load_sectors, 4u * (stride == 1 ? 4u : 32u)) << "stride " << stride;
    EXPECT_EQ(c.gmem_store_requests, 4u);
    EXPECT_EQ(c.gmem_store_sectors, 4u * 4u);
    EXPECT_EQ(c.smem_load_requests + c.smem_store_requests, 0u);
  }
}

// 8-byte lanes go in two half-warp phases of 128 bytes.  stride 1: one wavefront each (2);
// stride 2 (16 bytes apart): a half-warp spans 256 bytes, two words per bank (4); stride 0: every
// lane the same two words, a broadcast (2).  The fill: 4 requests of 32 consecutive 8-byte words.
TEST_F(Counters, SixtyFourBitSharedAccessesAndBroadcast) {
  DeviceBuffer<unsigned long long> out(32);
  for (int stride : {1, 2, 0}) {
    const LaunchCounters c = run_counted(wide_smem_kernel, 1, 32, 8 * 128, out.get(), stride);
    EXPECT_EQ(c.smem_store_requests, 4u);
    EXPECT_EQ(c.smem_store_wavefronts, 8u);
    EXPECT_EQ(c.smem_store_ideal, 8u);
    EXPECT_EQ(c.smem_load_requests, 1u);
    EXPECT_EQ(c.smem_load_ideal, 2u);
    EXPECT_EQ(c.smem_load_wavefronts, stride == 2 ? 4u : 2u) << "stride " << stride;
    EXPECT_EQ(c.gmem_store_sectors, 8u); // 256 bytes
  }
}

// ldmatrix.x4: lane l gives row l (a matrix per 8 lanes).  Rows 64 bytes apart: rows r and r + 2
// share banks, 4 rows per bank group, 4 wavefronts per matrix (16); 80 bytes apart (the kernels'
// padding): 8 disjoint bank groups, 1 per matrix (4).  One m16n8k16 = 16 * 8 * 16 MACs.
TEST_F(Counters, LdmatrixConflictsAndOneMma) {
  DeviceBuffer<float> out(32);
  for (int ld : {32, 40}) {
    const LaunchCounters c =
        run_counted(mma_ldmatrix_kernel, 1, 32, sizeof(uint16_t) * 32 * ld, out.get(), ld);
    EXPECT_EQ(c.mma_instructions, 1u);
    EXPECT_EQ(c.tensor_macs, 2048u);
    EXPECT_EQ(c.warp_collectives, 2u); // the ldmatrix and the mma
    EXPECT_EQ(c.ldmatrix_requests, 1u);
    EXPECT_EQ(c.ldmatrix_ideal, 4u);
    EXPECT_EQ(c.ldmatrix_wavefronts, ld == 32 ? 16u : 4u) << "ld " << ld;
    // The fill: ld requests of 32 consecutive halves (64 bytes, one wavefront each); ldmatrix is
    // counted among the loads.
    EXPECT_EQ(c.smem_store_requests, unsigned(ld));
    EXPECT_EQ(c.smem_store_wavefronts, unsigned(ld));
    EXPECT_EQ(c.smem_load_requests, 1u);
    EXPECT_EQ(c.smem_load_wavefronts, c.ldmatrix_wavefronts);
    EXPECT_EQ(out.download()[0], 16.0f); // a row of ones times a column of ones
  }
}

// 32 lanes x 16 bytes: one global request of 512 contiguous bytes (16 sectors) and one shared
// write in four quarter-warp phases (4 wavefronts); then a conflict-free 4-byte read.
TEST_F(Counters, CpAsyncCountsBothSides) {
  std::vector<float> host(128, 1.5f);
  DeviceBuffer<float> in(host), out(32);
  const LaunchCounters c =
      run_counted(cp_async_kernel, 1, 32, 512, static_cast<const float*>(in.get()), out.get());
  EXPECT_EQ(c.cp_async_requests, 1u);
  EXPECT_EQ(c.cp_async_bytes, 512u);
  EXPECT_EQ(c.gmem_load_requests, 1u);
  EXPECT_EQ(c.gmem_load_sectors, 16u);
  EXPECT_EQ(c.gmem_load_bytes, 512u);
  EXPECT_EQ(c.smem_store_requests, 1u);
  EXPECT_EQ(c.smem_store_wavefronts, 4u);
  EXPECT_EQ(c.smem_store_ideal, 4u);
  EXPECT_EQ(c.smem_load_requests, 1u);
  EXPECT_EQ(c.smem_load_wavefronts, 1u);
  EXPECT_EQ(c.barriers, 1u);
  EXPECT_EQ(out.download()[3], 1.5f);
}

TEST_F(Counters, OffUnlessEnabled) {
  DeviceBuffer<float> in(32), out(32);
  cuda_emu::counters_enable(false);
  (void)cuda_emu::counters_take();
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(1);
  cfg.blockDim = dim3(32);
  ASSERT_EQ(cudaLaunchKernelEx(&cfg, strided_copy_kernel, static_cast<const float*>(in.get()),
                               out.get(), 1),
            cudaSuccess);
  EXPECT_TRUE(cuda_emu::counters_take().empty());
}

// A dry run records the launch's shape and runs no block (the output keeps its bytes).
TEST_F(Counters, DryRunRecordsTheShapeOnly) {
  DeviceBuffer<float> in(32 * 8), out(32);
  out.fill_bytes(0x7f);
  cuda_emu::set_dry_run(true);
  const LaunchCounters c = run_counted(strided_copy_kernel, 5, 32, 64,
                                       static_cast<const float*>(in.get()), out.get(), 1);
  cuda_emu::set_dry_run(false);
  EXPECT_EQ(c.grid[0], 5u);
  EXPECT_EQ(c.block[0], 32u);
  EXPECT_EQ(c.dynamic_smem, 64u);
  EXPECT_EQ(c.blocks, 5u);
  EXPECT_EQ(c.threads, 5u * 32u);
  EXPECT_EQ(c.gmem_load_requests + c.gmem_store_requests, 0u);
  std::vector<float> host = out.download();
  uint32_t bits;
  std::memcpy(&bits, &host[0], 4);
  EXPECT_EQ(bits, 0x7f7f7f7fu);
}

// ---- the model's pure functions -----------------------------------------------------------------
using cuda_emu::detail::Access;
using cuda_emu::detail::LaneAccess;
using cuda_emu::detail::Space;

// 16-byte lanes: quarter-warp phases of 8 lanes.  Consecutive: 4 wavefronts; 32 bytes apart: a
// phase spans 256 bytes, 2 words per bank, 8.
TEST(CounterModel, SixteenByteLanes) {
  for (int stride : {16, 32}) {
    std::vector<LaneAccess> lanes;
    for (unsigned l = 0; l < 32; ++l)
      lanes.push_back(LaneAccess{l, 4096 + std::uintptr_t(l) * stride, 16});
    std::uint64_t wf = 0, ideal = 0;
    cuda_emu::detail::shared_request(lanes.data(), lanes.size(), &wf, &ideal);
    EXPECT_EQ(ideal, 4u);
    EXPECT_EQ(wf, stride == 16 ? 4u : 8u);
  }
}

// A partial warp (16 lanes) at a stride of 2 words: words 0, 2, .., 30 are in distinct banks, one
// wavefront.
TEST(CounterModel, PartialWarpAndMisalignedSectors) {
  std::vector<LaneAccess> lanes;
  for (unsigned l = 0; l < 16; ++l)
    lanes.push_back(LaneAccess{l, 8 * std::uintptr_t(l), 4});
  std::uint64_t wf = 0, ideal = 0;
  cuda_emu::detail::shared_request(lanes.data(), lanes.size(), &wf, &ideal);
  EXPECT_EQ(wf, 1u);
  EXPECT_EQ(ideal, 1u);
  // 32 lanes x 4 bytes starting 16 bytes into a sector: bytes 16..143 touch sectors 0..4.
  lanes.clear();
  for (unsigned l = 0; l < 32; ++l)
    lanes.push_back(LaneAccess{l, 16 + 4 * std::uintptr_t(l), 4});
  EXPECT_EQ(cuda_emu::detail::global_sectors(lanes.data(), lanes.size()), 5u);
}

// Two sites interleaved in each lane's program order pair up per site; a 12-byte struct copy
// becomes three 4-byte requests.  Lane l: site A at word l (conflict-free), site B at word 32 l
// (32-way), twice each; then a 12-byte load of a 16-byte-strided struct array.
TEST(CounterModel, RoundsPerSiteAndIrregularSizes) {
  std::vector<Access> log;
  for (int k = 0; k < 2; ++k)
    for (unsigned l = 0; l < 32; ++l) {
      log.push_back(
          Access{0xA, 4 * std::uintptr_t(l), 4, std::uint8_t(l), false, Space::shared, false});
      log.push_back(
          Access{0xB, 128 * std::uintptr_t(l), 4, std::uint8_t(l), false, Space::shared, false});
    }
  for (unsigned l = 0; l < 32; ++l)
    log.push_back(
        Access{0xC, 16 * std::uintptr_t(l), 12, std::uint8_t(l), false, Space::shared, false});
  LaunchCounters c;
  cuda_emu::detail::count_warp_accesses(log, c);
  EXPECT_TRUE(log.empty());
  // A: 2 requests x 1; B: 2 x 32; C: 3 pieces p, lane l at word 4l + p: lanes l, l + 8, l + 16,
  // l + 24 share a bank, 4 wavefronts each.
  EXPECT_EQ(c.smem_load_requests, 2u + 2u + 3u);
  EXPECT_EQ(c.smem_load_ideal, 7u);
  EXPECT_EQ(c.smem_load_wavefronts, 2u * 1u + 2u * 32u + 3u * 4u);
}

} // namespace
