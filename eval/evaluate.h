// Offline evaluation of a checkpoint: perplexity (per token and per word), translation of a split with greedy or
// beam search, sacreBLEU-exact BLEU, and a JSON result; plus the model loader `tern translate` uses.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "models/model.h"
#include "models/precision.h"
#include "trainer/config.h"
#include "translation/decode.h"

namespace tern {

struct InferenceModel {
  Config config;
  SequenceModel model;
  std::unique_ptr<Tokenizer> src, tgt;  // src is null for a language model
  torch::Device device{torch::kCPU};
  Precision precision = Precision::kFp32;  // autocast dtype for every forward and decoding step
  int64_t step = 0;
  bool ema = false;            // the averaged weights were loaded
  bool use_ema = true;         // they were asked for (--no-ema: false); a --lm is loaded likewise
  int64_t max_src_tokens = 0;  // the training corpus's --max-tokens (0: not recorded)
};

// Loads a checkpoint for inference (eval mode); device auto picks CUDA when present. No precision takes the one the
// checkpoint was trained with; fp16 on a CPU is an error that says to pass fp32 or bf16.
// A checkpoint trained with train.ema_decay loads its averaged weights unless `use_ema` is false.
InferenceModel load_inference_model(const std::string& checkpoint, DeviceRequest device = DeviceRequest::kAuto,
                                    std::optional<Precision> precision = std::nullopt, bool use_ema = true);

// The search options of translate/evaluate/bench translate as they run with `im` (loaded from `checkpoint`):
// --int8 applied (the model's CPU search uses int8 output products; refused on a GPU, with --precision fp16/bf16,
// whose autocast steps do not use them, and for a language model, each with its rule), the --shortlist file loaded
// (DataError when missing, corrupted or built for other vocabularies; ConfigError for a language model) and the --lm
// checkpoint loaded on im's device and precision (ConfigError unless it is a language model beside a seq2seq `im`;
// CheckpointError when its vocabulary is not im's target vocabulary).
DecodeOptions prepare_decoding(InferenceModel& im, const DecodeOptions& decode, const std::string& checkpoint);

// Each target's log-probability in nats under im's model by teacher forcing, </s> included (a seq2seq model's given
// sources[i], line-aligned; a language model ignores them), `batch` sentences a forward. Targets and sources are
// token ids without <s> and </s>; an empty target scores </s> alone.
std::vector<double> sentence_logprobs(const InferenceModel& im, const std::vector<std::vector<int32_t>>& targets,
                                      const std::vector<std::vector<int32_t>>& sources, int64_t batch);

// n-best reranking (translate and evaluate --rescore; eval/rescore.h's Reranker does it).
struct RescoreOptions {
  // Each scores every hypothesis's text as `evaluate --text --source` does: a translation model (right to left,
  // model.right_left, or of other vocabularies) from the line's source text, a language model the text alone, each
  // encoded with its own vocabularies. Empty: no reranking.
  std::vector<std::string> checkpoints;
  // One a model, the searching model's first (empty: all 1). A hypothesis's score is weights[0] times the search's
  // score (its length-normalized log-probability) plus weights[m] times checkpoint m's log-probability of it (</s>
  // included), length-normalized the same way (the search's length penalty over that model's own tokens).
  std::vector<double> weights;
  bool enabled() const { return !checkpoints.empty(); }
  void validate(const DecodeOptions& decode) const;  // ConfigError: the weights' count and range; a beam search
};

struct EvaluateOptions {
  std::string checkpoint;
  std::vector<std::string> corpus;  // HDF5 corpus (or its parts); its vocabularies must match the checkpoint's
  std::string text;                 // or a raw text file, a sentence a line, scored under a language model, or the
  std::string source;               // target side of a seq2seq model, line-aligned with this source text file
  std::string split = "test";
  DeviceRequest device = DeviceRequest::kAuto;
  std::optional<Precision> precision;  // none: the checkpoint's train.precision
  bool use_ema = true;                 // the averaged weights of a train.ema_decay checkpoint (--no-ema: the weights)
  DecodeOptions decode;
  int64_t batch_sentences = 64;       // Sentences decoded together.
  int64_t limit = 0;                  // Evaluate only the first N sentences (0: all).
  std::string bleu_tokenize = "13a";  // BLEU's tokenizer (tern score --tokenize)
  std::string reference;              // Raw reference file (one line per sentence of the split); default: the corpus
                                      // targets, detokenized
  std::string hypotheses_out;         // Where detokenized hypotheses go ("" : not written)
  std::string json_out;               // JSON result file ("" : not written)
  bool overwrite = false;             // Replace existing --hyp-out / --json files (else refused before any work)
  bool translate = true;              // Decode and score BLEU and chrF (seq2seq only)
  RescoreOptions rescore;             // --rescore: the beam's hypotheses reranked by other checkpoints
  int64_t attention_samples = 3;      // Greedy translations with attention weights kept in the JSON (for reports)
  bool progress = true;
  void validate() const;  // throws ConfigError
};

// What an evaluation's JSON records as its "reference" when it scored against the corpus targets (no --ref).
inline constexpr const char* kCorpusTargetsReference = "corpus targets, detokenized";

// The search settings a result records (evaluate's "translation" block, bench translate's rows): early_stop, int8,
// cpu_gemm (as prepare_decoding resolved it; null on a GPU), shortlist, lm, and lm_weight (null without an lm).
nlohmann::json search_settings_json(const DecodeOptions& decode);

nlohmann::json evaluate(const EvaluateOptions& opt);
// The references an evaluation of `split` of the corpus `parts` scored its first `n` translations against: the lines
// of `reference_file` at the split's input line numbers (as --ref is read), or with "" the corpus's targets,
// detokenized. DataError for a corpus or file that cannot be read or does not align.
std::vector<std::string> scored_references(const std::vector<std::string>& parts, const std::string& split, int64_t n,
                                           const std::string& reference_file);
// A language model's perplexity on opt.text (each line encoded with the checkpoint's tokenizer, <s> before and </s>
// after it), or a seq2seq model's on the target text opt.text given the source text opt.source, line by line (as
// marian-scorer and fairseq --score-reference: to filter or rerank pairs). With `sentence_scores`, one line a
// sentence goes there: its log10 probability (</s> included, as KenLM's query totals it), its token count (</s>
// included) and its perplexity per token, tab-separated.
nlohmann::json evaluate_text(const EvaluateOptions& opt, std::ostream* sentence_scores = nullptr);

}  // namespace tern
