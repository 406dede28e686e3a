#include "eval/translate.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <istream>
#include <numeric>
#include <ostream>

#include "core/errors.h"
#include "core/files.h"
#include "core/progress.h"
#include "data/batcher.h"
#include "data/text.h"
#include "eval/evaluate.h"
#include "eval/rescore.h"
#include "models/model.h"
#include "translation/translate_corpus.h"

namespace tern {

void TranslateOptions::validate() const {
  decode.validate();
  if (checkpoints.empty()) throw ConfigError("translate: --checkpoint is required");
  ensemble_weights(weights, checkpoints.size());  // checked before any checkpoint is read
  if (batch < 1 || batch > 100000) throw ConfigError(fmt::format("--batch must be in [1, 100000] (got {})", batch));
  if (!prefix.empty() && !score_target.empty())
    throw ConfigError(
        "--prefix starts translations that are searched; --score-target scores whole given ones: not both");
  if (!score_target.empty() && (decode.nbest > 1 || decode.sampling))
    throw ConfigError(fmt::format("--score-target scores one given translation a line: {} does not apply",
                                  decode.sampling ? "--sampling" : "--nbest " + std::to_string(decode.nbest)));
  rescore.validate(decode);
  if (nbest_format == NbestFormat::kMarian && (!score_target.empty() || decode.sampling))
    throw ConfigError(fmt::format("--nbest-format marian lists the hypotheses of a search: {} does not apply",
                                  decode.sampling ? "--sampling" : "--score-target"));
  if (rescore.enabled() && !score_target.empty())
    throw ConfigError("--rescore reranks the hypotheses of a beam search: --score-target scores given translations");
  if (max_src_tokens < 0 || max_src_tokens > 1000000)
    throw ConfigError(fmt::format("--max-src-tokens must be in [0, 1000000] (0: the training corpus's limit; got {})",
                                  max_src_tokens));
}

namespace {

const char* direction(const SequenceModelImpl& m) {
  return m.config().right_left ? "from right to left (model.right_left)" : "from left to right";
}

// The first checkpoint, whose model is replaced by an ensemble of all of them when there are several; every member
// must be a seq2seq model with the first one's vocabularies.
InferenceModel load_ensemble(const TranslateOptions& opt) {
  std::vector<InferenceModel> ms;
  for (const auto& path : opt.checkpoints) {
    ms.push_back(load_inference_model(path, opt.device, opt.precision, opt.use_ema));
    if (!ms.back().src) throw ConfigError(path + " is a language model; translate needs a seq2seq checkpoint");
    if (ms.back().src->hash() != ms[0].src->hash() || ms.back().tgt->hash() != ms[0].tgt->hash())
      throw CheckpointError(
          fmt::format("{}: its vocabularies differ from those of {}: an ensemble needs one source "
                      "and one target vocabulary",
                      path, opt.checkpoints[0]));
    if (ms.back().model->config().right_left != ms[0].model->config().right_left)
      throw ConfigError(fmt::format(
          "{} writes translations {} and {} {}: an ensemble's members must step in one direction (rerank one's "
          "n-best list with the other: --rescore)",
          path, direction(*ms.back().model), opt.checkpoints[0], direction(*ms[0].model)));
  }
  if (ms.size() > 1) {
    std::vector<SequenceModel> members;
    for (auto& m : ms) members.push_back(m.model);
    ms[0].model = std::make_shared<EnsembleImpl>(std::move(members), opt.weights);
    ms[0].model->eval();
  }
  return std::move(ms[0]);
}

// Marian's n-best features of a hypothesis: "F0= search F1= rescorer ..." (the search's score alone unless reranked).
std::string marian_features(const Hypothesis& h) {
  const std::vector<double> features = h.features.empty() ? std::vector<double>{h.score} : h.features;
  std::string out;
  for (size_t m = 0; m < features.size(); ++m) out += fmt::format("{}F{}= {:.6f}", m ? " " : "", m, features[m]);
  return out;
}

// Pharaoh "i-j" pairs, in target order then source order, of the words linked by a token: translation word j holds a
// token whose attended source token (alignment) is part of source word i; tokens outside any word are left out.
std::string word_alignment(const std::vector<int32_t>& src_words, const std::vector<int32_t>& tgt_words,
                           const std::vector<int32_t>& alignment) {
  std::vector<std::pair<int32_t, int32_t>> links;  // (j, i)
  for (size_t k = 0; k < alignment.size() && k < tgt_words.size(); ++k) {
    const auto pos = static_cast<size_t>(alignment[k]);
    if (tgt_words[k] >= 0 && pos < src_words.size() && src_words[pos] >= 0)
      links.emplace_back(tgt_words[k], src_words[pos]);
  }
  std::sort(links.begin(), links.end());
  links.erase(std::unique(links.begin(), links.end()), links.end());
  std::string out;
  for (const auto& [j, i] : links) out += fmt::format("{}{}-{}", out.empty() ? "" : " ", i, j);
  return out;
}

// One log-probability a word of the translation (tgt_words: each token's word, -1 for none), the sum of its tokens'
// (a token of no word counts with the word before it), then </s>'s when the translation ended with it.
std::string word_scores(const std::vector<int32_t>& tgt_words, const std::vector<float>& token_scores) {
  std::vector<double> words;
  for (size_t k = 0; k < token_scores.size(); ++k) {
    const int32_t w = k < tgt_words.size() ? tgt_words[k] : -1;
    if (k == tgt_words.size()) {  // </s>, past the translation's tokens
      words.push_back(token_scores[k]);
    } else if (w >= 0) {
      if (static_cast<size_t>(w) >= words.size()) words.resize(static_cast<size_t>(w) + 1, 0.0);
      words[static_cast<size_t>(w)] += token_scores[k];
    } else if (!words.empty()) {
      words.back() += token_scores[k];
    }
  }
  return fmt::format("{:.4f}", fmt::join(words, " "));
}

}  // namespace

TranslateStats translate_stream(const TranslateOptions& opt, std::istream& in, const std::string& in_name,
                                std::ostream& out, const std::string& out_name, std::ostream& log, int wait_fd) {
  opt.validate();
  InferenceModel im = load_ensemble(opt);
  DecodeOptions search = prepare_decoding(im, opt.decode, opt.checkpoints[0]);
  const bool scoring = !opt.score_target.empty();                // given translations, not searched ones
  const bool marian = opt.nbest_format == NbestFormat::kMarian;  // a line a hypothesis
  if (scoring) search.beam = 1, search.prefix_ends = true;
  const int64_t cap = opt.max_src_tokens > 0  ? opt.max_src_tokens
                      : im.max_src_tokens > 0 ? im.max_src_tokens
                                              : kDefaultMaxSrcTokens;
  std::unique_ptr<Reranker> reranker;
  if (opt.rescore.enabled()) {
    reranker = std::make_unique<Reranker>(opt.rescore, *im.tgt, search, opt.device, opt.precision, opt.use_ema, cap,
                                          opt.batch);
    search.nbest = search.beam;  // every hypothesis of the beam is reranked
  }
  TranslateStats stats;
  // opt.prefix or opt.score_target, read a line per input line: each source's target prefix or whole translation
  const std::string& given = scoring ? opt.score_target : opt.prefix;
  const std::string given_flag = scoring ? "--score-target" : "--prefix";
  std::unique_ptr<TextFile> prefix_file;
  if (!given.empty()) prefix_file = open_text_file(given, given_flag);
  std::vector<std::vector<int32_t>> prefixes;  // its lines encoded, in input order
  std::vector<std::vector<int32_t>> ids;       // this batch's sources, in input order
  std::vector<std::vector<int32_t>> words;     // --alignment: per source token, its word in the line
  std::vector<std::string> texts;              // --rescore: the sources' text
  // Lines are read in chunks of several batches (one per decoding worker, a few each), sorted by length within the
  // chunk (less padding), decoded side by side and written in input order.
  const int64_t workers = decode_workers(im.device, 0);
  const int64_t chunk = opt.batch * workers * 4;
  Progress progress("translate", 0, "lines", 10.0, opt.progress);
  int64_t written = 0;
  auto flush = [&] {
    if (ids.empty()) return;
    std::vector<size_t> order;
    for (size_t i = 0; i < ids.size(); ++i)
      if (!ids[i].empty()) order.push_back(i);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ids[a].size() < ids[b].size(); });
    std::vector<std::vector<Hypothesis>> res(ids.size());
    const auto batches = static_cast<int64_t>((order.size() + static_cast<size_t>(opt.batch) - 1) / opt.batch);
    run_batches(batches, workers, [&](int64_t k) {
      const size_t begin = static_cast<size_t>(k * opt.batch);
      const size_t end = std::min(order.size(), begin + static_cast<size_t>(opt.batch));
      std::vector<std::vector<int32_t>> rows, starts;  // sources, and their prefixes when there are
      for (size_t j = begin; j < end; ++j) {
        rows.push_back(ids[order[j]]);
        if (prefix_file) starts.push_back(prefixes[order[j]]);
      }
      auto [src, len] = pad_rows(rows);  // (B, S), (B)
      AutocastScope autocast(im.precision, im.device);
      auto decoded = decode(*im.model, src.to(im.device), len.to(im.device), search, starts);
      for (size_t j = begin; j < end; ++j) res[order[j]] = std::move(decoded[j - begin]);
    });
    if (reranker) reranker->rerank(res, texts);
    for (size_t i = 0; i < res.size(); ++i) {
      const auto& hyps = res[i];
      const int64_t line = written + static_cast<int64_t>(i);  // from 0
      for (size_t k = 0; k < hyps.size(); ++k) {
        std::vector<int32_t> tgt_words;
        const bool by_word = opt.decode.alignment || opt.decode.token_scores;
        const std::string text = by_word ? im.tgt->decode(hyps[k].tokens, tgt_words) : im.tgt->decode(hyps[k].tokens);
        if (marian) out << line << " ||| ";
        out << (scoring ? fmt::format("{:.6f}", hyps[k].logprob) : text);
        if (opt.decode.alignment) out << " ||| " << word_alignment(words[i], tgt_words, hyps[k].alignment);
        if (opt.decode.token_scores) out << " ||| " << word_scores(tgt_words, hyps[k].token_scores);
        if (marian)
          out << " ||| " << marian_features(hyps[k]) << fmt::format(" ||| {:.6f}\n", hyps[k].score);
        else if (opt.decode.nbest > 1)
          out << "\t" << hyps[k].score << (k + 1 < hyps.size() ? "\t" : "");
      }
      if (marian) {
        if (hyps.empty())  // a blank input line: an empty translation of score 0
          out << line << " ||| " << (opt.decode.alignment ? " ||| " : "") << (opt.decode.token_scores ? " ||| " : "")
              << " ||| F0= 0 ||| 0\n";
        continue;
      }
      if (hyps.empty()) out << (opt.decode.alignment ? " ||| " : "") << (opt.decode.token_scores ? " ||| " : "");
      out << "\n";
    }
    flush_checked(out, out_name);  // a full disk stops the job here, not after the whole input
    written += static_cast<int64_t>(ids.size());
    progress.update(static_cast<uint64_t>(written));
    ids.clear(), words.clear(), prefixes.clear(), texts.clear();
  };
  std::string prefix_line;
  const std::string prefix_rule =
      given_flag + " must hold one line, a target " + (scoring ? "translation" : "prefix") + ", for each input line";
  std::string line;
  while (true) {
    if (wait_fd >= 0 && !ids.empty() && in.rdbuf()->in_avail() <= 0 && !fd_readable(wait_fd)) flush();  // a pause
    if (!read_line(in, line, in_name)) break;
    ++stats.lines;
    if (const int64_t bad = invalid_utf8_at(line); bad >= 0)
      throw DataError(fmt::format("{}:{}: invalid UTF-8 at byte {}", in_name, stats.lines, bad + 1));
    if (prefix_file) {
      if (!read_line(*prefix_file, prefix_line, given))
        throw DataError(fmt::format("{}: ends after {} line(s), but {} has a line {}: {}", given, stats.lines - 1,
                                    in_name, stats.lines, prefix_rule));
      if (const int64_t bad = invalid_utf8_at(prefix_line); bad >= 0)
        throw DataError(fmt::format("{}:{}: invalid UTF-8 at byte {}", given, stats.lines, bad + 1));
      if (scoring && squeeze_spaces(line).empty())
        throw DataError(fmt::format("{}:{}: the source line is blank: there is nothing to score its translation from",
                                    in_name, stats.lines));
      prefixes.push_back(im.tgt->encode(squeeze_spaces(prefix_line)));
    }
    words.emplace_back();
    if (reranker) texts.push_back(squeeze_spaces(line));
    ids.push_back(opt.decode.alignment ? im.src->encode(squeeze_spaces(line), words.back())
                                       : im.src->encode(squeeze_spaces(line)));
    if (static_cast<int64_t>(ids.back().size()) > cap) {
      log << fmt::format("translate: {}:{}: source of {} subword tokens truncated to {} (--max-src-tokens)\n", in_name,
                         stats.lines, ids.back().size(), cap);
      ids.back().resize(static_cast<size_t>(cap));
      ++stats.truncated;
    }
    if (static_cast<int64_t>(ids.size()) >= chunk) flush();
  }
  flush();
  if (prefix_file && read_line(*prefix_file, prefix_line, given))
    throw DataError(
        fmt::format("{}: has more lines than the {} line(s) of {}: {}", given, stats.lines, in_name, prefix_rule));
  if (progress.elapsed_s() >= 10) progress.finish();  // a summary of long work only (a quick pipe stays quiet)
  return stats;
}

