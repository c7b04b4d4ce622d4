// SPDX-License-Identifier: MIT
// examples/http/site.hpp — the served directory: maps a decoded request path to a file
// inside it, and lists a directory.
//
// Invariant: nothing outside the root is ever resolved. A path with a ".." segment is refused
// before the file system is asked; every other path is resolved with realpath(3) (symbolic
// links included) and must then lie under the root's own real path, or it is refused (403).
#pragma once

#include <sys/stat.h>

#include <string>
#include <string_view>
#include <system_error>

namespace http {

class site {
public:
    /// \throws std::runtime_error when `root` is not a directory that can be resolved.
    explicit site(const std::string& root);

    const std::string& root() const noexcept { return root_; }

    /// Resolves `path` (decoded, starting with "/") to the real path of what it names and its
    /// stat. \return 0, 403 (a ".." segment, a link out of the root, no permission), 404, or
    /// 503 when the process is out of descriptors (errno is then EMFILE or ENFILE).
    int resolve(std::string_view path, std::string& real, struct stat& st) const;

    /// An HTML page listing the directory `real` (the request path `path`, ending in "/").
    /// A directory that cannot be opened lists as empty, except when descriptors are
    /// exhausted: then `exhausted` holds EMFILE or ENFILE and the page is empty.
    static std::string listing(const std::string& real, std::string_view path,
                               std::error_code& exhausted);

private:
    std::string root_;    // realpath of the root
    std::string prefix_;  // root_ with one "/" after it
};

/// EMFILE or ENFILE: this process (or the system) is out of file descriptors, a passing
/// condition that deserves 503 rather than the 404 of a missing file.
bool descriptors_exhausted(int err) noexcept;

/// Percent-encodes everything but unreserved characters and "/" (for Location and links).
std::string percent_encode(std::string_view path);

}  // namespace http
