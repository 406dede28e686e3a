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
  torch::manual_seed(1);
  RnnStack rnn("lstm", 4, 3, 2, 0.0, true);
  rnn->to(torch::kFloat64);
  auto x = torch::randn({2, 5, 4}, torch::kFloat64);
  auto loss = [&] { return std::get<0>(rnn(x, torch::Tensor(), torch::Tensor())).pow(2).sum(); };
  EXPECT_LT(test::gradient_error(*rnn, loss), 1e-5);
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
