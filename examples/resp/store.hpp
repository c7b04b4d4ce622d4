// SPDX-License-Identifier: MIT
// examples/resp/store.hpp — the resp example's keyspace: strings and lists, with expiry.
//
// Expiry is lazy (find() removes a key whose time has passed before anyone sees it) plus a
// sweep (expire_some(), run every 100 ms by the server) over a heap of deadlines, so that
// keys nobody reads again do not stay forever. Invariant: find() never returns an expired key.
// The heap may hold stale entries (a key deleted or given another deadline); the sweep checks
// each against the key's deadline now and skips those.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace resp {

using clock = std::chrono::steady_clock;
using list = std::deque<std::string>;

struct value {
    std::variant<std::string, list> data;
    clock::time_point expires = clock::time_point::max();  ///< max(): no expiry

    bool is_string() const noexcept { return data.index() == 0; }
    bool is_list() const noexcept { return data.index() == 1; }
    std::string& str() { return std::get<std::string>(data); }
    list& items() { return std::get<list>(data); }
    bool volatile_() const noexcept { return expires != clock::time_point::max(); }
};

class store {
public:
    /// The live value at `key`, or nullptr (an expired one is removed first).
    value* find(std::string_view key);
    /// Sets `key` to `v` (replacing any value and its deadline with v's).
    value& put(std::string_view key, value v);
    /// Sets `key`, whose live value find() returned as `old`, to `v` (and v's deadline),
    /// without looking it up again.
    void replace(std::string_view key, value& old, value v);
    /// The value at `key`, made (empty, of `v`'s kind) if there is none.
    value& find_or_make(std::string_view key, value&& fresh, bool& made);
    bool erase(std::string_view key);
    /// Gives `key` (which must exist) a deadline (max(): none).
    void expire_at(std::string_view key, value& v, clock::time_point when);
    void clear();
    /// Keys, expired ones included until removed (as Redis' DBSIZE counts them).
    std::size_t size() const noexcept { return map_.size(); }
    /// Removes keys whose deadline passed; looks at `budget` deadlines at most.
    std::size_t expire_some(clock::time_point now, std::size_t budget);
    /// Calls f(key) for every live key.
    void for_each_key(const std::function<void(const std::string&)>& f);

private:
    struct hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };
    using deadline = std::pair<clock::time_point, std::string>;
    std::unordered_map<std::string, value, hash, std::equal_to<>> map_;
    std::priority_queue<deadline, std::vector<deadline>, std::greater<>> deadlines_;
};

}  // namespace resp
