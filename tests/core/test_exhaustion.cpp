// SPDX-License-Identifier: MIT
// Running out, on every backend: descriptors (accept under EMFILE pauses, never spins, and
// recovers), provided receive buffers (ENOBUFS delays a connection, never closes it), and
// queue slots (a tiny SQ and CQ still complete every operation).
//
// Spawned tasks report through state that outlives them and count down a latch the test
// body awaits; they touch shared state only while running, so a body that fails early leaves
// nothing dangling behind.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "core/listener.hpp"
#include "tests/support/peers.hpp"
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

/// Aborts the process unless destroyed within `limit`: a hung test fails, never hangs.
class watchdog {
public:
    explicit watchdog(std::chrono::seconds limit)
        : thread_([this, limit] {
              std::unique_lock lock(mutex_);
              if (!cv_.wait_for(lock, limit, [this] { return done_; })) {
                  std::fprintf(stderr, "watchdog: test still running after %llds; aborting\n",
                               static_cast<long long>(limit.count()));
                  std::abort();
              }
          }) {}
    watchdog(const watchdog&) = delete;
    watchdog& operator=(const watchdog&) = delete;
    ~watchdog() {
        {
            std::lock_guard lock(mutex_);
            done_ = true;
        }
        cv_.notify_one();
        thread_.join();
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    bool done_ = false;
    std::thread thread_;
};

/// test::run with reactor options of the test's choosing: the same watchdog and leak checks
/// (no task left, no descriptor more), and every provided buffer back in the pool.
void run_with(reactor_options options, task<> (*body)(reactor&),
              std::chrono::seconds limit = 60s) {
    const std::size_t fds_before = test::open_fds();
    {
        watchdog guard(limit);
        reactor r(options);
        REQUIRE(r.kind() == options.kind);
        r.block_on(body(r));
        r.run();
        CHECK(r.tasks() == 0);
        CHECK(r.io().free_buffers() == options.buffer_count);
    }
    CHECK(test::open_fds() == fds_before);
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

/// Accepts `n` connections and hands each to `serve`; ends early once the listener closes.
task<> serve_n(reactor& r, listener& l, int n, task<> (*serve)(ringchat::socket),
               latch& done) {
    for (int i = 0; i < n; ++i) {
        auto s = co_await l.accept();
        if (!s) {
            break;
        }
        r.spawn(serve(std::move(*s)));
    }
    done.count_down();
}

// --- accept under EMFILE --------------------------------------------------------------------

/// Lowers the soft RLIMIT_NOFILE to just above the highest descriptor open and takes every
/// free one below it, so the next accept fails with EMFILE. release() (or the destructor)
/// gives them back and restores the limit.
class descriptor_famine {
public:
    descriptor_famine() {
        if (getrlimit(RLIMIT_NOFILE, &saved_) != 0) {
            return;
        }
        int highest = 0;
        for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
            highest = std::max(highest, std::stoi(entry.path().filename().string()));
        }
        rlimit low = saved_;
        low.rlim_cur = static_cast<rlim_t>(highest) + 1 + 8;
        if (setrlimit(RLIMIT_NOFILE, &low) != 0) {
            return;
        }
        lowered_ = true;
        const int first = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (first < 0) {
            return;
        }
        taken_.push_back(first);
        for (;;) {
            const int fd = fcntl(first, F_DUPFD_CLOEXEC, 0);
            if (fd < 0) {
                exhausted_ = errno == EMFILE;
                break;
            }
            taken_.push_back(fd);
        }
    }
    descriptor_famine(const descriptor_famine&) = delete;
    descriptor_famine& operator=(const descriptor_famine&) = delete;
    ~descriptor_famine() { release(); }

    /// True when every descriptor the limit allows is taken.
    bool exhausted() const noexcept { return exhausted_; }
    std::size_t taken() const noexcept { return taken_.size(); }

    void release() noexcept {
        for (int fd : taken_) {
            ::close(fd);
        }
        taken_.clear();
        if (lowered_) {
            setrlimit(RLIMIT_NOFILE, &saved_);
            lowered_ = false;
        }
    }

private:
    rlimit saved_{};
    std::vector<int> taken_;
    bool lowered_ = false;
    bool exhausted_ = false;
};

constexpr int famine_clients = 8;

task<> emfile_body(reactor& r) {
    listen_options options;
    options.pause = 50ms;
    options.backlog = 64;
    auto l = listener::bind(r, address::ipv4("127.0.0.1", 0), options);
    REQUIRE(l);
    const close_on_exit closer{*l};
    latch served(r, 1);
    r.spawn(serve_n(r, *l, famine_clients, echo_connection, served));

    // The clients' descriptors are made while there are some; they connect during the famine.
    std::vector<ringchat::socket> clients;
    for (int i = 0; i < famine_clients; ++i) {
        auto s = ringchat::socket::open(r, AF_INET);
        REQUIRE(s);
        clients.push_back(std::move(*s));
    }
    address to = l->local_address();
    {
        descriptor_famine famine;
        REQUIRE(famine.exhausted());
        const listener_stats before = l->stats();
        const auto start = clock::now();
        for (auto& c : clients) {
            // The kernel completes the handshake into the listen backlog; accept cannot take it.
            auto connected =
                co_await io_awaitable(r, opcode::connect, c.fd(), to.data(), to.size());
            REQUIRE(connected);
        }
        // Hold the famine until accepting has paused a few times (at most 100 pauses long).
        for (int i = 0; i < 100 && l->stats().pauses - before.pauses < 3; ++i) {
            (void)co_await r.sleep_for(options.pause);
        }
        const auto held = clock::now() - start;
        const listener_stats after = l->stats();
        famine.release();

        // No spinning: at most one arm and one pause per pause period (and a few to spare).
        const auto periods = static_cast<std::uint64_t>(held / options.pause);
        CAPTURE(periods, after.arms - before.arms, after.pauses - before.pauses);
        CHECK(after.accepted == before.accepted);
        CHECK(after.pauses - before.pauses >= 1);
        CHECK(after.pauses - before.pauses <= periods + 3);
        CHECK(after.arms - before.arms <= periods + 3);
    }

    // Descriptors are back: the connections waiting in the backlog are accepted and served.
    for (int i = 0; i < famine_clients; ++i) {
        const std::string message = "waited out the famine " + std::to_string(i) + "\n";
        // Never co_await inside a Catch2 macro: GCC 12 evaluates its argument more than once.
        ringchat::socket& c = clients[static_cast<std::size_t>(i)];
        auto sent = co_await c.send_all(test::bytes(message));
        REQUIRE(sent);
        const std::string echoed = co_await test::recv_exactly(c, message.size());
        CHECK(echoed == message);
    }
    co_await served.wait();
    CHECK(l->stats().accepted == famine_clients);
}

// --- ENOBUFS: a pool of four provided buffers -----------------------------------------------

constexpr int starving_connections = 32;
constexpr std::size_t starving_bytes = 64 * 1024;
constexpr std::size_t header_bytes = 4;

std::byte pattern_byte(std::uint32_t c, std::size_t i) {
    return static_cast<std::byte>((c * 131 + i * 7 + i / 1021) & 0xff);
}

/// A 4-byte connection number, then 64 KiB of that connection's pattern.
std::vector<std::byte> starving_payload(std::uint32_t c) {
    std::vector<std::byte> out(header_bytes + starving_bytes);
    for (std::size_t i = 0; i < header_bytes; ++i) {
        out[i] = static_cast<std::byte>((c >> (8 * i)) & 0xff);
    }
    for (std::size_t i = 0; i < starving_bytes; ++i) {
        out[header_bytes + i] = pattern_byte(c, i);
    }
    return out;
}

/// Receives one connection through the tiny pool, holding up to three buffers across a
/// short sleep every other round. "ok", or what went wrong.
task<std::string> drain_slowly(ringchat::socket& s) {
    reactor& r = s.owner();
    receiver in(s);
    // A deadline too: each chunk that comes then cancels a timer, from inside the harvest.
    in.set_deadline(clock::now() + 30s);
    std::vector<std::byte> got;
    int rounds = 0;
    for (;;) {
        auto first = co_await in.next();
        if (!first) {
            co_return "recv failed after " + std::to_string(got.size()) +
                " bytes: " + first.error().message();
        }
        if (first->empty()) {
            break;
        }
        // TRICKY: buffers are held across a sleep, never across a wait for more data: with
        // four buffers in all, connections each holding one while awaiting another would
        // deadlock. Chunks already queued are taken without waiting.
        std::vector<recv_buffer> held;
        held.push_back(std::move(*first));
        while (held.size() < 3 && in.queued() > 0) {
            auto more = co_await in.next();
            if (!more || more->empty()) {
                co_return "a queued chunk was not there";
            }
            held.push_back(std::move(*more));
        }
        if (++rounds % 2 == 0) {
            (void)co_await r.sleep_for(1ms);
        }
        for (const recv_buffer& b : held) {
            got.insert(got.end(), b.data().begin(), b.data().end());
        }
    }
    if (got.size() != header_bytes + starving_bytes) {
        co_return "got " + std::to_string(got.size()) + " bytes";
    }
    std::uint32_t c = 0;
    for (std::size_t i = 0; i < header_bytes; ++i) {
        c |= std::to_integer<std::uint32_t>(got[i]) << (8 * i);
    }
    for (std::size_t i = 0; i < starving_bytes; ++i) {
        if (got[header_bytes + i] != pattern_byte(c, i)) {
            co_return "connection " + std::to_string(c) + ": byte " + std::to_string(i) +
                " differs";
        }
    }
    co_return "ok";
}

/// Answers the verdict and closes.
task<> starving_connection(ringchat::socket s) {
    std::string verdict = co_await drain_slowly(s);
    verdict += '\n';
    (void)co_await s.send_all(test::bytes(verdict));
}

struct verdicts {
    int ok = 0;
    std::string first_failure;
};

task<std::string> feed(reactor& r, address to, std::uint32_t c) {
    auto s = co_await ringchat::socket::connect(r, to);
    if (!s) {
        co_return "connect: " + s.error().message();
    }
    const std::vector<std::byte> payload = starving_payload(c);
    if (auto sent = co_await s->send_all(payload); !sent) {
        co_return "send: " + sent.error().message();
    }
    if (auto shut = s->shutdown(SHUT_WR); !shut) {
        co_return "shutdown: " + shut.error().message();
    }
    co_return co_await test::recv_all(*s);
}

task<> starving_client(reactor& r, address to, std::uint32_t c, verdicts& out, latch& done) {
    const std::string verdict = co_await feed(r, to, c);
    if (verdict == "ok\n") {
        ++out.ok;
    } else if (out.first_failure.empty()) {
        out.first_failure = "client " + std::to_string(c) + ": " + verdict;
    }
    done.count_down();
}

task<> enobufs_body(reactor& r) {
    REQUIRE(r.io().free_buffers() == 4);
    auto l = listener::bind(r, address::ipv4("127.0.0.1", 0));
    REQUIRE(l);
    const close_on_exit closer{*l};
    latch server_done(r, 1);
    latch clients_done(r, starving_connections);
    verdicts results;
    r.spawn(serve_n(r, *l, starving_connections, starving_connection, server_done));
    for (int c = 0; c < starving_connections; ++c) {
        r.spawn(starving_client(r, l->local_address(), static_cast<std::uint32_t>(c), results,
                                clients_done));
    }
    co_await clients_done.wait();
    l->close();
    co_await server_done.wait();
    INFO("first failure: " << results.first_failure);
    CHECK(results.ok == starving_connections);
}

/// Yields until `done()` (at most 1,000 turns): false if it never came.
template <class Condition>
task<bool> turns_until(reactor& r, Condition done) {
    for (int turn = 0; turn < 1000; ++turn) {
        if (done()) {
            co_return true;
        }
        co_await test::yield_now{r};
    }
    co_return done();
}

/// Two buffers in all. X holds both; A and B wait for one, A first, with nobody reading A. A
/// buffer comes back: A is told first and takes none, and the buffer must go on to B.
task<> handed_on_body(reactor& r) {
    REQUIRE(r.io().free_buffers() == 2);
    auto [a_peer, a] = co_await test::tcp_pair(r);
    auto [b_peer, b] = co_await test::tcp_pair(r);
    auto [x_peer, x] = co_await test::tcp_pair(r);
    receiver ra(a);
    receiver rb(b);
    receiver rx(x);
    // A receives once; its reader then stops asking, while its multishot recv stays armed.
    REQUIRE(::send(a_peer.fd(), "1", 1, MSG_NOSIGNAL) == 1);
    auto first = co_await ra.next();
    REQUIRE(first);
    first->release();
    // X takes both buffers and keeps them.
    const std::string x_data(2048, 'x');
    REQUIRE(::send(x_peer.fd(), x_data.data(), x_data.size(), MSG_NOSIGNAL) == 2048);
    std::vector<recv_buffer> held;
    for (std::size_t got = 0; got < x_data.size();) {
        auto c = co_await rx.next();
        REQUIRE(c);
        got += c->size();
        held.push_back(std::move(*c));
    }
    REQUIRE(r.io().free_buffers() == 0);
    // A's armed recv finds no buffer, then B's does.
    REQUIRE(::send(a_peer.fd(), "2", 1, MSG_NOSIGNAL) == 1);
    bool starving = co_await turns_until(r, [&] { return ra.starved(); });
    REQUIRE(starving);
    REQUIRE(::send(b_peer.fd(), "b", 1, MSG_NOSIGNAL) == 1);
    rb.set_deadline(clock::now() + 5s);
    test::background<result<recv_buffer>> b_reads(r, [](receiver& in) -> task<result<recv_buffer>> {
        auto c = co_await in.next();
        co_return c;
    }(rb));
    starving = co_await turns_until(r, [&] { return rb.starved(); });
    REQUIRE(starving);
    held.pop_back();  // one buffer back
    auto for_b = co_await b_reads.join();
    INFO("B's next(): " << (for_b ? std::string("data") : for_b.error().message()));
    REQUIRE(for_b);
    CHECK(test::text(for_b->data()) == "b");
    CHECK_FALSE(ra.starved());  // told, and it took nothing: its reader is not waiting
    CHECK(ra.queued() == 0);
}

// --- a queue of eight: full SQ, CQ bursts ---------------------------------------------------

constexpr int burst = 500;

/// `n` socket pairs: spawns `start(ours, i)` on one end of each; returns the other ends.
template <class Start>
std::vector<ringchat::socket> spawn_on_pairs(reactor& r, int n, Start start) {
    std::vector<ringchat::socket> peers;
    for (int i = 0; i < n; ++i) {
        auto [ours, peer] = test::socket_pair(r);
        r.spawn(start(std::move(ours), i));
        peers.push_back(std::move(peer));
    }
    return peers;
}

task<> sleeper(reactor& r, clock::time_point until, int& ok, latch& done) {
    auto slept = co_await r.sleep_until(until);
    if (slept && clock::now() >= until) {
        ++ok;
    }
    done.count_down();
}

std::string burst_message(int i) { return "message " + std::to_string(i); }

task<> reader(ringchat::socket s, int i, int& ok, latch& started, latch& done) {
    std::array<std::byte, 64> buf{};
    started.count_down();
    // A linked timeout too: two SQEs for each recv.
    auto n = co_await s.recv(buf).timeout(30s);
    if (n && test::text(std::span(buf).first(*n)) == burst_message(i)) {
        ++ok;
    }
    done.count_down();
}

task<> pressure_body(reactor& r) {
    int slept = 0;
    int read = 0;
    latch sleeps_done(r, burst);
    latch started(r, burst);
    latch reads_done(r, burst);
    // The same deadline for all: their completions come in one burst.
    const auto until = clock::now() + 50ms;
    for (int i = 0; i < burst; ++i) {
        r.spawn(sleeper(r, until, slept, sleeps_done));
    }
    std::vector<ringchat::socket> peers = spawn_on_pairs(r, burst, [&](ringchat::socket s, int i) {
        return reader(std::move(s), i, read, started, reads_done);
    });
    co_await started.wait();
    // Every recv is in flight: make them all complete at once.
    for (int i = 0; i < burst; ++i) {
        const std::string message = burst_message(i);
        REQUIRE(::send(peers[static_cast<std::size_t>(i)].fd(), message.data(), message.size(),
                       MSG_NOSIGNAL) == static_cast<ssize_t>(message.size()));
    }
    co_await reads_done.wait();
    co_await sleeps_done.wait();
    CHECK(read == burst);
    CHECK(slept == burst);
}

}  // namespace

