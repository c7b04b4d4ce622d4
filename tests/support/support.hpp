// SPDX-License-Identifier: MIT
// NOTE: never write co_await inside REQUIRE/CHECK: GCC 12 evaluates a co_await inside
// Catch2's macro more than once. Await into a variable, then check the variable.
//
// What every test folder shares: the backends to run on, a reactor under a watchdog that
// checks nothing leaked, socket pairs and loopback listeners, text helpers.
#pragma once

#include <signal.h>

#include <chrono>
#include <functional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/backend.hpp"
#include "core/reactor.hpp"
#include "core/reactor_group.hpp"
#include "core/socket.hpp"
#include "core/task.hpp"

namespace ringchat {
std::ostream& operator<<(std::ostream& os, backend_kind kind);
}

namespace ringchat::test {

/// The backends to run each test on: epoll, and io_uring where it can be created (a WARN
/// says when it cannot; RINGCHAT_REQUIRE_URING=1 turns that into a failure).
const std::vector<backend_kind>& backends();

/// Runs `body` on a fresh reactor of `kind` under a watchdog (`limit`, then the process
/// aborts with a message rather than hang). Rethrows what the body threw (a failed REQUIRE
/// included), and fails if a spawned task is left or /proc/self/fd grew.
void run(backend_kind kind, std::function<task<>(reactor&)> body,
         std::chrono::seconds limit = std::chrono::seconds(60));
/// run() on a reactor made with `options` (options.kind the backend); also fails unless every
/// provided buffer is back in the pool.
void run(const reactor_options& options, std::function<task<>(reactor&)> body,
         std::chrono::seconds limit = std::chrono::seconds(60));

/// Runs start(g, r, k) on each reactor of a group made with `options` (reactor_group::run)
/// under a watchdog; fails if /proc/self/fd grew. Catch2's macros are not thread-safe:
/// `start` records what it sees, and the caller checks it once this returns.
void run_group(const group_options& options,
               std::function<task<>(reactor_group&, reactor&, unsigned)> start,
               std::chrono::seconds limit = std::chrono::seconds(60));
/// group_options for `threads` reactors of `kind`.
group_options group_of(backend_kind kind, unsigned threads);

/// Restores the dispositions of SIGINT and SIGTERM at the end of a scope.
class saved_stop_signals {
public:
    saved_stop_signals() {
        sigaction(SIGINT, nullptr, &int_);
        sigaction(SIGTERM, nullptr, &term_);
    }
    ~saved_stop_signals() {
        sigaction(SIGINT, &int_, nullptr);
        sigaction(SIGTERM, &term_, nullptr);
    }
    saved_stop_signals(const saved_stop_signals&) = delete;
    saved_stop_signals& operator=(const saved_stop_signals&) = delete;

private:
    struct sigaction int_ {};
    struct sigaction term_ {};
};

/// How many descriptors this process has open.
std::size_t open_fds();

/// A connected AF_UNIX stream pair, both non-blocking.
std::pair<socket, socket> socket_pair(reactor& r);

std::string text(std::span<const std::byte> bytes);
inline std::span<const std::byte> bytes(std::string_view s) { return ringchat::as_bytes(s); }

/// Receives until `n` bytes arrived (or EOF / an error, which the result then lacks).
task<std::string> recv_exactly(socket& s, std::size_t n);
/// Receives until the peer closes.
task<std::string> recv_all(socket& s);

}  // namespace ringchat::test
