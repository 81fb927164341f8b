#include "data/npy.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string_view>
#include <vector>

#include "tensor/file_write.h"

namespace ncl::data {
namespace {

using detail::str;
static_assert(std::endian::native == std::endian::little,
              "the NPY reader copies little-endian bytes as they are");

constexpr char kMagic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};
// Largest header we accept: a corrupt length must not make us allocate gigabytes.
constexpr uint64_t kMaxHeaderBytes = 1 << 20;

// What the header dict says.
struct Header {
  std::string descr;  // e.g. "<f8"
  bool fortran_order = false;
  std::vector<int64_t> shape;
};

// Parses the header's dict literal: {'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }
// Keys and strings may use either quote; trailing commas are allowed, unknown keys are not.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& path) : text_(text), path_(path) {}

  Header parse() {
    Header header;
    bool has_descr = false, has_order = false, has_shape = false;
    expect('{');
    while (!peek('}')) {
      std::string key = quoted("a key");
      expect(':');
      if (key == "descr") {
        if (peek('[')) fail("structured dtypes (a list of fields) are not supported");
        header.descr = quoted("the dtype");
        has_descr = true;
      } else if (key == "fortran_order") {
        header.fortran_order = boolean();
        has_order = true;
      } else if (key == "shape") {
        header.shape = tuple();
        has_shape = true;
      } else {
        fail(str("unexpected key '", key, "'"));
      }
      if (!peek('}')) expect(',');
    }
    ++pos_;
    if (!has_descr) fail("missing key 'descr'");
    if (!has_order) fail("missing key 'fortran_order'");
    if (!has_shape) fail("missing key 'shape'");
    return header;
  }

 private:
  std::string_view text_;
  const std::string& path_;
  size_t pos_ = 0;

  [[noreturn]] void fail(const std::string& what) const {
    std::string_view shown = text_.substr(0, 160);
    while (!shown.empty() && (shown.back() == ' ' || shown.back() == '\n')) shown.remove_suffix(1);
    throw Error(str(path_, ": bad NPY header dict: ", what, " at offset ", pos_, " in ", shown));
  }
  bool peek(char c) {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n')) ++pos_;
    return pos_ < text_.size() && text_[pos_] == c;
  }
  void expect(char c) {
    if (!peek(c)) fail(str("expected '", c, "'"));
    ++pos_;
  }
  std::string quoted(const char* what) {
    if (!peek('\'') && !peek('"')) fail(str("expected ", what, " in quotes"));
    const char quote = text_[pos_++];
    const size_t end = text_.find(quote, pos_);
    if (end == std::string_view::npos) fail("unterminated string");
    std::string value(text_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return value;
  }
  bool boolean() {
    for (bool value : {true, false}) {
      std::string_view word = value ? "True" : "False";
      if (peek(word[0]) && text_.substr(pos_).starts_with(word)) {
        pos_ += word.size();
        return value;
      }
    }
    fail("expected True or False");
  }
  std::vector<int64_t> tuple() {
    std::vector<int64_t> dims;
    expect('(');
    while (!peek(')')) {
      int64_t dim = -1;
      auto [end, ec] = std::from_chars(text_.data() + pos_, text_.data() + text_.size(), dim);
      if (ec != std::errc() || dim < 0) fail("expected a dimension (an integer >= 0)");
      pos_ = size_t(end - text_.data());
      if (pos_ < text_.size() && text_[pos_] == 'L') ++pos_;  // Python 2 wrote 3L
      dims.push_back(dim);
      if (!peek(')')) expect(',');
    }
    ++pos_;
    return dims;
  }
};

// The element kind ('f', 'i' or 'u') and size of a supported descr; throws naming it otherwise.
std::pair<char, size_t> parse_descr(const std::string& descr, const std::string& path) {
  const std::string little = descr.empty() ? "" : str("<", descr.substr(1));
  const bool known = little == "<f4" || little == "<f8" || little == "<i1" || little == "<i2" ||
                     little == "<i4" || little == "<i8" || little == "<u1";
  const char order = descr.empty() ? '?' : descr[0];
  if (!known || (order != '<' && order != '>' && order != '|' && order != '='))
    throw Error(str(path, ": unsupported dtype '", descr, "'; ncl reads '<f4', '<f8', '<i1', "
                    "'<i2', '<i4', '<i8' and '|u1'; HINT: in numpy, "
                    "np.save(path, a.astype('<f8'))"));
  const size_t size = size_t(descr[2] - '0');
  if (order == '>' && size > 1)
    throw Error(str(path, ": big-endian dtype '", descr, "' is not supported; HINT: in numpy, "
                    "np.save(path, a.astype('", little, "'))"));
  return {descr[1], size};
}

// One integer element at p, widened to int64.
template <class T>
int64_t load(const unsigned char* p) {
  T value;
  std::memcpy(&value, p, sizeof value);
  return int64_t(value);
}

}  // namespace

