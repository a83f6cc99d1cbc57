"""The bundled instance catalog, lookup, wildcard matching and user override files."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.catalog import (
    Catalog,
    InstanceType,
    catalog_rows,
    default_catalog,
    load_catalog,
    parse_topology,
)
from scheduler.catalog.catalog import FIELDS
from scheduler.errors import CatalogError

# name: (vCPU, memory GiB, Neuron chips, GPUs) as EC2 publishes them (reference instances.csv).
PUBLISHED = {
    "trn1.2xlarge": (8, 32, 1, 0),
    "trn1.32xlarge": (128, 512, 16, 0),
    "trn1n.32xlarge": (128, 512, 16, 0),
    "trn2.3xlarge": (12, 128, 1, 0),
    "trn2.48xlarge": (192, 2048, 16, 0),
    "inf1.xlarge": (4, 8, 1, 0),
    "inf1.2xlarge": (8, 16, 1, 0),
    "inf1.6xlarge": (24, 48, 4, 0),
    "inf1.24xlarge": (96, 192, 16, 0),
    "inf2.xlarge": (4, 16, 1, 0),
    "inf2.8xlarge": (32, 128, 1, 0),
    "inf2.24xlarge": (96, 384, 6, 0),
    "inf2.48xlarge": (192, 768, 12, 0),
    "c6i.large": (2, 4, 0, 0),
    "c6i.xlarge": (4, 8, 0, 0),
    "c6i.2xlarge": (8, 16, 0, 0),
    "m6i.xlarge": (4, 16, 0, 0),
    "m6i.4xlarge": (16, 64, 0, 0),
    "r6i.2xlarge": (8, 64, 0, 0),
    "g5.xlarge": (4, 16, 0, 1),
    "g5.12xlarge": (48, 192, 0, 4),
    "p4d.24xlarge": (96, 1152, 0, 8),
}

BUNDLED_CSV = Path(__file__).resolve().parents[1] / "scheduler" / "catalog" / "instances.csv"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return default_catalog()


# --- bundled data -----------------------------------------------------------------------------------

def test_every_required_type_has_the_published_figures(catalog: Catalog) -> None:
    assert set(PUBLISHED) <= set(catalog.names())
    for name, (vcpus, gib, chips, gpus) in PUBLISHED.items():
        itype = catalog.get(name)
        figures = (itype.vcpus, itype.memory_mib, itype.chips, itype.gpus)
        assert figures == (vcpus, gib * 1024, chips, gpus), name


def test_published_figures_win_over_the_seed_and_the_seed_is_recorded(catalog: Catalog) -> None:
    assert catalog["inf2.xlarge"].vcpus == 4
    assert catalog["inf2.8xlarge"].memory_mib == 131072
    assert catalog["trn2.48xlarge"].memory_mib == 2097152
    assert "8 vCPU" in catalog["inf2.xlarge"].source
    assert "64 GiB" in catalog["inf2.8xlarge"].source
    assert "1536 GiB" in catalog["trn2.48xlarge"].source


def test_csv_has_exactly_the_instance_type_fields_and_a_source_everywhere(catalog: Catalog) -> None:
    header = BUNDLED_CSV.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert tuple(header) == FIELDS
    assert header[-1] == "source"
    assert all(itype.source for itype in catalog.values())


def test_device_paths_and_registered_cpu(catalog: Catalog) -> None:
    assert catalog["inf2.48xlarge"].device_paths == tuple(f"/dev/neuron{i}" for i in range(12))
    assert catalog["trn1.32xlarge"].device_paths[-1] == "/dev/neuron15"
    assert catalog["inf1.xlarge"].device_paths == ("/dev/neuron0",)
    assert catalog["c6i.large"].device_paths == ()
    for itype in catalog.values():
        assert itype.registered_cpu == itype.vcpus * 1024
    assert catalog["inf2.48xlarge"].registered_cpu == 196608


def test_neuron_cores_and_accelerators(catalog: Catalog) -> None:
    assert catalog["inf1.6xlarge"].neuron_cores == 16
    assert catalog["trn2.48xlarge"].neuron_cores == 128  # physical cores; 64 at the default LNC=2
    assert catalog["trn2.48xlarge"].accelerator_memory_gib == 96
    for itype in catalog.values():
        if itype.is_neuron:
            assert itype.accelerator_manufacturer == "amazon-web-services"
            assert itype.topology != "none"
        elif itype.gpus:
            assert itype.accelerator_manufacturer == "nvidia"
            assert itype.topology == "none"
        else:
            assert itype.accelerator is None and itype.accelerator_manufacturer is None


def test_launch_types(catalog: Catalog) -> None:
    both = {"EC2", "MANAGED_INSTANCES"}
    for itype in catalog.match("inf1.*"):
        assert itype.launch_types == {"EC2"}, itype.name
    for pattern in ("trn*", "inf2.*", "c6i.*", "m6i.*", "r6i.*", "g5.*", "p4d.*"):
        for itype in catalog.match(pattern):
            assert itype.launch_types == both, itype.name
    assert "UNCONFIRMED" in catalog["p4d.24xlarge"].source


def test_prices_and_price_notes(catalog: Catalog) -> None:
    assert catalog["trn1.32xlarge"].price_per_hour == 21.5
    assert catalog["trn1.32xlarge"].price_note == ""
    assert catalog["trn2.48xlarge"].price_per_hour == 35.76
    assert "us-east-2" in catalog["trn2.48xlarge"].price_note
    assert catalog["trn2.3xlarge"].price_per_hour == 2.235
    assert "ap-southeast-4" in catalog["trn2.3xlarge"].price_note
    assert "third-party" in catalog["trn2.3xlarge"].price_note
    assert all(itype.price_per_hour for itype in catalog.values())


def test_topologies_and_cpu_manufacturers(catalog: Catalog) -> None:
    expected = {"trn1.32xlarge": "torus2d:4x4", "trn1n.32xlarge": "torus2d:4x4",
                "trn2.48xlarge": "torus2d:4x4", "inf2.48xlarge": "ring:12", "inf2.24xlarge": "line:6",
                "inf1.6xlarge": "line:4", "inf1.24xlarge": "line:16", "trn2.3xlarge": "single",
                "c6i.large": "none"}
    for name, topology in expected.items():
        assert catalog[name].topology == topology
    for itype in catalog.values():
        assert parse_topology(itype.topology).chips == itype.chips
    amd = {t.name for t in catalog.values() if t.cpu_manufacturer == "amd"}
    assert amd == {t.name for t in catalog.match("inf2.*")} | {"g5.xlarge", "g5.12xlarge"}


def test_max_enis_from_the_reference_table(catalog: Catalog) -> None:
    assert catalog["trn1.32xlarge"].max_enis == 40
    assert catalog["trn1n.32xlarge"].max_enis == 80
    assert catalog["inf1.24xlarge"].max_enis == 11
    assert catalog["trn2.3xlarge"].max_enis == 2


# --- lookup and matching ----------------------------------------------------------------------------

def test_unknown_type_suggests_close_names(catalog: Catalog) -> None:
    with pytest.raises(CatalogError, match=r"unknown instance type 'trn1.23xlarge'.*did you mean.*trn1\.32x"):
        catalog.get("trn1.23xlarge")
    with pytest.raises(CatalogError, match="unknown instance type"):
        catalog["zzz.nothing"]
    assert catalog.get("zzz.nothing", None) is None


def test_mapping_protocol(catalog: Catalog) -> None:
    assert len(catalog) == len(catalog.names()) == len(list(catalog))
    assert "inf2.xlarge" in catalog
    assert "Inf2.xlarge" in catalog  # ECS docs write Inf1.xlarge; names are lowercase
    assert "inf9.xlarge" not in catalog
    assert 42 not in catalog
    assert catalog.names()[0] == "trn1.2xlarge"  # CSV order


@pytest.mark.parametrize(("pattern", "expected"), [
    ("inf*", {"inf1.xlarge", "inf1.2xlarge", "inf1.6xlarge", "inf1.24xlarge",
              "inf2.xlarge", "inf2.8xlarge", "inf2.24xlarge", "inf2.48xlarge"}),
    ("trn*", {"trn1.2xlarge", "trn1.32xlarge", "trn1n.32xlarge", "trn2.3xlarge", "trn2.48xlarge"}),
    ("trn1.*", {"trn1.2xlarge", "trn1.32xlarge"}),
    ("trn1n.*", {"trn1n.32xlarge"}),
    ("c6i.*", {"c6i.large", "c6i.xlarge", "c6i.2xlarge"}),
    ("m6*.*", {"m6i.xlarge", "m6i.4xlarge"}),
    ("*.48xlarge", {"inf2.48xlarge", "trn2.48xlarge"}),
    ("g5.xlarge", {"g5.xlarge"}),
    ("G5.XLARGE", {"g5.xlarge"}),
    ("g5.?large", set()),  # only * is a wildcard
    ("inf", set()),
])
def test_match_ec2_wildcards(catalog: Catalog, pattern: str, expected: set[str]) -> None:
    assert {itype.name for itype in catalog.match(pattern)} == expected


@given(st.sampled_from(sorted(PUBLISHED)), st.integers(min_value=0, max_value=12))
def test_match_any_prefix_with_star_finds_the_type(name: str, cut: int) -> None:
    found = default_catalog().match(name[:cut] + "*")
    assert name in {itype.name for itype in found}
    assert all(itype.name.startswith(name[:cut]) for itype in found)


def test_with_types_adds_and_overrides_without_touching_the_original(catalog: Catalog) -> None:
    cheaper = dataclasses.replace(catalog["inf2.xlarge"], price_per_hour=0.5)
    extra = dataclasses.replace(catalog["c6i.large"], name="c6i.4xlarge", vcpus=16, memory_mib=32768)
    updated = catalog.with_types([cheaper, extra])
    assert updated["inf2.xlarge"].price_per_hour == 0.5
    assert catalog["inf2.xlarge"].price_per_hour == 0.7582
    assert "c6i.4xlarge" in updated and "c6i.4xlarge" not in catalog
    assert len(updated) == len(catalog) + 1
    assert updated.names().index("inf2.xlarge") == catalog.names().index("inf2.xlarge")


def test_default_catalog_is_cached() -> None:
    assert default_catalog() is default_catalog()
    assert load_catalog() == default_catalog()


def test_catalog_rows_for_json(catalog: Catalog) -> None:
    rows = catalog_rows(catalog)
    assert len(rows) == len(catalog)
    required = {"instance_type", "vcpus", "memory_gib", "chips", "device_paths", "cores_per_chip",
                "accelerator", "launch_types", "price_per_hour"}
    for row in rows:
        assert required <= set(row)
    by_name = {row["instance_type"]: row for row in json.loads(json.dumps(rows))}
    trn = by_name["trn1.32xlarge"]
    assert trn["memory_gib"] == 512 and trn["chips"] == 16 and len(trn["device_paths"]) == 16
    assert trn["launch_types"] == ["EC2", "MANAGED_INSTANCES"]
    assert trn["registered_cpu"] == 131072
    assert trn["registered_memory_mib"] == catalog["trn1.32xlarge"].registered_memory_mib()
    assert by_name["inf1.xlarge"]["launch_types"] == ["EC2"]
    assert by_name["c6i.large"]["accelerator"] is None


# --- user files -------------------------------------------------------------------------------------

def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_user_file_overrides_only_given_columns_and_adds_types(tmp_path: Path) -> None:
    path = write(tmp_path, "mine.csv",
                 "name,price_per_hour,vcpus,memory_mib,chips,cores_per_chip,accelerator,topology\n"
                 "inf2.xlarge,0.5,,,,,,\n"
                 "c7i.large,0.08925,2,4096,,,,\n"
                 "trn9.8xlarge,,32,131072,4,2,trainium,ring:4\n")
    catalog = load_catalog(path)
    base = default_catalog()["inf2.xlarge"]
    assert catalog["inf2.xlarge"] == dataclasses.replace(base, price_per_hour=0.5)
    assert "price_per_hour from mine.csv line 2" in catalog["inf2.xlarge"].source
    new = catalog["c7i.large"]
    assert (new.family, new.vcpus, new.memory_mib, new.chips, new.topology) == ("c7i", 2, 4096, 0, "none")
    assert new.launch_types == {"EC2", "MANAGED_INSTANCES"}
    assert catalog["trn9.8xlarge"].device_paths == tuple(f"/dev/neuron{i}" for i in range(4))
    assert catalog["trn9.8xlarge"].topology == "ring:4"
    assert default_catalog()["inf2.xlarge"].price_per_hour == 0.7582  # the cached default is untouched


def test_yaml_and_json_user_files(tmp_path: Path) -> None:
    yaml_path = write(tmp_path, "mine.yaml", """
