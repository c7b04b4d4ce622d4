// SPDX-License-Identifier: MIT
// tests/chat/test_terminator.cpp — the terminator scanner against asynchat, without sockets.
//
// Sections: 1 helpers (a `session` drives feed() as a channel does: held bytes go in front of
// the next read); 2 find_prefix_at_end; 3 the terminator value; 4 one scan step; 5 the tables
// of docs/asynchat-semantics.md §4.3–4.6; 6 CPython's test_asynchat cases; 7 property: the
// stream-level model (§4.7 item 6) against random chunkings; 8 differential against the
// machine's Python asynchat. Invariant: every expectation is asynchat 3.11's observable
// behaviour; random cases use fixed seeds and print what is needed to replay them.
#include "chat/terminator.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <concepts>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <unistd.h>

#include "tests/chat/describe.hpp"
#include "tests/chat/script_model.hpp"
#include "tests/support/support.hpp"

using ringchat::chat::feed;
using ringchat::chat::find_prefix_at_end;
using ringchat::chat::scan;
using ringchat::chat::scan_step;
using ringchat::chat::terminator;
using ringchat::chat::terminator_kind;

// ---------------------------------------------------------------------------------------------
// 1. Helpers
// ---------------------------------------------------------------------------------------------

namespace {

using ringchat::test::describe;
using ringchat::test::escaped;
using ringchat::test::random_source;
using ringchat::test::script;  // its max_frame is not used here

std::span<const std::byte> as_bytes(std::string_view s) { return ringchat::test::bytes(s); }
std::string as_text(std::span<const std::byte> b) { return ringchat::test::text(b); }

/// What a handler sees: data (collect_incoming_data) or a found_terminator call, with the
/// terminator in force inside it.
struct event {
    bool found = false;
    std::string data;
    terminator seen;

    friend bool operator==(const event&, const event&) = default;
};

/// The trace token of one event: C'data', F'terminator' (string) or F#n (count).
std::string token(const event& e) {
    if (!e.found) {
        return "C" + escaped(e.data);
    }
    if (e.seen.kind() == terminator_kind::count) {
        return fmt::format("F#{}", e.seen.remaining());
    }
    if (e.seen.kind() == terminator_kind::bytes) {
        return "F" + escaped(e.seen.text());
    }
    return "F-";
}

/// Appends data to a coalesced event list: consecutive data runs become one.
void add_data(std::vector<event>& events, std::string_view data) {
    if (data.empty()) {
        return;
    }
    if (!events.empty() && !events.back().found) {
        events.back().data += data;
        return;
    }
    events.push_back({false, std::string(data), {}});
}

std::vector<event> coalesce(const std::vector<event>& events) {
    std::vector<event> out;
    for (const event& e : events) {
        if (e.found) {
            out.push_back(e);
        } else {
            add_data(out, e.data);
        }
    }
    return out;
}

/// Drives feed() as a channel does: keeps the held tail and puts it in front of each read.
struct session {
    explicit session(terminator first, std::function<void(session&)> handler = [](session&) {})
        : t(std::move(first)), on_found(std::move(handler)) {}

    terminator t;
    std::function<void(session&)> on_found;   // found_terminator's reaction; may change t
    std::vector<event> events;                // every call, one per collect (not coalesced)
    std::vector<std::size_t> read_starts;     // index into events where each read began
    std::string held;                         // what feed() held back after the last read
    std::string record;                       // data since the last found, for handlers
    std::size_t founds = 0;                   // found calls so far

    void read(std::string_view chunk) {
        read_starts.push_back(events.size());
        const std::string buffer = held + std::string(chunk);
        std::size_t founds_here = 0;
        const std::size_t keep = feed(
            as_bytes(buffer), t,
            [&](std::span<const std::byte> data) {
                events.push_back({false, as_text(data), {}});
                record += as_text(data);
            },
            [&] {
                // Each found consumes at least one byte: a broken scan() fails, never hangs.
                if (++founds_here > buffer.size()) {
                    throw std::logic_error("found_terminator without progress");
                }
                events.push_back({true, {}, t});
                on_found(*this);
                ++founds;
                record.clear();
            });
        held = buffer.substr(buffer.size() - keep);
    }

