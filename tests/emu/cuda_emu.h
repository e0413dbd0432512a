// cuda_emu.h — the CPU SIMT emulator's header.
//
// Force-include it before a standard CUDA C++ file and compile that file with the host compiler:
//
//     g++ -std=c++17 -x c++ -include tests/emu/cuda_emu.h -I/usr/local/cuda/include file.cu
//
// then link the static library `cuda_emu`: every kernel of the file runs on the CPU.  Blocks run in
// a shuffled order (possibly in parallel on several host threads), the threads of a block are
// cooperative fibers on ONE host thread, barriers and warp collectives are checked.  See
// tests/emu/README.md for what is emulated, what is not, and the environment variables.
//
// How the header works:
//   * The execution-space qualifiers are defined before the toolkit headers are included, so the
//     toolkit's crt/host_defines.h keeps ours: __global__/__device__/__host__ vanish and
//     __shared__ becomes `thread_local` (a block-scope thread_local is implicitly static: one copy
//     per host thread, and every block's fibers run on one host thread).
//   * The toolkit's own cuda_runtime.h is then included, so every runtime-API declaration has
//     exactly CUDA's signature; the library provides the definitions (no cudart is linked).  Its
//     two launch templates (cudaLaunchKernel, cudaLaunchKernelEx) are renamed away while it is
//     included and replaced below by templates that keep the kernel's parameter types.
//   * half / __nv_bfloat16 come from the toolkit's cuda_fp16.h / cuda_bf16.h host paths.
#pragma once

#if defined(__CUDACC__)
#error "cuda_emu.h is for the host compiler; nvcc compiles CUDA files without it"
#endif
#if defined(__CUDA_RUNTIME_H__) || defined(__HOST_DEFINES_H__)
#error "cuda_emu.h must come before every CUDA header: force-include it (-include cuda_emu.h)"
#endif

#define CUDA_EMU 1

// ---- execution-space qualifiers (crt/host_defines.h keeps these when already defined) -------
#define __host__
#define __device__
#define __global__
#define __shared__ thread_local
#define __constant__
#define __managed__
#define __grid_constant__

// ---- the toolkit's runtime API, with its two launch templates renamed out of the way -------
#define cudaLaunchKernel cuda_emu_toolkit_cudaLaunchKernel
#define cudaLaunchKernelEx cuda_emu_toolkit_cudaLaunchKernelEx
#include <cuda_runtime.h>
#undef cudaLaunchKernel
#undef cudaLaunchKernelEx
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#undef __launch_bounds__
#define __launch_bounds__(...)

#include <math.h>
#include <stdio.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

// ---- built-in variables ------------------------------------------------------------------
// Real variables (not macros: `prop.warpSize` must keep working).  The runtime rewrites
// threadIdx at every fiber switch and the other three at every block start; all four are
// per host thread.
// initial-exec TLS: a direct %fs access instead of a __tls_get_addr call on every use (the
// library is linked into executables, never dlopen'ed).
#define CUDA_EMU_TLS __attribute__((tls_model("initial-exec")))
inline thread_local uint3 threadIdx CUDA_EMU_TLS{0, 0, 0};
inline thread_local uint3 blockIdx CUDA_EMU_TLS{0, 0, 0};
inline thread_local dim3 blockDim CUDA_EMU_TLS{1, 1, 1};
inline thread_local dim3 gridDim CUDA_EMU_TLS{1, 1, 1};
constexpr int warpSize = 32;

