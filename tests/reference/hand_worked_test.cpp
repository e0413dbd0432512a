// Small problems whose loss and gradients are worked out by hand; the arithmetic is in the
// comments, the expected values are the closed forms (never values printed by the reference).
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "reference_test_util.h"

namespace {

using namespace flashnce_test;

double sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}

constexpr double kAtol = 1e-7, kRtol = 1e-6; // float outputs of a double computation

// n = m = 2, d = 1, DOT, scale 1, a = [1, 2], b = [1, -1]: logits s = [[1, -1], [2, -2]].
TestProblem two_by_two() {
  TestProblem t;
  t.n = 2;
  t.m = 2;
  t.d = 1;
  t.a = {1.0f, 2.0f};
  t.b = {1.0f, -1.0f};
  t.scale = 1.0f;
  return t;
}

TEST(HandWorked, InfoNceDiagonalMean) {
  TestProblem t = two_by_two();
  // Row 0: LSE = log(e^1 + e^-1) = 1 + log(1 + e^-2); positive s00 = 1 -> l0 = log(1 + e^-2).
  // Row 1: LSE = log(e^2 + e^-2) = 2 + log(1 + e^-4); positive s11 = -2 -> l1 = 4 + log(1+e^-4).
  const double l0 = std::log1p(std::exp(-2.0));
  const double l1 = 4.0 + std::log1p(std::exp(-4.0));
  // MEAN over both (valid) rows.
  // G = (softmax - onehot)/2: softmax row 0 = (sigma(2), sigma(-2)), row 1 = (sigma(4), sigma(-4)).
  // grad_a0 = G00*b0 + G01*b1 = ((sigma(2)-1) - sigma(-2))/2 = -sigma(-2)
  // grad_a1 = G10*b0 + G11*b1 = (sigma(4) - (sigma(-4)-1))/2 = sigma(4)
  // grad_b0 = G00*a0 + G10*a1 = (sigma(2)-1)/2 + sigma(4);  grad_b1 = -grad_b0 (rows sum to 0)
  // grad_scale = sum G_ij*a_i*b_j = a0*grad_a0 + a1*grad_a1 = -sigma(-2) + 2*sigma(4)
  const Outputs o = run_reference(t, {1.0f});
  EXPECT_EQ(compare("loss", o.loss, std::vector<double>{0.5 * (l0 + l1)}, kAtol, kRtol), "");
  EXPECT_EQ(compare("row_lse", o.row_lse,
                    std::vector<double>{1.0 + std::log1p(std::exp(-2.0)),
                                        2.0 + std::log1p(std::exp(-4.0))},
                    kAtol, kRtol),
            "");
  EXPECT_EQ(
      compare("grad_a", o.grad_a, std::vector<double>{-sigmoid(-2.0), sigmoid(4.0)}, kAtol, kRtol),
      "");
  const double gb0 = 0.5 * (sigmoid(2.0) - 1.0) + sigmoid(4.0);
  EXPECT_EQ(compare("grad_b", o.grad_b, std::vector<double>{gb0, -gb0}, kAtol, kRtol), "");
  EXPECT_NEAR(o.grad_logit_scale, -sigmoid(-2.0) + 2.0 * sigmoid(4.0), 1e-6);
}

TEST(HandWorked, ClipSymmetricNoneAndMean) {
  TestProblem t = two_by_two();
  t.direction = FNCE_DIRECTION_SYMMETRIC;
  t.reduction = FNCE_REDUCTION_NONE;
  // Rows as above.  Columns of the same logits:
  // col 0: (s00, s10) = (1, 2), positive i = 0: LSE = log(e + e^2), lc0 = log(e + e^2) - 1
  //        = log(1 + e).
  // col 1: (s01, s11) = (-1, -2), positive i = 1: LSE = log(e^-1 + e^-2),
  //        lc1 = log(e^-1 + e^-2) + 2 = 1 + log(1 + e^-1) = log(1 + e).
  const double l0 = std::log1p(std::exp(-2.0));
  const double l1 = 4.0 + std::log1p(std::exp(-4.0));
  const double lc = std::log1p(std::exp(1.0));
  Outputs o = run_reference(t, {1.0f, 0.0f, 0.0f, 0.0f});
  EXPECT_EQ(compare("loss", o.loss, std::vector<double>{l0, l1, lc, lc}, kAtol, kRtol), "");
  EXPECT_EQ(compare("col_lse", o.col_lse,
                    std::vector<double>{std::log(std::exp(1.0) + std::exp(2.0)),
                                        std::log(std::exp(-1.0) + std::exp(-2.0))},
                    kAtol, kRtol),
            "");
  // grad_loss = (1, 0, 0, 0) selects dl0/ds: row 0 = (sigma(2) - 1, sigma(-2)), row 1 = 0.
  // grad_a0 = (sigma(2)-1)*1 + sigma(-2)*(-1) = -2*sigma(-2); grad_a1 = 0.
  // grad_b0 = (sigma(2)-1)*a0 = -sigma(-2); grad_b1 = sigma(-2)*a0 = sigma(-2).
  EXPECT_EQ(
      compare("grad_a", o.grad_a, std::vector<double>{-2.0 * sigmoid(-2.0), 0.0}, kAtol, kRtol),
      "");
  EXPECT_EQ(
      compare("grad_b", o.grad_b, std::vector<double>{-sigmoid(-2.0), sigmoid(-2.0)}, kAtol, kRtol),
      "");
  t.reduction = FNCE_REDUCTION_MEAN; // 1/2 (mean of rows + mean of columns)
  o = run_reference(t, {1.0f});
  EXPECT_EQ(
      compare("loss", o.loss, std::vector<double>{0.5 * (0.5 * (l0 + l1) + lc)}, kAtol, kRtol), "");
}

