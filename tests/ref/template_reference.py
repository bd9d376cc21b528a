#!/usr/bin/env python3
"""Renders every chat-template fixture with Python Jinja2, set up as Hugging Face transformers'
apply_chat_template sets it up (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, the
loopcontrols extension, its own tojson without HTML escaping, raise_exception), and writes the
expected prompts for dsv3's test (tests/unit/tokenizer/test_chat_template_reference.cc).

    python3 tests/ref/template_reference.py ASSETS_DIR FIXTURES_DIR OUT.json [MODEL_DIR...]

MODEL_DIRs add the chat_template of their tokenizer_config.json (named by the folder).

Same inputs and output format as tests/js/template_reference.mjs, plus "snippets": single
constructs (fixtures/snippets.json) whose Python semantics dsv3 follows.
"""
import json
import os
import sys

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


def make_environment():
    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env


def main():
    if len(sys.argv) < 4:
        sys.exit("usage: template_reference.py ASSETS_DIR FIXTURES_DIR OUT.json [MODEL_DIR...]")
    assets, fixtures, out_path = sys.argv[1:4]
    with open(os.path.join(assets, "deepseek_v3", "tokenizer_config.json"), encoding="utf-8") as f:
        v3 = json.load(f)
    token = lambda t: t if isinstance(t, str) else t["content"]
    base_vars = {"bos_token": token(v3["bos_token"]), "eos_token": token(v3["eos_token"])}
    templates = {"deepseek_v3": v3["chat_template"]}
    for name in sorted(os.listdir(fixtures)):
        if name.endswith(".jinja"):
            with open(os.path.join(fixtures, name), encoding="utf-8", newline="") as f:
                templates[name[:-6]] = f.read()
    for model_dir in sys.argv[4:]:
        with open(os.path.join(model_dir, "tokenizer_config.json"), encoding="utf-8") as f:
            templates[os.path.basename(os.path.normpath(model_dir))] = json.load(f)["chat_template"]
    with open(os.path.join(fixtures, "conversations.json"), encoding="utf-8") as f:
        conversations = json.load(f)

    env = make_environment()
    cases = []
    for name, source in templates.items():
        compiled = env.from_string(source)
        for conv in conversations:
            for add_generation_prompt in (False, True):
                variables = dict(base_vars, **conv.get("vars", {}))
                case = {"template": name, "conversation": conv["name"],
                        "add_generation_prompt": add_generation_prompt,
                        "messages": conv["messages"], "vars": variables}
                try:
                    case["expected"] = compiled.render(messages=conv["messages"],
                                                       add_generation_prompt=add_generation_prompt,
                                                       **variables)
                except Exception as e:  # noqa: BLE001 - TemplateError, TypeError ...
                    case["error"] = "%s: %s" % (type(e).__name__, e)
                cases.append(case)
    # Single constructs, each rendered alone with one context; any exception is an expected error.
    with open(os.path.join(fixtures, "snippets.json"), encoding="utf-8") as f:
        snippet_doc = json.load(f)
    snippets = []
    for source in snippet_doc["snippets"]:
        try:
            snippets.append({"template": source,
                             "expected": env.from_string(source).render(**snippet_doc["context"])})
        except Exception as e:  # noqa: BLE001 - TypeError, ZeroDivisionError, TemplateError ...
            snippets.append({"template": source, "error": "%s: %s" % (type(e).__name__, e)})
    # Valid Jinja that dsv3 refuses with "unsupported construct": Python must render them.
    for source in snippet_doc["unsupported"]:
        env.from_string(source).render(**snippet_doc["context"])
    out = {"reference": "Python Jinja2 %s (Hugging Face transformers' environment)" % jinja2.__version__,
           "templates": templates, "cases": cases, "snippet_context": snippet_doc["context"],
           "snippets": snippets, "unsupported": snippet_doc["unsupported"]}
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
    errors = sum(1 for c in cases if "error" in c)
    print("template_reference.py: %d renders of %d templates (%d raised errors) -> %s"
          % (len(cases), len(templates), errors, out_path))


if __name__ == "__main__":
    main()
