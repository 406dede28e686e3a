// The tokenized corpus file (HDF5, layout in docs/corpus_format.md): writer used by `tern prepare`, reader used by
// training and evaluation. A reader fetches any range of sentences without loading the rest; every chunk carries a
// Fletcher-32 checksum that HDF5 verifies on read.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tern {

constexpr int kCorpusFormatVersion = 2;  // 2: /<split>/lines, the input line number of every sentence
constexpr const char* kCorpusFormat = "tern-corpus";
// The optional side of a parallel corpus that holds word alignments (tern prepare --train-align): per sentence, its
// links as flat pairs (source token, target token), positions in the sentence's subword tokens from 0.
constexpr const char* kAlignSide = "align";

// Sentences [begin, end) of one side of one split: flat ids plus offsets rebased to 0.
struct TokenBlock {
  std::vector<int64_t> offsets;  // (N+1), offsets[0] == 0
  std::vector<int32_t> tokens;   // (offsets[N])
  int64_t first_sentence = 0;    // index of sentence 0 in the split
  size_t size() const { return offsets.empty() ? 0 : offsets.size() - 1; }
  int64_t length(size_t i) const { return offsets[i + 1] - offsets[i]; }
  const int32_t* data(size_t i) const { return tokens.data() + offsets[i]; }
  std::vector<int32_t> sentence(size_t i) const { return {data(i), data(i) + length(i)}; }
};

struct VocabInfo {
  std::string side;         // "src", "tgt" or "text"
  int64_t size = 0;         // number of subword ids
  std::string hash;         // hex XXH64 of the SentencePiece model proto
  std::string model_proto;  // serialized SentencePiece model
};

// A sentence's ids on one side, as stored elsewhere.
struct TokenSpan {
  const int32_t* data;
  size_t size;
};

class CorpusWriter {
 public:
  // Creates `path` (fails if it exists). kind: "parallel" (sides src,tgt, and with `alignments` kAlignSide) or
  // "monolingual" (side text).
  CorpusWriter(const std::string& path, const std::string& kind, bool alignments = false);
  ~CorpusWriter();
  void set_vocab(const VocabInfo& v);
  // Appends one sentence to every side of `split`, in sides() order. `line` is its 1-based line number in the input
  // file the split came from (0: the line after the previous sentence's).
  void append(const std::string& split, const std::vector<std::vector<int32_t>>& per_side, int64_t line = 0);
  void append(const std::string& split, const std::vector<TokenSpan>& per_side, int64_t line = 0);
  // Lines of the input file `split` came from (default: the last line number appended).
  void set_source_lines(const std::string& split, int64_t lines);
  void set_attr(const std::string& name, const std::string& value);
  void close();  // flushes and finalizes counts; the destructor does it too, without throwing
  const std::vector<std::string>& sides() const { return sides_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<std::string> sides_;
};

struct CorpusPart;

// A corpus is one .h5 file or several (parts prepared separately, e.g. by a job array, with the same vocabularies):
// each split is the parts' splits in the order given, as if their inputs had been one file.
class CorpusReader {
 public:
  // Opens and validates the format, version, vocabularies (SentencePiece models of the stated size, the same in every
  // part) and each split's counts (num_sentences, num_tokens and offsets agree); throws DataError naming the file and
  // the record. Datasets stay open; reads may come from several threads (they take turns).
  explicit CorpusReader(const std::string& path);
  explicit CorpusReader(const std::vector<std::string>& paths);
  ~CorpusReader();
  const std::string& path() const { return path_; }  // the parts' paths, joined by ','
  const std::vector<std::string>& paths() const { return paths_; }
  const std::string& kind() const { return kind_; }
  const std::vector<std::string>& sides() const { return sides_; }  // the sides with a vocabulary
  // Whether every part holds word alignments (side kAlignSide, read like a side through offsets/gather/read).
  bool has_alignments() const { return alignments_; }
  std::vector<std::string> splits() const;
  bool has_split(const std::string& split) const;
  const VocabInfo& vocab(const std::string& side) const;
  std::string attr(const std::string& name) const;                     // the first part's; "" when absent
  std::vector<std::string> part_attrs(const std::string& name) const;  // each part's, in order ("" when absent)
  int64_t num_sentences(const std::string& split) const;
  // Each part's sentence count of `split`, in order (0 for a part without it).
  std::vector<int64_t> part_sentences(const std::string& split) const;
  int64_t num_tokens(const std::string& split, const std::string& side) const;
  // The 1-based input line number of every sentence of `split` (increasing; a later part's count on from the lines
  // of the parts before it), and the inputs' line count.
  std::vector<int64_t> line_numbers(const std::string& split) const;
  int64_t source_lines(const std::string& split) const;
  // Sentences [begin, end); checks offsets and token ids against the vocabulary.
  TokenBlock read(const std::string& split, const std::string& side, int64_t begin, int64_t end) const;
  // Where sentences [begin, end) lie in the split's token stream (the parts' tokens one after the other):
  // end - begin + 1 increasing offsets. A sentence i is tokens [offsets[i - begin], offsets[i - begin + 1]).
  std::vector<int64_t> offsets(const std::string& split, const std::string& side, int64_t begin, int64_t end) const;
  // The tokens of each range of the split's token stream, one after the other in the order given: one read a range,
  // in file order, token ids checked against the vocabulary. Ranges must not overlap unless equal.
  std::vector<int32_t> gather(const std::string& split, const std::string& side,
                              const std::vector<std::pair<int64_t, int64_t>>& ranges) const;
  // A content identity for cross-rank agreement: vocab hashes and split sizes.
  std::string identity() const;
  // The split sizes an identity() holds, for messages: "train 278, valid 22, test 100".
  static std::string identity_sizes(const std::string& identity);

 private:
  struct Impl;
  struct Piece;  // a part holding a split, and what comes before it in the split
  void open_part(const std::string& path);
  std::vector<Piece> pieces(const std::string& split, const std::string& side = "") const;
  std::unique_ptr<Impl> impl_;
  std::vector<std::string> paths_;
  std::string path_, kind_;
  std::vector<std::string> sides_;
  std::vector<VocabInfo> vocabs_;
  bool alignments_ = false;
};

}  // namespace tern
