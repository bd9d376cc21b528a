// The activations of one forward pass, owned by the caller: allocated on first use for a batch
// shape and reused by later calls of the same or a smaller shape. Several can be alive at once
// (two micro-batches in flight for DualPipe, one per server step), each used by one call at a time.
#pragma once
#include <cstdint>
#include <vector>

#include "model/decoder_layer.h"
#include "model/mtp.h"

namespace dsv3 {

struct ForwardActs {
  // true: every layer keeps its own input and LayerActs for a backward pass (training); false: the
  // layers share one LayerActs and update the residual stream in place (inference).
  bool keep_layers = false;
  // With keep_layers: free each layer's RMSNorm outputs and MLA up-projections after its forward
  // and recompute them in backward (SPEC §3.1), trading a little compute for activation memory.
  bool recompute = false;

  std::vector<float> cos, sin;  // [N, rope_dim / 2] at each row's position
  // keep_layers: resid[l] [N, d] is layer l's input, resid[L] the stack's output; else resid[0]
  // holds the embedding, then each layer's output in turn.
  std::vector<std::vector<float>> resid;
  std::vector<LayerActs> layers;  // [L] or [1]
  std::vector<float> normed;      // [N, d] the final RMSNorm: the hidden state, the MTP input
  std::vector<float> head_in;     // [rows wanting logits, d]
  // [L][E] tokens routed to each expert by this forward, per MoE layer (empty for dense layers):
  // the load the balance update and MaxVio read (SPEC §2).
  std::vector<std::vector<int64_t>> expert_load;
  MtpActs mtp;

  // Backward scratch (Model::backward).
  std::vector<float> neg_sin;    // -sin
  std::vector<float> dnormed;    // [N, d]
  std::vector<float> dhead_in;   // [rows wanting logits, d]
  std::vector<float> dresid[2];  // [N, d] dL/d(a layer's output / input), in turn
  LayerGrads grads;
};

}  // namespace dsv3
