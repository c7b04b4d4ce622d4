// SPDX-License-Identifier: MIT
// examples/chatroom/session.hpp — the chatroom example's session and its room: one member's
// connection (its lines to the others, its commands), the room that passes lines on and drops
// a member who reads too slowly, and the nicks every reactor's room shares. Apart from the
// program (main.cpp: the command line, the listener, serve() on a reactor or a group), so that
// tests run it over any transport (tests/examples/test_sessions.cpp: scripted peers).
//
//     chatroom::registry names;
//     chatroom::room rm(max_queue, names);           // both outlive every session
//     chat::serve_options so;
//     so.channel = chatroom::channel_options(std::chrono::seconds(10));
//     chat::serve(r, l, chatroom::room_handler{&rm}, so);
#pragma once

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
#include "core/reactor_group.hpp"
#include "core/task.hpp"

namespace chatroom {

constexpr std::size_t max_line = 4096;
constexpr std::size_t max_nick = 32;

/// What /help answers.
extern const char* const help_text;

struct member {
    ringchat::chat::channel* ch;
    std::string nick;
    unsigned id = 0;       // unique in the process: who a line is not sent back to
    bool dropped = false;  // taken out of the room for being too slow
    /// Since when its queue has been above the pacing mark (see room::pace); unset while not.
    ringchat::clock::time_point lagging_since{};
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

/// The members on one reactor; on a group, each reactor has one, spread() together.
class room {
public:
    /// Members are dropped past `max_queue` of output; senders are paced to a member that
    /// lags (past max_queue / 4) for at most `pace_limit` in a row (see pace()).
    room(std::size_t max_queue, registry& names,
         std::chrono::milliseconds pace_limit = default_pace_limit)
        : max_queue_(max_queue), pace_mark_(max_queue / 4), pace_limit_(pace_limit),
          names_(names) {}
    static constexpr std::chrono::milliseconds default_pace_limit{1000};
    room(const room&) = delete;
    room& operator=(const room&) = delete;

    /// On a group: every reactor's room (index k on reactor k); what one announces goes
    /// through reactor 0 to all of them.
    void spread(ringchat::reactor_group& g, std::vector<std::unique_ptr<room>>& rooms) {
        group_ = &g;
        rooms_ = &rooms;
    }

    registry& names() { return names_; }

    void join(member& m);
    void leave(member& m, std::string_view how);

    /// Queues `line` for every member of the room but member `from` (0: none): here alone,
    /// or, on a group, on every reactor, in the order reactor 0 passes them on.
    void announce(std::string line, unsigned from);

    /// After `me` said something: waits while a member of this room that is still reading
    /// has more than max_queue / 4 queued, until it drained below its low-water mark, so the
    /// room goes at the pace of its slowest reader instead of dropping it. A member that
    /// lags for `pace_limit` in a row is not waited for again until it has caught up; its
    /// queue may then grow to max_queue, and it is dropped. So a member who never reads
    /// holds the others up once, for pace_limit, and the room's memory stays bounded by
    /// max_queue per member. On a group, each reactor paces its own members.
    ringchat::task<> pace(const member& me);

private:
    /// Queues `line` for this room's members but `from`; drops those whose queue is then too long.
    void deliver(const std::string& line, unsigned from);
    void drop(member& m);

    std::list<member*> members_;
    std::size_t max_queue_;
    std::size_t pace_mark_;
    std::chrono::milliseconds pace_limit_;
    registry& names_;
    ringchat::reactor_group* group_ = nullptr;
    std::vector<std::unique_ptr<room>>* rooms_ = nullptr;
};

/// The channel options the server runs its connections with: a line of max_line at most, a
/// send blocked for `write_timeout` closes (0: never), and input framed 4 KiB a turn.
ringchat::chat::channel_options channel_options(std::chrono::nanoseconds write_timeout);

/// One member's connection: welcomed as guestN, in the room until it quits, closes, or is
/// dropped for reading too slowly. `rm` outlives the session.
ringchat::task<> session(ringchat::chat::channel& ch, room& rm);

struct room_handler {
    room* rm;
    ringchat::task<> operator()(ringchat::chat::channel& ch) const { return session(ch, *rm); }
};

/// On a group: the room of the reactor the connection was placed on.
struct group_room_handler {
    ringchat::reactor_group* g;
    std::vector<std::unique_ptr<room>>* rooms;
    ringchat::task<> operator()(ringchat::chat::channel& ch) const {
        return session(ch, *(*rooms)[g->here()]);
    }
};

}  // namespace chatroom
