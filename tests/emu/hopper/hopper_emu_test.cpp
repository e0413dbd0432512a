// Emulator-only behaviour of the Hopper primitives: asynchronous results are stale until their
// wait (TMA destination before the mbarrier wait, wgmma accumulators before wgmma.wait_group), and
// every Hopper bug-catcher fires with a message naming the kernel, the thread and the problem
// (death tests, "threadsafe" style as in bug_catcher_test.cpp).
#include "emu_test_util.h"
#include "hopper_kernels.h"

#include <cmath>
#include <cstring>
#include <random>

namespace emu_hopper {
namespace {

using emu_test::DeviceBuffer;
using flashnce::kernels::gmma::Swizzle;

TEST(EmuHopperAsync, TmaDestinationIsStaleBeforeTheMbarrierWait) {
  EMU_SEED_TRACE();
  std::vector<unsigned char> src(64 * 128, 0x11);
  DeviceBuffer<unsigned char> dsrc(src), out(8192), before(8192);
  ASSERT_EQ(
      tma_tile(dsrc.get(), 2, 64, 64, 128, 64, 64, 0, 0, Swizzle::b128, out.get(), before.get()),
      cudaSuccess);
  const std::vector<unsigned char> b = before.download(), o = out.download();
  for (int i = 0; i < 8192; ++i) {
    ASSERT_EQ(b[i], 0xFF) << i << ": read before the wait sees the poisoned buffer";
    ASSERT_EQ(o[i], 0x11) << i;
  }
}

TEST(EmuHopperAsync, WgmmaAccumulatorsAreStaleUntilWaitGroup) {
  EMU_SEED_TRACE();
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> small(-4, 4);
  std::vector<std::uint16_t> a(64 * 64), b(64 * 64);
  std::vector<float> af(64 * 64), bf(64 * 64);
  for (int i = 0; i < 64 * 64; ++i) { // small integers: exact in bf16 and in the f32 sums
    af[i] = static_cast<float>(small(rng));
    bf[i] = static_cast<float>(small(rng));
    __nv_bfloat16_raw ra = __float2bfloat16(af[i]), rb = __float2bfloat16(bf[i]);
    a[i] = ra.x;
    b[i] = rb.x;
  }
  DeviceBuffer<std::uint16_t> da(a), db(b);
  DeviceBuffer<float> before(64 * 64), after(64 * 64);
  ASSERT_EQ(wgmma_stale(da.get(), db.get(), before.get(), after.get()), cudaSuccess);
  const std::vector<float> bv = before.download(), av = after.download();
  int changed = 0;
  for (int i = 0; i < 64; ++i)
    for (int j = 0; j < 64; ++j) {
      float ref = 1.0f;
      for (int k = 0; k < 16; ++k)
        ref += af[i * 64 + k] * bf[j * 64 + k];
      ASSERT_EQ(bv[i * 64 + j], 1.0f) << "before the wait: the old accumulator";
      ASSERT_EQ(av[i * 64 + j], ref) << "row " << i << " col " << j;
      changed += ref != 1.0f;
    }
  EXPECT_GT(changed, 64 * 64 / 2);
}

class EmuHopperBugCatcher : public ::testing::Test {
protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
  static void run(Bug bug) {
    DeviceBuffer<float> scratch(2048);
    run_bug(bug, scratch.get());
  }
};

#define HOPPER_KERNEL "kernel .*hopper_bug_kernel(.|\n)*"

TEST_F(EmuHopperBugCatcher, WaitingForAPhaseNobodyCompletesAborts) {
  EXPECT_DEATH(run(Bug::mbarrier_wrong_parity),
               HOPPER_KERNEL "deadlock: this thread waits \\(mbarrier.try_wait.parity 1\\) for "
                             "phase 1 of mbarrier .*current phase 1 \\(parity 1\\), 1 of 1 "
                             "arrivals pending(.|\n)*wrong phase parity");
}

TEST_F(EmuHopperBugCatcher, ExpectTxBytesThatNeverArriveAbort) {
  EXPECT_DEATH(run(Bug::mbarrier_tx_never_arrives),
               HOPPER_KERNEL "deadlock: .*phase 0 of mbarrier .*tx-count 1024 bytes.*1024 bytes "
                             "announced by expect_tx never arrive");
}

TEST_F(EmuHopperBugCatcher, ArrivalBeyondTheExpectedCountAborts) {
  EXPECT_DEATH(run(Bug::mbarrier_extra_arrival),
               HOPPER_KERNEL "mbarrier.arrive: one arrival too many on mbarrier .*0 of 1 arrivals "
                             "pending, tx-count 64 bytes");
}

TEST_F(EmuHopperBugCatcher, UninitialisedMbarrierAborts) {
  EXPECT_DEATH(run(Bug::mbarrier_uninitialised),
               HOPPER_KERNEL "mbarrier.try_wait.parity on .*: not an mbarrier \\(no mbarrier.init");
}

TEST_F(EmuHopperBugCatcher, PlainStoreIntoAnMbarrierAborts) {
  EXPECT_DEATH(run(Bug::mbarrier_overwritten),
               HOPPER_KERNEL "its 8 bytes were overwritten since the last mbarrier operation");
}

TEST_F(EmuHopperBugCatcher, TransactionCountMismatchAborts) {
  EXPECT_DEATH(run(Bug::tma_tx_mismatch),
               HOPPER_KERNEL "deadlock: .*tx-count -128 bytes.*bulk copies completed 128 bytes "
                             "more than expect_tx announced");
}

TEST_F(EmuHopperBugCatcher, MisalignedTmaDestinationAborts) {
  EXPECT_DEATH(run(Bug::tma_misaligned_dst),
               HOPPER_KERNEL "destination shared address 0x440 is not 128-byte aligned");
}

TEST_F(EmuHopperBugCatcher, TmaNeverWaitedForAborts) {
  EXPECT_DEATH(run(Bug::tma_never_waited),
               HOPPER_KERNEL "thread \\(0,0,0\\)(.|\n)*the block finished with 1 bulk tensor "
                             "copies \\(TMA\\) in flight");
}

TEST_F(EmuHopperBugCatcher, NamedBarrierCountMismatchAborts) {
  EXPECT_DEATH(run(Bug::named_count_mismatch),
               HOPPER_KERNEL "bar.sync 1, (64|128): the threads already at this named barrier "
                             "\\([0-9]+\\) said (128|64) threads");
}

TEST_F(EmuHopperBugCatcher, NamedBarrierThatCannotCompleteAborts) {
  EXPECT_DEATH(run(Bug::named_deadlock),
               HOPPER_KERNEL "deadlock: named barrier 1 \\(bar.sync, 128 threads\\) has only 64 "
                             "arrivals");
}

TEST_F(EmuHopperBugCatcher, WgmmaInAPartialWarpgroupAborts) {
  EXPECT_DEATH(run(Bug::wgmma_partial_warpgroup), HOPPER_KERNEL
               "wgmma.mma_async.f32.bf16.bf16 .* in warpgroup 0 \\(threads 0..127\\), "
               "but the block has only 96 threads");
}

TEST_F(EmuHopperBugCatcher, WgmmaWithoutFenceAborts) {
  EXPECT_DEATH(run(Bug::wgmma_without_fence),
               HOPPER_KERNEL "wgmma.mma_async.f32.bf16.bf16 without a wgmma.fence");
}

TEST_F(EmuHopperBugCatcher, ExitWithWgmmaInFlightAborts) {
  EXPECT_DEATH(run(Bug::wgmma_exit_in_flight),
               HOPPER_KERNEL "thread exits with wgmma operations in flight \\(0 uncommitted, 1 "
                             "committed groups");
}

TEST_F(EmuHopperBugCatcher, DescriptorOutsideSharedMemoryAborts) {
  EXPECT_DEATH(run(Bug::wgmma_descriptor_outside), HOPPER_KERNEL
               "descriptor A 0x[0-9a-f]+ reads element \\(0, k 0\\) at shared address "
               "0x6400, outside the block's dynamic shared memory");
}

TEST_F(EmuHopperBugCatcher, NonUniformWgmmaOperandsAbort) {
  EXPECT_DEATH(run(Bug::wgmma_nonuniform),
               HOPPER_KERNEL "the threads of warpgroup 0 disagree on descriptor A");
}

TEST_F(EmuHopperBugCatcher, NonUniformSetmaxnregAborts) {
  EXPECT_DEATH(run(Bug::setmaxnreg_nonuniform), HOPPER_KERNEL
               "setmaxnreg is not warpgroup-uniform: this thread asks "
               "setmaxnreg.(inc 232|dec 40), thread [0-9]+ setmaxnreg.(dec 40|inc 232)");
}

} // namespace
} // namespace emu_hopper
