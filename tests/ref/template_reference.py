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
import random
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


def random_snippets(seed, count):
    """Random templates over the snippet context (a differential test of expression and statement
    combinations): precedence, filters on odd types, tests, methods, scoping, whitespace control."""
    rng = random.Random(seed)
    atoms = ["n", "f", "t", "z", "s", "u", "l", "e", "d", "ws", "1", "0", "-2", "2.0", "0.5", "'ab'", "''",
             "'a b'", "none", "true", "false", "[1, 'x']", "{'k': 1}", "(1, 2)", "messages[0]",
             "messages[-1]['content']", "messages[1].content", "d.a", "d['b']", "d.b[2].c", "l[1]", "s[2:5]",
             "u[-1]", "undefined_x", "d.missing", "loop_var"]
    filters = ["length", "string", "trim", "upper", "lower", "first", "last", "list", "tojson",
               "default('D')", "join(',')", "reverse|list", "items|list", "int", "float", "abs", "capitalize",
               "title", "sort|list", "max", "min", "replace('a', 'b')", "default('x', true)", "count",
               "tojson(indent=1)", "select|list", "map('string')|list", "unique_name_unsupported"]
    tests = ["defined", "undefined", "none", "string", "number", "integer", "float", "mapping", "iterable",
             "sequence", "boolean", "true", "false", "odd", "even", "divisibleby 2", "eq 1", "in l", "lower",
             "upper"]
    binops = ["+", "-", "*", "/", "//", "%", "~", "==", "!=", "<", "<=", ">", ">=", "in", "not in", "and",
              "or", "**"]
    methods = ["split()", "split(',')", "split(' ', 1)", "strip()", "strip('H')", "lstrip()", "rstrip('d')",
               "startswith('H')", "endswith('d')", "replace('l', 'L')", "lower()", "upper()", "title()",
               "capitalize()", "find('o')", "count('l')", "items()|list", "keys()|list", "values()|list",
               "get('a')", "get('q', 3)", "rsplit(',', 1)"]

    def expr(depth=0):
        k = rng.random()
        if depth > 2 or k < 0.3:
            return rng.choice(atoms)
        if k < 0.45:
            return "%s | %s" % (expr(depth + 1), rng.choice(filters))
        if k < 0.55:
            return "%s is %s%s" % (expr(depth + 1), rng.choice(["", "not "]), rng.choice(tests))
        if k < 0.75:
            return "(%s %s %s)" % (expr(depth + 1), rng.choice(binops), expr(depth + 1))
        if k < 0.85:
            return "%s.%s" % (rng.choice(["s", "u", "d", "'a,b c'", "messages[0].content"]), rng.choice(methods))
        if k < 0.9:
            return "(%s if %s else %s)" % (expr(depth + 1), expr(depth + 1), expr(depth + 1))
        if k < 0.95:
            return "not %s" % expr(depth + 1)
        return "[%s, %s]" % (expr(depth + 1), expr(depth + 1))

    def stmt(depth=0):
        k = rng.random()
        if depth > 2 or k < 0.4:
            return "{{ %s }}" % expr()
        if k < 0.55:
            return "{%% if %s %%}%s{%% else %%}%s{%% endif %%}" % (expr(), stmt(depth + 1), stmt(depth + 1))
        if k < 0.7:
            return "{%% for loop_var in %s %%}%s{{ loop.index }}{%% endfor %%}" % (
                rng.choice(["l", "s", "d", "messages", "e", "range(3)", "u", "d.items()"]), stmt(depth + 1))
        if k < 0.85:
            return "{%% set ns.v = %s %%}{{ ns.v }}" % expr()
        return "%s%s%s" % (stmt(depth + 1), rng.choice([" ", "\n", "{%- if true -%}\n x \n{%- endif %}",
                                                         "  {% if true %}\n y\n  {% endif %}\n"]), stmt(depth + 1))

    return ["{% set ns = namespace(v=0) %}" + stmt() for _ in range(count)]


def main():
    if len(sys.argv) < 4:
        sys.exit("usage: template_reference.py ASSETS_DIR FIXTURES_DIR OUT.json [MODEL_DIR...]")
    assets, fixtures, out_path = sys.argv[1:4]
    with open(os.path.join(assets, "deepseek_v3", "tokenizer_config.json"), encoding="utf-8") as f:
        v3 = json.load(f)
    token = lambda t: t if isinstance(t, str) else t["content"]
    base_vars = {"bos_token": token(v3["bos_token"]), "eos_token": token(v3["eos_token"])}
    templates = {"deepseek_v3": v3["chat_template"]}
    # Committed fixtures, then the published templates that scripts/fetch-assets.sh fetches.
    for folder in (fixtures, os.path.join(assets, "templates")):
        for name in sorted(os.listdir(folder)):
            if name.endswith(".jinja"):
                with open(os.path.join(folder, name), encoding="utf-8", newline="") as f:
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
    # Random combinations (fixed seed); dsv3 may refuse one with "unsupported construct" (the
    # generator uses an unknown filter and printf-style '%' on strings) but must never differ.
    for source in random_snippets(20261127, 3000):
        try:
            snippets.append({"template": source, "random": True,
                             "expected": env.from_string(source).render(**snippet_doc["context"])})
        except Exception as e:  # noqa: BLE001
            snippets.append({"template": source, "random": True, "error": "%s: %s" % (type(e).__name__, e)})
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
