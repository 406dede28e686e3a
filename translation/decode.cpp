#include "translation/decode.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "core/errors.h"
#include "core/hash.h"
#include "data/tokenizer.h"

namespace tern {

void DecodeOptions::validate() const {
  if (beam < 1 || beam > 1024) throw ConfigError(fmt::format("--beam must be in [1, 1024] (got {})", beam));
  if (nbest < 1 || nbest > beam)
    throw ConfigError(fmt::format("--nbest must be in [1, beam={}] (got {})", beam, nbest));
  if (!(length_penalty >= 0 && length_penalty <= 100))
    throw ConfigError(fmt::format("--length-penalty must be in [0, 100] (got {})", length_penalty));
  if (!(coverage_penalty >= 0 && coverage_penalty <= 100))
    throw ConfigError(fmt::format("--coverage-penalty must be in [0, 100] (got {})", coverage_penalty));
  if (coverage_penalty > 0 && sampling)
    throw ConfigError(fmt::format(
        "--coverage-penalty re-ranks a beam's ended hypotheses: --sampling draws one (got --coverage-penalty {})",
        coverage_penalty));
  if (!(max_len_ratio > 0 && max_len_ratio <= 100))
    throw ConfigError(fmt::format("--max-len-ratio must be in (0, 100] (got {})", max_len_ratio));
  if (max_len_extra < 0 || max_len_extra > 100000)
    throw ConfigError(fmt::format("max_len_extra must be in [0, 100000] (got {})", max_len_extra));
  if (min_len < 0 || min_len > 100000)
    throw ConfigError(fmt::format("--min-len must be in [0, 100000] (got {})", min_len));
  if (sampling && beam != 1)
    throw ConfigError(fmt::format("--sampling draws one translation a sentence: it needs --beam 1 (got {})", beam));
  if (!(temperature > 0 && temperature <= 100))
    throw ConfigError(fmt::format("--temperature must be in (0, 100] (got {})", temperature));
  if (sampling_topk < 0 || sampling_topk > 1000000)
    throw ConfigError(fmt::format("--sampling-topk must be in [0, 1000000] (got {}; 0 is all tokens)", sampling_topk));
  if (!(sampling_topp > 0 && sampling_topp <= 1))
    throw ConfigError(fmt::format("--sampling-topp must be in (0, 1] (got {})", sampling_topp));
  if (no_repeat_ngram_size < 0 || no_repeat_ngram_size > 1000)
    throw ConfigError(
        fmt::format("--no-repeat-ngram-size must be in [0, 1000] (got {}; 0 is off)", no_repeat_ngram_size));
  if (prefix_ends && (beam != 1 || sampling))
    throw ConfigError(fmt::format("forced decoding (given translations) takes one path: it needs --beam 1 (got {}){}",
                                  beam, sampling ? " and no --sampling" : ""));
  if (!(lm_weight >= 0 && lm_weight <= 10))
    throw ConfigError(fmt::format("--lm-weight must be in [0, 10] (got {})", lm_weight));
}

namespace {
constexpr int64_t kBlock = 16;

// The largest of kBlock values, NaNs ignored (-inf when all are NaN). Most blocks of a row are below the n-th best
// continuation and are skipped after this one vectorised test.
float block_max(const float* x) {
#if defined(__SSE2__)
  __m128 m = _mm_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t i = 0; i < kBlock; i += 4) m = _mm_max_ps(_mm_loadu_ps(x + i), m);  // a NaN lane keeps m
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ps(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
#else
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < kBlock; ++i) m = x[i] > m ? x[i] : m;
  return m;
#endif
}

// Sets to -inf, in each row of lp (rows, V), the tokens that would complete an n-gram of `n` tokens already in that
// row's hypothesis seqs[row] (the n-1 last tokens seen before, followed by that token). With a shortlist, `vocab` (V)
// holds the sorted token id of each column.
void block_repeated_ngrams(torch::Tensor& lp, const std::vector<std::vector<int32_t>>& seqs, int64_t n,
                           const std::vector<int64_t>& vocab) {
  std::vector<int64_t> rows, toks;
  for (size_t r = 0; r < seqs.size(); ++r) {
    const auto& s = seqs[r];
    const auto len = static_cast<int64_t>(s.size());
    if (len < n) continue;  // no n-gram of n tokens in it yet
    for (int64_t i = 0; i + n <= len; ++i)
      if (std::equal(s.begin() + i, s.begin() + i + n - 1, s.end() - (n - 1)))
        rows.push_back(static_cast<int64_t>(r)), toks.push_back(s[static_cast<size_t>(i + n - 1)]);
  }
  if (rows.empty()) return;
  if (!vocab.empty())  // token ids -> columns (every token of a hypothesis came from the shortlist)
    for (int64_t& t : toks) t = std::lower_bound(vocab.begin(), vocab.end(), t) - vocab.begin();
  const auto dev = lp.device();
  lp.index_put_({torch::tensor(rows).to(dev), torch::tensor(toks).to(dev)}, -std::numeric_limits<float>::infinity());
}

}  // namespace

