// SPDX-License-Identifier: MIT
// Echo over every address family, on every backend: the smallest end-to-end proof that
// accept, connect, recv (single and multishot) and send work alike on io_uring and epoll.
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "core/listener.hpp"
#include "core/receiver.hpp"
#include "tests/support/support.hpp"

using namespace ringchat;
using namespace std::chrono_literals;

namespace {

/// Echoes one connection with the multishot receiver until the peer closes.
task<> echo_connection(ringchat::socket s) {
    receiver in(s);
    for (;;) {
        auto chunk = co_await in.next();
        if (!chunk || chunk->empty()) {
            break;
        }
        auto sent = co_await s.send_all(chunk->data());
        if (!sent) {
            break;
        }
    }
}

task<> echo_server(reactor& r, listener& l, int connections) {
    for (int i = 0; i < connections; ++i) {
        auto s = co_await l.accept();
        REQUIRE(s);
        r.spawn(echo_connection(std::move(*s)));
    }
}

address loopback(int family) {
    static int counter = 0;
    switch (family) {
    case AF_INET6:
        return address::ipv6("::1", 0);
    case AF_UNIX:
        return address::unix_path("/tmp/ringchat-test-" + std::to_string(getpid()) + "-" +
                                  std::to_string(counter++) + ".sock");
    default:
        return address::ipv4("127.0.0.1", 0);
    }
}

}  // namespace

TEST_CASE("echo over TCP IPv4, IPv6 and a Unix socket", "[core][echo]") {
    const auto kind = GENERATE(from_range(test::backends()));
    const int family = GENERATE(AF_INET, AF_INET6, AF_UNIX);
    CAPTURE(kind, family);
    test::run(kind, [family](reactor& r) -> task<> {
        auto l = listener::bind(r, loopback(family));
        REQUIRE(l);
        r.spawn(echo_server(r, *l, 1));
        auto c = co_await ringchat::socket::connect(r, l->local_address());
        REQUIRE(c);
        const std::string message = "hello, ringchat\n";
        auto sent = co_await c->send_all(test::bytes(message));
        REQUIRE(sent);
        auto echoed = co_await test::recv_exactly(*c, message.size());
        CHECK(echoed == message);
        if (family == AF_UNIX) {
            ::unlink(l->local_address().to_string().substr(5).c_str());
        }
    });
}

TEST_CASE("listeners: SO_REUSEADDR always, SO_REUSEPORT when asked", "[core][listener]") {
    const auto kind = GENERATE(from_range(test::backends()));
    test::run(kind, [](reactor& r) -> task<> {
        listen_options shared;
        shared.reuse_port = true;
        auto first = listener::bind(r, address::ipv4("127.0.0.1", 0), shared);
        REQUIRE(first);
        // A second listener on the same port: allowed with SO_REUSEPORT on both ...
        auto second = listener::bind(r, first->local_address(), shared);
        CHECK(second);
        // ... refused without it.
        auto third = listener::bind(r, first->local_address());
        CHECK(third.error() == std::error_code(EADDRINUSE, std::system_category()));
        co_return;
    });
}
