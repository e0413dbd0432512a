// The host backend (FNCE_BACKEND_HOST): every loss of the contract in f32 on the CPU, block by
// block, never n x m.
//
// Math (DESIGN.md §1; the reference's notation, host/reference/reference.cpp):
//   s_ij = scale . sim(x_i, y_j), one Br x Bc block at a time: a GEMM X_blk . Y_blk^T (BLAS sgemm,
//   host/blas/sgemm.h), then the similarity from the dot product (COSINE: . 1/|x_i| . 1/|y_j|;
//   NEG_SQ_DIST: 2 x.y - |x|^2 - |y|^2) and the epilogue on the block while it is in cache.
//   Forward: the online LSE per line over Z (block max, block sum of exp(s - max), merged in
//   double), the positives' logit sum.  Backward: G_ij = dL/ds_ij from the saved LSEs, then
//   grad_x += G . Y (the second GEMM, COSINE's G scaled by 1/|y_j| first) and the per-line sums
//   Σ_j G_ij sim_ij (COSINE's projection, grad_logit_scale) and Σ_j G_ij (NEG_SQ_DIST).
//
// Work split: a task is one block of Br lines of one side ("row" tasks own rows of a and sweep all
// of b; "column" tasks own rows of b and sweep a, the transposed problem), so that each output
// line (LSE, loss, gradient row) is written by exactly one task, summed over the other side's
// blocks in a fixed order.  Tasks run on OpenMP threads in any order; nothing depends on which
// thread ran what or how many there are: results are bitwise the same for any thread count.
// Costs: ROWS forward 2nmd flops, SYMMETRIC 4nmd (the column statistics are a second sweep);
// backward 4nmd per side with a gradient asked for (grad_a: row sweep, grad_b: column sweep; self
// mode runs both into grad_a).
//
// Positives and normaliser are one rule for every positives mode: line r of side X is positive
// with line c of side Y iff key_X[r] == key_Y[c] (and not excluded), with keys DIAGONAL i | j,
// TARGETS targets[i] | j, LABELS labels_a[i] | labels_b[j], VIEW_PAIRS (i + n/2) mod n | j; Z(i)
// drops j = i under exclude_self and the positives under NEGATIVES.  The counts |P| and |Z| come
// from the keys alone (sorted copies, binary search): O((n + m) log) before any block.
//
// Memory: the caller's workspace only (no allocation): O(n + m) per-line arrays, and per thread one
// logit block, an f32 copy of the two operand blocks (16-bit inputs, or strides past INT_MAX) and,
// in backward, the Br x d gradient block.  Indices are int64_t; BLAS sees block sizes only.
//
// Numerical hazards, each handled where it arises: exp never sees s - max with max = -inf (a
// block whose Z entries are all -inf adds nothing); a NaN in Z makes the line's LSE NaN; a saved
// LSE of -inf on a valid line makes its softmax NaN (never -inf - -inf); invalid lines add exactly
// 0 (a select, not a multiplication by 0, which would turn inf into NaN); exp of excluded entries,
// which may overflow, is masked by selection.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>

#if defined(FLASHNCE_HAVE_OPENMP)
#include <omp.h>
#endif
#include <new>
#include <thread>

#include "host/backend.h"
#include "host/blas/sgemm.h"
#include "host/blas/vector_math.h"
#include "host/dtype.h"
#include "host/error.h"

