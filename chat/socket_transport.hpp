// SPDX-License-Identifier: MIT
// chat/socket_transport.hpp — a channel's bytes over a kernel socket, on either backend.
//
// Input comes from the socket's receiver (one multishot recv into provided buffers); sends
// and file regions go to the backend as they are (on io_uring, in the ring). It adds nothing
// on the way: a channel over it costs what a channel over the socket did before the seam.
// Invariant: the descriptor is closed once, by the backend after every operation on it
// (an abortive close), or by the socket when the transport dies.
#pragma once

#include <memory>

#include "transport.hpp"
#include "../core/io_request.hpp"
#include "../core/receiver.hpp"
#include "../core/socket.hpp"

namespace ringchat::chat {

class socket_transport final : public transport {
public:
    explicit socket_transport(ringchat::socket s) noexcept;
    ~socket_transport() override;

    std::optional<result<recv_buffer>> try_receive() noexcept override { return in_.try_next(); }
    void wait_receive(std::coroutine_handle<> h, clock::time_point deadline) noexcept override {
        in_.set_deadline(deadline);
        receiver::next_awaitable(in_).await_suspend(h);
    }
    std::size_t received() const noexcept override { return in_.queued(); }
    void stop_receiving() noexcept override { in_.cancel(); }

    bool start_send(io_request& r) noexcept override;
    void cancel_send(io_request& r) noexcept override;
    void abandon_send(io_request& r) noexcept override;
    bool sends_files() const noexcept override { return true; }

    void end_output() noexcept override;
    void close_orderly() noexcept override;
    void close_abortive() noexcept override;
    bool input_waiting() noexcept override;

    ringchat::socket* socket() noexcept override { return socket_.valid() ? &socket_ : nullptr; }

private:
    static void on_closed(io_request& r, ready_queue& ready) noexcept;

    ringchat::socket socket_;
    receiver in_;  // TRICKY: after socket_, so destroyed first (its multishot names the fd)
    // The abortive close, through the backend: made only when there is one (an idle
    // connection does not carry its 150 bytes).
    std::unique_ptr<io_request> close_;
};

}  // namespace ringchat::chat
