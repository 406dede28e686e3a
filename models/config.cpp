#include "models/config.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "core/errors.h"

namespace tern {

void ModelConfig::validate() const {
  auto bad = [](const std::string& key, const std::string& rule, const std::string& got) {
    throw ConfigError(fmt::format("model.{} {} (got {})", key, rule, got));
  };
  type.check("model.type");
  cell.check("model.cell");
  attention.check("model.attention");
  embedding_init.check("model.embedding_init");
  if (!(embedding_std > 0.0 && embedding_std <= 10.0))
    bad("embedding_std", "must be in (0, 10]", fmt::format("{}", embedding_std));
  if (embedding_init == EmbeddingInit::kGlorot && embedding_std != 1.0)
    bad("embedding_std",
        "is the standard deviation of model.embedding_init normal: glorot sets its own bound (drop one of the two)",
        fmt::format("{}", embedding_std));
  if (layers < 1 || layers > 16) bad("layers", "must be in [1, 16]", std::to_string(layers));
  if (residual && type == ModelType::kFfnnLm)
    bad("residual", "is for recurrent layers (model.type seq2seq or lm; ffnn_lm has one tanh layer)", "true");
  if (layer_norm && type == ModelType::kFfnnLm)
    bad("layer_norm", "normalizes recurrent cells (model.type seq2seq or lm; ffnn_lm has none)", "true");
  for (const auto& [key, n] : {std::pair<const char*, int64_t>{"enc_layers", enc_layers}, {"dec_layers", dec_layers}}) {
    if (n < 0 || n > 16) bad(key, "must be 0 (model.layers) or in [1, 16]", std::to_string(n));
    if (n > 0 && type != ModelType::kSeq2seq)
      bad(key, "sets one side of a seq2seq model: a language model has one stack (model.layers)", std::to_string(n));
  }
  if (enc_cell_depth < 1 || enc_cell_depth > 8)
    bad("enc_cell_depth", "must be in [1, 8] (1: one cell a step)", std::to_string(enc_cell_depth));
  if (enc_cell_depth > 1 && type != ModelType::kSeq2seq)
    bad("enc_cell_depth", "deepens a seq2seq model's encoder cells: a language model has no encoder",
        std::to_string(enc_cell_depth));
  if (residual && std::max(encoder_layers(), decoder_layers()) < 2)
    bad("residual",
        "adds each layer's input to its output from the second layer on: it needs " +
            (enc_layers == 0 && dec_layers == 0
                 ? fmt::format("model.layers >= 2 (model.layers is {})", layers)
                 : fmt::format("a stack of >= 2 layers (the encoder has {}, the decoder {})", encoder_layers(),
                               decoder_layers())),
        "true");
  if (embedding < 1 || embedding > 65536) bad("embedding", "must be in [1, 65536]", std::to_string(embedding));
  if (hidden < 2 || hidden > 65536) bad("hidden", "must be in [2, 65536]", std::to_string(hidden));
  if (type == ModelType::kSeq2seq && bidirectional && hidden % 2 != 0)
    bad("hidden", "must be even with a bidirectional encoder (H/2 per direction)", std::to_string(hidden));
  if (context < 1 || context > 32) bad("context", "must be in [1, 32]", std::to_string(context));
  if (attention_window < 1 || attention_window > 10000)
    bad("attention_window", "must be in [1, 10000]", std::to_string(attention_window));
  if (attention_heads < 1 || attention_heads > 256)
    bad("attention_heads", "must be in [1, 256]", std::to_string(attention_heads));
  if (type == ModelType::kSeq2seq && attention == AttentionKind::kMultihead && hidden % attention_heads != 0)
    bad("attention_heads", fmt::format("must divide model.hidden ({}) with multihead attention", hidden),
        std::to_string(attention_heads));
  if (!(dropout >= 0.0 && dropout < 1.0)) bad("dropout", "must be in [0, 1)", fmt::format("{}", dropout));
  if (!(dropout_src >= 0.0 && dropout_src < 1.0))
    bad("dropout_src", "must be in [0, 1)", fmt::format("{}", dropout_src));
  if (!(dropout_tgt >= 0.0 && dropout_tgt < 1.0))
    bad("dropout_tgt", "must be in [0, 1)", fmt::format("{}", dropout_tgt));
  if (!(dropout_rnn >= 0.0 && dropout_rnn < 1.0))
    bad("dropout_rnn", "must be in [0, 1)", fmt::format("{}", dropout_rnn));
  if (dropout_rnn > 0 && type == ModelType::kFfnnLm)
    bad("dropout_rnn", "drops recurrent units (model.type seq2seq or lm; ffnn_lm has none)",
        fmt::format("{}", dropout_rnn));
  if (dropout_src > 0 && type != ModelType::kSeq2seq)
    bad("dropout_src", "drops source words: a language model has none (model.dropout_tgt drops the words it reads)",
        fmt::format("{}", dropout_src));
  if (right_left && type != ModelType::kSeq2seq)
    bad("right_left", "is for seq2seq models (a language model reads its text in one direction)", "true");
  if (share_embeddings && type != ModelType::kSeq2seq)
    bad("share_embeddings", "is for seq2seq models (a language model has one embedding)", "true");
  if (share_embeddings && src_vocab != tgt_vocab)
    bad("share_embeddings",
        fmt::format("needs one vocabulary for both sides (prepare --joint-vocab); this one has {} source and {} "
                    "target pieces",
                    src_vocab, tgt_vocab),
        "true");
  if (tie_embeddings && embedding != hidden)
    bad("tie_embeddings",
        fmt::format("needs model.embedding == model.hidden (embedding {}, hidden {})", embedding, hidden), "true");
}

}  // namespace tern
