// CSV point files, and the one-column label CSV that `ncl cluster` writes.
//
// The rules, in the order the reader applies them:
//   - A UTF-8 byte-order mark is dropped; '\r' before '\n' is ignored.
//   - Blank lines and lines whose first non-blank character is '#' are skipped everywhere.
//   - The separator is read off the first remaining line: ',' if it has one, else a tab, else
//     ';', else the file has one column. Every later line uses the same separator.
//   - Spaces and tabs around a cell are trimmed. A cell may be quoted, "…", to hold separators;
//     "" inside quotes is one '"'. A quoted cell cannot span lines.
//   - The first line is a header when the label column is given by name, or when any of its
//     feature cells (every cell but the label's) is not a number. Otherwise it is data.
//   - Every data line has as many cells as the first line. Feature cells are decimal numbers
//     (a leading '+' and exponents allowed; "1.5x" is not a number) and must be finite.
// Errors name "<name>:<line>:<column>" with 1-based line numbers (counting skipped lines) and
// 1-based column (cell) numbers.
#pragma once

#include <iosfwd>
#include <span>
#include <string>

#include "data/points.h"

namespace ncl::data {

// Reads points from `in`; `name` is used in error messages only ("<stdin>" for standard input).
PointSet read_csv(std::istream& in, const std::string& name, const ReadOptions& options = {});
// Opens `path` and reads it; throws ncl::Error naming the path when it cannot be opened.
PointSet read_csv(const std::string& path, const ReadOptions& options = {});

// Writes the header "label" then one label per line.
void write_labels_csv(std::ostream& out, std::span<const int> labels);

}  // namespace ncl::data
