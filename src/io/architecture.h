#pragma once
// Which model a set of tensors is, decided from tensor names and shapes alone, so that a file
// with no metadata (most single-file checkpoints) is still recognised.
#include <functional>
#include <string>
#include <string_view>

#include "io/tensor_info.h"

namespace ebb {

enum class Architecture { Unknown, SD1, SD2, SDXL, SD3, Flux };
std::string_view architecture_name(Architecture a);

// How a component's tensors are named: the original single-file conventions (CompVis/SGM
// UNet and VAE, OpenAI/OpenCLIP text encoders, BFL Flux, SAI MMDiT), or diffusers/transformers.
enum class Naming { Unknown, Original, OpenClip, Diffusers };
std::string_view naming_name(Naming n);

struct ArchitectureGuess {
  Architecture arch = Architecture::Unknown;
  std::string reason;  // the tensor and shape that decided, or why nothing matched
};

using TensorLookup = std::function<const TensorInfo*(std::string_view name)>;

// Decides from the diffusion model's tensors (names within the component).
ArchitectureGuess detect_architecture(const TensorLookup& diffusion_model, Naming naming);

// The naming convention of one component from one of its tensor names.
Naming naming_of_diffusion_model(std::string_view tensor_name);
Naming naming_of_vae(std::string_view tensor_name);
Naming naming_of_text_encoder(std::string_view tensor_name);

}  // namespace ebb
