// flashnce_demo end to end (run as a child process) and its .npy reader.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "npy_reader.h"

namespace {

struct Result {
  int exit_code = -1;
  std::string out; // stdout and stderr together
};

Result run_demo(const std::string& args) {
  const std::string cmd = std::string(FLASHNCE_DEMO_EXE) + " " + args + " 2>&1";
  Result r;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr)
    return r;
  char buf[4096];
  size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, pipe)) > 0)
    r.out.append(buf, got);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// The table's data rows: every line that does not start with '#' or "N", split into numbers
// ("-" becomes NaN).
std::vector<std::vector<double>> table_rows(const std::string& out) {
  std::vector<std::vector<double>> rows;
  std::istringstream lines(out);
  std::string line;
  bool header_seen = false;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#')
      continue;
    std::istringstream words(line);
    std::string w;
    words >> w;
    if (w == "N") {
      header_seen = true;
      continue;
    }
    if (!header_seen)
      continue;
    std::vector<double> row{std::stod(w)};
    while (words >> w)
      row.push_back(w == "-" ? NAN : std::stod(w));
    rows.push_back(row);
  }
  return rows;
}

// Columns: N log_N true_MI InfoNCE MI_bound CLIP NT-Xent VAE-prior ELBO time_ms
enum Col { kN, kLogN, kTrueMi, kInfoNce, kBound, kClip, kNtXent, kVae, kElbo, kTime, kCols };

TEST(Demo, GaussianTableHasTheRowsAndTheBoundStaysBelowLogN) {
  const Result r = run_demo("--n 32,128 --d 4 --rho 0.8 --backend cpu");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("backend: cpu (CPU reference (f64))"), std::string::npos) << r.out;
  const auto rows = table_rows(r.out);
  ASSERT_EQ(rows.size(), 2u) << r.out;
  const double true_mi = -0.5 * 4 * std::log(1 - 0.64);
  for (size_t k = 0; k < rows.size(); ++k) {
    const auto& row = rows[k];
    ASSERT_EQ(row.size(), static_cast<size_t>(kCols)) << r.out;
    EXPECT_EQ(row[kN], k == 0 ? 32 : 128);
    EXPECT_NEAR(row[kLogN], std::log(row[kN]), 1e-4);
    EXPECT_NEAR(row[kTrueMi], true_mi, 1e-4);
    for (int c = kInfoNce; c < kTime; ++c)
      EXPECT_TRUE(std::isfinite(row[c])) << "column " << c;
    EXPECT_NEAR(row[kBound], row[kLogN] - row[kInfoNce], 2e-4);
    EXPECT_NEAR(row[kElbo], -row[kVae], 1e-4);
    // InfoNCE is a lower bound: log N - loss <= log N (the loss is a cross-entropy, >= 0).
    EXPECT_LE(row[kBound], row[kLogN] + 1e-4);
    // Strongly correlated pairs under the optimal critic: the bound is clearly positive.
    EXPECT_GT(row[kBound], 0.0) << r.out;
  }
}

// Without --backend the demo picks CUDA when a device is present, else the host backend: either
// way its table must agree with the f64 CPU reference's (f32 arithmetic: 1e-3 relative).
TEST(Demo, DefaultBackendAgreesWithTheCpuReference) {
  const std::string args = "--n 96 --d 5 --rho 0.7";
  const Result cpu = run_demo(args + " --backend cpu");
  const Result any = run_demo(args);
  ASSERT_EQ(cpu.exit_code, 0) << cpu.out;
  ASSERT_EQ(any.exit_code, 0) << any.out;
  const bool on_cuda = any.out.find("backend: cuda") != std::string::npos;
  if (!on_cuda) {
    EXPECT_NE(any.out.find("backend: host (CPU (f32, "), std::string::npos) << any.out;
  }
  const auto want = table_rows(cpu.out), got = table_rows(any.out);
  ASSERT_EQ(want.size(), 1u);
  ASSERT_EQ(got.size(), 1u);
  for (int c = kN; c < kTime; ++c)
    EXPECT_NEAR(got[0][c], want[0][c], 1e-3 * std::max(1.0, std::fabs(want[0][c])))
        << "column " << c << (on_cuda ? " (CUDA backend)" : " (host backend)");
}

TEST(Demo, OneLossOnlyLeavesTheOthersEmpty) {
  const Result r = run_demo("--n 16 --d 3 --loss clip --similarity cosine --backend cpu");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto rows = table_rows(r.out);
  ASSERT_EQ(rows.size(), 1u) << r.out;
  EXPECT_TRUE(std::isfinite(rows[0][kClip]));
  EXPECT_TRUE(std::isnan(rows[0][kInfoNce]));
  EXPECT_TRUE(std::isnan(rows[0][kVae]));
}

