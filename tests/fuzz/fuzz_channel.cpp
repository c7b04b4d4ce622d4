// SPDX-License-Identifier: MIT
// tests/fuzz/fuzz_channel.cpp — a channel (chat::channel) over the scripted peer
// (chat::memory_transport), with fuzzed chunks and faults, against the model of script.hpp.
//
// The input decodes to a script.hpp script (a first terminator, what the session sets after
// each frame, max_frame, pieces on or off, a chunking of the stream), channel options (high
// and low water, out_buffer_size, input_per_turn) and the peer's steps: feed the next chunk
// (or it repeated, in one chunk of up to 4,800 bytes), let a turn pass, take what was sent,
// set a window of 0..16 unread bytes (or none), a send capacity, fail every send from here
// with EPIPE, end the input here (feed_end(), or feed_error(ECONNRESET)), the chunks left
// never fed. After the steps the rest is fed, the input ends, and the peer reads everything
// until the session is done (bounded in turns: a session that does not finish is a
// finding). A session reads frames with read() and echoes each as a record "KLEN:DATA" (K:
// F frame, P piece, E data after the terminator went inactive, T a frame dropped as too
// long, Z the partial at the end), sets the script's terminator after each frame, and ends
// with finish(). No timeouts run (all are 0): nothing waits on the clock, so an input runs
// the same every time. One epoll reactor (RINGCHAT_BACKEND=uring: io_uring) serves every
// input. FUZZ_CHANNEL_SHOW=1 prints each input's run as decoded (the script, the model's
// frames and the session's, the ends).
//
// Checked, for the bytes fed before the input ended: the frames (pieces joined), too_long,
// the data after the terminator went inactive, the partial at the end and the last terminator
// are the model's, unless an EPIPE closed the channel first (then the frames are a prefix of
// the model's); each piece holds at least max_frame bytes; read() hands out nothing while
// more than high_water is queued, and the queue never holds more than high_water plus one
// echo (the session never calls drain()); the peer received a prefix of what the session
// pushed, nothing after fail_sends(); why read() stopped and close_reason() are what the
// fault implies (nothing for a clean end, ECONNRESET for a reset, EPIPE only when output was
// left to send once sends failed, and then always); the peer's state() is reset exactly when
// it did not receive everything pushed (output cut short), orderly otherwise; at the end the
// channel is closed with nothing queued, and its stats count what was fed and received.
// And queued_bytes() is 0 where read() ends on a closed channel, a send that was waiting at the
// close included (corpus/channel/open-finding-queued-after-close: the finding, now fixed).
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include "chat/channel.hpp"
#include "chat/memory_transport.hpp"
#include "core/error.hpp"
#include "core/reactor.hpp"
#include "core/task.hpp"
#include "tests/fuzz/script.hpp"

using namespace fuzz;
namespace chat = ringchat::chat;
using ringchat::task;

// TRICKY: clang 14 cannot instrument these coroutines for coverage (the reactor's neither:
// "Cannot represent a difference across sections", tests/fuzz/meson.build); the channel's own
// coroutines it can. The harness's two are left out of it, and the rest of the file is in.
#if defined(__clang__)
#define FUZZ_NO_COVERAGE __attribute__((no_sanitize("coverage")))
#else
#define FUZZ_NO_COVERAGE
#endif

namespace {

ringchat::reactor& the_reactor() {
    static ringchat::reactor r([] {
        ringchat::reactor_options o;
        o.kind = ringchat::backend_kind::epoll;
        o.buffer_count = 64;  // the memory transport uses none
        return ringchat::reactor_options::from_env(o);
    }());
    return r;
}

/// Resumes the caller at the next turn (tests/support/peers.hpp's yield_now; the fuzz
/// targets do not link the test support library).
struct next_turn {
    ringchat::reactor& r;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) { r.schedule(h); }
    void await_resume() const noexcept {}
};

/// A chunk fed repeated is as many copies of it as fit in this many bytes, in one chunk, so
/// that a frame can outgrow the channel's coalesce_limit (4,096: push(frame&&) then hands
/// over the framer's joined buffer) within libFuzzer's -max_len (a chunk of up to 512 bytes
/// makes more than 4,288). Only while less than repeat_until bytes were fed: an input stays
/// quick (a run of 1-byte frames under high water 1 costs a turn or two per frame, and with
/// out_buffer_size 1 each byte echoed is a send).
constexpr std::size_t repeated_bytes = 4800;
constexpr std::size_t repeat_until = 4800;

