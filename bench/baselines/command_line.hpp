// SPDX-License-Identifier: MIT
// bench/baselines/command_line.hpp — the hand-written baselines' command line, one for both:
// [--port P] [--lines], --help, --version, with the conventions of examples/common/cli.hpp
// (header-only, no ringchat).
#pragma once

#include <string>

#include "examples/common/cli.hpp"

namespace baselines {

struct options {
    int port = 0;        ///< on 127.0.0.1; 0 = any free port
    bool lines = false;  ///< --lines: echo line by line through a handler (lines.hpp)
};

/// Parses argv for `program` ("epoll_echo"), which runs on `backend` ("epoll"); exits 0 on
/// --help and --version, 2 on a bad option.
inline options parse_options(const char* program, const char* backend, int argc, char** argv) {
    const std::string usage =
        std::string("usage: ") + program + " [--port P] [--lines]\n" + "The hand-written " +
        backend + " echo server the bench suite measures ringchat against.\n\noptions:\n" +
        "  --port P     the port on 127.0.0.1 (default 0: any free port)\n"
        "  --lines      find each line and echo it through a handler, as a line server does\n"
        "  --help       show this help and exit\n"
        "  --version    show the version and exit\n";
    options o;
    ringchat::cli::args a(program, usage, argc, argv);
    while (a.next()) {
        if (a.is("--port")) {
            o.port = a.number("a port number", 0, 65535);
        } else if (a.flag("--lines")) {
            o.lines = true;
        } else {
            a.unknown();
        }
    }
    return o;
}

}  // namespace baselines
