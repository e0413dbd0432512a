// Every combination of the loss options the contract allows, as gtest parameters, and the random
// problems each combination is tested on.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "reference_test_util.h"

namespace flashnce_test {

// The positive structure and the mode it runs in.  VIEW_PAIRS exists only in self mode (which
// forces exclude_self); DIAGONAL only in cross mode (self mode would leave no positive).
enum class Structure {
  kDiagonal,
  kDiagonalExcl,
  kTargets,
  kTargetsExcl,
  kLabels,
  kLabelsExcl,
  kSelfViewPairs,
  kSelfLabels,
  kSelfTargets,
};

inline const char* structure_name(Structure s) {
  switch (s) {
  case Structure::kDiagonal:
    return "Diagonal";
  case Structure::kDiagonalExcl:
    return "DiagonalExcl";
  case Structure::kTargets:
    return "Targets";
  case Structure::kTargetsExcl:
    return "TargetsExcl";
  case Structure::kLabels:
    return "Labels";
  case Structure::kLabelsExcl:
    return "LabelsExcl";
  case Structure::kSelfViewPairs:
    return "SelfViewPairs";
  case Structure::kSelfLabels:
    return "SelfLabels";
  case Structure::kSelfTargets:
    return "SelfTargets";
  }
  return "?";
}

inline bool is_self(Structure s) {
  return s == Structure::kSelfViewPairs || s == Structure::kSelfLabels ||
         s == Structure::kSelfTargets;
}

using Combination = std::tuple<fnceSimilarity_t, Structure, fnceNormalizer_t, fnceDirection_t,
                               fnceReduction_t, fnceDataType_t>;

inline auto all_similarities() {
  return ::testing::Values(FNCE_SIM_DOT, FNCE_SIM_COSINE, FNCE_SIM_NEG_SQ_DIST);
}
inline auto all_structures() {
  return ::testing::Values(Structure::kDiagonal, Structure::kDiagonalExcl, Structure::kTargets,
                           Structure::kTargetsExcl, Structure::kLabels, Structure::kLabelsExcl,
                           Structure::kSelfViewPairs, Structure::kSelfLabels,
                           Structure::kSelfTargets);
}
inline auto all_normalizers() {
  return ::testing::Values(FNCE_NORMALIZER_ALL, FNCE_NORMALIZER_NEGATIVES);
}
inline auto all_directions() {
  return ::testing::Values(FNCE_DIRECTION_ROWS, FNCE_DIRECTION_SYMMETRIC);
}
inline auto all_reductions() {
  return ::testing::Values(FNCE_REDUCTION_MEAN, FNCE_REDUCTION_SUM, FNCE_REDUCTION_NONE);
}

inline std::string options_name(const Combination& c) {
  static const char* sims[] = {"Dot", "Cosine", "NegSqDist"};
  static const char* norms[] = {"All", "Negatives"};
  static const char* dirs[] = {"Rows", "Symmetric"};
  static const char* reds[] = {"Mean", "Sum", "None"};
  const auto& [sim, st, norm, dir, red, dt] = c;
  (void)dt;
  return std::string(sims[sim]) + "_" + structure_name(st) + "_" + norms[norm] + "_" + dirs[dir] +
         "_" + reds[red];
}

inline std::string combination_name(const ::testing::TestParamInfo<Combination>& info) {
  static const char* types[] = {"F32", "F16", "BF16"};
  return options_name(info.param) + "_" + types[std::get<5>(info.param)];
}

// For suites whose cases loop over the dtypes themselves (the parameter's dtype is ignored).
inline std::string options_only_name(const ::testing::TestParamInfo<Combination>& info) {
  return options_name(info.param);
}

// A random problem of one combination and shape.  Inputs ~ N(0, 1/d) (so that a·b = O(1)), a
// typical logit scale per similarity, some rows without positives (TARGETS -1, labels that b
// lacks), and a padded row stride on every other shape.
inline TestProblem random_problem(const Combination& c, int64_t n, int64_t m, int64_t d,
                                  uint64_t seed) {
  const auto& [sim, st, norm, dir, red, dt] = c;
  std::mt19937_64 rng(seed);
  TestProblem t;
  t.dtype = dt;
  t.similarity = sim;
  t.normalizer = norm;
  t.direction = dir;
  t.reduction = red;
  t.self_mode = is_self(st);
  t.n = n;
  t.m = t.self_mode ? n : m;
  t.d = d;
  if (seed % 2 == 1) {
    t.lda = d + 3;
    t.ldb = t.self_mode ? 0 : d + 1;
  }
  t.scale = sim == FNCE_SIM_COSINE ? 7.5f : sim == FNCE_SIM_DOT ? 2.0f : 0.75f;
  const int64_t m_eff = t.m;
  switch (st) {
  case Structure::kDiagonal:
  case Structure::kDiagonalExcl:
    t.positives = FNCE_POSITIVES_DIAGONAL;
    break;
  case Structure::kTargets:
  case Structure::kTargetsExcl:
  case Structure::kSelfTargets: {
    t.positives = FNCE_POSITIVES_TARGETS;
    std::uniform_int_distribution<int64_t> target(-1, m_eff - 1); // -1: row ignored
    for (int64_t i = 0; i < n; ++i)
      t.targets.push_back(target(rng));
    break;
  }
  case Structure::kLabels:
  case Structure::kLabelsExcl:
  case Structure::kSelfLabels: {
    t.positives = FNCE_POSITIVES_LABELS;
    // a's labels in 0..4, b's in 0..3: rows labelled 4 have no positive (cross mode).
    std::uniform_int_distribution<int64_t> la(0, 4), lb(0, 3);
    for (int64_t i = 0; i < n; ++i)
      t.labels_a.push_back(la(rng));
    if (!t.self_mode)
      for (int64_t j = 0; j < m_eff; ++j)
        t.labels_b.push_back(lb(rng));
    break;
  }
  case Structure::kSelfViewPairs:
    t.positives = FNCE_POSITIVES_VIEW_PAIRS;
    break;
  }
  t.exclude_self = (st == Structure::kDiagonalExcl || st == Structure::kTargetsExcl ||
                    st == Structure::kLabelsExcl || t.self_mode)
                       ? 1
                       : 0;
  t.randomize(rng, 1.0 / std::sqrt(static_cast<double>(d)));
  return t;
}

// Whether some row (or column, SYMMETRIC) has a positive and a non-empty normaliser, counted
// directly from the problem's definition.  With `nonconstant`, only lines whose loss depends on
// the logits count: under NORMALIZER_ALL a line whose normaliser is its single positive has
// loss s_p − s_p = 0.
inline bool any_valid_line(const TestProblem& t, bool nonconstant = false) {
  const int64_t m = t.rows_b();
  auto positive = [&](int64_t i, int64_t j) {
    if ((t.exclude_self || t.self_mode) && i == j)
      return false;
    switch (t.positives) {
    case FNCE_POSITIVES_DIAGONAL:
      return i == j;
    case FNCE_POSITIVES_TARGETS:
      return t.targets[i] == j;
    case FNCE_POSITIVES_LABELS:
      return t.labels_a[i] == (t.self_mode ? t.labels_a[j] : t.labels_b[j]);
    case FNCE_POSITIVES_VIEW_PAIRS:
      return j == (i + t.n / 2) % t.n;
    }
    return false;
  };
  auto normalizer = [&](int64_t i, int64_t j) {
    if ((t.exclude_self || t.self_mode) && i == j)
      return false;
    return !(t.normalizer == FNCE_NORMALIZER_NEGATIVES && positive(i, j));
  };
  for (int64_t i = 0; i < t.n; ++i) {
    int64_t p = 0, z = 0;
    for (int64_t j = 0; j < m; ++j) {
      p += positive(i, j);
      z += normalizer(i, j);
    }
    if (p > 0 && z > 0 && (!nonconstant || z > 1 || t.normalizer == FNCE_NORMALIZER_NEGATIVES))
      return true;
  }
  for (int64_t j = 0; t.direction == FNCE_DIRECTION_SYMMETRIC && j < m; ++j) {
    int64_t p = 0, z = 0;
    for (int64_t i = 0; i < t.n; ++i) {
      p += positive(i, j);
      z += normalizer(i, j);
    }
    if (p > 0 && z > 0 && (!nonconstant || z > 1 || t.normalizer == FNCE_NORMALIZER_NEGATIVES))
      return true;
  }
  return false;
}

// Random upstream gradient (as many values as the loss has).
inline std::vector<float> random_grad_loss(const TestProblem& t, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> g(static_cast<size_t>(t.loss_count()));
  for (auto& x : g)
    x = u(rng);
  if (t.reduction != FNCE_REDUCTION_NONE)
    g[0] = 0.75f;
  return g;
}

} // namespace flashnce_test
