#include "bench/bench_setup.h"

#include <cmath>

#include "host/dtype.h"

namespace flashnce::bench {

const char* loss_name(LossKind k) {
  switch (k) {
  case LossKind::InfoNce:
    return "infonce";
  case LossKind::Clip:
    return "clip";
  case LossKind::NtXent:
    return "nt_xent";
  default:
    return "vae_prior";
  }
}

const char* dtype_name(fnceDataType_t t) {
  return t == FNCE_F32 ? "f32" : (t == FNCE_F16 ? "f16" : "bf16");
}

void configure_loss(fnceLossParams* p, LossKind k) {
  p->similarity = FNCE_SIM_DOT;
  p->positives = FNCE_POSITIVES_DIAGONAL;
  p->normalizer = FNCE_NORMALIZER_ALL;
  p->direction = FNCE_DIRECTION_ROWS;
  p->reduction = FNCE_REDUCTION_MEAN;
  switch (k) {
  case LossKind::InfoNce:
    break;
  case LossKind::Clip:
    p->direction = FNCE_DIRECTION_SYMMETRIC;
    break;
  case LossKind::NtXent:
    p->positives = FNCE_POSITIVES_VIEW_PAIRS;
    p->b = nullptr;
    break;
  case LossKind::VaePrior:
    p->normalizer = FNCE_NORMALIZER_NEGATIVES;
    break;
  }
}

std::vector<Shape> gpu_shapes(const Options& o) {
  std::vector<Shape> out;
  auto keep = [&](Shape s) {
    if (o.max_n == 0 || s.n <= o.max_n)
      out.push_back(s);
  };
  if (o.n > 0) { // --fnce_n / --fnce_d / --fnce_dtype: every loss at one shape
    for (LossKind k : kAllLosses)
      out.push_back({k, o.dtype, o.n, o.d > 0 ? o.d : 512});
    return out;
  }
  if (o.full) {
    for (LossKind k : kAllLosses)
      for (fnceDataType_t t : {FNCE_BF16, FNCE_F16, FNCE_F32})
        for (int64_t n : {1024, 4096, 16384, 65536})
          for (int64_t d : {128, 512, 1024})
            keep({k, t, n, d});
    return out;
  }
  // Default: every loss in bf16 at d = 512 over n ∈ {4k, 16k, 64k} (DESIGN §6's targets), the d
  // sweep for InfoNCE at 16k, and f16 / f32 at one shape.
  for (LossKind k : kAllLosses)
    for (int64_t n : {4096, 16384, 65536})
      keep({k, FNCE_BF16, n, 512});
  keep({LossKind::InfoNce, FNCE_BF16, 16384, 128});
  keep({LossKind::InfoNce, FNCE_BF16, 16384, 1024});
  keep({LossKind::InfoNce, FNCE_F16, 16384, 512});
  keep({LossKind::InfoNce, FNCE_F32, 16384, 512});
  return out;
}

std::vector<Shape> cpu_shapes(const Options& o) {
  std::vector<Shape> out;
  if (o.smoke) {
    out.push_back({LossKind::InfoNce, FNCE_F32, 32, 16});
    out.push_back({LossKind::Clip, FNCE_BF16, 32, 16});
    return out;
  }
  for (LossKind k : kAllLosses)
    for (int64_t n : {64, 256})
      out.push_back({k, FNCE_F32, n, 64});
  out.push_back({LossKind::InfoNce, FNCE_BF16, 256, 64});
  return out;
}

std::vector<Shape> host_shapes(const Options& o) {
  std::vector<Shape> out;
  if (o.smoke) {
    out.push_back({LossKind::Clip, FNCE_F32, 300, 16});
    return out;
  }
  for (LossKind k : {LossKind::InfoNce, LossKind::Clip})
    for (int64_t n : {1024, 4096})
      out.push_back({k, FNCE_F32, n, 256});
  out.push_back({LossKind::Clip, FNCE_BF16, 4096, 256});
  return out;
}

void fill_host_inputs(void* dst, int64_t count, fnceDataType_t dtype, uint64_t seed, int64_t d) {
  // splitmix64 → uniform in [−√3, √3) (unit variance), scaled by 1/√d.
  const float s = std::sqrt(3.f) * 2.f / std::sqrt(float(d));
  uint64_t x = seed;
  for (int64_t k = 0; k < count; ++k) {
    x += 0x9e3779b97f4a7c15ull;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    const float u = float(z >> 40) * (1.f / 16777216.f) - 0.5f; // [−0.5, 0.5)
    store_element(dst, k, dtype, u * s);
  }
}

} // namespace flashnce::bench
