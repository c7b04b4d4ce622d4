// SPDX-License-Identifier: MIT
// examples/chatroom — the classic asynchat chat server: one room, a line protocol.
//
// Each line a client sends goes to everyone else as "<nick> text". Commands: /nick NAME,
// /who, /help, /quit; anything else starting with "/" gets "* unknown command". Newcomers are
// named guestN until they pick a nick; joins, leaves and nick changes are announced to the room.
//
// A slow reader must not stall the room, nor grow the server's memory: every member's output
// queue is bounded (--max-queue). A member whose queue passes the limit is dropped: the room is
// told, its queued output is discarded, a farewell is queued for it, and its connection closes
// once that is sent (or when the send times out, --write-timeout).
//
//     build/examples/chatroom --port 7070 &
//     nc 127.0.0.1 7070
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <list>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/core.h>

#include "chat/channel.hpp"
#include "chat/serve.hpp"
#include "core/error.hpp"
#include "core/reactor.hpp"
#include "examples/common/options.hpp"

using namespace ringchat;

namespace {

constexpr std::uint16_t default_port = 7070;
constexpr std::size_t max_line = 4096;
constexpr std::size_t max_nick = 32;

const char* const help_text =
    "* commands: /nick NAME (letters, digits, _ and -; at most 32), /who, /help, /quit;\n"
    "* any other line is sent to everyone else in the room\n";

struct member {
    chat::channel* ch;
    std::string nick;
    bool dropped = false;  // taken out of the room for being too slow
};

class room {
public:
    explicit room(std::size_t max_queue) : max_queue_(max_queue) {}

    std::string guest_name() { return fmt::format("guest{}", ++guests_); }

    void join(member& m) {
        broadcast(fmt::format("* {} joined\n", m.nick), &m);
        members_.push_back(&m);
    }
    void leave(member& m, std::string_view how) {
        if (std::erase(members_, &m) != 0) {
            broadcast(fmt::format("* {} {}\n", m.nick, how), nullptr);
        }
    }
    bool taken(std::string_view nick) const {
        return std::any_of(members_.begin(), members_.end(),
                           [&](const member* m) { return m->nick == nick; });
    }
    std::string who() const {
        std::string out = fmt::format("* {} here:", members_.size());
        for (const member* m : members_) {
            out += ' ';
            out += m->nick;
        }
        out += '\n';
        return out;
    }

    /// Queues `line` for every member but `from`; drops those whose queue is then too long.
    void broadcast(const std::string& line, const member* from) {
        std::vector<member*> slow;
        for (member* m : members_) {
            if (m == from) {
                continue;
            }
            m->ch->push(line);
            if (m->ch->queued_bytes() > max_queue_) {
                slow.push_back(m);
            }
        }
        for (member* m : slow) {
            if (!m->dropped) {  // a drop's own notice may have dropped it already
                drop(*m);
            }
        }
    }

private:
    void drop(member& m) {
        m.dropped = true;
        std::erase(members_, &m);
        // Its queue is what made it slow: throw it away, say why, and close once that is
        // sent (write_timeout closes it if the peer never reads again).
        m.ch->discard_buffers();
        m.ch->push(fmt::format("\n* you were dropped: you read too slowly (more than {} bytes "
                               "were waiting for you)\n",
                               max_queue_));
        m.ch->close_when_done();
        broadcast(fmt::format("* {} was dropped (reading too slowly)\n", m.nick), nullptr);
    }

    std::list<member*> members_;
    std::size_t max_queue_;
    unsigned guests_ = 0;
};

bool valid_nick(std::string_view nick) {
    return !nick.empty() && nick.size() <= max_nick &&
           std::all_of(nick.begin(), nick.end(), [](char c) {
               return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '_' || c == '-';
           });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    return s;
}

/// A command line ("/..."); returns false for /quit.
bool command(room& rm, member& me, std::string_view line) {
    const auto space = line.find(' ');
    const std::string_view name = line.substr(0, space);
    const std::string_view arg =
        space == std::string_view::npos ? std::string_view() : trim(line.substr(space + 1));
    chat::channel& ch = *me.ch;
    if (name == "/quit") {
        ch.push("* bye\n");
        return false;
    }
    if (name == "/nick") {
        if (!valid_nick(arg)) {
            ch.push("* usage: /nick NAME (letters, digits, _ and -; at most 32)\n");
        } else if (arg == me.nick) {
            ch.push(fmt::format("* you are {} already\n", me.nick));
        } else if (rm.taken(arg)) {
            ch.push(fmt::format("* the nick {} is taken\n", arg));
        } else {
            std::string old = std::exchange(me.nick, std::string(arg));
            ch.push(fmt::format("* you are now {}\n", me.nick));
            rm.broadcast(fmt::format("* {} is now {}\n", old, me.nick), &me);
        }
    } else if (name == "/who") {
        ch.push(rm.who());
    } else if (name == "/help") {
        ch.push(help_text);
    } else {
        ch.push(fmt::format("* unknown command {}; try /help\n", name));
    }
    return true;
}

/// Membership for the length of a session: the room never points at a member that is gone,
/// however the session ends.
struct membership {
    room& rm;
    member& me;
    const char* how = "left";
    membership(room& r, member& m) : rm(r), me(m) { rm.join(me); }
    membership(const membership&) = delete;
    membership& operator=(const membership&) = delete;
    ~membership() { rm.leave(me, how); }  // nothing if it was dropped (announced then)
};

task<> session(chat::channel& ch, room& rm) {
    member me{&ch, rm.guest_name()};
    ch.push(fmt::format("* welcome to the room, {}; /help lists the commands\n", me.nick));
    membership in(rm, me);
    for (;;) {
        auto frame = co_await ch.read();
        if (me.dropped) {
            break;  // closing: whatever it says now goes nowhere
        }
        if (!frame) {
            if (frame.error() == make_error_code(errc::frame_too_long)) {
                ch.push(fmt::format("* line too long (at most {} bytes); ignored\n", max_line));
                continue;
            }
            if (frame.error()) {
                in.how = "left (connection lost)";
            }
            break;
        }
        const std::string_view line = trim(frame.text());
        if (line.empty()) {
            continue;
        }
        if (line.front() == '/') {
            if (!command(rm, me, line)) {
                break;
            }
        } else {
            rm.broadcast(fmt::format("<{}> {}\n", me.nick, line), &me);
        }
    }
}

struct room_handler {
    room* rm;
    task<> operator()(chat::channel& ch) const { return session(ch, *rm); }
};

task<> serve_room(reactor& r, listener& l, room& rm, chat::serve_options so) {
    co_await chat::serve(r, l, room_handler{&rm}, so);
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
    cli.number("write-timeout", "SECONDS",
               "a send blocked that long closes the connection (default 10; 0 = none)",
               write_timeout_s);
    const auto opts = cli.parse(argc, argv);

    room rm(max_queue);  // outlives every session: serve() returns before they have unwound
    chat::serve_options so;
    so.channel.max_frame = max_line;
    so.channel.write_timeout = std::chrono::seconds(write_timeout_s);
    // Fan-out: every line read goes to everyone else, so a member's output grows with the
    // others' input. A writer sends at most 64 KiB per reactor turn on io_uring (one gathered
    // send, which completes at the next poll), so a member's input is framed one received
    // chunk per turn: with the default 64 KiB, four members at full speed filled each other's
    // queues by 128 KiB a turn and were dropped as slow though they read at once.
    so.channel.input_per_turn = 4 * 1024;
    return examples::run_server("chatroom", opts, [&rm, so](reactor& r, listener& l) {
        return serve_room(r, l, rm, so);
    });
}
