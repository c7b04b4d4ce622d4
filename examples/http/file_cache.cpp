// SPDX-License-Identifier: MIT
// examples/http/file_cache.cpp — the open-file cache and its producer (see file_cache.hpp).
#include "examples/http/file_cache.hpp"

#include <unistd.h>

#include <algorithm>

#include "examples/http/mime.hpp"
#include "examples/http/response.hpp"

namespace http {

std::unique_ptr<cached_file> cached_file::make(opened f, std::string_view name) {
    auto c = std::make_unique<cached_file>();
    c->file = std::move(f);
    c->opened_at = std::chrono::steady_clock::now();
    c->fields.append("Content-Type: ")
        .append(content_type(name))
        .append("\r\nAccept-Ranges: bytes\r\nLast-Modified: ")
        .append(http_date(c->file.st.st_mtim.tv_sec))
        .append("\r\n");
    const auto size = static_cast<std::uint64_t>(c->file.st.st_size);
    if (size <= small_file) {
        c->content.resize(static_cast<std::size_t>(size));
        std::size_t got = 0;
        while (got < c->content.size()) {
            const ssize_t n = ::pread(c->file.fd(), c->content.data() + got,
                                      c->content.size() - got, static_cast<off_t>(got));
            if (n <= 0) {
                break;  // an error (sent from the descriptor then), or it shrank
            }
            got += static_cast<std::size_t>(n);
        }
        if (got == c->content.size()) {
            c->in_memory = true;
            c->file.close();
        } else {
            c->content = std::string();
        }
    }
    return c;
}

cached_file* file_cache::find(std::string_view path) {
    const auto it = map_.find(path);
    if (it == map_.end()) {
        return nullptr;
    }
    if (std::chrono::steady_clock::now() - it->second.file->opened_at >= limits_.validity) {
        erase(it);
        return nullptr;
    }
    return it->second.file.get();
}

cached_file* file_cache::insert(std::string_view path, std::unique_ptr<cached_file> f) {
    if (const auto it = map_.find(path); it != map_.end()) {
        erase(it);
    }
    while (!map_.empty() && map_.size() >= limits_.entries) {
        erase(map_.find(order_.front()));
    }
    order_.emplace_back(path);
    cached_file* held = f.get();
    map_.emplace(std::string(path), slot{std::move(f), std::prev(order_.end())});
    return held;
}

void file_cache::drop_expired() {
    const auto now = std::chrono::steady_clock::now();
    while (!order_.empty()) {
        const auto it = map_.find(order_.front());
        if (now - it->second.file->opened_at < limits_.validity) {
            break;  // the rest are younger
        }
        erase(it);
    }
}

void file_cache::clear() noexcept {
    map_.clear();
    order_.clear();
}

void file_cache::erase(std::unordered_map<std::string, slot, hash, std::equal_to<>>::iterator it) {
    order_.erase(it->second.order);
    map_.erase(it);
}

}  // namespace http
