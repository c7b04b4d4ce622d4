// SPDX-License-Identifier: MIT
// tests/producers/test_producers.cpp — each producer alone: its chunks exactly, sync and async
// sources, the protocol (nothing asked after an empty chunk), and what fits in any_producer.
//
// Sections: 1 sizes and kinds (sync in → sync out, stored inline); 2 simple, fifo, lines;
// 3 the wrappers (chunked, composite, hooked, globbing, escaping); 4 generator; 5 file.
// Through a channel: test_producers_channel.cpp.
#include <fcntl.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "core/file.hpp"
#include "core/reactor.hpp"
#include "producers/chunked.hpp"
#include "producers/composite.hpp"
#include "producers/escaping.hpp"
#include "producers/fifo.hpp"
#include "producers/file.hpp"
#include "producers/generator.hpp"
#include "producers/globbing.hpp"
#include "producers/hooked.hpp"
#include "producers/lines.hpp"
#include "producers/producer.hpp"
#include "tests/producers/helpers.hpp"
#include "tests/support/support.hpp"

using namespace ringchat;
using namespace std::chrono_literals;
using producers::any_producer;
using producers::chunk;
using strings = std::vector<std::string>;

namespace {

/// A generator that yields `parts`, sleeping 1 ms before each.
producers::generator slowly(reactor& r, strings parts) {
    for (auto& part : parts) {
        auto slept = co_await r.sleep_for(1ms);
        REQUIRE(slept);
        co_yield std::move(part);
    }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// 1. Sizes and kinds
// ---------------------------------------------------------------------------------------------

namespace {

struct small_hook {
    int* calls;
    void operator()() const { ++*calls; }
};

}  // namespace

// Sync in, sync out (no frame per chunk); async in (any_producer), async out.
static_assert(producers::sync_producer<producers::chunked<producers::simple>>);
static_assert(producers::sync_producer<producers::escaping<producers::simple>>);
static_assert(producers::sync_producer<producers::globbing<producers::lines>>);
static_assert(producers::sync_producer<producers::hooked<producers::simple, small_hook>>);
static_assert(producers::sync_producer<producers::composite<producers::simple, producers::lines>>);
static_assert(producers::async_producer<producers::chunked<any_producer>>);
static_assert(producers::async_producer<producers::globbing<producers::generator>>);
static_assert(producers::async_producer<producers::composite<producers::simple, producers::file>>);
static_assert(producers::async_producer<producers::fifo>);
static_assert(producers::async_producer<producers::generator>);
static_assert(producers::async_producer<producers::file>);
static_assert(producers::region_producer<producers::file>);
static_assert(!producers::region_producer<producers::chunked<producers::file>>);

TEST_CASE("producers: the small ones are stored inside any_producer", "[producers]") {
    test::run(test::backends().front(), [](reactor& r) -> task<> {
        int calls = 0;
        auto f = ringchat::file::open(r, "/dev/null", O_RDONLY);
        REQUIRE(f);
        CHECK(any_producer(producers::simple("x")).stored_inline());
        CHECK(any_producer(producers::lines({"a"})).stored_inline());
        CHECK(any_producer(producers::chunked(producers::simple("x"))).stored_inline());
        CHECK(any_producer(producers::escaping(producers::simple("x"))).stored_inline());
        CHECK(any_producer(producers::hooked(producers::simple("x"), small_hook{&calls}))
                  .stored_inline());
        CHECK(any_producer(producers::hooked(producers::simple("x"), [&calls](std::uint64_t) {
                  ++calls;
              })).stored_inline());
        CHECK(any_producer(slowly(r, {"x"})).stored_inline());
        CHECK(any_producer(producers::file(std::move(*f), 0, 0)).stored_inline());
        CHECK(calls == 0);
        co_return;
    });
}

// ---------------------------------------------------------------------------------------------
// 2. simple, fifo, lines
// ---------------------------------------------------------------------------------------------

TEST_CASE("simple: buffer_size chunks; 0 counts as 1", "[producers]") {
    producers::simple p("abcdefg", 3);
    CHECK(test::chunks_of(p) == strings{"abc", "def", "g"});
    CHECK(p.more().empty());
    producers::simple one("abc", 0);
    CHECK(test::chunks_of(one) == strings{"a", "b", "c"});
    producers::simple none("");
    CHECK(test::chunks_of(none).empty());
}

TEST_CASE("fifo: each producer's chunks in push order, sync and async", "[producers]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        producers::fifo f(producers::simple("abcd", 3), producers::simple(""));
        f.push(slowly(r, {"ef", "g"}));
        f.push(producers::simple("hi"));
        f.push(producers::chunked(producers::simple("j")));
        CHECK(f.size() == 5);
        auto got = co_await test::async_chunks_of(f);
        CHECK(got == strings{"abc", "d", "ef", "g", "hi", "1\r\nj\r\n", "0\r\n\r\n"});
        CHECK(f.empty());
        // A fifo inside a fifo.
        producers::fifo outer;
        producers::fifo inner(producers::simple("b"));
        outer.push(producers::simple("a"));
        outer.push(std::move(inner));
        outer.push(producers::simple("c"));
        auto nested = co_await test::async_chunks_of(outer);
        CHECK(nested == strings{"a", "b", "c"});
    });
}

