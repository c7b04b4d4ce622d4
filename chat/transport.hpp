// SPDX-License-Identifier: MIT
// chat/transport.hpp — the seam under a channel: what moves its bytes.
//
// A channel frames what comes in and queues what goes out; a transport receives and sends.
// socket_transport (socket_transport.hpp) is a kernel socket on either backend; others carry
// the same channel over something else (a scripted peer for tests, TLS over a socket), and the
// channel's code does not change with them.
//
// Input is a stream of chunks for one consumer (the channel's reader): try_receive() gives
// the next one if it is there, wait_receive() resumes the consumer once it is.
// Output is one send at a time, described by an io_request (opcode send, sendmsg or sendfile,
// as send_operation fills it in), which the transport completes exactly once, as a backend
// would: at once (start_send() returns false, `res` set), or later by calling its on_complete
// or queuing its waiter (complete()).
// Invariant: a transport outlives every operation the channel started on it; its destructor
// ends what it still has in flight.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <system_error>

#include "../core/backend.hpp"
#include "../core/io_request.hpp"
#include "../core/receiver.hpp"
#include "../core/result.hpp"

namespace ringchat {
class reactor;
class socket;
}  // namespace ringchat

namespace ringchat::chat {

class transport {
public:
    explicit transport(reactor& r) noexcept : reactor_(&r) {}
    transport(const transport&) = delete;
    transport& operator=(const transport&) = delete;
    virtual ~transport() = default;

    reactor& owner() const noexcept { return *reactor_; }

    // Input.

    /// What the peer sent next, if it is there: a chunk; an empty chunk at the end of the
    /// stream (and every time after); or an error: ECONNRESET and the like, ECANCELED after
    /// stop_receiving(), ETIMEDOUT once the deadline of a wait_receive() passed. Nothing when
    /// the consumer must wait.
    virtual std::optional<result<recv_buffer>> try_receive() noexcept = 0;
    /// Resumes `h` (through the reactor, never from inside this call) once try_receive() has
    /// something to give; at `deadline` (clock::time_point::max(): none) with ETIMEDOUT.
    virtual void wait_receive(std::coroutine_handle<> h, clock::time_point deadline) noexcept = 0;
    /// Chunks received and not taken yet.
    virtual std::size_t received() const noexcept = 0;
    /// Stops receiving: a wait in progress ends with ECANCELED, and so does every later one.
    virtual void stop_receiving() noexcept = 0;

    // Output.

    /// Starts the send `r` describes (see send_operation). False when it completed at once
    /// (r.res is set: bytes taken, a short send possible, or -errno).
    virtual bool start_send(io_request& r) noexcept = 0;
    /// Ends a send in progress early: it still completes, with -ECANCELED (or what it sent).
    virtual void cancel_send(io_request& r) noexcept = 0;
    /// A send in progress whose awaiter is being destroyed: it must complete (or be dropped)
    /// before this returns, resuming nobody.
    virtual void abandon_send(io_request& r) noexcept = 0;
    /// Whether a sendfile request (a file region, without a copy through user space) may be
    /// started. A channel reads the file into memory where it may not.
    virtual bool sends_files() const noexcept { return false; }
    /// Why sends fail, where the transport knows more than the errno a send completes with
    /// (TLS: the handshake's error, where the send gets ECONNABORTED); empty otherwise. The
    /// channel closes with it.
    virtual std::error_code failure() const noexcept { return {}; }

    // The end of the connection.

    /// The peer reads an end of stream after what was sent; receiving goes on (a lingering
    /// close). Call it with no send in progress.
    virtual void end_output() noexcept = 0;
    /// An orderly close: everything sent is delivered, then an end of stream, both ways.
    virtual void close_orderly() noexcept = 0;
    /// A close the peer cannot take for an orderly one (TCP: a reset), after every operation
    /// of this transport's: for output cut short.
    virtual void close_abortive() noexcept = 0;
    /// Bytes of the peer's are waiting unread (taken in, or still in the kernel): a graceful
    /// stop then resets, since an end of stream would read as "closed while idle".
    virtual bool input_waiting() noexcept = 0;

