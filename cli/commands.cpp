#include "cli/commands.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "bench/allreduce_bench.h"
#include "bench/train_bench.h"
#include "bench/translate_bench.h"
#include "core/errors.h"
#include "core/files.h"
#include "core/log.h"
#include "core/parallel.h"
#include "data/encode.h"
#include "data/prepare.h"
#include "data/text.h"
#include "distributed/communicator.h"
#include "eval/evaluate.h"
#include "eval/generate.h"
#include "eval/ngram.h"
#include "eval/report.h"
#include "eval/translate.h"
#include "models/device.h"
#include "trainer/average.h"
#include "trainer/trainer.h"
#include "translation/score.h"
#include "translation/shortlist.h"

namespace tern {
namespace {

// CPU threads per rank: the given number; else OMP_NUM_THREADS, as for any OpenMP program; else the cores this
// process may run on, shared by the `local_ranks` ranks on this node (a launcher that binds each rank to its own
// cores has already shared them: then all of this process's cores).
void set_threads(int64_t requested, int local_ranks = 1) {
  int64_t n = requested;
  if (n <= 0) {
    if (const char* omp = std::getenv("OMP_NUM_THREADS"); omp && *omp) {
      char* end = nullptr;
      long v = std::strtol(omp, &end, 10);
      if ((*end != '\0' && *end != ',') || v < 1 || v > 4096)  // "4" or a nested list "4,1": its first level
        throw ConfigError(fmt::format(
            "environment variable OMP_NUM_THREADS: must be an integer in [1, 4096] (as train.threads), got '{}'", omp));
      n = v;
    }
  }
  if (n <= 0) {
    const int64_t machine = std::max<int64_t>(1, std::thread::hardware_concurrency());
    const int64_t mine = usable_cores();
    n = std::max<int64_t>(1, std::min(mine, machine / std::max(1, local_ranks)));
  }
  torch::set_num_threads(static_cast<int>(n));
  torch::set_num_interop_threads(1);
}

// Numeric options are checked strictly as text before conversion: CLI11 would saturate 99999999999999999999, wrap
// -1 for an unsigned option and keep the default for an empty value. Ranges are checked by each options struct.
std::string integer_rule(const std::string& s, bool non_negative) {
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size())
    return "must be an integer that fits in 64 bits (got '" + s + "')";
  if (non_negative && v < 0) return "must be >= 0 (got " + s + ")";
  return "";
}
const CLI::Validator kInteger([](std::string& s) { return integer_rule(s, false); }, "INT");
const CLI::Validator kNonNegativeInteger([](std::string& s) { return integer_rule(s, true); }, "UINT");
const CLI::Validator kFiniteNumber(
    [](std::string& s) -> std::string {
      char* end = nullptr;
      errno = 0;
      const double v = s.empty() ? 0 : std::strtod(s.c_str(), &end);
      if (s.empty() || end != s.c_str() + s.size() || errno == ERANGE || !std::isfinite(v))
        return "must be a finite number (got '" + s + "')";
      return "";
    },
    "NUMBER");

// A file name that may not be empty (an empty --shortlist would otherwise silently mean none).
const CLI::Validator kFileName([](std::string& s) { return s.empty() ? std::string("must name a file (got '')") : ""; },
                               "FILE");

// An option naming one of E's values (--precision bf16): checked as text like the numbers, stored as the enum.
template <typename E, typename Target>
CLI::Option* add_choice(CLI::App* c, const std::string& name, Target& target, const std::string& help) {
  CLI::Validator names(  // CLI11 puts the option's name in front of the message
      [](std::string& s) -> std::string {
        try {
          parse_choice<E>(s, "");
          return "";
        } catch (const ConfigError& e) {
          return std::string(e.what()).substr(1);  // "must be a, b or c (got x)"
        }
      },
      "NAME");
  return c
      ->add_option_function<std::string>(
          name, [&target, name](const std::string& s) { target = parse_choice<E>(s, name); },
          help + " (" + choice_list<E>() + ")")
      ->check(names);
}

// --rescore and --rescore-weights (translate, evaluate): eval/rescore.h.
void add_rescore_flags(CLI::App* c, RescoreOptions& r) {
  c->add_option("--rescore", r.checkpoints,
                "Rerank each sentence's beam of hypotheses with these checkpoints too (right-to-left models, "
                "model.right_left; other translation or language models): by the sum of the search's score and "
                "each model's log-probability of the text, length-normalized as the search's (--length-penalty)")
      ->check(kFileName);
  c->add_option("--rescore-weights", r.weights,
                "With --rescore: a weight a model in that sum, the searching model's first (default: all 1)")
      ->check(kFiniteNumber);
}

// The beam search's flags (translate, evaluate, bench translate).
void add_search_flags(CLI::App* c, DecodeOptions& d) {
  c->add_option("--length-penalty", d.length_penalty, "GNMT length penalty alpha")->check(kFiniteNumber);
  c->add_option(
       "--coverage-penalty", d.coverage_penalty,
       "GNMT coverage penalty beta (OpenNMT-py -coverage_penalty wu -beta): ended hypotheses that leave source "
       "words unattended rank lower (0: off)")
      ->check(kFiniteNumber);
  c->add_option("--max-len-ratio", d.max_len_ratio, "Hypotheses stop at this ratio times the source length")
      ->check(kFiniteNumber);
  c->add_flag("--no-unk", d.no_unk, "Never emit <unk>");
  c->add_option("--min-len", d.min_len,
                "No </s> before this many subword tokens (unless no other token is left: --no-repeat-ngram-size)")
      ->check(kInteger);
  c->add_option("--no-repeat-ngram-size", d.no_repeat_ngram_size,
                "Never repeat an n-gram of this many subword tokens in a hypothesis (0: off)")
      ->check(kInteger);
  c->add_flag("--early-stop", d.early_stop,
              "A sentence ends when its best continuation is </s> (OpenNMT-py's rule: faster), not when beam "
              "hypotheses have ended (fairseq's)");
  c->add_flag("--int8", d.int8,
              "CPU search with int8 output-layer products (faster; logits move by about 1e-2, so translations can "
              "differ slightly from fp32)");
  add_choice<CpuGemm>(c, "--cpu-gemm", d.cpu_gemm,
                      "The library of the CPU search's fp32 matrix products: auto is onednn on x86 CPUs that are not "
                      "Intel's (where MKL takes a slower path), else blas (LibTorch's: MKL on x86); results differ in "
                      "rounding only");
  c->add_option("--shortlist", d.shortlist,
                "A lexical shortlist from `tern shortlist` (as Marian's): each batch scores only the target tokens it "
                "lists for the batch's source tokens (faster; translations can differ slightly)")
      ->check(kFileName);
  auto* lm = c->add_option("--lm", d.lm,
                           "Shallow fusion with a language model of the target language (a checkpoint of model.type "
                           "lm or ffnn_lm with the target vocabulary): each step adds --lm-weight times its "
                           "log-probabilities to the translation model's");
  lm->check(kFileName);
  auto* weight = c->add_option("--lm-weight", d.lm_weight,
                               "The language model's weight in [0, 10], required with --lm: no weight suits every pair "
                               "of models (tune it on a validation split: bench/lm_fusion.sh)");
  weight->check(kFiniteNumber)->needs(lm);
  lm->needs(weight);
}

// Every command that writes files refuses to replace an existing one unless given this flag.
constexpr const char* kOverwriteHelp = "Replace existing output files (without it an existing output is refused)";

void add_prepare(CLI::App& app, CommandContext&, std::function<void()>& run) {
  auto o = std::make_shared<PrepareOptions>();
  auto* c = app.add_subcommand("prepare", "Tokenize raw text into an HDF5 corpus (trains SentencePiece unless given)");
  c->add_option("--train-src", o->train_src,
                "Training source text, one sentence per line (several files: read one after the other)");
  c->add_option("--train-tgt", o->train_tgt, "Training target text, line-aligned with --train-src (file by file)");
  c->add_option("--train-text", o->train_text, "Monolingual training text (language model), one or more files");
  c->add_option("--train-align", o->train_align,
                "Word alignments of the training pairs, a file for each --train-src file, line-aligned: Pharaoh links "
                "'i-j' (source word i, target word j, from 0; words split at whitespace), as fast_align and eflomal "
                "write them; for guided alignment (train.guided_alignment_weight)");
  c->add_option("--valid-src", o->valid_src);
  c->add_option("--valid-tgt", o->valid_tgt);
  c->add_option("--valid-text", o->valid_text);
  c->add_option("--test-src", o->test_src);
  c->add_option("--test-tgt", o->test_tgt);
  c->add_option("--test-text", o->test_text);
  c->add_option("--threads", o->threads, "Threads that check and encode the input (0: every core; same output)")
      ->check(kInteger);
  c->add_option("--valid-fraction", o->valid_fraction, "Without valid files: share of training lines held out")
      ->check(kFiniteNumber);
  c->add_option("--test-fraction", o->test_fraction, "Without test files: share of training lines held out")
      ->check(kFiniteNumber);
  c->add_option("--seed", o->seed, "Seed of the held-out split and of SentencePiece sampling")
      ->check(kNonNegativeInteger);
  c->add_option("--vocab-size", o->tokenizer.vocab_size, "SentencePiece vocabulary size per model")->check(kInteger);
  c->add_option("--spm-type", o->tokenizer.model_type, "unigram or bpe");
  c->add_flag("--byte-fallback", o->tokenizer.byte_fallback,
              "Unknown characters become UTF-8 byte pieces, not <unk> (needs --vocab-size > 260)");
  c->add_option("--character-coverage", o->tokenizer.character_coverage)->check(kFiniteNumber);
  c->add_option("--user-symbols", o->tokenizer.user_symbols,
                "Pieces kept whole wherever they occur, e.g. tags such as <2es> (target language) or <BT> "
                "(back-translated pairs): SentencePiece's user_defined_symbols, in every model prepare trains");
  c->add_option("--spm-sample", o->tokenizer.sample_sentences,
                fmt::format("Sentences sampled to train each SentencePiece model (default {}); memory grows with "
                            "it: about 3 KB a sentence of ~130 characters, per model (two train side by side; with the "
                            "default, prepare peaks below 2 GB)",
                            TokenizerTrainOptions::kDefaultSample))
      ->check(kInteger);
  c->add_flag("--joint-vocab", o->joint_vocab, "One vocabulary for source and target");
  c->add_option("--spm-src", o->spm_src, "Reuse this source SentencePiece model");
  c->add_option("--spm-tgt", o->spm_tgt, "Reuse this target SentencePiece model");
  c->add_option("--spm-model", o->spm_model, "Reuse this model (joint or monolingual)");
  c->add_option("--vocab-from", o->vocab_from,
                "Reuse the SentencePiece models of this tern corpus (new data for a model trained on it: "
                "train.init_from); for a monolingual corpus, one side of a parallel one (--vocab-side)");
  c->add_option("--vocab-side", o->vocab_side,
                "--vocab-from a parallel corpus for a monolingual one: its tgt (default: text for translate --lm) "
                "or src model");
  c->add_option("--max-tokens", o->max_tokens, "Longer sentences (subword tokens) follow --long-policy")
      ->check(kInteger);
  add_choice<LongPolicy>(c, "--long-policy", o->long_policy, "Sentences longer than --max-tokens");
  c->add_option("--max-ratio", o->max_ratio,
                "Drop training pairs whose subword lengths differ by more than this factor (Moses clean-corpus "
                "-ratio; 0: keep all; held-out splits are never filtered by it)")
      ->check(kFiniteNumber);
  add_choice<EmptyPolicy>(c, "--empty-policy", o->empty_policy, "Lines empty after trimming, on either side");
  c->add_option("--out", o->out, "Output corpus (.h5)")->required();
  c->add_flag("--overwrite", o->overwrite, kOverwriteHelp);
  c->callback([o, &run] {
    run = [o] {
      o->progress = true;
      PrepareResult r = prepare_corpus(*o);
      for (const auto& [split, s] : r.splits)
        logf("{}: {} lines, {} kept, {} empty dropped, {} too long {}{}, tokens src {} tgt {}", split, s.lines, s.kept,
             s.dropped_empty, o->long_policy == LongPolicy::kTruncate ? s.truncated : s.dropped_long,
             o->long_policy == LongPolicy::kTruncate ? "truncated" : "dropped",
             o->max_ratio > 0 && split == "train" ? fmt::format(", {} over --max-ratio dropped", s.dropped_ratio) : "",
             s.tokens_src, s.tokens_tgt);
      for (const auto& [split, s] : r.splits)
        if (!o->train_align.empty() && (s.links > 0 || split == "train"))
          logf("{}: {} subword links from --train-align; {} of {} pairs without any", split, s.links, s.unlinked,
               s.kept);
      for (const auto& [split, s] : r.splits)
        if (s.in_train_src > 0)
          logf("{}: {} of its {} sentences also occur in train{}: held-out scores on them are optimistic", split,
               s.in_train_src, s.kept,
               o->parallel() ? fmt::format(" as sources ({} as the same pair)", s.in_train_pair) : "");
      logf("wrote {} in {:.1f} s ({:.2f} MB/s of input text)", o->out, r.seconds, r.input_bytes / 1e6 / r.seconds);
    };
  });
}

void add_train(CLI::App& app, CommandContext& ctx, std::function<void()>& run) {
  struct Args {
    std::string config, resume;
    std::vector<std::string> set;
    bool no_progress = false;
  };
  auto a = std::make_shared<Args>();
  auto* c = app.add_subcommand("train", "Train a model from a YAML config (alone, under mpirun or srun)");
  c->add_option("config", a->config, "YAML config")->required();
  c->add_option("--set", a->set, "Override a config key: section.key=value (repeatable)");
  c->add_option("--resume", a->resume, "auto (latest checkpoint of train.run_dir) or a checkpoint path")
      ->expected(0, 1)
      ->default_str("auto");
  c->add_flag("--no-progress", a->no_progress, "Log lines instead of a progress bar");
  c->callback([a, &ctx, &run, c] {
    run = [a, &ctx, c] {
      Config cfg = load_config(a->config, a->set);  // before MPI: a bad config writes nothing
      TrainOptions opt;
      opt.settings = resolve_run_settings(cfg);  // before MPI and before anything is written
      ctx.comm = make_communicator(cfg.distributed, opt.settings.device == DeviceKind::kCuda);
      set_threads(cfg.train.threads, ctx.comm->local_size());
      install_preemption_handlers(cfg.train.preempt_signals);
      opt.resume = c->count("--resume") ? (a->resume.empty() ? "auto" : a->resume) : "";
      opt.progress = !a->no_progress;
      opt.config_file = a->config;
      TrainResult r = train(cfg, *ctx.comm, opt);
      if (ctx.comm->rank() == 0) {
        logf("trained {} steps in {:.1f} min, {:.0f} tokens/s; best valid {} {}; last checkpoint {}", r.steps,
             r.seconds / 60, r.tokens_per_s, r.valid_metric,
             r.best_valid_score ? fmt::format("{:.4f}", *r.best_valid_score) : "none", r.last_checkpoint);
      }
      if (r.preempted) ctx.exit_code = kExitPreempted;
    };
  });
}

void add_evaluate(CLI::App& app, CommandContext&, std::function<void()>& run) {
  auto o = std::make_shared<EvaluateOptions>();
  auto* c = app.add_subcommand("evaluate", "Perplexity, translation and BLEU of a checkpoint on a corpus split");
  c->add_option("--checkpoint", o->checkpoint, "Checkpoint file (.tern)")->required();
  auto sentence_scores = std::make_shared<bool>(false);
  c->add_option("--data", o->corpus, "HDF5 corpus (several files: its parts, in order)");
  c->add_option("--text", o->text,
                "Or a text file, a sentence a line, scored under a language model (a seq2seq model: the target text)");
  c->add_option("--source", o->source, "With --text and a seq2seq model: the source text, line-aligned with it");
  c->add_flag("--sentence-scores", *sentence_scores,
              "With --text: print each sentence's log10 probability, tokens and perplexity (tab-separated) instead "
              "of the JSON (--json still writes it)");
  c->add_option("--split", o->split, "train | valid | test");
  add_choice<Precision>(c, "--precision", o->precision, "Compute precision (default: the checkpoint's)");
  add_choice<DeviceRequest>(c, "--device", o->device, "Device (auto: CUDA when present)");
  c->add_flag("!--no-ema", o->use_ema, "The trained weights, not their average (train.ema_decay)");
  c->add_option("--beam", o->decode.beam, "Beam size (1: greedy)")->check(kInteger);
  add_search_flags(c, o->decode);
  add_rescore_flags(c, o->rescore);
  c->add_option("--batch", o->batch_sentences, "Sentences decoded together")->check(kInteger);
  c->add_option("--limit", o->limit, "Only the first N sentences")->check(kInteger);
  c->add_option("--ref", o->reference, "Raw reference file (default: corpus targets, detokenized)");
  c->add_option("--tokenize", o->bleu_tokenize, "BLEU tokenizer, as tern score's: 13a | intl | char | zh | none");
  c->add_option("--hyp-out", o->hypotheses_out, "Write detokenized hypotheses here");
  c->add_option("--json", o->json_out, "Write the JSON result here");
  c->add_flag("--overwrite", o->overwrite, kOverwriteHelp);
  c->add_flag("!--no-translate", o->translate, "Perplexity only");
  c->add_option("--attention-samples", o->attention_samples, "Sentences whose attention weights go into the JSON")
      ->check(kInteger);
  c->callback([o, sentence_scores, &run] {
    run = [o, sentence_scores] {
      if (*sentence_scores && o->text.empty()) throw ConfigError("evaluate: --sentence-scores needs --text FILE");
      set_threads(0);
      nlohmann::json r = o->text.empty() ? evaluate(*o) : evaluate_text(*o, *sentence_scores ? &std::cout : nullptr);
      std::string text = r.dump(2);
      if (!o->json_out.empty()) write_file_atomic(o->json_out, text + "\n");
      if (!*sentence_scores) std::cout << text << std::endl;
    };
  });
}

void add_translate(CLI::App& app, CommandContext&, std::function<void()>& run) {
  auto o = std::make_shared<TranslateOptions>();
  auto input = std::make_shared<std::string>(), output = std::make_shared<std::string>();
  auto* c = app.add_subcommand("translate", "Translate stdin (or -i FILE) to stdout (or -o FILE), a sentence a line");
  c->add_option("--checkpoint", o->checkpoints, "Checkpoint file(s) (.tern); several decode as an ensemble")
      ->required();
  c->add_option("--weights", o->weights,
                "An ensemble's weights, one a checkpoint (as Marian's): the weighted mean of their log-probabilities")
      ->check(kFiniteNumber);
  c->add_option("--beam", o->decode.beam, "Beam size (1: greedy)")->check(kInteger);
  add_search_flags(c, o->decode);
  c->add_option("--nbest", o->decode.nbest, "Print the N best, tab-separated with scores")->check(kInteger);
  add_choice<NbestFormat>(c, "--nbest-format", o->nbest_format,
                          "tabs: a line an input line, hypothesis and score tab-separated; marian: a line a "
                          "hypothesis, 'i ||| translation ||| F0= search F1= --rescore model ... ||| score'");
  c->add_flag(
      "--alignment", o->decode.alignment,
      "Append ' ||| ' and the word alignment from the attention, 'i-j' pairs (source word i, translation word "
      "j, from 0; words as split() splits the lines): each subword is linked to the source subword it attends to most");
  c->add_flag("--word-scores", o->decode.token_scores,
              "Append ' ||| ' and a log-probability for each word of the translation (as split() splits it: the sum "
              "of its subword tokens'), then </s>'s (Marian --word-scores): where the model was unsure; after "
              "--alignment's links");
  c->add_flag("--sampling", o->decode.sampling,
              "Draw each translation token by token instead of searching (back-translation; --beam 1)");
  c->add_option("--temperature", o->decode.temperature, "With --sampling: divide log-probabilities by T")
      ->check(kFiniteNumber);
  c->add_option("--sampling-topk", o->decode.sampling_topk, "With --sampling: among the K most likely (0: all)")
      ->check(kInteger);
  c->add_option("--sampling-topp", o->decode.sampling_topp,
                "With --sampling: among the fewest most likely tokens holding probability P (nucleus)")
      ->check(kFiniteNumber);
  c->add_option("--seed", o->decode.seed, "With --sampling: the same seed and line give the same translation")
      ->check(kNonNegativeInteger);
  c->add_option("-i,--input", *input, "Source text, one sentence per line (default: stdin)");
  c->add_option("--prefix", o->prefix,
                "Target prefixes, a line for each input line (as fairseq --prefix-size, OpenNMT-py -tgt_prefix): each "
                "translation starts with its line's prefix, encoded as whole target pieces (an empty line: none)")
      ->check(kFileName);
  c->add_option("--score-target", o->score_target,
                "Given translations, a line for each input line, scored instead of searched (as fairseq "
                "--score-reference, marian-scorer): each output line is its log-probability (</s> included), then "
                "--alignment's links and --word-scores' scores of it; --beam does not apply")
      ->check(kFileName);
  add_rescore_flags(c, o->rescore);
  c->add_option("-o,--output", *output, "Translations (default: stdout; a file is written when all are done)");
  c->add_flag("--overwrite", o->overwrite, kOverwriteHelp);
  c->add_option("--batch", o->batch, "Lines translated together")->check(kInteger);
  c->add_option("--max-src-tokens", o->max_src_tokens,
                "Truncate longer sources, with a warning per line (default: the training corpus's --max-tokens)")
      ->check(kInteger);
  add_choice<Precision>(c, "--precision", o->precision, "Compute precision (default: the checkpoint's)");
  add_choice<DeviceRequest>(c, "--device", o->device, "Device (auto: CUDA when present)");
  c->add_flag("!--no-ema", o->use_ema, "The trained weights, not their average (train.ema_decay)");
  c->callback([o, input, output, c, &run] {
    if (o->decode.sampling && !c->count("--beam")) o->decode.beam = 1;  // sampling draws one translation a line
    std::string unused;                                                 // a sampling option without --sampling
    for (const char* flag : {"--temperature", "--sampling-topk", "--sampling-topp", "--seed"})
      if (c->count(flag) && !o->decode.sampling && unused.empty()) unused = flag;
    run = [o, input, output, unused] {
      if (!unused.empty()) throw ConfigError(fmt::format("translate: {} needs --sampling", unused));
      set_threads(0);
      // Progress goes to stderr, except where it would mix with a conversation on a terminal.
      const bool from_terminal = is_standard_stream(*input) && isatty(STDIN_FILENO) != 0;
      o->progress = !from_terminal && !(is_standard_stream(*output) && isatty(STDOUT_FILENO) != 0);
      translate_files(*o, *input, *output, std::cout, std::cerr);
    };
  });
}

void add_generate(CLI::App& app, CommandContext&, std::function<void()>& run) {
  auto o = std::make_shared<GenerateOptions>();
  auto* c = app.add_subcommand("generate", "Text from a language model checkpoint: sampling, greedy or beam search");
  c->add_option("--checkpoint", o->checkpoint, "Language model checkpoint (.tern)")->required();
  c->add_option("--prompt", o->prompt, "Text to continue (default: start a sentence)");
  c->add_option("--num", o->num, "Sequences to generate (with --beam: the best N)")->check(kInteger);
  c->add_option("--max-len", o->max_len, "Generated tokens at most")->check(kInteger);
  c->add_option("--temperature", o->temperature, "Divide log-probabilities by T before sampling")->check(kFiniteNumber);
  c->add_option("--top-k", o->top_k, "Sample among the K most likely tokens (0: all)")->check(kInteger);
  c->add_option("--top-p", o->top_p, "Sample among the most likely tokens holding probability P (nucleus)")
      ->check(kFiniteNumber);
  c->add_option("--seed", o->seed, "Random seed: the same seed gives the same text")->check(kNonNegativeInteger);
  c->add_option("--beam", o->beam, "0: sample (default); 1: greedy; K: beam search of width K")->check(kInteger);
  add_choice<Precision>(c, "--precision", o->precision, "Compute precision (default: the checkpoint's)");
  add_choice<DeviceRequest>(c, "--device", o->device, "Device (auto: CUDA when present)");
  c->add_flag("!--no-ema", o->use_ema, "The trained weights, not their average (train.ema_decay)");
  c->callback([o, &run] {
    run = [o] {
      set_threads(0);
      generate_text(*o, std::cout, std::cerr);
    };
  });
}

void add_score(CLI::App& app, CommandContext&, std::function<void()>& run) {
  struct Args {
    std::vector<std::string> refs;
    std::vector<std::string> inputs;
    ScoreOptions score;
    bool paired_bs = false, paired_ar = false, no_color = false;
    std::string language_pair, encoding = "utf-8", test_set;
    int paired_jobs = 1;
  };
  auto a = std::make_shared<Args>();
  auto& o = a->score;
  auto* c = app.add_subcommand("score", "BLEU, chrF, chrF++ and TER exactly as sacreBLEU 2.x computes and prints them");
  c->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // an option given twice: the last
  c->set_version_flag("-V,--version", std::string("sacrebleu ") + kSacreBleuVersion + " (tern score, tern " +
                                          TERN_VERSION + ": the same scores and output)");
  c->add_option("refs", a->refs, "Reference files (several: multiple references)")->required();
  c->add_option("-i,--input", a->inputs,
                "Hypotheses (default: stdin, whose tab-separated fields are systems); several files: several "
                "systems, in a table")
      ->trigger_on_parse();  // given twice: the last list, as sacreBLEU (argparse)
  c->add_option("-m,--metrics", o.metrics, "bleu, chrf and/or ter")->trigger_on_parse();
  auto* tokenize = c->add_option("--tokenize", o.bleu.tokenize, "BLEU tokenizer (-tok): 13a | intl | char | zh | none");
  c->add_option("-l,--language-pair", a->language_pair,
                "SOURCE-TARGET: a zh target makes zh BLEU's default tokenizer (ja, ko: MeCab, not available)");
  c->add_flag("--lowercase", o.bleu.lowercase, "Case-insensitive BLEU (-lc)");
  c->add_flag("--force", o.force, "No warning for hypotheses that end in a tokenized period");
  c->add_option("-s,--smooth-method", o.bleu.smooth, "exp | none | floor | add-k");
  c->add_option("--smooth-value", o.bleu.smooth_value, "floor / add-k value (-sv)")->check(kFiniteNumber);
  c->add_option("--chrf-char-order", o.chrf.char_order, "Character n-gram order (-cc)")->check(kInteger);
  c->add_option("--chrf-word-order", o.chrf.word_order, "Word n-gram order; 2 is chrF++ (-cw)")->check(kInteger);
  c->add_option("--chrf-beta", o.chrf.beta, "Weight of recall")->check(kInteger);
  c->add_flag("--chrf-whitespace", o.chrf.whitespace, "Keep whitespace in character n-grams");
  c->add_flag("--chrf-lowercase", o.chrf.lowercase, "Case-insensitive chrF");
  c->add_flag("--chrf-eps-smoothing", o.chrf.eps_smoothing, "Epsilon smoothing instead of the effective order");
  c->add_flag("--ter-case-sensitive", o.ter.case_sensitive, "TER: do not lowercase");
  c->add_flag("--ter-normalized", o.ter.normalized, "TER: tercom's normalization (punctuation split off)");
  c->add_flag("--ter-no-punct", o.ter.no_punct, "TER: remove punctuation");
  c->add_flag("--ter-asian-support", o.ter.asian_support,
              "TER: CJK characters (with --ter-normalized / --ter-no-punct)");
  c->add_flag("--sentence-level", o.sentence_level, "A score per line (-sl)");
  c->add_option("--num-refs", o.num_refs, "Each reference line holds this many tab-separated references (-nr)")
      ->check(kInteger);
  c->add_option("-e,--encoding", a->encoding, "Encoding of the text files (UTF-8 only)");
  c->add_option("-w,--width", o.width, "Decimals")->check(kInteger);
  c->add_option("-f,--format", o.format,
                "json | text | latex (several systems: a LaTeX booktabs table); SACREBLEU_FORMAT overrides it");
  c->add_flag("-b,--score-only", o.score_only, "Print only the scores");
  c->add_flag("--short", o.short_signature, "Abbreviated signatures (-sh)");
  c->add_flag("-q,--quiet", o.quiet, "No notes on stderr");
  c->add_flag("--no-color", a->no_color, "No terminal colours (-nc; tern prints none)");
  c->add_option("-t,--test-set", a->test_set, "sacreBLEU's test sets are not available: score local files");
  c->add_flag("--confidence", o.confidence, "One system: 95% confidence interval by bootstrap resampling (-ci)");
  c->add_option("--confidence-n", o.confidence_n, "Bootstrap resamples of --confidence (-cin)")->check(kInteger);
  auto* bs = c->add_flag("--paired-bs", a->paired_bs,
                         "Several systems: paired bootstrap resampling test of each against the first (-pbs)");
  auto* ar = c->add_flag("--paired-ar", a->paired_ar,
                         "Several systems: paired approximate randomization test of each against the first (-par)");
  bs->excludes(ar);
  c->add_option("--paired-bs-n", o.paired_bs_n, "Resamples of --paired-bs (-pbsn)")->check(kInteger);
  c->add_option("--paired-ar-n", o.paired_ar_n, "Trials of --paired-ar (-parn)")->check(kInteger);
  c->add_option("-j,--paired-jobs", a->paired_jobs,
                "Accepted as sacreBLEU takes it; tern runs the paired tests in one process (same results)")
      ->check(kNonNegativeInteger);
  c->add_option("--seed", o.seed, "Seed of the resampling (sacreBLEU's SACREBLEU_SEED)")->check(kInteger);
  c->callback([a, tokenize, &run] {
    a->score.paired = a->paired_bs ? "bs" : a->paired_ar ? "ar" : "";
    const bool tokenize_given = tokenize->count() > 0;
    run = [a, tokenize_given] {
      if (!a->test_set.empty())
        throw ConfigError("score: sacreBLEU's test sets (-t " + a->test_set +
                          ") need a download, which tern does not do: write the references to a file (sacrebleu -t " +
                          a->test_set + " -l SRC-TGT --echo ref > ref.txt) and give it: tern score ref.txt -i hyp.txt");
      auto lower = [](std::string s) {  // Python's codec names and SACREBLEU_FORMAT ignore case
        std::transform(s.begin(), s.end(), s.begin(), [](unsigned char ch) { return std::tolower(ch); });
        return s;
      };
      const std::string enc = lower(a->encoding);
      if (enc != "utf-8" && enc != "utf8" && enc != "utf_8" && enc != "u8")
        throw ConfigError("score: --encoding " + a->encoding + ": tern reads UTF-8 text only (convert the files with " +
                          "iconv -f " + a->encoding + " -t UTF-8)");
      // As sacreBLEU: the environment's format wins when it names one.
      if (const char* env = std::getenv("SACREBLEU_FORMAT")) {
        const std::string f = lower(env);
        if (f == "json" || f == "text" || f == "latex") a->score.format = f;
      }
      if (!a->language_pair.empty()) set_language_pair(a->score, a->language_pair, tokenize_given);
      std::cout << score_files(a->inputs, a->refs, a->score, std::cin) << std::flush;
    };
  });
}

void add_ngram(CLI::App& app, CommandContext&, std::function<void()>& run) {
  auto a = std::make_shared<NgramRunOptions>();
  auto* c = app.add_subcommand("ngram", "n-gram language model baseline: estimate, write ARPA, perplexity like KenLM");
  c->add_option("--order", a->ngram.order, "1..5")->check(kInteger);
  c->add_option("--smoothing", a->ngram.smoothing, "laplace | add-k | interpolated | katz | kneser-ney");
  c->add_option("--gt-max", a->ngram.katz_max_count, "katz: counts up to this get Good-Turing discounts")
      ->check(kInteger);
  auto cutoff = std::make_shared<std::string>();
  c->add_option("--cutoff", *cutoff, "Minimum count per order, e.g. 1,1,2 (later orders repeat the last)");
  c->add_option("--prune", a->ngram.prune,
                "Relative-entropy pruning (Stolcke): drop n-grams whose removal raises perplexity by less than this")
      ->check(kFiniteNumber);
  c->add_option("--k", a->ngram.add_k, "add-k constant")->check(kFiniteNumber);
  c->add_option("--train", a->train, "Whitespace-tokenized text, or a tern corpus (.h5)")->required();
  c->add_option("--test", a->test, "Text to score (a .h5 corpus: its --test-split)")->required();
  c->add_option("--heldout", a->heldout,
                "interpolated: text that tunes the weights (default: every 10th training line)");
  c->add_option("--train-split", a->train_split, "Split of a .h5 --train");
  c->add_option("--test-split", a->test_split, "Split of a .h5 --test");
  c->add_option("--heldout-split", a->heldout_split, "Split of a .h5 --heldout");
  c->add_option("--side", a->side, "Side of a .h5 corpus (default: text, or tgt for a parallel corpus)");
  c->add_option("--arpa", a->arpa, "Write the model here in ARPA format");
  c->add_option("--sentence-scores", a->sentence_scores, "Write each test sentence's total log10 probability here");
  c->add_flag("--overwrite", a->overwrite, kOverwriteHelp);
  c->add_option("-f,--format", a->format, "text | json");
  c->add_flag("--discount-fallback", a->ngram.discount_fallback,
              "kneser-ney: discounts 0.5 1 1.5 for an order whose counts of counts cannot give them (as KenLM)");
  c->add_option("--unit", a->unit, "word | char (characters, a space as \"\u2581\"; perplexity per character)");
  c->callback([a, cutoff, &run] {
    run = [a, cutoff] {
      if (!cutoff->empty()) a->ngram.cutoffs = parse_cutoffs(*cutoff);
      std::cout << run_ngram(*a) << std::flush;
    };
  });
}

void add_average(CLI::App& app, CommandContext&, std::function<void()>& run) {
  struct Args {
    std::vector<std::string> inputs;
    AverageOptions avg;
  };
  auto a = std::make_shared<Args>();
  auto* c = app.add_subcommand("average", "Average the parameters of checkpoints of one run (evaluate/translate it)");
  c->add_option("inputs", a->inputs, "Checkpoint files, or with --last N or --best N the run directory")->required();
  c->add_option("--last", a->avg.last, "Average the newest N step checkpoints of RUN_DIR")->check(kInteger);
  c->add_option("--best", a->avg.best,
                "Average the N best validated step checkpoints of RUN_DIR (those train.keep_best kept; fairseq's "
                "--keep-best-checkpoints then averaging)")
      ->check(kInteger);
  c->add_option("--out", a->avg.out, "The averaged checkpoint (.tern)")->required();
  c->add_flag("--overwrite", a->avg.overwrite, kOverwriteHelp);
  c->callback([a, c, &run] {
    run = [a, c] {
      for (const auto& [flag, n] : {std::pair<const char*, int64_t>{"--last", a->avg.last}, {"--best", a->avg.best}})
        if (c->count(flag) && n < 1) throw ConfigError(fmt::format("average: {} must be >= 1 (got {})", flag, n));
      if (a->avg.last != 0 || a->avg.best != 0) {
        if (a->inputs.size() != 1)
          throw ConfigError(fmt::format("average {} N takes one run directory (got {} arguments)",
                                        a->avg.last != 0 ? "--last" : "--best", a->inputs.size()));
        a->avg.run_dir = a->inputs[0];
      } else {
        a->avg.checkpoints = a->inputs;
      }
      AverageResult r = average_checkpoints(a->avg);
      std::string scores;  // --best: "; valid bleu 14.2, 13.9, 13.8"
      for (size_t i = 0; i < r.scores.size(); ++i)
        scores += fmt::format("{}{:.4g}", i == 0 ? fmt::format("; valid {} ", r.metric) : ", ", r.scores[i]);
      logf("averaged {} checkpoints (newest step {}{}) into {}", r.inputs.size(), r.step, scores, a->avg.out);
    };
  });
}

void add_shortlist(CLI::App& app, CommandContext&, std::function<void()>& run) {
  struct Args {
    std::vector<std::string> corpus;
    std::string out;
    bool overwrite = false;
    ShortlistOptions opt;
  };
  auto a = std::make_shared<Args>();
  auto* c = app.add_subcommand(
      "shortlist",
      "A lexical shortlist for translate/evaluate --shortlist (IBM Model 1 over a corpus's training pairs)");
  c->add_option("--data", a->corpus, "HDF5 parallel corpus (several files: its parts, in order)")
      ->required()
      ->check(kFileName);
  c->add_option("--out", a->out, "The shortlist file")->required()->check(kFileName);
  c->add_option("--first", a->opt.first, "The most frequent target tokens, candidates in every batch (default 100)")
      ->check(kInteger);
  c->add_option("--best", a->opt.best,
                "The most likely translations kept per source token (default 100; fewer: faster)")
      ->check(kInteger);
  c->add_option("--iters", a->opt.iterations, "EM iterations of IBM Model 1 (default 5)")->check(kInteger);
  c->add_option("--max-sentences", a->opt.max_sentences,
                "Pairs read at most, evenly spread over the split (default 1000000)")
      ->check(kInteger);
  c->add_option("--split", a->opt.split, "The corpus split it learns from (default train)");
  c->add_option("--threads", a->opt.threads, "Threads of the EM iterations (0: every core; the same shortlist)")
      ->check(kInteger);
  c->add_flag("--overwrite", a->overwrite, kOverwriteHelp);
  c->callback([a, &run] {
    run = [a] {
      a->opt.validate();
      std::vector<NamedPath> inputs;
      for (const auto& p : a->corpus) inputs.push_back({"--data", p});
      check_outputs({{"--out", a->out}}, inputs, a->overwrite);
      set_threads(0);
      const CorpusReader corpus(a->corpus);
      a->opt.progress = true;
      const Shortlist s = build_shortlist(corpus, a->opt);
      save_shortlist(s, a->out);
      int64_t listed = 0;
      for (const auto& t : s.translations) listed += t.empty() ? 0 : 1;
      logf(
          "shortlist: {} ({} pairs, {} EM iterations): {} frequent target tokens, up to {} translations for each of "
          "{} source tokens",
          a->out, s.sentences, s.iterations, s.frequent.size(), s.best, listed);
    };
  });
}

void add_encode(CLI::App& app, CommandContext&, std::function<void()>& run) {
  auto o = std::make_shared<EncodeOptions>();
  auto* c = app.add_subcommand(
      "encode", "Text in a corpus's SentencePiece pieces, a line a line (to train vectors for train.*_embeddings)");
  c->add_option("--corpus", o->corpus, "HDF5 corpus whose vocabulary encodes (several files: its parts)")
      ->required()
      ->check(kFileName);
  c->add_option("--side", o->side, "Its vocabulary: src or tgt (a parallel corpus), text (a monolingual one)");
  c->add_option("-i,--input", o->input, "Text to encode (default: stdin; .gz read as such)");
  c->add_option("-o,--output", o->output, "Where the pieces go (default: stdout; .gz written compressed)");
  c->add_flag("--overwrite", o->overwrite, kOverwriteHelp);
  c->callback([o, &run] {
    run = [o] {
      const int64_t lines = encode_text(*o, std::cout);
      if (!is_standard_stream(o->output)) logf("encode: {} lines into {}", lines, o->output);
    };
  });
}

void add_report(CLI::App& app, CommandContext&, std::function<void()>& run) {
  auto o = std::make_shared<ReportOptions>();
  auto* c = app.add_subcommand(
      "report", "Self-contained HTML report of a run directory, or of several compared (+ report.json, report.md)");
  c->add_option("run_dirs", o->run_dirs,
                "train.run_dir of a tern train run; several: one page comparing them (settings that differ, curves, "
                "evaluations, paired bootstrap against the first)")
      ->required();
  c->add_option("--out", o->out_dir, "Output directory (default: RUN_DIR/report; required for several runs)");
  c->add_flag("--overwrite", o->overwrite,
              "Replace report.html/json/md in --out that are not an earlier tern report (one is always replaced)");
  c->callback([o, &run] {
    run = [o] {
      ReportFiles f = write_report(*o);
      std::cout << f.html << "\n" << f.json << "\n" << f.markdown << std::endl;
    };
  });
}

void add_bench(CLI::App& app, CommandContext& ctx, std::function<void()>& run) {
  auto o = std::make_shared<AllreduceBenchOptions>();
  auto out = std::make_shared<std::string>();
  auto overwrite = std::make_shared<bool>(false);  // --overwrite of each subcommand's --json
  auto* bench = app.add_subcommand("bench", "Benchmarks (run under mpirun for several ranks)");
  bench->require_subcommand(1);
  auto* c = bench->add_subcommand("allreduce", "All-reduce bandwidth of the active backend vs plain MPI_Allreduce");
  c->add_option("--sizes", o->sizes_bytes, "Message sizes in bytes")->check(kInteger);
  c->add_option("--iters", o->iterations, "Timed iterations per size")->check(kInteger);
  c->add_option("--json", *out, "Also write the rows here");
  c->add_flag("--overwrite", *overwrite, kOverwriteHelp);
  c->callback([o, out, overwrite, &ctx, &run] {
    run = [o, out, overwrite, &ctx] {
      check_outputs({{"--json", *out}}, {}, *overwrite);
      o->cuda = resolve_device_kind(DeviceRequest::kAuto, "bench allreduce") == DeviceKind::kCuda;
      DistributedConfig cfg;
      ctx.comm = make_communicator(cfg, o->cuda);
      set_threads(0, ctx.comm->local_size());
      nlohmann::json rows = bench_allreduce(*ctx.comm, *o);
      if (ctx.comm->rank() != 0) return;
      std::cout << allreduce_table(rows, ctx.comm->world(), ctx.comm->backend()) << std::flush;
      if (!out->empty()) write_file_atomic(*out, rows.dump(2) + "\n");
    };
  });

  struct TrainArgs {
    std::string config, json;
    std::vector<std::string> set;
    TrainBenchOptions bench;
  };
  auto t = std::make_shared<TrainArgs>();
  auto* tr =
      bench->add_subcommand("train", "Training tokens/s and step-time breakdown per precision, synthetic batches");
  tr->add_option("config", t->config, "YAML config (its model, train.device and distributed sections)")->required();
  tr->add_option("--set", t->set, "Override a config key: section.key=value (repeatable)");
  tr->add_option("--precisions", t->bench.precisions, "fp32 fp16 bf16 (each measured in turn)");
  tr->add_option("--batch", t->bench.batch, "Sentences per rank and step")->check(kInteger);
  tr->add_option("--src-len", t->bench.src_len, "Source tokens per sentence")->check(kInteger);
  tr->add_option("--tgt-len", t->bench.tgt_len, "Target tokens per sentence")->check(kInteger);
  tr->add_option("--src-vocab", t->bench.src_vocab)->check(kInteger);
  tr->add_option("--tgt-vocab", t->bench.tgt_vocab)->check(kInteger);
  tr->add_option("--warmup", t->bench.warmup, "Untimed steps first")->check(kInteger);
  tr->add_option("--steps", t->bench.steps, "Timed steps")->check(kInteger);
  tr->add_option("--json", t->json, "Also write the rows here");
  tr->add_flag("--overwrite", *overwrite, kOverwriteHelp);
  tr->callback([t, overwrite, &ctx, &run] {
    run = [t, overwrite, &ctx] {
      check_outputs({{"--json", t->json}}, {{"config", t->config}}, *overwrite);
      Config cfg = load_config(t->config, t->set);
      t->bench.cuda = resolve_device_kind(cfg.train.device, cfg.source + ": train.device") == DeviceKind::kCuda;
      t->bench.model = cfg.model;
      t->bench.bucket_mb = cfg.distributed.bucket_mb;
      t->bench.lr = cfg.optim.lr;
      t->bench.validate();
      ctx.comm = make_communicator(cfg.distributed, t->bench.cuda);
      set_threads(cfg.train.threads, ctx.comm->local_size());
      nlohmann::json rows = bench_train(*ctx.comm, t->bench);
      if (ctx.comm->rank() != 0) return;
      std::cout << train_bench_table(rows, t->bench, ctx.comm->world(), ctx.comm->backend()) << std::flush;
      if (!t->json.empty()) write_file_atomic(t->json, rows.dump(2) + "\n");
    };
  });

  auto tb = std::make_shared<TranslateBenchOptions>();
  auto tb_json = std::make_shared<std::string>();
  auto* tl = bench->add_subcommand(
      "translate", "Decoding sentences/s and tokens/s of a checkpoint per beam and batch size, on a corpus split");
  tl->add_option("--checkpoint", tb->checkpoint, "Seq2seq checkpoint (.tern)")->required();
  tl->add_option("--data", tb->corpus, "HDF5 corpus with the checkpoint's vocabularies (or its parts)")->required();
  tl->add_option("--split", tb->split, "Split to translate");
  tl->add_option("--beams", tb->beams, "Beam sizes, each measured in turn")->check(kInteger);
  tl->add_option("--batches", tb->batches, "Sentences decoded together, each measured in turn")->check(kInteger);
  tl->add_option("--limit", tb->limit, "Only the first N sentences")->check(kInteger);
  add_search_flags(tl, tb->decode);
  add_choice<Precision>(tl, "--precision", tb->precision, "Compute precision (default: the checkpoint's)");
  add_choice<DeviceRequest>(tl, "--device", tb->device, "Device (auto: CUDA when present)");
  tl->add_option("--json", *tb_json, "Also write the rows here");
  tl->add_flag("--overwrite", *overwrite, kOverwriteHelp);
  tl->callback([tb, tb_json, overwrite, &run] {
    run = [tb, tb_json, overwrite] {
      std::vector<NamedPath> inputs = {
          {"--checkpoint", tb->checkpoint}, {"--shortlist", tb->decode.shortlist}, {"--lm", tb->decode.lm}};
      for (const std::string& part : tb->corpus) inputs.push_back({"--data", part});
      check_outputs({{"--json", *tb_json}}, inputs, *overwrite);
      set_threads(0);
      nlohmann::json rows = bench_translate(*tb);
      std::cout << translate_bench_table(rows, *tb) << std::flush;
      if (!tb_json->empty()) write_file_atomic(*tb_json, rows.dump(2) + "\n");
    };
  });
}

}  // namespace

void register_commands(CLI::App& app, CommandContext& ctx, std::function<void()>& run) {
  add_prepare(app, ctx, run);
  add_train(app, ctx, run);
  add_evaluate(app, ctx, run);
  add_translate(app, ctx, run);
  add_generate(app, ctx, run);
  add_score(app, ctx, run);
  add_ngram(app, ctx, run);
  add_report(app, ctx, run);
  add_average(app, ctx, run);
  add_shortlist(app, ctx, run);
  add_encode(app, ctx, run);
  add_bench(app, ctx, run);
}

}  // namespace tern
