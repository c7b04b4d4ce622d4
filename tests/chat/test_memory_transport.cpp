// SPDX-License-Identifier: MIT
// tests/chat/test_memory_transport.cpp — chat::memory_transport, the scripted peer, under a
// channel and the facade, on every backend (its timers are the reactor's).
//
// What a protocol test needs from it: chunks fed as they are cut (every split point, random
// chunkings), the end of the peer's stream and a reset, what the channel sent and how it
// closed, a peer that reads slowly or not at all, short sends, sends that fail. Invariant: no
// test asserts a timing; the timeouts used are short so the suite stays quick.
#include "chat/memory_transport.hpp"

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <catch2/catch.hpp>

#include "chat/async_chat.hpp"
#include "chat/channel.hpp"
#include "core/error.hpp"
#include "tests/support/peers.hpp"
#include "tests/support/support.hpp"

using namespace ringchat;
using namespace std::chrono_literals;
using chat::channel;
using chat::memory_transport;

namespace {

/// A channel over a fresh memory transport, and the peer's handle on it.
struct scripted {
    memory_transport* peer;
    std::unique_ptr<channel> ch;
};

scripted make(reactor& r, chat::channel_options options = {}) {
    auto owned = std::make_unique<memory_transport>(r);
    memory_transport* peer = owned.get();
    return {peer, std::make_unique<channel>(std::move(owned), options)};
}

/// A line protocol: "PING" gets "+PONG", anything else "-ERR <line>"; then finish().
task<> pong_session(channel& ch) {
    ch.set_terminator("\r\n");
    for (;;) {
        auto line = co_await ch.read();
        if (!line) {
            break;
        }
        if (line.text() == "PING") {
            ch.push("+PONG\r\n");
        } else {
            ch.push("-ERR " + std::string(line.text()) + "\r\n");
        }
    }
    co_await ch.finish();
}

const std::string request = "PING\r\nHELLO world\r\nPING\r\n";
const std::string answer = "+PONG\r\n-ERR HELLO world\r\n+PONG\r\n";

}  // namespace

TEST_CASE("memory transport: a session's answer, its end of stream and an orderly close",
          "[memory]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        auto s = make(r);
        s.peer->feed(request);
        s.peer->feed_end();
        co_await pong_session(*s.ch);
        CHECK(s.peer->take_sent() == answer);
        CHECK(s.peer->state() == memory_transport::end::orderly);
        CHECK_FALSE(s.ch->is_open());
        CHECK_FALSE(s.ch->close_reason());
    });
}

TEST_CASE("memory transport: the same answer at every split point and random chunkings",
          "[memory]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        for (std::size_t at = 0; at <= request.size(); ++at) {
            CAPTURE(at);
            auto s = make(r);
            const auto chunks = chat::split_at(request, at);
            CHECK(chunks.size() == (at == 0 || at == request.size() ? 1u : 2u));
            s.peer->feed(chunks);
            s.peer->feed_end();
            co_await pong_session(*s.ch);
            CHECK(s.peer->take_sent() == answer);
        }
        for (std::uint64_t seed = 1; seed <= 20; ++seed) {
            CAPTURE(seed);
            const auto chunks = chat::random_chunks(request, seed, 4);
            std::string joined;
            for (const auto& c : chunks) {
                CHECK((!c.empty() && c.size() <= 4));
                joined += c;
            }
            CHECK(joined == request);
            CHECK(chat::random_chunks(request, seed, 4) == chunks);  // one chunking per seed
            auto s = make(r);
            s.peer->feed(chunks);
            s.peer->feed_end();
            co_await pong_session(*s.ch);
            CHECK(s.peer->take_sent() == answer);
        }
    });
}

TEST_CASE("memory transport: input fed while the session waits, one chunk at a time",
          "[memory]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        auto s = make(r);
        auto feeder = [](reactor& r, memory_transport& peer) -> task<> {
            for (char c : request) {
                co_await test::yield_now{r};  // the session waits in between
                peer.feed(std::string_view(&c, 1));
            }
            peer.feed_end();
        };
        r.spawn(feeder(r, *s.peer));
        co_await pong_session(*s.ch);
        CHECK(s.peer->take_sent() == answer);
        CHECK(s.ch->stats().bytes_received == request.size());
    });
}

TEST_CASE("memory transport: an end of stream mid-frame gives the partial frame", "[memory]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        auto s = make(r);
        s.ch->set_terminator("\r\n");
        s.peer->feed("PING\r\nPIN");
        s.peer->feed_end();
        auto first = co_await s.ch->read();
        REQUIRE(first);
        CHECK(first.text() == "PING");
        auto second = co_await s.ch->read();
        CHECK_FALSE(second);
        CHECK_FALSE(second.error());  // a clean end of stream
        CHECK(second.partial() == "PIN");
    });
}

