// Helpers shared by the emulator's tests: a typed device buffer, the seed trace, and the device
// check.  The same test sources build two ways: against the emulator (CUDA_EMU, cuda_emu_tests)
// and, with nvcc, against cudart and a real GPU (cuda_emu_tests_gpu), where they skip without one.
#pragma once

#if defined(CUDA_EMU)
#include "cuda_emu.h"
#else
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#endif

#include <gtest/gtest.h>

#include <cstddef>
#include <vector>

namespace emu_test {

template <typename T> class DeviceBuffer {
public:
  explicit DeviceBuffer(std::size_t n) : n_(n) {
    EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&p_), n * sizeof(T)), cudaSuccess);
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
  ~DeviceBuffer() { cudaFree(p_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return p_; }
  void upload(const std::vector<T>& host) {
    ASSERT_EQ(host.size(), n_);
    ASSERT_EQ(cudaMemcpy(p_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    EXPECT_EQ(cudaMemcpy(host.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return host;
  }
  void fill_bytes(int value) { EXPECT_EQ(cudaMemset(p_, value, n_ * sizeof(T)), cudaSuccess); }

private:
  T* p_ = nullptr;
  std::size_t n_;
};

} // namespace emu_test

#if defined(CUDA_EMU)
// Every failure message carries the emulator's seed, so a failing order can be replayed.
#define EMU_SEED_TRACE()                                                                           \
  SCOPED_TRACE(::testing::Message() << "CUDA_EMU_SEED=" << ::cuda_emu::seed())
#define EMU_REQUIRE_DEVICE()                                                                       \
  do {                                                                                             \
  } while (0)
#else
#define EMU_SEED_TRACE()                                                                           \
  do {                                                                                             \
  } while (0)
// On the GPU build: skip (never fail) without a usable device.
#define EMU_REQUIRE_DEVICE()                                                                       \
  do {                                                                                             \
    int emu_device_count = 0;                                                                      \
    if (cudaGetDeviceCount(&emu_device_count) != cudaSuccess || emu_device_count == 0) {           \
      cudaGetLastError();                                                                          \
      GTEST_SKIP() << "no CUDA device";                                                            \
    }                                                                                              \
  } while (0)
#endif
