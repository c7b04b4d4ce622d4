// SPDX-License-Identifier: MIT
// The README's example: an echo server on the core API alone (no framing), on io_uring or
// epoll. Usage: raw_echo [ADDRESS]   (default 127.0.0.1:7000; also "[::1]:7000", "unix:/p")
#include "core/listener.hpp"
#include "core/log.hpp"
#include "core/reactor.hpp"
#include "core/receiver.hpp"

using namespace ringchat;

task<> echo(ringchat::socket s) {
    receiver in(s);                                    // multishot recv, pooled buffers
    while (auto chunk = co_await in.next()) {
        if (chunk->empty() || !co_await s.send_all(chunk->data())) {
            break;                                     // peer closed, or a send failed
        }
    }
}

task<> serve(reactor& r, listener l) {
    while (auto s = co_await l.accept()) {
        r.spawn(echo(std::move(*s)));
    }
}

int main(int argc, char** argv) {
    reactor r;                                         // RINGCHAT_BACKEND=uring|epoll|auto
    auto l = listener::bind(r, address::parse(argc > 1 ? argv[1] : "127.0.0.1:7000").value());
    log::info("echo on {} ({})", l.value().local_address().to_string(), r.backend_name());
    r.stop_on_signals();                               // Ctrl-C: a graceful stop
    r.spawn(serve(r, std::move(*l)));
    r.run();
}
