#include <gtest/gtest.h>

#include "core/errors.h"
#include "data/tokenizer.h"
#include "models/attention.h"
#include "models/cpu_linear.h"
#include "models/language_model.h"
#include "models/loss.h"
#include "models/seq2seq.h"
#include "test_util.h"
#include "translation/decode.h"

namespace tern {

namespace {
CpuKernels int8_kernels() {
  CpuKernels k;
  k.int8 = true;
  return k;
}

ModelConfig tiny(const std::string& cell, const std::string& attention, bool feed, bool residual = false) {
  ModelConfig c;
  c.cell = cell, c.attention = attention, c.input_feeding = feed, c.residual = residual;
  c.layers = 2, c.embedding = 8, c.hidden = 8, c.dropout = 0.0;
  c.src_vocab = 12, c.tgt_vocab = 11;
  c.attention_window = 1, c.attention_heads = 2;  // local: a window narrower than the sources
  return c;
}
// (cell, attention, input feeding, residual layers, encoder and decoder layers: 0 is model.layers, 2; layer_norm)
using Variant = std::tuple<std::string, std::string, bool, bool, int64_t, int64_t, bool>;
ModelConfig variant(const Variant& v) {
  const auto& [cell, att, feed, residual, enc, dec, norm] = v;
  ModelConfig c = tiny(cell, att, feed, residual);
  c.enc_layers = enc, c.dec_layers = dec, c.layer_norm = norm;
  return c;
}
Variant plain(const std::string& cell, const std::string& att, bool feed, bool residual) {
  return {cell, att, feed, residual, 0, 0, false};
}
}  // namespace

class Seq2SeqVariants : public ::testing::TestWithParam<Variant> {};

TEST_P(Seq2SeqVariants, GradientsMatchFiniteDifferences) {
  torch::manual_seed(3);
  auto model = build_model(variant(GetParam()));
  model->to(torch::kFloat64);
  auto src = torch::tensor({{4, 5, 6, 7}, {8, 9, 0, 0}});
  auto len = torch::tensor({4, 2});
  auto tin = torch::tensor({{2, 4, 5}, {2, 6, 0}}), tout = torch::tensor({{4, 5, 3}, {6, 3, 0}});
  auto loss = [&] { return sequence_loss(model->forward(src, len, tin), tout, 0.1).loss; };
  EXPECT_LT(test::gradient_error(*model, loss, 3), 1e-5);
}

TEST_P(Seq2SeqVariants, PaddingDoesNotChangeOutputs) {
  torch::manual_seed(4);
  auto model = build_model(variant(GetParam()));
  model->eval();
  auto one = model->forward(torch::tensor({{4, 5}}), torch::tensor({2}), torch::tensor({{2, 7}}));
  auto padded = model->forward(torch::tensor({{4, 5, 0, 0}, {6, 7, 8, 9}}), torch::tensor({2, 4}),
                               torch::tensor({{2, 7, 0}, {2, 4, 5}}));
  using torch::indexing::Slice;
  EXPECT_LT((one[0] - padded.index({0, Slice(0, 2)})).abs().max().item<float>(), 1e-5);
}

// Guided alignment's forward: the logits of forward, and attention weights (B, T, S) that sum to 1 over a row's real
// source tokens (at most 1 for local attention's Gaussian-weighted window), 0 on padding; the alignment cost's
// gradients reach the encoder, for every attention and decoder.
TEST_P(Seq2SeqVariants, ForwardAttentionIsForwardAndItsWeights) {
  const bool local = std::get<1>(GetParam()) == "local";
  torch::manual_seed(5);
  auto model = build_model(variant(GetParam()));
  model->eval();
  auto src = torch::tensor({{4, 5, 6, 7}, {8, 9, 0, 0}});
  auto len = torch::tensor({4, 2});
  auto tin = torch::tensor({{2, 4, 5}, {2, 6, 0}});
  auto [logits, att] = model->forward_attention(src, len, tin);
  EXPECT_TRUE(torch::equal(logits, model->forward(src, len, tin)));
  ASSERT_EQ(att.sizes(), (std::vector<int64_t>{2, 3, 4}));
  const torch::Tensor sums = att.sum(-1);  // (B, T)
  EXPECT_LT(local ? (sums - 1).clamp_min(0).max().item<float>() : (sums - 1).abs().max().item<float>(), 1e-5);
  EXPECT_EQ(att.index({1, torch::indexing::Slice(), torch::indexing::Slice(2)}).abs().max().item<float>(), 0.0f);
  alignment_loss(att, torch::full_like(att, 0.25), AlignmentCost::kCe).backward();
  float encoder_grad = 0;
  for (const auto& p : model->named_parameters())
    if (p.key().rfind("encoder", 0) == 0 && p.value().grad().defined())
      encoder_grad += p.value().grad().abs().sum().item<float>();
  EXPECT_GT(encoder_grad, 0.0f);
}

// model.right_left: forward takes and returns targets in reading order while the decoder reads them from the end: each
// row's logits and attention equal those of the same weights' left-to-right model given the reversed row, put back
// in reading order, padding or not.
TEST_P(Seq2SeqVariants, RightLeftReadsTargetsFromTheEnd) {
  ModelConfig cfg = variant(GetParam());
  torch::manual_seed(8);
  auto l2r = build_model(cfg);
  cfg.right_left = true;
  torch::manual_seed(8);
  auto r2l = build_model(cfg);
  l2r->eval(), r2l->eval();
  auto src = torch::tensor({{4, 5, 6, 7}, {8, 9, 0, 0}, {5, 4, 0, 0}});
  auto len = torch::tensor({4, 2, 2});
  auto tin = torch::tensor({{2, 4, 5, 6, 7}, {2, 6, 0, 0, 0}, {2, 0, 0, 0, 0}});
  auto [logits, att] = r2l->forward_attention(src, len, tin);  // (B, T, V), (B, T, S)
  EXPECT_TRUE(torch::equal(logits, r2l->forward(src, len, tin)));
  using torch::indexing::Slice;
  for (int64_t b = 0; b < 3; ++b) {
    const int64_t n = tin[b].ne(0).sum().item<int64_t>() - 1, m = len[b].item<int64_t>();
    torch::Tensor reversed = tin.narrow(0, b, 1).narrow(1, 0, n + 1).clone();  // <s> yn .. y1
    if (n > 1) reversed.narrow(1, 1, n).copy_(reversed.narrow(1, 1, n).flip(1));
    auto [want, want_att] = l2r->forward_attention(src.narrow(0, b, 1).narrow(1, 0, m), len.narrow(0, b, 1), reversed);
    for (int64_t t = 0; t <= n; ++t) {
      const int64_t from = t < n ? n - 1 - t : n;  // the left-to-right run predicts yn first, </s> last
      EXPECT_LT((logits[b][t] - want[0][from]).abs().max().item<float>(), 1e-5) << "row " << b << " position " << t;
      EXPECT_LT((att[b][t].narrow(0, 0, m) - want_att[0][from]).abs().max().item<float>(), 1e-5);
    }
  }
  EXPECT_GT((logits[0][0] - l2r->forward(src, len, tin)[0][0]).abs().max().item<float>(), 1e-4)
      << "the first token is predicted from another context than left to right";
}

INSTANTIATE_TEST_SUITE_P(
    Cells, Seq2SeqVariants,
    ::testing::Values(
        plain("lstm", "general", true, false), plain("lstm", "additive", false, false),
        plain("gru", "dot", true, false), plain("gru", "general", false, false), plain("lstm", "local", true, false),
        plain("gru", "local", false, false), plain("lstm", "multihead", true, false),
        plain("gru", "multihead", false, false), plain("lstm", "general", true, true),
        plain("lstm", "general", false, true), plain("gru", "dot", true, true), plain("gru", "additive", false, true),
        // unequal depths: a deeper encoder (decoder from its top layers), a deeper decoder (its
        // bottom layers from zeros)
        Variant{"lstm", "general", true, false, 3, 1, false}, Variant{"lstm", "dot", false, true, 3, 2, false},
        Variant{"gru", "additive", true, true, 1, 3, false}, Variant{"gru", "general", false, false, 1, 2, false},
        // layer-normalized cells (model.layer_norm): input feeding's cells, the stepped stack, residual,
        // unequal depths
        Variant{"lstm", "general", true, false, 0, 0, true}, Variant{"lstm", "additive", false, true, 0, 0, true},
        Variant{"gru", "dot", true, true, 0, 0, true}, Variant{"gru", "general", false, false, 3, 1, true}));

// Incremental decoding as beam search runs it (G hypothesis rows per source, grouped, the encoder states once per
// source) gives the log-probabilities of teacher forcing, for every attention.
TEST_P(Seq2SeqVariants, GroupedStepsEqualTeacherForcing) {
  const std::string att = std::get<1>(GetParam());
  torch::manual_seed(6);
  auto model = build_model(variant(GetParam()));
  model->eval();
  torch::NoGradGuard ng;
  auto src = torch::tensor({{4, 5, 6, 7, 8}, {8, 9, 0, 0, 0}});
  auto len = torch::tensor({5, 2});
  auto tin = torch::tensor({{2, 4, 5, 6}, {2, 6, 7, 8}});
  const auto full = torch::log_softmax(model->forward(src, len, tin), -1);  // (B, T, V)
  const int64_t G = 3;
  const auto rows = torch::arange(2).repeat_interleave(G);  // (B*G): 0 0 0 1 1 1
  DecoderState s = model->encode(src, len).select(rows);
  ASSERT_TRUE(s.weights) << "inference on the CPU steps with the rearranged decode weights";
  DecoderState modules = s;  // the same steps through the modules (LSTM/GRU, Linear)
  modules.weights = nullptr;
  for (int64_t t = 0; t < tin.size(1); ++t) {
    const auto prev = tin.select(1, t).index_select(0, rows);
    const auto lp = model->step(prev, s);  // (B*G, V)
    EXPECT_LT((lp - full.select(1, t).index_select(0, rows)).abs().max().item<float>(), 1e-5) << att << " t " << t;
    EXPECT_LT((lp - model->step(prev, modules)).abs().max().item<float>(), 1e-5) << att << " t " << t;
    EXPECT_EQ(s.attn.sizes(), (std::vector<int64_t>{2 * G, 5}));
    EXPECT_LT(s.attn.index({3, torch::indexing::Slice(2, 5)}).abs().max().item<float>(), 1e-12) << "padding";
  }
  // The decode weights follow the parameters: changed in place, the next encode rebuilds them.
  auto* seq2seq = dynamic_cast<Seq2SeqImpl*>(model.get());
  ASSERT_NE(seq2seq, nullptr);
  auto before = model->encode(src, len).weights;
  EXPECT_EQ(model->encode(src, len).weights, before) << "built once while the parameters stay";
  model->named_parameters()["tgt_emb.weight"].mul_(1.5);
  DecoderState after = model->encode(src, len);
  EXPECT_NE(after.weights, before);
  const auto changed = torch::log_softmax(model->forward(src, len, tin), -1);
  EXPECT_LT((model->step(tin.select(1, 0), after) - changed.select(1, 0)).abs().max().item<float>(), 1e-5) << att;
  model->train();
  EXPECT_FALSE(model->encode(src, len).weights) << "training steps through the modules";
}

// model.embedding_init: glorot draws every embedding (source, target, shared, a language model's) uniformly within
// +-sqrt(6 / (V + E)) with the padding row zero; normal (the default) is LibTorch's N(0, 1), and with
// model.embedding_std s the same draws times s.
TEST(Seq2Seq, EmbeddingInitGlorotStartsSmall) {
  for (const char* init : {"normal", "glorot", "std0.25"})
    for (const char* type : {"seq2seq", "lm"})
      for (bool shared : {false, true}) {
        if (shared && std::string(type) == "lm") continue;
        ModelConfig c = tiny("lstm", "general", false);
        const bool scaled = std::string(init) == "std0.25";
        c.type = type, c.embedding_init = scaled ? "normal" : init, c.embedding = c.hidden = 64;
        c.src_vocab = c.tgt_vocab = 300, c.share_embeddings = shared;
        torch::manual_seed(7);
        auto model = build_model(c);
        torch::OrderedDict<std::string, torch::Tensor> small_params;  // the same seed with embedding_std 0.25
        if (scaled) {
          c.embedding_std = 0.25;
          torch::manual_seed(7);
          small_params = build_model(c)->named_parameters();
        }
        int64_t n = 0;
        for (const auto& p : model->named_parameters()) {
          if (p.key().find("emb.weight") == std::string::npos) continue;
          ++n;
          const auto& w = scaled ? small_params[p.key()] : p.value();
          const double bound = std::sqrt(6.0 / (300 + 64)), std = w.narrow(0, 1, 299).std().item<double>();
          const std::string what = std::string(init) + " " + type + (shared ? " shared " : " ") + p.key();
          EXPECT_EQ(w[0].abs().max().item<float>(), 0.0F) << what << ": the padding row";
          if (std::string(init) == "glorot") {
            EXPECT_LE(w.abs().max().item<double>(), bound + 1e-6) << what;
            EXPECT_NEAR(std, bound / std::sqrt(3.0), 0.01) << what;  // a uniform's standard deviation
          } else if (scaled) {
            EXPECT_TRUE(torch::equal(w, p.value() * 0.25)) << what << ": N(0, 1)'s draws, scaled";
          } else {
            EXPECT_NEAR(std, 1.0, 0.05) << what;
          }
        }
        EXPECT_EQ(n, std::string(type) == "lm" || shared ? 1 : 2) << init << type << shared;
      }
}

// --int8: the output layer's product in int8 stays within the quantisation error of the fp32 step (and is not the fp32
// step itself); turning it off rebuilds the fp32 weights; a language model refuses it.
TEST(Seq2Seq, Int8StepsStayCloseToFp32) {
  if (!cpu_supports_int8()) GTEST_SKIP() << "LibTorch has no int8 kernels for this CPU";
  torch::manual_seed(3);
  ModelConfig c = tiny("lstm", "general", false);
  c.layers = 1, c.embedding = c.hidden = 64, c.tgt_vocab = 300;
  auto model = build_model(c);
  model->eval();
  torch::NoGradGuard ng;
  auto src = torch::tensor({{4, 5, 6, 7, 8}, {8, 9, 0, 0, 0}});
  auto len = torch::tensor({5, 2});
  auto prev = torch::tensor({2, 2});
  DecoderState fp32 = model->encode(src, len);
  const auto ref = model->step(prev, fp32);  // (2, V)
  model->set_cpu_kernels(int8_kernels());
  DecoderState int8 = model->encode(src, len);
  ASSERT_TRUE(int8.weights && int8.weights->out_int8);
  const float diff = (model->step(prev, int8) - ref).abs().max().item<float>();
  EXPECT_GT(diff, 0.0f) << "the int8 product is used";
  EXPECT_LT(diff, 0.05f);
  // Int8Linear alone: within the bound of per-row weight and per-call activation rounding.
  auto w = torch::randn({300, 64}) * 0.2, b = torch::randn({300}) * 0.1, x = torch::rand({7, 64}) * 2 - 1;
  const auto exact = torch::addmm(b, x, w.t());
  const auto q = Int8Linear(w, b)(x);
  const auto bound =
      (w.abs().amax(1) / 127 * 0.5 * x.abs().sum(1, true).t().max() + w.abs().sum(1) * (2.0 / 127 * 0.5 + 1e-4))
          .unsqueeze(0);  // (1, Out)
  EXPECT_TRUE(((q - exact).abs() <= bound).all().item<bool>()) << (q - exact).abs().max().item<float>();
  model->set_cpu_kernels({});
  DecoderState back = model->encode(src, len);
  EXPECT_FALSE(back.weights->out_int8);
  EXPECT_TRUE(torch::equal(model->step(prev, back), ref));
  ModelConfig lm = c;
  lm.type = "lm";
  EXPECT_THROW(build_model(lm)->set_cpu_kernels(int8_kernels()), ConfigError);
}

// The fp32 products of CPU steps through either library: x W^T + b (+ add) to fp32 rounding, a shortlist's rows the
// same products as the whole layer's; the model's steps with either library agree to rounding, and switching
// rebuilds the decode weights.
TEST(Seq2Seq, CpuGemmLibrariesAgree) {
  torch::manual_seed(5);
  EXPECT_NE(resolve_cpu_gemm(CpuGemm::kAuto), CpuGemm::kAuto);
  EXPECT_EQ(resolve_cpu_gemm(CpuGemm::kBlas), CpuGemm::kBlas);
  std::vector<CpuGemm> libraries{CpuGemm::kBlas};
  if (at::hasMKLDNN()) libraries.push_back(CpuGemm::kOnednn);
  auto w = torch::randn({300, 64}), b = torch::randn({300}), x = torch::randn({7, 64}), add = torch::randn({7, 300});
  const auto exact = torch::addmm(b.to(torch::kDouble), x.to(torch::kDouble), w.t().to(torch::kDouble));
  const auto ids = torch::tensor({3, 17, 299}, torch::kLong);
  for (CpuGemm g : libraries) {
    const DenseLinear lin(w, b, g), plain(w, {}, g);
    EXPECT_TRUE(torch::allclose(lin(x).to(torch::kDouble), exact, 1e-5, 1e-4)) << choice_name(g);
    EXPECT_TRUE(torch::allclose(lin(x, add).to(torch::kDouble), exact + add, 1e-5, 1e-4)) << choice_name(g);
    EXPECT_TRUE(torch::allclose(plain(x).to(torch::kDouble), exact - b, 1e-5, 1e-4)) << choice_name(g);
    const auto cut = lin.rows(ids)(x);  // (7, 3)
    EXPECT_TRUE(torch::allclose(cut, lin(x).index_select(1, ids), 1e-6, 1e-5)) << choice_name(g);
  }
  ModelConfig c = tiny("lstm", "general", true);
  c.layers = 2, c.embedding = c.hidden = 32, c.tgt_vocab = 200;
  auto model = build_model(c);
  model->eval();
  torch::NoGradGuard ng;
  auto src = torch::tensor({{4, 5, 6, 7, 8}, {8, 9, 0, 0, 0}});
  auto len = torch::tensor({5, 2});
  auto prev = torch::tensor({2, 2});
  std::vector<torch::Tensor> steps;
  for (CpuGemm g : libraries) {
    CpuKernels k;
    k.gemm = g;
    model->set_cpu_kernels(k);
    DecoderState s = model->encode(src, len);
    ASSERT_TRUE(s.weights);
    model->step(prev, s);
    steps.push_back(model->step(torch::tensor({5, 6}), s));  // (2, V), the second step: input feeding too
  }
  {
    torch::AutoGradMode grad(true);  // steps with autograd take the modules' path: the reference for both
    DecoderState s = model->encode(src, len);
    ASSERT_FALSE(s.weights);
    model->step(prev, s);
    const auto ref = model->step(torch::tensor({5, 6}), s).detach();
    for (size_t i = 0; i < steps.size(); ++i)
      EXPECT_TRUE(torch::allclose(steps[i], ref, 1e-5, 1e-4)) << choice_name(libraries[i]);
  }
}

TEST(Seq2Seq, TinyModelOverfitsAndGreedyReproducesTargets) {
  for (const char* attention : {"general", "local", "multihead"}) {
    torch::manual_seed(0);
    ModelConfig c = tiny("lstm", attention, true);
    c.layers = 1, c.embedding = 32, c.hidden = 32;
    auto model = build_model(c);
    auto src = torch::tensor({{4, 5, 6}, {7, 8, 0}, {9, 10, 11}, {5, 4, 0}});
    auto len = torch::tensor({3, 2, 3, 2});
    auto tgt = std::vector<std::vector<int32_t>>{{5, 6, 7}, {8, 9}, {10, 4}, {6, 5, 4, 7}};
    auto tin = torch::zeros({4, 5}, torch::kInt64), tout = torch::zeros({4, 5}, torch::kInt64);
    for (int b = 0; b < 4; ++b) {
      tin[b][0] = kBosId;
      for (size_t t = 0; t < tgt[b].size(); ++t) tin[b][t + 1] = tout[b][t] = tgt[b][t];
      tout[b][static_cast<int64_t>(tgt[b].size())] = kEosId;
    }
    torch::optim::Adam opt(model->parameters(), 0.02);
    for (int it = 0; it < 300; ++it) {
      opt.zero_grad();
      sequence_loss(model->forward(src, len, tin), tout, 0.0).loss.backward();
      opt.step();
    }
    model->eval();
    DecodeOptions greedy;
    greedy.beam = 1;
    auto hyps = decode(*model, src, len, greedy);
    DecodeOptions beam;
    beam.beam = 3;
    auto bhyps = decode(*model, src, len, beam);
    for (int b = 0; b < 4; ++b) {
      EXPECT_EQ(hyps[b][0].tokens, tgt[b]) << attention << " sentence " << b;
      EXPECT_EQ(bhyps[b][0].tokens, tgt[b]) << attention << " sentence " << b;
    }
    if (cpu_supports_int8()) {  // --int8 search finds the same translations
      model->set_cpu_kernels(int8_kernels());
      auto qhyps = decode(*model, src, len, beam);
      model->set_cpu_kernels({});
      for (int b = 0; b < 4; ++b) EXPECT_EQ(qhyps[b][0].tokens, tgt[b]) << attention << " int8, sentence " << b;
    }
  }
}

// The feed-forward LM (model.type ffnn_lm): gradients by finite differences; position t sees exactly the C tokens
// up to it (<s> before the sentence); step() one token at a time equals forward().
TEST(FfnnLanguageModel, GradientsContextAndSteps) {
  ModelConfig c;
  c.type = "ffnn_lm", c.context = 3, c.embedding = 6, c.hidden = 7, c.tgt_vocab = 15, c.dropout = 0;
  torch::manual_seed(5);
  auto m = build_model(c);
  m->to(torch::kFloat64);
  auto tin = torch::tensor({{2, 4, 5, 6, 7}, {2, 8, 9, 0, 0}}),
       tout = torch::tensor({{4, 5, 6, 7, 3}, {8, 9, 3, 0, 0}});
  auto loss = [&] { return sequence_loss(m->forward({}, {}, tin), tout, 0.1).loss; };
  EXPECT_LT(test::gradient_error(*m, loss, 3), 1e-5);
  m->eval();
  torch::NoGradGuard ng;
  const auto base = m->forward({}, {}, tin);  // (B, T, V)
  auto far = tin.clone(), near = tin.clone();
  far[0][1] = 11;   // 3 positions before t = 4: outside its window
  near[0][2] = 11;  // 2 positions before: inside
  EXPECT_TRUE(torch::equal(m->forward({}, {}, far)[0][4], base[0][4]));
  EXPECT_FALSE(torch::equal(m->forward({}, {}, near)[0][4], base[0][4]));
  DecoderState st;
  const auto full = torch::log_softmax(base, -1);
  for (int64_t t = 0; t < 5; ++t)
    EXPECT_LT((m->step(tin.select(1, t), st) - full.select(1, t)).abs().max().item<double>(), 1e-6) << t;
  c.context = 0;
  EXPECT_NE(test::error_of([&] { c.validate(); }).find("model.context must be in [1, 32] (got 0)"), std::string::npos);
}

TEST(LanguageModel, ShapesAndTiedEmbeddings) {
  ModelConfig c;
  c.type = "lm", c.embedding = c.hidden = 16, c.tie_embeddings = true, c.tgt_vocab = 30, c.dropout = 0;
  auto m = build_model(c);
  auto out = m->forward({}, {}, torch::randint(4, 30, {3, 7}));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{3, 7, 30}));
  auto* lm = dynamic_cast<LanguageModelImpl*>(m.get());
  EXPECT_EQ(lm->out_->weight.data_ptr(), lm->emb_->weight.data_ptr());
  // The tied weight is one parameter: not a second, unused copy in the optimizer and the checkpoints.
  auto named = m->named_parameters();
  EXPECT_FALSE(named.contains("out.weight"));
  EXPECT_TRUE(named.contains("out.bias"));
  int64_t n = 0;
  for (const auto& p : m->parameters()) n += p.numel();
  EXPECT_EQ(n, lm->emb_->weight.numel() + 30 + /*LSTM*/ 4 * 16 * (16 + 16 + 2));
  // Its gradient gathers both uses.
  m->forward({}, {}, torch::randint(4, 30, {2, 5})).sum().backward();
  EXPECT_TRUE(lm->emb_->weight.grad().defined());
  EXPECT_ANY_THROW(m->encode(torch::zeros({1, 1}, torch::kInt64), torch::ones({1}, torch::kInt64)));
}

