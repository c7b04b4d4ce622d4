// SPDX-License-Identifier: MIT
// tests/examples/test_cli.cpp — every program's command line (examples/common/cli.hpp's
// conventions): the examples, raw_echo, and bench's programs where the build has them.
//
//     --help            usage on stdout, exit 0
//     --version         "<prog> (ringchat) <version>", exit 0
//     a bad option      "<prog>: what is wrong" and "try '<prog> --help'" on stderr, exit 2
//     cannot start      one "<prog>: ..." line on stderr, exit 1 (port in use, bad maildir)
//
// Each program runs under RINGCHAT_LOG=quiet: what it says here it must say itself, not
// through the library's logger.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/examples/harness.hpp"
#include "tests/support/support.hpp"
#include "version.hpp"

using namespace ringchat;
using namespace ringchat::test;

namespace {

struct program {
    std::string name;
    std::vector<std::string> argv;  ///< how to start it (a script: its interpreter first)
    /// The arguments that make it listen on 127.0.0.1:PORT ("PORT" stands for the port);
    /// empty for a program that does not listen.
    std::vector<std::string> listen;
    /// A bad value, and the first line it must cause ("" for a script: not checked exactly).
    std::vector<std::string> bad;
    std::string bad_line;
};

std::filesystem::path scratch(const std::string& what) {
    return std::filesystem::temp_directory_path() /
           ("ringchat-cli-" + what + "-" + std::to_string(getpid()));
}

std::vector<program> programs() {
    std::vector<program> all;
    for (const std::string name : {"echo", "chatroom", "resp", "http"}) {
        all.push_back({name, {example_program(name).string()}, {"--port", "PORT"},
                       {"--port", "abc"}, name + ": --port: not a port number: 'abc'"});
    }
    all.push_back({"smtp",
                   {example_program("smtp").string(), "--maildir", scratch("maildir").string()},
                   {"--port", "PORT"},
                   {"--max-size", "lots"},
                   "smtp: --max-size: not a whole number (k, m or g may follow): 'lots'"});
    all.push_back({"raw_echo", {example_program("raw_echo").string()}, {"127.0.0.1:PORT"},
                   {"nowhere"}, "raw_echo: not an address: 'nowhere'"});
#if RINGCHAT_BENCH
    const auto bench = build_dir() / "bench";
    for (const std::string name : {"epoll_echo", "uring_echo"}) {
        all.push_back({name, {(bench / name).string()}, {"--port", "PORT"}, {"--port", "70000"},
                       name + ": --port: not a port number: '70000'"});
    }
    all.push_back({"loadgen", {(bench / "loadgen").string(), "--port", "1"}, {},
                   {"--connections", "0"},
                   "loadgen: --connections: not a number of connections (1 or more): '0'"});
    all.push_back({"file_send", {(bench / "file_send").string()}, {}, {"--backend", "kqueue"},
                   "file_send: --backend: not uring, epoll or all: 'kqueue'"});
    all.push_back({"asynchat_echo",
                   {"python3", "-W", "ignore",
                    (std::filesystem::path(RINGCHAT_SOURCE_ROOT) / "bench" / "baselines" /
                     "asynchat_echo.py")
                        .string()},
                   {"--port", "PORT"},
                   {"--port", "abc"},
                   ""});
#endif
    return all;
}

/// Runs `p` with `args` after its own, under RINGCHAT_LOG=quiet.
command_result run_program(const program& p, const std::vector<std::string>& args) {
    std::vector<std::string> argv{"env", "RINGCHAT_LOG=quiet"};
    argv.insert(argv.end(), p.argv.begin(), p.argv.end());
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run_command(argv, {}, std::chrono::seconds(30));
    CHECK_FALSE(r.timed_out);
    return r;
}

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::size_t at = 0;
    while (at < text.size()) {
        const auto nl = text.find('\n', at);
        out.push_back(text.substr(at, nl - at));
        at = nl == std::string::npos ? text.size() : nl + 1;
    }
    return out;
}

