// SPDX-License-Identifier: MIT
// lines::more(): the next lines, each with its separator (see lines.hpp).
#include "lines.hpp"

#include <algorithm>

namespace ringchat::producers {

chunk lines::more() {
    chunk out;
    while (out.empty() && next_ < lines_.size()) {
        const std::size_t end = std::min(lines_.size(), next_ + per_chunk_);
        std::size_t size = 0;
        for (std::size_t i = next_; i < end; ++i) {
            size += lines_[i].size() + separator_.size();
        }
        out.reserve(size);
        for (; next_ < end; ++next_) {
            out.append(lines_[next_]).append(separator_);
        }
    }
    return out;
}

}  // namespace ringchat::producers
