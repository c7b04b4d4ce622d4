// SPDX-License-Identifier: MIT
// examples/resp/commands.hpp — the commands of the resp example, over a store, as a pure
// function from a request (its arguments) to the bytes of its RESP2 reply. No I/O here.
#pragma once

#include <string>
#include <vector>

#include "examples/resp/store.hpp"

namespace resp {

/// Runs one request (args[0] is the command name, any case) against `db` and appends its
/// reply to `out`. Errors are worded as Redis words them.
/// \return false when the connection is to close once the reply is sent (QUIT).
bool execute(store& db, std::vector<std::string>& args, std::string& out);

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
