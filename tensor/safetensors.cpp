#include "tensor/safetensors.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <tuple>
#include <nlohmann/json.hpp>

#include "tensor/file_write.h"

namespace ncl {
namespace {

using json = nlohmann::json;

// Largest header we accept: a corrupt length must not make us allocate gigabytes.
constexpr uint64_t kMaxHeaderBytes = 64ull << 20;

DType parse_dtype(const std::string& name, const std::string& path, const std::string& tensor) {
  if (name == "F32") return DType::F32;
  if (name == "F64") return DType::F64;
  if (name == "I32") return DType::I32;
  throw Error(detail::str(path, ": tensor '", tensor, "' has dtype ", name,
                          "; ncl reads F32, F64 and I32"));
}

}  // namespace

const Tensor* TensorFile::find(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

void save_safetensors(const std::string& path, const TensorFile& file) {
  json header = json::object();
  if (!file.metadata.empty()) header["__metadata__"] = file.metadata;
  uint64_t offset = 0;
  std::vector<Tensor> host;
  for (const auto& [name, t] : file.tensors) {
    NCL_CHECK(name != "__metadata__" && !header.contains(name), "save_safetensors: duplicate or "
              "reserved tensor name '", name, "'");
    host.push_back(t.to(Device::CPU));
    header[name] = {{"dtype", dtype_name(t.dtype())},
                    {"shape", t.shape().dims()},
                    {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  // Metadata holds file names and the command line, which need not be UTF-8; the header must
  // be JSON, so an invalid byte becomes U+FFFD.
  std::string text = header.dump(-1, ' ', false, json::error_handler_t::replace);
  text.resize((text.size() + 7) / 8 * 8, ' ');  // pad so the data starts 8-byte aligned
  uint64_t n = text.size();
  unsigned char length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(n >> (8 * i));

  std::vector<std::string_view> parts{
      std::string_view(reinterpret_cast<const char*>(length), 8), text};
  for (const Tensor& t : host)
    parts.emplace_back(static_cast<const char*>(t.raw_data()), size_t(t.nbytes()));
  write_file_atomically(path, parts);
}

TensorFile load_safetensors(const std::string& path) {
  std::error_code ignored;
  if (std::filesystem::is_directory(path, ignored))
    throw Error(detail::str(path, ": is a directory, not a checkpoint or benchmark file"));
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error(detail::str(path, ": cannot open (", std::strerror(errno), ")"));
  uint64_t size = uint64_t(in.tellg());
  in.seekg(0);
  const std::string hint = "; HINT: is this an ncl checkpoint or benchmark file (safetensors)? It "
                           "may be truncated or another kind of file";
  if (size < 8) throw Error(detail::str(path, ": file is ", size, " bytes, too short", hint));
  unsigned char length[8] = {};
  in.read(reinterpret_cast<char*>(length), 8);
  if (!in) throw Error(detail::str(path, ": cannot read (", std::strerror(errno), ")"));
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(length[i]) << (8 * i);
  if (n < 2 || n > kMaxHeaderBytes || n > size - 8)
    throw Error(detail::str(path, ": header length ", n, " does not fit the file (", size,
                            " bytes)", hint));
  std::string text(n, '\0');
  in.read(text.data(), std::streamsize(n));
  json header;
  try {
    header = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(detail::str(path, ": header is not valid JSON", hint));
  }
  if (!header.is_object()) throw Error(detail::str(path, ": header is not a JSON object", hint));

  TensorFile file;
  uint64_t data_size = size - 8 - n;
  std::vector<std::tuple<uint64_t, std::string, DType, Shape, uint64_t>> entries;
  try {
    for (auto& [name, entry] : header.items()) {
      if (name == "__metadata__") {
        for (auto& [key, value] : entry.items())
          file.metadata[key] = value.is_string() ? value.get<std::string>() : value.dump();
        continue;
      }
      DType dtype = parse_dtype(entry.at("dtype").get<std::string>(), path, name);
      const auto dims = entry.at("shape").get<std::vector<int64_t>>();
      uint64_t elements = 1;  // checked before Shape sees the dimensions: none negative, and
      for (int64_t d : dims) {  // no product past the file's size (nor overflowing on the way)
        if (d < 0 || (d > 0 && elements > data_size / uint64_t(d) + 1))
          throw Error(detail::str(path, ": tensor '", name, "' has an impossible shape ",
                                  entry.at("shape").dump(), hint));
        elements *= uint64_t(d);
      }
      Shape shape(dims);
      auto offsets = entry.at("data_offsets").get<std::vector<uint64_t>>();
      uint64_t bytes = uint64_t(shape.numel()) * dtype_size(dtype);
      if (offsets.size() != 2 || offsets[1] < offsets[0] || offsets[1] - offsets[0] != bytes ||
          offsets[1] > data_size)
        throw Error(detail::str(path, ": tensor '", name, "' ", shape, " ", dtype_name(dtype),
                                " has data offsets that do not match its size or the file (",
                                data_size, " data bytes)", hint));
      entries.emplace_back(offsets[0], name, dtype, shape, bytes);
    }
  } catch (const json::exception& e) {
    throw Error(detail::str(path, ": malformed tensor entry in the header (", e.what(), ")", hint));
  }
  // Read in data order (the JSON object is sorted by name, not by offset).
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return std::get<0>(a) < std::get<0>(b); });
  for (auto& [begin, name, dtype, shape, bytes] : entries) {
    Tensor t = Tensor::empty(shape, dtype);
    in.seekg(std::streamoff(8 + n + begin));
    in.read(static_cast<char*>(t.raw_data()), std::streamsize(bytes));
    if (!in) throw Error(detail::str(path, ": could not read tensor '", name, "'", hint));
    file.tensors.emplace_back(name, t);
  }
  return file;
}

}  // namespace ncl