namespace flashnce {
namespace host_backend {
namespace {

// Block sizes: a task owns kRows lines and sweeps the other side kCols lines at a time.  With
// d = 256 a thread's blocks (logits 128 KB, operands 128 + 256 KB, gradient 128 KB) fit a 2 MB
// L2.  Fixed, never a function of the thread count (that would change the summation order).
constexpr int kRows = 128;
constexpr int kCols = 256;
constexpr int kLanes = 16; // epilogue reductions run in 16 fixed lanes (vectorisable, same order
                           // for every instruction set)
static_assert(kCols % kLanes == 0, "a block row is a whole number of lane groups");

constexpr float kInfF = std::numeric_limits<float>::infinity();
constexpr float kNaNF = std::numeric_limits<float>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kCosineEps = 1e-12; // as the reference

int max_threads() {
#if defined(FLASHNCE_HAVE_OPENMP)
  return std::max(1, omp_get_max_threads());
#else
  return 1;
#endif
}

// ---- workspace layout ---------------------------------------------------------------------------
// Every array 64-byte aligned inside the caller's buffer; the same function sizes and carves it.
class Carver {
public:
  explicit Carver(char* base) : base_(base) {}
  template <typename T> T* take(int64_t count) {
    offset_ = (offset_ + 63) / 64 * 64;
    T* p = base_ ? reinterpret_cast<T*>(base_ + offset_) : nullptr;
    offset_ += static_cast<size_t>(count) * sizeof(T);
    return p;
  }
  size_t size() const { return offset_ + 64; } // + slack for the caller's base alignment

private:
  char* base_;
  size_t offset_ = 0;
};

// One side of the problem: side A = a's rows (the loss rows), side B = b's rows (the columns).
struct Side {
  const void* x = nullptr;
  int64_t ld = 0, count = 0;
  bool direct = false; // f32 with a stride BLAS takes: blocks are read in place
  int64_t* key = nullptr;
  int64_t* sorted = nullptr; // keys, sorted (counting the other side's positives)
  int64_t* p_count = nullptr;
  int64_t* z_count = nullptr;
  float* aux = nullptr; // COSINE: 1 / max(|x|, eps); NEG_SQ_DIST: |x|^2
  float* cx = nullptr;  // COSINE: aux^2 where |x| > eps, else 0 (the projection's coefficient)
  // forward
  double* lse = nullptr;
  double* pos_sum = nullptr;
  double* run_max = nullptr; // the column statistics merged across row tasks (SYMMETRIC)
  double* run_sum = nullptr;
  uint8_t* run_nan = nullptr;
  // backward, one-pass mode: the column side's Σ G sim and Σ G, merged across row tasks
  double* rs_acc = nullptr;
  double* gs_acc = nullptr;
  // backward: per-line coefficients of G (valid lines only; see make_coefficients)
  float* blse = nullptr;   // the saved LSE, NaN where it is -inf on a valid line
  float* w = nullptr;      // dL/dl of the line; NaN for a poisoned row
  float* winv = nullptr;   // 1 / |P|
  float* active = nullptr; // 1 for a valid (or poisoned) line, 0 for a line that adds nothing
};

struct Scratch {
  float* logits;  // kRows x kCols
  float* logits2; // kRows x kCols: the positives' logits (forward), G / |x| (COSINE backward)
  float* own;     // kRows x d (f32 copy of the task's lines when not direct)
  float* other;   // kCols x d
  float* grad;    // kRows x d (backward)
  double* rs;     // kRows: Σ G sim
  double* gs;     // kRows: Σ G
  // the other side's per-block vectors, padded to kCols
  int64_t* key;
  float *aux, *blse, *w, *winv, *active;
  float *col_a, *col_b, *col_c; // per-column partials of a block (kCols each)
};

struct Plan {
  const Problem* pr = nullptr;
  int64_t n = 0, m = 0, d = 0;
  bool symmetric = false, backward = false;
  Side A, B;
  double* task_scale = nullptr; // per task: its Σ G sim (grad_logit_scale, summed in task order)
  // One turnstile per column block: the row task whose turn it is to merge its partials into
  // that block's shared column arrays (row tasks merge in task order: deterministic).
  std::atomic<int64_t>* turns = nullptr;
  Scratch* scratch = nullptr; // per thread
  int threads = 1;
};

int64_t blocks(int64_t count) {
  return (count + kRows - 1) / kRows;
}

bool fits_int(int64_t v) {
  return v >= 0 && v <= std::numeric_limits<int>::max();
}

// Lays out the workspace for `threads` threads; with base == nullptr only measures it.
size_t layout(const Problem& pr, bool backward, int threads, char* base, Plan* plan) {
  const fnceLossParams& p = pr.p;
  const int64_t n = p.n, m = p.m, d = p.d;
  Carver cv(base);
  Plan pl;
  pl.pr = &pr;
  pl.n = n;
  pl.m = m;
  pl.d = d;
  pl.symmetric = p.direction == FNCE_DIRECTION_SYMMETRIC;
  pl.backward = backward;
  pl.threads = threads;
  for (int s = 0; s < 2; ++s) {
    Side& sd = s == 0 ? pl.A : pl.B;
    const int64_t count = s == 0 ? n : m;
    sd.x = s == 0 ? p.a : p.b;
    sd.ld = s == 0 ? p.lda : p.ldb;
    sd.count = count;
    sd.direct = p.dtype == FNCE_F32 && fits_int(sd.ld);
    sd.key = cv.take<int64_t>(count);
    sd.sorted = cv.take<int64_t>(count);
    sd.p_count = cv.take<int64_t>(count);
    sd.z_count = cv.take<int64_t>(count);
    sd.aux = cv.take<float>(count);
    sd.cx = cv.take<float>(count);
    if (!backward) {
      sd.lse = cv.take<double>(count);
      sd.pos_sum = cv.take<double>(count);
      sd.run_max = cv.take<double>(count);
      sd.run_sum = cv.take<double>(count);
      sd.run_nan = cv.take<uint8_t>(count);
    } else {
      sd.rs_acc = cv.take<double>(count);
      sd.gs_acc = cv.take<double>(count);
      sd.blse = cv.take<float>(count);
      sd.w = cv.take<float>(count);
      sd.winv = cv.take<float>(count);
      sd.active = cv.take<float>(count);
    }
  }
  pl.task_scale = cv.take<double>(blocks(n) + blocks(m));
  pl.turns = cv.take<std::atomic<int64_t>>((m + kCols - 1) / kCols);
  pl.scratch = cv.take<Scratch>(threads);
  for (int t = 0; t < threads; ++t) {
    Scratch sc;
    sc.logits = cv.take<float>(int64_t(kRows) * kCols);
    sc.logits2 = cv.take<float>(int64_t(kRows) * kCols);
    sc.own = cv.take<float>(kRows * d);
    sc.other = cv.take<float>(kCols * d);
    sc.grad = backward ? cv.take<float>(kRows * d) : nullptr;
    sc.rs = cv.take<double>(kRows);
    sc.gs = cv.take<double>(kRows);
    sc.key = cv.take<int64_t>(kCols);
    sc.aux = cv.take<float>(kCols);
    sc.blse = cv.take<float>(kCols);
    sc.w = cv.take<float>(kCols);
    sc.winv = cv.take<float>(kCols);
    sc.active = cv.take<float>(kCols);
    sc.col_a = cv.take<float>(kCols);
    sc.col_b = cv.take<float>(kCols);
    sc.col_c = cv.take<float>(kCols);
    if (base)
      pl.scratch[t] = sc;
  }
  if (plan)
    *plan = pl;
  return cv.size();
}

// d and the per-thread blocks must stay far from size_t overflow: the validated shape guarantees
// n.d and m.d fit int64; kCols.d must too, and BLAS takes d as an int.
fnceStatus_t check_shape(const Problem& pr) {
  if (!fits_int(pr.p.d) || pr.p.d > (int64_t(1) << 40) / kCols)
    return fail(FNCE_ERROR_NOT_SUPPORTED,
                "d = %lld is beyond the host backend's limit (BLAS takes d as an int); use "
                "FNCE_BACKEND_CPU or FNCE_BACKEND_CUDA",
                static_cast<long long>(pr.p.d));
  return FNCE_SUCCESS;
}

// ---- per-line preparation: keys, counts, norms --------------------------------------------------
void prepare_keys(const Problem& pr, Plan& pl) {
  const fnceLossParams& p = pr.p;
  const int64_t n = pl.n, m = pl.m;
  for (int64_t i = 0; i < n; ++i) {
    switch (p.positives) {
    case FNCE_POSITIVES_DIAGONAL:
      pl.A.key[i] = i;
      break;
    case FNCE_POSITIVES_TARGETS:
      pl.A.key[i] = p.targets[i]; // < 0 or >= m matches no column
      break;
    case FNCE_POSITIVES_LABELS:
      pl.A.key[i] = p.labels_a[i];
      break;
    case FNCE_POSITIVES_VIEW_PAIRS:
    default:
      pl.A.key[i] = (i + n / 2) % n;
      break;
    }
  }
  for (int64_t j = 0; j < m; ++j)
    pl.B.key[j] = p.positives == FNCE_POSITIVES_LABELS ? p.labels_b[j] : j;
  // |P| of a line = how many keys of the other side equal its own, minus the excluded j = i.
  const bool excl = p.exclude_self != 0;
  const bool neg = p.normalizer == FNCE_NORMALIZER_NEGATIVES;
  for (int s = 0; s < 2; ++s) {
    Side& own = s == 0 ? pl.A : pl.B;
    Side& other = s == 0 ? pl.B : pl.A;
    std::copy(other.key, other.key + other.count, other.sorted);
    std::sort(other.sorted, other.sorted + other.count);
    for (int64_t r = 0; r < own.count; ++r) {
      const auto range = std::equal_range(other.sorted, other.sorted + other.count, own.key[r]);
      const bool self_pair = excl && r < other.count; // the pair (r, r) exists and is excluded
      int64_t pc = range.second - range.first;
      if (self_pair && other.key[r] == own.key[r])
        --pc;
      own.p_count[r] = pc;
      own.z_count[r] = other.count - (self_pair ? 1 : 0) - (neg ? pc : 0);
    }
  }
}

float load_f32(const void* base, int64_t idx, fnceDataType_t t) {
  if (t == FNCE_F32)
    return static_cast<const float*>(base)[idx];
  uint16_t h;
  std::memcpy(&h, static_cast<const uint16_t*>(base) + idx, 2);
  return t == FNCE_BF16 ? bf16_bits_to_float(h) : half_bits_to_float(h);
}

void prepare_norms(const Problem& pr, Side& sd) {
  const fnceLossParams& p = pr.p;
  if (p.similarity == FNCE_SIM_DOT) {
    std::fill(sd.aux, sd.aux + sd.count, 0.0f); // read, never used
    std::fill(sd.cx, sd.cx + sd.count, 0.0f);
    return;
  }
  for (int64_t r = 0; r < sd.count; ++r) {
    double ss = 0.0;
    for (int64_t k = 0; k < p.d; ++k) {
      const double v = load_f32(sd.x, r * sd.ld + k, p.dtype);
      ss += v * v;
    }
    if (p.similarity == FNCE_SIM_COSINE) {
      const double norm = std::sqrt(ss);
      const double nx = std::max(norm, kCosineEps);
      sd.aux[r] = static_cast<float>(1.0 / nx);
      sd.cx[r] = norm > kCosineEps ? static_cast<float>(1.0 / (nx * nx)) : 0.0f;
    } else {
      sd.aux[r] = static_cast<float>(ss);
    }
  }
}

bool poisoned_row(const Problem& pr, int64_t i) {
  return pr.p.positives == FNCE_POSITIVES_TARGETS && pr.p.targets[i] >= pr.p.m;
}

// Lines [r0, r0 + rows) of a side as f32 rows: in place (direct) or converted into `scratch`.
const float* side_rows(const Plan& pl, const Side& sd, int64_t r0, int64_t rows, float* scratch,
                       int* ld) {
  if (sd.direct) {
    *ld = static_cast<int>(sd.ld);
    return static_cast<const float*>(sd.x) + r0 * sd.ld;
  }
  const fnceDataType_t t = pl.pr->p.dtype;
  const int64_t d = pl.d;
  for (int64_t r = 0; r < rows; ++r) {
    float* out = scratch + r * d;
    const int64_t base = (r0 + r) * sd.ld;
    if (t == FNCE_F32) {
      std::memcpy(out, static_cast<const float*>(sd.x) + base, size_t(d) * 4);
    } else {
      const uint16_t* in = static_cast<const uint16_t*>(sd.x) + base;
      if (t == FNCE_BF16) {
        for (int64_t k = 0; k < d; ++k) {
          const uint32_t u = uint32_t(in[k]) << 16; // bf16 -> f32 is exact: the high half
          std::memcpy(out + k, &u, 4);
        }
      } else {
        for (int64_t k = 0; k < d; ++k)
          out[k] = half_bits_to_float(in[k]);
      }
    }
  }
  *ld = static_cast<int>(d);
  return scratch;
}

// ---- the epilogues: one line of a block, templated on what varies per problem -----------------
// `row`: kCols floats, the dot products on entry.  c < live are real columns, the rest padding.
// `diag`: the column c whose index equals the line's own (the excluded pair), or -1.
struct LineIn {
  float scale, aux_r;
  int64_t key_r, diag;
  int live;
};

template <fnceSimilarity_t Sim> inline float similarity(float dot, float aux_r, float aux_c) {
  if (Sim == FNCE_SIM_COSINE)
    return dot * aux_r * aux_c;
  if (Sim == FNCE_SIM_NEG_SQ_DIST)
    return 2.0f * dot - aux_r - aux_c;
  return dot;
}

struct BlockStats {
  float max, sum, pos_sum; // max NaN when a Z entry is NaN
};

// Forward: the line's Z statistics over this block.
template <fnceSimilarity_t Sim, bool Neg, bool Excl>
FLASHNCE_CLONES BlockStats forward_line(float* __restrict row, float* __restrict pos_row,
                                        const LineIn& in, const int64_t* __restrict key_c,
                                        const float* __restrict aux_c) {
  // Branch-free (bitwise & and |, selects) so that the lane loop vectorises; NaNs are counted
  // apart from the max, whose select would drop them.
  float mx[kLanes], ps[kLanes];
  int nan_lanes[kLanes];
  for (int l = 0; l < kLanes; ++l) {
    mx[l] = -kInfF;
    ps[l] = 0.0f;
    nan_lanes[l] = 0;
  }
  const int live = in.live;
  const int diag = static_cast<int>(in.diag);
  const int64_t key_r = in.key_r;
  for (int c0 = 0; c0 < kCols; c0 += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      const int c = c0 + l;
      const float s = in.scale * similarity<Sim>(row[c], in.aux_r, aux_c[c]);
      const bool ex = (c >= live) | (Excl & (c == diag));
      const bool keep = !ex;
      const bool pos = keep & (key_c[c] == key_r);
      const bool inz = keep & !(Neg & pos);
      const float sp = pos ? s : 0.0f;
      ps[l] += sp;
      pos_row[c] = sp; // for the column statistics
      const float v = inz ? s : -kInfF;
      row[c] = v;
      nan_lanes[l] |= v != v;
      mx[l] = v > mx[l] ? v : mx[l];
    }
  }
  float m = -kInfF, p = 0.0f;
  bool any_nan = false;
  for (int l = 0; l < kLanes; ++l) {
    any_nan = any_nan || nan_lanes[l] != 0;
    m = mx[l] > m ? mx[l] : m;
    p += ps[l];
  }
  BlockStats st{any_nan ? kNaNF : m, 0.0f, p};
  m = st.max;
  if (m == -kInfF || m != m)
    return st; // nothing in Z here (or only -inf): no exp(-inf - -inf); NaN: the LSE is NaN
  float sm[kLanes];
  for (int l = 0; l < kLanes; ++l)
    sm[l] = 0.0f;
  for (int c0 = 0; c0 < kCols; c0 += kLanes)
    for (int l = 0; l < kLanes; ++l)
      sm[l] += exp_f32(row[c0 + l] - m); // -inf -> 0; m = +inf gives NaN (as the reference)
  for (int l = 0; l < kLanes; ++l)
    st.sum += sm[l];
  return st;
}

// Backward: G' for this block row (G, times 1/|y_c| for COSINE) in place of the dot products, and
// the line's Σ G sim and Σ G over the block.
struct OwnTerm {
  bool active;
  float lse, w, winv; // lse already NaN where the hazard rule says so; w NaN when poisoned
};

template <fnceSimilarity_t Sim, bool Neg, bool Excl, bool OwnActive, bool OtherActive>
FLASHNCE_CLONES void backward_line(float* __restrict row, float* __restrict row2, const LineIn& in,
                                   const OwnTerm& own, const Scratch& sc, float* rs_out,
                                   float* gs_out) {
  // Short loops, every load unconditional (the block vectors are kCols long) and every choice a
  // select, so that each loop vectorises (one long loop body defeats GCC's if-conversion).
  const int64_t* __restrict key_c = sc.key;
  const float* __restrict aux_c = sc.aux;
  const float* __restrict lse_c = sc.blse;
  const float* __restrict w_c = sc.w;
  const float* __restrict winv_c = sc.winv;
  const float* __restrict active_c = sc.active;
  const int live = in.live;
  const int diag = static_cast<int>(in.diag);
  const int64_t key_r = in.key_r;
  const float scale = in.scale, aux_r = in.aux_r;
  alignas(64) float sim[kCols], s[kCols], g[kCols], pos[kCols], inz[kCols];
  for (int c = 0; c < kCols; ++c) {
    const bool ex = (c >= live) | (Excl & (c == diag));
    const bool keep = !ex;
    const bool p = keep & (key_c[c] == key_r);
    const bool z = keep & !(Neg & p);
    // Past `live` the block holds stale values: never let them reach a sum (0 . inf = NaN).
    const float v = similarity<Sim>(row[c], aux_r, aux_c[c]);
    sim[c] = c < live ? v : 0.0f;
    s[c] = scale * sim[c];
    pos[c] = p ? 1.0f : 0.0f;
    inz[c] = z ? 1.0f : 0.0f;
    g[c] = 0.0f;
  }
  if (OwnActive) {
    const float lse = own.lse, w = own.w, winv = own.winv;
    for (int c = 0; c < kCols; ++c) {
      const float e = exp_f32(s[c] - lse);
      g[c] = w * ((inz[c] != 0.0f ? e : 0.0f) - (pos[c] != 0.0f ? winv : 0.0f));
    }
  }
  if (OtherActive) {
    for (int c = 0; c < kCols; ++c) {
      const float e = exp_f32(s[c] - lse_c[c]);
      const float t = w_c[c] * ((inz[c] != 0.0f ? e : 0.0f) - (pos[c] != 0.0f ? winv_c[c] : 0.0f));
      g[c] += active_c[c] != 0.0f ? t : 0.0f;
    }
  }
  float rs[kLanes], gs[kLanes];
  for (int l = 0; l < kLanes; ++l)
    rs[l] = gs[l] = 0.0f;
  // The column side's sums over the block's rows (one-pass backward: sc.col_a / col_b), and
  // COSINE's G / |x| for the column side's GEMM in row2.
  float* __restrict col_rs = sc.col_a;
  float* __restrict col_gs = sc.col_b;
  for (int c0 = 0; c0 < kCols; c0 += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const int c = c0 + l;
      const float gc = c < live ? g[c] : 0.0f;
      rs[l] += gc * sim[c];
      gs[l] += gc;
      col_rs[c] += gc * sim[c];
      col_gs[c] += gc;
      row[c] = Sim == FNCE_SIM_COSINE ? gc * aux_c[c] : gc;
      if (Sim == FNCE_SIM_COSINE)
        row2[c] = gc * aux_r;
    }
  float r = 0.0f, q = 0.0f;
  for (int l = 0; l < kLanes; ++l) {
    r += rs[l];
    q += gs[l];
  }
  *rs_out = r;
  *gs_out = q;
}

// ---- dispatch of the templates ----------------------------------------------------------------
using ForwardFn = BlockStats (*)(float*, float*, const LineIn&, const int64_t*, const float*);
using BackwardFn = void (*)(float*, float*, const LineIn&, const OwnTerm&, const Scratch&, float*,
                            float*);

template <fnceSimilarity_t Sim, bool Neg, bool Excl> ForwardFn forward_fn3() {
  return &forward_line<Sim, Neg, Excl>;
}
template <fnceSimilarity_t Sim> ForwardFn forward_fn2(bool neg, bool excl) {
  if (neg)
    return excl ? forward_fn3<Sim, true, true>() : forward_fn3<Sim, true, false>();
  return excl ? forward_fn3<Sim, false, true>() : forward_fn3<Sim, false, false>();
}
ForwardFn forward_fn(fnceSimilarity_t sim, bool neg, bool excl) {
  switch (sim) {
  case FNCE_SIM_DOT:
    return forward_fn2<FNCE_SIM_DOT>(neg, excl);
  case FNCE_SIM_COSINE:
    return forward_fn2<FNCE_SIM_COSINE>(neg, excl);
  case FNCE_SIM_NEG_SQ_DIST:
  default:
    return forward_fn2<FNCE_SIM_NEG_SQ_DIST>(neg, excl);
  }
}

template <fnceSimilarity_t Sim, bool Neg, bool Excl> BackwardFn backward_fn4(bool own, bool other) {
  if (own)
    return other ? &backward_line<Sim, Neg, Excl, true, true>
                 : &backward_line<Sim, Neg, Excl, true, false>;
  return other ? &backward_line<Sim, Neg, Excl, false, true>
               : &backward_line<Sim, Neg, Excl, false, false>;
}
template <fnceSimilarity_t Sim> BackwardFn backward_fn2(bool neg, bool excl, bool own, bool other) {
  if (neg)
    return excl ? backward_fn4<Sim, true, true>(own, other)
                : backward_fn4<Sim, true, false>(own, other);
  return excl ? backward_fn4<Sim, false, true>(own, other)
              : backward_fn4<Sim, false, false>(own, other);
}
BackwardFn backward_fn(fnceSimilarity_t sim, bool neg, bool excl, bool own, bool other) {
  switch (sim) {
  case FNCE_SIM_DOT:
    return backward_fn2<FNCE_SIM_DOT>(neg, excl, own, other);
  case FNCE_SIM_COSINE:
    return backward_fn2<FNCE_SIM_COSINE>(neg, excl, own, other);
  case FNCE_SIM_NEG_SQ_DIST:
  default:
    return backward_fn2<FNCE_SIM_NEG_SQ_DIST>(neg, excl, own, other);
  }
}

// The other side's per-line vectors for columns [c0, c0 + live), padded to kCols.
void load_column_vectors(const Side& other, int64_t c0, int live, bool backward, Scratch& sc) {
  for (int c = 0; c < kCols; ++c) {
    const bool in = c < live;
    sc.key[c] = in ? other.key[c0 + c] : 0;
    sc.aux[c] = in ? other.aux[c0 + c] : 0.0f;
    if (backward) {
      sc.blse[c] = in ? other.blse[c0 + c] : 0.0f;
      sc.w[c] = in ? other.w[c0 + c] : 0.0f;
      sc.winv[c] = in ? other.winv[c0 + c] : 0.0f;
      sc.active[c] = in ? other.active[c0 + c] : 0.0f;
    }
  }
}

// ---- the tasks ----------------------------------------------------------------------------------
// Row tasks merge per-column partials into shared arrays in task order: task t waits at column
// block j's turnstile until task t - 1 has passed it.  Task t - 1 was handed out before t
// (OpenMP's dynamic schedule, like the serial loop, hands tasks out in increasing order), so the
// wait always ends; every task passes every turnstile, contributing or not.
void wait_turn(std::atomic<int64_t>& turn, int64_t task) {
  for (int spins = 0; turn.load(std::memory_order_acquire) != task; ++spins)
    if (spins > 64)
      std::this_thread::yield();
}
void pass_turn(std::atomic<int64_t>& turn, int64_t task) {
  turn.store(task + 1, std::memory_order_release);
}

// (max, sum of exp(. - max)) of one more block merged into a line's running pair, in double.
inline void merge_max_sum(double& M, double& R, double bm, double bs) {
  if (bm > M) {
    R = R * std::exp(M - bm) + bs; // M = -inf: exp(-inf) = 0
    M = bm;
  } else {
    R += bs * std::exp(bm - M); // M = bm = +inf: NaN, as the reference
  }
}

// Forward: lines [r0, r0 + rows) of `own` against every line of `other`.  With `columns`
// (SYMMETRIC, own = side A), the same blocks also give the columns' statistics: each block's
// column max, sum of exp and positives' sum are merged into other.run_* in task order.
FLASHNCE_CLONES void column_block_stats(const float* __restrict v, const float* __restrict pv,
                                        int rows, float* __restrict cmax, float* __restrict csum,
                                        float* __restrict cpos, int* __restrict cnan) {
  for (int c = 0; c < kCols; ++c) {
    cmax[c] = -kInfF;
    csum[c] = 0.0f;
    cpos[c] = 0.0f;
    cnan[c] = 0;
  }
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < kCols; ++c) {
      const float x = v[r * kCols + c];
      cnan[c] |= x != x;
      cmax[c] = x > cmax[c] ? x : cmax[c];
      cpos[c] += pv[r * kCols + c];
    }
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < kCols; ++c) {
      // A column with no Z entry here (max -inf) adds 0: no exp(-inf - -inf).
      const float e = exp_f32(v[r * kCols + c] - cmax[c]);
      csum[c] += cmax[c] == -kInfF ? 0.0f : e;
    }
}

