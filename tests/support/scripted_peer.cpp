// SPDX-License-Identifier: MIT
// tests/support/scripted_peer.cpp — the plaintext peer (a memory_transport, as it is) and the
// TLS one (a client engine pumped at every reactor turn).
#include "tests/support/scripted_peer.hpp"

#include <array>
#include <chrono>
#include <utility>

#include "core/task.hpp"
#include "tests/support/peers.hpp"
#include "version.hpp"

#if RINGCHAT_HAS_TLS
#include "chat/tls.hpp"
#include "chat/tls_transport.hpp"
#include "tests/support/test_certs.hpp"
#endif

namespace ringchat::test {

std::vector<wire> wires() {
#if RINGCHAT_HAS_TLS
    return {wire::plain, wire::tls};
#else
    return {wire::plain};
#endif
}

const char* to_string(wire w) noexcept {
    return w == wire::tls ? "tls" : "plain";
}

namespace {

class plain_peer final : public scripted_peer {
public:
    explicit plain_peer(chat::memory_transport& m) noexcept : m_(m) {}
    void feed(std::string_view bytes) override { m_.feed(bytes); }
    void feed_end() override { m_.feed_end(); }
    const std::string& sent() override { return m_.sent(); }
    std::string take_sent() override { return m_.take_sent(); }
    void set_window(std::size_t bytes) override { m_.set_window(bytes); }
    void set_send_capacity(std::size_t bytes) override { m_.set_send_capacity(bytes); }
    chat::memory_transport::end state() override { return m_.state(); }
    bool close_notified() override { return true; }
    std::error_code failure() override { return {}; }

private:
    chat::memory_transport& m_;
};

#if RINGCHAT_HAS_TLS

std::span<const std::byte> as_bytes(std::string_view s) noexcept {
    return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

/// The client's state, shared by the peer and its pump (which may outlive it by a turn).
struct tls_state {
    explicit tls_state(chat::memory_transport& m)
        : wire(&m), engine(tls_test_contexts::get().client, "localhost") {}

    chat::memory_transport* wire;  // null once the peer is gone
    chat::tls::engine engine;
    std::vector<std::string> to_send;  // plaintext waiting for the handshake
    bool end_wanted = false;           // feed_end(): after to_send
    bool ended = false;                // close_notify and the end of stream were fed
    std::size_t window = SIZE_MAX;
    bool window_applied = false;
    std::string plain;                 // decrypted, not taken yet

    /// Carries what can be carried both ways; \return whether anything moved.
    bool step() {
        if (wire == nullptr || engine.error()) {
            return false;
        }
        bool moved = false;
        if (!engine.handshake_done() || plain.size() < window) {
            std::string cipher = wire->take_sent();
            if (!cipher.empty()) {
                engine.feed(as_bytes(cipher));
                moved = true;
            }
        }
        if (!engine.handshake_done()) {
            (void)engine.handshake();
        }
        if (engine.handshake_done() && !window_applied) {
            window_applied = true;
            wire->set_window(window);
        }
        std::array<std::byte, 16384> buf;
        while (engine.handshake_done() && !engine.error()) {
            auto n = engine.read(buf);
            if (!n || *n == 0) {
                break;
            }
            plain.append(reinterpret_cast<const char*>(buf.data()), *n);
            moved = true;
        }
        moved |= send_output();  // the handshake's messages, or an alert
        if (engine.handshake_done()) {
            for (const std::string& chunk : to_send) {
                (void)engine.write(as_bytes(chunk));
                send_output();  // one chunk's records: one chunk on the wire
                moved = true;
            }
            to_send.clear();
            if (end_wanted && !ended) {
                engine.shutdown();
                send_output();
                wire->feed_end();
                ended = true;
                moved = true;
            }
        }
        return moved;
    }

    bool send_output() {
        const auto out = engine.output();
        if (out.empty()) {
            return false;
        }
        wire->feed(std::string_view(reinterpret_cast<const char*>(out.data()), out.size()));
        engine.consume_output(out.size());
        return true;
    }
};

/// Pumps at every turn while bytes move, then every millisecond (a session waiting on a
/// timer), until the peer is gone.
task<> pump(reactor& r, std::shared_ptr<tls_state> s) {
    int idle = 0;
    while (s->wire != nullptr) {
        idle = s->step() ? 0 : idle + 1;
        if (idle < 64) {
            co_await yield_now{r};
        } else {
            co_await r.sleep_for(std::chrono::milliseconds(1));
        }
    }
}

class tls_peer final : public scripted_peer {
public:
    tls_peer(reactor& r, chat::memory_transport& m) : s_(std::make_shared<tls_state>(m)) {
        (void)s_->engine.handshake();  // the ClientHello
        s_->send_output();
        r.spawn(pump(r, s_));
    }
    ~tls_peer() override { s_->wire = nullptr; }

    void feed(std::string_view bytes) override {
        if (!bytes.empty()) {
            s_->to_send.emplace_back(bytes);
            s_->step();
        }
    }
    void feed_end() override {
        s_->end_wanted = true;
        s_->step();
    }
    const std::string& sent() override {
        s_->step();
        return s_->plain;
    }
    std::string take_sent() override {
        s_->step();
        return std::exchange(s_->plain, {});
    }
    void set_window(std::size_t bytes) override {
        s_->window = bytes;
        if (s_->window_applied) {
            s_->wire->set_window(bytes);
        }
        s_->step();
    }
    void set_send_capacity(std::size_t bytes) override { s_->wire->set_send_capacity(bytes); }
    chat::memory_transport::end state() override {
        s_->step();
        return s_->wire->state();
    }
    bool close_notified() override {
        s_->step();
        return s_->engine.closed();
    }
    std::error_code failure() override { return s_->engine.error(); }

private:
    std::shared_ptr<tls_state> s_;
};

#endif  // RINGCHAT_HAS_TLS

}  // namespace

scripted make_scripted(reactor& r, const chat::channel_options& options, wire w) {
    auto owned = std::make_unique<chat::memory_transport>(r);
    chat::memory_transport& m = *owned;
#if RINGCHAT_HAS_TLS
    if (w == wire::tls) {
        auto server = std::make_unique<chat::tls_transport>(std::move(owned),
                                                            tls_test_contexts::get().server);
        auto peer = std::make_unique<tls_peer>(r, m);
        return {std::move(peer), std::make_unique<chat::channel>(std::move(server), options)};
    }
#else
    (void)w;
#endif
    return {std::make_unique<plain_peer>(m),
            std::make_unique<chat::channel>(std::move(owned), options)};
}

}  // namespace ringchat::test