void keep_best(std::vector<Hypothesis>& hyps, int64_t n) {
  std::stable_sort(hyps.begin(), hyps.end(),
                   [](const Hypothesis& x, const Hypothesis& y) { return x.score > y.score; });
  if (static_cast<int64_t>(hyps.size()) > n) hyps.resize(static_cast<size_t>(n));
}

double length_normalised(double logprob, size_t len, double alpha) {
  return alpha > 0 ? logprob / std::pow((5.0 + static_cast<double>(len)) / 6.0, alpha) : logprob;
}

std::pair<torch::Tensor, torch::Tensor> best_continuations(const torch::Tensor& lp, const std::vector<double>& scores,
                                                           int64_t R, int64_t n) {
  const int64_t rows = lp.size(0), V = lp.size(1), A = rows / R;
  n = std::min(n, R * V);
  torch::Tensor score = torch::tensor(scores, torch::kFloat64).to(lp.device(), torch::kFloat32);  // (A*R)
  if (lp.is_cuda()) {  // one topk on the device; only (A, n) travel to the host
    auto [val, idx] = (lp + score.unsqueeze(1)).view({A, R * V}).topk(n, 1);
    return {val.to(torch::kCPU), idx.to(torch::kCPU)};
  }
  // On the CPU one pass over each row keeps a sorted list of the n best, most values failing a single comparison
  // with the n-th best: about 3x faster than adding the scores into a new (A*R, V) tensor and calling topk.
  torch::Tensor x = lp.contiguous();
  torch::Tensor val = torch::full({A, n}, -std::numeric_limits<float>::infinity());
  torch::Tensor idx = torch::zeros({A, n}, torch::kInt64);
  const float* in = x.data_ptr<float>();
  const float* add = score.data_ptr<float>();
  for (int64_t a = 0; a < A; ++a) {
    float* bv = val.data_ptr<float>() + a * n;
    int64_t* bi = idx.data_ptr<int64_t>() + a * n;
    float worst = bv[n - 1];
    for (int64_t r = 0; r < R; ++r) {
      const float* row = in + (a * R + r) * V;
      const float s = add[a * R + r];
      for (int64_t v0 = 0; v0 < V; v0 += kBlock) {
        const int64_t end = std::min(V, v0 + kBlock);
        if (end - v0 == kBlock && !(block_max(row + v0) + s > worst)) continue;  // no value of the block enters
        for (int64_t v = v0; v < end; ++v) {
          const float t = row[v] + s;
          if (!(t > worst)) continue;  // ties keep the earlier continuation; NaN never enters
          int64_t j = n - 1;
          for (; j > 0 && bv[j - 1] < t; --j) bv[j] = bv[j - 1], bi[j] = bi[j - 1];
          bv[j] = t, bi[j] = r * V + v;
          worst = bv[n - 1];
        }
      }
    }
  }
  return {val, idx};
}

