// SPDX-License-Identifier: MIT
// tests/chat/test_tls_engine.cpp — the TLS engine and context (chat/tls.hpp), in memory.
//
// Sections: 1 helpers (contexts from the test certificates, a pump that moves each engine's
// output into the other, read_all); 2 the handshake and data; 3 closing: close_notify,
// truncation; 4 a peer that does not speak TLS; 5 verifying the server; 6 ALPN and SNI;
// 7 client certificates; 8 a context's errors; 9 lifetimes and arguments. Invariant: no socket
// and no reactor: a client engine and a server engine talk through the test's pump, so every
// byte either sends is accounted for; the certificates are made at run time
// (tests/support/test_certs.hpp). The random case uses a fixed seed and prints it.
#include "chat/tls.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "core/log.hpp"
#include "tests/support/support.hpp"
#include "tests/support/test_certs.hpp"

namespace tls = ringchat::chat::tls;
using ringchat::test::test_certs;

// ---------------------------------------------------------------------------------------------
// 1. Helpers
// ---------------------------------------------------------------------------------------------

namespace {

const test_certs& certs() { return test_certs::get(); }

std::span<const std::byte> as_bytes(std::string_view s) { return ringchat::test::bytes(s); }

/// A server presenting `cert` (localhost by default).
tls::context server_context(tls::context_options o = {}) {
    if (o.cert_file.empty()) {
        o.cert_file = certs().localhost.cert;
        o.key_file = certs().localhost.key;
    }
    auto c = tls::context::server(o);
    INFO(c.error().message());
    REQUIRE(c);
    return *std::move(c);
}

/// A client trusting the test CA (unless `o` names another).
tls::context client_context(tls::context_options o = {}) {
    if (o.ca_file.empty()) {
        o.ca_file = certs().ca.cert;
    }
    auto c = tls::context::client(o);
    INFO(c.error().message());
    REQUIRE(c);
    return *std::move(c);
}

/// Moves what `from` has to send into `to`; returns how many bytes.
std::size_t move_output(tls::engine& from, tls::engine& to) {
    const std::span<const std::byte> out = from.output();
    const std::size_t n = out.size();
    if (n > 0) {
        to.feed(out);
        from.consume_output(n);
    }
    return n;
}

struct outcome {
    std::error_code client;
    std::error_code server;
};

/// Steps both handshakes, moving bytes between them, until neither has anything to send.
outcome run_handshake(tls::engine& client, tls::engine& server) {
    outcome r;
    for (int turn = 0; turn < 20; ++turn) {
        r.client = client.handshake().error();
        r.server = server.handshake().error();
        if (move_output(client, server) + move_output(server, client) == 0) {
            break;
        }
    }
    return r;
}

/// Reads until the engine has no plaintext left (wants input, or closed). Fails on an error.
std::string read_all(tls::engine& e) {
    std::string out;
    std::byte buf[4096];
    for (;;) {
        auto n = e.read(buf);
        INFO(n.error().message());
        REQUIRE(n);
        if (*n == 0) {
            return out;
        }
        out.append(reinterpret_cast<const char*>(buf), *n);
    }
}

/// The first error read() ends with, after whatever plaintext came first.
std::error_code read_error(tls::engine& e) {
    std::byte buf[4096];
    for (int i = 0; i < 1000; ++i) {
        auto n = e.read(buf);
        if (!n) {
            return n.error();
        }
        if (*n == 0) {
            return {};
        }
    }
    return {};
}

bool contains(const std::string& text, std::string_view part) {
    return text.find(part) != std::string::npos;
}

/// A connected pair, the handshake done.
struct connection {
    tls::engine client;
    tls::engine server;
};

connection connected(const tls::context& c, const tls::context& s,
                     std::string_view name = "localhost") {
    connection k{tls::engine(c, name), tls::engine(s)};
    const outcome o = run_handshake(k.client, k.server);
    INFO("client: " << o.client.message() << "; server: " << o.server.message());
    REQUIRE(!o.client);
    REQUIRE(!o.server);
    REQUIRE(k.client.handshake_done());
    REQUIRE(k.server.handshake_done());
    return k;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// 2. The handshake and data
// ---------------------------------------------------------------------------------------------

TEST_CASE("a client and a server engine complete a handshake through memory", "[tls]") {
    const tls::context s = server_context();
    const tls::context c = client_context();
    tls::engine client(c, "localhost");
    tls::engine server(s);
    CHECK(client.side() == tls::role::client);
    CHECK(server.side() == tls::role::server);
    CHECK(client.output().empty());  // nothing before the first step
    REQUIRE(client.handshake());
    CHECK(!client.output().empty());  // the ClientHello
    CHECK(client.wants_input());
    CHECK(!client.handshake_done());
    CHECK(client.version().empty());

    const outcome o = run_handshake(client, server);
    INFO("client: " << o.client.message() << "; server: " << o.server.message());
    REQUIRE(!o.client);
    REQUIRE(!o.server);
    CHECK(client.handshake_done());
    CHECK(server.handshake_done());
    CHECK(client.version() == "TLSv1.3");
    CHECK(server.version() == "TLSv1.3");
    CHECK(!client.cipher().empty());
    CHECK(client.cipher() == server.cipher());
    CHECK(client.peer_verified());
    CHECK(!server.peer_verified());  // no client certificate asked for
    CHECK(client.server_name() == "localhost");
    CHECK(server.server_name() == "localhost");
    CHECK(client.alpn().empty());

    auto w = client.write(as_bytes("hello"));
    REQUIRE(w);
    CHECK(*w == 5);
    move_output(client, server);
    CHECK(read_all(server) == "hello");
    CHECK(server.wants_input());
    auto back = server.write(as_bytes("world"));
    REQUIRE(back);
    move_output(server, client);
    CHECK(read_all(client) == "world");
    CHECK(!client.error());
    CHECK(!server.error());
}

TEST_CASE("16 MiB each way, written and read in random pieces, arrive byte for byte", "[tls]") {
    const tls::context s = server_context();
    const tls::context c = client_context();
    connection k = connected(c, s);

    const std::uint32_t seed = 20261203;
    INFO("seed " << seed);
    std::mt19937 rng(seed);
    constexpr std::size_t total = 16 * 1024 * 1024;
    auto make_data = [&rng] {
        std::vector<std::byte> d(total);
        for (std::byte& b : d) {
            b = static_cast<std::byte>(rng() & 0xff);
        }
        return d;
    };
    const std::vector<std::byte> up = make_data();    // client to server
    const std::vector<std::byte> down = make_data();  // server to client
    std::vector<std::byte> got_up;
    std::vector<std::byte> got_down;
    got_up.reserve(total);
    got_down.reserve(total);
    std::uniform_int_distribution<std::size_t> piece(1, 100000);
    std::vector<std::byte> buf(70000);

    auto drain = [&](tls::engine& reader, std::vector<std::byte>& into) {
        for (;;) {
            const std::size_t want = std::min(buf.size(), piece(rng));
            auto n = reader.read(std::span(buf.data(), want));
            INFO(n.error().message());
            REQUIRE(n);
            if (*n == 0) {
                REQUIRE(reader.wants_input());
                return;
            }
            into.insert(into.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n));
        }
    };
    std::size_t sent_up = 0;
    std::size_t sent_down = 0;
    while (sent_up < total || sent_down < total) {
        if (sent_up < total) {
            const std::size_t n = std::min(total - sent_up, piece(rng));
            auto w = k.client.write(std::span(up.data() + sent_up, n));
            REQUIRE(w);
            REQUIRE(*w == n);
            sent_up += n;
        }
        if (sent_down < total) {
            const std::size_t n = std::min(total - sent_down, piece(rng));
            auto w = k.server.write(std::span(down.data() + sent_down, n));
            REQUIRE(w);
            REQUIRE(*w == n);
            sent_down += n;
        }
        // The network delivers what was sent in pieces of its own size.
        for (auto [from, to] : {std::pair{&k.client, &k.server}, std::pair{&k.server, &k.client}}) {
            while (!from->output().empty()) {
                const std::size_t n = std::min(from->output().size(), piece(rng));
                to->feed(from->output().first(n));
                from->consume_output(n);
            }
        }
        drain(k.server, got_up);
        drain(k.client, got_down);
    }
    REQUIRE(got_up.size() == total);
    REQUIRE(got_down.size() == total);
    CHECK(got_up == up);
    CHECK(got_down == down);
    // Drained, the engines give their queues' storage back.
    CHECK(k.client.held_bytes() <= 8192);
    CHECK(k.server.held_bytes() <= 8192);
}

TEST_CASE("write() before the handshake is done takes nothing and drives the handshake", "[tls]") {
    const tls::context s = server_context();
    const tls::context c = client_context();
    tls::engine client(c, "localhost");
    tls::engine server(s);
    auto early = client.write(as_bytes("early"));
    REQUIRE(early);
    CHECK(*early == 0);
    CHECK(client.wants_input());
    CHECK(!client.output().empty());  // the ClientHello it started
    auto on_server = server.write(as_bytes("early"));
    REQUIRE(on_server);
    CHECK(*on_server == 0);
    CHECK(server.wants_input());
    CHECK(server.output().empty());  // a server waits for the ClientHello

    const outcome o = run_handshake(client, server);
    REQUIRE(!o.client);
    REQUIRE(!o.server);
    auto later = client.write(as_bytes("early"));
    REQUIRE(later);
    CHECK(*later == 5);
    move_output(client, server);
    CHECK(read_all(server) == "early");
}

// ---------------------------------------------------------------------------------------------
// 3. Closing: close_notify, truncation
// ---------------------------------------------------------------------------------------------

TEST_CASE("close_notify is a clean end for the other side, which may still answer", "[tls]") {
    const tls::context s = server_context();
    const tls::context c = client_context();
    connection k = connected(c, s);
    REQUIRE(k.client.write(as_bytes("last words")));
    k.client.shutdown();
    move_output(k.client, k.server);

    CHECK(read_all(k.server) == "last words");
    CHECK(k.server.closed());
    CHECK(!k.server.wants_input());
    CHECK(!k.server.error());
    k.server.feed_eof();  // the TCP FIN after close_notify: still a clean end
    std::byte buf[16];
    auto after = k.server.read(buf);
    REQUIRE(after);
    CHECK(*after == 0);
    CHECK(k.server.closed());

    // The client shut its side: no more writes.
    auto refused = k.client.write(as_bytes("more"));
    REQUIRE(!refused);
    CHECK(refused.error() == tls::errc::shut_down);
    CHECK(contains(refused.error().message(), "shutdown()"));

    // The server's side is still open (half close): its answer, then its close_notify.
    auto reply = k.server.write(as_bytes("goodbye"));
    REQUIRE(reply);
    CHECK(*reply == 7);
    k.server.shutdown();
    move_output(k.server, k.client);
    CHECK(read_all(k.client) == "goodbye");
    CHECK(k.client.closed());
    CHECK(!k.client.error());
}

TEST_CASE("an end of stream without close_notify is a truncation error", "[tls]") {
    const tls::context s = server_context();
    const tls::context c = client_context();
    connection k = connected(c, s);
    REQUIRE(k.client.write(as_bytes("partial")));
    move_output(k.client, k.server);
    k.server.feed_eof();

    std::byte buf[64];
    auto n = k.server.read(buf);
    REQUIRE(n);
    CHECK(ringchat::test::text(std::span(buf, *n)) == "partial");  // what came, first
    auto end = k.server.read(buf);
    REQUIRE(!end);
    CHECK(end.error() == tls::errc::truncated);
    const std::string m = end.error().message();
    CHECK(contains(m, "close_notify"));
    CHECK(contains(m, "truncated"));
    CHECK(!k.server.closed());
    // Final: every later call says the same.
    CHECK(k.server.error() == tls::errc::truncated);
    auto again = k.server.read(buf);
    CHECK(again.error() == tls::errc::truncated);
    CHECK(k.server.write(as_bytes("x")).error() == tls::errc::truncated);
}

TEST_CASE("an end of stream during the handshake says so, on either side", "[tls]") {
    const tls::context s = server_context();
    const tls::context c = client_context();
    SECTION("a server that got nothing (a port scanner, a health check)") {
        tls::engine server(s);
        server.feed_eof();
        auto h = server.handshake();
        REQUIRE(!h);
        CHECK(h.error() == tls::errc::closed_in_handshake);
        CHECK(contains(h.error().message(), "during the TLS handshake"));
    }
    SECTION("a client whose server went away after the ClientHello") {
        tls::engine client(c, "localhost");
        REQUIRE(client.handshake());
        client.consume_output(client.output().size());
        client.feed_eof();
        std::byte buf[16];
        auto n = client.read(buf);
        REQUIRE(!n);
        CHECK(n.error() == tls::errc::closed_in_handshake);
    }
}

// ---------------------------------------------------------------------------------------------
// 4. A peer that does not speak TLS
// ---------------------------------------------------------------------------------------------

TEST_CASE("a plaintext HTTP request to a server is a handshake error that says so", "[tls]") {
    const tls::context s = server_context();
    tls::engine server(s);
    server.feed(as_bytes("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    auto h = server.handshake();
    REQUIRE(!h);
    const std::string m = h.error().message();
    INFO(m);
    CHECK(h.error().category() == tls::openssl_category());
    CHECK(contains(m, "plaintext HTTP request"));
    CHECK(contains(m, "not TLS"));
    CHECK(!server.handshake_done());
    CHECK(server.error() == h.error());
}

TEST_CASE("another plaintext protocol on a TLS port is an error naming TLS", "[tls]") {
    const tls::context s = server_context();
    tls::engine server(s);
    server.feed(as_bytes("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"));
    std::byte buf[16];
    auto n = server.read(buf);
    REQUIRE(!n);
    const std::string m = n.error().message();
    INFO(m);
    CHECK(contains(m, "not TLS"));
}

// ---------------------------------------------------------------------------------------------
// 5. Verifying the server
// ---------------------------------------------------------------------------------------------

namespace {

struct rejection {
    const char* what;
    std::string cert;
    std::string key;
    std::string name;       // the name the client asks for
    std::string ca;         // the client's CA file
    int code;               // the client's verify result
    const char* says;       // words its message must hold
    const char* also_says;  // and these
};

}  // namespace

TEST_CASE("a server certificate that fails verification fails the client's handshake, saying why",
          "[tls]") {
    const test_certs& t = certs();
    const std::vector<rejection> cases = {
        {"expired", t.expired.cert, t.expired.key, "localhost", t.ca.cert,
         X509_V_ERR_CERT_HAS_EXPIRED, "certificate has expired", "certificate verify failed"},
        {"self-signed", t.self_signed.cert, t.self_signed.key, "localhost", t.ca.cert,
         X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, "self-signed certificate", "unknown CA"},
        {"issued by a CA the client does not trust", t.localhost.cert, t.localhost.key,
         "localhost", t.self_signed.cert, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
         "local issuer", "unknown CA"},
        {"for another name", t.localhost.cert, t.localhost.key, "example.com", t.ca.cert,
         X509_V_ERR_HOSTNAME_MISMATCH, "hostname mismatch", "not for the name"},
        {"for another address", t.localhost.cert, t.localhost.key, "127.0.0.2", t.ca.cert,
         X509_V_ERR_IP_ADDRESS_MISMATCH, "IP address mismatch", "not for the name"},
    };
    for (const rejection& r : cases) {
        INFO(r.what);
        tls::context_options so;
        so.cert_file = r.cert;
        so.key_file = r.key;
        const tls::context s = server_context(so);
        tls::context_options co;
        co.ca_file = r.ca;

        tls::engine client(client_context(co), r.name);
        tls::engine server(s);
        const outcome o = run_handshake(client, server);
        const std::string m = o.client.message();
        INFO(m);
        REQUIRE(o.client);
        CHECK(o.client.category() == tls::verify_category());
        CHECK(o.client.value() == r.code);
        CHECK(contains(m, r.says));
        CHECK(contains(m, r.also_says));
        CHECK(!client.handshake_done());
        // The client told the server, which fails on the alert.
        INFO("server: " << o.server.message());
        REQUIRE(o.server);
        CHECK(contains(o.server.message(), "the peer sent a fatal alert"));

        // verify_peer = false lets the same certificate through, and says it did not verify.
        co.verify_peer = false;
        connection k = connected(client_context(co), s, r.name);
        CHECK(!k.client.peer_verified());
    }
}

TEST_CASE("the server's certificate is checked against an address the client gives", "[tls]") {
    const tls::context s = server_context();
    const tls::context c = client_context();
    connection k = connected(c, s, "127.0.0.1");  // the certificate's IP SAN
    CHECK(k.client.peer_verified());
    CHECK(k.server.server_name().empty());  // an address is not sent as SNI
}

TEST_CASE("a server unknown to the client's CA makes the server see 'unknown CA'", "[tls]") {
    tls::context_options so;
    so.cert_file = certs().self_signed.cert;
    so.key_file = certs().self_signed.key;
    tls::engine client(client_context(), "localhost");
    tls::engine server(server_context(so));
    const outcome o = run_handshake(client, server);
    REQUIRE(o.server);
    const std::string m = o.server.message();
    INFO(m);
    CHECK(contains(m, "unknown CA"));
    CHECK(contains(m, "does not trust"));
}

// ---------------------------------------------------------------------------------------------
// 6. ALPN and SNI
// ---------------------------------------------------------------------------------------------

TEST_CASE("ALPN picks the server's most preferred protocol that the client offers", "[tls]") {
    SECTION("h2 not accepted by the server: http/1.1") {
        tls::context_options so;
        so.alpn = {"http/1.1"};
        tls::context_options co;
        co.alpn = {"h2", "http/1.1"};
        connection k = connected(client_context(co), server_context(so));
        CHECK(k.client.alpn() == "http/1.1");
        CHECK(k.server.alpn() == "http/1.1");
    }
    SECTION("both accepted: the server's preference wins over the client's order") {
        tls::context_options so;
        so.alpn = {"h2", "http/1.1"};
        tls::context_options co;
        co.alpn = {"http/1.1", "h2"};
        connection k = connected(client_context(co), server_context(so));
        CHECK(k.client.alpn() == "h2");
        CHECK(k.server.alpn() == "h2");
    }
    SECTION("a client that offers none: no protocol, no error") {
        tls::context_options so;
        so.alpn = {"h2", "http/1.1"};
        connection k = connected(client_context(), server_context(so));
        CHECK(k.client.alpn().empty());
        CHECK(k.server.alpn().empty());
    }
    SECTION("nothing in common: both sides fail, saying ALPN") {
        tls::context_options so;
        so.alpn = {"http/1.1"};
        tls::context_options co;
        co.alpn = {"h2"};
        tls::engine client(client_context(co), "localhost");
        tls::engine server(server_context(so));
        const outcome o = run_handshake(client, server);
        INFO("client: " << o.client.message() << "; server: " << o.server.message());
        REQUIRE(o.server);
        REQUIRE(o.client);
        CHECK(contains(o.server.message(), "no application protocol in common (ALPN)"));
        CHECK(contains(o.client.message(), "ALPN"));
    }
}

TEST_CASE("SNI: the server presents the certificate of the name the client asks for", "[tls]") {
    tls::context_options so;
    so.sni = {{"other.test", certs().other.cert, certs().other.key}};
    const tls::context s = server_context(so);
    const tls::context c = client_context();
    {
        // The client checks the name: it verifies only with other.test's certificate.
        connection k = connected(c, s, "other.test");
        CHECK(k.client.peer_verified());
        CHECK(k.server.server_name() == "other.test");
    }
    {
        connection k = connected(c, s, "OTHER.test");  // names are matched without case
        CHECK(k.client.peer_verified());
    }
    {
        connection k = connected(c, s, "localhost");  // no entry: the default certificate
        CHECK(k.client.peer_verified());
        CHECK(k.server.server_name() == "localhost");
    }
    {
        // And with no name sent at all, the default: the client (checking no name) trusts it.
        connection k = connected(c, s, "");
        CHECK(k.client.peer_verified());
        CHECK(k.server.server_name().empty());
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Client certificates
// ---------------------------------------------------------------------------------------------

TEST_CASE("a server with ca_file requires a client certificate from that CA", "[tls]") {
    tls::context_options so;
    so.ca_file = certs().ca.cert;
    const tls::context s = server_context(so);
    SECTION("a client without one is refused, and both sides say why") {
        tls::engine client(client_context(), "localhost");
        tls::engine server(s);
        const outcome o = run_handshake(client, server);
        REQUIRE(o.server);
        INFO("server: " << o.server.message());
        CHECK(contains(o.server.message(), "sent no certificate"));
        // TLS 1.3: the client's handshake was done before the server refused; its read fails.
        const std::error_code e = o.client ? o.client : read_error(client);
        INFO("client: " << e.message());
        REQUIRE(e);
        CHECK(contains(e.message(), "fatal alert: certificate required"));
        CHECK(contains(e.message(), "requires a client certificate"));
    }
    SECTION("a client with one from the CA is verified") {
        tls::context_options co;
        co.cert_file = certs().localhost.cert;
        co.key_file = certs().localhost.key;
        connection k = connected(client_context(co), s);
        CHECK(k.server.peer_verified());
        CHECK(k.client.peer_verified());
    }
    SECTION("a client with one from another CA is refused") {
        tls::context_options co;
        co.cert_file = certs().self_signed.cert;
        co.key_file = certs().self_signed.key;
        tls::engine client(client_context(co), "localhost");
        tls::engine server(s);
        const outcome o = run_handshake(client, server);
        REQUIRE(o.server);
        INFO("server: " << o.server.message());
        CHECK(o.server.category() == tls::verify_category());
        CHECK(contains(o.server.message(), "certificate verify failed"));
    }
    SECTION("verify_peer = false: a client without one is let in, unverified") {
        so.verify_peer = false;
        connection k = connected(client_context(), server_context(so));
        CHECK(!k.server.peer_verified());
    }
}

// ---------------------------------------------------------------------------------------------
// 8. A context's errors
// ---------------------------------------------------------------------------------------------

namespace {

/// The error a server context from `o` fails with.
std::error_code server_error(const tls::context_options& o) {
    auto c = tls::context::server(o);
    REQUIRE(!c);
    return c.error();
}

std::string write_file(const std::string& name, std::string_view text) {
    const std::string path = certs().dir + "/" + name;
    FILE* f = std::fopen(path.c_str(), "w");
    REQUIRE(f != nullptr);
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
    return path;
}

}  // namespace

TEST_CASE("a context that cannot be made says which file and why", "[tls]") {
    const test_certs& t = certs();
    tls::context_options o;
    SECTION("a missing certificate file") {
        o.cert_file = t.dir + "/missing.pem";
        const std::error_code e = server_error(o);
        CHECK(e.message() ==
              "tls: cannot load certificate " + t.dir + "/missing.pem: No such file or directory");
        CHECK(e == std::errc::no_such_file_or_directory);
        CHECK(tls::cause(e) == std::error_code(ENOENT, std::system_category()));
    }
    SECTION("a missing key file") {
        o.cert_file = t.localhost.cert;
        o.key_file = t.dir + "/missing.key";
        const std::string m = server_error(o).message();
        CHECK(m == "tls: cannot load key " + t.dir + "/missing.key: No such file or directory");
    }
    SECTION("a key that is not the certificate's") {
        o.cert_file = t.localhost.cert;
        o.key_file = t.other.key;
        const std::string m = server_error(o).message();
        INFO(m);
        CHECK(contains(m, "tls: key " + t.other.key + " does not match certificate " +
                              t.localhost.cert));
    }
    SECTION("a certificate file that holds no certificate") {
        o.cert_file = write_file("not-a-cert.pem", "hello\n");
        const std::string m = server_error(o).message();
        INFO(m);
        CHECK(contains(m, "tls: cannot load certificate " + o.cert_file));
        CHECK(contains(m, "no PEM data"));
    }
    SECTION("the key read from the certificate's file, where there is none") {
        o.cert_file = t.localhost.cert;  // no key_file: the key is looked for in cert_file
        const std::string m = server_error(o).message();
        INFO(m);
        CHECK(contains(m, "tls: cannot load key " + t.localhost.cert + ": no private key in it"));
    }
    SECTION("an encrypted key: refused at once, never a passphrase prompt") {
        BIO* in = BIO_new_file(t.localhost.key.c_str(), "r");
        REQUIRE(in != nullptr);
        EVP_PKEY* key = PEM_read_bio_PrivateKey(in, nullptr, nullptr, nullptr);
        BIO_free(in);
        REQUIRE(key != nullptr);
        o.cert_file = t.localhost.cert;
        o.key_file = t.dir + "/encrypted.key";
        BIO* out = BIO_new_file(o.key_file.c_str(), "w");
        REQUIRE(out != nullptr);
        static const char pass[] = "secret";
        const int written = PEM_write_bio_PrivateKey(
            out, key, EVP_aes_256_cbc(), reinterpret_cast<const unsigned char*>(pass),
            sizeof pass - 1, nullptr, nullptr);
        BIO_free(out);
        EVP_PKEY_free(key);
        REQUIRE(written == 1);
        const std::string m = server_error(o).message();
        INFO(m);
        CHECK(contains(m, "tls: cannot load key " + o.key_file + ": it is encrypted"));
    }
    SECTION("a missing CA file, on either side") {
        o.cert_file = t.localhost.cert;
        o.key_file = t.localhost.key;
        o.ca_file = t.dir + "/missing-ca.pem";
        const std::string m = server_error(o).message();
        INFO(m);
        CHECK(contains(m, "tls: cannot load CA certificates " + o.ca_file));
        CHECK(contains(m, "No such file or directory"));
        tls::context_options co;
        co.ca_file = o.ca_file;
        auto c = tls::context::client(co);
        REQUIRE(!c);
        CHECK(c.error().message() == m);
    }
    SECTION("a server without a certificate") {
        const std::error_code e = server_error(o);
        CHECK(contains(e.message(), "needs a certificate (cert_file)"));
        CHECK(e == std::errc::invalid_argument);
    }
    SECTION("an empty ALPN name") {
        tls::context_options co;
        co.alpn = {"h2", ""};
        auto c = tls::context::client(co);
        REQUIRE(!c);
        CHECK(contains(c.error().message(), "ALPN protocol name of 0 bytes"));
    }
    SECTION("an SNI entry whose files are missing, or twice the same name") {
        o.cert_file = t.localhost.cert;
        o.key_file = t.localhost.key;
        o.sni = {{"other.test", t.dir + "/gone.pem", ""}};
        CHECK(contains(server_error(o).message(), "tls: cannot load certificate " + t.dir +
                                                      "/gone.pem"));
        o.sni = {{"other.test", t.other.cert, t.other.key}, {"Other.Test", t.other.cert, ""}};
        CHECK(contains(server_error(o).message(), "two SNI entries for Other.Test"));
    }
    SECTION("value() throws the same sentence") {
        o.cert_file = t.dir + "/missing.pem";
        try {
            (void)tls::context::server(o).value();
            FAIL("no exception");
        } catch (const std::system_error& e) {
            CHECK(contains(e.what(), "tls: cannot load certificate " + o.cert_file));
        }
    }
}

TEST_CASE("a certificate and key in one file need no key_file", "[tls]") {
    std::string both;
    for (const std::string& part : {certs().localhost.cert, certs().localhost.key}) {
        FILE* f = std::fopen(part.c_str(), "r");
        REQUIRE(f != nullptr);
        char buf[4096];
        std::size_t n = 0;
        while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
            both.append(buf, n);
        }
        std::fclose(f);
    }
    tls::context_options so;
    so.cert_file = write_file("localhost-both.pem", both);
    connection k = connected(client_context(), server_context(so));
    CHECK(k.client.peer_verified());
}

// ---------------------------------------------------------------------------------------------
// 9. Lifetimes and arguments
// ---------------------------------------------------------------------------------------------

TEST_CASE("an engine outlives its context and survives a move mid-handshake", "[tls]") {
    std::vector<tls::engine> clients;
    std::vector<tls::engine> servers;
    {
        tls::context_options so;
        so.alpn = {"h2"};  // a callback that points into the context's state
        so.sni = {{"other.test", certs().other.cert, certs().other.key}};
        const tls::context s = server_context(so);
        tls::context_options co;
        co.alpn = {"h2"};
        const tls::context c = client_context(co);
        clients.emplace_back(c, "other.test");
        servers.emplace_back(s);
        REQUIRE(clients[0].handshake());
        move_output(clients[0], servers[0]);
    }  // both contexts gone
    tls::engine client = std::move(clients[0]);
    tls::engine server = std::move(servers[0]);
    clients.clear();
    servers.clear();
    const outcome o = run_handshake(client, server);
    INFO("client: " << o.client.message() << "; server: " << o.server.message());
    REQUIRE(!o.client);
    REQUIRE(!o.server);
    CHECK(client.alpn() == "h2");
    CHECK(client.peer_verified());
    CHECK(server.server_name() == "other.test");
    REQUIRE(client.write(as_bytes("still here")));
    move_output(client, server);
    CHECK(read_all(server) == "still here");
}

TEST_CASE("an engine refuses a server name it cannot use", "[tls]") {
    const tls::context s = server_context();
    const tls::context c = client_context();
    CHECK_THROWS_AS(tls::engine(s, "localhost"), std::invalid_argument);
    CHECK_THROWS_AS(tls::engine(c, std::string_view("local\0host", 10)), std::invalid_argument);
    CHECK_THROWS_AS(tls::engine(c, std::string(256, 'a')), std::invalid_argument);
    CHECK_NOTHROW(tls::engine(c, ""));
}

TEST_CASE("shutdown() before the handshake is done queues nothing and refuses writes", "[tls]") {
    tls::engine client(client_context(), "localhost");
    client.shutdown();
    CHECK(client.output().empty());
    auto w = client.write(as_bytes("x"));
    REQUIRE(!w);
    CHECK(w.error() == tls::errc::shut_down);
}

TEST_CASE("a server context says in one log line that kTLS is not used, and why", "[tls]") {
    struct capture {
        std::vector<std::string> lines;
        capture() {
            ringchat::log::set_level(ringchat::log::level::info);
            ringchat::log::set_sink([this](ringchat::log::level, std::string_view m) {
                lines.emplace_back(m);
            });
        }
        ~capture() {
            ringchat::log::set_sink({});
            ringchat::log::set_level(ringchat::log::level::warning);  // RINGCHAT_LOG=quiet
        }
    };
    const tls::ktls_probe& probe = tls::probe_ktls();
    CHECK(&probe == &tls::probe_ktls());  // probed once
    // What the probe finds, found again by hand: ENOENT means the kernel has no tls ULP.
    {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(fd >= 0);
        const int set = ::setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", 3);
        const int e = set == 0 ? 0 : errno;
        ::close(fd);
        CHECK(probe.kernel_has_tls == (set == 0 || e == ENOTCONN));
    }
    capture log;
    (void)server_context();  // ktls on by default
    REQUIRE(log.lines.size() == 1);
    CHECK(log.lines[0].starts_with("tls: kTLS is not used: "));
    CHECK(log.lines[0].find(probe.detail) != std::string::npos);
    CHECK(log.lines[0].find(probe.kernel_has_tls ? "does not hand keys" : "no tls module") !=
          std::string::npos);
    tls::context_options off;
    off.ktls = false;
    (void)server_context(off);
    (void)client_context();
    CHECK(log.lines.size() == 1);  // neither says anything
}
