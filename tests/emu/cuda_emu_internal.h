// Internal seam between the emulator's runtime sources (not for kernels or host code).
#pragma once

#include "cuda_emu.h"

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace cuda_emu::detail {

/// Dynamic shared memory limit of `kernel` (cudaFuncAttributeMaxDynamicSharedMemorySize).
std::size_t max_dynamic_smem(const void* kernel);
/// The launch API's error slot (per host thread, like CUDA's).
void set_last_error(cudaError_t err);
/// The live device allocations (base, size), sorted by base: what a kernel's global memory is.
std::vector<std::pair<std::uintptr_t, std::size_t>> device_allocations();
/// Is `stream` the null stream, a per-thread/legacy handle or a live stream of ours?
bool valid_stream(cudaStream_t stream);

// The modelled device (an H100 SXM: 132 SMs, 228 KB shared memory per SM).
constexpr int kSmCount = 132;
constexpr std::size_t kSmemPerBlockDefault = 48 * 1024;
constexpr std::size_t kSmemPerBlockOptin = 227 * 1024;
constexpr std::size_t kSmemPerSm = 228 * 1024;
constexpr int kMaxThreadsPerBlock = 1024;
constexpr int kMaxThreadsPerSm = 2048;

} // namespace cuda_emu::detail