void forward_task(const Plan& pl, const Side& own, const Side& other, int64_t task, bool columns,
                  Scratch& sc) {
  const fnceLossParams& p = pl.pr->p;
  const int64_t r0 = task * kRows;
  const int rows = static_cast<int>(std::min<int64_t>(kRows, own.count - r0));
  const float scale = *p.logit_scale;
  const ForwardFn fn =
      forward_fn(p.similarity, p.normalizer == FNCE_NORMALIZER_NEGATIVES, p.exclude_self != 0);
  int ldx = 0, ldy = 0;
  const float* x = side_rows(pl, own, r0, rows, sc.own, &ldx);
  double M[kRows], R[kRows], P[kRows];
  bool nan[kRows];
  for (int r = 0; r < rows; ++r) {
    M[r] = -kInf;
    R[r] = 0.0;
    P[r] = 0.0;
    nan[r] = false;
  }
  int cnan[kCols];
  for (int64_t c0 = 0; c0 < other.count; c0 += kCols) {
    const int live = static_cast<int>(std::min<int64_t>(kCols, other.count - c0));
    const float* y = side_rows(pl, other, c0, live, sc.other, &ldy);
    gemm_abt(rows, live, static_cast<int>(pl.d), x, ldx, y, ldy, sc.logits, kCols);
    load_column_vectors(other, c0, live, false, sc);
    for (int r = 0; r < rows; ++r) {
      const int64_t gr = r0 + r;
      const int64_t diag = gr >= c0 && gr < c0 + live ? gr - c0 : -1;
      const LineIn in{scale, own.aux[gr], own.key[gr], diag, live};
      const BlockStats st = fn(sc.logits + r * kCols, sc.logits2 + r * kCols, in, sc.key, sc.aux);
      P[r] += st.pos_sum;
      if (st.max != st.max)
        nan[r] = true;
      else if (st.max != -kInfF)
        merge_max_sum(M[r], R[r], st.max, st.sum);
    }
    if (columns) {
      column_block_stats(sc.logits, sc.logits2, rows, sc.col_a, sc.col_b, sc.col_c, cnan);
      std::atomic<int64_t>& turn = pl.turns[c0 / kCols];
      wait_turn(turn, task);
      for (int c = 0; c < live; ++c) {
        const int64_t j = c0 + c;
        other.pos_sum[j] += sc.col_c[c];
        if (cnan[c])
          other.run_nan[j] = 1;
        else if (sc.col_a[c] != -kInfF)
          merge_max_sum(other.run_max[j], other.run_sum[j], sc.col_a[c], sc.col_b[c]);
      }
      pass_turn(turn, task);
    }
  }
  for (int r = 0; r < rows; ++r) {
    const int64_t gr = r0 + r;
    own.lse[gr] = nan[r] ? kNaN : M[r] == -kInf ? -kInf : M[r] + std::log(R[r]);
    own.pos_sum[gr] = P[r];
  }
}

