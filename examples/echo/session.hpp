// SPDX-License-Identifier: MIT
// examples/echo/session.hpp — the echo example's session: what one connection does, apart
// from the program (main.cpp: the command line, the listener, serve()), so that tests run it
// over any transport (tests/examples/test_sessions.cpp: a scripted peer, no socket).
//
//     chat::serve(r, l, &echo::echo_lines, {.channel = echo::channel_options()});
#pragma once

#include "chat/channel.hpp"
#include "core/task.hpp"

namespace echo {

/// The channel options the server runs its connections with (the defaults: a line of 64 KiB
/// at most, 60 s for a line and for a send).
ringchat::chat::channel_options channel_options();

/// One connection: each line back, with its "\n". A line over max_frame (64 KiB) or the
/// peer's close ends the session; serve() then flushes what is queued and closes.
ringchat::task<> echo_lines(ringchat::chat::channel& ch);

}  // namespace echo
