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
//
//     co_await chat::serve(group, at, &session, {.place = chat::placement::round_robin});
//
// On a reactor_group, called from one of its reactors: connections to `at` are served on
// every reactor, each on the one it was placed on, never moving; max_connections holds on
// each reactor (see group_serve_options).
#pragma once

#include <atomic>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "async_chat.hpp"
#include "channel.hpp"
#include "socket_transport.hpp"
#include "transport.hpp"
#include "../core/listener.hpp"
#include "../core/log.hpp"
#include "../core/reactor.hpp"
#include "../core/reactor_group.hpp"

namespace ringchat::chat {

struct serve_state;

/// Makes a connection's transport from its socket (chat::tls_server(ctx): TLS).
using transport_factory = std::function<std::unique_ptr<transport>(ringchat::socket)>;

struct serve_options {
    channel_options channel;
    std::size_t max_connections = 0;  ///< 0 = no limit
    /// Each connection's transport; empty: the socket itself (a socket_transport).
    transport_factory make_transport;
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

inline std::unique_ptr<transport> make_transport(const transport_factory& make,
                                                 ringchat::socket s) {
    if (make) {
        return make(std::move(s));
    }
    return std::make_unique<socket_transport>(std::move(s));
}

/// The round-robin acceptor's view of max_connections: the connections open on each reactor,
/// counted up by the acceptor as it hands one out and down by the reactor where it ends.
struct group_slots {
    group_slots(reactor_group& g, unsigned acceptor, std::size_t limit)
        : group(&g), acceptor(acceptor), limit(limit),
          open(std::make_unique<std::atomic<std::size_t>[]>(g.size())) {}

    reactor_group* group;
    unsigned acceptor;  // the reactor the acceptor runs on
    std::size_t limit;
    std::unique_ptr<std::atomic<std::size_t>[]> open;
    /// Set by the acceptor once it waits for room; whoever exchanges it back to false wakes
    /// it (a connection that ended) or goes on without sleeping (the acceptor, on a recheck).
    std::atomic<bool> waiting{false};
    std::coroutine_handle<> waiter;  // the acceptor's, used on its reactor only

    /// The first reactor from `from` on, in turn, with fewer than `limit` open; size() if none.
    unsigned with_room(unsigned from) const noexcept {
        for (unsigned i = 0; i < group->size(); ++i) {
            const unsigned k = (from + i) % group->size();
            if (open[k].load() < limit) {
                return k;
            }
        }
        return group->size();
    }

    /// Awaitable: the acceptor sleeps until some reactor has room.
    struct wait_for_room {
        group_slots& s;
        bool await_ready() const noexcept { return s.with_room(0) != s.group->size(); }
        bool await_suspend(std::coroutine_handle<> h) noexcept {
            s.waiter = h;
            s.waiting.store(true);
            // A connection that ended before the store saw no waiter: look again. If one ended
            // after it, it and this recheck race for the flag: exactly one of them wins.
            if (s.with_room(0) != s.group->size() && s.waiting.exchange(false)) {
                return false;  // room, and no connection will wake us: go on
            }
            return true;  // a connection's end (maybe one already on its way) wakes us
        }
        void await_resume() const noexcept {}
    };

