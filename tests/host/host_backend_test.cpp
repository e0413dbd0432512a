// The host backend (FNCE_BACKEND_HOST, host/blas/) beyond the reference comparison of
// tests/kernels (flashnce_host_tests): determinism across thread counts, the workspace protocol
// and its size, the built-in GEMM loops, exp_f32, and its error for a d BLAS cannot take.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#if defined(FLASHNCE_HAVE_OPENMP)
#include <omp.h>
#endif

#include "flashnce/flashnce.h"
#include "host/blas/sgemm.h"
#include "host/blas/vector_math.h"

namespace {

using flashnce::host_backend::builtin_gemm_ab_accumulate;
using flashnce::host_backend::builtin_gemm_abt;
using flashnce::host_backend::exp_f32;

void set_threads(int t) {
#if defined(FLASHNCE_HAVE_OPENMP)
  omp_set_num_threads(t);
#else
  (void)t;
#endif
}

struct Problem {
  fnceLossParams p;
  std::vector<float> a, b;
  std::vector<uint16_t> a16, b16;
  std::vector<int64_t> labels_a, labels_b;
  float scale = 6.0f;

  Problem(int64_t n, int64_t m, int64_t d, fnceDataType_t dtype, bool self, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> g(0.0f, 1.0f);
    a.resize(size_t(n * d));
    b.resize(size_t(m * d));
    for (auto& x : a)
      x = g(rng);
    for (auto& x : b)
      x = g(rng);
    auto to_bf16 = [](const std::vector<float>& v) {
      std::vector<uint16_t> out(v.size());
      for (size_t k = 0; k < v.size(); ++k) {
        uint32_t u;
        std::memcpy(&u, &v[k], 4);
        out[k] = uint16_t(u >> 16); // truncation: any bf16 value will do
      }
      return out;
    };
    a16 = to_bf16(a);
    b16 = to_bf16(b);
    labels_a.resize(size_t(n));
    labels_b.resize(size_t(m));
    for (auto& l : labels_a)
      l = int64_t(rng() % 13);
    for (auto& l : labels_b)
      l = int64_t(rng() % 13);
    fnceLossParamsInit(&p);
    p.backend = FNCE_BACKEND_HOST;
    p.dtype = dtype;
    p.n = n;
    p.m = self ? n : m;
    p.d = d;
    p.a = dtype == FNCE_F32 ? static_cast<const void*>(a.data()) : a16.data();
    p.b = self ? nullptr : dtype == FNCE_F32 ? static_cast<const void*>(b.data()) : b16.data();
    p.logit_scale = &scale;
    p.similarity = FNCE_SIM_COSINE;
    p.positives = FNCE_POSITIVES_LABELS;
    p.labels_a = labels_a.data();
    p.labels_b = self ? nullptr : labels_b.data();
    p.direction = FNCE_DIRECTION_SYMMETRIC;
    p.reduction = FNCE_REDUCTION_NONE;
  }
};

struct Outputs {
  std::vector<float> loss, row_lse, col_lse, grad_scale;
  std::vector<uint8_t> grad_a, grad_b;
  bool operator==(const Outputs& o) const {
    auto same = [](const auto& x, const auto& y) {
      return x.size() == y.size() &&
             (x.empty() || std::memcmp(x.data(), y.data(), x.size() * sizeof(x[0])) == 0);
    };
    return same(loss, o.loss) && same(row_lse, o.row_lse) && same(col_lse, o.col_lse) &&
           same(grad_a, o.grad_a) && same(grad_b, o.grad_b) && same(grad_scale, o.grad_scale);
  }
};

// Forward + backward with exactly the queried workspace (or `ws_bytes` when given).
Outputs run(const Problem& pr, size_t ws_bytes = 0) {
  const fnceLossParams& p = pr.p;
  const size_t es = p.dtype == FNCE_F32 ? 4 : 2;
  Outputs o;
  o.loss.assign(size_t(p.n + p.m), -1.0f);
  o.row_lse.assign(size_t(p.n), -1.0f);
  o.col_lse.assign(size_t(p.m), -1.0f);
  o.grad_a.assign(size_t(p.n * p.d) * es, 0xab);
  o.grad_b.assign(p.b ? size_t(p.m * p.d) * es : 0, 0xab);
  o.grad_scale.assign(1, -1.0f);
  size_t fws = 0, bws = 0;
  EXPECT_EQ(fnceForwardWorkspaceSize(&p, &fws), FNCE_SUCCESS) << fnceGetLastErrorMessage();
  EXPECT_EQ(fnceBackwardWorkspaceSize(&p, &bws), FNCE_SUCCESS) << fnceGetLastErrorMessage();
  std::vector<uint8_t> ws(ws_bytes ? ws_bytes : std::max(fws, bws));
  EXPECT_EQ(fnceForward(&p, o.loss.data(), o.row_lse.data(), o.col_lse.data(), ws.data(),
                        ws_bytes ? ws_bytes : fws, nullptr),
            FNCE_SUCCESS)
      << fnceGetLastErrorMessage();
  std::vector<float> gl(o.loss.size());
  for (size_t k = 0; k < gl.size(); ++k)
    gl[k] = 0.25f + 0.125f * float(k % 5);
  EXPECT_EQ(fnceBackward(&p, o.row_lse.data(), o.col_lse.data(), gl.data(), o.grad_a.data(),
                         p.b ? o.grad_b.data() : nullptr, o.grad_scale.data(), ws.data(),
                         ws_bytes ? ws_bytes : bws, nullptr),
            FNCE_SUCCESS)
      << fnceGetLastErrorMessage();
  for (float x : o.loss)
    EXPECT_TRUE(std::isfinite(x));
  return o;
}

// Several line blocks on both sides (128 rows, 256 columns), ragged; f32 read in place and bf16
// converted per block; separate operands and self mode (both sweeps into grad_a).
TEST(HostBackend, BitwiseTheSameForEveryThreadCount) {
#if !defined(FLASHNCE_HAVE_OPENMP)
  GTEST_SKIP() << "built without OpenMP: the host backend runs one thread";
#else
  const int initial = omp_get_max_threads();
  for (fnceDataType_t t : {FNCE_F32, FNCE_BF16})
    for (bool self : {false, true}) {
      const Problem pr(700, 530, 37, t, self, 5);
      set_threads(1);
      const Outputs one = run(pr);
      for (int threads : {2, 3, 7}) {
        set_threads(threads);
        EXPECT_TRUE(run(pr) == one) << threads << " threads, dtype " << int(t) << " self " << self;
      }
    }
  set_threads(initial);
#endif
}

// Each output is bitwise the same whichever other outputs are asked for (an output left NULL only
// skips its GEMMs): found by the Python fuzz target, whose check compares a partial request with
// the full one (tests/fuzz/corpus/python_regression/host_partial_gradients_bitwise).
TEST(HostBackend, OutputsDoNotDependOnWhatElseIsAskedFor) {
  for (fnceDataType_t t : {FNCE_F32, FNCE_BF16})
    for (bool self : {false, true}) {
      Problem pr(300, 270, 19, t, self, 9);
      const Outputs all = run(pr);
      const fnceLossParams& p = pr.p;
      const size_t es = t == FNCE_F32 ? 4 : 2;
      size_t bws = 0;
      ASSERT_EQ(fnceBackwardWorkspaceSize(&p, &bws), FNCE_SUCCESS);
      std::vector<uint8_t> ws(bws);
      std::vector<float> gl(all.loss.size());
      for (size_t k = 0; k < gl.size(); ++k)
        gl[k] = 0.25f + 0.125f * float(k % 5);
      for (int which = 0; which < 3; ++which) {
        if (self && which == 1)
          continue; // self mode: everything lands in grad_a
        std::vector<uint8_t> ga(size_t(p.n * p.d) * es), gb(size_t(p.m * p.d) * es);
        float gs = -1.0f;
        ASSERT_EQ(fnceBackward(&p, all.row_lse.data(), all.col_lse.data(), gl.data(),
                               which == 0 ? ga.data() : nullptr, which == 1 ? gb.data() : nullptr,
                               which == 2 ? &gs : nullptr, ws.data(), bws, nullptr),
                  FNCE_SUCCESS)
            << fnceGetLastErrorMessage();
        if (which == 0) {
          EXPECT_TRUE(ga == all.grad_a) << "grad_a alone, dtype " << int(t) << " self " << self;
        } else if (which == 1) {
          EXPECT_TRUE(gb == all.grad_b) << "grad_b alone, dtype " << int(t);
        } else {
          EXPECT_EQ(std::memcmp(&gs, all.grad_scale.data(), 4), 0)
              << "grad_logit_scale alone: " << gs << " vs " << all.grad_scale[0] << ", dtype "
              << int(t) << " self " << self;
        }
      }
    }
}

// The workspace grows linearly in n + m (never n x m) and with the thread count; a call given
// less than the query's size but at least one thread's worth runs on fewer threads, bitwise the
// same; below that it is WORKSPACE_TOO_SMALL, naming both numbers.
TEST(HostBackend, WorkspaceIsLinearAndFewerThreadsFitLess) {
  auto size_for = [](int64_t n, int threads) {
    set_threads(threads);
    Problem pr(n, n, 64, FNCE_F32, false, 1);
    size_t bytes = 0;
    EXPECT_EQ(fnceBackwardWorkspaceSize(&pr.p, &bytes), FNCE_SUCCESS);
    return bytes;
  };
  const size_t s1 = size_for(1000, 1), s2 = size_for(2000, 1), s4 = size_for(4000, 1);
  const double per_line_12 = double(s2 - s1) / 2000.0, per_line_24 = double(s4 - s2) / 4000.0;
  EXPECT_NEAR(per_line_12, per_line_24, 1.0) << "not linear in n + m";
  EXPECT_LT(per_line_24, 128.0) << "more than 128 bytes per line";
#if defined(FLASHNCE_HAVE_OPENMP)
  const int initial = omp_get_max_threads();
  const size_t one_thread = size_for(1000, 1), four_threads = size_for(1000, 4);
  EXPECT_GT(four_threads, one_thread); // scratch per thread
  set_threads(4);
  const Problem pr(1000, 1000, 64, FNCE_F32, false, 1);
  const Outputs full = run(pr);
  EXPECT_TRUE(run(pr, one_thread) == full);
  set_threads(1);
  size_t forward_one = 0;
  ASSERT_EQ(fnceForwardWorkspaceSize(&pr.p, &forward_one), FNCE_SUCCESS);
  set_threads(4);
  std::vector<float> loss(2000, -1.0f), row(1000, -1.0f), col(1000, -1.0f);
  std::vector<uint8_t> ws(forward_one);
  EXPECT_EQ(
      fnceForward(&pr.p, loss.data(), row.data(), col.data(), ws.data(), forward_one - 1, nullptr),
      FNCE_ERROR_WORKSPACE_TOO_SMALL);
  const std::string msg = fnceGetLastErrorMessage();
  EXPECT_NE(msg.find(std::to_string(forward_one - 1)), std::string::npos) << msg;
  EXPECT_NE(msg.find(std::to_string(forward_one)), std::string::npos) << msg;
  EXPECT_EQ(loss[0], -1.0f); // nothing written
  EXPECT_EQ(row[0], -1.0f);
  set_threads(initial);
#endif
}

// Bad input on the host backend: a status, a message naming the argument, no output written (the
// API validates before any backend runs; these check that HOST is reached only after that).
TEST(HostBackend, BadInputWritesNothing) {
  Problem pr(10, 12, 4, FNCE_F32, false, 3);
  size_t fws = 0;
  ASSERT_EQ(fnceForwardWorkspaceSize(&pr.p, &fws), FNCE_SUCCESS);
  std::vector<uint8_t> ws(fws);
  struct Case {
    const char* what;
    void (*mutate)(fnceLossParams&);
    fnceStatus_t status;
  };
  const Case cases[] = {
      {"n", [](fnceLossParams& p) { p.n = 0; }, FNCE_ERROR_INVALID_VALUE},
      {"a", [](fnceLossParams& p) { p.a = nullptr; }, FNCE_ERROR_INVALID_VALUE},
      {"lda", [](fnceLossParams& p) { p.lda = 2; }, FNCE_ERROR_INVALID_VALUE},
      {"labels_a", [](fnceLossParams& p) { p.labels_a = nullptr; }, FNCE_ERROR_INVALID_VALUE},
      {"logit_scale", [](fnceLossParams& p) { p.logit_scale = nullptr; }, FNCE_ERROR_INVALID_VALUE},
  };
  for (const Case& c : cases) {
    fnceLossParams p = pr.p;
    c.mutate(p);
    std::vector<float> loss(22, -3.0f), row(10, -3.0f), col(12, -3.0f);
    EXPECT_EQ(fnceForward(&p, loss.data(), row.data(), col.data(), ws.data(), fws, nullptr),
              c.status)
        << c.what;
    EXPECT_NE(std::string(fnceGetLastErrorMessage()).find(c.what), std::string::npos)
        << c.what << ": " << fnceGetLastErrorMessage();
    for (float x : loss)
      ASSERT_EQ(x, -3.0f) << c.what;
    for (float x : row)
      ASSERT_EQ(x, -3.0f) << c.what;
    for (float x : col)
      ASSERT_EQ(x, -3.0f) << c.what;
  }
  // Backward without its LSEs, and with grad_b in self mode.
  std::vector<float> gl(22, 1.0f), ga(40, -3.0f), gb(48, -3.0f), lse(12, 0.0f);
  size_t bws = 0;
  ASSERT_EQ(fnceBackwardWorkspaceSize(&pr.p, &bws), FNCE_SUCCESS);
  std::vector<uint8_t> wb(bws);
  EXPECT_EQ(fnceBackward(&pr.p, nullptr, lse.data(), gl.data(), ga.data(), gb.data(), nullptr,
                         wb.data(), bws, nullptr),
            FNCE_ERROR_INVALID_VALUE);
  EXPECT_NE(std::string(fnceGetLastErrorMessage()).find("row_lse"), std::string::npos)
      << fnceGetLastErrorMessage();
  for (float x : ga)
    ASSERT_EQ(x, -3.0f);
  for (float x : gb)
    ASSERT_EQ(x, -3.0f);
}

TEST(HostBackend, DepthBeyondIntIsNotSupported) {
  float x = 1.0f, scale = 1.0f;
  fnceLossParams p;
  fnceLossParamsInit(&p);
  p.backend = FNCE_BACKEND_HOST;
  p.n = p.m = 1;
  p.d = int64_t(1) << 31;
  p.a = p.b = &x; // never read by the size query
  p.logit_scale = &scale;
  size_t bytes = 0;
  EXPECT_EQ(fnceForwardWorkspaceSize(&p, &bytes), FNCE_ERROR_NOT_SUPPORTED);
  EXPECT_NE(std::string(fnceGetLastErrorMessage()).find("d = 2147483648"), std::string::npos)
      << fnceGetLastErrorMessage();
}

TEST(HostBackend, DeviceNameSaysWhatRuns) {
  char name[128];
  ASSERT_EQ(fnceGetDeviceName(FNCE_BACKEND_HOST, name, sizeof name), FNCE_SUCCESS);
  const std::string s = name;
  EXPECT_EQ(s.rfind("CPU (f32, ", 0), 0u) << s;
#if defined(FLASHNCE_HAVE_BLAS)
  EXPECT_NE(s.find("OpenBLAS"), std::string::npos) << s;
#else
  EXPECT_NE(s.find("built-in"), std::string::npos) << s;
#endif
  EXPECT_EQ(fnceBackendIsAvailable(FNCE_BACKEND_HOST), 1);
  EXPECT_EQ(fnceGetDeviceName(FNCE_BACKEND_HOST, name, 5), FNCE_ERROR_INVALID_VALUE);
}

// The built-in loops (the fallback without BLAS) against double, ragged in every dimension and
// past the 256-column and 64-deep packing blocks; strides larger than the rows.
TEST(HostBackend, BuiltinGemmMatchesDouble) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const int shapes[][3] = {{1, 1, 1}, {5, 300, 70}, {130, 257, 129}, {4, 8, 3}};
  for (const auto& s : shapes) {
    const int m = s[0], n = s[1], k = s[2];
    const int lda = k + 3, ldb = k + 1, ldc = n + 5;
    std::vector<float> a(size_t(m * lda)), b(size_t(n * ldb)), c(size_t(m * ldc), 9.0f);
    for (auto& x : a)
      x = u(rng);
    for (auto& x : b)
      x = u(rng);
    builtin_gemm_abt(m, n, k, a.data(), lda, b.data(), ldb, c.data(), ldc);
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) {
        double ref = 0.0;
        for (int q = 0; q < k; ++q)
          ref += double(a[size_t(i * lda + q)]) * b[size_t(j * ldb + q)];
        ASSERT_NEAR(c[size_t(i * ldc + j)], ref, 1e-5 * k) << m << "x" << n << "x" << k;
      }
    // C (m x n) += A (m x k) . B2 (k x n)
    std::vector<float> b2(size_t(k * (n + 2))), c2(size_t(m * ldc));
    for (auto& x : b2)
      x = u(rng);
    for (auto& x : c2)
      x = u(rng);
    const std::vector<float> c0 = c2;
    builtin_gemm_ab_accumulate(m, n, k, a.data(), lda, b2.data(), n + 2, c2.data(), ldc);
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) {
        double ref = c0[size_t(i * ldc + j)];
        for (int q = 0; q < k; ++q)
          ref += double(a[size_t(i * lda + q)]) * b2[size_t(q * (n + 2) + j)];
        ASSERT_NEAR(c2[size_t(i * ldc + j)], ref, 1e-5 * (k + 1));
      }
    for (int i = 0; i < m; ++i) // the stride padding is never written
      for (int j = n; j < ldc; ++j)
        ASSERT_EQ(c[size_t(i * ldc + j)], 9.0f);
  }
}

TEST(HostBackend, ExpWithinTwoUlpAndItsHazards) {
  double worst = 0.0;
  for (float x = -86.5f; x < 88.7f; x += 0.001f) {
    const double ref = std::exp(double(x));
    worst = std::max(worst, std::fabs(exp_f32(x) - ref) / ref);
  }
  EXPECT_LT(worst, 2.0 * 5.96e-8) << "relative error beyond 2 ulp";
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(exp_f32(0.0f), 1.0f);
  EXPECT_EQ(exp_f32(-inf), 0.0f);
  EXPECT_EQ(exp_f32(inf), inf);
  EXPECT_EQ(exp_f32(89.0f), inf);
  EXPECT_EQ(exp_f32(-100.0f), 0.0f);
  EXPECT_TRUE(std::isnan(exp_f32(std::numeric_limits<float>::quiet_NaN())));
}

} // namespace
