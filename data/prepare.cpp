#include "data/prepare.h"

#include <fmt/format.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "core/files.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/progress.h"
#include "data/corpus.h"
#include "data/text.h"

namespace fs = std::filesystem;

namespace tern {
namespace {

// One split's input: one file per side (parallel: src, tgt; monolingual: text).
struct SplitInput {
  std::string split;
  std::vector<std::string> files;
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

struct FileScan {
  int64_t lines = 0, bytes = 0, blank = 0;
  std::string xxh64;
};

// Counts lines and checks UTF-8 in one streaming pass.
FileScan scan_file(const std::string& path) {
  std::ifstream in = open_text_file(path, "input file");
  FileScan s;
  std::string line;
  while (read_line(in, line, path)) {
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

// Lines of the given files, in order, skipping training lines that were assigned to valid/test.
class TrainLines : public LineSource {
 public:
  TrainLines(const PrepareOptions& o, std::vector<std::string> files, bool filter)
      : o_(o), files_(std::move(files)), filter_(filter) {}
  bool next(std::string& line) override {
    while (true) {
      if (!in_) {
        if (k_ >= files_.size()) return false;
        in_ = std::make_unique<std::ifstream>(files_[k_++], std::ios::binary);
        i_ = 0;
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
  bool filter_;
  size_t k_ = 0;
  int64_t i_ = 0;
  std::unique_ptr<std::ifstream> in_;
};

// The temporary output of the running prepare: removed by a terminating signal, so that none is left behind.
char g_temporary[4096] = {0};
extern "C" void remove_temporary_and_die(int sig) {
  if (g_temporary[0]) ::unlink(g_temporary);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

class TemporaryOutput {
 public:
  explicit TemporaryOutput(const std::string& path) : path_(path) {
    std::snprintf(g_temporary, sizeof g_temporary, "%s", path.c_str());
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) previous_.push_back(std::signal(sig, remove_temporary_and_die));
  }
  ~TemporaryOutput() {
    std::remove(path_.c_str());
    int k = 0;
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) std::signal(sig, previous_[k++]);
    g_temporary[0] = 0;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::vector<void (*)(int)> previous_;
};

// The output must be a new file or, with --overwrite, a file that is none of the inputs.
void check_output(const PrepareOptions& o) {
  std::error_code ec;
  if (fs::is_directory(o.out, ec))
    throw IoError(o.out + ": --out names a directory; give the path of the .h5 file to write (nothing was written)");
  if (!fs::exists(o.out, ec)) return;
  if (!o.overwrite) throw IoError(o.out + ": output exists; pass --overwrite to replace it (nothing was written)");
  for (const auto& in : {o.train_src, o.train_tgt, o.train_text, o.valid_src, o.valid_tgt, o.valid_text, o.test_src,
                         o.test_tgt, o.test_text, o.spm_src, o.spm_tgt, o.spm_model})
    if (!in.empty() && fs::equivalent(in, o.out, ec))
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
    need(spm_src.empty() == spm_tgt.empty(), "--spm-src and --spm-tgt must be given together");
    need(!(joint_vocab && !spm_src.empty()), "--joint-vocab takes one model: use --spm-model, not --spm-src/--spm-tgt");
  } else {
    need(train_src.empty() && train_tgt.empty() && valid_src.empty() && test_src.empty(),
         "--train-text (monolingual) cannot be combined with --*-src/--*-tgt files");
    need(spm_src.empty() && spm_tgt.empty(), "monolingual corpora take one model: --spm-model");
  }
  need(valid_fraction >= 0 && valid_fraction < 0.5,
       fmt::format("--valid-fraction must be in [0, 0.5) (got {})", valid_fraction));
  need(test_fraction >= 0 && test_fraction < 0.5,
       fmt::format("--test-fraction must be in [0, 0.5) (got {})", test_fraction));
  bool has_valid = !valid_src.empty() || !valid_text.empty(), has_test = !test_src.empty() || !test_text.empty();
  need(!(has_valid && valid_fraction > 0), "give either a valid file or --valid-fraction, not both");
  need(!(has_test && test_fraction > 0), "give either a test file or --test-fraction, not both");
  need(max_tokens >= 1, fmt::format("--max-tokens must be >= 1 (got {})", max_tokens));
  long_policy.check("--long-policy");
  empty_policy.check("--empty-policy");
  need(!out.empty(), "--out is required");
  tokenizer.validate();
}

namespace {

// Per split, one file per side: line counts agree, files are UTF-8 and not empty. Adds each file to `inputs_json`.
std::vector<SplitInput> collect_inputs(const PrepareOptions& o, PrepareResult& result, nlohmann::json& inputs_json) {
  const bool par = o.parallel();
  std::vector<SplitInput> inputs;
  auto add = [&](const std::string& split, const std::string& a, const std::string& b) {
    if (!a.empty()) inputs.push_back({split, par ? std::vector<std::string>{a, b} : std::vector<std::string>{a}});
  };
  add("train", par ? o.train_src : o.train_text, o.train_tgt);
  add("valid", par ? o.valid_src : o.valid_text, o.valid_tgt);
  add("test", par ? o.test_src : o.test_text, o.test_tgt);
  for (const auto& in : inputs) {
    std::vector<FileScan> scans;
    for (const auto& f : in.files) {
      scans.push_back(scan_file(f));
      result.input_bytes += scans.back().bytes;
      inputs_json.push_back(
          {{"split", in.split}, {"path", f}, {"lines", scans.back().lines}, {"xxh64", scans.back().xxh64}});
    }
    if (par && scans[0].lines != scans[1].lines)
      throw DataError(
          fmt::format("{} has {} lines but {} has {} lines: parallel files must have one line per sentence pair",
                      in.files[0], scans[0].lines, in.files[1], scans[1].lines));
    if (scans[0].lines == 0) throw DataError(in.files[0] + ": input file is empty");
    for (size_t k = 0; k < scans.size(); ++k)
      if (scans[k].blank == scans[k].lines)
        throw DataError(
            fmt::format("{}: all {} lines are blank: there is no text to tokenize", in.files[k], scans[k].lines));
  }
  return inputs;
}

// One tokenizer per side: the given models, or trained on the training lines only.
std::vector<std::unique_ptr<Tokenizer>> make_tokenizers(const PrepareOptions& o, const SplitInput& train,
                                                        bool by_fraction) {
  const bool par = o.parallel();
  std::vector<std::unique_ptr<Tokenizer>> toks;
  if (!o.spm_model.empty()) {
    auto t = Tokenizer::from_file(o.spm_model);
    toks.push_back(std::make_unique<Tokenizer>(t.model_proto(), o.spm_model));
    if (par) toks.push_back(std::make_unique<Tokenizer>(t.model_proto(), o.spm_model));
  } else if (!o.spm_src.empty()) {
    for (const auto& p : {o.spm_src, o.spm_tgt}) {
      auto t = Tokenizer::from_file(p);
      toks.push_back(std::make_unique<Tokenizer>(t.model_proto(), p));
    }
  } else if (!par || o.joint_vocab) {
    logf("training a {} SentencePiece {} model, vocab {} on the training split", par ? "joint" : "monolingual",
         o.tokenizer.model_type, o.tokenizer.vocab_size);
    TrainLines lines(o, train.files, by_fraction);
    std::string proto = train_tokenizer(o.tokenizer, lines);
    for (size_t k = 0; k < (par ? 2u : 1u); ++k) toks.push_back(std::make_unique<Tokenizer>(proto, "trained model"));
  } else {
    const char* sides[] = {"src", "tgt"};
    for (size_t k = 0; k < 2; ++k) {
      logf("training the {} SentencePiece {} model, vocab {} on {}", sides[k], o.tokenizer.model_type,
           o.tokenizer.vocab_size, train.files[k]);
      TrainLines lines(o, {train.files[k]}, by_fraction);
      toks.push_back(std::make_unique<Tokenizer>(train_tokenizer(o.tokenizer, lines), "trained model"));
    }
  }
  return toks;
}

// Encodes one line of each side into `ids` and applies the empty and long policies. Returns whether the sentence is
// kept; counts what happened in `st`. `line_no` (1-based) and `files` name the line in errors.
bool encode_sentence(const PrepareOptions& o, const std::vector<std::unique_ptr<Tokenizer>>& toks,
                     std::vector<std::string>& lines, std::vector<std::vector<int32_t>>& ids,
                     const std::vector<std::string>& files, int64_t line_no, SplitStats& st) {
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
    ids[k] = toks[k]->encode(lines[k]);
    too_long = too_long || static_cast<int64_t>(ids[k].size()) > o.max_tokens;
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

// The corpus attributes that record how it was made: the filter statistics and the policy.
void write_provenance(CorpusWriter& w, const PrepareOptions& o, const PrepareResult& result,
                      const nlohmann::json& inputs_json) {
  nlohmann::json stats;
  for (const auto& [split, st] : result.splits)
    stats[split] = {{"lines", st.lines},
                    {"kept", st.kept},
                    {"dropped_empty", st.dropped_empty},
                    {"dropped_long", st.dropped_long},
                    {"truncated", st.truncated},
                    {"tokens_src", st.tokens_src},
                    {"tokens_tgt", st.tokens_tgt}};
  w.set_attr("inputs", inputs_json.dump());
  w.set_attr("filter_stats", stats.dump());
  w.set_attr("policy", nlohmann::json{{"max_tokens", o.max_tokens},
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

  nlohmann::json inputs_json = nlohmann::json::array();
  const std::vector<SplitInput> inputs = collect_inputs(o, result, inputs_json);
  const bool by_fraction = o.valid_fraction > 0 || o.test_fraction > 0;
  const auto toks = make_tokenizers(o, inputs[0], by_fraction);
  const std::vector<std::string> sides =
      o.parallel() ? std::vector<std::string>{"src", "tgt"} : std::vector<std::string>{"text"};

  // Encode and write, under a temporary name renamed at the end.
  remove_orphaned_temporaries(o.out);
  TemporaryOutput temporary(temporary_name(fs::absolute(o.out).string()));
  const std::string& tmp = temporary.path();
  std::remove(tmp.c_str());
  {
    CorpusWriter w(tmp, o.parallel() ? "parallel" : "monolingual");
    for (size_t k = 0; k < sides.size(); ++k)
      w.set_vocab({sides[k], toks[k]->vocab_size(), toks[k]->hash(), toks[k]->model_proto()});
    int64_t total_lines = 0;
    for (const auto& j : inputs_json) total_lines += j["lines"].get<int64_t>();
    Progress bar("prepare", static_cast<uint64_t>(total_lines / static_cast<int64_t>(sides.size())), "lines", 10.0,
                 o.progress);
    int64_t done = 0;
    for (size_t n = 0; n < inputs.size(); ++n) {
      const SplitInput& in = inputs[n];
      const int64_t input_lines = inputs_json[n * sides.size()]["lines"].get<int64_t>();
      for (const char* split : {"train", "valid", "test"})
        if (in.split == split || (in.split == "train" && by_fraction)) w.set_source_lines(split, input_lines);
      std::vector<std::unique_ptr<std::ifstream>> files;
      for (const auto& f : in.files) files.push_back(std::make_unique<std::ifstream>(f, std::ios::binary));
      std::vector<std::string> lines(sides.size());
      std::vector<std::vector<int32_t>> ids(sides.size());
      for (int64_t i = 0;; ++i) {
        bool ok = true;
        for (size_t k = 0; k < sides.size(); ++k) ok = read_line(*files[k], lines[k], in.files[k]) && ok;
        if (!ok) break;
        bar.update(static_cast<uint64_t>(++done));
        const std::string split = in.split == "train" && by_fraction ? assign_split(o, i) : in.split;
        SplitStats& st = result.splits[split];
        ++st.lines;
        if (encode_sentence(o, toks, lines, ids, in.files, i + 1, st)) w.append(split, ids, i + 1);
      }
    }
    bar.finish();
    for (const auto& [split, st] : result.splits)
      if (st.kept == 0)
        throw DataError(fmt::format("split '{}' is empty after filtering ({} lines read)", split, st.lines));
    write_provenance(w, o, result, inputs_json);
    w.close();
  }
  fs::rename(tmp, o.out, ec);
  if (ec) throw IoError(fmt::format("{}: cannot write the output ({}); nothing was written", o.out, ec.message()));
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

}  // namespace tern
