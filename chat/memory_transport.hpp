// SPDX-License-Identifier: MIT
// chat/memory_transport.hpp — a scripted peer for protocol tests: a channel with no socket.
//
//     reactor r;
//     auto owned = std::make_unique<chat::memory_transport>(r);
//     chat::memory_transport& peer = *owned;
//     chat::channel ch(std::move(owned));
//     peer.feed("PING\r\n");                  // what the peer sends, as one chunk
//     peer.feed_end();                        // then it closes its side
//     r.block_on(session(ch));                // the protocol's handler, as the server runs it
//     CHECK(peer.take_sent() == "+PONG\r\n");
//
// The test plays the peer: it feeds chunks (split anywhere: split_at(), random_chunks()),
// ends its stream or resets it, and reads back what the channel sent and how it closed. It
// can make the peer a slow reader (a window of unread bytes past which sends wait, 0 for a
// stalled one), take a send capacity per call (short sends), or fail every send from some
// point (a reset mid-response). Timeouts run on the reactor's clock, as over a socket.
// Invariant: the channel sees what a socket would give it, in the order fed; nothing here
// touches the kernel beyond the reactor's timers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "transport.hpp"
#include "../core/ring_deque.hpp"

namespace ringchat::chat {

class memory_transport final : public transport {
public:
    explicit memory_transport(reactor& r) noexcept;
    ~memory_transport() override;

    // The peer's side: what it sends.

    /// One chunk from the peer (the channel receives it as one recv would; empty: nothing).
    void feed(std::string_view bytes);
    /// Chunks from the peer, in order.
    void feed(std::span<const std::string> chunks);
    /// The peer ends its stream, after what was fed (the channel reads an end of stream).
    void feed_end() noexcept;
    /// The peer's stream fails after what was fed: `why` (ECONNRESET for a reset).
    void feed_error(std::error_code why) noexcept;

    // The peer's side: what it reads.

    /// Bytes the channel sent that the peer has not taken yet.
    const std::string& sent() const noexcept { return sent_; }
    /// Takes (reads) everything sent so far; frees the window for a send waiting on it.
    std::string take_sent();
    /// The peer holds at most `bytes` unread: a send beyond waits until take_sent() (or a
    /// larger window); 0 is a peer that stopped reading. Unlimited by default.
    void set_window(std::size_t bytes) noexcept;
    /// Each send takes at most `bytes` (short sends); 0 = no limit (the default).
    void set_send_capacity(std::size_t bytes) noexcept { capacity_ = bytes; }
    /// Every send from now on fails with `why` (EPIPE, ECONNRESET), a waiting one included.
    void fail_sends(std::error_code why) noexcept;
    /// Sends the channel started (a short one counts once).
    std::size_t sends() const noexcept { return sends_; }

    /// How the channel ended the connection, as the peer sees it.
    enum class end { open, output_ended, orderly, reset };
    end state() const noexcept { return state_; }

    // transport
    std::optional<result<recv_buffer>> try_receive() noexcept override;
    void wait_receive(std::coroutine_handle<> h, clock::time_point deadline) noexcept override;
    std::size_t received() const noexcept override { return chunks_.size(); }
    void stop_receiving() noexcept override;
    bool start_send(io_request& r) noexcept override;
    void cancel_send(io_request& r) noexcept override;
    void abandon_send(io_request& r) noexcept override;
    void end_output() noexcept override;
    void close_orderly() noexcept override;
    void close_abortive() noexcept override;
    bool input_waiting() noexcept override { return !chunks_.empty(); }

private:
    struct chunk {
        std::unique_ptr<std::byte[]> bytes;
        std::uint32_t size;
    };
    /// Copies what `r` asks to send, up to the capacity and the window; 0 when none fits.
    std::size_t take(const io_request& r);
    std::size_t room() const noexcept;
    /// The parked send goes on if it can (room, an error), completed through `ready`.
    void serve_parked() noexcept;
    void finish_parked(std::int32_t res) noexcept;
    void wake_receiver() noexcept;
    static void on_receive_timer(io_request& r, ready_queue& ready) noexcept;
    static void on_send_timer(io_request& r, ready_queue& ready) noexcept;

    ring_deque<chunk> chunks_;
    std::error_code input_error_;  // after the chunks: feed_error(), stop_receiving()
    bool input_ended_ = false;     // after the chunks: feed_end()
    bool timed_out_ = false;
    std::coroutine_handle<> waiter_;
    std::coroutine_handle<> woken_;  // scheduled to resume, not resumed yet
    io_request receive_timer_;

    std::string sent_;
    std::size_t window_ = SIZE_MAX;
    std::size_t capacity_ = 0;
    std::size_t sends_ = 0;
    std::error_code send_error_;
    io_request* parked_ = nullptr;  // a send waiting for room
    io_request send_timer_;
    end state_ = end::open;
};

/// `bytes` in two chunks, cut at `at` (an empty one left out): every split point of a
/// request is `for (at = 0; at <= size; ++at)`.
std::vector<std::string> split_at(std::string_view bytes, std::size_t at);
/// `bytes` in chunks of 1 to `most` bytes, sizes drawn from `seed` (the same for a seed).
std::vector<std::string> random_chunks(std::string_view bytes, std::uint64_t seed,
                                       std::size_t most = 16);

}  // namespace ringchat::chat
