// cuda_emu_api.cpp — the CUDA runtime API calls a host layer uses, for the modelled device.
//
// Declarations come from the toolkit's cuda_runtime_api.h (so signatures are CUDA's exactly); the
// definitions here replace cudart.  Memory is host memory (device pointers are host pointers, so
// AddressSanitizer checks every kernel access), streams and events are synchronous (every call
// completes before it returns), events time with the host's steady clock.  The device is one
// modelled H100 SXM: 132 SMs, 228 KB shared memory per SM, 227 KB per block opt-in, 48 KB default.
#include "cuda_emu_internal.h"
#include "cuda_emu_gmma.h"

#include <cuda.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>

namespace cuda_emu::detail {
namespace {

thread_local cudaError_t tls_last_error = cudaSuccess;

struct State {
  std::mutex m;
  std::map<std::uintptr_t, std::size_t> device_allocs; // base -> size
  std::set<std::uintptr_t> host_allocs;
  std::set<cudaStream_t> streams;
  std::set<cudaEvent_t> events;
  std::unordered_map<const void*, int> max_dyn_smem;
  std::unordered_map<const void*, int> carveout;
  int device = 0;
  std::size_t allocated = 0;
};
State& state() {
  static State* s = new State(); // never destroyed: used until the very end of the process
  return *s;
}

// Opaque handles: a stream or event is a small heap object of ours.
struct EmuStream {
  unsigned flags;
  int priority;
};
struct EmuEvent {
  unsigned flags;
  bool recorded;
  std::chrono::steady_clock::time_point when;
};

cudaError_t ret(cudaError_t e) {
  if (e != cudaSuccess)
    tls_last_error = e;
  return e;
}

constexpr std::size_t kTotalGlobalMem = std::size_t{80} << 30; // 80 GiB (H100 SXM)

bool is_device_pointer(const void* p, std::size_t* base_out = nullptr) {
  auto a = reinterpret_cast<std::uintptr_t>(p);
  State& s = state();
  auto it = s.device_allocs.upper_bound(a);
  if (it == s.device_allocs.begin())
    return false;
  --it;
  if (a < it->first + std::max<std::size_t>(it->second, 1)) {
    if (base_out)
      *base_out = it->first;
    return true;
  }
  return false;
}

} // namespace

std::size_t max_dynamic_smem(const void* kernel) {
  State& s = state();
  std::lock_guard<std::mutex> lk(s.m);
  auto it = s.max_dyn_smem.find(kernel);
  return it == s.max_dyn_smem.end() ? kSmemPerBlockDefault : static_cast<std::size_t>(it->second);
}

void set_last_error(cudaError_t err) {
  tls_last_error = err;
}

std::vector<std::pair<std::uintptr_t, std::size_t>> device_allocations() {
  State& s = state();
  std::lock_guard<std::mutex> lk(s.m);
  return {s.device_allocs.begin(), s.device_allocs.end()}; // a std::map: sorted by base
}

bool valid_stream(cudaStream_t stream) {
  if (stream == nullptr || stream == cudaStreamLegacy || stream == cudaStreamPerThread)
    return true;
  State& s = state();
  std::lock_guard<std::mutex> lk(s.m);
  return s.streams.count(stream) != 0;
}

} // namespace cuda_emu::detail

using namespace cuda_emu::detail;

extern "C" {

// ---- errors
// --------------------------------------------------------------------------------------
cudaError_t cudaGetLastError(void) {
  cudaError_t e = tls_last_error;
  tls_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError(void) {
  return tls_last_error;
}

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
#define CUDA_EMU_NAME(e)                                                                           \
  case e:                                                                                          \
    return #e;
    CUDA_EMU_NAME(cudaSuccess)
    CUDA_EMU_NAME(cudaErrorInvalidValue)
    CUDA_EMU_NAME(cudaErrorMemoryAllocation)
    CUDA_EMU_NAME(cudaErrorInitializationError)
    CUDA_EMU_NAME(cudaErrorInvalidConfiguration)
    CUDA_EMU_NAME(cudaErrorInvalidDevice)
    CUDA_EMU_NAME(cudaErrorInvalidDevicePointer)
    CUDA_EMU_NAME(cudaErrorInvalidMemcpyDirection)
    CUDA_EMU_NAME(cudaErrorInvalidDeviceFunction)
    CUDA_EMU_NAME(cudaErrorInvalidResourceHandle)
    CUDA_EMU_NAME(cudaErrorNotReady)
    CUDA_EMU_NAME(cudaErrorNoDevice)
    CUDA_EMU_NAME(cudaErrorLaunchFailure)
    CUDA_EMU_NAME(cudaErrorLaunchOutOfResources)
    CUDA_EMU_NAME(cudaErrorNotSupported)
    CUDA_EMU_NAME(cudaErrorIllegalAddress)
    CUDA_EMU_NAME(cudaErrorUnknown)
#undef CUDA_EMU_NAME
  default:
    return "cudaErrorUnknown";
  }
}

