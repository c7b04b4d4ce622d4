// SPDX-License-Identifier: MIT
// chat/tls.cpp — the TLS context and engine over OpenSSL 3.
//
// Sections: 1 OpenSSL's objects as unique_ptrs; 2 the error categories; 3 a context's load
// errors (a sentence naming the file, kept in a table); 4 loading certificates and keys; 5 the
// context (its callbacks: ALPN, SNI); 6 the engine's byte queues and the BIO method over them;
// 7 the engine.
//
// Invariant: OpenSSL's error queue (per thread) is empty when a function here returns. Each
// call into OpenSSL that can fail starts from an empty queue (ERR_clear_error), so an error
// another piece of code left behind is never taken for this one's.
#include "tls.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <new>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#include "../core/log.hpp"

namespace ringchat::chat::tls {

// ---------------------------------------------------------------------------------------------
// 1. OpenSSL's objects as unique_ptrs
// ---------------------------------------------------------------------------------------------

namespace {

template <class T, void (*Free)(T*)>
struct freer {
    void operator()(T* p) const noexcept { Free(p); }
};
void free_chain(STACK_OF(X509) * chain) { sk_X509_pop_free(chain, X509_free); }
void free_bio(BIO* b) { BIO_free(b); }

using x509_ptr = std::unique_ptr<X509, freer<X509, X509_free>>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, freer<EVP_PKEY, EVP_PKEY_free>>;
using chain_ptr = std::unique_ptr<STACK_OF(X509), freer<STACK_OF(X509), free_chain>>;
using bio_ptr = std::unique_ptr<BIO, freer<BIO, free_bio>>;

// ---------------------------------------------------------------------------------------------
// 2. The error categories
// ---------------------------------------------------------------------------------------------

/// A peer's fatal alert, as a person reads it: OpenSSL's name of the alert and what it usually
/// means for this side.
std::string peer_alert(int alert) {
    // OpenSSL 3.0 names no alert TLS 1.3 added ("unknown").
    std::string name = alert == SSL_AD_CERTIFICATE_REQUIRED ? "certificate required"
                       : alert == SSL_AD_MISSING_EXTENSION  ? "missing extension"
                                                            : SSL_alert_desc_string_long(alert);
    if (name == "unknown") {
        name = fmt::format("number {}", alert);
    }
    std::string m = fmt::format("the peer sent a fatal alert: {}", name);
    switch (alert) {
    case SSL_AD_UNKNOWN_CA:
        return m + " (it does not trust the CA that issued this side's certificate)";
    case SSL_AD_BAD_CERTIFICATE:
        return m + " (it rejected this side's certificate)";
    case SSL_AD_CERTIFICATE_EXPIRED:
        return m + " (this side's certificate has expired)";
    case SSL_AD_CERTIFICATE_REQUIRED:
        return m + " (it requires a client certificate)";
    case SSL_AD_PROTOCOL_VERSION:
        return m + " (no TLS version in common)";
    case SSL_AD_NO_APPLICATION_PROTOCOL:
        return m + " (none of the ALPN protocols offered is one it accepts)";
    default:
        return m;
    }
}

std::string openssl_message(unsigned long code) {
    // TRICKY: message() may be called before anything here made a context (an error_code
    // built by hand, or read in another program part); the reason strings must be loaded.
    OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS, nullptr);
    const int reason = ERR_GET_REASON(code);
    if (ERR_GET_LIB(code) == ERR_LIB_SSL) {
        switch (reason) {
        case SSL_R_HTTP_REQUEST:
            return "the peer sent a plaintext HTTP request, not TLS (an http:// URL for a TLS "
                   "port?)";
        case SSL_R_HTTPS_PROXY_REQUEST:
            return "the peer sent a plaintext HTTP proxy request (CONNECT), not TLS";
        case SSL_R_WRONG_VERSION_NUMBER:
            return "wrong version number: what the peer sent is not TLS (a plaintext protocol?)";
        case SSL_R_UNSUPPORTED_PROTOCOL:
            return "no TLS version in common (TLS 1.2 or later is required)";
        case SSL_R_NO_SHARED_CIPHER:
            return "no cipher suite in common with the peer";
        case SSL_R_NO_APPLICATION_PROTOCOL:
            return "no application protocol in common (ALPN): the client offered none of those "
                   "the server accepts";
        case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
            return "the peer sent no certificate, and one is required";
        case SSL_R_UNEXPECTED_EOF_WHILE_READING:
            return "the peer closed the connection without close_notify";
        default:
            if (reason > SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256) {
                return peer_alert(reason - SSL_AD_REASON_OFFSET);
            }
        }
    }
    if (ERR_GET_LIB(code) == ERR_LIB_PEM && reason == PEM_R_NO_START_LINE) {
        return "no PEM data of the kind expected in it (no \"-----BEGIN ...\" line)";
    }
    if (const char* r = ERR_reason_error_string(code)) {
        return r;
    }
    return fmt::format("OpenSSL error {:#x}", code);
}

std::string verify_message(int v) {
    std::string m = fmt::format("certificate verify failed: {}", X509_verify_cert_error_string(v));
    switch (v) {
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        return m + " (unknown CA: not issued by a CA this side trusts)";
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return m + " (the certificate is not for the name the client asked for)";
    default:
        return m;
    }
}

class tls_category_type final : public std::error_category {
public:
    const char* name() const noexcept override { return "tls"; }
    std::string message(int value) const override {
        switch (static_cast<errc>(value)) {
        case errc::truncated:
            return "the connection ended without the peer's close_notify: what came may be "
                   "truncated";
        case errc::closed_in_handshake:
            return "the peer closed the connection during the TLS handshake";
        case errc::shut_down:
            return "write after shutdown(): the TLS session is being closed";
        case errc::handshake_timeout:
            return "the TLS handshake did not complete in time (a peer that stalls, or does "
                   "not speak TLS and waits)";
        }
        return "unknown tls error";
    }
};

class openssl_category_type final : public std::error_category {
public:
    const char* name() const noexcept override { return "openssl"; }
    std::string message(int value) const override {
        return openssl_message(static_cast<unsigned int>(value));
    }
};

class verify_category_type final : public std::error_category {
public:
    const char* name() const noexcept override { return "x509 verify"; }
    std::string message(int value) const override { return verify_message(value); }
};

/// The first error in OpenSSL's queue (the cause; later ones say where it surfaced), as an
/// error_code: a system error as its errno, anything else as OpenSSL's code. Empties the queue.
std::error_code take_error() {
    const unsigned long e = ERR_peek_error();
    ERR_clear_error();
    if (e == 0) {
        return std::make_error_code(std::errc::protocol_error);  // failed without saying why
    }
    if (ERR_SYSTEM_ERROR(e)) {
        return {ERR_GET_REASON(e), std::system_category()};
    }
    return {static_cast<int>(e), openssl_category()};
}

}  // namespace

