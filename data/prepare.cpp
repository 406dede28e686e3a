#include "data/prepare.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string_view>
#include <tuple>

#include "core/errors.h"
#include "core/files.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/parallel.h"
#include "core/progress.h"
#include "data/corpus.h"
#include "data/text.h"

namespace fs = std::filesystem;

namespace tern {
namespace {

// One split's input: files[side][k] (parallel sides src, tgt; monolingual: text); file k of every side pairs up.
struct SplitInput {
  std::string split;
  std::vector<std::vector<std::string>> files;
  std::vector<int64_t> lines;  // of each file k (the same on every side)
};

// Which split line `i` of the training file goes to, when splitting by fraction.
std::string assign_split(const PrepareOptions& o, int64_t i) {
  if (o.valid_fraction <= 0 && o.test_fraction <= 0) return "train";
  uint64_t h = hash_bytes(&i, sizeof i, o.seed);
  double u = static_cast<double>(h >> 11) / static_cast<double>(1ULL << 53);
  if (u < o.valid_fraction) return "valid";
  if (u < o.valid_fraction + o.test_fraction) return "test";
  return "train";
}

// The same, as a static string (what the encoding threads hand to the writer).
const char* split_name(const std::string& split) {
  for (const char* s : {"train", "valid", "test"})
    if (split == s) return s;
  throw DataError("unknown split '" + split + "'");
}
const char* assign_split_name(const PrepareOptions& o, int64_t i) { return split_name(assign_split(o, i)); }

struct FileScan {
  int64_t lines = 0, bytes = 0, blank = 0;
  std::string xxh64;
};

// Counts lines and checks UTF-8 in one streaming pass.
FileScan scan_file(const std::string& path) {
  auto in = open_text_file(path, "input file");
  FileScan s;
  std::string line;
  while (read_line(*in, line, path)) {
    ++s.lines;
    s.bytes += static_cast<int64_t>(line.size()) + 1;
    if (line.find_first_not_of(" \t\r\f\v") == std::string::npos) ++s.blank;
    int64_t bad = invalid_utf8_at(line);
    if (bad >= 0)
      throw DataError(
          fmt::format("{}:{}: invalid UTF-8 at byte {} of the line (byte value 0x{:02x}); HINT: convert "
                      "the file with iconv -f <encoding> -t UTF-8",
                      path, s.lines, bad + 1, static_cast<unsigned char>(line[bad])));
  }
  s.xxh64 = hex64(hash_file(path));
  return s;
}

// The lines of each stream (a side's files, read one after the other), stream after stream, skipping training lines
// assigned to valid/test (a line's number counts from the start of its stream).
class TrainLines : public LineSource {
 public:
  TrainLines(const PrepareOptions& o, std::vector<std::vector<std::string>> streams, bool filter)
      : o_(o), filter_(filter) {
    for (auto& files : streams) {
      for (auto& f : files) files_.push_back(std::move(f));
      stream_ends_.push_back(files_.size());
    }
  }
  bool next(std::string& line) override {
    while (true) {
      if (!in_) {
        if (k_ >= files_.size()) return false;
        if (std::find(stream_ends_.begin(), stream_ends_.end(), k_) != stream_ends_.end()) i_ = 0;
        in_ = open_text_file(files_[k_++], "input file");
      }
      if (!read_line(*in_, line)) {
        in_.reset();
        continue;
      }
      int64_t i = i_++;
      if (filter_ && assign_split(o_, i) != "train") continue;
      line = squeeze_spaces(line);
      return true;
    }
  }

