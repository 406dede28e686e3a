#include <fmt/format.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "core/hash.h"
#include "data/corpus.h"
#include "data/prepare.h"
#include "data/tokenizer.h"
#include "test_util.h"

namespace tern {

namespace {
struct Fixture {
  test::TempDir d;
  PrepareOptions o;
  explicit Fixture(int n = 400) {
    auto src = test::synthetic_sentences(n, 1);
    test::write_lines(d.file("train.en"), src);
    test::write_lines(d.file("train.es"), test::synthetic_translation(src));
    o.train_src = {d.file("train.en")};
    o.train_tgt = {d.file("train.es")};
    o.valid_fraction = 0.1;
    o.test_fraction = 0.1;
    o.tokenizer.vocab_size = 60;
    o.out = d.file("out.h5");
    o.progress = false;
  }
};
}  // namespace

TEST(Prepare, ParallelWithSeededSplit) {
  Fixture f;
  PrepareResult r = prepare_corpus(f.o);
  EXPECT_EQ(r.splits["train"].lines + r.splits["valid"].lines + r.splits["test"].lines, 400);
  EXPECT_GT(r.splits["valid"].kept, 10);
  CorpusReader c(f.o.out);
  EXPECT_EQ(c.num_sentences("valid"), r.splits["valid"].kept);
  EXPECT_LE(c.vocab("src").size, 60);
  // Token ids decode back to the text (SentencePiece is lossless on this ASCII text).
  Tokenizer tgt(c.vocab("tgt").model_proto, "tgt");
  TokenBlock b = c.read("train", "tgt", 0, 1);
  std::string first = tgt.decode(b.sentence(0));
  auto lines = test::read_lines(f.d.file("train.es"));
  EXPECT_NE(std::find(lines.begin(), lines.end(), first), lines.end()) << first;
  // Same seed, same split.
  Fixture g;
  g.o.out = g.d.file("again.h5");
  PrepareResult r2 = prepare_corpus(g.o);
  EXPECT_EQ(r2.splits["valid"].kept, r.splits["valid"].kept);
}

TEST(Prepare, CountsHeldOutSentencesThatOccurInTrain) {
  Fixture f;
  f.o.valid_fraction = f.o.test_fraction = 0;
  // A test split of 3 training pairs, 2 training sources with another target, and 5 unseen pairs.
  auto src = test::read_lines(f.o.train_src[0]), tgt = test::read_lines(f.o.train_tgt[0]);
  auto fresh = test::synthetic_sentences(5, 99);
  std::vector<std::string> test_src{src[0], src[1], src[2], src[3], src[4]}, test_tgt{tgt[0], tgt[1], tgt[2], "x", "y"};
  for (const auto& s : fresh) test_src.push_back(s + " unseen"), test_tgt.push_back(s);
  test::write_lines(f.d.file("test.en"), test_src);
  test::write_lines(f.d.file("test.es"), test_tgt);
  f.o.test_src = {f.d.file("test.en")};
  f.o.test_tgt = {f.d.file("test.es")};
  PrepareResult r = prepare_corpus(f.o);
  EXPECT_EQ(r.splits["test"].in_train_src, 5);
  EXPECT_EQ(r.splits["test"].in_train_pair, 3);
  EXPECT_EQ(r.splits["train"].in_train_src, 0);
  const auto stats = nlohmann::json::parse(CorpusReader(f.o.out).attr("filter_stats"));
  EXPECT_EQ(stats["test"]["in_train_src"], 5);
  EXPECT_EQ(stats["test"]["in_train_pair"], 3);
  EXPECT_FALSE(stats["train"].contains("in_train_src"));
}

TEST(Prepare, LineCountMismatchNamesBothFiles) {
  Fixture f;
  test::write_lines(f.d.file("short.es"), {"uno", "dos"});
  f.o.train_tgt = {f.d.file("short.es")};
  std::string e = test::error_of([&] { prepare_corpus(f.o); });
  EXPECT_NE(e.find("train.en has 400 lines but"), std::string::npos) << e;
  EXPECT_NE(e.find("short.es has 2 lines"), std::string::npos) << e;
  EXPECT_FALSE(std::filesystem::exists(f.o.out));
}

TEST(Prepare, InvalidUtf8NamesFileAndLine) {
  Fixture f;
  auto lines = test::read_lines(f.o.train_tgt[0]);
  lines[6] = "caf\xe9 latin-1";
  test::write_lines(f.o.train_tgt[0], lines);
  std::string e = test::error_of([&] { prepare_corpus(f.o); });
  EXPECT_NE(e.find("train.es:7: invalid UTF-8"), std::string::npos) << e;
  EXPECT_FALSE(std::filesystem::exists(f.o.out));
}

TEST(Prepare, EmptyLinesDroppedAndCountedOrRefused) {
  Fixture f;
  auto lines = test::read_lines(f.o.train_src[0]);
  lines[3] = "   ";
  lines[10] = "";
  test::write_lines(f.o.train_src[0], lines);
  f.o.valid_fraction = f.o.test_fraction = 0;
  PrepareResult r = prepare_corpus(f.o);
  EXPECT_EQ(r.splits["train"].dropped_empty, 2);
  EXPECT_EQ(r.splits["train"].kept, 398);
  f.o.empty_policy = "error";
  f.o.out = f.d.file("strict.h5");
  std::string e = test::error_of([&] { prepare_corpus(f.o); });
  EXPECT_NE(e.find("train.en:4: empty line"), std::string::npos) << e;
  EXPECT_FALSE(std::filesystem::exists(f.o.out));
}

TEST(Prepare, LongSentencePolicies) {
  Fixture f;
  f.o.valid_fraction = f.o.test_fraction = 0;
  f.o.max_tokens = 25;
  PrepareResult dropped = prepare_corpus(f.o);
  EXPECT_GT(dropped.splits["train"].dropped_long, 0);
  EXPECT_GT(dropped.splits["train"].kept, 0);
  EXPECT_EQ(dropped.splits["train"].kept + dropped.splits["train"].dropped_long, 400);
  f.o.long_policy = "truncate";
  f.o.out = f.d.file("trunc.h5");
  PrepareResult trunc = prepare_corpus(f.o);
  EXPECT_EQ(trunc.splits["train"].kept, 400);
  EXPECT_EQ(trunc.splits["train"].truncated, dropped.splits["train"].dropped_long);
  CorpusReader c(f.o.out);
  TokenBlock b = c.read("train", "src", 0, c.num_sentences("train"));
  for (size_t i = 0; i < b.size(); ++i) EXPECT_LE(b.length(i), 25);
  f.o.long_policy = "error";
  f.o.out = f.d.file("err.h5");
  std::string e = test::error_of([&] { prepare_corpus(f.o); });
  EXPECT_NE(e.find("more than max_tokens 25"), std::string::npos) << e;
}

// --max-ratio R: training pairs whose lengths differ by more than R times are dropped and counted; held-out pairs
// are kept whatever their ratio; the option's rules.
TEST(Prepare, LengthRatioFilterDropsTrainingPairsOnly) {
  Fixture f;
  auto tgt = test::read_lines(f.o.train_tgt[0]);
  for (int i : {3, 17, 250}) tgt[i] = fmt::format("{0} {0} {0} {0} {0} {0} {0} {0}", tgt[i]);  // misaligned: 8x
  test::write_lines(f.o.train_tgt[0], tgt);
  f.o.max_tokens = 10000;
  const PrepareResult all = prepare_corpus(f.o);
  f.o.max_ratio = 20, f.o.overwrite = true;  // the fixture's targets have ~5x the source's pieces, these ~40x
  const PrepareResult cut = prepare_corpus(f.o);
  const int64_t held_out = all.splits.at("valid").kept + all.splits.at("test").kept;
  EXPECT_EQ(cut.splits.at("valid").kept + cut.splits.at("test").kept, held_out) << "held-out pairs are never cut";
  const int64_t dropped = cut.splits.at("train").dropped_ratio;
  EXPECT_GE(dropped, 1);
  EXPECT_LE(dropped, 3);
  EXPECT_EQ(cut.splits.at("train").kept, all.splits.at("train").kept - dropped);
  EXPECT_EQ(all.splits.at("train").dropped_ratio, 0);
  const auto stats = nlohmann::json::parse(CorpusReader(f.o.out).attr("filter_stats"));
  EXPECT_EQ(stats["train"]["dropped_ratio"].get<int64_t>(), dropped);
  for (double bad : {0.5, -1.0, 2000.0}) {
    f.o.max_ratio = bad;
    EXPECT_NE(test::error_of([&] { prepare_corpus(f.o); }).find("--max-ratio must be 0 (off) or in [1, 1000]"),
              std::string::npos);
  }
}

TEST(Prepare, ExistingOutputIsNotOverwritten) {
  Fixture f;
  test::write_lines(f.o.out, {"precious"});
  std::string e = test::error_of([&] { prepare_corpus(f.o); });
  EXPECT_NE(e.find("output exists"), std::string::npos) << e;
  EXPECT_EQ(test::read_lines(f.o.out), std::vector<std::string>{"precious"});
}

TEST(Prepare, BadOptionsAreRejected) {
  Fixture f;
  f.o.long_policy = "shorten";
  EXPECT_NE(test::error_of([&] { prepare_corpus(f.o); }).find("--long-policy must be drop, truncate or error"),
            std::string::npos);
  Fixture g;
  g.o.train_tgt.clear();
  EXPECT_NE(test::error_of([&] { prepare_corpus(g.o); }).find("--train-src and --train-tgt"), std::string::npos);
}

TEST(Prepare, MonolingualCorpus) {
  Fixture f;
  PrepareOptions o;
  o.train_text = f.o.train_src;
  o.valid_fraction = 0.1;
  o.tokenizer.vocab_size = 50;
  o.out = f.d.file("lm.h5");
  o.progress = false;
  prepare_corpus(o);
  CorpusReader c(o.out);
  EXPECT_EQ(c.kind(), "monolingual");
  EXPECT_EQ(c.sides(), std::vector<std::string>{"text"});
  EXPECT_GT(c.num_sentences("valid"), 0);
}

// --byte-fallback: a character never seen in training encodes to byte pieces (no <unk>) and decodes back.
TEST(Prepare, ByteFallbackKeepsUnseenCharacters) {
  Fixture f;
  f.o.tokenizer.byte_fallback = true;
  f.o.tokenizer.vocab_size = 60;
  EXPECT_NE(test::error_of([&] { prepare_corpus(f.o); }).find("--byte-fallback needs --vocab-size above 260"),
            std::string::npos);
  f.o.tokenizer.vocab_size = 320;
  prepare_corpus(f.o);
  CorpusReader c(f.o.out);
  Tokenizer fallback(c.vocab("tgt").model_proto, "tgt");
  const std::string unseen = "stra\u00dfe \u00e6on";  // neither character is in the synthetic training text
  auto ids = fallback.encode(unseen);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), kUnkId), 0);
  EXPECT_EQ(fallback.decode(ids), unseen);
  Fixture g;  // without byte fallback the same text has <unk>s
  g.o.tokenizer.vocab_size = 60;
  prepare_corpus(g.o);
  Tokenizer plain(CorpusReader(g.o.out).vocab("tgt").model_proto, "tgt");
  auto plain_ids = plain.encode(unseen);
  EXPECT_GT(std::count(plain_ids.begin(), plain_ids.end(), kUnkId), 0);
}

