// SPDX-License-Identifier: MIT
// tests/chat/test_safety.cpp — the channel is safe when the code around it is plain: what a
// session holds stays valid, output is bounded without drain(), a trickling peer meets a
// deadline, and one busy connection does not starve the rest. Every test on both backends;
// those over a pair in plaintext and over TLS too (tests/support/tls_relay.hpp), but where
// they say why not.
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "chat/async_chat.hpp"
#include "chat/channel.hpp"
#include "chat/serve.hpp"
#include "core/listener.hpp"
#include "producers/generator.hpp"
#include "producers/producer.hpp"
#include "core/error.hpp"
#include "tests/support/peers.hpp"
#include "tests/support/support.hpp"
#include "tests/support/tls_relay.hpp"

using namespace ringchat;
using namespace std::chrono_literals;
using chat::channel;
using chat::channel_options;

namespace {

/// A reactor of `kind` with `count` provided buffers of `size` bytes.
reactor_options with_buffers(backend_kind kind, unsigned count, unsigned size) {
    reactor_options options;
    options.kind = kind;
    options.buffer_count = count;
    options.buffer_size = size;
    return options;
}

/// Yields `n` reactor turns (each with a poll), so that whatever the kernel may do meanwhile
/// (complete a recv into a free buffer) is done.
task<> turns(reactor& r, int n) {
    for (int i = 0; i < n; ++i) {
        co_await test::yield_now{r};
    }
}

}  // namespace

TEST_CASE("discard_buffers() leaves the frame read last valid until the next read()",
          "[channel][safety]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    // One provided buffer in all: were the frame's buffer given back, the next bytes to
    // arrive would be received into it, over the frame.
    test::run(with_buffers(kind, 1, 1024), [w](reactor& r) -> task<> {
        auto [ours, peer] = test::wired_pair(r, w);
        channel ch(std::move(ours));
        REQUIRE(::send(peer.fd(), "first\n", 6, MSG_NOSIGNAL) == 6);
        auto f = co_await ch.read();
        REQUIRE(f);
        ch.discard_buffers();
        REQUIRE(::send(peer.fd(), "XXXXX\n", 6, MSG_NOSIGNAL) == 6);
        co_await turns(r, 5);
        CHECK(f.text() == "first");
        auto next = co_await ch.read();
        REQUIRE(next);
        CHECK(next.text() == "XXXXX");
    });
}

// --- back-pressure: a session that never drains, a peer that never reads --------------------

namespace {

constexpr std::size_t reply_size = 1024;

/// Sends `n` lines "x\n" as fast as the channel takes them, then half-closes.
task<bool> pipeline_lines(ringchat::socket& s, std::size_t n) {
    std::string block;
    for (int i = 0; i < 1024; ++i) {
        block += "x\n";
    }
    for (std::size_t sent = 0; sent < n; sent += 1024) {
        auto ok = co_await s.send_all(test::bytes(block));
        if (!ok) {
            co_return false;
        }
    }
    (void)s.shutdown(SHUT_WR);
    co_return true;
}

/// The plain session: a 1 KiB reply per line, no drain(). Records the most it had queued.
task<std::size_t> answer_without_drain(channel& ch, std::size_t& most_queued) {
    const std::string reply(reply_size - 1, 'r');
    std::size_t lines = 0;
    for (;;) {
        auto line = co_await ch.read();
        if (!line) {
            INFO("the last read(): " << line.error().message());
            CHECK_FALSE(line.error());
            break;
        }
        ch.push(reply);
        ch.push("\n");
        most_queued = std::max(most_queued, ch.queued_bytes());
        ++lines;
    }
    co_await ch.finish();
    co_return lines;
}

}  // namespace

