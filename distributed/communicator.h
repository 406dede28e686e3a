// Collectives behind one interface: single process, MPI (CPU tensors), NCCL (CUDA tensors, id broadcast over MPI).
// Rank, local rank and world size come from MPI under mpirun/srun; a process started alone is rank 0 of 1.
#pragma once
#include <torch/torch.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "distributed/config.h"

namespace tern {

// A collective started by allreduce_sum_async; its tensor must stay untouched until wait() returns.
class Work {
 public:
  virtual ~Work() = default;
  // Completes the collective (within distributed.timeout_s: the watchdog ends a rank that waits longer).
  virtual void wait() = 0;
  // Advances it without blocking: MPI progresses non-blocking collectives only inside MPI calls.
  virtual void poll() {}
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  int rank() const { return rank_; }
  int world() const { return world_; }
  int local_rank() const { return local_rank_; }
  int local_size() const { return local_size_; }  // ranks on this node (MPI's shared-memory split)
  virtual std::string backend() const = 0;
  // In place, across ranks; every rank calls with the same shapes, dtypes and order.
  virtual void allreduce_sum(torch::Tensor& t) = 0;
  virtual void broadcast(torch::Tensor& t, int root) = 0;
  // Starts an in-place sum that runs while the caller goes on (MPI_Iallreduce; NCCL on a communication stream).
  // Calls on every rank must come in the same order. The default runs the blocking collective at once.
  virtual std::unique_ptr<Work> allreduce_sum_async(torch::Tensor& t);
  // Host values (always over MPI, or trivial when alone).
  virtual std::vector<std::string> allgather(const std::string& s) = 0;
  virtual double allreduce_max(double v) = 0;
  virtual double allreduce_sum(double v) = 0;
  virtual void barrier() = 0;
  // Ends every rank of the job (MPI_Abort); used when one rank fails so that none hangs.
  [[noreturn]] virtual void abort(int code) = 0;

  // Hang diagnosis (distributed/heartbeat.h). What this rank does now: the trainer sets it at each phase (two atomic
  // stores; `phase` must be a string literal).
  virtual void set_activity(int64_t step, const char* phase) { step_ = step, phase_ = phase; }
  // Starts heartbeat files in `dir` (a directory every rank can read: the run directory). Without a watchdog (one
  // process) it does nothing.
  virtual void enable_heartbeat(const std::string& dir) { (void)dir; }
  // Marks a wait on other ranks that is not a collective call, e.g. reading a result that an all-reduce on the GPU
  // must finish first: the watchdog times it out like a collective. The mark ends when the returned handle goes.
  virtual std::shared_ptr<void> waiting(const char* what) {
    (void)what;
    return nullptr;
  }

 protected:
  int rank_ = 0, world_ = 1, local_rank_ = 0, local_size_ = 1;
  std::atomic<int64_t> step_{0};
  std::atomic<const char*> phase_{"setup"};
};

// Initialises MPI when the process was started by a launcher (mpirun, srun), otherwise returns a single-process
// communicator. `device_is_cuda` selects NCCL for the auto backend.
std::unique_ptr<Communicator> make_communicator(const DistributedConfig& cfg, bool device_is_cuda);
// True when a launcher (Open MPI, PMIx, SLURM with several tasks) started this process.
bool launched_by_mpi();
// How many ranks a launcher (mpirun, srun) started together with this process; 1 without one.
int launched_ranks();

}  // namespace tern
