// SPDX-License-Identifier: MIT
// chat/tls_transport.hpp — a channel over TLS: OpenSSL transforms, the reactor does the I/O.
//
//     auto ctx = chat::tls::context::server({.cert_file = "cert.pem", .key_file = "key.pem"});
//     chat::channel ch(std::make_unique<chat::tls_transport>(std::move(sock), *ctx));
//     // ... the session reads and pushes plaintext, as over a socket
//
// Underneath is a socket_transport (provided buffers, sends in the ring; or any transport):
// ciphertext it
// receives goes into a tls::engine (chat/tls.hpp), and the plaintext that comes out is handed
// to the channel; the channel's sends are encrypted and the ciphertext sent. A pump coroutine
// drives the handshake from the start (a server's first read, or a client's first send, does
// not have to), and reads the socket while the channel waits for input, so that a channel that
// stops reading (back-pressure) stops the socket too. The handshake has a deadline of its own.
// A close sends close_notify first where the connection ends in order (with one send(2) at
// once; where ciphertext is still in flight then, the close_notify is left out).
// Errors: a failed handshake (a plaintext client, a certificate that fails verification, no
// protocol in common, the deadline) ends the input with the engine's error, whose message
// says why; a send waiting on it fails with ECONNABORTED. The peer's close_notify is a clean
// end of stream; an end of stream without it is tls::errc::truncated.
// Invariant: ciphertext is sent in the order the engine made it, from buffers of the
// transport's own that stay put while a send is in flight.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include "socket_transport.hpp"
#include "tls.hpp"
#include "../core/ring_deque.hpp"
#include "../core/task.hpp"

namespace ringchat::chat {

struct tls_options {
    /// A client: the name sent as SNI and checked against the server's certificate (see
    /// tls::engine). Empty on a server.
    std::string server_name;
    /// The whole handshake, from the transport's making: past it, the input ends with
    /// tls::errc::handshake_timeout and the connection closes. 0 = none.
    std::chrono::nanoseconds handshake_timeout{std::chrono::seconds(10)};
};

class tls_transport final : public transport {
public:
    /// TLS over `s` with `ctx`'s role (a server or a client context).
    /// \throws std::invalid_argument as tls::engine does (a bad server_name).
    tls_transport(ringchat::socket s, const tls::context& ctx, tls_options options = {});
    /// TLS over any transport: a memory_transport in tests, or the plaintext one a channel
    /// already has (STARTTLS: channel::replace_transport()).
    tls_transport(std::unique_ptr<transport> under, const tls::context& ctx,
                  tls_options options = {});
    ~tls_transport() override;

    /// The connection's TLS state: ALPN, SNI, version, cipher, the peer's verification.
    const tls::engine& engine() const noexcept { return engine_; }
    /// Completes once the handshake is done (empty) or failed (its error).
    task<std::error_code> handshake();

