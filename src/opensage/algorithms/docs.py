"""The built-in algorithms' reference tables, generated from their specs.

``python -m opensage.algorithms.docs > docs/algorithms.md`` writes them; a test checks the
file is current, so the documentation cannot drift from what ``CreateTrainingJob`` accepts.
"""

from __future__ import annotations

import importlib

from opensage.algorithms.registry import KNOWN
from opensage.algorithms.spec import AlgorithmSpec

HEADER = """# Built-in algorithms

Generated from the algorithms' declared specs by `python -m opensage.algorithms.docs`; do not
edit by hand. The same declarations validate `CreateTrainingJob` (an unknown name or a value
outside the accepted range is a `ValidationException` naming it), bound tuning ranges, and
name the metrics a tuning job may optimise.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def algorithm_markdown(spec: AlgorithmSpec, repositories: list[str]) -> str:
    lines = [f"## {spec.name}", "",
             "Image repositories: " + ", ".join(f"`{r}`" for r in repositories) + ".", "",
             "| Hyperparameter | Required | Tunable | Accepted | Default |",
             "| --- | --- | --- | --- | --- |"]
    for name, param in spec.hyperparameters.items():
        if name.startswith("_"):
            continue
        default = param.format(param.default) if param.default is not None else ""
        lines.append(f"| `{name}` | {'yes' if param.required else ''} | "
                     f"{'yes' if param.tunable else ''} | {_cell(param.accepted())} | "
                     f"{_cell(default)} |")
    lines += ["", "| Channel | Required | Content types | Input modes |",
              "| --- | --- | --- | --- |"]
    for name, channel in spec.channels.items():
        lines.append(f"| `{name}` | {'yes' if channel.required else ''} | "
                     f"{', '.join(channel.content_types)} | {', '.join(channel.input_modes)} |")
    objectives = [(m.name, m.direction) for m in spec.metrics if m.direction]
    if objectives:
        lines += ["", "Metrics: " + ", ".join(f"`{name}` ({direction.lower()})"
                                              for name, direction in objectives) + "."]
    if spec.trains_across_hosts:
        lines += ["", ("With `InstanceCount` > 1 the hosts train one model together (each on "
                       "its shard of a `ShardedByS3Key` channel, or its share of a "
                       "`FullyReplicated` one).")]
    return "\n".join(lines) + "\n"


def markdown() -> str:
    by_package: dict[str, list[str]] = {}
    for repository, package in KNOWN.items():
        by_package.setdefault(package, []).append(repository)
    parts = [HEADER]
    for package, repositories in sorted(by_package.items(),
                                        key=lambda item: importlib.import_module(
                                            item[0]).SPEC.name):
        parts.append(algorithm_markdown(importlib.import_module(package).SPEC, repositories))
    return "\n".join(parts)


if __name__ == "__main__":
    print(markdown(), end="")