namespace {

/// A burst of connections that waits in the backlog, then an accept loop that takes each as
/// it comes: the multishot accept fills the small queue, is cancelled, and must be armed again
/// however the cancel's completion and the next accept() interleave.
task<> full_queue_body(reactor& r) {
    constexpr int burst = 300;
    listen_options o;
    o.max_queued = 4;
    auto l = listener::bind(r, address::ipv4("127.0.0.1", 0), o);
    REQUIRE(l);
    // Half the burst waits in the backlog; the other half arrives while the server accepts
    // (it drains the queue within a turn, then waits), so that the cancel of a full queue is
    // still on its way when accept() next has to wait.
    std::vector<ringchat::socket> clients;
    for (int i = 0; i < burst / 2; ++i) {
        auto c = co_await ringchat::socket::connect(r, l->local_address());
        REQUIRE(c);
        clients.push_back(std::move(*c));
    }
    test::background<bool> more(r, [](reactor& r, address to,
                                      std::vector<ringchat::socket>& out) -> task<bool> {
        for (int i = 0; i < burst / 2; ++i) {
            auto c = co_await ringchat::socket::connect(r, to);
            REQUIRE(c);
            out.push_back(std::move(*c));
            if (i % 8 == 0) {
                co_await test::yield_now{r};
            }
        }
        co_return true;
    }(r, l->local_address(), clients));
    int accepted = 0;
    for (; accepted < burst; ++accepted) {
        auto s = co_await l->accept().timeout(5s);
        if (!s) {
            FAIL_CHECK("accept " << accepted << " of " << burst << ": " << s.error().message());
            break;
        }
    }
    (void)co_await more.join();
    CHECK(accepted == burst);
    CHECK(l->stats().arms > 1);  // the queue did fill, and accepting was armed again
}

}  // namespace