// ---- the runtime's kernel-side entry points --------------------------------------------------
namespace cuda_emu {

/// Base seed of this process (CUDA_EMU_SEED, or a random one that every failure message prints).
std::uint64_t seed();
/// Number of host threads that run blocks in parallel (CUDA_EMU_THREADS, default: all cores).
int host_threads();
void set_host_threads(int n);

/// Counters since process start (all launches), for speed measurements.
struct Stats {
  std::uint64_t launches;
  std::uint64_t blocks;
  std::uint64_t threads;
  std::uint64_t barrier_crossings; // one per emulated thread per completed barrier or collective
  std::uint64_t fiber_switches;
};
Stats stats();

/// The demangled name of a kernel (or any function) from its address; "kernel@0x..." if unknown.
const char* function_name(const void* fn);

/// Performance counters of one kernel launch (README "Counters": the model and its limits).
/// Collected while counting is on: CUDA_EMU_STATS=path.json at process start (the records are
/// written there as JSON at exit), or counters_enable(true).  Tensor MACs, barriers and cp.async /
/// ldmatrix traffic are always counted; plain loads and stores only in code compiled with the
/// access hooks (cuda_emu_access_hooks, `accesses_instrumented` says whether any fired).
/// Memory requests are grouped per warp by instruction site and issue round (each lane's k-th
/// execution of a site since the warp's last barrier or collective).
struct LaunchCounters {
  const char* kernel = ""; // demangled name (lives for the process)
  unsigned grid[3] = {0, 0, 0}, block[3] = {0, 0, 0};
  std::uint64_t dynamic_smem = 0;
  std::uint64_t blocks = 0, threads = 0;
  std::uint64_t barriers = 0;           // completed __syncthreads, summed over blocks
  std::uint64_t warp_collectives = 0;   // completed shuffles / votes / syncwarps / mma / ldmatrix
  std::uint64_t mma_instructions = 0;   // warp-level mma.sync
  std::uint64_t tensor_macs = 0;        // multiply-adds of those (m16n8k16: 2048, m16n8k8: 1024)
                                        // and of the wgmma (m64nNk16: 1024 N)
  std::uint64_t wgmma_instructions = 0; // warpgroup-level wgmma.mma_async
  // Shared memory (32 banks of 4 bytes; a request is one warp-level access; a wavefront one pass
  // of the banks; ideal = the wavefronts without conflicts: 1 per request of <= 4 bytes per lane,
  // 2 of 8 bytes (half-warps), 4 of 16 bytes (quarter-warps); ldmatrix: 1 per 8x8 matrix).
  std::uint64_t smem_load_requests = 0, smem_load_wavefronts = 0, smem_load_ideal = 0;
  std::uint64_t smem_store_requests = 0, smem_store_wavefronts = 0, smem_store_ideal = 0;
  std::uint64_t ldmatrix_requests = 0, ldmatrix_wavefronts = 0, ldmatrix_ideal = 0; // (in loads)
  // Global memory (device allocations): requests and distinct 32-byte sectors per request.
  std::uint64_t gmem_load_requests = 0, gmem_load_sectors = 0, gmem_load_bytes = 0;
  std::uint64_t gmem_store_requests = 0, gmem_store_sectors = 0, gmem_store_bytes = 0;
  std::uint64_t cp_async_requests = 0, cp_async_bytes = 0; // (in gmem loads / smem stores)
  std::uint64_t tma_requests = 0, tma_bytes = 0; // cp.async.bulk.tensor copies and their box bytes
  // of those bytes, the ones each block copied through the tensor map of its first copy (the same
  // 128 bytes; all of them when a kernel's maps are identical, e.g. one tensor for both operands)
  std::uint64_t tma_first_map_bytes = 0;
  bool accesses_instrumented = false;
};
void counters_enable(bool on);
bool counters_enabled();
/// The records of the launches since the last call (in launch order), and forgets them.
std::vector<LaunchCounters> counters_take();
/// Dry run: launches are validated and recorded (grid, block, shared memory; when counting) but no
/// block runs.  For reading the launch shapes a host dispatch chooses at sizes too large to
/// emulate.
void set_dry_run(bool on);
/// Writes `records` as a JSON array to `path` (false when the file cannot be written).
bool counters_write_json(const char* path, const std::vector<LaunchCounters>& records);

namespace detail {

using KernelThunk = void (*)(const void* kernel, void* packed_args);
using KernelPack = void* (*)(void** args);
using KernelUnpack = void (*)(void* packed_args);

// Launch a grid; returns the launch error (cudaSuccess when all blocks ran).
cudaError_t launch(const void* kernel, KernelThunk thunk, void* packed_args, dim3 grid, dim3 block,
                   std::size_t dynamic_smem, cudaStream_t stream);
// Remember how to launch `kernel` from a void** argument array (the C launch APIs).
void register_kernel(const void* kernel, KernelThunk thunk, KernelPack pack, KernelUnpack unpack);

[[noreturn]] void fail(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

void syncthreads(const char* file, int line);
int syncthreads_reduce(int kind, int predicate, const char* file, int line); // 0 count, 1 and, 2 or
void syncwarp(unsigned mask);
enum class Shfl : int { idx = 0, up = 1, down = 2, bfly = 3 };
std::uint64_t shfl(unsigned mask, std::uint64_t bits, Shfl mode, unsigned b, int width,
                   const char* name);
unsigned ballot(unsigned mask, int predicate, const char* name);
unsigned activemask();
enum class Reduce : int { add = 0, min_s, max_s, min_u, max_u, and_, or_, xor_ };
unsigned reduce(unsigned mask, unsigned value, Reduce op, const char* name);
void* dynamic_shared_memory();

// Tensor-core and async-copy emulation (kernels/common/mma.cuh, cp_async.cuh call these).
enum class MmaType : int { bf16 = 0, f16 = 1, tf32 = 2 };
void mma_m16n8(float* d, const std::uint32_t* a, const std::uint32_t* b, const float* c,
               MmaType type);
void ldmatrix(std::uint32_t* r, int count, bool trans, const void* smem_row);
void cp_async(void* smem, const void* gmem, int bytes, int src_bytes);
void cp_async_commit();
void cp_async_wait(int pending_groups);
std::uint32_t float_to_tf32(float x);
// Hopper (sm_90a) primitives: kernels/common/mbarrier.cuh, tma.cuh, wgmma.cuh, warpgroup.cuh call
// these (README "Hopper").  mbarrier state lives in the emulator (keyed by the object's address);
// a wait, a named barrier and the warpgroup instructions are scheduling points.
void mbarrier_init(std::uint64_t* bar, unsigned count);
void mbarrier_inval(std::uint64_t* bar);
std::uint64_t mbarrier_arrive(std::uint64_t* bar, std::uint32_t tx_bytes, bool expect_tx);
void mbarrier_expect_tx(std::uint64_t* bar, std::uint32_t tx_bytes);
bool mbarrier_try_wait_parity(std::uint64_t* bar, unsigned phase_parity);
void named_barrier(unsigned id, unsigned count, bool wait);
// The shared-window address of a byte of the running block's dynamic shared memory (what
// __cvta_generic_to_shared gives on a GPU): the buffer starts at kSharedWindowBase.
constexpr std::uint32_t kSharedWindowBase = 0x400;
std::uint32_t shared_address(const void* p);
// cp.async.bulk.tensor.{1..5}d.shared::cluster.global.tile.mbarrier::complete_tx::bytes
void tma_load(void* smem_dst, const void* tensor_map, int rank, const int* coords,
              std::uint64_t* bar);
// wgmma.fence / commit_group / wait_group (warp collectives, all 32 lanes) and wgmma.mma_async
// (a warpgroup collective, all 128 threads): d has n/2 floats; a_regs null for A from shared
// memory (desc_a), else the lane's 4 A registers.
void wgmma_fence();
void wgmma_commit();
void wgmma_wait(int pending_groups);
void wgmma(float* d, int n, MmaType type, const std::uint32_t* a_regs, std::uint64_t desc_a,
           std::uint64_t desc_b, int scale_d, int scale_a, int scale_b, int trans_a, int trans_b);
// setmaxnreg.{inc,dec}.sync.aligned.u32 (a warpgroup collective: checked uniform, else a no-op).
void setmaxnreg(bool inc, unsigned regs);
// A plain load or store seen by the access hooks (cuda_emu_access_hooks.cpp): `site` identifies
// the instruction (its return address).  Ignored outside kernels and outside device / shared
// memory.
void record_access(std::uintptr_t addr, std::size_t bytes, bool store, std::uintptr_t site);
[[noreturn]] void trap();

// Shuffles move the bits of any value of at most 8 bytes (CUDA's overloads: integers, float,
// double, __half, __half2, __nv_bfloat16, __nv_bfloat162; the last four are not trivially
// copyable in the toolkit's headers, but are plain bits).
template <typename T> inline std::uint64_t to_bits(const T& v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_destructible<T>::value,
                "warp shuffles move at most 8 bytes of a plain value");
  std::uint64_t bits = 0;
  std::memcpy(&bits, static_cast<const void*>(&v), sizeof(T));
  return bits;
}
template <typename T> inline T from_bits(std::uint64_t bits) {
  T v;
  std::memcpy(static_cast<void*>(&v), &bits, sizeof(T));
  return v;
}

template <typename... P> struct KernelTraits {
  using Packed = std::tuple<std::decay_t<P>...>;
  static void run(const void* kernel, void* packed) {
    auto fn = reinterpret_cast<void (*)(P...)>(const_cast<void*>(kernel));
    std::apply(fn, *static_cast<Packed*>(packed)); // each emulated thread gets its own copies
  }
  template <std::size_t... I> static void* pack_impl(void** args, std::index_sequence<I...>) {
    return new Packed(*static_cast<std::decay_t<P>*>(args[I])...);
  }
  static void* pack(void** args) { return pack_impl(args, std::index_sequence_for<P...>{}); }
  static void unpack(void* packed) { delete static_cast<Packed*>(packed); }
  static void record(const void* kernel) { register_kernel(kernel, &run, &pack, &unpack); }
};

} // namespace detail
} // namespace cuda_emu

