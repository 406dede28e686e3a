#include "trainer/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string_view>

#include "core/errors.h"
#include "core/files.h"
#include "data/text.h"

namespace tern {
namespace {

// Binds "section.key" names to struct fields: one table drives parsing, overrides and emitting.
class Schema {
 public:
  explicit Schema(Config& c) {
    auto& m = c.model;
    bind("model.type", m.type), bind("model.cell", m.cell), bind("model.layers", m.layers);
    bind("model.enc_layers", m.enc_layers), bind("model.dec_layers", m.dec_layers), bind("model.residual", m.residual);
    bind("model.layer_norm", m.layer_norm), bind("model.enc_cell_depth", m.enc_cell_depth);
    bind("model.embedding", m.embedding), bind("model.hidden", m.hidden), bind("model.bidirectional", m.bidirectional);
    bind("model.attention", m.attention), bind("model.input_feeding", m.input_feeding),
        bind("model.dropout", m.dropout);
    bind("model.dropout_src", m.dropout_src), bind("model.dropout_tgt", m.dropout_tgt);
    bind("model.dropout_rnn", m.dropout_rnn);
    bind("model.tie_embeddings", m.tie_embeddings), bind("model.share_embeddings", m.share_embeddings);
    bind("model.embedding_init", m.embedding_init), bind("model.embedding_std", m.embedding_std);
    bind("model.context", m.context), bind("model.right_left", m.right_left);
    bind("model.attention_window", m.attention_window), bind("model.attention_heads", m.attention_heads);
    auto& d = c.data;
    bind("data.corpus", d.corpus), bind("data.train_split", d.train_split), bind("data.valid_split", d.valid_split);
    bind("data.batch_tokens", d.batching.batch_tokens), bind("data.max_sentences", d.batching.max_sentences);
    bind("data.pool_batches", d.batching.pool_batches), bind("data.shards", d.shards);
    bind("data.lm_mode", d.lm_mode), bind("data.bptt", d.bptt), bind("data.weights", d.weights);
    auto& o = c.optim;
    bind("optim.optimizer", o.optimizer), bind("optim.lr", o.lr), bind("optim.beta1", o.beta1),
        bind("optim.beta2", o.beta2);
    bind("optim.eps", o.eps), bind("optim.momentum", o.momentum), bind("optim.weight_decay", o.weight_decay);
    bind("optim.accumulate", o.accumulate), bind("optim.clip_norm", o.clip_norm),
        bind("optim.label_smoothing", o.label_smoothing);
    bind("optim.schedule", o.schedule), bind("optim.warmup_steps", o.warmup_steps);
    bind("optim.plateau_factor", o.plateau_factor), bind("optim.plateau_patience", o.plateau_patience);
    bind("optim.min_lr", o.min_lr);
    auto& t = c.train;
    bind("train.run_dir", t.run_dir), bind("train.init_from", t.init_from), bind("train.max_steps", t.max_steps);
    bind("train.src_embeddings", t.src_embeddings), bind("train.tgt_embeddings", t.tgt_embeddings),
        bind("train.freeze_embeddings", t.freeze_embeddings);
    bind("train.max_epochs", t.max_epochs);
    bind("train.max_minutes", t.max_minutes), bind("train.log_every", t.log_every),
        bind("train.tensorboard", t.tensorboard), bind("train.valid_every", t.valid_every);
    bind("train.save_every", t.save_every), bind("train.keep_last", t.keep_last);
    bind("train.keep_best", t.keep_best);
    bind("train.ema_decay", t.ema_decay), bind("train.early_stopping", t.early_stopping), bind("train.seed", t.seed),
        bind("train.valid_metric", t.valid_metric), bind("train.valid_beam", t.valid_beam),
        bind("train.valid_length_penalty", t.valid_length_penalty),
        bind("train.valid_max_len_ratio", t.valid_max_len_ratio), bind("train.valid_tokenize", t.valid_tokenize),
        bind("train.guided_alignment_weight", t.guided_alignment_weight),
        bind("train.guided_alignment_cost", t.guided_alignment_cost), bind("train.device", t.device);
    bind("train.precision", t.precision), bind("train.threads", t.threads),
        bind("train.max_bad_steps", t.max_bad_steps);
    bind("train.check_sync_every", t.check_sync_every), bind("train.loss_scaling", t.loss_scaling);
    bind("train.loss_scale_init", t.loss_scaler.init_scale), bind("train.loss_scale_window", t.loss_scaler.window);
    bind("train.min_loss_scale", t.loss_scaler.min_scale), bind("train.preempt_signals", t.preempt_signals);
    auto& x = c.distributed;
    bind("distributed.backend", x.backend), bind("distributed.timeout_s", x.timeout_s);
    bind("distributed.bucket_mb", x.bucket_mb), bind("distributed.overlap", x.overlap);
  }

