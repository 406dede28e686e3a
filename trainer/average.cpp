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
    throw ConfigError("average: give either checkpoint files or --last N RUN_DIR (got " +
                      std::string(checkpoints.empty() ? "neither" : "both") + ")");
  if (!run_dir.empty() && last < 1) throw ConfigError(fmt::format("average: --last must be >= 1 (got {})", last));
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

}  // namespace

AverageResult average_checkpoints(const AverageOptions& opt) {
  opt.validate();
  AverageResult res;
  res.inputs = opt.checkpoints;
  if (!opt.run_dir.empty()) {
    if (!fs::is_directory(opt.run_dir)) throw IoError(opt.run_dir + ": not a directory");
    auto steps = step_checkpoints(opt.run_dir);
    if (static_cast<int64_t>(steps.size()) < std::max<int64_t>(2, opt.last))
      throw CheckpointError(fmt::format("{} holds {} step checkpoint(s); --last {} needs at least {}", opt.run_dir,
                                        steps.size(), opt.last, std::max<int64_t>(2, opt.last)));
    res.inputs.assign(steps.end() - opt.last, steps.end());
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
  meta.torch_version = TORCH_VERSION;
  write_checkpoint(opt.out, {to_json(meta), blob.str()});
  return res;
}

}  // namespace tern
