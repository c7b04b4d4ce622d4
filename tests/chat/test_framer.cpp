// SPDX-License-Identifier: MIT
// tests/chat/test_framer.cpp — the framer (chunks in, frames out) without sockets or a reactor.
//
// Sections: 1 helpers (a `drive()` loop that feeds chunks, calls next() until need_more, lets a
// handler change the terminator after each frame, and records where each frame points); 2 the
// basic contract; 3 changing the terminator (HTTP-like over every chunking, held prefixes
// rescanned); 4 zero copy; 5 partial() and discard(); 6 the frame limit; 7 properties: the
// stream-level model (docs/asynchat-semantics.md §4.7 item 6, plus max_frame) against
// random chunkings, then with the terminator also changed between reads. Invariant: a frame
// is what asynchat would collect between two found_terminator calls, whatever the chunking;
// random cases use fixed seeds and print what is needed to replay them.
#include "chat/framer.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/chat/describe.hpp"
#include "tests/chat/script_model.hpp"
#include "tests/support/support.hpp"

using ringchat::chat::framer;
using ringchat::chat::terminator;
using ringchat::chat::terminator_kind;

// ---------------------------------------------------------------------------------------------
// 1. Helpers
// ---------------------------------------------------------------------------------------------

namespace {

using status = framer::status;

using ringchat::test::describe;
using ringchat::test::escaped;
using ringchat::test::expect;
using ringchat::test::expectation;
using ringchat::test::expected_event;
using ringchat::test::model;
using ringchat::test::random_source;
using ringchat::test::script;

std::span<const std::byte> as_bytes(std::string_view s) { return ringchat::test::bytes(s); }
std::string as_text(std::span<const std::byte> b) { return ringchat::test::text(b); }

std::string describe(const std::vector<std::string>& chunks) {
    std::string out;
    for (const std::string& c : chunks) {
        out += (out.empty() ? "" : " ") + escaped(c);
    }
    return out;
}

/// True when `inner` lies inside `outer` (pointer ranges, not contents).
bool inside(std::span<const std::byte> inner, std::span<const std::byte> outer) {
    const auto* lo = outer.data();
    const auto* hi = outer.data() + outer.size();
    return inner.data() >= lo && inner.data() + inner.size() <= hi;
}

/// One non-need_more result of next(), as a caller sees it.
struct delivery {
    status st = status::frame;
    std::string data;                     // the frame (empty for too_long)
    bool eager = false;                   // delivered as it came (no active terminator)
    terminator seen;                      // get_terminator() right after next() returned
    std::size_t chunk = 0;                // index of the chunk fed last
    std::optional<std::size_t> offset;    // stream offset when `out` lies in a fed chunk
    bool straddles = false;               // `out` overlaps a chunk without lying inside it
    std::size_t pending = 0;              // pending() right after next() returned
    bool consumed = false;                // the chunk had been consumed (need_more) before
};

struct run {
    std::vector<delivery> out;
    std::vector<std::size_t> chunk_begin;   // stream offset of each chunk
    std::string partial;                    // partial() at the end
    terminator last;                        // get_terminator() at the end
    std::string error;                      // set when the loop ran away
};

/// The handler: called after each frame or too_long; may change the framer's terminator, as
/// found_terminator does in asynchat.
using handler = std::function<void(framer&, const delivery&)>;

/// Called once a chunk is consumed (need_more); may change the terminator between reads.
/// \return whether to call next() again before the next chunk is fed.
using between_reads = std::function<bool(framer&, std::size_t chunk)>;

/// Feeds `chunks` one by one, each time calling next() until need_more; then, if `between`
/// is given, calls it and, if it says so, next() again until need_more (a held prefix may
/// give frames at once under a new terminator).
run drive(framer& f, const std::vector<std::string>& chunks, const handler& on = {},
          const between_reads& between = {}) {
    run r;
    std::size_t total = 0;
    for (const std::string& c : chunks) {
        r.chunk_begin.push_back(total);
        total += c.size();
    }
    const std::size_t limit = 4 * total + 2 * chunks.size() + 8;   // no runaway loop
    const auto drain = [&](std::size_t i, bool consumed) {
        while (true) {
            const bool active = f.get_terminator().active();
            std::span<const std::byte> out;
            const status st = f.next(out);
            if (st == status::need_more) {
                return true;
            }
            if (r.out.size() >= limit) {
                r.error = "next() does not stop returning events";
                return false;
            }
            delivery d;
            d.st = st;
            d.eager = st == status::frame && !active;
            d.seen = f.get_terminator();
            d.chunk = i;
            d.consumed = consumed;
            d.pending = f.pending();
            if (st == status::frame || st == status::piece) {
                d.data = as_text(out);
                for (std::size_t j = 0; j <= i && !out.empty(); ++j) {
                    const auto cj = as_bytes(chunks[j]);
                    if (inside(out, cj)) {
                        d.offset = r.chunk_begin[j] + static_cast<std::size_t>(out.data() -
                                                                               cj.data());
                    } else if (out.data() < cj.data() + cj.size() &&
                               cj.data() < out.data() + out.size()) {
                        d.straddles = true;
                    }
                }
            }
            r.out.push_back(d);
            if (on) {
                on(f, r.out.back());
            }
        }
    };
    for (std::size_t i = 0; i < chunks.size(); ++i) {
        f.feed(as_bytes(chunks[i]));
        if (!drain(i, false)) {
            return r;
        }
        if (between && between(f, i) && !drain(i, true)) {
            return r;
        }
    }
    r.partial = f.partial();
    r.last = f.get_terminator();
    return r;
}

/// The stream cut whole, one byte per chunk, and at every point in two.
std::vector<std::vector<std::string>> every_chunking(std::string_view s) {
    std::vector<std::vector<std::string>> out{{std::string(s)}};
    std::vector<std::string> bytes;
    for (const char c : s) {
        bytes.emplace_back(1, c);
    }
    out.push_back(bytes);
    for (std::size_t at = 0; at <= s.size(); ++at) {
        out.push_back({std::string(s.substr(0, at)), std::string(s.substr(at))});
    }
    return out;
}

/// Frame texts only; too_long as "<too long>".
std::vector<std::string> texts(const run& r) {
    std::vector<std::string> out;
    for (const delivery& d : r.out) {
        out.push_back(d.st == status::too_long ? std::string("<too long>") : d.data);
    }
    return out;
}

}  // namespace