// The gradient of lines [r0, r0 + rows) of a side from its accumulated Σ_c G'_rc y_c (acc, row
// stride ld_acc) and per-line sums Σ G sim (rs) and Σ G (gs); x = the lines themselves (f32).
// `out` (dtype) may be `acc` itself (f32, in place: each element is read before it is written).
void store_gradient_rows(const fnceLossParams& p, const Side& own, int64_t r0, int rows,
                         const float* x, int ldx, const float* acc_base, int64_t ld_acc,
                         const double* rs_lines, const double* gs_lines, void* out) {
  const float scale = *p.logit_scale;
  const int64_t d = p.d;
  for (int r = 0; r < rows; ++r) {
    const int64_t gr = r0 + r;
    const float* acc = acc_base + r * ld_acc;
    const float* xr = x + int64_t(r) * ldx;
    const float rs = static_cast<float>(rs_lines[r]), gs = static_cast<float>(gs_lines[r]);
    for (int64_t k = 0; k < d; ++k) {
      float g;
      switch (p.similarity) {
      case FNCE_SIM_DOT:
        g = scale * acc[k];
        break;
      case FNCE_SIM_COSINE: // (1/|x|) Σ (G/|y|) y - (Σ G sim) x / |x|^2
        g = scale * (own.aux[gr] * acc[k] - rs * own.cx[gr] * xr[k]);
        break;
      case FNCE_SIM_NEG_SQ_DIST: // 2 Σ G y - 2 (Σ G) x
      default:
        g = scale * (2.0f * acc[k] - 2.0f * gs * xr[k]);
        break;
      }
      store_element(out, gr * d + k, p.dtype, g);
    }
  }
}

