// SPDX-License-Identifier: MIT
// tests/chat/test_channel.cpp — chat::channel, the coroutine API, over real sockets, on every
// backend, in plaintext and over TLS (tests/support/tls_relay.hpp: the peer stays a plaintext
// socket); the few cases that stay plaintext say why.
//
// Sections: 1 helpers (a task beside the body that the body joins, a yield, CPython's echo
// server, a sender that lets the channel read between pieces); 2 CPython's test_asynchat.py
// re-expressed for read() (docs/asynchat-semantics.md §8); 3 framing over reads (split
// terminator, several frames per read, switching terminators, end of stream, frame limit);
// 4 output (close_when_done, discard_buffers, gathering, drain, finish, producers); 5 timeouts
// and a peer reset (TCP). Invariant: no test depends on how the kernel cuts the stream into
// reads, and none asserts a timing.
#include "chat/channel.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "core/error.hpp"
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
using test::fill_send_buffer;
using test::recv_all_from;
using test::tcp_pair;
using test::yield_now;
using chat::channel;
using chat::channel_options;
using chat::terminator;

// ---------------------------------------------------------------------------------------------
// 1. Helpers
// ---------------------------------------------------------------------------------------------

namespace {

const std::error_code no_error;
const std::error_code timed_out(ETIMEDOUT, std::system_category());
const std::error_code reset_by_peer(ECONNRESET, std::system_category());
const std::error_code cancelled(ECANCELED, std::system_category());
const std::string quit = "QUIT\n";  // CPython's SERVER_QUIT

/// Sends each piece in its own send; before the next one it waits until `ch` has received
/// everything sent so far, so that each piece usually is a read of its own (nothing below
/// depends on it). Closes after the last piece.
task<bool> send_pieces(reactor& r, ringchat::socket s, const channel& ch,
                       std::vector<std::string> pieces) {
    std::size_t sent_so_far = 0;
    for (const auto& piece : pieces) {
        while (ch.stats().bytes_received < sent_so_far && ch.is_open()) {
            co_await yield_now{r};
        }
        auto sent = co_await s.send_all(test::bytes(piece));
        REQUIRE(sent);
        sent_so_far += piece.size();
    }
    s.close_now();
    co_return true;
}

/// Everything read() gives until its first "no frame".
struct records {
    std::vector<std::string> frames;
    std::error_code error;
    std::string partial;
};

task<records> read_until_end(channel& ch) {
    records out;
    for (;;) {
        auto f = co_await ch.read();
        if (!f) {
            out.error = f.error();
            out.partial = f.partial();
            co_return out;
        }
        out.frames.emplace_back(f.text());
    }
}

std::string joined(const std::vector<std::string>& parts, std::size_t from = 0) {
    std::string out;
    for (std::size_t i = from; i < parts.size(); ++i) {
        out += parts[i];
    }
    return out;
}

/// A producer over one string, given whole (CPython's test_string_producer pushes bytes).
struct string_producer {
    std::string data;
    producers::chunk more() { return std::exchange(data, {}); }
};

/// A producer whose more() awaits a timer before each chunk.
class slow_producer {
public:
    slow_producer(reactor& r, std::vector<std::string> parts)
        : r_(&r), parts_(std::move(parts)) {}
    task<producers::chunk> more() {
        if (next_ == parts_.size()) {
            co_return producers::chunk();
        }
        auto slept = co_await r_->sleep_for(1ms);
        (void)slept;
        co_return parts_[next_++];
    }

private:
    reactor* r_;
    std::vector<std::string> parts_;
    std::size_t next_ = 0;
};

/// A producer that gives one chunk, then throws.
struct failing_producer {
    int calls = 0;
    producers::chunk more() {
        if (calls++ == 0) {
            return "mid|";
        }
        throw std::runtime_error("producer failed on purpose");
    }
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// 2. CPython's test_asynchat.py, for read()
// ---------------------------------------------------------------------------------------------

namespace {

task<> line_terminator_check(reactor& r, test::wire w, std::string term, std::size_t piece) {
    auto [ours, peer] = test::wired_pair(r, w);
    background<std::string> server(r, echo_peer(std::move(peer), piece));
    channel ch(std::move(ours));
    ch.set_terminator(term);
    ch.push("hello ");
    ch.push("world" + term);
    ch.push("I'm not dead yet!" + term);
    ch.push(quit);
    auto got = co_await read_until_end(ch);
    auto echoed = co_await server.join();
    CHECK(echoed == "hello world" + term + "I'm not dead yet!" + term);
    CHECK(got.frames == std::vector<std::string>{"hello world", "I'm not dead yet!"});
    CHECK(got.error == no_error);
    CHECK(got.partial.empty());
}

}  // namespace

TEST_CASE("channel: line terminators \\n, \\r\\n, qqq over echo pieces of 1, 2, 3",
          "[channel]") {
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
    channel ch(std::move(ours));
    ch.set_terminator(count);
    const std::string data = "hello world, I'm not dead yet!\n";
    ch.push(data);
    ch.push(quit);
    auto got = co_await read_until_end(ch);
    (void)co_await server.join();
    // One record of `count` bytes; then the count stays 0, which is "none": everything else
    // comes as it arrives, and no record ends again.
    REQUIRE_FALSE(got.frames.empty());
    CHECK(got.frames[0] == data.substr(0, static_cast<std::size_t>(count)));
    CHECK(joined(got.frames, 1) == data.substr(static_cast<std::size_t>(count)));
    CHECK(ch.get_terminator() == terminator::count(0));
    CHECK(got.error == no_error);
    CHECK(got.partial.empty());
}

}  // namespace

TEST_CASE("channel: numeric terminators 1 and 6 give one record, then none mode", "[channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    const std::size_t piece = GENERATE(as<std::size_t>{}, 1, 3);
    const int count = GENERATE(1, 6);
    CAPTURE(kind, test::to_string(w), piece, count);
    test::run(kind, [=](reactor& r) { return numeric_terminator_check(r, w, count, piece); });
}

TEST_CASE("channel: none terminator delivers everything, never a record end", "[channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = test::wired_pair(r, w);
        background<std::string> server(r, echo_peer(std::move(peer), 2));
        channel ch(std::move(ours));
        ch.set_terminator(terminator::none());
        const std::string data = "hello world, I'm not dead yet!\n";
        ch.push(data);
        ch.push(quit);
        auto got = co_await read_until_end(ch);
        (void)co_await server.join();
        CHECK(joined(got.frames) == data);
        for (const auto& f : got.frames) {
            CHECK_FALSE(f.empty());
        }
        CHECK(got.error == no_error);
        CHECK(got.partial.empty());
    });
}