namespace Catch {
template <>
struct StringMaker<framer::status> {
    static std::string convert(framer::status s) {
        switch (s) {
        case framer::status::frame:
            return "frame";
        case framer::status::need_more:
            return "need_more";
        case framer::status::too_long:
            return "too_long";
        case framer::status::piece:
            return "piece";
        }
        return "?";
    }
};
}  // namespace Catch

// ---------------------------------------------------------------------------------------------
// 2. The basic contract
// ---------------------------------------------------------------------------------------------

TEST_CASE("framer: the default terminator is a newline; frames are cut at it", "[framer]") {
    framer f;
    CHECK(f.get_terminator() == terminator::bytes("\n"));
    CHECK(f.max_frame() == 64 * 1024);
    std::span<const std::byte> out;
    CHECK(f.next(out) == status::need_more);   // nothing fed yet

    const std::string chunk = "a\nbb\nccc\nd";
    f.feed(as_bytes(chunk));
    CHECK(f.pending() == chunk.size());
    REQUIRE(f.next(out) == status::frame);
    CHECK(as_text(out) == "a");
    CHECK(f.pending() == chunk.size() - 2);
    REQUIRE(f.next(out) == status::frame);
    CHECK(as_text(out) == "bb");
    REQUIRE(f.next(out) == status::frame);
    CHECK(as_text(out) == "ccc");
    CHECK(f.next(out) == status::need_more);
    CHECK(f.next(out) == status::need_more);   // and stays so
    CHECK(f.partial() == "d");
    CHECK(f.pending() == 0);

    const std::string more = "e\n";
    f.feed(as_bytes(more));
    REQUIRE(f.next(out) == status::frame);
    CHECK(as_text(out) == "de");
    CHECK(f.next(out) == status::need_more);
    CHECK(f.partial().empty());
}

TEST_CASE("framer: take_frame() gives a joined frame's buffer away, never a chunk's view",
          "[framer]") {
    framer f;
    std::span<const std::byte> out;
    const std::string first = "one\ntw";
    f.feed(as_bytes(first));
    REQUIRE(f.next(out) == status::frame);
    CHECK(as_text(out) == "one");
    CHECK(f.take_frame(out).empty());  // a view of the chunk: the caller copies it
    CHECK(f.next(out) == status::need_more);
    const std::string second = "o\nthr";
    f.feed(as_bytes(second));
    REQUIRE(f.next(out) == status::frame);
    CHECK(as_text(out) == "two");
    CHECK(f.take_frame(std::span<const std::byte>(out).first(1)).empty());  // not the frame
    const std::string taken = f.take_frame(out);
    CHECK(taken == "two");
    CHECK(f.take_frame(out).empty());  // once
    // The framer goes on with a buffer of its own: joined frames after it are whole.
    CHECK(f.next(out) == status::need_more);
    const std::string third = "ee\nfo";
    f.feed(as_bytes(third));
    REQUIRE(f.next(out) == status::frame);
    CHECK(as_text(out) == "three");
    CHECK(f.next(out) == status::need_more);
    CHECK(f.partial() == "fo");
    CHECK(taken == "two");
}

TEST_CASE("framer: asynchat's tables, frame by frame, over every chunking", "[framer]") {
    struct row {
        std::string_view term;
        std::string_view stream;
        std::vector<std::string> frames;
        std::string_view partial;
    };
    // docs/asynchat-semantics.md §4.4 and §4.5, read as frames.
    const auto r = GENERATE(values<row>({
        {"\n", "a\nbb\nccc\nd", {"a", "bb", "ccc"}, "d"},
        {"\n", "\n\n\n", {"", "", ""}, ""},
        {"aab", "aaab", {"a"}, ""},
        {"aa", "aaaaa", {"", ""}, "a"},
        {"abab", "ababab", {""}, "ab"},
        {"ab", "xaby", {"x"}, "y"},
        {"\r\n", "abc\rx\r\n", {"abc\rx"}, ""},
        {"\r\n", "\r\r\n", {"\r"}, ""},
        {"abac", "ababac", {"ab"}, ""},
        {"\r\n\r\n", "a\r\n\r", {}, "a\r\n\r"},
        {"\r\n", "H1\r\nLen\r\n\r\nBODY", {"H1", "Len", ""}, "BODY"},
    }));
    for (const auto& chunks : every_chunking(r.stream)) {
        framer f;
        f.set_terminator(terminator::bytes(r.term));
        const run got = drive(f, chunks);
        INFO("terminator " << escaped(r.term) << ", chunks " << describe(chunks));
        REQUIRE(got.error.empty());
        CHECK(texts(got) == r.frames);
        CHECK(got.partial == r.partial);
        CHECK(got.last == terminator::bytes(r.term));
    }
}