TEST(Demo, BadOptionsExitWithCode2AndAMessage) {
  for (const char* args : {"--n 0", "--n abc", "--rho 1.5", "--loss nope", "--similarity l2",
                           "--backend tpu", "--frobnicate", "--d", "--scale nan"}) {
    const Result r = run_demo(args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.out;
    EXPECT_NE(r.out.find("flashnce_demo: "), std::string::npos) << args << "\n" << r.out;
  }
  const Result help = run_demo("--help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("usage: flashnce_demo"), std::string::npos);
}

// A .npy file written by hand: format 1.0, header padded so that data starts at a multiple of 64.
std::string make_npy(const std::string& descr, const std::string& shape, const void* data,
                     size_t bytes, bool fortran = false) {
  std::string header = "{'descr': '" + descr +
                       "', 'fortran_order': " + (fortran ? "True" : "False") +
                       ", 'shape': " + shape + ", }";
  while ((10 + header.size() + 1) % 64 != 0)
    header += ' ';
  header += '\n';
  std::string file("\x93NUMPY\x01\x00", 8);
  file += static_cast<char>(header.size() & 0xFF);
  file += static_cast<char>(header.size() >> 8);
  file += header;
  file.append(static_cast<const char*>(data), bytes);
  return file;
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

TEST(Npy, ReadsFloat32AndFloat64) {
  const float f[6] = {1, 2, 3, 4, 5, 6};
  flashnce_demo::NpyMatrix m;
  std::string err;
  ASSERT_TRUE(flashnce_demo::parse_npy(make_npy("<f4", "(2, 3)", f, sizeof f), "x", &m, &err))
      << err;
  EXPECT_EQ(m.rows, 2);
  EXPECT_EQ(m.cols, 3);
  EXPECT_EQ(m.data, (std::vector<float>{1, 2, 3, 4, 5, 6}));
  const double g[3] = {0.5, -1.25, 3};
  ASSERT_TRUE(flashnce_demo::parse_npy(make_npy("<f8", "(3,)", g, sizeof g), "y", &m, &err)) << err;
  EXPECT_EQ(m.rows, 3);
  EXPECT_EQ(m.cols, 1);
  EXPECT_EQ(m.data, (std::vector<float>{0.5f, -1.25f, 3.0f}));
}

TEST(Npy, RejectsWhatItCannotRead) {
  const int32_t i[4] = {1, 2, 3, 4};
  const float f[8] = {};
  flashnce_demo::NpyMatrix m;
  std::string err;
  EXPECT_FALSE(flashnce_demo::parse_npy(make_npy("<i4", "(2, 2)", i, sizeof i), "a.npy", &m, &err));
  EXPECT_NE(err.find("a.npy: dtype must be"), std::string::npos) << err;
  EXPECT_NE(err.find("<i4"), std::string::npos) << err;
  EXPECT_FALSE(flashnce_demo::parse_npy(make_npy(">f4", "(2, 2)", f, 16), "b", &m, &err));
  EXPECT_NE(err.find(">f4"), std::string::npos) << err;
  EXPECT_FALSE(flashnce_demo::parse_npy(make_npy("<f4", "(2, 2)", f, 16, true), "c", &m, &err));
  EXPECT_NE(err.find("fortran_order True"), std::string::npos) << err;
  EXPECT_FALSE(flashnce_demo::parse_npy(make_npy("<f4", "(2, 2, 2)", f, 32), "d", &m, &err));
  EXPECT_NE(err.find("3 dimensions"), std::string::npos) << err;
  EXPECT_FALSE(flashnce_demo::parse_npy(make_npy("<f4", "(2, 3)", f, 16), "e", &m, &err));
  EXPECT_NE(err.find("needs 24 bytes, the file has 16"), std::string::npos) << err;
  EXPECT_FALSE(flashnce_demo::parse_npy("PK\x03\x04 not numpy", "f", &m, &err));
  EXPECT_NE(err.find("not a .npy file"), std::string::npos) << err;
  EXPECT_FALSE(flashnce_demo::read_npy("/nonexistent/x.npy", &m, &err));
  EXPECT_NE(err.find("cannot open"), std::string::npos) << err;
}

// The demo on user data, checked against InfoNCE computed here directly (DOT, scale 1).
TEST(Demo, NpyInputGivesTheInfoNceOfThoseEmbeddings) {
  const int n = 3, d = 2;
  const double a[n * d] = {1, 0, 0, 1, 0.5, 0.5};
  const double b[n * d] = {0.9, 0.1, 0.2, 0.8, -1, 0.3};
  const std::string dir = ::testing::TempDir();
  write_file(dir + "/demo_a.npy", make_npy("<f8", "(3, 2)", a, sizeof a));
  write_file(dir + "/demo_b.npy", make_npy("<f8", "(3, 2)", b, sizeof b));
  const Result r = run_demo("--npy " + dir + "/demo_a.npy " + dir +
                            "/demo_b.npy --similarity dot --scale 1 --backend cpu");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto rows = table_rows(r.out);
  ASSERT_EQ(rows.size(), 1u) << r.out;
  double loss = 0;
  for (int i = 0; i < n; ++i) {
    double s[n], mx = -1e300, sum = 0;
    for (int j = 0; j < n; ++j) {
      s[j] = a[i * d] * b[j * d] + a[i * d + 1] * b[j * d + 1];
      mx = std::max(mx, s[j]);
    }
    for (int j = 0; j < n; ++j)
      sum += std::exp(s[j] - mx);
    loss += (mx + std::log(sum) - s[i]) / n;
  }
  EXPECT_EQ(rows[0][kN], 3);
  EXPECT_TRUE(std::isnan(rows[0][kTrueMi])); // unknown for user data
  EXPECT_NEAR(rows[0][kInfoNce], loss, 1e-4);

  write_file(dir + "/demo_bad.npy", make_npy("<f4", "(2, 2)", a, 8)); // data too short
  const Result bad = run_demo("--npy " + dir + "/demo_bad.npy --backend cpu");
  EXPECT_EQ(bad.exit_code, 2) << bad.out;
  EXPECT_NE(bad.out.find("demo_bad.npy: data size mismatch"), std::string::npos) << bad.out;
}

} // namespace
