// The activations of one forward pass, owned by the caller: allocated on first use for a batch
// shape and reused by later calls of the same or a smaller shape. Several can be alive at once
// (two micro-batches in flight for DualPipe, one per server step), each used by one call at a time.
#pragma once
#include <cstdint>
#include <functional>
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
  // Pipelines (Model::backward_layers): leave the embedding's and the MTP module's dL/d(embedding
  // rows) in dinput and mtp.demb instead of adding them to the embedding's gradient, so the
  // caller adds them in the one-process order when the two live on different stages.
  bool defer_embedding_grad = false;
  // Pipelines: queue the backward's weight-gradient GEMMs here (ComputeContext::wgrad) for a
  // later W (ZeroBubble's B/W split, SPEC §4); null runs them at once.
  WeightGradQueue* wgrad = nullptr;
  // Data parallelism: called by the backward as parameters' gradients become final, so their
  // reduction can start while the backward goes on: with L (the layer count) once the final
  // norm's and the head's are (the MTP module's, run before, are too), then with l after layer
  // l's; the embedding's are final when the backward returns.
  std::function<void(int64_t layer)> grads_ready;
  // Pipelines overlapping a forward and a backward chunk (SPEC §4's F&B pair) on two threads: this
  // call's thread pool and MoE dispatcher instead of the model's, so that the two calls share
  // neither (a pool takes one caller at a time; the dispatchers' all-to-alls go through different
  // communicators). Null: the model's.
  ThreadPool* pool = nullptr;
  MoeDispatcher* dispatcher = nullptr;

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
  std::vector<float> dinput;     // [N, d] dL/d(resid[begin]) of backward_layers
  LayerGrads grads;
};

}  // namespace dsv3
