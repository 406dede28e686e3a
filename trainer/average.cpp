#include "trainer/average.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <filesystem>
#include <sstream>

#include "core/errors.h"
#include "core/files.h"
#include "models/model.h"
#include "trainer/checkpoint.h"
#include "trainer/config.h"

namespace fs = std::filesystem;

namespace tern {

void AverageOptions::validate() const {
  if (checkpoints.empty() == run_dir.empty())
    throw ConfigError("average: give either checkpoint files or --last/--best N RUN_DIR (got " +
                      std::string(checkpoints.empty() ? "neither" : "both") + ")");
  if (last < 0 || best < 0)
    throw ConfigError(
        fmt::format("average: --{} must be >= 1 (got {})", last < 0 ? "last" : "best", std::min(last, best)));
  if (!run_dir.empty() && (last > 0) == (best > 0))
    throw ConfigError(
        fmt::format("average: a run directory takes --last N or --best N (got {})", last > 0 ? "both" : "neither"));
  if (checkpoints.size() == 1) throw ConfigError("average: give at least two checkpoints");
  if (out.empty()) throw ConfigError("average: --out is required");
}

namespace {

Config stored_config(const CheckpointMeta& m, const std::string& path) {
  try {
    return parse_config(m.config_yaml, path + " (stored config)");
  } catch (const ConfigError& e) {
    throw CheckpointError(path + ": its stored config does not parse: " + e.what());
  }
}

// The model.* keys of a config (its depths resolved: one model however spelled), for the same-model check.
std::vector<std::pair<std::string, std::string>> model_keys(Config c) {
  c.model = c.model.with_depths_resolved();
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& kv : config_values(c))
    if (kv.first.rfind("model.", 0) == 0) out.push_back(std::move(kv));
  return out;
}

// --best N: the N best of train.keep_best's list in the run's newest checkpoint (`latest`, else the newest step
// checkpoint), each of which must still be there.
std::vector<std::string> kept_best(const AverageOptions& opt, AverageResult& res) {
  std::string newest = latest_checkpoint(opt.run_dir);
  if (newest.empty() || !fs::exists(newest)) newest = step_checkpoints(opt.run_dir).back();
  const CheckpointMeta m = checkpoint_meta(read_checkpoint(newest).meta, newest);
  const Config cfg = stored_config(m, newest);
  const auto listed = static_cast<int64_t>(m.best_checkpoints.size());
  if (listed < opt.best)
    throw CheckpointError(
        listed == 0 && cfg.train.keep_best == 0
            ? fmt::format("{}: its run kept no best checkpoints (train.keep_best is 0 in {}); HINT: train with "
                          "train.keep_best N to keep the N best validated checkpoints, or average the newest with "
                          "--last N",
                          opt.run_dir, newest)
            : fmt::format("{}: the run keeps {} best validated checkpoint(s) so far (train.keep_best {}, in {}); "
                          "--best {} needs {}",
                          opt.run_dir, listed, cfg.train.keep_best, newest, opt.best, opt.best));
  std::vector<std::string> out;
  res.metric = m.schedule.value("valid_metric", "loss");
  for (int64_t i = 0; i < opt.best; ++i) {
    const auto& k = m.best_checkpoints[static_cast<size_t>(i)];
    out.push_back((fs::path(opt.run_dir) / step_checkpoint_name(k.step)).string());
    if (!fs::exists(out.back()))
      throw CheckpointError(
          fmt::format("{}: the checkpoint of step {} (valid {} {}, one of the {} best listed in {}) is missing",
                      out.back(), k.step, res.metric, k.score, opt.best, newest));
    res.scores.push_back(k.score);
  }
  return out;
}

}  // namespace