  bool has(const std::string& key) const { return set_.count(key) > 0; }
  void set(const std::string& key, const YAML::Node& v, const std::string& where) { set_.at(key)(v, where); }
  std::vector<std::string> keys(const std::string& prefix = "") const {
    std::vector<std::string> out;
    for (const auto& k : order_)
      if (k.rfind(prefix, 0) == 0) out.push_back(k);
    return out;
  }
  std::vector<std::string> sections() const {
    std::vector<std::string> out;
    for (const auto& k : order_) {
      std::string s = k.substr(0, k.find('.'));
      if (out.empty() || out.back() != s) out.push_back(s);
    }
    return out;
  }
  void emit(YAML::Emitter& e) const {
    std::string section;
    for (const auto& k : order_) {
      std::string s = k.substr(0, k.find('.'));
      if (s != section) {
        if (!section.empty()) e << YAML::EndMap;
        e << YAML::Key << s << YAML::Value << YAML::BeginMap;
        section = s;
      }
      e << YAML::Key << k.substr(k.find('.') + 1) << YAML::Value;
      get_.at(k)(e);
    }
    if (!section.empty()) e << YAML::EndMap;
  }
  std::string value_text(const std::string& key) const {
    YAML::Emitter e;
    get_.at(key)(e);
    return e.c_str();
  }