const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
  case cudaSuccess:
    return "no error";
  case cudaErrorInvalidValue:
    return "invalid argument";
  case cudaErrorMemoryAllocation:
    return "out of memory";
  case cudaErrorInitializationError:
    return "initialization error";
  case cudaErrorInvalidConfiguration:
    return "invalid configuration argument";
  case cudaErrorInvalidDevice:
    return "invalid device ordinal";
  case cudaErrorInvalidDevicePointer:
    return "invalid device pointer";
  case cudaErrorInvalidMemcpyDirection:
    return "invalid copy direction for memcpy";
  case cudaErrorInvalidDeviceFunction:
    return "invalid device function";
  case cudaErrorInvalidResourceHandle:
    return "invalid resource handle";
  case cudaErrorNotReady:
    return "device not ready";
  case cudaErrorNoDevice:
    return "no CUDA-capable device is detected";
  case cudaErrorLaunchFailure:
    return "unspecified launch failure";
  case cudaErrorLaunchOutOfResources:
    return "too many resources requested for launch";
  case cudaErrorNotSupported:
    return "operation not supported";
  case cudaErrorIllegalAddress:
    return "an illegal memory access was encountered";
  default:
    return "unknown error";
  }
}

// ---- device
// --------------------------------------------------------------------------------------
cudaError_t cudaGetDeviceCount(int* count) {
  if (count == nullptr)
    return ret(cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
  if (device == nullptr)
    return ret(cudaErrorInvalidValue);
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
  return device == 0 ? cudaSuccess : ret(cudaErrorInvalidDevice);
}
cudaError_t cudaInitDevice(int device, unsigned int, unsigned int) {
  return device == 0 ? cudaSuccess : ret(cudaErrorInvalidDevice);
}
cudaError_t cudaDeviceSynchronize(void) {
  return cudaSuccess;
}
cudaError_t cudaDeviceReset(void) {
  return cudaSuccess;
}
cudaError_t cudaDeviceSetLimit(enum cudaLimit, size_t) {
  return cudaSuccess;
}
cudaError_t cudaDeviceGetLimit(size_t* value, enum cudaLimit limit) {
  if (value == nullptr)
    return ret(cudaErrorInvalidValue);
  *value = limit == cudaLimitStackSize ? 1024 : 0;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetStreamPriorityRange(int* least, int* greatest) {
  if (least)
    *least = 0;
  if (greatest)
    *greatest = -5;
  return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int* v) {
  if (v == nullptr)
    return ret(cudaErrorInvalidValue);
  *v = CUDART_VERSION;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* v) {
  if (v == nullptr)
    return ret(cudaErrorInvalidValue);
  *v = CUDART_VERSION;
  return cudaSuccess;
}

// The compute capability the device reports: 9.0 (an H100 / H200), or CUDA_EMU_COMPUTE_CAPABILITY
// ("8.0", "8.6", ...) so that code dispatching on the architecture takes its other paths under the
// emulator too (only the reported capability changes, not the modelled resources).  Read once.
namespace {
struct ComputeCapability {
  int major = 9, minor = 0;
};
const ComputeCapability& compute_capability() {
  static const ComputeCapability cc = [] {
    ComputeCapability c;
    if (const char* e = std::getenv("CUDA_EMU_COMPUTE_CAPABILITY"); e != nullptr && *e != 0) {
      int ma = 0, mi = 0;
      if (std::sscanf(e, "%d.%d", &ma, &mi) == 2 && ma >= 5 && ma <= 9 && mi >= 0 && mi <= 9) {
        c.major = ma;
        c.minor = mi;
      } else {
        std::fprintf(stderr,
                     "cuda_emu: CUDA_EMU_COMPUTE_CAPABILITY=%s is not major.minor (5.0 .. "
                     "9.9); using 9.0\n",
                     e);
      }
    }
    return c;
  }();
  return cc;
}
} // namespace

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp* p, int device) {
  if (p == nullptr)
    return ret(cudaErrorInvalidValue);
  if (device != 0)
    return ret(cudaErrorInvalidDevice);
  std::memset(p, 0, sizeof *p);
  std::snprintf(p->name, sizeof p->name, "NVIDIA H100 80GB HBM3 (cuda_emu CPU emulation)");
  p->totalGlobalMem = kTotalGlobalMem;
  p->sharedMemPerBlock = kSmemPerBlockDefault;
  p->regsPerBlock = 65536;
  p->warpSize = 32;
  p->memPitch = 2147483647;
  p->maxThreadsPerBlock = kMaxThreadsPerBlock;
  p->maxThreadsDim[0] = 1024;
  p->maxThreadsDim[1] = 1024;
  p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 2147483647;
  p->maxGridSize[1] = 65535;
  p->maxGridSize[2] = 65535;
  p->totalConstMem = 65536;
  p->major = compute_capability().major;
  p->minor = compute_capability().minor;
  p->textureAlignment = 512;
  p->texturePitchAlignment = 32;
  p->multiProcessorCount = kSmCount;
  p->canMapHostMemory = 1;
  p->concurrentKernels = 1;
  p->asyncEngineCount = 3;
  p->unifiedAddressing = 1;
  p->memoryBusWidth = 5120;
  p->l2CacheSize = 50 * 1024 * 1024;
  p->persistingL2CacheMaxSize = 32 * 1024 * 1024;
  p->maxThreadsPerMultiProcessor = kMaxThreadsPerSm;
  p->streamPrioritiesSupported = 1;
  p->globalL1CacheSupported = 1;
  p->localL1CacheSupported = 1;
  p->sharedMemPerMultiprocessor = kSmemPerSm;
  p->regsPerMultiprocessor = 65536;
  p->managedMemory = 1;
  p->computePreemptionSupported = 1;
  p->cooperativeLaunch = 1;
  p->sharedMemPerBlockOptin = kSmemPerBlockOptin;
  p->maxBlocksPerMultiProcessor = 32;
  p->reservedSharedMemPerBlock = 1024;
  p->memoryPoolsSupported = 1;
  p->clusterLaunch = 1;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, enum cudaDeviceAttr attr, int device) {
  if (value == nullptr)
    return ret(cudaErrorInvalidValue);
  if (device != 0)
    return ret(cudaErrorInvalidDevice);
  switch (attr) {
  case cudaDevAttrMaxThreadsPerBlock:
    *value = kMaxThreadsPerBlock;
    break;
  case cudaDevAttrMaxBlockDimX:
    *value = 1024;
    break;
  case cudaDevAttrMaxBlockDimY:
    *value = 1024;
    break;
  case cudaDevAttrMaxBlockDimZ:
    *value = 64;
    break;
  case cudaDevAttrMaxGridDimX:
    *value = 2147483647;
    break;
  case cudaDevAttrMaxGridDimY:
    *value = 65535;
    break;
  case cudaDevAttrMaxGridDimZ:
    *value = 65535;
    break;
  case cudaDevAttrMaxSharedMemoryPerBlock:
    *value = static_cast<int>(kSmemPerBlockDefault);
    break;
  case cudaDevAttrMaxSharedMemoryPerBlockOptin:
    *value = static_cast<int>(kSmemPerBlockOptin);
    break;
  case cudaDevAttrMaxSharedMemoryPerMultiprocessor:
    *value = static_cast<int>(kSmemPerSm);
    break;
  case cudaDevAttrReservedSharedMemoryPerBlock:
    *value = 1024;
    break;
  case cudaDevAttrWarpSize:
    *value = 32;
    break;
  case cudaDevAttrMultiProcessorCount:
    *value = kSmCount;
    break;
  case cudaDevAttrComputeCapabilityMajor:
    *value = compute_capability().major;
    break;
  case cudaDevAttrComputeCapabilityMinor:
    *value = compute_capability().minor;
    break;
  case cudaDevAttrMaxThreadsPerMultiProcessor:
    *value = kMaxThreadsPerSm;
    break;
  case cudaDevAttrMaxBlocksPerMultiprocessor:
    *value = 32;
    break;
  case cudaDevAttrMaxRegistersPerBlock:
    *value = 65536;
    break;
  case cudaDevAttrMaxRegistersPerMultiprocessor:
    *value = 65536;
    break;
  case cudaDevAttrL2CacheSize:
    *value = 50 * 1024 * 1024;
    break;
  case cudaDevAttrGlobalMemoryBusWidth:
    *value = 5120;
    break;
  case cudaDevAttrConcurrentKernels:
    *value = 1;
    break;
  case cudaDevAttrUnifiedAddressing:
    *value = 1;
    break;
  case cudaDevAttrMemoryPoolsSupported:
    *value = 1;
    break;
  case cudaDevAttrCooperativeLaunch:
    *value = 1;
    break;
  case cudaDevAttrIntegrated:
    *value = 0;
    break;
  default:
    *value = 0;
    break;
  }
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total) {
  State& s = state();
  std::lock_guard<std::mutex> lk(s.m);
  if (free_bytes)
    *free_bytes = kTotalGlobalMem - std::min(s.allocated, kTotalGlobalMem);
  if (total)
    *total = kTotalGlobalMem;
  return cudaSuccess;
}

// ---- memory
// --------------------------------------------------------------------------------------
cudaError_t cudaMalloc(void** ptr, size_t size) {
  if (ptr == nullptr)
    return ret(cudaErrorInvalidValue);
  *ptr = nullptr;
  if (size == 0)
    return cudaSuccess; // like CUDA: success, NULL pointer
  void* p = nullptr;
  if (posix_memalign(&p, 256, size) != 0 || p == nullptr)
    return ret(cudaErrorMemoryAllocation);
  State& s = state();
  {
    std::lock_guard<std::mutex> lk(s.m);
    s.device_allocs[reinterpret_cast<std::uintptr_t>(p)] = size;
    s.allocated += size;
  }
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  if (ptr == nullptr)
    return cudaSuccess;
  State& s = state();
  {
    std::lock_guard<std::mutex> lk(s.m);
    auto it = s.device_allocs.find(reinterpret_cast<std::uintptr_t>(ptr));
    if (it == s.device_allocs.end())
      return ret(cudaErrorInvalidValue);
    s.allocated -= it->second;
    s.device_allocs.erase(it);
  }
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMallocAsync(void** ptr, size_t size, cudaStream_t stream) {
  if (!valid_stream(stream))
    return ret(cudaErrorInvalidResourceHandle);
  return cudaMalloc(ptr, size);
}
cudaError_t cudaFreeAsync(void* ptr, cudaStream_t stream) {
  if (!valid_stream(stream))
    return ret(cudaErrorInvalidResourceHandle);
  return cudaFree(ptr);
}

cudaError_t cudaMallocHost(void** ptr, size_t size) {
  if (ptr == nullptr)
    return ret(cudaErrorInvalidValue);
  void* p = nullptr;
  if (posix_memalign(&p, 256, size == 0 ? 1 : size) != 0)
    return ret(cudaErrorMemoryAllocation);
  State& s = state();
  std::lock_guard<std::mutex> lk(s.m);
  s.host_allocs.insert(reinterpret_cast<std::uintptr_t>(p));
  *ptr = p;
  return cudaSuccess;
}
cudaError_t cudaHostAlloc(void** ptr, size_t size, unsigned int) {
  return cudaMallocHost(ptr, size);
}
cudaError_t cudaFreeHost(void* ptr) {
  if (ptr == nullptr)
    return cudaSuccess;
  State& s = state();
  {
    std::lock_guard<std::mutex> lk(s.m);
    if (s.host_allocs.erase(reinterpret_cast<std::uintptr_t>(ptr)) == 0)
      return ret(cudaErrorInvalidValue);
  }
  std::free(ptr);
  return cudaSuccess;
}
cudaError_t cudaHostRegister(void*, size_t, unsigned int) {
  return cudaSuccess;
}
cudaError_t cudaHostUnregister(void*) {
  return cudaSuccess;
}

cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes* attr, const void* ptr) {
  if (attr == nullptr)
    return ret(cudaErrorInvalidValue);
  State& s = state();
  std::lock_guard<std::mutex> lk(s.m);
  std::memset(attr, 0, sizeof *attr);
  attr->device = 0;
  if (is_device_pointer(ptr)) {
    attr->type = cudaMemoryTypeDevice;
    attr->devicePointer = const_cast<void*>(ptr);
  } else if (s.host_allocs.count(reinterpret_cast<std::uintptr_t>(ptr))) {
    attr->type = cudaMemoryTypeHost;
    attr->devicePointer = const_cast<void*>(ptr);
    attr->hostPointer = const_cast<void*>(ptr);
  } else {
    attr->type = cudaMemoryTypeUnregistered;
    attr->hostPointer = const_cast<void*>(ptr);
  }
  return cudaSuccess;
}

static cudaError_t copy(void* dst, const void* src, size_t count, enum cudaMemcpyKind kind) {
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault)
    return ret(cudaErrorInvalidMemcpyDirection);
  if (count == 0)
    return cudaSuccess;
  if (dst == nullptr || src == nullptr)
    return ret(cudaErrorInvalidValue);
  std::memcpy(dst, src, count); // overlapping ranges are reported by AddressSanitizer
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, enum cudaMemcpyKind kind) {
  return copy(dst, src, count, kind);
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, enum cudaMemcpyKind kind,
                            cudaStream_t stream) {
  if (!valid_stream(stream))
    return ret(cudaErrorInvalidResourceHandle);
  return copy(dst, src, count, kind);
}
cudaError_t cudaMemcpyPeer(void* dst, int, const void* src, int, size_t count) {
  return copy(dst, src, count, cudaMemcpyDefault);
}
cudaError_t cudaMemcpy2D(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width,
                         size_t height, enum cudaMemcpyKind kind) {
  if (width > dpitch || width > spitch)
    return ret(cudaErrorInvalidValue);
  for (size_t r = 0; r < height; ++r) {
    cudaError_t e = copy(static_cast<char*>(dst) + r * dpitch,
                         static_cast<const char*>(src) + r * spitch, width, kind);
    if (e != cudaSuccess)
      return e;
  }
  return cudaSuccess;
}
cudaError_t cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch,
                              size_t width, size_t height, enum cudaMemcpyKind kind,
                              cudaStream_t stream) {
  if (!valid_stream(stream))
    return ret(cudaErrorInvalidResourceHandle);
  return cudaMemcpy2D(dst, dpitch, src, spitch, width, height, kind);
}