TEST_CASE("memory transport: a reset from the peer closes the channel with its error",
          "[memory]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        auto s = make(r);
        s.peer->feed("PING\r");
        s.peer->feed_error(std::error_code(ECONNRESET, std::system_category()));
        s.ch->set_terminator("\r\n");
        auto got = co_await s.ch->read();
        CHECK_FALSE(got);
        CHECK(got.error() == std::errc::connection_reset);
        CHECK(got.partial() == "PING\r");
        CHECK_FALSE(s.ch->is_open());
        CHECK(s.ch->close_reason() == std::errc::connection_reset);
    });
}

TEST_CASE("memory transport: short sends deliver everything, in order", "[memory]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        auto s = make(r);
        s.peer->set_send_capacity(3);
        std::string expected;
        for (int i = 0; i < 100; ++i) {
            const std::string line = "line " + std::to_string(i) + "\n";
            s.ch->push(line);
            expected += line;
        }
        co_await s.ch->finish();
        CHECK(s.peer->take_sent() == expected);
        CHECK(s.peer->sends() >= expected.size() / 3);
        CHECK(s.ch->stats().bytes_sent == expected.size());
        CHECK(s.peer->state() == memory_transport::end::orderly);
    });
}

TEST_CASE("memory transport: a slow reader's window paces the sends; nothing is lost",
          "[memory]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        auto s = make(r);
        s.peer->set_window(10);
        const std::string body(1000, 'x');
        s.ch->push(body);
        auto finished = [](channel& ch, bool& done) -> task<> {
            co_await ch.finish();
            done = true;
        };
        bool done = false;
        r.spawn(finished(*s.ch, done));
        std::string got;
        for (int i = 0; i < 10'000 && !done; ++i) {
            co_await test::yield_now{r};
            const std::string part = s.peer->take_sent();
            CHECK(part.size() <= 10);  // never more than the window unread
            got += part;
        }
        got += s.peer->take_sent();
        CHECK(done);
        CHECK(got == body);
    });
}

TEST_CASE("memory transport: a peer that stops reading meets the write timeout", "[memory]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        chat::channel_options options;
        options.write_timeout = 50ms;
        auto s = make(r, options);
        s.peer->set_window(0);
        s.ch->push("never read\n");
        co_await s.ch->finish();  // the send waits, then times out
        CHECK_FALSE(s.ch->is_open());
        CHECK(s.ch->close_reason() == std::errc::timed_out);
        CHECK(s.peer->sent().empty());
        // Output cut short: the peer must not take the close for an orderly end.
        CHECK(s.peer->state() == memory_transport::end::reset);
    });
}

TEST_CASE("memory transport: a send that fails mid-response resets, and the session sees it",
          "[memory]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        auto s = make(r);
        s.peer->set_window(4);
        s.ch->push("first part, then the peer goes away\n");
        co_await test::yield_now{r};
        co_await test::yield_now{r};
        CHECK(s.peer->sent() == "firs");  // the rest waits for the window
        s.peer->fail_sends(std::error_code(EPIPE, std::system_category()));
        co_await s.ch->flush();
        CHECK_FALSE(s.ch->is_open());
        CHECK(s.ch->close_reason() == std::errc::broken_pipe);
        CHECK(s.peer->state() == memory_transport::end::reset);
    });
}

TEST_CASE("memory transport: back-pressure holds frames while the peer does not read",
          "[memory]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        chat::channel_options options;
        options.high_water = 4096;
        options.low_water = 1024;
        auto s = make(r, options);
        s.peer->set_window(0);
        std::string flood;
        for (int i = 0; i < 2000; ++i) {
            flood += "PING\r\n";
        }
        s.peer->feed(flood);
        std::size_t answered = 0;
        auto session = [](channel& ch, std::size_t& answered) -> task<> {
            ch.set_terminator("\r\n");
            for (;;) {
                auto line = co_await ch.read();  // never drain(): read() paces it
                if (!line) {
                    break;
                }
                ch.push("+PONG\r\n");
                ++answered;
            }
        };
        r.spawn(session(*s.ch, answered));
        for (int i = 0; i < 20; ++i) {
            co_await test::yield_now{r};
        }
        // Paused at high water: about high_water's worth of answers, not all 2,000.
        CHECK(answered > 0);
        CHECK(answered * 7 <= options.high_water + 7);
        CHECK(s.ch->queued_bytes() <= options.high_water + 7);
        s.peer->set_window(SIZE_MAX);  // the peer reads again: the rest is answered
        for (int i = 0; i < 10'000 && answered < 2000; ++i) {
            co_await test::yield_now{r};
            (void)s.peer->take_sent();
        }
        s.peer->feed_end();
        for (int i = 0; i < 5 && s.ch->is_open(); ++i) {
            co_await test::yield_now{r};
        }
        CHECK(answered == 2000);
        s.ch->close();
        co_await test::yield_now{r};
    });
}

