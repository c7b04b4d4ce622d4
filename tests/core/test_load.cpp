// SPDX-License-Identifier: MIT
// Load and failure under traffic, on every backend: a thousand concurrent echo connections
// with every byte checked, a peer that resets while the server is sending, and gather sends.
//
// Spawned tasks report through state that outlives them and count down a latch the test
// body awaits; they never assert themselves (a failed REQUIRE in a detached task would only
// be logged), and they touch shared state only while running, so a body that fails early
// leaves nothing dangling behind.
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "core/listener.hpp"
#include "core/receiver.hpp"
#include "tests/support/support.hpp"

using namespace ringchat;
using namespace std::chrono_literals;

namespace {

/// Resumes the one task awaiting wait() once count_down() ran `n` times.
class latch {
public:
    latch(reactor& r, std::size_t n) noexcept : r_(r), n_(n) {}
    void count_down() noexcept {
        if (--n_ == 0 && waiter_) {
            r_.io().deferred().push_back(std::exchange(waiter_, {}));
        }
    }
    auto wait() noexcept {
        struct awaiter {
            latch& l;
            bool await_ready() const noexcept { return l.n_ == 0; }
            void await_suspend(std::coroutine_handle<> h) noexcept { l.waiter_ = h; }
            void await_resume() const noexcept {}
        };
        return awaiter{*this};
    }

private:
    reactor& r_;
    std::size_t n_;
    std::coroutine_handle<> waiter_;
};

/// Closes a listener when the body leaves, a failed REQUIRE included: accept() calls still
/// waiting then end with ECANCELED rather than point at a listener that is gone.
struct close_on_exit {
    listener& l;
    ~close_on_exit() { l.close(); }
};

/// Raises the soft descriptor limit to the hard one (1,000 connections need 2,000+).
void raise_fd_limit() {
    rlimit lim{};
    REQUIRE(getrlimit(RLIMIT_NOFILE, &lim) == 0);
    if (lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        REQUIRE(setrlimit(RLIMIT_NOFILE, &lim) == 0);
    }
}

/// Echoes one connection with the multishot receiver until the peer closes or fails.
task<> echo_connection(ringchat::socket s) {
    receiver in(s);
    for (;;) {
        auto chunk = co_await in.next();
        if (!chunk || chunk->empty()) {
            break;
        }
        if (!co_await s.send_all(chunk->data())) {
            break;
        }
    }
}

/// Accepts `n` connections and echoes each; ends early once the listener is closed.
task<> echo_server(reactor& r, listener& l, int n, latch& done) {
    for (int i = 0; i < n; ++i) {
        auto s = co_await l.accept();
        if (!s) {
            break;
        }
        r.spawn(echo_connection(std::move(*s)));
    }
    done.count_down();
}

// --- 1,000 connections × 100 messages -------------------------------------------------------

constexpr int load_connections = 1000;
constexpr int load_messages = 100;

/// Message `m` of connection `c`: 32 to 200 bytes that name both, so a mix-up shows.
std::string load_message(int c, int m) {
    const std::size_t size = 32 + static_cast<std::size_t>(c * 7 + m * 13) % 169;
    std::string out = "c" + std::to_string(c) + " m" + std::to_string(m) + " |";
    while (out.size() < size) {
        out.push_back(static_cast<char>('a' + (c + m + static_cast<int>(out.size())) % 26));
    }
    out.back() = '\n';
    return out;
}

struct load_report {
    std::size_t verified_bytes = 0;
    int failures = 0;
    std::string first_failure;
    void fail(std::string what) {
        if (failures++ == 0) {
            first_failure = std::move(what);
        }
    }
};

/// Sends each message, one at a time, and checks its echo byte for byte.
task<std::string> load_conversation(reactor& r, address to, int c, std::size_t& verified) {
    auto s = co_await ringchat::socket::connect(r, to);
    if (!s) {
        co_return "connect: " + s.error().message();
    }
    std::array<std::byte, 256> in{};
    for (int m = 0; m < load_messages; ++m) {
        const std::string message = load_message(c, m);
        if (auto sent = co_await s->send_all(test::bytes(message)); !sent) {
            co_return "send: " + sent.error().message();
        }
        // The echo may come split (or, across messages, merged): read exactly its length.
        std::size_t got = 0;
        while (got < message.size()) {
            auto n = co_await s->recv(std::span(in).subspan(got, message.size() - got));
            if (!n) {
                co_return "recv: " + n.error().message();
            }
            if (*n == 0) {
                co_return "recv: early end of stream";
            }
            got += *n;
        }
        if (std::memcmp(in.data(), message.data(), message.size()) != 0) {
            co_return "echo differs from '" + message + "'";
        }
        verified += message.size();
    }
    co_return std::string();
}

task<> load_client(reactor& r, address to, int c, load_report& report, latch& done) {
    std::size_t verified = 0;
    std::string failure = co_await load_conversation(r, to, c, verified);
    report.verified_bytes += verified;
    if (!failure.empty()) {
        report.fail("connection " + std::to_string(c) + ": " + failure);
    }
    done.count_down();
}

task<> load_body(reactor& r) {
    auto l = listener::bind(r, address::ipv4("127.0.0.1", 0));
    REQUIRE(l);
    const close_on_exit closer{*l};
    latch server_done(r, 1);
    latch clients_done(r, load_connections);
    load_report report;
    r.spawn(echo_server(r, *l, load_connections, server_done));
    for (int c = 0; c < load_connections; ++c) {
        r.spawn(load_client(r, l->local_address(), c, report, clients_done));
    }
    co_await clients_done.wait();
    l->close();  // a client that never connected must not leave the server waiting
    co_await server_done.wait();

    std::size_t expected = 0;
    for (int c = 0; c < load_connections; ++c) {
        for (int m = 0; m < load_messages; ++m) {
            expected += load_message(c, m).size();
        }
    }
    INFO("first failure: " << report.first_failure);
    CHECK(report.failures == 0);
    CHECK(report.verified_bytes == expected);
    CHECK(l->stats().accepted == static_cast<std::uint64_t>(load_connections));
}

// --- a peer that resets mid-send ------------------------------------------------------------

constexpr std::size_t blast_size = 8 * 1024 * 1024;

struct blast_report {
    bool finished = false;
    std::error_code error;
};

/// Sends 8 MiB to the first connection (through a small send buffer, so it cannot all be
/// queued in the kernel at once), then echoes the second.
task<> reset_server(reactor& r, listener& l, blast_report& report, latch& blasted,
                    latch& done) {
    auto first = co_await l.accept();
    if (first) {
        const int small = 64 * 1024;
        setsockopt(first->fd(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        std::vector<std::byte> payload(blast_size, std::byte{'x'});
        auto sent = co_await first->send_all(payload);
        report.error = sent ? std::error_code() : sent.error();
    }
    report.finished = true;
    blasted.count_down();
    if (auto second = co_await l.accept()) {
        r.spawn(echo_connection(std::move(*second)));
    }
    done.count_down();
}

task<> reset_body(reactor& r) {
    auto l = listener::bind(r, address::ipv4("127.0.0.1", 0));
    REQUIRE(l);
    const close_on_exit closer{*l};
    latch blasted(r, 1);
    latch server_done(r, 1);
    blast_report report;
    r.spawn(reset_server(r, *l, report, blasted, server_done));
    {
        auto c = co_await ringchat::socket::connect(r, l->local_address());
        REQUIRE(c);
        const int small = 16 * 1024;
        setsockopt(c->fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        const std::string start = co_await test::recv_exactly(*c, 64 * 1024);
        CHECK(start == std::string(64 * 1024, 'x'));
        // Linger 0: close sends an RST rather than a FIN, with the server mid-send.
        const linger reset{1, 0};
        REQUIRE(setsockopt(c->fd(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset) == 0);
        c->close_now();
    }
    co_await blasted.wait();
    REQUIRE(report.finished);
    INFO("send_all ended with: " << report.error.message());
    CHECK((report.error == std::errc::connection_reset || report.error == std::errc::broken_pipe));

    // The server is still serving.
    auto c = co_await ringchat::socket::connect(r, l->local_address());
    REQUIRE(c);
    const std::string message = "still serving after a reset\n";
    // Never co_await inside a Catch2 macro: GCC 12 evaluates its argument more than once.
    auto sent = co_await c->send_all(test::bytes(message));
    REQUIRE(sent);
    const std::string echoed = co_await test::recv_exactly(*c, message.size());
    CHECK(echoed == message);
    co_await server_done.wait();
}

// --- gather send ----------------------------------------------------------------------------

/// Sends every part with send_gather, resuming after short sends; the parts are consumed.
task<result<void>> send_gather_all(ringchat::socket& s, std::vector<iovec> parts) {
    std::size_t first = 0;
    while (first < parts.size()) {
        auto n = co_await s.send_gather(std::span(parts).subspan(first));
        if (!n) {
            co_return n.error();
        }
        std::size_t left = *n;
        while (first < parts.size() && left >= parts[first].iov_len) {
            left -= parts[first].iov_len;
            ++first;
        }
        if (left > 0) {
            parts[first].iov_base = static_cast<char*>(parts[first].iov_base) + left;
            parts[first].iov_len -= left;
        }
    }
    co_return result<void>();
}

task<> collect(ringchat::socket s, std::size_t n, std::string& out, latch& done) {
    out = co_await test::recv_exactly(s, n);
    done.count_down();
}

iovec part(std::string& s) { return {s.data(), s.size()}; }

task<> gather_body(reactor& r) {
    auto l = listener::bind(r, address::ipv4("127.0.0.1", 0));
    REQUIRE(l);
    const close_on_exit closer{*l};
    auto c = co_await ringchat::socket::connect(r, l->local_address());
    REQUIRE(c);
    auto server_side = co_await l->accept();
    REQUIRE(server_side);

    // Small parts, an empty one among them: one sendmsg takes them all.
    std::string a = "alpha-";
    std::string empty;
    std::string b = "beta-";
    std::string pattern(3000, '\0');
    for (std::size_t i = 0; i < pattern.size(); ++i) {
        pattern[i] = static_cast<char>('A' + i % 23);
    }
    std::string z = "-omega";
    const std::array<iovec, 5> small{part(a), part(empty), part(b), part(pattern), part(z)};
    auto n = co_await c->send_gather(small);
    REQUIRE(n);
    const std::string joined = a + b + pattern + z;
    CHECK(*n == joined.size());
    // Never co_await inside a Catch2 macro: GCC 12 evaluates its argument more than once.
    const std::string small_got = co_await test::recv_exactly(*server_side, joined.size());
    CHECK(small_got == joined);

    // Large parts: short sends may happen; the peer reads concurrently.
    std::vector<std::string> big;
    for (char fill : {'1', '2', '3'}) {
        big.emplace_back(256 * 1024 + static_cast<std::size_t>(fill - '0') * 7, fill);
    }
    const std::string big_joined = big[0] + big[1] + big[2];
    std::string received;
    latch got(r, 1);
    r.spawn(collect(std::move(*server_side), big_joined.size(), received, got));
    std::vector<iovec> parts{part(big[0]), part(big[1]), part(big[2])};
    auto sent = co_await send_gather_all(*c, std::move(parts));
    REQUIRE(sent);
    co_await got.wait();
    CHECK(received.size() == big_joined.size());
    CHECK(received == big_joined);
}

}  // namespace

TEST_CASE("1,000 connections each echo 100 messages, every byte checked", "[core][load]") {
    raise_fd_limit();
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, load_body);
}

TEST_CASE("a peer that resets mid-send fails the send, and the server keeps serving",
          "[core][load]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, reset_body);
}

TEST_CASE("send_gather arrives as the concatenation of its parts", "[core][load]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, gather_body);
}