// Stream mode: two windows with the state carried give the logits of one window twice as long, and the gradient of
// the second window stops at the carried (detached) state.
TEST(LanguageModel, CarriedStateEqualsALongerWindow) {
  for (const char* cell : {"lstm", "gru"}) {
    ModelConfig c;
    c.type = "lm", c.cell = cell, c.layers = 2, c.embedding = c.hidden = 16, c.tgt_vocab = 30, c.dropout = 0;
    auto m = build_model(c);
    const auto x = torch::randint(4, 30, {3, 12});  // (B, T)
    DecoderState whole, parts;
    const auto long_window = m->forward_stream(x, whole);  // (B, 12, V)
    const auto a = m->forward_stream(x.narrow(1, 0, 5), parts), b = m->forward_stream(x.narrow(1, 5, 7), parts);
    EXPECT_TRUE(torch::allclose(torch::cat({a, b}, 1), long_window, 1e-5, 1e-6)) << cell;
    EXPECT_TRUE(torch::allclose(parts.h, whole.h, 1e-5, 1e-6)) << cell;
    EXPECT_FALSE(parts.h.requires_grad()) << cell;
    DecoderState fresh;
    EXPECT_TRUE(torch::allclose(m->forward({}, {}, x), m->forward_stream(x, fresh)))
        << "a window from zeros is the sentence-mode forward";
  }
  ModelConfig f;
  f.type = "ffnn_lm", f.tgt_vocab = 20, f.dropout_rnn = 0.2;
  const std::string ffnn = test::error_of([&] { build_model(f); });
  EXPECT_NE(ffnn.find("model.dropout_rnn drops recurrent units (model.type seq2seq or lm; ffnn_lm has none) (got 0.2)"),
            std::string::npos)
      << ffnn;
  f.type = "lm", f.dropout_rnn = 1;
  EXPECT_NE(test::error_of([&] { build_model(f); }).find("model.dropout_rnn must be in [0, 1) (got 1)"),
            std::string::npos);
}

