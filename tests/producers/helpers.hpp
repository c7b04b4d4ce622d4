// SPDX-License-Identifier: MIT
// tests/producers/helpers.hpp — what both producer test files use: draining a producer into
// its chunks, a producer of given pieces, a chunked-coding decoder, temporary files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/task.hpp"
#include "producers/producer.hpp"

namespace ringchat::test {

/// Every chunk of a sync producer, until (not including) the empty one.
template <producers::sync_producer P>
std::vector<std::string> chunks_of(P& p) {
    std::vector<std::string> out;
    for (;;) {
        producers::chunk c = p.more();
        if (c.empty()) {
            return out;
        }
        out.push_back(std::move(c));
    }
}

/// Every chunk of an async producer, until (not including) the empty one.
template <producers::async_producer P>
task<std::vector<std::string>> async_chunks_of(P& p) {
    std::vector<std::string> out;
    for (;;) {
        producers::chunk c = co_await p.more();
        if (c.empty()) {
            co_return out;
        }
        out.push_back(std::move(c));
    }
}

std::string joined(const std::vector<std::string>& parts);

/// A sync producer of the given non-empty pieces, in order; counts the calls after the end.
class pieces {
public:
    explicit pieces(std::vector<std::string> parts) : parts_(std::move(parts)) {}
    producers::chunk more() {
        if (next_ == parts_.size()) {
            ++calls_after_end_;
            return {};
        }
        return parts_[next_++];
    }
    int calls_after_end() const noexcept { return calls_after_end_; }

private:
    std::vector<std::string> parts_;
    std::size_t next_ = 0;
    int calls_after_end_ = 0;
};

/// What an HTTP/1.1 chunked body decodes to (RFC 9112 §7.1, no extensions, no trailers);
/// nullopt when it is malformed, has a zero-size chunk before the last, or bytes after it.
std::optional<std::string> decode_chunked(std::string_view coded);

/// FNV-1a, 64 bits.
std::uint64_t fnv1a(std::string_view data, std::uint64_t hash = 0xcbf29ce484222325ULL);

/// A file in the temporary directory, removed when this goes.
class temp_file {
public:
    /// Writes `size` pseudo-random bytes (xorshift64 from `seed`); hash() is theirs.
    temp_file(std::uint64_t size, std::uint64_t seed);
    temp_file(const temp_file&) = delete;
    temp_file& operator=(const temp_file&) = delete;
    ~temp_file();
    const std::string& path() const noexcept { return path_; }
    std::uint64_t hash() const noexcept { return hash_; }
    /// The file's content (for small files).
    std::string content() const;

private:
    std::string path_;
    std::uint64_t hash_ = 0;
};

}  // namespace ringchat::test