    /// Per read, its tokens joined by spaces ("-" for a read without events), reads by " | ".
    std::string trace() const {
        std::string out;
        for (std::size_t r = 0; r < read_starts.size(); ++r) {
            const std::size_t end = r + 1 < read_starts.size() ? read_starts[r + 1] : events.size();
            std::string one;
            for (std::size_t i = read_starts[r]; i < end; ++i) {
                one += (one.empty() ? "" : " ") + token(events[i]);
            }
            out += (r == 0 ? "" : " | ") + (one.empty() ? std::string("-") : one);
        }
        return out;
    }
};

std::vector<std::string> chunks_of(std::string_view stream, std::size_t size) {
    std::vector<std::string> out;
    for (std::size_t at = 0; at < stream.size(); at += size) {
        out.emplace_back(stream.substr(at, size));
    }
    return out;
}

}  // namespace

namespace Catch {
template <>
struct StringMaker<scan_step> {
    static std::string convert(const scan_step& s) {
        return fmt::format("{{deliver {}, skip {}, found {}}}", s.deliver, s.skip, s.found);
    }
};
template <>
struct StringMaker<event> {
    static std::string convert(const event& e) { return token(e); }
};
}  // namespace Catch

// ---------------------------------------------------------------------------------------------
// 2. find_prefix_at_end (§3)
// ---------------------------------------------------------------------------------------------

TEST_CASE("find_prefix_at_end gives the longest proper prefix at the end", "[terminator]") {
    struct row {
        std::string_view haystack;
        std::string_view needle;
        std::size_t expected;
    };
    const auto r = GENERATE(values<row>({
        {"qwerty\r", "\r\n", 1},      // CPython's test_find_prefix_at_end
        {"qwertydkjf", "\r\n", 0},    // CPython's test_find_prefix_at_end
        {"abab", "abac", 2},          // 'ab'; 'aba' is not a suffix
        {"xaa", "aab", 2},
        {"aa", "aab", 2},             // the whole haystack
        {"qwerty\r\n", "\r\n", 0},    // the full needle is never considered
        {"xaa", "aa", 1},
        {"", "\r\n", 0},
        {"a", "abc", 1},
        {"abc", "abcd", 3},
        {"zab", "abab", 2},
        {"a", "a", 0},                // one-byte needle: never holds
        {"abc", "c", 0},
        {"abc", "", 0},               // asynchat: -1, unreachable from handle_read
    }));
    CAPTURE(escaped(r.haystack), escaped(r.needle));
    CHECK(find_prefix_at_end(r.haystack, r.needle) == r.expected);
    CHECK(find_prefix_at_end(as_bytes(r.haystack), as_bytes(r.needle)) == r.expected);
}

// ---------------------------------------------------------------------------------------------
// 3. The terminator value (§2)
// ---------------------------------------------------------------------------------------------

static_assert(std::regular<terminator>);
static_assert(std::is_nothrow_move_constructible_v<terminator>);
static_assert(noexcept(scan(std::span<const std::byte>(), std::declval<terminator&>())));

TEST_CASE("a terminator is none, a count or a byte string", "[terminator]") {
    const terminator none;
    CHECK(none.kind() == terminator_kind::none);
    CHECK(none == terminator::none());
    CHECK_FALSE(none.active());
    CHECK(none.remaining() == 0);
    CHECK(none.text().empty());

    const terminator four = terminator::count(4);
    CHECK(four.kind() == terminator_kind::count);
    CHECK(four.remaining() == 4);
    CHECK(four.active());
    CHECK(four.text().empty());

    const terminator crlf = terminator::bytes("\r\n");
    CHECK(crlf.kind() == terminator_kind::bytes);
    CHECK(crlf.text() == "\r\n");
    CHECK(crlf.active());
    CHECK(crlf.remaining() == 0);
    CHECK(terminator::bytes(as_bytes("\r\n")) == crlf);
    CHECK(terminator::bytes(std::string_view("a\0b", 3)).text().size() == 3);

    CHECK(four != terminator::count(5));
    CHECK(crlf != terminator::bytes("\n"));
    CHECK(terminator::count(0) != none);          // get_terminator() shows 0, not None
    CHECK(terminator::bytes("") != none);         // and b'', not None
    CHECK(terminator::bytes("") != terminator::count(0));
}

TEST_CASE("falsy terminators are inactive: count 0 and the empty string", "[terminator]") {
    CHECK_FALSE(terminator::count(0).active());
    CHECK(terminator::count(0).kind() == terminator_kind::count);
    CHECK_FALSE(terminator::bytes("").active());
    CHECK(terminator::bytes("").kind() == terminator_kind::bytes);
}

