"""scripts/measure_ensemble.py --out: a new measurement replaces only the entry measured with the same files and
settings; entries of other settings (the pair at 4 and at 12 inferences) stay."""

import importlib.util
import json

import pytest
from conftest import ROOT

spec = importlib.util.spec_from_file_location("measure_ensemble", ROOT / "scripts" / "measure_ensemble.py")
measure_ensemble = importlib.util.module_from_spec(spec)
spec.loader.exec_module(measure_ensemble)


def entry(shift, accuracy):
    return {"model": "ferplus,fer2013", "sha256": ["a", "b"], "flip_tta": [True, True], "shift_tta": [0, shift],
            "balance": [0.35, 0.3], "PublicTest": {"accuracy": accuracy}}


def test_a_new_measurement_replaces_its_own_entry_and_keeps_the_others(tmp_path):
    out = tmp_path / "ensembles.json"
    out.write_text(json.dumps({"ensembles": [entry(3, 0.60), entry(0, 0.50)]}))
    rows = measure_ensemble.merged(out, [entry(0, 0.55)])
    assert rows == [entry(3, 0.60), entry(0, 0.55)]
    assert measure_ensemble.merged(tmp_path / "none.json", [entry(0, 0.55)]) == [entry(0, 0.55)]


def test_an_unreadable_file_is_named_and_not_overwritten(tmp_path):
    out = tmp_path / "ensembles.json"
    out.write_text("{not json")
    with pytest.raises(SystemExit, match="ensembles.json: cannot read"):
        measure_ensemble.merged(out, [entry(0, 0.55)])
    assert out.read_text() == "{not json"
