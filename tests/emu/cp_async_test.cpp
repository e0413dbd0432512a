// cp.async under the emulator: a double-buffered pipeline gives the right data with every copy
// size; zero-fill fills; and a kernel that reads before waiting sees stale shared memory.
#include "emu_test_util.h"
#include "emu_test_kernels.h"

#include <cmath>

namespace emu_test {
namespace {

TEST(EmuCpAsync, DoubleBufferedCopyWithEveryCopySize) {
  EMU_REQUIRE_DEVICE();
  EMU_SEED_TRACE();
  for (int bytes : {16, 8, 4})
    for (int n : {512, 2048, 2050, 1000, 3}) {
      std::vector<float> in(n);
      for (int i = 0; i < n; ++i)
        in[i] = static_cast<float>(i) * 0.25f - 7.0f;
      DeviceBuffer<float> din(in), dout(n);
      dout.fill_bytes(0);
      ASSERT_EQ(cp_async_double_buffer(din.get(), dout.get(), n, bytes), cudaSuccess);
      std::vector<float> out = dout.download();
      for (int i = 0; i < n; ++i)
        ASSERT_EQ(out[i], 2.0f * in[i]) << "n " << n << " bytes " << bytes << " i " << i;
    }
}

#if defined(CUDA_EMU) // emulator-specific behaviour
TEST(EmuCpAsync, ReadingBeforeTheWaitSeesStaleSharedMemory) {
  EMU_REQUIRE_DEVICE();
  const int n = 128;
  std::vector<float> in(n, 42.0f);
  DeviceBuffer<float> din(in), dout(n);
  dout.fill_bytes(0);
  ASSERT_EQ(cp_async_read_before_wait(din.get(), dout.get(), n), cudaSuccess);
  std::vector<float> out = dout.download();
  for (int i = 0; i < n; ++i)
    EXPECT_TRUE(std::isnan(out[i])) << i << ": " << out[i];
}
#endif

TEST(EmuCpAsync, ZeroFillBeyondTheSourceSize) {
  EMU_REQUIRE_DEVICE();
  std::vector<float> in(128);
  for (int i = 0; i < 128; ++i)
    in[i] = static_cast<float>(i + 1);
  for (int src_bytes : {0, 4, 8, 12, 16}) {
    DeviceBuffer<float> din(in), dout(128);
    dout.fill_bytes(0xff);
    ASSERT_EQ(cp_async_zfill(din.get(), dout.get(), src_bytes), cudaSuccess);
    std::vector<float> out = dout.download();
    for (int i = 0; i < 128; ++i) {
      const bool copied = (i % 4) * 4 < src_bytes;
      EXPECT_EQ(out[i], copied ? in[i] : 0.0f) << "src_bytes " << src_bytes << " i " << i;
    }
  }
}

} // namespace
} // namespace emu_test
