// cuda_emu_runtime.cpp — the SIMT engine: fibers, block scheduling, barriers, warp collectives.
//
// A grid runs as follows.  Blocks are taken in a shuffled order (seeded) by the launching host
// thread and the pool's host threads.  A block's threads are fibers on ONE host thread (so
// `thread_local` static shared memory is the block's), run in rounds: in a round every runnable
// thread runs, in a shuffled order, until it blocks (barrier, warp collective) or exits; fibers
// switch directly to the next one of the round.  After a round every live thread is blocked, and
// the scheduler resolves what can complete: a warp collective whose mask's lanes have all arrived
// with that same mask, or a __syncthreads that every live thread has reached at the same source
// line.  When nothing can complete the block is deadlocked: the emulator explains why (divergent
// barrier, mask naming an exited lane, ...) and aborts, naming kernel, block and thread.
#include "cuda_emu_internal.h"
#include "cuda_emu_counters.h"
#include "cuda_emu_gmma.h"

#include <cxxabi.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <new>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define CUDA_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CUDA_EMU_ASAN 1
#endif
#endif
#if defined(CUDA_EMU_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
// ThreadSanitizer: every fiber is a TSan fiber (created once per emulated thread, switched to
// before each context switch) so that its shadow stack and happens-before clock follow the
// fibers; without this TSan sees one host thread's stack change under it and reports garbage.
#if defined(__SANITIZE_THREAD__)
#define CUDA_EMU_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CUDA_EMU_TSAN 1
#endif
#endif
#if defined(CUDA_EMU_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

// The hand-written switch on x86-64; ucontext elsewhere (or when CUDA_EMU_FORCE_UCONTEXT is
// defined, which is how the fallback is tested on x86-64).
#if defined(__x86_64__) && !defined(CUDA_EMU_FORCE_UCONTEXT)
#define CUDA_EMU_ASM_SWITCH 1
#else
#include <ucontext.h>
#endif

