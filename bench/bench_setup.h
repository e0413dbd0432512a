// Shared pieces of the benchmark harness: the losses measured, the shape sets, the options.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "flashnce/flashnce.h"

namespace flashnce::bench {

// The four losses of issue 5, each as users configure it (all DOT similarity, MEAN).
enum class LossKind {
  InfoNce,  // DIAGONAL positives, normaliser ALL, ROWS
  Clip,     // DIAGONAL, ALL, SYMMETRIC
  NtXent,   // self mode (b = NULL), VIEW_PAIRS, ALL, ROWS (the diagonal is masked)
  VaePrior, // DIAGONAL, NEGATIVES, ROWS
};
inline constexpr LossKind kAllLosses[] = {LossKind::InfoNce, LossKind::Clip, LossKind::NtXent,
                                          LossKind::VaePrior};

const char* loss_name(LossKind k);
const char* dtype_name(fnceDataType_t t);
inline size_t dtype_bytes(fnceDataType_t t) {
  return t == FNCE_F32 ? 4 : 2;
}
inline bool is_self_mode(LossKind k) {
  return k == LossKind::NtXent;
}

// Sets positives / normalizer / direction (not the pointers; b stays as given unless self mode,
// where the caller must pass b = NULL).
void configure_loss(fnceLossParams* p, LossKind k);

// FLOPs of one GEMM-equivalent of the shape: 2·n·m·d (forward = 1, forward+backward = 3).
inline double gemm_flop(int64_t n, int64_t m, int64_t d) {
  return 2.0 * double(n) * double(m) * double(d);
}

struct Shape {
  LossKind loss;
  fnceDataType_t dtype;
  int64_t n; // = m
  int64_t d;
};

struct Options {
  bool full = false;   // --fnce_full: the whole matrix (4 losses × 3 dtypes × n × d)
  bool smoke = false;  // --fnce_smoke: one tiny CPU shape, one iteration (CTest)
  bool strict = false; // --fnce_strict: a skipped naive / GEMM / CPU row fails the run
  bool cpu = false;    // --fnce_cpu: CPU reference rows even when a GPU is present
  int64_t max_n = 0;   // --fnce_max_n=N: drop shapes with n > N (0: no limit)
  int64_t n = 0;       // --fnce_n=N: instead of the shape sets, every loss at n = m = N …
  int64_t d = 0;       // --fnce_d=D: … and d = D (default 512) …
  fnceDataType_t dtype = FNCE_BF16; // --fnce_dtype=bf16|f16|f32: … in this dtype
  std::string csv;                  // --fnce_csv=PATH: results as CSV (what device-check merges)
  std::string table;                // --fnce_table=PATH: the compact table as Markdown
  std::string title;                // --fnce_title=TEXT: the heading of the table
  std::vector<std::string> merge; // --fnce_merge=A.csv,B.csv: print the table of CSVs, run nothing
  bool user_repetitions = false;  // --benchmark_repetitions given: keep it (default here: 3)
  bool user_min_time = false;     // --benchmark_min_time given: keep it (default here: 0.05 s)
};

// GPU shapes: a default set that runs in a couple of minutes on an H100/H200, or the full matrix.
std::vector<Shape> gpu_shapes(const Options& o);
// CPU reference shapes: small (the f64 reference is O(n·m·d) scalar loops).
std::vector<Shape> cpu_shapes(const Options& o);
// The host backend's rows: training-sized f32 problems (n = 1024, 4096; d = 256).
std::vector<Shape> host_shapes(const Options& o);

void register_cpu_benchmarks(const Options& o);
#if defined(FLASHNCE_BENCH_GPU)
// Registers the GPU rows; false (with the reason) when there is no usable device.
bool register_gpu_benchmarks(const Options& o, std::string* why_not);
#endif

// Fills `count` elements of `dtype` at `dst` (host memory) with reproducible values of size
// ~1/sqrt(d) (what normalised embeddings look like), rounded to the dtype.
void fill_host_inputs(void* dst, int64_t count, fnceDataType_t dtype, uint64_t seed, int64_t d);

} // namespace flashnce::bench