TEST_CASE("lines: the separator after each line, up to lines_per_chunk a chunk", "[producers]") {
    producers::lines reply({"250-mail.example.org", "250-SIZE", "250 PIPELINING"});
    CHECK(test::chunks_of(reply) ==
          strings{"250-mail.example.org\r\n250-SIZE\r\n250 PIPELINING\r\n"});
    producers::lines two_each({"a", "", "c", "d", "e"}, "\n", 2);
    CHECK(test::chunks_of(two_each) == strings{"a\n\n", "c\nd\n", "e\n"});
    // Lines that add up to nothing are skipped, not taken for the end.
    producers::lines empties({"", "", "x", ""}, "", 1);
    CHECK(test::chunks_of(empties) == strings{"x"});
    producers::lines none({});
    CHECK(test::chunks_of(none).empty());
}

// ---------------------------------------------------------------------------------------------
// 3. Wrappers
// ---------------------------------------------------------------------------------------------

TEST_CASE("chunked: size CRLF data CRLF per chunk, then 0 CRLF CRLF", "[producers]") {
    producers::chunked p(producers::simple("hello world, this is it", 16));
    const auto got = test::chunks_of(p);
    CHECK(got == strings{"10\r\nhello world, thi\r\n", "7\r\ns is it\r\n", "0\r\n\r\n"});
    CHECK(p.more().empty());
    CHECK(p.first().more().empty());  // exhausted, and asked no further by the wrapper

    producers::chunked empty(test::pieces({}));
    CHECK(test::chunks_of(empty) == strings{"0\r\n\r\n"});
    CHECK(empty.more().empty());
    CHECK(empty.first().calls_after_end() == 1);

    // Round trips through a decoder, for sizes around the hex digit boundaries.
    for (const std::size_t size : {1, 9, 15, 16, 17, 255, 256, 4095, 4096, 70000}) {
        std::string data(size, 'q');
        for (std::size_t i = 0; i < size; ++i) {
            data[i] = static_cast<char>('a' + i % 23);
        }
        for (const std::size_t piece : {std::size_t{1}, std::size_t{7}, size}) {
            CAPTURE(size, piece);
            producers::chunked c(producers::simple(data, piece));
            const auto decoded = test::decode_chunked(test::joined(test::chunks_of(c)));
            REQUIRE(decoded);
            CHECK(*decoded == data);
        }
    }
}

TEST_CASE("chunked: over an async producer, the same coding", "[producers]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        producers::chunked p{any_producer(slowly(r, {"0123456789abcdef!", "x"}))};
        auto got = co_await test::async_chunks_of(p);
        CHECK(got == strings{"11\r\n0123456789abcdef!\r\n", "1\r\nx\r\n", "0\r\n\r\n"});
        auto after = co_await p.more();
        CHECK(after.empty());
    });
}

