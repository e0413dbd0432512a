// The naive baseline (bench/naive) against the CPU reference (public API, FNCE_BACKEND_CPU), so
// that the benchmark compares two correct implementations.  A GPU test: it skips without a device.
//
// Tolerances, per element |x − ref| <= atol + rtol·|ref| (never an average):
//  - loss and LSEs: the GEMM accumulates the exact dtype inputs in f32, the softmax runs in f32:
//    rtol 1e-4 (f32 inputs: 1e-4 too, cuBLAS may reorder the dot products), atol 1e-4·scale.
//  - gradients: f32 inputs rtol 1e-4; f16 / bf16 inputs: dlogits and the gradient itself are
//    rounded to the dtype (2^-11 / 2^-8 relative each), so rtol = 4·2^-11 / 4·2^-8 and
//    atol = the same times max|ref| of that tensor (cancellation in Σ_j G_ij b_j).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "bench/naive/naive_loss.h"
#include "flashnce/flashnce.h"
#include "host/dtype.h"

namespace {

using flashnce::load_element;
using flashnce::store_element;

bool have_gpu() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

#define SKIP_WITHOUT_GPU()                                                                         \
  do {                                                                                             \
    if (!have_gpu())                                                                               \
      GTEST_SKIP() << "no CUDA device: the naive baseline needs a GPU";                            \
  } while (0)

enum class Loss {
  InfoNce,
  Clip,
  NtXent,
  VaePrior,
  Targets,
  Labels,
  SupConSelf,
  CosineClip, // COSINE similarity, one all-zero row in a (the clamped norm)
  CosineSelf  // COSINE in self mode (NT-Xent)
};

const char* loss_name(Loss l) {
  switch (l) {
  case Loss::InfoNce:
    return "infonce";
  case Loss::Clip:
    return "clip";
  case Loss::NtXent:
    return "nt_xent";
  case Loss::VaePrior:
    return "vae_prior";
  case Loss::Targets:
    return "targets";
  case Loss::Labels:
    return "labels_symmetric";
  case Loss::SupConSelf:
    return "supcon_self";
  case Loss::CosineClip:
    return "cosine_clip";
  default:
    return "cosine_self";
  }
}

struct Case {
  Loss loss;
  fnceDataType_t dtype;
  int64_t n, m, d;
  fnceReduction_t reduction;
  float scale;
};

std::string case_name(const Case& c) {
  std::ostringstream s;
  s << loss_name(c.loss) << "_"
    << (c.dtype == FNCE_F32   ? "f32"
        : c.dtype == FNCE_F16 ? "f16"
                              : "bf16")
    << "_n" << c.n << "_m" << c.m << "_d" << c.d << "_"
    << (c.reduction == FNCE_REDUCTION_MEAN  ? "mean"
        : c.reduction == FNCE_REDUCTION_SUM ? "sum"
                                            : "none")
    << "_s" << int(c.scale);
  return s.str();
}

void PrintTo(const Case& c, std::ostream* os) {
  *os << case_name(c);
}

bool self_mode(Loss l) {
  return l == Loss::NtXent || l == Loss::SupConSelf || l == Loss::CosineSelf;
}

// Host data and the reference's outputs for one case.
struct Problem {
  fnceLossParams p; // host pointers (CPU backend)
  std::vector<uint8_t> a, b;
  std::vector<int64_t> targets, labels_a, labels_b;
  float scale;
  int64_t loss_count, m;
  bool symmetric;
};

Problem make_problem(const Case& c) {
  Problem pr;
  fnceLossParamsInit(&pr.p);
  pr.p.backend = FNCE_BACKEND_CPU;
  pr.p.dtype = c.dtype;
  pr.p.n = c.n;
  pr.p.d = c.d;
  pr.p.reduction = c.reduction;
  pr.scale = c.scale;
  const bool self = self_mode(c.loss);
  pr.m = self ? c.n : c.m;
  pr.p.m = pr.m;
  std::mt19937_64 rng(1234 + c.n * 7 + c.m * 13 + c.d);
  std::normal_distribution<float> normal(0.f, 1.f / std::sqrt(float(c.d)));
  const size_t es = c.dtype == FNCE_F32 ? 4 : 2;
  pr.a.resize(size_t(c.n) * c.d * es);
  for (int64_t k = 0; k < c.n * c.d; ++k)
    store_element(pr.a.data(), k, c.dtype, normal(rng));
  if (!self) {
    pr.b.resize(size_t(pr.m) * c.d * es);
    for (int64_t k = 0; k < pr.m * c.d; ++k)
      store_element(pr.b.data(), k, c.dtype, normal(rng));
    // A few positives close to their anchor, so that the losses are not all ≈ log m.
    for (int64_t i = 0; i < std::min(c.n, pr.m); i += 3)
      for (int64_t k = 0; k < c.d; ++k)
        store_element(pr.b.data(), i * c.d + k, c.dtype,
                      load_element(pr.a.data(), i * c.d + k, c.dtype));
  }
  pr.p.a = pr.a.data();
  pr.p.b = self ? nullptr : pr.b.data();
  switch (c.loss) {
  case Loss::InfoNce:
    break;
  case Loss::Clip:
    pr.p.direction = FNCE_DIRECTION_SYMMETRIC;
    break;
  case Loss::NtXent:
    pr.p.positives = FNCE_POSITIVES_VIEW_PAIRS;
    break;
  case Loss::VaePrior:
    pr.p.normalizer = FNCE_NORMALIZER_NEGATIVES;
    break;
  case Loss::Targets:
    pr.p.positives = FNCE_POSITIVES_TARGETS;
    pr.targets.resize(c.n);
    for (int64_t i = 0; i < c.n; ++i)
      pr.targets[i] = (i % 5 == 4) ? -1 : int64_t(rng() % pr.m);
    pr.p.targets = pr.targets.data();
    break;
  case Loss::Labels: // several positives per row, some rows and columns without any
    pr.p.positives = FNCE_POSITIVES_LABELS;
    pr.p.direction = FNCE_DIRECTION_SYMMETRIC;
    pr.p.normalizer = FNCE_NORMALIZER_NEGATIVES;
    pr.labels_a.resize(c.n);
    pr.labels_b.resize(pr.m);
    for (auto& l : pr.labels_a)
      l = int64_t(rng() % 5);
    for (auto& l : pr.labels_b)
      l = int64_t(rng() % 6);
    pr.p.labels_a = pr.labels_a.data();
    pr.p.labels_b = pr.labels_b.data();
    break;
  case Loss::CosineClip:
    pr.p.similarity = FNCE_SIM_COSINE;
    pr.p.direction = FNCE_DIRECTION_SYMMETRIC;
    if (c.n > 1)
      for (int64_t k = 0; k < c.d; ++k)
        store_element(pr.a.data(), 1 * c.d + k, c.dtype, 0.f);
    break;
  case Loss::CosineSelf:
    pr.p.similarity = FNCE_SIM_COSINE;
    pr.p.positives = FNCE_POSITIVES_VIEW_PAIRS;
    break;
  case Loss::SupConSelf:
    pr.p.positives = FNCE_POSITIVES_LABELS;
    pr.labels_a.resize(c.n);
    for (auto& l : pr.labels_a)
      l = int64_t(rng() % 4);
    pr.p.labels_a = pr.labels_a.data();
    break;
  }
  pr.symmetric = pr.p.direction == FNCE_DIRECTION_SYMMETRIC;
  pr.loss_count = c.reduction == FNCE_REDUCTION_NONE ? c.n + (pr.symmetric ? pr.m : 0) : 1;
  pr.p.logit_scale = &pr.scale;
  return pr;
}

struct Outputs {
  std::vector<float> loss, row_lse, col_lse, grad_a, grad_b;
  float grad_scale = 0.f;
};

std::vector<float> to_float(const std::vector<uint8_t>& bytes, fnceDataType_t t, int64_t count) {
  std::vector<float> out(count);
  for (int64_t k = 0; k < count; ++k)
    out[k] = load_element(bytes.data(), k, t);
  return out;
}

void expect_close(const std::vector<float>& got, const std::vector<float>& ref, double rtol,
                  double atol_rel_to_max, double atol_abs, const char* what) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  double max_ref = 0.0;
  for (float r : ref)
    if (std::isfinite(r))
      max_ref = std::max(max_ref, std::fabs(double(r)));
  const double atol = atol_abs + atol_rel_to_max * max_ref;
  int reported = 0;
  for (size_t k = 0; k < got.size(); ++k) {
    const double g = got[k], r = ref[k];
    if (std::isnan(r)) {
      EXPECT_TRUE(std::isnan(g)) << what << "[" << k << "]: reference NaN, got " << g;
    } else if (std::isinf(r)) {
      EXPECT_EQ(g, r) << what << "[" << k << "]";
    } else if (!(std::fabs(g - r) <= atol + rtol * std::fabs(r))) {
      ADD_FAILURE() << what << "[" << k << "]: got " << g << ", reference " << r << ", bound "
                    << atol + rtol * std::fabs(r);
      if (++reported >= 5)
        return;
    }
  }
}

