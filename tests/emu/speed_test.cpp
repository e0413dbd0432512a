// Speed of the emulator, measured (never asserted): emulated-thread barrier crossings per second.
// The numbers are printed and recorded as test properties; README.md quotes them.
#include "emu_test_util.h"
#include "emu_test_kernels.h"

#include <chrono>
#include <cstdio>

namespace emu_test {
namespace {

TEST(EmuSpeed, BarrierAndShuffleThroughput) {
  const int blocks = 64, threads = 256, barriers = 200, shuffles = 50;
  DeviceBuffer<int> out(blocks);
  const cuda_emu::Stats before = cuda_emu::stats();
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(barrier_storm(out.get(), blocks, threads, barriers, shuffles), cudaSuccess);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const cuda_emu::Stats after = cuda_emu::stats();
  for (int v : out.download())
    EXPECT_EQ(v, barriers); // every barrier really separated the increments
  const double crossings = static_cast<double>(after.barrier_crossings - before.barrier_crossings);
  const double switches = static_cast<double>(after.fiber_switches - before.fiber_switches);
  EXPECT_GE(crossings, static_cast<double>(blocks) * threads * (barriers + shuffles));
  std::printf("cuda_emu speed: %d blocks x %d threads, %.3f s on %d host threads: %.1f M barrier "
              "crossings/s, %.1f M fiber switches/s\n",
              blocks, threads, seconds, cuda_emu::host_threads(), crossings / seconds / 1e6,
              switches / seconds / 1e6);
  RecordProperty("crossings_per_second", std::to_string(crossings / seconds));
}

} // namespace
} // namespace emu_test