// --user-symbols: tags stay one piece wherever they occur (in every model prepare trains) and decode back; without
// them the tag is not a piece (here <unk>: its brackets never occur in the text). Symbols with whitespace, commas or
// repeats, and reused models, are refused.
TEST(Prepare, UserSymbolsStayWhole) {
  Fixture f;
  auto src = test::read_lines(f.o.train_src[0]);
  for (size_t i = 0; i < src.size(); i += 2) src[i] = "<BT> " + src[i];  // tagged back-translation
  test::write_lines(f.o.train_src[0], src);
  f.o.tokenizer.user_symbols = {"<BT>", "<2es>"};
  prepare_corpus(f.o);
  CorpusReader c(f.o.out);
  for (const char* side : {"src", "tgt"}) {
    Tokenizer t(c.vocab(side).model_proto, side);
    const std::string text = "<BT> " + src[1] + "<2es>king";
    const auto ids = t.encode(text);
    for (const char* sym : {"<BT>", "<2es>"})
      EXPECT_EQ(std::count_if(ids.begin(), ids.end(), [&](int32_t id) { return t.piece(id) == sym; }), 1)
          << side << " " << sym;
    EXPECT_EQ(t.decode(ids), text);
  }
  // The training sentences hold the tag as one token.
  Tokenizer src_tok(c.vocab("src").model_proto, "src");
  int64_t tagged = 0, n = c.num_sentences("train");
  TokenBlock b = c.read("train", "src", 0, n);
  for (int64_t i = 0; i < n; ++i)
    for (int32_t id : b.sentence(i)) tagged += src_tok.piece(id) == "<BT>";
  EXPECT_GT(tagged, n / 3);
  Fixture g;  // without the option the tag is split
  g.o.tokenizer.vocab_size = 60;
  prepare_corpus(g.o);
  Tokenizer plain(CorpusReader(g.o.out).vocab("src").model_proto, "src");
  const auto plain_ids = plain.encode("<BT> king");  // '<' and '>' are not in the training text: <unk>
  EXPECT_EQ(std::count_if(plain_ids.begin(), plain_ids.end(), [&](int32_t id) { return plain.piece(id) == "<BT>"; }),
            0);
  EXPECT_NE(plain.decode(plain_ids), "<BT> king");

  for (const auto& [symbols, rule] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"<a b>"}, "contains U+0020"},
           {{"<a,b>"}, "contains a comma"},
           {{""}, "must be 1-256 bytes"},
           {{"<BT>", "<BT>"}, "'<BT>' is given twice"},
           {{"</s>"}, "is a special piece already"},
           {std::vector<std::string>(56, "x"), "leave no room in --vocab-size 60"}}) {
    Fixture h;
    h.o.tokenizer.user_symbols = symbols;
    const std::string e = test::error_of([&] { prepare_corpus(h.o); });
    EXPECT_NE(e.find(rule), std::string::npos) << e;
    EXPECT_FALSE(std::filesystem::exists(h.o.out)) << rule;
  }
  Fixture r;
  r.o.vocab_from = f.o.out;
  r.o.out = r.d.file("part2.h5");
  r.o.tokenizer.user_symbols = {"<BT>"};
  EXPECT_NE(test::error_of([&] { prepare_corpus(r.o); }).find("reuse models as they are"), std::string::npos);
}

