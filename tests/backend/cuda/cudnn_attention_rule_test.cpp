// The choice between cuDNN's fused attention and Ebb's flash kernel (backend/cuda/
// cudnn_attention_rule.h): the --attention values, the shapes cuDNN takes, and the measured
// rule. Needs no GPU.
#include "backend/cuda/cudnn_attention_rule.h"

#include <gtest/gtest.h>

namespace ebb {
namespace {

TEST(CudnnAttentionRule, ParsesTheFlagValues) {
  EXPECT_EQ(parse_attention_kernel_choice("auto"), AttentionKernelChoice::Auto);
  EXPECT_EQ(parse_attention_kernel_choice("ebb"), AttentionKernelChoice::Ebb);
  EXPECT_EQ(parse_attention_kernel_choice("cudnn"), AttentionKernelChoice::Cudnn);
  EXPECT_FALSE(parse_attention_kernel_choice("CUDNN"));
  EXPECT_FALSE(parse_attention_kernel_choice(""));
}

TEST(CudnnAttentionRule, CudnnTakesHeadDimsOfEightsUpTo256) {
  for (const int64_t dim : {8, 40, 64, 80, 128, 160, 256})
    EXPECT_TRUE(cudnn_attention_supports({2, 8, 77, 77, dim})) << dim;
  for (const int64_t dim : {0, 12, 36, 264, 512})
    EXPECT_FALSE(cudnn_attention_supports({2, 8, 77, 77, dim})) << dim;
  EXPECT_FALSE(cudnn_attention_supports({2, 8, 0, 77, 64}));
  EXPECT_FALSE(cudnn_attention_supports({2, 8, 77, 0, 64}));
}

TEST(CudnnAttentionRule, EbbAlwaysAndCudnnWhereverSupported) {
  const AttentionProblem flux{1, 24, 4608, 4608, 128}, vae{1, 1, 4096, 4096, 512};
  EXPECT_FALSE(wants_cudnn_attention(AttentionKernelChoice::Ebb, flux));
  EXPECT_TRUE(wants_cudnn_attention(AttentionKernelChoice::Cudnn, flux));
  for (const AttentionKernelChoice c :
       {AttentionKernelChoice::Auto, AttentionKernelChoice::Ebb, AttentionKernelChoice::Cudnn})
    EXPECT_FALSE(wants_cudnn_attention(c, vae));
}

// The H100 figures behind the rule: self-attention from 1024 tokens goes to cuDNN, the
// cross-attentions (77 and 154 keys) and 256-token self-attention stay with Ebb's kernel.
TEST(CudnnAttentionRule, AutoTakesCudnnFrom1024Keys) {
  const AttentionProblem cudnn_wins[] = {{2, 8, 4096, 4096, 40},  {2, 8, 16384, 16384, 40},
                                         {2, 8, 1024, 1024, 80},  {2, 8, 1024, 1024, 160},
                                         {2, 20, 1024, 1024, 64}, {1, 24, 4608, 4608, 128}};
  for (const AttentionProblem& p : cudnn_wins)
    EXPECT_TRUE(wants_cudnn_attention(AttentionKernelChoice::Auto, p))
        << p.kv_len << " " << p.head_dim;
  const AttentionProblem ebb_wins[] = {
      {2, 8, 4096, 77, 40}, {2, 8, 1024, 77, 80}, {2, 8, 256, 256, 160}, {2, 20, 1024, 154, 64}};
  for (const AttentionProblem& p : ebb_wins) {
    EXPECT_FALSE(wants_cudnn_attention(AttentionKernelChoice::Auto, p))
        << p.kv_len << " " << p.head_dim;
    EXPECT_TRUE(wants_cudnn_attention(AttentionKernelChoice::Cudnn, p));
  }
}

}  // namespace
}  // namespace ebb
