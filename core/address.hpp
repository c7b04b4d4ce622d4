// SPDX-License-Identifier: MIT
// address: an IPv4, IPv6 or Unix-domain socket address, by value.
//
//     auto a = address::parse("127.0.0.1:8080");   // also "[::1]:8080", "unix:/run/x.sock"
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "result.hpp"

namespace ringchat {

class address {
public:
    address() = default;
    /// Numeric hosts only ("127.0.0.1", "::1"); \throws std::invalid_argument otherwise.
    static address ipv4(std::string_view host, std::uint16_t port);
    static address ipv6(std::string_view host, std::uint16_t port);
    /// A Unix-domain path (at most 107 bytes); \throws std::invalid_argument if longer.
    static address unix_path(std::string_view path);
    /// "host:port" (IPv4), "[host]:port" (IPv6), "unix:PATH"; EINVAL when malformed.
    static result<address> parse(std::string_view text);
    static address from(const sockaddr* sa, socklen_t size);

    int family() const noexcept { return storage_.ss_family; }
    /// The port (0 for a Unix-domain address).
    std::uint16_t port() const noexcept;
    std::string to_string() const;

    const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
    sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
    socklen_t size() const noexcept { return size_; }
    void set_size(socklen_t size) noexcept { size_ = size; }
    static constexpr socklen_t capacity() noexcept { return sizeof(sockaddr_storage); }

private:
    sockaddr_storage storage_{};
    socklen_t size_ = 0;
};

}  // namespace ringchat