// Tokens' words (translate --alignment): each token of encode/decode names the space-separated word its characters
// belong to, byte pieces and <unk> included; bos/eos get -1; decoding gives the text and words of the encoding.
TEST(Prepare, TokensKnowTheirWords) {
  Fixture f;
  f.o.tokenizer.vocab_size = 320, f.o.tokenizer.byte_fallback = true;
  prepare_corpus(f.o);
  Tokenizer fallback(CorpusReader(f.o.out).vocab("tgt").model_proto, "tgt");
  Fixture g;
  prepare_corpus(g.o);
  Tokenizer plain(CorpusReader(g.o.out).vocab("tgt").model_proto, "tgt");
  const std::string text = "stra\u00dfe \u00e6on the\u00e6 x";  // unseen characters: byte pieces or <unk>
  for (const Tokenizer* t : {&fallback, &plain}) {
    std::vector<int32_t> words;
    const std::vector<int32_t> ids = t->encode(text, words);
    EXPECT_EQ(ids, t->encode(text));
    ASSERT_EQ(words.size(), ids.size());
    EXPECT_EQ(words.front(), 0);
    EXPECT_EQ(words.back(), 3);
    for (size_t i = 1; i < words.size(); ++i) EXPECT_TRUE(words[i] == words[i - 1] || words[i] == words[i - 1] + 1);
    if (t == &fallback)  // each word's tokens decode to that word
      for (int32_t w = 0; w < 4; ++w) {
        std::vector<int32_t> part;
        for (size_t i = 0; i < ids.size(); ++i)
          if (words[i] == w) part.push_back(ids[i]);
        const std::string expect[] = {"stra\u00dfe", "\u00e6on", "the\u00e6", "x"};
        EXPECT_EQ(t->decode(part), expect[w]);
      }
    std::vector<int32_t> with_specials{kBosId};
    with_specials.insert(with_specials.end(), ids.begin(), ids.end());
    with_specials.push_back(kEosId);
    std::vector<int32_t> back;
    EXPECT_EQ(t->decode(with_specials, back), t->decode(ids));
    ASSERT_EQ(back.size(), with_specials.size());
    EXPECT_EQ(back.front(), -1);
    EXPECT_EQ(back.back(), -1);
    // The words of the decoded text: the encoding's, or more where <unk> decodes to " \u2047 " (a word of its own).
    const std::string out = t->decode(ids);
    std::istringstream split(out);
    int32_t count = 0;
    for (std::string w; split >> w;) ++count;
    EXPECT_EQ(back.end()[-2], count - 1) << out;
    if (t == &fallback) {
      EXPECT_EQ(std::vector<int32_t>(back.begin() + 1, back.end() - 1), words);
    }
  }
  std::vector<int32_t> words;  // extra spaces separate words like one; so do Unicode spaces (as Python's split())
  plain.encode("ab  \tcd", words);
  EXPECT_EQ(words.back(), 1);
  plain.encode("ab\u00a0cd\u3000e\u2009f", words);
  EXPECT_EQ(words.back(), 3);
}

