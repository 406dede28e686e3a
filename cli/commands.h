// The `tern` subcommands: each registers its options on the CLI11 app and runs one library call.
#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <memory>

#include "core/errors.h"

namespace tern {

class Communicator;

struct CommandContext {
  std::unique_ptr<Communicator> comm;  // set by commands that start the distributed runtime
  int exit_code = kExitOk;
};

// Adds every subcommand; the chosen one runs through `run`.
void register_commands(CLI::App& app, CommandContext& ctx, std::function<void()>& run);

}  // namespace tern
