// SPDX-License-Identifier: MIT
// tests/fuzz/fuzz_http_range.cpp — examples/http's Range parser (RFC 9110 §14): a resource
// size (the input's first 8 bytes: small sizes, huge ones and 0 all come up), then a Range
// value.
//
// Checked: a satisfiable range lies inside the resource and is not empty (no overflow at
// either end); written out as "bytes=first-last" it parses back to itself, and as a suffix
// "bytes=-length" when it ends the resource; an unsatisfiable one is one that starts at or
// past the end (or asks for the last 0 bytes, or of an empty resource).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <fuzzer/FuzzedDataProvider.h>

#include "examples/http/request.hpp"
#include "tests/fuzz/script.hpp"

using namespace fuzz;
using http::range_kind;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    const auto pick = in.ConsumeIntegral<std::uint8_t>();
    std::uint64_t resource = in.ConsumeIntegral<std::uint64_t>();
    if (pick % 4 != 0) {
        resource %= 1 + (pick % 4 == 1 ? 16 : 100000);  // the sizes of files that exist
    }
    const std::string value = in.ConsumeRemainingBytesAsString();
    std::uint64_t first = 0;
    std::uint64_t length = 0;
    const range_kind k = http::parse_range(value, resource, first, length);
    if (k != range_kind::satisfiable) {
        return 0;
    }
    FUZZ_CHECK(length > 0 && first < resource && length <= resource - first,
               "\"%s\" of %llu bytes: first %llu, length %llu", escaped(value).c_str(),
               static_cast<unsigned long long>(resource), static_cast<unsigned long long>(first),
               static_cast<unsigned long long>(length));
    const std::string plain =
        "bytes=" + std::to_string(first) + "-" + std::to_string(first + length - 1);
    std::uint64_t f2 = 0;
    std::uint64_t l2 = 0;
    FUZZ_CHECK(http::parse_range(plain, resource, f2, l2) == range_kind::satisfiable &&
                   f2 == first && l2 == length,
               "\"%s\" parses to %llu+%llu, not %llu+%llu", plain.c_str(),
               static_cast<unsigned long long>(f2), static_cast<unsigned long long>(l2),
               static_cast<unsigned long long>(first), static_cast<unsigned long long>(length));
    if (first + length == resource) {
        const std::string suffix = "bytes=-" + std::to_string(length);
        FUZZ_CHECK(http::parse_range(suffix, resource, f2, l2) == range_kind::satisfiable &&
                       f2 == first && l2 == length,
                   "\"%s\" parses otherwise", suffix.c_str());
    }
    const std::string past = "bytes=" + std::to_string(resource) + "-";
    FUZZ_CHECK(http::parse_range(past, resource, f2, l2) == range_kind::unsatisfiable,
               "\"%s\" is not unsatisfiable", past.c_str());
    return 0;
}
