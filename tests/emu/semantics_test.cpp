// The emulator's scheduling semantics (emulator-only): blocks and threads really run in shuffled
// orders, the orders follow the seed, and parallel host threads give the same results.
#include "emu_test_util.h"
#include "emu_test_kernels.h"

#include <algorithm>
#include <numeric>

namespace emu_test {
namespace {

bool is_permutation_of_iota(std::vector<unsigned> v) {
  std::sort(v.begin(), v.end());
  for (unsigned i = 0; i < v.size(); ++i)
    if (v[i] != i)
      return false;
  return true;
}

std::vector<unsigned> iota(int n) {
  std::vector<unsigned> v(n);
  std::iota(v.begin(), v.end(), 0u);
  return v;
}

TEST(EmuSemantics, BlocksRunInAShuffledOrder) {
  EMU_SEED_TRACE();
  const int blocks = 64;
  const int threads_before = cuda_emu::host_threads();
  cuda_emu::set_host_threads(1); // one host thread: the ticket order is the scheduling order
  DeviceBuffer<unsigned> counter(std::vector<unsigned>{0}), order(blocks);
  ASSERT_EQ(block_order(counter.get(), order.get(), blocks), cudaSuccess);
  std::vector<unsigned> first = order.download();
  ASSERT_TRUE(is_permutation_of_iota(first));
  EXPECT_NE(first, iota(blocks)) << "64 blocks ran in index order";
  counter.upload({0});
  ASSERT_EQ(block_order(counter.get(), order.get(), blocks), cudaSuccess);
  EXPECT_NE(order.download(), first) << "two launches used the same block order";
  cuda_emu::set_host_threads(threads_before);
}

TEST(EmuSemantics, ThreadsRunInAFreshShuffledOrderAfterEachBarrier) {
  EMU_SEED_TRACE();
  const int threads = 128;
  DeviceBuffer<unsigned> first(threads), second(threads);
  ASSERT_EQ(thread_order(first.get(), second.get(), threads), cudaSuccess);
  std::vector<unsigned> a = first.download(), b = second.download();
  ASSERT_TRUE(is_permutation_of_iota(a));
  ASSERT_TRUE(is_permutation_of_iota(b));
  EXPECT_NE(a, iota(threads));
  EXPECT_NE(b, iota(threads));
  EXPECT_NE(a, b) << "the order after a barrier repeated the order before it";
}

TEST(EmuSemantics, ParallelHostThreadsGiveTheSameResults) {
  EMU_SEED_TRACE();
  const int blocks = 40, per_block = 3000;
  std::vector<float> in(static_cast<size_t>(blocks) * per_block);
  for (size_t i = 0; i < in.size(); ++i)
    in[i] = static_cast<float>(i % 13) - 6.0f;
  DeviceBuffer<float> d_in(in), d_out(blocks);
  const int threads_before = cuda_emu::host_threads();
  std::vector<std::vector<float>> results;
  for (int host_threads : {1, 2, 4}) {
    cuda_emu::set_host_threads(host_threads);
    d_out.fill_bytes(0);
    ASSERT_EQ(block_reduce(d_in.get(), d_out.get(), per_block, blocks, 256), cudaSuccess);
    results.push_back(d_out.download());
  }
  cuda_emu::set_host_threads(threads_before);
  EXPECT_EQ(results[0], results[1]);
  EXPECT_EQ(results[0], results[2]);
}

TEST(EmuSemantics, StatsCountLaunchesBlocksAndThreads) {
  const cuda_emu::Stats before = cuda_emu::stats();
  DeviceBuffer<unsigned> out(3 * 2 * 64);
  ASSERT_EQ(grid_indices(out.get(), dim3(3, 2), dim3(64)), cudaSuccess);
  const cuda_emu::Stats after = cuda_emu::stats();
  EXPECT_EQ(after.launches - before.launches, 1u);
  EXPECT_EQ(after.blocks - before.blocks, 6u);
  EXPECT_EQ(after.threads - before.threads, 6u * 64u);
}

} // namespace
} // namespace emu_test
