// SPDX-License-Identifier: MIT
// tests/examples/test_tls_examples.cpp — the examples over TLS (--tls-cert, --tls-key) on both
// backends, driven by real TLS clients: curl and wrk (http), redis-cli --tls (resp), echo's own
// client with --tls --ca, Python's ssl module (chatroom). The certificates are the tests' own
// (tests/support/test_certs: a CA, and a leaf for localhost and 127.0.0.1 it issued).
//
// Also: a plaintext client on a TLS port (the server answers with an alert or nothing, and
// goes on serving), a certificate that cannot be loaded (one line that names the file, exit
// 1), --tls-handshake-timeout's command line, and a TLS server stopped with SIGTERM (exit 0).
// (The handshake deadline's effect, and the rest of hostile peers over TLS: test_hostile.cpp.)
#include <sys/socket.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/examples/harness.hpp"
#include "tests/support/support.hpp"
#include "tests/support/test_certs.hpp"

using namespace ringchat;
using namespace ringchat::test;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> tls_flags() {
    const auto& c = test_certs::get();
    return {"--tls-cert", c.localhost.cert, "--tls-key", c.localhost.key};
}

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

void require_program(const std::string& program) {
    if (!have_program(program)) {
        FAIL(program << " is not installed (tests/run installs it: tools/ensure-deps)");
    }
}

std::string ready(const std::string& name, const example_server& s, backend_kind kind) {
    return name + ": ready on 127.0.0.1:" + s.port_text() + " (" + backend_shown(kind) +
           ", TLS)";
}

/// A plaintext request to a TLS port gets no plaintext answer; the server goes on.
void plaintext_is_refused(const example_server& s, const std::string& request) {
    const auto r = run_command({"python3", "-c",
                                "import socket, sys\n"
                                "s = socket.create_connection(('127.0.0.1', " +
                                    s.port_text() +
                                    "), timeout=10)\n"
                                    "s.sendall(sys.stdin.buffer.read())\n"
                                    "got = b''\n"
                                    "while True:\n"
                                    "    try:\n"
                                    "        d = s.recv(4096)\n"
                                    "    except ConnectionResetError:\n"
                                    "        break\n"
                                    "    if not d:\n"
                                    "        break\n"
                                    "    got += d\n"
                                    "print(repr(got[:1]))\n"},
                               request, std::chrono::seconds(30));
    INFO(r.err);
    CHECK(r.status == 0);
    // Nothing that reads as the protocol's answer: empty, or a TLS alert record (0x15).
    CHECK((r.out == "b''\n" || r.out == "b'\\x15'\n"));
}

}  // namespace

TEST_CASE("http over TLS, with one reactor and --threads 2: curl GETs a file, wrk sees only 200s, "
          "a plaintext client is refused",
          "[examples][tls]") {
    const auto kind = GENERATE(from_range(backends()));
    // --threads 2: a reactor per thread, every one with the same TLS context.
    const std::string threads = GENERATE("1", "2");
    CAPTURE(kind, threads);
    require_program("curl");
    const fs::path root = fs::temp_directory_path() /
                          ("ringchat-https-" + std::to_string(::getpid()) + backend_flag(kind));
    fs::create_directories(root);
    std::string body;
    for (int i = 0; i < 5000; ++i) {
        body += "line " + std::to_string(i) + "\n";
    }
    std::ofstream(root / "index.html", std::ios::binary) << body;
    {
        example_server server("http", kind,
                              with({"--root", root.string(), "--threads", threads}, tls_flags()));
        CHECK(server.ready_line() == ready("http", server, kind));
        const std::string ca = test_certs::get().ca.cert;
        for (const std::string host : {"127.0.0.1", "localhost"}) {
            const auto r = run_command({"curl", "-sS", "--cacert", ca, "--resolve",
                                        "localhost:" + server.port_text() + ":127.0.0.1",
                                        "https://" + host + ":" + server.port_text() +
                                            "/index.html"});
            INFO(r.err);
            CHECK(r.status == 0);
            CHECK(r.out == body);
        }
        plaintext_is_refused(server, "GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n");
        if (have_program("wrk")) {
            const auto w = run_command({"wrk", "-t1", "-c10", "-d1s",
                                        "https://127.0.0.1:" + server.port_text() +
                                            "/index.html"});
            INFO(w.out << w.err);
            CHECK(w.status == 0);
            CHECK(w.out.find("requests in") != std::string::npos);
            CHECK(w.out.find("Non-2xx") == std::string::npos);
            CHECK(w.out.find("Socket errors") == std::string::npos);
        }
        CHECK(server.stop() == 0);
    }
    fs::remove_all(root);
}

