// A fast backend against the CPU reference (the f64 oracle), through the public C API only.
// One source, three executables (tests/kernels/CMakeLists.txt): flashnce_kernel_tests_emu runs the
// CUDA kernels on the CPU SIMT emulator, flashnce_kernel_tests_gpu on a real GPU (every test skips
// with a message when there is no device), flashnce_host_tests the host backend (FNCE_BACKEND_HOST,
// f32 BLAS blocks on the CPU) with the same bounds.
//
// Every combination of the contract is one test case (similarity x positives x exclude_self /
// self mode x normaliser x direction x dtype: 324 cases); inside it, the three reductions on a
// small ragged shape (n, m, d from {1, 7, 65, 123, 257}, n != m, rotating with the case) and MEAN
// and NONE on a multi-tile shape (n = 100, m = 130, d = 40 with padded strides: 2 row tiles, 3
// column tiles, ragged depth chunks): loss, LSEs, grad_a, grad_b and grad_logit_scale within the
// per-dtype bounds below, every output buffer poisoned beforehand (an element the backend forgets
// keeps 0x7f7f... and fails), and a second run bitwise identical.  Targeted cases follow: a
// scale-100 row beyond exp's range, all rows masked, the NaN rules, d = 4096, each gradient
// alone, TF32.  The emulator models a Hopper device: 16-bit inputs with TMA-friendly pitches (the
// multi-tile shape) run the wgmma forward, the others the mma.sync one; CTest runs the 16-bit
// cases and the targeted ones again as an sm_80 device (tests/kernels/CMakeLists.txt).
//
// Bounds, per element: |x - ref| <= max(atol * max|ref|, floor) + rtol * |ref|  (max over the
// output array, so atol is relative to the array's scale; NaN in the reference demands NaN).
//   f32 inputs : loss/LSE rtol 2e-5, atol 2e-5;  gradients rtol 1e-4, atol 5e-5.
//     f32 accumulation over d and n, m terms: the logits carry ~1e-6 relative error, the LSE an
//     absolute error of that order times |s|max; gradients sum n or m terms of P_ij - 1/|P| whose
//     cancellation turns the logits' error into an error relative to the array's largest
//     element, hence the atol on max|ref|.  (Observed worst error / bound: 0.16 on the f32
//     cases, 0.40 on the scale-100 row.)
//   bf16 / f16 inputs: the reference reads the same rounded inputs, so the loss and LSEs carry
//     only the f32 accumulation error (same bounds as f32); the gradients are in addition rounded
//     to the output dtype on both sides, so they may differ by one ulp: rtol = atol = 2 x 2^-8
//     (bf16, 8 significant bits), rtol 2 x 2^-11 and atol 2e-4 (f16, 11 bits); observed worst
//     error / bound 0.68 (f16 gradients: one-ulp roundings).
//   floor (gradients only): 1e-6 x |dL/dl| x scale x max|x| (x 2/|x|min for COSINE), the
//     magnitude of the terms a gradient element sums before they cancel (COSINE's projection can
//     cancel a gradient to exactly 0, e.g. at d = 1); f32 cannot resolve less.
#include <gtest/gtest.h>

#if defined(FLASHNCE_EMULATED)
#include "cuda_emu.h" // the launch records (KernelsByArchitectureAndAlignment)
#endif

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "flashnce/flashnce.h"
#include "host/backend.h"                 // set_forward_split_for_testing (emulated builds)
#include "host/reference/reference_f64.h" // the naive-in-dtype gradient bound (DESIGN §5)
#include "host/validate.h"

#ifndef FLASHNCE_KERNEL_TEST_TARGET
#define FLASHNCE_KERNEL_TEST_TARGET "unknown"
#endif

namespace {

// The backend under test: FNCE_BACKEND_CUDA (the emu and gpu executables) or FNCE_BACKEND_HOST
// (flashnce_host_tests: the f32 CPU backend, host/blas/).
#ifndef FLASHNCE_TEST_BACKEND
#define FLASHNCE_TEST_BACKEND FNCE_BACKEND_CUDA
#endif
constexpr fnceBackend_t kBackend = FLASHNCE_TEST_BACKEND;

#define SKIP_WITHOUT_DEVICE()                                                                      \
  do {                                                                                             \
    if (!fnceBackendIsAvailable(kBackend))                                                         \
      GTEST_SKIP() << "no CUDA device (" FLASHNCE_KERNEL_TEST_TARGET " build): the CUDA "          \
                      "backend cannot run here; the emulated suite covers the kernels";            \
  } while (0)

// ---- dtype encoding (inputs are generated exactly representable in every dtype) -------------
uint32_t float_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
}
float bits_float(uint32_t u) {
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}
uint16_t exact_bf16(float x) {
  const uint32_t u = float_bits(x);
  EXPECT_EQ(u & 0xffffu, 0u) << x << " is not exactly a bf16";
  return uint16_t(u >> 16);
}
uint16_t exact_f16(float x) {
  const uint32_t u = float_bits(x);
  const uint32_t sign = (u >> 16) & 0x8000u;
  if ((u & 0x7fffffffu) == 0)
    return uint16_t(sign);
  const int e = int((u >> 23) & 0xff) - 127;
  EXPECT_TRUE(e >= -14 && e <= 15 && (u & 0x1fffu) == 0) << x << " is not exactly a normal f16";
  return uint16_t(sign | uint32_t(e + 15) << 10 | ((u >> 13) & 0x3ffu));
}
float bf16_value(uint16_t h) {
  return bits_float(uint32_t(h) << 16);
}
float f16_value(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (e == 0)
    return bits_float(float_bits(std::ldexp(float(mant), -24)) | sign);
  if (e == 31)
    return bits_float(sign | 0x7f800000u | (mant << 13));
  return bits_float(sign | ((e + 112u) << 23) | (mant << 13));
}
size_t elem_size(fnceDataType_t t) {
  return t == FNCE_F32 ? 4 : 2;
}

std::vector<uint8_t> encode(const std::vector<float>& v, fnceDataType_t t) {
  std::vector<uint8_t> out(v.size() * elem_size(t));
  for (size_t k = 0; k < v.size(); ++k) {
    if (t == FNCE_F32) {
      std::memcpy(&out[4 * k], &v[k], 4);
    } else {
      const uint16_t h = t == FNCE_BF16 ? exact_bf16(v[k]) : exact_f16(v[k]);
      std::memcpy(&out[2 * k], &h, 2);
    }
  }
  return out;
}
std::vector<float> decode(const std::vector<uint8_t>& raw, fnceDataType_t t) {
  std::vector<float> out(raw.size() / elem_size(t));
  for (size_t k = 0; k < out.size(); ++k) {
    if (t == FNCE_F32) {
      std::memcpy(&out[k], &raw[4 * k], 4);
    } else {
      uint16_t h;
      std::memcpy(&h, &raw[2 * k], 2);
      out[k] = t == FNCE_BF16 ? bf16_value(h) : f16_value(h);
    }
  }
  return out;
}