TEST_CASE("a session that never drains holds at most high water plus one reply for a peer "
          "that does not read; nothing is lost once it reads",
          "[channel][safety]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        constexpr std::size_t lines = 64 * 1024;  // 64 MiB of replies, were none held back
        auto [ours, peer] = co_await test::wired_tcp_pair(r, w);
        channel_options o;
        o.high_water = 128 * 1024;
        channel ch(std::move(ours), o);
        std::size_t most_queued = 0;
        test::background<bool> sender(r, pipeline_lines(peer, lines));
        test::background<std::size_t> session(r, answer_without_drain(ch, most_queued));
        // The peer reads nothing for a while: the session stops reading, not growing.
        co_await r.sleep_for(200ms);
        CHECK(ch.queued_bytes() <= o.high_water + reply_size);
        CHECK(ch.stats().bytes_received < lines * 2);  // reading did pause
        // Then it reads everything: every reply arrives, in full.
        const std::string all = co_await test::recv_all(peer);
        const std::size_t answered = co_await session.join();
        const bool sent = co_await sender.join();
        CHECK(sent);
        CHECK(answered == lines);
        CHECK(all.size() == lines * reply_size);
        CHECK(most_queued <= o.high_water + reply_size);
    });
}

TEST_CASE("pushes past max_output close the channel with output_overflow", "[channel][safety]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = co_await test::wired_tcp_pair(r, w);
        channel_options o;
        o.max_output = 1024 * 1024;
        channel ch(std::move(ours), o);
        // Not an answer to input, so back-pressure on reading cannot stop it: a loop that
        // writes without drain() to a peer that does not read.
        const std::string chunk(4096, 'p');
        int pushes = 0;
        while (ch.is_open() && pushes < 100'000) {
            ch.push(chunk);
            ++pushes;
            if (pushes % 64 == 0) {
                co_await test::yield_now{r};  // the writer sends what the kernel takes
            }
        }
        CHECK_FALSE(ch.is_open());
        CHECK(ch.close_reason() == make_error_code(errc::output_overflow));
        co_await turns(r, 3);  // the send in flight comes back cancelled; its part is dropped
        CHECK(ch.queued_bytes() == 0);
        CHECK(pushes < 100'000);
        auto f = co_await ch.read();
        CHECK_FALSE(f);
        // The peer sees a reset after what it was sent, never a clean end.
        std::error_code end;
        std::byte buf[16384];
        for (;;) {
            auto n = co_await peer.recv(buf);
            if (!n || *n == 0) {
                end = n ? std::error_code() : n.error();
                break;
            }
        }
        CHECK(end == std::errc::connection_reset);
    });
}

TEST_CASE("one reply larger than max_output into a queue that was not backed up goes out whole",
          "[channel][safety]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = co_await test::wired_tcp_pair(r, w);
        channel_options o;
        o.max_output = 1024 * 1024;
        channel ch(std::move(ours), o);
        ch.push("header\n");
        ch.push(std::string(4 << 20, 'v'));  // a 4 MiB value: one reply, not a pile-up
        CHECK(ch.is_open());
        // The peer reads while finish() waits: the socket buffers need not hold 4 MiB (with
        // tcp_rmem's default of 128 KiB and a peer that does not read, they do not).
        test::background<std::string> reading(r, test::recv_all(peer));
        co_await ch.finish();
        const std::string got = co_await reading.join();
        CHECK(got.size() == 7 + (std::size_t{4} << 20));
        CHECK(ch.close_reason() == std::error_code());
    });
}

namespace {

class replies_per_line : public chat::async_chat {
public:
    using async_chat::async_chat;
    std::size_t lines = 0;
    std::size_t most_queued = 0;
    void collect_incoming_data(std::span<const std::byte>) override {}
    void found_terminator() override {
        push(std::string(reply_size, 'f'));
        most_queued = std::max(most_queued, chan().queued_bytes());
        ++lines;
    }
};

}  // namespace