namespace {
// Every split's sentences, line numbers and counts, and the filter statistics: what two preparations must share.
std::string corpus_contents(const std::string& path) {
  CorpusReader c(path);
  std::string out = c.identity() + "|" + c.attr("filter_stats");
  for (const auto& split : c.splits()) {
    out += fmt::format("|{} lines {}", split, c.source_lines(split));
    for (int64_t l : c.line_numbers(split)) out += fmt::format(",{}", l);
    for (const auto& side : c.sides()) {
      TokenBlock b = c.read(split, side, 0, c.num_sentences(split));
      for (int64_t o : b.offsets) out += fmt::format(",{}", o);
      for (int32_t t : b.tokens) out += fmt::format(" {}", t);
    }
  }
  return out;
}

// The fixture's lines with an empty and an over-long pair mixed in (dropped, counted, never reordered).
Fixture mixed_fixture(int n) {
  Fixture f(n);
  auto src = test::read_lines(f.o.train_src[0]), tgt = test::read_lines(f.o.train_tgt[0]);
  src[5] = "";
  src[9] = std::string(400, 'x');
  test::write_lines(f.o.train_src[0], src);
  f.o.max_tokens = 40;
  return f;
}
}  // namespace

TEST(Prepare, ThreadsGiveTheSameCorpus) {
  // Several encoding blocks (4096 lines each), with held-out splits and dropped lines.
  Fixture f = mixed_fixture(9000);
  f.o.threads = 1;
  prepare_corpus(f.o);
  const std::string one = corpus_contents(f.o.out);
  for (int threads : {2, 5}) {
    f.o.threads = threads;
    f.o.overwrite = true;
    f.o.out = f.d.file(fmt::format("t{}.h5", threads));
    prepare_corpus(f.o);
    EXPECT_EQ(corpus_contents(f.o.out), one) << threads << " threads";
  }
}