 private:
  template <typename T>
  static const char* type_name() {
    if constexpr (std::is_same_v<T, bool>)
      return "true or false";
    else if constexpr (std::is_unsigned_v<T>)
      return "a whole number >= 0";
    else if constexpr (std::is_integral_v<T>)
      return "an integer";
    else if constexpr (std::is_floating_point_v<T>)
      return "a number";
    else
      return "a string";
  }
  // A value must be a scalar: a mapping, a list or nothing is refused with what `key` must be.
  static void need_scalar(const YAML::Node& v, const std::string& where, const std::string& key,
                          const std::string& rule) {
    if (!v.IsScalar())
      throw ConfigError(fmt::format("{}: {} must be {} (got a {})", where, key, rule,
                                    v.IsMap()        ? "mapping"
                                    : v.IsSequence() ? "list"
                                                     : "null"));
  }
  // A named choice: an unknown name is kept and reported by validate() with the rule ("must be a, b or c").
  template <typename E>
  void bind(const std::string& key, Choice<E>& field) {
    order_.push_back(key);
    set_[key] = [&field, key](const YAML::Node& v, const std::string& where) {
      need_scalar(v, where, key, choice_list<E>());
      field = v.Scalar();
    };
    get_[key] = [&field](YAML::Emitter& e) { e << field.name(); };
  }
  // A path or a list of paths (one path is emitted as a scalar, as before lists were allowed).
  void bind(const std::string& key, std::vector<std::string>& field) {
    order_.push_back(key);
    set_[key] = [&field, key](const YAML::Node& v, const std::string& where) {
      const std::string rule = "a path or a list of paths";
      field.clear();
      if (v.IsSequence()) {
        for (const auto& item : v) {
          need_scalar(item, where, key + " entries", "paths");
          field.push_back(item.Scalar());
        }
        return;
      }
      need_scalar(v, where, key, rule);
      field.push_back(v.Scalar());
    };
    get_[key] = [&field](YAML::Emitter& e) {
      if (field.size() == 1) {
        e << field[0];
        return;
      }
      e << YAML::Flow << YAML::BeginSeq;
      for (const auto& f : field) e << f;
      e << YAML::EndSeq;
    };
  }
  // A scalar of type T: decimal integers without leading zeros, finite numbers.
  template <typename T>
  static T scalar(const YAML::Node& v, const std::string& where, const std::string& key) {
    need_scalar(v, where, key, type_name<T>());
    try {
      if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
        // Decimal digits only: yaml-cpp reads "010" as octal 8 and "0x10" as hex, and truncates "1.5" in some
        // versions. A value that does not fit is refused rather than wrapped.
        const std::string& s = v.Scalar();
        const size_t digits = s.find_first_not_of("+-") == std::string::npos ? 0 : s.find_first_not_of("+-");
        if (digits > 1 || s.size() == digits || s.find_first_not_of("0123456789", digits) != std::string::npos)
          throw YAML::BadConversion(v.Mark());
        if (s.size() > digits + 1 && s[digits] == '0')
          throw ConfigError(
              fmt::format("{}: {} must be a decimal integer without leading zeros (got '{}', which YAML "
                          "would read as octal)",
                          where, key, s));
      }
      const T x = v.as<T>();
      if constexpr (std::is_floating_point_v<T>) {
        if (!std::isfinite(x))
          throw ConfigError(fmt::format("{}: {} must be a finite number (got '{}')", where, key, v.Scalar()));
      }
      return x;
    } catch (const YAML::BadConversion&) {
      throw ConfigError(fmt::format("{}: {} must be {} (got '{}')", where, key, type_name<T>(), v.Scalar()));
    }
  }
  template <typename T>
  void bind(const std::string& key, T& field) {
    order_.push_back(key);
    set_[key] = [&field, key](const YAML::Node& v, const std::string& where) { field = scalar<T>(v, where, key); };
    get_[key] = [&field](YAML::Emitter& e) {
      if constexpr (std::is_floating_point_v<T>)
        e << fmt::format("{}", field);  // the shortest text that reads back exactly: 0.1, not 0.10000000000000001
      else
        e << field;
    };
  }
  // A list of integers (one integer is a list of one; [] is empty).
  void bind(const std::string& key, std::vector<int64_t>& field) {
    order_.push_back(key);
    set_[key] = [&field, key](const YAML::Node& v, const std::string& where) {
      field.clear();
      if (!v.IsSequence()) {
        need_scalar(v, where, key, "a list of integers");
        field.push_back(scalar<int64_t>(v, where, key));
        return;
      }
      for (const auto& item : v) field.push_back(scalar<int64_t>(item, where, key + " entries"));
    };
    get_[key] = [&field](YAML::Emitter& e) {
      e << YAML::Flow << YAML::BeginSeq;
      for (int64_t x : field) e << x;
      e << YAML::EndSeq;
    };
  }
  std::vector<std::string> order_;
  std::map<std::string, std::function<void(const YAML::Node&, const std::string&)>> set_;
  std::map<std::string, std::function<void(YAML::Emitter&)>> get_;
};

std::string unknown(const std::string& where, const std::string& key, const std::vector<std::string>& valid) {
  std::string near = nearest(key, valid);
  return fmt::format("{}: unknown key '{}'{}", where, key, near.empty() ? "" : " (did you mean '" + near + "'?)");
}

}  // namespace