cudaError_t cudaMemset(void* ptr, int value, size_t count) {
  if (count == 0)
    return cudaSuccess;
  if (ptr == nullptr)
    return ret(cudaErrorInvalidValue);
  std::memset(ptr, value, count);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* ptr, int value, size_t count, cudaStream_t stream) {
  if (!valid_stream(stream))
    return ret(cudaErrorInvalidResourceHandle);
  return cudaMemset(ptr, value, count);
}

// ---- streams (synchronous)
// -------------------------------------------------------------------------
cudaError_t cudaStreamCreateWithPriority(cudaStream_t* stream, unsigned int flags, int priority) {
  if (stream == nullptr)
    return ret(cudaErrorInvalidValue);
  auto* s = new EmuStream{flags, priority};
  *stream = reinterpret_cast<cudaStream_t>(s);
  State& st = state();
  std::lock_guard<std::mutex> lk(st.m);
  st.streams.insert(*stream);
  return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
  return cudaStreamCreateWithPriority(stream, flags, 0);
}
cudaError_t cudaStreamCreate(cudaStream_t* stream) {
  return cudaStreamCreateWithPriority(stream, 0, 0);
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  State& st = state();
  {
    std::lock_guard<std::mutex> lk(st.m);
    if (stream == nullptr || st.streams.erase(stream) == 0)
      return ret(cudaErrorInvalidResourceHandle);
  }
  delete reinterpret_cast<EmuStream*>(stream);
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  return valid_stream(stream) ? cudaSuccess : ret(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaStreamQuery(cudaStream_t stream) {
  return valid_stream(stream) ? cudaSuccess : ret(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t, unsigned int) {
  return valid_stream(stream) ? cudaSuccess : ret(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaStreamGetFlags(cudaStream_t stream, unsigned int* flags) {
  if (flags == nullptr || !valid_stream(stream))
    return ret(cudaErrorInvalidValue);
  *flags = (stream == nullptr || stream == cudaStreamLegacy || stream == cudaStreamPerThread)
               ? 0u
               : reinterpret_cast<EmuStream*>(stream)->flags;
  return cudaSuccess;
}
cudaError_t cudaStreamGetDevice(cudaStream_t stream, int* device) {
  if (device == nullptr || !valid_stream(stream))
    return ret(cudaErrorInvalidValue);
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaStreamIsCapturing(cudaStream_t stream, enum cudaStreamCaptureStatus* status) {
  if (status == nullptr || !valid_stream(stream))
    return ret(cudaErrorInvalidValue);
  *status = cudaStreamCaptureStatusNone;
  return cudaSuccess;
}

// ---- events (host clock)
// ---------------------------------------------------------------------------
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  if (event == nullptr)
    return ret(cudaErrorInvalidValue);
  auto* e = new EmuEvent{flags, false, {}};
  *event = reinterpret_cast<cudaEvent_t>(e);
  State& st = state();
  std::lock_guard<std::mutex> lk(st.m);
  st.events.insert(*event);
  return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t* event) {
  return cudaEventCreateWithFlags(event, 0);
}
static EmuEvent* find_event(cudaEvent_t event) {
  State& st = state();
  std::lock_guard<std::mutex> lk(st.m);
  return st.events.count(event) ? reinterpret_cast<EmuEvent*>(event) : nullptr;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  State& st = state();
  {
    std::lock_guard<std::mutex> lk(st.m);
    if (event == nullptr || st.events.erase(event) == 0)
      return ret(cudaErrorInvalidResourceHandle);
  }
  delete reinterpret_cast<EmuEvent*>(event);
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  EmuEvent* e = find_event(event);
  if (e == nullptr || !valid_stream(stream))
    return ret(cudaErrorInvalidResourceHandle);
  e->recorded = true;
  e->when = std::chrono::steady_clock::now();
  return cudaSuccess;
}
cudaError_t cudaEventRecordWithFlags(cudaEvent_t event, cudaStream_t stream, unsigned int) {
  return cudaEventRecord(event, stream);
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  return find_event(event) != nullptr ? cudaSuccess : ret(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaEventQuery(cudaEvent_t event) {
  return find_event(event) != nullptr ? cudaSuccess : ret(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (ms == nullptr)
    return ret(cudaErrorInvalidValue);
  EmuEvent* a = find_event(start);
  EmuEvent* b = find_event(end);
  if (a == nullptr || b == nullptr)
    return ret(cudaErrorInvalidResourceHandle);
  if (!a->recorded || !b->recorded)
    return ret(cudaErrorInvalidResourceHandle);
  if ((a->flags | b->flags) & cudaEventDisableTiming)
    return ret(cudaErrorInvalidResourceHandle);
  *ms = std::chrono::duration<float, std::milli>(b->when - a->when).count();
  return cudaSuccess;
}

// ---- functions
// -------------------------------------------------------------------------------------
cudaError_t cudaFuncSetAttribute(const void* func, enum cudaFuncAttribute attr, int value) {
  if (func == nullptr)
    return ret(cudaErrorInvalidDeviceFunction);
  State& s = state();
  std::lock_guard<std::mutex> lk(s.m);
  switch (attr) {
  case cudaFuncAttributeMaxDynamicSharedMemorySize:
    if (value < 0 || static_cast<std::size_t>(value) > kSmemPerBlockOptin)
      return ret(cudaErrorInvalidValue);
    s.max_dyn_smem[func] = value;
    return cudaSuccess;
  case cudaFuncAttributePreferredSharedMemoryCarveout:
    if (value < -1 || value > 100)
      return ret(cudaErrorInvalidValue);
    s.carveout[func] = value;
    return cudaSuccess;
  default:
    return cudaSuccess; // cluster and scheduling hints have no effect here
  }
}

cudaError_t cudaFuncGetAttributes(struct cudaFuncAttributes* attr, const void* func) {
  if (attr == nullptr)
    return ret(cudaErrorInvalidValue);
  if (func == nullptr)
    return ret(cudaErrorInvalidDeviceFunction);
  std::memset(attr, 0, sizeof *attr);
  attr->maxThreadsPerBlock = kMaxThreadsPerBlock;
  attr->maxDynamicSharedSizeBytes = static_cast<int>(max_dynamic_smem(func));
  attr->ptxVersion = 90;
  attr->binaryVersion = 90;
  attr->preferredShmemCarveout = -1;
  return cudaSuccess;
}

cudaError_t cudaFuncGetName(const char** name, const void* func) {
  if (name == nullptr || func == nullptr)
    return ret(cudaErrorInvalidValue);
  *name = cuda_emu::function_name(func);
  return cudaSuccess;
}

cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* num_blocks, const void* func,
                                                          int block_size, size_t dynamic_smem) {
  if (num_blocks == nullptr || block_size <= 0)
    return ret(cudaErrorInvalidValue);
  if (func == nullptr)
    return ret(cudaErrorInvalidDeviceFunction);
  // A model without register pressure: threads, blocks and shared memory per SM.
  const int warps = (block_size + 31) / 32;
  int by_threads = kMaxThreadsPerSm / (warps * 32);
  int by_smem = 32;
  const std::size_t per_block = dynamic_smem + 1024; // + the reserved 1 KB per block
  if (dynamic_smem > 0)
    by_smem = static_cast<int>(kSmemPerSm / per_block);
  *num_blocks = std::max(0, std::min({by_threads, by_smem, 32}));
  return cudaSuccess;
}
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int* num_blocks,
                                                                   const void* func, int block_size,
                                                                   size_t dynamic_smem,
                                                                   unsigned int) {
  return cudaOccupancyMaxActiveBlocksPerMultiprocessor(num_blocks, func, block_size, dynamic_smem);
}

} // extern "C"

// ---- tensor maps (TMA): cuTensorMapEncodeTiled and its runtime entry point
// ------------------------ The CUtensorMap is opaque on a GPU; under the emulator it holds
// cuda_emu::gmma::TensorMap, which cp.async.bulk.tensor (cuda_emu_runtime.cpp) reads.  The
// parameters are checked as the driver's documentation (cuda.h) states; CUDA_ERROR_INVALID_VALUE
// otherwise.  The packed 4/6-bit types are not emulated (CUDA_ERROR_NOT_SUPPORTED).
namespace {
int tensor_map_element_bytes(CUtensorMapDataType t) {
  switch (t) {
  case CU_TENSOR_MAP_DATA_TYPE_UINT8:
    return 1;
  case CU_TENSOR_MAP_DATA_TYPE_UINT16:
  case CU_TENSOR_MAP_DATA_TYPE_FLOAT16:
  case CU_TENSOR_MAP_DATA_TYPE_BFLOAT16:
    return 2;
  case CU_TENSOR_MAP_DATA_TYPE_UINT32:
  case CU_TENSOR_MAP_DATA_TYPE_INT32:
  case CU_TENSOR_MAP_DATA_TYPE_FLOAT32:
  case CU_TENSOR_MAP_DATA_TYPE_FLOAT32_FTZ:
  case CU_TENSOR_MAP_DATA_TYPE_TFLOAT32:
  case CU_TENSOR_MAP_DATA_TYPE_TFLOAT32_FTZ:
    return 4;
  case CU_TENSOR_MAP_DATA_TYPE_UINT64:
  case CU_TENSOR_MAP_DATA_TYPE_INT64:
  case CU_TENSOR_MAP_DATA_TYPE_FLOAT64:
    return 8;
  default:
    return 0;
  }
}
bool tensor_map_is_float(CUtensorMapDataType t) {
  return t == CU_TENSOR_MAP_DATA_TYPE_FLOAT16 || t == CU_TENSOR_MAP_DATA_TYPE_FLOAT32 ||
         t == CU_TENSOR_MAP_DATA_TYPE_FLOAT64 || t == CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 ||
         t == CU_TENSOR_MAP_DATA_TYPE_FLOAT32_FTZ || t == CU_TENSOR_MAP_DATA_TYPE_TFLOAT32 ||
         t == CU_TENSOR_MAP_DATA_TYPE_TFLOAT32_FTZ;
}
} // namespace

extern "C" CUresult CUDAAPI cuTensorMapEncodeTiled(
    CUtensorMap* tensorMap, CUtensorMapDataType tensorDataType, cuuint32_t tensorRank,
    void* globalAddress, const cuuint64_t* globalDim, const cuuint64_t* globalStrides,
    const cuuint32_t* boxDim, const cuuint32_t* elementStrides, CUtensorMapInterleave interleave,
    CUtensorMapSwizzle swizzle, CUtensorMapL2promotion l2Promotion,
    CUtensorMapFloatOOBfill oobFill) {
  const CUresult bad = CUDA_ERROR_INVALID_VALUE;
  if (tensorMap == nullptr || reinterpret_cast<std::uintptr_t>(tensorMap) % 64 != 0)
    return bad;
  if (static_cast<int>(tensorDataType) >= static_cast<int>(CU_TENSOR_MAP_DATA_TYPE_16U4_ALIGN8B) &&
      static_cast<int>(tensorDataType) <= static_cast<int>(CU_TENSOR_MAP_DATA_TYPE_16U6_ALIGN16B))
    return CUDA_ERROR_NOT_SUPPORTED;
  const int e = tensor_map_element_bytes(tensorDataType);
  if (e == 0 || tensorRank == 0 || tensorRank > 5)
    return bad;
  if (interleave != CU_TENSOR_MAP_INTERLEAVE_NONE && interleave != CU_TENSOR_MAP_INTERLEAVE_16B &&
      interleave != CU_TENSOR_MAP_INTERLEAVE_32B)
    return bad;
  if (interleave != CU_TENSOR_MAP_INTERLEAVE_NONE && tensorRank < 3)
    return bad;
  const auto base = reinterpret_cast<std::uintptr_t>(globalAddress);
  if (base == 0 || base % (interleave == CU_TENSOR_MAP_INTERLEAVE_32B ? 32 : 16) != 0)
    return bad;
  if (globalDim == nullptr || boxDim == nullptr || elementStrides == nullptr ||
      (tensorRank > 1 && globalStrides == nullptr))
    return bad;
  for (cuuint32_t d = 0; d < tensorRank; ++d) {
    if (globalDim[d] == 0 || globalDim[d] > (cuuint64_t{1} << 32))
      return bad;
    if (boxDim[d] == 0 || boxDim[d] > 256 || elementStrides[d] == 0 || elementStrides[d] > 8)
      return bad;
  }
  for (cuuint32_t d = 0; d + 1 < tensorRank; ++d)
    if (globalStrides[d] % (interleave == CU_TENSOR_MAP_INTERLEAVE_32B ? 32 : 16) != 0 ||
        globalStrides[d] >= (cuuint64_t{1} << 40))
      return bad;
  const cuuint64_t inner_bytes = cuuint64_t{boxDim[0]} * static_cast<cuuint64_t>(e);
  if (interleave == CU_TENSOR_MAP_INTERLEAVE_NONE && inner_bytes % 16 != 0)
    return bad;
  if (static_cast<int>(swizzle) < 0 ||
      static_cast<int>(swizzle) > static_cast<int>(CU_TENSOR_MAP_SWIZZLE_128B_ATOM_64B))
    return bad;
  if (interleave == CU_TENSOR_MAP_INTERLEAVE_NONE && swizzle != CU_TENSOR_MAP_SWIZZLE_NONE) {
    const cuuint64_t span = swizzle == CU_TENSOR_MAP_SWIZZLE_32B   ? 32
                            : swizzle == CU_TENSOR_MAP_SWIZZLE_64B ? 64
                                                                   : 128;
    if (inner_bytes > span)
      return bad;
  }
  if (interleave == CU_TENSOR_MAP_INTERLEAVE_32B && swizzle != CU_TENSOR_MAP_SWIZZLE_32B)
    return bad;
  if (static_cast<int>(l2Promotion) < 0 || static_cast<int>(l2Promotion) > 3)
    return bad;
  if (oobFill != CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE &&
      (oobFill != CU_TENSOR_MAP_FLOAT_OOB_FILL_NAN_REQUEST_ZERO_FMA ||
       !tensor_map_is_float(tensorDataType)))
    return bad;
  cuda_emu::gmma::TensorMap m{};
  m.magic = cuda_emu::gmma::kTensorMapMagic;
  m.dtype = static_cast<std::uint8_t>(tensorDataType);
  m.rank = static_cast<std::uint8_t>(tensorRank);
  m.interleave = static_cast<std::uint8_t>(interleave);
  m.swizzle = static_cast<std::uint8_t>(swizzle);
  m.oob_fill = static_cast<std::uint8_t>(oobFill);
  m.elem_bytes = static_cast<std::uint8_t>(e);
  m.l2 = static_cast<std::uint8_t>(l2Promotion);
  m.base = base;
  for (cuuint32_t d = 0; d < tensorRank; ++d) {
    m.dim_minus_1[d] = static_cast<std::uint32_t>(globalDim[d] - 1);
    m.stride[d] = d == 0 ? static_cast<std::uint64_t>(e) : globalStrides[d - 1];
    m.box[d] = static_cast<std::uint16_t>(boxDim[d]);
    m.element_stride[d] = static_cast<std::uint8_t>(elementStrides[d]);
  }
  std::memset(tensorMap, 0, sizeof(CUtensorMap));
  std::memcpy(tensorMap, &m, sizeof m);
  return CUDA_SUCCESS;
}

extern "C" cudaError_t
cudaGetDriverEntryPointByVersion(const char* symbol, void** funcPtr, unsigned int cudaVersion,
                                 unsigned long long,
                                 enum cudaDriverEntryPointQueryResult* driverStatus) {
  using namespace cuda_emu::detail;
  if (symbol == nullptr || funcPtr == nullptr)
    return ret(cudaErrorInvalidValue);
  int driver = 0;
  cudaDriverGetVersion(&driver);
  if (static_cast<int>(cudaVersion) > driver)
    return ret(cudaErrorInvalidValue);
  // The one driver function the emulator provides (the tensor-map encoder, since CUDA 12.0).
  const bool found = std::strcmp(symbol, "cuTensorMapEncodeTiled") == 0;
  const bool recent = cudaVersion >= 12000;
  *funcPtr = found && recent ? reinterpret_cast<void*>(&cuTensorMapEncodeTiled) : nullptr;
  if (driverStatus != nullptr)
    *driverStatus = !found    ? cudaDriverEntryPointSymbolNotFound
                    : !recent ? cudaDriverEntryPointVersionNotSufficent
                              : cudaDriverEntryPointSuccess;
  return cudaSuccess;
}
