// SPDX-License-Identifier: MIT
// The lingering close (see linger.hpp).
#include "examples/common/linger.hpp"

#include <sys/socket.h>

#include <memory>

#include "core/reactor.hpp"

namespace ringchat::examples {
namespace {

/// Closes `ch` once `limit` has passed, unless the lingering read ended first (*done).
/// TRICKY: a spawned task starts at the reactor's next turn, when the lingering may be over
/// and the channel gone: it gets the reactor, and touches the channel only if *done is false.
task<> close_later(reactor& r, chat::channel& ch, std::chrono::milliseconds limit,
                   std::shared_ptr<bool> done) {
    auto slept = co_await r.sleep_for(limit);  // ECANCELED when the server stops
    (void)slept;
    if (!*done) {
        ch.close();  // still lingering: the channel is alive, and its read ends now
    }
}

}  // namespace

task<> lingering_close(chat::channel& ch, std::chrono::milliseconds limit, std::size_t most) {
    co_await ch.flush();
    if (!ch.is_open()) {
        co_return;
    }
    ch.end_output();
    auto done = std::make_shared<bool>(false);
    ch.owner().spawn(close_later(ch.owner(), ch, limit, done));
    ch.set_terminator(chat::terminator::none());  // whatever arrives, as it arrives
    std::size_t seen = 0;
    while (seen < most) {
        auto junk = co_await ch.read();
        if (!junk) {
            break;
        }
        seen += junk.data().size();
    }
    *done = true;
}

}  // namespace ringchat::examples
