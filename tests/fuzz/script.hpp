// SPDX-License-Identifier: MIT
// tests/fuzz/script.hpp — what the framer and facade targets share: a fuzz input decoded into
// a protocol script (a first terminator, then what found_terminator sets after each frame, a
// frame limit) and a chunking of a byte stream; and a plain reference model of what asynchat
// delivers for them (docs/asynchat-semantics.md §4.7 item 6, plus ringchat's limit, §9),
// written from the document over the whole stream, with no chunks and no scan().
//
// Input layout (FuzzedDataProvider: numbers from the end, bytes from the front): the
// options, the script's terminators (each a kind and, for a string, its bytes), the chunk
// sizes, and what is left is the stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include "chat/terminator.hpp"

namespace fuzz {

using ringchat::chat::terminator;
using ringchat::chat::terminator_kind;

/// Reports a broken invariant and aborts, so that libFuzzer keeps the input.
#define FUZZ_CHECK(cond, ...)                                                              \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            std::fprintf(stderr, __VA_ARGS__);                                             \
            std::fputc('\n', stderr);                                                      \
            std::abort();                                                                  \
        }                                                                                  \
    } while (0)

inline std::string escaped(std::string_view s) {
    std::string out;
    for (unsigned char c : s) {
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out += static_cast<char>(c);
        } else {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            out += hex;
        }
    }
    return out;
}

inline std::string describe(const terminator& t) {
    switch (t.kind()) {
    case terminator_kind::none:
        return "none";
    case terminator_kind::count:
        return "count(" + std::to_string(t.remaining()) + ")";
    case terminator_kind::bytes:
        return "\"" + escaped(t.text()) + "\"";
    }
    return "?";
}

struct script {
    terminator first;
    std::vector<std::optional<terminator>> actions;  // per frame found: set this, or keep
    std::size_t max_frame = 0;                       // 0: no limit
    bool pieces = false;                             // the framer's set_pieces
    std::vector<std::string> chunks;                 // the stream, cut into reads
    std::string stream;

    /// What found_terminator sets after frame `n` (counted from 0), if anything.
    const std::optional<terminator>* action(std::size_t n) const {
        return n < actions.size() ? &actions[n] : nullptr;
    }
};

inline terminator decode_terminator(FuzzedDataProvider& in) {
    switch (in.ConsumeIntegralInRange<int>(0, 7)) {
    case 0:
        return terminator::none();
    case 1:
        return terminator::count(0);
    case 2:
        return terminator::bytes("");
    case 3:
    case 4:
        return terminator::count(in.ConsumeIntegralInRange<std::uint64_t>(1, 40));
    default:
        return terminator::bytes(in.ConsumeBytesAsString(in.ConsumeIntegralInRange(1, 5)));
    }
}

inline script decode_script(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    script sc;
    const auto options = in.ConsumeIntegral<std::uint8_t>();
    static constexpr std::size_t limits[] = {0, 0, 1, 2, 3, 5, 8, 64};
    sc.max_frame = limits[options & 7];
    sc.pieces = (options & 8) != 0;
    sc.first = decode_terminator(in);
    const std::size_t actions = in.ConsumeIntegralInRange<std::size_t>(0, 24);
    for (std::size_t i = 0; i < actions; ++i) {
        if (in.ConsumeBool()) {
            sc.actions.emplace_back(decode_terminator(in));
        } else {
            sc.actions.emplace_back(std::nullopt);
        }
    }
    std::vector<std::size_t> sizes(in.ConsumeIntegralInRange<std::size_t>(0, 32));
    for (std::size_t& s : sizes) {
        s = in.ConsumeIntegralInRange<std::size_t>(0, 24);
    }
    sc.stream = in.ConsumeRemainingBytesAsString();
    std::size_t at = 0;
    for (std::size_t s : sizes) {
        if (at >= sc.stream.size()) {
            break;
        }
        sc.chunks.push_back(sc.stream.substr(at, s));
        at += sc.chunks.back().size();
    }
    if (at < sc.stream.size()) {
        sc.chunks.push_back(sc.stream.substr(at));
    }
    return sc;
}

/// One thing the model says a reader sees.
struct event {
    enum class kind { frame, too_long, eager } k;
    std::string data;  // frame: its data; eager: all the data after the terminator went
                       // inactive (however it is cut); too_long: nothing
    terminator seen;   // frame: the terminator as found_terminator sees it
};

