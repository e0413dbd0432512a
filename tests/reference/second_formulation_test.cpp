// The reference against an independent second formulation, for every allowed combination of
// similarity × positives × exclude_self (incl. self mode) × normaliser × direction × reduction ×
// dtype, on random ragged shapes.
//
// The second formulation works on explicit n×m matrices in long double: the similarity matrix
// (COSINE from unit vectors, NEG_SQ_DIST as ‖a‖² + ‖b‖² − 2a·b), explicit positive / normaliser
// masks, a log-softmax per row (and per column on the transposed matrices), and the gradient as
// matrix products: dA = (scale·G)·B for DOT, the tangent projection of (scale·G)·B̂ for COSINE,
// −2(rowsum(G)∘A − G·B)·scale for NEG_SQ_DIST.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "combinations.h"
#include "reference_test_util.h"

namespace {

using namespace flashnce_test;
using ld = long double;

struct Expected {
  std::vector<ld> loss, row_lse, col_lse, grad_a, grad_b;
  ld grad_logit_scale = 0;
};

// Row-major n×m matrix.
struct Mat {
  int64_t rows = 0, cols = 0;
  std::vector<ld> v;
  Mat(int64_t r, int64_t c) : rows(r), cols(c), v(static_cast<size_t>(r * c), 0) {}
  ld& operator()(int64_t i, int64_t j) { return v[i * cols + j]; }
  ld operator()(int64_t i, int64_t j) const { return v[i * cols + j]; }
  Mat transposed() const {
    Mat t(cols, rows);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j)
        t(j, i) = (*this)(i, j);
    return t;
  }
};

Mat matmul(const Mat& x, const Mat& y) {
  Mat out(x.rows, y.cols);
  for (int64_t i = 0; i < x.rows; ++i)
    for (int64_t k = 0; k < x.cols; ++k)
      for (int64_t j = 0; j < y.cols; ++j)
        out(i, j) += x(i, k) * y(k, j);
  return out;
}

// Per line (row of L): loss via log-softmax, LSE, validity, and the gradient dℓ/dL.
struct LineResult {
  std::vector<ld> loss, lse;
  std::vector<bool> valid;
  Mat dl; // dℓ_i / dL_ij
  LineResult(int64_t r, int64_t c) : loss(r, 0), lse(r, 0), valid(r, false), dl(r, c) {}
};

LineResult log_softmax_lines(const Mat& L, const Mat& P, const Mat& Z,
                             const std::vector<bool>& poisoned, bool negatives) {
  LineResult out(L.rows, L.cols);
  const ld inf = std::numeric_limits<ld>::infinity();
  for (int64_t i = 0; i < L.rows; ++i) {
    ld mx = -inf, zc = 0, pc = 0;
    for (int64_t j = 0; j < L.cols; ++j) {
      if (Z(i, j) != 0) {
        mx = std::max(mx, L(i, j));
        zc += 1;
      }
      pc += P(i, j);
    }
    ld sum = 0;
    for (int64_t j = 0; j < L.cols; ++j)
      if (Z(i, j) != 0)
        sum += std::exp(L(i, j) - mx);
    out.lse[i] = zc > 0 ? mx + std::log(sum) : -inf;
    if (poisoned[i]) {
      out.valid[i] = true;
      out.loss[i] = std::numeric_limits<ld>::quiet_NaN();
      for (int64_t j = 0; j < L.cols; ++j)
        out.dl(i, j) = std::numeric_limits<ld>::quiet_NaN();
      continue;
    }
    if (zc == 0 || pc == 0)
      continue;
    out.valid[i] = true;
    // ℓ_i = −(1/|P|) Σ_p log_softmax_ip  [− log|Z| for NEGATIVES]
    ld acc = 0;
    for (int64_t j = 0; j < L.cols; ++j)
      if (P(i, j) != 0)
        acc += L(i, j) - out.lse[i];
    out.loss[i] = -acc / pc - (negatives ? std::log(zc) : 0);
    for (int64_t j = 0; j < L.cols; ++j)
      out.dl(i, j) = (Z(i, j) != 0 ? std::exp(L(i, j) - out.lse[i]) : 0) - P(i, j) / pc;
  }
  return out;
}

