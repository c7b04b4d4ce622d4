// SPDX-License-Identifier: MIT
// tests/chat/test_async_chat.cpp — chat::async_chat, the classic facade, over real sockets, on
// every backend.
//
// Sections: 1 helpers (a task beside the body that the body joins, CPython's echo server, an
// echo_client as in CPython's test); 2 CPython's test_asynchat.py re-expressed
// (docs/asynchat-semantics.md §8); 3 asynchat's rules the facade keeps call for call
// (get_terminator() during a count, a terminator changed inside found_terminator for the rest
// of the same read, discard_buffers() there, held prefixes); 4 handle_close on a peer reset
// (TCP). Every test on both backends, in plaintext and over TLS (tests/support/tls_relay.hpp:
// the peer's plaintext relayed through a TLS client). Invariant: every expectation is
// asynchat 3.11's, except where §9 allows a difference; no test depends on how the kernel
// (or TLS records) cut the stream into reads.
#include "chat/async_chat.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "core/listener.hpp"
#include "producers/producer.hpp"
#include "tests/chat/describe.hpp"
#include "tests/support/peers.hpp"
#include "tests/support/support.hpp"
#include "tests/support/tls_relay.hpp"

using namespace ringchat;
using namespace std::chrono_literals;
using test::background;
using test::echo_peer;
using test::recv_all_from;
using test::yield_now;
using chat::async_chat;
using chat::terminator;
using chat::terminator_kind;

// ---------------------------------------------------------------------------------------------
// 1. Helpers
// ---------------------------------------------------------------------------------------------

namespace {

const std::error_code no_error;
const std::error_code reset_by_peer(ECONNRESET, std::system_category());
const std::string quit = "QUIT\n";  // CPython's SERVER_QUIT

/// CPython's echo_client: collect_incoming_data appends to `buffer`, found_terminator moves it
/// to `contents`. It also notes what get_terminator() showed at each call.
class echo_client : public async_chat {
public:
    using async_chat::async_chat;

    void collect_incoming_data(std::span<const std::byte> data) override {
        CHECK_FALSE(data.empty());  // asynchat never collects nothing
        buffer += test::text(data);
        shown_in_collect.push_back(get_terminator());
        collected.push_back(data.size());
    }
    void found_terminator() override {
        contents.push_back(std::exchange(buffer, {}));
        shown_in_found.push_back(get_terminator());
    }
    void handle_close() override {
        ++closes;
        reason = close_reason();
    }