TEST_CASE("the async_chat facade pauses its input too while its output is above high water",
          "[channel][safety][async_chat]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        constexpr std::size_t lines = 64 * 1024;
        auto [ours, peer] = co_await test::wired_tcp_pair(r, w);
        channel_options o;
        o.high_water = 128 * 1024;
        replies_per_line chat(std::move(ours), o);
        test::background<bool> sender(r, pipeline_lines(peer, lines));
        test::background<bool> runs(r, [](replies_per_line& c) -> task<bool> {
            co_await c.run();
            co_return true;
        }(chat));
        co_await r.sleep_for(200ms);
        // A received chunk is handled whole (asynchat's handle_read): at most one chunk's
        // lines (16 KiB of "x\n") past the mark.
        const std::size_t bound = o.high_water + 8 * 1024 * reply_size;
        CHECK(chat.chan().queued_bytes() <= bound);
        CHECK(chat.lines < lines);
        (void)co_await sender.join();
        // The facade drops output queued when the peer closes (asynchat does): read what
        // comes until the channel is gone.
        peer.close_now();
        (void)co_await runs.join();
        CHECK(chat.most_queued <= bound);
    });
}

// --- deadlines a trickling peer cannot renew -------------------------------------------------

namespace {

/// Sends `text` one byte per `gap`, stopping early once `stop` is set or a send fails.
task<bool> trickle(reactor& r, ringchat::socket& s, std::string text,
                   std::chrono::milliseconds gap, const bool& stop) {
    for (char c : text) {
        if (stop) {
            break;
        }
        auto sent = co_await s.send_all(test::bytes(std::string_view(&c, 1)));
        if (!sent) {
            co_return false;
        }
        (void)co_await r.sleep_for(gap);
    }
    co_return true;
}

}  // namespace

TEST_CASE("frame_timeout: a line trickled a byte at a time ends the input with ETIMEDOUT; the "
          "channel stays open for an answer",
          "[channel][safety][deadline]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = co_await test::wired_tcp_pair(r, w);
        channel_options o;
        o.frame_timeout = 300ms;
        o.idle_timeout = 200ms;  // renewed by every byte: it never fires
        channel ch(std::move(ours), o);
        // One whole frame first: its deadline does not carry over to the next one.
        auto sent = co_await peer.send_all(test::bytes("quick\n"));
        REQUIRE(sent);
        auto quick = co_await ch.read();
        REQUIRE(quick);
        CHECK(quick.text() == "quick");
        bool stop = false;
        test::background<bool> slow(r, trickle(r, peer, std::string(100, 'a') + "\n", 20ms,
                                               stop));
        const auto started = clock::now();
        auto late = co_await ch.read();
        const auto waited = clock::now() - started;
        stop = true;
        CHECK_FALSE(late);
        CHECK(late.error() == std::errc::timed_out);
        CHECK_FALSE(late.partial().empty());
        CHECK(late.partial().size() < 100);
        CHECK(waited < 2s);  // a bound on the test, not a timing claim: 100 bytes take 2 s
        // The output side is still there: the session answers, then finishes.
        CHECK(ch.is_open());
        ch.push("408 too slow\n");
        co_await ch.finish();
        (void)co_await slow.join();
        const std::string answer = co_await test::recv_all(peer);
        CHECK(answer == "408 too slow\n");
        auto after = co_await ch.read();
        CHECK_FALSE(after);
    });
}

TEST_CASE("frame_timeout: frames that each arrive in time are never cut, however long the "
          "stream",
          "[channel][safety][deadline]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = co_await test::wired_tcp_pair(r, w);
        channel_options o;
        o.frame_timeout = 200ms;
        channel ch(std::move(ours), o);
        // 12 frames of 5 bytes, a byte per 10 ms, so every chunk boundary falls inside a
        // frame: 600 ms in all, three times the frame deadline, each frame within it.
        std::string stream;
        for (int i = 0; i < 12; ++i) {
            stream += "abcd\n";
        }
        bool stop = false;
        test::background<bool> slow(r, trickle(r, peer, stream, 10ms, stop));
        int frames = 0;
        for (int i = 0; i < 12; ++i) {
            auto f = co_await ch.read();
            if (!f) {
                FAIL_CHECK("frame " << i << ": " << f.error().message());
                break;
            }
            CHECK(f.text() == "abcd");
            ++frames;
        }
        stop = true;
        (void)co_await slow.join();
        CHECK(frames == 12);
    });
}