TEST_CASE("a full accept queue pauses the multishot accept; every connection is accepted",
          "[core][exhaustion]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, full_queue_body);
}

TEST_CASE("accept under EMFILE pauses without spinning, then serves the backlog",
          "[core][exhaustion]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, emfile_body);
}

namespace {

/// `count` provided buffers of 1 KiB: a pool small enough to run dry; on io_uring consumed
/// incrementally (where the kernel can) or whole.
reactor_options tiny_pool(backend_kind kind, unsigned count, bool incremental = true) {
    reactor_options options;
    options.kind = kind;
    options.buffer_count = count;
    options.buffer_size = 1024;
    options.incremental_buffers = incremental;
    return options;
}

/// Whether this kernel consumes provided buffers incrementally (Linux 6.12).
bool kernel_has_incremental_buffers() {
    utsname u{};
    unsigned major = 0;
    unsigned minor = 0;
    return ::uname(&u) == 0 && std::sscanf(u.release, "%u.%u", &major, &minor) == 2 &&
           (major > 6 || (major == 6 && minor >= 12));
}

/// Two buffers of 1 KiB consumed incrementally: the receives of two connections share the
/// buffer the kernel is filling; a chunk held keeps its buffer from the kernel but not the
/// other connection's bytes from arriving; every byte arrives intact and in order; the
/// buffers go back once every chunk is released.
task<> shared_buffer_body(reactor& r) {
    REQUIRE(r.io().free_buffers() == 2);
    auto [a_peer, a] = co_await test::tcp_pair(r);
    auto [b_peer, b] = co_await test::tcp_pair(r);
    receiver ra(a);
    receiver rb(b);
    ra.set_deadline(clock::now() + 10s);
    rb.set_deadline(clock::now() + 10s);
    const std::string a_first(100, 'a');
    REQUIRE(::send(a_peer.fd(), a_first.data(), a_first.size(), MSG_NOSIGNAL) == 100);
    auto held = co_await ra.next();
    REQUIRE(held);
    REQUIRE(test::text(held->data()) == a_first);
    const std::string b_first(100, 'b');
    REQUIRE(::send(b_peer.fd(), b_first.data(), b_first.size(), MSG_NOSIGNAL) == 100);
    auto next = co_await rb.next();
    REQUIRE(next);
    CHECK(test::text(next->data()) == b_first);
    if (r.io().incremental_buffers()) {
        // Right after A's bytes, in the same buffer.
        CHECK(next->data().data() == held->data().data() + held->size());
    }
    next->release();
    // B goes on through both buffers' worth while A's chunk stays held: 3,000 bytes, so the
    // pool runs dry (A's buffer is pinned) and B waits for its own chunks to come back.
    std::string b_rest;
    for (int i = 0; i < 3000; ++i) {
        b_rest += static_cast<char>('0' + i % 71);
    }
    REQUIRE(::send(b_peer.fd(), b_rest.data(), b_rest.size(), MSG_NOSIGNAL) == 3000);
    std::string got;
    while (got.size() < b_rest.size()) {
        auto c = co_await rb.next();
        REQUIRE(c);
        got += test::text(c->data());
    }
    CHECK(got == b_rest);
    CHECK(test::text(held->data()) == a_first);  // not written over meanwhile
    held->release();
    const std::string a_rest(500, 'c');
    REQUIRE(::send(a_peer.fd(), a_rest.data(), a_rest.size(), MSG_NOSIGNAL) == 500);
    got.clear();
    while (got.size() < a_rest.size()) {
        auto c = co_await ra.next();
        REQUIRE(c);
        got += test::text(c->data());
    }
    CHECK(got == a_rest);
    CHECK(r.io().free_buffers() == 2);
}

}  // namespace