namespace cuda_emu {
/// Makes `kernel` launchable through the untyped C entry points (cudaLaunchKernel with a
/// `const void*`, cudaLaunchKernelExC), which cannot know the parameter types by themselves.  The
/// typed launch templates, cudaFuncSetAttribute and cudaFuncGetAttributes register implicitly.
template <typename... P> inline void register_kernel(void (*kernel)(P...)) {
  detail::KernelTraits<P...>::record(reinterpret_cast<const void*>(kernel));
}
template <typename T> inline void register_kernel(T*) {} // not a function: nothing to register
} // namespace cuda_emu

// ---- launch: the same calls as CUDA's runtime templates, keeping the parameter types ---------
template <typename... ExpTypes, typename... ActTypes>
inline cudaError_t cudaLaunchKernelEx(const cudaLaunchConfig_t* config, void (*kernel)(ExpTypes...),
                                      ActTypes&&... args) {
  static_assert(sizeof...(ExpTypes) == sizeof...(ActTypes), "kernel argument count mismatch");
  using Traits = cuda_emu::detail::KernelTraits<ExpTypes...>;
  Traits::record(reinterpret_cast<const void*>(kernel));
  if (config == nullptr)
    return cudaErrorInvalidValue;
  for (unsigned i = 0; i < config->numAttrs; ++i) // clusters: one CTA only (README "Hopper")
    if (config->attrs[i].id == cudaLaunchAttributeClusterDimension &&
        config->attrs[i].val.clusterDim.x * config->attrs[i].val.clusterDim.y *
                config->attrs[i].val.clusterDim.z >
            1)
      cuda_emu::detail::fail("cudaLaunchKernelEx: clusters of more than one CTA (%u x %u x %u) are "
                             "not emulated",
                             config->attrs[i].val.clusterDim.x, config->attrs[i].val.clusterDim.y,
                             config->attrs[i].val.clusterDim.z);
  typename Traits::Packed packed(std::forward<ActTypes>(args)...);
  return cuda_emu::detail::launch(reinterpret_cast<const void*>(kernel), &Traits::run, &packed,
                                  config->gridDim, config->blockDim, config->dynamicSmemBytes,
                                  config->stream);
}

