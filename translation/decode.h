// Batched greedy and beam search for seq2seq models (GNMT length and coverage penalties, max length ratio, n-best).
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "models/model.h"
#include "translation/shortlist.h"

namespace tern {

// A source token's coverage below this counts as this (its log would be -inf for a token never attended: softmax
// attention underflows on long sources, local attention gives 0 outside its window).
constexpr double kCoverageFloor = 1e-4;

struct DecodeOptions {
  int64_t beam = 5;             // 1 = greedy
  double length_penalty = 0.6;  // GNMT alpha: score = logprob / ((5 + len) / 6)^alpha (0 disables)
  // GNMT coverage penalty beta (Wu et al. 2016; OpenNMT-py -coverage_penalty wu -beta): an ended hypothesis's score
  // gains beta * sum over its source tokens i of log(min(c_i, 1)), c_i the attention token i received over the
  // hypothesis's steps (</s>'s included), floored at kCoverageFloor: hypotheses that leave source words unattended
  // rank lower. It re-ranks ended hypotheses; the search's own scores stay log-probabilities. 0 disables.
  double coverage_penalty = 0.0;
  double max_len_ratio = 2.0;  // Hypotheses stop at max_len_ratio * source length + max_len_extra tokens.
  int64_t max_len_extra = 10;
  int64_t nbest = 1;    // Hypotheses returned per sentence (<= beam).
  bool no_unk = false;  // Never emit <unk> (its log-probability is set to -inf at every step).
  int64_t min_len = 0;  // </s> is not allowed before this many tokens (fairseq --min-len, OpenNMT-py -min_length).
  // A hypothesis never repeats an n-gram of this many tokens (0: off; fairseq --no-repeat-ngram-size, OpenNMT-py
  // -block_ngram_repeat): a token that would complete an n-gram already in it gets -inf.
  int64_t no_repeat_ngram_size = 0;
  // Sampling instead of search (beam 1; back-translation as Edunov et al. 2018, fairseq --sampling, Marian
  // --output-sampling): each token drawn from softmax(lp / temperature) within the sampling_topk most likely (0: all)
  // and the fewest most likely holding sampling_topp of the probability; a sentence's draws come from a generator
  // seeded by `seed` and its source tokens: the same seed and source give the same translation, in any batch.
  bool sampling = false;
  double temperature = 1.0;
  int64_t sampling_topk = 0;
  double sampling_topp = 1.0;
  uint64_t seed = 1;
  // A sentence ends when its best continuation is </s> and nbest hypotheses have ended (OpenNMT-py, CTranslate2),
  // instead of when `beam` hypotheses have ended (fairseq): fewer steps, a slightly narrower search.
  bool early_stop = false;
  // The CPU search takes the output layer's product in int8 (per-row int8 weights, activations quantized per step:
  // Marian's and CTranslate2's CPU int8); applied when the model is loaded (eval/evaluate.h prepare_decoding).
  bool int8 = false;
  // The library of the CPU search's fp32 products (models/cpu_linear.h): auto (oneDNN on x86 CPUs that are not
  // Intel's, else BLAS), blas or onednn; prepare_decoding resolves auto on a CPU and applies it.
  Choice<CpuGemm> cpu_gemm = CpuGemm::kAuto;
  // Hypothesis::alignment is filled: per token, the source position with the largest attention weight when the token
  // was chosen (hard alignment: fairseq --print-alignment, Marian --alignment hard, OpenNMT-py -report_align).
  bool alignment = false;
  // Hypothesis::token_scores is filled: each token's log-probability, </s> included (Marian --word-scores, fairseq's
  // positional scores): where the model was unsure. With an lm_model, the fused scores.
  bool token_scores = false;
  // The prefixes given to decode() are whole translations: </s> is forced after each (forced decoding: scoring given
  // translations, as fairseq --score-reference and marian-scorer; with alignment and token_scores). Needs beam 1.
  bool prefix_ends = false;
  // A lexical shortlist file (`tern shortlist`; Marian's --shortlist): each batch scores only the target tokens it
  // lists for the batch's source tokens (eval/evaluate.h prepare_decoding loads it into `shortlist_table`).
  std::string shortlist;
  std::shared_ptr<const Shortlist> shortlist_table;
  // Shallow fusion with a target-language model (Gulcehre et al. 2015; fairseq --lm-path/--lm-weight, Marian's
  // language model in an ensemble): a step's score is the translation model's log-probability plus lm_weight times the
  // language model's. `lm` is a checkpoint of model.type lm or ffnn_lm with the translation model's target vocabulary;
  // eval/evaluate.h prepare_decoding loads it into `lm_model`. Hypothesis::logprob is then the fused score.
  std::string lm;
  double lm_weight = 0;  // no default on the command line: the best weight depends on both models
  SequenceModel lm_model;
  void validate() const;
};

struct Hypothesis {
  std::vector<int32_t> tokens;      // without bos/eos
  double logprob = 0;               // sum of token log-probabilities, eos included (with an lm_model: fused scores)
  double score = 0;                 // length-normalised logprob, plus the coverage penalty when there is one
  std::vector<int32_t> alignment;   // DecodeOptions::alignment: per token, its source position (see there)
  std::vector<float> token_scores;  // DecodeOptions::token_scores: per token and </s>, its log-probability
  // Reranked (translate/evaluate --rescore): the search's score, then each rescorer's length-normalized
  // log-probability (score is their weighted sum); empty otherwise.
  std::vector<double> features;
};

// hyps sorted by score, best first (ties in their order), and the first n kept: how decode() and reranking end.
void keep_best(std::vector<Hypothesis>& hyps, int64_t n);

// GNMT's length normalization: logprob / ((5 + len) / 6)^alpha, len the tokens scored (</s> included); alpha 0:
// logprob.
double length_normalised(double logprob, size_t len, double alpha);

// Each sentence's n best continuations: lp (A*R, V) log-probabilities of A sentences' R rows each, scores (A*R) the
// rows' scores so far -> values (A, n) of lp + score and indices r*V + token, best first, on the host (-inf past
// the finite ones). On a GPU one topk; on the CPU one pass over lp.
std::pair<torch::Tensor, torch::Tensor> best_continuations(const torch::Tensor& lp, const std::vector<double>& scores,
                                                           int64_t R, int64_t n);

// lp (N, V) log-probabilities on the CPU -> (N) tokens drawn from softmax(lp / temperature), among the top_k most
// likely (0: all) and the fewest most likely whose probability reaches top_p (1: all); `gen` makes it reproducible.
torch::Tensor sample_tokens(const torch::Tensor& lp, double temperature, int64_t top_k, double top_p,
                            at::Generator& gen);

// src (B, S), src_len (B) on the model's device -> per sentence, `nbest` hypotheses, best first. `prefixes` (empty,
// or one a sentence; fairseq --prefix-size, OpenNMT-py -tgt_prefix, Marian --force-decode): every hypothesis of
// sentence b starts with the target tokens prefixes[b] (no </s> inside), each taking its log-probability, then the
// search goes on (opt.prefix_ends: </s> follows); the length limit is at least the prefix and max_len_extra tokens.
// A right-to-left model (model.right_left) searches from the end and its hypotheses come back in reading order; it
// takes whole translations (opt.prefix_ends) but no prefixes, and no lm_model (ConfigError).
std::vector<std::vector<Hypothesis>> decode(SequenceModelImpl& model, const torch::Tensor& src,
                                            const torch::Tensor& src_len, const DecodeOptions& opt,
                                            const std::vector<std::vector<int32_t>>& prefixes = {});

}  // namespace tern