namespace cuda_emu {
namespace detail {
namespace {

// ================================================================================================
// Context switching
// ================================================================================================
#if defined(CUDA_EMU_ASM_SWITCH)
// Saves the callee-saved registers, MXCSR and the x87 control word on the current stack, stores
// the stack pointer in *save_sp, loads load_sp and restores the same from there.  No signal-mask
// system call (unlike swapcontext).
extern "C" void cuda_emu_swap_context(void** save_sp, void* load_sp);
extern "C" void cuda_emu_fiber_trampoline();
asm(R"(
    .pushsection .text
    .globl cuda_emu_swap_context
    .hidden cuda_emu_swap_context
    .type cuda_emu_swap_context,@function
    .p2align 4
cuda_emu_swap_context:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $16, %rsp
    stmxcsr 8(%rsp)
    fnstcw (%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr 8(%rsp)
    fldcw (%rsp)
    addq $16, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size cuda_emu_swap_context, .-cuda_emu_swap_context

    .globl cuda_emu_fiber_trampoline
    .hidden cuda_emu_fiber_trampoline
    .type cuda_emu_fiber_trampoline,@function
    .p2align 4
cuda_emu_fiber_trampoline:
    movq %r12, %rdi
    callq *%r13
    ud2
    .size cuda_emu_fiber_trampoline, .-cuda_emu_fiber_trampoline
    .popsection
)");
#endif

struct Fiber {
#if defined(CUDA_EMU_ASM_SWITCH)
  void* sp = nullptr;
#else
  ucontext_t uc;
#endif
  char* stack_lo = nullptr; // lowest usable address (above the guard page)
  std::size_t stack_size = 0;
#if defined(CUDA_EMU_TSAN)
  void* tsan = nullptr; // the TSan fiber (the host's own: __tsan_get_current_fiber)
#endif
};

using FiberEntry = void (*)(void*);

#if !defined(CUDA_EMU_ASM_SWITCH)
void ucontext_entry(unsigned hi, unsigned lo, unsigned fhi, unsigned flo) {
  void* arg = reinterpret_cast<void*>((static_cast<std::uintptr_t>(hi) << 32) | lo);
  FiberEntry fn = reinterpret_cast<FiberEntry>((static_cast<std::uintptr_t>(fhi) << 32) | flo);
  fn(arg);
  std::abort();
}
#endif

void fiber_init(Fiber& f, FiberEntry entry, void* arg) {
#if defined(CUDA_EMU_TSAN)
  if (f.tsan == nullptr) // reused by every block this emulated thread runs
    f.tsan = __tsan_create_fiber(0);
#endif
#if defined(CUDA_EMU_ASAN)
  // Frames that were live when the previous block's fiber on this stack died keep their poisoned
  // redzones; they sit at the top of the stack, where the new fiber's first frame goes: unpoison
  // them before writing it.
  std::size_t n = std::min<std::size_t>(f.stack_size, 16 * 1024);
  __asan_unpoison_memory_region(f.stack_lo + f.stack_size - n, n);
#endif
#if defined(CUDA_EMU_ASM_SWITCH)
  auto top = reinterpret_cast<std::uintptr_t>(f.stack_lo + f.stack_size) & ~std::uintptr_t{15};
  auto* sp = reinterpret_cast<std::uint64_t*>(top - 88);
  sp[0] = 0x037F;                                                      // x87 control word
  sp[1] = 0x1F80;                                                      // MXCSR
  sp[2] = 0;                                                           // r15
  sp[3] = 0;                                                           // r14
  sp[4] = reinterpret_cast<std::uint64_t>(entry);                      // r13
  sp[5] = reinterpret_cast<std::uint64_t>(arg);                        // r12
  sp[6] = 0;                                                           // rbx
  sp[7] = 0;                                                           // rbp
  sp[8] = reinterpret_cast<std::uint64_t>(&cuda_emu_fiber_trampoline); // return address
  f.sp = sp;
#else
  getcontext(&f.uc);
  f.uc.uc_stack.ss_sp = f.stack_lo;
  f.uc.uc_stack.ss_size = f.stack_size;
  f.uc.uc_link = nullptr;
  auto a = reinterpret_cast<std::uintptr_t>(arg);
  auto e = reinterpret_cast<std::uintptr_t>(entry);
  makecontext(&f.uc, reinterpret_cast<void (*)()>(&ucontext_entry), 4, unsigned(a >> 32),
              unsigned(a), unsigned(e >> 32), unsigned(e));
#endif
}

inline void fiber_switch(Fiber& from, Fiber& to, bool from_dies) {
#if defined(CUDA_EMU_ASAN)
  void* fake_stack = nullptr;
  __sanitizer_start_switch_fiber(from_dies ? nullptr : &fake_stack, to.stack_lo, to.stack_size);
#else
  (void)from_dies;
#endif
#if defined(CUDA_EMU_TSAN)
  // flags 0: the switch synchronises, as it does: one host thread runs the block's fibers in turn.
  __tsan_switch_to_fiber(to.tsan, 0);
#endif
#if defined(CUDA_EMU_ASM_SWITCH)
  cuda_emu_swap_context(&from.sp, to.sp);
#else
  swapcontext(&from.uc, &to.uc);
#endif
#if defined(CUDA_EMU_ASAN)
  __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
#endif
}

// ================================================================================================
// Random numbers (splitmix64: deterministic from the seed, cheap)
// ================================================================================================
inline std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
struct Rng {
  std::uint64_t state;
  std::uint64_t next() { return state = splitmix64(state); }
  std::uint32_t below(std::uint32_t n) {
    return static_cast<std::uint32_t>((next() >> 32) * n >> 32);
  }
  template <typename T> void shuffle(std::vector<T>& v) {
    for (std::size_t i = v.size(); i > 1; --i)
      std::swap(v[i - 1], v[below(static_cast<std::uint32_t>(i))]);
  }
};

std::uint64_t read_env_u64(const char* name, bool* found) {
  const char* s = std::getenv(name);
  *found = (s != nullptr && *s != '\0');
  return *found ? std::strtoull(s, nullptr, 0) : 0;
}

struct Globals {
  std::uint64_t seed;
  std::size_t stack_size;
  std::atomic<std::uint64_t> launch_counter{0};
  std::atomic<std::uint64_t> launches{0}, blocks{0}, threads{0}, crossings{0}, switches{0};
  Globals() {
    bool found = false;
    seed = read_env_u64("CUDA_EMU_SEED", &found);
    if (!found)
      seed = (static_cast<std::uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
    std::uint64_t kb = read_env_u64("CUDA_EMU_STACK_KB", &found);
    stack_size = (found && kb >= 16 ? kb : 256) * 1024;
  }
};
Globals& globals() {
  static Globals* g = new Globals(); // never destroyed: pool threads may outlive static destructors
  return *g;
}

// The launch counters (counters_enable / CUDA_EMU_STATS): on/off, and the records not yet taken.
struct CounterLog {
  std::atomic<bool> on{false};
  std::atomic<bool> dry_run{false}; // set_dry_run: launches recorded, no block run
  std::mutex m;
  std::vector<LaunchCounters> records;
  std::string path; // CUDA_EMU_STATS: written at exit
  // CUDA_EMU_STATS_SITES: the memory counts per instruction site, all launches, written at exit
  bool sites_on = false;
  std::string sites_path;
  SiteTable sites;
};
CounterLog& counter_log() {
  static CounterLog* c = new CounterLog(); // never destroyed (written from an atexit handler)
  return *c;
}

// ================================================================================================
// Emulated threads, warps, blocks
// ================================================================================================
// mbarrier: waits in try_wait for a phase; named: waits at bar.sync; warpgroup: in a warpgroup
// collective (wgmma.mma_async, setmaxnreg); released: its wait completed during the round (a
// named barrier's last arrival), it runs again in the next one.
enum class Wait : std::uint8_t { none, barrier, warp, done, mbarrier, named, warpgroup, released };
enum class Op : std::uint8_t {
  syncwarp,
  shfl,
  ballot,
  reduce,
  mma,
  ldmatrix,
  wgmma_fence,
  wgmma_commit,
  wgmma_wait
};
enum class GroupOp : std::uint8_t { wgmma, setmaxnreg };

struct AsyncCopy {
  void* dst;
  const void* src;
  int bytes;
  int src_bytes;
};

// ---- Hopper state (README "Hopper") -------------------------------------------------------------
// One wgmma.mma_async as one lane issued it (the warpgroup collective checks they agree).
struct WgmmaArgs {
  float* d = nullptr;
  int n = 0;
  MmaType type = MmaType::bf16;
  bool a_in_regs = false;
  std::uint32_t a[4] = {0, 0, 0, 0};
  std::uint64_t desc_a = 0, desc_b = 0;
  int scale_d = 0, scale_a = 1, scale_b = 1, trans_a = 0, trans_b = 0;
  unsigned regs = 0; // setmaxnreg
  bool inc = false;
};
// A warp's part of one wgmma: its 16 rows of D, computed when a wait_group retires its group.
struct WgmmaOp {
  WgmmaArgs args;         // lane 0's (the uniform fields)
  float* d[32];           // each lane's accumulator registers
  std::uint32_t a[32][4]; // each lane's A registers (A from registers), captured at issue
};
struct WarpWgmma {
  bool fenced = false;                      // a wgmma.fence since the last wait_group
  std::vector<WgmmaOp> uncommitted;         // issued since the last commit_group
  std::vector<std::vector<WgmmaOp>> groups; // committed, oldest first
};
// An mbarrier object (PTX ISA "mbarrier"): phase number (its parity is the phase bit), expected
// and pending arrivals, tx-count.
struct Mbarrier {
  std::uint32_t expected = 0, pending = 0;
  std::int64_t tx = 0;
  std::uint64_t phase = 0;
  bool valid = false;
  std::uint64_t word = 0; // what the emulator last wrote into the object's 8 bytes
};
struct NamedBarrier {
  unsigned expected = 0, arrived = 0;
};
// One cp.async.bulk.tensor in flight: performed when no thread of the block can run otherwise.
struct TmaCopy {
  unsigned char map[128]; // the tensor map (copied at issue: it may be a kernel parameter)
  char* dst;
  std::uint32_t dst_shared;
  int rank;
  int coords[5];
  std::uint64_t* bar;
  unsigned issuer; // linear thread index, for messages
};

struct EmuThread {
  Fiber fiber;
  uint3 tid{0, 0, 0};
  unsigned linear = 0, warp = 0, lane = 0;
  Wait wait = Wait::none;
  // __syncthreads*
  const char* bar_file = nullptr;
  int bar_line = 0;
  int bar_kind = -1; // -1 plain, 0 count, 1 and, 2 or
  int bar_pred = 0;
  int bar_result = 0;
  // warp collective
  Op op = Op::syncwarp;
  unsigned mask = 0;
  const char* op_name = "";
  std::uint64_t in = 0, out = 0;
  int mode = 0;
  unsigned b = 0;
  int width = 32;
  void* p_out = nullptr;
  const void* p_a = nullptr;
  const void* p_b = nullptr;
  const void* p_c = nullptr;
  std::uintptr_t site = 0; // ldmatrix: the instruction (for CUDA_EMU_STATS_SITES)
  // mbarrier try_wait: the barrier, and the phase (number) it waits to complete
  std::uintptr_t mbar = 0;
  std::uint64_t mbar_phase = 0;
  unsigned mbar_parity = 0;
  // named barrier (bar.sync)
  unsigned named_id = 0;
  // warpgroup collective (wgmma.mma_async / setmaxnreg): its arguments
  GroupOp group_op = GroupOp::wgmma;
  WgmmaArgs wg;
  // cp.async: issued copies (oldest first) and the end index of each committed group
  std::vector<AsyncCopy> copies;
  std::vector<std::size_t> group_ends;
};

struct Launch {
  const void* kernel;
  KernelThunk thunk;
  void* args;
  dim3 grid, block;
  std::size_t dyn_smem;
  unsigned nthreads;
  std::uint64_t nblocks;
  std::uint64_t seed;
  std::vector<std::uint32_t> order; // shuffled block order (when the grid is not huge)
  std::uint64_t rotation = 0;       // for huge grids: a rotated order instead
  std::atomic<std::uint64_t> next{0};
  // Counters (when counting is on): the device allocations at launch (sorted by base: what is
  // global memory), and the workers' merged counts.
  bool counting = false;
  std::vector<std::pair<std::uintptr_t, std::size_t>> allocs;
  std::mutex total_mutex;
  LaunchCounters total;
};

struct Worker {
  Fiber host;
  std::vector<EmuThread> threads;
  EmuThread* current = nullptr;
  std::vector<unsigned> run_list;
  std::size_t run_pos = 0;
  // block state
  const Launch* launch = nullptr;
  uint3 block{0, 0, 0};
  unsigned nthreads = 0, nwarps = 0;
  unsigned live = 0, at_barrier = 0;
  unsigned warp_arrived[32] = {};
  unsigned warp_exited[32] = {};
  unsigned warp_exists[32] = {};
  Rng rng{0};
  // dynamic shared memory
  char* dyn = nullptr;
  std::size_t dyn_size = 0;
  std::size_t dyn_alloc = 0;
  std::uint64_t switches = 0, crossings = 0;
  // counters of the current launch (this host thread's blocks), and each warp's recorded accesses
  bool counting = false;
  LaunchCounters cnt;
  std::vector<Access> access_log[32];
  SiteTable sites;
  bool count_sites = false;
  std::uintptr_t global_lo = 0, global_hi = 0; // the last device allocation an access fell in
  // Hopper: mbarriers (by address), named barriers, warpgroup-collective arrivals per warp, each
  // warp's wgmma groups, bulk tensor copies in flight, threads released during the round
  std::unordered_map<std::uintptr_t, Mbarrier> mbarriers;
  NamedBarrier named[16];
  unsigned wg_arrived[32] = {};
  WarpWgmma wgmma[32];
  std::vector<TmaCopy> tma;
  // the tensor map of the block's first bulk tensor copy (counters: tma_first_map_bytes)
  unsigned char first_map[128] = {};
  bool have_first_map = false;
  unsigned released = 0, mbar_waiting = 0, named_waiting = 0, wg_waiting = 0;

  ~Worker() {
    for (auto& t : threads) {
#if defined(CUDA_EMU_TSAN)
      if (t.fiber.tsan)
        __tsan_destroy_fiber(t.fiber.tsan);
#endif
      if (t.fiber.stack_lo)
        munmap(t.fiber.stack_lo - 4096, t.fiber.stack_size + 4096);
    }
    std::free(dyn);
  }
};

thread_local Worker* tls_worker CUDA_EMU_TLS = nullptr;

Worker& worker() {
  if (tls_worker == nullptr) {
    static thread_local Worker w;
#if defined(CUDA_EMU_TSAN)
    w.host.tsan = __tsan_get_current_fiber();
#endif
    // The host thread's own stack: AddressSanitizer must be told its bounds when a fiber switches
    // back to it.
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
      void* lo = nullptr;
      std::size_t size = 0;
      if (pthread_attr_getstack(&attr, &lo, &size) == 0) {
        w.host.stack_lo = static_cast<char*>(lo);
        w.host.stack_size = size;
      }
      pthread_attr_destroy(&attr);
    }
    tls_worker = &w;
  }
  return *tls_worker;
}

constexpr std::size_t kCanary = 64;
constexpr unsigned char kCanaryByte = 0xCD;
constexpr unsigned char kPoisonByte = 0xFF; // NaN as f32, f16 and bf16; -1 as an integer

// ---- failure reports ---------------------------------------------------------------------------
[[noreturn]] void vreport(const EmuThread* t, const char* fmt, va_list ap) {
  // One report per process: a block failing on another host thread at the same time waits here
  // (forever: this thread aborts).
  static std::mutex report_mutex;
  report_mutex.lock();
  char msg[4096];
  std::vsnprintf(msg, sizeof msg, fmt, ap);
  Worker* w = tls_worker;
  std::fflush(stdout);
  if (w != nullptr && w->launch != nullptr) {
    const Launch& L = *w->launch;
    std::fprintf(stderr, "cuda_emu: kernel %s, block (%u,%u,%u) of grid (%u,%u,%u)",
                 function_name(L.kernel), w->block.x, w->block.y, w->block.z, L.grid.x, L.grid.y,
                 L.grid.z);
    if (t != nullptr)
      std::fprintf(stderr, ", thread (%u,%u,%u) of block (%u,%u,%u) [warp %u lane %u]", t->tid.x,
                   t->tid.y, t->tid.z, L.block.x, L.block.y, L.block.z, t->warp, t->lane);
    std::fprintf(stderr, ":\n  %s\n", msg);
  } else {
    std::fprintf(stderr, "cuda_emu: %s\n", msg);
  }
  std::fprintf(stderr,
               "cuda_emu: seed %llu (CUDA_EMU_SEED=%llu reproduces the block and thread order)\n",
               static_cast<unsigned long long>(globals().seed),
               static_cast<unsigned long long>(globals().seed));
  std::fflush(stderr);
  std::abort();
}
[[noreturn]] __attribute__((format(printf, 2, 3))) void fail_thread(const EmuThread* t,
                                                                    const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vreport(t, fmt, ap);
}

Worker& in_kernel(const char* what) {
  Worker* w = tls_worker;
  if (w == nullptr || w->current == nullptr)
    fail("%s called outside a kernel (no emulated thread is running on this host thread)", what);
  return *w;
}

// ---- the per-thread fiber ----------------------------------------------------------------------
void suspend(Worker& w, EmuThread* self, bool dies) {
  Fiber* to = &w.host;
  if (w.run_pos < w.run_list.size()) {
    EmuThread* next = &w.threads[w.run_list[w.run_pos++]];
    w.current = next;
    threadIdx = next->tid;
    to = &next->fiber;
  } else {
    w.current = nullptr;
  }
  ++w.switches;
  fiber_switch(self->fiber, *to, dies);
}

void fiber_main(void* arg) {
#if defined(CUDA_EMU_ASAN)
  __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
  auto* t = static_cast<EmuThread*>(arg);
  Worker& w = *tls_worker;
  w.launch->thunk(w.launch->kernel, w.launch->args);
  const WarpWgmma& wg = w.wgmma[t->warp];
  if (!wg.uncommitted.empty() || !wg.groups.empty())
    fail_thread(t,
                "thread exits with wgmma operations in flight (%zu uncommitted, %zu committed "
                "groups not retired): a wgmma.wait_group is missing",
                wg.uncommitted.size(), wg.groups.size());
  t->wait = Wait::done;
  t->copies.clear(); // copies never waited for: the thread is gone, nobody may read them
  t->group_ends.clear();
  --w.live;
  w.warp_exited[t->warp] |= 1u << t->lane;
  suspend(w, t, /*dies=*/true);
  std::abort(); // never resumed
}

void ensure_threads(Worker& w, unsigned n) {
  if (w.threads.size() >= n)
    return;
  std::size_t stack = globals().stack_size;
  std::vector<EmuThread> grown(n);
  for (std::size_t i = 0; i < w.threads.size(); ++i)
    grown[i].fiber = w.threads[i].fiber;
  for (std::size_t i = w.threads.size(); i < n; ++i) {
    void* p = mmap(nullptr, stack + 4096, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (p == MAP_FAILED)
      fail("cannot map a %zu KiB fiber stack", stack / 1024);
    mprotect(p, 4096, PROT_NONE); // guard page: a stack overflow faults instead of corrupting
    grown[i].fiber.stack_lo = static_cast<char*>(p) + 4096;
    grown[i].fiber.stack_size = stack;
  }
  w.threads.swap(grown);
  for (auto& t : grown) {
    t.fiber.stack_lo = nullptr; // now owned by w.threads
#if defined(CUDA_EMU_TSAN)
    t.fiber.tsan = nullptr;
#endif
  }
}

// ---- dynamic shared memory ----------------------------------------------------------------------
void prepare_dynamic_smem(Worker& w, std::size_t size) {
#if defined(CUDA_EMU_ASAN)
  const std::size_t alloc = size; // exact size: AddressSanitizer reports any access past it
#else
  const std::size_t alloc = size + kCanary; // canary checked after the block
#endif
  if (w.dyn == nullptr || w.dyn_alloc != alloc) {
    std::free(w.dyn);
    void* p = nullptr;
    // 1024-byte aligned: the repeat of the 128-byte swizzle, so host and shared-window address
    // bits agree.
    if (posix_memalign(&p, 1024, alloc == 0 ? 1 : alloc) != 0)
      fail("out of host memory for shared memory");
    w.dyn = static_cast<char*>(p);
    w.dyn_alloc = alloc;
  }
  w.dyn_size = size;
  std::memset(w.dyn, kPoisonByte, size);
#if !defined(CUDA_EMU_ASAN)
  std::memset(w.dyn + size, kCanaryByte, kCanary);
#endif
}

void check_dynamic_smem(Worker& w) {
#if !defined(CUDA_EMU_ASAN)
  for (std::size_t i = 0; i < kCanary; ++i)
    if (static_cast<unsigned char>(w.dyn[w.dyn_size + i]) != kCanaryByte)
      fail_thread(
          nullptr,
          "the block wrote past the end of its dynamic shared memory (%zu bytes requested at "
          "launch; byte %zu beyond the end was overwritten)",
          w.dyn_size, i);
#else
  (void)w;
#endif
}

// ---- counters ----------------------------------------------------------------------------------
// A warp's recorded accesses become requests at each of its barriers and collectives (every lane
// has then finished the segment before it) and at the end of the block.
void flush_warp(Worker& w, unsigned warp) {
  if (w.counting)
    count_warp_accesses(w.access_log[warp], w.cnt, w.count_sites ? &w.sites : nullptr);
}
void flush_block(Worker& w) {
  for (unsigned wi = 0; wi < w.nwarps; ++wi)
    flush_warp(w, wi);
}
bool in_device_memory(Worker& w, std::uintptr_t addr) {
  if (addr - w.global_lo < w.global_hi - w.global_lo)
    return true;
  const auto& a = w.launch->allocs;
  auto it = std::upper_bound(a.begin(), a.end(), addr,
                             [](std::uintptr_t x, const auto& e) { return x < e.first; });
  if (it == a.begin())
    return false;
  --it;
  if (addr - it->first >= it->second)
    return false;
  w.global_lo = it->first;
  w.global_hi = it->first + it->second;
  return true;
}

// ---- warp collectives: resolution --------------------------------------------------------------
std::uint32_t lane_bit(unsigned lane) {
  return 1u << lane;
}

void resolve_shfl(Worker& w, unsigned base, unsigned mask) {
  EmuThread* lanes = &w.threads[base];
  for (unsigned m = mask; m; m &= m - 1) {
    unsigned l = static_cast<unsigned>(__builtin_ctz(m));
    EmuThread& t = lanes[l];
    int width = t.width;
    if (width < 1 || width > 32 || (width & (width - 1)) != 0)
      fail_thread(&t, "%s: width %d is not a power of two in [1, 32]", t.op_name, width);
    // PTX shfl.sync: segment mask and clamp from width, source lane per mode.
    int lane = static_cast<int>(l);
    int seg_lo = lane & ~(width - 1);
    int seg_hi = seg_lo + width - 1;
    int bval = static_cast<int>(t.b & 31u);
    int j = lane;
    bool ok = true;
    switch (static_cast<Shfl>(t.mode)) {
    case Shfl::idx:
      j = seg_lo | (bval & (width - 1));
      ok = j <= seg_hi;
      break;
    case Shfl::up:
      j = lane - bval;
      ok = j >= seg_lo;
      break;
    case Shfl::down:
      j = lane + bval;
      ok = j <= seg_hi;
      break;
    case Shfl::bfly:
      j = lane ^ bval;
      ok = j <= seg_hi;
      break;
    }
    if (!ok)
      j = lane;
    if (!(mask & lane_bit(static_cast<unsigned>(j))))
      fail_thread(
          &t, "%s with mask 0x%08x reads lane %d, which is not in the mask (undefined on a GPU)",
          t.op_name, mask, j);
    t.out = lanes[j].in;
  }
}

// f16 -> f32 for every bit pattern, computed once with the toolkit's conversion.
const float* f16_table() {
  static const float* table = [] {
    auto* t = new float[65536];
    for (std::uint32_t i = 0; i < 65536; ++i) {
      __half_raw raw;
      raw.x = static_cast<unsigned short>(i);
      t[i] = __half2float(__half(raw));
    }
    return t;
  }();
  return table;
}

inline float half_bits_to_float(std::uint16_t bits, MmaType type, const float* f16) {
  if (type == MmaType::bf16) {
    std::uint32_t u = static_cast<std::uint32_t>(bits) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  return f16[bits];
}

float tf32_bits_to_float(std::uint32_t bits) {
  bits &= 0xFFFFE000u; // the tensor core reads only the tf32 bits (sign, 8 exponent, 10 mantissa)
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16}.{bf16,f16}.f32 and m16n8k8 ... .tf32 — the
// fragment layouts of the PTX ISA ("Matrix fragments for mma.m16n8k16 / mma.m16n8k8"):
//   groupID = lane >> 2, tig = lane % 4
//   16-bit A (16x16): a0,a1: (g, 2t+{0,1})  a2,a3: (g+8, 2t+{0,1})  a4,a5: (g, 2t+8+{0,1})
//                     a6,a7: (g+8, 2t+8+{0,1}); register i holds a_{2i} in its low half.
//   16-bit B (16x8):  b0,b1: (k=2t+{0,1}, n=g)  b2,b3: (k=2t+8+{0,1}, n=g)
//   tf32 A (16x8):    a0: (g, t)  a1: (g+8, t)  a2: (g, t+4)  a3: (g+8, t+4)
//   tf32 B (8x8):     b0: (k=t, n=g)  b1: (k=t+4, n=g)
//   C, D (16x8 f32):  c0,c1: (g, 2t+{0,1})  c2,c3: (g+8, 2t+{0,1})
// Not instrumented: it only reads the lanes' fragment registers and does arithmetic, and it is the
// hottest emulator function in tensor-core kernels.
__attribute__((no_sanitize("address", "undefined"))) void resolve_mma(Worker& w, unsigned base) {
  EmuThread* lanes = &w.threads[base];
  const auto type = static_cast<MmaType>(lanes[0].mode);
  for (unsigned l = 1; l < 32; ++l)
    if (lanes[l].mode != lanes[0].mode)
      fail_thread(&lanes[l],
                  "mma.sync: lanes of one warp issue different mma shapes/types together");
  float A[16][16];
  float B[16][8];
  int K = 16;
  if (type == MmaType::tf32) {
    K = 8;
    for (unsigned l = 0; l < 32; ++l) {
      const auto* a = static_cast<const std::uint32_t*>(lanes[l].p_a);
      const auto* b = static_cast<const std::uint32_t*>(lanes[l].p_b);
      unsigned g = l >> 2, t = l & 3;
      A[g][t] = tf32_bits_to_float(a[0]);
      A[g + 8][t] = tf32_bits_to_float(a[1]);
      A[g][t + 4] = tf32_bits_to_float(a[2]);
      A[g + 8][t + 4] = tf32_bits_to_float(a[3]);
      B[t][g] = tf32_bits_to_float(b[0]);
      B[t + 4][g] = tf32_bits_to_float(b[1]);
    }
  } else {
    const float* f16 = type == MmaType::f16 ? f16_table() : nullptr;
    for (unsigned l = 0; l < 32; ++l) {
      const auto* a = static_cast<const std::uint32_t*>(lanes[l].p_a);
      const auto* b = static_cast<const std::uint32_t*>(lanes[l].p_b);
      unsigned g = l >> 2, t = l & 3;
      const unsigned rows[4] = {g, g + 8, g, g + 8};
      const unsigned cols[4] = {2 * t, 2 * t, 2 * t + 8, 2 * t + 8};
      for (int r = 0; r < 4; ++r) {
        A[rows[r]][cols[r]] =
            half_bits_to_float(static_cast<std::uint16_t>(a[r] & 0xFFFFu), type, f16);
        A[rows[r]][cols[r] + 1] =
            half_bits_to_float(static_cast<std::uint16_t>(a[r] >> 16), type, f16);
      }
      for (int r = 0; r < 2; ++r) {
        unsigned k = 2 * t + 8 * static_cast<unsigned>(r);
        B[k][g] = half_bits_to_float(static_cast<std::uint16_t>(b[r] & 0xFFFFu), type, f16);
        B[k + 1][g] = half_bits_to_float(static_cast<std::uint16_t>(b[r] >> 16), type, f16);
      }
    }
  }
  // Products of 16-bit (or tf32) inputs are exact in double; each sum is rounded once at the end.
  double Bd[16][8];
  for (int k = 0; k < K; ++k)
    for (int c = 0; c < 8; ++c)
      Bd[k][c] = B[k][c];
  double acc[16][8];
  for (int r = 0; r < 16; ++r) {
    double row[8] = {0, 0, 0, 0, 0, 0, 0, 0}; // kept in registers
    for (int k = 0; k < K; ++k) {
      const double a = A[r][k];
      for (int c = 0; c < 8; ++c)
        row[c] += a * Bd[k][c];
    }
    for (int c = 0; c < 8; ++c)
      acc[r][c] = row[c];
  }
  // All inputs are gathered; now each lane's D (which may alias its C) can be written.
  for (unsigned l = 0; l < 32; ++l) {
    const auto* c = static_cast<const float*>(lanes[l].p_c);
    auto* d = static_cast<float*>(lanes[l].p_out);
    const unsigned g = l >> 2, t = l & 3;
    float out[4];
    for (int i = 0; i < 4; ++i) {
      const unsigned row = g + (i >= 2 ? 8u : 0u);
      const unsigned col = 2 * t + static_cast<unsigned>(i & 1);
      out[i] = static_cast<float>(acc[row][col] + static_cast<double>(c[i]));
    }
    for (int i = 0; i < 4; ++i)
      d[i] = out[i];
  }
}

// ldmatrix.sync.aligned.m8n8.x{1,2,4}{,.trans}.shared.b16: lanes 8i..8i+7 give the row addresses
// of matrix i; in the result, lane l's register i holds row l/4, columns 2(l%4), 2(l%4)+1 of
// matrix i (with .trans: column l/4, rows 2(l%4), 2(l%4)+1); the lower column/row in the low half.
void resolve_ldmatrix(Worker& w, unsigned base) {
  EmuThread* lanes = &w.threads[base];
  const int count = lanes[0].mode;
  const bool trans = lanes[0].b != 0;
  for (unsigned l = 1; l < 32; ++l)
    if (lanes[l].mode != count || (lanes[l].b != 0) != trans)
      fail_thread(&lanes[l],
                  "ldmatrix: lanes of one warp issue different ldmatrix variants together");
  if (w.counting) { // matrix i is one phase: lanes 8i..8i+7, a 16-byte row each
    LaneAccess rows[32];
    for (int i = 0; i < 8 * count; ++i)
      rows[i] =
          LaneAccess{static_cast<unsigned>(i), reinterpret_cast<std::uintptr_t>(lanes[i].p_a), 16};
    std::uint64_t wf = 0, ideal = 0;
    shared_request(rows, static_cast<std::size_t>(8 * count), &wf, &ideal);
    w.cnt.ldmatrix_requests += 1;
    w.cnt.ldmatrix_wavefronts += wf;
    w.cnt.ldmatrix_ideal += ideal;
    w.cnt.smem_load_requests += 1;
    w.cnt.smem_load_wavefronts += wf;
    w.cnt.smem_load_ideal += ideal;
    if (w.count_sites) {
      SiteCounts& sc = w.sites[lanes[0].site];
      sc.requests += 1;
      sc.wavefronts += wf;
      sc.ideal += ideal;
      sc.shared = true;
    }
  }
  std::uint16_t m[4][8][8];
  for (int i = 0; i < count; ++i)
    for (int r = 0; r < 8; ++r) {
      const EmuThread& src = lanes[8 * i + r];
      auto addr = reinterpret_cast<std::uintptr_t>(src.p_a);
      if (addr % 16 != 0)
        fail_thread(&src, "ldmatrix: row address %p is not 16-byte aligned", src.p_a);
      std::memcpy(m[i][r], src.p_a, 16);
    }
  for (unsigned l = 0; l < 32; ++l) {
    auto* r = static_cast<std::uint32_t*>(lanes[l].p_out);
    unsigned row = l >> 2, col = 2 * (l & 3);
    for (int i = 0; i < count; ++i) {
      std::uint16_t lo, hi;
      if (!trans) {
        lo = m[i][row][col];
        hi = m[i][row][col + 1];
      } else {
        lo = m[i][col][row];
        hi = m[i][col + 1][row];
      }
      r[i] = static_cast<std::uint32_t>(lo) | (static_cast<std::uint32_t>(hi) << 16);
    }
  }
}

// ================================================================================================
// Hopper: mbarriers, named barriers, bulk tensor copies (TMA), wgmma (README "Hopper")
// ================================================================================================
// The shared-window address of a byte of dynamic shared memory, or ~0u when `p` is not in it.
std::uint32_t shared_window(const Worker& w, const void* p) {
  const auto off = static_cast<std::size_t>(static_cast<const char*>(p) - w.dyn);
  if (p < w.dyn || off > w.dyn_size)
    return ~0u;
  return kSharedWindowBase + static_cast<std::uint32_t>(off);
}

// ---- mbarriers ---------------------------------------------------------------------------------
constexpr std::int64_t kMaxTx = (1 << 20) - 1; // the PTX ISA's tx-count range is +-(2^20 - 1)

std::uint64_t mbar_word(const Mbarrier& m) {
  return 0x4D42000000000000ull ^ (m.phase << 44) ^ (std::uint64_t{m.pending} << 22) ^
         (static_cast<std::uint64_t>(m.tx) & 0x3FFFFFull);
}

std::string describe_mbar(const Worker& w, std::uintptr_t a) {
  char buf[320];
  const std::uint32_t s = shared_window(w, reinterpret_cast<const void*>(a));
  char where[48];
  if (s != ~0u)
    std::snprintf(where, sizeof where, "shared 0x%x", s);
  else
    std::snprintf(where, sizeof where, "static __shared__");
  auto it = w.mbarriers.find(a);
  if (it == w.mbarriers.end() || !it->second.valid) {
    std::snprintf(buf, sizeof buf, "mbarrier %p (%s, not initialised)", reinterpret_cast<void*>(a),
                  where);
  } else {
    const Mbarrier& m = it->second;
    std::snprintf(buf, sizeof buf,
                  "mbarrier %p (%s): current phase %llu (parity %u), %u of %u arrivals pending, "
                  "tx-count %lld bytes",
                  reinterpret_cast<void*>(a), where, static_cast<unsigned long long>(m.phase),
                  static_cast<unsigned>(m.phase & 1), m.pending, m.expected,
                  static_cast<long long>(m.tx));
  }
  return buf;
}

Mbarrier& mbar_lookup(Worker& w, const EmuThread* t, std::uint64_t* bar, const char* what) {
  const auto a = reinterpret_cast<std::uintptr_t>(bar);
  if (a % 8 != 0)
    fail_thread(t, "%s: mbarrier address %p is not 8-byte aligned", what, static_cast<void*>(bar));
  auto it = w.mbarriers.find(a);
  if (it == w.mbarriers.end())
    fail_thread(t, "%s on %p: not an mbarrier (no mbarrier.init on this address in this block)",
                what, static_cast<void*>(bar));
  Mbarrier& m = it->second;
  if (!m.valid)
    fail_thread(t, "%s on mbarrier %p after mbarrier.inval (initialise it again first)", what,
                static_cast<void*>(bar));
  std::uint64_t cur;
  std::memcpy(&cur, bar, 8);
  if (cur != m.word)
    fail_thread(t,
                "%s on mbarrier %p: its 8 bytes were overwritten since the last mbarrier operation "
                "(now 0x%016llx): a plain store into the barrier object",
                what, static_cast<void*>(bar), static_cast<unsigned long long>(cur));
  return m;
}

void mbar_store(Mbarrier& m, std::uint64_t* bar) {
  m.word = mbar_word(m);
  std::memcpy(bar, &m.word, 8);
}

// A phase completes when its pending arrivals and its tx-count are both zero.
void mbar_settle(Worker& w, const EmuThread* t, Mbarrier& m, std::uint64_t* bar, const char* what) {
  if (m.tx > kMaxTx || m.tx < -kMaxTx)
    fail_thread(t, "%s: the tx-count of %s leaves the PTX ISA's range +-(2^20-1)", what,
                describe_mbar(w, reinterpret_cast<std::uintptr_t>(bar)).c_str());
  if (m.pending == 0 && m.tx == 0) {
    ++m.phase;
    m.pending = m.expected;
  }
  mbar_store(m, bar);
}

// ---- bulk tensor copies ------------------------------------------------------------------------
void complete_tma(Worker& w, const TmaCopy& c) {
  gmma::TensorMap m;
  std::memcpy(&m, c.map, sizeof m);
  const std::uint32_t span = m.swizzle == 0 ? 0u : 16u << m.swizzle; // 1: 32, 2: 64, 3: 128
  const std::size_t e = m.elem_bytes;
  std::size_t count = 1;
  for (int d = 0; d < c.rank; ++d)
    count *= m.box[d];
  for (std::size_t linear = 0; linear < count; ++linear) {
    // Box element `linear` (dimension 0 fastest) lands at byte linear*e of the box in shared
    // memory, swizzled; coordinates outside the tensor read as zero.
    std::size_t rest = linear;
    bool inside = true;
    std::uint64_t src = m.base;
    for (int d = 0; d < c.rank; ++d) {
      const std::int64_t g =
          static_cast<std::int64_t>(c.coords[d]) + static_cast<std::int64_t>(rest % m.box[d]);
      rest /= m.box[d];
      if (g < 0 || g > static_cast<std::int64_t>(m.dim_minus_1[d]))
        inside = false;
      else
        src += static_cast<std::uint64_t>(g) * m.stride[d];
    }
    const std::uint32_t to =
        gmma::swizzle(c.dst_shared + static_cast<std::uint32_t>(linear * e), span);
    char* dst = w.dyn + (to - kSharedWindowBase);
    if (inside)
      std::memcpy(dst, reinterpret_cast<const void*>(static_cast<std::uintptr_t>(src)), e);
    else
      std::memset(dst, 0, e);
  }
  auto it = w.mbarriers.find(reinterpret_cast<std::uintptr_t>(c.bar));
  if (it == w.mbarriers.end() || !it->second.valid)
    fail_thread(&w.threads[c.issuer],
                "the mbarrier %p of a bulk tensor copy issued by this thread was invalidated "
                "before the copy completed",
                static_cast<void*>(c.bar));
  it->second.tx -= static_cast<std::int64_t>(count * e);
  mbar_settle(w, &w.threads[c.issuer], it->second, c.bar, "cp.async.bulk.tensor complete_tx");
}

// ---- wgmma -------------------------------------------------------------------------------------
const char* wgmma_name(const WgmmaArgs& a) {
  return a.type == MmaType::f16 ? "wgmma.mma_async.f32.f16.f16" : "wgmma.mma_async.f32.bf16.bf16";
}

// Every byte an operand (rows x 16 k of 16-bit elements) reads must be dynamic shared memory.
void check_operand(const Worker& w, const EmuThread* t, std::uint64_t desc, int trans, int rows,
                   const char* which, const WgmmaArgs& a) {
  const gmma::Descriptor d = gmma::decode_descriptor(desc);
  if (d.base_offset != 0)
    fail_thread(t,
                "%s: descriptor %s 0x%016llx has base offset %u: not emulated (use 0 with the "
                "swizzle pattern's repeat aligned, as CUTLASS does)",
                wgmma_name(a), which, static_cast<unsigned long long>(desc), d.base_offset);
  for (int mn = 0; mn < rows; ++mn)
    for (int k = 0; k < 16; ++k) {
      const std::uint32_t s = gmma::operand_address(d, trans, mn, k);
      if (s < kSharedWindowBase || s - kSharedWindowBase + 2 > w.dyn_size)
        fail_thread(t,
                    "%s: descriptor %s 0x%016llx reads element (%d, k %d) at shared address 0x%x, "
                    "outside the block's dynamic shared memory [0x%x, 0x%zx)",
                    wgmma_name(a), which, static_cast<unsigned long long>(desc), mn, k, s,
                    kSharedWindowBase, kSharedWindowBase + w.dyn_size);
    }
}

float smem_half(const Worker& w, std::uint32_t s, MmaType type, const float* f16) {
  std::uint16_t bits;
  std::memcpy(&bits, w.dyn + (s - kSharedWindowBase), 2);
  return half_bits_to_float(bits, type, f16);
}

// Retires one warp's part of a wgmma: its 16 rows of D = A B (+ D), read from shared memory now.
__attribute__((no_sanitize("undefined"))) void wgmma_retire(Worker& w, unsigned warp,
                                                            const WgmmaOp& op) {
  const WgmmaArgs& a = op.args;
  const float* f16 = a.type == MmaType::f16 ? f16_table() : nullptr;
  const int wl = static_cast<int>(warp % 4);
  float A[16][16];
  if (a.a_in_regs) {
    for (int l = 0; l < 32; ++l)
      for (int e = 0; e < 8; ++e) {
        int row, col;
        gmma::a_fragment_coord(32 * wl + l, e, &row, &col);
        const auto bits = static_cast<std::uint16_t>(op.a[l][e / 2] >> (16 * (e % 2)));
        A[row - 16 * wl][col] = half_bits_to_float(bits, a.type, f16);
      }
  } else {
    const gmma::Descriptor d = gmma::decode_descriptor(a.desc_a);
    for (int r = 0; r < 16; ++r)
      for (int k = 0; k < 16; ++k)
        A[r][k] = smem_half(w, gmma::operand_address(d, a.trans_a, 16 * wl + r, k), a.type, f16);
  }
  std::vector<double> B(static_cast<std::size_t>(a.n) * 16);
  const gmma::Descriptor db = gmma::decode_descriptor(a.desc_b);
  for (int n = 0; n < a.n; ++n)
    for (int k = 0; k < 16; ++k)
      B[static_cast<std::size_t>(n) * 16 + k] =
          a.scale_b * smem_half(w, gmma::operand_address(db, a.trans_b, n, k), a.type, f16);
  for (int l = 0; l < 32; ++l) {
    float* d = op.d[l];
    for (int i = 0; i < a.n / 2; ++i) {
      int row, col;
      gmma::accumulator_coord(32 * wl + l, i, &row, &col);
      // Products of 16-bit inputs are exact in double; the sum is rounded once.
      double s = a.scale_d != 0 ? static_cast<double>(d[i]) : 0.0;
      const double* b = &B[static_cast<std::size_t>(col) * 16];
      for (int k = 0; k < 16; ++k)
        s += a.scale_a * static_cast<double>(A[row - 16 * wl][k]) * b[k];
      d[i] = static_cast<float>(s);
    }
  }
}

// A warpgroup collective (wgmma.mma_async, setmaxnreg) that all 128 threads reached.
void resolve_warpgroup(Worker& w, unsigned g) {
  EmuThread* th = &w.threads[128 * g];
  const EmuThread& f = th[0];
  for (unsigned i = 1; i < 128; ++i)
    if (th[i].group_op != f.group_op)
      fail_thread(&th[i], "warpgroup %u diverged: this thread is in %s, thread %u in %s", g,
                  th[i].group_op == GroupOp::wgmma ? "wgmma.mma_async" : "setmaxnreg", f.linear,
                  f.group_op == GroupOp::wgmma ? "wgmma.mma_async" : "setmaxnreg");
  if (f.group_op == GroupOp::setmaxnreg) {
    for (unsigned i = 1; i < 128; ++i)
      if (th[i].wg.inc != f.wg.inc || th[i].wg.regs != f.wg.regs)
        fail_thread(&th[i],
                    "setmaxnreg is not warpgroup-uniform: this thread asks setmaxnreg.%s %u, "
                    "thread %u setmaxnreg.%s %u",
                    th[i].wg.inc ? "inc" : "dec", th[i].wg.regs, f.linear, f.wg.inc ? "inc" : "dec",
                    f.wg.regs);
    if (f.wg.regs < 24 || f.wg.regs > 256 || f.wg.regs % 8 != 0)
      fail_thread(&f, "setmaxnreg %u: the count must be a multiple of 8 in [24, 256]", f.wg.regs);
  } else {
    const WgmmaArgs& a = f.wg;
    for (unsigned i = 1; i < 128; ++i) {
      const WgmmaArgs& b = th[i].wg;
      const char* field = b.n != a.n                               ? "the shape (N)"
                          : b.type != a.type                       ? "the input type"
                          : b.a_in_regs != a.a_in_regs             ? "where A comes from"
                          : (!a.a_in_regs && b.desc_a != a.desc_a) ? "descriptor A"
                          : b.desc_b != a.desc_b                   ? "descriptor B"
                          : b.scale_d != a.scale_d                 ? "scale-d"
                          : (b.scale_a != a.scale_a || b.scale_b != a.scale_b) ? "imm-scale"
                          : (b.trans_a != a.trans_a || b.trans_b != a.trans_b) ? "imm-trans"
                                                                               : nullptr;
      if (field != nullptr)
        fail_thread(&th[i],
                    "%s: the threads of warpgroup %u disagree on %s (this thread: desc A "
                    "0x%016llx B 0x%016llx; thread %u: A 0x%016llx B 0x%016llx)",
                    wgmma_name(a), g, field, static_cast<unsigned long long>(b.desc_a),
                    static_cast<unsigned long long>(b.desc_b), f.linear,
                    static_cast<unsigned long long>(a.desc_a),
                    static_cast<unsigned long long>(a.desc_b));
    }
    if (a.n < 8 || a.n > 256 || a.n % 8 != 0)
      fail_thread(&f, "%s: N = %d is not a multiple of 8 in [8, 256]", wgmma_name(a), a.n);
    if (!a.a_in_regs)
      check_operand(w, &f, a.desc_a, a.trans_a, 64, "A", a);
    check_operand(w, &f, a.desc_b, a.trans_b, a.n, "B", a);
    for (unsigned wi = 4 * g; wi < 4 * g + 4; ++wi) {
      if (!w.wgmma[wi].fenced)
        fail_thread(&w.threads[32 * wi],
                    "%s without a wgmma.fence since this warp's last wgmma.wait_group (the PTX "
                    "ISA requires the fence before the first wgmma and after the accumulator or A "
                    "registers were accessed)",
                    wgmma_name(a));
      WgmmaOp op;
      op.args = w.threads[32 * wi].wg;
      for (unsigned l = 0; l < 32; ++l) {
        const EmuThread& t = w.threads[32 * wi + l];
        op.d[l] = t.wg.d;
        std::memcpy(op.a[l], t.wg.a, sizeof op.a[l]);
      }
      w.wgmma[wi].uncommitted.push_back(op);
      if (w.counting)
        flush_warp(w, wi);
    }
    if (w.counting) {
      w.cnt.wgmma_instructions += 1;
      w.cnt.tensor_macs += static_cast<std::uint64_t>(64) * static_cast<std::uint64_t>(a.n) * 16;
    }
  }
  for (unsigned i = 0; i < 128; ++i) {
    th[i].wait = Wait::none;
    w.run_list.push_back(128 * g + i);
  }
  for (unsigned wi = 4 * g; wi < 4 * g + 4; ++wi)
    w.wg_arrived[wi] = 0;
  w.wg_waiting -= 128;
  w.crossings += 128;
}

// wgmma.fence / commit_group / wait_group: warp collectives of all 32 lanes.
void resolve_wgmma_sync(Worker& w, unsigned warp, Op op) {
  WarpWgmma& s = w.wgmma[warp];
  EmuThread* lanes = &w.threads[warp * 32];
  switch (op) {
  case Op::wgmma_fence:
    s.fenced = true;
    break;
  case Op::wgmma_commit:
    s.groups.push_back(std::move(s.uncommitted)); // possibly an empty group, as in PTX
    s.uncommitted.clear();
    break;
  default: {
    const int keep = lanes[0].mode;
    for (unsigned l = 1; l < 32; ++l)
      if (lanes[l].mode != keep)
        fail_thread(&lanes[l], "wgmma.wait_group: lanes of one warp wait for %d and %d groups",
                    lanes[l].mode, keep);
    std::size_t retire = s.groups.size() > static_cast<std::size_t>(keep)
                             ? s.groups.size() - static_cast<std::size_t>(keep)
                             : 0;
    for (std::size_t gi = 0; gi < retire; ++gi)
      for (const WgmmaOp& o : s.groups[gi])
        wgmma_retire(w, warp, o);
    s.groups.erase(s.groups.begin(), s.groups.begin() + static_cast<std::ptrdiff_t>(retire));
    s.fenced = false;
    break;
  }
  }
}

// Threads whose waits completed: released ones, mbarrier waiters whose phase completed.
void release_waiters(Worker& w) {
  if (w.released == 0 && w.mbar_waiting == 0)
    return;
  for (unsigned i = 0; i < w.nthreads; ++i) {
    EmuThread& t = w.threads[i];
    if (t.wait == Wait::released) {
      t.wait = Wait::none;
      --w.released;
      w.run_list.push_back(i);
    } else if (t.wait == Wait::mbarrier) {
      auto it = w.mbarriers.find(t.mbar);
      if (it == w.mbarriers.end() || !it->second.valid)
        fail_thread(&t, "mbarrier %p was invalidated while this thread waited on it",
                    reinterpret_cast<void*>(t.mbar));
      if (it->second.phase > t.mbar_phase) {
        t.wait = Wait::none;
        --w.mbar_waiting;
        ++w.crossings;
        w.run_list.push_back(i);
      }
    }
  }
}

// Warpgroup collectives that every thread of their warpgroup has reached.
void resolve_warpgroups(Worker& w) {
  if (w.wg_waiting == 0)
    return;
  for (unsigned g = 0; 4 * g < w.nwarps; ++g) {
    unsigned any = 0;
    bool all = true;
    for (unsigned wi = 4 * g; wi < 4 * g + 4; ++wi) {
      const unsigned arrived = wi < w.nwarps ? w.wg_arrived[wi] : 0u;
      any |= arrived;
      all = all && arrived == 0xffffffffu;
    }
    if (any == 0)
      continue;
    const EmuThread* first = nullptr;
    for (unsigned wi = 4 * g; wi < 4 * g + 4 && first == nullptr; ++wi)
      if (wi < w.nwarps && w.wg_arrived[wi] != 0)
        first = &w.threads[32 * wi + static_cast<unsigned>(__builtin_ctz(w.wg_arrived[wi]))];
    const char* name = first->group_op == GroupOp::wgmma ? wgmma_name(first->wg) : "setmaxnreg";
    for (unsigned wi = 4 * g; wi < 4 * g + 4; ++wi) {
      if (wi >= w.nwarps || w.warp_exists[wi] != 0xffffffffu)
        fail_thread(first,
                    "%s (.sync.aligned over the warpgroup) in warpgroup %u (threads %u..%u), but "
                    "the block has only %u threads: warpgroups need all 128",
                    name, g, 128 * g, 128 * g + 127, w.nthreads);
      if (w.warp_exited[wi] != 0)
        fail_thread(first, "%s in warpgroup %u: thread %u has already exited and can never arrive",
                    name, g, 32 * wi + static_cast<unsigned>(__builtin_ctz(w.warp_exited[wi])));
    }
    if (all)
      resolve_warpgroup(w, g);
  }
}

void resolve_group(Worker& w, unsigned warp, unsigned mask) {
  const unsigned base = warp * 32;
  EmuThread* lanes = &w.threads[base];
  const unsigned first = static_cast<unsigned>(__builtin_ctz(mask));
  const Op op = lanes[first].op;
  for (unsigned m = mask; m; m &= m - 1) {
    const EmuThread& t = lanes[__builtin_ctz(m)];
    if (t.op != op || (op == Op::shfl && t.mode != lanes[first].mode))
      fail_thread(
          &t,
          "lanes of warp %u diverged into different warp collectives with the same mask 0x%08x: "
          "lane %u is in %s, lane %u in %s",
          warp, mask, first, lanes[first].op_name, t.lane, t.op_name);
  }
  if (w.counting) {
    flush_warp(w, warp);
    w.cnt.warp_collectives += 1;
    if (op == Op::mma) {
      w.cnt.mma_instructions += 1;
      w.cnt.tensor_macs +=
          static_cast<MmaType>(lanes[first].mode) == MmaType::tf32 ? 16 * 8 * 8 : 16 * 8 * 16;
    }
  }
  switch (op) {
  case Op::syncwarp:
    break;
  case Op::shfl:
    resolve_shfl(w, base, mask);
    break;
  case Op::ballot: {
    unsigned bits = 0;
    for (unsigned m = mask; m; m &= m - 1) {
      unsigned l = static_cast<unsigned>(__builtin_ctz(m));
      if (lanes[l].in != 0)
        bits |= lane_bit(l);
    }
    for (unsigned m = mask; m; m &= m - 1)
      lanes[__builtin_ctz(m)].out = bits;
    break;
  }
  case Op::reduce: {
    const auto rop = static_cast<Reduce>(lanes[first].mode);
    std::uint32_t acc = static_cast<std::uint32_t>(lanes[first].in);
    for (unsigned m = mask & (mask - 1); m; m &= m - 1) {
      auto v = static_cast<std::uint32_t>(lanes[__builtin_ctz(m)].in);
      switch (rop) {
      case Reduce::add:
        acc += v;
        break;
      case Reduce::min_s:
        acc = static_cast<std::int32_t>(v) < static_cast<std::int32_t>(acc) ? v : acc;
        break;
      case Reduce::max_s:
        acc = static_cast<std::int32_t>(v) > static_cast<std::int32_t>(acc) ? v : acc;
        break;
      case Reduce::min_u:
        acc = v < acc ? v : acc;
        break;
      case Reduce::max_u:
        acc = v > acc ? v : acc;
        break;
      case Reduce::and_:
        acc &= v;
        break;
      case Reduce::or_:
        acc |= v;
        break;
      case Reduce::xor_:
        acc ^= v;
        break;
      }
    }
    for (unsigned m = mask; m; m &= m - 1)
      lanes[__builtin_ctz(m)].out = acc;
    break;
  }
  case Op::mma:
    resolve_mma(w, base);
    break;
  case Op::ldmatrix:
    resolve_ldmatrix(w, base);
    break;
  case Op::wgmma_fence:
  case Op::wgmma_commit:
  case Op::wgmma_wait:
    resolve_wgmma_sync(w, warp, op);
    break;
  }
}

std::string describe_wait(const Worker& w, const EmuThread& t) {
  char buf[256];
  switch (t.wait) {
  case Wait::none:
    std::snprintf(buf, sizeof buf, "runnable");
    break;
  case Wait::done:
    std::snprintf(buf, sizeof buf, "exited");
    break;
  case Wait::barrier:
    std::snprintf(buf, sizeof buf, "waits at __syncthreads (%s:%d)", t.bar_file, t.bar_line);
    break;
  case Wait::warp:
    std::snprintf(buf, sizeof buf, "waits in %s with mask 0x%08x", t.op_name, t.mask);
    break;
  case Wait::mbarrier:
    std::snprintf(buf, sizeof buf, "waits (try_wait.parity %u) for phase %llu of %s", t.mbar_parity,
                  static_cast<unsigned long long>(t.mbar_phase), describe_mbar(w, t.mbar).c_str());
    break;
  case Wait::named:
    std::snprintf(buf, sizeof buf, "waits at named barrier %u (bar.sync, %u of %u arrived)",
                  t.named_id, w.named[t.named_id].arrived, w.named[t.named_id].expected);
    break;
  case Wait::warpgroup:
    std::snprintf(buf, sizeof buf, "waits in %s (warpgroup %u)",
                  t.group_op == GroupOp::wgmma ? wgmma_name(t.wg) : "setmaxnreg", t.warp / 4);
    break;
  case Wait::released:
    std::snprintf(buf, sizeof buf, "runnable");
    break;
  }
  return buf;
}

// A live thread other than `self`, preferring one that does not wait like it, for the messages.
const EmuThread* other_live(const Worker& w, const EmuThread& self) {
  const EmuThread* any = nullptr;
  for (unsigned i = 0; i < w.nthreads; ++i) {
    const EmuThread& o = w.threads[i];
    if (&o == &self || o.wait == Wait::done)
      continue;
    if (o.wait != self.wait)
      return &o;
    if (any == nullptr)
      any = &o;
  }
  return any;
}

[[noreturn]] void report_hopper_deadlock(Worker& w, const EmuThread& t) {
  const EmuThread* o = other_live(w, t);
  char others[384];
  if (o != nullptr)
    std::snprintf(others, sizeof others, "; e.g. thread (%u,%u,%u) %s", o->tid.x, o->tid.y,
                  o->tid.z, describe_wait(w, *o).c_str());
  else
    std::snprintf(others, sizeof others, "; every other thread has exited");
  if (t.wait == Wait::mbarrier) {
    const Mbarrier& m = w.mbarriers.at(t.mbar);
    char why[256];
    if (m.pending > 0)
      std::snprintf(why, sizeof why, "%u of its %u arrivals never come", m.pending, m.expected);
    else if (m.tx > 0)
      std::snprintf(why, sizeof why,
                    "all arrivals are in, but %lld bytes announced by expect_tx never arrive (no "
                    "bulk copy in flight completes on this barrier)",
                    static_cast<long long>(m.tx));
    else
      std::snprintf(why, sizeof why,
                    "bulk copies completed %lld bytes more than expect_tx announced, so the "
                    "tx-count never returns to zero",
                    static_cast<long long>(-m.tx));
    fail_thread(&t,
                "deadlock: this thread waits (mbarrier.try_wait.parity %u) for phase %llu of %s, "
                "which can never complete: %s%s%s",
                t.mbar_parity, static_cast<unsigned long long>(t.mbar_phase),
                describe_mbar(w, t.mbar).c_str(), why,
                m.phase > 0 ? " (wrong phase parity? the previous phase has completed)" : "",
                others);
  }
  if (t.wait == Wait::named)
    fail_thread(&t,
                "deadlock: named barrier %u (bar.sync, %u threads) has only %u arrivals and no "
                "other thread can arrive%s",
                t.named_id, w.named[t.named_id].expected, w.named[t.named_id].arrived, others);
  fail_thread(&t,
              "deadlock: %s in warpgroup %u cannot complete: not every thread of the "
              "warpgroup reaches it%s",
              t.group_op == GroupOp::wgmma ? wgmma_name(t.wg) : "setmaxnreg", t.warp / 4, others);
}

[[noreturn]] void report_deadlock(Worker& w) {
  // Hopper waits first (an mbarrier, named barrier or warpgroup wait is the root cause when others
  // wait at a __syncthreads behind it).
  for (Wait kind : {Wait::mbarrier, Wait::named, Wait::warpgroup})
    for (unsigned i = 0; i < w.nthreads; ++i)
      if (w.threads[i].wait == kind)
        report_hopper_deadlock(w, w.threads[i]);
  // Prefer the most specific explanation: a warp collective that can never complete.
  for (unsigned wi = 0; wi < w.nwarps; ++wi) {
    unsigned arrived = w.warp_arrived[wi];
    for (unsigned m = arrived; m; m &= m - 1) {
      const EmuThread& t = w.threads[wi * 32 + __builtin_ctz(m)];
      for (unsigned mm = t.mask; mm; mm &= mm - 1) {
        const EmuThread& o = w.threads[wi * 32 + __builtin_ctz(mm)];
        if (o.wait == Wait::warp && o.mask == t.mask)
          continue;
        fail_thread(&t,
                    "deadlock: %s with mask 0x%08x cannot complete: lane %u (thread (%u,%u,%u)) %s "
                    "(lanes arrived with this mask: 0x%08x)",
                    t.op_name, t.mask, o.lane, o.tid.x, o.tid.y, o.tid.z,
                    describe_wait(w, o).c_str(), [&] {
                      unsigned s = 0;
                      for (unsigned k = t.mask; k; k &= k - 1) {
                        const EmuThread& x = w.threads[wi * 32 + __builtin_ctz(k)];
                        if (x.wait == Wait::warp && x.mask == t.mask)
                          s |= lane_bit(x.lane);
                      }
                      return s;
                    }());
      }
    }
  }
  // Otherwise: some live threads are at __syncthreads and others are not.
  const EmuThread* at = nullptr;
  const EmuThread* other = nullptr;
  for (unsigned i = 0; i < w.nthreads; ++i) {
    const EmuThread& t = w.threads[i];
    if (t.wait == Wait::barrier && at == nullptr)
      at = &t;
    if (t.wait != Wait::barrier && t.wait != Wait::done && other == nullptr)
      other = &t;
  }
  if (at != nullptr && other != nullptr)
    fail_thread(at,
                "divergent barrier: %u of %u live threads wait at __syncthreads (%s:%d) but thread "
                "(%u,%u,%u) %s",
                w.at_barrier, w.live, at->bar_file, at->bar_line, other->tid.x, other->tid.y,
                other->tid.z, describe_wait(w, *other).c_str());
  fail_thread(nullptr, "deadlock: no emulated thread can make progress (%u live)", w.live);
}

void complete_barrier(Worker& w) {
  const EmuThread* first = nullptr;
  int count = 0, all = 1, any = 0;
  for (unsigned i = 0; i < w.nthreads; ++i) {
    EmuThread& t = w.threads[i];
    if (t.wait != Wait::barrier)
      continue;
    if (first == nullptr) {
      first = &t;
    } else if (t.bar_line != first->bar_line ||
               (t.bar_file != first->bar_file && std::strcmp(t.bar_file, first->bar_file) != 0)) {
      fail_thread(
          &t,
          "divergent barrier: this thread waits at __syncthreads (%s:%d) while thread (%u,%u,%u) "
          "waits at __syncthreads (%s:%d); every live thread of a block must reach the same "
          "barrier",
          t.bar_file, t.bar_line, first->tid.x, first->tid.y, first->tid.z, first->bar_file,
          first->bar_line);
    } else if (t.bar_kind != first->bar_kind) {
      fail_thread(&t, "divergent barrier: threads mix __syncthreads variants at %s:%d", t.bar_file,
                  t.bar_line);
    }
    int p = t.bar_pred != 0;
    count += p;
    all &= p;
    any |= p;
  }
  const int result = first->bar_kind == 0 ? count : first->bar_kind == 1 ? all : any;
  if (w.counting) {
    flush_block(w);
    w.cnt.barriers += 1;
  }
  for (unsigned i = 0; i < w.nthreads; ++i) {
    EmuThread& t = w.threads[i];
    if (t.wait != Wait::barrier)
      continue;
    t.wait = Wait::none;
    t.bar_result = result;
    w.run_list.push_back(i);
  }
  w.crossings += w.at_barrier;
  w.at_barrier = 0;
}

void resolve(Worker& w) {
  w.run_list.clear();
  for (unsigned wi = 0; wi < w.nwarps; ++wi) {
    unsigned arrived = w.warp_arrived[wi];
    if (arrived == 0)
      continue;
    unsigned pending = arrived;
    while (pending != 0) {
      const unsigned l = static_cast<unsigned>(__builtin_ctz(pending));
      EmuThread& t = w.threads[wi * 32 + l];
      const unsigned mask = t.mask;
      if (!(mask & lane_bit(l)))
        fail_thread(&t, "%s with mask 0x%08x: the calling lane %u is not in its own mask",
                    t.op_name, mask, l);
      if (mask & ~w.warp_exists[wi])
        fail_thread(
            &t,
            "%s with mask 0x%08x names lanes 0x%08x that do not exist in this block (blockDim %u)",
            t.op_name, mask, mask & ~w.warp_exists[wi], w.nthreads);
      if (mask & w.warp_exited[wi])
        fail_thread(&t, "%s with mask 0x%08x: lane %d has already exited and can never arrive",
                    t.op_name, mask, __builtin_ctz(mask & w.warp_exited[wi]));
      bool complete = (mask & arrived) == mask;
      for (unsigned m = mask; complete && m; m &= m - 1)
        complete = w.threads[wi * 32 + __builtin_ctz(m)].mask == mask;
      if (!complete) {
        pending &= ~lane_bit(l);
        continue;
      }
      resolve_group(w, wi, mask);
      for (unsigned m = mask; m; m &= m - 1) {
        unsigned idx = wi * 32 + static_cast<unsigned>(__builtin_ctz(m));
        w.threads[idx].wait = Wait::none;
        w.run_list.push_back(idx);
      }
      w.crossings += static_cast<unsigned>(__builtin_popcount(mask));
      arrived &= ~mask;
      pending &= ~mask;
    }
    w.warp_arrived[wi] = arrived;
  }
  resolve_warpgroups(w);
  release_waiters(w);
  if (w.at_barrier > 0 && w.at_barrier == w.live)
    complete_barrier(w);
  // Bulk tensor copies complete as late as possible: when no thread could run otherwise (so a
  // thread that reads their destination without waiting on the mbarrier reads stale data).
  if (w.run_list.empty() && !w.tma.empty()) {
    std::vector<TmaCopy> copies;
    copies.swap(w.tma);
    for (const TmaCopy& c : copies)
      complete_tma(w, c);
    release_waiters(w);
  }
  if (w.run_list.empty())
    report_deadlock(w);
}

void run_block(Worker& w, const Launch& L, std::uint64_t linear_block) {
  const std::uint64_t gx = L.grid.x, gy = L.grid.y;
  w.block = uint3{static_cast<unsigned>(linear_block % gx),
                  static_cast<unsigned>((linear_block / gx) % gy),
                  static_cast<unsigned>(linear_block / (gx * gy))};
  blockIdx = w.block;
  blockDim = L.block;
  gridDim = L.grid;
  const unsigned n = L.nthreads;
  ensure_threads(w, n);
  w.nthreads = n;
  w.nwarps = (n + 31) / 32;
  w.live = n;
  w.at_barrier = 0;
  for (unsigned wi = 0; wi < w.nwarps; ++wi) {
    w.warp_arrived[wi] = 0;
    w.warp_exited[wi] = 0;
    unsigned lanes = std::min(32u, n - wi * 32);
    w.warp_exists[wi] = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1u;
    w.wg_arrived[wi] = 0;
    w.wgmma[wi] = WarpWgmma{};
  }
  w.mbarriers.clear();
  for (auto& nb : w.named)
    nb = NamedBarrier{};
  w.tma.clear();
  w.have_first_map = false;
  w.released = w.mbar_waiting = w.named_waiting = w.wg_waiting = 0;
  const unsigned bx = L.block.x, by = L.block.y;
  w.run_list.resize(n);
  for (unsigned i = 0; i < n; ++i) {
    EmuThread& t = w.threads[i];
    t.tid = uint3{i % bx, (i / bx) % by, i / (bx * by)};
    t.linear = i;
    t.warp = i / 32;
    t.lane = i % 32;
    t.wait = Wait::none;
    t.copies.clear();
    t.group_ends.clear();
    fiber_init(t.fiber, &fiber_main, &t);
    w.run_list[i] = i;
  }
  prepare_dynamic_smem(w, L.dyn_smem);
  w.rng.state = splitmix64(L.seed ^ (linear_block * 0xD1B54A32D192ED03ull));
  for (;;) {
    w.rng.shuffle(w.run_list);
    w.run_pos = 1;
    EmuThread* first = &w.threads[w.run_list[0]];
    w.current = first;
    threadIdx = first->tid;
    ++w.switches;
    fiber_switch(w.host, first->fiber, false);
    if (w.live == 0)
      break;
    resolve(w);
  }
  w.current = nullptr;
  if (!w.tma.empty())
    fail_thread(&w.threads[w.tma[0].issuer],
                "the block finished with %zu bulk tensor copies (TMA) in flight, the first issued "
                "by this thread: nobody waited for them on their mbarrier",
                w.tma.size());
  flush_block(w);
  check_dynamic_smem(w);
}

void run_blocks(Launch& L) {
  Worker& w = worker();
  w.launch = &L;
  w.switches = 0;
  w.crossings = 0;
  w.counting = L.counting;
  w.count_sites = L.counting && counter_log().sites_on;
  w.cnt = LaunchCounters{};
  w.global_lo = w.global_hi = 0;
  std::uint64_t done = 0;
  for (;;) {
    std::uint64_t k = L.next.fetch_add(1, std::memory_order_relaxed);
    if (k >= L.nblocks)
      break;
    std::uint64_t b = L.order.empty() ? (k + L.rotation) % L.nblocks : L.order[k];
    run_block(w, L, b);
    ++done;
  }
  if (w.counting) {
    w.cnt.blocks = done;
    w.cnt.threads = done * L.nthreads;
    std::lock_guard<std::mutex> lk(L.total_mutex);
    add_counters(L.total, w.cnt);
  }
  if (w.count_sites) {
    CounterLog& log = counter_log();
    std::lock_guard<std::mutex> lk(log.m);
    for (const auto& [site, sc] : w.sites) {
      SiteCounts& t = log.sites[site];
      t.requests += sc.requests;
      t.wavefronts += sc.wavefronts;
      t.ideal += sc.ideal;
      t.sectors += sc.sectors;
      t.shared = sc.shared;
      t.store = sc.store;
    }
    w.sites.clear();
  }
  w.counting = false;
  w.launch = nullptr;
  Globals& g = globals();
  g.blocks += done;
  g.threads += done * L.nthreads;
  g.switches += w.switches;
  g.crossings += w.crossings;
}

// ================================================================================================
// The host-thread pool that runs blocks in parallel
// ================================================================================================
class Pool {
public:
  static Pool& get() {
    static Pool* p = new Pool(); // never destroyed (threads may be blocked in it at exit)
    return *p;
  }
  int size() {
    std::lock_guard<std::mutex> launch_lock(launch_mutex_);
    return active_limit_ + 1;
  }
  void resize(int n) {
    std::lock_guard<std::mutex> launch_lock(launch_mutex_);
    n = std::max(1, n);
    while (static_cast<int>(threads_.size()) + 1 < n) {
      threads_.emplace_back([this] { loop(); });
      threads_.back().detach();
    }
    // shrinking: extra threads stay parked; only `active_limit_` of them take work
    active_limit_ = n - 1;
  }
  void run(Launch& L) {
    std::lock_guard<std::mutex> launch_lock(launch_mutex_);
    const int helpers = static_cast<int>(std::min<std::uint64_t>(active_limit_, L.nblocks - 1));
    if (helpers <= 0) {
      run_blocks(L);
      return;
    }
    {
      std::lock_guard<std::mutex> lk(m_);
      job_ = &L;
      job_helpers_ = helpers;
      joined_ = 0;
      finished_ = 0;
      ++generation_;
    }
    cv_.notify_all();
    run_blocks(L);
    std::unique_lock<std::mutex> lk(m_);
    done_cv_.wait(lk, [&] { return finished_ == job_helpers_; });
    job_ = nullptr;
  }

private:
  Pool() {
    bool found = false;
    std::uint64_t n = read_env_u64("CUDA_EMU_THREADS", &found);
    unsigned hw = std::max(1u, std::thread::hardware_concurrency());
    int want =
        found && n > 0 ? static_cast<int>(std::min<std::uint64_t>(n, 256)) : static_cast<int>(hw);
    for (int i = 1; i < want; ++i)
      threads_.emplace_back([this] { loop(); });
    active_limit_ = want - 1;
    for (auto& t : threads_)
      t.detach();
    // A fork()ed child (GoogleTest's default "fast" death tests) has none of the pool's threads:
    // it runs its blocks on its one thread, with fresh locks.
    pthread_atfork(nullptr, nullptr, [] { Pool::get().reset_after_fork(); });
  }
  void reset_after_fork() {
    new (&launch_mutex_) std::mutex();
    new (&m_) std::mutex();
    new (&cv_) std::condition_variable();
    new (&done_cv_) std::condition_variable();
    threads_.clear(); // detached: destroying the handles is harmless
    job_ = nullptr;
    job_helpers_ = joined_ = finished_ = 0;
    active_limit_ = 0;
  }
  void loop() {
    std::uint64_t seen = 0;
    for (;;) {
      Launch* L = nullptr;
      {
        std::unique_lock<std::mutex> lk(m_);
        cv_.wait(lk,
                 [&] { return generation_ != seen && job_ != nullptr && joined_ < job_helpers_; });
        seen = generation_;
        ++joined_;
        L = job_;
      }
      run_blocks(*L);
      {
        std::lock_guard<std::mutex> lk(m_);
        ++finished_;
      }
      done_cv_.notify_all();
    }
  }

  std::mutex launch_mutex_;
  std::mutex m_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> threads_;
  Launch* job_ = nullptr;
  int job_helpers_ = 0, joined_ = 0, finished_ = 0;
  int active_limit_ = 0;
  std::uint64_t generation_ = 0;
};

// ================================================================================================
// Function names from the symbol table (kernels are named in every failure message)
// ================================================================================================
std::string demangle(const char* s) {
  int status = 0;
  char* d = abi::__cxa_demangle(s, nullptr, nullptr, &status);
  std::string r = (status == 0 && d != nullptr) ? d : s;
  std::free(d);
  return r;
}

std::string elf_lookup(const char* path, std::uintptr_t offset, std::uintptr_t absolute) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return {};
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size < static_cast<off_t>(sizeof(Elf64_Ehdr))) {
    close(fd);
    return {};
  }
  auto size = static_cast<std::size_t>(st.st_size);
  void* map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED)
    return {};
  std::string result;
  const auto* base = static_cast<const unsigned char*>(map);
  const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(base);
  if (std::memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 && eh->e_ident[EI_CLASS] == ELFCLASS64 &&
      eh->e_shoff + std::size_t{eh->e_shnum} * sizeof(Elf64_Shdr) <= size) {
    const std::uintptr_t target = eh->e_type == ET_EXEC ? absolute : offset;
    const auto* sh = reinterpret_cast<const Elf64_Shdr*>(base + eh->e_shoff);
    for (unsigned i = 0; i < eh->e_shnum && result.empty(); ++i) {
      if (sh[i].sh_type != SHT_SYMTAB && sh[i].sh_type != SHT_DYNSYM)
        continue;
      if (sh[i].sh_link >= eh->e_shnum)
        continue;
      const Elf64_Shdr& strtab = sh[sh[i].sh_link];
      if (sh[i].sh_offset + sh[i].sh_size > size || strtab.sh_offset + strtab.sh_size > size)
        continue;
      const auto* sym = reinterpret_cast<const Elf64_Sym*>(base + sh[i].sh_offset);
      std::size_t nsym = sh[i].sh_size / sizeof(Elf64_Sym);
      for (std::size_t k = 0; k < nsym; ++k) {
        if (ELF64_ST_TYPE(sym[k].st_info) != STT_FUNC || sym[k].st_value != target)
          continue;
        if (sym[k].st_name >= strtab.sh_size)
          continue;
        result = demangle(reinterpret_cast<const char*>(base + strtab.sh_offset + sym[k].st_name));
        break;
      }
    }
  }
  munmap(map, size);
  return result;
}

std::string lookup_name(const void* fn) {
  Dl_info info{};
  if (dladdr(fn, &info) != 0) {
    if (info.dli_sname != nullptr && info.dli_saddr == fn)
      return demangle(info.dli_sname);
    auto addr = reinterpret_cast<std::uintptr_t>(fn);
    auto off = addr - reinterpret_cast<std::uintptr_t>(info.dli_fbase);
    std::string r;
    if (info.dli_fname != nullptr && info.dli_fname[0] != '\0')
      r = elf_lookup(info.dli_fname, off, addr);
    if (r.empty())
      r = elf_lookup("/proc/self/exe", off, addr);
    if (!r.empty())
      return r;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "kernel@%p", fn);
  return buf;
}

struct KernelEntry {
  KernelThunk thunk;
  KernelPack pack;
  KernelUnpack unpack;
};
std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}
std::unordered_map<const void*, KernelEntry>& registry() {
  static auto* r = new std::unordered_map<const void*, KernelEntry>();
  return *r;
}

} // namespace

// ================================================================================================
// Entry points (cuda_emu.h)
// ================================================================================================
void fail(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  Worker* w = tls_worker;
  vreport(w != nullptr ? w->current : nullptr, fmt, ap);
}

void trap() {
  fail("__trap() called");
}

void register_kernel(const void* kernel, KernelThunk thunk, KernelPack pack, KernelUnpack unpack) {
  std::lock_guard<std::mutex> lk(registry_mutex());
  registry().emplace(kernel, KernelEntry{thunk, pack, unpack});
}

cudaError_t launch(const void* kernel, KernelThunk thunk, void* packed_args, dim3 grid, dim3 block,
                   std::size_t dynamic_smem, cudaStream_t stream) {
  if (tls_worker != nullptr && tls_worker->launch != nullptr)
    fail("kernel launch from inside a kernel (dynamic parallelism) is not emulated");
  auto error = [](cudaError_t e) {
    set_last_error(e);
    return e;
  };
  if (kernel == nullptr)
    return error(cudaErrorInvalidDeviceFunction);
  const std::uint64_t threads = std::uint64_t{block.x} * block.y * block.z;
  if (block.x == 0 || block.y == 0 || block.z == 0 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
      threads > static_cast<std::uint64_t>(kMaxThreadsPerBlock) || block.x > 1024 ||
      block.y > 1024 || block.z > 64 || grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535)
    return error(cudaErrorInvalidConfiguration);
  // Like CUDA: more dynamic shared memory than the kernel's limit (48 KB unless raised with
  // cudaFuncSetAttribute(MaxDynamicSharedMemorySize)) fails the launch.
  if (dynamic_smem > max_dynamic_smem(kernel))
    return error(cudaErrorInvalidValue);
  if (!valid_stream(stream))
    return error(cudaErrorInvalidResourceHandle);

  Globals& g = globals();
  Launch L;
  L.kernel = kernel;
  L.thunk = thunk;
  L.args = packed_args;
  L.grid = grid;
  L.block = block;
  L.dyn_smem = dynamic_smem;
  L.nthreads = static_cast<unsigned>(threads);
  L.nblocks = std::uint64_t{grid.x} * grid.y * grid.z;
  L.seed = splitmix64(g.seed + 0x632BE59BD9B4E019ull * (g.launch_counter.fetch_add(1) + 1));
  Rng rng{L.seed};
  if (L.nblocks <= (1u << 22)) {
    L.order.resize(L.nblocks);
    for (std::uint32_t i = 0; i < L.nblocks; ++i)
      L.order[i] = i;
    rng.shuffle(L.order);
  } else {
    L.rotation = rng.next() % L.nblocks;
  }
  CounterLog& log = counter_log();
  L.counting = log.on.load(std::memory_order_relaxed);
  const bool dry = log.dry_run.load(std::memory_order_relaxed);
  if (L.counting && !dry)
    L.allocs = device_allocations();
  if (!dry)
    Pool::get().run(L);
  ++g.launches;
  if (L.counting) {
    LaunchCounters r = L.total;
    r.kernel = function_name(kernel);
    r.grid[0] = grid.x;
    r.grid[1] = grid.y;
    r.grid[2] = grid.z;
    r.block[0] = block.x;
    r.block[1] = block.y;
    r.block[2] = block.z;
    r.dynamic_smem = dynamic_smem;
    if (dry) { // the shape only
      r.blocks = L.nblocks;
      r.threads = L.nblocks * L.nthreads;
    }
    std::lock_guard<std::mutex> lk(log.m);
    log.records.push_back(r);
  }
  return cudaSuccess;
}

void syncthreads(const char* file, int line) {
  Worker& w = in_kernel("__syncthreads");
  EmuThread* t = w.current;
  t->wait = Wait::barrier;
  t->bar_file = file;
  t->bar_line = line;
  t->bar_kind = -1;
  ++w.at_barrier;
  suspend(w, t, false);
}

int syncthreads_reduce(int kind, int predicate, const char* file, int line) {
  Worker& w = in_kernel("__syncthreads_count/and/or");
  EmuThread* t = w.current;
  t->wait = Wait::barrier;
  t->bar_file = file;
  t->bar_line = line;
  t->bar_kind = kind;
  t->bar_pred = predicate;
  ++w.at_barrier;
  suspend(w, t, false);
  return t->bar_result;
}

namespace {
inline EmuThread* arrive(Worker& w, Op op, unsigned mask, const char* name) {
  EmuThread* t = w.current;
  t->wait = Wait::warp;
  t->op = op;
  t->mask = mask;
  t->op_name = name;
  w.warp_arrived[t->warp] |= lane_bit(t->lane);
  return t;
}
} // namespace

void syncwarp(unsigned mask) {
  Worker& w = in_kernel("__syncwarp");
  EmuThread* t = arrive(w, Op::syncwarp, mask, "__syncwarp");
  suspend(w, t, false);
}

std::uint64_t shfl(unsigned mask, std::uint64_t bits, Shfl mode, unsigned b, int width,
                   const char* name) {
  Worker& w = in_kernel(name);
  EmuThread* t = arrive(w, Op::shfl, mask, name);
  t->in = bits;
  t->mode = static_cast<int>(mode);
  t->b = b;
  t->width = width;
  suspend(w, t, false);
  return t->out;
}

unsigned ballot(unsigned mask, int predicate, const char* name) {
  Worker& w = in_kernel(name);
  EmuThread* t = arrive(w, Op::ballot, mask, name);
  t->in = predicate != 0;
  suspend(w, t, false);
  return static_cast<unsigned>(t->out);
}

unsigned reduce(unsigned mask, unsigned value, Reduce op, const char* name) {
  Worker& w = in_kernel(name);
  EmuThread* t = arrive(w, Op::reduce, mask, name);
  t->in = value;
  t->mode = static_cast<int>(op);
  suspend(w, t, false);
  return static_cast<unsigned>(t->out);
}

unsigned activemask() {
  Worker& w = in_kernel("__activemask");
  const EmuThread* t = w.current;
  return w.warp_exists[t->warp] & ~w.warp_exited[t->warp];
}

void* dynamic_shared_memory() {
  Worker& w = in_kernel("dynamic_shared_memory");
  return w.dyn;
}

void mma_m16n8(float* d, const std::uint32_t* a, const std::uint32_t* b, const float* c,
               MmaType type) {
  Worker& w = in_kernel("mma.sync");
  const char* name = type == MmaType::tf32   ? "mma.sync.m16n8k8.tf32"
                     : type == MmaType::bf16 ? "mma.sync.m16n8k16.bf16"
                                             : "mma.sync.m16n8k16.f16";
  // .aligned: all 32 lanes of the warp execute the same mma.
  EmuThread* t = arrive(w, Op::mma, 0xffffffffu, name);
  t->p_out = d;
  t->p_a = a;
  t->p_b = b;
  t->p_c = c;
  t->mode = static_cast<int>(type);
  suspend(w, t, false);
}

void ldmatrix(std::uint32_t* r, int count, bool trans, const void* smem_row) {
  Worker& w = in_kernel("ldmatrix");
  EmuThread* t = arrive(w, Op::ldmatrix, 0xffffffffu, trans ? "ldmatrix.trans" : "ldmatrix");
  t->p_out = r;
  t->p_a = smem_row;
  t->site = reinterpret_cast<std::uintptr_t>(__builtin_return_address(0));
  t->mode = count;
  t->b = trans ? 1u : 0u;
  suspend(w, t, false);
}

void cp_async(void* smem, const void* gmem, int bytes, int src_bytes) {
  Worker& w = in_kernel("cp.async");
  EmuThread* t = w.current;
  if (reinterpret_cast<std::uintptr_t>(smem) % static_cast<unsigned>(bytes) != 0 ||
      reinterpret_cast<std::uintptr_t>(gmem) % static_cast<unsigned>(bytes) != 0)
    fail_thread(t, "cp.async of %d bytes: shared %p / global %p not %d-byte aligned", bytes, smem,
                gmem, bytes);
  if (src_bytes < 0 || src_bytes > bytes)
    fail_thread(t, "cp.async: src-size %d outside [0, %d]", src_bytes, bytes);
  // Deferred to the matching wait_group: reading the destination before waiting sees old data.
  t->copies.push_back(AsyncCopy{smem, gmem, bytes, src_bytes});
  if (w.counting) { // the instruction: the call site in the (inlined) kernel-side wrapper
    const auto site = reinterpret_cast<std::uintptr_t>(__builtin_return_address(0));
    const auto src = reinterpret_cast<std::uintptr_t>(gmem);
    if (src_bytes > 0 && in_device_memory(w, src))
      w.access_log[t->warp].push_back(Access{site, src, static_cast<std::uint32_t>(src_bytes),
                                             static_cast<std::uint8_t>(t->lane), false,
                                             Space::global, true});
    w.access_log[t->warp].push_back(
        Access{site + 1, reinterpret_cast<std::uintptr_t>(smem), static_cast<std::uint32_t>(bytes),
               static_cast<std::uint8_t>(t->lane), true, Space::shared, true});
  }
}

void record_access(std::uintptr_t addr, std::size_t bytes, bool store, std::uintptr_t site) {
  Worker* w = tls_worker;
  if (w == nullptr || w->current == nullptr || !w->counting)
    return; // host code, or counting is off
  w->cnt.accesses_instrumented = true;
  Space space;
  if (addr - reinterpret_cast<std::uintptr_t>(w->dyn) < w->dyn_size)
    space = Space::shared;
  else if (in_device_memory(*w, addr))
    space = Space::global;
  else
    return; // the fiber's stack (kernel parameters, locals), host memory, static shared memory
  const EmuThread* t = w->current;
  w->access_log[t->warp].push_back(Access{site, addr, static_cast<std::uint32_t>(bytes),
                                          static_cast<std::uint8_t>(t->lane), store, space, false});
}

void cp_async_commit() {
  Worker& w = in_kernel("cp.async.commit_group");
  EmuThread* t = w.current;
  t->group_ends.push_back(t->copies.size());
}

void cp_async_wait(int pending_groups) {
  Worker& w = in_kernel("cp.async.wait_group");
  EmuThread* t = w.current;
  const std::size_t keep = static_cast<std::size_t>(pending_groups < 0 ? 0 : pending_groups);
  if (t->group_ends.size() <= keep)
    return;
  const std::size_t complete_groups = t->group_ends.size() - keep;
  const std::size_t end = t->group_ends[complete_groups - 1];
  for (std::size_t i = 0; i < end; ++i) {
    const AsyncCopy& c = t->copies[i];
    if (c.src_bytes > 0)
      std::memcpy(c.dst, c.src, static_cast<std::size_t>(c.src_bytes));
    if (c.src_bytes < c.bytes)
      std::memset(static_cast<char*>(c.dst) + c.src_bytes, 0,
                  static_cast<std::size_t>(c.bytes - c.src_bytes));
  }
  t->copies.erase(t->copies.begin(), t->copies.begin() + static_cast<std::ptrdiff_t>(end));
  t->group_ends.erase(t->group_ends.begin(),
                      t->group_ends.begin() + static_cast<std::ptrdiff_t>(complete_groups));
  for (auto& e : t->group_ends)
    e -= end;
}

std::uint32_t float_to_tf32(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7F800000u) == 0x7F800000u)
    return u; // inf / NaN unchanged
  // cvt.rna: round to nearest, ties away from zero, on the 10-bit mantissa.
  u += 0x1000u;
  return u & 0xFFFFE000u;
}

