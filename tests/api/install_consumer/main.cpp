// Consumer of the installed FlashNCE: InfoNCE on the CPU backend, n = m = 2, d = 1.
#include <flashnce/flashnce.hpp>

#include <cmath>
#include <cstdio>

int main() {
  const auto be = FNCE_BACKEND_CPU;
  flashnce::Buffer<float> a(be, {1.0f, 2.0f}), b(be, {1.0f, -1.0f}), scale(be, {1.0f}), loss(be, 1);
  flashnce::Loss infonce(flashnce::infonce(2, 2, 1, a.data(), b.data(), scale.data(), be));
  infonce.forward(loss.data());
  const float got = loss.download()[0];
  // s = [[1, -1], [2, -2]]: loss = mean_i (LSE_j s_ij - s_ii).
  const double want = 0.5 * (std::log1p(std::exp(-2.0)) + 4.0 + std::log1p(std::exp(-4.0)));
  if (std::fabs(got - want) > 1e-6) {
    std::printf("flashnce consumer: wrong loss %.8f, want %.8f\n", got, want);
    return 1;
  }
  std::printf("flashnce consumer: loss = %.6f\n", got);
  return 0;
}
