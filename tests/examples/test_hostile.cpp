// SPDX-License-Identifier: MIT
// tests/examples/test_hostile.cpp — the example servers against hostile peers, on both
// backends (the peers are hostile_client.py): a client that pipelines requests and never reads
// (the server's RSS stays bounded, sampled every 100 ms, and another client is served
// meanwhile), deep pipelines in one send (10,000 SMTP NOOPs, 1,000 HTTP POSTs: no stack
// growth), peers that trickle a request a byte at a time (408, 421), SIGTERM with downloads in
// flight (every response complete, exit 0; past --grace a reset, never a clean short body),
// peers that reset mid-response, and four chatroom members at full speed (none dropped as
// slow).
//
// Over TLS (--tls-cert, --tls-key; the client with --tls and the tests' CA) the same helpers
// run again for what is the channel's: a never-reading client (http, echo), a reset
// mid-response, a trickled head (408, decrypted), SIGTERM with downloads in flight (each body
// complete, then close_notify), the grace period's reset; and what only TLS has: a plaintext
// client or random bytes on the TLS port (refused, the next TLS client served), a peer that
// never sends its ClientHello or sends half of it (dropped at --tls-handshake-timeout).
#include <signal.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/examples/harness.hpp"
#include "tests/support/support.hpp"
#include "version.hpp"
#if RINGCHAT_HAS_TLS
#include "tests/support/test_certs.hpp"
#endif

using namespace ringchat;
using namespace ringchat::test;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

constexpr std::size_t big_size = 4 << 20;  // four.bin, and the resp value

/// How a case talks to the server: plaintext, or TLS (the server with --tls-cert and
/// --tls-key, hostile_client.py with --tls and the tests' CA).
enum class over { plaintext, tls };

/// " over TLS" or nothing, for what a case reports.
std::string shown(over o) { return o == over::tls ? " over TLS" : ""; }

/// A server's resident set (VmRSS of /proc/PID/status), in KiB; 0 if it is gone.
std::size_t rss_kib(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.starts_with("VmRSS:")) {
            return std::stoul(line.substr(6));
        }
    }
    return 0;
}

/// Whether `pid` (our child, not yet reaped) has exited: a zombie, within `limit`. The
/// harness reaps it afterwards (stop() on a zombie only collects its exit code).
bool wait_exited(pid_t pid, std::chrono::milliseconds limit) {
    const auto deadline = steady::now() + limit;
    for (;;) {
        std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
        std::string stat((std::istreambuf_iterator<char>(in)), {});
        const auto paren = stat.rfind(')');
        if (stat.empty() || (paren != std::string::npos && paren + 2 < stat.size() &&
                             stat[paren + 2] == 'Z')) {
            return true;
        }
        if (steady::now() >= deadline) {
            return false;
        }
        std::this_thread::sleep_for(2ms);
    }
}

/// Whether `p` appears within `limit`; false at once when `gave_up` says so.
template <class F>
bool wait_for_file(const fs::path& p, std::chrono::milliseconds limit, F gave_up) {
    const auto deadline = steady::now() + limit;
    while (!fs::exists(p)) {
        if (steady::now() >= deadline || gave_up()) {
            return false;
        }
        std::this_thread::sleep_for(2ms);
    }
    return true;
}