TEST_CASE("four provided buffers serve 32 busy connections: ENOBUFS never loses a byte",
          "[core][exhaustion]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    const bool incremental = GENERATE(true, false);
    CAPTURE(incremental);
    run_with(tiny_pool(kind, 4, incremental), enobufs_body);
}

TEST_CASE("provided buffers are consumed incrementally (io_uring where the kernel can, epoll "
          "always): receives of two connections share a buffer, none is lost or written over",
          "[core][exhaustion]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const bool incremental = GENERATE(true, false);
    CAPTURE(kind, incremental);
    {
        reactor r(tiny_pool(kind, 2, incremental));
        CHECK(r.io().incremental_buffers() ==
              (incremental && (kind == backend_kind::epoll || kernel_has_incremental_buffers())));
    }
    run_with(tiny_pool(kind, 2, incremental), shared_buffer_body);
}

namespace {

/// One buffer of 1 KiB, consumed incrementally on epoll: two small receives sit side by side;
/// once both are released the buffer is filled from its start again (its pages stay the hot
/// ones); a message larger than the rest of it arrives whole, through the bulk path, and
/// the pool is whole at the end.
task<> rewind_body(reactor& r) {
    REQUIRE(r.io().free_buffers() == 1);
    auto [peer, s] = co_await test::tcp_pair(r);
    receiver in(s);
    in.set_deadline(clock::now() + 10s);
    const std::string first(300, 'x');
    REQUIRE(::send(peer.fd(), first.data(), first.size(), MSG_NOSIGNAL) == 300);
    auto a = co_await in.next();
    REQUIRE(a);
    REQUIRE(test::text(a->data()) == first);
    const std::byte* const start = a->data().data();
    const std::string second(300, 'y');
    REQUIRE(::send(peer.fd(), second.data(), second.size(), MSG_NOSIGNAL) == 300);
    auto b = co_await in.next();
    REQUIRE(b);
    CHECK(test::text(b->data()) == second);
    CHECK(b->data().data() == start + 300);  // right after the first, in the same buffer
    a->release();
    b->release();
    const std::string third(100, 'z');
    REQUIRE(::send(peer.fd(), third.data(), third.size(), MSG_NOSIGNAL) == 100);
    auto c = co_await in.next();
    REQUIRE(c);
    CHECK(test::text(c->data()) == third);
    CHECK(c->data().data() == start);  // nothing of it was held: from its start again
    c->release();
    // 5,000 bytes through the one buffer: as many pieces as it takes, in order.
    std::string big;
    for (int i = 0; i < 5000; ++i) {
        big += static_cast<char>('a' + i % 23);
    }
    REQUIRE(::send(peer.fd(), big.data(), big.size(), MSG_NOSIGNAL) == 5000);
    std::string got;
    while (got.size() < big.size()) {
        auto d = co_await in.next();
        REQUIRE(d);
        REQUIRE(!d->empty());
        got += test::text(d->data());
    }
    CHECK(got == big);
    CHECK(r.io().free_buffers() == 1);
}

}  // namespace

