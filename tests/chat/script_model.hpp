// SPDX-License-Identifier: MIT
// tests/chat/script_model.hpp — random protocol scripts and the plain reference model of
// what asynchat delivers for them, shared by the framer's property tests (every chunking, in
// memory) and the channel's (random chunkings through real sockets, on both backends).
//
// A script is what a handler does: the first terminator, then for each frame found a new
// terminator or none. The model (model::advance) is written from docs/asynchat-semantics.md over
// the whole stream, with no chunks at all; a framer or channel fed the stream in any chunking
// must give its events.
#pragma once

#include <cstddef>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "chat/terminator.hpp"
#include "tests/chat/describe.hpp"

namespace ringchat::test {

using chat::terminator;
using chat::terminator_kind;

/// found_terminator's reaction, by frame number: a new terminator, or keep (nullopt).
/// Frames past the end of the list keep the terminator.
struct script {
    terminator first;
    std::vector<std::optional<terminator>> actions;
    std::size_t max_frame = 0;
};

inline std::string describe(const script& sc) {
    std::string out = fmt::format("max_frame {}, first {}, then", sc.max_frame,
                                  describe(sc.first));
    for (const std::optional<terminator>& a : sc.actions) {
        out += " " + (a ? describe(*a) : std::string("keep"));
    }
    return out;
}

/// What the model expects: `kind` is frame (data between terminators, handed to the script),
/// too_long, or eager (all data after an inactive terminator, however it is delivered).
struct expected_event {
    enum class kind { frame, too_long, eager } k;
    std::string data;
    std::size_t begin = 0;   // stream offset of data
    std::size_t end = 0;     // stream offset after the frame's terminator
    terminator seen;         // frame: the terminator as found_terminator sees it
};

struct expectation {
    std::vector<expected_event> events;
    std::string partial;
    terminator last;
};

inline std::string describe(const expectation& e) {
    std::string out;
    for (const expected_event& ev : e.events) {
        out += " ";
        switch (ev.k) {
        case expected_event::kind::frame:
            out += "F" + escaped(ev.data) + "@" + std::to_string(ev.begin);
            break;
        case expected_event::kind::too_long:
            out += "<too long>";
            break;
        case expected_event::kind::eager:
            out += "E" + escaped(ev.data);
            break;
        }
    }
    return out + " | partial " + escaped(e.partial) + ", last " + describe(e.last);
}

/// The declarative model (§4.7 item 6, plus the limit), resumable so that the terminator can
/// be changed between reads: `p` is where the frame in progress starts, `c` the first byte
/// not scanned yet (`s[p, c)` is data of that frame, `s[c, limit)` a held prefix), `t` the
/// terminator in force. An inactive `t`: everything from p on is data. A count n: the next n
/// bytes end the frame. A string: the frame ends at its leftmost occurrence from c, which is
/// consumed. A frame longer than max_frame is too_long instead, as soon as its data passes the
/// limit (a count's only where the body ends), and the script does not see it; it is skipped
/// up to its terminator, which is consumed all the same. At the end: the unfinished frame
/// (nothing once too_long) and the longest suffix that is a proper prefix of `t`.
struct model {
    std::string_view s;
    const script& sc;
    expectation out{{}, {}, sc.first};
    std::size_t p = 0;
    std::size_t c = 0;
    std::size_t frames = 0;
    bool skipping = false;
    bool skipping_count = false;  // ... a count body, whose too_long comes at its end

    bool over(std::size_t n) const { return sc.max_frame != 0 && n > sc.max_frame; }

