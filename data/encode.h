// `tern encode`: text written in a corpus's SentencePiece pieces, a line a line, the pieces separated by spaces (as
// spm_encode --output_format=piece writes them), with the corpus's own normalization (prepare's space squeezing):
// what word2vec, fastText or GloVe train on for train.src_embeddings / tgt_embeddings (data/embeddings.h), and what
// any tool that needs a model's own tokens reads.
#pragma once
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace tern {

struct EncodeOptions {
  std::vector<std::string> corpus;  // the HDF5 corpus (its parts share the vocabularies: the first one's)
  std::string side;                 // src | tgt | text; "" for a corpus of one side (monolingual)
  std::string input;                // "" or "-": stdin
  std::string output;               // "" or "-": `out`
  bool overwrite = false;
};

// Encodes every line of the input (a blank line stays blank). ConfigError for a side the corpus has not (naming the
// ones it has); DataError for invalid UTF-8 (file, line, byte); IoError for the output as check_outputs says. Returns
// the lines written.
int64_t encode_text(const EncodeOptions& o, std::ostream& out);

}  // namespace tern