/// A scratch directory: www/ (index.html, one.bin 1 MiB, four.bin 4 MiB), a maildir, the
/// files the client and the test signal each other with. Removed when done.
class scratch {
public:
    explicit scratch(backend_kind kind)
        : dir_(fs::temp_directory_path() /
               ("ringchat-hostile-" + std::to_string(::getpid()) + "-" + backend_flag(kind))) {
        fs::remove_all(dir_);
        fs::create_directories(www());
        write(www() / "index.html", "<!DOCTYPE html>\n<h1>hostile</h1>\n");
        std::string pattern(big_size, '\0');
        for (std::size_t i = 0; i < pattern.size(); ++i) {
            pattern[i] = static_cast<char>(i % 251);  // hostile_client.py's PATTERN
        }
        write(www() / "four.bin", pattern);
        write(www() / "one.bin", pattern.substr(0, 1 << 20));
    }
    scratch(const scratch&) = delete;
    scratch& operator=(const scratch&) = delete;
    ~scratch() {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    fs::path dir() const { return dir_; }
    fs::path www() const { return dir_ / "www"; }
    fs::path maildir() const { return dir_ / "mail"; }

private:
    static void write(const fs::path& p, const std::string& data) {
        std::ofstream out(p, std::ios::binary);
        out << data;
    }
    fs::path dir_;
};

/// The arguments to start `name` with in `s` (over TLS: with the tests' certificate).
std::vector<std::string> server_args(const std::string& name, const scratch& s,
                                     over o = over::plaintext) {
    std::vector<std::string> args;
    if (name == "http") {
        args = {"--root", s.www().string()};
    } else if (name == "smtp") {
        args = {"--maildir", s.maildir().string()};
    }
#if RINGCHAT_HAS_TLS
    if (o == over::tls) {
        const auto& c = test_certs::get();
        args.insert(args.end(), {"--tls-cert", c.localhost.cert, "--tls-key", c.localhost.key});
    }
#else
    (void)o;
#endif
    return args;
}

/// python3 hostile_client.py [--tls --ca CA] ARGS...
command_result hostile(std::vector<std::string> args, std::chrono::seconds limit = 60s,
                       over o = over::plaintext) {
#if RINGCHAT_HAS_TLS
    if (o == over::tls) {
        args.insert(args.begin(), {"--tls", "--ca", test_certs::get().ca.cert});
    }
#else
    (void)o;
#endif
    args.insert(args.begin(), {"python3", example_script("hostile_client.py").string()});
    return run_command(args, {}, limit);
}

/// The client's "key=value" lines.
std::map<std::string, std::string> values_of(const std::string& out) {
    std::map<std::string, std::string> v;
    std::istringstream in(out);
    std::string line;
    while (std::getline(in, line)) {
        const auto eq = line.find('=');
        if (eq != std::string::npos && line.find(' ') > eq) {
            v[line.substr(0, eq)] = line.substr(eq + 1);
        }
    }
    return v;
}

/// With RINGCHAT_HOSTILE_REPORT set, one line on stderr: what a case measured.
void report(const std::string& what, backend_kind kind, const std::string& text) {
    if (std::getenv("RINGCHAT_HOSTILE_REPORT") == nullptr) {
        return;
    }
    std::string line = "hostile: " + what + " (" + backend_flag(kind) + "):";
    std::istringstream in(text);
    std::string l;
    while (std::getline(in, l)) {
        if (l.find('=') != std::string::npos || l.starts_with("FAILED")) {
            line += " " + l;
        }
    }
    std::fprintf(stderr, "%s\n", line.c_str());
}

void check_client(const command_result& r) {
    INFO("hostile_client.py said:\n" << r.out << r.err);
    CHECK_FALSE(r.timed_out);
    CHECK(r.status == 0);
    CHECK(r.out.ends_with("ok\n"));
}

/// A client run on its own thread while the test watches the server.
class background {
public:
    explicit background(std::vector<std::string> args, std::chrono::seconds limit = 60s,
                        over o = over::plaintext)
        : thread_([this, args = std::move(args), limit, o] {
              result_ = hostile(args, limit, o);
              done_ = true;
          }) {}
    bool done() const { return done_; }
    const command_result& join() {
        thread_.join();
        return result_;
    }

private:
    command_result result_;
    std::atomic<bool> done_{false};
    std::jthread thread_;
};

/// Whether a connection to `port` is refused within `limit` (the listener has closed).
bool refused_within(std::uint16_t port, std::chrono::milliseconds limit) {
    const auto deadline = steady::now() + limit;
    for (;;) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(port);
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to);
        const int err = errno;
        ::close(fd);
        if (rc != 0 && err == ECONNREFUSED) {
            return true;
        }
        if (steady::now() >= deadline) {
            return false;
        }
        std::this_thread::sleep_for(10ms);
    }
}