template <typename... P>
inline cudaError_t cudaLaunchKernel(void (*kernel)(P...), dim3 grid, dim3 block, void** args,
                                    std::size_t dynamic_smem = 0, cudaStream_t stream = nullptr) {
  using Traits = cuda_emu::detail::KernelTraits<P...>;
  Traits::record(reinterpret_cast<const void*>(kernel));
  if (args == nullptr && sizeof...(P) > 0)
    return cudaErrorInvalidValue;
  void* packed = Traits::pack(args);
  cudaError_t err = cuda_emu::detail::launch(reinterpret_cast<const void*>(kernel), &Traits::run,
                                             packed, grid, block, dynamic_smem, stream);
  Traits::unpack(packed);
  return err;
}

// The C++ overloads that cuda_runtime.h offers only to nvcc-compiled code (kernel pointer instead
// of const void*), so that launch code in .cu files compiles under the emulator too.
// They also register the kernel for the C launch API (see cuda_emu::register_kernel).
template <class T>
inline cudaError_t cudaFuncSetAttribute(T* entry, enum cudaFuncAttribute attr, int value) {
  cuda_emu::register_kernel(entry);
  return ::cudaFuncSetAttribute(reinterpret_cast<const void*>(entry), attr, value);
}
template <class T>
inline cudaError_t cudaFuncGetAttributes(struct cudaFuncAttributes* attr, T* entry) {
  cuda_emu::register_kernel(entry);
  return ::cudaFuncGetAttributes(attr, reinterpret_cast<const void*>(entry));
}
// __device__ / __constant__ variables are host globals here; the symbol templates that nvcc code
// uses (cuda_runtime.h offers them only to nvcc) copy to and from them directly.
template <class T>
inline cudaError_t cudaMemcpyToSymbol(const T& symbol, const void* src, size_t count,
                                      size_t offset = 0,
                                      enum cudaMemcpyKind kind = cudaMemcpyHostToDevice) {
  if (offset + count > sizeof(T) || (count > 0 && src == nullptr) ||
      kind == cudaMemcpyDeviceToHost) {
    return cudaErrorInvalidValue;
  }
  if (count > 0)
    std::memcpy(reinterpret_cast<char*>(const_cast<T*>(&symbol)) + offset, src, count);
  return cudaSuccess;
}
template <class T>
inline cudaError_t cudaMemcpyFromSymbol(void* dst, const T& symbol, size_t count, size_t offset = 0,
                                        enum cudaMemcpyKind kind = cudaMemcpyDeviceToHost) {
  if (offset + count > sizeof(T) || (count > 0 && dst == nullptr) ||
      kind == cudaMemcpyHostToDevice) {
    return cudaErrorInvalidValue;
  }
  if (count > 0)
    std::memcpy(dst, reinterpret_cast<const char*>(&symbol) + offset, count);
  return cudaSuccess;
}
template <class T>
inline cudaError_t
cudaMemcpyToSymbolAsync(const T& symbol, const void* src, size_t count, size_t offset = 0,
                        enum cudaMemcpyKind kind = cudaMemcpyHostToDevice, cudaStream_t = nullptr) {
  return cudaMemcpyToSymbol(symbol, src, count, offset, kind);
}
template <class T>
inline cudaError_t cudaMemcpyFromSymbolAsync(void* dst, const T& symbol, size_t count,
                                             size_t offset = 0,
                                             enum cudaMemcpyKind kind = cudaMemcpyDeviceToHost,
                                             cudaStream_t = nullptr) {
  return cudaMemcpyFromSymbol(dst, symbol, count, offset, kind);
}
template <class T> inline cudaError_t cudaGetSymbolAddress(void** dev_ptr, const T& symbol) {
  if (dev_ptr == nullptr)
    return cudaErrorInvalidValue;
  *dev_ptr = const_cast<void*>(static_cast<const void*>(&symbol));
  return cudaSuccess;
}

