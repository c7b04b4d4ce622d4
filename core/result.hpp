// SPDX-License-Identifier: MIT
// result<T>: a value or a std::error_code, the return type of every I/O operation.
//
// A small subset of C++23's std::expected: routine outcomes (reset, timeout, refused) are
// values of this type, never exceptions. `value()` on an error throws std::system_error, so
// code that cannot handle an error may simply use the value.
#pragma once

#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace ringchat {

template <class T>
class [[nodiscard]] result {
public:
    result(T value) noexcept(std::is_nothrow_move_constructible_v<T>)
        : state_(std::in_place_index<0>, std::move(value)) {}
    result(std::error_code error) noexcept : state_(std::in_place_index<1>, error) {}

    bool has_value() const noexcept { return state_.index() == 0; }
    explicit operator bool() const noexcept { return has_value(); }

    /// The value; throws std::system_error when this holds an error.
    T& value() & {
        check();
        return *std::get_if<0>(&state_);
    }
    const T& value() const& {
        check();
        return *std::get_if<0>(&state_);
    }
    T&& value() && {
        check();
        return std::move(*std::get_if<0>(&state_));
    }
    T& operator*() & noexcept { return *std::get_if<0>(&state_); }
    const T& operator*() const& noexcept { return *std::get_if<0>(&state_); }
    T&& operator*() && noexcept { return std::move(*std::get_if<0>(&state_)); }
    T* operator->() noexcept { return std::get_if<0>(&state_); }
    const T* operator->() const noexcept { return std::get_if<0>(&state_); }

    /// The error; an empty error_code when this holds a value.
    std::error_code error() const noexcept {
        const auto* e = std::get_if<1>(&state_);
        return e ? *e : std::error_code();
    }

private:
    void check() const {
        if (!has_value()) {
            throw std::system_error(*std::get_if<1>(&state_));
        }
    }
    std::variant<T, std::error_code> state_;
};

/// result<void>: success or an error.
template <>
class [[nodiscard]] result<void> {
public:
    result() noexcept = default;
    result(std::error_code error) noexcept : error_(error) {}

    bool has_value() const noexcept { return !error_; }
    explicit operator bool() const noexcept { return has_value(); }
    void value() const {
        if (error_) {
            throw std::system_error(error_);
        }
    }
    std::error_code error() const noexcept { return error_; }

private:
    std::error_code error_;
};

/// The error_code for a negative errno value as the kernel returns it (-EAGAIN ...).
inline std::error_code errno_code(int negative_errno) noexcept {
    return {-negative_errno, std::system_category()};
}

}  // namespace ringchat
