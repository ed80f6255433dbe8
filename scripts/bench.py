#!/usr/bin/env python3
"""Benchmark: synth time of the example config (cold and warm) and of 10 projects, and test-suite time.

"Cold" empties the pipeline-definition cache before each run, so the SageMaker
SDK is imported and every definition built; "warm" is an unchanged re-synth.

Prints figures only; it is not a test and asserts nothing. Each synth runs in a
fresh process, as ``cdk synth`` would, and the median of several runs is shown.
``--runs N`` sets the repetitions (default 5), ``--skip-tests`` leaves out the suite.
The idle-cost report ``make synth`` writes (``mlops_platform.cost``) is timed on
both synths' output, import included, in a fresh process each run (budget 200 ms).

The drift check (``pipeline_definitions/scripts/monitoring/drift.py``) is timed
on ``--drift-records`` (default 1,000,000) generated data-capture records, two
variants of local JSON Lines files, against a baseline ``preprocess.py`` makes
from the sample data: one fresh process, one core, no S3 and no CloudWatch; the
line gives records per second (the check's own run, and wall time with the
interpreter start and imports) and the process's peak RSS. ``--skip-drift``
leaves it out, ``--drift-only`` runs nothing else (and leaves the README alone).
A full run also writes its figures into README.md between the ``bench:begin``
and ``bench:end`` markers, so the README's numbers are always measured ones
(``--no-readme`` leaves the README alone).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
    "AWS_EC2_METADATA_DISABLED": "true",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
}


CACHE = ROOT / ".cache" / "pipeline-definitions"


def synth_once(config_dir: Path, outdir: Path, cold: bool = False) -> float:
    """One synth in a fresh process; ``cold`` empties the pipeline-definition cache first."""
    shutil.rmtree(outdir, ignore_errors=True)
    if cold:
        shutil.rmtree(CACHE, ignore_errors=True)
    env = {**ENV, "MLOPS_CONFIG_DIR": str(config_dir), "CDK_OUTDIR": str(outdir)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-O", str(ROOT / "app.py")], env=env, cwd=ROOT, capture_output=True)
    elapsed = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"synth failed:\n{done.stderr.decode()[-3000:]}")
    return elapsed


def count_resources(outdir: Path) -> int:
    return sum(len(json.loads(p.read_text())["Resources"]) for p in outdir.rglob("*.template.json"))


def many_projects_config(tmp: Path, count: int) -> Path:
    config = tmp / f"config-{count}"
    shutil.copytree(ROOT / "config", config)
    example = yaml.safe_load((ROOT / "config/projects/churn.yaml").read_text())
    for path in (config / "projects").glob("*.yaml"):
        path.unlink()
    for i in range(1, count + 1):
        name = f"project{i:02d}"
        (config / "projects" / f"{name}.yaml").write_text(yaml.safe_dump({**example, "name": name}))
    return config


DRIFT = ROOT / "pipeline_definitions" / "scripts" / "monitoring" / "drift.py"
PREPROCESS = ROOT / "pipeline_definitions" / "scripts" / "tabular" / "preprocess.py"
SAMPLE = ROOT / "pipeline_definitions" / "sample_data" / "churn.csv"
DRIFT_FEATURES = (
    "tenure_months,monthly_charges,total_charges,support_calls,senior_citizen,contract,payment_method,internet_service"
)
RECORDS_PER_FILE = 50_000


def drift_baseline(tmp: Path) -> Path:
    """The data-quality baseline preprocess.py writes for the sample data."""
    (tmp / "drift-input").mkdir()
    shutil.copy(SAMPLE, tmp / "drift-input" / "churn.csv")
    args = ["--input-dir", str(tmp / "drift-input"), "--output-dir", str(tmp / "drift-processed")]
    args += ["--id-column", "customer_id", "--target-column", "churn", "--features", DRIFT_FEATURES]
    done = subprocess.run([sys.executable, str(PREPROCESS), *args], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"preprocess failed:\n{done.stderr[-3000:]}")
    return tmp / "drift-processed" / "baseline"


def drift_captures(root: Path, count: int) -> Path:
    """``count`` data-capture records (rows of the sample data) under ``<endpoint>/<variant>/2026/12/01/10/``."""
    import csv
    import random

    with SAMPLE.open() as handle:
        reader = csv.reader(handle)
        header = next(reader)
        columns = [header.index(name) for name in DRIFT_FEATURES.split(",")]
        rows = [json.dumps(",".join(row[i] for i in columns) + "\n") for row in reader]
    stamps = [f"2026-12-01T10:{i // 60:02d}:{i % 60:02d}Z" for i in range(3600)]
    output = (
        '"endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT", "data": "0.5\\n", "encoding": "CSV"}'
    )
    pick = random.Random(7).choices(range(len(rows)), k=count)
    endpoint = root / "bench-endpoint"
    for start in range(0, count, RECORDS_PER_FILE):
        variant = "champion" if (start // RECORDS_PER_FILE) % 2 == 0 else "challenger"
        folder = endpoint / variant / "2026" / "12" / "01" / "10"
        folder.mkdir(parents=True, exist_ok=True)
        lines = [
            '{"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", '
            f'"data": {rows[pick[i]]}, "encoding": "CSV"}}, {output}}}, "eventMetadata": {{"eventId": "e{i}", '
            f'"inferenceTime": "{stamps[i % 3600]}", "inferenceId": "i{i}"}}, "eventVersion": "0"}}\n'
            for i in range(start, min(start + RECORDS_PER_FILE, count))
        ]
        (folder / f"capture-{start // RECORDS_PER_FILE:04d}.jsonl").write_text("".join(lines))
    return endpoint


def measure_drift(tmp: Path, count: int) -> None:
    """The drift check over ``count`` local capture records in one fresh process (one core, no AWS)."""
    baseline = drift_baseline(tmp)
    start = time.perf_counter()
    endpoint = drift_captures(tmp, count)
    generated = time.perf_counter() - start
    print(f"  drift: generated {count} records in {generated:.1f} s", file=sys.stderr, flush=True)
    out = tmp / "drift-out"
    args = ["--capture-uri", str(endpoint), "--baseline-dir", str(baseline), "--output-dir", str(out)]
    args += ["--endpoint", "bench-endpoint", "--schedule", "bench", "--window-hours", "1"]
    args += ["--end", "2026-12-01T11:00:00Z", "--no-metrics"]
    env = {**ENV, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(DRIFT), *args], env=env, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"drift check failed:\n{done.stderr[-3000:]}")
    summary = json.loads((out / "summary.json").read_text())
    if summary["records"] != count:
        sys.exit(f"drift check read {summary['records']} of {count} records")
    report(
        f"{f'drift check ({count // 1000}k records)':<28} {summary['elapsed_seconds']:6.2f} s  "
        f"{summary['records_per_second']:9,.0f} records/s  (wall {count / wall:,.0f}/s with start-up)  "
        f"peak RSS {summary['peak_rss_mb']:.0f} MB  {summary['violations']} violations"
    )


README = ROOT / "README.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def with_figures(readme: str, lines: list[str], stamp: str) -> str:
    """``readme`` with the block between the bench markers replaced by ``lines``; unchanged if no markers."""
    if BEGIN not in readme or END not in readme:
        return readme
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    block = "\n".join(["", f"Measured by `make bench` ({stamp}):", "", "```", *lines, "```", ""])
    return f"{head}{BEGIN}{block}{END}{tail}"


def measure(label: str, config_dir: Path, outdir: Path, runs: int, cold: bool = False) -> float:
    times = []
    if not cold:
        synth_once(config_dir, outdir)  # warm the pipeline-definition cache
    for i in range(runs):
        times.append(synth_once(config_dir, outdir, cold=cold))
        print(f"  {label}: run {i + 1}/{runs} {times[-1]:.2f} s", file=sys.stderr, flush=True)
    median = statistics.median(times)
    resources = count_resources(outdir)
    report(
        f"{label:<28} median {median:6.2f} s  (min {min(times):.2f}, max {max(times):.2f})  "
        f"{resources:5d} resources  {1000 * median / resources:6.1f} ms/resource"
    )
    return median


# One cost report in a fresh process, import included: what it adds to `make synth` (prints seconds).
COST_TIMER = (
    "import sys, time; from pathlib import Path; start = time.perf_counter(); from mlops_platform import cost; "
    "cost.write_report(Path(sys.argv[1])); print(time.perf_counter() - start)"
)


def measure_cost(label: str, outdir: Path, runs: int) -> None:
    """Time of writing ``cost-report.md`` on a synth's output (``mlops_platform.cost``, what summary runs)."""
    times = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-c", COST_TIMER, str(outdir)], env=ENV, cwd=ROOT, capture_output=True)
        if done.returncode:
            sys.exit(f"cost report failed:\n{done.stderr.decode()[-3000:]}")
        times.append(float(done.stdout))
    median = statistics.median(times)
    report(f"{label:<28} median {1000 * median:6.1f} ms (min {1000 * min(times):.1f}, max {1000 * max(times):.1f})")


