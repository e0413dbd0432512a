// Helpers for the reference tests: a hand-built problem (normalised the way the API's validation
// normalises it, see host/backend.h) and per-element comparisons.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "flashnce/flashnce.h"
#include "host/backend.h"
#include "host/dtype.h"
#include "host/reference/reference_f64.h"

namespace flashnce_test {

using flashnce::Problem;

// A problem owned by the test.  `a`/`b` hold the values as floats, already representable in
// `dtype`; the dtype storage the backend reads is made from them by problem().
struct TestProblem {
  fnceDataType_t dtype = FNCE_F32;
  int64_t n = 1, m = 1, d = 1;
  int64_t lda = 0, ldb = 0; // 0 = d
  bool self_mode = false;
  std::vector<float> a, b; // n×lda, m×ldb (row-major with stride; padding ignored)
  float scale = 1.0f;
  fnceSimilarity_t similarity = FNCE_SIM_DOT;
  fncePositives_t positives = FNCE_POSITIVES_DIAGONAL;
  std::vector<int64_t> targets, labels_a, labels_b;
  int exclude_self = 0;
  fnceNormalizer_t normalizer = FNCE_NORMALIZER_ALL;
  fnceDirection_t direction = FNCE_DIRECTION_ROWS;
  fnceReduction_t reduction = FNCE_REDUCTION_MEAN;

  int64_t stride_a() const { return lda ? lda : d; }
  int64_t stride_b() const { return ldb ? ldb : d; }
  double av(int64_t i, int64_t k) const { return a[i * stride_a() + k]; }
  double bv(int64_t j, int64_t k) const { return self_mode ? av(j, k) : b[j * stride_b() + k]; }
  int64_t rows_b() const { return self_mode ? n : m; }
  int64_t loss_count() const {
    if (reduction != FNCE_REDUCTION_NONE)
      return 1;
    return direction == FNCE_DIRECTION_SYMMETRIC ? n + rows_b() : n;
  }

  // The public parameters (self mode: b = NULL), pointing into this object's storage.
  fnceLossParams params() {
    storage_a_ = to_storage(a);
    storage_b_ = to_storage(b);
    fnceLossParams p;
    fnceLossParamsInit(&p);
    p.backend = FNCE_BACKEND_CPU;
    p.dtype = dtype;
    p.n = n;
    p.m = self_mode ? n : m;
    p.d = d;
    p.a = storage_a_.data();
    p.lda = lda;
    p.b = self_mode ? nullptr : storage_b_.data();
    p.ldb = self_mode ? 0 : ldb;
    p.logit_scale = &scale;
    p.similarity = similarity;
    p.positives = positives;
    p.targets = targets.empty() ? nullptr : targets.data();
    p.labels_a = labels_a.empty() ? nullptr : labels_a.data();
    p.labels_b = (self_mode || labels_b.empty()) ? nullptr : labels_b.data();
    p.exclude_self = exclude_self;
    p.normalizer = normalizer;
    p.direction = direction;
    p.reduction = reduction;
    return p;
  }

  // What the API's validation hands to a backend (host/backend.h), built by hand.
  Problem problem() {
    Problem pr;
    pr.p = params();
    pr.self_mode = self_mode;
    if (pr.p.lda == 0)
      pr.p.lda = d;
    if (pr.p.ldb == 0)
      pr.p.ldb = d;
    if (self_mode) {
      pr.p.b = pr.p.a;
      pr.p.ldb = pr.p.lda;
      pr.p.m = n;
      pr.p.labels_b = pr.p.labels_a;
      pr.p.exclude_self = 1;
    }
    pr.p.exclude_self = pr.p.exclude_self ? 1 : 0;
    pr.loss_count = loss_count();
    return pr;
  }

