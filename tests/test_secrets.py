"""Secrets never leak: not to the terminal, results, JUnit/HTML reports or saved output."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest

from pytest_mlperf.errors import BackendError
from pytest_mlperf.redact import redact, redact_obj
from pytest_mlperf.results.store import atomic_write_json, atomic_write_text
from tests.standin import make_harness, set_conf, standin_args
from tests.test_nvidia_docker import docker_client, standin_logs  # noqa: F401 - fixtures


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Fresh secret values; the token and the Docker auth are in the environment."""
    s = {
        "token": "hf_" + secrets.token_hex(12),
        "password": "pw" + secrets.token_hex(8),
        "bearer": "eyJ" + secrets.token_hex(16),
        "docker_password": "dk" + secrets.token_hex(8),
        "pem": base64.b64encode(secrets.token_bytes(48)).decode(),
    }
    s["docker_pair"] = f"robot:{s['docker_password']}"
    auth = base64.b64encode(s["docker_pair"].encode()).decode()
    monkeypatch.setenv("HF_TOKEN", s["token"])
    monkeypatch.setenv("DOCKER_AUTH_CONFIG", f'{{"auths": {{"r.example": {{"auth": "{auth}"}}}}}}')
    return s


def test_each_kind_of_secret_is_masked(planted: dict[str, str]) -> None:
    s = planted
    text = "\n".join(
        [
            f"using {s['token']} now; HF_TOKEN={s['token']}",
            f"GET https://bot:{s['password']}@registry.example/v2/",
            f"git clone https://{s['password']}@github.com/org/repo",
            f"curl -H 'Authorization: Bearer {s['bearer']}' and Proxy-Authorization: Basic {s['password']}",
            f"docker login {s['docker_pair']} ({s['docker_password']})",
            f"password={s['password']} api_key: {s['password']} client_secret='{s['password']}'",
            "-----BEGIN EC PRIVATE KEY-----",
            s["pem"],
            "-----END EC PRIVATE KEY-----",
        ]
    )
    masked = redact(text)
    for value in s.values():
        assert value not in masked
    assert masked.splitlines() == [
        "using *** now; HF_TOKEN=***",
        "GET https://***@registry.example/v2/",
        "git clone https://***@github.com/org/repo",
        "curl -H 'Authorization: Bearer ***' and Proxy-Authorization: Basic ***",
        "docker login *** (***)",
        "password=*** api_key: *** client_secret=***",
        "-----BEGIN EC PRIVATE KEY-----",
        "***",
        "-----END EC PRIVATE KEY-----",
    ]


def test_cut_pem_blocks_and_harmless_text() -> None:
    body = base64.b64encode(secrets.token_bytes(48)).decode()
    tail = f"{body}\n-----END PRIVATE KEY-----\ndone"  # an output tail lost the BEGIN line
    assert redact(tail) == "***\n-----END PRIVATE KEY-----\ndone"
    head = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n{body}"  # cut before the END line
    assert redact(head) == "-----BEGIN OPENSSH PRIVATE KEY-----\n***\n"
    harmless = (
        "ssh://me@gpu-1 tcp://10.0.0.1:2376 max_tokens: 5 tokenizer: ok "
        "--mlperf-timeout=30 result_validity: VALID"
    )
    assert redact(harmless) == harmless


def test_short_and_unrelated_environment_values_stay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_TOKEN", "1")  # too short to mask without mangling output
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Jane Doe")  # AUTHOR is not AUTH
    assert redact("1 run by Jane Doe") == "1 run by Jane Doe"


def test_the_choke_points_mask(planted: dict[str, str], tmp_path: Path) -> None:
    token = planted["token"]
    assert token not in str(BackendError(f"harness said {token}"))
    record = redact_obj({"errors": [f"x {token}"], "n": 1, "t": ("a", token)})
    assert record == {"errors": ["x ***"], "n": 1, "t": ["a", "***"]}
    atomic_write_text(tmp_path / "out.txt", f"token {token}\n")
    atomic_write_json(tmp_path / "out.json", {"error": f"Authorization: Bearer {token}"})
    assert token not in (tmp_path / "out.txt").read_text()
    assert (tmp_path / "out.json").read_text() == '{\n  "error": "Authorization: Bearer ***"\n}\n'


