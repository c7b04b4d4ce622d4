// SPDX-License-Identifier: MIT
// examples/resp/session.cpp — the resp session (see session.hpp): frames until a request is
// complete, its reply queued; replies to pipelined requests are gathered into one send by
// the channel. One loop for both servers: over one store (session()), and over a keyspace
// split across a reactor_group (sharded_session(), shards.hpp), where a request may wait for
// another reactor; the one-store loop is compiled without that.
#include "examples/resp/session.hpp"

#include <chrono>
#include <coroutine>
#include <cstdio>
#include <deque>
#include <exception>
#include <iterator>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
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
                     std::span<const std::string> args) {
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

/// Queues `out` on `ch` (a long reply moved, a short one appended to the queued chunk) and
/// leaves it empty.
void push_reply(chat::channel& ch, std::string& out) {
    if (out.size() > move_threshold) {
        ch.push(std::move(out));
        out = std::string();
    } else {
        ch.push(std::string_view(out));
        out.clear();
    }
}

/// The requests of one sharded connection that run on other shards while it reads on: each
/// takes a slot in request order, and a reply goes out once it and every one before it are
/// done, so replies keep the requests' order. A request of this shard that comes while some
/// are away runs at once and waits in its slot for its turn to go out. Used on the
/// connection's reactor only. What this buys: the requests for shard k that a turn reads
/// (a pipeline's) leave together, as one message there and one back, instead of a round
/// trip each, awaited before the next is read.
class replies_in_order {
public:
    /// Slots per connection at most, and bytes held in them (the arguments of the requests
    /// away, the replies waiting for their turn): past either, or past high_water queued on
    /// the channel, the session waits until all are answered before it reads on. So a
    /// connection holds at most max_held_bytes plus the replies of max_slots requests
    /// (made on their shards while the session could not look) beyond what the one-store
    /// session holds.
    static constexpr std::size_t max_slots = 16;
    static constexpr std::size_t max_held_bytes = 1 << 20;

    replies_in_order(chat::channel& ch, unsigned shards) : ch_(&ch), unsent_(shards) {}
    replies_in_order(const replies_in_order&) = delete;
    replies_in_order& operator=(const replies_in_order&) = delete;

    bool empty() const noexcept { return slots_.empty(); }
    /// Whether another request may go away now.
    bool room() const noexcept {
        return slots_.size() < max_slots && held_bytes_ < max_held_bytes &&
               ch_->queued_bytes() < high_water;
    }
    /// What a request away threw (the channel was closed then), or null.
    std::exception_ptr failure() const noexcept { return failure_; }

    /// A reply made here (`out`, left empty), to go out after those before it.
    /// \pre !empty() (else it would go out at once) and room()
    void add_done(std::string& out) {
        slot& s = slots_.emplace_back();
        s.reply = std::move(out);
        out = std::string();
        s.done = true;
        held_bytes_ += s.reply.size();
    }

    /// Runs `args` (moved from) on shard k of `ks`; its reply goes out in turn. It leaves
    /// once the session waits (a task spawned now runs then), with every request for k added
    /// until then. \pre room()
    void add_away(keyspace& ks, unsigned k, arguments args) {
        slot& s = slots_.emplace_back();
        s.args.assign(std::make_move_iterator(args.begin()), std::make_move_iterator(args.end()));
        for (const auto& a : s.args) {
            s.args_bytes += a.size();
        }
        held_bytes_ += s.args_bytes;
        unsent_[k].push_back(&s);
        if (unsent_[k].size() == 1) {
            ch_->owner().spawn(send(ks, k, *this));
        }
    }

    /// Awaitable: until every request is answered (its reply pushed, or dropped by a closed
    /// channel).
    auto all_answered() noexcept {
        struct awaiter {
            replies_in_order& q;
            bool await_ready() const noexcept { return q.slots_.empty(); }
            void await_suspend(std::coroutine_handle<> h) noexcept { q.waiter_ = h; }
            void await_resume() const noexcept {}
        };
        return awaiter{*this};
    }

private:
    struct slot {
        std::vector<std::string> args;
        std::string reply;
        std::size_t args_bytes = 0;
        bool done = false;
    };

    /// Runs the requests for shard k not sent yet there, in order, in one call.
    // TRICKY: the slots and `q` live in the session's frame, which awaits all_answered()
    // before it ends, whatever ends it.
    static task<> send(keyspace& ks, unsigned k, replies_in_order& q) {
        std::vector<slot*> batch;
        batch.swap(q.unsent_[k]);  // what comes from now on leaves with the next send
        try {
            // Named first, capturing by reference only (GCC 12, see docs/gcc12-coroutines.md);
            // on() runs it on k and costs no allocation.
            auto there = [&ks, &batch, k] {
                for (slot* s : batch) {
                    execute(ks.at(k), s->args, s->reply);
                }
            };
            co_await ks.group().on(k, std::move(there));
        } catch (...) {
            if (!q.failure_) {
                q.failure_ = std::current_exception();
            }
            q.ch_->close();  // the session sees its input end, and stops
        }
        for (slot* s : batch) {
            s->done = true;
            q.held_bytes_ += s->reply.size();
            q.held_bytes_ -= s->args_bytes;
        }
        q.send_ready();
    }

    /// Pushes the done replies at the front; wakes the session once all are answered.
    void send_ready() {
        while (!slots_.empty() && slots_.front().done) {
            held_bytes_ -= slots_.front().reply.size();
            push_reply(*ch_, slots_.front().reply);
            slots_.pop_front();  // a deque: the other slots stay where they are
        }
        if (waiter_ && slots_.empty()) {
            ch_->owner().schedule(std::exchange(waiter_, {}));
        }
    }

    chat::channel* ch_;
    std::deque<slot> slots_;
    std::vector<std::vector<slot*>> unsent_;  // per shard: added, not yet in a send()
    std::size_t held_bytes_ = 0;
    std::coroutine_handle<> waiter_;  // the session, in all_answered()
    std::exception_ptr failure_;
};

/// Nothing: what the one-store session has in place of replies_in_order.
struct no_replies_in_flight {
    no_replies_in_flight(chat::channel&, unsigned) noexcept {}
};

/// The session over `keys`: a store (every request runs here, at once), or a keyspace (each
/// runs where keyspace::route() says: see replies_in_order).
template <class Keys>
task<> serve_requests(chat::channel& ch, Keys& keys, std::size_t query_limit) {
    constexpr bool sharded = std::is_same_v<Keys, keyspace>;
    unsigned here = 0;
    unsigned shards = 1;
    if constexpr (sharded) {
        here = keys.group().here();  // a session never moves
        shards = keys.size();
    }
    std::conditional_t<sharded, replies_in_order, no_replies_in_flight> away(ch, shards);
    request_parser parser(ch.options().max_frame, query_limit);
    std::string out;
    for (;;) {
        if (const std::size_t n = parser.count_wanted(); n != 0) {
            ch.set_terminator(n);
        } else {
            ch.set_terminator("\n");
        }
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
            if constexpr (sharded) {
                co_await away.all_answered();  // the requests before it are answered first
            }
            reply::error(out, "ERR " + parser.error());
            ch.push(std::move(out));
            co_await examples::lingering_close(ch, linger_time, linger_bytes);
            break;  // serve() closes
        }
        bool go_on = true;
        if constexpr (sharded) {
            // What this block throws is rethrown once the requests away (which use this
            // frame) are answered.
            std::exception_ptr failed;
            try {
                const arguments args = parser.args();
                const unsigned to = keys.route(args, here);
                if (to == here) {
                    // Its keys are none of those away: it may run before they are answered.
                    if (!away.empty() && !away.room()) {
                        co_await away.all_answered();
                    }
                    go_on = execute(keys.at(here), args, out);
                    if (!away.empty()) {
                        away.add_done(out);
                    }
                } else if (to != keyspace::everywhere) {
                    if (!away.room()) {
                        co_await away.all_answered();
                        if (ch.queued_bytes() >= high_water) {
                            co_await ch.drain();
                        }
                    }
                    away.add_away(keys, to, args);
                } else {
                    co_await away.all_answered();  // it sees every shard: after all before it
                    co_await keys.fan_out(args, out, here);  // no QUIT among these
                }
            } catch (...) {
                failed = std::current_exception();
            }
            if (failed) {
                ch.close();
                co_await away.all_answered();
                std::rethrow_exception(failed);
            }
        } else {
            go_on = execute(keys, parser.args(), out);
        }
        if (!out.empty()) {
            push_reply(ch, out);
        }
        if (!go_on) {
            break;  // QUIT
        }
        if (ch.queued_bytes() >= high_water) {
            co_await ch.drain();  // a client that pipelines and never reads cannot grow memory
        }
    }
    if constexpr (sharded) {
        co_await away.all_answered();  // the requests away use this frame: answered (QUIT's
                                       // +OK after them), or dropped by a closed channel
        if (away.failure()) {
            std::rethrow_exception(away.failure());
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
