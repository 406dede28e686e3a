#include "models/language_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/errors.h"
#include "models/seq2seq.h"

namespace tern {

namespace {
constexpr int64_t kSentenceStart = 2;  // <s> (data/tokenizer.h's kBosId; models do not depend on data/)
}  // namespace

LanguageModelImpl::LanguageModelImpl(const ModelConfig& cfg) : SequenceModelImpl(cfg) {
  emb_ = register_module("emb", make_embedding(cfg.tgt_vocab, cfg.embedding, cfg.embedding_init, cfg.embedding_std));
  rnn_ = register_module("rnn", RnnStack(cfg.cell, cfg.embedding, cfg.hidden, cfg.layers, cfg.dropout, false,
                                         cfg.residual, cfg.layer_norm, cfg.dropout_rnn));
  out_ = register_module("out",
                         OutputLayer(cfg.hidden, cfg.tgt_vocab, cfg.tie_embeddings ? emb_->weight : torch::Tensor()));
  drop_ = register_module("drop", torch::nn::Dropout(cfg.dropout));
}

torch::Tensor LanguageModelImpl::forward(const torch::Tensor&, const torch::Tensor&, const torch::Tensor& tgt_in) {
  auto [out, h, c] =
      rnn_(drop_words(drop_(emb_(tgt_in)), cfg_.dropout_tgt, is_training()), torch::Tensor(), torch::Tensor());
  return out_(drop_(out));  // (B, T, V)
}

torch::Tensor LanguageModelImpl::forward_stream(const torch::Tensor& tgt_in, DecoderState& state) {
  auto [out, h, c] =
      rnn_(drop_words(drop_(emb_(tgt_in)), cfg_.dropout_tgt, is_training()), state.h, state.c);  // (B, W, H)
  state.h = h.detach(), state.c = c.defined() ? c.detach() : c;
  return out_(drop_(out));  // (B, W, V)
}

std::shared_ptr<const DecodeWeights> LanguageModelImpl::decode_weights() {
  return cache_->get(*this, kernels_, [&] {
    auto w = std::make_shared<DecodeWeights>();
    for (int64_t l = 0; l < cfg_.layers; ++l)
      add_decode_layer(*w, l, emb_->weight, rnn_->layer_params(l), kernels_.gemm);
    w->residual = cfg_.residual;
    set_decode_output(*w, *out_, kernels_);
    return w;
  });
}

torch::Tensor LanguageModelImpl::step(const torch::Tensor& prev, DecoderState& state) {
  if (!state.weights && fast_steps(*this, prev.device())) state.weights = decode_weights();
  if (state.weights) {
    if (!state.h.defined()) {  // a fresh state: zeros, as the module's
      state.h = torch::zeros({cfg_.layers, prev.size(0), cfg_.hidden});
      if (rnn_->lstm()) state.c = torch::zeros_like(state.h);
    }
    const torch::Tensor top = fast_cell_step(rnn_->lstm(), prev, *state.weights, state);  // (N, H)
    return torch::log_softmax(state.weights->logits(top), -1);                            // (N, V)
  }
  auto [out, h, c] = rnn_(drop_(emb_(prev.unsqueeze(1))), state.h, state.c);  // (N, 1, H)
  state.h = h, state.c = c;
  return torch::log_softmax(out_->step(drop_(out.squeeze(1)), state).to(torch::kFloat32), -1);  // (N, V)
}

void LanguageModelImpl::restrict_output(DecoderState& state, const torch::Tensor& ids) {
  if (!state.weights && fast_steps(*this, ids.device())) state.weights = decode_weights();
  if (state.weights)
    state.weights = restrict_decode_output(*state.weights, *out_, ids);
  else
    out_->restrict_to(state, ids);
}

FfnnLanguageModelImpl::FfnnLanguageModelImpl(const ModelConfig& cfg) : SequenceModelImpl(cfg) {
  emb_ = register_module("emb", make_embedding(cfg.tgt_vocab, cfg.embedding, cfg.embedding_init, cfg.embedding_std));
  hidden_ = register_module("hidden", torch::nn::Linear(cfg.context * cfg.embedding, cfg.hidden));
  out_ = register_module("out",
                         OutputLayer(cfg.hidden, cfg.tgt_vocab, cfg.tie_embeddings ? emb_->weight : torch::Tensor()));
  drop_ = register_module("drop", torch::nn::Dropout(cfg.dropout));
}

torch::Tensor FfnnLanguageModelImpl::hidden_of(const torch::Tensor& window) {
  auto e = drop_words(drop_(emb_(window)), cfg_.dropout_tgt, is_training());  // (..., C, E)
  return drop_(torch::tanh(hidden_(e.flatten(/*start_dim=*/e.dim() - 2))));   // (..., H)
}

torch::Tensor FfnnLanguageModelImpl::forward(const torch::Tensor&, const torch::Tensor&, const torch::Tensor& tgt_in) {
  const int64_t C = cfg_.context;
  // Position t sees tokens t-C+1 .. t of tgt_in (which starts with <s>); before that, more <s>.
  auto padded = torch::cat({torch::full({tgt_in.size(0), C - 1}, kSentenceStart, tgt_in.options()), tgt_in}, 1);
  auto windows = padded.unfold(1, C, 1);  // (B, T, C)
  return out_(hidden_of(windows));        // (B, T, V)
}

torch::Tensor FfnnLanguageModelImpl::step(const torch::Tensor& prev, DecoderState& state) {
  const int64_t C = cfg_.context;
  torch::Tensor window =
      state.h.defined() ? state.h[0] : torch::full({prev.size(0), C}, kSentenceStart, prev.options());
  window = torch::cat({window.narrow(1, 1, C - 1), prev.unsqueeze(1)}, 1);                  // (N, C)
  state.h = window.unsqueeze(0);                                                            // (1, N, C)
  return torch::log_softmax(out_->step(hidden_of(window), state).to(torch::kFloat32), -1);  // (N, V)
}

void FfnnLanguageModelImpl::restrict_output(DecoderState& state, const torch::Tensor& ids) {
  out_->restrict_to(state, ids);
}

torch::nn::Embedding make_embedding(int64_t vocab, int64_t dim, Choice<EmbeddingInit> init, double std) {
  torch::nn::Embedding e(torch::nn::EmbeddingOptions(vocab, dim).padding_idx(0));  // N(0, 1), row 0 zeros
  torch::NoGradGuard ng;
  if (init == EmbeddingInit::kGlorot) {
    torch::nn::init::xavier_uniform_(e->weight);
    e->weight[0].zero_();
  } else if (std != 1.0) {
    e->weight.mul_(std);  // the same draws as N(0, 1), scaled
  }
  return e;
}

torch::Tensor drop_words(const torch::Tensor& emb, double p, bool training) {
  if (!training || p == 0) return emb;
  auto shape = emb.sizes().vec();
  shape.back() = 1;
  return emb * torch::dropout(torch::ones(shape, emb.options()), p, /*train=*/true);  // (..., T, 1) a token
}

DecoderState SequenceModelImpl::encode(const torch::Tensor&, const torch::Tensor&) {
  throw ConfigError("model.type " + cfg_.type.name() + " has no encoder: translation needs model.type seq2seq");
}

torch::Tensor SequenceModelImpl::forward_stream(const torch::Tensor&, DecoderState&) {
  throw ConfigError("model.type " + cfg_.type.name() +
                    " carries no recurrent state across windows: data.lm_mode stream needs model.type lm");
}

std::pair<torch::Tensor, torch::Tensor> SequenceModelImpl::forward_attention(const torch::Tensor&, const torch::Tensor&,
                                                                             const torch::Tensor&) {
  throw ConfigError("model.type " + cfg_.type.name() + " has no attention to guide: guided alignment needs seq2seq");
}

torch::Tensor SequenceModelImpl::step(const torch::Tensor&, DecoderState&) {
  throw ConfigError("model.type " + cfg_.type.name() + " does not support incremental decoding");
}

void SequenceModelImpl::set_cpu_kernels(const CpuKernels& kernels) {
  if (kernels.int8 && cfg_.is_lm())
    throw ConfigError("--int8 applies to the search of seq2seq models (model.type is " + cfg_.type.name() + ")");
  if (kernels.int8) require_int8_kernels();
  kernels_ = kernels;
}

DecoderState DecoderState::select(const torch::Tensor& rows, const torch::Tensor& sources) const {
  auto pick = [](const torch::Tensor& t, int64_t dim, const torch::Tensor& idx) {
    return t.defined() && idx.defined() ? t.index_select(dim, idx) : t;
  };
  DecoderState s;
  s.h = pick(h, 1, rows), s.c = pick(c, 1, rows), s.feed = pick(feed, 0, rows), s.attn = pick(attn, 0, rows);
  s.memory = pick(memory, 0, sources), s.keys = pick(keys, 0, sources), s.mask = pick(mask, 0, sources);
  for (const auto& p : parts) s.parts.push_back(p.select(rows, sources));
  s.weights = weights, s.out_weight = out_weight, s.out_bias = out_bias;
  return s;
}

std::vector<double> ensemble_weights(std::vector<double> weights, size_t members) {
  if (weights.empty()) return weights;
  if (weights.size() != members)
    throw ConfigError(
        fmt::format("--weights has {} value(s) for {} checkpoint(s): give one a checkpoint", weights.size(), members));
  double most = 0, total = 0;
  for (double x : weights) {
    if (!(x > 0 && std::isfinite(x)))
      throw ConfigError(fmt::format("--weights must be finite numbers > 0 (got {})", x));
    most = std::max(most, x);
  }
  for (double& x : weights) total += x /= most;  // scaled to at most 1 first: 1e308 twice must not sum to inf
  for (double& x : weights) x /= total;
  return weights;
}

EnsembleImpl::EnsembleImpl(std::vector<SequenceModel> m, std::vector<double> w)
    : SequenceModelImpl(m.at(0)->config()),
      members(std::move(m)),
      weights(ensemble_weights(std::move(w), members.size())) {
  for (size_t i = 0; i < members.size(); ++i) register_module("member" + std::to_string(i), members[i]);
}

torch::Tensor EnsembleImpl::forward(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&) {
  throw ConfigError("an ensemble decodes only (translate); evaluate perplexity with one checkpoint");
}

void EnsembleImpl::set_cpu_kernels(const CpuKernels& kernels) {
  for (auto& m : members) m->set_cpu_kernels(kernels);
}

void EnsembleImpl::restrict_output(DecoderState& state, const torch::Tensor& ids) {
  for (size_t i = 0; i < members.size(); ++i) members[i]->restrict_output(state.parts[i], ids);
}

DecoderState EnsembleImpl::encode(const torch::Tensor& src, const torch::Tensor& src_len) {
  DecoderState s;
  for (auto& m : members) s.parts.push_back(m->encode(src, src_len));
  return s;
}

torch::Tensor EnsembleImpl::step(const torch::Tensor& prev, DecoderState& state) {
  torch::Tensor sum, attn;  // (B, V), (B, S)
  for (size_t i = 0; i < members.size(); ++i) {
    torch::Tensor lp = members[i]->step(prev, state.parts[i]), a = state.parts[i].attn;
    if (!weights.empty()) lp = lp * weights[i], a = a * weights[i];
    sum = i == 0 ? lp : sum + lp;
    attn = i == 0 ? a : attn + a;
  }
  if (!weights.empty()) {
    state.attn = attn;
    return sum;
  }
  state.attn = attn / static_cast<double>(members.size());
  return sum / static_cast<double>(members.size());
}

SequenceModel build_model(const ModelConfig& cfg) {
  cfg.validate();
  if (cfg.tgt_vocab <= 4 || (!cfg.is_lm() && cfg.src_vocab <= 4))
    throw ConfigError("model vocabulary sizes are not set (they come from the corpus)");
  auto too_large = [&](const std::string& why) {
    const std::string depth =  // the keys the config gave
        cfg.enc_layers == 0 && cfg.dec_layers == 0
            ? fmt::format("model.layers={}", cfg.layers)
            : fmt::format("model.enc_layers={}, model.dec_layers={}", cfg.encoder_layers(), cfg.decoder_layers());
    return ConfigError(fmt::format(
        "the model cannot be built with {}, model.embedding={}, model.hidden={}, vocabularies {}/{}: {}; HINT: make "
        "the model smaller",
        depth, cfg.embedding, cfg.hidden, cfg.src_vocab, cfg.tgt_vocab, why));
  };
  try {
    if (cfg.type == ModelType::kFfnnLm) return std::make_shared<FfnnLanguageModelImpl>(cfg);
    if (cfg.is_lm()) return std::make_shared<LanguageModelImpl>(cfg);
    return std::make_shared<Seq2SeqImpl>(cfg);
  } catch (const c10::Error& e) {  // an allocation refused for a model far too large
    const std::string msg = e.what_without_backtrace();
    throw too_large(msg.substr(0, msg.find('\n')));
  } catch (const std::bad_alloc&) {
    throw too_large("out of memory");
  }
}

}  // namespace tern
