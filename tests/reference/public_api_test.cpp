// The reference through the public C API (backend = FNCE_BACKEND_CPU): the same values as the
// backend entry points called with a hand-built Problem, which checks that the test helper
// normalises the parameters the way the API's validation does.
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "combinations.h"
#include "reference_test_util.h"

namespace {

using namespace flashnce_test;

struct ApiOutputs {
  std::vector<float> loss, row_lse, col_lse, grad_a, grad_b;
  float grad_logit_scale = 0.0f;
};

std::vector<float> decode(const std::vector<unsigned char>& raw, fnceDataType_t dt) {
  std::vector<float> out(raw.size() / flashnce::dtype_size(dt));
  for (size_t k = 0; k < out.size(); ++k)
    out[k] = flashnce::load_element(raw.data(), static_cast<int64_t>(k), dt);
  return out;
}

ApiOutputs run_public_api(TestProblem& t, const std::vector<float>& grad_loss) {
  const fnceLossParams p = t.params();
  ApiOutputs o;
  size_t ws = 123;
  EXPECT_EQ(fnceForwardWorkspaceSize(&p, &ws), FNCE_SUCCESS) << fnceGetLastErrorMessage();
  EXPECT_EQ(ws, 0u); // the CPU backend needs no workspace
  const int64_t m = t.rows_b();
  o.loss.assign(static_cast<size_t>(t.loss_count()), -1.0f);
  o.row_lse.assign(static_cast<size_t>(t.n), -1.0f);
  o.col_lse.assign(static_cast<size_t>(m), -1.0f);
  const bool sym = t.direction == FNCE_DIRECTION_SYMMETRIC;
  EXPECT_EQ(fnceForward(&p, o.loss.data(), o.row_lse.data(), sym ? o.col_lse.data() : nullptr,
                        nullptr, 0, nullptr),
            FNCE_SUCCESS)
      << fnceGetLastErrorMessage();
  EXPECT_EQ(fnceBackwardWorkspaceSize(&p, &ws), FNCE_SUCCESS) << fnceGetLastErrorMessage();
  EXPECT_EQ(ws, 0u);
  const size_t es = flashnce::dtype_size(t.dtype);
  std::vector<unsigned char> ga(static_cast<size_t>(t.n * t.d) * es),
      gb(static_cast<size_t>(m * t.d) * es);
  EXPECT_EQ(fnceBackward(&p, o.row_lse.data(), sym ? o.col_lse.data() : nullptr, grad_loss.data(),
                         ga.data(), t.self_mode ? nullptr : gb.data(), &o.grad_logit_scale, nullptr,
                         0, nullptr),
            FNCE_SUCCESS)
      << fnceGetLastErrorMessage();
  o.grad_a = decode(ga, t.dtype);
  if (!t.self_mode)
    o.grad_b = decode(gb, t.dtype);
  if (!sym)
    o.col_lse.clear();
  return o;
}

// A spread of combinations: every structure (incl. self mode), all similarities, normalisers,
// directions, reductions and dtypes appear, with padded strides on odd seeds.
TEST(PublicApi, CpuBackendMatchesReferenceEntryPoints) {
  const Structure structures[] = {
      Structure::kDiagonal,      Structure::kDiagonalExcl, Structure::kTargets,
      Structure::kTargetsExcl,   Structure::kLabels,       Structure::kLabelsExcl,
      Structure::kSelfViewPairs, Structure::kSelfLabels,   Structure::kSelfTargets};
  int cases = 0;
  for (int s = 0; s < 9; ++s)
    for (int k = 0; k < 4; ++k) {
      const Combination c{
          static_cast<fnceSimilarity_t>((s + k) % 3), structures[s],
          static_cast<fnceNormalizer_t>(k % 2),       static_cast<fnceDirection_t>((s + k / 2) % 2),
          static_cast<fnceReduction_t>((s + k) % 3),  static_cast<fnceDataType_t>((s * 4 + k) % 3)};
      SCOPED_TRACE(combination_name({c, 0}));
      const bool diagonal = s < 2, self = is_self(structures[s]); // self: n even (VIEW_PAIRS)
      TestProblem t = random_problem(c,
                                     self       ? 6
                                     : diagonal ? 5
                                                : 9,
                                     self       ? 6
                                     : diagonal ? 9
                                                : 5,
                                     7, 1000 + s * 4 + k);
      const std::vector<float> gl = random_grad_loss(t, 77 + k);
      const ApiOutputs api = run_public_api(t, gl);
      const Outputs ref = run_reference(t, gl);
      // Same code on the same inputs: bitwise equal.
      EXPECT_EQ(compare("loss", api.loss, ref.loss, 0, 0), "");
      EXPECT_EQ(compare("row_lse", api.row_lse, ref.row_lse, 0, 0), "");
      EXPECT_EQ(compare("col_lse", api.col_lse, ref.col_lse, 0, 0), "");
      EXPECT_EQ(compare("grad_a", api.grad_a, ref.grad_a, 0, 0), "");
      EXPECT_EQ(compare("grad_b", api.grad_b, ref.grad_b, 0, 0), "");
      EXPECT_EQ(api.grad_logit_scale, static_cast<float>(ref.grad_logit_scale));
      ++cases;
    }
  EXPECT_EQ(cases, 36);
}

// Self mode (b = NULL) is the cross problem with b = a and exclude_self = 1, except that both
// gradients land in grad_a.
TEST(PublicApi, SelfModeIsCrossModeWithBEqualA) {
  std::mt19937_64 rng(21);
  TestProblem self;
  self.self_mode = true;
  self.n = 6;
  self.d = 5;
  self.similarity = FNCE_SIM_COSINE;
  self.positives = FNCE_POSITIVES_LABELS;
  self.labels_a = {0, 1, 2, 0, 1, 2};
  self.direction = FNCE_DIRECTION_SYMMETRIC;
  self.scale = 5.0f;
  self.randomize(rng, 1.0);
  TestProblem cross = self;
  cross.self_mode = false;
  cross.m = self.n;
  cross.b = self.a;
  cross.labels_b = self.labels_a;
  cross.exclude_self = 1;
  const ApiOutputs x = run_public_api(self, {1.0f});
  const ApiOutputs y = run_public_api(cross, {1.0f});
  EXPECT_EQ(compare("loss", x.loss, y.loss, 0, 0), "");
  EXPECT_EQ(compare("row_lse", x.row_lse, y.row_lse, 0, 0), "");
  std::vector<double> sum(y.grad_a.size());
  for (size_t k = 0; k < sum.size(); ++k)
    sum[k] = static_cast<double>(y.grad_a[k]) + static_cast<double>(y.grad_b[k]);
  EXPECT_EQ(compare("grad_a", x.grad_a, sum, 1e-6, 1e-5), "");
  EXPECT_EQ(x.grad_b.size(), 0u);
}

} // namespace
