// SPDX-License-Identifier: MIT
// tests/examples/test_http.cpp — the http example (examples/http) on both backends, driven by
// curl (GET byte for byte, HEAD, keep-alive reuse, Range, POST chunked and with a length,
// 404, 403, 405, 413, 431), Python (http.client; pipelined requests and malformed ones over
// raw sockets: http_client.py), wrk (every response a 200), and raw sockets here (503 when the
// server runs out of descriptors). Each test serves a directory made here, with a file outside
// it that no request may reach, and ends by stopping the server with SIGTERM: it must exit 0.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/examples/harness.hpp"
#include "tests/support/support.hpp"

using namespace ringchat;
using namespace ringchat::test;
namespace fs = std::filesystem;

namespace {

void write_file(const fs::path& p, const std::string& data) {
    std::ofstream out(p, std::ios::binary);
    out << data;
}

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string random_bytes(std::size_t n, unsigned seed) {
    std::string s(n, '\0');
    std::mt19937 rng(seed);
    for (auto& c : s) {
        c = static_cast<char>(rng());
    }
    return s;
}

/// A directory to serve (DIR/www) and a secret beside it (DIR/secret.txt) that a symbolic
/// link inside points to. Removed when done.
class site {
public:
    explicit site(backend_kind kind)
        : dir_(fs::temp_directory_path() /
               ("ringchat-http-" + std::to_string(::getpid()) + "-" + backend_flag(kind))) {
        fs::remove_all(dir_);
        fs::create_directories(www() / "sub");
        fs::create_directories(www() / "emptydir");
        write_file(dir_ / "secret.txt", "secret: do not serve\n");
        write_file(www() / "index.html", "<!DOCTYPE html>\n<h1>ringchat</h1>\n");
        write_file(www() / "sub" / "index.html", "<p>sub</p>\n");
        write_file(www() / "style.css", "body { color: black; }\n");
        write_file(www() / "app.js", "console.log(1);\n");
        write_file(www() / "data.json", "{\"a\": [1, 2, 3]}\n");
        write_file(www() / "notes.txt", "plain text\r\nwith CRLF\r\n\r\n");
        write_file(www() / "a file.txt", "a name with a space\n");
        write_file(www() / "empty.txt", "");
        for (const char* name : {"img.png", "photo.jpg", "photo.JPEG", "anim.gif", "logo.svg",
                                 "doc.pdf", "mod.wasm", "noext", "x.unknown"}) {
            write_file(www() / name, random_bytes(100, 1));
        }
        write_file(www() / "blob.bin", random_bytes(1 << 20, 7));
        fs::create_symlink(dir_ / "secret.txt", www() / "leak");
        fs::create_symlink("index.html", www() / "inside");
    }
    site(const site&) = delete;
    site& operator=(const site&) = delete;
    ~site() {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    fs::path www() const { return dir_ / "www"; }
    fs::path dir() const { return dir_; }
    std::vector<std::string> args() const { return {"--root", www().string()}; }

private:
    fs::path dir_;
};

std::string url(const example_server& server, const std::string& path) {
    return "http://127.0.0.1:" + server.port_text() + path;
}

/// curl -s ARGS...: what it printed.
command_result curl(std::vector<std::string> args) {
    args.insert(args.begin(), {"curl", "-s", "--max-time", "20"});
    auto r = run_command(args, {}, std::chrono::seconds(30));
    INFO("curl stderr: " << r.err);
    CHECK_FALSE(r.timed_out);
    return r;
}

/// The status code curl got for `path` (with `extra` options before the URL).
std::string status_of(const example_server& server, const std::string& path,
                      std::vector<std::string> extra = {}) {
    extra.insert(extra.end(), {"-o", "/dev/null", "-w", "%{http_code}", url(server, path)});
    return curl(extra).out;
}

void run_python(const example_server& server, const site& s, const std::string& mode,
                const std::vector<std::string>& more = {}) {
    std::vector<std::string> argv{"python3", example_script("http_client.py").string(),
                                  server.port_text(), s.www().string(), mode};
    argv.insert(argv.end(), more.begin(), more.end());
    const auto r = run_command(argv, {}, std::chrono::seconds(60));
    INFO("http_client.py " << mode << " said:\n" << r.out << r.err);
    CHECK_FALSE(r.timed_out);
    CHECK(r.status == 0);
    CHECK(r.out == "ok\n");
}

void require_client(const std::string& program) {
    if (!have_program(program)) {
        FAIL(program << " is not installed (tests/run installs it: tools/ensure-deps)");
    }
}

void stop_cleanly(example_server& server) { CHECK(server.stop() == 0); }

/// A blocking client connection to 127.0.0.1:port with 10 s send and receive timeouts.
class connection {
public:
    explicit connection(std::uint16_t port)
        : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
        REQUIRE(fd_ >= 0);
        const timeval tv{10, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(port);
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd_, reinterpret_cast<const sockaddr*>(&to), sizeof to) == 0);
    }
    connection(connection&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    connection& operator=(connection&&) = delete;
    ~connection() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }

