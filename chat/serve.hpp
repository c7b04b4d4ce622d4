// SPDX-License-Identifier: MIT
// chat/serve.hpp — servers and clients over channels.
//
//     r.spawn(chat::serve(r, listener, &session));            // task<>(chat::channel&)
//     r.spawn(chat::serve(r, listener, handler, options));    // any callable, copied per connection
//     r.spawn(chat::serve<my_chat>(r, listener));             // an async_chat class
//
// One channel per accepted connection. When the handler returns, queued output is flushed
// (channel::finish) and the connection closed. A handler that throws has that one connection
// closed and the error logged; the server goes on. With max_connections, accepting waits
// while that many connections are open (the kernel's backlog holds newcomers).
//
// serve() ends when its listener is closed (listener::close(), or the reactor's graceful
// stop); the connections it accepted go on to their end. To watch it, hand it a serve_state
// in serve_options::state and read the counters.
#pragma once

#include <concepts>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <memory>
#include <type_traits>
#include <utility>

#include "async_chat.hpp"
#include "channel.hpp"
#include "../core/listener.hpp"
#include "../core/log.hpp"
#include "../core/reactor.hpp"

namespace ringchat::chat {

struct serve_state;

struct serve_options {
    channel_options channel;
    std::size_t max_connections = 0;  ///< 0 = no limit
    /// Where serve() keeps its counters (null: a state of its own, which nobody else sees).
    std::shared_ptr<serve_state> state;
};

/// What serve() shares with its connections (kept alive by them): open connections, how many
/// were accepted, how many handlers threw. Read it; serve() and its connections write it.
struct serve_state {
    std::size_t open = 0;
    std::size_t served = 0;
    std::uint64_t failures = 0;  ///< handlers that threw
    std::coroutine_handle<> accept_waiting;
    reactor* owner = nullptr;

    void release() noexcept {
        --open;
        if (accept_waiting) {
            owner->schedule(std::exchange(accept_waiting, {}));
        }
    }
};

namespace detail {

template <class T>
struct is_type_identity : std::false_type {};
template <class T>
struct is_type_identity<std::type_identity<T>> : std::true_type {};

template <class Handler>
task<> run_connection(Handler handler, ringchat::socket s, channel_options options,
                      std::shared_ptr<serve_state> state) {
    if constexpr (is_type_identity<Handler>::value) {
        typename Handler::type chat(std::move(s), options);
        try {
            co_await chat.run();
        } catch (const std::exception& e) {
            ++state->failures;
            log::error("connection: handler failed: {}; closing it", e.what());
            chat.close();
        }
    } else {
        channel ch(std::move(s), options);
        try {
            co_await handler(ch);
        } catch (const std::exception& e) {
            ++state->failures;
            log::error("connection: handler failed: {}; closing it", e.what());
        }
        // What the handler queued before it returned (or threw) is sent, then the close.
        co_await ch.finish();
    }
    state->release();
}

}  // namespace detail

/// Accepts on `l` until it fails (closed, or the reactor stops) and runs `handler` (a
/// callable `task<>(channel&)`, copied per connection) on each connection's channel.
/// \note `l` must outlive this task: close it, and let serve() return, before it goes.
template <class Handler>
task<> serve(reactor& r, listener& l, Handler handler, serve_options options = {}) {
    auto state = options.state ? options.state : std::make_shared<serve_state>();
    state->owner = &r;
    struct slot_waiter {
        serve_state& s;
        std::size_t limit;
        bool await_ready() const noexcept { return limit == 0 || s.open < limit; }
        void await_suspend(std::coroutine_handle<> h) noexcept { s.accept_waiting = h; }
        void await_resume() const noexcept {}
    };
    for (;;) {
        while (options.max_connections != 0 && state->open >= options.max_connections) {
            co_await slot_waiter{*state, options.max_connections};
        }
        auto s = co_await l.accept();
        if (!s) {
            break;
        }
        ++state->open;
        ++state->served;
        r.spawn(detail::run_connection(handler, std::move(*s), options.channel, state));
    }
}

/// serve() with a new `Chat(socket, channel_options)` (an async_chat) per connection.
template <std::derived_from<async_chat> Chat>
task<> serve(reactor& r, listener& l, serve_options options = {}) {
    return serve(r, l, std::type_identity<Chat>{}, std::move(options));
}

/// Connects to `to` and makes a channel of the connection.
/// \return ECONNREFUSED, ETIMEDOUT ... as errors.
inline task<result<std::unique_ptr<channel>>> connect(reactor& r, address to,
                                                      channel_options options = {},
                                                      std::chrono::nanoseconds timeout =
                                                          std::chrono::seconds(30)) {
    auto s = co_await ringchat::socket::connect(r, to, timeout);
    if (!s) {
        co_return s.error();
    }
    co_return std::make_unique<channel>(std::move(*s), options);
}

}  // namespace ringchat::chat
