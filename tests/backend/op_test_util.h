#pragma once
// Helpers for the CPU op tests: random data, tensors from vectors and back, and naive
// double-precision references the ops are checked against.
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "backend/backend.h"
#include "tensor/tensor.h"

namespace ebb::test {

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f,
                                        float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

inline Tensor upload(Backend& be, const Shape& shape, const std::vector<float>& v) {
  Tensor t = be.empty(shape);
  be.write(t, v.data(), v.size() * sizeof(float));
  return t;
}

inline std::vector<float> download(Backend& be, const Tensor& t) {
  std::vector<float> v(t.numel());
  be.read(t, v.data(), v.size() * sizeof(float));
  return v;
}

// ‖out − ref‖ / ‖ref‖ (ref: double from a naive reference, or float from another backend)
template <typename Ref>
double relative_error(const std::vector<float>& out, const std::vector<Ref>& ref) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = double(out[i]) - double(ref[i]);
    diff += d * d;
    norm += double(ref[i]) * double(ref[i]);
  }
  return std::sqrt(diff) / std::sqrt(norm);
}

inline std::vector<double> linear_ref(const std::vector<float>& x, const std::vector<float>& w,
                                      const std::vector<float>& b, int64_t m, int64_t k,
                                      int64_t n) {
  std::vector<double> y(m * n);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = b.empty() ? 0.0 : b[j];
      for (int64_t l = 0; l < k; ++l) s += double(x[i * k + l]) * w[j * k + l];
      y[i * n + j] = s;
    }
  return y;
}

struct ConvCase {
  int64_t n, c, h, w, o, kh, kw;
  Conv2dGeometry g;
  int64_t out_h() const { return (h + g.pad_top + g.pad_bottom - kh) / g.stride + 1; }
  int64_t out_w() const { return (w + g.pad_left + g.pad_right - kw) / g.stride + 1; }
};

inline std::vector<double> conv2d_ref(const ConvCase& k, const std::vector<float>& x,
                                      const std::vector<float>& w, const std::vector<float>& b) {
  const int64_t oh = k.out_h(), ow = k.out_w();
  std::vector<double> y(k.n * k.o * oh * ow);
  for (int64_t n = 0; n < k.n; ++n)
    for (int64_t o = 0; o < k.o; ++o)
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) {
          double s = b.empty() ? 0.0 : b[o];
          for (int64_t c = 0; c < k.c; ++c)
            for (int64_t ky = 0; ky < k.kh; ++ky)
              for (int64_t kx = 0; kx < k.kw; ++kx) {
                const int64_t iy = oy * k.g.stride + ky - k.g.pad_top;
                const int64_t ix = ox * k.g.stride + kx - k.g.pad_left;
                if (iy < 0 || iy >= k.h || ix < 0 || ix >= k.w) continue;
                s += double(x[((n * k.c + c) * k.h + iy) * k.w + ix]) *
                     w[((o * k.c + c) * k.kh + ky) * k.kw + kx];
              }
          y[((n * k.o + o) * oh + oy) * ow + ox] = s;
        }
  return y;
}

// Normalises `count` values starting at x[first], reading gamma/beta at index param(i).
template <typename Param>
void normalize_ref(const std::vector<float>& x, int64_t first, int64_t count, double eps, bool rms,
                   const std::vector<float>& gamma, const std::vector<float>& beta, Param param,
                   std::vector<double>& y) {
  double mean = 0, var = 0;
  for (int64_t i = 0; i < count; ++i) mean += x[first + i];
  mean = rms ? 0.0 : mean / count;
  for (int64_t i = 0; i < count; ++i) var += (x[first + i] - mean) * (x[first + i] - mean);
  const double rstd = 1.0 / std::sqrt(var / count + eps);
  for (int64_t i = 0; i < count; ++i) {
    const int64_t p = param(i);
    y[first + i] = (x[first + i] - mean) * rstd * (gamma.empty() ? 1.0 : gamma[p]) +
                   (beta.empty() ? 0.0 : beta[p]);
  }
}

inline std::vector<double> group_norm_ref(const std::vector<float>& x, int64_t n, int64_t c,
                                          int64_t spatial, int64_t groups,
                                          const std::vector<float>& gamma,
                                          const std::vector<float>& beta, double eps) {
  std::vector<double> y(x.size());
  const int64_t per = c / groups * spatial;
  for (int64_t i = 0; i < n * groups; ++i) {
    const int64_t first_channel = (i % groups) * (c / groups);
    normalize_ref(
        x, i * per, per, eps, false, gamma, beta,
        [&](int64_t j) { return first_channel + j / spatial; }, y);
  }
  return y;
}

inline std::vector<double> row_norm_ref(const std::vector<float>& x, int64_t d, bool rms,
                                        const std::vector<float>& gamma,
                                        const std::vector<float>& beta, double eps) {
  std::vector<double> y(x.size());
  for (int64_t r = 0; r < int64_t(x.size()) / d; ++r)
    normalize_ref(
        x, r * d, d, eps, rms, gamma, beta, [](int64_t j) { return j; }, y);
  return y;
}

}  // namespace ebb::test
