// Encoder-decoder with attention: LSTM or GRU stacks (optionally residual, layer-normalized), optional bidirectional
// encoder, Luong dot/general/local-p, Bahdanau additive or multi-head attention, optional input feeding, tied or shared
// embeddings, word dropout.
#pragma once
#include "models/attention.h"
#include "models/cpu_linear.h"
#include "models/model.h"

#include <array>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace tern {

// A recurrent layer's parameters as the CPU fast steps take them (G gates: 4H for an LSTM, 3H for a GRU, in LibTorch's
// order: input, forget, cell, output; reset, update, new).
struct CellParams {
  torch::Tensor w_ih, w_hh;        // (G, I), (G, H)
  torch::Tensor b_ih, b_hh;        // (G) each; a layer-normalized cell: its one bias b_ih, b_hh undefined
  torch::Tensor gain_ih, gain_hh;  // (G) each, a layer-normalized cell's gains (else undefined)
};

// The gate pre-activations of a layer-normalized cell (Ba et al. 2016, as Marian's --layer-normalization): its input
// and its recurrent products normalized apart over the G gates of a row (zero mean, unit variance), each times gains of
// its own, the bias after the input's: gi = g_ih * norm(W_ih x) + b, gh = g_hh * norm(W_hh h). (..., G) -> (..., G)
torch::Tensor norm_gates(const torch::Tensor& g, const torch::Tensor& gain, const torch::Tensor& bias = {});
// An LSTM's or a GRU's step from its input gates gi (N, G) and recurrent gates gh (N, G) (biases included), h and c
// (N, H; c undefined for a GRU) -> new h, new c. The GRU's new gate takes reset * gh's part, as LibTorch's.
std::pair<torch::Tensor, torch::Tensor> cell_update(bool lstm, const torch::Tensor& gi, const torch::Tensor& gh,
                                                    const torch::Tensor& h, const torch::Tensor& c);

// A recurrent layer's input gates for every position: x (..., I) -> (..., G), W_ih x + b_ih, or layer-normalized
// (p.gain_ih defined) g_ih * norm(W_ih x) + b.
torch::Tensor cell_input_gates(const CellParams& p, const torch::Tensor& x);
// One step of a recurrent layer: input gates xg (N, G) from cell_input_gates, state h/c (N, H; c undefined for a GRU)
// -> new h, new c. h_drop (N, H) (undefined: none): variational dropout (model.dropout_rnn), h's units scaled by it in
// the recurrent product only (a GRU's update still mixes in h itself).
std::pair<torch::Tensor, torch::Tensor> step_cell(bool lstm, const CellParams& p, const torch::Tensor& xg,
                                                  const torch::Tensor& h, const torch::Tensor& c,
                                                  const torch::Tensor& h_drop = {});
// A recurrent layer and direction stepped over x (B, T, I) from state h/c (B, H) -> outputs (B, T, H), leaving in h/c
// the state after each row's last real token. mask (B, T) bool, true on real tokens (padding at the end; undefined:
// all real): the state passes padding unchanged and its outputs are zeros, as a packed sequence's. reverse: from
// position T-1 down to 0. h_drop: as step_cell's, the same at every step.
// transitions: a deep transition's cells (TransitionCell), stepped in order after p's at every position.
torch::Tensor run_cell(bool lstm, const CellParams& p, const torch::Tensor& x, const torch::Tensor& mask, bool reverse,
                       torch::Tensor& h, torch::Tensor& c, const torch::Tensor& h_drop = {},
                       const std::vector<CellParams>& transitions = {});
// A deep transition's cell (model.enc_cell_depth; Pascanu et al. 2014, Marian --enc-cell-depth): a cell after a
// layer's first one in the same step, reading no input, only the state: gates = bias + W_hh h (layer-normalized: bias +
// g_hh * norm(W_hh h)). Parameters: weight_hh (G, H), bias (G), gain_hh (G, layer-normalized only).
struct TransitionCellImpl : torch::nn::Module {
  TransitionCellImpl(bool lstm, int64_t hidden, bool layer_norm);
  CellParams params() const;  // b_ih: the bias, the input gates of a cell without input
  torch::Tensor weight_hh, bias, gain_hh;
};
TORCH_MODULE(TransitionCell);