// One block of G: rows [r0, r0 + rows) of `own` (their f32 values x) against columns
// [c0, c0 + live) of `other` (y).  Leaves G in sc.logits (and G / |x| in sc.logits2 under COSINE),
// adds each row's Σ G sim and Σ G to sc.rs / sc.gs and, when scale_sum is given, the rows' Σ G sim
// to it in row order; the columns' block sums land in sc.col_a / sc.col_b.
void gradient_block(const Plan& pl, const Side& own, const Side& other, int64_t r0, int rows,
                    int64_t c0, int live, const float* x, int ldx, const float* y, int ldy,
                    bool any_other, Scratch& sc, double* scale_sum) {
  const fnceLossParams& p = pl.pr->p;
  const float scale = *p.logit_scale;
  const bool neg = p.normalizer == FNCE_NORMALIZER_NEGATIVES, excl = p.exclude_self != 0;
  gemm_abt(rows, live, static_cast<int>(pl.d), x, ldx, y, ldy, sc.logits, kCols);
  load_column_vectors(other, c0, live, true, sc);
  std::fill(sc.col_a, sc.col_a + kCols, 0.0f);
  std::fill(sc.col_b, sc.col_b + kCols, 0.0f);
  for (int r = 0; r < rows; ++r) {
    const int64_t gr = r0 + r;
    const int64_t diag = gr >= c0 && gr < c0 + live ? gr - c0 : -1;
    const LineIn in{scale, own.aux[gr], own.key[gr], diag, live};
    const OwnTerm ot{own.active[gr] != 0.0f, own.blse[gr], own.w[gr], own.winv[gr]};
    const BackwardFn fn = backward_fn(p.similarity, neg, excl, ot.active, any_other);
    float rsb = 0.0f, gsb = 0.0f;
    fn(sc.logits + r * kCols, sc.logits2 + r * kCols, in, ot, sc, &rsb, &gsb);
    sc.rs[r] += rsb;
    sc.gs[r] += gsb;
    if (scale_sum)
      *scale_sum += rsb;
  }
}