TEST_CASE("a negative count is rejected as asynchat's set_terminator does", "[terminator]") {
    CHECK_THROWS_MATCHES(terminator::checked_count(-1), std::invalid_argument,
                         Catch::Message("the number of received bytes must be positive"));
    CHECK_THROWS_AS(terminator::checked_count(std::numeric_limits<std::int64_t>::min()),
                    std::invalid_argument);
    CHECK(terminator::checked_count(0) == terminator::count(0));   // accepted, though "positive"
    CHECK(terminator::checked_count(6) == terminator::count(6));
}

TEST_CASE("assign_bytes and assign_count equal bytes() and count(), from any kind",
          "[terminator]") {
    const terminator kinds[] = {terminator::none(), terminator::count(7),
                                terminator::bytes("\r\n"), terminator::bytes(std::string(40, 'x'))};
    for (const terminator& from : kinds) {
        terminator t = from;
        t.assign_bytes("\n");
        CHECK(t == terminator::bytes("\n"));
        t = from;
        t.assign_bytes(std::string_view("a\0b", 3));
        CHECK(t == terminator::bytes(std::string_view("a\0b", 3)));
        t = from;
        t.assign_bytes("");
        CHECK(t == terminator::bytes(""));
        t = from;
        t.assign_count(12);
        CHECK(t == terminator::count(12));
        t = from;
        t.assign_count(0);
        CHECK(t == terminator::count(0));
    }
    terminator self = terminator::bytes("abcdef");
    self.assign_bytes(self.text().substr(2));  // its own bytes: std::string::assign copes
    CHECK(self == terminator::bytes("cdef"));
    CHECK(terminator::checked(5) == 5);
    CHECK_THROWS_AS(terminator::checked(-1), std::invalid_argument);
}

TEST_CASE("a terminator switched between a string and counts is only what it was set to last",
          "[terminator]") {
    // assign_count() keeps the string's bytes for the next assign_bytes(): none of it shows.
    terminator t = terminator::bytes("\r\n");
    t.assign_count(5);
    CHECK(t == terminator::count(5));
    CHECK(t.text().empty());
    CHECK(t.kind() == terminator_kind::count);
    const terminator copy = t;
    CHECK(copy == terminator::count(5));
    CHECK(copy.text().empty());
    // A count is counted, not searched for the old string.
    const auto in = as_bytes("a\r\nbcdef");
    const scan_step step = scan(in, t);
    CHECK(step.deliver == 5);
    CHECK(step.found);
    CHECK(t == terminator::count(0));
    CHECK_FALSE(t.active());
    t.assign_bytes("\r\n");
    CHECK(t == terminator::bytes("\r\n"));
    t.assign_count(2);
    t.assign_bytes("\n");
    CHECK(t == terminator::bytes("\n"));
    CHECK(t.text() == "\n");
    CHECK(t.remaining() == 0);
    t.assign_count(3);
    t.assign_bytes("");
    CHECK(t == terminator::bytes(""));
    CHECK_FALSE(t.active());
}

// ---------------------------------------------------------------------------------------------
// 4. One scan step (§4.2)
// ---------------------------------------------------------------------------------------------

