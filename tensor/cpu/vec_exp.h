// Row primitives of the F32 softmax family, vectorised: exp is a polynomial evaluated 8 floats at
// a time on CPUs with AVX2 and FMA (chosen at run time; the build stays baseline x86-64), and
// std::exp elsewhere. Softmax was a quarter of DAC's clustering time with one scalar expf per
// attention weight (2,000 per point and pass); see vec_exp.cpp for the method and its accuracy.
//
// mask: nullptr, or one int32 per entry, nonzero = entry removed (it is skipped and written 0).
#pragma once

#include <cstdint>

namespace ncl::cpu {

// The largest unmasked x[i]; −inf when n == 0 or every entry is masked.
float row_max(const float* x, const int32_t* mask, int64_t n);

// y[i] = exp(x[i] − shift) (0 where masked) for i < n; returns their sum. x may equal y; y may
// be nullptr (only the sum is wanted). shift must be at least every unmasked x[i] (softmax's
// row maximum): an entry above it counts as exp(0) = 1.
float exp_shifted(const float* x, const int32_t* mask, float shift, float* y, int64_t n);

// y = the softmax of x's unmasked entries (0 where masked, and everywhere when every entry is
// masked): row_max, exp_shifted and the scaling by 1 / Σ in one call. x may equal y.
void softmax_row(const float* x, const int32_t* mask, float* y, int64_t n);

// dx[i] = y[i]·(dy[i] − Σ_j dy[j]·y[j]): softmax's backward on one row without a mask, y its
// output. dx may equal dy.
void softmax_backward_row(const float* y, const float* dy, float* dx, int64_t n);

// Softmax down the columns of x (rows × cols, row-major with leading dimension ld): column c is
// one distribution over the rows whose row_mask entry is 0 (row_mask: nullptr or one int32 per
// row). Masked rows and columns without an unmasked finite maximum give 0. x may equal y.
void softmax_columns(const float* x, const int32_t* row_mask, float* y, int64_t rows, int64_t cols,
                     int64_t ld);

// dx = y ⊙ (dy − Σ_rows dy ⊙ y) column by column: softmax_columns' backward, y its output (0 on
// masked rows, so no mask is needed). dx may equal dy.
void softmax_columns_backward(const float* y, const float* dy, float* dx, int64_t rows,
                              int64_t cols, int64_t ld);

// y[i] = exp(x[i]) with the vector polynomial when the CPU has it (for tests); returns whether
// it did (false: std::exp was used).
bool exp_vector(const float* x, float* y, int64_t n);

}  // namespace ncl::cpu
