// SPDX-License-Identifier: MIT
// tests/support/tls_relay.cpp — the plaintext pair, and the TLS one: a client engine relayed
// between the channel's socket and the peer's by three tasks (see tls_relay.hpp).
#include "tests/support/tls_relay.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "chat/socket_transport.hpp"
#include "core/io_awaitable.hpp"
#include "tests/support/peers.hpp"
#include "tests/support/support.hpp"
#include "version.hpp"

#if RINGCHAT_HAS_TLS
#include "chat/tls.hpp"
#include "chat/tls_transport.hpp"
#include "tests/support/test_certs.hpp"
#endif

namespace ringchat::test {
namespace {

#if RINGCHAT_HAS_TLS

constexpr std::size_t chunk_size = 16 * 1024;

/// Where one of the relay's tasks waits for the others.
struct park {
    std::coroutine_handle<>& slot;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) noexcept { slot = h; }
    void await_resume() const noexcept {}
};

/// The relay's state, shared by its three tasks; the last one to end closes the sockets.
/// down: the channel's ciphertext, decrypted, to the peer (and the handshake's input).
/// up: the peer's plaintext, encrypted, for the writer; at most one chunk in the writer's hands.
/// writer: the only sender on `cipher` (the handshake's messages, up's records, the FIN).
struct relay_state {
    relay_state(ringchat::socket c, ringchat::socket p)
        : cipher(std::move(c)), plain(std::move(p)), engine(tls_test_contexts::get().client, "localhost") {}

    ringchat::socket cipher;  // the relay's end of the channel's pair
    ringchat::socket plain;   // the relay's end of the peer's pair
    chat::tls::engine engine;
    cancel_source cancel;     // every operation of the relay's: a reset ends them all
    std::string pending;      // ciphertext made and not yet handed to the writer
    bool sending = false;     // the writer is sending a chunk
    bool output_ended = false;  // up is done: after pending, a FIN
    bool write_failed = false;  // the channel's side took no more
    bool down_done = false;
    // A send on that socket failed with ECONNRESET: the error is consumed, and its next
    // receive reads an end of stream, which is then a reset, not an end.
    bool cipher_reset = false;
    bool plain_reset = false;
    bool stopped = false;       // a reset: every task ends now
    std::coroutine_handle<> writer_parked;
    std::coroutine_handle<> up_parked;

    reactor& r() const noexcept { return cipher.owner(); }

