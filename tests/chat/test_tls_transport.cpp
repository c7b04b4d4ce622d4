// SPDX-License-Identifier: MIT
// tests/chat/test_tls_transport.cpp — channels over chat::tls_transport, on every backend:
// a server and a client channel on the two ends of a socket pair, with the certificates
// tests/support/test_certs makes.
//
// What a TLS channel must do beyond a plain one: handshake (ALPN, SNI seen), carry 16 MiB both
// ways byte for byte, end with close_notify (a clean end, where a FIN alone is a truncation),
// and fail clearly with the connection's fate defined: a plaintext client, a certificate that
// fails verification, a handshake that stalls. Invariant: no test asserts a timing.
#include "chat/tls_transport.hpp"

#include <sys/socket.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include <catch2/catch.hpp>

#include "chat/channel.hpp"
#include "core/error.hpp"
#include "tests/support/peers.hpp"
#include "tests/support/support.hpp"
#include "tests/support/test_certs.hpp"

using namespace ringchat;
using namespace std::chrono_literals;
using chat::channel;
using chat::tls_transport;
namespace tls = chat::tls;

namespace {

tls::context server_context(std::vector<std::string> alpn = {}) {
    const auto& certs = test::test_certs::get();
    tls::context_options o;
    o.cert_file = certs.localhost.cert;
    o.key_file = certs.localhost.key;
    o.alpn = std::move(alpn);
    return tls::context::server(o).value();
}

tls::context client_context(std::vector<std::string> alpn = {}) {
    tls::context_options o;
    o.ca_file = test::test_certs::get().ca.cert;
    o.alpn = std::move(alpn);
    return tls::context::client(o).value();
}

tls::context server_context_with(const test::cert_pair& pair) {
    tls::context_options o;
    o.cert_file = pair.cert;
    o.key_file = pair.key;
    return tls::context::server(o).value();
}

/// A TLS server channel and client channel over a socket pair.
struct tls_pair {
    tls_transport* server_tls;
    tls_transport* client_tls;
    std::unique_ptr<channel> server;
    std::unique_ptr<channel> client;
};

tls_pair make_pair(reactor& r, const tls::context& server_ctx, const tls::context& client_ctx,
                   chat::channel_options options = {}) {
    auto [a, b] = test::socket_pair(r);
    auto st = std::make_unique<tls_transport>(std::move(a), server_ctx);
    auto ct = std::make_unique<tls_transport>(std::move(b), client_ctx,
                                              chat::tls_options{.server_name = "localhost"});
    tls_pair p{st.get(), ct.get(), nullptr, nullptr};
    p.server = std::make_unique<channel>(std::move(st), options);
    p.client = std::make_unique<channel>(std::move(ct), options);
    return p;
}

/// Echoes lines until the end of the input, then finishes (close_notify).
task<int> echo_lines(channel& ch) {
    int lines = 0;
    for (;;) {
        auto line = co_await ch.read();
        if (!line) {
            break;
        }
        ch.push(std::string(line.text()) + "\n");
        ++lines;
    }
    co_await ch.finish();
    co_return lines;
}

}  // namespace

TEST_CASE("tls transport: a handshake, lines both ways, ALPN, and close_notify at the end",
          "[tls]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        const auto sctx = server_context({"h2", "echo/1"});
        const auto cctx = client_context({"echo/1"});
        auto p = make_pair(r, sctx, cctx);
        test::background<int> server(r, echo_lines(*p.server));
        const std::error_code shaken = co_await p.client_tls->handshake();
        CHECK_FALSE(shaken);
        CHECK(p.client_tls->engine().alpn() == "echo/1");
        CHECK(p.client_tls->engine().version() == "TLSv1.3");
        p.client->push("one\ntwo\n");
        p.client->push("three\n");
        std::string got;
        for (int i = 0; i < 3; ++i) {
            auto line = co_await p.client->read();
            REQUIRE(line);
            got += std::string(line.text()) + "|";
        }
        CHECK(got == "one|two|three|");
        CHECK(p.server_tls->engine().server_name() == "localhost");
        // The client ends in order: the server reads a clean end (close_notify), not a
        // truncation, and answers with its own.
        co_await p.client->flush();
        p.client->end_output();
        const int lines = co_await server.join();
        CHECK(lines == 3);
        CHECK_FALSE(p.server->close_reason());
        auto end = co_await p.client->read();
        CHECK_FALSE(end);
        CHECK_FALSE(end.error());  // the server's close_notify: a clean end of stream
    });
}

