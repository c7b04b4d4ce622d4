// SPDX-License-Identifier: MIT
// examples/chatroom/session.cpp — the chatroom session and its room (see session.hpp): each
// line a member sends goes to everyone else as "<nick> text"; /nick, /who, /help and /quit
// are answered to the member alone; joins, leaves and nick changes are announced.
#include "examples/chatroom/session.hpp"

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "core/error.hpp"

namespace chatroom {

using namespace ringchat;

const char* const help_text =
    "* commands: /nick NAME (letters, digits, _ and -; at most 32), /who, /help, /quit;\n"
    "* any other line is sent to everyone else in the room\n";

void room::join(member& m) {
    names_.add(m.id, m.nick);
    announce(fmt::format("* {} joined\n", m.nick), m.id);
    members_.push_back(&m);
}

void room::leave(member& m, std::string_view how) {
    if (std::erase(members_, &m) != 0) {
        names_.remove(m.id);
        announce(fmt::format("* {} {}\n", m.nick, how), 0);
    }
}

void room::announce(std::string line, unsigned from) {
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

void room::deliver(const std::string& line, unsigned from) {
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

task<> room::pace(const member& me) {
    for (;;) {
        member* lagging = nullptr;
        const auto now = clock::now();
        for (member* m : members_) {
            if (m == &me) {
                continue;
            }
            if (m->ch->queued_bytes() <= pace_mark_) {
                m->lagging_since = {};
                continue;
            }
            if (m->lagging_since == clock::time_point{}) {
                m->lagging_since = now;
            }
            if (now - m->lagging_since < pace_limit_) {
                lagging = m;
                break;
            }
        }
        if (lagging == nullptr) {
            co_return;
        }
        // Looked at again every millisecond (the room's list: the member may have gone).
        // Waiting on its channel's output_drained() instead would need a race with a timer
        // for the pace limit; a millisecond is well below what a reader notices.
        auto slept = co_await me.ch->owner().sleep_for(std::chrono::milliseconds(1));
        if (!slept) {
            co_return;  // the server stops
        }
    }
}

void room::drop(member& m) {
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

chat::channel_options channel_options(std::chrono::nanoseconds write_timeout) {
    chat::channel_options o;
    o.max_frame = max_line;
    o.write_timeout = write_timeout;
    // Fan-out: every line read goes to everyone else, so a member's output grows with the
    // others' input. A writer sends at most 64 KiB per reactor turn on io_uring (one gathered
    // send, which completes at the next poll), so a member's input is framed one received
    // chunk per turn: with the default 64 KiB, four members at full speed filled each other's
    // queues by 128 KiB a turn and were dropped as slow though they read at once.
    o.input_per_turn = 4 * 1024;
    return o;
}

namespace {

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

}  // namespace

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
            co_await rm.pace(me);
        }
    }
}

}  // namespace chatroom
