// The `tern` subcommands: each registers its options on the CLI11 app and runs one library call.
#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <memory>

namespace tern {

class Communicator;

// Exit codes (docs/exit_codes.md).
constexpr int kExitOk = 0, kExitUnexpected = 1, kExitConfig = 2, kExitDistributed = 3, kExitData = 4,
              kExitCheckpoint = 5, kExitTraining = 6, kExitPreempted = 75;

struct CommandContext {
  std::unique_ptr<Communicator> comm;  // set by commands that start the distributed runtime
  int exit_code = kExitOk;
};

// Adds every subcommand; the chosen one runs through `run`.
void register_commands(CLI::App& app, CommandContext& ctx, std::function<void()>& run);

}  // namespace tern