// ---- Hopper entry points (kernels/common/mbarrier.cuh, tma.cuh, wgmma.cuh, warpgroup.cuh) -------
void mbarrier_init(std::uint64_t* bar, unsigned count) {
  Worker& w = in_kernel("mbarrier.init");
  EmuThread* t = w.current;
  const auto a = reinterpret_cast<std::uintptr_t>(bar);
  if (a % 8 != 0)
    fail_thread(t, "mbarrier.init: address %p is not 8-byte aligned", static_cast<void*>(bar));
  if (count == 0 || count > static_cast<unsigned>(kMaxTx))
    fail_thread(t, "mbarrier.init: count %u outside [1, 2^20-1]", count);
  Mbarrier& m = w.mbarriers[a];
  if (m.valid)
    fail_thread(t, "mbarrier.init on %s, which is already initialised (mbarrier.inval it first)",
                describe_mbar(w, a).c_str());
  m = Mbarrier{};
  m.expected = m.pending = count;
  m.valid = true;
  mbar_store(m, bar);
}

void mbarrier_inval(std::uint64_t* bar) {
  Worker& w = in_kernel("mbarrier.inval");
  EmuThread* t = w.current;
  Mbarrier& m = mbar_lookup(w, t, bar, "mbarrier.inval");
  for (unsigned i = 0; i < w.nthreads; ++i)
    if (w.threads[i].wait == Wait::mbarrier &&
        w.threads[i].mbar == reinterpret_cast<std::uintptr_t>(bar))
      fail_thread(t, "mbarrier.inval on %p while thread %u waits on it", static_cast<void*>(bar),
                  i);
  for (const TmaCopy& c : w.tma)
    if (c.bar == bar)
      fail_thread(t,
                  "mbarrier.inval on %p while a bulk tensor copy (issued by thread %u) will "
                  "complete on it",
                  static_cast<void*>(bar), c.issuer);
  m.valid = false;
}