TEST_CASE("epoll's shared buffer: small receives side by side, filled from its start again "
          "once released, a large message in pieces",
          "[core][exhaustion]") {
    run_with(tiny_pool(backend_kind::epoll, 1), rewind_body);
}

TEST_CASE("a free buffer a starving receiver does not take goes on to the next one",
          "[core][exhaustion]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    // Whole buffers: the steps count them.
    run_with(tiny_pool(kind, 2, false), handed_on_body);
}

TEST_CASE("a queue depth of 8 completes 500 sleeps and 500 recvs started at once",
          "[core][exhaustion]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    reactor_options options;
    options.kind = kind;
    options.queue_depth = 8;
    run_with(options, pressure_body);
}

namespace {

constexpr int harvest_connections = 200;
constexpr int harvest_rounds = 20;

std::string round_message(int c, int round) {
    return fmt::format("c{} r{};", c, round);
}

/// Receives every round's message of connection `c`, each next() with a deadline: each chunk
/// that comes cancels that deadline's timer from inside the harvest.
task<> harvest_reader(ringchat::socket s, int c, int& ok, latch& started, latch& done) {
    receiver in(s);
    std::string expected;
    for (int round = 0; round < harvest_rounds; ++round) {
        expected += round_message(c, round);
    }
    std::string got;
    started.count_down();
    while (got.size() < expected.size()) {
        in.set_deadline(clock::now() + 30s);
        auto chunk = co_await in.next();
        if (!chunk || chunk->empty()) {
            break;
        }
        got += test::text(chunk->data());
    }
    if (got == expected) {
        ++ok;
    }
    done.count_down();
}

task<> harvest_body(reactor& r) {
    int ok = 0;
    latch started(r, harvest_connections);
    latch done(r, harvest_connections);
    std::vector<ringchat::socket> peers =
        spawn_on_pairs(r, harvest_connections, [&](ringchat::socket s, int c) {
            return harvest_reader(std::move(s), c, ok, started, done);
        });
    co_await started.wait();
    // Every reader waits: each round completes 200 recvs at once, far more than the CQ holds.
    for (int round = 0; round < harvest_rounds; ++round) {
        for (int c = 0; c < harvest_connections; ++c) {
            const std::string m = round_message(c, round);
            REQUIRE(::send(peers[static_cast<std::size_t>(c)].fd(), m.data(), m.size(),
                           MSG_NOSIGNAL) == static_cast<ssize_t>(m.size()));
        }
        co_await test::yield_now{r};
    }
    co_await done.wait();
    CHECK(ok == harvest_connections);
}

}  // namespace

