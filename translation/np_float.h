// A number as NumPy 2 computes with it, so that scores computed from resampled statistics match sacreBLEU's to the
// bit: a float64 (Python floats and ints, np.float64) or a float32 (np.float32 scalars and arrays). Under NumPy 2's
// promotion rules (NEP 50) a Python number combined with a float32 is converted to float32 first and the result is
// a float32, rounded as such. Files using it are compiled with -ffp-contract=off (no fused multiply-add).
#pragma once
#include <cstdint>

namespace tern {

struct NpFloat {
  double v = 0;
  bool f32 = false;
  NpFloat() = default;
  NpFloat(double x, bool single = false) : v(single ? static_cast<double>(static_cast<float>(x)) : x), f32(single) {}
  NpFloat(int64_t x) : v(static_cast<double>(x)) {}  // NOLINT(google-explicit-constructor): a Python int
  NpFloat(int x) : v(x) {}                           // NOLINT(google-explicit-constructor): a Python int
};

namespace np_detail {
template <class Op>
NpFloat apply(NpFloat a, NpFloat b, Op op) {
  if (a.f32 || b.f32) return {static_cast<double>(op(static_cast<float>(a.v), static_cast<float>(b.v))), true};
  return {op(a.v, b.v), false};
}
}  // namespace np_detail

inline NpFloat operator+(NpFloat a, NpFloat b) {
  return np_detail::apply(a, b, [](auto x, auto y) { return x + y; });
}
inline NpFloat operator-(NpFloat a, NpFloat b) {
  return np_detail::apply(a, b, [](auto x, auto y) { return x - y; });
}
inline NpFloat operator*(NpFloat a, NpFloat b) {
  return np_detail::apply(a, b, [](auto x, auto y) { return x * y; });
}
inline NpFloat operator/(NpFloat a, NpFloat b) {
  return np_detail::apply(a, b, [](auto x, auto y) { return x / y; });
}
inline NpFloat& operator+=(NpFloat& a, NpFloat b) { return a = a + b; }
inline NpFloat& operator/=(NpFloat& a, NpFloat b) { return a = a / b; }

}  // namespace tern
