// SPDX-License-Identifier: MIT
// Backend selection with the automatic fallback to epoll.
#include "backend_select.hpp"

#include <cerrno>
#include <system_error>

#include "epoll_backend.hpp"
#include "error.hpp"
#include "log.hpp"
#include "uring_backend.hpp"

namespace ringchat {
namespace {

bool is_blocked(std::error_code e) noexcept {
    if (e == errc::backend_unavailable) {
        return true;
    }
    if (e.category() != std::system_category()) {
        return false;
    }
    switch (e.value()) {
    case ENOSYS:
    case EPERM:
    case EACCES:
    case ENOMEM:
        return true;
    default:
        return false;
    }
}

}  // namespace

std::unique_ptr<backend> make_backend(const reactor_options& options) {
    if (options.kind != backend_kind::epoll) {
        auto ring = uring_backend::create(options);
        if (ring) {
            return std::move(*ring);
        }
        if (options.kind == backend_kind::uring || !is_blocked(ring.error())) {
            throw std::system_error(ring.error(), "io_uring_setup");
        }
        log::info("io_uring unavailable ({}); using epoll", ring.error().message());
    }
    auto poller = epoll_backend::create(options);
    if (!poller) {
        throw std::system_error(poller.error(), "epoll_create1");
    }
    return std::move(*poller);
}

}  // namespace ringchat
