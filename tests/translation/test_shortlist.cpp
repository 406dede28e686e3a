#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <set>

#include "core/errors.h"
#include "data/tokenizer.h"
#include "models/model.h"
#include "test_util.h"
#include "translation/decode.h"
#include "translation/shortlist.h"

namespace tern {

namespace {
// The synthetic corpus: each word w translated word by word as el_wo.
std::string make_corpus(const test::TempDir& d, int n) { return test::make_synthetic_corpus(d, n, 7, 80); }

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}
}  // namespace

// IBM Model 1 finds the word-by-word translation: for every source word that is one piece, its most likely
// translation is a piece of the word's translation; the lists are sorted, bounded and hold probabilities.
TEST(Shortlist, LearnsTheTranslationOfEachWord) {
  test::TempDir d;
  const std::string path = make_corpus(d, 400);
  CorpusReader corpus(path);
  ShortlistOptions opt;
  opt.first = 5, opt.best = 4;
  const Shortlist s = build_shortlist(corpus, opt);
  EXPECT_EQ(s.sentences, 400);
  EXPECT_EQ(s.frequent.size(), 5u);
  EXPECT_EQ(s.src_hash, corpus.vocab("src").hash);
  const Tokenizer src(corpus.vocab("src").model_proto, "src"), tgt(corpus.vocab("tgt").model_proto, "tgt");
  int checked = 0;
  for (const char* word : {"king", "water", "people", "father", "spirit", "night", "house", "earth"}) {
    const std::vector<int32_t> e = src.encode(word);
    if (e.size() != 1) continue;  // a word of several pieces: its pieces share the translation
    const auto& list = s.translations[static_cast<size_t>(e[0])];
    ASSERT_FALSE(list.empty()) << word;
    EXPECT_LE(list.size(), 4u);
    for (size_t k = 1; k < list.size(); ++k) EXPECT_GE(list[k - 1].second, list[k].second) << word;
    std::set<int32_t> best;
    for (const auto& [f, p] : list) {
      best.insert(f);
      EXPECT_TRUE(p >= 0 && p <= 1);
    }
    const std::vector<int32_t> pieces = tgt.encode(std::string("el_") + word + "o");
    EXPECT_NE(std::find(pieces.begin(), pieces.end(), list[0].first), pieces.end())
        << word << ": its most likely translation " << tgt.piece(list[0].first) << " is no piece of el_" << word << "o";
    ++checked;
  }
  EXPECT_GE(checked, 4) << "the test needs words that are one piece";
}

// The candidates of a batch: ids 0..3, the frequent ones and the translations of its source tokens, sorted, once
// each; a save/load round trip keeps everything; a corrupted, truncated or foreign file is refused with its rule.
TEST(Shortlist, CandidatesAndFile) {
  test::TempDir d;
  CorpusReader corpus(make_corpus(d, 200));
  ShortlistOptions opt;
  opt.first = 3, opt.best = 2, opt.iterations = 2;
  const Shortlist s = build_shortlist(corpus, opt);
  const torch::Tensor src = torch::tensor({{10, 11, 3}, {12, 0, 0}});
  const torch::Tensor c = s.candidates(src);
  std::set<int64_t> want{0, 1, 2, 3};
  for (int32_t f : s.frequent) want.insert(f);
  for (int e : {10, 11, 12})
    for (const auto& [f, p] : s.translations[static_cast<size_t>(e)]) want.insert(f);
  EXPECT_EQ(std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()),
            std::vector<int64_t>(want.begin(), want.end()));

  const std::string file = d.file("lex.bin");
  save_shortlist(s, file);
  const Shortlist back = load_shortlist(file);
  EXPECT_EQ(back.frequent, s.frequent);
  EXPECT_EQ(back.translations, s.translations);
  EXPECT_EQ(back.tgt_hash, s.tgt_hash);
  EXPECT_EQ(back.iterations, 2);
  EXPECT_NO_THROW(back.check_vocab(s.src_hash, s.src_vocab, s.tgt_hash, s.tgt_vocab, file, "m.tern"));
  EXPECT_NE(test::error_of([&] {
              back.check_vocab(s.src_hash, s.src_vocab, "0123", s.tgt_vocab, file, "m.tern");
            }).find("m.tern uses"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] {
              back.check_vocab(s.src_hash, s.src_vocab, s.tgt_hash, 9, file, "m.tern");
            }).find("but m.tern has"),
            std::string::npos);

  const std::string good = read_bytes(file);
  std::string flipped = good;
  flipped[good.size() / 2] ^= 0x20;
  write_bytes(file, flipped);
  EXPECT_NE(test::error_of([&] { load_shortlist(file); }).find("checksum mismatch"), std::string::npos);
  write_bytes(file, good.substr(0, good.size() - 20));
  EXPECT_THROW(load_shortlist(file), DataError);
  write_bytes(file, "hello\n");
  EXPECT_NE(test::error_of([&] { load_shortlist(file); }).find("not a tern shortlist"), std::string::npos);
  std::string newer = good;
  newer[8] = 9;  // the version field
  write_bytes(file, newer);
  EXPECT_NE(test::error_of([&] { load_shortlist(file); }).find("format version 9"), std::string::npos);
  EXPECT_THROW(load_shortlist(d.file("missing.bin")), DataError);
  // Files with a valid checksum but values a build never writes (a hand-made or foreign writer's).
  const auto refused = [&](Shortlist bad, const std::string& rule) {
    save_shortlist(bad, file);
    EXPECT_NE(test::error_of([&] { load_shortlist(file); }).find(rule), std::string::npos) << rule;
  };
  Shortlist huge = s;
  huge.src_vocab = (1LL << 31) - 1;  // no list for most ids: refused before 2^31 lists are made
  refused(huge, "cannot hold the lists of 2147483647 source tokens");
  Shortlist outside = s;
  outside.translations[10] = {{static_cast<int32_t>(s.tgt_vocab), 0.5f}};
  refused(outside, "outside the target vocabulary");
  Shortlist improbable = s;
  improbable.translations[10] = {{10, 1.5f}};
  refused(improbable, "is not a probability");
  Shortlist special = s;
  special.translations[2] = {{10, 0.5f}};
  refused(special, "source token 2 has 1 translations");
  Shortlist more = s;
  more.frequent.assign(static_cast<size_t>(s.first) + 1, 10);
  refused(more, "frequent tokens for first");
  ShortlistOptions bad;
  bad.best = 0;
  EXPECT_NE(test::error_of([&] { bad.validate(); }).find("--best must be in"), std::string::npos);
}

