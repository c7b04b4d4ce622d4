// SPDX-License-Identifier: MIT
// tests/fuzz/fuzz_resp.cpp — examples/resp's request parser (inline and multibulk) over what a
// client sends, framed as the resp server frames it (drive.hpp). The frame limit (the
// parser's piece) and the query-buffer limit are picked by the input's size.
//
// Checked: each terminator asked for is a line or a count of 1 to `piece` bytes; a request
// has arguments, and serialised as a multibulk it parses back to the same arguments, as does
// its inline form (each argument quoted, \x escapes) through split_inline; held() stays within
// the limit until too_big, which comes only past it; a protocol error has one of Redis' words;
// and the requests and the outcome are the same in one chunk and in small chunks.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "examples/resp/request.hpp"
#include "tests/fuzz/drive.hpp"

using namespace fuzz;
using resp::request_parser;

namespace {

bool documented(const std::string& why) {
    static const std::string_view words[] = {
        "Protocol error: too big inline request",
        "Protocol error: too big bulk count string",
        "Protocol error: unbalanced quotes in request",
        "Protocol error: invalid multibulk length",
        "Protocol error: invalid bulk length",
        "Protocol error: expected CRLF after bulk data",
    };
    for (std::string_view w : words) {
        if (why == w) {
            return true;
        }
    }
    constexpr std::string_view expected = "Protocol error: expected '$', got '";
    return why.size() == expected.size() + 2 && why.starts_with(expected) && why.ends_with("'");
}

struct outcome {
    std::vector<std::vector<std::string>> requests;
    request_parser::status end = request_parser::status::more;
    std::string error;
};

outcome parse(std::string_view in, bool small, std::size_t piece, std::size_t limit) {
    outcome out;
    request_parser p(piece, limit);
    frames(
        in, small,
        [&](ringchat::chat::framer& f) {
            const auto t = p.terminator();
            if (t.kind() == terminator_kind::count) {
                FUZZ_CHECK(t.remaining() >= 1 && (piece == 0 || t.remaining() <= piece),
                           "a count of %llu with pieces of %zu",
                           static_cast<unsigned long long>(t.remaining()), piece);
            } else {
                FUZZ_CHECK(t == terminator::bytes("\n"), "terminator %s", describe(t).c_str());
            }
            f.set_terminator(t);
            f.set_max_frame(piece);
        },
        [&](const piece_of_input& fr) {
            const auto st = p.feed(fr.f);
            switch (st) {
            case request_parser::status::more:
                FUZZ_CHECK(p.held() <= limit, "held %zu, limit %zu", p.held(), limit);
                return true;
            case request_parser::status::request:
                FUZZ_CHECK(!p.args().empty(), "a request with no arguments");
                FUZZ_CHECK(p.held() <= limit, "held %zu, limit %zu", p.held(), limit);
                out.requests.emplace_back(p.args().begin(), p.args().end());
                return true;
            case request_parser::status::protocol_error:
                FUZZ_CHECK(documented(p.error()), "error \"%s\"", escaped(p.error()).c_str());
                out.error = p.error();
                break;
            case request_parser::status::too_big:
                FUZZ_CHECK(p.held() > limit, "too_big with %zu held, limit %zu", p.held(),
                           limit);
                break;
            }
            out.end = st;
            return false;  // the server closes the connection
        });
    return out;
}

std::string multibulk(const std::vector<std::string>& args) {
    std::string out = "*" + std::to_string(args.size()) + "\r\n";
    for (const std::string& a : args) {
        out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
    }
    return out;
}

std::string quoted(const std::vector<std::string>& args) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (const std::string& a : args) {
        out += out.empty() ? "\"" : " \"";
        for (unsigned char c : a) {
            out += {'\\', 'x', hex[c >> 4], hex[c & 15]};
        }
        out += '"';
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto [in, piece, limit] =
        input_of(data, size, {0, 7, 64, 64 * 1024}, {resp::default_query_limit, 48});
    const outcome whole = parse(in, false, piece, limit);
    const outcome small = parse(in, true, piece, limit);
    FUZZ_CHECK(whole.requests == small.requests && whole.end == small.end &&
                   whole.error == small.error,
               "one chunk: %zu requests, \"%s\"; small chunks: %zu requests, \"%s\"",
               whole.requests.size(), whole.error.c_str(), small.requests.size(),
               small.error.c_str());
    for (const auto& args : whole.requests) {
        const outcome again = parse(multibulk(args), false, 0, resp::default_query_limit);
        FUZZ_CHECK(again.requests.size() == 1 && again.requests[0] == args &&
                       again.end == request_parser::status::more,
                   "a request serialised as a multibulk does not parse back");
        std::vector<std::string> split;
        FUZZ_CHECK(resp::split_inline(quoted(args), split) && split == args,
                   "a request quoted does not split back: %s", quoted(args).c_str());
    }
    return 0;
}
