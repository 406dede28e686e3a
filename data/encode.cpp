#include "data/encode.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
#include <memory>

#include "core/errors.h"
#include "core/files.h"
#include "data/corpus.h"
#include "data/text.h"
#include "data/tokenizer.h"

namespace tern {

int64_t encode_text(const EncodeOptions& o, std::ostream& out) {
  std::vector<NamedPath> inputs = {{"-i", o.input}};
  for (const auto& c : o.corpus) inputs.push_back({"--corpus", c});
  check_outputs({{"-o", o.output}}, inputs, o.overwrite);
  const CorpusReader corpus(o.corpus);
  const auto& sides = corpus.sides();
  std::string side = o.side;
  if (side.empty() && sides.size() == 1) side = sides[0];
  if (side.empty())
    throw ConfigError(fmt::format("encode: {} has a vocabulary for each of {}: say which with --side", corpus.path(),
                                  fmt::join(sides, ", ")));
  if (std::find(sides.begin(), sides.end(), side) == sides.end())
    throw ConfigError(
        fmt::format("encode --side {}: {} has vocabularies for {} only", side, corpus.path(), fmt::join(sides, ", ")));
  const Tokenizer tok(corpus.vocab(side).model_proto, corpus.path() + " (" + side + " vocabulary)");
  std::unique_ptr<TextFile> file;
  const bool from_stdin = is_standard_stream(o.input);
  if (!from_stdin) file = open_text_file(o.input, "-i");
  FdStreambuf stdin_buf(STDIN_FILENO);
  std::istream stdin_stream(&stdin_buf);
  std::istream& in = from_stdin ? stdin_stream : *file;
  const std::string name = from_stdin ? "stdin" : o.input;
  std::unique_ptr<TextWriter> writer;
  std::unique_ptr<RemoveOnSignal> guard;
  if (!is_standard_stream(o.output)) {
    writer = std::make_unique<TextWriter>(o.output);  // in place of the output once every line is written
    guard = std::make_unique<RemoveOnSignal>(writer->temporary());
  }
  std::ostream& sink = writer ? *writer : out;
  std::string line, pieces;
  int64_t lines = 0;
  while (read_line(in, line, name)) {
    ++lines;
    if (const int64_t bad = invalid_utf8_at(line); bad >= 0)
      throw DataError(
          fmt::format("{}:{}: invalid UTF-8 at byte {} of the line (byte value 0x{:02x}); HINT: convert "
                      "the file with iconv -f <encoding> -t UTF-8",
                      name, lines, bad + 1, static_cast<unsigned char>(line[bad])));
    pieces.clear();
    for (const int32_t id : tok.encode(squeeze_spaces(line))) {
      if (!pieces.empty()) pieces.push_back(' ');
      pieces += tok.piece(id);
    }
    sink << pieces << '\n';
  }
  if (writer)
    writer->commit();
  else
    flush_checked(out, "standard output");
  return lines;
}

}  // namespace tern
