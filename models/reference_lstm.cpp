#include "models/reference_lstm.h"

namespace tern {

std::pair<torch::Tensor, torch::Tensor> reference_lstm_cell(const torch::Tensor& x, const torch::Tensor& h,
                                                            const torch::Tensor& c, const torch::Tensor& w_ih,
                                                            const torch::Tensor& w_hh, const torch::Tensor& b_ih,
                                                            const torch::Tensor& b_hh) {
  const int64_t H = h.size(1);
  auto gate = [&](int64_t k) {  // pre-activation of gate k: (B, H)
    auto rows = torch::indexing::Slice(k * H, (k + 1) * H);
    return torch::matmul(x, w_ih.index({rows}).t()) + b_ih.index({rows}) + torch::matmul(h, w_hh.index({rows}).t()) +
           b_hh.index({rows});
  };
  torch::Tensor i = torch::sigmoid(gate(0));
  torch::Tensor f = torch::sigmoid(gate(1));
  torch::Tensor g = torch::tanh(gate(2));
  torch::Tensor o = torch::sigmoid(gate(3));
  torch::Tensor c_next = f * c + i * g;
  torch::Tensor h_next = o * torch::tanh(c_next);
  return {h_next, c_next};
}

torch::Tensor reference_lstm(torch::nn::LSTM& lstm, const torch::Tensor& x) {
  const auto& o = lstm->options;
  torch::Tensor layer_in = x;  // (B, T, I)
  for (int64_t l = 0; l < o.num_layers(); ++l) {
    auto p = lstm->named_parameters();
    std::string s = std::to_string(l);
    auto w_ih = p["weight_ih_l" + s], w_hh = p["weight_hh_l" + s], b_ih = p["bias_ih_l" + s], b_hh = p["bias_hh_l" + s];
    const int64_t B = x.size(0), T = x.size(1), H = o.hidden_size();
    torch::Tensor h = torch::zeros({B, H}, x.options()), c = torch::zeros({B, H}, x.options());
    std::vector<torch::Tensor> outs;
    for (int64_t t = 0; t < T; ++t) {
      std::tie(h, c) = reference_lstm_cell(layer_in.select(1, t), h, c, w_ih, w_hh, b_ih, b_hh);
      outs.push_back(h);
    }
    layer_in = torch::stack(outs, 1);  // (B, T, H)
  }
  return layer_in;
}

}  // namespace tern