TEST_CASE("scan takes exactly one step of handle_read's loop", "[terminator]") {
    struct row {
        std::string_view in;
        terminator before;
        scan_step expected;
        terminator after;
    };
    const auto b = [](std::string_view s) { return terminator::bytes(s); };
    const auto n = [](std::uint64_t c) { return terminator::count(c); };
    const auto r = GENERATE_COPY(values<row>({
        {"", b("\r\n"), {0, 0, false}, b("\r\n")},       // the loop does not run
        {"", n(5), {0, 0, false}, n(5)},
        {"", terminator(), {0, 0, false}, terminator()},
        {"abc", terminator(), {3, 0, false}, terminator()},
        {"ab\r\n", n(0), {4, 0, false}, n(0)},           // 0 is falsy: none
        {"ab\r\n", b(""), {4, 0, false}, b("")},         // b'' is falsy: none
        {"abc", n(5), {3, 0, false}, n(2)},              // counts down
        {"abc", n(3), {3, 0, true}, n(0)},               // exactly on the boundary
        {"abc", n(2), {2, 0, true}, n(0)},
        {"ab\ncd\n", b("\n"), {2, 1, true}, b("\n")},    // leftmost match
        {"\r\nab", b("\r\n"), {0, 2, true}, b("\r\n")},  // empty data before it
        {"qwerty\r\n", b("\r\n"), {6, 2, true}, b("\r\n")},
        {"abc\r", b("\r\n"), {3, 0, false}, b("\r\n")},  // '\r' held
        {"\r", b("\r\n"), {0, 0, false}, b("\r\n")},     // whole buffer is a prefix
        {"abc", b("\r\n"), {3, 0, false}, b("\r\n")},
        {"abc", b("\n"), {3, 0, false}, b("\n")},        // one byte: nothing held
        {"abab", b("abac"), {2, 0, false}, b("abac")},   // longest prefix, not shortest
        {"aaab", b("aab"), {1, 3, true}, b("aab")},
        {"aaaaa", b("aa"), {0, 2, true}, b("aa")},
        {std::string_view("a\0b", 3), b(std::string_view("\0", 1)), {1, 1, true},
         b(std::string_view("\0", 1))},
        {"a\xff", b("\xff\xfe"), {1, 0, false}, b("\xff\xfe")},
    }));
    CAPTURE(escaped(r.in), r.before);
    terminator t = r.before;
    CHECK(scan(as_bytes(r.in), t) == r.expected);
    CHECK(t == r.after);
}

// ---------------------------------------------------------------------------------------------
// 5. The tables of §4.3–4.6, through feed()
// ---------------------------------------------------------------------------------------------

namespace {

struct reads_row {
    terminator t;
    std::vector<std::string> reads;
    std::string trace;
    std::string held;
    terminator after;
};

void check_reads(const reads_row& r) {
    CAPTURE(r.t, r.reads);
    session s{r.t};
    for (const std::string& chunk : r.reads) {
        s.read(chunk);
    }
    CHECK(s.trace() == r.trace);
    CHECK(s.held == r.held);
    CHECK(s.t == r.after);
}

}  // namespace

TEST_CASE("feed collects non-empty runs, finds, and returns the held count", "[terminator]") {
    terminator t = terminator::bytes("\r\n");
    std::vector<std::string> collected;
    int found = 0;
    const auto collect = [&](std::span<const std::byte> data) {
        collected.push_back(as_text(data));
    };
    const auto on_found = [&] { ++found; };
    CHECK(feed(as_bytes("abc\r"), t, collect, on_found) == 1);
    CHECK(feed(as_bytes("\r"), t, collect, on_found) == 1);            // nothing to collect
    CHECK(feed(as_bytes(""), t, collect, on_found) == 0);
    CHECK(feed(as_bytes("\r\nx\r\n"), t, collect, on_found) == 0);
    CHECK(collected == std::vector<std::string>{"abc", "x"});
    CHECK(found == 2);

    // Unlike asynchat (which shows 10 there), the count is already down when data arrives.
    terminator count = terminator::count(10);
    feed(as_bytes("abc"), count, [&](std::span<const std::byte>) {
        CHECK(count == terminator::count(7));
    }, [] {});
}

TEST_CASE("a terminator split across reads is held, then found (§4.4, §4.8)", "[terminator]") {
    const auto b = [](std::string_view s) { return terminator::bytes(s); };
    check_reads({b("ab"), {"xa", "by"}, R"(C'x' | F'ab' C'y')", "", b("ab")});
    check_reads({b("\r\n"), {"abc\r", "x\r\n"}, R"(C'abc' | C'\rx' F'\r\n')", "", b("\r\n")});
    check_reads({b("\r\n"), {"\r", "\r", "\n"}, R"(- | C'\r' | F'\r\n')", "", b("\r\n")});
    check_reads({b("abac"), {"abab", "ac"}, R"(C'ab' | F'abac')", "", b("abac")});
    // End of stream: the held prefix is never delivered and no found is made up.
    check_reads({b("\r\n"), {"abc\r", ""}, R"(C'abc' | -)", "\r", b("\r\n")});
    check_reads({b("\r\n\r\n"), {"x\r\n\r"}, R"(C'x')", "\r\n\r", b("\r\n\r\n")});
}

