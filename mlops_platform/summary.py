"""Print what a synth produced: stacks per account role, resource counts, CDK warnings, the nag report.

Every warning CDK recorded in the cloud assembly is listed (acknowledged ones
are not recorded); they are real problems more often than not.

``python -m mlops_platform.summary [CDK_OUT]`` reads the cloud assembly only; it
never calls AWS. It ends with the idle-cost table and writes ``CDK_OUT/cost-report.md``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mlops_platform import cost


def summarize(cdk_out: Path) -> list[str]:
    manifest = json.loads((cdk_out / "manifest.json").read_text())
    lines: list[str] = []
    total = 0
    order = ["Governance", "Dev", "Staging", "Prod"]
    stages = [(a_id.removeprefix("assembly-"), a) for a_id, a in manifest["artifacts"].items()]
    stages = [(s, a) for s, a in stages if a["type"] == "cdk:cloud-assembly"]
    for stage_id, artifact in sorted(stages, key=lambda s: (order.index(s[0]) if s[0] in order else 99, s[0])):
        stage_dir = cdk_out / artifact["properties"]["directoryName"]
        stage_manifest = json.loads((stage_dir / "manifest.json").read_text())
        stacks = [a for a in stage_manifest["artifacts"].values() if a["type"] == "aws:cloudformation:stack"]
        env = stacks[0]["environment"].removeprefix("aws://") if stacks else "?"
        lines.append(f"{stage_id} ({env})")
        for stack in sorted(stacks, key=lambda a: a["properties"].get("stackName", "")):
            template = json.loads((stage_dir / stack["properties"]["templateFile"]).read_text())
            count = len(template.get("Resources", {}))
            total += count
            release = template.get("Outputs", {}).get("Release", {}).get("Value")
            serves = f"  serves: {release}" if isinstance(release, str) else ""
            monitoring = template.get("Outputs", {}).get("Monitoring", {}).get("Value")
            if isinstance(monitoring, str) and monitoring != "off":
                serves += f"; monitoring: {monitoring}"
            lines.append(f"  {stack['properties']['stackName']:<40} {count:>4} resources{serves}")
    report = cdk_out / "validation-report.json"
    lines.append(f"total: {total} resources")
    found = warnings(cdk_out)
    lines.append(f"CDK warnings: {len(found)}")
    lines.extend(f"  {path}: {message}" for path, message in found)
    if report.exists():
        data = json.loads(report.read_text())
        failed = sum(len(p.get("violations", [])) for p in data.get("pluginReports", []))
        lines.append(f"cdk-nag: {failed} unacknowledged finding(s); report: {report}")
    return lines


def warnings(cdk_out: Path) -> list[tuple[str, str]]:
    """(construct path, message) of every ``aws:cdk:warning`` in the assembly, in a stable order.

    CDK writes a stack's metadata into its manifest entry or, as now, into a ``*.metadata.json`` beside it.
    """
    found: set[tuple[str, str]] = set()
    blocks: list[dict] = []
    for manifest in sorted(cdk_out.glob("**/manifest.json")):
        blocks += [a.get("metadata") or {} for a in json.loads(manifest.read_text()).get("artifacts", {}).values()]
    blocks += [json.loads(path.read_text()) for path in sorted(cdk_out.glob("**/*.metadata.json"))]
    for block in blocks:
        for path, entries in block.items():
            for entry in entries:
                if entry.get("type") == "aws:cdk:warning":
                    found.add((path, str(entry.get("data", "")).splitlines()[0]))
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    cdk_out = Path(args[0] if args else "cdk.out")
    if not (cdk_out / "manifest.json").exists():
        print(f"no cloud assembly in {cdk_out}; run `make synth` first", file=sys.stderr)
        return 1
    print("\n".join(summarize(cdk_out)))
    # The idle-cost estimate (mlops_platform.cost): writes <cdk_out>/cost-report.md, prints its table.
    print("\n".join(cost.write_report(cdk_out)[1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