// ---- memory in a backend, through the convenience API ----------------------------------------
class Buffer {
public:
  Buffer(fnceBackend_t be, size_t bytes) : be_(be), bytes_(bytes) {
    if (bytes_ > 0) {
      EXPECT_EQ(fnceMalloc(be_, &ptr_, bytes_), FNCE_SUCCESS) << fnceGetLastErrorMessage();
    }
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() {
    if (ptr_)
      fnceFree(be_, ptr_);
  }
  void* get() const { return ptr_; }
  template <typename T> T* as() const { return static_cast<T*>(ptr_); }
  void upload(const void* src) {
    if (bytes_) {
      EXPECT_EQ(fnceMemcpy(be_, ptr_, src, bytes_, FNCE_COPY_HOST_TO_BACKEND), FNCE_SUCCESS);
    }
  }
  // 0x7f in every byte: 3.39e38 as f32, NaN-free; for f16/bf16 0x7f7f is a finite large value
  // too (bf16 3.39e38, f16 NaN-like 0x7f7f is NaN: poisoned 16-bit outputs must be overwritten
  // either way, a NaN where the reference is finite fails).
  void poison() {
    std::vector<uint8_t> p(bytes_, 0x7f);
    upload(p.data());
  }
  std::vector<uint8_t> download() const {
    std::vector<uint8_t> out(bytes_);
    if (bytes_) {
      EXPECT_EQ(fnceMemcpy(be_, out.data(), ptr_, bytes_, FNCE_COPY_BACKEND_TO_HOST), FNCE_SUCCESS);
    }
    return out;
  }
  std::vector<float> download_floats() const {
    const std::vector<uint8_t> raw = download();
    std::vector<float> out(raw.size() / 4);
    if (!out.empty())
      std::memcpy(out.data(), raw.data(), raw.size());
    return out;
  }

private:
  fnceBackend_t be_;
  size_t bytes_;
  void* ptr_ = nullptr;
};

// ---- problems ------------------------------------------------------------------------------
struct Combo {
  fnceSimilarity_t sim;
  fncePositives_t pos;
  int exclude_self;
  fnceNormalizer_t norm;
  fnceDirection_t dir;
  fnceDataType_t dtype;
  bool self;
};

struct Shape {
  int64_t n, m, d, lda, ldb;
};

struct Inputs {
  Combo c;
  Shape s;
  float scale;
  int allow_tf32 = 0;
  std::vector<float> a, b; // with padding up to lda / ldb (padding = 4096: reading it shows)
  std::vector<int64_t> targets, labels_a, labels_b;
};

float default_scale(fnceSimilarity_t sim, int64_t d) {
  const float r = 1.0f / std::sqrt(float(d));
  switch (sim) {
  case FNCE_SIM_DOT:
    return 3.0f * r;
  case FNCE_SIM_COSINE:
    return 8.0f;
  case FNCE_SIM_NEG_SQ_DIST:
    return 2.0f * r;
  }
  return 1.0f;
}

Inputs make_inputs(const Combo& c, const Shape& s, uint64_t seed, float value_range = 1.0f) {
  Inputs in;
  in.c = c;
  in.s = s;
  in.scale = default_scale(c.sim, s.d);
  std::mt19937_64 rng(seed);
  // k / 64 with |k| <= 64 * range: exact in f32, bf16 and f16.
  const int kmax = int(64 * value_range);
  std::uniform_int_distribution<int> val(-kmax, kmax);
  auto fill = [&](std::vector<float>& x, int64_t rows, int64_t ld) {
    x.assign(size_t(rows * ld), 4096.0f);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < s.d; ++k)
        x[size_t(r * ld + k)] = float(val(rng)) / 64.0f;
  };
  fill(in.a, s.n, s.lda);
  if (!c.self)
    fill(in.b, s.m, s.ldb);
  const int64_t m = c.self ? s.n : s.m;
  std::uniform_int_distribution<int64_t> col(0, m - 1);
  std::uniform_int_distribution<int> pct(0, 99);
  in.targets.resize(size_t(s.n));
  for (auto& t : in.targets)
    t = pct(rng) < 15 ? -1 : col(rng); // some rows without a positive
  const int64_t classes = std::max<int64_t>(2, std::min(s.n, m) / 3);
  std::uniform_int_distribution<int64_t> lab(0, classes - 1);
  in.labels_a.resize(size_t(s.n));
  for (auto& l : in.labels_a)
    l = lab(rng);
  in.labels_b.resize(size_t(m));
  for (auto& l : in.labels_b)
    l = lab(rng);
  return in;
}

struct Result {
  std::vector<float> loss, row_lse, col_lse, grad_a, grad_b;
  float grad_scale = 0.0f;
};

struct RunOptions {
  bool grad_a = true, grad_b = true, grad_scale = true;
};

// Forward then backward on one backend (backward reads that backend's own LSEs).
Result run(const Inputs& in, fnceReduction_t red, fnceBackend_t be,
           const std::vector<float>& grad_loss, RunOptions opt = {}) {
  const Combo& c = in.c;
  const Shape& s = in.s;
  const int64_t n = s.n, m = c.self ? s.n : s.m, d = s.d;
  const bool sym = c.dir == FNCE_DIRECTION_SYMMETRIC;
  const fnceDataType_t t = c.dtype;
  Result res;

  const std::vector<uint8_t> a_raw = encode(in.a, t);
  Buffer a(be, a_raw.size());
  a.upload(a_raw.data());
  std::vector<uint8_t> b_raw;
  if (!c.self)
    b_raw = encode(in.b, t);
  Buffer b(be, b_raw.size());
  b.upload(b_raw.data());
  Buffer scale(be, 4);
  scale.upload(&in.scale);
  Buffer targets(be, in.targets.size() * 8), la(be, in.labels_a.size() * 8),
      lb(be, c.self ? 0 : in.labels_b.size() * 8);
  targets.upload(in.targets.data());
  la.upload(in.labels_a.data());
  if (!c.self)
    lb.upload(in.labels_b.data());

  fnceLossParams p;
  EXPECT_EQ(fnceLossParamsInit(&p), FNCE_SUCCESS);
  p.backend = be;
  p.dtype = t;
  p.n = n;
  p.m = m;
  p.d = d;
  p.a = a.get();
  p.lda = s.lda;
  p.b = c.self ? nullptr : b.get();
  p.ldb = c.self ? 0 : s.ldb;
  p.logit_scale = scale.as<float>();
  p.similarity = c.sim;
  p.positives = c.pos;
  p.targets = c.pos == FNCE_POSITIVES_TARGETS ? targets.as<int64_t>() : nullptr;
  p.labels_a = c.pos == FNCE_POSITIVES_LABELS ? la.as<int64_t>() : nullptr;
  p.labels_b = (c.pos == FNCE_POSITIVES_LABELS && !c.self) ? lb.as<int64_t>() : nullptr;
  p.exclude_self = c.exclude_self;
  p.normalizer = c.norm;
  p.direction = c.dir;
  p.reduction = red;
  p.allow_tf32 = in.allow_tf32;

  const int64_t loss_count = red == FNCE_REDUCTION_NONE ? n + (sym ? m : 0) : 1;
  Buffer loss(be, size_t(loss_count) * 4), row_lse(be, size_t(n) * 4),
      col_lse(be, sym ? size_t(m) * 4 : 0);
  loss.poison();
  row_lse.poison();
  col_lse.poison();
  size_t ws_bytes = 0;
  EXPECT_EQ(fnceForwardWorkspaceSize(&p, &ws_bytes), FNCE_SUCCESS) << fnceGetLastErrorMessage();
  {
    Buffer ws(be, ws_bytes);
    ws.poison();
    const fnceStatus_t st =
        fnceForward(&p, loss.as<float>(), row_lse.as<float>(), sym ? col_lse.as<float>() : nullptr,
                    ws.get(), ws_bytes, nullptr);
    EXPECT_EQ(st, FNCE_SUCCESS) << fnceGetLastErrorMessage();
    EXPECT_EQ(fnceSynchronize(be, nullptr), FNCE_SUCCESS);
  }
  res.loss = loss.download_floats();
  res.row_lse = row_lse.download_floats();
  res.col_lse = col_lse.download_floats();

  EXPECT_EQ(grad_loss.size(), size_t(loss_count));
  Buffer gl(be, size_t(loss_count) * 4);
  gl.upload(grad_loss.data());
  Buffer ga(be, opt.grad_a ? size_t(n * d) * elem_size(t) : 0);
  Buffer gb(be, (opt.grad_b && !c.self) ? size_t(m * d) * elem_size(t) : 0);
  Buffer gs(be, opt.grad_scale ? 4 : 0);
  ga.poison();
  gb.poison();
  gs.poison();
  EXPECT_EQ(fnceBackwardWorkspaceSize(&p, &ws_bytes), FNCE_SUCCESS) << fnceGetLastErrorMessage();
  {
    Buffer ws(be, ws_bytes);
    ws.poison();
    const fnceStatus_t st =
        fnceBackward(&p, row_lse.as<float>(), sym ? col_lse.as<float>() : nullptr, gl.as<float>(),
                     ga.get(), gb.get(), gs.as<float>(), ws.get(), ws_bytes, nullptr);
    EXPECT_EQ(st, FNCE_SUCCESS) << fnceGetLastErrorMessage();
    EXPECT_EQ(fnceSynchronize(be, nullptr), FNCE_SUCCESS);
  }
  res.grad_a = decode(ga.download(), t);
  res.grad_b = decode(gb.download(), t);
  if (opt.grad_scale)
    res.grad_scale = gs.download_floats()[0];
  return res;
}

std::vector<float> make_grad_loss(fnceReduction_t red, int64_t count, uint64_t seed) {
  if (red != FNCE_REDUCTION_NONE)
    return {0.75f};
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> k(-8, 8);
  std::vector<float> g(static_cast<size_t>(count));
  for (auto& x : g)
    x = float(k(rng)) / 8.0f;
  return g;
}