TEST_CASE("several terminators in one read: leftmost, non-overlapping (§4.5)", "[terminator]") {
    const auto b = [](std::string_view s) { return terminator::bytes(s); };
    check_reads({b("\n"), {"a\nbb\nccc\nd"}, R"(C'a' F'\n' C'bb' F'\n' C'ccc' F'\n' C'd')", "",
                 b("\n")});
    check_reads({b("\n"), {"\n\n\n"}, R"(F'\n' F'\n' F'\n')", "", b("\n")});
    check_reads({b("aab"), {"aaab"}, R"(C'a' F'aab')", "", b("aab")});
    check_reads({b("aa"), {"aaaaa"}, R"(F'aa' F'aa')", "a", b("aa")});
    check_reads({b("abab"), {"ababab"}, R"(F'abab')", "ab", b("abab")});
}

TEST_CASE("a count counts down across reads and then stays 0 (§4.3)", "[terminator]") {
    session s{terminator::count(10)};
    s.read("abc");
    CHECK(s.t == terminator::count(7));
    s.read("defg");
    CHECK(s.t == terminator::count(3));
    s.read("hijkl");   // found in the read that brings the 10th byte; the rest in none mode
    CHECK(s.t == terminator::count(0));
    s.read("more\r\n");
    CHECK(s.trace() == R"(C'abc' | C'defg' | C'hij' F#0 C'kl' | C'more\r\n')");
    CHECK(s.t == terminator::count(0));
    CHECK(s.held.empty());

    check_reads({terminator::count(3), {"abc"}, R"(C'abc' F#0)", "", terminator::count(0)});
}

TEST_CASE("none, count 0 and the empty string collect everything", "[terminator]") {
    const auto t = GENERATE(terminator(), terminator::count(0), terminator::bytes(""));
    check_reads({t, {"ab\r\n", "\r", "cd\n"}, R"(C'ab\r\n' | C'\r' | C'cd\n')", "", t});
}

TEST_CASE("found_terminator switches the terminator for the rest of the buffer (§4.6)",
          "[terminator]") {
    const auto switch_to = [](terminator next) {
        return [next](session& s) {
            if (s.founds == 0) {
                s.t = next;
            }
        };
    };
    session to_count{terminator::bytes("\n"), switch_to(terminator::count(5))};
    to_count.read("h\nab");
    to_count.read("cdefg");
    CHECK(to_count.trace() == R"(C'h' F'\n' C'ab' | C'cde' F#0 C'fg')");

    session to_none{terminator::bytes("\n"), switch_to(terminator())};
    to_none.read("a\nb\nc");
    CHECK(to_none.trace() == R"(C'a' F'\n' C'b\nc')");

    session to_longer{terminator::bytes("\n"), switch_to(terminator::bytes("\r\n\r\n"))};
    to_longer.read("a\nb\r\n\r");
    CHECK(to_longer.trace() == R"(C'a' F'\n' C'b')");
    CHECK(to_longer.held == "\r\n\r");

    // Between reads, a held prefix is rescanned under the new terminator.
    session between{terminator::bytes("\r\n")};
    between.read("abc\r");
    between.t = terminator();
    between.read("x");
    CHECK(between.trace() == R"(C'abc' | C'\rx')");
}

namespace {

/// §4.6's HTTP-ish handler: a blank line starts a 4-byte body, then lines again.
void http_handler(session& s) {
    if (s.t.kind() == terminator_kind::count) {
        s.t = terminator::bytes("\r\n");
    } else if (s.record.empty()) {
        s.t = terminator::count(4);
    }
}

}  // namespace

TEST_CASE("the HTTP-ish sequence of §4.6, in one read and in every chunking", "[terminator]") {
    const std::string stream = "H1\r\nLen\r\n\r\nBODYtail\r\n";
    session one{terminator::bytes("\r\n"), http_handler};
    one.read(stream);
    CHECK(one.trace() ==
          R"(C'H1' F'\r\n' C'Len' F'\r\n' F'\r\n' C'BODY' F#0 C'tail' F'\r\n')");
    CHECK(one.t == terminator::bytes("\r\n"));

    for (std::size_t size = 1; size <= stream.size(); ++size) {
        CAPTURE(size);
        session s{terminator::bytes("\r\n"), http_handler};
        for (const std::string& chunk : chunks_of(stream, size)) {
            s.read(chunk);
        }
        CHECK(coalesce(s.events) == one.events);
        CHECK(s.held.empty());
    }
    for (std::size_t at = 0; at <= stream.size(); ++at) {
        CAPTURE(at);
        session s{terminator::bytes("\r\n"), http_handler};
        s.read(stream.substr(0, at));
        s.read(stream.substr(at));
        CHECK(coalesce(s.events) == one.events);
        CHECK(s.held.empty());
    }
}