TEST_CASE("channel: simple producer, string producer, empty line", "[channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        const std::string data = "hello world\nI'm not dead yet!\n";
        const std::vector<std::string> lines{"hello world", "I'm not dead yet!"};
        {
            auto [ours, peer] = test::wired_pair(r, w);
            background<std::string> server(r, echo_peer(std::move(peer), 1));
            channel ch(std::move(ours));
            ch.push_with_producer(producers::simple(data, 8));
            ch.push(quit);
            auto got = co_await read_until_end(ch);
            (void)co_await server.join();
            CHECK(got.frames == lines);
        }
        {
            // A producer chunk longer than one send (out_buffer_size) goes in pieces.
            auto [ours, peer] = test::wired_pair(r, w);
            background<std::string> server(r, echo_peer(std::move(peer), 3));
            channel_options o;
            o.out_buffer_size = 7;
            channel ch(std::move(ours), o);
            ch.push_with_producer(string_producer{data});
            ch.push(quit);
            auto got = co_await read_until_end(ch);
            (void)co_await server.join();
            CHECK(got.frames == lines);
            CHECK(ch.stats().sends >= data.size() / 7);
        }
        {
            auto [ours, peer] = test::wired_pair(r, w);
            background<std::string> server(r, echo_peer(std::move(peer), 2));
            channel ch(std::move(ours));
            ch.push("hello world\n\nI'm not dead yet!\n");
            ch.push(quit);
            auto got = co_await read_until_end(ch);
            (void)co_await server.join();
            CHECK(got.frames == std::vector<std::string>{"hello world", "", "I'm not dead yet!"});
        }
    });
}

TEST_CASE("channel: close_when_done sends what was pushed, then closes", "[channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = test::wired_pair(r, w);
        channel ch(std::move(ours));
        // CPython's test: the server only echoes once the client is gone.
        ch.push("hello world\nI'm not dead yet!\n");
        ch.push(quit);
        ch.close_when_done();
        auto got = co_await test::recv_all(peer);
        CHECK(got == "hello world\nI'm not dead yet!\n" + quit);
        CHECK_FALSE(ch.is_open());
        CHECK(ch.close_reason() == no_error);
        auto f = co_await ch.read();
        CHECK_FALSE(f);
        CHECK(f.partial().empty());
    });
}

TEST_CASE("channel: 1 MiB pushed at once arrives intact", "[channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = test::wired_pair(r, w);
        channel ch(std::move(ours));
        std::string big(1 << 20, '\0');
        for (std::size_t i = 0; i < big.size(); ++i) {
            big[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
        }
        ch.push(big);
        auto got = co_await test::recv_exactly(peer, big.size());
        CHECK(got.size() == big.size());
        CHECK(got == big);
        CHECK(ch.stats().bytes_sent == big.size());
        CHECK(ch.queued_bytes() == 0);
    });
}

TEST_CASE("channel: a negative terminator throws; 0 is accepted and means none", "[channel]") {
    // Plaintext only: no I/O: nothing a wire could change.
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        auto [ours, peer] = test::socket_pair(r);
        channel ch(std::move(ours));
        CHECK(ch.get_terminator() == terminator::bytes("\n"));  // the documented default
        CHECK_THROWS_AS(ch.set_terminator(-1), std::invalid_argument);
        CHECK(ch.get_terminator() == terminator::bytes("\n"));  // unchanged
        ch.set_terminator(0);
        CHECK(ch.get_terminator() == terminator::count(0));
        CHECK_FALSE(ch.get_terminator().active());
        co_return;
    });
}

