// SPDX-License-Identifier: MIT
// producers/globbing.hpp — coalesces a producer's small chunks into larger ones (asynchat's
// globbing_producer), so that a producer of many small pieces costs fewer sends.
//
//     producers::globbing(producers::lines(rows, "\r\n", 1))   // 64 KiB chunks, not rows
//
// Like asynchat's: it appends whole chunks of the wrapped producer until it holds at least
// `size` bytes (default 1 << 16) or the wrapped producer is exhausted, and returns them as one
// chunk. A chunk is never split, so an output chunk may exceed `size` by less than one inner
// chunk; a chunk of `size` bytes or more arriving alone is passed on without a copy.
// Invariant: between more() calls nothing is held back (the buffer is empty).
#pragma once

#include <cstddef>
#include <optional>
#include <type_traits>
#include <utility>

#include "producer.hpp"
#include "wrapper.hpp"

namespace ringchat::producers {

template <producer P>
class globbing : public detail::wrapper<globbing<P>, sync_producer<P>> {
public:
    static constexpr std::size_t default_size = std::size_t{1} << 16;

    explicit globbing(P inner, std::size_t size = default_size) noexcept(
        std::is_nothrow_move_constructible_v<P>)
        : inner_(std::move(inner)), size_(size == 0 ? 1 : size) {}

    /// The wrapped producer.
    P& first() noexcept { return inner_; }

private:
    friend detail::wrapper_state<globbing>;

    std::optional<chunk> feed(chunk in) {
        if (buffer_.empty() && in.size() >= size_) {
            return in;
        }
        buffer_ += in;
        if (buffer_.size() >= size_) {
            return std::exchange(buffer_, {});
        }
        return std::nullopt;
    }
    chunk finish() { return std::exchange(buffer_, {}); }

    P inner_;
    std::size_t size_;
    chunk buffer_;
};

}  // namespace ringchat::producers