AverageResult average_checkpoints(const AverageOptions& opt) {
  opt.validate();
  AverageResult res;
  res.inputs = opt.checkpoints;
  if (!opt.run_dir.empty()) {
    if (!fs::is_directory(opt.run_dir)) throw IoError(opt.run_dir + ": not a directory");
    auto steps = step_checkpoints(opt.run_dir);
    const int64_t need = opt.last > 0 ? std::max<int64_t>(2, opt.last) : 1;
    if (static_cast<int64_t>(steps.size()) < need)
      throw CheckpointError(fmt::format("{} holds {} step checkpoint(s); --{} {} needs at least {}", opt.run_dir,
                                        steps.size(), opt.last > 0 ? "last" : "best",
                                        opt.last > 0 ? opt.last : opt.best, need));
    res.inputs = opt.last > 0 ? std::vector<std::string>(steps.end() - opt.last, steps.end()) : kept_best(opt, res);
  }
  std::vector<NamedPath> inputs;
  for (const std::string& in : res.inputs) inputs.push_back({"checkpoint", in});
  check_outputs({{"--out", opt.out}}, inputs, opt.overwrite);
  if (const auto twice = repeated_file(res.inputs))
    throw ConfigError(fmt::format(
        "average: {} and {} are the same checkpoint (inputs {} and {}); each one would count twice: give each "
        "checkpoint once",
        res.inputs[twice->first], res.inputs[twice->second], twice->first + 1, twice->second + 1));

  // The first file fixes the model and the vocabularies; every other file must match them.
  CheckpointData first = read_checkpoint(res.inputs[0]);  // read once: it is also the loop's first input
  CheckpointMeta meta = checkpoint_meta(first.meta, res.inputs[0]);
  const Config cfg = stored_config(meta, res.inputs[0]);
  const auto model = model_keys(cfg);
  ModelConfig sized = cfg.model;  // sized by the checkpoint's vocabularies
  const bool lm = cfg.model.is_lm();
  sized.tgt_vocab = meta.vocab.count(lm ? "text" : "tgt") ? meta.vocab.at(lm ? "text" : "tgt").size : 0;
  sized.src_vocab = lm || !meta.vocab.count("src") ? 0 : meta.vocab.at("src").size;
  SequenceModel net = build_model(sized);
  std::vector<torch::Tensor> sum;  // per parameter and buffer, in float64
  torch::serialize::OutputArchive out;
  for (size_t i = 0; i < res.inputs.size(); ++i) {
    const std::string& path = res.inputs[i];
    CheckpointData d =
        i == 0 ? std::move(first) : read_checkpoint(path);  // NOLINT(bugprone-use-after-move): i == 0 once
    CheckpointMeta m = checkpoint_meta(d.meta, path);
    const auto keys = model_keys(stored_config(m, path));
    for (size_t k = 0; k < keys.size(); ++k)
      if (keys[k] != model[k])
        throw CheckpointError(fmt::format("{}: {} is {} there but {} in {}: only checkpoints of one model average",
                                          path, keys[k].first, keys[k].second, model[k].second, res.inputs[0]));
    for (const auto& [side, v] : meta.vocab)
      if (!m.vocab.count(side) || m.vocab.at(side).hash != v.hash)
        throw CheckpointError(fmt::format("{}: its {} vocabulary differs from that of {}", path, side, res.inputs[0]));
    // Two runs of one config (other seeds, or other data) learn unrelated weights: their mean is a broken model.
    if (!meta.run_id.empty() && !m.run_id.empty() && m.run_id != meta.run_id)
      throw CheckpointError(fmt::format(
          "{}: belongs to run {}, {} to run {}: the parameters of separately trained models do not average; "
          "HINT: average checkpoints of one run, or decode the runs as an ensemble (tern translate --checkpoint "
          "A.tern B.tern)",
          path, m.run_id, res.inputs[0], meta.run_id));
    torch::serialize::InputArchive ar, model_ar;
    std::istringstream in(d.archive);
    try {
      ar.load_from(in, torch::kCPU);
      ar.read("model", model_ar);
      net->load(model_ar);
      if (i == 0)
        for (const auto& [side, v] : meta.vocab) {
          torch::Tensor t;
          ar.read("vocab_" + side, t);
          out.write("vocab_" + side, t);
        }
    } catch (const c10::Error& e) {
      throw CheckpointError(path + ": cannot read its model: " + e.msg());
    }
    torch::NoGradGuard ng;
    const auto params = net->parameters();
    for (size_t k = 0; k < params.size(); ++k) {
      if (i == 0)
        sum.push_back(params[k].to(torch::kFloat64));
      else
        sum[k] += params[k].to(torch::kFloat64);
    }
    res.step = std::max(res.step, m.step);
  }
  {
    torch::NoGradGuard ng;
    auto params = net->parameters();
    for (size_t k = 0; k < params.size(); ++k) params[k].copy_(sum[k] / static_cast<double>(res.inputs.size()));
  }
  torch::serialize::OutputArchive model_out;
  net->save(model_out);
  out.write("model", model_out);
  std::ostringstream blob;
  out.save_to(blob);
  meta.step = res.step;
  meta.averaged_from = res.inputs;
  meta.validation_pending.clear();  // an average is not resumed from: no validation waits in it
  meta.valid_score.reset();         // nor was it validated, nor does it keep train.keep_best's list
  meta.best_checkpoints.clear();
  meta.torch_version = TORCH_VERSION;
  write_checkpoint(opt.out, {to_json(meta), blob.str()});
  return res;
}

}  // namespace tern
