// SPDX-License-Identifier: MIT
// examples/resp/session.cpp — the resp session (see session.hpp): frames until a request is
// complete, its reply queued; replies to pipelined requests are gathered into one send by
// the channel. One loop for both servers: over one store (session()), and over a keyspace
// split across a reactor_group (sharded_session(), shards.hpp), where a request may wait for
// another reactor; the one-store loop is compiled without that.
#include "examples/resp/session.hpp"

#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include <fmt/core.h>

#include "core/error.hpp"
#include "examples/common/linger.hpp"
#include "examples/resp/commands.hpp"
#include "examples/resp/request.hpp"
#include "examples/resp/shards.hpp"

namespace resp {

using namespace ringchat;

namespace {

/// Replies longer than this are handed to the channel as they are (moved, not copied).
constexpr std::size_t move_threshold = 4096;
/// After a protocol error: how long, and how many bytes, to read and discard at most.
constexpr auto linger_time = std::chrono::seconds(2);
constexpr std::size_t linger_bytes = 1 << 20;

/// Redis' log line for a client closed at the query-buffer limit, with what is known of it.
void log_query_limit(chat::channel& ch, const request_parser& parser,
                     const std::vector<std::string>& args) {
    const auto peer = ch.socket() != nullptr ? ch.socket()->peer_address()
                                             : result<address>(std::make_error_code(std::errc::not_connected));
    const std::string_view name =
        args.empty() ? std::string_view() : std::string_view(args.front()).substr(0, 64);
    fmt::print(stderr,
               "resp: Closing client that reached max query buffer length: addr={} qbuf={} "
               "limit={} args={} (first argument: {:?})\n",
               peer ? peer->to_string() : std::string("?"), parser.held(), parser.limit(),
               args.size(), name);
}

}  // namespace

chat::channel_options channel_options() {
    chat::channel_options o;
    o.low_water = 0;  // drain() waits until all output is sent (see high_water)
    return o;
}

namespace {

/// The session over `keys`: a store (every request runs here, at once), or a keyspace (each
/// runs where keyspace::route() says, awaited before the next is read).
template <class Keys>
task<> serve_requests(chat::channel& ch, Keys& keys, std::size_t query_limit) {
    constexpr bool sharded = std::is_same_v<Keys, keyspace>;
    unsigned here = 0;
    if constexpr (sharded) {
        here = keys.group().here();  // a session never moves
    }
    request_parser parser(ch.options().max_frame, query_limit);
    std::string out;
    for (;;) {
        ch.set_terminator(parser.terminator());
        auto frame = co_await ch.read();  // no task per request: see request.hpp
        if (!frame && frame.error() != make_error_code(errc::frame_too_long)) {
            break;  // end of stream, reset, or the server stops: nothing to answer
        }
        const auto got = parser.feed(frame);
        if (got == request_parser::status::more) {
            continue;
        }
        if (got == request_parser::status::too_big) {
            // As Redis does: no reply (not even to requests before it, still queued), and
            // the connection closed at once, with what the client still sends unread.
            log_query_limit(ch, parser, parser.args());
            ch.close();
            break;
        }
        if (got == request_parser::status::protocol_error) {
            reply::error(out, "ERR " + parser.error());
            ch.push(std::move(out));
            co_await examples::lingering_close(ch, linger_time, linger_bytes);
            break;  // serve() closes
        }
        bool go_on = true;
        if constexpr (sharded) {
            auto& args = parser.args();
            const unsigned to = keys.route(args, here);
            if (to == here) {
                go_on = execute(keys.at(here), args, out);
            } else if (to != keyspace::everywhere) {
                // TRICKY: named first, capturing by reference only (GCC 12, see
                // docs/gcc12-coroutines.md); on() runs it on `to` and costs no allocation.
                auto there = [&keys, &args, &out, to] { return execute(keys.at(to), args, out); };
                const bool more = co_await keys.group().on(to, std::move(there));
                go_on = more;
            } else {
                co_await keys.fan_out(args, out, here);  // no QUIT among these
            }
        } else {
            go_on = execute(keys, parser.args(), out);
        }
        if (out.size() > move_threshold) {
            ch.push(std::move(out));
            out = std::string();
        } else {
            ch.push(std::string_view(out));  // small: appended to the queued chunk
            out.clear();
        }
        if (!go_on) {
            break;  // QUIT
        }
        if (ch.queued_bytes() >= high_water) {
            co_await ch.drain();  // a client that pipelines and never reads cannot grow memory
        }
    }
}

}  // namespace

task<> session(chat::channel& ch, store& db, std::size_t query_limit) {
    return serve_requests(ch, db, query_limit);
}

task<> sharded_session(chat::channel& ch, keyspace& ks, std::size_t query_limit) {
    return serve_requests(ch, ks, query_limit);
}

}  // namespace resp
