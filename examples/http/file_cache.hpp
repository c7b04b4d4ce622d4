// SPDX-License-Identifier: MIT
// examples/http/file_cache.hpp — an open-file cache (nginx's open_file_cache): the files that
// requests named, each opened under the root (site::open), kept with its stat and the fields
// of its 200 for a short validity, so that a file asked for again is served without opening,
// stat'ing or closing it.
//
//     file_cache cache({256, std::chrono::seconds(1)});
//     auto f = cache.find("/index.html");      // null: missing, or older than the validity
//     if (!f) { f = cached_file::make(std::move(opened), "index.html"); cache.insert(path, f); }
//     ch.push_with_producer(cached_region(ch.owner(), f, 0, f->size(), true));
//
// Invariants: an entry was opened by site::open, so it is inside the root (a link swapped to
// lead out later is met by the next open, after the validity); nothing is served from an
// entry older than the validity (a changed or deleted file is seen once it has passed); at
// most `entries` entries are held (the oldest goes first), each with one descriptor (which
// closes when the entry is dropped and no response still sends from it) or, for a file of
// 16 KiB at most, its bytes instead: 4 MiB of them at most with 256 entries.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/task.hpp"
#include "examples/http/site.hpp"
#include "producers/producer.hpp"

namespace ringchat {
class reactor;
}

namespace http {

/// A regular file as a response sends it.
struct cached_file {
    /// Files up to this size are read into memory (and their descriptor closed at once), so
    /// that a response sends its head and body in one send.
    static constexpr std::size_t small_file = 16 * 1024;

    /// Takes `f` (a regular file) and makes the fields of its 200 (Content-Type from `name`,
    /// Accept-Ranges, Last-Modified); reads a small file into `content`.
    static std::shared_ptr<const cached_file> make(opened f, std::string_view name);

    std::uint64_t size() const noexcept {
        return in_memory ? content.size() : static_cast<std::uint64_t>(file.st.st_size);
    }

    /// Closed (-1) when in_memory; st stays.
    opened file;
    bool in_memory = false;
    std::string content;  ///< the bytes of a small file
    /// "Content-Type: ...\r\nAccept-Ranges: bytes\r\nLast-Modified: ...\r\n".
    std::string fields;
    std::chrono::steady_clock::time_point opened_at;
};

class file_cache {
public:
    struct limits {
        std::size_t entries = 0;  ///< 0: no cache
        std::chrono::nanoseconds validity = std::chrono::seconds(1);
    };
    explicit file_cache(limits l) : limits_(l) {}

    bool enabled() const noexcept { return limits_.entries > 0; }
    std::chrono::nanoseconds validity() const noexcept { return limits_.validity; }
    /// The entry for `path` when one is younger than the validity; null otherwise (an
    /// expired entry is dropped).
    std::shared_ptr<const cached_file> find(std::string_view path);
    /// Holds `f` for `path` (replacing what was), dropping the oldest entry when full.
    void insert(std::string_view path, std::shared_ptr<const cached_file> f);
    /// Drops every entry: their descriptors close once no response sends from them (out of
    /// descriptors, the cache gives its own back first).
    void clear() noexcept;
    /// Drops the entries past the validity (closing their descriptors): a file deleted is
    /// not held open, nor its disk space taken, for long.
    void drop_expired();
    std::size_t size() const noexcept { return map_.size(); }

private:
    struct hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };
    struct slot {
        std::shared_ptr<const cached_file> file;
        std::list<std::string>::iterator order;
    };
    void erase(std::unordered_map<std::string, slot, hash, std::equal_to<>>::iterator it);

    limits limits_;
    std::unordered_map<std::string, slot, hash, std::equal_to<>> map_;
    std::list<std::string> order_;  // oldest first: with one validity, also first to expire
};

/// Sends `length` bytes of a cached file from `offset`: as a file region (sendfile) with
/// zero copy, else read (io_uring's read, or pread on epoll) in 64 KiB buffers. It keeps the
/// entry, so the descriptor stays open until the last byte is sent.
class cached_region {
public:
    cached_region(ringchat::reactor& r, std::shared_ptr<const cached_file> f,
                  std::uint64_t offset, std::uint64_t length, bool zero_copy) noexcept
        : reactor_(&r), file_(std::move(f)), offset_(offset), left_(length),
          zero_copy_(zero_copy) {}

    ringchat::task<ringchat::producers::chunk> more();
    std::optional<ringchat::producers::file_region> region() const noexcept {
        if (!zero_copy_ || left_ == 0) {
            return std::nullopt;
        }
        return ringchat::producers::file_region{file_->file.fd(), offset_, left_};
    }
    void advance(std::uint64_t n) noexcept {
        n = n < left_ ? n : left_;
        offset_ += n;
        left_ -= n;
    }

private:
    ringchat::reactor* reactor_;
    std::shared_ptr<const cached_file> file_;
    std::uint64_t offset_;
    std::uint64_t left_;
    bool zero_copy_;
};

}  // namespace http
