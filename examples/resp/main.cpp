// SPDX-License-Identifier: MIT
// examples/resp — an in-memory key-value server speaking RESP2, enough of Redis for
// redis-cli and redis-benchmark: strings, lists, expiry, pipelining, binary-safe values.
//
// Per connection (examples/resp/session.cpp): read frames until a request is complete
// (request.hpp), run it (commands.hpp), queue the reply; replies to pipelined requests are
// gathered into one send by the channel. A malformed request gets "-ERR Protocol error: ..."
// and the connection is closed. A request whose arguments pass --client-query-buffer-limit
// (1 GB) while they arrive gets no reply: one line on stderr, and the connection is closed at
// once, as Redis closes such a client.
//
//     build/examples/resp &            # port 6379
//     redis-cli SET greeting hello && redis-cli GET greeting
//
// With --threads N (N != 1) the keyspace is split over N reactors, a shard each, by a hash of
// the key (examples/resp/shards.hpp): a request runs on its key's owner, a request of several
// keys on each of their owners, its replies merged. Connections are handed to the reactors in
// turn (placement::round_robin); each reactor sweeps its own shard. When it stops, one line on
// stderr says how many connections each reactor served. --threads 1 (the default) is the
// one-store server, without a group.
#include <charconv>
#include <chrono>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/core.h>

#include "chat/serve.hpp"
#include "core/reactor.hpp"
#include "core/reactor_group.hpp"
#include "examples/common/group_server.hpp"
#include "examples/common/options.hpp"
#include "examples/resp/request.hpp"
#include "examples/resp/session.hpp"
#include "examples/resp/shards.hpp"
#include "examples/resp/store.hpp"

using namespace ringchat;

namespace {

constexpr std::uint16_t default_port = 6379;

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
    co_await chat::serve(r, l, resp::handler{&db, query_limit}, so);
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
    cli.tls();
    cli.threads();
    const auto opts = cli.parse(argc, argv);
    std::size_t query_limit = 0;
    if (!parse_memory(query_limit_text, query_limit)) {
        cli.usage_error(
            fmt::format("--client-query-buffer-limit: not a size: '{}'", query_limit_text));
    }
    if (query_limit < resp::min_query_limit) {
        cli.usage_error("--client-query-buffer-limit: must be at least 1mb (1048576)");
    }
    chat::serve_options so;
    so.channel = resp::channel_options();
    so.make_transport = examples::transport_or_exit(opts);
    if (opts.threads != 1) {
        std::unique_ptr<resp::keyspace> ks;  // outlives the group, and so every session
        chat::group_serve_options o;
        o.serve = so;
        o.place = chat::placement::round_robin;  // connections on every reactor, evenly
        return examples::run_group_server(
            "resp", opts,
            [&](reactor_group& g) {
                ks = std::make_unique<resp::keyspace>(g);
                return resp::sharded_handler{ks.get(), query_limit};
            },
            o, [&](reactor& r, unsigned k) { r.spawn(sweep(r, ks->at(k))); });
    }
    resp::store db;  // outlives every session
    return examples::run_server("resp", opts, [&db, query_limit, so](reactor& r, listener& l) {
        return serve_resp(r, l, db, query_limit, so);
    });
}
