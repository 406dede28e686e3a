// Pretrained token vectors for a model's embedding tables (train.src_embeddings / tgt_embeddings; OpenNMT-py's
// src_embeddings, Marian's --embedding-vectors, fairseq's --encoder-embed-path): a text file of one vector a line,
// "token v1 ... vE", the tokens being pieces of the corpus's SentencePiece vocabulary (`tern encode` writes a text in
// them, for word2vec, fastText or GloVe). word2vec's text format starts with a header line "count dim"; GloVe's has
// none: both are read. gzip-compressed files too.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace tern {

struct PretrainedVectors {
  int64_t dim = 0;
  std::vector<float> values;   // (V, dim) row-major: the file's vector of each piece it has, zeros for the others
  std::vector<uint8_t> found;  // (V) 1 where the file has a vector for the piece
  int64_t found_count = 0;     // pieces with a vector
  int64_t vectors = 0;         // vectors in the file
  int64_t first_line = 0;      // the line of the first vector (2 after a word2vec header, else 1)
};

// Reads `path` (named `key` in messages, e.g. "train.src_embeddings") for the vocabulary `pieces` (id -> piece; id 0
// is padding and never takes a vector). DataError naming the file, the line and the token for: a vector of other than
// `dim` values, a value that is not a finite number, a line that is not text (word2vec's binary format), a piece of the
// vocabulary given twice (other tokens may repeat, as in some GloVe files), a header whose count or size disagrees with
// the file or with `dim`, and a file none of whose tokens is a piece of the vocabulary (`vocab_name` names it, e.g.
// "the source vocabulary of corpus.h5"). A missing or unreadable file is a DataError too.
PretrainedVectors read_pretrained_vectors(const std::string& path, const std::string& key,
                                          const std::vector<std::string>& pieces, int64_t dim,
                                          const std::string& vocab_name);

}  // namespace tern
