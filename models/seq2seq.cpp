#include "models/seq2seq.h"

#include <ATen/autocast_mode.h>

#include <fmt/format.h>

#include <cmath>
#include <tuple>

#include "models/loss.h"

namespace tern {
namespace rnn = torch::nn::utils::rnn;

// ---------------------------------------------------------------------------------------------- stepped cells

torch::Tensor norm_gates(const torch::Tensor& g, const torch::Tensor& gain, const torch::Tensor& bias) {
  return torch::layer_norm(g, {g.size(-1)}, gain, bias, /*eps=*/1e-5);
}

std::pair<torch::Tensor, torch::Tensor> cell_update(bool lstm, const torch::Tensor& gi, const torch::Tensor& gh,
                                                    const torch::Tensor& h, const torch::Tensor& c) {
  if (lstm) {
    auto g = (gi + gh).chunk(4, 1);  // input, forget, cell, output
    torch::Tensor c_new = torch::sigmoid(g[1]) * c + torch::sigmoid(g[0]) * torch::tanh(g[2]);
    return {torch::sigmoid(g[3]) * torch::tanh(c_new), c_new};
  }
  auto i = gi.chunk(3, 1), r = gh.chunk(3, 1);  // reset, update, new
  torch::Tensor reset = torch::sigmoid(i[0] + r[0]), update = torch::sigmoid(i[1] + r[1]);
  torch::Tensor n = torch::tanh(i[2] + reset * r[2]);
  return {n + update * (h - n), torch::Tensor()};  // (1 - z) n + z h
}

NormCellImpl::NormCellImpl(bool lstm_cell, int64_t input, int64_t hidden) : lstm(lstm_cell) {
  const int64_t G = (lstm ? 4 : 3) * hidden;
  const double k = 1.0 / std::sqrt(static_cast<double>(hidden));  // LibTorch's LSTM/GRU initialisation
  weight_ih = register_parameter("weight_ih", torch::empty({G, input}).uniform_(-k, k));
  weight_hh = register_parameter("weight_hh", torch::empty({G, hidden}).uniform_(-k, k));
  bias = register_parameter("bias", torch::empty({G}).uniform_(-k, k));
  gain_ih = register_parameter("gain_ih", torch::ones({G}));
  gain_hh = register_parameter("gain_hh", torch::ones({G}));
}

TransitionCellImpl::TransitionCellImpl(bool lstm, int64_t hidden, bool layer_norm) {
  const int64_t G = (lstm ? 4 : 3) * hidden;
  const double k = 1.0 / std::sqrt(static_cast<double>(hidden));  // LibTorch's LSTM/GRU initialisation
  weight_hh = register_parameter("weight_hh", torch::empty({G, hidden}).uniform_(-k, k));
  bias = register_parameter("bias", torch::empty({G}).uniform_(-k, k));
  if (layer_norm) gain_hh = register_parameter("gain_hh", torch::ones({G}));
}

CellParams TransitionCellImpl::params() const { return {{}, weight_hh, bias, {}, {}, gain_hh}; }

torch::Tensor cell_input_gates(const CellParams& p, const torch::Tensor& x) {
  if (p.gain_ih.defined()) return norm_gates(torch::nn::functional::linear(x, p.w_ih), p.gain_ih, p.b_ih);
  return torch::nn::functional::linear(x, p.w_ih, p.b_ih);
}

std::pair<torch::Tensor, torch::Tensor> step_cell(bool lstm, const CellParams& p, const torch::Tensor& xg,
                                                  const torch::Tensor& h, const torch::Tensor& c,
                                                  const torch::Tensor& h_drop) {
  const torch::Tensor hin = h_drop.defined() ? h * h_drop : h;
  const torch::Tensor gh = p.gain_hh.defined() ? norm_gates(torch::nn::functional::linear(hin, p.w_hh), p.gain_hh)
                                               : torch::nn::functional::linear(hin, p.w_hh, p.b_hh);  // (N, G)
  return cell_update(lstm, xg, gh, h, c);
}

torch::Tensor run_cell(bool lstm, const CellParams& p, const torch::Tensor& x, const torch::Tensor& mask, bool reverse,
                       torch::Tensor& h, torch::Tensor& c, const torch::Tensor& h_drop,
                       const std::vector<CellParams>& transitions) {
  const int64_t T = x.size(1);
  const torch::Tensor xg = cell_input_gates(p, x);  // (B, T, G): every position's input gates in one product
  std::vector<torch::Tensor> out(static_cast<size_t>(T));
  for (int64_t i = 0; i < T; ++i) {
    const int64_t t = reverse ? T - 1 - i : i;
    auto [h_new, c_new] = step_cell(lstm, p, xg.select(1, t), h, c, h_drop);  // (B, H)
    for (const CellParams& tp : transitions)  // no input: the input gates are the bias (1, G)
      std::tie(h_new, c_new) = step_cell(lstm, tp, tp.b_ih.unsqueeze(0), h_new, c_new);
    if (mask.defined()) {                                         // padding keeps the state, outputs zeros
      const torch::Tensor real = mask.select(1, t).unsqueeze(1);  // (B, 1)
      h = torch::where(real, h_new, h);
      if (lstm) c = torch::where(real, c_new, c);
      out[static_cast<size_t>(t)] = h_new.masked_fill(real.logical_not(), 0.0);
    } else {
      h = h_new, c = c_new;
      out[static_cast<size_t>(t)] = h_new;
    }
  }
  return torch::stack(out, 1);  // (B, T, H)
}

torch::Tensor variational_mask(int64_t rows, int64_t units, double p, const torch::TensorOptions& options) {
  return torch::dropout(torch::ones({rows, units}, options), p, /*train=*/true);
}

CellParams NormCellImpl::params() const { return {weight_ih, weight_hh, bias, torch::Tensor(), gain_ih, gain_hh}; }

// ---------------------------------------------------------------------------------------------- RnnStack

RnnStackImpl::RnnStackImpl(Choice<Cell> cell, int64_t input, int64_t hidden, int64_t layers, double dropout,
                           bool bidirectional, bool residual, bool layer_norm, double dropout_rnn, int64_t cell_depth)
    : lstm_(cell == Cell::kLstm),
      dropout_(dropout),
      dropout_rnn_(dropout_rnn),
      layers_(layers),
      dirs_(bidirectional ? 2 : 1),
      residual_(residual) {
  for (int64_t l = 0; l < layers; ++l)
    for (int64_t d = 0; d < dirs_; ++d)
      for (int64_t k = 1; k < cell_depth; ++k)
        transitions_.push_back(register_module(fmt::format("trans{}_{}{}", l, k, d == 1 ? "_reverse" : ""),
                                               TransitionCell(lstm_, hidden, layer_norm)));
  if (layer_norm) {
    for (int64_t l = 0; l < layers; ++l)
      for (int64_t d = 0; d < dirs_; ++d)
        norm_cells_.push_back(register_module("norm" + std::to_string(l) + (d == 1 ? "_reverse" : ""),
                                              NormCell(lstm_, l == 0 ? input : hidden * dirs_, hidden)));
    return;
  }
  const bool split = residual && layers > 1;  // a module a layer
  const double between = layers > 1 && !split ? dropout : 0.0;
  for (int64_t l = 0; l < (split ? layers : 1); ++l) {
    const int64_t in = l == 0 ? input : hidden * dirs_, n = split ? 1 : layers;
    const std::string name = split ? "layer" + std::to_string(l) : lstm_ ? "lstm" : "gru";
    if (lstm_)
      lstm_modules_.push_back(register_module(name, torch::nn::LSTM(torch::nn::LSTMOptions(in, hidden)
                                                                        .num_layers(n)
                                                                        .dropout(between)
                                                                        .bidirectional(bidirectional)
                                                                        .batch_first(true))));
    else
      gru_modules_.push_back(register_module(name, torch::nn::GRU(torch::nn::GRUOptions(in, hidden)
                                                                      .num_layers(n)
                                                                      .dropout(between)
                                                                      .bidirectional(bidirectional)
                                                                      .batch_first(true))));
  }
}

template <typename X>
X RnnStackImpl::run(size_t i, const X& x, torch::Tensor& h, torch::Tensor& c) {
  constexpr bool packed = std::is_same_v<X, rnn::PackedSequence>;
  if (lstm_) {
    auto& m = lstm_modules_[i];
    std::optional<std::tuple<torch::Tensor, torch::Tensor>> hc;
    if (h.defined()) hc = std::make_tuple(h, c);
    auto [out, state] = [&] {
      if constexpr (packed)
        return m->forward_with_packed_input(x, hc);
      else
        return m->forward(x, hc);
    }();
    h = std::get<0>(state), c = std::get<1>(state);
    return out;
  }
  auto& m = gru_modules_[i];
  auto [out, hn] = [&] {
    if constexpr (packed)
      return m->forward_with_packed_input(x, h);
    else
      return m->forward(x, h);
  }();
  h = hn;
  return out;
}

namespace {
// A packed sequence's values (N, D), in the same order at every layer, and a packed sequence of other values.
const torch::Tensor& values(const torch::Tensor& x) { return x; }
const torch::Tensor& values(const rnn::PackedSequence& x) { return x.data(); }
torch::Tensor with_values(const torch::Tensor&, torch::Tensor v) { return v; }
rnn::PackedSequence with_values(const rnn::PackedSequence& x, torch::Tensor v) {
  return rnn::PackedSequence(std::move(v), x.batch_sizes(), x.sorted_indices(), x.unsorted_indices());
}
}  // namespace

template <typename X>
X RnnStackImpl::stack(const X& x, torch::Tensor& h, torch::Tensor& c) {
  if (modules() == 1) return run(0, x, h, c);  // the fused stack
  X y = x;
  std::vector<torch::Tensor> hs, cs;  // per layer (dirs, B, Hd)
  for (size_t i = 0; i < modules(); ++i) {
    const auto l = static_cast<int64_t>(i);
    torch::Tensor hl = h.defined() ? h.narrow(0, l * dirs_, dirs_) : torch::Tensor();
    torch::Tensor cl = c.defined() ? c.narrow(0, l * dirs_, dirs_) : torch::Tensor();
    if (i == 0) {
      y = run(i, y, hl, cl);
    } else {
      const torch::Tensor in = values(y);
      y = with_values(y, values(run(i, with_values(y, torch::dropout(in, dropout_, is_training())), hl, cl)) + in);
    }
    hs.push_back(hl);
    if (cl.defined()) cs.push_back(cl);
  }
  h = torch::cat(hs);
  c = cs.empty() ? torch::Tensor() : torch::cat(cs);
  return y;
}

torch::Tensor RnnStackImpl::run_stepped(const torch::Tensor& x, const torch::Tensor& mask, torch::Tensor& h,
                                        torch::Tensor& c) {
  const int64_t B = x.size(0);
  const bool drop_h = is_training() && dropout_rnn_ > 0;
  torch::Tensor y = x;                // (B, T, I), then (B, T, dirs * Hd)
  std::vector<torch::Tensor> hs, cs;  // per layer and direction (B, Hd)
  for (int64_t l = 0; l < layers_; ++l) {
    const torch::Tensor in = l == 0 ? y : torch::dropout(y, dropout_, is_training());
    std::vector<torch::Tensor> outs;  // per direction (B, T, Hd)
    for (int64_t d = 0; d < dirs_; ++d) {
      const CellParams p = layer_params(l, d);
      const int64_t Hd = p.w_hh.size(1);
      torch::Tensor hk = h.defined() ? h[l * dirs_ + d] : torch::zeros({B, Hd}, y.options());
      torch::Tensor ck = !lstm_ ? torch::Tensor() : c.defined() ? c[l * dirs_ + d] : torch::zeros_like(hk);
      const torch::Tensor h_drop = drop_h ? variational_mask(B, Hd, dropout_rnn_, y.options()) : torch::Tensor();
      outs.push_back(run_cell(lstm_, p, in, mask, /*reverse=*/d == 1, hk, ck, h_drop, transition_params(l, d)));
      hs.push_back(hk);
      if (lstm_) cs.push_back(ck);
    }
    torch::Tensor out = dirs_ == 2 ? torch::cat(outs, -1) : outs[0];
    y = residual_ && l > 0 ? out + y : out;
  }
  h = torch::stack(hs);
  c = lstm_ ? torch::stack(cs) : torch::Tensor();
  return y;
}

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> RnnStackImpl::forward(const torch::Tensor& x,
                                                                              const torch::Tensor& h0,
                                                                              const torch::Tensor& c0) {
  torch::Tensor h = h0, c = c0;
  torch::Tensor out = stepped() ? run_stepped(x, torch::Tensor(), h, c) : stack(x, h, c);
  return {out, h, c};
}

rnn::PackedSequence RnnStackImpl::forward_packed(const rnn::PackedSequence& x, torch::Tensor& h, torch::Tensor& c) {
  TORCH_CHECK(!stepped(), "a stepped stack takes padded input: forward_masked");
  h = c = torch::Tensor();  // from zeros
  return stack(x, h, c);
}

torch::Tensor RnnStackImpl::forward_masked(const torch::Tensor& x, const torch::Tensor& mask, torch::Tensor& h,
                                           torch::Tensor& c) {
  TORCH_CHECK(stepped(), "forward_masked is for stepped stacks");
  h = c = torch::Tensor();  // from zeros
  return run_stepped(x, mask, h, c);
}

// ---------------------------------------------------------------------------------------------- OutputLayer

OutputLayerImpl::OutputLayerImpl(int64_t hidden, int64_t vocab, const torch::Tensor& tied) {
  torch::nn::Linear init(hidden, vocab);  // LibTorch's Linear initialisation, in the same random order as before
  weight = tied.defined() ? tied : register_parameter("weight", init->weight.detach().clone());
  bias = register_parameter("bias", init->bias.detach().clone());
}

torch::Tensor OutputLayerImpl::forward(const torch::Tensor& h) {
  return torch::nn::functional::linear(h, weight, bias);
}

void OutputLayerImpl::restrict_to(DecoderState& s, const torch::Tensor& ids) const {
  torch::NoGradGuard ng;
  s.out_weight = weight.index_select(0, ids), s.out_bias = bias.index_select(0, ids);
}

torch::Tensor OutputLayerImpl::step(const torch::Tensor& h, const DecoderState& s) {
  return s.out_weight.defined() ? torch::nn::functional::linear(h, s.out_weight, s.out_bias) : forward(h);
}

// ---------------------------------------------------------------------------------------------- Seq2Seq

namespace {

// rnn::pack_padded_sequence(x, lengths, batch_first, enforce_sorted=false) without its host synchronisation:
// LibTorch copies the sort permutation to the GPU with a blocking copy; here it travels from pinned memory.
// x (B, S, E); lengths (B) int64 on the CPU.
rnn::PackedSequence pack_by_length(const torch::Tensor& x, const torch::Tensor& lengths) {
  auto [sorted, order] = torch::sort(lengths, /*dim=*/-1, /*descending=*/true);  // (B), (B) on the CPU
  if (x.is_cuda()) order = order.pin_memory().to(x.device(), /*non_blocking=*/true);
  auto [data, batch_sizes] = torch::_pack_padded_sequence(x.index_select(0, order), sorted, /*batch_first=*/true);
  return rnn::PackedSequence(data, batch_sizes, order);
}

}  // namespace

Seq2SeqImpl::Seq2SeqImpl(const ModelConfig& cfg) : SequenceModelImpl(cfg) {
  const int64_t E = cfg.embedding, H = cfg.hidden, L = cfg.decoder_layers();
  if (!cfg.share_embeddings)
    src_emb_ = register_module("src_emb", make_embedding(cfg.src_vocab, E, cfg.embedding_init, cfg.embedding_std));
  tgt_emb_ = register_module("tgt_emb", make_embedding(cfg.tgt_vocab, E, cfg.embedding_init, cfg.embedding_std));
  if (cfg.share_embeddings) src_emb_ = tgt_emb_;  // registered once: the optimizer and checkpoints hold it once
  encoder_ = register_module(
      "encoder", RnnStack(cfg.cell, E, cfg.bidirectional ? H / 2 : H, cfg.encoder_layers(), cfg.dropout,
                          cfg.bidirectional, cfg.residual, cfg.layer_norm, cfg.dropout_rnn, cfg.enc_cell_depth));
  if (cfg.input_feeding) {
    for (int64_t l = 0; l < L; ++l) {
      int64_t in = l == 0 ? E + H : H;
      if (cfg.layer_norm)
        norm_cells_.push_back(
            register_module("dec_cell" + std::to_string(l), NormCell(cfg.cell == Cell::kLstm, in, H)));
      else if (cfg.cell == Cell::kLstm)
        lstm_cells_.push_back(register_module("dec_cell" + std::to_string(l), torch::nn::LSTMCell(in, H)));
      else
        gru_cells_.push_back(register_module("dec_cell" + std::to_string(l), torch::nn::GRUCell(in, H)));
    }
  } else {
    decoder_ = register_module(
        "decoder", RnnStack(cfg.cell, E, H, L, cfg.dropout, false, cfg.residual, cfg.layer_norm, cfg.dropout_rnn));
  }
  attention_ = register_module("attention", Attention(cfg));
  combine_ = register_module("combine", torch::nn::Linear(torch::nn::LinearOptions(2 * H, H).bias(false)));
  out_ = register_module("out", OutputLayer(H, cfg.tgt_vocab, cfg.tie_embeddings ? tgt_emb_->weight : torch::Tensor()));
  drop_ = register_module("drop", torch::nn::Dropout(cfg.dropout));
}

DecoderState Seq2SeqImpl::encode(const torch::Tensor& src, const torch::Tensor& src_len) {
  const int64_t B = src.size(0), S = src.size(1), H = cfg_.hidden;
  const int64_t Le = cfg_.encoder_layers(), Ld = cfg_.decoder_layers();
  torch::Tensor emb = drop_words(drop_(src_emb_(src)), cfg_.dropout_src, is_training());  // (B, S, E)
  DecoderState s;
  s.mask = torch::arange(S, src.options()).unsqueeze(0) < src_len.to(src.device(), true).unsqueeze(1);  // (B, S)
  torch::Tensor h, c;  // (L*dirs, B, Hd)
  if (encoder_->stepped()) {
    s.memory = encoder_->forward_masked(emb, s.mask, h, c);  // (B, S, H)
  } else {
    auto packed = pack_by_length(emb, src_len.to(torch::kCPU, torch::kLong).clamp_min(1));  // no copy on the CPU
    auto out = encoder_->forward_packed(packed, h, c);
    s.memory = std::get<0>(rnn::pad_packed_sequence(out, /*batch_first=*/true, /*padding_value=*/0.0, S));
  }
  // The decoder's initial state (Ld, B, H): the encoder's final states (Le*dirs, B, Hd), directions side by side, top
  // layer to top layer; decoder layers below the encoder's bottom start from zeros.
  auto initial = [&](const torch::Tensor& t) {
    if (!t.defined()) return t;
    torch::Tensor v = t;  // (Le, B, H)
    if (cfg_.bidirectional) {
      auto d = t.view({Le, 2, B, H / 2});
      v = torch::cat({d.select(1, 0), d.select(1, 1)}, -1);
    }
    if (Le > Ld) return v.narrow(0, Le - Ld, Ld);
    if (Le < Ld) return torch::cat({torch::zeros({Ld - Le, B, H}, v.options()), v});
    return v;
  };
  s.h = initial(h);
  s.c = initial(c);
  s.keys = attention_->keys(s.memory);                // (B, S, H)
  s.feed = torch::zeros({B, H}, s.memory.options());  // (B, H)
  if (fast_steps(*this, src.device())) s.weights = decode_weights();
  return s;
}

CellParams Seq2SeqImpl::dec_cell_params(size_t l) const {
  const auto cell = [](const auto& c) -> CellParams {  // an LSTMCell's or a GRUCell's
    return {c->weight_ih, c->weight_hh, c->bias_ih, c->bias_hh, {}, {}};
  };
  return !norm_cells_.empty()   ? norm_cells_[l]->params()
         : !lstm_cells_.empty() ? cell(lstm_cells_[l])
                                : cell(gru_cells_[l]);
}

torch::Tensor Seq2SeqImpl::cell_step(const torch::Tensor& emb, DecoderState& s,
                                     const std::vector<torch::Tensor>& h_drop) {
  // emb (B, E) -> top hidden (B, H); updates s.h / s.c
  torch::Tensor x = torch::cat({emb, s.feed}, -1);  // (B, E + H)
  std::vector<torch::Tensor> hs, cs;
  const int64_t L = cfg_.decoder_layers();
  for (int64_t l = 0; l < L; ++l) {
    const auto k = static_cast<size_t>(l);
    const torch::Tensor in = l > 0 ? drop_(x) : x;
    torch::Tensor y;  // (B, H) the layer's state h
    if (!norm_cells_.empty() || !h_drop.empty()) {
      const CellParams p = dec_cell_params(k);
      auto [h, c] = step_cell(cfg_.cell == Cell::kLstm, p, cell_input_gates(p, in), s.h[l],
                              s.c.defined() ? s.c[l] : s.c, h_drop.empty() ? torch::Tensor() : h_drop[k]);
      y = h;
      if (c.defined()) cs.push_back(c);
    } else if (!lstm_cells_.empty()) {
      auto [h, c] = lstm_cells_[k]->forward(in, std::make_tuple(s.h[l], s.c[l]));
      y = h, cs.push_back(c);
    } else {
      y = gru_cells_[k]->forward(in, s.h[l]);
    }
    hs.push_back(y);
    x = cfg_.residual && l > 0 ? y + x : y;
  }
  s.h = torch::stack(hs);
  if (!cs.empty()) s.c = torch::stack(cs);
  return x;
}

std::pair<torch::Tensor, torch::Tensor> Seq2SeqImpl::attend(const torch::Tensor& h, const DecoderState& s,
                                                            torch::Tensor* htilde, bool fast) {
  auto [context, weights] = attention_(h, s.keys, s.memory, s.mask);  // (B, T, H), (B, T, S)
  torch::Tensor joined = torch::cat({context, h}, -1);                // (B, T, 2H)
  *htilde = torch::tanh(fast ? s.weights->combine(joined.flatten(0, 1)).view_as(h) : combine_(joined));
  return {*htilde, weights};
}

torch::Tensor Seq2SeqImpl::project(const torch::Tensor& htilde) { return out_(drop_(htilde)); }

torch::Tensor Seq2SeqImpl::forward(const torch::Tensor& src, const torch::Tensor& src_len,
                                   const torch::Tensor& tgt_in) {
  return teacher_forced(src, src_len, tgt_in, nullptr);
}

std::pair<torch::Tensor, torch::Tensor> Seq2SeqImpl::forward_attention(const torch::Tensor& src,
                                                                       const torch::Tensor& src_len,
                                                                       const torch::Tensor& tgt_in) {
  torch::Tensor attention;
  torch::Tensor logits = teacher_forced(src, src_len, tgt_in, &attention);
  return {logits, attention};
}

namespace {

// model.right_left: rows of tgt_in (B, T), each <s> y1 .. yn then padding (id 0, make_embedding's padding row) ->
// where a right-to-left decoder reads and writes them: `in` (B, T) the positions of <s> yn .. y1 in tgt_in, `out`
// (B, T) those of yn .. y1 </s> among the outputs in reading order (y1 .. yn </s>); padding stays in place. Both are
// their own inverses.
std::pair<torch::Tensor, torch::Tensor> right_left_positions(const torch::Tensor& tgt_in) {
  const torch::Tensor n = tgt_in.ne(0).sum(1, /*keepdim=*/true) - 1;                     // (B, 1) target tokens
  const torch::Tensor t = torch::arange(tgt_in.size(1), tgt_in.options()).unsqueeze(0);  // (1, T)
  return {torch::where(t.ge(1).logical_and(t.le(n)), n + 1 - t, t), torch::where(t.lt(n), n - 1 - t, t)};
}

// x (B, T, ...) -> x with each row's positions taken in the order `positions` (B, T) gives.
torch::Tensor take_positions(const torch::Tensor& x, const torch::Tensor& positions) {
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[0] = positions.size(0), shape[1] = positions.size(1);
  std::vector<int64_t> sizes = x.sizes().vec();
  return x.gather(1, positions.view(shape).expand(sizes));
}

}  // namespace

torch::Tensor Seq2SeqImpl::teacher_forced(const torch::Tensor& src, const torch::Tensor& src_len,
                                          const torch::Tensor& tgt_in_order, torch::Tensor* attention) {
  torch::Tensor tgt_in = tgt_in_order, out_positions;  // (B, T): model.right_left reads the targets from the end
  if (cfg_.right_left) {
    auto [in_positions, outs] = right_left_positions(tgt_in_order);
    tgt_in = tgt_in_order.gather(1, in_positions), out_positions = outs;
  }
  DecoderState s = encode(src, src_len);
  torch::Tensor emb = drop_words(drop_(tgt_emb_(tgt_in)), cfg_.dropout_tgt, is_training());  // (B, T, E)
  torch::Tensor htilde;                                                                      // (B, T, H)
  if (cfg_.input_feeding) {
    std::vector<torch::Tensor> h_drop;  // model.dropout_rnn: a mask a layer, the same at every step
    if (is_training() && cfg_.dropout_rnn > 0)
      for (int64_t l = 0; l < cfg_.decoder_layers(); ++l)
        h_drop.push_back(variational_mask(emb.size(0), cfg_.hidden, cfg_.dropout_rnn, emb.options()));
    std::vector<torch::Tensor> steps, weights;  // (B, H), (B, 1, S) a step
    for (int64_t t = 0; t < tgt_in.size(1); ++t) {
      torch::Tensor top = cell_step(emb.select(1, t), s, h_drop);  // (B, H)
      torch::Tensor ht;
      torch::Tensor w = attend(top.unsqueeze(1), s, &ht).second;
      if (attention) weights.push_back(w);
      s.feed = ht.squeeze(1);
      steps.push_back(s.feed);
    }
    htilde = torch::stack(steps, 1);
    if (attention) *attention = torch::cat(weights, 1);  // (B, T, S)
  } else {
    auto [out, h, c] = decoder_(emb, s.h, s.c);  // (B, T, H)
    torch::Tensor w = attend(out, s, &htilde).second;
    if (attention) *attention = w;
  }
  if (out_positions.defined()) {  // back into reading order
    htilde = take_positions(htilde, out_positions);
    if (attention) *attention = take_positions(*attention, out_positions);
  }
  return project(htilde);  // (B, T, V)
}

std::vector<CellParams> RnnStackImpl::transition_params(int64_t l, int64_t d) const {
  const size_t n = transitions_.size() / static_cast<size_t>(layers_ * dirs_),
               first = static_cast<size_t>(l * dirs_ + d) * n;
  std::vector<CellParams> out;
  for (size_t k = 0; k < n; ++k) out.push_back(transitions_[first + k]->params());
  return out;
}

CellParams RnnStackImpl::layer_params(int64_t l, int64_t d) {
  if (normalized()) return norm_cells_[static_cast<size_t>(l * dirs_ + d)]->params();
  const bool split = modules() > 1;
  auto p = module(split ? static_cast<size_t>(l) : 0).named_parameters(/*recurse=*/false);
  const std::string k = "_l" + std::to_string(split ? 0 : l) + (d == 1 ? "_reverse" : "");
  return {p["weight_ih" + k], p["weight_hh" + k], p["bias_ih" + k], p["bias_hh" + k], {}, {}};
}

void add_decode_layer(DecodeWeights& w, int64_t l, const torch::Tensor& emb, const CellParams& p, CpuGemm gemm) {
  const int64_t E = emb.size(1), I = p.w_ih.size(1);
  const bool norm = p.gain_ih.defined();  // the bias comes after the input gates' normalization
  const torch::Tensor in_bias = norm ? torch::Tensor() : p.b_ih;
  DecodeWeights::Layer layer;
  layer.hh = DenseLinear(p.w_hh, p.b_hh, gemm);
  if (norm) layer.gain_ih = p.gain_ih, layer.gain_hh = p.gain_hh, layer.bias = p.b_ih;
  if (l == 0) {
    const torch::Tensor w_emb = p.w_ih.narrow(1, 0, E).t();
    w.token_gates = norm ? torch::mm(emb, w_emb) : torch::addmm(in_bias, emb, w_emb);  // (V, G)
    if (I > E) layer.in = DenseLinear(p.w_ih.narrow(1, E, I - E), {}, gemm);           // input feeding
  } else {
    layer.in = DenseLinear(p.w_ih, in_bias, gemm);
  }
  w.layers.push_back(std::move(layer));
}

void set_decode_output(DecodeWeights& w, const OutputLayerImpl& out, const CpuKernels& kernels) {
  if (kernels.int8)
    w.out_int8 = std::make_shared<Int8Linear>(out.weight, out.bias);
  else
    w.out = DenseLinear(out.weight, out.bias, kernels.gemm);
}

std::shared_ptr<const DecodeWeights> restrict_decode_output(const DecodeWeights& w, const OutputLayerImpl& out,
                                                            const torch::Tensor& ids) {
  torch::NoGradGuard ng;
  auto cut = std::make_shared<DecodeWeights>(w);  // the recurrent weights shared, the output layer's rows cut
  if (cut->out_int8)                              // rows quantized one by one: the same int8 rows as the whole layer's
    cut->out_int8 = std::make_shared<Int8Linear>(out.weight.index_select(0, ids), out.bias.index_select(0, ids));
  else
    cut->out = cut->out.rows(ids);  // (V') outputs
  return cut;
}

torch::Tensor DecodeWeights::logits(const torch::Tensor& h) const { return out_int8 ? (*out_int8)(h) : out(h); }

bool fast_steps(const torch::nn::Module& m, const torch::Device& device) {
  return !m.is_training() && !torch::GradMode::is_enabled() && device.is_cpu() &&
         !at::autocast::is_autocast_enabled(at::kCPU);
}

std::shared_ptr<const DecodeWeights> DecodeWeightsCache::get(
    torch::nn::Module& m, const CpuKernels& kernels, const std::function<std::shared_ptr<DecodeWeights>()>& build) {
  torch::NoGradGuard ng;
  std::vector<std::pair<const void*, int64_t>> key;
  for (const auto& p : m.parameters()) key.emplace_back(p.data_ptr(), p._version());
  std::lock_guard<std::mutex> lock(mutex_);
  if (weights_ && key_ == key && kernels_ == kernels) return weights_;
  weights_ = build();
  key_ = std::move(key);
  kernels_ = kernels;
  return weights_;
}

std::shared_ptr<const DecodeWeights> Seq2SeqImpl::decode_weights() {
  return cache_->get(*this, kernels_, [&] {
    auto w = std::make_shared<DecodeWeights>();
    for (int64_t l = 0; l < cfg_.decoder_layers(); ++l)
      add_decode_layer(*w, l, tgt_emb_->weight,
                       cfg_.input_feeding ? dec_cell_params(static_cast<size_t>(l)) : decoder_->layer_params(l),
                       kernels_.gemm);
    w->combine = DenseLinear(combine_->weight, {}, kernels_.gemm);
    w->residual = cfg_.residual;
    set_decode_output(*w, *out_, kernels_);
    return w;
  });
}

torch::Tensor fast_cell_step(bool lstm, const torch::Tensor& prev, const DecodeWeights& w, DecoderState& s) {
  torch::Tensor x;  // (N, H) the layer's output
  std::vector<torch::Tensor> hs, cs;
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const auto& p = w.layers[l];
    torch::Tensor h = s.h[static_cast<int64_t>(l)];  // (N, H)
    torch::Tensor gi;                                // (N, G) input gates
    if (l == 0) {
      gi = w.token_gates.index_select(0, prev);
      if (p.in.defined()) gi = p.in(s.feed, gi);
    } else {
      gi = p.in(x);
    }
    torch::Tensor gh = p.hh(h);  // (N, G)
    if (p.gain_ih.defined()) gi = norm_gates(gi, p.gain_ih, p.bias), gh = norm_gates(gh, p.gain_hh);
    auto [y, c] = cell_update(lstm, gi, gh, h, lstm ? s.c[static_cast<int64_t>(l)] : torch::Tensor());  // (N, H)
    if (lstm) cs.push_back(c);
    hs.push_back(y);
    x = w.residual && l > 0 ? y + x : y;
  }
  s.h = torch::stack(hs);
  if (lstm) s.c = torch::stack(cs);
  return x;
}

