#include "eval/generate.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <ostream>

#include "core/errors.h"
#include "data/text.h"
#include "data/tokenizer.h"
#include "eval/evaluate.h"
#include "models/precision.h"
#include "translation/decode.h"

namespace tern {

void GenerateOptions::validate() const {
  if (num < 1 || num > 100000) throw ConfigError(fmt::format("generate: --num must be in [1, 100000] (got {})", num));
  if (max_len < 1 || max_len > 100000)
    throw ConfigError(fmt::format("generate: --max-len must be in [1, 100000] (got {})", max_len));
  if (!(temperature > 0) || !std::isfinite(temperature))
    throw ConfigError(fmt::format("generate: --temperature must be a finite number above 0 (got {})", temperature));
  if (top_k < 0) throw ConfigError(fmt::format("generate: --top-k must be 0 (all tokens) or more (got {})", top_k));
  if (!(top_p > 0 && top_p <= 1)) throw ConfigError(fmt::format("generate: --top-p must be in (0, 1] (got {})", top_p));
  if (beam < 0 || beam > 1000)
    throw ConfigError(
        fmt::format("generate: --beam must be 0 (sample), 1 (greedy) or a width up to 1000 (got {})", beam));
  if (beam > 1 && num > beam)
    throw ConfigError(fmt::format("generate: --num {} is more than --beam {}: a beam keeps that many", num, beam));
}

namespace {

// Never generated: padding and <s>.
void forbid_specials(torch::Tensor& lp) {  // (N, V)
  lp.index_fill_(1, torch::tensor({int64_t{kPadId}, int64_t{kBosId}}, torch::kLong).to(lp.device()),
                 -std::numeric_limits<float>::infinity());
}

// The state after <s> and the prompt, for `rows` rows, and the log-probabilities of the next token (rows, V).
torch::Tensor read_prompt(SequenceModelImpl& lm, const std::vector<int32_t>& prompt, int64_t rows, torch::Device dev,
                          DecoderState& state) {
  auto opts = torch::dtype(torch::kLong).device(dev);
  torch::Tensor lp = lm.step(torch::full({rows}, int64_t{kBosId}, opts), state);
  for (int32_t t : prompt) lp = lm.step(torch::full({rows}, int64_t{t}, opts), state);
  forbid_specials(lp);
  return lp;
}

// Sampling (temperature, top-k, top-p) or greedy: `num` independent rows.
std::vector<Generated> sample(SequenceModelImpl& lm, const std::vector<int32_t>& prompt, const GenerateOptions& o,
                              torch::Device dev) {
  DecoderState state;
  torch::Tensor lp = read_prompt(lm, prompt, o.num, dev, state);  // (N, V)
  std::vector<Generated> out(static_cast<size_t>(o.num));
  std::vector<char> done(out.size(), 0);
  auto gen = at::detail::createCPUGenerator(o.seed);
  for (int64_t t = 0; t < o.max_len; ++t) {
    torch::Tensor cpu = lp.to(torch::kCPU);  // (N, V): sampling on the CPU, so a seed gives the same text anywhere
    torch::Tensor next;                      // (N)
    if (o.beam == 1) {
      next = cpu.argmax(1);
    } else {
      next = sample_tokens(cpu, o.temperature, o.top_k, o.top_p, gen);
    }
    const auto* ids = next.data_ptr<int64_t>();
    bool all_done = true;
    for (size_t i = 0; i < out.size(); ++i) {
      if (done[i]) continue;
      const auto id = static_cast<int32_t>(ids[i]);
      out[i].logprob += cpu[static_cast<int64_t>(i)][id].item<double>();
      if (id == kEosId) {
        out[i].ended = true, done[i] = 1;
        continue;
      }
      out[i].tokens.push_back(id);
      all_done = false;
    }
    if (all_done) break;
    lp = lm.step(next.to(dev), state);
    forbid_specials(lp);
  }
  return out;
}

// Beam search of width K from one prompt: the `num` best by log-probability among those that ended and, when fewer
// ended, the best unfinished ones at max_len.
std::vector<Generated> beam_search(SequenceModelImpl& lm, const std::vector<int32_t>& prompt, const GenerateOptions& o,
                                   torch::Device dev) {
  DecoderState state;
  torch::Tensor lp = read_prompt(lm, prompt, 1, dev, state).to(torch::kCPU);  // (rows, V), rows = 1 at first
  std::vector<Generated> alive(1), ended;
  for (int64_t t = 0; t < o.max_len && !alive.empty(); ++t) {
    std::vector<double> base;
    for (const auto& g : alive) base.push_back(g.logprob);
    const torch::Tensor total = lp.to(torch::kFloat64) + torch::tensor(base, torch::kFloat64).unsqueeze(1);
    const int64_t V = total.size(1);
    auto [scores, flat] = total.flatten().topk(std::min<int64_t>(o.beam, total.numel()));
    std::vector<Generated> next;
    std::vector<int64_t> rows;
    for (int64_t k = 0; k < scores.size(0); ++k) {
      const int64_t f = flat[k].item<int64_t>(), row = f / V;
      const auto id = static_cast<int32_t>(f % V);
      Generated g = alive[static_cast<size_t>(row)];
      g.logprob = scores[k].item<double>();
      if (id == kEosId) {
        g.ended = true;
        ended.push_back(std::move(g));
        continue;
      }
      g.tokens.push_back(id);
      next.push_back(std::move(g));
      rows.push_back(row);
    }
    // Stop once the num-th best ended sequence beats every live one (log-probabilities only fall).
    std::sort(ended.begin(), ended.end(), [](const auto& a, const auto& b) { return a.logprob > b.logprob; });
    if (static_cast<int64_t>(ended.size()) >= o.num &&
        (next.empty() || ended[static_cast<size_t>(o.num - 1)].logprob >= next.front().logprob))
      break;
    alive = std::move(next);
    if (alive.empty()) break;
    std::vector<int64_t> ids;
    for (const auto& g : alive) ids.push_back(g.tokens.back());
    const torch::Tensor pick = torch::tensor(rows, torch::kLong).to(dev);
    state = state.select(pick);
    lp = lm.step(torch::tensor(ids, torch::kLong).to(dev), state);
    forbid_specials(lp);
    lp = lp.to(torch::kCPU);
  }
  for (auto& g : alive) ended.push_back(std::move(g));
  std::stable_sort(ended.begin(), ended.end(),
                   [](const auto& a, const auto& b) { return a.ended != b.ended ? a.ended : a.logprob > b.logprob; });
  ended.resize(std::min(ended.size(), static_cast<size_t>(o.num)));
  return ended;
}

}  // namespace

std::vector<Generated> generate_ids(SequenceModelImpl& lm, const std::vector<int32_t>& prompt,
                                    const GenerateOptions& opt, torch::Device device) {
  opt.validate();
  torch::NoGradGuard no_grad;
  return opt.beam > 1 ? beam_search(lm, prompt, opt, device) : sample(lm, prompt, opt, device);
}

void generate_text(const GenerateOptions& opt, std::ostream& out, std::ostream& log) {
  opt.validate();
  InferenceModel im = load_inference_model(opt.checkpoint, opt.device, opt.precision, opt.use_ema);
  if (im.src)
    throw ConfigError(opt.checkpoint + " is a seq2seq model; generate needs a language model (model.type lm)");
  if (const int64_t bad = invalid_utf8_at(opt.prompt); bad >= 0)
    throw ConfigError(fmt::format("generate: --prompt is not valid UTF-8 (byte {})", bad + 1));
  const std::vector<int32_t> prompt = im.tgt->encode(squeeze_spaces(opt.prompt));
  AutocastScope autocast(im.precision, im.device);
  const auto seqs = generate_ids(*im.model, prompt, opt, im.device);
  for (size_t i = 0; i < seqs.size(); ++i) {
    std::vector<int32_t> all = prompt;
    all.insert(all.end(), seqs[i].tokens.begin(), seqs[i].tokens.end());
    out << im.tgt->decode(all) << "\n";
    log << fmt::format("generate: sequence {}: {} token(s){}, log-probability {:.4f}\n", i + 1, seqs[i].tokens.size(),
                       seqs[i].ended ? " and </s>" : " (stopped at --max-len)", seqs[i].logprob);
  }
  out.flush();
}

}  // namespace tern