namespace {

class trickled_record : public chat::async_chat {
public:
    using async_chat::async_chat;
    int records = 0;
    void collect_incoming_data(std::span<const std::byte>) override {}
    void found_terminator() override { ++records; }
};

}  // namespace

TEST_CASE("frame_timeout: the facade closes a record trickled past it with ETIMEDOUT",
          "[channel][safety][deadline][async_chat]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = co_await test::wired_tcp_pair(r, w);
        channel_options o;
        o.frame_timeout = 300ms;
        trickled_record chat(std::move(ours), o);
        auto sent = co_await peer.send_all(test::bytes("whole\n"));
        REQUIRE(sent);
        bool stop = false;
        test::background<bool> slow(r, trickle(r, peer, std::string(100, 'b'), 20ms, stop));
        co_await chat.run();
        stop = true;
        (void)co_await slow.join();
        CHECK(chat.records == 1);
        CHECK(chat.close_reason() == std::errc::timed_out);
    });
}

// --- fairness: one connection's backlog does not starve another ------------------------------

namespace {

/// Echoes lines, counting the bytes it handled.
task<> counting_echo(channel& ch, std::size_t& handled) {
    for (;;) {
        auto line = co_await ch.read();
        if (!line) {
            break;
        }
        handled += line.data().size() + 1;
        ch.push(std::move(line));
        ch.push("\n");
    }
    co_await ch.finish();
}

}  // namespace

TEST_CASE("a connection with a large backlog is framed a turn's budget at a time: another "
          "connection's request is handled meanwhile",
          "[channel][safety][fairness]") {
    // Plaintext only: it counts bytes framed per turn; over TLS the relay adds turns to B's ping.
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        constexpr std::size_t backlog = 4 << 20;
        auto [a_ours, a_peer] = co_await test::tcp_pair(r);
        auto [b_ours, b_peer] = co_await test::tcp_pair(r);
        channel a(std::move(a_ours));
        channel b(std::move(b_ours));
        std::size_t a_handled = 0;
        std::size_t a_when_b = 0;
        test::background<bool> a_session(r, [](channel& ch, std::size_t& n) -> task<bool> {
            co_await counting_echo(ch, n);
            co_return true;
        }(a, a_handled));
        test::background<bool> b_session(r, [](channel& ch, const std::size_t& a_n,
                                               std::size_t& seen) -> task<bool> {
            auto ping = co_await ch.read();
            seen = a_n;
            if (ping) {
                ch.push("pong\n");
            }
            co_await ch.finish();
            co_return static_cast<bool>(ping);
        }(b, a_handled, a_when_b));
        // One socket, two directions: each backend keeps one request per direction.
        test::background<std::string> a_replies(r, test::recv_all(a_peer));
        // A's whole backlog is sent (the kernel and A's receiver hold what A has not framed
        // yet) before B's request goes.
        std::string lines;
        for (std::size_t i = 0; i < backlog / 64; ++i) {
            lines += std::string(63, 'a') + "\n";
        }
        auto sent = co_await a_peer.send_all(test::bytes(lines));
        REQUIRE(sent);
        const std::size_t a_when_sent = a_handled;
        REQUIRE(::send(b_peer.fd(), "ping\n", 5, MSG_NOSIGNAL) == 5);
        const std::string pong = co_await test::recv_all(b_peer);
        CHECK(pong == "pong\n");
        const bool b_ok = co_await b_session.join();
        CHECK(b_ok);
        INFO("A handled " << a_when_sent << " bytes when B's request was sent, " << a_when_b
                          << " when it was handled");
        CHECK(a_when_sent < backlog);
        // This turn's rest and the next turn's: two budgets of 64 KiB, a chunk over each.
        CHECK(a_when_b - a_when_sent <= 256 * 1024);
        (void)a_peer.shutdown(SHUT_WR);
        const bool a_ok = co_await a_session.join();
        CHECK(a_ok);
        CHECK(a_handled == backlog);
        const std::string echoed = co_await a_replies.join();
        CHECK(echoed.size() == backlog);
    });
}