std::uint64_t mbarrier_arrive(std::uint64_t* bar, std::uint32_t tx_bytes, bool expect_tx) {
  const char* what = expect_tx ? "mbarrier.arrive.expect_tx" : "mbarrier.arrive";
  Worker& w = in_kernel(what);
  EmuThread* t = w.current;
  Mbarrier& m = mbar_lookup(w, t, bar, what);
  const std::uint64_t token = m.phase;
  if (expect_tx)
    m.tx += tx_bytes; // the expect-tx operation comes first, then the arrive-on
  if (m.pending == 0)
    fail_thread(t, "%s: one arrival too many on %s (its current phase has all its arrivals)", what,
                describe_mbar(w, reinterpret_cast<std::uintptr_t>(bar)).c_str());
  --m.pending;
  mbar_settle(w, t, m, bar, what);
  return token;
}

void mbarrier_expect_tx(std::uint64_t* bar, std::uint32_t tx_bytes) {
  Worker& w = in_kernel("mbarrier.expect_tx");
  EmuThread* t = w.current;
  Mbarrier& m = mbar_lookup(w, t, bar, "mbarrier.expect_tx");
  m.tx += tx_bytes;
  mbar_settle(w, t, m, bar, "mbarrier.expect_tx");
}

bool mbarrier_try_wait_parity(std::uint64_t* bar, unsigned phase_parity) {
  Worker& w = in_kernel("mbarrier.try_wait.parity");
  EmuThread* t = w.current;
  Mbarrier& m = mbar_lookup(w, t, bar, "mbarrier.try_wait.parity");
  if (phase_parity > 1)
    fail_thread(t, "mbarrier.try_wait.parity: parity %u is not 0 or 1", phase_parity);
  // Parity p names the current phase (when it has parity p: wait for it) or the immediately
  // preceding one (complete).
  if ((m.phase & 1u) != phase_parity)
    return true;
  t->wait = Wait::mbarrier;
  t->mbar = reinterpret_cast<std::uintptr_t>(bar);
  t->mbar_phase = m.phase;
  t->mbar_parity = phase_parity;
  ++w.mbar_waiting;
  suspend(w, t, false);
  return true; // resumed once that phase completed
}