TEST_CASE("resp over TLS: redis-cli --tls sets and gets", "[examples][tls]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    require_program("redis-cli");
    example_server server("resp", kind, tls_flags());
    CHECK(server.ready_line() == ready("resp", server, kind));
    const std::string ca = test_certs::get().ca.cert;
    const auto cli = [&](const std::vector<std::string>& args) {
        return run_command(with({"redis-cli", "--tls", "--cacert", ca, "-h", "127.0.0.1", "-p",
                                 server.port_text()},
                                args));
    };
    const auto set = cli({"SET", "greeting", "hello over TLS"});
    INFO(set.err);
    CHECK(set.out == "OK\n");
    const auto get = cli({"GET", "greeting"});
    CHECK(get.out == "hello over TLS\n");
    plaintext_is_refused(server, "PING\r\n");
    CHECK(server.stop() == 0);
}

TEST_CASE("echo over TLS: the client mode with --tls --ca, and one without the CA fails",
          "[examples][tls]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    example_server server("echo", kind, tls_flags());
    CHECK(server.ready_line() == ready("echo", server, kind));
    const std::string ca = test_certs::get().ca.cert;
    const auto r = run_command({example_program("echo").string(), "--client", "--tls", "--ca",
                                ca, "--port", server.port_text(), "--backend",
                                backend_flag(kind)},
                               "hello\nover TLS\n", std::chrono::seconds(30));
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(r.out == "hello\nover TLS\n");
    // Without --ca the system's CAs do not know the tests' CA: the handshake fails, and says so.
    const auto bad = run_command({example_program("echo").string(), "--client", "--tls", "--port",
                                  server.port_text()},
                                 "hello\n", std::chrono::seconds(30));
    CHECK(bad.status == 1);
    CHECK_THAT(bad.err, Catch::Contains("certificate verify failed"));
    CHECK(server.stop() == 0);
}

TEST_CASE("chatroom over TLS: two members through Python's ssl module", "[examples][tls]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    example_server server("chatroom", kind, tls_flags());
    CHECK(server.ready_line() == ready("chatroom", server, kind));
    const std::string script =
        "import socket, ssl, sys, time\n"
        "ctx = ssl.create_default_context(cafile=sys.argv[1])\n"
        "def member():\n"
        "    raw = socket.create_connection(('127.0.0.1', int(sys.argv[2])), timeout=10)\n"
        "    return ctx.wrap_socket(raw, server_hostname='localhost')\n"
        "a, b = member(), member()\n"
        "time.sleep(0.2)\n"
        "a.sendall(b'hello from a\\n')\n"
        "got = b''\n"
        "while b'hello from a' not in got:\n"
        "    d = b.recv(4096)\n"
        "    if not d: break\n"
        "    got += d\n"
        "print('ok' if b'hello from a' in got else 'missing: %r' % got)\n";
    const auto r = run_command({"python3", "-c", script, test_certs::get().ca.cert,
                                server.port_text()},
                               {}, std::chrono::seconds(30));
    INFO(r.err);
    CHECK(r.out == "ok\n");
    CHECK(server.stop() == 0);
}

