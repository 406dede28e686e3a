#include "translation/ter.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <tuple>

#include "data/text.h"
#include "translation/bleu.h"
#include "translation/gram_counts.h"

namespace tern {
namespace {

// lib_ter's constants.
constexpr int64_t kMaxShiftSize = 10, kMaxShiftDist = 50, kBeamWidth = 25, kMaxShiftCandidates = 1000;
constexpr int64_t kInfinity = 10'000'000'000'000'000;  // int(1e16)

bool in(char32_t c, char32_t lo, char32_t hi) { return c >= lo && c <= hi; }

// TercomTokenizer.ASIAN_PUNCT and FULL_WIDTH_PUNCT.
bool asian_punct(char32_t c) {
  return c == 0x3001 || c == 0x3002 || in(c, 0x3008, 0x3011) || in(c, 0x3014, 0x301F) || in(c, 0xFF61, 0xFF65) ||
         c == 0x30FB;
}
bool full_width_punct(char32_t c) {
  return c == 0xFF0E || c == 0xFF0C || c == 0xFF1F || c == 0xFF1A || c == 0xFF1B || c == 0xFF01 || c == 0xFF02 ||
         c == 0xFF08 || c == 0xFF09;
}

// _normalize_asian: CJK ideographs, strokes, radicals, compatibility forms and the punctuation become words of
// their own (each substitution only adds spaces around a character; the spaces collapse when the words are split).
// Its three kana rules match only a line made of kana alone, which the normalization's padding spaces rule out.
bool asian_split(char32_t c) {
  return in(c, 0x4E00, 0x9FFF) || in(c, 0x3400, 0x4DBF) || in(c, 0x31C0, 0x31EF) || in(c, 0x2E80, 0x2EFF) ||
         in(c, 0x3300, 0x33FF) || in(c, 0xF900, 0xFAFF) || in(c, 0xFE30, 0xFE4F) || in(c, 0x3200, 0x3F22) ||
         asian_punct(c) || full_width_punct(c);
}

struct Cell {
  int64_t cost;
  char op;  // ' ' match, 's' substitution, 'i' insertion, 'd' deletion, 'x' not computed
};

// BeamEditDistance: Levenshtein distance of the hypothesis to the reference, computed only within a band around
// the length-scaled diagonal (the last row in full), and the trace of operations. (lib_ter caches rows of earlier
// calls; they hold exactly what this computes again.)
class BeamEditDistance {
 public:
  explicit BeamEditDistance(const std::vector<uint32_t>& ref) : ref_(ref) {}

  std::pair<int64_t, std::string> operator()(const std::vector<uint32_t>& h) {
    const int64_t nh = static_cast<int64_t>(h.size()), nr = static_cast<int64_t>(ref_.size()), w = nr + 1;
    dist_.assign(static_cast<size_t>((nh + 1) * w), Cell{kInfinity, 'x'});
    auto at = [&](int64_t i, int64_t j) -> Cell& { return dist_[static_cast<size_t>(i * w + j)]; };
    for (int64_t j = 0; j <= nr; ++j) at(0, j) = {j, 'i'};
    const double ratio = nh > 0 ? static_cast<double>(nr) / static_cast<double>(nh) : 1.0;
    const int64_t beam = static_cast<double>(kBeamWidth) < ratio / 2
                             ? static_cast<int64_t>(std::ceil(ratio / 2 + kBeamWidth))
                             : kBeamWidth;
    for (int64_t i = 1; i <= nh; ++i) {
      const auto diag = static_cast<int64_t>(std::floor(static_cast<double>(i) * ratio));
      const int64_t min_j = std::max<int64_t>(0, diag - beam);
      const int64_t max_j = i == nh ? nr + 1 : std::min(nr + 1, diag + beam);
      for (int64_t j = min_j; j < max_j; ++j) {
        Cell& c = at(i, j);
        if (j == 0) {
          c = {at(i - 1, 0).cost + 1, 'd'};
          continue;
        }
        const bool same = h[static_cast<size_t>(i - 1)] == ref_[static_cast<size_t>(j - 1)];
        const std::array<Cell, 3> ops{Cell{at(i - 1, j - 1).cost + (same ? 0 : 1), same ? ' ' : 's'},
                                      Cell{at(i - 1, j).cost + 1, 'd'}, Cell{at(i, j - 1).cost + 1, 'i'}};
        for (const auto& o : ops)
          if (c.cost > o.cost) c = o;
      }
    }
    std::string trace;
    for (int64_t i = nh, j = nr; i > 0 || j > 0;) {
      const char op = at(i, j).op;
      trace += op;
      if (op == 's' || op == ' ') {
        --i, --j;
      } else if (op == 'i') {
        --j;
      } else if (op == 'd') {
        --i;
      } else {
        throw std::logic_error("TER: the edit distance's trace left the beam");
      }
    }
    std::reverse(trace.begin(), trace.end());
    return {at(nh, nr).cost, trace};
  }