TEST_CASE("memory transport: a frame that trickles in meets the frame deadline", "[memory]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        chat::channel_options options;
        options.frame_timeout = 50ms;
        auto s = make(r, options);
        s.ch->set_terminator("\r\n");
        s.peer->feed("GET / HT");  // and nothing more
        auto got = co_await s.ch->read();
        CHECK_FALSE(got);
        CHECK(got.error() == std::errc::timed_out);
        CHECK(got.partial() == "GET / HT");
        CHECK(s.ch->is_open());  // the output side stays, for a 408
        s.ch->push("408\r\n");
        co_await s.ch->finish();
        CHECK(s.peer->take_sent() == "408\r\n");
    });
}

TEST_CASE("memory transport: close() with output queued resets; end_output() half-closes",
          "[memory]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        auto s = make(r);
        s.peer->set_window(0);
        s.ch->push("cut short\n");
        co_await test::yield_now{r};
        s.ch->close();
        CHECK(s.peer->state() == memory_transport::end::reset);

        auto t = make(r);
        t.ch->push("all of it\n");
        co_await t.ch->flush();
        t.ch->end_output();
        CHECK(t.peer->state() == memory_transport::end::output_ended);
        t.peer->feed("late\n");
        auto late = co_await t.ch->read();  // the input goes on after a half close
        REQUIRE(late);
        CHECK(late.text() == "late");
        co_await t.ch->finish();
        CHECK(t.peer->take_sent() == "all of it\n");
        CHECK(t.peer->state() == memory_transport::end::orderly);
    });
}

namespace {

/// asynchat's classic shape: collect, then answer at the terminator.
class shouter : public chat::async_chat {
public:
    using async_chat::async_chat;
    void collect_incoming_data(std::span<const std::byte> data) override {
        line_.append(reinterpret_cast<const char*>(data.data()), data.size());
    }
    void found_terminator() override {
        for (char& c : line_) {
            c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
        }
        push(line_ + "\n");
        line_.clear();
    }

private:
    std::string line_;
};

}  // namespace

TEST_CASE("memory transport: the async_chat facade over it, at every split point",
          "[memory]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        const std::string in = "hello\nworld\n";
        for (std::size_t at = 0; at <= in.size(); ++at) {
            CAPTURE(at);
            auto owned = std::make_unique<memory_transport>(r);
            memory_transport& peer = *owned;
            shouter s(std::move(owned));
            peer.feed(chat::split_at(in, at));
            bool done = false;
            auto run = [](shouter& s, bool& done) -> task<> {
                co_await s.run();
                done = true;
            };
            r.spawn(run(s, done));
            for (int i = 0; i < 100 && peer.sent().size() < in.size(); ++i) {
                co_await test::yield_now{r};
            }
            CHECK(peer.take_sent() == "HELLO\nWORLD\n");
            peer.feed_end();
            for (int i = 0; i < 100 && !done; ++i) {
                co_await test::yield_now{r};
            }
            REQUIRE(done);
            CHECK(peer.state() == memory_transport::end::orderly);
        }
    });
}

TEST_CASE("memory transport: a close while a send waits leaves nothing counted as queued",
          "[memory]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        // The input's reset closes the channel while its send waits on the peer's window.
        auto s = make(r);
        s.ch->set_terminator("\r\n");
        s.peer->set_window(0);
        s.peer->feed("PING\r\n");
        auto ping = co_await s.ch->read();
        REQUIRE(ping);
        s.ch->push("F4:PING");
        co_await test::yield_now{r};
        co_await test::yield_now{r};
        CHECK(s.ch->queued_bytes() == 7);  // the send waits
        s.peer->feed_error(std::error_code(ECONNRESET, std::system_category()));
        auto end = co_await s.ch->read();
        CHECK(end.error() == std::errc::connection_reset);
        CHECK_FALSE(s.ch->is_open());
        CHECK(s.ch->queued_bytes() == 0);  // at once, not when the send comes back
        // close() from the session, the same.
        auto t = make(r);
        t.peer->set_window(0);
        t.ch->push("waiting\n");
        co_await test::yield_now{r};
        co_await test::yield_now{r};
        t.ch->close();
        CHECK(t.ch->queued_bytes() == 0);
        co_await test::yield_now{r};
        co_await test::yield_now{r};
        CHECK(t.ch->queued_bytes() == 0);  // and stays so once the cancelled send came back
        CHECK(t.peer->state() == memory_transport::end::reset);
    });
}
