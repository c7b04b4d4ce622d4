// SPDX-License-Identifier: MIT
// chat/async_chat.hpp — the classic facade, for code ported from Python's asynchat.
//
//     class echo_line : public chat::async_chat {
//     public:
//         using async_chat::async_chat;
//         void collect_incoming_data(std::span<const std::byte> d) override { buf_.append(...); }
//         void found_terminator() override { push(buf_ + "\n"); buf_.clear(); }
//     };
//     co_await echo_line(std::move(sock)).run();
//
// The names are asynchat's, and so is the input behaviour, call for call: per read, the
// collect_incoming_data / found_terminator calls of asynchat's handle_read (a terminator split
// across reads is found, a possible prefix is held back, found_terminator may change the
// terminator for the rest of the same read, a count counts down). Output goes through the
// channel's producer FIFO. Where it differs from asynchat (docs/asynchat-semantics.md): the
// default terminator is "\n" (asynchat has none), a frame limit applies (a record longer
// than max_frame closes the channel with errc::frame_too_long before it is delivered whole),
// and queued chunks are gathered into one send.
#pragma once

#include <concepts>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "channel.hpp"
#include "terminator.hpp"
#include "../core/task.hpp"

namespace ringchat::chat {

class async_chat {
public:
    explicit async_chat(ringchat::socket s, channel_options options = {})
        : ch_(std::move(s), options) {}
    /// Over any transport (chat/transport.hpp): a memory_transport in a protocol's tests.
    explicit async_chat(std::unique_ptr<transport> t, channel_options options = {})
        : ch_(std::move(t), options) {}
    virtual ~async_chat() = default;
    async_chat(const async_chat&) = delete;
    async_chat& operator=(const async_chat&) = delete;

    /// Data of the current record (called with non-empty data only).
    virtual void collect_incoming_data(std::span<const std::byte> data) = 0;
    /// The current terminator was found (or a count reached 0).
    virtual void found_terminator() = 0;
    /// The channel closed: peer close, reset, timeout, frame limit (close_reason() says).
    virtual void handle_close() {}

    void set_terminator(terminator t) { term_ = std::move(t); }
    void set_terminator(std::string_view s) { term_.assign_bytes(s); }
    void set_terminator(const char* s) { term_.assign_bytes(s); }
    /// A count; negative throws std::invalid_argument (asynchat's ValueError).
    template <std::integral Count>
    void set_terminator(Count n) {
        term_.assign_count(terminator::checked(static_cast<std::int64_t>(n)));
    }
    /// As asynchat shows it: inside collect_incoming_data a count still includes the data
    /// being delivered; after a count is reached, 0.
    terminator get_terminator() const;

    void push(std::string_view data) { ch_.push(data); }
    void push(const char* data) { ch_.push(std::string_view(data)); }
    void push(std::string&& data) { ch_.push(std::move(data)); }
    void push_with_producer(producers::any_producer p) { ch_.push_with_producer(std::move(p)); }
    void close_when_done() { ch_.close_when_done(); }
    /// Drops held input, the rest of the current read and all queued output.
    void discard_buffers();
    bool readable() const noexcept { return true; }
    bool writable() const noexcept { return ch_.writable() || !ch_.is_open(); }
    void close() noexcept { ch_.close(); }
    std::error_code close_reason() const noexcept { return ch_.close_reason(); }

    /// The channel coroutine: reads and frames until the channel closes, then handle_close().
    /// Output queued when the peer closed is dropped, as asynchat does.
    task<> run();

    channel& chan() noexcept { return ch_; }

private:
    channel ch_;
    terminator term_ = terminator::bytes("\n");
    std::string held_;          // ac_in_buffer between reads: a possible terminator prefix
    std::uint64_t in_collect_ = 0;  // bytes being delivered (a count shows them still)
    std::uint64_t collected_ = 0;  // bytes of the current record so far (the frame limit)
    bool discarded_ = false;
};

}  // namespace ringchat::chat
