// SPDX-License-Identifier: MIT
// Every operation's results, deadlines and cancellation, alike on both backends; task<T>;
// and the lifetime rule: destroying a task suspended on I/O is safe.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "core/file.hpp"
#include "core/listener.hpp"
#include "core/receiver.hpp"
#include "tests/support/peers.hpp"
#include "tests/support/support.hpp"

using namespace ringchat;
using namespace std::chrono_literals;
using test::fill_send_buffer;


namespace {

const std::error_code timed_out(ETIMEDOUT, std::system_category());
const std::error_code cancelled(ECANCELED, std::system_category());

task<int> add(int a, int b) { co_return a + b; }

task<int> deep(int n) {
    if (n == 0) {
        co_return 0;
    }
    co_return 1 + co_await deep(n - 1);
}

task<> thrower() {
    throw std::runtime_error("boom");
    co_return;
}

}  // namespace

TEST_CASE("task<T> returns values, carries exceptions and nests deeply", "[core][task]") {
    const auto kind = GENERATE(from_range(test::backends()));
    test::run(kind, [](reactor&) -> task<> {
        auto sum = co_await add(2, 3);
        CHECK(sum == 5);
        // A recursion 1,000 tasks deep: the stack holds a frame per level, as a recursion of
        // plain functions would (tests/stack checks that sequential awaits do not).
        auto depth = co_await deep(1'000);
        CHECK(depth == 1'000);
        bool caught = false;
        try {
            co_await thrower();
        } catch (const std::runtime_error& e) {
            caught = std::string(e.what()) == "boom";
        }
        CHECK(caught);
    });
}

namespace {

struct defer_to_turn_end {
    reactor& r;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) { r.defer(h); }
    void await_resume() const noexcept {}
};

task<> deferring(reactor& r, std::vector<std::string>& order) {
    order.push_back("first");
    co_await defer_to_turn_end{r};
    order.push_back("first, deferred");
    co_await test::yield_now{r};
    order.push_back("first, next turn");
}

task<> scheduling(reactor& r, std::vector<std::string>& order) {
    order.push_back("second");
    co_await test::yield_now{r};
    order.push_back("second, next turn");
}

}  // namespace

TEST_CASE("defer() resumes after what is ready now, schedule() at the next turn",
          "[core][reactor]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    reactor_options options;
    options.kind = kind;
    reactor r(options);
    std::vector<std::string> order;
    r.spawn(deferring(r, order));
    r.spawn(scheduling(r, order));
    r.run();
    const std::vector<std::string> expected{"first", "second", "first, deferred",
                                            "second, next turn", "first, next turn"};
    CHECK(order == expected);
}

namespace {

/// Sets `gone` when destroyed: a parameter of a coroutine, it tells when the frame went.
struct frame_witness {
    explicit frame_witness(bool& gone) : gone(&gone) {}
    frame_witness(frame_witness&& other) noexcept : gone(std::exchange(other.gone, nullptr)) {}
    ~frame_witness() {
        if (gone != nullptr) {
            *gone = true;
        }
    }
    bool* gone;
};

reactor::detached sleeper(reactor& r, frame_witness, std::vector<std::string>& order,
                          std::chrono::milliseconds nap = 1ms) {
    order.push_back("started");
    co_await r.sleep_for(nap);
    order.push_back("woke");
}

reactor::detached detached_thrower(reactor& r, frame_witness) {
    co_await r.sleep_for(0ms);
    throw std::runtime_error("detached boom");
}

}  // namespace

TEST_CASE("reactor::detached: the reactor owns it once spawned and counts it until its frame "
          "goes; a throw leaves the rest running; one never spawned is freed",
          "[core][reactor]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    reactor_options options;
    options.kind = kind;
    std::vector<std::string> order;
    bool slept_gone = false;
    bool thrower_gone = false;
    bool unspawned_gone = false;
    bool abandoned_gone = false;
    {
        reactor r(options);
        {
            auto never = sleeper(r, frame_witness(unspawned_gone), order);
            CHECK_FALSE(unspawned_gone);
        }
        CHECK(unspawned_gone);  // its frame went with it, never run
        CHECK(order.empty());
        r.spawn(sleeper(r, frame_witness(slept_gone), order));
        r.spawn(detached_thrower(r, frame_witness(thrower_gone)));
        CHECK(r.tasks() == 2);
        CHECK(order.empty());  // spawned, not run yet: it starts at the next turn
        r.run();
        CHECK(r.tasks() == 0);
        CHECK(slept_gone);
        CHECK(thrower_gone);
        const std::vector<std::string> expected{"started", "woke"};
        CHECK(order == expected);
        // One still waiting when the reactor goes is destroyed by it.
        r.spawn(sleeper(r, frame_witness(abandoned_gone), order, 1h));
        r.block_on([](reactor& self) -> task<> { co_await self.sleep_for(1ms); }(r));
        CHECK(r.tasks() == 1);
        CHECK(order.size() == 3);  // it started, and waits
        CHECK_FALSE(abandoned_gone);
    }
    CHECK(abandoned_gone);
}

TEST_CASE("sleep completes; a cancelled sleep ends with ECANCELED", "[core][sleep]") {
    const auto kind = GENERATE(from_range(test::backends()));
    test::run(kind, [](reactor& r) -> task<> {
        auto slept = co_await r.sleep_for(5ms);
        CHECK(slept);
        cancel_source source;
        source.cancel();
        auto early = co_await r.sleep_for(10s).cancel_with(source);
        CHECK(early.error() == cancelled);
    });
}

TEST_CASE("recv: deadline and cancellation", "[core][recv]") {
    const auto kind = GENERATE(from_range(test::backends()));
    test::run(kind, [](reactor& r) -> task<> {
        auto [a, b] = test::socket_pair(r);
        std::byte buf[64];
        auto late = co_await a.recv(buf).timeout(20ms);
        CHECK(late.error() == timed_out);

        // Cancelled from another task while it waits.
        cancel_source source;
        r.spawn([](reactor& r, cancel_source& s) -> task<> {
            co_await r.sleep_for(10ms);
            s.cancel();
        }(r, source));
        auto stopped = co_await a.recv(buf).cancel_with(source);
        CHECK(stopped.error() == cancelled);

        // The socket still works after both.
        auto sent = co_await b.send_all(test::bytes("ok"));
        REQUIRE(sent);
        auto got = co_await a.recv(buf).timeout(5s);
        REQUIRE(got);
        CHECK(test::text(std::span(buf, *got)) == "ok");
    });
}

TEST_CASE("send and gather-send: deadline and cancellation", "[core][send]") {
    const auto kind = GENERATE(from_range(test::backends()));
    test::run(kind, [](reactor& r) -> task<> {
        auto [a, b] = test::socket_pair(r);
        fill_send_buffer(a);
        const std::string chunk(4096, 'y');
        auto late = co_await a.send(test::bytes(chunk)).timeout(20ms);
        CHECK(late.error() == timed_out);

        iovec parts[2] = {{const_cast<char*>(chunk.data()), 100},
                          {const_cast<char*>(chunk.data()), 100}};
        cancel_source source;
        r.spawn([](reactor& r, cancel_source& s) -> task<> {
            co_await r.sleep_for(10ms);
            s.cancel();
        }(r, source));
        auto stopped = co_await a.send_gather(parts).cancel_with(source);
        CHECK(stopped.error() == cancelled);
    });
}

namespace {

/// A temporary file of `size` bytes (a pattern no shift repeats within 251 bytes), removed
/// by the destructor.
struct temp_file {
    explicit temp_file(std::size_t size) {
        fd = mkstemp(path);
        REQUIRE(fd >= 0);
        for (std::size_t i = 0; i < size; ++i) {
            content.push_back(static_cast<char>('a' + i % 251 % 26));
        }
        REQUIRE(::write(fd, content.data(), size) == static_cast<ssize_t>(size));
    }
    ~temp_file() {
        ::close(fd);
        ::unlink(path);
    }
    char path[32] = "/tmp/ringchat-sendfile-XXXXXX";
    int fd = -1;
    std::string content;
};

task<std::string> receive(ringchat::socket& s, std::size_t n) {
    auto got = co_await test::recv_exactly(s, n);
    co_return got;
}

}  // namespace

TEST_CASE("send_file: the file's bytes arrive whole, waiting while the socket is full; "
          "deadline and cancellation", "[core][send]") {
    const auto kind = GENERATE(from_range(test::backends()));
    test::run(kind, [](reactor& r) -> task<> {
        temp_file f(3 << 20);  // larger than a socket buffer: sends must wait for room
        auto [a, b] = test::socket_pair(r);
        test::background<std::string> reader(r, receive(b, f.content.size() - 1000));
        std::uint64_t offset = 1000;
        while (offset < f.content.size()) {
            auto n = co_await a.send_file(f.fd, offset, f.content.size() - offset).timeout(10s);
            REQUIRE(n);
            REQUIRE(*n > 0);
            offset += *n;
        }
        auto got = co_await reader.join();
        CHECK(got == f.content.substr(1000));

        fill_send_buffer(a);
        auto late = co_await a.send_file(f.fd, 0, 4096).timeout(20ms);
        CHECK(late.error() == timed_out);
        cancel_source source;
        r.spawn([](reactor& r, cancel_source& s) -> task<> {
            co_await r.sleep_for(10ms);
            s.cancel();
        }(r, source));
        auto stopped = co_await a.send_file(f.fd, 0, 4096).cancel_with(source);
        CHECK(stopped.error() == cancelled);
    });
}

TEST_CASE("send_file to a peer that went away is EPIPE, not SIGPIPE", "[core][send]") {
    const auto kind = GENERATE(from_range(test::backends()));
    std::signal(SIGPIPE, SIG_DFL);  // as a program starts; the reactor must take care of it
    test::run(kind, [](reactor& r) -> task<> {
        struct sigaction now{};
        REQUIRE(sigaction(SIGPIPE, nullptr, &now) == 0);
        CHECK(now.sa_handler == SIG_IGN);
        temp_file f(4096);
        auto [a, b] = test::socket_pair(r);
        b.close_now();
        auto sent = co_await a.send_file(f.fd, 0, 4096);
        CHECK(sent.error() == std::error_code(EPIPE, std::system_category()));
    });
}

TEST_CASE("connect: refused, deadline, cancellation", "[core][connect]") {
    const auto kind = GENERATE(from_range(test::backends()));
    test::run(kind, [](reactor& r) -> task<> {
        // A port nobody listens on: bind one, note it, close it.
        address closed_port;
        {
            auto l = listener::bind(r, address::ipv4("127.0.0.1", 0));
            REQUIRE(l);
            closed_port = l->local_address();
        }
        auto refused = co_await ringchat::socket::connect(r, closed_port);
        CHECK(refused.error() == std::error_code(ECONNREFUSED, std::system_category()));

        // A listener whose accept queue is full drops further SYNs: connect must time out.
        listen_options tiny;
        tiny.backlog = 0;
        auto l = listener::bind(r, address::ipv4("127.0.0.1", 0), tiny);
        REQUIRE(l);
        std::vector<ringchat::socket> fillers;
        for (int i = 0; i < 4; ++i) {
            auto s = co_await ringchat::socket::connect(r, l->local_address(), 100ms);
            if (s) {
                fillers.push_back(std::move(*s));
            }
        }
        auto late = co_await ringchat::socket::connect(r, l->local_address(), 50ms);
        CHECK(late.error() == timed_out);

        auto s = ringchat::socket::open(r, AF_INET);
        REQUIRE(s);
        address to = l->local_address();
        cancel_source source;
        source.cancel();
        auto stopped = co_await io_awaitable(r, opcode::connect, s->fd(), to.data(), to.size())
                           .cancel_with(source);
        CHECK(stopped.error() == cancelled);
    });
}

TEST_CASE("accept: deadline and cancellation, then accepts again", "[core][accept]") {
    const auto kind = GENERATE(from_range(test::backends()));
    test::run(kind, [](reactor& r) -> task<> {
        auto l = listener::bind(r, address::ipv4("127.0.0.1", 0));
        REQUIRE(l);
        auto late = co_await l->accept().timeout(20ms);
        CHECK(late.error() == timed_out);

        cancel_source source;
        r.spawn([](reactor& r, cancel_source& s) -> task<> {
            co_await r.sleep_for(10ms);
            s.cancel();
        }(r, source));
        auto stopped = co_await l->accept().cancel_with(source);
        CHECK(stopped.error() == cancelled);

        auto c = co_await ringchat::socket::connect(r, l->local_address());
        REQUIRE(c);
        auto s = co_await l->accept().timeout(5s);
        REQUIRE(s);
        CHECK(s->valid());

        l->close();
        auto after = co_await l->accept();
        CHECK_FALSE(after);
    });
}

TEST_CASE("receiver: deadline, data after it, cancellation, end of stream", "[core][receiver]") {
    const auto kind = GENERATE(from_range(test::backends()));
    test::run(kind, [](reactor& r) -> task<> {
        auto [a, b] = test::socket_pair(r);
        receiver in(a);
        in.set_deadline(clock::now() + 20ms);
        auto late = co_await in.next();
        CHECK(late.error() == timed_out);
        in.set_deadline(clock::time_point::max());

        auto sent = co_await b.send_all(test::bytes("abc"));
        REQUIRE(sent);
        auto got = co_await in.next();
        REQUIRE(got);
        CHECK(test::text(got->data()) == "abc");

        b.close_now();
        auto end = co_await in.next();
        REQUIRE(end);
        CHECK(end->empty());

        auto [c, d] = test::socket_pair(r);
        receiver in2(c);
        r.spawn([](reactor& r, receiver& rx) -> task<> {
            co_await r.sleep_for(10ms);
            rx.cancel();
        }(r, in2));
        auto stopped = co_await in2.next();
        CHECK(stopped.error() == cancelled);
    });
}

TEST_CASE("receiver: a deadline kept over waits still ends the wait after a chunk came",
          "[core][receiver]") {
    // A frame in progress waits with the same deadline for each of its chunks (a TLS
    // handshake too). On io_uring a chunk cancels the wait's timer asynchronously, and the
    // next wait found that timer still in flight and kept it: it was cancelled all the same,
    // and the wait had no deadline (a peer that sent two pieces and stopped was kept).
    const auto kind = GENERATE(from_range(test::backends()));
    test::run(kind, [](reactor& r) -> task<> {
        auto [a, b] = test::socket_pair(r);
        receiver in(a);
        in.set_deadline(clock::now() + 300ms);
        // The first piece comes while the receiver waits; the second long after the deadline,
        // so that a wait without one ends with it instead of ETIMEDOUT.
        r.spawn([](reactor& r, ringchat::socket& peer) -> task<> {
            co_await r.sleep_for(10ms);
            auto first = co_await peer.send_all(test::bytes("first"));
            CHECK(first);
            co_await r.sleep_for(1s);
            auto late = co_await peer.send_all(test::bytes("late"));
            CHECK(late);
        }(r, b));
        auto got = co_await in.next();
        REQUIRE(got);
        CHECK(test::text(got->data()) == "first");
        auto second = co_await in.next();
        CHECK(second.error() == timed_out);  // (without the fix: "late", after a second)
        if (!second) {
            // The late piece still comes, and the sender (which uses `b`) is done before it
            // goes.
            in.set_deadline(clock::time_point::max());
            auto late = co_await in.next();
            REQUIRE(late);
            CHECK(test::text(late->data()) == "late");
        }
    });
}

namespace {

// `n` bytes that differ from any shift of themselves within 251 bytes: a chunk delivered out
// of order, twice or short shows as a mismatch.
std::string pattern(std::size_t n, int seed) {
    std::string out(n, '\0');
    for (std::size_t i = 0; i < n; ++i) {
        out[i] = static_cast<char>((i * 7 + static_cast<std::size_t>(seed)) % 251);
    }
    return out;
}

task<> send_later(ringchat::socket& s, std::string data) {
    auto sent = co_await s.send_all(test::bytes(data));
    CHECK(sent);
}

}  // namespace

TEST_CASE("receiver: bursts of several buffers and small reads between them arrive whole and "
          "in order",
          "[core][receiver]") {
    // The epoll backend reads one pool buffer after a small read and several in one recvmsg
    // after a read that filled its buffers; io_uring fills buffers as the kernel picks them.
    const auto kind = GENERATE(from_range(test::backends()));
    test::run(kind, [](reactor& r) -> task<> {
        auto [a, b] = test::socket_pair(r);
        receiver in(a);
        const std::size_t buffer = r.io().buffer_size();
        const std::vector<std::string> parts = {std::string(10, 's'), pattern(5 * buffer + 123, 1),
                                                std::string(7, 't'), pattern(3 * buffer, 2),
                                                pattern(buffer - 1, 3)};
        for (const std::string& part : parts) {
            r.spawn(send_later(b, part));
            co_await r.sleep_for(20ms);  // all of it waits in the socket before the first read
            std::string got;
            std::size_t chunks = 0;
            while (got.size() < part.size()) {
                auto chunk = co_await in.next();
                REQUIRE(chunk);
                REQUIRE(!chunk->empty());
                CHECK(chunk->size() <= buffer);
                got += test::text(chunk->data());
                ++chunks;
            }
            CHECK(got.size() == part.size());
            CHECK(got == part);
            CHECK(chunks >= (part.size() + buffer - 1) / buffer);
        }
        CHECK(in.queued() == 0);
    });
}

TEST_CASE("file read and write at offsets; close through the backend", "[core][file]") {
    const auto kind = GENERATE(from_range(test::backends()));
    test::run(kind, [](reactor& r) -> task<> {
        char path[] = "/tmp/ringchat-file-XXXXXX";
        const int fd = mkstemp(path);
        REQUIRE(fd >= 0);
        ::close(fd);
        auto f = file::open(r, path, O_RDWR | O_TRUNC);
        REQUIRE(f);
        auto wrote = co_await f->write(test::bytes("hello "), 0);
        REQUIRE(wrote);
        auto wrote_more = co_await f->write(test::bytes("world"), 6);
        REQUIRE(wrote_more);
        std::byte buf[32];
        auto n = co_await f->read(buf, 0).timeout(5s);
        REQUIRE(n);
        CHECK(test::text(std::span(buf, *n)) == "hello world");
        auto tail = co_await f->read(buf, 6);
        REQUIRE(tail);
        CHECK(test::text(std::span(buf, *tail)) == "world");
        auto eof = co_await f->read(buf, 11);
        REQUIRE(eof);
        CHECK(*eof == 0);
        CHECK(f->size().value() == 11);
        ::unlink(path);

        auto [a, b] = test::socket_pair(r);
        auto closed = co_await a.close();
        CHECK(closed);
        CHECK_FALSE(a.valid());
    });
}

TEST_CASE("file reads past the epoll backend's inline budget go on next turn",
          "[core][file]") {
    const auto kind = GENERATE(from_range(test::backends()));
    test::run(kind, [](reactor& r) -> task<> {
        temp_file f(300 * 16);
        auto opened = file::open(r, f.path, O_RDONLY);
        REQUIRE(opened);
        std::string got;
        std::byte buf[16];
        for (std::uint64_t at = 0; at < f.content.size(); at += sizeof buf) {
            auto n = co_await opened->read(buf, at);  // 300 reads, no other await between
            REQUIRE(n);
            got += test::text(std::span(buf, *n));
        }
        CHECK(got == f.content);
    });
}

TEST_CASE("destroying a task suspended on I/O is safe", "[core][lifetime]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const std::size_t fds_before = test::open_fds();
    {
        reactor_options o;
        o.kind = kind;
        reactor r(o);
        auto [a, b] = test::socket_pair(r);
        auto l = listener::bind(r, address::ipv4("127.0.0.1", 0));
        REQUIRE(l);

        // A task started by hand, suspended on recv with a deadline, then destroyed: its
        // awaitable cancels the recv and waits for the kernel before the frame goes.
        auto waiting = [](ringchat::socket& s) -> task<> {
            std::byte buf[128];
            auto n = co_await s.recv(buf).timeout(30s);
            (void)n;
        }(a);
        auto h = waiting.release();
        h.resume();
        CHECK_FALSE(h.done());
        h.destroy();

        // Detached tasks suspended on recv, a multishot receiver, accept and sleep are
        // destroyed with the reactor.
        r.spawn([](ringchat::socket& s) -> task<> {
            receiver in(s);
            auto chunk = co_await in.next();
            (void)chunk;
        }(b));
        r.spawn([](listener& l) -> task<> {
            auto s = co_await l.accept();
            (void)s;
        }(*l));
        r.spawn([](reactor& r) -> task<> { (void)co_await r.sleep_for(30s); }(r));
        r.block_on([](reactor& r) -> task<> { (void)co_await r.sleep_for(10ms); }(r));
        CHECK(r.tasks() == 3);
        CHECK(r.io().in_flight() >= 3);
    }
    CHECK(test::open_fds() == fds_before);
}

TEST_CASE("addresses parse and print", "[core][address]") {
    CHECK(address::parse("127.0.0.1:8080").value().to_string() == "127.0.0.1:8080");
    CHECK(address::parse("[::1]:443").value().to_string() == "[::1]:443");
    CHECK(address::parse("unix:/tmp/x.sock").value().to_string() == "unix:/tmp/x.sock");
    CHECK(address::parse("[::1]:443").value().family() == AF_INET6);
    CHECK_FALSE(address::parse("127.0.0.1"));
    CHECK_FALSE(address::parse("127.0.0.1:99999"));
    CHECK_FALSE(address::parse("localhost:80"));
    CHECK_THROWS_AS(address::unix_path(std::string(200, 'x')), std::invalid_argument);
}
