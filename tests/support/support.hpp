// SPDX-License-Identifier: MIT
// NOTE: never write co_await inside REQUIRE/CHECK: GCC 12 evaluates a co_await inside
// Catch2's macro more than once. Await into a variable, then check the variable.
//
// What every test folder shares: the backends to run on, a reactor under a watchdog that
// checks nothing leaked, socket pairs and loopback listeners, text helpers.
#pragma once

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