 private:
  const PrepareOptions& o_;
  std::vector<std::string> files_;
  std::vector<size_t> stream_ends_;
  bool filter_;
  size_t k_ = 0;
  int64_t i_ = 0;
  std::unique_ptr<TextFile> in_;
};

// The temporary output of the running prepare: removed when prepare ends without renaming it, and by a terminating
// signal, so that none is left behind.
class TemporaryOutput {
 public:
  explicit TemporaryOutput(const std::string& path) : path_(path), guard_(path) {}
  ~TemporaryOutput() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  RemoveOnSignal guard_;
};

// The output must be a new file or, with --overwrite, a file that is none of the inputs.
void check_output(const PrepareOptions& o) {
  std::error_code ec;
  if (fs::is_directory(o.out, ec))
    throw IoError(o.out + ": --out names a directory; give the path of the .h5 file to write (nothing was written)");
  if (!fs::exists(o.out, ec)) return;
  if (!o.overwrite) throw IoError(o.out + ": output exists; pass --overwrite to replace it (nothing was written)");
  std::vector<std::string> inputs{o.spm_src, o.spm_tgt, o.spm_model, o.vocab_from};
  for (const auto* files : {&o.train_src, &o.train_tgt, &o.train_text, &o.train_align, &o.valid_src, &o.valid_tgt,
                            &o.valid_text, &o.test_src, &o.test_tgt, &o.test_text})
    inputs.insert(inputs.end(), files->begin(), files->end());
  for (const auto& in : inputs)
    if (!in.empty() && same_file(in, o.out))
      throw IoError(fmt::format("{}: --out is also an input ({}); --overwrite would destroy it (nothing was written)",
                                o.out, in));
}

// Temporary outputs that killed runs (SIGKILL, power loss) left beside `out`.
void remove_orphaned_temporaries(const std::string& out) {
  const fs::path p = fs::absolute(out);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(p.parent_path(), ec))
    if (is_orphaned_temporary(e.path().string(), p.string())) {
      fs::remove(e.path(), ec);
      logf("removed {}, left by a prepare that was killed", e.path().string());
    }
}

}  // namespace

void PrepareOptions::validate() const {
  auto need = [](bool ok, const std::string& msg) {
    if (!ok) throw ConfigError(msg);
  };
  if (parallel()) {
    need(!train_src.empty() && !train_tgt.empty(),
         "prepare needs --train-src and --train-tgt (parallel) or --train-text (monolingual)");
    need(valid_text.empty() && test_text.empty(),
         "--valid-text/--test-text are for monolingual corpora (use --valid-src/--valid-tgt)");
    need(spm_model.empty() || joint_vocab,
         "--spm-model with a parallel corpus needs --joint-vocab (or give --spm-src/--spm-tgt)");
    need(valid_src.empty() == valid_tgt.empty(), "--valid-src and --valid-tgt must be given together");
    need(test_src.empty() == test_tgt.empty(), "--test-src and --test-tgt must be given together");
    for (const auto& [split, src, tgt] :
         {std::tuple{"train", &train_src, &train_tgt}, std::tuple{"valid", &valid_src, &valid_tgt},
          std::tuple{"test", &test_src, &test_tgt}})
      need(src->size() == tgt->size(),
           fmt::format("--{0}-src has {1} file(s) but --{0}-tgt has {2}: file k of the source pairs with file k of "
                       "the target",
                       split, src->size(), tgt->size()));
    need(train_align.empty() || train_align.size() == train_src.size(),
         fmt::format("--train-align has {} file(s) but --train-src has {}: alignment file k holds the links of the "
                     "pairs of --train-src file k",
                     train_align.size(), train_src.size()));
    need(spm_src.empty() == spm_tgt.empty(), "--spm-src and --spm-tgt must be given together");
    need(!(joint_vocab && !spm_src.empty()), "--joint-vocab takes one model: use --spm-model, not --spm-src/--spm-tgt");
  } else {
    need(train_src.empty() && train_tgt.empty() && valid_src.empty() && test_src.empty(),
         "--train-text (monolingual) cannot be combined with --*-src/--*-tgt files");
    need(train_align.empty(), "--train-align links the words of parallel pairs; --train-text is monolingual");
    need(spm_src.empty() && spm_tgt.empty(), "monolingual corpora take one model: --spm-model");
  }
  need(vocab_side == "src" || vocab_side == "tgt",
       fmt::format("--vocab-side must be src or tgt (got '{}')", vocab_side));
  need(vocab_side == "tgt" || (!parallel() && !vocab_from.empty()),
       "--vocab-side picks the side of a parallel --vocab-from corpus for a monolingual corpus (--train-text)");
  need(vocab_from.empty() || (spm_src.empty() && spm_model.empty() && !joint_vocab),
       "--vocab-from takes the corpus's models as they are: it excludes --spm-src/--spm-tgt, --spm-model and "
       "--joint-vocab");
  need(tokenizer.user_symbols.empty() || (vocab_from.empty() && spm_src.empty() && spm_model.empty()),
       "--user-symbols are added to the SentencePiece models prepare trains; --vocab-from, --spm-src/--spm-tgt and "
       "--spm-model reuse models as they are (give the symbols when preparing the corpus whose models are reused)");
  need(valid_fraction >= 0 && valid_fraction < 0.5,
       fmt::format("--valid-fraction must be in [0, 0.5) (got {})", valid_fraction));
  need(test_fraction >= 0 && test_fraction < 0.5,
       fmt::format("--test-fraction must be in [0, 0.5) (got {})", test_fraction));
  bool has_valid = !valid_src.empty() || !valid_text.empty(), has_test = !test_src.empty() || !test_text.empty();
  need(!(has_valid && valid_fraction > 0), "give either a valid file or --valid-fraction, not both");
  need(!(has_test && test_fraction > 0), "give either a test file or --test-fraction, not both");
  need(max_tokens >= 1, fmt::format("--max-tokens must be >= 1 (got {})", max_tokens));
  need(max_ratio == 0 || (max_ratio >= 1 && max_ratio <= 1000),
       fmt::format("--max-ratio must be 0 (off) or in [1, 1000] (got {})", max_ratio));
  need(max_ratio == 0 || parallel(), "--max-ratio compares the two sides of a parallel corpus");
  long_policy.check("--long-policy");
  empty_policy.check("--empty-policy");
  need(!out.empty(), "--out is required");
  need(threads >= 0 && threads <= 1024, fmt::format("--threads must be in [0, 1024] (0: every core; got {})", threads));
  for (const auto* files : {&train_src, &train_tgt, &train_text, &train_align, &valid_src, &valid_tgt, &valid_text,
                            &test_src, &test_tgt, &test_text})
    for (const auto& f : *files) need(!f.empty(), "an input file name is empty");
  tokenizer.validate();
}