TEST_CASE("tls transport: 16 MiB each way, checked byte for byte", "[tls]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        const auto sctx = server_context();
        const auto cctx = client_context();
        auto p = make_pair(r, sctx, cctx);
        constexpr std::size_t total = 16u << 20;
        // The server echoes whatever comes, as it comes.
        auto echo = [](channel& ch) -> task<std::size_t> {
            ch.set_terminator(chat::terminator::none());
            std::size_t n = 0;
            for (;;) {
                auto data = co_await ch.read();
                if (!data) {
                    break;
                }
                n += data.data().size();
                ch.push(std::move(data));
            }
            co_await ch.finish();
            co_return n;
        };
        test::background<std::size_t> server(r, echo(*p.server));
        auto pattern = [](std::size_t i) { return static_cast<char>('a' + (i * 7 + i / 251) % 26); };
        auto writer = [](channel& ch, auto pattern) -> task<bool> {
            std::string block(64 * 1024, '\0');
            for (std::size_t at = 0; at < total; at += block.size()) {
                for (std::size_t i = 0; i < block.size(); ++i) {
                    block[i] = pattern(at + i);
                }
                ch.push(block);
                co_await ch.drain();
            }
            co_await ch.flush();
            ch.end_output();
            co_return ch.is_open();
        };
        test::background<bool> sending(r, writer(*p.client, pattern));
        p.client->set_terminator(chat::terminator::none());
        std::size_t got = 0;
        std::size_t wrong = 0;
        for (;;) {
            auto data = co_await p.client->read();
            if (!data) {
                CHECK_FALSE(data.error());
                break;
            }
            for (const std::byte b : data.data()) {
                wrong += static_cast<char>(b) != pattern(got++) ? 1 : 0;
            }
        }
        const bool sent = co_await sending.join();
        const std::size_t echoed = co_await server.join();
        CHECK(sent);
        CHECK(echoed == total);
        CHECK(got == total);
        CHECK(wrong == 0);
    });
}

TEST_CASE("tls transport: a plaintext client on a TLS port gets a clear error and a close",
          "[tls]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        const auto sctx = server_context();
        auto [a, b] = test::socket_pair(r);
        channel server(std::make_unique<tls_transport>(std::move(a), sctx));
        const std::string_view get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        REQUIRE(::send(b.fd(), get.data(), get.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(get.size()));
        auto got = co_await server.read();
        CHECK_FALSE(got);
        CHECK(got.error());
        CHECK_THAT(got.error().message(), Catch::Contains("plaintext HTTP"));
        CHECK_FALSE(server.is_open());
        // The peer sees the connection end (an alert, then the close), not a hang.
        std::string seen;
        for (int i = 0; i < 100; ++i) {
            char buf[512];
            const ssize_t n = ::recv(b.fd(), buf, sizeof buf, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN)) {
                seen += "<end>";
                break;
            }
            if (n > 0) {
                seen.append(buf, static_cast<std::size_t>(n));
            }
            co_await test::yield_now{r};
        }
        CHECK(seen.ends_with("<end>"));
    });
}

TEST_CASE("tls transport: a server certificate that fails verification ends the client",
          "[tls]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        const auto& certs = test::test_certs::get();
        const auto expired = server_context_with(certs.expired);
        const auto cctx = client_context();
        auto p = make_pair(r, expired, cctx);
        test::background<int> server(r, echo_lines(*p.server));
        const std::error_code shaken = co_await p.client_tls->handshake();
        CHECK(shaken);
        CHECK_THAT(shaken.message(), Catch::Contains("expired"));
        p.client->push("never sent\n");
        auto got = co_await p.client->read();
        CHECK_FALSE(got);
        CHECK_THAT(got.error().message(), Catch::Contains("expired"));
        CHECK_FALSE(p.client->is_open());
        // The send that waited for the handshake failed too: the channel's reason is the
        // certificate's, not the send's ECONNABORTED.
        CHECK_THAT(p.client->close_reason().message(), Catch::Contains("expired"));
        const int lines = co_await server.join();  // the server sees the alert, and ends
        CHECK(lines == 0);
        CHECK(p.server->close_reason());
    });
}

