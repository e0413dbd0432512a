// The runtime API around kernels: device model, memory, streams, events, errors.  Runs under the
// emulator and (cuda_emu_tests_gpu) on a real GPU; emulator-specific values are marked.
#include "emu_test_util.h"
#include "emu_test_kernels.h"

#include <cstring>
#include <string>

namespace emu_test {
namespace {

#if defined(CUDA_EMU)
int is_alive(int x) {
  return x + 1;
} // a function with internal linkage to name
#endif

TEST(EmuRuntime, DeviceModel) {
  EMU_REQUIRE_DEVICE();
  int count = 0, device = -1;
  ASSERT_EQ(cudaGetDeviceCount(&count), cudaSuccess);
  EXPECT_GE(count, 1);
  ASSERT_EQ(cudaGetDevice(&device), cudaSuccess);
  EXPECT_EQ(device, 0);
  EXPECT_EQ(cudaSetDevice(0), cudaSuccess);
  cudaDeviceProp prop;
  ASSERT_EQ(cudaGetDeviceProperties(&prop, 0), cudaSuccess);
  EXPECT_EQ(prop.warpSize, 32);
  EXPECT_EQ(prop.sharedMemPerBlock, 48u * 1024u);
  EXPECT_EQ(prop.maxThreadsPerBlock, 1024);
  int optin = 0, sms = 0, major = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0),
            cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0), cudaSuccess);
  EXPECT_EQ(static_cast<size_t>(optin), prop.sharedMemPerBlockOptin);
  EXPECT_EQ(sms, prop.multiProcessorCount);
  EXPECT_EQ(major, prop.major);
#if defined(CUDA_EMU) // the modelled H100
  EXPECT_EQ(sms, 132);
  EXPECT_EQ(optin, 227 * 1024);
  EXPECT_EQ(prop.sharedMemPerMultiprocessor, 228u * 1024u);
  EXPECT_EQ(major, 9);
  EXPECT_EQ(cudaSetDevice(1), cudaErrorInvalidDevice);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidDevice);
#endif
}

TEST(EmuRuntime, MemoryCopiesAndSets) {
  EMU_REQUIRE_DEVICE();
  void* d = nullptr;
  ASSERT_EQ(cudaMalloc(&d, 1000), cudaSuccess);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(d) % 256, 0u);
  ASSERT_EQ(cudaMemset(d, 0x5a, 1000), cudaSuccess);
  std::vector<unsigned char> h(1000, 0);
  ASSERT_EQ(cudaMemcpy(h.data(), d, 1000, cudaMemcpyDeviceToHost), cudaSuccess);
  for (unsigned char c : h)
    ASSERT_EQ(c, 0x5a);
  cudaPointerAttributes attr;
  ASSERT_EQ(cudaPointerGetAttributes(&attr, d), cudaSuccess);
  EXPECT_EQ(attr.type, cudaMemoryTypeDevice);
  // 2-D copy: 3 rows of 4 bytes out of a pitch-10 host buffer into a pitch-16 device buffer.
  std::vector<unsigned char> src(30);
  for (int i = 0; i < 30; ++i)
    src[i] = static_cast<unsigned char>(i);
  ASSERT_EQ(cudaMemcpy2D(d, 16, src.data(), 10, 4, 3, cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(h.data(), d, 48, cudaMemcpyDeviceToHost), cudaSuccess);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 16; ++c)
      EXPECT_EQ(h[r * 16 + c], c < 4 ? src[r * 10 + c] : 0x5a) << r << "," << c;
  EXPECT_EQ(cudaFree(d), cudaSuccess);
  size_t free_bytes = 0, total = 0;
  ASSERT_EQ(cudaMemGetInfo(&free_bytes, &total), cudaSuccess);
  EXPECT_LE(free_bytes, total);
  EXPECT_GT(total, 0u);
}

TEST(EmuRuntime, StreamsAndEvents) {
  EMU_REQUIRE_DEVICE();
  cudaStream_t stream;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  cudaEvent_t start, stop;
  ASSERT_EQ(cudaEventCreate(&start), cudaSuccess);
  ASSERT_EQ(cudaEventCreate(&stop), cudaSuccess);
  float* d = nullptr;
  ASSERT_EQ(cudaMallocAsync(reinterpret_cast<void**>(&d), 4096 * sizeof(float), stream),
            cudaSuccess);
  ASSERT_EQ(cudaEventRecord(start, stream), cudaSuccess);
  std::vector<float> h(4096, 2.0f);
  ASSERT_EQ(cudaMemcpyAsync(d, h.data(), h.size() * sizeof(float), cudaMemcpyHostToDevice, stream),
            cudaSuccess);
  ASSERT_EQ(cudaMemsetAsync(d, 0, 16 * sizeof(float), stream), cudaSuccess);
  ASSERT_EQ(cudaEventRecord(stop, stream), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  ASSERT_EQ(cudaEventSynchronize(stop), cudaSuccess);
  float ms = -1.0f;
  ASSERT_EQ(cudaEventElapsedTime(&ms, start, stop), cudaSuccess);
  EXPECT_GE(ms, 0.0f);
  std::vector<float> back(4096);
  ASSERT_EQ(cudaMemcpy(back.data(), d, back.size() * sizeof(float), cudaMemcpyDeviceToHost),
            cudaSuccess);
  EXPECT_EQ(back[15], 0.0f);
  EXPECT_EQ(back[16], 2.0f);
  EXPECT_EQ(cudaFreeAsync(d, stream), cudaSuccess);
  EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  EXPECT_EQ(cudaEventDestroy(start), cudaSuccess);
  EXPECT_EQ(cudaEventDestroy(stop), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(stream), cudaSuccess);
}

TEST(EmuRuntime, ErrorsAreReportedAndCleared) {
  EMU_REQUIRE_DEVICE();
  cudaGetLastError();
  EXPECT_EQ(cudaMemcpy(nullptr, nullptr, 16, cudaMemcpyHostToHost), cudaErrorInvalidValue);
  EXPECT_EQ(cudaPeekAtLastError(), cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(std::string(cudaGetErrorString(cudaSuccess)), "no error");
  EXPECT_EQ(std::string(cudaGetErrorName(cudaErrorInvalidValue)), "cudaErrorInvalidValue");
  EXPECT_EQ(std::string(cudaGetErrorString(cudaErrorInvalidValue)), "invalid argument");
}

#if defined(CUDA_EMU) // emulator-specific: misuse that a GPU reports differently or not at all
TEST(EmuRuntime, FreeingAnUnknownPointerFails) {
  int local = 0;
  EXPECT_EQ(cudaFree(&local), cudaErrorInvalidValue);
  cudaGetLastError();
}

TEST(EmuRuntime, FunctionNamesComeFromTheSymbolTable) {
  // Kernel names in failure messages are looked up this way (also for static functions).
  const char* name = nullptr;
  ASSERT_EQ(cudaFuncGetName(&name, reinterpret_cast<const void*>(&cudaDeviceSynchronize)),
            cudaSuccess);
  EXPECT_EQ(std::string(name), "cudaDeviceSynchronize");
  const std::string local = cuda_emu::function_name(reinterpret_cast<const void*>(&is_alive));
  EXPECT_NE(local.find("is_alive(int)"), std::string::npos) << local;
}
#endif

} // namespace
} // namespace emu_test
