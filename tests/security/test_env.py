"""Environment: nothing by default, exactly the allowlist when granted, values never in the
tool's own output, and the build (which runs on the host) sees a scrubbed environment.
"""

from __future__ import annotations

import os

from .conftest import describe

SECRETS = {
    "CT_SECRET_TOKEN": "tok-3c1d9e-never-show-me",
    "AWS_SECRET_ACCESS_KEY": "aws-8b0f2a-never-show-me",
    "GITHUB_TOKEN": "ghp-5e7c4b-never-show-me",
    "CT_ALLOWED_NOT": "near-miss-a41b-never-show-me",  # a longer name than the allowed one
    "XCT_GLOB_A": "prefix-miss-c2d7-never-show-me",
}
ALLOWED = {"CT_ALLOWED": "allowed-value-91e2", "CT_GLOB_A": "glob-a-77f0", "CT_GLOB_B": "glob-b-0a3e"}


def test_no_grant_means_no_environment(arena):
    """Nothing of the host's: only CARGO_MANIFEST_DIR, always the project (as argv[0] is
    always the task's name), whatever the host's variable of that name says."""
    host = {"CARGO_MANIFEST_DIR": "/host-value-d81c-never-show-me"}
    result = arena.run("env_none", extra_env={**SECRETS, **ALLOWED, **host})
    assert result.returncode == 0, describe(result)
    assert result.stdout == f"CARGO_MANIFEST_DIR={arena.project}\n", describe(result)


def test_allowlist_exposes_exactly_the_listed_names(arena):
    result = arena.run("env_allow", extra_env={**SECRETS, **ALLOWED})
    assert result.returncode == 0, describe(result)
    expected = sorted([f"{k}={v}" for k, v in ALLOWED.items()] + ["CT_FIXED=from-the-manifest",
                                                                   f"CARGO_MANIFEST_DIR={arena.project}"])
    assert result.stdout.splitlines() == expected, describe(result)


def test_values_never_appear_in_the_tools_own_output(arena):
    environ = {**SECRETS, **ALLOWED}
    source = arena.project / "tasks" / "env_allow.rs"
    os.utime(source)  # stale: this run builds, so cargo's verbose output is included too
    outputs = [arena.run("env_allow", options=["-vv"], extra_env=environ).stderr,
               arena.run("env_none", options=["-v"], extra_env=environ).stderr,
               arena.run("--explain", "env_allow", extra_env=environ).stdout,
               arena.run("--list", extra_env=environ).stdout]  # fmt: skip
    assert "Compiling cargo-task-arena" in outputs[0] or "Fresh" in outputs[0], outputs[0]
    for output in outputs:
        for value in environ.values():
            assert value not in output, (value, output)
    explained = outputs[2]
    assert ("environment: inherit-env = [CT_ALLOWED, CT_GLOB_*] "
            "(set now: CT_ALLOWED, CT_GLOB_A, CT_GLOB_B); fixed: CT_FIXED") in explained, explained


def test_build_environment_is_scrubbed_env_macro_fails_to_compile(arena):
    """`env!("CT_BUILD_SECRET")` must not bake the user's variable into the task."""
    secret = "build-secret-e4f9-never-compile-me"
    result = arena.run("build_env", extra_env={"CT_BUILD_SECRET": secret, **SECRETS})
    assert result.returncode == 1, describe(result)
    assert "environment variable `CT_BUILD_SECRET` not defined at compile time" in result.stderr
    assert "could not compile task `build_env`" in result.stderr
    assert secret not in result.stdout + result.stderr


def test_build_environment_is_scrubbed_option_env(arena):
    secret = "build-secret-e4f9-never-compile-me"
    result = arena.run("build_optenv", extra_env={"CT_BUILD_SECRET": secret, **SECRETS})
    assert result.returncode == 0, describe(result)
    assert result.stdout.splitlines() == [
        "CT_BUILD_SECRET=None",
        "AWS_SECRET_ACCESS_KEY=None",
        "PATH is set: true",  # what cargo and rustc need does reach the build
    ], describe(result)
    assert secret not in result.stdout + result.stderr