TEST_CASE("input_per_turn counts the chunk a wait for input ended with: with a budget below "
          "one chunk, each turn frames one chunk",
          "[channel][safety][fairness]") {
    // Plaintext only: its chunks are 64-byte provided buffers; over TLS a chunk is a record.
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    // 64-byte buffers and 64-byte lines: each chunk received is one line. With a budget of
    // one byte, every chunk is a turn's whole budget, so no two lines may share a turn. (The
    // chunk that ended a wait once counted for the turn before: two lines per turn.)
    test::run(with_buffers(kind, 64, 64), [](reactor& r) -> task<> {
        constexpr int lines = 32;
        auto [ours, peer] = test::socket_pair(r);
        channel_options co;
        co.input_per_turn = 1;
        channel ch(std::move(ours), co);
        std::string burst;
        for (int i = 0; i < lines; ++i) {
            burst += fmt::format("{:063}\n", i);
        }
        // All of it waits in the kernel before the first read(), so every buffer is filled.
        REQUIRE(::send(peer.fd(), burst.data(), burst.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(burst.size()));
        std::vector<std::uint64_t> turns_of;
        for (int i = 0; i < lines; ++i) {
            auto line = co_await ch.read();
            REQUIRE(line);
            CHECK(line.text() == fmt::format("{:063}", i));
            turns_of.push_back(r.turn());
        }
        for (std::size_t i = 1; i < turns_of.size(); ++i) {
            INFO("line " << i << " in turn " << turns_of[i] << ", the one before in "
                         << turns_of[i - 1]);
            CHECK(turns_of[i] > turns_of[i - 1]);
        }
    });
}

// --- a graceful stop: stop accepting, finish what is queued, then close ---------------------

namespace {

constexpr std::size_t download_size = 4 << 20;

/// 64 MiB, made as it is sent: more than the kernel's socket buffers on both sides hold.
producers::generator huge_response() {
    const std::string piece(64 * 1024, 'h');
    for (int i = 0; i < 1024; ++i) {
        co_yield piece;
    }
}

/// "get" queues a 4 MiB response, "huge" a 64 MiB one; anything else is echoed.
task<> downloads(chat::channel& ch) {
    while (auto line = co_await ch.read()) {
        if (line.text() == "get") {
            ch.push_with_producer(producers::simple(std::string(download_size, 'd'), 64 * 1024));
        } else if (line.text() == "huge") {
            ch.push_with_producer(huge_response());
        } else {
            ch.push(std::string(line.text()) + "\n");
        }
    }
}

struct stop_outcome {
    std::size_t complete = 0;     // downloads received in full, then a clean end of stream
    std::size_t reset = 0;        // ended by ECONNRESET
    std::size_t idle_ended = 0;   // idle clients whose connection ended cleanly
    bool served_returned = false;
};

/// Reads one download: its size if it ended cleanly after all of it, or the error.
task<result<std::size_t>> read_download(ringchat::socket& s) {
    std::string buf(64 * 1024, '\0');
    std::size_t got = 0;
    for (;;) {
        auto n = co_await s.recv(std::as_writable_bytes(std::span(buf)));
        if (!n) {
            co_return n.error();
        }
        if (*n == 0) {
            co_return got;
        }
        got += *n;
    }
}

/// serve(downloads) on a loopback port, beside the test body.
struct download_server {
    explicit download_server(reactor& r)
        : l(bind_or_fail(r)), served(r, [](reactor& r, listener& l) -> task<bool> {
              co_await chat::serve(r, l, &downloads);
              co_return true;
          }(r, l)) {}
    static listener bind_or_fail(reactor& r) {
        auto bound = listener::bind(r, address::ipv4("127.0.0.1", 0));
        REQUIRE(bound);
        return std::move(*bound);
    }
    address at() const { return l.local_address(); }

    listener l;
    test::background<bool> served;
};

}  // namespace

TEST_CASE("stop(): no new connection, idle ones end, downloads in flight complete, then run() "
          "returns",
          "[channel][safety][stop]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    stop_outcome out;
    test::run(kind, [&out](reactor& r) -> task<> {
        download_server server(r);
        const address at = server.at();
        std::vector<ringchat::socket> loaders;
        std::vector<ringchat::socket> idle;
        for (int i = 0; i < 8; ++i) {
            auto c = co_await ringchat::socket::connect(r, at);
            REQUIRE(c);
            auto sent = co_await c->send_all(test::bytes("get\n"));
            REQUIRE(sent);
            loaders.push_back(std::move(*c));
        }
        for (int i = 0; i < 4; ++i) {
            auto c = co_await ringchat::socket::connect(r, at);
            REQUIRE(c);
            auto sent = co_await c->send_all(test::bytes("hi\n"));
            REQUIRE(sent);
            const std::string back = co_await test::recv_exactly(*c, 3);
            REQUIRE(back == "hi\n");
            idle.push_back(std::move(*c));
        }
        // Every download is under way (its first bytes are here), none is complete.
        for (auto& c : loaders) {
            const std::string first = co_await test::recv_exactly(c, 1);
            REQUIRE(first == "d");
        }
        r.stop(10s);
        CHECK(r.stopping());
        CHECK_FALSE(r.stopped_hard());
        out.served_returned = co_await server.served.join();
        auto refused = co_await ringchat::socket::connect(r, at);
        CHECK_FALSE(refused);
        for (auto& c : loaders) {
            auto got = co_await read_download(c);
            if (got && *got == download_size - 1) {
                ++out.complete;
            } else if (!got && got.error() == std::errc::connection_reset) {
                ++out.reset;
            }
        }
        for (auto& c : idle) {
            const std::string rest = co_await test::recv_all(c);
            if (rest.empty()) {
                ++out.idle_ended;
            }
        }
        // Ended within the grace period, by itself: nothing was cut.
        CHECK_FALSE(r.stopped_hard());
    });
    CHECK(out.served_returned);
    CHECK(out.complete == 8);
    CHECK(out.reset == 0);
    CHECK(out.idle_ended == 4);
}

TEST_CASE("stop(): a response still unsent when the grace period ends is reset, never ended "
          "with a FIN",
          "[channel][safety][stop]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    stop_outcome out;
    test::run(kind, [&out](reactor& r) -> task<> {
        download_server server(r);
        const address at = server.at();
        auto c = co_await ringchat::socket::connect(r, at);
        REQUIRE(c);
        auto sent = co_await c->send_all(test::bytes("huge\n"));
        REQUIRE(sent);
        const std::string first = co_await test::recv_exactly(*c, 1);
        REQUIRE(first == "h");
        // The client reads nothing more during the grace period: the kernel's buffers fill
        // and most of the response is still in the server's queue when the grace ends.
        r.stop(300ms);
        out.served_returned = co_await server.served.join();
        while (!r.stopped_hard()) {
            co_await test::yield_now{r};
        }
        co_await turns(r, 50);  // the server's side takes its cancelled send and closes
        // The grace period is over: the connection was reset. What the client reads now
        // ends with ECONNRESET, not with a clean end of stream after half a body. (Read
        // by hand: this reactor refuses new operations now.)
        std::string buf(64 * 1024, '\0');
        std::size_t got = 1;
        for (int waits = 0; waits < 100;) {
            const ssize_t n = ::recv(c->fd(), buf.data(), buf.size(), 0);
            if (n > 0) {
                got += static_cast<std::size_t>(n);
                continue;
            }
            if (n == 0) {
                FAIL_CHECK("a clean end of stream after " << got << " bytes of 64 MiB");
                break;
            }
            if (errno == ECONNRESET) {
                ++out.reset;
                break;
            }
            REQUIRE(errno == EAGAIN);
            pollfd p{c->fd(), POLLIN, 0};
            ::poll(&p, 1, 100);
            ++waits;
        }
        CHECK(got < (std::size_t{64} << 20));
    }, 30s);
    CHECK(out.served_returned);
    CHECK(out.reset == 1);
}

// --- a frame longer than max_frame, in pieces --------------------------------------------------

namespace {

struct pingpong_log {
    long echoed = 0;   // replies the server pushed
    long replies = 0;  // replies the clients received whole
    long wrong = 0;    // replies cut short or not the line sent
    int ready = 0;     // clients past their fifth reply
};

constexpr int pingpong_clients = 16;

/// A line, then its echo, until the server ends the connection; the last client past its
/// fifth reply starts the graceful stop, so that it comes while every client is mid-exchange.
task<bool> pingpong_client(reactor& r, reactor& server, address at, int id, pingpong_log& log) {
    auto s = co_await ringchat::socket::connect(r, at);
    if (!s) {
        co_return false;
    }
    for (int i = 0;; ++i) {
        const std::string line = "client " + std::to_string(id) + " line " + std::to_string(i) +
                                 "\n";
        auto sent = co_await s->send_all(test::bytes(line));
        if (!sent) {
            break;
        }
        const std::string got = co_await test::recv_exactly(*s, line.size());
        if (got.size() < line.size()) {
            if (!got.empty()) {
                ++log.wrong;
            }
            break;
        }
        if (got != line) {
            ++log.wrong;
        }
        ++log.replies;
        if (i == 4 && ++log.ready == pingpong_clients) {
            server.request_stop();
        }
    }
    co_return true;
}

}  // namespace

TEST_CASE("stop(): every line a session read and answered reaches its client",
          "[channel][safety][stop]") {
    const auto kind = GENERATE(from_range(test::backends()));
    // The reply as a copy, or as the frame itself and its terminator (no copy).
    const bool push_frame = GENERATE(false, true);
    CAPTURE(kind, push_frame);
    pingpong_log log;
    test::run(kind, [&](reactor& r) -> task<> {
        auto l = listener::bind(r, address::ipv4("127.0.0.1", 0));
        REQUIRE(l);
        r.spawn(chat::serve(r, *l, [&log, push_frame](chat::channel& ch) -> task<> {
            while (auto line = co_await ch.read()) {
                if (push_frame) {
                    ch.push(std::move(line));
                    ch.push("\n");
                } else {
                    ch.push(std::string(line.text()) + "\n");
                }
                ++log.echoed;
            }
        }));
        // The clients run on a reactor of their own, on another thread, as real clients
        // would; the last past its fifth reply stops this reactor (request_stop: from any
        // thread). A byte on `done` says the client thread has closed everything it opened.
        auto [done, done_peer] = test::socket_pair(r);
        std::thread clients([&r, &log, kind, at = l->local_address(), fd = done_peer.fd()] {
            {
                reactor_options o;
                o.kind = kind;
                reactor cr(o);
                cr.block_on([](reactor& cr, reactor& server, address at,
                               pingpong_log& log) -> task<> {
                    std::vector<test::background<bool>> running;
                    running.reserve(pingpong_clients);
                    for (int id = 0; id < pingpong_clients; ++id) {
                        running.emplace_back(cr, pingpong_client(cr, server, at, id, log));
                    }
                    for (auto& c : running) {
                        co_await c.join();
                    }
                }(cr, r, at, log));
            }
            const char byte = 1;
            (void)::send(fd, &byte, 1, MSG_NOSIGNAL);
        });
        const std::string finished = co_await test::recv_exactly(done, 1);
        clients.join();
        CHECK(finished.size() == 1);
    });
    CHECK(log.ready == pingpong_clients);
    CHECK(log.wrong == 0);
    CHECK(log.replies == log.echoed);
}

TEST_CASE("set_frame_pieces(): a 1 MiB line comes in bounded pieces, then lines as before",
          "[channel][safety][pieces]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const auto w = GENERATE(from_range(test::wires()));
    CAPTURE(kind, test::to_string(w));
    test::run(kind, [w](reactor& r) -> task<> {
        auto [ours, peer] = co_await test::wired_tcp_pair(r, w);
        channel_options o;
        o.max_frame = 1000;
        channel ch(std::move(ours), o);
        ch.set_terminator("\r\n");
        ch.set_frame_pieces(true);
        std::string long_line;
        for (std::size_t i = 0; long_line.size() < (1 << 20); ++i) {
            long_line += static_cast<char>('a' + i % 26);
            if (i % 97 == 0) {
                long_line += '\r';  // a terminator's first byte inside the data
            }
        }
        const std::string stream = "short\r\n" + long_line + "\r\nafter\r\n";
        test::background<bool> sender(r, [](ringchat::socket& s, const std::string& data)
                                             -> task<bool> {
            auto sent = co_await s.send_all(test::bytes(data));
            co_return static_cast<bool>(sent);
        }(peer, stream));
        auto first = co_await ch.read();
        REQUIRE(first);
        CHECK_FALSE(first.piece());
        CHECK(first.text() == "short");
        std::string joined;
        std::size_t pieces = 0;
        std::size_t largest = 0;
        for (;;) {
            auto f = co_await ch.read();
            REQUIRE(f);
            joined += f.text();
            largest = std::max(largest, f.data().size());
            if (!f.piece()) {
                break;
            }
            CHECK(f.data().size() >= o.max_frame);
            ++pieces;
        }
        CHECK(joined == long_line);
        CHECK(pieces >= (std::size_t{1} << 20) / (o.max_frame + 16 * 1024));
        CHECK(largest <= o.max_frame + 16 * 1024);
        // Off again: a line over the limit is too long, as before.
        ch.set_frame_pieces(false);
        auto after = co_await ch.read();
        REQUIRE(after);
        CHECK(after.text() == "after");
        (void)co_await sender.join();
    });
}

// --- what a send in progress points into does not move ------------------------------------------

TEST_CASE("a short chunk being sent stays put while later pushes grow the output queue",
          "[channel][safety]") {
    // Plaintext only: it shrinks and fills the socket under the transport with raw bytes.
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        auto [ours, peer] = test::socket_pair(r);
        const int small = 4096;
        REQUIRE(::setsockopt(ours.fd(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
        channel ch(std::move(ours));
        // The socket's buffer is full: the next send has to wait, pointing at its chunk.
        const std::size_t filled = test::fill_send_buffer(*ch.socket());
        ch.push("+PONG\r\n");  // short: a string keeps it inside itself, in the queue's entry
        co_await turns(r, 3);  // the writer's send is out, waiting for room
        // Many entries: the queue grows, and what it holds moves.
        std::string expected = "+PONG\r\n";
        for (int i = 0; i < 64; ++i) {
            const std::string part = fmt::format("{:04}", i) + std::string(4092, 'x');
            ch.push(part);
            expected += part;
        }
        const std::string got = co_await test::recv_exactly(peer, filled + expected.size());
        REQUIRE(got.size() == filled + expected.size());
        CHECK(got.substr(filled) == expected);
    });
}
