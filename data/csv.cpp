#include "data/csv.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <istream>
#include <optional>
#include <ostream>
#include <string_view>

namespace ncl::data {
namespace {

using detail::str;

// The line an error is on; `column` 0 means the whole line.
struct Where {
  const std::string& name;
  int64_t line;
};

template <class... Parts>
[[noreturn]] void fail(const Where& at, int column, const Parts&... parts) {
  if (column > 0) throw Error(str(at.name, ":", at.line, ":", column, ": ", parts...));
  throw Error(str(at.name, ":", at.line, ": ", parts...));
}

// Spaces, tabs and '\r' are trimmed, except the separator itself (a tab in a TSV file).
bool is_blank(char c, char separator) {
  return (c == ' ' || c == '\t' || c == '\r') && c != separator;
}

std::string_view trim(std::string_view text, char separator) {
  while (!text.empty() && is_blank(text.front(), separator)) text.remove_prefix(1);
  while (!text.empty() && is_blank(text.back(), separator)) text.remove_suffix(1);
  return text;
}

char detect_separator(std::string_view line) {
  for (char c : {',', '\t', ';'})
    if (line.find(c) != std::string_view::npos) return c;
  return ',';
}

// One line's cells, trimmed and unquoted. A trailing separator makes a last, empty cell.
std::vector<std::string> split_cells(std::string_view line, char separator, const Where& at) {
  std::vector<std::string> cells;
  size_t i = 0;
  const size_t n = line.size();
  while (true) {
    const int column = int(cells.size()) + 1;
    while (i < n && is_blank(line[i], separator)) ++i;
    std::string cell;
    if (i < n && line[i] == '"') {
      for (++i;; ++i) {
        if (i >= n)
          fail(at, column, "unterminated quote; HINT: a quoted cell must close on the same line, "
                           "and a '\"' inside it is written \"\"");
        if (line[i] != '"') {
          cell += line[i];
        } else if (i + 1 < n && line[i + 1] == '"') {
          cell += '"';
          ++i;
        } else {
          ++i;
          break;
        }
      }
      while (i < n && is_blank(line[i], separator)) ++i;
      if (i < n && line[i] != separator)
        fail(at, column, "unexpected text '", line.substr(i), "' after the closing quote");
    } else {
      const size_t end = std::min(line.find(separator, i), n);
      cell = trim(line.substr(i, end - i), separator);
      i = end;
    }
    cells.push_back(std::move(cell));
    if (i >= n) return cells;
    ++i;  // past the separator
  }
}

// The value of a whole cell, or nullopt when it is not a decimal number. "nan" and "inf" parse
// (the caller rejects them as not finite); a leading '+' is allowed, trailing text is not.
std::optional<double> parse_number(std::string_view text) {
  if (text.starts_with('+')) {
    text.remove_prefix(1);
    if (text.starts_with('-')) return std::nullopt;
  }
  double value = 0;
  const char* last = text.data() + text.size();
  auto [end, ec] = std::from_chars(text.data(), last, value);
  if (ec == std::errc::invalid_argument || end != last) return std::nullopt;
  // Out of range: strtod gives ±HUGE_VAL for overflow (rejected later) and the nearest tiny
  // value for underflow (accepted).
  if (ec == std::errc::result_out_of_range) return std::strtod(std::string(text).c_str(), nullptr);
  return value;
}

// A label column given as an index ("0", "12", "-1"), or nullopt when `spec` is a name.
std::optional<int64_t> as_index(const std::string& spec) {
  std::string_view digits(spec);
  if (digits.starts_with('-')) digits.remove_prefix(1);
  auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), is_digit)) return std::nullopt;
  int64_t index = 0;
  auto [end, ec] = std::from_chars(spec.data(), spec.data() + spec.size(), index);
  return ec == std::errc() ? index : INT64_MAX;  // too many digits: out of range below
}

std::string join(const std::vector<std::string>& cells) {
  std::string out;
  for (const std::string& cell : cells) out += (out.empty() ? "'" : ", '") + cell + "'";
  return out;
}

// The cell index of the label column in rows shaped like `first`, or -1 when there is none.
int label_index(const std::string& spec, const std::vector<std::string>& first, const Where& at) {
  if (spec.empty()) return -1;
  const int width = int(first.size());
  int index = -1;
  if (std::optional<int64_t> i = as_index(spec)) {
    if (*i < -width || *i >= width)
      throw Error(str(at.name, ": label column ", spec, " is out of range: rows have ", width,
                      width == 1 ? " column" : " columns", " (0..", width - 1,
                      ", or -1 for the last)"));
    index = int(*i < 0 ? *i + width : *i);
  } else {
    auto hit = std::find(first.begin(), first.end(), spec);
    if (hit == first.end()) {
      auto is_number = [](const std::string& cell) { return parse_number(cell).has_value(); };
      const bool numeric = std::all_of(first.begin(), first.end(), is_number);
      throw Error(str(at.name, ": label column '", spec, "' is not in the header",
                      numeric ? "; the file has no header (line " + std::to_string(at.line) +
                                    " is numbers); HINT: give the label column as a 0-based "
                                    "index, -1 for the last"
                              : " (columns: " + join(first) + ")"));
    }
    if (std::find(hit + 1, first.end(), spec) != first.end())
      throw Error(str(at.name, ": label column '", spec, "' appears more than once in the header; "
                      "HINT: give it as a 0-based index"));
    index = int(hit - first.begin());
  }
  if (width == 1)
    throw Error(str(at.name, ": label column ", spec, " is the only column, which leaves no "
                    "feature columns"));
  return index;
}