void Seq2SeqImpl::restrict_output(DecoderState& s, const torch::Tensor& ids) {
  if (!s.weights) return out_->restrict_to(s, ids);
  s.weights = restrict_decode_output(*s.weights, *out_, ids);
}

torch::Tensor Seq2SeqImpl::step(const torch::Tensor& prev, DecoderState& s) {
  torch::Tensor top;  // (B, 1, H)
  if (s.weights) {
    top = fast_cell_step(cfg_.cell == Cell::kLstm, prev, *s.weights, s).unsqueeze(1);
  } else if (cfg_.input_feeding) {
    top = cell_step(drop_(tgt_emb_(prev)), s).unsqueeze(1);
  } else {
    auto [out, h, c] = decoder_(drop_(tgt_emb_(prev)).unsqueeze(1), s.h, s.c);
    s.h = h, s.c = c, top = out;
  }
  torch::Tensor ht;
  auto [unused, weights] = attend(top, s, &ht, /*fast=*/s.weights != nullptr);
  s.feed = ht.squeeze(1);
  s.attn = weights.squeeze(1);  // (B, S)
  torch::Tensor logits;         // (B, V), or (B, V') over a shortlist's ids
  if (s.weights)
    logits = s.weights->logits(s.feed);
  else
    logits = out_->step(drop_(s.feed), s);               // s.feed is ht (B, H)
  return torch::log_softmax(at_least_fp32(logits), -1);  // (B, V)
}

}  // namespace tern
