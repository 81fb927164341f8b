// Point files: CSV with and without a header, label columns, quotes and comments; NPY read and
// written byte-exactly, including files built by hand; and every malformed input giving one
// ncl::Error line that names the file, the line and column where they apply, and the value.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "data/csv.h"
#include "data/npy.h"
#include "data/points.h"
#include "tests/helpers.h"

using namespace ncl;
using namespace ncl::data;
using namespace ncl::test;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

std::string write_file(const std::string& name, const std::string& bytes) {
  std::string path = temp_file(name);
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Reads CSV text as if from a file called "pts.csv".
PointSet csv(const std::string& text, const std::string& label_column = "") {
  std::istringstream in(text);
  return read_csv(in, "pts.csv", ReadOptions{label_column, ""});
}

// The bytes of an NPY file: magic, version major.0, header length, `dict` padded with spaces
// and '\n' to a multiple of 16 bytes (as old numpy wrote), then `data`.
std::string npy_bytes(const std::string& dict, const std::string& data, int major = 1) {
  const size_t preamble = major == 1 ? 10 : 12;
  std::string header = dict;
  while ((preamble + header.size() + 1) % 16 != 0) header += ' ';
  header += '\n';
  std::string out = std::string("\x93" "NUMPY") + char(major) + '\0';
  out += char(header.size() & 0xff);
  out += char(header.size() >> 8);
  if (major > 1) out += std::string(2, '\0');
  return out + header + data;
}

template <class T>
std::string raw(const std::vector<T>& values) {
  std::string out(values.size() * sizeof(T), '\0');
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

}  // namespace

TEST_CASE("CSV without a header: columns x0, x1 and no labels", "[io]") {
  PointSet p = csv("1,2\n3.5,-4\n");
  REQUIRE(p.features.shape() == Shape{2, 2});
  REQUIRE(p.features.dtype() == DType::F64);
  REQUIRE(p.features.to_vector() == std::vector<double>{1, 2, 3.5, -4});
  REQUIRE(p.columns == std::vector<std::string>{"x0", "x1"});
  REQUIRE(p.labels.empty());
  REQUIRE(p.label_names.empty());
}

TEST_CASE("CSV with a header names the columns", "[io]") {
  PointSet p = csv("a,b,c\n1,2,3\n4,5,6\n");
  REQUIRE(p.features.shape() == Shape{2, 3});
  REQUIRE(p.columns == std::vector<std::string>{"a", "b", "c"});
  REQUIRE(p.features.to_vector() == std::vector<double>{1, 2, 3, 4, 5, 6});
}

TEST_CASE("CSV label column by name, by index and by -1", "[io]") {
  const std::string text = "x,cls,y\n1,7,2\n3,9,4\n5,7,6\n";
  PointSet by_name = csv(text, "cls");
  PointSet by_index = csv(text, "1");
  for (const PointSet& p : {by_name, by_index}) {
    REQUIRE(p.features.to_vector() == std::vector<double>{1, 2, 3, 4, 5, 6});
    REQUIRE(p.columns == std::vector<std::string>{"x", "y"});
    REQUIRE(p.labels == std::vector<int>{0, 1, 0});
    REQUIRE(p.label_names == std::vector<std::string>{"7", "9"});
  }
  PointSet last = csv("1,2,5\n3,4,6\n", "-1");  // no header: every feature cell is a number
  REQUIRE(last.features.to_vector() == std::vector<double>{1, 2, 3, 4});
  REQUIRE(last.columns == std::vector<std::string>{"x0", "x1"});
  REQUIRE(last.labels == std::vector<int>{0, 1});
  REQUIRE(last.label_names == std::vector<std::string>{"5", "6"});
  PointSet first = csv("5,1,2\n6,3,4\n", "0");
  REQUIRE(first.features.to_vector() == std::vector<double>{1, 2, 3, 4});
}

TEST_CASE("CSV string labels are numbered in order of first appearance", "[io]") {
  PointSet p = csv("0.1,0.2,setosa\n0.3,0.4,virginica\n0.5,0.6,setosa\n0.7,0.8,versicolor\n", "-1");
  REQUIRE(p.labels == std::vector<int>{0, 1, 0, 2});
  REQUIRE(p.label_names == std::vector<std::string>{"setosa", "virginica", "versicolor"});
}

TEST_CASE("CSV skips comments and blank lines and trims spaces, CRLF and a BOM", "[io]") {
  PointSet p = csv("\xEF\xBB\xBF# made by hand\r\n\r\n  a , b \r\n# a comment\n"
                   " 1 ,\t2\r\n\n   \n3,4\n");
  REQUIRE(p.columns == std::vector<std::string>{"a", "b"});
  REQUIRE(p.features.to_vector() == std::vector<double>{1, 2, 3, 4});
}

TEST_CASE("CSV quoted cells hold separators and doubled quotes", "[io]") {
  PointSet p = csv("\"x\", \"y, in cm\" ,\"kind\"\n"
                   "\"1.5\",2,\"a,b\"\n"
                   "3,\"4\",\"say \"\"hi\"\"\"\n",
                   "kind");
  REQUIRE(p.columns == std::vector<std::string>{"x", "y, in cm"});
  REQUIRE(p.features.to_vector() == std::vector<double>{1.5, 2, 3, 4});
  REQUIRE(p.label_names == std::vector<std::string>{"a,b", "say \"hi\""});
}

TEST_CASE("CSV tab and semicolon separators are detected from the first line", "[io]") {
  REQUIRE(csv("a\tb\n1\t2\n").features.to_vector() == std::vector<double>{1, 2});
  REQUIRE(csv("1;2\n3;4\n").features.to_vector() == std::vector<double>{1, 2, 3, 4});
  PointSet single = csv("value\n1\n2\n");
  REQUIRE(single.features.shape() == Shape{2, 1});
  REQUIRE(single.columns == std::vector<std::string>{"value"});
}

TEST_CASE("CSV numbers: signs, exponents and underflow", "[io]") {
  PointSet p = csv("+1.5,-2e3,1E-2,1e-400,.5\n");
  REQUIRE(p.features.to_vector() == std::vector<double>{1.5, -2000, 0.01, 0.0, 0.5});
}

TEST_CASE("CSV errors name the file, line and column", "[io]") {
  SECTION("empty file") {
    REQUIRE_THROWS_WITH(csv(""), Contains("pts.csv: no data rows (empty file?)"));
    REQUIRE_THROWS_WITH(csv("# only a comment\n\n"), Contains("pts.csv: no data rows"));
  }
  SECTION("a header and no data") {
    REQUIRE_THROWS_WITH(csv("a,b\n"), Contains("pts.csv: no data rows below the header"));
  }
  SECTION("ragged rows") {
    REQUIRE_THROWS_WITH(csv("1,2,3\n\n4,5\n"), Contains("pts.csv:3: expected 3 columns, found 2"));
  }
  SECTION("binary data (a safetensors or .npy file given as CSV)") {
    const std::string safetensors_start("\x18\x81\0\0\0\0\0\0{\"x\":1}\n", 16);
    REQUIRE_THROWS_WITH(csv(safetensors_start), Contains("pts.csv:1: binary data (a NUL byte)"));
    REQUIRE_THROWS_WITH(csv(std::string("1,2\n3,\0\n", 8)), Contains("pts.csv:2: binary data"));
  }
  SECTION("a cell that is not a number") {
    REQUIRE_THROWS_WITH(csv("a,b\n1,2\n3,abc\n"), Contains("pts.csv:3:2: 'abc' is not a number"));
    REQUIRE_THROWS_WITH(csv("1,2\n1.5x,2\n"), Contains("pts.csv:2:1: '1.5x' is not a number"));
    REQUIRE_THROWS_WITH(csv("1,2\n1 2,2\n"), Contains("pts.csv:2:1: '1 2' is not a number"));
    REQUIRE_THROWS_WITH(csv("1,2\n3,cat\n"), Contains("HINT: if this column holds labels"));
  }
  SECTION("empty cells") {
    REQUIRE_THROWS_WITH(csv("1,2\n3,\n"), Contains("pts.csv:2:2: empty cell"));
    REQUIRE_THROWS_WITH(csv("1,2,a\n3,4, \n", "-1"), Contains("pts.csv:2:3: empty label"));
  }
  SECTION("values that are not finite") {
    REQUIRE_THROWS_WITH(csv("1,nan\n"), Contains("pts.csv:1:2: value 'nan' is not finite"));
    REQUIRE_THROWS_WITH(csv("1,2\n-inf,2\n"), Contains("pts.csv:2:1: value '-inf' is not finite"));
    REQUIRE_THROWS_WITH(csv("1,2\n3,1e999\n"),
                        Contains("pts.csv:2:2: value '1e999' is not finite"));
  }
  SECTION("quotes") {
    REQUIRE_THROWS_WITH(csv("1,2\n3,\"4\n"), Contains("pts.csv:2:2: unterminated quote"));
    REQUIRE_THROWS_WITH(csv("1,2\n\"3\"x,4\n"), Contains("pts.csv:2:1: unexpected text 'x,4'"));
  }
  SECTION("label column not in the header") {
    REQUIRE_THROWS_WITH(csv("x,y,c\n1,2,3\n", "label"),
                        Contains("pts.csv: label column 'label' is not in the header (columns: "
                                 "'x', 'y', 'c')"));
    REQUIRE_THROWS_WITH(csv("1,2,3\n", "label"), Contains("the file has no header"));
    REQUIRE_THROWS_WITH(csv("c,y,c\n1,2,3\n", "c"), Contains("appears more than once"));
  }
  SECTION("label column index out of range") {
    REQUIRE_THROWS_WITH(csv("1,2,3\n", "3"),
                        Contains("pts.csv: label column 3 is out of range: rows have 3 columns"));
    REQUIRE_THROWS_WITH(csv("1,2,3\n", "-4"), Contains("label column -4 is out of range"));
  }
  SECTION("a label column and nothing else") {
    REQUIRE_THROWS_WITH(csv("1\n2\n", "0"), Contains("pts.csv: label column 0 is the only column, "
                                                     "which leaves no feature columns"));
  }
  SECTION("a missing file") {
    REQUIRE_THROWS_WITH(read_csv(temp_file("missing.csv")),
                        Contains("missing.csv: cannot open (No such file or directory)"));
  }
}

TEST_CASE("write_labels_csv writes a header and one label per line", "[io]") {
  std::ostringstream out;
  std::vector<int> labels{2, 0, 1};
  write_labels_csv(out, labels);
  REQUIRE(out.str() == "label\n2\n0\n1\n");
}

TEST_CASE("NPY round trip is bit-exact for F32, F64 and I32 of rank 1 and 2", "[io]") {
  for (DType dtype : {DType::F32, DType::F64, DType::I32}) {
    for (Shape shape : {Shape{7}, Shape{3, 5}}) {
      Tensor t = random_tensor(shape, 11, DType::F64, -100, 100).to(dtype);
      std::string path = temp_file(std::string("round_") + dtype_name(dtype) + ".npy");
      write_npy(path, t);
      Tensor back = read_npy(path);
      INFO(dtype_name(dtype) << " " << shape);
      REQUIRE(back.dtype() == dtype);
      REQUIRE(back.shape() == shape);
      REQUIRE(std::memcmp(back.raw_data(), t.raw_data(), t.nbytes()) == 0);
      // Version 1.0 header, data 64-byte aligned, header ends with '\n'; no temporary left.
      std::string bytes = read_bytes(path);
      REQUIRE(bytes.substr(0, 8) == std::string("\x93" "NUMPY\x01", 7) + '\0');
      const size_t data_start = bytes.size() - t.nbytes();
      REQUIRE(data_start % 64 == 0);
      REQUIRE(bytes[data_start - 1] == '\n');
      REQUIRE(!fs::exists(path + ".tmp." + std::to_string(::getpid())));
    }
  }
  REQUIRE_THROWS_WITH(write_npy(temp_file("r3.npy"), Tensor::zeros({2, 2, 2})),
                      Contains("r3.npy: write_npy needs a tensor of rank 1 or 2, got (2, 2, 2)"));
}

TEST_CASE("NPY files written by hand: v1.0 <f8 and <i8, v2.0, |u1, <i2", "[io]") {
  auto write = [](const std::string& name, const std::string& dict, const std::string& data,
                  int major = 1) { return write_file(name, npy_bytes(dict, data, major)); };
  Tensor f8 = read_npy(write("f8.npy",
                             "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }",
                             raw<double>({1, 2, 3, 4, 5, 6.5})));
  REQUIRE(f8.dtype() == DType::F64);
  REQUIRE(f8.shape() == Shape{2, 3});
  REQUIRE(f8.to_vector() == std::vector<double>{1, 2, 3, 4, 5, 6.5});

  // Double quotes, keys in another order, no trailing comma.
  Tensor i8 = read_npy(write("i8.npy",
                             "{\"descr\": \"<i8\", \"shape\": (4,), \"fortran_order\": False}",
                             raw<int64_t>({3, -1, 0, 2147483647})));
  REQUIRE(i8.dtype() == DType::I32);
  REQUIRE(i8.to_vector() == std::vector<double>{3, -1, 0, 2147483647});

  Tensor v2 = read_npy(write("v2.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
                             raw<float>({0.5f, -2}), 2));
  REQUIRE(v2.dtype() == DType::F32);
  REQUIRE(v2.to_vector() == std::vector<double>{0.5, -2});

  Tensor u1 = read_npy(write("u1.npy", "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }",
                             raw<uint8_t>({0, 7, 255})));
  REQUIRE(u1.to_vector() == std::vector<double>{0, 7, 255});
  Tensor i2 = read_npy(write("i2.npy",
                             "{'descr': '<i2', 'fortran_order': False, 'shape': (1, 2), }",
                             raw<int16_t>({-300, 9})));
  REQUIRE(i2.shape() == Shape{1, 2});
  REQUIRE(i2.to_vector() == std::vector<double>{-300, 9});
}

TEST_CASE("NPY errors name the file and what is wrong", "[io]") {
  const std::string six = raw<double>({1, 2, 3, 4, 5, 6});
  // Reads a file holding `six` under a header with the given dtype, order and shape.
  auto read_with = [&](const std::string& name, const std::string& descr, const std::string& order,
                       const std::string& shape) {
    return read_npy(write_file(name, npy_bytes("{'descr': '" + descr + "', 'fortran_order': " +
                                                   order + ", 'shape': " + shape + ", }",
                                               six)));
  };
  REQUIRE_THROWS_WITH(read_with("fortran.npy", "<f8", "True", "(2, 3)"),
                      Contains("fortran.npy: Fortran-order arrays are not supported"));
  REQUIRE_THROWS_WITH(read_with("big.npy", ">f8", "False", "(2, 3)"),
                      Contains("big.npy: big-endian dtype '>f8' is not supported"));
  REQUIRE_THROWS_WITH(read_with("c16.npy", "<c16", "False", "(3,)"),
                      Contains("c16.npy: unsupported dtype '<c16'"));
  REQUIRE_THROWS_WITH(read_with("short.npy", "<f8", "False", "(100,)"),
                      Contains("short.npy: truncated: header promises 800 bytes of data, "
                               "file has 48"));
  REQUIRE_THROWS_WITH(read_with("rank3.npy", "<f8", "False", "(1, 2, 3)"),
                      Contains("rank3.npy: array has 3 dimensions; ncl reads 1-D and 2-D arrays"));
  REQUIRE_THROWS_WITH(read_npy(write_file("magic.npy", "PK\x03\x04 not numpy at all")),
                      Contains("magic.npy: not an NPY file (bad magic)"));
  REQUIRE_THROWS_WITH(read_npy(write_file("tiny.npy", "\x93NU")),
                      Contains("tiny.npy: not an NPY file (bad magic)"));
  REQUIRE_THROWS_WITH(read_npy(write_file("dict.npy", npy_bytes("{'descr' '<f8'}", six))),
                      Contains("dict.npy: bad NPY header dict: expected ':'"));
  REQUIRE_THROWS_WITH(
      read_npy(write_file("nokey.npy", npy_bytes("{'descr': '<f8', 'shape': (6,)}", six))),
      Contains("nokey.npy: bad NPY header dict: missing key 'fortran_order'"));
  const std::string wide = npy_bytes("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }",
                                     raw<int64_t>({1, int64_t(1) << 40}));
  REQUIRE_THROWS_WITH(read_npy(write_file("wide.npy", wide)),
                      Contains("wide.npy: element 1 is 1099511627776, outside the int32 range"));
  REQUIRE_THROWS_WITH(read_npy(temp_file("absent.npy")),
                      Contains("absent.npy: cannot open (No such file or directory)"));
}

TEST_CASE("read_points on .npy: F64 features and labels from labels_path", "[io]") {
  std::string points_path = temp_file("pts.npy"), labels_path = temp_file("labels.npy");
  write_npy(points_path, Tensor::from_vector({1, 2, 3, 4, 5, 6}, {3, 2}, DType::F32));
  write_npy(labels_path, i32({4, 2, 4}, {3}));
  PointSet p = read_points(points_path, ReadOptions{"", labels_path});
  REQUIRE(p.features.dtype() == DType::F64);
  REQUIRE(p.features.to_vector() == std::vector<double>{1, 2, 3, 4, 5, 6});
  REQUIRE(p.columns == std::vector<std::string>{"x0", "x1"});
  REQUIRE(p.labels == std::vector<int>{0, 1, 0});
  REQUIRE(p.label_names == std::vector<std::string>{"4", "2"});
  REQUIRE(read_points(points_path).labels.empty());
}

TEST_CASE("read_points errors for .npy input", "[io]") {
  std::string points_path = temp_file("three.npy");
  write_npy(points_path, f64({1, 2, 3, 4, 5, 6}, {3, 2}));
  write_npy(temp_file("flat.npy"), f64({1, 2, 3}, {3}));
  REQUIRE_THROWS_WITH(read_points(temp_file("flat.npy")),
                      Contains("flat.npy: points have shape (3,); ncl needs a 2-D (N, D) array"));
  write_npy(temp_file("nan.npy"), f64({1, 2, 3, NAN}, {2, 2}));
  REQUIRE_THROWS_WITH(read_points(temp_file("nan.npy")),
                      Contains("nan.npy: value nan at row 1, column 1 (0-based) is not finite"));
  write_npy(temp_file("two_labels.npy"), i32({0, 1}, {2}));
  REQUIRE_THROWS_WITH(read_points(points_path, ReadOptions{"", temp_file("two_labels.npy")}),
                      Contains("two_labels.npy: 2 labels for the 3 points in"));
  write_npy(temp_file("float_labels.npy"), f64({0, 1, 0}, {3}));
  REQUIRE_THROWS_WITH(read_points(points_path, ReadOptions{"", temp_file("float_labels.npy")}),
                      Contains("float_labels.npy: labels must be integers, found F64 values"));
  REQUIRE_THROWS_WITH(read_points(points_path, ReadOptions{"-1", ""}),
                      Contains("three.npy: a label column applies to CSV input only"));
}

TEST_CASE("read_points reads CSV for other extensions and stdin for -", "[io]") {
  std::string path = write_file("pts.txt", "x,y,k\n1,2,a\n3,4,b\n");
  PointSet p = read_points(path, ReadOptions{"k", ""});
  REQUIRE(p.features.to_vector() == std::vector<double>{1, 2, 3, 4});
  REQUIRE(p.label_names == std::vector<std::string>{"a", "b"});
  REQUIRE_THROWS_WITH(read_points(path, ReadOptions{"", "labels.npy"}),
                      Contains("pts.txt: a separate labels file applies to .npy input only"));
  REQUIRE_THROWS_WITH(read_points(write_file("bad.csv", "1,2\n3\n")),
                      Contains("bad.csv:2: expected 2 columns, found 1"));

  std::istringstream input("5,6\n7,8\n");
  std::streambuf* saved = std::cin.rdbuf(input.rdbuf());
  PointSet from_stdin = read_points("-");
  std::cin.rdbuf(saved);
  REQUIRE(from_stdin.features.to_vector() == std::vector<double>{5, 6, 7, 8});
  std::istringstream bad_input("5,6\n7,x\n");
  saved = std::cin.rdbuf(bad_input.rdbuf());
  REQUIRE_THROWS_WITH(read_points("-"), Contains("<stdin>:2:2: 'x' is not a number"));
  std::cin.rdbuf(saved);
}

TEST_CASE("require_dimension names the file and both widths", "[io]") {
  PointSet p = csv("1,2,3\n");
  REQUIRE_NOTHROW(require_dimension(p, 3, "pts.csv"));
  REQUIRE_THROWS_WITH(require_dimension(p, 2, "pts.csv"),
                      Contains("pts.csv: points have 3 features but the model expects 2"));
}
