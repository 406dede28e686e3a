// The whole training configuration as typed structs, parsed from YAML in one place (config.cpp) and validated once.
// Unknown keys are errors that suggest the nearest valid key; the resolved config is written next to checkpoints.
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "data/batch_options.h"
#include "distributed/config.h"
#include "models/config.h"
#include "trainer/loss_scaler.h"

namespace tern {

enum class OptimizerKind { kAdam, kAdamw, kSgd };
enum class LrSchedule { kConstant, kInverseSqrt, kPlateau, kCosine };
enum class LossScaling { kAuto, kDynamic, kNone };
enum class ValidMetric { kAuto, kLoss, kBleu, kChrf };
enum class FreezeEmbeddings { kNone, kSrc, kTgt, kBoth };
template <>
struct ChoiceNames<OptimizerKind> {
  static constexpr std::array<const char*, 3> kNames{"adam", "adamw", "sgd"};
};
template <>
struct ChoiceNames<LrSchedule> {
  static constexpr std::array<const char*, 4> kNames{"constant", "inverse_sqrt", "plateau", "cosine"};
};
template <>
struct ChoiceNames<ValidMetric> {
  static constexpr std::array<const char*, 4> kNames{"auto", "loss", "bleu", "chrf"};
};
template <>
struct ChoiceNames<FreezeEmbeddings> {
  static constexpr std::array<const char*, 4> kNames{"none", "src", "tgt", "both"};
};
template <>
struct ChoiceNames<LmMode> {
  static constexpr std::array<const char*, 2> kNames{"sentence", "stream"};
};
template <>
struct ChoiceNames<LossScaling> {
  static constexpr std::array<const char*, 3> kNames{"auto", "dynamic", "none"};
};

struct DataConfig {
  // The HDF5 corpus from `tern prepare` (relative to the working directory), or a list of its parts (prepared
  // separately with the same vocabularies; each split is the parts' splits in order).
  std::vector<std::string> corpus;
  std::string train_split = "train";
  std::string valid_split = "valid";  // "" disables validation
  BatchingOptions batching;           // data.batch_tokens, data.max_sentences, data.pool_batches (per shard)
  int64_t shards = 0;                 // Data shards; each step takes one batch per shard (0: one per rank).
  // Language models: sentence (each sentence from a zero state, batched by length) | stream (the shard's sentences
  // in corpus order as data.batch_tokens / data.bptt parallel streams, read in windows of data.bptt tokens, the
  // recurrent state carried, detached, from window to window; training, validation and evaluate alike).
  Choice<LmMode> lm_mode = LmMode::kSentence;
  int64_t bptt = 35;  // stream mode: window length (truncated backpropagation through time)
  // Upsampling of corpus parts in training (fairseq --upsample-primary, OpenNMT-py's corpus weights): one whole number
  // in [1, 1000] a part of data.corpus, each part's training sentences taken that many times an epoch (e.g. [4, 1]:
  // in-domain data four times as often as a general corpus); [] takes each once. The shards are near-equal ranges of
  // the weighted sequence; validation and evaluation read each sentence once. Sentence mode only.
  std::vector<int64_t> weights;
  int64_t streams() const { return std::max<int64_t>(1, batching.batch_tokens / bptt); }
  void validate() const;
};

struct OptimConfig {
  Choice<OptimizerKind> optimizer = OptimizerKind::kAdam;  // adam | adamw (decoupled weight decay) | sgd
  double lr = 1e-3;                                        // Peak learning rate.
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double momentum = 0.0;         // SGD momentum.
  double weight_decay = 0.0;     // adam, sgd: L2 added to the gradient; adamw: decoupled (lr * wd * w)
  int64_t accumulate = 1;        // Batches per shard summed into one step (gradient accumulation; one all-reduce, after
                                 // the last). The effective batch is accumulate x data.shards batches.
  double clip_norm = 1.0;        // Global gradient-norm clipping (0 disables).
  double label_smoothing = 0.1;  // In [0, 1).
  // constant | inverse_sqrt (warmup then lr*sqrt(warmup/step)) | plateau | cosine (warmup, then from lr down to
  // min_lr along half a cosine, reaching it at train.max_steps)
  Choice<LrSchedule> schedule = LrSchedule::kInverseSqrt;
  int64_t warmup_steps = 1000;   // Linear warmup from 0 (all schedules).
  double plateau_factor = 0.5;   // plateau: multiply lr by this when validation does not improve...
  int64_t plateau_patience = 1;  // ...for this many validations in a row.
  double min_lr = 0.0;           // Lower bound for the decayed lr.
  void validate() const;
};

struct TrainLoopConfig {
  std::string run_dir = "runs/default";  // Log, metrics.jsonl, resolved config and checkpoints go here.
  // A fresh run starts from the parameters of this checkpoint of another run (fine-tuning, as fairseq
  // --finetune-from-model, Marian --pretrained-model): the ones evaluate uses (its weight average when it has one);
  // optimizer, schedule, step and data position start anew. Same model and vocabularies; resuming ignores it.
  std::string init_from;
  // Pretrained vectors for a fresh run's embedding tables (OpenNMT-py src_embeddings / tgt_embeddings, Marian
  // --embedding-vectors): a word2vec or GloVe text file of vectors of model.embedding values for the corpus's pieces
  // (data/embeddings.h; `tern encode` writes text in those pieces to train them on). Pieces it lacks keep their random
  // start. A resume finds them in its checkpoint; not with init_from. A language model's table is its target side.
  std::string src_embeddings, tgt_embeddings;
  // Embedding tables training leaves as they are (OpenNMT-py freeze_word_vecs_enc / _dec, Marian --embedding-fix-src
  // / -trg): none | src | tgt | both (a language model's table: tgt; with model.share_embeddings: both). With
  // model.tie_embeddings the target table is the output layer's weight too. A resume must keep it.
  Choice<FreezeEmbeddings> freeze_embeddings = FreezeEmbeddings::kNone;
  int64_t max_steps = 0;   // Stop after this many optimizer steps (0: no limit).
  int64_t max_epochs = 0;  // Stop after this many epochs (0: no limit).
  // Stop after this much wall time of this job, with a checkpoint (0: no limit); each resume gets it anew.
  double max_minutes = 0;
  int64_t log_every = 50;  // Steps between metrics lines.
  // Also write the metrics as TensorBoard scalars (train/loss, valid/bleu, ...) to run_dir/tensorboard, a file per
  // job: `tensorboard --logdir runs` shows every run, live.
  bool tensorboard = false;
  int64_t valid_every = 500;  // Steps between validations (0: only at the end).
  int64_t save_every = 1000;  // Steps between checkpoints (0: only at the end).
  int64_t keep_last = 3;      // Step checkpoints kept (>= 1); best.tern is kept apart.
  // Also keep the step checkpoints of the N best validations (train.valid_metric's; fairseq
  // --keep-best-checkpoints), for `tern average --best N RUN_DIR` (0: none; at most 100). A validation that enters
  // them saves a checkpoint even between train.save_every.
  int64_t keep_best = 0;
  double ema_decay = 0;        // Exponential moving average of the weights (0 disables; e.g. 0.999): what
                               // validation, best.tern, evaluate and translate use (--no-ema: the weights).
  int64_t early_stopping = 0;  // Stop after this many validations without improvement (0 disables).
  // What validation scores, and what best.tern, the plateau schedule and early stopping follow: loss (nats per target
  // token, lower is better) | bleu | chrf (the valid split translated, detokenized and scored as `tern score` does;
  // higher is better). auto: bleu for seq2seq, loss for language models (resolved when the config is read).
  Choice<ValidMetric> valid_metric = ValidMetric::kAuto;
  int64_t valid_beam = 1;  // Beam size of that translation (1: greedy).
  // That search's GNMT length penalty alpha and length limit (hypotheses stop at this ratio times the source length
  // plus 10 tokens), as `tern translate --length-penalty` / `--max-len-ratio` (fairseq --eval-bleu-args, Marian's
  // --normalize in validation): best.tern is then chosen by the search that will translate.
  double valid_length_penalty = 0.6;
  double valid_max_len_ratio = 2.0;
  // BLEU's tokenizer in validation, as `tern score --tokenize` (zh for a Chinese target): 13a | intl | char | zh |
  // none.
  std::string valid_tokenize = "13a";
  // Guided alignment (Marian --guided-alignment-weight / -cost): this weight times the attention's alignment cost
  // against the corpus's word alignments (tern prepare --train-align) is added to each target token's loss, summed
  // over the target tokens with links and averaged over all target tokens as the translation loss is (0: off;
  // Marian's recipes use 0.1). It needs a seq2seq model and a corpus with alignments.
  double guided_alignment_weight = 0;
  Choice<AlignmentCost> guided_alignment_cost = AlignmentCost::kCe;  // ce | mse
  uint64_t seed = 1;                                                 // Parameters, dropout and data order.
  Choice<DeviceRequest> device = DeviceRequest::kAuto;               // auto | cpu | cuda
  Choice<Precision> precision =
      Precision::kFp32;  // fp32 | fp16 (CUDA only) | bf16: autocast compute dtype (docs/precision.md)
  Choice<LossScaling> loss_scaling = LossScaling::kAuto;  // auto (dynamic for fp16, none otherwise) | dynamic | none
  LossScalerOptions loss_scaler;  // train.loss_scale_init, loss_scale_window, min_loss_scale (enabled is
                                  // decided by loss_scaling and the precision: resolve_run_settings)
  int64_t threads = 0;            // CPU threads per rank (0: OMP_NUM_THREADS, else cores / ranks on this node).
  int64_t max_bad_steps = 0;      // Non-finite losses skipped before training stops (0: stop at the first).
  int64_t check_sync_every = 0;   // Steps between checks that all ranks hold identical parameters (0 disables).
  std::string preempt_signals = "TERM,USR1,USR2";  // Signals that save a checkpoint and exit 75 (comma-separated:
                                                   // TERM, USR1, USR2, INT, HUP; others keep their default action).
  void validate() const;
};

struct Config {
  ModelConfig model;
  DataConfig data;
  OptimConfig optim;
  TrainLoopConfig train;
  DistributedConfig distributed;
  std::string source;  // where it came from, for messages
  // Throws ConfigError prefixed with `source`, or with --set when the rule is about a key in `overridden`.
  void validate(const std::vector<std::string>& overridden = {}) const;
};

// Parses `path` then applies `overrides` ("section.key=value"). Throws ConfigError naming the file, key and value.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});
// Same, from YAML text (source names it in messages).
Config parse_config(const std::string& yaml_text, const std::string& source,
                    const std::vector<std::string>& overrides = {});
// Resolves the `auto` values that depend on other keys (train.valid_metric: bleu for seq2seq, loss for language
// models) and a leading "~" of the paths (data.corpus, train.run_dir, train.init_from, train.src_embeddings and
// tgt_embeddings: the home directory, as in a shell); parse_config does it, and so does the trainer for a Config
// built in code.
Config resolve_defaults(Config cfg);
// The resolved config as YAML (every key, defaults included).
std::string to_yaml(const Config& cfg);
// Every key ("section.key") with its value as YAML text, in schema order: configs compare key by key.
std::vector<std::pair<std::string, std::string>> config_values(const Config& cfg);
// "TERM, USR1" -> {"TERM", "USR1"} (a SIG prefix is dropped); signal_number gives 0 for a name it does not know.
std::vector<std::string> split_signal_names(const std::string& list);
int signal_number(const std::string& name);

}  // namespace tern
