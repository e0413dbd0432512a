// The C++ layer (flashnce.hpp): presets against DESIGN.md, Error, Buffer, Loss; and the C header
// compiled as C99 (c_header_test.c).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "flashnce/flashnce.hpp"

extern "C" int c_header_check(void);

namespace {

const float kScale = 10.0f;
const int kData = 0; // stands for a buffer: presets only store pointers
const void* const kA = &kData;
const void* const kB = &kData + 1;
const int64_t kLabels[4] = {0, 0, 1, 1};

TEST(CHeader, CompilesAsC99AndSeesTheDefaults) {
  EXPECT_EQ(c_header_check(), 0);
}

void expect_common(const fnceLossParams& p, int64_t n, int64_t m, int64_t d, const void* a,
                   const void* b) {
  EXPECT_EQ(p.struct_size, sizeof(fnceLossParams));
  EXPECT_EQ(p.backend, FNCE_BACKEND_CPU);
  EXPECT_EQ(p.dtype, FNCE_BF16);
  EXPECT_EQ(p.n, n);
  EXPECT_EQ(p.m, m);
  EXPECT_EQ(p.d, d);
  EXPECT_EQ(p.a, a);
  EXPECT_EQ(p.b, b);
  EXPECT_EQ(p.logit_scale, &kScale);
  EXPECT_EQ(p.lda, 0);
  EXPECT_EQ(p.ldb, 0);
  EXPECT_EQ(p.reduction, FNCE_REDUCTION_MEAN);
  EXPECT_EQ(p.allow_tf32, 0);
}

TEST(Presets, InfoNCE) {
  auto p = flashnce::infonce(8, 12, 5, kA, kB, &kScale, FNCE_BACKEND_CPU, FNCE_BF16);
  expect_common(p, 8, 12, 5, kA, kB);
  EXPECT_EQ(p.similarity, FNCE_SIM_DOT);
  EXPECT_EQ(p.positives, FNCE_POSITIVES_DIAGONAL);
  EXPECT_EQ(p.normalizer, FNCE_NORMALIZER_ALL);
  EXPECT_EQ(p.direction, FNCE_DIRECTION_ROWS);
  EXPECT_EQ(p.exclude_self, 0);
}

TEST(Presets, ClipIsSymmetricDiagonal) {
  auto p = flashnce::clip(8, 5, kA, kB, &kScale, FNCE_BACKEND_CPU, FNCE_BF16);
  expect_common(p, 8, 8, 5, kA, kB);
  EXPECT_EQ(p.similarity, FNCE_SIM_COSINE);
  EXPECT_EQ(p.positives, FNCE_POSITIVES_DIAGONAL);
  EXPECT_EQ(p.normalizer, FNCE_NORMALIZER_ALL);
  EXPECT_EQ(p.direction, FNCE_DIRECTION_SYMMETRIC);
}

TEST(Presets, NtXentIsSelfModeViewPairs) {
  auto p = flashnce::nt_xent(8, 5, kA, &kScale, FNCE_BACKEND_CPU, FNCE_BF16);
  expect_common(p, 8, 8, 5, kA, nullptr);
  EXPECT_EQ(p.similarity, FNCE_SIM_COSINE);
  EXPECT_EQ(p.positives, FNCE_POSITIVES_VIEW_PAIRS);
  EXPECT_EQ(p.exclude_self, 1);
  EXPECT_EQ(p.normalizer, FNCE_NORMALIZER_ALL);
  EXPECT_EQ(p.direction, FNCE_DIRECTION_ROWS);
}

TEST(Presets, SupConIsSelfModeLabels) {
  auto p = flashnce::supcon(4, 5, kA, kLabels, &kScale, FNCE_BACKEND_CPU, FNCE_BF16);
  expect_common(p, 4, 4, 5, kA, nullptr);
  EXPECT_EQ(p.similarity, FNCE_SIM_COSINE);
  EXPECT_EQ(p.positives, FNCE_POSITIVES_LABELS);
  EXPECT_EQ(p.labels_a, kLabels);
  EXPECT_EQ(p.labels_b, nullptr);
  EXPECT_EQ(p.exclude_self, 1);
  EXPECT_EQ(p.normalizer, FNCE_NORMALIZER_ALL);
}

TEST(Presets, VaePriorNormalisesOverNegatives) {
  auto p = flashnce::vae_prior(8, 12, 5, kA, kB, &kScale, FNCE_BACKEND_CPU, FNCE_BF16);
  expect_common(p, 8, 12, 5, kA, kB);
  EXPECT_EQ(p.similarity, FNCE_SIM_NEG_SQ_DIST);
  EXPECT_EQ(p.positives, FNCE_POSITIVES_DIAGONAL);
  EXPECT_EQ(p.normalizer, FNCE_NORMALIZER_NEGATIVES);
  EXPECT_EQ(p.direction, FNCE_DIRECTION_ROWS);
}

TEST(Presets, MocoQueueIsExtraRowsOfB) {
  auto p = flashnce::moco(8, 100, 5, kA, kB, &kScale, FNCE_BACKEND_CPU, FNCE_BF16);
  expect_common(p, 8, 108, 5, kA, kB);
  EXPECT_EQ(p.similarity, FNCE_SIM_COSINE);
  EXPECT_EQ(p.positives, FNCE_POSITIVES_DIAGONAL);
  EXPECT_EQ(p.normalizer, FNCE_NORMALIZER_ALL);
  EXPECT_EQ(p.direction, FNCE_DIRECTION_ROWS);
}

TEST(Presets, DefaultBackendIsCudaF32) {
  auto p = flashnce::infonce(2, 2, 2, kA, kB, &kScale);
  EXPECT_EQ(p.backend, FNCE_BACKEND_CUDA);
  EXPECT_EQ(p.dtype, FNCE_F32);
}

TEST(Error, CarriesStatusAndMessage) {
  fnceLossParams p = flashnce::infonce(0, 4, 4, kA, kB, &kScale, FNCE_BACKEND_CPU);
  try {
    flashnce::Loss loss(p);
    FAIL() << "no exception for n = 0";
  } catch (const flashnce::Error& e) {
    EXPECT_EQ(e.status(), FNCE_ERROR_INVALID_VALUE);
    EXPECT_EQ(e.message(), "n must be >= 1, got 0");
    EXPECT_STREQ(e.what(), "FNCE_ERROR_INVALID_VALUE: n must be >= 1, got 0");
  }
  EXPECT_NO_THROW(flashnce::check(FNCE_SUCCESS));
  EXPECT_THROW(flashnce::check(FNCE_ERROR_INTERNAL), flashnce::Error);
}

TEST(Buffer, UploadDownloadMoveAndBounds) {
  flashnce::Buffer<float> buf(FNCE_BACKEND_CPU, std::vector<float>{1, 2, 3});
  EXPECT_EQ(buf.size(), 3u);
  EXPECT_EQ(buf.download(), (std::vector<float>{1, 2, 3}));
  flashnce::Buffer<float> moved(std::move(buf));
  EXPECT_EQ(buf.data(), nullptr);
  EXPECT_EQ(buf.size(), 0u);
  EXPECT_EQ(moved.download(), (std::vector<float>{1, 2, 3}));
  moved = flashnce::Buffer<float>(FNCE_BACKEND_CPU, {4.0f});
  EXPECT_EQ(moved.download(), (std::vector<float>{4}));
  const std::vector<float> too_many(5, 0.0f);
  try {
    moved.upload(too_many);
    FAIL() << "no exception for an oversized upload";
  } catch (const flashnce::Error& e) {
    EXPECT_EQ(e.status(), FNCE_ERROR_INVALID_VALUE);
    EXPECT_NE(e.message().find("got 5"), std::string::npos) << e.message();
  }
}

TEST(Buffer, ByteCountOverflowThrowsInsteadOfAllocating) {
  try {
    flashnce::Buffer<double> huge(FNCE_BACKEND_CPU, static_cast<size_t>(-1) / 4);
    FAIL() << "no exception for count * sizeof(T) overflowing size_t";
  } catch (const flashnce::Error& e) {
    EXPECT_EQ(e.status(), FNCE_ERROR_INVALID_VALUE);
    EXPECT_NE(e.message().find("count = 4611686018427387903"), std::string::npos) << e.message();
  }
}

TEST(Loss, ForwardBackwardThroughTheHelper) {
  // InfoNCE, n = m = 2, d = 1, DOT, scale 1: a = (1, 2), b = (1, -1): s = [[1, -1], [2, -2]].
  const auto be = FNCE_BACKEND_CPU;
  flashnce::Buffer<float> a(be, {1.0f, 2.0f}), b(be, {1.0f, -1.0f}), scale(be, {1.0f});
  flashnce::Buffer<float> loss(be, 1), one(be, {1.0f}), ga(be, 2), gb(be, 2), gs(be, 1);
  flashnce::Loss l(flashnce::infonce(2, 2, 1, a.data(), b.data(), scale.data(), be));
  EXPECT_EQ(l.loss_count(), 1u);
  l.forward(loss.data());
  const double expected = 0.5 * (std::log1p(std::exp(-2.0)) + 4.0 + std::log1p(std::exp(-4.0)));
  EXPECT_NEAR(loss.download()[0], expected, 1e-6);
  l.backward(one.data(), ga.data(), gb.data(), gs.data());
  // dL/da_0 = 0.5 * sum_j (P_0j - [j = 0]) b_j = 0.5 * (P_01 * (-1) - (1 - P_00)) = -P_01.
  const double p01 = 1.0 / (1.0 + std::exp(2.0));
  EXPECT_NEAR(ga.download()[0], -p01, 1e-6);
}

TEST(Loss, SymmetricNoneReductionCountsRowsAndColumns) {
  const auto be = FNCE_BACKEND_CPU;
  flashnce::Buffer<float> a(be, {1.0f, 0.0f, 0.0f, 1.0f, 1.0f, 1.0f}), scale(be, {1.0f});
  fnceLossParams p = flashnce::clip(3, 2, a.data(), a.data(), scale.data(), be);
  p.reduction = FNCE_REDUCTION_NONE;
  flashnce::Loss l(p);
  EXPECT_EQ(l.loss_count(), 6u);
  flashnce::Buffer<float> loss(be, l.loss_count());
  l.forward(loss.data());
  for (float v : loss.download())
    EXPECT_TRUE(std::isfinite(v));
}

} // namespace