/// Waits (10 s at most) until the server has at most `n` descriptors open: none leaked. (Not
/// exactly `n`: one open when `n` was counted may have gone since, which is no leak; once in
/// ten runs of the ASan build the chatroom's count stayed off by one that way.)
bool descriptors_back(const example_server& server, std::size_t n) {
    const auto deadline = steady::now() + 10s;
    for (;;) {
        const std::size_t now = server.descriptors().size();
        if (now <= n) {
            return true;
        }
        if (steady::now() >= deadline) {
            INFO("descriptors: " << now << ", at first " << n);
            return false;
        }
        std::this_thread::sleep_for(10ms);
    }
}

/// The never-reading client against `name` (its protocol `proto`): RSS bounded, a probe
/// served during the flood and after it, the descriptors given back.
void never_reading(const std::string& name, backend_kind kind, over o = over::plaintext,
                   const std::vector<std::string>& more = {}, const std::string& flooded = {}) {
    scratch s(kind);
    auto args = server_args(name, s, o);
    args.insert(args.end(), more.begin(), more.end());
    example_server server(name, kind, args);
    const auto fds = server.descriptors().size();
    // A first request, so that what the server allocates once is allocated (over TLS: the
    // handshake's share of OpenSSL too).
    check_client(hostile({"probe", name, server.port_text()}, 20s, o));
    REQUIRE(descriptors_back(server, fds));
    const std::size_t before = rss_kib(server.pid());

    std::size_t peak = before;
    std::size_t samples = 0;
    background flood({"flood", flooded.empty() ? name : flooded, server.port_text(), "2"}, 30s,
                     o);
    while (!flood.done()) {
        peak = std::max(peak, rss_kib(server.pid()));
        ++samples;
        std::this_thread::sleep_for(100ms);
    }
    const auto& r = flood.join();
    const auto v = values_of(r.out);
    // The bound is 64 MiB. A sanitized build also keeps up to 256 MiB of freed memory in
    // quarantine (ASan's default) and maps an eighth of what it covers again as shadow memory,
    // so there the bound is (256 + 64) * 9/8 = 360 MiB. (320 without the shadow's share was
    // passed by 1.6 MiB once, in CI, over TLS on epoll.)
    const std::size_t bound_kib = (sanitized() ? (256 + 64) * 9 / 8 : 64) << 10;
    const auto value = [&v](const std::string& key) {
        const auto it = v.find(key);
        return it == v.end() ? std::string("?") : it->second;
    };
    INFO(name << ": RSS before " << before << " KiB, peak " << peak << " KiB over " << samples
              << " samples; the flood sent " << value("flood_sent") << " bytes, got "
              << value("flood_received_at_end") << " at its end (errno "
              << value("flood_error") << "); the probe took " << value("probe_ms") << " ms");
    report((flooded.empty() ? name : flooded) + " never reading" + shown(o), kind,
           r.out + "\nrss_before_kib=" + std::to_string(before) +
               "\nrss_peak_kib=" + std::to_string(peak) + "\nsamples=" + std::to_string(samples));
    check_client(r);
    CHECK(samples >= 10);
    CHECK(peak - before < bound_kib);

    // The flood gone: served, and its descriptor given back.
    check_client(hostile({"probe", name, server.port_text()}, 20s, o));
    CHECK(descriptors_back(server, fds));
    CHECK(server.stop() == 0);
}

