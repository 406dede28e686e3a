// TensorBoard event files (train.tensorboard: fairseq --tensorboard-logdir, OpenNMT-py -tensorboard): scalar
// summaries in TFRecord framing (length, masked CRC-32C of it, an Event protocol buffer, masked CRC-32C of it), written
// without TensorFlow or protobuf. Each job writes a file of its own; a resumed job's first events say START at the
// first step it takes, so TensorBoard drops the points of earlier files from that step on (a resume rolls back).
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

namespace tern {

// CRC-32C (Castagnoli) of `n` bytes, and the masked form TFRecord stores.
uint32_t crc32c(const void* data, size_t n);
uint32_t masked_crc32c(const void* data, size_t n);

class EventWriter {
 public:
  // Creates dir (if needed) and dir/events.out.tfevents.<seconds>.<n>.<host>.<pid>.tern; its first events are the file
  // version and a SessionLog START at `first_step`, the first step this job takes (TensorBoard forgets the points of
  // earlier files from that step on). Throws IoError naming the file when it cannot be written.
  EventWriter(const std::string& dir, int64_t first_step);
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;
  void scalar(const std::string& tag, int64_t step, double value);
  void flush();  // after each batch of scalars: TensorBoard reads the file while training runs
  const std::string& path() const { return path_; }

 private:
  void write_event(const std::string& event);  // a serialized Event, framed as a TFRecord
  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace tern
