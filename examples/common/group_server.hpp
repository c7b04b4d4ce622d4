// SPDX-License-Identifier: MIT
// examples/common/group_server.hpp — run_server() for --threads N: the same program on a
// reactor_group, its connections spread over the reactors (chat::serve on a group).
//
//     cli.threads();                                       // offers --threads N
//     const auto opts = cli.parse(argc, argv);
//     if (opts.threads != 1) {
//         return examples::run_group_server("echo", opts, &echo_lines);
//     }
//     return examples::run_server("echo", opts, &serve_echo);
//
// The same ready line (once every reactor listens), the same exit codes: 1 when a reactor or
// a listener cannot be made, 0 after SIGINT/SIGTERM stopped every reactor gracefully. After a
// clean stop, one line on stderr says how many connections each reactor served:
//     echo: connections served by each reactor: 3 2
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "chat/serve.hpp"
#include "core/reactor_group.hpp"
#include "examples/common/options.hpp"

namespace ringchat::examples {

/// Serves `handler` (as chat::serve(group, ...) takes it) at opts.where() on opts.threads
/// reactors (0: one per CPU), placed as `o.place` says (default: a SO_REUSEPORT listener
/// each). `handler` may instead be a `make(reactor_group&)` that returns the handler, called
/// once the group is made (for state per reactor). `each`, when given, is called on every
/// reactor k as it starts, before it serves: for work of its own there (a spawn).
/// \return main's exit code.
template <class Handler>
int run_group_server(std::string_view program, const common_options& opts, Handler make,
                     chat::group_serve_options o = {},
                     const std::function<void(reactor&, unsigned)>& each = {}) {
    try {
        group_options go;
        go.threads = opts.threads;
        go.pin = opts.pin;
        go.reactor = opts.reactor();
        reactor_group g(go);
        auto handler = [&] {
            if constexpr (std::is_invocable_v<Handler&, reactor_group&>) {
                return make(g);
            } else {
                return make;
            }
        }();
        // Before the ready line, which tells a script that it may send SIGTERM.
        g.stop_on_signals();
        const std::string name(program);
        const address at = opts.where();
        std::vector<std::shared_ptr<chat::serve_state>> states;
        if (o.states == nullptr) {
            o.states = &states;
        }
        int rc = 0;
        g.run([&](reactor& r, unsigned k) -> task<> {
            if (each) {
                each(r, k);
            }
            if (k != 0) {
                co_return;  // reactor k serves what serve() hands it
            }
            o.ready = [&](const address& bound) {
                announce_ready(name, bound, r.backend_name(), opts.tls_mode());
            };
            const std::error_code e = co_await chat::serve(g, at, handler, o);
            if (e) {
                fmt::print(stderr, "{}: cannot listen on {}: {}\n", name, at.to_string(),
                           e.message());
                rc = 1;
                g.request_stop();
            }
        });
        if (rc == 0 && !o.states->empty()) {  // it served (a bind that failed said so)
            std::string served;
            for (const auto& s : *o.states) {
                served += fmt::format(" {}", s->served);
            }
            fmt::print(stderr, "{}: connections served by each reactor:{}\n", name, served);
        }
        return rc;
    } catch (const std::exception& e) {
        fmt::print(stderr, "{}: {}\n", program, e.what());
        return 1;
    }
}

}  // namespace ringchat::examples
