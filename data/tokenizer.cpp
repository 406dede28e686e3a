#include "data/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "core/errors.h"
#include "core/files.h"
#include "core/hash.h"
#include "data/text.h"
#include "fmt/format.h"

namespace tern {

void TokenizerTrainOptions::validate() const {
  if (vocab_size < 16 || vocab_size > 1000000)
    throw ConfigError(fmt::format("--vocab-size must be in [16, 1000000] (got {})", vocab_size));
  if (model_type != "unigram" && model_type != "bpe")
    throw ConfigError("tokenizer model_type must be unigram or bpe (got '" + model_type + "')");
  if (!(character_coverage > 0.9 && character_coverage <= 1.0))
    throw ConfigError(fmt::format("character_coverage must be in (0.9, 1] (got {})", character_coverage));
  if (byte_fallback && vocab_size <= 260)
    throw ConfigError(fmt::format(
        "--byte-fallback needs --vocab-size above 260 (256 byte pieces and 4 specials; got {})", vocab_size));
  const int64_t reserved = 4 + (byte_fallback ? 256 : 0);
  if (static_cast<int64_t>(user_symbols.size()) + reserved >= vocab_size)
    throw ConfigError(fmt::format("--user-symbols: {} symbols leave no room in --vocab-size {} ({} are reserved)",
                                  user_symbols.size(), vocab_size, reserved));
  for (size_t i = 0; i < user_symbols.size(); ++i) {
    const std::string& s = user_symbols[i];
    const int64_t bad = invalid_utf8_at(s);
    if (s.empty() || s.size() > 256 || bad >= 0)
      throw ConfigError(fmt::format("--user-symbols: symbol {} must be 1-256 bytes of UTF-8 (got {} bytes{})", i + 1,
                                    s.size(), bad >= 0 ? fmt::format(", invalid at byte {}", bad) : ""));
    for (char32_t c : utf8_decode(s))
      if (py_space(c) || c < 0x20 || c == 0x7f || c == U',' || c == U'\u2581')
        throw ConfigError(fmt::format(
            "--user-symbols: '{}' contains {}: a symbol is one piece, with no whitespace, control character, comma or "
            "'\u2581' (SentencePiece's space)",
            s, c == U',' ? "a comma" : fmt::format("U+{:04X}", static_cast<uint32_t>(c))));
    for (const char* special : {"<pad>", "<unk>", "<s>", "</s>"})
      if (s == special) throw ConfigError(fmt::format("--user-symbols: '{}' is a special piece already", s));
    for (size_t j = 0; j < i; ++j)
      if (user_symbols[j] == s) throw ConfigError(fmt::format("--user-symbols: '{}' is given twice", s));
  }
  if (sample_sentences < 100 || sample_sentences > 1000000000)
    throw ConfigError(fmt::format("--spm-sample must be in [100, 1e9] (got {})", sample_sentences));
}

Tokenizer::Tokenizer(const std::string& model_proto, const std::string& origin)
    : proto_(model_proto), sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  auto st = sp_->LoadFromSerializedProto(proto_);
  if (!st.ok()) throw DataError(origin + ": not a valid SentencePiece model (" + st.ToString() + ")");
  if (sp_->pad_id() != kPadId || sp_->unk_id() != kUnkId || sp_->bos_id() != kBosId || sp_->eos_id() != kEosId)
    throw DataError(fmt::format(
        "{}: SentencePiece model must use pad=0 unk=1 bos=2 eos=3 (got pad={} unk={} bos={} eos={}); HINT: train it "
        "with `tern prepare` or spm_train --pad_id=0 --unk_id=1 --bos_id=2 --eos_id=3",
        origin, sp_->pad_id(), sp_->unk_id(), sp_->bos_id(), sp_->eos_id()));
}

Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_file(const std::string& path) {
  try {
    return Tokenizer(read_file_bounded(path, uint64_t{1} << 30, "SentencePiece model"), path);
  } catch (const IoError& e) {
    throw DataError(e.what());
  }
}

std::vector<int32_t> Tokenizer::encode(const std::string& text) const {
  std::vector<int> ids;
  sp_->Encode(text, &ids);
  return {ids.begin(), ids.end()};
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::vector<int> keep;
  for (int32_t id : ids)
    if (id != kPadId && id != kBosId && id != kEosId) keep.push_back(id);
  std::string out;
  sp_->Decode(keep, &out);
  return out;
}