// Device buffer holder.
struct Dev {
  void* ptr = nullptr;
  explicit Dev(size_t bytes) {
    if (bytes) {
      EXPECT_EQ(cudaMalloc(&ptr, bytes), cudaSuccess);
    }
  }
  ~Dev() { cudaFree(ptr); }
  template <typename T> T* as() const { return static_cast<T*>(ptr); }
};

class NaiveVsReference : public ::testing::TestWithParam<Case> {};

TEST_P(NaiveVsReference, ForwardAndBackwardMatch) {
  SKIP_WITHOUT_GPU();
  const Case c = GetParam();
  Problem pr = make_problem(c);
  const int64_t n = c.n, m = pr.m, d = c.d;
  const bool self = self_mode(c.loss);
  const fnceDataType_t t = c.dtype;
  const size_t es = t == FNCE_F32 ? 4 : 2;

  std::mt19937 rng(99);
  std::uniform_real_distribution<float> uni(0.5f, 1.5f);
  std::vector<float> grad_loss(pr.loss_count);
  for (auto& g : grad_loss)
    g = uni(rng);

  // Reference.
  Outputs ref;
  ref.loss.resize(pr.loss_count);
  ref.row_lse.resize(n);
  ref.col_lse.resize(m);
  std::vector<uint8_t> ref_ga(size_t(n) * d * es), ref_gb(size_t(m) * d * es);
  ASSERT_EQ(fnceForward(&pr.p, ref.loss.data(), ref.row_lse.data(),
                        pr.symmetric ? ref.col_lse.data() : nullptr, nullptr, 0, nullptr),
            FNCE_SUCCESS)
      << fnceGetLastErrorMessage();
  ASSERT_EQ(fnceBackward(&pr.p, ref.row_lse.data(), pr.symmetric ? ref.col_lse.data() : nullptr,
                         grad_loss.data(), ref_ga.data(), self ? nullptr : ref_gb.data(),
                         &ref.grad_scale, nullptr, 0, nullptr),
            FNCE_SUCCESS)
      << fnceGetLastErrorMessage();

  // Naive, on the device.
  Dev a(pr.a.size()), b(pr.b.size()), scale(4), targets(pr.targets.size() * 8),
      la(pr.labels_a.size() * 8), lb(pr.labels_b.size() * 8), loss(pr.loss_count * 4),
      row_lse(n * 4), col_lse(m * 4), gl(pr.loss_count * 4), ga(size_t(n) * d * es),
      gb(size_t(m) * d * es), gs(4);
  auto up = [](const Dev& dst, const void* src, size_t bytes) {
    if (bytes) {
      ASSERT_EQ(cudaMemcpy(dst.ptr, src, bytes, cudaMemcpyHostToDevice), cudaSuccess);
    }
  };
  up(a, pr.a.data(), pr.a.size());
  up(b, pr.b.data(), pr.b.size());
  up(scale, &pr.scale, 4);
  up(targets, pr.targets.data(), pr.targets.size() * 8);
  up(la, pr.labels_a.data(), pr.labels_a.size() * 8);
  up(lb, pr.labels_b.data(), pr.labels_b.size() * 8);
  up(gl, grad_loss.data(), grad_loss.size() * 4);
  fnceLossParams q = pr.p;
  q.backend = FNCE_BACKEND_CUDA;
  q.a = a.ptr;
  q.b = self ? nullptr : b.ptr;
  q.logit_scale = scale.as<float>();
  q.targets = pr.targets.empty() ? nullptr : targets.as<int64_t>();
  q.labels_a = pr.labels_a.empty() ? nullptr : la.as<int64_t>();
  q.labels_b = pr.labels_b.empty() ? nullptr : lb.as<int64_t>();

  flashnce::naive::NaiveLoss naive;
  ASSERT_EQ(naive.forward(q, loss.as<float>(), row_lse.as<float>(),
                          pr.symmetric ? col_lse.as<float>() : nullptr, nullptr),
            FNCE_SUCCESS)
      << naive.last_error();
  ASSERT_EQ(naive.backward(q, row_lse.as<float>(), pr.symmetric ? col_lse.as<float>() : nullptr,
                           gl.as<float>(), ga.ptr, self ? nullptr : gb.ptr, gs.as<float>(),
                           nullptr),
            FNCE_SUCCESS)
      << naive.last_error();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);

  Outputs got;
  got.loss.resize(pr.loss_count);
  got.row_lse.resize(n);
  got.col_lse.resize(m);
  std::vector<uint8_t> got_ga(ref_ga.size()), got_gb(ref_gb.size());
  auto down = [](void* dst, const Dev& src, size_t bytes) {
    ASSERT_EQ(cudaMemcpy(dst, src.ptr, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
  };
  down(got.loss.data(), loss, pr.loss_count * 4);
  down(got.row_lse.data(), row_lse, n * 4);
  if (pr.symmetric)
    down(got.col_lse.data(), col_lse, m * 4);
  down(got_ga.data(), ga, got_ga.size());
  if (!self)
    down(got_gb.data(), gb, got_gb.size());
  down(&got.grad_scale, gs, 4);

  const double fwd_atol = 1e-4 * std::max(1.f, c.scale);
  expect_close(got.loss, ref.loss, 1e-4, 0.0, fwd_atol, "loss");
  expect_close(got.row_lse, ref.row_lse, 1e-4, 0.0, fwd_atol, "row_lse");
  if (pr.symmetric)
    expect_close(got.col_lse, ref.col_lse, 1e-4, 0.0, fwd_atol, "col_lse");

  const double g_rtol = t == FNCE_F32 ? 1e-4 : t == FNCE_F16 ? 4.0 / 2048 : 4.0 / 256;
  const double g_atol_abs = 1e-7;
  expect_close(to_float(got_ga, t, n * d), to_float(ref_ga, t, n * d), g_rtol,
               t == FNCE_F32 ? 1e-4 : g_rtol, g_atol_abs, "grad_a");
  if (!self)
    expect_close(to_float(got_gb, t, m * d), to_float(ref_gb, t, m * d), g_rtol,
                 t == FNCE_F32 ? 1e-4 : g_rtol, g_atol_abs, "grad_b");
  // grad_logit_scale = Σ G_ij sim_ij: dlogits-independent, f32 accumulation over n·m terms.
  expect_close({got.grad_scale}, {ref.grad_scale}, 1e-3, 0.0, 1e-4, "grad_logit_scale");
}

std::vector<Case> cases() {
  std::vector<Case> out;
  const fnceDataType_t dtypes[] = {FNCE_F32, FNCE_F16, FNCE_BF16};
  const Loss losses[] = {Loss::InfoNce,    Loss::Clip,       Loss::NtXent,
                         Loss::VaePrior,   Loss::Targets,    Loss::Labels,
                         Loss::SupConSelf, Loss::CosineClip, Loss::CosineSelf};
  for (Loss l : losses)
    for (fnceDataType_t t : dtypes) {
      out.push_back({l, t, 64, 64, 32, FNCE_REDUCTION_MEAN, 10.f});
      // Ragged and n != m (self mode: m = n; DIAGONAL needs n <= m; VIEW_PAIRS an even n).
      out.push_back({l, t, self_mode(l) ? 258 : 123, 257, 65, FNCE_REDUCTION_SUM, 14.3f});
      out.push_back({l, t, self_mode(l) ? 2 : 1, 7, 1, FNCE_REDUCTION_NONE, 1.f});
    }
  // Large temperature with unnormalised inputs, a large m for the column pass.
  out.push_back({Loss::Clip, FNCE_F32, 300, 1000, 128, FNCE_REDUCTION_MEAN, 100.f});
  out.push_back({Loss::NtXent, FNCE_BF16, 1000, 1000, 128, FNCE_REDUCTION_NONE, 20.f});
  return out;
}

INSTANTIATE_TEST_SUITE_P(Naive, NaiveVsReference, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           std::string s = case_name(info.param);
                           for (char& ch : s)
                             if (!std::isalnum(static_cast<unsigned char>(ch)))
                               ch = '_';
                           return s;
                         });