TEST_CASE("framer: a count frame, then count(0) delivers the rest eagerly", "[framer]") {
    framer f;
    f.set_terminator(terminator::count(5));
    const std::vector<std::string> chunks = {"ab", "cdefg", "hi"};
    std::span<const std::byte> out;

    f.feed(as_bytes(chunks[0]));
    CHECK(f.next(out) == status::need_more);
    CHECK(f.get_terminator() == terminator::count(3));   // asynchat's countdown
    CHECK(f.partial() == "ab");

    f.feed(as_bytes(chunks[1]));
    REQUIRE(f.next(out) == status::frame);
    CHECK(as_text(out) == "abcde");
    CHECK(f.get_terminator() == terminator::count(0));   // as inside found_terminator
    REQUIRE(f.next(out) == status::frame);                // count(0) is inactive: eager
    CHECK(as_text(out) == "fg");
    CHECK(out.data() == as_bytes(chunks[1]).data() + 3);
    CHECK(f.next(out) == status::need_more);

    f.feed(as_bytes(chunks[2]));
    REQUIRE(f.next(out) == status::frame);
    CHECK(as_text(out) == "hi");
    CHECK(f.next(out) == status::need_more);
    CHECK(f.partial().empty());
}

TEST_CASE("framer: an inactive terminator delivers each chunk as it arrives", "[framer]") {
    const terminator t =
        GENERATE(terminator::none(), terminator::count(0), terminator::bytes(""));
    CAPTURE(t);
    framer f(4);   // eager deliveries are views of the chunk: the limit does not apply
    f.set_terminator(t);
    const std::vector<std::string> chunks = {"abc\n", "", "\r\n\r\nxyz"};
    std::span<const std::byte> out;

    f.feed(as_bytes(chunks[0]));
    REQUIRE(f.next(out) == status::frame);
    CHECK(as_text(out) == "abc\n");
    CHECK(out.data() == as_bytes(chunks[0]).data());
    CHECK(f.next(out) == status::need_more);

    f.feed(as_bytes(chunks[1]));
    CHECK(f.next(out) == status::need_more);   // no empty frame

    f.feed(as_bytes(chunks[2]));
    REQUIRE(f.next(out) == status::frame);
    CHECK(as_text(out) == "\r\n\r\nxyz");
    CHECK(out.data() == as_bytes(chunks[2]).data());
    CHECK(f.next(out) == status::need_more);
    CHECK(f.partial().empty());
    CHECK(f.pending() == 0);
    CHECK(f.get_terminator() == t);
}

// ---------------------------------------------------------------------------------------------
// 3. Changing the terminator
// ---------------------------------------------------------------------------------------------

TEST_CASE("framer: set_terminator between next() calls applies to the rest", "[framer]") {
    const std::string chunk = "A\nB\r\nC\r\nxy\nD";
    framer f;
    std::span<const std::byte> out;
    f.feed(as_bytes(chunk));
    REQUIRE(f.next(out) == status::frame);
    CHECK(as_text(out) == "A");
    f.set_terminator(terminator::bytes("\r\n"));
    REQUIRE(f.next(out) == status::frame);
    CHECK(as_text(out) == "B");
    f.set_terminator(terminator::count(4));
    REQUIRE(f.next(out) == status::frame);
    CHECK(as_text(out) == "C\r\nx");
    f.set_terminator(terminator::bytes("\n"));
    REQUIRE(f.next(out) == status::frame);
    CHECK(as_text(out) == "y");
    f.set_terminator(terminator::none());
    REQUIRE(f.next(out) == status::frame);
    CHECK(as_text(out) == "D");
    CHECK(f.next(out) == status::need_more);
}

