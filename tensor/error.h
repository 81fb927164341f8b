// ncl::Error and NCL_CHECK: how every layer of the library reports a broken precondition.
//
// The library throws; only cli/main.cpp catches and exits. A failed check reads
//   tensor/ops.cpp:42: matmul: inner dimensions differ: a (2, 3, 5) b (4, 7) [check: ka == kb]
// i.e. file:line, the op and what was expected versus received, then the failed condition.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace ncl {

// what() is the full text above; message() is the part meant for a user (no file:line, no
// condition), which is what the command line prints.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& text) : std::runtime_error(text), message_(text) {}
  Error(const std::string& text, std::string message)
      : std::runtime_error(text), message_(std::move(message)) {}
  const std::string& message() const { return message_; }

 private:
  std::string message_;
};

namespace detail {

// str(a, b, c): stream every argument into one string (g++ 12 has no <format>).
template <class... Args>
std::string str(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

[[noreturn]] void fail_check(const char* file, int line, const char* condition,
                             const std::string& message);

}  // namespace detail
}  // namespace ncl

// NCL_CHECK(cond, "op: what went wrong ", value, ...): throws ncl::Error when cond is false.
#define NCL_CHECK(cond, ...)                                                          \
  do {                                                                                \
    if (!(cond)) ::ncl::detail::fail_check(__FILE__, __LINE__, #cond,                 \
                                           ::ncl::detail::str(__VA_ARGS__));          \
  } while (0)
