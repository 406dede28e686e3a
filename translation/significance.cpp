#include "translation/significance.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <stdexcept>

#include "core/errors.h"

namespace tern {

// ---------------------------------------------------------------------------------------------- NumpyRng

namespace {

// numpy.random.SeedSequence(seed).generate_state(4, np.uint64) (bit_generator.pyx): a pool of four 32-bit words
// mixed from the seed's 32-bit words, then eight words drawn from the pool, paired little-endian into four.
std::array<uint64_t, 4> seed_sequence(uint64_t seed) {
  constexpr uint32_t kInitA = 0x43b0d7e5, kMultA = 0x931e8875, kInitB = 0x8b51f9dd, kMultB = 0x58f38ded;
  constexpr uint32_t kMixL = 0xca01f9dd, kMixR = 0x4973f715;
  std::vector<uint32_t> entropy;
  do {
    entropy.push_back(static_cast<uint32_t>(seed));
    seed >>= 32;
  } while (seed != 0);
  uint32_t hash_const = kInitA;
  auto hashmix = [&](uint32_t v) {
    v ^= hash_const;
    hash_const *= kMultA;
    v *= hash_const;
    return v ^ (v >> 16);
  };
  auto mix = [](uint32_t x, uint32_t y) {
    uint32_t r = kMixL * x - kMixR * y;
    return r ^ (r >> 16);
  };
  std::array<uint32_t, 4> pool{};
  for (size_t i = 0; i < pool.size(); ++i) pool[i] = hashmix(i < entropy.size() ? entropy[i] : 0);
  for (size_t src = 0; src < pool.size(); ++src)
    for (size_t dst = 0; dst < pool.size(); ++dst)
      if (src != dst) pool[dst] = mix(pool[dst], hashmix(pool[src]));
  // Entropy beyond the pool (a seed over 2^128) cannot occur with a 64-bit seed.
  uint32_t hc = kInitB;
  std::array<uint32_t, 8> words{};
  for (size_t i = 0; i < words.size(); ++i) {
    uint32_t v = pool[i % pool.size()];
    v ^= hc;
    hc *= kMultB;
    v *= hc;
    words[i] = v ^ (v >> 16);
  }
  std::array<uint64_t, 4> out{};
  for (size_t i = 0; i < out.size(); ++i) out[i] = words[2 * i] | (static_cast<uint64_t>(words[2 * i + 1]) << 32);
  return out;
}

using u128 = unsigned __int128;
constexpr u128 kPcgMultiplier = (static_cast<u128>(0x2360ED051FC65DA4ULL) << 64) | 0x4385DF649FCCF645ULL;

}  // namespace

NumpyRng::NumpyRng(uint64_t seed) {
  // pcg64_set_seed: state from words 0-1 (high, low), stream from words 2-3; pcg_setseq_128_srandom_r.
  auto w = seed_sequence(seed);
  const u128 init = (static_cast<u128>(w[0]) << 64) | w[1], seq = (static_cast<u128>(w[2]) << 64) | w[3];
  inc_ = (seq << 1) | 1;
  state_ = 0;
  state_ = state_ * kPcgMultiplier + inc_;
  state_ += init;
  state_ = state_ * kPcgMultiplier + inc_;
}

uint64_t NumpyRng::next64() {
  state_ = state_ * kPcgMultiplier + inc_;  // then the XSL-RR output of the new state
  const uint64_t x = static_cast<uint64_t>(state_ >> 64) ^ static_cast<uint64_t>(state_);
  const unsigned rot = static_cast<unsigned>(state_ >> 122);
  return (x >> rot) | (x << ((64 - rot) & 63));
}

uint32_t NumpyRng::next32() {
  if (has32_) {
    has32_ = false;
    return half_;
  }
  const uint64_t v = next64();
  has32_ = true;
  half_ = static_cast<uint32_t>(v >> 32);
  return static_cast<uint32_t>(v);
}

std::vector<uint32_t> NumpyRng::choice(uint32_t n, int64_t rows) {
  if (n == 0) throw std::logic_error("NumpyRng::choice from an empty population");
  std::vector<uint32_t> out(static_cast<size_t>(rows) * n);
  const uint32_t rng = n - 1;  // random_bounded_uint64_fill -> buffered_bounded_lemire_uint32
  for (auto& o : out) {
    if (rng == 0) {
      o = 0;
      continue;
    }
    uint64_t m = static_cast<uint64_t>(next32()) * n;
    auto leftover = static_cast<uint32_t>(m);
    if (leftover < n) {
      const uint32_t threshold = (UINT32_MAX - rng) % n;
      while (leftover < threshold) {
        m = static_cast<uint64_t>(next32()) * n;
        leftover = static_cast<uint32_t>(m);
      }
    }
    o = static_cast<uint32_t>(m >> 32);
  }
  return out;
}

std::vector<uint8_t> NumpyRng::coins(int64_t count) {
  std::vector<uint8_t> out(static_cast<size_t>(count));
  uint32_t buf = 0;
  int left = 0;  // random_bounded_bool_fill: buffered_bounded_bool
  for (auto& o : out) {
    if (left == 0) {
      buf = next32();
      left = 31;
    } else {
      buf >>= 1;
      --left;
    }
    o = buf & 1U;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------- statistics

namespace {

// pairwise_sum (NumPy's loops_utils.h): eight accumulators up to 128 values, halves beyond (at a multiple of 8).
NpFloat pairwise(const NpFloat* a, size_t n, bool f32) {
  if (n < 8) {
    NpFloat r(0.0, f32);
    for (size_t i = 0; i < n; ++i) r += a[i];
    return r;
  }
  if (n <= 128) {
    std::array<NpFloat, 8> r{};
    for (size_t j = 0; j < 8; ++j) r[j] = a[j];
    size_t i = 8;
    for (; i < n - (n % 8); i += 8)
      for (size_t j = 0; j < 8; ++j) r[j] += a[i + j];
    NpFloat res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  size_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise(a, n2, f32) + pairwise(a + n2, n - n2, f32);
}

// np.mean of a 1-D array: its pairwise sum divided by the count, in the array's precision.
NpFloat numpy_mean(const std::vector<NpFloat>& v) { return numpy_sum(v) / NpFloat(static_cast<int64_t>(v.size())); }

// The scores of `rows` resamples: row r sums the float32 statistics of segments idx[r * n .. r * n + n - 1] one
// after the other (stats_np[idxs].sum(0)), then scores them.
std::vector<NpFloat> resampled_scores(const MetricStatistics& m, const std::vector<uint32_t>& idx, int64_t rows) {
  const size_t n = m.segments.size(), k = m.segments.front().size();
  std::vector<NpFloat> scores;
  scores.reserve(static_cast<size_t>(rows));
  std::vector<float> sum(k);
  std::vector<NpFloat> as_np(k);
  for (int64_t r = 0; r < rows; ++r) {
    std::fill(sum.begin(), sum.end(), 0.0F);
    for (size_t i = 0; i < n; ++i) {
      const auto& seg = m.segments[idx[static_cast<size_t>(r) * n + i]];
      for (size_t j = 0; j < k; ++j) sum[j] += static_cast<float>(seg[j]);
    }
    for (size_t j = 0; j < k; ++j) as_np[j] = NpFloat(sum[j], true);
    scores.push_back(m.score(as_np));
  }
  // np.array of the scores: float32 only when every score is one (a Python float 0.0 among them makes it float64).
  const bool all_f32 = std::all_of(scores.begin(), scores.end(), [](const NpFloat& s) { return s.f32; });
  if (!all_f32)
    for (auto& s : scores) s.f32 = false;
  return scores;
}

// The 2.5% and 97.5% points of the sorted scores, halved (sacreBLEU's "± CI"), and the scores' mean.
struct Interval {
  NpFloat mean, half;
};

// significance.estimate_ci: np.sort, then the interval and np.mean of the sorted array.
Interval estimate_ci(std::vector<NpFloat> s) {
  std::sort(s.begin(), s.end(), [](const NpFloat& a, const NpFloat& b) { return a.v < b.v; });
  const size_t lower = s.size() / 40, upper = s.size() - lower - 1;
  return {numpy_mean(s), NpFloat(0.5) * (s[upper] - s[lower])};
}

// _compute_p_value: (c + 1) / (trials + 1), c the trials whose statistic exceeds the real difference (compared in
// the statistics' precision, as NumPy compares a float32 array with a Python float).
double p_value(const std::vector<NpFloat>& stats, double real_difference) {
  int64_t c = 0;
  for (const auto& s : stats)
    c += s.f32 ? static_cast<float>(s.v) > static_cast<float>(real_difference) : s.v > real_difference;
  return static_cast<double>(c + 1) / static_cast<double>(stats.size() + 1);
}

std::vector<NpFloat> sums_of(const std::vector<double>& total) { return {total.begin(), total.end()}; }

void check_systems(const std::vector<std::vector<MetricStatistics>>& systems) {
  if (systems.size() < 2) throw std::logic_error("paired_test needs a baseline and a system");
  for (const auto& s : systems) {
    if (s.size() != systems[0].size()) throw std::logic_error("paired_test: systems with different metrics");
    for (size_t m = 0; m < s.size(); ++m)
      if (s[m].segments.size() != systems[0][m].segments.size() || s[m].segments.empty())
        throw std::logic_error("paired_test: systems with different numbers of segments");
  }
  if (systems[0][0].segments.size() > UINT32_MAX) throw DataError("paired tests take at most 2^32 - 1 segments");
}

}  // namespace

NpFloat numpy_sum(const std::vector<NpFloat>& values) {
  const bool f32 = !values.empty() && values.front().f32;
  return NpFloat(0.0, f32) + pairwise(values.data(), values.size(), f32);
}

std::vector<NpFloat> MetricStatistics::sums() const {
  std::vector<double> total(segments.front().size(), 0.0);
  for (const auto& s : segments)
    for (size_t j = 0; j < s.size(); ++j) total[j] += s[j];
  return sums_of(total);
}

double MetricStatistics::corpus_score() const { return score(sums()).v; }

Confidence bootstrap_confidence(const MetricStatistics& m, int64_t samples, uint64_t seed) {
  if (m.segments.empty() || m.segments.size() > UINT32_MAX)
    throw DataError(fmt::format("bootstrap resampling needs 1 to 2^32 - 1 segments (got {})", m.segments.size()));
  NumpyRng rng(seed);
  auto idx = rng.choice(static_cast<uint32_t>(m.segments.size()), samples);
  auto scores = resampled_scores(m, idx, samples);
  // statistics.mean: the exact mean, rounded once (here through 64-bit long double sums: the same double unless the
  // exact mean lies within ~1e-19 of a rounding boundary), converted to the scores' type.
  long double sum = 0;
  for (const auto& s : scores) sum += s.v;
  const bool f32 = scores.front().f32;
  return {NpFloat(static_cast<double>(sum / static_cast<long double>(scores.size())), f32), estimate_ci(scores).half};
}

std::vector<std::vector<PairedResult>> paired_test(const std::vector<std::vector<MetricStatistics>>& systems,
                                                   PairedTest test, int64_t samples, uint64_t seed) {
  check_systems(systems);
  const size_t n = systems[0][0].segments.size(), metrics = systems[0].size();
  std::vector<std::vector<PairedResult>> out(systems.size(), std::vector<PairedResult>(metrics));
  // The baseline: its score, and with bootstrap its resampled mean and interval (_bootstrap_resample, estimate_ci).
  std::vector<uint32_t> idx;
  if (test == PairedTest::kBootstrap) idx = NumpyRng(seed).choice(static_cast<uint32_t>(n), samples);
  std::vector<std::vector<NpFloat>> baseline_resampled(metrics);
  for (size_t m = 0; m < metrics; ++m) {
    auto& r = out[0][m];
    r.score = systems[0][m].corpus_score();
    if (test == PairedTest::kBootstrap) {
      baseline_resampled[m] = resampled_scores(systems[0][m], idx, samples);
      auto ci = estimate_ci(baseline_resampled[m]);
      r.mean = ci.mean, r.ci = ci.half;
    }
  }
  for (size_t s = 1; s < systems.size(); ++s) {
    NumpyRng rng(seed);  // each system's test draws anew from the same seed
    std::vector<uint8_t> pos;
    if (test == PairedTest::kRandomization) pos = rng.coins(samples * static_cast<int64_t>(n));
    for (size_t m = 0; m < metrics; ++m) {
      const auto& bl = systems[0][m];
      const auto& sys = systems[s][m];
      auto& r = out[s][m];
      r.score = sys.corpus_score();
      const double diff = std::abs(out[0][m].score - r.score);
      std::vector<NpFloat> stats;
      if (test == PairedTest::kBootstrap) {
        auto sys_resampled = resampled_scores(sys, idx, samples);
        auto ci = estimate_ci(sys_resampled);
        r.mean = ci.mean, r.ci = ci.half;
        std::vector<NpFloat> diffs;
        for (int64_t t = 0; t < samples; ++t) {
          NpFloat d = sys_resampled[t] - baseline_resampled[m][t];
          diffs.push_back(NpFloat(std::abs(d.v), d.f32));
        }
        const NpFloat mean = numpy_mean(diffs);
        for (const auto& d : diffs) stats.push_back(d - mean);
      } else {
        // shuf_a = pos @ bl + ~pos @ sys, shuf_b the other way round: sums of counts, exact in any order (TER's
        // average reference lengths of 3+ references excepted: NumPy's matrix product may add them in another
        // order), scores in float64. shuf_a = sum(sys) + the (bl - sys) of the segments drawn for the baseline; shuf_b
        // = both sums - shuf_a.
        const size_t k = bl.segments.front().size();
        std::vector<double> sys_total(k, 0), both(k, 0);
        std::vector<std::vector<double>> delta(n, std::vector<double>(k));
        for (size_t i = 0; i < n; ++i)
          for (size_t j = 0; j < k; ++j) {
            sys_total[j] += sys.segments[i][j];
            both[j] += sys.segments[i][j] + bl.segments[i][j];
            delta[i][j] = bl.segments[i][j] - sys.segments[i][j];
          }
        std::vector<double> a(k), b(k);
        for (int64_t t = 0; t < samples; ++t) {
          a = sys_total;
          const uint8_t* p = pos.data() + static_cast<size_t>(t) * n;
          for (size_t i = 0; i < n; ++i)
            if (p[i])
              for (size_t j = 0; j < k; ++j) a[j] += delta[i][j];
          for (size_t j = 0; j < k; ++j) b[j] = both[j] - a[j];
          stats.emplace_back(std::abs(bl.score(sums_of(a)).v - bl.score(sums_of(b)).v));
        }
      }
      r.p_value = p_value(stats, diff);
    }
  }
  return out;
}

}  // namespace tern