// model.enc_cell_depth: a seq2seq model with a deep-transition encoder has gradients that match finite differences,
// the same outputs for a sentence alone and padded in a batch, and steps (beam search's path) that equal teacher
// forcing; a language model and depths out of [1, 8] are refused.
TEST(DeepTransition, EncoderCellsStepTogether) {
  const auto src = torch::tensor({{4, 5, 6, 7}, {8, 9, 0, 0}}), len = torch::tensor({4, 2});
  const auto tin = torch::tensor({{2, 4, 5}, {2, 6, 0}}), tout = torch::tensor({{4, 5, 3}, {6, 3, 0}});
  for (bool feed : {false, true}) {
    ModelConfig c = tiny("gru", "general", feed);
    c.enc_cell_depth = 2;
    torch::manual_seed(12);
    auto model = build_model(c);
    model->to(torch::kFloat64);
    auto loss = [&] { return sequence_loss(model->forward(src, len, tin), tout, 0.1).loss; };
    EXPECT_LT(test::gradient_error(*model, loss, 3), 1e-5) << feed;
    model->eval();
    model->to(torch::kFloat32);  // the CPU's decoding steps take fp32
    torch::NoGradGuard ng;
    const auto batch = model->forward(src, len, tin);  // (2, 3, V)
    const auto one = model->forward(src.narrow(0, 1, 1).narrow(1, 0, 2), len.narrow(0, 1, 1), tin.narrow(0, 1, 1));
    EXPECT_LT((batch[1] - one[0]).abs().max().item<double>(), 1e-5) << feed << ": padding";
    DecoderState s = model->encode(src, len);
    for (int64_t t = 0; t < 3; ++t) {
      const auto lp = model->step(tin.select(1, t), s);  // (2, V)
      EXPECT_LT((lp[0] - torch::log_softmax(batch[0][t], -1)).abs().max().item<double>(), 1e-5) << feed << " " << t;
    }
  }
  ModelConfig lm;
  lm.type = "lm", lm.tgt_vocab = 20, lm.enc_cell_depth = 2;
  const std::string e = test::error_of([&] { build_model(lm); });
  EXPECT_NE(e.find("model.enc_cell_depth deepens a seq2seq model's encoder cells: a language model has no encoder (got "
                   "2)"),
            std::string::npos)
      << e;
  ModelConfig deep;
  deep.src_vocab = deep.tgt_vocab = 20, deep.enc_cell_depth = 9;
  EXPECT_NE(test::error_of([&] {
              build_model(deep);
            }).find("model.enc_cell_depth must be in [1, 8] (1: one cell a step) (got 9)"),
            std::string::npos);
}