TEST_CASE("framer: HTTP-like lines, a counted body, lines again, over every chunking",
          "[framer]") {
    const std::string stream =
        "GET /a HTTP/1.1\r\nContent-Length: 5\r\nHost: x\r\n\r\nhello"
        "POST /b HTTP/1.1\r\nContent-Length: 12\r\n\r\nline1\r\nline2"
        "GET /c HTTP/1.1\r\n\r\n"
        "tail\r\n";
    const std::vector<std::string> expected = {
        "GET /a HTTP/1.1", "Content-Length: 5", "Host: x", "", "hello",
        "POST /b HTTP/1.1", "Content-Length: 12", "", "line1\r\nline2",
        "GET /c HTTP/1.1", "", "tail"};

    // The handler found_terminator would be: header lines until a blank one, then the body
    // by count (none when there is no Content-Length), then lines again.
    const auto http = [](std::size_t& length, bool& in_body) {
        return [&length, &in_body](framer& f, const delivery& d) {
            REQUIRE(d.st == status::frame);
            if (in_body) {
                in_body = false;
                f.set_terminator(terminator::bytes("\r\n"));
            } else if (d.data.starts_with("Content-Length: ")) {
                length = std::stoul(d.data.substr(16));
            } else if (d.data.empty() && length > 0) {
                f.set_terminator(terminator::count(length));
                length = 0;
                in_body = true;
            }
        };
    };
    std::vector<std::vector<std::string>> chunkings = every_chunking(stream);
    for (std::size_t a = 1; a < stream.size(); ++a) {
        for (std::size_t b = a + 1; b < stream.size(); ++b) {
            chunkings.push_back({stream.substr(0, a), stream.substr(a, b - a), stream.substr(b)});
        }
    }
    std::size_t failures = 0;
    for (const auto& chunks : chunkings) {
        framer f(32);
        f.set_terminator(terminator::bytes("\r\n"));
        std::size_t length = 0;
        bool in_body = false;
        const run got = drive(f, chunks, http(length, in_body));
        if (!got.error.empty() || texts(got) != expected || !got.partial.empty()) {
            INFO("chunks " << describe(chunks));
            CHECK(got.error.empty());
            CHECK(texts(got) == expected);
            CHECK(got.partial.empty());
            if (++failures == 3) {
                FAIL("stopped after 3 failing chunkings");
            }
        }
    }
    CHECK(failures == 0);
}

