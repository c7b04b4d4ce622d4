// SPDX-License-Identifier: MIT
// The file producer's opening and reads (see file.hpp).
#include "file.hpp"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <span>
#include <system_error>
#include <utility>

namespace ringchat::producers {

namespace {

/// The bytes from `offset` to the end of a file of `size` bytes (none past the end).
std::uint64_t rest(std::uint64_t size, std::uint64_t offset) noexcept {
    return size > offset ? size - offset : 0;
}

std::uint32_t clamp_buffer(std::size_t n) noexcept {
    constexpr std::size_t most = std::size_t{1} << 30;
    return static_cast<std::uint32_t>(std::clamp<std::size_t>(n, 1, most));
}

}  // namespace

file::file(ringchat::file f, std::uint64_t offset, std::uint64_t length, std::size_t buffer_size,
           bool zero_copy)
    : file_(std::move(f)),
      offset_(offset),
      left_(length),
      buffer_size_(clamp_buffer(buffer_size)),
      zero_copy_(zero_copy) {
    if (length == to_end) {
        left_ = rest(file_.size().value(), offset);
    }
}

result<file> file::open(reactor& r, const std::string& path, std::uint64_t offset,
                        std::uint64_t length, std::size_t buffer_size, bool zero_copy) {
    auto f = ringchat::file::open(r, path, O_RDONLY);
    if (!f) {
        return f.error();
    }
    if (length == to_end) {
        const auto size = f->size();
        if (!size) {
            return size.error();
        }
        length = rest(*size, offset);
    }
    return file(std::move(*f), offset, length, buffer_size, zero_copy);
}

task<chunk> file::more() {
    if (left_ == 0) {
        co_return chunk{};
    }
    chunk out(static_cast<std::size_t>(std::min<std::uint64_t>(buffer_size_, left_)), '\0');
    auto got = co_await file_.read(std::as_writable_bytes(std::span(out)), offset_);
    if (!got) {
        throw std::system_error(got.error(), "file producer: read");
    }
    if (*got == 0) {
        throw std::system_error(std::make_error_code(std::errc::no_message_available),
                                "file producer: the file ended before the length promised");
    }
    out.resize(*got);
    offset_ += *got;
    left_ -= *got;
    co_return out;
}

}  // namespace ringchat::producers
