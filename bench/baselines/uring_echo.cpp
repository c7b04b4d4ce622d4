// SPDX-License-Identifier: MIT
// bench/baselines/uring_echo — the hand-written io_uring echo server the suite measures
// ringchat's io_uring backend against: raw liburing, no framework, one thread. One multishot
// accept; per connection one multishot recv into a provided-buffer ring (1024 × 16 KiB, as
// ringchat's defaults); each received buffer is sent back as it is and returned to the ring when
// its send completes. One send in flight per connection (two unlinked sends may reorder), the
// rest queued; a short send is resubmitted. All submissions of a loop turn go in one
// io_uring_submit_and_wait. SINGLE_ISSUER|DEFER_TASKRUN where the kernel has them.
//
// With --lines, each received buffer is cut into lines and goes back to the ring at once; a
// handler appends each line's reply to the connection's output (bench/baselines/lines.hpp),
// which goes out in one send, the next batch gathering while it is in flight. A peer that
// lets more than 1 MiB of replies pile up unread is closed (a baseline's bound on memory).
//
// ENOBUFS (ring empty) ends a multishot recv: the connection is re-armed once a buffer returns.
//
// Usage: uring_echo [--port P] [--lines]
//        (port 0 = any; prints "uring_echo: ready on 127.0.0.1:P (io_uring)")
#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "command_line.hpp"
#include "lines.hpp"

namespace {

constexpr unsigned buffer_count = 1024;  // a power of two
constexpr unsigned buffer_size = 16 * 1024;
constexpr unsigned short group = 1;
constexpr std::size_t max_pending = 1 << 20;  // --lines: replies a peer leaves unread

enum kind : std::uint64_t { op_accept = 1, op_recv = 2, op_send = 3 };

std::uint64_t tag(kind k, int fd) { return (static_cast<std::uint64_t>(fd) << 8) | k; }

struct chunk {
    unsigned short bid;
    unsigned off;
    unsigned len;
};

struct conn {
    std::deque<chunk> out;  // received buffers still to echo; front is in flight when sending
    baselines::line_echo lines;  // --lines: the line in progress,
    std::string replies;         // the replies gathered while a send is in flight,
    std::string in_flight;       // and the ones it sends
    std::size_t sent = 0;        // how much of in_flight went out
    bool open = false;
    bool recv_armed = false;
    bool sending = false;
    bool eof = false;  // recv ended (peer closed or error): close once the sends are done
};

io_uring ring;
io_uring_buf_ring* br = nullptr;
char* memory = nullptr;
std::vector<conn> conns;  // by fd
std::vector<int> starved;  // connections whose recv ended with ENOBUFS
volatile sig_atomic_t stopping = 0;
bool by_lines = false;  // --lines

void on_signal(int) { stopping = 1; }

io_uring_sqe* get_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    while (sqe == nullptr) {
        io_uring_submit(&ring);  // SQ full: hand it to the kernel and try again
        sqe = io_uring_get_sqe(&ring);
    }
    return sqe;
}

void arm_recv(int fd) {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = group;
    io_uring_sqe_set_data64(sqe, tag(op_recv, fd));
    conns[static_cast<std::size_t>(fd)].recv_armed = true;
}

void send(int fd, conn& c, const char* data, std::size_t len) {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_send(sqe, fd, data, len, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, tag(op_send, fd));
    c.sending = true;
}

void send_front(int fd, conn& c) {
    const chunk& ch = c.out.front();
    send(fd, c, memory + std::size_t{ch.bid} * buffer_size + ch.off, ch.len);
}

// --lines: what was gathered goes out; the next batch gathers in the other string.
void send_replies(int fd, conn& c) {
    c.in_flight.swap(c.replies);
    c.replies.clear();
    c.sent = 0;
    send(fd, c, c.in_flight.data(), c.in_flight.size());
}

void give_back(unsigned short bid) {
    io_uring_buf_ring_add(br, memory + std::size_t{bid} * buffer_size, buffer_size, bid,
                          io_uring_buf_ring_mask(buffer_count), 0);
    io_uring_buf_ring_advance(br, 1);
}

