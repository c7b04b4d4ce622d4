// SPDX-License-Identifier: MIT
// examples/echo/session.cpp — the echo session (see session.hpp).
#include "examples/echo/session.hpp"

#include <utility>

namespace echo {

using namespace ringchat;

chat::channel_options channel_options() { return {}; }

task<> echo_lines(chat::channel& ch) {
    ch.set_terminator("\n");
    while (auto line = co_await ch.read()) {
        // Small lines are copied into the output queue (appended to the chunk queued last,
        // so they cost no allocation each); a large one the framer joined is handed over.
        ch.push(std::move(line));
        ch.push("\n");
        if (ch.queued_bytes() >= ch.options().low_water) {
            co_await ch.drain();  // a peer that sends but does not read cannot grow our memory
        }
    }
}

}  // namespace echo
