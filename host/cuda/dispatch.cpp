// Dispatch of the CUDA backend (CUB layering: public entry -> this dispatch -> launch templates ->
// kernels).  Builds the kernel-side params from a validated Problem, lays out the workspace,
// chooses the tile configuration, launches, and maps CUDA errors to statuses.  Never allocates,
// never synchronises; everything is queued on the caller's stream.
//
// Workspace (bytes; A(x) = x rounded up to 256; n, m as in the Problem, m = n in self mode):
//   forward, tensor cores (TileConfig::mma and ::wgmma; 128 x 128 tiles, a row_groups x col_splits
//   grid, see forward_split below):
//            = A(4n) + A(4m)            norms (COSINE: inverse norms, NEG_SQ_DIST: squared norms)
//            + A(4n) + A(4n)            per-row loss, per-row validity
//            + A(16 col_splits n)       per-row partials {max2, sum, pos2, npos}, one per split
//            + SYMMETRIC ? A(16 row_groups m) + A(4m) + A(4m) : 0
//                                       per-column partials, one per row group (row_groups <= 128),
//                                       per-column loss, per-column validity
//   forward, FFMA (TileConfig::generic; G = grid_rows, the row-blocks of its main kernel):
//            = A(4n) + A(4m) + A(4n) + A(4n)   as above
//            + SYMMETRIC ? A(20 G m) + A(4m) + A(4m) : 0
//                                       per-block column partials {max, sumexp, possum, npos, nz},
//                                       per-column loss, per-column validity
//   backward = A(4n) + A(4m)            norms
//            + A(4n) + A(4n)            |P(i)|, |Z(i)|
//            + SYMMETRIC ? A(4m) + A(4m) : 0      column counts
//            + A(12n)                   per-row {lse, weight, 1/|P|}
//            + SYMMETRIC ? A(12m) : 0   per-column stats
//            + A(4 ceil(n / 64) S_a)    grad_logit_scale partials (one per block of the rows
//            launch)
//            + tensor cores, when a launch has column splits (grad_splits below; S_a for the rows
//              launch, S_b for the columns launch): A(4 d max(S_a n, S_b m)) + A(8 max(..))
//                                       the split blocks' accumulators and row sums
// FFMA forward: G = ceil(n / 64) for ROWS (no column partials), min(ceil(n / 64), SM count) for
// SYMMETRIC (the main kernel's 256 threads x 114-163 registers, ptxas -v with CUDA 13.0, allow 1-2
// resident blocks per SM: at most half the occupancy is traded for half the memory).  The symmetric
// forward thus needs at most 20 x SMs x m bytes of column partials: O(n + m) for a given device
// (H100/H200, 132 SMs: 2640 m bytes, e.g. 173 MB at m = 65536, 1% of the naive n x m f32 logits).
// The LSEs (row_lse: 4n, col_lse: 4m) are caller-owned outputs.
#ifndef CUDA_EMU
#include <cuda_runtime.h>
#endif

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "host/backend.h"
#include "host/error.h"
#include "kernels/loss_launch.h"

