"""The model artifact serves raw feature rows, as the scikit-learn serving container would call it.

``model.tar.gz`` from the chain is extracted and its own ``code/train.py`` is
imported (SAGEMAKER_PROGRAM=train.py, SAGEMAKER_SUBMIT_DIRECTORY=code), then
``model_fn`` -> ``input_fn`` -> ``predict_fn`` -> ``output_fn``.
"""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pandas as pd
import pytest

from tests.pipeline.script_chain import (
    FEATURES,
    TARGET,
    chain_paths,
    load_script,
)


@pytest.fixture(scope="module")
def chain(shared_dir, once) -> dict:
    return chain_paths(shared_dir, once)


@pytest.fixture(scope="module")
def served(chain, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("served-model")
    with tarfile.open(chain["archive"]) as tar:
        tar.extractall(model_dir)
    module = load_script("train.py", model_dir / "code" / "train.py")
    return module, module.model_fn(str(model_dir))


def invoke(served, body, content_type="text/csv", accept="text/csv"):
    module, model = served
    return module.output_fn(module.predict_fn(module.input_fn(body, content_type), model), accept)


def _csv_probabilities(body: str) -> np.ndarray:
    return np.array([float(line) for line in body.splitlines()])


def test_csv_rows_of_raw_values_unseen_category_and_gaps(served):
    body = (
        "12,70.5,846.0,2,0,month-to-month,electronic-check,fiber\n"
        # an unseen category, a missing number, a missing category
        '3,99.9,,5,1,"weekly",,satellite\n'
        '40,25.0,1000.0,0,0,"two-year","bank-transfer","dsl"\n'
    )
    response, content_type = invoke(served, body)
    assert content_type == "text/csv"
    probabilities = _csv_probabilities(response)
    assert probabilities.shape == (3,)
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
    # A month-to-month fiber customer is a likelier churner than a two-year DSL one.
    assert probabilities[0] > probabilities[2]


def test_csv_predictions_match_the_pipeline_on_the_test_split(served, chain):
    module, model = served
    test = pd.read_csv(chain["out"] / "test" / "test.csv")
    body = test[FEATURES].to_csv(header=False, index=False)  # no header, gaps as empty cells
    response, _ = invoke(served, body.encode("utf-8"), "text/csv; charset=utf-8", None)
    expected = model["pipeline"].predict_proba(module.coerce_frame(test, model["schema"]))[:, 1]
    np.testing.assert_allclose(_csv_probabilities(response), expected, rtol=1e-12)


def test_json_instances_as_lists_and_objects(served):
    lists = {"instances": [[12, 70.5, 846.0, 2, 0, "month-to-month", "electronic-check", "fiber"]]}
    objects = [
        {
            "tenure_months": 12,
            "monthly_charges": "70.5",
            "total_charges": 846.0,
            "support_calls": 2,
            "senior_citizen": 0,
            "contract": "month-to-month",
            "payment_method": "electronic-check",
            "internet_service": "fiber",
        },
        {"tenure_months": 3, "monthly_charges": None, "contract": "never-seen"},
    ]
    from_lists, content_type = invoke(served, json.dumps(lists), "application/json", "application/json")
    assert content_type == "application/json"
    first = json.loads(from_lists)["predictions"]
    from_objects, _ = invoke(served, json.dumps({"instances": objects}), "application/json", "application/json")
    second = json.loads(from_objects)["predictions"]
    assert len(first) == 1 and len(second) == 2
    assert second[0] == pytest.approx(first[0])
    assert 0.0 <= second[1] <= 1.0
    # The same row as CSV gives the same probability.
    csv_body, _ = invoke(served, "12,70.5,846.0,2,0,month-to-month,electronic-check,fiber\n")
    assert float(csv_body) == pytest.approx(first[0])


def test_input_fn_builds_the_recorded_columns_and_dtypes(served):
    module, _ = served
    frame = module.input_fn("1,2.5,,3,0,one-year,,dsl\n", "text/csv")
    assert list(frame.columns) == FEATURES
    assert TARGET not in frame.columns
    for name in FEATURES[:5]:
        assert frame[name].dtype == np.float64, name
    assert np.isnan(frame["total_charges"].iloc[0])
    assert frame["contract"].iloc[0] == "one-year"
    assert pd.isna(frame["payment_method"].iloc[0])


def test_wrong_column_count_is_a_clear_error(served):
    module, _ = served
    with pytest.raises(ValueError, match=r"expected 8 columns \(tenure_months, .*\), got 7"):
        module.input_fn("12,70.5,846.0,2,0,month-to-month,fiber\n", "text/csv")
    with pytest.raises(ValueError, match="expected 8 columns .* got 9"):
        module.input_fn(json.dumps({"instances": [[1, 2, 3, 4, 5, "a", "b", "c", "d"]]}), "application/json")
    with pytest.raises(ValueError, match="unknown feature"):
        module.input_fn(json.dumps([{"tenure": 1}]), "application/json")
    with pytest.raises(ValueError, match="expects numbers"):
        module.input_fn("abc,70.5,846.0,2,0,month-to-month,electronic-check,fiber\n", "text/csv")


def test_unknown_content_types_are_clear_errors(served):
    module, _ = served
    with pytest.raises(ValueError, match="unsupported content type 'application/x-npy'"):
        module.input_fn(b"\x93NUMPY", "application/x-npy")
    with pytest.raises(ValueError, match="unsupported accept type 'text/html'"):
        module.output_fn(np.array([0.5]), "text/html")
    body, content_type = module.output_fn(np.array([0.25, 0.75]), "*/*")
    assert content_type == "text/csv" and body.splitlines() == ["0.25", "0.75"]