// Backward: the gradient of lines [r0, r0 + rows) of `own` (orientations: the side's own sweep,
// and in self mode also the transposed one, both into the same block), written to `out`.
// Returns the task's Σ G sim over the orientation `scale_from` (0 = the first).
struct Sweep {
  const Side* own;
  const Side* other;
};

double backward_task(const Plan& pl, const Sweep* sweeps, int sweep_count, int64_t r0, void* out,
                     Scratch& sc) {
  const fnceLossParams& p = pl.pr->p;
  const Side& own0 = *sweeps[0].own;
  const int rows = static_cast<int>(std::min<int64_t>(kRows, own0.count - r0));
  const int d = static_cast<int>(pl.d);
  if (out)
    std::fill(sc.grad, sc.grad + int64_t(rows) * d, 0.0f);
  for (int r = 0; r < rows; ++r)
    sc.rs[r] = sc.gs[r] = 0.0;
  double scale_sum = 0.0;
  int ldx = 0, ldy = 0;
  const float* x = side_rows(pl, own0, r0, rows, sc.own, &ldx);
  for (int sw = 0; sw < sweep_count; ++sw) {
    const Side& own = *sweeps[sw].own;
    const Side& other = *sweeps[sw].other;
    bool any_own = false;
    for (int r = 0; r < rows; ++r)
      any_own = any_own || own.active[r0 + r] != 0.0f;
    bool any_other = false;
    for (int64_t c = 0; c < other.count && !any_other; ++c)
      any_other = other.active[c] != 0.0f;
    if (!any_own && !any_other)
      continue; // G is 0 on this whole strip
    for (int64_t c0 = 0; c0 < other.count; c0 += kCols) {
      const int live = static_cast<int>(std::min<int64_t>(kCols, other.count - c0));
      const float* y = side_rows(pl, other, c0, live, sc.other, &ldy);
      // (the column sums it leaves are unused here)
      gradient_block(pl, own, other, r0, rows, c0, live, x, ldx, y, ldy, any_other, sc,
                     sw == 0 ? &scale_sum : nullptr);
      if (out)
        gemm_ab_accumulate(rows, d, live, sc.logits, kCols, y, ldy, sc.grad, d);
    }
  }
  if (out)
    store_gradient_rows(p, own0, r0, rows, x, ldx, sc.grad, d, sc.rs, sc.gs, out);
  return scale_sum;
}

// One-pass backward (f32, separate operands; grad_a, grad_b each optional): row task `task`
// computes each block's G once.  grad_a's rows stay in the task (sc.grad); grad_b's block receives
// G''^T . X (G'' = G, COSINE: G / |x|) directly in the f32 output, and the columns' Σ G sim and
// Σ G their block sums, in task order at the block's turnstile.  6 n m d flops instead of the
// two sweeps' 8.
double backward_task_one_pass(const Plan& pl, int64_t task, void* grad_a, float* grad_b,
                              bool any_other, Scratch& sc) {
  const fnceLossParams& p = pl.pr->p;
  const Side& own = pl.A;
  const Side& other = pl.B;
  const int64_t r0 = task * kRows;
  const int rows = static_cast<int>(std::min<int64_t>(kRows, own.count - r0));
  const int d = static_cast<int>(pl.d);
  std::fill(sc.grad, sc.grad + int64_t(rows) * d, 0.0f);
  for (int r = 0; r < rows; ++r)
    sc.rs[r] = sc.gs[r] = 0.0;
  bool any_own = false;
  for (int r = 0; r < rows; ++r)
    any_own = any_own || own.active[r0 + r] != 0.0f;
  double scale_sum = 0.0;
  int ldx = 0, ldy = 0;
  const float* x = side_rows(pl, own, r0, rows, sc.own, &ldx);
  for (int64_t c0 = 0; c0 < other.count; c0 += kCols) {
    std::atomic<int64_t>& turn = pl.turns[c0 / kCols];
    if (!any_own && !any_other) { // G is 0 on this block: nothing to add, but pass the turn
      if (grad_b) {
        wait_turn(turn, task);
        pass_turn(turn, task);
      }
      continue;
    }
    const int live = static_cast<int>(std::min<int64_t>(kCols, other.count - c0));
    const float* y = side_rows(pl, other, c0, live, sc.other, &ldy);
    gradient_block(pl, own, other, r0, rows, c0, live, x, ldx, y, ldy, any_other, sc, &scale_sum);
    if (grad_a)
      gemm_ab_accumulate(rows, d, live, sc.logits, kCols, y, ldy, sc.grad, d);
    if (grad_b) {
      const float* g_cols = p.similarity == FNCE_SIM_COSINE ? sc.logits2 : sc.logits;
      wait_turn(turn, task);
      gemm_atb_accumulate(live, d, rows, g_cols, kCols, x, ldx, grad_b + c0 * int64_t(d), d);
      for (int c = 0; c < live; ++c) {
        other.rs_acc[c0 + c] += sc.col_a[c];
        other.gs_acc[c0 + c] += sc.col_b[c];
      }
      pass_turn(turn, task);
    }
  }
  if (grad_a)
    store_gradient_rows(p, own, r0, rows, x, ldx, sc.grad, d, sc.rs, sc.gs, grad_a);
  return scale_sum;
}