    void wake(std::coroutine_handle<>& slot) {
        if (slot) {
            r().schedule(std::exchange(slot, {}));
        }
    }
    /// After every call into the engine: what it made goes to the writer.
    void take_output() {
        const auto out = engine.output();
        if (!out.empty()) {
            pending.append(reinterpret_cast<const char*>(out.data()), out.size());
            engine.consume_output(out.size());
            wake(writer_parked);
        }
    }
    /// A reset on one side (or a TLS failure): a reset on the other, and the relay ends.
    void reset() {
        (void)cipher.reset_on_close();
        (void)plain.reset_on_close();
        stopped = true;
        cancel.cancel();
        wake(writer_parked);
        wake(up_parked);
    }
};

/// Sends all of `data`: empty, or the error that stopped it.
task<std::error_code> send_all(ringchat::socket& s, std::string_view data,
                               cancel_source& cancel) {
    while (!data.empty()) {
        auto n = co_await s.send(ringchat::as_bytes(data)).cancel_with(cancel);
        if (!n) {
            co_return n.error();
        }
        data.remove_prefix(*n);
    }
    co_return std::error_code();
}

task<> writer(std::shared_ptr<relay_state> s) {
    for (;;) {
        while (s->pending.empty() && !s->output_ended && !s->stopped) {
            co_await park{s->writer_parked};
        }
        if (s->stopped) {
            break;
        }
        if (s->pending.empty()) {
            (void)s->cipher.shutdown(SHUT_WR);  // after the peer's close_notify
            break;
        }
        const std::string chunk = std::exchange(s->pending, {});
        s->sending = true;
        auto failed = co_await send_all(s->cipher, chunk, s->cancel);
        s->sending = false;
        s->wake(s->up_parked);
        if (failed) {
            s->write_failed = true;  // the channel is gone; up stops (or a reset did)
            s->cipher_reset = failed == std::errc::connection_reset;
            break;
        }
    }
}

task<> down(std::shared_ptr<relay_state> s) {
    std::byte buf[chunk_size];
    std::byte clear_buf[chunk_size];
    std::string clear;
    bool ended = false;
    while (!ended) {
        auto n = co_await s->cipher.recv(buf).cancel_with(s->cancel);
        if (!n) {
            if (n.error() != std::errc::operation_canceled) {
                s->reset();  // the channel reset: the peer is reset
            }
            break;
        }
        if (*n == 0 && s->cipher_reset) {
            s->reset();  // the writer met the channel's reset first
            break;
        }
        if (*n == 0) {
            s->engine.feed_eof();
            ended = true;
        } else {
            s->engine.feed(std::span(buf, *n));
        }
        bool failed = false;
        for (;;) {
            auto got = s->engine.read(clear_buf);
            if (!got) {
                // A FIN without close_notify is an end of stream in plaintext too, and so is
                // one before the handshake is done (a channel closed at once: there is no
                // session to close_notify); anything else (a bad record, a failed handshake)
                // breaks the connection.
                failed = got.error() != make_error_code(chat::tls::errc::truncated) &&
                         got.error() != make_error_code(chat::tls::errc::closed_in_handshake);
                break;
            }
            if (*got == 0) {
                break;
            }
            clear.append(reinterpret_cast<const char*>(clear_buf), *got);
        }
        s->take_output();  // the handshake's messages; an alert
        if (s->engine.handshake_done()) {
            s->wake(s->up_parked);
        }
        if (failed) {
            s->reset();
            break;
        }
        ended = ended || s->engine.closed();
        if (!clear.empty()) {
            auto failed = co_await send_all(s->plain, clear, s->cancel);
            clear.clear();
            if (failed) {
                s->plain_reset = failed == std::errc::connection_reset;
                break;  // the peer is gone (it reads nothing more), or a reset
            }
        }
        if (ended) {
            (void)s->plain.shutdown(SHUT_WR);  // the channel's close: the peer's end of stream
        }
    }
    s->down_done = true;
    s->wake(s->up_parked);
}

task<> up(std::shared_ptr<relay_state> s) {
    while (!s->engine.handshake_done() && !s->down_done && !s->stopped) {
        co_await park{s->up_parked};  // what the peer sent meanwhile waits in its socket
    }
    std::byte buf[chunk_size];
    while (s->engine.handshake_done() && !s->stopped) {
        auto n = co_await s->plain.recv(buf).cancel_with(s->cancel);
        if (!n) {
            if (n.error() != std::errc::operation_canceled) {
                s->reset();  // the peer reset: the channel is reset
            }
            break;
        }
        if (*n == 0 && s->plain_reset) {
            s->reset();  // down met the peer's reset first
            break;
        }
        if (*n == 0) {
            s->engine.shutdown();  // the peer's end of stream: close_notify, then the FIN
            s->take_output();
            break;
        }
        auto taken = s->engine.write(std::span<const std::byte>(buf, *n));
        s->take_output();
        if (!taken) {
            break;  // the engine ended (the channel's stream was cut): nowhere to send it
        }
        // Back-pressure: nothing more is read from the peer until this chunk is sent.
        while ((!s->pending.empty() || s->sending) && !s->write_failed && !s->stopped) {
            co_await park{s->up_parked};
        }
        if (s->write_failed) {
            break;
        }
    }
    s->output_ended = true;
    s->wake(s->writer_parked);
}

wired relay(reactor& r, std::pair<ringchat::socket, ringchat::socket> channel_side,
            std::pair<ringchat::socket, ringchat::socket> peer_side) {
    auto s = std::make_shared<relay_state>(std::move(channel_side.second),
                                           std::move(peer_side.first));
    if (auto hello = s->engine.handshake(); !hello) {  // the ClientHello
        throw std::system_error(hello.error(), "tls_relay: the client's handshake");
    }
    s->take_output();
    r.spawn(writer(s));
    r.spawn(down(s));
    r.spawn(up(s));
    return {std::make_unique<chat::tls_transport>(std::move(channel_side.first),
                                                  tls_test_contexts::get().server),
            std::move(peer_side.second)};
}

#endif  // RINGCHAT_HAS_TLS

}  // namespace

wired wired_pair(reactor& r, wire w) {
#if RINGCHAT_HAS_TLS
    if (w == wire::tls) {
        auto channel_side = socket_pair(r);
        auto peer_side = socket_pair(r);
        return relay(r, std::move(channel_side), std::move(peer_side));
    }
#else
    (void)w;
#endif
    auto [ours, peer] = socket_pair(r);
    return {std::make_unique<chat::socket_transport>(std::move(ours)), std::move(peer)};
}

task<wired> wired_tcp_pair(reactor& r, wire w) {
#if RINGCHAT_HAS_TLS
    if (w == wire::tls) {
        auto channel_side = co_await tcp_pair(r);
        auto peer_side = co_await tcp_pair(r);
        // The relay is one more hop: no Nagle delay on it (a peer that trickles bytes).
        (void)channel_side.second.set_nodelay(true);
        (void)peer_side.first.set_nodelay(true);
        co_return relay(r, std::move(channel_side), std::move(peer_side));
    }
#else
    (void)w;
#endif
    auto [ours, peer] = co_await tcp_pair(r);
    co_return wired{std::make_unique<chat::socket_transport>(std::move(ours)), std::move(peer)};
}

task<std::error_code> handshake(chat::transport& t) {
#if RINGCHAT_HAS_TLS
    if (auto* tls = dynamic_cast<chat::tls_transport*>(&t)) {
        auto e = co_await tls->handshake();
        co_return e;
    }
#else
    (void)t;
#endif
    co_return std::error_code();
}

}  // namespace ringchat::test
