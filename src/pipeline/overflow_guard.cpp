#include "pipeline/overflow_guard.h"

#include <fmt/format.h>

#include <atomic>
#include <cstdio>

#include "core/error.h"

namespace ebb {
namespace {

// Restores the backend's activation dtype however the stage ends.
class ActivationDtypeScope {
 public:
  ActivationDtypeScope(Backend& backend, DType t)
      : backend_(backend), saved_(backend.activation_dtype()) {
    backend_.set_activation_dtype(t);
  }
  ~ActivationDtypeScope() { backend_.set_activation_dtype(saved_); }
  ActivationDtypeScope(const ActivationDtypeScope&) = delete;
  ActivationDtypeScope& operator=(const ActivationDtypeScope&) = delete;

 private:
  Backend& backend_;
  DType saved_;
};

}  // namespace

Tensor run_with_f32_fallback(Backend& backend, std::string_view what,
                             const std::function<Tensor()>& stage) {
  Tensor out = stage();
  if (backend.all_finite(out)) return out;
  out = Tensor{};  // its memory serves the second run
  const DType used = backend.activation_dtype();
  if (used == DType::F32)
    fail("{} produced NaN or infinite values in F32 (are the weights corrupt?)", what);
  // A batch of images would otherwise repeat the same line for every one.
  static std::atomic<bool> told{false};
  if (!told.exchange(true))
    fmt::print(stderr, "{} overflowed in {} (NaN or infinite values); running it again in F32\n",
               what, dtype_name(used));
  const ActivationDtypeScope f32(backend, DType::F32);
  Tensor redone = stage();
  if (!backend.all_finite(redone))
    fail("{} produced NaN or infinite values in {} and again in F32 (are the weights corrupt?)",
         what, dtype_name(used));
  return redone;
}

}  // namespace ebb