// Runs `body(task, scratch)` for every task on up to pl.threads OpenMP threads.  Monotonic: each
// thread takes the lowest task not yet taken, which the turnstiles rely on (a task never waits
// for one that no thread has started).
template <typename F> void run_tasks(const Plan& pl, int64_t tasks, F&& body) {
  const int threads = static_cast<int>(std::min<int64_t>(pl.threads, tasks));
#if defined(FLASHNCE_HAVE_OPENMP)
  if (threads > 1) {
#pragma omp parallel for num_threads(threads) schedule(monotonic : dynamic, 1)
    for (int64_t t = 0; t < tasks; ++t)
      body(t, pl.scratch[omp_get_thread_num()]);
    return;
  }
#endif
  (void)threads;
  for (int64_t t = 0; t < tasks; ++t)
    body(t, pl.scratch[0]);
}

// Threads the caller's workspace holds scratch for (>= 1: the API checked the least size).
int threads_for(const Problem& pr, bool backward, size_t workspace_bytes) {
  int t = max_threads();
  while (t > 1 && layout(pr, backward, t, nullptr, nullptr) > workspace_bytes)
    --t;
  return t;
}

char* aligned_base(void* workspace) {
  const uintptr_t u = reinterpret_cast<uintptr_t>(workspace);
  return reinterpret_cast<char*>((u + 63) / 64 * 64);
}

bool line_valid(const Side& sd, int64_t r, bool poisoned) {
  return poisoned || (sd.p_count[r] > 0 && sd.z_count[r] > 0);
}

} // namespace

// ---- entry points -------------------------------------------------------------------------------
fnceStatus_t device_name(char* name, size_t capacity) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "CPU (f32, %s sgemm, %d thread%s)", gemm_library(), max_threads(),
                max_threads() == 1 ? "" : "s");
  const size_t len = std::strlen(buf) + 1;
  if (capacity < len)
    return fail(FNCE_ERROR_INVALID_VALUE, "capacity must be >= %zu for the name \"%s\", got %zu",
                len, buf, capacity);
  std::memcpy(name, buf, len);
  return FNCE_SUCCESS;
}

fnceStatus_t forward_workspace_size(const Problem& pr, int threads, size_t* bytes) {
  if (fnceStatus_t s = check_shape(pr); s != FNCE_SUCCESS)
    return s;
  *bytes = layout(pr, false, threads > 0 ? threads : max_threads(), nullptr, nullptr);
  return FNCE_SUCCESS;
}

fnceStatus_t backward_workspace_size(const Problem& pr, int threads, size_t* bytes) {
  if (fnceStatus_t s = check_shape(pr); s != FNCE_SUCCESS)
    return s;
  *bytes = layout(pr, true, threads > 0 ? threads : max_threads(), nullptr, nullptr);
  return FNCE_SUCCESS;
}

fnceStatus_t forward(const Problem& pr, float* loss, float* row_lse, float* col_lse,
                     void* workspace, size_t workspace_bytes) {
  if (fnceStatus_t s = check_shape(pr); s != FNCE_SUCCESS)
    return s;
  const fnceLossParams& p = pr.p;
  const int64_t n = p.n, m = p.m;
  const bool sym = p.direction == FNCE_DIRECTION_SYMMETRIC;
  const float scale = *p.logit_scale;
  if (!std::isfinite(scale)) { // rule: a non-finite scale makes every output NaN
    std::fill(loss, loss + pr.loss_count, kNaNF);
    if (row_lse)
      std::fill(row_lse, row_lse + n, kNaNF);
    if (col_lse && sym)
      std::fill(col_lse, col_lse + m, kNaNF);
    return FNCE_SUCCESS;
  }
  Plan pl;
  layout(pr, false, threads_for(pr, false, workspace_bytes), aligned_base(workspace), &pl);
  prepare_keys(pr, pl);
  prepare_norms(pr, pl.A);
  prepare_norms(pr, pl.B);

  // One sweep: the row tasks also merge the column statistics (SYMMETRIC), in task order.
  if (sym) {
    std::fill(pl.B.pos_sum, pl.B.pos_sum + m, 0.0);
    std::fill(pl.B.run_max, pl.B.run_max + m, -kInf);
    std::fill(pl.B.run_sum, pl.B.run_sum + m, 0.0);
    std::fill(pl.B.run_nan, pl.B.run_nan + m, uint8_t(0));
    for (int64_t j = 0; j < (m + kCols - 1) / kCols; ++j)
      new (&pl.turns[j]) std::atomic<int64_t>(0);
  }
  run_tasks(pl, blocks(n),
            [&](int64_t t, Scratch& sc) { forward_task(pl, pl.A, pl.B, t, sym, sc); });
  if (sym)
    for (int64_t j = 0; j < m; ++j)
      pl.B.lse[j] = pl.B.run_nan[j]            ? kNaN
                    : pl.B.run_max[j] == -kInf ? -kInf
                                               : pl.B.run_max[j] + std::log(pl.B.run_sum[j]);

  // Losses in double, in line order (as the reference).
  const bool negatives = p.normalizer == FNCE_NORMALIZER_NEGATIVES;
  auto line_loss = [&](const Side& sd, int64_t r, bool poisoned) {
    if (poisoned)
      return kNaN;
    if (!line_valid(sd, r, false))
      return 0.0;
    double l = sd.lse[r] - sd.pos_sum[r] / static_cast<double>(sd.p_count[r]);
    if (negatives)
      l -= std::log(static_cast<double>(sd.z_count[r]));
    return l;
  };
  double row_sum = 0.0, col_sum = 0.0;
  int64_t rows_valid = 0, cols_valid = 0;
  for (int64_t i = 0; i < n; ++i) {
    const bool poisoned = poisoned_row(pr, i);
    const double l = line_loss(pl.A, i, poisoned);
    if (line_valid(pl.A, i, poisoned)) {
      row_sum += l;
      ++rows_valid;
    }
    if (p.reduction == FNCE_REDUCTION_NONE)
      loss[i] = static_cast<float>(l);
    if (row_lse)
      row_lse[i] = static_cast<float>(pl.A.lse[i]);
  }
  if (sym) {
    for (int64_t j = 0; j < m; ++j) {
      const double l = line_loss(pl.B, j, false);
      if (line_valid(pl.B, j, false)) {
        col_sum += l;
        ++cols_valid;
      }
      if (p.reduction == FNCE_REDUCTION_NONE)
        loss[n + j] = static_cast<float>(l);
      if (col_lse)
        col_lse[j] = static_cast<float>(pl.B.lse[j]);
    }
  }
  const double row_mean = rows_valid > 0 ? row_sum / static_cast<double>(rows_valid) : 0.0;
  const double col_mean = cols_valid > 0 ? col_sum / static_cast<double>(cols_valid) : 0.0;
  if (p.reduction == FNCE_REDUCTION_MEAN)
    loss[0] = static_cast<float>(sym ? 0.5 * (row_mean + col_mean) : row_mean);
  else if (p.reduction == FNCE_REDUCTION_SUM)
    loss[0] = static_cast<float>(sym ? 0.5 * (row_sum + col_sum) : row_sum);
  return FNCE_SUCCESS;
}