Expected second_formulation(const TestProblem& t, const std::vector<float>& grad_loss) {
  const int64_t n = t.n, m = t.rows_b(), d = t.d;
  const ld scale = t.scale;
  Mat A(n, d), B(m, d);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < d; ++k)
      A(i, k) = t.av(i, k);
  for (int64_t j = 0; j < m; ++j)
    for (int64_t k = 0; k < d; ++k)
      B(j, k) = t.bv(j, k);
  std::vector<ld> na(n), nb(m);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < d; ++k)
      na[i] += A(i, k) * A(i, k);
    na[i] = std::sqrt(na[i]);
  }
  for (int64_t j = 0; j < m; ++j) {
    for (int64_t k = 0; k < d; ++k)
      nb[j] += B(j, k) * B(j, k);
    nb[j] = std::sqrt(nb[j]);
  }
  const ld eps = 1e-12L;
  Mat Ahat = A, Bhat = B;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < d; ++k)
      Ahat(i, k) /= std::max(na[i], eps);
  for (int64_t j = 0; j < m; ++j)
    for (int64_t k = 0; k < d; ++k)
      Bhat(j, k) /= std::max(nb[j], eps);

  const Mat Bt = B.transposed();
  Mat S(n, m);
  if (t.similarity == FNCE_SIM_DOT) {
    S = matmul(A, Bt);
  } else if (t.similarity == FNCE_SIM_COSINE) {
    S = matmul(Ahat, Bhat.transposed());
  } else {
    const Mat AB = matmul(A, Bt);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < m; ++j)
        S(i, j) = 2 * AB(i, j) - na[i] * na[i] - nb[j] * nb[j];
  }
  Mat L(n, m);
  for (size_t k = 0; k < S.v.size(); ++k)
    L.v[k] = scale * S.v[k];

  // Masks.
  Mat P(n, m), Z(n, m);
  std::vector<bool> poisoned(n, false);
  for (int64_t i = 0; i < n; ++i) {
    if (t.positives == FNCE_POSITIVES_TARGETS && t.targets[i] >= m)
      poisoned[i] = true;
    for (int64_t j = 0; j < m; ++j) {
      bool pos = false;
      switch (t.positives) {
      case FNCE_POSITIVES_DIAGONAL:
        pos = i == j;
        break;
      case FNCE_POSITIVES_TARGETS:
        pos = t.targets[i] == j;
        break;
      case FNCE_POSITIVES_LABELS:
        pos = t.labels_a[i] == (t.self_mode ? t.labels_a[j] : t.labels_b[j]);
        break;
      case FNCE_POSITIVES_VIEW_PAIRS:
        pos = j == (i + n / 2) % n;
        break;
      }
      const bool self_excluded = (t.exclude_self || t.self_mode) && i == j;
      P(i, j) = (pos && !self_excluded) ? 1 : 0;
      Z(i, j) =
          (!self_excluded && !(t.normalizer == FNCE_NORMALIZER_NEGATIVES && P(i, j) != 0)) ? 1 : 0;
    }
  }
  const bool negatives = t.normalizer == FNCE_NORMALIZER_NEGATIVES;
  const bool sym = t.direction == FNCE_DIRECTION_SYMMETRIC;
  const LineResult rows = log_softmax_lines(L, P, Z, poisoned, negatives);
  const LineResult cols = sym ? log_softmax_lines(L.transposed(), P.transposed(), Z.transposed(),
                                                  std::vector<bool>(m, false), negatives)
                              : LineResult(0, 0);

  Expected e;
  e.row_lse = rows.lse;
  if (sym)
    e.col_lse = cols.lse;
  auto count = [](const std::vector<bool>& v) {
    return static_cast<ld>(std::count(v.begin(), v.end(), true));
  };
  const ld rows_valid = count(rows.valid), cols_valid = sym ? count(cols.valid) : 0;
  ld row_sum = 0, col_sum = 0;
  for (int64_t i = 0; i < n; ++i)
    row_sum += rows.loss[i];
  for (int64_t j = 0; sym && j < m; ++j)
    col_sum += cols.loss[j];
  const ld half = sym ? 0.5L : 1.0L;
  std::vector<ld> w(n), v(sym ? m : 0); // dL/dℓ per row / column
  switch (t.reduction) {
  case FNCE_REDUCTION_MEAN: {
    const ld rm = rows_valid > 0 ? row_sum / rows_valid : 0;
    const ld cm = cols_valid > 0 ? col_sum / cols_valid : 0;
    e.loss = {sym ? half * (rm + cm) : rm};
    for (auto& x : w)
      x = rows_valid > 0 ? half * grad_loss[0] / rows_valid : 0;
    for (auto& x : v)
      x = cols_valid > 0 ? half * grad_loss[0] / cols_valid : 0;
    break;
  }
  case FNCE_REDUCTION_SUM:
    e.loss = {half * (row_sum + col_sum)};
    for (auto& x : w)
      x = half * grad_loss[0];
    for (auto& x : v)
      x = half * grad_loss[0];
    break;
  case FNCE_REDUCTION_NONE:
    e.loss = rows.loss;
    if (sym)
      e.loss.insert(e.loss.end(), cols.loss.begin(), cols.loss.end());
    for (int64_t i = 0; i < n; ++i)
      w[i] = grad_loss[i];
    for (int64_t j = 0; sym && j < m; ++j)
      v[j] = grad_loss[n + j];
    break;
  }

  // G = dL/dL_ij; Gs = scale·G = dL/dS_ij.
  Mat G(n, m);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < m; ++j) {
      ld g = rows.valid[i] ? w[i] * rows.dl(i, j) : 0;
      if (sym && cols.valid[j])
        g += v[j] * cols.dl(j, i);
      G(i, j) = g;
    }
  for (size_t k = 0; k < G.v.size(); ++k)
    e.grad_logit_scale += G.v[k] * S.v[k];
  Mat Gs = G;
  for (auto& x : Gs.v)
    x *= scale;
  const Mat Gst = Gs.transposed();
  Mat dA(n, d), dB(m, d);
  if (t.similarity == FNCE_SIM_DOT) {
    dA = matmul(Gs, B);
    dB = matmul(Gst, A);
  } else if (t.similarity == FNCE_SIM_COSINE) {
    // sim = â·b̂: dA_i = (I − â_i â_iᵀ)(Σ_j Gs_ij b̂_j) / ‖a_i‖ (projection dropped below eps).
    auto project = [&](const Mat& U, const Mat& Hat, const std::vector<ld>& norms, Mat& out) {
      for (int64_t r = 0; r < U.rows; ++r) {
        ld along = 0;
        for (int64_t k = 0; k < d; ++k)
          along += U(r, k) * Hat(r, k);
        const bool above = norms[r] > eps;
        for (int64_t k = 0; k < d; ++k)
          out(r, k) = (U(r, k) - (above ? along * Hat(r, k) : 0)) / std::max(norms[r], eps);
      }
    };
    project(matmul(Gs, Bhat), Ahat, na, dA);
    project(matmul(Gst, Ahat), Bhat, nb, dB);
  } else {
    // S = 2AB^T − ‖a‖² − ‖b‖²: dA = 2(Gs·B − rowsum(Gs)∘A), dB = 2(Gsᵀ·A − colsum(Gs)∘B).
    const Mat GB = matmul(Gs, B), GA = matmul(Gst, A);
    for (int64_t i = 0; i < n; ++i) {
      ld rs = 0;
      for (int64_t j = 0; j < m; ++j)
        rs += Gs(i, j);
      for (int64_t k = 0; k < d; ++k)
        dA(i, k) = 2 * (GB(i, k) - rs * A(i, k));
    }
    for (int64_t j = 0; j < m; ++j) {
      ld cs = 0;
      for (int64_t i = 0; i < n; ++i)
        cs += Gs(i, j);
      for (int64_t k = 0; k < d; ++k)
        dB(j, k) = 2 * (GA(j, k) - cs * B(j, k));
    }
  }
  if (t.self_mode) {
    for (size_t k = 0; k < dA.v.size(); ++k)
      dA.v[k] += dB.v[k];
    e.grad_a = dA.v;
  } else {
    e.grad_a = dA.v;
    e.grad_b = dB.v;
  }
  return e;
}

