// SPDX-License-Identifier: MIT
// tests/support/scripted_peer.hpp — the peer of a channel in a protocol test, in plaintext or
// over TLS, behind one interface, so that one test body runs a conversation both ways.
//
//     auto s = test::make_scripted(r, options, test::wire::tls);
//     s.peer->feed("PING\r\n");   // plaintext; over TLS encrypted, one record per feed()
//     ... the session runs on *s.ch ...
//     CHECK(s.peer->take_sent() == "+PONG\r\n");   // decrypted
//
// Plaintext: the channel's transport is a chat::memory_transport and the peer drives it as a
// test would by hand. TLS: the channel's transport is a chat::tls_transport (a server, the
// test certificate for localhost) over a memory_transport, and the peer is a TLS client
// (tls::engine, verifying against the test CA) that a pump coroutine drives at every reactor
// turn: it carries ciphertext both ways, completes the handshake, encrypts what the test fed
// (each chunk its own record; chunks fed before the handshake is done wait for it, then go
// together) and decrypts what the channel sent.
// Invariant: the pump touches the memory transport only while the peer lives; a scripted
// conversation destroys its channel and its peer together (no reactor turn between).
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "chat/channel.hpp"
#include "chat/memory_transport.hpp"
#include "core/reactor.hpp"

namespace ringchat::test {

/// What runs between the channel and the peer.
enum class wire { plain, tls };

/// The wires this build can test: plain, and tls where TLS is built (RINGCHAT_HAS_TLS).
std::vector<wire> wires();
const char* to_string(wire w) noexcept;

class scripted_peer {
public:
    virtual ~scripted_peer() = default;

    /// One chunk of plaintext from the peer (over TLS: one record).
    virtual void feed(std::string_view bytes) = 0;
    void feed(std::span<const std::string> chunks) {
        for (const std::string& c : chunks) {
            feed(c);
        }
    }
    /// The peer ends its stream after what it fed (over TLS: close_notify first).
    virtual void feed_end() = 0;

    /// Plaintext the channel sent that the peer has not taken yet.
    virtual const std::string& sent() = 0;
    virtual std::string take_sent() = 0;
    /// The peer reads no more once `bytes` are unread (0: it stopped reading); over TLS the
    /// window counts ciphertext, and applies once the handshake is done.
    virtual void set_window(std::size_t bytes) = 0;
    /// Each send of the channel's transport takes at most `bytes` (of ciphertext, over TLS).
    virtual void set_send_capacity(std::size_t bytes) = 0;
    /// How the channel ended the connection.
    virtual chat::memory_transport::end state() = 0;
    /// Over TLS: the channel's close_notify arrived (always true in plaintext: nothing to
    /// tell a clean end from a cut one but the protocol).
    virtual bool close_notified() = 0;
    /// The peer's own TLS failure (a record it could not decrypt ...); empty in plaintext.
    virtual std::error_code failure() = 0;
};

/// A channel with `options` and its scripted peer, over `w`.
struct scripted {
    std::unique_ptr<scripted_peer> peer;
    std::unique_ptr<chat::channel> ch;  // TRICKY: after peer, so destroyed before it
};

scripted make_scripted(reactor& r, const chat::channel_options& options, wire w);

}  // namespace ringchat::test
