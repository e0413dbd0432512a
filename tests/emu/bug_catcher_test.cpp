// Each bug-catcher of the emulator shown firing: the process aborts with a message that names the
// kernel, the block, the thread and the problem (death tests; "threadsafe" style re-executes the
// test binary, which also works under AddressSanitizer).
#include "emu_test_util.h"
#include "emu_test_kernels.h"

namespace emu_test {
namespace {

class EmuBugCatcher : public ::testing::Test {
protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(EmuBugCatcher, DivergentBarrierAborts) {
  DeviceBuffer<int> out(64);
  EXPECT_DEATH(divergent_barrier(out.get()),
               "kernel .*divergent_barrier_kernel.*block \\([01],0,0\\).*thread \\([0-9]+,0,0\\)"
               "(.|\n)*divergent barrier(.|\n)*bug_kernels.cu:[0-9]+(.|\n)*CUDA_EMU_SEED=");
}

TEST(EmuBugCatcherFastStyle, DivergentBarrierAbortsInAForkedChildToo) {
  // GoogleTest's default death-test style forks without exec: the child has no pool threads.
  GTEST_FLAG_SET(death_test_style, "fast");
  DeviceBuffer<int> out(64);
  EXPECT_DEATH(divergent_barrier(out.get()), "divergent barrier");
  GTEST_FLAG_SET(death_test_style, "threadsafe");
}

TEST_F(EmuBugCatcher, ShuffleMaskThatExcludesTheCallingLaneAborts) {
  DeviceBuffer<int> out(32);
  EXPECT_DEATH(
      shuffle_mask_excludes_caller(out.get()),
      "shuffle_mask_excludes_caller_kernel(.|\n)*__shfl_xor_sync with mask 0x0000ffff: the "
      "calling lane [0-9]+ is not in its own mask");
}

TEST_F(EmuBugCatcher, ShuffleMaskNamingAnExitedLaneAborts) {
  DeviceBuffer<int> out(32);
  EXPECT_DEATH(shuffle_mask_names_exited_lane(out.get()),
               "__shfl_down_sync with mask 0xffffffff: lane 5 has already exited");
}

TEST_F(EmuBugCatcher, LanesInDifferentCollectivesWithOneMaskAbort) {
  DeviceBuffer<int> out(32);
  EXPECT_DEATH(warp_collectives_diverge(out.get()), "diverged into different warp collectives");
}

TEST_F(EmuBugCatcher, DynamicSharedMemoryOverrunAborts) {
  DeviceBuffer<float> out(32);
  // Without sanitizer: the canary after the buffer; with AddressSanitizer: its report.
  EXPECT_DEATH(dynamic_smem_overrun(out.get()),
               "wrote past the end of its dynamic shared memory \\(128 bytes|AddressSanitizer");
}

#if defined(__SANITIZE_ADDRESS__)
#define EMU_WITH_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMU_WITH_ASAN 1
#endif
#endif

TEST_F(EmuBugCatcher, GlobalMemoryOverrunIsReportedByAddressSanitizer) {
#if defined(EMU_WITH_ASAN)
  EXPECT_DEATH(
      {
        DeviceBuffer<float> out(32);
        global_overrun(out.get(), 32);
      },
      "AddressSanitizer: heap-buffer-overflow(.|\n)*global_overrun_kernel");
#else
  GTEST_SKIP()
      << "global-memory bounds are checked in the sanitizer build (cmake --preset sanitize)";
#endif
}

TEST_F(EmuBugCatcher, MisalignedLdmatrixAborts) {
  DeviceBuffer<std::uint32_t> out(32);
  EXPECT_DEATH(ldmatrix_misaligned(out.get()), "ldmatrix: row address .* is not 16-byte aligned");
}

TEST_F(EmuBugCatcher, MmaInAPartialWarpAborts) {
  DeviceBuffer<float> out(48);
  EXPECT_DEATH(mma_in_partial_warp(out.get()),
               "mma.sync.m16n8k16.bf16 with mask 0xffffffff names lanes");
}

} // namespace
} // namespace emu_test
