// SPDX-License-Identifier: MIT
// tests/support/test_certs.cpp — the TLS tests' certificates, made with OpenSSL's API.
#include "tests/support/test_certs.hpp"

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>

namespace ringchat::test {
namespace {

struct x509_free_t {
    void operator()(X509* x) const noexcept { X509_free(x); }
};
struct pkey_free_t {
    void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
using x509_ptr = std::unique_ptr<X509, x509_free_t>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free_t>;

[[noreturn]] void fail(const std::string& step) {
    char why[256] = "no OpenSSL error";
    if (const unsigned long e = ERR_get_error()) {
        ERR_error_string_n(e, why, sizeof why);
    }
    ERR_clear_error();
    throw std::runtime_error("test_certs: " + step + ": " + why);
}

/// A key and its certificate, in memory.
struct made {
    pkey_ptr key;
    x509_ptr cert;
};

void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (ext == nullptr || X509_add_ext(cert, ext, -1) != 1) {
        X509_EXTENSION_free(ext);
        fail(std::string("extension ") + value);
    }
    X509_EXTENSION_free(ext);
}

/// A certificate for `common_name`, valid from `from` to `until` seconds from now, signed by
/// `issuer` (itself when null). `san`: the subjectAltName, or none when empty.
made make_cert(const char* common_name, const char* san, bool is_ca, const made* issuer,
               long from, long until) {
    static long serial = 1;
    made m;
    m.key.reset(EVP_EC_gen("P-256"));
    if (!m.key) {
        fail("EC P-256 key");
    }
    m.cert.reset(X509_new());
    X509* x = m.cert.get();
    if (x == nullptr || X509_set_version(x, X509_VERSION_3) != 1 ||
        ASN1_INTEGER_set(X509_get_serialNumber(x), serial++) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(x), from) == nullptr ||
        X509_gmtime_adj(X509_getm_notAfter(x), until) == nullptr ||
        X509_set_pubkey(x, m.key.get()) != 1 ||
        X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>(common_name), -1, -1,
                                   0) != 1) {
        fail(std::string("certificate for ") + common_name);
    }
    X509* signer = issuer != nullptr ? issuer->cert.get() : x;
    if (X509_set_issuer_name(x, X509_get_subject_name(signer)) != 1) {
        fail("issuer name");
    }
    add_extension(x, signer, NID_subject_key_identifier, "hash");
    if (is_ca) {
        add_extension(x, signer, NID_basic_constraints, "critical,CA:TRUE");
        add_extension(x, signer, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
    } else {
        add_extension(x, signer, NID_basic_constraints, "critical,CA:FALSE");
        add_extension(x, signer, NID_key_usage, "critical,digitalSignature");
        add_extension(x, signer, NID_ext_key_usage, "serverAuth,clientAuth");
    }
    if (*san != '\0') {
        add_extension(x, signer, NID_subject_alt_name, san);
    }
    if (issuer != nullptr) {
        add_extension(x, signer, NID_authority_key_identifier, "keyid:always");
    }
    EVP_PKEY* signing_key = issuer != nullptr ? issuer->key.get() : m.key.get();
    if (X509_sign(x, signing_key, EVP_sha256()) == 0) {
        fail(std::string("signing ") + common_name);
    }
    return m;
}

void write_pem(const made& m, const cert_pair& to) {
    BIO* c = BIO_new_file(to.cert.c_str(), "w");
    const bool cert_ok = c != nullptr && PEM_write_bio_X509(c, m.cert.get()) == 1;
    BIO_free(c);
    BIO* k = BIO_new_file(to.key.c_str(), "w");
    const bool key_ok = k != nullptr && PEM_write_bio_PrivateKey(k, m.key.get(), nullptr, nullptr,
                                                                 0, nullptr, nullptr) == 1;
    BIO_free(k);
    if (!cert_ok || !key_ok) {
        fail("writing " + to.cert);
    }
}

/// The set, and its folder removed at exit.
struct owned_certs : test_certs {
    owned_certs() {
        char tmpl[] = "/tmp/ringchat-tls-XXXXXX";
        if (mkdtemp(tmpl) == nullptr) {
            throw std::system_error(errno, std::system_category(), "test_certs: mkdtemp");
        }
        dir = tmpl;
        auto pair = [this](const char* name) {
            return cert_pair{dir + "/" + name + ".pem", dir + "/" + name + ".key"};
        };
        ca = pair("ca");
        localhost = pair("localhost");
        other = pair("other");
        expired = pair("expired");
        self_signed = pair("self-signed");

        constexpr long day = 24 * 3600;
        constexpr const char* local = "DNS:localhost,IP:127.0.0.1";
        const made authority = make_cert("ringchat test CA", "", true, nullptr, -day, 30 * day);
        write_pem(authority, ca);
        write_pem(make_cert("localhost", local, false, &authority, -day, 30 * day), localhost);
        write_pem(make_cert("other.test", "DNS:other.test", false, &authority, -day, 30 * day),
                  other);
        write_pem(make_cert("localhost", local, false, &authority, -2 * day, -day), expired);
        // As `openssl req -x509 -addext subjectAltName=...` makes one: its own CA.
        write_pem(make_cert("localhost", local, true, nullptr, -day, 30 * day), self_signed);
    }
    ~owned_certs() {
        std::error_code ignored;
        std::filesystem::remove_all(dir, ignored);
    }
    owned_certs(const owned_certs&) = delete;
    owned_certs& operator=(const owned_certs&) = delete;
};

}  // namespace

const test_certs& test_certs::get() {
    static const owned_certs instance;
    return instance;
}

const tls_test_contexts& tls_test_contexts::get() {
    static const tls_test_contexts made = [] {
        const test_certs& certs = test_certs::get();
        chat::tls::context_options s;
        s.cert_file = certs.localhost.cert;
        s.key_file = certs.localhost.key;
        chat::tls::context_options c;
        c.ca_file = certs.ca.cert;
        return tls_test_contexts{chat::tls::context::server(s).value(),
                                 chat::tls::context::client(c).value()};
    }();
    return made;
}

}  // namespace ringchat::test
