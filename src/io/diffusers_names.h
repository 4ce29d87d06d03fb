#pragma once
// diffusers folders name the UNet (UNet2DConditionModel) and the VAE (AutoencoderKL) their own
// way; the models read the original single-file (LDM/SGM) names. The model source renames such
// tensors here, so nothing above it knows which layout a file had. The renaming is a table of
// module prefixes per component, built from the structure the names show (levels, blocks per
// level, which levels hold attention), the inverse of what diffusers' single-file converters
// (diffusers.loaders.single_file_utils) do. Text encoders need none: CLIP-L's transformers
// names are what single files use, and OpenCLIP towers in transformers' layout are read as
// they are (models/open_clip.h).
#include <string>
#include <string_view>
#include <vector>

#include "io/tensor_info.h"

namespace ebb {

enum class DiffusersModel { UNet, Vae };

// Renames every tensor to its single-file name within the component (no prefix); the VAE's
// attention projections, linear layers in diffusers, get the original 1×1 convolution shape
// (the bytes are the same). A name the table has no rule for is an ebb::Error naming it and
// `where` (the file or folder).
void rename_diffusers_tensors(DiffusersModel model, const std::vector<TensorInfo*>& tensors,
                              std::string_view where);

}  // namespace ebb