namespace flashnce {
namespace cuda_backend {
namespace {

using kernels::BackwardParams;
using kernels::ForwardParams;
using kernels::LaunchResult;
using kernels::ProblemParams;
using kernels::TileConfig;

constexpr size_t kAlign = 256;
constexpr size_t align_up(size_t x) {
  return (x + kAlign - 1) / kAlign * kAlign;
}

// The tile configuration for (arch, dtype, d, allow_tf32):
//   - bf16 / f16 on sm_80+: tensor cores (mma.sync m16n8k16, f32 accumulation): the forward on
//     128 x 128 tiles (ForwardMmaTraits), the gradient kernel on 64 x 128 (BackwardMmaTraits);
//   - f32 with allow_tf32 on sm_80+: the same on TF32 m16n8k8;
//   - otherwise (exact f32, or an older arch): the generic FFMA configuration (64 x 64 tiles).
// d does not change the choice (it sets the gradient kernel's pass width at launch, from the
// device's shared memory: kernels/loss/loss_launch.cuh).  No GPU
// measurement exists yet (none was available to this work): the choice rests on tensor-core vs FFMA
// peak throughput, not on a benchmark, and is to be revisited with bench/ results.
constexpr TileConfig select_config(int arch, fnceDataType_t dtype, int64_t /*d*/, bool tf32) {
  if (arch < 80)
    return TileConfig::generic;
  if (dtype == FNCE_F32)
    return tf32 ? TileConfig::mma : TileConfig::generic;
  return TileConfig::mma;
}
static_assert(select_config(80, FNCE_BF16, 128, false) == TileConfig::mma, "bf16 on tensor cores");
static_assert(select_config(90, FNCE_F32, 128, false) == TileConfig::generic,
              "exact f32 by default");
static_assert(select_config(90, FNCE_F32, 128, true) == TileConfig::mma, "TF32 when allowed");
static_assert(select_config(75, FNCE_F16, 128, false) == TileConfig::generic,
              "no mma.sync before sm_80");

fnceStatus_t cuda_failure(const char* what, cudaError_t e) {
  (void)cudaGetLastError(); // clear a non-sticky error so that later calls start clean
  return fail(FNCE_ERROR_CUDA, "%s failed: %s (%s)", what, cudaGetErrorName(e),
              cudaGetErrorString(e));
}

struct Device {
  int arch = 0; // 10 * major + minor
  int sm_count = 1;
  size_t smem_optin = 48 * 1024; // opt-in shared memory per block
};

fnceStatus_t query_device(Device* dev) {
  int id = 0, major = 0, minor = 0, sms = 0;
  if (cudaError_t e = cudaGetDevice(&id); e != cudaSuccess)
    return cuda_failure("cudaGetDevice", e);
  if (cudaError_t e = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, id);
      e != cudaSuccess)
    return cuda_failure("cudaDeviceGetAttribute(major)", e);
  if (cudaError_t e = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, id);
      e != cudaSuccess)
    return cuda_failure("cudaDeviceGetAttribute(minor)", e);
  if (cudaError_t e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, id);
      e != cudaSuccess)
    return cuda_failure("cudaDeviceGetAttribute(multiProcessorCount)", e);
  int optin = 0;
  if (cudaError_t e = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, id);
      e != cudaSuccess)
    return cuda_failure("cudaDeviceGetAttribute(maxSharedMemoryPerBlockOptin)", e);
  dev->arch = 10 * major + minor;
  dev->sm_count = sms > 0 ? sms : 1;
  dev->smem_optin = optin > 0 ? size_t(optin) : dev->smem_optin;
  return FNCE_SUCCESS;
}

TileConfig config_for(const Problem& pr, const Device& dev) {
  return select_config(dev.arch, pr.p.dtype, pr.p.d, pr.p.allow_tf32 != 0);
}

// The forward's configuration: the Hopper kernel (TileConfig::wgmma) on compute capability 9.0
// when the library carries sm_90a code (FLASHNCE_HAVE_SM90A; the emulator always does) and TMA can
// take the operands: 16-byte aligned bases and row pitches, 32-bit tile coordinates.  Anything
// else keeps config_for's (a misaligned input works, on the mma.sync kernel).  The backward
// likewise (backward_config_for: bf16 only, and only where the experimental Hopper gradient kernel
// is enabled); the wgmma configuration shares the tensor-core one's tiles, splits and workspace.
bool tma_operand(const void* base, int64_t ld, size_t element_bytes) {
  return reinterpret_cast<uintptr_t>(base) % 16 == 0 && (uint64_t(ld) * element_bytes) % 16 == 0 &&
         uint64_t(ld) * element_bytes < (uint64_t{1} << 40);
}
TileConfig forward_config_for(const Problem& pr, const Device& dev) {
  const TileConfig c = config_for(pr, dev);
#if FLASHNCE_HAVE_SM90A
  const fnceLossParams& p = pr.p;
  constexpr int64_t kCoordLimit = (int64_t{1} << 31) - 256; // row0 + box rows, chunk + box cols
  if (c == TileConfig::mma && dev.arch == 90 && (p.dtype == FNCE_BF16 || p.dtype == FNCE_F16) &&
      p.n < kCoordLimit && p.m < kCoordLimit && p.d < kCoordLimit && tma_operand(p.a, p.lda, 2) &&
      tma_operand(p.b, p.ldb, 2))
    return TileConfig::wgmma;
#endif
  return c;
}

