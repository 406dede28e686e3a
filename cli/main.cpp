// tern: one executable with subcommands. Parses the command line, runs the command, turns errors into one message
// and an exit code; under MPI a failing rank aborts the whole job.
#include <malloc.h>
#include <algorithm>
#include <clocale>
#include <cstdio>

#include <map>
#include <string>
#include <vector>

#include <torch/version.h>

#include "cli/commands.h"
#include "core/errors.h"
#include "core/files.h"
#include "core/log.h"
#include "distributed/communicator.h"
#include "translation/bleu.h"

int main(int argc, char** argv) {
  std::setlocale(LC_CTYPE, "C.UTF-8");
  // Tensors of a few MB are allocated and freed at every decoding and training step; glibc would map and unmap each
  // (a page fault per 4 KiB, ~10% of beam search time). Keep blocks up to 256 MiB in the heap instead.
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  CLI::App app{"tern: train and evaluate recurrent sequence models (LSTM/GRU language models, attention seq2seq)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("tern ") + TERN_VERSION + " (LibTorch " + TORCH_VERSION +
                                        "; BLEU, chrF and TER as sacreBLEU " + tern::kSacreBleuVersion + ")");
  app.option_defaults()->disable_flag_override();  // a flag takes no value: --early-stop=3 is an error, not "true"
  tern::CommandContext ctx;
  std::function<void()> run;
  tern::register_commands(app, ctx, run);
  // sacreBLEU's multi-letter single-dash options for `tern score`.
  const std::map<std::string, std::string> long_names = {
      {"-tok", "--tokenize"},      {"-lc", "--lowercase"},       {"-sv", "--smooth-value"},
      {"-sl", "--sentence-level"}, {"-cc", "--chrf-char-order"}, {"-cw", "--chrf-word-order"},
      {"-ci", "--confidence"},     {"-cin", "--confidence-n"},   {"-pbs", "--paired-bs"},
      {"-par", "--paired-ar"},     {"-pbsn", "--paired-bs-n"},   {"-parn", "--paired-ar-n"},
      {"-sh", "--short"},          {"-nr", "--num-refs"},        {"-nc", "--no-color"}};
  std::vector<std::string> args(argv, argv + argc);
  for (auto& a : args)
    if (auto it = long_names.find(a); it != long_names.end()) a = it->second;
  std::vector<char*> argv2;
  for (auto& a : args) argv2.push_back(a.data());
  // A first word that is no command: CLI11 would only say that a subcommand is required.
  std::vector<std::string> names;
  for (const auto* sub : app.get_subcommands({})) names.push_back(sub->get_name());
  if (args.size() > 1 && !args[1].empty() && args[1][0] != '-' &&
      std::find(names.begin(), names.end(), args[1]) == names.end()) {
    const std::string near = tern::nearest(args[1], names);
    std::fprintf(stderr, "config error: command line: unknown command '%s'%s; the commands are %s\n", args[1].c_str(),
                 near.empty() ? "" : (" (did you mean '" + near + "'?)").c_str(),
                 fmt::format("{}", fmt::join(names, ", ")).c_str());
    return tern::kExitConfig;
  }
  // One line "KIND error: MESSAGE" (under MPI after the rank), and the kind's exit code.
  auto report = [](const tern::Error& e) {
    std::fprintf(stderr, "%s%s error: %s\n", tern::rank_prefix().c_str(), e.kind().c_str(), e.what());
    return e.exit_code();
  };
  // --help and --version print to standard output: a full disk is an error there too.
  auto print_and_exit = [&app, &report](const CLI::Error& e) {
    const int code = app.exit(e);
    try {
      tern::flush_checked(std::cout, "standard output");
    } catch (const tern::Error& err) {
      return report(err);
    }
    return code;
  };
  try {
    app.parse(static_cast<int>(argv2.size()), argv2.data());
  } catch (const CLI::CallForHelp& e) {
    return print_and_exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return print_and_exit(e);
  } catch (const CLI::CallForVersion& e) {
    return print_and_exit(e);
  } catch (const CLI::ParseError& e) {
    // Every command-line mistake is a configuration error (exit 2), whatever CLI11's own code for it.
    std::fprintf(stderr, "config error: command line: %s\nRun with --help for more information.\n", e.what());
    return tern::kExitConfig;
  }
  // Only train and bench allreduce/train share their work between ranks: any other command would run whole in every
  // rank (each translation printed once per rank, one output file written by several processes at once).
  if (const int ranks = tern::launched_ranks(); ranks > 1) {
    const CLI::App* sub = app.get_subcommands().front();
    std::string name = sub->get_name();
    if (!sub->get_subcommands().empty()) name += " " + sub->get_subcommands().front()->get_name();
    if (name != "train" && name != "bench allreduce" && name != "bench train") {
      std::fprintf(stderr,
                   "config error: tern %s runs in one process, but a launcher (mpirun, srun) started %d: each would "
                   "do all of the work and write it again; run it without mpirun or srun (it uses the cores of its "
                   "node)\n",
                   name.c_str(), ranks);
      return tern::kExitConfig;
    }
  }
  int code = tern::kExitOk;
  try {
    run();
    code = ctx.exit_code;
    tern::flush_checked(std::cout, "standard output");  // `tern score > file` on a full disk must not exit 0
  } catch (const tern::Error& e) {
    code = report(e);
  } catch (const c10::Error& e) {
    // LibTorch's message without its C++ stack trace; reaching here means a check upstream is missing.
    code = tern::kExitUnexpected;
    const std::string msg = e.what_without_backtrace();
    std::fprintf(stderr, "%sinternal error: %s (please report it)\n", tern::rank_prefix().c_str(),
                 msg.substr(0, msg.find('\n')).c_str());
  } catch (const std::bad_alloc&) {
    code = tern::kExitUnexpected;
    std::fprintf(stderr, "%sinternal error: out of memory (please report what you ran)\n", tern::rank_prefix().c_str());
  } catch (const std::exception& e) {
    code = tern::kExitUnexpected;
    std::fprintf(stderr, "%sinternal error: %s\n", tern::rank_prefix().c_str(), e.what());
  }
  if (code != tern::kExitOk && code != tern::kExitPreempted && ctx.comm && ctx.comm->world() > 1) ctx.comm->abort(code);
  ctx.comm.reset();
  return code;
}