const std::error_category& category() noexcept {
    static const tls_category_type instance;
    return instance;
}

const std::error_category& openssl_category() noexcept {
    static const openssl_category_type instance;
    return instance;
}

const std::error_category& verify_category() noexcept {
    static const verify_category_type instance;
    return instance;
}

// ---------------------------------------------------------------------------------------------
// 3. A context's load errors
// ---------------------------------------------------------------------------------------------

// An error_code holds a number, and a person needs the file's name. TRICKY: so each sentence
// is kept in a process-wide table and its code is its index there; the table holds each
// distinct sentence once, and at most 256 of them (contexts are made at start-up, from a few
// files): past that, the bare cause is returned, without the file's name.

namespace {

struct note {
    std::string message;
    std::error_code cause;
};

struct notebook {
    std::mutex mutex;
    std::vector<note> notes;
};

notebook& notes() {
    static notebook instance;
    return instance;
}

constexpr std::size_t max_notes = 256;

note find_note(int value) {
    notebook& b = notes();
    std::lock_guard lock(b.mutex);
    if (value < 1 || static_cast<std::size_t>(value) > b.notes.size()) {
        return {"unknown tls context error", std::make_error_code(std::errc::invalid_argument)};
    }
    return b.notes[static_cast<std::size_t>(value) - 1];
}

class context_category_type final : public std::error_category {
public:
    const char* name() const noexcept override { return "tls context"; }
    std::string message(int value) const override { return find_note(value).message; }
    std::error_condition default_error_condition(int value) const noexcept override {
        try {
            return find_note(value).cause.default_error_condition();
        } catch (...) {  // a string copy that could not allocate
            return {value, *this};
        }
    }
};

const std::error_category& context_category() noexcept {
    static const context_category_type instance;
    return instance;
}

/// `message` (which names the file) over `cause`, as one error_code.
std::error_code annotate(std::string message, std::error_code cause) {
    notebook& b = notes();
    std::lock_guard lock(b.mutex);
    for (std::size_t i = 0; i < b.notes.size(); ++i) {
        if (b.notes[i].message == message && b.notes[i].cause == cause) {
            return {static_cast<int>(i + 1), context_category()};
        }
    }
    if (b.notes.size() == max_notes) {
        return cause;
    }
    b.notes.push_back({std::move(message), cause});
    return {static_cast<int>(b.notes.size()), context_category()};
}

/// "tls: <what> <file>: <why>", over the error OpenSSL's queue holds.
std::error_code load_error(std::string_view what, const std::string& file) {
    const std::error_code why = take_error();
    return annotate(fmt::format("tls: cannot load {} {}: {}", what, file, why.message()), why);
}

std::error_code invalid(std::string message) {
    return annotate(std::move(message), std::make_error_code(std::errc::invalid_argument));
}

}  // namespace

