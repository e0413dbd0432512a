// Helpers shared by the emulator's tests: a typed device buffer and a launch-check macro.
#pragma once

#include "cuda_emu.h"

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

// Every failure message carries the emulator's seed, so a failing order can be replayed.
#define EMU_SEED_TRACE()                                                                           \
  SCOPED_TRACE(::testing::Message() << "CUDA_EMU_SEED=" << ::cuda_emu::seed())
