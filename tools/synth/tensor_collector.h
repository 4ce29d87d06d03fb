#pragma once
// The tensors of one model component, listed once in each of the two namings real files use:
// the original single-file checkpoint (LDM/SGM/OpenCLIP names) and diffusers/transformers.
// Module emitters walk the architecture once and name every tensor both ways.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ebb::synth {

enum class Init {
  Weight,       // small values around 0
  Bias,         // smaller values around 0
  NormWeight,   // values around 1
  PositionIds,  // 0, 1, 2, … (an I64 buffer)
  LogitScale,   // CLIP's log(100)
};

struct SynthTensor {
  std::string name;  // without the component's single-file prefix
  std::vector<int64_t> shape;
  Init init = Init::Weight;
  // The single-file tensor (full name) whose values this one holds, from element
  // `source_offset` on, or as its 2-D transpose. Diffusers tensors point at their single-file
  // counterparts, so both layouts written with one seed hold the same model.
  std::string source;
  uint64_t source_offset = 0;
  bool transposed = false;
};

// A module's path in both namings.
struct ModulePath {
  std::string original;
  std::string diffusers;

  ModulePath child(std::string_view original_part, std::string_view diffusers_part) const;
  ModulePath child(std::string_view same) const { return child(same, same); }
};

class TensorCollector {
 public:
  // `prefix`: the component's prefix in single-file checkpoints, e.g. "model.diffusion_model.".
  explicit TensorCollector(std::string prefix) : prefix_(std::move(prefix)) {}

  // A tensor both layouts hold with the same shape (or with `diffusers_shape`, when diffusers
  // drops unit dimensions).
  void add(const ModulePath& module, std::string_view leaf, std::vector<int64_t> shape);
  void add(const ModulePath& module, std::string_view leaf, std::vector<int64_t> shape,
           std::vector<int64_t> diffusers_shape);
  void add_as(const std::string& original_name, const std::string& diffusers_name,
              std::vector<int64_t> shape);

  void linear(const ModulePath& module, int64_t out, int64_t in, bool bias = true);
  void conv(const ModulePath& module, int64_t out, int64_t in, int64_t kernel);
  void norm(const ModulePath& module, int64_t channels);

  // `init` defaults to what the name and rank say (bias, norm weight or weight).
  void original_only(const std::string& name, std::vector<int64_t> shape,
                     std::optional<Init> init = {});
  void diffusers_only(const std::string& name, std::vector<int64_t> shape, Init init);
  // A diffusers tensor that holds rows of a single-file tensor from `element_offset` on.
  void diffusers_slice(const std::string& name, std::vector<int64_t> shape,
                       const std::string& original_name, uint64_t element_offset);
  // A diffusers 2-D tensor that holds a single-file tensor transposed.
  void diffusers_transposed(const std::string& name, std::vector<int64_t> shape,
                            const std::string& original_name);

  const std::string& prefix() const { return prefix_; }
  std::vector<SynthTensor>& original() { return original_; }
  std::vector<SynthTensor>& diffusers() { return diffusers_; }

 private:
  void add_pair(const std::string& original_name, const std::string& diffusers_name,
                std::vector<int64_t> shape, std::vector<int64_t> diffusers_shape);

  std::string prefix_;
  std::vector<SynthTensor> original_;
  std::vector<SynthTensor> diffusers_;
};

}  // namespace ebb::synth
