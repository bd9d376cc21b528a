#!/usr/bin/env python3
"""Golden cases for node-limited routing (SPEC §2, TR §2.1.2; tests/unit/model/test_router.cc), in
float64 torch, written from the rule and not from dsv3's router.

16 routed experts on G nodes (the expert-parallel ranks: node g holds experts [g*16/G,
(g+1)*16/G)), top-4 of sigmoid scores, each token's experts on at most M nodes:
  s = sigmoid(logits); c = s + bias (selection only);
  node score = the sum of the node's 2 largest c (V3's K_r/M = 8/4 = 2, HF's noaux_tc);
  keep the M best nodes (ties: the lower node), the other nodes' c = -inf;
  experts = the 4 largest kept c; g_i = 2.5 * s_i / sum of the chosen s.
Cases (G, M): (2, 1), (4, 1), (4, 2), (8, 2) over 32 tokens each.

usage: router_ref.py OUT.json             write the golden file
       router_ref.py --check GOLDEN.json  regenerate and compare (exit 1 when they differ)
"""
import json
import sys

import torch

from optimizer_ref import same  # the golden comparison the other generators use

EXPERTS, TOP_K, TOKENS, SCALE = 16, 4, 32, 2.5
CASES = [(2, 1), (4, 1), (4, 2), (8, 2)]


def route(logits, bias, nodes, keep):
    s = torch.sigmoid(logits)
    c = s + bias
    per = EXPERTS // nodes
    node_score = c.view(-1, nodes, per).topk(2, dim=-1).values.sum(-1)
    kept = node_score.topk(keep, dim=-1).indices
    mask = torch.zeros(logits.shape[0], nodes, dtype=torch.bool)
    mask.scatter_(1, kept, True)
    c = c.masked_fill(~mask.repeat_interleave(per, dim=1), float("-inf"))
    idx = c.topk(TOP_K, dim=-1).indices
    w = s.gather(1, idx)
    w = SCALE * w / w.sum(-1, keepdim=True)
    return idx, w


def generate():
    g = torch.Generator().manual_seed(18)
    cases = []
    for nodes, keep in CASES:
        # float32 inputs (what dsv3 reads), the rule in float64.
        logits = torch.randn(TOKENS, EXPERTS, generator=g, dtype=torch.float64).float().double()
        bias = (0.05 * torch.randn(EXPERTS, generator=g, dtype=torch.float64)).float().double()
        idx, w = route(logits, bias, nodes, keep)
        order = idx.argsort(dim=-1)  # experts ascending, weights alongside
        idx, w = idx.gather(1, order), w.gather(1, order)
        cases.append({"nodes": nodes, "keep": keep, "logits": logits.flatten().tolist(),
                      "bias": bias.tolist(), "experts": idx.flatten().tolist(),
                      "weights": w.flatten().tolist()})
    return {"experts": EXPERTS, "top_k": TOP_K, "tokens": TOKENS, "scale": SCALE, "cases": cases}


def main(argv):
    data = generate()
    if argv[0] != "--check":
        with open(argv[0], "w") as f:
            f.write(json.dumps(data, separators=(",", ":")) + "\n")
        return
    with open(argv[1]) as f:
        diff = same(json.load(f), data)  # floats to 1e-12 relative
    if diff:
        sys.exit("router_ref: %s is out of date (%s); rerun router_ref.py %s" % (argv[1], diff, argv[1]))
    print("golden file is current")


if __name__ == "__main__":
    main(sys.argv[1:])
