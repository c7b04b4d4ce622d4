// SPDX-License-Identifier: MIT
// file: an owning descriptor for a regular file, with positional read and write as
// awaitables (io_uring: IORING_OP_READ/WRITE; epoll: pread/pwrite, which never block on
// readiness for regular files).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>

#include "io_awaitable.hpp"
#include "result.hpp"

namespace ringchat {

class reactor;

class file {
public:
    file() = default;
    file(reactor& r, int fd) noexcept : reactor_(&r), fd_(fd) {}
    file(file&& o) noexcept : reactor_(o.reactor_), fd_(std::exchange(o.fd_, -1)) {}
    file& operator=(file&& o) noexcept;
    file(const file&) = delete;
    file& operator=(const file&) = delete;
    ~file() { close_now(); }

    /// open(2) with O_CLOEXEC added; `flags` as for open (O_RDONLY, O_WRONLY|O_CREAT ...).
    static result<file> open(reactor& r, const std::string& path, int flags, unsigned mode = 0644);

    bool valid() const noexcept { return fd_ >= 0; }
    int fd() const noexcept { return fd_; }
    /// Reads up to buf.size() bytes at `offset`; 0 at end of file.
    io_awaitable read(std::span<std::byte> buf, std::uint64_t offset) noexcept {
        return io_awaitable(*reactor_, opcode::read, fd_, buf.data(), clamp(buf.size()), 0,
                            offset);
    }
    /// Writes up to buf.size() bytes at `offset`.
    io_awaitable write(std::span<const std::byte> buf, std::uint64_t offset) noexcept {
        return io_awaitable(*reactor_, opcode::write, fd_, const_cast<std::byte*>(buf.data()),
                            clamp(buf.size()), 0, offset);
    }
    /// The file's size in bytes.
    result<std::uint64_t> size() const noexcept;
    void close_now() noexcept;

private:
    static std::uint32_t clamp(std::size_t n) noexcept {
        return n > 0x7fff'f000 ? 0x7fff'f000u : static_cast<std::uint32_t>(n);
    }
    reactor* reactor_ = nullptr;
    int fd_ = -1;
};

}  // namespace ringchat