namespace {

// Per split and file pair, line counts agree; files are UTF-8 and not empty (checked in `threads` threads). Adds each
// file to `inputs_json`.
std::vector<SplitInput> collect_inputs(const PrepareOptions& o, int threads, PrepareResult& result,
                                       nlohmann::json& inputs_json) {
  const bool par = o.parallel();
  std::vector<SplitInput> inputs;
  auto add = [&](const std::string& split, const std::vector<std::string>& a, const std::vector<std::string>& b) {
    if (!a.empty())
      inputs.push_back(
          {split, par ? std::vector<std::vector<std::string>>{a, b} : std::vector<std::vector<std::string>>{a}, {}});
  };
  add("train", par ? o.train_src : o.train_text, o.train_tgt);
  if (!o.train_align.empty()) inputs[0].files.push_back(o.train_align);  // a third side, read in step
  add("valid", par ? o.valid_src : o.valid_text, o.valid_tgt);
  add("test", par ? o.test_src : o.test_text, o.test_tgt);
  struct File {
    size_t input, side, k;
    FileScan scan;
  };
  std::vector<File> files;
  for (size_t n = 0; n < inputs.size(); ++n)
    for (size_t k = 0; k < inputs[n].files[0].size(); ++k)
      for (size_t side = 0; side < inputs[n].files.size(); ++side) files.push_back({n, side, k, {}});
  size_t next = 0, done = 0;
  ordered_map<size_t, FileScan>(
      threads, [&](size_t& i) { return (i = next++) < files.size(); },
      [&](size_t& i) { return scan_file(inputs[files[i].input].files[files[i].side][files[i].k]); },
      [&](FileScan& scan) { files[done++].scan = std::move(scan); });
  const char* side_names[] = {"src", "tgt", kAlignSide};
  for (size_t i = 0; i < files.size(); ++i) {
    const File& f = files[i];
    SplitInput& in = inputs[f.input];
    const std::string& path = in.files[f.side][f.k];
    result.input_bytes += f.scan.bytes;
    inputs_json.push_back({{"split", in.split},
                           {"side", par ? side_names[f.side] : "text"},
                           {"path", path},
                           {"lines", f.scan.lines},
                           {"xxh64", f.scan.xxh64}});
    if (f.scan.lines == 0) throw DataError(path + ": input file is empty");
    if (f.scan.blank == f.scan.lines && f.side < 2)  // an alignment line may be empty (no links), not every text line
      throw DataError(fmt::format("{}: all {} lines are blank: there is no text to tokenize", path, f.scan.lines));
    if (f.side == 0) {
      in.lines.push_back(f.scan.lines);
    } else if (f.scan.lines != in.lines[f.k]) {
      throw DataError(
          fmt::format("{} has {} lines but {} has {} lines: parallel files{} must have one line per sentence pair",
                      in.files[0][f.k], in.lines[f.k], path, f.scan.lines,
                      f.side == 2 ? " and their alignments (--train-align)" : ""));
    }
  }
  return inputs;
}

// Trains a SentencePiece model on `lines` in a thread of its own: SentencePiece's random generator is per thread and
// seeded on first use, so every model starts from the seed whether it is trained first, second or alongside another.
std::future<std::string> train_in_thread(const TokenizerTrainOptions& opt, std::unique_ptr<LineSource> lines) {
  return std::async(std::launch::async, [opt, lines = std::shared_ptr<LineSource>(std::move(lines))] {
    return train_tokenizer(opt, *lines);
  });
}

std::string symbols_note(const TokenizerTrainOptions& t) {
  return t.user_symbols.empty() ? "" : fmt::format(", user symbols {}", fmt::join(t.user_symbols, " "));
}

// One tokenizer per side: the given models, or trained on the training lines only (two models side by side when
// `threads` > 1).
std::vector<std::unique_ptr<Tokenizer>> make_tokenizers(const PrepareOptions& o, const SplitInput& train,
                                                        bool by_fraction, int threads) {
  const bool par = o.parallel();
  std::vector<std::unique_ptr<Tokenizer>> toks;
  if (!o.vocab_from.empty()) {
    const CorpusReader from(o.vocab_from);
    if (par && from.kind() != "parallel")
      throw DataError(
          fmt::format("--vocab-from {}: is a {} corpus; this parallel corpus needs the vocabularies of a "
                      "parallel one",
                      o.vocab_from, from.kind()));
    // A monolingual corpus from a parallel one: one side's model (a target-language model for translate --lm).
    const bool one_side = !par && from.kind() == "parallel";
    if (!one_side && o.vocab_side != "tgt")
      throw ConfigError(fmt::format("--vocab-side {}: --vocab-from {} is a {} corpus, with no sides to pick from",
                                    o.vocab_side, o.vocab_from, from.kind()));
    for (const std::string& side : par        ? std::vector<std::string>{"src", "tgt"}
                                   : one_side ? std::vector<std::string>{o.vocab_side}
                                              : std::vector<std::string>{"text"})
      toks.push_back(std::make_unique<Tokenizer>(from.vocab(side).model_proto,
                                                 fmt::format("{} ({} vocabulary)", o.vocab_from, side)));
    logf("reusing the {}SentencePiece model(s) of {}", one_side ? o.vocab_side + " " : "", o.vocab_from);
  } else if (!o.spm_model.empty()) {
    auto t = Tokenizer::from_file(o.spm_model);
    toks.push_back(std::make_unique<Tokenizer>(t.model_proto(), o.spm_model));
    if (par) toks.push_back(std::make_unique<Tokenizer>(t.model_proto(), o.spm_model));
  } else if (!o.spm_src.empty()) {
    for (const auto& p : {o.spm_src, o.spm_tgt}) {
      auto t = Tokenizer::from_file(p);
      toks.push_back(std::make_unique<Tokenizer>(t.model_proto(), p));
    }
  } else if (!par || o.joint_vocab) {
    logf("training a {} SentencePiece {} model, vocab {} on the training split (at most {} sentences){}",
         par ? "joint" : "monolingual", o.tokenizer.model_type, o.tokenizer.vocab_size, o.tokenizer.sample_sentences,
         symbols_note(o.tokenizer));
    const std::vector<std::vector<std::string>> text(train.files.begin(), train.files.begin() + (par ? 2 : 1));
    const std::string proto = train_in_thread(o.tokenizer, std::make_unique<TrainLines>(o, text, by_fraction)).get();
    for (size_t k = 0; k < (par ? 2u : 1u); ++k) toks.push_back(std::make_unique<Tokenizer>(proto, "trained model"));
  } else {
    logf("training the src and tgt SentencePiece {} models, vocab {} on {} sentences at most each{}{}",
         o.tokenizer.model_type, o.tokenizer.vocab_size, o.tokenizer.sample_sentences,
         threads > 1 ? ", side by side" : "", symbols_note(o.tokenizer));
    std::vector<std::future<std::string>> protos;
    for (size_t k = 0; k < 2; ++k) {
      protos.push_back(train_in_thread(
          o.tokenizer,
          std::make_unique<TrainLines>(o, std::vector<std::vector<std::string>>{train.files[k]}, by_fraction)));
      if (threads <= 1) protos.back().wait();
    }
    for (auto& p : protos) toks.push_back(std::make_unique<Tokenizer>(p.get(), "trained model"));
  }
  const bool one_model = !par || o.joint_vocab;
  if (o.spm_model.empty() && o.spm_src.empty() && o.vocab_from.empty())
    for (size_t k = 0; k < (one_model ? 1u : toks.size()); ++k)
      if (toks[k]->vocab_size() < o.tokenizer.vocab_size)
        logf(
            "the {}SentencePiece model has {} pieces, fewer than --vocab-size {}: its training text supports no "
            "more",
            one_model ? ""
            : k == 0  ? "src "
                      : "tgt ",
            toks[k]->vocab_size(), o.tokenizer.vocab_size);
  return toks;
}

// Encodes one line of each side into `ids` and applies the empty, long and (training pairs: `train`) length-ratio
// policies. Returns whether the sentence is kept; counts what happened in `st`. `line_no` (1-based) and `files` name
// the line in errors.
// `words` (when given): per side, each token's word in its line (Tokenizer::encode), before any truncation.
bool encode_sentence(const PrepareOptions& o, const std::vector<std::unique_ptr<Tokenizer>>& toks,
                     std::vector<std::string>& lines, std::vector<std::vector<int32_t>>& ids,
                     const std::vector<std::string>& files, int64_t line_no, bool train, SplitStats& st,
                     std::vector<std::vector<int32_t>>* words = nullptr) {
  bool empty = false, too_long = false;
  for (auto& l : lines) {
    l = squeeze_spaces(l);
    empty = empty || l.empty();
  }
  if (empty) {
    if (o.empty_policy == EmptyPolicy::kError)
      throw DataError(fmt::format("{}:{}: empty line (empty_policy is error; use --empty-policy drop to skip it)",
                                  files[lines[0].empty() ? 0 : lines.size() - 1], line_no));
    ++st.dropped_empty;
    return false;
  }
  for (size_t k = 0; k < lines.size(); ++k) {
    ids[k] = words ? toks[k]->encode(lines[k], (*words)[k]) : toks[k]->encode(lines[k]);
    too_long = too_long || static_cast<int64_t>(ids[k].size()) > o.max_tokens;
  }
  if (train && o.max_ratio > 0 && ids.size() == 2) {
    const size_t shorter = std::min(ids[0].size(), ids[1].size()), longer = std::max(ids[0].size(), ids[1].size());
    if (static_cast<double>(longer) > o.max_ratio * static_cast<double>(std::max<size_t>(shorter, 1))) {
      ++st.dropped_ratio;
      return false;
    }
  }
  if (too_long) {
    switch (o.long_policy.value()) {
      case LongPolicy::kError: {
        size_t k = static_cast<int64_t>(ids[0].size()) > o.max_tokens ? 0 : lines.size() - 1;
        throw DataError(
            fmt::format("{}:{}: sentence has {} subword tokens, more than max_tokens {} (long_policy "
                        "is error; use --long-policy drop or truncate)",
                        files[k], line_no, ids[k].size(), o.max_tokens));
      }
      case LongPolicy::kDrop:
        ++st.dropped_long;
        return false;
      case LongPolicy::kTruncate:
        for (auto& v : ids)
          if (static_cast<int64_t>(v.size()) > o.max_tokens) v.resize(static_cast<size_t>(o.max_tokens));
        ++st.truncated;
    }
  }
  ++st.kept;
  st.tokens_src += static_cast<int64_t>(ids[0].size());
  st.tokens_tgt += static_cast<int64_t>(ids.back().size());
  return true;
}

// The Pharaoh links "i-j ..." of one line of `file` (line `line_no`), checked against the pair's word counts.
std::vector<std::pair<int32_t, int32_t>> parse_links(const std::string& text, int64_t src_words, int64_t tgt_words,
                                                     const std::string& file, int64_t line_no) {
  std::vector<std::pair<int32_t, int32_t>> links;
  std::istringstream in(text);
  for (std::string link; in >> link;) {
    const size_t dash = link.find('-');
    auto number = [&](const std::string& digits, int64_t words, const char* side) -> int32_t {
      if (digits.empty() || digits.size() > 18 || digits.find_first_not_of("0123456789") != std::string::npos)
        throw DataError(
            fmt::format("{}:{}: alignment link '{}' is not of the form i-j (source word i, target word j, both from 0)",
                        file, line_no, link));
      const int64_t w = std::stoll(digits);
      if (w >= words)
        throw DataError(
            fmt::format("{}:{}: alignment link '{}' names {} word {}, but the {} line has {} word(s) (from "
                        "0, split at whitespace): is the file line-aligned with the pair, source first?",
                        file, line_no, link, side, w, side, words));
      return static_cast<int32_t>(w);
    };
    if (dash == std::string::npos) number("", 0, "");
    const int32_t i = number(link.substr(0, dash), src_words, "source");
    links.emplace_back(i, number(link.substr(dash + 1), tgt_words, "target"));
  }
  std::sort(links.begin(), links.end());  // repeated links once: at most the pair's words squared
  links.erase(std::unique(links.begin(), links.end()), links.end());
  return links;
}

// Word links as subword links: every token of source word i with every token of target word j, tokens past a
// truncated side left out; flat (source position, target position) pairs in target then source order.
std::vector<int32_t> subword_links(const std::vector<std::pair<int32_t, int32_t>>& word_links,
                                   const std::vector<std::vector<int32_t>>& words,
                                   const std::vector<std::vector<int32_t>>& ids) {
  std::vector<std::pair<int32_t, int32_t>> links;            // (target, source)
  std::vector<std::vector<std::vector<int32_t>>> tokens(2);  // [side][word]: its tokens (those kept)
  for (size_t side = 0; side < 2; ++side)
    for (size_t k = 0; k < ids[side].size() && k < words[side].size(); ++k)
      if (const int32_t w = words[side][k]; w >= 0) {
        if (static_cast<size_t>(w) >= tokens[side].size()) tokens[side].resize(static_cast<size_t>(w) + 1);
        tokens[side][static_cast<size_t>(w)].push_back(static_cast<int32_t>(k));
      }
  auto of = [&](size_t side, int32_t word) -> const std::vector<int32_t>& {
    static const std::vector<int32_t> none;
    return static_cast<size_t>(word) < tokens[side].size() ? tokens[side][static_cast<size_t>(word)] : none;
  };
  for (const auto& [i, j] : word_links)
    for (int32_t s : of(0, i))
      for (int32_t t : of(1, j)) links.emplace_back(t, s);
  std::sort(links.begin(), links.end());
  links.erase(std::unique(links.begin(), links.end()), links.end());
  std::vector<int32_t> flat;
  for (const auto& [t, s] : links) flat.insert(flat.end(), {s, t});
  return flat;
}

// Up to kBlockLines consecutive lines of one file pair of a split: the unit the encoding threads take.
constexpr int64_t kBlockLines = 4096;
struct Block {
  size_t input = 0, file = 0;  // inputs[input].files[side][file]
  int64_t first = 0;           // 0-based number of the first line in the split's input (its files one after another)
  int64_t first_in_file = 0;   // ... and in its file
  int64_t bytes = 0;
  std::vector<std::vector<std::string>> lines;  // [line][side]
};
// The kept sentences of a block, flat (few allocations: the writer thread frees what the encoding threads made).
struct EncodedBlock {
  std::vector<const char*> split;             // of each kept sentence
  std::vector<int64_t> line;                  // its 1-based line in the split's input
  std::vector<uint64_t> src_hash, pair_hash;  // of its ids: the source (or text) side, and every side
  std::vector<std::vector<int32_t>> ids;      // [side]: the sentences' ids (kAlignSide: links) one after another
  std::vector<std::vector<size_t>> ends;      // [side]: where each sentence's ids end
  std::map<std::string, SplitStats> stats;
  int64_t lines = 0, bytes = 0;
};

// Reads the inputs block by block, each split's files one after another (every side in step).
class BlockReader {
 public:
  explicit BlockReader(const std::vector<SplitInput>& inputs) : inputs_(inputs) {}
  bool next(Block& b) {
    while (n_ < inputs_.size()) {
      const SplitInput& in = inputs_[n_];
      if (files_.empty()) {
        if (k_ >= in.lines.size()) {
          ++n_, k_ = 0, first_ = 0;
          continue;
        }
        for (const auto& side : in.files) files_.push_back(open_text_file(side[k_], "input file"));
        line_ = 0;
      }
      b = Block{n_, k_, first_ + line_, line_, 0, {}};
      std::vector<std::string> row(in.files.size());
      while (static_cast<int64_t>(b.lines.size()) < kBlockLines) {
        bool ok = true;
        for (size_t side = 0; side < files_.size(); ++side)
          ok = read_line(*files_[side], row[side], in.files[side][k_]) && ok;
        if (!ok) break;
        for (const auto& l : row) b.bytes += static_cast<int64_t>(l.size()) + 1;
        b.lines.push_back(row);
      }
      line_ += static_cast<int64_t>(b.lines.size());
      if (static_cast<int64_t>(b.lines.size()) < kBlockLines || line_ == in.lines[k_]) {
        files_.clear();
        first_ += in.lines[k_++];
      }
      if (!b.lines.empty()) return true;
    }
    return false;
  }

