from pathlib import Path

import pytest

from neurodeploy import profiles
from neurodeploy.errors import ProfileError


def test_shipped_profiles_validate_and_cite_every_number():
    assert {"loihi2", "ideal"} <= set(profiles.available())
    for name in profiles.available():
        prof = profiles.get(name)
        for section in ("numerics", "limits", "energy", "mismatch"):
            for key in getattr(prof, section):
                cite = prof.citations[f"{section}.{key}"]
                assert cite.reference, f"{name}: {section}.{key} has no reference"


def test_loihi2_numerics_match_lava_fixed_point():
    prof = profiles.get("loihi2")
    assert prof.core_model == "loihi"
    assert prof.synaptic_latency == 1
    assert prof.numerics["weight_bits"] == 8
    assert prof.numerics["vth_bits"] == 17
    assert prof.numerics["reset_modes"] == ["zero"]


def test_unknown_profile_names_the_choices():
    with pytest.raises(ProfileError, match="choose one of"):
        profiles.get("loihi9")


BAD = {
    "missing_source": ("[numerics]\nweight_bits = { value = 8 }\n", "numerics.weight_bits"),
    "bad_type": ('[numerics]\nweight_bits = { value = "eight", source = "s" }\n', "numerics.weight_bits"),
    "bad_range": ('[numerics]\nweight_bits = { value = 12, source = "s" }\n', "numerics.weight_bits"),
    "bare_number": ("[limits]\nneurons_per_core = 1024\n", "limits.neurons_per_core"),
    "unknown_section": ("[stuff]\nx = 1\n", "stuff"),
    "nan_energy": ('[energy]\nsynaptic_op_pj = { value = nan, source = "s" }\n', "energy.synaptic_op_pj"),
    "negative_inf_energy": ('[energy]\nneuron_update_pj = { value = -inf, source = "s" }\n', "energy.neuron_update_pj"),
    "negative_energy": ('[energy]\nsynaptic_op_pj = { value = -1.0, source = "s" }\n', "energy.synaptic_op_pj"),
    "negative_du_bits": ('[numerics]\ndu_bits = { value = -3, source = "s" }\n', "numerics.du_bits"),
    "huge_du_bits": ('[numerics]\ndu_bits = { value = 100000, source = "s" }\n', "numerics.du_bits"),
    "huge_state_bits": ('[numerics]\nstate_bits = { value = 1000, source = "s" }\n', "numerics.state_bits"),
    "huge_core": (
        '[limits]\nneurons_per_core = { value = 1000000000000000000, source = "s" }\n',
        "limits.neurons_per_core",
    ),
    "inf_unknown_field": ('[numerics]\nmystery = { value = inf, source = "s" }\n', "numerics.mystery"),
    "wide_exp": ('[numerics]\nweight_exp = { value = [-1000, 7], source = "s" }\n', "numerics.weight_exp"),
}
HEADER = 'schema_version = 1\nname = "t"\ntitle = "T"\nkind = "digital"\ncore_model = "loihi"\n[sources]\ns = "ref"\n'


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_profile_reports_file_and_field(tmp_path: Path, case: str):
    body, field = BAD[case]
    path = tmp_path / f"{case}.toml"
    path.write_text(HEADER + body)
    with pytest.raises(ProfileError) as err:
        profiles.get(str(path))
    assert field in str(err.value) and str(path) in str(err.value)


def test_a_bare_name_never_loads_a_file_of_that_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "loihi2").write_text(HEADER)
    monkeypatch.chdir(tmp_path)
    assert profiles.get("loihi2").title.startswith("Intel Loihi 2")
    assert profiles.get("./loihi2").name == "t"  # a path says it is one


def test_user_profile_by_path(tmp_path: Path):
    path = tmp_path / "mine.toml"
    path.write_text(HEADER + '[numerics]\nweight_bits = { value = 6, source = "s" }\n')
    assert profiles.get(str(path)).numerics["weight_bits"] == 6


def test_broken_toml_syntax(tmp_path: Path):
    path = tmp_path / "broken.toml"
    path.write_text("schema_version = = 1")
    with pytest.raises(ProfileError, match="not valid TOML"):
        profiles.get(str(path))


# ------------------------------------------------------------------ the six chip profiles, as the CLI shows them

CHIPS = {"loihi1", "loihi2", "xylo-audio2", "dynapse2", "brainscales2", "spinnaker2"}


def _show(name: str) -> dict:
    import json
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "neurodeploy.cli", "profiles", "show", name, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


