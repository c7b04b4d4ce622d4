// SPDX-License-Identifier: MIT
// bench/baselines/epoll_echo — the hand-written epoll echo server the suite measures ringchat's
// epoll backend against: no framework, one thread, non-blocking sockets registered once,
// edge-triggered. Bytes go back as they come, which for line echo is the same as echoing each
// line; with --lines each line is found and echoed by a handler (bench/baselines/lines.hpp). A read that returns less than the buffer drained the socket (TCP), so no extra read
// waits for EAGAIN; output that does not fit is kept and sent on EPOLLOUT, and reading stops
// while more than 1 MiB waits (a peer that does not read cannot grow our memory).
//
// Usage: epoll_echo [--port P] [--lines]
//        (port 0 = any; prints "epoll_echo: ready on 127.0.0.1:P (epoll)")
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "command_line.hpp"
#include "lines.hpp"

namespace {

constexpr std::size_t max_pending = 1 << 20;

struct conn {
    std::string pending;  // echo bytes the socket did not take yet
    std::size_t off = 0;
    baselines::line_echo lines;  // --lines: the line in progress
    bool throttled = false;  // stopped reading until pending drains
    bool open = false;
};

volatile sig_atomic_t stopping = 0;
bool by_lines = false;  // --lines
std::vector<conn> conns;  // by fd

void on_signal(int) { stopping = 1; }

void close_conn(int fd) {
    conns[static_cast<std::size_t>(fd)] = conn{};
    ::close(fd);  // also leaves the epoll set
}

// Sends what is pending; false if the connection died.
bool flush(int fd, conn& c) {
    while (c.off < c.pending.size()) {
        const ssize_t n =
            ::send(fd, c.pending.data() + c.off, c.pending.size() - c.off, MSG_NOSIGNAL);
        if (n < 0) {
            return errno == EAGAIN;
        }
        c.off += static_cast<std::size_t>(n);
    }
    c.pending.clear();
    c.off = 0;
    return true;
}

// Reads and echoes until the socket is drained or too much is pending; false if it died.
bool pump(int fd, conn& c, std::vector<char>& buf) {
    for (;;) {
        if (c.pending.size() - c.off > max_pending) {
            c.throttled = true;
            return true;
        }
        const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
        if (n == 0) {
            return false;
        }
        if (n < 0) {
            return errno == EAGAIN || errno == EINTR;
        }
        const auto got = static_cast<std::size_t>(n);
        if (by_lines) {
            const bool idle = c.pending.empty();  // else EPOLLOUT sends it
            if (!c.lines.feed(buf.data(), got, c.pending) || (idle && !flush(fd, c))) {
                return false;
            }
            if (got < buf.size()) {
                return true;
            }
            continue;
        }
        std::size_t sent = 0;
        if (c.pending.empty()) {
            const ssize_t s = ::send(fd, buf.data(), got, MSG_NOSIGNAL);
            if (s < 0 && errno != EAGAIN) {
                return false;
            }
            sent = s > 0 ? static_cast<std::size_t>(s) : 0;
        }
        c.pending.append(buf.data() + sent, got - sent);
        if (got < buf.size()) {
            return true;
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    const auto opts = baselines::parse_options("epoll_echo", "epoll", argc, argv);
    const int port = opts.port;
    by_lines = opts.lines;
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);

    const int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<std::uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(lfd, 4096) != 0) {
        std::fprintf(stderr, "epoll_echo: cannot listen on port %d: %s\n", port,
                     std::strerror(errno));
        return 1;
    }
    socklen_t len = sizeof sa;
    getsockname(lfd, reinterpret_cast<sockaddr*>(&sa), &len);

    const int ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = lfd;
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    std::printf("epoll_echo: ready on 127.0.0.1:%d (epoll%s)\n", ntohs(sa.sin_port),
                by_lines ? ", lines" : "");
    std::fflush(stdout);

    std::vector<char> buf(64 * 1024);
    std::vector<epoll_event> events(512);
    while (!stopping) {
        const int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), -1);
        for (int i = 0; i < n; ++i) {
            const epoll_event& e = events[static_cast<std::size_t>(i)];
            const int fd = e.data.fd;
            if (fd == lfd) {
                for (;;) {
                    const int cfd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (cfd < 0) {
                        break;  // EAGAIN, or EMFILE and friends: try again on the next event
                    }
                    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    if (conns.size() <= static_cast<std::size_t>(cfd)) {
                        conns.resize(static_cast<std::size_t>(cfd) * 2 + 1);
                    }
                    conns[static_cast<std::size_t>(cfd)].open = true;
                    epoll_event ce{};
                    ce.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
                    ce.data.fd = cfd;
                    epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ce);
                }
                continue;
            }
            conn& c = conns[static_cast<std::size_t>(fd)];
            if (!c.open) {
                continue;
            }
            bool alive = true;
            if (e.events & EPOLLOUT) {
                alive = flush(fd, c);
                if (alive && c.throttled && c.pending.empty()) {
                    c.throttled = false;
                    alive = pump(fd, c, buf);
                }
            }
            const bool readable = e.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR);
            if (alive && readable && !c.throttled) {
                alive = pump(fd, c, buf);
            }
            if (!alive || (e.events & (EPOLLHUP | EPOLLERR))) {
                close_conn(fd);
            }
        }
    }
    return 0;
}
