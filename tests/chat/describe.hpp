// SPDX-License-Identifier: MIT
// tests/chat/describe.hpp — how the chat tests print bytes and terminators, so that traces
// and failures read like docs/asynchat-semantics.md ('a\r\n', count(3), bytes('\r\n')).
#pragma once

#include <string>
#include <string_view>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "chat/terminator.hpp"

namespace ringchat::test {

/// Python's repr style: 'a\r\n', with \xNN for other bytes outside printable ASCII.
inline std::string escaped(std::string_view s) {
    std::string out = "'";
    for (const char c : s) {
        if (c == '\r') {
            out += "\\r";
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\\' || c == '\'') {
            out += '\\';
            out += c;
        } else if (c >= 0x20 && c < 0x7f) {
            out += c;
        } else {
            out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
        }
    }
    return out + "'";
}

inline std::string describe(const chat::terminator& t) {
    switch (t.kind()) {
    case chat::terminator_kind::none:
        return "none";
    case chat::terminator_kind::count:
        return fmt::format("count({})", t.remaining());
    case chat::terminator_kind::bytes:
        return fmt::format("bytes({})", escaped(t.text()));
    }
    return "?";
}

}  // namespace ringchat::test

/// Catch2 prints terminators in failure messages as describe() does.
template <>
struct Catch::StringMaker<ringchat::chat::terminator> {
    static std::string convert(const ringchat::chat::terminator& t) {
        return ringchat::test::describe(t);
    }
};