    void send(std::string_view data) {
        while (!data.empty()) {
            const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
            REQUIRE(n > 0);
            data.remove_prefix(static_cast<std::size_t>(n));
        }
    }
    /// Everything until the server closes (or 10 s pass without a byte).
    std::string read_to_end() {
        std::string got;
        char buf[65536];
        for (;;) {
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) {
                return got;
            }
            got.append(buf, static_cast<std::size_t>(n));
        }
    }
    /// Whether nothing (no byte, no end of stream) arrives for `t`.
    bool silent_for(std::chrono::milliseconds t) {
        pollfd p{fd_, POLLIN, 0};
        return ::poll(&p, 1, static_cast<int>(t.count())) == 0;
    }

private:
    int fd_;
};

std::size_t count_of(std::string_view text, std::string_view what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string_view::npos;
         at = text.find(what, at + what.size())) {
        ++n;
    }
    return n;
}

}  // namespace

TEST_CASE("http: curl GETs files byte for byte with their types; HEAD; keep-alive reuse",
          "[examples][http]") {
    require_client("curl");
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    site s(kind);
    example_server server("http", kind, s.args());
    CHECK(server.ready_line() ==
          "http: ready on 127.0.0.1:" + server.port_text() + " (" + backend_shown(kind) + ")");

    CHECK(curl({url(server, "/blob.bin")}).out == read_file(s.www() / "blob.bin"));
    CHECK(curl({url(server, "/")}).out == read_file(s.www() / "index.html"));
    CHECK(curl({url(server, "/notes.txt")}).out == read_file(s.www() / "notes.txt"));
    CHECK(curl({url(server, "/empty.txt")}).out.empty());

    const std::vector<std::pair<std::string, std::string>> types{
        {"/index.html", "text/html; charset=utf-8"},  {"/style.css", "text/css; charset=utf-8"},
        {"/app.js", "text/javascript; charset=utf-8"}, {"/data.json", "application/json"},
        {"/img.png", "image/png"},                     {"/photo.jpg", "image/jpeg"},
        {"/photo.JPEG", "image/jpeg"},                 {"/anim.gif", "image/gif"},
        {"/logo.svg", "image/svg+xml"},                {"/notes.txt", "text/plain; charset=utf-8"},
        {"/doc.pdf", "application/pdf"},               {"/mod.wasm", "application/wasm"},
        {"/noext", "application/octet-stream"},        {"/x.unknown", "application/octet-stream"},
    };
    for (const auto& [path, type] : types) {
        CAPTURE(path);
        CHECK(curl({"-o", "/dev/null", "-w", "%{content_type}", url(server, path)}).out == type);
    }

    // HEAD: the fields of a GET, no body (curl would complain of one: --fail-early is moot,
    // the raw-socket test in http_client.py checks the byte count exactly).
    const auto head = curl({"-I", url(server, "/blob.bin")});
    CHECK(head.out.starts_with("HTTP/1.1 200 OK\r\n"));
    CHECK(head.out.find("Content-Length: 1048576\r\n") != std::string::npos);
    CHECK(head.out.find("Accept-Ranges: bytes\r\n") != std::string::npos);
    // An IMF-fixdate: "Date: Sun, 06 Nov 1994 08:49:37 GMT".
    const auto date = head.out.find("\r\nDate: ");
    REQUIRE(date != std::string::npos);
    const auto date_value = head.out.substr(date + 8, head.out.find("\r\n", date + 2) - date - 8);
    CHECK(date_value.size() == 29);
    CHECK(date_value.ends_with(" GMT"));
    CHECK(date_value[3] == ',');
    CHECK(head.out.find("Server: ringchat-http\r\n") != std::string::npos);
    CHECK(head.out.ends_with("\r\n\r\n"));

    // Two URLs in one curl: the second goes over the first one's connection.
    const auto two = curl({"-v", url(server, "/notes.txt"), url(server, "/style.css")});
    CHECK(two.out == read_file(s.www() / "notes.txt") + read_file(s.www() / "style.css"));
    CHECK(two.err.find("Re-using existing connection") != std::string::npos);
    // HTTP/1.0 without keep-alive: closed after the response.
    const auto old = curl({"-v", "-0", url(server, "/notes.txt"), url(server, "/notes.txt")});
    CHECK(old.err.find("Re-using existing connection") == std::string::npos);
    CHECK(old.err.find("Connection: close") != std::string::npos);

    // A directory: 301 to the path with "/", then its index.html; or a listing.
    CHECK(status_of(server, "/sub") == "301");
    CHECK(curl({"-L", url(server, "/sub")}).out == "<p>sub</p>\n");
    const auto listing = curl({"-D", "-", url(server, "/emptydir/")});
    CHECK(listing.out.find("Transfer-Encoding: chunked\r\n") != std::string::npos);
    CHECK(listing.out.find("Index of /emptydir/") != std::string::npos);
    stop_cleanly(server);
}

