// LSTM/GRU language model (decoder only): embedding, recurrent stack, output projection.
#pragma once
#include "models/model.h"
#include "models/seq2seq.h"

namespace tern {

struct LanguageModelImpl : SequenceModelImpl {
  explicit LanguageModelImpl(const ModelConfig& cfg);
  // tgt_in (B, T) -> logits (B, T, V); src and src_len are ignored.
  torch::Tensor forward(const torch::Tensor& src, const torch::Tensor& src_len, const torch::Tensor& tgt_in) override;
  torch::Tensor forward_stream(const torch::Tensor& tgt_in, DecoderState& state) override;  // (B, W) -> (B, W, V)
  // One token a row: prev (N) -> log-probabilities (N, V) of the next, as forward gives them; `state` carries h and c
  // (a fresh state starts from zeros, as forward does).
  torch::Tensor step(const torch::Tensor& prev, DecoderState& state) override;
  void restrict_output(DecoderState& state, const torch::Tensor& ids) override;  // steps give (N, V') over ids
  torch::Tensor embedding_table(bool source) override { return source ? torch::Tensor() : emb_->weight; }

  torch::nn::Embedding emb_{nullptr};  // (V, E)
  RnnStack rnn_{nullptr};
  OutputLayer out_{nullptr};  // (V, H), weight shared with emb_ when tied
  torch::nn::Dropout drop_{nullptr};

 private:
  // Steps on the CPU (translate --lm, generate) take the DecodeWeights path of the seq2seq decoder: the state's
  // `weights`, from cache_ (fp32; restrict_output cuts their output layer).
  std::shared_ptr<const DecodeWeights> decode_weights();
  std::shared_ptr<DecodeWeightsCache> cache_ = std::make_shared<DecodeWeightsCache>();
};

// Feed-forward language model (model.type ffnn_lm): p(w_t | w_{t-C} .. w_{t-1}) from the C = model.context previous
// tokens' embeddings concatenated, a tanh layer and the output projection. Positions before the sentence are <s>.
struct FfnnLanguageModelImpl : SequenceModelImpl {
  explicit FfnnLanguageModelImpl(const ModelConfig& cfg);
  // tgt_in (B, T) -> logits (B, T, V); src and src_len are ignored.
  torch::Tensor forward(const torch::Tensor& src, const torch::Tensor& src_len, const torch::Tensor& tgt_in) override;
  // The window of the last C tokens lives in state.h as (1, N, C) ids.
  torch::Tensor step(const torch::Tensor& prev, DecoderState& state) override;
  void restrict_output(DecoderState& state, const torch::Tensor& ids) override;  // steps give (N, V') over ids
  torch::Tensor embedding_table(bool source) override { return source ? torch::Tensor() : emb_->weight; }

  torch::Tensor hidden_of(const torch::Tensor& window);  // (..., C) ids -> (..., H)
  torch::nn::Embedding emb_{nullptr};                    // (V, E)
  torch::nn::Linear hidden_{nullptr};                    // (C*E) -> H
  OutputLayer out_{nullptr};                             // (V, H), weight shared with emb_ when tied
  torch::nn::Dropout drop_{nullptr};
};

}  // namespace tern