/// SIGTERM while `clients` downloads are in flight (http: four.bin; resp: the value "big").
void sigterm_in_flight(const std::string& name, backend_kind kind, over o = over::plaintext) {
    scratch s(kind);
    example_server server(name, kind, server_args(name, s, o));
    const auto ready = s.dir() / "ready";
    const auto go = s.dir() / "go";
    background clients({"sigterm", name, server.port_text(), "20", ready.string(), go.string()},
                       60s, o);
    const bool got_ready = wait_for_file(ready, 30s, [&] { return clients.done(); });
    steady::time_point signalled{};
    bool refused = false;
    if (got_ready) {
        ::kill(server.pid(), SIGTERM);
        signalled = steady::now();
        refused = refused_within(server.port(), 2s);  // no new connection is accepted
        std::ofstream(go.string()).close();
    }
    const auto& r = clients.join();
    CHECK(got_ready);
    CHECK(refused);
    check_client(r);
    const bool exited = wait_exited(server.pid(), 15s);
    const auto took =
        std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - signalled);
    INFO(name << " exited " << took.count() << " ms after SIGTERM");
    report(name + " SIGTERM in flight" + shown(o), kind,
           r.out + "\nexit_ms=" + std::to_string(took.count()));
    CHECK(exited);
    CHECK(server.stop() == 0);
}

/// http --header-timeout 1 --body-timeout 1 against trickled heads and bodies (408, the
/// close), heads sent slowly within the limit (served), a head of two pieces and then
/// nothing (408).
void trickled_http(backend_kind kind, over o) {
    scratch s(kind);
    auto args = server_args("http", s, o);
    args.insert(args.end(), {"--header-timeout", "1", "--body-timeout", "1"});
    example_server server("http", kind, args);
    const auto fds = server.descriptors().size();
    const auto r = hostile({"trickle-http", server.port_text()}, 30s, o);
    report("http trickle" + shown(o), kind, r.out);
    check_client(r);
    CHECK(descriptors_back(server, fds));
    CHECK(server.stop() == 0);
}

/// http: connections reset (SO_LINGER 0) at points of a download of four.bin; the server
/// lets go of each (its descriptors come back), serves the next client, and exits 0.
void resets_mid_response(backend_kind kind, over o) {
    scratch s(kind);
    auto args = server_args("http", s, o);
    // No open-file cache: it would keep four.bin open for a second or two after the resets,
    // and the descriptors counted would not be the connections'.
    args.insert(args.end(), {"--file-cache", "0"});
    example_server server("http", kind, args);
    const auto fds = server.descriptors().size();
    const auto r = hostile({"resets", server.port_text(), "12"}, 30s, o);
    report("http resets mid-response" + shown(o), kind, r.out);
    check_client(r);
    CHECK(descriptors_back(server, fds));
    CHECK(server.stop() == 0);
}

/// http --grace 0.3: SIGTERM while a client reads nothing of `path`'s response: the server
/// exits within the grace period, and the client sees a reset or the whole body, never a
/// clean end (over TLS: a close_notify) before Content-Length.
void cut_past_grace(backend_kind kind, const std::string& path, over o) {
    scratch s(kind);
    if (path == "/huge.bin") {
        std::ofstream out(s.www() / "huge.bin", std::ios::binary);
        const std::string mib(1 << 20, 'h');
        for (int i = 0; i < 64; ++i) {
            out << mib;
        }
    }
    auto args = server_args("http", s, o);
    args.insert(args.end(), {"--grace", "0.3"});
    example_server server("http", kind, args);
    const auto ready = s.dir() / "ready";
    background client({"cut-http", server.port_text(), path, ready.string(), "1.5"}, 30s, o);
    const bool got_ready = wait_for_file(ready, 20s, [&] { return client.done(); });
    bool exited = false;
    std::chrono::milliseconds took{};
    if (got_ready) {
        ::kill(server.pid(), SIGTERM);
        const auto signalled = steady::now();
        exited = wait_exited(server.pid(), 10s);
        took = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - signalled);
    }
    const auto& r = client.join();
    report("http --grace 0.3 cut " + path + shown(o), kind,
           r.out + "\nexit_ms=" + std::to_string(took.count()));
    CHECK(got_ready);
    check_client(r);
    INFO("http exited " << took.count() << " ms after SIGTERM");
    CHECK(exited);
    CHECK(took < 1500ms);  // before the client read again: the grace period ended it
    CHECK(server.stop() == 0);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// 1. A client that pipelines and never reads