fnceStatus_t backward(const Problem& pr, const float* row_lse, const float* col_lse,
                      const float* grad_loss, void* grad_a, void* grad_b, float* grad_logit_scale,
                      void* workspace, size_t workspace_bytes) {
  if (fnceStatus_t s = check_shape(pr); s != FNCE_SUCCESS)
    return s;
  const fnceLossParams& p = pr.p;
  const int64_t n = p.n, m = p.m, d = p.d;
  const bool sym = p.direction == FNCE_DIRECTION_SYMMETRIC;
  if (pr.self_mode)
    grad_b = nullptr;
  const float scale = *p.logit_scale;
  if (!std::isfinite(scale)) {
    if (grad_a)
      for (int64_t k = 0; k < n * d; ++k)
        store_element(grad_a, k, p.dtype, kNaNF);
    if (grad_b)
      for (int64_t k = 0; k < m * d; ++k)
        store_element(grad_b, k, p.dtype, kNaNF);
    if (grad_logit_scale)
      *grad_logit_scale = kNaNF;
    return FNCE_SUCCESS;
  }
  if (!grad_a && !grad_b && !grad_logit_scale)
    return FNCE_SUCCESS;
  Plan pl;
  layout(pr, true, threads_for(pr, true, workspace_bytes), aligned_base(workspace), &pl);
  prepare_keys(pr, pl);
  prepare_norms(pr, pl.A);
  prepare_norms(pr, pl.B);

  // dL/dl per line (as the reference), and the coefficients G needs.
  int64_t rows_valid = 0, cols_valid = 0;
  for (int64_t i = 0; i < n; ++i)
    rows_valid += line_valid(pl.A, i, poisoned_row(pr, i)) ? 1 : 0;
  if (sym)
    for (int64_t j = 0; j < m; ++j)
      cols_valid += line_valid(pl.B, j, false) ? 1 : 0;
  const double half = sym ? 0.5 : 1.0;
  auto weight = [&](int64_t k, int64_t valid_count) {
    if (p.reduction == FNCE_REDUCTION_NONE)
      return static_cast<double>(grad_loss[k]);
    if (p.reduction == FNCE_REDUCTION_SUM)
      return half * grad_loss[0];
    return valid_count > 0 ? half * grad_loss[0] / static_cast<double>(valid_count) : 0.0;
  };
  for (int s = 0; s < 2; ++s) {
    Side& sd = s == 0 ? pl.A : pl.B;
    for (int64_t r = 0; r < sd.count; ++r) {
      const bool poisoned = s == 0 && poisoned_row(pr, r);
      const bool valid = (s == 0 || sym) && line_valid(sd, r, poisoned);
      // Only a valid line reads grad_loss (ROWS + NONE: n entries, none for the columns).
      const double w = !valid ? 0.0 : s == 0 ? weight(r, rows_valid) : weight(n + r, cols_valid);
      const float lse = s == 0 ? row_lse[r] : (sym ? col_lse[r] : 0.0f);
      sd.active[r] = valid ? 1.0f : 0.0f;
      sd.w[r] = !valid ? 0.0f : poisoned ? kNaNF : static_cast<float>(w);
      sd.winv[r] = valid && !poisoned && sd.p_count[r] > 0
                       ? static_cast<float>(1.0 / static_cast<double>(sd.p_count[r]))
                       : 0.0f;
      sd.blse[r] = valid && lse == -kInfF ? kNaNF : lse; // the softmax of an all -inf line is NaN
    }
  }

  // f32 with separate operands and both gradients: one sweep (backward_task_one_pass).
  // The path never depends on which outputs are asked for, so that each output is bitwise the same
  // whatever else is asked (an output not asked for only skips its GEMMs); grad_logit_scale always
  // sums the row tasks' Σ G sim in task order.
  if (!pr.self_mode && p.dtype == FNCE_F32 && pl.A.direct && pl.B.direct) {
    float* gb = static_cast<float*>(grad_b);
    if (gb)
      std::fill(gb, gb + m * d, 0.0f);
    std::fill(pl.B.rs_acc, pl.B.rs_acc + m, 0.0);
    std::fill(pl.B.gs_acc, pl.B.gs_acc + m, 0.0);
    for (int64_t j = 0; j < (m + kCols - 1) / kCols; ++j)
      new (&pl.turns[j]) std::atomic<int64_t>(0);
    bool any_other = false;
    for (int64_t j = 0; j < m && !any_other; ++j)
      any_other = pl.B.active[j] != 0.0f;
    const int64_t tasks = blocks(n);
    run_tasks(pl, tasks, [&](int64_t t, Scratch& sc) {
      pl.task_scale[t] = backward_task_one_pass(pl, t, grad_a, gb, any_other, sc);
    });
    // grad_b from its accumulated G''^T X and column sums, in place, block by block.
    run_tasks(pl, gb ? blocks(m) : 0, [&](int64_t t, Scratch&) {
      const int64_t j0 = t * kRows;
      const int rows = static_cast<int>(std::min<int64_t>(kRows, m - j0));
      const float* y = static_cast<const float*>(pl.B.x) + j0 * pl.B.ld;
      store_gradient_rows(p, pl.B, j0, rows, y, static_cast<int>(pl.B.ld), gb + j0 * d, d,
                          pl.B.rs_acc + j0, pl.B.gs_acc + j0, grad_b);
    });
    if (grad_logit_scale) {
      double total = 0.0;
      for (int64_t t = 0; t < tasks; ++t)
        total += pl.task_scale[t];
      *grad_logit_scale = static_cast<float>(total);
    }
    return FNCE_SUCCESS;
  }

  // Otherwise sweeps: rows for grad_a and grad_logit_scale, columns for grad_b; self mode runs
  // both orientations into grad_a in one task (grad_logit_scale from the first).
  const bool rows_needed = grad_a || grad_logit_scale;
  const bool cols_needed = grad_b != nullptr;
  const Sweep row_sweep[2] = {{&pl.A, &pl.B}, {&pl.B, &pl.A}};
  const Sweep col_sweep[1] = {{&pl.B, &pl.A}};
  const int row_sweeps = pr.self_mode && grad_a ? 2 : 1;
  const int64_t row_tasks = rows_needed ? blocks(n) : 0, col_tasks = cols_needed ? blocks(m) : 0;
  run_tasks(pl, row_tasks + col_tasks, [&](int64_t t, Scratch& sc) {
    if (t < row_tasks)
      pl.task_scale[t] = backward_task(pl, row_sweep, row_sweeps, t * kRows, grad_a, sc);
    else
      pl.task_scale[t] = backward_task(pl, col_sweep, 1, (t - row_tasks) * kRows, grad_b, sc);
  });
  if (grad_logit_scale) { // Σ G sim of the row tasks, in task order
    double total = 0.0;
    for (int64_t t = 0; t < row_tasks; ++t)
      total += pl.task_scale[t];
    *grad_logit_scale = static_cast<float>(total);
  }
  return FNCE_SUCCESS;
}

} // namespace host_backend
} // namespace flashnce
