// SPDX-License-Identifier: MIT
// examples/common/cli.hpp — the command-line conventions every program of the repository
// follows (the examples, raw_echo, bench's programs and baselines). Header-only and free of
// ringchat (the standard library and version.hpp only), so that the hand-written baselines
// still share none of ringchat's code.
//
//     prog --help        the usage on stdout, exit 0
//     prog --version     "prog (ringchat) 0.1.0" on stdout, exit 0
//     a bad option       "prog: what is wrong" and "try 'prog --help'" on stderr, exit 2
//     a start-up error   "prog: what failed" on stderr, exit 1 (port in use, no permission ...)
//
// cli::args walks argv for a program with a few long options:
//
//     cli::args a("loadgen", usage, argc, argv);   // usage: the --help text
//     while (a.next()) {                            // --help and --version exit here
//         if (a.is("--port")) {
//             port = a.number<int>("a port number", 1, 65535);   // or a usage error
//         } else if (a.flag("--lines")) {
//             lines = true;
//         } else {
//             a.unknown();                          // "unknown option '--frob'", exit 2
//         }
//     }
#pragma once

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <system_error>

#include "version.hpp"

namespace ringchat::cli {

/// Prints "<program>: <why>" and "try '<program> --help'" to stderr and exits 2.
[[noreturn]] inline void usage_error(std::string_view program, std::string_view why) {
    std::fprintf(stderr, "%.*s: %.*s\ntry '%.*s --help'\n", static_cast<int>(program.size()),
                 program.data(), static_cast<int>(why.size()), why.data(),
                 static_cast<int>(program.size()), program.data());
    std::exit(2);
}

/// Prints "<program>: <why>" to stderr and exits 1: the program could not start.
[[noreturn]] inline void startup_error(std::string_view program, std::string_view why) {
    std::fprintf(stderr, "%.*s: %.*s\n", static_cast<int>(program.size()), program.data(),
                 static_cast<int>(why.size()), why.data());
    std::exit(1);
}

/// If `arg` is --help (or -h), prints `usage` to stdout; if it is --version, prints
/// "<program> (ringchat) <version>". Either way exits 0; any other `arg` returns.
inline void help_or_version(std::string_view program, std::string_view arg,
                            std::string_view usage) {
    if (arg == "--help" || arg == "-h") {
        std::fwrite(usage.data(), 1, usage.size(), stdout);
        std::exit(0);
    }
    if (arg == "--version") {
        std::printf("%.*s (ringchat) %s\n", static_cast<int>(program.size()), program.data(),
                    RINGCHAT_VERSION);
        std::exit(0);
    }
}

/// Parses all of `text` as a number in [min, max] (integers: decimal; floating point: as
/// strtod without hex or infinities); false if it is not one.
template <class T>
bool parse_number(std::string_view text, T& out, T min, T max) noexcept {
    T v{};
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !(v >= min) ||
        !(v <= max)) {
        return false;
    }
    out = v;
    return true;
}

/// A walk over argv's long options: `--name VALUE`, `--name=VALUE`, `--flag`.
class args {
public:
    args(std::string_view program, std::string_view usage, int argc, char** argv) noexcept
        : program_(program), usage_(usage), argc_(argc), argv_(argv) {}

    /// Moves to the next argument; false when there is none. Exits on --help and --version.
    bool next() {
        if (++i_ >= argc_) {
            return false;
        }
        name_ = argv_[i_];
        help_or_version(program_, name_, usage_);
        if (!name_.starts_with("--")) {
            error("unexpected argument '" + std::string(name_) + "'");
        }
        inline_ = name_.find('=') != std::string_view::npos;
        if (inline_) {
            value_ = name_.substr(name_.find('=') + 1);
            name_ = name_.substr(0, name_.find('='));
        }
        return true;
    }

    /// The option at hand, without any "=VALUE" ("--port").
    std::string_view name() const noexcept { return name_; }
    /// Whether the option at hand is `option` (one that takes a value).
    bool is(std::string_view option) const noexcept { return name_ == option; }
    /// Whether the option at hand is the flag `option`; a usage error if it has "=VALUE".
    bool flag(std::string_view option) const {
        if (name_ != option) {
            return false;
        }
        if (inline_) {
            error(std::string(name_) + ": takes no value");
        }
        return true;
    }

    /// The value of the option at hand (after '=', or the next argument); a usage error if
    /// there is none.
    std::string_view value() {
        if (!inline_) {
            if (i_ + 1 >= argc_) {
                error(std::string(name_) + ": needs a value");
            }
            value_ = argv_[++i_];
            inline_ = true;  // taken: a second value() returns the same
        }
        return value_;
    }

    /// The value as a number in [min, max]; else a usage error "--NAME: not WHAT: 'VALUE'".
    template <class T>
    T number(std::string_view what, T min, T max) {
        T v{};
        if (!parse_number(value(), v, min, max)) {
            bad_value(what);
        }
        return v;
    }

    /// "--NAME: not WHAT: 'VALUE'", exit 2.
    [[noreturn]] void bad_value(std::string_view what) const {
        error(std::string(name_) + ": not " + std::string(what) + ": '" + std::string(value_) +
              "'");
    }
    /// "unknown option '--NAME'", exit 2.
    [[noreturn]] void unknown() const {
        error("unknown option '" + std::string(name_) + "'");
    }
    [[noreturn]] void error(const std::string& why) const { usage_error(program_, why); }

private:
    std::string_view program_;
    std::string_view usage_;
    int argc_;
    char** argv_;
    int i_ = 0;
    std::string_view name_;
    std::string_view value_;
    bool inline_ = false;  // value_ is known (it came after '=', or value() took it)
};

}  // namespace ringchat::cli