void named_barrier(unsigned id, unsigned count, bool wait) {
  const char* what = wait ? "bar.sync" : "bar.arrive";
  Worker& w = in_kernel(what);
  EmuThread* t = w.current;
  if (id == 0 || id > 15)
    fail_thread(t, "%s %u: named barrier ids are 1..15 (0 is __syncthreads')", what, id);
  if (count == 0 || count % 32 != 0 || count > 32 * w.nwarps)
    fail_thread(t, "%s %u, %u: the thread count must be a multiple of 32 in [32, %u]", what, id,
                count, 32 * w.nwarps);
  NamedBarrier& b = w.named[id];
  if (b.arrived == 0)
    b.expected = count;
  else if (b.expected != count)
    fail_thread(t,
                "%s %u, %u: the threads already at this named barrier (%u) said %u threads "
                "(every arrival of one barrier instance must give the same count)",
                what, id, count, b.arrived, b.expected);
  if (++b.arrived == b.expected) { // complete: every waiter runs again in the next round
    for (unsigned i = 0; i < w.nthreads; ++i) {
      EmuThread& o = w.threads[i];
      if (o.wait == Wait::named && o.named_id == id) {
        o.wait = Wait::released;
        ++w.released;
        --w.named_waiting;
      }
    }
    w.crossings += b.expected;
    if (w.counting)
      w.cnt.barriers += 1;
    b = NamedBarrier{};
    return;
  }
  if (!wait)
    return;
  t->wait = Wait::named;
  t->named_id = id;
  ++w.named_waiting;
  suspend(w, t, false);
}

