// safetensors files: how ncl checkpoints are stored, so they open in Python too.
//
// Layout: 8-byte little-endian header length n, n bytes of JSON, then raw little-endian data.
// The JSON maps each tensor name to {"dtype": "F32"|"F64"|"I32", "shape": [...],
// "data_offsets": [begin, end]} (offsets into the data section) and "__metadata__" to a flat
// string->string map. Writes are atomic: a temporary file beside the target is written,
// fsync'ed and renamed over it, so a crash mid-save leaves the previous file intact.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace ncl {

struct TensorFile {
  std::map<std::string, std::string> metadata;
  std::vector<std::pair<std::string, Tensor>> tensors;  // in file order

  const Tensor* find(const std::string& name) const;  // nullptr when absent
};

void save_safetensors(const std::string& path, const TensorFile& file);
// Throws ncl::Error naming the file and what is wrong: missing, truncated, not safetensors,
// a bad header, an unknown dtype, offsets that do not match shapes or leave the file.
TensorFile load_safetensors(const std::string& path);

}  // namespace ncl
