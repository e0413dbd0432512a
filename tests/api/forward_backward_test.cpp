// The public API end to end on the CPU backend, on a case small enough to work by hand, plus the
// workspace-size protocol and the CUDA backend on a machine without a device.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "flashnce/flashnce.h"

namespace {

// n = m = 2, d = 1, DOT, scale 1:  a = (1, 2), b = (1, -1)  =>  s = [[1, -1], [2, -2]].
//   l0 = log(e^1 + e^-1) - s00 = log(1 + e^-2),   l1 = log(e^2 + e^-2) - s11 = 4 + log(1 + e^-4).
//   P_ij = softmax_j(s_i);  G_ij = (P_ij - [i == j]) / n  (MEAN over 2 rows).
//   grad_a_i = sum_j G_ij b_j;  grad_b_j = sum_i G_ij a_i;  grad_scale = sum_ij G_ij s_ij / scale.
struct HandCase {
  float a[2] = {1.0f, 2.0f}, b[2] = {1.0f, -1.0f}, scale = 1.0f;
  double s[2][2] = {{1, -1}, {2, -2}};
  fnceLossParams p;
  HandCase() {
    fnceLossParamsInit(&p);
    p.backend = FNCE_BACKEND_CPU;
    p.n = p.m = 2;
    p.d = 1;
    p.a = a;
    p.b = b;
    p.logit_scale = &scale;
  }
  double row_loss(int i) const {
    return i == 0 ? std::log1p(std::exp(-2.0)) : 4.0 + std::log1p(std::exp(-4.0));
  }
  double prob(int i, int j) const {
    return std::exp(s[i][j]) / (std::exp(s[i][0]) + std::exp(s[i][1]));
  }
};

TEST(CpuBackend, ForwardMatchesTheHandWorkedValue) {
  HandCase c;
  float loss = -1, row_lse[2] = {-1, -1};
  ASSERT_EQ(fnceForward(&c.p, &loss, row_lse, nullptr, nullptr, 0, nullptr), FNCE_SUCCESS)
      << fnceGetLastErrorMessage();
  EXPECT_NEAR(loss, 0.5 * (c.row_loss(0) + c.row_loss(1)), 1e-6);
  EXPECT_NEAR(row_lse[0], std::log(std::exp(1.0) + std::exp(-1.0)), 1e-6);
  EXPECT_NEAR(row_lse[1], std::log(std::exp(2.0) + std::exp(-2.0)), 1e-6);
  EXPECT_STREQ(fnceGetLastErrorMessage(), "");

  c.p.reduction = FNCE_REDUCTION_NONE;
  float losses[2] = {-1, -1};
  ASSERT_EQ(fnceForward(&c.p, losses, nullptr, nullptr, nullptr, 0, nullptr), FNCE_SUCCESS);
  EXPECT_NEAR(losses[0], c.row_loss(0), 1e-6);
  EXPECT_NEAR(losses[1], c.row_loss(1), 1e-6);

  c.p.reduction = FNCE_REDUCTION_SUM;
  ASSERT_EQ(fnceForward(&c.p, &loss, nullptr, nullptr, nullptr, 0, nullptr), FNCE_SUCCESS);
  EXPECT_NEAR(loss, c.row_loss(0) + c.row_loss(1), 1e-6);
}

TEST(CpuBackend, BackwardMatchesTheHandWorkedGradient) {
  HandCase c;
  float loss = 0, row_lse[2];
  ASSERT_EQ(fnceForward(&c.p, &loss, row_lse, nullptr, nullptr, 0, nullptr), FNCE_SUCCESS);
  const float grad_loss = 2.0f; // d(2L)
  float grad_a[2] = {-7, -7}, grad_b[2] = {-7, -7}, grad_scale = -7;
  ASSERT_EQ(fnceBackward(&c.p, row_lse, nullptr, &grad_loss, grad_a, grad_b, &grad_scale, nullptr,
                         0, nullptr),
            FNCE_SUCCESS)
      << fnceGetLastErrorMessage();
  double G[2][2];
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      G[i][j] = grad_loss * (c.prob(i, j) - (i == j)) / 2.0;
  double ga[2] = {0, 0}, gb[2] = {0, 0}, gs = 0;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) {
      ga[i] += G[i][j] * c.b[j];
      gb[j] += G[i][j] * c.a[i];
      gs += G[i][j] * c.s[i][j]; // scale = 1: sim = s
    }
  for (int i = 0; i < 2; ++i) {
    EXPECT_NEAR(grad_a[i], ga[i], 1e-6) << "grad_a[" << i << "]";
    EXPECT_NEAR(grad_b[i], gb[i], 1e-6) << "grad_b[" << i << "]";
  }
  EXPECT_NEAR(grad_scale, gs, 1e-6);
}