// The C entry point (a kernel is found by address among those launched through a template).
extern "C" cudaError_t cudaLaunchKernel(const void* func, dim3 gridDim, dim3 blockDim, void** args,
                                        size_t sharedMem, cudaStream_t stream);

// ---- barriers and warp collectives -------------------------------------------------------------
// __syncthreads is a macro so that the barrier knows its source line: threads of one block that
// wait at different __syncthreads calls are a divergent barrier, reported as such.
#define __syncthreads() ::cuda_emu::detail::syncthreads(__FILE__, __LINE__)
#define __syncthreads_count(p) ::cuda_emu::detail::syncthreads_reduce(0, (p), __FILE__, __LINE__)
#define __syncthreads_and(p) ::cuda_emu::detail::syncthreads_reduce(1, (p), __FILE__, __LINE__)
#define __syncthreads_or(p) ::cuda_emu::detail::syncthreads_reduce(2, (p), __FILE__, __LINE__)

inline void __syncwarp(unsigned mask = 0xffffffffu) {
  cuda_emu::detail::syncwarp(mask);
}

template <typename T>
inline T __shfl_sync(unsigned mask, T var, int srcLane, int width = warpSize) {
  using namespace cuda_emu::detail;
  return from_bits<T>(
      shfl(mask, to_bits(var), Shfl::idx, static_cast<unsigned>(srcLane), width, "__shfl_sync"));
}
template <typename T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
  using namespace cuda_emu::detail;
  return from_bits<T>(shfl(mask, to_bits(var), Shfl::up, delta, width, "__shfl_up_sync"));
}
template <typename T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
  using namespace cuda_emu::detail;
  return from_bits<T>(shfl(mask, to_bits(var), Shfl::down, delta, width, "__shfl_down_sync"));
}
template <typename T>
inline T __shfl_xor_sync(unsigned mask, T var, int laneMask, int width = warpSize) {
  using namespace cuda_emu::detail;
  return from_bits<T>(shfl(mask, to_bits(var), Shfl::bfly, static_cast<unsigned>(laneMask), width,
                           "__shfl_xor_sync"));
}
inline unsigned __ballot_sync(unsigned mask, int predicate) {
  return cuda_emu::detail::ballot(mask, predicate, "__ballot_sync");
}
inline int __any_sync(unsigned mask, int predicate) {
  return cuda_emu::detail::ballot(mask, predicate, "__any_sync") != 0u;
}
inline int __all_sync(unsigned mask, int predicate) {
  return cuda_emu::detail::ballot(mask, predicate != 0, "__all_sync") == mask;
}
inline unsigned __activemask() {
  return cuda_emu::detail::activemask();
}