def check_cost_of_copies(outdir: Path, count: int) -> None:
    """The 10-project report: every copy costs the same, and the total is the sum of the rows (exits otherwise)."""
    from mlops_platform import cost

    built = cost.build_report(outdir)
    copies = [p for p in built.projects if p != cost.SHARED]
    rows = {p: round(built.cell(p), 2) for p in copies}
    if len(copies) != count or len(set(rows.values())) != 1:
        sys.exit(f"cost report of {count} identical projects: rows differ or are missing: {rows}")
    if abs(built.total - sum(built.cell(p) for p in built.projects)) > 0.005:
        sys.exit(f"cost report total {built.total:.2f} is not the sum of its rows")
    each = next(iter(rows.values()))
    report(f"{'cost, 10 projects':<28} ${each:,.2f} each a month, ${built.total:,.2f} in all (rows add up)")


FIGURES: list[str] = []


def report(line: str) -> None:
    print(line, flush=True)
    FIGURES.append(line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument("--no-readme", action="store_true", help="do not write the figures into README.md")
    parser.add_argument("--skip-drift", action="store_true", help="leave out the drift check")
    parser.add_argument("--drift-only", action="store_true", help="time the drift check only (README untouched)")
    parser.add_argument("--drift-records", type=int, default=1_000_000)
    args = parser.parse_args()
    if args.drift_only:
        args.skip_tests = args.no_readme = True
    if args.drift_only:
        report(f"benchmark on {os.cpu_count()} cores, drift check only")
    else:
        report(f"benchmark on {os.cpu_count()} cores, {args.runs} runs each (python app.py, fresh process)")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if not args.drift_only:
            measure("example, cold cache", ROOT / "config", tmp / "out-cold", max(3, args.runs // 2), cold=True)
            one = measure("example (1 project)", ROOT / "config", tmp / "out-1", args.runs)
            ten = measure("10 projects", many_projects_config(tmp, 10), tmp / "out-10", max(3, args.runs // 2))
            report(f"{'10 projects / 1 project':<28} {ten / one:6.2f} x")
            measure_cost("cost report (1 project)", tmp / "out-1", args.runs)
            measure_cost("cost report (10 projects)", tmp / "out-10", args.runs)
            check_cost_of_copies(tmp / "out-10", 10)
        if not args.skip_drift:
            measure_drift(tmp, args.drift_records)
    if not args.skip_tests:
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider"],
            cwd=ROOT,
            env=ENV,
            capture_output=True,
            text=True,
        )
        summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:]
        report(f"{'test suite (pytest -n 2)':<28} {time.perf_counter() - start:6.2f} s  ({summary})")
    if not args.no_readme and not args.skip_tests:
        stamp = time.strftime("%Y-%m-%d", time.gmtime())
        README.write_text(with_figures(README.read_text(), FIGURES, stamp))
        print(f"figures written to {README.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
