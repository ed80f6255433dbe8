"""Generate a small synthetic customer-churn CSV (deterministic for a given seed).

Defaults: 2000 rows, seed 7, written to ``--output`` (default ``churn.csv``).
The columns are those of the example ``customers`` feature group, so the file
loads with ``mlops data ingest churn --group customers <file>``:

- ``customer_id`` (String, the record identifier: ``C00001``, ``C00002``, ...),
- ``event_time`` (Fractional epoch seconds from a fixed base, so the file is
  byte-identical on every run),
- ``tenure_months`` (Integral), ``monthly_charges`` (Fractional),
  ``total_charges`` (Fractional, ~2% missing), ``support_calls`` (Integral),
  ``senior_citizen`` (Integral 0/1), ``contract``, ``payment_method`` (~1%
  missing), ``internet_service`` (String),
- ``churn`` (Integral 0/1, the label; ~0.5% missing: raw data is never
  perfectly labelled), drawn from a logistic model of the features, so a
  classifier can reach an AUC well above 0.5.

Uses only numpy, pandas and the standard library (same as the step scripts).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

CONTRACTS = ("month-to-month", "one-year", "two-year")
PAYMENTS = ("bank-transfer", "credit-card", "electronic-check", "mailed-check")
INTERNET = ("dsl", "fiber", "none")
# 2024-01-01T00:00:00Z: a fixed base keeps the file deterministic.
EVENT_TIME_BASE = 1704067200.0


def make_frame(rows: int, seed: int) -> pd.DataFrame:
    """Return the synthetic data set; same rows and seed give the same frame."""
    rng = np.random.default_rng(seed)
    contract = rng.choice(CONTRACTS, size=rows, p=(0.55, 0.25, 0.20))
    payment = rng.choice(PAYMENTS, size=rows)
    internet = rng.choice(INTERNET, size=rows, p=(0.35, 0.45, 0.20))
    senior = (rng.random(rows) < 0.16).astype(int)
    tenure = rng.integers(0, 72, size=rows)
    monthly = np.round(20 + 45 * (internet == "fiber") + 25 * (internet == "dsl") + rng.normal(0, 12, rows), 2).clip(
        18.0, 130.0
    )
    total = np.round(monthly * np.maximum(tenure, 1) + rng.normal(0, 40, rows), 2).clip(0.0)
    calls = rng.poisson(1.2 + 1.5 * (internet == "fiber"), size=rows)

    logit = (
        -1.0
        + 1.6 * (contract == "month-to-month")
        - 1.2 * (contract == "two-year")
        + 0.7 * (payment == "electronic-check")
        + 0.5 * (internet == "fiber")
        + 0.4 * senior
        - 0.045 * tenure
        + 0.018 * (monthly - 65)
        + 0.35 * calls
    )
    churn = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(float)
    # Whole milliseconds spread over about a month after the base.
    event_time = EVENT_TIME_BASE + np.round(rng.uniform(0, 30 * 86400, size=rows), 3)

    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(1, rows + 1)],
            "event_time": event_time,
            "tenure_months": tenure,
            "monthly_charges": monthly,
            "total_charges": total,
            "support_calls": calls,
            "senior_citizen": senior,
            "contract": contract,
            "payment_method": payment.astype(object),
            "internet_service": internet,
            "churn": churn,
        }
    )
    # Gaps the pipeline must handle: missing numbers, categories and labels.
    frame.loc[rng.random(rows) < 0.02, "total_charges"] = np.nan
    frame.loc[rng.random(rows) < 0.01, "payment_method"] = None
    frame.loc[rng.random(rows) < 0.005, "churn"] = np.nan
    # Keep the label an integer column in the CSV where it is present.
    frame["churn"] = frame["churn"].astype("Int64")
    return frame


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="churn.csv")
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    frame = make_frame(args.rows, args.seed)
    # lineterminator pinned so the file is byte-identical on every platform.
    frame.to_csv(args.output, index=False, lineterminator="\n")
    print(f"wrote {len(frame)} rows to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
