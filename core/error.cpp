// SPDX-License-Identifier: MIT
// The category behind ringchat::errc.
#include "error.hpp"

#include <string>

namespace ringchat {
namespace {

class category final : public std::error_category {
public:
    const char* name() const noexcept override { return "ringchat"; }
    std::string message(int value) const override {
        switch (static_cast<errc>(value)) {
        case errc::frame_too_long:
            return "frame longer than the maximum frame size";
        case errc::backend_unavailable:
            return "backend unavailable";
        case errc::stopped:
            return "reactor stopping";
        case errc::output_overflow:
            return "queued output over the channel's limit (max_output): the peer does not read";
        }
        return "unknown ringchat error";
    }
};

}  // namespace

const std::error_category& ringchat_category() noexcept {
    static const category instance;
    return instance;
}

}  // namespace ringchat
