// SPDX-License-Identifier: MIT
// examples/resp/shards.cpp — routing a request to its shard, and a request of several shards
// split, run on each at once, and its replies merged (see shards.hpp).
#include "examples/resp/shards.hpp"

#include <charconv>
#include <coroutine>
#include <exception>
#include <utility>

#include "examples/resp/commands.hpp"

namespace resp {

using namespace ringchat;

namespace {

/// The parts of a fan-out still running, and the request waiting for them (origin's thread).
struct gathering {
    reactor* origin = nullptr;
    unsigned left = 0;
    std::coroutine_handle<> waiter;
};

struct all_done {
    gathering& g;
    bool await_ready() const noexcept { return g.left == 0; }
    void await_suspend(std::coroutine_handle<> h) noexcept { g.waiter = h; }
    void await_resume() const noexcept {}
};

/// Runs `args` on shard k (its reactor) into `reply`, then counts itself done at the origin.
/// Spawned on the origin: on() costs no allocation there and cannot fail once it is sent.
task<> ask(keyspace& ks, unsigned k, std::vector<std::string>& args, std::string& reply,
           std::exception_ptr& error, gathering& g) {
    try {
        // TRICKY: named first, capturing by reference only (GCC 12: see gcc12-coroutines.md).
        auto run = [&ks, &args, &reply, k] { execute(ks.at(k), args, reply); };
        co_await ks.group().on(k, std::move(run));
    } catch (...) {
        error = std::current_exception();
    }
    if (--g.left == 0 && g.waiter) {
        g.origin->schedule(std::exchange(g.waiter, {}));
    }
}

/// ":N\r\n" as N (0 for anything else: not met, the parts of a count are counts).
long long integer_of(std::string_view reply) noexcept {
    long long n = 0;
    if (reply.size() > 3 && reply.front() == ':') {
        std::from_chars(reply.data() + 1, reply.data() + reply.size() - 2, n);
    }
    return n;
}

/// The length of the bulk reply ("$LEN\r\n...\r\n" or "$-1\r\n") at the start of `s`.
std::size_t bulk_length(std::string_view s) noexcept {
    const std::size_t eol = s.find("\r\n");
    long long len = -1;
    std::from_chars(s.data() + 1, s.data() + eol, len);
    return eol + 2 + (len < 0 ? 0 : static_cast<std::size_t>(len) + 2);
}

/// "*N\r\n" at the start of an array reply: N, and where the elements begin.
std::size_t array_count(std::string_view s, std::size_t& body) noexcept {
    const std::size_t eol = s.find("\r\n");
    std::size_t n = 0;
    std::from_chars(s.data() + 1, s.data() + eol, n);
    body = eol + 2;
    return n;
}

}  // namespace

keyspace::keyspace(reactor_group& g) : group_(&g) {
    stores_.reserve(g.size());
    for (unsigned k = 0; k < g.size(); ++k) {
        stores_.push_back(std::make_unique<store>());
    }
}

unsigned keyspace::route(std::span<const std::string> args, unsigned here) const noexcept {
    const key_use use = keys_of(args);
    switch (use) {
    case key_use::none:
        return here;
    case key_use::first:
        return owner(args[1]);
    case key_use::all_count:
    case key_use::all_keys:
    case key_use::all_ok:
        return everywhere;
    case key_use::each_count:
    case key_use::each_value:
    case key_use::pairs:
        break;
    }
    const std::size_t step = use == key_use::pairs ? 2 : 1;
    const unsigned first = owner(args[1]);
    for (std::size_t i = 1 + step; i < args.size(); i += step) {
        if (owner(args[i]) != first) {
            return everywhere;
        }
    }
    return first;  // one owner: the request goes there whole
}

task<> keyspace::fan_out(arguments args, std::string& out, unsigned here) {
    const key_use use = keys_of(args);
    const unsigned n = size();
    // A request per shard: the command and that shard's keys (with their values), in order.
    std::vector<std::vector<std::string>> part(n);
    std::vector<unsigned> shard_of_key;  // MGET: whose reply holds the i-th value
    if (use == key_use::all_count || use == key_use::all_keys || use == key_use::all_ok) {
        for (auto& p : part) {
            p.assign(args.begin(), args.end());
        }
    } else {
        const std::size_t step = use == key_use::pairs ? 2 : 1;
        for (std::size_t i = 1; i < args.size(); i += step) {
            const unsigned k = owner(args[i]);
            if (part[k].empty()) {
                part[k].push_back(args[0]);
            }
            for (std::size_t j = i; j < i + step; ++j) {
                part[k].push_back(std::move(args[j]));
            }
            if (use == key_use::each_value) {
                shard_of_key.push_back(k);
            }
        }
    }
    std::vector<std::string> replies(n);
    std::vector<std::exception_ptr> error(n);
    gathering g;
    g.origin = &group_->at(here);
    for (unsigned k = 0; k < n; ++k) {
        if (k != here && !part[k].empty()) {
            ++g.left;
            try {
                group_->at(here).spawn(ask(*this, k, part[k], replies[k], error[k], g));
            } catch (...) {  // no frame for it: it never started
                --g.left;
                error[k] = std::current_exception();
            }
        }
    }
    if (!part[here].empty()) {
        try {
            execute(at(here), part[here], replies[here]);
        } catch (...) {
            error[here] = std::current_exception();
        }
    }
    co_await all_done{g};  // the others hold references into this frame until then
    for (const auto& e : error) {
        if (e) {
            std::rethrow_exception(e);
        }
    }
    for (unsigned k = 0; k < n; ++k) {
        if (!part[k].empty() && !replies[k].empty() && replies[k].front() == '-') {
            out += replies[k];  // refused (FLUSHALL's syntax): refused alike by every shard
            co_return;
        }
    }
    switch (use) {
    case key_use::each_count:
    case key_use::all_count: {
        long long total = 0;
        for (unsigned k = 0; k < n; ++k) {
            total += integer_of(replies[k]);
        }
        reply::integer(out, total);
        break;
    }
    case key_use::each_value: {
        // Each shard's array holds its keys' values in the request's order: take them in turn.
        std::vector<std::size_t> at_byte(n);
        for (unsigned k = 0; k < n; ++k) {
            if (!part[k].empty()) {
                array_count(replies[k], at_byte[k]);
            }
        }
        reply::array(out, shard_of_key.size());
        for (const unsigned k : shard_of_key) {
            const std::string_view rest = std::string_view(replies[k]).substr(at_byte[k]);
            const std::size_t len = bulk_length(rest);
            out += rest.substr(0, len);
            at_byte[k] += len;
        }
        break;
    }
    case key_use::all_keys: {
        std::size_t total = 0;
        std::vector<std::size_t> body(n);
        for (unsigned k = 0; k < n; ++k) {
            total += array_count(replies[k], body[k]);
        }
        reply::array(out, total);
        for (unsigned k = 0; k < n; ++k) {
            out.append(replies[k], body[k]);
        }
        break;
    }
    case key_use::pairs:
    case key_use::all_ok:
    case key_use::none:
    case key_use::first:
        reply::simple(out, "OK");
        break;
    }
}

}  // namespace resp
