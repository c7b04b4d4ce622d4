// SPDX-License-Identifier: MIT
// tests/producers/test_producers_channel.cpp — producers through a chat::channel, on every
// backend: the peer receives byte for byte what the producer produces alone; a 64 MiB file
// over TCP, copied and zero-copy; a file whose read fails closes the channel with its error.
// Invariant: nothing here depends on how the kernel cuts the stream, and nothing asserts a
// timing.
#include <fcntl.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "chat/channel.hpp"
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
#include "tests/support/peers.hpp"
#include "tests/support/support.hpp"

using namespace ringchat;
using namespace std::chrono_literals;
using producers::any_producer;
using test::background;

namespace {

/// What a channel ended with: the bytes its peer received, and why it closed.
struct delivery {
    std::string received;
    std::error_code reason;
    chat::channel_stats stats;
};

/// Pushes `p` into a channel over `ours`, then close_when_done(); the peer collects.
task<> deliver(reactor& r, ringchat::socket ours, ringchat::socket peer, any_producer p,
               delivery& out) {
    background<std::string> receiver(r, test::recv_all_from(std::move(peer)));
    chat::channel ch(std::move(ours));
    ch.push_with_producer(std::move(p));
    ch.close_when_done();
    out.received = co_await receiver.join();
    out.reason = ch.close_reason();
    out.stats = ch.stats();
}

task<> deliver_over_pair(reactor& r, std::function<any_producer(reactor&)> make, delivery& out) {
    auto [ours, peer] = test::socket_pair(r);
    co_await deliver(r, std::move(ours), std::move(peer), make(r), out);
}

task<> deliver_over_tcp(reactor& r, std::function<any_producer(reactor&)> make, delivery& out) {
    auto [client, server] = co_await test::tcp_pair(r);
    co_await deliver(r, std::move(server), std::move(client), make(r), out);
}

/// Sends what `make` makes through a channel over a socket pair on `kind`.
delivery sent_through_channel(backend_kind kind, std::function<any_producer(reactor&)> make) {
    delivery out;
    test::run(kind, [&](reactor& r) { return deliver_over_pair(r, make, out); });
    return out;
}

task<> drain_into(any_producer p, std::string& out) {
    auto chunks = co_await test::async_chunks_of(p);
    out = test::joined(chunks);
}

/// The same producer drained alone: the reference output.
std::string produced_alone(backend_kind kind, std::function<any_producer(reactor&)> make) {
    std::string out;
    test::run(kind, [&](reactor& r) { return drain_into(make(r), out); });
    return out;
}

producers::generator slowly(reactor& r, std::vector<std::string> parts) {
    for (auto& part : parts) {
        auto slept = co_await r.sleep_for(1ms);
        REQUIRE(slept);
        co_yield std::move(part);
    }
}

std::string pattern(std::size_t size) {
    std::string s(size, '\0');
    for (std::size_t i = 0; i < size; ++i) {
        s[i] = static_cast<char>("abcdefghij.\r\n"[i % 13]);
    }
    return s;
}

}  // namespace

TEST_CASE("channel: every producer arrives byte for byte", "[producers][channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    const std::string big = pattern(300'000);
    const std::vector<std::pair<std::string, std::function<any_producer(reactor&)>>> cases = {
        {"simple", [&](reactor&) { return producers::simple(big, 1000); }},
        {"lines",
         [](reactor&) {
             std::vector<std::string> rows;
             for (int i = 0; i < 500; ++i) {
                 rows.push_back("row " + std::to_string(i));
             }
             return producers::lines(std::move(rows));
         }},
        {"fifo",
         [&](reactor& r) {
             producers::fifo f(producers::simple("head|"), slowly(r, {"a", "b"}));
             f.push(producers::simple(big, 4096));
             return f;
         }},
        {"chunked", [&](reactor&) { return producers::chunked(producers::simple(big, 777)); }},
        {"chunked generator",
         [](reactor& r) {
             return producers::chunked(slowly(r, {"Hello, ", "chunked ", "world"}));
         }},
        {"composite",
         [&](reactor& r) {
             return producers::composite(producers::simple("HTTP/1.1 200 OK\r\n\r\n"),
                                         producers::chunked(slowly(r, {big, "tail"})));
         }},
        {"hooked", [&](reactor&) { return producers::hooked(producers::simple(big), [] {}); }},
        {"globbing",
         [&](reactor&) { return producers::globbing(producers::simple(big, 10), 5000); }},
        {"escaping", [&](reactor&) { return producers::escaping(producers::simple(big, 333)); }},
        {"generator",
         [](reactor& r) {
             return slowly(r, {"x", "", "yz", "w"});
         }},
    };
    for (const auto& [name, make] : cases) {
        CAPTURE(name);
        const std::string reference = produced_alone(kind, make);
        REQUIRE_FALSE(reference.empty());
        const delivery got = sent_through_channel(kind, make);
        CHECK(got.received.size() == reference.size());
        CHECK(got.received == reference);
        CHECK(got.reason == std::error_code());
    }
}

