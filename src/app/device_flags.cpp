#include "app/device_flags.h"

#include <optional>

#include "core/error.h"

namespace ebb {

void add_device_flags(CLI::App& cmd, DeviceFlags& f) {
  cmd.add_option("--backend", f.placement.backend,
                 "Device for every component (cpu, cuda0, ...) and/or per component: "
                 "clip=cpu,vae=cuda0,diffusion=cuda0 (default: cuda0 when there is a GPU)");
  cmd.add_option("--device", f.placement.device, "Device for every component: cpu or cuda:N");
  cmd.add_flag("--clip-on-cpu", f.placement.clip_on_cpu, "Run the text encoders on the CPU");
  cmd.add_flag("--vae-on-cpu", f.placement.vae_on_cpu, "Run the VAE on the CPU");
  cmd.add_option("--gpu-dtype", f.gpu_dtype, "Activations on the GPU: f16, bf16 or f32")
      ->capture_default_str();
  cmd.add_flag("--tf32", f.tf32, "Let f32 GPU matrix products use TF32 tensor cores");
  cmd.add_flag("--cudnn", f.cudnn,
               "Compute conv2d on the GPU through cuDNN (libcudnn.so.9, loaded at run time; "
               "slower than the default im2col + cuBLASLt at most SD shapes on an H100)");
  cmd.add_option("--attention", f.attention,
                 "Attention kernel on the GPU: auto (cuDNN's fused attention where libcudnn.so.9 "
                 "loads and it was measured faster, else Ebb's), ebb (always Ebb's), cudnn "
                 "(cuDNN wherever it takes the shape)")
      ->capture_default_str();
  cmd.add_option("-t,--threads", f.threads, "CPU threads (0: all cores)")->capture_default_str();
}

Devices resolve_devices(const DeviceFlags& f, const std::string& max_vram) {
  const int gpus = cuda_device_count();
  Devices d;
  d.placement = parse_placement(f.placement, gpus);
  if (!max_vram.empty()) d.options.vram = parse_max_vram(max_vram, gpus);
  if (f.gpu_dtype == "f16")
    d.options.gpu_activations = DType::F16;
  else if (f.gpu_dtype == "bf16")
    d.options.gpu_activations = DType::BF16;
  else if (f.gpu_dtype == "f32")
    d.options.gpu_activations = DType::F32;
  else
    fail("--gpu-dtype: '{}' is not f16, bf16 or f32", f.gpu_dtype);
  d.options.allow_tf32 = f.tf32;
  d.options.use_cudnn = f.cudnn;
  const std::optional<AttentionKernelChoice> attention = parse_attention_kernel_choice(f.attention);
  if (!attention) fail("--attention: '{}' is not auto, ebb or cudnn", f.attention);
  d.options.attention = *attention;
  d.options.cpu_threads = f.threads;
  return d;
}

const std::string& text_encoder_device(const Placement& placement) {
  const std::string& clip_l = placement.of(PlacedComponent::clip_l);
  for (PlacedComponent c : {PlacedComponent::clip_h, PlacedComponent::clip_g})
    if (placement.of(c) != clip_l)
      fail("--backend: the text encoders run on one device, not clip_l={} and {}={} (use clip=)",
           clip_l, placed_component_name(c), placement.of(c));
  return clip_l;
}

}  // namespace ebb
