// SPDX-License-Identifier: MIT
// examples/chatroom — the classic asynchat chat server: one room, a line protocol.
//
// Each line a client sends goes to everyone else as "<nick> text". Commands: /nick NAME,
// /who, /help, /quit; anything else starting with "/" gets "* unknown command". Newcomers are
// named guestN until they pick a nick; joins, leaves and nick changes are announced to the room.
//
// The room goes at the pace of its slowest reader: a member who said something waits, before
// its next line is read, while another member still has more than a quarter of --max-queue
// waiting for it, for at most --pace-limit in a row (then that member is not waited for
// until it has caught up). So members who read are not dropped however fast the others send,
// and TCP slows the senders. A reader that is stuck must not stall the room, nor grow the
// server's memory: every member's output queue is bounded (--max-queue). A member whose queue
// passes the limit is dropped: the room is told, its queued output is discarded, a farewell is
// queued for it, and its connection closes once that is sent (or when the send times out,
// --write-timeout).
//
//     build/examples/chatroom --port 7070 &
//     nc 127.0.0.1 7070
//
// With --threads N it is one room over N reactors: connections are handed to them in turn
// (placement::round_robin), each reactor's room holds its own members, and every line or
// notice goes through reactor 0, which passes it to every reactor's room in one order: each
// member sees the same sequence, a sender's lines in the order sent. Nicks are one registry
// for all (a mutex: a nick change or /who is rare next to the lines). The session and the room
// are examples/chatroom/session.cpp.
#include <chrono>
#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

#include "chat/serve.hpp"
#include "core/reactor.hpp"
#include "core/reactor_group.hpp"
#include "examples/chatroom/session.hpp"
#include "examples/common/group_server.hpp"
#include "examples/common/options.hpp"

using namespace ringchat;

namespace {

constexpr std::uint16_t default_port = 7070;

task<> serve_room(reactor& r, listener& l, chatroom::room& rm, chat::serve_options so) {
    return chat::serve(r, l, chatroom::room_handler{&rm}, std::move(so));
}

}  // namespace

int main(int argc, char** argv) {
    examples::command_line cli("chatroom", "The classic asynchat chat room (a line protocol).\n"
                               "Timeouts: a line must be complete 60 s after its first byte; see "
                               "--write-timeout for a member who does not read.",
                               default_port);
    std::size_t max_queue = 1 << 20;
    std::size_t write_timeout_s = 10;
    cli.number("max-queue", "BYTES",
               "output a member may have waiting before it is dropped (default 1m)", max_queue);
    std::size_t pace_limit_ms = chatroom::room::default_pace_limit.count();
    cli.number("pace-limit", "MS",
               "how long a sender waits in a row for a member who lags (default 1000; 0 = "
               "never: members who lag are dropped at --max-queue)",
               pace_limit_ms);
    cli.number("write-timeout", "SECONDS",
               "a send blocked that long closes the connection (default 10; 0 = none)",
               write_timeout_s);
    cli.tls();
    cli.threads();
    const auto opts = cli.parse(argc, argv);

    const std::chrono::milliseconds pace_limit(pace_limit_ms);
    chatroom::registry names;  // outlives every session, as the rooms do
    chat::serve_options so;
    so.channel = chatroom::channel_options(std::chrono::seconds(write_timeout_s));
    so.make_transport = examples::transport_or_exit(opts);
    if (opts.threads != 1) {
        std::vector<std::unique_ptr<chatroom::room>> rooms;
        chat::group_serve_options o;
        o.serve = so;
        o.place = chat::placement::round_robin;  // members on every reactor, evenly
        return examples::run_group_server(
            "chatroom", opts,
            [&](reactor_group& g) {
                for (unsigned k = 0; k < g.size(); ++k) {
                    rooms.push_back(std::make_unique<chatroom::room>(max_queue, names, pace_limit));
                }
                for (auto& r : rooms) {
                    r->spread(g, rooms);
                }
                return chatroom::group_room_handler{&g, &rooms};
            },
            o);
    }
    // Outlives every session: serve() returns before they unwind.
    chatroom::room rm(max_queue, names, pace_limit);
    return examples::run_server("chatroom", opts, [&rm, so](reactor& r, listener& l) {
        return serve_room(r, l, rm, so);
    });
}
