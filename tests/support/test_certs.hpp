// SPDX-License-Identifier: MIT
// tests/support/test_certs.hpp — certificates for the TLS tests, made at run time with
// OpenSSL's API (EC P-256 keys: fast) into a temporary folder, removed when the process ends.
//
// Invariant: made once per process, on first use; every file is PEM, and each key file holds
// the private key of the certificate beside it.
#pragma once

#include <string>

#include "chat/tls.hpp"

namespace ringchat::test {

/// A certificate and its private key, as two files.
struct cert_pair {
    std::string cert;
    std::string key;
};

struct test_certs {
    std::string dir;        ///< the folder that holds them all
    cert_pair ca;           ///< "ringchat test CA", self-signed, CA:TRUE
    cert_pair localhost;    ///< issued by ca: DNS:localhost, IP:127.0.0.1 (server and client use)
    cert_pair other;        ///< issued by ca: DNS:other.test (the second name, for SNI)
    cert_pair expired;      ///< issued by ca for localhost; expired a day ago
    cert_pair self_signed;  ///< localhost, self-signed: not issued by ca

    /// The set, made on first use. Throws std::runtime_error naming the step that failed.
    static const test_certs& get();
};

/// The contexts the TLS test helpers use (scripted_peer, tls_relay): a server presenting the
/// localhost certificate, and a client that verifies it against the CA. Made on first use.
struct tls_test_contexts {
    chat::tls::context server;
    chat::tls::context client;

    static const tls_test_contexts& get();
};

}  // namespace ringchat::test