TEST_CASE("hostile: echo, a client that never reads costs bounded memory", "[examples][hostile]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    never_reading("echo", kind);
}

TEST_CASE("hostile: chatroom, a client that sends /help and never reads costs bounded memory",
          "[examples][hostile]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    never_reading("chatroom", kind);
}

TEST_CASE("hostile: resp, a client that pipelines PING and never reads costs bounded memory",
          "[examples][hostile]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    never_reading("resp", kind);
}

TEST_CASE("hostile: resp --threads 2, a client that pipelines GETs of 64 KiB values on every "
          "shard and never reads costs bounded memory",
          "[examples][hostile][threads]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    never_reading("resp", kind, over::plaintext, {"--threads", "2"}, "resp-get");
}

TEST_CASE("hostile: http, a client that pipelines GETs of 1 MiB and never reads costs bounded "
          "memory",
          "[examples][hostile]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    never_reading("http", kind);
}

TEST_CASE("hostile: smtp, a client that pipelines NOOP and never reads costs bounded memory",
          "[examples][hostile]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    never_reading("smtp", kind);
}

TEST_CASE("hostile: a client that pipelines without reading, then reads, gets every reply byte "
          "for byte (echo, resp, smtp)",
          "[examples][hostile]") {
    const auto kind = GENERATE(from_range(backends()));
    const std::string name = GENERATE(as<std::string>(), "echo", "resp", "smtp");
    CAPTURE(kind, name);
    scratch s(kind);
    example_server server(name, kind, server_args(name, s));
    // Replies queued while a send waits for room: six rounds, as a round finds a bad one
    // only now and then (three in a sanitized build, where a round takes twice as long).
    const auto r = hostile(
        {"flood-verify", name, server.port_text(), sanitized() ? "3" : "6", "0.5"}, 90s);
    report(name + " replies after a flood", kind, r.out);
    check_client(r);
    CHECK(server.stop() == 0);
}

// ---------------------------------------------------------------------------------------------
// 2. Deep pipelines in one send (these crashed the sanitized build by stack growth before)

TEST_CASE("hostile: smtp answers 10,000 NOOPs sent in one send, in order",
          "[examples][hostile]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    scratch s(kind);
    example_server server("smtp", kind, server_args("smtp", s));
    const auto r = hostile({"noops", server.port_text(), "10000"});
    report("smtp 10,000 NOOPs", kind, r.out);
    check_client(r);
    CHECK(server.stop() == 0);
}

TEST_CASE("hostile: http answers 1,000 pipelined POST /echo with 1-byte bodies",
          "[examples][hostile]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    scratch s(kind);
    example_server server("http", kind, server_args("http", s));
    const auto r = hostile({"posts", server.port_text(), "1000"});
    report("http 1,000 POSTs", kind, r.out);
    check_client(r);
    CHECK(server.stop() == 0);
}

TEST_CASE("hostile: smtp stores a message with a DATA line of 4 MiB", "[examples][hostile]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    scratch s(kind);
    auto args = server_args("smtp", s);
    args.insert(args.end(), {"--max-size", "8m"});
    example_server server("smtp", kind, args);
    const auto r = hostile({"wide-data", server.port_text(), s.maildir().string(),
                            std::to_string(big_size)});
    report("smtp 4 MiB DATA line", kind, r.out);
    check_client(r);
    CHECK(server.stop() == 0);
}

