// SPDX-License-Identifier: MIT
// examples/http/session.hpp — the http example's session: one connection's requests, each
// read (request.hpp, body.hpp) and answered in order (response.hpp, site.hpp, file_cache.hpp),
// and the server state its sessions share. Apart from the program (main.cpp: the command
// line, the listener, the cache's sweep, serve()), so that tests run it over any transport
// (tests/examples/test_sessions.cpp: a scripted peer, no socket).
//
//     http::server srv{http::site(root), cfg, http::file_cache({entries, validity}), {}};
//     chat::serve_options so;
//     so.channel = http::channel_options(cfg, true);
//     chat::serve(r, l, http::handler{&srv}, so);
//     chat::serve(group, at, http::group_handler{&group, &servers}, o);   // a server per reactor
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "chat/channel.hpp"
#include "core/reactor_group.hpp"
#include "core/task.hpp"
#include "examples/http/file_cache.hpp"
#include "examples/http/site.hpp"

namespace http {

/// With this much output queued, a session waits until it is sent before it reads on.
constexpr std::size_t high_water = 256 * 1024;

struct config {
    std::size_t max_body = 1 << 20;
    std::size_t max_header = 16 * 1024;
    /// A request head must be complete this long after its first byte (nginx's
    /// client_header_timeout): a client that trickles it gets 408, then the close.
    std::chrono::nanoseconds header_timeout = std::chrono::seconds(20);
    /// Each slice of a body (max_header bytes) must be complete this long after its first
    /// byte: 408 otherwise.
    std::chrono::nanoseconds body_timeout = std::chrono::seconds(60);
};

/// The lines that say descriptors ran out: the first at once, then at most one a second,
/// each saying how many 503s went unlogged since the line before.
class exhaustion_log {
public:
    void note(int err, std::string_view path);

private:
    bool logged_ = false;
    std::chrono::steady_clock::time_point last_;
    std::uint64_t answered_ = 0;  // since the last line, this one's included
};

/// What every session of the server shares (one reactor's: nothing here is locked).
struct server {
    http::site site;
    config cfg;
    http::file_cache cache;
    exhaustion_log exhausted;
};

/// The channel options the server runs its connections with: max_frame = cfg.max_header (the
/// head's limit, and the body's slice size), low_water 0 (drain() waits until all output is
/// sent), a 60 s idle timeout, and sendfile(2) for files unless `zero_copy` is false.
ringchat::chat::channel_options channel_options(const config& cfg, bool zero_copy);

/// The open-file cache's size: `wanted`, at most a 16th of RLIMIT_NOFILE, and none below
/// 1024, where every descriptor counts (and the cache would hide that they ran out).
std::size_t cache_size(std::size_t wanted, std::chrono::nanoseconds validity);

/// One connection: request after request until the client closes, asks for the close, or a
/// framing error ends it (after its response, with a lingering close). `srv` outlives it.
ringchat::task<> session(ringchat::chat::channel& ch, server& srv);

/// What serve() runs per connection.
struct handler {
    server* srv;
    ringchat::task<> operator()(ringchat::chat::channel& ch) const { return session(ch, *srv); }
};

/// What serve() on a reactor_group runs per connection: the session with the server of the
/// reactor it runs on ((*servers)[k] on reactor k, each used on its own thread only).
struct group_handler {
    ringchat::reactor_group* group;
    std::vector<std::unique_ptr<server>>* servers;
    ringchat::task<> operator()(ringchat::chat::channel& ch) const {
        return session(ch, *(*servers)[group->here()]);
    }
};

}  // namespace http
