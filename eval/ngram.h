// Classical n-gram language models (orders 1-5) as baselines for the LSTM language model: Laplace, add-k,
// interpolated (Jelinek-Mercer, weights tuned by EM on held-out text), Katz backoff with Good-Turing discounts (as
// SRILM's ngram-count) and interpolated modified Kneser-Ney estimated the way KenLM's lmplz does it. Backoff models can
// drop rare n-grams (count cutoffs) and prune by relative entropy (Stolcke 1998); backoff weights are then recomputed
// so that every context still sums to one. Scoring follows KenLM's query: one </s> per sentence is predicted, words
// outside the training vocabulary are <unk>, perplexity is reported with and without them.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tern {

using Sentences = std::vector<std::vector<std::string>>;  // whitespace-split words, one vector per sentence

// The sentences of a whitespace-tokenized UTF-8 text file, or, for a path ending in .h5, of one split and side of a
// tern corpus as SentencePiece pieces (side "" picks "text" or "tgt"). Throws DataError naming the file and line.
// For a corpus, `piece_vocab` (when given) receives the side read and its vocabulary hash; for text it is cleared.
Sentences load_ngram_text(const std::string& path, const std::string& split, const std::string& side = "",
                          std::pair<std::string, std::string>* piece_vocab = nullptr);

// Character units: each sentence's words joined by U+2581 "▁" (SentencePiece's visible space, so that ARPA's
// whitespace-separated fields still parse), then split into UTF-8 characters. `pieces`: the sentences are a tern
// corpus's SentencePiece pieces, which carry their own "▁" and are concatenated as they are.
Sentences to_characters(const Sentences& sentences, bool pieces = false);

struct NgramOptions {
  int order = 3;                         // 1..5
  std::string smoothing = "kneser-ney";  // laplace | add-k | interpolated | katz | kneser-ney
  double add_k = 0.1;                    // add-k constant (> 0); laplace is add-k with k = 1
  double heldout_fraction = 0.1;         // interpolated without held-out text: every 1/f-th sentence tunes the weights
  int em_iterations = 200;               // interpolated: EM passes over the held-out text (stops early on convergence)
  bool discount_fallback = false;        // kneser-ney: discounts 0.5, 1, 1.5 for an order whose counts of counts
                                         // cannot give them (KenLM's --discount_fallback; small or character text)
  int katz_max_count = 7;                // katz: counts 1..k get Good-Turing discounts (SRILM's gtNmax), at every order
  std::vector<int64_t> cutoffs;          // minimum raw count of an n-gram per order 1, 2, ...; later orders repeat the
                                         // last; the unigram minimum must be 1 ({} : keep everything)
  double prune = 0;                      // Stolcke pruning: drop an n-gram when removing it raises the model's
                                         // perplexity by less than this fraction (0 : no pruning)
  int64_t cutoff(int n) const;           // minimum count for order n
  void validate() const;                 // throws ConfigError stating the rule
};

// "1,1,2" -> {1, 1, 2}; throws ConfigError naming the text and the item that is not a count.
std::vector<int64_t> parse_cutoffs(const std::string& text);

struct PerplexityResult {
  int64_t sentences = 0;
  int64_t tokens = 0;                // words + one </s> per sentence
  int64_t oovs = 0;                  // words not in the training vocabulary (scored as <unk>)
  double log10_prob = 0;             // total, OOVs included
  double log10_prob_oov = 0;         // the OOVs' share of it
  double ppl() const;                // 10^(-log10_prob / tokens), KenLM's "including OOVs"
  double ppl_excluding_oov() const;  // OOV tokens and their probabilities left out
  double bits_per_token() const;     // cross-entropy H in bits; ppl() == 2^H
};

class NgramModel {
 public:
  static constexpr int kMaxOrder = 5;
  // Estimates the model. `heldout` (may be empty) tunes the interpolation weights of `interpolated`.
  static NgramModel train(const Sentences& train, const NgramOptions& opt, const Sentences& heldout = {});