TEST_CASE("composite: the head's chunks, then the body's", "[producers]") {
    producers::composite p(producers::simple("HEAD\r\n\r\n", 4), test::pieces({"b1", "b2"}));
    CHECK(test::chunks_of(p) == strings{"HEAD", "\r\n\r\n", "b1", "b2"});
    CHECK(p.more().empty());
    CHECK(p.second().calls_after_end() == 1);

    producers::composite no_head(test::pieces({}), producers::simple("body"));
    CHECK(test::chunks_of(no_head) == strings{"body"});
    CHECK(no_head.first().calls_after_end() == 1);

    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        producers::composite mixed(producers::simple("head|"), slowly(r, {"b", "c"}));
        auto got = co_await test::async_chunks_of(mixed);
        CHECK(got == strings{"head|", "b", "c"});
    });
}

TEST_CASE("hooked: called once, at exhaustion, with the byte count", "[producers]") {
    int calls = 0;
    std::uint64_t bytes = 0;
    producers::hooked p(producers::simple("abcdefg", 3), [&](std::uint64_t n) {
        ++calls;
        bytes = n;
    });
    for (const char* expected : {"abc", "def", "g"}) {
        CHECK(p.more() == expected);
        CHECK(calls == 0);
    }
    CHECK(p.more().empty());
    CHECK(calls == 1);
    CHECK(bytes == 7);
    CHECK(p.more().empty());
    CHECK(calls == 1);

    // No argument; and never called when dropped before the end.
    int dropped_calls = 0;
    {
        producers::hooked q(producers::simple("ab", 1), small_hook{&dropped_calls});
        CHECK(q.more() == "a");
    }
    CHECK(dropped_calls == 0);

    // A hook that throws: the exception leaves more().
    producers::hooked throwing(producers::simple("a"), [] { throw std::runtime_error("hook"); });
    CHECK(throwing.more() == "a");
    CHECK_THROWS_WITH(throwing.more(), "hook");
}

TEST_CASE("hooked: over an async producer", "[producers]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        auto calls = std::make_shared<int>(0);
        producers::hooked p(slowly(r, {"a", "bc"}), [calls](std::uint64_t n) {
            CHECK(n == 3);
            ++*calls;
        });
        auto first = co_await p.more();
        CHECK(first == "a");
        auto second = co_await p.more();
        CHECK(second == "bc");
        CHECK(*calls == 0);
        auto end = co_await p.more();
        CHECK(end.empty());
        CHECK(*calls == 1);
    });
}

