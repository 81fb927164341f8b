#include "tensor/file_write.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "tensor/error.h"

namespace ncl {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void fail(const std::string& path, const std::string& reason) {
  throw Error(detail::str(path, ": cannot write (", reason, ")"));
}
[[noreturn]] void fail(const std::string& path, int error) { fail(path, std::strerror(error)); }

// Where the bytes go: path, or the file a symbolic link at path points to.
std::string target_of(const std::string& path) {
  std::error_code ec;
  if (!fs::is_symlink(fs::symlink_status(path, ec))) return path;
  fs::path resolved = fs::weakly_canonical(path, ec);
  return ec ? path : resolved.string();
}

// What stands at target now: nothing, a regular file, or something else (the caller writes in
// place). A directory, or a missing parent directory, is an error.
enum class Place { Absent, Regular, InPlace };

Place examine(const std::string& path, const std::string& target) {
  struct stat st {};
  if (::stat(target.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) fail(path, "it is a directory");
    return S_ISREG(st.st_mode) ? Place::Regular : Place::InPlace;
  }
  if (errno != ENOENT) fail(path, errno);
  const fs::path parent = fs::path(target).parent_path();
  std::error_code ec;
  if (!parent.empty() && !fs::is_directory(parent, ec))
    fail(path, "no directory " + parent.string());
  return Place::Absent;
}

void write_all(int fd, std::string_view bytes, const std::string& path) {
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(path, errno);
    p += n;
    left -= size_t(n);
  }
}

std::string temporary_for(const std::string& target) {
  return target + ".tmp." + std::to_string(::getpid());
}

// The temporary file being written, for remove_partial_write; a plain buffer, which a signal
// handler may read.
char g_partial[4096];
volatile std::sig_atomic_t g_has_partial = 0;

// Records tmp as the write in progress (if its name fits) for as long as it lives.
struct PartialWrite {
  explicit PartialWrite(const std::string& tmp) {
    if (tmp.size() >= sizeof g_partial) return;
    std::memcpy(g_partial, tmp.c_str(), tmp.size() + 1);
    g_has_partial = 1;
  }
  ~PartialWrite() { g_has_partial = 0; }
  PartialWrite(const PartialWrite&) = delete;
  PartialWrite& operator=(const PartialWrite&) = delete;
};

}  // namespace

void write_file_atomically(const std::string& path, const std::vector<std::string_view>& parts) {
  const std::string target = target_of(path);
  if (examine(path, target) == Place::InPlace) {
    const int fd = ::open(target.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) fail(path, errno);
    try {
      for (std::string_view part : parts) write_all(fd, part, path);
    } catch (...) {
      ::close(fd);
      throw;
    }
    if (::close(fd) != 0) fail(path, errno);
    return;
  }
  const std::string tmp = temporary_for(target);
  PartialWrite partial(tmp);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) fail(path, errno);
  int error = 0;
  try {
    for (std::string_view part : parts) write_all(fd, part, path);
  } catch (...) {
    ::close(fd);
    std::remove(tmp.c_str());
    throw;
  }
  if (::fsync(fd) != 0) error = errno;
  if (::close(fd) != 0 && error == 0) error = errno;
  if (error == 0 && std::rename(tmp.c_str(), target.c_str()) != 0) error = errno;
  if (error != 0) {
    std::remove(tmp.c_str());
    fail(path, error);
  }
  // Make the rename itself durable.
  const fs::path parent = fs::path(target).parent_path();
  const int dir = ::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

void remove_partial_write() {
  if (g_has_partial) ::unlink(g_partial);
}

void check_writable(const std::string& path) {
  const std::string target = target_of(path);
  if (examine(path, target) == Place::InPlace) {
    if (::access(target.c_str(), W_OK) != 0) fail(path, errno);
    return;
  }
  const std::string tmp = temporary_for(target);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) fail(path, errno);
  ::close(fd);
  std::remove(tmp.c_str());
}

}  // namespace ncl
