#include "bench/allreduce_bench.h"

#include "core/errors.h"

#include <mpi.h>

#include <chrono>

namespace tern {
namespace {

template <typename F>
double time_per_call(Communicator& comm, int64_t warmup, int64_t iters, F&& call) {
  for (int64_t i = 0; i < warmup; ++i) call();
  comm.barrier();
  auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < iters; ++i) call();
  double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / iters;
  return comm.allreduce_max(el);  // the slowest rank defines the collective's time
}

}  // namespace

void AllreduceBenchOptions::validate() const {
  if (sizes_bytes.empty()) throw ConfigError("bench allreduce: --sizes needs at least one size");
  for (int64_t s : sizes_bytes)
    if (s < 4 || s > (int64_t{1} << 33))
      throw ConfigError(fmt::format("bench allreduce: --sizes must be in [4, 8589934592] bytes (got {})", s));
  if (iterations < 1 || iterations > 1000000)
    throw ConfigError(fmt::format("bench allreduce: --iters must be in [1, 1000000] (got {})", iterations));
  if (warmup < 0 || warmup > 1000000)
    throw ConfigError(fmt::format("bench allreduce: warmup must be in [0, 1000000] (got {})", warmup));
}

nlohmann::json bench_allreduce(Communicator& comm, const AllreduceBenchOptions& opt) {
  opt.validate();
  nlohmann::json rows = nlohmann::json::array();
  const double n = comm.world();
  const double bus = n > 1 ? 2.0 * (n - 1) / n : 1.0;
  int mpi_ready = 0;
  MPI_Initialized(&mpi_ready);
  for (int64_t bytes : opt.sizes_bytes) {
    auto dev = opt.cuda ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
    torch::Tensor buf = torch::ones({bytes / 4}, torch::TensorOptions().dtype(torch::kFloat32).device(dev));
    double t = time_per_call(comm, opt.warmup, opt.iterations, [&] {
      comm.allreduce_sum(buf);
      if (opt.cuda) torch::cuda::synchronize();
    });
    nlohmann::json row = {{"bytes", bytes},
                          {"backend", comm.backend()},
                          {"time_us", t * 1e6},
                          {"algbw_GBps", bytes / t / 1e9},
                          {"busbw_GBps", bytes / t / 1e9 * bus}};
    if (mpi_ready && !opt.cuda) {
      torch::Tensor ref = torch::ones({bytes / 4}, torch::kFloat32);
      double tm = time_per_call(comm, opt.warmup, opt.iterations, [&] {
        MPI_Allreduce(MPI_IN_PLACE, ref.data_ptr(), static_cast<int>(ref.numel()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      });
      row["mpi_allreduce_time_us"] = tm * 1e6;
      row["mpi_allreduce_busbw_GBps"] = bytes / tm / 1e9 * bus;
      row["ratio_vs_mpi_allreduce"] = tm / t;
    }
    rows.push_back(row);
  }
  return rows;
}

std::string allreduce_table(const nlohmann::json& rows, int world, const std::string& backend) {
  std::string out = fmt::format("{} rank(s), backend {}; busbw = algbw * 2(n-1)/n\n", world, backend);
  out += fmt::format("{:>12} {:>12} {:>12} {:>12} {:>16} {:>16} {:>8}\n", "bytes", "time_us", "algbw_GB/s",
                     "busbw_GB/s", "MPI_Allreduce_us", "MPI_busbw_GB/s", "ratio");
  for (const auto& r : rows)
    out += fmt::format("{:>12} {:>12.1f} {:>12.3f} {:>12.3f} {:>16.1f} {:>16.3f} {:>8.2f}\n", r["bytes"].get<int64_t>(),
                       r["time_us"].get<double>(), r["algbw_GBps"].get<double>(), r["busbw_GBps"].get<double>(),
                       r.value("mpi_allreduce_time_us", 0.0), r.value("mpi_allreduce_busbw_GBps", 0.0),
                       r.value("ratio_vs_mpi_allreduce", 0.0));
  return out;
}

}  // namespace tern
