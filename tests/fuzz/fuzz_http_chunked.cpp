// SPDX-License-Identifier: MIT
// tests/fuzz/fuzz_http_chunked.cpp — examples/http's request body reader on a chunked body
// (RFC 9112 §7.1): the input is what follows a head with "Transfer-Encoding: chunked",
// framed as the server frames it (drive.hpp). The slice (the server's --max-header, its
// max_frame) and --max-body are picked by the input's size.
//
// Checked: each terminator asked for is "\r\n" or a count of 1 to `slice` bytes; a refusal is
// 400, 413 or 431; a body read is at most max_body bytes, and chunked again (in pieces of
// 1, 3 and 7 bytes, with an extension and a trailer) it reads back to itself; and the
// outcome and the body are the same in one chunk and in small chunks.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "examples/http/body.hpp"
#include "tests/fuzz/drive.hpp"

using namespace fuzz;
using http::body_reader;

namespace {

struct outcome {
    body_reader::status end = body_reader::status::more;
    int refusal = 0;
    std::string body;
};

outcome read(std::string_view in, bool small, std::size_t slice, std::size_t max_body) {
    outcome out;
    body_reader reader({http::body_framing::kind::chunked, 0}, max_body, slice, true, out.body);
    frames(
        in, small,
        [&](ringchat::chat::framer& f) {
            const auto t = reader.terminator();
            FUZZ_CHECK(t == terminator::bytes("\r\n") ||
                           (t.kind() == terminator_kind::count && t.remaining() >= 1 &&
                            t.remaining() <= slice),
                       "terminator %s, slice %zu", describe(t).c_str(), slice);
            f.set_terminator(t);
            f.set_max_frame(slice);
        },
        [&](const piece_of_input& p) {
            FUZZ_CHECK(!reader.finished(), "a frame fed after the end");
            out.end = reader.feed(p.f);
            FUZZ_CHECK((out.end == body_reader::status::refused) == (reader.refusal() != 0),
                       "refused without a refusal, or the reverse");
            FUZZ_CHECK(out.body.size() <= max_body, "a body of %zu bytes, max %zu",
                       out.body.size(), max_body);
            return out.end == body_reader::status::more;
        });
    out.refusal = reader.refusal();
    return out;
}

std::string chunked(std::string_view body, std::size_t step) {
    std::string out;
    for (std::size_t at = 0; at < body.size(); at += step) {
        const auto part = body.substr(at, step);
        out += fmt::format("{:X};ext=1\r\n", part.size());
        out += part;
        out += "\r\n";
    }
    return out + "0\r\nX-Trailer: yes\r\n\r\n";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto [in, slice, max_body] = input_of(data, size, {16 * 1024, 8, 64}, {1 << 20, 100});
    const outcome whole = read(in, false, slice, max_body);
    FUZZ_CHECK(whole.refusal == 0 || whole.refusal == 400 || whole.refusal == 413 ||
                   whole.refusal == 431,
               "refused with %d", whole.refusal);
    const outcome small = read(in, true, slice, max_body);
    FUZZ_CHECK(whole.end == small.end && whole.refusal == small.refusal &&
                   whole.body == small.body,
               "one chunk: %d, %zu bytes; small chunks: %d, %zu bytes", whole.refusal,
               whole.body.size(), small.refusal, small.body.size());
    if (whole.end == body_reader::status::done) {
        for (const std::size_t step : {1, 3, 7}) {
            const outcome again = read(chunked(whole.body, step), false, 16 * 1024, max_body);
            FUZZ_CHECK(again.end == body_reader::status::done && again.body == whole.body,
                       "a body of %zu bytes chunked by %zu reads back as %d, %zu bytes",
                       whole.body.size(), step, again.refusal, again.body.size());
        }
    }
    return 0;
}
