// Speed of the emulator, measured (never asserted): emulated-thread barrier crossings per second.
// The numbers are printed and recorded as test properties; README.md quotes them.
#include "emu_test_util.h"
#include "emu_test_kernels.h"

#include <chrono>
#include <ctime>
#include <cstdio>

namespace emu_test {
namespace {

TEST(EmuSpeed, BarrierAndShuffleThroughput) {
  const int blocks = 64, threads = 256, barriers = 200, shuffles = 50;
  DeviceBuffer<int> out(blocks);
  const cuda_emu::Stats before = cuda_emu::stats();
  const std::clock_t cpu0 = std::clock(); // process CPU time: robust to a loaded machine
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(barrier_storm(out.get(), blocks, threads, barriers, shuffles), cudaSuccess);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu_seconds = static_cast<double>(std::clock() - cpu0) / CLOCKS_PER_SEC;
  const cuda_emu::Stats after = cuda_emu::stats();
  for (int v : out.download())
    EXPECT_EQ(v, barriers); // every barrier really separated the increments
  const double crossings = static_cast<double>(after.barrier_crossings - before.barrier_crossings);
  const double switches = static_cast<double>(after.fiber_switches - before.fiber_switches);
  EXPECT_GE(crossings, static_cast<double>(blocks) * threads * (barriers + shuffles));
  std::printf("cuda_emu speed: %d blocks x %d threads on %d host threads: %.3f s wall, %.3f s CPU; "
              "%.1f M barrier crossings per wall second, %.1f M per CPU second; %.1f M fiber "
              "switches per CPU second\n",
              blocks, threads, cuda_emu::host_threads(), seconds, cpu_seconds,
              crossings / seconds / 1e6, crossings / cpu_seconds / 1e6,
              switches / cpu_seconds / 1e6);
  RecordProperty("crossings_per_second", std::to_string(crossings / seconds));
}

} // namespace
} // namespace emu_test
