// SPDX-License-Identifier: MIT
// The Catch2 main shared by every test executable.
//
// GCC 12 with -fsanitize=address reports a false -Wmaybe-uninitialized inside <regex>, which
// Catch2's implementation uses; it is silenced here only, so -Werror holds elsewhere.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
