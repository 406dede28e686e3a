#include "translation/bleu.h"

#include <fmt/format.h>

#include <cmath>
#include <cwctype>
#include <stdexcept>

#include <unicode/uchar.h>

#include "core/errors.h"
#include "data/text.h"
#include "translation/gram_counts.h"

namespace tern {
namespace {

bool is_digit(char32_t c) { return c >= '0' && c <= '9'; }

// [\{-\~\[-\` -\&\(-\+\:-\@\/]
bool punct_13a(char32_t c) {
  return (c >= 0x7B && c <= 0x7E) || (c >= 0x5B && c <= 0x60) || (c >= 0x20 && c <= 0x26) || (c >= 0x28 && c <= 0x2B) ||
         (c >= 0x3A && c <= 0x40) || c == 0x2F;
}

std::u32string replace_all(std::u32string s, const std::u32string& from, const std::u32string& to) {
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::u32string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

// Python's re.sub for a two-character pattern (a)(b) -> repl, scanning left to right without overlap.
template <typename A, typename B, typename R>
std::u32string sub2(const std::u32string& s, A a, B b, R repl) {
  std::u32string out;
  out.reserve(s.size() + 16);
  size_t i = 0;
  while (i < s.size()) {
    if (i + 1 < s.size() && a(s[i]) && b(s[i + 1])) {
      repl(out, s[i], s[i + 1]);
      i += 2;
    } else {
      out += s[i++];
    }
  }
  return out;
}

}  // namespace

namespace {

// sacreBLEU's TokenizerRegexp before its final split: ASCII punctuation spaced out, '.' and ',' split off unless
// between digits, a digit's '-' split off; `tercom` also splits off "'s" (tercom's normalization, between the first
// step and the others).
std::u32string regexp_steps(const std::u32string& line, bool tercom) {
  std::u32string t;
  for (char32_t c : line) {
    if (punct_13a(c)) {
      t += U' ';
      t += c;
      t += U' ';
    } else {
      t += c;
    }
  }
  if (tercom) {  // re.sub(r"'s ", r" 's ", ...), re.sub(r"'s$", r" 's", ...)
    t = replace_all(t, U"'s ", U" 's ");
    if (t.size() >= 2 && t.compare(t.size() - 2, 2, U"'s") == 0) t.insert(t.size() - 2, U" ");
  }
  auto dot_comma = [](char32_t c) { return c == '.' || c == ','; };
  auto not_digit = [](char32_t c) { return !is_digit(c); };
  t = sub2(t, not_digit, dot_comma,
           [](std::u32string& o, char32_t x, char32_t y) { o += x, o += U' ', o += y, o += U' '; });
  t = sub2(t, dot_comma, not_digit,
           [](std::u32string& o, char32_t x, char32_t y) { o += U' ', o += x, o += U' ', o += y; });
  return sub2(
      t, is_digit, [](char32_t c) { return c == '-'; },
      [](std::u32string& o, char32_t x, char32_t y) { o += x, o += U' ', o += y, o += U' '; });
}

}  // namespace

std::u32string mteval_normalize(std::u32string line, bool tercom) {
  if (line.find(U'&') != std::u32string::npos) {
    line = replace_all(line, U"&quot;", U"\"");
    line = replace_all(line, U"&amp;", U"&");
    line = replace_all(line, U"&lt;", U"<");
    line = replace_all(line, U"&gt;", U">");
  }
  return regexp_steps(U" " + line + U" ", tercom);
}

namespace {

std::u32string tokenize_13a_u32(std::u32string line) {
  line = replace_all(line, U"<skipped>", U"");
  line = replace_all(line, U"-\n", U"");
  line = replace_all(line, U"\n", U" ");
  return join_words(mteval_normalize(line, /*tercom=*/false));
}

// mteval-v14 international tokenization (sacreBLEU's TokenizerV14International), with ICU's Unicode categories:
// (\P{N})(\p{P}) -> "\1 \2 ", (\p{P})(\P{N}) -> " \1 \2", (\p{S}) -> " \1 ".
std::u32string tokenize_intl_u32(const std::u32string& line) {
  auto P = [](char32_t c) { return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_P_MASK) != 0; };
  auto not_N = [](char32_t c) { return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_N_MASK) == 0; };
  auto t =
      sub2(line, not_N, P, [](std::u32string& o, char32_t x, char32_t y) { o += x, o += U' ', o += y, o += U' '; });
  t = sub2(t, P, not_N, [](std::u32string& o, char32_t x, char32_t y) { o += U' ', o += x, o += U' ', o += y; });
  std::u32string out;
  for (char32_t c : t) {
    if (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_S_MASK) {
      out += U' ';
      out += c;
      out += U' ';
    } else {
      out += c;
    }
  }
  return join_words(out);
}

// sacreBLEU's TokenizerZh: the line stripped, each "Chinese" character spaced out, then TokenizerRegexp (13a's
// regular expressions without its entity unescaping and padding). Its table of ranges compares one-character strings
// with Python string bounds, and two bounds written as 5-digit "\u" escapes are two characters ('\u2000' '0' ..
// '\u2a6d' '6', '\u2f80' '0' .. '\u2fa1' 'd'): they hold U+2001..U+2A6D and U+2F81..U+2FA1 (general punctuation,
// currency signs, arrows, mathematical operators...), not CJK Extension B. Kept as sacreBLEU computes it.
bool zh_char(char32_t c) {
  static constexpr std::pair<char32_t, char32_t> kRanges[] = {
      {0x3400, 0x4db5}, {0x4e00, 0x9fa5}, {0x9fa6, 0x9fbb}, {0xf900, 0xfa2d}, {0xfa30, 0xfa6a}, {0xfa70, 0xfad9},
      {0x2001, 0x2a6d}, {0x2f81, 0x2fa1}, {0xff00, 0xffef}, {0x2e80, 0x2eff}, {0x3000, 0x303f}, {0x31c0, 0x31ef},
      {0x2f00, 0x2fdf}, {0x2ff0, 0x2fff}, {0x3100, 0x312f}, {0x31a0, 0x31bf}, {0xfe10, 0xfe1f}, {0xfe30, 0xfe4f},
      {0x2600, 0x26ff}, {0x2700, 0x27bf}, {0x3200, 0x32ff}, {0x3300, 0x33ff}};
  for (const auto& [lo, hi] : kRanges)
    if (c >= lo && c <= hi) return true;
  return false;
}

std::u32string tokenize_zh_u32(const std::u32string& line) {
  size_t begin = 0, end = line.size();
  while (begin < end && py_space(line[begin])) ++begin;  // str.strip()
  while (end > begin && py_space(line[end - 1])) --end;
  std::u32string spaced;
  for (size_t i = begin; i < end; ++i) {
    if (zh_char(line[i])) {
      spaced += U' ';
      spaced += line[i];
      spaced += U' ';
    } else {
      spaced += line[i];
    }
  }
  return join_words(regexp_steps(spaced, /*tercom=*/false));
}

}  // namespace