// ---------------------------------------------------------------------------------------------
// 3. Framing over reads
// ---------------------------------------------------------------------------------------------

namespace {

struct split_case {
    std::string term;
    std::vector<std::string> pieces;
    std::vector<std::string> frames;
    std::string partial;
};

task<> split_check(reactor& r, test::wire w, split_case c) {
    auto [ours, peer] = test::wired_pair(r, w);
    channel ch(std::move(ours));
    ch.set_terminator(c.term);
    background<bool> sender(r, send_pieces(r, std::move(peer), ch, c.pieces));
    auto got = co_await read_until_end(ch);
    (void)co_await sender.join();
    CHECK(got.frames == c.frames);
    CHECK(got.error == no_error);
    CHECK(got.partial == c.partial);
}

}  // namespace

TEST_CASE("read(): a terminator split across reads is found", "[channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    // §4.4 of docs/asynchat-semantics.md: held prefixes, a false prefix, the longest prefix.
    auto c = GENERATE(values<split_case>({
        {"\r\n", {"HEL", "LO\r", "\nrest"}, {"HELLO"}, "rest"},
        {"\r\n", {"abc\r", "x\r\n"}, {"abc\rx"}, ""},
        {"\r\n", {"\r", "\r", "\n"}, {"\r"}, ""},
        {"ab", {"xa", "by"}, {"x"}, "y"},
        {"abac", {"abab", "ac"}, {"ab"}, ""},
        {"\r\n\r\n", {"head\r\n", "\r", "\nbody\r\n\r"}, {"head"}, "body\r\n\r"},
    }));
    CAPTURE(kind, test::to_string(w), c.term, c.pieces);
    test::run(kind, [=](reactor& r) { return split_check(r, w, c); });
}

TEST_CASE("read(): several frames in one read; empty frames", "[channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = test::wired_pair(r, w);
        channel ch(std::move(ours));
        auto sent = co_await peer.send_all(test::bytes("a\nbb\nccc\nd"));
        REQUIRE(sent);
        auto a = co_await ch.read();
        REQUIRE(a);
        CHECK(a.text() == "a");
        // One send of 10 bytes, already queued when the channel first read: one chunk.
        CHECK(ch.stats().bytes_received == 10);
        auto bb = co_await ch.read();
        REQUIRE(bb);
        CHECK(bb.text() == "bb");
        auto ccc = co_await ch.read();
        REQUIRE(ccc);
        CHECK(ccc.text() == "ccc");
        auto more = co_await peer.send_all(test::bytes("\n\n\n"));
        REQUIRE(more);
        peer.close_now();
        auto got = co_await read_until_end(ch);
        CHECK(got.frames == std::vector<std::string>{"d", "", ""});
        CHECK(got.error == no_error);
        CHECK(got.partial.empty());
    });
}

namespace {

task<std::string> read_one(channel& ch) {
    auto f = co_await ch.read();
    if (!f) {
        co_return "<no frame: " + f.error().message() + ">";
    }
    co_return std::string(f.text());
}

}  // namespace

TEST_CASE("read(): switching terminators between reads; a count shows what is left",
          "[channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = test::wired_pair(r, w);
        channel ch(std::move(ours));

        // Header line, count body, then lines again: all in one send.
        auto sent = co_await peer.send_all(test::bytes("LEN 5\r\nhelloworld\r\nbye\r\n"));
        REQUIRE(sent);
        ch.set_terminator("\r\n");
        auto header = co_await ch.read();
        REQUIRE(header);
        CHECK(header.text() == "LEN 5");
        ch.set_terminator(5);
        auto body = co_await ch.read();
        REQUIRE(body);
        CHECK(body.text() == "hello");
        CHECK(ch.get_terminator() == terminator::count(0));
        ch.set_terminator("\r\n");
        auto world = co_await ch.read();
        REQUIRE(world);
        CHECK(world.text() == "world");
        auto bye = co_await ch.read();
        REQUIRE(bye);
        CHECK(bye.text() == "bye");

        // A count body across reads: between them the count shows what is left.
        const auto before = ch.stats().bytes_received;
        ch.set_terminator(10);
        background<std::string> reader(r, read_one(ch));
        auto first = co_await peer.send_all(test::bytes("1234"));
        REQUIRE(first);
        while (ch.stats().bytes_received < before + 4) {
            co_await yield_now{r};
        }
        CHECK(ch.get_terminator() == terminator::count(6));
        auto rest = co_await peer.send_all(test::bytes("567890xyz"));
        REQUIRE(rest);
        auto counted = co_await reader.join();
        CHECK(counted == "1234567890");
        CHECK(ch.get_terminator() == terminator::count(0));
        // count(0) is none: what follows comes as it is.
        auto tail = co_await ch.read();
        REQUIRE(tail);
        CHECK(tail.text() == "xyz");

        // Bytes received but not scanned yet are cut with the terminator set after the read.
        ch.set_terminator("\r\n");
        auto more = co_await peer.send_all(test::bytes("x\r\nab\r"));
        REQUIRE(more);
        auto x = co_await ch.read();
        REQUIRE(x);
        CHECK(x.text() == "x");
        ch.set_terminator(terminator::none());
        auto ab = co_await ch.read();
        REQUIRE(ab);
        CHECK(ab.text() == "ab\r");
    });
}

