// SPDX-License-Identifier: MIT
// examples/resp/shards.hpp — the resp keyspace split over the reactors of a group
// (--threads N), as Dragonfly splits it: reactor k owns shard k (a store of its own, touched
// only on its thread), and a key lives in shard hash(key) % N.
//
//     resp::keyspace ks(group);                        // a store per reactor
//     chat::serve(group, at, resp::sharded_handler{&ks, query_limit}, o);
//
// A request runs where its keys are (route()): a command of one key on the key's owner, on
// the connection's own reactor when that is the owner (no cost beyond the hash), else through
// reactor_group::on() (a message there and back, no allocation); a command of no key where
// the connection is. A request of several keys (DEL, UNLINK, EXISTS, MGET, MSET) whose keys
// all have one owner goes there whole; else it is split into one request per shard, run on
// each at once, and the replies merged into the one a single store gives (fan_out()). KEYS,
// DBSIZE, FLUSHALL and FLUSHDB visit every shard. Each command runs on its key's owner thread,
// so INCR needs no lock; a request of several shards is not atomic as a whole (another client
// may see an MSET on one shard before the other), each shard's part is.
//
// The session (session.cpp) sends a request for another shard off and reads on; replies go
// out in request order, and a connection's requests on one shard take effect in the order
// sent (on different shards, not necessarily: as with MSET, another client may see a later
// write before an earlier one). A request over every shard waits for all before it.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "chat/channel.hpp"
#include "core/reactor_group.hpp"
#include "core/task.hpp"
#include "examples/resp/commands.hpp"
#include "examples/resp/store.hpp"

namespace resp {

/// Shard of `key` among `n`: a stable hash (std::hash, the same in every thread of a process).
inline unsigned shard_of(std::string_view key, unsigned n) noexcept {
    return static_cast<unsigned>(std::hash<std::string_view>{}(key) % n);
}

class keyspace {
public:
    /// Where route() sends a request whose keys have several owners: fan_out().
    static constexpr unsigned everywhere = ~0U;

    /// A store per reactor of `g` (g.size() of them).
    explicit keyspace(ringchat::reactor_group& g);

    ringchat::reactor_group& group() const noexcept { return *group_; }
    unsigned size() const noexcept { return static_cast<unsigned>(stores_.size()); }
    /// Shard k, to be touched on reactor k's thread only.
    store& at(unsigned k) noexcept { return *stores_[k]; }
    unsigned owner(std::string_view key) const noexcept { return shard_of(key, size()); }

    /// Where `args` runs: the owner of its keys, `here` when it has none, or everywhere.
    unsigned route(std::span<const std::string> args, unsigned here) const noexcept;
    /// Runs a request of several shards (route() said everywhere) from reactor `here` on each
    /// shard at once, and appends the merged reply to `out`. `args` may be moved from.
    ringchat::task<> fan_out(arguments args, std::string& out, unsigned here);

private:
    ringchat::reactor_group* group_;
    std::vector<std::unique_ptr<store>> stores_;
};

/// One connection of a sharded server: session() with each request run where route() says.
ringchat::task<> sharded_session(ringchat::chat::channel& ch, keyspace& ks,
                                 std::size_t query_limit);

/// What serve() on the group runs per connection.
struct sharded_handler {
    keyspace* ks;
    std::size_t query_limit;
    ringchat::task<> operator()(ringchat::chat::channel& ch) const {
        return sharded_session(ch, *ks, query_limit);
    }
};

}  // namespace resp
