#pragma once
// The model-file flags every command that opens a model shares, spelled as in
// stable-diffusion.cpp so its users can switch binaries.
#include <CLI/CLI.hpp>

#include "io/model_source.h"

namespace ebb {

void add_model_flags(CLI::App& cmd, ModelPaths& paths);

}  // namespace ebb
