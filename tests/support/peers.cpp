// SPDX-License-Identifier: MIT
// The shared conversation pieces (see peers.hpp).
#include "tests/support/peers.hpp"

#include <sys/socket.h>

#include <chrono>

#include <catch2/catch.hpp>

#include "core/address.hpp"
#include "core/listener.hpp"
#include "tests/support/support.hpp"

namespace ringchat::test {

using namespace std::chrono_literals;

task<std::string> echo_peer(socket s, std::size_t piece) {
    std::string got;
    std::byte buf[16384];
    for (;;) {
        auto n = co_await s.recv(buf);
        if (!n || *n == 0) {
            break;
        }
        got.append(reinterpret_cast<const char*>(buf), *n);
        // Look for QUIT only where it can newly end: in the bytes just added.
        const std::size_t from = got.size() > *n + quit.size() ? got.size() - *n - quit.size() : 0;
        if (const auto at = got.find(quit, from); at != std::string::npos) {
            got.erase(at, quit.size());
            break;
        }
    }
    for (std::size_t at = 0; at < got.size(); at += piece) {
        auto sent = co_await s.send_all(bytes(std::string_view(got).substr(at, piece)));
        if (!sent) {
            break;
        }
    }
    s.close_now();
    co_return got;
}

task<std::string> recv_all_from(socket s) {
    auto got = co_await recv_all(s);
    co_return got;
}

task<std::pair<socket, socket>> tcp_pair(reactor& r) {
    auto l = listener::bind(r, address::ipv4("127.0.0.1", 0));
    REQUIRE(l);
    auto client = co_await socket::connect(r, l->local_address());
    REQUIRE(client);
    auto server = co_await l->accept().timeout(5s);
    REQUIRE(server);
    co_return std::pair{std::move(*client), std::move(*server)};
}

std::size_t fill_send_buffer(socket& s) {
    const std::string junk(1 << 16, 'j');
    std::size_t total = 0;
    for (const std::size_t size : {junk.size(), std::size_t{1024}, std::size_t{1}}) {
        for (;;) {
            const auto n = ::send(s.fd(), junk.data(), size, MSG_DONTWAIT);
            if (n <= 0) {
                break;
            }
            total += static_cast<std::size_t>(n);
        }
    }
    return total;
}

}  // namespace ringchat::test