TEST_CASE("framer: a held prefix is rescanned under a terminator changed between reads",
          "[framer]") {
    std::span<const std::byte> out;
    framer f;
    f.set_terminator(terminator::bytes("\r\n"));
    const std::string first = "ab\r";
    f.feed(as_bytes(first));
    REQUIRE(f.next(out) == status::need_more);
    CHECK(f.partial() == "ab\r");
    CHECK(f.pending() == 1);

    SECTION("without new data") {
        f.set_terminator(terminator::bytes("\r"));
        REQUIRE(f.next(out) == status::frame);
        CHECK(as_text(out) == "ab");
        CHECK(f.next(out) == status::need_more);
        CHECK(f.partial().empty());
    }
    SECTION("in front of the next chunk, as data (§4.6: held \\r, then None)") {
        f.set_terminator(terminator::none());
        const std::string next = "cd";
        f.feed(as_bytes(next));
        std::string all;
        status st;
        while ((st = f.next(out)) == status::frame) {
            REQUIRE_FALSE(out.empty());
            all += as_text(out);
        }
        CHECK(all == "ab\rcd");
        CHECK(f.partial().empty());
    }
    SECTION("a shorter terminator found inside the held bytes") {
        const std::string more = "\n\r";   // held is now "\r\n\r" under "\r\n\r\n"
        f.set_terminator(terminator::bytes("\r\n\r\n"));
        f.feed(as_bytes(more));
        REQUIRE(f.next(out) == status::need_more);
        CHECK(f.partial() == "ab\r\n\r");
        f.set_terminator(terminator::bytes("\n"));
        const std::string next = "x\ny\n";
        f.feed(as_bytes(next));
        REQUIRE(f.next(out) == status::frame);
        CHECK(as_text(out) == "ab\r");
        REQUIRE(f.next(out) == status::frame);
        CHECK(as_text(out) == "\rx");
        REQUIRE(f.next(out) == status::frame);
        CHECK(as_text(out) == "y");
        CHECK(out.data() == as_bytes(next).data() + 2);
        CHECK(f.next(out) == status::need_more);
    }
    SECTION("a count that ends inside the held bytes") {
        const std::string more = "\n\r";
        f.set_terminator(terminator::bytes("\r\n\r\n"));
        f.feed(as_bytes(more));
        REQUIRE(f.next(out) == status::need_more);
        f.set_terminator(terminator::count(2));   // counts from the held "\r\n\r"
        const std::string next = "xyz";
        f.feed(as_bytes(next));
        REQUIRE(f.next(out) == status::frame);
        CHECK(as_text(out) == "ab\r\n");
        CHECK(f.get_terminator() == terminator::count(0));
        // count(0) is inactive: the last held byte, then the chunk, delivered eagerly; the
        // chunk's bytes are a view of it, not a copy.
        std::string all;
        std::span<const std::byte> last;
        while (f.next(out) == status::frame) {
            REQUIRE_FALSE(out.empty());
            all += as_text(out);
            last = out;
        }
        CHECK(all == "\rxyz");
        CHECK(as_text(last) == "xyz");
        CHECK(last.data() == as_bytes(next).data());
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Zero copy
// ---------------------------------------------------------------------------------------------

TEST_CASE("framer: a frame inside one chunk is a view into it; one spanning chunks is not",
          "[framer]") {
    std::span<const std::byte> out;
    framer f;

    SECTION("all in one chunk") {
        const std::string c = "abc\ndef\n\n";
        f.feed(as_bytes(c));
        REQUIRE(f.next(out) == status::frame);
        CHECK(out.data() == as_bytes(c).data());
        CHECK(out.size() == 3);
        REQUIRE(f.next(out) == status::frame);
        CHECK(out.data() == as_bytes(c).data() + 4);
        CHECK(out.size() == 3);
        REQUIRE(f.next(out) == status::frame);
        CHECK(out.empty());
    }
    SECTION("spanning two chunks, then one inside the second") {
        const std::string c1 = "ab";
        const std::string c2 = "c\nd\n";
        f.feed(as_bytes(c1));
        REQUIRE(f.next(out) == status::need_more);
        f.feed(as_bytes(c2));
        REQUIRE(f.next(out) == status::frame);
        CHECK(as_text(out) == "abc");
        CHECK_FALSE(inside(out, as_bytes(c1)));
        CHECK_FALSE(inside(out, as_bytes(c2)));
        REQUIRE(f.next(out) == status::frame);
        CHECK(as_text(out) == "d");
        CHECK(out.data() == as_bytes(c2).data() + 2);
    }
    SECTION("after a terminator prefix held across chunks") {
        f.set_terminator(terminator::bytes("\r\n"));
        const std::string c1 = "ab\r";
        const std::string c2 = "\nxyz\r\nq\r\n";
        f.feed(as_bytes(c1));
        REQUIRE(f.next(out) == status::need_more);
        f.feed(as_bytes(c2));
        REQUIRE(f.next(out) == status::frame);
        CHECK(as_text(out) == "ab");
        CHECK_FALSE(inside(out, as_bytes(c1)));   // c1 may be gone once need_more was returned
        REQUIRE(f.next(out) == status::frame);
        CHECK(as_text(out) == "xyz");
        CHECK(out.data() == as_bytes(c2).data() + 1);
        REQUIRE(f.next(out) == status::frame);
        CHECK(as_text(out) == "q");
        CHECK(out.data() == as_bytes(c2).data() + 6);
    }
    SECTION("after a held prefix that turns out to be data") {
        f.set_terminator(terminator::bytes("\r\n"));
        const std::string c1 = "ab\r";
        const std::string c2 = "x\r\nyz\r\n";
        f.feed(as_bytes(c1));
        REQUIRE(f.next(out) == status::need_more);
        f.feed(as_bytes(c2));
        REQUIRE(f.next(out) == status::frame);
        CHECK(as_text(out) == "ab\rx");
        CHECK_FALSE(inside(out, as_bytes(c2)));
        REQUIRE(f.next(out) == status::frame);
        CHECK(as_text(out) == "yz");
        CHECK(out.data() == as_bytes(c2).data() + 3);
    }
    SECTION("a count body") {
        f.set_terminator(terminator::count(3));
        const std::string c = "abcdef";
        f.feed(as_bytes(c));
        REQUIRE(f.next(out) == status::frame);
        CHECK(out.data() == as_bytes(c).data());
        CHECK(out.size() == 3);
    }
}

// ---------------------------------------------------------------------------------------------
// 5. partial() and discard()
// ---------------------------------------------------------------------------------------------

TEST_CASE("framer: partial() is the frame in progress plus a held terminator prefix",
          "[framer]") {
    std::span<const std::byte> out;
    SECTION("a held prefix of a long terminator") {
        framer f;
        f.set_terminator(terminator::bytes("\r\n\r\n"));
        const std::vector<std::string> chunks = {"ab", "\r\n", "\r"};
        const run got = drive(f, chunks);
        CHECK(got.out.empty());
        CHECK(got.partial == "ab\r\n\r");
        CHECK(f.pending() == 3);   // the held "\r\n\r"
    }
    SECTION("a count body in progress") {
        framer f;
        f.set_terminator(terminator::count(5));
        const run got = drive(f, {"a", "bc"});
        CHECK(got.out.empty());
        CHECK(got.partial == "abc");
        CHECK(got.last == terminator::count(2));
    }
    SECTION("not the frame just handed out") {
        framer f;
        const std::string c1 = "ab";
        const std::string c2 = "c\nde";
        f.feed(as_bytes(c1));
        REQUIRE(f.next(out) == status::need_more);
        f.feed(as_bytes(c2));
        REQUIRE(f.next(out) == status::frame);
        CHECK(as_text(out) == "abc");
        CHECK(f.partial().empty());   // "abc" is delivered; "de" is not scanned yet
        REQUIRE(f.next(out) == status::need_more);
        CHECK(f.partial() == "de");
    }
    SECTION("a frame being skipped is not part of it") {
        framer f(2);
        f.set_terminator(terminator::bytes("\r\n"));
        const run got = drive(f, {"abcd\r"});
        REQUIRE(got.out.size() == 1);
        CHECK(got.out[0].st == status::too_long);
        CHECK(got.partial == "\r");
    }
}

TEST_CASE("framer: discard() drops the frame in progress, held bytes and the rest of the chunk",
          "[framer]") {
    std::span<const std::byte> out;
    framer f(4);
    f.set_terminator(terminator::bytes("\r\n"));

    SECTION("the rest of the chunk") {
        const std::string c = "one\r\ntwo\r\nthr";
        f.feed(as_bytes(c));
        REQUIRE(f.next(out) == status::frame);
        CHECK(as_text(out) == "one");
        f.discard();
        CHECK(f.pending() == 0);
        CHECK(f.next(out) == status::need_more);
        CHECK(f.partial().empty());
        const std::string d = "x\r\n";
        f.feed(as_bytes(d));
        REQUIRE(f.next(out) == status::frame);
        CHECK(as_text(out) == "x");
    }
    SECTION("the frame in progress and a held prefix") {
        const std::string c = "ab\r";
        f.feed(as_bytes(c));
        REQUIRE(f.next(out) == status::need_more);
        CHECK(f.partial() == "ab\r");
        f.discard();
        CHECK(f.partial().empty());
        CHECK(f.pending() == 0);
        const std::string d = "\nzz\r\n";   // with "\r" still held this would end "ab"
        f.feed(as_bytes(d));
        REQUIRE(f.next(out) == status::frame);
        CHECK(as_text(out) == "\nzz");
    }
    SECTION("a too-long frame being skipped") {
        const std::string c = "abcdefg";
        f.feed(as_bytes(c));
        REQUIRE(f.next(out) == status::too_long);
        f.discard();
        const std::string d = "xy\r\n";
        f.feed(as_bytes(d));
        REQUIRE(f.next(out) == status::frame);
        CHECK(as_text(out) == "xy");
    }
    CHECK(f.get_terminator() == terminator::bytes("\r\n"));   // untouched, as in asynchat
}

// ---------------------------------------------------------------------------------------------
// 6. The frame limit
// ---------------------------------------------------------------------------------------------

TEST_CASE("framer: a frame over max_frame is too_long, then skipped to its terminator",
          "[framer]") {
    const std::string stream = "abcd\nabcde\nxy\nabcdefghij\n\nz\nabcdefg";
    const std::vector<std::string> expected = {"abcd", "<too long>", "xy", "<too long>", "",
                                               "z", "<too long>"};
    for (const auto& chunks : every_chunking(stream)) {
        framer f(4);
        const run got = drive(f, chunks);
        INFO("chunks " << describe(chunks));
        REQUIRE(got.error.empty());
        CHECK(texts(got) == expected);
        CHECK(got.partial.empty());
    }
}

TEST_CASE("framer: with pieces on, a frame over max_frame comes in pieces, never too_long",
          "[framer]") {
    struct example {
        std::string terminator;
        std::string stream;
        std::vector<std::string> frames;
    };
    const std::vector<example> examples = {
        {"\n",
         "abcd\nabcdefghijk\nxy\n\nabcdefgh\n",
         {"abcd", "abcdefghijk", "xy", "", "abcdefgh"}},
        // A terminator prefix inside long data, and one split across chunks.
        {"\r\n",
         "ab\r\ncd\ref\rgh\r\r\nlonger line\r\n",
         {"ab", "cd\ref\rgh\r", "longer line"}},
    };
    for (const auto& ex : examples) {
        for (const auto& chunks : every_chunking(ex.stream)) {
            framer f(4);
            f.set_pieces(true);
            f.set_terminator(terminator::bytes(ex.terminator));
            const run got = drive(f, chunks);
            INFO("terminator " << describe(std::vector<std::string>{ex.terminator}) << ", chunks "
                               << describe(chunks));
            REQUIRE(got.error.empty());
            std::vector<std::string> frames;
            std::string joined;
            std::size_t longest_chunk = 0;
            for (const auto& c : chunks) {
                longest_chunk = std::max(longest_chunk, c.size());
            }
            for (const auto& d : got.out) {
                REQUIRE(d.st != status::too_long);
                joined += d.data;
                if (d.st == status::piece) {
                    CHECK(d.data.size() >= 4);
                    CHECK(d.data.size() < 4 + longest_chunk + ex.terminator.size());
                } else {
                    frames.push_back(std::exchange(joined, {}));
                }
            }
            CHECK(frames == ex.frames);
            CHECK(got.partial.empty());
        }
    }
}

TEST_CASE("framer: too_long comes as soon as the limit is passed, not at the terminator",
          "[framer]") {
    std::span<const std::byte> out;
    framer f(4);
    const std::vector<std::string> chunks = {"abc", "de", "fgh", "ij\nok\n"};
    f.feed(as_bytes(chunks[0]));
    CHECK(f.next(out) == status::need_more);
    f.feed(as_bytes(chunks[1]));
    CHECK(f.next(out) == status::too_long);
    CHECK(f.next(out) == status::need_more);
    CHECK(f.partial().empty());   // nothing of the long frame is kept
    f.feed(as_bytes(chunks[2]));
    CHECK(f.next(out) == status::need_more);
    CHECK(f.partial().empty());
    f.feed(as_bytes(chunks[3]));
    REQUIRE(f.next(out) == status::frame);
    CHECK(as_text(out) == "ok");
    CHECK(out.data() == as_bytes(chunks[3]).data() + 3);
    CHECK(f.next(out) == status::need_more);
}

TEST_CASE("framer: a count body over max_frame is too_long where it ends; the terminator "
          "set then applies after the body", "[framer]") {
    // A header line, a 10-byte body over the limit, then lines again: what a RESP or HTTP
    // handler does. The handler learns of the long body where found_terminator would be.
    const std::string stream = "10\n0123456789ok\nnext\n";
    for (const auto& chunks : every_chunking(stream)) {
        framer f(4);
        const run got = drive(f, chunks, [](framer& fr, const delivery& d) {
            if (d.st == status::frame && d.data == "10") {
                fr.set_terminator(terminator::count(10));
            } else if (d.st == status::too_long) {
                CHECK_FALSE(fr.get_terminator().active());  // the count ran out
                fr.set_terminator(terminator::bytes("\n"));
            }
        });
        INFO("chunks " << describe(chunks));
        REQUIRE(got.error.empty());
        CHECK(texts(got) == std::vector<std::string>{"10", "<too long>", "ok", "next"});
        CHECK(got.partial.empty());
    }
}

TEST_CASE("framer: held terminator bytes do not count against max_frame", "[framer]") {
    framer f(3);
    f.set_terminator(terminator::bytes("\r\n\r\n"));
    const run got = drive(f, {"abc\r\n\r", "\nd\r\n\r\n"});
    CHECK(texts(got) == std::vector<std::string>{"abc", "d"});
}

TEST_CASE("framer: max_frame 0 is unlimited", "[framer]") {
    framer f(0);
    CHECK(f.max_frame() == 0);
    std::string big(100000, 'x');
    std::vector<std::string> chunks;
    for (std::size_t at = 0; at < big.size(); at += 4096) {
        chunks.push_back(big.substr(at, 4096));
    }
    chunks.emplace_back("\n");
    const run got = drive(f, chunks);
    REQUIRE(got.out.size() == 1);
    CHECK(got.out[0].st == status::frame);
    CHECK(got.out[0].data == big);

    f.set_max_frame(10);
    const run limited = drive(f, chunks);
    CHECK(texts(limited) == std::vector<std::string>{"<too long>"});
}

// ---------------------------------------------------------------------------------------------
// 7. Property: the stream-level model against random chunkings
// ---------------------------------------------------------------------------------------------

namespace {

std::string describe(const run& r) {
    std::string out;
    for (const delivery& d : r.out) {
        out += " ";
        if (d.st == status::too_long) {
            out += "<too long>";
            continue;
        }
        out += (d.eager ? "E" : "F") + escaped(d.data);
        out += d.offset ? "@" + std::to_string(*d.offset) : std::string("@copy");
    }
    return out + " | partial " + escaped(r.partial) + ", last " + describe(r.last);
}

void apply(const script& sc, std::size_t frame_index, framer& f) {
    if (frame_index < sc.actions.size() && sc.actions[frame_index]) {
        f.set_terminator(*sc.actions[frame_index]);
    }
}

/// Compares one run with the model; returns what is wrong, or an empty string.
std::string check(const run& got, const expectation& want, const script& sc,
                  const std::vector<std::string>& chunks) {
    if (!got.error.empty()) {
        return got.error;
    }
    // The frames, in order; eager deliveries joined (their cut depends on the chunking).
    std::size_t e = 0;
    std::size_t eager_at = 0;   // stream offset of the next eager byte
    for (std::size_t i = 0; i < got.out.size(); ++i) {
        const delivery& d = got.out[i];
        if (d.straddles) {
            return fmt::format("delivery {} overlaps a chunk without lying inside it", i);
        }
        if (e >= want.events.size()) {
            return fmt::format("delivery {} is one too many", i);
        }
        const expected_event& w = want.events[e];
        const std::size_t chunk_begin = got.chunk_begin[d.chunk];
        const std::size_t chunk_end = chunk_begin + chunks[d.chunk].size();
        std::size_t begin = w.begin;
        if (w.k == expected_event::kind::eager) {
            if (d.st != status::frame || !d.eager || d.data.empty()) {
                return fmt::format("delivery {}: expected a non-empty eager frame", i);
            }
            if (i == 0 || !got.out[i - 1].eager) {
                eager_at = w.begin;
            }
            begin = eager_at;
            if (std::string_view(w.data).substr(begin - w.begin, d.data.size()) != d.data) {
                return fmt::format("delivery {}: eager data differs", i);
            }
            eager_at += d.data.size();
            if (eager_at == w.begin + w.data.size()) {
                ++e;
            }
            if (d.pending != chunk_end - eager_at) {
                return fmt::format("delivery {}: pending() {}, expected {}", i, d.pending,
                                   chunk_end - eager_at);
            }
        } else if (w.k == expected_event::kind::too_long) {
            if (d.st != status::too_long) {
                return fmt::format("delivery {}: expected too_long", i);
            }
            ++e;
            continue;
        } else {
            if (d.st != status::frame || d.eager || d.data != w.data || d.seen != w.seen) {
                return fmt::format("delivery {}: expected frame {} with {}", i,
                                   escaped(w.data), describe(w.seen));
            }
            if (d.pending != chunk_end - w.end) {
                return fmt::format("delivery {}: pending() {}, expected {}", i, d.pending,
                                   chunk_end - w.end);
            }
            ++e;
        }
        // Memory bound: nothing the framer holds is over the limit (eager views excepted).
        if (sc.max_frame != 0 && !d.eager && d.data.size() > sc.max_frame) {
            return fmt::format("delivery {}: a frame of {} bytes passed max_frame", i,
                               d.data.size());
        }
        // Zero copy: a view into the chunk exactly when the frame lies within it and the chunk
        // is still being scanned (after need_more the caller may have freed it).
        const bool within =
            !d.consumed && begin >= chunk_begin && begin + d.data.size() <= chunk_end;
        const std::optional<std::size_t> where =
            within && !d.data.empty() ? std::optional(begin) : std::nullopt;
        if (!d.data.empty() && d.offset != where) {
            return fmt::format("delivery {}: points {}, expected {}", i,
                               d.offset ? fmt::format("at {}", *d.offset) : "to a copy",
                               where ? fmt::format("at {}", *where) : "to a copy");
        }
    }
    if (e != want.events.size()) {
        return fmt::format("{} deliveries missing", want.events.size() - e);
    }
    if (got.partial != want.partial) {
        return "partial() differs";
    }
    if (sc.max_frame != 0 && got.partial.size() >= sc.max_frame + 4) {
        return "partial() passed max_frame plus a terminator";
    }
    if (got.last != want.last) {
        return "the last terminator differs";
    }
    return {};
}

}  // namespace

TEST_CASE("property: every chunking gives the stream-level model's frames", "[framer]") {
    const std::uint32_t seed = 0x5eedf001;
    random_source rnd{std::mt19937(seed)};
    std::size_t runs = 0;
    std::size_t frames = 0;
    std::size_t too_long = 0;
    std::size_t views = 0;
    for (int n = 0; n < 1000; ++n) {
        const script sc = rnd.any_script();
        const std::string stream = rnd.text(rnd.below(49));
        const expectation want = expect(stream, sc);

        std::vector<std::vector<std::string>> chunkings = every_chunking(stream);
        for (int i = 0; i < 4; ++i) {
            chunkings.push_back(rnd.chunks(stream, 8));
        }
        for (const std::vector<std::string>& chunks : chunkings) {
            framer f(sc.max_frame);
            f.set_terminator(sc.first);
            std::size_t index = 0;
            const run got = drive(f, chunks, [&](framer& fr, const delivery& d) {
                if (d.st == status::frame && !d.eager) {
                    apply(sc, index++, fr);
                }
            });
            const std::string wrong = check(got, want, sc, chunks);
            ++runs;
            for (const delivery& d : got.out) {
                frames += d.st == status::frame ? 1 : 0;
                too_long += d.st == status::too_long ? 1 : 0;
                views += d.offset ? 1 : 0;
            }
            if (!wrong.empty()) {
                INFO("seed " << seed << ", case " << n << ": " << describe(sc));
                INFO("stream " << escaped(stream) << ", chunks " << describe(chunks));
                INFO("model:" << describe(want));
                INFO("got:  " << describe(got));
                FAIL(wrong);
            }
        }
    }
    INFO(runs << " runs, " << frames << " frames, " << too_long << " too_long, " << views
              << " views");
    // The generator must reach every path it is meant to test.
    CHECK(too_long > 1000);
    CHECK(views > 10000);
    CHECK(frames > 50000);
}

TEST_CASE("property: a terminator changed between reads applies from the first byte not "
          "scanned yet",
          "[framer]") {
    // asynchat §4.6: held prefix bytes are rescanned under the new terminator. The model
    // scans up to the end of the chunk, takes the change, and goes on. The framer is asked
    // for frames right after the change (the held bytes alone are rescanned), or only once the
    // next chunk is fed (they are rescanned in front of it).
    const std::uint32_t seed = 0x5eedf002;
    random_source rnd{std::mt19937(seed)};
    std::size_t held_changes = 0;
    for (int n = 0; n < 1000; ++n) {
        script sc = rnd.any_script();
        sc.max_frame = 0;   // what a change while skipping means is not defined
        const std::string stream = rnd.text(rnd.below(41));
        const terminator change = rnd.any_terminator();

        std::vector<std::vector<std::string>> chunkings;
        for (std::size_t at = 0; at <= stream.size(); ++at) {
            chunkings.push_back({stream.substr(0, at), stream.substr(at)});
        }
        for (int i = 0; i < 4; ++i) {
            chunkings.push_back(rnd.chunks(stream, 8));
        }
        for (const std::vector<std::string>& chunks : chunkings) {
            if (chunks.empty()) {
                continue;   // an empty stream cut at random: no read to change it after
            }
            const std::size_t when = rnd.below(chunks.size());
            // After the last chunk there is no next one to bring the held bytes in.
            const bool ask_at_once = rnd.below(2) == 0 || when + 1 == chunks.size();
            std::size_t q = 0;
            for (std::size_t i = 0; i <= when; ++i) {
                q += chunks[i].size();
            }
            model m{stream, sc};
            m.advance(q);
            held_changes += m.c < q ? 1 : 0;
            m.out.last = change;
            m.advance(stream.size());
            const expectation want = m.finish();

            framer f(0);
            f.set_terminator(sc.first);
            std::size_t index = 0;
            const run got = drive(
                f, chunks,
                [&](framer& fr, const delivery& d) {
                    if (d.st == status::frame && !d.eager) {
                        apply(sc, index++, fr);
                    }
                },
                [&](framer& fr, std::size_t chunk) {
                    if (chunk != when) {
                        return false;
                    }
                    fr.set_terminator(change);
                    return ask_at_once;
                });
            const std::string wrong = check(got, want, sc, chunks);
            if (!wrong.empty()) {
                INFO("seed " << seed << ", case " << n << ": " << describe(sc));
                INFO("after chunk " << when << ": " << describe(change)
                                    << (ask_at_once ? ", then next()" : ""));
                INFO("stream " << escaped(stream) << ", chunks " << describe(chunks));
                INFO("model:" << describe(want));
                INFO("got:  " << describe(got));
                FAIL(wrong);
            }
        }
    }
    INFO(held_changes << " changes with held bytes");
    CHECK(held_changes > 2000);
}