// Per-element tolerance of an output stored in `dt`: the reference computes in double, so the
// error is the final rounding (to float, then to the dtype) plus a small absolute floor for
// values that cancel (scaled by the array's magnitude; 1e-9 for gradients that are exactly zero
// in exact arithmetic, e.g. COSINE with d = 1, where both sides leave ~1e-14 residues).
struct Tolerance {
  double atol, rtol;
};
Tolerance output_tolerance(fnceDataType_t dt, double magnitude) {
  switch (dt) {
  case FNCE_F16:
    return {1e-7 + 1e-6 * magnitude, 1.0 / 1024}; // 1 ulp; subnormals below 6e-5
  case FNCE_BF16:
    return {1e-9 + 1e-6 * magnitude, 1.0 / 128}; // 1 ulp
  default:
    return {1e-9 + 1e-6 * magnitude, 1e-6};
  }
}

struct Shape {
  int64_t n, m, d;
};

// Ragged shapes from {1, 3, 7, 65, 123} (n != m in cross mode; even n for VIEW_PAIRS); each size
// appears as n, m and d somewhere, with n·m·d kept small enough for a quick case.
std::vector<Shape> shapes_for(Structure st, uint64_t seed) {
  const int64_t big_d = seed % 2 ? 7 : 3;
  if (st == Structure::kSelfViewPairs)
    return {{2, 2, 123}, {8, 8, 1}, {8, 8, 65}, {66, 66, big_d}};
  if (is_self(st))
    return {{3, 3, 123}, {7, 7, 1}, {7, 7, 65}, {65, 65, big_d}};
  if (st == Structure::kDiagonal || st == Structure::kDiagonalExcl) // needs n <= m
    return {{3, 7, 1}, {1, 65, 123}, {7, 123, 65}, {65, 123, big_d}};
  return {{7, 3, 1}, {123, 1, 3}, {65, 7, 65}, {123, 65, big_d}};
}

