// SPDX-License-Identifier: MIT
// tests/fuzz/drive.hpp — what the protocol targets share: the fuzz input is the bytes a
// client sends, cut into frames by chat::framer exactly as a channel cuts them (the parser
// chooses the terminator before each frame, as a session does before each read()), once in
// one chunk and once in small chunks, so that a target can also check that how the stream
// was cut changes nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "chat/channel.hpp"
#include "chat/framer.hpp"
#include "core/error.hpp"
#include "tests/fuzz/script.hpp"

namespace fuzz {

/// The input as one chunk, or (`small`) in chunks of 1 to 8 bytes picked by a generator
/// seeded with the input's size; each chunk its own allocation (ASan sees a read past it).
inline std::vector<std::vector<std::byte>> chunks_of(std::string_view in, bool small) {
    std::vector<std::vector<std::byte>> out;
    std::uint32_t x = static_cast<std::uint32_t>(in.size()) * 2654435761u + 1;
    for (std::size_t at = 0; at < in.size();) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        const std::size_t n = small ? std::min<std::size_t>(1 + x % 8, in.size() - at)
                                    : in.size();
        const auto* b = reinterpret_cast<const std::byte*>(in.data() + at);
        out.emplace_back(b, b + n);
        at += n;
    }
    return out;
}

/// A protocol target's input: the bytes a client sends, and two limits picked by its size
/// (the seeds are plain protocol text: no byte of the input is spent on options).
struct protocol_input {
    std::string_view text;
    std::size_t first;   ///< firsts[size % N]
    std::size_t second;  ///< seconds[size / N % M]
};

template <std::size_t N, std::size_t M>
protocol_input input_of(const std::uint8_t* data, std::size_t size,
                        const std::size_t (&firsts)[N], const std::size_t (&seconds)[M]) {
    return {{reinterpret_cast<const char*>(data), size}, firsts[size % N], seconds[size / N % M]};
}

/// A frame as a channel's read() hands it out: its data, or frame_too_long.
struct piece_of_input {
    ringchat::chat::frame f;
    bool piece = false;  // with pieces on: more of the same frame follows
};

/// Feeds `in` to a framer; before each frame calls `setup(framer&)` (set the terminator, the
/// limit, pieces), then `on(const piece_of_input&)`, which returns false to stop (the
/// connection closes). Data delivered with no active terminator is handed out as frames too.
template <class Setup, class On>
void frames(std::string_view in, bool small, Setup&& setup, On&& on) {
    ringchat::chat::framer fr;
    setup(fr);
    for (const auto& c : chunks_of(in, small)) {
        fr.feed(c);
        for (;;) {
            std::span<const std::byte> out;
            const auto st = fr.next(out);
            if (st == ringchat::chat::framer::status::need_more) {
                break;
            }
            piece_of_input p;
            if (st == ringchat::chat::framer::status::too_long) {
                p.f = ringchat::chat::frame::end(
                    make_error_code(ringchat::errc::frame_too_long), {});
            } else {
                p.f = ringchat::chat::frame::of(out);
                p.piece = st == ringchat::chat::framer::status::piece;
            }
            if (!on(p)) {
                return;
            }
            setup(fr);
        }
    }
}

}  // namespace fuzz
