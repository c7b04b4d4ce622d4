// SPDX-License-Identifier: MIT
// examples/smtp/session.hpp — the smtp example's session: one connection's dialogue
// (protocol.hpp decides what each line means), each message accepted written to the maildir.
// Apart from the program (main.cpp: the command line, the maildir's checks, the listener,
// serve()), so that tests run it over any transport (tests/examples/test_sessions.cpp: a
// scripted peer, no socket).
//
//     smtp::mailbox box;  box.conf.maildir = dir;      // with tmp/, new/ and cur/ in it
//     chat::serve_options so;
//     so.channel = smtp::channel_options();
//     chat::serve(r, l, [&r, &box](chat::channel& ch) { return smtp::session(ch, r, box); }, so);
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "chat/channel.hpp"
#include "chat/transport.hpp"
#include "core/reactor.hpp"
#include "core/task.hpp"

namespace smtp {

struct config {
    std::filesystem::path maildir;
    std::size_t max_size = 10 * 1024 * 1024;
    std::string hostname = "ringchat.local";
    std::chrono::nanoseconds command_timeout = std::chrono::minutes(5);  // §4.5.3.2.7
    std::chrono::nanoseconds data_timeout = std::chrono::minutes(3);     // §4.5.3.2.5
    /// STARTTLS (RFC 3207): offered when set; it makes the TLS transport over the plaintext
    /// one (chat::channel::replace_transport()).
    std::function<std::unique_ptr<ringchat::chat::transport>(
        std::unique_ptr<ringchat::chat::transport>)>
        starttls;
};

/// What the server shares between its sessions: where mail goes, and unique file names.
struct mailbox {
    config conf;
    std::atomic<std::uint64_t> delivered{0};
};

/// The channel options the server runs its connections with: max_frame = max_line (a longer
/// command line is refused, not buffered), and 5 minutes without a byte closes (§4.5.3.2.7).
ringchat::chat::channel_options channel_options();

/// One SMTP session: the greeting, then one reply per command line, in order; a message
/// after DATA is written to box's maildir (tmp/, then renamed into new/) as it comes. QUIT
/// closes once its 221 is sent. `box` outlives the session.
ringchat::task<> session(ringchat::chat::channel& ch, ringchat::reactor& r, mailbox& box);

}  // namespace smtp
