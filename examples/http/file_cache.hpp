// SPDX-License-Identifier: MIT
// examples/http/file_cache.hpp — an open-file cache (nginx's open_file_cache): the files that
// requests named, each opened under the root (site::open), kept with its stat and the fields
// of its 200 for a short validity, so that a file asked for again is served without opening,
// stat'ing or closing it.
//
//     file_cache cache({256, std::chrono::seconds(1)});
//     cached_file* f = cache.find("/index.html");  // null: missing, or past the validity
//     if (!f) { f = cache.insert(path, cached_file::make(std::move(opened), "index.html")); }
//     // f->in_memory: f->content; else f->file.fd(), duplicated for each response
//
// Invariants: an entry was opened by site::open, so it is inside the root (a link swapped to
// lead out later is met by the next open, after the validity); nothing is served from an
// entry older than the validity (a changed or deleted file is seen once it has passed); at
// most `entries` entries are held (the oldest goes first), each with one descriptor or, for a
// file of 16 KiB at most, its bytes instead (4 MiB of them at most with 256 entries).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "examples/http/site.hpp"

namespace http {

/// A regular file as a response sends it.
struct cached_file {
    /// Files up to this size are read into memory (and their descriptor closed at once), so
    /// that a response sends its head and body in one send.
    static constexpr std::size_t small_file = 16 * 1024;

    /// Takes `f` (a regular file) and makes the fields of its 200 (Content-Type from `name`,
    /// Accept-Ranges, Last-Modified); reads a small file into `content`.
    static std::unique_ptr<cached_file> make(opened f, std::string_view name);

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
    /// expired entry is dropped). Valid until the cache is next changed.
    cached_file* find(std::string_view path);
    /// Holds `f` for `path` (replacing what was), dropping the oldest entry when full; only
    /// when enabled().
    /// \return the entry, valid until the cache is next changed.
    cached_file* insert(std::string_view path, std::unique_ptr<cached_file> f);
    /// Drops every entry and closes their descriptors (out of descriptors, the cache gives
    /// its own back first; a response sends from a duplicate of its own).
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
        std::unique_ptr<cached_file> file;
        std::list<std::string>::iterator order;
    };
    void erase(std::unordered_map<std::string, slot, hash, std::equal_to<>>::iterator it);

    limits limits_;
    std::unordered_map<std::string, slot, hash, std::equal_to<>> map_;
    std::list<std::string> order_;  // oldest first: with one validity, also first to expire
};

}  // namespace http