// The Hopper gradient kernel (grad_wgmma_kernel) is experimental: builds defining
// FLASHNCE_WGMMA_BACKWARD take it (the emulated test library flashnce_emu, so that the emulated
// kernel suite keeps it correct), and so does a GPU build when the environment variable
// FLASHNCE_EXPERIMENTAL_WGMMA_BACKWARD is 1 at the first backward call (read once: the workspace
// size and the backward then agree), so that scripts/device-check.sh can measure it against the
// mma.sync kernel on a Hopper GPU without a second build.  Not the default: its sm_90a code
// still spills (88 B) and no GPU has run it yet (bench/RESULTS.md).
bool wgmma_backward_enabled() {
#if defined(FLASHNCE_WGMMA_BACKWARD)
  return true;
#else
  static const bool on = [] {
    const char* v = std::getenv("FLASHNCE_EXPERIMENTAL_WGMMA_BACKWARD");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }();
  return on;
#endif
}
TileConfig backward_config_for(const Problem& pr, const Device& dev) {
  const TileConfig c = forward_config_for(pr, dev);
  if (c != TileConfig::wgmma)
    return c;
  const bool take = wgmma_backward_enabled() && pr.p.dtype == FNCE_BF16 &&
                    pr.p.d <= kernels::kWgmmaBackwardMaxDepth;
  return take ? c : TileConfig::mma;
}

bool symmetric(const Problem& pr) {
  return pr.p.direction == FNCE_DIRECTION_SYMMETRIC;
}

int64_t row_tiles(const Problem& pr, TileConfig c) {
  const int64_t bm = kernels::tile_shape(c).block_m;
  return (pr.p.n + bm - 1) / bm;
}

// The tensor-core forward's work split: row_groups x col_splits blocks, block (g, s) running row
// tiles g, g + row_groups, .. over column split s.  It aims at kForwardBlocks blocks, a constant
// (4 waves of one block per SM on a 132-SM H100 / H200), never the device's SM count: the partial
// statistics, and so the results, are then the same on every GPU.  ROWS keeps one group per row
// tile (no column partials); SYMMETRIC at most kMaxColumnGroups groups (its column partials take
// 16 row_groups m bytes).  E.g. n = m = 4096 ROWS: 32 x 16 blocks (2 column tiles each); n = m =
// 65536: 512 x 1; CLIP n = m = 65536: 128 x 4 (128 MB of column partials); MoCo n = 256,
// m = 65536: 2 x 264.
constexpr int64_t kForwardBlocks = 528;
constexpr int64_t kMaxColumnGroups = 128;
struct ForwardSplit {
  int32_t row_groups, col_splits;
};
constexpr ForwardSplit forward_split(int64_t n, int64_t m, bool symmetric) {
  const kernels::TileShape t = kernels::forward_tile_shape(TileConfig::mma);
  const int64_t row_tiles = (n + t.block_m - 1) / t.block_m;
  const int64_t col_tiles = (m + t.block_n - 1) / t.block_n;
  const int64_t groups = symmetric && row_tiles > kMaxColumnGroups ? kMaxColumnGroups : row_tiles;
  int64_t splits = kForwardBlocks / groups;
  splits = splits > col_tiles ? col_tiles : splits;
  return ForwardSplit{int32_t(groups), int32_t(splits < 1 ? 1 : splits)};
}
static_assert(forward_split(4096, 4096, false).row_groups == 32 &&
                  forward_split(4096, 4096, false).col_splits == 16 &&
                  forward_split(65536, 65536, false).col_splits == 1 &&
                  forward_split(65536, 65536, true).row_groups == 128 &&
                  forward_split(65536, 65536, true).col_splits == 4 &&
                  forward_split(256, 65536, false).col_splits == 264 &&
                  forward_split(1, 1, true).row_groups == 1 &&
                  forward_split(1, 1, true).col_splits == 1,
              "the splits documented above");
#if defined(FLASHNCE_EMULATED)
ForwardSplit g_forward_split_for_testing{0, 0}; // (tests: set_forward_split_for_testing)
#endif
ForwardSplit forward_split_of(const Problem& pr) {
  ForwardSplit sp = forward_split(pr.p.n, pr.p.m, symmetric(pr));
#if defined(FLASHNCE_EMULATED)
  const ForwardSplit t = g_forward_split_for_testing;
  if (t.row_groups > 0 && t.col_splits > 0) {
    const kernels::TileShape ts = kernels::forward_tile_shape(TileConfig::mma);
    const int64_t rt = (pr.p.n + ts.block_m - 1) / ts.block_m;
    const int64_t ct = (pr.p.m + ts.block_n - 1) / ts.block_n;
    sp.row_groups = int32_t(t.row_groups < rt ? t.row_groups : rt);
    sp.col_splits = int32_t(t.col_splits < ct ? t.col_splits : ct);
  }
#endif
  return sp;
}