TranslateStats translate_files(const TranslateOptions& opt, const std::string& input, const std::string& output,
                               std::ostream& out, std::ostream& log) {
  std::vector<NamedPath> inputs = {{"-i", input}};
  for (const std::string& c : opt.checkpoints) inputs.push_back({"--checkpoint", c});
  inputs.push_back({"--shortlist", opt.decode.shortlist});
  inputs.push_back({"--lm", opt.decode.lm});
  inputs.push_back({"--prefix", opt.prefix});
  inputs.push_back({"--score-target", opt.score_target});
  for (const std::string& c : opt.rescore.checkpoints) inputs.push_back({"--rescore", c});
  check_outputs({{"-o", output}}, inputs, opt.overwrite);
  std::unique_ptr<TextFile> file;
  const bool from_stdin = is_standard_stream(input);
  if (!from_stdin) file = open_text_file(input, "input");
  FdStreambuf stdin_buf(STDIN_FILENO);
  std::istream stdin_stream(&stdin_buf);
  std::istream& source = from_stdin ? stdin_stream : *file;
  const std::string name = from_stdin ? "stdin" : input;
  const int wait_fd = from_stdin ? STDIN_FILENO : -1;
  if (is_standard_stream(output)) return translate_stream(opt, source, name, out, "standard output", log, wait_fd);
  TextWriter file_out(output);  // written as the translations come, in place of `output` once all are
  const RemoveOnSignal guard(file_out.temporary());  // Ctrl-C or a batch system's SIGTERM leaves no partial file
  TranslateStats stats = translate_stream(opt, source, name, file_out, output, log, wait_fd);
  file_out.commit();
  return stats;
}

}  // namespace tern