// A variational dropout mask (Gal & Ghahramani 2016): (rows, units) of 0 with probability p, else 1 / (1 - p).
torch::Tensor variational_mask(int64_t rows, int64_t units, double p, const torch::TensorOptions& options);

// One layer and direction of a layer-normalized LSTM or GRU (model.layer_norm), stepped with run_cell / step_cell
// (never fused: no cuDNN kernel normalizes inside the recurrence). Parameters: weight_ih (G, I), weight_hh (G, H),
// bias (G), gain_ih and gain_hh (G, ones at first).
struct NormCellImpl : torch::nn::Module {
  NormCellImpl(bool lstm, int64_t input, int64_t hidden);
  CellParams params() const;

  bool lstm;
  torch::Tensor weight_ih, weight_hh, bias, gain_ih, gain_hh;
};
TORCH_MODULE(NormCell);

// A stack of LSTM or GRU layers, fused over time (cuDNN on GPU) or stepped one token at a time. Residual (GNMT): from
// layer 1 on, y_l = y_{l-1} + layer_l(dropout(y_{l-1})); each layer is then a module of its own
// ("layer1.weight_ih_l0"), else the stack is one module ("lstm.weight_ih_l1"). Layer-normalized (model.layer_norm): a
// NormCell a layer and direction ("norm1_reverse.weight_ih"), residual or not. dropout_rnn (model.dropout_rnn): in
// training, each layer and direction drops the same units of h from its recurrent product at every step of a
// sequence (a mask a row); the layers are then stepped (run_cell), with the same parameters. cell_depth > 1 (deep
// transition, model.enc_cell_depth): each layer and direction steps cell_depth - 1 TransitionCells after its cell
// ("trans1_2_reverse": layer 1, the second transition, backward), always stepped.
struct RnnStackImpl : torch::nn::Module {
  RnnStackImpl(Choice<Cell> cell, int64_t input, int64_t hidden, int64_t layers, double dropout, bool bidirectional,
               bool residual, bool layer_norm = false, double dropout_rnn = 0.0, int64_t cell_depth = 1);
  // x (B, T, I); state h/c (L*dirs, B, Hd) -> output (B, T, dirs*Hd), state
  std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> forward(const torch::Tensor& x, const torch::Tensor& h,
                                                                  const torch::Tensor& c);
  torch::nn::utils::rnn::PackedSequence forward_packed(const torch::nn::utils::rnn::PackedSequence& x, torch::Tensor& h,
                                                       torch::Tensor& c);
  // A stepped() stack over x (B, T, I) with mask (B, T) (run_cell) from zeros, setting h/c.
  torch::Tensor forward_masked(const torch::Tensor& x, const torch::Tensor& mask, torch::Tensor& h, torch::Tensor& c);
  bool lstm() const { return lstm_; }
  bool normalized() const { return !norm_cells_.empty(); }
  // Whether forward steps the layers (layer-normalized, deep transition, or training with dropout_rnn): the encoder
  // then passes its padded batch with a mask (forward_masked), not packed.
  bool stepped() const { return normalized() || !transitions_.empty() || (is_training() && dropout_rnn_ > 0); }
  // Layer l's parameters, direction d (1: the reverse one).
  CellParams layer_params(int64_t l, int64_t d = 0);

 private:
  // Runs module i (the whole stack, or residual layer i) over x with state h/c (undefined: zeros), setting them.
  template <typename X>
  X run(size_t i, const X& x, torch::Tensor& h, torch::Tensor& c);
  // The stack over x (a tensor or packed) from h/c (L*dirs, B, Hd; undefined: zeros), setting them.
  template <typename X>
  X stack(const X& x, torch::Tensor& h, torch::Tensor& c);
  // Its modules: 1 (the fused stack) or one a layer (residual), and module i as a plain module.
  size_t modules() const { return lstm_ ? lstm_modules_.size() : gru_modules_.size(); }
  torch::nn::Module& module(size_t i) {
    return lstm_ ? static_cast<torch::nn::Module&>(*lstm_modules_[i])
                 : static_cast<torch::nn::Module&>(*gru_modules_[i]);
  }

  // The stack stepped over x with mask from h/c (undefined: zeros), setting them.
  torch::Tensor run_stepped(const torch::Tensor& x, const torch::Tensor& mask, torch::Tensor& h, torch::Tensor& c);

