#include "io/architecture.h"

#include <fmt/format.h>

namespace ebb {
namespace {

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

std::string shape_str(const TensorInfo& t) {
  return fmt::format("[{}]", fmt::join(t.shape, ", "));
}

// Structure, not width, tells the UNet generations apart, so tiny test models of each are
// recognised too: SDXL has the micro-conditioning embedding (label_emb / add_embedding); SD2
// projects into its transformers with linear layers, SD1 with 1x1 convolutions.
const TensorInfo* first_proj_in(const TensorLookup& find, Naming naming) {
  for (int block = 0; block < 12; ++block) {
    std::string name = naming == Naming::Diffusers
                           ? fmt::format("down_blocks.{}.attentions.0.proj_in.weight", block)
                           : fmt::format("input_blocks.{}.1.proj_in.weight", block);
    if (const TensorInfo* t = find(name)) return t;
  }
  return nullptr;
}

ArchitectureGuess detect_unet(const TensorLookup& find, Naming naming) {
  const TensorInfo* proj_in = first_proj_in(find, naming);
  if (!proj_in) return {Architecture::Unknown, "UNet without spatial transformers (proj_in)"};
  const TensorInfo* adm =
      find(naming == Naming::Diffusers ? "add_embedding.linear_1.weight" : "label_emb.0.0.weight");
  if (adm && adm->shape.size() == 2) {
    std::string why = fmt::format("{} {}", adm->name, shape_str(*adm));
    // The SDXL refiner conditions on 2560 features and has a different block layout.
    if (adm->shape[1] == 2560)
      return {Architecture::Unknown, why + ": SDXL refiner, not supported yet"};
    return {Architecture::SDXL, why};
  }
  std::string why = fmt::format("{} {}", proj_in->name, shape_str(*proj_in));
  if (proj_in->shape.size() == 4) return {Architecture::SD1, why + " (convolution)"};
  if (proj_in->shape.size() == 2) return {Architecture::SD2, why + " (linear)"};
  return {Architecture::Unknown, why + ": unexpected proj_in rank"};
}

}  // namespace

std::string_view architecture_name(Architecture a) {
  switch (a) {
    case Architecture::SD1:
      return "SD1.x";
    case Architecture::SD2:
      return "SD2.x";
    case Architecture::SDXL:
      return "SDXL";
    case Architecture::SD3:
      return "SD3";
    case Architecture::Flux:
      return "Flux";
    case Architecture::Unknown:
      break;
  }
  return "unknown";
}

std::string_view naming_name(Naming n) {
  switch (n) {
    case Naming::Original:
      return "original";
    case Naming::OpenClip:
      return "open_clip";
    case Naming::Diffusers:
      return "diffusers";
    case Naming::Unknown:
      break;
  }
  return "unknown";
}

Naming naming_of_diffusion_model(std::string_view n) {
  if (starts_with(n, "input_blocks.") || starts_with(n, "middle_block.") ||
      starts_with(n, "output_blocks.") || starts_with(n, "time_embed.") ||
      starts_with(n, "double_blocks.") || starts_with(n, "single_blocks.") ||
      starts_with(n, "joint_blocks.") || starts_with(n, "img_in.") ||
      starts_with(n, "x_embedder.proj"))
    return Naming::Original;
  if (starts_with(n, "down_blocks.") || starts_with(n, "up_blocks.") ||
      starts_with(n, "mid_block.") || starts_with(n, "transformer_blocks.") ||
      starts_with(n, "single_transformer_blocks.") || starts_with(n, "time_embedding.") ||
      starts_with(n, "conv_in.") || starts_with(n, "x_embedder.") ||
      starts_with(n, "context_embedder."))
    return Naming::Diffusers;
  return Naming::Unknown;
}

Naming naming_of_vae(std::string_view n) {
  if (starts_with(n, "encoder.down.") || starts_with(n, "decoder.up.") ||
      starts_with(n, "encoder.mid.") || starts_with(n, "decoder.mid.") ||
      starts_with(n, "quant_conv.") || starts_with(n, "post_quant_conv."))
    return Naming::Original;
  if (starts_with(n, "encoder.down_blocks.") || starts_with(n, "decoder.up_blocks.") ||
      starts_with(n, "encoder.mid_block.") || starts_with(n, "decoder.mid_block."))
    return Naming::Diffusers;
  return Naming::Unknown;
}

Naming naming_of_text_encoder(std::string_view n) {
  if (starts_with(n, "transformer.resblocks.") || starts_with(n, "token_embedding.") ||
      starts_with(n, "positional_embedding") || starts_with(n, "ln_final.") ||
      starts_with(n, "text_projection"))
    return Naming::OpenClip;
  if (starts_with(n, "text_model.") || starts_with(n, "encoder.block.") ||
      starts_with(n, "shared.") || starts_with(n, "encoder.final_layer_norm."))
    return Naming::Diffusers;
  return Naming::Unknown;
}

ArchitectureGuess detect_architecture(const TensorLookup& find, Naming naming) {
  if (naming == Naming::Original) {
    if (const TensorInfo* t = find("double_blocks.0.img_attn.qkv.weight"))
      return {Architecture::Flux, fmt::format("{} {}", t->name, shape_str(*t))};
    if (const TensorInfo* t = find("joint_blocks.0.context_block.attn.qkv.weight"))
      return {Architecture::SD3, fmt::format("{} {}", t->name, shape_str(*t))};
  }
  if (naming == Naming::Diffusers) {
    if (const TensorInfo* t = find("single_transformer_blocks.0.attn.to_q.weight"))
      return {Architecture::Flux, fmt::format("{} {}", t->name, shape_str(*t))};
    if (const TensorInfo* t = find("transformer_blocks.0.attn.add_q_proj.weight");
        t && find("pos_embed.proj.weight"))
      return {Architecture::SD3, fmt::format("{} {}", t->name, shape_str(*t))};
  }
  if (naming == Naming::Original || naming == Naming::Diffusers) return detect_unet(find, naming);
  return {Architecture::Unknown, "no diffusion model tensors with a known naming"};
}

}  // namespace ebb
