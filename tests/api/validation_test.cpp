// Every validation rule of the public API hit once: the status, a message naming the argument AND
// the value, and no output written (outputs are poisoned with a byte pattern and compared after).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <ostream>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "flashnce/flashnce.h"
#include "host/validate.h" // validate_workspace is also tested directly

namespace {

constexpr int64_t kN = 4, kM = 4, kD = 3;
constexpr unsigned char kPoison = 0xA5;
constexpr int64_t kBig = std::numeric_limits<int64_t>::max();

// A valid CPU problem with every optional array present, and poisoned output buffers.
struct Fixture {
  std::vector<float> a = std::vector<float>(64, 0.25f), b = std::vector<float>(64, -0.5f);
  float scale = 2.0f;
  std::vector<int64_t> targets = {0, 1, 2, 3}, labels_a = {0, 1, 0, 1}, labels_b = {1, 0, 1, 0};
  std::vector<float> loss = std::vector<float>(16), row_lse = std::vector<float>(16),
                     col_lse = std::vector<float>(16), grad_a = std::vector<float>(64),
                     grad_b = std::vector<float>(64);
  float grad_scale = 0;
  std::vector<float> grad_loss = std::vector<float>(16, 1.0f);
  fnceLossParams p;

  Fixture() {
    EXPECT_EQ(fnceLossParamsInit(&p), FNCE_SUCCESS);
    p.backend = FNCE_BACKEND_CPU;
    p.n = kN;
    p.m = kM;
    p.d = kD;
    p.a = a.data();
    p.b = b.data();
    p.logit_scale = &scale;
    poison();
  }
  void poison() {
    for (auto* v : {&loss, &row_lse, &col_lse, &grad_a, &grad_b})
      std::memset(v->data(), kPoison, v->size() * sizeof(float));
    std::memset(&grad_scale, kPoison, sizeof grad_scale);
  }
  bool untouched() const {
    auto clean = [](const void* p, size_t bytes) {
      const auto* c = static_cast<const unsigned char*>(p);
      for (size_t i = 0; i < bytes; ++i)
        if (c[i] != kPoison)
          return false;
      return true;
    };
    for (const auto* v : {&loss, &row_lse, &col_lse, &grad_a, &grad_b})
      if (!clean(v->data(), v->size() * sizeof(float)))
        return false;
    return clean(&grad_scale, sizeof grad_scale);
  }
  fnceStatus_t forward(const fnceLossParams* q) {
    return fnceForward(q, loss.data(), row_lse.data(), col_lse.data(), nullptr, 0, nullptr);
  }
  fnceStatus_t backward(const fnceLossParams* q, const float* rl, const float* cl, const float* gl,
                        float* gb) {
    return fnceBackward(q, rl, cl, gl, grad_a.data(), gb, &grad_scale, nullptr, 0, nullptr);
  }
  fnceStatus_t backward(const fnceLossParams* q) {
    // row_lse/col_lse as inputs: any readable floats (the CPU reference recomputes them).
    static const std::vector<float> lse(16, 0.0f);
    return backward(q, lse.data(), lse.data(), grad_loss.data(), grad_b.data());
  }
};

std::string last_message() {
  return fnceGetLastErrorMessage();
}

void expect_message_has(const std::vector<std::string>& parts) {
  const std::string msg = last_message();
  for (const auto& part : parts)
    EXPECT_NE(msg.find(part), std::string::npos)
        << "message \"" << msg << "\" lacks \"" << part << "\"";
}

// A rule on fnceLossParams: checked by all four entry points that take params.
struct ParamsCase {
  const char* name;
  std::function<void(Fixture&)> mutate;
  fnceStatus_t status;
  std::vector<std::string> message_parts;
};

// Test names show the case's name, not its bytes (which hold pointers and change run to run).
void PrintTo(const ParamsCase& c, std::ostream* os) {
  *os << c.name;
}

class ParamsRule : public ::testing::TestWithParam<ParamsCase> {};

TEST_P(ParamsRule, EveryEntryPointRejectsWithMessageAndWritesNothing) {
  const ParamsCase& c = GetParam();
  Fixture f;
  c.mutate(f);
  EXPECT_EQ(f.forward(&f.p), c.status) << fnceGetLastErrorMessage();
  expect_message_has(c.message_parts);
  EXPECT_TRUE(f.untouched()) << "fnceForward wrote an output";
  EXPECT_EQ(f.backward(&f.p), c.status) << fnceGetLastErrorMessage();
  expect_message_has(c.message_parts);
  EXPECT_TRUE(f.untouched()) << "fnceBackward wrote an output";
  size_t bytes = 12345;
  EXPECT_EQ(fnceForwardWorkspaceSize(&f.p, &bytes), c.status);
  expect_message_has(c.message_parts);
  EXPECT_EQ(fnceBackwardWorkspaceSize(&f.p, &bytes), c.status);
  expect_message_has(c.message_parts);
  EXPECT_EQ(bytes, 12345u) << "a workspace size was written for invalid params";
}

#define ENUM_CASE(field, bad, label)                                                               \
  ParamsCase {                                                                                     \
    "bad_" #field, [](Fixture& f) { std::memcpy(&f.p.field, &bad, sizeof f.p.field); },            \
        FNCE_ERROR_INVALID_VALUE, {                                                                \
#field, "got " label                                                                         \
    }                                                                                              \
  }

constexpr int kBadEnum = 7;

const ParamsCase kParamsCases[] = {
    {"struct_size_zero",
     [](Fixture& f) { f.p.struct_size = 0; },
     FNCE_ERROR_INVALID_VALUE,
     {"struct_size", "got 0", "fnceLossParamsInit"}},
    {"struct_size_too_small",
     [](Fixture& f) { f.p.struct_size = 8; },
     FNCE_ERROR_INVALID_VALUE,
     {"struct_size", "got 8"}},
    ENUM_CASE(backend, kBadEnum, "7"),
    ENUM_CASE(dtype, kBadEnum, "7"),
    ENUM_CASE(similarity, kBadEnum, "7"),
    ENUM_CASE(positives, kBadEnum, "7"),
    ENUM_CASE(normalizer, kBadEnum, "7"),
    ENUM_CASE(direction, kBadEnum, "7"),
    ENUM_CASE(reduction, kBadEnum, "7"),
    {"n_zero", [](Fixture& f) { f.p.n = 0; }, FNCE_ERROR_INVALID_VALUE, {"n must be >= 1, got 0"}},
    {"n_negative",
     [](Fixture& f) { f.p.n = -5; },
     FNCE_ERROR_INVALID_VALUE,
     {"n must be >= 1, got -5"}},
    {"m_zero", [](Fixture& f) { f.p.m = 0; }, FNCE_ERROR_INVALID_VALUE, {"m must be >= 1, got 0"}},
    {"d_zero", [](Fixture& f) { f.p.d = 0; }, FNCE_ERROR_INVALID_VALUE, {"d must be >= 1, got 0"}},
    {"lda_below_d",
     [](Fixture& f) { f.p.lda = 2; },
     FNCE_ERROR_INVALID_VALUE,
     {"lda", "d (= 3)", "got 2"}},
    {"lda_negative", [](Fixture& f) { f.p.lda = -1; }, FNCE_ERROR_INVALID_VALUE, {"lda", "got -1"}},
    {"ldb_below_d", [](Fixture& f) { f.p.ldb = 1; }, FNCE_ERROR_INVALID_VALUE, {"ldb", "got 1"}},
    {"a_null",
     [](Fixture& f) { f.p.a = nullptr; },
     FNCE_ERROR_INVALID_VALUE,
     {"a must not be NULL", "got NULL"}},
    {"logit_scale_null",
     [](Fixture& f) { f.p.logit_scale = nullptr; },
     FNCE_ERROR_INVALID_VALUE,
     {"logit_scale", "got NULL"}},
    {"diagonal_needs_n_le_m",
     [](Fixture& f) { f.p.n = 5; },
     FNCE_ERROR_INVALID_VALUE,
     {"DIAGONAL", "n = 5", "m = 4"}},
    {"diagonal_in_self_mode",
     [](Fixture& f) { f.p.b = nullptr; },
     FNCE_ERROR_INVALID_VALUE,
     {"DIAGONAL", "self mode", "VIEW_PAIRS"}},
    {"targets_null",
     [](Fixture& f) { f.p.positives = FNCE_POSITIVES_TARGETS; },
     FNCE_ERROR_INVALID_VALUE,
     {"targets", "got NULL"}},
    {"labels_a_null",
     [](Fixture& f) {
       f.p.positives = FNCE_POSITIVES_LABELS;
       f.p.labels_b = f.labels_b.data();
     },
     FNCE_ERROR_INVALID_VALUE,
     {"labels_a", "got NULL"}},
    {"labels_b_null_with_b",
     [](Fixture& f) {
       f.p.positives = FNCE_POSITIVES_LABELS;
       f.p.labels_a = f.labels_a.data();
     },
     FNCE_ERROR_INVALID_VALUE,
     {"labels_b", "got NULL"}},
    {"view_pairs_needs_self_mode",
     [](Fixture& f) { f.p.positives = FNCE_POSITIVES_VIEW_PAIRS; },
     FNCE_ERROR_INVALID_VALUE,
     {"VIEW_PAIRS", "self mode", "got b = 0x"}},
    {"view_pairs_needs_even_n",
     [](Fixture& f) {
       f.p.positives = FNCE_POSITIVES_VIEW_PAIRS;
       f.p.b = nullptr;
       f.p.n = f.p.m = 3;
     },
     FNCE_ERROR_INVALID_VALUE,
     {"VIEW_PAIRS", "even n", "n = 3"}},
    {"self_mode_needs_m_eq_n",
     [](Fixture& f) {
       f.p.positives = FNCE_POSITIVES_VIEW_PAIRS;
       f.p.b = nullptr;
       f.p.m = 6;
     },
     FNCE_ERROR_INVALID_VALUE,
     {"m must equal n (= 4)", "got 6"}},
    {"n_plus_m_overflows",
     [](Fixture& f) {
       f.p.n = kBig / 2 + 1;
       f.p.m = kBig / 2 + 1;
     },
     FNCE_ERROR_INVALID_VALUE,
     {"n + m", "n = 4611686018427387904"}},
    {"n_times_d_overflows",
     [](Fixture& f) {
       f.p.n = f.p.m = int64_t{1} << 40;
       f.p.d = int64_t{1} << 30;
     },
     FNCE_ERROR_INVALID_VALUE,
     {"n * d", "n = 1099511627776", "d = 1073741824"}},
    {"lda_times_rows_overflows",
     [](Fixture& f) {
       f.p.n = f.p.m = int64_t{1} << 40;
       f.p.lda = int64_t{1} << 30;
     },
     FNCE_ERROR_INVALID_VALUE,
     {"n * lda", "lda = 1073741824"}},
    {"bytes_overflow",
     [](Fixture& f) {
       f.p.n = f.p.m = int64_t{1} << 61;
       f.p.d = 1;
     },
     FNCE_ERROR_INVALID_VALUE,
     {"n * lda * sizeof(dtype)", "n = 2305843009213693952"}},
};

INSTANTIATE_TEST_SUITE_P(Api, ParamsRule, ::testing::ValuesIn(kParamsCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Validation, NullParamsIsRejectedEverywhere) {
  Fixture f;
  size_t bytes = 7;
  EXPECT_EQ(f.forward(nullptr), FNCE_ERROR_INVALID_VALUE);
  expect_message_has({"params", "NULL"});
  EXPECT_EQ(f.backward(nullptr), FNCE_ERROR_INVALID_VALUE);
  EXPECT_EQ(fnceForwardWorkspaceSize(nullptr, &bytes), FNCE_ERROR_INVALID_VALUE);
  EXPECT_EQ(fnceBackwardWorkspaceSize(nullptr, &bytes), FNCE_ERROR_INVALID_VALUE);
  expect_message_has({"params", "NULL"});
  EXPECT_EQ(bytes, 7u);
  EXPECT_TRUE(f.untouched());
  EXPECT_EQ(fnceLossParamsInit(nullptr), FNCE_ERROR_INVALID_VALUE);
  expect_message_has({"p must not be NULL"});
}

TEST(Validation, LargerStructFromANewerHeaderIsAccepted) {
  Fixture f;
  f.p.struct_size = sizeof(fnceLossParams) + 64; // only the known prefix is read
  size_t bytes = 1;
  EXPECT_EQ(fnceForwardWorkspaceSize(&f.p, &bytes), FNCE_SUCCESS) << fnceGetLastErrorMessage();
  EXPECT_EQ(bytes, 0u); // the CPU reference needs no workspace
}

TEST(Validation, ZeroStridesMeanDenseAndLabelsBMayBeNullInSelfMode) {
  Fixture f;
  f.p.lda = f.p.ldb = 0;
  EXPECT_EQ(f.forward(&f.p), FNCE_SUCCESS) << fnceGetLastErrorMessage();
  Fixture g;
  g.p.b = nullptr;
  g.p.ldb = -3; // ignored in self mode: b is a
  g.p.positives = FNCE_POSITIVES_LABELS;
  g.p.labels_a = g.labels_a.data();
  EXPECT_EQ(g.forward(&g.p), FNCE_SUCCESS) << fnceGetLastErrorMessage();
  EXPECT_STREQ(fnceGetLastErrorMessage(), "");
}

TEST(Validation, ForwardNeedsLoss) {
  Fixture f;
  EXPECT_EQ(fnceForward(&f.p, nullptr, f.row_lse.data(), f.col_lse.data(), nullptr, 0, nullptr),
            FNCE_ERROR_INVALID_VALUE);
  expect_message_has({"loss must not be NULL", "got NULL"});
  EXPECT_TRUE(f.untouched());
}

TEST(Validation, ForwardWritesNoColLseForRows) {
  Fixture f; // ROWS: col_lse is not an output and stays poisoned
  ASSERT_EQ(f.forward(&f.p), FNCE_SUCCESS) << fnceGetLastErrorMessage();
  const std::vector<float> before = f.col_lse;
  f.poison();
  ASSERT_EQ(f.forward(&f.p), FNCE_SUCCESS);
  for (size_t i = 0; i < f.col_lse.size(); ++i) {
    uint32_t bits;
    std::memcpy(&bits, &f.col_lse[i], 4);
    EXPECT_EQ(bits, 0xA5A5A5A5u) << "col_lse[" << i << "] written for ROWS";
  }
  (void)before;
}

TEST(Validation, BackwardArguments) {
  static const std::vector<float> lse(16, 0.0f);
  {
    Fixture f;
    EXPECT_EQ(f.backward(&f.p, nullptr, lse.data(), f.grad_loss.data(), f.grad_b.data()),
              FNCE_ERROR_INVALID_VALUE);
    expect_message_has({"row_lse must not be NULL", "got NULL"});
    EXPECT_TRUE(f.untouched());
  }
  {
    Fixture f;
    f.p.direction = FNCE_DIRECTION_SYMMETRIC;
    EXPECT_EQ(f.backward(&f.p, lse.data(), nullptr, f.grad_loss.data(), f.grad_b.data()),
              FNCE_ERROR_INVALID_VALUE);
    expect_message_has({"col_lse must not be NULL", "SYMMETRIC", "got NULL"});
    EXPECT_TRUE(f.untouched());
  }
  {
    Fixture f; // ROWS: col_lse may be NULL
    EXPECT_EQ(f.backward(&f.p, lse.data(), nullptr, f.grad_loss.data(), f.grad_b.data()),
              FNCE_SUCCESS)
        << fnceGetLastErrorMessage();
  }
  {
    Fixture f;
    EXPECT_EQ(f.backward(&f.p, lse.data(), lse.data(), nullptr, f.grad_b.data()),
              FNCE_ERROR_INVALID_VALUE);
    expect_message_has({"grad_loss must not be NULL", "got NULL"});
    EXPECT_TRUE(f.untouched());
  }
  {
    Fixture f;
    f.p.b = nullptr;
    f.p.positives = FNCE_POSITIVES_VIEW_PAIRS;
    EXPECT_EQ(f.backward(&f.p, lse.data(), lse.data(), f.grad_loss.data(), f.grad_b.data()),
              FNCE_ERROR_INVALID_VALUE);
    expect_message_has({"grad_b must be NULL in self mode", "got 0x"});
    EXPECT_TRUE(f.untouched());
  }
}

TEST(Validation, WorkspaceSizeNeedsAnOutput) {
  Fixture f;
  EXPECT_EQ(fnceForwardWorkspaceSize(&f.p, nullptr), FNCE_ERROR_INVALID_VALUE);
  expect_message_has({"bytes must not be NULL", "got NULL"});
  EXPECT_EQ(fnceBackwardWorkspaceSize(&f.p, nullptr), FNCE_ERROR_INVALID_VALUE);
  expect_message_has({"bytes must not be NULL"});
}

TEST(Validation, WorkspaceRuleNamesBothNumbers) {
  EXPECT_EQ(flashnce::validate_workspace(0, nullptr, 0), FNCE_SUCCESS);
  EXPECT_EQ(flashnce::validate_workspace(256, nullptr, 100), FNCE_ERROR_WORKSPACE_TOO_SMALL);
  expect_message_has({"workspace_bytes must be >= 256", "got 100"});
  char buf[8];
  EXPECT_EQ(flashnce::validate_workspace(256, buf, 255), FNCE_ERROR_WORKSPACE_TOO_SMALL);
  expect_message_has({"256", "got 255"});
  EXPECT_EQ(flashnce::validate_workspace(256, nullptr, 4096), FNCE_ERROR_INVALID_VALUE);
  expect_message_has({"workspace must not be NULL", "256", "4096"});
  EXPECT_EQ(flashnce::validate_workspace(256, buf, 256), FNCE_SUCCESS);
}

// Through the public API on the CUDA backend: workspace is checked before any device is needed, so
// this runs wherever the CUDA workspace size is known (a build with nvcc or the emulator).
TEST(Validation, CudaWorkspaceTooSmallThroughThePublicApi) {
  Fixture f;
  f.p.backend = FNCE_BACKEND_CUDA;
  size_t needed = 0;
  if (fnceForwardWorkspaceSize(&f.p, &needed) != FNCE_SUCCESS)
    GTEST_SKIP() << "no CUDA backend in this build: " << fnceGetLastErrorMessage();
  if (needed == 0)
    GTEST_SKIP() << "the CUDA forward needs no workspace for this problem";
  EXPECT_EQ(
      fnceForward(&f.p, f.loss.data(), f.row_lse.data(), nullptr, nullptr, needed - 1, nullptr),
      FNCE_ERROR_WORKSPACE_TOO_SMALL);
  expect_message_has({std::to_string(needed), "got " + std::to_string(needed - 1)});
  EXPECT_TRUE(f.untouched());
}

TEST(Validation, ConvenienceFunctionsCheckTheirArguments) {
  void* ptr = nullptr;
  EXPECT_EQ(fnceMalloc(static_cast<fnceBackend_t>(9), &ptr, 16), FNCE_ERROR_INVALID_VALUE);
  expect_message_has({"backend", "got 9"});
  EXPECT_EQ(fnceMalloc(FNCE_BACKEND_CPU, nullptr, 16), FNCE_ERROR_INVALID_VALUE);
  expect_message_has({"ptr must not be NULL"});
  ASSERT_EQ(fnceMalloc(FNCE_BACKEND_CPU, &ptr, 16), FNCE_SUCCESS);
  char src[16] = "fifteen chars..";
  EXPECT_EQ(fnceMemcpy(FNCE_BACKEND_CPU, ptr, src, 16, static_cast<fnceCopyKind_t>(5)),
            FNCE_ERROR_INVALID_VALUE);
  expect_message_has({"kind", "got 5"});
  EXPECT_EQ(fnceMemcpy(FNCE_BACKEND_CPU, nullptr, src, 16, FNCE_COPY_HOST_TO_BACKEND),
            FNCE_ERROR_INVALID_VALUE);
  expect_message_has({"dst must not be NULL", "bytes = 16"});
  EXPECT_EQ(fnceMemcpy(FNCE_BACKEND_CPU, ptr, src, 16, FNCE_COPY_HOST_TO_BACKEND), FNCE_SUCCESS);
  EXPECT_EQ(std::memcmp(ptr, src, 16), 0);
  EXPECT_EQ(fnceSynchronize(FNCE_BACKEND_CPU, nullptr), FNCE_SUCCESS);
  EXPECT_EQ(fnceFree(FNCE_BACKEND_CPU, ptr), FNCE_SUCCESS);
  EXPECT_EQ(fnceFree(FNCE_BACKEND_CPU, nullptr), FNCE_SUCCESS);

  char name[64];
  ASSERT_EQ(fnceGetDeviceName(FNCE_BACKEND_CPU, name, sizeof name), FNCE_SUCCESS);
  EXPECT_STREQ(name, "CPU reference (f64)");
  std::memset(name, 'x', sizeof name);
  EXPECT_EQ(fnceGetDeviceName(FNCE_BACKEND_CPU, name, 4), FNCE_ERROR_INVALID_VALUE);
  expect_message_has({"capacity must be >= 20", "got 4"});
  EXPECT_EQ(name[0], 'x') << "name written on failure";
  EXPECT_EQ(fnceGetDeviceName(FNCE_BACKEND_CPU, nullptr, 64), FNCE_ERROR_INVALID_VALUE);
  expect_message_has({"name must not be NULL"});
  EXPECT_EQ(fnceBackendIsAvailable(FNCE_BACKEND_CPU), 1);
  EXPECT_EQ(fnceBackendIsAvailable(static_cast<fnceBackend_t>(9)), 0);
}

TEST(Status, EveryStatusHasItsName) {
  EXPECT_STREQ(fnceGetStatusString(FNCE_SUCCESS), "FNCE_SUCCESS");
  EXPECT_STREQ(fnceGetStatusString(FNCE_ERROR_INVALID_VALUE), "FNCE_ERROR_INVALID_VALUE");
  EXPECT_STREQ(fnceGetStatusString(FNCE_ERROR_NOT_SUPPORTED), "FNCE_ERROR_NOT_SUPPORTED");
  EXPECT_STREQ(fnceGetStatusString(FNCE_ERROR_WORKSPACE_TOO_SMALL),
               "FNCE_ERROR_WORKSPACE_TOO_SMALL");
  EXPECT_STREQ(fnceGetStatusString(FNCE_ERROR_CUDA), "FNCE_ERROR_CUDA");
  EXPECT_STREQ(fnceGetStatusString(FNCE_ERROR_INTERNAL), "FNCE_ERROR_INTERNAL");
  EXPECT_STREQ(fnceGetStatusString(static_cast<fnceStatus_t>(99)), "FNCE_UNKNOWN_STATUS");
}

TEST(Status, MessageIsPerThreadAndClearedBySuccess) {
  Fixture f;
  f.p.n = 0;
  ASSERT_EQ(f.forward(&f.p), FNCE_ERROR_INVALID_VALUE);
  std::string other;
  std::thread t([&] {
    Fixture g;
    g.p.d = -2;
    EXPECT_EQ(g.forward(&g.p), FNCE_ERROR_INVALID_VALUE);
    other = fnceGetLastErrorMessage();
  });
  t.join();
  EXPECT_EQ(other, "d must be >= 1, got -2");
  EXPECT_EQ(last_message(), "n must be >= 1, got 0"); // untouched by the other thread
  f.p.n = kN;
  ASSERT_EQ(f.forward(&f.p), FNCE_SUCCESS);
  EXPECT_EQ(last_message(), "");
}

TEST(ParamsInit, DefaultsAreTheDocumentedOnes) {
  fnceLossParams p;
  std::memset(&p, 0x5A, sizeof p);
  ASSERT_EQ(fnceLossParamsInit(&p), FNCE_SUCCESS);
  EXPECT_EQ(p.struct_size, sizeof(fnceLossParams));
  EXPECT_EQ(p.backend, FNCE_BACKEND_CUDA);
  EXPECT_EQ(p.dtype, FNCE_F32);
  EXPECT_EQ(p.n, 0);
  EXPECT_EQ(p.m, 0);
  EXPECT_EQ(p.d, 0);
  EXPECT_EQ(p.a, nullptr);
  EXPECT_EQ(p.b, nullptr);
  EXPECT_EQ(p.lda, 0);
  EXPECT_EQ(p.ldb, 0);
  EXPECT_EQ(p.logit_scale, nullptr);
  EXPECT_EQ(p.similarity, FNCE_SIM_DOT);
  EXPECT_EQ(p.positives, FNCE_POSITIVES_DIAGONAL);
  EXPECT_EQ(p.targets, nullptr);
  EXPECT_EQ(p.labels_a, nullptr);
  EXPECT_EQ(p.labels_b, nullptr);
  EXPECT_EQ(p.exclude_self, 0);
  EXPECT_EQ(p.normalizer, FNCE_NORMALIZER_ALL);
  EXPECT_EQ(p.direction, FNCE_DIRECTION_ROWS);
  EXPECT_EQ(p.reduction, FNCE_REDUCTION_MEAN);
  EXPECT_EQ(p.allow_tf32, 0);
}

} // namespace
