// SPDX-License-Identifier: MIT
// tests/fuzz/fuzz_http_head.cpp — examples/http's request head parser and what the server
// asks of a head: its body framing, its path, keep-alive. The input is what a client sends;
// the head is cut from it as the server cuts it (up to "\r\n\r\n", the CRLFs before a
// request line dropped).
//
// Checked: a refusal is 400, 431 or 505 and says why; a head accepted has a token method, a
// target with no space or control character, lower-case header names, at most max_headers
// fields, values with no control character and no whitespace around them, one Host in
// HTTP/1.1; written out again it parses back to the same request; its body framing is 0,
// 400 or 501, chunked only in HTTP/1.1 and never with a Content-Length; a path decoded
// starts with "/", holds no NUL, and percent-encoded (as Location is) decodes back to
// itself.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "examples/http/request.hpp"
#include "examples/http/site.hpp"
#include "tests/fuzz/script.hpp"

using namespace fuzz;

namespace {

std::string written(const http::request& r) {
    std::string out = r.method + " " + r.target + " HTTP/1." + std::to_string(r.minor) + "\r\n";
    for (const http::header& h : r.headers) {
        out += h.name + ": " + h.value + "\r\n";
    }
    return out;
}

bool token_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

void check_request(const http::request& r) {
    FUZZ_CHECK(!r.method.empty(), "an empty method");
    for (char c : r.method) {
        FUZZ_CHECK(token_char(c), "method \"%s\"", escaped(r.method).c_str());
    }
    FUZZ_CHECK(!r.target.empty(), "an empty target");
    for (char c : r.target) {
        FUZZ_CHECK(c > ' ' && c != 0x7f, "target \"%s\"", escaped(r.target).c_str());
    }
    FUZZ_CHECK(r.minor == 0 || r.minor == 1, "minor %d", r.minor);
    FUZZ_CHECK(r.headers.size() <= http::max_headers, "%zu headers", r.headers.size());
    std::size_t hosts = 0;
    for (const http::header& h : r.headers) {
        FUZZ_CHECK(!h.name.empty(), "an empty header name");
        for (char c : h.name) {
            FUZZ_CHECK(token_char(c) && !(c >= 'A' && c <= 'Z'), "name \"%s\"",
                       escaped(h.name).c_str());
        }
        for (char c : h.value) {
            const auto u = static_cast<unsigned char>(c);
            FUZZ_CHECK((u >= 0x20 || c == '\t') && u != 0x7f, "value \"%s\"",
                       escaped(h.value).c_str());
        }
        FUZZ_CHECK(h.value.empty() || (h.value.front() != ' ' && h.value.front() != '\t' &&
                                       h.value.back() != ' ' && h.value.back() != '\t'),
                   "value \"%s\" not trimmed", escaped(h.value).c_str());
        hosts += h.name == "host" ? 1 : 0;
    }
    FUZZ_CHECK(r.minor == 0 || hosts == 1, "HTTP/1.1 with %zu Host headers", hosts);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view block(reinterpret_cast<const char*>(data), size);
    block = block.substr(0, block.find("\r\n\r\n"));
    while (block.starts_with("\r\n")) {
        block.remove_prefix(2);
    }
    const std::string copy(block);  // its own allocation: ASan sees a read past the head
    http::request req;
    std::string why;
    const int refused = http::parse_head(copy, req, why);
    if (refused != 0) {
        FUZZ_CHECK(refused == 400 || refused == 431 || refused == 505, "refused with %d",
                   refused);
        FUZZ_CHECK(!why.empty(), "refused with %d, no reason", refused);
        return 0;
    }
    check_request(req);

    const std::string again_text = written(req);
    http::request again;
    const int reparsed = http::parse_head(again_text, again, why);
    FUZZ_CHECK(reparsed == 0 && again.method == req.method && again.target == req.target &&
                   again.minor == req.minor && again.headers.size() == req.headers.size(),
               "written out, \"%s\" parses to %d (%s)", escaped(again_text).c_str(), reparsed,
               why.c_str());
    for (std::size_t i = 0; i < req.headers.size(); ++i) {
        FUZZ_CHECK(again.headers[i].name == req.headers[i].name &&
                       again.headers[i].value == req.headers[i].value,
                   "header %zu written out comes back otherwise", i);
    }

    (void)req.keep_alive();
    http::body_framing framing;
    const int bad_framing = http::body_framing_of(req, framing);
    FUZZ_CHECK(bad_framing == 0 || bad_framing == 400 || bad_framing == 501, "framing %d",
               bad_framing);
    if (bad_framing == 0) {
        using kind = http::body_framing::kind;
        FUZZ_CHECK(framing.what != kind::chunked ||
                       (req.minor == 1 && req.find("content-length") == nullptr),
                   "chunked in HTTP/1.%d or with a Content-Length", req.minor);
        FUZZ_CHECK(framing.what != kind::length || framing.length > 0, "a length of 0");
        FUZZ_CHECK(framing.what == kind::chunked || req.find("transfer-encoding") == nullptr,
                   "a Transfer-Encoding not chunked");
    }

    std::string path;
    const int bad_path = http::decode_path(req.target, path);
    FUZZ_CHECK(bad_path == 0 || bad_path == 400, "decode_path: %d", bad_path);
    if (bad_path == 0) {
        FUZZ_CHECK(!path.empty() && path.front() == '/', "path \"%s\"", escaped(path).c_str());
        FUZZ_CHECK(path.find('\0') == std::string::npos, "a NUL in the path");
        std::string back;
        const std::string encoded = http::percent_encode(path);
        FUZZ_CHECK(http::decode_path(encoded, back) == 0 && back == path,
                   "\"%s\" percent-encoded as \"%s\" decodes to \"%s\"", escaped(path).c_str(),
                   escaped(encoded).c_str(), escaped(back).c_str());
    }
    return 0;
}
