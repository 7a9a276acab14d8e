import re
from pathlib import Path

import pytest

from ingest.config import Settings, load_settings
from ingest.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in list(__import__("os").environ):
        if name.startswith("INGEST_"):
            monkeypatch.delenv(name)


def test_defaults_match_the_contract() -> None:
    s = load_settings()
    assert s.database_url == "postgresql://postgres@127.0.0.1:5432/postgres"
    assert s.vidicenter_url == "https://vidicenter.quividi.com"
    assert s.angus_console_url == "https://console.angus.ai"
    assert s.angus_data_url == "https://data.angus.ai"
    assert s.angus_streams == []
    assert not s.vidicenter_configured and not s.angus_configured


def test_plain_http_vidicenter_url_is_refused_unless_loopback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INGEST_VIDICENTER_URL", "http://vidicenter.example.com")
    with pytest.raises(ConfigError, match=r"^INGEST_VIDICENTER_URL: must be https://"):
        load_settings()
    for url in ("http://127.0.0.1:8089", "http://localhost:8089", "http://[::1]:8089"):
        monkeypatch.setenv("INGEST_VIDICENTER_URL", url)
        assert load_settings().vidicenter_url == url


def test_each_bad_variable_gets_one_line_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_JOB_LEASE_S", "soon")
    monkeypatch.setenv("INGEST_VIDICENTER_LOCATIONS", "1,two")
    monkeypatch.setenv("INGEST_ANGUS_STREAMS", "[{not json")
    with pytest.raises(ConfigError) as info:
        load_settings()
    lines = str(info.value).splitlines()
    assert sorted(line.split(":")[0] for line in lines) == [
        "INGEST_ANGUS_STREAMS",
        "INGEST_JOB_LEASE_S",
        "INGEST_VIDICENTER_LOCATIONS",
    ]


def test_streams_and_locations_parse_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "INGEST_ANGUS_STREAMS",
        '[{"username": "u@example.com", "client_id": "c1", "access_token": "secret-1"}]',
    )
    monkeypatch.setenv("INGEST_VIDICENTER_LOCATIONS", "3, 1,2")
    s = load_settings()
    assert [x.client_id for x in s.angus_streams] == ["c1"]
    assert "secret-1" not in repr(s)
    assert s.vidicenter_locations == ["3", "1", "2"]
    assert s.secrets() == ["secret-1"]


def test_locations_all_means_discovery(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_VIDICENTER_LOCATIONS", "all")
    assert load_settings().vidicenter_all_locations


def test_dotenv_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("INGEST_HTTP_PORT=9191\n")
    assert load_settings().http_port == 9191


def test_env_example_lists_every_setting_with_its_default() -> None:
    text = (ROOT / ".env.example").read_text()
    for name, field in Settings.model_fields.items():
        var = f"INGEST_{name.upper()}"
        match = re.search(rf"^#? ?{var}=(.*)$", text, re.M)
        assert match, f"{var} is missing from .env.example"
        default = field.default if field.default_factory is None else field.default_factory()
        if isinstance(default, list):
            json_lists = ("angus_streams", "vidicenter_accounts")
            expected = "[]" if name in json_lists else ",".join(map(str, default))
        else:
            expected = "" if default is None else str(getattr(default, "value", default))
        assert match.group(1) == expected, var


def test_readme_configuration_table_names_every_setting() -> None:
    text = (ROOT / "README.md").read_text()
    missing = [
        f"INGEST_{n.upper()}" for n in Settings.model_fields if f"`INGEST_{n.upper()}`" not in text
    ]
    assert not missing, f"README lacks {missing}"


def test_more_vidicenter_accounts_come_after_the_single_account_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INGEST_VIDICENTER_USERNAME", "alice")
    monkeypatch.setenv("INGEST_VIDICENTER_TOKEN", "secret-a")
    monkeypatch.setenv("INGEST_VIDICENTER_LOCATIONS", "1,2")
    monkeypatch.setenv(
        "INGEST_VIDICENTER_ACCOUNTS",
        '[{"url": "https://EU.Vidicenter.example/", "username": "bob", "token": "secret-b",'
        ' "locations": "all"}, {"url": "http://127.0.0.1:8089", "username": "sim",'
        ' "token": "secret-c", "locations": [7, "8"]}]',
    )
    s = load_settings()
    accounts = s.vidicenter_account_list
    assert [(a.name, a.locations) for a in accounts] == [
        ("vidicenter.quividi.com/alice", ["1", "2"]),
        ("eu.vidicenter.example/bob", ["all"]),
        ("127.0.0.1/sim", ["7", "8"]),
    ]
    assert accounts[1].url == "https://EU.Vidicenter.example" and accounts[1].all_locations
    assert sorted(s.secrets()) == ["secret-a", "secret-b", "secret-c"]
    assert "secret-b" not in repr(s)
    assert s.locations_variable(accounts[0]) == "INGEST_VIDICENTER_LOCATIONS"
    assert s.locations_variable(accounts[1]) == (
        "INGEST_VIDICENTER_ACCOUNTS (eu.vidicenter.example/bob) locations"
    )


@pytest.mark.parametrize(
    ("accounts", "line"),
    [
        ('[{"url": "http://v.example", "username": "u", "token": "t"}]',
         "INGEST_VIDICENTER_ACCOUNTS (0.url): must be https://"),
        ('[{"username": "u", "token": "t", "locations": "1,x"}]',
         "INGEST_VIDICENTER_ACCOUNTS (0.locations): must be comma-separated location ids"),
        ('[{"username": "u"}]', "INGEST_VIDICENTER_ACCOUNTS (0.token): Field required"),
        ("{not json", "INGEST_VIDICENTER_ACCOUNTS: must be a JSON list of"),
        ('[{"username": "me", "token": "t"}]',
         "INGEST_VIDICENTER_ACCOUNTS: account vidicenter.quividi.com/me is configured twice"),
    ],
    ids=["http", "locations", "token", "json", "twice"],
)  # fmt: skip
def test_a_bad_account_is_one_line_naming_the_variable_and_the_entry(
    monkeypatch: pytest.MonkeyPatch, accounts: str, line: str
) -> None:
    monkeypatch.setenv("INGEST_VIDICENTER_USERNAME", "me")
    monkeypatch.setenv("INGEST_VIDICENTER_TOKEN", "t0")
    monkeypatch.setenv("INGEST_VIDICENTER_ACCOUNTS", accounts)
    with pytest.raises(ConfigError) as info:
        load_settings()
    (only,) = str(info.value).splitlines()
    assert only.startswith(line), only