TEST_CASE("tls transport: a handshake that stalls meets its deadline", "[tls]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        const auto sctx = server_context();
        auto [a, b] = test::socket_pair(r);
        channel server(std::make_unique<tls_transport>(
            std::move(a), sctx, chat::tls_options{.server_name = {}, .handshake_timeout = 100ms}));
        auto got = co_await server.read();  // the peer connected and says nothing
        CHECK_FALSE(got);
        CHECK(got.error() == tls::errc::handshake_timeout);
        CHECK_THAT(got.error().message(), Catch::Contains("handshake"));
        CHECK_FALSE(server.is_open());
        (void)b;
    });
}

TEST_CASE("tls transport: an end of stream without close_notify is a truncation", "[tls]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        const auto sctx = server_context();
        const auto cctx = client_context();
        auto p = make_pair(r, sctx, cctx);
        p.client->push("half a line");
        co_await p.client->flush();
        // A FIN under TLS: the socket's own half close, without the close_notify.
        REQUIRE(p.client->socket() != nullptr);
        REQUIRE(p.client->socket()->shutdown(SHUT_WR));
        auto got = co_await p.server->read();
        CHECK_FALSE(got);
        CHECK(got.error() == tls::errc::truncated);
        CHECK(got.partial() == "half a line");
        p.client->close();
    });
}

TEST_CASE("tls transport: a session that pushes before it reads (the server speaks first)",
          "[tls]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        const auto sctx = server_context();
        const auto cctx = client_context();
        auto p = make_pair(r, sctx, cctx);
        p.client->set_terminator("\r\n");
        p.server->push("220 hello\r\n");  // waits for the handshake, then goes out
        auto greeting = co_await p.client->read();
        REQUIRE(greeting);
        CHECK(greeting.text() == "220 hello");
        co_await p.server->finish();
        auto end = co_await p.client->read();
        CHECK_FALSE(end);
        CHECK_FALSE(end.error());
    });
}

TEST_CASE("tls transport: STARTTLS, a plaintext channel upgraded in place", "[tls]") {
    const auto kind = GENERATE(from_range(test::backends()));
    CAPTURE(kind);
    test::run(kind, [](reactor& r) -> task<> {
        const auto sctx = server_context();
        const auto cctx = client_context();
        auto [a, b] = test::socket_pair(r);
        channel server(std::move(a));
        channel client(std::move(b));
        server.set_terminator("\r\n");
        client.set_terminator("\r\n");
        auto session = [](channel& ch, const tls::context& ctx) -> task<std::string> {
            auto command = co_await ch.read();
            if (!command || command.text() != "STARTTLS") {
                co_return "no STARTTLS";
            }
            ch.push("220 go ahead\r\n");
            co_await ch.flush();
            const bool upgraded = ch.replace_transport([&](std::unique_ptr<chat::transport> t) {
                return std::unique_ptr<chat::transport>(
                    std::make_unique<tls_transport>(std::move(t), ctx));
            });
            if (!upgraded) {
                co_return "not upgraded";
            }
            auto secret = co_await ch.read();  // over TLS now
            const std::string got = secret ? std::string(secret.text()) : "no line";
            ch.push("250 " + got + "\r\n");
            co_await ch.finish();
            co_return got;
        };
        test::background<std::string> served(r, session(server, sctx));
        client.push("STARTTLS\r\n");
        auto go = co_await client.read();
        REQUIRE(go);
        CHECK(go.text() == "220 go ahead");
        // Refused while output is queued; done between frames with nothing queued.
        client.push("not yet\r\n");
        const auto wrap = [&](std::unique_ptr<chat::transport> t) {
            return std::unique_ptr<chat::transport>(std::make_unique<tls_transport>(
                std::move(t), cctx, chat::tls_options{.server_name = "localhost"}));
        };
        CHECK_FALSE(client.replace_transport(wrap));
        client.discard_buffers();
        CHECK(client.replace_transport(wrap));
        client.push("secret\r\n");
        auto answer = co_await client.read();
        REQUIRE(answer);
        CHECK(answer.text() == "250 secret");
        const std::string got = co_await served.join();
        CHECK(got == "secret");
        auto* t = dynamic_cast<tls_transport*>(&client.transport());
        REQUIRE(t != nullptr);
        CHECK(t->engine().handshake_done());
        auto end = co_await client.read();
        CHECK_FALSE(end);
        CHECK_FALSE(end.error());  // close_notify
    });
}
