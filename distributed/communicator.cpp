#include "distributed/communicator.h"

#include <mpi.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>

#include "core/errors.h"
#include "core/log.h"
#include "distributed/heartbeat.h"

namespace tern {

namespace {
struct DoneWork : Work {
  void wait() override {}
};

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : fallback;
}
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

int launched_ranks() {
  // Open MPI's mpirun, MPICH's and Intel MPI's (PMI), srun's job step (not a batch script's own step).
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"})
    if (const int n = env_int(v, 1); n > 1) return n;
  return 1;
}

namespace {

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
    case torch::kFloat32:
      return MPI_FLOAT;
    case torch::kFloat64:
      return MPI_DOUBLE;
    case torch::kInt64:
      return MPI_INT64_T;
    case torch::kInt32:
      return MPI_INT32_T;
    case torch::kUInt8:
      return MPI_UINT8_T;
    default:
      throw DistributedError(std::string("MPI backend cannot reduce dtype ") + c10::toString(t));
  }
}

}  // namespace

// MPI for CPU tensors. Collectives are the blocking MPI calls (the fastest algorithms); a watchdog thread ends this
// process when one takes longer than the timeout, and the launcher then ends the job, so nothing hangs.
//
// Non-blocking all-reduces (allreduce_sum_async: the gradient buckets) run on a communication thread: Open MPI
// advances a non-blocking collective only inside MPI calls, and a thread busy in backward makes none, so started in
// the caller they mostly waited for reduce() (0-18% of the time hidden on two busy cores). The thread starts each
// with MPI_Iallreduce on a duplicate of MPI_COMM_WORLD (its collectives can never match the caller's) and tests them
// until done, sleeping kPollUs between tests so that it takes little CPU from backward. It needs
// MPI_THREAD_MULTIPLE; an MPI without it gets the all-reduces started in the caller, as before.
class MpiCommunicator : public Communicator {
 public:
  explicit MpiCommunicator(double timeout_s) : timeout_s_(timeout_s) {
    int inited = 0, provided = 0;
    MPI_Initialized(&inited);
    if (!inited)
      MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
    else
      MPI_Query_thread(&provided);
    if (provided >= MPI_THREAD_MULTIPLE) {
      MPI_Comm_dup(MPI_COMM_WORLD, &async_comm_);
      comm_thread_ = std::thread([this] { communicate(); });
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
    if (comm_thread_.joinable()) {
      {
        std::lock_guard<std::mutex> lock(queue_mutex_);
        comm_stop_ = true;
      }
      queue_cv_.notify_all();
      comm_thread_.join();
      MPI_Comm_free(&async_comm_);
    }
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
    if (comm_thread_.joinable()) {
      auto job =
          std::make_shared<AsyncJob>(AsyncJob{t.data_ptr(), static_cast<int>(t.numel()), mpi_type(t.scalar_type())});
      {
        std::lock_guard<std::mutex> lock(queue_mutex_);
        queue_.push_back(job);
      }
      queue_cv_.notify_one();
      return std::make_unique<ThreadWork>(*this, std::move(job));
    }
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
  void enable_heartbeat(const std::string& dir) override {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);  // diagnosis only: a failure shows as missing heartbeats
    {
      std::lock_guard<std::mutex> lock(heartbeat_mutex_);
      heartbeat_dir_ = dir;
    }
    beat("", 0);  // the first one now: a rank that stops before the watchdog's next beat still has one
  }
  std::shared_ptr<void> waiting(const char* what) override { return std::make_shared<Guard>(*this, what); }

 private:
  // Marks a collective (or another wait on the other ranks) in flight for the watchdog.
  struct Guard {
    Guard(MpiCommunicator& c, const char* what) : c_(c) {
      c_.what_ = what;
      ++c_.calls_;
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
  // An all-reduce handed to the communication thread.
  struct AsyncJob {
    void* data;
    int count;
    MPI_Datatype type;
    bool done = false;  // under queue_mutex_
  };
  struct ThreadWork : Work {
    ThreadWork(MpiCommunicator& c, std::shared_ptr<AsyncJob> job) : c(c), job(std::move(job)) {}
    ~ThreadWork() override { wait_done(); }  // never leave the thread writing into a freed tensor
    void wait() override {
      Guard g(c, "all-reduce");
      wait_done();
    }
    void wait_done() {
      std::unique_lock<std::mutex> lock(c.queue_mutex_);
      c.done_cv_.wait(lock, [&] { return job->done; });
    }
    MpiCommunicator& c;
    std::shared_ptr<AsyncJob> job;
  };
  // The communication thread: starts what is queued, in order, and tests what runs until it is done.
  void communicate() {
    std::vector<std::pair<std::shared_ptr<AsyncJob>, MPI_Request>> running;
    for (;;) {
      std::deque<std::shared_ptr<AsyncJob>> next;
      {
        std::unique_lock<std::mutex> lock(queue_mutex_);
        if (running.empty()) queue_cv_.wait(lock, [&] { return comm_stop_ || !queue_.empty(); });
        if (comm_stop_ && queue_.empty() && running.empty()) return;
        next.swap(queue_);
      }
      for (auto& job : next) {
        MPI_Request r = MPI_REQUEST_NULL;
        MPI_Iallreduce(MPI_IN_PLACE, job->data, job->count, job->type, MPI_SUM, async_comm_, &r);
        running.emplace_back(std::move(job), r);
      }
      bool finished = false;
      for (auto it = running.begin(); it != running.end();) {
        int flag = 0;
        MPI_Test(&it->second, &flag, MPI_STATUS_IGNORE);
        if (!flag) {
          ++it;
          continue;
        }
        {
          std::lock_guard<std::mutex> lock(queue_mutex_);
          it->first->done = true;
        }
        finished = true;
        it = running.erase(it);
      }
      if (finished) done_cv_.notify_all();
      if (!running.empty()) std::this_thread::sleep_for(std::chrono::microseconds(kPollUs));
    }
  }
  double reduce(double v, MPI_Op op) {
    Guard g(*this, "all-reduce");
    double out = 0;
    MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, op, MPI_COMM_WORLD);
    return out;
  }
  void watch() {
    auto last_beat = std::chrono::steady_clock::now() - std::chrono::seconds(10);
    while (!stop_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      const int64_t since = since_ns_;
      const double el = since == 0 ? 0 : (std::chrono::steady_clock::now().time_since_epoch().count() - since) * 1e-9;
      const bool timed_out = since != 0 && el > timeout_s_;
      if (timed_out || std::chrono::steady_clock::now() - last_beat > std::chrono::seconds(1)) {
        beat(since == 0 ? "" : what_.load(), el);
        last_beat = std::chrono::steady_clock::now();
      }
      if (!timed_out) continue;
      std::string ranks;
      {
        std::lock_guard<std::mutex> lock(heartbeat_mutex_);
        if (!heartbeat_dir_.empty())
          ranks = "; what every rank was doing, from its heartbeat in " + heartbeat_dir_ + ":\n" +
                  describe_ranks(heartbeat_dir_, world_, unix_now(), kStaleS, rank_);
      }
      log_line(
          fmt::format("distributed error: {} #{} did not complete within distributed.timeout_s = {} s: another "
                      "rank has failed or hangs; ending this rank so that the job stops{}",
                      what_.load(), calls_.load(), timeout_s_, ranks));
      std::_Exit(3);
    }
  }
  static double unix_now() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  }
  // This rank's heartbeat file (when enabled).
  void beat(const char* waiting_in, double waiting_s) {
    std::lock_guard<std::mutex> lock(heartbeat_mutex_);
    if (heartbeat_dir_.empty()) return;
    Heartbeat hb;
    hb.rank = rank_, hb.host = host_name(), hb.pid = getpid(), hb.step = step_, hb.phase = phase_.load();
    hb.waiting_in = waiting_in, hb.call = calls_, hb.waiting_s = waiting_s, hb.time = unix_now();
    write_heartbeat(heartbeat_dir_, hb);
  }
  // Beats come every second; one older than this means the rank's process is not running.
  static constexpr double kStaleS = 3.0;
  // The communication thread's pause between tests of running all-reduces: 50 us keeps a 1-10 Gbit/s link busy
  // (socket buffers hold milliseconds of it) at a few percent of a core.
  static constexpr int kPollUs = 50;
  MPI_Comm async_comm_ = MPI_COMM_NULL;
  std::thread comm_thread_;
  std::mutex queue_mutex_;
  std::condition_variable queue_cv_, done_cv_;
  std::deque<std::shared_ptr<AsyncJob>> queue_;  // handed over, not yet started
  bool comm_stop_ = false;
  double timeout_s_;
  std::thread watchdog_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> since_ns_{0};
  std::atomic<const char*> what_{""};
  std::atomic<int64_t> calls_{0};
  std::mutex heartbeat_mutex_;
  std::string heartbeat_dir_;
};

#ifdef TERN_WITH_NCCL
std::unique_ptr<Communicator> make_nccl_communicator(std::unique_ptr<Communicator> mpi, double timeout_s);
#endif

std::unique_ptr<Communicator> make_communicator(const DistributedConfig& cfg, bool device_is_cuda) {
  cfg.validate();
  Backend backend = cfg.backend;
  if (backend == Backend::kSingle || (backend == Backend::kAuto && !launched_by_mpi())) {
    if (launched_ranks() > 1)
      throw ConfigError("distributed.backend is single but the job was started with several ranks");
    return std::make_unique<SingleCommunicator>();
  }
  auto mpi = std::make_unique<MpiCommunicator>(cfg.timeout_s);
  set_log_rank(mpi->rank(), mpi->world());
  if (backend == Backend::kAuto) backend = device_is_cuda ? Backend::kNccl : Backend::kMpi;
  if (backend == Backend::kNccl) {
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
