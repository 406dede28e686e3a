#include "data/embeddings.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/errors.h"
#include "data/text.h"

namespace tern {

namespace {

// The fields of `line` separated by runs of spaces and tabs (word2vec writes a space after the last value).
std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

bool parse_count(std::string_view s, int64_t& value) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  return ec == std::errc() && end == s.data() + s.size() && value >= 0;
}

std::string shown(std::string_view s) {
  return fmt::format("'{}'", s.size() > 60 ? std::string(s.substr(0, 60)) + "..." : std::string(s));
}

}  // namespace

PretrainedVectors read_pretrained_vectors(const std::string& path, const std::string& key,
                                          const std::vector<std::string>& pieces, int64_t dim,
                                          const std::string& vocab_name) {
  const std::string name = fmt::format("{} {}", key, path);
  auto in = open_text_file(path, key);
  std::unordered_map<std::string_view, int64_t> id_of;
  for (size_t id = 1; id < pieces.size(); ++id) id_of.emplace(pieces[id], static_cast<int64_t>(id));
  PretrainedVectors out;
  out.dim = dim;
  out.values.assign(pieces.size() * static_cast<size_t>(dim), 0.0F);
  out.found.assign(pieces.size(), 0);
  std::vector<int64_t> line_of(pieces.size(), 0);  // each piece's line in the file, for a piece given twice
  std::string first_token;                         // the file's first token, for the message when none matches
  int64_t declared = -1, line_no = 0;
  std::string line;
  while (read_line(*in, line, name)) {
    ++line_no;
    if (invalid_utf8_at(line) >= 0 || line.find('\0') != std::string::npos)
      throw DataError(fmt::format(
          "{}:{}: is not text (word2vec's binary format?); HINT: save the vectors in word2vec's text format (gensim: "
          "save_word2vec_format(path, binary=False); word2vec: -binary 0)",
          name, line_no));
    const auto f = fields(line);
    if (f.empty()) continue;  // blank lines (a trailing one) carry nothing
    int64_t count = 0, size = 0;
    if (line_no == 1 && f.size() == 2 && parse_count(f[0], count) && parse_count(f[1], size)) {
      if (size != dim)
        throw DataError(fmt::format(
            "{}: its header says vectors of {} values, but model.embedding is {}; HINT: train vectors of {} values "
            "(word2vec -size, fastText -dim), or set model.embedding to {}",
            name, size, dim, dim, size));
      declared = count;
      out.first_line = 2;
      continue;
    }
    if (out.first_line == 0) out.first_line = line_no;
    const std::string_view token = f[0];
    if (static_cast<int64_t>(f.size()) - 1 != dim)
      throw DataError(
          fmt::format("{}:{}: token {} has {} values, but model.embedding is {} (every vector must have {})", name,
                      line_no, shown(token), f.size() - 1, dim, dim));
    if (first_token.empty()) first_token = token;
    ++out.vectors;
    const auto id = id_of.find(token);
    if (id != id_of.end() && line_of[id->second] > 0)
      throw DataError(fmt::format("{}:{}: piece {} has a vector already, at line {}; HINT: one vector a piece", name,
                                  line_no, shown(token), line_of[id->second]));
    if (id != id_of.end()) line_of[id->second] = line_no;
    float* row = id == id_of.end() ? nullptr : out.values.data() + id->second * dim;
    for (int64_t k = 0; k < dim; ++k) {
      const std::string_view v = f[static_cast<size_t>(k) + 1];
      float x = 0;
      const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
      if (ec != std::errc() || end != v.data() + v.size() || !std::isfinite(x))
        throw DataError(fmt::format("{}:{}: value {} of token {} is not a finite number: {}", name, line_no, k + 1,
                                    shown(token), shown(v)));
      if (row) row[k] = x;
    }
    if (row) out.found[id->second] = 1, ++out.found_count;
  }
  if (declared >= 0 && declared != out.vectors)
    throw DataError(
        fmt::format("{}: its header says {} vectors, but it has {} (a truncated file?)", name, declared, out.vectors));
  if (out.vectors == 0) throw DataError(fmt::format("{}: has no vectors", name));
  if (out.found_count == 0)
    throw DataError(fmt::format(
        "{}: none of its {} tokens is a piece of {} (its first token is {}; the pieces look like {}); HINT: train the "
        "vectors on text written in the corpus's pieces (`tern encode --corpus CORPUS --side SIDE`)",
        name, out.vectors, vocab_name, shown(first_token), shown(pieces.size() > 10 ? pieces[10] : pieces.back())));
  return out;
}

}  // namespace tern
