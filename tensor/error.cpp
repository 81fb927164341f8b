#include "tensor/error.h"

#include <cstring>

namespace ncl::detail {

void fail_check(const char* file, int line, const char* condition, const std::string& message) {
  // Keep paths short: "tensor/ops.cpp" rather than the absolute build path.
  const char* short_file = file;
  for (const char* top : {"/tensor/", "/autograd/", "/nn/", "/models/", "/data/", "/cli/"}) {
    if (const char* hit = std::strstr(file, top)) short_file = hit + 1;
  }
  throw Error(str(short_file, ":", line, ": ", message, " [check: ", condition, "]"), message);
}

}  // namespace ncl::detail
