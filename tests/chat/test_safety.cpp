// tests/chat/test_safety.cpp — the channel is safe when the code around it is plain: what a
// session holds stays valid, output is bounded without drain(), a trickling peer meets a
// deadline, and one busy connection does not starve the rest. Every test on both backends.
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <string>
#include <utility>

#include <catch2/catch.hpp>

#include "chat/channel.hpp"
#include "core/error.hpp"
#include "tests/support/peers.hpp"
#include "tests/support/support.hpp"

using namespace ringchat;
using namespace std::chrono_literals;
using chat::channel;
using chat::channel_options;

namespace {

/// Yields `n` reactor turns (each with a poll), so that whatever the kernel may do meanwhile
/// (complete a recv into a free buffer) is done.
task<> turns(reactor& r, int n) {
    for (int i = 0; i < n; ++i) {
        co_await test::yield_now{r};
    }
}

}  // namespace

TEST_CASE("discard_buffers() leaves the frame read last valid until the next read()",
          "[channel][safety]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    // One provided buffer in all: were the frame's buffer given back, the next bytes to
    // arrive would be received into it, over the frame.
    reactor_options options;
    options.kind = kind;
    options.buffer_count = 1;
    options.buffer_size = 1024;
    test::run(options, [](reactor& r) -> task<> {
        auto [ours, peer] = test::socket_pair(r);
        channel ch(std::move(ours));
        REQUIRE(::send(peer.fd(), "first\n", 6, MSG_NOSIGNAL) == 6);
        auto f = co_await ch.read();
        REQUIRE(f);
        ch.discard_buffers();
        REQUIRE(::send(peer.fd(), "XXXXX\n", 6, MSG_NOSIGNAL) == 6);
        co_await turns(r, 5);
        CHECK(f.text() == "first");
        auto next = co_await ch.read();
        REQUIRE(next);
        CHECK(next.text() == "XXXXX");
    });
}
