#include "distributed/communicator.h"

#include <mpi.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "core/errors.h"
#include "core/log.h"

namespace tern {

namespace {
struct DoneWork : Work {
  void wait() override {}
};
}  // namespace

std::unique_ptr<Work> Communicator::allreduce_sum_async(torch::Tensor& t) {
  allreduce_sum(t);
  return std::make_unique<DoneWork>();
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

// MPI for CPU tensors. Collectives are the blocking MPI calls (the fastest algorithms); a watchdog thread ends this
// process when one takes longer than the timeout, and the launcher then ends the job, so nothing hangs.
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
    MPI_Comm_size(local, &local_size_);
    MPI_Comm_free(&local);
    local_rank_ = env_int("SLURM_LOCALID", env_int("OMPI_COMM_WORLD_LOCAL_RANK", local_rank_));
    if (timeout_s_ > 0) watchdog_ = std::thread([this] { watch(); });
  }
  ~MpiCommunicator() override {
    stop_ = true;
    if (watchdog_.joinable()) watchdog_.join();
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }
  std::string backend() const override { return "mpi"; }

  void allreduce_sum(torch::Tensor& t) override {
    if (!t.is_cpu() || !t.is_contiguous()) throw DistributedError("MPI all-reduce needs a contiguous CPU tensor");
    Guard g(*this, "all-reduce");
    MPI_Allreduce(MPI_IN_PLACE, t.data_ptr(), static_cast<int>(t.numel()), mpi_type(t.scalar_type()), MPI_SUM,
                  MPI_COMM_WORLD);
  }
  std::unique_ptr<Work> allreduce_sum_async(torch::Tensor& t) override {
    if (!t.is_cpu() || !t.is_contiguous()) throw DistributedError("MPI all-reduce needs a contiguous CPU tensor");
    auto w = std::make_unique<MpiWork>(*this);
    MPI_Iallreduce(MPI_IN_PLACE, t.data_ptr(), static_cast<int>(t.numel()), mpi_type(t.scalar_type()), MPI_SUM,
                   MPI_COMM_WORLD, &w->request);
    return w;
  }
  void broadcast(torch::Tensor& t, int root) override {
    if (!t.is_cpu() || !t.is_contiguous()) throw DistributedError("MPI broadcast needs a contiguous CPU tensor");
    Guard g(*this, "broadcast");
    MPI_Bcast(t.data_ptr(), static_cast<int>(t.numel() * t.element_size()), MPI_BYTE, root, MPI_COMM_WORLD);
  }
  std::vector<std::string> allgather(const std::string& s) override {
    Guard g(*this, "allgather");
    int n = static_cast<int>(s.size());
    std::vector<int> sizes(world_), displs(world_);
    MPI_Allgather(&n, 1, MPI_INT, sizes.data(), 1, MPI_INT, MPI_COMM_WORLD);
    int total = 0;
    for (int r = 0; r < world_; ++r) displs[r] = total, total += sizes[r];
    std::string all(static_cast<size_t>(total), '\0');
    MPI_Allgatherv(s.data(), n, MPI_CHAR, all.data(), sizes.data(), displs.data(), MPI_CHAR, MPI_COMM_WORLD);
    std::vector<std::string> out;
    for (int r = 0; r < world_; ++r) out.push_back(all.substr(displs[r], sizes[r]));
    return out;
  }
  double allreduce_max(double v) override { return reduce(v, MPI_MAX); }
  double allreduce_sum(double v) override { return reduce(v, MPI_SUM); }
  void barrier() override {
    Guard g(*this, "barrier");
    MPI_Barrier(MPI_COMM_WORLD);
  }
  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::exit(code);
  }

 private:
  // Marks a collective in flight for the watchdog.
  struct Guard {
    Guard(MpiCommunicator& c, const char* what) : c_(c) {
      c_.what_ = what;
      c_.since_ns_ = std::chrono::steady_clock::now().time_since_epoch().count();
    }
    ~Guard() { c_.since_ns_ = 0; }
    MpiCommunicator& c_;
  };
  struct MpiWork : Work {
    explicit MpiWork(MpiCommunicator& c) : c(c) {}
    ~MpiWork() override {
      if (!done) MPI_Wait(&request, MPI_STATUS_IGNORE);  // never leave a request behind
    }
    void poll() override {
      int flag = 0;
      if (!done) MPI_Test(&request, &flag, MPI_STATUS_IGNORE), done = flag != 0;
    }
    void wait() override {
      if (done) return;
      Guard g(c, "all-reduce");
      MPI_Wait(&request, MPI_STATUS_IGNORE);
      done = true;
    }
    MpiCommunicator& c;
    MPI_Request request = MPI_REQUEST_NULL;
    bool done = false;
  };
  double reduce(double v, MPI_Op op) {
    Guard g(*this, "all-reduce");
    double out = 0;
    MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, op, MPI_COMM_WORLD);
    return out;
  }
  void watch() {
    while (!stop_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      int64_t since = since_ns_;
      if (since == 0) continue;
      double el = (std::chrono::steady_clock::now().time_since_epoch().count() - since) * 1e-9;
      if (el > timeout_s_) {
        log_line(fmt::format("distributed error: {} did not complete within distributed.timeout_s = {} s: another "
                             "rank has failed or hangs; ending this rank so that the job stops",
                             what_.load(), timeout_s_));
        std::_Exit(3);
      }
    }
  }
  double timeout_s_;
  std::thread watchdog_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> since_ns_{0};
  std::atomic<const char*> what_{""};
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