  bool lstm_;
  double dropout_;                             // between layers (residual stacks apply it themselves)
  double dropout_rnn_;                         // variational, on h in the recurrent products (training)
  int64_t layers_;                             // L
  int64_t dirs_;                               // 2 bidirectional, else 1
  bool residual_;                              // (a NormCell stack adds the residuals itself)
  std::vector<torch::nn::LSTM> lstm_modules_;  // one fused stack, or one a layer (residual)
  std::vector<torch::nn::GRU> gru_modules_;
  std::vector<NormCell> norm_cells_;  // layer_norm: layer l, direction d at l * dirs + d (no fused modules then)
  // Deep transition: cell_depth - 1 a layer and direction, transition k of layer l, direction d at
  // (l * dirs + d) * (cell_depth - 1) + k - 1.
  std::vector<TransitionCell> transitions_;
  // Layer l's transitions, direction d.
  std::vector<CellParams> transition_params(int64_t l, int64_t d) const;
};
TORCH_MODULE(RnnStack);

// Output projection h -> logits with bias. Tied: the weight is the target embedding's (V, E == H), registered once
// under the embedding, so the optimizer and checkpoints hold it once.
struct OutputLayerImpl : torch::nn::Module {
  // tied: the embedding weight to share, or an undefined tensor for a weight of its own.
  OutputLayerImpl(int64_t hidden, int64_t vocab, const torch::Tensor& tied);
  torch::Tensor forward(const torch::Tensor& h);  // (..., H) -> (..., V)
  // A shortlist (restrict_output): state.out_weight (V', H) and state.out_bias (V'), the rows of the target ids `ids`.
  void restrict_to(DecoderState& state, const torch::Tensor& ids) const;
  // h (N, H) -> logits (N, V), or (N, V') over the rows restrict_to cut into `state`.
  torch::Tensor step(const torch::Tensor& h, const DecoderState& state);
  torch::Tensor weight;  // (V, H)
  torch::Tensor bias;    // (V)
};
TORCH_MODULE(OutputLayer);

// The decoder's parameters rearranged for inference steps on the CPU, computed once from the current weights (about
// 25% less time a step than the modules': layer 0's input gates of every target token are a table, and the products
// keep their weights prepared for the CPU kernels, models/cpu_linear.h). G gates: 4H (LSTM) or 3H (GRU).
struct DecodeWeights {
  struct Layer {
    DenseLinear in;  // (I) -> (G) input gates; layer 0: the input-feeding part only, no bias (else undefined)
    DenseLinear hh;  // (H) -> (G) recurrent gates, with their bias
    // A layer-normalized cell's gains and bias (CellParams; else undefined): `in` and `hh` then have no bias, and the
    // input and recurrent gates are normalized (norm_gates) after their products
    torch::Tensor gain_ih, gain_hh, bias;
  };
  // (V, G) layer 0: W_ih[:, :E] emb(v) + b_ih for every target token v (a layer-normalized cell: W_ih[:, :E] emb(v))
  torch::Tensor token_gates;
  std::vector<Layer> layers;
  bool residual = false;                               // model.residual: layer l >= 1 adds its input to its output
  DenseLinear combine;                                 // seq2seq: W_c (2H) -> (H), no bias (a language model: none)
  DenseLinear out;                                     // (H) -> (V) fp32 output layer (undefined with out_int8)
  std::shared_ptr<const Int8Linear> out_int8;          // CpuKernels::int8: the output layer in int8 instead
  torch::Tensor logits(const torch::Tensor& h) const;  // the output layer: (N, H) -> (N, V)
};

// Building DecodeWeights for a decoder stack (the seq2seq decoder's, a language model's): layer l from its gate
// parameters, layer 0's input gates of every token from the embedding `emb` (V, E) (w_ih's columns past E: input
// feeding), and the output layer (int8: as Int8Linear).
void add_decode_layer(DecodeWeights& w, int64_t l, const torch::Tensor& emb, const CellParams& p, CpuGemm gemm);
void set_decode_output(DecodeWeights& w, const OutputLayerImpl& out, const CpuKernels& kernels);
// `w` with the output layer cut to the rows `ids` (V'): a shortlist (restrict_output).
std::shared_ptr<const DecodeWeights> restrict_decode_output(const DecodeWeights& w, const OutputLayerImpl& out,
                                                            const torch::Tensor& ids);
