// Encoder-decoder with attention: LSTM or GRU, optional bidirectional encoder, Luong dot/general or Bahdanau
// additive attention, optional input feeding, tied target embeddings.
#pragma once
#include "models/attention.h"
#include "models/model.h"

namespace tern {

// A stack of LSTM or GRU layers, fused over time (cuDNN on GPU) or stepped one token at a time.
struct RnnStackImpl : torch::nn::Module {
  RnnStackImpl(Choice<Cell> cell, int64_t input, int64_t hidden, int64_t layers, double dropout, bool bidirectional);
  // x (B, T, I) or packed; state h/c (L*dirs, B, Hd) -> output (B, T, dirs*Hd), state
  std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> forward(const torch::Tensor& x, const torch::Tensor& h,
                                                                  const torch::Tensor& c);
  torch::nn::utils::rnn::PackedSequence forward_packed(const torch::nn::utils::rnn::PackedSequence& x, torch::Tensor& h,
                                                       torch::Tensor& c);
  bool lstm() const { return !lstm_.is_empty(); }
  torch::nn::LSTM lstm_{nullptr};
  torch::nn::GRU gru_{nullptr};
};
TORCH_MODULE(RnnStack);

// Output projection h -> logits with bias. Tied: the weight is the target embedding's (V, E == H), registered once
// under the embedding, so the optimizer and checkpoints hold it once.
struct OutputLayerImpl : torch::nn::Module {
  // tied: the embedding weight to share, or an undefined tensor for a weight of its own.
  OutputLayerImpl(int64_t hidden, int64_t vocab, const torch::Tensor& tied);
  torch::Tensor forward(const torch::Tensor& h);  // (..., H) -> (..., V)
  torch::Tensor weight;                           // (V, H)
  torch::Tensor bias;                             // (V)
};
TORCH_MODULE(OutputLayer);

struct Seq2SeqImpl : SequenceModelImpl {
  explicit Seq2SeqImpl(const ModelConfig& cfg);
  torch::Tensor forward(const torch::Tensor& src, const torch::Tensor& src_len, const torch::Tensor& tgt_in) override;
  DecoderState encode(const torch::Tensor& src, const torch::Tensor& src_len) override;
  torch::Tensor step(const torch::Tensor& prev, DecoderState& state) override;

 private:
  // Decoder cells, one per layer, for the input-feeding step loop.
  torch::Tensor cell_step(const torch::Tensor& x, DecoderState& s);
  // h~ = tanh(W_c [context; h]) then dropout and the output layer. h (B, T, H) -> logits (B, T, V), weights (B, T, S)
  std::pair<torch::Tensor, torch::Tensor> attend(const torch::Tensor& h, const DecoderState& s, torch::Tensor* htilde);
  torch::Tensor project(const torch::Tensor& htilde);  // (B, T, H) -> (B, T, V)

  torch::nn::Embedding src_emb_{nullptr}, tgt_emb_{nullptr};  // (V_src, E), (V_tgt, E)
  RnnStack encoder_{nullptr};
  RnnStack decoder_{nullptr};                    // fused decoder (no input feeding)
  std::vector<torch::nn::LSTMCell> lstm_cells_;  // input feeding: layer 0 takes E + H
  std::vector<torch::nn::GRUCell> gru_cells_;
  Attention attention_{nullptr};
  torch::nn::Linear combine_{nullptr};  // W_c (H, 2H)
  OutputLayer out_{nullptr};            // (V_tgt, H), weight shared with tgt_emb_ when tied
  torch::nn::Dropout drop_{nullptr};
};

}  // namespace tern
