// SPDX-License-Identifier: MIT
// socket: an owning, non-blocking stream socket bound to a reactor, whose operations are
// awaitables (recv, send, gather-send, connect, close).
//
// Invariant: the descriptor is closed exactly once, by close() or by the destructor, and the
// backend is told first (epoll keeps per-fd state). Operations must have completed before the
// socket is destroyed; an awaiting coroutine that is destroyed cancels its own.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <chrono>
#include <cstddef>
#include <span>
#include <utility>

#include "address.hpp"
#include "io_awaitable.hpp"
#include "result.hpp"
#include "task.hpp"

namespace ringchat {

class reactor;

/// sendmsg with a gather list; the msghdr lives in the awaitable.
class [[nodiscard]] gather_awaitable : public io_operation<gather_awaitable> {
public:
    gather_awaitable(reactor& r, int fd, std::span<const iovec> parts) noexcept
        : io_operation(r, opcode::sendmsg, fd) {
        msg_.msg_iov = const_cast<iovec*>(parts.data());
        msg_.msg_iovlen = parts.size();
        req_.buf = &msg_;
    }
    result<std::size_t> await_resume() noexcept { return raw_result(); }

private:
    msghdr msg_{};
};

class socket {
public:
    socket() = default;
    /// Adopts `fd` (made non-blocking here if it is not).
    socket(reactor& r, int fd) noexcept;
    socket(socket&& other) noexcept
        : reactor_(other.reactor_), fd_(std::exchange(other.fd_, -1)) {}
    socket& operator=(socket&& other) noexcept;
    socket(const socket&) = delete;
    socket& operator=(const socket&) = delete;
    ~socket() { close_now(); }

    /// A new non-blocking, close-on-exec socket of `family` (AF_INET, AF_INET6, AF_UNIX).
    static result<socket> open(reactor& r, int family, int type = SOCK_STREAM);
    /// Connects to `to` (TCP_NODELAY on for TCP); ETIMEDOUT after `timeout`.
    /// \return ECONNREFUSED, ETIMEDOUT, ENETUNREACH ... as errors, never exceptions.
    static task<result<socket>> connect(reactor& r, address to,
                                        std::chrono::nanoseconds timeout = std::chrono::seconds(30));

    bool valid() const noexcept { return fd_ >= 0; }
    int fd() const noexcept { return fd_; }
    reactor& owner() const noexcept { return *reactor_; }
    /// Gives up ownership of the descriptor.
    int release() noexcept { return std::exchange(fd_, -1); }

    /// Receives up to buf.size() bytes; 0 = the peer closed its side.
    io_awaitable recv(std::span<std::byte> buf, int flags = 0) noexcept {
        return io_awaitable(*reactor_, opcode::recv, fd_, buf.data(), clamp(buf.size()), flags);
    }
    /// Sends up to buf.size() bytes (a short send is possible; see send_all).
    io_awaitable send(std::span<const std::byte> buf, int flags = 0) noexcept {
        return io_awaitable(*reactor_, opcode::send, fd_, const_cast<std::byte*>(buf.data()),
                            clamp(buf.size()), flags);
    }
    /// Sends the parts in one sendmsg (a short send is possible).
    gather_awaitable send_gather(std::span<const iovec> parts) noexcept {
        return gather_awaitable(*reactor_, fd_, parts);
    }
    /// Sends up to `len` bytes of the regular file `file_fd` from `offset` with sendfile(2),
    /// without copying them through user space (a short send is possible). io_uring has no
    /// sendfile: there it waits for POLLOUT with IORING_OP_POLL_ADD and then calls sendfile.
    io_awaitable send_file(int file_fd, std::uint64_t offset, std::size_t len) noexcept {
        return io_awaitable(*reactor_, opcode::sendfile, fd_, nullptr, clamp(len), file_fd,
                            offset);
    }
    /// Sends all of `buf`, however many sends it takes.
    task<result<void>> send_all(std::span<const std::byte> buf);
    /// Closes through the backend (io_uring: IORING_OP_CLOSE); the socket is then empty.
    io_awaitable close() noexcept;
    /// Closes now, synchronously (the destructor does this).
    void close_now() noexcept;

    result<void> shutdown(int how) noexcept;
    /// Makes the close abortive (SO_LINGER 0): the peer gets a reset, not an end of stream,
    /// so that output cut short cannot pass for complete.
    result<void> reset_on_close() noexcept;
    result<address> local_address() const;
    result<address> peer_address() const;
    result<void> set_nodelay(bool on) noexcept;

private:
    static std::uint32_t clamp(std::size_t n) noexcept {
        return n > 0x7fff'f000 ? 0x7fff'f000u : static_cast<std::uint32_t>(n);
    }
    reactor* reactor_ = nullptr;
    int fd_ = -1;
};

/// Bytes of text, for tests and examples.
inline std::span<const std::byte> as_bytes(std::string_view s) noexcept {
    return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

}  // namespace ringchat