    std::string buffer;
    std::vector<std::string> contents;
    std::vector<terminator> shown_in_collect;
    std::vector<std::size_t> collected;
    std::vector<terminator> shown_in_found;
    int closes = 0;
    std::error_code reason;
};

/// A producer over one string, given whole (CPython's test_string_producer pushes bytes).
struct string_producer {
    std::string data;
    producers::chunk more() { return std::exchange(data, {}); }
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// 2. CPython's test_asynchat.py
// ---------------------------------------------------------------------------------------------

namespace {

task<> line_terminator_check(reactor& r, test::wire w, std::string term, std::size_t piece) {
    auto [ours, peer] = test::wired_pair(r, w);
    background<std::string> server(r, echo_peer(std::move(peer), piece));
    echo_client c(std::move(ours));
    c.set_terminator(term);
    c.push("hello ");
    c.push("world" + term);
    c.push("I'm not dead yet!" + term);
    c.push(quit);
    co_await c.run();
    (void)co_await server.join();
    CHECK(c.contents == std::vector<std::string>{"hello world", "I'm not dead yet!"});
    CHECK(c.buffer.empty());
    CHECK(c.closes == 1);
    CHECK(c.reason == no_error);
}

}  // namespace

TEST_CASE("async_chat: line terminators \\n, \\r\\n, qqq over echo pieces of 1, 2, 3",
          "[async_chat]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    const std::size_t piece = GENERATE(as<std::size_t>{}, 1, 2, 3);
    const std::string term = GENERATE(as<std::string>{}, "\n", "\r\n", "qqq");
    CAPTURE(kind, test::to_string(w), piece, term);
    test::run(kind, [=](reactor& r) { return line_terminator_check(r, w, term, piece); });
}

namespace {

task<> numeric_terminator_check(reactor& r, test::wire w, int count, std::size_t piece) {
    auto [ours, peer] = test::wired_pair(r, w);
    background<std::string> server(r, echo_peer(std::move(peer), piece));
    echo_client c(std::move(ours));
    c.set_terminator(count);
    const std::string data = "hello world, I'm not dead yet!\n";
    c.push(data);
    c.push(quit);
    co_await c.run();
    (void)co_await server.join();
    const auto n = static_cast<std::size_t>(count);
    // test_numeric_terminator1/2: one record only; the count stays 0 afterwards ("none").
    CHECK(c.contents == std::vector<std::string>{data.substr(0, n)});
    CHECK(c.buffer == data.substr(n));
    CHECK(c.get_terminator() == terminator::count(0));
    // §4.3: inside collect_incoming_data the count still includes the data being delivered;
    // inside found_terminator and ever after, 0.
    REQUIRE(c.shown_in_found.size() == 1);
    CHECK(c.shown_in_found[0] == terminator::count(0));
    std::size_t delivered = 0;
    for (std::size_t i = 0; i < c.collected.size(); ++i) {
        CAPTURE(i, delivered);
        if (delivered < n) {
            CHECK(c.shown_in_collect[i] == terminator::count(n - delivered));
        } else {
            CHECK(c.shown_in_collect[i] == terminator::count(0));
        }
        delivered += c.collected[i];
    }
    CHECK(delivered == data.size());
}

}  // namespace

TEST_CASE("async_chat: numeric terminators 1 and 6 give one record, then none mode",
          "[async_chat]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    const std::size_t piece = GENERATE(as<std::size_t>{}, 1, 3);
    const int count = GENERATE(1, 6);
    CAPTURE(kind, test::to_string(w), piece, count);
    test::run(kind, [=](reactor& r) { return numeric_terminator_check(r, w, count, piece); });
}

TEST_CASE("async_chat: none terminator collects everything, never finds", "[async_chat]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = test::wired_pair(r, w);
        background<std::string> server(r, echo_peer(std::move(peer), 2));
        echo_client c(std::move(ours));
        c.set_terminator(terminator::none());
        const std::string data = "hello world, I'm not dead yet!\n";
        c.push(data);
        c.push(quit);
        co_await c.run();
        (void)co_await server.join();
        CHECK(c.contents.empty());
        CHECK(c.buffer == data);
        CHECK(c.get_terminator() == terminator::none());
    });
}

TEST_CASE("async_chat: simple producer, string producer, empty line", "[async_chat]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        const std::string data = "hello world\nI'm not dead yet!\n";
        const std::vector<std::string> lines{"hello world", "I'm not dead yet!"};
        {
            auto [ours, peer] = test::wired_pair(r, w);
            background<std::string> server(r, echo_peer(std::move(peer), 1));
            echo_client c(std::move(ours));
            c.push_with_producer(producers::simple(data, 8));
            c.push(quit);
            co_await c.run();
            (void)co_await server.join();
            CHECK(c.contents == lines);
        }
        {
            // A chunk longer than one send (ac_out_buffer_size) goes out in pieces.
            auto [ours, peer] = test::wired_pair(r, w);
            background<std::string> server(r, echo_peer(std::move(peer), 3));
            chat::channel_options o;
            o.out_buffer_size = 5;
            echo_client c(std::move(ours), o);
            c.push_with_producer(string_producer{data});
            c.push(quit);
            co_await c.run();
            (void)co_await server.join();
            CHECK(c.contents == lines);
        }
        {
            auto [ours, peer] = test::wired_pair(r, w);
            background<std::string> server(r, echo_peer(std::move(peer), 2));
            echo_client c(std::move(ours));
            c.push("hello world\n\nI'm not dead yet!\n");
            c.push(quit);
            co_await c.run();
            (void)co_await server.join();
            CHECK(c.contents == std::vector<std::string>{"hello world", "", "I'm not dead yet!"});
        }
    });
}