TEST(NaiveLoss, RejectsWhatItDoesNotImplement) {
  SKIP_WITHOUT_GPU();
  fnceLossParams p;
  fnceLossParamsInit(&p);
  p.n = p.m = p.d = 4;
  float* dev = nullptr;
  ASSERT_EQ(cudaMalloc(&dev, 64 * 4), cudaSuccess);
  p.a = dev;
  p.b = dev;
  p.logit_scale = dev;
  p.similarity = FNCE_SIM_NEG_SQ_DIST;
  flashnce::naive::NaiveLoss naive;
  EXPECT_EQ(naive.forward(p, dev, nullptr, nullptr, nullptr), FNCE_ERROR_NOT_SUPPORTED);
  EXPECT_NE(naive.last_error().find("DOT"), std::string::npos) << naive.last_error();
  p.similarity = FNCE_SIM_DOT;
  EXPECT_EQ(naive.backward(p, nullptr, nullptr, dev, dev, dev, nullptr, nullptr),
            FNCE_ERROR_INVALID_VALUE); // no forward yet
  cudaFree(dev);
}

TEST(NaiveLoss, FootprintCountsTheMaterialisedMatrices) {
  // Pure arithmetic: no device needed.
  const auto f = flashnce::naive::footprint(65536, 65536, FNCE_BF16, true);
  EXPECT_EQ(f.similarity_bytes, size_t(65536) * 65536 * 4);
  EXPECT_EQ(f.dlogits_bytes, size_t(65536) * 65536 * 2);
  EXPECT_LT(f.scratch_bytes, f.similarity_bytes / 100); // O(n + m)
  EXPECT_EQ(flashnce::naive::footprint(100, 200, FNCE_F32, false).dlogits_bytes, 0u);
}

} // namespace