std::uint32_t shared_address(const void* p) {
  Worker& w = in_kernel("__cvta_generic_to_shared");
  const std::uint32_t s = shared_window(w, p);
  if (s == ~0u)
    fail_thread(w.current,
                "%p is not in the block's dynamic shared memory: under the emulator only dynamic "
                "shared memory has shared-window addresses (wgmma descriptors, TMA destinations)",
                p);
  return s;
}

void tma_load(void* smem_dst, const void* tensor_map, int rank, const int* coords,
              std::uint64_t* bar) {
  Worker& w = in_kernel("cp.async.bulk.tensor");
  EmuThread* t = w.current;
  TmaCopy c;
  std::memcpy(c.map, tensor_map, sizeof c.map);
  gmma::TensorMap m;
  std::memcpy(&m, c.map, sizeof m);
  if (m.magic != gmma::kTensorMapMagic)
    fail_thread(t,
                "cp.async.bulk.tensor: %p is not a tensor map made by cuTensorMapEncodeTiled (or "
                "it was overwritten)",
                tensor_map);
  if (m.rank != rank)
    fail_thread(t, "cp.async.bulk.tensor.%dd with a tensor map of rank %d", rank, m.rank);
  if (m.interleave != 0 || m.swizzle > 3 || m.oob_fill != 0)
    fail_thread(t, "cp.async.bulk.tensor: interleaved layouts, the 128B_ATOM swizzles and NaN "
                   "out-of-bounds fill are not emulated");
  for (int d = 1; d < rank; ++d)
    if (m.element_stride[d] != 1)
      fail_thread(t, "cp.async.bulk.tensor: element strides other than 1 are not emulated");
  const std::uint32_t span = m.swizzle == 0 ? 0u : 16u << m.swizzle;
  if (span != 0 && m.box[0] * m.elem_bytes != span)
    fail_thread(t,
                "cp.async.bulk.tensor: a box inner dimension of %u bytes with the %u-byte swizzle "
                "is not emulated (only inner dimension == swizzle span)",
                m.box[0] * m.elem_bytes, span);
  std::size_t bytes = m.elem_bytes;
  for (int d = 0; d < rank; ++d)
    bytes *= m.box[d];
  c.dst = static_cast<char*>(smem_dst);
  c.dst_shared = shared_window(w, smem_dst);
  if (c.dst_shared == ~0u)
    fail_thread(t,
                "cp.async.bulk.tensor: destination %p is not in the block's dynamic shared memory",
                smem_dst);
  if (c.dst_shared % 128 != 0)
    fail_thread(t, "cp.async.bulk.tensor: destination shared address 0x%x is not 128-byte aligned",
                c.dst_shared);
  if (c.dst_shared - kSharedWindowBase + bytes > w.dyn_size)
    fail_thread(t,
                "cp.async.bulk.tensor: the box (%zu bytes) at shared address 0x%x runs past the "
                "end of the block's dynamic shared memory (%zu bytes)",
                bytes, c.dst_shared, w.dyn_size);
  (void)mbar_lookup(w, t, bar, "cp.async.bulk.tensor (its mbarrier)");
  c.rank = rank;
  for (int d = 0; d < 5; ++d)
    c.coords[d] = d < rank ? coords[d] : 0;
  c.bar = bar;
  c.issuer = t->linear;
  w.tma.push_back(c);
  if (w.counting) {
    w.cnt.tma_requests += 1;
    w.cnt.tma_bytes += bytes;
    static_assert(sizeof c.map == sizeof w.first_map, "a tensor map's 128 bytes");
    if (!w.have_first_map) {
      std::memcpy(w.first_map, c.map, sizeof w.first_map);
      w.have_first_map = true;
    }
    if (std::memcmp(w.first_map, c.map, sizeof w.first_map) == 0)
      w.cnt.tma_first_map_bytes += bytes;
  }
}

