#include <gtest/gtest.h>

#include "models/attention.h"
#include "models/reference_lstm.h"
#include "models/seq2seq.h"
#include "test_util.h"

namespace tern {

TEST(ReferenceLstm, CellEqualsLibTorchLstm) {
  torch::manual_seed(0);
  torch::nn::LSTM lstm(torch::nn::LSTMOptions(7, 5).num_layers(2).batch_first(true));
  lstm->to(torch::kFloat64);
  auto x = torch::randn({3, 6, 7}, torch::kFloat64);
  auto fused = std::get<0>(lstm->forward(x));
  auto ref = reference_lstm(lstm, x);
  EXPECT_LT((fused - ref).abs().max().item<double>(), 1e-12);
}

TEST(ReferenceLstm, SingleStepGates) {
  // With zero weights and biases b_i = b_f = b_o = large, g = tanh(b_g): c' = c + tanh(b_g), h' = tanh(c').
  const int64_t H = 2;
  auto w_ih = torch::zeros({4 * H, 3}, torch::kFloat64), w_hh = torch::zeros({4 * H, H}, torch::kFloat64);
  auto b = torch::tensor({30., 30., 30., 30., 0.5, -0.5, 30., 30.}, torch::kFloat64);
  auto c = torch::tensor({{0.1, 0.2}}, torch::kFloat64);
  auto [h1, c1] = reference_lstm_cell(torch::ones({1, 3}, torch::kFloat64), torch::zeros({1, H}, torch::kFloat64), c,
                                      w_ih, w_hh, b, torch::zeros_like(b));
  auto want_c = c + torch::tanh(torch::tensor({{0.5, -0.5}}, torch::kFloat64));
  EXPECT_LT((c1 - want_c).abs().max().item<double>(), 1e-12);
  EXPECT_LT((h1 - torch::tanh(want_c)).abs().max().item<double>(), 1e-12);
}

TEST(Gradients, LstmStackMatchesFiniteDifferences) {
  for (bool residual : {false, true}) {
    torch::manual_seed(1);
    RnnStack rnn("lstm", 4, 3, 2, 0.0, true, residual);
    rnn->to(torch::kFloat64);
    auto x = torch::randn({2, 5, 4}, torch::kFloat64);
    auto loss = [&] { return std::get<0>(rnn(x, torch::Tensor(), torch::Tensor())).pow(2).sum(); };
    EXPECT_LT(test::gradient_error(*rnn, loss), 1e-5) << residual;
  }
}

// model.residual: with the fused stack's weights, a residual stack (a module a layer) outputs layer 0's output plus
// the fused stack's (y1 = y0 + layer1(y0)), and the same final states, laid out alike (L*dirs, B, Hd); from a given
// state too, and packed as padded.
TEST(RnnStack, ResidualAddsEachLayersInput) {
  for (const char* cell : {"lstm", "gru"})
    for (bool bi : {false, true}) {
      torch::manual_seed(1);
      RnnStack fused(cell, 4, 3, 2, 0.0, bi, false), res(cell, 4, 3, 2, 0.0, bi, true);
      RnnStack first(cell, 4, 3, 1, 0.0, bi, false);
      EXPECT_EQ(res->layer_params(1).w_ih.sizes(), fused->layer_params(1).w_ih.sizes());
      torch::NoGradGuard ng;
      auto fp = fused->named_parameters();
      for (auto& p : res->named_parameters()) {  // layer<l>.weight_ih_l0[_reverse] <- <cell>.weight_ih_l<l>[_reverse]
        const std::string layer = p.key().substr(5, 1);
        std::string name = p.key().substr(7);
        name.replace(name.find("_l0"), 3, "_l" + layer);
        p.value().copy_(fp[std::string(cell) + "." + name]);
      }
      for (auto& p : first->named_parameters()) p.value().copy_(fp[p.key()]);
      const auto x = torch::randn({2, 5, 4});
      const int64_t dirs = bi ? 2 : 1;
      for (bool from_state : {false, true}) {
        torch::Tensor h = from_state ? torch::randn({2 * dirs, 2, 3}) : torch::Tensor();
        torch::Tensor c = from_state && std::string(cell) == "lstm" ? torch::randn({2 * dirs, 2, 3}) : torch::Tensor();
        const auto narrow = [&](const torch::Tensor& t) { return t.defined() ? t.narrow(0, 0, dirs) : t; };
        auto [y0, h0, c0] = first(x, narrow(h), narrow(c));
        auto [yf, hf, cf] = fused(x, h, c);
        auto [yr, hr, cr] = res(x, h, c);
        const std::string what = std::string(cell) + (bi ? " bidirectional" : "") + (from_state ? " from a state" : "");
        EXPECT_TRUE(torch::allclose(yr, yf + y0, 1e-5, 1e-6)) << what;
        EXPECT_TRUE(torch::allclose(hr, hf, 1e-5, 1e-6)) << what;
        EXPECT_EQ(cr.defined(), cf.defined()) << what;
        if (cf.defined()) EXPECT_TRUE(torch::allclose(cr, cf, 1e-5, 1e-6)) << what;
      }
      const auto lengths = torch::tensor({5, 3});
      torch::Tensor hp, cp;
      const auto packed =
          res->forward_packed(torch::nn::utils::rnn::pack_padded_sequence(x, lengths, /*batch_first=*/true), hp, cp);
      const auto padded = std::get<0>(torch::nn::utils::rnn::pad_packed_sequence(packed, true));  // (2, 5, dirs*3)
      auto [alone, ha, ca] =
          res(x.narrow(0, 1, 1).narrow(1, 0, 3), torch::Tensor(), torch::Tensor());  // the short one alone
      EXPECT_TRUE(torch::allclose(padded[1].narrow(0, 0, 3), alone[0], 1e-5, 1e-6)) << cell << bi;
      EXPECT_TRUE(torch::allclose(hp.select(1, 1), ha.select(1, 0), 1e-5, 1e-6)) << cell << bi;
      EXPECT_EQ(padded[1].narrow(0, 3, 2).abs().max().item<float>(), 0.0F) << "padding stays zero";
    }
}

// model.layer_norm: a NormCell's input gates are g_ih * (W_ih x - mean) / sqrt(var + 1e-5) + b over each row's gates;
// scaling either product's weights leaves its step unchanged (what normalization promises), while the same weights
// without normalization give another step.
TEST(NormCell, GatesAreNormalizedApart) {
  for (bool lstm : {true, false}) {
    torch::manual_seed(5);
    NormCell cell(lstm, 4, 3);
    cell->to(torch::kFloat64);
    torch::NoGradGuard ng;
    cell->gain_ih.uniform_(0.5, 1.5), cell->gain_hh.uniform_(0.5, 1.5);
    const auto x = torch::randn({2, 4}, torch::kFloat64), h = torch::randn({2, 3}, torch::kFloat64);
    const auto c = lstm ? torch::randn({2, 3}, torch::kFloat64) : torch::Tensor();
    const auto z = torch::mm(x, cell->weight_ih.t());  // (2, G)
    const auto mean = z.mean(-1, true), var = (z - mean).pow(2).mean(-1, true);
    const auto want = (z - mean) / torch::sqrt(var + 1e-5) * cell->gain_ih + cell->bias;
    const CellParams p = cell->params();
    EXPECT_LT((cell_input_gates(p, x) - want).abs().max().item<double>(), 1e-12) << lstm;
    auto [h1, c1] = step_cell(lstm, p, cell_input_gates(p, x), h, c);
    EXPECT_EQ(c1.defined(), lstm);
    const auto plain = cell_update(lstm, z + cell->bias, torch::mm(h, cell->weight_hh.t()), h, c).first;
    EXPECT_GT((h1 - plain).abs().max().item<double>(), 0.05) << "normalization changes the step";
    cell->weight_ih.mul_(3.0), cell->weight_hh.mul_(4.0);
    auto [h2, c2] = step_cell(lstm, p, cell_input_gates(p, x), h, c);
    EXPECT_LT((h2 - h1).abs().max().item<double>(), 1e-3) << lstm;
  }
}

// A layer-normalized stack over a padded batch with its mask (the encoder's path): each sentence's outputs and final
// states are those of the sentence alone, padding outputs zeros, in both directions, residual or not; its gradients
// match finite differences.
TEST(RnnStack, NormStackMasksPadding) {
  for (const char* cell : {"lstm", "gru"})
    for (bool residual : {false, true}) {
      torch::manual_seed(2);
      RnnStack rnn(cell, 4, 3, 2, 0.0, /*bidirectional=*/true, residual, /*layer_norm=*/true);
      ASSERT_TRUE(rnn->normalized());
      rnn->to(torch::kFloat64);
      const auto x = torch::randn({2, 5, 4}, torch::kFloat64);
      const auto mask = torch::tensor({{1, 1, 1, 1, 1}, {1, 1, 1, 0, 0}}).to(torch::kBool);
      const std::string what = std::string(cell) + (residual ? " residual" : "");
      {
        torch::NoGradGuard ng;
        torch::Tensor h, c, ha, ca;
        const auto y = rnn->forward_masked(x, mask, h, c);  // (2, 5, 6)
        const auto alone =
            rnn->forward_masked(x.narrow(0, 1, 1).narrow(1, 0, 3), mask.narrow(0, 1, 1).narrow(1, 0, 3), ha, ca);
        EXPECT_LT((y[1].narrow(0, 0, 3) - alone[0]).abs().max().item<double>(), 1e-12) << what;
        EXPECT_EQ(y[1].narrow(0, 3, 2).abs().max().item<double>(), 0.0) << what << ": padding outputs zeros";
        EXPECT_EQ(h.sizes(), (std::vector<int64_t>{4, 2, 3}));
        EXPECT_LT((h.select(1, 1) - ha.select(1, 0)).abs().max().item<double>(), 1e-12) << what;
        EXPECT_EQ(c.defined(), std::string(cell) == "lstm");
        if (c.defined()) EXPECT_LT((c.select(1, 1) - ca.select(1, 0)).abs().max().item<double>(), 1e-12) << what;
        auto [unmasked, hu, cu] = rnn(x, torch::Tensor(), torch::Tensor());  // no mask: every position real
        EXPECT_LT((unmasked[0] - y[0]).abs().max().item<double>(), 1e-12) << what;
      }
      auto loss = [&] {
        torch::Tensor h, c;
        const auto y = rnn->forward_masked(x, mask, h, c);
        return y.pow(2).sum() + h.sum();
      };
      EXPECT_LT(test::gradient_error(*rnn, loss), 1e-5) << what;
    }
}

// model.dropout_rnn (variational dropout): a stack in training steps its layers with the fused modules' parameters;
// with the masks all ones (p -> 0) it gives the fused stack's outputs and states (packed and masked alike), and with
// p > 0 each sentence's recurrent products see h times one mask a layer and direction, the same at every step: the
// stepped stack equals run_cell given those masks. Evaluation ignores it (the fused stack).
TEST(RnnStack, VariationalDropoutKeepsOneMaskASentence) {
  for (const char* cell : {"lstm", "gru"})
    for (bool residual : {false, true})
      for (bool norm : {false, true}) {
        const bool lstm = std::string(cell) == "lstm";
        const std::string what = std::string(cell) + (residual ? " residual" : "") + (norm ? " layer-normalized" : "");
        torch::manual_seed(3);
        RnnStack plain(cell, 4, 3, 2, 0.0, /*bidirectional=*/true, residual, norm);
        RnnStack dropped(cell, 4, 3, 2, 0.0, /*bidirectional=*/true, residual, norm, /*dropout_rnn=*/0.5);
        plain->to(torch::kFloat64), dropped->to(torch::kFloat64);
        {
          torch::NoGradGuard ng;
          auto pp = plain->named_parameters();
          for (auto& q : dropped->named_parameters()) q.value().copy_(pp[q.key()]);
        }
        const auto x = torch::randn({2, 5, 4}, torch::kFloat64);
        const auto mask = torch::tensor({{1, 1, 1, 1, 1}, {1, 1, 1, 0, 0}}).to(torch::kBool);
        dropped->eval();
        EXPECT_FALSE(dropped->stepped() && !norm) << what << ": evaluation runs the fused stack";
        torch::NoGradGuard ng;
        auto [ye, he, ce] = dropped(x, torch::Tensor(), torch::Tensor());
        auto [yp, hp, cp] = plain(x, torch::Tensor(), torch::Tensor());
        EXPECT_LT((ye - yp).abs().max().item<double>(), 1e-12) << what;
        dropped->train();
        ASSERT_TRUE(dropped->stepped()) << what;
        // The masks drawn with a seed, then the same draws by hand: layer l, direction d in that order.
        torch::manual_seed(11);
        torch::Tensor h, c;
        const auto y = dropped->forward_masked(x, mask, h, c);  // (2, 5, 6)
        torch::manual_seed(11);
        torch::Tensor want = x;
        for (int64_t l = 0; l < 2; ++l) {
          std::vector<torch::Tensor> outs;
          for (int64_t d = 0; d < 2; ++d) {
            const auto m = variational_mask(2, 3, 0.5, x.options());
            EXPECT_GT((m - 1).abs().max().item<double>(), 0.5) << what << ": some units dropped";
            torch::Tensor hk = torch::zeros({2, 3}, x.options()), ck = lstm ? torch::zeros_like(hk) : torch::Tensor();
            outs.push_back(run_cell(lstm, dropped->layer_params(l, d), want, mask, d == 1, hk, ck, m));
            EXPECT_LT((h[l * 2 + d] - hk).abs().max().item<double>(), 1e-12) << what;
          }
          const auto out = torch::cat(outs, -1);
          want = residual && l > 0 ? out + want : out;
        }
        EXPECT_LT((y - want).abs().max().item<double>(), 1e-12) << what;
        EXPECT_GT((y.narrow(0, 0, 1) - ye.narrow(0, 0, 1)).abs().max().item<double>(), 1e-3) << what;
        // Masks of ones: the stepped stack is the fused one over the padded batch (each sentence as alone).
        const CellParams p0 = dropped->layer_params(0, 0);
        torch::Tensor h1 = torch::zeros({2, 3}, x.options()), c1 = lstm ? torch::zeros_like(h1) : torch::Tensor();
        torch::Tensor h2 = h1.clone(), c2 = lstm ? c1.clone() : torch::Tensor();
        const auto ones = run_cell(lstm, p0, x, mask, false, h1, c1, torch::ones({2, 3}, x.options()));
        const auto none = run_cell(lstm, p0, x, mask, false, h2, c2);
        EXPECT_LT((ones - none).abs().max().item<double>(), 1e-12) << what;
        // A step: the mask scales h in the recurrent product only (a GRU's update still mixes in h itself).
        const auto hh = torch::randn({2, 3}, x.options()),
                   cc = lstm ? torch::randn({2, 3}, x.options()) : torch::Tensor();
        const auto m = variational_mask(2, 3, 0.5, x.options());
        const auto xg = cell_input_gates(p0, x.select(1, 0));
        const auto prod = torch::nn::functional::linear(hh * m, p0.w_hh);
        const auto gh = norm ? norm_gates(prod, p0.gain_hh) : prod + p0.b_hh;
        EXPECT_LT((step_cell(lstm, p0, xg, hh, cc, m).first - cell_update(lstm, xg, gh, hh, cc).first)
                      .abs()
                      .max()
                      .item<double>(),
                  1e-12)
            << what;
        if (!norm) {
          RnnStack one(cell, 4, 3, 1, 0.0, false, false);
          one->to(torch::kFloat64);
          {
            torch::NoGradGuard g2;
            const auto q = one->layer_params(0);
            q.w_ih.copy_(p0.w_ih), q.w_hh.copy_(p0.w_hh), q.b_ih.copy_(p0.b_ih), q.b_hh.copy_(p0.b_hh);
          }
          auto [yf, hf, cf] = one(x, torch::Tensor(), torch::Tensor());
          EXPECT_LT((yf[0] - none[0]).abs().max().item<double>(), 1e-12) << what << ": stepping equals the fused cell";
        }
      }
}

// model.enc_cell_depth (deep transition): each step runs the layer's cell, then its transition cells in order, each
// from the state alone (gates = bias + W_hh h, normalized when layer_norm); stepped in training and evaluation, masks
// and both directions as the plain stepped stack; gradients match finite differences.
TEST(RnnStack, DeepTransitionStepsCellsInOrder) {
  for (const char* cell : {"lstm", "gru"})
    for (bool norm : {false, true}) {
      const bool lstm = std::string(cell) == "lstm";
      const std::string what = std::string(cell) + (norm ? " layer-normalized" : "");
      torch::manual_seed(4);
      RnnStack rnn(cell, 4, 3, 2, 0.0, /*bidirectional=*/true, /*residual=*/false, norm, 0.0, /*cell_depth=*/3);
      rnn->to(torch::kFloat64);
      auto names = rnn->named_parameters();
      EXPECT_TRUE(names.contains("trans1_2_reverse.weight_hh") && names.contains("trans0_1.bias")) << what;
      EXPECT_EQ(names.contains("trans0_1.gain_hh"), norm) << what;
      rnn->eval();
      EXPECT_TRUE(rnn->stepped()) << what;
      const auto x = torch::randn({2, 5, 4}, torch::kFloat64);
      const auto mask = torch::tensor({{1, 1, 1, 1, 1}, {1, 1, 1, 0, 0}}).to(torch::kBool);
      {
        torch::NoGradGuard ng;
        torch::Tensor h, c;
        const auto y = rnn->forward_masked(x, mask, h, c);  // (2, 5, 6)
        // The forward direction of a one-layer stack with layer 0's parameters, row 0 (all real), by hand.
        RnnStack first(cell, 4, 3, 1, 0.0, true, false, norm, 0.0, 3);
        first->to(torch::kFloat64);
        for (auto& q : first->named_parameters()) q.value().copy_(names[q.key()]);
        first->eval();
        torch::Tensor h1, c1;
        const auto y0 = first->forward_masked(x, mask, h1, c1);  // (2, 5, 6)
        const CellParams p = rnn->layer_params(0, 0);
        const auto n = [&](const torch::Tensor& g, const torch::Tensor& gain) {
          return norm ? norm_gates(g, gain) : g;
        };
        torch::Tensor hk = torch::zeros({1, 3}, x.options()), ck = torch::zeros({1, 3}, x.options());
        for (int64_t t = 0; t < 5; ++t) {
          const auto xt = x[0][t].unsqueeze(0);
          const auto gi =
              norm ? norm_gates(torch::mm(xt, p.w_ih.t()), p.gain_ih, p.b_ih) : torch::mm(xt, p.w_ih.t()) + p.b_ih;
          const auto gh = norm ? n(torch::mm(hk, p.w_hh.t()), p.gain_hh) : torch::mm(hk, p.w_hh.t()) + p.b_hh;
          std::tie(hk, ck) = cell_update(lstm, gi, gh, hk, lstm ? ck : torch::Tensor());
          for (const char* k : {"trans0_1", "trans0_2"}) {
            const auto w = names[std::string(k) + ".weight_hh"], b = names[std::string(k) + ".bias"];
            const auto th = torch::mm(hk, w.t());
            std::tie(hk, ck) = cell_update(lstm, b.unsqueeze(0), norm ? n(th, names[std::string(k) + ".gain_hh"]) : th,
                                           hk, lstm ? ck : torch::Tensor());
          }
          EXPECT_LT((y0[0][t].narrow(0, 0, 3) - hk[0]).abs().max().item<double>(), 1e-12) << what << " t " << t;
        }
        torch::Tensor ha, ca;
        const auto alone =
            rnn->forward_masked(x.narrow(0, 1, 1).narrow(1, 0, 3), mask.narrow(0, 1, 1).narrow(1, 0, 3), ha, ca);
        EXPECT_LT((y[1].narrow(0, 0, 3) - alone[0]).abs().max().item<double>(), 1e-12) << what << ": padding";
        EXPECT_LT((h.select(1, 1) - ha.select(1, 0)).abs().max().item<double>(), 1e-12) << what;
        RnnStack shallow(cell, 4, 3, 2, 0.0, true, false, norm);
        shallow->to(torch::kFloat64);
        for (auto& q : shallow->named_parameters()) q.value().copy_(names[q.key()]);
        auto [ys, hs, cs] = shallow(x, torch::Tensor(), torch::Tensor());
        auto [yd, hd, cd] = rnn(x, torch::Tensor(), torch::Tensor());
        EXPECT_GT((ys - yd).abs().max().item<double>(), 1e-3) << what << ": the transitions change the outputs";
      }
      rnn->train();
      auto loss = [&] {
        torch::Tensor h, c;
        const auto y = rnn->forward_masked(x, mask, h, c);
        return y.pow(2).sum() + h.sum();
      };
      EXPECT_LT(test::gradient_error(*rnn, loss), 1e-5) << what;
    }
}

class AttentionGradients : public ::testing::TestWithParam<std::string> {};

TEST_P(AttentionGradients, MatchFiniteDifferences) {
  torch::manual_seed(2);
  ModelConfig c;
  c.attention = GetParam(), c.hidden = 4, c.attention_window = 1, c.attention_heads = 2;
  Attention att(c);
  att->to(torch::kFloat64);
  auto memory = torch::randn({2, 5, 4}, torch::kFloat64), query = torch::randn({2, 3, 4}, torch::kFloat64);
  auto mask = torch::tensor({{1, 1, 1, 0, 0}, {1, 1, 1, 1, 1}}).to(torch::kBool);
  auto loss = [&] {
    auto [ctx, w] = att(query, att->keys(memory), memory, mask);
    return (ctx.pow(2).sum() + (w * torch::arange(5, torch::kFloat64)).sum()).to(torch::kFloat64);
  };
  if (GetParam() != "dot") {  // dot attention has no parameters
    EXPECT_LT(test::gradient_error(*att, loss), 1e-5);
  }
  auto [ctx, w] = att(query, att->keys(memory), memory, mask);
  // Padding gets exactly zero weight; weights sum to one (local: at most one, the Gaussian scales the window's).
  EXPECT_EQ(w.index({0, torch::indexing::Slice(), torch::indexing::Slice(3)}).abs().max().item<double>(), 0.0);
  if (GetParam() == "local")
    EXPECT_LT(w.sum(-1).max().item<double>(), 1 + 1e-12);
  else
    EXPECT_LT((w.sum(-1) - 1).abs().max().item<double>(), 1e-12);
}

INSTANTIATE_TEST_SUITE_P(Kinds, AttentionGradients,
                         ::testing::Values("dot", "general", "additive", "local", "multihead"));

}  // namespace tern
