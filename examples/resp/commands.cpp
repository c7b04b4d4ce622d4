// SPDX-License-Identifier: MIT
// examples/resp/commands.cpp — PING ... QUIT over the store, with Redis' replies and errors.
#include "examples/resp/commands.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <limits>
#include <span>
#include <string_view>

#include <fmt/core.h>

namespace resp {
namespace {

using args_t = arguments;
using ms = std::chrono::milliseconds;

constexpr std::string_view wrongtype =
    "WRONGTYPE Operation against a key holding the wrong kind of value";
constexpr std::string_view not_integer = "ERR value is not an integer or out of range";
constexpr std::string_view syntax_error = "ERR syntax error";

char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

bool iequals(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

/// Redis' string2ll: an optional '-', digits, no leading zeros, no '+', no spaces, in range.
bool to_int(std::string_view s, long long& out) noexcept {
    if (s.empty() || s.size() > 20) {
        return false;
    }
    const std::string_view digits = s.front() == '-' ? s.substr(1) : s;
    if (digits.empty() || (digits.front() == '0' && s.size() > 1)) {
        return false;
    }
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && end == s.data() + s.size();
}

value* find_string(store& db, std::string_view key, std::string& out, bool& ok) {
    value* v = db.find(key);
    ok = v == nullptr || v->is_string();
    if (!ok) {
        reply::error(out, wrongtype);
        return nullptr;
    }
    return v;
}

value* find_list(store& db, std::string_view key, std::string& out, bool& ok) {
    value* v = db.find(key);
    ok = v == nullptr || v->is_list();
    if (!ok) {
        reply::error(out, wrongtype);
        return nullptr;
    }
    return v;
}

void ping(store&, args_t a, std::string& out) {
    if (a.size() == 1) {
        reply::simple(out, "PONG");
    } else {
        reply::bulk(out, a[1]);
    }
}

void echo(store&, args_t a, std::string& out) { reply::bulk(out, a[1]); }

void get(store& db, args_t a, std::string& out) {
    bool ok = false;
    value* v = find_string(db, a[1], out, ok);
    if (ok && v) {
        reply::bulk(out, v->str());
    } else if (ok) {
        reply::null_bulk(out);
    }
}

void set(store& db, args_t a, std::string& out) {
    bool nx = false, xx = false, keepttl = false, get_old = false, has_expiry = false;
    auto expires = clock::time_point::max();
    for (std::size_t i = 3; i < a.size(); ++i) {
        const std::string_view opt = a[i];
        if (iequals(opt, "NX") && !xx) {
            nx = true;
        } else if (iequals(opt, "XX") && !nx) {
            xx = true;
        } else if (iequals(opt, "GET")) {
            get_old = true;
        } else if (iequals(opt, "KEEPTTL") && !has_expiry) {
            keepttl = true;
        } else if ((iequals(opt, "EX") || iequals(opt, "PX")) && !has_expiry && !keepttl &&
                   i + 1 < a.size()) {
            long long n = 0;
            if (!to_int(a[++i], n)) {
                reply::error(out, not_integer);
                return;
            }
            const long long limit = std::numeric_limits<long long>::max() / 1000 / 1000;
            if (n <= 0 || n > limit) {
                reply::error(out, "ERR invalid expire time in 'set' command");
                return;
            }
            has_expiry = true;
            expires = clock::now() + (iequals(opt, "EX") ? ms(n * 1000) : ms(n));
        } else {
            reply::error(out, syntax_error);
            return;
        }
    }
    // Only an option that depends on the old value looks it up: a plain SET is one lookup
    // (put()'s), not two.
    value* old = nullptr;
    if (get_old) {
        bool ok = false;
        old = find_string(db, a[1], out, ok);
        if (!ok) {
            return;
        }
    } else if (nx || xx || keepttl) {
        old = db.find(a[1]);
    }
    if (get_old && old) {
        reply::bulk(out, old->str());
    } else if (get_old || (nx && old) || (xx && !old)) {
        reply::null_bulk(out);
    } else {
        reply::simple(out, "OK");
    }
    if ((nx && old) || (xx && !old)) {
        return;  // not set
    }
    if (keepttl && old) {
        expires = old->expires;
    }
    if (old != nullptr) {
        db.replace(a[1], *old, value{std::move(a[2]), expires});
    } else {
        db.put(a[1], value{std::move(a[2]), expires});
    }
}

void del(store& db, args_t a, std::string& out) {
    long long n = 0;
    for (std::size_t i = 1; i < a.size(); ++i) {
        n += db.erase(a[i]) ? 1 : 0;
    }
    reply::integer(out, n);
}

void exists(store& db, args_t a, std::string& out) {
    long long n = 0;
    for (std::size_t i = 1; i < a.size(); ++i) {
        n += db.find(a[i]) ? 1 : 0;
    }
    reply::integer(out, n);
}

void incr_by(store& db, std::string_view key, long long by, std::string& out) {
    bool ok = false;
    value* v = find_string(db, key, out, ok);
    if (!ok) {
        return;
    }
    long long n = 0;
    if (v && !to_int(v->str(), n)) {
        reply::error(out, not_integer);
        return;
    }
    if ((by > 0 && n > std::numeric_limits<long long>::max() - by) ||
        (by < 0 && n < std::numeric_limits<long long>::min() - by)) {
        reply::error(out, "ERR increment or decrement would overflow");
        return;
    }
    n += by;
    if (v) {
        v->str() = std::to_string(n);  // the deadline stays, as in Redis
    } else {
        db.put(key, value{std::to_string(n)});
    }
    reply::integer(out, n);
}

void incr(store& db, args_t a, std::string& out) { incr_by(db, a[1], 1, out); }
void decr(store& db, args_t a, std::string& out) { incr_by(db, a[1], -1, out); }

void incrby(store& db, args_t a, std::string& out) {
    long long by = 0;
    if (!to_int(a[2], by)) {
        reply::error(out, not_integer);
        return;
    }
    incr_by(db, a[1], by, out);
}

void decrby(store& db, args_t a, std::string& out) {
    long long by = 0;
    if (!to_int(a[2], by) || by == std::numeric_limits<long long>::min()) {
        reply::error(out, not_integer);
        return;
    }
    incr_by(db, a[1], -by, out);
}

void append(store& db, args_t a, std::string& out) {
    bool ok = false;
    value* v = find_string(db, a[1], out, ok);
    if (!ok) {
        return;
    }
    if (v) {
        v->str() += a[2];
        reply::integer(out, static_cast<long long>(v->str().size()));
    } else {
        reply::integer(out, static_cast<long long>(a[2].size()));
        db.put(a[1], value{std::move(a[2])});
    }
}

void strlen_(store& db, args_t a, std::string& out) {
    bool ok = false;
    value* v = find_string(db, a[1], out, ok);
    if (ok) {
        reply::integer(out, v ? static_cast<long long>(v->str().size()) : 0);
    }
}

void mget(store& db, args_t a, std::string& out) {
    reply::array(out, a.size() - 1);
    for (std::size_t i = 1; i < a.size(); ++i) {
        const value* v = db.find(a[i]);
        if (v && v->is_string()) {
            reply::bulk(out, std::get<std::string>(v->data));
        } else {
            reply::null_bulk(out);  // missing, or not a string: nil, as in Redis
        }
    }
}

void mset(store& db, args_t a, std::string& out) {
    if (a.size() % 2 != 1) {
        reply::error(out, "ERR wrong number of arguments for 'mset' command");
        return;
    }
    for (std::size_t i = 1; i + 1 < a.size(); i += 2) {
        db.put(a[i], value{std::move(a[i + 1])});
    }
    reply::simple(out, "OK");
}

void expire(store& db, args_t a, std::string& out) {
    long long seconds = 0;
    if (!to_int(a[2], seconds)) {
        reply::error(out, not_integer);
        return;
    }
    if (seconds > std::numeric_limits<long long>::max() / 1000 / 1000 ||
        seconds < std::numeric_limits<long long>::min() / 1000 / 1000) {
        reply::error(out, "ERR invalid expire time in 'expire' command");
        return;
    }
    bool nx = false, xx = false, gt = false, lt = false;
    for (std::size_t i = 3; i < a.size(); ++i) {
        nx |= iequals(a[i], "NX");
        xx |= iequals(a[i], "XX");
        gt |= iequals(a[i], "GT");
        lt |= iequals(a[i], "LT");
        if (!iequals(a[i], "NX") && !iequals(a[i], "XX") && !iequals(a[i], "GT") &&
            !iequals(a[i], "LT")) {
            reply::error(out, fmt::format("ERR Unsupported option {}", a[i]));
            return;
        }
    }
    if ((nx && (xx || gt || lt)) || (gt && lt)) {
        reply::error(out, "ERR NX and XX, GT or LT options at the same time are not compatible");
        return;
    }
    value* v = db.find(a[1]);
    if (!v) {
        reply::integer(out, 0);
        return;
    }
    const auto when = clock::now() + ms(seconds * 1000);
    const bool has = v->volatile_();
    if ((nx && has) || (xx && !has) || (gt && (!has || when <= v->expires)) ||
        (lt && has && when >= v->expires)) {
        reply::integer(out, 0);
        return;
    }
    if (seconds <= 0) {
        db.erase(a[1]);  // a deadline in the past deletes the key, as in Redis
    } else {
        db.expire_at(a[1], *v, when);
    }
    reply::integer(out, 1);
}

void ttl(store& db, args_t a, std::string& out) {
    value* v = db.find(a[1]);
    if (!v) {
        reply::integer(out, -2);
    } else if (!v->volatile_()) {
        reply::integer(out, -1);
    } else {
        const auto left = std::chrono::duration_cast<ms>(v->expires - clock::now()).count();
        reply::integer(out, (left + 500) / 1000);
    }
}

void keys(store& db, args_t a, std::string& out) {
    std::vector<const std::string*> found;
    const std::string_view pattern = a[1];
    db.for_each_key([&](const std::string& k) {
        if (pattern == "*" || glob_match(pattern, k)) {
            found.push_back(&k);
        }
    });
    reply::array(out, found.size());
    for (const std::string* k : found) {
        reply::bulk(out, *k);
    }
}

void dbsize(store& db, args_t, std::string& out) {
    db.expire_some(clock::now(), std::numeric_limits<std::size_t>::max());
    reply::integer(out, static_cast<long long>(db.size()));
}

void flushall(store& db, args_t a, std::string& out) {
    if (a.size() > 2 || (a.size() == 2 && !iequals(a[1], "ASYNC") && !iequals(a[1], "SYNC"))) {
        reply::error(out, syntax_error);
        return;
    }
    db.clear();
    reply::simple(out, "OK");
}

void push(store& db, args_t a, std::string& out, bool left) {
    bool ok = false;
    value* v = find_list(db, a[1], out, ok);
    if (!ok) {
        return;
    }
    if (!v) {
        v = &db.put(a[1], value{list()});
    }
    list& l = v->items();
    for (std::size_t i = 2; i < a.size(); ++i) {
        if (left) {
            l.push_front(std::move(a[i]));
        } else {
            l.push_back(std::move(a[i]));
        }
    }
    reply::integer(out, static_cast<long long>(l.size()));
}

void lpush(store& db, args_t a, std::string& out) { push(db, a, out, true); }
void rpush(store& db, args_t a, std::string& out) { push(db, a, out, false); }

void pop(store& db, args_t a, std::string& out, bool left) {
    if (a.size() > 3) {
        reply::error(out, fmt::format("ERR wrong number of arguments for '{}' command",
                                      left ? "lpop" : "rpop"));
        return;
    }
    long long count = 1;
    const bool with_count = a.size() == 3;
    if (with_count && (!to_int(a[2], count) || count < 0)) {
        reply::error(out, "ERR value is out of range, must be positive");
        return;
    }
    bool ok = false;
    value* v = find_list(db, a[1], out, ok);
    if (!ok) {
        return;
    }
    if (!v) {
        if (with_count) {
            out += "*-1\r\n";  // a null array
        } else {
            reply::null_bulk(out);
        }
        return;
    }
    list& l = v->items();
    const auto n = std::min<std::size_t>(static_cast<std::size_t>(count), l.size());
    if (with_count) {
        reply::array(out, n);
    }
    for (std::size_t i = 0; i < n; ++i) {
        if (left) {
            reply::bulk(out, l.front());
            l.pop_front();
        } else {
            reply::bulk(out, l.back());
            l.pop_back();
        }
    }
    if (l.empty()) {
        db.erase(a[1]);  // an empty list is no key, as in Redis
    }
}

void lpop(store& db, args_t a, std::string& out) { pop(db, a, out, true); }
void rpop(store& db, args_t a, std::string& out) { pop(db, a, out, false); }

void llen(store& db, args_t a, std::string& out) {
    bool ok = false;
    value* v = find_list(db, a[1], out, ok);
    if (ok) {
        reply::integer(out, v ? static_cast<long long>(v->items().size()) : 0);
    }
}

void lrange(store& db, args_t a, std::string& out) {
    long long start = 0, stop = 0;
    if (!to_int(a[2], start) || !to_int(a[3], stop)) {
        reply::error(out, not_integer);
        return;
    }
    bool ok = false;
    value* v = find_list(db, a[1], out, ok);
    if (!ok) {
        return;
    }
    if (!v) {
        reply::array(out, 0);
        return;
    }
    const list& l = v->items();
    const auto size = static_cast<long long>(l.size());
    if (start < 0) {
        start = std::max(size + start, 0LL);
    }
    if (stop < 0) {
        stop = size + stop;
    }
    stop = std::min(stop, size - 1);
    if (start > stop || start >= size) {
        reply::array(out, 0);
        return;
    }
    reply::array(out, static_cast<std::size_t>(stop - start + 1));
    for (long long i = start; i <= stop; ++i) {
        reply::bulk(out, l[static_cast<std::size_t>(i)]);
    }
}

void command(store&, args_t, std::string& out) {
    reply::array(out, 0);  // no command table: redis-cli then does without hints
}

void config(store&, args_t a, std::string& out) {
    // What redis-benchmark and redis-cli ask for; any other parameter is unknown (empty).
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 5> params{{
        {"save", ""},
        {"appendonly", "no"},
        {"databases", "1"},
        {"maxmemory", "0"},
        {"proto-max-bulk-len", "536870912"},
    }};
    if (!iequals(a[1], "GET")) {
        reply::error(out, fmt::format("ERR unknown subcommand '{:.128}'. Try CONFIG HELP.", a[1]));
        return;
    }
    if (a.size() < 3) {
        reply::error(out, "ERR wrong number of arguments for 'config|get' command");
        return;
    }
    std::vector<std::pair<std::string_view, std::string_view>> found;
    for (const auto& p : params) {
        for (std::size_t i = 2; i < a.size(); ++i) {
            if (glob_match(a[i], p.first)) {
                found.push_back(p);
                break;
            }
        }
    }
    reply::array(out, found.size() * 2);
    for (const auto& [k, v] : found) {
        reply::bulk(out, k);
        reply::bulk(out, v);
    }
}

void select(store&, args_t a, std::string& out) {
    long long db = 0;
    if (!to_int(a[1], db)) {
        reply::error(out, not_integer);
    } else if (db != 0) {
        reply::error(out, "ERR DB index is out of range");
    } else {
        reply::simple(out, "OK");
    }
}

void quit(store&, args_t, std::string& out) { reply::simple(out, "OK"); }

using handler = void (*)(store&, args_t, std::string&);

struct command_spec {
    std::string_view name;  // lower case
    int arity;              // as Redis: n exactly, -n at least n (the name counts)
    handler run;
    key_use keys;
};

using enum key_use;
constexpr command_spec commands[] = {
    {"append", 3, append, first},         {"command", -1, command, none},
    {"config", -2, config, none},         {"dbsize", 1, dbsize, all_count},
    {"decr", 2, decr, first},             {"decrby", 3, decrby, first},
    {"del", -2, del, each_count},         {"echo", 2, echo, none},
    {"exists", -2, exists, each_count},   {"expire", -3, expire, first},
    {"flushall", -1, flushall, all_ok},   {"flushdb", -1, flushall, all_ok},
    {"get", 2, get, first},               {"incr", 2, incr, first},
    {"incrby", 3, incrby, first},         {"keys", 2, keys, all_keys},
    {"llen", 2, llen, first},             {"lpop", -2, lpop, first},
    {"lpush", -3, lpush, first},          {"lrange", 4, lrange, first},
    {"mget", -2, mget, each_value},       {"mset", -3, mset, pairs},
    {"ping", -1, ping, none},             {"quit", -1, quit, none},
    {"rpop", -2, rpop, first},            {"rpush", -3, rpush, first},
    {"select", 2, select, none},          {"set", -3, set, first},
    {"strlen", 2, strlen_, first},        {"ttl", 2, ttl, first},
    {"unlink", -2, del, each_count},
};

/// A command name of up to 8 letters as one number, its first letter in the top byte and
/// every letter lower case (`| 0x20` lowers a letter, and turns any other byte into one no
/// command has): distinct names have distinct numbers, and a client's name in any case has
/// its command's number. \pre name.size() <= 8
constexpr std::uint64_t name_key(std::string_view name) noexcept {
    if (name.empty()) {
        return 0;
    }
    std::uint64_t key = 0;
    for (const char c : name) {
        key = (key << 8) | (static_cast<unsigned char>(c) | 0x20u);
    }
    return key << (8 * (8 - name.size()));
}

constexpr auto command_keys = [] {
    std::array<std::uint64_t, std::size(commands)> keys{};
    for (std::size_t i = 0; i < keys.size(); ++i) {
        keys[i] = name_key(commands[i].name);
    }
    return keys;
}();
static_assert(std::all_of(std::begin(commands), std::end(commands),
                          [](const command_spec& c) {
                              return c.name.size() <= 8 &&
                                     std::all_of(c.name.begin(), c.name.end(),
                                                 [](char ch) { return ch >= 'a' && ch <= 'z'; });
                          }),
              "name_key() holds names of up to 8 lower-case letters");

/// The command table hashed without collisions: a name's number times `multiplier`, its top
/// slot_bits bits, is its slot; slots[slot] is its index in `commands` plus one (0: none).
/// The multiplier is searched for at compile time (the first odd one of a fixed sequence
/// under which no two commands share a slot).
constexpr unsigned slot_bits = 6;
static_assert(std::size(commands) < (1u << slot_bits) / 1.5, "grow slot_bits with the table");

constexpr std::size_t slot_of(std::uint64_t key, std::uint64_t multiplier) noexcept {
    return static_cast<std::size_t>((key * multiplier) >> (64 - slot_bits));
}

struct command_hash {
    std::uint64_t multiplier = 0;
    std::array<std::uint8_t, std::size_t{1} << slot_bits> slots{};
};

constexpr command_hash make_command_hash() {
    std::uint64_t candidate = 0x9e3779b97f4a7c15u;  // then a fixed walk over odd numbers
    for (int tries = 0; tries < 100000; ++tries) {
        candidate = candidate * 6364136223846793005u + 1442695040888963407u;
        command_hash h;
        h.multiplier = candidate | 1u;
        bool clash = false;
        for (std::size_t i = 0; i < command_keys.size() && !clash; ++i) {
            auto& slot = h.slots[slot_of(command_keys[i], h.multiplier)];
            clash = slot != 0;
            slot = static_cast<std::uint8_t>(i + 1);
        }
        if (!clash) {
            return h;
        }
    }
    return {};
}

constexpr command_hash command_slots = make_command_hash();
static_assert(command_slots.multiplier != 0, "no multiplier hashes the commands apart");

/// The command named `name` (any case), or nullptr: one multiplication and one comparison
/// of integers (a binary search over the names' numbers took five comparisons and the
/// branches they mispredict).
const command_spec* lookup(std::string_view name) noexcept {
    if (name.size() > 8) {
        return nullptr;
    }
    const std::uint64_t key = name_key(name);
    const std::size_t i = command_slots.slots[slot_of(key, command_slots.multiplier)];
    return i != 0 && command_keys[i - 1] == key ? &commands[i - 1] : nullptr;
}

bool arity_ok(const command_spec& c, std::size_t args) noexcept {
    const auto n = static_cast<int>(std::min<std::size_t>(args, 1 << 30));
    return (c.arity > 0 && n == c.arity) || (c.arity < 0 && n >= -c.arity);
}

}  // namespace

namespace reply {

void simple(std::string& out, std::string_view s) {
    out += '+';
    out += s;
    out += "\r\n";
}

void error(std::string& out, std::string_view what) {
    out += '-';
    const std::size_t at = out.size();
    out += what;
    std::replace_if(out.begin() + static_cast<std::ptrdiff_t>(at), out.end(),
                    [](char c) { return c == '\r' || c == '\n'; }, ' ');
    out += "\r\n";
}

namespace {

/// `type`, `n` in decimal and CRLF, in one append: a reply's header is written per reply, and
/// std::to_chars into a stack buffer costs a fraction of a formatting library's call.
template <class Number>
void header(std::string& out, char type, Number n) {
    std::array<char, 1 + std::numeric_limits<Number>::digits10 + 2 + 2> line;  // sign, CRLF
    line[0] = type;
    char* end = std::to_chars(line.data() + 1, line.data() + line.size() - 2, n).ptr;
    *end++ = '\r';
    *end++ = '\n';
    out.append(line.data(), static_cast<std::size_t>(end - line.data()));
}

}  // namespace

void integer(std::string& out, long long n) { header(out, ':', n); }

void bulk(std::string& out, std::string_view s) {
    header(out, '$', s.size());
    out += s;
    out += "\r\n";
}

void null_bulk(std::string& out) { out += "$-1\r\n"; }

void array(std::string& out, std::size_t n) { header(out, '*', n); }

}  // namespace reply

bool glob_match(std::string_view p, std::string_view s) noexcept {
    // Greedy with backtracking to the last '*': linear in practice, no recursion.
    std::size_t pi = 0, si = 0;
    std::size_t star = std::string_view::npos, star_si = 0;
    // Does pattern element at p[i] match c? Sets `next` to the element after it.
    auto one = [&](std::size_t i, char c, std::size_t& next) {
        if (p[i] == '?') {
            next = i + 1;
            return true;
        }
        if (p[i] == '\\' && i + 1 < p.size()) {
            next = i + 2;
            return p[i + 1] == c;
        }
        if (p[i] != '[') {
            next = i + 1;
            return p[i] == c;
        }
        std::size_t j = i + 1;
        const bool negate = j < p.size() && p[j] == '^';
        j += negate ? 1 : 0;
        bool hit = false;
        for (; j < p.size() && p[j] != ']'; ++j) {
            if (p[j] == '\\' && j + 1 < p.size()) {
                hit |= p[++j] == c;
            } else if (j + 2 < p.size() && p[j + 1] == '-' && p[j + 2] != ']') {
                auto lo = static_cast<unsigned char>(p[j]);
                auto hi = static_cast<unsigned char>(p[j + 2]);
                if (lo > hi) {
                    std::swap(lo, hi);
                }
                const auto u = static_cast<unsigned char>(c);
                hit |= u >= lo && u <= hi;
                j += 2;
            } else {
                hit |= p[j] == c;
            }
        }
        next = j < p.size() ? j + 1 : j;  // an unclosed class ends the pattern, as in Redis
        return hit != negate;
    };
    while (si < s.size()) {
        std::size_t next = 0;
        if (pi < p.size() && p[pi] == '*') {
            star = pi++;
            star_si = si;
        } else if (pi < p.size() && one(pi, s[si], next)) {
            pi = next;
            ++si;
        } else if (star != std::string_view::npos) {
            pi = star + 1;
            si = ++star_si;
        } else {
            return false;
        }
    }
    while (pi < p.size() && p[pi] == '*') {
        ++pi;
    }
    return pi == p.size();
}

bool execute(store& db, arguments args, std::string& out) {
    const command_spec* c = lookup(args[0]);
    if (c == nullptr) {
        std::string with;
        for (std::size_t i = 1; i < args.size() && with.size() < 128; ++i) {
            with += fmt::format("'{}' ", std::string_view(args[i]).substr(0, 128 - with.size()));
        }
        reply::error(out, fmt::format("ERR unknown command '{:.128}', with args beginning with: {}",
                                      args[0], with));
        return true;
    }
    if (!arity_ok(*c, args.size())) {
        reply::error(out, fmt::format("ERR wrong number of arguments for '{}' command", c->name));
        return true;
    }
    c->run(db, args, out);
    return c->run != quit;
}

key_use keys_of(std::span<const std::string> args) noexcept {
    const command_spec* c = lookup(args[0]);
    if (c == nullptr || !arity_ok(*c, args.size()) ||
        (c->keys == key_use::pairs && args.size() % 2 != 1)) {
        return key_use::none;  // execute() refuses it before it looks at a key
    }
    return c->keys;
}

}  // namespace resp