/// One step of the peer's.
struct step {
    enum class kind : std::uint8_t { feed, yield, take, window, capacity, fail, end } k;
    std::size_t arg = 0;  // feed: 1 for the chunk repeated (a frame past coalesce_limit);
                          // window: bytes (SIZE_MAX: none); capacity: bytes (0: none)
};

struct plan {
    script sc;  // sc.stream: every chunk; what is fed may stop short of it
    std::vector<step> steps;
    bool reset = false;       // the input ends with feed_error(ECONNRESET), else feed_end()
    bool echo_frame = false;  // the echo's data goes as push(frame&&), else in one string
    chat::channel_options options;
};

/// Input layout (FuzzedDataProvider: numbers from the end, bytes from the front), as
/// script.hpp's decode_script with the steps before the chunk sizes: two option bytes (the
/// first: max_frame, pieces, reset, echo as a frame, input_per_turn; the second: high water,
/// low water, out_buffer_size), the first terminator, the actions, the steps (a kind, then its
/// argument), the chunk sizes, and what is left is the stream.
plan decode_plan(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    plan p;
    const auto a = in.ConsumeIntegral<std::uint8_t>();
    const auto b = in.ConsumeIntegral<std::uint8_t>();
    static constexpr std::size_t limits[] = {0, 0, 1, 2, 3, 5, 8, 64};
    static constexpr std::size_t per_turn[] = {64 * 1024, 0, 1, 7};
    static constexpr std::size_t highs[] = {0, 1, 8, 24, 64, 256, 4096, 256 * 1024};
    static constexpr std::size_t gathers[] = {64 * 1024, 1, 5, 32};
    p.sc.max_frame = limits[a & 7];
    p.sc.pieces = (a & 8) != 0;
    p.reset = (a & 16) != 0;
    p.echo_frame = (a & 32) != 0;
    chat::channel_options& o = p.options;
    o.max_frame = p.sc.max_frame;
    o.input_per_turn = per_turn[(a >> 6) & 3];
    o.high_water = highs[b & 7];
    switch ((b >> 3) & 3) {  // at most high_water: read() then resumes at low water
    case 0:
        o.low_water = 0;
        break;
    case 1:
        o.low_water = o.high_water / 4;
        break;
    case 2:
        o.low_water = o.high_water / 2;
        break;
    default:
        o.low_water = o.high_water;
        break;
    }
    o.out_buffer_size = gathers[(b >> 5) & 3];
    o.write_timeout = o.read_timeout = o.idle_timeout = o.frame_timeout =
        std::chrono::nanoseconds(0);
    p.sc.first = decode_terminator(in);
    const std::size_t actions = in.ConsumeIntegralInRange<std::size_t>(0, 24);
    for (std::size_t i = 0; i < actions; ++i) {
        if (in.ConsumeBool()) {
            p.sc.actions.emplace_back(decode_terminator(in));
        } else {
            p.sc.actions.emplace_back(std::nullopt);
        }
    }
    const std::size_t steps = in.ConsumeIntegralInRange<std::size_t>(0, 48);
    for (std::size_t i = 0; i < steps; ++i) {
        step s{step::kind::feed};
        switch (in.ConsumeIntegralInRange<int>(0, 9)) {
        case 0:
        case 1:
            break;
        case 2:
            s.arg = 1;
            break;
        case 3:
            s.k = step::kind::yield;
            break;
        case 4:
            s.k = step::kind::take;
            break;
        case 5:
            s.k = step::kind::window;
            s.arg = in.ConsumeIntegralInRange<std::size_t>(0, 17);
            if (s.arg == 17) {
                s.arg = SIZE_MAX;
            }
            break;
        case 6:
            s.k = step::kind::capacity;
            s.arg = in.ConsumeIntegralInRange<std::size_t>(0, 8);
            break;
        case 7:
            s.k = step::kind::fail;
            break;
        case 8:
            s.k = step::kind::end;
            break;
        default:  // a turn and a read: a slow reader
            s.k = step::kind::take;
            s.arg = 1;
            break;
        }
        p.steps.push_back(s);
    }
    std::vector<std::size_t> sizes(in.ConsumeIntegralInRange<std::size_t>(0, 32));
    for (std::size_t& s : sizes) {
        s = in.ConsumeIntegralInRange<std::size_t>(0, 24);
    }
    p.sc.stream = in.ConsumeRemainingBytesAsString();
    std::size_t at = 0;
    for (std::size_t s : sizes) {
        if (at >= p.sc.stream.size()) {
            break;
        }
        p.sc.chunks.push_back(p.sc.stream.substr(at, s));
        at += p.sc.chunks.back().size();
    }
    if (at < p.sc.stream.size()) {
        p.sc.chunks.push_back(p.sc.stream.substr(at));
    }
    return p;
}

