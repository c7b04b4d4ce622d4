// SPDX-License-Identifier: MIT
// producers/file.hpp — streams (part of) a regular file: a static page, a download, a
// mailbox message.
//
//     auto page = producers::file::open(r, "www/index.html");   // result<file>
//     if (page) { ch.push_with_producer(std::move(*page)); }
//
// more() reads the next buffer_size bytes (io_uring: IORING_OP_READ; epoll: pread, which
// never waits on readiness for a regular file). With zero_copy on, the producer also offers
// its rest as a file_region (region_producer): the channel then sends it with sendfile or
// splice, without copying through user space, and tells it how far it got with advance();
// region() is empty once nothing is left, or when zero_copy is off.
// Errors: more() throws std::system_error with the read's errno (a channel closes with it);
// a file that ends before `length` bytes were read throws ENODATA ("No data available").
// Invariant: offset_ + left_ is where the promised part of the file ends; left_ only shrinks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "../core/file.hpp"
#include "../core/result.hpp"
#include "../core/task.hpp"
#include "producer.hpp"

namespace ringchat {
class reactor;
}

namespace ringchat::producers {

class file {
public:
    /// As `length`: everything from the offset to the end of the file (as it is now).
    static constexpr std::uint64_t to_end = ~std::uint64_t{0};
    static constexpr std::size_t default_buffer_size = 64 * 1024;

    /// Streams `length` bytes of `f` from `offset` (f's reactor does the reads).
    /// \throws std::system_error when length is to_end and fstat fails.
    explicit file(ringchat::file f, std::uint64_t offset = 0, std::uint64_t length = to_end,
                  std::size_t buffer_size = default_buffer_size, bool zero_copy = true);

    /// Opens `path` read-only and streams it as the constructor does.
    /// \return the file, or open's or fstat's error (ENOENT, EACCES ...); never throws them.
    static result<file> open(reactor& r, const std::string& path, std::uint64_t offset = 0,
                             std::uint64_t length = to_end,
                             std::size_t buffer_size = default_buffer_size, bool zero_copy = true);

    /// The next buffer_size bytes at most; empty once `length` bytes were produced.
    /// \throws std::system_error with the read's errno, or ENODATA at an early end of file.
    task<chunk> more();

    /// The rest as a region of the file, when zero_copy is on and something is left.
    std::optional<file_region> region() const noexcept {
        if (!zero_copy_ || left_ == 0) {
            return std::nullopt;
        }
        return file_region{file_.fd(), offset_, left_};
    }
    /// `n` bytes of the region were sent (n <= what region() offered).
    void advance(std::uint64_t n) noexcept {
        n = n < left_ ? n : left_;
        offset_ += n;
        left_ -= n;
    }

    /// Bytes not produced yet.
    std::uint64_t left() const noexcept { return left_; }

private:
    ringchat::file file_;
    std::uint64_t offset_;
    std::uint64_t left_;
    std::uint32_t buffer_size_;
    bool zero_copy_;
};

}  // namespace ringchat::producers