// ---- comparison -----------------------------------------------------------------------------
struct Tolerance {
  double value_rtol, value_atol; // loss, LSEs
  double grad_rtol, grad_atol;   // grad_a, grad_b, grad_logit_scale
};

Tolerance tolerance(fnceDataType_t t) {
  switch (t) {
  case FNCE_F32:
    return {2e-5, 2e-5, 1e-4, 5e-5};
  case FNCE_BF16:
    return {2e-5, 2e-5, 2.0 * std::ldexp(1.0, -8), 2.0 * std::ldexp(1.0, -8)};
  case FNCE_F16:
    return {2e-5, 2e-5, 2.0 * std::ldexp(1.0, -11), 2e-4};
  }
  return {0, 0, 0, 0};
}

// floor: an absolute bound below which differences are f32 rounding of the terms that cancel
// (see natural_gradient_scale); 0 for values.
void expect_close(const std::string& what, const std::vector<float>& got,
                  const std::vector<float>& ref, double rtol, double atol, double floor = 0.0) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  double max_ref = 0.0;
  for (float r : ref)
    if (std::isfinite(r))
      max_ref = std::max(max_ref, double(std::fabs(r)));
  const double abs_bound = std::max(atol * max_ref, floor);
  int failures = 0;
  double worst = 0.0;
  for (size_t k = 0; k < ref.size(); ++k) {
    const double r = ref[k], g = got[k];
    bool ok;
    if (std::isnan(r))
      ok = std::isnan(g);
    else if (std::isinf(r))
      ok = g == r;
    else
      ok = std::isfinite(g) && std::fabs(g - r) <= abs_bound + rtol * std::fabs(r);
    if (std::isfinite(r) && std::isfinite(g))
      worst = std::max(worst, std::fabs(g - r) / (abs_bound + rtol * std::fabs(r) + 1e-300));
    if (!ok && ++failures <= 5)
      ADD_FAILURE() << what << "[" << k << "] = " << g << ", reference " << r << " (bound "
                    << abs_bound + rtol * std::fabs(r) << ")";
  }
  EXPECT_EQ(failures, 0) << what << ": " << failures << " of " << ref.size()
                         << " elements out of bounds";
  if (std::getenv("FLASHNCE_TEST_VERBOSE"))
    std::printf("  %-40s worst error / bound = %.3g\n", what.c_str(), worst);
}

void expect_bitwise(const std::string& what, const std::vector<float>& x,
                    const std::vector<float>& y) {
  ASSERT_EQ(x.size(), y.size()) << what;
  if (x.empty())
    return;
  EXPECT_EQ(std::memcmp(x.data(), y.data(), x.size() * sizeof(float)), 0)
      << what << " differs between two identical runs";
}

// The magnitude of the terms a gradient element sums before they cancel: |dL/dl| x scale x
// max|x| (x 1/|x| for COSINE, whose projection can cancel a gradient to exactly 0, e.g. d = 1).
// 1e-6 of it (a few f32 ulps) is the absolute floor of the gradient bounds: f32 arithmetic cannot
// resolve less, and any real defect is far larger.
double natural_gradient_scale(const Inputs& in, const std::vector<float>& grad_loss) {
  double g = 0.0, x = 0.0, inv = 1.0;
  for (float v : grad_loss)
    g = std::max(g, double(std::fabs(v)));
  auto rows = [&](const std::vector<float>& v, int64_t count, int64_t ld) {
    for (int64_t r = 0; r < count; ++r) {
      double ss = 0.0;
      for (int64_t k = 0; k < in.s.d; ++k) {
        const double e = v[size_t(r * ld + k)];
        x = std::max(x, std::fabs(e));
        ss += e * e;
      }
      if (in.c.sim == FNCE_SIM_COSINE)
        inv = std::max(inv, 1.0 / std::max(std::sqrt(ss), 1e-12));
    }
  };
  rows(in.a, in.s.n, in.s.lda);
  if (!in.c.self)
    rows(in.b, in.s.m, in.s.ldb);
  return g * std::fabs(double(in.scale)) * std::max(x, 1.0) * 2.0 * inv;
}

// DESIGN §5's bound for 16-bit (and TF32) inputs: the error of the same computation done naively
// in that dtype.  The naive implementation rounds its dlogits G_ij to the dtype before the
// gradient GEMMs, as the tensor-core kernels do; the reference in double with that rounding
// (reference::GradRounding) against the exact one gives that error: max |naive - exact| over
// each gradient array (0 for exact f32).
struct NaiveError {
  double grad_a = 0.0, grad_b = 0.0;
};
NaiveError naive_gradient_error(const Inputs& in, fnceReduction_t red,
                                const std::vector<float>& grad_loss) {
  using flashnce::reference::GradRounding;
  const fnceDataType_t t = in.c.dtype;
  const GradRounding rounding = t == FNCE_BF16  ? GradRounding::bf16
                                : t == FNCE_F16 ? GradRounding::f16
                                : in.allow_tf32 ? GradRounding::tf32
                                                : GradRounding::none;
  NaiveError out;
  if (rounding == GradRounding::none)
    return out;
  const Combo& c = in.c;
  const std::vector<uint8_t> a = encode(in.a, t);
  const std::vector<uint8_t> b = c.self ? std::vector<uint8_t>{} : encode(in.b, t);
  fnceLossParams p;
  EXPECT_EQ(fnceLossParamsInit(&p), FNCE_SUCCESS);
  p.backend = FNCE_BACKEND_CPU;
  p.dtype = t;
  p.n = in.s.n;
  p.m = c.self ? in.s.n : in.s.m;
  p.d = in.s.d;
  p.a = a.data();
  p.lda = in.s.lda;
  p.b = c.self ? nullptr : b.data();
  p.ldb = c.self ? 0 : in.s.ldb;
  p.logit_scale = &in.scale;
  p.similarity = c.sim;
  p.positives = c.pos;
  p.targets = c.pos == FNCE_POSITIVES_TARGETS ? in.targets.data() : nullptr;
  p.labels_a = c.pos == FNCE_POSITIVES_LABELS ? in.labels_a.data() : nullptr;
  p.labels_b = (c.pos == FNCE_POSITIVES_LABELS && !c.self) ? in.labels_b.data() : nullptr;
  p.exclude_self = c.exclude_self;
  p.normalizer = c.norm;
  p.direction = c.dir;
  p.reduction = red;
  flashnce::Problem pr;
  EXPECT_EQ(flashnce::validate(&p, &pr), FNCE_SUCCESS) << fnceGetLastErrorMessage();
  const flashnce::reference::InputsF64 x = flashnce::reference::load_inputs(pr);
  const std::vector<double> gl(grad_loss.begin(), grad_loss.end());
  const auto exact = flashnce::reference::backward_f64(pr, x, gl.data());
  const auto naive = flashnce::reference::backward_f64(pr, x, gl.data(), rounding);
  auto worst = [](const std::vector<double>& u, const std::vector<double>& v) {
    double w = 0.0;
    for (size_t k = 0; k < u.size() && k < v.size(); ++k)
      if (std::isfinite(u[k]) && std::isfinite(v[k]))
        w = std::max(w, std::fabs(u[k] - v[k]));
    return w;
  };
  out.grad_a = worst(exact.grad_a, naive.grad_a);
  out.grad_b = worst(exact.grad_b, naive.grad_b);
  return out;
}

void compare(const Inputs& in, fnceReduction_t red, const Result& got, const Result& ref,
             const std::string& ctx, const std::vector<float>& grad_loss) {
  const Tolerance tol = tolerance(in.c.dtype);
  const double floor = 1e-6 * natural_gradient_scale(in, grad_loss);
  const NaiveError naive = naive_gradient_error(in, red, grad_loss);
  expect_close(ctx + " loss", got.loss, ref.loss, tol.value_rtol, tol.value_atol);
  expect_close(ctx + " row_lse", got.row_lse, ref.row_lse, tol.value_rtol, tol.value_atol);
  if (in.c.dir == FNCE_DIRECTION_SYMMETRIC)
    expect_close(ctx + " col_lse", got.col_lse, ref.col_lse, tol.value_rtol, tol.value_atol);
  expect_close(ctx + " grad_a", got.grad_a, ref.grad_a, tol.grad_rtol, tol.grad_atol,
               std::max(floor, 2.0 * naive.grad_a));
  expect_close(ctx + " grad_b", got.grad_b, ref.grad_b, tol.grad_rtol, tol.grad_atol,
               std::max(floor, 2.0 * naive.grad_b));
  expect_close(ctx + " grad_logit_scale", {got.grad_scale}, {ref.grad_scale}, tol.grad_rtol,
               tol.grad_atol, floor);
}

