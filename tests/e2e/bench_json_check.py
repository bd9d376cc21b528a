#!/usr/bin/env python3
"""`dsv3 bench --json` against its documented schema (docs/bench.schema.json, docs/BENCH_JSON.md),
and its numbers against each other.

usage: bench_json_check.py DSV3 MODEL_DIR SCHEMA
"""
import json
import math
import statistics
import subprocess
import sys

import jsonschema


def main():
    dsv3, model, schema_path = sys.argv[1:4]
    with open(schema_path) as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    p = subprocess.run([dsv3, "bench", "-m", model, "-p", "24", "-n", "6", "-b", "1,3", "-r", "3",
                        "-t", "1", "--speculative", "mtp", "--draft", "2", "--json"],
                       capture_output=True, check=True)
    doc = json.loads(p.stdout)  # stdout holds the document and nothing else
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)

    assert doc["repetitions"] == 3 and doc["n_threads"] == 1
    assert [(r["test"], r["n_batch"]) for r in doc["results"]] == [("pp24", 1), ("tg6", 1),
                                                                    ("tg6", 3), ("tg6+mtp2", 1)]
    sp = doc["results"][-1]["speculative"]
    assert sp["draft"] == 2 and sp["accepted"] <= sp["drafted"] <= 2 * sp["steps"]
    assert math.isclose(sp["acceptance_rate"], sp["accepted"] / sp["drafted"], rel_tol=1e-12)
    # 3 repetitions of 6 tokens, each verification pass making 1 + its accepted drafts.
    assert math.isclose(sp["tokens_per_step"], 18 / sp["steps"], rel_tol=1e-12)
    for r in doc["results"]:
        tokens = (r["n_prompt"] + r["n_gen"]) * r["n_batch"]  # every sequence's tokens
        assert math.isclose(r["avg_ts_per_seq"], r["avg_ts"] / r["n_batch"], rel_tol=1e-12)
        assert len(r["samples_s"]) == len(r["samples_ts"]) == 3
        for s, ts in zip(r["samples_s"], r["samples_ts"]):
            assert math.isclose(ts, tokens / s, rel_tol=1e-12), (ts, tokens, s)
        assert math.isclose(r["avg_ts"], statistics.mean(r["samples_ts"]), rel_tol=1e-12)
        assert math.isclose(r["stddev_ts"], statistics.stdev(r["samples_ts"]), rel_tol=1e-9,
                            abs_tol=1e-9)

    # --memory: the roofline, and each test's fraction of it from the documented formula.
    p = subprocess.run([dsv3, "bench", "-m", model, "-p", "24", "-n", "6", "-r", "1", "-t", "1",
                        "--memory", "--memory-mib", "16", "--json"], capture_output=True, check=True)
    mem = json.loads(p.stdout)
    jsonschema.validate(mem, schema, cls=jsonschema.Draft202012Validator)
    roof = mem["roofline"]
    assert roof["threads"] == 1 and roof["buffer_bytes"] <= 16 << 20 and roof["f32_fma_gflops"] > 0
    pp, tg = mem["results"]
    assert math.isclose(tg["roofline_fraction"], mem["decode_bytes_per_token"] *
                        tg["avg_ts_per_seq"] / (roof["read_gbs_n"] * 1e9), rel_tol=1e-9)
    peak = {"amx-bf16": roof["amx_bf16_gflops"], "avx512-bf16": roof["bf16_dot_gflops"],
            "avx512-f32": roof["f32_fma_gflops"]}[roof["bf16_path"]]
    flops = mem["prefill_flops_per_token"] + mem["head_flops"] / 24
    fp32_peak = flops * pp["avg_ts"] / (roof["f32_fma_gflops"] * 1e9)
    assert (math.isclose(pp["roofline_fraction"], flops * pp["avg_ts"] / (peak * 1e9), rel_tol=1e-9)
            or math.isclose(pp["roofline_fraction"], fp32_peak, rel_tol=1e-9))
    assert "roofline" not in doc and "roofline_fraction" not in doc["results"][0]

    # The schema has teeth: a missing field and a wrong type are refused.
    for broken in ({k: v for k, v in doc.items() if k != "results"},
                   {**doc, "n_threads": "1"}):
        try:
            jsonschema.validate(broken, schema, cls=jsonschema.Draft202012Validator)
        except jsonschema.ValidationError:
            continue
        raise AssertionError("the schema accepted a broken document")
    print("bench --json: valid against docs/bench.schema.json;", ", ".join(
        f"{r['test']} x{r['n_batch']} {r['avg_ts']:.1f} ± {r['stddev_ts']:.1f} t/s"
        for r in doc["results"]))


if __name__ == "__main__":
    main()
