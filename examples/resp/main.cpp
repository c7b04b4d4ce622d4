// examples/resp — an in-memory key-value server speaking RESP2, enough of Redis for
// redis-cli and redis-benchmark: strings, lists, expiry, pipelining, binary-safe values.
//
// Per connection: read frames until a request is complete (examples/resp/request.hpp), run it
// (commands.hpp), queue the reply; replies to pipelined requests are gathered into one send by the channel. A
// malformed request gets "-ERR Protocol error: ..." and the connection is closed.
//
//     build/examples/resp &            # port 6379
//     redis-cli SET greeting hello && redis-cli GET greeting
#include <sys/socket.h>

#include <chrono>
#include <limits>
#include <memory>
#include <string>
#include <vector>

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

task<> session(chat::channel& ch, resp::store& db) {
    resp::request_parser parser(ch.options().max_frame);
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
    task<> operator()(chat::channel& ch) const { return session(ch, *db); }
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

task<> serve_resp(reactor& r, listener& l, resp::store& db, chat::serve_options so) {
    r.spawn(sweep(r, db));
    co_await chat::serve(r, l, resp_handler{&db}, so);
}

}  // namespace

int main(int argc, char** argv) {
    examples::command_line cli("resp", "An in-memory key-value server speaking RESP2 (Redis).",
                               default_port);
    const auto opts = cli.parse(argc, argv);
    resp::store db;  // outlives every session
    chat::serve_options so;
    so.channel.low_water = 0;  // drain() waits until all output is sent (see high_water)
    return examples::run_server("resp", opts, [&db, so](reactor& r, listener& l) {
        return serve_resp(r, l, db, so);
    });
}