TEST_CASE("read(): end of stream reports the unterminated tail", "[channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        {
            auto [ours, peer] = test::wired_pair(r, w);
            channel ch(std::move(ours));
            auto sent = co_await peer.send_all(test::bytes("one\ntwo"));
            REQUIRE(sent);
            peer.close_now();
            auto one = co_await ch.read();
            REQUIRE(one);
            CHECK(one.text() == "one");
            auto end = co_await ch.read();
            CHECK_FALSE(end);
            CHECK(end.error() == no_error);
            CHECK(end.partial() == "two");
            CHECK(end.data().empty());
            // And again: end of stream stays.
            auto again = co_await ch.read();
            CHECK_FALSE(again);
            CHECK(again.error() == no_error);
        }
        {
            // A held terminator prefix is part of the tail.
            auto [ours, peer] = test::wired_pair(r, w);
            channel ch(std::move(ours));
            ch.set_terminator("\r\n");
            auto sent = co_await peer.send_all(test::bytes("x\r\ny\r"));
            REQUIRE(sent);
            peer.close_now();
            auto got = co_await read_until_end(ch);
            CHECK(got.frames == std::vector<std::string>{"x"});
            CHECK(got.error == no_error);
            CHECK(got.partial == "y\r");
        }
        {
            // A count body cut short: the tail, and the count still shows what is missing.
            auto [ours, peer] = test::wired_pair(r, w);
            channel ch(std::move(ours));
            ch.set_terminator(10);
            auto sent = co_await peer.send_all(test::bytes("abc"));
            REQUIRE(sent);
            peer.close_now();
            auto got = co_await read_until_end(ch);
            CHECK(got.frames.empty());
            CHECK(got.error == no_error);
            CHECK(got.partial == "abc");
            CHECK(ch.get_terminator() == terminator::count(7));
        }
    });
}

namespace {

task<bool> send_unterminated(reactor& r, ringchat::socket s, const channel& ch) {
    std::size_t sent_so_far = 0;
    const std::string piece(100, 'x');
    for (int i = 0; i < 50; ++i) {
        while (ch.stats().bytes_received < sent_so_far && ch.is_open()) {
            co_await yield_now{r};
        }
        auto sent = co_await s.send_all(test::bytes(piece));
        REQUIRE(sent);
        sent_so_far += piece.size();
    }
    auto sent = co_await s.send_all(test::bytes("\nok\n"));
    REQUIRE(sent);
    s.close_now();
    co_return true;
}

}  // namespace

TEST_CASE("read(): a frame past max_frame gives frame_too_long, then reading goes on",
          "[channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = test::wired_pair(r, w);
        channel_options o;
        o.max_frame = 1024;
        channel ch(std::move(ours), o);
        background<bool> sender(r, send_unterminated(r, std::move(peer), ch));
        auto too_long = co_await ch.read();
        CHECK_FALSE(too_long);
        CHECK(too_long.error() == make_error_code(errc::frame_too_long));
        // Reported as soon as the limit was passed, not after buffering the 5000 bytes.
        CHECK(ch.stats().bytes_received <= 1024 + 100);
        CHECK(ch.is_open());
        auto ok = co_await ch.read();
        REQUIRE(ok);
        CHECK(ok.text() == "ok");
        auto end = co_await ch.read();
        CHECK_FALSE(end);
        CHECK(end.error() == no_error);
        CHECK(end.partial().empty());
        CHECK(ch.stats().bytes_received == 5004);
        (void)co_await sender.join();
    });
}

TEST_CASE("set_max_frame(): one large frame let through, then the limit again", "[channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = test::wired_pair(r, w);
        channel_options o;
        o.max_frame = 16;
        channel ch(std::move(ours), o);
        const std::string big(5000, 'b');
        background<bool> sender(r, send_pieces(r, std::move(peer), ch,
                                               {"5000\n", big, "\n", big + "\nend\n"}));
        auto header = co_await ch.read();
        REQUIRE(header);
        CHECK(header.text() == "5000");
        ch.set_max_frame(5000);  // the size the header declared
        CHECK(ch.max_frame() == 5000);
        auto body = co_await ch.read();
        REQUIRE(body);
        CHECK(body.text() == big);
        ch.set_max_frame(16);
        auto again = co_await ch.read();
        CHECK_FALSE(again);
        CHECK(again.error() == make_error_code(errc::frame_too_long));
        auto end = co_await ch.read();
        REQUIRE(end);
        CHECK(end.text() == "end");
        (void)co_await sender.join();
    });
}