// n = m = 3, d = 1, DOT, scale 1, LABELS, NEGATIVES, SUM.
// a = [1, 1, 2], b = [1, 0, -1]; labels_a = [0, 1, 0], labels_b = [0, 0, 1].
// Logits s_ij = a_i*b_j: row0 = (1, 0, -1), row1 = (1, 0, -1), row2 = (2, 0, -2).
TEST(HandWorked, VaePriorLabelsNegativesSum) {
  TestProblem t;
  t.n = 3;
  t.m = 3;
  t.d = 1;
  t.a = {1.0f, 1.0f, 2.0f};
  t.b = {1.0f, 0.0f, -1.0f};
  t.positives = FNCE_POSITIVES_LABELS;
  t.labels_a = {0, 1, 0};
  t.labels_b = {0, 0, 1};
  t.normalizer = FNCE_NORMALIZER_NEGATIVES;
  t.reduction = FNCE_REDUCTION_SUM;
  // Row 0: P = {0, 1}, Z = {2}: l0 = s02 - log 1 - (s00 + s01)/2 = -1 - 1/2 = -1.5
  // Row 1: P = {2}, Z = {0, 1}: l1 = log(e + 1) - log 2 - (-1) = log((e + 1)/2) + 1
  // Row 2: P = {0, 1}, Z = {2}: l2 = -2 - log 1 - (2 + 0)/2 = -3
  const double e = std::exp(1.0);
  const double loss = -1.5 + (std::log((e + 1.0) / 2.0) + 1.0) - 3.0;
  // dl/ds: row0 = (-1/2, -1/2, 1), row1 = (sigma(1), sigma(-1), -1), row2 = (-1/2, -1/2, 1).
  // grad_a_i = sum_j G_ij b_j: a0 = -1/2 - 1 = -1.5; a1 = sigma(1) + 1; a2 = -1.5.
  // grad_b_j = sum_i G_ij a_i: b0 = -1/2 + sigma(1) - 1 = sigma(1) - 1.5;
  //   b1 = -1/2 + sigma(-1) - 1 = sigma(-1) - 1.5;  b2 = 1 - 1 + 2 = 2.
  // grad_scale = sum G_ij s_ij = (-1/2 + 0 - 1) + (sigma(1) + 0 + 1) + (-1 + 0 - 2) = sigma(1)
  // - 3.5 row_lse: row0 = s02 = -1 (Z has one element), row1 = log(e + 1), row2 = -2.
  const Outputs o = run_reference(t, {1.0f});
  EXPECT_EQ(compare("loss", o.loss, std::vector<double>{loss}, kAtol, kRtol), "");
  EXPECT_EQ(compare("row_lse", o.row_lse, std::vector<double>{-1.0, std::log(e + 1.0), -2.0}, kAtol,
                    kRtol),
            "");
  EXPECT_EQ(compare("grad_a", o.grad_a, std::vector<double>{-1.5, sigmoid(1.0) + 1.0, -1.5}, kAtol,
                    kRtol),
            "");
  EXPECT_EQ(compare("grad_b", o.grad_b,
                    std::vector<double>{sigmoid(1.0) - 1.5, sigmoid(-1.0) - 1.5, 2.0}, kAtol,
                    kRtol),
            "");
  EXPECT_NEAR(o.grad_logit_scale, sigmoid(1.0) - 3.5, 1e-6);
}