// One step of the stack with `w`: prev (N) -> the top layer's output (N, H); updates s.h / s.c (L, N, H), reads
// s.feed (N, H) when layer 0 takes input feeding.
torch::Tensor fast_cell_step(bool lstm, const torch::Tensor& prev, const DecodeWeights& w, DecoderState& s);
// Whether steps may use DecodeWeights: inference on the CPU without autocast.
bool fast_steps(const torch::nn::Module& m, const torch::Device& device);

// The DecodeWeights of a module's parameters as they are now: built at the first call and again after any parameter
// changed (its storage or version counter) or the kernels changed; thread-safe.
class DecodeWeightsCache {
 public:
  std::shared_ptr<const DecodeWeights> get(torch::nn::Module& m, const CpuKernels& kernels,
                                           const std::function<std::shared_ptr<DecodeWeights>()>& build);

 private:
  std::mutex mutex_;
  std::vector<std::pair<const void*, int64_t>> key_;  // per parameter: storage and version it was built from
  CpuKernels kernels_;                                // and the kernels
  std::shared_ptr<const DecodeWeights> weights_;
};

struct Seq2SeqImpl : SequenceModelImpl {
  explicit Seq2SeqImpl(const ModelConfig& cfg);
  torch::Tensor forward(const torch::Tensor& src, const torch::Tensor& src_len, const torch::Tensor& tgt_in) override;
  std::pair<torch::Tensor, torch::Tensor> forward_attention(const torch::Tensor& src, const torch::Tensor& src_len,
                                                            const torch::Tensor& tgt_in) override;
  DecoderState encode(const torch::Tensor& src, const torch::Tensor& src_len) override;
  torch::Tensor step(const torch::Tensor& prev, DecoderState& state) override;
  void restrict_output(DecoderState& state, const torch::Tensor& ids) override;
  torch::Tensor embedding_table(bool source) override { return (source ? src_emb_ : tgt_emb_)->weight; }

 private:
  // Decoder cells, one per layer, for the input-feeding step loop. h_drop: per layer (B, H), model.dropout_rnn's masks
  // in training (empty: none).
  torch::Tensor cell_step(const torch::Tensor& x, DecoderState& s, const std::vector<torch::Tensor>& h_drop = {});
  CellParams dec_cell_params(size_t l) const;  // input feeding's layer l
  // Teacher forcing: logits (B, T, V), and into *attention (when given) the weights (B, T, S), in reading order
  // (model.right_left: the decoder reads tgt_in from the end, and its outputs are put back in reading order).
  torch::Tensor teacher_forced(const torch::Tensor& src, const torch::Tensor& src_len, const torch::Tensor& tgt_in,
                               torch::Tensor* attention);
  // h (B, T, H) -> h~ = tanh(W_c [context; h]) (B, T, H) into *htilde, and the attention weights (B, T, S); `fast`:
  // W_c from s.weights (a step on the CPU).
  std::pair<torch::Tensor, torch::Tensor> attend(const torch::Tensor& h, const DecoderState& s, torch::Tensor* htilde,
                                                 bool fast = false);
  torch::Tensor project(const torch::Tensor& htilde);     // (B, T, H) -> (B, T, V)
  std::shared_ptr<const DecodeWeights> decode_weights();  // the decoder's, from cache_

  torch::nn::Embedding src_emb_{nullptr}, tgt_emb_{nullptr};  // (V_src, E), (V_tgt, E); one module when shared
  RnnStack encoder_{nullptr};
  RnnStack decoder_{nullptr};                    // fused decoder (no input feeding)
  std::vector<torch::nn::LSTMCell> lstm_cells_;  // input feeding: layer 0 takes E + H
  std::vector<torch::nn::GRUCell> gru_cells_;
  std::vector<NormCell> norm_cells_;  // input feeding with model.layer_norm instead
  Attention attention_{nullptr};
  torch::nn::Linear combine_{nullptr};  // W_c (H, 2H)
  OutputLayer out_{nullptr};            // (V_tgt, H), weight shared with tgt_emb_ when tied
  torch::nn::Dropout drop_{nullptr};
  std::shared_ptr<DecodeWeightsCache> cache_ = std::make_shared<DecodeWeightsCache>();
};

}  // namespace tern