std::vector<std::u32string> py_split(const std::u32string& s) {
  std::vector<std::u32string> out;
  std::u32string cur;
  for (char32_t c : s) {
    if (py_space(c)) {
      if (!cur.empty()) out.push_back(cur), cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

std::u32string join_words(const std::u32string& t) {
  std::u32string out;
  for (const auto& w : py_split(t)) {
    if (!out.empty()) out += U' ';
    out += w;
  }
  return out;
}

std::u32string py_rstrip(std::u32string s) {
  while (!s.empty() && py_space(s.back())) s.pop_back();
  return s;
}

std::u32string py_lower(std::u32string s) {
  // Python's str.lower(): the simple mapping of every code point (the C.UTF-8 locale's towlower agrees with Python
  // 3.11's on all of them, checked over U+0000..U+10FFFF) but for U+0130 'İ', whose full mapping is "i\u0307", and
  // U+03A3 'Σ', which becomes final 'ς' after a cased letter and not before one (case-ignorable characters skipped
  // both ways), as CPython's handle_capital_sigma decides.
  auto cased = [](char32_t c) { return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_CASED) != 0; };
  auto ignorable = [](char32_t c) { return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_CASE_IGNORABLE) != 0; };
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const char32_t c = s[i];
    if (c == 0x130) {
      out += U"i\u0307";
    } else if (c == 0x3A3) {
      size_t j = i;
      while (j > 0 && ignorable(s[j - 1])) --j;
      bool final_sigma = j > 0 && cased(s[j - 1]);
      if (final_sigma) {
        size_t k = i + 1;
        while (k < s.size() && ignorable(s[k])) ++k;
        final_sigma = k == s.size() || !cased(s[k]);
      }
      out += final_sigma ? char32_t{0x3C2} : char32_t{0x3C3};
    } else {
      out += static_cast<char32_t>(std::towlower(static_cast<wint_t>(c)));
    }
  }
  return out;
}

