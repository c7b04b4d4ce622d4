// SPDX-License-Identifier: MIT
// tests/fuzz/fuzz_framer.cpp — the scanner and the framer, differentially: a decoded script
// and chunking (script.hpp) run through chat::framer, whose frames must be the model's; and
// chat::feed() (the scan loop) over the same chunks, whose collect/found calls, joined, must
// give the same frames when the limit is off.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "chat/framer.hpp"
#include "tests/fuzz/script.hpp"

using namespace fuzz;
using ringchat::chat::framer;

namespace {

std::string text(std::span<const std::byte> b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

/// The framer's events in the model's terms: pieces joined to the frame they are part of,
/// eager frames joined.
expectation run_framer(const script& sc) {
    expectation got;
    framer f(sc.max_frame);
    f.set_pieces(sc.pieces);
    f.set_terminator(sc.first);
    std::size_t frames = 0;
    std::string pieces;
    const auto chunks = separate(sc.chunks);
    for (const auto& c : chunks) {
        f.feed(c);
        for (std::size_t guard = 0;; ++guard) {
            FUZZ_CHECK(guard <= 2 * c.size() + 4, "next() does not stop returning events");
            const bool active = f.get_terminator().active();
            std::span<const std::byte> out;
            const framer::status st = f.next(out);
            if (st == framer::status::need_more) {
                break;
            }
            if (st == framer::status::too_long) {
                FUZZ_CHECK(!sc.pieces && sc.max_frame > 0, "too_long without a limit");
                got.events.push_back({event::kind::too_long, {}, f.get_terminator()});
                continue;
            }
            if (st == framer::status::piece) {
                FUZZ_CHECK(sc.pieces && active, "a piece without pieces on");
                FUZZ_CHECK(out.size() >= sc.max_frame, "a piece of %zu bytes, limit %zu",
                           out.size(), sc.max_frame);
                pieces += text(out);
                continue;
            }
            if (!active) {
                FUZZ_CHECK(pieces.empty(), "pieces before eager data");
                FUZZ_CHECK(!out.empty(), "an empty eager frame");
                if (!got.events.empty() && got.events.back().k == event::kind::eager) {
                    got.events.back().data += text(out);
                } else {
                    got.events.push_back({event::kind::eager, text(out), f.get_terminator()});
                }
                continue;
            }
            const std::string handed = text(out);
            // A frame joined in the framer's buffer may be moved out; `out` then dangles.
            const std::string taken = f.take_frame(out);
            FUZZ_CHECK(taken.empty() || taken == handed, "take_frame() gave other bytes");
            got.events.push_back({event::kind::frame, pieces + handed, f.get_terminator()});
            pieces.clear();
            if (const auto* a = sc.action(frames); a != nullptr && *a) {
                f.set_terminator(**a);
            }
            ++frames;
        }
        FUZZ_CHECK(f.pending() == 0 || (f.get_terminator().kind() == terminator_kind::bytes &&
                                         f.pending() < f.get_terminator().text().size()),
                   "bytes pending after need_more: %zu", f.pending());
    }
    got.partial = pieces + f.partial();
    got.last = f.get_terminator();
    return got;
}

/// chat::feed(), asynchat's loop itself, with the held bytes put in front of the next chunk.
expectation run_feed(const script& sc) {
    expectation got;
    terminator t = sc.first;
    std::size_t frames = 0;
    std::string record;
    std::string held;
    for (const std::string& c : sc.chunks) {
        const std::string buffer = held + c;
        std::vector<std::byte> in(reinterpret_cast<const std::byte*>(buffer.data()),
                                  reinterpret_cast<const std::byte*>(buffer.data()) +
                                      buffer.size());
        const std::size_t kept = ringchat::chat::feed(
            in, t,
            [&](std::span<const std::byte> d) {
                FUZZ_CHECK(!d.empty(), "collect with no data");
                record += text(d);
            },
            [&] {
                got.events.push_back({event::kind::frame, std::exchange(record, {}), t});
                if (const auto* a = sc.action(frames); a != nullptr && *a) {
                    t = **a;
                }
                ++frames;
            });
        FUZZ_CHECK(kept == 0 || (t.kind() == terminator_kind::bytes && kept < t.text().size()),
                   "held %zu bytes with %s", kept, describe(t).c_str());
        held = buffer.substr(buffer.size() - kept);
    }
    if (!t.active() && !record.empty()) {  // only found changes t: all of it came after
        got.events.push_back({event::kind::eager, std::exchange(record, {}), t});
    }
    got.partial = record + held;
    got.held = held.size();
    got.last = t;
    return got;
}

void compare(const char* what, const script& sc, const expectation& want,
             const expectation& got, bool held) {
    FUZZ_CHECK(got.events == want.events && got.partial == want.partial &&
                   got.last == want.last && (!held || got.held == want.held),
               "%s, max_frame %zu%s, first %s:\n  model:%s | partial \"%s\", last %s\n  got:  "
               "%s | partial \"%s\", last %s",
               what, sc.max_frame, sc.pieces ? " (pieces)" : "", describe(sc.first).c_str(),
               describe(want.events).c_str(), escaped(want.partial).c_str(),
               describe(want.last).c_str(), describe(got.events).c_str(),
               escaped(got.partial).c_str(), describe(got.last).c_str());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const script sc = decode_script(data, size);
    compare("framer", sc, model(sc, true), run_framer(sc), false);
    // The scan loop has no limit: its records, joined, are the model's without one. Its
    // data after the terminator goes inactive is one eager run, as the model's.
    compare("feed()", sc, model(sc, false), run_feed(sc), true);
    return 0;
}