TEST_CASE("hostile: resp, a 20 MiB value that SET stored comes back whole from GET",
          "[examples][hostile]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    example_server server("resp", kind);
    const auto r = hostile({"big-value", server.port_text(), std::to_string(20 << 20)});
    report("resp 20 MiB value", kind, r.out);
    check_client(r);
    CHECK(server.stop() == 0);
}

TEST_CASE("hostile: resp, 5,000 requests of many lengths in one send, a request trickled a "
          "byte at a time, resets before and amid a 1 MiB reply; with and without min_wait",
          "[examples][hostile]") {
    const auto kind = GENERATE(from_range(backends()));
    // The server inherits RINGCHAT_MIN_WAIT_US (io_uring's batched waits; epoll ignores it).
    const std::string min_wait = GENERATE(as<std::string>(), "0", "50");
    CAPTURE(kind, min_wait);
    REQUIRE(::setenv("RINGCHAT_MIN_WAIT_US", min_wait.c_str(), 1) == 0);
    example_server server("resp", kind);
    ::unsetenv("RINGCHAT_MIN_WAIT_US");
    const auto fds = server.descriptors().size();
    const auto r = hostile({"resp-abuse", server.port_text()}, 60s);
    report("resp abuse (min_wait " + min_wait + " us)", kind, r.out);
    check_client(r);
    CHECK(descriptors_back(server, fds));
    CHECK(server.stop() == 0);
}

// ---------------------------------------------------------------------------------------------
// 3. Trickling peers

TEST_CASE("hostile: http, a head or body trickled past --header-timeout/--body-timeout gets 408 "
          "and the close; slow heads within it are served",
          "[examples][hostile]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    trickled_http(kind, over::plaintext);
}

TEST_CASE("hostile: smtp, a command or DATA line trickled past --command-timeout/--data-timeout "
          "gets 421 and the close; slow commands within it are served",
          "[examples][hostile]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    scratch s(kind);
    auto args = server_args("smtp", s);
    args.insert(args.end(), {"--command-timeout", "1", "--data-timeout", "1"});
    example_server server("smtp", kind, args);
    const auto fds = server.descriptors().size();
    const auto r = hostile({"trickle-smtp", server.port_text()}, 30s);
    report("smtp trickle", kind, r.out);
    check_client(r);
    CHECK(descriptors_back(server, fds));
    CHECK(server.stop() == 0);
}

// ---------------------------------------------------------------------------------------------
// 4. SIGTERM with responses in flight

TEST_CASE("hostile: http, SIGTERM with 20 downloads of 4 MiB in flight: every one complete, "
          "exit 0",
          "[examples][hostile]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    sigterm_in_flight("http", kind);
}

TEST_CASE("hostile: resp, SIGTERM with 20 GETs of a 4 MiB value in flight: every bulk complete, "
          "exit 0",
          "[examples][hostile]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    sigterm_in_flight("resp", kind);
}

TEST_CASE("hostile: http --grace 0.3, a download not read past the grace period is reset, "
          "never cut short by a clean end",
          "[examples][hostile]") {
    const auto kind = GENERATE(from_range(backends()));
    // four.bin fits in the kernel's socket buffers (tcp_wmem's 4 MiB and the client's
    // 64 KiB), so it is all sent at once and the response ends whole; a 64 MiB file cannot.
    const std::string path = GENERATE(as<std::string>(), "/four.bin", "/huge.bin");
    CAPTURE(kind, path);
    cut_past_grace(kind, path, over::plaintext);
}

TEST_CASE("hostile: http, clients that reset (SO_LINGER 0) mid-response are let go of; the "
          "next is served",
          "[examples][hostile]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    resets_mid_response(kind, over::plaintext);
}

// ---------------------------------------------------------------------------------------------
// 5. chatroom: four members at full speed, reading all they get

