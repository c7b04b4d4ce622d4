// SPDX-License-Identifier: MIT
// Parsing and printing socket addresses.
#include "address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <charconv>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

namespace ringchat {
namespace {

bool parse_port(std::string_view text, std::uint16_t& port) noexcept {
    const char* end = text.data() + text.size();
    auto [p, ec] = std::from_chars(text.data(), end, port);
    return ec == std::errc() && p == end && !text.empty();
}

}  // namespace

address address::ipv4(std::string_view host, std::uint16_t port) {
    address a;
    auto* sin = reinterpret_cast<sockaddr_in*>(&a.storage_);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    if (inet_pton(AF_INET, std::string(host).c_str(), &sin->sin_addr) != 1) {
        throw std::invalid_argument("not an IPv4 address: " + std::string(host));
    }
    a.size_ = sizeof(sockaddr_in);
    return a;
}

address address::ipv6(std::string_view host, std::uint16_t port) {
    address a;
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    if (inet_pton(AF_INET6, std::string(host).c_str(), &sin6->sin6_addr) != 1) {
        throw std::invalid_argument("not an IPv6 address: " + std::string(host));
    }
    a.size_ = sizeof(sockaddr_in6);
    return a;
}

address address::unix_path(std::string_view path) {
    address a;
    auto* sun = reinterpret_cast<sockaddr_un*>(&a.storage_);
    if (path.empty() || path.size() >= sizeof sun->sun_path) {
        throw std::invalid_argument("Unix socket path empty or too long: " + std::string(path));
    }
    sun->sun_family = AF_UNIX;
    std::memcpy(sun->sun_path, path.data(), path.size());
    a.size_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    return a;
}

result<address> address::parse(std::string_view text) {
    const std::error_code invalid(EINVAL, std::system_category());
    try {
        if (text.starts_with("unix:")) {
            return unix_path(text.substr(5));
        }
        std::uint16_t port = 0;
        if (text.starts_with("[")) {
            const auto close = text.find("]:");
            if (close == std::string_view::npos || !parse_port(text.substr(close + 2), port)) {
                return invalid;
            }
            return ipv6(text.substr(1, close - 1), port);
        }
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos || !parse_port(text.substr(colon + 1), port)) {
            return invalid;
        }
        return ipv4(text.substr(0, colon), port);
    } catch (const std::invalid_argument&) {
        return invalid;
    }
}

address address::from(const sockaddr* sa, socklen_t size) {
    address a;
    if (size > sizeof a.storage_) {
        size = sizeof a.storage_;
    }
    std::memcpy(&a.storage_, sa, size);
    a.size_ = size;
    return a;
}

std::uint16_t address::port() const noexcept {
    switch (family()) {
    case AF_INET:
        return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
    case AF_INET6:
        return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
    default:
        return 0;
    }
}

std::string address::to_string() const {
    char host[INET6_ADDRSTRLEN] = {};
    switch (family()) {
    case AF_INET:
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, host,
                  sizeof host);
        return std::string(host) + ":" + std::to_string(port());
    case AF_INET6:
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, host,
                  sizeof host);
        // Not "[" + std::string(host) + ...: GCC 12 at -O3 warns about that operator+
        // (-Wrestrict, a false positive), which -Werror makes an error.
        return fmt::format("[{}]:{}", host, port());
    case AF_UNIX:
        return "unix:" + std::string(reinterpret_cast<const sockaddr_un*>(&storage_)->sun_path);
    default:
        return "(unspecified)";
    }
}

}  // namespace ringchat
