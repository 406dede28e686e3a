// Model hyper-parameters as a plain struct; the YAML layer fills it, validate() states every rule.
#pragma once
#include <cstdint>
#include <string>

#include "core/choice.h"

namespace tern {

enum class ModelType { kSeq2seq, kLm, kFfnnLm };
enum class Cell { kLstm, kGru };
enum class AttentionKind { kDot, kGeneral, kAdditive, kLocal, kMultihead };
enum class EmbeddingInit { kNormal, kGlorot };
// Autocast compute dtype (docs/precision.md) and the device a run asks for; models/precision.h and models/device.h
// act on them.
enum class Precision { kFp32, kFp16, kBf16 };
enum class DeviceRequest { kAuto, kCpu, kCuda };
// Guided alignment's cost (train.guided_alignment_cost, Marian --guided-alignment-cost; models/loss.h computes it): ce
// (cross-entropy of the attention against the reference rows) | mse (half the squared distance).
enum class AlignmentCost { kCe, kMse };

template <>
struct ChoiceNames<ModelType> {
  static constexpr std::array<const char*, 3> kNames{"seq2seq", "lm", "ffnn_lm"};
};
template <>
struct ChoiceNames<Cell> {
  static constexpr std::array<const char*, 2> kNames{"lstm", "gru"};
};
template <>
struct ChoiceNames<AttentionKind> {
  static constexpr std::array<const char*, 5> kNames{"dot", "general", "additive", "local", "multihead"};
};
template <>
struct ChoiceNames<EmbeddingInit> {
  static constexpr std::array<const char*, 2> kNames{"normal", "glorot"};
};
template <>
struct ChoiceNames<Precision> {
  static constexpr std::array<const char*, 3> kNames{"fp32", "fp16", "bf16"};
};
template <>
struct ChoiceNames<DeviceRequest> {
  static constexpr std::array<const char*, 3> kNames{"auto", "cpu", "cuda"};
};
template <>
struct ChoiceNames<AlignmentCost> {
  static constexpr std::array<const char*, 2> kNames{"ce", "mse"};
};

struct ModelConfig {
  // seq2seq (encoder-decoder with attention) | lm (recurrent language model) | ffnn_lm (feed-forward language model:
  // the embeddings of the `context` previous tokens concatenated, a tanh layer of `hidden` units, a softmax; Bengio
  // et al. 2003)
  Choice<ModelType> type = ModelType::kSeq2seq;
  Choice<Cell> cell = Cell::kLstm;  // lstm | gru
  int64_t layers = 1;               // Recurrent layers in the encoder and in the decoder (>= 1).
  // seq2seq: the encoder's and the decoder's depths when they differ (OpenNMT-py enc_layers / dec_layers, fairseq
  // --encoder-layers / --decoder-layers, Marian --enc-depth / --dec-depth); 0: model.layers. With unequal depths the
  // decoder's layers start from the encoder's final states top-aligned: its top layer from the encoder's top layer,
  // the one below from the one below, and layers below the encoder's bottom from zeros.
  int64_t enc_layers = 0;
  int64_t dec_layers = 0;
  // Deep transition in the encoder (Pascanu et al. 2014; Miceli Barone et al. 2017; Marian --enc-cell-depth): cells a
  // step in each encoder layer and direction, the first reading the layer's input, the others only the state (a
  // TransitionCell: gates = bias + W_hh h). 1: plain cells; in [1, 8], seq2seq only. The encoder is then stepped one
  // token at a time (no fused kernel); the decoder is unchanged.
  int64_t enc_cell_depth = 1;
  // Residual connections between the stacked recurrent layers (GNMT; Marian --skip, fairseq's LSTM residuals): from
  // the second layer on, each layer's output is its input plus what the layer computes from it (dropout applied to
  // the layer's input only). Needs layers >= 2 and a recurrent model (seq2seq or lm).
  bool residual = false;
  // Layer normalization inside the recurrent cells (Ba et al. 2016; Marian --layer-normalization): each cell's input
  // and recurrent gate products normalized apart over their gates, with learned gains (models/seq2seq.h norm_gates).
  // The cells then step one token at a time (no fused cuDNN kernel). A recurrent model's (seq2seq or lm).
  bool layer_norm = false;
  int64_t embedding = 256;    // Embedding size E.
  int64_t hidden = 512;       // Hidden size H (a bidirectional encoder uses H/2 per direction).
  bool bidirectional = true;  // Bidirectional encoder (seq2seq only).
  // dot | general (Luong) | additive (Bahdanau) | local (Luong local-p: general scores in a window of
  // attention_window positions either side of a predicted position, times a Gaussian) | multihead (attention_heads
  // scaled dot-product heads over projected queries, keys and values, then an output projection)
  Choice<AttentionKind> attention = AttentionKind::kGeneral;
  int64_t attention_window = 10;  // local: D, the half-width of the window (sigma = D / 2)
  int64_t attention_heads = 4;    // multihead: heads; model.hidden must be a multiple
  bool input_feeding = true;      // Feed the previous attentional state into the decoder (Luong et al.).
  double dropout = 0.1;           // Dropout on embeddings, between layers and before the output layer.
  // Word dropout (Marian --dropout-src / --dropout-trg; Sennrich et al. 2016): in training, each token's whole
  // embedding is zeroed with this probability (the kept ones scaled by 1 / (1 - p)). dropout_src: the source tokens
  // (seq2seq); dropout_tgt: the tokens the decoder or language model reads. In [0, 1).
  double dropout_src = 0.0;
  double dropout_tgt = 0.0;
  // Variational (recurrent) dropout (Gal & Ghahramani 2016; Marian --dropout-rnn, which also masks the cell's input):
  // in training, each recurrent layer and direction drops units of h from its recurrent product with one mask a
  // sequence, the same at every step (model.dropout drops the layers' inputs). The layers are then stepped one token
  // at a time in training (no fused kernel); evaluation and decoding are unchanged. A recurrent model's, in [0, 1).
  double dropout_rnn = 0.0;
  bool tie_embeddings = false;  // Share the target embedding with the output projection (needs E == H).
  // The embeddings' initial values: normal (N(0, embedding_std^2); LibTorch's N(0, 1) by default) | glorot (uniform
  // in +-sqrt(6 / (V + E)), Marian's). Tied to the output layer, N(0, 1) rows make large initial logits (a dot product
  // with a vector of norm ~sqrt(E)); glorot starts them small. The padding row stays zero.
  Choice<EmbeddingInit> embedding_init = EmbeddingInit::kNormal;
  // normal: the standard deviation, in (0, 10]. configs/bible.yaml sets 0.25: with its tied embeddings, +4.2 test BLEU
  // at 800 steps and +2.7 at 3,000 over 1 (docs/benchmarks.md); the default stays 1 so that configs written before it
  // train as they did.
  double embedding_std = 1.0;
  // seq2seq: one embedding for source and target tokens (needs a corpus with one vocabulary for both sides: prepare
  // --joint-vocab). With tie_embeddings the output layer shares it too: three ways, as fairseq
  // --share-all-embeddings, Marian --tied-embeddings-all, OpenNMT-py -share_embeddings with -share_decoder_embeddings.
  bool share_embeddings = false;
  int64_t context = 4;  // ffnn_lm: previous tokens it sees (n - 1 of an n-gram model), in [1, 32].
  // A right-to-left translation model (Marian --right-left; Sennrich et al. 2016's reranking of n-best lists): the
  // decoder writes each translation from its last token to its first. Inside the model only: forward takes and returns
  // targets in reading order (the batches, the loss, perplexity and scores are as for any model), the decoder steps
  // from the end, and decode() turns its hypotheses back into reading order. seq2seq only.
  bool right_left = false;
  // Not configuration: the vocabulary sizes a model is built with, set from the corpus (training) or the checkpoint
  // (inference) on a copy passed to build_model; never read from or written to YAML.
  int64_t src_vocab = 0, tgt_vocab = 0;

  bool is_lm() const { return type != ModelType::kSeq2seq; }  // a language model: lm or ffnn_lm
  int64_t encoder_layers() const { return enc_layers > 0 ? enc_layers : layers; }
  int64_t decoder_layers() const { return dec_layers > 0 ? dec_layers : layers; }  // a language model's: layers
  // The same model however its depths are spelled (`layers: 2`, or `enc_layers: 2, dec_layers: 2`): both sides' depths
  // written out, and `layers` theirs when they are equal. What checkpoints of one model are compared by.
  ModelConfig with_depths_resolved() const {
    ModelConfig m = *this;
    m.enc_layers = encoder_layers(), m.dec_layers = decoder_layers();
    if (m.enc_layers == m.dec_layers) m.layers = m.enc_layers;
    return m;
  }
  void validate() const;  // throws ConfigError with the key and value
};

}  // namespace tern