std::string describe(const std::vector<step>& steps) {
    std::string out;
    for (const step& s : steps) {
        switch (s.k) {
        case step::kind::feed:
            out += s.arg != 0 ? " feed*" : " feed";
            break;
        case step::kind::yield:
            out += " turn";
            break;
        case step::kind::take:
            out += s.arg != 0 ? " turn+take" : " take";
            break;
        case step::kind::window:
            out += s.arg == SIZE_MAX ? std::string(" window(none)")
                                     : " window(" + std::to_string(s.arg) + ")";
            break;
        case step::kind::capacity:
            out += " capacity(" + std::to_string(s.arg) + ")";
            break;
        case step::kind::fail:
            out += " fail_sends";
            break;
        case step::kind::end:
            out += " end";
            break;
        }
    }
    return out;
}

std::string describe(const plan& p) {
    const auto& op = p.options;
    return "max_frame " + std::to_string(p.sc.max_frame) + (p.sc.pieces ? " (pieces)" : "") +
           ", first " + fuzz::describe(p.sc.first) + ", " +
           std::to_string(p.sc.actions.size()) +
           " actions, high/low water " + std::to_string(op.high_water) + "/" +
           std::to_string(op.low_water) + ", out_buffer_size " +
           std::to_string(op.out_buffer_size) + ", input_per_turn " +
           std::to_string(op.input_per_turn) +
           (p.reset ? ", ends with a reset" : ", ends with an end of stream") +
           (p.echo_frame ? ", echo push(frame&&)" : "") + "\n  steps:" + describe(p.steps) +
           "\n  " + std::to_string(p.sc.chunks.size()) + " chunks of " +
           std::to_string(p.sc.stream.size()) + " bytes";
}

/// What the session saw and did.
struct observed {
    expectation got;    // in the model's terms: pieces joined, eager runs joined
    std::error_code end;  // why read() gave no more frames
    std::string pushed;   // every byte pushed while the channel was open, in order
    std::size_t biggest_echo = 0;
    bool done = false;
};

/// What the peer did and got.
struct peer_view {
    std::string fed;       // the chunks fed, joined: the stream the model runs on
    std::string received;  // everything it took, then what it left unread
    bool ended = false;
    bool failed = false;
    std::size_t received_at_fail = 0;  // received (taken or unread) when sends began to fail
};

std::error_code reset_error() { return {ECONNRESET, std::system_category()}; }
std::error_code pipe_error() { return {EPIPE, std::system_category()}; }

/// One record "KLEN:DATA" (data from `f` with push(frame&&) when `as_frame`).
void echo(chat::channel& ch, observed& o, char kind, std::string_view data,
          chat::frame* f = nullptr, bool as_frame = false) {
    if (!ch.is_open()) {
        return;  // dropped: not sent, so not counted
    }
    std::string header = kind + std::to_string(data.size()) + ":";
    o.pushed += header;
    o.pushed += data;
    o.biggest_echo = std::max(o.biggest_echo, header.size() + data.size());
    if (as_frame && f != nullptr) {
        ch.push(std::string_view(header));
        ch.push(std::move(*f));
    } else {
        header += data;
        ch.push(std::move(header));
    }
    FUZZ_CHECK(ch.is_open(), "a push of %zu bytes closed the channel: %s", data.size(),
               ch.close_reason().message().c_str());
}