namespace {
// Per byte of `text`: whether it is part of a whitespace character, as Python's str.split() has them (tab, newline,
// space, ..., U+00A0, U+2000-U+200A, U+3000, ...), so that word indices agree with a user's split().
std::vector<bool> whitespace_bytes(const std::string& text) {
  std::vector<bool> out;
  out.reserve(text.size());
  for (char32_t cp : utf8_decode(text)) {  // byte by byte as utf8_decode walks them
    const size_t n =
        std::min(utf8_sequence_length(static_cast<unsigned char>(text[out.size()])), text.size() - out.size());
    out.insert(out.end(), n, py_space(cp));
  }
  return out;
}

// Per piece of `spt` (byte spans into spt.text()): the word its first byte other than whitespace belongs to, else
// the word after it, else -1.
std::vector<int32_t> words_of_pieces(const sentencepiece::ImmutableSentencePieceText& spt) {
  const std::string& text = spt.text();
  const std::vector<bool> space = whitespace_bytes(text);
  std::vector<int32_t> word_at(text.size(), -1);  // per byte: its word; whitespace: the next word
  for (size_t i = 0, w = 0; i < text.size(); ++i)
    if (!space[i]) word_at[i] = static_cast<int32_t>(i == 0 || space[i - 1] ? w++ : w - 1);
  for (size_t i = text.size(); i-- > 0;)
    if (space[i] && i + 1 < text.size()) word_at[i] = word_at[i + 1];
  std::vector<int32_t> out;
  for (const auto& p : spt.pieces()) {
    size_t i = std::min<size_t>(p.begin(), text.size());
    while (i < p.end() && i < text.size() && space[i]) ++i;
    out.push_back(i < text.size() ? word_at[i] : -1);
  }
  return out;
}
}  // namespace

std::vector<int32_t> Tokenizer::encode(const std::string& text, std::vector<int32_t>& words) const {
  const auto spt = sp_->EncodeAsImmutableProto(text);
  std::vector<int32_t> ids;
  for (const auto& p : spt.pieces()) ids.push_back(static_cast<int32_t>(p.id()));
  words = words_of_pieces(spt);
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, std::vector<int32_t>& words) const {
  std::vector<int> keep;
  for (int32_t id : ids)
    if (id != kPadId && id != kBosId && id != kEosId) keep.push_back(id);
  const auto spt = sp_->DecodeIdsAsImmutableProto(keep);
  const std::vector<int32_t> kept_words = words_of_pieces(spt);
  words.assign(ids.size(), -1);
  for (size_t i = 0, k = 0; i < ids.size(); ++i)
    if (ids[i] != kPadId && ids[i] != kBosId && ids[i] != kEosId) words[i] = kept_words.at(k++);
  return spt.text();
}

std::string Tokenizer::piece(int32_t id) const { return sp_->IdToPiece(id); }
int64_t Tokenizer::vocab_size() const { return sp_->GetPieceSize(); }
std::string Tokenizer::hash() const { return hex64(hash_string(proto_)); }

namespace {
struct Iter : sentencepiece::SentenceIterator {
  explicit Iter(LineSource& s) : src(s) { advance(); }
  bool done() const override { return done_; }
  void Next() override { advance(); }
  const std::string& value() const override { return line; }
  sentencepiece::util::Status status() const override { return {}; }
  void advance() {
    do {
      done_ = !src.next(line);
    } while (!done_ && line.empty());
  }
  LineSource& src;
  std::string line;
  bool done_ = false;
};
}  // namespace

std::string train_tokenizer(const TokenizerTrainOptions& opt, LineSource& source) {
  opt.validate();
  const std::unordered_map<std::string, std::string> args{
      {"vocab_size", std::to_string(opt.vocab_size)},
      {"model_type", opt.model_type},
      {"character_coverage", fmt::format("{}", opt.character_coverage)},
      {"input_sentence_size", std::to_string(opt.sample_sentences)},
      {"shuffle_input_sentence", "true"},
      {"pad_id", "0"},
      {"unk_id", "1"},
      {"bos_id", "2"},
      {"eos_id", "3"},
      {"hard_vocab_limit", "false"},
      {"minloglevel", "2"},
      {"num_threads", "2"},
      {"byte_fallback", opt.byte_fallback ? "true" : "false"},
      {"user_defined_symbols", fmt::format("{}", fmt::join(opt.user_symbols, ","))}};
  sentencepiece::SetRandomGeneratorSeed(static_cast<unsigned>(opt.seed));
  Iter it(source);
  std::string proto;
  auto st = sentencepiece::SentencePieceTrainer::Train(args, &it, &proto);
  if (!st.ok()) throw DataError("SentencePiece training failed: " + st.ToString());
  return proto;
}

}  // namespace tern