TEST_CASE("hostile: chatroom, four members sending at full speed while reading are never "
          "dropped",
          "[examples][hostile]") {
    const auto kind = GENERATE(from_range(backends()));
    // Each member sends this much (and gets three times as much). A Python member needs more
    // CPU to check its 12 MiB than the room needs to read the others' input; before the room
    // paced senders to its slowest reader (chatroom::room::pace), a member that fell behind by
    // its kernel buffers plus --max-queue was dropped, more often on io_uring (which gets
    // through the input sooner): 0 of 10 runs kept everyone at 4 MiB, epoll 6 of 10.
    const std::size_t bytes = 4 << 20;
    const std::size_t scaled = sanitized() ? bytes / 4 : bytes;
    CAPTURE(kind, scaled);
    example_server server("chatroom", kind);
    const auto r = hostile({"chat4", server.port_text(), std::to_string(scaled)}, 120s);
    report("chatroom four members, " + std::to_string(scaled >> 10) + " KiB each", kind, r.out);
    check_client(r);
    CHECK(server.stop() == 0);
}

// ---------------------------------------------------------------------------------------------
// 6. Over TLS: what is the channel's again (the helpers above, over::tls), and what only TLS
// has (a peer that does not speak it, a handshake that stalls)

#if RINGCHAT_HAS_TLS

TEST_CASE("hostile: http over TLS, a client that pipelines GETs of 1 MiB and never reads costs "
          "bounded memory; another TLS client is served meanwhile",
          "[examples][hostile][tls]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    never_reading("http", kind, over::tls);
}

TEST_CASE("hostile: echo over TLS, a client that never reads costs bounded memory",
          "[examples][hostile][tls]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    never_reading("echo", kind, over::tls);
}

TEST_CASE("hostile: http over TLS, clients that reset (SO_LINGER 0) mid-response or mid-"
          "ClientHello are let go of; the next is served",
          "[examples][hostile][tls]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    resets_mid_response(kind, over::tls);
}

TEST_CASE("hostile: http over TLS, a head or body trickled past --header-timeout/--body-timeout "
          "gets 408 (decrypted) and the close; slow heads within it are served",
          "[examples][hostile][tls]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    trickled_http(kind, over::tls);
}

TEST_CASE("hostile: http over TLS, a plaintext request, random bytes or a bad handshake record "
          "on the TLS port are refused; the next TLS client is served",
          "[examples][hostile][tls]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    scratch s(kind);
    example_server server("http", kind, server_args("http", s, over::tls));
    const auto fds = server.descriptors().size();
    const auto r = hostile({"not-tls", "http", server.port_text()}, 60s, over::tls);
    report("http not TLS on the TLS port", kind, r.out);
    check_client(r);
    CHECK(descriptors_back(server, fds));
    CHECK(server.stop() == 0);
}

TEST_CASE("hostile: http over TLS, a peer that sends no ClientHello, or half of one, is dropped "
          "at --tls-handshake-timeout; a connection past its handshake is not",
          "[examples][hostile][tls]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    scratch s(kind);
    auto args = server_args("http", s, over::tls);
    args.insert(args.end(), {"--tls-handshake-timeout", "1"});
    example_server server("http", kind, args);
    const auto fds = server.descriptors().size();
    const auto r = hostile({"handshake-stall", "http", server.port_text()}, 60s, over::tls);
    report("http stalled handshakes", kind, r.out);
    check_client(r);
    CHECK(descriptors_back(server, fds));
    CHECK(server.stop() == 0);
}

TEST_CASE("hostile: http over TLS, SIGTERM with 20 downloads of 4 MiB in flight: every one "
          "complete, then close_notify, exit 0",
          "[examples][hostile][tls]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    sigterm_in_flight("http", kind, over::tls);
}

TEST_CASE("hostile: http over TLS --grace 0.3, a download not read past the grace period is "
          "reset, never cut short by a close_notify",
          "[examples][hostile][tls]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    cut_past_grace(kind, "/huge.bin", over::tls);
}

#endif  // RINGCHAT_HAS_TLS