TEST_CASE("a certificate that cannot be loaded: one line that names it, exit 1",
          "[examples][tls]") {
    const auto r = run_command({example_program("http").string(), "--port", "0", "--tls-cert",
                                "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"});
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::StartsWith("http: tls: cannot load certificate /nonexistent/cert.pem"));
    const auto half = run_command({example_program("resp").string(), "--tls-cert", "x.pem"});
    CHECK(half.status == 2);
    CHECK_THAT(half.err, Catch::Contains("--tls-cert: needs --tls-key"));
}

TEST_CASE("--tls-handshake-timeout: in the --help of every example that takes --tls-cert; "
          "refused without --tls-cert and with a bad value",
          "[examples][tls]") {
    for (const std::string name : {"echo", "chatroom", "resp", "http", "smtp"}) {
        CAPTURE(name);
        const auto help = run_command({example_program(name).string(), "--help"});
        CHECK(help.status == 0);
        CHECK_THAT(help.out, Catch::Contains("--tls-handshake-timeout S") &&
                                 Catch::Contains("(default 10; 0 = none)"));
    }
    const auto alone = run_command({example_program("echo").string(),
                                    "--tls-handshake-timeout", "1"});
    CHECK(alone.status == 2);
    CHECK_THAT(alone.err, Catch::StartsWith("echo: --tls-handshake-timeout: needs --tls-cert\n"));
    const auto& c = test_certs::get();
    const auto bad = run_command({example_program("http").string(), "--tls-cert", c.localhost.cert,
                                  "--tls-key", c.localhost.key, "--tls-handshake-timeout", "soon"});
    CHECK(bad.status == 2);
    CHECK_THAT(bad.err, Catch::StartsWith("http: --tls-handshake-timeout: not a number of seconds "
                                          "(0 to 86400): 'soon'\n"));
}

TEST_CASE("smtp STARTTLS: smtplib upgrades, greets again and sends a message", "[examples][tls]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    const fs::path maildir = fs::temp_directory_path() /
                             ("ringchat-starttls-" + std::to_string(::getpid()) + backend_flag(kind));
    fs::remove_all(maildir);
    {
        example_server server("smtp", kind, with({"--maildir", maildir.string()}, tls_flags()));
        CHECK(server.ready_line() == "smtp: ready on 127.0.0.1:" + server.port_text() + " (" +
                                         backend_shown(kind) + ", STARTTLS)");
        const std::string script =
            "import smtplib, ssl, sys\n"
            "ctx = ssl.create_default_context(cafile=sys.argv[1])\n"
            "s = smtplib.SMTP('127.0.0.1', int(sys.argv[2]), timeout=10)\n"
            "s.ehlo('client.test')\n"
            "assert s.has_extn('starttls'), s.esmtp_features\n"
            "code, _ = s.starttls(context=ctx)\n"
            "assert code == 220, code\n"
            "s.ehlo('client.test')\n"
            "assert not s.has_extn('starttls'), 'offered again over TLS'\n"
            "s.sendmail('a@client.test', ['b@ringchat.local'],\n"
            "           'Subject: over TLS\\r\\n\\r\\n.a stuffed line\\r\\nsecret\\r\\n')\n"
            "s.quit()\n"
            "print('sent')\n";
        const auto r = run_command({"python3", "-c", script, test_certs::get().ca.cert,
                                    server.port_text()},
                                   {}, std::chrono::seconds(30));
        INFO(r.err);
        CHECK(r.out == "sent\n");
        std::vector<fs::path> delivered;
        for (const auto& e : fs::directory_iterator(maildir / "new")) {
            delivered.push_back(e.path());
        }
        REQUIRE(delivered.size() == 1);
        std::ifstream in(delivered[0], std::ios::binary);
        const std::string message((std::istreambuf_iterator<char>(in)), {});
        CHECK_THAT(message, Catch::Contains("Subject: over TLS\r\n"));
        CHECK_THAT(message, Catch::Contains("\r\n.a stuffed line\r\nsecret\r\n"));
        CHECK(server.stop() == 0);
    }
    fs::remove_all(maildir);
}