void wgmma_fence() {
  Worker& w = in_kernel("wgmma.fence");
  EmuThread* t = arrive(w, Op::wgmma_fence, 0xffffffffu, "wgmma.fence.sync.aligned");
  suspend(w, t, false);
}

void wgmma_commit() {
  Worker& w = in_kernel("wgmma.commit_group");
  EmuThread* t = arrive(w, Op::wgmma_commit, 0xffffffffu, "wgmma.commit_group.sync.aligned");
  suspend(w, t, false);
}

void wgmma_wait(int pending_groups) {
  Worker& w = in_kernel("wgmma.wait_group");
  EmuThread* t = arrive(w, Op::wgmma_wait, 0xffffffffu, "wgmma.wait_group.sync.aligned");
  t->mode = pending_groups;
  suspend(w, t, false);
}

namespace {
void warpgroup_arrive(Worker& w, EmuThread* t, GroupOp op) {
  t->wait = Wait::warpgroup;
  t->group_op = op;
  w.wg_arrived[t->warp] |= lane_bit(t->lane);
  ++w.wg_waiting;
  suspend(w, t, false);
}
} // namespace

void wgmma(float* d, int n, MmaType type, const std::uint32_t* a_regs, std::uint64_t desc_a,
           std::uint64_t desc_b, int scale_d, int scale_a, int scale_b, int trans_a, int trans_b) {
  Worker& w = in_kernel("wgmma.mma_async");
  EmuThread* t = w.current;
  WgmmaArgs& g = t->wg;
  g = WgmmaArgs{};
  g.d = d;
  g.n = n;
  g.type = type;
  g.a_in_regs = a_regs != nullptr;
  if (a_regs != nullptr)
    std::memcpy(g.a, a_regs, sizeof g.a);
  g.desc_a = a_regs != nullptr ? 0 : desc_a;
  g.desc_b = desc_b;
  g.scale_d = scale_d != 0;
  g.scale_a = scale_a;
  g.scale_b = scale_b;
  g.trans_a = trans_a;
  g.trans_b = trans_b;
  warpgroup_arrive(w, t, GroupOp::wgmma);
}