    /// A connection on reactor k ended (called there).
    static void release(const std::shared_ptr<group_slots>& self, unsigned k) noexcept {
        self->open[k].fetch_sub(1);
        if (self->waiting.exchange(false)) {
            self->group->post(self->acceptor, [self] {
                self->group->at(self->acceptor).schedule(self->waiter);
            });
        }
    }
};

/// What every connection of one serve() is made with, shared (a connection's coroutine frame
/// lives as long as the connection: a copy of these in each cost about 120 bytes).
struct connection_setup {
    channel_options channel;
    transport_factory make;
    /// Round robin with max_connections: where the connection is counted (on the reactor
    /// it runs on); null otherwise.
    std::shared_ptr<group_slots> slots = nullptr;
};

/// A connection's handler threw: counted (serve_state::failures) and logged; the caller
/// closes the connection.
inline void handler_failed(serve_state& state, const std::exception& e) {
    ++state.failures;
    log::error("connection: handler failed: {}; closing it", e.what());
}

/// One connection, from its socket to its close: a detached coroutine (one frame per
/// connection, not two). The connection is counted open until it ends however it ends, a
/// transport or channel that could not be made included.
template <class Handler>
reactor::detached run_connection(Handler handler, ringchat::socket s,
                                 std::shared_ptr<const connection_setup> setup,
                                 std::shared_ptr<serve_state> state) {
    try {
        if constexpr (is_type_identity<Handler>::value) {
            typename Handler::type chat(make_transport(setup->make, std::move(s)), setup->channel);
            try {
                co_await chat.run();
            } catch (const std::exception& e) {
                handler_failed(*state, e);
                chat.close();
            }
        } else {
            channel ch(make_transport(setup->make, std::move(s)), setup->channel);
            try {
                co_await handler(ch);
            } catch (const std::exception& e) {
                handler_failed(*state, e);
            }
            // What the handler queued before it returned (or threw) is sent, then the close.
            co_await ch.finish();
        }
    } catch (const std::exception& e) {
        log::error("connection: could not be set up: {}; closing it", e.what());
    }
    state->release();
    if (setup->slots) {
        group_slots::release(setup->slots, setup->slots->group->here());
    }
}

}  // namespace detail

/// Accepts on `l` until it fails (closed, or the reactor stops) and runs `handler` (a
/// callable `task<>(channel&)`, copied per connection) on each connection's channel.
/// \note `l` must outlive this task: close it, and let serve() return, before it goes.
template <class Handler>
task<> serve(reactor& r, listener& l, Handler handler, serve_options options = {}) {
    auto state = options.state ? options.state : std::make_shared<serve_state>();
    state->owner = &r;
    const auto setup = std::make_shared<const detail::connection_setup>(
        detail::connection_setup{options.channel, options.make_transport});
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
        r.spawn(detail::run_connection(handler, std::move(*s), setup, state));
    }
}

/// serve() with a new `Chat(socket, channel_options)` (an async_chat) per connection.
template <std::derived_from<async_chat> Chat>
task<> serve(reactor& r, listener& l, serve_options options = {}) {
    return serve(r, l, std::type_identity<Chat>{}, std::move(options));
}

/// How serve() on a reactor_group spreads connections over its reactors.
enum class placement : std::uint8_t {
    /// A listener per reactor on the same address (SO_REUSEPORT): the kernel spreads them.
    reuse_port,
    /// One listener, on the reactor that called serve(): it hands each connection to the
    /// next reactor in turn (itself included), with a message.
    round_robin,
};

struct group_serve_options {
    /// For each reactor's connections; its state is ignored (see states). max_connections
    /// holds on each reactor (N reactors: N times as many in all): under reuse_port each
    /// listener's serve() waits while its reactor is full; under round_robin the acceptor
    /// hands a connection to the next reactor in turn that has room, and waits while none has.
    serve_options serve;
    placement place = placement::reuse_port;
    listen_options listen;  ///< reuse_port is set for placement::reuse_port
    /// Called once every listener is bound, with the bound address (the real port when the
    /// port was 0): a ready line, say.
    std::function<void(const address&)> ready;
    /// Where to put the serve_state of each reactor (index k); each is written on its own
    /// reactor: read it there (group.on(k, ...)) or after group.run() returned.
    std::vector<std::shared_ptr<serve_state>>* states = nullptr;
};

namespace detail {

template <class Handler>
task<> serve_owned(reactor& r, listener l, Handler handler, serve_options options) {
    co_await serve(r, l, std::move(handler), std::move(options));
}

template <class Handler>
task<> hand_round(reactor_group& g, reactor& r, listener& l, const Handler& handler,
                  std::shared_ptr<const connection_setup> setup,
                  std::vector<std::shared_ptr<serve_state>> states, std::size_t limit) {
    const auto slots = limit != 0 ? std::make_shared<group_slots>(g, g.here(), limit) : nullptr;
    if (slots) {
        auto counted = *setup;  // each connection gives its slot back when it ends
        counted.slots = slots;
        setup = std::make_shared<const connection_setup>(std::move(counted));
    }
    unsigned next = g.here();
    for (;;) {
        unsigned k = next;
        while (slots) {
            k = slots->with_room(next);
            if (k != g.size()) {
                break;
            }
            co_await group_slots::wait_for_room{*slots};
        }
        auto s = co_await l.accept();
        if (!s) {
            break;
        }
        next = (k + 1) % g.size();
        r.io().forget(s->fd());
        if (slots) {
            slots->open[k].fetch_add(1);  // only this acceptor counts up: the room stays
        }
        // The setup is shared by every reactor's connections: its transport factory is called
        // on each (tls_server()'s is safe so: a context serves every thread).
        g.post(k, [&g, k, fd = s->release(), handler, setup, state = states[k]] {
            reactor& here = g.at(k);
            state->owner = &here;
            ++state->open;
            ++state->served;
            ringchat::socket own(here, fd);
            here.spawn(run_connection(handler, std::move(own), setup, state));
        });
    }
}

}  // namespace detail

