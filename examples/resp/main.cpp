// SPDX-License-Identifier: MIT
// examples/resp — an in-memory key-value server speaking RESP2, enough of Redis for
// redis-cli and redis-benchmark: strings, lists, expiry, pipelining, binary-safe values.
//
// Per connection: read frames until a request is complete (examples/resp/request.hpp), run it
// (commands.hpp), queue the reply; replies to pipelined requests are gathered into one send by the channel. A
// malformed request gets "-ERR Protocol error: ..." and the connection is closed. A request
// whose arguments pass --client-query-buffer-limit (1 GB) while they arrive gets no reply: one
// line on stderr, and the connection is closed at once, as Redis closes such a client.
//
//     build/examples/resp &            # port 6379
//     redis-cli SET greeting hello && redis-cli GET greeting
#include <sys/socket.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/core.h>

#include "chat/channel.hpp"
#include "chat/serve.hpp"
#include "chat/terminator.hpp"
#include "core/error.hpp"
#include "core/reactor.hpp"
#include "examples/common/linger.hpp"
#include "examples/common/options.hpp"
#include "examples/resp/commands.hpp"
#include "examples/resp/request.hpp"
#include "examples/resp/store.hpp"

using namespace ringchat;

namespace {

constexpr std::uint16_t default_port = 6379;
/// Replies longer than this are handed to the channel as they are (moved, not copied).
constexpr std::size_t move_threshold = 4096;
/// With this much output queued, a session waits until all of it is sent before it reads on.
constexpr std::size_t high_water = 256 * 1024;
/// After a protocol error: how long, and how many bytes, to read and discard at most.
constexpr auto linger_time = std::chrono::seconds(2);
constexpr std::size_t linger_bytes = 1 << 20;

/// A size as Redis reads one in its configuration (memtoll): a whole number of bytes, or with
/// a unit, case-insensitive: k = 1000, kb = 1024, m = 1000², mb = 1024², g = 1000³, gb = 1024³.
bool parse_memory(std::string_view text, std::size_t& out) noexcept {
    static constexpr std::pair<std::string_view, std::size_t> units[] = {
        {"kb", std::size_t{1} << 10}, {"mb", std::size_t{1} << 20}, {"gb", std::size_t{1} << 30},
        {"k", 1000},                  {"m", 1000 * 1000},           {"g", 1000 * 1000 * 1000},
        {"b", 1},
    };
    std::size_t scale = 1;
    for (const auto& [unit, factor] : units) {
        if (text.size() > unit.size()) {
            const auto tail = text.substr(text.size() - unit.size());
            bool same = true;
            for (std::size_t i = 0; i < unit.size(); ++i) {
                same = same && (tail[i] | 0x20) == unit[i];
            }
            if (same) {
                scale = factor;
                text.remove_suffix(unit.size());
                break;
            }
        }
    }
    std::size_t n = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() ||
        n > std::numeric_limits<std::size_t>::max() / scale) {
        return false;
    }
    out = n * scale;
    return true;
}

/// Redis' log line for a client closed at the query-buffer limit, with what is known of it.
void log_query_limit(chat::channel& ch, const resp::request_parser& parser,
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

task<> session(chat::channel& ch, resp::store& db, std::size_t query_limit) {
    resp::request_parser parser(ch.options().max_frame, query_limit);
    std::string out;
    for (;;) {
        ch.set_terminator(parser.terminator());
        auto frame = co_await ch.read();  // no task per request: see request.hpp
        if (!frame && frame.error() != make_error_code(errc::frame_too_long)) {
            break;  // end of stream, reset, or the server stops: nothing to answer
        }
        const auto got = parser.feed(frame);
        if (got == resp::request_parser::status::more) {
            continue;
        }
        if (got == resp::request_parser::status::too_big) {
            // As Redis does: no reply (not even to requests before it, still queued), and
            // the connection closed at once, with what the client still sends unread.
            log_query_limit(ch, parser, parser.args());
            ch.close();
            break;
        }
        if (got == resp::request_parser::status::protocol_error) {
            resp::reply::error(out, "ERR " + parser.error());
            ch.push(std::move(out));
            co_await examples::lingering_close(ch, linger_time, linger_bytes);
            break;  // serve() closes
        }
        const bool go_on = resp::execute(db, parser.args(), out);
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

struct resp_handler {
    resp::store* db;
    std::size_t query_limit;
    task<> operator()(chat::channel& ch) const { return session(ch, *db, query_limit); }
};

/// Active expiry: every 100 ms, removes keys whose time has passed (lazily, find() does too).
task<> sweep(reactor& r, resp::store& db) {
    for (;;) {
        // TRICKY: awaited into a variable; GCC 12 miscompiles `if (!co_await ...)` here.
        auto slept = co_await r.sleep_for(std::chrono::milliseconds(100));
        if (!slept) {
            break;  // ECANCELED: the server is stopping
        }
        db.expire_some(resp::clock::now(), 1000);
    }
}

task<> serve_resp(reactor& r, listener& l, resp::store& db, std::size_t query_limit,
                  chat::serve_options so) {
    r.spawn(sweep(r, db));
    co_await chat::serve(r, l, resp_handler{&db, query_limit}, so);
}

}  // namespace

int main(int argc, char** argv) {
    examples::command_line cli("resp", "An in-memory key-value server speaking RESP2 (Redis).\n"
                               "Timeouts: a request line must be complete 60 s after its first byte, and a "
                               "reply the client does not take for 60 s ends the connection.",
                               default_port);
    std::string query_limit_text = "1gb";
    cli.text("client-query-buffer-limit", "BYTES",
             "most bytes of arguments a request in progress may hold; past it the client is "
             "closed, as Redis does (default 1gb, least 1mb; units as Redis reads them: "
             "k = 1000, kb = 1024, m, mb, g, gb)",
             query_limit_text);
    const auto opts = cli.parse(argc, argv);
    std::size_t query_limit = 0;
    if (!parse_memory(query_limit_text, query_limit)) {
        cli.usage_error(
            fmt::format("--client-query-buffer-limit: not a size: '{}'", query_limit_text));
    }
    if (query_limit < resp::min_query_limit) {
        cli.usage_error("--client-query-buffer-limit: must be at least 1mb (1048576)");
    }
    resp::store db;  // outlives every session
    chat::serve_options so;
    so.channel.low_water = 0;  // drain() waits until all output is sent (see high_water)
    return examples::run_server("resp", opts, [&db, query_limit, so](reactor& r, listener& l) {
        return serve_resp(r, l, db, query_limit, so);
    });
}
