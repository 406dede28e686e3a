// Model hyper-parameters as a plain struct; the YAML layer fills it, validate() states every rule.
#pragma once
#include <cstdint>
#include <string>

namespace tern {

struct ModelConfig {
  std::string type = "seq2seq";       // seq2seq (encoder-decoder with attention) | lm (decoder-only language model)
  std::string cell = "lstm";          // lstm | gru
  int64_t layers = 1;                 // Recurrent layers in the encoder and in the decoder (>= 1).
  int64_t embedding = 256;            // Embedding size E.
  int64_t hidden = 512;               // Hidden size H (a bidirectional encoder uses H/2 per direction).
  bool bidirectional = true;          // Bidirectional encoder (seq2seq only).
  std::string attention = "general";  // dot | general (Luong) | additive (Bahdanau)
  bool input_feeding = true;          // Feed the previous attentional state into the decoder (Luong et al.).
  double dropout = 0.1;               // Dropout on embeddings, between layers and before the output layer.
  bool tie_embeddings = false;        // Share the target embedding with the output projection (needs E == H).
  // Filled from the corpus, not from YAML.
  int64_t src_vocab = 0, tgt_vocab = 0;

  bool is_lm() const { return type == "lm"; }
  void validate() const;  // throws ConfigError with the key and value
};

}  // namespace tern