struct expectation {
    std::vector<event> events;
    std::string partial;    // the frame in progress at the end, held bytes included
    std::size_t held = 0;   // ... of which a held possible terminator start
    terminator last;        // the terminator at the end
};

/// The longest proper prefix of `t` that `s` ends with.
inline std::size_t held_prefix(std::string_view s, std::string_view t) {
    for (std::size_t k = std::min(s.size(), t.size() - 1); k > 0; --k) {
        if (s.substr(s.size() - k) == t.substr(0, k)) {
            return k;
        }
    }
    return 0;
}

/// The model. From the start of each frame `p` with the terminator `t`: none (or a count
/// of 0, or an empty string): every byte from p on is data, forever. A count n: the next n
/// bytes are the frame, then found; the count reads 0. A string: the bytes up to its leftmost
/// occurrence at or after p are the frame; the occurrence is consumed, then found. The
/// terminator the script sets then applies from the new p. With a limit (`max_frame` > 0),
/// a frame longer than the limit is too_long (and the script does not see it) and is skipped
/// up to its terminator: a string's as soon as more than max_frame bytes of it are known to be
/// data, a count's where its body ends. With `pieces`, no frame is too long.
inline expectation model(const script& sc, bool limit_applies) {
    expectation out;
    terminator t = sc.first;
    const std::string_view s = sc.stream;
    const std::size_t limit = limit_applies && !sc.pieces ? sc.max_frame : 0;
    std::size_t p = 0;
    std::size_t frames = 0;
    while (p < s.size()) {
        if (!t.active()) {
            out.events.push_back({event::kind::eager, std::string(s.substr(p)), t});
            p = s.size();
            break;
        }
        std::size_t data_end;
        std::size_t next;
        if (t.kind() == terminator_kind::count) {
            if (s.size() - p < t.remaining()) {
                // The body does not end: its bytes are partial, the count runs down.
                const std::size_t got = s.size() - p;
                t = terminator::count(t.remaining() - got);
                if (limit != 0 && got > limit) {
                    p = s.size();  // being skipped: nothing is partial
                }
                break;
            }
            data_end = next = p + t.remaining();
            t = terminator::count(0);
        } else {
            const std::size_t at = s.find(t.text(), p);
            if (at == std::string_view::npos) {
                const std::size_t keep = held_prefix(s.substr(p), t.text());
                if (limit != 0 && s.size() - keep - p > limit) {
                    out.events.push_back({event::kind::too_long, {}, t});
                    p = s.size() - keep;  // skipped; the held bytes stay partial
                }
                out.held = keep;
                break;
            }
            data_end = at;
            next = at + t.text().size();
        }
        if (limit != 0 && data_end - p > limit) {
            out.events.push_back({event::kind::too_long, {}, t});
        } else {
            out.events.push_back({event::kind::frame, std::string(s.substr(p, data_end - p)), t});
            if (const auto* a = sc.action(frames); a != nullptr && *a) {
                t = **a;
            }
            ++frames;
        }
        p = next;
    }
    out.partial = std::string(s.substr(p));
    out.last = t;
    return out;
}

inline bool operator==(const event& a, const event& b) {
    // An eager run's terminator is whatever inactive one is in force: not compared.
    return a.k == b.k && a.data == b.data && (a.k != event::kind::frame || a.seen == b.seen);
}

inline std::string describe(const std::vector<event>& events) {
    std::string out;
    for (const event& e : events) {
        switch (e.k) {
        case event::kind::frame:
            out += " F\"" + escaped(e.data) + "\"/" + describe(e.seen);
            break;
        case event::kind::too_long:
            out += " <too long>";
            break;
        case event::kind::eager:
            out += " E\"" + escaped(e.data) + "\"";
            break;
        }
    }
    return out;
}

/// A copy of each chunk in its own allocation, exactly its size, so that ASan sees a read
/// past any of them.
inline std::vector<std::vector<std::byte>> separate(const std::vector<std::string>& chunks) {
    std::vector<std::vector<std::byte>> out;
    for (const std::string& c : chunks) {
        const auto* b = reinterpret_cast<const std::byte*>(c.data());
        out.emplace_back(b, b + c.size());
    }
    return out;
}

}  // namespace fuzz