void check_bleu_tokenizer(const std::string& name) {
  if (name == "13a" || name == "intl" || name == "char" || name == "zh" || name == "none") return;
  if (name == "ja-mecab" || name == "ko-mecab")
    throw ConfigError("BLEU tokenizer " + name +
                      " needs MeCab and its dictionary, which tern does not have: score with sacreBLEU "
                      "(pip install 'sacrebleu[" +
                      name.substr(0, 2) + "]'), or give --tokenize char or intl");
  // spBLEU: tern links SentencePiece 0.1.97 (Debian), which breaks ties between equally scored segmentations
  // ("1,000" -> "00 0") otherwise than the sentencepiece 0.2 that sacreBLEU installs ("0 00"): the BLEU would differ.
  if (name == "spm" || name == "flores101" || name == "flores200" || name == "spBLEU-1K")
    throw ConfigError("BLEU tokenizer " + name +
                      " (spBLEU) is not available: it needs sacreBLEU's SentencePiece model and the segmentation "
                      "of sentencepiece 0.2, which splits some lines otherwise than the SentencePiece 0.1.97 tern "
                      "links, so the score would not be sacreBLEU's; score with sacreBLEU, or give --tokenize 13a, "
                      "intl, char or zh");
  throw ConfigError("BLEU tokenizer must be 13a, intl, char, zh or none (got " + name + ")");
}

std::u32string sacrebleu_tokenize(const std::u32string& line, const std::string& tokenizer) {
  if (tokenizer == "13a") return tokenize_13a_u32(line);
  if (tokenizer == "intl") return tokenize_intl_u32(line);
  if (tokenizer == "char") {
    std::u32string out;
    for (char32_t c : line) (out += out.empty() ? U"" : U" ") += c;
    return out;
  }
  if (tokenizer == "zh") return tokenize_zh_u32(line);
  if (tokenizer == "none") return line;
  check_bleu_tokenizer(tokenizer);
  throw ConfigError("BLEU tokenizer " + tokenizer + " is not available");
}

namespace {

double my_log(double x) { return x == 0.0 ? -9999999999.0 : std::log(x); }

}  // namespace

void check_reference_streams(size_t hypotheses, const std::vector<std::vector<std::string>>& refs,
                             const std::string& metric) {
  if (refs.empty()) throw DataError(metric + " needs at least one reference stream");
  for (size_t r = 0; r < refs.size(); ++r)
    if (refs[r].size() != hypotheses)
      throw DataError(fmt::format("reference stream {} has {} lines but there are {} hypotheses", r + 1, refs[r].size(),
                                  hypotheses));
}

std::string tokenize_13a(const std::string& line) { return utf8_encode(tokenize_13a_u32(utf8_decode(line))); }