void check_high_water(const chat::channel& ch, const plan& p, const char* where) {
    const std::size_t high = p.options.high_water;
    FUZZ_CHECK(high == 0 || !ch.is_open() || ch.queued_bytes() <= high,
               "read() gave %s with %zu bytes queued, high water %zu", where,
               ch.queued_bytes(), high);
}

FUZZ_NO_COVERAGE task<> session(chat::channel& ch, const plan& p, observed& o) {
    const script& sc = p.sc;
    ch.set_frame_pieces(sc.pieces);
    ch.set_terminator(sc.first);
    std::size_t frames = 0;
    std::string pieces;
    for (;;) {
        const bool active = ch.get_terminator().active();
        chat::frame f = co_await ch.read();
        if (!f) {
            if (f.error() == ringchat::errc::frame_too_long) {
                check_high_water(ch, p, "a frame_too_long");
                FUZZ_CHECK(!sc.pieces && sc.max_frame > 0, "frame_too_long without a limit");
                FUZZ_CHECK(pieces.empty(), "frame_too_long after pieces");
                o.got.events.push_back({event::kind::too_long, {}, ch.get_terminator()});
                echo(ch, o, 'T', {});
                continue;
            }
            o.end = f.error();
            FUZZ_CHECK(ch.is_open() || ch.queued_bytes() == 0,
                       "read() ended (%s) on a closed channel with %zu bytes queued",
                       o.end.message().c_str(), ch.queued_bytes());
            o.got.partial = pieces + f.partial();
            o.got.last = ch.get_terminator();
            break;
        }
        check_high_water(ch, p, "a frame");
        const std::string data(f.text());
        if (f.piece()) {
            FUZZ_CHECK(sc.pieces && sc.max_frame > 0 && active, "a piece without pieces on");
            FUZZ_CHECK(data.size() >= sc.max_frame, "a piece of %zu bytes, limit %zu",
                       data.size(), sc.max_frame);
            pieces += data;
            echo(ch, o, 'P', data, &f, p.echo_frame);
            continue;
        }
        if (!active) {
            FUZZ_CHECK(pieces.empty(), "pieces before eager data");
            FUZZ_CHECK(!data.empty(), "an empty eager frame");
            if (!o.got.events.empty() && o.got.events.back().k == event::kind::eager) {
                o.got.events.back().data += data;
            } else {
                o.got.events.push_back({event::kind::eager, data, ch.get_terminator()});
            }
            echo(ch, o, 'E', data, &f, p.echo_frame);
            continue;
        }
        o.got.events.push_back({event::kind::frame, pieces + data, ch.get_terminator()});
        pieces.clear();
        echo(ch, o, 'F', data, &f, p.echo_frame);
        if (const auto* a = sc.action(frames); a != nullptr && *a) {
            ch.set_terminator(**a);
        }
        ++frames;
    }
    // Answers at the end of the input (as an HTTP server answers a truncated request).
    echo(ch, o, 'Z', o.got.partial);
    co_await ch.finish();
    o.done = true;
}

void end_input(chat::memory_transport& peer, const plan& p, peer_view& v) {
    if (v.ended) {
        return;
    }
    v.ended = true;
    if (p.reset) {
        peer.feed_error(reset_error());
    } else {
        peer.feed_end();
    }
}

void check_queue(const chat::channel& ch, const plan& p, const observed& o) {
    const std::size_t high = p.options.high_water;
    FUZZ_CHECK(high == 0 || !ch.is_open() || ch.queued_bytes() <= high + o.biggest_echo,
               "%zu bytes queued, high water %zu, the largest echo %zu", ch.queued_bytes(),
               high, o.biggest_echo);
}

