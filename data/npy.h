// NPY files (numpy's np.save format), read and written without numpy.
//
// A file is the magic "\x93NUMPY", a version byte pair, a little-endian header length (2 bytes
// for version 1.0, 4 bytes for 2.0 and 3.0), a Python dict literal such as
//   {'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }
// and then the array's bytes in C order. ncl reads and writes 1-D and 2-D arrays only.
#pragma once

#include <string>

#include "tensor/tensor.h"

namespace ncl::data {

// Reads versions 1.0, 2.0 and 3.0 with little-endian ('<', '|' or '=') dtypes: '<f4' gives F32,
// '<f8' F64, and the integers '<i1' '<i2' '<i4' '<i8' '<u1' give I32 ('<i8' values must fit in
// int32). Returns a CPU tensor of rank 1 or 2. Throws ncl::Error naming the path for a missing
// file, bad magic, a malformed header, another dtype, big-endian or Fortran-order data, another
// rank and truncated data. Bytes after the data are ignored, as numpy does.
Tensor read_npy(const std::string& path);

// Writes an F32, F64 or I32 tensor of rank 1 or 2 (copied to the CPU first) as NPY version 1.0,
// its header padded with spaces and a final '\n' so the data starts 64-byte aligned. Atomic
// (tensor/file_write.h).
void write_npy(const std::string& path, const Tensor& tensor);

}  // namespace ncl::data