namespace {

void check_bleu_options(const BleuOptions& opt) {
  check_bleu_tokenizer(opt.tokenize);
  if (opt.smooth != "exp" && opt.smooth != "none" && opt.smooth != "floor" && opt.smooth != "add-k")
    throw ConfigError("BLEU smoothing must be exp, none, floor or add-k (got " + opt.smooth + ")");
  if (opt.max_order < 1 || opt.max_order > kMaxGram)
    throw ConfigError(fmt::format("BLEU max order must be between 1 and {} (got {})", kMaxGram, opt.max_order));
}

}  // namespace

std::vector<std::vector<int64_t>> bleu_statistics(const std::vector<std::string>& hyps,
                                                  const std::vector<std::vector<std::string>>& refs,
                                                  const BleuOptions& opt) {
  check_bleu_options(opt);
  check_reference_streams(hyps.size(), refs, "BLEU");
  const int N = opt.max_order;
  auto prep = [&](const std::string& s) {
    std::u32string u = utf8_decode(s);
    if (opt.lowercase) u = py_lower(u);
    return py_split(sacrebleu_tokenize(py_rstrip(u), opt.tokenize));
  };
  std::vector<std::vector<int64_t>> out;
  out.reserve(hyps.size());
  WordIds ids;
  std::vector<Gram> grams;
  for (size_t i = 0; i < hyps.size(); ++i) {
    GramCounts ref_max;
    std::vector<int64_t> ref_lens;
    for (const auto& stream : refs) {
      auto toks = ids(prep(stream[i]));
      ref_lens.push_back(static_cast<int64_t>(toks.size()));
      grams.clear();
      add_grams(toks, N, grams);
      ref_max = ref_max.items().empty() ? count_grams(grams) : max_counts(std::move(ref_max), count_grams(grams));
    }
    auto htoks = ids(prep(hyps[i]));
    int64_t hlen = static_cast<int64_t>(htoks.size());
    // Closest reference length, the shorter one on ties.
    int64_t best = -1, best_diff = -1;
    for (int64_t rl : ref_lens) {
      int64_t d = std::llabs(hlen - rl);
      if (best_diff == -1 || d < best_diff)
        best_diff = d, best = rl;
      else if (d == best_diff && rl < best)
        best = rl;
    }
    std::vector<int64_t> st(2 + 2 * N, 0);  // hyp_len, ref_len, correct_1..N, total_1..N
    st[0] = hlen, st[1] = best;
    grams.clear();
    add_grams(htoks, N, grams);
    match_counts(count_grams(grams), ref_max, [&](int n, int64_t c, int64_t m) {
      st[2 + N + n - 1] += c;
      st[2 + n - 1] += m;
    });
    out.push_back(std::move(st));
  }
  return out;
}

namespace {

// BLEU.compute_bleu: the score, precisions and brevity penalty into `b` (its lengths and counts already set).
void compute_bleu(const std::vector<NpFloat>& stats, const BleuOptions& opt, BleuScore& b) {
  const int N = opt.max_order;
  b.precisions.assign(N, 0.0);
  b.bp = 1;
  b.score = 0;
  if (b.sys_len < b.ref_len) b.bp = b.sys_len > 0 ? std::exp(1.0 - static_cast<double>(b.ref_len) / b.sys_len) : 0.0;
  bool any = false;
  for (int n = 0; n < N; ++n) any = any || stats[2 + n].v != 0;
  if (!any) return;
  // Step by step as sacreBLEU: float32 statistics (its resampling) give float32 precisions.
  const double smooth_value = !std::isnan(opt.smooth_value) ? opt.smooth_value : (opt.smooth == "floor" ? 0.1 : 1.0);
  double smooth_mteval = 1.0;
  int eff_order = N;
  for (int n = 1; n <= N; ++n) {
    NpFloat correct = stats[2 + n - 1], total = stats[2 + N + n - 1];
    if (opt.smooth == "add-k" && n > 1) correct += smooth_value, total += smooth_value;
    if (total.v == 0) break;
    if (opt.effective_order) eff_order = n;
    if (correct.v == 0) {
      if (opt.smooth == "exp") {
        smooth_mteval *= 2;
        b.precisions[n - 1] = (NpFloat(100.0) / (NpFloat(smooth_mteval) * total)).v;
      } else if (opt.smooth == "floor") {
        b.precisions[n - 1] = (NpFloat(100.0 * smooth_value) / total).v;
      }
    } else {
      b.precisions[n - 1] = (NpFloat(100.0) * correct / total).v;
    }
  }
  double s = 0;
  for (int n = 0; n < eff_order; ++n) s += my_log(b.precisions[n]);
  b.score = b.bp * std::exp(s / eff_order);
}

void check_statistics(const std::vector<NpFloat>& stats, const BleuOptions& opt) {
  if (stats.size() != 2 + 2 * static_cast<size_t>(opt.max_order))
    throw std::logic_error(fmt::format("BLEU statistics: {} values for order {}", stats.size(), opt.max_order));
}

}  // namespace