    /// Scans up to `limit`, the end of the bytes received so far.
    void advance(std::size_t limit) {
        terminator& t = out.last;
        while (true) {
            if (!t.active()) {
                if (!skipping && limit > p) {
                    if (!out.events.empty() && out.events.back().k == expected_event::kind::eager) {
                        out.events.back().data += s.substr(p, limit - p);
                    } else {
                        out.events.push_back({expected_event::kind::eager,
                                              std::string(s.substr(p, limit - p)), p, 0, t});
                    }
                    p = limit;
                }
                c = limit;
                return;
            }
            std::size_t data_end = 0;
            std::size_t next = 0;
            if (t.kind() == terminator_kind::count) {
                if (limit - c < t.remaining()) {
                    t = terminator::count(t.remaining() - (limit - c));
                    c = limit;
                } else {
                    c += t.remaining();
                    data_end = next = c;
                    t = terminator::count(0);
                }
            } else {
                const std::string_view text = t.text();
                const std::string_view rest = s.substr(c, limit - c);
                const std::size_t at = rest.find(text);
                if (at == std::string_view::npos) {
                    std::size_t keep = 0;
                    for (std::size_t k = 1; k < text.size() && k <= rest.size(); ++k) {
                        if (rest.ends_with(text.substr(0, k))) {
                            keep = k;
                        }
                    }
                    c = limit - keep;
                } else {
                    data_end = c + at;
                    next = data_end + text.size();
                }
            }
            if (next == 0) {   // not found: s[p, c) is data of an unfinished frame
                if (!skipping && over(c - p)) {
                    // A string's too_long comes at once; a count's where the body ends.
                    skipping_count = t.kind() == terminator_kind::count;
                    if (!skipping_count) {
                        out.events.push_back({expected_event::kind::too_long, {}, p, 0, t});
                    }
                    skipping = true;
                }
                return;
            }
            if (skipping) {
                skipping = false;
                if (std::exchange(skipping_count, false)) {
                    out.events.push_back({expected_event::kind::too_long, {}, p, next, t});
                }
            } else if (over(data_end - p)) {
                out.events.push_back({expected_event::kind::too_long, {}, p, next, t});
            } else {
                out.events.push_back({expected_event::kind::frame,
                                      std::string(s.substr(p, data_end - p)), p, next, t});
                if (frames < sc.actions.size() && sc.actions[frames]) {
                    t = *sc.actions[frames];
                }
                ++frames;
            }
            p = c = next;
        }
    }

    /// The end of the stream.
    expectation finish() {
        out.partial = s.substr(skipping ? c : p);
        return out;
    }
};

inline expectation expect(std::string_view stream, const script& sc) {
    model m{stream, sc};
    m.advance(stream.size());
    return m.finish();
}

/// Random streams over a small alphabet, so that terminators occur often and share prefixes
/// with the data.
struct random_source {
    std::mt19937 gen;

    std::size_t below(std::size_t n) {
        return std::uniform_int_distribution<std::size_t>(0, n - 1)(gen);
    }

    std::string text(std::size_t size) {
        static constexpr std::string_view alphabet = "ab\r\n";
        std::string out;
        for (std::size_t i = 0; i < size; ++i) {
            out += alphabet[below(alphabet.size())];
        }
        return out;
    }

    terminator any_terminator() {
        static constexpr std::string_view usual[] = {"\r\n", "\r\n\r\n", "\n", "aab", "abab",
                                                     "abac", "aa", "a\r\na"};
        const std::size_t r = below(20);
        if (r == 0) {
            return terminator::none();
        }
        if (r == 1) {
            return terminator::count(0);
        }
        if (r == 2) {
            return terminator::bytes("");
        }
        if (r < 7) {
            return terminator::count(1 + below(9));
        }
        if (r < 12) {
            return terminator::bytes(usual[below(std::size(usual))]);
        }
        return terminator::bytes(text(1 + below(4)));
    }

    script any_script() {
        script sc{any_terminator(), {}, 0};
        const std::size_t actions = below(14);
        for (std::size_t i = 0; i < actions; ++i) {
            sc.actions.push_back(below(5) < 3 ? std::optional(any_terminator()) : std::nullopt);
        }
        sc.max_frame = below(3) == 0 ? 0 : 1 + below(8);
        return sc;
    }

    /// Random chunk sizes in [0, max], empty chunks included.
    std::vector<std::string> chunks(std::string_view stream, std::size_t max) {
        std::vector<std::string> out;
        for (std::size_t at = 0; at < stream.size();) {
            const std::size_t size = below(max + 1);
            out.emplace_back(stream.substr(at, size));
            at += size;
        }
        return out;
    }
};

}  // namespace ringchat::test
