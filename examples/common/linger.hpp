// SPDX-License-Identifier: MIT
// examples/common/linger.hpp — the end of a connection after an error reply, without losing
// the reply (a "lingering close", RFC 9112 §9.6): send everything, half-close, then read and
// drop what the client still sends until it closes, for a while and a number of bytes at
// most. Closing with unread input would make the kernel reset the connection, and a reset
// can destroy the reply before the client reads it. http and resp share it.
#pragma once

#include <chrono>
#include <cstddef>

#include "chat/channel.hpp"
#include "core/task.hpp"

namespace ringchat::examples {

/// Flushes `ch`, half-closes it, and reads until the peer closes, `most` bytes arrived or
/// `limit` passed (or the server stops). The channel must outlive the returned task.
task<> lingering_close(chat::channel& ch, std::chrono::milliseconds limit = std::chrono::seconds(2),
                       std::size_t most = 1 << 20);

}  // namespace ringchat::examples