/// The peer, beside the session: its steps, then the rest of the input and its end, then it
/// reads everything until the session is done.
FUZZ_NO_COVERAGE task<> play(ringchat::reactor& r, chat::channel& ch,
                              chat::memory_transport& peer, const plan& p, observed& o,
                              peer_view& v) {
    r.spawn(session(ch, p, o));
    const auto& chunks = p.sc.chunks;
    std::size_t next = 0;
    for (const step& s : p.steps) {
        bool turn = false;
        switch (s.k) {
        case step::kind::feed:
            if (!v.ended && next < chunks.size()) {
                std::string c = chunks[next++];
                if (s.arg != 0 && !c.empty() && v.fed.size() < repeat_until) {
                    const std::string one = c;
                    while (c.size() + one.size() <= repeated_bytes) {
                        c += one;
                    }
                }
                peer.feed(c);
                v.fed += c;
            }
            break;
        case step::kind::yield:
            turn = true;
            break;
        case step::kind::take:
            turn = s.arg != 0;
            v.received += peer.take_sent();
            break;
        case step::kind::window:
            peer.set_window(s.arg);
            break;
        case step::kind::capacity:
            peer.set_send_capacity(s.arg);
            break;
        case step::kind::fail:
            if (!v.failed) {
                v.failed = true;
                v.received_at_fail = v.received.size() + peer.sent().size();
            }
            peer.fail_sends(pipe_error());
            break;
        case step::kind::end:
            end_input(peer, p, v);
            break;
        }
        check_queue(ch, p, o);
        if (turn) {
            co_await next_turn{r};
            check_queue(ch, p, o);
        }
    }
    for (; !v.ended && next < chunks.size(); ++next) {
        peer.feed(chunks[next]);
        v.fed += chunks[next];
    }
    end_input(peer, p, v);
    peer.set_window(SIZE_MAX);
    // Each frame costs at most a few turns (a pause at high water, the writer's send, the
    // wake), each chunk one more (input_per_turn), and each frame consumes a byte at least.
    const std::size_t most_turns = 64 + 4 * (v.fed.size() + chunks.size());
    for (std::size_t turns = 0; !o.done; ++turns) {
        FUZZ_CHECK(turns < most_turns,
                   "the session did not finish in %zu turns (queued %zu, open %d), %zu "
                   "frames seen, %zu bytes fed\n%s",
                   turns, ch.queued_bytes(), ch.is_open() ? 1 : 0, o.got.events.size(),
                   v.fed.size(), describe(p).c_str());
        v.received += peer.take_sent();
        co_await next_turn{r};
        check_queue(ch, p, o);
    }
    for (int i = 0; i < 3; ++i) {
        co_await next_turn{r};  // what the close scheduled (the writer's end) runs
    }
    v.received += peer.take_sent();
}

bool is_prefix(const std::vector<event>& got, const std::vector<event>& want) {
    if (got.size() > want.size()) {
        return false;
    }
    for (std::size_t i = 0; i < got.size(); ++i) {
        const bool last_eager = i + 1 == got.size() && got[i].k == event::kind::eager &&
                                want[i].k == event::kind::eager;
        if (last_eager ? !std::string_view(want[i].data).starts_with(got[i].data)
                       : !(got[i] == want[i])) {
            return false;
        }
    }
    return true;
}