 private:
  const std::vector<uint32_t>& ref_;
  std::vector<Cell> dist_;
};

// _perform_shift: the block words[start, start + length) moved to before position `target` (Python's clamped
// slices).
std::vector<uint32_t> perform_shift(const std::vector<uint32_t>& w, int64_t start, int64_t length, int64_t target) {
  const auto n = static_cast<int64_t>(w.size());
  auto slice = [&](std::vector<uint32_t>& out, int64_t a, int64_t b) {
    a = std::clamp<int64_t>(a, 0, n), b = std::clamp<int64_t>(b, 0, n);
    if (a < b) out.insert(out.end(), w.begin() + a, w.begin() + b);
  };
  std::vector<uint32_t> out;
  out.reserve(w.size());
  if (target < start) {
    slice(out, 0, target), slice(out, start, start + length), slice(out, target, start), slice(out, start + length, n);
  } else if (target > start + length) {
    slice(out, 0, start), slice(out, start + length, target), slice(out, start, start + length), slice(out, target, n);
  } else {
    slice(out, 0, start), slice(out, start + length, length + target), slice(out, start, start + length);
    slice(out, length + target, n);
  }
  return out;
}

// _shift: the shift of a block of hypothesis words that lowers the edit distance most (then the longest block, the
// earliest, the earliest target), among blocks that also occur in the reference within kMaxShiftDist positions,
// are misaligned on both sides and do not stay where the alignment already puts them.
std::tuple<int64_t, std::vector<uint32_t>, int64_t> best_shift(const std::vector<uint32_t>& h,
                                                               const std::vector<uint32_t>& r, BeamEditDistance& ed,
                                                               int64_t checked) {
  auto [pre_score, inv_trace] = ed(h);
  // trace_to_alignment of the flipped trace (insertions and deletions swapped).
  const auto nh = static_cast<int64_t>(h.size()), nr = static_cast<int64_t>(r.size());
  std::vector<int64_t> align(static_cast<size_t>(nr), -2);  // reference position -> hypothesis position
  std::vector<int> hyp_err, ref_err;
  int64_t ph = -1, pr = -1;
  for (char op : inv_trace) {
    if (op == 'i')
      op = 'd';
    else if (op == 'd')
      op = 'i';
    if (op == ' ' || op == 's') {
      ++ph, ++pr;
      align[static_cast<size_t>(pr)] = ph;
      hyp_err.push_back(op == 's');
      ref_err.push_back(op == 's');
    } else if (op == 'i') {
      ++ph;
      hyp_err.push_back(1);
    } else {
      ++pr;
      align[static_cast<size_t>(pr)] = ph;
      ref_err.push_back(1);
    }
  }
  auto errors = [](const std::vector<int>& e, int64_t a, int64_t len) {
    int s = 0;
    for (int64_t k = a; k < std::min<int64_t>(a + len, static_cast<int64_t>(e.size())); ++k)
      s += e[static_cast<size_t>(k)];
    return s;
  };
  bool found = false;
  std::array<int64_t, 4> best{};  // (score gain, length, -start_h, -target)
  std::vector<uint32_t> best_words;
  for (int64_t sh = 0; sh < nh && checked < kMaxShiftCandidates; ++sh) {
    for (int64_t sr = 0; sr < nr && checked < kMaxShiftCandidates; ++sr) {
      if (std::abs(sr - sh) > kMaxShiftDist) continue;
      // _find_shifted_pairs: every length of the common block starting here, up to kMaxShiftSize.
      for (int64_t len = 1; len <= kMaxShiftSize; ++len) {
        if (h[static_cast<size_t>(sh + len - 1)] != r[static_cast<size_t>(sr + len - 1)]) break;
        if (errors(hyp_err, sh, len) != 0 && errors(ref_err, sr, len) != 0 &&
            !(sh <= align[static_cast<size_t>(sr)] && align[static_cast<size_t>(sr)] < sh + len)) {
          int64_t prev = -1;
          for (int64_t off = -1; off < len; ++off) {
            int64_t idx = 0;
            if (sr + off == -1) {
              idx = 0;
            } else if (sr + off < nr && align[static_cast<size_t>(sr + off)] != -2) {
              idx = align[static_cast<size_t>(sr + off)] + 1;
            } else {
              break;
            }
            if (idx == prev) continue;
            prev = idx;
            auto shifted = perform_shift(h, sh, len, idx);
            std::array<int64_t, 4> cand{pre_score - ed(shifted).first, len, -sh, -idx};
            ++checked;
            if (!found || cand > best) found = true, best = cand, best_words = std::move(shifted);
          }
          if (checked >= kMaxShiftCandidates) break;  // checked after each block, as the generator loop does
        }
        if (sh + len == nh || sr + len == nr) break;
      }
    }
  }
  if (!found) return {0, h, checked};
  return {best[0], best_words, checked};
}

}  // namespace

std::u32string tercom_tokenize(const std::u32string& line, const TerOptions& opt) {
  if (line.empty()) return U"";
  std::u32string s = opt.case_sensitive ? line : py_lower(line);
  if (opt.normalized) {
    s = mteval_normalize(s, /*tercom=*/true);
    if (opt.asian_support) {
      std::u32string t;
      for (char32_t c : s) {
        if (asian_split(c))
          (t += U' ') += c, t += U' ';
        else
          t += c;
      }
      s = t;
    }
  }
  if (opt.no_punct) {
    std::u32string t;
    for (char32_t c : s)
      if (std::u32string_view(U".,?:;!\"()").find(c) == std::u32string_view::npos &&
          !(opt.asian_support && (asian_punct(c) || full_width_punct(c))))
        t += c;
    s = t;
  }
  return join_words(s);
}

std::pair<int64_t, int64_t> translation_edit_rate(const std::vector<uint32_t>& hyp, const std::vector<uint32_t>& ref) {
  if (ref.empty()) return {static_cast<int64_t>(hyp.size()), 0};
  BeamEditDistance ed(ref);
  int64_t shifts = 0, checked = 0;
  std::vector<uint32_t> words = hyp;
  while (true) {
    auto [delta, shifted, now_checked] = best_shift(words, ref, ed, checked);
    checked = now_checked;
    if (checked >= kMaxShiftCandidates || delta <= 0) break;
    ++shifts;
    words = std::move(shifted);
  }
  return {shifts + ed(words).first, static_cast<int64_t>(ref.size())};
}

std::vector<std::vector<double>> ter_statistics(const std::vector<std::string>& hyps,
                                                const std::vector<std::vector<std::string>>& refs,
                                                const TerOptions& opt) {
  check_reference_streams(hyps.size(), refs, "TER");
  WordIds ids;
  auto words = [&](const std::u32string& s) { return ids(py_split(s)); };
  // sacreBLEU tokenizes each reference twice (TER._extract_reference_info tokenizes the lines _cache_references has
  // tokenized already), and the tercom tokenizer is not idempotent (lowercasing, "x's\u3000y" -> "x's y" ->
  // "x 's y"): kept, since its scores are the ones published.
  auto hyp_words = [&](const std::string& s) { return words(tercom_tokenize(py_rstrip(utf8_decode(s)), opt)); };
  auto ref_words = [&](const std::string& s) {
    return words(tercom_tokenize(tercom_tokenize(py_rstrip(utf8_decode(s)), opt), opt));
  };
  std::vector<std::vector<double>> out;
  out.reserve(hyps.size());
  for (size_t i = 0; i < hyps.size(); ++i) {
    const auto h = hyp_words(hyps[i]);
    int64_t ref_lengths = 0, best = kInfinity;
    for (const auto& stream : refs) {
      auto [edits, len] = translation_edit_rate(h, ref_words(stream[i]));
      ref_lengths += len;
      best = std::min(best, edits);
    }
    out.push_back({static_cast<double>(best), static_cast<double>(ref_lengths) / static_cast<double>(refs.size())});
  }
  return out;
}

NpFloat ter_score_of(const std::vector<NpFloat>& stats) {
  if (stats.size() != 2) throw std::logic_error(fmt::format("TER statistics: {} values", stats.size()));
  const NpFloat edits = stats[0], ref_len = stats[1];
  NpFloat score(0.0);
  if (ref_len.v > 0)
    score = edits / ref_len;
  else if (edits.v > 0)
    score = NpFloat(1.0);  // empty references and a non-empty hypothesis
  return NpFloat(100) * score;
}

TerScore ter_from_statistics(const std::vector<NpFloat>& stats, size_t nrefs, const TerOptions& opt) {
  TerScore t;
  t.score = ter_score_of(stats).v;
  t.num_edits = stats[0].v, t.ref_length = stats[1].v;
  auto yn = [](bool b) { return b ? "yes" : "no"; };
  t.signature = fmt::format("nrefs:{}|case:{}|tok:tercom|norm:{}|punct:{}|asian:{}|version:{}", nrefs,
                            opt.case_sensitive ? "mixed" : "lc", yn(opt.normalized), yn(!opt.no_punct),
                            yn(opt.asian_support), kSacreBleuVersion);
  return t;
}

TerScore corpus_ter(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                    const TerOptions& opt) {
  std::vector<double> total(2, 0.0);
  for (const auto& s : ter_statistics(hyps, refs, opt)) total[0] += s[0], total[1] += s[1];
  return ter_from_statistics({NpFloat(total[0]), NpFloat(total[1])}, refs.size(), opt);
}

}  // namespace tern
