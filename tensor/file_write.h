// Writing a file whole: whoever reads it sees the old contents or the new, never half.
//
// Checkpoints, benchmark files, NPY files and the command line's outputs all go through here.
// The bytes are written to "<target>.tmp.<pid>" beside the target, fsync'ed and renamed over
// it, and the directory is fsync'ed, so a crash or a full disk mid-write leaves the previous
// file intact and no temporary file behind.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ncl {

// Writes `parts`, in order, to path. The target is path itself or, when path is a symbolic
// link, the file it points to (the link stays a link). Something that is not a regular file
// and cannot be replaced (a FIFO, a device such as /dev/null) is written in place. Throws
// ncl::Error naming path when it is a directory, its directory is missing or not writable, or
// a write fails (a full disk, /dev/full).
void write_file_atomically(const std::string& path, const std::vector<std::string_view>& parts);

// Removes the temporary file of a write in progress, if there is one. Async-signal-safe: for a
// signal handler about to end the process, so that Ctrl-C mid-write leaves no "*.tmp.<pid>".
// (Writes are made one at a time, from one thread.)
void remove_partial_write();

// Throws the error write_file_atomically(path, …) would for the place itself (a directory, a
// missing or read-only directory), leaving nothing behind: for checks made before long work.
void check_writable(const std::string& path);

}  // namespace ncl
