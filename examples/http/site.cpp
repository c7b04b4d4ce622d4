// SPDX-License-Identifier: MIT
// examples/http/site.cpp — opening paths under the root, and directory listings.
#include "examples/http/site.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>  // struct open_how, RESOLVE_*: glibc 2.36 has no openat2 wrapper
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <system_error>
#include <utility>
#include <vector>

#include <fmt/core.h>

namespace http {
namespace {

bool has_dot_dot(std::string_view path) noexcept {
    while (!path.empty()) {
        const auto slash = path.find('/');
        if (path.substr(0, slash) == "..") {
            return true;
        }
        path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
    }
    return false;
}

std::string html_escape(std::string_view s) {
    std::string out;
    for (char c : s) {
        switch (c) {
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '&': out += "&amp;"; break;
        case '"': out += "&quot;"; break;
        default: out += c;
        }
    }
    return out;
}

/// The status for a failed open, realpath(3) or stat(2) with `err` (left in errno).
int status_of(int err) noexcept {
    errno = err;
    if (descriptors_exhausted(err)) {
        return 503;
    }
    if (err == EACCES || err == EXDEV) {
        return 403;  // EXDEV: openat2 met a step out of the root
    }
    return 404;  // ENOENT, ENOTDIR, ELOOP, ENAMETOOLONG ...
}

}  // namespace

bool descriptors_exhausted(int err) noexcept { return err == EMFILE || err == ENFILE; }

opened::opened(opened&& o) noexcept : st(o.st), fd_(std::exchange(o.fd_, -1)) {}

opened& opened::operator=(opened&& o) noexcept {
    if (this != &o) {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        fd_ = std::exchange(o.fd_, -1);
        st = o.st;
    }
    return *this;
}

opened::~opened() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

int opened::release() noexcept { return std::exchange(fd_, -1); }

void opened::close() noexcept {
    if (fd_ >= 0) {
        ::close(std::exchange(fd_, -1));
    }
}

site::site(const std::string& root) {
    char* real = ::realpath(root.c_str(), nullptr);
    if (real == nullptr) {
        throw std::runtime_error(
            fmt::format("--root {}: {}", root, std::generic_category().message(errno)));
    }
    root_ = real;
    std::free(real);
    root_fd_ = ::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root_fd_ < 0) {
        throw std::runtime_error(fmt::format(
            "--root {}: {}", root,
            errno == ENOTDIR ? "not a directory" : std::generic_category().message(errno)));
    }
    prefix_ = root_ == "/" ? root_ : root_ + "/";
}

site::site(site&& o) noexcept
    : root_(std::move(o.root_)),
      prefix_(std::move(o.prefix_)),
      root_fd_(std::exchange(o.root_fd_, -1)) {}

site::~site() {
    if (root_fd_ >= 0) {
        ::close(root_fd_);
    }
}

int site::open_at(const char* relative, unsigned long long resolve, opened& out) const {
    open_how how{};
    how.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
    how.resolve = resolve;
    const long fd = ::syscall(SYS_openat2, root_fd_, relative, &how, sizeof how);
    if (fd < 0) {
        return errno;
    }
    out = opened();
    out.fd_ = static_cast<int>(fd);
    if (::fstat(out.fd_, &out.st) != 0) {
        const int err = errno;
        out = opened();
        return err;
    }
    // A regular file is read (io_uring's reads, pread) without O_NONBLOCK: with it, io_uring
    // answers EAGAIN where a read would wait for the disk.
    if (S_ISREG(out.st.st_mode) && ::fcntl(out.fd_, F_SETFL, 0) != 0) {
        const int err = errno;
        out = opened();
        return err;
    }
    return 0;
}

int site::open(std::string_view path, opened& out) const {
    if (has_dot_dot(path)) {
        return 403;
    }
    const std::string_view rest = path.substr(std::min(path.find_first_not_of('/'), path.size()));
    // (Not `relative = "."` after: GCC 12 warns of a bogus overlap there, -Wrestrict.)
    const std::string relative(rest.empty() ? std::string_view(".") : rest);
    const int err = open_at(relative.c_str(), RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS, out);
    if (err == 0) {
        return 0;
    }
    if (err == EXDEV || descriptors_exhausted(err)) {
        return open_by_real_path(path, err, out);
    }
    return status_of(err);
}

int site::open_by_real_path(std::string_view path, int err, opened& out) const {
    const std::string full = root_ + std::string(path);
    char* r = ::realpath(full.c_str(), nullptr);  // no descriptor needed
    if (r == nullptr) {
        return status_of(errno);
    }
    const std::string real = r;
    std::free(r);
    if (real != root_ && !real.starts_with(prefix_)) {
        return 403;  // a symbolic link that leads out of the root
    }
    if (descriptors_exhausted(err)) {
        return status_of(err);  // it exists, and there is no descriptor to open it with
    }
    // An absolute link that stays inside: open its real path, following no link (one
    // swapped in since realpath is refused: ELOOP, 404).
    const std::string relative = real == root_ ? std::string(".") : real.substr(prefix_.size());
    const int again = open_at(relative.c_str(), RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, out);
    return again == 0 ? 0 : status_of(again);
}

std::string site::listing(opened dir, std::string_view path) {
    std::vector<std::string> names;
    const int fd = dir.release();
    if (DIR* d = ::fdopendir(fd)) {  // owns fd from here
        while (const dirent* e = ::readdir(d)) {
            const std::string_view n = e->d_name;
            if (n == "." || n == "..") {
                continue;
            }
            std::string name(n);
            bool is_dir = e->d_type == DT_DIR;
            if (e->d_type == DT_LNK || e->d_type == DT_UNKNOWN) {
                struct stat st {};
                is_dir = ::fstatat(fd, e->d_name, &st, 0) == 0 && S_ISDIR(st.st_mode);
            }
            if (is_dir) {
                name += '/';
            }
            names.push_back(std::move(name));
        }
        ::closedir(d);
    } else {
        ::close(fd);
    }
    std::sort(names.begin(), names.end());
    const std::string title = html_escape(path);
    std::string page = fmt::format(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of {0}</title></head>\n"
        "<body><h1>Index of {0}</h1>\n<ul>\n",
        title);
    if (path != "/") {
        page += "<li><a href=\"../\">../</a></li>\n";
    }
    for (const auto& n : names) {
        page += fmt::format("<li><a href=\"{}\">{}</a></li>\n", percent_encode(n), html_escape(n));
    }
    page += "</ul></body></html>\n";
    return page;
}

std::string percent_encode(std::string_view path) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (char c : path) {
        const auto u = static_cast<unsigned char>(c);
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~' || c == '/') {
            out += c;
        } else {
            out += '%';
            out += hex[u >> 4];
            out += hex[u & 15];
        }
    }
    return out;
}

}  // namespace http