namespace {
std::shared_ptr<SequenceModelImpl> tiny_model(bool input_feeding) {
  torch::manual_seed(3);
  ModelConfig c;
  c.embedding = c.hidden = 16, c.src_vocab = 20, c.tgt_vocab = 30, c.dropout = 0, c.input_feeding = input_feeding;
  auto m = build_model(c);
  m->eval();
  return m;
}
Shortlist table_of(std::vector<int32_t> frequent, int64_t src_vocab = 20, int64_t tgt_vocab = 30) {
  Shortlist s;
  s.src_vocab = src_vocab, s.tgt_vocab = tgt_vocab, s.best = 1;
  s.frequent = std::move(frequent);
  s.translations.resize(static_cast<size_t>(src_vocab));
  s.translations[5] = {{29, 0.5f}};  // source token 5 brings target token 29
  return s;
}
}  // namespace

// A restricted step's log-probabilities are the full step's logits over those ids, normalised over them; with the
// whole vocabulary listed, the search is the search without a shortlist (tokens and scores); with a few ids listed,
// every token the search emits is one of them; both search paths (decode weights, modules) and n-gram blocking.
TEST(Shortlist, RestrictsTheSearch) {
  for (bool feeding : {true, false}) {
    auto m = tiny_model(feeding);
    torch::NoGradGuard ng;
    const torch::Tensor src = torch::tensor({{5, 6, 7, 8}, {9, 10, 0, 0}}), len = torch::tensor({4, 2});
    const torch::Tensor ids = torch::tensor({0, 1, 2, 3, 7, 12, 29});
    DecoderState full = m->encode(src, len), cut = m->encode(src, len);
    m->restrict_output(cut, ids);
    const torch::Tensor prev = torch::tensor({2, 2});
    const torch::Tensor want = torch::log_softmax(m->step(prev, full).exp().index_select(1, ids).log(), 1);
    EXPECT_TRUE(torch::allclose(m->step(prev, cut), want, 1e-5, 1e-5)) << "input feeding " << feeding;
    // The module path (a GPU's) cuts the output layer the same way.
    DecoderState modules = m->encode(src, len);
    modules.weights = nullptr;
    m->restrict_output(modules, ids);
    EXPECT_TRUE(torch::allclose(m->step(prev, modules), want, 1e-5, 1e-5));

    std::vector<int32_t> all;
    for (int32_t f = 4; f < 30; ++f) all.push_back(f);
    DecodeOptions o;
    o.beam = 3, o.nbest = 2, o.no_repeat_ngram_size = 2, o.max_len_extra = 6;
    const auto plain = decode(*m, src, len, o);
    o.shortlist_table = std::make_shared<Shortlist>(table_of(all));
    const auto whole = decode(*m, src, len, o);
    o.shortlist_table = std::make_shared<Shortlist>(table_of({7, 12}));
    o.min_len = 12;  // longer than the 9 bigrams of 3 tokens allow: blocking decides where each hypothesis ends
    const auto few = decode(*m, src, len, o);
    for (size_t b = 0; b < 2; ++b) {
      ASSERT_EQ(whole[b].size(), plain[b].size());
      for (size_t k = 0; k < plain[b].size(); ++k) {
        EXPECT_EQ(whole[b][k].tokens, plain[b][k].tokens);
        EXPECT_NEAR(whole[b][k].score, plain[b][k].score, 1e-4);
      }
      for (const auto& h : few[b]) {
        for (int32_t t : h.tokens) EXPECT_TRUE(t <= kEosId || t == 7 || t == 12 || t == 29) << t;  // the batch's
        std::set<std::pair<int32_t, int32_t>> bigrams;  // --no-repeat-ngram-size 2 blocks the shortlist's columns
        for (size_t k = 1; k < h.tokens.size(); ++k)
          EXPECT_TRUE(bigrams.insert({h.tokens[k - 1], h.tokens[k]}).second) << "a repeated bigram at " << k;
      }
    }
  }
}

}  // namespace tern
