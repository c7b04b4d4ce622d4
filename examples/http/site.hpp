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

namespace http {

class site {
public:
    /// \throws std::runtime_error when `root` is not a directory that can be resolved.
    explicit site(const std::string& root);

    const std::string& root() const noexcept { return root_; }

    /// Resolves `path` (decoded, starting with "/") to the real path of what it names and its
    /// stat. \return 0, 403 (a ".." segment, a link out of the root, no permission) or 404.
    int resolve(std::string_view path, std::string& real, struct stat& st) const;

    /// An HTML page listing the directory `real` (the request path `path`, ending in "/").
    static std::string listing(const std::string& real, std::string_view path);

private:
    std::string root_;    // realpath of the root
    std::string prefix_;  // root_ with one "/" after it
};

/// Percent-encodes everything but unreserved characters and "/" (for Location and links).
std::string percent_encode(std::string_view path);

}  // namespace http