TEST_CASE("channel: a hooked producer's hook runs once, after its bytes were produced",
          "[producers][channel]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    auto calls = std::make_shared<int>(0);
    auto bytes = std::make_shared<std::uint64_t>(0);
    const delivery got = sent_through_channel(kind, [=](reactor&) {
        return producers::hooked(producers::simple(pattern(10'000), 100),
                                 [calls, bytes](std::uint64_t n) {
                                     ++*calls;
                                     *bytes = n;
                                 });
    });
    CHECK(got.received == pattern(10'000));
    CHECK(*calls == 1);
    CHECK(*bytes == 10'000);
}

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr std::uint64_t big_file_size = std::uint64_t{16} << 20;  // ASan: a quarter
#else
constexpr std::uint64_t big_file_size = std::uint64_t{64} << 20;
#endif

}  // namespace

TEST_CASE("file: a large file over TCP, copied and zero-copy, arrives intact",
          "[producers][channel][file]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const bool zero_copy = GENERATE(false, true);
    CAPTURE(kind, zero_copy, big_file_size);
    test::temp_file tmp(big_file_size, 0x9e3779b97f4a7c15ULL);
    delivery got;
    const std::string path = tmp.path();
    test::run(kind, [&](reactor& r) {
        return deliver_over_tcp(
            r,
            [&](reactor& r2) {
                auto f = producers::file::open(r2, path, 0, producers::file::to_end,
                                               producers::file::default_buffer_size, zero_copy);
                REQUIRE(f);
                return any_producer(std::move(*f));
            },
            got);
    });
    CHECK(got.reason == std::error_code());
    CHECK(got.received.size() == big_file_size);
    CHECK(test::fnv1a(got.received) == tmp.hash());
    // The zero-copy path sends everything with sendfile; the read path nothing.
    CHECK(got.stats.bytes_zero_copy == (zero_copy ? big_file_size : 0));
    CHECK(got.stats.bytes_sent == big_file_size);
}

TEST_CASE("file: a failing read closes the channel with the read's error",
          "[producers][channel][file]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const bool zero_copy = GENERATE(false, true);  // read(2) or sendfile(2) meets the error
    CAPTURE(kind, zero_copy);
    test::temp_file tmp(1000, 5);
    const std::string path = tmp.path();
    SECTION("EBADF: opened write-only") {
        const delivery got = sent_through_channel(kind, [&](reactor& r) {
            auto f = ringchat::file::open(r, path, O_WRONLY);
            REQUIRE(f);
            return producers::file(std::move(*f), 0, producers::file::to_end, 4096, zero_copy);
        });
        CHECK(got.received.empty());
        CHECK(got.reason == std::error_code(EBADF, std::system_category()));
    }
    SECTION("ENODATA: a length past the end") {
        const delivery got = sent_through_channel(kind, [&](reactor& r) {
            auto f = producers::file::open(r, path, 0, 5000, 4096, zero_copy);
            REQUIRE(f);
            return any_producer(std::move(*f));
        });
        CHECK(got.received == tmp.content());
        CHECK(got.reason == std::errc::no_message_available);
    }
}