std::vector<std::string> split_signal_names(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    std::string name = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    name.erase(0, name.find_first_not_of(' '));
    name.erase(name.find_last_not_of(' ') + 1);
    if (name.rfind("SIG", 0) == 0) name = name.substr(3);
    if (!name.empty()) out.push_back(name);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

int signal_number(const std::string& name) {
  if (name == "TERM") return SIGTERM;
  if (name == "USR1") return SIGUSR1;
  if (name == "USR2") return SIGUSR2;
  if (name == "INT") return SIGINT;
  if (name == "HUP") return SIGHUP;
  return 0;
}

void DataConfig::validate() const {
  if (corpus.empty()) throw ConfigError("data.corpus must name an HDF5 corpus (got an empty list)");
  for (size_t i = 0; i < corpus.size(); ++i)
    if (corpus[i].empty())
      throw ConfigError(fmt::format("data.corpus must name HDF5 corpus files (entry {} of {} is an empty string)",
                                    i + 1, corpus.size()));
  auto is_split = [](const std::string& s) { return s == "train" || s == "valid" || s == "test"; };
  if (!is_split(train_split))
    throw ConfigError("data.train_split must be train, valid or test (got '" + train_split + "')");
  if (!valid_split.empty() && !is_split(valid_split))
    throw ConfigError("data.valid_split must be train, valid, test or '' (no validation) (got '" + valid_split + "')");
  auto need = [](const char* key, int64_t v, int64_t lo, int64_t hi) {
    if (v < lo || v > hi) throw ConfigError(fmt::format("data.{} must be in [{}, {}] (got {})", key, lo, hi, v));
  };
  need("batch_tokens", batching.batch_tokens, 8, int64_t{1} << 26);
  need("max_sentences", batching.max_sentences, 0, 10000000);
  need("pool_batches", batching.pool_batches, 1, 1000000);
  need("shards", shards, 0, 100000);
  lm_mode.check("data.lm_mode");
  need("bptt", bptt, 1, 100000);
  if (!weights.empty()) {
    if (weights.size() != corpus.size())
      throw ConfigError(fmt::format("data.weights must have one entry a part of data.corpus ({} part(s)), got {}",
                                    corpus.size(), weights.size()));
    for (int64_t w : weights)
      if (w < 1 || w > 1000)
        throw ConfigError(fmt::format("data.weights entries must be whole numbers in [1, 1000] (got {})", w));
    if (lm_mode == LmMode::kStream)
      throw ConfigError(
          "data.weights repeats sentences of the training split, which data.lm_mode stream reads as one continuous "
          "text: use data.lm_mode sentence, or leave data.weights empty");
  }
  if (lm_mode == LmMode::kStream && batching.batch_tokens < bptt)
    throw ConfigError(
        fmt::format("data.batch_tokens ({}) must be at least data.bptt ({}) in stream mode: a batch is "
                    "batch_tokens / bptt parallel streams of bptt tokens",
                    batching.batch_tokens, bptt));
}

void OptimConfig::validate() const {
  auto fail = [](const std::string& k, const std::string& rule, const std::string& got) {
    throw ConfigError(fmt::format("optim.{} {} (got {})", k, rule, got));
  };
  optimizer.check("optim.optimizer");
  if (!(lr > 0 && lr <= 3.4e38)) fail("lr", "must be > 0 and fit a float (<= 3.4e38)", fmt::format("{}", lr));
  if (!(beta1 >= 0 && beta1 < 1)) fail("beta1", "must be in [0, 1)", fmt::format("{}", beta1));
  if (!(beta2 >= 0 && beta2 < 1)) fail("beta2", "must be in [0, 1)", fmt::format("{}", beta2));
  if (!(eps > 0)) fail("eps", "must be > 0", fmt::format("{}", eps));
  if (!(momentum >= 0 && momentum < 1)) fail("momentum", "must be in [0, 1)", fmt::format("{}", momentum));
  if (!(weight_decay >= 0)) fail("weight_decay", "must be >= 0", fmt::format("{}", weight_decay));
  if (!(clip_norm >= 0)) fail("clip_norm", "must be >= 0", fmt::format("{}", clip_norm));
  if (accumulate < 1 || accumulate > 4096) fail("accumulate", "must be in [1, 4096]", std::to_string(accumulate));
  if (!(label_smoothing >= 0 && label_smoothing < 1))
    fail("label_smoothing", "must be in [0, 1)", fmt::format("{}", label_smoothing));
  schedule.check("optim.schedule");
  if (warmup_steps < 0) fail("warmup_steps", "must be >= 0", std::to_string(warmup_steps));
  if (schedule == LrSchedule::kInverseSqrt && warmup_steps < 1)
    fail("warmup_steps", "must be >= 1 with schedule inverse_sqrt", std::to_string(warmup_steps));
  if (!(plateau_factor > 0 && plateau_factor < 1))
    fail("plateau_factor", "must be in (0, 1)", fmt::format("{}", plateau_factor));
  if (plateau_patience < 1) fail("plateau_patience", "must be >= 1", std::to_string(plateau_patience));
  if (!(min_lr >= 0 && min_lr <= lr)) fail("min_lr", "must be in [0, optim.lr]", fmt::format("{}", min_lr));
}

void TrainLoopConfig::validate() const {
  auto fail = [](const std::string& k, const std::string& rule, const std::string& got) {
    throw ConfigError(fmt::format("train.{} {} (got {})", k, rule, got));
  };
  if (run_dir.empty()) fail("run_dir", "must not be empty", "''");
  if (max_steps < 0) fail("max_steps", "must be >= 0", std::to_string(max_steps));
  if (max_epochs < 0) fail("max_epochs", "must be >= 0", std::to_string(max_epochs));
  if (!(max_minutes >= 0)) fail("max_minutes", "must be >= 0", fmt::format("{}", max_minutes));
  if (max_steps == 0 && max_epochs == 0 && max_minutes == 0 && early_stopping == 0)
    fail("max_steps", "or max_epochs, max_minutes or early_stopping must be set so that training ends", "0");
  if (log_every < 1) fail("log_every", "must be >= 1", std::to_string(log_every));
  if (valid_every < 0) fail("valid_every", "must be >= 0", std::to_string(valid_every));
  if (save_every < 0) fail("save_every", "must be >= 0", std::to_string(save_every));
  if (keep_last < 1) fail("keep_last", "must be >= 1", std::to_string(keep_last));
  if (keep_best < 0 || keep_best > 100) fail("keep_best", "must be in [0, 100] (0: none)", std::to_string(keep_best));
  if (early_stopping < 0) fail("early_stopping", "must be >= 0", std::to_string(early_stopping));
  if (!(ema_decay >= 0 && ema_decay < 1))
    fail("ema_decay", "must be in [0, 1) (0 disables)", fmt::format("{}", ema_decay));
  device.check("train.device");
  precision.check("train.precision");
  valid_metric.check("train.valid_metric");
  if (valid_beam < 1 || valid_beam > 64)
    fail("valid_beam", "must be in [1, 64] (1: greedy)", std::to_string(valid_beam));
  if (!(valid_length_penalty >= 0 && valid_length_penalty <= 100))
    fail("valid_length_penalty", "must be in [0, 100] (0: none)", fmt::format("{}", valid_length_penalty));
  if (!(valid_max_len_ratio > 0 && valid_max_len_ratio <= 100))
    fail("valid_max_len_ratio", "must be in (0, 100]", fmt::format("{}", valid_max_len_ratio));
  if (!(guided_alignment_weight >= 0 && guided_alignment_weight <= 100))
    fail("guided_alignment_weight", "must be in [0, 100] (0: off)", fmt::format("{}", guided_alignment_weight));
  guided_alignment_cost.check("train.guided_alignment_cost");
  freeze_embeddings.check("train.freeze_embeddings");
  if (!init_from.empty() && !(src_embeddings.empty() && tgt_embeddings.empty()))
    fail(src_embeddings.empty() ? "tgt_embeddings" : "src_embeddings",
         "starts the embeddings from vectors and train.init_from every parameter from a checkpoint: give one of them",
         src_embeddings.empty() ? tgt_embeddings : src_embeddings);
  if (threads < 0 || threads > 4096) fail("threads", "must be in [0, 4096]", std::to_string(threads));
  if (max_bad_steps < 0) fail("max_bad_steps", "must be >= 0", std::to_string(max_bad_steps));
  if (check_sync_every < 0) fail("check_sync_every", "must be >= 0", std::to_string(check_sync_every));
  for (const auto& name : split_signal_names(preempt_signals))
    if (signal_number(name) == 0)
      fail("preempt_signals", fmt::format("must list signals among TERM, USR1, USR2, INT, HUP (unknown '{}')", name),
           preempt_signals);
  loss_scaling.check("train.loss_scaling");
  const LossScalerOptions& s = loss_scaler;
  if (!(s.init_scale > 0 && s.init_scale <= 3.4e38))
    fail("loss_scale_init", "must be > 0 and fit a float (<= 3.4e38)", fmt::format("{}", s.init_scale));
  if (s.window < 1) fail("loss_scale_window", "must be >= 1", std::to_string(s.window));
  if (!(s.min_scale > 0 && s.min_scale <= s.init_scale))
    fail("min_loss_scale", "must be in (0, train.loss_scale_init]", fmt::format("{}", s.min_scale));
}

void Config::validate(const std::vector<std::string>& overridden) const {
  try {
    model.validate();
    data.validate();
    optim.validate();
    train.validate();
    distributed.validate();
    if (model.is_lm() && (train.valid_metric == ValidMetric::kBleu || train.valid_metric == ValidMetric::kChrf))
      throw ConfigError(
          fmt::format("train.valid_metric {} translates the valid split: it needs model.type seq2seq "
                      "(got {}); a language model validates by loss",
                      train.valid_metric.name(), model.type.name()));
    if (train.guided_alignment_weight > 0 && model.is_lm())
      throw ConfigError(fmt::format(
          "train.guided_alignment_weight guides the attention of a translation model: it needs model.type seq2seq "
          "(got {})",
          model.type.name()));
    if (model.is_lm() && !train.src_embeddings.empty())
      throw ConfigError(fmt::format(
          "train.src_embeddings fills a translation model's source table; a language model ({}) has only the target "
          "side's: give the vectors as train.tgt_embeddings (got {})",
          model.type.name(), train.src_embeddings));
    const FreezeEmbeddings freeze = train.freeze_embeddings;
    if (model.is_lm() && freeze == FreezeEmbeddings::kSrc)
      throw ConfigError(fmt::format(
          "train.freeze_embeddings src freezes a translation model's source table; a language model ({}) has only the "
          "target side's: freeze it with tgt (got src)",
          model.type.name()));
    if (!model.is_lm() && model.share_embeddings &&
        (freeze == FreezeEmbeddings::kSrc || freeze == FreezeEmbeddings::kTgt))
      throw ConfigError(fmt::format(
          "train.freeze_embeddings {} cannot freeze one side: model.share_embeddings makes both sides one table; set "
          "both or none",
          train.freeze_embeddings.name()));
    if (!model.is_lm() && model.share_embeddings && !train.src_embeddings.empty() && !train.tgt_embeddings.empty())
      throw ConfigError(fmt::format(
          "train.src_embeddings and train.tgt_embeddings both fill the one table of model.share_embeddings: give one "
          "file of vectors for the joint vocabulary (got {} and {})",
          train.src_embeddings, train.tgt_embeddings));
    if (data.lm_mode == LmMode::kStream && model.type != ModelType::kLm)
      throw ConfigError(fmt::format("data.lm_mode stream carries a recurrent state: it needs model.type lm (got {})",
                                    model.type.name()));
    if (optim.schedule == LrSchedule::kCosine && train.max_steps <= optim.warmup_steps)
      throw ConfigError(fmt::format(
          "optim.schedule cosine decays over train.max_steps, which must be set and above optim.warmup_steps "
          "(got max_steps {}, warmup_steps {})",
          train.max_steps, optim.warmup_steps));
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    for (const auto& key : overridden)
      if (what.rfind(key + " ", 0) == 0) throw ConfigError("--set: " + what);
    throw ConfigError(source + ": " + what);
  }
}

namespace {

// The line of a document marker ("---" or "..." at the start of a line) that has content both before and after it
// (outside comments and directives), or 0: a marker at the start or at the end of the text is harmless.
int second_document_line(const std::string& text) {
  auto has_content = [](std::string_view s) {
    const size_t i = s.find_first_not_of(" \t\r");
    return i != std::string_view::npos && s[i] != '#';
  };
  bool before = false;  // content seen before the current marker
  int marker = 0, number = 0;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = std::min(text.find('\n', start), text.size());
    const std::string_view line(text.data() + start, end - start);
    ++number;
    const bool is_marker = (line.rfind("---", 0) == 0 || line.rfind("...", 0) == 0) &&
                           (line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r');
    const std::string_view rest = is_marker ? line.substr(3) : line;
    if (is_marker && before) marker = number;
    if (has_content(rest) && !(line.rfind('%', 0) == 0 && !before)) {
      if (marker > 0) return marker;
      before = true;
    }
    start = end + 1;
  }
  return 0;
}

// yaml-cpp says "illegal map value" for a line indented with a tab: name the line and the rule.
std::string tab_indent_hint(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    const size_t indent = line.find_first_not_of(" \t");
    if (indent != std::string::npos && line.find('\t') < indent)
      return fmt::format(" (line {} is indented with a tab, which YAML does not allow: indent with spaces)", n);
  }
  return "";
}

// "~" and "~/..." name the home directory, as a shell would read them: YAML keeps them as they are, and a directory
// literally named "~" in the working directory is a trap (a later `rm -rf ~` by hand).
std::string expand_home(const std::string& path, const std::string& key) {
  if (path != "~" && path.rfind("~/", 0) != 0) return path;
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home == '\0')
    throw ConfigError(fmt::format("{} is '{}', but HOME is not set to expand '~': give the full path", key, path));
  return std::string(home) + path.substr(1);
}

}  // namespace

