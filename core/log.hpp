// SPDX-License-Identifier: MIT
// The library's diagnostics: one line each, saying what failed, why, and what happens now.
//
// By default a line goes to stderr as `ringchat: <message>` (`ringchat: error: ...` for errors).
// A program routes them to its own logger with set_sink(), and picks how much it wants with
// set_level() or the environment: RINGCHAT_LOG=debug|info|warning|error, or `quiet` (the same
// as `warning`: info lines silenced, warnings and errors kept). The default is info.
//
// set_sink() and set_level() are for the start of a program, before reactors run; the sink may
// be called from every thread that runs a reactor, so it must be safe to call concurrently.
#pragma once

#include <functional>
#include <string_view>
#include <utility>

#include <fmt/core.h>

namespace ringchat::log {

enum class level { debug, info, warning, error };

/// "debug", "info", "warning", "error".
std::string_view name(level l) noexcept;

/// Receives each line the library logs (the message, without prefix or newline).
using sink = std::function<void(level, std::string_view message)>;

/// Routes every later line to `s`; an empty sink restores the default (stderr).
void set_sink(sink s);

/// Lines below `l` are dropped before they are formatted. Overrides RINGCHAT_LOG.
void set_level(level l) noexcept;

/// Whether a line at `l` would be delivered now.
bool enabled(level l) noexcept;

/// Delivers one line (already formatted) to the sink, if `l` is enabled.
void write(level l, std::string_view message);

template <class... Args>
void at(level l, fmt::format_string<Args...> format, Args&&... args) {
    if (enabled(l)) {
        write(l, fmt::format(format, std::forward<Args>(args)...));
    }
}

template <class... Args>
void debug(fmt::format_string<Args...> format, Args&&... args) {
    at(level::debug, format, std::forward<Args>(args)...);
}

template <class... Args>
void info(fmt::format_string<Args...> format, Args&&... args) {
    at(level::info, format, std::forward<Args>(args)...);
}

template <class... Args>
void warning(fmt::format_string<Args...> format, Args&&... args) {
    at(level::warning, format, std::forward<Args>(args)...);
}

template <class... Args>
void error(fmt::format_string<Args...> format, Args&&... args) {
    at(level::error, format, std::forward<Args>(args)...);
}

}  // namespace ringchat::log