    std::optional<result<recv_buffer>> try_receive() noexcept override;
    void wait_receive(std::coroutine_handle<> h, clock::time_point deadline) noexcept override;
    std::size_t received() const noexcept override { return plain_.size(); }
    void stop_receiving() noexcept override;
    bool start_send(io_request& r) noexcept override;
    void cancel_send(io_request& r) noexcept override;
    void abandon_send(io_request& r) noexcept override;
    void end_output() noexcept override;
    void close_orderly() noexcept override;
    void close_abortive() noexcept override;
    std::error_code failure() const noexcept override {
        return engine_.error() ? engine_.error() : handshake_error_;
    }
    bool input_waiting() noexcept override { return !plain_.empty() || net_->input_waiting(); }
    ringchat::socket* socket() noexcept override { return net_->socket(); }

private:
    struct pump_parked;
    struct handshake_wait;
    task<> pump();
    /// The pump has work: the handshake is not done, or the channel waits for input and none
    /// is decrypted.
    bool pump_wanted() const noexcept;
    clock::time_point pump_deadline() const noexcept;
    /// Feeds a chunk (or the end, an error) from the socket to the engine and decrypts what
    /// it can into plain_.
    void take_ciphertext(result<recv_buffer> chunk) noexcept;
    void decrypt() noexcept;
    /// The engine failed or the handshake's deadline passed: the input ends with `why`, a send
    /// waiting for the handshake fails.
    void fail(std::error_code why) noexcept;
    void after_input() noexcept;
    /// Moves the engine's ciphertext into the send queue and sends what it can.
    void flush() noexcept;
    void send_wire() noexcept;
    void wire_sent(std::int32_t res) noexcept;
    static void on_wire_sent(io_request& r, ready_queue& ready) noexcept;
    /// Encrypts the plaintext `r` asks to send (its ciphertext ends at sending_end_); false
    /// when the engine refuses it (it is shutting down).
    bool encrypt(io_request& r) noexcept;
    /// At a close: sends what is left at once, with send(2) (see the .cpp).
    void send_now() noexcept;
    /// Completes the parked plaintext send with `res` (through the deferred queue).
    void finish_send(std::int32_t res) noexcept;
    void wake_consumer() noexcept;

    std::unique_ptr<transport> net_;  // the ciphertext's transport (a socket_transport)
    tls::engine engine_;
    tls_options options_;
    clock::time_point handshake_deadline_;

    // Input: plaintext for the channel, and its one waiter.
    ring_deque<recv_buffer> plain_;
    std::error_code input_error_;
    std::error_code handshake_error_;  // what ended the handshake (failure())
    bool input_ended_ = false;  // the peer's close_notify and end of stream
    bool timed_out_ = false;
    std::coroutine_handle<> consumer_;
    clock::time_point consumer_deadline_ = clock::time_point::max();
    std::coroutine_handle<> woken_;  // the consumer, queued to resume
    std::coroutine_handle<> pump_parked_;
    bool pump_receiving_ = false;  // the pump waits on net_ (so only it may take from net_)
    std::vector<std::coroutine_handle<>> handshake_waiters_;

    // Output: ciphertext being sent (wire_, stays put while a send is in flight), ciphertext
    // queued behind it, and the channel's one send.
    std::string wire_;
    std::size_t wire_off_ = 0;
    std::string queued_;
    io_request wire_req_;
    std::uint64_t wire_total_ = 0;  // ciphertext bytes sent so far
    std::uint64_t queued_total_ = 0;  // ... and made so far
    io_request* sending_ = nullptr;  // the channel's send, waiting (handshake or wire)
    std::uint64_t sending_end_ = 0;  // its ciphertext ends here (0: not encrypted yet)
    std::size_t sending_size_ = 0;   // its plaintext bytes
    std::chrono::nanoseconds write_timeout_{0};  // the channel's, for the ciphertext sends
    std::int32_t wire_error_ = 0;  // -errno: a ciphertext send failed; nothing more goes out

    task<> pump_task_;  // TRICKY: last, so destroyed first (it waits on net_)
};

/// For serve_options::make_transport: TLS with `ctx` (a server context) on every connection.
inline std::function<std::unique_ptr<transport>(ringchat::socket)> tls_server(
    tls::context ctx, tls_options options = {}) {
    return [ctx = std::move(ctx), options = std::move(options)](ringchat::socket s) {
        return std::unique_ptr<transport>(
            std::make_unique<tls_transport>(std::move(s), ctx, options));
    };
}

/// For chat::connect(): TLS with `ctx` (a client context), checking the server's certificate
/// against `server_name` (sent as SNI).
inline std::function<std::unique_ptr<transport>(ringchat::socket)> tls_client(
    tls::context ctx, std::string server_name, tls_options options = {}) {
    options.server_name = std::move(server_name);
    return [ctx = std::move(ctx), options = std::move(options)](ringchat::socket s) {
        return std::unique_ptr<transport>(
            std::make_unique<tls_transport>(std::move(s), ctx, options));
    };
}

}  // namespace ringchat::chat