Config parse_config(const std::string& text, const std::string& source, const std::vector<std::string>& overrides) {
  Config cfg;
  cfg.source = source;
  Schema schema(cfg);
  // A binary file (a checkpoint or a corpus given in the config's place) would only get a puzzling YAML message.
  if (const size_t nul = text.find('\0'); nul != std::string::npos) {
    const FileKind kind = file_kind(text);
    const std::string what = kind == FileKind::kCheckpoint
                                 ? "; it is a tern checkpoint: give its run's config.yaml, and the checkpoint "
                                   "with --resume"
                             : kind == FileKind::kHdf5 ? "; it is an HDF5 file: a corpus goes in data.corpus"
                                                       : "";
    throw ConfigError(fmt::format("{}: not a YAML text file (a NUL byte at byte {}){}", source, nul, what));
  }
  // A second document ("---") would be ignored silently: its values are not the ones trained with. (Found from the
  // text: yaml-cpp 0.7's LoadAll loops forever on some malformed input.)
  if (const int line = second_document_line(text); line > 0)
    throw ConfigError(
        fmt::format("{}:{}: a second YAML document (after '---'); a config is one document: merge them or remove one",
                    source, line));
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(fmt::format("{}:{}:{}: YAML does not parse: {}{}", source, e.mark.line + 1, e.mark.column + 1,
                                  e.msg, tab_indent_hint(text)));
  }
  if (root.IsDefined() && !root.IsNull()) {
    if (!root.IsMap())
      throw ConfigError(source + ": the top level must be a mapping of sections (" +
                        fmt::format("{}", fmt::join(schema.sections(), ", ")) + ")");
    // Keys must be plain scalars: YAML also allows mappings and lists as keys ("? [a, b]: c").
    auto key_of = [&](const YAML::Node& k, const std::string& where) {
      if (!k.IsScalar())
        throw ConfigError(fmt::format("{}:{}:{}: {} must be a plain name (got a {})", source, k.Mark().line + 1,
                                      k.Mark().column + 1, where,
                                      k.IsMap()        ? "mapping"
                                      : k.IsSequence() ? "list"
                                                       : "null"));
      return k.Scalar();
    };
    // A key given twice would silently take the last value: refuse it, with both lines.
    std::map<std::string, int> seen;  // section or key -> its line
    auto once = [&](const std::string& name, const YAML::Node& k, const std::string& what) {
      auto [it, fresh] = seen.emplace(name, k.Mark().line + 1);
      if (!fresh)
        throw ConfigError(fmt::format("{}:{}: {} '{}' is given twice (first on line {}); give it once", source,
                                      k.Mark().line + 1, what, name, it->second));
    };
    for (const auto& sec : root) {
      std::string s = key_of(sec.first, "a section name");
      if (schema.keys(s + ".").empty()) throw ConfigError(unknown(source, s, schema.sections()));
      once(s, sec.first, "section");
      if (sec.second.IsNull()) continue;
      if (!sec.second.IsMap()) throw ConfigError(fmt::format("{}: section '{}' must be a mapping", source, s));
      for (const auto& kv : sec.second) {
        std::string key = s + "." + key_of(kv.first, "a key in section '" + s + "'");
        if (!schema.has(key)) throw ConfigError(unknown(source, key, schema.keys()));
        once(key, kv.first, "key");
        schema.set(key, kv.second, source);
      }
    }
  }
  std::vector<std::string> overridden;  // keys given by --set
  for (const auto& o : overrides) {
    auto eq = o.find('=');
    if (eq == std::string::npos) throw ConfigError("--set " + o + ": expected section.key=value");
    std::string key = o.substr(0, eq);
    if (!schema.has(key)) throw ConfigError(unknown("--set", key, schema.keys()));
    YAML::Node v;
    try {
      v = YAML::Load(o.substr(eq + 1));
    } catch (const YAML::Exception& e) {
      throw ConfigError("--set " + o + ": value does not parse: " + e.msg);
    }
    if (v.IsNull()) v = YAML::Node(o.substr(eq + 1));
    schema.set(key, v, "--set");
    overridden.push_back(key);
  }
  cfg.validate(overridden);  // a rule broken by a --set value names --set, not the file whose value it replaced
  return resolve_defaults(std::move(cfg));
}

