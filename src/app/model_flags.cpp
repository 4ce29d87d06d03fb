#include "app/model_flags.h"

namespace ebb {

void add_model_flags(CLI::App& cmd, ModelPaths& paths) {
  cmd.add_option("--diffusion-model", paths.diffusion_model, "Diffusion model file (UNet/DiT)");
  cmd.add_option("--clip_l", paths.clip_l, "CLIP-L text encoder file");
  cmd.add_option("--clip_g", paths.clip_g, "CLIP-G (OpenCLIP bigG) text encoder file");
  cmd.add_option("--t5xxl", paths.t5xxl, "T5-XXL text encoder file");
  cmd.add_option("--vae", paths.vae, "VAE file (overrides the one inside -m)");
}

}  // namespace ebb
