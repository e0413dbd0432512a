// The README's C++ usage example, compiled and run.  The code between the markers is copied into
// README.md verbatim; ReadmeExample.IsInTheReadmeVerbatim fails when the two drift apart.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>

// [readme-example-begin]
#include <flashnce/flashnce.hpp>
#include <vector>

// CLIP's symmetric loss and its gradients for n image/text embedding pairs of width d.
float clip_step(const std::vector<float>& image, const std::vector<float>& text, int64_t n,
                int64_t d, std::vector<float>& grad_image, std::vector<float>& grad_text) {
  auto be = fnceBackendIsAvailable(FNCE_BACKEND_CUDA) ? FNCE_BACKEND_CUDA : FNCE_BACKEND_HOST;
  flashnce::Buffer<float> a(be, image), b(be, text), scale(be, {1 / 0.07f}), one(be, {1.0f});
  flashnce::Buffer<float> loss(be, 1), ga(be, n * d), gb(be, n * d);
  flashnce::Loss clip(flashnce::clip(n, d, a.data(), b.data(), scale.data(), be));
  clip.forward(loss.data()); // never materialises the n x n similarity matrix
  clip.backward(one.data(), ga.data(), gb.data());
  grad_image = ga.download(); // download() copies back synchronously
  grad_text = gb.download();
  return loss.download()[0];
}
// [readme-example-end]

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(ReadmeExample, IsInTheReadmeVerbatim) {
  const std::string self = read_file(FLASHNCE_SOURCE_DIR "/tests/api/readme_example_test.cpp");
  const std::string readme = read_file(FLASHNCE_SOURCE_DIR "/README.md");
  const std::string begin = "// [readme-example-begin]\n", end = "// [readme-example-end]";
  const size_t b = self.find(begin), e = self.find(end);
  ASSERT_NE(b, std::string::npos);
  ASSERT_NE(e, std::string::npos);
  const std::string snippet = self.substr(b + begin.size(), e - b - begin.size());
  ASSERT_GT(snippet.size(), 200u);
  EXPECT_NE(readme.find(snippet), std::string::npos)
      << "README.md does not contain the example of tests/api/readme_example_test.cpp verbatim";
}

// Two pairs in 2-D: image = e1, e2; text = e1, (e1 + e2)/sqrt(2) direction (cosine similarity).
TEST(ReadmeExample, ComputesTheClipLoss) {
  const std::vector<float> image = {1, 0, 0, 1}, text = {2, 0, 1, 1};
  std::vector<float> gi, gt;
  const float loss = clip_step(image, text, 2, 2, gi, gt);
  // cos = [[1, 1/sqrt2], [0, 1/sqrt2]] times the scale 1/0.07; CLIP = mean of the row and column
  // cross-entropies with the diagonal as targets.
  const double s = 1 / 0.07, r = 1 / std::sqrt(2.0);
  const double c[2][2] = {{s * 1, s * r}, {s * 0, s * r}};
  auto lse = [](double x, double y) {
    return std::max(x, y) + std::log1p(std::exp(-std::fabs(x - y)));
  };
  const double rows = (lse(c[0][0], c[0][1]) - c[0][0]) + (lse(c[1][0], c[1][1]) - c[1][1]);
  const double cols = (lse(c[0][0], c[1][0]) - c[0][0]) + (lse(c[0][1], c[1][1]) - c[1][1]);
  EXPECT_NEAR(loss, 0.5 * (rows / 2 + cols / 2), 1e-5);
  ASSERT_EQ(gi.size(), 4u);
  ASSERT_EQ(gt.size(), 4u);
  for (float g : gi)
    EXPECT_TRUE(std::isfinite(g));
  // Cosine similarity is scale-invariant: the gradient is orthogonal to each input row.
  EXPECT_NEAR(gi[0] * image[0] + gi[1] * image[1], 0.0, 1e-5);
  EXPECT_NEAR(gt[2] * text[2] + gt[3] * text[3], 0.0, 1e-5);
}

} // namespace
