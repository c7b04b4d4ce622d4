// SPDX-License-Identifier: MIT
// tests/chat/test_channel_property.cpp — the random-script property test of test_framer.cpp,
// through real sockets on every backend: a peer sends a random stream in random pieces, the
// channel's reader plays the script (switching terminators after each frame it is handed),
// and what read() gives must equal the events of the reference model (script_model.hpp).
// Invariant: fixed seeds; a failure prints the script, stream and pieces to replay it.
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "chat/channel.hpp"
#include "core/error.hpp"
#include "tests/chat/describe.hpp"
#include "tests/chat/script_model.hpp"
#include "tests/support/peers.hpp"
#include "tests/support/support.hpp"

using namespace ringchat;
using chat::channel;
using chat::channel_options;
using test::expectation;
using test::expected_event;
using test::script;

namespace {

/// Sends each piece in its own send, after the channel has received the ones before (so
/// that reads mostly follow the pieces; nothing depends on it), then closes.
task<bool> send_pieces(reactor& r, ringchat::socket s, const channel& ch,
                       std::vector<std::string> pieces) {
    std::size_t sent_so_far = 0;
    for (const std::string& piece : pieces) {
        while (ch.stats().bytes_received < sent_so_far && ch.is_open()) {
            co_await test::yield_now{r};
        }
        auto sent = co_await s.send_all(test::bytes(piece));
        REQUIRE(sent);
        sent_so_far += piece.size();
    }
    s.close_now();
    co_return true;
}

/// What the handler saw, in the model's terms: frames (with the terminator shown after each),
/// too_long, and eager data joined; then how the stream ended.
struct observed {
    std::vector<expected_event> events;
    std::error_code error;
    std::string partial;
    chat::terminator last;
};

/// The handler: reads to the end, applying the script's action after each found frame.
task<observed> play(channel& ch, const script& sc) {
    observed o;
    std::size_t index = 0;
    for (;;) {
        // A frame is eager (data after an inactive terminator) when no terminator was active
        // as it was read; a count that runs out during the read still found its frame.
        const bool active = ch.get_terminator().active();
        auto f = co_await ch.read();
        if (f && !active) {
            if (!o.events.empty() && o.events.back().k == expected_event::kind::eager) {
                o.events.back().data += f.text();
            } else {
                o.events.push_back({expected_event::kind::eager, std::string(f.text()), 0, 0, {}});
            }
        } else if (f) {
            o.events.push_back({expected_event::kind::frame, std::string(f.text()), 0, 0,
                                ch.get_terminator()});
            if (index < sc.actions.size() && sc.actions[index]) {
                ch.set_terminator(*sc.actions[index]);
            }
            ++index;
        } else if (f.error() == make_error_code(errc::frame_too_long)) {
            o.events.push_back({expected_event::kind::too_long, {}, 0, 0, {}});
        } else {
            o.error = f.error();
            o.partial = f.partial();
            o.last = ch.get_terminator();
            co_return o;
        }
    }
}

std::string describe(const std::vector<expected_event>& events) {
    std::string out;
    for (const expected_event& ev : events) {
        switch (ev.k) {
        case expected_event::kind::frame:
            out += " F" + test::escaped(ev.data);
            break;
        case expected_event::kind::too_long:
            out += " <too long>";
            break;
        case expected_event::kind::eager:
            out += " E" + test::escaped(ev.data);
            break;
        }
    }
    return out;
}

/// What differs between the model and the run; empty when nothing does.
std::string compare(const observed& got, const expectation& want) {
    if (got.events.size() != want.events.size()) {
        return fmt::format("{} events, the model has {}", got.events.size(), want.events.size());
    }
    for (std::size_t i = 0; i < got.events.size(); ++i) {
        const expected_event& g = got.events[i];
        const expected_event& w = want.events[i];
        if (g.k != w.k || g.data != w.data ||
            (g.k == expected_event::kind::frame && g.seen != w.seen)) {
            return fmt::format("event {} differs", i);
        }
    }
    if (got.error) {
        return "the stream ended with " + got.error.message();
    }
    if (got.partial != want.partial) {
        return "the partial tail differs";
    }
    if (got.last != want.last) {
        return "the last terminator differs";
    }
    return {};
}

/// How many events of each kind the cases met: the generator must reach every path.
struct coverage {
    std::size_t frames = 0;
    std::size_t too_long = 0;
    std::size_t eager = 0;
};

task<> run_cases(reactor& r, std::uint32_t seed, int cases, coverage& seen) {
    test::random_source rnd{std::mt19937(seed)};
    for (int n = 0; n < cases; ++n) {
        const script sc = rnd.any_script();
        const std::string stream = rnd.text(rnd.below(160));
        std::vector<std::string> pieces;
        for (std::string& piece : rnd.chunks(stream, 1 + rnd.below(16))) {
            if (!piece.empty()) {
                pieces.push_back(std::move(piece));
            }
        }
        const expectation want = test::expect(stream, sc);

        auto [ours, peer] = test::socket_pair(r);
        channel_options o;
        o.max_frame = sc.max_frame;
        channel ch(std::move(ours), o);
        ch.set_terminator(sc.first);
        test::background<bool> sender(r, send_pieces(r, std::move(peer), ch, pieces));
        const observed got = co_await play(ch, sc);
        (void)co_await sender.join();

        for (const expected_event& ev : got.events) {
            seen.frames += ev.k == expected_event::kind::frame ? 1 : 0;
            seen.too_long += ev.k == expected_event::kind::too_long ? 1 : 0;
            seen.eager += ev.k == expected_event::kind::eager ? 1 : 0;
        }
        const std::string wrong = compare(got, want);
        if (!wrong.empty()) {
            std::string cut;
            for (const std::string& piece : pieces) {
                cut += " " + test::escaped(piece);
            }
            INFO("seed " << seed << ", case " << n << ": " << test::describe(sc));
            INFO("stream " << test::escaped(stream) << ", pieces" << cut);
            INFO("model:" << describe(want.events) << " | partial "
                          << test::escaped(want.partial) << ", last " << test::describe(want.last));
            INFO("got:  " << describe(got.events) << " | partial " << test::escaped(got.partial)
                          << ", last " << test::describe(got.last));
            FAIL(wrong);
        }
    }
}

}  // namespace

TEST_CASE("property: random scripts through a socket give the model's frames", "[channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    coverage seen;
    test::run(kind, [&seen](reactor& r) { return run_cases(r, 0xc4a77e1, 600, seen); });
    INFO(seen.frames << " frames, " << seen.too_long << " too_long, " << seen.eager
                     << " eager runs");
    CHECK(seen.frames > 500);
    CHECK(seen.too_long > 100);
    CHECK(seen.eager > 100);
}
