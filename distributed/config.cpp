#include "distributed/config.h"

#include "core/errors.h"

namespace tern {

void DistributedConfig::validate() const {
  if (backend != "auto" && backend != "mpi" && backend != "nccl" && backend != "single")
    throw ConfigError("distributed.backend must be auto, mpi, nccl or single (got " + backend + ")");
  if (timeout_s < 0) throw ConfigError(fmt::format("distributed.timeout_s must be >= 0 (got {})", timeout_s));
  if (bucket_mb < 1) throw ConfigError(fmt::format("distributed.bucket_mb must be >= 1 (got {})", bucket_mb));
}

}  // namespace tern