// ---------------------------------------------------------------------------------------------
// 6. CPython's test_asynchat, at this level (echo_client, every read size 1..N)
// ---------------------------------------------------------------------------------------------

namespace {

/// CPython's echo_client: collect appends to a buffer; found moves it into `contents`.
struct echo_result {
    std::vector<std::string> contents;
    std::string buffer;
    std::string held;
};

echo_result echo_client(terminator t, std::string_view stream, std::size_t read_size) {
    std::vector<std::string> contents;
    session s(std::move(t), [&contents](session& self) { contents.push_back(self.record); });
    for (const std::string& chunk : chunks_of(stream, read_size)) {
        s.read(chunk);
    }
    return {contents, s.record, s.held};
}

}  // namespace

TEST_CASE("test_line_terminator1/2/3: '\\n', '\\r\\n', 'qqq' at every read size", "[terminator]") {
    const std::string term = GENERATE(as<std::string>(), "\n", "\r\n", "qqq");
    const std::string stream = "hello world" + term + "I'm not dead yet!" + term;
    for (std::size_t size = 1; size <= stream.size(); ++size) {
        CAPTURE(escaped(term), size);
        const echo_result c = echo_client(terminator::bytes(term), stream, size);
        CHECK(c.contents == std::vector<std::string>{"hello world", "I'm not dead yet!"});
        CHECK(c.buffer.empty());
        CHECK(c.held.empty());
    }
}