void rearm_starved() {
    for (int fd : starved) {
        conn& c = conns[static_cast<std::size_t>(fd)];
        if (c.open && !c.eof && !c.recv_armed) {
            arm_recv(fd);
        }
    }
    starved.clear();
}

void maybe_close(int fd, conn& c) {
    if (c.eof && !c.recv_armed && !c.sending) {
        for (const chunk& ch : c.out) {
            give_back(ch.bid);
        }
        c = conn{};
        ::close(fd);
    }
}

bool setup_buffers() {
    // liburing 2.3 has no io_uring_setup_buf_ring: map page-aligned ring memory, initialise it,
    // register it (IORING_REGISTER_PBUF_RING, 5.19), then fill it with every buffer.
    const std::size_t ring_bytes = buffer_count * sizeof(io_uring_buf);
    void* mem =
        mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED) {
        std::fprintf(stderr, "uring_echo: mmap: %s\n", std::strerror(errno));
        return false;
    }
    br = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_ring_init(br);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uint64_t>(br);
    reg.ring_entries = buffer_count;
    reg.bgid = group;
    if (const int rc = io_uring_register_buf_ring(&ring, &reg, 0); rc < 0) {
        std::fprintf(stderr, "uring_echo: io_uring_register_buf_ring: %s\n", std::strerror(-rc));
        return false;
    }
    mem = mmap(nullptr, std::size_t{buffer_count} * buffer_size, PROT_READ | PROT_WRITE,
               MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED) {
        std::fprintf(stderr, "uring_echo: mmap: %s\n", std::strerror(errno));
        return false;
    }
    memory = static_cast<char*>(mem);
    for (unsigned id = 0; id < buffer_count; ++id) {
        io_uring_buf_ring_add(br, memory + std::size_t{id} * buffer_size, buffer_size,
                              static_cast<unsigned short>(id), io_uring_buf_ring_mask(buffer_count),
                              static_cast<int>(id));
    }
    io_uring_buf_ring_advance(br, buffer_count);
    return true;
}

bool setup_ring() {
    io_uring_params p{};
    // DEFER_TASKRUN (6.1) runs task work only when we wait; needs SINGLE_ISSUER (6.0).
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
    p.cq_entries = 16384;
    if (io_uring_queue_init_params(4096, &ring, &p) == 0) {
        return true;
    }
    p = io_uring_params{};
    p.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_CQSIZE;
    p.cq_entries = 16384;
    if (io_uring_queue_init_params(4096, &ring, &p) == 0) {
        return true;
    }
    p = io_uring_params{};
    const int rc = io_uring_queue_init_params(4096, &ring, &p);
    if (rc < 0) {
        std::fprintf(stderr, "uring_echo: io_uring_queue_init: %s\n", std::strerror(-rc));
        return false;
    }
    return true;
}

void on_recv(int fd, int res, unsigned flags) {
    conn& c = conns[static_cast<std::size_t>(fd)];
    if (!(flags & IORING_CQE_F_MORE)) {
        c.recv_armed = false;
    }
    if (res > 0) {
        const auto bid = static_cast<unsigned short>(flags >> IORING_CQE_BUFFER_SHIFT);
        if (by_lines) {
            const bool ok = c.eof || c.lines.feed(memory + std::size_t{bid} * buffer_size,
                                                  static_cast<std::size_t>(res), c.replies);
            give_back(bid);
            if (!starved.empty()) {
                rearm_starved();
            }
            if (!ok || c.replies.size() > max_pending) {
                c.eof = true;  // a line too long, or a peer that does not read: close
                shutdown(fd, SHUT_RDWR);  // ends the multishot and a send in flight
                maybe_close(fd, c);       // or their last completions close
                return;
            }
            if (!c.sending && !c.replies.empty()) {
                send_replies(fd, c);
            }
        } else {
            c.out.push_back({bid, 0, static_cast<unsigned>(res)});
            if (!c.sending) {
                send_front(fd, c);
            }
        }
        if (!c.recv_armed && !c.eof) {
            arm_recv(fd);  // the multishot ended (e.g. the CQ was full): start another
        }
        return;
    }
    if (res == -ENOBUFS) {
        if (!c.recv_armed) {
            starved.push_back(fd);  // re-armed when a buffer comes back
        }
        return;
    }
    // 0: the peer closed; < 0: an error. Either way, no more input.
    c.eof = true;
    if (c.recv_armed) {
        shutdown(fd, SHUT_RD);  // ends the multishot; its last completion closes
        return;
    }
    maybe_close(fd, c);
}

