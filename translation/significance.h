// Confidence intervals and paired significance tests exactly as sacreBLEU 2.x computes them (--confidence,
// --paired-bs, --paired-ar): the same random draws as its NumPy generator (numpy.random.default_rng(seed): PCG64
// seeded through SeedSequence), the same float32 resampled statistics, the same p-values.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "translation/np_float.h"

namespace tern {

// numpy.random.default_rng(seed) and the draws sacreBLEU takes from it.
class NumpyRng {
 public:
  explicit NumpyRng(uint64_t seed);
  uint64_t next64();
  uint32_t next32();  // half of a 64-bit draw, the low half first (NumPy's PCG64 next_uint32)
  // Generator.choice(n, size=(rows, n), replace=True), row-major: Generator.integers(0, n) by Lemire's method.
  std::vector<uint32_t> choice(uint32_t n, int64_t rows);
  // Generator.integers(2, size=count, dtype=bool): 32 coins a 32-bit draw, lowest bit first.
  std::vector<uint8_t> coins(int64_t count);

 private:
  unsigned __int128 state_ = 0, inc_ = 0;
  bool has32_ = false;
  uint32_t half_ = 0;
};

// numpy.sum of a 1-D array: pairwise summation in the array's precision (float32 or float64).
NpFloat numpy_sum(const std::vector<NpFloat>& values);

// One metric on one system: its statistics per segment and how summed statistics become a score.
struct MetricStatistics {
  std::string name;                                           // BLEU, chrF2, chrF2++
  std::vector<std::vector<double>> segments;                  // [segment][statistic] (counts; TER: average lengths)
  std::function<NpFloat(const std::vector<NpFloat>&)> score;  // summed statistics -> score
  std::vector<NpFloat> sums() const;  // the statistics summed over the segments, one after the other (sum_of_lists)
  double corpus_score() const;        // their score
};

struct Confidence {
  NpFloat mean, half_width;  // bootstrap mean and half the 95% interval
};

// `sacrebleu --confidence`: `samples` resamples (Score.estimate_ci: the mean as Python's statistics.mean).
Confidence bootstrap_confidence(const MetricStatistics& m, int64_t samples, uint64_t seed);

// One cell of sacreBLEU's paired-test table.
struct PairedResult {
  double score = 0;
  std::optional<double> p_value;  // not for the baseline
  std::optional<NpFloat> mean, ci;
};

enum class PairedTest { kBootstrap, kRandomization };

// sacreBLEU's PairedTest: systems[s][m] is metric m of system s, systems[0] the baseline. Bootstrap: `samples`
// resamples (every system and the baseline with mean and 95% interval); approximate randomization: `samples` trials
// (scores and p-values only). Returns [system][metric].
std::vector<std::vector<PairedResult>> paired_test(const std::vector<std::vector<MetricStatistics>>& systems,
                                                   PairedTest test, int64_t samples, uint64_t seed);

}  // namespace tern
