// grad_a, grad_b and grad_logit_scale of the reference against central finite differences of the
// reference's own loss, for every allowed combination (f32 inputs).  Both sides run in double
// (reference::forward_f64 / backward_f64), so that rounding the loss to float does not swamp the
// difference.  The scalar differentiated is Σ_t c_t·loss_t with c = grad_loss (random for NONE).
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "combinations.h"
#include "reference_test_util.h"

namespace {

using namespace flashnce_test;
using flashnce::reference::InputsF64;

double objective(const Problem& pr, const InputsF64& in, const std::vector<double>& c) {
  const auto f = flashnce::reference::forward_f64(pr, in);
  double acc = 0.0;
  for (size_t t = 0; t < c.size(); ++t)
    acc += c[t] * f.loss[t];
  return acc;
}

class FiniteDifference : public ::testing::TestWithParam<Combination> {};

TEST_P(FiniteDifference, GradientsMatch) {
  const Combination c = GetParam();
  const Structure st = std::get<1>(c);
  const uint64_t seed = std::hash<std::string>{}(combination_name({c, 0}));
  struct Shape {
    int64_t n, m, d;
  };
  const bool diagonal = st == Structure::kDiagonal || st == Structure::kDiagonalExcl;
  const Shape shapes[2] = {
      st == Structure::kSelfViewPairs ? Shape{6, 6, 3}
      : is_self(st)                   ? Shape{5, 5, 3}
      : diagonal                      ? Shape{4, 5, 3}
                                      : Shape{5, 3, 3},
      st == Structure::kSelfViewPairs ? Shape{4, 4, 1}
      : is_self(st)                   ? Shape{3, 3, 1}
      : diagonal                      ? Shape{2, 3, 1}
                                      : Shape{3, 2, 1},
  };
  for (int s = 0; s < 2; ++s) {
    SCOPED_TRACE("n=" + std::to_string(shapes[s].n) + " m=" + std::to_string(shapes[s].m) +
                 " d=" + std::to_string(shapes[s].d));
    TestProblem t = random_problem(c, shapes[s].n, shapes[s].m, shapes[s].d, seed + s);
    const std::vector<float> gl = random_grad_loss(t, seed + 7 + s);
    const std::vector<double> cw(gl.begin(), gl.end());
    const Problem pr = t.problem();
    const InputsF64 in = flashnce::reference::load_inputs(pr);
    const auto back = flashnce::reference::backward_f64(pr, in, cw.data());

    // d(objective)/d(x) where x is one double inside a copy of the inputs.
    const double h = 1e-5;
    auto fd = [&](const std::function<double&(InputsF64&)>& coordinate) {
      InputsF64 plus = in, minus = in;
      coordinate(plus) += h;
      coordinate(minus) -= h;
      return (objective(pr, plus, cw) - objective(pr, minus, cw)) / (2 * h);
    };
    std::vector<double> fd_a, fd_b;
    for (size_t k = 0; k < in.a.size(); ++k)
      fd_a.push_back(fd([k](InputsF64& x) -> double& { return x.a[k]; }));
    for (size_t k = 0; k < in.b.size(); ++k)
      fd_b.push_back(fd([k](InputsF64& x) -> double& { return x.b[k]; }));
    const double fd_scale = fd([](InputsF64& x) -> double& { return x.scale; });

    // Truncation error O(h²·f''') and rounding O(1e-16·|f|/h) stay below 1e-8 on these problems
    // (measured: every case passes at a tenth of this bound); a wrong term would be O(|gradient|).
    const double atol = 1e-7 * (1.0 + max_abs(back.grad_a) + max_abs(back.grad_b));
    EXPECT_EQ(compare("grad_a", back.grad_a, fd_a, atol, 1e-6), "");
    EXPECT_EQ(compare("grad_b", back.grad_b, fd_b, atol, 1e-6), "");
    EXPECT_NEAR(back.grad_logit_scale, fd_scale, 1e-6 * (1.0 + std::fabs(fd_scale)));
    // The gradient is not trivially zero (the comparison would then prove little), except where
    // the math makes it so: no valid row or column (e.g. DIAGONAL with exclude_self), where it
    // must be exactly zero, lines whose loss is constant, or COSINE with d = 1 (a constant
    // similarity).
    if (!any_valid_line(t)) {
      EXPECT_EQ(max_abs(back.grad_a) + max_abs(back.grad_b), 0.0);
      EXPECT_EQ(back.grad_logit_scale, 0.0);
    } else if (any_valid_line(t, /*nonconstant=*/true) &&
               !(std::get<0>(c) == FNCE_SIM_COSINE && t.d == 1)) {
      EXPECT_GT(max_abs(fd_a), 1e-4);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllCombinations, FiniteDifference,
                         ::testing::Combine(all_similarities(), all_structures(), all_normalizers(),
                                            all_directions(), all_reductions(),
                                            ::testing::Values(FNCE_F32)),
                         combination_name);

} // namespace
