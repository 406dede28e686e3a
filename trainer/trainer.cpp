#include "trainer/trainer.h"

#include <malloc.h>
#include <unistd.h>

#ifdef TERN_WITH_NCCL
#include <ATen/cuda/CUDAContext.h>
#endif

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>
#include <utility>

#include "core/errors.h"
#include "core/files.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/progress.h"
#include "data/batcher.h"
#include "data/corpus.h"
#include "data/embeddings.h"
#include "data/tokenizer.h"
#include "distributed/reducer.h"
#include "models/loss.h"
#include "models/model.h"
#include "models/precision.h"
#include "trainer/checkpoint.h"
#include "trainer/ema.h"
#include "trainer/grad_norm.h"
#include "trainer/loss_scaler.h"
#include "trainer/run_dir.h"
#include "trainer/schedule.h"
#include "trainer/shard_rng.h"
#include "trainer/step.h"
#include "trainer/tensorboard.h"
#include "translation/bleu.h"
#include "translation/chrf.h"
#include "translation/translate_corpus.h"

namespace fs = std::filesystem;

namespace tern {
namespace {

std::atomic<int> g_signal{0};
void on_signal(int sig) { g_signal.store(sig); }

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// What ran this job, for reports: versions, host, devices, ranks, threads, precision.
nlohmann::json environment(const torch::Device& device, const Communicator& comm, Precision precision,
                           const std::string& resumed_from, const std::string& initialized_from) {
  nlohmann::json gpus = nlohmann::json::array();
#ifdef TERN_WITH_NCCL
  if (device.is_cuda())
    for (int i = 0; i < static_cast<int>(torch::cuda::device_count()); ++i)
      gpus.push_back(at::cuda::getDeviceProperties(static_cast<c10::DeviceIndex>(i))->name);
#endif
  return {{"tern_version", TERN_VERSION},
          {"torch_version", TORCH_VERSION},
          {"host", host_name()},
          {"working_dir", std::filesystem::current_path().string()},  // what relative paths of the config start from
          {"device", device.str()},
          {"gpus", gpus},
          {"world_size", comm.world()},
          {"backend", comm.backend()},
          {"threads_per_rank", torch::get_num_threads()},
          {"precision", precision_name(precision)},
          {"started", utc_timestamp()},
          {"resumed_from", resumed_from},
          {"initialized_from", initialized_from}};
}

class Trainer {
 public:
  Trainer(const Config& cfg, Communicator& comm, const TrainOptions& opt)
      : cfg_(resolve_defaults(cfg)),
        comm_(comm),
        opt_(opt),
        sched_(cfg_.optim, cfg_.train),
        corpus_(cfg_.data.corpus) {}

  TrainResult run();

 private:
  struct EpochPlan {
    std::vector<std::vector<std::vector<int64_t>>> batches;  // per shard of this rank: the epoch's batches
    int64_t steps = 0;                                       // steps this epoch (the same on every rank)
  };
  struct StepResult {
    bool applied = false;  // false: skipped (overflow or a non-finite loss)
    double nll = 0, tokens = 0, all_tokens = 0, grad_norm = 0, minutes = 0;  // summed over ranks; rank 0's clock
    double align = 0;      // the alignment cost summed over ranks (guided alignment)
    bool preempt = false;  // a pre-emption signal on any rank
    int signal = 0;        // this rank's
  };
  struct Interval {  // the logging interval's sums
    double nll = 0, tokens = 0, all_tokens = 0, align = 0;
    int64_t steps = 0;
    PhaseTimes times;
    Clock::time_point start = Clock::now();
  };
  void open_run();
  EpochPlan plan_epoch();
  std::vector<Batch> collate_step(const EpochPlan& plan, int64_t i) const;
  StepResult train_step(std::vector<Batch>& batches);
  void record_step(const StepResult& r, Progress& bar);
  bool after_step(const StepResult& r, int64_t steps_in_epoch, TrainResult& res);
  void finish(TrainResult& res);
  // A pre-emption signal at or during a validation: the checkpoint is saved without waiting for it (a long
  // validation could outlast the scheduler's grace time), marked so that a resume runs it first (`kind`: "step" or
  // "final", CheckpointMeta::validation_pending).
  void save_before_validation(TrainResult& res, const std::string& kind, int64_t next_epoch, int64_t next_batch);
  // On resume from such a checkpoint: the validation, recorded and saved as the uninterrupted run did; false when a
  // signal stopped it again (saved as before).
  bool run_pending_validation(TrainResult& res);
  void setup();
  void check_agreement();
  struct Validation {
    double loss = 0;  // nats per target token
    std::optional<BleuScore> bleu;
    std::optional<ChrfScore> chrf;
    double score = 0;          // train.valid_metric's
    bool interrupted = false;  // a pre-emption signal on some rank stopped it: the numbers are incomplete
  };
  Validation validate();          // the weights training uses, or their average with train.ema_decay
  Validation validate_current();  // the weights as they are
  // BLEU and chrF of the valid split translated (every rank its shard; the same scores on every rank); rank 0 writes
  // the hypotheses and references to run_dir/valid.hyp and valid.ref.
  void score_translation(Validation& v);
  void log_validation(const Validation& v, int64_t epoch, std::optional<double> lr, bool is_best);
  // A completed validation of this step (`final`: the one at the end of training) into the schedule, the result and
  // the log (`epoch` as the log numbers it); whether it is the best so far.
  bool record_validation(const Validation& v, bool final, int64_t epoch, TrainResult& res);
  void save(bool is_best, int64_t next_epoch, int64_t next_batch);
  // Whether this step validated and its score enters train.keep_best's checkpoints (its checkpoint must then be
  // saved).
  bool enters_kept_best() const;
  void restore(const std::string& path);
  void initialize_from(const std::string& path);  // train.init_from
  void load_pretrained_embeddings();              // train.src_embeddings, tgt_embeddings (a fresh run)
  // Whether train.freeze_embeddings freezes the source (`source`) or the target side's table.
  bool frozen_side(bool source) const {
    const FreezeEmbeddings f = cfg_.train.freeze_embeddings;
    return f == FreezeEmbeddings::kBoth || f == (source ? FreezeEmbeddings::kSrc : FreezeEmbeddings::kTgt);
  }
  // Checkpoint `path` (meta m) must agree with this run's config on every key but those `may_differ` accepts (else
  // CheckpointError "path: why: key is a there and b here; HINT: hint") and have been trained with the vocabularies
  // of this run's corpus (else CheckpointError, ending with `vocab_hint` when given). Returns the stored config.
  Config check_compatible(const CheckpointMeta& m, const std::string& path,
                          const std::function<bool(const std::string&)>& may_differ, const std::string& why,
                          const std::string& hint, const std::string& vocab_hint) const;
  std::string carried_state(size_t i);
  void restore_carried(size_t i, const std::string& bytes);
  void log_metrics(const MetricsRow& row);
  std::vector<double> sum_over_ranks(std::vector<double> values);
  bool is_root() const { return comm_.rank() == 0; }
  // The corpus's --max-tokens (prepare's policy attribute; the largest of its parts'), for translate's default source
  // cap; 0 when unknown.
  int64_t read_corpus_max_tokens() const {
    int64_t most = 0;
    for (const auto& text : corpus_.part_attrs("policy")) {
      const auto policy = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (!policy.is_object() || !policy.contains("max_tokens") || !policy["max_tokens"].is_number_integer()) return 0;
      most = std::max(most, policy["max_tokens"].get<int64_t>());
    }
    return most;
  }