torch::Tensor sample_tokens(const torch::Tensor& lp, double temperature, int64_t top_k, double top_p,
                            at::Generator& gen) {
  constexpr float kNone = -std::numeric_limits<float>::infinity();
  torch::Tensor logits = lp / temperature;  // (N, V)
  if (top_k > 0 && top_k < logits.size(1)) {
    const torch::Tensor kth = std::get<0>(logits.topk(top_k, 1)).select(1, top_k - 1).unsqueeze(1);
    logits = logits.masked_fill(logits < kth, kNone);
  }
  if (top_p < 1) {
    auto [sorted, order] = logits.sort(1, /*descending=*/true);
    const torch::Tensor before = sorted.softmax(1).cumsum(1) - sorted.softmax(1);  // mass of the tokens before
    sorted = sorted.masked_fill(before >= top_p, kNone);
    logits = torch::full_like(logits, kNone).scatter(1, order, sorted);
  }
  return torch::multinomial(logits.softmax(1), 1, /*replacement=*/false, gen).squeeze(1);
}

namespace {

// decode() in the model's own order (model.right_left: from the end).
std::vector<std::vector<Hypothesis>> search(SequenceModelImpl& model, const torch::Tensor& src,
                                            const torch::Tensor& src_len, const DecodeOptions& opt,
                                            const std::vector<std::vector<int32_t>>& prefixes) {
  if (!prefixes.empty() && static_cast<int64_t>(prefixes.size()) != src.size(0))
    throw std::invalid_argument(
        fmt::format("decode: {} prefixes for a batch of {} sentences", prefixes.size(), src.size(0)));
  for (const auto& p : prefixes)
    for (const int32_t tok : p)
      if (tok < 0 || tok == kPadId || tok == kBosId || tok == kEosId)
        throw std::invalid_argument(fmt::format("decode: a prefix holds the token id {}", tok));
  torch::NoGradGuard ng;
  const int64_t B = src.size(0), K = opt.beam;
  const auto dev = src.device();
  const auto on_dev = [&](const std::vector<int64_t>& v) { return torch::tensor(v, torch::kInt64).to(dev); };
  auto lens = src_len.to(torch::kCPU);
  std::vector<int64_t> max_len(static_cast<size_t>(B));
  int64_t forced_steps = 0;  // the longest prefix
  for (int64_t b = 0; b < B; ++b) {
    max_len[b] =
        static_cast<int64_t>(opt.max_len_ratio * static_cast<double>(lens[b].item<int64_t>())) + opt.max_len_extra;
    if (prefixes.empty()) continue;
    const auto n = static_cast<int64_t>(prefixes[static_cast<size_t>(b)].size());
    max_len[b] = std::max(max_len[b], n + opt.max_len_extra);
    forced_steps = std::max(forced_steps, n + (opt.prefix_ends ? 1 : 0));
  }
  const int64_t longest = std::max<int64_t>(1, *std::max_element(max_len.begin(), max_len.end()));

  // The sentences still searching (`active`, A of them) own R rows each: row a*R + k is hypothesis k of sentence
  // active[a]; R is 1 at the first step (every hypothesis is <s>) and K after it. The encoder's tensors stay once per
  // sentence; a finished sentence's rows and source leave the batch.
  std::vector<int64_t> active(static_cast<size_t>(B));
  std::iota(active.begin(), active.end(), 0);
  DecoderState state = model.encode(src, src_len);
  DecoderState lm_state;       // opt.lm_model's, per row: from zeros at <s>, as the language model was trained
  std::vector<int64_t> vocab;  // with a shortlist: the target id of each column of the log-probabilities (sorted)
  if (opt.shortlist_table) {
    const torch::Tensor ids = opt.shortlist_table->candidates(src);  // ids 0..3 included: specials keep their columns
    vocab.assign(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel());
    for (const auto& p : prefixes) vocab.insert(vocab.end(), p.begin(), p.end());  // a prefix's tokens are candidates
    std::sort(vocab.begin(), vocab.end());
    vocab.erase(std::unique(vocab.begin(), vocab.end()), vocab.end());
    const torch::Tensor columns = torch::tensor(vocab, torch::kInt64).to(dev);
    model.restrict_output(state, columns);
    if (opt.lm_model) opt.lm_model->restrict_output(lm_state, columns);
  }
  std::vector<std::vector<int32_t>> seqs(static_cast<size_t>(B));
  // Per row, per token: its source position (opt.alignment) and its log-probability (opt.token_scores).
  const bool trace = opt.alignment || opt.token_scores;
  std::vector<std::vector<int32_t>> aligns(static_cast<size_t>(B));
  std::vector<std::vector<float>> steps(static_cast<size_t>(B));
  std::vector<double> scores(static_cast<size_t>(B), 0.0);
  // opt.coverage_penalty: per row, the attention each source token has received so far (A*R, S), on the device;
  // padding starts at 1, where log min(c, 1) adds nothing
  const bool cover = opt.coverage_penalty > 0;
  torch::Tensor coverage;
  if (cover)
    coverage = (torch::arange(src.size(1), dev).unsqueeze(0) >= src_len.to(dev).unsqueeze(1)).to(torch::kFloat32);
  std::vector<std::vector<Hypothesis>> finished(static_cast<size_t>(B));
  torch::Tensor prev = torch::full({B}, kBosId, torch::TensorOptions().dtype(torch::kInt64).device(dev));
  // Sampling: each sentence draws from a generator of its own, seeded by the seed and its source tokens, so that a
  // line's translation does not depend on the batch, the worker or the machine.
  std::vector<at::Generator> gens;
  if (opt.sampling) {
    const torch::Tensor src_cpu = src.to(torch::kCPU).contiguous();
    for (int64_t b = 0; b < B; ++b)
      gens.push_back(at::detail::createCPUGenerator(
          hash_bytes(src_cpu[b].data_ptr<int64_t>(), sizeof(int64_t) * lens[b].item<int64_t>(), opt.seed)));
  }

  for (int64_t t = 0; t < longest; ++t) {
    const auto A = static_cast<int64_t>(active.size());
    const int64_t R = t == 0 ? 1 : K;
    torch::Tensor lp = model.step(prev, state).to(torch::kFloat32);  // (A*R, V)
    if (opt.lm_model) lp.add_(opt.lm_model->step(prev, lm_state).to(torch::kFloat32), opt.lm_weight);
    // (A*R) each row's source position of the largest attention weight, on the host
    const torch::Tensor attended =
        opt.alignment ? state.attn.argmax(1).to(torch::kCPU, torch::kInt32) : torch::Tensor();
    const int32_t* att = opt.alignment ? attended.data_ptr<int32_t>() : nullptr;
    // (A*R) on the host: each row's coverage penalty if it ended now (beta sum_i log min(c_i, 1) over its source)
    torch::Tensor penalty;
    if (cover) {
      if (!state.attn.defined())
        throw ConfigError("--coverage-penalty needs a model with attention (a seq2seq model; this one has none)");
      coverage = coverage + state.attn.to(torch::kFloat32);
      penalty = coverage.clamp(kCoverageFloor, 1.0).log().sum(1).mul(opt.coverage_penalty);
      penalty = penalty.to(torch::kCPU, torch::kFloat64);
    }
    const double* cov_pen = cover ? penalty.data_ptr<double>() : nullptr;
    // A prefix's token at this step: the rows of the sentences still in their prefix, its column and its
    // log-probability before any rule below blocks tokens (the prefix is given, not searched).
    std::vector<int64_t> forced_rows, forced_cols;
    if (t < forced_steps) {
      for (int64_t a = 0; a < A; ++a) {
        const auto& p = prefixes[static_cast<size_t>(active[static_cast<size_t>(a)])];
        const auto n = static_cast<int64_t>(p.size());
        if (t > n || (t == n && !opt.prefix_ends)) continue;
        const int64_t tok = t < n ? p[static_cast<size_t>(t)] : kEosId;
        const int64_t col = vocab.empty() ? tok : std::lower_bound(vocab.begin(), vocab.end(), tok) - vocab.begin();
        for (int64_t r = 0; r < R; ++r) forced_rows.push_back(a * R + r), forced_cols.push_back(col);
      }
    }
    const torch::Tensor forced_r = forced_rows.empty() ? torch::Tensor() : on_dev(forced_rows);
    const torch::Tensor forced_c = forced_rows.empty() ? torch::Tensor() : on_dev(forced_cols);
    const torch::Tensor forced_lp = forced_rows.empty() ? torch::Tensor() : lp.index({forced_r, forced_c});
    if (opt.no_unk) lp.select(1, kUnkId).fill_(-std::numeric_limits<float>::infinity());
    if (t < opt.min_len || opt.no_repeat_ngram_size > 0) {
      const torch::Tensor eos = lp.select(1, kEosId).clone();                                    // (rows)
      if (t < opt.min_len) lp.select(1, kEosId).fill_(-std::numeric_limits<float>::infinity());  // t tokens so far
      if (opt.no_repeat_ngram_size > 0) block_repeated_ngrams(lp, seqs, opt.no_repeat_ngram_size, vocab);
      // A row whose every token is now blocked (a vocabulary used up before --min-len) ends: </s> is allowed again.
      const torch::Tensor blocked = std::get<0>(lp.max(1)) == -std::numeric_limits<float>::infinity();
      lp.select(1, kEosId).copy_(torch::where(blocked, eos, lp.select(1, kEosId)));
    }
    if (forced_r.defined()) {  // only the prefix's token remains for those rows
      lp.index_fill_(0, forced_r, -std::numeric_limits<float>::infinity());
      lp.index_put_({forced_r, forced_c}, forced_lp);
    }
    const int64_t V = lp.size(1);
    torch::Tensor top_val, top_idx;  // (A, 2K) on the host: each sentence's best continuations, or one drawn
    if (opt.sampling) {              // K = R = 1: row a is sentence active[a]
      const torch::Tensor cpu = lp.to(torch::kCPU);
      top_idx = torch::empty({A, 1}, torch::kInt64);
      for (int64_t a = 0; a < A; ++a)
        top_idx[a] = sample_tokens(cpu.narrow(0, a, 1), opt.temperature, opt.sampling_topk, opt.sampling_topp,
                                   gens[static_cast<size_t>(active[static_cast<size_t>(a)])]);
      top_val = cpu.gather(1, top_idx) + torch::tensor(scores, torch::kFloat64).to(torch::kFloat32).unsqueeze(1);
    } else {
      std::tie(top_val, top_idx) = best_continuations(lp, scores, R, 2 * K);
    }
    auto val = top_val.accessor<float, 2>();
    auto idx = top_idx.accessor<int64_t, 2>();
    std::vector<int64_t> kept, rows, next_tok;  // positions in `active` that go on, their rows' origins and tokens
    std::vector<std::vector<int32_t>> next_seqs, next_aligns;
    std::vector<std::vector<float>> next_steps;
    // Row `from`'s traces, extended by the token it takes now (its log-probability: the score gained).
    const auto extend = [&](int64_t from, double s, std::vector<int32_t>& align, std::vector<float>& step) {
      if (opt.alignment) align = aligns[from], align.push_back(att[from]);
      if (opt.token_scores) step = steps[from], step.push_back(static_cast<float>(s - scores[from]));
    };
    std::vector<double> next_scores;
    for (int64_t a = 0; a < A; ++a) {
      const int64_t b = active[a];
      const bool at_limit = t + 1 >= max_len[b];
      int64_t alive = 0;
      bool best_ended = false;  // the best continuation is </s> (or at the length limit)
      const auto first_row = static_cast<int64_t>(rows.size());
      for (int64_t j = 0; j < top_idx.size(1) && alive < K; ++j) {
        const double s = val[a][j];
        if (!std::isfinite(s)) break;
        const int64_t from = a * R + idx[a][j] / V, column = idx[a][j] % V;
        const int64_t tok = vocab.empty() ? column : vocab[static_cast<size_t>(column)];
        if (tok == kEosId || at_limit) {
          best_ended = best_ended || j == 0;
          if (j < K) {
            Hypothesis h;
            h.tokens = seqs[from];
            if (trace) extend(from, s, h.alignment, h.token_scores);
            if (tok != kEosId) {
              h.tokens.push_back(static_cast<int32_t>(tok));
            } else if (opt.alignment) {
              h.alignment.pop_back();  // </s> has no word to align; its score stays (the last)
            }
            h.logprob = s;
            h.score = length_normalised(s, h.tokens.size() + 1, opt.length_penalty) + (cover ? cov_pen[from] : 0.0);
            finished[b].push_back(std::move(h));
          }
          continue;
        }
        ++alive;
        rows.push_back(from), next_tok.push_back(tok), next_scores.push_back(s);
        next_seqs.push_back(seqs[from]);
        next_seqs.back().push_back(static_cast<int32_t>(tok));
        if (trace) extend(from, s, next_aligns.emplace_back(), next_steps.emplace_back());
      }
      const auto ended = static_cast<int64_t>(finished[b].size());
      if (ended >= K || at_limit || (opt.early_stop && best_ended && ended >= opt.nbest)) {  // its rows leave the batch
        rows.resize(first_row), next_tok.resize(first_row), next_scores.resize(first_row);
        next_seqs.resize(first_row), next_aligns.resize(trace ? first_row : 0);
        next_steps.resize(trace ? first_row : 0);
        continue;
      }
      kept.push_back(a);
      for (int64_t k = alive; k < K; ++k) {  // dead rows keep the shape: a copy of the first, scored -inf
        rows.push_back(a * R), next_tok.push_back(kPadId);
        next_scores.push_back(-std::numeric_limits<double>::infinity()), next_seqs.emplace_back();
        if (trace) next_aligns.emplace_back(), next_steps.emplace_back();
      }
    }
    if (kept.empty()) break;
    seqs = std::move(next_seqs), aligns = std::move(next_aligns), steps = std::move(next_steps);
    scores = std::move(next_scores);
    const torch::Tensor from_rows = on_dev(rows);
    if (opt.lm_model) lm_state = lm_state.select(from_rows);
    if (cover) coverage = coverage.index_select(0, from_rows);
    if (static_cast<int64_t>(kept.size()) < A) {
      state = state.select(from_rows, on_dev(kept));
      std::vector<int64_t> still;
      for (int64_t a : kept) still.push_back(active[a]);
      active = std::move(still);
    } else {
      state = state.select(from_rows);
    }
    prev = on_dev(next_tok);
  }
  for (int64_t b = 0; b < B; ++b) {
    auto& f = finished[b];
    if (f.empty()) f.push_back(Hypothesis{});  // degenerate: nothing finished
    keep_best(f, opt.nbest);
  }
  return finished;
}

// The first n entries of v reversed (a right-to-left hypothesis's per-token values; </s>'s, past them, stays last).
template <typename T>
void reverse_first(std::vector<T>& v, size_t n) {
  std::reverse(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(std::min(n, v.size())));
}

}  // namespace