    /// The kernel socket under this transport, if there is one (for its addresses and
    /// options; reading or writing it directly would bypass the transport).
    virtual ringchat::socket* socket() noexcept { return nullptr; }

protected:
    /// Completes `r` with `res` as a backend would: its on_complete, or its waiter queued on
    /// `ready` (a queue the reactor resumes from: the harvest's, or io().deferred()).
    static void complete(io_request& r, std::int32_t res, ready_queue& ready) noexcept {
        r.res = res;
        r.in_flight = false;
        if (r.on_complete != nullptr) {
            r.on_complete(r, ready);
        } else if (r.waiter) {
            ready.push_back(r.waiter);
        }
    }

private:
    reactor* reactor_;
};

/// Awaits the next input of a transport (see transport::try_receive()):
/// `auto chunk = co_await receive_awaitable(t, deadline);` moves it out. Awaited as a named
/// variable, it keeps the input for received(): a coroutine that waits in a loop then holds
/// one result in its frame, not two (GCC 12 gives the awaited value a slot of its own).
class [[nodiscard]] receive_awaitable {
public:
    receive_awaitable(transport& t, clock::time_point deadline) noexcept
        : t_(t), deadline_(deadline) {}
    bool await_ready() noexcept {
        got_ = t_.try_receive();
        return got_.has_value();
    }
    void await_suspend(std::coroutine_handle<> h) noexcept { t_.wait_receive(h, deadline_); }
    result<recv_buffer>&& await_resume() noexcept { return std::move(received()); }
    /// What the wait ended with (once it has ended).
    result<recv_buffer>& received() noexcept {
        if (!got_) {
            got_ = t_.try_receive();
        }
        if (!got_) [[unlikely]] {
            got_ = std::error_code(EPROTO, std::system_category());  // a transport's bug
        }
        return *got_;
    }

private:
    transport& t_;
    clock::time_point deadline_;
    std::optional<result<recv_buffer>> got_;
};

/// One send on a transport, awaited: gathered bytes or a file region. It holds the request
/// (and the msghdr a gathered send needs) inline, so a send costs no allocation.
class [[nodiscard]] send_operation {
public:
    /// Sends up to the parts' bytes (one part: a plain send; several: one sendmsg).
    send_operation(transport& t, std::span<const iovec> parts) noexcept : t_(&t) {
        if (parts.size() == 1) {
            req_.op = opcode::send;
            req_.buf = parts[0].iov_base;
            req_.len = clamp(parts[0].iov_len);
        } else {
            req_.op = opcode::sendmsg;
            msg_.msg_iov = const_cast<iovec*>(parts.data());
            msg_.msg_iovlen = parts.size();
            req_.buf = &msg_;
        }
    }
    /// Sends up to `len` bytes of the regular file `file_fd` from `offset` (a transport that
    /// sends_files()).
    send_operation(transport& t, int file_fd, std::uint64_t offset, std::size_t len) noexcept
        : t_(&t) {
        req_.op = opcode::sendfile;
        req_.flags = file_fd;
        req_.offset = offset;
        req_.len = clamp(len);
    }
    send_operation(const send_operation&) = delete;
    send_operation& operator=(const send_operation&) = delete;
    ~send_operation();

    /// A timeout that starts only if the send has to wait (io_request::timeout_if_blocked).
    void set_timeout_if_blocked(std::chrono::nanoseconds d) noexcept {
        req_.timeout_if_blocked = d;
    }
    void set_deadline(clock::time_point t) noexcept { req_.deadline = t; }
    /// Called instead of queuing the waiter when the send completes later (see
    /// io_operation::set_on_complete()).
    void set_on_complete(void (*fn)(io_request&, ready_queue&) noexcept, void* owner) noexcept {
        req_.on_complete = fn;
        req_.owner = owner;
    }
    io_request& request() noexcept { return req_; }

    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) noexcept {
        req_.waiter = h;
        return t_->start_send(req_);
    }
    result<std::size_t> await_resume() noexcept {
        req_.waiter = {};
        if (req_.res < 0) {
            return errno_code(req_.res);
        }
        return static_cast<std::size_t>(req_.res);
    }

private:
    static std::uint32_t clamp(std::size_t n) noexcept {
        return n > 0x7fff'f000 ? 0x7fff'f000u : static_cast<std::uint32_t>(n);
    }
    transport* t_;
    io_request req_;
    msghdr msg_{};
};

}  // namespace ringchat::chat