// Self mode, VIEW_PAIRS (pairs 0<->2, 1<->3), COSINE, scale 2, n = 4, d = 2.
// a0 = (1, 0), a1 = (0, 1), a2 = (2, 0), a3 = (0, -1): cos(0,2) = 1, cos(1,3) = -1, others 0.
TEST(HandWorked, NtXentViewPairsCosine) {
  TestProblem t;
  t.self_mode = true;
  t.n = 4;
  t.d = 2;
  t.a = {1.0f, 0.0f, 0.0f, 1.0f, 2.0f, 0.0f, 0.0f, -1.0f};
  t.scale = 2.0f;
  t.similarity = FNCE_SIM_COSINE;
  t.positives = FNCE_POSITIVES_VIEW_PAIRS;
  t.reduction = FNCE_REDUCTION_NONE;
  // Row 0: Z = {1, 2, 3}, logits (0, 2, 0), positive j = 2: l0 = log(2 + e^2) - 2.
  // Row 1: Z = {0, 2, 3}, logits (0, 0, -2), positive j = 3: l1 = log(2 + e^-2) + 2.
  // Row 2: Z = {0, 1, 3}, logits (2, 0, 0), positive j = 0: l2 = l0.
  // Row 3: Z = {0, 1, 2}, logits (0, -2, 0), positive j = 1: l3 = l1.
  const double l0 = std::log(2.0 + std::exp(2.0)) - 2.0;
  const double l1 = std::log(2.0 + std::exp(-2.0)) + 2.0;
  Outputs o = run_reference(t, {1.0f, 1.0f, 1.0f, 1.0f});
  EXPECT_EQ(compare("loss", o.loss, std::vector<double>{l0, l1, l0, l1}, kAtol, kRtol), "");
  // grad_scale = sum_ij G_ij cos_ij with G = softmax - onehot (weights 1):
  //   row 0: only cos02 = 1 is non-zero: e^2/(2 + e^2) - 1 = -2/(2 + e^2); row 2 the same;
  //   row 1: only cos13 = -1: -(e^-2/(2 + e^-2) - 1) = 2/(2 + e^-2); row 3 the same.
  const double gs = 2.0 * (2.0 / (2.0 + std::exp(-2.0)) - 2.0 / (2.0 + std::exp(2.0)));
  EXPECT_NEAR(o.grad_logit_scale, gs, 1e-6 * std::fabs(gs));
  t.reduction = FNCE_REDUCTION_MEAN;
  o = run_reference(t, {1.0f});
  EXPECT_EQ(compare("loss", o.loss, std::vector<double>{0.5 * (l0 + l1)}, kAtol, kRtol), "");
  EXPECT_EQ(o.grad_b.size(), 0u); // self mode: everything lands in grad_a
}

// NEG_SQ_DIST, n = 2, m = 3, d = 1, scale 1/2, TARGETS = [2, -1] (row 1 ignored).
// a = [0, 1], b = [0, 1, 3].
TEST(HandWorked, GaussianTargetsWithIgnoredRow) {
  TestProblem t;
  t.n = 2;
  t.m = 3;
  t.d = 1;
  t.a = {0.0f, 1.0f};
  t.b = {0.0f, 1.0f, 3.0f};
  t.scale = 0.5f;
  t.similarity = FNCE_SIM_NEG_SQ_DIST;
  t.positives = FNCE_POSITIVES_TARGETS;
  t.targets = {2, -1};
  // Row 0: sim = -(0-b_j)^2 = (0, -1, -9), logits (0, -0.5, -4.5); positive j = 2:
  //   l0 = log(1 + e^-0.5 + e^-4.5) + 4.5.   Row 1 is invalid: loss 0, not counted by MEAN.
  // Row 1's LSE is still reported: sims (-1, 0, -4), logits (-0.5, 0, -2).
  const double z0 = 1.0 + std::exp(-0.5) + std::exp(-4.5);
  const double l0 = std::log(z0) + 4.5;
  // dl0/ds_0j = p_j - [j = 2] with p = (1, e^-0.5, e^-4.5)/z0.
  // ds/da0 = scale * (-2)(a0 - b_j) = b_j (a0 = 0, scale 1/2)  ->  grad_a0 = p1*1 + (p2 - 1)*3.
  // ds/db_j = scale * 2(a0 - b_j) = -b_j  ->  grad_b = (0, -p1, -3(p2 - 1)).
  // grad_scale = sum_j G_0j sim_0j = p1*(-1) + (p2 - 1)*(-9).
  const double p1 = std::exp(-0.5) / z0, p2 = std::exp(-4.5) / z0;
  const Outputs o = run_reference(t, {1.0f});
  EXPECT_EQ(compare("loss", o.loss, std::vector<double>{l0}, kAtol, kRtol), "");
  EXPECT_EQ(
      compare("row_lse", o.row_lse,
              std::vector<double>{std::log(z0), std::log(std::exp(-0.5) + 1.0 + std::exp(-2.0))},
              kAtol, kRtol),
      "");
  EXPECT_EQ(
      compare("grad_a", o.grad_a, std::vector<double>{p1 + (p2 - 1.0) * 3.0, 0.0}, kAtol, kRtol),
      "");
  EXPECT_EQ(
      compare("grad_b", o.grad_b, std::vector<double>{0.0, -p1, -3.0 * (p2 - 1.0)}, kAtol, kRtol),
      "");
  EXPECT_NEAR(o.grad_logit_scale, -p1 - 9.0 * (p2 - 1.0), 1e-6);
}

} // namespace