TEST_CASE("push(frame&&): large joined frames handed over, small ones copied; all intact",
          "[channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = test::wired_pair(r, w);
        channel ch(std::move(ours));
        // Lines of 40 KiB span the 16 KiB receive buffers (the framer joins them); the small
        // ones between lie in one buffer.
        std::string stream;
        for (int i = 0; i < 6; ++i) {
            stream += std::string(40 * 1024 + i, static_cast<char>('a' + i)) + "\n";
            stream += "small " + std::to_string(i) + "\n";
        }
        background<std::string> echo(r, [](ringchat::socket s, std::string out) -> task<std::string> {
            auto sent = co_await s.send_all(test::bytes(out));
            REQUIRE(sent);
            auto got = co_await test::recv_exactly(s, out.size());
            co_return got;
        }(std::move(peer), stream));
        for (int i = 0; i < 12; ++i) {
            auto line = co_await ch.read();
            REQUIRE(line);
            const std::size_t size = line.data().size();
            ch.push(std::move(line));
            CHECK(line.data().empty());
            CHECK(ch.queued_bytes() >= size);
            ch.push("\n");
        }
        auto got = co_await echo.join();
        CHECK(got.size() == stream.size());
        CHECK(got == stream);
    });
}

TEST_CASE("frames(): every frame in order, a dropped one included, then why it ended",
          "[channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = test::wired_pair(r, w);
        channel_options o;
        o.max_frame = 1024;
        channel ch(std::move(ours), o);
        background<bool> sender(r, send_pieces(r, std::move(peer), ch,
                                               {"a\nb\n", std::string(3000, 'x'), "\nc\n", "tail"}));
        std::vector<std::string> got;
        int dropped = 0;
        auto frames = ch.frames();
        for (auto it = co_await frames.begin(); it != frames.end(); co_await ++it) {
            if (!*it) {
                CHECK(it->error() == make_error_code(errc::frame_too_long));
                ++dropped;
                continue;
            }
            got.emplace_back(it->text());
        }
        CHECK(got == std::vector<std::string>{"a", "b", "c"});
        CHECK(dropped == 1);
        CHECK(frames.error() == no_error);
        CHECK(frames.partial() == "tail");
        (void)co_await sender.join();
    });
}

namespace {

/// Awaits one read() and must never be resumed: its frame is destroyed while it waits.
task<> abandoned_read(channel& ch, bool& resumed) {
    auto f = co_await ch.read();
    resumed = true;
    (void)f;
}

}  // namespace

TEST_CASE("read(): a caller destroyed while waiting is not resumed; the next read() goes on",
          "[channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = test::wired_pair(r, w);
        channel ch(std::move(ours));
        bool resumed = false;
        {
            auto waiting = abandoned_read(ch, resumed);
            waiting.start();  // suspends in read(): nothing has arrived
            co_await yield_now{r};
        }  // destroyed here, still waiting
        auto sent = co_await peer.send_all(test::bytes("one\ntwo\n"));
        REQUIRE(sent);
        auto first = co_await ch.read();
        REQUIRE(first);
        CHECK(first.text() == "one");
        auto second = co_await ch.read();
        REQUIRE(second);
        CHECK(second.text() == "two");
        CHECK_FALSE(resumed);
    });
}

// ---------------------------------------------------------------------------------------------
// 4. Output
// ---------------------------------------------------------------------------------------------

TEST_CASE("close_when_done: all pushed before arrives in order, then EOF; nothing after",
          "[channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = test::wired_pair(r, w);
        channel ch(std::move(ours));
        std::string expected;
        for (int i = 0; i < 200; ++i) {
            auto line = fmt::format("line {}\n", i);
            expected += line;
            if (i % 3 == 0) {
                ch.push_with_producer(producers::simple(line, 3));
            } else {
                ch.push(line);
            }
        }
        ch.push(std::string(100'000, 'z'));
        expected += std::string(100'000, 'z');
        CHECK(ch.writable());
        ch.close_when_done();
        ch.push("never\n");
        ch.push_with_producer(producers::simple("never either\n"));
        ch.close_when_done();
        auto got = co_await test::recv_all(peer);
        CHECK(got.size() == expected.size());
        CHECK(got == expected);
        CHECK_FALSE(ch.is_open());
        CHECK(ch.close_reason() == no_error);
        ch.push("closed\n");  // ignored
    });
}

TEST_CASE("close(): a pending read() ends with ECANCELED", "[channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = test::wired_pair(r, w);
        channel ch(std::move(ours));
        background<std::string> reader(r, read_one(ch));
        co_await yield_now{r};
        co_await yield_now{r};
        ch.close();
        auto got = co_await reader.join();
        CHECK(got == "<no frame: " + cancelled.message() + ">");
        CHECK_FALSE(ch.is_open());
        CHECK(ch.close_reason() == no_error);
    });
}

