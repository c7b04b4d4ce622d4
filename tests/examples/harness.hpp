// SPDX-License-Identifier: MIT
// tests/examples/harness.hpp — runs the example programs as real servers and real clients
// against them: spawn a server with --port 0 --backend KIND, wait for its ready line, read the
// port from it; run a client (redis-cli, python3 ...) with input, a time limit, and its output
// collected; stop the server with SIGTERM and see it exit cleanly.
//
// A test may also start a server under a small RLIMIT_NOFILE, look at its descriptors
// (/proc/PID/fd), and send its stderr to a file to read what it logged.
//
// Invariant: no child outlives its test. A server is stopped (SIGTERM, then SIGKILL after a
// grace period) and reaped in its destructor; a client past its limit is killed and reaped.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/backend.hpp"

namespace ringchat::test {

/// The build directory of this test binary (the folder above tests/), so that build/ tests
/// build/examples and build-asan/ tests build-asan/examples.
std::filesystem::path build_dir();
/// The example program `name` in build_dir() (examples/NAME, or examples/NAME/NAME).
std::filesystem::path example_program(const std::string& name);
/// A file of the test sources (tests/examples/NAME), e.g. a Python client.
std::filesystem::path example_script(const std::string& name);
/// "uring" or "epoll", as --backend takes it; and the name the ready line shows.
std::string backend_flag(backend_kind kind);
std::string backend_shown(backend_kind kind);
/// True in a build with AddressSanitizer (tests then do less work).
bool sanitized() noexcept;

struct command_result {
    int status = -1;        ///< exit code; 128 + signal when killed by one
    bool timed_out = false;
    std::string out;
    std::string err;
};

/// Runs `argv` (argv[0] is looked up in PATH) with `input` on its stdin, collecting stdout and
/// stderr; kills it after `limit`.
command_result run_command(const std::vector<std::string>& argv, const std::string& input = {},
                           std::chrono::seconds limit = std::chrono::seconds(60));
/// True when `program` is found in PATH.
bool have_program(const std::string& program);

/// A file for a server's stderr (server_options::log) under the temporary directory, named
/// after `what` and this process.
std::filesystem::path temp_log(const std::string& what);
/// What the file `log` holds (a server's stderr, read after it stopped); the file removed.
std::string read_log(const std::filesystem::path& log);
/// The counts of "PROGRAM: connections served by each reactor: A B ..." (the line of a
/// --threads server's clean stop) in `said`; empty when the line is not there.
std::vector<std::size_t> served_by_each(const std::string& said, const std::string& program);

/// How to start an example server, beyond its name and backend.
struct server_options {
    std::vector<std::string> extra;  ///< arguments after --port 0 --backend KIND
    std::filesystem::path log;       ///< its stderr goes here (created or truncated); empty: ours
    /// RLIMIT_NOFILE (soft and hard) from its start; 0: ours. TRICKY: set before it starts,
    /// not later with prlimit(2): io_uring reads the limit when an accept is prepared, so a
    /// multishot accept armed before a later prlimit() goes on under the old limit.
    unsigned long nofile = 0;
};

class example_server {
public:
    /// Starts `name` with --port 0 --backend KIND and `extra` arguments and waits (30 s at
    /// most) for its ready line. \throws std::runtime_error when it fails to come up.
    example_server(const std::string& name, backend_kind kind,
                   std::vector<std::string> extra = {});
    example_server(const std::string& name, backend_kind kind, const server_options& o);
    example_server(const example_server&) = delete;
    example_server& operator=(const example_server&) = delete;
    ~example_server();

    std::uint16_t port() const noexcept { return port_; }
    std::string port_text() const { return std::to_string(port_); }
    const std::string& ready_line() const noexcept { return ready_; }
    pid_t pid() const noexcept { return pid_; }
    /// The descriptors it has open now (the numbers in /proc/PID/fd), ascending.
    std::vector<int> descriptors() const;
    /// Waits (`limit` at most) until it has exactly `n` descriptors open. \return whether it
    /// got there.
    bool wait_for_descriptors(std::size_t n,
                              std::chrono::milliseconds limit = std::chrono::seconds(10)) const;
    /// SIGTERM, then waits up to `grace` (SIGKILL after it). \return the exit code, 128 +
    /// signal if killed, -1 if already stopped.
    int stop(std::chrono::seconds grace = std::chrono::seconds(10));

private:
    pid_t pid_ = -1;
    int out_ = -1;  // its stdout (kept open, so that it never writes into a closed pipe)
    std::uint16_t port_ = 0;
    std::string ready_;
};

}  // namespace ringchat::test