TEST_CASE("a queue depth of 8 under bursts of multishot recvs that cancel timers from inside "
          "the harvest: every byte arrives once, in order",
          "[core][exhaustion]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    // An SQ of 8 and a CQ of 32 for 200 connections: the CQ overflows, and the completions'
    // callbacks ask for more SQEs than the SQ has while the harvest walks the CQ.
    reactor_options options;
    options.kind = kind;
    options.queue_depth = 8;
    run_with(options, harvest_body);
}

TEST_CASE("a queue depth of 8 with four provided buffers: ENOBUFS re-arms from inside the "
          "harvest lose no byte",
          "[core][exhaustion]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    const bool incremental = GENERATE(true, false);
    CAPTURE(incremental);
    reactor_options options = tiny_pool(kind, 4, incremental);
    options.queue_depth = 8;
    run_with(options, enobufs_body);
}

namespace {

/// A: a flood nobody takes; B: one message. A's receiver stops at max_queued chunks, so the
/// pool is still there for B, which gets its message.
task<> hoarding_body(reactor& r) {
    auto [a_peer, a] = co_await test::tcp_pair(r);
    auto [b_peer, b] = co_await test::tcp_pair(r);
    receiver ra(a);
    receiver rb(b);
    // A pattern, so that a chunk out of order or in the wrong buffer shows.
    std::string flood(4 << 20, '\0');
    for (std::size_t i = 0; i < flood.size(); ++i) {
        flood[i] = static_cast<char>((i * 7 + i / 251) & 0xff);
    }
    test::background<bool> flooding(r, [](ringchat::socket& s, const std::string& data)
                                           -> task<bool> {
        auto sent = co_await s.send_all(test::bytes(data));
        co_return static_cast<bool>(sent);
    }(a_peer, flood));
    // A's first chunk is taken, then its consumer stops (its session is paused, say).
    std::string got;
    auto first = co_await ra.next();
    REQUIRE(first);
    got += test::text(first->data());
    first->release();
    for (int turn = 0; turn < 200; ++turn) {
        co_await test::yield_now{r};
    }
    // More than max_queued may come while the pause's cancel goes out: on io_uring the
    // kernel posts a burst of up to 32 completions per multishot run, and a poll may see two.
    // A paused receiver holds them in memory of its own: none of the pool.
    const std::size_t bound = receiver::max_queued + 64;
    INFO("A holds " << ra.queued() << " chunks");
    CHECK(ra.queued() <= bound);
    CHECK(ra.paused());
    CHECK(r.io().free_buffers() == 1024);
    REQUIRE(::send(b_peer.fd(), "probe", 5, MSG_NOSIGNAL) == 5);
    rb.set_deadline(clock::now() + 10s);
    auto probe = co_await rb.next();
    REQUIRE(probe);
    CHECK(test::text(probe->data()) == "probe");
    // A's consumer comes back: everything arrives, in order, nothing lost.
    while (got.size() < flood.size()) {
        ra.set_deadline(clock::now() + 10s);
        auto c = co_await ra.next();
        REQUIRE(c);
        REQUIRE_FALSE(c->empty());
        got += test::text(c->data());
    }
    const bool sent = co_await flooding.join();
    CHECK(sent);
    CHECK(got.size() == flood.size());
    CHECK(got == flood);
}

}  // namespace

TEST_CASE("a receiver whose consumer stops holds none of the pool; another connection is "
          "served; nothing is lost or reordered",
          "[core][exhaustion]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    reactor_options options;
    options.kind = kind;
    run_with(options, hoarding_body);
}
