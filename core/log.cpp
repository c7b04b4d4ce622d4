// SPDX-License-Identifier: MIT
// core/log.cpp — the sink and the level, process-wide.
#include "log.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>

namespace ringchat::log {
namespace {

std::optional<level> parse(std::string_view v) noexcept {
    if (v == "debug") {
        return level::debug;
    }
    if (v == "info") {
        return level::info;
    }
    if (v == "warning" || v == "quiet") {
        return level::warning;
    }
    if (v == "error") {
        return level::error;
    }
    return std::nullopt;
}

level from_environment() noexcept {
    const char* v = std::getenv("RINGCHAT_LOG");
    if (v == nullptr || *v == '\0') {
        return level::info;
    }
    if (auto l = parse(v)) {
        return *l;
    }
    std::fprintf(stderr,
                 "ringchat: RINGCHAT_LOG=%s is not a level (debug, info, warning, error, quiet); "
                 "logging at info\n",
                 v);
    return level::info;
}

std::atomic<level>& threshold() noexcept {
    static std::atomic<level> value{from_environment()};
    return value;
}

// The sink is set rarely (at start) and read on every line: a mutex keeps a line from racing
// a set_sink() on another thread; lines are rare enough that it costs nothing that matters.
std::mutex sink_mutex;
sink installed;

void to_stderr(level l, std::string_view message) {
    // One fprintf per line: lines from several threads do not interleave.
    const char* prefix = l == level::error ? "error: " : l == level::warning ? "warning: " : "";
    std::fprintf(stderr, "ringchat: %s%.*s\n", prefix, static_cast<int>(message.size()),
                 message.data());
}

}  // namespace

std::string_view name(level l) noexcept {
    switch (l) {
        case level::debug:
            return "debug";
        case level::info:
            return "info";
        case level::warning:
            return "warning";
        case level::error:
            return "error";
    }
    return "?";
}

void set_sink(sink s) {
    std::lock_guard lock(sink_mutex);
    installed = std::move(s);
}

void set_level(level l) noexcept { threshold().store(l, std::memory_order_relaxed); }

bool enabled(level l) noexcept { return l >= threshold().load(std::memory_order_relaxed); }

void write(level l, std::string_view message) {
    if (!enabled(l)) {
        return;
    }
    std::lock_guard lock(sink_mutex);
    if (installed) {
        installed(l, message);
    } else {
        to_stderr(l, message);
    }
}

}  // namespace ringchat::log