 private:
  const std::vector<SplitInput>& inputs_;
  size_t n_ = 0, k_ = 0;
  int64_t first_ = 0, line_ = 0;
  std::vector<std::unique_ptr<TextFile>> files_;
};

// The corpus attributes that record how it was made: the filter statistics and the policy.
void write_provenance(CorpusWriter& w, const PrepareOptions& o, const PrepareResult& result,
                      const nlohmann::json& inputs_json) {
  nlohmann::json stats;
  for (const auto& [split, st] : result.splits) {
    stats[split] = {{"lines", st.lines},
                    {"kept", st.kept},
                    {"dropped_empty", st.dropped_empty},
                    {"dropped_long", st.dropped_long},
                    {"dropped_ratio", st.dropped_ratio},
                    {"truncated", st.truncated},
                    {"tokens_src", st.tokens_src},
                    {"tokens_tgt", st.tokens_tgt}};
    if (!o.train_align.empty()) stats[split].update({{"links", st.links}, {"unlinked", st.unlinked}});
    if (split != "train") stats[split].update({{"in_train_src", st.in_train_src}, {"in_train_pair", st.in_train_pair}});
  }
  w.set_attr("inputs", inputs_json.dump());
  w.set_attr("filter_stats", stats.dump());
  w.set_attr("policy", nlohmann::json{{"max_tokens", o.max_tokens},
                                      {"max_ratio", o.max_ratio},
                                      {"long_policy", o.long_policy.name()},
                                      {"empty_policy", o.empty_policy.name()},
                                      {"valid_fraction", o.valid_fraction},
                                      {"test_fraction", o.test_fraction},
                                      {"seed", o.seed}}
                           .dump());
}

}  // namespace

