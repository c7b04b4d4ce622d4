// SPDX-License-Identifier: MIT
// Socket set-up and the operations that are more than one awaitable.
#include "socket.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>

#include "reactor.hpp"

namespace ringchat {
namespace {

std::error_code last_error() noexcept { return {errno, std::system_category()}; }

}  // namespace

socket::socket(reactor& r, int fd) noexcept : reactor_(&r), fd_(fd) {
    const int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && (fl & O_NONBLOCK) == 0) {
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    }
}

socket& socket::operator=(socket&& other) noexcept {
    if (this != &other) {
        close_now();
        reactor_ = other.reactor_;
        fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
}

result<socket> socket::open(reactor& r, int family, int type) {
    int fd = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return last_error();
    }
    return socket(r, fd);
}

task<result<socket>> socket::connect(reactor& r, address to, std::chrono::nanoseconds timeout) {
    auto s = open(r, to.family());
    if (!s) {
        co_return s.error();
    }
    auto done = co_await io_awaitable(r, opcode::connect, s->fd(), to.data(), to.size())
                    .timeout(timeout);
    if (!done) {
        co_return done.error();
    }
    if (to.family() != AF_UNIX) {
        if (auto nodelay = s->set_nodelay(true); !nodelay) {
            co_return nodelay.error();  // as a value, as the header promises: no throw
        }
    }
    co_return std::move(*s);
}

task<result<void>> socket::send_all(std::span<const std::byte> buf) {
    while (!buf.empty()) {
        auto n = co_await send(buf);
        if (!n) {
            co_return n.error();
        }
        buf = buf.subspan(*n);
    }
    co_return result<void>();
}

io_awaitable socket::close() noexcept {
    const int fd = std::exchange(fd_, -1);
    return io_awaitable(*reactor_, opcode::close, fd);
}

void socket::close_now() noexcept {
    if (fd_ >= 0) {
        reactor_->io().forget(fd_);
        ::close(std::exchange(fd_, -1));
    }
}

result<void> socket::reset_on_close() noexcept {
    const linger hard{1, 0};
    if (::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &hard, sizeof hard) < 0) {
        return last_error();
    }
    return result<void>();
}

result<void> socket::shutdown(int how) noexcept {
    if (::shutdown(fd_, how) < 0) {
        return last_error();
    }
    return {};
}

result<address> socket::local_address() const {
    address a;
    socklen_t size = address::capacity();
    if (getsockname(fd_, a.data(), &size) < 0) {
        return last_error();
    }
    a.set_size(size);
    return a;
}

result<address> socket::peer_address() const {
    address a;
    socklen_t size = address::capacity();
    if (getpeername(fd_, a.data(), &size) < 0) {
        return last_error();
    }
    a.set_size(size);
    return a;
}

result<void> socket::set_nodelay(bool on) noexcept {
    const int value = on ? 1 : 0;
    if (setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &value, sizeof value) < 0) {
        return last_error();
    }
    return {};
}

}  // namespace ringchat