/// serve() on every reactor of `g`, from the reactor that calls it: binds `at` (one listener
/// per reactor, or one for all: options.place), calls options.ready, and returns when this
/// reactor's listener closes (its graceful stop); the other reactors' listeners close with
/// their own stops. \return the error of a bind that failed (then none serves).
/// \pre the caller runs on `g` (g.in_group()).
template <class Handler>
task<std::error_code> serve(reactor_group& g, address at, Handler handler,
                            group_serve_options options = {}) {
    const unsigned here = g.here();
    reactor& r = g.at(here);
    std::vector<std::shared_ptr<serve_state>> states(g.size());
    for (auto& s : states) {
        s = std::make_shared<serve_state>();
    }
    if (options.states != nullptr) {
        *options.states = states;
    }
    const bool spread = options.place == placement::reuse_port && g.size() > 1;
    listen_options lo = options.listen;
    lo.reuse_port = lo.reuse_port || spread;
    auto own = listener::bind(r, at, lo);
    if (!own) {
        co_return own.error();
    }
    const address bound = own->local_address();
    // Each listener is made, used and closed on its own reactor; bound to the real port.
    std::vector<std::optional<listener>> others(g.size());
    std::error_code failed;
    for (unsigned k = 0; spread && k < g.size() && !failed; ++k) {
        if (k != here) {
            failed = co_await g.on(k, [&, k]() -> std::error_code {
                auto l = listener::bind(g.at(k), bound, lo);
                if (!l) {
                    return l.error();
                }
                others[k].emplace(std::move(*l));
                return {};
            });
        }
    }
    for (unsigned k = 0; spread && k < g.size(); ++k) {
        if (k != here) {
            // TRICKY: the lambda captures nothing that owns (GCC 12 may destroy a co_await
            // operand's temporaries twice); what reactor k needs it reads from this frame.
            co_await g.on(k, [&, k] {
                serve_options per = options.serve;
                per.state = states[k];
                if (failed) {
                    others[k].reset();
                } else {
                    g.at(k).spawn(detail::serve_owned(g.at(k), std::move(*others[k]), handler, per));
                    others[k].reset();
                }
            });
        }
    }
    if (failed) {
        co_return failed;
    }
    if (options.ready) {
        options.ready(bound);
    }
    if (g.size() > 1 && options.place == placement::round_robin) {
        auto setup = std::make_shared<const detail::connection_setup>(detail::connection_setup{
            options.serve.channel, options.serve.make_transport});
        co_await detail::hand_round(g, r, *own, handler, std::move(setup), states,
                                    options.serve.max_connections);
    } else {
        serve_options per = options.serve;
        per.state = states[here];
        co_await serve(r, *own, handler, per);
    }
    co_return std::error_code{};
}

/// Connects to `to` and makes a channel of the connection, over the transport `make` makes
/// (chat::tls_client(ctx, name)), or the socket itself where `make` is empty.
/// \return ECONNREFUSED, ETIMEDOUT ... as errors.
inline task<result<std::unique_ptr<channel>>> connect(reactor& r, address to,
                                                      transport_factory make,
                                                      channel_options options = {},
                                                      std::chrono::nanoseconds timeout =
                                                          std::chrono::seconds(30)) {
    auto s = co_await ringchat::socket::connect(r, to, timeout);
    if (!s) {
        co_return s.error();
    }
    co_return std::make_unique<channel>(detail::make_transport(make, std::move(*s)), options);
}

/// connect() over the socket itself.
inline task<result<std::unique_ptr<channel>>> connect(reactor& r, address to,
                                                      channel_options options = {},
                                                      std::chrono::nanoseconds timeout =
                                                          std::chrono::seconds(30)) {
    return connect(r, std::move(to), transport_factory(), options, timeout);
}

}  // namespace ringchat::chat