TEST(ModelConfig, RulesNameTheKey) {
  ModelConfig c;
  c.src_vocab = c.tgt_vocab = 20;
  c.tie_embeddings = true;
  c.embedding = 16, c.hidden = 32;
  try {
    build_model(c);
    FAIL();
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("model.tie_embeddings needs model.embedding == model.hidden"),
              std::string::npos);
  }
  ModelConfig r;
  r.src_vocab = r.tgt_vocab = 20, r.residual = true;
  EXPECT_NE(test::error_of([&] { build_model(r); })
                .find("model.residual adds each layer's input to its output from "
                      "the second layer on: it needs model.layers >= 2 "
                      "(model.layers is 1) (got true)"),
            std::string::npos);
  r.layers = 2, r.type = "ffnn_lm";
  EXPECT_NE(test::error_of([&] { build_model(r); }).find("model.residual is for recurrent layers"), std::string::npos);
  r.type = "lm";
  EXPECT_NO_THROW(build_model(r));
  r.dropout_src = 0.1;
  EXPECT_NE(test::error_of([&] { build_model(r); })
                .find("model.dropout_src drops source words: a language model has none (model.dropout_tgt drops the "
                      "words it reads) (got 0.1)"),
            std::string::npos);
  r.type = "seq2seq", r.dropout_tgt = 1;
  EXPECT_NE(test::error_of([&] { build_model(r); }).find("model.dropout_tgt must be in [0, 1) (got 1)"),
            std::string::npos);
  // model.enc_layers / dec_layers: a seq2seq model's sides, in range, residual where a side has two layers
  ModelConfig d;
  d.src_vocab = d.tgt_vocab = 20, d.enc_layers = 17;
  EXPECT_NE(
      test::error_of([&] { build_model(d); }).find("model.enc_layers must be 0 (model.layers) or in [1, 16] (got 17)"),
      std::string::npos);
  d.enc_layers = 0, d.dec_layers = -1;
  EXPECT_NE(
      test::error_of([&] { build_model(d); }).find("model.dec_layers must be 0 (model.layers) or in [1, 16] (got -1)"),
      std::string::npos);
  d.dec_layers = 1, d.enc_layers = 1, d.residual = true;
  EXPECT_NE(test::error_of([&] { build_model(d); })
                .find("model.residual adds each layer's input to its output from the second layer on: it needs a stack "
                      "of >= 2 layers (the encoder has 1, the decoder 1) (got true)"),
            std::string::npos);
  d.layers = 4;  // the sides set override model.layers
  EXPECT_NE(test::error_of([&] { build_model(d); }).find("the encoder has 1, the decoder 1"), std::string::npos);
  d.enc_layers = 2;
  EXPECT_NO_THROW(build_model(d));
  d.type = "lm";
  EXPECT_NE(test::error_of([&] { build_model(d); })
                .find("model.enc_layers sets one side of a seq2seq model: a language model has one stack "
                      "(model.layers) (got 2)"),
            std::string::npos);
}

