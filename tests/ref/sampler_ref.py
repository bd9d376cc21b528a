#!/usr/bin/env python3
"""Golden distributions for the sampler (tests/unit/runtime/test_sampler.cc), in float64 torch.

Each transform is written the way transformers' logits processors compute it (RepetitionPenalty,
Temperature, TopK, TopP, MinP, in _get_logits_processor's order) plus OpenAI's frequency/presence
penalties over the generated tokens. This is independent of dsv3's implementation: top-k by
torch.topk, top-p by an ascending sort and cumsum, min-p in probability space.

usage: sampler_ref.py OUT.json           write the golden file
       sampler_ref.py --check GOLDEN.json  regenerate and compare (exit 1 when they differ)
"""
import json
import sys

import numpy as np
import torch


def reference(logits, context, generated, p):
    z = torch.tensor(logits, dtype=torch.float64)
    vocab = z.numel()
    if p["repetition_penalty"] != 1.0:
        ids = torch.tensor(sorted(set(context + generated)), dtype=torch.long)
        s = z[ids]
        z[ids] = torch.where(s < 0, s * p["repetition_penalty"], s / p["repetition_penalty"])
    if generated:
        c = torch.bincount(torch.tensor(generated, dtype=torch.long), minlength=vocab).double()
        z = z - c * p["frequency_penalty"] - (c > 0).double() * p["presence_penalty"]
    if p["temperature"] == 0:
        out = torch.zeros(vocab, dtype=torch.float64)
        out[int(torch.argmax(z))] = 1.0
        return out
    z = z / p["temperature"]
    if p["top_k"] > 0:
        kth = torch.topk(z, min(p["top_k"], vocab))[0][-1]
        z = z.masked_fill(z < kth, -float("inf"))
    if p["top_p"] < 1.0:
        sorted_z, idx = torch.sort(z, descending=False)
        cum = sorted_z.softmax(-1).cumsum(-1)
        remove = cum <= (1 - p["top_p"])
        remove[-1] = False
        z = z.masked_fill(remove.scatter(0, idx, remove), -float("inf"))
    if p["min_p"] > 0:
        probs = z.softmax(-1)
        z = z.masked_fill(probs < p["min_p"] * probs.max(), -float("inf"))
    return z.softmax(-1)


def params(**kw):
    p = dict(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, repetition_penalty=1.0,
             frequency_penalty=0.0, presence_penalty=0.0)
    p.update(kw)
    return p


def cases():
    rng = np.random.default_rng(20261127)

    def logits(v, scale):
        return [float(x) for x in (rng.standard_normal(v) * scale).astype(np.float32)]

    out = []
    base = logits(40, 3.0)
    ctx = [int(x) for x in rng.integers(0, 40, 12)]
    gen = [int(x) for x in rng.integers(0, 40, 9)]
    grid = [
        ("plain", params()),
        ("greedy", params(temperature=0.0)),
        ("greedy_penalised", params(temperature=0.0, repetition_penalty=1.8, frequency_penalty=0.7,
                                    presence_penalty=0.4)),
        ("temperature_0.6", params(temperature=0.6)),
        ("temperature_1.7", params(temperature=1.7)),
        ("top_k_5", params(top_k=5)),
        ("top_k_over_vocab", params(top_k=100)),
        ("top_p_0.9", params(top_p=0.9)),
        ("top_p_0.3_temp_0.7", params(temperature=0.7, top_p=0.3)),
        ("top_p_0", params(top_p=0.0)),
        ("min_p_0.1", params(min_p=0.1)),
        ("min_p_temp_2", params(temperature=2.0, min_p=0.05)),
        ("repetition_1.3", params(repetition_penalty=1.3)),
        ("repetition_0.7", params(repetition_penalty=0.7)),
        ("frequency_presence", params(frequency_penalty=0.5, presence_penalty=1.1)),
        ("negative_frequency", params(frequency_penalty=-0.4)),
        ("all", params(temperature=0.8, top_k=20, top_p=0.85, min_p=0.02, repetition_penalty=1.1,
                       frequency_penalty=0.3, presence_penalty=0.2)),
    ]
    for name, p in grid:
        out.append(dict(name=name, params=p, logits=base, context=ctx, generated=gen))
    # Ties at the k-th logit are all kept (HF compares against topk()[..., -1]).
    tied = [2.0, 1.0, 1.0, 1.0, 0.5, -1.0, 3.0, 1.0]
    out.append(dict(name="top_k_ties", params=params(top_k=3), logits=tied, context=[],
                    generated=[]))
    # A flat, wide row: top-p needs more than the 1024 tokens dsv3 sorts first.
    out.append(dict(name="top_p_wide", params=params(top_p=0.9), logits=logits(1500, 0.3),
                    context=[], generated=[]))
    for c in out:
        c["expected"] = [float(x) for x in reference(c["logits"], c["context"], c["generated"],
                                                     c["params"])]
    return out


def main():
    doc = json.dumps({"generator": "tests/ref/sampler_ref.py", "cases": cases()}, indent=None)
    if sys.argv[1] == "--check":
        with open(sys.argv[2]) as f:
            same = json.load(f) == json.loads(doc)
        print("golden file is current" if same else "golden file differs from the generator")
        sys.exit(0 if same else 1)
    with open(sys.argv[1], "w") as f:
        f.write(doc + "\n")


if __name__ == "__main__":
    main()