int32_t grid_rows(const Problem& pr, TileConfig c, const Device& dev) {
  const int64_t tiles = row_tiles(pr, c);
  if (!symmetric(pr))
    return static_cast<int32_t>(tiles);
  const int64_t bound = static_cast<int64_t>(dev.sm_count);
  return static_cast<int32_t>(tiles < bound ? tiles : bound);
}

// Carves the workspace in the order of the formula above; with base == nullptr it only measures.
class Carver {
public:
  explicit Carver(void* base) : base_(static_cast<char*>(base)) {}
  template <typename T> T* take(size_t count) {
    T* p = base_ ? reinterpret_cast<T*>(base_ + used_) : nullptr;
    used_ += align_up(count * sizeof(T));
    return p;
  }
  size_t used() const { return used_; }

private:
  char* base_;
  size_t used_ = 0;
};

ProblemParams problem_params(const Problem& pr, Carver& ws) {
  const fnceLossParams& p = pr.p;
  ProblemParams k{};
  k.a = p.a;
  k.b = p.b;
  k.lda = p.lda;
  k.ldb = p.ldb;
  k.n = p.n;
  k.m = p.m;
  k.d = p.d;
  k.logit_scale = p.logit_scale;
  k.similarity = static_cast<kernels::Similarity>(p.similarity);
  k.positives = static_cast<kernels::Positives>(p.positives);
  k.targets = p.targets;
  k.labels_a = p.labels_a;
  k.labels_b = p.labels_b;
  k.exclude_self = p.exclude_self ? 1 : 0;
  k.negatives_only = p.normalizer == FNCE_NORMALIZER_NEGATIVES ? 1 : 0;
  k.symmetric = symmetric(pr) ? 1 : 0;
  k.self_mode = pr.self_mode ? 1 : 0;
  k.reduction = static_cast<kernels::Reduction>(p.reduction);
  k.norm_a = ws.take<float>(static_cast<size_t>(p.n));
  k.norm_b = ws.take<float>(static_cast<size_t>(p.m));
  if (pr.self_mode)
    k.norm_b = k.norm_a; // the pre-pass fills only a's norms
  return k;
}

ForwardParams forward_params(const Problem& pr, TileConfig c, const Device& dev, void* workspace,
                             size_t* bytes) {
  Carver ws(workspace);
  ForwardParams f{};
  f.pr = problem_params(pr, ws);
  const size_t n = static_cast<size_t>(pr.p.n), m = static_cast<size_t>(pr.p.m);
  f.row_loss = ws.take<float>(n);
  f.row_valid = ws.take<int32_t>(n);
  if (c == TileConfig::mma || c == TileConfig::wgmma) { // the same 128 x 128 tiles
    const ForwardSplit sp = forward_split_of(pr);
    f.row_groups = sp.row_groups;
    f.col_splits = sp.col_splits;
    f.row_partial = ws.take<kernels::PartialStats>(static_cast<size_t>(sp.col_splits) * n);
    if (symmetric(pr)) {
      f.col_partial_rows = ws.take<kernels::PartialStats>(static_cast<size_t>(sp.row_groups) * m);
      f.col_loss = ws.take<float>(m);
      f.col_valid = ws.take<int32_t>(m);
    }
  } else {
    f.grid_rows = grid_rows(pr, c, dev);
    if (symmetric(pr)) {
      f.col_partial = ws.take<kernels::Stats>(static_cast<size_t>(f.grid_rows) * m);
      f.col_loss = ws.take<float>(m);
      f.col_valid = ws.take<int32_t>(m);
    }
  }
  *bytes = ws.used();
  return f;
}

// The tensor-core gradient kernel's column splits for a launch with R rows against C columns: as
// many as fill kGradBlocks blocks (a constant, never the device's SM count: the results are the
// same on every GPU), at most one per column tile; 1 when the row tiles alone fill it.  Their
// partials take splits x R x d f32, and splits x R <= kGradBlocks x 64: at most 67584 d bytes
// (35 MB at d = 512).  E.g. MoCo n = 256, m = 65536: the rows launch 4 x 66 blocks, the columns
// launch 1024 x 1; n = m = 4096: 64 x 4; n = m = 16384: 256 x 1.
constexpr int64_t kGradBlocks = 264;
constexpr int32_t grad_splits(int64_t rows, int64_t cols) {
  const kernels::TileShape t = kernels::tile_shape(TileConfig::mma);
  const int64_t row_tiles = (rows + t.block_m - 1) / t.block_m;
  const int64_t col_tiles = (cols + t.block_n - 1) / t.block_n;
  int64_t s = row_tiles >= kGradBlocks ? 1 : kGradBlocks / row_tiles;
  s = s > col_tiles ? col_tiles : s;
  return int32_t(s < 1 ? 1 : s);
}
static_assert(grad_splits(256, 65536) == 66 && grad_splits(65536, 256) == 1 &&
                  grad_splits(4096, 4096) == 4 && grad_splits(16384, 16384) == 1 &&
                  grad_splits(1, 1) == 1,
              "the splits documented above");