const char* name_of(chat::memory_transport::end e) {
    switch (e) {
    case chat::memory_transport::end::open:
        return "open";
    case chat::memory_transport::end::output_ended:
        return "output_ended";
    case chat::memory_transport::end::orderly:
        return "orderly";
    case chat::memory_transport::end::reset:
        return "reset";
    }
    return "?";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const plan p = decode_plan(data, size);
    ringchat::reactor& r = the_reactor();
    auto owned = std::make_unique<chat::memory_transport>(r);
    chat::memory_transport& peer = *owned;
    chat::channel ch(std::move(owned), p.options);
    observed o;
    peer_view v;
    r.block_on(play(r, ch, peer, p, o, v));

    script fed = p.sc;
    fed.stream = v.fed;
    const expectation want = model(fed, true);
    const std::error_code reason = ch.close_reason();
    const auto state = peer.state();
    const auto report = [&] {
        return describe(p) + "\n  fed: \"" + escaped(v.fed) + "\"\n  model:" +
               describe(want.events) +
               " | partial \"" + escaped(want.partial) + "\", last " + describe(want.last) +
               "\n  got:  " + describe(o.got.events) + " | partial \"" +
               escaped(o.got.partial) + "\", last " + describe(o.got.last) + "\n  read end: " +
               (o.end ? o.end.message() : "none") + ", close: " +
               (reason ? reason.message() : "none") + ", peer " + name_of(state) +
               ", pushed " + std::to_string(o.pushed.size()) + ", received " +
               std::to_string(v.received.size()) +
               (v.failed ? ", received when sends failed " + std::to_string(v.received_at_fail)
                         : std::string());
    };

    static const bool show = std::getenv("FUZZ_CHANNEL_SHOW") != nullptr;
    if (show) {  // FUZZ_CHANNEL_SHOW=1 build-fuzz/tests/fuzz/fuzz_channel FILE: the decoded run
        std::fprintf(stderr, "%s\n", report().c_str());
    }
    FUZZ_CHECK(o.done && !ch.is_open(), "the session ended with the channel open\n%s",
               report().c_str());
    // Why the input stopped: the fault that came first.
    const bool read_reset = o.end == std::errc::connection_reset;
    const bool read_pipe = o.end == std::errc::broken_pipe;
    FUZZ_CHECK((!o.end && !p.reset) || (read_reset && p.reset) || (read_pipe && v.failed),
               "read() ended with %s\n%s", o.end.message().c_str(), report().c_str());
    if (!read_pipe) {
        FUZZ_CHECK(o.got.events == want.events && o.got.partial == want.partial &&
                       o.got.last == want.last,
                   "the frames are not the model's\n%s", report().c_str());
        FUZZ_CHECK(ch.stats().bytes_received == v.fed.size(), "%llu bytes received of %zu\n%s",
                   static_cast<unsigned long long>(ch.stats().bytes_received), v.fed.size(),
                   report().c_str());
    } else {
        FUZZ_CHECK(is_prefix(o.got.events, want.events),
                   "the frames before the EPIPE are not a prefix of the model's\n%s",
                   report().c_str());
    }
    // The close: the input's reset, or an EPIPE exactly when output was left once sends
    // failed, or none.
    if (read_reset || read_pipe) {
        FUZZ_CHECK(reason == o.end, "read() ended with %s, the close with %s\n%s",
                   o.end.message().c_str(), reason.message().c_str(), report().c_str());
    } else {
        FUZZ_CHECK(!reason || reason == std::errc::broken_pipe, "closed with %s\n%s",
                   reason.message().c_str(), report().c_str());
    }
    if (reason == std::errc::broken_pipe) {
        FUZZ_CHECK(v.failed && v.received_at_fail < o.pushed.size(),
                   "EPIPE with nothing left to send\n%s", report().c_str());
    }
    // What the peer got: a prefix of what was pushed, nothing after the sends failed.
    FUZZ_CHECK(v.received.size() <= o.pushed.size() &&
                   std::string_view(o.pushed).starts_with(v.received),
               "the peer received what was not pushed (first %zu bytes differ or more)\n  "
               "pushed   \"%s\"\n  received \"%s\"\n%s",
               v.received.size(), escaped(o.pushed).c_str(), escaped(v.received).c_str(),
               report().c_str());
    FUZZ_CHECK(!v.failed || v.received.size() == v.received_at_fail,
               "the peer received bytes after sends failed\n%s", report().c_str());
    if (!reason) {
        FUZZ_CHECK(v.received == o.pushed, "a clean close without all the output\n%s",
                   report().c_str());
        FUZZ_CHECK(!v.failed || v.received_at_fail == o.pushed.size(),
                   "no EPIPE, yet output was left when sends failed\n%s", report().c_str());
    }
    FUZZ_CHECK(ch.stats().bytes_sent == v.received.size(), "%llu bytes sent, %zu received\n%s",
               static_cast<unsigned long long>(ch.stats().bytes_sent), v.received.size(),
               report().c_str());
    // Output cut short is a reset; all of it delivered, an orderly close.
    const bool cut_short = v.received.size() < o.pushed.size();
    FUZZ_CHECK(state == (cut_short ? chat::memory_transport::end::reset
                                   : chat::memory_transport::end::orderly),
               "the peer sees %s\n%s", name_of(state), report().c_str());
    FUZZ_CHECK(ch.queued_bytes() == 0, "%zu bytes still queued once closed\n%s",
               ch.queued_bytes(), report().c_str());
    return 0;
}
