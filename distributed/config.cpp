#include "distributed/config.h"

#include "core/errors.h"

namespace tern {

void DistributedConfig::validate() const {
  backend.check("distributed.backend");
  if (!(timeout_s >= 0 && timeout_s <= 1e7))
    throw ConfigError(fmt::format("distributed.timeout_s must be in [0, 1e7] seconds (got {})", timeout_s));
  if (!(bucket_mb >= 1 && bucket_mb <= 65536))
    throw ConfigError(fmt::format("distributed.bucket_mb must be in [1, 65536] (got {})", bucket_mb));
}

}  // namespace tern