void on_send(int fd, int res) {
    conn& c = conns[static_cast<std::size_t>(fd)];
    c.sending = false;
    if (res < 0) {
        c.eof = true;
        if (c.recv_armed) {
            shutdown(fd, SHUT_RDWR);
        }
        maybe_close(fd, c);
        return;
    }
    if (by_lines) {
        c.sent += static_cast<std::size_t>(res);
        if (c.sent < c.in_flight.size()) {
            send(fd, c, c.in_flight.data() + c.sent, c.in_flight.size() - c.sent);
            return;
        }
        c.in_flight.clear();
        if (!c.replies.empty()) {
            send_replies(fd, c);
            return;
        }
        maybe_close(fd, c);
        return;
    }
    chunk& ch = c.out.front();
    ch.off += static_cast<unsigned>(res);
    ch.len -= static_cast<unsigned>(res);
    if (ch.len == 0) {
        give_back(ch.bid);
        c.out.pop_front();
        if (!starved.empty()) {
            rearm_starved();
        }
    }
    if (!c.out.empty()) {
        send_front(fd, c);
        return;
    }
    maybe_close(fd, c);
}

}  // namespace

int main(int argc, char** argv) {
    const auto opts = baselines::parse_options("uring_echo", "io_uring", argc, argv);
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

    const int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<std::uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(lfd, 4096) != 0) {
        std::fprintf(stderr, "uring_echo: cannot listen on port %d: %s\n", port,
                     std::strerror(errno));
        return 1;
    }
    socklen_t len = sizeof sa;
    getsockname(lfd, reinterpret_cast<sockaddr*>(&sa), &len);
    if (!setup_ring() || !setup_buffers()) {
        return 1;
    }
    conns.resize(1024);

    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_multishot_accept(sqe, lfd, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, tag(op_accept, lfd));
    std::printf("uring_echo: ready on 127.0.0.1:%d (io_uring%s)\n", ntohs(sa.sin_port),
                by_lines ? ", lines" : "");
    std::fflush(stdout);

    while (!stopping) {
        const int rc = io_uring_submit_and_wait(&ring, 1);
        if (rc < 0 && rc != -EINTR && rc != -EBUSY) {
            std::fprintf(stderr, "uring_echo: io_uring_submit_and_wait: %s\n", std::strerror(-rc));
            return 1;
        }
        unsigned head = 0;
        unsigned seen = 0;
        io_uring_cqe* cqe = nullptr;
        io_uring_for_each_cqe(&ring, head, cqe) {
            ++seen;
            const std::uint64_t data = io_uring_cqe_get_data64(cqe);
            const int fd = static_cast<int>(data >> 8);
            switch (static_cast<kind>(data & 0xff)) {
            case op_accept:
                if (cqe->res >= 0) {
                    const int cfd = cqe->res;
                    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    if (conns.size() <= static_cast<std::size_t>(cfd)) {
                        conns.resize(static_cast<std::size_t>(cfd) * 2 + 1);
                    }
                    conns[static_cast<std::size_t>(cfd)].open = true;
                    arm_recv(cfd);
                }
                if (!(cqe->flags & IORING_CQE_F_MORE)) {
                    io_uring_sqe* again = get_sqe();
                    io_uring_prep_multishot_accept(again, lfd, nullptr, nullptr, SOCK_CLOEXEC);
                    io_uring_sqe_set_data64(again, tag(op_accept, lfd));
                }
                break;
            case op_recv:
                on_recv(fd, cqe->res, cqe->flags);
                break;
            case op_send:
                on_send(fd, cqe->res);
                break;
            }
        }
        io_uring_cq_advance(&ring, seen);
    }
    return 0;
}
