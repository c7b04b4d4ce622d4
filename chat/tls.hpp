// SPDX-License-Identifier: MIT
// chat/tls.hpp — TLS without I/O: a context (certificates, trust, ALPN, SNI) and an engine per
// connection that turns ciphertext from the network into plaintext and back, over OpenSSL 3.
//
// The building block of the TLS transport: the reactor does all socket I/O, the engine only
// transforms bytes. Ciphertext the network delivered goes in with feed() (and feed_eof() at
// the end of the stream); ciphertext to send comes out of output(). Between them, handshake(),
// read() and write() drive OpenSSL, which sees two in-memory buffers of the engine's own
// instead of a socket. The engine never blocks and never waits: a call that needs more
// ciphertext returns at once with wants_input() true.
//
//     tls::engine e(ctx, "example.com");     // a client: SNI, and the name checked
//     e.handshake();                         // the ClientHello, now in e.output()
//     send(e.output()); e.consume_output(e.output().size());
//     e.feed(received); auto n = e.read(buf);   // plaintext, or 0 and wants_input()
//
// Invariants: every call may queue ciphertext, so the caller sends output() after each one
// (after an error too: it may hold the alert that tells the peer why). An error is final: the
// engine returns the same error from every later call. Memory: an idle engine holds its SSL
// object and nothing else of size (OpenSSL's record buffers are released while idle,
// SSL_MODE_RELEASE_BUFFERS, and the engine's two queues give back their storage when they
// empty, keeping at most 4 KiB each). No OpenSSL header is included here; OpenSSL's types are
// named only through the engine's and context's private parts.
//
// Errors are std::error_codes, in four categories, each message a sentence a person can act
// on: tls::category() (ringchat's own: tls::errc), tls::openssl_category() (OpenSSL's packed
// error codes, ERR_get_error(): "the peer sent a plaintext HTTP request, not TLS ..."),
// tls::verify_category() (the X509_V_ERR_* codes of a certificate that failed verification:
// "certificate verify failed: certificate has expired"), and a context's load errors, whose
// message names the file ("tls: cannot load certificate /x/y.pem: No such file or directory")
// and whose cause() is the errno or OpenSSL code beneath.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/result.hpp"

namespace ringchat::chat::tls {

/// ringchat's own TLS outcomes (tls::category()).
enum class errc {
    truncated = 1,        ///< the network's end of stream came before the peer's close_notify:
                          ///< what was received may be cut short (a read() after feed_eof())
    closed_in_handshake,  ///< the network's end of stream came during the handshake
    shut_down,            ///< write() after shutdown()
    handshake_timeout,    ///< the handshake did not complete within its deadline (a transport's)
};

/// The category of tls::errc ("tls").
const std::error_category& category() noexcept;
/// OpenSSL's packed error codes (ERR_get_error(); "openssl"). message() is OpenSSL's reason
/// string, or a plainer sentence for the reasons a person meets most (a plaintext client on a
/// TLS port, a peer's alert, no protocol in common).
const std::error_category& openssl_category() noexcept;
/// The X509_V_ERR_* codes of a peer certificate that failed verification ("x509 verify");
/// message(): "certificate verify failed: <OpenSSL's text>", with a hint for an unknown CA.
const std::error_category& verify_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), category()};
}

/// For an error from context::server() or client(): the errno (system_category) or OpenSSL
/// code beneath the sentence that names the file; any other error is returned as it is.
/// (A context error also compares equal to its cause's condition: `e == std::errc::...`.)
std::error_code cause(std::error_code e) noexcept;

/// Which end of the handshake a context (and each engine made from it) is.
enum class role { server, client };

/// A certificate the server presents to a client that asks for `name` (SNI).
struct sni_entry {
    std::string name;       ///< a host name, matched without regard to case (no wildcards)
    std::string cert_file;  ///< PEM: the certificate, then its chain
    std::string key_file;   ///< PEM: its private key; empty = read it from cert_file
};

/// What a context is made from. Files are PEM; every one is read when the context is made.
struct context_options {
    /// The certificate (then its intermediate certificates). Required for a server; on a
    /// client, the client certificate to present when a server asks for one (optional).
    std::string cert_file;
    /// The private key of cert_file; empty = read it from cert_file.
    std::string key_file;
    /// Client: the CA certificates the server is verified against; empty = the system's
    /// default locations. Server: when set, a client certificate is requested and verified
    /// against these (and required, while verify_peer).
    std::string ca_file;
    /// Client: verify the server's certificate (chain, dates, and the name given to the
    /// engine), failing the handshake otherwise. false accepts any certificate; the engine's
    /// peer_verified() then says whether it would have passed. Server: with ca_file, whether a
    /// client certificate is required (true) or only verified when one is sent (false).
    bool verify_peer = true;
    /// ALPN. Server: the protocols it accepts, most preferred first; a client offering none of
    /// them fails the handshake (RFC 7301's no_application_protocol), a client offering no ALPN
    /// gets none. Client: the protocols it offers. Each name is 1 to 255 bytes.
    std::vector<std::string> alpn;
    /// Server: more certificates, chosen by the name a client sends (SNI); cert_file is
    /// presented when no entry matches or no name is sent.
    std::vector<sni_entry> sni;
    /// Sets SSL_OP_ENABLE_KTLS. It has no effect on an engine (OpenSSL uses kTLS only over a
    /// socket BIO, never over the engine's memory buffers), and no transport hands the keys to
    /// the kernel yet: a server context made with it logs one info line that says kTLS is not
    /// used, and why (probe_ktls()). false: no line.
    bool ktls = true;
};