TEST_CASE("discard_buffers drops queued output, a close marker included", "[channel]") {
    // Plaintext only: it fills the socket under the transport with raw bytes.
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        auto [ours, peer] = test::socket_pair(r);
        channel ch(std::move(ours));
        const std::size_t junk = fill_send_buffer(*ch.socket());
        REQUIRE(junk > 0);
        // The writer's first send waits; the rest is queued behind it.
        ch.push(std::string(1 << 20, 'x'));
        ch.push("MARK");
        ch.push_with_producer(producers::simple("MORE"));
        ch.close_when_done();
        ch.discard_buffers();
        CHECK(ch.is_open());
        ch.push("after\n");
        background<std::string> reader(r, recv_all_from(std::move(peer)));
        co_await ch.finish();
        auto got = co_await reader.join();
        REQUIRE(got.size() >= junk + 6);
        CHECK(got.substr(0, junk) == std::string(junk, 'j'));
        CHECK(got.substr(got.size() - 6) == "after\n");
        // At most what the send in progress had taken; the rest of the 1 MiB is dropped.
        const std::size_t xs = got.size() - junk - 6;
        CHECK(xs <= ch.options().out_buffer_size);
        CHECK(got.substr(junk, xs) == std::string(xs, 'x'));
        CHECK(ch.close_reason() == no_error);
        CHECK(ch.queued_bytes() == 0);  // what was dropped is no longer counted
    });
}

TEST_CASE("1,000 pushes of 16 bytes arrive intact in far fewer sends", "[channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = test::wired_pair(r, w);
        channel ch(std::move(ours));
        std::string expected;
        for (int i = 0; i < 1000; ++i) {
            auto record = fmt::format("record {:08}\n", i);
            REQUIRE(record.size() == 16);
            expected += record;
            ch.push(record);
        }
        auto got = co_await test::recv_exactly(peer, expected.size());
        CHECK(got == expected);
        CHECK(ch.stats().bytes_sent == expected.size());
        CHECK(ch.stats().sends < 50);
    });
}

TEST_CASE("what one turn pushes goes out in one send, the first push included", "[channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = test::wired_pair(r, w);
        channel ch(std::move(ours));
        // Larger than what push() appends to a queued chunk: three entries, one gathered send.
        std::string expected;
        for (char c : {'a', 'b', 'c'}) {
            const std::string part(5000, c);
            expected += part;
            ch.push(part);
        }
        CHECK(ch.stats().sends == 0);  // the writer sends at the end of the turn, not in push()
        auto got = co_await test::recv_exactly(peer, expected.size());
        CHECK(got == expected);
        CHECK(ch.stats().sends == 1);
        // The same once the writer has run and parked.
        ch.push(std::string(5000, 'd'));
        ch.push(std::string(5000, 'e'));
        got = co_await test::recv_exactly(peer, 10000);
        CHECK(got == std::string(5000, 'd') + std::string(5000, 'e'));
        CHECK(ch.stats().sends == 2);
    });
}

namespace {

/// Does not read until the channel has queued at least low_water, then reads `n` bytes.
task<std::string> late_reader(reactor& r, ringchat::socket s, const channel& ch, std::size_t n) {
    while (ch.queued_bytes() < ch.options().low_water) {
        co_await yield_now{r};
    }
    auto got = co_await test::recv_exactly(s, n);
    co_return got;
}

}  // namespace

TEST_CASE("drain(): queued output stays below low water plus one push", "[channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = test::wired_pair(r, w);
        channel_options o;
        o.low_water = 16 * 1024;
        channel ch(std::move(ours), o);
        std::string payload(2 << 20, '\0');
        for (std::size_t i = 0; i < payload.size(); ++i) {
            payload[i] = static_cast<char>('A' + (i / 5 + i) % 23);
        }
        background<std::string> reader(r, late_reader(r, std::move(peer), ch, payload.size()));
        const std::size_t push_size = 4096;
        std::size_t most = 0;
        for (std::size_t at = 0; at < payload.size(); at += push_size) {
            co_await ch.drain();
            REQUIRE(ch.is_open());
            ch.push(std::string_view(payload).substr(at, push_size));
            most = std::max(most, ch.queued_bytes());
        }
        CHECK(most >= o.low_water);  // the peer did hold the writer back
        CHECK(most <= o.low_water + push_size);
        auto got = co_await reader.join();
        CHECK(got.size() == payload.size());
        CHECK(got == payload);
    });
}

TEST_CASE("drain() with low_water 0 returns once everything is sent", "[channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = test::wired_pair(r, w);
        channel_options o;
        o.low_water = 0;
        channel ch(std::move(ours), o);
        const std::string payload(1 << 20, 'd');  // more than the socket buffer holds
        background<std::string> reader(r, test::recv_exactly(peer, payload.size()));
        ch.push(payload);
        co_await ch.drain();
        CHECK(ch.is_open());
        CHECK(ch.queued_bytes() == 0);
        CHECK(ch.stats().bytes_sent == payload.size());
        auto got = co_await reader.join();
        CHECK(got == payload);
    });
}

