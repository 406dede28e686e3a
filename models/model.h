// The interface the trainer and evaluators use: teacher-forced logits, plus incremental decoding for seq2seq.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <vector>

#include "models/config.h"
#include "models/cpu_linear.h"

namespace tern {

struct DecodeWeights;  // a model's parameters rearranged for stepping on the CPU (models/seq2seq.h)

// Decoder state for incremental decoding. Hypothesis rows (N) and source sentences (B) are distinct: beam search keeps
// K rows per source, grouped (rows b*K .. b*K+K-1 belong to source b), and the encoder's tensors stay once per source.
struct DecoderState {
  torch::Tensor h, c;               // (L, N, H) per row; c undefined for GRU
  torch::Tensor feed;               // (N, H) per row: previous attentional state (input feeding), zeros at t = 0
  torch::Tensor attn;               // (N, S) per row: attention weights of the last step (an ensemble: the mean)
  torch::Tensor memory;             // (B, S, H) per source: encoder outputs
  torch::Tensor keys;               // (B, S, H) per source: attention keys projected from memory
  torch::Tensor mask;               // (B, S) bool per source, true on real source tokens
  std::vector<DecoderState> parts;  // an ensemble's: one state per member (the tensors above but attn unused)
  std::shared_ptr<const DecodeWeights> weights;  // set by encode() when steps may use it (inference on the CPU)
  // restrict_output without decode weights (a GPU): the output layer's rows of the shortlist, (V', H) and (V')
  torch::Tensor out_weight, out_bias;  // (also a language model's, stepping beside a translation model: --lm)
  // Rows `rows` (N') of the per-row tensors and, when defined, sources `sources` (B') of the per-source ones. The rows
  // must stay grouped by source in the order of `sources` (beam search expands, reorders within a beam, and drops
  // finished sentences with it).
  DecoderState select(const torch::Tensor& rows, const torch::Tensor& sources = {}) const;
};

struct SequenceModelImpl : torch::nn::Module {
  explicit SequenceModelImpl(ModelConfig cfg) : cfg_(std::move(cfg)) {}
  // Teacher forcing. src (B, S), src_len (B), tgt_in (B, T) -> logits (B, T, V_tgt).
  // A language model ignores src and src_len (pass undefined tensors). src_len is best left on the CPU: packing the
  // encoder input needs the lengths on the host, so lengths on a GPU cost a synchronisation.
  virtual torch::Tensor forward(const torch::Tensor& src, const torch::Tensor& src_len,
                                const torch::Tensor& tgt_in) = 0;
  // The same, and the attention weights of each target position over the source, (B, T, S) (guided alignment);
  // ConfigError for a model without attention.
  virtual std::pair<torch::Tensor, torch::Tensor> forward_attention(const torch::Tensor& src,
                                                                    const torch::Tensor& src_len,
                                                                    const torch::Tensor& tgt_in);
  // Stream mode (recurrent language models): tgt_in (B, W) -> logits (B, W, V), starting from state.h / state.c
  // (undefined: zeros) and leaving there the final state, detached (truncated backpropagation through time).
  virtual torch::Tensor forward_stream(const torch::Tensor& tgt_in, DecoderState& state);
  // Incremental decoding (seq2seq): encode once, then one step per target token.
  virtual DecoderState encode(const torch::Tensor& src, const torch::Tensor& src_len);
  // prev (B) previous tokens -> log-probabilities (B, V_tgt); updates `state`.
  virtual torch::Tensor step(const torch::Tensor& prev, DecoderState& state);
  // How steps on the CPU take their products (models/cpu_linear.h): the fp32 library (translate --cpu-gemm), and the
  // output layer in int8 (translate --int8: faster, logits within about 1e-2). Set before decoding starts; int8 is for
  // seq2seq models only (ConfigError otherwise, or when this CPU has no int8 kernels).
  virtual void set_cpu_kernels(const CpuKernels& kernels);
  // A lexical shortlist (translate --shortlist): the steps of `state` score only the target ids `ids` (V', sorted,
  // on the model's device), returning log-probabilities (B, V') normalised over them (a language model's too: --lm).
  virtual void restrict_output(DecoderState& state, const torch::Tensor& ids) = 0;
  // The token embedding table (V, E) of the source side (`source`) or of the target side; a language model's one table
  // is its target side, and with model.share_embeddings both sides are the same tensor. Undefined where there is none
  // (a language model's source side, an ensemble).
  virtual torch::Tensor embedding_table(bool source) { return {}; }
  const ModelConfig& config() const { return cfg_; }

 protected:
  ModelConfig cfg_;
  CpuKernels kernels_;
};
using SequenceModel = std::shared_ptr<SequenceModelImpl>;

// An embedding of `vocab` rows of `dim` with padding row 0 (zeros), initialized as model.embedding_init says (normal:
// N(0, std^2)).
torch::nn::Embedding make_embedding(int64_t vocab, int64_t dim, Choice<EmbeddingInit> init, double std);

// Word dropout (model.dropout_src / dropout_tgt): in training, emb (..., T, E) with each token's whole embedding zeroed
// with probability p and the others scaled by 1 / (1 - p); emb itself otherwise (evaluation, or p = 0).
torch::Tensor drop_words(const torch::Tensor& emb, double p, bool training);

// Builds the model described by `cfg` (validated first).
SequenceModel build_model(const ModelConfig& cfg);

// Several seq2seq models with one target vocabulary decoding together: each step's log-probabilities are the mean of
// the members' (translate --checkpoint A B ...), or with `weights` (one > 0 a member, as Marian's --weights) their
// weighted mean, the weights scaled to sum to 1. It decodes only: forward (teacher forcing) is refused.
struct EnsembleImpl : SequenceModelImpl {
  explicit EnsembleImpl(std::vector<SequenceModel> members, std::vector<double> weights = {});
  torch::Tensor forward(const torch::Tensor& src, const torch::Tensor& src_len, const torch::Tensor& tgt_in) override;
  DecoderState encode(const torch::Tensor& src, const torch::Tensor& src_len) override;
  torch::Tensor step(const torch::Tensor& prev, DecoderState& state) override;  // (B) -> (B, V) mean log-probs
  void set_cpu_kernels(const CpuKernels& kernels) override;
  void restrict_output(DecoderState& state, const torch::Tensor& ids) override;  // each member's
  std::vector<SequenceModel> members;
  std::vector<double> weights;  // empty: the plain mean; else summing to 1
};

// An ensemble's weights as EnsembleImpl uses them: one finite weight > 0 a member, scaled to sum to 1 (empty stays
// empty: the plain mean); ConfigError naming --weights otherwise.
std::vector<double> ensemble_weights(std::vector<double> weights, size_t members);

}  // namespace tern