const char* name(fnceSimilarity_t s) {
  return s == FNCE_SIM_DOT ? "dot" : s == FNCE_SIM_COSINE ? "cosine" : "negsqdist";
}
const char* name(fncePositives_t p) {
  switch (p) {
  case FNCE_POSITIVES_DIAGONAL:
    return "diagonal";
  case FNCE_POSITIVES_TARGETS:
    return "targets";
  case FNCE_POSITIVES_LABELS:
    return "labels";
  case FNCE_POSITIVES_VIEW_PAIRS:
    return "viewpairs";
  }
  return "?";
}
const char* name(fnceDataType_t t) {
  return t == FNCE_F32 ? "f32" : t == FNCE_F16 ? "f16" : "bf16";
}
const char* name(fnceReduction_t r) {
  return r == FNCE_REDUCTION_MEAN ? "mean" : r == FNCE_REDUCTION_SUM ? "sum" : "none";
}

std::string combo_name(const Combo& c) {
  std::ostringstream o;
  o << name(c.sim) << "_" << name(c.pos) << "_"
    << (c.self           ? "self"
        : c.exclude_self ? "exclself"
                         : "keepself")
    << "_" << (c.norm == FNCE_NORMALIZER_ALL ? "all" : "negatives") << "_"
    << (c.dir == FNCE_DIRECTION_ROWS ? "rows" : "symmetric") << "_" << name(c.dtype);
  return o.str();
}

std::vector<Combo> all_combos() {
  std::vector<Combo> out;
  for (fnceDataType_t t : {FNCE_F32, FNCE_BF16, FNCE_F16})
    for (fnceSimilarity_t sim : {FNCE_SIM_DOT, FNCE_SIM_COSINE, FNCE_SIM_NEG_SQ_DIST})
      for (fnceNormalizer_t nz : {FNCE_NORMALIZER_ALL, FNCE_NORMALIZER_NEGATIVES})
        for (fnceDirection_t dir : {FNCE_DIRECTION_ROWS, FNCE_DIRECTION_SYMMETRIC}) {
          for (fncePositives_t pos :
               {FNCE_POSITIVES_DIAGONAL, FNCE_POSITIVES_TARGETS, FNCE_POSITIVES_LABELS})
            for (int excl : {0, 1})
              out.push_back(Combo{sim, pos, excl, nz, dir, t, false});
          // Self mode (b = a): exclude_self forced on, DIAGONAL rejected, VIEW_PAIRS only here.
          for (fncePositives_t pos :
               {FNCE_POSITIVES_TARGETS, FNCE_POSITIVES_LABELS, FNCE_POSITIVES_VIEW_PAIRS})
            out.push_back(Combo{sim, pos, 1, nz, dir, t, true});
        }
  return out;
}

// Shapes: one small ragged shape (n, m, d from {1, 7, 65, 123, 257}, n != m), rotating with the
// combination, and one multi-tile shape (several 64-row tiles, column tiles, depth chunks, and
// padded strides).  DIAGONAL needs n <= m; VIEW_PAIRS (self mode) needs an even n.
std::vector<Shape> shapes_for(const Combo& c, size_t index) {
  std::vector<Shape> out;
  if (c.self) {
    static const int64_t odd[][2] = {{7, 65}, {65, 7}, {123, 1}, {1, 123}, {257, 7}};
    static const int64_t even[][2] = {{8, 65}, {66, 7}, {124, 1}, {2, 123}};
    const bool vp = c.pos == FNCE_POSITIVES_VIEW_PAIRS;
    const int64_t* nd = vp ? even[index % 4] : odd[index % 5];
    out.push_back(Shape{nd[0], nd[0], nd[1], nd[1], 0});
    out.push_back(Shape{100, 100, 40, c.dtype == FNCE_F32 ? 43 : 48, 0}); // (see below)
    return out;
  }
  static const int64_t le[][3] = {
      {7, 65, 1}, {1, 7, 123}, {65, 123, 7}, {7, 257, 65}, {65, 257, 1}};
  static const int64_t any[][3] = {{123, 7, 65}, {257, 65, 1}, {65, 1, 7}, {7, 123, 257}};
  const int64_t* s =
      (c.pos == FNCE_POSITIVES_DIAGONAL || index % 2 == 0) ? le[index % 5] : any[index % 4];
  out.push_back(Shape{s[0], s[1], s[2], s[2], s[2]});
  // 2 x 2 tiles of the tensor-core forward (128 x 128, ragged) and 3 x 3 of the 64 x 64 kernels.
  // 16-bit inputs: row pitches of 96 and 112 bytes, which TMA takes, so that on a Hopper device
  // (the emulator's default) this shape runs the wgmma forward, and the first shape's odd pitches
  // the mma.sync fallback; CTest runs these inputs again as a compute capability 8.0 device.
  if (c.dtype == FNCE_F32)
    out.push_back(Shape{140, 150, 40, 43, 41});
  else
    out.push_back(Shape{140, 150, 40, 48, 56});
  return out;
}

class Combination : public ::testing::TestWithParam<Combo> {};

