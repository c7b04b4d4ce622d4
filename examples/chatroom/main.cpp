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
//
// With --threads N it is one room over N reactors: connections are handed to them in turn
// (placement::round_robin), each reactor's room holds its own members, and every line or
// notice goes through reactor 0, which passes it to every reactor's room in one order: each
// member sees the same sequence, a sender's lines in the order sent. Nicks are one registry
// for all (a mutex: a nick change or /who is rare next to the lines).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/core.h>

#include "chat/channel.hpp"
#include "chat/serve.hpp"
#include "core/error.hpp"
#include "core/reactor.hpp"
#include "core/reactor_group.hpp"
#include "examples/common/group_server.hpp"
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
    unsigned id = 0;       // unique in the process: who a line is not sent back to
    bool dropped = false;  // taken out of the room for being too slow
};

/// The names in the room, in the order they joined: one for every reactor.
class registry {
public:
    unsigned next_id() { return ++ids_; }  // atomic
    std::string guest_name() { return fmt::format("guest{}", ++guests_); }
    void add(unsigned id, const std::string& nick) {
        std::lock_guard lock(mutex_);
        names_.push_back({id, nick});
    }
    void remove(unsigned id) {
        std::lock_guard lock(mutex_);
        std::erase_if(names_, [&](const name& n) { return n.id == id; });
    }
    /// Renames `id` unless another member has `nick`; false if one has.
    bool rename(unsigned id, std::string_view nick) {
        std::lock_guard lock(mutex_);
        for (const name& n : names_) {
            if (n.nick == nick && n.id != id) {
                return false;
            }
        }
        for (name& n : names_) {
            if (n.id == id) {
                n.nick = std::string(nick);
            }
        }
        return true;
    }
    std::string who() {
        std::lock_guard lock(mutex_);
        std::string out = fmt::format("* {} here:", names_.size());
        for (const name& n : names_) {
            out += ' ';
            out += n.nick;
        }
        out += '\n';
        return out;
    }

private:
    struct name {
        unsigned id;
        std::string nick;
    };
    std::atomic<unsigned> ids_{0};
    std::atomic<unsigned> guests_{0};
    std::mutex mutex_;
    std::vector<name> names_;
};

class room {
public:
    room(std::size_t max_queue, registry& names) : max_queue_(max_queue), names_(names) {}
    room(const room&) = delete;
    room& operator=(const room&) = delete;

    /// On a group: every reactor's room (index k on reactor k); what one announces goes
    /// through reactor 0 to all of them.
    void spread(reactor_group& g, std::vector<std::unique_ptr<room>>& rooms) {
        group_ = &g;
        rooms_ = &rooms;
    }

    registry& names() { return names_; }

    void join(member& m) {
        names_.add(m.id, m.nick);
        announce(fmt::format("* {} joined\n", m.nick), m.id);
        members_.push_back(&m);
    }
    void leave(member& m, std::string_view how) {
        if (std::erase(members_, &m) != 0) {
            names_.remove(m.id);
            announce(fmt::format("* {} {}\n", m.nick, how), 0);
        }
    }

    /// Queues `line` for every member of the room but member `from` (0: none): here alone,
    /// or, on a group, on every reactor, in the order reactor 0 passes them on.
    void announce(std::string line, unsigned from) {
        if (group_ == nullptr) {
            deliver(line, from);
            return;
        }
        reactor_group& g = *group_;
        auto& rooms = *rooms_;
        g.post(0, [&g, &rooms, line = std::move(line), from] {
            for (unsigned k = 0; k < g.size(); ++k) {
                g.post(k, [r = rooms[k].get(), line, from] { r->deliver(line, from); });
            }
        });
    }

private:
    /// Queues `line` for this room's members but `from`; drops those whose queue is then too long.
    void deliver(const std::string& line, unsigned from) {
        std::vector<member*> slow;
        for (member* m : members_) {
            if (m->id == from) {
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

    void drop(member& m) {
        m.dropped = true;
        std::erase(members_, &m);
        names_.remove(m.id);
        // Its queue is what made it slow: throw it away, say why, and close once that is
        // sent (write_timeout closes it if the peer never reads again).
        m.ch->discard_buffers();
        m.ch->push(fmt::format("\n* you were dropped: you read too slowly (more than {} bytes "
                               "were waiting for you)\n",
                               max_queue_));
        m.ch->close_when_done();
        announce(fmt::format("* {} was dropped (reading too slowly)\n", m.nick), 0);
    }

    std::list<member*> members_;
    std::size_t max_queue_;
    registry& names_;
    reactor_group* group_ = nullptr;
    std::vector<std::unique_ptr<room>>* rooms_ = nullptr;
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
        } else if (!rm.names().rename(me.id, arg)) {
            ch.push(fmt::format("* the nick {} is taken\n", arg));
        } else {
            std::string old = std::exchange(me.nick, std::string(arg));
            ch.push(fmt::format("* you are now {}\n", me.nick));
            rm.announce(fmt::format("* {} is now {}\n", old, me.nick), me.id);
        }
    } else if (name == "/who") {
        ch.push(rm.names().who());
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
    member me{&ch, rm.names().guest_name(), rm.names().next_id()};
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
            rm.announce(fmt::format("<{}> {}\n", me.nick, line), me.id);
        }
    }
}

struct room_handler {
    room* rm;
    task<> operator()(chat::channel& ch) const { return session(ch, *rm); }
};

/// On a group: the room of the reactor the connection was placed on.
struct group_room_handler {
    reactor_group* g;
    std::vector<std::unique_ptr<room>>* rooms;
    task<> operator()(chat::channel& ch) const { return session(ch, *(*rooms)[g->here()]); }
};

task<> serve_room(reactor& r, listener& l, room& rm, chat::serve_options so) {
    return chat::serve(r, l, room_handler{&rm}, std::move(so));
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
    cli.threads();
    const auto opts = cli.parse(argc, argv);

    registry names;  // outlives every session, as the rooms do
    chat::serve_options so;
    so.channel.max_frame = max_line;
    so.channel.write_timeout = std::chrono::seconds(write_timeout_s);
    // Fan-out: every line read goes to everyone else, so a member's output grows with the
    // others' input. A writer sends at most 64 KiB per reactor turn on io_uring (one gathered
    // send, which completes at the next poll), so a member's input is framed one received
    // chunk per turn: with the default 64 KiB, four members at full speed filled each other's
    // queues by 128 KiB a turn and were dropped as slow though they read at once.
    so.channel.input_per_turn = 4 * 1024;
    if (opts.threads != 1) {
        std::vector<std::unique_ptr<room>> rooms;
        chat::group_serve_options o;
        o.serve = so;
        o.place = chat::placement::round_robin;  // members on every reactor, evenly
        return examples::run_group_server(
            "chatroom", opts,
            [&](reactor_group& g) {
                for (unsigned k = 0; k < g.size(); ++k) {
                    rooms.push_back(std::make_unique<room>(max_queue, names));
                }
                for (auto& r : rooms) {
                    r->spread(g, rooms);
                }
                return group_room_handler{&g, &rooms};
            },
            o);
    }
    room rm(max_queue, names);  // outlives every session: serve() returns before they unwind
    return examples::run_server("chatroom", opts, [&rm, so](reactor& r, listener& l) {
        return serve_room(r, l, rm, so);
    });
}