TEST_CASE("http: Range requests give 206 with Content-Range, or 416", "[examples][http]") {
    require_client("curl");
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    site s(kind);
    example_server server("http", kind, s.args());
    const auto blob = read_file(s.www() / "blob.bin");
    const auto size = std::to_string(blob.size());

    const auto mid = curl({"-D", "/dev/stderr", "-r", "100-199", url(server, "/blob.bin")});
    CHECK(mid.out == blob.substr(100, 100));
    CHECK(mid.err.starts_with("HTTP/1.1 206 Partial Content\r\n"));
    CHECK(mid.err.find("Content-Range: bytes 100-199/" + size + "\r\n") != std::string::npos);
    CHECK(mid.err.find("Content-Length: 100\r\n") != std::string::npos);
    CHECK(curl({"-r", "1000000-", url(server, "/blob.bin")}).out == blob.substr(1000000));
    CHECK(curl({"-r", "-500", url(server, "/blob.bin")}).out == blob.substr(blob.size() - 500));
    CHECK(curl({"-r", "1048000-2000000", url(server, "/blob.bin")}).out == blob.substr(1048000));
    CHECK(curl({"-r", "0-0", url(server, "/notes.txt")}).out == "p");
    // Several ranges: the whole file (a server may ignore Range).
    CHECK(curl({"-r", "0-1,5-6", url(server, "/notes.txt")}).out ==
          read_file(s.www() / "notes.txt"));
    const auto past = curl({"-D", "-", "-r", size + "-", url(server, "/blob.bin")});
    CHECK(past.out.starts_with("HTTP/1.1 416 Range Not Satisfiable\r\n"));
    CHECK(past.out.find("Content-Range: bytes */" + size + "\r\n") != std::string::npos);
    CHECK(status_of(server, "/empty.txt", {"-r", "0-10"}) == "416");
    stop_cleanly(server);
}