inline unsigned __reduce_add_sync(unsigned mask, unsigned v) {
  return cuda_emu::detail::reduce(mask, v, cuda_emu::detail::Reduce::add, "__reduce_add_sync");
}
inline int __reduce_add_sync(unsigned mask, int v) {
  return static_cast<int>(cuda_emu::detail::reduce(
      mask, static_cast<unsigned>(v), cuda_emu::detail::Reduce::add, "__reduce_add_sync"));
}
inline unsigned __reduce_min_sync(unsigned mask, unsigned v) {
  return cuda_emu::detail::reduce(mask, v, cuda_emu::detail::Reduce::min_u, "__reduce_min_sync");
}
inline int __reduce_min_sync(unsigned mask, int v) {
  return static_cast<int>(cuda_emu::detail::reduce(
      mask, static_cast<unsigned>(v), cuda_emu::detail::Reduce::min_s, "__reduce_min_sync"));
}
inline unsigned __reduce_max_sync(unsigned mask, unsigned v) {
  return cuda_emu::detail::reduce(mask, v, cuda_emu::detail::Reduce::max_u, "__reduce_max_sync");
}
inline int __reduce_max_sync(unsigned mask, int v) {
  return static_cast<int>(cuda_emu::detail::reduce(
      mask, static_cast<unsigned>(v), cuda_emu::detail::Reduce::max_s, "__reduce_max_sync"));
}
inline unsigned __reduce_and_sync(unsigned mask, unsigned v) {
  return cuda_emu::detail::reduce(mask, v, cuda_emu::detail::Reduce::and_, "__reduce_and_sync");
}
inline unsigned __reduce_or_sync(unsigned mask, unsigned v) {
  return cuda_emu::detail::reduce(mask, v, cuda_emu::detail::Reduce::or_, "__reduce_or_sync");
}
inline unsigned __reduce_xor_sync(unsigned mask, unsigned v) {
  return cuda_emu::detail::reduce(mask, v, cuda_emu::detail::Reduce::xor_, "__reduce_xor_sync");
}

// ---- memory fences and loads -------------------------------------------------------------------
inline void __threadfence() {
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
}
inline void __threadfence_block() {
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
}
inline void __threadfence_system() {
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
}
template <typename T> inline T __ldg(const T* p) {
  return *p;
}
template <typename T> inline T __ldcg(const T* p) {
  return *p;
}
template <typename T> inline T __ldca(const T* p) {
  return *p;
}
template <typename T> inline T __ldcs(const T* p) {
  return *p;
}
template <typename T> inline T __ldlu(const T* p) {
  return *p;
}
template <typename T> inline T __ldcv(const T* p) {
  return *p;
}
template <typename T> inline void __stwb(T* p, T v) {
  *p = v;
}
template <typename T> inline void __stcg(T* p, T v) {
  *p = v;
}
template <typename T> inline void __stcs(T* p, T v) {
  *p = v;
}
template <typename T> inline void __stwt(T* p, T v) {
  *p = v;
}

[[noreturn]] inline void __trap() {
  cuda_emu::detail::trap();
}
inline void __nanosleep(unsigned) {}
inline long long clock64() {
#if defined(__x86_64__) || defined(__i386__)
  return static_cast<long long>(__builtin_ia32_rdtsc());
#else
  return static_cast<long long>(std::chrono::steady_clock::now().time_since_epoch().count());
#endif
}