// Unequal depths: the decoder starts from the encoder's final states top layer to top layer. With the encoder's
// weights copied in, a 3-layer encoder's 1-layer decoder starts from the state a 3-layer decoder's top layer starts
// from; a 3-layer decoder above a 1-layer encoder starts its top layer from the encoder's and the two below from zeros.
TEST(Seq2Seq, UnequalDepthsStartTheDecoderTopAligned) {
  for (const std::string cell : {"lstm", "gru"}) {
    auto initial = [&](int64_t enc, int64_t dec, SequenceModel* from) {
      ModelConfig c = tiny(cell, "general", true);
      c.enc_layers = enc, c.dec_layers = dec;
      torch::manual_seed(9);
      auto m = build_model(c);
      if (from) {
        torch::NoGradGuard ng;
        auto theirs = (*from)->named_parameters();
        for (auto& p : m->named_parameters())
          if (p.key().rfind("encoder.", 0) == 0 || p.key() == "src_emb.weight") p.value().copy_(theirs[p.key()]);
      }
      m->eval();
      torch::NoGradGuard ng;
      DecoderState s = m->encode(torch::tensor({{4, 5, 6}, {7, 0, 0}}), torch::tensor({3, 1}));
      return std::make_pair(m, s);
    };
    auto [deep, equal] = initial(3, 3, nullptr);
    auto [unused, top] = initial(3, 1, &deep);
    ASSERT_EQ(top.h.sizes(), (std::vector<int64_t>{1, 2, 8})) << cell;
    EXPECT_TRUE(torch::equal(top.h, equal.h.narrow(0, 2, 1))) << cell;
    EXPECT_FALSE(torch::equal(top.h, equal.h.narrow(0, 0, 1))) << cell << ": not the bottom layer's";
    if (cell == "lstm") {
      EXPECT_TRUE(torch::equal(top.c, equal.c.narrow(0, 2, 1)));
    }
    auto [shallow, one] = initial(1, 1, nullptr);
    auto [unused2, below] = initial(1, 3, &shallow);
    ASSERT_EQ(below.h.sizes(), (std::vector<int64_t>{3, 2, 8})) << cell;
    EXPECT_TRUE(torch::equal(below.h[2], one.h[0])) << cell;
    EXPECT_EQ(below.h.narrow(0, 0, 2).abs().max().item<float>(), 0.0F) << cell;
    if (cell == "lstm") {
      EXPECT_EQ(below.c.narrow(0, 0, 2).abs().max().item<float>(), 0.0F);
    }
  }
}

}  // namespace tern