@pytest.mark.docker
def test_secrets_printed_by_the_harness_reach_no_output(
    docker_client: object,  # noqa: F811
    pytester: pytest.Pytester,
    standin_logs: Path,  # noqa: F811
    planted: dict[str, str],
) -> None:
    """The stand-in harness prints an env token, URL credentials, a bearer header, the
    decoded Docker auth and a PEM key, then exits 1; the session runs in a subprocess
    whose environment holds the token and DOCKER_AUTH_CONFIG."""
    s = planted
    harness = make_harness(pytester.path, standin_logs)
    set_conf(
        harness,
        mode="leak",
        leak_token=s["token"],
        leak_password=s["password"],
        leak_bearer=s["bearer"],
        leak_docker_pair=s["docker_pair"],
        leak_docker_password=s["docker_password"],
        leak_pem=s["pem"],
    )
    result = pytester.runpytest_subprocess(
        *standin_args(pytester, harness),
        "--mlperf-scenarios=Offline",
        "--mlperf-fast",
        f"--mlperf-cache-dir={pytester.path / 'cache'}",
        "--junitxml=junit.xml",
        "--html=report.html",
    )
    result.assert_outcomes(failed=1)
    terminal = result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["*harness run exited with code 1:*", "*Bearer ****"])
    (output,) = pytester.path.glob(
        "mlperf-results/*/bert-99/Offline/performance/harness-output.txt"
    )
    saved = output.read_text()
    for shown in (
        "HF_TOKEN=***",
        "using token *** for the model download",
        "GET https://***@registry.example/v2/",
        "header Authorization: Bearer ***",
        "docker login as ***, password ***",
        "-----BEGIN RSA PRIVATE KEY-----\n***\n-----END RSA PRIVATE KEY-----",
        "[E] Traceback: TensorRT engine build failed",
    ):
        assert shown in saved  # the secret was printed, and masked
    files = [
        p
        for p in pytester.path.rglob("*")
        if p.is_file() and harness not in p.parents  # standin.conf holds them by design
    ]
    names = {p.name for p in files}
    assert {"results.json", "result.json", "junit.xml", "report.html"} <= names
    for name, value in s.items():
        assert value not in terminal, name
        for path in files:
            assert value not in path.read_text(errors="replace"), (name, path)


def test_masking_never_changes_data_the_product_reads_back(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A secret equal to a mode, or part of the results path, leaves the record's data alone;
    free text is still masked."""
    from pytest_mlperf.checks import Outcome, Verdict
    from pytest_mlperf.results.record import build_record
    from pytest_mlperf.schemas import validate

    token = "tk" + secrets.token_hex(10)
    monkeypatch.setenv("MLPERF_TOKEN", "performance")  # a common word: not a secret to mask
    monkeypatch.setenv("HF_TOKEN", token)
    log_dir = tmp_path / token / "bert-99" / "Offline" / "performance"
    record = build_record(
        nodeid="t::x",
        benchmark="bert-99",
        scenario="Offline",
        mode="performance",
        config_ver="default",
        backend="reference",
        system="sys",
        fast=True,
        parsed=None,
        verdict=Verdict(Outcome.FAILED, reasons=[f"harness printed {token} and performance"]),
        log_dir=log_dir,
        settings={"command": f"run --token {token}"},
        calibration=None,
        timing={"total_s": 1.0},
        threshold=None,
        error=f"boom {token}",
    )
    validate(record, "result", "record")
    assert record["mode"] == "performance"
    assert record["log_dir"] == str(log_dir) and record["item_dir"] == str(log_dir)
    assert record["verdict"]["reasons"] == ["harness printed *** and performance"]
    assert record["errors"] == ["boom ***"]
    assert record["settings"] == {"command": "run --token ***"}
    atomic_write_json(tmp_path / "r.json", {"log_dir": str(log_dir), "errors": [token]})
    written = (tmp_path / "r.json").read_text()
    assert str(log_dir) in written and '"***"' in written


@pytest.mark.parametrize("value", ["performance", "read-only", "default1", "1234567"])
def test_common_values_do_not_mask_ordinary_words(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    text = f"performance read-only default1 1234567 x{value}y"
    monkeypatch.setenv("API_KEY", value)
    expected = text if value != "default1" else text.replace("default1 ", "*** ")
    assert redact(text) == expected  # a real-looking value is masked only as a whole token


def test_secret_inside_a_longer_word_stays(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_SECRET", "s3cr3tv4lue")
    assert redact("id=s3cr3tv4lue7 and s3cr3tv4lue.") == "id=s3cr3tv4lue7 and ***."
