// SPDX-License-Identifier: MIT
// The producer tests' helpers (see helpers.hpp).
#include "tests/producers/helpers.hpp"

#include <unistd.h>

#include <atomic>
#include <charconv>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace ringchat::test {

std::string joined(const std::vector<std::string>& parts) {
    std::string out;
    for (const auto& p : parts) {
        out += p;
    }
    return out;
}

std::optional<std::string> decode_chunked(std::string_view coded) {
    std::string out;
    for (;;) {
        const auto eol = coded.find("\r\n");
        if (eol == std::string_view::npos || eol == 0) {
            return std::nullopt;
        }
        std::size_t size = 0;
        const auto [end, ec] = std::from_chars(coded.data(), coded.data() + eol, size, 16);
        if (ec != std::errc() || end != coded.data() + eol) {
            return std::nullopt;
        }
        coded.remove_prefix(eol + 2);
        if (size == 0) {
            // The last chunk: an empty trailer section, then nothing.
            return coded == "\r\n" ? std::optional(out) : std::nullopt;
        }
        if (coded.size() < size + 2 || coded.substr(size, 2) != "\r\n") {
            return std::nullopt;
        }
        out.append(coded.substr(0, size));
        coded.remove_prefix(size + 2);
    }
}

std::uint64_t fnv1a(std::string_view data, std::uint64_t hash) {
    for (const char c : data) {
        hash ^= static_cast<unsigned char>(c);
        hash *= 0x100000001b3ULL;
    }
    return hash;
}

temp_file::temp_file(std::uint64_t size, std::uint64_t seed) {
    static std::atomic<int> counter{0};
    path_ = (std::filesystem::temp_directory_path() /
             ("ringchat-producers-" + std::to_string(::getpid()) + "-" + std::to_string(counter++)))
                .string();
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    std::string block;
    std::uint64_t x = seed | 1;
    hash_ = fnv1a({});
    for (std::uint64_t left = size; left > 0;) {
        block.resize(static_cast<std::size_t>(std::min<std::uint64_t>(left, 1 << 20)));
        for (std::size_t i = 0; i < block.size(); i += 8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            for (std::size_t k = 0; k < 8 && i + k < block.size(); ++k) {
                block[i + k] = static_cast<char>(x >> (8 * k));
            }
        }
        hash_ = fnv1a(block, hash_);
        out.write(block.data(), static_cast<std::streamsize>(block.size()));
        left -= block.size();
    }
    if (!out.flush()) {
        throw std::runtime_error("cannot write " + path_);
    }
}

temp_file::~temp_file() {
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
}

std::string temp_file::content() const {
    std::ifstream in(path_, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace ringchat::test