class SecondFormulation : public ::testing::TestWithParam<Combination> {};

TEST_P(SecondFormulation, MatchesReference) {
  // One case per combination of options; the three dtypes and four shapes inside (a CTest case is
  // a process: this keeps the suite's count of processes, and so its runtime, down).
  for (fnceDataType_t dt : {FNCE_F32, FNCE_F16, FNCE_BF16}) {
    Combination c = GetParam();
    std::get<5>(c) = dt;
    SCOPED_TRACE(combination_name({c, 0}));
    const Structure st = std::get<1>(c);
    const uint64_t seed = std::hash<std::string>{}(combination_name({c, 0}));
    const std::vector<Shape> shapes = shapes_for(st, seed);
    for (size_t s = 0; s < shapes.size(); ++s) {
      SCOPED_TRACE("n=" + std::to_string(shapes[s].n) + " m=" + std::to_string(shapes[s].m) +
                   " d=" + std::to_string(shapes[s].d));
      TestProblem t = random_problem(c, shapes[s].n, shapes[s].m, shapes[s].d, seed + s);
      const std::vector<float> gl = random_grad_loss(t, seed + 100 + s);
      const Outputs o = run_reference(t, gl);
      const Expected e = second_formulation(t, gl);
      // Forward outputs are float whatever the dtype.
      const Tolerance tf = output_tolerance(FNCE_F32, 1.0);
      EXPECT_EQ(compare("loss", o.loss, e.loss, tf.atol, tf.rtol), "");
      EXPECT_EQ(compare("row_lse", o.row_lse, e.row_lse, tf.atol, tf.rtol), "");
      EXPECT_EQ(compare("col_lse", o.col_lse, e.col_lse, tf.atol, tf.rtol), "");
      std::vector<double> ga(e.grad_a.begin(), e.grad_a.end()),
          gb(e.grad_b.begin(), e.grad_b.end());
      const Tolerance ta = output_tolerance(t.dtype, max_abs(ga));
      const Tolerance tb = output_tolerance(t.dtype, max_abs(gb));
      EXPECT_EQ(compare("grad_a", o.grad_a, ga, ta.atol, ta.rtol), "");
      EXPECT_EQ(compare("grad_b", o.grad_b, gb, tb.atol, tb.rtol), "");
      const double gs = static_cast<double>(e.grad_logit_scale);
      EXPECT_NEAR(o.grad_logit_scale, gs, 1e-6 * (1.0 + std::fabs(gs)));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllCombinations, SecondFormulation,
                         ::testing::Combine(all_similarities(), all_structures(), all_normalizers(),
                                            all_directions(), all_reductions(),
                                            ::testing::Values(FNCE_F32)), // dtypes: in the case
                         options_only_name);

} // namespace