  // Fills a (and b unless self mode) with N(0, sigma^2) values rounded to dtype.
  void randomize(std::mt19937_64& rng, double sigma) {
    std::normal_distribution<double> normal(0.0, sigma);
    a.assign(static_cast<size_t>(n * stride_a()), 0.0f);
    for (auto& x : a)
      x = flashnce::round_to_dtype(static_cast<float>(normal(rng)), dtype);
    if (!self_mode) {
      b.assign(static_cast<size_t>(m * stride_b()), 0.0f);
      for (auto& x : b)
        x = flashnce::round_to_dtype(static_cast<float>(normal(rng)), dtype);
    } else {
      b.clear();
    }
  }

private:
  std::vector<unsigned char> to_storage(const std::vector<float>& v) const {
    std::vector<unsigned char> out(v.size() * flashnce::dtype_size(dtype));
    for (size_t k = 0; k < v.size(); ++k)
      flashnce::store_element(out.data(), static_cast<int64_t>(k), dtype, v[k]);
    return out;
  }
  std::vector<unsigned char> storage_a_, storage_b_;
};

// Results of the backend entry points (float / dtype outputs decoded to double).
struct Outputs {
  std::vector<double> loss, row_lse, col_lse, grad_a, grad_b;
  double grad_logit_scale = 0.0;
};

inline Outputs run_reference(TestProblem& t, const std::vector<float>& grad_loss,
                             bool with_backward = true) {
  const Problem pr = t.problem();
  Outputs o;
  std::vector<float> loss(pr.loss_count), row_lse(t.n), col_lse(pr.p.m);
  EXPECT_EQ(flashnce::reference::forward(pr, loss.data(), row_lse.data(), col_lse.data()),
            FNCE_SUCCESS);
  o.loss.assign(loss.begin(), loss.end());
  o.row_lse.assign(row_lse.begin(), row_lse.end());
  if (t.direction == FNCE_DIRECTION_SYMMETRIC)
    o.col_lse.assign(col_lse.begin(), col_lse.end());
  if (!with_backward)
    return o;
  const size_t es = flashnce::dtype_size(t.dtype);
  std::vector<unsigned char> ga(static_cast<size_t>(t.n * t.d) * es);
  std::vector<unsigned char> gb(static_cast<size_t>(pr.p.m * t.d) * es);
  float gs = 0.0f;
  EXPECT_EQ(flashnce::reference::backward(pr, grad_loss.data(), ga.data(),
                                          t.self_mode ? nullptr : gb.data(), &gs),
            FNCE_SUCCESS);
  for (int64_t k = 0; k < t.n * t.d; ++k)
    o.grad_a.push_back(flashnce::load_element(ga.data(), k, t.dtype));
  if (!t.self_mode)
    for (int64_t k = 0; k < pr.p.m * t.d; ++k)
      o.grad_b.push_back(flashnce::load_element(gb.data(), k, t.dtype));
  o.grad_logit_scale = gs;
  return o;
}

// |x − ref| ≤ atol + rtol·|ref| for every element; a NaN reference demands a NaN.  Returns a
// description of the first few failures ("" when all pass).
template <class X, class R>
std::string compare(const char* what, const std::vector<X>& x, const std::vector<R>& ref,
                    double atol, double rtol) {
  std::ostringstream msg;
  if (x.size() != ref.size()) {
    msg << what << ": size " << x.size() << " != " << ref.size() << "\n";
    return msg.str();
  }
  int failures = 0;
  for (size_t k = 0; k < x.size(); ++k) {
    const double xv = static_cast<double>(x[k]);
    const double rv = static_cast<double>(ref[k]);
    bool ok;
    if (std::isnan(rv))
      ok = std::isnan(xv);
    else if (std::isinf(rv))
      ok = xv == rv;
    else
      ok = std::fabs(xv - rv) <= atol + rtol * std::fabs(rv);
    if (!ok && failures++ < 5)
      msg << what << "[" << k << "] = " << xv << ", expected " << rv << " (|diff| "
          << std::fabs(xv - rv) << ", allowed " << atol + rtol * std::fabs(rv) << ")\n";
  }
  if (failures > 5)
    msg << what << ": " << failures << " failures in all\n";
  return msg.str();
}

inline double max_abs(const std::vector<double>& v) {
  double m = 0.0;
  for (double x : v)
    if (std::isfinite(x))
      m = std::max(m, std::fabs(x));
  return m;
}

} // namespace flashnce_test
