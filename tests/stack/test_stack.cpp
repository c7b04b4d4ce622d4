// SPDX-License-Identifier: MIT
// tests/stack/test_stack.cpp — awaiting a task that completes without suspending must not
// grow the stack, at any optimisation level, with or without sanitizers.
//
// This file is built at -O0 (tests/stack/meson.build), where GCC 12 does not turn symmetric
// transfer into a tail call, and again in the sanitizer build: the two builds in which a
// chain of synchronously completing tasks once nested a frame per await and overflowed the
// stack. Each test records how deep the stack gets and asserts a bound, so a regression is a
// failed CHECK with the depth, not a crash.
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include <catch2/catch.hpp>

#include "chat/channel.hpp"
#include "tests/support/peers.hpp"
#include "tests/support/support.hpp"

using namespace ringchat;
using namespace std::chrono_literals;

namespace {

/// Tracks the lowest and highest stack address seen (the stack grows down).
struct stack_span {
    std::uintptr_t low = UINTPTR_MAX;
    std::uintptr_t high = 0;
    void note() noexcept {
        const auto here = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
        low = here < low ? here : low;
        high = here > high ? here : high;
    }
    std::size_t depth() const noexcept { return high > low ? high - low : 0; }
};

// Far below the 8 MiB a thread has, far above what one request's call chain needs: a frame
// per request would pass it within a few hundred requests.
constexpr std::size_t depth_bound = 256 * 1024;

task<int> plus_one(int n, stack_span& span) {
    span.note();
    co_return n + 1;
}

task<int> two_levels(int n, stack_span& span) {
    int m = co_await plus_one(n, span);
    co_return m + 1;
}

}  // namespace

TEST_CASE("a million awaited tasks that complete at once keep the stack flat", "[stack]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    stack_span span;
    int total = 0;
    test::run(kind, [&](reactor&) -> task<> {
        for (int i = 0; i < 1'000'000; ++i) {
            const int got = co_await two_levels(i, span);
            total += got - i;
        }
    });
    CHECK(total == 2'000'000);
    CHECK(span.depth() < depth_bound);
}

namespace {

/// One request's work as a task of its own: the way a protocol is naturally written.
task<> answer(chat::channel& ch, const chat::frame& f, stack_span& span) {
    span.note();
    if (f.text() == "x") {
        ch.push("ok\n");
    }
    co_return;
}

task<std::size_t> count_replies(ringchat::socket& s) {
    std::string buf(64 * 1024, '\0');
    std::size_t bytes = 0;
    for (;;) {
        auto n = co_await s.recv(std::as_writable_bytes(std::span(buf)));
        if (!n || *n == 0) {
            break;
        }
        bytes += *n;
    }
    co_return bytes;
}

task<bool> send_requests(ringchat::socket& s, std::size_t n) {
    const std::string block = [] {
        std::string b;
        for (int i = 0; i < 8192; ++i) {
            b += "x\n";
        }
        return b;
    }();
    for (std::size_t sent = 0; sent < n; sent += 8192) {
        auto ok = co_await s.send_all(test::bytes(block));
        if (!ok) {
            co_return false;
        }
    }
    (void)s.shutdown(SHUT_WR);
    co_return true;
}

}  // namespace

TEST_CASE("a million pipelined requests through a task per request keep the stack flat",
          "[stack][chat]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    constexpr std::size_t requests = 1024 * 1024;  // a multiple of send_requests' block
    stack_span span;
    std::size_t handled = 0;
    std::size_t reply_bytes = 0;
    test::run(kind, [&](reactor& r) -> task<> {
        auto [ours, theirs] = co_await test::tcp_pair(r);
        // One socket, two directions: each backend keeps one request per direction.
        test::background<std::size_t> reader(r, count_replies(theirs));
        test::background<bool> sender(r, send_requests(theirs, requests));
        {
            chat::channel ch(std::move(ours));
            for (;;) {
                auto f = co_await ch.read();
                if (!f) {
                    break;
                }
                co_await answer(ch, f, span);
                ++handled;
            }
            co_await ch.finish();
        }
        const bool sent = co_await sender.join();
        CHECK(sent);
        reply_bytes = co_await reader.join();
    }, 120s);
    CHECK(handled == requests);
    CHECK(reply_bytes == 3 * requests);
    CHECK(span.depth() < depth_bound);
}