  // log10 p(sentence words..., </s> | <s>) per sentence, and the corpus totals.
  PerplexityResult evaluate(const Sentences& test, std::vector<double>* per_sentence_log10 = nullptr) const;
  // ARPA text (KenLM's conventions: <s> has log10 probability 0, n-grams of the highest order carry no backoff).
  // Throws ConfigError for add-k/laplace above order 1, which backoff form cannot represent.
  std::string arpa() const;

  const NgramOptions& options() const { return opt_; }
  int64_t vocab_size() const { return static_cast<int64_t>(words_.size()); }  // <unk>, <s>, </s> included
  std::vector<int64_t> ngram_counts() const;  // distinct n-grams per order (ARPA header)
  std::vector<std::array<double, 4>> discounts() const { return discounts_; }  // kneser-ney: D0..D3 per order
  std::vector<double> lambdas() const { return lambdas_; }  // interpolated: weight of order n's ML estimate
  std::vector<std::vector<double>> katz_discounts() const { return katz_; }  // katz: [n-1][r] for r = 0..k
  int64_t pruned() const { return pruned_; }                                 // n-grams removed by cutoffs and pruning

  // log10 p(word | history) in ids (history ends just before the word; only its last order-1 ids matter).
  double log10_prob(const std::vector<int32_t>& history, int32_t word) const;
  int32_t word_id(const std::string& w) const;  // kUnk for a word outside the vocabulary

  // Ids and words: 0 <unk>, 1 <s>, 2 </s>, then training words by first appearance.
  static constexpr int32_t kUnk = 0, kBos = 1, kEos = 2;

  struct Key {
    std::array<int32_t, kMaxOrder> w;  // (n) ids, unused slots -1
    bool operator==(const Key& o) const { return w == o.w; }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };
  struct Entry {
    int64_t count = 0;      // raw count (Kneser-Ney: adjusted count below the highest order)
    int64_t raw = 0;        // raw count (cutoffs)
    double log10_prob = 0;  // backoff-form (ARPA) probability
    double log10_bow = 0;   // backoff weight of this n-gram as a context
  };

 private:
  void estimate_kneser_ney();
  void estimate_interpolated(const std::vector<double>& lambdas);
  void estimate_katz();
  void cut_and_prune();
  std::unordered_map<Key, std::pair<double, double>, KeyHash> context_sums(int n,
                                                                           std::vector<double>* lower = nullptr) const;
  void recompute_backoffs(int n);  // backoff weights of every context of order-n n-grams, from their kept extensions
  double lower_prob(const Key& g, int n) const;  // p(w | h') of an n-gram h w, h' = h without its first word
  std::vector<double> tune_lambdas(const Sentences& heldout) const;
  std::vector<int32_t> ids(const std::vector<std::string>& sentence, int64_t* oovs) const;

  NgramOptions opt_;
  std::vector<std::string> words_;
  std::unordered_map<std::string, int32_t> index_;
  std::vector<std::unordered_map<Key, Entry, KeyHash>> grams_;            // [n-1]: n-grams of order n
  std::vector<std::unordered_map<Key, int64_t, KeyHash>> context_total_;  // [n-1]: sum of raw counts of h·w, |h| = n-1
  std::vector<std::array<double, 4>> discounts_;
  std::vector<double> lambdas_;
  std::vector<std::vector<double>> katz_;
  int64_t pruned_ = 0;
  bool arpa_form_ = false;  // probabilities live in grams_ (kneser-ney, interpolated, order-1 add-k)
};

// `tern ngram`: estimate on `train`, score `test`, optionally write the ARPA file and per-sentence scores; returns the
// text (KenLM query's summary lines) or JSON report.
struct NgramRunOptions {
  NgramOptions ngram;
  std::string train, test, heldout;  // text files or .h5 corpora (their *_split and side)
  std::string train_split = "train", test_split = "test", heldout_split = "valid", side;
  std::string arpa, sentence_scores;  // outputs ("" : not written)
  bool overwrite = false;             // replace existing outputs (else refused before any work)
  std::string format = "text";        // text | json
  std::string unit = "word";          // word | char (to_characters: perplexity per character)
  void validate() const;              // throws ConfigError
};
std::string run_ngram(const NgramRunOptions& opt);

}  // namespace tern