TEST(CpuBackend, WorkspaceProtocolIsZeroBytesAndNullIsFine) {
  HandCase c;
  size_t fwd = 99, bwd = 99;
  ASSERT_EQ(fnceForwardWorkspaceSize(&c.p, &fwd), FNCE_SUCCESS);
  ASSERT_EQ(fnceBackwardWorkspaceSize(&c.p, &bwd), FNCE_SUCCESS);
  EXPECT_EQ(fwd, 0u);
  EXPECT_EQ(bwd, 0u);
  float loss = 0;
  char spare[16];
  // A workspace larger than needed is accepted too.
  EXPECT_EQ(fnceForward(&c.p, &loss, nullptr, nullptr, spare, sizeof spare, nullptr), FNCE_SUCCESS);
}

// The product library on a machine without a GPU: the CUDA backend says so, clearly, and the
// device-only tests skip.  (With a device present, the same calls must succeed.)
TEST(CudaBackend, WithoutADeviceEveryCallSaysWhy) {
  if (fnceBackendIsAvailable(FNCE_BACKEND_CUDA))
    GTEST_SKIP() << "a CUDA device is present; this test covers machines without one";
  HandCase c;
  c.p.backend = FNCE_BACKEND_CUDA;
  float loss[4];
  std::memset(loss, 0xA5, sizeof loss);
  std::vector<unsigned char> workspace(1 << 20); // whatever the size would be: never reached
  const fnceStatus_t s =
      fnceForward(&c.p, loss, nullptr, nullptr, workspace.data(), workspace.size(), nullptr);
  EXPECT_TRUE(s == FNCE_ERROR_CUDA || s == FNCE_ERROR_NOT_SUPPORTED) << fnceGetStatusString(s);
  const std::string msg = fnceGetLastErrorMessage();
  EXPECT_TRUE(msg.find("no CUDA device") != std::string::npos ||
              msg.find("built without CUDA") != std::string::npos)
      << msg;
  for (int i = 0; i < 4; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &loss[i], 4);
    EXPECT_EQ(bits, 0xA5A5A5A5u) << "loss written without a device";
  }

  // The convenience calls say the same thing.
  auto says_why = [] {
    const std::string m = fnceGetLastErrorMessage();
    return m.find("no CUDA device") != std::string::npos ||
           m.find("built without CUDA") != std::string::npos;
  };
  void* ptr = nullptr;
  EXPECT_NE(fnceMalloc(FNCE_BACKEND_CUDA, &ptr, 64), FNCE_SUCCESS);
  EXPECT_TRUE(says_why()) << fnceGetLastErrorMessage();
  EXPECT_EQ(ptr, nullptr);
  char name[256];
  EXPECT_NE(fnceGetDeviceName(FNCE_BACKEND_CUDA, name, sizeof name), FNCE_SUCCESS);
  EXPECT_TRUE(says_why()) << fnceGetLastErrorMessage();
  char host[8] = "abcdefg", dev[8];
  EXPECT_NE(fnceMemcpy(FNCE_BACKEND_CUDA, dev, host, 8, FNCE_COPY_HOST_TO_BACKEND), FNCE_SUCCESS);
  EXPECT_TRUE(says_why()) << fnceGetLastErrorMessage();
  EXPECT_NE(fnceSynchronize(FNCE_BACKEND_CUDA, nullptr), FNCE_SUCCESS);
  EXPECT_TRUE(says_why()) << fnceGetLastErrorMessage();
  EXPECT_NE(fnceFree(FNCE_BACKEND_CUDA, host), FNCE_SUCCESS);
  EXPECT_TRUE(says_why()) << fnceGetLastErrorMessage();
  size_t bytes = 0;
  EXPECT_NE(fnceBackwardWorkspaceSize(&c.p, &bytes), FNCE_SUCCESS);
  EXPECT_TRUE(says_why()) << fnceGetLastErrorMessage();
}

TEST(CudaBackend, WithADeviceTheNameIsReported) {
  if (!fnceBackendIsAvailable(FNCE_BACKEND_CUDA))
    GTEST_SKIP() << "no CUDA device";
  char name[256] = "";
  ASSERT_EQ(fnceGetDeviceName(FNCE_BACKEND_CUDA, name, sizeof name), FNCE_SUCCESS)
      << fnceGetLastErrorMessage();
  EXPECT_GT(std::strlen(name), 0u);
  void* ptr = nullptr;
  ASSERT_EQ(fnceMalloc(FNCE_BACKEND_CUDA, &ptr, 64), FNCE_SUCCESS);
  const char src[8] = "flashnc";
  char back[8] = "";
  EXPECT_EQ(fnceMemcpy(FNCE_BACKEND_CUDA, ptr, src, 8, FNCE_COPY_HOST_TO_BACKEND), FNCE_SUCCESS);
  EXPECT_EQ(fnceMemcpy(FNCE_BACKEND_CUDA, back, ptr, 8, FNCE_COPY_BACKEND_TO_HOST), FNCE_SUCCESS);
  EXPECT_STREQ(back, "flashnc");
  EXPECT_EQ(fnceSynchronize(FNCE_BACKEND_CUDA, nullptr), FNCE_SUCCESS);
  EXPECT_EQ(fnceFree(FNCE_BACKEND_CUDA, ptr), FNCE_SUCCESS);
}

} // namespace