TEST_CASE("a closed channel queues nothing: close(), and pushes after close_when_done",
          "[channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        {
            // close() while output waits for a peer that does not read.
            auto [ours, peer] = test::wired_pair(r, w);
            channel ch(std::move(ours));
            ch.push(std::string(1 << 20, 'q'));
            co_await yield_now{r};
            CHECK(ch.queued_bytes() > 0);
            ch.close();
            co_await yield_now{r};  // the writer's cancelled send comes back
            co_await yield_now{r};
            CHECK(ch.queued_bytes() == 0);
            CHECK_FALSE(ch.writable());
            ch.push("more");  // closed: dropped
            CHECK(ch.queued_bytes() == 0);
        }
        {
            auto [ours, peer] = test::wired_pair(r, w);
            channel ch(std::move(ours));
            background<std::string> reader(r, recv_all_from(std::move(peer)));
            ch.push("before\n");
            ch.close_when_done();
            ch.push("after\n");  // never sent
            auto got = co_await reader.join();
            CHECK(got == "before\n");
            CHECK_FALSE(ch.is_open());
            CHECK(ch.queued_bytes() == 0);
            CHECK_FALSE(ch.writable());
        }
    });
}

TEST_CASE("finish(): flushes what is queued, then closes", "[channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        {
            auto [ours, peer] = test::wired_pair(r, w);
            channel ch(std::move(ours));
            background<std::string> reader(r, recv_all_from(std::move(peer)));
            std::string expected;
            for (std::size_t i = 0; i < 100; ++i) {
                const auto line = fmt::format("{}:{}\n", i, std::string(i * 97, 'f'));
                expected += line;
                ch.push(line);
            }
            co_await ch.finish();
            CHECK_FALSE(ch.is_open());
            CHECK(ch.close_reason() == no_error);
            auto got = co_await reader.join();
            CHECK(got == expected);
        }
        {
            // Nothing queued: closes at once.
            auto [ours, peer] = test::wired_pair(r, w);
            channel ch(std::move(ours));
            co_await ch.finish();
            CHECK_FALSE(ch.is_open());
            auto got = co_await test::recv_all(peer);
            CHECK(got.empty());
        }
    });
}

TEST_CASE("a producer that throws closes the channel; what came before it was sent",
          "[channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = test::wired_pair(r, w);
        channel ch(std::move(ours));
        ch.push("before|");
        ch.push_with_producer(failing_producer{});
        ch.push("after|");
        auto got = co_await test::recv_all(peer);
        CHECK(got == "before|mid|");
        CHECK_FALSE(ch.is_open());
        CHECK(ch.close_reason());
        auto f = co_await ch.read();
        CHECK_FALSE(f);
        CHECK(f.error() == ch.close_reason());
    });
}

TEST_CASE("an asynchronous producer (more() awaits) is sent in order", "[channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = test::wired_pair(r, w);
        channel ch(std::move(ours));
        background<std::string> reader(r, recv_all_from(std::move(peer)));
        ch.push("A|");
        ch.push_with_producer(slow_producer(r, {"one|", "two|", "three|"}));
        ch.push("B|");
        ch.push_with_producer(slow_producer(r, {}));
        ch.push("C|");
        co_await ch.finish();
        auto got = co_await reader.join();
        CHECK(got == "A|one|two|three|B|C|");
        CHECK(ch.close_reason() == no_error);
    });
}

TEST_CASE("an asynchronous producer awaited while the queue grows keeps its place and state",
          "[channel]") {
    // The writer awaits the first producer's more() (a timer) while the session queues 200
    // more entries: the queue grows under it, and the producer being awaited must not move.
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = test::wired_pair(r, w);
        channel ch(std::move(ours));
        background<std::string> reader(r, recv_all_from(std::move(peer)));
        ch.push_with_producer(slow_producer(r, {"one|", "two|", "three|"}));
        co_await yield_now{r};  // the writer starts and awaits the first chunk
        std::string expected = "one|two|three|";
        for (int i = 0; i < 100; ++i) {
            const std::string n = std::to_string(i);
            ch.push_with_producer(string_producer{"p" + n + "|"});
            ch.push_with_producer(slow_producer(r, {"s" + n + "|"}));
            expected += "p" + n + "|s" + n + "|";
        }
        co_await ch.finish();
        auto got = co_await reader.join();
        CHECK(got == expected);
        CHECK(ch.close_reason() == no_error);
    });
}

TEST_CASE("flush(): waits for producers too, and the channel stays open", "[channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = test::wired_pair(r, w);
        channel_options o;
        o.low_water = 1;  // drain() would return at once: a producer counts no bytes
        channel ch(std::move(ours), o);
        co_await ch.flush();  // nothing queued: at once
        ch.push("A|");
        ch.push_with_producer(slow_producer(r, {"one|", "two|", "three|"}));
        co_await ch.flush();
        CHECK(ch.is_open());
        CHECK_FALSE(ch.writable());
        CHECK(ch.stats().bytes_sent == 16);
        auto got = co_await test::recv_exactly(peer, 16);
        CHECK(got == "A|one|two|three|");
        ch.close();
        co_await ch.flush();  // closed: at once
    });
}