BackwardParams backward_params(const Problem& pr, TileConfig c, void* workspace, size_t* bytes) {
  Carver ws(workspace);
  BackwardParams b{};
  b.pr = problem_params(pr, ws);
  const size_t n = static_cast<size_t>(pr.p.n), m = static_cast<size_t>(pr.p.m);
  b.row_npos = ws.take<int32_t>(n);
  b.row_nz = ws.take<int32_t>(n);
  if (symmetric(pr)) {
    b.col_npos = ws.take<int32_t>(m);
    b.col_nz = ws.take<int32_t>(m);
  }
  b.row_stats = ws.take<kernels::GradStats>(n);
  if (symmetric(pr))
    b.col_stats = ws.take<kernels::GradStats>(m);
  b.splits_rows = b.splits_cols = 1;
  if (c == TileConfig::mma || c == TileConfig::wgmma) {
    b.splits_rows = grad_splits(pr.p.n, pr.p.m);
    b.splits_cols = pr.self_mode ? 1 : grad_splits(pr.p.m, pr.p.n);
  }
  b.scale_partial = ws.take<float>(static_cast<size_t>(row_tiles(pr, c) * b.splits_rows));
  // (the largest of the two launches' partials: they run one after the other)
  const size_t d = static_cast<size_t>(pr.p.d);
  const size_t rows_a = b.splits_rows > 1 ? size_t(b.splits_rows) * n : 0;
  const size_t rows_b = b.splits_cols > 1 ? size_t(b.splits_cols) * m : 0;
  const size_t rows_p = rows_a > rows_b ? rows_a : rows_b;
  if (rows_p > 0) {
    b.grad_partial = ws.take<float>(rows_p * d);
    b.sum_partial = ws.take<float>(rows_p * 2);
  }
  *bytes = ws.used();
  return b;
}

fnceStatus_t launch_failure(const LaunchResult& r) {
  return cuda_failure(r.what, r.error);
}

template <template <typename> class Traits>
LaunchResult run_forward_dtype(fnceDataType_t t, const ForwardParams& f, cudaStream_t s) {
  switch (t) {
  case FNCE_F32:
    return kernels::run_forward<Traits<float>>(f, s);
  case FNCE_F16:
    return kernels::run_forward<Traits<kernels::half_t>>(f, s);
  case FNCE_BF16:
    return kernels::run_forward<Traits<kernels::bfloat16_t>>(f, s);
  }
  return LaunchResult{cudaErrorInvalidValue, "dtype"};
}

#if FLASHNCE_HAVE_SM90A
// The Hopper forward: 16-bit inputs only (forward_config_for).
LaunchResult run_forward_wgmma_dtype(fnceDataType_t t, const ForwardParams& f, cudaStream_t s) {
  if (t == FNCE_F16)
    return kernels::run_forward<kernels::WgmmaTraits<kernels::half_t>>(f, s);
  if (t == FNCE_BF16)
    return kernels::run_forward<kernels::WgmmaTraits<kernels::bfloat16_t>>(f, s);
  return LaunchResult{cudaErrorInvalidValue, "dtype"};
}
#endif

template <template <typename> class Traits>
LaunchResult run_backward_dtype(fnceDataType_t t, const BackwardParams& b, size_t smem_optin,
                                cudaStream_t s) {
  switch (t) {
  case FNCE_F32:
    return kernels::run_backward<Traits<float>>(b, smem_optin, s);
  case FNCE_F16:
    return kernels::run_backward<Traits<kernels::half_t>>(b, smem_optin, s);
  case FNCE_BF16:
    return kernels::run_backward<Traits<kernels::bfloat16_t>>(b, smem_optin, s);
  }
  return LaunchResult{cudaErrorInvalidValue, "dtype"};
}

} // namespace