std::vector<std::vector<Hypothesis>> decode(SequenceModelImpl& model, const torch::Tensor& src,
                                            const torch::Tensor& src_len, const DecodeOptions& opt,
                                            const std::vector<std::vector<int32_t>>& prefixes) {
  opt.validate();
  if (!model.config().right_left) return search(model, src, src_len, opt, prefixes);
  if (!prefixes.empty() && !opt.prefix_ends)
    throw ConfigError(
        "--prefix: this model writes translations from their end (model.right_left): it cannot start them with a "
        "prefix (it can score whole given ones: --score-target)");
  if (opt.lm_model)
    throw ConfigError(
        fmt::format("--lm {}: a language model reads left to right, and this model writes translations from their end "
                    "(model.right_left): their steps cannot be fused",
                    opt.lm));
  std::vector<std::vector<int32_t>> from_end = prefixes;
  for (auto& p : from_end) std::reverse(p.begin(), p.end());
  std::vector<std::vector<Hypothesis>> out = search(model, src, src_len, opt, from_end);
  for (auto& hyps : out)
    for (Hypothesis& h : hyps) {  // back into reading order
      const size_t n = h.tokens.size();
      reverse_first(h.tokens, n), reverse_first(h.alignment, n), reverse_first(h.token_scores, n);
    }
  return out;
}

}  // namespace tern
