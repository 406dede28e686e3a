// tern: one executable with subcommands. Parses the command line, runs the command, turns errors into one message
// and an exit code; under MPI a failing rank aborts the whole job.
#include <clocale>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "core/errors.h"
#include "core/log.h"
#include "distributed/communicator.h"

int main(int argc, char** argv) {
  std::setlocale(LC_CTYPE, "C.UTF-8");
  CLI::App app{"tern: train and evaluate recurrent sequence models (LSTM/GRU language models, attention seq2seq)"};
  app.require_subcommand(1);
  tern::CommandContext ctx;
  std::function<void()> run;
  tern::register_commands(app, ctx, run);
  // sacreBLEU's multi-letter single-dash options for `tern score`.
  const std::map<std::string, std::string> long_names = {
      {"-tok", "--tokenize"}, {"-lc", "--lowercase"},       {"-sv", "--smooth-value"},
      {"-sl", "--sentence-level"}, {"-cc", "--chrf-char-order"}, {"-cw", "--chrf-word-order"}};
  std::vector<std::string> args(argv, argv + argc);
  for (auto& a : args)
    if (auto it = long_names.find(a); it != long_names.end()) a = it->second;
  std::vector<char*> argv2;
  for (auto& a : args) argv2.push_back(a.data());
  CLI11_PARSE(app, argc, argv2.data());
  int code = tern::kExitOk;
  try {
    run();
    code = ctx.exit_code;
  } catch (const tern::Error& e) {
    const std::string& k = e.kind();
    code = k == "config" ? tern::kExitConfig
           : k == "data" ? tern::kExitData
           : k == "checkpoint" ? tern::kExitCheckpoint
           : k == "distributed" ? tern::kExitDistributed
           : k == "training" ? tern::kExitTraining
                             : tern::kExitUnexpected;
    std::fprintf(stderr, "%s%s error: %s\n", tern::rank_prefix().c_str(), k.c_str(), e.what());
  } catch (const std::exception& e) {
    code = tern::kExitUnexpected;
    std::fprintf(stderr, "%sinternal error: %s\n", tern::rank_prefix().c_str(), e.what());
  }
  if (code != tern::kExitOk && code != tern::kExitPreempted && ctx.comm && ctx.comm->world() > 1) ctx.comm->abort(code);
  ctx.comm.reset();
  return code;
}