TEST_CASE("globbing: whole chunks until at least the size, a big one passed on", "[producers]") {
    producers::globbing p(producers::simple(std::string(1000, 'x'), 10), 64);
    const auto got = test::chunks_of(p);
    REQUIRE(got.size() == 15);
    for (std::size_t i = 0; i < 14; ++i) {
        CHECK(got[i].size() == 70);
    }
    CHECK(got[14].size() == 20);
    CHECK(p.more().empty());

    producers::globbing big(test::pieces({"ab", std::string(100, 'y'), "c", "d"}), 50);
    CHECK(test::chunks_of(big) == strings{"ab" + std::string(100, 'y'), "cd"});
    producers::globbing alone(test::pieces({std::string(50, 'z'), "e"}), 50);
    CHECK(test::chunks_of(alone) == strings{std::string(50, 'z'), "e"});
    CHECK(alone.first().calls_after_end() == 1);

    // The default size: 1 << 16.
    producers::globbing whole(producers::simple(std::string(200'000, 'w'), 1000));
    const auto sizes = test::chunks_of(whole);
    REQUIRE(sizes.size() == 4);
    CHECK(sizes[0].size() == 66'000);
    CHECK(sizes[3].size() == 2'000);

    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        producers::globbing async(slowly(r, {"a", "b", "c", "d", "e"}), 2);
        auto chunks = co_await test::async_chunks_of(async);
        CHECK(chunks == strings{"ab", "cd", "e"});
    });
}

namespace {

/// What smtplib sends for `data` already in CRLF form: `(?m)^\.` → "..", then CRLF unless
/// the data ends with one, then ".\r\n".
std::string smtp_reference(std::string_view data) {
    std::string out;
    bool at_start = true;
    for (const char c : data) {
        if (at_start && c == '.') {
            out += '.';
        }
        out += c;
        at_start = c == '\n';
    }
    if (!out.ends_with("\r\n")) {
        out += "\r\n";
    }
    return out + ".\r\n";
}

std::string escaped(strings parts) {
    producers::escaping p(test::pieces(std::move(parts)));
    auto out = test::joined(test::chunks_of(p));
    CHECK(p.more().empty());
    CHECK(p.first().calls_after_end() == 1);
    return out;
}

}  // namespace

TEST_CASE("escaping: dot-stuffing and the end of DATA", "[producers]") {
    CHECK(escaped({}) == "\r\n.\r\n");
    CHECK(escaped({"a"}) == "a\r\n.\r\n");
    CHECK(escaped({"a\r\n"}) == "a\r\n.\r\n");
    CHECK(escaped({".a\r\n"}) == "..a\r\n.\r\n");
    CHECK(escaped({"."}) == "..\r\n.\r\n");
    CHECK(escaped({"a\r\n.\r\nb"}) == "a\r\n..\r\nb\r\n.\r\n");
    CHECK(escaped({"a.b\r\n..\r\n"}) == "a.b\r\n...\r\n.\r\n");
    CHECK(escaped({"a\n.b"}) == "a\n..b\r\n.\r\n");  // after a bare LF too
    CHECK(escaped({"a\r.b"}) == "a\r.b\r\n.\r\n");   // a bare CR starts no line
    CHECK(escaped({"\r\n"}) == "\r\n.\r\n");
    CHECK(escaped({"a\r", "\n"}) == "a\r\n.\r\n");
    CHECK(escaped({"a", "\r", "\n", "."}) == "a\r\n..\r\n.\r\n");
}

TEST_CASE("escaping: every split into two or three chunks matches the one-chunk output",
          "[producers]") {
    for (const std::string data :
         {".\r\n..", "a\r\n.\r\n.", "\r\n.\r\n", ".", "..", "\n.\n.", "x\r\n", ".\r\n.\r\n",
          "ab\r\n.cd\r\n..\r\n", "\r\n\r\n.", "a.\r\n.b.\r\n"}) {
        CAPTURE(data);
        const std::string reference = smtp_reference(data);
        CHECK(escaped({data}) == reference);
        for (std::size_t i = 1; i < data.size(); ++i) {
            CAPTURE(i);
            CHECK(escaped({data.substr(0, i), data.substr(i)}) == reference);
            for (std::size_t j = i + 1; j < data.size(); ++j) {
                CAPTURE(j);
                CHECK(escaped({data.substr(0, i), data.substr(i, j - i), data.substr(j)}) ==
                      reference);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 4. generator
// ---------------------------------------------------------------------------------------------

namespace {

task<std::string> later(reactor& r, std::string s) {
    auto slept = co_await r.sleep_for(1ms);
    REQUIRE(slept);
    co_return s;
}

producers::generator counted(reactor& r) {
    co_yield "one|";  // const char*
    auto slept = co_await r.sleep_for(1ms);
    REQUIRE(slept);
    co_yield std::string_view("two|");
    co_yield "";  // yields nothing
    co_yield co_await later(r, "three|");
    std::string four = "four|";
    co_yield four;
}

producers::generator throws_after_one(reactor& r) {
    co_yield "before|";
    auto slept = co_await r.sleep_for(1ms);
    REQUIRE(slept);
    throw std::runtime_error("generator failed on purpose");
}

struct destroyed_flag {
    int* count;
    ~destroyed_flag() { ++*count; }
};

producers::generator with_local(int* count) {
    destroyed_flag flag{count};
    co_yield "a";
    co_yield "b";
}

}  // namespace

TEST_CASE("generator: yields with awaits between them", "[producers]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        auto g = counted(r);
        auto got = co_await test::async_chunks_of(g);
        CHECK(got == strings{"one|", "two|", "three|", "four|"});
        auto after = co_await g.more();
        CHECK(after.empty());

        auto moved = slowly(r, {"x", "y"});
        auto first = co_await moved.more();
        CHECK(first == "x");
        producers::generator other = std::move(moved);  // moved while resting at a yield
        auto second = co_await other.more();
        CHECK(second == "y");
    });
}

TEST_CASE("generator: the body's exception leaves more(), once", "[producers]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        auto g = throws_after_one(r);
        auto first = co_await g.more();
        CHECK(first == "before|");
        std::string what;
        try {
            (void)co_await g.more();
        } catch (const std::runtime_error& e) {
            what = e.what();
        }
        CHECK(what == "generator failed on purpose");
        auto after = co_await g.more();
        CHECK(after.empty());
    });
}

TEST_CASE("generator: destroyed unstarted or resting at a yield frees its frame", "[producers]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor&) -> task<> {
        int destroyed = 0;
        { auto unstarted = with_local(&destroyed); }
        CHECK(destroyed == 0);  // the body never ran, so its local never existed
        {
            auto g = with_local(&destroyed);
            auto first = co_await g.more();
            CHECK(first == "a");
        }
        CHECK(destroyed == 1);
        {
            auto g = with_local(&destroyed);
            auto all = co_await test::async_chunks_of(g);
            CHECK(all == strings{"a", "b"});
            CHECK(destroyed == 2);
        }
        CHECK(destroyed == 2);
    });
}

// ---------------------------------------------------------------------------------------------
// 5. file
// ---------------------------------------------------------------------------------------------

namespace {

task<> file_reads(reactor& r, std::string path, std::string content) {
    auto whole = producers::file::open(r, path, 0, producers::file::to_end, 30);
    REQUIRE(whole);
    const auto region = whole->region();
    REQUIRE(region);
    CHECK(region->fd >= 0);
    CHECK(region->offset == 0);
    CHECK(region->length == 100);
    auto got = co_await test::async_chunks_of(*whole);
    CHECK(got == strings{content.substr(0, 30), content.substr(30, 30), content.substr(60, 30),
                         content.substr(90)});
    CHECK_FALSE(whole->region());

    auto part = producers::file::open(r, path, 10, 25, 64 * 1024, true);
    REQUIRE(part);
    part->advance(5);  // as if the channel sent 5 bytes of the region
    const auto rest = part->region();
    REQUIRE(rest);
    CHECK(rest->offset == 15);
    CHECK(rest->length == 20);
    auto tail = co_await test::async_chunks_of(*part);
    CHECK(tail == strings{content.substr(15, 20)});

    auto copying = producers::file::open(r, path, 95, producers::file::to_end, 64, false);
    REQUIRE(copying);
    CHECK_FALSE(copying->region());
    CHECK(copying->left() == 5);
    auto past = producers::file::open(r, path, 200);
    REQUIRE(past);
    CHECK(past->left() == 0);
    auto nothing = co_await past->more();
    CHECK(nothing.empty());
}

task<> file_errors(reactor& r, std::string path) {
    auto missing = producers::file::open(r, path + ".missing");
    REQUIRE_FALSE(missing);
    CHECK(missing.error() == std::error_code(ENOENT, std::system_category()));

    auto write_only = ringchat::file::open(r, path, O_WRONLY);
    REQUIRE(write_only);
    producers::file bad(std::move(*write_only));
    CHECK(bad.left() == 10);
    std::error_code code;
    try {
        (void)co_await bad.more();
    } catch (const std::system_error& e) {
        code = e.code();
    }
    CHECK(code == std::error_code(EBADF, std::system_category()));

    auto too_long = producers::file::open(r, path, 4, 10, 4);
    REQUIRE(too_long);
    auto first = co_await too_long->more();
    CHECK(first.size() == 4);
    auto second = co_await too_long->more();
    CHECK(second.size() == 2);
    code = {};
    try {
        (void)co_await too_long->more();
    } catch (const std::system_error& e) {
        code = e.code();
    }
    CHECK(code == std::errc::no_message_available);
}

}  // namespace

TEST_CASE("file: buffer_size reads, offset and length, region and advance", "[producers]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::temp_file tmp(100, 7);
    const std::string content = tmp.content();
    REQUIRE(content.size() == 100);
    test::run(kind, [&](reactor& r) { return file_reads(r, tmp.path(), content); });
}

TEST_CASE("file: open errors are results; read errors throw system_error", "[producers]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::temp_file tmp(10, 3);
    test::run(kind, [&](reactor& r) { return file_errors(r, tmp.path()); });
}