EXPECTED = {  # (section, field) -> value, each from chips.md
    "loihi1": {
        ("limits", "neurons_per_core"): 1024,
        ("limits", "fan_in_axons_per_core"): 4096,
        ("limits", "fan_out_axons_per_core"): 4096,
        ("limits", "synapse_memory_bits_per_core"): 16384 * 64,
        ("limits", "cores_per_chip"): 128,
        ("energy", "synaptic_op_pj"): 23.6,
        ("numerics", "vth_bits"): 17,
    },
    "xylo-audio2": {
        ("limits", "hidden_neurons"): 1000,
        ("limits", "input_channels"): 16,
        ("limits", "output_neurons"): 8,
        ("numerics", "weight_bits"): 8,
        ("numerics", "dash_bits"): 4,
        ("numerics", "reset_modes"): ["subtract"],
        ("numerics", "max_spikes_per_step_hidden"): 31,
    },
    "dynapse2": {
        ("limits", "neurons_per_core"): 256,
        ("limits", "cores_per_chip"): 4,
        ("limits", "fan_in_per_neuron"): 64,
        ("limits", "fan_out_cores_per_neuron"): 4,
        ("numerics", "weight_magnitude_bits"): 4,
        ("numerics", "shared_parameters"): "core",
    },
    "brainscales2": {
        ("numerics", "weight_magnitude_bits"): 6,
        ("numerics", "sign_by_rows"): True,
        ("limits", "neurons_per_core"): 256,
        ("limits", "cores_per_chip"): 2,
        ("numerics", "speedup"): 1000,
    },
    "spinnaker2": {
        ("limits", "cores_per_chip"): 152,
        ("numerics", "float_bits"): 32,
        ("limits", "synapse_memory_bits_per_core"): 128 * 1024 * 8,
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_profiles_show_json_matches_the_chip_facts(name: str):
    shown = _show(name)
    assert shown["name"] == name
    for (section, key), value in EXPECTED[name].items():
        assert shown[section][key] == value, f"{name}: {section}.{key}"
    prof = profiles.get(name)
    for where, cite in prof.citations.items():
        assert cite.source in shown["sources"], f"{name}: {where} cites an unknown source"


def test_chip_profiles_kinds_core_models_and_mismatch():
    assert set(profiles.available()) >= CHIPS
    kinds = {n: (profiles.get(n).kind, profiles.get(n).core_model) for n in CHIPS}
    assert kinds == {
        "loihi1": ("digital", "loihi"),
        "loihi2": ("digital", "loihi"),
        "xylo-audio2": ("digital", "xylo"),
        "dynapse2": ("analog", "analog"),
        "brainscales2": ("analog", "analog"),
        "spinnaker2": ("digital", "float"),
    }
    for name in ("dynapse2", "brainscales2"):
        prof = profiles.get(name)
        assert {"tau_mem", "tau_syn", "v_threshold", "weight"} <= set(prof.mismatch)
        for key, entry in prof.mismatch.items():
            assert set(entry) == {"sigma", "distribution", "scope"} and 0 < entry["sigma"] < 1
            assert entry["scope"] in ("synapse", "neuron", "core")
            assert not prof.citations[f"mismatch.{key}"].verified  # modelling defaults / placeholders
    # what chips.md marks UNVERIFIED or recalled stays verified = false
    assert not profiles.get("loihi2").citations["limits.neurons_per_core"].verified
    assert not profiles.get("spinnaker2").citations["energy.spike_pj"].verified
    assert not profiles.get("dynapse2").citations["numerics.tau_max_s"].verified
    assert profiles.get("dynapse2").citations["limits.fan_in_per_neuron"].verified


def test_profiles_show_table_names_sources_and_unverified():
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "neurodeploy.cli", "profiles", "show", "dynapse2"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "250", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0
    for fragment in ("mismatch.tau_mem", "rockpool_mismatch", "richter2024", "sigma"):
        assert fragment in proc.stdout, fragment


MISMATCH_BAD = {
    "no_sigma": ('[mismatch]\ntau = { value = 0.1, source = "s" }\n', "mismatch.tau"),
    "bad_sigma": ('[mismatch]\ntau = { sigma = -1, source = "s" }\n', "mismatch.tau.sigma"),
    "bad_scope": ('[mismatch]\ntau = { sigma = 0.1, scope = "chip", source = "s" }\n', "mismatch.tau.scope"),
    "bad_dist": (
        '[mismatch]\ntau = { sigma = 0.1, distribution = "cauchy", source = "s" }\n',
        "mismatch.tau.distribution",
    ),
    "no_source": ("[mismatch]\ntau = { sigma = 0.1 }\n", "mismatch.tau"),
    "bad_shared": ('[numerics]\nshared_parameters = { value = "chip", source = "s" }\n', "numerics.shared_parameters"),
    "bad_magnitude": (
        '[numerics]\nweight_magnitude_bits = { value = 0, source = "s" }\n',
        "numerics.weight_magnitude_bits",
    ),
}


@pytest.mark.parametrize("case", sorted(MISMATCH_BAD))
def test_bad_mismatch_and_new_fields_report_file_and_field(tmp_path: Path, case: str):
    body, field = MISMATCH_BAD[case]
    path = tmp_path / f"{case}.toml"
    path.write_text(HEADER + body)
    with pytest.raises(ProfileError) as err:
        profiles.get(str(path))
    assert f"field {field}" in str(err.value) and str(path) in str(err.value)


def test_mismatch_entry_defaults(tmp_path: Path):
    path = tmp_path / "m.toml"
    path.write_text(HEADER + '[mismatch]\ntau = { sigma = 0.05, source = "s", verified = false }\n')
    prof = profiles.get(str(path))
    assert prof.mismatch["tau"] == {"sigma": 0.05, "distribution": "normal", "scope": "neuron"}
    assert not prof.citations["mismatch.tau"].verified


def test_profile_paths_that_are_not_small_regular_files_are_refused_before_reading(tmp_path: Path):
    import os
    import time

    big = tmp_path / "big.toml"
    with big.open("wb") as fh:  # sparse: 2 GB declared, nothing written
        fh.truncate(2 << 30)
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)  # opening it for reading would block forever
    cases = {Path("/dev/zero"): "regular file", fifo: "regular file", tmp_path: "regular file", big: "limit"}
    for path, words in cases.items():
        t0 = time.perf_counter()
        with pytest.raises(ProfileError, match=words) as err:
            profiles.get(path)
        assert time.perf_counter() - t0 < 1.0 and str(path) in str(err.value)
