#include "bench/train_bench.h"

#include <chrono>

#include "core/errors.h"
#include "distributed/reducer.h"
#include "models/device.h"
#include "models/model.h"
#include "models/precision.h"
#include "trainer/loss_scaler.h"
#include "trainer/step.h"

#ifdef TERN_WITH_NCCL
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace tern {
namespace {

using Clock = std::chrono::steady_clock;

struct Timing {
  double total_s = 0;
  double phase[5] = {0, 0, 0, 0, 0};  // data, forward, backward, exposed communication, optimizer
};

// One synthetic batch of full-length sentences, in pinned memory on a GPU (as the trainer's collate_step).
Batch synthetic_batch(const TrainBenchOptions& opt, bool lm, bool pin) {
  auto ids = torch::TensorOptions().dtype(torch::kInt64);
  Batch b;
  if (!lm) {
    b.src = torch::randint(4, opt.src_vocab, {opt.batch, opt.src_len}, ids);  // (B, S)
    b.src_len = torch::full({opt.batch}, opt.src_len, ids);                   // (B)
  }
  torch::Tensor tgt = torch::randint(4, opt.tgt_vocab, {opt.batch, opt.tgt_len + 1}, ids);  // (B, T + 1)
  b.tgt_in = tgt.narrow(1, 0, opt.tgt_len).contiguous(), b.tgt_out = tgt.narrow(1, 1, opt.tgt_len).contiguous();
  b.target_tokens = opt.batch * opt.tgt_len, b.source_tokens = lm ? 0 : opt.batch * opt.src_len;
  if (pin) {
    if (!lm) b.src = b.src.pin_memory(), b.src_len = b.src_len.pin_memory();
    b.tgt_in = b.tgt_in.pin_memory(), b.tgt_out = b.tgt_out.pin_memory();
  }
  return b;
}

// The model, optimizer and loss scaler of one precision, and timed runs of the trainer's StepRunner on them.
struct PrecisionBench {
  PrecisionBench(Communicator& c, const TrainBenchOptions& o, const ModelConfig& mc, torch::Device d, Precision p)
      : comm(c), opt(o), dev(d), precision(p), lm(mc.is_lm()) {
    torch::manual_seed(1);
    model = build_model(mc);
    model->to(dev);
    model->train();
    params = model->parameters();
    OptimConfig oc;  // the trainer's default Adam at --lr
    oc.lr = opt.lr;
    optim = make_optimizer(oc, params);
    LossScalerOptions so;
    so.enabled = precision == Precision::kFp16;
    scaler = LossScaler(so);
  }
  int64_t parameters() const {
    int64_t n = 0;
    for (const auto& p : params) n += p.numel();
    return n;
  }
  // One step: forward, backward, all-reduce, clipping at 1.0, Adam.
  void step(StepRunner& runner, PhaseTimes& t) {
    t.start();
    std::vector<Batch> batches{synthetic_batch(opt, lm, dev.is_cuda())};
    t.lap(PhaseTimes::kData);
    const auto sums = runner.forward_backward(batches, static_cast<double>(opt.batch * opt.tgt_len * comm.world()),
                                              scaler.scale(), 1, t);
    t.lap(PhaseTimes::kCommunication);  // the all-reduce not hidden behind backward, clipping, the host read
    if (scaler.update(std::isfinite(sums.grad_norm), 1))
      runner.update(opt.lr);
    else
      runner.skip();
    t.lap(PhaseTimes::kOptimizer);
  }
  // Warmup, then `steps` timed steps; `sync` waits for the device at phase boundaries so that the breakdown is
  // attributed correctly. Times are the slowest rank's.
  Timing run(bool overlap, bool sync, int64_t steps) {
    GradientReducer reducer(comm, params, opt.bucket_mb, overlap);
    StepRunner runner(StepParts{model, optim.get(), &reducer, &comm, dev, precision, /*label_smoothing=*/0.0,
                                /*clip_norm=*/1.0});
    buckets = static_cast<int64_t>(reducer.buckets().size());
    PhaseTimes t;
    for (int64_t i = 0; i < opt.warmup; ++i) step(runner, t);
    if (dev.is_cuda()) torch::cuda::synchronize();
    comm.barrier();
    t = PhaseTimes{};
    t.sync_device = sync && dev.is_cuda();
    auto t0 = Clock::now();
    for (int64_t i = 0; i < steps; ++i) step(runner, t);
    if (dev.is_cuda()) torch::cuda::synchronize();
    Timing out;
    out.total_s = comm.allreduce_max(std::chrono::duration<double>(Clock::now() - t0).count());
    if (overlap) started_in_backward = reducer.last_launched_in_backward();
    for (int p = 0; p < 5; ++p) out.phase[p] = comm.allreduce_max(t.seconds[p]) / steps;
    return out;
  }

  Communicator& comm;
  const TrainBenchOptions& opt;
  torch::Device dev;
  Precision precision;
  bool lm;
  SequenceModel model{nullptr};
  std::vector<torch::Tensor> params;
  std::unique_ptr<torch::optim::Optimizer> optim;
  LossScaler scaler;
  int64_t buckets = 0, started_in_backward = 0;
};

}  // namespace

void TrainBenchOptions::validate() const {
  auto need = [](const std::string& k, int64_t v, int64_t lo, int64_t hi) {
    if (v < lo || v > hi)
      throw ConfigError(fmt::format("bench train: --{} must be in [{}, {}] (got {})", k, lo, hi, v));
  };
  need("batch", batch, 1, 100000);
  need("src-len", src_len, 1, 100000);
  need("tgt-len", tgt_len, 1, 100000);
  need("warmup", warmup, 0, 1000000);
  need("steps", steps, 1, 1000000);
  need("src-vocab", src_vocab, 8, 10000000);
  need("tgt-vocab", tgt_vocab, 8, 10000000);
  for (const auto& p : precisions) parse_precision(p, "bench train: --precisions");
}

nlohmann::json bench_train(Communicator& comm, const TrainBenchOptions& opt) {
  opt.validate();
  const torch::Device dev = rank_device(opt.cuda ? DeviceKind::kCuda : DeviceKind::kCpu, comm.local_rank());
  ModelConfig mc = opt.model;
  mc.src_vocab = mc.is_lm() ? 0 : opt.src_vocab;
  mc.tgt_vocab = opt.tgt_vocab;
  const bool lm = mc.is_lm();
  const double tokens_per_step = static_cast<double>(opt.batch) * ((lm ? 0 : opt.src_len) + opt.tgt_len);
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& pname : opt.precisions) {
    const Precision precision = parse_precision(pname, "bench train: --precisions");
    check_precision(precision, dev, "bench train: --precisions");
    PrecisionBench bench(comm, opt, mc, dev, precision);
#ifdef TERN_WITH_NCCL
    if (dev.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(dev.index());
#endif
    Timing fast = bench.run(/*overlap=*/true, /*sync=*/false, opt.steps);  // throughput, nothing waits inside a step
    Timing split = bench.run(/*overlap=*/true, /*sync=*/true, opt.steps);  // where the time goes
    const double per_rank = tokens_per_step * opt.steps / fast.total_s;
    nlohmann::json row = {{"precision", pname},
                          {"model", mc.type.name()},
                          {"parameters", bench.parameters()},
                          {"device", dev.str()},
                          {"ranks", comm.world()},
                          {"backend", comm.backend()},
                          {"threads_per_rank", torch::get_num_threads()},
                          {"batch", opt.batch},
                          {"src_len", lm ? 0 : opt.src_len},
                          {"tgt_len", opt.tgt_len},
                          {"tokens_per_s_per_rank", per_rank},
                          {"tokens_per_s_total", per_rank * comm.world()},
                          {"step_ms", 1e3 * fast.total_s / opt.steps},
                          {"breakdown_ms",
                           {{"data", 1e3 * split.phase[0]},
                            {"forward", 1e3 * split.phase[1]},
                            {"backward", 1e3 * split.phase[2]},
                            {"exposed_communication", 1e3 * split.phase[3]},
                            {"optimizer", 1e3 * split.phase[4]}}}};
    if (comm.world() > 1) {
      // The same steps with the all-reduce after backward: all of it is exposed there.
      Timing after = bench.run(/*overlap=*/false, /*sync=*/true, opt.steps);
      const double comm_ms = 1e3 * after.phase[3], exposed_ms = 1e3 * split.phase[3];
      row["communication_after_backward_ms"] = comm_ms;
      row["hidden_communication_share"] = comm_ms > 0 ? std::max(0.0, 1.0 - exposed_ms / comm_ms) : 0.0;
      row["buckets"] = bench.buckets;
      row["buckets_started_during_backward"] = bench.started_in_backward;
    }
#ifdef TERN_WITH_NCCL
    if (dev.is_cuda())
      row["peak_gpu_memory_mib"] =
          c10::cuda::CUDACachingAllocator::getDeviceStats(dev.index()).allocated_bytes[0].peak / 1048576.0;
#endif
    if (bench.scaler.enabled())
      row["loss_scale"] = bench.scaler.scale(), row["skipped_steps"] = bench.scaler.skipped_steps();
    rows.push_back(row);
  }
  return rows;
}

std::string train_bench_table(const nlohmann::json& rows, const TrainBenchOptions& opt, int world,
                              const std::string& backend) {
  std::string out =
      fmt::format("{} {}, {} parameters, batch {} x ({} + {}) tokens, {} rank(s) ({}), {} thread(s) per rank\n",
                  opt.model.type, rows[0]["device"].get<std::string>(), rows[0]["parameters"].get<int64_t>(), opt.batch,
                  rows[0]["src_len"].get<int64_t>(), opt.tgt_len, world, backend, torch::get_num_threads());
  out += fmt::format("{:<9} {:>14} {:>14} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}\n", "precision", "tok/s/rank",
                     "tok/s total", "step_ms", "data", "fwd", "bwd", "comm", "optim", "hidden");
  for (const auto& r : rows) {
    const auto& b = r["breakdown_ms"];
    const std::string hidden = r.contains("hidden_communication_share")
                                   ? fmt::format("{:.0f}%", 100 * r["hidden_communication_share"].get<double>())
                                   : "-";
    out += fmt::format("{:<9} {:>14.0f} {:>14.0f} {:>9.1f} {:>8.1f} {:>8.1f} {:>8.1f} {:>8.1f} {:>8.1f} {:>8}\n",
                       r["precision"].get<std::string>(), r["tokens_per_s_per_rank"].get<double>(),
                       r["tokens_per_s_total"].get<double>(), r["step_ms"].get<double>(), b["data"].get<double>(),
                       b["forward"].get<double>(), b["backward"].get<double>(),
                       b["exposed_communication"].get<double>(), b["optimizer"].get<double>(), hidden);
  }
  return out;
}

}  // namespace tern
