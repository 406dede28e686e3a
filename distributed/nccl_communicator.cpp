// NCCL for CUDA tensors, on LibTorch's current stream; the unique id and host values travel over MPI.
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAStream.h>
#include <nccl.h>

#include <map>

#include "core/errors.h"
#include "distributed/communicator.h"

namespace tern {
namespace {

void check(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) throw DistributedError(std::string(what) + " failed: " + ncclGetErrorString(r));
}

ncclDataType_t nccl_type(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32:
      return ncclFloat32;
    case torch::kFloat16:
      return ncclFloat16;
    case torch::kBFloat16:
      return ncclBfloat16;
    case torch::kFloat64:
      return ncclFloat64;
    case torch::kInt64:
      return ncclInt64;
    case torch::kInt32:
      return ncclInt32;
    case torch::kUInt8:
      return ncclUint8;
    default:
      throw DistributedError(std::string("NCCL cannot reduce dtype ") + c10::toString(t));
  }
}

// An all-reduce on the communication stream; wait() makes the caller's current stream wait for it (no host sync).
struct NcclWork : Work {
  explicit NcclWork(c10::DeviceIndex d) : device(d) {}
  void wait() override { done.block(c10::cuda::getCurrentCUDAStream(device)); }
  c10::DeviceIndex device;
  at::cuda::CUDAEvent done;
};

class NcclCommunicator : public Communicator {
 public:
  explicit NcclCommunicator(std::unique_ptr<Communicator> host) : host_(std::move(host)) {
    rank_ = host_->rank(), world_ = host_->world(), local_rank_ = host_->local_rank(),
    local_size_ = host_->local_size();
    ncclUniqueId id;
    if (rank_ == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    auto bytes = torch::from_blob(&id, {static_cast<int64_t>(sizeof id)}, torch::kUInt8);
    host_->broadcast(bytes, 0);
    check(ncclCommInitRank(&comm_, world_, id, rank_), "ncclCommInitRank");
  }
  ~NcclCommunicator() override {
    if (comm_) ncclCommDestroy(comm_);
  }
  std::string backend() const override { return "nccl"; }
  void allreduce_sum(torch::Tensor& t) override {
    if (!t.is_cuda()) return host_->allreduce_sum(t);
    auto stream = c10::cuda::getCurrentCUDAStream(t.device().index());
    check(ncclAllReduce(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t.scalar_type()), ncclSum,
                        comm_, stream.stream()),
          "ncclAllReduce");
  }
  std::unique_ptr<Work> allreduce_sum_async(torch::Tensor& t) override {
    if (!t.is_cuda()) return host_->allreduce_sum_async(t);
    const c10::DeviceIndex dev = t.device().index();
    auto it = comm_streams_.find(dev);
    if (it == comm_streams_.end()) it = comm_streams_.emplace(dev, c10::cuda::getStreamFromPool(true, dev)).first;
    c10::cuda::CUDAStream comm = it->second;
    at::cuda::CUDAEvent ready;  // the gradients in `t` are written on the current stream
    ready.record(c10::cuda::getCurrentCUDAStream(dev));
    ready.block(comm);
    check(ncclAllReduce(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t.scalar_type()), ncclSum,
                        comm_, comm.stream()),
          "ncclAllReduce");
    c10::cuda::CUDACachingAllocator::recordStream(t.storage().data_ptr(), comm);
    auto w = std::make_unique<NcclWork>(dev);
    w->done.record(comm);
    return w;
  }
  void broadcast(torch::Tensor& t, int root) override {
    if (!t.is_cuda()) return host_->broadcast(t, root);
    auto stream = c10::cuda::getCurrentCUDAStream(t.device().index());
    check(ncclBroadcast(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t.scalar_type()), root,
                        comm_, stream.stream()),
          "ncclBroadcast");
  }
  std::vector<std::string> allgather(const std::string& s) override { return host_->allgather(s); }
  double allreduce_max(double v) override { return host_->allreduce_max(v); }
  double allreduce_sum(double v) override { return host_->allreduce_sum(v); }
  void barrier() override { host_->barrier(); }
  // The watchdog and the heartbeat live in the MPI communicator underneath.
  void set_activity(int64_t step, const char* phase) override { host_->set_activity(step, phase); }
  void enable_heartbeat(const std::string& dir) override { host_->enable_heartbeat(dir); }
  std::shared_ptr<void> waiting(const char* what) override { return host_->waiting(what); }
  [[noreturn]] void abort(int code) override {
    if (comm_) ncclCommAbort(comm_), comm_ = nullptr;
    host_->abort(code);
    std::abort();  // not reached: host_->abort does not return
  }

 private:
  std::unique_ptr<Communicator> host_;
  ncclComm_t comm_ = nullptr;
  std::map<c10::DeviceIndex, c10::cuda::CUDAStream> comm_streams_;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(std::unique_ptr<Communicator> mpi, double) {
  return std::make_unique<NcclCommunicator>(std::move(mpi));
}

}  // namespace tern