  Config cfg_;
  Communicator& comm_;
  TrainOptions opt_;
  TrainingSchedule sched_;
  CorpusReader corpus_;
  std::unique_ptr<Tokenizer> tgt_tokenizer_;  // detokenizes validation translations (train.valid_metric bleu, chrf)
  torch::Device device_{torch::kCPU};
  SequenceModel model_;
  std::unique_ptr<torch::optim::Optimizer> optim_;
  std::unique_ptr<GradientReducer> reducer_;
  std::unique_ptr<StepRunner> runner_;
  std::unique_ptr<ParameterEma> ema_;  // train.ema_decay > 0
  std::unique_ptr<ShardRng> rng_;      // dropout's random stream per shard of this rank
  std::vector<torch::Tensor> params_;
  int64_t num_shards_ = 1;
  std::vector<std::unique_ptr<ShardData>> train_shards_, valid_shards_;
  bool stream_ = false;                                      // data.lm_mode stream
  std::vector<StreamLayout> train_layouts_, valid_layouts_;  // stream mode: per shard of this rank
  BatchingOptions batching_;
  Precision precision_ = Precision::kFp32;
  LossScaler scaler_;
  // Position, saved in checkpoints.
  int64_t step_ = 0, epoch_ = 0, batch_in_epoch_ = 0;
  int64_t bad_steps_ = 0;
  mutable std::atomic<int64_t> loader_ns_{0}, loader_tokens_{0};  // collate_step's time and tokens (background)
  int64_t corpus_max_tokens_ = 0;                                 // read once in setup, saved in every checkpoint
  int64_t saved_step_ = -1;         // the step of the newest checkpoint saved or resumed from
  std::string validation_pending_;  // CheckpointMeta::validation_pending of the checkpoint resumed from or saving
  std::string last_ckpt_, best_ckpt_;
  // train.keep_best: the kept checkpoints' steps and scores, the best first (CheckpointMeta::best_checkpoints), and
  // the score of the newest validation with its step (the checkpoint of that step records it).
  std::vector<CheckpointMeta::Scored> kept_best_;
  std::optional<CheckpointMeta::Scored> scored_;
  std::string run_id_;            // the run's identity (CheckpointMeta::run_id): made at a fresh start, kept by resumes
  std::string initialized_from_;  // CheckpointMeta::initialized_from: set by train.init_from, kept by resumes
  std::unique_ptr<RunDirectory> run_dir_;  // rank 0 only
  std::unique_ptr<EventWriter> events_;    // rank 0, train.tensorboard
  Clock::time_point start_ = Clock::now();
  Interval interval_;
  double total_tokens_ = 0;  // source + target tokens of all ranks, for tokens/s
};

void Trainer::setup() {
  const auto& t = cfg_.train;
  device_ = rank_device(opt_.settings.device, comm_.local_rank());
  precision_ = opt_.settings.precision;
  LossScalerOptions so = t.loss_scaler;
  so.enabled = opt_.settings.loss_scaling;
  scaler_ = LossScaler(so);
  // Model sizes come from the corpus vocabularies.
  const Config& c = cfg_;
  if (c.model.is_lm() != (corpus_.kind() == "monolingual"))
    throw ConfigError(fmt::format("{}: model.type {} needs a {} corpus, but {} is {}", c.source, c.model.type,
                                  c.model.is_lm() ? "monolingual" : "parallel", corpus_.path(), corpus_.kind()));
  if (c.model.share_embeddings && !c.model.is_lm() && corpus_.vocab("src").hash != corpus_.vocab("tgt").hash)
    throw ConfigError(
        fmt::format("{}: model.share_embeddings needs one vocabulary for both sides, but {} has a source and a target "
                    "SentencePiece model ({} and {} pieces); HINT: prepare the corpus with --joint-vocab",
                    c.source, corpus_.path(), corpus_.vocab("src").size, corpus_.vocab("tgt").size));
  // The config's hyper-parameters sized by the corpus vocabularies (the run's Config itself stays as resolved).
  ModelConfig sized = c.model;
  sized.src_vocab = c.model.is_lm() ? 0 : corpus_.vocab("src").size;
  sized.tgt_vocab = corpus_.vocab(c.model.is_lm() ? "text" : "tgt").size;
  corpus_max_tokens_ = read_corpus_max_tokens();
  if (c.train.valid_metric != ValidMetric::kLoss)
    tgt_tokenizer_ =
        std::make_unique<Tokenizer>(corpus_.vocab("tgt").model_proto, corpus_.path() + " (target vocabulary)");
  num_shards_ = c.data.shards > 0 ? c.data.shards : comm_.world();
  if (num_shards_ % comm_.world() != 0)
    throw ConfigError(fmt::format("{}: data.shards ({}) must be a multiple of the number of ranks ({})", c.source,
                                  num_shards_, comm_.world()));
  const int64_t per_rank = num_shards_ / comm_.world();
  const bool guided = t.guided_alignment_weight > 0;
  if (guided && !corpus_.has_alignments())
    throw ConfigError(fmt::format(
        "{}: train.guided_alignment_weight {} needs word alignments, but data.corpus {} has none; HINT: prepare it "
        "with --train-align (Pharaoh i-j links, e.g. from fast_align or eflomal), or set the weight to 0",
        c.source, t.guided_alignment_weight, corpus_.path()));
  for (int64_t k = 0; k < per_rank; ++k) {
    int64_t shard = comm_.rank() * per_rank + k;
    train_shards_.push_back(
        std::make_unique<ShardData>(corpus_, c.data.train_split, shard, num_shards_, c.data.weights, guided));
    const auto& sd = *train_shards_.back();
    if (comm_.world() > 1) {  // every rank says what it holds (tests check the shards are disjoint and cover the split)
      std::vector<std::string> ranges;
      for (const auto& [b, e] : sd.ranges()) ranges.push_back(fmt::format("[{}, {})", b, e));
      logf("reads {} sentences {} of {} (shard {} of {}) on host {}", c.data.train_split, fmt::join(ranges, " "),
           corpus_.num_sentences(c.data.train_split), shard, num_shards_, host_name());
    }
    if (!c.data.valid_split.empty())
      valid_shards_.push_back(std::make_unique<ShardData>(corpus_, c.data.valid_split, shard, num_shards_));
  }
  batching_ = c.data.batching;
  batching_.seed = t.seed;
  stream_ = c.data.lm_mode == LmMode::kStream;
  if (stream_) {
    for (const auto& s : train_shards_) train_layouts_.push_back(s->stream_layout(c.data.streams(), c.data.bptt));
    for (const auto& s : valid_shards_) valid_layouts_.push_back(s->stream_layout(c.data.streams(), c.data.bptt));
  }

  torch::manual_seed(t.seed);
  model_ = build_model(sized);
  model_->to(device_);
  params_ = model_->parameters();
  std::vector<torch::Tensor> trainable;  // all but the tables of train.freeze_embeddings
  for (const bool source : {true, false})
    if (torch::Tensor table = model_->embedding_table(source); table.defined() && frozen_side(source))
      table.requires_grad_(false);  // a language model has no source table: `both` freezes its one table
  for (const auto& p : params_)
    if (p.requires_grad()) trainable.push_back(p);
  optim_ = make_optimizer(c.optim, trainable);
  reducer_ = std::make_unique<GradientReducer>(comm_, params_, c.distributed.bucket_mb, c.distributed.overlap);
  // After the broadcast below every rank holds rank 0's parameters; the average starts from them (reset there).
  runner_ = std::make_unique<StepRunner>(StepParts{model_, optim_.get(), reducer_.get(), &comm_, device_, precision_,
                                                   c.optim.label_smoothing, c.optim.clip_norm,
                                                   t.guided_alignment_weight, t.guided_alignment_cost});
  // Dropout draws from one stream per shard (whichever rank holds it); the initial parameters come from rank 0.
  std::vector<int64_t> shards;
  for (int64_t k = 0; k < per_rank; ++k) shards.push_back(comm_.rank() * per_rank + k);
  rng_ = std::make_unique<ShardRng>(t.seed, shards, device_);
  runner_->use_shard_rng(rng_.get(), c.optim.accumulate);
  reducer_->broadcast_parameters();
  if (t.ema_decay > 0) ema_ = std::make_unique<ParameterEma>(params_, t.ema_decay);
}

// All ranks must train the same config on the same corpus: compare hashes, name the ranks that differ.
void Trainer::check_agreement() {
  if (comm_.world() == 1) return;
  std::string mine = hex64(hash_string(to_yaml(cfg_))) + "/" + hex64(hash_string(corpus_.identity()));
  auto all = comm_.allgather(mine);
  std::vector<int> differ;
  for (int r = 0; r < comm_.world(); ++r)
    if (all[r] != all[0]) differ.push_back(r);
  if (!differ.empty())
    throw DistributedError(
        fmt::format("ranks {} have a different config or corpus than rank 0 (config/corpus hash {} vs "
                    "{}); HINT: every rank must read the same config file and corpus",
                    fmt::join(differ, ", "), all[differ[0]], all[0]));
}

// Sums several host values over ranks in one collective (each scalar collective costs a full round trip).
std::vector<double> Trainer::sum_over_ranks(std::vector<double> values) {
  if (comm_.world() == 1) return values;
  torch::Tensor t = torch::tensor(values, torch::kFloat64);
  comm_.allreduce_sum(t);
  return {t.data_ptr<double>(), t.data_ptr<double>() + t.numel()};
}

Trainer::Validation Trainer::validate() {
  if (!ema_) return validate_current();
  ema_->swap();  // validation scores the averaged weights
  Validation v = validate_current();
  ema_->swap();
  return v;
}

Trainer::Validation Trainer::validate_current() {
  torch::NoGradGuard ng;
  model_->eval();
  double tokens = 0;
  torch::Tensor nll = torch::zeros({}, torch::dtype(torch::kFloat64).device(device_));  // summed on the device
  BatchingOptions b = batching_;
  b.shuffle = false;
  bool interrupted = false;  // a pre-emption signal: stop, every rank learns it at the sum below
  for (size_t s = 0; s < valid_shards_.size() && !interrupted; ++s) {
    auto& shard = valid_shards_[s];
    if (stream_) {
      auto [sum, n] = stream_nll(*model_, *shard, valid_layouts_[s], device_, precision_);
      nll += sum, tokens += n;
      continue;
    }
    for (const auto& ids : shard->make_batches(b, 0)) {
      if ((interrupted = g_signal.load() != 0)) break;
      Batch batch = shard->collate(ids);
      AutocastScope autocast(precision_, device_);
      auto logits = model_->forward(batch.src.defined() ? batch.src.to(device_) : batch.src, batch.src_len,
                                    batch.tgt_in.to(device_));
      nll += sequence_loss(logits, batch.tgt_out.to(device_), 0.0).nll.to(torch::kFloat64);
      tokens += static_cast<double>(batch.target_tokens);
    }
  }
  auto sums = sum_over_ranks({nll.item<double>(), tokens, interrupted ? 1.0 : 0.0});
  Validation v;
  v.loss = sums[0] / std::max(1.0, sums[1]);
  v.score = v.loss;
  v.interrupted = sums[2] > 0;
  if (!v.interrupted && cfg_.train.valid_metric != ValidMetric::kLoss) score_translation(v);
  model_->train();
  return v;
}

void Trainer::score_translation(Validation& v) {
  CorpusTranslateOptions to;
  to.decode.beam = cfg_.train.valid_beam;
  to.decode.length_penalty = cfg_.train.valid_length_penalty;
  to.decode.max_len_ratio = cfg_.train.valid_max_len_ratio;
  to.device = device_, to.precision = precision_;
  to.stop = [] { return g_signal.load() != 0; };
  std::string hyps, refs;  // this rank's shards, a line per sentence
  bool stopped = false;
  for (auto& shard : valid_shards_) {
    if (stopped) break;
    const CorpusTranslation tr = translate_corpus(*model_, *shard, *tgt_tokenizer_, to);
    stopped = tr.stopped;
    for (size_t i = 0; i < tr.hypotheses.size(); ++i) hyps += tr.hypotheses[i] + "\n", refs += tr.references[i] + "\n";
  }
  if (sum_over_ranks({stopped ? 1.0 : 0.0})[0] > 0) {  // every rank stops, whichever got the signal
    v.interrupted = true;
    return;
  }
  // Shards are contiguous and in rank order: concatenated, they are the split in corpus order.
  auto lines = [](const std::vector<std::string>& parts) {
    std::vector<std::string> out;
    for (const auto& p : parts) {
      std::istringstream in(p);
      for (std::string line; std::getline(in, line);) out.push_back(line);
    }
    return out;
  };
  const std::vector<std::string> hyp_parts = comm_.allgather(hyps), ref_parts = comm_.allgather(refs);
  const std::vector<std::string> all_hyps = lines(hyp_parts), all_refs = lines(ref_parts);
  BleuOptions bleu;
  bleu.tokenize = cfg_.train.valid_tokenize;
  v.bleu = corpus_bleu(all_hyps, {all_refs}, bleu);
  v.chrf = corpus_chrf(all_hyps, {all_refs});
  v.score = cfg_.train.valid_metric == ValidMetric::kBleu ? v.bleu->score : v.chrf->score;
  if (!is_root()) return;
  const fs::path dir(cfg_.train.run_dir);
  auto joined = [](const std::vector<std::string>& parts) {
    std::string all;
    for (const auto& p : parts) all += p;
    return all;
  };
  write_file_atomic((dir / "valid.hyp").string(), joined(hyp_parts));
  write_file_atomic((dir / "valid.ref").string(), joined(ref_parts));
}

void Trainer::log_validation(const Validation& v, int64_t epoch, std::optional<double> lr, bool is_best) {
  MetricsRow row;
  row.kind = MetricsKind::kValid, row.step = step_, row.epoch = epoch, row.elapsed_s = since(start_);
  row.valid_loss = v.loss, row.valid_ppl = std::exp(v.loss), row.lr = lr;
  if (v.bleu) row.valid_bleu = v.bleu->score, row.valid_bleu_signature = v.bleu->signature;
  if (v.chrf) row.valid_chrf = v.chrf->score, row.valid_chrf_signature = v.chrf->signature;
  log_metrics(row);
  if (!is_root()) return;
  std::string scores;
  if (v.bleu)
    scores = fmt::format(
        ", BLEU {:.2f}, {} {:.2f} (beam {}{})", v.bleu->score, v.chrf->name, v.chrf->score, cfg_.train.valid_beam,
        cfg_.train.valid_beam > 1 ? fmt::format(", length penalty {}", cfg_.train.valid_length_penalty) : "");
  logf("validation at step {}: loss {:.4f} nats/token, ppl {:.2f}{}{}", step_, v.loss, std::exp(v.loss), scores,
       is_best ? fmt::format(" (best {})", cfg_.train.valid_metric.name()) : "");
}

void Trainer::log_metrics(const MetricsRow& row) {
  if (!is_root()) return;
  run_dir_->append_metrics(row);
  if (!events_) return;
  const bool train = row.kind == MetricsKind::kTrain;
  const std::pair<const char*, const std::optional<double>*> scalars[] = {
      {"train/loss", &row.train_loss},           {"train/ppl", &row.train_ppl},
      {"train/lr", train ? &row.lr : nullptr},   {"train/grad_norm", &row.grad_norm},
      {"train/tokens_per_s", &row.tokens_per_s}, {"train/loss_scale", &row.loss_scale},
      {"valid/loss", &row.valid_loss},           {"valid/ppl", &row.valid_ppl},
      {"valid/bleu", &row.valid_bleu},           {"valid/chrf", &row.valid_chrf},
      {"train/align", &row.train_align}};
  try {
    for (const auto& [tag, value] : scalars)
      if (value && value->has_value()) events_->scalar(tag, row.step, **value);
    events_->flush();
  } catch (const IoError& e) {  // TensorBoard is a view: losing it must not stop training
    logf("warning: {}; TensorBoard events stop here (metrics.jsonl has every row)", e.what());
    events_.reset();
  }
}

void Trainer::save(bool is_best, int64_t next_epoch, int64_t next_batch) {
  // The RNG streams of every shard (CPU, and CUDA when training on a GPU) travel to rank 0, which writes the file:
  // local stream i of rank r is shard r * (shards per rank) + i.
  std::vector<std::vector<std::string>> cpu_rng, cuda_rng;  // [local index][rank]
  for (size_t i = 0; i < rng_->size(); ++i) {
    cpu_rng.push_back(comm_.allgather(rng_->cpu_state(i)));
    cuda_rng.push_back(comm_.allgather(rng_->cuda_state(i)));
  }
  // Stream mode: the state each shard carries into its next window travels to rank 0 the same way.
  std::vector<std::vector<std::string>> carried;  // [local index][rank]
  if (stream_)
    for (size_t i = 0; i < rng_->size(); ++i) carried.push_back(comm_.allgather(carried_state(i)));
  const std::string name = step_checkpoint_name(step_);
  const fs::path dir(cfg_.train.run_dir);
  const std::string previous = last_ckpt_;
  last_ckpt_ = (dir / name).string();  // on every rank: all agree on what was saved last
  saved_step_ = step_;
  if (is_best) best_ckpt_ = (dir / "best.tern").string();
  const bool scored = scored_ && scored_->step == step_, entered = enters_kept_best();
  if (entered) {  // after the entries at least as good: an equal score keeps the older one
    const bool higher = sched_.higher_is_better();
    const auto at = std::find_if(kept_best_.begin(), kept_best_.end(), [&](const CheckpointMeta::Scored& k) {
      return higher ? scored_->score > k.score : scored_->score < k.score;
    });
    kept_best_.insert(at, *scored_);
    if (static_cast<int64_t>(kept_best_.size()) > cfg_.train.keep_best)
      kept_best_.resize(static_cast<size_t>(cfg_.train.keep_best));
  }
  if (!is_root()) {
    comm_.barrier();
    return;
  }
  torch::serialize::OutputArchive ar, model_ar, optim_ar;
  model_->save(model_ar);
  optim_->save(optim_ar);
  ar.write("model", model_ar);
  ar.write("optimizer", optim_ar);
  if (ema_) ema_->save(ar);
  for (size_t i = 0; i < rng_->size(); ++i)
    for (int r = 0; r < comm_.world(); ++r) {
      const std::string shard =
          std::to_string(static_cast<int64_t>(r) * static_cast<int64_t>(rng_->size()) + static_cast<int64_t>(i));
      ar.write("rng_cpu_shard" + shard, bytes_tensor(cpu_rng[i][r]));
      if (!cuda_rng[i][r].empty()) ar.write("rng_cuda_shard" + shard, bytes_tensor(cuda_rng[i][r]));
      if (!carried.empty() && !carried[i][r].empty())
        ar.write("stream_state_shard" + shard, bytes_tensor(carried[i][r]));
    }
  for (const auto& side : corpus_.sides()) ar.write("vocab_" + side, bytes_tensor(corpus_.vocab(side).model_proto));
  std::ostringstream blob;
  ar.save_to(blob);
  CheckpointMeta meta;
  meta.step = step_, meta.epoch = next_epoch, meta.batch_in_epoch = next_batch, meta.bad_steps = bad_steps_;
  meta.world_size = comm_.world(), meta.num_shards = num_shards_, meta.config_yaml = to_yaml(cfg_);
  meta.corpus_identity = corpus_.identity(), meta.corpus_kind = corpus_.kind(), meta.run_id = run_id_;
  meta.initialized_from = initialized_from_, meta.validation_pending = validation_pending_;
  if (scored) meta.valid_score = scored_->score;
  meta.best_checkpoints = kept_best_;
  meta.corpus_max_tokens = corpus_max_tokens_, meta.loss_scaler = scaler_.state(), meta.torch_version = TORCH_VERSION;
  for (const auto& side : corpus_.sides()) meta.vocab[side] = {corpus_.vocab(side).size, corpus_.vocab(side).hash};
  sched_.save(meta.schedule);
  CheckpointData d{to_json(meta), blob.str()};
  try {
    write_checkpoint(last_ckpt_, d);
  } catch (const CheckpointError& e) {  // a full disk, most often: say what the run can resume from
    throw CheckpointError(
        previous.empty()
            ? fmt::format("{}; the run has no checkpoint yet: make room, then start it again", e.what())
            : fmt::format("{}; the newest checkpoint of the run is still {}: make room, then resume from it with "
                          "--resume",
                          e.what(), previous));
  }
  write_latest(cfg_.train.run_dir, name);
  if (is_best) write_checkpoint(best_ckpt_, d);
  std::vector<int64_t> kept;
  for (const auto& k : kept_best_) kept.push_back(k.step);
  run_dir_->prune(cfg_.train.keep_last, last_ckpt_, kept);
  logf("saved checkpoint {}{}", last_ckpt_,
       is_best   ? " (best so far)"
       : entered ? fmt::format(" (one of the {} best: train.keep_best)", cfg_.train.keep_best)
                 : "");
  comm_.barrier();
}

// Stream mode: shard i's carried state (h, and c for an LSTM) as bytes; "" before its first window.
std::string Trainer::carried_state(size_t i) {
  auto& c = runner_->carried();
  if (i >= c.size() || !c[i].h.defined()) return "";
  torch::serialize::OutputArchive ar;
  ar.write("h", c[i].h.cpu());
  if (c[i].c.defined()) ar.write("c", c[i].c.cpu());
  std::ostringstream out;
  ar.save_to(out);
  return out.str();
}

void Trainer::restore_carried(size_t i, const std::string& bytes) {
  auto& c = runner_->carried();
  if (c.size() <= i) c.resize(i + 1);
  torch::serialize::InputArchive ar;
  std::istringstream in(bytes);
  ar.load_from(in, device_);
  ar.read("h", c[i].h);
  torch::Tensor cell;
  if (ar.try_read("c", cell)) c[i].c = cell;
}

Config Trainer::check_compatible(const CheckpointMeta& m, const std::string& path,
                                 const std::function<bool(const std::string&)>& may_differ, const std::string& why,
                                 const std::string& hint, const std::string& vocab_hint) const {
  Config saved;
  try {
    saved = parse_config(m.config_yaml, path + " (stored config)");
  } catch (const ConfigError& e) {
    throw CheckpointError(path + ": its stored config does not parse: " + e.what());
  }
  Config here = cfg_, there = saved;  // compared with their depths resolved: one model, however spelled
  here.model = here.model.with_depths_resolved(), there.model = there.model.with_depths_resolved();
  const auto mine = config_values(here), theirs = config_values(there);
  for (size_t i = 0; i < mine.size(); ++i)
    if (mine[i] != theirs[i] && !may_differ(mine[i].first))
      throw CheckpointError(fmt::format("{}: {}: {} is {} there and {} here; HINT: {}", path, why, mine[i].first,
                                        theirs[i].second, mine[i].second, hint));
  for (const auto& side : corpus_.sides())
    if (!m.vocab.count(side) || m.vocab.at(side).hash != corpus_.vocab(side).hash)
      throw CheckpointError(fmt::format("{}: was trained with a different {} vocabulary than {}{}", path, side,
                                        corpus_.path(), vocab_hint.empty() ? "" : "; HINT: " + vocab_hint));
  return saved;
}

void Trainer::initialize_from(const std::string& path) {
  if (is_root()) {
    CheckpointData d = read_checkpoint(path);
    const CheckpointMeta m = checkpoint_meta(d.meta, path);
    check_compatible(
        m, path,
        [](const std::string& key) {
          return key.rfind("model.", 0) != 0 || key == "model.dropout" || key == "model.dropout_src" ||
                 key == "model.dropout_tgt" || key == "model.dropout_rnn" || key == "model.embedding_init" ||
                 key == "model.embedding_std";
        },
        "train.init_from needs the model it was trained with",
        "give this run the model section of its config.yaml "
        "(model.dropout, dropout_src, dropout_tgt, dropout_rnn, embedding_init and embedding_std may differ)",
        "prepare the new data with `tern prepare --vocab-from CORPUS`, CORPUS the corpus it was trained on");
    torch::serialize::InputArchive ar, model_ar;
    std::istringstream in(d.archive);
    bool averaged = false;
    try {
      ar.load_from(in, device_);
      ar.read("model", model_ar);
      model_->load(model_ar);
      averaged = load_ema_into(ar, params_);
    } catch (const c10::Error& e) {
      throw CheckpointError(path + ": cannot load the model: " + e.msg());
    }
    logf("initialized from {} (step {}{}): the optimizer, the schedule and the step start anew", path, m.step,
         averaged ? ", its weight average" : "");
    initialized_from_ = fmt::format("{} (run {}, step {})", path, m.run_id.empty() ? "unknown" : m.run_id, m.step);
  }
  reducer_->broadcast_parameters();
  if (ema_) ema_ = std::make_unique<ParameterEma>(params_, cfg_.train.ema_decay);  // from the weights it starts at
}

void Trainer::load_pretrained_embeddings() {
  if (is_root()) {
    const bool lm = cfg_.model.is_lm();
    for (const bool source : {true, false}) {
      const std::string& path = source ? cfg_.train.src_embeddings : cfg_.train.tgt_embeddings;
      if (path.empty()) continue;
      const std::string key = source ? "train.src_embeddings" : "train.tgt_embeddings";
      const std::string side = lm ? "text" : source ? "src" : "tgt";
      const std::string which = lm ? "" : source ? "source " : "target ";
      const Tokenizer tokenizer(corpus_.vocab(side).model_proto, corpus_.path() + " (" + side + " vocabulary)");
      std::vector<std::string> pieces;
      for (int64_t id = 0; id < tokenizer.vocab_size(); ++id)
        pieces.push_back(tokenizer.piece(static_cast<int32_t>(id)));
      torch::Tensor table = model_->embedding_table(source);  // (V, E)
      const PretrainedVectors v = read_pretrained_vectors(path, key, pieces, cfg_.model.embedding,
                                                          fmt::format("the {}vocabulary of {}", which, corpus_.path()));
      torch::NoGradGuard ng;
      const auto n = static_cast<int64_t>(pieces.size());
      const torch::Tensor found = torch::from_blob(const_cast<uint8_t*>(v.found.data()), {n}, torch::kUInt8)
                                      .to(torch::kBool)
                                      .to(table.device());  // (V)
      const torch::Tensor values = torch::from_blob(const_cast<float*>(v.values.data()), {n, v.dim}, torch::kFloat)
                                       .to(table.device(), table.scalar_type());  // (V, E)
      table.copy_(torch::where(found.unsqueeze(1), values, table));
      logf("{} {}: vectors for {} of the {} {}pieces ({:.1f}%; {} vectors in the file), the rest start at random{}",
           key, path, v.found_count, n - 1, which,
           100.0 * static_cast<double>(v.found_count) / static_cast<double>(n - 1), v.vectors,
           frozen_side(source) ? "; frozen (train.freeze_embeddings)" : "");
    }
  }
  reducer_->broadcast_parameters();
  if (ema_) ema_ = std::make_unique<ParameterEma>(params_, cfg_.train.ema_decay);  // from the weights it starts at
}

void Trainer::restore(const std::string& path) {
  CheckpointData d = read_checkpoint(path);
  const CheckpointMeta m = checkpoint_meta(d.meta, path);
  if (!m.averaged_from.empty())
    throw CheckpointError(
        fmt::format("{}: is an average of {} checkpoints (tern average) and holds no optimizer state, "
                    "so training cannot resume from it; HINT: resume from one of them ({})",
                    path, m.averaged_from.size(), m.averaged_from.back()));
  auto need = [&](bool ok, const std::string& what) {
    if (!ok) throw CheckpointError(path + ": " + what);
  };
  // The model and the optimizer's kind must be those of the checkpoint; everything else may change on resume.
  const Config saved = check_compatible(
      m, path,
      [](const std::string& key) {
        return key.rfind("model.", 0) != 0 && key != "optim.optimizer" && key != "optim.accumulate" &&
               key != "train.freeze_embeddings";  // the optimizer's state holds the parameters it trains
      },
      "was trained with a different model configuration", "resume with the config saved beside it (config.yaml)", "");
  // The same vocabularies but other sentences (a corpus prepared again with more data): allowed, since continuing on
  // new data is a use, but the saved data position belongs to the old corpus, so it is said.
  if (!m.corpus_identity.empty() && m.corpus_identity != corpus_.identity() && is_root())
    logf(
        "warning: {} is not the corpus {} was trained on (sentences: {} there, {} here): training continues at "
        "epoch {}, batch {} of this corpus's order; the run is no longer an exact continuation",
        corpus_.path(), path, CorpusReader::identity_sizes(m.corpus_identity),
        CorpusReader::identity_sizes(corpus_.identity()), m.epoch + 1, m.batch_in_epoch);
  // Other corpus weights: allowed (a new mix for the rest of the run), said like a changed corpus.
  if (saved.data.weights != cfg_.data.weights && is_root())
    logf(
        "warning: data.weights is [{}] here and [{}] in {}: training continues at epoch {}, batch {} of this "
        "weighting's order; the run is no longer an exact continuation",
        fmt::join(cfg_.data.weights, ", "), fmt::join(saved.data.weights, ", "), path, m.epoch + 1, m.batch_in_epoch);
  // The global batch is one batch per shard: the shards must be those of the run, the ranks may differ.
  const int64_t saved_shards = m.num_shards > 0 ? m.num_shards : m.world_size;  // older tern: one shard per rank
  need(saved_shards == num_shards_,
       fmt::format("was trained with {} data shard(s) (the global batch is one batch per shard), this job has {}; "
                   "HINT: resume with --set data.shards={} on a number of ranks that divides it",
                   saved_shards, num_shards_, saved_shards));
  torch::serialize::InputArchive ar, model_ar, optim_ar;
  std::istringstream in(d.archive);
  try {
    ar.load_from(in, device_);
    ar.read("model", model_ar);
    ar.read("optimizer", optim_ar);
    model_->load(model_ar);
    optim_->load(optim_ar);
    if (ema_) {
      torch::serialize::InputArchive probe;
      if (ar.try_read("ema", probe))
        ema_->load(ar);
      else
        ema_ = std::make_unique<ParameterEma>(params_, cfg_.train.ema_decay),
        logf("{} holds no weight average: train.ema_decay starts one from its weights", path);
    }
    for (size_t i = 0; i < rng_->size(); ++i) {
      const std::string shard = std::to_string(rng_->shard(i));
      torch::Tensor cpu, cuda;
      if (!ar.try_read("rng_cpu_shard" + shard, cpu)) {  // older tern: a stream per rank, one shard per rank
        need(m.world_size == comm_.world(),
             fmt::format("was written by tern before per-shard random streams, by a job of {} ranks; this job has "
                         "{}; HINT: resume it once with mpirun -np {}, later checkpoints resume on any number of "
                         "ranks",
                         m.world_size, comm_.world(), m.world_size));
        ar.read("rng_cpu_" + std::to_string(comm_.rank()), cpu);
        if (device_.is_cuda()) ar.try_read("rng_cuda_" + std::to_string(comm_.rank()), cuda);
      } else if (device_.is_cuda()) {
        ar.try_read("rng_cuda_shard" + shard, cuda);
      }
      rng_->set_states(i, cpu, cuda);
      torch::Tensor state;
      if (stream_ && m.batch_in_epoch > 0) {
        need(ar.try_read("stream_state_shard" + shard, state),
             "holds no carried stream state for shard " + shard +
                 " (was it trained with data.lm_mode sentence?); HINT: resume with the data.lm_mode it was trained "
                 "with, or from a checkpoint at an epoch boundary");
        restore_carried(i, tensor_bytes(state));
      }
    }
  } catch (const c10::Error& e) {
    throw CheckpointError(path + ": cannot load model/optimizer state: " + e.msg());
  }
  step_ = m.step, epoch_ = m.epoch, batch_in_epoch_ = m.batch_in_epoch, bad_steps_ = m.bad_steps;
  if (!m.run_id.empty()) run_id_ = m.run_id;
  initialized_from_ = m.initialized_from;
  validation_pending_ = m.validation_pending;
  try {
    const bool same_metric = sched_.load(m.schedule);
    if (!same_metric && is_root())
      logf(
          "train.valid_metric is {} now, not {} as in {}: the best score{} and early stopping start over (best.tern "
          "is replaced at the next validation)",
          cfg_.train.valid_metric.name(), m.schedule.value("valid_metric", "loss"), path,
          m.best_checkpoints.empty() ? "" : ", train.keep_best's checkpoints");
    // train.keep_best's list goes on (a smaller keep_best drops the worst; the next save removes their files).
    if (same_metric) kept_best_ = m.best_checkpoints;
    if (static_cast<int64_t>(kept_best_.size()) > cfg_.train.keep_best)
      kept_best_.resize(static_cast<size_t>(cfg_.train.keep_best));
    if (!m.loss_scaler.is_null()) scaler_.load(m.loss_scaler);
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(path + ": its metadata lacks the schedule or loss-scaler state (" + e.what() + ")");
  }
  last_ckpt_ = path;
  saved_step_ = step_;
  logf("resumed from {} at step {} (epoch {}, batch {})", path, step_, epoch_ + 1, batch_in_epoch_);
}

// Rank 0 owns the run directory: it locks it and decides where training starts; the other ranks follow. Then the
// model, the optimizer and the restored position, and the run's header lines.
void Trainer::open_run() {
  const auto& t = cfg_.train;
  // Rank 0 owns the run directory: it locks it and decides where training starts; the other ranks follow.
  std::string resume, resume_note;
  if (is_root()) {
    run_dir_ = std::make_unique<RunDirectory>(t.run_dir, "train.run_dir");
    run_dir_->lock();
    resume = run_dir_->resume_target(opt_.resume, resume_note);
    if (resume.empty()) run_dir_->check_fresh_start(opt_.config_file, to_yaml(cfg_));
    set_log_file((fs::path(t.run_dir) / "train.log").string());  // from here on (where it resumes or starts from)
    std::random_device entropy;  // a fresh run's identity, replaced by the checkpoint's when resuming
    run_id_ = hex64(static_cast<uint64_t>(entropy()) << 32 | entropy());
  }
  resume = comm_.allgather(resume)[0];
  run_id_ = comm_.allgather(run_id_)[0];
  // Hang diagnosis: every rank's heartbeat, read by a rank whose collective times out.
  if (comm_.world() > 1) comm_.enable_heartbeat((fs::path(t.run_dir) / "heartbeat").string());
  setup();
  check_agreement();
  if (!resume_note.empty()) logf("{}", resume_note);
  if (!resume.empty())
    restore(resume);
  else if (!t.init_from.empty())
    initialize_from(t.init_from);
  else if (!t.src_embeddings.empty() || !t.tgt_embeddings.empty())
    load_pretrained_embeddings();
  if (is_root()) {
    // Temporary files of a save that was interrupted (killed job, full disk) are never loaded: remove them.
    for (const auto& f : remove_stale_temporaries(t.run_dir)) logf("removed {}, left by an interrupted save", f);
    write_file_atomic((fs::path(t.run_dir) / "config.yaml").string(), to_yaml(cfg_));
    write_file_atomic((fs::path(t.run_dir) / "environment.json").string(),
                      environment(device_, comm_, precision_, resume, initialized_from_).dump(1) + "\n");
    if (t.tensorboard)
      events_ = std::make_unique<EventWriter>((fs::path(t.run_dir) / "tensorboard").string(), step_ + 1);
    if (const int64_t dropped = run_dir_->open_metrics(step_))
      logf(
          "metrics.jsonl: dropped {} line(s) of steps after step {} or cut by a kill (training continues from step {})",
          dropped, step_, step_);
    int64_t n = 0;
    for (auto& p : params_) n += p.numel();
    logf(
        "model {} ({} {}x{}, E={}{}{}), {} parameters; device {}, {}; {} rank(s), backend {} (overlap {}, {} "
        "bucket(s)), {} thread(s) per rank",
        cfg_.model.type, cfg_.model.cell,
        cfg_.model.encoder_layers() == cfg_.model.decoder_layers()
            ? std::to_string(cfg_.model.encoder_layers())
            : fmt::format("{}+{}", cfg_.model.encoder_layers(), cfg_.model.decoder_layers()),
        cfg_.model.hidden, cfg_.model.embedding,
        std::string(cfg_.model.layer_norm ? ", layer-normalized" : "") +
            (cfg_.model.enc_cell_depth > 1 ? fmt::format(", encoder cell depth {}", cfg_.model.enc_cell_depth) : ""),
        std::string(cfg_.model.dropout_rnn > 0 ? fmt::format(", recurrent dropout {}", cfg_.model.dropout_rnn) : "") +
            (cfg_.model.right_left ? ", right to left" : ""),
        n, device_.str(), t.precision, comm_.world(), comm_.backend(), reducer_->overlapping() ? "on" : "off",
        reducer_->buckets().size(), torch::get_num_threads());
    logf("corpus {}: {} train sentences in {} shard(s), {} valid", corpus_.path(),
         corpus_.num_sentences(cfg_.data.train_split), num_shards_,
         cfg_.data.valid_split.empty() ? 0 : corpus_.num_sentences(cfg_.data.valid_split));
    if (t.guided_alignment_weight > 0)
      logf("guided alignment: weight {}, cost {}, against the corpus's word alignments", t.guided_alignment_weight,
           t.guided_alignment_cost);
    if (!cfg_.data.weights.empty()) {
      const std::vector<int64_t> n = corpus_.part_sentences(cfg_.data.train_split);
      std::vector<std::string> parts;
      int64_t total = 0;
      for (size_t k = 0; k < n.size(); ++k) {
        parts.push_back(fmt::format("{} x{} ({} sentences)", corpus_.paths()[k], cfg_.data.weights[k], n[k]));
        total += cfg_.data.weights[k] * n[k];
      }
      logf("data.weights: {}: {} train sentences an epoch", fmt::join(parts, ", "), total);
    }
  }
}

// This epoch's batches of every shard of this rank; every rank takes the same number of steps: the fewest batches of
// any shard.
Trainer::EpochPlan Trainer::plan_epoch() {
  EpochPlan plan;
  const int64_t k = cfg_.optim.accumulate;
  if (stream_) {  // every window of every shard once; a shard with fewer windows reads padding at the end
    double most = 0;
    for (const auto& l : train_layouts_) most = std::max(most, static_cast<double>(l.windows));
    plan.steps = (static_cast<int64_t>(comm_.allreduce_max(most)) + k - 1) / k;
    return plan;
  }
  double fewest = 1e18;
  for (auto& s : train_shards_) {
    plan.batches.push_back(s->make_batches(batching_, epoch_));
    fewest = std::min(fewest, static_cast<double>(plan.batches.back().size()));
  }
  const int64_t batches = static_cast<int64_t>(-comm_.allreduce_max(-fewest));
  plan.steps = batches / k;  // the last batches % k of the epoch are left out (as a partial batch would be)
  if (plan.steps == 0)
    throw ConfigError(
        fmt::format("{}: optim.accumulate is {} but a shard has only {} batch(es) per epoch; lower "
                    "optim.accumulate or data.batch_tokens",
                    cfg_.source, k, batches));
  return plan;
}

// Step i's batches: batches i*K .. i*K+K-1 (K = optim.accumulate) of each shard of this rank; on a GPU in pinned
// memory, so copies do not block.
std::vector<Batch> Trainer::collate_step(const EpochPlan& plan, int64_t i) const {
  const auto t0 = Clock::now();
  std::vector<Batch> out;
  const int64_t K = cfg_.optim.accumulate;
  for (size_t k = 0; k < train_shards_.size(); ++k)
    for (int64_t a = i * K; a < (i + 1) * K; ++a) {
      out.push_back(stream_ ? train_shards_[k]->collate_window(train_layouts_[k], a)
                            : train_shards_[k]->collate(plan.batches[k][static_cast<size_t>(a)]));
      if (device_.is_cuda()) {
        Batch& b = out.back();
        if (b.src.defined()) b.src = b.src.pin_memory(), b.src_len = b.src_len.pin_memory();
        b.tgt_in = b.tgt_in.pin_memory(), b.tgt_out = b.tgt_out.pin_memory();
        if (b.align.defined()) b.align = b.align.pin_memory();
      }
      loader_tokens_ += out.back().source_tokens + out.back().target_tokens;
    }
  loader_ns_ += std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
  return out;
}

// One optimizer step on `batches`: token counts, forward/backward/all-reduce/clip, one collective for the loss, a
// pending signal on any rank and rank 0's clock (so that stop conditions agree), then the loss scaler or the
// non-finite check, and the update. `applied` is false for a skipped step.
Trainer::StepResult Trainer::train_step(std::vector<Batch>& batches) {
  const auto& t = cfg_.train;
  StepResult r;
  double local_tok = 0, local_all = 0;
  for (const auto& b : batches) {
    local_tok += static_cast<double>(b.target_tokens);
    local_all += static_cast<double>(b.target_tokens + b.source_tokens);
  }
  interval_.times.lap(PhaseTimes::kData);
  const auto tok_sums = sum_over_ranks({local_tok, local_all});
  r.tokens = tok_sums[0], r.all_tokens = tok_sums[1];
  interval_.times.lap(PhaseTimes::kCommunication);
  const double loss_scale = scaler_.scale();
  const auto sums = runner_->forward_backward(batches, r.tokens, loss_scale, step_ + 1, interval_.times);
  const double gnorm = sums.grad_norm;
  r.signal = g_signal.load();
  const auto step_sums =
      sum_over_ranks({sums.nll, r.signal != 0 ? 1.0 : 0.0, is_root() ? since(start_) / 60.0 : 0.0, sums.align});
  r.nll = step_sums[0], r.preempt = step_sums[1] > 0, r.minutes = step_sums[2], r.grad_norm = gnorm;
  r.align = step_sums[3];
  interval_.times.lap(PhaseTimes::kCommunication);
  const bool finite = std::isfinite(r.nll) && std::isfinite(gnorm);
  if (scaler_.enabled()) {
    // Every rank sees the same all-reduced gradients, so every rank makes the same decision.
    if (!scaler_.update(finite, step_ + 1)) {
      log_line(fmt::format("training: gradient overflow at step {} with loss scale {}; step skipped, scale now {}",
                           step_ + 1, loss_scale, scaler_.scale()));
      optim_->zero_grad();
      return r;
    }
  } else if (!finite) {
    ++bad_steps_;
    if (bad_steps_ > t.max_bad_steps)
      throw TrainingError(fmt::format(
          "loss became {} at step {} ({} bad step(s), train.max_bad_steps = {}); last good checkpoint: {}; HINT: "
          "lower optim.lr or enable optim.clip_norm, then resume from it",
          r.nll / r.tokens, step_ + 1, bad_steps_, t.max_bad_steps, last_ckpt_.empty() ? "none" : last_ckpt_));
    log_line(
        fmt::format("training: non-finite loss or gradient at step {} (loss {}, grad norm {}); step skipped "
                    "({} of train.max_bad_steps = {})",
                    step_ + 1, r.nll / r.tokens, gnorm, bad_steps_, t.max_bad_steps));
    optim_->zero_grad();
    return r;
  }
  ++step_;
  comm_.set_activity(step_, "optimizer");
  runner_->update(sched_.lr(step_));
  if (ema_) ema_->update();
  interval_.times.lap(PhaseTimes::kOptimizer);
  r.applied = true;
  return r;
}

// Adds an applied step to the logging interval; every train.log_every steps writes a metrics row and a log line.
void Trainer::record_step(const StepResult& r, Progress& bar) {
  Interval& in = interval_;
  in.nll += r.nll, in.tokens += r.tokens, in.all_tokens += r.all_tokens, in.align += r.align, ++in.steps;
  total_tokens_ += r.all_tokens;
  bar.update(static_cast<uint64_t>(step_), fmt::format("loss {:.3f}", in.nll / in.tokens));
  if (step_ % cfg_.train.log_every != 0) return;
  const double el = since(in.start);
  MetricsRow row;
  row.kind = MetricsKind::kTrain, row.step = step_, row.epoch = epoch_ + 1, row.elapsed_s = since(start_);
  row.train_loss = in.nll / in.tokens, row.train_ppl = std::exp(in.nll / in.tokens), row.lr = sched_.lr(step_);
  row.grad_norm = r.grad_norm, row.loss_scale = scaler_.scale(), row.skipped_steps = scaler_.skipped_steps();
  row.tokens_per_s = in.all_tokens / std::max(1e-9, el), row.step_ms = in.times.per_step_ms(in.steps);
  const bool guided = cfg_.train.guided_alignment_weight > 0;
  if (guided) row.train_align = in.align / in.tokens;
  log_metrics(row);
  if (is_root() && !(opt_.progress && isatty(2)))
    logf("step {} epoch {} train_loss {:.4f} ppl {:.2f}{} lr {:.3g} {:.0f} tok/s", step_, epoch_ + 1,
         in.nll / in.tokens, std::exp(in.nll / in.tokens),
         guided ? fmt::format(" align {:.4f}", in.align / in.tokens) : "", sched_.lr(step_),
         in.all_tokens / std::max(1e-9, el));
  in = Interval{};
}

// What the schedule says after an applied step: the sync check, validation (best checkpoint, early stopping), saving
// and pre-emption, agreed by all ranks. Returns whether training stops.
bool Trainer::after_step(const StepResult& r, int64_t steps_in_epoch, TrainResult& res) {
  const auto& t = cfg_.train;
  if (t.check_sync_every > 0 && step_ % t.check_sync_every == 0) {
    double div = reducer_->max_divergence();
    if (div > 0)
      throw DistributedError(fmt::format("parameters differ across ranks by up to {} at step {}", div, step_));
  }
  const auto act = sched_.after_step(step_, r.minutes);  // the same on every rank (same step, rank 0's clock)
  // The saved position is the next batch to train on.
  const bool last = batch_in_epoch_ + 1 >= steps_in_epoch;
  const int64_t next_epoch = last ? epoch_ + 1 : epoch_, next_batch = last ? 0 : batch_in_epoch_ + 1;
  bool done = act.stop;
  bool is_best = false;
  if (act.validate && !valid_shards_.empty()) {
    Validation v;
    if (!r.preempt) {
      comm_.set_activity(step_, "validation");
      v = validate();
    }
    if (r.preempt || v.interrupted) {  // save first, validate on resume
      save_before_validation(res, "step", next_epoch, next_batch);
      return true;
    }
    is_best = record_validation(v, /*final=*/false, epoch_ + 1, res);
    if (!done && sched_.should_stop_early()) {
      if (is_root())
        logf("early stopping: {} validations without improvement", sched_.validations_without_improvement());
      done = true;
    }
  }
  if (act.save || is_best || done || r.preempt || enters_kept_best()) {
    comm_.set_activity(step_, "checkpoint");
    save(is_best, next_epoch, next_batch);
  }
  if (r.preempt) {
    if (is_root())
      logf("pre-emption signal received{}: checkpoint saved at step {}, exiting",
           r.signal ? fmt::format(" (signal {})", r.signal) : " by another rank", step_);
    res.preempted = true;
  }
  return done || r.preempt;
}

// Final validation and checkpoint unless the last step just did both (or the run was pre-empted).
void Trainer::finish(TrainResult& res) {
  res.steps = step_;
  res.seconds = since(start_);
  res.tokens_per_s = total_tokens_ / std::max(1e-9, res.seconds);
  if (!res.preempted && saved_step_ != step_) {
    bool is_best = false;
    Validation v;
    if (!valid_shards_.empty()) v = validate();
    if (v.interrupted) {
      save_before_validation(res, "final", epoch_, batch_in_epoch_);
    } else {
      if (!valid_shards_.empty()) is_best = record_validation(v, /*final=*/true, epoch_, res);
      save(is_best, epoch_, batch_in_epoch_);
    }
  }
  if (loader_ns_ > 0 && res.seconds > 0) {
    const double loader_s = static_cast<double>(loader_ns_.load()) * 1e-9;
    const double rate = static_cast<double>(loader_tokens_.load()) / loader_s;
    logf("data loader: {:.1f} s reading and collating {} tokens ({:.0f} tokens/s, {:.0f}x this rank's training rate)",
         loader_s, loader_tokens_.load(), rate, rate * comm_.world() / std::max(1e-9, res.tokens_per_s));
  }
  res.valid_metric = cfg_.train.valid_metric.name();
  res.best_valid_score = sched_.best_score();
  res.last_checkpoint = last_ckpt_;
  res.best_checkpoint = best_ckpt_;
  set_log_file("");
}

bool Trainer::enters_kept_best() const {
  const int64_t n = cfg_.train.keep_best;
  if (n == 0 || !scored_ || scored_->step != step_) return false;
  for (const auto& k : kept_best_)
    if (k.step == step_) return false;  // already among them
  if (static_cast<int64_t>(kept_best_.size()) < n) return true;
  const double worst = kept_best_.back().score;
  return sched_.higher_is_better() ? scored_->score > worst : scored_->score < worst;
}

bool Trainer::record_validation(const Validation& v, bool final, int64_t epoch, TrainResult& res) {
  res.last_valid_loss = v.loss;
  const bool is_best = final ? sched_.record_final_validation(v.score) : sched_.record_validation(v.score);
  scored_ = CheckpointMeta::Scored{step_, v.score};
  log_validation(v, epoch, final ? std::nullopt : std::optional<double>(sched_.lr(step_)), is_best);
  return is_best;
}

void Trainer::save_before_validation(TrainResult& res, const std::string& kind, int64_t next_epoch,
                                     int64_t next_batch) {
  validation_pending_ = kind;
  save(false, next_epoch, next_batch);
  validation_pending_.clear();
  if (is_root()) {
    const int sig = g_signal.load();
    logf(
        "pre-emption signal received{}: checkpoint saved at step {} before its validation (a resume runs it first), "
        "exiting",
        sig ? fmt::format(" (signal {})", sig) : " by another rank", step_);
  }
  res.preempted = true;
}

bool Trainer::run_pending_validation(TrainResult& res) {
  const std::string kind = std::exchange(validation_pending_, "");
  if (is_root()) logf("the validation of step {} was left for the resume by a pre-emption: running it first", step_);
  const Validation v = validate();
  if (v.interrupted) {
    save_before_validation(res, kind, epoch_, batch_in_epoch_);
    return false;
  }
  // A step's validation is logged under the epoch the step belonged to: one that ended its epoch saved the next
  // one's start.
  const bool final = kind == "final";
  const bool is_best = record_validation(v, final, final || batch_in_epoch_ == 0 ? epoch_ : epoch_ + 1, res);
  save(is_best, epoch_, batch_in_epoch_);
  return true;
}

// The training loop: epochs of steps until the schedule, a signal or train.max_epochs stops it.
TrainResult Trainer::run() {
  open_run();
  TrainResult res;
  start_ = Clock::now();
  interval_ = Interval{};
  model_->train();
  Progress bar("train", static_cast<uint64_t>(cfg_.train.max_steps), "steps", 1e9, opt_.progress && is_root());
  // A resumed run that already reached its end trains nothing more (the loop would take one step before asking).
  const auto& t = cfg_.train;
  if (!validation_pending_.empty() && !run_pending_validation(res)) {
    bar.finish();
    finish(res);
    return res;
  }
  std::string ended;
  if (t.max_steps > 0 && step_ >= t.max_steps)
    ended = fmt::format("reaches train.max_steps = {}; raise it to train further", t.max_steps);
  else if (t.max_epochs > 0 && epoch_ >= t.max_epochs)
    ended = fmt::format("ends epoch {} of train.max_epochs = {}; raise it to train further", epoch_, t.max_epochs);
  else if (sched_.should_stop_early())
    ended = fmt::format(
        "early stopping ended ({} validations without improvement; raise train.early_stopping to "
        "train further)",
        sched_.validations_without_improvement());
  bool stop = !ended.empty();
  if (stop) {
    if (is_root()) logf("nothing to train: the run is at step {}, which {}", step_, ended);
    bar.update(static_cast<uint64_t>(step_), "nothing to train");
  }
  bool first_plan = true;
  while (!stop && !(t.max_epochs > 0 && epoch_ >= t.max_epochs)) {
    const EpochPlan plan = plan_epoch();
    if (std::exchange(first_plan, false)) {
      malloc_trim(0);  // hand back what setup freed (the heap keeps blocks up to 256 MiB: see cli/main.cpp)
      logf("ready to train {:.1f} s after start; resident memory {:.0f} MiB", process_seconds(), resident_mib());
    }
    std::future<std::vector<Batch>> ahead;  // the next step's batches, collated by a background thread
    for (; batch_in_epoch_ < plan.steps && !stop; ++batch_in_epoch_) {
      optim_->zero_grad(/*set_to_none=*/false);
      comm_.set_activity(step_ + 1, "data");
      interval_.times.start();
      std::vector<Batch> batches = ahead.valid() ? ahead.get() : collate_step(plan, batch_in_epoch_);
      if (batch_in_epoch_ + 1 < plan.steps)
        ahead =
            std::async(std::launch::async, [this, &plan, i = batch_in_epoch_ + 1] { return collate_step(plan, i); });
      const StepResult r = train_step(batches);
      if (!r.applied) continue;
      record_step(r, bar);
      stop = after_step(r, plan.steps, res);
    }
    if (batch_in_epoch_ >= plan.steps) ++epoch_, batch_in_epoch_ = 0;
  }
  bar.finish();
  finish(res);
  return res;
}

}  // namespace

RunSettings resolve_run_settings(const Config& cfg) {
  RunSettings s;
  s.device = resolve_device_kind(cfg.train.device, cfg.source + ": train.device");
  s.precision = cfg.train.precision;
  check_precision(s.precision, rank_device(s.device), cfg.source + ": train.precision");
  s.loss_scaling = cfg.train.loss_scaling == LossScaling::kDynamic ||
                   (cfg.train.loss_scaling == LossScaling::kAuto && s.precision == Precision::kFp16);
  try {  // here, not in config.cpp: the tokenizers live in translation/, above the config loader
    check_bleu_tokenizer(cfg.train.valid_tokenize);
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("{}: train.valid_tokenize is not a tokenizer tern has: {}", cfg.source, e.what()));
  }
  return s;
}

void install_preemption_handlers(const std::string& signals) {
  for (const auto& name : split_signal_names(signals)) std::signal(signal_number(name), on_signal);
}

TrainResult train(const Config& cfg, Communicator& comm, const TrainOptions& opt) {
  Trainer t(cfg, comm, opt);
  return t.run();
}

}  // namespace tern
