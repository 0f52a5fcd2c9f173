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
    "missing_source": ('[numerics]\nweight_bits = { value = 8 }\n', "numerics.weight_bits"),
    "bad_type": ('[numerics]\nweight_bits = { value = "eight", source = "s" }\n', "numerics.weight_bits"),
    "bad_range": ('[numerics]\nweight_bits = { value = 12, source = "s" }\n', "numerics.weight_bits"),
    "bare_number": ('[limits]\nneurons_per_core = 1024\n', "limits.neurons_per_core"),
    "unknown_section": ('[stuff]\nx = 1\n', "stuff"),
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


def test_user_profile_by_path(tmp_path: Path):
    path = tmp_path / "mine.toml"
    path.write_text(HEADER + '[numerics]\nweight_bits = { value = 6, source = "s" }\n')
    assert profiles.get(str(path)).numerics["weight_bits"] == 6


def test_broken_toml_syntax(tmp_path: Path):
    path = tmp_path / "broken.toml"
    path.write_text("schema_version = = 1")
    with pytest.raises(ProfileError, match="not valid TOML"):
        profiles.get(str(path))
