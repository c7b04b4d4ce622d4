// SPDX-License-Identifier: MIT
// examples/resp/commands.hpp — the commands of the resp example, over a store, as a pure
// function from a request (its arguments) to the bytes of its RESP2 reply. No I/O here.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "examples/resp/store.hpp"

namespace resp {

/// A request's arguments, as the parser holds them (request.hpp); a command may move them.
using arguments = std::span<std::string>;

/// Runs one request (args[0] is the command name, any case) against `db` and appends its
/// reply to `out`. Errors are worded as Redis words them.
/// \return false when the connection is to close once the reply is sent (QUIT).
bool execute(store& db, arguments args, std::string& out);

/// How a request touches the keyspace, for a server that splits it by key (shards.hpp): what
/// runs where, and how the replies of the parts make the request's reply.
enum class key_use : std::uint8_t {
    none,        ///< no key (PING, CONFIG ...), or refused before it runs (unknown, arity)
    first,       ///< one key, args[1] (GET, SET, INCR, LPUSH, EXPIRE ...)
    each_count,  ///< every argument a key; the reply counts them (DEL, UNLINK, EXISTS)
    each_value,  ///< every argument a key; the reply is an array, a value per key (MGET)
    pairs,       ///< key value pairs; the reply +OK (MSET)
    all_count,   ///< every key; the reply an integer (DBSIZE)
    all_keys,    ///< every key; the reply an array of keys (KEYS)
    all_ok,      ///< every key; the reply +OK or an error (FLUSHALL, FLUSHDB)
};

/// What `args` would touch if execute() ran it: none for a request execute() refuses before
/// it looks at a key (an unknown command, a wrong number of arguments, MSET with a key
/// short of its value), so that its error is made wherever the request is.
key_use keys_of(std::span<const std::string> args) noexcept;

/// Redis' glob (KEYS, CONFIG GET): *, ?, [abc], [^a], [a-z], and \ to escape.
bool glob_match(std::string_view pattern, std::string_view text) noexcept;

namespace reply {
void simple(std::string& out, std::string_view s);
/// "-<what>\r\n"; CR and LF inside `what` become spaces, as Redis does.
void error(std::string& out, std::string_view what);
void integer(std::string& out, long long n);
void bulk(std::string& out, std::string_view s);
void null_bulk(std::string& out);
void array(std::string& out, std::size_t n);
}  // namespace reply

}  // namespace resp
