// SPDX-License-Identifier: MIT
// tests/support/tls_relay.hpp — a channel's transport and a plaintext peer socket, over a
// wire (plain or TLS), so that a test whose peer reads and writes a socket runs over TLS too.
//
//     auto [ours, peer] = test::wired_pair(r, w);   // w: test::wire (scripted_peer.hpp)
//     channel ch(std::move(ours));
//     ... the peer reads and writes plaintext on `peer`, as over a socket pair ...
//
// Plaintext: a socket pair; `ours` is a socket_transport over one end, `peer` the other.
// TLS: two socket pairs. `ours` is a chat::tls_transport (a server context, the test
// certificate for localhost) over the first; a relay on the reactor runs a TLS client
// (tls::engine, verifying against the test CA) between the other end of it and the second
// pair, whose other end is `peer`. What the peer does reads on the channel as it would in
// plaintext, and the other way round:
//   - the peer's end of stream (shutdown(SHUT_WR), a close) is close_notify, then FIN;
//   - the channel's close (close_notify and FIN; a FIN alone, a TLS truncation; a FIN before
//     the handshake is done) is an end of stream on `peer`, after everything decrypted before;
//   - a reset on either side (TCP: wired_tcp_pair) is a reset on the other, and so is a TLS
//     failure other than a truncation;
//   - back-pressure: the relay holds at most one receive's worth each way (16 KiB and its
//     record), so a peer that stops reading stops the relay reading the channel, and a
//     channel that stops reading stops the relay reading the peer.
// Invariant: the relay is three tasks spawned on the reactor that end by themselves once both
// sides are done (each end of stream seen, or a reset); its two sockets close then. So a test
// under test::run() sees no task and no descriptor left once its body's sockets are closed.
#pragma once

#include <memory>
#include <system_error>

#include "chat/transport.hpp"
#include "core/reactor.hpp"
#include "core/socket.hpp"
#include "core/task.hpp"
#include "tests/support/scripted_peer.hpp"

namespace ringchat::test {

/// What a channel test holds: the channel's transport and the peer's plaintext socket.
struct wired {
    std::unique_ptr<chat::transport> ours;
    ringchat::socket peer;
};

/// Over AF_UNIX socket pairs (test::socket_pair()).
wired wired_pair(reactor& r, wire w);
/// Over TCP on 127.0.0.1 (test::tcp_pair()): for resets, and the kernel's TCP buffers.
task<wired> wired_tcp_pair(reactor& r, wire w);

/// Completes once `t`'s TLS handshake is done, with its error (at once, empty, for any other
/// transport): for a test whose deadline starts where, in plaintext, the peer's data would
/// already be there.
task<std::error_code> handshake(chat::transport& t);

}  // namespace ringchat::test
