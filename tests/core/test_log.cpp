// SPDX-License-Identifier: MIT
// core/log: a program routes the library's lines to its own sink and chooses the level.
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include <fmt/format.h>

#include "core/log.hpp"

using namespace ringchat;

namespace {

struct captured {
    std::vector<std::pair<log::level, std::string>> lines;
};

// Installs a capturing sink for one test; puts the default sink and level back after it.
struct capture_scope {
    captured got;
    explicit capture_scope(log::level threshold) {
        log::set_level(threshold);
        log::set_sink([this](log::level l, std::string_view m) { got.lines.emplace_back(l, m); });
    }
    ~capture_scope() {
        log::set_sink({});
        log::set_level(log::level::warning);  // tests run with RINGCHAT_LOG=quiet
    }
};

// Counts how often fmt formats it: a dropped line must not be formatted at all.
struct counted {
    int* formats;
};

}  // namespace

template <>
struct fmt::formatter<counted> : fmt::formatter<std::string_view> {
    auto format(const counted& c, format_context& ctx) const {
        ++*c.formats;
        return fmt::formatter<std::string_view>::format("counted", ctx);
    }
};

TEST_CASE("an installed sink receives the library's lines with their level", "[log]") {
    capture_scope scope(log::level::debug);
    log::info("listening on {}", 7000);
    log::error("cannot {}: {}", "bind", "Address already in use");
    log::debug("turn {}", 3);
    log::warning("accepts paused");
    REQUIRE(scope.got.lines.size() == 4);
    CHECK(scope.got.lines[0] == std::pair{log::level::info, std::string("listening on 7000")});
    CHECK(scope.got.lines[1] ==
          std::pair{log::level::error, std::string("cannot bind: Address already in use")});
    CHECK(scope.got.lines[2].first == log::level::debug);
    CHECK(scope.got.lines[3].first == log::level::warning);
}

TEST_CASE("lines below the level are dropped before they are formatted", "[log]") {
    capture_scope scope(log::level::warning);
    CHECK_FALSE(log::enabled(log::level::info));
    CHECK(log::enabled(log::level::error));
    int formats = 0;
    log::info("dropped {}", counted{&formats});
    log::debug("dropped {}", counted{&formats});
    CHECK(formats == 0);
    log::error("kept {}", counted{&formats});
    CHECK(formats == 1);
    REQUIRE(scope.got.lines.size() == 1);
    CHECK(scope.got.lines[0].second == "kept counted");

    log::set_level(log::level::error);
    log::warning("dropped too");
    CHECK(scope.got.lines.size() == 1);
}

TEST_CASE("level names are the words RINGCHAT_LOG takes", "[log]") {
    CHECK(log::name(log::level::debug) == "debug");
    CHECK(log::name(log::level::info) == "info");
    CHECK(log::name(log::level::warning) == "warning");
    CHECK(log::name(log::level::error) == "error");
}