PrepareResult prepare_corpus(const PrepareOptions& o) {
  o.validate();
  PrepareResult result;
  auto t0 = std::chrono::steady_clock::now();
  check_output(o);
  fs::path out_dir = fs::absolute(o.out).parent_path();
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (access(out_dir.c_str(), W_OK) != 0) throw IoError(out_dir.string() + ": output directory is not writable");

  const int threads = resolve_threads(o.threads);
  nlohmann::json inputs_json = nlohmann::json::array();
  const std::vector<SplitInput> inputs = collect_inputs(o, threads, result, inputs_json);
  const bool by_fraction = o.valid_fraction > 0 || o.test_fraction > 0;
  const auto toks = make_tokenizers(o, inputs[0], by_fraction, threads);
  const bool aligned = !o.train_align.empty();
  std::vector<std::string> sides =
      o.parallel() ? std::vector<std::string>{"src", "tgt"} : std::vector<std::string>{"text"};
  const size_t text_sides = sides.size();
  if (aligned) sides.emplace_back(kAlignSide);

  // Encode (in `threads` threads) and write (in this one, in input order), under a temporary name renamed at the end.
  remove_orphaned_temporaries(o.out);
  TemporaryOutput temporary(temporary_name(fs::absolute(o.out).string()));
  const std::string& tmp = temporary.path();
  std::remove(tmp.c_str());
  {
    CorpusWriter w(tmp, o.parallel() ? "parallel" : "monolingual", aligned);
    for (size_t k = 0; k < text_sides; ++k)
      w.set_vocab({sides[k], toks[k]->vocab_size(), toks[k]->hash(), toks[k]->model_proto()});
    int64_t total_lines = 0;
    for (const auto& in : inputs) {
      int64_t lines = 0;
      for (int64_t n : in.lines) lines += n;
      total_lines += lines;
      for (const char* split : {"train", "valid", "test"})
        if (in.split == split || (in.split == "train" && by_fraction)) w.set_source_lines(split, lines);
    }
    Progress bar("prepare", static_cast<uint64_t>(total_lines), "lines", 10.0, o.progress);
    int64_t done = 0, bytes = 0;
    BlockReader reader(inputs);
    auto encode = [&](Block& b) {
      const SplitInput& in = inputs[b.input];
      std::vector<std::string> files;
      for (const auto& side : in.files) files.push_back(side[b.file]);
      EncodedBlock e;
      e.lines = static_cast<int64_t>(b.lines.size());
      e.bytes = b.bytes;
      e.ids.resize(sides.size());
      e.ends.resize(sides.size());
      std::vector<std::vector<int32_t>> ids(text_sides), words(text_sides);
      std::vector<std::pair<int32_t, int32_t>> word_links;
      for (size_t j = 0; j < b.lines.size(); ++j) {
        const int64_t i = b.first + static_cast<int64_t>(j), line_no = b.first_in_file + static_cast<int64_t>(j) + 1;
        const char* split = in.split == "train" && by_fraction ? assign_split_name(o, i) : split_name(in.split);
        SplitStats& st = e.stats[split];
        ++st.lines;
        std::vector<std::string>& row = b.lines[j];
        word_links.clear();
        if (row.size() > text_sides) {  // the alignment line (every line is checked, dropped pairs' too)
          word_links = parse_links(row.back(), count_words(row[0]), count_words(row[1]), files.back(), line_no);
          row.pop_back();
        }
        if (!encode_sentence(o, toks, row, ids, files, line_no, std::string_view(split) == "train", st,
                             aligned ? &words : nullptr))
          continue;
        if (aligned) {
          ids.push_back(subword_links(word_links, words, ids));
          st.links += static_cast<int64_t>(ids.back().size() / 2);
          st.unlinked += ids.back().empty();
        }
        e.split.push_back(split);
        e.line.push_back(i + 1);
        uint64_t h = hash_bytes(ids[0].data(), ids[0].size() * sizeof(int32_t));
        e.src_hash.push_back(h);
        for (size_t k = 1; k < text_sides; ++k) h = hash_bytes(ids[k].data(), ids[k].size() * sizeof(int32_t), h);
        e.pair_hash.push_back(h);
        for (size_t k = 0; k < sides.size(); ++k) {
          e.ids[k].insert(e.ids[k].end(), ids[k].begin(), ids[k].end());
          e.ends[k].push_back(e.ids[k].size());
        }
        ids.resize(text_sides);
      }
      return e;
    };
    // Held-out sentences that also occur in train, found by hashes (8 bytes a training sentence and side).
    std::vector<uint64_t> train_src, train_pair;
    std::vector<std::tuple<const char*, uint64_t, uint64_t>> held;  // split, source hash, pair hash
    auto write = [&](EncodedBlock& e) {
      std::vector<TokenSpan> spans(sides.size());
      for (size_t r = 0; r < e.split.size(); ++r) {
        if (std::string_view(e.split[r]) == "train")
          train_src.push_back(e.src_hash[r]), train_pair.push_back(e.pair_hash[r]);
        else
          held.emplace_back(e.split[r], e.src_hash[r], e.pair_hash[r]);
        for (size_t k = 0; k < sides.size(); ++k) {
          const size_t begin = r == 0 ? 0 : e.ends[k][r - 1];
          spans[k] = {e.ids[k].data() + begin, e.ends[k][r] - begin};
        }
        w.append(e.split[r], spans, e.line[r]);
      }
      for (const auto& [split, st] : e.stats) result.splits[split] += st;
      done += e.lines, bytes += e.bytes;
      const double s = std::max(1e-9, bar.elapsed_s());
      bar.update(static_cast<uint64_t>(done), fmt::format("{:.1f} MB/s", static_cast<double>(bytes) / 1e6 / s));
    };
    ordered_map<Block, EncodedBlock>(
        threads, [&](Block& b) { return reader.next(b); }, encode, write);
    bar.finish();
    std::sort(train_src.begin(), train_src.end());
    std::sort(train_pair.begin(), train_pair.end());
    for (const auto& [split, src, pair] : held) {
      SplitStats& st = result.splits[split];
      st.in_train_src += std::binary_search(train_src.begin(), train_src.end(), src);
      st.in_train_pair += std::binary_search(train_pair.begin(), train_pair.end(), pair);
    }
    const double s = std::max(1e-9, bar.elapsed_s());
    logf("encoded {} lines in {:.1f} s ({:.0f} lines/s, {:.1f} MB/s) with {} thread(s)", done, s,
         static_cast<double>(done) / s, static_cast<double>(bytes) / 1e6 / s, threads);
    for (const auto& [split, st] : result.splits)
      if (st.kept == 0)
        throw DataError(fmt::format(
            "split '{}' is empty after filtering ({} lines read: {} empty, {} longer than --max-tokens {} subword "
            "tokens{}); HINT: raise --max-tokens{} or pass --long-policy truncate",
            split, st.lines, st.dropped_empty, st.dropped_long, o.max_tokens,
            o.max_ratio > 0 ? fmt::format(", {} with lengths apart by more than --max-ratio", st.dropped_ratio) : "",
            o.max_ratio > 0 ? " or --max-ratio," : ""));
    write_provenance(w, o, result, inputs_json);
    w.close();
  }
  fs::rename(tmp, o.out, ec);
  if (ec) throw IoError(fmt::format("{}: cannot write the output ({}); nothing was written", o.out, ec.message()));
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

}  // namespace tern
