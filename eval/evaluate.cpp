#include "eval/evaluate.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>

#include "core/errors.h"
#include "core/files.h"
#include "core/log.h"
#include "core/progress.h"
#include "data/batcher.h"
#include "data/corpus.h"
#include "data/text.h"
#include "eval/rescore.h"
#include "models/device.h"
#include "models/loss.h"
#include "trainer/checkpoint.h"
#include "trainer/ema.h"
#include "trainer/step.h"
#include "translation/bleu.h"
#include "translation/chrf.h"
#include "translation/score.h"
#include "translation/translate_corpus.h"

namespace tern {

DecodeOptions prepare_decoding(InferenceModel& im, const DecodeOptions& decode, const std::string& checkpoint) {
  DecodeOptions d = decode;
  if (d.int8) {
    if (!im.device.is_cpu())
      throw ConfigError("--int8 is for decoding on the CPU (the device is " + im.device.str() +
                        "); on a GPU use --precision fp16 or bf16");
    if (im.precision != Precision::kFp32)
      throw ConfigError("--int8 replaces the fp32 products of the CPU search: it cannot be combined with --precision " +
                        precision_name(im.precision) + " (pass --precision fp32)");
  }
  if (!im.device.is_cpu() && d.cpu_gemm != CpuGemm::kAuto)
    throw ConfigError("--cpu-gemm " + d.cpu_gemm.name() + " is for decoding on the CPU (the device is " +
                      im.device.str() + ")");
  if (im.precision != Precision::kFp32 && d.cpu_gemm != CpuGemm::kAuto)
    throw ConfigError("--cpu-gemm " + d.cpu_gemm.name() + " chooses the library of the fp32 CPU search: at precision " +
                      precision_name(im.precision) + " the products run under autocast (pass --precision fp32)");
  CpuKernels kernels;
  if (im.device.is_cpu() && im.precision == Precision::kFp32) {
    d.cpu_gemm = kernels.gemm = resolve_cpu_gemm(d.cpu_gemm);
    kernels.int8 = d.int8;
    im.model->set_cpu_kernels(kernels);
  }
  if (!d.shortlist.empty()) {
    if (!im.src)
      throw ConfigError("--shortlist applies to the search of seq2seq models (" + checkpoint + " is a language model)");
    auto table = std::make_shared<Shortlist>(load_shortlist(d.shortlist));
    table->check_vocab(im.src->hash(), im.src->vocab_size(), im.tgt->hash(), im.tgt->vocab_size(), d.shortlist,
                       checkpoint);
    d.shortlist_table = std::move(table);
  }
  if (!d.lm.empty()) {
    if (!im.src)
      throw ConfigError("--lm fuses a language model into the search of a seq2seq model (" + checkpoint +
                        " is a language model)");
    InferenceModel lm = load_inference_model(d.lm, im.device.is_cuda() ? DeviceRequest::kCuda : DeviceRequest::kCpu,
                                             im.precision, im.use_ema);
    if (!lm.config.model.is_lm())
      throw ConfigError("--lm " + d.lm +
                        " is a seq2seq model: --lm takes a language model (model.type lm or ffnn_lm) of the target "
                        "language");
    if (lm.tgt->hash() != im.tgt->hash())
      throw CheckpointError(fmt::format(
          "--lm {}: its vocabulary ({} pieces) is not the target vocabulary of {} ({} pieces); HINT: prepare the "
          "language model's text with `tern prepare --train-text ... --vocab-from` the translation model's corpus",
          d.lm, lm.tgt->vocab_size(), checkpoint, im.tgt->vocab_size()));
    lm.model->set_cpu_kernels({kernels.gemm, /*int8=*/false});  // the language model's products in fp32
    d.lm_model = lm.model;
  }
  return d;
}

InferenceModel load_inference_model(const std::string& path, DeviceRequest device, std::optional<Precision> precision,
                                    bool use_ema) {
  CheckpointData d = read_checkpoint(path);
  InferenceModel m;
  const CheckpointMeta meta = checkpoint_meta(d.meta, path);
  m.config = parse_config(meta.config_yaml, path + " (stored config)");
  bool lm = m.config.model.is_lm();
  m.step = meta.step;
  m.max_src_tokens = meta.corpus_max_tokens;
  m.device = rank_device(resolve_device_kind(device, "--device"));
  torch::serialize::InputArchive ar, model_ar;
  std::istringstream in(d.archive);
  try {
    ar.load_from(in, torch::kCPU);
    auto proto = [&](const std::string& side) {
      torch::Tensor t;
      ar.read("vocab_" + side, t);
      return std::string(static_cast<const char*>(t.data_ptr()), static_cast<size_t>(t.numel()));
    };
    m.tgt = std::make_unique<Tokenizer>(proto(lm ? "text" : "tgt"), path + " (target vocabulary)");
    if (!lm) m.src = std::make_unique<Tokenizer>(proto("src"), path + " (source vocabulary)");
    ModelConfig sized = m.config.model;  // sized by the checkpoint's vocabularies
    sized.tgt_vocab = m.tgt->vocab_size();
    sized.src_vocab = lm ? 0 : m.src->vocab_size();
    m.model = build_model(sized);
    ar.read("model", model_ar);
    m.model->load(model_ar);
    m.use_ema = use_ema;
    if (use_ema) m.ema = load_ema_into(ar, m.model->parameters());
  } catch (const c10::Error& e) {
    throw CheckpointError(path + ": cannot load the model: " + e.msg());
  }
  m.model->to(m.device);
  m.model->eval();
  const bool own = !precision;
  const std::string key = own ? path + ": train.precision" : "--precision";
  m.precision = own ? m.config.train.precision.value() : *precision;
  check_precision(m.precision, m.device, own ? key + " (override with --precision fp32 or bf16)" : key);
  return m;
}

namespace {
// The sentence ids of a batch that fall within the first n sentences (evaluate --limit).
std::vector<int64_t> first_n(const std::vector<int64_t>& ids, int64_t n) {
  std::vector<int64_t> keep;
  for (int64_t i : ids)
    if (i < n) keep.push_back(i);
  return keep;
}

// Greedy translations of the first `k` sentences with the attention of every output token over the source pieces,
// for reports: [{source: [piece], output: [piece], attention: [[weight per source piece] per output piece]}].
nlohmann::json attention_samples(InferenceModel& im, ShardData& data, int64_t k) {
  nlohmann::json out = nlohmann::json::array();
  for (int64_t i = 0; i < std::min(k, data.size()); ++i) {
    Batch b = data.collate({i});
    AutocastScope autocast(im.precision, im.device);
    DecoderState st = im.model->encode(b.src.to(im.device), b.src_len);
    torch::Tensor prev = torch::full({1}, kBosId, torch::TensorOptions().dtype(torch::kInt64).device(im.device));
    nlohmann::json sample = {{"source", nlohmann::json::array()},
                             {"output", nlohmann::json::array()},
                             {"attention", nlohmann::json::array()}};
    for (int64_t s = 0; s < b.src_len[0].item<int64_t>(); ++s)
      sample["source"].push_back(im.src->piece(static_cast<int32_t>(b.src[0][s].item<int64_t>())));
    const int64_t max_len = 2 * static_cast<int64_t>(sample["source"].size()) + 10;
    for (int64_t t = 0; t < max_len; ++t) {
      torch::Tensor logp = im.model->step(prev, st);  // (1, V)
      prev = logp.argmax(-1);
      int32_t id = static_cast<int32_t>(prev.item<int64_t>());
      std::vector<double> row;
      auto a = st.attn.to(torch::kCPU, torch::kFloat32)[0];
      for (int64_t s = 0; s < static_cast<int64_t>(sample["source"].size()); ++s)
        row.push_back(std::round(a[s].item<float>() * 1000.0) / 1000.0);
      sample["output"].push_back(id == kEosId ? "</s>" : im.tgt->piece(id));
      sample["attention"].push_back(row);
      if (id == kEosId) break;
    }
    if (im.model->config().right_left) {  // written from the end: its tokens and their rows in reading order, </s> last
      const auto n = static_cast<std::ptrdiff_t>(sample["output"].size()) - (sample["output"].back() == "</s>" ? 1 : 0);
      for (const char* key : {"output", "attention"}) std::reverse(sample[key].begin(), sample[key].begin() + n);
    }
    out.push_back(sample);
  }
  return out;
}

// The raw reference of each of the first `n` sentences of `split`: the lines of `path` at the sentences' input line
// numbers (prepare drops empty and long lines, so sentence i is not line i). `path` must have as many lines as the
// input the split was prepared from.
std::vector<std::string> aligned_references(const std::string& path, const CorpusReader& corpus,
                                            const std::string& split, int64_t n) {
  const std::vector<std::string> lines = read_utf8_file(path, "reference file");
  const int64_t expected = corpus.source_lines(split);
  if (static_cast<int64_t>(lines.size()) != expected)
    throw DataError(
        fmt::format("{} has {} lines but split '{}' of {} was prepared from an input of {} lines ({} "
                    "sentences kept): the reference must be that input's target side, line for line",
                    path, lines.size(), split, corpus.path(), expected, corpus.num_sentences(split)));
  const std::vector<int64_t> at = corpus.line_numbers(split);
  std::vector<std::string> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    out[static_cast<size_t>(i)] = lines[static_cast<size_t>(at[static_cast<size_t>(i)] - 1)];
  return out;
}

}  // namespace

void EvaluateOptions::validate() const {
  decode.validate();
  if (corpus.empty() == text.empty())
    throw ConfigError("evaluate: give a corpus (--data) or a text file (--text), not " +
                      std::string(corpus.empty() ? "neither" : "both"));
  if (batch_sentences < 1 || batch_sentences > 100000)
    throw ConfigError(fmt::format("--batch must be in [1, 100000] (got {})", batch_sentences));
  if (limit < 0) throw ConfigError(fmt::format("--limit must be >= 0 (0: every sentence; got {})", limit));
  if (!source.empty() && text.empty())
    throw ConfigError("evaluate: --source goes with --text (the target text it translates into)");
  // Options of the search alone, refused where nothing is searched.
  const std::string rescorer = rescore.enabled() ? rescore.checkpoints[0] : std::string();
  for (const auto& [option, value, what] :
       {std::tuple<const char*, const std::string&, const char*>{"--shortlist", decode.shortlist, "narrows"},
        {"--lm", decode.lm, "joins"},
        {"--rescore", rescorer, "reranks"}}) {
    if (value.empty()) continue;
    if (!text.empty())
      throw ConfigError(
          fmt::format("evaluate: {} {} the search of --data; --text scores the given text under the checkpoint alone",
                      option, what));
    if (!translate)
      throw ConfigError(fmt::format("evaluate: {} {} the search, and --no-translate searches nothing", option, what));
  }
  rescore.validate(decode);
  check_bleu_tokenizer(bleu_tokenize);
  if (attention_samples < 0 || attention_samples > 1000)
    throw ConfigError(fmt::format("--attention-samples must be in [0, 1000] (got {})", attention_samples));
}

namespace {

// The perplexity block of the JSON result from summed nats, tokens (eos included) and words (one eos each).
nlohmann::json perplexity_json(double nll, double tokens, double words);

// Perplexity of the first n sentences of `data`: nats summed over target tokens (eos included), batched by length.
// Fills refs_detok[i] with sentence i's detokenized target (the default reference).
nlohmann::json perplexity(InferenceModel& im, ShardData& data, int64_t n, std::vector<std::string>& refs_detok) {
  BatchingOptions bo;
  bo.shuffle = false;
  bo.batch_tokens = 4096;
  double nll = 0, tokens = 0, words = 0;
  refs_detok.assign(static_cast<size_t>(n), "");
  for (const auto& ids : data.make_batches(bo, 0)) {
    std::vector<int64_t> keep = first_n(ids, n);
    if (keep.empty()) continue;
    Batch b = data.collate(keep);
    AutocastScope autocast(im.precision, im.device);
    auto logits = im.model->forward(b.src.defined() ? b.src.to(im.device) : b.src, b.src_len, b.tgt_in.to(im.device));
    nll += sequence_loss(logits, b.tgt_out.to(im.device), 0.0).nll.item<double>();
    tokens += static_cast<double>(b.target_tokens);
    auto tout = b.tgt_out.accessor<int64_t, 2>();  // (B, T)
    for (size_t r = 0; r < keep.size(); ++r) {
      std::vector<int32_t> y;
      for (int64_t t = 0; t < b.tgt_out.size(1) && tout[r][t] != kEosId; ++t)
        y.push_back(static_cast<int32_t>(tout[r][t]));
      std::string& ref = refs_detok[static_cast<size_t>(keep[r])];
      ref = im.tgt->decode(y);
      words += static_cast<double>(count_words(ref) + 1);
    }
  }
  return perplexity_json(nll, tokens, words);
}

// Before any work: --hyp-out and --json are writable, distinct, none of the inputs, and new unless --overwrite.
void check_evaluate_outputs(const EvaluateOptions& opt) {
  std::vector<NamedPath> inputs = {
      {"--checkpoint", opt.checkpoint},      {"--ref", opt.reference}, {"--text", opt.text}, {"--source", opt.source},
      {"--shortlist", opt.decode.shortlist}, {"--lm", opt.decode.lm}};
  for (const std::string& part : opt.corpus) inputs.push_back({"--data", part});
  for (const std::string& c : opt.rescore.checkpoints) inputs.push_back({"--rescore", c});
  check_outputs({{"--hyp-out", opt.hypotheses_out}, {"--json", opt.json_out}}, inputs, opt.overwrite);
}

}  // namespace

namespace {
// The lines of a text file encoded by `tok` (spaces squeezed), at most `limit` (0: all), and each line's words + 1.
struct EncodedText {
  std::vector<std::vector<int32_t>> lines;
  std::vector<int64_t> words;
};
EncodedText encode_text_file(const std::string& path, const char* option, const Tokenizer& tok, int64_t limit) {
  auto in = open_text_file(path, fmt::format("the {} file", option));
  EncodedText out;
  std::string line;
  while (read_line(*in, line, path)) {
    if (const int64_t bad = invalid_utf8_at(line); bad >= 0)
      throw DataError(fmt::format("{}:{}: invalid UTF-8 at byte {}", path, out.lines.size() + 1, bad + 1));
    const std::string text = squeeze_spaces(line);
    out.lines.push_back(tok.encode(text));
    out.words.push_back(count_words(text) + 1);
    if (limit > 0 && static_cast<int64_t>(out.lines.size()) >= limit) break;
  }
  const auto n = static_cast<int64_t>(out.lines.size());
  if (n == 0) throw DataError(fmt::format("{}: the {} file has no lines", path, option));
  if (std::all_of(out.lines.begin(), out.lines.end(), [](const auto& l) { return l.empty(); }))
    throw DataError(fmt::format("{}: its {} line(s) are blank: there is no text to score", path, n));
  return out;
}
}  // namespace

std::vector<double> sentence_logprobs(const InferenceModel& im, const std::vector<std::vector<int32_t>>& targets,
                                      const std::vector<std::vector<int32_t>>& sources, int64_t batch) {
  if (im.src && sources.size() != targets.size())
    throw std::invalid_argument(
        fmt::format("sentence_logprobs: {} sources for {} targets", sources.size(), targets.size()));
  torch::NoGradGuard ng;
  std::vector<double> out;
  const auto n = static_cast<int64_t>(targets.size());
  for (int64_t b0 = 0; b0 < n; b0 += batch) {
    const int64_t b1 = std::min(n, b0 + batch);
    Batch rows = target_batch({targets.begin() + b0, targets.begin() + b1});  // (B, T): <s> y, y </s>
    if (im.src) std::tie(rows.src, rows.src_len) = pad_rows({sources.begin() + b0, sources.begin() + b1});  // (B, S)
    AutocastScope autocast(im.precision, im.device);
    // src_len stays on the CPU (forward packs by it on the host), as in perplexity() above.
    const torch::Tensor logits = im.model->forward(rows.src.defined() ? rows.src.to(im.device) : rows.src, rows.src_len,
                                                   rows.tgt_in.to(im.device));
    const torch::Tensor lp = torch::log_softmax(logits.to(torch::kFloat32), -1);
    const torch::Tensor target = rows.tgt_out.to(im.device);
    const torch::Tensor per_token = lp.gather(2, target.unsqueeze(2)).squeeze(2).masked_fill(target == kPadId, 0);
    const torch::Tensor per_sentence = per_token.sum(1).to(torch::kCPU, torch::kFloat64).contiguous();  // (B) nats
    out.insert(out.end(), per_sentence.data_ptr<double>(), per_sentence.data_ptr<double>() + per_sentence.numel());
  }
  return out;
}

nlohmann::json evaluate_text(const EvaluateOptions& opt, std::ostream* sentence_scores) {
  opt.validate();
  check_evaluate_outputs(opt);
  InferenceModel im = load_inference_model(opt.checkpoint, opt.device, opt.precision, opt.use_ema);
  prepare_decoding(im, opt.decode, opt.checkpoint);  // --int8 refused where it cannot apply, as for --data
  if (im.src && opt.source.empty())
    throw ConfigError(opt.checkpoint + " is a seq2seq model: --text is then the target text, and --source FILE its " +
                      "source text, line by line (or evaluate a corpus with --data)");
  if (!im.src && !opt.source.empty())
    throw ConfigError(opt.checkpoint + " is a language model: --source goes with a seq2seq checkpoint");
  const EncodedText target = encode_text_file(opt.text, "--text", *im.tgt, opt.limit);
  const std::vector<std::vector<int32_t>>& lines = target.lines;
  const std::vector<int64_t>& words = target.words;
  const auto n = static_cast<int64_t>(lines.size());
  std::vector<std::vector<int32_t>> sources;  // seq2seq: line i's source
  if (im.src) {
    sources = encode_text_file(opt.source, "--source", *im.src, opt.limit).lines;
    if (static_cast<int64_t>(sources.size()) != n)
      throw DataError(fmt::format("{} has {} line(s) and {} has {}{}: --source and --text must be line-aligned",
                                  opt.source, sources.size(), opt.text, n, opt.limit > 0 ? " (within --limit)" : ""));
    for (size_t i = 0; i < sources.size(); ++i)
      if (sources[i].empty())
        throw DataError(fmt::format("{}:{}: the source line is blank: there is nothing to translate its target from",
                                    opt.source, i + 1));
  }
  double nll = 0, tokens = 0, total_words = 0;
  const std::vector<double> scores = sentence_logprobs(im, lines, sources, opt.batch_sentences);
  for (int64_t i = 0; i < n; ++i) {
    const double lp_nats = scores[static_cast<size_t>(i)];
    const auto len = static_cast<double>(lines[static_cast<size_t>(i)].size() + 1);
    nll -= lp_nats, tokens += len, total_words += static_cast<double>(words[static_cast<size_t>(i)]);
    if (sentence_scores)
      *sentence_scores << fmt::format("{:.6f}\t{}\t{:.4f}\n", lp_nats / std::log(10.0), static_cast<int64_t>(len),
                                      std::exp(-lp_nats / len));
  }
  nlohmann::json out = {{"checkpoint", opt.checkpoint},
                        {"step", im.step},
                        {"weights", im.ema ? "ema" : "trained"},
                        {"text", opt.text},
                        {"sentences", n},
                        {"source", opt.source.empty() ? nlohmann::json(nullptr) : nlohmann::json(opt.source)},
                        {"perplexity", perplexity_json(nll, tokens, total_words)}};
  const auto& p = out["perplexity"];
  logf("perplexity on {} ({} sentences): {:.3f} per subword token ({:.4f} bits), {:.3f} per word", opt.text, n,
       p["ppl_per_token"].get<double>(), p["cross_entropy_bits_per_token"].get<double>(),
       p["ppl_per_word"].get<double>());
  return out;
}

namespace {

nlohmann::json perplexity_json(double nll, double tokens, double words) {
  const double H = nll / tokens;
  return {{"convention", "PPL = 2^H, H = cross-entropy in bits; end-of-sentence tokens are counted (one per sentence)"},
          {"target_tokens", tokens},
          {"cross_entropy_nats_per_token", H},
          {"cross_entropy_bits_per_token", H / std::log(2.0)},
          {"ppl_per_token", std::pow(2.0, H / std::log(2.0))},
          {"words", words},
          {"cross_entropy_bits_per_word", nll / words / std::log(2.0)},
          {"ppl_per_word", std::pow(2.0, nll / words / std::log(2.0))}};
}

// How many sentences of `split` tern prepare also found in train (its filter_stats), for a corpus of one file:
// {"sentences", "in_train_src", "in_train_pair"}, or null when unknown (parts, corpora of older versions, train).
nlohmann::json overlap_with_train(const CorpusReader& corpus, const std::string& split) {
  if (split == "train" || corpus.path().find(',') != std::string::npos) return nullptr;
  const auto stats = nlohmann::json::parse(corpus.attr("filter_stats"), nullptr, /*allow_exceptions=*/false);
  if (!stats.is_object() || !stats.contains(split)) return nullptr;
  const nlohmann::json& s = stats[split];
  for (const char* key : {"kept", "in_train_src", "in_train_pair"})
    if (!s.is_object() || !s.contains(key) || !s[key].is_number_unsigned()) return nullptr;
  return {{"sentences", s["kept"]}, {"in_train_src", s["in_train_src"]}, {"in_train_pair", s["in_train_pair"]}};
}

}  // namespace

nlohmann::json evaluate(const EvaluateOptions& opt) {
  opt.validate();
  check_evaluate_outputs(opt);
  InferenceModel im = load_inference_model(opt.checkpoint, opt.device, opt.precision, opt.use_ema);
  const DecodeOptions search = prepare_decoding(im, opt.decode, opt.checkpoint);
  CorpusReader corpus(opt.corpus);
  const bool lm = im.config.model.is_lm();
  const std::string tgt_side = lm ? "text" : "tgt";
  if (corpus.vocab(tgt_side).hash != im.tgt->hash() || (!lm && corpus.vocab("src").hash != im.src->hash()))
    throw DataError(corpus.path() + ": its vocabulary differs from the one " + opt.checkpoint +
                    " was trained with; HINT: evaluate on a corpus prepared with the same SentencePiece models");
  ShardData data(corpus, opt.split);
  int64_t n = opt.limit > 0 ? std::min(opt.limit, data.size()) : data.size();
  nlohmann::json out = {{"checkpoint", opt.checkpoint},
                        {"step", im.step},
                        {"weights", im.ema ? "ema" : "trained"},
                        {"corpus", corpus.path()},
                        {"split", opt.split},
                        {"sentences", n},
                        {"corpus_parts", corpus.paths()},
                        {"working_dir", std::filesystem::current_path().string()}};  // for the paths above, as given
  // Held-out sentences that also occur in train make every score optimistic: said, and kept with the result.
  if (const nlohmann::json seen = overlap_with_train(corpus, opt.split); !seen.is_null()) {
    out["overlap_with_train"] = seen;
    const auto src = seen["in_train_src"].get<int64_t>(), pair = seen["in_train_pair"].get<int64_t>();
    if (src > 0)
      logf(
          "note: {} of the {} {} sentences also occur in train as {} ({} as the same pair; counted by tern prepare): "
          "scores on them are optimistic",
          src, seen["sentences"].get<int64_t>(), opt.split, lm ? "text" : "sources", pair);
  }
  const bool stream = lm && im.config.data.lm_mode == LmMode::kStream;
  if (stream && n < data.size())
    throw ConfigError(
        fmt::format("--limit {}: a model trained with data.lm_mode stream is evaluated on the whole "
                    "split as one stream; drop --limit",
                    opt.limit));
  // A --ref that does not align with the split is refused before any work.
  std::vector<std::string> given_refs;
  if (!lm && opt.translate && !opt.reference.empty())
    given_refs = aligned_references(opt.reference, corpus, opt.split, n);
  torch::NoGradGuard ng;
  std::vector<std::string> refs;  // the corpus targets, detokenized
  out["perplexity"] = perplexity(im, data, n, refs);
  if (stream) {
    // The model's own mode: the split as data.batch_tokens / data.bptt streams, the state carried across sentences.
    // The same tokens are predicted (one </s> a sentence), so both perplexities are per the same tokens.
    const StreamLayout layout = data.stream_layout(im.config.data.streams(), im.config.data.bptt);
    auto [sum, tokens] = stream_nll(*im.model, data, layout, im.device, im.precision);
    nlohmann::json sentence = out["perplexity"];
    out["perplexity"] = perplexity_json(sum.item<double>(), tokens, sentence["words"].get<double>());
    out["perplexity"]["mode"] =
        fmt::format("stream: {} streams in windows of {} tokens, state carried", layout.streams(), layout.bptt);
    sentence["mode"] = "sentence: every sentence from a zero state";
    out["perplexity_sentence_mode"] = sentence;
    logf("perplexity on {} read sentence by sentence (each from a zero state): {:.3f} per subword token", opt.split,
         sentence["ppl_per_token"].get<double>());
  }
  const auto& p = out["perplexity"];
  logf("perplexity on {} ({} sentences): {:.3f} per subword token ({:.4f} bits), {:.3f} per word", opt.split, n,
       p["ppl_per_token"].get<double>(), p["cross_entropy_bits_per_token"].get<double>(),
       p["ppl_per_word"].get<double>());
  if (lm || !opt.translate) return out;

  if (!opt.reference.empty()) refs = std::move(given_refs);
  CorpusTranslateOptions to;
  to.decode = search, to.batch_sentences = opt.batch_sentences, to.limit = n, to.device = im.device;
  to.precision = im.precision, to.progress = opt.progress;
  std::unique_ptr<Reranker> reranker;
  if (opt.rescore.enabled()) {  // each batch's beams reranked from the sources' text
    reranker = std::make_unique<Reranker>(opt.rescore, *im.tgt, search, opt.device, opt.precision, opt.use_ema,
                                          std::numeric_limits<int64_t>::max(), opt.batch_sentences);
    to.decode.nbest = to.decode.beam;
    to.rerank = [&](std::vector<std::vector<Hypothesis>>& hyps, const Batch& b) {
      std::vector<std::string> sources;
      for (int64_t r = 0; r < b.size(); ++r) {
        const int64_t len = b.src_len[r].item<int64_t>();
        const torch::Tensor ids = b.src[r].narrow(0, 0, len).to(torch::kInt32).contiguous();
        sources.push_back(im.src->decode(std::vector<int32_t>(ids.data_ptr<int32_t>(), ids.data_ptr<int32_t>() + len)));
      }
      reranker->rerank(hyps, sources);
    };
  }
  const CorpusTranslation tr = translate_corpus(*im.model, data, *im.tgt, to);
  const std::vector<std::string>& hyps = tr.hypotheses;
  const double secs = tr.seconds;
  // Each metric's statistics per sentence, read once: the scores and their bootstrap intervals come from them.
  const std::vector<std::vector<std::string>> ref_streams{refs};
  ScoreOptions scoring;
  scoring.bleu.tokenize = opt.bleu_tokenize;
  const MetricStatistics bleu_stats = metric_statistics("bleu", hyps, ref_streams, scoring);
  const MetricStatistics chrf_stats = metric_statistics("chrf", hyps, ref_streams, scoring);
  BleuScore bleu = bleu_from_statistics(bleu_stats.sums(), 1, scoring.bleu);
  out["translation"] = search_settings_json(search);
  out["translation"]["rescore"] = opt.rescore.checkpoints;
  out["translation"]["rescore_weights"] = opt.rescore.weights;
  out["translation"].update({{"beam", opt.decode.beam},
                             {"length_penalty", opt.decode.length_penalty},
                             {"min_len", opt.decode.min_len},
                             {"no_repeat_ngram_size", opt.decode.no_repeat_ngram_size},
                             {"sentences_per_s", static_cast<double>(n) / secs},
                             {"seconds", secs},
                             {"reference", opt.reference.empty() ? kCorpusTargetsReference : opt.reference}});
  out["bleu"] = {
      {"score", bleu.score}, {"signature", bleu.signature}, {"text", bleu.format()},  {"precisions", bleu.precisions},
      {"bp", bleu.bp},       {"sys_len", bleu.sys_len},     {"ref_len", bleu.ref_len}};
  ChrfScore chrf = chrf_from_statistics(chrf_stats.sums(), 1, scoring.chrf);
  out["chrf"] = {{"name", chrf.name}, {"score", chrf.score}, {"signature", chrf.signature}};
  // How far the luck of the test set reaches: sacreBLEU's --confidence on the same output (1,000 bootstrap
  // resamples, its seed 12345; `tern score REF -i HYP --confidence` prints the same), unless that is more draws than a
  // test may hold (a test split of over 500,000 sentences).
  constexpr int64_t kResamples = 1000;
  constexpr uint64_t kSeed = 12345;
  std::string ci_text;
  if (n <= 500'000) {
    for (const auto& [key, stats] :
         {std::pair<const char*, const MetricStatistics*>{"bleu", &bleu_stats}, {"chrf", &chrf_stats}}) {
      Confidence c = bootstrap_confidence(*stats, kResamples, kSeed);
      out[key]["confidence"] = {{"mean", c.mean.v}, {"ci", c.half_width.v}, {"resamples", kResamples}, {"seed", kSeed}};
      ci_text += fmt::format(" {} ± {:.2f}", stats->name, c.half_width.v);
    }
    ci_text = " (95% intervals:" + ci_text + ")";
  }
  if (opt.attention_samples > 0) out["samples"] = attention_samples(im, data, std::min(opt.attention_samples, n));
  if (!opt.hypotheses_out.empty()) {
    std::string text;
    for (const auto& s : hyps) text += s + "\n";
    write_text_file(opt.hypotheses_out, text);
    out["hypotheses_file"] = opt.hypotheses_out;
  }
  logf("{} ({}), {} = {:.2f}{}, on {} sentences, beam {}: {:.1f} sentences/s", bleu.format(), bleu.signature, chrf.name,
       chrf.score, ci_text, n, opt.decode.beam, static_cast<double>(n) / secs);
  return out;
}

nlohmann::json search_settings_json(const DecodeOptions& decode) {
  return {{"coverage_penalty", decode.coverage_penalty},
          {"early_stop", decode.early_stop},
          {"int8", decode.int8},
          {"cpu_gemm", decode.cpu_gemm == CpuGemm::kAuto ? nlohmann::json() : nlohmann::json(decode.cpu_gemm.name())},
          {"shortlist", decode.shortlist},
          {"lm", decode.lm},
          {"lm_weight", decode.lm.empty() ? nlohmann::json() : nlohmann::json(decode.lm_weight)}};
}

std::vector<std::string> scored_references(const std::vector<std::string>& parts, const std::string& split, int64_t n,
                                           const std::string& reference_file) {
  const CorpusReader corpus(parts);
  if (!corpus.has_split(split) || n < 0 || n > corpus.num_sentences(split))
    throw DataError(fmt::format("{}: has no {} sentences in split '{}'", corpus.path(), n, split));
  if (!reference_file.empty()) return aligned_references(reference_file, corpus, split, n);
  const Tokenizer tgt(corpus.vocab("tgt").model_proto, corpus.path() + " (tgt vocabulary)");
  const TokenBlock block = corpus.read(split, "tgt", 0, n);
  std::vector<std::string> out;
  for (size_t i = 0; i < block.size(); ++i) out.push_back(tgt.decode(block.sentence(i)));
  return out;
}

}  // namespace tern