- name: trn1.32xlarge
  price_per_hour: 12.0
  price_note: our private pricing
  launch_types: [EC2]
- name: inf2.xlarge
  registered_memory_override: 15400
""")
    catalog = load_catalog(yaml_path)
    assert catalog["trn1.32xlarge"].price_per_hour == 12.0
    assert catalog["trn1.32xlarge"].launch_types == {"EC2"}
    assert catalog["trn1.32xlarge"].price_note == "our private pricing"
    assert catalog["inf2.xlarge"].registered_memory_mib() == 15400
    json_path = write(tmp_path, "mine.json", json.dumps([
        {"instance_type": "m7i.xlarge", "vcpus": 4, "memory_mib": 16384, "price_per_hour": None},
    ]))
    assert load_catalog(json_path)["m7i.xlarge"].price_per_hour is None


@pytest.mark.parametrize(("name", "text", "where", "what"), [
    ("bad.csv", "name,vcpus,memory_mib\nx1.large,-2,1024\n", "line 2", "vcpus: must be a positive integer"),
    ("bad.csv", "name,vcpus,memory_mib\nx1.large,four,1024\n", "line 2", "vcpus: must be a positive integer"),
    ("bad.csv", "name,vcpu\ninf2.xlarge,8\n", "line 2", "vcpu: unknown field; did you mean 'vcpus'"),
    ("bad.csv", "name,launch_types\ninf2.xlarge,EC2|FARGATE\n", "line 2", "launch_types: must be EC2"),
    ("bad.csv", "name,chips\ninf2.48xlarge,4\n", "line 2", "topology: ring:12 needs 12 chips"),
    ("bad.csv", "name,topology\ntrn1.32xlarge,torus2d:4x3\n", "line 2", "topology: torus2d:4x3 needs 12"),
    ("bad.csv", "name,topology\ninf2.xlarge,star:3\n", "line 2", "topology: must be none, single"),
    ("bad.csv", "name,vcpus,memory_mib,chips,cores_per_chip,topology\nx9.big,1,1,41,2,line:41\n",
     "line 2", "chips: must be at most 40"),
    ("bad.csv", "name,vcpus,memory_mib,chips,cores_per_chip\nx9.big,1,1,4,2\n", "line 2",
     "topology: is required when chips > 1"),
    ("bad.csv", "name,vcpus\nc6i.large,2\nc6i.large,4\n", "line 3", "appears twice"),
    ("bad.csv", "name,vcpus\nnew.type,2\n", "line 2", "memory_mib: is required for a new instance type"),
    ("bad.csv", "name,family\ninf2.xlarge,inf9\n", "line 2", "family: must be the part of the name"),
    ("bad.yaml", "- name: inf2.xlarge\n  cpu_manufacturer: arm\n", "[0]", "cpu_manufacturer: must be one of"),
    ("bad.yaml", "- name: inf2.xlarge\n- vcpus: 3\n", "[1]", "name: is required"),
    ("bad.yaml", "name: inf2.xlarge\n", None, "must be a list"),
    ("bad.yaml", "- [1, 2]\n", "[0]", "must be an object"),
    ("bad.yaml", "- name: inf2.xlarge\n  vcpus: [\n", "line", "not valid YAML"),
    ("bad.json", '[{"name": "inf2.xlarge", "max_enis": true}]', "[0]",
     "max_enis: must be a positive integer"),
    ("bad.json", '[{"name": "Inf2.XLarge"}]', "[0]", "name: must look like family.size in lowercase"),
    ("bad.json", "[{", "line 1", "not valid JSON"),
    ("bad.toml", "x = 1\n", None, "unsupported file type '.toml'"),
])
def test_bad_user_files_name_file_row_and_field(tmp_path: Path, name: str, text: str, where: str | None,
                                                 what: str) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    message = str(caught.value)
    assert message.startswith(str(path) + ": ")
    assert what in message
    if where is not None:
        assert where in message
    assert caught.value.file == str(path)


def test_missing_user_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="catalog file not found"):
        load_catalog(tmp_path / "nope.csv")


def test_every_field_is_a_column_and_has_a_parser() -> None:
    from scheduler.catalog.catalog import _PARSERS

    assert set(_PARSERS) == set(FIELDS) == {f.name for f in dataclasses.fields(InstanceType)}


def test_catalog_pickles_for_worker_processes() -> None:
    import pickle

    from scheduler.catalog import default_catalog

    catalog = default_catalog()
    copy = pickle.loads(pickle.dumps(catalog))
    assert list(copy) == list(catalog) and copy.get("trn1.32xlarge") == catalog.get("trn1.32xlarge")