TEST_CASE("http: POST /echo with chunked and Content-Length bodies; 413 over --max-body",
          "[examples][http]") {
    require_client("curl");
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    site s(kind);
    example_server server("http", kind, s.args());
    const auto body = s.dir() / "body.bin";
    write_file(body, random_bytes(300000, 3) + "\r\n0\r\n\r\n");  // a chunk end inside, too
    const auto sent = read_file(body);

    // A chunked request is answered chunked (producers::chunked).
    const auto chunked = curl({"-D", "/dev/stderr", "-H", "Transfer-Encoding: chunked",
                               "--data-binary", "@" + body.string(), url(server, "/echo")});
    CHECK(chunked.out == sent);
    CHECK(chunked.err.starts_with("HTTP/1.1 200 OK\r\n"));
    CHECK(chunked.err.find("Transfer-Encoding: chunked\r\n") != std::string::npos);
    const auto counted = curl({"-D", "/dev/stderr", "--data-binary", "@" + body.string(),
                               url(server, "/echo")});
    CHECK(counted.out == sent);
    CHECK(counted.err.find("Content-Length: " + std::to_string(sent.size()) + "\r\n") !=
          std::string::npos);
    CHECK(curl({"--data-binary", "", url(server, "/echo")}).out.empty());

    const auto big = s.dir() / "big.bin";
    write_file(big, std::string((1 << 20) + 1, 'x'));
    CHECK(status_of(server, "/echo", {"--data-binary", "@" + big.string()}) == "413");
    CHECK(status_of(server, "/echo", {"-H", "Transfer-Encoding: chunked", "--data-binary",
                                      "@" + big.string()}) == "413");
    // POST elsewhere: 405 with Allow.
    const auto post = curl({"-D", "-", "-o", "/dev/null", "--data-binary", "x",
                            url(server, "/index.html")});
    CHECK(post.out.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
    CHECK(post.out.find("Allow: GET, HEAD\r\n") != std::string::npos);
    stop_cleanly(server);
}

TEST_CASE("http: 404, 403 for paths that escape the root, 431 for a big header",
          "[examples][http]") {
    require_client("curl");
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    site s(kind);
    example_server server("http", kind, s.args());
    CHECK(status_of(server, "/nope.html") == "404");
    CHECK(status_of(server, "/sub/nope/deeper") == "404");
    CHECK(status_of(server, "/notes.txt/x") == "404");
    for (const char* path : {"/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt",
                             "/..%2fsecret.txt", "/leak"}) {
        CAPTURE(path);
        const auto r = curl({"--path-as-is", "-w", "\n%{http_code}", url(server, path)});
        CHECK(r.out.ends_with("\n403"));
        CHECK(r.out.find("do not serve") == std::string::npos);
    }
    CHECK(curl({url(server, "/inside")}).out == read_file(s.www() / "index.html"));
    CHECK(curl({url(server, "/a%20file.txt")}).out == "a name with a space\n");
    CHECK(status_of(server, "/", {"-H", "X-Big: " + std::string(20000, 'a')}) == "431");
    CHECK(status_of(server, "/", {"-X", "DELETE"}) == "405");
    stop_cleanly(server);
}

TEST_CASE("http: http.client, pipelined and malformed requests over raw sockets",
          "[examples][http]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    site s(kind);
    example_server server("http", kind, s.args());
    run_python(server, s, "client");
    run_python(server, s, "pipeline");
    run_python(server, s, "malformed");
    stop_cleanly(server);
}

TEST_CASE("http: --threads 2 and 4 serve files on every reactor; SIGTERM stops them all",
          "[examples][http][threads]") {
    const auto kind = GENERATE(from_range(backends()));
    const std::string threads = GENERATE("2", "4");
    CAPTURE(kind, threads);
    site s(kind);
    auto args = s.args();
    args.insert(args.end(), {"--threads", threads});
    const auto log = temp_log("http-threads");
    example_server server("http", kind, server_options{args, log, 0});
    CHECK(server.ready_line() ==
          "http: ready on 127.0.0.1:" + server.port_text() + " (" + backend_shown(kind) + ")");
    run_python(server, s, "client");
    run_python(server, s, "pipeline");
    // 64 connections at once, through SO_REUSEPORT listeners: the kernel's hash of their
    // ports leaves a reactor without one with a chance of 2 * 0.5^64 (4 reactors: 4 * 0.75^64,
    // about 4e-8).
    run_python(server, s, "connections", {"64"});
    stop_cleanly(server);
    const std::string said = read_log(log);
    INFO(said);
    const auto served = served_by_each(said, "http");
    REQUIRE(served.size() == static_cast<std::size_t>(std::stoul(threads)));
    std::size_t total = 0;
    for (std::size_t k = 0; k < served.size(); ++k) {
        CAPTURE(k);
        CHECK(served[k] >= 1);
        total += served[k];
    }
    CHECK(total >= 66);  // client, pipeline (one connection each at least) and the 64
}

TEST_CASE("http: wrk -c50 gets a 200 for every request", "[examples][http]") {
    require_client("wrk");
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    site s(kind);
    example_server server("http", kind, s.args());
    for (const char* path : {"/index.html", "/blob.bin"}) {
        CAPTURE(path);
        const auto r = run_command({"wrk", "-t1", "-c50", sanitized() ? "-d1s" : "-d2s",
                                    url(server, path)},
                                   {}, std::chrono::seconds(60));
        INFO(r.out << r.err);
        CHECK(r.status == 0);
        CHECK(r.out.find("Non-2xx or 3xx responses") == std::string::npos);
        CHECK(r.out.find("Socket errors") == std::string::npos);
        // "  86448 requests in 2.00s, 18.06MB read"
        const auto at = r.out.find(" requests in ");
        REQUIRE(at != std::string::npos);
        const auto start = r.out.find_last_not_of("0123456789", at - 1) + 1;
        REQUIRE(start < at);
        CHECK(std::stoull(r.out.substr(start, at - start)) > 0);
    }
    stop_cleanly(server);
}

TEST_CASE("http: --help, bad options, a bad --root", "[examples][http]") {
    const auto help = run_command({example_program("http").string(), "--help"});
    CHECK(help.status == 0);
    for (const char* opt : {"--root", "--max-body", "--max-header", "--port", "--backend"}) {
        CHECK(help.out.find(opt) != std::string::npos);
    }
    const auto bad = run_command({example_program("http").string(), "--backend", "kqueue"});
    CHECK(bad.status == 2);
    const auto no_root =
        run_command({example_program("http").string(), "--root", "/nonexistent/www"});
    CHECK(no_root.status == 2);
    CHECK(no_root.err.find("--root /nonexistent/www") != std::string::npos);
}

TEST_CASE("http: out of descriptors, 503 with Retry-After and a close; served again after",
          "[examples][http]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    site s(kind);
    // RLIMIT_NOFILE bounds descriptor numbers: the server may hold those below `limit`.
    constexpr std::size_t limit = 32;
    const auto log = s.dir() / "server.log";
    example_server server("http", kind, server_options{s.args(), log, limit});
    const auto request = [](std::string_view method, std::string_view path,
                            std::string_view extra = {}) {
        return std::string(method) + " " + std::string(path) + " HTTP/1.1\r\nHost: test\r\n" +
               std::string(extra) + "\r\n";
    };
    const auto index = read_file(s.www() / "index.html");

    // One request first, so that whatever the server opens once is open; then what it holds
    // (it may have inherited some above the limit: they take no room).
    const auto before = server.descriptors().size();
    {
        connection c(server.port());
        c.send(request("GET", "/index.html", "Connection: close\r\n"));
        CHECK(c.read_to_end().ends_with("\r\n\r\n" + index));
    }
    REQUIRE(server.wait_for_descriptors(before));
    std::size_t below = 0;
    for (const int fd : server.descriptors()) {
        below += static_cast<std::size_t>(fd) < limit ? 1 : 0;
    }
    const std::size_t above = before - below;
    REQUIRE(below + 8 < limit);
    // Idle connections take all the room but one descriptor; each probe connection takes the
    // last one, and then the server can open no file.
    std::vector<connection> idle;
    for (std::size_t i = below; i + 1 < limit; ++i) {
        idle.emplace_back(server.port());
    }
    REQUIRE(server.wait_for_descriptors(above + limit - 1));

    const auto first = std::chrono::steady_clock::now();
    {
        // Pipelined: a missing file is still 404 and the connection stays open, paths out of
        // the root still 403, and then the file that exists: 503, and the server closes.
        connection probe(server.port());
        REQUIRE(server.wait_for_descriptors(above + limit));
        probe.send(request("GET", "/nope.html") + request("GET", "/%2e%2e/secret.txt") +
                   request("GET", "/leak") + request("GET", "/index.html") +
                   request("GET", "/notes.txt"));
        const auto got = probe.read_to_end();
        INFO(got);
        CHECK(got.starts_with("HTTP/1.1 404 Not Found\r\n"));
        const auto forbidden = got.rfind("HTTP/1.1 403 Forbidden\r\n");
        const auto unavailable = got.find("HTTP/1.1 503 Service Unavailable\r\n");
        REQUIRE(forbidden != std::string::npos);
        REQUIRE(unavailable != std::string::npos);
        CHECK(forbidden < unavailable);
        const auto last = got.substr(unavailable);
        CHECK(last.find("\r\nRetry-After: 1\r\n") != std::string::npos);
        CHECK(last.find("\r\nConnection: close\r\n") != std::string::npos);
        CHECK(last.ends_with("<h1>503 Service Unavailable</h1></body></html>\n"));
        CHECK(count_of(got, "HTTP/1.1 403 Forbidden\r\n") == 2);
        CHECK(count_of(got, "HTTP/1.1 ") == 4);  // nothing for the request after the 503
        CHECK(got.find("do not serve") == std::string::npos);
    }
    REQUIRE(server.wait_for_descriptors(above + limit - 1));
    {
        // A directory listing needs a descriptor too (opendir).
        connection probe(server.port());
        REQUIRE(server.wait_for_descriptors(above + limit));
        probe.send(request("GET", "/emptydir/"));
        const auto got = probe.read_to_end();
        CHECK(got.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
        CHECK(got.find("\r\nRetry-After: 1\r\n") != std::string::npos);
    }
    const auto second = std::chrono::steady_clock::now();
    REQUIRE(server.wait_for_descriptors(above + limit - 1));
    // One line for both: at most one a second (when the two came within a second, which
    // a machine this slow could miss).
    const bool within_a_second = second - first < std::chrono::milliseconds(900);
    {
        const auto said = read_file(log);
        INFO(said);
        CHECK(count_of(said, "serving \"/index.html\": answering 503") == 1);
        if (within_a_second) {
            CHECK(count_of(said, "http: out of file descriptors (EMFILE: ") == 1);
        } else {
            WARN("two 503s over a second apart: the rate limit is not checked");
        }
    }
    std::this_thread::sleep_until(second + std::chrono::milliseconds(1100));
    {
        // HEAD: the 503 without its body. A second has passed: a second line, which counts
        // the answer that went unlogged.
        connection probe(server.port());
        REQUIRE(server.wait_for_descriptors(above + limit));
        probe.send(request("HEAD", "/notes.txt"));
        const auto got = probe.read_to_end();
        CHECK(got.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
        CHECK(got.ends_with("\r\n\r\n"));
        CHECK(got.find("<html>") == std::string::npos);
    }
    REQUIRE(server.wait_for_descriptors(above + limit - 1));
    if (within_a_second) {
        const auto said = read_file(log);
        INFO(said);
        CHECK(count_of(said, "http: out of file descriptors (EMFILE: ") == 2);
        CHECK(said.find("serving \"/index.html\": answering 503 Service Unavailable with "
                        "Retry-After: 1\n") != std::string::npos);
        CHECK(said.find("serving \"/notes.txt\": answering 503 Service Unavailable with "
                        "Retry-After: 1; 1 more since the last such line\n") !=
              std::string::npos);
    }

    // Full: a connection waits in the backlog (accepting pauses on EMFILE), unanswered, and
    // is served once the idle connections go.
    idle.emplace_back(server.port());
    REQUIRE(server.wait_for_descriptors(above + limit));
    connection late(server.port());
    late.send(request("GET", "/index.html", "Connection: close\r\n"));
    CHECK(late.silent_for(std::chrono::milliseconds(300)));
    idle.clear();
    const auto got = late.read_to_end();
    INFO("late connection got " << got.size() << " bytes: " << got.substr(0, 200));
    INFO("server log:\n" << read_file(log));
    // TRICKY: the first idle descriptor the server gets back goes to accepting `late`, whose
    // request is there already; the file needs a second one. Where the other idle
    // connections' ends reach the server after that (this process closes them one by one,
    // and a loaded machine may run the server in between), the right answer is still the
    // 503 with Retry-After (seen twice in CI runs of four test processes on 2 cores, and
    // every time with a 300 ms pause after closing the first idle connection).
    if (got.starts_with("HTTP/1.1 503 Service Unavailable\r\n")) {
        CHECK(got.find("\r\nRetry-After: 1\r\n") != std::string::npos);
    } else {
        CHECK(got.starts_with("HTTP/1.1 200 OK\r\n"));
        CHECK(got.ends_with("\r\n\r\n" + index));
    }
    // Every descriptor back: served again, whatever `late` got.
    REQUIRE(server.wait_for_descriptors(before));
    CHECK(curl({url(server, "/index.html")}).out == index);
    CHECK(curl({url(server, "/notes.txt")}).out == read_file(s.www() / "notes.txt"));
    stop_cleanly(server);
}

TEST_CASE("http: the open-file cache: a file changed, deleted or swapped for a link out of the "
          "root is seen after --file-cache-validity",
          "[examples][http]") {
    require_client("curl");
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    site s(kind);
    const auto file = s.www() / "cached.txt";
    const auto link = s.www() / "swapped";
    const auto replace = [](const fs::path& p, const std::string& data) {
        // As an editor saves: a new file renamed over the old one (a new inode).
        write_file(p.string() + ".new", data);
        fs::rename(p.string() + ".new", p);
    };
    {
        // A validity longer than the test: what was read is served from the cache, even
        // once the file is gone (a 200 here shows the cache is on by default).
        example_server server("http", kind, {"--root", s.www().string(), "--file-cache-validity",
                                             "60"});
        write_file(file, "one\n");
        CHECK(curl({url(server, "/cached.txt")}).out == "one\n");
        fs::remove(file);
        CHECK(curl({url(server, "/cached.txt")}).out == "one\n");
        CHECK(status_of(server, "/cached.txt", {"-r", "1-2"}) == "206");
        stop_cleanly(server);
    }
    {
        // --file-cache 0: every request opens the file.
        example_server server("http", kind, {"--root", s.www().string(), "--file-cache", "0"});
        write_file(file, "one\n");
        CHECK(curl({url(server, "/cached.txt")}).out == "one\n");
        replace(file, "two\n");
        CHECK(curl({url(server, "/cached.txt")}).out == "two\n");
        fs::remove(file);
        CHECK(status_of(server, "/cached.txt") == "404");
        stop_cleanly(server);
    }
    // A validity of 0.3 s: each change is seen once 0.45 s have passed.
    const auto past_validity = [] { std::this_thread::sleep_for(std::chrono::milliseconds(450)); };
    example_server server("http", kind,
                          {"--root", s.www().string(), "--file-cache-validity", "0.3"});
    write_file(file, "one\n");
    CHECK(curl({url(server, "/cached.txt")}).out == "one\n");
    replace(file, "two, and longer\n");
    past_validity();
    CHECK(curl({"-D", "/dev/stderr", url(server, "/cached.txt")}).out == "two, and longer\n");
    // Changed in place (the same inode, a new size).
    write_file(file, "three: changed in place\n");
    past_validity();
    const auto in_place = curl({"-D", "/dev/stderr", url(server, "/cached.txt")});
    CHECK(in_place.out == "three: changed in place\n");
    CHECK(in_place.err.find("Content-Length: 24\r\n") != std::string::npos);
    fs::remove(file);
    past_validity();
    CHECK(status_of(server, "/cached.txt") == "404");

    // A link inside the root, served; then swapped for one that leads out (absolute, then
    // relative): refused once the validity has passed, and never the secret.
    fs::create_symlink("index.html", link);
    CHECK(curl({url(server, "/swapped")}).out == read_file(s.www() / "index.html"));
    for (const auto& target : {s.dir() / "secret.txt", fs::path("../secret.txt")}) {
        CAPTURE(target);
        fs::remove(link);
        fs::create_symlink(target, link);
        past_validity();
        const auto r = curl({"-w", "\n%{http_code}", url(server, "/swapped")});
        CHECK(r.out.ends_with("\n403"));
        CHECK(r.out.find("do not serve") == std::string::npos);
        fs::remove(link);
        fs::create_symlink("index.html", link);
        CHECK(curl({url(server, "/swapped")}).out == read_file(s.www() / "index.html"));
    }
    // An absolute link that stays inside the root is served, as realpath(3) allowed it.
    fs::create_symlink(s.www() / "notes.txt", s.www() / "absolute");
    CHECK(curl({url(server, "/absolute")}).out == read_file(s.www() / "notes.txt"));
    stop_cleanly(server);
}
