// SPDX-License-Identifier: MIT
// Opening and closing files; reads and writes are awaitables in the header.
#include "file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace ringchat {

file& file::operator=(file&& o) noexcept {
    if (this != &o) {
        close_now();
        reactor_ = o.reactor_;
        fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
}

result<file> file::open(reactor& r, const std::string& path, int flags, unsigned mode) {
    const int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
    if (fd < 0) {
        return std::error_code(errno, std::system_category());
    }
    return file(r, fd);
}

result<std::uint64_t> file::size() const noexcept {
    struct stat st {};
    if (fstat(fd_, &st) < 0) {
        return std::error_code(errno, std::system_category());
    }
    return static_cast<std::uint64_t>(st.st_size);
}

void file::close_now() noexcept {
    if (fd_ >= 0) {
        ::close(std::exchange(fd_, -1));
    }
}

}  // namespace ringchat
