#pragma once
// CLIP's text tower, shared by the OpenAI (transformers names) and OpenCLIP checkpoints:
// token + position embeddings, a stack of causal pre-LN encoder layers, a final layer norm.
// The two differ only in weight names, the fused q/k/v projection and the MLP activation,
// which a ClipTextLayout describes (models/clip.h, models/open_clip.h).
//
// Weights are leased layer by layer while running; nothing is held between calls.
#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "backend/backend.h"
#include "nn/leased_weights.h"
#include "nn/transformer_encoder_layer.h"
#include "tensor/tensor.h"
#include "weights/weight_store.h"

namespace ebb {

// A weight as leased: the block prefix and the name within the block.
struct BlockWeight {
  std::string block, name;
  std::string full_name() const { return block + name; }
};

struct ClipTextLayout {
  BlockWeight token_embedding;     // [vocab, width]
  BlockWeight position_embedding;  // [positions, width]
  std::string final_norm_block;    // holds "weight" and "bias"
  std::function<std::string(int layer)> layer_block;
  std::string layer_probe;  // a weight every layer block has, to count the layers
  std::function<TransformerEncoderLayerWeights(const LeasedWeights&)> layer_weights;
  MlpActivation activation = MlpActivation::Gelu;
  // Final layers of the original tower that the stored one lacks (diffusers' SD 2.x
  // text_encoder drops its last layer): clip skip still counts from the original's end.
  int missing_final_layers = 0;
};

struct ClipTextRequest {
  // Which hidden state: hidden_states[-skip] of the original tower (1 = the last layer's
  // output, 2 = the one before).
  int skip = 1;
  // Apply the final layer norm to that hidden state.
  bool final_norm = true;
  // Also return the last layer's output after the final layer norm (for pooling); a tower
  // missing its final layers cannot.
  bool last_normed = false;
};

struct ClipTextOutput {
  Tensor hidden;       // [1, L, width]
  Tensor last_normed;  // [1, L, width] when requested, else undefined
};

class ClipTextTransformer {
 public:
  // Reads sizes from the weight shapes: width from the token embedding, the layer count from
  // the layer blocks present. heads = 0 takes CLIP's head width of 64. A missing tensor or an
  // inconsistent shape is an ebb::Error naming the component and the tensor.
  ClipTextTransformer(WeightStore& store, std::string component, ClipTextLayout layout,
                      int64_t heads = 0);

  int layers() const { return layers_; }  // stored layers
  int64_t width() const { return width_; }
  int64_t positions() const { return positions_; }
  const std::string& component() const { return component_; }
  WeightStore& store() const { return store_; }

  // One window of token ids (at most positions() of them).
  ClipTextOutput run(Backend& backend, std::span<const int32_t> ids,
                     const ClipTextRequest& request) const;
  // The final layer norm over the last dimension.
  Tensor final_norm(Backend& backend, const Tensor& hidden) const;

 private:
  Tensor embed(Backend& backend, std::span<const int32_t> ids) const;
  const IndexedTensor& require(const std::string& name) const;

  WeightStore& store_;
  std::string component_;
  ClipTextLayout layout_;
  TransformerEncoderLayerConfig layer_config_;
  int layers_ = 0;
  int64_t width_ = 0, positions_ = 0;
};

}  // namespace ebb
