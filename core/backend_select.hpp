// SPDX-License-Identifier: MIT
// make_backend(): the one place that decides between io_uring and epoll.
#pragma once

#include <memory>

#include "backend.hpp"

namespace ringchat {

/// io_uring, epoll, or (automatic) io_uring with a fall back to epoll where io_uring is
/// blocked or missing: ENOSYS (no io_uring), EPERM/EACCES (seccomp, io_uring_disabled),
/// ENOMEM (locked-memory limit), or a missing opcode. One log line says why.
/// \throws std::system_error when the kind asked for explicitly cannot be created.
std::unique_ptr<backend> make_backend(const reactor_options& options);

}  // namespace ringchat
