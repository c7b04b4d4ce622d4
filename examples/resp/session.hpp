// SPDX-License-Identifier: MIT
// examples/resp/session.hpp — the resp example's session: one connection's requests, read
// (request.hpp), run against the store (commands.hpp) and answered in order. Apart from the
// program (main.cpp: the command line, the listener, the expiry sweep, serve()), so that
// tests run it over any transport (tests/examples/test_sessions.cpp: a scripted peer).
//
//     chat::serve_options so;
//     so.channel = resp::channel_options();
//     chat::serve(r, l, resp::handler{&db, query_limit}, so);
#pragma once

#include <cstddef>

#include "chat/channel.hpp"
#include "core/task.hpp"
#include "examples/resp/store.hpp"

namespace resp {

/// With this much output queued, a session waits until all of it is sent before it reads on.
constexpr std::size_t high_water = 256 * 1024;

/// The channel options the server runs its connections with: low_water 0, so that drain()
/// waits until all output is sent (see high_water).
ringchat::chat::channel_options channel_options();

/// One connection. A malformed request gets "-ERR Protocol error: ..." and a lingering
/// close; a request whose arguments pass `query_limit` while they arrive gets no reply (one
/// line on stderr) and the connection is closed at once, as Redis closes such a client; QUIT
/// ends it after its +OK. `db` outlives the session.
ringchat::task<> session(ringchat::chat::channel& ch, store& db, std::size_t query_limit);

/// What serve() runs per connection.
struct handler {
    store* db;
    std::size_t query_limit;
    ringchat::task<> operator()(ringchat::chat::channel& ch) const {
        return session(ch, *db, query_limit);
    }
};

}  // namespace resp
