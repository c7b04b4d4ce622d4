// SPDX-License-Identifier: MIT
// tests/support/peers.hpp — the pieces tests build conversations from: a task beside the
// body, a yield to the next reactor turn, CPython's echo server, TCP pairs, a send-buffer
// filler. Shared by the chat and producer tests.
#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "core/reactor.hpp"
#include "core/socket.hpp"
#include "core/task.hpp"

namespace ringchat::test {

/// Resumes the caller at the reactor's next turn, after a poll of the backend.
struct yield_now {
    reactor& r;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) { r.schedule(h); }
    void await_resume() const noexcept {}
};

/// A task running beside the test body. The body joins it before it returns (so that nothing
/// outlives what it uses); join() rethrows what it threw (a failed REQUIRE included).
template <class T>
class background {
public:
    background(reactor& r, task<T> t) : state_(std::make_shared<state>()) {
        r.spawn(drive(r, std::move(t), state_));
    }

    auto join() {
        struct awaiter {
            state& s;
            bool await_ready() const noexcept { return s.done; }
            void await_suspend(std::coroutine_handle<> h) noexcept { s.waiter = h; }
            T await_resume() {
                if (s.error) {
                    std::rethrow_exception(s.error);
                }
                return std::move(*s.value);
            }
        };
        return awaiter{*state_};
    }

private:
    struct state {
        std::optional<T> value;
        std::exception_ptr error;
        std::coroutine_handle<> waiter;
        bool done = false;
    };
    static task<> drive(reactor& r, task<T> t, std::shared_ptr<state> s) {
        try {
            s->value.emplace(co_await std::move(t));
        } catch (...) {
            s->error = std::current_exception();
        }
        s->done = true;
        if (s->waiter) {
            r.schedule(std::exchange(s->waiter, {}));
        }
    }
    std::shared_ptr<state> state_;
};

/// CPython's SERVER_QUIT.
inline constexpr std::string_view quit = "QUIT\n";

/// CPython's echo_server: collects what arrives until "QUIT\n" (or end of stream), then
/// sends it all back (without the QUIT) in `piece`-byte sends and closes. Returns what it
/// collected.
task<std::string> echo_peer(socket s, std::size_t piece);

/// Receives until the peer closes, owning the socket (for background<>).
task<std::string> recv_all_from(socket s);

/// A connected TCP pair over 127.0.0.1 (port 0): {client, server}.
task<std::pair<socket, socket>> tcp_pair(reactor& r);

/// Fills `s`'s send buffer so that the next send must wait; returns the bytes it wrote ('j').
std::size_t fill_send_buffer(socket& s);

}  // namespace ringchat::test
