#include "distributed/communicator.h"

#include <mpi.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "core/errors.h"
#include "core/log.h"

namespace tern {

void DistributedConfig::validate() const {
  if (backend != "auto" && backend != "mpi" && backend != "nccl" && backend != "single")
    throw ConfigError("distributed.backend must be auto, mpi, nccl or single (got " + backend + ")");
  if (timeout_s < 0) throw ConfigError(fmt::format("distributed.timeout_s must be >= 0 (got {})", timeout_s));
  if (bucket_mb < 1) throw ConfigError(fmt::format("distributed.bucket_mb must be >= 1 (got {})", bucket_mb));
}

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"})
    if (std::getenv(v)) return true;
  const char* n = std::getenv("SLURM_NTASKS");
  return n && std::atoi(n) > 1 && std::getenv("SLURM_PROCID");
}

namespace {

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : fallback;
}

class SingleCommunicator : public Communicator {
 public:
  std::string backend() const override { return "single"; }
  void allreduce_sum(torch::Tensor&) override {}
  void broadcast(torch::Tensor&, int) override {}
  std::vector<std::string> allgather(const std::string& s) override { return {s}; }
  double allreduce_max(double v) override { return v; }
  double allreduce_sum(double v) override { return v; }
  void barrier() override {}
  [[noreturn]] void abort(int code) override { std::exit(code); }
};

MPI_Datatype mpi_type(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32: return MPI_FLOAT;
    case torch::kFloat64: return MPI_DOUBLE;
    case torch::kInt64: return MPI_INT64_T;
    case torch::kInt32: return MPI_INT32_T;
    case torch::kUInt8: return MPI_UINT8_T;
    default: throw DistributedError(std::string("MPI backend cannot reduce dtype ") + c10::toString(t));
  }
}

}  // namespace

// MPI for CPU tensors. Collectives are non-blocking and polled, so a timeout can abort the job instead of hanging.
class MpiCommunicator : public Communicator {
 public:
  explicit MpiCommunicator(double timeout_s) : timeout_s_(timeout_s) {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
      int provided = 0;
      MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &world_);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
    MPI_Comm_rank(local, &local_rank_);
    MPI_Comm_free(&local);
    local_rank_ = env_int("SLURM_LOCALID", env_int("OMPI_COMM_WORLD_LOCAL_RANK", local_rank_));
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }
  std::string backend() const override { return "mpi"; }

  void allreduce_sum(torch::Tensor& t) override {
    if (!t.is_cpu() || !t.is_contiguous()) throw DistributedError("MPI all-reduce needs a contiguous CPU tensor");
    MPI_Request req;
    MPI_Iallreduce(MPI_IN_PLACE, t.data_ptr(), static_cast<int>(t.numel()), mpi_type(t.scalar_type()), MPI_SUM,
                   MPI_COMM_WORLD, &req);
    wait(req, "all-reduce");
  }
  void broadcast(torch::Tensor& t, int root) override {
    if (!t.is_cpu() || !t.is_contiguous()) throw DistributedError("MPI broadcast needs a contiguous CPU tensor");
    MPI_Request req;
    MPI_Ibcast(t.data_ptr(), static_cast<int>(t.numel() * t.element_size()), MPI_BYTE, root, MPI_COMM_WORLD, &req);
    wait(req, "broadcast");
  }
  std::vector<std::string> allgather(const std::string& s) override {
    int n = static_cast<int>(s.size());
    std::vector<int> sizes(world_), displs(world_);
    MPI_Request req;
    MPI_Iallgather(&n, 1, MPI_INT, sizes.data(), 1, MPI_INT, MPI_COMM_WORLD, &req);
    wait(req, "allgather");
    int total = 0;
    for (int r = 0; r < world_; ++r) displs[r] = total, total += sizes[r];
    std::string all(static_cast<size_t>(total), '\0');
    MPI_Iallgatherv(s.data(), n, MPI_CHAR, all.data(), sizes.data(), displs.data(), MPI_CHAR, MPI_COMM_WORLD, &req);
    wait(req, "allgather");
    std::vector<std::string> out;
    for (int r = 0; r < world_; ++r) out.push_back(all.substr(displs[r], sizes[r]));
    return out;
  }
  double allreduce_max(double v) override { return reduce(v, MPI_MAX); }
  double allreduce_sum(double v) override { return reduce(v, MPI_SUM); }
  void barrier() override {
    MPI_Request req;
    MPI_Ibarrier(MPI_COMM_WORLD, &req);
    wait(req, "barrier");
  }
  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::exit(code);
  }

 private:
  double reduce(double v, MPI_Op op) {
    double out = 0;
    MPI_Request req;
    MPI_Iallreduce(&v, &out, 1, MPI_DOUBLE, op, MPI_COMM_WORLD, &req);
    wait(req, "all-reduce");
    return out;
  }
  // Polls a request; past the timeout the whole job is aborted with a message naming this rank.
  void wait(MPI_Request& req, const char* what) {
    auto start = std::chrono::steady_clock::now();
    int done = 0;
    for (int spins = 0;; ++spins) {
      MPI_Test(&req, &done, MPI_STATUS_IGNORE);
      if (done) return;
      double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (timeout_s_ > 0 && el > timeout_s_) {
        log_line(fmt::format("distributed error: {} did not complete within distributed.timeout_s = {} s: another "
                             "rank has failed or hangs; aborting the job",
                             what, timeout_s_));
        abort(3);
      }
      if (spins > 1000) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
  double timeout_s_;
};

#ifdef TERN_WITH_NCCL
std::unique_ptr<Communicator> make_nccl_communicator(std::unique_ptr<Communicator> mpi, double timeout_s);
#endif

std::unique_ptr<Communicator> make_communicator(const DistributedConfig& cfg, bool device_is_cuda) {
  cfg.validate();
  std::string backend = cfg.backend;
  if (backend == "single" || (backend == "auto" && !launched_by_mpi())) {
    if (launched_by_mpi() && env_int("OMPI_COMM_WORLD_SIZE", 1) > 1)
      throw ConfigError("distributed.backend is single but the job was started with several ranks");
    return std::make_unique<SingleCommunicator>();
  }
  auto mpi = std::make_unique<MpiCommunicator>(cfg.timeout_s);
  set_log_rank(mpi->rank(), mpi->world());
  if (backend == "auto") backend = device_is_cuda ? "nccl" : "mpi";
  if (backend == "nccl") {
#ifdef TERN_WITH_NCCL
    if (!device_is_cuda) throw ConfigError("distributed.backend nccl needs a CUDA device (train.device is cpu)");
    return make_nccl_communicator(std::move(mpi), cfg.timeout_s);
#else
    throw ConfigError("distributed.backend nccl: this tern was built without CUDA/NCCL; use backend mpi");
#endif
  }
  if (device_is_cuda) throw ConfigError("distributed.backend mpi reduces CPU tensors; with CUDA use nccl or auto");
  return mpi;
}

}  // namespace tern