Config resolve_defaults(Config cfg) {
  for (auto& c : cfg.data.corpus) c = expand_home(c, "data.corpus");
  cfg.train.run_dir = expand_home(cfg.train.run_dir, "train.run_dir");
  cfg.train.init_from = expand_home(cfg.train.init_from, "train.init_from");
  cfg.train.src_embeddings = expand_home(cfg.train.src_embeddings, "train.src_embeddings");
  cfg.train.tgt_embeddings = expand_home(cfg.train.tgt_embeddings, "train.tgt_embeddings");
  if (cfg.train.valid_metric == ValidMetric::kAuto)
    cfg.train.valid_metric = cfg.model.is_lm() ? ValidMetric::kLoss : ValidMetric::kBleu;
  return cfg;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::string text;
  try {
    text = read_file_bounded(path, 1 << 20, "config file");
  } catch (const IoError& e) {
    throw ConfigError(e.what());
  }
  return parse_config(text, path, overrides);
}

std::vector<std::pair<std::string, std::string>> config_values(const Config& cfg) {
  Config copy = cfg;
  Schema schema(copy);
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& k : schema.keys()) out.emplace_back(k, schema.value_text(k));
  return out;
}

std::string to_yaml(const Config& cfg) {
  Config copy = cfg;
  Schema schema(copy);
  YAML::Emitter e;
  e << YAML::BeginMap;
  schema.emit(e);
  e << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

}  // namespace tern