double bleu_score_of(const std::vector<NpFloat>& stats, const BleuOptions& opt) {
  check_statistics(stats, opt);
  thread_local BleuScore b;
  b.sys_len = static_cast<int64_t>(stats[0].v), b.ref_len = static_cast<int64_t>(stats[1].v);
  compute_bleu(stats, opt, b);
  return b.score;
}

BleuScore bleu_from_statistics(const std::vector<NpFloat>& stats, size_t nrefs, const BleuOptions& opt) {
  check_bleu_options(opt);
  check_statistics(stats, opt);
  const int N = opt.max_order;
  BleuScore b;
  b.sys_len = static_cast<int64_t>(stats[0].v), b.ref_len = static_cast<int64_t>(stats[1].v);
  for (int n = 0; n < N; ++n) {
    b.counts.push_back(static_cast<int64_t>(stats[2 + n].v));
    b.totals.push_back(static_cast<int64_t>(stats[2 + N + n].v));
  }
  compute_bleu(stats, opt, b);
  std::string smooth = opt.smooth;
  const double smooth_value = !std::isnan(opt.smooth_value) ? opt.smooth_value : (opt.smooth == "floor" ? 0.1 : 1.0);
  if (opt.smooth == "floor" || opt.smooth == "add-k") smooth += fmt::format("[{:.2f}]", smooth_value);
  b.signature =
      fmt::format("nrefs:{}|case:{}|eff:{}|tok:{}|smooth:{}|version:{}", nrefs, opt.lowercase ? "lc" : "mixed",
                  opt.effective_order ? "yes" : "no", opt.tokenize, smooth, kSacreBleuVersion);
  return b;
}

BleuScore corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                      const BleuOptions& opt) {
  auto segments = bleu_statistics(hyps, refs, opt);
  std::vector<NpFloat> sum(2 + 2 * static_cast<size_t>(opt.max_order));
  std::vector<int64_t> total(sum.size(), 0);
  for (const auto& s : segments)
    for (size_t k = 0; k < s.size(); ++k) total[k] += s[k];
  for (size_t k = 0; k < sum.size(); ++k) sum[k] = NpFloat(total[k]);
  return bleu_from_statistics(sum, refs.size(), opt);
}

std::string BleuScore::format(int width) const {
  std::string prec;
  for (size_t i = 0; i < precisions.size(); ++i) prec += (i ? "/" : "") + fmt::format("{:.1f}", precisions[i]);
  double ratio = ref_len ? static_cast<double>(sys_len) / ref_len : 0.0;
  return fmt::format("BLEU = {:.{}f} {} (BP = {:.3f} ratio = {:.3f} hyp_len = {} ref_len = {})", score, width, prec, bp,
                     ratio, sys_len, ref_len);
}

}  // namespace tern
