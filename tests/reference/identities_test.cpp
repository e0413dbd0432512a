// Identities the loss must satisfy, checked on the reference in double (forward_f64/backward_f64):
// SYMMETRIC = the mean of two ROWS calls with a and b swapped; LABELS with distinct labels =
// DIAGONAL; self mode + VIEW_PAIRS = SimCLR's NT-Xent written out; NEGATIVES = ALL restricted to
// the negatives minus log(count); permuting rows with their targets permutes the per-row losses;
// scale 0 gives log|Z(i)| (ALL) and 0 (NEGATIVES); NEG_SQ_DIST = DOT with a column bias −‖b_j‖².
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "reference_test_util.h"

namespace {

using namespace flashnce_test;
using flashnce::reference::backward_f64;
using flashnce::reference::BackwardF64;
using flashnce::reference::forward_f64;
using flashnce::reference::ForwardF64;
using flashnce::reference::InputsF64;
using flashnce::reference::load_inputs;

struct F64 {
  ForwardF64 f;
  BackwardF64 b;
};

F64 run_f64(TestProblem& t, const std::vector<double>& grad_loss) {
  const Problem pr = t.problem();
  const InputsF64 in = load_inputs(pr);
  return {forward_f64(pr, in), backward_f64(pr, in, grad_loss.data())};
}

std::vector<double> add_halves(const std::vector<double>& x, const std::vector<double>& y) {
  std::vector<double> out(x.size());
  for (size_t k = 0; k < x.size(); ++k)
    out[k] = 0.5 * (x[k] + y[k]);
  return out;
}

std::vector<double> concat(std::vector<double> x, const std::vector<double>& y) {
  x.insert(x.end(), y.begin(), y.end());
  return x;
}

const char* sim_name(fnceSimilarity_t s) {
  return s == FNCE_SIM_DOT ? "DOT" : s == FNCE_SIM_COSINE ? "COSINE" : "NEG_SQ_DIST";
}

constexpr double kTight = 1e-12; // double vs double, different summation order

// SYMMETRIC is, by definition, the row loss plus the same loss over the columns of the same
// logits; the columns of (a, b) are the rows of (b, a) with the positive structure transposed.
TEST(Identities, SymmetricIsMeanOfSwappedRows) {
  enum Kind { kDiagonalSquare, kDiagonalRect, kLabels };
  std::mt19937_64 rng(11);
  for (fnceSimilarity_t sim : {FNCE_SIM_DOT, FNCE_SIM_COSINE, FNCE_SIM_NEG_SQ_DIST})
    for (Kind kind : {kDiagonalSquare, kDiagonalRect, kLabels})
      for (fnceNormalizer_t norm : {FNCE_NORMALIZER_ALL, FNCE_NORMALIZER_NEGATIVES})
        for (int excl : {0, 1})
          for (fnceReduction_t red :
               {FNCE_REDUCTION_MEAN, FNCE_REDUCTION_SUM, FNCE_REDUCTION_NONE}) {
            SCOPED_TRACE(std::string(sim_name(sim)) + " kind=" + std::to_string(kind) +
                         " norm=" + std::to_string(norm) + " excl=" + std::to_string(excl) +
                         " red=" + std::to_string(red));
            TestProblem t;
            t.n = kind == kDiagonalSquare ? 6 : kind == kDiagonalRect ? 4 : 5;
            t.m = kind == kDiagonalSquare ? 6 : kind == kDiagonalRect ? 7 : 8;
            t.d = 3;
            t.similarity = sim;
            t.normalizer = norm;
            t.exclude_self = excl;
            t.reduction = red;
            t.scale = 1.5f;
            t.randomize(rng, 0.7);
            t.positives = kind == kLabels ? FNCE_POSITIVES_LABELS : FNCE_POSITIVES_DIAGONAL;
            if (kind == kLabels) {
              for (int64_t i = 0; i < t.n; ++i)
                t.labels_a.push_back(static_cast<int64_t>(rng() % 3));
              for (int64_t j = 0; j < t.m; ++j)
                t.labels_b.push_back(static_cast<int64_t>(rng() % 4));
            }
            // The swapped problem: rows are b, columns a.
            TestProblem s = t;
            s.n = t.m;
            s.m = t.n;
            s.a = t.b;
            s.b = t.a;
            if (kind == kLabels)
              std::swap(s.labels_a, s.labels_b);
            if (kind == kDiagonalRect) { // column j's positive is row j (j < n): a TARGETS row
              s.positives = FNCE_POSITIVES_TARGETS;
              for (int64_t j = 0; j < t.m; ++j)
                s.targets.push_back(j < t.n ? j : -1);
            }
            TestProblem r = t;
            t.direction = FNCE_DIRECTION_SYMMETRIC;

            std::vector<double> c_rows(red == FNCE_REDUCTION_NONE ? t.n : 1, 1.0);
            std::vector<double> c_cols(red == FNCE_REDUCTION_NONE ? t.m : 1, 1.0);
            if (red == FNCE_REDUCTION_NONE)
              for (auto* c : {&c_rows, &c_cols})
                for (auto& x : *c)
                  x = std::uniform_real_distribution<double>(-1, 1)(rng);
            const F64 sym = run_f64(t, red == FNCE_REDUCTION_NONE ? concat(c_rows, c_cols)
                                                                  : std::vector<double>{1.0});
            const F64 rows = run_f64(r, c_rows);
            const F64 cols = run_f64(s, c_cols);

            if (red == FNCE_REDUCTION_NONE) {
              EXPECT_EQ(
                  compare("loss", sym.f.loss, concat(rows.f.loss, cols.f.loss), kTight, kTight),
                  "");
              std::vector<double> ga(rows.b.grad_a), gb(rows.b.grad_b);
              for (size_t k = 0; k < ga.size(); ++k)
                ga[k] += cols.b.grad_b[k];
              for (size_t k = 0; k < gb.size(); ++k)
                gb[k] += cols.b.grad_a[k];
              EXPECT_EQ(compare("grad_a", sym.b.grad_a, ga, kTight, kTight), "");
              EXPECT_EQ(compare("grad_b", sym.b.grad_b, gb, kTight, kTight), "");
              EXPECT_NEAR(sym.b.grad_logit_scale, rows.b.grad_logit_scale + cols.b.grad_logit_scale,
                          kTight * 10);
            } else {
              EXPECT_EQ(
                  compare("loss", sym.f.loss, add_halves(rows.f.loss, cols.f.loss), kTight, kTight),
                  "");
              EXPECT_EQ(compare("grad_a", sym.b.grad_a, add_halves(rows.b.grad_a, cols.b.grad_b),
                                kTight, kTight),
                        "");
              EXPECT_EQ(compare("grad_b", sym.b.grad_b, add_halves(rows.b.grad_b, cols.b.grad_a),
                                kTight, kTight),
                        "");
              EXPECT_NEAR(sym.b.grad_logit_scale,
                          0.5 * (rows.b.grad_logit_scale + cols.b.grad_logit_scale), kTight * 10);
            }
            EXPECT_EQ(compare("row_lse", sym.f.row_lse, rows.f.row_lse, kTight, kTight), "");
            EXPECT_EQ(compare("col_lse", sym.f.col_lse, cols.f.row_lse, kTight, kTight), "");
          }
}

TEST(Identities, DistinctLabelsEqualDiagonal) {
  std::mt19937_64 rng(12);
  for (fnceSimilarity_t sim : {FNCE_SIM_DOT, FNCE_SIM_COSINE, FNCE_SIM_NEG_SQ_DIST})
    for (fnceNormalizer_t norm : {FNCE_NORMALIZER_ALL, FNCE_NORMALIZER_NEGATIVES})
      for (fnceDirection_t dir : {FNCE_DIRECTION_ROWS, FNCE_DIRECTION_SYMMETRIC})
        for (fnceReduction_t red : {FNCE_REDUCTION_MEAN, FNCE_REDUCTION_SUM, FNCE_REDUCTION_NONE}) {
          SCOPED_TRACE(std::string(sim_name(sim)) + " norm=" + std::to_string(norm) +
                       " dir=" + std::to_string(dir) + " red=" + std::to_string(red));
          TestProblem diag;
          diag.n = 5;
          diag.m = 8;
          diag.d = 4;
          diag.similarity = sim;
          diag.normalizer = norm;
          diag.direction = dir;
          diag.reduction = red;
          diag.scale = 2.0f;
          diag.randomize(rng, 0.5);
          TestProblem labels = diag;
          labels.positives = FNCE_POSITIVES_LABELS;
          for (int64_t i = 0; i < diag.n; ++i)
            labels.labels_a.push_back(100 + i);
          for (int64_t j = 0; j < diag.m; ++j)
            labels.labels_b.push_back(100 + j);
          std::vector<double> c(static_cast<size_t>(diag.loss_count()));
          for (auto& x : c)
            x = std::uniform_real_distribution<double>(-1, 1)(rng);
          const F64 x = run_f64(diag, c), y = run_f64(labels, c);
          EXPECT_EQ(compare("loss", y.f.loss, x.f.loss, 0, 1e-15), "");
          EXPECT_EQ(compare("row_lse", y.f.row_lse, x.f.row_lse, 0, 1e-15), "");
          EXPECT_EQ(compare("col_lse", y.f.col_lse, x.f.col_lse, 0, 1e-15), "");
          EXPECT_EQ(compare("grad_a", y.b.grad_a, x.b.grad_a, 0, 1e-15), "");
          EXPECT_EQ(compare("grad_b", y.b.grad_b, x.b.grad_b, 0, 1e-15), "");
          EXPECT_EQ(y.b.grad_logit_scale, x.b.grad_logit_scale);
        }
}

// SimCLR (Chen et al. 2020), eq. (1): l(i, j) = −log( exp(sim(z_i, z_j)/τ) /
// Σ_{k≠i} exp(sim(z_i, z_k)/τ) ), averaged over all 2N views; views i and i+N are the pairs.
TEST(Identities, SelfViewPairsIsNtXent) {
  std::mt19937_64 rng(13);
  const int64_t two_n = 10, d = 6;
  const double tau = 0.1;
  TestProblem t;
  t.self_mode = true;
  t.n = two_n;
  t.d = d;
  t.similarity = FNCE_SIM_COSINE;
  t.positives = FNCE_POSITIVES_VIEW_PAIRS;
  t.scale = static_cast<float>(1.0 / tau); // 10 exactly
  t.randomize(rng, 1.0);
  const Outputs o = run_reference(t, {1.0f}, /*with_backward=*/false);

  auto cosine = [&](int64_t i, int64_t j) {
    double dot = 0, ni = 0, nj = 0;
    for (int64_t k = 0; k < d; ++k) {
      dot += t.av(i, k) * t.av(j, k);
      ni += t.av(i, k) * t.av(i, k);
      nj += t.av(j, k) * t.av(j, k);
    }
    return dot / std::sqrt(ni * nj);
  };
  double total = 0;
  for (int64_t i = 0; i < two_n; ++i) {
    const int64_t j = (i + two_n / 2) % two_n;
    double denominator = 0;
    for (int64_t k = 0; k < two_n; ++k)
      if (k != i)
        denominator += std::exp(cosine(i, k) / tau);
    total += -std::log(std::exp(cosine(i, j) / tau) / denominator);
  }
  EXPECT_EQ(compare("loss", o.loss, std::vector<double>{total / two_n}, 1e-6, 1e-6), "");
}

// ℓ_NEG = LSE over the negatives − log|negatives| − mean positive, and LSE over the negatives =
// LSE_ALL + log(1 − Σ_p softmax_ALL(p)).
TEST(Identities, NegativesIsAllOverNegativesMinusLogCount) {
  std::mt19937_64 rng(14);
  for (fnceSimilarity_t sim : {FNCE_SIM_DOT, FNCE_SIM_COSINE, FNCE_SIM_NEG_SQ_DIST}) {
    SCOPED_TRACE(sim_name(sim));
    TestProblem all;
    all.n = 7;
    all.m = 9;
    all.d = 3;
    all.similarity = sim;
    all.positives = FNCE_POSITIVES_LABELS;
    all.reduction = FNCE_REDUCTION_NONE;
    all.scale = 1.25f;
    all.randomize(rng, 0.8);
    for (int64_t i = 0; i < all.n; ++i)
      all.labels_a.push_back(static_cast<int64_t>(rng() % 3));
    for (int64_t j = 0; j < all.m; ++j)
      all.labels_b.push_back(static_cast<int64_t>(rng() % 3));
    TestProblem neg = all;
    neg.normalizer = FNCE_NORMALIZER_NEGATIVES;
    const std::vector<double> ones(all.n, 1.0);
    const F64 x = run_f64(all, ones), y = run_f64(neg, ones);

    // Logits by the definition, for the positives' softmax mass under ALL.
    const Problem pr = all.problem();
    const InputsF64 in = load_inputs(pr);
    for (int64_t i = 0; i < all.n; ++i) {
      int64_t positives = 0;
      double mass = 0;
      for (int64_t j = 0; j < all.m; ++j) {
        if (all.labels_a[i] != all.labels_b[j])
          continue;
        ++positives;
        double s = 0;
        for (int64_t k = 0; k < all.d; ++k) {
          const double u = all.av(i, k), v = all.bv(j, k);
          s += sim == FNCE_SIM_NEG_SQ_DIST ? -(u - v) * (u - v) : u * v;
        }
        if (sim == FNCE_SIM_COSINE) {
          double nu = 0, nv = 0;
          for (int64_t k = 0; k < all.d; ++k) {
            nu += all.av(i, k) * all.av(i, k);
            nv += all.bv(j, k) * all.bv(j, k);
          }
          s /= std::sqrt(nu * nv);
        }
        mass += std::exp(in.scale * s - x.f.row_lse[i]);
      }
      SCOPED_TRACE("row " + std::to_string(i) + " positives " + std::to_string(positives));
      if (positives == 0) { // invalid in both
        EXPECT_EQ(x.f.loss[i], 0.0);
        EXPECT_EQ(y.f.loss[i], 0.0);
        continue;
      }
      const double lse_negatives = x.f.row_lse[i] + std::log1p(-mass);
      EXPECT_NEAR(y.f.row_lse[i], lse_negatives, 1e-10);
      // ℓ_ALL = LSE_ALL − mean_p s_p  =>  ℓ_NEG = ℓ_ALL + (LSE_neg − LSE_ALL) − log(m − |P|).
      const double expected =
          x.f.loss[i] + std::log1p(-mass) - std::log(static_cast<double>(all.m - positives));
      EXPECT_NEAR(y.f.loss[i], expected, 1e-10 * (1 + std::fabs(expected)));
    }
  }
}

TEST(Identities, PermutingRowsWithTargetsPermutesRowLosses) {
  std::mt19937_64 rng(15);
  for (fnceSimilarity_t sim : {FNCE_SIM_DOT, FNCE_SIM_COSINE, FNCE_SIM_NEG_SQ_DIST})
    for (fnceNormalizer_t norm : {FNCE_NORMALIZER_ALL, FNCE_NORMALIZER_NEGATIVES}) {
      SCOPED_TRACE(std::string(sim_name(sim)) + " norm=" + std::to_string(norm));
      TestProblem t;
      t.n = 9;
      t.m = 6;
      t.d = 5;
      t.similarity = sim;
      t.normalizer = norm;
      t.positives = FNCE_POSITIVES_TARGETS;
      t.reduction = FNCE_REDUCTION_NONE;
      t.scale = 3.0f;
      t.randomize(rng, 0.5);
      for (int64_t i = 0; i < t.n; ++i)
        t.targets.push_back(static_cast<int64_t>(rng() % 7) - 1); // −1 .. 5
      std::vector<int64_t> perm(t.n);
      std::iota(perm.begin(), perm.end(), 0);
      std::shuffle(perm.begin(), perm.end(), rng);
      TestProblem u = t; // row k of u is row perm[k] of t
      for (int64_t k = 0; k < t.n; ++k) {
        u.targets[k] = t.targets[perm[k]];
        for (int64_t c = 0; c < t.d; ++c)
          u.a[k * t.d + c] = t.a[perm[k] * t.d + c];
      }
      std::vector<double> c(t.n);
      for (auto& x : c)
        x = std::uniform_real_distribution<double>(-1, 1)(rng);
      std::vector<double> cu(t.n);
      for (int64_t k = 0; k < t.n; ++k)
        cu[k] = c[perm[k]];
      const F64 x = run_f64(t, c), y = run_f64(u, cu);
      for (int64_t k = 0; k < t.n; ++k) {
        EXPECT_EQ(y.f.loss[k], x.f.loss[perm[k]]) << "row " << k; // same arithmetic per row
        EXPECT_EQ(y.f.row_lse[k], x.f.row_lse[perm[k]]);
        for (int64_t e = 0; e < t.d; ++e)
          EXPECT_NEAR(y.b.grad_a[k * t.d + e], x.b.grad_a[perm[k] * t.d + e], 1e-14);
      }
      EXPECT_EQ(compare("grad_b", y.b.grad_b, x.b.grad_b, 1e-13, 1e-12), "");
    }
}

TEST(Identities, ZeroScaleGivesLogCountOrZero) {
  std::mt19937_64 rng(16);
  for (fnceSimilarity_t sim : {FNCE_SIM_DOT, FNCE_SIM_COSINE, FNCE_SIM_NEG_SQ_DIST})
    for (int excl : {0, 1}) {
      SCOPED_TRACE(std::string(sim_name(sim)) + " excl=" + std::to_string(excl));
      TestProblem t;
      t.n = 6;
      t.m = 8;
      t.d = 3;
      t.similarity = sim;
      t.exclude_self = excl;
      t.positives = FNCE_POSITIVES_LABELS;
      t.reduction = FNCE_REDUCTION_NONE;
      t.direction = FNCE_DIRECTION_SYMMETRIC;
      t.scale = 0.0f;
      t.randomize(rng, 1.0);
      for (int64_t i = 0; i < t.n; ++i)
        t.labels_a.push_back(static_cast<int64_t>(rng() % 3));
      for (int64_t j = 0; j < t.m; ++j)
        t.labels_b.push_back(static_cast<int64_t>(rng() % 3));
      // Row i: Z = all j (minus i under exclude_self): ℓ_i = log|Z| − 0 when it has a positive.
      std::vector<double> expected_all, expected_neg(t.n + t.m, 0.0);
      for (int64_t i = 0; i < t.n; ++i) {
        int64_t p = 0, z = 0;
        for (int64_t j = 0; j < t.m; ++j) {
          const bool self = excl && i == j;
          z += !self;
          p += !self && t.labels_a[i] == t.labels_b[j];
        }
        expected_all.push_back(p > 0 ? std::log(static_cast<double>(z)) : 0.0);
      }
      for (int64_t j = 0; j < t.m; ++j) {
        int64_t p = 0, z = 0;
        for (int64_t i = 0; i < t.n; ++i) {
          const bool self = excl && i == j;
          z += !self;
          p += !self && t.labels_a[i] == t.labels_b[j];
        }
        expected_all.push_back(p > 0 ? std::log(static_cast<double>(z)) : 0.0);
      }
      const Outputs all = run_reference(t, std::vector<float>(t.n + t.m, 1.0f), false);
      EXPECT_EQ(compare("loss ALL", all.loss, expected_all, 1e-7, 1e-6), "");
      t.normalizer = FNCE_NORMALIZER_NEGATIVES;
      const Outputs neg = run_reference(t, std::vector<float>(t.n + t.m, 1.0f), false);
      EXPECT_EQ(compare("loss NEGATIVES", neg.loss, expected_neg, 1e-7, 0), "");
    }
}

// −scale‖a_i − b_j‖² = scale·(2a_i·b_j − ‖b_j‖²) − scale‖a_i‖²; the last term is the same for every
// j of row i and cancels in the row loss.  So NEG_SQ_DIST = DOT on a' = [2a, −1], b' = [b, ‖b‖²].
TEST(Identities, NegSqDistIsDotWithColumnBias) {
  std::mt19937_64 rng(17);
  for (fnceNormalizer_t norm : {FNCE_NORMALIZER_ALL, FNCE_NORMALIZER_NEGATIVES}) {
    SCOPED_TRACE("norm=" + std::to_string(norm));
    TestProblem t;
    t.n = 7;
    t.m = 11;
    t.d = 4;
    t.similarity = FNCE_SIM_NEG_SQ_DIST;
    t.normalizer = norm;
    t.positives = FNCE_POSITIVES_TARGETS;
    t.reduction = FNCE_REDUCTION_NONE;
    t.scale = 0.8f;
    t.randomize(rng, 1.0);
    for (int64_t i = 0; i < t.n; ++i)
      t.targets.push_back(static_cast<int64_t>(rng() % 11));
    const Problem pr = t.problem();
    const InputsF64 in = load_inputs(pr);
    const ForwardF64 dist = forward_f64(pr, in);

    TestProblem dot = t; // structure only; the inputs are given in double below
    dot.similarity = FNCE_SIM_DOT;
    dot.d = t.d + 1;
    dot.a.assign(static_cast<size_t>(dot.n * dot.d), 0.0f);
    dot.b.assign(static_cast<size_t>(dot.m * dot.d), 0.0f);
    InputsF64 aug;
    aug.scale = in.scale;
    for (int64_t i = 0; i < t.n; ++i) {
      for (int64_t k = 0; k < t.d; ++k)
        aug.a.push_back(2.0 * t.av(i, k));
      aug.a.push_back(-1.0);
    }
    for (int64_t j = 0; j < t.m; ++j) {
      double sq = 0;
      for (int64_t k = 0; k < t.d; ++k) {
        aug.b.push_back(t.bv(j, k));
        sq += t.bv(j, k) * t.bv(j, k);
      }
      aug.b.push_back(sq);
    }
    const ForwardF64 biased = forward_f64(dot.problem(), aug);
    EXPECT_EQ(compare("loss", dist.loss, biased.loss, 1e-12, 1e-12), "");

    // And against the formula: t_ij = scale(2a_i·b_j − ‖b_j‖²), ℓ_i = LSE_Z t_i· [− log|Z|] − t_ip.
    for (int64_t i = 0; i < t.n; ++i) {
      std::vector<double> logits;
      for (int64_t j = 0; j < t.m; ++j) {
        double ab = 0, bb = 0;
        for (int64_t k = 0; k < t.d; ++k) {
          ab += t.av(i, k) * t.bv(j, k);
          bb += t.bv(j, k) * t.bv(j, k);
        }
        logits.push_back(in.scale * (2 * ab - bb));
      }
      const int64_t p = t.targets[i];
      double mx = -INFINITY;
      for (int64_t j = 0; j < t.m; ++j)
        if (norm == FNCE_NORMALIZER_ALL || j != p)
          mx = std::max(mx, logits[j]);
      double sum = 0;
      for (int64_t j = 0; j < t.m; ++j)
        if (norm == FNCE_NORMALIZER_ALL || j != p)
          sum += std::exp(logits[j] - mx);
      double expected = mx + std::log(sum) - logits[p];
      if (norm == FNCE_NORMALIZER_NEGATIVES)
        expected -= std::log(static_cast<double>(t.m - 1));
      EXPECT_NEAR(dist.loss[i], expected, 1e-11 * (1 + std::fabs(expected))) << "row " << i;
    }
  }
}

} // namespace