TEST_CASE("async_chat: close_when_done sends the data, then closes before any echo",
          "[async_chat]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = test::wired_pair(r, w);
        background<std::string> server(r, recv_all_from(std::move(peer)));
        echo_client c(std::move(ours));
        c.push("hello world\nI'm not dead yet!\n");
        c.push(quit);
        c.close_when_done();
        c.push("never\n");  // after the marker: never sent
        CHECK(c.writable());
        co_await c.run();
        auto got = co_await server.join();
        CHECK(got == "hello world\nI'm not dead yet!\n" + quit);
        CHECK(c.contents.empty());
        CHECK(c.closes == 1);
        CHECK(c.reason == no_error);
        CHECK(c.writable());  // a closed channel is "writable" in asynchat
    });
}

TEST_CASE("async_chat: 1 MiB pushed goes out and comes back intact", "[async_chat]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = test::wired_pair(r, w);
        background<std::string> server(r, echo_peer(std::move(peer), 65536));
        // The default frame limit (64 KiB) does not apply in none mode: there is no record.
        echo_client c(std::move(ours));
        c.set_terminator(terminator::none());
        std::string big(1 << 20, '\0');
        for (std::size_t i = 0; i < big.size(); ++i) {
            big[i] = static_cast<char>('a' + (i * 13 + i / 1000) % 26);
        }
        c.push(big);
        c.push(quit);
        co_await c.run();
        auto echoed = co_await server.join();
        CHECK(echoed.size() == big.size());
        CHECK(echoed == big);
        CHECK(c.reason == no_error);
        CHECK(c.buffer.size() == big.size());
        CHECK(c.buffer == big);
        CHECK(c.contents.empty());
    });
}

TEST_CASE("async_chat: a negative terminator throws; the default is \\n; 0 is accepted",
          "[async_chat]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = test::wired_pair(r, w);
        echo_client c(std::move(ours));
        CHECK(c.get_terminator() == terminator::bytes("\n"));
        CHECK_THROWS_AS(c.set_terminator(-1), std::invalid_argument);
        CHECK_THROWS_AS(c.set_terminator(std::int64_t{-5}), std::invalid_argument);
        CHECK(c.get_terminator() == terminator::bytes("\n"));
        c.set_terminator(0);
        CHECK(c.get_terminator() == terminator::count(0));
        c.set_terminator("");
        CHECK_FALSE(c.get_terminator().active());
        CHECK(c.readable());
        CHECK_FALSE(c.writable());
        co_return;
    });
}

// ---------------------------------------------------------------------------------------------
// 3. asynchat's rules, call for call
// ---------------------------------------------------------------------------------------------

namespace {

/// §4.6's HTTP-like sequence: found_terminator picks the next terminator.
class http_like : public async_chat {
public:
    using async_chat::async_chat;

    void collect_incoming_data(std::span<const std::byte> data) override {
        current += test::text(data);
        events.push_back("C" + test::text(data));
    }
    void found_terminator() override {
        const terminator t = get_terminator();
        events.push_back(t.kind() == terminator_kind::count
                             ? "F" + std::to_string(t.remaining())
                             : "F" + std::string(t.text() == "\r\n" ? "crlf" : t.text()));
        if (t.kind() == terminator_kind::count) {
            set_terminator("\r\n");  // the body is done
        } else if (current.empty()) {
            set_terminator(4);  // blank line: a 4-byte body follows
        }
        current.clear();
    }

    std::string current;
    std::vector<std::string> events;
};

/// Discards the rest of the read at its first record.
class discarding : public async_chat {
public:
    using async_chat::async_chat;

    void collect_incoming_data(std::span<const std::byte> data) override {
        buffer += test::text(data);
    }
    void found_terminator() override {
        contents.push_back(std::exchange(buffer, {}));
        if (contents.size() == 1) {
            discard_buffers();
        }
    }

    std::string buffer;
    std::vector<std::string> contents;
};

task<bool> send_after(reactor& r, ringchat::socket s, async_chat& c, std::size_t received,
                      std::string data) {
    while (c.chan().stats().bytes_received < received) {
        co_await yield_now{r};
    }
    if (!data.empty()) {
        auto sent = co_await s.send_all(test::bytes(data));
        REQUIRE(sent);
    }
    s.close_now();
    co_return true;
}

/// Sends each piece in its own send, waiting until `c` has received the ones before.
task<bool> send_pieces(reactor& r, ringchat::socket s, async_chat& c,
                       std::vector<std::string> pieces) {
    std::size_t sent_so_far = 0;
    for (const auto& piece : pieces) {
        while (c.chan().stats().bytes_received < sent_so_far) {
            co_await yield_now{r};
        }
        auto sent = co_await s.send_all(test::bytes(piece));
        REQUIRE(sent);
        sent_so_far += piece.size();
    }
    s.close_now();
    co_return true;
}

}  // namespace