// ---- atomics (real host atomics: blocks may run in parallel) ------------------------------------
#define CUDA_EMU_ATOMIC_INT(T)                                                                     \
  inline T atomicAdd(T* a, T v) {                                                                  \
    return __atomic_fetch_add(a, v, __ATOMIC_RELAXED);                                             \
  }                                                                                                \
  inline T atomicSub(T* a, T v) {                                                                  \
    return __atomic_fetch_sub(a, v, __ATOMIC_RELAXED);                                             \
  }                                                                                                \
  inline T atomicExch(T* a, T v) {                                                                 \
    return __atomic_exchange_n(a, v, __ATOMIC_RELAXED);                                            \
  }                                                                                                \
  inline T atomicAnd(T* a, T v) {                                                                  \
    return __atomic_fetch_and(a, v, __ATOMIC_RELAXED);                                             \
  }                                                                                                \
  inline T atomicOr(T* a, T v) {                                                                   \
    return __atomic_fetch_or(a, v, __ATOMIC_RELAXED);                                              \
  }                                                                                                \
  inline T atomicXor(T* a, T v) {                                                                  \
    return __atomic_fetch_xor(a, v, __ATOMIC_RELAXED);                                             \
  }                                                                                                \
  inline T atomicCAS(T* a, T expected, T desired) {                                                \
    __atomic_compare_exchange_n(a, &expected, desired, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED); \
    return expected;                                                                               \
  }                                                                                                \
  inline T atomicMax(T* a, T v) {                                                                  \
    T old = __atomic_load_n(a, __ATOMIC_RELAXED);                                                  \
    while (old < v &&                                                                              \
           !__atomic_compare_exchange_n(a, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {   \
    }                                                                                              \
    return old;                                                                                    \
  }                                                                                                \
  inline T atomicMin(T* a, T v) {                                                                  \
    T old = __atomic_load_n(a, __ATOMIC_RELAXED);                                                  \
    while (old > v &&                                                                              \
           !__atomic_compare_exchange_n(a, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {   \
    }                                                                                              \
    return old;                                                                                    \
  }                                                                                                \
  inline T atomicAdd_block(T* a, T v) {                                                            \
    return atomicAdd(a, v);                                                                        \
  }                                                                                                \
  inline T atomicAdd_system(T* a, T v) {                                                           \
    return atomicAdd(a, v);                                                                        \
  }
CUDA_EMU_ATOMIC_INT(int)
CUDA_EMU_ATOMIC_INT(unsigned int)
CUDA_EMU_ATOMIC_INT(unsigned long long int)
#undef CUDA_EMU_ATOMIC_INT
inline long long atomicMax(long long* a, long long v) {
  long long old = __atomic_load_n(a, __ATOMIC_RELAXED);
  while (old < v &&
         !__atomic_compare_exchange_n(a, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return old;
}
inline long long atomicMin(long long* a, long long v) {
  long long old = __atomic_load_n(a, __ATOMIC_RELAXED);
  while (old > v &&
         !__atomic_compare_exchange_n(a, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return old;
}
inline unsigned short atomicCAS(unsigned short* a, unsigned short expected,
                                unsigned short desired) {
  __atomic_compare_exchange_n(a, &expected, desired, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return expected;
}
inline unsigned atomicInc(unsigned* a, unsigned limit) { // ((old >= limit) ? 0 : old + 1)
  unsigned old = __atomic_load_n(a, __ATOMIC_RELAXED);
  while (!__atomic_compare_exchange_n(a, &old, old >= limit ? 0u : old + 1u, true, __ATOMIC_RELAXED,
                                      __ATOMIC_RELAXED)) {
  }
  return old;
}
inline unsigned atomicDec(unsigned* a,
                          unsigned limit) { // ((old == 0 || old > limit) ? limit : old - 1)
  unsigned old = __atomic_load_n(a, __ATOMIC_RELAXED);
  while (!__atomic_compare_exchange_n(a, &old, (old == 0u || old > limit) ? limit : old - 1u, true,
                                      __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return old;
}
namespace cuda_emu::detail {
template <typename F, typename U, typename Op> inline F atomic_float_rmw(F* a, F v, Op op) {
  static_assert(sizeof(F) == sizeof(U), "size");
  U* ua = reinterpret_cast<U*>(a);
  U old_bits = __atomic_load_n(ua, __ATOMIC_RELAXED);
  for (;;) {
    F old_value;
    std::memcpy(&old_value, &old_bits, sizeof(F));
    F new_value = op(old_value, v);
    U new_bits;
    std::memcpy(&new_bits, &new_value, sizeof(F));
    if (__atomic_compare_exchange_n(ua, &old_bits, new_bits, true, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED))
      return old_value;
  }
}
} // namespace cuda_emu::detail
inline float atomicAdd(float* a, float v) {
  return cuda_emu::detail::atomic_float_rmw<float, std::uint32_t>(
      a, v, [](float x, float y) { return x + y; });
}
inline double atomicAdd(double* a, double v) {
  return cuda_emu::detail::atomic_float_rmw<double, std::uint64_t>(
      a, v, [](double x, double y) { return x + y; });
}
inline float atomicExch(float* a, float v) {
  return cuda_emu::detail::atomic_float_rmw<float, std::uint32_t>(a, v,
                                                                  [](float, float y) { return y; });
}
inline float atomicAdd_block(float* a, float v) {
  return atomicAdd(a, v);
}
inline float atomicAdd_system(float* a, float v) {
  return atomicAdd(a, v);
}
inline double atomicAdd_block(double* a, double v) {
  return atomicAdd(a, v);
}

// ---- math intrinsics (host libm; the fast-math variants are computed accurately) ---------------
inline float __expf(float x) {
  return expf(x);
}
inline float __exp10f(float x) {
  return powf(10.0f, x);
}
inline float __logf(float x) {
  return logf(x);
}
inline float __log2f(float x) {
  return log2f(x);
}
inline float __log10f(float x) {
  return log10f(x);
}
inline float __powf(float x, float y) {
  return powf(x, y);
}
inline float __sinf(float x) {
  return sinf(x);
}
inline float __cosf(float x) {
  return cosf(x);
}
inline float __tanf(float x) {
  return tanf(x);
}
inline void __sincosf(float x, float* s, float* c) {
  *s = sinf(x);
  *c = cosf(x);
}
inline float __fdividef(float a, float b) {
  return a / b;
}
inline float fdividef(float a, float b) {
  return a / b;
}
inline float rsqrtf(float x) {
  return 1.0f / sqrtf(x);
}
inline double rsqrt(double x) {
  return 1.0 / sqrt(x);
}
inline float __frsqrt_rn(float x) {
  return 1.0f / sqrtf(x);
}
inline float __frcp_rn(float x) {
  return 1.0f / x;
}
inline float __fsqrt_rn(float x) {
  return sqrtf(x);
}
inline float __fmaf_rn(float a, float b, float c) {
  return fmaf(a, b, c);
}
inline double __fma_rn(double a, double b, double c) {
  return fma(a, b, c);
}
inline float __fadd_rn(float a, float b) {
  return a + b;
}
inline float __fsub_rn(float a, float b) {
  return a - b;
}
inline float __fmul_rn(float a, float b) {
  return a * b;
}
inline float __fdiv_rn(float a, float b) {
  return a / b;
}
inline double __dadd_rn(double a, double b) {
  return a + b;
}
inline double __dmul_rn(double a, double b) {
  return a * b;
}
inline float __saturatef(float x) {
  return x >= 1.0f ? 1.0f : (x > 0.0f ? x : 0.0f);
} // NaN -> 0
inline float exp10f(float x) {
  return powf(10.0f, x);
}
inline int __float_as_int(float x) {
  int i;
  std::memcpy(&i, &x, 4);
  return i;
}
inline unsigned __float_as_uint(float x) {
  unsigned i;
  std::memcpy(&i, &x, 4);
  return i;
}
inline float __int_as_float(int i) {
  float x;
  std::memcpy(&x, &i, 4);
  return x;
}
inline float __uint_as_float(unsigned i) {
  float x;
  std::memcpy(&x, &i, 4);
  return x;
}
inline long long __double_as_longlong(double x) {
  long long i;
  std::memcpy(&i, &x, 8);
  return i;
}
inline double __longlong_as_double(long long i) {
  double x;
  std::memcpy(&x, &i, 8);
  return x;
}
inline int __float2int_rn(float x) {
  return static_cast<int>(nearbyintf(x));
}
inline int __float2int_rz(float x) {
  return static_cast<int>(truncf(x));
}
inline int __float2int_rd(float x) {
  return static_cast<int>(floorf(x));
}
inline int __float2int_ru(float x) {
  return static_cast<int>(ceilf(x));
}
inline float __int2float_rn(int i) {
  return static_cast<float>(i);
}
inline float __uint2float_rn(unsigned i) {
  return static_cast<float>(i);
}
inline int __popc(unsigned x) {
  return __builtin_popcount(x);
}
inline int __popcll(unsigned long long x) {
  return __builtin_popcountll(x);
}
inline int __clz(int x) {
  return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x));
}
inline int __clzll(long long x) {
  return x == 0 ? 64 : __builtin_clzll(static_cast<unsigned long long>(x));
}
inline int __ffs(int x) {
  return __builtin_ffs(x);
}
inline int __ffsll(long long x) {
  return __builtin_ffsll(x);
}
inline unsigned __brev(unsigned x) {
  x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
  x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
  x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
  return __builtin_bswap32(x);
}
inline int __mul24(int a, int b) {
  return (a << 8 >> 8) * (b << 8 >> 8);
}
inline unsigned __umul24(unsigned a, unsigned b) {
  return (a & 0xffffffu) * (b & 0xffffffu);
}
inline int __mulhi(int a, int b) {
  return static_cast<int>((static_cast<long long>(a) * b) >> 32);
}
inline unsigned __umulhi(unsigned a, unsigned b) {
  return static_cast<unsigned>((static_cast<unsigned long long>(a) * b) >> 32);
}
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  return static_cast<unsigned long long>((static_cast<unsigned __int128>(a) * b) >> 64);
}
// CUDA's device-side integer/float min and max overloads.
inline int min(int a, int b) {
  return a < b ? a : b;
}
inline int max(int a, int b) {
  return a > b ? a : b;
}
inline unsigned min(unsigned a, unsigned b) {
  return a < b ? a : b;
}
inline unsigned max(unsigned a, unsigned b) {
  return a > b ? a : b;
}
inline long long min(long long a, long long b) {
  return a < b ? a : b;
}
inline long long max(long long a, long long b) {
  return a > b ? a : b;
}
inline unsigned long long min(unsigned long long a, unsigned long long b) {
  return a < b ? a : b;
}
inline unsigned long long max(unsigned long long a, unsigned long long b) {
  return a > b ? a : b;
}
inline float min(float a, float b) {
  return fminf(a, b);
}
inline float max(float a, float b) {
  return fmaxf(a, b);
}
inline double min(double a, double b) {
  return fmin(a, b);
}
inline double max(double a, double b) {
  return fmax(a, b);
}