TEST_P(Combination, MatchesReferenceAndIsDeterministic) {
  SKIP_WITHOUT_DEVICE();
  const Combo c = GetParam();
  const std::vector<Combo> all = all_combos();
  size_t index = 0;
  for (size_t k = 0; k < all.size(); ++k)
    if (combo_name(all[k]) == combo_name(c))
      index = k;
  const std::vector<Shape> shapes = shapes_for(c, index);
  for (size_t si = 0; si < shapes.size(); ++si) {
    const Shape& s = shapes[si];
    const Inputs in = make_inputs(c, s, 1000 + index * 7 + si);
    const int64_t m = c.self ? s.n : s.m;
    for (fnceReduction_t red : {FNCE_REDUCTION_MEAN, FNCE_REDUCTION_SUM, FNCE_REDUCTION_NONE}) {
      if (si == 1 && red == FNCE_REDUCTION_SUM)
        continue; // SUM differs from MEAN only by the weight: the small shape covers it
      std::ostringstream ctx;
      ctx << "n=" << s.n << " m=" << m << " d=" << s.d << " lda=" << s.lda << " " << name(red);
      SCOPED_TRACE(ctx.str());
      const int64_t count =
          red == FNCE_REDUCTION_NONE ? s.n + (c.dir == FNCE_DIRECTION_SYMMETRIC ? m : 0) : 1;
      const std::vector<float> gl = make_grad_loss(red, count, 77 + index);
      const Result ref = run(in, red, FNCE_BACKEND_CPU, gl);
      const Result got = run(in, red, kBackend, gl);
      compare(in, red, got, ref, ctx.str(), gl);
      if (si == 1 && red == FNCE_REDUCTION_NONE) { // a second run: bitwise the same
        const Result again = run(in, red, kBackend, gl);
        expect_bitwise("loss", got.loss, again.loss);
        expect_bitwise("row_lse", got.row_lse, again.row_lse);
        expect_bitwise("col_lse", got.col_lse, again.col_lse);
        expect_bitwise("grad_a", got.grad_a, again.grad_a);
        expect_bitwise("grad_b", got.grad_b, again.grad_b);
        expect_bitwise("grad_logit_scale", {got.grad_scale}, {again.grad_scale});
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Contract, Combination, ::testing::ValuesIn(all_combos()),
                         [](const ::testing::TestParamInfo<Combo>& info) {
                           return combo_name(info.param);
                         });

// ---- targeted cases ---------------------------------------------------------------------------
Combo basic(fnceSimilarity_t sim, fnceDataType_t t) {
  return Combo{sim,  FNCE_POSITIVES_DIAGONAL, 0, FNCE_NORMALIZER_ALL, FNCE_DIRECTION_SYMMETRIC, t,
               false};
}

// scale 100 on unnormalised inputs: logits in the thousands, exp would overflow f32 naively.
TEST(Kernels, LargeScaleRowDoesNotOverflow) {
  SKIP_WITHOUT_DEVICE();
  for (fnceDataType_t t : {FNCE_F32, FNCE_BF16}) {
    Inputs in = make_inputs(basic(FNCE_SIM_DOT, t), Shape{65, 70, 65, 65, 65}, 5, 2.0f);
    in.scale = 100.0f;
    for (fnceReduction_t red : {FNCE_REDUCTION_MEAN, FNCE_REDUCTION_NONE}) {
      SCOPED_TRACE(name(t));
      const std::vector<float> gl = make_grad_loss(red, red == FNCE_REDUCTION_NONE ? 135 : 1, 3);
      const Result ref = run(in, red, FNCE_BACKEND_CPU, gl);
      const Result got = run(in, red, kBackend, gl);
      for (float x : got.loss)
        ASSERT_TRUE(std::isfinite(x));
      ASSERT_GT(*std::max_element(got.row_lse.begin(), got.row_lse.end()), 100.0f)
          << "the test must reach logits far beyond exp's f32 range";
      compare(in, red, got, ref, std::string("scale 100 ") + name(t), gl);
    }
  }
}

// Every row without a positive: loss 0 (MEAN over no valid row is 0), every gradient exactly 0.
TEST(Kernels, AllMaskedRowsGiveZeroLossAndGradient) {
  SKIP_WITHOUT_DEVICE();
  Combo c = basic(FNCE_SIM_COSINE, FNCE_F32);
  c.pos = FNCE_POSITIVES_TARGETS;
  for (fnceDirection_t dir : {FNCE_DIRECTION_ROWS, FNCE_DIRECTION_SYMMETRIC}) {
    c.dir = dir;
    Inputs in = make_inputs(c, Shape{70, 9, 13, 13, 13}, 11);
    for (auto& t : in.targets)
      t = -1;
    const Result got = run(in, FNCE_REDUCTION_MEAN, kBackend, {1.0f});
    EXPECT_EQ(got.loss[0], 0.0f);
    for (float g : got.grad_a)
      ASSERT_EQ(g, 0.0f);
    for (float g : got.grad_b)
      ASSERT_EQ(g, 0.0f);
    EXPECT_EQ(got.grad_scale, 0.0f);
    const Result none = run(in, FNCE_REDUCTION_NONE, kBackend,
                            std::vector<float>(dir == FNCE_DIRECTION_ROWS ? 70 : 79, 1.0f));
    for (float x : none.loss)
      ASSERT_EQ(x, 0.0f);
  }
}

// A target >= m makes that row's loss NaN (counted, so MEAN is NaN) and poisons the gradients
// it touches; a non-finite scale makes every output NaN.  Same as the reference.
TEST(Kernels, NanRulesMatchReference) {
  SKIP_WITHOUT_DEVICE();
  Combo c = basic(FNCE_SIM_DOT, FNCE_F32);
  c.pos = FNCE_POSITIVES_TARGETS;
  c.dir = FNCE_DIRECTION_ROWS;
  Inputs in = make_inputs(c, Shape{9, 12, 5, 5, 5}, 13);
  in.targets[3] = 12;
  for (fnceReduction_t red : {FNCE_REDUCTION_MEAN, FNCE_REDUCTION_NONE}) {
    const std::vector<float> gl = make_grad_loss(red, red == FNCE_REDUCTION_NONE ? 9 : 1, 5);
    const Result ref = run(in, red, FNCE_BACKEND_CPU, gl);
    const Result got = run(in, red, kBackend, gl);
    EXPECT_TRUE(std::isnan(got.loss[red == FNCE_REDUCTION_NONE ? 3 : 0]));
    compare(in, red, got, ref, "target >= m", gl);
  }
  c.dir = FNCE_DIRECTION_SYMMETRIC;
  Inputs inf_scale = make_inputs(c, Shape{9, 12, 5, 5, 5}, 17);
  inf_scale.scale = std::numeric_limits<float>::infinity();
  const Result got = run(inf_scale, FNCE_REDUCTION_MEAN, kBackend, {1.0f});
  EXPECT_TRUE(std::isnan(got.loss[0]));
  for (float x : got.row_lse)
    ASSERT_TRUE(std::isnan(x));
  for (float x : got.col_lse)
    ASSERT_TRUE(std::isnan(x));
  for (float x : got.grad_a)
    ASSERT_TRUE(std::isnan(x));
  for (float x : got.grad_b)
    ASSERT_TRUE(std::isnan(x));
  EXPECT_TRUE(std::isnan(got.grad_scale));
}

// d up to 4096 (tiled over d in both directions); NEG_SQ_DIST also in bf16 with pitches TMA takes
// (the Hopper forward streaming its 64 chunks; the gradient on mma.sync, d > 512).
TEST(Kernels, LargeDepth4096) {
  SKIP_WITHOUT_DEVICE();
  for (int k = 0; k < 4; ++k) {
    const fnceSimilarity_t sim = k == 0   ? FNCE_SIM_DOT
                                 : k == 1 ? FNCE_SIM_COSINE
                                          : FNCE_SIM_NEG_SQ_DIST;
    const fnceDataType_t t = k == 1 || k == 3 ? FNCE_BF16 : FNCE_F32;
    const Inputs in =
        make_inputs(basic(sim, t), Shape{9, 12, 4096, 4096, k == 3 ? 4104 : 4100}, 21);
    const Result ref = run(in, FNCE_REDUCTION_MEAN, FNCE_BACKEND_CPU, {1.0f});
    const Result got = run(in, FNCE_REDUCTION_MEAN, kBackend, {1.0f});
    compare(in, FNCE_REDUCTION_MEAN, got, ref, std::string("d=4096 ") + name(sim) + " " + name(t),
            {1.0f});
  }
}

// d = 1000 on the tensor-core configurations: the gradient kernel's passes (two of 512 columns on
// a 227 KB device such as the emulator's H100, the last one ragged) with f16, TF32 and bf16
// (pitches TMA takes: on an H100 / H200 d > 512 leaves the Hopper gradient kernel for the mma.sync
// one).
TEST(Kernels, LargeDepthGradientPasses) {
  SKIP_WITHOUT_DEVICE();
  for (fnceDataType_t t : {FNCE_F16, FNCE_F32, FNCE_BF16}) {
    Combo c = basic(FNCE_SIM_COSINE, t);
    c.pos = FNCE_POSITIVES_LABELS;
    Inputs in = make_inputs(c, Shape{70, 66, 1000, 1000, 1008}, 23);
    in.allow_tf32 = t == FNCE_F32;
    const std::vector<float> gl = make_grad_loss(FNCE_REDUCTION_NONE, in.s.n + in.s.m, 25);
    const Result ref = run(in, FNCE_REDUCTION_NONE, FNCE_BACKEND_CPU, gl);
    const Result got = run(in, FNCE_REDUCTION_NONE, kBackend, gl);
    compare(in, FNCE_REDUCTION_NONE, got, ref, std::string("d=1000 ") + name(t), gl);
  }
}

// Optional outputs: each gradient alone (the kernels skip what is not asked for).
// f32 (FFMA kernels) and bf16 with pitches TMA takes (the Hopper kernels on an H100 / H200).
TEST(Kernels, OptionalGradientsAlone) {
  SKIP_WITHOUT_DEVICE();
  for (fnceDataType_t t : {FNCE_F32, FNCE_BF16}) {
    const Inputs in =
        make_inputs(basic(FNCE_SIM_NEG_SQ_DIST, t),
                    t == FNCE_F32 ? Shape{66, 70, 9, 9, 9} : Shape{66, 70, 72, 72, 80}, 23);
    const Result ref = run(in, FNCE_REDUCTION_SUM, FNCE_BACKEND_CPU, {1.0f});
    for (int which = 0; which < 3; ++which) {
      RunOptions opt;
      opt.grad_a = which == 0;
      opt.grad_b = which == 1;
      opt.grad_scale = which == 2;
      const Result got = run(in, FNCE_REDUCTION_SUM, kBackend, {1.0f}, opt);
      const Tolerance tol = tolerance(t);
      if (opt.grad_a)
        expect_close("grad_a alone", got.grad_a, ref.grad_a, tol.grad_rtol, tol.grad_atol);
      if (opt.grad_b)
        expect_close("grad_b alone", got.grad_b, ref.grad_b, tol.grad_rtol, tol.grad_atol);
      if (opt.grad_scale)
        expect_close("grad_logit_scale alone", {got.grad_scale}, {ref.grad_scale}, tol.grad_rtol,
                     tol.grad_atol);
    }
  }
}

// allow_tf32 (f32 on TF32 tensor cores).  The usual inputs (k/64) are exact in TF32, so the f32
// bounds hold; inputs with full 24-bit mantissas must then give a different (rounded) loss, which
// shows that the TF32 path really ran, within TF32's bound (2^-10 relative per input, x 2 x 4).
TEST(Kernels, Tf32TensorCores) {
  SKIP_WITHOUT_DEVICE();
  for (fnceSimilarity_t sim : {FNCE_SIM_DOT, FNCE_SIM_COSINE, FNCE_SIM_NEG_SQ_DIST}) {
    Inputs in = make_inputs(basic(sim, FNCE_F32), Shape{123, 130, 65, 67, 65}, 31);
    in.allow_tf32 = 1;
    const Result ref = run(in, FNCE_REDUCTION_MEAN, FNCE_BACKEND_CPU, {1.0f});
    const Result got = run(in, FNCE_REDUCTION_MEAN, kBackend, {1.0f});
    compare(in, FNCE_REDUCTION_MEAN, got, ref, std::string("tf32 exact inputs ") + name(sim),
            {1.0f});
    for (float& v : in.a)
      v = v * (1.0f + 1.0f / 3.0f) + 1e-3f; // full mantissas
    for (float& v : in.b)
      v = v * (1.0f - 1.0f / 7.0f) - 1e-3f;
    const Result ref2 = run(in, FNCE_REDUCTION_MEAN, FNCE_BACKEND_CPU, {1.0f});
    const Result tf32 = run(in, FNCE_REDUCTION_MEAN, kBackend, {1.0f});
    in.allow_tf32 = 0;
    const Result exact = run(in, FNCE_REDUCTION_MEAN, kBackend, {1.0f});
    if (kBackend == FNCE_BACKEND_HOST) { // documented: the host backend ignores allow_tf32
      EXPECT_EQ(float_bits(tf32.loss[0]), float_bits(exact.loss[0]));
      expect_bitwise("host grad_a with allow_tf32", tf32.grad_a, exact.grad_a);
    } else {
      EXPECT_NE(float_bits(tf32.loss[0]), float_bits(exact.loss[0]))
          << "allow_tf32 = 1 gave the exact-f32 loss bit for bit: the TF32 path did not run";
    }
    expect_close(std::string("tf32 loss ") + name(sim), tf32.loss, ref2.loss, 8e-3, 8e-3);
    expect_close(std::string("exact f32 loss ") + name(sim), exact.loss, ref2.loss, 2e-5, 2e-5);
  }
}

// Gradient coefficients beyond f16's range (65504): the tensor-core gradient GEMM splits each f32
// coefficient into two 16-bit words, and for f16 first scales each tile row by a power of two.  A
// weight of 2^17 (SUM with grad_loss 2^18, halved by SYMMETRIC) makes |G| ~ 1e5 while the
// gradient itself stays in range (|grad| <= scale * 2 |w| * max|x| <= 2^15 at scale 2^-6); NONE
// with per-row / per-column weights of 2^-24 .. 2^17 mixes magnitudes inside one tile row.
TEST(Kernels, GradientCoefficientsBeyondHalfRange) {
  SKIP_WITHOUT_DEVICE();
  for (fnceDataType_t t : {FNCE_F16, FNCE_BF16})
    for (fnceSimilarity_t sim : {FNCE_SIM_DOT, FNCE_SIM_NEG_SQ_DIST}) {
      Combo c = basic(sim, t);
      c.pos = FNCE_POSITIVES_LABELS;
      Inputs in = make_inputs(c, Shape{100, 130, 40, 43, 41}, 71);
      in.scale = 1.0f / 64.0f;
      const std::vector<float> sum_gl = {262144.0f};
      std::vector<float> none_gl(size_t(in.s.n + in.s.m));
      std::mt19937_64 rng(73);
      std::uniform_int_distribution<int> e(-24, 17);
      for (float& g : none_gl)
        g = std::ldexp((rng() & 1) ? 1.0f : -1.0f, e(rng));
      for (fnceReduction_t red : {FNCE_REDUCTION_SUM, FNCE_REDUCTION_NONE}) {
        const std::vector<float>& gl = red == FNCE_REDUCTION_SUM ? sum_gl : none_gl;
        const Result ref = run(in, red, FNCE_BACKEND_CPU, gl);
        const Result got = run(in, red, kBackend, gl);
        compare(in, red, got, ref,
                std::string("large coefficients ") + name(t) + " " + name(sim) + " " + name(red),
                gl);
      }
    }
}

// Aligned strides: the tensor-core logit GEMM streams the operand chunks with cp.async (16-byte
// copies zero-filling ragged depth and rows, or 4-byte copies), double-buffered; a mixed shape
// has one operand on cp.async and the other on the plain-load fallback.  (The Contract tests'
// odd 16-bit strides take the fallback for both.)  f32 through TF32 (inputs k/64 are exact).
TEST(Kernels, AlignedStridesAsyncCopies) {
  SKIP_WITHOUT_DEVICE();
  // 16-byte rows with ragged depth; 16-byte rows; one operand 16-byte, one plain (odd stride);
  // 4-byte rows (even 16-bit strides, odd depth: 2-element edge groups).
  const Shape shapes[] = {
      {100, 130, 40, 48, 40}, {70, 65, 64, 64, 72}, {65, 100, 72, 72, 75}, {66, 100, 41, 42, 44}};
  for (fnceDataType_t t : {FNCE_BF16, FNCE_F16, FNCE_F32})
    for (const Shape& s : shapes) {
      Combo c = basic(FNCE_SIM_DOT, t);
      c.pos = FNCE_POSITIVES_LABELS;
      c.dir = FNCE_DIRECTION_SYMMETRIC;
      Inputs in = make_inputs(c, s, 51);
      in.allow_tf32 = t == FNCE_F32;
      const Result ref = run(in, FNCE_REDUCTION_MEAN, FNCE_BACKEND_CPU, {1.0f});
      const Result got = run(in, FNCE_REDUCTION_MEAN, kBackend, {1.0f});
      std::ostringstream ctx;
      ctx << "aligned " << name(t) << " n=" << s.n << " m=" << s.m << " d=" << s.d
          << " lda=" << s.lda << " ldb=" << s.ldb;
      compare(in, FNCE_REDUCTION_MEAN, got, ref, ctx.str(), {1.0f});
    }
}

// SYMMETRIC with more row tiles than forward blocks (G = SM count; 132 on the emulator's modelled
// H200): a block merges several row tiles into its column partials before the column merge.
TEST(Kernels, SymmetricWithMoreRowTilesThanBlocks) {
  SKIP_WITHOUT_DEVICE();
  Combo c = basic(FNCE_SIM_DOT, FNCE_F32);
  c.pos = FNCE_POSITIVES_LABELS;
  const Inputs in = make_inputs(c, Shape{64 * 132 + 100, 70, 5, 5, 5}, 41);
  for (fnceReduction_t red : {FNCE_REDUCTION_MEAN, FNCE_REDUCTION_NONE}) {
    const std::vector<float> gl =
        make_grad_loss(red, red == FNCE_REDUCTION_NONE ? in.s.n + in.s.m : 1, 43);
    const Result ref = run(in, red, FNCE_BACKEND_CPU, gl);
    const Result got = run(in, red, kBackend, gl);
    compare(in, red, got, ref, std::string("n = 8548 symmetric ") + name(red), gl);
  }
}

// The tensor-core forward's work split (host/cuda/dispatch.cpp, forward_split): SYMMETRIC with
// more row tiles (129 of 128 rows) than column groups (128): block 0 folds row tiles 0 and 128
// into its column partials.
TEST(Kernels, ForwardRowTilesBeyondColumnGroups) {
  SKIP_WITHOUT_DEVICE();
  Combo c = basic(FNCE_SIM_COSINE, FNCE_BF16);
  c.pos = FNCE_POSITIVES_LABELS;
  const Inputs in = make_inputs(c, Shape{128 * 128 + 100, 70, 5, 5, 5}, 47);
  for (fnceReduction_t red : {FNCE_REDUCTION_MEAN, FNCE_REDUCTION_NONE}) {
    const std::vector<float> gl =
        make_grad_loss(red, red == FNCE_REDUCTION_NONE ? in.s.n + in.s.m : 1, 49);
    const Result ref = run(in, red, FNCE_BACKEND_CPU, gl);
    const Result got = run(in, red, kBackend, gl);
    compare(in, red, got, ref, std::string("n = 16484 symmetric bf16 ") + name(red), gl);
  }
}

// Column splits holding several column tiles: 4 row tiles, 140 column tiles over 132 splits, so
// that a block sweeps one or two column tiles per row tile, ROWS and SYMMETRIC.
TEST(Kernels, ForwardSplitsOfSeveralColumnTiles) {
  SKIP_WITHOUT_DEVICE();
  for (fnceDirection_t dir : {FNCE_DIRECTION_ROWS, FNCE_DIRECTION_SYMMETRIC}) {
    Combo c = basic(FNCE_SIM_NEG_SQ_DIST, FNCE_F16);
    c.dir = dir;
    const Inputs in = make_inputs(c, Shape{500, 128 * 139 + 9, 8, 8, 8}, 53);
    const fnceReduction_t red = FNCE_REDUCTION_NONE;
    const std::vector<float> gl =
        make_grad_loss(red, in.s.n + (dir == FNCE_DIRECTION_SYMMETRIC ? in.s.m : 0), 59);
    const Result ref = run(in, red, FNCE_BACKEND_CPU, gl);
    const Result got = run(in, red, kBackend, gl);
    compare(in, red, got, ref,
            std::string("n = 500, m = 17801 ") +
                (dir == FNCE_DIRECTION_SYMMETRIC ? "symmetric" : "rows"),
            gl);
  }
}

// ---- indices past 2^31 (DESIGN §5) ------------------------------------------------------------
// The full n x m CPU reference is too slow for n * m > 2^31, so a few rows are checked through a
// subset problem that has the same per-row answers: with ROWS statistics, row i's LSE, loss and
// gradient depend only on a_i, its label and all of b.  The CPU reference runs on
// (a[rows], b) and, for columns, on the transposed (b[cols], a) (row LSE there = col_lse here).
// `rows` / `cols` are indices into the full problem; the chosen ones sit past i * m >= 2^31.
void check_rows_through_subsets(int64_t n, int64_t m, int64_t d, fnceDataType_t t,
                                const std::vector<int64_t>& rows,
                                const std::vector<int64_t>& cols) {
  Combo c = basic(FNCE_SIM_DOT, t);
  c.pos = FNCE_POSITIVES_LABELS;
  const Inputs full = make_inputs(c, Shape{n, m, d, d, d}, 61);
  const Tolerance tol = tolerance(t);
  auto pick = [&](const std::vector<float>& x, const std::vector<int64_t>& idx) {
    std::vector<float> out;
    for (int64_t i : idx)
      out.insert(out.end(), x.begin() + i * d, x.begin() + (i + 1) * d);
    return out;
  };
  auto pick_labels = [](const std::vector<int64_t>& l, const std::vector<int64_t>& idx) {
    std::vector<int64_t> out;
    for (int64_t i : idx)
      out.push_back(l[size_t(i)]);
    return out;
  };
  auto subset = [&](const std::vector<int64_t>& idx, bool transposed) {
    Inputs sub = full;
    sub.c.dir = FNCE_DIRECTION_ROWS;
    const int64_t other = transposed ? n : m;
    sub.s = Shape{int64_t(idx.size()), other, d, d, d};
    sub.a = pick(transposed ? full.b : full.a, idx);
    sub.b = transposed ? full.a : full.b;
    sub.labels_a = pick_labels(transposed ? full.labels_b : full.labels_a, idx);
    sub.labels_b = transposed ? full.labels_a : full.labels_b;
    return sub;
  };
  auto at = [](const std::vector<float>& v, const std::vector<int64_t>& idx, int64_t offset,
               int64_t width) {
    std::vector<float> out;
    for (int64_t i : idx)
      out.insert(out.end(), v.begin() + offset + i * width, v.begin() + offset + (i + 1) * width);
    return out;
  };
  const Inputs sub_rows = subset(rows, false), sub_cols = subset(cols, true);

  // SYMMETRIC, NONE: row_lse / col_lse / the n row then m column losses.
  {
    const std::vector<float> gl(size_t(n + m), 1.0f);
    const Result got = run(full, FNCE_REDUCTION_NONE, kBackend, gl);
    const Result r_ref =
        run(sub_rows, FNCE_REDUCTION_NONE, FNCE_BACKEND_CPU, std::vector<float>(rows.size(), 1.0f));
    const Result c_ref =
        run(sub_cols, FNCE_REDUCTION_NONE, FNCE_BACKEND_CPU, std::vector<float>(cols.size(), 1.0f));
    expect_close("row_lse", at(got.row_lse, rows, 0, 1), r_ref.row_lse, tol.value_rtol,
                 tol.value_atol);
    expect_close("row loss", at(got.loss, rows, 0, 1), r_ref.loss, tol.value_rtol, tol.value_atol);
    expect_close("col_lse", at(got.col_lse, cols, 0, 1), c_ref.row_lse, tol.value_rtol,
                 tol.value_atol);
    expect_close("column loss", at(got.loss, cols, n, 1), c_ref.loss, tol.value_rtol,
                 tol.value_atol);
  }
  // ROWS, NONE: grad_a of the chosen rows (ROWS coefficients G_ij depend on row i alone).
  {
    Inputs rows_only = full;
    rows_only.c.dir = FNCE_DIRECTION_ROWS;
    const std::vector<float> gl = make_grad_loss(FNCE_REDUCTION_NONE, n, 63);
    RunOptions opt;
    opt.grad_b = false;
    opt.grad_scale = false;
    const Result got = run(rows_only, FNCE_REDUCTION_NONE, kBackend, gl, opt);
    std::vector<float> gl_sub;
    for (int64_t i : rows)
      gl_sub.push_back(gl[size_t(i)]);
    const Result ref = run(sub_rows, FNCE_REDUCTION_NONE, FNCE_BACKEND_CPU, gl_sub, opt);
    expect_close("grad_a rows", at(got.grad_a, rows, 0, d), ref.grad_a, tol.grad_rtol,
                 tol.grad_atol);
  }
}

// The subset check itself, at a size the emulator runs: if this passes here, a failure of the
// large case below is the kernels', not the check's.
TEST(Kernels, SubsetRowCheckSmall) {
  SKIP_WITHOUT_DEVICE();
  check_rows_through_subsets(150, 170, 8, FNCE_BF16, {0, 1, 63, 64, 100, 149},
                             {0, 2, 64, 127, 128, 169});
}

#if defined(FLASHNCE_KERNEL_TEST_GPU_ONLY)
// n = m = 50000, d = 8, bf16: n * m = 2.5e9 > 2^31 logits (never stored); rows / columns from
// 42950 on have i * m >= 2^31.  GPU executable only (far too slow on the emulator).
TEST(Kernels, IndicesPast2To31) {
  SKIP_WITHOUT_DEVICE();
  const int64_t n = 50000, m = 50000;
  static_assert(42950LL * 50000LL > (1LL << 31) && 42949LL * 50000LL < (1LL << 31), "boundary");
  const std::vector<int64_t> idx = {0, 1, 12345, 42949, 42950, 42951, 49920, 49999};
  check_rows_through_subsets(n, m, 8, FNCE_BF16, idx, idx);
}
#endif

} // namespace

#if defined(FLASHNCE_EMULATED)
// Which forward kernel the dispatch launches, read off the emulator's launch records: on a
// Hopper device (compute capability 9.0) 16-bit inputs whose bases and row pitches TMA takes run
// forward_wgmma_kernel (its TMA copies and wgmma MACs counted: each consumer warpgroup issues
// 4 wgmma m64n128k16 per 64-deep chunk of every tile it owns), an odd pitch falls back to
// forward_mma_kernel with the same results, and so does every shape on an sm_80 device
// (CUDA_EMU_COMPUTE_CAPABILITY=8.0, the emu_sm80 CTest run).  The results match the reference
// either way (checked here too).
TEST(Kernels, KernelsByArchitectureAndAlignment) {
  int major = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0), cudaSuccess);
  struct Case {
    Shape s;
    bool tma;
  };
  const Case cases[] = {{{140, 150, 40, 48, 56}, true},
                        {{140, 150, 40, 43, 56}, false},
                        {{200, 70, 130, 136, 144}, true}};
  for (fnceDataType_t t : {FNCE_BF16, FNCE_F16})
    for (const Case& k : cases) {
      Combo c = basic(FNCE_SIM_COSINE, t);
      c.pos = FNCE_POSITIVES_LABELS;
      const Inputs in = make_inputs(c, k.s, 91);
      const Result ref = run(in, FNCE_REDUCTION_NONE, FNCE_BACKEND_CPU,
                             make_grad_loss(FNCE_REDUCTION_NONE, k.s.n + k.s.m, 5));
      cuda_emu::counters_enable(true);
      (void)cuda_emu::counters_take();
      const Result got = run(in, FNCE_REDUCTION_NONE, kBackend,
                             make_grad_loss(FNCE_REDUCTION_NONE, k.s.n + k.s.m, 5));
      const std::vector<cuda_emu::LaunchCounters> launches = cuda_emu::counters_take();
      cuda_emu::counters_enable(false);
      std::ostringstream ctx;
      ctx << name(t) << " n=" << k.s.n << " m=" << k.s.m << " d=" << k.s.d << " lda=" << k.s.lda
          << " cc " << major;
      SCOPED_TRACE(ctx.str());
      compare(in, FNCE_REDUCTION_NONE, got, ref, ctx.str(),
              make_grad_loss(FNCE_REDUCTION_NONE, k.s.n + k.s.m, 5));
      const bool want_wgmma = k.tma && major == 9;
      int wgmma_launches = 0, mma_launches = 0;
      for (const cuda_emu::LaunchCounters& l : launches) {
        const std::string kernel = l.kernel;
        if (kernel.find("forward_wgmma_kernel") != std::string::npos) {
          ++wgmma_launches;
          // 2 x 2 tiles of 128 x 128 (the first shapes) or 2 x 1; ceil(d / 64) chunks each.
          const uint64_t tiles = uint64_t((k.s.n + 127) / 128) * uint64_t((k.s.m + 127) / 128);
          const uint64_t chunks = uint64_t((k.s.d + 63) / 64);
          EXPECT_EQ(l.wgmma_instructions, tiles * chunks * 2 * 4);
          EXPECT_EQ(l.tensor_macs, tiles * chunks * 128 * 128 * 64);
          EXPECT_EQ(l.tma_requests, tiles * chunks * 2);
          EXPECT_EQ(l.block[0], 384u);
        }
        if (kernel.find("forward_mma_kernel") != std::string::npos)
          ++mma_launches;
      }
      EXPECT_EQ(wgmma_launches, want_wgmma ? 1 : 0);
      EXPECT_EQ(mma_launches, want_wgmma ? 0 : 1);
      // The backward: the Hopper gradient kernel for bf16 only (f16 keeps the mma.sync kernel's
      // per-tile row scale), one launch for grad_a and one for grad_b.  Each (64-row tile,
      // 128-column tile) pair of a launch, whatever the column splits: ceil(d / 64) logit chunks
      // of 2 warpgroups x 4 wgmma m64n64k16, and ceil(d / 128) gradient items of 2 warpgroups x 8
      // wgmma m64n64k16 (a 64-column box wholly past d is zero filled and multiplied); TMA: each
      // block's rows once (a box per chunk), and per pair the column tile's boxes once,
      // max(chunks, 2 gradient items) of them, serving both GEMMs.
      const bool want_grad_wgmma = want_wgmma && t == FNCE_BF16;
      const uint64_t chunks = uint64_t((k.s.d + 63) / 64);
      auto pairs = [](int64_t rows, int64_t cols) {
        return uint64_t((rows + 63) / 64) * uint64_t((cols + 127) / 128);
      };
      const uint64_t all_pairs = pairs(k.s.n, k.s.m) + pairs(k.s.m, k.s.n);
      uint64_t wgmma = 0, macs = 0, tma = 0, x_loads = 0, first_map_bytes = 0;
      int grad_wgmma = 0, grad_mma = 0;
      for (const cuda_emu::LaunchCounters& l : launches) {
        const std::string kernel = l.kernel;
        if (kernel.find("grad_wgmma_kernel") != std::string::npos) {
          ++grad_wgmma;
          wgmma += l.wgmma_instructions;
          macs += l.tensor_macs;
          tma += l.tma_requests;
          x_loads += uint64_t(l.grid[0]) * chunks;
          first_map_bytes += l.tma_first_map_bytes;
          EXPECT_EQ(l.block[0], 384u);
        }
        if (kernel.find("grad_mma_kernel") != std::string::npos)
          ++grad_mma;
      }
      EXPECT_EQ(grad_wgmma, want_grad_wgmma ? 2 : 0);
      EXPECT_EQ(grad_mma, want_grad_wgmma ? 0 : 2);
      if (want_grad_wgmma) {
        const uint64_t gitems = uint64_t((k.s.d + 127) / 128);
        EXPECT_EQ(wgmma, all_pairs * (chunks * 2 * 4 + gitems * 2 * 8));
        EXPECT_EQ(macs, all_pairs * (chunks * 64 * 128 * 64 + gitems * 64 * 128 * 128));
        EXPECT_EQ(tma, x_loads + all_pairs * std::max(chunks, 2 * gitems));
        // each block's first copy is of its rows (x: 64 rows x 64 bf16 per box), and only those
        // go through that tensor map (the model tells the resident bytes from the streamed ones)
        EXPECT_EQ(first_map_bytes, x_loads * 64 * 64 * 2);
      }
    }
}