TEST(Prepare, SeveralInputFilesReadAsTheirConcatenation) {
  Fixture f = mixed_fixture(5000);
  prepare_corpus(f.o);
  const std::string whole = corpus_contents(f.o.out);
  // The same lines in three files a side (cut at different places than the encoding blocks).
  const auto src = test::read_lines(f.o.train_src[0]), tgt = test::read_lines(f.o.train_tgt[0]);
  Fixture g(10);
  g.o.valid_fraction = f.o.valid_fraction, g.o.test_fraction = f.o.test_fraction, g.o.max_tokens = f.o.max_tokens;
  g.o.train_src.clear(), g.o.train_tgt.clear();
  const size_t cuts[] = {0, 1234, 4100, src.size()};
  for (int k = 0; k < 3; ++k) {
    const auto b = static_cast<std::ptrdiff_t>(cuts[k]), e = static_cast<std::ptrdiff_t>(cuts[k + 1]);
    test::write_lines(g.d.file(fmt::format("p{}.en", k)), {src.begin() + b, src.begin() + e});
    test::write_lines(g.d.file(fmt::format("p{}.es", k)), {tgt.begin() + b, tgt.begin() + e});
    g.o.train_src.push_back(g.d.file(fmt::format("p{}.en", k)));
    g.o.train_tgt.push_back(g.d.file(fmt::format("p{}.es", k)));
  }
  g.o.threads = 3;
  prepare_corpus(g.o);
  EXPECT_EQ(corpus_contents(g.o.out), whole);
  // An error names the file and its own line; file counts and pairs must agree.
  g.o.empty_policy = EmptyPolicy::kError;
  g.o.overwrite = true;
  std::string e = test::error_of([&] { prepare_corpus(g.o); });
  EXPECT_NE(e.find("p0.en:6: empty line"), std::string::npos) << e;
  g.o.empty_policy = EmptyPolicy::kDrop;
  g.o.train_tgt.pop_back();
  e = test::error_of([&] { prepare_corpus(g.o); });
  EXPECT_NE(e.find("--train-src has 3 file(s) but --train-tgt has 2"), std::string::npos) << e;
  g.o.train_tgt.push_back(g.o.train_tgt[0]);
  e = test::error_of([&] { prepare_corpus(g.o); });
  EXPECT_NE(e.find("p2.en has 900 lines but"), std::string::npos) << e;
  EXPECT_NE(e.find("p0.es has 1234 lines"), std::string::npos) << e;
  g.o.train_tgt.back() = g.d.file("p2.es");
  g.o.threads = -1;
  e = test::error_of([&] { prepare_corpus(g.o); });
  EXPECT_NE(e.find("--threads must be in [0, 1024]"), std::string::npos) << e;
}

}  // namespace tern
