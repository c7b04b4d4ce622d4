// SPDX-License-Identifier: MIT
// One-line diagnostics to stderr: what failed, why, what now.
//
// `RINGCHAT_LOG=quiet` silences info lines (errors are always printed).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <utility>

#include <fmt/core.h>

namespace ringchat::log {

inline bool quiet() noexcept {
    static const bool value = [] {
        const char* v = std::getenv("RINGCHAT_LOG");
        return v != nullptr && std::strcmp(v, "quiet") == 0;
    }();
    return value;
}

template <class... Args>
void info(fmt::format_string<Args...> format, Args&&... args) {
    if (!quiet()) {
        fmt::print(stderr, "ringchat: {}\n", fmt::format(format, std::forward<Args>(args)...));
    }
}

template <class... Args>
void error(fmt::format_string<Args...> format, Args&&... args) {
    fmt::print(stderr, "ringchat: error: {}\n", fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace ringchat::log