// The tensor-core forwards' work split forced small (set_forward_split_for_testing), so that a
// block sweeps several column tiles and several row tiles, as blocks do at large n and m: the
// Hopper forward keeps a row tile of a resident across its column tiles (d <= 512: 8 chunks)
// and reloads it for the next row tile once both consumers are done with it; d = 576 streams both
// operands.  Results against the reference for every split; on Hopper the TMA requests counted:
// resident, a's chunks once per (block, row tile) and b's per tile; streaming, both per tile; and
// the bytes through a's tensor map (the counters' tma_first_map_bytes).
TEST(Kernels, ForwardSplitsSweepSeveralTilesPerBlock) {
  int major = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0), cudaSuccess);
  struct Split {
    int32_t groups, splits;
  };
  const Split splits[] = {{1, 1}, {2, 3}};
  const int64_t depths[] = {40, 200, 512, 576};
  for (fnceDataType_t t : {FNCE_BF16, FNCE_F16})
    for (int64_t d : depths)
      for (int k = 0; k < 2; ++k) {
        // ROWS dot (diagonal), SYMMETRIC cosine with labels: 3 x 4 tiles of 128 x 128
        Combo c = basic(k == 0 ? FNCE_SIM_DOT : FNCE_SIM_COSINE, t);
        c.dir = k == 0 ? FNCE_DIRECTION_ROWS : FNCE_DIRECTION_SYMMETRIC;
        if (k == 1)
          c.pos = FNCE_POSITIVES_LABELS;
        const Shape sh{300, 400, d, d + 8, d + 16};
        const Inputs in = make_inputs(c, sh, 97 + uint64_t(d));
        const std::vector<float> gl =
            make_grad_loss(FNCE_REDUCTION_NONE, k == 0 ? sh.n : sh.n + sh.m, 7);
        const Result ref = run(in, FNCE_REDUCTION_NONE, FNCE_BACKEND_CPU, gl);
        for (const Split& sp : splits) {
          std::ostringstream ctx;
          ctx << name(t) << " d=" << d << (k == 0 ? " rows" : " symmetric") << " split "
              << sp.groups << " x " << sp.splits << " cc " << major;
          SCOPED_TRACE(ctx.str());
          flashnce::cuda_backend::set_forward_split_for_testing(sp.groups, sp.splits);
          cuda_emu::counters_enable(true);
          (void)cuda_emu::counters_take();
          const Result got = run(in, FNCE_REDUCTION_NONE, kBackend, gl);
          const std::vector<cuda_emu::LaunchCounters> launches = cuda_emu::counters_take();
          cuda_emu::counters_enable(false);
          flashnce::cuda_backend::set_forward_split_for_testing(0, 0);
          compare(in, FNCE_REDUCTION_NONE, got, ref, ctx.str(), gl);
          const uint64_t row_tiles = 3, col_tiles = 4, chunks = uint64_t((d + 63) / 64);
          const bool resident = chunks <= 8;
          int wgmma_launches = 0;
          for (const cuda_emu::LaunchCounters& l : launches) {
            if (std::string(l.kernel).find("forward_wgmma_kernel") == std::string::npos)
              continue;
            ++wgmma_launches;
            EXPECT_EQ(uint64_t(l.grid[0]), uint64_t(sp.groups) * uint64_t(sp.splits));
            const uint64_t b_loads = row_tiles * col_tiles * chunks;
            const uint64_t a_loads = resident ? uint64_t(sp.splits) * row_tiles * chunks : b_loads;
            EXPECT_EQ(l.tma_requests, a_loads + b_loads);
            // a's boxes (128 rows x 64 16-bit elements) come first in each block, through their
            // own tensor map (a and b are different tensors here)
            EXPECT_EQ(l.tma_first_map_bytes, a_loads * 128 * 64 * 2);
            EXPECT_EQ(l.tensor_macs, row_tiles * col_tiles * chunks * 128 * 128 * 64);
          }
          EXPECT_EQ(wgmma_launches, major == 9 ? 1 : 0);
        }
      }
}
#endif