Tensor read_npy(const std::string& path) {
  std::error_code ignored;
  if (std::filesystem::is_directory(path, ignored))
    throw Error(str(path, ": is a directory, not an NPY file"));
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error(str(path, ": cannot open (", std::strerror(errno), ")"));
  const uint64_t size = uint64_t(in.tellg());
  in.seekg(0);

  // Magic, version, header length.
  unsigned char preamble[12] = {};
  in.read(reinterpret_cast<char*>(preamble), std::streamsize(std::min<uint64_t>(size, 12)));
  if (size < 6 || std::memcmp(preamble, kMagic, 6) != 0)
    throw Error(str(path, ": not an NPY file (bad magic)"));
  const int major = preamble[6], minor = preamble[7];
  if ((major != 1 && major != 2 && major != 3) || minor != 0)
    throw Error(str(path, ": NPY version ", major, ".", minor, " is not supported (ncl reads "
                    "1.0, 2.0 and 3.0)"));
  const uint64_t length_bytes = major == 1 ? 2 : 4;
  if (size < 8 + length_bytes)
    throw Error(str(path, ": truncated: the file ends inside the preamble"));
  uint64_t header_bytes = 0;
  for (uint64_t i = 0; i < length_bytes; ++i) header_bytes |= uint64_t(preamble[8 + i]) << (8 * i);
  const uint64_t data_start = 8 + length_bytes + header_bytes;
  if (header_bytes > kMaxHeaderBytes || data_start > size)
    throw Error(str(path, ": truncated: header length ", header_bytes, " does not fit the file (",
                    size, " bytes)"));

  std::string text(header_bytes, '\0');
  in.seekg(std::streamoff(8 + length_bytes));
  in.read(text.data(), std::streamsize(header_bytes));
  const Header header = HeaderParser(text, path).parse();
  const auto [kind, item_size] = parse_descr(header.descr, path);
  if (header.shape.size() < 1 || header.shape.size() > 2)
    throw Error(str(path, ": array has ", header.shape.size(), " dimensions; ncl reads 1-D and "
                    "2-D arrays"));
  const Shape shape(header.shape);
  if (header.fortran_order)
    throw Error(str(path, ": Fortran-order arrays are not supported; HINT: in numpy, "
                    "np.save(path, np.ascontiguousarray(a))"));

  uint64_t bytes = item_size;
  for (int64_t dim : header.shape)
    if (__builtin_mul_overflow(bytes, uint64_t(dim), &bytes))
      throw Error(str(path, ": shape ", shape, " is too large"));
  if (size - data_start < bytes)
    throw Error(str(path, ": truncated: header promises ", bytes, " bytes of data, file has ",
                    size - data_start));

  // Floats and int32 are read as they are; narrower and wider integers go through a buffer.
  const DType dtype = kind == 'f' ? (item_size == 4 ? DType::F32 : DType::F64) : DType::I32;
  Tensor tensor = Tensor::empty(shape, dtype);
  const bool direct = kind == 'f' || (kind == 'i' && item_size == 4);
  std::vector<unsigned char> raw(direct ? 0 : bytes);
  in.read(direct ? static_cast<char*>(tensor.raw_data()) : reinterpret_cast<char*>(raw.data()),
          std::streamsize(bytes));
  if (!in) throw Error(str(path, ": read error in the data"));
  if (direct) return tensor;

  int32_t* out = tensor.data<int32_t>();
  for (int64_t k = 0; k < tensor.numel(); ++k) {
    const unsigned char* p = raw.data() + size_t(k) * item_size;
    const int64_t value = kind == 'u'      ? load<uint8_t>(p)
                          : item_size == 1 ? load<int8_t>(p)
                          : item_size == 2 ? load<int16_t>(p)
                                           : load<int64_t>(p);
    if (value < INT32_MIN || value > INT32_MAX)
      throw Error(str(path, ": element ", k, " is ", value, ", outside the int32 range ncl uses "
                      "for integer data"));
    out[k] = int32_t(value);
  }
  return tensor;
}

void write_npy(const std::string& path, const Tensor& tensor) {
  if (!tensor.defined() || tensor.rank() < 1 || tensor.rank() > 2)
    throw Error(str(path, ": write_npy needs a tensor of rank 1 or 2, got ",
                    tensor.defined() ? tensor.shape().str() : "an undefined tensor"));
  const char* descr = tensor.dtype() == DType::F32   ? "<f4"
                      : tensor.dtype() == DType::F64 ? "<f8"
                                                     : "<i4";
  const Tensor host = tensor.to(Device::CPU);
  // Shape::str() is already a Python tuple: "(7,)", "(3, 5)".
  std::string header = str("{'descr': '", descr, "', 'fortran_order': False, 'shape': ",
                           tensor.shape().str(), ", }");
  // magic (6) + version (2) + length (2) + header + '\n' is padded to a multiple of 64.
  const size_t total = (10 + header.size() + 1 + 63) / 64 * 64;
  header.resize(total - 10 - 1, ' ');
  header += '\n';
  std::string head(kMagic, 6);
  head += {'\x01', '\x00', char(header.size() & 0xff), char(header.size() >> 8)};
  head += header;
  const std::string_view data(static_cast<const char*>(host.raw_data()), size_t(host.nbytes()));
  write_file_atomically(path, {head, data});
}

}  // namespace ncl::data