/// What the kernel offers for kTLS (the `tls` upper-layer protocol of TCP), probed once per
/// process with a setsockopt(TCP_ULP) on a socket of its own.
struct ktls_probe {
    bool kernel_has_tls = false;
    std::string detail;  ///< a sentence: what the probe found, and what it means here
};
const ktls_probe& probe_ktls() noexcept;

/// An OpenSSL SSL_CTX with its configuration: TLS 1.2 at least (TLS 1.3 preferred),
/// renegotiation refused. Immutable once made; copies share it (a reference count), and every
/// thread may make engines from one context at once. Engines keep what they need of it: a
/// context may be destroyed while its engines live.
class context {
public:
    /// A server context: cert_file (and its key) required.
    static result<context> server(const context_options& options);
    /// A client context.
    static result<context> client(const context_options& options);

    role side() const noexcept;

    struct impl;  ///< defined in tls.cpp

private:
    explicit context(std::shared_ptr<const impl> i) noexcept : impl_(std::move(i)) {}
    friend class engine;
    std::shared_ptr<const impl> impl_;
};

/// One TLS connection, in memory. Movable; its state stays where it is (OpenSSL points into
/// it), so views it handed out (output(), alpn() ...) survive a move of the engine.
///
/// The handshake runs by itself as read() and write() need it, or step by step with
/// handshake(). A session then calls read() until it returns 0: then wants_input() (feed more
/// ciphertext), closed() (the peer's close_notify: the clean end), or, when `plaintext` was
/// empty, neither.
class engine {
public:
    /// An engine of `ctx`'s role. A client's `server_name` is sent as SNI and checked against
    /// the server's certificate (an IP address is checked against its IP addresses and not
    /// sent: RFC 6066 allows no address in SNI); empty = no name sent, none checked (then any
    /// certificate the trusted CAs issued passes, whoever it was issued to).
    /// \throws std::invalid_argument for a server_name on a server, or one OpenSSL refuses
    /// (over 255 bytes, a NUL byte); std::bad_alloc when OpenSSL cannot allocate.
    explicit engine(const context& ctx, std::string_view server_name = {});
    engine(engine&&) noexcept;
    engine& operator=(engine&&) noexcept;
    ~engine();

    /// Ciphertext from the network (copied). Nothing is processed until the next handshake(),
    /// read() or write().
    void feed(std::span<const std::byte> ciphertext);
    /// The network's end of stream: once what was fed is used up, read() ends with closed()
    /// where the peer's close_notify came first, with errc::truncated otherwise (or
    /// errc::closed_in_handshake). No feed() after it.
    void feed_eof() noexcept;

    /// Drives the handshake with what has been fed: ok while it goes on or once it is done
    /// (handshake_done()), the error that ended it otherwise. A client's first call queues its
    /// ClientHello; a server's answers the ClientHello fed to it.
    result<void> handshake();
    bool handshake_done() const noexcept;

    /// Up to plaintext.size() bytes of plaintext, driving the handshake first as needed.
    /// 0: wants_input() or closed() says why. Errors: the handshake's (a peer that does not
    /// speak TLS, a certificate that fails verification, the peer's alert ...), and at the end
    /// of stream errc::truncated.
    result<std::size_t> read(std::span<std::byte> plaintext);

    /// Encrypts all of `plaintext` into output() (in records of up to 16 KiB) and returns its
    /// size. Before the handshake is done it drives the handshake instead, and takes nothing
    /// (returns 0, wants_input() true) until it is: write again once more input was fed.
    /// errc::shut_down after shutdown().
    result<std::size_t> write(std::span<const std::byte> plaintext);

    /// Queues close_notify into output() (once; later writes fail with errc::shut_down).
    /// Before the handshake is done, or after an error, there is no session to close and it
    /// does nothing but refuse later writes: close the connection.
    void shutdown();

    /// Ciphertext waiting to be sent, valid until the next call other than output().
    std::span<const std::byte> output() const noexcept;
    /// Drops the first `n` bytes of output() (they were sent). n <= output().size().
    void consume_output(std::size_t n) noexcept;

    /// The last call stopped for lack of ciphertext: feed() more.
    bool wants_input() const noexcept;
    /// The peer's close_notify was read: no more plaintext comes (writing may go on: the peer
    /// may still read, TLS 1.3's half close; shutdown() answers it).
    bool closed() const noexcept;
    /// The error that ended the engine; empty while none did.
    std::error_code error() const noexcept;

    role side() const noexcept;
    /// The peer presented a certificate and it passed verification (chain, dates, name):
    /// always so on a client with verify_peer after the handshake; what verify_peer = false
    /// let through otherwise.
    bool peer_verified() const noexcept;
    /// The protocol ALPN selected; empty when none was.
    std::string_view alpn() const noexcept;
    /// A server: the name the client sent (SNI); a client: the name it was made with.
    std::string_view server_name() const noexcept;
    /// "TLSv1.3", "TLSv1.2"; empty before the handshake is done.
    std::string_view version() const noexcept;
    /// The cipher suite's OpenSSL name ("TLS_AES_256_GCM_SHA384"); empty before the handshake.
    std::string_view cipher() const noexcept;
    /// Bytes of storage the engine's input and output queues hold (their capacity), beside
    /// OpenSSL's own: what an idle connection costs above its SSL object.
    std::size_t held_bytes() const noexcept;

    struct state;  ///< defined in tls.cpp

private:
    std::unique_ptr<state> s_;
};

}  // namespace ringchat::chat::tls

template <>
struct std::is_error_code_enum<ringchat::chat::tls::errc> : std::true_type {};