std::error_code cause(std::error_code e) noexcept {
    if (e.category() != context_category()) {
        return e;
    }
    try {
        return find_note(e.value()).cause;
    } catch (...) {
        return e;
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Loading certificates and keys
// ---------------------------------------------------------------------------------------------

namespace {

/// A certificate, the chain that follows it in its file, and its private key.
struct keyed_cert {
    x509_ptr leaf;
    chain_ptr chain;
    pkey_ptr key;
};

/// TRICKY: without a callback, OpenSSL asks for an encrypted key's passphrase on the
/// terminal, and a server would hang at start; this one answers "no passphrase" and notes
/// (in the bool `asked` points to, when not null) that one was asked for.
int no_passphrase(char*, int, int, void* asked) {
    if (asked != nullptr) {
        *static_cast<bool*>(asked) = true;
    }
    return -1;
}

/// Why a key could not be read, for a person: OpenSSL's own words say "unsupported" for a file
/// with no key in it, and "interrupted or cancelled" for an encrypted key.
std::string key_failure(std::error_code why, bool passphrase_asked) {
    if (passphrase_asked) {
        return "it is encrypted, and a key with a passphrase is not supported (store it "
               "decrypted, readable only by the server)";
    }
    if (why.category() == openssl_category()) {
        const auto code = static_cast<unsigned int>(why.value());
        const int lib = ERR_GET_LIB(code);
        const int reason = ERR_GET_REASON(code);
        if ((lib == ERR_LIB_OSSL_DECODER && reason == ERR_R_UNSUPPORTED) ||
            (lib == ERR_LIB_PEM && reason == PEM_R_NO_START_LINE)) {
            return "no private key in it that OpenSSL can read (PEM)";
        }
    }
    return why.message();
}

/// The certificate in `cert_file` (then its chain), and the key in `key_file` (or, when that
/// is empty, in cert_file), checked to belong together.
result<keyed_cert> load_keyed_cert(const std::string& cert_file, const std::string& key_file) {
    keyed_cert out;
    ERR_clear_error();
    bio_ptr in(BIO_new_file(cert_file.c_str(), "r"));
    if (!in) {
        return load_error("certificate", cert_file);
    }
    out.leaf.reset(PEM_read_bio_X509_AUX(in.get(), nullptr, no_passphrase, nullptr));
    if (!out.leaf) {
        return load_error("certificate", cert_file);
    }
    out.chain.reset(sk_X509_new_null());
    if (!out.chain) {
        return load_error("certificate chain", cert_file);
    }
    while (X509* next = PEM_read_bio_X509(in.get(), nullptr, no_passphrase, nullptr)) {
        if (sk_X509_push(out.chain.get(), next) == 0) {
            X509_free(next);
            return load_error("certificate chain", cert_file);
        }
    }
    // The loop ends at the end of the file, which OpenSSL reports as "no start line".
    const unsigned long end = ERR_peek_last_error();
    if (ERR_GET_LIB(end) != ERR_LIB_PEM || ERR_GET_REASON(end) != PEM_R_NO_START_LINE) {
        return load_error("certificate chain", cert_file);
    }
    ERR_clear_error();

    const std::string& key_path = key_file.empty() ? cert_file : key_file;
    bio_ptr key_in(BIO_new_file(key_path.c_str(), "r"));
    if (!key_in) {
        return load_error("key", key_path);
    }
    bool asked = false;
    out.key.reset(PEM_read_bio_PrivateKey(key_in.get(), nullptr, no_passphrase, &asked));
    if (!out.key) {
        const std::error_code why = take_error();
        return annotate(
            fmt::format("tls: cannot load key {}: {}", key_path, key_failure(why, asked)), why);
    }
    if (X509_check_private_key(out.leaf.get(), out.key.get()) != 1) {
        const std::error_code why = take_error();
        return annotate(fmt::format("tls: key {} does not match certificate {} ({})", key_path,
                                    cert_file, why.message()),
                        why);
    }
    return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// 5. The context
// ---------------------------------------------------------------------------------------------

namespace {

/// An SNI entry, loaded: its name in lower case.
struct served_cert {
    std::string name;
    keyed_cert cert;
};

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](char c) {
        return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    });
    return out;
}

}  // namespace

/// What the engines' SSL objects point to (the callbacks' argument), so it lives as long as the
/// last of them: the context and every engine hold it.
struct context::impl {
    SSL_CTX* ctx = nullptr;
    role side = role::server;
    std::vector<unsigned char> alpn;  // a server's accepted protocols, in ALPN's wire format
    std::vector<served_cert> sni;

    impl() = default;
    impl(const impl&) = delete;
    impl& operator=(const impl&) = delete;
    ~impl() { SSL_CTX_free(ctx); }
};

namespace {

/// The server's choice: its most preferred protocol that the client offers. None: the
/// handshake fails with no_application_protocol (RFC 7301, 3.2).
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void* arg) {
    const std::vector<unsigned char>& accepted = static_cast<const context::impl*>(arg)->alpn;
    for (std::size_t i = 0; i < accepted.size(); i += 1 + accepted[i]) {
        const std::string_view want(reinterpret_cast<const char*>(&accepted[i + 1]), accepted[i]);
        for (unsigned int j = 0; j < inlen && j + 1 + in[j] <= inlen; j += 1 + in[j]) {
            if (std::string_view(reinterpret_cast<const char*>(in + j + 1), in[j]) == want) {
                *out = in + j + 1;
                *outlen = in[j];
                return SSL_TLSEXT_ERR_OK;
            }
        }
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/// SNI: the certificate of the entry named as the client asked, or the default one.
int select_certificate(SSL* ssl, int* alert, void* arg) {
    const char* asked = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (asked == nullptr) {
        return SSL_TLSEXT_ERR_OK;
    }
    const std::string name = lower(asked);
    for (const served_cert& s : static_cast<const context::impl*>(arg)->sni) {
        if (s.name == name) {
            if (SSL_use_cert_and_key(ssl, s.cert.leaf.get(), s.cert.key.get(), s.cert.chain.get(),
                                     1) != 1) {
                *alert = SSL_AD_INTERNAL_ERROR;
                return SSL_TLSEXT_ERR_ALERT_FATAL;
            }
            break;
        }
    }
    return SSL_TLSEXT_ERR_OK;
}

/// The protocol names in ALPN's wire format (each preceded by its length).
result<std::vector<unsigned char>> alpn_wire(const std::vector<std::string>& names) {
    std::vector<unsigned char> wire;
    for (const std::string& n : names) {
        if (n.empty() || n.size() > 255) {
            return invalid(fmt::format("tls: ALPN protocol name of {} bytes (1 to 255 allowed)",
                                       n.size()));
        }
        wire.push_back(static_cast<unsigned char>(n.size()));
        wire.insert(wire.end(), n.begin(), n.end());
    }
    return wire;
}

result<void> trust(SSL_CTX* ctx, const std::string& ca_file) {
    ERR_clear_error();
    if (SSL_CTX_load_verify_file(ctx, ca_file.c_str()) != 1) {
        return load_error("CA certificates", ca_file);
    }
    return {};
}

result<void> configure_server(context::impl& i, const context_options& o) {
    // TRICKY: OpenSSL refuses to resume a session of a server that verifies clients unless the
    // session id context is set ("session id context uninitialized"); it names this program's
    // sessions apart from another's sharing the cache.
    static constexpr unsigned char sid[] = "ringchat";
    SSL_CTX_set_session_id_context(i.ctx, sid, sizeof sid - 1);
    if (!o.ca_file.empty()) {
        if (auto t = trust(i.ctx, o.ca_file); !t) {
            return t.error();
        }
        // The CAs' names go to the client, so that it picks a certificate they issued.
        STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(o.ca_file.c_str());
        if (names == nullptr) {
            return load_error("CA names", o.ca_file);
        }
        SSL_CTX_set_client_CA_list(i.ctx, names);
        SSL_CTX_set_verify(i.ctx,
                           SSL_VERIFY_PEER | (o.verify_peer ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                           nullptr);
    }
    if (!o.alpn.empty()) {
        auto wire = alpn_wire(o.alpn);
        if (!wire) {
            return wire.error();
        }
        i.alpn = std::move(*wire);
        SSL_CTX_set_alpn_select_cb(i.ctx, select_alpn, &i);
    }
    for (const sni_entry& e : o.sni) {
        if (e.name.empty()) {
            return invalid(fmt::format("tls: SNI entry for {} without a name", e.cert_file));
        }
        std::string name = lower(e.name);
        for (const served_cert& s : i.sni) {
            if (s.name == name) {
                return invalid(fmt::format("tls: two SNI entries for {}", e.name));
            }
        }
        auto cert = load_keyed_cert(e.cert_file, e.key_file);
        if (!cert) {
            return cert.error();
        }
        i.sni.push_back({std::move(name), std::move(*cert)});
    }
    if (!i.sni.empty()) {
        SSL_CTX_set_tlsext_servername_callback(i.ctx, select_certificate);
        SSL_CTX_set_tlsext_servername_arg(i.ctx, &i);
    }
    return {};
}

result<void> configure_client(context::impl& i, const context_options& o) {
    if (!o.sni.empty()) {
        return invalid("tls: SNI entries are for a server context (a client sends its name to "
                       "the engine)");
    }
    if (o.ca_file.empty()) {
        ERR_clear_error();
        if (SSL_CTX_set_default_verify_paths(i.ctx) != 1) {
            const std::error_code why = take_error();
            return annotate(
                fmt::format("tls: cannot use the system's CA certificates: {}", why.message()),
                why);
        }
    } else if (auto t = trust(i.ctx, o.ca_file); !t) {
        return t.error();
    }
    SSL_CTX_set_verify(i.ctx, o.verify_peer ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
    if (!o.alpn.empty()) {
        auto wire = alpn_wire(o.alpn);
        if (!wire) {
            return wire.error();
        }
        // TRICKY: SSL_CTX_set_alpn_protos returns 0 on success, unlike its neighbours.
        ERR_clear_error();
        if (SSL_CTX_set_alpn_protos(i.ctx, wire->data(), static_cast<unsigned int>(wire->size())) !=
            0) {
            const std::error_code why = take_error();
            return annotate(fmt::format("tls: cannot set the ALPN protocols: {}", why.message()),
                            why);
        }
    }
    return {};
}

result<std::shared_ptr<context::impl>> make(role side, const context_options& o) {
    if (side == role::server && o.cert_file.empty()) {
        return invalid("tls: a server context needs a certificate (cert_file)");
    }
    auto made = std::make_shared<context::impl>();
    context::impl& i = *made;
    i.side = side;
    ERR_clear_error();
    i.ctx = SSL_CTX_new(side == role::server ? TLS_server_method() : TLS_client_method());
    if (i.ctx == nullptr) {
        const std::error_code why = take_error();
        return annotate(fmt::format("tls: cannot make an SSL_CTX: {}", why.message()), why);
    }
    SSL_CTX_set_min_proto_version(i.ctx, TLS1_2_VERSION);
    // Renegotiation (TLS 1.2) is refused: a client could make the server redo the costly part
    // of a handshake at will, and nothing here needs it.
    // SSL_OP_ENABLE_KTLS has no effect over the engine's memory buffers (OpenSSL turns kTLS on
    // only over a socket BIO); it is set for a transport that will hand the keys to the kernel
    // (context::server() says so in a log line).
    SSL_CTX_set_options(i.ctx, SSL_OP_NO_RENEGOTIATION | (o.ktls ? SSL_OP_ENABLE_KTLS : 0));
    // Idle connections give back OpenSSL's 16 KiB record buffers; output is never refused, so
    // a write is never retried (and may come from another buffer if it were).
    SSL_CTX_set_mode(i.ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (!o.cert_file.empty()) {
        auto cert = load_keyed_cert(o.cert_file, o.key_file);
        if (!cert) {
            return cert.error();
        }
        ERR_clear_error();
        if (SSL_CTX_use_cert_and_key(i.ctx, cert->leaf.get(), cert->key.get(), cert->chain.get(),
                                     1) != 1) {
            return load_error("certificate", o.cert_file);
        }
    }
    auto configured = side == role::server ? configure_server(i, o) : configure_client(i, o);
    if (!configured) {
        return configured.error();
    }
    return made;
}

}  // namespace

const ktls_probe& probe_ktls() noexcept {
    static const ktls_probe probed = [] {
        ktls_probe p;
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            p.detail = fmt::format("cannot probe for the kernel's tls module (socket: {})",
                                   std::strerror(errno));
            return p;
        }
        // The kernel loads the tls module for this if it can; it then refuses only because the
        // socket is not connected (ENOTCONN). ENOENT: no such upper-layer protocol.
        const int set = ::setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", 3);
        const int e = set == 0 ? 0 : errno;
        ::close(fd);
        p.kernel_has_tls = set == 0 || e == ENOTCONN;
        p.detail = p.kernel_has_tls
                       ? std::string("this kernel has the tls module, but ringchat's TLS "
                                     "transport does not hand keys to it yet")
                       : fmt::format("this kernel has no tls module (setsockopt TCP_ULP "
                                     "\"tls\": {})",
                                     std::strerror(e));
        return p;
    }();
    return probed;
}

result<context> context::server(const context_options& options) {
    auto made = make(role::server, options);
    if (!made) {
        return made.error();
    }
    if (options.ktls) {
        log::info("tls: kTLS is not used: {}; file bodies over TLS are read and encrypted in "
                  "user space (sendfile needs kTLS)",
                  probe_ktls().detail);
    }
    return context(std::move(*made));
}

result<context> context::client(const context_options& options) {
    auto made = make(role::client, options);
    if (!made) {
        return made.error();
    }
    return context(std::move(*made));
}

role context::side() const noexcept { return impl_->side; }

// ---------------------------------------------------------------------------------------------
// 6. The engine's byte queues, and the BIO method over them
// ---------------------------------------------------------------------------------------------

namespace {

/// Bytes in order: appended at the back, taken from the front. Its storage is given back when
/// it empties (kept up to `keep` bytes), so an idle connection holds almost none.
class byte_queue {
public:
    static constexpr std::size_t keep = 4096;

    std::span<const std::byte> view() const noexcept {
        return {data_.data() + head_, data_.size() - head_};
    }
    std::size_t size() const noexcept { return data_.size() - head_; }
    bool empty() const noexcept { return size() == 0; }
    std::size_t capacity() const noexcept { return data_.capacity(); }

    void append(const void* p, std::size_t n) {
        if (head_ > 0 && data_.size() + n > data_.capacity()) {
            // Move what is left to the front rather than grow past it.
            data_.erase(data_.begin(), data_.begin() + static_cast<std::ptrdiff_t>(head_));
            head_ = 0;
        }
        const auto* b = static_cast<const std::byte*>(p);
        data_.insert(data_.end(), b, b + n);
    }
    void consume(std::size_t n) noexcept {
        assert(n <= size());
        head_ += n;
        if (head_ == data_.size()) {
            head_ = 0;
            data_.clear();
            if (data_.capacity() > keep) {
                std::vector<std::byte>().swap(data_);
            }
        }
    }

private:
    std::vector<std::byte> data_;
    std::size_t head_ = 0;
};

/// One side of the engine as OpenSSL's BIO sees it: the input queue (read by OpenSSL, then the
/// network's end of stream) or the output queue (written by OpenSSL).
struct endpoint {
    byte_queue q;
    bool eof = false;           // input: the network ended; once q is empty, reads see EOF
    bool out_of_memory = false;  // output: an append failed (std::bad_alloc)
};

int bio_write(BIO* b, const char* data, std::size_t n, std::size_t* written) {
    auto* e = static_cast<endpoint*>(BIO_get_data(b));
    BIO_clear_retry_flags(b);
    try {
        e->q.append(data, n);
    } catch (const std::bad_alloc&) {  // no exception may cross OpenSSL
        e->out_of_memory = true;
        *written = 0;
        return 0;
    }
    *written = n;
    return 1;
}

int bio_read(BIO* b, char* out, std::size_t n, std::size_t* got) {
    auto* e = static_cast<endpoint*>(BIO_get_data(b));
    BIO_clear_retry_flags(b);
    if (e->q.empty()) {
        *got = 0;
        if (!e->eof) {
            BIO_set_retry_read(b);  // OpenSSL then reports SSL_ERROR_WANT_READ
        }
        return 0;
    }
    const std::span<const std::byte> have = e->q.view();
    const std::size_t k = std::min(n, have.size());
    std::memcpy(out, have.data(), k);
    e->q.consume(k);
    *got = k;
    return 1;
}

long bio_ctrl(BIO* b, int cmd, long, void*) {
    auto* e = static_cast<endpoint*>(BIO_get_data(b));
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;  // TRICKY: OpenSSL takes 0 here for "cannot flush yet" and stops the handshake
    case BIO_CTRL_PENDING:
    case BIO_CTRL_WPENDING:
        return static_cast<long>(e->q.size());
    case BIO_CTRL_EOF:
        // With this, OpenSSL reports the end as SSL_R_UNEXPECTED_EOF_WHILE_READING; without, as
        // SSL_ERROR_SYSCALL with nothing queued. settle() takes either as the end of stream.
        return e->eof && e->q.empty() ? 1 : 0;
    default:
        return 0;  // kTLS and the rest: not supported
    }
}

BIO_METHOD* make_queue_method() {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ringchat queue");
    if (m == nullptr || BIO_meth_set_write_ex(m, bio_write) != 1 ||
        BIO_meth_set_read_ex(m, bio_read) != 1 || BIO_meth_set_ctrl(m, bio_ctrl) != 1) {
        BIO_meth_free(m);
        ERR_clear_error();
        throw std::bad_alloc();
    }
    return m;
}

/// Made once, kept for the life of the process (every BIO of every engine uses it).
const BIO_METHOD* queue_method() {
    static BIO_METHOD* const method = make_queue_method();
    return method;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// 7. The engine
// ---------------------------------------------------------------------------------------------

struct engine::state {
    std::shared_ptr<const context::impl> ctx;  // outlives ssl: its callbacks point into it
    endpoint in;
    endpoint out;
    SSL* ssl = nullptr;  // owns the two BIOs over `in` and `out`
    std::string name;    // a client's server name
    std::error_code error;
    role side = role::client;
    bool done = false;  // the handshake
    bool wants_input = false;
    bool closed = false;  // the peer's close_notify was read
    bool shut = false;    // shutdown() was called

    state() = default;
    state(const state&) = delete;
    state& operator=(const state&) = delete;
    ~state() { SSL_free(ssl); }

    /// After an OpenSSL call returned `ret` for failure: wants_input for "more ciphertext
    /// first", closed for the peer's close_notify, otherwise the error, now final.
    std::error_code settle(int ret);
    std::error_code fail(std::error_code e) {
        ERR_clear_error();
        wants_input = false;
        error = e;
        return e;
    }
    void set_server_name(std::string_view server_name);
};

std::error_code engine::state::settle(int ret) {
    const int kind = SSL_get_error(ssl, ret);
    if (kind == SSL_ERROR_WANT_READ) {
        ERR_clear_error();
        wants_input = true;
        return {};
    }
    if (kind == SSL_ERROR_ZERO_RETURN) {
        if (!done) {
            return fail(make_error_code(errc::closed_in_handshake));
        }
        ERR_clear_error();
        closed = true;
        wants_input = false;
        return {};
    }
    const unsigned long first = ERR_peek_error();
    const int reason = ERR_GET_LIB(first) == ERR_LIB_SSL ? ERR_GET_REASON(first) : 0;
    if ((first == 0 && in.eof) || reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        return fail(make_error_code(done ? errc::truncated : errc::closed_in_handshake));
    }
    if (first == 0 && out.out_of_memory) {
        return fail(std::make_error_code(std::errc::not_enough_memory));
    }
    if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        // The reason the certificate failed is the verify result, not the queue's "verify failed".
        const long v = SSL_get_verify_result(ssl);
        if (v != X509_V_OK) {
            return fail({static_cast<int>(v), verify_category()});
        }
    }
    return fail(take_error());
}

void engine::state::set_server_name(std::string_view server_name) {
    if (server_name.empty()) {
        return;
    }
    if (server_name.size() > 255 || server_name.find('\0') != std::string_view::npos) {
        throw std::invalid_argument("tls: server name not usable (over 255 bytes, or a NUL in it)");
    }
    name = server_name;
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    ERR_clear_error();
    if (X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) == 1) {
        return;  // an address: checked against the certificate's, never sent as SNI
    }
    ERR_clear_error();
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (X509_VERIFY_PARAM_set1_host(param, name.data(), name.size()) != 1 ||
        SSL_set_tlsext_host_name(ssl, name.c_str()) != 1) {
        ERR_clear_error();
        throw std::invalid_argument(fmt::format("tls: server name not usable: {}", name));
    }
}

engine::engine(const context& ctx, std::string_view server_name)
    : s_(std::make_unique<state>()) {
    state& s = *s_;
    s.ctx = ctx.impl_;
    s.side = ctx.impl_->side;
    if (s.side == role::server && !server_name.empty()) {
        throw std::invalid_argument(
            "tls: a server engine takes no server_name (the client sends it)");
    }
    ERR_clear_error();
    s.ssl = SSL_new(ctx.impl_->ctx);
    BIO* r = BIO_new(queue_method());
    BIO* w = BIO_new(queue_method());
    if (s.ssl == nullptr || r == nullptr || w == nullptr) {
        BIO_free(r);
        BIO_free(w);
        ERR_clear_error();
        throw std::bad_alloc();
    }
    BIO_set_data(r, &s.in);
    BIO_set_data(w, &s.out);
    BIO_set_init(r, 1);
    BIO_set_init(w, 1);
    SSL_set_bio(s.ssl, r, w);  // the SSL owns both now
    if (s.side == role::client) {
        SSL_set_connect_state(s.ssl);
        s.set_server_name(server_name);
    } else {
        SSL_set_accept_state(s.ssl);
    }
}

engine::engine(engine&&) noexcept = default;
engine& engine::operator=(engine&&) noexcept = default;
engine::~engine() = default;

void engine::feed(std::span<const std::byte> ciphertext) {
    state& s = *s_;
    assert(!s.in.eof && "feed() after feed_eof()");
    if (s.error || s.closed) {
        return;  // nothing will read it
    }
    s.in.q.append(ciphertext.data(), ciphertext.size());
    s.wants_input = false;
}

void engine::feed_eof() noexcept {
    s_->in.eof = true;
    s_->wants_input = false;
}

result<void> engine::handshake() {
    state& s = *s_;
    if (s.error) {
        return s.error;
    }
    if (s.done) {
        return {};
    }
    ERR_clear_error();
    const int r = SSL_do_handshake(s.ssl);
    if (r == 1) {
        s.done = true;
        s.wants_input = false;
        return {};
    }
    return s.settle(r);
}

bool engine::handshake_done() const noexcept { return s_->done; }

result<std::size_t> engine::read(std::span<std::byte> plaintext) {
    state& s = *s_;
    if (s.error) {
        return s.error;
    }
    if (s.closed) {
        return std::size_t{0};
    }
    if (!s.done) {
        if (auto h = handshake(); !h) {
            return h.error();
        }
        if (!s.done) {
            return std::size_t{0};
        }
    }
    if (plaintext.empty()) {
        return std::size_t{0};
    }
    ERR_clear_error();
    std::size_t n = 0;
    if (SSL_read_ex(s.ssl, plaintext.data(), plaintext.size(), &n) == 1) {
        s.wants_input = false;
        return n;
    }
    if (const std::error_code e = s.settle(0)) {
        return e;
    }
    return std::size_t{0};
}

result<std::size_t> engine::write(std::span<const std::byte> plaintext) {
    state& s = *s_;
    if (s.error) {
        return s.error;
    }
    if (s.shut) {
        return make_error_code(errc::shut_down);
    }
    if (!s.done) {
        if (auto h = handshake(); !h) {
            return h.error();
        }
        if (!s.done) {
            return std::size_t{0};
        }
    }
    if (plaintext.empty()) {
        return std::size_t{0};
    }
    ERR_clear_error();
    std::size_t n = 0;
    if (SSL_write_ex(s.ssl, plaintext.data(), plaintext.size(), &n) == 1) {
        return n;  // all of it: the output queue never refuses
    }
    if (const std::error_code e = s.settle(0)) {
        return e;
    }
    return std::size_t{0};
}

void engine::shutdown() {
    state& s = *s_;
    if (s.shut) {
        return;
    }
    s.shut = true;
    if (s.error || !s.done) {
        return;
    }
    ERR_clear_error();
    // 0: close_notify queued, the peer's not read yet; 1: both. Either way nothing to wait for.
    SSL_shutdown(s.ssl);
    ERR_clear_error();
}

std::span<const std::byte> engine::output() const noexcept { return s_->out.q.view(); }

void engine::consume_output(std::size_t n) noexcept { s_->out.q.consume(n); }

bool engine::wants_input() const noexcept { return s_->wants_input; }

bool engine::closed() const noexcept { return s_->closed; }

std::error_code engine::error() const noexcept { return s_->error; }

role engine::side() const noexcept { return s_->side; }

bool engine::peer_verified() const noexcept {
    return s_->done && SSL_get0_peer_certificate(s_->ssl) != nullptr &&
           SSL_get_verify_result(s_->ssl) == X509_V_OK;
}

std::string_view engine::alpn() const noexcept {
    const unsigned char* p = nullptr;
    unsigned int n = 0;
    SSL_get0_alpn_selected(s_->ssl, &p, &n);
    return n == 0 ? std::string_view() : std::string_view(reinterpret_cast<const char*>(p), n);
}

std::string_view engine::server_name() const noexcept {
    if (s_->side == role::client) {
        return s_->name;
    }
    const char* n = SSL_get_servername(s_->ssl, TLSEXT_NAMETYPE_host_name);
    return n == nullptr ? std::string_view() : std::string_view(n);
}

std::string_view engine::version() const noexcept {
    return s_->done ? std::string_view(SSL_get_version(s_->ssl)) : std::string_view();
}

std::string_view engine::cipher() const noexcept {
    const SSL_CIPHER* c = s_->done ? SSL_get_current_cipher(s_->ssl) : nullptr;
    return c == nullptr ? std::string_view() : std::string_view(SSL_CIPHER_get_name(c));
}

std::size_t engine::held_bytes() const noexcept {
    return s_->in.q.capacity() + s_->out.q.capacity();
}

}  // namespace ringchat::chat::tls
