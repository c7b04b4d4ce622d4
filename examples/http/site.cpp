// SPDX-License-Identifier: MIT
// examples/http/site.cpp — path resolution under the root, and directory listings.
#include "examples/http/site.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <system_error>
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

/// The status for a failed realpath(3) or stat(2), from errno (which it leaves as it was).
int status_of_errno() noexcept {
    const int err = errno;
    if (descriptors_exhausted(err)) {
        return 503;
    }
    return err == EACCES ? 403 : 404;  // ENOENT, ENOTDIR, ELOOP, ENAMETOOLONG ...
}

}  // namespace

bool descriptors_exhausted(int err) noexcept { return err == EMFILE || err == ENFILE; }

site::site(const std::string& root) {
    char* real = ::realpath(root.c_str(), nullptr);
    if (real == nullptr) {
        throw std::runtime_error(
            fmt::format("--root {}: {}", root, std::generic_category().message(errno)));
    }
    root_ = real;
    std::free(real);
    if (!std::filesystem::is_directory(root_)) {
        throw std::runtime_error(fmt::format("--root {}: not a directory", root));
    }
    prefix_ = root_ == "/" ? root_ : root_ + "/";
}

int site::resolve(std::string_view path, std::string& real, struct stat& st) const {
    if (has_dot_dot(path)) {
        return 403;
    }
    const std::string full = root_ + std::string(path);
    char* r = ::realpath(full.c_str(), nullptr);
    if (r == nullptr) {
        return status_of_errno();
    }
    real = r;
    std::free(r);
    if (real != root_ && !real.starts_with(prefix_)) {
        return 403;  // a symbolic link that leads out of the root
    }
    if (::stat(real.c_str(), &st) != 0) {
        return status_of_errno();
    }
    return 0;
}

std::string site::listing(const std::string& real, std::string_view path,
                          std::error_code& exhausted) {
    exhausted.clear();
    std::vector<std::string> names;
    std::error_code opened;
    std::filesystem::directory_iterator dir(real, opened);  // opendir(3): a descriptor
    if (opened == std::errc::too_many_files_open ||
        opened == std::errc::too_many_files_open_in_system) {
        exhausted = opened;
        return {};
    }
    for (const auto& e : dir) {
        std::error_code ec;
        std::string name = e.path().filename().string();
        if (e.is_directory(ec)) {
            name += '/';
        }
        names.push_back(std::move(name));
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