fnceStatus_t forward_workspace_size(const Problem& pr, size_t* bytes) {
  Device dev;
  if (fnceStatus_t st = query_device(&dev); st != FNCE_SUCCESS)
    return st;
  (void)forward_params(pr, forward_config_for(pr, dev), dev, nullptr, bytes);
  return FNCE_SUCCESS;
}

fnceStatus_t backward_workspace_size(const Problem& pr, size_t* bytes) {
  Device dev;
  if (fnceStatus_t st = query_device(&dev); st != FNCE_SUCCESS)
    return st;
  (void)backward_params(pr, backward_config_for(pr, dev), nullptr, bytes);
  return FNCE_SUCCESS;
}

fnceStatus_t forward(const Problem& pr, float* loss, float* row_lse, float* col_lse,
                     void* workspace, size_t workspace_bytes, void* stream) {
  Device dev;
  if (fnceStatus_t st = query_device(&dev); st != FNCE_SUCCESS)
    return st;
  const TileConfig c = forward_config_for(pr, dev);
  size_t needed = 0;
  ForwardParams f = forward_params(pr, c, dev, workspace, &needed);
  if (workspace_bytes < needed) // the API layer checked the same formula; a guard, not a path
    return fail(FNCE_ERROR_WORKSPACE_TOO_SMALL, "workspace_bytes must be >= %zu, got %zu", needed,
                workspace_bytes);
  f.loss = loss;
  f.row_lse = row_lse;
  f.col_lse = symmetric(pr) ? col_lse : nullptr;
  if (pr.p.reduction == FNCE_REDUCTION_NONE) { // per-row (and per-column) losses are the output
    f.row_loss = loss;
    if (symmetric(pr))
      f.col_loss = loss + pr.p.n;
  }
  const auto st = static_cast<cudaStream_t>(stream);
  LaunchResult r;
#if FLASHNCE_HAVE_SM90A
  if (c == TileConfig::wgmma)
    r = run_forward_wgmma_dtype(pr.p.dtype, f, st);
  else
#endif
    r = c == TileConfig::mma ? run_forward_dtype<kernels::MmaTraits>(pr.p.dtype, f, st)
                             : run_forward_dtype<kernels::GenericTraits>(pr.p.dtype, f, st);
  return r.error == cudaSuccess ? FNCE_SUCCESS : launch_failure(r);
}

fnceStatus_t backward(const Problem& pr, const float* row_lse, const float* col_lse,
                      const float* grad_loss, void* grad_a, void* grad_b, float* grad_logit_scale,
                      void* workspace, size_t workspace_bytes, void* stream) {
  Device dev;
  if (fnceStatus_t st = query_device(&dev); st != FNCE_SUCCESS)
    return st;
  const TileConfig c = backward_config_for(pr, dev);
  size_t needed = 0;
  BackwardParams b = backward_params(pr, c, workspace, &needed);
  if (workspace_bytes < needed)
    return fail(FNCE_ERROR_WORKSPACE_TOO_SMALL, "workspace_bytes must be >= %zu, got %zu", needed,
                workspace_bytes);
  b.row_lse = row_lse;
  b.col_lse = symmetric(pr) ? col_lse : nullptr;
  b.grad_loss = grad_loss;
  b.grad_a = grad_a;
  b.grad_b = pr.self_mode ? nullptr : grad_b;
  b.grad_logit_scale = grad_logit_scale;
  if (grad_a == nullptr && b.grad_b == nullptr && grad_logit_scale == nullptr)
    return FNCE_SUCCESS;
  const auto st = static_cast<cudaStream_t>(stream);
  LaunchResult r;
#if FLASHNCE_HAVE_SM90A
  if (c == TileConfig::wgmma) // (bf16: backward_config_for)
    r = kernels::run_backward<kernels::WgmmaTraits<kernels::bfloat16_t>>(b, dev.smem_optin, st);
  else
#endif
    r = c == TileConfig::mma
            ? run_backward_dtype<kernels::MmaTraits>(pr.p.dtype, b, dev.smem_optin, st)
            : run_backward_dtype<kernels::GenericTraits>(pr.p.dtype, b, dev.smem_optin, st);
  return r.error == cudaSuccess ? FNCE_SUCCESS : launch_failure(r);
}

#if defined(FLASHNCE_EMULATED)
void set_forward_split_for_testing(int32_t row_groups, int32_t col_splits) {
  g_forward_split_for_testing = ForwardSplit{row_groups, col_splits};
}
#endif

} // namespace cuda_backend
} // namespace flashnce
