// SentencePiece subword tokenizer with tern's fixed special ids: pad 0, unk 1, bos 2, eos 3.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace tern {

constexpr int32_t kPadId = 0, kUnkId = 1, kBosId = 2, kEosId = 3;

struct TokenizerTrainOptions {
  int vocab_size = 8000;               // Subword vocabulary size, specials included (>= 16).
  std::string model_type = "unigram";  // unigram | bpe
  double character_coverage = 1.0;     // Share of characters covered by the vocabulary.
  // Sentences sampled for training: memory grows with it (about 3 KB a sentence of ~130 characters for unigram).
  int64_t sample_sentences = kDefaultSample;
  static constexpr int64_t kDefaultSample = 200000;
  uint64_t seed = 1;
  bool byte_fallback = false;  // Characters outside the vocabulary become UTF-8 byte pieces instead of <unk> (adds
                               // 256 pieces: vocab_size must leave room for them).
  // Pieces kept whole wherever they occur in the text, e.g. tags such as <2es> (the target language of a
  // multilingual model) or <BT> (back-translated pairs): SentencePiece's user_defined_symbols. No whitespace or
  // commas; each takes one place of vocab_size.
  std::vector<std::string> user_symbols;
  void validate() const;
};

class Tokenizer {
 public:
  // Takes a serialized SentencePiece ModelProto; throws DataError naming `origin` when invalid.
  Tokenizer(const std::string& model_proto, const std::string& origin);
  ~Tokenizer();
  static Tokenizer from_file(const std::string& path);
  // Trains on the lines produced by `next_line` (returns false when exhausted).
  template <typename F>
  static std::string train(const TokenizerTrainOptions& opt, F next_line);

  std::vector<int32_t> encode(const std::string& text) const;
  std::string decode(const std::vector<int32_t>& ids) const;  // ids may contain bos/eos/pad: they are skipped
  // The same, and `words`: per token, the index of the word of the text (words: the text split at whitespace as
  // Python's str.split() splits it, from 0) that its characters belong to; a token of spaces only (SentencePiece's "▁"
  // before a character written as bytes or <unk>) belongs to the next word; -1 for none (bos/eos/pad, a space at the
  // end).
  std::vector<int32_t> encode(const std::string& text, std::vector<int32_t>& words) const;
  std::string decode(const std::vector<int32_t>& ids, std::vector<int32_t>& words) const;
  std::string piece(int32_t id) const;
  int64_t vocab_size() const;
  const std::string& model_proto() const { return proto_; }
  std::string hash() const;  // hex XXH64 of the model proto

 private:
  std::string proto_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
};

// Non-template core of Tokenizer::train.
struct LineSource {
  virtual ~LineSource() = default;
  virtual bool next(std::string& line) = 0;
};
std::string train_tokenizer(const TokenizerTrainOptions& opt, LineSource& source);

template <typename F>
std::string Tokenizer::train(const TokenizerTrainOptions& opt, F next_line) {
  struct Src : LineSource {
    F f;
    explicit Src(F g) : f(std::move(g)) {}
    bool next(std::string& line) override { return f(line); }
  } src(std::move(next_line));
  return train_tokenizer(opt, src);
}

}  // namespace tern