TEST_CASE("async_chat: found_terminator changes the terminator for the rest of the read",
          "[async_chat]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = test::wired_pair(r, w);
        http_like c(std::move(ours));
        c.set_terminator("\r\n");
        auto sent = co_await peer.send_all(test::bytes("H1\r\nLen\r\n\r\nBODYtail\r\n"));
        REQUIRE(sent);
        peer.close_now();
        co_await c.run();
        CHECK(c.events == std::vector<std::string>{"CH1", "Fcrlf", "CLen", "Fcrlf", "Fcrlf",
                                                   "CBODY", "F0", "Ctail", "Fcrlf"});
    });
}

TEST_CASE("async_chat: discard_buffers in found_terminator drops the rest of the read",
          "[async_chat]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = test::wired_pair(r, w);
        auto sent = co_await peer.send_all(test::bytes("a\nb\nc\n"));
        REQUIRE(sent);
        discarding c(std::move(ours));
        // One send already queued when the channel first reads: one read.
        background<bool> later(r, send_after(r, std::move(peer), c, 6, "d\n"));
        co_await c.run();
        (void)co_await later.join();
        CHECK(c.contents == std::vector<std::string>{"a", "d"});
    });
}

namespace {

struct split_case {
    std::string term;
    std::vector<std::string> pieces;
    std::vector<std::string> contents;
    std::string buffer;  // collected, not terminated (a held prefix is never delivered)
};

task<> split_check(reactor& r, test::wire w, split_case sc) {
    auto [ours, peer] = test::wired_pair(r, w);
    echo_client c(std::move(ours));
    c.set_terminator(sc.term);
    background<bool> sender(r, send_pieces(r, std::move(peer), c, sc.pieces));
    co_await c.run();
    (void)co_await sender.join();
    CHECK(c.contents == sc.contents);
    CHECK(c.buffer == sc.buffer);
}

}  // namespace

TEST_CASE("async_chat: a terminator split across reads; held prefixes", "[async_chat]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    // §4.4 and §4.8: the held prefix is rescanned with the next read, and never delivered at
    // end of stream.
    auto sc = GENERATE(values<split_case>({
        {"\r\n", {"HEL", "LO\r", "\nrest"}, {"HELLO"}, "rest"},
        {"\r\n", {"abc\r", "x\r\n"}, {"abc\rx"}, ""},
        {"abac", {"abab", "ac"}, {"ab"}, ""},
        {"\r\n", {"one\r\n", "two\r"}, {"one"}, "two"},
        {"\r\n\r\n", {"head\r\n", "\r", "\nbody\r\n\r"}, {"head"}, "body"},
    }));
    CAPTURE(kind, test::to_string(w), sc.term, sc.pieces);
    test::run(kind, [=](reactor& r) { return split_check(r, w, sc); });
}

// ---------------------------------------------------------------------------------------------
// 4. Peer reset
// ---------------------------------------------------------------------------------------------

TEST_CASE("async_chat: a peer reset (TCP) calls handle_close with ECONNRESET", "[async_chat]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = co_await test::wired_tcp_pair(r, w);
        echo_client c(std::move(ours));
        auto sent = co_await peer.send_all(test::bytes("hello\nwor"));
        REQUIRE(sent);
        const linger hard{1, 0};
        REQUIRE(::setsockopt(peer.fd(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard) == 0);
        background<bool> resetter(r, send_after(r, std::move(peer), c, 9, ""));
        co_await c.run();
        (void)co_await resetter.join();
        CHECK(c.contents == std::vector<std::string>{"hello"});
        CHECK(c.buffer == "wor");
        CHECK(c.closes == 1);
        CHECK(c.reason == reset_by_peer);
        CHECK(c.close_reason() == reset_by_peer);
    });
}