TEST_CASE("discard_buffers while an asynchronous producer is asked for more()", "[channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = test::wired_pair(r, w);
        channel ch(std::move(ours));
        background<std::string> reader(r, recv_all_from(std::move(peer)));
        // The writer starts at once and awaits the producer's first chunk.
        ch.push_with_producer(slow_producer(r, {"dropped|", "dropped too|"}));
        ch.discard_buffers();
        ch.push("kept|");
        co_await ch.finish();
        auto got = co_await reader.join();
        CHECK(got == "kept|");
        CHECK(ch.queued_bytes() == 0);
    });
}

// ---------------------------------------------------------------------------------------------
// 5. Timeouts and reset
// ---------------------------------------------------------------------------------------------

TEST_CASE("read_timeout: no data ends read() with ETIMEDOUT and closes", "[channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = test::wired_pair(r, w);
        auto shaken = co_await test::handshake(*ours);  // the deadline is for the data only
        REQUIRE_FALSE(shaken);
        channel_options o;
        o.read_timeout = 50ms;
        channel ch(std::move(ours), o);
        auto sent = co_await peer.send_all(test::bytes("one\ntw"));
        REQUIRE(sent);
        auto one = co_await ch.read();
        REQUIRE(one);
        CHECK(one.text() == "one");
        auto late = co_await ch.read();
        CHECK_FALSE(late);
        CHECK(late.error() == timed_out);
        CHECK(late.partial() == "tw");
        CHECK_FALSE(ch.is_open());
        CHECK(ch.close_reason() == timed_out);
        // The peer sees the channel gone.
        auto rest = co_await test::recv_all(peer);
        CHECK(rest.empty());
    });
}

TEST_CASE("idle_timeout: a silent connection ends with ETIMEDOUT", "[channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = test::wired_pair(r, w);
        auto sent = co_await peer.send_all(test::bytes("a\n"));
        REQUIRE(sent);
        auto shaken = co_await test::handshake(*ours);  // TLS: the data follows at once
        REQUIRE_FALSE(shaken);
        channel_options o;
        o.idle_timeout = 100ms;  // counted from here: the data is there already
        channel ch(std::move(ours), o);
        auto a = co_await ch.read();
        REQUIRE(a);
        CHECK(a.text() == "a");
        ch.push("reply\n");
        auto idle = co_await ch.read();
        CHECK_FALSE(idle);
        CHECK(idle.error() == timed_out);
        CHECK_FALSE(ch.is_open());
        CHECK(ch.close_reason() == timed_out);
        auto got = co_await test::recv_all(peer);
        CHECK(got == "reply\n");
    });
}

TEST_CASE("write_timeout: a peer that does not read ends the channel with ETIMEDOUT",
          "[channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = test::wired_pair(r, w);
        channel_options o;
        o.write_timeout = 50ms;
        channel ch(std::move(ours), o);
        ch.push(std::string(8 << 20, 'w'));
        co_await ch.drain();  // completes when the channel closes
        CHECK_FALSE(ch.is_open());
        CHECK(ch.close_reason() == timed_out);
        auto f = co_await ch.read();
        CHECK_FALSE(f);
        CHECK(f.error() == timed_out);
        co_return;
    });
}

TEST_CASE("a peer reset (TCP) ends read() with ECONNRESET", "[channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = co_await test::wired_tcp_pair(r, w);
        channel ch(std::move(ours));
        auto sent = co_await peer.send_all(test::bytes("hello\n"));
        REQUIRE(sent);
        auto hello = co_await ch.read();
        REQUIRE(hello);
        CHECK(hello.text() == "hello");
        const linger hard{1, 0};
        REQUIRE(::setsockopt(peer.fd(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard) == 0);
        peer.close_now();
        auto f = co_await ch.read();
        CHECK_FALSE(f);
        CHECK(f.error() == reset_by_peer);
        CHECK_FALSE(ch.is_open());
        CHECK(ch.close_reason() == reset_by_peer);
    });
}

TEST_CASE("close() with output queued resets the connection: the peer never reads a clean end",
          "[channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = co_await test::wired_tcp_pair(r, w);
        channel ch(std::move(ours));
        // More than the kernel's buffers (and the relay) hold while the peer does not read.
        const std::size_t size = 8 << 20;
        ch.push(std::string(size, 'q'));
        while (ch.stats().bytes_sent == 0) {
            co_await yield_now{r};
        }
        REQUIRE(ch.queued_bytes() > 0);
        ch.close();
        std::string got;
        std::byte buf[16384];
        std::error_code end;
        for (;;) {
            auto n = co_await peer.recv(buf);
            if (!n) {
                end = n.error();
                break;
            }
            if (*n == 0) {
                break;  // a clean end of stream: what the close must not look like
            }
            got.append(reinterpret_cast<const char*>(buf), *n);
        }
        CHECK(end == reset_by_peer);
        CHECK(got.size() < size);
        CHECK(got == std::string(got.size(), 'q'));
    });
}
