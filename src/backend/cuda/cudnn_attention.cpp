// The one translation unit that includes the cuDNN frontend: its headers are large and slow to
// compile, so nothing else sees them.
#include "backend/cuda/cudnn_attention.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdio>

#include "core/error.h"

#if defined(EBB_HAVE_CUDNN_FRONTEND) && __has_include(<cudnn.h>)

#include <dlfcn.h>

#include <cudnn_frontend.h>
#include <exception>
#include <unordered_map>

#include "backend/cuda/cudnn_library.h"

// The frontend reaches cuDNN through this handle (NV_CUDNN_FRONTEND_USE_DYNAMIC_LOADING).
namespace cudnn_frontend {
void* cudnn_dlhandle = nullptr;
}  // namespace cudnn_frontend

namespace ebb::cuda {
namespace {

namespace fe = cudnn_frontend;

constexpr int64_t kQ = 1, kK = 2, kV = 3, kOut = 4;  // tensor uids of the graph

struct Loaded {
  bool ok = false;
  std::string description;
};

Loaded load() {
  Loaded l;
  std::string why_not;
  const CudnnLibrary* lib = cudnn_library(why_not);
  if (!lib) {
    l.description = "cuDNN not loaded: " + why_not;
    return l;
  }
  // The same library cudnn_library opened (dlopen counts references), for the frontend's own
  // lookups of the graph API.
  cudnn_frontend::cudnn_dlhandle = dlopen("libcudnn.so.9", RTLD_NOW | RTLD_LOCAL);
  if (!cudnn_frontend::cudnn_dlhandle) {
    const char* error = dlerror();
    l.description = fmt::format("cuDNN not loaded: {}", error ? error : "libcudnn.so.9");
    return l;
  }
  l.ok = true;
  l.description = fmt::format("cuDNN {} fused attention (frontend {}.{}.{})", lib->version,
                              CUDNN_FRONTEND_MAJOR_VERSION, CUDNN_FRONTEND_MINOR_VERSION,
                              CUDNN_FRONTEND_PATCH_VERSION);
  return l;
}

const Loaded& loaded() {
  static const Loaded l = load();
  return l;
}

const CudnnLibrary& library() {
  std::string why_not;
  const CudnnLibrary* lib = cudnn_library(why_not);
  if (!lib || !loaded().ok) fail("cuDNN attention is not available: {}", loaded().description);
  return *lib;
}

fe::DataType_t io_type(DType t) {
  if (t == DType::F16) return fe::DataType_t::HALF;
  if (t == DType::BF16) return fe::DataType_t::BFLOAT16;
  fail("cuDNN attention: {} is not F16 or BF16", dtype_name(t));
}

std::tuple<int64_t, int64_t, int64_t> key_strides(const cpu::Strides4& s) {
  return {s.batch, s.head, s.row};
}

}  // namespace

bool cudnn_attention_loaded() {
  return loaded().ok;
}

std::string cudnn_attention_description() {
  return loaded().description;
}

struct CudnnAttention::Graph {
  fe::graph::Graph graph;
  bool usable = false;  // a plan built
  int64_t workspace = 0;
};

CudnnAttention::CudnnAttention(Arena& arena, cudaStream_t stream) : arena_(arena), stream_(stream) {
  const CudnnLibrary& lib = library();
  cudnnHandle_t handle = nullptr;
  check(lib, lib.cudnnCreate(&handle), "cudnnCreate");
  handle_ = handle;
  check(lib, lib.cudnnSetStream(handle, stream), "cudnnSetStream");
}

CudnnAttention::~CudnnAttention() {
  graphs_.clear();
  // A destructor cannot report; the handle's device state goes with the context regardless.
  library().cudnnDestroy(static_cast<cudnnHandle_t>(handle_));
}

CudnnAttention::Graph& CudnnAttention::graph(const CudaAttentionArgs& a) {
  const float scale = a.scale.value_or(1.0f / std::sqrt(static_cast<float>(a.head_dim)));
  const Key key{static_cast<int>(a.dtype),
                a.batch,
                a.heads,
                a.q_len,
                a.kv_len,
                a.head_dim,
                key_strides(a.q_strides),
                key_strides(a.k_strides),
                key_strides(a.v_strides),
                key_strides(a.out_strides),
                scale};
  std::unique_ptr<Graph>& slot = graphs_[key];
  if (slot) return *slot;

  auto g = std::make_unique<Graph>();
  fe::graph::Graph& graph = g->graph;
  graph.set_io_data_type(io_type(a.dtype))
      .set_intermediate_data_type(fe::DataType_t::FLOAT)
      .set_compute_data_type(fe::DataType_t::FLOAT);
  const auto tensor = [&](const char* name, int64_t uid, int64_t len, const cpu::Strides4& s) {
    return graph.tensor(fe::graph::Tensor_attributes()
                            .set_name(name)
                            .set_uid(uid)
                            .set_dim({a.batch, a.heads, len, a.head_dim})
                            .set_stride({s.batch, s.head, s.row, s.col}));
  };
  const auto q = tensor("q", kQ, a.q_len, a.q_strides);
  const auto k = tensor("k", kK, a.kv_len, a.k_strides);
  const auto v = tensor("v", kV, a.kv_len, a.v_strides);
  auto [out, stats] = graph.sdpa(q, k, v,
                                 fe::graph::SDPA_attributes()
                                     .set_name("attention")
                                     .set_generate_stats(false)
                                     .set_attn_scale(scale));
  (void)stats;
  out->set_output(true)
      .set_uid(kOut)
      .set_dim({a.batch, a.heads, a.q_len, a.head_dim})
      .set_stride({a.out_strides.batch, a.out_strides.head, a.out_strides.row, a.out_strides.col});

  const auto handle = static_cast<cudnnHandle_t>(handle_);
  std::string why_not;
  try {
    fe::error_t status = graph.validate();
    if (status.is_good()) status = graph.build_operation_graph(handle);
    if (status.is_good()) status = graph.create_execution_plans({fe::HeurMode_t::A});
    if (status.is_good()) status = graph.check_support(handle);
    if (status.is_good())
      status = graph.build_plans(handle, fe::BuildPlanPolicy_t::HEURISTICS_CHOICE);
    if (status.is_good()) status = graph.get_workspace_size(g->workspace);
    g->usable = status.is_good();
    if (!g->usable) why_not = status.get_message();
  } catch (const std::exception& e) {
    // The frontend throws where it cannot reach a library it loads itself (libcudart).
    g->usable = false;
    why_not = e.what();
  }
  if (!g->usable)
    fmt::print(stderr,
               "cuDNN attention: no plan for {} {}x{} heads, {}x{} tokens, head dim {} ({}); "
               "Ebb's kernel computes it\n",
               dtype_name(a.dtype), a.batch, a.heads, a.q_len, a.kv_len, a.head_dim,
               why_not.empty() ? "no reason given" : why_not);
  slot = std::move(g);
  return *slot;
}

bool CudnnAttention::run(const CudaAttentionArgs& a) {
  Graph& g = graph(a);
  if (!g.usable) return false;
  // Freed on return while the attention may still run: later users of the block are enqueued
  // on the same stream, after it.
  const std::shared_ptr<Storage> workspace =
      g.workspace > 0 ? arena_.allocate(static_cast<uint64_t>(g.workspace), MemoryTag::Scratch,
                                        "cuDNN attention workspace")
                      : nullptr;
  std::unordered_map<int64_t, void*> pointers{{kQ, const_cast<void*>(a.q)},
                                              {kK, const_cast<void*>(a.k)},
                                              {kV, const_cast<void*>(a.v)},
                                              {kOut, a.out}};
  fe::error_t status = g.graph.execute(static_cast<cudnnHandle_t>(handle_), pointers,
                                       workspace ? workspace->data() : nullptr);
  if (status.is_bad()) fail("cuDNN attention failed: {}", status.get_message());
  return true;
}

}  // namespace ebb::cuda

#else

namespace ebb::cuda {

bool cudnn_attention_loaded() {
  return false;
}

std::string cudnn_attention_description() {
#if defined(EBB_HAVE_CUDNN_FRONTEND)
  return "cuDNN attention not built: the CUDA toolkit has no cudnn.h";
#else
  return "cuDNN attention not built: the cuDNN frontend was not found at configure time "
         "(scripts/setup fetches it)";
#endif
}

struct CudnnAttention::Graph {};

CudnnAttention::CudnnAttention(Arena& arena, cudaStream_t stream) : arena_(arena), stream_(stream) {
  fail("{}", cudnn_attention_description());
}

CudnnAttention::~CudnnAttention() = default;

bool CudnnAttention::run(const CudaAttentionArgs&) {
  return false;
}

}  // namespace ebb::cuda

#endif
