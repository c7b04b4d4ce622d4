// SPDX-License-Identifier: MIT
// The io_uring backend: one ring per reactor, operations as SQEs, completions harvested in
// batches. With uring_buffer_ring, the only file that includes <liburing.h>.
//
// Invariant: user_data is either a request (an 8-aligned io_request*) or a tag below 8 for
// internal CQEs (linked timeouts, cancels, the wake-up read), which carry no waiter; or a
// failed IORING_OP_MSG_RING, tagged in its low 3 bits with the peer's wake-up eventfd above.
#pragma once

#include <memory>

#include "backend.hpp"
#include "result.hpp"

namespace ringchat {

class uring_backend final : public backend {
public:
    /// Sets up a ring, probes the opcodes ringchat needs and registers the buffer ring.
    /// \return the errno of io_uring_setup (ENOSYS, EPERM, EACCES, ENOMEM ...), or
    ///         errc::backend_unavailable when an opcode or feature is missing.
    static result<std::unique_ptr<backend>> create(const reactor_options& options);
    ~uring_backend() override;

    backend_kind kind() const noexcept override { return backend_kind::uring; }
    std::string_view name() const noexcept override { return "io_uring"; }
    bool start(io_request& r) noexcept override;
    void cancel(io_request& r) noexcept override;
    void poll(std::chrono::nanoseconds timeout, ready_queue& ready) override;
    void wake() noexcept override;
    void wake_peer(backend& target) noexcept override;
    void forget(int) noexcept override {}
    std::uint32_t free_buffers() const noexcept override;
    bool incremental_buffers() const noexcept override;
    bool registered_ring_fd() const noexcept override;

    /// The setup flags that worked, as text ("SINGLE_ISSUER|DEFER_TASKRUN", ...).
    std::string_view setup_mode() const noexcept;

protected:
    void give_back(std::uint16_t id) noexcept override;

    struct state;  // the ring and everything that names liburing types

private:
    explicit uring_backend(std::unique_ptr<state> s) noexcept;
    /// A sendfile request found the socket full again: poll for POLLOUT once more.
    bool repoll(io_request& r) noexcept;
    std::unique_ptr<state> s_;
};

}  // namespace ringchat