void setmaxnreg(bool inc, unsigned regs) {
  Worker& w = in_kernel("setmaxnreg");
  EmuThread* t = w.current;
  t->wg = WgmmaArgs{};
  t->wg.inc = inc;
  t->wg.regs = regs;
  warpgroup_arrive(w, t, GroupOp::setmaxnreg);
}

} // namespace detail

std::uint64_t seed() {
  return detail::globals().seed;
}
int host_threads() {
  return detail::Pool::get().size();
}
void set_host_threads(int n) {
  detail::Pool::get().resize(n);
}

Stats stats() {
  auto& g = detail::globals();
  return Stats{g.launches.load(), g.blocks.load(), g.threads.load(), g.crossings.load(),
               g.switches.load()};
}

void counters_enable(bool on) {
  detail::counter_log().on.store(on);
}
bool counters_enabled() {
  return detail::counter_log().on.load();
}
void set_dry_run(bool on) {
  detail::counter_log().dry_run.store(on);
}
std::vector<LaunchCounters> counters_take() {
  auto& log = detail::counter_log();
  std::lock_guard<std::mutex> lk(log.m);
  std::vector<LaunchCounters> out;
  out.swap(log.records);
  return out;
}

bool counters_write_json(const char* path, const std::vector<LaunchCounters>& records) {
  std::ofstream f(path);
  if (!f)
    return false;
  f << "[";
  for (std::size_t i = 0; i < records.size(); ++i) {
    const LaunchCounters& r = records[i];
    f << (i ? ",\n " : "\n ") << "{\"kernel\": \"";
    for (const char* c = r.kernel; *c; ++c) // JSON string escapes
      if (*c == '"' || *c == '\\')
        f << '\\' << *c;
      else if (static_cast<unsigned char>(*c) >= 0x20)
        f << *c;
    f << "\", \"grid\": [" << r.grid[0] << ", " << r.grid[1] << ", " << r.grid[2]
      << "], \"block\": [" << r.block[0] << ", " << r.block[1] << ", " << r.block[2] << "]";
    const std::pair<const char*, std::uint64_t> fields[] = {
        {"dynamic_smem", r.dynamic_smem},
        {"blocks", r.blocks},
        {"threads", r.threads},
        {"barriers", r.barriers},
        {"warp_collectives", r.warp_collectives},
        {"mma_instructions", r.mma_instructions},
        {"tensor_macs", r.tensor_macs},
        {"wgmma_instructions", r.wgmma_instructions},
        {"smem_load_requests", r.smem_load_requests},
        {"smem_load_wavefronts", r.smem_load_wavefronts},
        {"smem_load_ideal", r.smem_load_ideal},
        {"smem_store_requests", r.smem_store_requests},
        {"smem_store_wavefronts", r.smem_store_wavefronts},
        {"smem_store_ideal", r.smem_store_ideal},
        {"ldmatrix_requests", r.ldmatrix_requests},
        {"ldmatrix_wavefronts", r.ldmatrix_wavefronts},
        {"ldmatrix_ideal", r.ldmatrix_ideal},
        {"gmem_load_requests", r.gmem_load_requests},
        {"gmem_load_sectors", r.gmem_load_sectors},
        {"gmem_load_bytes", r.gmem_load_bytes},
        {"gmem_store_requests", r.gmem_store_requests},
        {"gmem_store_sectors", r.gmem_store_sectors},
        {"gmem_store_bytes", r.gmem_store_bytes},
        {"cp_async_requests", r.cp_async_requests},
        {"cp_async_bytes", r.cp_async_bytes},
        {"tma_requests", r.tma_requests},
        {"tma_bytes", r.tma_bytes},
        {"tma_first_map_bytes", r.tma_first_map_bytes}};
    for (const auto& [name, value] : fields)
      f << ", \"" << name << "\": " << value;
    f << ", \"accesses_instrumented\": " << (r.accesses_instrumented ? "true" : "false") << "}";
  }
  f << "\n]\n";
  return static_cast<bool>(f);
}

namespace {
// CUDA_EMU_STATS=path: count from the start, write every launch's record there at exit.
struct CountersFromEnvironment {
  CountersFromEnvironment() {
    const char* p = std::getenv("CUDA_EMU_STATS");
    if (p == nullptr || *p == '\0')
      return;
    detail::counter_log().path = p;
    counters_enable(true);
    std::atexit([] {
      auto& log = detail::counter_log();
      std::vector<LaunchCounters> all;
      {
        std::lock_guard<std::mutex> lk(log.m);
        all = log.records;
      }
      if (!counters_write_json(log.path.c_str(), all))
        std::fprintf(stderr, "cuda_emu: cannot write CUDA_EMU_STATS=%s\n", log.path.c_str());
    });
    const char* sp = std::getenv("CUDA_EMU_STATS_SITES");
    if (sp == nullptr || *sp == '\0')
      return;
    detail::counter_log().sites_path = sp;
    detail::counter_log().sites_on = true;
    std::atexit(write_sites);
  }
  // One line per instruction site, the most extra shared wavefronts first, then the most sectors:
  // "module offset shared|global load|store requests wavefronts ideal sectors"; `addr2line -f -C
  // -i -e module offset` names the source line (the counted build has line tables).
  static void write_sites() {
    auto& log = detail::counter_log();
    std::lock_guard<std::mutex> lk(log.m);
    std::vector<std::pair<std::uintptr_t, detail::SiteCounts>> v(log.sites.begin(),
                                                                 log.sites.end());
    std::sort(v.begin(), v.end(), [](const auto& x, const auto& y) {
      const auto ex = x.second.wavefronts - x.second.ideal,
                 ey = y.second.wavefronts - y.second.ideal;
      return ex != ey ? ex > ey : x.second.sectors > y.second.sectors;
    });
    FILE* f = std::fopen(log.sites_path.c_str(), "w");
    if (f == nullptr)
      return;
    for (const auto& [site, sc] : v) {
      Dl_info info{};
      const char* module = "?";
      std::uintptr_t off = site;
      if (dladdr(reinterpret_cast<void*>(site), &info) != 0 && info.dli_fname != nullptr) {
        module = info.dli_fname[0] != '\0' ? info.dli_fname : "/proc/self/exe";
        off = site - reinterpret_cast<std::uintptr_t>(info.dli_fbase);
      }
      // The call's return address: the access is the instruction before it (offset - 1).
      std::fprintf(f, "%s 0x%zx %s %s %llu %llu %llu %llu\n", module, size_t(off - 1),
                   sc.shared ? "shared" : "global", sc.store ? "store" : "load",
                   (unsigned long long)sc.requests, (unsigned long long)sc.wavefronts,
                   (unsigned long long)sc.ideal, (unsigned long long)sc.sectors);
    }
    std::fclose(f);
  }
} counters_from_environment;
} // namespace

const char* function_name(const void* fn) {
  static std::mutex m;
  static auto* cache = new std::unordered_map<const void*, std::string>();
  std::lock_guard<std::mutex> lk(m);
  auto it = cache->find(fn);
  if (it == cache->end())
    it = cache->emplace(fn, detail::lookup_name(fn)).first;
  return it->second.c_str();
}

} // namespace cuda_emu

// The C launch entry points: a kernel is found by address among those a template has seen.
extern "C" cudaError_t cudaLaunchKernel(const void* func, dim3 gridDim, dim3 blockDim, void** args,
                                        size_t sharedMem, cudaStream_t stream) {
  using namespace cuda_emu::detail;
  KernelEntry e{};
  {
    std::lock_guard<std::mutex> lk(registry_mutex());
    auto it = registry().find(func);
    if (it == registry().end()) {
      set_last_error(cudaErrorInvalidDeviceFunction);
      return cudaErrorInvalidDeviceFunction;
    }
    e = it->second;
  }
  void* packed = e.pack(args);
  cudaError_t err = launch(func, e.thunk, packed, gridDim, blockDim, sharedMem, stream);
  e.unpack(packed);
  return err;
}

extern "C" cudaError_t cudaLaunchKernelExC(const cudaLaunchConfig_t* config, const void* func,
                                           void** args) {
  if (config == nullptr) {
    cuda_emu::detail::set_last_error(cudaErrorInvalidValue);
    return cudaErrorInvalidValue;
  }
  return cudaLaunchKernel(func, config->gridDim, config->blockDim, args, config->dynamicSmemBytes,
                          config->stream);
}