/// A start-up failure: exit 1, nothing on stdout (no "ready"), one "<name>: ..." line.
void check_startup_failure(const command_result& r, const std::string& name) {
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.status == 1);
    CHECK(r.out.empty());
    const auto said = lines(r.err);
    REQUIRE(said.size() == 1);
    CHECK(said[0].starts_with(name + ": "));
}

/// A listening socket on 127.0.0.1 (no SO_REUSEPORT, so no one else can bind its port).
class taken_port {
public:
    taken_port() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof sa;
        REQUIRE(fd_ >= 0);
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
        REQUIRE(::listen(fd_, 1) == 0);
        REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
        port_ = ntohs(sa.sin_port);
    }
    taken_port(const taken_port&) = delete;
    taken_port& operator=(const taken_port&) = delete;
    ~taken_port() { ::close(fd_); }
    std::string text() const { return std::to_string(port_); }

private:
    int fd_ = -1;
    std::uint16_t port_ = 0;
};

}  // namespace

TEST_CASE("cli: --help prints the usage to stdout and exits 0", "[examples][cli]") {
    for (const auto& p : programs()) {
        CAPTURE(p.name);
        const auto r = run_program(p, {"--help"});
        INFO("stderr: " << r.err);
        CHECK(r.status == 0);
        CHECK(r.out.find("usage") != std::string::npos);
        CHECK(r.err.empty());
    }
}

TEST_CASE("cli: --version prints '<prog> (ringchat) <version>' and exits 0", "[examples][cli]") {
    for (const auto& p : programs()) {
        CAPTURE(p.name);
        const auto r = run_program(p, {"--version"});
        CHECK(r.status == 0);
        CHECK(r.out == p.name + " (ringchat) " RINGCHAT_VERSION "\n");
        CHECK(r.err.empty());
    }
}

TEST_CASE("cli: a bad option or value is two lines on stderr and exit 2", "[examples][cli]") {
    for (const auto& p : programs()) {
        CAPTURE(p.name);
        const std::string try_line = "try '" + p.name + " --help'";
        const auto unknown = run_program(p, {"--frob"});
        CHECK(unknown.status == 2);
        CHECK(unknown.out.empty());
        const auto said = lines(unknown.err);
        REQUIRE(said.size() == 2);
        if (p.bad_line.empty()) {  // a script: its own words
            CHECK(said[0].starts_with(p.name + ": "));
            CHECK(said[0].find("--frob") != std::string::npos);
        } else {
            CHECK(said[0] == p.name + ": unknown option '--frob'");
        }
        CHECK(said[1] == try_line);

        const auto bad = run_program(p, p.bad);
        CHECK(bad.status == 2);
        CHECK(bad.out.empty());
        const auto bad_said = lines(bad.err);
        REQUIRE(bad_said.size() == 2);
        if (p.bad_line.empty()) {
            CHECK(bad_said[0].starts_with(p.name + ": "));
        } else {
            CHECK(bad_said[0] == p.bad_line);
        }
        CHECK(bad_said[1] == try_line);
    }
    std::filesystem::remove_all(scratch("maildir"));
}

TEST_CASE("cli: the examples' common options refuse bad values by name", "[examples][cli]") {
    const std::string echo = example_program("echo").string();
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
        {{"--port"}, "echo: --port: needs a value"},
        {{"--port=65536"}, "echo: --port: not a port number: '65536'"},
        {{"--host", "1.2.3"}, "echo: --host: not an address: '1.2.3'"},
        {{"--host="}, "echo: --host: not an address: ''"},
        {{"--grace", "soon"}, "echo: --grace: not a number of seconds (0 to 86400): 'soon'"},
        {{"--client=yes"}, "echo: --client: takes no value"},
        {{"extra"}, "echo: unexpected argument 'extra'"},
    };
    for (const auto& [args, first] : cases) {
        std::vector<std::string> argv{echo};
        argv.insert(argv.end(), args.begin(), args.end());
        CAPTURE(args);
        const auto r = run_command(argv, {}, std::chrono::seconds(30));
        CHECK(r.status == 2);
        CHECK(r.err == first + "\ntry 'echo --help'\n");
    }
    const auto smtp = run_command({example_program("smtp").string(), "--port", "0"});
    CHECK(smtp.status == 2);
    CHECK(smtp.err == "smtp: --maildir DIR is required\ntry 'smtp --help'\n");
}

