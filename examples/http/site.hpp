// SPDX-License-Identifier: MIT
// examples/http/site.hpp — the served directory: opens what a decoded request path names
// inside it, and lists a directory.
//
// Invariant: nothing outside the root is ever opened. A path with a ".." segment is refused
// before the file system is asked; every other path is opened relative to a descriptor of the
// root with openat2(2) and RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS, so the kernel refuses any
// step out of the root (a symbolic link included) as it resolves: no window between a check
// and the open. Two cases take the slower way of realpath(3) and a prefix check, so that what
// is refused is exactly what realpath refused: an absolute symbolic link (RESOLVE_BENEATH
// refuses all of them, realpath those that lead out), then opened by its real path with no
// link followed; and a process out of descriptors (openat2 fails with EMFILE before it looks
// at the path, while 404 and 403 need none).
#pragma once

#include <sys/stat.h>

#include <string>
#include <string_view>

namespace http {

/// An open descriptor (closed with the object) and its fstat.
class opened {
public:
    opened() = default;
    opened(opened&& o) noexcept;
    opened& operator=(opened&& o) noexcept;
    opened(const opened&) = delete;
    opened& operator=(const opened&) = delete;
    ~opened();

    int fd() const noexcept { return fd_; }
    /// Gives the descriptor to the caller.
    int release() noexcept;
    /// Closes the descriptor now (st stays).
    void close() noexcept;
    struct stat st {};

private:
    friend class site;
    int fd_ = -1;
};

class site {
public:
    /// \throws std::runtime_error when `root` is not a directory that can be opened.
    explicit site(const std::string& root);
    site(site&& o) noexcept;
    site& operator=(site&&) = delete;
    site(const site&) = delete;
    site& operator=(const site&) = delete;
    ~site();

    const std::string& root() const noexcept { return root_; }

    /// Opens what `path` (decoded, starting with "/") names, read-only, and fstats it; a
    /// regular file is open for plain (blocking) reads, anything else was opened with
    /// O_NONBLOCK (a FIFO must not block the server). \return 0, 403 (a ".." segment, a link
    /// out of the root, no permission), 404, or 503 when the process is out of descriptors
    /// (errno is then EMFILE or ENFILE).
    int open(std::string_view path, opened& out) const;

    /// An HTML page listing the directory open as `dir` (the request path `path`, ending in
    /// "/"); `dir` is used up (its descriptor is what is read: open() already met EMFILE, if
    /// any). A directory that cannot be read lists as empty.
    static std::string listing(opened dir, std::string_view path);

private:
    /// The realpath(3) way, for an absolute link (`err` EXDEV) or exhausted descriptors.
    int open_by_real_path(std::string_view path, int err, opened& out) const;
    /// openat2 under the root with `resolve` flags, then fstat. \return 0 or an errno.
    int open_at(const char* relative, unsigned long long resolve, opened& out) const;

    std::string root_;    // realpath of the root
    std::string prefix_;  // root_ with one "/" after it
    int root_fd_ = -1;    // O_PATH | O_DIRECTORY
};

/// EMFILE or ENFILE: this process (or the system) is out of file descriptors, a passing
/// condition that deserves 503 rather than the 404 of a missing file.
bool descriptors_exhausted(int err) noexcept;

/// Percent-encodes everything but unreserved characters and "/" (for Location and links).
std::string percent_encode(std::string_view path);

}  // namespace http