TEST_CASE("test_numeric_terminator1/2 and test_none_terminator", "[terminator]") {
    const std::string data = "hello world, I'm not dead yet!\n";
    for (std::size_t size = 1; size <= data.size(); ++size) {
        CAPTURE(size);
        for (const std::size_t n : {1, 6}) {
            const echo_result c = echo_client(terminator::count(n), data, size);
            CHECK(c.contents == std::vector<std::string>{data.substr(0, n)});
            CHECK(c.buffer == data.substr(n));   // the count stays 0: none mode after it
        }
        const echo_result none = echo_client(terminator(), data, size);
        CHECK(none.contents.empty());
        CHECK(none.buffer == data);
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Property: the stream-level model (§4.7 item 6) against random chunkings
// ---------------------------------------------------------------------------------------------

namespace {

void apply(const script& sc, std::size_t found_index, terminator& t) {
    if (found_index < sc.actions.size() && sc.actions[found_index]) {
        t = *sc.actions[found_index];
    }
}

std::string describe(const std::vector<std::string>& reads) {
    std::string out;
    for (const std::string& r : reads) {
        out += (out.empty() ? "" : " ") + escaped(r);
    }
    return out;
}

struct outcome {
    std::vector<event> events;   // coalesced
    std::string held;
    terminator last;
};

/// The declarative model, written from the document rather than from handle_read: a cursor
/// `p` over the whole stream and the terminator in force.
outcome model(std::string_view stream, const script& sc) {
    outcome out{{}, {}, sc.first};
    terminator& t = out.last;
    std::size_t p = 0;
    std::size_t founds = 0;
    while (true) {
        const std::string_view rest = stream.substr(p);
        if (!t.active()) {
            add_data(out.events, rest);   // every byte from p on is data, forever
            return out;
        }
        if (t.kind() == terminator_kind::count) {
            if (rest.size() < t.remaining()) {
                add_data(out.events, rest);
                t = terminator::count(t.remaining() - rest.size());
                return out;
            }
            add_data(out.events, rest.substr(0, t.remaining()));
            p += t.remaining();
            t = terminator::count(0);
        } else {
            const std::string_view text = t.text();
            const std::size_t at = rest.find(text);
            if (at == std::string_view::npos) {
                // Delivered: all but the longest suffix that is a proper prefix of t.
                std::size_t keep = 0;
                for (std::size_t k = 1; k < text.size() && k <= rest.size(); ++k) {
                    if (rest.ends_with(text.substr(0, k))) {
                        keep = k;
                    }
                }
                add_data(out.events, rest.substr(0, rest.size() - keep));
                out.held = rest.substr(rest.size() - keep);
                return out;
            }
            add_data(out.events, rest.substr(0, at));
            p += at + text.size();
        }
        out.events.push_back({true, {}, t});
        apply(sc, founds++, t);
    }
}

session run_reads(const script& sc, const std::vector<std::string>& reads) {
    session s{sc.first, [&sc](session& self) { apply(sc, self.founds, self.t); }};
    for (const std::string& chunk : reads) {
        s.read(chunk);
    }
    return s;
}

/// §4.7 items 1, 2 and 5: no empty collect, at most one collect in a row within a read, and
/// only a proper prefix of a string terminator held between reads.
bool well_formed(const session& s) {
    for (std::size_t i = 0; i < s.events.size(); ++i) {
        if (!s.events[i].found && s.events[i].data.empty()) {
            return false;
        }
        const bool read_starts_here = std::find(s.read_starts.begin(), s.read_starts.end(), i) !=
                                      s.read_starts.end();
        if (i > 0 && !read_starts_here && !s.events[i].found && !s.events[i - 1].found) {
            return false;
        }
    }
    if (s.t.active() && s.t.kind() == terminator_kind::bytes) {
        return s.held.size() < s.t.text().size() && s.t.text().starts_with(s.held);
    }
    return s.held.empty();
}

}  // namespace

TEST_CASE("property: every chunking gives the stream-level model's events", "[terminator]") {
    const std::uint32_t seed = 0x5eed0001;
    random_source rnd{std::mt19937(seed)};
    for (int n = 0; n < 1000; ++n) {
        const script sc = rnd.any_script();
        const std::string stream = rnd.text(rnd.below(65));
        const outcome expected = model(stream, sc);

        std::vector<std::vector<std::string>> chunkings{{stream}, chunks_of(stream, 1)};
        for (std::size_t at = 0; at <= stream.size(); ++at) {
            chunkings.push_back({stream.substr(0, at), stream.substr(at)});
        }
        for (int i = 0; i < 3; ++i) {
            chunkings.push_back(rnd.chunks(stream, 8));
        }
        for (const std::vector<std::string>& reads : chunkings) {
            session s(sc.first);
            std::string error;
            try {
                s = run_reads(sc, reads);
            } catch (const std::exception& e) {
                error = e.what();
            }
            const std::vector<event> got = coalesce(s.events);
            if (!error.empty() || got != expected.events || s.held != expected.held ||
                s.t != expected.last || !well_formed(s)) {
                INFO("seed " << seed << ", case " << n << ": " << describe(sc));
                INFO("reads: " << describe(reads));
                INFO("trace: " << s.trace());
                CHECK(error.empty());
                CHECK(got == expected.events);
                CHECK(s.held == expected.held);
                CHECK(s.t == expected.last);
                REQUIRE(well_formed(s));
                FAIL("stopped at the first failing case");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 8. Differential: the machine's Python asynchat on the same reads (events not coalesced)
// ---------------------------------------------------------------------------------------------

namespace {

// One case per input line: id, first terminator, action count, actions (K = keep), read
// count, reads (x + hex). One output line per case: id, R per read, C<hex> per collect, F<t>
// per found (the terminator seen inside it), H<held hex>, T<final terminator>. Terminators:
// N (None), I<n> (int), B<hex> (bytes). It runs under `python3 -c '...'`: no single quotes.
constexpr std::string_view python_driver = R"py(
import sys
import asynchat

def parse(spec):
    if spec == "N":
        return None
    if spec[0] == "I":
        return int(spec[1:])
    return bytes.fromhex(spec[1:])

def show(t):
    if t is None:
        return "N"
    if isinstance(t, int):
        return "I" + str(t)
    return "B" + t.hex()

class chat(asynchat.async_chat):
    def __init__(self, first, actions, reads):
        asynchat.async_chat.__init__(self)
        self.set_terminator(first)
        self.actions, self.reads, self.founds, self.out = actions, reads, 0, []

    def recv(self, buffer_size):
        self.out.append("R")
        return self.reads.pop(0)

    def collect_incoming_data(self, data):
        self.out.append("C" + data.hex())

    def found_terminator(self):
        self.out.append("F" + show(self.get_terminator()))
        if self.founds < len(self.actions) and self.actions[self.founds] != "K":
            self.set_terminator(parse(self.actions[self.founds]))
        self.founds += 1

for line in sys.stdin:
    f = line.split()
    na = int(f[2])
    nr = int(f[3 + na])
    c = chat(parse(f[1]), f[3:3 + na], [bytes.fromhex(r[1:]) for r in f[4 + na:]])
    for _ in range(nr):
        c.handle_read()
    tail = ["H" + c.ac_in_buffer.hex(), "T" + show(c.get_terminator())]
    print(" ".join([f[0]] + c.out + tail))
)py";

std::string hex(std::string_view s) {
    std::string out;
    for (const char c : s) {
        out += fmt::format("{:02x}", static_cast<unsigned char>(c));
    }
    return out;
}

std::string spec(const terminator& t) {
    switch (t.kind()) {
    case terminator_kind::none:
        return "N";
    case terminator_kind::count:
        return fmt::format("I{}", t.remaining());
    case terminator_kind::bytes:
        return "B" + hex(t.text());
    }
    return "?";
}

std::string case_line(int id, const script& sc, const std::vector<std::string>& reads) {
    std::string out = fmt::format("{} {} {}", id, spec(sc.first), sc.actions.size());
    for (const std::optional<terminator>& a : sc.actions) {
        out += " " + (a ? spec(*a) : std::string("K"));
    }
    out += fmt::format(" {}", reads.size());
    for (const std::string& r : reads) {
        out += " x" + hex(r);
    }
    return out;
}

/// What the Python driver prints for this case, computed with feed().
std::string our_line(int id, const script& sc, const std::vector<std::string>& reads) {
    const session s = run_reads(sc, reads);
    std::string out = std::to_string(id);
    std::size_t next_read = 0;
    for (std::size_t i = 0; i <= s.events.size(); ++i) {
        while (next_read < s.read_starts.size() && s.read_starts[next_read] == i) {
            out += " R";
            ++next_read;
        }
        if (i < s.events.size()) {
            const event& e = s.events[i];
            out += e.found ? " F" + spec(e.seen) : " C" + hex(e.data);
        }
    }
    return out + " H" + hex(s.held) + " T" + spec(s.t);
}

/// Runs the driver over `input`; one output line per case (stderr mixed in, to be seen).
std::vector<std::string> run_python(const std::string& input) {
    std::string path = (std::filesystem::temp_directory_path() / "ringchat_asynchat_XXXXXX");
    const int fd = ::mkstemp(path.data());
    REQUIRE(fd >= 0);
    std::FILE* file = ::fdopen(fd, "w");
    REQUIRE(file != nullptr);
    std::fputs(input.c_str(), file);
    std::fclose(file);

    const std::string command =
        fmt::format("python3 -W ignore -c '{}' < '{}' 2>&1", python_driver, path);
    std::FILE* pipe = ::popen(command.c_str(), "r");
    REQUIRE(pipe != nullptr);
    std::vector<std::string> lines;
    std::string line;
    char buffer[4096];
    while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) {
        line += buffer;
        if (line.ends_with('\n')) {
            line.pop_back();
            lines.push_back(std::move(line));
            line.clear();
        }
    }
    ::pclose(pipe);
    ::unlink(path.c_str());
    return lines;
}

}  // namespace

TEST_CASE("differential: the same collect/found calls as Python's asynchat", "[terminator]") {
    if (std::system("python3 -W ignore -c 'import asynchat' >/dev/null 2>&1") != 0) {
        WARN("python3 with asynchat is not available: differential test not run");
        return;
    }
    const std::uint32_t seed = 0x5eed0002;
    random_source rnd{std::mt19937(seed)};
    constexpr int cases = 400;
    std::vector<std::string> inputs;
    std::vector<std::string> ours;
    std::string input;
    for (int id = 0; id < cases; ++id) {
        const script sc = rnd.any_script();
        const std::string stream = rnd.text(rnd.below(81));
        const std::vector<std::string> reads =
            rnd.below(4) == 0 ? chunks_of(stream, 1) : rnd.chunks(stream, 9);
        inputs.push_back(case_line(id, sc, reads));
        INFO("case: " << inputs.back());
        ours.push_back(our_line(id, sc, reads));
        input += inputs.back() + "\n";
    }
    const std::vector<std::string> theirs = run_python(input);
    INFO("seed " << seed);
    REQUIRE(theirs.size() == ours.size());
    int failures = 0;
    for (int id = 0; id < cases && failures < 5; ++id) {
        if (ours[id] != theirs[id]) {
            INFO("case: " << inputs[id]);
            CHECK(ours[id] == theirs[id]);
            ++failures;
        }
    }
    CHECK(failures == 0);
}