TEST_CASE("cli: a port in use is one line on stderr and exit 1", "[examples][cli]") {
    const taken_port taken;
    for (const auto& p : programs()) {
        if (p.listen.empty()) {
            continue;
        }
        CAPTURE(p.name);
        std::vector<std::string> args;
        for (const auto& a : p.listen) {
            const auto at = a.find("PORT");
            args.push_back(at == std::string::npos ? a : a.substr(0, at) + taken.text());
        }
        const auto r = run_program(p, args);
        check_startup_failure(r, p.name);
        CHECK(r.err.find("Address already in use") != std::string::npos);
    }
    std::filesystem::remove_all(scratch("maildir"));
}

TEST_CASE("cli: the examples say which address they cannot listen on, on each backend",
          "[examples][cli]") {
    const auto kind = GENERATE(from_range(backends()));
    CAPTURE(kind);
    const taken_port taken;
    const auto r = run_program({"echo", {example_program("echo").string()}, {}, {}, ""},
                       {"--backend", backend_flag(kind), "--port", taken.text()});
    check_startup_failure(r, "echo");
    CHECK(r.err == "echo: cannot listen on 127.0.0.1:" + taken.text() +
                       ": Address already in use\n");
}

TEST_CASE("cli: smtp does not start on a maildir it cannot write", "[examples][cli][smtp]") {
    // Root may write into a chmod'ed directory, so neither case relies on permissions: a
    // regular file where the maildir should be, and a maildir whose tmp/ is /proc/self
    // (a directory no one can create a file in).
    const auto base = scratch("bad-maildir");
    std::filesystem::remove_all(base);
    std::filesystem::create_directories(base);
    const program smtp{"smtp", {example_program("smtp").string()}, {}, {}, ""};

    const auto file = base / "a-file";
    std::ofstream(file) << "not a directory\n";
    check_startup_failure(run_program(smtp, {"--port", "0", "--maildir", file.string()}), "smtp");

    const auto maildir = base / "maildir";
    std::filesystem::create_directories(maildir / "new");
    std::filesystem::create_directories(maildir / "cur");
    std::filesystem::create_directory_symlink("/proc/self", maildir / "tmp");
    const auto r = run_program(smtp, {"--port", "0", "--maildir", maildir.string()});
    check_startup_failure(r, "smtp");
    CHECK(r.err.find("cannot write to " + (maildir / "tmp").string()) != std::string::npos);
    std::filesystem::remove_all(base);
}

TEST_CASE("cli: smtp's check of its maildir leaves nothing in it", "[examples][cli][smtp]") {
    const auto maildir = scratch("good-maildir");
    std::filesystem::remove_all(maildir);
    {
        example_server server("smtp", backends().front(), {"--maildir", maildir.string()});
        for (const char* sub : {"tmp", "new", "cur"}) {
            CAPTURE(sub);
            CHECK(std::filesystem::is_empty(maildir / sub));
        }
        CHECK(server.stop() == 0);
    }
    std::filesystem::remove_all(maildir);
}

TEST_CASE("cli: http refuses a --root that is not there as a bad value", "[examples][cli]") {
    // Unlike smtp's maildir, which it creates, http's --root must be there: a bad value.
    const auto root = scratch("no-such-root").string();
    const auto r = run_command({example_program("http").string(), "--port", "0", "--root", root});
    CHECK(r.status == 2);
    CHECK(r.out.empty());
    CHECK(r.err == "http: --root " + root + ": No such file or directory\ntry 'http --help'\n");
}