// A feature cell's value; throws for empty, non-numeric and non-finite cells.
double parse_feature(const std::string& cell, const Where& at, int column, bool has_labels) {
  if (cell.empty()) fail(at, column, "empty cell where a number was expected");
  std::optional<double> value = parse_number(cell);
  if (!value)
    fail(at, column, "'", cell, "' is not a number",
         has_labels ? "" : "; HINT: if this column holds labels, name it as the label column");
  if (!std::isfinite(*value)) fail(at, column, "value '", cell, "' is not finite");
  return *value;
}

// Longest line read: beyond it the input is not CSV, and reading on would only fill memory.
constexpr size_t kMaxLineBytes = size_t(64) << 20;

// std::getline, except that it returns early — with the line so far — at a NUL byte or past
// kMaxLineBytes, so that binary input (/dev/zero, which has no line end) is refused at once.
bool next_line(std::istream& in, std::string& line) {
  line.clear();
  std::streambuf* buffer = in.rdbuf();
  for (;;) {
    const int c = buffer->sbumpc();
    if (c == std::char_traits<char>::eof()) return !line.empty();
    if (c == '\n') return true;
    line.push_back(char(c));
    if (c == 0 || line.size() > kMaxLineBytes) return true;
  }
}

}  // namespace

PointSet read_csv(std::istream& in, const std::string& name, const ReadOptions& options) {
  PointSet points;
  std::vector<double> values;            // (N, D) row-major
  std::vector<std::string> label_texts;  // (N) when there is a label column
  char separator = ',';
  int width = 0;   // cells per line, fixed by the first line; 0 until it is read
  int label = -1;  // the label's cell index, or -1
  int64_t rows = 0;
  int64_t line_number = 0;
  std::string line;
  while (next_line(in, line)) {
    ++line_number;
    std::string_view text(line);
    if (line_number == 1 && text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
    if (text.ends_with('\r')) text.remove_suffix(1);
    const Where at{name, line_number};
    if (text.find('\0') != std::string_view::npos)  // a checkpoint, benchmark, .npy, ...
      fail(at, 0, "binary data (a NUL byte) where CSV text was expected; HINT: give points as CSV "
                  "text or a .npy file (named .npy)");
    if (line.size() > kMaxLineBytes)
      fail(at, 0, "a line of more than ", kMaxLineBytes >> 20, " MiB; HINT: is this a CSV file?");
    std::string_view content = trim(text, '\0');
    if (content.empty() || content.front() == '#') continue;

    if (width == 0) {  // the first line fixes the separator, the width and the header
      separator = detect_separator(text);
      std::vector<std::string> first = split_cells(text, separator, at);
      width = int(first.size());
      label = label_index(options.label_column, first, at);
      bool header = !options.label_column.empty() && !as_index(options.label_column);
      for (int c = 0; c < width; ++c)
        if (c != label && !parse_number(first[c])) header = true;
      for (int c = 0, d = 0; c < width; ++c) {
        if (c == label) continue;
        bool named = header && !first[c].empty();
        points.columns.push_back(named ? first[c] : str("x", d));
        ++d;
      }
      if (header) continue;
    }

    std::vector<std::string> cells = split_cells(text, separator, at);
    if (int(cells.size()) != width)
      fail(at, 0, "expected ", width, width == 1 ? " column" : " columns", ", found ",
           cells.size());
    for (int c = 0; c < width; ++c) {
      if (c != label) {
        values.push_back(parse_feature(cells[c], at, c + 1, label >= 0));
      } else if (cells[c].empty()) {
        fail(at, c + 1, "empty label");
      } else {
        label_texts.push_back(cells[c]);
      }
    }
    ++rows;
  }
  if (in.bad()) throw Error(str(name, ": read error after line ", line_number));
  if (rows == 0)
    throw Error(str(name, ": no data rows", width == 0 ? " (empty file?)" : " below the header"));

  const int64_t features = int64_t(points.columns.size());
  points.features = Tensor::from_vector(values, {rows, features}, DType::F64);  // (N, D)
  if (label >= 0) set_labels(points, label_texts);
  return points;
}

PointSet read_csv(const std::string& path, const ReadOptions& options) {
  std::error_code ignored;
  if (std::filesystem::is_directory(path, ignored))
    throw Error(str(path, ": is a directory, not a CSV file"));
  std::ifstream in(path);
  if (!in) throw Error(str(path, ": cannot open (", std::strerror(errno), ")"));
  return read_csv(in, path, options);
}

void write_labels_csv(std::ostream& out, std::span<const int> labels) {
  out << "label\n";
  for (int label : labels) out << label << '\n';
}

}  // namespace ncl::data
