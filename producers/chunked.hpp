// SPDX-License-Identifier: MIT
// producers/chunked.hpp — HTTP/1.1 chunked transfer coding (RFC 9112 §7.1) over a producer.
//
//     ch.push_with_producer(producers::chunked(producers::simple(body)));
//
// Each chunk of the inner producer goes out as "<hex size>\r\n<data>\r\n"; when the inner
// producer is exhausted, the last chunk "0\r\n\r\n" (no trailer fields) ends the message.
// Invariant: a zero-size chunk is sent only at the end (an empty chunk from the inner producer
// means it is exhausted, so no empty data chunk can be framed).
#pragma once

#include <charconv>
#include <optional>
#include <string_view>
#include <utility>

#include "producer.hpp"
#include "wrapper.hpp"

namespace ringchat::producers {

template <producer P>
class chunked : public detail::wrapper<chunked<P>, sync_producer<P>> {
public:
    explicit chunked(P inner) noexcept(std::is_nothrow_move_constructible_v<P>)
        : inner_(std::move(inner)) {}

    /// The wrapped producer.
    P& first() noexcept { return inner_; }

private:
    friend detail::wrapper_state<chunked>;

    std::optional<chunk> feed(chunk in) {
        char size[2 * sizeof(std::size_t)];
        const auto end = std::to_chars(size, size + sizeof(size), in.size(), 16).ptr;
        const std::string_view hex(size, static_cast<std::size_t>(end - size));
        chunk out;
        out.reserve(hex.size() + in.size() + 4);
        out.append(hex).append("\r\n").append(in).append("\r\n");
        return out;
    }
    chunk finish() { return chunk("0\r\n\r\n"); }

    P inner_;
};

}  // namespace ringchat::producers
